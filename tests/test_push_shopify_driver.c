/*
 * test_push_shopify_driver.c — skuld-push's Shopify driver
 * (channels/push_shopify.c) against the Shopify stand-in: verdicts per item,
 * a channel sale never undone after a stale answer, exceptions that do not
 * hold back the other items, a learned bucket that is never throttled, and
 * a retried call after a 5xx that the channel applies once.
 */
#include <jansson.h>

#include "push_shopify.h"
#include "standin_harness.h"

#define ITEM(n)  "gid://shopify/InventoryItem/" #n
#define LOCATION "gid://shopify/Location/1"

static const char seed[] =
        "{\"locations\":[{\"id\":\"" LOCATION "\",\"name\":\"Web\",\"active\":true}],"
        "\"levels\":[{\"inventoryItemId\":\"" ITEM(
                1) "\",\"locationId\":\"" LOCATION
                   "\",\"available\":3},{\"inventoryItemId\":\"" ITEM(
                           2) "\",\"locationId\":\"" LOCATION
                              "\",\"available\":10},{\"inventoryItemId\":\"" ITEM(
                                      3) "\",\"locationId\":\"" LOCATION "\",\"available\":0}]}";

static struct standin standin;
static struct http_client *control;
static struct shopify_driver driver;

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static void driver_start(const char *version, const char *token)
{
	struct shopify_driver_config config = {
	        .timeout_ms = 5000,
	        .bucket_capacity = 2000,
	        .restore_rate = 100,
	        .call_cost = 10,
	        .backoff = {.base_ms = 10, .cap_ms = 200},
	};
	snprintf(config.shop_url, sizeof(config.shop_url), "%s", standin.base);
	snprintf(config.token, sizeof(config.token), "%s", token);
	snprintf(config.version, sizeof(config.version), "%s", version);
	snprintf(config.channel, sizeof(config.channel), "web");
	cr_assert_eq(shopify_driver_init(&driver, &config, 1, now_ns()), 0);
}

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	control = http_client_create();
	standin_start(&standin, "shopify.py", seed);
	driver_start("2025-01", "shpat_standin");
}

static void teardown(void)
{
	shopify_driver_fini(&driver);
	standin_stop(&standin);
	http_client_destroy(control);
}

TestSuite(push_shopify_driver, .init = setup, .fini = teardown, .timeout = 60);

static struct push_item item_make(uint32_t id, const char *gid, int64_t quantity, int64_t shown,
                                  bool known)
{
	struct push_item item = {.item = id,
	                         .version = 1,
	                         .quantity = quantity,
	                         .shown = shown,
	                         .shown_known = known};
	if (gid != NULL) {
		snprintf(item.listing[0], sizeof(item.listing[0]), "%s", gid);
		snprintf(item.listing[1], sizeof(item.listing[1]), "%s", LOCATION);
	}
	return item;
}

/* What the stand-in shows now for an item at the location. */
static int64_t channel_available(const char *gid)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/state", standin.base);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(control, &request, &response), 0);
	json_t *state = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert_not_null(state);
	json_t *levels = json_object_get(state, "levels");
	size_t i;
	json_t *level;
	int64_t available = -1;
	json_array_foreach(levels, i, level)
	{
		if (strcmp(json_string_value(json_object_get(level, "inventoryItemId")), gid) == 0)
			available = json_integer_value(json_object_get(level, "available"));
	}
	json_decref(state);
	cr_assert_geq(available, 0, "no level for %s", gid);
	return available;
}

Test(push_shopify_driver, mapped_items_are_accepted_and_unmapped_ones_are_exceptions)
{
	struct push_item items[] = {
	        item_make(1, ITEM(1), 7, 3, true),
	        item_make(2, NULL, 4, 0, true),
	        item_make(3, ITEM(2), 0, 10, true),
	};
	struct push_result results[3];
	shopify_driver_push(&driver, items, 3, results, now_ns());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED);
	cr_assert_eq(results[0].shown, 7);
	cr_assert_eq(results[1].verdict, PUSH_EXCEPTION);
	cr_assert_eq(results[1].exception, PUSH_EXCEPTION_UNMAPPED);
	cr_assert_eq(results[2].verdict, PUSH_ACCEPTED);
	cr_assert_eq(results[2].shown, 0);
	cr_assert_eq(channel_available(ITEM(1)), 7);
	cr_assert_eq(channel_available(ITEM(2)), 0);
}

Test(push_shopify_driver, decimal_quantities_round_down)
{
	struct push_item item = item_make(1, ITEM(1), 2750, 3000, true); /* 2.750 kg */
	item.scale = 3;
	struct push_result result;
	shopify_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED);
	cr_assert_eq(result.shown, 2000, "2 whole units, in base units");
	cr_assert_eq(channel_available(ITEM(1)), 2);
}

Test(push_shopify_driver, a_channel_sale_the_ledger_has_not_seen_is_never_undone)
{
	standin_control(&standin, control, "sale",
	                "{\"inventoryItemId\":\"" ITEM(1) "\",\"locationId\":\"" LOCATION
	                                                  "\",\"quantity\":2}");
	/* The ledger believes the channel shows 3 and wants 7. */
	struct push_item item = item_make(1, ITEM(1), 7, 3, true);
	struct push_result result;
	shopify_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_RETRY);
	cr_assert(result.stale && result.shown_known);
	cr_assert_eq(result.shown, 1, "read back after the stale answer");
	cr_assert_eq(channel_available(ITEM(1)), 1, "nothing applied");

	item.shown = result.shown;
	item.stale = result.stale;
	shopify_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED);
	cr_assert_eq(result.shown, 1, "the smaller of the two");
	cr_assert_eq(channel_available(ITEM(1)), 1);
}

Test(push_shopify_driver, a_not_stocked_item_is_parked_and_does_not_hold_back_the_others)
{
	standin_control(&standin, control, "level",
	                "{\"inventoryItemId\":\"" ITEM(3) "\",\"locationId\":\"" LOCATION
	                                                  "\",\"stocked\":false}");
	struct push_item items[] = {item_make(1, ITEM(1), 5, 3, true),
	                            item_make(3, ITEM(3), 4, 0, true)};
	struct push_result results[2];
	shopify_driver_push(&driver, items, 2, results, now_ns());
	cr_assert_eq(results[1].verdict, PUSH_EXCEPTION);
	cr_assert_eq(results[1].exception, PUSH_EXCEPTION_NOT_STOCKED);
	cr_assert_eq(results[0].verdict, PUSH_RETRY, "all-or-nothing: not applied");
	shopify_driver_push(&driver, items, 1, results, now_ns());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED);
	cr_assert_eq(channel_available(ITEM(1)), 5);
}

Test(push_shopify_driver, a_wrong_token_is_an_auth_exception)
{
	shopify_driver_fini(&driver);
	driver_start("2025-01", "shpat_revoked");
	struct push_item item = item_make(1, ITEM(1), 5, 3, true);
	struct push_result result;
	shopify_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_EXCEPTION);
	cr_assert_eq(result.exception, PUSH_EXCEPTION_AUTH);
	cr_assert_eq(channel_available(ITEM(1)), 3);
}

/* A small, fast bucket the driver has not been told about: it learns it
 * from the first answer and is never throttled. */
Test(push_shopify_driver, a_learned_bucket_is_never_throttled)
{
	standin_control(&standin, control, "config",
	                "{\"bucket_capacity\":100,\"restore_rate\":400,\"mutation_cost\":10}");
	standin_control(&standin, control, "bucket", "{\"currentlyAvailable\":100}");
	struct push_item item = item_make(2, ITEM(2), 10, 10, true);
	uint32_t accepted = 0;
	uint64_t deadline = now_ns() + 20ull * 1000000000ull;
	for (int call = 0; call < 120 && now_ns() < deadline; call++) {
		uint64_t wait = shopify_driver_wait_ns(&driver, now_ns());
		cr_assert_neq(wait, PACE_NEVER);
		if (wait > 0)
			nanosleep(&(struct timespec){(time_t)(wait / 1000000000u),
			                             (long)(wait % 1000000000u)},
			          NULL);
		item.quantity = item.shown + (call % 2 ? 1 : -1);
		struct push_result result;
		shopify_driver_push(&driver, &item, 1, &result, now_ns());
		cr_assert_neq(result.verdict, PUSH_EXCEPTION, "%s", result.detail);
		if (result.verdict == PUSH_ACCEPTED) {
			accepted++;
			item.shown = result.shown;
		}
	}
	cr_assert_eq(driver.calls_throttled, 0);
	cr_assert_eq(accepted, 120);
	cr_assert_float_eq(driver.bucket.capacity, 100.0, 1e-9, "learned");
	cr_assert_float_eq(driver.bucket.rate, 400.0, 1e-9, "learned");
}

/* 2026-01: a call applied but answered 503 is retried with the same
 * idempotency key, and the channel applies it once. */
Test(push_shopify_driver, a_retry_after_a_5xx_reuses_the_key_and_applies_once)
{
	shopify_driver_fini(&driver);
	driver_start("2026-01", "shpat_standin");
	standin_control(&standin, control, "faults",
	                "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}");
	struct push_item item = item_make(2, ITEM(2), 6, 10, true);
	struct push_result result;
	shopify_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_RETRY);
	char key[64];
	snprintf(key, sizeof(key), "%s", driver.key);
	cr_assert_neq(key[0], '\0');
	cr_assert_eq(channel_available(ITEM(2)), 6, "applied before the 503");

	cr_assert_eq(driver.failures, 1, "backing off");
	uint64_t wait = shopify_driver_wait_ns(&driver, now_ns());
	nanosleep(&(struct timespec){0, (long)wait}, NULL);
	shopify_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(channel_available(ITEM(2)), 6, "once");
	/* The stand-in's log: one change of "available" for the key, and one
	 * replay of its stored answer. */
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/log", standin.base);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(control, &request, &response), 0);
	int applied = 0, replayed = 0;
	char *line = response.body;
	while (line != NULL && *line != '\0') {
		char *end = strchr(line, '\n');
		json_t *entry =
		        json_loadb(line, end ? (size_t)(end - line) : strlen(line), 0, NULL);
		if (entry != NULL) {
			size_t n;
			json_t *change;
			json_array_foreach(json_object_get(entry, "applied"), n, change)
			{
				const char *name =
				        json_string_value(json_object_get(change, "name"));
				applied += name != NULL && strcmp(name, "available") == 0;
			}
			replayed += json_is_true(json_object_get(entry, "replayed"));
			json_decref(entry);
		}
		line = end ? end + 1 : NULL;
	}
	cr_assert_eq(applied, 1, "%s", response.body);
	cr_assert_eq(replayed, 1);
}
