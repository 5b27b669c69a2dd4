/*
 * test_gateway_square.c — Square webhooks as skuld-gateway reads them
 * (channels/gateway_square.c): the signature over the notification URL and
 * the body against a value computed elsewhere (Python's hmac), the
 * notification's envelope (event_id: the duplicate key), the actions of an
 * order in each state and of its returns, the keys they get, and bodies
 * that are not what Square sends.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gateway_square.h"

static struct gateway_config config;
static struct gateway_action actions[16];
static char error[160];

static void map(void)
{
	memset(&config, 0, sizeof(config));
	snprintf(config.channel, sizeof(config.channel), "square");
	config.listing_count = 2;
	snprintf(config.listing_object[0], GATEWAY_ID_SIZE, "VAR-MUG");
	snprintf(config.listing_sku[0], SKULD_CODE_SIZE + 1, "MUG");
	snprintf(config.listing_object[1], GATEWAY_ID_SIZE, "VAR-TEE");
	snprintf(config.listing_sku[1], SKULD_CODE_SIZE + 1, "TEE");
}

static int read_order(const char *body)
{
	error[0] = '\0';
	return square_order_actions(&config, body, strlen(body), actions, 16, error, sizeof(error));
}

static int read_event(const char *body, struct square_event *event)
{
	error[0] = '\0';
	return square_event_read(body, strlen(body), event, error, sizeof(error));
}

Test(gateway_square, the_signature_covers_the_notification_url_and_the_body)
{
	const char url[] = "https://example.com/webhooks/square";
	const char body[] = "{\"event_id\":\"e1\"}";
	/* python3: base64(hmac.new(b"sig-key", url + body, sha256).digest()) */
	const char want[] = "WWALl0nrws7z+XIpoE3uu3IUb33p9m+ARxpQ/0yDvo4=";
	char signed_text[45];
	square_webhook_sign("sig-key", url, body, strlen(body), signed_text);
	cr_assert_str_eq(signed_text, want);
	cr_assert_eq(square_webhook_verify("sig-key", url, body, strlen(body), want), 1);
	/* Another key, another URL (byte for byte), another body: refused. */
	cr_assert_eq(square_webhook_verify("other-key", url, body, strlen(body), want), 0);
	cr_assert_eq(square_webhook_verify("sig-key", "https://example.com/webhooks/square/", body,
	                                   strlen(body), want),
	             0);
	cr_assert_eq(square_webhook_verify("sig-key", url, "{\"event_id\":\"e2\"}", 17, want), 0);
	cr_assert_eq(square_webhook_verify("sig-key", url, body, strlen(body), NULL), 0);
	cr_assert_eq(square_webhook_verify("sig-key", url, body, strlen(body), "short"), 0);
	cr_assert_eq(square_webhook_verify("", url, body, strlen(body), want), 0);
}

Test(gateway_square, a_notification_names_its_event_and_order)
{
	struct square_event event;
	cr_assert_eq(read_event("{\"merchant_id\":\"M1\",\"type\":\"order.updated\",\"event_id\":"
	                        "\"ev-1\",\"data\":{\"type\":\"order_updated\",\"id\":\"O-1\","
	                        "\"object\":{\"order_updated\":{\"order_id\":\"O-1\",\"state\":"
	                        "\"COMPLETED\",\"version\":2}}}}",
	                        &event),
	             0, "%s", error);
	cr_assert_eq(event.kind, SQUARE_EVENT_ORDER);
	cr_assert_str_eq(event.event_id, "ev-1");
	cr_assert_str_eq(event.order_id, "O-1");
	cr_assert_eq(event.moves, 1);
	/* A draft moves nothing. */
	cr_assert_eq(read_event("{\"type\":\"order.created\",\"event_id\":\"ev-2\",\"data\":{"
	                        "\"object\":{\"order_created\":{\"order_id\":\"O-2\",\"state\":"
	                        "\"DRAFT\"}}}}",
	                        &event),
	             0);
	cr_assert_eq(event.moves, 0);
	/* A refund names its order; a failed one moves nothing. */
	cr_assert_eq(read_event("{\"type\":\"refund.created\",\"event_id\":\"ev-3\",\"data\":{"
	                        "\"object\":{\"refund\":{\"id\":\"R-1\",\"order_id\":\"O-3\","
	                        "\"status\":\"PENDING\"}}}}",
	                        &event),
	             0);
	cr_assert_eq(event.kind, SQUARE_EVENT_REFUND);
	cr_assert_str_eq(event.order_id, "O-3");
	cr_assert_eq(event.moves, 1);
	cr_assert_eq(read_event("{\"type\":\"refund.updated\",\"event_id\":\"ev-4\",\"data\":{"
	                        "\"object\":{\"refund\":{\"id\":\"R-1\",\"order_id\":\"O-3\","
	                        "\"status\":\"FAILED\"}}}}",
	                        &event),
	             0);
	cr_assert_eq(event.moves, 0);
	/* Other types: read, nothing to do. */
	cr_assert_eq(
	        read_event("{\"type\":\"inventory.count.updated\",\"event_id\":\"ev-5\"}", &event),
	        0);
	cr_assert_eq(event.kind, SQUARE_EVENT_OTHER);
	/* Not Square's: no event_id, no order id, not JSON. */
	cr_assert_eq(read_event("{\"type\":\"order.created\"}", &event), -1);
	cr_assert_eq(
	        read_event("{\"type\":\"order.created\",\"event_id\":\"e\",\"data\":{}}", &event),
	        -1);
	cr_assert_eq(read_event("{\"type\":\"refund.created\",\"event_id\":\"e\",\"data\":{"
	                        "\"object\":{\"refund\":{\"id\":\"R\"}}}}",
	                        &event),
	             -1);
	cr_assert_eq(read_event("not json", &event), -1);
	cr_assert_eq(read_event("{\"type\":\"order.created\",\"event_id\":\"e\",\"data\":{"
	                        "\"object\":{\"order_created\":{\"order_id\":\"../x?y\"}}}}",
	                        &event),
	             -1);
}

/* An online order in the given state. */
#define ONLINE(state)                                                                              \
	"{\"order\":{\"id\":\"O-1\",\"location_id\":\"L-WEB\",\"state\":\"" state "\","            \
	"\"created_at\":\"2026-11-27T09:30:00.123Z\",\"line_items\":["                             \
	"{\"uid\":\"u1\",\"catalog_object_id\":\"VAR-MUG\",\"quantity\":\"2\"},"                   \
	"{\"uid\":\"u2\",\"catalog_object_id\":\"VAR-TEE\",\"quantity\":\"1.000\"},"               \
	"{\"uid\":\"u3\",\"catalog_object_id\":\"VAR-MUG\",\"quantity\":\"0\"}]}}"

Test(gateway_square, an_open_order_is_a_sale_per_line_mapped_by_catalog_object)
{
	map();
	cr_assert_eq(read_order(ONLINE("OPEN")), 2, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_SALE);
	cr_assert_str_eq(actions[0].sku, "MUG");
	cr_assert_str_eq(actions[0].listing, "VAR-MUG");
	cr_assert_eq(actions[0].quantity, 2);
	cr_assert_str_eq(actions[0].order, "O-1");
	cr_assert_str_eq(actions[0].line, "u1");
	cr_assert_str_eq(actions[0].channel_location, "L-WEB");
	cr_assert_eq(actions[0].occurred_at, 1795771800123000000ull);
	cr_assert_str_eq(actions[1].sku, "TEE");
	cr_assert_eq(actions[1].quantity, 1);
	/* COMPLETED is the same sale, under the same key: applied once. */
	skuld_u128 open_key = gateway_key("square", &actions[0], "sale");
	cr_assert_eq(read_order(ONLINE("COMPLETED")), 2, "%s", error);
	skuld_u128 completed_key = gateway_key("square", &actions[0], "sale");
	cr_assert_eq(memcmp(&open_key, &completed_key, sizeof(open_key)), 0);
}

Test(gateway_square, a_till_sale_keeps_its_location_and_closing_time)
{
	map();
	cr_assert_eq(read_order("{\"order\":{\"id\":\"O-2\",\"location_id\":\"L-STORE\","
	                        "\"state\":\"COMPLETED\",\"source\":{\"name\":\"Square Point of "
	                        "Sale\"},\"created_at\":\"2026-11-27T09:00:00Z\",\"closed_at\":"
	                        "\"2026-11-27T09:05:00Z\",\"line_items\":[{\"uid\":\"u1\","
	                        "\"catalog_object_id\":\"VAR-TEE\",\"quantity\":\"3\"}]}}"),
	             1, "%s", error);
	cr_assert_str_eq(actions[0].channel_location, "L-STORE");
	cr_assert_eq(actions[0].occurred_at, 1795770300ull * 1000000000ull);
}

Test(gateway_square, a_canceled_order_gives_units_back_and_a_draft_moves_nothing)
{
	map();
	cr_assert_eq(read_order("{\"order\":{\"id\":\"O-3\",\"state\":\"CANCELED\",\"line_items\":"
	                        "[{\"uid\":\"u1\",\"catalog_object_id\":\"VAR-MUG\",\"quantity\":"
	                        "\"4\"}]}}"),
	             1, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_CANCEL);
	cr_assert_eq(actions[0].quantity, 4);
	cr_assert_eq(read_order("{\"order\":{\"id\":\"O-4\",\"state\":\"DRAFT\",\"line_items\":"
	                        "[{\"uid\":\"u1\",\"catalog_object_id\":\"VAR-MUG\",\"quantity\":"
	                        "\"4\"}]}}"),
	             0, "%s", error);
}

Test(gateway_square, returned_items_are_expected_back_keyed_by_the_sold_line)
{
	map();
	cr_assert_eq(
	        read_order("{\"order\":{\"id\":\"RET-1\",\"state\":\"COMPLETED\","
	                   "\"returns\":[{\"uid\":\"ret-a\",\"source_order_id\":\"O-1\","
	                   "\"return_line_items\":[{\"uid\":\"rl-1\",\"source_line_item_uid\":"
	                   "\"u1\",\"catalog_object_id\":\"VAR-MUG\",\"quantity\":\"1\"}]}]}}"),
	        1, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_EXPECTED_RETURN);
	cr_assert_str_eq(actions[0].order, "O-1");
	cr_assert_str_eq(actions[0].line, "u1");
	cr_assert_str_eq(actions[0].refund, "ret-a");
	cr_assert_str_eq(actions[0].refund_line, "rl-1");
	cr_assert_str_eq(actions[0].sku, "MUG");
}

Test(gateway_square, an_unmapped_catalog_object_keeps_its_id_and_no_sku)
{
	map();
	cr_assert_eq(read_order("{\"order\":{\"id\":\"O-5\",\"state\":\"OPEN\",\"line_items\":[{"
	                        "\"uid\":\"u1\",\"catalog_object_id\":\"VAR-CAP\",\"quantity\":"
	                        "\"1\"}]}}"),
	             1, "%s", error);
	cr_assert_str_eq(actions[0].sku, "");
	cr_assert_str_eq(actions[0].listing, "VAR-CAP");
	cr_assert_null(gateway_listing_sku(&config, "VAR-CAP"));
	cr_assert_str_eq(gateway_listing_sku(&config, "VAR-TEE"), "TEE");
}

Test(gateway_square, answers_that_are_not_orders_are_refused)
{
	map();
	const char *bad[] = {
	        "not json",
	        "{}",
	        "{\"order\":{\"state\":\"OPEN\"}}",
	        "{\"order\":{\"id\":\"O\"}}",
	        "{\"order\":{\"id\":\"O\",\"state\":\"WHATEVER\"}}",
	        "{\"order\":{\"id\":\"O\",\"state\":\"OPEN\",\"line_items\":[{\"uid\":\"u\","
	        "\"catalog_object_id\":\"VAR-MUG\",\"quantity\":\"1.5\"}]}}",
	        "{\"order\":{\"id\":\"O\",\"state\":\"OPEN\",\"line_items\":[{\"uid\":\"u\","
	        "\"catalog_object_id\":\"VAR-MUG\",\"quantity\":\"-1\"}]}}",
	        "{\"order\":{\"id\":\"O\",\"state\":\"OPEN\",\"line_items\":[{\"uid\":\"u\","
	        "\"quantity\":\"1\"}]}}",
	        "{\"order\":{\"id\":\"O\",\"state\":\"OPEN\",\"line_items\":[{"
	        "\"catalog_object_id\":\"VAR-MUG\",\"quantity\":\"1\"}]}}",
	        "{\"order\":{\"id\":\"O\",\"state\":\"OPEN\",\"created_at\":\"yesterday\"}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(read_order(bad[i]), -1, "%s", bad[i]);
}

Test(gateway_square, quantities_are_whole_units)
{
	int64_t value = -1;
	cr_assert_eq(square_quantity_whole("12", &value), 1);
	cr_assert_eq(value, 12);
	cr_assert_eq(square_quantity_whole("3.00", &value), 1);
	cr_assert_eq(value, 3);
	cr_assert_eq(square_quantity_whole("0.5", &value), 0);
	cr_assert_eq(square_quantity_whole("1000001", &value), 0);
	cr_assert_eq(square_quantity_whole("", &value), 0);
	cr_assert_eq(square_quantity_whole("1e3", &value), 0);
	cr_assert_eq(square_quantity_whole(NULL, &value), 0);
}

/* ---- Edits of an open order: differences against the order's record ---------------- */

static struct square_record record;
static struct square_order_head head;

/* Reads order O-9 at version (lines: "uid:OBJECT:QUANTITY" texts), state,
 * and steps the record; the facts appended. */
static int step(const char *state, int version, const char *const *lines, int count)
{
	char body[2048];
	int at = snprintf(body, sizeof(body),
	                  "{\"order\":{\"id\":\"O-9\",\"state\":\"%s\",\"version\":%d,"
	                  "\"created_at\":\"2026-11-27T09:00:00Z\",\"updated_at\":"
	                  "\"2026-11-27T10:00:%02dZ\",\"line_items\":[",
	                  state, version, version);
	for (int i = 0; i < count; i++) {
		char uid[16], object[16];
		int quantity;
		cr_assert_eq(sscanf(lines[i], "%15[^:]:%15[^:]:%d", uid, object, &quantity), 3);
		at += snprintf(
		        body + at, sizeof(body) - (size_t)at,
		        "%s{\"uid\":\"%s\",\"catalog_object_id\":\"%s\",\"quantity\":\"%d\"}",
		        i > 0 ? "," : "", uid, object, quantity);
	}
	snprintf(body + at, sizeof(body) - (size_t)at, "]}}");
	error[0] = '\0';
	int read = square_order_read(&config, body, strlen(body), &head, actions, 16, error,
	                             sizeof(error));
	cr_assert_geq(read, 0, "%s", error);
	cr_assert_eq(head.version, version);
	return square_record_step(&record, &head, actions, (uint32_t)read, error, sizeof(error));
}

/* The units the facts record.pending[from..] move out of stock (SALE +, RETURN -). */
static int64_t sold(uint32_t from, const char *line)
{
	int64_t units = 0;
	for (uint32_t i = from; i < record.pending_count; i++) {
		const struct gateway_action *fact = &record.pending[i];
		if (line != NULL && strcmp(fact->line, line) != 0)
			continue;
		switch (fact->kind) {
		case GATEWAY_SALE:
		case GATEWAY_EDIT_ADD:
			units += fact->quantity;
			break;
		case GATEWAY_EDIT_REMOVE:
		case GATEWAY_CANCEL_RETURN:
			units -= fact->quantity;
			break;
		default: /* GATEWAY_CANCEL: its SALE and RETURN */
			break;
		}
	}
	return units;
}

static bool key_equal(skuld_u128 a, skuld_u128 b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

Test(gateway_square, quantity_changes_of_an_open_order_are_applied_as_differences)
{
	map();
	memset(&record, 0, sizeof(record));
	snprintf(record.order, sizeof(record.order), "O-9");
	const char *v1[] = {"u1:VAR-MUG:2", "u2:VAR-TEE:1"};
	cr_assert_eq(step("OPEN", 1, v1, 2), 2, "%s", error);
	cr_assert_eq(record.pending[0].kind, GATEWAY_SALE, "first sight: the order's own SALE");
	cr_assert_eq(record.pending[0].quantity, 2);
	cr_assert_eq(record.version, 1);
	/* The same line read at first sight is byte for byte square_order_actions's. */
	cr_assert_eq(read_order("{\"order\":{\"id\":\"O-9\",\"state\":\"OPEN\",\"version\":1,"
	                        "\"created_at\":\"2026-11-27T09:00:00Z\",\"line_items\":[{\"uid\":"
	                        "\"u1\",\"catalog_object_id\":\"VAR-MUG\",\"quantity\":\"2\"}]}}"),
	             1);
	cr_assert(key_equal(gateway_key("square", &actions[0], "sale"),
	                    gateway_key("square", &record.pending[0], "sale")));
	cr_assert_eq(actions[0].occurred_at, record.pending[0].occurred_at);

	/* Version 2: u1 up to 5, u2 removed, a new line u3. */
	uint32_t before = record.pending_count;
	const char *v2[] = {"u1:VAR-MUG:5", "u3:VAR-TEE:4"};
	cr_assert_eq(step("OPEN", 2, v2, 2), 3, "%s", error);
	cr_assert_eq(sold(before, "u1"), 3);
	cr_assert_eq(sold(before, "u2"), -1, "a line gone from the order gives its units back");
	cr_assert_eq(sold(before, "u3"), 4);
	const struct gateway_action *add = &record.pending[before];
	cr_assert_eq(add->kind, GATEWAY_EDIT_ADD);
	cr_assert_str_eq(add->refund, "v2", "keyed by (order, line uid, version)");
	cr_assert_str_eq(add->sku, "MUG");
	cr_assert_eq(add->occurred_at, (1795773600ull + 2) * 1000000000ull, "updated_at");

	/* The same version again, and an older one (a late notification): nothing. */
	before = record.pending_count;
	cr_assert_eq(step("OPEN", 2, v2, 2), 0);
	cr_assert_eq(step("OPEN", 1, v1, 2), 0, "stale");
	cr_assert_eq(record.pending_count, before);
	cr_assert_eq(record.version, 2);

	/* Version 3 brings u1 back to 2, version 4 to 5 again: each its own key. */
	const char *v3[] = {"u1:VAR-MUG:2", "u3:VAR-TEE:4"};
	cr_assert_eq(step("OPEN", 3, v3, 2), 1);
	const char *v4[] = {"u1:VAR-MUG:5", "u3:VAR-TEE:4"};
	cr_assert_eq(step("OPEN", 4, v4, 2), 1);
	const struct gateway_action *up2 = &record.pending[before - 3];
	const struct gateway_action *up4 = &record.pending[record.pending_count - 1];
	cr_assert_eq(up4->kind, GATEWAY_EDIT_ADD);
	cr_assert_eq(up4->quantity, up2->quantity);
	cr_assert_not(key_equal(gateway_key("square", up2, "edit-add"),
	                        gateway_key("square", up4, "edit-add")));
	/* Everything recorded sums to what the order says now. */
	cr_assert_eq(sold(0, "u1"), 5);
	cr_assert_eq(sold(0, "u2"), 0);
	cr_assert_eq(sold(0, "u3"), 4);

	/* Cancelled at version 5 (u3 cut to 3 on the way): the units it holds come back. */
	before = record.pending_count;
	const char *v5[] = {"u1:VAR-MUG:5", "u3:VAR-TEE:3"};
	cr_assert_eq(step("CANCELED", 5, v5, 2), 3);
	cr_assert_eq(sold(0, NULL), 0, "a cancelled order holds nothing");
	cr_assert_eq(record.pending[before].kind, GATEWAY_CANCEL_RETURN);
	cr_assert_eq(record.pending[before].quantity, 5);
	/* Its RETURN is byte for byte the one of a first-sight cancellation. */
	cr_assert_eq(record.pending[before].occurred_at, 0);
	cr_assert_str_eq(record.pending[before].refund, "");
	/* A cancelled line never sells again. */
	cr_assert_eq(step("CANCELED", 6, v5, 2), 0);
	cr_assert_eq(sold(0, NULL), 0);
}

Test(gateway_square, a_record_with_facts_pending_keeps_them_until_cleared)
{
	/* A crash between the record and the submit: the record read again
	 * holds the same facts (same keys), and a newer version adds to them. */
	map();
	memset(&record, 0, sizeof(record));
	const char *v1[] = {"u1:VAR-MUG:2"};
	cr_assert_eq(step("OPEN", 1, v1, 1), 1);
	struct gateway_action kept = record.pending[0];
	cr_assert_eq(step("OPEN", 1, v1, 1), 0);
	cr_assert_eq(record.pending_count, 1);
	cr_assert_eq(memcmp(&kept, &record.pending[0], sizeof(kept)), 0);
	const char *v2[] = {"u1:VAR-MUG:1"};
	cr_assert_eq(step("OPEN", 2, v2, 1), 1);
	cr_assert_eq(record.pending_count, 2);
	cr_assert_eq(sold(0, "u1"), 1);
}

Test(gateway_square, a_first_sight_of_a_cancelled_order_and_orders_without_version)
{
	map();
	memset(&record, 0, sizeof(record));
	const char *v3[] = {"u1:VAR-MUG:4"};
	cr_assert_eq(step("CANCELED", 3, v3, 1), 1);
	cr_assert_eq(record.pending[0].kind, GATEWAY_CANCEL, "its SALE and RETURN together");
	cr_assert_eq(record.lines[0].quantity, 0);
	const char *v4[] = {"u1:VAR-MUG:6"};
	cr_assert_eq(step("CANCELED", 4, v4, 1), 0);
	/* Without a version the difference has no key: refused. */
	memset(&record, 0, sizeof(record));
	error[0] = '\0';
	const char unversioned[] = "{\"order\":{\"id\":\"O-8\",\"state\":\"OPEN\",\"line_items\":"
	                           "[{\"uid\":\"u1\",\"catalog_object_id\":\"VAR-MUG\","
	                           "\"quantity\":\"1\"}]}}";
	int read = square_order_read(&config, unversioned, strlen(unversioned), &head, actions, 16,
	                             error, sizeof(error));
	cr_assert_eq(read, 1, "%s", error);
	cr_assert_eq(square_record_step(&record, &head, actions, 1, error, sizeof(error)), -1);
	const char zero[] = "{\"order\":{\"id\":\"O-8\",\"state\":\"OPEN\",\"version\":0}}";
	cr_assert_eq(square_order_read(&config, zero, strlen(zero), &head, actions, 16, error,
	                               sizeof(error)),
	             -1);
}
