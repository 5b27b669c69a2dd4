/*
 * test_server_tls.c — the protocol over TLS (server/tls.c, client/io.c):
 * libskuld registers, submits and queries over TLS; a client that trusts
 * another CA does not connect (and never sends its token); a plaintext
 * client of a tls = required server is refused with ERR_TLS_REQUIRED while
 * the server goes on serving; what crosses the wire never holds the token
 * (recorded by a relay on 127.0.0.1, which does see it in plaintext); a
 * garbage handshake is refused, logged and counted; so is a ClientHello
 * that announces more than TLS_HELLO_BYTES (tls.h); client certificates
 * when the server asks for them.
 *
 * Certificates are made for each test with the openssl command line: a CA,
 * a server certificate for 127.0.0.1 and localhost signed by it, a second
 * CA nobody signed with, and a client certificate. The server's stderr goes
 * to a file the tests read.
 */
#include "server_harness.h"

#include <pthread.h>
#include <skuld/skuld.h>

#define SECRET     "tls-test-secret-7f3a9c1e5b2d4f60"
#define ITEM       1
#define STORE      1
#define CONNECT_MS 20000u     /* a wait for a condition; the server may run under valgrind */
#define RELAY_MAX  (1u << 20) /* bytes recorded per direction */

/* ---- Certificates and the server ---------------------------------------- */

static void run(const char *command)
{
	int status = system(command);
	cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "command failed (%d): %s", status, command);
}

/* CA, server and client certificates in dir (openssl command line). */
static void certificates_make(const char *dir)
{
	char command[2048];
	snprintf(command, sizeof(command),
	         "cd %s && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout ca.key -out ca.pem -days 2 -subj /CN=skuld-test-ca 2>/dev/null && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=skuld-other-ca "
	         "2>/dev/null && "
	         "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext && "
	         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null && "
	         "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	         "-out server.pem -days 2 -extfile server.ext 2>/dev/null && "
	         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout client.key -out client.csr -subj /CN=till-0001 2>/dev/null && "
	         "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	         "-out client.pem -days 2 2>/dev/null",
	         dir);
	run(command);
}

static void path_of(char *out, size_t size, const struct server *server, const char *name)
{
	snprintf(out, size, "%s/%s", server->dir, name);
}

/* A server with tls = mode (and more config lines), its stderr in
 * DIR/stderr.log. */
static void tls_server_start(struct server *server, const char *mode, const char *more)
{
	server_init(server, NULL);
	certificates_make(server->dir);
	FILE *file = fopen(server->config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "tls = %s\ntls_cert = %s/server.pem\ntls_key = %s/server.key\n"
	        "token.hq = " SECRET " admin\n%s\n",
	        mode, server->dir, server->dir, more != NULL ? more : "");
	fclose(file);
	cr_assert_eq(chmod(server->config, 0600), 0);
	char log[160];
	path_of(log, sizeof(log), server, "stderr.log");
	int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(log_fd, 0);
	int saved = dup(STDERR_FILENO);
	dup2(log_fd, STDERR_FILENO);
	server_start(server);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(log_fd);
}

/* Waits (bounded) until the server's stderr holds text; returns whether it
 * does. */
static bool log_has(const struct server *server, const char *text)
{
	char path[160];
	path_of(path, sizeof(path), server, "stderr.log");
	static char content[65536];
	for (int attempt = 0; attempt < 500; attempt++) {
		FILE *file = fopen(path, "r");
		cr_assert_not_null(file);
		size_t got = fread(content, 1, sizeof(content) - 1, file);
		fclose(file);
		content[got] = '\0';
		if (strstr(content, text) != NULL)
			return true;
		usleep(10000);
	}
	fprintf(stderr, "server log:\n%s\n", content);
	return false;
}

/* Kills the server and removes its directory, after checking that its
 * stderr holds no sanitizer report (the sanitizer build's server writes
 * them there, and a killed server has no exit status to show them). */
static void tls_server_fini(struct server *server)
{
	server_kill(server);
	char path[160];
	path_of(path, sizeof(path), server, "stderr.log");
	static char content[65536];
	FILE *file = fopen(path, "r");
	cr_assert_not_null(file);
	size_t got = fread(content, 1, sizeof(content) - 1, file);
	fclose(file);
	content[got] = '\0';
	cr_expect(strstr(content, "AddressSanitizer") == NULL &&
	                  strstr(content, "runtime error") == NULL,
	          "the server reported:\n%s", content);
	server_fini(server);
}

/* ---- libskuld ------------------------------------------------------------- */

/* A client of 127.0.0.1:port; ca is a file name in the server's directory
 * (NULL: plaintext); cert likewise (NULL: no client certificate). */
static skuld_client *client_make(const struct server *server, uint16_t port, const char *ca,
                                 const char *cert)
{
	char address[64], ca_path[160], cert_path[160], key_path[160];
	snprintf(address, sizeof(address), "127.0.0.1:%u", (unsigned)port);
	struct skuld_options options;
	skuld_options_init(&options);
	options.address = address;
	options.token = SECRET;
	options.client_name = "tls-test";
	options.connect_timeout_ms = 10000;
	options.reconnect_max_ms = 100;
	if (ca != NULL) {
		path_of(ca_path, sizeof(ca_path), server, ca);
		options.tls_ca_file = ca_path;
	}
	if (cert != NULL) {
		path_of(cert_path, sizeof(cert_path), server, cert);
		snprintf(key_path, sizeof(key_path), "%.*s.key", (int)(strlen(cert_path) - 4),
		         cert_path);
		options.tls_cert_file = cert_path;
		options.tls_key_file = key_path;
	}
	skuld_client *client = NULL;
	int rc = skuld_client_create(&client, &options);
	cr_assert_eq(rc, 0, "create: %s", skuld_strerror(rc));
	return client;
}

static void submit_ok(skuld_client *client, const struct skuld_event *events, uint32_t count)
{
	struct skuld_result results[8];
	cr_assert_leq(count, 8);
	int rc = skuld_submit(client, events, count, results, NULL, 5000);
	cr_assert_eq(rc, 0, "submit: %s", skuld_strerror(rc));
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: %s", i,
		             skuld_strerror(results[i].status));
}

/* The whole round: REGISTER (connect), catalog and a delivery, a sale, the
 * level read back. run tells the keys apart between rounds. */
static void ledger_round(skuld_client *client, const char *run_name, bool catalog)
{
	int rc = skuld_client_connect(client, CONNECT_MS);
	cr_assert_eq(rc, 0, "connect: %s", skuld_strerror(rc));
	struct skuld_event events[3];
	if (catalog) {
		cr_assert_eq(skuld_event_item_define(&events[0],
		                                     skuld_key("tls", "catalog", 1, "item"), ITEM,
		                                     "ITEM-1", 0),
		             0);
		cr_assert_eq(skuld_event_location_define(&events[1],
		                                         skuld_key("tls", "catalog", 2, "location"),
		                                         STORE, "STORE-1"),
		             0);
		submit_ok(client, events, 2);
	}
	struct skuld_level_record before;
	cr_assert_eq(skuld_query_level(client, ITEM, STORE, &before, 5000), 0);
	skuld_event_receive(&events[0], skuld_key(run_name, "delivery", 1, "receive"), ITEM, STORE,
	                    10);
	skuld_event_sale(&events[1], skuld_key(run_name, "receipt", 1, "sale"), ITEM, STORE, 3);
	submit_ok(client, events, 2);
	struct skuld_level_record after;
	rc = skuld_query_level(client, ITEM, STORE, &after, 5000);
	cr_assert_eq(rc, 0, "query: %s", skuld_strerror(rc));
	cr_assert_eq(after.status, SKULD_OK);
	cr_assert_eq(after.on_hand, before.on_hand + 7);
}

/* Starts connecting and waits (bounded) for the first attempt to fail;
 * returns its error. The client never connected. */
static int connect_error(skuld_client *client)
{
	struct skuld_client_info info;
	skuld_client_connect(client, 1);
	for (int step = 0; step < 2000; step++) {
		skuld_client_info(client, &info);
		if (info.last_error != 0 || info.state == SKULD_STATE_CONNECTED)
			break;
		usleep(10000);
	}
	cr_assert_neq(info.state, SKULD_STATE_CONNECTED);
	cr_assert_eq(info.connects, 0);
	return info.last_error;
}

/* ---- A relay that records the bytes ------------------------------------- */

struct relay {
	int listen_fd;
	uint16_t port;
	uint16_t target;
	uint8_t *seen[2]; /* 0: client to server, 1: server to client */
	size_t seen_size[2];
	pthread_t thread;
};

static void relay_record(struct relay *relay, int direction, const uint8_t *bytes, size_t size)
{
	size_t room = RELAY_MAX - relay->seen_size[direction];
	size_t take = size < room ? size : room;
	memcpy(relay->seen[direction] + relay->seen_size[direction], bytes, take);
	relay->seen_size[direction] += take;
}

/* One connection through, until either side closes (at most 30 s). */
static void *relay_main(void *argument)
{
	struct relay *relay = argument;
	struct pollfd accept_poll = {.fd = relay->listen_fd, .events = POLLIN};
	if (poll(&accept_poll, 1, 10000) != 1)
		return NULL;
	int fds[2] = {accept(relay->listen_fd, NULL, NULL), socket_connect(relay->target)};
	uint8_t buffer[16384];
	uint64_t deadline = harness_now_ms() + 30000;
	while (fds[0] >= 0 && fds[1] >= 0 && harness_now_ms() < deadline) {
		struct pollfd polls[2] = {{.fd = fds[0], .events = POLLIN},
		                          {.fd = fds[1], .events = POLLIN}};
		if (poll(polls, 2, 100) <= 0)
			continue;
		bool closed = false;
		for (int side = 0; side < 2 && !closed; side++) {
			if (polls[side].revents == 0)
				continue;
			ssize_t got = recv(fds[side], buffer, sizeof(buffer), 0);
			if (got <= 0 || write_all(fds[1 - side], buffer, (size_t)got) != 0) {
				closed = true;
				break;
			}
			relay_record(relay, side, buffer, (size_t)got);
		}
		if (closed)
			break;
	}
	for (int side = 0; side < 2; side++) {
		if (fds[side] >= 0)
			close(fds[side]);
	}
	return NULL;
}

static void relay_start(struct relay *relay, uint16_t target)
{
	memset(relay, 0, sizeof(*relay));
	relay->target = target;
	relay->seen[0] = malloc(RELAY_MAX);
	relay->seen[1] = malloc(RELAY_MAX);
	cr_assert(relay->seen[0] != NULL && relay->seen[1] != NULL);
	relay->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in address = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
	socklen_t length = sizeof(address);
	cr_assert_eq(bind(relay->listen_fd, (struct sockaddr *)&address, sizeof(address)), 0);
	cr_assert_eq(listen(relay->listen_fd, 4), 0);
	cr_assert_eq(getsockname(relay->listen_fd, (struct sockaddr *)&address, &length), 0);
	relay->port = ntohs(address.sin_port);
	cr_assert_eq(pthread_create(&relay->thread, NULL, relay_main, relay), 0);
}

/* Waits for the relay's connection to end (the client closed). */
static void relay_finish(struct relay *relay)
{
	pthread_join(relay->thread, NULL);
	close(relay->listen_fd);
}

static void relay_free(struct relay *relay)
{
	free(relay->seen[0]);
	free(relay->seen[1]);
}

static bool relay_saw(const struct relay *relay, const char *text)
{
	for (int side = 0; side < 2; side++) {
		if (memmem(relay->seen[side], relay->seen_size[side], text, strlen(text)) != NULL)
			return true;
	}
	return false;
}

/* ---- Tests ---------------------------------------------------------------- */

Test(tls, libskuld_registers_submits_and_queries_over_tls)
{
	struct server server;
	tls_server_start(&server, "required", NULL);
	cr_assert(log_has(&server, "tls = required"));
	skuld_client *client = client_make(&server, server.port, "ca.pem", NULL);
	ledger_round(client, "first", true);
	struct skuld_client_info info;
	skuld_client_info(client, &info);
	cr_assert_eq(info.connects, 1);
	cr_assert_eq(info.requests, 2);
	skuld_client_close(client);
	/* A second client, a second session, the same ledger. */
	client = client_make(&server, server.port, "ca.pem", NULL);
	ledger_round(client, "second", false);
	skuld_client_close(client);
	cr_assert_eq(server_stop(&server), 0);
	tls_server_fini(&server);
}

Test(tls, a_client_trusting_another_ca_does_not_connect)
{
	struct server server;
	tls_server_start(&server, "required", NULL);
	struct relay relay;
	relay_start(&relay, server.port);
	skuld_client *wrong = client_make(&server, relay.port, "other-ca.pem", NULL);
	int rc = connect_error(wrong);
	cr_assert_eq(rc, -EKEYREJECTED, "connect: %d %s", rc, skuld_strerror(rc));
	skuld_client_close(wrong);
	relay_finish(&relay);
	/* It sent a ClientHello and never its token. */
	cr_assert_gt(relay.seen_size[0], 0);
	cr_assert_eq(relay.seen[0][0], 0x16);
	cr_assert(!relay_saw(&relay, SECRET));
	relay_free(&relay);
	/* The server name is checked too: this certificate is not for "example.org". */
	char address[64], ca_path[160];
	snprintf(address, sizeof(address), "127.0.0.1:%u", (unsigned)server.port);
	path_of(ca_path, sizeof(ca_path), &server, "ca.pem");
	struct skuld_options options;
	skuld_options_init(&options);
	options.address = address;
	options.token = SECRET;
	options.tls_ca_file = ca_path;
	options.tls_server_name = "example.org";
	options.connect_timeout_ms = 10000;
	skuld_client *misnamed = NULL;
	cr_assert_eq(skuld_client_create(&misnamed, &options), 0);
	cr_assert_eq(connect_error(misnamed), -EKEYREJECTED);
	skuld_client_close(misnamed);
	/* A client that trusts the right CA, under the certificate's DNS name. */
	options.tls_server_name = "localhost";
	skuld_client *right = NULL;
	cr_assert_eq(skuld_client_create(&right, &options), 0);
	ledger_round(right, "right", true);
	skuld_client_close(right);
	tls_server_fini(&server);
}

Test(tls, plaintext_is_refused_when_tls_is_required_and_the_server_goes_on)
{
	struct server server;
	tls_server_start(&server, "required", NULL);
	/* libskuld without TLS: refused with its own status, and it stops. */
	skuld_client *plain = client_make(&server, server.port, NULL, NULL);
	int rc = skuld_client_connect(plain, CONNECT_MS);
	cr_assert_eq(rc, SKULD_ERR_TLS_REQUIRED, "connect: %d %s", rc, skuld_strerror(rc));
	cr_assert_eq(skuld_client_state(plain), SKULD_STATE_DISCONNECTED);
	skuld_client_close(plain);
	cr_assert(
	        log_has(&server, "plaintext connection refused (tls = required) from 127.0.0.1:"));
	cr_assert(log_has(&server, "its REGISTER token crossed the network in clear text"));
	/* Refusals are logged at most once a second: the next one gets its line. */
	usleep(1100 * 1000);
	/* A raw frame: the ERROR answers it in its own terms, then EOF. */
	int fd = socket_connect(server.port);
	cr_assert_geq(fd, 0);
	uint8_t frame[SKULD_HEADER_SIZE];
	struct skuld_header *header = (struct skuld_header *)frame;
	memset(frame, 0, sizeof(frame));
	header->version = 1;
	header->operation = SKULD_OP_PING;
	header->request = 7;
	header->client = (skuld_u128){.lo = 42, .hi = 0};
	proto_header_seal(header, NULL);
	cr_assert_eq(write_all(fd, frame, sizeof(frame)), 0);
	uint8_t reply[SKULD_HEADER_SIZE + 64];
	cr_assert_eq(read_all(fd, reply, sizeof(reply)), 0);
	const struct skuld_header *answer = (const struct skuld_header *)reply;
	cr_assert_eq(answer->operation, SKULD_OP_ERROR);
	cr_assert_eq(answer->result, SKULD_ERR_TLS_REQUIRED);
	cr_assert_eq(answer->request, 7);
	char byte;
	cr_assert_eq(recv(fd, &byte, 1, 0), 0, "the server closes after the ERROR");
	close(fd);
	/* And serves TLS clients as before. */
	skuld_client *client = client_make(&server, server.port, "ca.pem", NULL);
	ledger_round(client, "after", true);
	skuld_client_close(client);
	cr_assert(log_has(&server, "2 plaintext connections refused"));
	tls_server_fini(&server);
}

Test(tls, a_client_certificate_alone_turns_tls_on)
{
	struct server server;
	/* tls = on: a plaintext client would be served, and its token seen. */
	tls_server_start(&server, "on", NULL);
	struct relay relay;
	relay_start(&relay, server.port);
	/* tls_cert_file and tls_key_file, no CA file: TLS with the system's
	 * CAs, which do not know the test CA. */
	skuld_client *client = client_make(&server, relay.port, NULL, "client.pem");
	int rc = connect_error(client);
	cr_assert_eq(rc, -EKEYREJECTED, "connect: %d %s", rc, skuld_strerror(rc));
	skuld_client_close(client);
	relay_finish(&relay);
	cr_assert_gt(relay.seen_size[0], 0);
	cr_assert_eq(relay.seen[0][0], 0x16, "a TLS handshake record first");
	cr_assert(!relay_saw(&relay, SECRET), "the token crossed in clear text");
	relay_free(&relay);
	/* A key file without its certificate is refused at creation. */
	char address[64], key_path[160];
	snprintf(address, sizeof(address), "127.0.0.1:%u", (unsigned)server.port);
	path_of(key_path, sizeof(key_path), &server, "client.key");
	struct skuld_options options;
	skuld_options_init(&options);
	options.address = address;
	options.token = SECRET;
	options.tls_key_file = key_path;
	skuld_client *keyed = NULL;
	cr_assert_eq(skuld_client_create(&keyed, &options), -EINVAL);
	cr_assert_null(keyed);
	tls_server_fini(&server);
}

Test(tls, the_token_never_crosses_the_wire_in_clear)
{
	struct server server;
	/* tls = on: TLS and plaintext on one port, so the relay can show it
	 * records a plaintext token when there is one. */
	tls_server_start(&server, "on", NULL);
	struct relay relay;
	relay_start(&relay, server.port);
	skuld_client *client = client_make(&server, relay.port, "ca.pem", NULL);
	ledger_round(client, "wire", true);
	skuld_client_close(client);
	relay_finish(&relay);
	cr_assert_gt(relay.seen_size[0], 500, "the relay carried the session");
	cr_assert_gt(relay.seen_size[1], 500);
	cr_assert_eq(relay.seen[0][0], 0x16, "a TLS handshake record first");
	cr_assert(!relay_saw(&relay, SECRET), "the token crossed in clear text");
	cr_assert(!relay_saw(&relay, "ITEM-1"), "catalog text crossed in clear text");
	relay_free(&relay);
	/* The same relay with a plaintext client does see it. */
	relay_start(&relay, server.port);
	client = client_make(&server, relay.port, NULL, NULL);
	ledger_round(client, "plain", false);
	skuld_client_close(client);
	relay_finish(&relay);
	cr_assert(relay_saw(&relay, SECRET), "the relay records what crosses");
	relay_free(&relay);
	tls_server_fini(&server);
}

Test(tls, a_garbage_handshake_is_refused_logged_and_counted)
{
	struct server server;
	tls_server_start(&server, "required", NULL);
	/* A handshake record header, then bytes that are no ClientHello. */
	int fd = socket_connect(server.port);
	cr_assert_geq(fd, 0);
	uint8_t garbage[5 + 64] = {0x16, 0x03, 0x01, 0x00, 64};
	for (size_t i = 5; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 37 + 11);
	cr_assert_eq(write_all(fd, garbage, sizeof(garbage)), 0);
	/* At most an alert comes back, then EOF (bounded by the socket's 10 s). */
	uint8_t answer[256];
	ssize_t got = 0, total = 0;
	while ((got = recv(fd, answer, sizeof(answer), 0)) > 0)
		total += got;
	cr_assert_eq(got, 0, "closed by the server, not timed out");
	cr_assert_lt(total, 64, "no more than an alert");
	if (total > 0)
		cr_assert_eq(answer[0], 0x15, "a TLS alert record");
	close(fd);
	cr_assert(log_has(&server, "tls: handshake failed from 127.0.0.1:"));
	cr_assert(log_has(&server, "(so far: 1 TLS failures, 0 plaintext connections refused"));
	/* The server goes on. */
	skuld_client *client = client_make(&server, server.port, "ca.pem", NULL);
	ledger_round(client, "after-garbage", true);
	skuld_client_close(client);
	cr_assert_eq(server_stop(&server), 0);
	tls_server_fini(&server);
}

/* Sends bytes on a new connection and reads until the server closes it;
 * returns how many bytes came back (into answer). */
static size_t exchange_until_closed(const struct server *server, const uint8_t *bytes, size_t size,
                                    uint8_t *answer, size_t answer_size)
{
	int fd = socket_connect(server->port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write_all(fd, bytes, size), 0);
	size_t total = 0;
	ssize_t got = 0;
	while (total < answer_size && (got = recv(fd, answer + total, answer_size - total, 0)) > 0)
		total += (size_t)got;
	cr_assert_eq(got, 0, "closed by the server, not timed out");
	close(fd);
	return total;
}

Test(tls, an_oversized_client_hello_is_refused_before_openssl_reads_it)
{
	struct server server;
	tls_server_start(&server, "required", NULL);
	static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x2f};
	uint8_t answer[256];
	/* A ClientHello that announces 128 KiB (OpenSSL's own limit), in one
	 * record header, then only a little of it. */
	uint8_t whole[5 + 4 + 32] = {0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x02, 0x00, 0x00};
	size_t got = exchange_until_closed(&server, whole, sizeof(whole), answer, sizeof(answer));
	cr_assert_eq(got, sizeof(alert), "only the alert comes back (%zu bytes)", got);
	cr_assert_arr_eq(answer, alert, sizeof(alert));
	cr_assert(log_has(&server, "ClientHello announces 131072 bytes (at most 16384)"));
	cr_assert(log_has(&server, "(so far: 1 TLS failures, 0 plaintext connections refused"));
	/* Its handshake header split over records of one and three bytes,
	 * announcing one byte more than the bound (a second later: the server
	 * logs one refusal a second). */
	usleep(1100000);
	uint8_t split[] = {0x16, 0x03, 0x01, 0x00, 0x01, 0x01, 0x16, 0x03, 0x01, 0x00, 0x03,
	                   0x00, 0x40, 0x01, 0x16, 0x03, 0x01, 0x00, 0x02, 0x03, 0x03};
	got = exchange_until_closed(&server, split, sizeof(split), answer, sizeof(answer));
	cr_assert_eq(got, sizeof(alert), "only the alert comes back (%zu bytes)", got);
	cr_assert_arr_eq(answer, alert, sizeof(alert));
	cr_assert(log_has(&server, "ClientHello announces 16385 bytes (at most 16384)"));
	cr_assert(log_has(&server, "(so far: 2 TLS failures, 0 plaintext connections refused"));
	/* The server goes on serving real ClientHellos. */
	skuld_client *client = client_make(&server, server.port, "ca.pem", NULL);
	ledger_round(client, "after-oversized-hello", true);
	skuld_client_close(client);
	cr_assert_eq(server_stop(&server), 0);
	tls_server_fini(&server);
}

Test(tls, client_certificates_when_the_server_asks)
{
	struct server server;
	char more[256];
	/* The certificates' directory is known once the server made it: add
	 * tls_client_ca then, and restart. */
	tls_server_start(&server, "required", NULL);
	FILE *file = fopen(server.config, "a");
	cr_assert_not_null(file);
	snprintf(more, sizeof(more), "tls_client_ca = %s/ca.pem\n", server.dir);
	fputs(more, file);
	fclose(file);
	cr_assert_eq(server_stop(&server), 0);
	char log[160];
	path_of(log, sizeof(log), &server, "stderr.log");
	int log_fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
	cr_assert_geq(log_fd, 0);
	int saved = dup(STDERR_FILENO);
	dup2(log_fd, STDERR_FILENO);
	server_start(&server);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(log_fd);
	cr_assert(log_has(&server, "client certificates from"));
	skuld_client *anonymous = client_make(&server, server.port, "ca.pem", NULL);
	cr_assert_neq(connect_error(anonymous), 0);
	skuld_client_close(anonymous);
	cr_assert(log_has(&server, "tls: handshake failed from 127.0.0.1:"));
	skuld_client *till = client_make(&server, server.port, "ca.pem", "client.pem");
	ledger_round(till, "mutual", true);
	skuld_client_close(till);
	tls_server_fini(&server);
}

Test(tls, skuldctl_speaks_tls_with_a_ca_file)
{
	struct server server;
	tls_server_start(&server, "required", NULL);
	char command[1024];
	/* --tls-ca on the command line. */
	snprintf(command, sizeof(command),
	         "SKULD_TLS_CA= %s/client/skuldctl --server 127.0.0.1:%u --token %s --tls-ca "
	         "%s/ca.pem "
	         "define-location STORE-9 > %s/ctl.out 2>&1",
	         SKULD_BINARY_DIR, (unsigned)server.port, SECRET, server.dir, server.dir);
	run(command);
	/* Without a CA the server refuses it, and skuldctl says why. */
	snprintf(command, sizeof(command),
	         "SKULD_TLS_CA= %s/client/skuldctl --server 127.0.0.1:%u --token %s stats "
	         "> %s/plain.out 2>&1",
	         SKULD_BINARY_DIR, (unsigned)server.port, SECRET, server.dir);
	int status = system(command);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "a plaintext skuldctl was served");
	char path[160], text[1024] = "";
	path_of(path, sizeof(path), &server, "plain.out");
	FILE *file = fopen(path, "r");
	cr_assert_not_null(file);
	size_t got = fread(text, 1, sizeof(text) - 1, file);
	text[got] = '\0';
	fclose(file);
	cr_assert(strstr(text, "TLS") != NULL, "skuldctl said: %s", text);
	/* $SKULD_TLS_CA and $SKULD_TLS_SERVER_NAME (the certificate's DNS name). */
	snprintf(command, sizeof(command),
	         "SKULD_TLS_CA=%s/ca.pem SKULD_TLS_SERVER_NAME=localhost %s/client/skuldctl "
	         "--server 127.0.0.1:%u --token %s stats > %s/stats.out 2>&1",
	         server.dir, SKULD_BINARY_DIR, (unsigned)server.port, SECRET, server.dir);
	run(command);
	tls_server_fini(&server);
}

Test(tls, the_largest_frames_cross_whole)
{
	struct server server;
	tls_server_start(&server, "required", NULL);
	skuld_client *client = client_make(&server, server.port, "ca.pem", NULL);
	ledger_round(client, "small", true);
	/* A 1 MiB request (many TLS records in) and a 256 KiB reply (many
	 * records out, more than the session's output buffer), three times. */
	uint32_t count = SKULD_EVENTS_PER_FRAME_MAX;
	struct skuld_event *events = calloc(count, sizeof(*events));
	struct skuld_result *results = calloc(count, sizeof(*results));
	cr_assert(events != NULL && results != NULL);
	struct skuld_level_record before;
	cr_assert_eq(skuld_query_level(client, ITEM, STORE, &before, 5000), 0);
	for (uint32_t round = 0; round < 3; round++) {
		char document[32];
		snprintf(document, sizeof(document), "bulk-%u", round);
		for (uint32_t i = 0; i < count; i++)
			skuld_event_receive(&events[i], skuld_key("tls", document, i, "receive"),
			                    ITEM, STORE, 1);
		int rc = skuld_submit(client, events, count, results, NULL, 20000);
		cr_assert_eq(rc, 0, "submit: %s", skuld_strerror(rc));
		for (uint32_t i = 0; i < count; i++) {
			cr_assert_eq(results[i].index, i);
			cr_assert_eq(results[i].status, SKULD_OK);
		}
	}
	struct skuld_level_record after;
	cr_assert_eq(skuld_query_level(client, ITEM, STORE, &after, 5000), 0);
	cr_assert_eq(after.on_hand, before.on_hand + 3 * (int64_t)count);
	free(events);
	free(results);
	skuld_client_close(client);
	cr_assert_eq(server_stop(&server), 0);
	tls_server_fini(&server);
}

Test(tls, a_tls_configuration_that_cannot_work_is_refused_at_start)
{
	struct server server;
	server_init(&server, NULL);
	certificates_make(server.dir);
	const char *configs[] = {
	        "tls = on\n",                                  /* no certificate */
	        "tls = sometimes\ntls_cert = %s/server.pem\n", /* no such mode */
	        "tls = required\ntls_cert = %s/server.pem\ntls_key = %s/missing.key\n",
	        "tls = required\ntls_cert = %s/server.pem\ntls_key = %s/ca.key\n", /* not its key */
	};
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		FILE *file = fopen(server.config, "w");
		cr_assert_not_null(file);
		fprintf(file, configs[i], server.dir, server.dir);
		fclose(file);
		char command[1024];
		snprintf(command, sizeof(command),
		         "%s/server/skuld --listen 127.0.0.1:0 --data-dir %s/data --config %s "
		         "> %s/out.log 2> %s/err.log",
		         SKULD_BINARY_DIR, server.dir, server.config, server.dir, server.dir);
		int status = system(command);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "config %zu: status %d", i,
		          status);
		char path[160], text[2048] = "";
		path_of(path, sizeof(path), &server, "err.log");
		file = fopen(path, "r");
		cr_assert_not_null(file);
		size_t got = fread(text, 1, sizeof(text) - 1, file);
		text[got] = '\0';
		fclose(file);
		cr_assert(strstr(text, "tls") != NULL, "config %zu: %s", i, text);
	}
	remove_tree(server.dir);
}
