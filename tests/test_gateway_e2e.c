/*
 * test_gateway_e2e.c — the real skuld and the real skuld-gateway: signed
 * Shopify deliveries lower the ledger once however often they arrive; a bad
 * signature changes nothing; POS orders land at their store; cancellations
 * in any order give units back once, also when the cancellation's refund
 * comes both in orders/cancelled and in refunds/create; refunds are expected returns or
 * restocks; an unknown SKU waits in the spool and is applied once the item
 * exists; 1,000 orders with 30% duplicates, shuffled, with the gateway
 * killed and restarted halfway, give exactly the balances of a clean run.
 */
#include <jansson.h>

#include "gateway_harness.h"
#include "gateway_shopify.h"
#include "server_harness.h"
#include "standin_harness.h"

#define SECRET "whsec-test"
#define WEB    1 /* location WEB-DC: online orders */
#define STORE  2 /* location STORE-1: POS location 655441491 */

static struct server server;
static struct client admin;
static struct http_client *http;
static struct gateway_process gateway;
static uint64_t key_serial = 5000;

static void define_item(uint32_t item, const char *sku)
{
	struct skuld_event event = event_item(item, ++key_serial);
	memset(event.code, 0, sizeof(event.code));
	snprintf(event.code, sizeof(event.code), "%s", sku);
	admin_submit_ok(&admin, event);
}

static void gateway_start(void)
{
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
	cr_assert_eq(client_open(&admin, server.port, client_id(91)), 0);
	define_item(1, "MUG");
	define_item(2, "TEE");
	struct skuld_event web = event_location(WEB, ++key_serial);
	memset(web.code, 0, sizeof(web.code));
	snprintf(web.code, sizeof(web.code), "WEB-DC");
	admin_submit_ok(&admin, web);
	struct skuld_event store = event_location(STORE, ++key_serial);
	memset(store.code, 0, sizeof(store.code));
	snprintf(store.code, sizeof(store.code), "STORE-1");
	admin_submit_ok(&admin, store);
	for (uint32_t item = 1; item <= 2; item++)
		for (uint32_t location = WEB; location <= STORE; location++)
			admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, item, location, 10000,
			                                    ++key_serial));
	snprintf(gateway.config, sizeof(gateway.config), "%s/gateway.conf", server.dir);
	snprintf(gateway.log, sizeof(gateway.log), "%s/gateway.log", server.dir);
	FILE *file = fopen(gateway.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "listen = 127.0.0.1:0\nserver = 127.0.0.1:%u\nchannel = shopify\n"
	        "secret = " SECRET "\nlocation = WEB-DC\nspool = %s\nretry_s = 1\n"
	        "pos = 655441491:STORE-1\n",
	        server.port, server.dir);
	fclose(file);
	gateway_start();
}

static void teardown(void)
{
	gateway_stop(SIGKILL);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	http_client_destroy(http);
}

TestSuite(gateway_e2e, .init = setup, .fini = teardown, .timeout = 180);

/* POSTs a delivery; returns the HTTP status (0: no answer). */
static long deliver(const char *topic, const char *id, const char *body, const char *secret)
{
	char url[128], topic_header[96], id_header[96], signature_header[96], signature[45];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/webhooks/shopify", gateway.port);
	shopify_webhook_sign(secret, body, strlen(body), signature);
	snprintf(topic_header, sizeof(topic_header), "X-Shopify-Topic: %s", topic);
	snprintf(id_header, sizeof(id_header), "X-Shopify-Webhook-Id: %s", id);
	snprintf(signature_header, sizeof(signature_header), "X-Shopify-Hmac-SHA256: %s",
	         signature);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/json", topic_header, id_header,
	                    signature_header},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = 10000,
	};
	struct http_response response;
	if (http_call(http, &request, &response) != 0)
		return 0;
	return response.status;
}

static int64_t on_hand(uint32_t item, uint32_t location)
{
	return client_level(&admin, item, location).on_hand;
}

static char *order(char *out, size_t size, uint64_t id, const char *sku, int quantity,
                   const char *pos)
{
	snprintf(out, size,
	         "{\"id\":%llu,\"source_name\":\"%s\",%s\"created_at\":\"2026-11-27T09:30:00Z\","
	         "\"line_items\":[{\"id\":%llu,\"sku\":\"%s\",\"quantity\":%d}]}",
	         (unsigned long long)id, pos != NULL ? "pos" : "web", pos != NULL ? pos : "",
	         (unsigned long long)(id * 10 + 1), sku, quantity);
	return out;
}

Test(gateway_e2e, an_order_is_applied_once_and_a_bad_signature_changes_nothing)
{
	char body[512];
	order(body, sizeof(body), 1001, "MUG", 2, NULL);
	cr_assert_eq(deliver("orders/create", "d-1", body, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 9998);
	/* The same delivery again, and the same order by another delivery (a
	 * retry Shopify gave a new id, or the poll): applied once. */
	cr_assert_eq(deliver("orders/create", "d-1", body, SECRET), 200);
	cr_assert_eq(deliver("orders/create", "d-1-again", body, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 9998);
	/* Signed with another secret, or altered after signing: 401, nothing. */
	order(body, sizeof(body), 1002, "MUG", 5, NULL);
	cr_assert_eq(deliver("orders/create", "d-2", body, "not-the-secret"), 401);
	cr_assert_eq(on_hand(1, WEB), 9998);
	/* Not what Shopify sends: 400. */
	cr_assert_eq(deliver("orders/create", "d-3", "{\"id\":1}", SECRET), 400);
	/* A topic that moves no stock: 200, nothing. */
	cr_assert_eq(deliver("products/update", "d-4", "{}", SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 9998);
	/* orders/edited without api_url: its payload has no SKUs and the order
	 * cannot be read back; logged, 200, nothing moves. Without its order
	 * id: 400. */
	cr_assert_eq(deliver("orders/edited", "d-5",
	                     "{\"order_edit\":{\"id\":7,\"order_id\":1001,\"line_items\":{"
	                     "\"additions\":[{\"id\":10011,\"delta\":1}],\"removals\":[]}}}",
	                     SECRET),
	             200);
	cr_assert_eq(deliver("orders/edited", "d-6", "{\"order_edit\":{\"id\":8}}", SECRET), 400);
	cr_assert_eq(on_hand(1, WEB), 9998);
}

Test(gateway_e2e, pos_orders_cancellations_and_refunds)
{
	char body[512];
	/* A till sale at the store, recorded with the till's time. */
	order(body, sizeof(body), 2001, "TEE", 3, "\"location_id\":655441491,");
	cr_assert_eq(deliver("orders/create", "p-1", body, SECRET), 200);
	cr_assert_eq(on_hand(2, STORE), 9997);
	cr_assert_eq(on_hand(2, WEB), 10000);
	/* A cancellation that arrives before its order: the units go and come
	 * back at once; the order arriving later changes nothing. */
	order(body, sizeof(body), 2002, "MUG", 4, NULL);
	cr_assert_eq(deliver("orders/cancelled", "c-1", body, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 10000);
	cr_assert_eq(deliver("orders/create", "c-2", body, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 10000);
	/* In the usual order: 4 go, 4 come back. */
	order(body, sizeof(body), 2003, "MUG", 4, NULL);
	cr_assert_eq(deliver("orders/create", "c-3", body, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 9996);
	cr_assert_eq(deliver("orders/cancelled", "c-4", body, SECRET), 200);
	cr_assert_eq(deliver("orders/cancelled", "c-5", body, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 10000);
	/* A refund to be returned: expected (incoming) until scanned in; one
	 * that cancels unfulfilled units: back in stock; no restock: nothing. */
	order(body, sizeof(body), 2004, "MUG", 3, NULL);
	cr_assert_eq(deliver("orders/create", "r-1", body, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 9997);
	const char refund[] =
	        "{\"id\":77001,\"order_id\":2004,\"created_at\":\"2026-11-27T10:00:00Z\","
	        "\"refund_line_items\":["
	        "{\"id\":1,\"line_item_id\":20041,\"quantity\":1,\"restock_type\":\"return\","
	        "\"line_item\":{\"sku\":\"MUG\"}},"
	        "{\"id\":2,\"line_item_id\":20041,\"quantity\":1,\"restock_type\":\"cancel\","
	        "\"line_item\":{\"sku\":\"MUG\"}},"
	        "{\"id\":3,\"line_item_id\":20041,\"quantity\":1,\"restock_type\":\"no_restock\","
	        "\"line_item\":{\"sku\":\"MUG\"}}]}";
	cr_assert_eq(deliver("refunds/create", "r-2", refund, SECRET), 200);
	cr_assert_eq(deliver("refunds/create", "r-3", refund, SECRET), 200);
	struct skuld_level_record level = client_level(&admin, 1, WEB);
	cr_assert_eq(level.on_hand, 9998, "one restocked");
	cr_assert_eq(level.incoming, 1, "one expected back");
}

static long pending_count(void)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/pending", gateway.port);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(http, &request, &response), 0);
	json_t *list = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert(json_is_array(list));
	long count = (long)json_array_size(list);
	json_decref(list);
	return count;
}

Test(gateway_e2e, an_unknown_sku_waits_and_survives_a_restart)
{
	char body[512];
	order(body, sizeof(body), 3001, "CAP", 2, NULL);
	cr_assert_eq(deliver("orders/create", "u-1", body, SECRET), 200);
	cr_assert_eq(pending_count(), 1);
	/* Kept on disk: a restart still has it. */
	gateway_stop(SIGKILL);
	gateway_start();
	cr_assert_eq(pending_count(), 1);
	/* The item is defined: the next retry applies the line, once. */
	define_item(3, "CAP");
	admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, 3, WEB, 50, ++key_serial));
	uint64_t deadline = harness_now_ms() + 10000;
	while (pending_count() != 0 && harness_now_ms() < deadline)
		nanosleep(&(struct timespec){0, 100000000}, NULL);
	cr_assert_eq(pending_count(), 0);
	cr_assert_eq(on_hand(3, WEB), 48);
	cr_assert_eq(deliver("orders/create", "u-1", body, SECRET), 200);
	cr_assert_eq(on_hand(3, WEB), 48);
	gateway_stop(SIGTERM);
}

Test(gateway_e2e, a_thousand_orders_with_duplicates_shuffled_and_a_restart)
{
	enum {
		ORDERS = 1000
	};
	struct delivery {
		uint64_t order;
		uint32_t item;
		int quantity;
		char id[32];
	};
	static struct delivery deliveries[ORDERS * 2];
	uint32_t count = 0;
	uint64_t rng = 0x5eed;
	int64_t sold[3] = {0, 0, 0};
	for (uint64_t n = 0; n < ORDERS; n++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		struct delivery *d = &deliveries[count++];
		d->order = 50000 + n;
		d->item = 1 + (uint32_t)((rng >> 33) % 2);
		d->quantity = 1 + (int)((rng >> 40) % 3);
		snprintf(d->id, sizeof(d->id), "w-%llu", (unsigned long long)n);
		sold[d->item] += d->quantity;
		/* 30%: delivered again, half with the same delivery id. */
		if ((rng >> 20) % 10 < 3) {
			deliveries[count] = *d;
			if ((rng >> 50) % 2)
				snprintf(deliveries[count].id, sizeof(deliveries[count].id),
				         "w-%llu-retry", (unsigned long long)n);
			count++;
		}
	}
	for (uint32_t i = count - 1; i > 0; i--) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t j = (uint32_t)((rng >> 33) % (i + 1));
		struct delivery swap = deliveries[i];
		deliveries[i] = deliveries[j];
		deliveries[j] = swap;
	}
	cr_assert_gt(count, ORDERS + 200);
	for (uint32_t i = 0; i < count; i++) {
		if (i == count / 2) {
			/* Killed mid-stream: what it answered 200 is in the ledger;
			 * what it did not answer is delivered again (as Shopify does). */
			gateway_stop(SIGKILL);
			gateway_start();
		}
		char body[512];
		order(body, sizeof(body), deliveries[i].order,
		      deliveries[i].item == 1 ? "MUG" : "TEE", deliveries[i].quantity, NULL);
		long status = 0;
		for (int attempt = 0; attempt < 50 && status != 200; attempt++) {
			status = deliver("orders/create", deliveries[i].id, body, SECRET);
			if (status != 200)
				nanosleep(&(struct timespec){0, 100000000}, NULL);
		}
		cr_assert_eq(status, 200, "delivery %u", i);
	}
	cr_assert_eq(on_hand(1, WEB), 10000 - sold[1]);
	cr_assert_eq(on_hand(2, WEB), 10000 - sold[2]);
	gateway_stop(SIGTERM);
}

/* Shopify's cancellation refunds the units (restock type cancel) and sends
 * orders/cancelled, carrying that refund, and refunds/create: the units come
 * back once, through the refund's key, in any order, each delivered twice;
 * the cancellation arriving before its order still sells it first. */
Test(gateway_e2e, a_cancellation_and_its_refund_give_the_units_back_once)
{
	const char created[] =
	        "{\"id\":4001,\"source_name\":\"web\",\"created_at\":"
	        "\"2026-11-27T09:30:00Z\",\"line_items\":[{\"id\":40011,\"sku\":"
	        "\"MUG\",\"quantity\":4},{\"id\":40012,\"sku\":\"TEE\",\"quantity\":3}]}";
#define CANCEL_REFUND                                                                              \
	"{\"id\":88001,\"order_id\":4001,\"created_at\":\"2026-11-27T10:00:00Z\","                 \
	"\"refund_line_items\":[{\"id\":1,\"line_item_id\":40011,\"quantity\":4,"                  \
	"\"restock_type\":\"cancel\",\"line_item\":{\"sku\":\"MUG\"}},{\"id\":2,"                  \
	"\"line_item_id\":40012,\"quantity\":3,\"restock_type\":\"no_restock\","                   \
	"\"line_item\":{\"sku\":\"TEE\"}}]}"
	const char cancelled[] =
	        "{\"id\":4001,\"source_name\":\"web\",\"created_at\":"
	        "\"2026-11-27T09:30:00Z\",\"cancelled_at\":\"2026-11-27T10:00:00Z\","
	        "\"line_items\":[{\"id\":40011,\"sku\":\"MUG\",\"quantity\":4},"
	        "{\"id\":40012,\"sku\":\"TEE\",\"quantity\":3}],"
	        "\"refunds\":[" CANCEL_REFUND "]}";
	const char refund[] = CANCEL_REFUND;
#undef CANCEL_REFUND
	/* The usual order: sold, then both webhooks, each twice (new delivery ids). */
	cr_assert_eq(deliver("orders/create", "k-1", created, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 9996);
	cr_assert_eq(on_hand(2, WEB), 9997);
	cr_assert_eq(deliver("orders/cancelled", "k-2", cancelled, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 10000);
	cr_assert_eq(deliver("refunds/create", "k-3", refund, SECRET), 200);
	cr_assert_eq(deliver("orders/cancelled", "k-4", cancelled, SECRET), 200);
	cr_assert_eq(deliver("refunds/create", "k-5", refund, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 10000, "the mugs came back once");
	cr_assert_eq(on_hand(2, WEB), 9997, "no_restock: the tees stay sold");
	/* The other way round, for another order: the refund, then the
	 * cancellation, then the order itself. */
	char other_created[sizeof(created)], other_cancelled[sizeof(cancelled)];
	char other_refund[sizeof(refund)];
	const char *from[3] = {created, cancelled, refund};
	char *to[3] = {other_created, other_cancelled, other_refund};
	for (int i = 0; i < 3; i++) {
		/* Order 4001 -> 4002, its lines 40011/40012 -> 40021/40022, refund 88001 -> 88002.
		 */
		snprintf(to[i], strlen(from[i]) + 1, "%s", from[i]);
		for (char *at = to[i]; (at = strstr(at, "4001")) != NULL; at += 4)
			at[3] = '2';
		for (char *at = to[i]; (at = strstr(at, "88001")) != NULL; at += 5)
			at[4] = '2';
	}
	cr_assert_eq(deliver("refunds/create", "m-1", other_refund, SECRET), 200);
	cr_assert_eq(deliver("orders/cancelled", "m-2", other_cancelled, SECRET), 200);
	cr_assert_eq(deliver("refunds/create", "m-3", other_refund, SECRET), 200);
	cr_assert_eq(deliver("orders/create", "m-4", other_created, SECRET), 200);
	cr_assert_eq(deliver("orders/cancelled", "m-5", other_cancelled, SECRET), 200);
	cr_assert_eq(on_hand(1, WEB), 10000);
	cr_assert_eq(on_hand(2, WEB), 9994, "the second order's tees are sold too");
}
