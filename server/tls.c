/*
 * tls.c — TLS sessions over a BIO pair (the rules are in tls.h). The only
 * server file that includes libssl.
 *
 * The session's SSL reads from and writes to one end of a BIO pair; the
 * loop's side (network) is the other end. Ciphertext written to network is
 * what the SSL reads (TLS_IN_BYTES buffer); ciphertext the SSL writes is
 * read from network in place with BIO_nread0 / BIO_nread (TLS_OUT_BYTES
 * buffer), so a send can point at it until tls_sent.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "skuld_assert.h"

struct tls_context {
	SSL_CTX *ctx;
};

/* The record and handshake headers of the handshake's plaintext, read as
 * the bytes arrive, before OpenSSL sees them (hello_check). */
struct hello_scan {
	uint8_t record[5];     /* record header being read */
	uint8_t record_have;   /* of its 5 bytes, read */
	uint8_t type;          /* content type of the current record */
	uint16_t record_left;  /* payload bytes of the current record not yet read */
	uint8_t message[4];    /* handshake message header being read */
	uint8_t message_have;  /* of its 4 bytes, read */
	uint32_t message_left; /* body bytes of the current handshake message not yet read */
	bool done;             /* the rest is encrypted: nothing more to check */
};

struct tls_session {
	SSL *ssl;
	BIO *network;        /* the loop's end of the BIO pair */
	uint32_t plain_have; /* decrypted bytes in plain */
	uint32_t plain_used; /* of those, taken */
	struct hello_scan hello;
	bool failed;
	char failure[120];
	uint8_t plain[TLS_PLAIN_BYTES];
};

/* OpenSSL's last queued reason, as text (clears the queue). */
static void error_text(char *error, size_t error_size, const char *what)
{
	unsigned long code = ERR_get_error();
	char reason[160] = "unknown reason";
	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(error, error_size, "%s: %s", what, reason);
}

int tls_context_create(struct tls_context **context, const struct tls_settings *settings,
                       char *error, size_t error_size)
{
	*context = NULL;
	struct tls_context *made = calloc(1, sizeof(*made));
	if (made == NULL) {
		snprintf(error, error_size, "out of memory");
		return -ENOMEM;
	}
	ERR_clear_error();
	made->ctx = SSL_CTX_new(TLS_server_method());
	const char *failed = NULL;
	if (made->ctx == NULL)
		failed = "SSL_CTX_new";
	else if (SSL_CTX_set_min_proto_version(made->ctx, TLS1_2_VERSION) != 1)
		failed = "TLS 1.2 minimum";
	else if (SSL_CTX_use_certificate_chain_file(made->ctx, settings->cert_file) != 1)
		failed = settings->cert_file;
	else if (SSL_CTX_use_PrivateKey_file(made->ctx, settings->key_file, SSL_FILETYPE_PEM) != 1)
		failed = settings->key_file;
	else if (SSL_CTX_check_private_key(made->ctx) != 1)
		failed = "tls_key does not match tls_cert";
	if (failed == NULL && settings->client_ca_file != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(settings->client_ca_file);
		if (names == NULL ||
		    SSL_CTX_load_verify_locations(made->ctx, settings->client_ca_file, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			failed = settings->client_ca_file;
		} else {
			SSL_CTX_set_client_CA_list(made->ctx, names);
			SSL_CTX_set_verify(made->ctx,
			                   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		}
	}
	if (failed != NULL) {
		error_text(error, error_size, failed);
		tls_context_destroy(made);
		return -EINVAL;
	}
	/* Partial writes: tls_write hands over one record at a time. Moving
	 * buffer: the reply ring may offer the same bytes at another span
	 * length. Released buffers: an idle session holds no record buffers. */
	SSL_CTX_set_mode(made->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                                    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                                    SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(made->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                                       SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	/* No resumption: a till connects once and stays; nothing is sent after
	 * the handshake that the client did not ask for. */
	SSL_CTX_set_num_tickets(made->ctx, 0);
	/* A client certificate chain larger than this fails the handshake. */
	SSL_CTX_set_max_cert_list(made->ctx, TLS_PEER_CHAIN);
	SSL_CTX_set_session_cache_mode(made->ctx, SSL_SESS_CACHE_OFF);
	*context = made;
	return 0;
}

void tls_context_destroy(struct tls_context *context)
{
	if (context == NULL)
		return;
	SSL_CTX_free(context->ctx);
	free(context);
}

int tls_session_create(struct tls_context *context, struct tls_session **session)
{
	*session = NULL;
	struct tls_session *made = malloc(sizeof(*made));
	if (made == NULL)
		return -ENOMEM;
	memset(made, 0, offsetof(struct tls_session, plain));
	BIO *internal = NULL;
	made->ssl = SSL_new(context->ctx);
	/* internal's buffer holds what the SSL writes (ciphertext out);
	 * network's what the loop writes (ciphertext in). */
	if (made->ssl == NULL ||
	    BIO_new_bio_pair(&internal, TLS_OUT_BYTES, &made->network, TLS_IN_BYTES) != 1) {
		SSL_free(made->ssl);
		free(made);
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set_bio(made->ssl, internal, internal); /* the SSL owns internal now */
	SSL_set_accept_state(made->ssl);
	*session = made;
	return 0;
}

void tls_session_destroy(struct tls_session *session)
{
	if (session == NULL)
		return;
	SSL_free(session->ssl);
	BIO_free(session->network);
	free(session);
}

/* The handshake header of a plaintext handshake message was read: a
 * ClientHello (the first, or the second after a HelloRetryRequest) may
 * announce at most TLS_HELLO_BYTES. OpenSSL would otherwise grow its
 * message buffer to the announced length (up to 128 KiB) before the bytes
 * arrive. Returns false when the message is refused. */
static bool hello_message(struct tls_session *session)
{
	const uint8_t *message = session->hello.message;
	uint32_t length = (uint32_t)message[1] << 16 | (uint32_t)message[2] << 8 | message[3];
	if (message[0] == TLS_CLIENT_HELLO && length > TLS_HELLO_BYTES) {
		snprintf(session->failure, sizeof(session->failure),
		         "handshake: ClientHello announces %u bytes (at most %u)", length,
		         TLS_HELLO_BYTES);
		return false;
	}
	session->hello.message_left = length;
	session->hello.message_have = 0;
	return true;
}

/* A record header was read (record headers are never encrypted). Only
 * handshake records' payloads are read further: in TLS 1.3 they are all
 * plaintext (its encrypted handshake travels as application data); in TLS
 * 1.2 everything after the client's ChangeCipherSpec is encrypted, so the
 * scan stops there. */
static void hello_record(struct tls_session *session)
{
	struct hello_scan *hello = &session->hello;
	hello->type = hello->record[0];
	hello->record_left = (uint16_t)(hello->record[3] << 8 | hello->record[4]);
	hello->record_have = 0;
	if (hello->type == TLS_CHANGE_CIPHER_SPEC && SSL_version(session->ssl) == TLS1_2_VERSION)
		hello->done = true;
}

/* Reads the record and handshake headers in received ciphertext until the
 * handshake is encrypted or done. Returns false when a ClientHello is
 * refused. */
static bool hello_check(struct tls_session *session, const uint8_t *data, size_t size)
{
	struct hello_scan *hello = &session->hello;
	size_t at = 0;
	while (at < size && !hello->done) {
		if (hello->record_left == 0) {
			hello->record[hello->record_have++] = data[at++];
			if (hello->record_have == sizeof(hello->record))
				hello_record(session);
			continue;
		}
		size_t left = size - at;
		if (hello->type != TLS_CONTENT_TYPE || hello->message_left > 0) {
			size_t skip = hello->record_left < left ? hello->record_left : left;
			if (hello->type == TLS_CONTENT_TYPE && hello->message_left < skip)
				skip = hello->message_left;
			hello->record_left -= (uint16_t)skip;
			if (hello->type == TLS_CONTENT_TYPE)
				hello->message_left -= (uint32_t)skip;
			at += skip;
			continue;
		}
		hello->message[hello->message_have++] = data[at++];
		hello->record_left--;
		if (hello->message_have == sizeof(hello->message) && !hello_message(session))
			return false;
	}
	return true;
}

/* Fails the session before OpenSSL saw the offending bytes; the fatal
 * alert goes out in tls_send_span like OpenSSL's own. */
static void hello_refuse(struct tls_session *session)
{
	/* alert record, TLS 1.2 record version: fatal, illegal_parameter */
	static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x2f};
	session->failed = true;
	BIO *out = SSL_get_wbio(session->ssl);
	if (BIO_ctrl_get_write_guarantee(out) >= sizeof(alert))
		(void)BIO_write(out, alert, (int)sizeof(alert));
}

size_t tls_feed(struct tls_session *session, const uint8_t *data, size_t size)
{
	if (session->failed || size == 0)
		return 0;
	size_t room = BIO_ctrl_get_write_guarantee(session->network);
	size_t take = size < room ? size : room;
	if (take == 0)
		return 0;
	if (!session->hello.done && SSL_is_init_finished(session->ssl))
		session->hello.done = true;
	if (!session->hello.done && !hello_check(session, data, take)) {
		hello_refuse(session);
		return size; /* discarded: the session takes nothing more */
	}
	int written = BIO_write(session->network, data, (int)take);
	return written > 0 ? (size_t)written : 0;
}

static ssize_t session_fail(struct tls_session *session, const char *what)
{
	session->failed = true;
	error_text(session->failure, sizeof(session->failure), what);
	return -EPROTO;
}

ssize_t tls_input_span(struct tls_session *session, const uint8_t **data)
{
	if (session->failed)
		return -EPROTO;
	if (session->plain_used < session->plain_have) {
		*data = session->plain + session->plain_used;
		return (ssize_t)(session->plain_have - session->plain_used);
	}
	session->plain_have = session->plain_used = 0;
	ERR_clear_error();
	int got = SSL_read(session->ssl, session->plain, (int)sizeof(session->plain));
	if (got > 0) {
		session->plain_have = (uint32_t)got;
		*data = session->plain;
		return got;
	}
	switch (SSL_get_error(session->ssl, got)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return -ESHUTDOWN;
	default:
		return session_fail(session, tls_established(session) ? "record" : "handshake");
	}
}

void tls_input_take(struct tls_session *session, size_t count)
{
	SKULD_ASSERT(session->plain_used + count <= session->plain_have);
	session->plain_used += (uint32_t)count;
}

ssize_t tls_write(struct tls_session *session, const uint8_t *data, size_t size)
{
	if (session->failed)
		return -EPROTO;
	if (size == 0 || !SSL_is_init_finished(session->ssl))
		return 0;
	size_t room = BIO_ctrl_get_write_guarantee(SSL_get_wbio(session->ssl));
	size_t chunk = size < TLS_PLAIN_BYTES ? size : TLS_PLAIN_BYTES;
	if (room < TLS_RECORD_ROOM)
		return 0;
	ERR_clear_error();
	int written = SSL_write(session->ssl, data, (int)chunk);
	if (written > 0)
		return written;
	int reason = SSL_get_error(session->ssl, written);
	if (reason == SSL_ERROR_WANT_WRITE || reason == SSL_ERROR_WANT_READ)
		return 0;
	return session_fail(session, "write");
}

size_t tls_send_span(struct tls_session *session, const uint8_t **data)
{
	char *bytes = NULL;
	int available = BIO_nread0(session->network, &bytes);
	if (available <= 0)
		return 0;
	*data = (const uint8_t *)bytes;
	return (size_t)available;
}

void tls_sent(struct tls_session *session, size_t count)
{
	char *bytes = NULL;
	int consumed = BIO_nread(session->network, &bytes, (int)count);
	SKULD_ASSERT(consumed == (int)count);
}

void tls_shutdown(struct tls_session *session)
{
	if (session->failed || !SSL_is_init_finished(session->ssl))
		return;
	ERR_clear_error();
	if (BIO_ctrl_get_write_guarantee(SSL_get_wbio(session->ssl)) >= 64)
		SSL_shutdown(session->ssl);
	ERR_clear_error();
}

bool tls_established(const struct tls_session *session)
{
	return SSL_is_init_finished(session->ssl) != 0;
}

const char *tls_failure(const struct tls_session *session)
{
	return session->failed ? session->failure : "";
}

const char *tls_description(const struct tls_session *session, char *buffer, size_t size)
{
	snprintf(buffer, size, "%s %s", SSL_get_version(session->ssl),
	         SSL_get_cipher_name(session->ssl));
	return buffer;
}
