/*
 * gateway_shopify.c — Shopify order webhooks (gateway_shopify.h).
 */
#define _GNU_SOURCE /* timegm */
#include "gateway_shopify.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void shopify_webhook_sign(const char *secret, const void *body, size_t size, char out[45])
{
	unsigned char digest[32];
	unsigned int length = 0;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), body, size, digest, &length);
	EVP_EncodeBlock((unsigned char *)out, digest, 32);
}

int shopify_webhook_verify(const char *secret, const void *body, size_t size, const char *signature)
{
	if (signature == NULL || strlen(signature) != 44 || secret[0] == '\0')
		return 0;
	char expected[45];
	shopify_webhook_sign(secret, body, size, expected);
	return CRYPTO_memcmp(expected, signature, 44) == 0;
}

/* An id (a JSON integer or string) as text; 0 when missing or malformed. */
int shopify_id_text(json_t *value, char out[GATEWAY_ID_SIZE])
{
	if (json_is_integer(value) && json_integer_value(value) > 0) {
		snprintf(out, GATEWAY_ID_SIZE, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
		return 1;
	}
	const char *text = json_string_value(value);
	if (text == NULL || text[0] == '\0' || strlen(text) >= GATEWAY_ID_SIZE)
		return 0;
	for (const char *c = text; *c != '\0'; c++) {
		if (*c <= 0x20 || *c > 0x7e)
			return 0;
	}
	snprintf(out, GATEWAY_ID_SIZE, "%s", text);
	return 1;
}

/* RFC 3339 ("2026-11-27T09:30:00-05:00", fraction optional) to ns. */
int shopify_time_parse(const char *text, uint64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int consumed = 0;
	if (text == NULL ||
	    sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	           &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6)
		return 0;
	const char *rest = text + consumed;
	uint64_t fraction = 0, scale = 1000000000ull;
	if (*rest == '.') {
		for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
			if (scale > 1) {
				scale /= 10;
				fraction += (uint64_t)(*rest - '0') * scale;
			}
		}
	}
	long offset = 0;
	if (*rest == '+' || *rest == '-') {
		int hours = 0, minutes = 0;
		if (sscanf(rest + 1, "%2d:%2d", &hours, &minutes) != 2 || hours > 23 ||
		    minutes > 59)
			return 0;
		offset = (hours * 60L + minutes) * 60L * (*rest == '-' ? -1 : 1);
		rest += 6;
	} else if (*rest == 'Z') {
		rest++;
	} else {
		return 0;
	}
	if (*rest != '\0' || tm.tm_year < 2000 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t seconds = timegm(&tm) - offset;
	if (seconds <= 0)
		return 0;
	*out = (uint64_t)seconds * 1000000000ull + fraction;
	return 1;
}

uint64_t shopify_line_hold(json_t *list, const char *name_field)
{
	size_t i;
	json_t *entry;
	json_array_foreach(list, i, entry)
	{
		const char *name = json_string_value(json_object_get(entry, name_field));
		if (name == NULL || strcmp(name, SHOPIFY_HOLD_PROPERTY) != 0)
			continue;
		const char *value = json_string_value(json_object_get(entry, "value"));
		uint64_t hold = 0;
		if (value == NULL || value[0] == '\0' || strlen(value) > 20)
			return 0;
		for (const char *c = value; *c != '\0'; c++) {
			if (*c < '0' || *c > '9' || hold > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
				return 0;
			hold = hold * 10 + (uint64_t)(*c - '0');
		}
		return hold;
	}
	return 0;
}

static int sku_text(json_t *value, char out[SKULD_CODE_SIZE + 1])
{
	const char *text = json_string_value(value);
	if (text == NULL || strlen(text) > SKULD_CODE_SIZE)
		return 0;
	snprintf(out, SKULD_CODE_SIZE + 1, "%s", text);
	return 1;
}

struct reader {
	struct gateway_action *actions;
	uint32_t count;
	uint32_t max;
	char *error;
	size_t error_size;
};

static int fail(struct reader *reader, const char *what)
{
	snprintf(reader->error, reader->error_size, "%s", what);
	return -1;
}

static struct gateway_action *next(struct reader *reader)
{
	if (reader->count == reader->max)
		return NULL;
	struct gateway_action *action = &reader->actions[reader->count++];
	memset(action, 0, sizeof(*action));
	return action;
}

/* The store of a POS order, or "" (online). */
static void order_location(json_t *order, char out[GATEWAY_ID_SIZE])
{
	out[0] = '\0';
	const char *source = json_string_value(json_object_get(order, "source_name"));
	if (source != NULL && strcmp(source, "pos") == 0)
		shopify_id_text(json_object_get(order, "location_id"), out);
}

/* Whether one of refunds (REST Order.refunds[]) has a refund line of line_id. */
static int refunds_name_line(json_t *refunds, const char *line_id)
{
	size_t i, k;
	json_t *refund, *line;
	json_array_foreach(refunds, i, refund)
	{
		json_array_foreach(json_object_get(refund, "refund_line_items"), k, line)
		{
			char id[GATEWAY_ID_SIZE];
			if (shopify_id_text(json_object_get(line, "line_item_id"), id) &&
			    strcmp(id, line_id) == 0)
				return 1;
		}
	}
	return 0;
}

static int refund_lines(struct reader *reader, json_t *refund, const char *order_fallback);

static int order_lines(struct reader *reader, json_t *order, enum gateway_action_kind kind)
{
	char order_id[GATEWAY_ID_SIZE], location[GATEWAY_ID_SIZE];
	if (!json_is_object(order) || !shopify_id_text(json_object_get(order, "id"), order_id))
		return fail(reader, "the order has no id");
	order_location(order, location);
	uint64_t occurred_at = 0;
	const char *created = json_string_value(json_object_get(order, "created_at"));
	if (created != NULL && !shopify_time_parse(created, &occurred_at))
		return fail(reader, "created_at is not an RFC 3339 time");
	json_t *lines = json_object_get(order, "line_items");
	if (!json_is_array(lines))
		return fail(reader, "the order has no line_items");
	/* A cancelled order's refunds (the cancellation's own among them) give back the
	 * units of the lines they name, as their refunds/create does. */
	json_t *refunds = kind == GATEWAY_CANCEL ? json_object_get(order, "refunds") : NULL;
	if (refunds != NULL && !json_is_null(refunds) && !json_is_array(refunds))
		return fail(reader, "the order's refunds is not a list");
	size_t i;
	json_t *line;
	json_array_foreach(lines, i, line)
	{
		json_t *quantity = json_object_get(line, "quantity");
		if (!json_is_integer(quantity) || json_integer_value(quantity) < 0 ||
		    json_integer_value(quantity) > 1000000)
			return fail(reader, "a line's quantity is not a whole number 0..1000000");
		if (json_integer_value(quantity) == 0)
			continue;
		struct gateway_action *action = next(reader);
		if (action == NULL)
			return fail(reader, "more lines than one delivery may carry");
		action->kind = kind;
		action->quantity = json_integer_value(quantity);
		action->occurred_at = occurred_at;
		snprintf(action->order, sizeof(action->order), "%s", order_id);
		snprintf(action->channel_location, sizeof(action->channel_location), "%s",
		         location);
		if (!shopify_id_text(json_object_get(line, "id"), action->line) ||
		    !sku_text(json_object_get(line, "sku"), action->sku))
			return fail(reader, "a line has no id, or its sku is missing or too long");
		action->hold = shopify_line_hold(json_object_get(line, "properties"), "name");
		if (kind == GATEWAY_CANCEL && refunds_name_line(refunds, action->line))
			action->kind = GATEWAY_CANCEL_SALE;
	}
	size_t k;
	json_t *refund;
	json_array_foreach(refunds, k, refund)
	{
		if (refund_lines(reader, refund, order_id) < 0)
			return -1;
	}
	return 0;
}

/* An exchange: the refund's return (refund.return) sends items out in place
 * of those coming back, exchange_line_items [{id, quantity, line_item: {id,
 * sku}}]. Each is a SALE (GATEWAY_EXCHANGE_SALE), and the refund's actions
 * and these become one linked chain: the return and the replacement apply
 * together or not at all. */
static int exchange_lines(struct reader *reader, json_t *refund, const char *refund_id,
                          const char *order_id, uint64_t occurred_at, uint32_t group)
{
	json_t *lines = json_object_get(json_object_get(refund, "return"), "exchange_line_items");
	if (lines == NULL || json_is_null(lines))
		return 0;
	if (!json_is_array(lines))
		return fail(reader, "return.exchange_line_items is not a list");
	uint32_t first = reader->count;
	size_t i;
	json_t *line;
	json_array_foreach(lines, i, line)
	{
		json_t *quantity = json_object_get(line, "quantity");
		json_t *item = json_object_get(line, "line_item");
		if (!json_is_integer(quantity) || json_integer_value(quantity) < 0 ||
		    json_integer_value(quantity) > 1000000)
			return fail(reader, "an exchange line's quantity is not 0..1000000");
		if (json_integer_value(quantity) == 0)
			continue;
		struct gateway_action *action = next(reader);
		if (action == NULL)
			return fail(reader, "more lines than one delivery may carry");
		action->kind = GATEWAY_EXCHANGE_SALE;
		action->quantity = json_integer_value(quantity);
		action->occurred_at = occurred_at;
		snprintf(action->order, sizeof(action->order), "%s", order_id);
		snprintf(action->refund, sizeof(action->refund), "%s", refund_id);
		if (!shopify_id_text(json_object_get(line, "id"), action->refund_line) ||
		    !shopify_id_text(json_object_get(item, "id"), action->line) ||
		    !sku_text(json_object_get(item, "sku"), action->sku))
			return fail(reader,
			            "an exchange line has no id, line_item.id or line_item.sku");
	}
	if (reader->count == first)
		return 0;
	/* The refund's actions (from group), then these: one chain, which must fit one. */
	if (reader->count - group > GATEWAY_GROUP_MAX) {
		snprintf(reader->error, reader->error_size,
		         "refund %s: an exchange of %u actions, more than the %u one linked chain "
		         "holds; not applied",
		         refund_id, reader->count - group, GATEWAY_GROUP_MAX);
		return -1;
	}
	for (uint32_t k = group; k + 1 < reader->count; k++)
		reader->actions[k].linked = true;
	return 0;
}

/* One refund's actions (refunds/create, or one of a cancelled order's refunds: then
 * order_fallback is the order's id, for a refund without order_id). */
static int refund_lines(struct reader *reader, json_t *refund, const char *order_fallback)
{
	uint32_t group = reader->count;
	char refund_id[GATEWAY_ID_SIZE], order_id[GATEWAY_ID_SIZE];
	json_t *order = json_object_get(refund, "order_id");
	if (order == NULL && order_fallback != NULL)
		snprintf(order_id, sizeof(order_id), "%s", order_fallback);
	else if (!shopify_id_text(order, order_id))
		order_id[0] = '\0';
	if (!json_is_object(refund) || !shopify_id_text(json_object_get(refund, "id"), refund_id) ||
	    order_id[0] == '\0' ||
	    (order_fallback != NULL && strcmp(order_id, order_fallback) != 0))
		return fail(reader, "the refund has no id or order_id");
	uint64_t occurred_at = 0;
	const char *created = json_string_value(json_object_get(refund, "created_at"));
	if (created != NULL && !shopify_time_parse(created, &occurred_at))
		return fail(reader, "created_at is not an RFC 3339 time");
	json_t *lines = json_object_get(refund, "refund_line_items");
	if (!json_is_array(lines))
		return fail(reader, "the refund has no refund_line_items");
	size_t i;
	json_t *line;
	json_array_foreach(lines, i, line)
	{
		const char *restock = json_string_value(json_object_get(line, "restock_type"));
		json_t *quantity = json_object_get(line, "quantity");
		if (restock == NULL || !json_is_integer(quantity) ||
		    json_integer_value(quantity) < 0 || json_integer_value(quantity) > 1000000)
			return fail(reader, "a refund line has no restock_type or a bad quantity");
		if (strcmp(restock, "no_restock") == 0 || json_integer_value(quantity) == 0)
			continue;
		enum gateway_action_kind kind;
		if (strcmp(restock, "return") == 0)
			kind = GATEWAY_EXPECTED_RETURN;
		else if (strcmp(restock, "cancel") == 0 || strcmp(restock, "legacy_restock") == 0)
			kind = GATEWAY_RESTOCK;
		else
			return fail(reader,
			            "a refund line's restock_type is not one Shopify sends");
		struct gateway_action *action = next(reader);
		if (action == NULL)
			return fail(reader, "more lines than one delivery may carry");
		action->kind = kind;
		action->quantity = json_integer_value(quantity);
		action->occurred_at = occurred_at;
		snprintf(action->order, sizeof(action->order), "%s", order_id);
		snprintf(action->refund, sizeof(action->refund), "%s", refund_id);
		json_t *item = json_object_get(line, "line_item");
		if (!shopify_id_text(json_object_get(line, "id"), action->refund_line) ||
		    !shopify_id_text(json_object_get(line, "line_item_id"), action->line) ||
		    !sku_text(json_object_get(item, "sku"), action->sku))
			return fail(reader,
			            "a refund line has no id, line_item_id or line_item.sku");
		/* A restock at a store names it; else the online location. */
		shopify_id_text(json_object_get(line, "location_id"), action->channel_location);
	}
	return exchange_lines(reader, refund, refund_id, order_id, occurred_at, group);
}

int shopify_webhook_order(const char *topic, const void *body, size_t size,
                          char order_id[GATEWAY_ID_SIZE], char *error, size_t error_size)
{
	int edited = topic != NULL && strcmp(topic, "orders/edited") == 0;
	if (topic == NULL || (!edited && strcmp(topic, "orders/cancelled") != 0))
		return 0;
	json_t *root = json_loadb(body, size, 0, NULL);
	json_t *id = edited ? json_object_get(json_object_get(root, "order_edit"), "order_id")
	                    : json_object_get(root, "id");
	int ok = shopify_id_text(id, order_id);
	json_decref(root);
	if (!ok) {
		snprintf(error, error_size, "%s",
		         edited ? "no order_edit.order_id" : "no order id");
		return -1;
	}
	return 1;
}

int shopify_webhook_actions(const char *topic, const void *body, size_t size,
                            struct gateway_action *actions, uint32_t max, char *error,
                            size_t error_size)
{
	struct reader reader = {
	        .actions = actions, .max = max, .error = error, .error_size = error_size};
	if (topic == NULL)
		return fail(&reader, "no X-Shopify-Topic");
	int moves = strcmp(topic, "orders/create") == 0 || strcmp(topic, "orders/cancelled") == 0 ||
	            strcmp(topic, "refunds/create") == 0;
	if (!moves)
		return 0; /* other topics move no stock */
	json_error_t parse_error;
	json_t *root = json_loadb(body, size, 0, &parse_error);
	if (root == NULL)
		return fail(&reader, "the body is not JSON");
	int ret;
	if (strcmp(topic, "refunds/create") == 0)
		ret = refund_lines(&reader, root, NULL);
	else
		ret = order_lines(&reader, root,
		                  strcmp(topic, "orders/create") == 0 ? GATEWAY_SALE
		                                                      : GATEWAY_CANCEL);
	json_decref(root);
	return ret < 0 ? -1 : (int)reader.count;
}
