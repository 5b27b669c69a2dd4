/*
 * test_gateway_edit_e2e.c — Shopify order edits end to end: the real
 * skuld, the real skuld-gateway and the Shopify stand-in
 * (tests/standins/shopify.py) delivering orders/create, orders/edited and
 * orders/cancelled from its own thread, with duplicates, late (re-ordered)
 * and dropped deliveries, and serving the order read-back and the orders
 * query of the safety-net poll. An edit that removes units gives them back,
 * one that adds units sells more, a new line is a new SALE; each edit
 * applies once whether it comes by webhook (read back), by the poll or
 * both, in any order; a cancelled edited order gives back exactly what it
 * still held. Every wait is bounded.
 */
#include <fcntl.h>
#include <jansson.h>

#include "gateway_harness.h"
#include "server_harness.h"
#include "standin_harness.h"

#define SECRET "whsec-edit-test"
#define TOKEN  "shpat_standin"
#define WEB    1 /* location WEB-DC: online orders (the stand-in's location 1) */
#define STOCK  10000

#define FIRST_ORDER 5000000001ull  /* the stand-in's first order id */
#define FIRST_LINE  13000000001ull /* and line id, one sequence for all orders */

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

/* Writes the configuration and starts skuld-gateway; poll_s 0: no poll
 * (the Admin API still serves the read-back of edits). */
static void gateway_start(unsigned poll_s)
{
	FILE *file = fopen(gateway.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "listen = 127.0.0.1:0\nserver = 127.0.0.1:%u\nchannel = shopify\n"
	        "secret = " SECRET "\nlocation = WEB-DC\nspool = %s\nretry_s = 1\n"
	        "poll_s = %u\npoll_overlap_s = 5\n"
	        "api_url = %s\napi_token = " TOKEN "\napi_version = 2025-01\n",
	        server.port, server.dir, poll_s, shopify.base);
	fclose(file);
	gateway_process_start(&gateway);
}

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

TestSuite(gateway_edit_e2e, .init = setup, .fini = teardown, .timeout = 150);

static int64_t on_hand(uint32_t item)
{
	return client_level(&admin, item, WEB).on_hand;
}

static void subscribe(void)
{
	char body[256];
	snprintf(body, sizeof(body),
	         "{\"url\": \"http://127.0.0.1:%u/webhooks/shopify\", \"secret\": \"" SECRET
	         "\", \"topics\": [\"orders/create\", \"orders/edited\", \"orders/cancelled\"]}",
	         gateway.port);
	standin_control(&shopify, http, "webhooks", body);
}

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

static void await_on_hand(uint32_t item, int64_t expected, unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	while (on_hand(item) != expected && harness_now_ms() < deadline)
		sleep_ms(100);
	cr_assert_eq(on_hand(item), expected, "item %u: on hand %lld, expected %lld", item,
	             (long long)on_hand(item), (long long)expected);
}

static void edit(unsigned long long order, const char *changes)
{
	char body[512];
	snprintf(body, sizeof(body), "{\"id\": %llu, %s}", order, changes);
	standin_control(&shopify, http, "edit", body);
}

Test(gateway_edit_e2e, an_edit_gives_back_removed_units_and_sells_added_ones_once)
{
	standin_control(&shopify, http, "config",
	                "{\"webhook_duplicate_rate\": 0.5, \"webhook_late_rate\": 0.5,"
	                " \"webhook_late_seconds\": 1.0, \"webhook_seed\": 11}");
	gateway_start(0);
	subscribe();
	/* Order 1: MUG x4 (line 1), TEE x1 (line 2). */
	standin_control(&shopify, http, "order",
	                "{\"line_items\": [{\"sku\": \"MUG\", \"quantity\": 4},"
	                " {\"sku\": \"TEE\", \"quantity\": 1}]}");
	/* Edit 1: MUG -3, TEE +2, a new MUG line x2 (line 3). */
	char changes[256];
	snprintf(changes, sizeof(changes),
	         "\"lines\": [{\"line_item_id\": %llu, \"delta\": -3},"
	         " {\"line_item_id\": %llu, \"delta\": 2}],"
	         " \"add\": [{\"sku\": \"MUG\", \"quantity\": 2}]",
	         FIRST_LINE, FIRST_LINE + 1);
	edit(FIRST_ORDER, changes);
	/* Edit 2: MUG line 1 back up by 1; edit 3: down by 1 again (the same
	 * resulting quantity as after edit 1: a distinct edit, applied). */
	snprintf(changes, sizeof(changes), "\"lines\": [{\"line_item_id\": %llu, \"delta\": 1}]",
	         FIRST_LINE);
	edit(FIRST_ORDER, changes);
	snprintf(changes, sizeof(changes), "\"lines\": [{\"line_item_id\": %llu, \"delta\": -1}]",
	         FIRST_LINE);
	edit(FIRST_ORDER, changes);
	/* MUG: 4 - 3 + 2 + 1 - 1 = 3 sold; TEE: 1 + 2 = 3 sold. */
	deliveries_settle(20000);
	await_on_hand(1, STOCK - 3, 10000);
	await_on_hand(2, STOCK - 3, 10000);
	json_t *root = deliveries();
	cr_assert_gt(delivery_count(root, "delivered"), 4, "duplicates were delivered");
	json_decref(root);
	sleep_ms(500);
	cr_assert_eq(on_hand(1), STOCK - 3);
	cr_assert_eq(on_hand(2), STOCK - 3);
	/* The edited order cancelled: every unit it still held comes back. */
	standin_control(&shopify, http, "cancel", "{\"id\": 5000000001}");
	deliveries_settle(20000);
	await_on_hand(1, STOCK, 10000);
	await_on_hand(2, STOCK, 10000);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_gt(gateway_process_figure(&gateway, "already applied"), 0);
}

/* A small model of the orders: units each line still holds. */
struct model_line {
	unsigned long long id;
	uint32_t item;
	int64_t current;
};

Test(gateway_edit_e2e, webhooks_poll_and_retries_converge_on_what_the_orders_say)
{
	standin_control(&shopify, http, "config",
	                "{\"webhook_duplicate_rate\": 0.3, \"webhook_late_rate\": 0.4,"
	                " \"webhook_late_seconds\": 1.5, \"webhook_drop_rate\": 0.2,"
	                " \"webhook_seed\": 21, \"webhook_retry_initial_seconds\": 0.5,"
	                " \"webhook_retry_max_seconds\": 2.0, \"bucket_capacity\": 10000}");
	gateway_start(2);
	subscribe();
	enum {
		ORDERS = 30,
		LINES_MAX = 4
	};
	static struct model_line lines[ORDERS][LINES_MAX];
	int line_count[ORDERS] = {0};
	bool cancelled[ORDERS] = {false};
	unsigned long long next_line = FIRST_LINE;
	uint64_t rng = 0xed17;
	for (int n = 0; n < ORDERS; n++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		int mug = 1 + (int)((rng >> 33) % 4), tee = 1 + (int)((rng >> 40) % 3);
		char body[160];
		snprintf(body, sizeof(body),
		         "{\"line_items\": [{\"sku\": \"MUG\", \"quantity\": %d},"
		         " {\"sku\": \"TEE\", \"quantity\": %d}]}",
		         mug, tee);
		standin_control(&shopify, http, "order", body);
		lines[n][0] = (struct model_line){next_line++, 1, mug};
		lines[n][1] = (struct model_line){next_line++, 2, tee};
		line_count[n] = 2;
	}
	/* Three rounds of edits over the orders, then some cancellations. */
	for (int round = 0; round < 3; round++) {
		for (int n = 0; n < ORDERS; n++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			int choice = (int)((rng >> 33) % 4);
			struct model_line *line = &lines[n][(rng >> 40) % (uint64_t)line_count[n]];
			char changes[160];
			if (choice == 0 && line->current > 0) {
				snprintf(changes, sizeof(changes),
				         "\"lines\": [{\"line_item_id\": %llu, \"delta\": -1}]",
				         line->id);
				line->current -= 1;
			} else if (choice == 1) {
				snprintf(changes, sizeof(changes),
				         "\"lines\": [{\"line_item_id\": %llu, \"delta\": 2}]",
				         line->id);
				line->current += 2;
			} else if (choice == 2 && line_count[n] < LINES_MAX) {
				uint32_t item = 1 + (uint32_t)((rng >> 50) % 2);
				snprintf(changes, sizeof(changes),
				         "\"add\": [{\"sku\": \"%s\", \"quantity\": 1}]",
				         item == 1 ? "MUG" : "TEE");
				lines[n][line_count[n]++] =
				        (struct model_line){next_line++, item, 1};
			} else {
				continue;
			}
			edit(FIRST_ORDER + (unsigned long long)n, changes);
		}
	}
	for (int n = 0; n < ORDERS; n += 7) {
		char body[64];
		snprintf(body, sizeof(body), "{\"id\": %llu}", FIRST_ORDER + (unsigned long long)n);
		standin_control(&shopify, http, "cancel", body);
		cancelled[n] = true;
	}
	int64_t sold[3] = {0, 0, 0};
	for (int n = 0; n < ORDERS; n++)
		for (int l = 0; l < line_count[n] && !cancelled[n]; l++)
			sold[lines[n][l].item] += lines[n][l].current;
	deliveries_settle(40000);
	json_t *root = deliveries();
	cr_assert_gt(delivery_count(root, "dropped"), 0, "some webhooks are missed");
	json_decref(root);
	await_on_hand(1, STOCK - sold[1], 20000);
	await_on_hand(2, STOCK - sold[2], 20000);
	/* More poll passes over the same orders: nothing moves again. */
	sleep_ms(4500);
	cr_assert_eq(on_hand(1), STOCK - sold[1]);
	cr_assert_eq(on_hand(2), STOCK - sold[2]);
	/* A restart replays nothing twice: the poll reads them again. */
	gateway_process_stop(&gateway, SIGKILL);
	gateway_start(2);
	sleep_ms(4500);
	cr_assert_eq(on_hand(1), STOCK - sold[1]);
	cr_assert_eq(on_hand(2), STOCK - sold[2]);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_gt(gateway_process_figure(&gateway, "already applied"), 0);
}
