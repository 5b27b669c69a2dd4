/*
 * push_square.c — the Square driver (push_square.h).
 */
#include "push_square.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define READ_PAGES_MAX 10 /* batch-retrieve pages per read (one is the rule) */

static uint64_t realtime_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static uint64_t wall_now(const struct square_driver *driver)
{
	return driver->config.wall_ns != NULL ? driver->config.wall_ns() : realtime_ns();
}

/* Square-Version is a date: YYYY-MM-DD. */
static bool version_valid(const char *version)
{
	if (strlen(version) != 10 || version[4] != '-' || version[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)version[i]))
			return false;
	return true;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int square_driver_init(struct square_driver *driver, const struct square_driver_config *config,
                       uint64_t seed, uint64_t now_ns)
{
	memset(driver, 0, sizeof(*driver));
	driver->config = *config;
	if (!version_valid(config->version) || config->location[0] == '\0' ||
	    config->api_url[0] == '\0' || config->channel[0] == '\0')
		return -1;
	driver->http = http_client_create();
	if (driver->http == NULL)
		return -1;
	pace_init(&driver->bucket, config->bucket_capacity, config->restore_rate, now_ns);
	driver->rng = seed;
	driver->run = mix(seed ^ wall_now(driver)) & 0xffffffffffffull;
	return 0;
}

static void key_forget(struct square_driver *driver)
{
	free(driver->key_body);
	driver->key_body = NULL;
	driver->key[0] = '\0';
	driver->key_items = 0;
}

void square_driver_fini(struct square_driver *driver)
{
	key_forget(driver);
	http_client_destroy(driver->http);
	driver->http = NULL;
}

uint64_t square_driver_wait_ns(const struct square_driver *driver, uint64_t now_ns)
{
	uint64_t backoff = driver->retry_at_ns > now_ns ? driver->retry_at_ns - now_ns : 0;
	uint64_t pace = pace_wait_ns(&driver->bucket, 1, now_ns);
	return backoff > pace ? backoff : pace;
}

/* The catalog object id of item: its listing, without the prefix the worker
 * put before an all-digit one. */
static const char *object_of(const struct square_driver *driver, const struct push_item *item)
{
	const char *text = item->listing[0];
	size_t prefix = strlen(driver->config.listing_prefix);
	if (prefix == 0 || strncmp(text, driver->config.listing_prefix, prefix) != 0 ||
	    text[prefix] == '\0')
		return text;
	for (const char *c = text + prefix; *c != '\0'; c++)
		if (!isdigit((unsigned char)*c))
			return text;
	return text + prefix;
}

/* Base units a call sends for item: after a stale answer or a read-back
 * that differed, never more than the channel was just read to show. */
static int64_t quantity_to_send(const struct push_item *item)
{
	int64_t quantity = item->quantity;
	if (item->stale && item->shown_known && item->shown < quantity)
		quantity = item->shown;
	return square_quantity_sent(quantity, item->scale);
}

/* FNV-1a over what a call sends: the same items, values, times and objects
 * re-send the stored body under the same key; anything else is a new key. */
static uint64_t call_fingerprint(const struct square_driver *driver, const struct push_item *items,
                                 const uint32_t *sent, uint32_t count)
{
	uint64_t hash = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < count; i++) {
		const struct push_item *item = &items[sent[i]];
		uint64_t words[] = {item->item, (uint64_t)quantity_to_send(item),
		                    item->dirty_since};
		for (size_t w = 0; w < 3; w++)
			for (int b = 0; b < 64; b += 8)
				hash = (hash ^ ((words[w] >> b) & 0xff)) * 0x100000001b3ull;
		for (const char *c = object_of(driver, item); *c != '\0'; c++)
			hash = (hash ^ (uint8_t)*c) * 0x100000001b3ull;
	}
	return hash;
}

/* Picks the items of this call: mapped ones, one per catalog object. */
static uint32_t call_select(const struct square_driver *driver, const struct push_item *items,
                            uint32_t count, struct push_result *results, uint32_t *sent)
{
	uint32_t used = 0;
	for (uint32_t i = 0; i < count; i++) {
		const struct push_item *item = &items[i];
		const char *object = object_of(driver, item);
		if (i >= SQUARE_CHANGES_MAX) {
			push_result_set(&results[i], item, PUSH_RETRY, PUSH_EXCEPTION_NONE, NULL);
			continue;
		}
		if (object[0] == '\0') {
			push_result_set(&results[i], item, PUSH_EXCEPTION, PUSH_EXCEPTION_UNMAPPED,
			                "no Square catalog object for this item");
			continue;
		}
		if (strlen(object) >= SQUARE_ID_SIZE) {
			push_result_set(&results[i], item, PUSH_EXCEPTION,
			                PUSH_EXCEPTION_VALIDATION,
			                "the listing is longer than a Square catalog object id");
			continue;
		}
		bool twice = false;
		for (uint32_t j = 0; j < used && !twice; j++)
			twice = strcmp(object_of(driver, &items[sent[j]]), object) == 0;
		if (twice) { /* two counts of one object in a call: the next call */
			push_result_set(&results[i], item, PUSH_RETRY, PUSH_EXCEPTION_NONE, NULL);
			continue;
		}
		sent[used++] = i;
	}
	return used;
}

/* The body for sent: the stored one when the same items are sent again
 * (a retry must be byte for byte the same under its key), else a new key
 * and a new body. Returns the body (owned by the driver), or NULL with a
 * reason in error. */
static const char *body_choose(struct square_driver *driver, const struct push_item *items,
                               const uint32_t *sent, uint32_t count, char *error, size_t size)
{
	uint64_t fingerprint = call_fingerprint(driver, items, sent, count);
	if (driver->key_body != NULL && driver->key_items == fingerprint)
		return driver->key_body;
	key_forget(driver);
	snprintf(driver->key, sizeof(driver->key), "skuld-%s-%012" PRIx64 "-%" PRIu64,
	         driver->config.channel, driver->run, ++driver->key_serial);
	uint64_t now = wall_now(driver);
	struct square_count_change changes[SQUARE_CHANGES_MAX];
	for (uint32_t i = 0; i < count; i++) {
		const struct push_item *item = &items[sent[i]];
		changes[i] = (struct square_count_change){
		        .catalog_object_id = object_of(driver, item),
		        .location_id = driver->config.location,
		        .quantity = quantity_to_send(item),
		        .scale = item->scale,
		        .occurred_at_ns = driver->occurred_now
		                                  ? now
		                                  : square_occurred_at(item->dirty_since, now),
		};
	}
	struct square_batch batch = {driver->key, changes, count};
	driver->key_body = square_batch_body(&batch, error, size);
	if (driver->key_body == NULL) {
		key_forget(driver);
		return NULL;
	}
	driver->key_items = fingerprint;
	return driver->key_body;
}

static int square_call(struct square_driver *driver, const char *path, const char *body,
                       uint64_t now_ns, struct http_response *response)
{
	char url[320], auth[160], version[48];
	snprintf(url, sizeof(url), "%s%s", driver->config.api_url, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", driver->config.token);
	snprintf(version, sizeof(version), "Square-Version: %s", driver->config.version);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/json", "Accept: application/json", auth,
	                    version},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = driver->config.timeout_ms,
	};
	pace_take(&driver->bucket, 1, now_ns);
	driver->calls++;
	return http_call(driver->http, &request, response);
}

static void backoff_start(struct square_driver *driver, uint64_t retry_after_ms, uint64_t now_ns)
{
	uint64_t delay = backoff_delay_ms(&driver->config.backoff, driver->failures, retry_after_ms,
	                                  &driver->rng);
	driver->failures++;
	driver->retry_at_ns = now_ns + delay * 1000000ull;
}

static enum push_exception item_exception(const struct square_error *error)
{
	if (error->code == SQUARE_ERROR_NOT_FOUND)
		return PUSH_EXCEPTION_UNKNOWN;
	if (error->code == SQUARE_ERROR_INVALID_VALUE &&
	    (error->field_kind == SQUARE_FIELD_OBJECT || error->field_kind == SQUARE_FIELD_OTHER))
		return PUSH_EXCEPTION_UNKNOWN;
	return PUSH_EXCEPTION_VALIDATION;
}

/* Every item whose catalog object is the one of items[at]. */
static void exception_object(const struct square_driver *driver, const struct push_item *items,
                             const uint32_t *sent, uint32_t count, uint32_t at,
                             enum push_exception exception, const char *detail,
                             struct push_result *results)
{
	const char *object = object_of(driver, &items[sent[at]]);
	for (uint32_t i = 0; i < count; i++)
		if (strcmp(object_of(driver, &items[sent[i]]), object) == 0)
			push_result_set(&results[sent[i]], &items[sent[i]], PUSH_EXCEPTION,
			                exception, detail);
}

/* A batch Square refused as a whole or in part: nothing was applied. */
static void errors_apply(struct square_driver *driver, const struct push_item *items,
                         const uint32_t *sent, uint32_t count, const struct square_answer *answer,
                         struct push_result *results, uint64_t now_ns)
{
	push_results_set(results, items, sent, count, PUSH_RETRY, PUSH_EXCEPTION_NONE,
	                 answer->message);
	key_forget(driver); /* Square keeps the refusal under the key: a new one next time */
	bool batch_failed = false;
	for (uint32_t e = 0; e < answer->error_count && !batch_failed; e++) {
		const struct square_error *error = &answer->errors[e];
		char detail[PUSH_DETAIL_SIZE];
		snprintf(detail, sizeof(detail), "%.37s: %.120s", error->code_text, error->detail);
		switch (error->code) {
		case SQUARE_ERROR_IDEMPOTENCY:
			continue;
		case SQUARE_ERROR_INVALID_TIME:
			driver->occurred_now = true;
			backoff_start(driver, 0, now_ns);
			continue;
		case SQUARE_ERROR_SERVER:
			backoff_start(driver, 0, now_ns);
			continue;
		default:
			break;
		}
		if (error->field_kind == SQUARE_FIELD_LOCATION) {
			push_results_set(results, items, sent, count, PUSH_EXCEPTION,
			                 PUSH_EXCEPTION_INACTIVE, detail);
			batch_failed = true;
		} else if (error->index >= 0) {
			exception_object(driver, items, sent, count, (uint32_t)error->index,
			                 item_exception(error), detail, results);
		} else {
			push_results_set(results, items, sent, count, PUSH_EXCEPTION,
			                 PUSH_EXCEPTION_VALIDATION, detail);
			batch_failed = true;
		}
	}
	if (batch_failed)
		backoff_start(driver, 0, now_ns);
}

static void accepted_apply(struct square_driver *driver, const struct push_item *items,
                           const uint32_t *sent, uint32_t count, struct push_result *results)
{
	driver->failures = 0;
	driver->occurred_now = false;
	key_forget(driver);
	for (uint32_t i = 0; i < count; i++) {
		const struct push_item *item = &items[sent[i]];
		struct push_result *result = &results[sent[i]];
		push_result_set(result, item, PUSH_ACCEPTED, PUSH_EXCEPTION_NONE, NULL);
		result->shown = quantity_to_send(item);
		result->shown_known = true;
		/* Square's count: the value sent plus whatever happened after its
		 * occurred_at (a sale on Square the ledger has not seen yet). */
		const struct square_count *count_found = square_count_find(
		        &driver->answer, object_of(driver, item), driver->config.location);
		int64_t shown;
		if (count_found != NULL &&
		    square_quantity_parse(count_found->quantity, item->scale, &shown) == 0)
			result->shown = shown < 0 ? 0 : shown;
	}
}

static void answer_apply(struct square_driver *driver, const struct push_item *items,
                         const uint32_t *sent, uint32_t count, const struct http_response *response,
                         struct push_result *results, uint64_t now_ns)
{
	const struct square_answer *answer = &driver->answer;
	switch (answer->outcome) {
	case SQUARE_ACCEPTED:
		accepted_apply(driver, items, sent, count, results);
		return;
	case SQUARE_ERRORS:
		driver->failures = 0;
		errors_apply(driver, items, sent, count, answer, results, now_ns);
		return;
	case SQUARE_RATE_LIMITED:
		driver->calls_throttled++;
		pace_throttled(&driver->bucket, now_ns);
		backoff_start(driver, response->retry_after_ms, now_ns);
		push_results_set(results, items, sent, count, PUSH_RETRY, PUSH_EXCEPTION_NONE,
		                 "rate limited");
		return;
	case SQUARE_AUTH:
		backoff_start(driver, response->retry_after_ms, now_ns);
		push_results_set(results, items, sent, count, PUSH_EXCEPTION, PUSH_EXCEPTION_AUTH,
		                 answer->message[0] ? answer->message : "Square refused the token");
		return;
	case SQUARE_REJECTED:
		key_forget(driver);
		backoff_start(driver, 0, now_ns);
		push_results_set(results, items, sent, count, PUSH_EXCEPTION,
		                 PUSH_EXCEPTION_VALIDATION, answer->message);
		return;
	case SQUARE_SERVER_ERROR:
	case SQUARE_MALFORMED:
	default:
		/* Unknown whether applied: the same body under the same key next. */
		backoff_start(driver, response->retry_after_ms, now_ns);
		push_results_set(results, items, sent, count, PUSH_RETRY, PUSH_EXCEPTION_NONE,
		                 "server error or unreadable answer");
		return;
	}
}

void square_driver_push(struct square_driver *driver, const struct push_item *items, uint32_t count,
                        struct push_result *results, uint64_t now_ns)
{
	uint32_t sent[SQUARE_CHANGES_MAX];
	uint32_t used = call_select(driver, items, count, results, sent);
	if (used == 0)
		return;
	char error[128];
	const char *body = body_choose(driver, items, sent, used, error, sizeof(error));
	if (body == NULL) {
		push_results_set(results, items, sent, used, PUSH_EXCEPTION,
		                 PUSH_EXCEPTION_VALIDATION, error);
		return;
	}
	struct http_response response;
	if (square_call(driver, "/v2/inventory/changes/batch-create", body, now_ns, &response) !=
	    0) {
		backoff_start(driver, 0, now_ns);
		push_results_set(results, items, sent, used, PUSH_RETRY, PUSH_EXCEPTION_NONE,
		                 response.error);
		return;
	}
	/* The changes as sent, for the errors that name one. */
	struct square_count_change changes[SQUARE_CHANGES_MAX];
	for (uint32_t i = 0; i < used; i++)
		changes[i] = (struct square_count_change){
		        .catalog_object_id = object_of(driver, &items[sent[i]]),
		        .location_id = driver->config.location,
		};
	struct square_batch batch = {driver->key, changes, used};
	square_batch_answer(response.status, response.body, response.body_size, &batch,
	                    &driver->answer);
	answer_apply(driver, items, sent, used, &response, results, now_ns);
}

/* One page of a read into levels; the cursor of the next is left in the
 * answer. Returns 0 or -1. */
static int read_page(struct square_driver *driver, const char *const *objects,
                     const struct push_item *items, uint32_t count, const char *cursor,
                     struct push_level *levels, uint64_t now_ns)
{
	char error[128];
	char *body = square_read_body(objects, count, driver->config.location, cursor, error,
	                              sizeof(error));
	if (body == NULL)
		return -1;
	struct http_response response;
	int ret =
	        square_call(driver, "/v2/inventory/counts/batch-retrieve", body, now_ns, &response);
	free(body);
	if (ret != 0)
		return -1;
	enum square_outcome outcome = square_read_answer(response.status, response.body,
	                                                 response.body_size, &driver->answer);
	if (outcome == SQUARE_RATE_LIMITED) {
		driver->calls_throttled++;
		pace_throttled(&driver->bucket, now_ns);
		backoff_start(driver, response.retry_after_ms, now_ns);
	}
	if (outcome != SQUARE_ACCEPTED)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		const struct square_count *found =
		        square_count_find(&driver->answer, objects[i], driver->config.location);
		int64_t shown;
		if (found != NULL &&
		    square_quantity_parse(found->quantity, items[i].scale, &shown) == 0) {
			levels[i].known = true;
			levels[i].shown = shown;
		}
	}
	return 0;
}

int square_driver_read(struct square_driver *driver, const struct push_item *items, uint32_t count,
                       struct push_level *levels, uint64_t now_ns)
{
	if (count == 0 || count > SQUARE_READ_MAX)
		return -1;
	const char *objects[SQUARE_READ_MAX];
	for (uint32_t i = 0; i < count; i++) {
		objects[i] = object_of(driver, &items[i]);
		levels[i] = (struct push_level){0};
	}
	char cursor[sizeof(driver->answer.cursor)] = "";
	for (int page = 0; page < READ_PAGES_MAX; page++) {
		if (read_page(driver, objects, items, count, page == 0 ? NULL : cursor, levels,
		              now_ns) != 0)
			return -1;
		if (driver->answer.cursor[0] == '\0')
			return 0;
		snprintf(cursor, sizeof(cursor), "%s", driver->answer.cursor);
	}
	return -1; /* more pages than a read of 100 objects can have */
}

/* ---- skuld-push's kind "square" ---------------------------------------------- */

static struct square_driver square;

static uint64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static uint64_t kind_wait(void *context, uint64_t now_ns)
{
	return square_driver_wait_ns(context, now_ns);
}

static void kind_push(void *context, const struct push_item *items, uint32_t count,
                      struct push_result *results, uint64_t now_ns)
{
	square_driver_push(context, items, count, results, now_ns);
}

static int kind_read(void *context, const struct push_item *items, uint32_t count,
                     struct push_level *levels, uint64_t now_ns)
{
	return square_driver_read(context, items, count, levels, now_ns);
}

int square_kind_start(const struct push_worker_config *config, struct push_driver *adapter)
{
	struct square_driver_config settings = {
	        .timeout_ms = config->timeout_ms,
	        .bucket_capacity = 10, /* [unverified]: Square publishes no limits */
	        .restore_rate = 5,
	        .backoff = {.base_ms = 200, .cap_ms = 30000},
	};
	snprintf(settings.api_url, sizeof(settings.api_url), "%s", config->api_url);
	snprintf(settings.token, sizeof(settings.token), "%s", config->api_token);
	snprintf(settings.version, sizeof(settings.version), "%s", config->api_version);
	snprintf(settings.location, sizeof(settings.location), "%s", config->location);
	snprintf(settings.channel, sizeof(settings.channel), "%.31s", config->channel);
	snprintf(settings.listing_prefix, sizeof(settings.listing_prefix), "%s",
	         config->listing_prefix);
	if (!version_valid(settings.version)) {
		fprintf(stderr,
		        "skuld-push: square: api_version %s is not a Square-Version "
		        "(YYYY-MM-DD, e.g. 2025-08-20)\n",
		        config->api_version);
		return -1;
	}
	uint64_t seed = monotonic_ns() ^ realtime_ns() ^ ((uint64_t)getpid() << 32);
	if (square_driver_init(&square, &settings, seed, monotonic_ns()) != 0)
		return -1;
	*adapter = (struct push_driver){
	        .context = &square,
	        .batch_max = SQUARE_CHANGES_MAX,
	        .read_max = SQUARE_READ_MAX,
	        .wait_ns = kind_wait,
	        .push = kind_push,
	        .read = kind_read,
	};
	return 0;
}

void square_kind_stop(void)
{
	fprintf(stderr, "skuld-push: Square calls %" PRIu64 ", rate limited %" PRIu64 "\n",
	        square.calls, square.calls_throttled);
	square_driver_fini(&square);
}
