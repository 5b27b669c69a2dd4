/*
 * ledger_internal.h — the ledger's state and the helpers shared by the
 * modules that apply events (movements.c, reservations.c, ledger.c).
 *
 * Owns: struct ledger, which aggregates one instance of every table, and
 * the bundle expansion and availability helpers.
 *
 * Invariants:
 *   - now (batch time T) never decreases.
 *   - The journal is active exactly while a chain of two or more events is
 *     being applied.
 *   - Every handler runs all of its checks before its first change, so an
 *     event that fails has changed nothing even without the journal.
 */
#ifndef SKULD_LEDGER_INTERNAL_H
#define SKULD_LEDGER_INTERNAL_H

#include <stdint.h>

#include "catalog.h"
#include "counts.h"
#include "discrepancies.h"
#include "holds.h"
#include "idempotency.h"
#include "journal.h"
#include "ledger.h"
#include "push_state.h"
#include "stock.h"
#include "timer.h"
#include "transfers.h"

struct ledger {
	struct ledger_config config;
	uint64_t now; /* batch time T of the latest batch */
	struct catalog catalog;
	struct stock_table stocks;
	struct holds holds;
	struct timer timer;
	struct counts counts;
	struct transfers transfers;
	struct keys keys;
	struct journal journal;
	struct push_state push;
	struct discrepancies discrepancies;
	uint64_t sequence_next; /* log sequence of the next batch's first event */
	uint64_t sequence;      /* log sequence of the event being applied */
	uint32_t *due;          /* scratch for ledger_expire_due: hold record indexes */
};

/* An item quantity spread over the stock entries it moves: the item itself,
 * or every component of a bundle with units = quantity * per-bundle qty. */
struct expansion {
	uint32_t count;
	uint32_t item[CATALOG_COMPONENTS_MAX];
	int64_t per[CATALOG_COMPONENTS_MAX];         /* units per one of the event's item */
	int64_t units[CATALOG_COMPONENTS_MAX];       /* units moved */
	struct stock *stock[CATALOG_COMPONENTS_MAX]; /* entries (ledger_resolve), NULL: none */
};

static inline int quantity_within(int64_t value)
{
	return value >= -LEDGER_QUANTITY_MAX && value <= LEDGER_QUANTITY_MAX;
}

static inline int quantity_positive(int64_t value)
{
	return value > 0 && value <= LEDGER_QUANTITY_MAX;
}

/* The stock entry of (item, location), or a shared all-zero entry. */
const struct stock *ledger_stock_view(const struct ledger *ledger, uint32_t item,
                                      uint32_t location);

/* Fills x for quantity of item (id item_id). Returns SKULD_OK or
 * SKULD_QUANTITY_INVALID when a component's units would exceed QMAX.
 * quantity must already be in 1..QMAX. (Inline, like ledger_resolve: every
 * hold and movement event makes one.) */
static inline uint32_t ledger_expand(const struct ledger *ledger, const struct item *item,
                                     uint32_t item_id, int64_t quantity, struct expansion *x)
{
	if (!item->bundle) {
		x->count = 1;
		x->item[0] = item_id;
		x->per[0] = 1;
		x->units[0] = quantity;
		return SKULD_OK;
	}
	const struct component *components = catalog_components(&ledger->catalog, item);
	x->count = item->components;
	for (uint32_t i = 0; i < item->components; i++) {
		x->item[i] = components[i].item;
		x->per[i] = components[i].quantity;
		if (quantity > LEDGER_QUANTITY_MAX / components[i].quantity)
			return SKULD_QUANTITY_INVALID;
		x->units[i] = quantity * components[i].quantity;
	}
	return SKULD_OK;
}

/* Looks up the stock entries of x at location into x->stock (NULL where
 * missing), so an event finds each entry once. */
static inline void ledger_resolve(const struct ledger *ledger, struct expansion *x,
                                  uint32_t location)
{
	for (uint32_t i = 0; i < x->count; i++)
		x->stock[i] = stock_find(&ledger->stocks, x->item[i], location);
}

/* Stock entries of x at location that do not exist yet. */
uint32_t ledger_missing(const struct ledger *ledger, const struct expansion *x, uint32_t location);

/* Available of a plain item, or kits of a bundle, at location with floor
 * (docs/LEDGER.md section 1). */
int64_t ledger_spare(const struct ledger *ledger, const struct item *item, uint32_t item_id,
                     uint32_t location, int64_t floor);

/* Event handlers: return the status; on SKULD_OK they fill result's
 * location, quantity, available and flags. */
uint32_t movement_apply(struct ledger *ledger, const struct skuld_event *event,
                        struct skuld_result *result);
uint32_t discrepancy_ack_apply(struct ledger *ledger, const struct skuld_event *event);
uint32_t reservation_apply(struct ledger *ledger, const struct skuld_event *event,
                           enum ledger_source source, struct skuld_result *result);

static inline int movement_kind(uint32_t kind)
{
	return (kind >= SKULD_RECEIVE && kind <= SKULD_SALE) || kind == SKULD_FULFILL ||
	       (kind >= SKULD_RETURN && kind <= SKULD_INCOMING);
}

static inline int reservation_kind(uint32_t kind)
{
	return kind >= SKULD_RESERVE && kind <= SKULD_EXPIRE;
}

#endif /* SKULD_LEDGER_INTERNAL_H */
