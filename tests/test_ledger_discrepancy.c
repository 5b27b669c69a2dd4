/*
 * test_ledger_discrepancy.c — what the ledger remembers of discrepancies
 * (docs/LEDGER.md section 13): a SALE that found too little available, a
 * COUNT_CLOSE off by more than the threshold, their sequences, times and
 * figures, DISCREPANCY_ACK, a failed chain leaving nothing, the eviction
 * rule of a full table (against a model that scans for its victim), an ACK
 * whose result does not depend on the table's size, paging, and a snapshot
 * round trip.
 */
#include "ledger_helpers.h"

#include <stdlib.h>

#include "ledger_snapshot.h"

#define T(s) (HELPER_T0 + (uint64_t)(s)*HELPER_S)

static struct skuld_event ev_at(uint16_t kind, uint32_t item, uint32_t location, int64_t quantity,
                                uint64_t occurred_at)
{
	struct skuld_event event = ev_stock(kind, item, location, quantity);
	event.occurred_at = occurred_at;
	return event;
}

static struct skuld_event ev_count(uint16_t kind, uint32_t item, uint32_t location, uint64_t id,
                                   int64_t quantity)
{
	struct skuld_event event = ev_stock(kind, item, location, quantity);
	event.id = id;
	return event;
}

static struct skuld_event ev_ack(uint32_t item, uint32_t location)
{
	struct skuld_event event = ev(SKULD_DISCREPANCY_ACK);
	event.item = item;
	event.location = location;
	return event;
}

/* The record of (item, location), asserting there is one. */
static struct ledger_discrepancy_info record_of(struct ledger *ledger, uint32_t item,
                                                uint32_t location)
{
	static struct ledger_discrepancy_info page[SKULD_QUERY_LIMIT_MAX];
	int more = 0;
	uint32_t count =
	        ledger_discrepancy_page(ledger, location, 0, 0, SKULD_QUERY_LIMIT_MAX, page, &more);
	for (uint32_t i = 0; i < count; i++) {
		if (page[i].item == item)
			return page[i];
	}
	cr_assert_fail("no discrepancy of item %u at location %u", item, location);
	return page[0];
}

static uint32_t records(struct ledger *ledger)
{
	struct ledger_discrepancy_figures figures;
	ledger_discrepancy_figures(ledger, &figures);
	return figures.records;
}

/* Applies one event as log sequence `sequence`. */
static struct skuld_result apply_as(struct ledger *ledger, uint64_t sequence,
                                    struct skuld_event event)
{
	ledger_sequence(ledger, sequence);
	return helper_apply(ledger, event);
}

Test(ledger_discrepancy, a_sale_at_zero_is_remembered_with_sequence_time_and_figures)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 1);
	struct skuld_result result = apply_as(ledger, 100, ev_at(SKULD_SALE, 1, 1, 3, T(5)));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert(result.flags & SKULD_RESULT_DISCREPANCY);
	struct ledger_discrepancy_info info = record_of(ledger, 1, 1);
	cr_assert_eq(info.first_sequence, 100);
	cr_assert_eq(info.last_sequence, 100);
	cr_assert_eq(info.first_at, T(5));
	cr_assert_eq(info.last_at, T(5));
	cr_assert_eq(info.expected, 1, "the ledger showed 1 available");
	cr_assert_eq(info.found, 3, "the till sold 3");
	cr_assert_eq(info.occurrences, 1);
	cr_assert_eq(info.kinds, 1);
	cr_assert_eq(info.last_kind, 1);
	cr_assert_eq(info.acknowledged, 0);
	/* Another sale at -2 available, occurred later: the same record. */
	apply_as(ledger, 205, ev_at(SKULD_SALE, 1, 1, 1, T(9)));
	info = record_of(ledger, 1, 1);
	cr_assert_eq(info.first_sequence, 100);
	cr_assert_eq(info.last_sequence, 205);
	cr_assert_eq(info.first_at, T(5));
	cr_assert_eq(info.last_at, T(9));
	cr_assert_eq(info.expected, -2);
	cr_assert_eq(info.found, 1);
	cr_assert_eq(info.occurrences, 2);
	cr_assert_eq(records(ledger), 1);
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, a_covered_sale_and_a_repeated_key_add_nothing)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 5);
	helper_ok(ledger, ev_stock(SKULD_SALE, 1, 1, 5));
	cr_assert_eq(records(ledger), 0, "exactly what was available");
	struct skuld_event short_sale = ev_stock(SKULD_SALE, 1, 1, 2);
	helper_ok(ledger, short_sale);
	struct skuld_result again = helper_apply(ledger, short_sale);
	cr_assert(again.flags & SKULD_RESULT_REPLAYED);
	cr_assert_eq(record_of(ledger, 1, 1).occurrences, 1, "a repeated key is not a new sale");
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, without_sequences_events_are_numbered_on)
{
	struct ledger *ledger = helper_ledger(); /* 12 definitions: events 1..12 */
	helper_ok(ledger, ev_stock(SKULD_SALE, 2, 3, 1));
	cr_assert_eq(record_of(ledger, 2, 3).first_sequence, 13);
	struct skuld_event batch[3] = {ev_stock(SKULD_RECEIVE, 4, 1, 1),
	                               ev_stock(SKULD_SALE, 4, 1, 1),
	                               ev_stock(SKULD_SALE, 4, 1, 1)};
	struct skuld_result results[3];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, batch, 3, results);
	struct ledger_discrepancy_info info = record_of(ledger, 4, 1);
	cr_assert_eq(info.first_sequence, 16, "the third event of the batch after 13");
	cr_assert_eq(info.first_at, HELPER_T0, "no occurred_at: the batch time");
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, a_count_is_off_beyond_units_and_percent)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.count_off_percent = 5;
	config.count_off_units = 3;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_item(ledger, 1, 0);
	helper_define_item(ledger, 2, 0);
	helper_define_location(ledger, 1);
	helper_receive(ledger, 1, 1, 100);
	helper_receive(ledger, 2, 1, 10);
	/* 100 expected, 96 counted: 4 units (over 3) but 4% (not over 5%). */
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 1, 0));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 1, 96));
	cr_assert_eq(records(ledger), 0);
	/* 10 expected, 13 counted: 30% but only 3 units (not over 3). */
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 2, 1, 2, 0));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 2, 1, 2, 13));
	cr_assert_eq(records(ledger), 0);
	/* 96 expected, 90 counted: 6 units and 6.25%: off. */
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 3, 0));
	ledger_sequence(ledger, 500);
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 3, 90));
	struct ledger_discrepancy_info info = record_of(ledger, 1, 1);
	cr_assert_eq(info.kinds, 2);
	cr_assert_eq(info.last_kind, 2);
	cr_assert_eq(info.expected, 96);
	cr_assert_eq(info.found, 90);
	cr_assert_eq(info.first_sequence, 500);
	/* More than expected is off too: 13 expected, 20 counted. */
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 2, 1, 4, 0));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 2, 1, 4, 20));
	info = record_of(ledger, 2, 1);
	cr_assert_eq(info.expected, 13);
	cr_assert_eq(info.found, 20);
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, a_count_of_an_empty_shelf_finding_stock_is_off)
{
	struct ledger *ledger = helper_ledger(); /* default: over 0 units and 5% */
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 2, 1, 0));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 2, 1, 1));
	cr_assert_eq(record_of(ledger, 1, 2).found, 1);
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 3, 2, 0));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 3, 2, 0));
	cr_assert_eq(records(ledger), 1, "a count that agrees is no discrepancy");
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, a_failed_chain_remembers_nothing)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event chain[2] = {ev_stock(SKULD_SALE, 1, 1, 2),
	                               ev_stock(SKULD_RECEIVE, 99, 1, 1)};
	chain[0].flags |= SKULD_EVENT_LINKED;
	struct skuld_result results[2];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, chain, 2, results);
	cr_assert_eq(results[0].status, SKULD_LINKED_FAILED);
	cr_assert_eq(results[1].status, SKULD_ITEM_UNKNOWN);
	cr_assert_eq(records(ledger), 0);
	/* The same chain that succeeds: remembered once the chain is done. */
	chain[1] = ev_stock(SKULD_RECEIVE, 1, 1, 1);
	chain[0].key.lo = 1000;
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, chain, 2, results);
	cr_assert_eq(results[0].status, SKULD_OK);
	cr_assert_eq(record_of(ledger, 1, 1).occurrences, 1);
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, a_bundle_sale_names_each_short_component)
{
	struct ledger *ledger = helper_ledger();
	helper_define_item(ledger, 20, 1);
	helper_component(ledger, 20, 1, 2);
	helper_component(ledger, 20, 2, 1);
	helper_receive(ledger, 1, 1, 10);
	helper_ok(ledger, ev_stock(SKULD_SALE, 20, 1, 3)); /* 6 of item 1, 3 of item 2 */
	cr_assert_eq(records(ledger), 1);
	struct ledger_discrepancy_info info = record_of(ledger, 2, 1);
	cr_assert_eq(info.expected, 0);
	cr_assert_eq(info.found, 3);
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, acknowledge_then_a_new_episode)
{
	struct ledger *ledger = helper_ledger();
	/* No record: a successful no-op that makes none. */
	cr_assert_eq(helper_status(ledger, ev_ack(1, 1)), SKULD_OK);
	cr_assert_eq(records(ledger), 0);
	cr_assert_eq(helper_status(ledger, ev_ack(99, 1)), SKULD_ITEM_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_ack(1, 99)), SKULD_LOCATION_UNKNOWN);
	apply_as(ledger, 40, ev_at(SKULD_SALE, 1, 1, 1, T(1)));
	apply_as(ledger, 41, ev_at(SKULD_SALE, 1, 1, 1, T(2)));
	uint64_t before = ledger_hash(ledger);
	helper_ok(ledger, ev_ack(1, 1));
	cr_assert_neq(ledger_hash(ledger), before, "acknowledged is state");
	struct ledger_discrepancy_info info = record_of(ledger, 1, 1);
	cr_assert_eq(info.acknowledged, 1);
	cr_assert_eq(info.occurrences, 2, "kept for the record");
	helper_ok(ledger, ev_ack(1, 1)); /* again: nothing changes */
	apply_as(ledger, 90, ev_at(SKULD_SALE, 1, 1, 1, T(7)));
	info = record_of(ledger, 1, 1);
	cr_assert_eq(info.acknowledged, 0);
	cr_assert_eq(info.occurrences, 1);
	cr_assert_eq(info.first_sequence, 90);
	cr_assert_eq(info.first_at, T(7));
	ledger_destroy(ledger);
}

Test(ledger_discrepancy, a_full_table_evicts_acknowledged_then_the_oldest_open)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.discrepancies_max = 2;
	struct ledger *ledger = helper_ledger_config(&config);
	for (uint32_t id = 1; id <= 4; id++)
		helper_define_item(ledger, id, 0);
	helper_define_location(ledger, 1);
	apply_as(ledger, 10, ev_stock(SKULD_SALE, 1, 1, 1));
	apply_as(ledger, 11, ev_stock(SKULD_SALE, 2, 1, 1));
	helper_ok(ledger, ev_ack(2, 1));
	apply_as(ledger, 12, ev_stock(SKULD_SALE, 3, 1, 1)); /* evicts acknowledged item 2 */
	struct ledger_discrepancy_figures figures;
	ledger_discrepancy_figures(ledger, &figures);
	cr_assert_eq(figures.records, 2);
	cr_assert_eq(figures.capacity, 2);
	cr_assert_eq(figures.evicted, 1);
	cr_assert_eq(figures.dropped, 0);
	record_of(ledger, 1, 1);
	record_of(ledger, 3, 1);
	apply_as(ledger, 13, ev_stock(SKULD_SALE, 1, 1, 1)); /* item 1 is now the newest */
	apply_as(ledger, 14, ev_stock(SKULD_SALE, 4, 1, 1)); /* drops open item 3 */
	ledger_discrepancy_figures(ledger, &figures);
	cr_assert_eq(figures.dropped, 1);
	cr_assert_eq(figures.evicted, 1);
	record_of(ledger, 1, 1);
	record_of(ledger, 4, 1);
	cr_assert_eq(helper_status(ledger, ev_ack(3, 1)), SKULD_OK, "evicted: a no-op");
	ledger_discrepancy_figures(ledger, &figures);
	cr_assert_eq(figures.records, 2);
	ledger_destroy(ledger);
}

/* The eviction rule as the table scan it replaced: the record with the
 * smallest (not acknowledged, last_sequence, location, item). */
struct model_record {
	uint32_t item;
	uint32_t location;
	uint64_t last_sequence;
	uint8_t acknowledged;
};

static int model_before(const struct model_record *a, const struct model_record *b)
{
	if (a->acknowledged != b->acknowledged)
		return a->acknowledged > b->acknowledged;
	if (a->last_sequence != b->last_sequence)
		return a->last_sequence < b->last_sequence;
	if (a->location != b->location)
		return a->location < b->location;
	return a->item < b->item;
}

static int model_order(const void *a, const void *b)
{
	const struct model_record *x = a, *y = b;
	if (x->location != y->location)
		return x->location < y->location ? -1 : 1;
	return x->item < y->item ? -1 : x->item > y->item;
}

Test(ledger_discrepancy, eviction_picks_the_same_victims_as_a_scan)
{
	enum {
		CAPACITY = 16,
		ITEMS = 24,
		LOCATIONS = 3,
		EVENTS = 3000
	};
	struct ledger_config config;
	ledger_config_default(&config);
	config.discrepancies_max = CAPACITY;
	struct ledger *ledger = helper_ledger_config(&config);
	for (uint32_t id = 1; id <= ITEMS; id++)
		helper_define_item(ledger, id, 0);
	for (uint32_t id = 1; id <= LOCATIONS; id++)
		helper_define_location(ledger, id);
	struct model_record model[CAPACITY];
	uint32_t used = 0;
	uint64_t dropped = 0, evicted = 0, seed = 0x5eed;
	static struct ledger_discrepancy_info page[SKULD_QUERY_LIMIT_MAX];
	for (uint64_t sequence = 1; sequence <= EVENTS; sequence++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t item = 1 + (uint32_t)(seed >> 33) % ITEMS;
		uint32_t location = 1 + (uint32_t)(seed >> 45) % LOCATIONS;
		int ack = (seed >> 60) < 6; /* about 3 in 8 */
		uint32_t at = used;
		for (uint32_t i = 0; i < used; i++) {
			if (model[i].item == item && model[i].location == location)
				at = i;
		}
		if (ack) {
			cr_assert_eq(apply_as(ledger, sequence, ev_ack(item, location)).status,
			             SKULD_OK);
			if (at < used)
				model[at].acknowledged = 1;
		} else {
			struct skuld_result result =
			        apply_as(ledger, sequence, ev_stock(SKULD_SALE, item, location, 1));
			cr_assert(result.flags & SKULD_RESULT_DISCREPANCY);
			if (at == used && used == CAPACITY) {
				uint32_t victim = 0;
				for (uint32_t i = 1; i < used; i++) {
					if (model_before(&model[i], &model[victim]))
						victim = i;
				}
				if (model[victim].acknowledged)
					evicted++;
				else
					dropped++;
				model[victim] = model[--used];
				at = used;
			}
			if (at == used)
				model[used++] =
				        (struct model_record){.item = item, .location = location};
			model[at].last_sequence = sequence;
			model[at].acknowledged = 0;
		}
		struct model_record sorted[CAPACITY];
		memcpy(sorted, model, used * sizeof(model[0]));
		qsort(sorted, used, sizeof(sorted[0]), model_order);
		int more = 0;
		uint32_t count = ledger_discrepancy_page(ledger, 0, 0, 0, SKULD_QUERY_LIMIT_MAX,
		                                         page, &more);
		cr_assert_eq(count, used, "event %llu", (unsigned long long)sequence);
		for (uint32_t i = 0; i < used; i++) {
			cr_assert_eq(page[i].item, sorted[i].item, "event %llu",
			             (unsigned long long)sequence);
			cr_assert_eq(page[i].location, sorted[i].location);
			cr_assert_eq(page[i].last_sequence, sorted[i].last_sequence);
			cr_assert_eq(page[i].acknowledged, sorted[i].acknowledged);
		}
	}
	struct ledger_discrepancy_figures figures;
	ledger_discrepancy_figures(ledger, &figures);
	cr_assert_eq(figures.dropped, dropped);
	cr_assert_eq(figures.evicted, evicted);
	cr_assert_gt(dropped, 100, "the run evicts open records");
	cr_assert_gt(evicted, 100, "and acknowledged ones");
	ledger_destroy(ledger);
}

/* A log written with a small table replays with a larger one (raising
 * discrepancies_max makes the server replay the whole log): an ACK of a
 * record the small table had evicted gives the same result in both. */
Test(ledger_discrepancy, an_ack_result_does_not_depend_on_the_table_size)
{
	struct ledger_config small_config, large_config;
	ledger_config_default(&small_config);
	small_config.discrepancies_max = 2;
	large_config = small_config;
	large_config.discrepancies_max = 64;
	struct ledger *small = helper_ledger_config(&small_config);
	struct ledger *large = helper_ledger_config(&large_config);
	struct ledger *both[2] = {small, large};
	for (int l = 0; l < 2; l++) {
		for (uint32_t id = 1; id <= 4; id++)
			helper_define_item(both[l], id, 0);
		helper_define_location(both[l], 1);
	}
	struct skuld_event log[] = {
	        ev_stock(SKULD_SALE, 1, 1, 1),
	        ev_stock(SKULD_SALE, 2, 1, 1),
	        ev_stock(SKULD_SALE, 3, 1, 1), /* the small table drops item 1 */
	        ev_ack(1, 1),
	        ev_ack(2, 1),
	        ev_ack(4, 1), /* never a record */
	        ev_stock(SKULD_SALE, 4, 1, 1),
	        ev_ack(1, 1),
	};
	for (uint32_t i = 0; i < sizeof(log) / sizeof(log[0]); i++) {
		struct skuld_result logged = apply_as(small, 10 + i, log[i]);
		struct skuld_result replayed = apply_as(large, 10 + i, log[i]);
		cr_assert_eq(logged.status, SKULD_OK, "event %u", i);
		cr_assert_eq(memcmp(&logged, &replayed, sizeof(logged)), 0, "event %u", i);
	}
	cr_assert_eq(records(small), 2);
	cr_assert_eq(records(large), 4);
	cr_assert_eq(record_of(large, 1, 1).acknowledged, 1);
	ledger_destroy(small);
	ledger_destroy(large);
}

Test(ledger_discrepancy, pages_ascend_by_location_then_item)
{
	struct ledger *ledger = helper_ledger();
	const uint32_t pairs[][2] = {{5, 3}, {2, 1}, {7, 1}, {1, 3}, {3, 2}, {8, 4}};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		helper_ok(ledger, ev_stock(SKULD_SALE, pairs[i][0], pairs[i][1], 1));
	struct ledger_discrepancy_info page[4];
	int more = 0;
	uint32_t count = ledger_discrepancy_page(ledger, 0, 0, 0, 4, page, &more);
	cr_assert_eq(count, 4);
	cr_assert(more);
	const uint32_t want[][2] = {{2, 1}, {7, 1}, {3, 2}, {1, 3}};
	for (uint32_t i = 0; i < 4; i++) {
		cr_assert_eq(page[i].item, want[i][0], "record %u", i);
		cr_assert_eq(page[i].location, want[i][1], "record %u", i);
	}
	count = ledger_discrepancy_page(ledger, 0, 3, 1, 4, page, &more);
	cr_assert_eq(count, 2);
	cr_assert(!more);
	cr_assert_eq(page[0].item, 5);
	cr_assert_eq(page[1].item, 8);
	count = ledger_discrepancy_page(ledger, 3, 0, 0, 4, page, &more);
	cr_assert_eq(count, 2, "location 3 only");
	cr_assert(!more);
	cr_assert_eq(page[0].item, 1);
	cr_assert_eq(page[1].item, 5);
	ledger_destroy(ledger);
}

/* Pages of 7 walk a table that evicted on the way: every record once, in
 * order, with `more` set on every page but the last, per location too. */
Test(ledger_discrepancy, small_pages_list_every_record_once_in_order)
{
	enum {
		ITEMS = 40,
		LOCATIONS = 5,
		PAGE = 7
	};
	struct ledger_config config;
	ledger_config_default(&config);
	config.discrepancies_max = 64;
	struct ledger *ledger = helper_ledger_config(&config);
	for (uint32_t id = 1; id <= ITEMS; id++)
		helper_define_item(ledger, id, 0);
	for (uint32_t id = 1; id <= LOCATIONS; id++)
		helper_define_location(ledger, id);
	for (uint32_t i = 0; i < ITEMS * LOCATIONS; i++)
		apply_as(ledger, 10 + i,
		         ev_stock(SKULD_SALE, 1 + (i * 7) % ITEMS, 1 + (i / ITEMS) % LOCATIONS, 1));
	cr_assert_eq(records(ledger), 64);
	uint32_t by_location = 0;
	for (uint32_t location = 0; location <= LOCATIONS; location++) {
		struct ledger_discrepancy_info page[PAGE];
		uint32_t after_location = 0, after_item = 0, seen = 0, count;
		uint64_t last = 0;
		int more = 1;
		while (more) {
			count = ledger_discrepancy_page(ledger, location, after_location,
			                                after_item, PAGE, page, &more);
			cr_assert(count == PAGE || !more, "a short page is the last");
			for (uint32_t i = 0; i < count; i++) {
				uint64_t key = (uint64_t)page[i].location << 32 | page[i].item;
				cr_assert_gt(key, last, "ascending, each once");
				cr_assert(location == 0 || page[i].location == location);
				last = key;
			}
			if (count > 0) {
				after_location = page[count - 1].location;
				after_item = page[count - 1].item;
			}
			seen += count;
		}
		if (location == 0)
			cr_assert_eq(seen, 64);
		else
			by_location += seen;
	}
	cr_assert_eq(by_location, 64, "each location lists its own");
	ledger_destroy(ledger);
}

/* ---- Snapshot round trip ------------------------------------------------------ */

struct buffer {
	uint8_t *bytes;
	size_t size;
	size_t offset;
};

static int buffer_write(void *context, const void *bytes, size_t size)
{
	struct buffer *buffer = context;
	uint8_t *grown = realloc(buffer->bytes, buffer->size + size);
	if (grown == NULL)
		return -ENOMEM;
	buffer->bytes = grown;
	memcpy(buffer->bytes + buffer->size, bytes, size);
	buffer->size += size;
	return 0;
}

static int buffer_read(void *context, void *bytes, size_t size)
{
	struct buffer *buffer = context;
	if (size > buffer->size - buffer->offset)
		return -ENODATA;
	memcpy(bytes, buffer->bytes + buffer->offset, size);
	buffer->offset += size;
	return 0;
}

static struct ledger *round_trip(const struct ledger *ledger, struct buffer *buffer)
{
	memset(buffer, 0, sizeof(*buffer));
	struct snapshot_sink sink = {.write = buffer_write, .context = buffer};
	cr_assert_eq(ledger_snapshot_save(ledger, &sink), 0);
	cr_assert_eq(buffer->size, ledger_snapshot_size(ledger));
	struct ledger *copy = helper_ledger_config(ledger_configuration(ledger));
	struct snapshot_source source = {.read = buffer_read, .context = buffer};
	char reason[256] = "";
	cr_assert_eq(ledger_snapshot_load(copy, &source, reason, sizeof(reason)), 0, "%s", reason);
	cr_assert_eq(buffer->offset, buffer->size);
	return copy;
}

Test(ledger_discrepancy, a_snapshot_carries_records_counters_and_the_sequence)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.discrepancies_max = 3;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_key_next = 1;
	for (uint32_t id = 1; id <= 5; id++)
		helper_define_item(ledger, id, 0);
	helper_define_location(ledger, 1);
	helper_define_location(ledger, 2);
	for (uint32_t id = 1; id <= 4; id++)
		apply_as(ledger, 100 + id, ev_at(SKULD_SALE, id, 1 + id % 2, 1, T(id)));
	helper_ok(ledger, ev_ack(2, 1));
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 3, 2, 1, 0));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 3, 2, 1, 7));
	struct buffer buffer;
	struct ledger *copy = round_trip(ledger, &buffer);
	cr_assert_eq(ledger_hash(copy), ledger_hash(ledger));
	struct ledger_discrepancy_figures a, b;
	ledger_discrepancy_figures(ledger, &a);
	ledger_discrepancy_figures(copy, &b);
	cr_assert_eq(a.dropped, 1);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
	struct ledger_discrepancy_info one = record_of(ledger, 3, 2);
	struct ledger_discrepancy_info two = record_of(copy, 3, 2);
	cr_assert_eq(memcmp(&one, &two, sizeof(one)), 0);
	cr_assert_eq(two.kinds, 3, "sold short, then counted off");
	/* Both go on numbering from the same place and evict the same. */
	struct skuld_event next = ev_stock(SKULD_SALE, 5, 2, 1);
	struct skuld_result r1, r2;
	ledger_apply(ledger, T(50), LEDGER_SOURCE_CLIENT, &next, 1, &r1);
	ledger_apply(copy, T(50), LEDGER_SOURCE_CLIENT, &next, 1, &r2);
	cr_assert_eq(ledger_hash(copy), ledger_hash(ledger));
	cr_assert_eq(record_of(copy, 5, 2).first_sequence, record_of(ledger, 5, 2).first_sequence);
	free(buffer.bytes);
	/* A record a snapshot could not hold is refused with a reason. */
	struct buffer bad;
	struct ledger *again = round_trip(ledger, &bad);
	ledger_destroy(again);
	size_t at = bad.size - 16 - 64; /* the last record, before END */
	bad.bytes[at + 60] = 9;         /* kinds: an unknown bit */
	bad.offset = 0;
	struct ledger *refused = helper_ledger_config(&config);
	struct snapshot_source source = {.read = buffer_read, .context = &bad};
	char reason[256] = "";
	cr_assert_eq(ledger_snapshot_load(refused, &source, reason, sizeof(reason)), -EBADMSG);
	cr_assert_not_null(strstr(reason, "discrepancy"), "%s", reason);
	ledger_destroy(refused);
	free(bad.bytes);
	ledger_destroy(copy);
	ledger_destroy(ledger);
}

/* ---- Where tracking began ----------------------------------------------------- */

/* The fingerprint a version 2 stream carries (as test_snapshot.c). */
static uint64_t fingerprint_v2(const struct ledger_config *c)
{
	const uint64_t fields[] = {
	        c->items_max,
	        c->locations_max,
	        c->channels_max,
	        c->stock_max,
	        c->codes_max,
	        c->barcodes_max,
	        c->attributes_max,
	        c->bundles_max,
	        c->bundle_components_max,
	        c->pool_locations_max,
	        c->channel_buffers_max,
	        c->holds_max,
	        c->closed_holds_max,
	        c->closed_hold_grace_ns,
	        c->ttl_max_s,
	        c->counts_max,
	        c->transfers_max,
	        c->keys_max,
	        c->key_window_ns,
	        c->batch_events_max,
	        c->chain_events_max,
	        c->listings_max,
	};
	return skuld_checksum(fields, sizeof(fields));
}

/* Cuts a version 3 stream of a ledger holding `held` discrepancy records
 * back to what a version 2 server wrote: no DISCREPANCY_STATE (16 + 32
 * bytes) and DISCREPANCIES (16 + held * 64) parts, END as part 19. */
static void buffer_to_v2(struct buffer *buffer, const struct ledger_config *config, uint32_t held)
{
	size_t at = buffer->size - 16 - 64 - (size_t)held * 64;
	uint32_t part[4];
	memcpy(part, buffer->bytes + at, sizeof(part));
	cr_assert_eq(part[0], 19, "DISCREPANCY_STATE");
	uint32_t end_v2[4] = {19, 0, 0, 0};
	memcpy(buffer->bytes + at, end_v2, sizeof(end_v2));
	uint32_t version = 2;
	memcpy(buffer->bytes + 8, &version, sizeof(version));
	uint64_t fingerprint = fingerprint_v2(config);
	memcpy(buffer->bytes + 16, &fingerprint, sizeof(fingerprint));
	buffer->size = at + 16;
	buffer->offset = 0;
}

/* Items 1..4 at location 1, defined with the same keys every time. */
static struct ledger *same_fixture(const struct ledger_config *config)
{
	struct ledger *ledger = helper_ledger_config(config);
	helper_key_next = 1;
	for (uint32_t id = 1; id <= 4; id++)
		helper_define_item(ledger, id, 0);
	helper_define_location(ledger, 1);
	return ledger;
}

/* A server restored from a version 2 snapshot (no discrepancy parts) began
 * tracking at its position; skuld-replay verify replays from event 1 with
 * that origin. Both must agree on the state (ledger_hash) and every result
 * after it, and an ACK's result must not flip with what the table holds. */
Test(ledger_discrepancy, tracking_from_a_version_2_snapshot_agrees_with_a_replay)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.discrepancies_max = 8;
	helper_key_next = 1000;
	const struct skuld_event before[] = {
	        ev_stock(SKULD_SALE, 1, 1, 1),
	        ev_stock(SKULD_SALE, 2, 1, 1),
	        ev_stock(SKULD_SALE, 3, 1, 1),
	        ev_ack(2, 1),
	};
	const struct skuld_event after[] = {
	        ev_ack(1, 1), /* its record is from before the origin */
	        ev_stock(SKULD_SALE, 1, 1, 1),
	        ev_stock(SKULD_SALE, 4, 1, 1),
	        ev_ack(4, 1),
	        ev_stock(SKULD_SALE, 2, 1, 1),
	        ev_ack(3, 1),
	};
	const uint32_t n_before = sizeof(before) / sizeof(before[0]);
	const uint64_t origin = 100 + n_before;
	/* The live ledger ran a version 2 server up to the snapshot. */
	struct ledger *live = same_fixture(&config);
	struct ledger *replayed = same_fixture(&config);
	struct ledger *untracked = same_fixture(&config); /* a replay that ignores the origin */
	ledger_discrepancy_origin_set(replayed, origin);
	for (uint32_t i = 0; i < n_before; i++) {
		apply_as(live, 100 + i, before[i]);
		apply_as(replayed, 100 + i, before[i]);
		apply_as(untracked, 100 + i, before[i]);
	}
	cr_assert_eq(records(live), 3);
	cr_assert_eq(records(replayed), 0, "notes before the origin are not remembered");
	struct buffer buffer;
	memset(&buffer, 0, sizeof(buffer));
	struct snapshot_sink sink = {.write = buffer_write, .context = &buffer};
	cr_assert_eq(ledger_snapshot_save(live, &sink), 0);
	buffer_to_v2(&buffer, &config, records(live));
	struct ledger *restored = helper_ledger_config(&config);
	struct snapshot_source source = {.read = buffer_read, .context = &buffer};
	char reason[256] = "";
	cr_assert_eq(ledger_snapshot_load(restored, &source, reason, sizeof(reason)), 0, "%s",
	             reason);
	cr_assert_eq(ledger_discrepancy_origin(restored), UINT64_MAX, "not yet given a sequence");
	ledger_sequence(restored, origin); /* what the server does at its position */
	cr_assert_eq(ledger_discrepancy_origin(restored), origin);
	cr_assert_eq(records(restored), 0);
	cr_assert_eq(ledger_hash(restored), ledger_hash(replayed));
	cr_assert_neq(ledger_hash(untracked), ledger_hash(replayed));
	for (uint32_t i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
		struct skuld_result a = apply_as(restored, origin + i, after[i]);
		struct skuld_result b = apply_as(replayed, origin + i, after[i]);
		struct skuld_result c = apply_as(untracked, origin + i, after[i]);
		cr_assert_eq(a.status, SKULD_OK, "event %u", i);
		cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "event %u", i);
		cr_assert_eq(memcmp(&a, &c, sizeof(a)), 0, "event %u: the ACK does not flip", i);
		cr_assert_eq(ledger_hash(restored), ledger_hash(replayed), "event %u", i);
	}
	cr_assert_eq(records(restored), 3);
	cr_assert_eq(record_of(restored, 1, 1).first_sequence, origin + 1, "a new record");
	/* A version 3 snapshot carries the origin. */
	struct buffer again;
	struct ledger *copy = round_trip(restored, &again);
	cr_assert_eq(ledger_discrepancy_origin(copy), origin);
	cr_assert_eq(ledger_hash(copy), ledger_hash(restored));
	/* One whose origin is after its next sequence is refused. */
	uint64_t wrong = 1u << 30;
	memcpy(again.bytes + again.size - 16 - 16 - 3 * 64 - 8, &wrong, sizeof(wrong));
	again.offset = 0;
	struct ledger *refused = helper_ledger_config(&config);
	source.context = &again;
	cr_assert_eq(ledger_snapshot_load(refused, &source, reason, sizeof(reason)), -EBADMSG);
	cr_assert_not_null(strstr(reason, "origin"), "%s", reason);
	ledger_destroy(refused);
	ledger_destroy(copy);
	free(again.bytes);
	free(buffer.bytes);
	ledger_destroy(restored);
	ledger_destroy(untracked);
	ledger_destroy(replayed);
	ledger_destroy(live);
}
