/*
 * push_shopify.c — the Shopify driver (push_shopify.h).
 */
#include "push_shopify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int shopify_driver_init(struct shopify_driver *driver, const struct shopify_driver_config *config,
                        uint64_t seed, uint64_t now_ns)
{
	memset(driver, 0, sizeof(*driver));
	driver->config = *config;
	if (shopify_cas_rule(config->version) == 0)
		return -1;
	driver->http = http_client_create();
	if (driver->http == NULL)
		return -1;
	pace_init(&driver->bucket, config->bucket_capacity, config->restore_rate, now_ns);
	driver->call_cost = config->call_cost;
	driver->rng = seed;
	return 0;
}

void shopify_driver_fini(struct shopify_driver *driver)
{
	http_client_destroy(driver->http);
	driver->http = NULL;
}

uint64_t shopify_driver_wait_ns(const struct shopify_driver *driver, uint64_t now_ns)
{
	uint64_t backoff = driver->retry_at_ns > now_ns ? driver->retry_at_ns - now_ns : 0;
	uint64_t pace = pace_wait_ns(&driver->bucket, driver->call_cost, now_ns);
	return backoff > pace ? backoff : pace;
}

/* The whole units a call shows for item: after a stale answer, never more
 * than the channel was just read to show. */
static int64_t quantity_to_send(const struct push_item *item)
{
	int64_t quantity = item->quantity;
	if (item->stale && item->shown_known && item->shown < quantity)
		quantity = item->shown;
	return push_whole_units(quantity, item->scale);
}

/* FNV-1a over what a call sends: a retry of the same items and values
 * reuses its idempotency key, anything else gets a new one. */
static uint64_t call_fingerprint(const struct push_item *items, const uint32_t *sent,
                                 uint32_t count)
{
	uint64_t hash = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < count; i++) {
		const struct push_item *item = &items[sent[i]];
		uint64_t words[] = {item->item, (uint64_t)quantity_to_send(item),
		                    (uint64_t)item->shown};
		for (size_t w = 0; w < 3; w++)
			for (int b = 0; b < 64; b += 8)
				hash = (hash ^ ((words[w] >> b) & 0xff)) * 0x100000001b3ull;
	}
	return hash;
}

static void key_choose(struct shopify_driver *driver, uint64_t fingerprint)
{
	if (driver->key[0] != '\0' && driver->key_items == fingerprint)
		return;
	snprintf(driver->key, sizeof(driver->key), "skuld-%s-%llu", driver->config.channel,
	         (unsigned long long)++driver->key_serial);
	driver->key_items = fingerprint;
}

static int graphql_call(struct shopify_driver *driver, const char *body, uint64_t now_ns,
                        struct http_response *response)
{
	char url[320], auth[160];
	snprintf(url, sizeof(url), "%s/admin/api/%s/graphql.json", driver->config.shop_url,
	         driver->config.version);
	snprintf(auth, sizeof(auth), "X-Shopify-Access-Token: %s", driver->config.token);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/json", auth},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = driver->config.timeout_ms,
	};
	pace_take(&driver->bucket, driver->call_cost, now_ns);
	driver->calls++;
	return http_call(driver->http, &request, response);
}

static void cost_learn(struct shopify_driver *driver, const struct shopify_answer *answer,
                       uint64_t now_ns)
{
	if (!answer->cost_known)
		return;
	pace_observe(&driver->bucket, answer->available, answer->maximum, answer->restore_rate,
	             now_ns);
	if (answer->requested_cost > 0)
		driver->call_cost = answer->requested_cost;
}

static void backoff_start(struct shopify_driver *driver, uint64_t retry_after_ms, uint64_t now_ns)
{
	uint64_t delay = backoff_delay_ms(&driver->config.backoff, driver->failures, retry_after_ms,
	                                  &driver->rng);
	driver->failures++;
	driver->retry_at_ns = now_ns + delay * 1000000ull;
}

/* Reads back what the channel shows for the stale items, so the next call
 * compares with it and pushes at most it. */
static void stale_read(struct shopify_driver *driver, const struct push_item *items,
                       const uint32_t *stale, uint32_t count, struct push_result *results,
                       uint64_t now_ns)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct push_item *item = &items[stale[i]];
		const char *ids[] = {item->listing[0]};
		char error[128];
		char *body = shopify_read_body(ids, 1, item->listing[1], error, sizeof(error));
		struct http_response response;
		struct shopify_level level;
		struct shopify_answer answer;
		if (body == NULL)
			continue;
		int ret = graphql_call(driver, body, now_ns, &response);
		free(body);
		if (ret != 0 ||
		    shopify_read_answer(response.status, response.body, response.body_size, 1,
		                        &level, &answer) != SHOPIFY_ACCEPTED) {
			continue; /* RETRY unchanged: the next call is stale again */
		}
		cost_learn(driver, &answer, now_ns);
		if (level.found && level.stocked) {
			struct push_result *result = &results[stale[i]];
			result->shown = push_base_units(level.available, item->scale);
			result->shown_known = true;
			result->stale = true;
		}
	}
}

static enum push_exception listing_exception(enum shopify_error_code code)
{
	switch (code) {
	case SHOPIFY_ERROR_UNKNOWN_ITEM:
		return PUSH_EXCEPTION_UNKNOWN;
	case SHOPIFY_ERROR_UNKNOWN_LOCATION:
		return PUSH_EXCEPTION_INACTIVE;
	case SHOPIFY_ERROR_NOT_STOCKED:
		return PUSH_EXCEPTION_NOT_STOCKED;
	case SHOPIFY_ERROR_QUANTITY:
	case SHOPIFY_ERROR_COMPARE_REQUIRED:
		return PUSH_EXCEPTION_VALIDATION;
	default:
		return PUSH_EXCEPTION_NONE;
	}
}

/* All-or-nothing user errors: sort each item into exception, stale or
 * plain retry; whole-call errors decide about the idempotency key. */
static void user_errors_apply(struct shopify_driver *driver, const struct push_item *items,
                              const uint32_t *sent, uint32_t count,
                              const struct shopify_answer *answer, struct push_result *results,
                              uint64_t now_ns)
{
	push_results_set(results, items, sent, count, PUSH_RETRY, PUSH_EXCEPTION_NONE, NULL);
	uint32_t stale[SHOPIFY_QUANTITIES_MAX];
	uint32_t stale_count = 0;
	for (uint32_t e = 0; e < answer->error_count; e++) {
		const struct shopify_error *error = &answer->errors[e];
		if (error->index < 0) {
			if (error->code == SHOPIFY_ERROR_IDEMPOTENCY_BUSY)
				backoff_start(driver, 0, now_ns); /* same key, later */
			else if (error->code == SHOPIFY_ERROR_IDEMPOTENCY_FAILED ||
			         error->code == SHOPIFY_ERROR_IDEMPOTENCY_MISMATCH)
				driver->key[0] = '\0'; /* a new key next time */
			else
				push_results_set(results, items, sent, count, PUSH_EXCEPTION,
				                 PUSH_EXCEPTION_VALIDATION, error->message);
			continue;
		}
		uint32_t at = sent[error->index];
		if (error->code == SHOPIFY_ERROR_STALE) {
			stale[stale_count++] = at;
			continue;
		}
		enum push_exception exception = listing_exception(error->code);
		push_result_set(&results[at], &items[at],
		                exception != PUSH_EXCEPTION_NONE ? PUSH_EXCEPTION : PUSH_RETRY,
		                exception, error->message);
	}
	/* The call changed nothing; a retry of the rest is a new call. */
	driver->key[0] = '\0';
	stale_read(driver, items, stale, stale_count, results, now_ns);
}

static void answer_apply(struct shopify_driver *driver, const struct push_item *items,
                         const uint32_t *sent, uint32_t count, const struct shopify_answer *answer,
                         const struct http_response *response, struct push_result *results,
                         uint64_t now_ns)
{
	switch (answer->outcome) {
	case SHOPIFY_ACCEPTED:
		driver->failures = 0;
		driver->key[0] = '\0';
		for (uint32_t i = 0; i < count; i++) {
			const struct push_item *item = &items[sent[i]];
			push_result_set(&results[sent[i]], item, PUSH_ACCEPTED, PUSH_EXCEPTION_NONE,
			                NULL);
			results[sent[i]].shown =
			        push_base_units(quantity_to_send(item), item->scale);
			results[sent[i]].shown_known = true;
		}
		return;
	case SHOPIFY_USER_ERRORS:
		driver->failures = 0;
		user_errors_apply(driver, items, sent, count, answer, results, now_ns);
		return;
	case SHOPIFY_THROTTLED:
		driver->calls_throttled++;
		pace_throttled(&driver->bucket, now_ns);
		cost_learn(driver, answer, now_ns);
		if (response->retry_after_ms != 0)
			driver->retry_at_ns = now_ns + response->retry_after_ms * 1000000ull;
		push_results_set(results, items, sent, count, PUSH_RETRY, PUSH_EXCEPTION_NONE,
		                 "throttled");
		return;
	case SHOPIFY_AUTH:
		backoff_start(driver, response->retry_after_ms, now_ns);
		push_results_set(results, items, sent, count, PUSH_EXCEPTION, PUSH_EXCEPTION_AUTH,
		                 "Shopify refused the access token");
		return;
	case SHOPIFY_REJECTED:
	case SHOPIFY_NOT_FOUND:
		backoff_start(driver, 0, now_ns);
		push_results_set(
		        results, items, sent, count, PUSH_EXCEPTION, PUSH_EXCEPTION_VALIDATION,
		        answer->message[0] ? answer->message : "unknown API version or shop");
		return;
	case SHOPIFY_SERVER_ERROR:
	case SHOPIFY_MALFORMED:
	default:
		backoff_start(driver, response->retry_after_ms, now_ns);
		push_results_set(results, items, sent, count, PUSH_RETRY, PUSH_EXCEPTION_NONE,
		                 "server error or unreadable answer");
		return;
	}
}

/* Picks what goes into this call: mapped items, and up to 2025-10 only
 * those that agree with the first on whether the shown value is known. */
static uint32_t call_select(const struct shopify_driver *driver, const struct push_item *items,
                            uint32_t count, struct push_result *results, uint32_t *sent)
{
	enum shopify_cas rule = shopify_cas_rule(driver->config.version);
	uint32_t used = 0;
	int known = -1;
	for (uint32_t i = 0; i < count && i < SHOPIFY_QUANTITIES_MAX; i++) {
		const struct push_item *item = &items[i];
		if (item->listing[0][0] == '\0' || item->listing[1][0] == '\0') {
			push_result_set(&results[i], item, PUSH_EXCEPTION, PUSH_EXCEPTION_UNMAPPED,
			                "no Shopify inventory item and location for this item");
			continue;
		}
		if (rule == SHOPIFY_CAS_COMPARE_QUANTITY) {
			if (known < 0)
				known = item->shown_known;
			if (known != item->shown_known) {
				push_result_set(&results[i], item, PUSH_RETRY, PUSH_EXCEPTION_NONE,
				                NULL);
				continue;
			}
		}
		sent[used++] = i;
	}
	for (uint32_t i = SHOPIFY_QUANTITIES_MAX; i < count; i++)
		push_result_set(&results[i], &items[i], PUSH_RETRY, PUSH_EXCEPTION_NONE, NULL);
	return used;
}

void shopify_driver_push(struct shopify_driver *driver, const struct push_item *items,
                         uint32_t count, struct push_result *results, uint64_t now_ns)
{
	uint32_t sent[SHOPIFY_QUANTITIES_MAX];
	uint32_t used = call_select(driver, items, count, results, sent);
	if (used == 0)
		return;
	struct shopify_quantity quantities[SHOPIFY_QUANTITIES_MAX];
	for (uint32_t i = 0; i < used; i++) {
		const struct push_item *item = &items[sent[i]];
		quantities[i] = (struct shopify_quantity){
		        .inventory_item = item->listing[0],
		        .location = item->listing[1],
		        .quantity = quantity_to_send(item),
		        .shown = push_whole_units(item->shown, item->scale),
		        .shown_known = item->shown_known,
		};
	}
	key_choose(driver, call_fingerprint(items, sent, used));
	char reference[160]; /* "skuld://push/" + channel (32) + key (64) */
	snprintf(reference, sizeof(reference), "skuld://push/%s/%s", driver->config.channel,
	         driver->key);
	struct shopify_set set = {driver->config.version, driver->key, reference, quantities, used};
	char error[128];
	char *body = shopify_set_body(&set, error, sizeof(error));
	if (body == NULL) {
		push_results_set(results, items, sent, used, PUSH_EXCEPTION,
		                 PUSH_EXCEPTION_VALIDATION, error);
		return;
	}
	struct http_response response;
	int ret = graphql_call(driver, body, now_ns, &response);
	free(body);
	if (ret != 0) {
		backoff_start(driver, 0, now_ns);
		push_results_set(results, items, sent, used, PUSH_RETRY, PUSH_EXCEPTION_NONE,
		                 response.error);
		return;
	}
	struct shopify_answer answer;
	shopify_set_answer(response.status, response.body, response.body_size, used, &answer);
	cost_learn(driver, &answer, now_ns);
	answer_apply(driver, items, sent, used, &answer, &response, results, now_ns);
}

int shopify_driver_read(struct shopify_driver *driver, const struct push_item *items,
                        uint32_t count, struct push_level *levels, uint64_t now_ns)
{
	if (count == 0 || count > SHOPIFY_READ_MAX)
		return -1;
	const char *ids[SHOPIFY_READ_MAX];
	for (uint32_t i = 0; i < count; i++)
		ids[i] = items[i].listing[0];
	char error[128];
	/* One location per call: the worker's channel has one. */
	char *body = shopify_read_body(ids, count, items[0].listing[1], error, sizeof(error));
	if (body == NULL)
		return -1;
	struct http_response response;
	int ret = graphql_call(driver, body, now_ns, &response);
	free(body);
	if (ret != 0)
		return -1;
	struct shopify_level found[SHOPIFY_READ_MAX];
	struct shopify_answer answer;
	enum shopify_outcome outcome = shopify_read_answer(
	        response.status, response.body, response.body_size, count, found, &answer);
	cost_learn(driver, &answer, now_ns);
	if (outcome == SHOPIFY_THROTTLED)
		driver->calls_throttled++;
	if (outcome != SHOPIFY_ACCEPTED)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		levels[i].known = found[i].found && found[i].stocked;
		levels[i].shown =
		        levels[i].known ? push_base_units(found[i].available, items[i].scale) : 0;
	}
	return 0;
}
