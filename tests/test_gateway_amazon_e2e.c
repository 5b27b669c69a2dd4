/*
 * test_gateway_amazon_e2e.c — the real skuld, the real skuld-gateway (kind
 * amazon) and the Amazon stand-in (tests/standins/amazon.py) serving
 * getOrders and getOrderItems with their rate limits: merchant-fulfilled
 * orders lower the ledger's available quantity exactly once, however many
 * passes and pages read them again and across a gateway killed and
 * restarted; orders fulfilled by Amazon move nothing; a 429 is waited out,
 * nothing lost; a cancellation gives the units back once. Every wait is
 * bounded.
 */
#include <jansson.h>

#include "gateway_harness.h"
#include "server_harness.h"
#include "standin_harness.h"

#define WEB 1 /* location WEB-DC: the merchant's own warehouse */

static const char SEED[] = "{\"listings\": [{\"sku\": \"MUG\", \"quantity\": 500},"
                           " {\"sku\": \"TEE\", \"quantity\": 500}]}";

static struct server server;
static struct client admin;
static struct http_client *http;
static struct standin amazon;
static struct gateway_process gateway;
static uint64_t key_serial = 11000;

static void gateway_start(void)
{
	FILE *file = fopen(gateway.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "listen = 127.0.0.1:0\nserver = 127.0.0.1:%u\nchannel = amazon\nkind = amazon\n"
	        "location = WEB-DC\nspool = %s\nretry_s = 1\npoll_s = 1\npoll_overlap_s = 5\n"
	        "api_url = %s\nlwa_url = %s\n"
	        "lwa_client_id = amzn1.application-oa2-client.standin\n"
	        "lwa_client_secret = standin-secret\nlwa_refresh_token = Atzr|standin-refresh\n",
	        server.port, server.dir, amazon.base, amazon.base);
	fclose(file);
	gateway_process_start(&gateway);
}

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	http = http_client_create();
	server_init(&server, NULL);
	server_start(&server);
	cr_assert_eq(client_open(&admin, server.port, client_id(94)), 0);
	admin_define_code(&admin, event_item(1, ++key_serial), "MUG");
	admin_define_code(&admin, event_item(2, ++key_serial), "TEE");
	admin_define_code(&admin, event_location(WEB, ++key_serial), "WEB-DC");
	for (uint32_t item = 1; item <= 2; item++)
		admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, item, WEB, 10000, ++key_serial));
	snprintf(gateway.config, sizeof(gateway.config), "%s/gateway.conf", server.dir);
	snprintf(gateway.log, sizeof(gateway.log), "%s/gateway.log", server.dir);
	standin_start(&amazon, "amazon.py", SEED);
}

static void teardown(void)
{
	gateway_process_stop(&gateway, SIGKILL);
	standin_stop(&amazon);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	http_client_destroy(http);
}

TestSuite(gateway_amazon_e2e, .init = setup, .fini = teardown, .timeout = 120);

static int64_t on_hand(uint32_t item)
{
	return client_level(&admin, item, WEB).on_hand;
}

static void await_on_hand(uint32_t item, int64_t expected, unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	while (on_hand(item) != expected && harness_now_ms() < deadline)
		sleep_ms(100);
	cr_assert_eq(on_hand(item), expected, "item %u: %lld, expected %lld", item,
	             (long long)on_hand(item), (long long)expected);
}

/* Makes an order at the stand-in; its AmazonOrderId into id (room for 64). */
static void order(const char *spec, char *id)
{
	char url[128];
	snprintf(url, sizeof(url), "%s/_control/order", amazon.base);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/json"},
	        .body = spec,
	        .body_size = strlen(spec),
	        .timeout_ms = 10000,
	};
	struct http_response response;
	cr_assert_eq(http_call(http, &request, &response), 0, "%s", response.error);
	cr_assert_eq(response.status, 200, "%s", response.body);
	json_t *root = json_loadb(response.body, response.body_size, 0, NULL);
	const char *text = json_string_value(json_object_get(root, "AmazonOrderId"));
	cr_assert_not_null(text);
	snprintf(id, 64, "%s", text);
	json_decref(root);
}

/* The statuses the stand-in answered operation with, counted. */
static long answered(const char *operation, long status)
{
	char url[128];
	snprintf(url, sizeof(url), "%s/_control/log", amazon.base);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 10000};
	struct http_response response;
	cr_assert_eq(http_call(http, &request, &response), 0, "%s", response.error);
	cr_assert_eq(response.status, 200);
	long count = 0;
	char *line = response.body;
	while (line != NULL && *line != '\0') {
		char *end = strchr(line, '\n');
		if (end != NULL)
			*end = '\0';
		json_t *entry = json_loads(line, 0, NULL);
		const char *name = json_string_value(json_object_get(entry, "operation"));
		if (name != NULL && strcmp(name, operation) == 0 &&
		    json_integer_value(json_object_get(entry, "status")) == status)
			count++;
		json_decref(entry);
		line = end != NULL ? end + 1 : NULL;
	}
	return count;
}

Test(gateway_amazon_e2e, merchant_orders_lower_the_ledger_once_across_passes_pages_and_a_restart)
{
	/* Small pages: NextToken paging of orders and of items. */
	standin_control(&amazon, http, "config",
	                "{\"orders_page_size\": 2, \"items_page_size\": 1}");
	gateway_start();
	char id[64], pending[64];
	order("{\"items\": [{\"sku\": \"MUG\", \"quantity\": 2}]}", id);
	order("{\"items\": [{\"sku\": \"TEE\", \"quantity\": 1}, {\"sku\": \"MUG\", \"quantity\": "
	      "1}]}",
	      id);
	order("{\"items\": [{\"sku\": \"TEE\", \"quantity\": 3}], \"status\": \"Pending\"}",
	      pending);
	/* Fulfilled by Amazon: not this ledger's stock. */
	order("{\"items\": [{\"sku\": \"MUG\", \"quantity\": 5}], \"fulfillmentChannel\": "
	      "\"AFN\"}",
	      id);
	await_on_hand(1, 10000 - 3, 15000);
	await_on_hand(2, 10000 - 4, 15000);
	/* Shipped later: the same lines, read again, applied once. */
	char spec[128];
	snprintf(spec, sizeof(spec), "{\"id\": \"%s\", \"status\": \"Shipped\"}", pending);
	standin_control(&amazon, http, "order_status", spec);
	order("{\"items\": [{\"sku\": \"MUG\", \"quantity\": 1}]}", id);
	await_on_hand(1, 10000 - 4, 15000);
	/* Killed mid-stream: the mark on disk; the orders made meanwhile come in,
	 * the ones read before are not applied again. */
	gateway_process_stop(&gateway, SIGKILL);
	order("{\"items\": [{\"sku\": \"TEE\", \"quantity\": 2}]}", id);
	gateway_start();
	await_on_hand(2, 10000 - 6, 15000);
	sleep_ms(2500); /* two more passes over the overlap */
	cr_assert_eq(on_hand(1), 10000 - 4);
	cr_assert_eq(on_hand(2), 10000 - 6);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_geq(gateway_process_figure(&gateway, "passes"), 2);
	cr_assert_eq(answered("getOrders", 200) > 0, 1);
	cr_assert_gt(gateway_process_figure(&gateway, "already applied"), 0,
	             "orders read again were answered REPLAYED");
}

Test(gateway_amazon_e2e, a_quota_exceeded_is_waited_out_and_nothing_is_lost)
{
	/* getOrderItems far below its published plan: the gateway's first burst
	 * is answered 429 until it learns the rate and waits. */
	standin_control(&amazon, http, "config",
	                "{\"limits\": {\"getOrderItems\": [4, 2]}, \"orders_page_size\": 100}");
	char id[64];
	for (int n = 0; n < 10; n++)
		order("{\"items\": [{\"sku\": \"MUG\", \"quantity\": 1}]}", id);
	gateway_start();
	await_on_hand(1, 10000 - 10, 20000);
	sleep_ms(1500);
	cr_assert_eq(on_hand(1), 10000 - 10);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_gt(answered("getOrderItems", 429), 0, "the stand-in's limit was reached");
	cr_assert_gt(gateway_process_figure(&gateway, "throttled"), 0);
}

Test(gateway_amazon_e2e, a_cancellation_gives_the_units_back_once)
{
	gateway_start();
	char id[64], spec[128];
	order("{\"items\": [{\"sku\": \"MUG\", \"quantity\": 4}]}", id);
	await_on_hand(1, 9996, 15000);
	snprintf(spec, sizeof(spec), "{\"id\": \"%s\", \"status\": \"Canceled\"}", id);
	standin_control(&amazon, http, "order_status", spec);
	await_on_hand(1, 10000, 15000);
	/* Cancelled before the gateway ever read it: the units go and come back
	 * at once; nothing left over. */
	order("{\"items\": [{\"sku\": \"TEE\", \"quantity\": 3}]}", id);
	snprintf(spec, sizeof(spec), "{\"id\": \"%s\", \"status\": \"Canceled\"}", id);
	standin_control(&amazon, http, "order_status", spec);
	order("{\"items\": [{\"sku\": \"TEE\", \"quantity\": 1}]}", id);
	await_on_hand(2, 9999, 15000);
	sleep_ms(2500); /* passes read both again */
	cr_assert_eq(on_hand(1), 10000);
	cr_assert_eq(on_hand(2), 9999);
	gateway_process_stop(&gateway, SIGTERM);
}
