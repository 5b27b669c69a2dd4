/*
 * reservations.c — holds: RESERVE, EXTEND, COMMIT, RELEASE, REALLOCATE and
 * EXPIRE (docs/LEDGER.md section 5, Holds).
 *
 * Owns: the checks of each hold kind in the documented order, the location
 * choice for channel holds, and the hold lifecycle
 *   OPEN -> COMMITTED | RELEASED | EXPIRED, and EXPIRED -> COMMITTED (a
 *   commit with AFTER_EXPIRY that finds the stock still available).
 *
 * Invariants:
 *   - reserved at (item, location) == the sum over OPEN holds there of
 *     remaining * per-bundle qty; a hold is in the timer exactly while OPEN.
 *   - A hold is usable only while batch time < expires_at; past that only
 *     RELEASE, EXPIRE and COMMIT with AFTER_EXPIRY act on it.
 *   - Every check runs before the first change.
 */
#include <string.h>

#include "ledger_internal.h"
#include "skuld_assert.h"

#define NS_PER_S 1000000000ull

static int past_due(const struct ledger *ledger, const struct hold *hold)
{
	return ledger->now >= hold->expires_at;
}

static const struct item *hold_item(const struct ledger *ledger, const struct hold *hold)
{
	return &ledger->catalog.items[hold->item];
}

/* Fills result for hold after its event; x is resolved at hold->location.
 * Only RESERVE and COMMIT set EXPANDED on a bundle hold (docs/LEDGER.md). */
static void hold_result(const struct ledger *ledger, const struct hold *hold,
                        const struct expansion *x, int64_t quantity, int expanded,
                        struct skuld_result *result)
{
	const struct item *item = hold_item(ledger, hold);
	result->location = hold->location;
	result->quantity = quantity;
	if (item->bundle) {
		result->available = ledger_spare(ledger, item, hold->item, hold->location, 0);
		if (expanded)
			result->flags |= SKULD_RESULT_EXPANDED;
	} else {
		result->available = x->stock[0] != NULL ? stock_available(x->stock[0]) : 0;
	}
}

/* Adds sign * units to the counter at offset of every entry of x, which is
 * resolved at location (missing entries are created: the caller checked
 * room). */
static void apply_units(struct ledger *ledger, struct expansion *x, uint32_t location,
                        size_t offset, int64_t sign)
{
	struct journal *journal = &ledger->journal;
	for (uint32_t i = 0; i < x->count; i++) {
		if (x->stock[i] == NULL)
			x->stock[i] = stock_get(&ledger->stocks, journal, x->item[i], location);
		int64_t *field = (int64_t *)((unsigned char *)x->stock[i] + offset);
		journal_set_i64(journal, field, *field + sign * x->units[i]);
	}
}

/* 1 when adding the units of x keeps the counter at offset within bounds. */
static int units_within(const struct expansion *x, size_t offset)
{
	for (uint32_t i = 0; i < x->count; i++) {
		int64_t value = 0;
		if (x->stock[i] != NULL)
			value = *(const int64_t *)((const unsigned char *)x->stock[i] + offset);
		if (!quantity_within(value + x->units[i]))
			return 0;
	}
	return 1;
}

/* 1 when every entry of x has available >= its units. */
static int units_available(const struct expansion *x)
{
	for (uint32_t i = 0; i < x->count; i++) {
		int64_t available = x->stock[i] != NULL ? stock_available(x->stock[i]) : 0;
		if (available < x->units[i])
			return 0;
	}
	return 1;
}

/* The pool location a channel hold of quantity takes: ACTIVE, spare >=
 * quantity, largest spare, ties to the lowest id. 0 if none. */
static uint32_t choose_location(const struct ledger *ledger, uint32_t channel_id,
                                const struct item *item, uint32_t item_id, int64_t quantity)
{
	const struct channel *channel = &ledger->catalog.channels[channel_id];
	const struct pool_entry *pool = catalog_pool(&ledger->catalog, channel_id);
	uint32_t best = 0;
	int64_t best_spare = 0;
	for (uint32_t i = 0; i < channel->pool_count; i++) {
		if (!pool[i].active)
			continue;
		uint32_t location = pool[i].location;
		if (ledger->catalog.locations[location].state != SKULD_LIFECYCLE_ACTIVE)
			continue;
		int64_t spare = ledger_spare(ledger, item, item_id, location, pool[i].floor);
		if (spare < quantity)
			continue;
		if (best == 0 || spare > best_spare || (spare == best_spare && location < best)) {
			best = location;
			best_spare = spare;
		}
	}
	return best;
}

static uint32_t selling(const struct location *location)
{
	if (location->state == SKULD_LIFECYCLE_NOT_SELLING)
		return SKULD_LOCATION_NOT_SELLING;
	if (location->state == SKULD_LIFECYCLE_CLOSED)
		return SKULD_LOCATION_CLOSED;
	return SKULD_OK;
}

/* The stock index a hold of item caches for x (resolved, entries exist). */
static uint32_t hold_stock(const struct ledger *ledger, const struct item *item,
                           const struct expansion *x)
{
	if (item->bundle)
		return TABLE_NONE;
	return stock_index(&ledger->stocks, x->stock[0]);
}

static uint32_t reserve(struct ledger *ledger, const struct skuld_event *event,
                        struct skuld_result *result)
{
	struct item *item = catalog_item(&ledger->catalog, event->item);
	if (item == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (item->bundle && item->components == 0)
		return SKULD_BUNDLE_INVALID;
	const struct location *location = NULL;
	if (event->channel != 0) {
		if (catalog_channel(&ledger->catalog, event->channel) == NULL)
			return SKULD_CHANNEL_UNKNOWN;
		if (event->location != 0)
			return SKULD_LOCATION_MISMATCH;
	} else {
		location = catalog_location(&ledger->catalog, event->location);
		if (location == NULL)
			return SKULD_LOCATION_UNKNOWN;
	}
	int64_t quantity = event->quantity;
	if (!quantity_positive(quantity))
		return SKULD_QUANTITY_INVALID;
	struct expansion x;
	if (ledger_expand(ledger, item, event->item, quantity, &x) != SKULD_OK)
		return SKULD_QUANTITY_INVALID;
	if (event->ttl_s == 0 || event->ttl_s > ledger->config.ttl_max_s)
		return SKULD_TTL_INVALID;
	if (holds_find(&ledger->holds, event->id) != NULL)
		return SKULD_HOLD_EXISTS;
	if (ledger->holds.open >= ledger->config.holds_max)
		return SKULD_HOLDS_FULL;
	uint32_t chosen = event->location;
	if (location != NULL) {
		uint32_t status = selling(location);
		if (status != SKULD_OK)
			return status;
		ledger_resolve(ledger, &x, chosen);
		if (!units_available(&x))
			return SKULD_INSUFFICIENT;
	} else {
		chosen = choose_location(ledger, event->channel, item, event->item, quantity);
		if (chosen == 0)
			return SKULD_INSUFFICIENT;
		ledger_resolve(ledger, &x, chosen);
	}
	/* available >= units > 0 at chosen: every entry exists. */
	if (!units_within(&x, offsetof(struct stock, reserved)))
		return SKULD_QUANTITY_INVALID;
	apply_units(ledger, &x, chosen, offsetof(struct stock, reserved), 1);
	struct hold *hold = holds_insert(&ledger->holds, &ledger->journal, event->id);
	hold->item = event->item;
	hold->location = chosen;
	hold->channel = event->channel;
	hold->remaining = quantity;
	hold->stock = hold_stock(ledger, item, &x);
	hold->expires_at = ledger->now + (uint64_t)event->ttl_s * NS_PER_S;
	uint32_t index = holds_index(&ledger->holds, hold);
	timer_insert(&ledger->timer, index, hold->expires_at, hold->id);
	journal_push(&ledger->journal, JOURNAL_TIMER_INSERT, NULL, index, 0);
	if (item->bundle && !item->frozen)
		journal_set_u8(&ledger->journal, &item->frozen, 1);
	hold_result(ledger, hold, &x, quantity, 1, result);
	return SKULD_OK;
}

/* The shared hold checks: unknown, closed, expired (unless allowed). */
static uint32_t hold_check(const struct ledger *ledger, const struct hold *hold, int expired_ok,
                           int past_due_ok)
{
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	if (hold->state == LEDGER_HOLD_COMMITTED || hold->state == LEDGER_HOLD_RELEASED)
		return SKULD_HOLD_CLOSED;
	if (hold->state == LEDGER_HOLD_EXPIRED && !expired_ok)
		return SKULD_HOLD_EXPIRED;
	if (hold->state == LEDGER_HOLD_OPEN && past_due(ledger, hold) && !past_due_ok)
		return SKULD_HOLD_EXPIRED;
	return SKULD_OK;
}

/* Closes an open hold: out of the timer, onto the closed ring. */
static void hold_close(struct ledger *ledger, struct hold *hold, uint32_t state)
{
	uint32_t index = holds_index(&ledger->holds, hold);
	timer_remove(&ledger->timer, index);
	journal_push(&ledger->journal, JOURNAL_TIMER_REMOVE, NULL, index, hold->expires_at);
	holds_close(&ledger->holds, &ledger->journal, hold, state, ledger->now);
}

/* Fills x with quantity of the hold's item, resolved at its location: a
 * plain item's entry through the hold's cached index, a bundle's by lookup. */
static void hold_expansion(const struct ledger *ledger, const struct hold *hold, int64_t quantity,
                           struct expansion *x)
{
	uint32_t status = ledger_expand(ledger, hold_item(ledger, hold), hold->item, quantity, x);
	SKULD_ASSERT(status == SKULD_OK); /* checked when the hold was made */
	if (hold->stock == TABLE_NONE) {
		ledger_resolve(ledger, x, hold->location);
		return;
	}
	struct stock *stock = stock_at(&ledger->stocks, hold->stock);
	SKULD_ASSERT(stock->item == hold->item);
	SKULD_ASSERT(stock->location == hold->location);
	x->stock[0] = stock;
}

static uint32_t extend(struct ledger *ledger, const struct skuld_event *event,
                       struct skuld_result *result)
{
	struct hold *hold = holds_find(&ledger->holds, event->id);
	uint32_t status = hold_check(ledger, hold, 0, 0);
	if (status != SKULD_OK)
		return status;
	if (event->ttl_s == 0 || event->ttl_s > ledger->config.ttl_max_s)
		return SKULD_TTL_INVALID;
	uint64_t expires_at = ledger->now + (uint64_t)event->ttl_s * NS_PER_S;
	uint32_t index = holds_index(&ledger->holds, hold);
	journal_push(&ledger->journal, JOURNAL_TIMER_UPDATE, NULL, index, hold->expires_at);
	timer_update(&ledger->timer, index, expires_at);
	journal_set_u64(&ledger->journal, &hold->expires_at, expires_at);
	struct expansion x;
	hold_expansion(ledger, hold, hold->remaining, &x);
	hold_result(ledger, hold, &x, hold->remaining, 0, result);
	return SKULD_OK;
}

static uint32_t commit(struct ledger *ledger, const struct skuld_event *event,
                       struct skuld_result *result)
{
	struct hold *hold = holds_find(&ledger->holds, event->id);
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	if (event->quantity < 0 || event->quantity > LEDGER_QUANTITY_MAX)
		return SKULD_QUANTITY_INVALID;
	int after_expiry = (event->flags & SKULD_EVENT_AFTER_EXPIRY) != 0;
	uint32_t status = hold_check(ledger, hold, after_expiry, after_expiry);
	if (status != SKULD_OK)
		return status;
	int64_t quantity = event->quantity != 0 ? event->quantity : hold->remaining;
	if (quantity > hold->remaining)
		return SKULD_QUANTITY_EXCEEDS;
	struct expansion x;
	hold_expansion(ledger, hold, quantity, &x);
	/* An expired hold's units went back to available at expiry. */
	if (hold->state == LEDGER_HOLD_EXPIRED && !units_available(&x))
		return SKULD_INSUFFICIENT;
	if (!units_within(&x, offsetof(struct stock, committed)))
		return SKULD_QUANTITY_INVALID;
	if (hold->state == LEDGER_HOLD_OPEN)
		apply_units(ledger, &x, hold->location, offsetof(struct stock, reserved), -1);
	apply_units(ledger, &x, hold->location, offsetof(struct stock, committed), 1);
	journal_set_i64(&ledger->journal, &hold->remaining, hold->remaining - quantity);
	if (hold->remaining == 0) {
		if (hold->state == LEDGER_HOLD_OPEN)
			hold_close(ledger, hold, LEDGER_HOLD_COMMITTED);
		else
			journal_set_u32(&ledger->journal, &hold->state, LEDGER_HOLD_COMMITTED);
	}
	hold_result(ledger, hold, &x, quantity, 1, result);
	return SKULD_OK;
}

static uint32_t release(struct ledger *ledger, const struct skuld_event *event,
                        struct skuld_result *result)
{
	struct hold *hold = holds_find(&ledger->holds, event->id);
	uint32_t status = hold_check(ledger, hold, 0, 1);
	if (status != SKULD_OK)
		return status;
	int64_t quantity = hold->remaining;
	struct expansion x;
	hold_expansion(ledger, hold, quantity, &x);
	apply_units(ledger, &x, hold->location, offsetof(struct stock, reserved), -1);
	hold_close(ledger, hold, LEDGER_HOLD_RELEASED);
	hold_result(ledger, hold, &x, quantity, 0, result);
	return SKULD_OK;
}

static uint32_t expire(struct ledger *ledger, const struct skuld_event *event,
                       enum ledger_source source, struct skuld_result *result)
{
	if (source != LEDGER_SOURCE_SERVER)
		return SKULD_SERVER_ONLY;
	struct hold *hold = holds_find(&ledger->holds, event->id);
	uint32_t status = hold_check(ledger, hold, 0, 1);
	if (status != SKULD_OK)
		return status;
	if (!past_due(ledger, hold))
		return SKULD_HOLD_NOT_DUE;
	int64_t quantity = hold->remaining;
	struct expansion x;
	hold_expansion(ledger, hold, quantity, &x);
	apply_units(ledger, &x, hold->location, offsetof(struct stock, reserved), -1);
	hold_close(ledger, hold, LEDGER_HOLD_EXPIRED);
	hold_result(ledger, hold, &x, quantity, 0, result);
	return SKULD_OK;
}

static uint32_t reallocate(struct ledger *ledger, const struct skuld_event *event,
                           struct skuld_result *result)
{
	struct hold *hold = holds_find(&ledger->holds, event->id);
	uint32_t status = hold_check(ledger, hold, 0, 0);
	if (status != SKULD_OK)
		return status;
	const struct location *target = catalog_location(&ledger->catalog, event->target);
	if (target == NULL)
		return SKULD_LOCATION_UNKNOWN;
	if (event->target == hold->location)
		return SKULD_SAME_LOCATION;
	status = selling(target);
	if (status != SKULD_OK)
		return status;
	int64_t floor = 0;
	if (hold->channel != 0) {
		const struct pool_entry *entry =
		        catalog_pool_find(&ledger->catalog, hold->channel, event->target);
		if (entry == NULL)
			return SKULD_LOCATION_MISMATCH;
		floor = entry->floor;
	}
	const struct item *item = hold_item(ledger, hold);
	if (ledger_spare(ledger, item, hold->item, event->target, floor) < hold->remaining)
		return SKULD_INSUFFICIENT;
	struct expansion x;
	hold_expansion(ledger, hold, hold->remaining, &x);
	struct expansion to;
	ledger_expand(ledger, item, hold->item, hold->remaining, &to);
	ledger_resolve(ledger, &to, event->target);
	/* spare >= remaining > 0 at the target: its entries exist. */
	if (!units_within(&to, offsetof(struct stock, reserved)))
		return SKULD_QUANTITY_INVALID;
	apply_units(ledger, &x, hold->location, offsetof(struct stock, reserved), -1);
	apply_units(ledger, &to, event->target, offsetof(struct stock, reserved), 1);
	journal_set_u32(&ledger->journal, &hold->location, event->target);
	journal_set_u32(&ledger->journal, &hold->stock, hold_stock(ledger, item, &to));
	hold_result(ledger, hold, &to, hold->remaining, 0, result);
	return SKULD_OK;
}

uint32_t reservation_apply(struct ledger *ledger, const struct skuld_event *event,
                           enum ledger_source source, struct skuld_result *result)
{
	switch (event->kind) {
	case SKULD_RESERVE:
		return reserve(ledger, event, result);
	case SKULD_EXTEND:
		return extend(ledger, event, result);
	case SKULD_COMMIT:
		return commit(ledger, event, result);
	case SKULD_RELEASE:
		return release(ledger, event, result);
	case SKULD_REALLOCATE:
		return reallocate(ledger, event, result);
	case SKULD_EXPIRE:
		return expire(ledger, event, source, result);
	default:
		SKULD_ASSERT(!"not a hold kind");
		return SKULD_ERR_EVENT_KIND;
	}
}
