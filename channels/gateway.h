/*
 * gateway.h — skuld-gateway: channel orders, cancellations and refunds in,
 * as ledger events with keys derived from the channel's ids (docs/GATEWAY.md).
 *
 * Owns: the gateway's configuration, the action a channel event becomes (a
 * channel-neutral description: which SKU, how many, at which channel
 * location, which ledger event(s), which key), and the applier that turns
 * actions into events: SKU and location look-ups, one request per delivery, and the
 * spool of actions that cannot be applied yet (an SKU the ledger does not
 * know, or a channel listing the configuration does not map: an exception,
 * never a silent drop, applied once the item or the mapping exists); for
 * Square, the RetrieveOrder read of the order a notification names and the
 * per-order record its changes are measured against; a line's checkout hold
 * committed instead of its SALE (the SALE when the hold is gone, counted);
 * the actions of an exchange sent as one linked chain, never split by the
 * spool's retry (its requests end between linked groups, gateway_slice).
 *
 * Invariants:
 *   - A delivery is answered 200 only when every one of its actions is
 *     applied (the ledger acknowledged it: durable) or spooled (fsynced);
 *     otherwise 503, and the channel delivers it again.
 *   - An action's key depends only on the channel's ids and the action, so
 *     a duplicate delivery, a retry and a poll of the same line are
 *     answered REPLAYED by the ledger: applied once.
 *   - A Shopify order's lines are facts that never change once made: the
 *     order's own sale of a line (its units as first ordered) and each
 *     committed edit's change of it (keyed by the edit's id). The ledger
 *     holds their sum, which is what the order says now, whichever path
 *     (webhook, read-back, poll) and order of arrival brought them.
 *   - A Square order keeps no history, only its version: the gateway keeps a
 *     record per order in the spool (SPOOL/square/ORDER.json: per line uid,
 *     the units applied, and the order version last applied), written
 *     durably before the difference it implies is submitted. The
 *     difference's key is derived from (order, line uid, version), so a
 *     crash between record and submit sends the same events again (REPLAYED
 *     if they got through); a version not newer than the record's changes
 *     nothing.
 */
#ifndef SKULD_CHANNELS_GATEWAY_H
#define SKULD_CHANNELS_GATEWAY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "protocol.h"

#define GATEWAY_ID_SIZE      64u /* order, line and refund ids as text */
#define GATEWAY_POS_MAX      64u /* channel locations mapped to stores */
#define GATEWAY_LINES_MAX    512u
#define GATEWAY_LISTINGS_MAX 1024u /* channel listings mapped to SKUs (Square) */
/* Actions in one linked group (an exchange: one event each, one chain): the ledger's default
   chain_events_max. A longer group is refused when it is read (docs/GATEWAY.md,
   "Exchanges"), so every group fits in one request of GATEWAY_LINES_MAX actions. */
#define GATEWAY_GROUP_MAX 256u

enum gateway_action_kind {
	GATEWAY_SALE = 1,            /* SALE */
	GATEWAY_CANCEL = 2,          /* SALE (the order's, same key) and RETURN to stock */
	GATEWAY_EXPECTED_RETURN = 3, /* RETURN with EXPECTED: refunded, parcel not back */
	GATEWAY_RESTOCK = 4,         /* RETURN to stock: a refund that cancels unfulfilled units */
	/* Shopify order edits: one action per (edit, line), refund = the edit's id. */
	GATEWAY_EDIT_ADD = 5,           /* SALE of the units the edit added */
	GATEWAY_EDIT_REMOVE = 6,        /* RETURN to stock of the units it removed */
	GATEWAY_EDIT_ADD_CANCEL = 7,    /* the edit's SALE (same key) and a RETURN: cancelled */
	GATEWAY_EDIT_REMOVE_CANCEL = 8, /* the edit's RETURN (same key) and a SALE: cancelled */
	/* Square: a cancelled line the gateway applied before (its record, docs/GATEWAY.md
	   "Square order edits"): the RETURN of GATEWAY_CANCEL alone (key "cancel"), of the
	   units the line holds. */
	GATEWAY_CANCEL_RETURN = 9,
	/* Shopify: the item an exchange sends out in place of the one coming back (refund =
	   the refund's id, refund_line = the exchange line item's, line = its new line item):
	   a SALE, linked with the refund's RETURNs (action.linked). */
	GATEWAY_EXCHANGE_SALE = 10,
	/* Shopify: a cancelled line its order's refunds name (the cancellation's refund, restock
	   type cancel or no_restock): the order's SALE alone (same event, same key); the units
	   come back through the refund's own actions, keyed by the refund line. */
	GATEWAY_CANCEL_SALE = 11,
};
#define GATEWAY_ACTION_KIND_MAX GATEWAY_CANCEL_SALE

struct gateway_action {
	enum gateway_action_kind kind;
	char sku[SKULD_CODE_SIZE + 1];
	int64_t quantity;                       /* whole units */
	char channel_location[GATEWAY_ID_SIZE]; /* "" : the online location */
	uint64_t occurred_at;                   /* ns since the epoch; 0: unknown */
	char order[GATEWAY_ID_SIZE];            /* the channel's order id */
	char line[GATEWAY_ID_SIZE];             /* its line id */
	char refund[GATEWAY_ID_SIZE];           /* the refund and its line, for refund actions;
	                                           the order edit, for edit actions */
	char refund_line[GATEWAY_ID_SIZE];
	char listing[GATEWAY_ID_SIZE]; /* the channel's listing (Square: catalog object), "" if
	                                  none; with sku "": not mapped yet (spooled) */
	bool linked;   /* its events and the next action's are one all-or-nothing chain (an
	                  exchange: the RETURN and the SALE of the replacement) */
	uint64_t hold; /* SALE, CANCEL, CANCEL_SALE: the hold a headless checkout reserved for this
	                  line (Shopify's `_skuld_hold` line property), committed instead of a SALE;
	                  0: none (docs/GATEWAY.md, "Holds") */
};

struct gateway_config {
	char listen[64];  /* HOST:PORT for webhooks; port 0: any (printed) */
	char server[128]; /* skuld, HOST:PORT */
	char server_token[65];
	char server_tls_ca[256];    /* PEM CAs: speak TLS to skuld ("" : plaintext) */
	char server_tls_name[256];  /* name skuld's certificate carries ("" : its host) */
	char client_id_path[256];   /* "" : a new id per run */
	char channel[33];           /* skuld channel name: the key source */
	char kind[16];              /* "shopify", "square" or "amazon" */
	char secret[128];           /* webhook signing secret (Square: the signature key) */
	char notification_url[256]; /* Square: the subscription's URL, as it signs it */
	char location[33];          /* skuld location code online orders are fulfilled from */
	char spool[256];            /* directory for actions not yet applicable */
	uint32_t retry_s;           /* how often spooled actions are tried again */
	uint32_t poll_s;            /* the safety-net orders poll: every poll_s; 0: off */
	uint32_t poll_overlap_s;    /* each pass re-reads this much before its high-water mark */
	char api_url[256];          /* the channel's API, for the poll */
	char api_token[128];        /* X-Shopify-Access-Token; Square: the Bearer token */
	char api_version[16];       /* YYYY-MM */
	char lwa_url[256];          /* Amazon: Login with Amazon, https://api.amazon.com */
	char lwa_client_id[128];    /* Amazon: LWA */
	char lwa_client_secret[128];
	char lwa_refresh_token[512];
	char marketplace[32]; /* Amazon: the marketplace polled, ATVPDKIKX0DER */
	uint32_t pos_count;
	char pos_channel[GATEWAY_POS_MAX][GATEWAY_ID_SIZE];   /* channel location id ... */
	char pos_store[GATEWAY_POS_MAX][SKULD_CODE_SIZE + 1]; /* ... -> skuld location code */
	uint32_t listing_count;
	char listing_object[GATEWAY_LISTINGS_MAX][GATEWAY_ID_SIZE]; /* "listing = OBJECT:SKU" */
	char listing_sku[GATEWAY_LISTINGS_MAX][SKULD_CODE_SIZE + 1];
};

/* Fills defaults, then reads "key = value" lines ("pos = CHANNEL_ID:CODE"
 * repeats). Returns 0, or -1 with the line in error. */
int gateway_config_read(struct gateway_config *config, const char *path, char *error,
                        size_t error_size);

/* The SKU a channel listing is mapped to by a "listing" line, or NULL. */
const char *gateway_listing_sku(const struct gateway_config *config, const char *listing);

/* The key of an action: XXH3-128 over (channel, the ids, the action). */
skuld_u128 gateway_key(const char *channel, const struct gateway_action *action, const char *what);

struct gateway;

struct gateway_figures {
	uint64_t deliveries;      /* webhooks received */
	uint64_t unverified;      /* refused: bad signature (401) */
	uint64_t duplicates;      /* delivery ids seen before */
	uint64_t malformed;       /* bodies that are not what the channel sends (400) */
	uint64_t applied;         /* actions the ledger applied */
	uint64_t replayed;        /* actions it had applied already */
	uint64_t spooled;         /* actions waiting for their SKU */
	uint64_t unavailable;     /* deliveries answered 503 (skuld did not answer) */
	uint64_t unread;          /* orders/edited not applied: no api_url to read the order */
	uint64_t stale;           /* Square: notifications of an order version older than applied */
	uint64_t holds_committed; /* lines sold by committing their checkout's hold */
	uint64_t holds_gone;      /* lines whose hold was gone: sold by a SALE instead */
};

/* Starts: connects to skuld (retrying until *stop), reads the spool.
 * Returns NULL with a message in error. */
struct gateway *gateway_open(const struct gateway_config *config, volatile sig_atomic_t *stop,
                             char *error, size_t error_size);
void gateway_close(struct gateway *gateway);

/* Handles one delivery (headers already read). Shopify: topic, delivery id
 * and signature from its headers. Square: signature from
 * x-square-hmacsha256-signature; topic and delivery id are read from the
 * body (type, event_id), and the order it names is read through
 * RetrieveOrder. Returns the HTTP status to answer: 200, 400, 401, 503. */
int gateway_deliver(struct gateway *gateway, const char *topic, const char *delivery_id,
                    const char *signature, const void *body, size_t size);

/* Applies actions[0..count) (count at most GATEWAY_LINES_MAX) through the
 * same applier as a delivery: keys, SKU look-ups, the spool for SKUs the
 * ledger does not know. Returns 0 when each action is applied (or was
 * before) or spooled (fsynced), -1 when skuld did not answer or the spool
 * could not be written: nothing to count as done, try again. */
int gateway_apply(struct gateway *gateway, const struct gateway_action *actions, uint32_t count);

/* Tries the spooled actions again (the SKU may exist now), in requests of at most
 * GATEWAY_LINES_MAX actions cut by gateway_slice: a linked group is never split. */
void gateway_retry(struct gateway *gateway);

/* How many of actions[0..count) the first request of at most max takes: all of them when
 * they fit, else as many as fit without ending inside a linked group (a group is
 * actions[i..j], each but the last with linked set). A first group longer than max, which
 * gateway_apply and the spool's reader refuse, is cut at max. 0 only when count is 0. */
uint32_t gateway_slice(const struct gateway_action *actions, uint32_t count, uint32_t max);

/* The length of the longest linked group of actions[0..count) (1 without groups). */
uint32_t gateway_group_longest(const struct gateway_action *actions, uint32_t count);

/* Pending actions as a JSON array (malloc'd; the caller frees). */
char *gateway_pending_json(struct gateway *gateway);

const struct gateway_figures *gateway_figures(const struct gateway *gateway);

#endif /* SKULD_CHANNELS_GATEWAY_H */
