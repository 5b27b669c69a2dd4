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

/* A Square quantity ("2", "2.000") as whole units into *out. Returns 1, or
 * 0 for a fraction, a negative value, more than 1,000,000 or not a number. */
int square_quantity_whole(const char *text, int64_t *out);

#endif /* SKULD_CHANNELS_GATEWAY_SQUARE_H */
