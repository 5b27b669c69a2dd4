/*
 * test_push_shopify.c — Shopify's inventorySetQuantities bodies
 * (channels/shopify.c): the version rules of the request, and every kind
 * of answer read into what the worker does next, malformed ones included.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "shopify.h"

static const struct shopify_quantity two[] = {
        {"gid://shopify/InventoryItem/1", "gid://shopify/Location/7", 5, 8, true},
        {"gid://shopify/InventoryItem/2", "gid://shopify/Location/7", 0, 3, true},
};

static json_t *body_of(const struct shopify_set *set)
{
	char error[128] = "";
	char *text = shopify_set_body(set, error, sizeof(error));
	cr_assert_not_null(text, "%s", error);
	json_t *body = json_loads(text, 0, NULL);
	free(text);
	cr_assert_not_null(body);
	return body;
}

static json_t *quantity_at(json_t *body, size_t i)
{
	return json_array_get(
	        json_object_get(json_object_get(json_object_get(body, "variables"), "input"),
	                        "quantities"),
	        i);
}

Test(shopify, version_rules)
{
	cr_assert_eq(shopify_cas_rule("2025-01"), SHOPIFY_CAS_COMPARE_QUANTITY);
	cr_assert_eq(shopify_cas_rule("2025-10"), SHOPIFY_CAS_COMPARE_QUANTITY);
	cr_assert_eq(shopify_cas_rule("2026-01"), SHOPIFY_CAS_CHANGE_FROM);
	cr_assert_eq(shopify_cas_rule("2026-04"), SHOPIFY_CAS_CHANGE_FROM_REQUIRED);
	cr_assert_eq(shopify_cas_rule("2027-07"), SHOPIFY_CAS_CHANGE_FROM_REQUIRED);
	cr_assert_eq(shopify_cas_rule("2025-02"), 0);
	cr_assert_eq(shopify_cas_rule("2025-1"), 0);
	cr_assert_eq(shopify_cas_rule("unstable"), 0);
	cr_assert_eq(shopify_cas_rule(NULL), 0);
}

Test(shopify, up_to_2025_10_compare_quantity_without_a_directive)
{
	struct shopify_set set = {"2025-01", NULL, "skuld://push/web/1", two, 2};
	json_t *body = body_of(&set);
	const char *query = json_string_value(json_object_get(body, "query"));
	cr_assert_not_null(strstr(query, "inventorySetQuantities(input: $input)"));
	cr_assert_null(strstr(query, "@idempotent"));
	json_t *input = json_object_get(json_object_get(body, "variables"), "input");
	cr_assert_str_eq(json_string_value(json_object_get(input, "name")), "available");
	cr_assert_str_eq(json_string_value(json_object_get(input, "referenceDocumentUri")),
	                 "skuld://push/web/1");
	cr_assert_null(json_object_get(input, "ignoreCompareQuantity"));
	json_t *q = quantity_at(body, 1);
	cr_assert_str_eq(json_string_value(json_object_get(q, "inventoryItemId")),
	                 "gid://shopify/InventoryItem/2");
	cr_assert_eq(json_integer_value(json_object_get(q, "quantity")), 0);
	cr_assert_eq(json_integer_value(json_object_get(q, "compareQuantity")), 3);
	cr_assert_null(json_object_get(q, "changeFromQuantity"));
	json_decref(body);
}

Test(shopify, unknown_shown_values_opt_out_as_the_version_says)
{
	struct shopify_quantity unknown[] = {
	        {"gid://shopify/InventoryItem/1", "gid://shopify/Location/7", 5, 0, false}};
	struct shopify_set set = {"2025-04", NULL, NULL, unknown, 1};
	json_t *body = body_of(&set);
	json_t *input = json_object_get(json_object_get(body, "variables"), "input");
	cr_assert(json_is_true(json_object_get(input, "ignoreCompareQuantity")));
	cr_assert_null(json_object_get(quantity_at(body, 0), "compareQuantity"));
	json_decref(body);

	set.version = "2026-01";
	set.idempotency_key = "k-1";
	body = body_of(&set);
	cr_assert(json_is_null(json_object_get(quantity_at(body, 0), "changeFromQuantity")),
	          "2026-01: an explicit null");
	json_decref(body);

	set.version = "2026-04";
	body = body_of(&set);
	json_t *change = json_object_get(quantity_at(body, 0), "changeFromQuantity");
	cr_assert(json_is_null(change), "2026-04: an explicit null");
	json_decref(body);
}

Test(shopify, from_2026_01_change_from_and_the_idempotent_directive)
{
	struct shopify_set set = {"2026-01", "push-web-42", NULL, two, 2};
	json_t *body = body_of(&set);
	cr_assert_not_null(strstr(json_string_value(json_object_get(body, "query")),
	                          "@idempotent(key: $key)"));
	cr_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(body, "variables"), "key")),
	        "push-web-42");
	cr_assert_eq(
	        json_integer_value(json_object_get(quantity_at(body, 0), "changeFromQuantity")), 8);
	cr_assert_null(json_object_get(quantity_at(body, 0), "compareQuantity"));
	json_decref(body);
}

Test(shopify, requests_that_cannot_be_sent_are_refused)
{
	char error[128];
	struct shopify_set set = {"2025-03", NULL, NULL, two, 2};
	cr_assert_null(shopify_set_body(&set, error, sizeof(error)));
	set.version = "2026-04";
	cr_assert_null(shopify_set_body(&set, error, sizeof(error)), "no idempotency key");
	set.version = "2025-01";
	set.count = 0;
	cr_assert_null(shopify_set_body(&set, error, sizeof(error)));
	set.count = SHOPIFY_QUANTITIES_MAX + 1;
	cr_assert_null(shopify_set_body(&set, error, sizeof(error)));
	struct shopify_quantity mixed[] = {two[0], two[1]};
	mixed[1].shown_known = false;
	set.quantities = mixed;
	set.count = 2;
	cr_assert_null(shopify_set_body(&set, error, sizeof(error)));
	cr_assert_not_null(strstr(error, "mix"), "%s", error);
}

static const char cost[] =
        "\"extensions\":{\"cost\":{\"requestedQueryCost\":10,\"actualQueryCost\":10,"
        "\"throttleStatus\":{\"maximumAvailable\":2000.0,\"currentlyAvailable\":1990,"
        "\"restoreRate\":100.0}}}";

static void answer_read(long status, const char *text, struct shopify_answer *answer)
{
	shopify_set_answer(status, text, strlen(text), 2, answer);
}

Test(shopify, an_accepted_answer_with_its_cost)
{
	char text[1024];
	snprintf(text, sizeof(text),
	         "{\"data\":{\"inventorySetQuantities\":{\"inventoryAdjustmentGroup\":{\"id\":"
	         "\"gid://shopify/InventoryAdjustmentGroup/1\"},\"userErrors\":[]}},%s}",
	         cost);
	struct shopify_answer answer;
	answer_read(200, text, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_ACCEPTED);
	cr_assert(answer.cost_known);
	cr_assert_float_eq(answer.available, 1990.0, 1e-9);
	cr_assert_float_eq(answer.maximum, 2000.0, 1e-9);
	cr_assert_float_eq(answer.restore_rate, 100.0, 1e-9);
	cr_assert_float_eq(answer.requested_cost, 10.0, 1e-9);
}

Test(shopify, throttled_as_200_or_429)
{
	char text[1024];
	snprintf(text, sizeof(text),
	         "{\"errors\":[{\"message\":\"Throttled\",\"extensions\":{\"code\":"
	         "\"THROTTLED\",\"documentation\":\"https://shopify.dev/api/usage/"
	         "rate-limits\"}}],\"extensions\":{\"cost\":{\"requestedQueryCost\":10,"
	         "\"actualQueryCost\":null,\"throttleStatus\":{\"maximumAvailable\":2000.0,"
	         "\"currentlyAvailable\":4,\"restoreRate\":100.0}}}}");
	struct shopify_answer answer;
	answer_read(200, text, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_THROTTLED);
	cr_assert(answer.cost_known);
	cr_assert_float_eq(answer.available, 4.0, 1e-9);
	cr_assert_str_eq(answer.message, "Throttled");
	answer_read(429, "", &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_THROTTLED);
	cr_assert(!answer.cost_known);
}

Test(shopify, user_errors_name_their_quantity)
{
	const char *text =
	        "{\"data\":{\"inventorySetQuantities\":{\"inventoryAdjustmentGroup\":null,"
	        "\"userErrors\":[{\"code\":\"COMPARE_QUANTITY_STALE\",\"field\":[\"input\","
	        "\"quantities\",\"1\",\"compareQuantity\"],\"message\":\"The compareQuantity "
	        "argument no longer matches the persisted quantity.\"},{\"code\":"
	        "\"ITEM_NOT_STOCKED_AT_LOCATION\",\"field\":[\"input\",\"quantities\",\"0\","
	        "\"locationId\"],\"message\":\"not stocked\"},{\"code\":\"INVALID_REASON\","
	        "\"field\":[\"input\",\"reason\"],\"message\":\"bad\"}]}}}";
	struct shopify_answer answer;
	answer_read(200, text, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_USER_ERRORS);
	cr_assert_eq(answer.error_count, 3);
	cr_assert_eq(answer.errors[0].index, 1);
	cr_assert_eq(answer.errors[0].code, SHOPIFY_ERROR_STALE);
	cr_assert_eq(answer.errors[1].index, 0);
	cr_assert_eq(answer.errors[1].code, SHOPIFY_ERROR_NOT_STOCKED);
	cr_assert_eq(answer.errors[2].index, -1, "not about one quantity");
	cr_assert_eq(answer.errors[2].code, SHOPIFY_ERROR_OTHER);
	cr_assert_str_eq(answer.errors[2].code_text, "INVALID_REASON");
	cr_assert(!answer.cost_known);
}

Test(shopify, an_index_out_of_range_names_no_quantity)
{
	const char *text = "{\"data\":{\"inventorySetQuantities\":{\"userErrors\":[{\"code\":"
	                   "\"INVALID_LOCATION\",\"field\":[\"input\",\"quantities\",\"2\"],"
	                   "\"message\":\"x\"},{\"code\":\"INVALID_LOCATION\",\"field\":[\"input\","
	                   "\"quantities\",\"-1\"],\"message\":\"x\"}]}}}";
	struct shopify_answer answer;
	answer_read(200, text, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_USER_ERRORS);
	cr_assert_eq(answer.errors[0].index, -1);
	cr_assert_eq(answer.errors[1].index, -1);
}

Test(shopify, status_codes_and_graphql_errors)
{
	struct shopify_answer answer;
	answer_read(401,
	            "{\"errors\":\"[API] Invalid API key or access token (unrecognized login or "
	            "wrong password)\"}",
	            &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_AUTH);
	answer_read(404, "Not Found", &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_NOT_FOUND);
	answer_read(502, "<html>Bad Gateway</html>", &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_SERVER_ERROR);
	answer_read(200,
	            "{\"errors\":[{\"message\":\"Variable $input of type "
	            "InventorySetQuantitiesInput! was provided invalid value\",\"extensions\":{"
	            "\"code\":\"INVALID_VARIABLE\"}}]}",
	            &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_REJECTED);
	cr_assert_not_null(strstr(answer.message, "invalid value"));
}

Test(shopify, malformed_answers_are_malformed)
{
	const char *bad[] = {
	        "",
	        "{",
	        "[]",
	        "null",
	        "{\"data\":null}",
	        "{\"data\":{\"inventorySetQuantities\":{\"userErrors\":{}}}}",
	        "{\"data\":{\"inventorySetQuantities\":{\"userErrors\":[7]}}}",
	        "{\"data\":{},\"data\":{}}",
	        "{\"data\":{\"inventorySetQuantities\":{\"userErrors\":[]}}} trailing",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shopify_answer answer;
		answer_read(200, bad[i], &answer);
		cr_assert_eq(answer.outcome, SHOPIFY_MALFORMED, "'%s'", bad[i]);
	}
	struct shopify_answer answer;
	shopify_set_answer(200, NULL, 0, 2, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_MALFORMED);
	/* Not NUL-terminated: only size bytes are read. */
	const char text[] = "{\"data\":{\"inventorySetQuantities\":{\"userErrors\":[]}}}XXXX";
	shopify_set_answer(200, text, sizeof(text) - 5, 2, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_ACCEPTED);
}

/* ---- Reconciliation ------------------------------------------------------ */

Test(shopify, a_read_names_its_items_and_location)
{
	const char *items[] = {"gid://shopify/InventoryItem/1", "gid://shopify/InventoryItem/2"};
	char error[128];
	char *text = shopify_read_body(items, 2, "gid://shopify/Location/7", error, sizeof(error));
	cr_assert_not_null(text, "%s", error);
	json_t *body = json_loads(text, 0, NULL);
	free(text);
	json_t *variables = json_object_get(body, "variables");
	cr_assert_eq(json_array_size(json_object_get(variables, "ids")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(variables, "location")),
	                 "gid://shopify/Location/7");
	const char *query = json_string_value(json_object_get(body, "query"));
	cr_assert_not_null(strstr(query, "nodes(ids: $ids)"));
	cr_assert_not_null(strstr(query, "quantities(names: [\"available\"])"));
	json_decref(body);
	cr_assert_null(shopify_read_body(items, 0, "gid://shopify/Location/7", error, 128));
	cr_assert_null(shopify_read_body(items, 2, NULL, error, 128));
}

Test(shopify, read_answers_give_found_stocked_and_available)
{
	const char *text =
	        "{\"data\":{\"nodes\":[{\"id\":\"gid://shopify/InventoryItem/"
	        "1\",\"inventoryLevel\":"
	        "{\"quantities\":[{\"name\":\"available\",\"quantity\":12}]}},{\"id\":\"gid://"
	        "shopify/InventoryItem/2\",\"inventoryLevel\":null},null]}}";
	struct shopify_level levels[3];
	struct shopify_answer answer;
	cr_assert_eq(shopify_read_answer(200, text, strlen(text), 3, levels, &answer),
	             SHOPIFY_ACCEPTED);
	cr_assert(levels[0].found && levels[0].stocked && levels[0].available == 12);
	cr_assert(levels[1].found && !levels[1].stocked, "not stocked at the location");
	cr_assert(!levels[2].found, "unknown item");
	/* The wrong number of nodes, or a quantity that is not an integer. */
	cr_assert_eq(shopify_read_answer(200, text, strlen(text), 2, levels, &answer),
	             SHOPIFY_MALFORMED);
	const char *bad = "{\"data\":{\"nodes\":[{\"id\":\"x\",\"inventoryLevel\":{\"quantities\":"
	                  "[{\"name\":\"available\",\"quantity\":\"12\"}]}}]}}";
	cr_assert_eq(shopify_read_answer(200, bad, strlen(bad), 1, levels, &answer),
	             SHOPIFY_MALFORMED);
	cr_assert_eq(shopify_read_answer(503, "", 0, 1, levels, &answer), SHOPIFY_SERVER_ERROR);
}
