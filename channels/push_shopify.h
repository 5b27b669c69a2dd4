/*
 * push_shopify.h — the Shopify driver of skuld-push: one call of up to 250
 * quantities through inventorySetQuantities, paced by Shopify's cost bucket,
 * and each item's verdict.
 *
 * Owns: the mapping of Shopify's answers to verdicts (push.h):
 *   accepted              every item ACCEPTED, shown = the value sent;
 *   user errors           the call was all-or-nothing: items named by an
 *                         error of a listing kind are EXCEPTIONs (unknown
 *                         item or location, not stocked, invalid quantity);
 *                         items named "stale" are read back and RETRY with
 *                         the channel's value and stale set; the others
 *                         RETRY unchanged;
 *   throttled             every item RETRY; the bucket is emptied;
 *   5xx, no answer, malformed
 *                         every item RETRY after a backoff; from 2026-01 the
 *                         same idempotency key is reused for the same items;
 *   auth                  every item EXCEPTION auth;
 *   rejected (GraphQL errors), 404
 *                         every item EXCEPTION validation.
 * and the pacing: before each call the driver says how long to wait so the
 * call is never throttled once the bucket is learned (pace.h).
 *
 * Only the HTTP layer (http.c) includes curl; this file sees bodies.
 */
#ifndef SKULD_CHANNELS_PUSH_SHOPIFY_H
#define SKULD_CHANNELS_PUSH_SHOPIFY_H

#include "backoff.h"
#include "http.h"
#include "pace.h"
#include "push.h"
#include "shopify.h"

struct shopify_driver_config {
	char shop_url[256]; /* https://NAME.myshopify.com, or a stand-in */
	char token[128];    /* X-Shopify-Access-Token */
	char version[16];   /* API version, 2025-01 */
	char channel[32];   /* skuld channel name, for references and keys */
	uint32_t timeout_ms;
	double bucket_capacity; /* first guess until an answer says (2000) */
	double restore_rate;    /* first guess (100/s) */
	double call_cost;       /* first guess of a call's requested cost (10) */
	struct backoff_policy backoff;
};

struct shopify_driver {
	struct shopify_driver_config config;
	struct http_client *http;
	struct pace_bucket bucket;
	double call_cost;     /* learned: the last requestedQueryCost */
	uint64_t rng;         /* backoff jitter */
	uint32_t failures;    /* consecutive calls without an answer to act on */
	uint64_t retry_at_ns; /* backoff: no call before this */
	uint64_t key_serial;  /* idempotency keys: channel-serial */
	char key[64];         /* the key of the last call, reused on a retry */
	uint64_t key_items;   /* fingerprint of the items the key was made for */
	uint64_t calls;
	uint64_t calls_throttled;
};

int shopify_driver_init(struct shopify_driver *driver, const struct shopify_driver_config *config,
                        uint64_t seed, uint64_t now_ns);
void shopify_driver_fini(struct shopify_driver *driver);

/* Nanoseconds to wait before the next call (backoff, then the bucket). */
uint64_t shopify_driver_wait_ns(const struct shopify_driver *driver, uint64_t now_ns);

/* One call for items[0..count) (count 1..SHOPIFY_QUANTITIES_MAX); fills
 * results[i] for items[i]. now_ns is the monotonic time of the call. */
void shopify_driver_push(struct shopify_driver *driver, const struct push_item *items,
                         uint32_t count, struct push_result *results, uint64_t now_ns);

/* Reads what the channel shows for items[0..count) (count 1..
 * SHOPIFY_READ_MAX, one location) into levels[i]. Returns 0, or -1 when no
 * usable answer came (nothing in levels is meaningful then). */
int shopify_driver_read(struct shopify_driver *driver, const struct push_item *items,
                        uint32_t count, struct push_level *levels, uint64_t now_ns);

#endif /* SKULD_CHANNELS_PUSH_SHOPIFY_H */
