/*
 * test_push_square_e2e.c — the real skuld, the real skuld-push with kind =
 * square and the Square stand-in together: till sales, holds, pools and a
 * bundle reach Square as physical counts; a sale on Square after the
 * ledger's value is kept (occurred_at); faults (5xx, resets, rate limits,
 * malformed answers, an applied call whose answer is lost) converge without
 * applying anything twice; an unknown catalog object becomes an exception
 * without holding back the others; a killed worker resumes from the
 * acknowledged versions.
 */
#include <jansson.h>

#include "square.h"
#include "push_harness.h"

#define LOCATION  "SQLOC1"
#define OBJECT(n) "SQVAR10" #n

#define SHOP  1 /* skuld channel id */
#define ITEMS 5 /* 1..4 plain, 5 a bundle of 2 x item 1 + 1 x item 2 */

static struct server server;
static struct standin standin;
static struct http_client *control;
static struct client admin;
static struct push_worker worker;
static uint64_t key_serial = 1000;

#define SEED_COUNT(n)                                                                              \
	"{\"catalog_object_id\":\"" OBJECT(n) "\",\"location_id\":\"" LOCATION                     \
	                                      "\",\"quantity\":\"0\"}"

static const char seed[] = "{\"locations\":[{\"id\":\"" LOCATION "\",\"name\":\"Web\"}],"
                           "\"counts\":[" SEED_COUNT(1) "," SEED_COUNT(2) "," SEED_COUNT(
                                   3) "," SEED_COUNT(4) "," SEED_COUNT(5) "]}";

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

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	control = http_client_create();
	standin_start(&standin, "square.py", seed);
	server_init(&server, NULL);
	server_start(&server);
	cr_assert_eq(client_open(&admin, server.port, client_id(77)), 0);
	/* Items 1..4, bundle 5; stores 1, 2 in the pool, 3 outside it. */
	push_catalog(&admin, &key_serial, SHOP, "square", "SQVAR");
	snprintf(worker.config, sizeof(worker.config), "%s/push.conf", server.dir);
	FILE *file = fopen(worker.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "# the Square worker of the end-to-end test\n"
	        "server = 127.0.0.1:%u\nchannel = square\nkind = square\napi_url = %s\n"
	        "api_token = EAAAEstandin-square-token\napi_version = 2025-08-20\n"
	        "location = " LOCATION "\n"
	        "idle_ms = 20\nreconcile_s = 0\nzero_resend_s = 0\ntimeout_ms = 3000\n",
	        server.port, standin.base);
	fclose(file);
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

TestSuite(push_square_e2e, .init = setup, .fini = teardown, .timeout = 120);

static int64_t channel_available(uint32_t item)
{
	char object[32];
	snprintf(object, sizeof(object), "SQVAR10%u", item);
	json_t *state = standin_get_json(&standin, control, "state");
	size_t i;
	json_t *count;
	int64_t available = -1;
	json_array_foreach(json_object_get(state, "counts"), i, count)
	{
		if (strcmp(json_string_value(json_object_get(count, "catalog_object_id")),
		           object) == 0)
			cr_assert_eq(square_quantity_parse(
			                     json_string_value(json_object_get(count, "quantity")),
			                     0, &available),
			             0);
	}
	json_decref(state);
	return available;
}

/* Waits until the channel shows want[1..ITEMS] (-1: any) and nothing is
 * dirty. */
static void converge(const int64_t *want, const char *what)
{
	push_converge(&admin, SHOP, ITEMS, channel_available, want, what);
}

/* Every change the stand-in applied to item, from its request log: the sum
 * of their deltas, and how many changed nothing (an absolute count applied
 * a second time). */
static int64_t applied_sum(uint32_t item, uint32_t *empty)
{
	char object[32];
	snprintf(object, sizeof(object), "SQVAR10%u", item);
	json_t *entries = standin_log_json(&standin, control, 0);
	int64_t sum = 0;
	*empty = 0;
	size_t i, n;
	json_t *entry, *change;
	json_array_foreach(entries, i, entry)
	{
		json_array_foreach(json_object_get(entry, "applied"), n, change)
		{
			const char *what =
			        json_string_value(json_object_get(change, "catalog_object_id"));
			int64_t delta = 0;
			if (what == NULL || strcmp(what, object) != 0)
				continue;
			cr_assert_eq(square_quantity_parse(
			                     json_string_value(json_object_get(change, "delta")), 0,
			                     &delta),
			             0);
			sum += delta;
			*empty += delta == 0;
		}
	}
	json_decref(entries);
	return sum;
}

Test(push_square_e2e, till_sales_holds_pools_and_bundles_reach_square)
{
	push_worker_start(&worker);
	/* 15 in the pool; 3; 1; store 3 is outside; kits per store:
	 * store 1 min(10/2, 3/1) = 3, store 2 min(5/2, 0) = 0. */
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	/* A till sale at store 2. */
	one(stock(SKULD_SALE, 1, 2, 4));
	want[1] = 11;
	converge(want, "till sale");
	/* A hold that takes the last unit of item 3 sends 0. */
	struct skuld_event reserve = stock(SKULD_RESERVE, 3, 1, 1);
	reserve.id = 501;
	reserve.ttl_s = 600;
	one(reserve);
	want[3] = 0;
	converge(want, "hold");
	/* A receipt outside the pool changes nothing; one inside does. */
	one(stock(SKULD_RECEIVE, 4, 3, 5));
	one(stock(SKULD_RECEIVE, 2, 2, 2));
	want[2] = 5;
	converge(want, "receipts");
	/* Selling a kit at store 1 moves its components. */
	one(stock(SKULD_SALE, 5, 1, 1));
	want[1] = 9;
	want[2] = 4;
	want[5] = 2;
	converge(want, "kit sale");
	push_worker_stop(&worker, SIGTERM);
	/* Every count went in as an absolute PHYSICAL_COUNT, none applied twice. */
	uint32_t empty = 0;
	cr_assert_eq(applied_sum(1, &empty), 9);
	cr_assert_eq(empty, 0);
}

Test(push_square_e2e, faults_converge_and_nothing_is_applied_twice)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	const char *faults[] = {
	        "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}",
	        "{\"kind\":\"reset\"}",
	        "{\"kind\":\"rate_limit\",\"count\":3}",
	        "{\"kind\":\"malformed\",\"apply\":true}",
	        "{\"kind\":\"timeout\",\"seconds\":4,\"apply\":true}",
	        "{\"kind\":\"http_error\",\"status\":500}",
	};
	for (size_t f = 0; f < sizeof(faults) / sizeof(faults[0]); f++) {
		standin_control(&standin, control, "faults", faults[f]);
		one(stock(SKULD_SALE, 1, 1, 1));
		want[1]--;
		want[5] = -1; /* kits follow item 1; the first test checks them */
		char what[64];
		snprintf(what, sizeof(what), "fault %zu", f);
		converge(want, what);
	}
	cr_assert_eq(want[1], 9);
	/* The changes Square applied to item 1 add up to where it is, and none
	 * was an absolute count applied a second time (a retry under a new key
	 * would be one). */
	uint32_t empty = 0;
	cr_assert_eq(applied_sum(1, &empty), 9);
	cr_assert_eq(empty, 0);
	push_worker_stop(&worker, SIGTERM);
}

/* The count goes in at the ledger time of its value: a Square sale made
 * after that and before the push stays subtracted until the ledger hears of
 * it, and then both agree. */
Test(push_square_e2e, a_square_sale_after_the_ledger_value_is_kept)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	push_worker_stop(&worker, SIGTERM);
	one(stock(SKULD_RECEIVE, 1, 1, 2)); /* the ledger: 17, from now */
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	standin_control(&standin, control, "sale",
	                "{\"catalog_object_id\":\"" OBJECT(1) "\",\"location_id\":\"" LOCATION
	                                                      "\",\"quantity\":2}");
	push_worker_start(&worker);
	want[1] = 15; /* 17 counted before the sale, the sale after it */
	converge(want, "count before the sale");
	/* The gateway's SALE reaches the ledger: 15, and nothing to push. */
	one(stock(SKULD_SALE, 1, 1, 2));
	converge(want, "sale arrives");
	cr_assert_eq(channel_available(1), 15);
	push_worker_stop(&worker, SIGTERM);
}

Test(push_square_e2e, an_unknown_object_is_an_exception_and_the_others_go_on)
{
	standin_control(&standin, control, "object", "{\"id\":\"" OBJECT(2) "\",\"exists\":false}");
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, -1, 1, 0, 3};
	converge(want, "others");
	struct skuld_channel_push_record channel = channel_push_of(&admin, SHOP);
	cr_assert_eq(channel.parked, 1);
	struct skuld_query query = {.kind = SKULD_QUERY_EXCEPTIONS, .channel = SHOP};
	struct skuld_exception_record exceptions[4];
	cr_assert_eq(client_query(&admin, &query, exceptions, 4), 1);
	cr_assert_eq(exceptions[0].item, 2);
	cr_assert_eq(exceptions[0].exception, SKULD_PUSH_UNKNOWN);
	/* Item 1 still moves while item 2 is parked. */
	one(stock(SKULD_SALE, 2, 1, 1));
	one(stock(SKULD_SALE, 1, 1, 1));
	want[1] = 14;
	want[5] = 2; /* store 1: min(9 / 2, 2 / 1) */
	converge(want, "item 1 still moves");
	cr_assert_eq(client_query(&admin, &query, exceptions, 4), 1);
	cr_assert_eq(exceptions[0].reports, 1, "not retried");
	/* The object exists again and the listing is re-sent: it is pushed. */
	standin_control(&standin, control, "object", "{\"id\":\"" OBJECT(2) "\",\"exists\":true}");
	struct skuld_event listing = event_make(SKULD_CHANNEL_LISTING, ++key_serial, 7);
	listing.channel = SHOP;
	listing.item = 2;
	snprintf(listing.listing, sizeof(listing.listing), "SQVAR102");
	one(listing);
	want[2] = 2;
	converge(want, "remapped");
	cr_assert_eq(client_query(&admin, &query, exceptions, 4), 0);
	push_worker_stop(&worker, SIGTERM);
}

Test(push_square_e2e, a_killed_worker_resumes_from_the_acknowledged_versions)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	uint64_t acks = channel_push_of(&admin, SHOP).acks;
	/* Killed while calls are slow, with changes in flight. */
	standin_control(&standin, control, "faults",
	                "{\"kind\":\"delay\",\"seconds\":1,\"count\":5}");
	for (int i = 0; i < 5; i++)
		one(stock(SKULD_SALE, 1, 1, 1));
	nanosleep(&(struct timespec){0, 300000000}, NULL);
	push_worker_stop(&worker, SIGKILL);
	push_worker_start(&worker);
	want[1] = 10;
	want[5] = -1;
	converge(want, "after the restart");
	cr_assert_gt(channel_push_of(&admin, SHOP).acks, acks);
	push_worker_stop(&worker, SIGTERM);
	uint32_t empty = 0;
	cr_assert_eq(applied_sum(1, &empty), 10);
}
