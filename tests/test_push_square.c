/*
 * test_push_square.c — Square's batch-create and batch-retrieve bodies
 * (channels/square.c): quantities in the item's scale rounded down to what
 * Square takes, occurred_at and its 24-hour window, the request's shape, and
 * every kind of answer read into what the worker does next, malformed ones
 * included.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "square.h"

#define SECOND_NS 1000000000ull
#define NOW_NS    (1755700000ull * SECOND_NS) /* 2025-08-20T14:26:40Z */

static const struct square_count_change two[] = {
        {"VAR1", "LOC1", 5, 0, NOW_NS - 60 * SECOND_NS, NULL},
        {"VAR2", "LOC1", 2750, 3, NOW_NS, "skuld-1"},
};

static json_t *body_of(const struct square_batch *batch)
{
	char error[128] = "";
	char *text = square_batch_body(batch, error, sizeof(error));
	cr_assert_not_null(text, "%s", error);
	json_t *body = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	cr_assert_not_null(body);
	return body;
}

static const char *text_of(const char *want, int64_t quantity, uint8_t scale)
{
	static char out[SQUARE_QUANTITY_SIZE];
	cr_assert_eq(square_quantity_text(quantity, scale, out, sizeof(out)), 0);
	cr_assert_str_eq(out, want, "%lld at scale %u", (long long)quantity, scale);
	return out;
}

Test(square, quantities_are_decimal_strings_rounded_down_to_five_places)
{
	text_of("53", 53, 0);
	text_of("2.75", 2750, 3);
	text_of("2", 2000, 3);
	text_of("0.001", 1, 3);
	text_of("1.23456", 123456789, 8); /* 1.23456789 -> 5 places, down */
	text_of("0", 999, 8);             /* below 0.00001 */
	text_of("0", -7, 0);              /* never a unit that is not there */
	text_of("9223372036854775807", INT64_MAX, 0);
	cr_assert_eq(square_quantity_sent(123456789, 8), 123456000);
	cr_assert_eq(square_quantity_sent(2750, 3), 2750);
	cr_assert_eq(square_quantity_sent(-3, 2), 0);
	char small[3];
	cr_assert_eq(square_quantity_text(12345, 0, small, sizeof(small)), -1);
}

Test(square, answer_quantities_are_read_into_base_units_rounded_down)
{
	int64_t value = 0;
	cr_assert_eq(square_quantity_parse("53", 0, &value), 0);
	cr_assert_eq(value, 53);
	cr_assert_eq(square_quantity_parse("2.5", 3, &value), 0);
	cr_assert_eq(value, 2500);
	cr_assert_eq(square_quantity_parse("2.999", 0, &value), 0);
	cr_assert_eq(value, 2);
	cr_assert_eq(square_quantity_parse("-2.5", 0, &value), 0);
	cr_assert_eq(value, -3, "towards minus infinity");
	cr_assert_eq(square_quantity_parse("-2.000", 0, &value), 0);
	cr_assert_eq(value, -2);
	const char *bad[] = {
	        "", "-", "1.", ".5", "1e3", "1,5", " 1", "0x10", "99999999999999999999", "1.5.5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(square_quantity_parse(bad[i], 0, &value), -1, "%s", bad[i]);
	cr_assert_eq(square_quantity_parse("9223372036854775807", 1, &value), -1, "overflow");
	cr_assert_eq(square_quantity_parse(NULL, 0, &value), -1);
}

Test(square, occurred_at_is_the_ledger_time_within_the_window)
{
	char text[SQUARE_TIME_SIZE];
	cr_assert_eq(square_time_text(NOW_NS + 123456789, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "2025-08-20T14:26:40.123Z");
	uint64_t hour = 3600 * SECOND_NS;
	cr_assert_eq(square_occurred_at(NOW_NS - hour, NOW_NS), NOW_NS - hour);
	cr_assert_eq(square_occurred_at(NOW_NS - 23 * hour, NOW_NS), NOW_NS - 23 * hour);
	/* Too old for Square (or about to be, by the time a retry goes): now. */
	cr_assert_eq(square_occurred_at(NOW_NS - 24 * hour + 60 * SECOND_NS, NOW_NS), NOW_NS);
	cr_assert_eq(square_occurred_at(NOW_NS - 30 * 24 * hour, NOW_NS), NOW_NS);
	/* In the future (skuld's clock ahead of ours), or unknown: now. */
	cr_assert_eq(square_occurred_at(NOW_NS + SECOND_NS, NOW_NS), NOW_NS);
	cr_assert_eq(square_occurred_at(0, NOW_NS), NOW_NS);
}

Test(square, a_batch_of_physical_counts)
{
	struct square_batch batch = {"skuld-web-1", two, 2};
	json_t *body = body_of(&batch);
	cr_assert_str_eq(json_string_value(json_object_get(body, "idempotency_key")),
	                 "skuld-web-1");
	cr_assert(json_is_false(json_object_get(body, "ignore_unchanged_counts")));
	json_t *changes = json_object_get(body, "changes");
	cr_assert_eq(json_array_size(changes), 2);
	json_t *first = json_array_get(changes, 0);
	cr_assert_str_eq(json_string_value(json_object_get(first, "type")), "PHYSICAL_COUNT");
	json_t *count = json_object_get(first, "physical_count");
	cr_assert_str_eq(json_string_value(json_object_get(count, "catalog_object_id")), "VAR1");
	cr_assert_str_eq(json_string_value(json_object_get(count, "location_id")), "LOC1");
	cr_assert_str_eq(json_string_value(json_object_get(count, "state")), "IN_STOCK");
	cr_assert_str_eq(json_string_value(json_object_get(count, "quantity")), "5");
	cr_assert_str_eq(json_string_value(json_object_get(count, "occurred_at")),
	                 "2025-08-20T14:25:40.000Z");
	cr_assert_null(json_object_get(count, "reference_id"));
	count = json_object_get(json_array_get(changes, 1), "physical_count");
	cr_assert_str_eq(json_string_value(json_object_get(count, "quantity")), "2.75");
	cr_assert_str_eq(json_string_value(json_object_get(count, "reference_id")), "skuld-1");
	json_decref(body);
	/* The same batch is the same bytes: a retry under its key is identical. */
	char error[64];
	char *a = square_batch_body(&batch, error, sizeof(error));
	char *b = square_batch_body(&batch, error, sizeof(error));
	cr_assert_str_eq(a, b);
	free(a);
	free(b);
}

Test(square, batches_that_cannot_be_sent_are_refused)
{
	char error[128];
	struct square_count_change many[SQUARE_CHANGES_MAX + 1];
	for (size_t i = 0; i < SQUARE_CHANGES_MAX + 1; i++)
		many[i] = two[0];
	struct square_batch batches[] = {
	        {"k", two, 0},
	        {"k", many, SQUARE_CHANGES_MAX + 1},
	        {"", two, 1},
	        {NULL, two, 1},
	};
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		error[0] = '\0';
		cr_assert_null(square_batch_body(&batches[i], error, sizeof(error)), "batch %zu",
		               i);
		cr_assert_neq(error[0], '\0');
	}
	struct square_batch full = {"k", many, SQUARE_CHANGES_MAX};
	char *text = square_batch_body(&full, error, sizeof(error));
	cr_assert_not_null(text, "%s", error);
	free(text);
	char long_key[130];
	memset(long_key, 'k', 129);
	long_key[129] = '\0';
	struct square_batch too_long = {long_key, two, 1};
	cr_assert_null(square_batch_body(&too_long, error, sizeof(error)));
	struct square_count_change unmapped = {"", "LOC1", 1, 0, NOW_NS, NULL};
	struct square_batch empty_id = {"k", &unmapped, 1};
	cr_assert_null(square_batch_body(&empty_id, error, sizeof(error)));
}

Test(square, a_read_names_objects_location_and_state)
{
	const char *objects[] = {"VAR1", "VAR2"};
	char error[128];
	char *text = square_read_body(objects, 2, "LOC1", NULL, error, sizeof(error));
	cr_assert_not_null(text, "%s", error);
	json_t *body = json_loads(text, 0, NULL);
	free(text);
	cr_assert_eq(json_array_size(json_object_get(body, "catalog_object_ids")), 2);
	cr_assert_str_eq(
	        json_string_value(json_array_get(json_object_get(body, "location_ids"), 0)),
	        "LOC1");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(body, "states"), 0)),
	                 "IN_STOCK");
	cr_assert_null(json_object_get(body, "cursor"));
	json_decref(body);
	text = square_read_body(objects, 1, "LOC1", "page2", error, sizeof(error));
	body = json_loads(text, 0, NULL);
	free(text);
	cr_assert_str_eq(json_string_value(json_object_get(body, "cursor")), "page2");
	json_decref(body);
	cr_assert_null(square_read_body(objects, 0, "LOC1", NULL, error, sizeof(error)));
	cr_assert_null(square_read_body(objects, 1, "", NULL, error, sizeof(error)));
}

static struct square_answer answer;

static void read_create(long status, const char *text)
{
	struct square_batch batch = {"k", two, 2};
	square_batch_answer(status, text, text != NULL ? strlen(text) : 0, &batch, &answer);
}

Test(square, an_accepted_answer_with_its_counts)
{
	read_create(200, "{\"counts\":[{\"catalog_object_id\":\"VAR1\",\"catalog_object_type\":"
	                 "\"ITEM_VARIATION\",\"state\":\"IN_STOCK\",\"location_id\":\"LOC1\","
	                 "\"quantity\":\"4\",\"calculated_at\":\"2025-08-20T14:26:41.000Z\"},"
	                 "{\"catalog_object_id\":\"VAR1\",\"state\":\"SOLD\",\"location_id\":"
	                 "\"LOC1\",\"quantity\":\"1\"}],\"changes\":[]}");
	cr_assert_eq(answer.outcome, SQUARE_ACCEPTED);
	cr_assert_eq(answer.count_count, 1, "IN_STOCK only");
	const struct square_count *count = square_count_find(&answer, "VAR1", "LOC1");
	cr_assert_not_null(count);
	cr_assert_str_eq(count->quantity, "4");
	cr_assert_null(square_count_find(&answer, "VAR2", "LOC1"));
	cr_assert_null(square_count_find(&answer, "VAR1", "LOC2"));
	read_create(200, "{}");
	cr_assert_eq(answer.outcome, SQUARE_ACCEPTED);
	read_create(200, "{\"errors\":[]}");
	cr_assert_eq(answer.outcome, SQUARE_ACCEPTED);
}

Test(square, status_codes_and_error_categories)
{
	read_create(429, "{\"errors\":[{\"category\":\"RATE_LIMIT_ERROR\",\"code\":"
	                 "\"RATE_LIMITED\",\"detail\":\"Rate limit exceeded.\"}]}");
	cr_assert_eq(answer.outcome, SQUARE_RATE_LIMITED);
	read_create(429, "not json");
	cr_assert_eq(answer.outcome, SQUARE_RATE_LIMITED);
	read_create(401, "{\"errors\":[{\"category\":\"AUTHENTICATION_ERROR\",\"code\":"
	                 "\"ACCESS_TOKEN_EXPIRED\"}]}");
	cr_assert_eq(answer.outcome, SQUARE_AUTH);
	read_create(403, NULL);
	cr_assert_eq(answer.outcome, SQUARE_AUTH);
	read_create(400, "{\"errors\":[{\"category\":\"AUTHENTICATION_ERROR\",\"code\":"
	                 "\"SOMETHING_NEW\"}]}");
	cr_assert_eq(answer.outcome, SQUARE_AUTH, "by category");
	read_create(503, "{\"errors\":[{\"category\":\"API_ERROR\",\"code\":"
	                 "\"SERVICE_UNAVAILABLE\"}]}");
	cr_assert_eq(answer.outcome, SQUARE_SERVER_ERROR);
	read_create(500, "<html>");
	cr_assert_eq(answer.outcome, SQUARE_SERVER_ERROR);
	read_create(404, "<html>Not found</html>");
	cr_assert_eq(answer.outcome, SQUARE_REJECTED);
	read_create(302, "");
	cr_assert_eq(answer.outcome, SQUARE_MALFORMED);
	read_create(0, NULL);
	cr_assert_eq(answer.outcome, SQUARE_MALFORMED);
}

Test(square, errors_name_their_change_by_field_or_by_detail)
{
	read_create(400,
	            "{\"errors\":["
	            "{\"category\":\"INVALID_REQUEST_ERROR\",\"code\":\"NOT_FOUND\",\"detail\":"
	            "\"Item variation with catalog object ID `VAR2` not found.\",\"field\":"
	            "\"changes[1].physical_count.catalog_object_id\"},"
	            "{\"category\":\"INVALID_REQUEST_ERROR\",\"code\":\"INVALID_VALUE\","
	            "\"detail\":\"Invalid object `VAR1`.\",\"field\":\"catalog_object_id\"},"
	            "{\"category\":\"INVALID_REQUEST_ERROR\",\"code\":\"INVALID_VALUE\","
	            "\"detail\":\"VAR1 and VAR2 are wrong\"},"
	            "{\"category\":\"INVALID_REQUEST_ERROR\",\"code\":\"NOT_FOUND\","
	            "\"detail\":\"Object VAR10 is unknown\"},"
	            "{\"category\":\"INVALID_REQUEST_ERROR\",\"code\":\"INVALID_TIME\","
	            "\"field\":\"changes[7].physical_count.occurred_at\"},"
	            "{\"category\":\"INVALID_REQUEST_ERROR\",\"code\":\"NOT_FOUND\","
	            "\"detail\":\"Location `LOC1` not found.\",\"field\":"
	            "\"changes[0].physical_count.location_id\"}]}");
	cr_assert_eq(answer.outcome, SQUARE_ERRORS);
	cr_assert_eq(answer.error_count, 6);
	cr_assert_eq(answer.errors[0].index, 1);
	cr_assert_eq(answer.errors[0].code, SQUARE_ERROR_NOT_FOUND);
	cr_assert_eq(answer.errors[0].field_kind, SQUARE_FIELD_OBJECT);
	cr_assert_eq(answer.errors[1].index, 0, "named in the detail");
	cr_assert_eq(answer.errors[1].code, SQUARE_ERROR_INVALID_VALUE);
	cr_assert_eq(answer.errors[2].index, -1, "two objects: neither");
	cr_assert_eq(answer.errors[3].index, -1, "VAR10 is not VAR1");
	cr_assert_eq(answer.errors[4].index, -1, "out of range");
	cr_assert_eq(answer.errors[4].code, SQUARE_ERROR_INVALID_TIME);
	cr_assert_eq(answer.errors[4].field_kind, SQUARE_FIELD_TIME);
	cr_assert_eq(answer.errors[5].field_kind, SQUARE_FIELD_LOCATION);
	cr_assert_str_eq(answer.errors[0].category, "INVALID_REQUEST_ERROR");
	cr_assert_not_null(strstr(answer.message, "NOT_FOUND"));
}

Test(square, error_codes)
{
	cr_assert_eq(square_error_code("IDEMPOTENCY_KEY_REUSED"), SQUARE_ERROR_IDEMPOTENCY);
	cr_assert_eq(square_error_code("ACCESS_TOKEN_REVOKED"), SQUARE_ERROR_AUTH);
	cr_assert_eq(square_error_code("INSUFFICIENT_SCOPES"), SQUARE_ERROR_AUTH);
	cr_assert_eq(square_error_code("INVALID_SQUARE_VERSION_FORMAT"), SQUARE_ERROR_VERSION);
	cr_assert_eq(square_error_code("GATEWAY_TIMEOUT"), SQUARE_ERROR_SERVER);
	cr_assert_eq(square_error_code("ARRAY_LENGTH_TOO_LONG"), SQUARE_ERROR_OTHER);
	cr_assert_eq(square_error_code(NULL), SQUARE_ERROR_OTHER);
}

Test(square, malformed_answers_are_malformed)
{
	const char *bodies[] = {
	        "",
	        "[]",
	        "{\"counts\":{}}",
	        "{\"counts\":[1]}",
	        "{\"counts\":[{\"state\":\"IN_STOCK\",\"catalog_object_id\":\"VAR1\"}]}",
	        "{\"counts\":[{\"state\":\"IN_STOCK\",\"catalog_object_id\":\"VAR1\",\"location_"
	        "id\":"
	        "\"LOC1\",\"quantity\":\"many\"}]}",
	        "{\"counts\":[{\"state\":\"IN_STOCK\",\"catalog_object_id\":\"VAR1\",\"location_"
	        "id\":"
	        "\"LOC1\",\"quantity\":5}]}",
	        "{\"errors\":\"bad\"}",
	        "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}",
	        "{\"errors\":[7]}",
	        "{\"counts\":[],\"counts\":[]}",
	        "{\"counts\":[{\"catalog_object_id\":\"VAR1\",\"lo",
	        "{\"cursor\":5}",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		read_create(200, bodies[i]);
		cr_assert_eq(answer.outcome, SQUARE_MALFORMED, "body %zu: %s", i, bodies[i]);
	}
	/* Not NUL-terminated: read by size. */
	const char text[] = "{}garbage";
	struct square_batch batch = {"k", two, 2};
	square_batch_answer(200, text, 2, &batch, &answer);
	cr_assert_eq(answer.outcome, SQUARE_ACCEPTED);
}

Test(square, read_answers_give_counts_and_the_cursor)
{
	const char *text = "{\"counts\":[{\"catalog_object_id\":\"VAR2\",\"state\":\"IN_STOCK\","
	                   "\"location_id\":\"LOC1\",\"quantity\":\"-1.5\"}],\"cursor\":\"next\"}";
	cr_assert_eq(square_read_answer(200, text, strlen(text), &answer), SQUARE_ACCEPTED);
	cr_assert_str_eq(answer.cursor, "next");
	const struct square_count *count = square_count_find(&answer, "VAR2", "LOC1");
	cr_assert_not_null(count);
	int64_t value;
	cr_assert_eq(square_quantity_parse(count->quantity, 1, &value), 0);
	cr_assert_eq(value, -15);
	text = "{\"errors\":[{\"category\":\"RATE_LIMIT_ERROR\",\"code\":\"RATE_LIMITED\"}]}";
	cr_assert_eq(square_read_answer(429, text, strlen(text), &answer), SQUARE_RATE_LIMITED);
}
