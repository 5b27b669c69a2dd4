/*
 * push_square.h — the Square driver of skuld-push: one batch-create call of
 * up to 100 PHYSICAL_COUNT changes at the worker's location, paced by a
 * guessed bucket (Square does not publish its limits), and each item's
 * verdict; batch-retrieve for the read-back.
 *
 * Owns: the mapping of Square's answers to verdicts (push.h):
 *   accepted              every item ACCEPTED; shown = the IN_STOCK count the
 *                         answer gives for the item (a sale on Square after
 *                         the count's occurred_at is in it), else the value
 *                         sent;
 *   errors                nothing was applied: an item an error names
 *                         (NOT_FOUND, or INVALID_VALUE on its catalog object)
 *                         is an EXCEPTION unknown-listing, another error
 *                         naming an item an EXCEPTION validation; an error
 *                         on location_id makes every item an EXCEPTION
 *                         inactive; an error naming no item (and not one of
 *                         the kinds below) makes every item an EXCEPTION
 *                         validation; the items not named RETRY;
 *                         IDEMPOTENCY_KEY_REUSED: RETRY with a new key;
 *                         INVALID_TIME: RETRY with a new key and occurred_at
 *                         = now for the next call;
 *   rate limited (429)    every item RETRY after a backoff of at least the
 *                         answer's Retry-After; the bucket is emptied;
 *   5xx, no answer, malformed
 *                         every item RETRY after a backoff; the next call of
 *                         the same items and values re-sends the same body
 *                         byte for byte under the same idempotency key, so
 *                         Square answers it from its record if it applied
 *                         the first;
 *   auth (401/403, UNAUTHORIZED, ACCESS_TOKEN_*, INSUFFICIENT_SCOPES)
 *                         every item EXCEPTION auth;
 *   rejected              every item EXCEPTION validation.
 *
 * Keys are "skuld-CHANNEL-RUN-SERIAL" with RUN drawn at start-up, so a
 * restarted worker never reuses a key of its previous run for another body.
 *
 * Only the HTTP layer (http.c) includes curl; this file sees bodies.
 */
#ifndef SKULD_CHANNELS_PUSH_SQUARE_H
#define SKULD_CHANNELS_PUSH_SQUARE_H

#include "backoff.h"
#include "http.h"
#include "pace.h"
#include "push.h"
#include "push_worker.h"
#include "square.h"

struct square_driver_config {
	char api_url[256];             /* https://connect.squareup.com, or a stand-in */
	char token[128];               /* Authorization: Bearer */
	char version[16];              /* Square-Version, 2025-08-20 */
	char location[SQUARE_ID_SIZE]; /* Square location id */
	char channel[32];              /* skuld channel name, for keys */
	char listing_prefix[48];       /* the worker puts this before an all-digit listing:
	                                  taken off again ("" : nothing to take off) */
	uint32_t timeout_ms;
	double bucket_capacity; /* guessed calls in a burst */
	double restore_rate;    /* guessed calls per second */
	struct backoff_policy backoff;
	uint64_t (*wall_ns)(void); /* ns since the epoch; NULL: CLOCK_REALTIME */
};

struct square_driver {
	struct square_driver_config config;
	struct http_client *http;
	struct pace_bucket bucket;
	uint64_t rng;         /* backoff jitter */
	uint32_t failures;    /* consecutive calls without an answer to act on */
	uint64_t retry_at_ns; /* backoff: no call before this */
	uint64_t run;         /* the key's RUN part */
	uint64_t key_serial;
	char key[96];                /* the key of the last call, reused for the same body */
	uint64_t key_items;          /* fingerprint of the items the key was made for */
	char *key_body;              /* the body sent under key (malloc'd), re-sent as it is */
	bool occurred_now;           /* after INVALID_TIME: occurred_at = now for the next call */
	struct square_answer answer; /* the last answer (large: kept here, not on the stack) */
	uint64_t calls;
	uint64_t calls_throttled;
};

int square_driver_init(struct square_driver *driver, const struct square_driver_config *config,
                       uint64_t seed, uint64_t now_ns);
void square_driver_fini(struct square_driver *driver);

/* Nanoseconds to wait before the next call (backoff, then the bucket). */
uint64_t square_driver_wait_ns(const struct square_driver *driver, uint64_t now_ns);

/* One call for items[0..count) (count 1..SQUARE_CHANGES_MAX; more are left
 * RETRY); fills results[i] for items[i]. now_ns is the monotonic time. */
void square_driver_push(struct square_driver *driver, const struct push_item *items, uint32_t count,
                        struct push_result *results, uint64_t now_ns);

/* Reads what Square shows (IN_STOCK at the location) for items[0..count)
 * (count 1..SQUARE_READ_MAX) into levels[i]. Returns 0, or -1 when no
 * usable answer came. */
int square_driver_read(struct square_driver *driver, const struct push_item *items, uint32_t count,
                       struct push_level *levels, uint64_t now_ns);

/* skuld-push's kind "square": the driver from the worker's configuration
 * (api_url, api_token, api_version, location). Returns 0 or -1. */
int square_kind_start(const struct push_worker_config *config, struct push_driver *adapter);
void square_kind_stop(void);

#endif /* SKULD_CHANNELS_PUSH_SQUARE_H */
