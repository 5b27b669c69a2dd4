/*
 * shopify.c — inventorySetQuantities request and answer (shopify.h).
 */
#include "shopify.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SET_SELECTION "{ inventoryAdjustmentGroup { id } userErrors { code field message } }"

static const char document_compare[] =
        "mutation SkuldSetQuantities($input: InventorySetQuantitiesInput!) "
        "{ inventorySetQuantities(input: $input) " SET_SELECTION " }";
static const char document_idempotent[] =
        "mutation SkuldSetQuantities($input: InventorySetQuantitiesInput!, $key: String!) "
        "{ inventorySetQuantities(input: $input) @idempotent(key: $key) " SET_SELECTION " }";

enum shopify_cas shopify_cas_rule(const char *version)
{
	if (version == NULL || strlen(version) != 7 || version[4] != '-')
		return 0;
	for (int i = 0; i < 7; i++)
		if (i != 4 && !isdigit((unsigned char)version[i]))
			return 0;
	int year = atoi(version);
	int month = atoi(version + 5);
	if (month != 1 && month != 4 && month != 7 && month != 10)
		return 0;
	if (year < 2026)
		return SHOPIFY_CAS_COMPARE_QUANTITY;
	if (year == 2026 && month == 1)
		return SHOPIFY_CAS_CHANGE_FROM;
	return SHOPIFY_CAS_CHANGE_FROM_REQUIRED;
}

static int fail(char *error, size_t size, const char *why)
{
	snprintf(error, size, "%s", why);
	return -1;
}

/* One InventoryQuantityInput under the version's rule, or NULL. */
static json_t *quantity_input(const struct shopify_quantity *q, enum shopify_cas rule)
{
	json_t *input = json_pack("{s:s, s:s, s:I}", "inventoryItemId", q->inventory_item,
	                          "locationId", q->location, "quantity", (json_int_t)q->quantity);
	if (input == NULL)
		return NULL;
	int ret = 0;
	if (rule == SHOPIFY_CAS_COMPARE_QUANTITY && q->shown_known)
		ret = json_object_set_new(input, "compareQuantity", json_integer(q->shown));
	else if (rule != SHOPIFY_CAS_COMPARE_QUANTITY && q->shown_known)
		ret = json_object_set_new(input, "changeFromQuantity", json_integer(q->shown));
	else if (rule != SHOPIFY_CAS_COMPARE_QUANTITY)
		ret = json_object_set_new(input, "changeFromQuantity", json_null());
	if (ret != 0) {
		json_decref(input);
		return NULL;
	}
	return input;
}

static int set_check(const struct shopify_set *set, enum shopify_cas rule, char *error, size_t size)
{
	if (rule == 0)
		return fail(error, size, "the API version is not YYYY-01|04|07|10");
	if (set->count == 0 || set->count > SHOPIFY_QUANTITIES_MAX)
		return fail(error, size, "a call sets 1 to 250 quantities");
	if (rule != SHOPIFY_CAS_COMPARE_QUANTITY &&
	    (set->idempotency_key == NULL || set->idempotency_key[0] == '\0'))
		return fail(error, size, "2026-01 and later calls carry an idempotency key");
	for (uint32_t i = 0; i < set->count; i++) {
		const struct shopify_quantity *q = &set->quantities[i];
		if (q->inventory_item == NULL || q->location == NULL)
			return fail(error, size, "a quantity lacks its inventory item or location");
		if (q->quantity < -1000000000 || q->quantity > 1000000000)
			return fail(error, size, "a quantity is outside Shopify's Int range");
		if (rule == SHOPIFY_CAS_COMPARE_QUANTITY &&
		    q->shown_known != set->quantities[0].shown_known)
			return fail(error, size,
			            "up to 2025-10 a call cannot mix compared and uncompared "
			            "quantities");
	}
	return 0;
}

char *shopify_set_body(const struct shopify_set *set, char *error, size_t error_size)
{
	enum shopify_cas rule = shopify_cas_rule(set->version);
	if (set_check(set, rule, error, error_size) != 0)
		return NULL;
	json_t *quantities = json_array();
	for (uint32_t i = 0; quantities != NULL && i < set->count; i++) {
		json_t *input = quantity_input(&set->quantities[i], rule);
		if (input == NULL || json_array_append_new(quantities, input) != 0) {
			json_decref(quantities);
			quantities = NULL;
		}
	}
	json_t *input =
	        quantities == NULL
	                ? NULL
	                : json_pack("{s:s, s:s, s:s, s:o}", "name", "available", "reason",
	                            "correction", "referenceDocumentUri",
	                            set->reference != NULL ? set->reference : "skuld://push",
	                            "quantities", quantities);
	if (input != NULL && rule == SHOPIFY_CAS_COMPARE_QUANTITY &&
	    !set->quantities[0].shown_known)
		json_object_set_new(input, "ignoreCompareQuantity", json_true());
	json_t *variables = input == NULL ? NULL : json_pack("{s:o}", "input", input);
	if (variables != NULL && rule != SHOPIFY_CAS_COMPARE_QUANTITY)
		json_object_set_new(variables, "key", json_string(set->idempotency_key));
	const char *document =
	        rule == SHOPIFY_CAS_COMPARE_QUANTITY ? document_compare : document_idempotent;
	json_t *body = variables == NULL
	                       ? NULL
	                       : json_pack("{s:s, s:o}", "query", document, "variables", variables);
	char *text = body == NULL ? NULL : json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		fail(error, error_size, "out of memory, or a string is not UTF-8");
	return text;
}

/* ---- Answers ------------------------------------------------------------- */

static const struct {
	const char *text;
	enum shopify_error_code code;
} error_codes[] = {
        {"COMPARE_QUANTITY_STALE", SHOPIFY_ERROR_STALE},
        {"CHANGE_FROM_QUANTITY_STALE", SHOPIFY_ERROR_STALE},
        {"INVALID_INVENTORY_ITEM", SHOPIFY_ERROR_UNKNOWN_ITEM},
        {"NON_MUTABLE_INVENTORY_ITEM", SHOPIFY_ERROR_UNKNOWN_ITEM},
        {"INVALID_LOCATION", SHOPIFY_ERROR_UNKNOWN_LOCATION},
        {"ITEM_NOT_STOCKED_AT_LOCATION", SHOPIFY_ERROR_NOT_STOCKED},
        {"INVALID_QUANTITY_NEGATIVE", SHOPIFY_ERROR_QUANTITY},
        {"INVALID_QUANTITY_TOO_HIGH", SHOPIFY_ERROR_QUANTITY},
        {"INVALID_QUANTITY_TOO_LOW", SHOPIFY_ERROR_QUANTITY},
        {"COMPARE_QUANTITY_REQUIRED", SHOPIFY_ERROR_COMPARE_REQUIRED},
        {"CHANGE_FROM_QUANTITY_REQUIRED", SHOPIFY_ERROR_COMPARE_REQUIRED},
        {"IDEMPOTENCY_CONCURRENT_REQUEST", SHOPIFY_ERROR_IDEMPOTENCY_BUSY},
        {"IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED", SHOPIFY_ERROR_IDEMPOTENCY_FAILED},
        {"IDEMPOTENCY_KEY_PARAMETER_MISMATCH", SHOPIFY_ERROR_IDEMPOTENCY_MISMATCH},
};

enum shopify_error_code shopify_error_code(const char *code)
{
	for (size_t i = 0; code != NULL && i < sizeof(error_codes) / sizeof(error_codes[0]); i++)
		if (strcmp(code, error_codes[i].text) == 0)
			return error_codes[i].code;
	return SHOPIFY_ERROR_OTHER;
}

static void copy_text(char *out, size_t size, const char *text)
{
	snprintf(out, size, "%s", text != NULL ? text : "");
}

/* extensions.cost, when present and numeric. */
static void cost_read(json_t *root, struct shopify_answer *answer)
{
	json_t *cost = json_object_get(json_object_get(root, "extensions"), "cost");
	json_t *status = json_object_get(cost, "throttleStatus");
	json_t *fields[] = {
	        json_object_get(cost, "requestedQueryCost"),
	        json_object_get(cost, "actualQueryCost"),
	        json_object_get(status, "currentlyAvailable"),
	        json_object_get(status, "maximumAvailable"),
	        json_object_get(status, "restoreRate"),
	};
	double *out[] = {&answer->requested_cost, &answer->actual_cost, &answer->available,
	                 &answer->maximum, &answer->restore_rate};
	/* actualQueryCost is null on a throttled call: only the status counts. */
	for (size_t i = 2; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!json_is_number(fields[i]) || json_number_value(fields[i]) < 0)
			return;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		*out[i] = json_is_number(fields[i]) ? json_number_value(fields[i]) : 0;
	answer->cost_known = true;
}

/* The quantity index a userError's field path names
 * (["input", "quantities", "3", "compareQuantity"]), or -1. */
static int32_t field_index(json_t *field, uint32_t count)
{
	if (json_array_size(field) < 3)
		return -1;
	const char *list = json_string_value(json_array_get(field, 1));
	const char *index = json_string_value(json_array_get(field, 2));
	if (list == NULL || index == NULL || strcmp(list, "quantities") != 0)
		return -1;
	char *end = NULL;
	long value = strtol(index, &end, 10);
	if (end == index || *end != '\0' || value < 0 || value >= (long)count)
		return -1;
	return (int32_t)value;
}

/* Top-level "errors": THROTTLED, or the request was refused. */
static enum shopify_outcome errors_read(json_t *errors, struct shopify_answer *answer)
{
	json_t *first = json_array_get(errors, 0);
	copy_text(answer->message, sizeof(answer->message),
	          json_string_value(json_object_get(first, "message")));
	size_t i;
	json_t *error;
	json_array_foreach(errors, i, error)
	{
		const char *code = json_string_value(
		        json_object_get(json_object_get(error, "extensions"), "code"));
		if (code != NULL && strcmp(code, "THROTTLED") == 0)
			return SHOPIFY_THROTTLED;
	}
	return SHOPIFY_REJECTED;
}

static enum shopify_outcome user_errors_read(json_t *list, uint32_t count,
                                             struct shopify_answer *answer)
{
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item)
	{
		if (!json_is_object(item))
			return SHOPIFY_MALFORMED;
		if (answer->error_count == SHOPIFY_QUANTITIES_MAX)
			break;
		struct shopify_error *error = &answer->errors[answer->error_count++];
		const char *code = json_string_value(json_object_get(item, "code"));
		error->index = field_index(json_object_get(item, "field"), count);
		error->code = shopify_error_code(code);
		copy_text(error->code_text, sizeof(error->code_text), code);
		copy_text(error->message, sizeof(error->message),
		          json_string_value(json_object_get(item, "message")));
	}
	return answer->error_count == 0 ? SHOPIFY_ACCEPTED : SHOPIFY_USER_ERRORS;
}

/* Parses body, reads the cost, and classifies every answer but a 200 with
 * a body to read: returns true with *data set when the caller must read
 * "data", else false with answer->outcome set. json_decref(*root) after. */
static bool answer_start(long http_status, const char *body, size_t size,
                         struct shopify_answer *answer, json_t **root, json_t **data)
{
	memset(answer, 0, sizeof(*answer));
	*root = body != NULL ? json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL) : NULL;
	*data = NULL;
	if (json_is_object(*root))
		cost_read(*root, answer);
	if (http_status == 401 || http_status == 403)
		answer->outcome = SHOPIFY_AUTH;
	else if (http_status == 404)
		answer->outcome = SHOPIFY_NOT_FOUND;
	else if (http_status == 429)
		answer->outcome = SHOPIFY_THROTTLED;
	else if (http_status >= 500 && http_status <= 599)
		answer->outcome = SHOPIFY_SERVER_ERROR;
	else if (http_status != 200 || !json_is_object(*root))
		answer->outcome = SHOPIFY_MALFORMED;
	else if (json_array_size(json_object_get(*root, "errors")) > 0)
		answer->outcome = errors_read(json_object_get(*root, "errors"), answer);
	else {
		*data = json_object_get(*root, "data");
		return true;
	}
	return false;
}

void shopify_set_answer(long http_status, const char *body, size_t size, uint32_t count,
                        struct shopify_answer *answer)
{
	json_t *root, *data;
	if (answer_start(http_status, body, size, answer, &root, &data)) {
		json_t *list = json_object_get(json_object_get(data, "inventorySetQuantities"),
		                               "userErrors");
		answer->outcome = json_is_array(list) ? user_errors_read(list, count, answer)
		                                      : SHOPIFY_MALFORMED;
	}
	json_decref(root);
}

/* ---- Reconciliation ------------------------------------------------------ */

static const char document_read[] =
        "query SkuldLevels($ids: [ID!]!, $location: ID!) { nodes(ids: $ids) { ... on "
        "InventoryItem { id inventoryLevel(locationId: $location) { quantities(names: "
        "[\"available\"]) { name quantity } } } } }";

char *shopify_read_body(const char *const *items, uint32_t count, const char *location, char *error,
                        size_t error_size)
{
	if (count == 0 || count > SHOPIFY_READ_MAX || location == NULL) {
		fail(error, error_size, "a read names 1 to 250 items and a location");
		return NULL;
	}
	json_t *ids = json_array();
	for (uint32_t i = 0; ids != NULL && i < count; i++)
		if (items[i] == NULL || json_array_append_new(ids, json_string(items[i])) != 0) {
			json_decref(ids);
			ids = NULL;
		}
	json_t *body = ids == NULL ? NULL
	                           : json_pack("{s:s, s:{s:o, s:s}}", "query", document_read,
	                                       "variables", "ids", ids, "location", location);
	char *text = body == NULL ? NULL : json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		fail(error, error_size, "a gid is missing or not UTF-8");
	return text;
}

/* One node: null (unknown item), or {id, inventoryLevel: null | {quantities}}. */
static int level_read(json_t *node, struct shopify_level *level)
{
	memset(level, 0, sizeof(*level));
	if (json_is_null(node))
		return 0;
	if (!json_is_object(node))
		return -1;
	level->found = true;
	json_t *inventory = json_object_get(node, "inventoryLevel");
	if (inventory == NULL || json_is_null(inventory))
		return 0;
	json_t *quantities = json_object_get(inventory, "quantities");
	if (!json_is_array(quantities))
		return -1;
	size_t i;
	json_t *quantity;
	json_array_foreach(quantities, i, quantity)
	{
		const char *name = json_string_value(json_object_get(quantity, "name"));
		json_t *value = json_object_get(quantity, "quantity");
		if (name != NULL && strcmp(name, "available") == 0 && json_is_integer(value)) {
			level->stocked = true;
			level->available = json_integer_value(value);
			return 0;
		}
	}
	return -1;
}

enum shopify_outcome shopify_read_answer(long http_status, const char *body, size_t size,
                                         uint32_t count, struct shopify_level *levels,
                                         struct shopify_answer *answer)
{
	json_t *root, *data;
	if (answer_start(http_status, body, size, answer, &root, &data)) {
		json_t *nodes = json_object_get(data, "nodes");
		answer->outcome = json_is_array(nodes) && json_array_size(nodes) == count
		                          ? SHOPIFY_ACCEPTED
		                          : SHOPIFY_MALFORMED;
		for (uint32_t i = 0; answer->outcome == SHOPIFY_ACCEPTED && i < count; i++)
			if (level_read(json_array_get(nodes, i), &levels[i]) != 0)
				answer->outcome = SHOPIFY_MALFORMED;
	}
	json_decref(root);
	return answer->outcome;
}
