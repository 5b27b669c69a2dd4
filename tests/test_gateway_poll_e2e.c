/*
 * test_gateway_poll_e2e.c — the real skuld, the real skuld-gateway and the
 * Shopify stand-in (tests/standins/shopify.py) delivering signed webhooks
 * from its own thread, with its retries, duplicates, late and dropped
 * deliveries, and serving the orders query the gateway's safety-net poll
 * reads: an order lowers the ledger once; 200 orders with 30% duplicates
 * and late deliveries give the balances of a clean delivery; missed
 * webhooks are brought in by the poll; a bad secret is refused (401,
 * counted) and changes nothing, and the poll still brings the orders in; a
 * cancellation gives the units back once; refunds and an exchange whose
 * webhooks are all dropped are applied by the poll exactly once, and a
 * refund delivered twice while the poll reads it too, once; a cancellation
 * and the refund it makes (orders/cancelled and refunds/create, duplicated,
 * or dropped and read by the poll) give the units back once. Every wait is
 * bounded.
 */
#include <fcntl.h>
#include <jansson.h>

#include "gateway_harness.h"
#include "server_harness.h"
#include "standin_harness.h"

#define SECRET "whsec-poll-test"
#define TOKEN  "shpat_standin"
#define WEB    1 /* location WEB-DC: online orders (the stand-in's location 1) */
#define STORE  2 /* location STORE-1: POS location 655441491 */

static const char SEED[] =
        "{\"locations\": [{\"id\": 1, \"name\": \"Web\"}, {\"id\": 655441491, \"name\": "
        "\"Store\"}],"
        " \"items\": [{\"id\": 101, \"sku\": \"MUG\"}, {\"id\": 102, \"sku\": \"TEE\"}],"
        " \"levels\": ["
        "{\"inventoryItemId\": 101, \"locationId\": 1, \"available\": 100000},"
        "{\"inventoryItemId\": 102, \"locationId\": 1, \"available\": 100000},"
        "{\"inventoryItemId\": 101, \"locationId\": 655441491, \"available\": 100000}]}";

static struct server server;
static struct client admin;
static struct http_client *http;
static struct standin shopify;
static struct gateway_process gateway;
static uint64_t key_serial = 7000;

/* Writes the configuration and starts skuld-gateway; poll_s 0: no poll. */
static void gateway_start(unsigned poll_s, unsigned overlap_s)
{
	FILE *file = fopen(gateway.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "listen = 127.0.0.1:0\nserver = 127.0.0.1:%u\nchannel = shopify\n"
	        "secret = " SECRET "\nlocation = WEB-DC\nspool = %s\nretry_s = 1\n"
	        "pos = 655441491:STORE-1\npoll_s = %u\npoll_overlap_s = %u\n"
	        "api_url = %s\napi_token = " TOKEN "\napi_version = 2025-01\n",
	        server.port, server.dir, poll_s, overlap_s, shopify.base);
	fclose(file);
	gateway_process_start(&gateway);
}

static void gateway_stop(int signal_number)
{
	gateway_process_stop(&gateway, signal_number);
}

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	http = http_client_create();
	server_init(&server, NULL);
	server_start(&server);
	cr_assert_eq(client_open(&admin, server.port, client_id(92)), 0);
	admin_define_code(&admin, event_item(1, ++key_serial), "MUG");
	admin_define_code(&admin, event_item(2, ++key_serial), "TEE");
	admin_define_code(&admin, event_location(WEB, ++key_serial), "WEB-DC");
	admin_define_code(&admin, event_location(STORE, ++key_serial), "STORE-1");
	for (uint32_t item = 1; item <= 2; item++)
		for (uint32_t location = WEB; location <= STORE; location++)
			admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, item, location, 10000,
			                                    ++key_serial));
	snprintf(gateway.config, sizeof(gateway.config), "%s/gateway.conf", server.dir);
	snprintf(gateway.log, sizeof(gateway.log), "%s/gateway.log", server.dir);
	standin_start(&shopify, "shopify.py", SEED);
	/* A Plus shop's restore rate, so that passes over a few hundred orders
	 * take seconds; the poll learns it from the first answer. */
	standin_control(&shopify, http, "config", "{\"restore_rate\": 1000}");
}

static void teardown(void)
{
	gateway_stop(SIGKILL);
	standin_stop(&shopify);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	http_client_destroy(http);
}

TestSuite(gateway_poll_e2e, .init = setup, .fini = teardown, .timeout = 120);

static int64_t on_hand(uint32_t item, uint32_t location)
{
	return client_level(&admin, item, location).on_hand;
}

static void subscribe(const char *secret)
{
	char url[96], body[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/webhooks/shopify", gateway.port);
	snprintf(body, sizeof(body), "{\"url\": \"%s\", \"secret\": \"%s\"}", url, secret);
	standin_control(&shopify, http, "webhooks", body);
}

/* The stand-in's delivery status (GET /_control/webhooks); the caller
 * json_decref()s it. */
static json_t *deliveries(void)
{
	char url[128];
	snprintf(url, sizeof(url), "%s/_control/webhooks", shopify.base);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 10000};
	struct http_response response;
	cr_assert_eq(http_call(http, &request, &response), 0, "%s", response.error);
	cr_assert_eq(response.status, 200);
	json_t *root = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert_not_null(root);
	return root;
}

static json_int_t delivery_count(json_t *root, const char *state)
{
	return json_integer_value(json_object_get(json_object_get(root, "counts"), state));
}

/* Waits (at most ms) until the stand-in has nothing left to deliver. */
static void deliveries_settle(unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	for (;;) {
		json_t *root = deliveries();
		json_int_t pending = json_integer_value(json_object_get(root, "pending"));
		json_decref(root);
		if (pending == 0)
			return;
		cr_assert_lt(harness_now_ms(), deadline, "%lld deliveries still pending",
		             (long long)pending);
		sleep_ms(100);
	}
}

/* Waits (at most ms) until item at location shows expected on hand. */
static void await_on_hand(uint32_t item, uint32_t location, int64_t expected, unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	while (on_hand(item, location) != expected && harness_now_ms() < deadline)
		sleep_ms(100);
	cr_assert_eq(on_hand(item, location), expected, "item %u at %u: %lld, expected %lld", item,
	             location, (long long)on_hand(item, location), (long long)expected);
}

static void order(const char *sku, int quantity, const char *extra)
{
	char body[256];
	snprintf(body, sizeof(body), "{%s\"line_items\": [{\"sku\": \"%s\", \"quantity\": %d}]}",
	         extra != NULL ? extra : "", sku, quantity);
	standin_control(&shopify, http, "order", body);
}

static long gateway_figure(const char *label)
{
	return gateway_process_figure(&gateway, label);
}

Test(gateway_poll_e2e, an_order_at_the_standin_lowers_the_ledger_once)
{
	gateway_start(0, 60);
	subscribe(SECRET);
	order("MUG", 2, NULL);
	order("MUG", 3, "\"source_name\": \"pos\", \"location_id\": 655441491, ");
	await_on_hand(1, WEB, 9998, 10000);
	await_on_hand(1, STORE, 9997, 10000);
	deliveries_settle(10000);
	json_t *root = deliveries();
	cr_assert_eq(delivery_count(root, "delivered"), 2);
	json_decref(root);
	sleep_ms(300);
	cr_assert_eq(on_hand(1, WEB), 9998);
	cr_assert_eq(on_hand(1, STORE), 9997);
	gateway_stop(SIGTERM);
}

Test(gateway_poll_e2e, two_hundred_orders_with_duplicates_and_late_deliveries)
{
	standin_control(&shopify, http, "config",
	                "{\"webhook_duplicate_rate\": 0.3, \"webhook_late_rate\": 0.3,"
	                " \"webhook_late_seconds\": 1.5, \"webhook_seed\": 9}");
	gateway_start(1, 5);
	subscribe(SECRET);
	int64_t sold[3] = {0, 0, 0};
	uint64_t rng = 0x5eed;
	for (int n = 0; n < 200; n++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t item = 1 + (uint32_t)((rng >> 33) % 2);
		int quantity = 1 + (int)((rng >> 40) % 3);
		sold[item] += quantity;
		order(item == 1 ? "MUG" : "TEE", quantity, NULL);
	}
	deliveries_settle(30000);
	await_on_hand(1, WEB, 10000 - sold[1], 10000);
	await_on_hand(2, WEB, 10000 - sold[2], 10000);
	json_t *root = deliveries();
	json_int_t delivered = delivery_count(root, "delivered");
	json_decref(root);
	cr_assert_gt(delivered, 230, "duplicates delivered: %lld", (long long)delivered);
	/* Two more poll passes over the same orders: still applied once. */
	sleep_ms(2500);
	cr_assert_eq(on_hand(1, WEB), 10000 - sold[1]);
	cr_assert_eq(on_hand(2, WEB), 10000 - sold[2]);
	gateway_stop(SIGTERM);
	cr_assert_gt(gateway_figure("already applied"), 0);
}

Test(gateway_poll_e2e, missed_webhooks_are_caught_by_the_poll)
{
	standin_control(&shopify, http, "config", "{\"webhook_drop\": true}");
	gateway_start(1, 5);
	subscribe(SECRET);
	for (int n = 0; n < 20; n++)
		order(n % 2 ? "MUG" : "TEE", 1, NULL);
	order("MUG", 2, "\"source_name\": \"pos\", \"location_id\": 655441491, ");
	await_on_hand(1, WEB, 10000 - 10, 15000);
	await_on_hand(2, WEB, 10000 - 10, 15000);
	await_on_hand(1, STORE, 10000 - 2, 15000);
	json_t *root = deliveries();
	cr_assert_eq(delivery_count(root, "delivered"), 0);
	cr_assert_eq(delivery_count(root, "dropped"), 21);
	json_decref(root);
	gateway_stop(SIGTERM);
	cr_assert_geq(gateway_figure("orders"), 21);
}

Test(gateway_poll_e2e, a_bad_secret_changes_nothing_and_the_poll_brings_the_orders_in)
{
	standin_control(&shopify, http, "config",
	                "{\"webhook_max_attempts\": 2, \"webhook_retry_initial_seconds\": 0.2}");
	gateway_start(0, 60);
	subscribe("not-the-secret");
	for (int n = 0; n < 5; n++)
		order("MUG", 1, NULL);
	deliveries_settle(10000);
	json_t *root = deliveries();
	cr_assert_eq(delivery_count(root, "failed"), 5);
	json_t *attempts = json_object_get(root, "attempts");
	cr_assert_eq(json_array_size(attempts), 10);
	size_t i;
	json_t *attempt;
	json_array_foreach(attempts, i, attempt)
	{
		cr_assert_eq(json_integer_value(json_object_get(attempt, "status")), 401);
	}
	json_decref(root);
	cr_assert_eq(on_hand(1, WEB), 10000);
	gateway_stop(SIGTERM);
	cr_assert_eq(gateway_figure("unverified"), 10, "two attempts of five deliveries");
	/* The poll, with the right API token, brings the orders in. */
	gateway_start(1, 60);
	await_on_hand(1, WEB, 9995, 15000);
	sleep_ms(1500);
	cr_assert_eq(on_hand(1, WEB), 9995);
	gateway_stop(SIGTERM);
}

Test(gateway_poll_e2e, a_cancellation_gives_the_units_back_once)
{
	standin_control(&shopify, http, "config",
	                "{\"webhook_duplicate_rate\": 0.5, \"webhook_seed\": 3}");
	gateway_start(1, 30);
	subscribe(SECRET);
	order("MUG", 4, NULL);
	await_on_hand(1, WEB, 9996, 10000);
	standin_control(&shopify, http, "cancel", "{\"id\": 5000000001}");
	await_on_hand(1, WEB, 10000, 10000);
	deliveries_settle(10000);
	sleep_ms(2500); /* two poll passes read the cancelled order again */
	cr_assert_eq(on_hand(1, WEB), 10000);
	gateway_stop(SIGTERM);
}

#define FIRST_ORDER 5000000001ull  /* the stand-in's first order id */
#define FIRST_LINE  13000000001ull /* and line id (one line per order here) */

/* Waits (at most ms) until item at location shows on_hand and incoming. */
static void await_level(uint32_t item, uint32_t location, int64_t on_hand_units, int64_t incoming,
                        unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	struct skuld_level_record now = client_level(&admin, item, location);
	while ((now.on_hand != on_hand_units || now.incoming != incoming) &&
	       harness_now_ms() < deadline) {
		sleep_ms(100);
		now = client_level(&admin, item, location);
	}
	cr_assert(now.on_hand == on_hand_units && now.incoming == incoming,
	          "item %u at %u: on hand %lld incoming %lld; expected %lld, %lld", item, location,
	          (long long)now.on_hand, (long long)now.incoming, (long long)on_hand_units,
	          (long long)incoming);
}

/* POST refund: lines "[{...}]" of order's only line, and an exchange (NULL: none). */
static void refund(unsigned long long order_id, const char *lines, const char *exchange)
{
	char body[512];
	snprintf(body, sizeof(body), "{\"id\": %llu, \"lines\": %s%s%s}", order_id, lines,
	         exchange != NULL ? ", \"exchange\": " : "", exchange != NULL ? exchange : "");
	standin_control(&shopify, http, "refund", body);
}

static void refund_lines(char *out, size_t size, unsigned long long line, const char *first_type,
                         int first_units, const char *second_type, int second_units)
{
	int at = snprintf(out, size,
	                  "[{\"line_item_id\": %llu, \"quantity\": %d, \"restock_type\": \"%s\"}",
	                  line, first_units, first_type);
	if (second_type != NULL)
		at += snprintf(
		        out + at, size - (size_t)at,
		        ", {\"line_item_id\": %llu, \"quantity\": %d, \"restock_type\": \"%s\"}",
		        line, second_units, second_type);
	snprintf(out + at, size - (size_t)at, "]");
}

/* Refunds whose refunds/create webhooks never arrive are applied by the poll,
 * under the keys their webhooks use: once, whichever path comes first, and
 * once more with a webhook delivered twice while the poll reads the same. */
Test(gateway_poll_e2e, dropped_refund_webhooks_are_applied_by_the_poll_once)
{
	gateway_start(1, 5);
	subscribe(SECRET);
	order("MUG", 4, NULL);                                                     /* order 1 */
	order("TEE", 3, NULL);                                                     /* order 2 */
	order("MUG", 2, "\"source_name\": \"pos\", \"location_id\": 655441491, "); /* order 3 */
	await_level(1, WEB, 9996, 0, 15000);
	await_level(2, WEB, 9997, 0, 15000);
	await_level(1, STORE, 9998, 0, 15000);
	deliveries_settle(15000);
	/* From here every webhook is dropped: only the poll can bring the refunds. */
	standin_control(&shopify, http, "config", "{\"webhook_drop\": true}");
	char lines[256];
	/* Order 1: one mug restocked (cancel: back on the shelf), one not restocked. */
	refund_lines(lines, sizeof(lines), FIRST_LINE, "cancel", 1, "no_restock", 1);
	refund(FIRST_ORDER, lines, NULL);
	/* Order 2: two tees refunded to come back (expected), then an exchange: one more
	 * tee comes back and two mugs go out instead, one chain. */
	refund_lines(lines, sizeof(lines), FIRST_LINE + 1, "return", 2, NULL, 0);
	refund(FIRST_ORDER + 1, lines, NULL);
	refund_lines(lines, sizeof(lines), FIRST_LINE + 1, "return", 1, NULL, 0);
	refund(FIRST_ORDER + 1, lines, "[{\"sku\": \"MUG\", \"quantity\": 2}]");
	/* Order 3 (the store's till): one mug restocked at the store. */
	refund_lines(lines, sizeof(lines), FIRST_LINE + 2, "cancel", 1, NULL, 0);
	refund(FIRST_ORDER + 2, lines, NULL);
	await_level(1, WEB, 9996 + 1 - 2, 0, 20000);
	await_level(2, WEB, 9997, 3, 20000);
	await_level(1, STORE, 9999, 0, 20000);
	json_t *root = deliveries();
	cr_assert_eq(delivery_count(root, "delivered"), 3, "the orders' webhooks only");
	cr_assert_eq(delivery_count(root, "dropped"), 4, "every refund's webhook");
	json_decref(root);
	sleep_ms(2500); /* more passes read the refunded orders again: REPLAYED */
	await_level(1, WEB, 9995, 0, 0);
	await_level(2, WEB, 9997, 3, 0);
	await_level(1, STORE, 9999, 0, 0);
	/* Webhooks back, each delivered twice, while the poll reads the same refund. */
	standin_control(&shopify, http, "config",
	                "{\"webhook_drop\": false, \"webhook_duplicate_rate\": 1.0}");
	refund_lines(lines, sizeof(lines), FIRST_LINE, "return", 1, NULL, 0);
	refund(FIRST_ORDER, lines, NULL);
	await_level(1, WEB, 9995, 1, 15000);
	deliveries_settle(15000);
	sleep_ms(2500);
	await_level(1, WEB, 9995, 1, 0);
	await_level(2, WEB, 9997, 3, 0);
	await_level(1, STORE, 9999, 0, 0);
	root = deliveries();
	cr_assert_eq(delivery_count(root, "delivered"), 5, "the last refund's webhook, twice");
	json_decref(root);
	gateway_stop(SIGTERM);
	cr_assert_gt(gateway_figure("already applied"), 0);
}

/* Shopify's cancellation refunds what the order still holds (restock type cancel, or
 * no_restock) and sends orders/cancelled, which carries that refund, and refunds/create:
 * the units come back once, through the refund, whichever arrives first and however
 * often. Here by webhooks alone (no poll), each delivered twice, the order read back
 * for orders/cancelled. */
Test(gateway_poll_e2e, a_cancellation_and_its_refund_give_the_units_back_once_by_webhooks)
{
	standin_control(&shopify, http, "config",
	                "{\"webhook_duplicate_rate\": 1.0, \"webhook_seed\": 5}");
	gateway_start(0, 60);
	subscribe(SECRET);
	order("MUG", 4, NULL); /* order 1: cancelled, restocked */
	order("TEE", 3, NULL); /* order 2: cancelled, not restocked */
	await_on_hand(1, WEB, 9996, 10000);
	await_on_hand(2, WEB, 9997, 10000);
	standin_control(&shopify, http, "cancel", "{\"id\": 5000000001}");
	standin_control(&shopify, http, "cancel", "{\"id\": 5000000002, \"restock\": false}");
	await_on_hand(1, WEB, 10000, 10000);
	deliveries_settle(10000);
	sleep_ms(500);
	cr_assert_eq(on_hand(1, WEB), 10000);
	cr_assert_eq(on_hand(2, WEB), 9997, "not restocked: the tees stay sold");
	json_t *root = deliveries();
	cr_assert_eq(delivery_count(root, "delivered"), 12,
	             "orders/create, orders/cancelled and refunds/create of two orders, twice");
	json_decref(root);
	gateway_stop(SIGTERM);
	cr_assert_gt(gateway_figure("already applied"), 0);
}

/* The same with every webhook of the cancellations dropped: the poll reads the cancelled
 * orders with their refunds and gives the units back once, pass after pass; an order
 * cancelled without a refund (older API versions) gives its lines back. */
Test(gateway_poll_e2e, a_cancellation_and_its_refund_give_the_units_back_once_by_the_poll)
{
	gateway_start(1, 5);
	subscribe(SECRET);
	order("MUG", 4, NULL); /* order 1: cancelled, restocked */
	order("TEE", 3, NULL); /* order 2: cancelled, not restocked */
	order("MUG", 2, NULL); /* order 3: cancelled without a refund */
	await_on_hand(1, WEB, 9994, 15000);
	await_on_hand(2, WEB, 9997, 15000);
	deliveries_settle(15000);
	standin_control(&shopify, http, "config", "{\"webhook_drop\": true}");
	standin_control(&shopify, http, "cancel", "{\"id\": 5000000001}");
	standin_control(&shopify, http, "cancel", "{\"id\": 5000000002, \"restock\": false}");
	standin_control(&shopify, http, "cancel", "{\"id\": 5000000003, \"refund\": false}");
	await_on_hand(1, WEB, 10000, 15000);
	sleep_ms(2500); /* more passes read the cancelled orders again */
	cr_assert_eq(on_hand(1, WEB), 10000);
	cr_assert_eq(on_hand(2, WEB), 9997);
	json_t *root = deliveries();
	cr_assert_eq(delivery_count(root, "delivered"), 3, "the orders' webhooks only");
	cr_assert_eq(delivery_count(root, "dropped"), 5, "3 orders/cancelled, 2 refunds/create");
	json_decref(root);
	gateway_stop(SIGTERM);
	cr_assert_gt(gateway_figure("already applied"), 0);
}
