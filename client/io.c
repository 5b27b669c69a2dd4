/*
 * io.c — libskuld's I/O thread: connect, REGISTER, send one request at a
 * time, read its reply, reconnect and resend.
 *
 * Owns: the socket, the frame buffers and the session rules of
 * docs/PROTOCOL.md section 8 as a client applies them. One request is in
 * flight at a time; calls that arrive meanwhile wait in the queue and are
 * merged into the next request (batch.c).
 *
 * Retry rules (docs/CLIENT.md has the reasoning):
 *   - A SUBMIT keeps its number R and its bytes until its reply arrives.
 *     It is never given up because its callers gave up: the number is spent
 *     and must not carry other events.
 *   - After a reconnect the REGISTER reply's request_next N says what the
 *     server applied. R == N - 1: applied, resend as R for the saved reply.
 *     R == N: not applied, resend as R. Anything else (a session evicted or
 *     lost): resend the same events as new request N; their idempotency keys
 *     return the original results, flagged REPLAYED.
 *   - ERR_BUSY: reconnect after a back-off, resend unchanged. Any other
 *     ERROR frame: the request was not applied; its callers get the status.
 *   - REGISTER refused (token, version, client id): the calls fail with the
 *     status and the thread stops trying until skuld_client_connect.
 *
 * Every wait is bounded: poll() with the attempt's deadline and the wake
 * eventfd, which becomes readable for good when the client closes.
 *
 * TLS (any of the options tls_ca_file, tls_server_name, tls_cert_file,
 * tls_key_file; no CA file: the system's default CAs): the same socket, non-blocking,
 * under an OpenSSL SSL; the handshake runs right after connect, before
 * REGISTER, and verifies the server's chain against the CA file and its name
 * (DNS name, or IP address) against tls_server_name or the address's host.
 * Every byte then goes through SSL_read / SSL_write, which say which way
 * to poll (WANT_READ / WANT_WRITE). A certificate that does not verify is
 * -EKEYREJECTED; the token is never sent.
 */
#include "client_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* ---- Waiting and byte transfer (no lock held) ----------------------------- */

/* Waits until fd is ready for events, the deadline passes (-ETIMEDOUT) or
 * the client closes (-ECANCELED). */
static int fd_wait(struct skuld_client *client, int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = skuld__now_ms();
		struct pollfd fds[2] = {{.fd = fd, .events = events},
		                        {.fd = client->wake_fd, .events = POLLIN}};
		int rc;

		if (now >= deadline)
			return -ETIMEDOUT;
		rc = poll(fds, 2, (int)(deadline - now));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (fds[1].revents != 0)
			return -ECANCELED;
		if (fds[0].revents != 0)
			return 0;
	}
}

/* -EAGAIN with *events set when OpenSSL must wait for the socket; else the
 * error an SSL call's failure stands for. */
static ssize_t tls_result(SSL *ssl, int n, short *events)
{
	int reason = SSL_get_error(ssl, n);

	ERR_clear_error();
	if (reason == SSL_ERROR_WANT_READ) {
		*events = POLLIN;
		return -EAGAIN;
	}
	if (reason == SSL_ERROR_WANT_WRITE) {
		*events = POLLOUT;
		return -EAGAIN;
	}
	if (reason == SSL_ERROR_SYSCALL && errno == EINTR)
		return -EINTR;
	if (reason == SSL_ERROR_ZERO_RETURN || reason == SSL_ERROR_SYSCALL)
		return -ECONNRESET;
	return -EPROTO;
}

/* One send or receive of at most size bytes, through TLS when the client
 * has a session: > 0 bytes moved; -EAGAIN with *events to poll for; -EINTR;
 * -ECONNRESET when the peer closed; another -errno. */
static ssize_t transfer(struct skuld_client *client, int fd, const unsigned char *out,
                        unsigned char *in, size_t size, short *events)
{
	ssize_t n;

	if (client->tls != NULL) {
		int chunk = size > INT32_MAX ? INT32_MAX : (int)size;

		ERR_clear_error();
		n = out != NULL ? SSL_write(client->tls, out, chunk)
		                : SSL_read(client->tls, in, chunk);
		return n > 0 ? n : tls_result(client->tls, (int)n, events);
	}
	n = out != NULL ? send(fd, out, size, MSG_NOSIGNAL) : recv(fd, in, size, 0);
	if (n > 0)
		return n;
	if (n == 0)
		return -ECONNRESET;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*events = out != NULL ? POLLOUT : POLLIN;
		return -EAGAIN;
	}
	return -errno;
}

/* Sends size bytes from out, or receives them into in, by the deadline. */
static int transfer_all(struct skuld_client *client, int fd, const unsigned char *out,
                        unsigned char *in, size_t size, uint64_t deadline)
{
	size_t done = 0;

	while (done < size) {
		short events = 0;
		ssize_t n = transfer(client, fd, out != NULL ? out + done : NULL,
		                     in != NULL ? in + done : NULL, size - done, &events);

		if (n > 0) {
			done += (size_t)n;
		} else if (n == -EAGAIN) {
			int rc = fd_wait(client, fd, events, deadline);

			if (rc != 0)
				return rc;
		} else if (n != -EINTR) {
			return (int)n;
		}
	}
	return 0;
}

static int send_all(struct skuld_client *client, int fd, const unsigned char *bytes, size_t size,
                    uint64_t deadline)
{
	return transfer_all(client, fd, bytes, NULL, size, deadline);
}

static int receive_exact(struct skuld_client *client, int fd, unsigned char *bytes, size_t size,
                         uint64_t deadline)
{
	return transfer_all(client, fd, NULL, bytes, size, deadline);
}

/* Reads one frame into buffer and checks it as PROTOCOL.md section 6 says.
 * A frame that breaks a rule is -EPROTO: the connection is not trusted. */
static int frame_receive(struct skuld_client *client, int fd, unsigned char *buffer,
                         uint64_t deadline)
{
	struct skuld_header *header = (struct skuld_header *)buffer;
	int rc = receive_exact(client, fd, buffer, SKULD_HEADER_SIZE, deadline);

	if (rc != 0)
		return rc;
	if (proto_header_check(header) != SKULD_OK || !(header->flags & SKULD_FRAME_REPLY) ||
	    !skuld_u128_equal(header->client, client->client_id))
		return -EPROTO;
	rc = receive_exact(client, fd, buffer + SKULD_HEADER_SIZE, header->body_size, deadline);
	if (rc != 0)
		return rc;
	if (proto_body_check(header, buffer + SKULD_HEADER_SIZE, NULL) != SKULD_OK)
		return -EPROTO;
	return 0;
}

/* The status of an ERROR frame in buffer (already checked). */
static int error_status(const unsigned char *buffer)
{
	const struct skuld_error_body *error =
	        (const struct skuld_error_body *)(buffer + SKULD_HEADER_SIZE);

	return error->status >= SKULD_ERR_MAGIC ? (int)error->status : -EPROTO;
}

static void header_seal(struct skuld_client *client, unsigned char *frame, uint8_t operation,
                        uint16_t version, uint64_t request, uint32_t body_size, uint32_t count)
{
	struct skuld_header *header = (struct skuld_header *)frame;

	memset(header, 0, sizeof(*header));
	header->version = version;
	header->operation = operation;
	header->request = request;
	header->client = client->client_id;
	header->body_size = body_size;
	header->count = count;
	proto_header_seal(header, frame + SKULD_HEADER_SIZE);
}

/* ---- Connecting (no lock held) -------------------------------------------- */

/* While the server is down, a reconnect to a port in the local ephemeral
 * range can be given that very port as its source, and TCP then connects the
 * socket to itself (simultaneous open). Such a socket would hold the port the
 * restarting server needs; it counts as refused. */
static int socket_is_self_connected(int fd)
{
	struct sockaddr_storage local, peer;
	socklen_t local_length = sizeof(local), peer_length = sizeof(peer);
	if (getsockname(fd, (struct sockaddr *)&local, &local_length) != 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &peer_length) != 0)
		return 0;
	return local_length == peer_length && memcmp(&local, &peer, local_length) == 0;
}

static int socket_connect(struct skuld_client *client, uint64_t deadline)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *addresses = NULL;
	int rc = getaddrinfo(client->host, client->port, &hints, &addresses);
	int fd = -1;

	if (rc != 0)
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	rc = -EHOSTUNREACH;
	for (struct addrinfo *a = addresses; a != NULL && fd < 0; a = a->ai_next) {
		int error = 0;
		socklen_t length = sizeof(error);
		int one = 1;

		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            a->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			rc = 0;
		} else if (errno != EINPROGRESS) {
			rc = -errno;
		} else {
			rc = fd_wait(client, fd, POLLOUT, deadline);
			if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0)
				rc = -errno;
			else if (rc == 0 && error != 0)
				rc = -error;
		}
		if (rc == 0 && socket_is_self_connected(fd))
			rc = -ECONNREFUSED;
		if (rc == 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		} else {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(addresses);
	return fd >= 0 ? fd : rc;
}

/* ---- TLS (no lock held, except setup and free) ---------------------------- */

int skuld__tls_setup(struct skuld_client *client, const struct skuld_options *options)
{
	const char *name =
	        options->tls_server_name != NULL ? options->tls_server_name : client->host;
	const char *key =
	        options->tls_key_file != NULL ? options->tls_key_file : options->tls_cert_file;
	SSL_CTX *context;
	int ok;

	/* Any TLS option turns TLS on: a client certificate alone must never
	 * leave the connection, and its token, in clear text. */
	if (options->tls_ca_file == NULL && options->tls_server_name == NULL &&
	    options->tls_cert_file == NULL && options->tls_key_file == NULL)
		return 0;
	if (options->tls_key_file != NULL && options->tls_cert_file == NULL)
		return -EINVAL; /* a key without its certificate */
	context = SSL_CTX_new(TLS_client_method());
	client->tls_server_name = strdup(name);
	if (context == NULL || client->tls_server_name == NULL) {
		SSL_CTX_free(context);
		ERR_clear_error();
		return -ENOMEM;
	}
	client->tls_context = context;
	ok = SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1;
	if (ok && options->tls_ca_file != NULL)
		ok = SSL_CTX_load_verify_locations(context, options->tls_ca_file, NULL) == 1;
	else if (ok)
		ok = SSL_CTX_set_default_verify_paths(context) == 1;
	if (ok && options->tls_cert_file != NULL)
		ok = SSL_CTX_use_certificate_chain_file(context, options->tls_cert_file) == 1 &&
		     SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 &&
		     SSL_CTX_check_private_key(context) == 1;
	ERR_clear_error();
	if (!ok)
		return -EINVAL;
	SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(context,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	return 0;
}

void skuld__tls_free(struct skuld_client *client)
{
	SSL_CTX_free(client->tls_context);
	client->tls_context = NULL;
	free(client->tls_server_name);
	client->tls_server_name = NULL;
}

/* Forgets the connection's TLS session (a close_notify is tried, never
 * waited for). */
static void tls_drop(struct skuld_client *client)
{
	if (client->tls == NULL)
		return;
	if (SSL_is_init_finished(client->tls))
		SSL_shutdown(client->tls);
	ERR_clear_error();
	SSL_free(client->tls);
	client->tls = NULL;
}

/* The TLS handshake on a connected fd: the server's chain must verify
 * against the CA and carry tls_server_name (an IP address is matched as
 * one). Returns 0 with client->tls set, -EKEYREJECTED when the certificate
 * does not verify, -ENOMEM, or the error that ended the attempt. */
static int tls_handshake(struct skuld_client *client, int fd, uint64_t deadline)
{
	const char *name = client->tls_server_name;
	unsigned char address[16];
	SSL *ssl = SSL_new(client->tls_context);
	int is_address =
	        inet_pton(AF_INET, name, address) == 1 || inet_pton(AF_INET6, name, address) == 1;
	int rc = 0;

	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return -ENOMEM;
	}
	if (is_address)
		rc = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -EINVAL;
	else if (SSL_set1_host(ssl, name) != 1 || SSL_set_tlsext_host_name(ssl, name) != 1)
		rc = -EINVAL;
	client->tls = ssl;
	while (rc == 0) {
		short events = 0;
		int n;

		ERR_clear_error();
		n = SSL_connect(ssl);
		if (n == 1)
			return 0;
		rc = (int)tls_result(ssl, n, &events);
		if (SSL_get_verify_result(ssl) != X509_V_OK)
			rc = -EKEYREJECTED;
		if (rc == -EAGAIN)
			rc = fd_wait(client, fd, events, deadline);
		else if (rc == -EINTR)
			rc = 0;
	}
	tls_drop(client);
	return rc;
}

/* Sends REGISTER on fd and reads the reply into *reply. Returns 0, a
 * SKULD_ERR_* refusal, or -errno / -EPROTO. */
static int register_exchange(struct skuld_client *client, int fd, uint64_t deadline,
                             struct skuld_register_reply *reply)
{
	_Alignas(8) unsigned char frame[SKULD_HEADER_SIZE + sizeof(struct skuld_register_request)];
	struct skuld_register_request *request =
	        (struct skuld_register_request *)(frame + SKULD_HEADER_SIZE);
	const struct skuld_header *header = (const struct skuld_header *)client->receive_buffer;
	int rc;

	memset(request, 0, sizeof(*request));
	request->version_min = SKULD_PROTOCOL_VERSION_MIN;
	request->version_max = SKULD_PROTOCOL_VERSION_MAX;
	memcpy(request->token, client->token, sizeof(request->token));
	memcpy(request->client_name, client->client_name, sizeof(request->client_name));
	/* REGISTER always travels as version 1 with request 0 (section 7, 8). */
	header_seal(client, frame, SKULD_OP_REGISTER, 1, 0, sizeof(*request), 1);
	rc = send_all(client, fd, frame, sizeof(frame), deadline);
	if (rc == 0)
		rc = frame_receive(client, fd, client->receive_buffer, deadline);
	if (rc != 0)
		return rc;
	if (header->operation == SKULD_OP_ERROR)
		return error_status(client->receive_buffer);
	if (header->operation != SKULD_OP_REGISTER || header->request != 0)
		return -EPROTO;
	memcpy(reply, client->receive_buffer + SKULD_HEADER_SIZE, sizeof(*reply));
	if (reply->version < SKULD_PROTOCOL_VERSION_MIN ||
	    reply->version > SKULD_PROTOCOL_VERSION_MAX || reply->events_max == 0 ||
	    reply->request_next == 0)
		return -EPROTO;
	return 0;
}

/* ---- State (lock held) ---------------------------------------------------- */

/* Records the state and wakes skuld_client_connect; runs the user's callback
 * with the lock released when the state changed. */
static void state_set(struct skuld_client *client, skuld_state state, int error)
{
	int changed = client->state != state;

	client->state = state;
	if (error != 0 || state == SKULD_STATE_CONNECTED)
		client->last_error = error;
	pthread_cond_broadcast(&client->state_wake);
	if (changed && client->options.on_state != NULL) {
		pthread_mutex_unlock(&client->lock);
		client->options.on_state(client->options.context, state, error);
		pthread_mutex_lock(&client->lock);
	}
}

static void request_finish(struct skuld_client *client, int status)
{
	struct skuld__request *request = &client->request;

	for (uint32_t s = 0; s < request->slices_len; s++) {
		if (request->slices[s].call != NULL)
			skuld__call_finish(request->slices[s].call, status);
	}
	request->active = 0;
	request->slices_len = 0;
	request->events = 0;
	request->sends = 0;
}

/* Fails the in-flight request and every queued call with status. */
static void fail_everything(struct skuld_client *client, int status)
{
	uint32_t bound = client->queue.length;

	if (client->request.active)
		request_finish(client, status);
	for (uint32_t i = 0; i < bound && client->queue.head != NULL; i++) {
		struct skuld__call *call = client->queue.head;

		skuld__queue_remove(&client->queue, call);
		skuld__call_finish(call, status);
	}
}

/* Applies a REGISTER reply: the session, and the number the in-flight
 * SUBMIT (if any) is resent with. */
static void session_resume(struct skuld_client *client, const struct skuld_register_reply *reply)
{
	struct skuld__request *request = &client->request;
	uint64_t next = reply->request_next;

	client->version = reply->version;
	client->events_max = reply->events_max < SKULD_EVENTS_PER_FRAME_MAX
	                             ? reply->events_max
	                             : SKULD_EVENTS_PER_FRAME_MAX;
	client->session = reply->session;
	client->connects++;
	if (request->active && request->operation == SKULD_OP_SUBMIT) {
		int applied = request->number + 1 == next;

		if (!applied && request->events > client->events_max) {
			/* The server now takes fewer events than this request holds. */
			request_finish(client, -EMSGSIZE);
		} else if (!applied && request->number != next) {
			request->number = next; /* same events, new number: keys dedupe */
		}
	}
	if (request->active && request->operation == SKULD_OP_SUBMIT)
		client->request_next = request->number + 1;
	else
		client->request_next = next;
}

static int status_is_fatal(int status)
{
	return status > 0 && status != SKULD_ERR_BUSY;
}

/* One connect + REGISTER attempt. */
static int io_connect(struct skuld_client *client)
{
	uint64_t deadline = skuld__now_ms() + client->options.connect_timeout_ms;
	struct skuld_register_reply reply;
	int rc;
	int fd;

	pthread_mutex_unlock(&client->lock);
	fd = socket_connect(client, deadline);
	rc = fd < 0 ? fd : 0;
	if (rc == 0 && client->tls_context != NULL)
		rc = tls_handshake(client, fd, deadline);
	if (rc == 0)
		rc = register_exchange(client, fd, deadline, &reply);
	if (rc != 0 && fd >= 0) {
		tls_drop(client);
		close(fd);
	}
	pthread_mutex_lock(&client->lock);
	client->attempts++;
	if (rc == 0) {
		client->fd = fd;
		session_resume(client, &reply);
		state_set(client, SKULD_STATE_CONNECTED, 0);
	}
	return rc;
}

/* ---- Requests (lock held unless said) ------------------------------------- */

/* Takes the next request from the queue into send_buffer. 0 if none. */
static int request_take(struct skuld_client *client)
{
	struct skuld__request *request = &client->request;
	struct skuld__call *rejected = NULL;
	uint32_t bound = client->queue.length + 1;

	for (uint32_t i = 0; i < bound && !request->active && client->queue.head != NULL; i++) {
		skuld__batch_take(&client->queue, request,
		                  (struct skuld_event *)(client->send_buffer + SKULD_HEADER_SIZE),
		                  client->events_max, &rejected);
		if (rejected != NULL)
			skuld__call_finish(rejected, rejected->status);
	}
	if (!request->active)
		return 0;
	request->sends = 0;
	request->number = 0;
	if (request->operation == SKULD_OP_SUBMIT) {
		request->number = client->request_next++;
	} else {
		const struct skuld__call *call = request->slices[0].call;

		SKULD__ASSERT(call != NULL && call->body_size <= SKULD_BODY_SIZE_MAX);
		if (call->body_size > 0)
			memcpy(client->send_buffer + SKULD_HEADER_SIZE, call->body,
			       call->body_size);
		request->body_size = call->body_size;
	}
	return 1;
}

/* Seals the in-flight request's header for this connection. */
static void request_seal(struct skuld_client *client)
{
	struct skuld__request *request = &client->request;
	uint32_t body_size;
	uint32_t count;

	if (request->operation == SKULD_OP_SUBMIT) {
		body_size = request->events * SKULD_EVENT_SIZE;
		count = request->events;
	} else if (request->operation == SKULD_OP_STATS) {
		/* The records the caller takes (PROTOCOL.md section 14); one is
		 * asked as 0, which servers from before the count also take. */
		struct skuld__call *call = request->slices[0].call;
		body_size = 0;
		count = call != NULL && call->reply_capacity > 1 ? call->reply_capacity : 0;
	} else {
		body_size = request->body_size;
		count = body_size > 0 ? 1 : 0;
	}
	header_seal(client, client->send_buffer, request->operation, client->version,
	            request->number, body_size, count);
	client->send_size = SKULD_HEADER_SIZE + body_size;
}

/* Copies a QUERY / LOOKUP / STATS reply's records to the waiting caller. */
static void records_deliver(struct skuld__call *call, const struct skuld_header *header,
                            const unsigned char *body)
{
	uint32_t stored =
	        header->count < call->reply_capacity ? header->count : call->reply_capacity;

	if (call->reply != NULL && stored > 0)
		memcpy(call->reply, body, (size_t)stored * call->reply_record_size);
	call->reply_count = header->count;
}

/* Matches the reply in receive_buffer to the in-flight request and
 * completes it. Returns 0, a SKULD_ERR_* from an ERROR frame, or -EPROTO. */
static int reply_apply(struct skuld_client *client)
{
	struct skuld__request *request = &client->request;
	const struct skuld_header *header = (const struct skuld_header *)client->receive_buffer;
	const unsigned char *body = client->receive_buffer + SKULD_HEADER_SIZE;

	if (header->operation == SKULD_OP_ERROR)
		return error_status(client->receive_buffer);
	if (header->operation != request->operation || header->request != request->number ||
	    header->version != client->version || header->result != SKULD_OK)
		return -EPROTO;
	if (request->operation == SKULD_OP_SUBMIT) {
		const struct skuld_result *results = (const struct skuld_result *)body;

		if (header->count != request->events)
			return -EPROTO;
		for (uint32_t i = 0; i < header->count; i++) {
			if (results[i].index != i)
				return -EPROTO;
		}
		client->replayed += skuld__batch_scatter(request, results);
		client->requests++;
		client->events += request->events;
		request_finish(client, 0);
		return 0;
	}
	if (request->slices[0].call != NULL) {
		struct skuld__call *call = request->slices[0].call;

		if (request->operation == SKULD_OP_STATS && header->count < 1)
			return -EPROTO;
		records_deliver(call, header, body);
	}
	request_finish(client, 0);
	return 0;
}

/* A large request gets reply_timeout_ms plus its size at this rate to go
 * out: the server's default frame_min_rate_bytes (docs/OPERATIONS.md), so a
 * slow but steady uplink that the server waits for is not given up here. */
#define SEND_MIN_RATE_BYTES 16384u

/* Sends the in-flight request and waits for its reply. */
static int io_exchange(struct skuld_client *client)
{
	uint64_t deadline = skuld__now_ms() + client->options.reply_timeout_ms;
	int fd = client->fd;
	int rc;

	request_seal(client);
	deadline += (uint64_t)client->send_size * 1000u / SEND_MIN_RATE_BYTES;
	if (client->request.sends++ > 0 && client->request.operation == SKULD_OP_SUBMIT)
		client->resends++;
	pthread_mutex_unlock(&client->lock);
	rc = send_all(client, fd, client->send_buffer, client->send_size, deadline);
	if (rc == 0)
		rc = frame_receive(client, fd, client->receive_buffer, deadline);
	pthread_mutex_lock(&client->lock);
	if (rc == 0)
		rc = reply_apply(client);
	return rc;
}

static void connection_drop(struct skuld_client *client)
{
	tls_drop(client);
	if (client->fd >= 0)
		close(client->fd);
	client->fd = -1;
}

/* Back-off in ms before the next attempt: doubling, with jitter. */
static uint32_t backoff_next(struct skuld_client *client, uint32_t previous)
{
	uint32_t next = previous == 0 ? client->options.reconnect_min_ms : previous * 2;

	if (next > client->options.reconnect_max_ms)
		next = client->options.reconnect_max_ms;
	client->random_state =
	        client->random_state * 6364136223846793005ull + 1442695040888963407ull;
	return next / 2 + (uint32_t)((client->random_state >> 33) % (next / 2 + 1));
}

static void sleep_interruptible(struct skuld_client *client, uint32_t milliseconds)
{
	uint64_t deadline = skuld__now_ms() + milliseconds;
	struct timespec until = {.tv_sec = (time_t)(deadline / 1000u),
	                         .tv_nsec = (long)(deadline % 1000u) * 1000000L};

	while (!client->closing && skuld__now_ms() < deadline) {
		if (pthread_cond_timedwait(&client->io_wake, &client->lock, &until) == ETIMEDOUT)
			break;
	}
}

/* ---- The thread ----------------------------------------------------------- */

/* Handles a failed exchange: decides what happens to the request. */
static void exchange_failed(struct skuld_client *client, int rc, uint32_t *backoff)
{
	connection_drop(client);
	if (rc == SKULD_ERR_BUSY) {
		*backoff = backoff_next(client, *backoff);
	} else if (rc > 0) {
		/* Refused, so not applied: its callers learn why. */
		request_finish(client, rc);
	} else if (client->request.sends > 1) {
		/* Lost twice: do not hammer a server that keeps dropping it. */
		*backoff = backoff_next(client, *backoff);
	}
	state_set(client, SKULD_STATE_RECONNECTING, rc);
}

static void *io_main(void *argument)
{
	struct skuld_client *client = argument;
	uint32_t backoff = 0;
	sigset_t pipe_signal;

	/* OpenSSL writes to the socket with write(), not send(MSG_NOSIGNAL): a
	 * peer that closed must not kill the program with SIGPIPE. Blocked in
	 * this thread only, the signal stays pending here and write() says
	 * EPIPE. */
	sigemptyset(&pipe_signal);
	sigaddset(&pipe_signal, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_signal, NULL);
	pthread_mutex_lock(&client->lock);
	while (!client->closing) {
		int rc;

		if (!client->connect_wanted) {
			pthread_cond_wait(&client->io_wake, &client->lock);
			continue;
		}
		if (client->fd < 0) {
			if (backoff > 0)
				sleep_interruptible(client, backoff);
			if (client->closing)
				break;
			rc = io_connect(client);
			if (rc == 0) {
				/* backoff is reset by the first answered request */
			} else if (status_is_fatal(rc)) {
				fail_everything(client, rc);
				client->connect_wanted = 0;
				state_set(client, SKULD_STATE_DISCONNECTED, rc);
			} else if (rc != -ECANCELED) {
				backoff = backoff_next(client, backoff);
				state_set(client, SKULD_STATE_RECONNECTING, rc);
			}
			continue;
		}
		if (!client->request.active && !request_take(client)) {
			pthread_cond_wait(&client->io_wake, &client->lock);
			continue;
		}
		rc = io_exchange(client);
		if (rc == 0)
			backoff = 0;
		else if (rc != -ECANCELED)
			exchange_failed(client, rc, &backoff);
	}
	connection_drop(client);
	fail_everything(client, -ECANCELED);
	client->state = SKULD_STATE_DISCONNECTED;
	pthread_mutex_unlock(&client->lock);
	return NULL;
}

int skuld__io_start(struct skuld_client *client)
{
	int rc = pthread_create(&client->thread, NULL, io_main, client);

	if (rc != 0)
		return -rc;
	client->thread_started = 1;
	return 0;
}
