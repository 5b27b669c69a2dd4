/*
 * http.h — the push workers' HTTP client: one kept-alive connection per
 * channel API, a deadline on every call, bounded answers.
 *
 * Owns: everything libcurl (channels/http.c is the only file that includes
 * curl). A call is a method, a URL, headers, a body; its result is the
 * status, the body (at most HTTP_BODY_MAX bytes, NUL-terminated for
 * convenience but read by size), the Retry-After of a throttled answer, and
 * the channel's request id for the exception report. A transport failure
 * (refused, reset, timeout, TLS) is status 0 with a reason: the caller
 * cannot know whether the channel applied the call, and retries it with the
 * same idempotency key. libcurl itself re-sends a call once when a
 * kept-alive connection turns out dead before any answer; that is safe
 * because every push carries absolute quantities with compare-and-set or an
 * idempotency key, and a re-sent one is at worst answered "stale".
 *
 * Not thread-safe: one client per worker thread. http_global_init once per
 * process before any client.
 */
#ifndef SKULD_CHANNELS_HTTP_H
#define SKULD_CHANNELS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_BODY_MAX    (8u << 20) /* larger answers are cut off and fail */
#define HTTP_ERROR_SIZE  256u
#define HTTP_REQUEST_ID  96u
#define HTTP_HEADERS_MAX 16u

struct http_client;

struct http_request {
	const char *method; /* "GET", "POST", "PATCH", "PUT" */
	const char *url;
	const char *headers[HTTP_HEADERS_MAX]; /* "Name: value", NULL-terminated list */
	const char *body;                      /* NULL: none */
	size_t body_size;
	uint32_t timeout_ms; /* the whole call, connect included */
};

struct http_response {
	long status; /* 0: no answer (see error) */
	char *body;  /* owned by the client, valid until its next call */
	size_t body_size;
	uint64_t retry_after_ms;          /* from Retry-After, 0: none */
	char request_id[HTTP_REQUEST_ID]; /* x-request-id / x-amzn-RequestId, "" if none */
	char rate_limit[32];              /* x-amzn-RateLimit-Limit, "" if none */
	char error[HTTP_ERROR_SIZE];      /* why status is 0 */
	uint64_t elapsed_us;              /* as curl measured the call */
};

int http_global_init(void);

/* A client for one API; NULL when out of memory. */
struct http_client *http_client_create(void);
void http_client_destroy(struct http_client *client);

/* Performs the call; returns 0 when an answer came (any status), -1 when
 * none did (response->status 0, response->error says why). */
int http_call(struct http_client *client, const struct http_request *request,
              struct http_response *response);

#endif /* SKULD_CHANNELS_HTTP_H */
