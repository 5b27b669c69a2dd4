/*
 * gateway_square.h — Square's order and refund webhooks as the gateway
 * reads them: the signature check, the notification, and the ledger actions
 * of the order it names.
 *
 * Owns: the verification of `x-square-hmacsha256-signature` (base64
 * HMAC-SHA256 of the notification URL followed by the raw body, keyed with
 * the subscription's signature key, compared in constant time; OpenSSL's
 * libcrypto), the reading of a notification (type, event_id, and the order
 * it is about), and the translation of an Order (RetrieveOrder's answer,
 * `{"order": {...}}`) into gateway actions (gateway.h):
 *   state OPEN, COMPLETED  a SALE per line item, at the order's location
 *                          (a store when its location_id is mapped by a
 *                          `pos` line, else the online location), with the
 *                          till's time (closed_at, else created_at);
 *   state CANCELED         per line, the SALE (same key: applied once
 *                          whether or not the order was read before) and a
 *                          RETURN to stock;
 *   state DRAFT            nothing;
 *   returns[]              per return line item an expected RETURN
 *                          (refunded, until the parcel is scanned in).
 * A line names its listing by catalog_object_id; the SKU comes from the
 * configuration's listing map (gateway_listing_sku). A line whose object is
 * not mapped keeps its catalog_object_id (action.listing) and is spooled as
 * an exception until the map names it.
 * Square keeps no history of an order's changes, only its version: what a
 * line gives is measured against the gateway's record of the order
 * (struct square_record, square_record_step): a first sight is the action
 * above, a newer version the difference of each line's units (keyed by the
 * version), a cancellation the return of what the line holds, a stale or
 * repeated version nothing.
 * Square's notifications carry a summary of the order (order_created,
 * order_updated: order_id, state, version) or the refund (order_id,
 * status), never its lines: the gateway reads the order through
 * RetrieveOrder (GET /v2/orders/{order_id}) before it maps it.
 *
 * Pure: no I/O, no clock.
 */
#ifndef SKULD_CHANNELS_GATEWAY_SQUARE_H
#define SKULD_CHANNELS_GATEWAY_SQUARE_H

#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

#define GATEWAY_SQUARE_VERSION "2025-08-20" /* Square-Version of RetrieveOrder */

/* The base64 HMAC-SHA256 of url followed by body, keyed with key, into out
 * (45 bytes with the NUL). For tests and stand-ins that sign deliveries. */
void square_webhook_sign(const char *key, const char *url, const void *body, size_t size,
                         char out[45]);

/* 1 when signature is square_webhook_sign's text for (key, url, body); 0
 * otherwise (also for a missing or malformed header or an empty key). */
int square_webhook_verify(const char *key, const char *url, const void *body, size_t size,
                          const char *signature);

enum square_event_kind {
	SQUARE_EVENT_OTHER = 0,  /* a type that moves no stock */
	SQUARE_EVENT_ORDER = 1,  /* order.created, order.updated */
	SQUARE_EVENT_REFUND = 2, /* refund.created, refund.updated */
};

struct square_event {
	enum square_event_kind kind;
	char event_id[GATEWAY_ID_SIZE];
	char order_id[GATEWAY_ID_SIZE]; /* the order to read; "" for OTHER */
	int moves;                      /* 0: nothing to read (a DRAFT, a failed refund) */
	int64_t version;                /* ORDER: the summary's order version; 0: not given */
};

/* Reads a notification's envelope. Returns 0, or -1 with a reason in error
 * for a body that is not a Square notification (no event_id or type, an
 * order or refund event without its order id). */
int square_event_read(const void *body, size_t size, struct square_event *event, char *error,
                      size_t error_size);

/* Reads RetrieveOrder's answer into actions (room for max), the SKUs from
 * config's listing map. Returns the number of actions, or -1 with a reason
 * in error for an answer that is not an order or holds more than max. */
int square_order_actions(const struct gateway_config *config, const void *body, size_t size,
                         struct gateway_action *actions, uint32_t max, char *error,
                         size_t error_size);

enum square_order_state {
	SQUARE_ORDER_DRAFT = 0,
	SQUARE_ORDER_OPEN = 1, /* OPEN or COMPLETED: its lines are sold */
	SQUARE_ORDER_CANCELED = 2,
};

/* What an order says besides its lines. */
struct square_order_head {
	enum square_order_state state;
	int64_t version;     /* Square's order version (1, 2, ...); 0: the answer has none */
	uint64_t updated_at; /* ns since the epoch; 0: not given */
};

/* square_order_actions, and the order's state, version and updated_at into
 * head. A line's action is its first sight: a SALE (OPEN, COMPLETED) or a
 * CANCEL (CANCELED) of its quantity now; square_record_step turns them into
 * the facts still to apply. */
int square_order_read(const struct gateway_config *config, const void *body, size_t size,
                      struct square_order_head *head, struct gateway_action *actions, uint32_t max,
                      char *error, size_t error_size);

/* What the gateway has applied of one Square order: Square keeps no history
 * of an order's changes, only its version, so the difference between what
 * the order says now and what was applied is computed against this record
 * (kept by the gateway in its spool, durably, before the difference is
 * submitted; docs/GATEWAY.md, "Square order edits"). */
struct square_record {
	char order[GATEWAY_ID_SIZE];
	int64_t version; /* the order version last applied; 0: none yet */
	uint32_t line_count;
	/* Per line uid (line): kind GATEWAY_SALE, or GATEWAY_CANCEL once cancelled;
	   quantity = the units the ledger holds for it once pending is applied;
	   listing, sku, channel_location, occurred_at as first seen. */
	struct gateway_action lines[GATEWAY_LINES_MAX];
	uint32_t pending_count;
	/* Facts recorded but not yet acknowledged by the ledger: sent again, byte
	   for byte (same keys), until they are. */
	struct gateway_action pending[GATEWAY_LINES_MAX];
};

/* Brings record to the order read (head, and its line actions from
 * square_order_read; other actions are ignored): for a version newer than
 * the record's, appends to record->pending the facts that make the ledger
 * hold what the order says now, each with its own key:
 *   a line not seen before      its first-sight action (SALE or CANCEL,
 *                               keys "sale", "cancel");
 *   a line whose units changed  EDIT_ADD or EDIT_REMOVE of the difference,
 *                               refund = "v" + version (a line gone from the
 *                               order counts as 0 units);
 *   a line cancelled            the difference to its last units, then
 *                               CANCEL_RETURN of them (key "cancel");
 *   a line cancelled before     nothing.
 * The record's lines and version follow. A version not newer than the
 * record's (a stale or repeated notification) changes nothing. Returns the
 * number of facts appended, or -1 with a reason in error when the order has
 * no version or the facts do not fit (record is then half changed: read it
 * again from where it is kept). */
int square_record_step(struct square_record *record, const struct square_order_head *head,
                       const struct gateway_action *actions, uint32_t count, char *error,
                       size_t error_size);

/* A Square quantity ("2", "2.000") as whole units into *out. Returns 1, or
 * 0 for a fraction, a negative value, more than 1,000,000 or not a number. */
int square_quantity_whole(const char *text, int64_t *out);

#endif /* SKULD_CHANNELS_GATEWAY_SQUARE_H */
