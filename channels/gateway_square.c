/*
 * gateway_square.c — Square order and refund webhooks (gateway_square.h).
 */
#include "gateway_square.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_shopify.h" /* shopify_id_text, shopify_time_parse: the same formats */

void square_webhook_sign(const char *key, const char *url, const void *body, size_t size,
                         char out[45])
{
	/* Signed as one text: the URL, then the body. */
	size_t url_size = strlen(url);
	unsigned char *text = malloc(url_size + size + 1);
	unsigned char digest[32];
	unsigned int length = 0;
	if (text != NULL) {
		memcpy(text, url, url_size);
		if (size > 0)
			memcpy(text + url_size, body, size);
	}
	int ok = text != NULL &&
	         HMAC(EVP_sha256(), key, (int)strlen(key), text, url_size + size, digest,
	              &length) != NULL &&
	         length == 32;
	free(text);
	if (!ok) {
		out[0] = '\0'; /* matches no header */
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, digest, 32);
}

int square_webhook_verify(const char *key, const char *url, const void *body, size_t size,
                          const char *signature)
{
	if (signature == NULL || strlen(signature) != 44 || key[0] == '\0')
		return 0;
	char expected[45];
	square_webhook_sign(key, url, body, size, expected);
	return expected[0] != '\0' && CRYPTO_memcmp(expected, signature, 44) == 0;
}

int square_quantity_whole(const char *text, int64_t *out)
{
	if (text == NULL || text[0] < '0' || text[0] > '9')
		return 0;
	int64_t value = 0;
	const char *c = text;
	for (; *c >= '0' && *c <= '9'; c++) {
		value = value * 10 + (*c - '0');
		if (value > 1000000)
			return 0;
	}
	if (*c == '.') {
		for (c++; *c == '0'; c++)
			;
	}
	if (*c != '\0')
		return 0;
	*out = value;
	return 1;
}

static int fail(char *error, size_t error_size, const char *what)
{
	snprintf(error, error_size, "%s", what);
	return -1;
}

int square_event_read(const void *body, size_t size, struct square_event *event, char *error,
                      size_t error_size)
{
	memset(event, 0, sizeof(*event));
	json_t *root = json_loadb(body, size, 0, NULL);
	if (root == NULL)
		return fail(error, error_size, "the body is not JSON");
	const char *type = json_string_value(json_object_get(root, "type"));
	int ret = 0;
	if (type == NULL || !shopify_id_text(json_object_get(root, "event_id"), event->event_id)) {
		ret = fail(error, error_size, "the notification has no type or event_id");
		goto done;
	}
	json_t *object = json_object_get(json_object_get(root, "data"), "object");
	if (strcmp(type, "order.created") == 0 || strcmp(type, "order.updated") == 0) {
		json_t *summary = json_object_get(object, strcmp(type, "order.created") == 0
		                                                  ? "order_created"
		                                                  : "order_updated");
		if (!shopify_id_text(json_object_get(summary, "order_id"), event->order_id)) {
			ret = fail(error, error_size,
			           "an order event without data.object's order_id");
			goto done;
		}
		const char *state = json_string_value(json_object_get(summary, "state"));
		json_t *version = json_object_get(summary, "version");
		if (json_is_integer(version) && json_integer_value(version) > 0)
			event->version = json_integer_value(version);
		event->kind = SQUARE_EVENT_ORDER;
		event->moves = state == NULL || strcmp(state, "DRAFT") != 0;
	} else if (strcmp(type, "refund.created") == 0 || strcmp(type, "refund.updated") == 0) {
		json_t *refund = json_object_get(object, "refund");
		if (!shopify_id_text(json_object_get(refund, "order_id"), event->order_id)) {
			ret = fail(error, error_size,
			           "a refund event without data.object.refund.order_id");
			goto done;
		}
		const char *status = json_string_value(json_object_get(refund, "status"));
		event->kind = SQUARE_EVENT_REFUND;
		event->moves = status == NULL ||
		               (strcmp(status, "REJECTED") != 0 && strcmp(status, "FAILED") != 0);
	}
	/* The id goes into RetrieveOrder's path: Square's ids are [A-Za-z0-9_-]. */
	if (event->order_id[0] != '\0' &&
	    strspn(event->order_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                            "0123456789_-") != strlen(event->order_id))
		ret = fail(error, error_size, "the order id is not one Square gives");
done:
	json_decref(root);
	return ret;
}

struct reader {
	const struct gateway_config *config;
	struct square_order_head *head;
	struct gateway_action *actions;
	uint32_t count;
	uint32_t max;
	char *error;
	size_t error_size;
};

/* One line (a line item or a return line item) into an action. */
static int line_action(struct reader *reader, json_t *line, enum gateway_action_kind kind,
                       const char *order_id, const char *location, uint64_t occurred_at,
                       struct gateway_action **out)
{
	*out = NULL;
	int64_t quantity = 0;
	if (!square_quantity_whole(json_string_value(json_object_get(line, "quantity")), &quantity))
		return fail(reader->error, reader->error_size,
		            "a line's quantity is not a whole number 0..1000000");
	if (quantity == 0)
		return 0;
	if (reader->count == reader->max)
		return fail(reader->error, reader->error_size,
		            "more lines than one delivery may carry");
	struct gateway_action *action = &reader->actions[reader->count++];
	memset(action, 0, sizeof(*action));
	action->kind = kind;
	action->quantity = quantity;
	action->occurred_at = occurred_at;
	snprintf(action->order, sizeof(action->order), "%s", order_id);
	snprintf(action->channel_location, sizeof(action->channel_location), "%s", location);
	if (!shopify_id_text(json_object_get(line, "catalog_object_id"), action->listing))
		return fail(reader->error, reader->error_size,
		            "a line has no catalog_object_id (an ad hoc item)");
	const char *sku = gateway_listing_sku(reader->config, action->listing);
	if (sku != NULL)
		snprintf(action->sku, sizeof(action->sku), "%s", sku);
	*out = action;
	return 0;
}

static int order_read(struct reader *reader, json_t *order)
{
	char order_id[GATEWAY_ID_SIZE], location[GATEWAY_ID_SIZE] = "";
	if (!json_is_object(order) || !shopify_id_text(json_object_get(order, "id"), order_id))
		return fail(reader->error, reader->error_size, "the answer has no order.id");
	shopify_id_text(json_object_get(order, "location_id"), location);
	const char *state = json_string_value(json_object_get(order, "state"));
	if (state == NULL)
		return fail(reader->error, reader->error_size, "the order has no state");
	/* The till's time: when the sale was closed, else when it was opened. */
	uint64_t occurred_at = 0;
	const char *closed = json_string_value(json_object_get(order, "closed_at"));
	const char *created = json_string_value(json_object_get(order, "created_at"));
	if ((closed != NULL && !shopify_time_parse(closed, &occurred_at)) ||
	    (closed == NULL && created != NULL && !shopify_time_parse(created, &occurred_at)))
		return fail(reader->error, reader->error_size,
		            "closed_at or created_at is not an RFC 3339 time");
	json_t *version = json_object_get(order, "version");
	const char *updated = json_string_value(json_object_get(order, "updated_at"));
	if ((version != NULL && (!json_is_integer(version) || json_integer_value(version) < 1)) ||
	    (updated != NULL && !shopify_time_parse(updated, &reader->head->updated_at)))
		return fail(reader->error, reader->error_size,
		            "version is not a positive integer or updated_at not a time");
	reader->head->version = version != NULL ? json_integer_value(version) : 0;
	enum gateway_action_kind kind;
	if (strcmp(state, "OPEN") == 0 || strcmp(state, "COMPLETED") == 0)
		kind = GATEWAY_SALE;
	else if (strcmp(state, "CANCELED") == 0)
		kind = GATEWAY_CANCEL;
	else if (strcmp(state, "DRAFT") == 0)
		return 0;
	else
		return fail(reader->error, reader->error_size,
		            "the order's state is not one Square sends");
	reader->head->state = kind == GATEWAY_SALE ? SQUARE_ORDER_OPEN : SQUARE_ORDER_CANCELED;
	json_t *lines = json_object_get(order, "line_items");
	size_t i;
	json_t *line;
	if (lines != NULL && !json_is_array(lines))
		return fail(reader->error, reader->error_size, "line_items is not a list");
	json_array_foreach(lines, i, line)
	{
		struct gateway_action *action;
		if (line_action(reader, line, kind, order_id, location, occurred_at, &action) != 0)
			return -1;
		if (action != NULL && !shopify_id_text(json_object_get(line, "uid"), action->line))
			return fail(reader->error, reader->error_size, "a line item has no uid");
	}
	/* Items refunded: expected back, each keyed by the sold line it returns. */
	json_t *returns = json_object_get(order, "returns");
	json_t *one;
	json_array_foreach(returns, i, one)
	{
		char return_id[GATEWAY_ID_SIZE], source_order[GATEWAY_ID_SIZE];
		if (!shopify_id_text(json_object_get(one, "uid"), return_id))
			return fail(reader->error, reader->error_size, "a return has no uid");
		if (!shopify_id_text(json_object_get(one, "source_order_id"), source_order))
			snprintf(source_order, sizeof(source_order), "%s", order_id);
		size_t j;
		json_array_foreach(json_object_get(one, "return_line_items"), j, line)
		{
			struct gateway_action *action;
			if (line_action(reader, line, GATEWAY_EXPECTED_RETURN, source_order,
			                location, occurred_at, &action) != 0)
				return -1;
			if (action == NULL)
				continue;
			snprintf(action->refund, sizeof(action->refund), "%s", return_id);
			if (!shopify_id_text(json_object_get(line, "uid"), action->refund_line) ||
			    !shopify_id_text(json_object_get(line, "source_line_item_uid"),
			                     action->line))
				return fail(reader->error, reader->error_size,
				            "a return line has no uid or source_line_item_uid");
		}
	}
	return 0;
}

int square_order_actions(const struct gateway_config *config, const void *body, size_t size,
                         struct gateway_action *actions, uint32_t max, char *error,
                         size_t error_size)
{
	struct square_order_head head;
	return square_order_read(config, body, size, &head, actions, max, error, error_size);
}

int square_order_read(const struct gateway_config *config, const void *body, size_t size,
                      struct square_order_head *head, struct gateway_action *actions, uint32_t max,
                      char *error, size_t error_size)
{
	memset(head, 0, sizeof(*head));
	struct reader reader = {.config = config,
	                        .head = head,
	                        .actions = actions,
	                        .max = max,
	                        .error = error,
	                        .error_size = error_size};
	json_t *root = json_loadb(body, size, 0, NULL);
	if (root == NULL)
		return fail(error, error_size, "the answer is not JSON");
	int ret = order_read(&reader, json_object_get(root, "order"));
	json_decref(root);
	return ret < 0 ? -1 : (int)reader.count;
}

/* ---- The record of an order's lines (square_record_step) ------------------------ */

struct step {
	struct square_record *record;
	const struct square_order_head *head;
	uint32_t added; /* facts appended */
};

static struct gateway_action *fact(struct step *step, const struct gateway_action *line,
                                   enum gateway_action_kind kind, int64_t quantity)
{
	struct square_record *record = step->record;
	if (record->pending_count == GATEWAY_LINES_MAX)
		return NULL;
	struct gateway_action *out = &record->pending[record->pending_count++];
	*out = *line;
	out->kind = kind;
	out->quantity = quantity;
	step->added++;
	return out;
}

/* The difference between units (what the order says now) and what line
 * holds, keyed by the version. 0 when it does not fit. */
static int difference(struct step *step, struct gateway_action *line, int64_t units)
{
	int64_t delta = units - line->quantity;
	if (delta == 0)
		return 1;
	struct gateway_action *out =
	        fact(step, line, delta > 0 ? GATEWAY_EDIT_ADD : GATEWAY_EDIT_REMOVE,
	             delta > 0 ? delta : -delta);
	if (out == NULL)
		return 0;
	snprintf(out->refund, sizeof(out->refund), "v%lld", (long long)step->head->version);
	out->refund_line[0] = '\0';
	if (step->head->updated_at != 0)
		out->occurred_at = step->head->updated_at;
	line->quantity = units;
	return 1;
}

/* A line already recorded, as the order now says (units; cancelled). */
static int line_step(struct step *step, struct gateway_action *line, int64_t units, bool cancelled)
{
	if (line->kind == GATEWAY_CANCEL)
		return 1; /* cancelled before: its units are back */
	if (!difference(step, line, units))
		return 0;
	if (!cancelled)
		return 1;
	/* GATEWAY_CANCEL's RETURN (key "cancel", no time: byte for byte the one
	   a first sight of the cancelled line sends), of the units it holds. */
	if (line->quantity > 0) {
		struct gateway_action *out =
		        fact(step, line, GATEWAY_CANCEL_RETURN, line->quantity);
		if (out == NULL)
			return 0;
		out->occurred_at = 0;
	}
	line->kind = GATEWAY_CANCEL;
	line->quantity = 0;
	return 1;
}

static struct gateway_action *record_line(struct square_record *record, const char *uid)
{
	for (uint32_t i = 0; i < record->line_count; i++) {
		if (strcmp(record->lines[i].line, uid) == 0)
			return &record->lines[i];
	}
	return NULL;
}

int square_record_step(struct square_record *record, const struct square_order_head *head,
                       const struct gateway_action *actions, uint32_t count, char *error,
                       size_t error_size)
{
	if (head->state == SQUARE_ORDER_DRAFT)
		return 0;
	if (head->version < 1)
		return fail(error, error_size, "the order has no version");
	if (record->version != 0 && head->version <= record->version)
		return 0; /* stale or repeated: applied already */
	struct square_record *work = record;
	struct step step = {.record = work, .head = head};
	bool cancelled = head->state == SQUARE_ORDER_CANCELED;
	bool seen[GATEWAY_LINES_MAX] = {false};
	int ok = 1;
	for (uint32_t i = 0; i < count && ok; i++) {
		const struct gateway_action *action = &actions[i];
		if (action->kind != GATEWAY_SALE && action->kind != GATEWAY_CANCEL)
			continue;
		struct gateway_action *line = record_line(work, action->line);
		if (line == NULL) {
			/* First sight: the action as it is (keys "sale", "cancel"). */
			ok = work->line_count < GATEWAY_LINES_MAX &&
			     fact(&step, action, action->kind, action->quantity) != NULL;
			if (!ok)
				break;
			seen[work->line_count] = true;
			line = &work->lines[work->line_count++];
			*line = *action;
			line->quantity = cancelled ? 0 : action->quantity;
			continue;
		}
		seen[line - work->lines] = true;
		ok = line_step(&step, line, action->quantity, cancelled);
	}
	/* Lines the order no longer lists (removed, or 0 units). */
	for (uint32_t i = 0; i < work->line_count && ok; i++) {
		if (!seen[i])
			ok = line_step(&step, &work->lines[i], 0, cancelled);
	}
	if (!ok)
		return fail(error, error_size, "more changes than one delivery may carry");
	work->version = head->version;
	return (int)step.added;
}
