/*
 * gateway_poll.h — skuld-gateway's safety-net poll: Shopify orders updated
 * since a high-water mark, read through the Admin GraphQL API and turned
 * into the same actions as their webhooks (docs/GATEWAY.md, "The poll").
 *
 * Owns: the high-water mark (SPOOL/poll.mark, one RFC 3339 UTC time and a
 * newline, rewritten through a temporary file, fsync and rename), the
 * orders query and its pages, the cost bucket (pace.h) and the backoff of
 * failed or throttled calls, and the translation of an order into actions:
 *   every order      orders/create's actions (a SALE per line, same keys,
 *                    of the units the order itself sold: its ORDER sales
 *                    agreement's, else the line's quantity less what edits
 *                    added), and per committed order edit
 *                    (its ORDER_EDIT sales agreement) and line the change:
 *                    units added a SALE, units removed a RETURN to stock,
 *                    keyed by the edit's id;
 *   a cancelled one  orders/cancelled's actions: for a line none of its
 *                    refunds names, the SALE and the RETURN, and each
 *                    edit's change with its undoing; for a line a refund
 *                    names (the cancellation's own refund), the SALE and
 *                    each edit's change alone: the refund gives back what
 *                    the line held;
 *   each refund      refunds/create's actions (same ids, same keys): per
 *                    line restocked RETURN an expected RETURN, CANCEL or
 *                    LEGACY_RESTOCK a RETURN to stock; its return's
 *                    exchange line items SALEs, linked with them in one
 *                    chain. A refund not read whole is left to its webhook.
 * The same translation reads one order back for the orders/edited and
 * orders/cancelled webhooks (gateway_order_read).
 * Applying them is the caller's (gateway_apply under the gateway's lock),
 * so a line is applied once whichever path, webhook or poll, comes first.
 *
 * Invariants:
 *   - The mark only moves forward, and only past orders whose actions were
 *     applied or spooled: a page that could not be applied is read again.
 *   - Each query starts at the mark; the mark is set to the latest
 *     updatedAt seen minus poll_overlap_s, so an order updated within the
 *     same second, or indexed late, is read again (and REPLAYED) rather
 *     than missed.
 *   - At most one HTTP call per gateway_poll_step, and none before the
 *     bucket holds its cost.
 *
 * Not thread-safe: one caller (skuld_gateway.c's main loop).
 */
#ifndef SKULD_CHANNELS_GATEWAY_POLL_H
#define SKULD_CHANNELS_GATEWAY_POLL_H

#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

/* Orders per page: with their refunds, a query of 749 points by the stand-in's cost model
   (5 orders would be 1,247, over the 1,000 a query may cost; 4 would be 998). */
#define GATEWAY_POLL_ORDERS 3u
#define GATEWAY_POLL_LINES  20u /* line items read per order */

struct gateway_poll;

struct gateway_poll_figures {
	uint64_t passes;    /* passes completed (every page read and applied) */
	uint64_t calls;     /* HTTP calls made */
	uint64_t orders;    /* orders read */
	uint64_t throttled; /* calls answered THROTTLED */
	uint64_t failed;    /* calls with no usable answer (transport, 5xx, 401, errors) */
	uint64_t unapplied; /* pages whose actions skuld did not take (read again) */
	uint64_t skipped;   /* orders or lines that could not be read (logged) */
	uint64_t mark_s;    /* the high-water mark, seconds since the epoch */
};

/* Applies actions as gateway_apply does; 0 or -1. */
typedef int (*gateway_poll_apply_fn)(void *context, const struct gateway_action *actions,
                                     uint32_t count);

/* Reads the mark (or starts it at now_s - poll_overlap_s and writes it).
 * Returns NULL with a message in error (an unreadable mark file, no
 * memory). */
struct gateway_poll *gateway_poll_open(const struct gateway_config *config, uint64_t now_s,
                                       char *error, size_t error_size);
void gateway_poll_close(struct gateway_poll *poll);

/* Does what is due at now_ns (a monotonic clock): at most one call, its
 * actions given to apply. Returns quickly when nothing is due. */
void gateway_poll_step(struct gateway_poll *poll, uint64_t now_ns, gateway_poll_apply_fn apply,
                       void *context);

const struct gateway_poll_figures *gateway_poll_figures(const struct gateway_poll *poll);

/* ---- High-water marks (shared with gateway_amazon.c) ------------------------- */

/* Writes a mark file: one RFC 3339 UTC time and a newline, through PATH.new,
 * fsync, rename and an fsync of directory. Returns 0 or -1 (errno). */
int gateway_mark_store(const char *path, const char *directory, uint64_t mark_s);

/* Reads a mark file into *mark_s: 1 read, 0 absent, -1 unreadable or not a
 * mark. */
int gateway_mark_load(const char *path, uint64_t *mark_s);

/* A mark as RFC 3339 UTC text ("2026-11-27T09:30:00Z"). */
void gateway_mark_text(uint64_t seconds, char out[32]);

/* ---- Pure parts, for tests -------------------------------------------------- */

/* The JSON body of the orders query: updated after since (RFC 3339), after
 * the cursor (NULL: the first page). malloc'd, NULL when out of memory. */
char *gateway_poll_body(const char *since, const char *after);

enum gateway_poll_outcome {
	GATEWAY_POLL_OK = 0,
	GATEWAY_POLL_THROTTLED = 1, /* THROTTLED (HTTP 200 or 429) */
	GATEWAY_POLL_AUTH = 2,      /* 401 / 403 */
	GATEWAY_POLL_FAILED = 3,    /* 5xx, GraphQL errors, an answer that is not one */
};

struct gateway_poll_page {
	enum gateway_poll_outcome outcome;
	uint32_t orders;        /* orders on the page */
	uint32_t count;         /* actions in actions[] */
	uint32_t skipped;       /* orders or lines that could not be read */
	uint64_t updated_max_s; /* the latest updatedAt on the page, 0: none */
	int has_next;           /* pageInfo.hasNextPage */
	char end_cursor[512];   /* pageInfo.endCursor */
	int cost_known;         /* extensions.cost.throttleStatus was read */
	double requested_cost;
	double available;
	double maximum;
	double restore_rate;
	char message[160]; /* why, when not OK */
};

/* Reads one answer to the orders query into page and actions (room for
 * max). An order whose actions do not fit is left for the next page: the
 * page then reports has_next with the cursor before it. */
void gateway_poll_read(long http_status, const char *body, size_t size,
                       struct gateway_poll_page *page, struct gateway_action *actions,
                       uint32_t max);

/* ---- One order, read back (orders/edited, orders/cancelled) ---------------- */

/* The JSON body of the query for one order (its numeric id), with its
 * lines and sales agreements. malloc'd, NULL when out of memory. */
char *gateway_order_body(const char *order_id);

/* Reads the answer to gateway_order_body's query into actions (room for
 * max): the same actions the poll makes of the order. Returns how many,
 * -1 when the answer is not usable (no answer, not 200, GraphQL errors:
 * try again), -2 when the order cannot be applied (unknown, malformed,
 * too large), with a reason in error. */
int gateway_order_read(long http_status, const char *body, size_t size,
                       struct gateway_action *actions, uint32_t max, char *error,
                       size_t error_size);

#endif /* SKULD_CHANNELS_GATEWAY_POLL_H */
