/*
 * push_worker.c — skuld-push's loop (push_worker.h).
 */
#define _GNU_SOURCE /* qsort_r */
#include "push_worker.h"

#include <ctype.h>
#include <errno.h>
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyfile.h"
#include "priority.h"
#include "skuld/skuld.h"

#define PULL_MAX     1024u         /* records per pull */
#define ROUND_MAX    65536u        /* dirty items one round puts in order, at most */
#define ROUND_NS     1000000000ull /* a round pushes this long, then pulls again */
#define CALL_TIMEOUT 10000u

/* ---- Configuration ----------------------------------------------------------- */

static enum keyfile_verdict config_key(void *context, const char *key, const char *value)
{
	struct push_worker_config *config = context;
	struct text_key {
		const char *name;
		char *field;
		size_t size;
	} texts[] = {
	        {"server", config->server, sizeof(config->server)},
	        {"server_token", config->server_token, sizeof(config->server_token)},
	        {"server_tls_ca", config->server_tls_ca, sizeof(config->server_tls_ca)},
	        {"server_tls_name", config->server_tls_name, sizeof(config->server_tls_name)},
	        {"client_id_path", config->client_id_path, sizeof(config->client_id_path)},
	        {"channel", config->channel, sizeof(config->channel)},
	        {"kind", config->kind, sizeof(config->kind)},
	        {"api_url", config->api_url, sizeof(config->api_url)},
	        {"api_token", config->api_token, sizeof(config->api_token)},
	        {"api_version", config->api_version, sizeof(config->api_version)},
	        {"location", config->location, sizeof(config->location)},
	        {"listing_prefix", config->listing_prefix, sizeof(config->listing_prefix)},
	        {"seller_id", config->seller_id, sizeof(config->seller_id)},
	        {"lwa_url", config->lwa_url, sizeof(config->lwa_url)},
	        {"lwa_client_id", config->lwa_client_id, sizeof(config->lwa_client_id)},
	        {"lwa_client_secret", config->lwa_client_secret, sizeof(config->lwa_client_secret)},
	        {"lwa_refresh_token", config->lwa_refresh_token, sizeof(config->lwa_refresh_token)},
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		if (strcmp(key, texts[i].name) == 0)
			return keyfile_text(texts[i].field, texts[i].size, value);
	}
	struct number_key {
		const char *name;
		uint32_t *field;
		uint32_t min, max;
	} numbers[] = {
	        {"batch", &config->batch, 1, 1000},
	        {"idle_ms", &config->idle_ms, 1, 60000},
	        {"reconcile_s", &config->reconcile_s, 0, 7 * 86400},
	        {"zero_resend_s", &config->zero_resend_s, 0, 7 * 86400},
	        {"timeout_ms", &config->timeout_ms, 100, 600000},
	};
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		if (strcmp(key, numbers[i].name) == 0)
			return keyfile_u32(numbers[i].field, value, numbers[i].min, numbers[i].max);
	}
	if (strcmp(key, "low_threshold") == 0) {
		uint32_t low = 0;
		enum keyfile_verdict verdict = keyfile_u32(&low, value, 0, 1u << 30);
		config->low_threshold = low;
		return verdict;
	}
	return KEYFILE_UNKNOWN_KEY;
}

int push_worker_config_read(struct push_worker_config *config, const char *path, char *error,
                            size_t error_size)
{
	memset(config, 0, sizeof(*config));
	snprintf(config->server, sizeof(config->server), "127.0.0.1:7878");
	snprintf(config->kind, sizeof(config->kind), "shopify");
	snprintf(config->api_version, sizeof(config->api_version), "2025-01");
	snprintf(config->lwa_url, sizeof(config->lwa_url), "https://api.amazon.com");
	snprintf(config->listing_prefix, sizeof(config->listing_prefix),
	         "gid://shopify/InventoryItem/");
	config->batch = 250;
	config->idle_ms = 200;
	config->reconcile_s = 600;
	config->zero_resend_s = 3600;
	config->low_threshold = 2;
	config->timeout_ms = 10000;
	int ret = keyfile_read(path, config_key, config, error, error_size);
	if (ret == 0 && (config->channel[0] == '\0' || config->api_url[0] == '\0' ||
	                 config->location[0] == '\0')) {
		snprintf(error, error_size, "%s: channel, api_url and location are required", path);
		ret = -1;
	}
	return ret;
}

/* ---- What the worker remembers per item -------------------------------------- */

struct known {
	uint32_t item; /* 0: empty slot */
	uint32_t serial;
	bool stale; /* the channel answered stale: shown is what it was read to show */
	int64_t stale_shown;
	char listing[PUSH_LISTING_SIZE];
};

struct cache {
	struct known *slots;
	uint32_t mask;
	uint32_t used;
};

static uint32_t cache_home(const struct cache *cache, uint32_t item)
{
	return (uint32_t)((item * 0x9e3779b97f4a7c15ull) >> 32) & cache->mask;
}

static struct known *cache_find(struct cache *cache, uint32_t item, bool create)
{
	if (create && (cache->used + 1) * 2 > cache->mask + 1) {
		struct cache grown = {.mask = cache->mask * 2 + 1};
		grown.slots = calloc((size_t)grown.mask + 1, sizeof(struct known));
		if (grown.slots == NULL)
			return NULL;
		for (uint32_t i = 0; i <= cache->mask; i++) {
			if (cache->slots[i].item == 0)
				continue;
			uint32_t slot = cache_home(&grown, cache->slots[i].item);
			while (grown.slots[slot].item != 0)
				slot = (slot + 1) & grown.mask;
			grown.slots[slot] = cache->slots[i];
			grown.used++;
		}
		free(cache->slots);
		*cache = grown;
	}
	for (uint32_t slot = cache_home(cache, item);; slot = (slot + 1) & cache->mask) {
		if (cache->slots[slot].item == item)
			return &cache->slots[slot];
		if (cache->slots[slot].item == 0) {
			if (!create)
				return NULL;
			cache->slots[slot].item = item;
			cache->used++;
			return &cache->slots[slot];
		}
	}
}

/* ---- The worker ----------------------------------------------------------------- */

struct worker {
	const struct push_worker_config *config;
	const struct push_driver *driver;
	struct push_worker_figures *figures;
	skuld_client *client;
	uint32_t channel;
	uint32_t cursor; /* the pull goes on after this item */
	uint64_t report_serial;
	struct cache cache;
	union skuld_query_record records[PULL_MAX];
	struct push_item *round; /* [ROUND_MAX]: a round's dirty items, in push order */
	struct push_item items[PULL_MAX];
	struct push_item again[PULL_MAX]; /* a sweep's re-sends */
	struct push_level levels[PULL_MAX];
	char mismatch[PULL_MAX][64]; /* a sweep's mismatch details */
	struct push_result results[PULL_MAX];
	struct skuld_event events[PULL_MAX + 1];
	struct skuld_result event_results[PULL_MAX + 1];
	uint32_t event_count;
};

static uint64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static void sleep_ns(uint64_t ns, volatile sig_atomic_t *stop)
{
	/* In slices, so a stop is seen within 50 ms. */
	while (ns > 0 && !*stop) {
		uint64_t slice = ns < 50000000ull ? ns : 50000000ull;
		nanosleep(&(struct timespec){(time_t)(slice / 1000000000ull),
		                             (long)(slice % 1000000000ull)},
		          NULL);
		ns -= slice;
	}
}

/* The listing text of record's item, fetched when its serial changed. */
static struct known *listing_of(struct worker *worker, const struct skuld_push_record *record)
{
	struct known *known = cache_find(&worker->cache, record->item, true);
	if (known == NULL || known->serial == record->listing_serial)
		return known;
	struct skuld_query query = {
	        .kind = SKULD_QUERY_LISTING, .channel = worker->channel, .item = record->item};
	union skuld_query_record answer;
	uint32_t count = 0;
	if (skuld_query(worker->client, &query, &answer, 1, &count, CALL_TIMEOUT) != 0 ||
	    count != 1 || answer.listing.status != SKULD_OK)
		return NULL;
	known->serial = answer.listing.listing_serial;
	static_assert(sizeof(known->listing) > sizeof(answer.listing.listing), "room for a NUL");
	memset(known->listing, 0, sizeof(known->listing));
	memcpy(known->listing, answer.listing.listing, sizeof(answer.listing.listing));
	known->stale = false;
	return known;
}

static void item_from(struct worker *worker, const struct skuld_push_record *record,
                      const struct known *known, struct push_item *item)
{
	memset(item, 0, sizeof(*item));
	item->item = record->item;
	item->version = record->version;
	item->quantity = record->quantity;
	item->scale = record->scale;
	item->shown = record->shown;
	item->shown_known = (record->state & SKULD_PUSH_SHOWN_KNOWN) != 0;
	item->dirty_since = record->dirty_since;
	if (known->stale) {
		item->stale = true;
		item->shown = known->stale_shown;
		item->shown_known = true;
	}
	const char *text = known->listing;
	bool digits = text[0] != '\0';
	for (const char *c = text; *c != '\0'; c++)
		digits = digits && isdigit((unsigned char)*c);
	snprintf(item->listing[0], sizeof(item->listing[0]), "%.47s%.40s",
	         digits ? worker->config->listing_prefix : "", text);
	snprintf(item->listing[1], sizeof(item->listing[1]), "%s", worker->config->location);
}

static void event_ack(struct worker *worker, uint32_t item, uint64_t version, int64_t shown)
{
	char document[80];
	/* The value is part of the key: a read-back may make the channel take
	 * a smaller value at the same version, which is a new fact. */
	snprintf(document, sizeof(document), "%" PRIu32 "/%" PRIu64 "/%" PRId64, item, version,
	         shown);
	char source[64];
	snprintf(source, sizeof(source), "skuld-push/%s", worker->config->channel);
	struct skuld_event *event = &worker->events[worker->event_count++];
	memset(event, 0, sizeof(*event));
	event->kind = SKULD_PUSH_ACK;
	event->key = skuld_key(source, document, 0, "ack");
	event->channel = worker->channel;
	event->item = item;
	event->id = version;
	event->quantity = shown < 0 ? 0 : shown;
}

static void event_exception(struct worker *worker, uint32_t item, uint64_t version,
                            enum push_exception kind, const char *detail)
{
	char document[64];
	/* Every report counts: the serial and the time keep keys apart. */
	snprintf(document, sizeof(document), "%" PRIu32 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64, item,
	         version, monotonic_ns(), ++worker->report_serial);
	char source[64];
	snprintf(source, sizeof(source), "skuld-push/%s", worker->config->channel);
	struct skuld_event *event = &worker->events[worker->event_count++];
	memset(event, 0, sizeof(*event));
	event->kind = SKULD_PUSH_EXCEPTION;
	event->key = skuld_key(source, document, 0, "exception");
	event->channel = worker->channel;
	event->item = item;
	event->id = item != 0 ? version : 0;
	event->reason = (uint8_t)kind;
	/* Printable text only, cut to the field. */
	size_t out = 0;
	for (const char *c = detail; *c != '\0' && out < sizeof(event->code) - 1; c++)
		event->code[out++] = (*c >= 0x20 && *c <= 0x7e) ? *c : '?';
	while (out > 0 && event->code[out - 1] == ' ')
		event->code[--out] = '\0';
	while (out > 0 && event->code[0] == ' ') {
		memmove(event->code, event->code + 1, out);
		event->code[--out] = '\0';
	}
}

/* Sends the events gathered; an event refused for a stale version (a newer
 * change arrived meanwhile) is fine: the item stays dirty. */
static int events_flush(struct worker *worker)
{
	if (worker->event_count == 0)
		return 0;
	int rc = skuld_submit(worker->client, worker->events, worker->event_count,
	                      worker->event_results, NULL, CALL_TIMEOUT);
	if (rc == 0) {
		for (uint32_t i = 0; i < worker->event_count; i++) {
			if (worker->event_results[i].status != SKULD_OK)
				continue;
			if (worker->events[i].kind == SKULD_PUSH_ACK)
				worker->figures->acked++;
			else
				worker->figures->exceptions++;
		}
	}
	worker->event_count = 0;
	return rc;
}

static int rank_compare(const void *a, const void *b, void *context)
{
	const struct push_item *x = a;
	const struct push_item *y = b;
	int64_t low = *(const int64_t *)context;
	struct push_rank rx = {x->item, push_whole_units(x->quantity, x->scale),
	                       push_whole_units(x->shown, x->scale), x->shown_known,
	                       x->dirty_since};
	struct push_rank ry = {y->item, push_whole_units(y->quantity, y->scale),
	                       push_whole_units(y->shown, y->scale), y->shown_known,
	                       y->dirty_since};
	return push_rank_compare(&rx, &ry, low);
}

/* Puts items[0..count) in push order, pushes them in calls of the
 * driver's size until deadline_ns (0: all), and turns every verdict into an
 * event. Items not reached stay dirty: the next round offers them again. */
static void push_items(struct worker *worker, struct push_item *items, uint32_t count,
                       uint64_t deadline_ns, volatile sig_atomic_t *stop)
{
	int64_t low = worker->config->low_threshold;
	qsort_r(items, count, sizeof(items[0]), rank_compare, &low);
	uint32_t batch = worker->config->batch < worker->driver->batch_max
	                         ? worker->config->batch
	                         : worker->driver->batch_max;
	for (uint32_t first = 0; first < count && !*stop; first += batch) {
		if (deadline_ns != 0 && first > 0 && monotonic_ns() >= deadline_ns)
			return;
		uint32_t size = count - first < batch ? count - first : batch;
		sleep_ns(worker->driver->wait_ns(worker->driver->context, monotonic_ns()), stop);
		if (*stop)
			return;
		worker->driver->push(worker->driver->context, &items[first], size, worker->results,
		                     monotonic_ns());
		worker->figures->calls++;
		worker->figures->pushed += size;
		bool auth = false;
		for (uint32_t i = 0; i < size; i++) {
			const struct push_item *item = &items[first + i];
			const struct push_result *result = &worker->results[i];
			struct known *known = cache_find(&worker->cache, item->item, false);
			switch (result->verdict) {
			case PUSH_ACCEPTED:
				if (known != NULL)
					known->stale = false;
				event_ack(worker, item->item, item->version, result->shown);
				break;
			case PUSH_EXCEPTION:
				if (result->exception == PUSH_EXCEPTION_AUTH) {
					auth = true;
					break;
				}
				event_exception(worker, item->item, item->version,
				                result->exception, result->detail);
				break;
			default:
				worker->figures->retries++;
				if (result->stale && known != NULL) {
					known->stale = true;
					known->stale_shown = result->shown;
				}
				break;
			}
		}
		/* Credentials are the channel's, not an item's. */
		if (auth)
			event_exception(worker, 0, 0, PUSH_EXCEPTION_AUTH,
			                worker->results[0].detail);
		events_flush(worker);
	}
}

/* One round: every dirty item after the cursor (up to ROUND_MAX, in pages
 * of PULL_MAX), acknowledged at once where the channel shows its value
 * already, the rest put in push order across the whole round (zeros and
 * low first, then decreases, then increases) and pushed for ROUND_NS; then
 * the next round pulls afresh, so a change made meanwhile is ranked again.
 * Returns how many dirty items the round saw, or -1 when skuld did not
 * answer. */
static int pull_round(struct worker *worker, volatile sig_atomic_t *stop)
{
	uint32_t seen = 0, pushing = 0;
	bool wrapped = false;
	while (pushing + PULL_MAX <= ROUND_MAX && !*stop) {
		struct skuld_query query = {.kind = SKULD_QUERY_PUSH,
		                            .channel = worker->channel,
		                            .after_item = worker->cursor,
		                            .limit = PULL_MAX};
		uint32_t count = 0;
		if (skuld_query(worker->client, &query, worker->records, PULL_MAX, &count,
		                CALL_TIMEOUT) != 0)
			return -1;
		worker->figures->pulls++;
		if (count == 0) {
			/* The end: start again from the first item, once. */
			if (worker->cursor == 0 || wrapped)
				break;
			worker->cursor = 0;
			wrapped = true;
			continue;
		}
		bool more = (worker->records[count - 1].push.flags & SKULD_QUERY_MORE) != 0;
		worker->cursor = more ? worker->records[count - 1].push.item : 0;
		for (uint32_t i = 0; i < count; i++) {
			const struct skuld_push_record *record = &worker->records[i].push;
			if (record->status != SKULD_OK)
				return -1;
			seen++;
			const struct known *known = listing_of(worker, record);
			if (known == NULL)
				continue; /* skuld did not answer: offered again next time */
			struct push_item *item = &worker->round[pushing];
			item_from(worker, record, known, item);
			/* The channel shows this value already: nothing to call. */
			if (item->shown_known && !item->stale &&
			    push_whole_units(item->shown, item->scale) ==
			            push_whole_units(item->quantity, item->scale)) {
				event_ack(worker, item->item, item->version, item->shown);
				worker->figures->unchanged++;
				if (worker->event_count == PULL_MAX)
					events_flush(worker);
				continue;
			}
			pushing++;
		}
		if (!more)
			break;
	}
	events_flush(worker);
	push_items(worker, worker->round, pushing, monotonic_ns() + ROUND_NS, stop);
	return (int)seen;
}

/* Every mapped item, paged: read back what the channel shows (reconcile),
 * and push clean zeros again (zeros). */
static void sweep(struct worker *worker, bool reconcile, bool zeros, volatile sig_atomic_t *stop)
{
	uint32_t after = 0;
	do {
		struct skuld_query query = {.kind = SKULD_QUERY_PUSH_ALL,
		                            .channel = worker->channel,
		                            .after_item = after,
		                            .limit = PULL_MAX};
		uint32_t count = 0;
		if (skuld_query(worker->client, &query, worker->records, PULL_MAX, &count,
		                CALL_TIMEOUT) != 0 ||
		    count == 0)
			return;
		after = (worker->records[count - 1].push.flags & SKULD_QUERY_MORE)
		                ? worker->records[count - 1].push.item
		                : 0;
		/* Clean, accepted items only: dirty ones are the pull's. */
		uint32_t clean = 0;
		for (uint32_t i = 0; i < count; i++) {
			const struct skuld_push_record *record = &worker->records[i].push;
			if (record->status != SKULD_OK || (record->state & SKULD_PUSH_DIRTY) ||
			    (record->state & SKULD_PUSH_PARKED) ||
			    !(record->state & SKULD_PUSH_SHOWN_KNOWN))
				continue;
			const struct known *known = listing_of(worker, record);
			if (known != NULL)
				item_from(worker, record, known, &worker->items[clean++]);
		}
		uint32_t resend = 0, mismatches = 0;
		uint32_t mismatched[PULL_MAX]; /* their places in again[] */
		struct push_item *again = worker->again;
		for (uint32_t first = 0; reconcile && first < clean && !*stop;
		     first += worker->driver->read_max) {
			uint32_t size = clean - first < worker->driver->read_max
			                        ? clean - first
			                        : worker->driver->read_max;
			sleep_ns(worker->driver->wait_ns(worker->driver->context, monotonic_ns()),
			         stop);
			struct push_level *levels = worker->levels;
			memset(levels, 0, sizeof(levels[0]) * size);
			if (worker->driver->read(worker->driver->context, &worker->items[first],
			                         size, levels, monotonic_ns()) != 0)
				continue;
			for (uint32_t i = 0; i < size; i++) {
				struct push_item *item = &worker->items[first + i];
				/* Unusable on the channel (an inactive listing, say). */
				if (!levels[i].known && levels[i].exception != PUSH_EXCEPTION_NONE)
					event_exception(worker, item->item, item->version,
					                levels[i].exception, levels[i].detail);
				if (!levels[i].known ||
				    push_whole_units(levels[i].shown, item->scale) ==
				            push_whole_units(item->shown, item->scale))
					continue;
				/* Reported after the re-push below: its acknowledgement
				 * would close a report made before it. */
				snprintf(worker->mismatch[mismatches], sizeof(worker->mismatch[0]),
				         "shows %" PRId64 ", accepted %" PRId64,
				         push_whole_units(levels[i].shown, item->scale),
				         push_whole_units(item->shown, item->scale));
				mismatched[mismatches++] = resend;
				worker->figures->mismatches++;
				/* Push at most what the channel shows: a sale there that
				 * the ledger has not seen is never undone. */
				item->stale = true;
				item->shown = levels[i].shown;
				again[resend++] = *item;
			}
			events_flush(worker);
		}
		for (uint32_t i = 0; zeros && i < clean; i++) {
			const struct push_item *item = &worker->items[i];
			if (push_whole_units(item->quantity, item->scale) == 0 && !item->stale)
				again[resend++] = *item;
		}
		/* push_items sorts again[]: the mismatched items are found by id. */
		uint32_t mismatched_item[PULL_MAX];
		uint64_t mismatched_version[PULL_MAX];
		for (uint32_t m = 0; m < mismatches; m++) {
			mismatched_item[m] = again[mismatched[m]].item;
			mismatched_version[m] = again[mismatched[m]].version;
		}
		if (resend > 0)
			push_items(worker, again, resend, 0, stop);
		for (uint32_t m = 0; m < mismatches; m++)
			event_exception(worker, mismatched_item[m], mismatched_version[m],
			                PUSH_EXCEPTION_MISMATCH, worker->mismatch[m]);
		events_flush(worker);
	} while (after != 0 && !*stop);
}

static int channel_find(struct worker *worker, char *error, size_t error_size)
{
	struct skuld_lookup_match match;
	uint32_t count = 0;
	int rc = skuld_lookup(worker->client, SKULD_LOOKUP_CHANNEL, worker->config->channel, &match,
	                      1, &count, CALL_TIMEOUT);
	if (rc != 0) {
		snprintf(error, error_size, "looking up channel %s: %s", worker->config->channel,
		         skuld_strerror(rc));
		return -1;
	}
	if (match.id == 0) {
		snprintf(error, error_size, "skuld has no channel named %s",
		         worker->config->channel);
		return -1;
	}
	worker->channel = match.id;
	return 0;
}

int push_worker_run(const struct push_worker_config *config, const struct push_driver *driver,
                    volatile sig_atomic_t *stop, struct push_worker_figures *figures, char *error,
                    size_t error_size)
{
	struct worker *worker = calloc(1, sizeof(*worker));
	if (worker == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	worker->config = config;
	worker->driver = driver;
	worker->figures = figures;
	worker->cache.mask = 1023;
	worker->cache.slots = calloc(1024, sizeof(struct known));
	worker->round = calloc(ROUND_MAX, sizeof(struct push_item));
	struct skuld_options options;
	skuld_options_init(&options);
	/* A heap copy: the library reads addresses up to its own bound. */
	char *address = strdup(config->server);
	options.address = address;
	options.token = config->server_token;
	options.client_name = "skuld-push";
	options.tls_ca_file = config->server_tls_ca[0] != '\0' ? config->server_tls_ca : NULL;
	options.tls_server_name =
	        config->server_tls_name[0] != '\0' ? config->server_tls_name : NULL;
	options.client_id_path = config->client_id_path[0] != '\0' ? config->client_id_path : NULL;
	int ret = worker->cache.slots == NULL || worker->round == NULL || address == NULL
	                  ? -ENOMEM
	                  : skuld_client_create(&worker->client, &options);
	free(address);
	if (ret != 0) {
		snprintf(error, error_size, "skuld client: %s", skuld_strerror(ret));
		free(worker->cache.slots);
		free(worker->round);
		free(worker);
		return -1;
	}
	/* Keep trying until skuld is there (it may start after the worker). */
	while (!*stop && (ret = skuld_client_connect(worker->client, 2000)) != 0) {
		if (ret >= SKULD_ERR_MAGIC)
			break; /* refused (token, version): trying again will not help */
		sleep_ns(200000000ull, stop);
	}
	if (*stop)
		ret = 0; /* stopped while connecting: nothing was left undone */
	else if (ret == 0)
		ret = channel_find(worker, error, error_size);
	else
		snprintf(error, error_size, "skuld at %s: %s", config->server, skuld_strerror(ret));
	uint64_t next_reconcile = monotonic_ns() + (uint64_t)config->reconcile_s * 1000000000ull;
	uint64_t next_zeros = monotonic_ns() + (uint64_t)config->zero_resend_s * 1000000000ull;
	while (ret == 0 && !*stop) {
		int pulled = pull_round(worker, stop);
		uint64_t now = monotonic_ns();
		bool reconcile = config->reconcile_s != 0 && now >= next_reconcile;
		bool zeros = config->zero_resend_s != 0 && now >= next_zeros;
		/* Due sweeps run after the round, also under constant change. */
		if (pulled >= 0 && (reconcile || zeros)) {
			sweep(worker, reconcile, zeros, stop);
			if (reconcile)
				next_reconcile =
				        now + (uint64_t)config->reconcile_s * 1000000000ull;
			if (zeros)
				next_zeros = now + (uint64_t)config->zero_resend_s * 1000000000ull;
		}
		if (pulled <= 0)
			sleep_ns((uint64_t)config->idle_ms * 1000000ull, stop);
	}
	skuld_client_close(worker->client);
	free(worker->cache.slots);
	free(worker->round);
	free(worker);
	return ret == 0 ? 0 : -1;
}
