/*
 * test_push_e2e.c — the real skuld, the real skuld-push and the Shopify
 * stand-in together: a till sale, a hold, a store outside the pool and a
 * bundle show up as the right quantities at the channel; a sale on the
 * channel is never undone; faults (5xx, resets, throttling, malformed
 * answers, an applied call whose answer is lost) converge without applying
 * anything twice; an item made not-stocked becomes an exception without
 * holding back the others; a killed worker resumes from the acknowledged
 * versions.
 */
#include <jansson.h>

#include "push_harness.h"

#define LOCATION "gid://shopify/Location/1"
#define ITEM(n)  "gid://shopify/InventoryItem/10" #n

#define SHOP  1 /* skuld channel id */
#define ITEMS 5 /* 1..4 plain, 5 a bundle of 2 x item 1 + 1 x item 2 */

static struct server server;
static struct standin standin;
static struct http_client *control;
static struct client admin;
static struct push_worker worker;
static uint64_t key_serial = 1000;

static const char seed[] =
        "{\"locations\":[{\"id\":\"" LOCATION "\",\"name\":\"Web\",\"active\":true}],"
        "\"levels\":["
        "{\"inventoryItemId\":\"" ITEM(
                1) "\",\"locationId\":\"" LOCATION "\",\"available\":0},"
                   "{\"inventoryItemId\":\"" ITEM(
                           2) "\",\"locationId\":\"" LOCATION "\",\"available\":0},"
                              "{\"inventoryItemId\":\"" ITEM(
                                      3) "\",\"locationId\":\"" LOCATION "\",\"available\":0},"
                                         "{\"inventoryItemId\":\"" ITEM(
                                                 4) "\",\"locationId\":\"" LOCATION
                                                    "\",\"available\":0},"
                                                    "{\"inventoryItemId\":\"" ITEM(
                                                            5) "\",\"locationId\":\"" LOCATION
                                                               "\",\"available\":0}]}";

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
	standin_start(&standin, "shopify.py", seed);
	/* A scan budget of 2 makes the exception list page with CURSOR records. */
	server_init(&server, "query_scan = 2");
	server_start(&server);
	cr_assert_eq(client_open(&admin, server.port, client_id(77)), 0);
	/* Items 1..4, bundle 5; stores 1, 2 in the pool, 3 outside it. */
	push_catalog(&admin, &key_serial, SHOP, "shopify", "");
	snprintf(worker.config, sizeof(worker.config), "%s/push.conf", server.dir);
	FILE *file = fopen(worker.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "# the Shopify worker of the end-to-end test\n"
	        "server = 127.0.0.1:%u\nchannel = shopify\napi_url = %s\n"
	        "api_token = shpat_standin\napi_version = 2025-01\nlocation = " LOCATION "\n"
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

TestSuite(push_e2e, .init = setup, .fini = teardown, .timeout = 120);

static int64_t channel_available(uint32_t item)
{
	char gid[64];
	snprintf(gid, sizeof(gid), "gid://shopify/InventoryItem/10%u", item);
	json_t *state = standin_get_json(&standin, control, "state");
	size_t i;
	json_t *level;
	int64_t available = -1;
	json_array_foreach(json_object_get(state, "levels"), i, level)
	{
		if (strcmp(json_string_value(json_object_get(level, "inventoryItemId")), gid) == 0)
			available = json_integer_value(json_object_get(level, "available"));
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

/* Every change of "available" the stand-in applied to item, from its
 * request log: their sum, and how many changed nothing (an absolute set
 * applied a second time). */
static int64_t applied_sum(uint32_t item, uint32_t *empty)
{
	char gid[64];
	snprintf(gid, sizeof(gid), "gid://shopify/InventoryItem/10%u", item);
	json_t *entries = standin_log_json(&standin, control, 0);
	int64_t sum = 0;
	*empty = 0;
	size_t i, n;
	json_t *entry, *change;
	json_array_foreach(entries, i, entry)
	{
		json_array_foreach(json_object_get(entry, "applied"), n, change)
		{
			const char *name = json_string_value(json_object_get(change, "name"));
			const char *what = json_string_value(json_object_get(change, "item"));
			if (name == NULL || what == NULL || strcmp(name, "available") != 0 ||
			    strcmp(what, gid) != 0)
				continue;
			int64_t delta = json_integer_value(json_object_get(change, "delta"));
			sum += delta;
			*empty += delta == 0;
		}
	}
	json_decref(entries);
	return sum;
}

/* SHOP's open exceptions into out (room for max), paging past the CURSOR
 * records a small scan budget makes; returns how many. */
static uint32_t exceptions_of(struct skuld_exception_record *out, uint32_t max)
{
	uint32_t found = 0;
	uint32_t after = 0;
	for (int pages = 0; pages < 64; pages++) {
		struct skuld_query query = {
		        .kind = SKULD_QUERY_EXCEPTIONS, .channel = SHOP, .after_item = after};
		struct skuld_exception_record page[8];
		int count = client_query(&admin, &query, page, 8);
		cr_assert_geq(count, 0);
		for (int i = 0; i < count; i++) {
			if (page[i].flags & SKULD_QUERY_CURSOR)
				continue;
			cr_assert_eq(page[i].status, SKULD_OK);
			cr_assert_lt(found, max);
			out[found++] = page[i];
		}
		if (count == 0 || !(page[count - 1].flags & SKULD_QUERY_MORE))
			return found;
		after = page[count - 1].item;
	}
	cr_assert_fail("the exception list did not end");
	return found;
}

Test(push_e2e, till_sales_holds_pools_and_bundles_reach_the_channel)
{
	push_worker_start(&worker);
	/* 15 in the pool; 3; 1; store 3 is outside; kits min(15/2.., ) per store:
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
	want[5] = 3; /* store 2: min(1/2, 2) = 0 */
	converge(want, "receipts");
	/* Selling a kit at store 1 moves its components. */
	one(stock(SKULD_SALE, 5, 1, 1));
	want[1] = 9;
	want[2] = 4;
	want[5] = 2;
	converge(want, "kit sale");
	/* A buffer on the channel holds back 2 of every item. */
	struct skuld_event buffer = event_make(SKULD_CHANNEL_BUFFER, ++key_serial, 6);
	buffer.channel = SHOP;
	buffer.item = 1;
	buffer.quantity = 2;
	one(buffer);
	want[1] = 7;
	converge(want, "buffer");
	push_worker_stop(&worker, SIGTERM);
}

Test(push_e2e, faults_converge_and_nothing_is_applied_twice)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	const char *faults[] = {
	        "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}",
	        "{\"kind\":\"reset\"}",
	        "{\"kind\":\"throttle\",\"count\":3}",
	        "{\"kind\":\"malformed\"}",
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
	/* The changes the channel applied to item 1 add up to where it is,
	 * and none was an absolute set applied a second time. */
	uint32_t empty = 0;
	cr_assert_eq(applied_sum(1, &empty), 9);
	cr_assert_eq(empty, 0);
	push_worker_stop(&worker, SIGTERM);
}

Test(push_e2e, a_channel_sale_is_never_undone)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	push_worker_stop(&worker, SIGTERM);
	/* An order on Shopify the ledger has not seen: 15 -> 13. */
	standin_control(&standin, control, "sale",
	                "{\"inventoryItemId\":\"" ITEM(1) "\",\"locationId\":\"" LOCATION
	                                                  "\",\"quantity\":2}");
	/* A receipt raises the ledger's number to 17; the push finds the
	 * channel's 13, not the 15 it accepted, and pushes at most 13. */
	one(stock(SKULD_RECEIVE, 1, 1, 2));
	push_worker_start(&worker);
	want[1] = 13;
	converge(want, "stale");
	cr_assert_eq(channel_available(1), 13);
	/* When the ledger learns of the sale (the gateway's SALE), it agrees. */
	one(stock(SKULD_SALE, 1, 1, 2));
	want[1] = 13;
	converge(want, "sale arrives");
	push_worker_stop(&worker, SIGTERM);
}

Test(push_e2e, a_not_stocked_item_is_an_exception_and_the_others_go_on)
{
	standin_control(&standin, control, "level",
	                "{\"inventoryItemId\":\"" ITEM(2) "\",\"locationId\":\"" LOCATION
	                                                  "\",\"stocked\":false}");
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, -1, 1, 0, 3};
	converge(want, "others");
	struct skuld_channel_push_record channel = channel_push_of(&admin, SHOP);
	cr_assert_eq(channel.parked, 1);
	struct skuld_exception_record exceptions[4];
	cr_assert_eq(exceptions_of(exceptions, 4), 1);
	cr_assert_eq(exceptions[0].item, 2);
	cr_assert_eq(exceptions[0].exception, SKULD_PUSH_NOT_STOCKED);
	cr_assert_eq(exceptions[0].reports, 1);
	/* More sales of item 2: not retried while the mapping is unchanged. */
	one(stock(SKULD_SALE, 2, 1, 1));
	one(stock(SKULD_SALE, 1, 1, 1));
	want[1] = 14;
	want[5] = 2; /* store 1: min(9 / 2, 2 / 1) */
	converge(want, "item 1 still moves");
	cr_assert_eq(exceptions_of(exceptions, 4), 1);
	cr_assert_eq(exceptions[0].reports, 1, "not retried");
	/* Stocked again and the listing re-sent: it is pushed. */
	standin_control(&standin, control, "level",
	                "{\"inventoryItemId\":\"" ITEM(2) "\",\"locationId\":\"" LOCATION
	                                                  "\",\"stocked\":true,\"available\":0}");
	struct skuld_event listing = event_make(SKULD_CHANNEL_LISTING, ++key_serial, 7);
	listing.channel = SHOP;
	listing.item = 2;
	snprintf(listing.listing, sizeof(listing.listing), "102");
	one(listing);
	want[2] = 2;
	converge(want, "remapped");
	cr_assert_eq(exceptions_of(exceptions, 4), 0);
	push_worker_stop(&worker, SIGTERM);
}

Test(push_e2e, a_killed_worker_resumes_from_the_acknowledged_versions)
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
}

/* Runs skuldctl with args against the server; returns its exit status and
 * its standard output in out. */
static int skuldctl(const char *args, char *out, size_t size)
{
	char command[1024];
	snprintf(command, sizeof(command),
	         "ASAN_OPTIONS=detect_leaks=0 %s/client/skuldctl --server 127.0.0.1:%u %s 2>&1",
	         SKULD_BINARY_DIR, server.port, args);
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe);
	size_t have = fread(out, 1, size - 1, pipe);
	out[have] = '\0';
	int status = pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(push_e2e, skuldctl_imports_mappings_and_lists_channels_and_exceptions)
{
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	char path[128];
	snprintf(path, sizeof(path), "%s/mappings.csv", server.dir);
	FILE *file = fopen(path, "w");
	cr_assert_not_null(file);
	fprintf(file, "sku,channel,listing\n"
	              "SKU-3,shopify,gid://shopify/InventoryItem/103\n"
	              "SKU-4,shopify,-\n");
	fclose(file);
	char out[4096], args[256];
	snprintf(args, sizeof(args), "import mappings %s", path);
	cr_assert_eq(skuldctl(args, out, sizeof(out)), 0, "%s", out);
	cr_assert_not_null(strstr(out, "2 mappings: 2 applied, 0 already applied"), "%s", out);
	cr_assert_eq(skuldctl(args, out, sizeof(out)), 0, "%s", out);
	cr_assert_not_null(strstr(out, "0 applied, 2 already applied"), "%s", out);
	/* A defect anywhere: nothing is sent. */
	file = fopen(path, "w");
	fprintf(file, "sku,channel,listing\nSKU-1,shopify,ok\nSKU-9,shopify,x\n"
	              "SKU-2,shopify, padded\n");
	fclose(file);
	cr_assert_eq(skuldctl(args, out, sizeof(out)), 1, "%s", out);
	/* Item 3 was remapped to the same listing: pushed again, still 1. */
	converge(want, "remapped");
	cr_assert_eq(skuldctl("--json channels shopify", out, sizeof(out)), 0, "%s", out);
	json_t *channels = json_loads(out, 0, NULL);
	cr_assert_not_null(channels, "%s", out);
	json_t *shop = json_array_get(channels, 0);
	cr_assert_eq(json_integer_value(json_object_get(shop, "mapped")), 4, "%s", out);
	cr_assert_eq(json_integer_value(json_object_get(shop, "dirty")), 0, "%s", out);
	cr_assert_geq(json_integer_value(json_object_get(shop, "pushes")), 5, "%s", out);
	json_decref(channels);
	/* Item 1 stops being stocked at the channel's location. */
	standin_control(&standin, control, "level",
	                "{\"inventoryItemId\":\"" ITEM(1) "\",\"locationId\":\"" LOCATION
	                                                  "\",\"stocked\":false}");
	one(stock(SKULD_SALE, 1, 2, 1));
	uint64_t deadline = harness_now_ms() + 20000;
	while (channel_push_of(&admin, SHOP).parked == 0 && harness_now_ms() < deadline)
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	cr_assert_eq(skuldctl("--json exceptions --channel shopify", out, sizeof(out)), 0, "%s",
	             out);
	json_t *list = json_loads(out, 0, NULL);
	cr_assert_not_null(list, "%s", out);
	cr_assert_eq(json_array_size(list), 1, "%s", out);
	json_t *entry = json_array_get(list, 0);
	cr_assert_eq(json_integer_value(json_object_get(entry, "item")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(entry, "listing")), "101");
	cr_assert_str_eq(json_string_value(json_object_get(entry, "exception")), "not-stocked");
	json_decref(list);
	cr_assert_eq(skuldctl("exceptions", out, sizeof(out)), 0, "%s", out);
	cr_assert_not_null(strstr(out, "not-stocked, 1 report"), "%s", out);
	push_worker_stop(&worker, SIGTERM);
}

/* Rewrites the worker's configuration with read-backs and zero re-sends
 * every second. */
static void worker_config_schedules(void)
{
	FILE *file = fopen(worker.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "server = 127.0.0.1:%u\nchannel = shopify\napi_url = %s\n"
	        "api_token = shpat_standin\napi_version = 2025-01\nlocation = " LOCATION "\n"
	        "idle_ms = 20\nreconcile_s = 1\nzero_resend_s = 1\ntimeout_ms = 3000\n",
	        server.port, standin.base);
	fclose(file);
}

/* The mutations sent for item since log sequence `since`, and the
 * sequence of the newest entry. */
static uint32_t mutations_of(uint32_t item, uint64_t since, uint64_t *last)
{
	char gid[64];
	snprintf(gid, sizeof(gid), "gid://shopify/InventoryItem/10%u", item);
	json_t *entries = standin_log_json(&standin, control, since);
	uint32_t count = 0;
	size_t i;
	json_t *entry;
	json_array_foreach(entries, i, entry)
	{
		*last = (uint64_t)json_integer_value(json_object_get(entry, "seq"));
		const char *operation = json_string_value(json_object_get(entry, "operation"));
		char *variables = json_dumps(json_object_get(entry, "variables"), 0);
		if (operation != NULL && strcmp(operation, "mutation") == 0 && variables != NULL &&
		    strstr(variables, gid) != NULL)
			count++;
		free(variables);
	}
	json_decref(entries);
	return count;
}

Test(push_e2e, read_backs_report_a_mismatch_and_zeros_are_sent_again)
{
	worker_config_schedules();
	push_worker_start(&worker);
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0, 3};
	converge(want, "first push");
	/* Item 4 shows 0 and stays clean: it is pushed again every second. */
	uint64_t seq = 0;
	mutations_of(4, 0, &seq);
	uint64_t after = seq;
	uint32_t resent = 0;
	uint64_t deadline = harness_now_ms() + 20000;
	while (resent == 0 && harness_now_ms() < deadline) {
		nanosleep(&(struct timespec){0, 200000000}, NULL);
		resent = mutations_of(4, seq, &after);
	}
	cr_assert_geq(resent, 1, "zero sent again");
	/* An edit in the channel's admin: item 1 shows 12, not the 15 it
	 * accepted. The read-back reports it and pushes at most 12. */
	standin_control(&standin, control, "sale",
	                "{\"inventoryItemId\":\"" ITEM(1) "\",\"locationId\":\"" LOCATION
	                                                  "\",\"quantity\":3}");
	struct skuld_exception_record exceptions[4];
	deadline = harness_now_ms() + 20000;
	int found = 0;
	while (!found && harness_now_ms() < deadline) {
		found = exceptions_of(exceptions, 4) == 1 &&
		        exceptions[0].exception == SKULD_PUSH_MISMATCH;
		if (!found)
			nanosleep(&(struct timespec){0, 50000000}, NULL);
	}
	cr_assert(found, "a mismatch exception");
	cr_assert_eq(exceptions[0].item, 1);
	cr_assert_str_eq(exceptions[0].detail, "shows 12, accepted 15");
	cr_assert_eq(channel_available(1), 12, "a sale on the channel is not undone");
	cr_assert_eq(channel_push_of(&admin, SHOP).parked, 0, "a mismatch does not park");
	/* The ledger learns of the sale: the channel agrees again. */
	one(stock(SKULD_SALE, 1, 1, 3));
	want[1] = 12;
	want[5] = -1;
	converge(want, "the sale arrives");
	push_worker_stop(&worker, SIGTERM);
}
