/*
 * gateway.c — skuld-gateway's core (gateway.h): configuration, keys, the
 * applier and the spool; a Square delivery's order is read through
 * RetrieveOrder (channels/http.c). The HTTP server is skuld_gateway.c.
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway_shopify.h"
#include "gateway_square.h"
#include "http.h"
#include "keyfile.h"
#include "skuld/skuld.h"

#define CALL_TIMEOUT  10000u
#define SPOOL_MAX     65536u /* actions waiting for their SKU, at most */
#define DELIVERY_RING 4096u  /* delivery ids remembered, to skip duplicates cheaply */
#define SKU_CACHE     16384u /* SKU -> item answers kept (a power of two) */

/* An SKU the ledger knows: codes never move to another item (LEDGER.md),
 * so a positive answer stays true and is kept; unknown ones are asked
 * again (the item may be defined meanwhile). */
struct sku_entry {
	char sku[SKULD_CODE_SIZE + 1];
	uint32_t item; /* 0: empty slot */
};

/* ---- Configuration ------------------------------------------------------------ */

/* "listing = OBJECT:SKU": a channel listing (Square catalog object) and its SKU. */
static enum keyfile_verdict listing_line(struct gateway_config *config, const char *value)
{
	const char *colon = strrchr(value, ':');
	if (colon == NULL || config->listing_count == GATEWAY_LISTINGS_MAX || colon == value ||
	    (size_t)(colon - value) >= GATEWAY_ID_SIZE || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) > SKULD_CODE_SIZE)
		return KEYFILE_BAD_VALUE;
	uint32_t at = config->listing_count++;
	snprintf(config->listing_object[at], GATEWAY_ID_SIZE, "%.*s", (int)(colon - value), value);
	snprintf(config->listing_sku[at], SKULD_CODE_SIZE + 1, "%s", colon + 1);
	return KEYFILE_OK;
}

const char *gateway_listing_sku(const struct gateway_config *config, const char *listing)
{
	for (uint32_t i = 0; i < config->listing_count; i++) {
		if (strcmp(config->listing_object[i], listing) == 0)
			return config->listing_sku[i];
	}
	return NULL;
}

static enum keyfile_verdict config_key(void *context, const char *key, const char *value)
{
	struct gateway_config *config = context;
	struct {
		const char *name;
		char *field;
		size_t size;
	} texts[] = {
	        {"listen", config->listen, sizeof(config->listen)},
	        {"server", config->server, sizeof(config->server)},
	        {"server_token", config->server_token, sizeof(config->server_token)},
	        {"client_id_path", config->client_id_path, sizeof(config->client_id_path)},
	        {"channel", config->channel, sizeof(config->channel)},
	        {"kind", config->kind, sizeof(config->kind)},
	        {"secret", config->secret, sizeof(config->secret)},
	        {"location", config->location, sizeof(config->location)},
	        {"spool", config->spool, sizeof(config->spool)},
	        {"api_url", config->api_url, sizeof(config->api_url)},
	        {"api_token", config->api_token, sizeof(config->api_token)},
	        {"api_version", config->api_version, sizeof(config->api_version)},
	        {"notification_url", config->notification_url, sizeof(config->notification_url)},
	        {"lwa_url", config->lwa_url, sizeof(config->lwa_url)},
	        {"lwa_client_id", config->lwa_client_id, sizeof(config->lwa_client_id)},
	        {"lwa_client_secret", config->lwa_client_secret, sizeof(config->lwa_client_secret)},
	        {"lwa_refresh_token", config->lwa_refresh_token, sizeof(config->lwa_refresh_token)},
	        {"marketplace", config->marketplace, sizeof(config->marketplace)},
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		if (strcmp(key, texts[i].name) == 0)
			return keyfile_text(texts[i].field, texts[i].size, value);
	}
	if (strcmp(key, "retry_s") == 0)
		return keyfile_u32(&config->retry_s, value, 1, 3600);
	if (strcmp(key, "poll_s") == 0)
		return keyfile_u32(&config->poll_s, value, 0, 86400);
	if (strcmp(key, "poll_overlap_s") == 0)
		return keyfile_u32(&config->poll_overlap_s, value, 0, 86400);
	if (strcmp(key, "pos") == 0) {
		const char *colon = strrchr(value, ':');
		if (colon == NULL || config->pos_count == GATEWAY_POS_MAX ||
		    (size_t)(colon - value) >= GATEWAY_ID_SIZE || colon == value ||
		    strlen(colon + 1) == 0 || strlen(colon + 1) > SKULD_CODE_SIZE)
			return KEYFILE_BAD_VALUE;
		uint32_t at = config->pos_count++;
		snprintf(config->pos_channel[at], GATEWAY_ID_SIZE, "%.*s", (int)(colon - value),
		         value);
		snprintf(config->pos_store[at], SKULD_CODE_SIZE + 1, "%s", colon + 1);
		return KEYFILE_OK;
	}
	if (strcmp(key, "listing") == 0)
		return listing_line(config, value);
	return KEYFILE_UNKNOWN_KEY;
}

int gateway_config_read(struct gateway_config *config, const char *path, char *error,
                        size_t error_size)
{
	memset(config, 0, sizeof(*config));
	snprintf(config->listen, sizeof(config->listen), "127.0.0.1:8787");
	snprintf(config->server, sizeof(config->server), "127.0.0.1:7878");
	snprintf(config->kind, sizeof(config->kind), "shopify");
	config->retry_s = 10;
	config->poll_overlap_s = 300;
	snprintf(config->api_version, sizeof(config->api_version), "2025-01");
	snprintf(config->lwa_url, sizeof(config->lwa_url), "https://api.amazon.com");
	snprintf(config->marketplace, sizeof(config->marketplace), "ATVPDKIKX0DER");
	int ret = keyfile_read(path, config_key, config, error, error_size);
	int amazon = strcmp(config->kind, "amazon") == 0; /* polled: no webhook secret */
	if (ret == 0 && (config->channel[0] == '\0' || (config->secret[0] == '\0' && !amazon) ||
	                 config->location[0] == '\0' || config->spool[0] == '\0')) {
		snprintf(error, error_size, "%s: channel, secret, location and spool are required",
		         path);
		ret = -1;
	}
	if (ret == 0 && amazon &&
	    (config->poll_s == 0 || config->api_url[0] == '\0' ||
	     config->lwa_client_id[0] == '\0' || config->lwa_client_secret[0] == '\0' ||
	     config->lwa_refresh_token[0] == '\0')) {
		snprintf(error, error_size,
		         "%s: kind amazon needs poll_s, api_url, lwa_client_id, lwa_client_secret "
		         "and lwa_refresh_token",
		         path);
		ret = -1;
	}
	if (ret == 0 && config->poll_s > 0 && config->api_url[0] == '\0') {
		snprintf(error, error_size, "%s: poll_s needs api_url", path);
		ret = -1;
	}
	int square = strcmp(config->kind, "square") == 0;
	if (ret == 0 && strcmp(config->kind, "shopify") != 0 && !square && !amazon) {
		snprintf(error, error_size, "%s: kind %s is not one of shopify, square, amazon",
		         path, config->kind);
		ret = -1;
	}
	if (ret == 0 && square &&
	    (config->notification_url[0] == '\0' || config->api_url[0] == '\0')) {
		snprintf(error, error_size, "%s: kind square needs notification_url and api_url",
		         path);
		ret = -1;
	}
	if (ret == 0 && square && config->poll_s > 0) {
		snprintf(error, error_size, "%s: poll_s is for kind shopify", path);
		ret = -1;
	}
	return ret;
}

skuld_u128 gateway_key(const char *channel, const struct gateway_action *action, const char *what)
{
	char document[4 * GATEWAY_ID_SIZE + 8];
	snprintf(document, sizeof(document), "%s/%s/%s/%s", action->order, action->line,
	         action->refund, action->refund_line);
	char source[48];
	snprintf(source, sizeof(source), "gateway/%s", channel);
	return skuld_key(source, document, 0, what);
}

/* ---- The gateway ----------------------------------------------------------------- */

struct gateway {
	const struct gateway_config *config;
	skuld_client *client;
	struct http_client *http; /* Square: RetrieveOrder; NULL otherwise */
	struct gateway_figures figures;
	uint32_t location;                 /* the online location's id */
	uint32_t pos_ids[GATEWAY_POS_MAX]; /* ids of the stores, 0 until looked up */
	struct gateway_action *spool;      /* [SPOOL_MAX] */
	uint32_t spooled;
	char spool_path[300];
	char deliveries[DELIVERY_RING][GATEWAY_ID_SIZE];
	uint32_t delivery_next;
	struct gateway_action actions[GATEWAY_LINES_MAX];
	struct skuld_event events[2 * GATEWAY_LINES_MAX];
	struct skuld_result results[2 * GATEWAY_LINES_MAX];
	struct sku_entry skus[SKU_CACHE];
};

static uint32_t sku_home(const char *sku)
{
	uint32_t hash = 2166136261u;
	for (const char *c = sku; *c != '\0'; c++)
		hash = (hash ^ (unsigned char)*c) * 16777619u;
	return hash & (SKU_CACHE - 1);
}

/* The item of sku: from the cache, else LOOKUP (and kept when known).
 * Returns 0, or the library's error. */
static int sku_item(struct gateway *gateway, const char *sku, uint32_t *item)
{
	uint32_t slot = sku_home(sku);
	/* A short probe: a full neighbourhood just asks the ledger. */
	for (uint32_t i = 0; i < 8; i++) {
		const struct sku_entry *entry = &gateway->skus[(slot + i) & (SKU_CACHE - 1)];
		if (entry->item != 0 && strcmp(entry->sku, sku) == 0) {
			*item = entry->item;
			return 0;
		}
	}
	int rc = skuld_lookup_sku(gateway->client, sku, item, CALL_TIMEOUT);
	if (rc != 0 || *item == 0)
		return rc;
	for (uint32_t i = 0; i < 8; i++) {
		struct sku_entry *entry = &gateway->skus[(slot + i) & (SKU_CACHE - 1)];
		if (entry->item == 0) {
			snprintf(entry->sku, sizeof(entry->sku), "%s", sku);
			entry->item = *item;
			break;
		}
	}
	return 0;
}

/* The spool file holds one JSON object per pending action; it is
 * rewritten whole (temporary file, fsync, rename) after every change. */
static int spool_write(struct gateway *gateway)
{
	char temporary[320];
	snprintf(temporary, sizeof(temporary), "%s.new", gateway->spool_path);
	FILE *file = fopen(temporary, "w");
	if (file == NULL)
		return -1;
	for (uint32_t i = 0; i < gateway->spooled; i++) {
		const struct gateway_action *action = &gateway->spool[i];
		json_t *object = json_pack(
		        "{s:i,s:s,s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:s}", "kind", (int)action->kind,
		        "sku", action->sku, "quantity", (json_int_t)action->quantity, "location",
		        action->channel_location, "occurred_at", (json_int_t)action->occurred_at,
		        "order", action->order, "line", action->line, "refund", action->refund,
		        "refund_line", action->refund_line, "listing", action->listing);
		char *text = object != NULL ? json_dumps(object, JSON_COMPACT) : NULL;
		if (text != NULL)
			fprintf(file, "%s\n", text);
		free(text);
		json_decref(object);
	}
	int ok = fflush(file) == 0 && fsync(fileno(file)) == 0;
	ok = fclose(file) == 0 && ok;
	if (!ok || rename(temporary, gateway->spool_path) != 0)
		return -1;
	int directory = open(gateway->config->spool, O_RDONLY | O_DIRECTORY);
	if (directory >= 0) {
		fsync(directory);
		close(directory);
	}
	return 0;
}

static int copy_text(char *out, size_t size, json_t *value)
{
	const char *text = json_string_value(value);
	if (text == NULL || strlen(text) >= size)
		return 0;
	snprintf(out, size, "%s", text);
	return 1;
}

static int spool_read(struct gateway *gateway, char *error, size_t error_size)
{
	FILE *file = fopen(gateway->spool_path, "r");
	if (file == NULL)
		return errno == ENOENT ? 0 : -1;
	char line[2048];
	int number = 0;
	while (fgets(line, sizeof(line), file) != NULL) {
		number++;
		json_t *object = json_loads(line, 0, NULL);
		struct gateway_action action;
		memset(&action, 0, sizeof(action));
		json_t *kind = json_object_get(object, "kind");
		json_t *quantity = json_object_get(object, "quantity");
		json_t *occurred = json_object_get(object, "occurred_at");
		int ok =
		        object != NULL && json_is_integer(kind) &&
		        json_integer_value(kind) >= GATEWAY_SALE &&
		        json_integer_value(kind) <= GATEWAY_RESTOCK && json_is_integer(quantity) &&
		        json_integer_value(quantity) > 0 && json_is_integer(occurred) &&
		        copy_text(action.sku, sizeof(action.sku), json_object_get(object, "sku")) &&
		        copy_text(action.channel_location, sizeof(action.channel_location),
		                  json_object_get(object, "location")) &&
		        copy_text(action.order, sizeof(action.order),
		                  json_object_get(object, "order")) &&
		        copy_text(action.line, sizeof(action.line),
		                  json_object_get(object, "line")) &&
		        copy_text(action.refund, sizeof(action.refund),
		                  json_object_get(object, "refund")) &&
		        copy_text(action.refund_line, sizeof(action.refund_line),
		                  json_object_get(object, "refund_line")) &&
		        (json_object_get(object, "listing") == NULL ||
		         copy_text(action.listing, sizeof(action.listing),
		                   json_object_get(object, "listing")));
		if (ok) {
			action.kind = (enum gateway_action_kind)json_integer_value(kind);
			action.quantity = json_integer_value(quantity);
			action.occurred_at = (uint64_t)json_integer_value(occurred);
		}
		json_decref(object);
		if (!ok || gateway->spooled == SPOOL_MAX) {
			snprintf(error, error_size, "%s:%d: not a spooled action (or too many)",
			         gateway->spool_path, number);
			fclose(file);
			return -1;
		}
		gateway->spool[gateway->spooled++] = action;
	}
	fclose(file);
	return 0;
}

static void sleep_ms(uint32_t ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

static int location_id(struct gateway *gateway, const char *code, uint32_t *id)
{
	struct skuld_lookup_match match;
	uint32_t count = 0;
	int rc = skuld_lookup(gateway->client, SKULD_LOOKUP_LOCATION, code, &match, 1, &count,
	                      CALL_TIMEOUT);
	*id = rc == 0 ? match.id : 0;
	return rc;
}

struct gateway *gateway_open(const struct gateway_config *config, volatile sig_atomic_t *stop,
                             char *error, size_t error_size)
{
	struct gateway *gateway = calloc(1, sizeof(*gateway));
	if (gateway == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	gateway->config = config;
	gateway->spool = calloc(SPOOL_MAX, sizeof(struct gateway_action));
	if (strcmp(config->kind, "square") == 0 &&
	    (http_global_init() != 0 || (gateway->http = http_client_create()) == NULL)) {
		snprintf(error, error_size, "libcurl did not start");
		gateway_close(gateway);
		return NULL;
	}
	snprintf(gateway->spool_path, sizeof(gateway->spool_path), "%s/pending.jsonl",
	         config->spool);
	struct skuld_options options;
	skuld_options_init(&options);
	char *address = strdup(config->server);
	options.address = address;
	options.token = config->server_token;
	options.client_name = "skuld-gateway";
	options.client_id_path = config->client_id_path[0] != '\0' ? config->client_id_path : NULL;
	int rc = gateway->spool == NULL || address == NULL
	                 ? -ENOMEM
	                 : skuld_client_create(&gateway->client, &options);
	free(address);
	if (rc != 0) {
		snprintf(error, error_size, "skuld client: %s", skuld_strerror(rc));
		gateway_close(gateway);
		return NULL;
	}
	if (spool_read(gateway, error, error_size) != 0) {
		if (error[0] == '\0')
			snprintf(error, error_size, "%s: %s", gateway->spool_path, strerror(errno));
		gateway_close(gateway);
		return NULL;
	}
	while (!*stop && (rc = skuld_client_connect(gateway->client, 2000)) != 0) {
		if (rc >= SKULD_ERR_MAGIC)
			break;
		sleep_ms(200);
	}
	if (rc == 0 && !*stop)
		rc = location_id(gateway, config->location, &gateway->location);
	if (rc != 0 || *stop || gateway->location == 0) {
		if (rc != 0)
			snprintf(error, error_size, "skuld at %s: %s", config->server,
			         skuld_strerror(rc));
		else if (!*stop)
			snprintf(error, error_size, "skuld has no location %s", config->location);
		gateway_close(gateway);
		return NULL;
	}
	return gateway;
}

void gateway_close(struct gateway *gateway)
{
	if (gateway == NULL)
		return;
	skuld_client_close(gateway->client);
	http_client_destroy(gateway->http);
	free(gateway->spool);
	free(gateway);
}

const struct gateway_figures *gateway_figures(const struct gateway *gateway)
{
	return &gateway->figures;
}

/* The skuld location of an action: a mapped store, else the online one.
 * Returns 0 when skuld did not answer. */
static int action_location(struct gateway *gateway, const struct gateway_action *action,
                           uint32_t *id)
{
	*id = gateway->location;
	if (action->channel_location[0] == '\0')
		return 0;
	for (uint32_t i = 0; i < gateway->config->pos_count; i++) {
		if (strcmp(gateway->config->pos_channel[i], action->channel_location) != 0)
			continue;
		if (gateway->pos_ids[i] == 0 &&
		    location_id(gateway, gateway->config->pos_store[i], &gateway->pos_ids[i]) != 0)
			return -1;
		if (gateway->pos_ids[i] != 0)
			*id = gateway->pos_ids[i];
		return 0;
	}
	return 0; /* a channel location not configured: the online location */
}

/* The events of one action into events; returns how many (1 or 2). */
static uint32_t action_events(struct gateway *gateway, const struct gateway_action *action,
                              uint32_t item, uint32_t location, struct skuld_event *events)
{
	const char *channel = gateway->config->channel;
	memset(events, 0, 2 * sizeof(*events));
	switch (action->kind) {
	case GATEWAY_SALE:
	case GATEWAY_CANCEL:
		skuld_event_sale(&events[0], gateway_key(channel, action, "sale"), item, location,
		                 action->quantity);
		events[0].occurred_at = action->occurred_at;
		if (action->kind == GATEWAY_SALE)
			return 1;
		/* The order's SALE, byte for byte as orders/create sends it (the
		 * same key: applied once, whichever came first; not LINKED, which
		 * would make it another event under that key), and the units
		 * back. Both are keyed, so a request cut short is completed by the
		 * delivery that comes again. */
		skuld_event_return(&events[1], gateway_key(channel, action, "cancel"), item,
		                   location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		return 2;
	case GATEWAY_RESTOCK:
		skuld_event_return(&events[0], gateway_key(channel, action, "restock"), item,
		                   location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		events[0].occurred_at = action->occurred_at;
		return 1;
	case GATEWAY_EXPECTED_RETURN:
	default:
		skuld_event_return(&events[0], gateway_key(channel, action, "expected-return"),
		                   item, location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		events[0].flags |= SKULD_EVENT_EXPECTED;
		events[0].occurred_at = action->occurred_at;
		return 1;
	}
}

/* The SKU of an action: its own, else its listing's in the map; NULL when
 * neither is known yet. */
static const char *action_sku(const struct gateway *gateway, const struct gateway_action *action)
{
	if (action->sku[0] != '\0')
		return action->sku;
	if (action->listing[0] == '\0')
		return NULL;
	return gateway_listing_sku(gateway->config, action->listing);
}

enum apply_outcome {
	APPLY_DONE = 0,   /* applied (or applied before) */
	APPLY_WAIT = 1,   /* the SKU is not in the ledger: spool it */
	APPLY_FAILED = 2, /* skuld did not answer: try the delivery again */
};

/* Applies actions[0..count): each SKU looked up, the events of the known
 * ones sent in one SUBMIT (one chain per action). waiting[i] is set for
 * the actions whose SKU is unknown. */
static enum apply_outcome apply(struct gateway *gateway, const struct gateway_action *actions,
                                uint32_t count, bool *waiting)
{
	uint32_t events = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t item = 0, location = 0;
		waiting[i] = false;
		const char *sku = action_sku(gateway, &actions[i]);
		if (sku == NULL) {
			waiting[i] = true; /* a listing not mapped yet */
			continue;
		}
		if (sku_item(gateway, sku, &item) != 0 ||
		    action_location(gateway, &actions[i], &location) != 0)
			return APPLY_FAILED;
		if (item == 0) {
			waiting[i] = true;
			continue;
		}
		events += action_events(gateway, &actions[i], item, location,
		                        &gateway->events[events]);
	}
	if (events == 0)
		return APPLY_DONE;
	if (skuld_submit(gateway->client, gateway->events, events, gateway->results, NULL,
	                 CALL_TIMEOUT) != 0)
		return APPLY_FAILED;
	for (uint32_t i = 0; i < events; i++) {
		const struct skuld_result *result = &gateway->results[i];
		if (result->flags & SKULD_RESULT_REPLAYED)
			gateway->figures.replayed++;
		else if (result->status == SKULD_OK)
			gateway->figures.applied++;
		else if (result->status != SKULD_LINKED_FAILED)
			fprintf(stderr, "skuld-gateway: %s refused: %s\n",
			        skuld_event_kind_name(gateway->events[i].kind),
			        skuld_status_name(result->status));
	}
	return APPLY_DONE;
}

static int delivery_seen(struct gateway *gateway, const char *id)
{
	if (id == NULL || id[0] == '\0' || strlen(id) >= GATEWAY_ID_SIZE)
		return 0;
	for (uint32_t i = 0; i < DELIVERY_RING; i++) {
		if (strcmp(gateway->deliveries[i], id) == 0)
			return 1;
	}
	return 0;
}

static void delivery_remember(struct gateway *gateway, const char *id)
{
	if (id == NULL || id[0] == '\0' || strlen(id) >= GATEWAY_ID_SIZE)
		return;
	snprintf(gateway->deliveries[gateway->delivery_next], GATEWAY_ID_SIZE, "%s", id);
	gateway->delivery_next = (gateway->delivery_next + 1) % DELIVERY_RING;
}

/* GET /v2/orders/{id} into gateway->actions; the count, -1 when the API
 * gave no usable answer (503: Square delivers again), -2 when the order is
 * not one the gateway reads (400). */
static int square_order(struct gateway *gateway, const char *order_id)
{
	const struct gateway_config *config = gateway->config;
	char url[384], authorization[160];
	snprintf(url, sizeof(url), "%s/v2/orders/%s", config->api_url, order_id);
	snprintf(authorization, sizeof(authorization), "Authorization: Bearer %s",
	         config->api_token);
	struct http_request request = {
	        .method = "GET",
	        .url = url,
	        .headers = {authorization, "Square-Version: " GATEWAY_SQUARE_VERSION,
	                    "Accept: application/json"},
	        .timeout_ms = CALL_TIMEOUT,
	};
	struct http_response response;
	if (http_call(gateway->http, &request, &response) != 0 || response.status != 200) {
		fprintf(stderr, "skuld-gateway: RetrieveOrder %s: %s %ld\n", order_id,
		        response.status == 0 ? response.error : "HTTP", response.status);
		return -1;
	}
	char error[160];
	int count = square_order_actions(config, response.body, response.body_size,
	                                 gateway->actions, GATEWAY_LINES_MAX, error, sizeof(error));
	if (count < 0) {
		fprintf(stderr, "skuld-gateway: order %s: %s\n", order_id, error);
		return -2;
	}
	return count;
}

/* A Square notification: signed over the notification URL and the body,
 * deduplicated by its event_id, its order read and applied. */
static int deliver_square(struct gateway *gateway, const char *signature, const void *body,
                          size_t size)
{
	if (!square_webhook_verify(gateway->config->secret, gateway->config->notification_url, body,
	                           size, signature)) {
		gateway->figures.unverified++;
		return 401;
	}
	struct square_event event;
	char error[160];
	if (square_event_read(body, size, &event, error, sizeof(error)) != 0) {
		gateway->figures.malformed++;
		fprintf(stderr, "skuld-gateway: square notification refused: %s\n", error);
		return 400;
	}
	if (delivery_seen(gateway, event.event_id)) {
		gateway->figures.duplicates++;
		return 200;
	}
	if (event.kind != SQUARE_EVENT_OTHER && event.moves) {
		int count = square_order(gateway, event.order_id);
		if (count == -2) {
			gateway->figures.malformed++;
			return 400;
		}
		if (count < 0 || gateway_apply(gateway, gateway->actions, (uint32_t)count) != 0) {
			gateway->figures.unavailable++;
			return 503;
		}
	}
	delivery_remember(gateway, event.event_id);
	return 200;
}

int gateway_deliver(struct gateway *gateway, const char *topic, const char *delivery_id,
                    const char *signature, const void *body, size_t size)
{
	gateway->figures.deliveries++;
	if (gateway->http != NULL)
		return deliver_square(gateway, signature, body, size);
	if (!shopify_webhook_verify(gateway->config->secret, body, size, signature)) {
		gateway->figures.unverified++;
		return 401;
	}
	if (delivery_seen(gateway, delivery_id)) {
		gateway->figures.duplicates++;
		return 200;
	}
	char error[160];
	int count = shopify_webhook_actions(topic, body, size, gateway->actions, GATEWAY_LINES_MAX,
	                                    error, sizeof(error));
	if (count < 0) {
		gateway->figures.malformed++;
		fprintf(stderr, "skuld-gateway: %s delivery %s refused: %s\n", topic,
		        delivery_id != NULL ? delivery_id : "-", error);
		return 400;
	}
	if (gateway_apply(gateway, gateway->actions, (uint32_t)count) != 0) {
		gateway->figures.unavailable++;
		return 503;
	}
	delivery_remember(gateway, delivery_id);
	return 200;
}

int gateway_apply(struct gateway *gateway, const struct gateway_action *actions, uint32_t count)
{
	bool waiting[GATEWAY_LINES_MAX];
	if (count > GATEWAY_LINES_MAX || apply(gateway, actions, count, waiting) != APPLY_DONE)
		return -1;
	uint32_t before = gateway->spooled;
	for (uint32_t i = 0; i < count; i++) {
		if (!waiting[i])
			continue;
		if (gateway->spooled == SPOOL_MAX) {
			gateway->spooled = before;
			return -1;
		}
		gateway->spool[gateway->spooled++] = actions[i];
		if (actions[i].sku[0] == '\0')
			fprintf(stderr,
			        "skuld-gateway: order %s line %s: listing %s is not mapped to a "
			        "SKU; kept until it is\n",
			        actions[i].order, actions[i].line, actions[i].listing);
		else
			fprintf(stderr,
			        "skuld-gateway: order %s line %s: SKU %s is not in the ledger; "
			        "kept until it is\n",
			        actions[i].order, actions[i].line, actions[i].sku);
	}
	if (gateway->spooled != before) {
		if (spool_write(gateway) != 0) {
			gateway->spooled = before;
			return -1;
		}
		gateway->figures.spooled += gateway->spooled - before;
	}
	return 0;
}

void gateway_retry(struct gateway *gateway)
{
	if (gateway->spooled == 0)
		return;
	static bool waiting[SPOOL_MAX];
	uint32_t kept = 0;
	for (uint32_t first = 0; first < gateway->spooled; first += GATEWAY_LINES_MAX) {
		uint32_t size = gateway->spooled - first < GATEWAY_LINES_MAX
		                        ? gateway->spooled - first
		                        : GATEWAY_LINES_MAX;
		if (apply(gateway, &gateway->spool[first], size, &waiting[first]) != APPLY_DONE)
			return; /* skuld away: all stay */
	}
	for (uint32_t i = 0; i < gateway->spooled; i++) {
		if (waiting[i])
			gateway->spool[kept++] = gateway->spool[i];
	}
	if (kept != gateway->spooled) {
		uint32_t was = gateway->spooled;
		gateway->spooled = kept;
		if (spool_write(gateway) != 0)
			gateway->spooled = was; /* applied ones are REPLAYED next time */
	}
}

char *gateway_pending_json(struct gateway *gateway)
{
	json_t *list = json_array();
	for (uint32_t i = 0; i < gateway->spooled; i++) {
		const struct gateway_action *action = &gateway->spool[i];
		json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:I}", "sku", action->sku,
		                                      "listing", action->listing, "order",
		                                      action->order, "line", action->line,
		                                      "quantity", (json_int_t)action->quantity));
	}
	char *text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return text;
}
