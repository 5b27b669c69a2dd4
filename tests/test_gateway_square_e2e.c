/*
 * test_gateway_square_e2e.c — the real skuld, the real skuld-gateway (kind
 * square) and the Square stand-in (tests/standins/square.py) delivering
 * signed order and refund notifications from its own thread, with its
 * retries, duplicates (the same event_id) and late deliveries, and serving
 * RetrieveOrder: an order lowers the ledger's available quantity exactly
 * once; a till sale lands at its store; a bad signature is refused (401,
 * counted) and changes nothing; a cancellation gives the units back once; a
 * refund is an expected return; a line whose catalog object is not mapped
 * waits in the spool and is applied once the map names it. Every wait is
 * bounded.
 */
#include <jansson.h>

#include "gateway_harness.h"
#include "gateway_square.h"
#include "server_harness.h"
#include "standin_harness.h"

#define SIGNATURE_KEY    "sq-signature-key"
#define NOTIFICATION_URL "https://shop.example/webhooks/square"
#define TOKEN            "EAAAEstandin-square-token"
#define WEB              1 /* location WEB-DC: online orders (Square location L-WEB) */
#define STORE            2 /* location STORE-1: Square location L-STORE, a till */

static const char SEED[] = "{\"locations\": [{\"id\": \"L-WEB\"}, {\"id\": \"L-STORE\"}],"
                           " \"objects\": [{\"id\": \"VAR-MUG\"}, {\"id\": \"VAR-TEE\"}]}";

static struct server server;
static struct client admin;
static struct http_client *http;
static struct standin square;
static struct gateway_process gateway;
static uint64_t key_serial = 9000;

/* Writes the configuration (extra: more lines) and starts the gateway. */
static void gateway_start(const char *extra)
{
	FILE *file = fopen(gateway.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "listen = 127.0.0.1:0\nserver = 127.0.0.1:%u\nchannel = square\nkind = square\n"
	        "secret = " SIGNATURE_KEY "\nnotification_url = " NOTIFICATION_URL "\n"
	        "location = WEB-DC\nspool = %s\nretry_s = 1\npos = L-STORE:STORE-1\n"
	        "api_url = %s\napi_token = " TOKEN "\nlisting = VAR-MUG:MUG\n"
	        "listing = VAR-TEE:TEE\n%s",
	        server.port, server.dir, square.base, extra != NULL ? extra : "");
	fclose(file);
	gateway_process_start(&gateway);
}

static void subscribe(const char *key)
{
	char body[384];
	snprintf(body, sizeof(body),
	         "{\"url\": \"http://127.0.0.1:%u/webhooks/square\", \"secret\": \"%s\","
	         " \"notification_url\": \"" NOTIFICATION_URL "\"}",
	         gateway.port, key);
	standin_control(&square, http, "webhooks", body);
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
	admin_define_code(&admin, event_location(STORE, ++key_serial), "STORE-1");
	for (uint32_t item = 1; item <= 2; item++)
		for (uint32_t location = WEB; location <= STORE; location++)
			admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, item, location, 10000,
			                                    ++key_serial));
	snprintf(gateway.config, sizeof(gateway.config), "%s/gateway.conf", server.dir);
	snprintf(gateway.log, sizeof(gateway.log), "%s/gateway.log", server.dir);
	standin_start(&square, "square.py", SEED);
	/* RetrieveOrder shares the stand-in's bucket: room for the bursts here. */
	standin_control(&square, http, "config",
	                "{\"bucket_capacity\": 1000, \"restore_rate\": 1000}");
}

static void teardown(void)
{
	gateway_process_stop(&gateway, SIGKILL);
	standin_stop(&square);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	http_client_destroy(http);
}

TestSuite(gateway_square_e2e, .init = setup, .fini = teardown, .timeout = 120);

static struct skuld_level_record level(uint32_t item, uint32_t location)
{
	return client_level(&admin, item, location);
}

/* GET from the stand-in's control API; the caller json_decref()s it. */
static json_t *control_get(const char *what)
{
	char url[128];
	snprintf(url, sizeof(url), "%s/_control/%s", square.base, what);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 10000};
	struct http_response response;
	cr_assert_eq(http_call(http, &request, &response), 0, "%s", response.error);
	cr_assert_eq(response.status, 200);
	json_t *root = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert_not_null(root);
	return root;
}

static json_int_t delivery_count(const char *state)
{
	json_t *root = control_get("webhooks");
	json_int_t count =
	        json_integer_value(json_object_get(json_object_get(root, "counts"), state));
	json_decref(root);
	return count;
}

/* Waits (at most ms) until the stand-in has nothing left to deliver. */
static void deliveries_settle(unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	for (;;) {
		json_t *root = control_get("webhooks");
		json_int_t pending = json_integer_value(json_object_get(root, "pending"));
		json_decref(root);
		if (pending == 0)
			return;
		cr_assert_lt(harness_now_ms(), deadline, "%lld deliveries still pending",
		             (long long)pending);
		sleep_ms(100);
	}
}

static void await_on_hand(uint32_t item, uint32_t location, int64_t expected, unsigned ms)
{
	uint64_t deadline = harness_now_ms() + ms;
	while (level(item, location).on_hand != expected && harness_now_ms() < deadline)
		sleep_ms(100);
	cr_assert_eq(level(item, location).on_hand, expected, "item %u at %u: %lld, expected %lld",
	             item, location, (long long)level(item, location).on_hand, (long long)expected);
}

/* Makes an order at the stand-in; its id into id (room for 64). */
static void order(const char *spec, char *id)
{
	char url[128];
	snprintf(url, sizeof(url), "%s/_control/order", square.base);
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
	const char *text = json_string_value(json_object_get(root, "id"));
	cr_assert_not_null(text);
	snprintf(id, 64, "%s", text);
	json_decref(root);
}

/* POSTs a notification to the gateway signed with key over url; the status. */
static long post_signed(const char *key, const char *url, const char *body)
{
	char target[128], signature[45], header[96];
	snprintf(target, sizeof(target), "http://127.0.0.1:%u/webhooks/square", gateway.port);
	square_webhook_sign(key, url, body, strlen(body), signature);
	snprintf(header, sizeof(header), "x-square-hmacsha256-signature: %s", signature);
	struct http_request request = {
	        .method = "POST",
	        .url = target,
	        .headers = {"Content-Type: application/json", header},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = 10000,
	};
	struct http_response response;
	cr_assert_eq(http_call(http, &request, &response), 0, "%s", response.error);
	return response.status;
}

Test(gateway_square_e2e, an_order_lowers_the_ledger_once_under_duplicate_and_late_deliveries)
{
	/* Every event delivered twice (the same event_id), some of them late. */
	standin_control(&square, http, "config",
	                "{\"webhook_duplicate_rate\": 1.0, \"webhook_late_rate\": 0.5,"
	                " \"webhook_late_seconds\": 1.0, \"webhook_seed\": 5}");
	gateway_start(NULL);
	subscribe(SIGNATURE_KEY);
	char id[64];
	order("{\"location_id\": \"L-WEB\", \"lines\": [{\"catalog_object_id\": \"VAR-MUG\","
	      " \"quantity\": 2}, {\"catalog_object_id\": \"VAR-TEE\", \"quantity\": 1}]}",
	      id);
	/* A till sale posted an hour late: a SALE at the store. */
	order("{\"location_id\": \"L-STORE\", \"state\": \"COMPLETED\", \"pos\": true,"
	      " \"created_at\": \"2026-01-01T10:00:00Z\", \"lines\": [{\"catalog_object_id\":"
	      " \"VAR-TEE\", \"quantity\": 3}]}",
	      id);
	deliveries_settle(15000);
	await_on_hand(1, WEB, 9998, 10000);
	await_on_hand(2, WEB, 9999, 10000);
	await_on_hand(2, STORE, 9997, 10000);
	cr_assert_eq(delivery_count("delivered"), 4, "two events, each twice");
	cr_assert_eq(level(1, WEB).available, 9998);
	cr_assert_eq(level(1, STORE).on_hand, 10000);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_eq(gateway_process_figure(&gateway, "duplicates"), 2);
	cr_assert_eq(gateway_process_figure(&gateway, "unverified"), 0);
}

Test(gateway_square_e2e, a_bad_signature_is_refused_and_changes_nothing)
{
	standin_control(&square, http, "config",
	                "{\"webhook_max_attempts\": 2, \"webhook_retry_initial_seconds\": 0.2}");
	gateway_start(NULL);
	subscribe("not-the-signature-key");
	char id[64];
	order("{\"location_id\": \"L-WEB\", \"lines\": [{\"catalog_object_id\": \"VAR-MUG\","
	      " \"quantity\": 5}]}",
	      id);
	deliveries_settle(10000);
	cr_assert_eq(delivery_count("failed"), 1);
	json_t *root = control_get("webhooks");
	json_t *attempts = json_object_get(root, "attempts");
	cr_assert_eq(json_array_size(attempts), 2);
	for (size_t i = 0; i < 2; i++)
		cr_assert_eq(
		        json_integer_value(json_object_get(json_array_get(attempts, i), "status")),
		        401);
	json_decref(root);
	/* The right key over another URL, or the body altered: 401 too. */
	char body[256];
	snprintf(body, sizeof(body),
	         "{\"type\": \"order.created\", \"event_id\": \"ev-bad\", \"data\": {\"object\":"
	         " {\"order_created\": {\"order_id\": \"%s\", \"state\": \"OPEN\"}}}}",
	         id);
	cr_assert_eq(post_signed(SIGNATURE_KEY, "https://other.example/webhooks/square", body),
	             401);
	cr_assert_eq(level(1, WEB).on_hand, 10000);
	/* Signed right, the same notification is applied (the order exists). */
	cr_assert_eq(post_signed(SIGNATURE_KEY, NOTIFICATION_URL, body), 200);
	cr_assert_eq(level(1, WEB).on_hand, 9995);
	cr_assert_eq(post_signed(SIGNATURE_KEY, NOTIFICATION_URL, body), 200);
	cr_assert_eq(level(1, WEB).on_hand, 9995);
	/* Not a notification: 400. */
	cr_assert_eq(post_signed(SIGNATURE_KEY, NOTIFICATION_URL, "{\"type\": \"order.created\"}"),
	             400);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_eq(gateway_process_figure(&gateway, "unverified"), 3);
}

Test(gateway_square_e2e, a_cancellation_gives_units_back_once_and_a_refund_is_expected_back)
{
	standin_control(&square, http, "config",
	                "{\"webhook_duplicate_rate\": 1.0, \"webhook_seed\": 7}");
	gateway_start(NULL);
	subscribe(SIGNATURE_KEY);
	char id[64], spec[256];
	order("{\"location_id\": \"L-WEB\", \"lines\": [{\"catalog_object_id\": \"VAR-MUG\","
	      " \"quantity\": 4}]}",
	      id);
	await_on_hand(1, WEB, 9996, 10000);
	snprintf(spec, sizeof(spec), "{\"order_id\": \"%s\"}", id);
	standin_control(&square, http, "cancel", spec);
	await_on_hand(1, WEB, 10000, 10000);
	/* A completed sale, then one of its three units refunded. */
	order("{\"location_id\": \"L-WEB\", \"state\": \"COMPLETED\", \"lines\": [{"
	      "\"catalog_object_id\": \"VAR-TEE\", \"quantity\": 3}]}",
	      id);
	await_on_hand(2, WEB, 9997, 10000);
	snprintf(spec, sizeof(spec),
	         "{\"order_id\": \"%s\", \"lines\": [{\"uid\": \"%s-L1\", "
	         "\"quantity\": 1}]}",
	         id, id);
	standin_control(&square, http, "refund", spec);
	deliveries_settle(15000);
	uint64_t deadline = harness_now_ms() + 10000;
	while (level(2, WEB).incoming != 1 && harness_now_ms() < deadline)
		sleep_ms(100);
	struct skuld_level_record tee = level(2, WEB);
	cr_assert_eq(tee.incoming, 1, "one unit expected back");
	cr_assert_eq(tee.on_hand, 9997, "not in stock until scanned in");
	cr_assert_eq(level(1, WEB).on_hand, 10000);
	cr_assert_eq(delivery_count("delivered"), 8, "four events, each twice");
	gateway_process_stop(&gateway, SIGTERM);
}

Test(gateway_square_e2e, an_unmapped_catalog_object_waits_until_the_map_names_it)
{
	admin_define_code(&admin, event_item(3, ++key_serial), "CAP");
	admin_submit_ok(&admin, event_stock(SKULD_RECEIVE, 3, WEB, 50, ++key_serial));
	gateway_start(NULL);
	subscribe(SIGNATURE_KEY);
	char id[64];
	order("{\"location_id\": \"L-WEB\", \"lines\": [{\"catalog_object_id\": \"VAR-CAP\","
	      " \"quantity\": 2}]}",
	      id);
	deliveries_settle(10000);
	cr_assert_eq(delivery_count("delivered"), 1, "kept (an exception), not refused");
	cr_assert_eq(level(3, WEB).on_hand, 50);
	/* Mapped after a restart: the spooled line is applied, once. */
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_eq(gateway_process_figure(&gateway, "spooled"), 1);
	gateway_start("listing = VAR-CAP:CAP\n");
	await_on_hand(3, WEB, 48, 10000);
	sleep_ms(1500); /* a retry pass more: still once */
	cr_assert_eq(level(3, WEB).on_hand, 48);
	gateway_process_stop(&gateway, SIGTERM);
}

/* POSTs to the stand-in's control API; the answer's "version" (the order's). */
static json_int_t update(const char *spec)
{
	char url[128];
	snprintf(url, sizeof(url), "%s/_control/update", square.base);
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
	json_int_t version = json_integer_value(json_object_get(root, "version"));
	json_decref(root);
	return version;
}

/* The gateway's record of order id (SPOOL/square/ID.json), or NULL. */
static json_t *order_record(const char *id)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/square/%s.json", server.dir, id);
	return json_load_file(path, 0, NULL);
}

Test(gateway_square_e2e, quantity_edits_of_an_open_order_apply_their_difference_once)
{
	/* Every notification twice (the same event_id), half of them late, so an
	 * older version's notification often arrives after a newer one. */
	standin_control(&square, http, "config",
	                "{\"webhook_duplicate_rate\": 1.0, \"webhook_late_rate\": 0.5,"
	                " \"webhook_late_seconds\": 1.5, \"webhook_seed\": 11,"
	                " \"webhook_retry_initial_seconds\": 0.3}");
	gateway_start(NULL);
	subscribe(SIGNATURE_KEY);
	char id[64], spec[512];
	order("{\"location_id\": \"L-WEB\", \"lines\": [{\"catalog_object_id\": \"VAR-MUG\","
	      " \"quantity\": 2}, {\"catalog_object_id\": \"VAR-TEE\", \"quantity\": 1}]}",
	      id);
	/* v2: MUG 2 -> 5; v3: TEE 1 -> 3 and a new MUG line of 4; v4: MUG 5 -> 1; back
	 * and forth, in quick succession. */
	snprintf(spec, sizeof(spec),
	         "{\"order_id\": \"%s\", \"lines\": [{\"uid\": \"%s-L1\", \"quantity\": 5}]}", id,
	         id);
	cr_assert_eq(update(spec), 2);
	snprintf(spec, sizeof(spec),
	         "{\"order_id\": \"%s\", \"lines\": [{\"uid\": \"%s-L2\", \"quantity\": 3}],"
	         " \"add\": [{\"catalog_object_id\": \"VAR-MUG\", \"quantity\": 4}]}",
	         id, id);
	cr_assert_eq(update(spec), 3);
	snprintf(spec, sizeof(spec),
	         "{\"order_id\": \"%s\", \"lines\": [{\"uid\": \"%s-L1\", \"quantity\": 1}]}", id,
	         id);
	cr_assert_eq(update(spec), 4);
	deliveries_settle(20000);
	await_on_hand(1, WEB, 10000 - 1 - 4, 10000);
	await_on_hand(2, WEB, 10000 - 3, 10000);
	cr_assert_eq(delivery_count("delivered"), 8, "four events, each twice");
	json_t *record = order_record(id);
	cr_assert_not_null(record, "the order's record is kept in the spool");
	cr_assert_eq(json_integer_value(json_object_get(record, "version")), 4);
	cr_assert_eq(json_array_size(json_object_get(record, "pending")), 0);
	json_decref(record);
	char body[384];

	/* A crash between the record and the submit: skuld stopped, the record
	 * of v5 written, the gateway killed while its submit waits. */
	unsigned port = gateway.port;
	kill(server.pid, SIGSTOP);
	snprintf(spec, sizeof(spec),
	         "{\"order_id\": \"%s\", \"lines\": [{\"uid\": \"%s-L2\", \"quantity\": 2},"
	         " {\"uid\": \"%s-A1\", \"quantity\": 6}]}",
	         id, id, id);
	cr_assert_eq(update(spec), 5);
	uint64_t deadline = harness_now_ms() + 15000;
	for (;;) {
		json_t *written = order_record(id);
		json_int_t version = json_integer_value(json_object_get(written, "version"));
		json_decref(written);
		if (version == 5)
			break;
		if (harness_now_ms() > deadline)
			kill(server.pid, SIGCONT);
		cr_assert_lt(harness_now_ms(), deadline, "the record of v5 was not written");
		sleep_ms(50);
	}
	gateway_process_stop(&gateway, SIGKILL);
	kill(server.pid, SIGCONT);
	record = order_record(id);
	cr_assert_eq(json_array_size(json_object_get(record, "pending")), 2,
	             "the difference is recorded before it is sent");
	json_decref(record);
	/* Restarted on the same port: Square's retries bring the notification
	 * again, and the recorded facts are sent with the same keys. */
	char listen[64];
	snprintf(listen, sizeof(listen), "listen = 127.0.0.1:%u\n", port);
	gateway_start(listen);
	deliveries_settle(30000);
	await_on_hand(1, WEB, 10000 - 1 - 6, 15000);
	await_on_hand(2, WEB, 10000 - 2, 10000);
	sleep_ms(1500);
	cr_assert_eq(level(1, WEB).on_hand, 10000 - 1 - 6);
	cr_assert_eq(level(2, WEB).on_hand, 10000 - 2);

	/* A late notification of version 1, signed right: stale, nothing changes. */
	snprintf(
	        body, sizeof(body),
	        "{\"type\": \"order.created\", \"event_id\": \"ev-late-v1\", \"data\": {\"object\":"
	        " {\"order_created\": {\"order_id\": \"%s\", \"state\": \"OPEN\", \"version\":"
	        " 1}}}}",
	        id);
	cr_assert_eq(post_signed(SIGNATURE_KEY, NOTIFICATION_URL, body), 200);
	cr_assert_eq(level(1, WEB).on_hand, 10000 - 1 - 6);
	cr_assert_eq(level(2, WEB).on_hand, 10000 - 2);

	/* Cancelled: exactly what was applied comes back, once. */
	snprintf(spec, sizeof(spec), "{\"order_id\": \"%s\"}", id);
	standin_control(&square, http, "cancel", spec);
	deliveries_settle(20000);
	await_on_hand(1, WEB, 10000, 10000);
	await_on_hand(2, WEB, 10000, 10000);
	sleep_ms(1500);
	cr_assert_eq(level(1, WEB).on_hand, 10000);
	cr_assert_eq(level(2, WEB).on_hand, 10000);
	cr_assert_eq(level(1, WEB).available, 10000);
	gateway_process_stop(&gateway, SIGTERM);
	cr_assert_eq(gateway_process_figure(&gateway, "unverified"), 0);
	cr_assert_geq(gateway_process_figure(&gateway, "stale"), 1);
}
