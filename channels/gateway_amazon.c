/*
 * gateway_amazon.c — the Amazon orders poll (gateway_amazon.h). HTTP through
 * channels/http.c; the token through amazon.h's LWA parts; JSON with
 * jansson.
 */
#define _GNU_SOURCE
#include "gateway_amazon.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amazon.h"
#include "backoff.h"
#include "gateway_shopify.h" /* shopify_id_text, shopify_time_parse: the same formats */
#include "http.h"
#include "pace.h"

#define CALL_TIMEOUT_MS 10000u
#define TOKEN_MARGIN_S  60u /* refresh this long before the token expires */

/* The published usage plans (CHANNELS.md, "Inbound"); an answer's
 * x-amzn-RateLimit-Limit corrects the rate. */
#define ORDERS_RATE  0.0167
#define ORDERS_BURST 20.0
#define ITEMS_RATE   0.5
#define ITEMS_BURST  30.0

enum phase {
	PHASE_IDLE = 0,   /* between passes */
	PHASE_ORDERS = 1, /* the next call reads a getOrders page */
	PHASE_ITEMS = 2,  /* the next call reads items of page.orders[at] */
};

struct gateway_amazon {
	const struct gateway_config *config;
	struct http_client *http;
	struct gateway_amazon_figures figures;
	char mark_path[300];
	uint64_t mark_s;
	uint64_t next_ns;
	enum phase phase;
	uint64_t pass_start_ns;
	char since[32];
	char orders_token[GATEWAY_AMAZON_TOKEN]; /* "" : the first page */
	struct gateway_amazon_page page;
	uint32_t at;                            /* the order whose items are read */
	char items_token[GATEWAY_AMAZON_TOKEN]; /* "" : its first page of items */
	uint32_t count;                         /* its actions so far */
	char access_token[AMAZON_TOKEN_SIZE];   /* "" : none yet */
	uint64_t token_expiry_ns;
	struct pace_bucket orders_bucket;
	struct pace_bucket items_bucket;
	uint32_t attempt;
	uint64_t rng;
	int auth_reported;
	struct gateway_action actions[GATEWAY_LINES_MAX];
};

/* ---- Reading answers ----------------------------------------------------------- */

static void outcome_of(long http_status, json_t *root, enum gateway_poll_outcome *outcome,
                       char *message, size_t message_size)
{
	if (http_status == 429) {
		*outcome = GATEWAY_POLL_THROTTLED;
		snprintf(message, message_size, "429 QuotaExceeded");
	} else if (http_status == 401 || http_status == 403) {
		*outcome = GATEWAY_POLL_AUTH;
		snprintf(message, message_size, "HTTP %ld: access denied", http_status);
	} else if (http_status != 200 || root == NULL) {
		*outcome = GATEWAY_POLL_FAILED;
		const char *text = json_string_value(json_object_get(
		        json_array_get(json_object_get(root, "errors"), 0), "message"));
		snprintf(message, message_size, "HTTP %ld%s%.100s", http_status,
		         root == NULL ? ", not JSON" : ": ", text != NULL ? text : "");
	} else {
		*outcome = GATEWAY_POLL_OK;
	}
}

static void token_text(json_t *value, char out[GATEWAY_AMAZON_TOKEN])
{
	const char *text = json_string_value(value);
	snprintf(out, GATEWAY_AMAZON_TOKEN, "%s",
	         text != NULL && strlen(text) < GATEWAY_AMAZON_TOKEN ? text : "");
}

void gateway_amazon_orders_read(long http_status, const char *body, size_t size,
                                struct gateway_amazon_page *page)
{
	memset(page, 0, sizeof(*page));
	json_t *root = body != NULL ? json_loadb(body, size, 0, NULL) : NULL;
	outcome_of(http_status, root, &page->outcome, page->message, sizeof(page->message));
	json_t *payload = json_object_get(root, "payload");
	json_t *orders = json_object_get(payload, "Orders");
	if (page->outcome == GATEWAY_POLL_OK && !json_is_array(orders)) {
		page->outcome = GATEWAY_POLL_FAILED;
		snprintf(page->message, sizeof(page->message), "no payload.Orders");
	}
	if (page->outcome != GATEWAY_POLL_OK) {
		json_decref(root);
		return;
	}
	if (json_array_size(orders) > GATEWAY_AMAZON_PAGE) {
		page->outcome = GATEWAY_POLL_FAILED;
		snprintf(page->message, sizeof(page->message), "more than %u orders on a page",
		         GATEWAY_AMAZON_PAGE);
		json_decref(root);
		return;
	}
	token_text(json_object_get(payload, "NextToken"), page->next_token);
	size_t i;
	json_t *node;
	json_array_foreach(orders, i, node)
	{
		struct gateway_amazon_order *order = &page->orders[page->count];
		memset(order, 0, sizeof(*order));
		const char *status = json_string_value(json_object_get(node, "OrderStatus"));
		const char *channel =
		        json_string_value(json_object_get(node, "FulfillmentChannel"));
		const char *purchase = json_string_value(json_object_get(node, "PurchaseDate"));
		uint64_t updated_ns = 0;
		if (!shopify_id_text(json_object_get(node, "AmazonOrderId"), order->id) ||
		    status == NULL || strlen(status) >= sizeof(order->status) ||
		    !shopify_time_parse(json_string_value(json_object_get(node, "LastUpdateDate")),
		                        &updated_ns) ||
		    (purchase != NULL && !shopify_time_parse(purchase, &order->purchase_ns))) {
			fprintf(stderr, "skuld-gateway: amazon: an order without AmazonOrderId, "
			                "OrderStatus "
			                "or LastUpdateDate\n");
			page->skipped++;
			continue;
		}
		snprintf(order->status, sizeof(order->status), "%s", status);
		order->merchant = channel != NULL && strcmp(channel, "MFN") == 0;
		order->updated_s = updated_ns / 1000000000ull;
		page->count++;
	}
	json_decref(root);
}

void gateway_amazon_items_read(long http_status, const char *body, size_t size,
                               const struct gateway_config *config,
                               const struct gateway_amazon_order *order,
                               struct gateway_action *actions, uint32_t max,
                               struct gateway_amazon_items *items)
{
	memset(items, 0, sizeof(*items));
	json_t *root = body != NULL ? json_loadb(body, size, 0, NULL) : NULL;
	outcome_of(http_status, root, &items->outcome, items->message, sizeof(items->message));
	json_t *payload = json_object_get(root, "payload");
	json_t *list = json_object_get(payload, "OrderItems");
	if (items->outcome == GATEWAY_POLL_OK && !json_is_array(list)) {
		items->outcome = GATEWAY_POLL_FAILED;
		snprintf(items->message, sizeof(items->message), "no payload.OrderItems");
	}
	if (items->outcome != GATEWAY_POLL_OK) {
		json_decref(root);
		return;
	}
	token_text(json_object_get(payload, "NextToken"), items->next_token);
	enum gateway_action_kind kind =
	        strcmp(order->status, "Canceled") == 0 ? GATEWAY_CANCEL : GATEWAY_SALE;
	size_t i;
	json_t *node;
	json_array_foreach(list, i, node)
	{
		json_t *quantity = json_object_get(node, "QuantityOrdered");
		const char *seller_sku = json_string_value(json_object_get(node, "SellerSKU"));
		char line[GATEWAY_ID_SIZE];
		if (!shopify_id_text(json_object_get(node, "OrderItemId"), line) ||
		    !json_is_integer(quantity) || json_integer_value(quantity) < 0 ||
		    json_integer_value(quantity) > 1000000 || seller_sku == NULL ||
		    seller_sku[0] == '\0' || strlen(seller_sku) >= GATEWAY_ID_SIZE) {
			fprintf(stderr,
			        "skuld-gateway: amazon: order %s: an item without OrderItemId, "
			        "SellerSKU or a QuantityOrdered 0..1000000\n",
			        order->id);
			items->skipped++;
			continue;
		}
		if (json_integer_value(quantity) == 0)
			continue;
		if (items->count == max) {
			items->outcome = GATEWAY_POLL_FAILED;
			snprintf(items->message, sizeof(items->message),
			         "order %s has more items than one apply holds", order->id);
			break;
		}
		struct gateway_action *action = &actions[items->count++];
		memset(action, 0, sizeof(*action));
		action->kind = kind;
		action->quantity = json_integer_value(quantity);
		action->occurred_at = order->purchase_ns;
		snprintf(action->order, sizeof(action->order), "%s", order->id);
		snprintf(action->line, sizeof(action->line), "%s", line);
		snprintf(action->listing, sizeof(action->listing), "%s", seller_sku);
		const char *sku = gateway_listing_sku(config, seller_sku);
		if (sku == NULL && strlen(seller_sku) <= SKULD_CODE_SIZE)
			sku = seller_sku; /* the SellerSKU is the SKU */
		if (sku != NULL)
			snprintf(action->sku, sizeof(action->sku), "%s", sku);
	}
	json_decref(root);
}

/* ---- The poll ------------------------------------------------------------------- */

struct gateway_amazon *gateway_amazon_open(const struct gateway_config *config, uint64_t now_s,
                                           char *error, size_t error_size)
{
	struct gateway_amazon *amazon = calloc(1, sizeof(*amazon));
	if (amazon == NULL || (amazon->http = http_client_create()) == NULL) {
		snprintf(error, error_size, "out of memory");
		gateway_amazon_close(amazon);
		return NULL;
	}
	amazon->config = config;
	snprintf(amazon->mark_path, sizeof(amazon->mark_path), "%s/amazon.mark", config->spool);
	int read = gateway_mark_load(amazon->mark_path, &amazon->mark_s);
	if (read < 0) {
		snprintf(error, error_size, "%s: not a high-water mark (one RFC 3339 time)",
		         amazon->mark_path);
		gateway_amazon_close(amazon);
		return NULL;
	}
	if (read == 0) {
		amazon->mark_s =
		        now_s > config->poll_overlap_s ? now_s - config->poll_overlap_s : 0;
		if (gateway_mark_store(amazon->mark_path, config->spool, amazon->mark_s) != 0) {
			snprintf(error, error_size, "%s: %s", amazon->mark_path, strerror(errno));
			gateway_amazon_close(amazon);
			return NULL;
		}
	}
	amazon->figures.mark_s = amazon->mark_s;
	pace_init(&amazon->orders_bucket, ORDERS_BURST, ORDERS_RATE, 0);
	pace_init(&amazon->items_bucket, ITEMS_BURST, ITEMS_RATE, 0);
	amazon->rng = now_s ^ 0x2545f4914f6cdd1dull;
	return amazon;
}

void gateway_amazon_close(struct gateway_amazon *amazon)
{
	if (amazon == NULL)
		return;
	http_client_destroy(amazon->http);
	free(amazon);
}

const struct gateway_amazon_figures *gateway_amazon_figures(const struct gateway_amazon *amazon)
{
	return &amazon->figures;
}

static void fail_later(struct gateway_amazon *amazon, uint64_t now_ns, uint64_t retry_after_ms)
{
	struct backoff_policy policy = {.base_ms = 500, .cap_ms = 60000};
	uint64_t delay_ms =
	        backoff_delay_ms(&policy, amazon->attempt, retry_after_ms, &amazon->rng);
	if (amazon->attempt < 16)
		amazon->attempt++;
	amazon->next_ns = now_ns + delay_ms * 1000000ull;
}

/* Percent-encodes text (RFC 3986 unreserved characters kept) into out.
 * Returns 0, or -1 when out is too small. */
static int url_encode(const char *text, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t used = 0;
	for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
		int plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		            (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' ||
		            *c == '~';
		if (used + (plain ? 1 : 3) >= size)
			return -1;
		if (plain) {
			out[used++] = (char)*c;
		} else {
			out[used++] = '%';
			out[used++] = hex[*c >> 4];
			out[used++] = hex[*c & 15];
		}
	}
	out[used] = '\0';
	return 0;
}

/* The bucket's rate from x-amzn-RateLimit-Limit, when the answer has one. */
static void learn_rate(struct pace_bucket *bucket, const struct http_response *response,
                       uint64_t now_ns)
{
	char *end = NULL;
	double rate = response->rate_limit[0] != '\0' ? strtod(response->rate_limit, &end) : 0;
	if (rate > 0 && rate < 1000 && end != NULL && *end == '\0')
		pace_observe(bucket, pace_level(bucket, now_ns), 0, rate, now_ns);
}

/* Refreshes the access token: one call. Returns 1 when it is usable. */
static int token_refresh(struct gateway_amazon *amazon, uint64_t now_ns)
{
	const struct gateway_config *config = amazon->config;
	char error[160], url[320];
	char *body = amazon_token_body(config->lwa_client_id, config->lwa_client_secret,
	                               config->lwa_refresh_token, error, sizeof(error));
	if (body == NULL) {
		fprintf(stderr, "skuld-gateway: amazon: token: %s\n", error);
		fail_later(amazon, now_ns, 0);
		return 0;
	}
	snprintf(url, sizeof(url), "%s/auth/o2/token", config->lwa_url);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/x-www-form-urlencoded;charset=UTF-8"},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = CALL_TIMEOUT_MS,
	};
	struct http_response response;
	int answered = http_call(amazon->http, &request, &response) == 0;
	free(body);
	amazon->figures.calls++;
	struct amazon_token token;
	if (answered)
		amazon_token_answer(response.status, response.body, response.body_size, &token);
	if (!answered || token.outcome != AMAZON_OK) {
		amazon->figures.failed++;
		fprintf(stderr, "skuld-gateway: amazon: token refresh failed: %s\n",
		        answered ? token.error.code : response.error);
		fail_later(amazon, now_ns, answered ? response.retry_after_ms : 0);
		return 0;
	}
	snprintf(amazon->access_token, sizeof(amazon->access_token), "%s", token.access_token);
	uint64_t life_s = token.expires_in_s > 2 * TOKEN_MARGIN_S
	                          ? token.expires_in_s - TOKEN_MARGIN_S
	                          : token.expires_in_s / 2 + 1;
	amazon->token_expiry_ns = now_ns + life_s * 1000000000ull;
	return 1;
}

/* One GET of the API with the access token. Returns 0 when answered. */
static int api_get(struct gateway_amazon *amazon, const char *url, struct http_response *response)
{
	char token[AMAZON_TOKEN_SIZE + 32];
	snprintf(token, sizeof(token), "x-amz-access-token: %s", amazon->access_token);
	struct http_request request = {
	        .method = "GET",
	        .url = url,
	        .headers = {token, "Accept: application/json"},
	        .timeout_ms = CALL_TIMEOUT_MS,
	};
	amazon->figures.calls++;
	if (http_call(amazon->http, &request, response) != 0) {
		amazon->figures.failed++;
		fprintf(stderr, "skuld-gateway: amazon: no answer: %s\n", response->error);
		return -1;
	}
	return 0;
}

/* A call that was not OK: throttled, refused or failed. */
static void not_ok(struct gateway_amazon *amazon, struct pace_bucket *bucket,
                   enum gateway_poll_outcome outcome, const char *message,
                   const struct http_response *response, uint64_t now_ns)
{
	if (outcome == GATEWAY_POLL_THROTTLED) {
		amazon->figures.throttled++;
		pace_throttled(bucket, now_ns);
		uint64_t refill_ns = pace_wait_ns(bucket, 1.0, now_ns);
		uint64_t after_ms = response->retry_after_ms;
		if (refill_ns != PACE_NEVER && refill_ns / 1000000ull > after_ms)
			after_ms = refill_ns / 1000000ull;
		fail_later(amazon, now_ns, after_ms);
		return;
	}
	amazon->figures.failed++;
	if (outcome == GATEWAY_POLL_AUTH)
		amazon->access_token[0] = '\0'; /* refreshed before the next call */
	if (outcome != GATEWAY_POLL_AUTH || !amazon->auth_reported)
		fprintf(stderr, "skuld-gateway: amazon: %s\n", message);
	amazon->auth_reported = outcome == GATEWAY_POLL_AUTH;
	fail_later(amazon, now_ns, response->retry_after_ms);
}

/* Every order of the page applied: move the mark, then the next page or
 * the end of the pass. */
static void page_done(struct gateway_amazon *amazon, uint64_t now_ns)
{
	uint64_t updated_max_s = 0;
	for (uint32_t i = 0; i < amazon->page.count; i++)
		if (amazon->page.orders[i].updated_s > updated_max_s)
			updated_max_s = amazon->page.orders[i].updated_s;
	uint32_t overlap = amazon->config->poll_overlap_s;
	if (updated_max_s > overlap && updated_max_s - overlap > amazon->mark_s) {
		uint64_t was = amazon->mark_s;
		amazon->mark_s = updated_max_s - overlap;
		if (gateway_mark_store(amazon->mark_path, amazon->config->spool, amazon->mark_s) !=
		    0) {
			fprintf(stderr, "skuld-gateway: amazon: cannot write %s: %s\n",
			        amazon->mark_path, strerror(errno));
			amazon->mark_s = was; /* read again: replayed, never lost */
		}
		amazon->figures.mark_s = amazon->mark_s;
	}
	if (amazon->page.next_token[0] != '\0') {
		snprintf(amazon->orders_token, sizeof(amazon->orders_token), "%s",
		         amazon->page.next_token);
		amazon->phase = PHASE_ORDERS;
		amazon->next_ns = now_ns;
		return;
	}
	amazon->phase = PHASE_IDLE;
	amazon->figures.passes++;
	amazon->next_ns = amazon->pass_start_ns + (uint64_t)amazon->config->poll_s * 1000000000ull;
}

static void orders_step(struct gateway_amazon *amazon, uint64_t now_ns)
{
	const struct gateway_config *config = amazon->config;
	uint64_t wait_ns = pace_wait_ns(&amazon->orders_bucket, 1.0, now_ns);
	if (wait_ns != PACE_NEVER && wait_ns > 0) {
		amazon->next_ns = now_ns + wait_ns;
		return;
	}
	char url[4 * GATEWAY_AMAZON_TOKEN + 512], encoded[3 * GATEWAY_AMAZON_TOKEN],
	        marketplace[100];
	if (url_encode(config->marketplace, marketplace, sizeof(marketplace)) != 0)
		marketplace[0] = '\0';
	if (amazon->orders_token[0] != '\0' &&
	    url_encode(amazon->orders_token, encoded, sizeof(encoded)) == 0)
		snprintf(url, sizeof(url), "%s/orders/v0/orders?MarketplaceIds=%s&NextToken=%s",
		         config->api_url, marketplace, encoded);
	else
		snprintf(url, sizeof(url),
		         "%s/orders/v0/orders?MarketplaceIds=%s&LastUpdatedAfter=%s"
		         "&FulfillmentChannels=MFN",
		         config->api_url, marketplace, amazon->since);
	pace_take(&amazon->orders_bucket, 1.0, now_ns);
	struct http_response response;
	if (api_get(amazon, url, &response) != 0) {
		fail_later(amazon, now_ns, 0);
		return;
	}
	learn_rate(&amazon->orders_bucket, &response, now_ns);
	gateway_amazon_orders_read(response.status, response.body, response.body_size,
	                           &amazon->page);
	if (amazon->page.outcome != GATEWAY_POLL_OK) {
		not_ok(amazon, &amazon->orders_bucket, amazon->page.outcome, amazon->page.message,
		       &response, now_ns);
		return;
	}
	amazon->attempt = 0;
	amazon->auth_reported = 0;
	amazon->figures.skipped += amazon->page.skipped;
	amazon->at = 0;
	amazon->items_token[0] = '\0';
	amazon->count = 0;
	amazon->phase = PHASE_ITEMS;
	amazon->next_ns = now_ns;
}

static void items_step(struct gateway_amazon *amazon, uint64_t now_ns, gateway_poll_apply_fn apply,
                       void *context)
{
	/* Orders fulfilled by Amazon move no stock here: no call. */
	while (amazon->at < amazon->page.count && !amazon->page.orders[amazon->at].merchant) {
		amazon->figures.skipped++;
		amazon->at++;
	}
	if (amazon->at == amazon->page.count) {
		page_done(amazon, now_ns);
		return;
	}
	const struct gateway_amazon_order *order = &amazon->page.orders[amazon->at];
	uint64_t wait_ns = pace_wait_ns(&amazon->items_bucket, 1.0, now_ns);
	if (wait_ns != PACE_NEVER && wait_ns > 0) {
		amazon->next_ns = now_ns + wait_ns;
		return;
	}
	char url[4 * GATEWAY_AMAZON_TOKEN + 512], encoded[3 * GATEWAY_AMAZON_TOKEN], id[200];
	if (url_encode(order->id, id, sizeof(id)) != 0)
		id[0] = '\0';
	if (amazon->items_token[0] != '\0' &&
	    url_encode(amazon->items_token, encoded, sizeof(encoded)) == 0)
		snprintf(url, sizeof(url), "%s/orders/v0/orders/%s/orderItems?NextToken=%s",
		         amazon->config->api_url, id, encoded);
	else
		snprintf(url, sizeof(url), "%s/orders/v0/orders/%s/orderItems",
		         amazon->config->api_url, id);
	pace_take(&amazon->items_bucket, 1.0, now_ns);
	struct http_response response;
	if (api_get(amazon, url, &response) != 0) {
		fail_later(amazon, now_ns, 0);
		return;
	}
	learn_rate(&amazon->items_bucket, &response, now_ns);
	struct gateway_amazon_items items;
	gateway_amazon_items_read(response.status, response.body, response.body_size,
	                          amazon->config, order, &amazon->actions[amazon->count],
	                          GATEWAY_LINES_MAX - amazon->count, &items);
	if (items.outcome != GATEWAY_POLL_OK) {
		not_ok(amazon, &amazon->items_bucket, items.outcome, items.message, &response,
		       now_ns);
		return;
	}
	amazon->attempt = 0;
	amazon->auth_reported = 0;
	amazon->figures.skipped += items.skipped;
	amazon->count += items.count;
	if (items.next_token[0] != '\0') {
		snprintf(amazon->items_token, sizeof(amazon->items_token), "%s", items.next_token);
		amazon->next_ns = now_ns;
		return;
	}
	if (amazon->count > 0 && apply(context, amazon->actions, amazon->count) != 0) {
		/* skuld did not take them: this order's items are read again later. */
		amazon->figures.unapplied++;
		amazon->items_token[0] = '\0';
		amazon->count = 0;
		fail_later(amazon, now_ns, 0);
		return;
	}
	amazon->figures.orders++;
	amazon->at++;
	amazon->items_token[0] = '\0';
	amazon->count = 0;
	amazon->next_ns = now_ns;
}

void gateway_amazon_step(struct gateway_amazon *amazon, uint64_t now_ns,
                         gateway_poll_apply_fn apply, void *context)
{
	if (now_ns < amazon->next_ns)
		return;
	if (amazon->access_token[0] == '\0' || now_ns >= amazon->token_expiry_ns) {
		token_refresh(amazon, now_ns);
		return;
	}
	if (amazon->phase == PHASE_IDLE) {
		amazon->phase = PHASE_ORDERS;
		amazon->pass_start_ns = now_ns;
		amazon->orders_token[0] = '\0';
		gateway_mark_text(amazon->mark_s, amazon->since);
	}
	if (amazon->phase == PHASE_ORDERS)
		orders_step(amazon, now_ns);
	else
		items_step(amazon, now_ns, apply, context);
}
