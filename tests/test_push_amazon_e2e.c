/*
 * test_push_amazon_e2e.c — the real skuld, the real skuld-push (kind
 * amazon) and the Amazon stand-in together: till sales and a hold show up
 * as the right quantities on Amazon; faults (5xx, resets, 429s, malformed
 * answers, an accepted PATCH whose answer is lost, a token revoked
 * mid-run) converge and nothing is applied that the ledger did not ask
 * for; a killed worker resumes from the acknowledged versions; a listing
 * made inactive on Amazon is found by the read-back and reported.
 */
#include <jansson.h>

#include "push_harness.h"

#define MARKET "ATVPDKIKX0DER"
#define SHOP   1 /* skuld channel id */
#define ITEMS  4

static struct server server;
static struct standin standin;
static struct http_client *control;
static struct client admin;
static struct push_worker worker;
static uint64_t key_serial = 1000;

static const char seed[] =
        "{\"listings\":["
        "{\"sku\":\"AMZ-1\",\"quantity\":0},{\"sku\":\"AMZ-2\",\"quantity\":0},"
        "{\"sku\":\"AMZ-3\",\"quantity\":0},{\"sku\":\"AMZ-4\",\"quantity\":0}]}";

static void submit_ok(struct skuld_event *events, uint32_t count)
{
	push_submit_ok(&admin, events, count);
}

static void one(struct skuld_event event)
{
	submit_ok(&event, 1);
}

static struct skuld_event stock(uint16_t kind, uint32_t item, uint32_t location, int64_t quantity)
{
	return event_stock(kind, item, location, quantity, ++key_serial);
}

static void config_write(unsigned reconcile_s)
{
	FILE *file = fopen(worker.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "# the Amazon worker of the end-to-end test\n"
	        "server = 127.0.0.1:%u\nchannel = amazon\nkind = amazon\napi_url = %s\n"
	        "lwa_url = %s\nseller_id = A1STANDINSELLER\n"
	        "lwa_client_id = amzn1.application-oa2-client.standin\n"
	        "lwa_client_secret = standin-secret\nlwa_refresh_token = Atzr|standin-refresh\n"
	        "location = " MARKET "\n"
	        "idle_ms = 20\nreconcile_s = %u\nzero_resend_s = 0\ntimeout_ms = 3000\n",
	        server.port, standin.base, standin.base, reconcile_s);
	fclose(file);
}

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	control = http_client_create();
	standin_start(&standin, "amazon.py", seed);
	/* A bucket the e2e never runs dry on; the driver test covers 429s. */
	standin_control(&standin, control, "config",
	                "{\"limits\":{\"patchListingsItem\":[50,50],\"getListingsItem\":[50,50]}}");
	server_init(&server, NULL);
	server_start(&server);
	cr_assert_eq(client_open(&admin, server.port, client_id(77)), 0);
	/* Items 1..4; stores 1, 2 in the pool, 3 outside it. */
	struct skuld_event catalog[16];
	uint32_t count = 0;
	for (uint32_t item = 1; item <= ITEMS; item++)
		catalog[count++] = event_item(item, ++key_serial);
	for (uint32_t location = 1; location <= 3; location++)
		catalog[count++] = event_location(location, ++key_serial);
	submit_ok(catalog, count);
	struct skuld_event channel = event_make(SKULD_CHANNEL_DEFINE, ++key_serial, 6);
	channel.channel = SHOP;
	snprintf(channel.code, sizeof(channel.code), "amazon");
	one(channel);
	for (uint32_t location = 1; location <= 2; location++) {
		struct skuld_event pool = event_make(SKULD_CHANNEL_POOL, ++key_serial, 6);
		pool.channel = SHOP;
		pool.location = location;
		one(pool);
	}
	one(stock(SKULD_RECEIVE, 1, 1, 10));
	one(stock(SKULD_RECEIVE, 1, 2, 5));
	one(stock(SKULD_RECEIVE, 2, 1, 3));
	one(stock(SKULD_RECEIVE, 3, 1, 1));
	one(stock(SKULD_RECEIVE, 4, 3, 9)); /* outside the pool */
	for (uint32_t item = 1; item <= ITEMS; item++) {
		struct skuld_event listing = event_make(SKULD_CHANNEL_LISTING, ++key_serial, 7);
		listing.channel = SHOP;
		listing.item = item;
		snprintf(listing.listing, sizeof(listing.listing), "AMZ-%u", item);
		one(listing);
	}
	snprintf(worker.config, sizeof(worker.config), "%s/push.conf", server.dir);
	config_write(0);
}

static void teardown(void)
{
	push_worker_stop(&worker, SIGKILL);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	standin_stop(&standin);
	http_client_destroy(control);
}

TestSuite(push_amazon_e2e, .init = setup, .fini = teardown, .timeout = 120);

static int64_t channel_quantity(uint32_t item)
{
	char sku[32];
	snprintf(sku, sizeof(sku), "AMZ-%u", item);
	json_t *state = standin_get_json(&standin, control, "state");
	size_t i;
	json_t *listing;
	int64_t quantity = -1;
	json_array_foreach(json_object_get(state, "listings"), i, listing)
	{
		if (strcmp(json_string_value(json_object_get(listing, "sku")), sku) == 0)
			quantity = json_integer_value(json_object_get(listing, "quantity"));
	}
	json_decref(state);
	return quantity;
}

/* Waits until the channel shows want[1..ITEMS] (-1: any) and nothing is
 * dirty. */
static void converge(const int64_t *want, const char *what)
{
	push_converge(&admin, SHOP, ITEMS, channel_quantity, want, what);
}

/* The applications the stand-in made to item's SKU: the sum of their
 * deltas, and how many changed nothing (an absolute value applied again),
 * and whether any applied a value outside [low, high]. */
static int64_t applied_sum(uint32_t item, uint32_t *empty, int64_t low, int64_t high, bool *outside)
{
	char sku[32];
	snprintf(sku, sizeof(sku), "AMZ-%u", item);
	json_t *state = standin_get_json(&standin, control, "state");
	int64_t sum = 0;
	*empty = 0;
	*outside = false;
	size_t i;
	json_t *application;
	json_array_foreach(json_object_get(state, "applications"), i, application)
	{
		if (strcmp(json_string_value(json_object_get(application, "sku")), sku) != 0)
			continue;
		int64_t delta = json_integer_value(json_object_get(application, "delta"));
		int64_t quantity = json_integer_value(json_object_get(application, "quantity"));
		sum += delta;
		*empty += delta == 0;
		*outside |= quantity < low || quantity > high;
	}
	json_decref(state);
	return sum;
}

Test(push_amazon_e2e, till_sales_and_a_hold_reach_amazon)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0};
	converge(want, "first push");
	one(stock(SKULD_SALE, 1, 2, 4));
	want[1] = 11;
	converge(want, "till sale");
	struct skuld_event reserve = stock(SKULD_RESERVE, 3, 1, 1);
	reserve.id = 501;
	reserve.ttl_s = 600;
	one(reserve);
	want[3] = 0;
	converge(want, "hold");
	one(stock(SKULD_RECEIVE, 4, 3, 5)); /* outside the pool: nothing */
	one(stock(SKULD_RECEIVE, 2, 2, 2));
	want[2] = 5;
	converge(want, "receipts");
	push_worker_stop(&worker, SIGTERM);
}

Test(push_amazon_e2e, faults_converge_and_nothing_is_applied_that_was_not_asked)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0};
	converge(want, "first push");
	const char *faults[] = {
	        "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}",
	        "{\"kind\":\"reset\"}",
	        "{\"kind\":\"throttle\",\"count\":3}",
	        "{\"kind\":\"malformed\"}",
	        "{\"kind\":\"timeout\",\"seconds\":4,\"apply\":true}",
	        "{\"kind\":\"http_error\",\"status\":500}",
	        "{\"kind\":\"http_error\",\"status\":500,\"match\":\"token\"}",
	};
	for (size_t f = 0; f < sizeof(faults) / sizeof(faults[0]); f++) {
		standin_control(&standin, control, "faults", faults[f]);
		if (f + 1 == sizeof(faults) / sizeof(faults[0]))
			standin_control(&standin, control, "tokens/expire", "{}");
		one(stock(SKULD_SALE, 1, 1, 1));
		want[1]--;
		char what[64];
		snprintf(what, sizeof(what), "fault %zu", f);
		converge(want, what);
	}
	cr_assert_eq(want[1], 8);
	/* The applications to item 1 add up to where it is; each value applied
	 * was one the ledger asked for. Amazon has no idempotency key: the two
	 * faults that lose the answer to an accepted PATCH may each have the
	 * same absolute value applied again (a change of 0), never another. */
	uint32_t empty = 0;
	bool outside = false;
	cr_assert_eq(applied_sum(1, &empty, 8, 15, &outside), 8);
	cr_assert_leq(empty, 2);
	cr_assert(!outside);
	push_worker_stop(&worker, SIGTERM);
}

Test(push_amazon_e2e, a_killed_worker_resumes_from_the_acknowledged_versions)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0};
	converge(want, "first push");
	uint64_t acks = channel_push_of(&admin, SHOP).acks;
	standin_control(&standin, control, "faults",
	                "{\"kind\":\"delay\",\"seconds\":1,\"count\":5}");
	for (int i = 0; i < 5; i++)
		one(stock(SKULD_SALE, 1, 1, 1));
	nanosleep(&(struct timespec){0, 300000000}, NULL);
	push_worker_stop(&worker, SIGKILL);
	push_worker_start(&worker);
	want[1] = 10;
	converge(want, "after the restart");
	cr_assert_gt(channel_push_of(&admin, SHOP).acks, acks);
	push_worker_stop(&worker, SIGTERM);
}

Test(push_amazon_e2e, an_inactive_listing_is_found_by_the_read_back)
{
	config_write(1);
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0};
	converge(want, "first push");
	standin_control(&standin, control, "listing", "{\"sku\":\"AMZ-2\",\"buyable\":false}");
	struct skuld_query query = {.kind = SKULD_QUERY_EXCEPTIONS, .channel = SHOP};
	struct skuld_exception_record exceptions[4];
	uint64_t deadline = harness_now_ms() + 20000;
	int found = 0;
	while (found == 0 && harness_now_ms() < deadline) {
		found = client_query(&admin, &query, exceptions, 4);
		if (found == 0)
			nanosleep(&(struct timespec){0, 100000000}, NULL);
	}
	cr_assert_eq(found, 1);
	cr_assert_eq(exceptions[0].item, 2);
	cr_assert_eq(exceptions[0].exception, SKULD_PUSH_INACTIVE);
	/* The others still move. */
	one(stock(SKULD_SALE, 1, 1, 1));
	want[1] = 14;
	want[2] = -1;
	converge(want, "item 1 still moves");
	push_worker_stop(&worker, SIGTERM);
}
