/*
 * gateway_amazon.h — skuld-gateway's Amazon orders poll: Amazon sends no
 * webhook to a plain URL, so merchant-fulfilled orders are read through the
 * Orders API v0 (docs/GATEWAY.md, "Amazon").
 *
 * Owns: the high-water mark (SPOOL/amazon.mark, as gateway_poll.h's), the
 * Login with Amazon access token (refreshed before it expires, and after a
 * 403), the passes — getOrders (MarketplaceIds, LastUpdatedAfter = the
 * mark, FulfillmentChannels=MFN; NextToken pages), then getOrderItems for
 * each merchant-fulfilled order (NextToken pages) — within each
 * operation's rate limit (pace.h buckets at the published figures,
 * getOrders 0.0167/s burst 20 and getOrderItems 0.5/s burst 30; a 429
 * drains the bucket and backs off, backoff.h), and the translation of an
 * order into actions:
 *   Pending, Unshipped, PartiallyShipped, Shipped, ... a SALE per item
 *                        (QuantityOrdered of SellerSKU, at the online
 *                        location, at PurchaseDate);
 *   Canceled             per item, the SALE (same key) and a RETURN to
 *                        stock: the units come back once, whether or not
 *                        the order was read before it was cancelled.
 * The SKU is the item's SellerSKU, or the SKU a "listing = SELLERSKU:SKU"
 * line maps it to. Orders fulfilled by Amazon (AFN) move no stock here.
 *
 * Invariants:
 *   - The mark only moves forward, and only past a page whose orders were
 *     all applied or spooled; each pass re-reads poll_overlap_s before it.
 *   - An order's items are applied together, once every page of them is
 *     read; an order that could not be applied is read again.
 *   - At most one HTTP call per gateway_amazon_step, and none before its
 *     operation's bucket holds a token.
 *
 * Not thread-safe: one caller (skuld_gateway.c's main loop).
 */
#ifndef SKULD_CHANNELS_GATEWAY_AMAZON_H
#define SKULD_CHANNELS_GATEWAY_AMAZON_H

#include <stddef.h>
#include <stdint.h>

#include "gateway.h"
#include "gateway_poll.h"

#define GATEWAY_AMAZON_PAGE  100u  /* orders one getOrders page holds, at most */
#define GATEWAY_AMAZON_TOKEN 2048u /* a NextToken with its NUL */

struct gateway_amazon;

struct gateway_amazon_figures {
	uint64_t passes;    /* passes completed */
	uint64_t calls;     /* HTTP calls made (token refreshes included) */
	uint64_t orders;    /* merchant-fulfilled orders whose items were applied */
	uint64_t throttled; /* calls answered 429 */
	uint64_t failed;    /* calls with no usable answer */
	uint64_t unapplied; /* orders skuld did not take (read again) */
	uint64_t skipped;   /* orders fulfilled by Amazon, or lines that could not be read */
	uint64_t mark_s;    /* the high-water mark */
};

/* Reads the mark (or starts it at now_s - poll_overlap_s and writes it).
 * Returns NULL with a message in error. */
struct gateway_amazon *gateway_amazon_open(const struct gateway_config *config, uint64_t now_s,
                                           char *error, size_t error_size);
void gateway_amazon_close(struct gateway_amazon *amazon);

/* Does what is due at now_ns (a monotonic clock): at most one call, an
 * order's actions given to apply. Returns quickly when nothing is due. */
void gateway_amazon_step(struct gateway_amazon *amazon, uint64_t now_ns,
                         gateway_poll_apply_fn apply, void *context);

const struct gateway_amazon_figures *gateway_amazon_figures(const struct gateway_amazon *amazon);

/* ---- Pure parts, for tests -------------------------------------------------- */

struct gateway_amazon_order {
	char id[GATEWAY_ID_SIZE]; /* AmazonOrderId */
	char status[32];          /* OrderStatus */
	int merchant;             /* FulfillmentChannel MFN */
	uint64_t updated_s;       /* LastUpdateDate */
	uint64_t purchase_ns;     /* PurchaseDate, 0: not given */
};

struct gateway_amazon_page {
	enum gateway_poll_outcome outcome;
	uint32_t count; /* orders[0..count) */
	struct gateway_amazon_order orders[GATEWAY_AMAZON_PAGE];
	uint32_t skipped; /* orders that could not be read (logged) */
	char next_token[GATEWAY_AMAZON_TOKEN];
	char message[160];
};

/* Reads a getOrders answer. Always fills page. */
void gateway_amazon_orders_read(long http_status, const char *body, size_t size,
                                struct gateway_amazon_page *page);

struct gateway_amazon_items {
	enum gateway_poll_outcome outcome;
	uint32_t count;   /* actions written */
	uint32_t skipped; /* items without SellerSKU or a usable quantity (logged) */
	char next_token[GATEWAY_AMAZON_TOKEN];
	char message[160];
};

/* Reads a getOrderItems answer for order into actions (room for max). An
 * answer with more items than max FAILS. Always fills items. */
void gateway_amazon_items_read(long http_status, const char *body, size_t size,
                               const struct gateway_config *config,
                               const struct gateway_amazon_order *order,
                               struct gateway_action *actions, uint32_t max,
                               struct gateway_amazon_items *items);

#endif /* SKULD_CHANNELS_GATEWAY_AMAZON_H */
