/*
 * push_amazon.h — the Amazon driver of skuld-push: each item's quantity as
 * the fulfillment_availability of its SKU through patchListingsItem, or a
 * JSON_LISTINGS_FEED for a large call, paced per operation, with the Login
 * with Amazon token refreshed ahead of its expiry; getListingsItem for the
 * read-back.
 *
 * Owns:
 *   - the token: refreshed when none is held or when less than
 *     min(token_margin_s, lifetime / 2) of it is left, and once more when a
 *     call is answered 403 (then the call is sent again, once); a refresh
 *     that LWA refuses (invalid_grant, invalid_client) is an AUTH exception;
 *   - pacing: one token bucket per operation (pace.h), seeded with the
 *     published rate and burst (patchListingsItem 5/s burst 5,
 *     getListingsItem 5/10, createFeedDocument 0.5/15, createFeed
 *     0.0083/15, getFeed 2/15, getFeedDocument 0.0222/10), corrected by an
 *     x-amzn-RateLimit-Limit value handed to amazon_driver_rate_limit, and
 *     emptied by a 429. Within one push call the driver waits for its
 *     bucket between PATCHes, for at most call_budget_ms in all; the items
 *     it did not reach are RETRY (the worker offers them again, in order);
 *   - the choice per call: fewer than feed_threshold items to send (100 by
 *     default) are PATCHed one by one; from feed_threshold on, the items
 *     going to zero are PATCHed first and the rest go into one feed.
 *     Why 100: at the published 5 PATCHes/s, 100 items are 20 s of the
 *     PATCH budget (ten or more worker rounds); a feed costs three calls to
 *     start whatever its size and leaves the PATCH budget to the zeros and
 *     live changes each round ranks first, but takes minutes to process
 *     [unverified: Amazon publishes no figure], so below 100 PATCH is the
 *     faster way to a correct listing. One feed is in flight at a time, and
 *     none is started for feed_cooldown_s after one failed;
 *   - verdicts (push.h):
 *       ACCEPTED (patch)    ACCEPTED, shown = the value sent: Amazon applies
 *                           it minutes later, and accepts unknown SKUs too;
 *                           the read-back is what finds those;
 *       INVALID             EXCEPTION validation, with the first ERROR issue;
 *       400/404             EXCEPTION validation / unknown-listing;
 *       429                 RETRY; the bucket is emptied, and no call before
 *                           the backoff;
 *       5xx, no answer, malformed
 *                           RETRY after a backoff. Amazon has no idempotency
 *                           key: a re-sent PATCH carries the same absolute
 *                           value, so a lost answer at worst applies it again;
 *       403 after a refresh, a refused refresh
 *                           EXCEPTION auth;
 *       in a feed           RETRY until the feed is done; then, offered again
 *                           with the value the feed carried: ACCEPTED, or
 *                           EXCEPTION validation for a message the processing
 *                           report marks ERROR; FATAL, CANCELLED, a report it
 *                           cannot read (GZIP included): RETRY, by PATCH;
 *       a lower value while its feed is in flight
 *                           PATCHed at once but RETRY, so the item is pushed
 *                           again after the feed (which may apply the older
 *                           value after the PATCH);
 *   - the read-back: getListingsItem with includedData=summaries,issues,
 *     fulfillmentAvailability. No summary for the marketplace, or no
 *     BUYABLE in its status: known = false with exception INACTIVE (and the
 *     first issue's words); 404: known = false, exception UNKNOWN; a change
 *     accepted less than apply_window_s ago that the listing does not show
 *     yet: known = false (pending, not a mismatch); else the DEFAULT
 *     fulfillment quantity. The driver's figures keep, for each accepted
 *     change a read-back later shows, the time Amazon accepted it and the
 *     time it was first seen applied.
 *
 * Only the HTTP layer (http.c) includes curl; this file sees bodies.
 */
#ifndef SKULD_CHANNELS_PUSH_AMAZON_H
#define SKULD_CHANNELS_PUSH_AMAZON_H

#include "amazon.h"
#include "backoff.h"
#include "http.h"
#include "pace.h"
#include "push.h"
#include "push_worker.h"

#define AMAZON_FEED_THRESHOLD 100u  /* items in a call from which a feed is sent */
#define AMAZON_BATCH_MAX      1000u /* items per push call (the worker's batch caps it) */
#define AMAZON_READ_MAX       10u   /* getListingsItem's burst */
#define AMAZON_PENDING_MAX    4096u /* accepted changes waiting to be seen */

enum amazon_operation {
	AMAZON_OP_PATCH = 0,       /* patchListingsItem */
	AMAZON_OP_GET,             /* getListingsItem */
	AMAZON_OP_CREATE_DOCUMENT, /* createFeedDocument */
	AMAZON_OP_CREATE_FEED,     /* createFeed */
	AMAZON_OP_GET_FEED,        /* getFeed */
	AMAZON_OP_GET_DOCUMENT,    /* getFeedDocument */
	AMAZON_OP_COUNT,
};

struct amazon_driver_config {
	char api_url[256];        /* https://sellingpartnerapi-na.amazon.com, or a stand-in */
	char lwa_url[256];        /* https://api.amazon.com */
	char seller_id[64];       /* the selling partner */
	char marketplace[96];     /* ATVPDKIKX0DER */
	char client_id[128];      /* LWA */
	char client_secret[128];  /* LWA */
	char refresh_token[512];  /* LWA */
	char product_type[48];    /* "PRODUCT" */
	char channel[32];         /* skuld channel name, for the figures */
	char listing_prefix[48];  /* the worker puts this before an all-digit listing */
	uint32_t timeout_ms;      /* one HTTP call */
	uint32_t call_budget_ms;  /* the longest one push or read call waits for buckets */
	uint32_t feed_threshold;  /* 0: AMAZON_FEED_THRESHOLD */
	uint32_t feed_poll_ms;    /* between getFeed calls */
	uint32_t feed_timeout_s;  /* a feed not done after this is given up (its items RETRY) */
	uint32_t feed_cooldown_s; /* no feed after a failed one for this long */
	uint32_t token_margin_s;  /* refresh this long before expiry */
	uint32_t apply_window_s;  /* an accepted change not shown after this is a mismatch */
	double rates[AMAZON_OP_COUNT];  /* 0: the published figure */
	double bursts[AMAZON_OP_COUNT]; /* 0: the published figure */
	struct backoff_policy backoff;
	uint64_t (*clock_ns)(void);    /* monotonic ns; NULL: CLOCK_MONOTONIC */
	void (*sleep_ns)(uint64_t ns); /* NULL: nanosleep */
};

enum amazon_entry_state {
	AMAZON_ENTRY_SENT = 1, /* in the feed in flight */
	AMAZON_ENTRY_ACCEPTED, /* the report has no error for it */
	AMAZON_ENTRY_INVALID,  /* the report has an ERROR for it */
	AMAZON_ENTRY_FAILED,   /* the feed failed: push it again */
};

struct amazon_feed_entry {
	uint32_t item;
	int64_t quantity; /* whole units the feed carries */
	enum amazon_entry_state state;
	char detail[PUSH_DETAIL_SIZE];
};

struct amazon_pending {
	uint32_t item; /* 0: free */
	int64_t quantity;
	uint64_t accepted_ns;
};

struct amazon_driver_figures {
	uint64_t calls;     /* SP-API calls sent */
	uint64_t throttled; /* answered 429 */
	uint64_t token_refreshes;
	uint64_t token_refreshes_on_403;
	uint64_t patches_accepted;
	uint64_t patches_invalid;
	uint64_t feeds;
	uint64_t feed_messages;
	uint64_t feeds_failed;
	uint64_t feed_polls;
	uint64_t reads;
	uint64_t reads_inactive;
	uint64_t reads_pending; /* accepted, not shown yet, within the window */
	uint64_t rate_limits_learned;
	/* Accepted changes a read-back later showed: how many, and the time
	 * from Amazon's ACCEPTED (or the feed's report) to the first read-back
	 * that showed the value. */
	uint64_t shown;
	uint64_t accept_to_show_ns_sum;
	uint64_t accept_to_show_ns_max;
	uint64_t last_accepted_ns; /* of the last change shown: when accepted */
	uint64_t last_shown_ns;    /* and when first seen applied */
};

enum amazon_feed_phase {
	AMAZON_FEED_NONE = 0,
	AMAZON_FEED_IN_FLIGHT,
	AMAZON_FEED_FINISHED, /* entries hold the verdicts until their items come back */
};

struct amazon_driver {
	struct amazon_driver_config config;
	struct http_client *http;
	struct pace_bucket buckets[AMAZON_OP_COUNT];
	char token[AMAZON_TOKEN_SIZE];
	uint64_t token_expires_ns;
	uint64_t token_lifetime_ns;
	bool token_refused;   /* LWA refused the credentials: AUTH until restarted */
	uint64_t rng;         /* backoff jitter */
	uint32_t failures;    /* consecutive calls without an answer to act on */
	uint64_t retry_at_ns; /* backoff: no call before this */
	enum amazon_feed_phase feed_phase;
	char feed_id[AMAZON_ID_SIZE];
	uint64_t feed_started_ns;
	uint64_t feed_poll_ns;             /* next getFeed */
	uint64_t feed_cooldown_ns;         /* no new feed before this */
	struct amazon_feed_entry *entries; /* [AMAZON_BATCH_MAX] */
	uint32_t entry_count;
	struct amazon_pending *pending; /* [AMAZON_PENDING_MAX] */
	uint32_t pending_next;          /* the slot a new change takes when none is free */
	struct amazon_driver_figures figures;
};

/* Fills the defaults of the unset (zero) fields of config. */
void amazon_driver_config_defaults(struct amazon_driver_config *config);

int amazon_driver_init(struct amazon_driver *driver, const struct amazon_driver_config *config,
                       uint64_t seed, uint64_t now_ns);
void amazon_driver_fini(struct amazon_driver *driver);

/* Nanoseconds to wait before the next call (backoff, then the PATCH bucket). */
uint64_t amazon_driver_wait_ns(const struct amazon_driver *driver, uint64_t now_ns);

/* One push call for items[0..count) (count 1..AMAZON_BATCH_MAX; more are
 * left RETRY); fills results[i] for items[i]. */
void amazon_driver_push(struct amazon_driver *driver, const struct push_item *items, uint32_t count,
                        struct push_result *results, uint64_t now_ns);

/* Reads what Amazon shows for items[0..count) (count 1..AMAZON_READ_MAX)
 * into levels[i]. Returns 0, or -1 when no usable answer came. */
int amazon_driver_read(struct amazon_driver *driver, const struct push_item *items, uint32_t count,
                       struct push_level *levels, uint64_t now_ns);

/* An x-amzn-RateLimit-Limit value an answer to operation carried at now_ns:
 * the bucket's rate becomes it (the burst stays). Returns 0, or -1 when the
 * value is not a rate. */
int amazon_driver_rate_limit(struct amazon_driver *driver, enum amazon_operation operation,
                             const char *value, uint64_t now_ns);

/* skuld-push's kind "amazon": the driver from the worker's configuration
 * (api_url, lwa_url, seller_id, lwa_client_id, lwa_client_secret,
 * lwa_refresh_token; location is the marketplace id). Returns 0 or -1. */
int amazon_kind_start(const struct push_worker_config *config, struct push_driver *adapter);
void amazon_kind_stop(void);

#endif /* SKULD_CHANNELS_PUSH_AMAZON_H */
