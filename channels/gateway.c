/*
 * gateway.c — skuld-gateway's core (gateway.h): configuration, keys, the
 * applier and the spool; a Square delivery's order is read through
 * RetrieveOrder (channels/http.c) and measured against its record
 * (SPOOL/square/ORDER.json, written before what it adds is submitted); a
 * line's checkout hold is committed in a request of its own, its answer
 * deciding whether the line is sold by a SALE instead. The HTTP server is
 * skuld_gateway.c.
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway_poll.h"
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
	        {"server_tls_ca", config->server_tls_ca, sizeof(config->server_tls_ca)},
	        {"server_tls_name", config->server_tls_name, sizeof(config->server_tls_name)},
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
	struct http_client *http; /* Square: RetrieveOrder; Shopify with api_url: the order read
	                             back; NULL otherwise */
	bool square;
	struct gateway_figures figures;
	uint32_t location;                 /* the online location's id */
	uint32_t pos_ids[GATEWAY_POS_MAX]; /* ids of the stores, 0 until looked up */
	struct gateway_action *spool;      /* [SPOOL_MAX] */
	struct square_record *record;      /* Square: the order being applied */
	char records_path[280];            /* Square: SPOOL/square, the order records */
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

static int copy_text(char *out, size_t size, json_t *value)
{
	const char *text = json_string_value(value);
	if (text == NULL || strlen(text) >= size)
		return 0;
	snprintf(out, size, "%s", text);
	return 1;
}

/* An action as the spool and the Square records keep it. */
static json_t *action_json(const struct gateway_action *action)
{
	return json_pack("{s:i,s:s,s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "kind",
	                 (int)action->kind, "sku", action->sku, "quantity",
	                 (json_int_t)action->quantity, "location", action->channel_location,
	                 "occurred_at", (json_int_t)action->occurred_at, "order", action->order,
	                 "line", action->line, "refund", action->refund, "refund_line",
	                 action->refund_line, "listing", action->listing, "hold",
	                 (json_int_t)action->hold, "linked", (int)action->linked);
}

/* action_json's object into *action; 1, or 0 when it is not one (quantity
 * below least). Files written before "listing" and "hold" existed read. */
static int action_parse(json_t *object, struct gateway_action *action, int64_t least)
{
	memset(action, 0, sizeof(*action));
	json_t *kind = json_object_get(object, "kind");
	json_t *quantity = json_object_get(object, "quantity");
	json_t *occurred = json_object_get(object, "occurred_at");
	json_t *hold = json_object_get(object, "hold");
	json_t *linked = json_object_get(object, "linked");
	int ok =
	        object != NULL && json_is_integer(kind) &&
	        json_integer_value(kind) >= GATEWAY_SALE &&
	        json_integer_value(kind) <= GATEWAY_ACTION_KIND_MAX && json_is_integer(quantity) &&
	        json_integer_value(quantity) >= least && json_integer_value(quantity) <= 1000000 &&
	        json_is_integer(occurred) && (hold == NULL || json_is_integer(hold)) &&
	        (linked == NULL || json_is_boolean(linked)) &&
	        copy_text(action->sku, sizeof(action->sku), json_object_get(object, "sku")) &&
	        copy_text(action->channel_location, sizeof(action->channel_location),
	                  json_object_get(object, "location")) &&
	        copy_text(action->order, sizeof(action->order), json_object_get(object, "order")) &&
	        copy_text(action->line, sizeof(action->line), json_object_get(object, "line")) &&
	        copy_text(action->refund, sizeof(action->refund),
	                  json_object_get(object, "refund")) &&
	        copy_text(action->refund_line, sizeof(action->refund_line),
	                  json_object_get(object, "refund_line")) &&
	        (json_object_get(object, "listing") == NULL ||
	         copy_text(action->listing, sizeof(action->listing),
	                   json_object_get(object, "listing")));
	if (!ok)
		return 0;
	action->kind = (enum gateway_action_kind)json_integer_value(kind);
	action->quantity = json_integer_value(quantity);
	action->occurred_at = (uint64_t)json_integer_value(occurred);
	action->hold = hold != NULL ? (uint64_t)json_integer_value(hold) : 0;
	action->linked = json_is_true(linked);
	return 1;
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
		json_t *object = action_json(&gateway->spool[i]);
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
		int ok = action_parse(object, &action, 1);
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
	uint32_t longest = gateway_group_longest(gateway->spool, gateway->spooled);
	if (longest > GATEWAY_GROUP_MAX) {
		snprintf(error, error_size,
		         "%s: a linked group of %" PRIu32 " actions, more than %u (one chain)",
		         gateway->spool_path, longest, GATEWAY_GROUP_MAX);
		return -1;
	}
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
	gateway->square = strcmp(config->kind, "square") == 0;
	snprintf(gateway->records_path, sizeof(gateway->records_path), "%s/square", config->spool);
	if (gateway->square && ((gateway->record = calloc(1, sizeof(*gateway->record))) == NULL ||
	                        (mkdir(gateway->records_path, 0700) != 0 && errno != EEXIST))) {
		snprintf(error, error_size, "%s: %s", gateway->records_path,
		         gateway->record == NULL ? "out of memory" : strerror(errno));
		gateway_close(gateway);
		return NULL;
	}
	bool reads = gateway->square ||
	             (strcmp(config->kind, "shopify") == 0 && config->api_url[0] != '\0');
	if (reads && (http_global_init() != 0 || (gateway->http = http_client_create()) == NULL)) {
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
	options.tls_ca_file = config->server_tls_ca[0] != '\0' ? config->server_tls_ca : NULL;
	options.tls_server_name =
	        config->server_tls_name[0] != '\0' ? config->server_tls_name : NULL;
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
	free(gateway->record);
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
	case GATEWAY_CANCEL_SALE:
		skuld_event_sale(&events[0], gateway_key(channel, action, "sale"), item, location,
		                 action->quantity);
		events[0].occurred_at = action->occurred_at;
		if (action->kind != GATEWAY_CANCEL)
			return 1;
		/* The order's SALE, byte for byte as orders/create sends it (the
		 * same key: applied once, whichever came first; not LINKED, which
		 * would make it another event under that key), and the units
		 * back. Both are keyed, so a request cut short is completed by the
		 * delivery that comes again. */
		skuld_event_return(&events[1], gateway_key(channel, action, "cancel"), item,
		                   location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		return 2;
	case GATEWAY_EXCHANGE_SALE:
		skuld_event_sale(&events[0], gateway_key(channel, action, "exchange-sale"), item,
		                 location, action->quantity);
		events[0].occurred_at = action->occurred_at;
		return 1;
	case GATEWAY_CANCEL_RETURN:
		/* GATEWAY_CANCEL's second event, alone: the line's SALE and edits
		 * were applied (and recorded) before. */
		skuld_event_return(&events[0], gateway_key(channel, action, "cancel"), item,
		                   location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		return 1;
	case GATEWAY_RESTOCK:
		skuld_event_return(&events[0], gateway_key(channel, action, "restock"), item,
		                   location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		events[0].occurred_at = action->occurred_at;
		return 1;
	case GATEWAY_EDIT_ADD:
	case GATEWAY_EDIT_ADD_CANCEL:
		/* An edit's change, keyed by the edit: applied once, by whichever
		 * path brings it. Cancelled: the change (same event, same key) and
		 * its undoing, in one request, as GATEWAY_CANCEL does for a line. */
		skuld_event_sale(&events[0], gateway_key(channel, action, "edit-add"), item,
		                 location, action->quantity);
		events[0].occurred_at = action->occurred_at;
		if (action->kind == GATEWAY_EDIT_ADD)
			return 1;
		skuld_event_return(&events[1], gateway_key(channel, action, "edit-add-cancel"),
		                   item, location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		return 2;
	case GATEWAY_EDIT_REMOVE:
	case GATEWAY_EDIT_REMOVE_CANCEL:
		skuld_event_return(&events[0], gateway_key(channel, action, "edit-remove"), item,
		                   location, action->quantity, SKULD_DISPOSITION_RESTOCK);
		events[0].occurred_at = action->occurred_at;
		if (action->kind == GATEWAY_EDIT_REMOVE)
			return 1;
		skuld_event_sale(&events[1], gateway_key(channel, action, "edit-remove-cancel"),
		                 item, location, action->quantity);
		return 2;
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

/* The hold a headless checkout reserved for a line (action->hold), committed
 * for the line's units: a request of its own, so that its answer decides
 * alone what happens to the line. Returns 1 when the hold is sold (now, by
 * an earlier delivery, or by the shop's own COMMIT), 0 when it is gone
 * (expired, released, unknown, holding fewer units: the caller sells the
 * line by a SALE instead), -1 when skuld did not answer. */
static int hold_commit(struct gateway *gateway, const struct gateway_action *action)
{
	struct skuld_event event;
	struct skuld_result result;
	skuld_event_commit(&event, gateway_key(gateway->config->channel, action, "commit"),
	                   action->hold, action->quantity);
	if (skuld_submit(gateway->client, &event, 1, &result, NULL, CALL_TIMEOUT) != 0)
		return -1;
	if (result.flags & SKULD_RESULT_REPLAYED) {
		gateway->figures.replayed++;
		return 1;
	}
	if (result.status == SKULD_OK) {
		gateway->figures.applied++;
		gateway->figures.holds_committed++;
		return 1;
	}
	if (result.status == SKULD_HOLD_CLOSED) {
		/* Committed or released: the hold's state tells which. */
		struct skuld_hold_record hold;
		if (skuld_query_hold(gateway->client, action->hold, &hold, CALL_TIMEOUT) != 0)
			return -1;
		if (hold.status == SKULD_OK && hold.state == SKULD_HOLD_STATE_COMMITTED)
			return 1;
	}
	fprintf(stderr,
	        "skuld-gateway: order %s line %s: hold %" PRIu64 " is gone (%s); the line is "
	        "sold by a SALE instead\n",
	        action->order, action->line, action->hold, skuld_status_name(result.status));
	return 0;
}

/* The events of actions[i] (item, location known) at gateway->events[at]:
 * its own, or for a line with a hold, the hold's COMMIT (sent at once,
 * hold_commit) and what remains: nothing for a sale, the RETURN for a
 * cancellation; the line's SALE when the hold is gone (*instead set).
 * Returns how many, or -1 when skuld did not answer. */
static int line_events(struct gateway *gateway, const struct gateway_action *action, uint32_t item,
                       uint32_t location, uint32_t at, bool *instead)
{
	*instead = false;
	struct skuld_event *events = &gateway->events[at];
	if (action->hold == 0 || (action->kind != GATEWAY_SALE && action->kind != GATEWAY_CANCEL &&
	                          action->kind != GATEWAY_CANCEL_SALE))
		return (int)action_events(gateway, action, item, location, events);
	int committed = hold_commit(gateway, action);
	if (committed < 0)
		return -1;
	struct gateway_action line = *action;
	line.hold = 0;
	uint32_t made = action_events(gateway, &line, item, location, events);
	if (!committed) {
		*instead = true; /* events[0] is the line's SALE */
		return (int)made;
	}
	if (made == 1)
		return 0;
	events[0] = events[1]; /* the cancellation's RETURN */
	return 1;
}

/* Applies actions[0..count): each SKU looked up, the events of the known
 * ones sent in one SUBMIT (one chain per action). waiting[i] is set for
 * the actions whose SKU is unknown. */
static enum apply_outcome apply(struct gateway *gateway, const struct gateway_action *actions,
                                uint32_t count, bool *waiting)
{
	uint32_t events = 0;
	bool instead[2 * GATEWAY_LINES_MAX]; /* a SALE sent because its line's hold is gone */
	uint32_t items[GATEWAY_LINES_MAX];   /* 0: the action waits for its SKU */
	for (uint32_t i = 0; i < count; i++) {
		items[i] = 0;
		const char *sku = action_sku(gateway, &actions[i]);
		if (sku != NULL && sku_item(gateway, sku, &items[i]) != 0)
			return APPLY_FAILED; /* sku NULL: a listing not mapped yet */
	}
	/* A linked group (an exchange) waits whole when one of its SKUs is unknown. */
	for (uint32_t first = 0; first < count;) {
		uint32_t last = first;
		bool wait = items[first] == 0;
		while (actions[last].linked && last + 1 < count)
			wait = wait || items[++last] == 0;
		for (uint32_t i = first; i <= last; i++)
			waiting[i] = wait;
		first = last + 1;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint32_t location = 0;
		if (waiting[i])
			continue;
		if (action_location(gateway, &actions[i], &location) != 0)
			return APPLY_FAILED;
		bool sold_instead;
		int made = line_events(gateway, &actions[i], items[i], location, events,
		                       &sold_instead);
		if (made < 0)
			return APPLY_FAILED;
		for (int k = 0; k < made; k++)
			instead[events + (uint32_t)k] = sold_instead && k == 0;
		events += (uint32_t)made;
		if (made > 0 && actions[i].linked)
			gateway->events[events - 1].flags |= SKULD_EVENT_LINKED;
	}
	/* A chain is never left open (a group cut by the end of a spool slice). */
	if (events > 0)
		gateway->events[events - 1].flags &= (uint16_t)~SKULD_EVENT_LINKED;
	if (events == 0)
		return APPLY_DONE;
	if (skuld_submit(gateway->client, gateway->events, events, gateway->results, NULL,
	                 CALL_TIMEOUT) != 0)
		return APPLY_FAILED;
	for (uint32_t i = 0; i < events; i++) {
		const struct skuld_result *result = &gateway->results[i];
		if (result->flags & SKULD_RESULT_REPLAYED)
			gateway->figures.replayed++;
		else if (result->status == SKULD_OK) {
			gateway->figures.applied++;
			gateway->figures.holds_gone += instead[i];
		} else if (result->status != SKULD_LINKED_FAILED)
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
static int square_order(struct gateway *gateway, const char *order_id,
                        struct square_order_head *head)
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
	int count = square_order_read(config, response.body, response.body_size, head,
	                              gateway->actions, GATEWAY_LINES_MAX, error, sizeof(error));
	if (count < 0) {
		fprintf(stderr, "skuld-gateway: order %s: %s\n", order_id, error);
		return -2;
	}
	return count;
}

/* Whether an order read back is cancelled (its actions give units back). */
static bool read_back_cancelled(const struct gateway_action *actions, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		if (actions[i].kind == GATEWAY_CANCEL || actions[i].kind == GATEWAY_CANCEL_SALE ||
		    actions[i].kind == GATEWAY_EDIT_ADD_CANCEL ||
		    actions[i].kind == GATEWAY_EDIT_REMOVE_CANCEL)
			return true;
	return false;
}

/* The order a Shopify orders/edited or orders/cancelled webhook names, read
 * back through the Admin API (gateway_order_body) into gateway->actions:
 * the count, -1 when the API gave no usable answer (503: Shopify delivers
 * again), -2 when the order cannot be applied (400). */
static int shopify_order(struct gateway *gateway, const char *order_id, char *error,
                         size_t error_size)
{
	const struct gateway_config *config = gateway->config;
	char *body = gateway_order_body(order_id);
	if (body == NULL)
		return -1;
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
	        .timeout_ms = CALL_TIMEOUT,
	};
	struct http_response response;
	int answered = http_call(gateway->http, &request, &response) == 0;
	free(body);
	int count = answered ? gateway_order_read(response.status, response.body,
	                                          response.body_size, gateway->actions,
	                                          GATEWAY_LINES_MAX, error, error_size)
	                     : -1;
	if (!answered)
		snprintf(error, error_size, "%s", response.error);
	if (count == -1)
		fprintf(stderr, "skuld-gateway: order %s read back: %s\n", order_id, error);
	return count;
}

/* ---- Square order records ----------------------------------------------------- */

/* SPOOL/square/ORDER.json: what the gateway applied of a Square order
 * (struct square_record), one JSON object, rewritten whole through a
 * temporary file, fsync and rename before the facts it adds are submitted.
 * The order id is Square's ([A-Za-z0-9_-], square_event_read checks). */
static void record_path(const struct gateway *gateway, const char *order_id, const char *suffix,
                        char *out, size_t size)
{
	snprintf(out, size, "%s/%s.json%s", gateway->records_path, order_id, suffix);
}

static json_t *actions_json(const struct gateway_action *actions, uint32_t count)
{
	json_t *list = json_array();
	for (uint32_t i = 0; i < count && list != NULL; i++)
		json_array_append_new(list, action_json(&actions[i]));
	return list;
}

static int actions_parse(json_t *list, struct gateway_action *actions, uint32_t *count,
                         int64_t least)
{
	size_t i;
	json_t *one;
	if (!json_is_array(list) || json_array_size(list) > GATEWAY_LINES_MAX)
		return 0;
	json_array_foreach(list, i, one)
	{
		if (!action_parse(one, &actions[i], least))
			return 0;
	}
	*count = (uint32_t)json_array_size(list);
	return 1;
}

/* Reads order_id's record into gateway->record (empty when there is none).
 * Returns 0, or -1 when it exists but cannot be read (never guessed). */
static int record_load(struct gateway *gateway, const char *order_id)
{
	struct square_record *record = gateway->record;
	memset(record, 0, offsetof(struct square_record, lines));
	record->line_count = 0;
	record->pending_count = 0;
	snprintf(record->order, sizeof(record->order), "%s", order_id);
	char path[400];
	record_path(gateway, order_id, "", path, sizeof(path));
	json_error_t parse_error;
	json_t *root = json_load_file(path, 0, &parse_error);
	if (root == NULL) {
		if (access(path, F_OK) != 0 && errno == ENOENT)
			return 0;
		fprintf(stderr, "skuld-gateway: %s: %s\n", path, parse_error.text);
		return -1;
	}
	json_t *version = json_object_get(root, "version");
	int ok = json_is_integer(version) && json_integer_value(version) >= 1 &&
	         actions_parse(json_object_get(root, "lines"), record->lines, &record->line_count,
	                       0) &&
	         actions_parse(json_object_get(root, "pending"), record->pending,
	                       &record->pending_count, 1);
	if (ok)
		record->version = json_integer_value(version);
	json_decref(root);
	if (!ok)
		fprintf(stderr, "skuld-gateway: %s is not an order record\n", path);
	return ok ? 0 : -1;
}

/* Writes gateway->record durably. Returns 0 or -1. */
static int record_store(struct gateway *gateway)
{
	const struct square_record *record = gateway->record;
	char path[400], temporary[400];
	record_path(gateway, record->order, "", path, sizeof(path));
	record_path(gateway, record->order, ".new", temporary, sizeof(temporary));
	json_t *root = json_pack("{s:s,s:I,s:o,s:o}", "order", record->order, "version",
	                         (json_int_t)record->version, "lines",
	                         actions_json(record->lines, record->line_count), "pending",
	                         actions_json(record->pending, record->pending_count));
	char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	int file =
	        text != NULL ? open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	size_t size = text != NULL ? strlen(text) : 0;
	int ok = file >= 0 && write(file, text, size) == (ssize_t)size && fsync(file) == 0;
	if (file >= 0)
		ok = close(file) == 0 && ok;
	free(text);
	if (!ok || rename(temporary, path) != 0) {
		fprintf(stderr, "skuld-gateway: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	int directory = open(gateway->records_path, O_RDONLY | O_DIRECTORY);
	if (directory >= 0) {
		fsync(directory);
		close(directory);
	}
	return 0;
}

/* Applies the record's pending facts; on success they are no longer
 * pending (the record is rewritten; if that fails they are sent again
 * later and REPLAYED). Returns 0, or -1 when skuld did not take them. */
static int record_flush(struct gateway *gateway)
{
	struct square_record *record = gateway->record;
	if (record->pending_count == 0)
		return 0;
	if (gateway_apply(gateway, record->pending, record->pending_count) != 0)
		return -1;
	record->pending_count = 0;
	record_store(gateway);
	return 0;
}

/* The order read (head, gateway->actions[0..count)) against its record:
 * what is still pending first, then the facts of a newer version, recorded
 * before they are sent; the returns (keyed on their own) after. Returns 0,
 * -1 (503: try again), -2 (400: facts that do not fit). */
static int square_apply(struct gateway *gateway, const char *order_id,
                        const struct square_order_head *head, uint32_t count)
{
	struct square_record *record = gateway->record;
	if (record_load(gateway, order_id) != 0 || record_flush(gateway) != 0)
		return -1;
	char error[160];
	int added = square_record_step(record, head, gateway->actions, count, error, sizeof(error));
	if (added < 0) {
		fprintf(stderr, "skuld-gateway: order %s: %s\n", order_id, error);
		return -2;
	}
	if (added == 0 && head->state != SQUARE_ORDER_DRAFT && record->version > head->version)
		gateway->figures.stale++; /* read before the version applied (lagging) */
	if (added > 0 && (record_store(gateway) != 0 || record_flush(gateway) != 0))
		return -1;
	/* Returned items: each keyed by its return line, applied once on its own. */
	uint32_t returns = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (gateway->actions[i].kind == GATEWAY_EXPECTED_RETURN)
			gateway->actions[returns++] = gateway->actions[i];
	}
	return gateway_apply(gateway, gateway->actions, returns) == 0 ? 0 : -1;
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
	if (event.kind == SQUARE_EVENT_ORDER && event.moves && event.version > 0) {
		/* A notification of a version applied already, or older: nothing
		 * to read (what it said is in the ledger, or was overtaken). */
		if (record_load(gateway, event.order_id) != 0) {
			gateway->figures.unavailable++;
			return 503;
		}
		if (gateway->record->version >= event.version &&
		    gateway->record->pending_count == 0) {
			if (gateway->record->version > event.version)
				gateway->figures.stale++;
			delivery_remember(gateway, event.event_id);
			return 200;
		}
	}
	if (event.kind != SQUARE_EVENT_OTHER && event.moves) {
		struct square_order_head head;
		int count = square_order(gateway, event.order_id, &head);
		if (count >= 0)
			count = square_apply(gateway, event.order_id, &head, (uint32_t)count);
		if (count == -2) {
			gateway->figures.malformed++;
			return 400;
		}
		if (count < 0) {
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
	if (gateway->square)
		return deliver_square(gateway, signature, body, size);
	if (!shopify_webhook_verify(gateway->config->secret, body, size, signature)) {
		gateway->figures.unverified++;
		return 401;
	}
	if (delivery_seen(gateway, delivery_id)) {
		gateway->figures.duplicates++;
		return 200;
	}
	char error[160] = "", order_id[GATEWAY_ID_SIZE];
	int read_back = shopify_webhook_order(topic, body, size, order_id, error, sizeof(error));
	if (read_back == 1 && gateway->http == NULL && strcmp(topic, "orders/edited") == 0) {
		/* Its payload has no SKUs: without the Admin API nothing can be applied. */
		gateway->figures.unread++;
		fprintf(stderr,
		        "skuld-gateway: orders/edited for order %s not applied: it is read back "
		        "through the Admin API, and api_url is not set\n",
		        order_id);
		delivery_remember(gateway, delivery_id);
		return 200;
	}
	int count;
	if (read_back == 1 && gateway->http != NULL) {
		count = shopify_order(gateway, order_id, error, sizeof(error));
		if (count > 0 && strcmp(topic, "orders/cancelled") == 0 &&
		    !read_back_cancelled(gateway->actions, (uint32_t)count)) {
			/* The API does not show the cancellation yet: ask again. */
			fprintf(stderr, "skuld-gateway: order %s read back not yet cancelled\n",
			        order_id);
			count = -1;
		}
	} else if (read_back < 0)
		count = -2;
	else if ((count = shopify_webhook_actions(topic, body, size, gateway->actions,
	                                          GATEWAY_LINES_MAX, error, sizeof(error))) < 0)
		count = -2; /* not what Shopify sends */
	if (count == -1) {
		gateway->figures.unavailable++;
		return 503;
	}
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

/* The end of the linked group that starts at actions[first] (its last action). */
static uint32_t group_last(const struct gateway_action *actions, uint32_t count, uint32_t first)
{
	uint32_t last = first;
	while (actions[last].linked && last + 1 < count)
		last++;
	return last;
}

uint32_t gateway_slice(const struct gateway_action *actions, uint32_t count, uint32_t max)
{
	if (count <= max)
		return count;
	uint32_t taken = 0;
	while (taken < count) {
		uint32_t last = group_last(actions, count, taken);
		if (last + 1 > max)
			break;
		taken = last + 1;
	}
	return taken > 0 ? taken : max; /* a first group longer than max: refused before */
}

uint32_t gateway_group_longest(const struct gateway_action *actions, uint32_t count)
{
	uint32_t longest = count > 0 ? 1 : 0;
	for (uint32_t first = 0; first < count;) {
		uint32_t last = group_last(actions, count, first);
		if (last - first + 1 > longest)
			longest = last - first + 1;
		first = last + 1;
	}
	return longest;
}

int gateway_apply(struct gateway *gateway, const struct gateway_action *actions, uint32_t count)
{
	bool waiting[GATEWAY_LINES_MAX];
	if (count > GATEWAY_LINES_MAX)
		return -1;
	uint32_t longest = gateway_group_longest(actions, count);
	if (longest > GATEWAY_GROUP_MAX) {
		/* The readers refuse such a group; it would not fit one chain. */
		fprintf(stderr,
		        "skuld-gateway: order %s: a linked group of %" PRIu32
		        " actions is more than the %u one chain holds; not applied\n",
		        actions[0].order, longest, GATEWAY_GROUP_MAX);
		return -1;
	}
	if (apply(gateway, actions, count, waiting) != APPLY_DONE)
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
	for (uint32_t first = 0; first < gateway->spooled;) {
		/* A slice ends between linked groups: an exchange is one chain. */
		uint32_t size = gateway_slice(&gateway->spool[first], gateway->spooled - first,
		                              GATEWAY_LINES_MAX);
		if (apply(gateway, &gateway->spool[first], size, &waiting[first]) != APPLY_DONE)
			return; /* skuld away: all stay */
		first += size;
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
