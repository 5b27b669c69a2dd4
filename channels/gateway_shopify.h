/*
 * gateway_shopify.h — Shopify's order webhooks as the gateway reads them:
 * the signature check and the ledger actions each delivery asks for.
 *
 * Owns: the verification of `X-Shopify-Hmac-SHA256` (base64 HMAC-SHA256 of
 * the raw body keyed with the app's secret, compared in constant time;
 * OpenSSL's libcrypto) and the translation of the topics orders/create,
 * orders/cancelled and refunds/create into gateway actions (gateway.h):
 *   orders/create    a SALE per line, at the order's store for a POS order
 *                    (its location_id mapped to a skuld location) with the
 *                    till's created_at, else at the online location;
 *   orders/cancelled per line, the SALE (same event and key: applied once
 *                    whether or not orders/create came first); for a line
 *                    the order's `refunds` name, nothing more, and each
 *                    refund's actions as refunds/create gives them (the
 *                    cancellation's own refund, restocked "cancel" or
 *                    "no_restock", comes in both: same events, same keys);
 *                    for a line no refund names, a RETURN to stock; so a
 *                    cancellation gives the units back exactly once, in any
 *                    order of arrival;
 *   refunds/create   per refund line restocked as "return": an expected
 *                    RETURN (incoming, until the parcel is scanned in);
 *                    "cancel": a RETURN to stock (part of an order
 *                    cancelled before fulfilment; its SALE is the order's);
 *                    "no_restock": nothing; the exchange of its return
 *                    (SALEs of the replacements) linked with them in one
 *                    chain, refused when longer than GATEWAY_GROUP_MAX;
 *   orders/edited    nothing by itself: its payload names the order and the
 *                    lines' deltas, without SKUs, so the gateway reads the
 *                    order back (shopify_webhook_order, gateway_poll.h) and
 *                    applies each edit's change as a fact keyed by the edit.
 * A line carrying the property `_skuld_hold` (a headless checkout's hold id,
 * in decimal) is sold by committing that hold (action.hold; gateway.h).
 * Every action's key derives from the shop, the order (or refund) and line
 * ids and the action, so the same line is applied once however often and in
 * whatever order it arrives.
 *
 * Pure: no I/O, no clock.
 */
#ifndef SKULD_CHANNELS_GATEWAY_SHOPIFY_H
#define SKULD_CHANNELS_GATEWAY_SHOPIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway.h"

/* 1 when signature (the header's base64 text) is the HMAC-SHA256 of body
 * under secret; 0 otherwise (also for a malformed header). */
int shopify_webhook_verify(const char *secret, const void *body, size_t size,
                           const char *signature);

/* The base64 HMAC-SHA256 of body under secret into out (45 bytes with the
 * NUL). For tests and stand-ins that sign deliveries. */
void shopify_webhook_sign(const char *secret, const void *body, size_t size, char out[45]);

/* Reads one delivery of topic into actions (room for max). Returns the
 * number of actions (0 for a topic that moves no stock), or -1 with a
 * reason in error for a body that is not what Shopify sends or asks for
 * more than max actions. */
int shopify_webhook_actions(const char *topic, const void *body, size_t size,
                            struct gateway_action *actions, uint32_t max, char *error,
                            size_t error_size);

/* The order a delivery of topic is about, for the topics the gateway reads
 * back from the Admin API when it can (orders/edited: order_edit.order_id;
 * orders/cancelled: id). Returns 1 with the id in order_id, 0 for another
 * topic, -1 with a reason in error for a body without the id. */
int shopify_webhook_order(const char *topic, const void *body, size_t size,
                          char order_id[GATEWAY_ID_SIZE], char *error, size_t error_size);

/* RFC 3339 text ("2026-11-27T09:30:00-05:00", fraction optional) as ns
 * since the epoch into *out. Returns 1, or 0 for anything else. */
int shopify_time_parse(const char *text, uint64_t *out);

/* An id as text, from a JSON integer > 0 or a string of printable
 * characters shorter than GATEWAY_ID_SIZE. Returns 1, or 0 when missing or
 * malformed. */
int shopify_id_text(json_t *value, char out[GATEWAY_ID_SIZE]);

#define SHOPIFY_HOLD_PROPERTY "_skuld_hold" /* a line property: the hold to commit */

/* The hold a line's properties name: list is REST's `properties`
 * ([{name, value}], name_field "name") or GraphQL's `customAttributes`
 * ([{key, value}], name_field "key"). The value is the hold id in decimal,
 * 1..2^64-1. Returns it, or 0 when the line names none or the value is not
 * a hold id (the line is then sold by a SALE). */
uint64_t shopify_line_hold(json_t *list, const char *name_field);

#endif /* SKULD_CHANNELS_GATEWAY_SHOPIFY_H */
