/*
 * gateway_poll.c — the safety-net orders poll (gateway_poll.h). HTTP through
 * channels/http.c; JSON with jansson.
 */
#define _GNU_SOURCE
#include "gateway_poll.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "gateway_shopify.h"
#include "http.h"
#include "pace.h"

#define POLL_TIMEOUT_MS 10000u
#define FIRST_COST      500.0 /* a guess until an answer says */

struct gateway_poll {
	const struct gateway_config *config;
	struct http_client *http;
	struct gateway_poll_figures figures;
	char mark_path[300];
	uint64_t mark_s;  /* the high-water mark */
	uint64_t next_ns; /* nothing before this */
	int in_pass;      /* a pass is paging */
	uint64_t pass_start_ns;
	char since[32];   /* the pass's lower bound (the mark when it began) */
	char cursor[512]; /* after this edge; "" : the first page */
	struct pace_bucket bucket;
	double cost;      /* the query's cost, as last answered */
	uint32_t attempt; /* failures in a row, for the backoff */
	uint64_t rng;
	int auth_reported;
	struct gateway_action actions[GATEWAY_LINES_MAX];
};

/* ---- The mark file ------------------------------------------------------------------ */

static void time_text(uint64_t seconds, char out[32])
{
	time_t value = (time_t)seconds;
	struct tm tm;
	gmtime_r(&value, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void gateway_mark_text(uint64_t seconds, char out[32])
{
	time_text(seconds, out);
}

int gateway_mark_store(const char *path, const char *directory_path, uint64_t mark_s)
{
	char temporary[320], text[32];
	snprintf(temporary, sizeof(temporary), "%s.new", path);
	time_text(mark_s, text);
	FILE *file = fopen(temporary, "w");
	if (file == NULL)
		return -1;
	int ok = fprintf(file, "%s\n", text) > 0;
	ok = fflush(file) == 0 && fsync(fileno(file)) == 0 && ok;
	ok = fclose(file) == 0 && ok;
	if (!ok || rename(temporary, path) != 0)
		return -1;
	int directory = open(directory_path, O_RDONLY | O_DIRECTORY);
	if (directory >= 0) {
		fsync(directory);
		close(directory);
	}
	return 0;
}

int gateway_mark_load(const char *path, uint64_t *mark_s)
{
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return errno == ENOENT ? 0 : -1;
	char line[64] = "";
	int got = fgets(line, sizeof(line), file) != NULL;
	fclose(file);
	line[strcspn(line, "\n")] = '\0';
	uint64_t ns = 0;
	if (!got || !shopify_time_parse(line, &ns))
		return -1;
	*mark_s = ns / 1000000000ull;
	return 1;
}

static int mark_write(struct gateway_poll *poll)
{
	return gateway_mark_store(poll->mark_path, poll->config->spool, poll->mark_s);
}

/* 1 read, 0 absent, -1 unreadable or not a mark. */
static int mark_read(struct gateway_poll *poll)
{
	return gateway_mark_load(poll->mark_path, &poll->mark_s);
}

struct gateway_poll *gateway_poll_open(const struct gateway_config *config, uint64_t now_s,
                                       char *error, size_t error_size)
{
	struct gateway_poll *poll = calloc(1, sizeof(*poll));
	if (poll == NULL || (poll->http = http_client_create()) == NULL) {
		snprintf(error, error_size, "out of memory");
		gateway_poll_close(poll);
		return NULL;
	}
	poll->config = config;
	snprintf(poll->mark_path, sizeof(poll->mark_path), "%s/poll.mark", config->spool);
	int read = mark_read(poll);
	if (read < 0) {
		snprintf(error, error_size, "%s: not a high-water mark (one RFC 3339 time)",
		         poll->mark_path);
		gateway_poll_close(poll);
		return NULL;
	}
	if (read == 0) {
		poll->mark_s = now_s > config->poll_overlap_s ? now_s - config->poll_overlap_s : 0;
		if (mark_write(poll) != 0) {
			snprintf(error, error_size, "%s: %s", poll->mark_path, strerror(errno));
			gateway_poll_close(poll);
			return NULL;
		}
	}
	poll->figures.mark_s = poll->mark_s;
	pace_init(&poll->bucket, 2000, 100, 0);
	poll->cost = FIRST_COST;
	poll->rng = now_s ^ 0x9e3779b97f4a7c15ull;
	return poll;
}

void gateway_poll_close(struct gateway_poll *poll)
{
	if (poll == NULL)
		return;
	http_client_destroy(poll->http);
	free(poll);
}

const struct gateway_poll_figures *gateway_poll_figures(const struct gateway_poll *poll)
{
	return &poll->figures;
}

/* ---- The query and its answer -------------------------------------------------------- */

/* An order's fields, with AGREEMENTS sales agreements (the order and its
 * edits) of SALES product sales each (both numbers as text). */
#define ORDER_FIELDS(AGREEMENTS, SALES)                                                            \
	"id legacyResourceId createdAt updatedAt cancelledAt sourceName physicalLocation { id }"   \
	" lineItems(first: 20) { pageInfo { hasNextPage } nodes { id sku quantity "                \
	"customAttributes { key value } } }"                                                       \
	" agreements(first: " AGREEMENTS ") { pageInfo { hasNextPage } nodes {"                    \
	" id reason happenedAt sales(first: " SALES ") { pageInfo { hasNextPage }"                 \
	" nodes { quantity ... on ProductSale { lineItem { id sku } } } } } }" REFUND_FIELDS

/* The order's refunds, as refunds/create carries them: their lines (restock type, line,
 * location) and the exchange of the return each closes (docs/GATEWAY.md, "The poll"). */
#define POLL_REFUNDS        5u  /* refunds read per order */
#define POLL_REFUND_LINES   10u /* lines read per refund */
#define POLL_EXCHANGE_LINES 5u  /* exchange line items read per refund */
#define REFUND_FIELDS                                                                              \
	" refunds(first: 5) { id legacyResourceId createdAt refundLineItems(first: 10) {"          \
	" pageInfo { hasNextPage } nodes { id quantity restockType location { id }"                \
	" lineItem { id sku } } } return { exchangeLineItems(first: 5) { pageInfo { hasNextPage }" \
	" nodes { id quantity lineItem { id sku } } } } }"
_Static_assert(POLL_REFUND_LINES + POLL_EXCHANGE_LINES <= GATEWAY_GROUP_MAX,
               "a refund read by the poll is one chain the ledger takes");

static const char ORDERS_QUERY[] =
        "query SkuldOrders($first: Int!, $after: String, $query: String!) {"
        " orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {"
        " pageInfo { hasNextPage endCursor }"
        " edges { cursor node { " ORDER_FIELDS("5", "10") " } } } }";

/* One order, read back for its orders/edited or orders/cancelled webhook:
 * room for more edits than a page of orders could afford, at 367
 * points (it shares the shop's bucket with the poll). */
static const char ORDER_QUERY[] =
        "query SkuldOrder($id: ID!) { order(id: $id) { " ORDER_FIELDS("10", "10") " } }";

_Static_assert(GATEWAY_POLL_LINES == 20, "the query asks for 20 line items");

char *gateway_order_body(const char *order_id)
{
	char gid[96];
	snprintf(gid, sizeof(gid), "gid://shopify/Order/%s", order_id);
	json_t *root = json_pack("{s:s,s:{s:s}}", "query", ORDER_QUERY, "variables", "id", gid);
	char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return text;
}

char *gateway_poll_body(const char *since, const char *after)
{
	char filter[64];
	snprintf(filter, sizeof(filter), "updated_at:>'%s'", since);
	json_t *variables =
	        json_pack("{s:i,s:s}", "first", (int)GATEWAY_POLL_ORDERS, "query", filter);
	if (variables != NULL && after != NULL && after[0] != '\0')
		json_object_set_new(variables, "after", json_string(after));
	json_t *root = variables != NULL ? json_pack("{s:s,s:o}", "query", ORDERS_QUERY,
	                                             "variables", variables)
	                                 : NULL;
	char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return text;
}

/* The number at the end of a gid ("gid://shopify/LineItem/123" -> "123"),
 * or a plain id as text. */
static int gid_tail(json_t *value, char out[GATEWAY_ID_SIZE])
{
	const char *text = json_string_value(value);
	if (text == NULL)
		return shopify_id_text(value, out);
	const char *slash = strrchr(text, '/');
	const char *digits = slash != NULL ? slash + 1 : text;
	size_t length = strlen(digits);
	if (length == 0 || length >= GATEWAY_ID_SIZE || strspn(digits, "0123456789") != length)
		return 0;
	if (slash != NULL && strncmp(text, "gid://shopify/", 14) != 0)
		return 0;
	snprintf(out, GATEWAY_ID_SIZE, "%s", digits);
	return 1;
}

static void cost_read(json_t *root, struct gateway_poll_page *page)
{
	json_t *cost = json_object_get(json_object_get(root, "extensions"), "cost");
	json_t *status = json_object_get(cost, "throttleStatus");
	json_t *requested = json_object_get(cost, "requestedQueryCost");
	json_t *fields[] = {json_object_get(status, "currentlyAvailable"),
	                    json_object_get(status, "maximumAvailable"),
	                    json_object_get(status, "restoreRate")};
	for (size_t i = 0; i < 3; i++)
		if (!json_is_number(fields[i]) || json_number_value(fields[i]) < 0)
			return;
	page->available = json_number_value(fields[0]);
	page->maximum = json_number_value(fields[1]);
	page->restore_rate = json_number_value(fields[2]);
	if (json_is_number(requested) && json_number_value(requested) > 0)
		page->requested_cost = json_number_value(requested);
	page->cost_known = 1;
}

static int throttled(json_t *errors)
{
	size_t i;
	json_t *error;
	json_array_foreach(errors, i, error)
	{
		const char *code = json_string_value(
		        json_object_get(json_object_get(error, "extensions"), "code"));
		if (code != NULL && strcmp(code, "THROTTLED") == 0)
			return 1;
	}
	return 0;
}

/* One change an order edit made to a line; or, with edit "", the units the
 * order itself sold on it (its ORDER agreement). */
struct edit_fact {
	char edit[GATEWAY_ID_SIZE];
	char line[GATEWAY_ID_SIZE];
	char sku[SKULD_CODE_SIZE + 1];
	int64_t quantity; /* signed: > 0 added, < 0 removed */
	uint64_t happened_ns;
};

#define EDIT_FACTS 256u

/* The ORDER_EDIT agreements of an order into facts (summed per edit and
 * line). Returns how many, or -1 with a reason in page->message when the
 * agreements are cut short (more than the query asked for) or malformed:
 * the order's edits cannot be known, so nothing of it is applied. No
 * agreements field at all: no edits. *ordered is set when the ORDER
 * agreement was read (its sales, edit "", are the order's own units). */
static int edit_facts(json_t *node, const char *order_id, struct gateway_poll_page *page,
                      struct edit_fact *facts, int *ordered)
{
	*ordered = 0;
	json_t *connection = json_object_get(node, "agreements");
	if (connection == NULL || json_is_null(connection))
		return 0;
	json_t *agreements = json_object_get(connection, "nodes");
	if (!json_is_array(agreements) ||
	    json_is_true(json_object_get(json_object_get(connection, "pageInfo"), "hasNextPage"))) {
		snprintf(page->message, sizeof(page->message),
		         "order %s: more sales agreements (edits) than one read holds", order_id);
		return -1;
	}
	uint32_t count = 0;
	size_t i, j;
	json_t *agreement, *sale;
	json_array_foreach(agreements, i, agreement)
	{
		const char *reason = json_string_value(json_object_get(agreement, "reason"));
		int original = reason != NULL && strcmp(reason, "ORDER") == 0;
		if (!original && (reason == NULL || strcmp(reason, "ORDER_EDIT") != 0))
			continue; /* refunds, returns */
		char edit[GATEWAY_ID_SIZE];
		uint64_t happened_ns = 0;
		json_t *sales = json_object_get(json_object_get(agreement, "sales"), "nodes");
		if (!gid_tail(json_object_get(agreement, "id"), edit) || !json_is_array(sales) ||
		    !shopify_time_parse(json_string_value(json_object_get(agreement, "happenedAt")),
		                        &happened_ns) ||
		    json_is_true(json_object_get(
		            json_object_get(json_object_get(agreement, "sales"), "pageInfo"),
		            "hasNextPage"))) {
			snprintf(page->message, sizeof(page->message),
			         "order %s: an edit without id, happenedAt or all its sales",
			         order_id);
			return -1;
		}
		if (original) {
			edit[0] = '\0';
			*ordered = 1;
		}
		json_array_foreach(sales, j, sale)
		{
			json_t *item = json_object_get(sale, "lineItem");
			json_t *quantity = json_object_get(sale, "quantity");
			if (item == NULL || json_is_null(item))
				continue; /* not a product sale: shipping, a fee, a tip */
			char line[GATEWAY_ID_SIZE];
			if (!gid_tail(json_object_get(item, "id"), line) ||
			    !json_is_integer(quantity) || json_integer_value(quantity) < -1000000 ||
			    json_integer_value(quantity) > 1000000) {
				snprintf(page->message, sizeof(page->message),
				         "order %s edit %s: a sale without line or quantity",
				         order_id, edit);
				return -1;
			}
			struct edit_fact *fact = NULL;
			for (uint32_t k = 0; k < count && fact == NULL; k++)
				if (strcmp(facts[k].edit, edit) == 0 &&
				    strcmp(facts[k].line, line) == 0)
					fact = &facts[k];
			if (fact == NULL) {
				if (count == EDIT_FACTS) {
					snprintf(page->message, sizeof(page->message),
					         "order %s: more edited lines than one read holds",
					         order_id);
					return -1;
				}
				fact = &facts[count++];
				memset(fact, 0, sizeof(*fact));
				snprintf(fact->edit, sizeof(fact->edit), "%s", edit);
				snprintf(fact->line, sizeof(fact->line), "%s", line);
				fact->happened_ns = happened_ns;
			}
			const char *sku = json_string_value(json_object_get(item, "sku"));
			if (sku != NULL && strlen(sku) <= SKULD_CODE_SIZE)
				snprintf(fact->sku, sizeof(fact->sku), "%s", sku);
			fact->quantity += json_integer_value(quantity);
		}
	}
	return (int)count;
}

/* The units the order itself sold on a line: its ORDER agreement's sales
 * when read (ordered), else the line's quantity less the units its edits
 * added. */
static int64_t own_units(const struct edit_fact *facts, int count, int ordered, const char *line,
                         int64_t quantity)
{
	int64_t own = ordered ? 0 : quantity;
	for (int i = 0; i < count; i++) {
		if (strcmp(facts[i].line, line) != 0)
			continue;
		if (facts[i].edit[0] == '\0')
			own += facts[i].quantity;
		else if (!ordered && facts[i].quantity > 0)
			own -= facts[i].quantity;
	}
	return own;
}

static int order_lines(json_t *node, const char *order_id, const char *location, int cancelled,
                       uint64_t created_ns, struct gateway_poll_page *page, struct edit_fact *facts,
                       struct gateway_action *actions, uint32_t room);

/* A refund that cannot be read whole: logged, counted, left to its webhook. */
static int refund_skip(struct gateway_poll_page *page, const char *order_id, const char *refund_id,
                       const char *why)
{
	fprintf(stderr, "skuld-gateway: poll: order %s refund %s: %s; left to its webhook\n",
	        order_id, refund_id[0] != '\0' ? refund_id : "?", why);
	page->skipped++;
	return -1;
}

/* The line item a refund or exchange line names: its id and SKU. */
static int refund_item(json_t *line, char id[GATEWAY_ID_SIZE], char sku[SKULD_CODE_SIZE + 1])
{
	json_t *item = json_object_get(line, "lineItem");
	const char *text = json_string_value(json_object_get(item, "sku"));
	if (!gid_tail(json_object_get(item, "id"), id) || text == NULL ||
	    strlen(text) > SKULD_CODE_SIZE)
		return 0;
	snprintf(sku, SKULD_CODE_SIZE + 1, "%s", text);
	return 1;
}

/* One refund of an order (Order.refunds[]) appended to actions[*count..room): the actions
 * its refunds/create webhook gives (gateway_shopify.c), with the same ids, so the same keys
 * and events: per line restocked RETURN an expected RETURN, CANCEL or LEGACY_RESTOCK a
 * RETURN to stock, NO_RESTOCK nothing; per exchange line item a SALE, the refund's actions
 * and these linked as one chain. Returns 0; -1 when the refund cannot be read whole (logged,
 * counted: nothing of it is added); 1 when it does not fit (*count unchanged). */
static int refund_actions(json_t *refund, const char *order_id, struct gateway_poll_page *page,
                          struct gateway_action *actions, uint32_t room, uint32_t *count)
{
	char refund_id[GATEWAY_ID_SIZE] = "";
	uint64_t created_ns = 0;
	const char *created = json_string_value(json_object_get(refund, "createdAt"));
	json_t *connection = json_object_get(refund, "refundLineItems");
	json_t *lines = json_object_get(connection, "nodes");
	json_t *exchange = json_object_get(json_object_get(refund, "return"), "exchangeLineItems");
	json_t *exchanged = json_object_get(exchange, "nodes");
	if (!(gid_tail(json_object_get(refund, "legacyResourceId"), refund_id) ||
	      gid_tail(json_object_get(refund, "id"), refund_id)) ||
	    (created != NULL && !shopify_time_parse(created, &created_ns)) ||
	    !json_is_array(lines) || (exchanged != NULL && !json_is_array(exchanged)))
		return refund_skip(page, order_id, refund_id,
		                   "no id, createdAt or refundLineItems");
	if (json_is_true(json_object_get(json_object_get(connection, "pageInfo"), "hasNextPage")) ||
	    json_is_true(json_object_get(json_object_get(exchange, "pageInfo"), "hasNextPage")))
		return refund_skip(page, order_id, refund_id,
		                   "more lines or exchange lines than the poll reads");
	uint32_t first = *count, at = *count;
	size_t i;
	json_t *line;
	json_array_foreach(lines, i, line)
	{
		const char *restock = json_string_value(json_object_get(line, "restockType"));
		json_t *quantity = json_object_get(line, "quantity");
		if (restock == NULL || !json_is_integer(quantity) ||
		    json_integer_value(quantity) < 0 || json_integer_value(quantity) > 1000000)
			return refund_skip(page, order_id, refund_id,
			                   "a line without restockType or a quantity 0..1000000");
		if (strcmp(restock, "NO_RESTOCK") == 0 || json_integer_value(quantity) == 0)
			continue;
		enum gateway_action_kind kind;
		if (strcmp(restock, "RETURN") == 0)
			kind = GATEWAY_EXPECTED_RETURN;
		else if (strcmp(restock, "CANCEL") == 0 || strcmp(restock, "LEGACY_RESTOCK") == 0)
			kind = GATEWAY_RESTOCK;
		else
			return refund_skip(page, order_id, refund_id, "a restockType not known");
		if (at == room)
			return 1;
		struct gateway_action *action = &actions[at];
		memset(action, 0, sizeof(*action));
		if (!gid_tail(json_object_get(line, "id"), action->refund_line) ||
		    !refund_item(line, action->line, action->sku))
			return refund_skip(page, order_id, refund_id,
			                   "a line without id, lineItem.id or lineItem.sku");
		action->kind = kind;
		action->quantity = json_integer_value(quantity);
		action->occurred_at = created_ns;
		snprintf(action->order, sizeof(action->order), "%s", order_id);
		snprintf(action->refund, sizeof(action->refund), "%s", refund_id);
		/* A restock at a store names it; else the online location. */
		gid_tail(json_object_get(json_object_get(line, "location"), "id"),
		         action->channel_location);
		at++;
	}
	uint32_t sales = at;
	json_array_foreach(exchanged, i, line)
	{
		json_t *quantity = json_object_get(line, "quantity");
		if (!json_is_integer(quantity) || json_integer_value(quantity) < 0 ||
		    json_integer_value(quantity) > 1000000)
			return refund_skip(page, order_id, refund_id,
			                   "an exchange line's quantity is not 0..1000000");
		if (json_integer_value(quantity) == 0)
			continue;
		if (at == room)
			return 1;
		struct gateway_action *action = &actions[at];
		memset(action, 0, sizeof(*action));
		if (!gid_tail(json_object_get(line, "id"), action->refund_line) ||
		    !refund_item(line, action->line, action->sku))
			return refund_skip(
			        page, order_id, refund_id,
			        "an exchange line without id, lineItem.id or lineItem.sku");
		action->kind = GATEWAY_EXCHANGE_SALE;
		action->quantity = json_integer_value(quantity);
		action->occurred_at = created_ns;
		snprintf(action->order, sizeof(action->order), "%s", order_id);
		snprintf(action->refund, sizeof(action->refund), "%s", refund_id);
		at++;
	}
	/* An exchange: the refund's actions and the replacements, one chain (as its webhook). */
	if (at > sales)
		for (uint32_t k = first; k + 1 < at; k++)
			actions[k].linked = true;
	*count = at;
	return 0;
}

/* One order into actions; returns how many, or -1 (logged in page) when
 * the order cannot be read. Lines without a SKU or with quantity 0 are
 * skipped (counted), as no ledger event can come of them. A line's own
 * SALE is its quantity less the units edits added; each edit's change of a
 * line is one more action, keyed by the edit. */
static int order_actions(json_t *node, struct gateway_poll_page *page,
                         struct gateway_action *actions, uint32_t room, uint64_t *updated_s)
{
	char order_id[GATEWAY_ID_SIZE], location[GATEWAY_ID_SIZE] = "";
	uint64_t created_ns = 0, updated_ns = 0, cancelled_ns = 0;
	const char *cancelled = json_string_value(json_object_get(node, "cancelledAt"));
	json_t *lines = json_object_get(json_object_get(node, "lineItems"), "nodes");
	if (!json_is_object(node) ||
	    !(gid_tail(json_object_get(node, "legacyResourceId"), order_id) ||
	      gid_tail(json_object_get(node, "id"), order_id)) ||
	    !shopify_time_parse(json_string_value(json_object_get(node, "createdAt")),
	                        &created_ns) ||
	    !shopify_time_parse(json_string_value(json_object_get(node, "updatedAt")),
	                        &updated_ns) ||
	    (cancelled != NULL && !shopify_time_parse(cancelled, &cancelled_ns)) ||
	    !json_is_array(lines)) {
		snprintf(page->message, sizeof(page->message),
		         "an order without id, createdAt, updatedAt or lineItems");
		return -1;
	}
	*updated_s = updated_ns / 1000000000ull;
	const char *source = json_string_value(json_object_get(node, "sourceName"));
	if (source != NULL && strcmp(source, "pos") == 0)
		gid_tail(json_object_get(json_object_get(node, "physicalLocation"), "id"),
		         location);
	json_t *more = json_object_get(
	        json_object_get(json_object_get(node, "lineItems"), "pageInfo"), "hasNextPage");
	if (json_is_true(more)) {
		fprintf(stderr,
		        "skuld-gateway: poll: order %s has more than %u lines; the rest is left "
		        "to its webhooks\n",
		        order_id, GATEWAY_POLL_LINES);
		page->skipped++;
	}
	struct edit_fact *facts = calloc(EDIT_FACTS, sizeof(*facts));
	if (facts == NULL) {
		snprintf(page->message, sizeof(page->message), "order %s: out of memory", order_id);
		return -1;
	}
	int ret = order_lines(node, order_id, location, cancelled != NULL, created_ns, page, facts,
	                      actions, room);
	free(facts);
	return ret;
}

/* Whether one of a GraphQL order's refunds has a refund line of line_id. */
static int refunds_name_line(json_t *refunds, const char *line_id)
{
	size_t i, k;
	json_t *refund, *line;
	json_array_foreach(refunds, i, refund)
	{
		json_array_foreach(
		        json_object_get(json_object_get(refund, "refundLineItems"), "nodes"), k,
		        line)
		{
			char id[GATEWAY_ID_SIZE];
			if (gid_tail(json_object_get(json_object_get(line, "lineItem"), "id"),
			             id) &&
			    strcmp(id, line_id) == 0)
				return 1;
		}
	}
	return 0;
}

/* The lines and edits of an order (read by order_actions) into actions. A
 * cancelled order's line its refunds name (the cancellation's refund) is its
 * SALE alone (GATEWAY_CANCEL_SALE) and its edits' changes as they are: the
 * refund gives back the units the line holds, as refunds/create does. */
static int order_lines(json_t *node, const char *order_id, const char *location, int cancelled,
                       uint64_t created_ns, struct gateway_poll_page *page, struct edit_fact *facts,
                       struct gateway_action *actions, uint32_t room)
{
	json_t *lines = json_object_get(json_object_get(node, "lineItems"), "nodes");
	json_t *refunds = json_object_get(node, "refunds");
	int ordered = 0;
	int fact_count = edit_facts(node, order_id, page, facts, &ordered);
	if (fact_count < 0)
		return -1;
	uint32_t count = 0;
	size_t i;
	json_t *line;
	json_array_foreach(lines, i, line)
	{
		json_t *quantity = json_object_get(line, "quantity");
		const char *sku = json_string_value(json_object_get(line, "sku"));
		char line_id[GATEWAY_ID_SIZE];
		if (!json_is_integer(quantity) || json_integer_value(quantity) < 0 ||
		    json_integer_value(quantity) > 1000000 ||
		    !gid_tail(json_object_get(line, "id"), line_id)) {
			snprintf(page->message, sizeof(page->message),
			         "order %s: a line without id or a quantity 0..1000000", order_id);
			return -1;
		}
		int64_t own = own_units(facts, fact_count, ordered, line_id,
		                        json_integer_value(quantity));
		if (own < 0 || own > json_integer_value(quantity)) {
			snprintf(page->message, sizeof(page->message),
			         "order %s: line %s: its own units and its edits do not add up",
			         order_id, line_id);
			return -1;
		}
		if (own == 0)
			continue;
		if (sku == NULL || strlen(sku) > SKULD_CODE_SIZE) {
			fprintf(stderr, "skuld-gateway: poll: order %s line %s has no usable SKU\n",
			        order_id, line_id);
			page->skipped++;
			continue;
		}
		if (count == room)
			return (int)room + 1; /* does not fit */
		struct gateway_action *action = &actions[count++];
		memset(action, 0, sizeof(*action));
		action->kind = !cancelled                            ? GATEWAY_SALE
		               : refunds_name_line(refunds, line_id) ? GATEWAY_CANCEL_SALE
		                                                     : GATEWAY_CANCEL;
		action->quantity = own;
		action->hold = shopify_line_hold(json_object_get(line, "customAttributes"), "key");
		action->occurred_at = created_ns;
		snprintf(action->sku, sizeof(action->sku), "%s", sku);
		snprintf(action->order, sizeof(action->order), "%s", order_id);
		snprintf(action->line, sizeof(action->line), "%s", line_id);
		snprintf(action->channel_location, sizeof(action->channel_location), "%s",
		         location);
	}
	/* The edits, after the lines: a cancellation's RETURN of a line comes
	 * before the SALE that undoes an edit's removal. */
	for (int k = 0; k < fact_count; k++) {
		const struct edit_fact *fact = &facts[k];
		if (fact->quantity == 0 || fact->edit[0] == '\0')
			continue; /* no change, or the order's own units (above) */
		if (fact->sku[0] == '\0') {
			fprintf(stderr,
			        "skuld-gateway: order %s edit %s: line %s has no usable SKU\n",
			        order_id, fact->edit, fact->line);
			page->skipped++;
			continue;
		}
		if (count == room)
			return (int)room + 1;
		struct gateway_action *action = &actions[count++];
		memset(action, 0, sizeof(*action));
		bool undone = cancelled && !refunds_name_line(refunds, fact->line);
		if (fact->quantity > 0)
			action->kind = undone ? GATEWAY_EDIT_ADD_CANCEL : GATEWAY_EDIT_ADD;
		else
			action->kind = undone ? GATEWAY_EDIT_REMOVE_CANCEL : GATEWAY_EDIT_REMOVE;
		action->quantity = fact->quantity > 0 ? fact->quantity : -fact->quantity;
		action->occurred_at = fact->happened_ns;
		snprintf(action->sku, sizeof(action->sku), "%s", fact->sku);
		snprintf(action->order, sizeof(action->order), "%s", order_id);
		snprintf(action->line, sizeof(action->line), "%s", fact->line);
		snprintf(action->refund, sizeof(action->refund), "%s", fact->edit);
		snprintf(action->channel_location, sizeof(action->channel_location), "%s",
		         location);
	}
	/* The refunds, after the sales they give back. */
	if (json_array_size(refunds) >= POLL_REFUNDS)
		fprintf(stderr,
		        "skuld-gateway: poll: order %s has %u refunds or more; any later one is "
		        "left to its webhook\n",
		        order_id, POLL_REFUNDS);
	json_t *refund;
	json_array_foreach(refunds, i, refund)
	{
		if (refund_actions(refund, order_id, page, actions, room, &count) > 0)
			return (int)room + 1;
	}
	return (int)count;
}

static void page_edges(json_t *connection, struct gateway_poll_page *page,
                       struct gateway_action *actions, uint32_t max)
{
	json_t *edges = json_object_get(connection, "edges");
	json_t *info = json_object_get(connection, "pageInfo");
	if (!json_is_array(edges) || !json_is_object(info)) {
		page->outcome = GATEWAY_POLL_FAILED;
		snprintf(page->message, sizeof(page->message), "orders without edges or pageInfo");
		return;
	}
	page->has_next = json_is_true(json_object_get(info, "hasNextPage"));
	const char *end = json_string_value(json_object_get(info, "endCursor"));
	snprintf(page->end_cursor, sizeof(page->end_cursor), "%s", end != NULL ? end : "");
	size_t i;
	json_t *edge;
	json_array_foreach(edges, i, edge)
	{
		const char *cursor = json_string_value(json_object_get(edge, "cursor"));
		if (cursor == NULL || strlen(cursor) >= sizeof(page->end_cursor)) {
			page->outcome = GATEWAY_POLL_FAILED;
			snprintf(page->message, sizeof(page->message), "an edge without a cursor");
			return;
		}
		uint64_t updated_s = 0;
		int got = order_actions(json_object_get(edge, "node"), page, &actions[page->count],
		                        max - page->count, &updated_s);
		if (got > (int)(max - page->count)) {
			/* Does not fit: this order starts the next page. */
			if (i == 0) {
				page->outcome = GATEWAY_POLL_FAILED;
				snprintf(page->message, sizeof(page->message),
				         "an order with more lines than one apply holds");
				return;
			}
			page->has_next = 1;
			return;
		}
		if (got < 0) {
			fprintf(stderr, "skuld-gateway: poll: %s\n", page->message);
			page->message[0] = '\0';
			page->skipped++;
		} else {
			page->count += (uint32_t)got;
		}
		page->orders++;
		if (updated_s > page->updated_max_s)
			page->updated_max_s = updated_s;
		snprintf(page->end_cursor, sizeof(page->end_cursor), "%s", cursor);
	}
}

void gateway_poll_read(long http_status, const char *body, size_t size,
                       struct gateway_poll_page *page, struct gateway_action *actions, uint32_t max)
{
	memset(page, 0, sizeof(*page));
	json_t *root = body != NULL ? json_loadb(body, size, 0, NULL) : NULL;
	if (root != NULL)
		cost_read(root, page);
	json_t *errors = json_object_get(root, "errors");
	if (http_status == 429 || (http_status == 200 && throttled(errors))) {
		page->outcome = GATEWAY_POLL_THROTTLED;
		snprintf(page->message, sizeof(page->message), "throttled");
	} else if (http_status == 401 || http_status == 403) {
		page->outcome = GATEWAY_POLL_AUTH;
		snprintf(page->message, sizeof(page->message), "HTTP %ld: credentials refused",
		         http_status);
	} else if (http_status != 200 || root == NULL) {
		page->outcome = GATEWAY_POLL_FAILED;
		snprintf(page->message, sizeof(page->message), "HTTP %ld%s", http_status,
		         root == NULL ? ", not JSON" : "");
	} else if (errors != NULL) {
		page->outcome = GATEWAY_POLL_FAILED;
		const char *message =
		        json_string_value(json_object_get(json_array_get(errors, 0), "message"));
		snprintf(page->message, sizeof(page->message), "GraphQL error: %.120s",
		         message != NULL ? message : "(no message)");
	} else {
		page->outcome = GATEWAY_POLL_OK;
		page_edges(json_object_get(json_object_get(root, "data"), "orders"), page, actions,
		           max);
	}
	json_decref(root);
}

int gateway_order_read(long http_status, const char *body, size_t size,
                       struct gateway_action *actions, uint32_t max, char *error, size_t error_size)
{
	struct gateway_poll_page page;
	memset(&page, 0, sizeof(page));
	json_t *root = body != NULL ? json_loadb(body, size, 0, NULL) : NULL;
	json_t *node = json_object_get(json_object_get(root, "data"), "order");
	int ret;
	json_t *errors = json_object_get(root, "errors");
	if (http_status != 200 || root == NULL || errors != NULL) {
		const char *code = json_string_value(json_object_get(
		        json_object_get(json_array_get(errors, 0), "extensions"), "code"));
		snprintf(error, error_size, "HTTP %ld%s%s", http_status,
		         root == NULL     ? ", not JSON"
		         : errors != NULL ? ", GraphQL error "
		                          : "",
		         errors != NULL ? (code != NULL ? code : "(no code)") : "");
		ret = -1;
	} else if (node == NULL || json_is_null(node)) {
		snprintf(error, error_size, "no such order");
		ret = -2;
	} else {
		uint64_t updated_s = 0;
		ret = order_actions(node, &page, actions, max, &updated_s);
		if (ret > (int)max) {
			snprintf(error, error_size, "more actions than one apply holds");
			ret = -2;
		} else if (ret < 0) {
			snprintf(error, error_size, "%s", page.message);
			ret = -2;
		}
	}
	json_decref(root);
	return ret;
}

/* ---- The step ------------------------------------------------------------------------ */

static void fail_later(struct gateway_poll *poll, uint64_t now_ns, uint64_t retry_after_ms)
{
	struct backoff_policy policy = {.base_ms = 500, .cap_ms = 60000};
	uint64_t delay_ms = backoff_delay_ms(&policy, poll->attempt, retry_after_ms, &poll->rng);
	if (poll->attempt < 16)
		poll->attempt++;
	poll->next_ns = now_ns + delay_ms * 1000000ull;
}

static void learn(struct gateway_poll *poll, const struct gateway_poll_page *page, uint64_t now_ns)
{
	if (!page->cost_known) {
		pace_take(&poll->bucket, poll->cost, now_ns);
		return;
	}
	pace_observe(&poll->bucket, page->available, page->maximum, page->restore_rate, now_ns);
	if (page->requested_cost > 0)
		poll->cost = page->requested_cost;
}

/* The page was applied: move the mark, and on to the next page or pass. */
static void page_done(struct gateway_poll *poll, const struct gateway_poll_page *page,
                      uint64_t now_ns)
{
	uint32_t overlap = poll->config->poll_overlap_s;
	if (page->updated_max_s > overlap && page->updated_max_s - overlap > poll->mark_s) {
		uint64_t was = poll->mark_s;
		poll->mark_s = page->updated_max_s - overlap;
		if (mark_write(poll) != 0) {
			fprintf(stderr, "skuld-gateway: poll: cannot write %s: %s\n",
			        poll->mark_path, strerror(errno));
			poll->mark_s = was; /* read again: replayed, never lost */
		}
		poll->figures.mark_s = poll->mark_s;
	}
	if (page->has_next && page->end_cursor[0] != '\0') {
		snprintf(poll->cursor, sizeof(poll->cursor), "%s", page->end_cursor);
		poll->next_ns = now_ns;
		return;
	}
	poll->in_pass = 0;
	poll->figures.passes++;
	poll->next_ns = poll->pass_start_ns + (uint64_t)poll->config->poll_s * 1000000000ull;
}

void gateway_poll_step(struct gateway_poll *poll, uint64_t now_ns, gateway_poll_apply_fn apply,
                       void *context)
{
	if (now_ns < poll->next_ns)
		return;
	if (!poll->in_pass) {
		poll->in_pass = 1;
		poll->pass_start_ns = now_ns;
		poll->cursor[0] = '\0';
		time_text(poll->mark_s, poll->since);
	}
	/* PACE_NEVER: the cost exceeds the bucket; send, and the API will say. */
	uint64_t wait_ns = pace_wait_ns(&poll->bucket, poll->cost, now_ns);
	if (wait_ns != PACE_NEVER && wait_ns > 0) {
		poll->next_ns = now_ns + wait_ns;
		return;
	}
	char *body = gateway_poll_body(poll->since, poll->cursor);
	if (body == NULL) {
		fail_later(poll, now_ns, 0);
		return;
	}
	const struct gateway_config *config = poll->config;
	char url[384], token[160];
	snprintf(url, sizeof(url), "%s/admin/api/%s/graphql.json", config->api_url,
	         config->api_version);
	snprintf(token, sizeof(token), "X-Shopify-Access-Token: %s", config->api_token);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/json", token},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = POLL_TIMEOUT_MS,
	};
	struct http_response response;
	int answered = http_call(poll->http, &request, &response) == 0;
	free(body);
	poll->figures.calls++;
	if (!answered) {
		poll->figures.failed++;
		fprintf(stderr, "skuld-gateway: poll: no answer: %s\n", response.error);
		fail_later(poll, now_ns, 0);
		return;
	}
	struct gateway_poll_page page;
	gateway_poll_read(response.status, response.body, response.body_size, &page, poll->actions,
	                  GATEWAY_LINES_MAX);
	learn(poll, &page, now_ns);
	if (page.outcome == GATEWAY_POLL_THROTTLED) {
		poll->figures.throttled++;
		pace_throttled(&poll->bucket, now_ns);
		uint64_t refill_ns = pace_wait_ns(&poll->bucket, poll->cost, now_ns);
		uint64_t after_ms = response.retry_after_ms;
		if (refill_ns != PACE_NEVER && refill_ns / 1000000ull > after_ms)
			after_ms = refill_ns / 1000000ull;
		/* Throttled is not failing: the webhooks' read-backs share the
		 * bucket. Wait for the refill, without growing the backoff, so the
		 * safety net is not starved for a minute by a burst of edits. */
		poll->next_ns = now_ns + (after_ms > 100 ? after_ms : 100) * 1000000ull;
		return;
	}
	if (page.outcome != GATEWAY_POLL_OK) {
		poll->figures.failed++;
		if (page.outcome != GATEWAY_POLL_AUTH || !poll->auth_reported)
			fprintf(stderr, "skuld-gateway: poll: %s\n", page.message);
		poll->auth_reported = page.outcome == GATEWAY_POLL_AUTH;
		fail_later(poll, now_ns, response.retry_after_ms);
		return;
	}
	poll->auth_reported = 0;
	poll->figures.orders += page.orders;
	poll->figures.skipped += page.skipped;
	if (page.count > 0 && apply(context, poll->actions, page.count) != 0) {
		/* skuld did not take them: the same page is read again later. */
		poll->figures.unapplied++;
		fail_later(poll, now_ns, 0);
		return;
	}
	poll->attempt = 0;
	page_done(poll, &page, now_ns);
}
