/*
 * tls.h — TLS for the binary protocol, over memory: OpenSSL's libssl with
 * no socket and no I/O of its own. server/loop.c moves the bytes.
 *
 * Owns: the server's TLS context (certificate, key, optional client CA) and
 * one TLS session per connection that speaks TLS. A session sits between
 * the socket and the connection's frame assembly (conn.h):
 *
 *     socket --recv--> tls_feed --> [ciphertext in] --> tls_input_span --> conn_input
 *     conn_send_span --> tls_write --> [ciphertext out] --> tls_send_span --send--> socket
 *
 * Handshake bytes flow the same way: tls_input_span drives the handshake,
 * whose replies appear in tls_send_span.
 *
 * Invariants (the memory bound of docs/OPERATIONS.md, "TLS"):
 *   - The two ciphertext buffers are an OpenSSL BIO pair of fixed sizes
 *     (TLS_IN_BYTES, TLS_OUT_BYTES), allocated with the session; nothing is
 *     buffered past them. tls_feed takes only what fits; tls_write encrypts
 *     only when a whole record fits, so it never leaves OpenSSL holding a
 *     half-written record.
 *   - Plaintext is decrypted one record at a time into the session's own
 *     TLS_PLAIN_BYTES buffer and handed out from there; nothing is decrypted
 *     while any of it is left.
 *   - The span tls_send_span returns stays valid and unchanged until
 *     tls_sent consumes it or the session is destroyed, whatever else is
 *     written meanwhile (the BIO pair is a ring that never overwrites unread
 *     bytes), so an asynchronous send can read it in place.
 *   - A ClientHello may announce at most TLS_HELLO_BYTES (real ones are
 *     under 2 KiB, post-quantum key shares a few KiB): OpenSSL sizes its
 *     handshake buffer from the announced length before the bytes arrive,
 *     so a larger one is refused before OpenSSL reads it (tls_feed).
 *   - A session that failed (a broken handshake, a bad record) decrypts
 *     nothing more; its alert, if OpenSSL wrote one, is still in
 *     tls_send_span.
 * Only TLS 1.2 and 1.3; no renegotiation, no session tickets, no compression.
 */
#ifndef SKULD_SERVER_TLS_H
#define SKULD_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLS_PLAIN_BYTES        16384u /* one record's plaintext, the most TLS allows */
#define TLS_IN_BYTES           16384u /* ciphertext received, not yet decrypted */
#define TLS_OUT_BYTES          36864u /* ciphertext to send: two whole records and more */
#define TLS_RECORD_ROOM        17408u /* a record of TLS_PLAIN_BYTES, encrypted, at most */
#define TLS_CONTENT_TYPE       0x16u  /* first byte of a ClientHello (a handshake record) */
#define TLS_CHANGE_CIPHER_SPEC 0x14u  /* record content type */
#define TLS_CLIENT_HELLO       1u     /* handshake message type */
#define TLS_HELLO_BYTES        16384u /* a ClientHello's announced length, at most */
#define TLS_PEER_CHAIN         32768u /* a client certificate chain, at most (mutual TLS) */
/* OpenSSL's own state per session: the SSL, its record buffers and the
 * handshake's transients. Measured with CRYPTO_set_mem_functions (P-256
 * certificate, a ClientHello under 1 KiB): 9 KiB at rest, 77 KiB at the
 * handshake's peak, 30 KiB after traffic (record buffers are released when
 * idle). OpenSSL keeps the whole ClientHello in a buffer of its announced
 * length, so the bound adds TLS_HELLO_BYTES to 96 KiB, which leaves room
 * for RSA keys and a client chain of TLS_PEER_CHAIN. */
#define TLS_OPENSSL_BYTES (98304u + TLS_HELLO_BYTES)

/* Bytes one TLS connection may hold beyond its plaintext connection. */
#define TLS_SESSION_BYTES                                                                          \
	((uint64_t)TLS_PLAIN_BYTES + TLS_IN_BYTES + TLS_OUT_BYTES + TLS_OPENSSL_BYTES + 256u)

struct tls_context;
struct tls_session;

struct tls_settings {
	const char *cert_file;      /* PEM: the server's certificate, then its chain */
	const char *key_file;       /* PEM: its private key */
	const char *client_ca_file; /* PEM: CAs a client certificate must chain to; NULL: none
	                               asked (mutual TLS off) */
};

/* Loads the certificate and key (checked against each other) and the client
 * CA. Returns 0, or -EINVAL with OpenSSL's reason in error. */
int tls_context_create(struct tls_context **context, const struct tls_settings *settings,
                       char *error, size_t error_size);
void tls_context_destroy(struct tls_context *context);

/* A new server-side session. Returns 0 or -ENOMEM. */
int tls_session_create(struct tls_context *context, struct tls_session **session);

/* Frees the session and everything OpenSSL holds for it. NULL: no-op. */
void tls_session_destroy(struct tls_session *session);

/* Hands received ciphertext to the session. Returns how many bytes it took:
 * all of them, fewer when its input buffer is full (decrypt first), 0 once
 * it failed. Until the handshake is encrypted, the record and handshake
 * headers are read here first: a ClientHello that announces more than
 * TLS_HELLO_BYTES fails the session (all of data is taken, an alert is
 * queued, tls_input_span returns -EPROTO), before OpenSSL sizes a buffer
 * for it. */
size_t tls_feed(struct tls_session *session, const uint8_t *data, size_t size);

/* Plaintext ready to be taken: decrypts the next record (advancing the
 * handshake on the way) when none is left. Returns the bytes at *data (> 0);
 * 0 when more ciphertext is needed; -EAGAIN when the session must send
 * before it can go on (tls_send_span, then try again); -ESHUTDOWN when the
 * peer closed TLS (close_notify); -EPROTO when the peer broke TLS
 * (tls_failure says why). */
ssize_t tls_input_span(struct tls_session *session, const uint8_t **data);

/* count bytes of the span tls_input_span gave were taken. */
void tls_input_take(struct tls_session *session, size_t count);

/* Encrypts plaintext for sending, at most one record, and only when the
 * record fits whole. Returns the plaintext bytes taken (0: no room yet, or
 * the handshake is not finished), or -EPROTO. */
ssize_t tls_write(struct tls_session *session, const uint8_t *data, size_t size);

/* Ciphertext waiting to be sent, contiguous (0: none); *data points at it. */
size_t tls_send_span(struct tls_session *session, const uint8_t **data);

/* count bytes of the send span were sent. */
void tls_sent(struct tls_session *session, size_t count);

/* Queues a close_notify (after the handshake; nothing otherwise). */
void tls_shutdown(struct tls_session *session);

/* True once the handshake completed. */
bool tls_established(const struct tls_session *session);

/* Why the session failed (OpenSSL's reason), or "" when it did not. */
const char *tls_failure(const struct tls_session *session);

/* The protocol version and cipher of an established session, for logs. */
const char *tls_description(const struct tls_session *session, char *buffer, size_t size);

#endif /* SKULD_SERVER_TLS_H */
