/*
 * test_gateway_exchange_e2e.c — a Shopify exchange end to end: the real
 * skuld, the real skuld-gateway and the Shopify stand-in
 * (tests/standins/shopify.py) delivering refunds/create for a return that
 * sends a replacement out (return.exchange_line_items), every webhook
 * twice. The item coming back is expected (incoming) and the replacement
 * sold, once, in one linked chain; an exchange whose replacement the ledger
 * does not know yet waits whole (neither half applied) and is applied whole
 * once the item exists. Every wait is bounded.
 */
#include <jansson.h>

#include "gateway_harness.h"
#include "server_harness.h"
#include "standin_harness.h"

#define SECRET "whsec-exchange-test"
#define TOKEN  "shpat_standin"
#define WEB    1 /* location WEB-DC: online orders (the stand-in's location 1) */
#define STOCK  10000

static const char SEED[] =
        "{\"locations\": [{\"id\": 1, \"name\": \"Web\"}],"
        " \"items\": [{\"id\": 101, \"sku\": \"MUG\"}, {\"id\": 102, \"sku\": \"TEE\"}],"
        " \"levels\": ["
        "{\"inventoryItemId\": 101, \"locationId\": 1, \"available\": 100000},"
        "{\"inventoryItemId\": 102, \"locationId\": 1, \"available\": 100000}]}";

static struct server server;
static struct client admin;
static struct http_client *http;
static struct standin shopify;
static struct gateway_process gateway;
static uint64_t key_serial = 9000;

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	http = http_client_create();
	server_init(&server, NULL);
	server_start(&server);
	cr_assert_eq(client_open(&admin, server.port, client_id(93)), 0);
	admin_define_code(&admin, event_item(1, ++key_serial), "MUG");
	admin_define_code(&admin, event_item(2, ++key_serial), "TEE");
	admin_define_code(&admin, event_location(WEB, ++key_serial), "WEB-DC");
	for (uint32_t item = 1; item <= 2; item++)
		admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, item, WEB, STOCK, ++key_serial));
	snprintf(gateway.config, sizeof(gateway.config), "%s/gateway.conf", server.dir);
	snprintf(gateway.log, sizeof(gateway.log), "%s/gateway.log", server.dir);
	standin_start(&shopify, "shopify.py", SEED);
	standin_control(&shopify, http, "config", "{\"restore_rate\": 1000}");
	FILE *file = fopen(gateway.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "listen = 127.0.0.1:0\nserver = 127.0.0.1:%u\nchannel = shopify\n"
	        "secret = " SECRET "\nlocation = WEB-DC\nspool = %s\nretry_s = 1\n"
	        "api_url = %s\napi_token = " TOKEN "\napi_version = 2025-01\n",
	        server.port, server.dir, shopify.base);
	fclose(file);
	gateway_process_start(&gateway);
	char body[256];
	snprintf(body, sizeof(body),
	         "{\"url\": \"http://127.0.0.1:%u/webhooks/shopify\", \"secret\": \"" SECRET
	         "\", \"topics\": [\"orders/create\", \"refunds/create\"]}",
	         gateway.port);
	standin_control(&shopify, http, "webhooks", body);
	/* Every webhook delivered twice. */
	standin_control(&shopify, http, "config",
	                "{\"webhook_duplicate_rate\": 1.0, \"webhook_seed\": 3}");
}

static void teardown(void)
{
	gateway_process_stop(&gateway, SIGKILL);
	standin_stop(&shopify);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	http_client_destroy(http);
}

TestSuite(gateway_exchange_e2e, .init = setup, .fini = teardown, .timeout = 120);

static struct skuld_level_record level(uint32_t item)
{
	return client_level(&admin, item, WEB);
}

#define FIRST_ORDER 5000000001ull  /* the stand-in's first order id */
#define FIRST_LINE  13000000001ull /* and line id */

/* Waits (at most ms) for item's on-hand and incoming units at WEB. */
static void await_level(uint32_t item, int64_t on_hand, int64_t incoming, unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	struct skuld_level_record now = level(item);
	while ((now.on_hand != on_hand || now.incoming != incoming) &&
	       harness_now_ms() < deadline) {
		sleep_ms(100);
		now = level(item);
	}
	cr_assert(now.on_hand == on_hand && now.incoming == incoming,
	          "item %u: on hand %lld incoming %lld; expected %lld, %lld", item,
	          (long long)now.on_hand, (long long)now.incoming, (long long)on_hand,
	          (long long)incoming);
}

/* Waits (at most ms) until the stand-in has nothing left to deliver. */
static void deliveries_settle(unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	for (;;) {
		char url[128];
		snprintf(url, sizeof(url), "%s/_control/webhooks", shopify.base);
		struct http_request request = {.method = "GET", .url = url, .timeout_ms = 10000};
		struct http_response response;
		cr_assert_eq(http_call(http, &request, &response), 0, "%s", response.error);
		json_t *root = json_loadb(response.body, response.body_size, 0, NULL);
		json_int_t pending = json_integer_value(json_object_get(root, "pending"));
		json_decref(root);
		if (pending == 0)
			return;
		cr_assert_lt(harness_now_ms(), deadline, "deliveries still pending");
		sleep_ms(100);
	}
}

static void refund(unsigned long long order, unsigned long long line, const char *exchange)
{
	char body[384];
	snprintf(body, sizeof(body),
	         "{\"id\": %llu, \"lines\": [{\"line_item_id\": %llu, \"quantity\": 1,"
	         " \"restock_type\": \"return\"}], \"exchange\": [%s]}",
	         order, line, exchange);
	standin_control(&shopify, http, "refund", body);
}

Test(gateway_exchange_e2e, an_exchange_returns_one_item_and_sells_its_replacement_once)
{
	standin_control(&shopify, http, "order",
	                "{\"line_items\": [{\"sku\": \"MUG\", \"quantity\": 2}]}");
	await_level(1, STOCK - 2, 0, 15000);
	/* One mug comes back, a tee goes out in its place. */
	refund(FIRST_ORDER, FIRST_LINE, "{\"sku\": \"TEE\", \"quantity\": 1}");
	await_level(2, STOCK - 1, 0, 15000);
	await_level(1, STOCK - 2, 1, 15000);
	deliveries_settle(15000); /* the second copies: REPLAYED */
	cr_assert_eq(level(1).incoming, 1);
	cr_assert_eq(level(1).on_hand, STOCK - 2, "in stock once scanned in");
	cr_assert_eq(level(2).on_hand, STOCK - 1);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_eq(gateway_process_figure(&gateway, "deliveries"), 4, "two webhooks, each twice");
	cr_assert_eq(gateway_process_figure(&gateway, "already applied"), 3,
	             "the order's SALE, the RETURN and the replacement's SALE");
}

Test(gateway_exchange_e2e, an_exchange_waits_whole_until_its_replacement_exists)
{
	standin_control(&shopify, http, "order",
	                "{\"line_items\": [{\"sku\": \"MUG\", \"quantity\": 1}]}");
	await_level(1, STOCK - 1, 0, 15000);
	/* HAT is not in the ledger yet: the return waits with its replacement. */
	refund(FIRST_ORDER, FIRST_LINE, "{\"sku\": \"HAT\", \"quantity\": 1}");
	uint64_t deadline = harness_now_ms() + 15000;
	for (;;) {
		char url[128];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/pending", gateway.port);
		struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
		struct http_response response;
		cr_assert_eq(http_call(http, &request, &response), 0, "%s", response.error);
		json_t *pending = json_loadb(response.body, response.body_size, 0, NULL);
		size_t waiting = json_array_size(pending);
		json_decref(pending);
		if (waiting == 2)
			break;
		cr_assert_lt(harness_now_ms(), deadline, "the exchange is not spooled whole");
		sleep_ms(100);
	}
	cr_assert_eq(level(1).incoming, 0, "neither half applied");
	/* The item defined and stocked: both halves, together, once. */
	admin_define_code(&admin, event_item(3, ++key_serial), "HAT");
	admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, 3, WEB, 50, ++key_serial));
	await_level(3, 49, 0, 15000);
	await_level(1, STOCK - 1, 1, 5000);
	sleep_ms(2500); /* more retry passes: still once */
	cr_assert_eq(level(3).on_hand, 49);
	cr_assert_eq(level(1).incoming, 1);
	gateway_process_stop(&gateway, SIGTERM);
}
