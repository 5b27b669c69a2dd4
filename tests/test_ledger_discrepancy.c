/*
 * test_ledger_discrepancy.c — what the ledger remembers of discrepancies
 * (docs/LEDGER.md section 13): a SALE that found too little available, a
 * COUNT_CLOSE off by more than the threshold, their sequences, times and
 * figures, DISCREPANCY_ACK, a failed chain leaving nothing, the eviction
 * rule of a full table, paging, and a snapshot round trip.
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
	cr_assert_eq(helper_status(ledger, ev_ack(1, 1)), SKULD_DISCREPANCY_UNKNOWN);
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
	cr_assert_eq(helper_status(ledger, ev_ack(3, 1)), SKULD_DISCREPANCY_UNKNOWN);
	ledger_destroy(ledger);
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
