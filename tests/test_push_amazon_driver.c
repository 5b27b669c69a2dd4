/*
 * test_push_amazon_driver.c — skuld-push's Amazon driver
 * (channels/push_amazon.c) against the Amazon stand-in: the token refreshed
 * ahead of its expiry and once on a 403, a refused refresh an auth
 * exception, an ACCEPTED change the read-back sees only once applied (both
 * times in the figures), unknown and inactive listings found by the
 * read-back, a 429 honoured, and a feed for a large call.
 *
 * The driver runs on a test clock (real monotonic time plus an offset the
 * test moves together with the stand-in's clock), so minutes pass at once.
 */
#include <jansson.h>

#include "push_amazon.h"
#include "standin_harness.h"

#define MARKET "ATVPDKIKX0DER"
#define SELLER "A1STANDINSELLER"

static const char seed[] = "{\"listings\":["
                           "{\"sku\":\"AMZ-1\",\"quantity\":3},{\"sku\":\"AMZ-2\",\"quantity\":10},"
                           "{\"sku\":\"AMZ-3\",\"quantity\":0}]}";

static struct standin standin;
static struct http_client *control;
static struct amazon_driver driver;
static uint64_t offset_ns;

static uint64_t real_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static uint64_t test_clock(void)
{
	return real_ns() + offset_ns;
}

/* Moves the driver's clock and the stand-in's together. */
static void advance(unsigned seconds)
{
	char body[64];
	snprintf(body, sizeof(body), "{\"advance\":%u}", seconds);
	standin_control(&standin, control, "clock", body);
	offset_ns += (uint64_t)seconds * 1000000000ull;
}

static void driver_start(const char *secret, uint32_t feed_threshold)
{
	struct amazon_driver_config config = {
	        .timeout_ms = 3000,
	        .call_budget_ms = 3000,
	        .feed_threshold = feed_threshold,
	        .feed_poll_ms = 100,
	        .backoff = {.base_ms = 10, .cap_ms = 200},
	        .clock_ns = test_clock,
	};
	snprintf(config.api_url, sizeof(config.api_url), "%s", standin.base);
	snprintf(config.lwa_url, sizeof(config.lwa_url), "%s", standin.base);
	snprintf(config.seller_id, sizeof(config.seller_id), SELLER);
	snprintf(config.marketplace, sizeof(config.marketplace), MARKET);
	snprintf(config.client_id, sizeof(config.client_id),
	         "amzn1.application-oa2-client.standin");
	snprintf(config.client_secret, sizeof(config.client_secret), "%s", secret);
	snprintf(config.refresh_token, sizeof(config.refresh_token), "Atzr|standin-refresh");
	snprintf(config.listing_prefix, sizeof(config.listing_prefix),
	         "gid://shopify/InventoryItem/");
	cr_assert_eq(amazon_driver_init(&driver, &config, 1, test_clock()), 0);
}

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	control = http_client_create();
	offset_ns = 0;
	standin_start(&standin, "amazon.py", seed);
	driver_start("standin-secret", 0);
}

static void teardown(void)
{
	amazon_driver_fini(&driver);
	standin_stop(&standin);
	http_client_destroy(control);
}

TestSuite(push_amazon_driver, .init = setup, .fini = teardown, .timeout = 60);

static struct push_item item_make(uint32_t id, const char *sku, int64_t quantity, int64_t shown)
{
	struct push_item item = {.item = id,
	                         .version = 1,
	                         .quantity = quantity,
	                         .shown = shown,
	                         .shown_known = true};
	if (sku != NULL) {
		snprintf(item.listing[0], sizeof(item.listing[0]), "%s", sku);
		snprintf(item.listing[1], sizeof(item.listing[1]), MARKET);
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
	json_t *state = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert_not_null(state);
	return state;
}

/* The quantity the stand-in shows for sku (-1: no listing or none). */
static int64_t channel_quantity(const char *sku)
{
	json_t *state = standin_get("state");
	size_t i;
	json_t *listing;
	int64_t quantity = -1;
	json_array_foreach(json_object_get(state, "listings"), i, listing)
	{
		if (strcmp(json_string_value(json_object_get(listing, "sku")), sku) == 0 &&
		    json_is_integer(json_object_get(listing, "quantity")))
			quantity = json_integer_value(json_object_get(listing, "quantity"));
	}
	json_decref(state);
	return quantity;
}

/* How many logged requests of operation were answered status. */
static int log_count(const char *operation, long status)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/log", standin.base);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(control, &request, &response), 0);
	int count = 0;
	const char *line = response.body;
	const char *end_of_body = response.body + response.body_size;
	while (line < end_of_body) {
		const char *end = memchr(line, '\n', (size_t)(end_of_body - line));
		size_t length = end != NULL ? (size_t)(end - line) : (size_t)(end_of_body - line);
		json_t *entry = json_loadb(line, length, 0, NULL);
		const char *op = json_string_value(json_object_get(entry, "operation"));
		count += op != NULL && strcmp(op, operation) == 0 &&
		         json_integer_value(json_object_get(entry, "status")) == status;
		json_decref(entry);
		line += length + 1;
	}
	return count;
}

Test(push_amazon_driver, accepted_items_unmapped_ones_and_an_all_digit_sku)
{
	/* This seller's PATCH rate is 8 a second, not the published 5. */
	standin_control(&standin, control, "config",
	                "{\"limits\":{\"patchListingsItem\":[8.0,5]}}");
	standin_control(&standin, control, "listing", "{\"sku\":\"1234\",\"quantity\":1}");
	struct push_item items[] = {
	        item_make(1, "AMZ-1", 7, 3), item_make(2, NULL, 4, 0),
	        item_make(3, "gid://shopify/InventoryItem/1234", 0, 1), /* the worker's prefix */
	};
	struct push_result results[3];
	amazon_driver_push(&driver, items, 3, results, test_clock());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED, "%s", results[0].detail);
	cr_assert_eq(results[0].shown, 7);
	cr_assert_eq(results[1].exception, PUSH_EXCEPTION_UNMAPPED);
	cr_assert_eq(results[2].verdict, PUSH_ACCEPTED, "%s", results[2].detail);
	cr_assert_eq(channel_quantity("AMZ-1"), 7);
	cr_assert_eq(channel_quantity("1234"), 0);
	cr_assert_eq(driver.figures.token_refreshes, 1);
	/* Every answer said the operation's rate (x-amzn-RateLimit-Limit): the
	 * PATCH bucket runs at this seller's rate now. */
	cr_assert_geq(driver.figures.rate_limits_learned, 2);
	cr_assert_float_eq(driver.buckets[AMAZON_OP_PATCH].rate, 8.0, 1e-9);
}

Test(push_amazon_driver, the_token_is_refreshed_ahead_of_expiry_and_once_on_a_403)
{
	standin_control(&standin, control, "config", "{\"token_expires_in\":600}");
	struct push_item item = item_make(2, "AMZ-2", 9, 10);
	struct push_result result;
	amazon_driver_push(&driver, &item, 1, &result, test_clock());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED);
	/* 600 s tokens, a 300 s margin: at 310 s the driver refreshes first. */
	advance(310);
	item.quantity = 8;
	amazon_driver_push(&driver, &item, 1, &result, test_clock());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(driver.figures.token_refreshes, 2);
	cr_assert_eq(driver.figures.token_refreshes_on_403, 0);
	cr_assert_eq(log_count("patchListingsItem", 403), 0, "never sent an expired token");
	/* Revoked mid-run: one 403, one refresh, the call again. */
	standin_control(&standin, control, "tokens/expire", "{}");
	item.quantity = 6;
	amazon_driver_push(&driver, &item, 1, &result, test_clock());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "%s", result.detail);
	cr_assert_eq(driver.figures.token_refreshes_on_403, 1);
	cr_assert_eq(log_count("patchListingsItem", 403), 1);
	cr_assert_eq(channel_quantity("AMZ-2"), 6);
}

Test(push_amazon_driver, refused_credentials_are_an_auth_exception)
{
	amazon_driver_fini(&driver);
	driver_start("wrong-secret", 0);
	struct push_item item = item_make(1, "AMZ-1", 5, 3);
	struct push_result result;
	amazon_driver_push(&driver, &item, 1, &result, test_clock());
	cr_assert_eq(result.verdict, PUSH_EXCEPTION);
	cr_assert_eq(result.exception, PUSH_EXCEPTION_AUTH);
	cr_assert_eq(channel_quantity("AMZ-1"), 3);
}

Test(push_amazon_driver, accepted_now_shown_later_and_both_times_kept)
{
	standin_control(&standin, control, "config", "{\"apply_delay_seconds\":240}");
	struct push_item item = item_make(1, "AMZ-1", 5, 3);
	struct push_result result;
	amazon_driver_push(&driver, &item, 1, &result, test_clock());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED);
	item.shown = result.shown;
	struct push_level level;
	cr_assert_eq(amazon_driver_read(&driver, &item, 1, &level, test_clock()), 0);
	cr_assert(!level.known, "accepted, not applied: not a mismatch");
	cr_assert_eq(level.exception, PUSH_EXCEPTION_NONE);
	cr_assert_eq(driver.figures.reads_pending, 1);
	advance(241);
	cr_assert_eq(amazon_driver_read(&driver, &item, 1, &level, test_clock()), 0);
	cr_assert(level.known);
	cr_assert_eq(level.shown, 5);
	cr_assert_eq(driver.figures.shown, 1);
	cr_assert_geq(driver.figures.last_shown_ns - driver.figures.last_accepted_ns,
	              241ull * 1000000000ull);
	cr_assert_geq(driver.figures.accept_to_show_ns_max, 241ull * 1000000000ull);
}

Test(push_amazon_driver, the_read_back_finds_unknown_and_inactive_listings)
{
	/* An unknown SKU is ACCEPTED, and becomes a listing that is not BUYABLE. */
	struct push_item items[] = {item_make(4, "NOT-ON-AMAZON", 2, 0),
	                            item_make(1, "AMZ-1", 3, 3), item_make(5, "NEVER-SENT", 1, 1)};
	struct push_result result;
	amazon_driver_push(&driver, items, 1, &result, test_clock());
	cr_assert_eq(result.verdict, PUSH_ACCEPTED, "Amazon accepts unknown SKUs");
	standin_control(&standin, control, "listing", "{\"sku\":\"AMZ-1\",\"buyable\":false}");
	struct push_level levels[3];
	cr_assert_eq(amazon_driver_read(&driver, items, 3, levels, test_clock()), 0);
	cr_assert(!levels[0].known);
	cr_assert_eq(levels[0].exception, PUSH_EXCEPTION_INACTIVE, "%s", levels[0].detail);
	cr_assert(!levels[1].known);
	cr_assert_eq(levels[1].exception, PUSH_EXCEPTION_INACTIVE);
	cr_assert_not_null(strstr(levels[1].detail, "not BUYABLE"), "%s", levels[1].detail);
	cr_assert_eq(levels[2].exception, PUSH_EXCEPTION_UNKNOWN);
	cr_assert_eq(driver.figures.reads_inactive, 2);
}

Test(push_amazon_driver, an_invalid_value_is_a_validation_exception)
{
	standin_control(&standin, control, "listing",
	                "{\"sku\":\"AMZ-2\",\"invalid\":\"The listing is locked.\"}");
	struct push_item items[] = {item_make(2, "AMZ-2", 4, 10), item_make(1, "AMZ-1", 2, 3)};
	struct push_result results[2];
	amazon_driver_push(&driver, items, 2, results, test_clock());
	cr_assert_eq(results[0].verdict, PUSH_EXCEPTION);
	cr_assert_eq(results[0].exception, PUSH_EXCEPTION_VALIDATION);
	cr_assert_not_null(strstr(results[0].detail, "locked"), "%s", results[0].detail);
	cr_assert_eq(results[1].verdict, PUSH_ACCEPTED, "the others go on");
	cr_assert_eq(channel_quantity("AMZ-2"), 10);
}

/* Amazon's bucket is smaller than the published one the driver starts with:
 * the 429 empties it, the rest wait, and the backoff is kept. */
Test(push_amazon_driver, a_429_is_honoured)
{
	standin_control(&standin, control, "config",
	                "{\"limits\":{\"patchListingsItem\":[2,2]},\"feed_queue_seconds\":0}");
	struct push_item items[6];
	for (uint32_t i = 0; i < 6; i++)
		items[i] = item_make(i + 1,
		                     i % 3 == 0   ? "AMZ-1"
		                     : i % 3 == 1 ? "AMZ-2"
		                                  : "AMZ-3",
		                     (int64_t)i, 99);
	struct push_result results[6];
	amazon_driver_push(&driver, items, 6, results, test_clock());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED);
	cr_assert_eq(results[1].verdict, PUSH_ACCEPTED);
	cr_assert_eq(results[2].verdict, PUSH_RETRY);
	cr_assert_str_eq(results[2].detail, "QuotaExceeded");
	for (uint32_t i = 3; i < 6; i++)
		cr_assert_eq(results[i].verdict, PUSH_RETRY);
	cr_assert_eq(driver.figures.throttled, 1);
	uint64_t wait = amazon_driver_wait_ns(&driver, test_clock());
	cr_assert_gt(wait, 0, "backing off");
	/* Learned from x-amzn-RateLimit-Limit (handed in: http.h does not keep it). */
	cr_assert_eq(amazon_driver_rate_limit(&driver, AMAZON_OP_PATCH, "2.0", test_clock()), 0);
	cr_assert_float_eq(driver.buckets[AMAZON_OP_PATCH].rate, 2.0, 1e-9);
	cr_assert_eq(amazon_driver_rate_limit(&driver, AMAZON_OP_PATCH, "fast", test_clock()), -1);
	/* After the wait, the rest go through at the learned rate, in order. */
	uint32_t accepted = 0;
	for (int round = 0; round < 20 && accepted < 4; round++) {
		wait = amazon_driver_wait_ns(&driver, test_clock());
		nanosleep(&(struct timespec){(time_t)(wait / 1000000000u),
		                             (long)(wait % 1000000000u)},
		          NULL);
		uint32_t left = 4 - accepted, n = 0;
		amazon_driver_push(&driver, &items[2 + accepted], left, results, test_clock());
		while (n < left && results[n].verdict == PUSH_ACCEPTED)
			n++;
		accepted += n;
	}
	cr_assert_eq(accepted, 4);
	cr_assert_leq(driver.figures.throttled, 2);
}

/* A call of feed_threshold items or more: zeros by PATCH at once, the rest
 * in one feed; one message the report marks invalid. */
Test(push_amazon_driver, a_large_call_goes_in_a_feed_with_zeros_first)
{
	amazon_driver_fini(&driver);
	driver_start("standin-secret", 8);
	standin_control(&standin, control, "config",
	                "{\"feed_queue_seconds\":0.1,\"feed_processing_seconds\":0.1}");
	char seed_listing[96];
	struct push_item items[12];
	for (uint32_t i = 0; i < 12; i++) {
		char sku[32];
		snprintf(sku, sizeof(sku), "BULK-%02u", i);
		snprintf(seed_listing, sizeof(seed_listing), "{\"sku\":\"%s\",\"quantity\":50}",
		         sku);
		standin_control(&standin, control, "listing", seed_listing);
		items[i] = item_make(100 + i, sku, i < 2 ? 0 : (int64_t)i, 50);
	}
	standin_control(&standin, control, "listing",
	                "{\"sku\":\"BULK-05\",\"invalid\":\"locked for review\"}");
	struct push_result results[12];
	amazon_driver_push(&driver, items, 12, results, test_clock());
	cr_assert_eq(results[0].verdict, PUSH_ACCEPTED, "zeros first, by PATCH");
	cr_assert_eq(results[1].verdict, PUSH_ACCEPTED);
	for (uint32_t i = 2; i < 12; i++) {
		cr_assert_eq(results[i].verdict, PUSH_RETRY);
		cr_assert_str_eq(results[i].detail, "sent in a feed");
	}
	cr_assert_eq(driver.figures.feeds, 1);
	cr_assert_eq(driver.figures.feed_messages, 10);
	cr_assert_eq(channel_quantity("BULK-00"), 0);
	/* Offered again until the feed is done (each push polls it). */
	uint32_t done = 0;
	for (int round = 0; round < 30 && done < 10; round++) {
		amazon_driver_push(&driver, &items[2], 10, &results[2], test_clock());
		done = 0;
		for (uint32_t i = 2; i < 12; i++)
			done += results[i].verdict != PUSH_RETRY;
		if (done < 10)
			nanosleep(&(struct timespec){0, 100000000}, NULL);
	}
	cr_assert_eq(done, 10, "the feed finished");
	for (uint32_t i = 2; i < 12; i++) {
		if (i == 5) {
			cr_assert_eq(results[i].verdict, PUSH_EXCEPTION);
			cr_assert_eq(results[i].exception, PUSH_EXCEPTION_VALIDATION);
			cr_assert_not_null(strstr(results[i].detail, "locked"), "%s",
			                   results[i].detail);
			continue;
		}
		cr_assert_eq(results[i].verdict, PUSH_ACCEPTED, "%u: %s", i, results[i].detail);
		cr_assert_eq(results[i].shown, (int64_t)i);
	}
	cr_assert_eq(channel_quantity("BULK-07"), 7);
	cr_assert_eq(channel_quantity("BULK-05"), 50);
	cr_assert_eq(driver.figures.feeds_failed, 0);
}

Test(push_amazon_driver, a_fatal_feed_falls_back_to_patches)
{
	amazon_driver_fini(&driver);
	driver_start("standin-secret", 4);
	standin_control(&standin, control, "config",
	                "{\"feed_queue_seconds\":0.05,\"feed_processing_seconds\":0.05,"
	                "\"limits\":{\"patchListingsItem\":[50,50]}}");
	standin_control(&standin, control, "faults", "{\"kind\":\"feed_fatal\"}");
	struct push_item items[] = {item_make(1, "AMZ-1", 1, 3), item_make(2, "AMZ-2", 2, 10),
	                            item_make(3, "AMZ-3", 3, 0), item_make(4, "AMZ-4", 4, 0)};
	struct push_result results[4];
	amazon_driver_push(&driver, items, 4, results, test_clock());
	cr_assert_eq(driver.figures.feeds, 1);
	uint32_t accepted = 0;
	for (int round = 0; round < 30 && accepted < 4; round++) {
		nanosleep(&(struct timespec){0, 100000000}, NULL);
		amazon_driver_push(&driver, items, 4, results, test_clock());
		accepted = 0;
		for (uint32_t i = 0; i < 4; i++)
			accepted += results[i].verdict == PUSH_ACCEPTED;
	}
	cr_assert_eq(accepted, 4);
	cr_assert_eq(driver.figures.feeds_failed, 1);
	cr_assert_eq(driver.figures.feeds, 1, "no second feed during the cool-down");
	cr_assert_eq(channel_quantity("AMZ-4"), 4);
}
