/*
 * movements.c — the stock movements that do not involve holds: RECEIVE,
 * ADJUST, INCOMING, MOVE, COUNT_OPEN, COUNT_CLOSE, SALE, FULFILL, RETURN,
 * TRANSFER_OUT and TRANSFER_IN (docs/LEDGER.md section 5).
 *
 * Owns: the checks of each kind in the documented order, then its effect.
 *
 * Invariants:
 *   - Every check runs before the first change: a failed event changes
 *     nothing. Creating a missing stock entry is checked (CATALOG_FULL) just
 *     before the counter bound check, which is always last.
 *   - All counters stay within +-LEDGER_QUANTITY_MAX.
 */
#include <string.h>

#include "ledger_internal.h"
#include "skuld_assert.h"

/* Event time E: occurred_at, or the batch time when the source gave none. */
static uint64_t event_time(const struct ledger *ledger, const struct skuld_event *event)
{
	return event->occurred_at != 0 ? event->occurred_at : ledger->now;
}

/* Item check, then stocked (bundles refused) or expandable (bundles need a
 * component), then location check. */
static uint32_t check_item_location(const struct ledger *ledger, const struct skuld_event *event,
                                    int expandable, const struct item **item,
                                    const struct location **location)
{
	*item = catalog_item(&ledger->catalog, event->item);
	if (*item == NULL)
		return SKULD_ITEM_UNKNOWN;
	if ((*item)->bundle && !expandable)
		return SKULD_BUNDLE_NOT_STOCKED;
	if ((*item)->bundle && (*item)->components == 0)
		return SKULD_BUNDLE_INVALID;
	*location = catalog_location(&ledger->catalog, event->location);
	if (*location == NULL)
		return SKULD_LOCATION_UNKNOWN;
	return SKULD_OK;
}

static void result_fill(const struct ledger *ledger, const struct item *item,
                        const struct skuld_event *event, int64_t quantity,
                        struct skuld_result *result)
{
	result->location = event->location;
	result->quantity = quantity;
	result->available = ledger_spare(ledger, item, event->item, event->location, 0);
}

static void freeze(struct ledger *ledger, struct item *item)
{
	if (item->bundle && !item->frozen)
		journal_set_u8(&ledger->journal, &item->frozen, 1);
}

/* 1 when the entry of (item, location) is missing and cannot be created. */
static int room_lacking(const struct ledger *ledger, uint32_t item, uint32_t location)
{
	return stock_find(&ledger->stocks, item, location) == NULL &&
	       stock_room(&ledger->stocks) == 0;
}

static uint32_t receive(struct ledger *ledger, const struct skuld_event *event,
                        const struct item *item, const struct location *location,
                        struct skuld_result *result)
{
	if (!quantity_positive(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (location->state == SKULD_LIFECYCLE_CLOSED)
		return SKULD_LOCATION_CLOSED;
	if (room_lacking(ledger, event->item, event->location))
		return SKULD_CATALOG_FULL;
	const struct stock *view = ledger_stock_view(ledger, event->item, event->location);
	if (!quantity_within(view->on_hand + event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct journal *journal = &ledger->journal;
	struct stock *stock = stock_get(&ledger->stocks, journal, event->item, event->location);
	journal_set_i64(journal, &stock->on_hand, stock->on_hand + event->quantity);
	if ((event->flags & SKULD_EVENT_FROM_INCOMING) && stock->incoming > 0) {
		int64_t lower =
		        stock->incoming < event->quantity ? stock->incoming : event->quantity;
		journal_set_i64(journal, &stock->incoming, stock->incoming - lower);
	}
	result_fill(ledger, item, event, event->quantity, result);
	return SKULD_OK;
}

static uint32_t adjust(struct ledger *ledger, const struct skuld_event *event,
                       const struct item *item, struct skuld_result *result)
{
	int64_t quantity = event->quantity;
	if (quantity == 0 || !quantity_within(quantity))
		return SKULD_QUANTITY_INVALID;
	if (event->reason == SKULD_REASON_NONE || event->reason > SKULD_REASON_LAST)
		return SKULD_INVALID_STATE;
	const struct stock *view = ledger_stock_view(ledger, event->item, event->location);
	if (quantity < 0 && view->on_hand + quantity < 0)
		return SKULD_QUANTITY_EXCEEDS;
	if (room_lacking(ledger, event->item, event->location))
		return SKULD_CATALOG_FULL;
	if (!quantity_within(view->on_hand + quantity))
		return SKULD_QUANTITY_INVALID;
	struct stock *stock =
	        stock_get(&ledger->stocks, &ledger->journal, event->item, event->location);
	journal_set_i64(&ledger->journal, &stock->on_hand, stock->on_hand + quantity);
	result_fill(ledger, item, event, quantity, result);
	return SKULD_OK;
}

static uint32_t incoming(struct ledger *ledger, const struct skuld_event *event,
                         const struct item *item, const struct location *location,
                         struct skuld_result *result)
{
	int64_t quantity = event->quantity;
	if (quantity == 0 || !quantity_within(quantity))
		return SKULD_QUANTITY_INVALID;
	if (quantity > 0 && location->state == SKULD_LIFECYCLE_CLOSED)
		return SKULD_LOCATION_CLOSED;
	const struct stock *view = ledger_stock_view(ledger, event->item, event->location);
	if (view->incoming + quantity < 0)
		return SKULD_QUANTITY_EXCEEDS;
	if (room_lacking(ledger, event->item, event->location))
		return SKULD_CATALOG_FULL;
	if (!quantity_within(view->incoming + quantity))
		return SKULD_QUANTITY_INVALID;
	struct stock *stock =
	        stock_get(&ledger->stocks, &ledger->journal, event->item, event->location);
	journal_set_i64(&ledger->journal, &stock->incoming, stock->incoming + quantity);
	result_fill(ledger, item, event, quantity, result);
	return SKULD_OK;
}

static int64_t *bucket_field(struct stock *stock, uint8_t bucket)
{
	return bucket == SKULD_BUCKET_DAMAGED ? &stock->damaged : &stock->quarantine;
}

static uint32_t move(struct ledger *ledger, const struct skuld_event *event,
                     const struct item *item, struct skuld_result *result)
{
	int64_t quantity = event->quantity;
	if (!quantity_positive(quantity))
		return SKULD_QUANTITY_INVALID;
	uint8_t from = event->bucket_from;
	uint8_t to = event->bucket_to;
	if (from > SKULD_BUCKET_LAST || to > SKULD_BUCKET_LAST || from == to)
		return SKULD_INVALID_STATE;
	const struct stock *view = ledger_stock_view(ledger, event->item, event->location);
	if (from == SKULD_BUCKET_SELLABLE) {
		if (stock_available(view) < quantity)
			return SKULD_INSUFFICIENT;
	} else {
		int64_t have = from == SKULD_BUCKET_DAMAGED ? view->damaged : view->quarantine;
		if (have < quantity)
			return SKULD_QUANTITY_EXCEEDS;
	}
	/* The entry exists: the source bucket or available held the units. */
	if (to != SKULD_BUCKET_SELLABLE) {
		int64_t target = to == SKULD_BUCKET_DAMAGED ? view->damaged : view->quarantine;
		if (!quantity_within(target + quantity))
			return SKULD_QUANTITY_INVALID;
	}
	struct journal *journal = &ledger->journal;
	struct stock *stock = stock_get(&ledger->stocks, journal, event->item, event->location);
	if (from != SKULD_BUCKET_SELLABLE) {
		int64_t *field = bucket_field(stock, from);
		journal_set_i64(journal, field, *field - quantity);
	}
	if (to != SKULD_BUCKET_SELLABLE) {
		int64_t *field = bucket_field(stock, to);
		journal_set_i64(journal, field, *field + quantity);
	}
	result_fill(ledger, item, event, quantity, result);
	return SKULD_OK;
}

static uint32_t count_open(struct ledger *ledger, const struct skuld_event *event,
                           const struct item *item, struct skuld_result *result)
{
	if (counts_find(&ledger->counts, event->item, event->location) != NULL)
		return SKULD_COUNT_EXISTS;
	if (table_room(&ledger->counts.table) == 0)
		return SKULD_CATALOG_FULL;
	const struct stock *view = ledger_stock_view(ledger, event->item, event->location);
	struct count *count =
	        counts_open(&ledger->counts, &ledger->journal, event->item, event->location);
	count->id = event->id;
	count->expected = view->on_hand;
	count->opened_at = event_time(ledger, event);
	result_fill(ledger, item, event, count->expected, result);
	return SKULD_OK;
}

/* Queues a discrepancy of (item, location) for the event being applied;
 * it is remembered once the event (or its chain) has succeeded. */
static void note(struct ledger *ledger, const struct skuld_event *event, uint32_t kind,
                 uint32_t item, int64_t expected, int64_t found)
{
	struct discrepancy_note entry = {
	        .item = item,
	        .location = event->location,
	        .sequence = ledger->sequence,
	        .at = event_time(ledger, event),
	        .expected = expected,
	        .found = found,
	        .kind = kind,
	};
	discrepancies_note(&ledger->discrepancies, &entry);
}

/* COUNT_OFF: the count differs from expected by more than count_off_units
 * and by more than count_off_percent of |expected| (docs/LEDGER.md section
 * 13). Both figures are within QMAX, so 128-bit products cannot overflow. */
static int count_off(const struct ledger_config *config, int64_t expected, int64_t counted)
{
	__int128 difference = (__int128)counted - expected;
	if (difference < 0)
		difference = -difference;
	__int128 base = expected < 0 ? -(__int128)expected : expected;
	return difference > (__int128)config->count_off_units &&
	       difference * 100 > base * config->count_off_percent;
}

static uint32_t count_close(struct ledger *ledger, const struct skuld_event *event,
                            const struct item *item, struct skuld_result *result)
{
	struct count *count = counts_find(&ledger->counts, event->item, event->location);
	if (count == NULL || count->id != event->id)
		return SKULD_COUNT_UNKNOWN;
	if (event->quantity < 0 || event->quantity > LEDGER_QUANTITY_MAX)
		return SKULD_QUANTITY_INVALID;
	int64_t delta = event->quantity - count->expected;
	int64_t expected = count->expected;
	const struct stock *view = ledger_stock_view(ledger, event->item, event->location);
	if (room_lacking(ledger, event->item, event->location))
		return SKULD_CATALOG_FULL;
	if (!quantity_within(view->on_hand + delta))
		return SKULD_QUANTITY_INVALID;
	struct journal *journal = &ledger->journal;
	struct stock *stock = stock_get(&ledger->stocks, journal, event->item, event->location);
	journal_set_i64(journal, &stock->on_hand, stock->on_hand + delta);
	if (count->opened_at > stock->counted_at)
		journal_set_u64(journal, &stock->counted_at, count->opened_at);
	counts_close(&ledger->counts, journal, count);
	result_fill(ledger, item, event, delta, result);
	if (delta < 0)
		result->flags |= SKULD_RESULT_DISCREPANCY;
	if (count_off(&ledger->config, expected, event->quantity))
		note(ledger, event, NOTE_COUNT_OFF, event->item, expected, event->quantity);
	return SKULD_OK;
}

static uint32_t sale(struct ledger *ledger, const struct skuld_event *event, struct item *item,
                     const struct location *location, struct skuld_result *result)
{
	if (!quantity_positive(event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct expansion x;
	if (ledger_expand(ledger, item, event->item, event->quantity, &x) != SKULD_OK)
		return SKULD_QUANTITY_INVALID;
	uint64_t when = event_time(ledger, event);
	uint16_t flags = 0;
	uint64_t pre_count = 0; /* bit i: component i was in an applied count */
	uint32_t missing = 0;
	int out_of_bounds = 0;
	for (uint32_t i = 0; i < x.count; i++) {
		const struct stock *view = ledger_stock_view(ledger, x.item[i], event->location);
		if (when < view->counted_at) {
			pre_count |= 1ull << i;
			flags |= SKULD_RESULT_PRE_COUNT;
			continue;
		}
		if (stock_available(view) < x.units[i])
			flags |= SKULD_RESULT_DISCREPANCY;
		missing += stock_find(&ledger->stocks, x.item[i], event->location) == NULL;
		if (!quantity_within(view->on_hand - x.units[i]))
			out_of_bounds = 1;
		const struct count *count =
		        counts_find(&ledger->counts, x.item[i], event->location);
		if (count != NULL && when < count->opened_at &&
		    !quantity_within(count->expected - x.units[i]))
			out_of_bounds = 1;
	}
	if (missing > stock_room(&ledger->stocks))
		return SKULD_CATALOG_FULL;
	if (out_of_bounds)
		return SKULD_QUANTITY_INVALID;
	struct journal *journal = &ledger->journal;
	for (uint32_t i = 0; i < x.count; i++) {
		if (pre_count & (1ull << i))
			continue;
		struct stock *stock =
		        stock_get(&ledger->stocks, journal, x.item[i], event->location);
		int64_t shown = stock_available(stock);
		if (shown < x.units[i])
			note(ledger, event, NOTE_SALE_SHORT, x.item[i], shown, x.units[i]);
		journal_set_i64(journal, &stock->on_hand, stock->on_hand - x.units[i]);
		struct count *count = counts_find(&ledger->counts, x.item[i], event->location);
		if (count != NULL && when < count->opened_at)
			journal_set_i64(journal, &count->expected, count->expected - x.units[i]);
	}
	if (location->state != SKULD_LIFECYCLE_ACTIVE)
		flags |= SKULD_RESULT_LATE;
	if (item->bundle)
		flags |= SKULD_RESULT_EXPANDED;
	freeze(ledger, item);
	result_fill(ledger, item, event, event->quantity, result);
	result->flags = flags;
	return SKULD_OK;
}

static uint32_t fulfill(struct ledger *ledger, const struct skuld_event *event, struct item *item,
                        struct skuld_result *result)
{
	if (!quantity_positive(event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct expansion x;
	if (ledger_expand(ledger, item, event->item, event->quantity, &x) != SKULD_OK)
		return SKULD_QUANTITY_INVALID;
	int out_of_bounds = 0;
	for (uint32_t i = 0; i < x.count; i++) {
		const struct stock *view = ledger_stock_view(ledger, x.item[i], event->location);
		if (view->committed < x.units[i])
			return SKULD_QUANTITY_EXCEEDS;
		if (!quantity_within(view->on_hand - x.units[i]))
			out_of_bounds = 1;
	}
	if (out_of_bounds)
		return SKULD_QUANTITY_INVALID;
	/* committed >= units > 0: every entry exists. */
	struct journal *journal = &ledger->journal;
	for (uint32_t i = 0; i < x.count; i++) {
		struct stock *stock =
		        stock_get(&ledger->stocks, journal, x.item[i], event->location);
		journal_set_i64(journal, &stock->committed, stock->committed - x.units[i]);
		journal_set_i64(journal, &stock->on_hand, stock->on_hand - x.units[i]);
	}
	freeze(ledger, item);
	result_fill(ledger, item, event, event->quantity, result);
	if (item->bundle)
		result->flags |= SKULD_RESULT_EXPANDED;
	return SKULD_OK;
}

static uint32_t return_goods(struct ledger *ledger, const struct skuld_event *event,
                             struct item *item, const struct location *location,
                             struct skuld_result *result)
{
	if (!quantity_positive(event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct expansion x;
	if (ledger_expand(ledger, item, event->item, event->quantity, &x) != SKULD_OK)
		return SKULD_QUANTITY_INVALID;
	if (event->reason > SKULD_DISPOSITION_QUARANTINE)
		return SKULD_INVALID_STATE;
	if (location->state == SKULD_LIFECYCLE_CLOSED)
		return SKULD_LOCATION_CLOSED;
	int expected = (event->flags & SKULD_EVENT_EXPECTED) != 0;
	int out_of_bounds = 0;
	for (uint32_t i = 0; i < x.count; i++) {
		const struct stock *view = ledger_stock_view(ledger, x.item[i], event->location);
		int64_t units = x.units[i];
		if (expected) {
			out_of_bounds |= !quantity_within(view->incoming + units);
			continue;
		}
		out_of_bounds |= !quantity_within(view->on_hand + units);
		if (event->reason == SKULD_DISPOSITION_DAMAGED)
			out_of_bounds |= !quantity_within(view->damaged + units);
		if (event->reason == SKULD_DISPOSITION_QUARANTINE)
			out_of_bounds |= !quantity_within(view->quarantine + units);
	}
	if (ledger_missing(ledger, &x, event->location) > stock_room(&ledger->stocks))
		return SKULD_CATALOG_FULL;
	if (out_of_bounds)
		return SKULD_QUANTITY_INVALID;
	struct journal *journal = &ledger->journal;
	for (uint32_t i = 0; i < x.count; i++) {
		struct stock *stock =
		        stock_get(&ledger->stocks, journal, x.item[i], event->location);
		int64_t units = x.units[i];
		if (expected) {
			journal_set_i64(journal, &stock->incoming, stock->incoming + units);
			continue;
		}
		journal_set_i64(journal, &stock->on_hand, stock->on_hand + units);
		if (event->reason == SKULD_DISPOSITION_DAMAGED)
			journal_set_i64(journal, &stock->damaged, stock->damaged + units);
		if (event->reason == SKULD_DISPOSITION_QUARANTINE)
			journal_set_i64(journal, &stock->quarantine, stock->quarantine + units);
	}
	freeze(ledger, item);
	result_fill(ledger, item, event, event->quantity, result);
	if (item->bundle)
		result->flags |= SKULD_RESULT_EXPANDED;
	return SKULD_OK;
}

static uint32_t transfer_out(struct ledger *ledger, const struct skuld_event *event,
                             const struct item *item, struct skuld_result *result)
{
	const struct location *target = catalog_location(&ledger->catalog, event->target);
	if (target == NULL)
		return SKULD_LOCATION_UNKNOWN;
	if (event->target == event->location)
		return SKULD_SAME_LOCATION;
	if (target->state == SKULD_LIFECYCLE_CLOSED)
		return SKULD_LOCATION_CLOSED;
	int64_t quantity = event->quantity;
	if (!quantity_positive(quantity))
		return SKULD_QUANTITY_INVALID;
	if (transfers_find(&ledger->transfers, event->id, event->item) != NULL)
		return SKULD_TRANSFER_EXISTS;
	if (table_room(&ledger->transfers.table) == 0)
		return SKULD_CATALOG_FULL;
	const struct stock *from = ledger_stock_view(ledger, event->item, event->location);
	if (stock_available(from) < quantity)
		return SKULD_INSUFFICIENT;
	if (room_lacking(ledger, event->item, event->target))
		return SKULD_CATALOG_FULL;
	const struct stock *to = ledger_stock_view(ledger, event->item, event->target);
	if (!quantity_within(to->incoming + quantity))
		return SKULD_QUANTITY_INVALID;
	struct journal *journal = &ledger->journal;
	struct stock *source = stock_get(&ledger->stocks, journal, event->item, event->location);
	journal_set_i64(journal, &source->on_hand, source->on_hand - quantity);
	struct stock *destination = stock_get(&ledger->stocks, journal, event->item, event->target);
	journal_set_i64(journal, &destination->incoming, destination->incoming + quantity);
	struct transfer *transfer =
	        transfers_open(&ledger->transfers, journal, event->id, event->item);
	transfer->from = event->location;
	transfer->to = event->target;
	transfer->remaining = quantity;
	result_fill(ledger, item, event, quantity, result);
	return SKULD_OK;
}

static uint32_t transfer_in(struct ledger *ledger, const struct skuld_event *event,
                            const struct item *item, struct skuld_result *result)
{
	int64_t quantity = event->quantity;
	if (!quantity_positive(quantity))
		return SKULD_QUANTITY_INVALID;
	struct transfer *transfer = transfers_find(&ledger->transfers, event->id, event->item);
	if (transfer == NULL)
		return SKULD_TRANSFER_UNKNOWN;
	if (transfer->to != event->location)
		return SKULD_LOCATION_MISMATCH;
	if (quantity > transfer->remaining)
		return SKULD_QUANTITY_EXCEEDS;
	if (room_lacking(ledger, event->item, event->location))
		return SKULD_CATALOG_FULL;
	const struct stock *view = ledger_stock_view(ledger, event->item, event->location);
	if (!quantity_within(view->on_hand + quantity))
		return SKULD_QUANTITY_INVALID;
	struct journal *journal = &ledger->journal;
	struct stock *stock = stock_get(&ledger->stocks, journal, event->item, event->location);
	journal_set_i64(journal, &stock->on_hand, stock->on_hand + quantity);
	if (stock->incoming > 0) {
		int64_t lower = stock->incoming < quantity ? stock->incoming : quantity;
		journal_set_i64(journal, &stock->incoming, stock->incoming - lower);
	}
	if (transfer->remaining == quantity)
		transfers_close(&ledger->transfers, journal, transfer);
	else
		journal_set_i64(journal, &transfer->remaining, transfer->remaining - quantity);
	result_fill(ledger, item, event, quantity, result);
	return SKULD_OK;
}

uint32_t discrepancy_ack_apply(struct ledger *ledger, const struct skuld_event *event)
{
	if (catalog_item(&ledger->catalog, event->item) == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (catalog_location(&ledger->catalog, event->location) == NULL)
		return SKULD_LOCATION_UNKNOWN;
	/* No record (never one, evicted, or before tracking began): a
	 * successful no-op. The status must not depend on the table, whose
	 * contents depend on discrepancies_max and on where tracking began,
	 * or replay could disagree with the result in the log. */
	if (discrepancies_find(&ledger->discrepancies, event->item, event->location) == NULL)
		return SKULD_OK;
	struct discrepancy_note entry = {
	        .item = event->item,
	        .location = event->location,
	        .sequence = ledger->sequence,
	        .at = event_time(ledger, event),
	        .kind = NOTE_ACK,
	};
	discrepancies_note(&ledger->discrepancies, &entry);
	return SKULD_OK;
}

uint32_t movement_apply(struct ledger *ledger, const struct skuld_event *event,
                        struct skuld_result *result)
{
	int expandable = event->kind == SKULD_SALE || event->kind == SKULD_FULFILL ||
	                 event->kind == SKULD_RETURN;
	const struct item *item;
	const struct location *location;
	uint32_t status = check_item_location(ledger, event, expandable, &item, &location);
	if (status != SKULD_OK)
		return status;
	/* Items are owned by the catalog; the handlers may freeze a bundle. */
	struct item *mutable_item = &ledger->catalog.items[event->item];
	switch (event->kind) {
	case SKULD_RECEIVE:
		return receive(ledger, event, item, location, result);
	case SKULD_ADJUST:
		return adjust(ledger, event, item, result);
	case SKULD_INCOMING:
		return incoming(ledger, event, item, location, result);
	case SKULD_MOVE:
		return move(ledger, event, item, result);
	case SKULD_COUNT_OPEN:
		return count_open(ledger, event, item, result);
	case SKULD_COUNT_CLOSE:
		return count_close(ledger, event, item, result);
	case SKULD_SALE:
		return sale(ledger, event, mutable_item, location, result);
	case SKULD_FULFILL:
		return fulfill(ledger, event, mutable_item, result);
	case SKULD_RETURN:
		return return_goods(ledger, event, mutable_item, location, result);
	case SKULD_TRANSFER_OUT:
		return transfer_out(ledger, event, item, result);
	case SKULD_TRANSFER_IN:
		return transfer_in(ledger, event, item, result);
	default:
		SKULD_ASSERT(!"not a movement kind");
		return SKULD_ERR_EVENT_KIND;
	}
}
