/*
 * test_push_square_driver.c — skuld-push's Square driver
 * (channels/push_square.c) against the Square stand-in: verdicts per item,
 * quantities in the item's scale, occurred_at from the ledger so that a sale
 * on Square after it is kept, exceptions that do not hold back the other
 * items, a retried call after a 5xx that Square applies once under the same
 * key, a new key after IDEMPOTENCY_KEY_REUSED and INVALID_TIME, a rate limit
 * honoured, and the read-back.
 */
#include <jansson.h>

#include "push_square.h"
#include "square.h"
#include "standin_harness.h"

#define LOCATION "L1"

static const char seed[] =
        "{\"locations\":[{\"id\":\"" LOCATION "\",\"name\":\"Web\"}],"
        "\"objects\":[{\"id\":\"VAR1\"},{\"id\":\"VAR2\"},{\"id\":\"VAR3\"},{\"id\":\"VAR4\"}],"
        "\"counts\":[{\"catalog_object_id\":\"VAR1\",\"location_id\":\"" LOCATION
        "\",\"quantity\":\"3\"},{\"catalog_object_id\":\"VAR2\",\"location_id\":\"" LOCATION
        "\",\"quantity\":\"10\"},{\"catalog_object_id\":\"VAR3\",\"location_id\":\"" LOCATION
        "\",\"quantity\":\"0\"}]}";

static struct standin standin;
static struct http_client *control;
static struct square_driver driver;

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static uint64_t wall_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static void driver_start(const char *token, const char *location)
{
	struct square_driver_config config = {
	        .timeout_ms = 5000,
	        .bucket_capacity = 100,
	        .restore_rate = 100,
	        .backoff = {.base_ms = 10, .cap_ms = 200},
	};
	snprintf(config.api_url, sizeof(config.api_url), "%s", standin.base);
	snprintf(config.token, sizeof(config.token), "%s", token);
	snprintf(config.version, sizeof(config.version), "2025-08-20");
	snprintf(config.location, sizeof(config.location), "%s", location);
	snprintf(config.channel, sizeof(config.channel), "web");
	cr_assert_eq(square_driver_init(&driver, &config, 1, now_ns()), 0);
}

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	control = http_client_create();
	standin_start(&standin, "square.py", seed);
	driver_start("EAAAEstandin-square-token", LOCATION);
}

static void teardown(void)
{
	square_driver_fini(&driver);
	standin_stop(&standin);
	http_client_destroy(control);
}

TestSuite(push_square_driver, .init = setup, .fini = teardown, .timeout = 60);

static struct push_item item_make(uint32_t id, const char *object, int64_t quantity)
{
	struct push_item item = {.item = id, .version = 1, .quantity = quantity};
	if (object != NULL) {
		snprintf(item.listing[0], sizeof(item.listing[0]), "%s", object);
		snprintf(item.listing[1], sizeof(item.listing[1]), "%s", LOCATION);
	}
	return item;
}

static json_t *standin_get(const char *what)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/%s", standin.base, what);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(control, &request, &response), 0);
	cr_assert_eq(response.status, 200);
	json_t *value = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert_not_null(value);
	return value;
}

/* What Square counts IN_STOCK for object, in base units at scale. */
static int64_t channel_count(const char *object, uint8_t scale)
{
	json_t *state = standin_get("state");
	size_t i;
	json_t *count;
	int64_t value = -1;
	json_array_foreach(json_object_get(state, "counts"), i, count)
	{
		if (strcmp(json_string_value(json_object_get(count, "catalog_object_id")),
		           object) == 0)
			cr_assert_eq(square_quantity_parse(
			                     json_string_value(json_object_get(count, "quantity")),
			                     scale, &value),
			             0);
	}
	json_decref(state);
	cr_assert_geq(value, 0, "no count for %s", object);
	return value;
}

/* The request log's entries, one JSON object per line (json_decref each). */
static size_t request_log(json_t **entries, size_t max)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/log", standin.base);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(control, &request, &response), 0);
	size_t count = 0;
	char *line = response.body;
	while (line != NULL && *line != '\0' && count < max) {
		char *end = strchr(line, '\n');
		entries[count] =
		        json_loadb(line, end ? (size_t)(end - line) : strlen(line), 0, NULL);
		cr_assert_not_null(entries[count]);
		count++;
		line = end ? end + 1 : NULL;
	}
	return count;
}

static void wait_out(void)
{
	uint64_t wait = square_driver_wait_ns(&driver, now_ns());
	cr_assert_lt(wait, 5000000000ull);
	nanosleep(&(struct timespec){(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)},
	          NULL);
}

Test(push_square_driver, mapped_items_are_accepted_and_unmapped_ones_are_exceptions)
{
	struct push_item items[] = {
	        item_make(1, "VAR1", 7),
	        item_make(2, NULL, 4),
	        item_make(3, "VAR2", 0),
	};
	struct push_result results[3];
	square_driver_push(&driver, items, 3, results, now_ns());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED, "%s", results[0].detail);
	cr_assert_eq(results[0].shown, 7);
	cr_assert(results[0].shown_known);
	cr_assert_eq(results[1].verdict, PUSH_EXCEPTION);
	cr_assert_eq(results[1].exception, PUSH_EXCEPTION_UNMAPPED);
	cr_assert_eq(results[2].verdict, PUSH_ACCEPTED);
	cr_assert_eq(results[2].shown, 0);
	cr_assert_eq(channel_count("VAR1", 0), 7);
	cr_assert_eq(channel_count("VAR2", 0), 0);
}

Test(push_square_driver, quantities_keep_the_scale_down_to_five_places)
{
	struct push_item items[] = {item_make(1, "VAR1", 2750), item_make(2, "VAR2", 123456789)};
	items[0].scale = 3; /* 2.750 kg */
	items[1].scale = 8;
	struct push_result results[2];
	square_driver_push(&driver, items, 2, results, now_ns());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED, "%s", results[0].detail);
	cr_assert_eq(results[0].shown, 2750);
	cr_assert_eq(channel_count("VAR1", 3), 2750);
	cr_assert_eq(results[1].shown, 123456000, "1.23456, rounded down");
	cr_assert_eq(channel_count("VAR2", 8), 123456000);
}

/* occurred_at is when the ledger's value began: a sale on Square after
 * that is applied after the count, so it is not undone. */
Test(push_square_driver, a_square_sale_after_the_ledger_value_is_kept)
{
	uint64_t dirty_since = wall_ns() - 60 * 1000000000ull;
	char sale[256];
	snprintf(sale, sizeof(sale),
	         "{\"catalog_object_id\":\"VAR2\",\"location_id\":\"" LOCATION
	         "\",\"quantity\":1,\"occurred_at\":%.3f}",
	         (double)(dirty_since + 30 * 1000000000ull) / 1e9);
	standin_control(&standin, control, "sale", sale);
	struct push_item item = item_make(2, "VAR2", 9);
	item.dirty_since = dirty_since;
	struct push_result result;
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(channel_count("VAR2", 0), 8);
	cr_assert_eq(result.shown, 8, "Square's count, with its sale");
	json_t *entries[8];
	size_t count = request_log(entries, 8);
	cr_assert_eq(count, 1);
	char want[SQUARE_TIME_SIZE];
	square_time_text(dirty_since, want, sizeof(want));
	json_t *physical = json_object_get(
	        json_array_get(json_object_get(json_object_get(entries[0], "body"), "changes"), 0),
	        "physical_count");
	cr_assert_str_eq(json_string_value(json_object_get(physical, "occurred_at")), want);
	json_decref(entries[0]);
}

Test(push_square_driver, a_ledger_time_older_than_the_window_is_sent_as_now)
{
	struct push_item item = item_make(1, "VAR1", 4);
	item.dirty_since = wall_ns() - 2 * 86400 * 1000000000ull;
	struct push_result result;
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(channel_count("VAR1", 0), 4);
}

Test(push_square_driver, an_unknown_object_is_parked_and_does_not_hold_back_the_others)
{
	struct push_item items[] = {item_make(1, "VAR1", 6), item_make(2, "NOPE", 1),
	                            item_make(3, "VAR2", 5)};
	struct push_result results[3];
	square_driver_push(&driver, items, 3, results, now_ns());
	cr_assert_eq(results[1].verdict, PUSH_EXCEPTION);
	cr_assert_eq(results[1].exception, PUSH_EXCEPTION_UNKNOWN);
	cr_assert_not_null(strstr(results[1].detail, "NOT_FOUND"), "%s", results[1].detail);
	cr_assert_eq(results[0].verdict, PUSH_RETRY, "all or nothing: not applied");
	cr_assert_eq(results[2].verdict, PUSH_RETRY);
	cr_assert_eq(channel_count("VAR1", 0), 3);
	/* The worker offers the others again; they go. */
	struct push_item again[] = {items[0], items[2]};
	square_driver_push(&driver, again, 2, results, now_ns());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED, "%s", results[0].detail);
	cr_assert_eq(results[1].verdict, PUSH_ACCEPTED);
	cr_assert_eq(channel_count("VAR1", 0), 6);
	cr_assert_eq(channel_count("VAR2", 0), 5);
}

/* Without a changes[N] field path, the object the detail names is found. */
Test(push_square_driver, an_object_named_only_in_the_detail)
{
	standin_control(&standin, control, "config", "{\"error_field_paths\":false}");
	struct push_item items[] = {item_make(1, "VAR1", 6), item_make(2, "NOPE", 1)};
	struct push_result results[2];
	square_driver_push(&driver, items, 2, results, now_ns());
	cr_assert_eq(results[0].verdict, PUSH_RETRY);
	cr_assert_eq(results[1].verdict, PUSH_EXCEPTION);
	cr_assert_eq(results[1].exception, PUSH_EXCEPTION_UNKNOWN);
}

Test(push_square_driver, an_unknown_location_parks_every_item)
{
	square_driver_fini(&driver);
	driver_start("EAAAEstandin-square-token", "L9");
	struct push_item items[] = {item_make(1, "VAR1", 6), item_make(2, "VAR2", 1)};
	struct push_result results[2];
	square_driver_push(&driver, items, 2, results, now_ns());
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(results[i].verdict, PUSH_EXCEPTION);
		cr_assert_eq(results[i].exception, PUSH_EXCEPTION_INACTIVE);
	}
}

Test(push_square_driver, a_wrong_or_expired_token_is_an_auth_exception)
{
	square_driver_fini(&driver);
	driver_start("EAAAEwrong", LOCATION);
	struct push_item item = item_make(1, "VAR1", 6);
	struct push_result result;
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_EXCEPTION);
	cr_assert_eq(result.exception, PUSH_EXCEPTION_AUTH);
	standin_control(&standin, control, "tokens", "{\"expired_tokens\":[\"EAAAEwrong\"]}");
	wait_out();
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.exception, PUSH_EXCEPTION_AUTH);
	cr_assert_not_null(strstr(result.detail, "ACCESS_TOKEN_EXPIRED"), "%s", result.detail);
	cr_assert_eq(channel_count("VAR1", 0), 3);
}

/* A call applied but answered 503 is retried byte for byte under the same
 * key, and Square applies it once. */
Test(push_square_driver, a_retry_after_a_5xx_reuses_the_key_and_applies_once)
{
	standin_control(&standin, control, "faults",
	                "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}");
	struct push_item item = item_make(2, "VAR2", 6);
	item.dirty_since = wall_ns() - 1000000000ull;
	struct push_result result;
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_RETRY);
	char key[96];
	snprintf(key, sizeof(key), "%s", driver.key);
	cr_assert_neq(key[0], '\0');
	cr_assert_eq(channel_count("VAR2", 0), 6, "applied before the 503");
	cr_assert_eq(driver.failures, 1, "backing off");
	wait_out();
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(channel_count("VAR2", 0), 6, "once");
	json_t *entries[8];
	size_t count = request_log(entries, 8);
	cr_assert_eq(count, 2);
	cr_assert_eq(json_array_size(json_object_get(entries[0], "applied")), 1);
	cr_assert_eq(json_array_size(json_object_get(entries[1], "applied")), 0);
	cr_assert(json_is_true(json_object_get(entries[1], "replayed")));
	cr_assert_str_eq(json_string_value(json_object_get(entries[1], "idempotencyKey")), key);
	cr_assert(json_equal(json_object_get(entries[0], "body"),
	                     json_object_get(entries[1], "body")));
	for (size_t i = 0; i < count; i++)
		json_decref(entries[i]);
}

Test(push_square_driver, no_answer_is_retried_with_the_same_key)
{
	standin_control(&standin, control, "faults",
	                "{\"kind\":\"timeout\",\"seconds\":3,\"apply\":true}");
	square_driver_fini(&driver);
	driver_start("EAAAEstandin-square-token", LOCATION);
	driver.config.timeout_ms = 500;
	struct push_item item = item_make(1, "VAR1", 9);
	struct push_result result;
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_RETRY);
	cr_assert_eq(channel_count("VAR1", 0), 9, "applied, answer lost");
	char key[96];
	snprintf(key, sizeof(key), "%s", driver.key);
	wait_out();
	driver.config.timeout_ms = 5000;
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	json_t *entries[8];
	size_t count = request_log(entries, 8);
	cr_assert_eq(count, 2);
	cr_assert(json_is_true(json_object_get(entries[1], "replayed")));
	cr_assert_str_eq(json_string_value(json_object_get(entries[1], "idempotencyKey")), key);
	for (size_t i = 0; i < count; i++)
		json_decref(entries[i]);
}

Test(push_square_driver, a_reused_key_gets_a_new_one)
{
	struct push_item first = item_make(1, "VAR1", 5);
	struct push_result result;
	square_driver_push(&driver, &first, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED);
	driver.key_serial = 0; /* the next key is the one just used, for another body */
	struct push_item second = item_make(2, "VAR2", 4);
	square_driver_push(&driver, &second, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_RETRY);
	cr_assert_not_null(strstr(result.detail, "IDEMPOTENCY_KEY_REUSED"), "%s", result.detail);
	cr_assert_eq(channel_count("VAR2", 0), 10);
	driver.key_serial = 100;
	square_driver_push(&driver, &second, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(channel_count("VAR2", 0), 4);
}

Test(push_square_driver, invalid_time_is_retried_with_now)
{
	standin_control(&standin, control, "config", "{\"window_seconds\":30}");
	struct push_item item = item_make(1, "VAR1", 2);
	item.dirty_since = wall_ns() - 120 * 1000000000ull; /* in our window, not Square's */
	struct push_result result;
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_RETRY);
	cr_assert_not_null(strstr(result.detail, "INVALID_TIME"), "%s", result.detail);
	wait_out();
	square_driver_push(&driver, &item, 1, &result, now_ns());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(channel_count("VAR1", 0), 2);
}

Test(push_square_driver, a_rate_limit_is_honoured)
{
	standin_control(&standin, control, "faults", "{\"kind\":\"rate_limit\",\"retry_after\":1}");
	struct push_item item = item_make(1, "VAR1", 8);
	struct push_result result;
	uint64_t start = now_ns();
	square_driver_push(&driver, &item, 1, &result, start);
	cr_assert_eq(result.verdict, PUSH_RETRY);
	cr_assert_eq(driver.calls_throttled, 1);
	uint64_t wait = square_driver_wait_ns(&driver, start);
	cr_assert_geq(wait, 1000000000ull, "Retry-After: 1");
	cr_assert_lt(wait, 2000000000ull);
	/* Square's own bucket, without Retry-After: the backoff still waits. */
	standin_control(&standin, control, "config", "{\"bucket_capacity\":1,\"restore_rate\":2}");
	standin_control(&standin, control, "bucket", "{\"level\":0}");
	wait_out();
	square_driver_push(&driver, &item, 1, &result, now_ns());
	int rounds = 0;
	while (result.verdict == PUSH_RETRY && rounds++ < 20) {
		wait_out();
		square_driver_push(&driver, &item, 1, &result, now_ns());
	}
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(channel_count("VAR1", 0), 8);
}

Test(push_square_driver, the_read_back_gives_what_square_shows)
{
	standin_control(&standin, control, "sale",
	                "{\"catalog_object_id\":\"VAR2\",\"location_id\":\"" LOCATION
	                "\",\"quantity\":\"2.5\"}");
	struct push_item items[] = {item_make(1, "VAR1", 0), item_make(2, "VAR2", 0),
	                            item_make(3, "VAR4", 0), item_make(4, "VAR3", 0)};
	items[1].scale = 1;
	struct push_level levels[4];
	cr_assert_eq(square_driver_read(&driver, items, 4, levels, now_ns()), 0);
	cr_assert(levels[0].known);
	cr_assert_eq(levels[0].shown, 3);
	cr_assert(levels[1].known);
	cr_assert_eq(levels[1].shown, 75, "7.5 at scale 1");
	cr_assert_not(levels[2].known, "never counted");
	cr_assert(levels[3].known);
	cr_assert_eq(levels[3].shown, 0);
	standin_control(&standin, control, "faults", "{\"kind\":\"malformed\"}");
	cr_assert_eq(square_driver_read(&driver, items, 4, levels, now_ns()), -1);
}
