/*
 * test_gateway_hold_e2e.c — a headless checkout's hold committed by the
 * order that comes through the channel: the real skuld, the real
 * skuld-gateway (its webhooks and its poll) and the Shopify stand-in
 * (tests/standins/shopify.py). A web shop reserves with libskuld; the order
 * arrives carrying the hold id in the line property `_skuld_hold`, delivered
 * twice and also read by the poll; the ledger goes from reserved to sold
 * once. A hold that expired, one that never existed and one the shop
 * committed itself: the first two are sold by a SALE instead (counted), the
 * last is not sold twice. Every wait is bounded.
 */
#include <jansson.h>

#include "gateway_harness.h"
#include "server_harness.h"
#include "skuld/skuld.h"
#include "standin_harness.h"

#define SECRET "whsec-hold-test"
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
static skuld_client *shop; /* the headless checkout, through libskuld */
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
	static char address[1024]; /* the library reads up to its address limit */
	snprintf(address, sizeof(address), "127.0.0.1:%u", server.port);
	struct skuld_options options;
	skuld_options_init(&options);
	options.address = address;
	options.client_name = "web-shop";
	options.client_id = client_id(94);
	cr_assert_eq(skuld_client_create(&shop, &options), 0);
	cr_assert_eq(skuld_client_connect(shop, 5000), 0);
	snprintf(gateway.config, sizeof(gateway.config), "%s/gateway.conf", server.dir);
	snprintf(gateway.log, sizeof(gateway.log), "%s/gateway.log", server.dir);
	standin_start(&shopify, "shopify.py", SEED);
	standin_control(&shopify, http, "config", "{\"restore_rate\": 1000}");
	FILE *file = fopen(gateway.config, "w");
	cr_assert_not_null(file);
	/* The poll reads the same orders (their lines' customAttributes). */
	fprintf(file,
	        "listen = 127.0.0.1:0\nserver = 127.0.0.1:%u\nchannel = shopify\n"
	        "secret = " SECRET "\nlocation = WEB-DC\nspool = %s\nretry_s = 1\n"
	        "poll_s = 1\npoll_overlap_s = 5\n"
	        "api_url = %s\napi_token = " TOKEN "\napi_version = 2025-01\n",
	        server.port, server.dir, shopify.base);
	fclose(file);
	gateway_process_start(&gateway);
	char body[256];
	snprintf(body, sizeof(body),
	         "{\"url\": \"http://127.0.0.1:%u/webhooks/shopify\", \"secret\": \"" SECRET
	         "\", \"topics\": [\"orders/create\", \"orders/cancelled\"]}",
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
	skuld_client_close(shop);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	http_client_destroy(http);
}

TestSuite(gateway_hold_e2e, .init = setup, .fini = teardown, .timeout = 120);

static struct skuld_level_record level(uint32_t item)
{
	return client_level(&admin, item, WEB);
}

/* The checkout's hold: quantity of item at WEB for ttl_s. */
static void reserve(uint64_t hold, uint32_t item, int64_t quantity, uint32_t ttl_s)
{
	struct skuld_event event;
	struct skuld_result result;
	skuld_event_reserve(&event, skuld_key("web-shop", "cart", (uint32_t)hold, "reserve"), hold,
	                    item, WEB, quantity, ttl_s);
	cr_assert_eq(skuld_submit(shop, &event, 1, &result, NULL, 5000), 0);
	cr_assert_eq(result.status, SKULD_OK, "%s", skuld_status_name(result.status));
}

/* An order at the stand-in: sku x quantity carrying hold (0: none). */
static void order(const char *sku, int quantity, uint64_t hold)
{
	char body[256];
	if (hold != 0)
		snprintf(body, sizeof(body),
		         "{\"line_items\": [{\"sku\": \"%s\", \"quantity\": %d, \"properties\":"
		         " [{\"name\": \"_skuld_hold\", \"value\": \"%llu\"}]}]}",
		         sku, quantity, (unsigned long long)hold);
	else
		snprintf(body, sizeof(body),
		         "{\"line_items\": [{\"sku\": \"%s\", \"quantity\": %d}]}", sku, quantity);
	standin_control(&shopify, http, "order", body);
}

/* Waits (at most ms) for item's available and committed units at WEB,
 * with nothing reserved. */
static void await_level(uint32_t item, int64_t available, int64_t committed, unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	struct skuld_level_record now = level(item);
	while ((now.available != available || now.committed != committed || now.reserved != 0) &&
	       harness_now_ms() < deadline) {
		sleep_ms(100);
		now = level(item);
	}
	cr_assert(now.available == available && now.committed == committed && now.reserved == 0,
	          "item %u: available %lld committed %lld reserved %lld; expected %lld, %lld, 0",
	          item, (long long)now.available, (long long)now.committed, (long long)now.reserved,
	          (long long)available, (long long)committed);
}

Test(gateway_hold_e2e, an_order_commits_its_checkout_hold_once)
{
	reserve(7001, 1, 2, 600);
	cr_assert_eq(level(1).reserved, 2);
	cr_assert_eq(level(1).available, STOCK - 2);
	/* The order: MUG x2 on the hold, and TEE x1 without one. */
	standin_control(&shopify, http, "order",
	                "{\"line_items\": [{\"sku\": \"MUG\", \"quantity\": 2, \"properties\":"
	                " [{\"name\": \"gift\", \"value\": \"yes\"}, {\"name\": \"_skuld_hold\","
	                " \"value\": \"7001\"}]}, {\"sku\": \"TEE\", \"quantity\": 1}]}");
	/* Reserved became committed (sold, to be fulfilled); the other line a SALE. */
	await_level(1, STOCK - 2, 2, 15000);
	await_level(2, STOCK - 1, 0, 15000);
	/* Both webhooks and a few poll passes later: sold once. */
	sleep_ms(2500);
	cr_assert_eq(level(1).available, STOCK - 2, "reserved became sold, not sold again");
	cr_assert_eq(level(1).committed, 2);
	cr_assert_eq(level(1).on_hand, STOCK, "a committed hold leaves the shelf at FULFILL");
	cr_assert_eq(level(2).on_hand, STOCK - 1);
	struct skuld_hold_record hold;
	cr_assert_eq(skuld_query_hold(shop, 7001, &hold, 5000), 0);
	cr_assert_eq(hold.state, SKULD_HOLD_STATE_COMMITTED);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_eq(gateway_process_figure(&gateway, "holds committed"), 1);
	cr_assert_eq(gateway_process_figure(&gateway, "holds gone (sold)"), 0);
}

Test(gateway_hold_e2e, a_hold_gone_is_sold_by_a_sale_and_one_committed_is_not_sold_again)
{
	/* Expired: reserved for a second, the order comes later. */
	reserve(7002, 1, 3, 1);
	uint64_t deadline = harness_now_ms() + 15000;
	while (level(1).reserved != 0 && harness_now_ms() < deadline)
		sleep_ms(100);
	cr_assert_eq(level(1).reserved, 0, "the hold expired");
	order("MUG", 3, 7002);
	await_level(1, STOCK - 3, 0, 15000);
	/* Never reserved. */
	order("MUG", 1, 7999);
	await_level(1, STOCK - 4, 0, 15000);
	cr_assert_eq(level(1).on_hand, STOCK - 4, "sold by SALEs");
	/* Committed by the shop itself (its payment webhook) before the order came. */
	reserve(7003, 2, 2, 600);
	struct skuld_event event;
	struct skuld_result result;
	skuld_event_commit(&event, skuld_key("web-shop", "cart", 7003, "commit"), 7003, 0);
	cr_assert_eq(skuld_submit(shop, &event, 1, &result, NULL, 5000), 0);
	cr_assert_eq(result.status, SKULD_OK);
	await_level(2, STOCK - 2, 2, 1000);
	order("TEE", 2, 7003);
	/* Both orders' webhooks twice, and the poll: nothing more. */
	sleep_ms(3500);
	cr_assert_eq(level(1).available, STOCK - 4);
	cr_assert_eq(level(1).on_hand, STOCK - 4);
	await_level(2, STOCK - 2, 2, 1000);
	cr_assert_eq(level(2).on_hand, STOCK, "a hold committed already is not sold again");
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_eq(gateway_process_figure(&gateway, "holds committed"), 0);
	cr_assert_eq(gateway_process_figure(&gateway, "holds gone (sold)"), 2,
	             "each line sold instead of its hold is counted once");
	FILE *file = fopen(gateway.log, "r");
	cr_assert_not_null(file);
	char line[512];
	int reported = 0;
	while (fgets(line, sizeof(line), file) != NULL)
		reported += strstr(line, "hold 7002 is gone") != NULL;
	fclose(file);
	cr_assert_geq(reported, 1, "the fallback is logged");
}
