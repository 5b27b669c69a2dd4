/*
 * ledger.c — the ledger's public API: creation from a config, batches with
 * linked chains and the idempotency window, queries, and the state hash.
 *
 * Owns: the order of work in a batch (docs/LEDGER.md sections 3 and 4) and
 * the undo of a failed chain. The per-kind rules live in catalog.c,
 * movements.c and reservations.c.
 *
 * Invariants:
 *   - One result per event, whatever happens.
 *   - A failed chain leaves every structure exactly as it was before the
 *     chain, including idempotency keys, holds, the timer and counts.
 *   - No allocation after ledger_create.
 */
#include "memory.h"
#include "ledger.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_internal.h"
#include "skuld_assert.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Discrepancy notes one chain can make: one per component of each event. */
static uint32_t discrepancy_notes(const struct ledger_config *config)
{
	return config->chain_events_max * config->bundle_components_max;
}

/* Most journal entries one event can make (docs: chains). */
static uint32_t journal_per_event(const struct ledger_config *config)
{
	return 4 * config->bundle_components_max + 16;
}

void ledger_config_default(struct ledger_config *config)
{
	memset(config, 0, sizeof(*config));
	config->items_max = 4096;
	config->locations_max = 64;
	config->channels_max = 16;
	config->stock_max = 16384;
	config->codes_max = 8192;
	config->barcodes_max = 8192;
	config->attributes_max = 8192;
	config->bundles_max = 256;
	config->bundle_components_max = 16;
	config->pool_locations_max = 64;
	config->channel_buffers_max = 1024;
	config->holds_max = 4096;
	config->closed_holds_max = 4096;
	config->closed_hold_grace_ns = 24ull * 3600 * 1000000000ull;
	config->ttl_max_s = 7 * 24 * 3600;
	config->counts_max = 1024;
	config->transfers_max = 1024;
	config->keys_max = 65536;
	config->key_window_ns = 30ull * 24 * 3600 * 1000000000ull;
	config->batch_events_max = SKULD_EVENTS_PER_FRAME_MAX;
	config->chain_events_max = 256;
	config->listings_max = 16384;
	config->discrepancies_max = 1024;
	config->count_off_percent = 5;
	config->count_off_units = 0;
}

static int config_valid(const struct ledger_config *config)
{
	const uint32_t fields[] = {
	        config->items_max,
	        config->locations_max,
	        config->channels_max,
	        config->stock_max,
	        config->codes_max,
	        config->barcodes_max,
	        config->attributes_max,
	        config->bundles_max,
	        config->bundle_components_max,
	        config->pool_locations_max,
	        config->channel_buffers_max,
	        config->holds_max,
	        config->closed_holds_max,
	        config->ttl_max_s,
	        config->counts_max,
	        config->transfers_max,
	        config->keys_max,
	        config->batch_events_max,
	        config->chain_events_max,
	        config->listings_max,
	        config->discrepancies_max,
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (fields[i] == 0)
			return 0;
	}
	if (config->bundle_components_max > CATALOG_COMPONENTS_MAX)
		return 0;
	if (config->closed_hold_grace_ns == 0 || config->key_window_ns == 0)
		return 0;
	/* The count threshold may be 0 (every difference counts). */
	if (config->count_off_percent > LEDGER_COUNT_OFF_PERCENT_MAX ||
	    config->count_off_units > (uint64_t)LEDGER_QUANTITY_MAX)
		return 0;
	/* Index slots are uint32 and tables hold at most 2^30 records. */
	const uint32_t limit = 1u << 30;
	if (config->stock_max > limit || config->keys_max > limit || config->listings_max > limit ||
	    config->discrepancies_max > limit ||
	    (uint64_t)config->holds_max + config->closed_holds_max + config->batch_events_max >
	            limit ||
	    config->items_max >= UINT32_MAX || config->locations_max >= UINT32_MAX ||
	    config->channels_max >= UINT32_MAX)
		return 0;
	if ((uint64_t)config->chain_events_max * journal_per_event(config) > limit)
		return 0;
	return 1;
}

size_t ledger_memory_bytes(const struct ledger_config *config)
{
	if (!config_valid(config))
		return 0;
	uint32_t hold_records =
	        config->holds_max + config->closed_holds_max + config->batch_events_max;
	size_t bytes = sizeof(struct ledger);
	bytes += catalog_bytes(config);
	bytes += stock_bytes(config->stock_max);
	bytes += holds_bytes(config->holds_max, config->closed_holds_max, config->batch_events_max);
	bytes += timer_bytes(config->holds_max, hold_records);
	bytes += counts_bytes(config->counts_max);
	bytes += transfers_bytes(config->transfers_max);
	bytes += keys_bytes(config->keys_max);
	bytes += (size_t)config->chain_events_max * journal_per_event(config) *
	         sizeof(struct journal_entry);
	bytes += (size_t)config->holds_max * sizeof(uint32_t);
	bytes += push_bytes(config);
	bytes += discrepancies_bytes(config->discrepancies_max, discrepancy_notes(config));
	return bytes;
}

int ledger_create(const struct ledger_config *config, struct ledger **out)
{
	*out = NULL;
	if (!config_valid(config))
		return -EINVAL;
	struct ledger *ledger = core_calloc(1, sizeof(*ledger));
	if (ledger == NULL)
		return -ENOMEM;
	ledger->config = *config;
	ledger->sequence_next = 1; /* the log's first event sequence */
	uint32_t hold_records =
	        config->holds_max + config->closed_holds_max + config->batch_events_max;
	int rc = catalog_init(&ledger->catalog, config);
	if (rc == 0)
		rc = stock_init(&ledger->stocks, config->stock_max);
	if (rc == 0)
		rc = holds_init(&ledger->holds, config->holds_max, config->closed_holds_max,
		                config->batch_events_max);
	if (rc == 0)
		rc = timer_init(&ledger->timer, config->holds_max, hold_records);
	if (rc == 0)
		rc = counts_init(&ledger->counts, config->counts_max);
	if (rc == 0)
		rc = transfers_init(&ledger->transfers, config->transfers_max);
	if (rc == 0)
		rc = keys_init(&ledger->keys, config->keys_max);
	if (rc == 0)
		rc = journal_init(&ledger->journal,
		                  config->chain_events_max * journal_per_event(config));
	if (rc == 0)
		rc = push_init(&ledger->push, config);
	if (rc == 0)
		rc = discrepancies_init(&ledger->discrepancies, config->discrepancies_max,
		                        discrepancy_notes(config));
	if (rc == 0) {
		ledger->due = core_calloc(config->holds_max, sizeof(uint32_t));
		if (ledger->due == NULL)
			rc = -ENOMEM;
	}
	if (rc != 0) {
		ledger_destroy(ledger);
		return rc;
	}
	*out = ledger;
	return 0;
}

const struct ledger_config *ledger_configuration(const struct ledger *ledger)
{
	return &ledger->config;
}

void ledger_destroy(struct ledger *ledger)
{
	if (ledger == NULL)
		return;
	catalog_free(&ledger->catalog);
	if (ledger->stocks.table.slots != NULL)
		stock_free(&ledger->stocks);
	if (ledger->holds.closed != NULL)
		holds_free(&ledger->holds);
	timer_free(&ledger->timer);
	if (ledger->counts.table.slots != NULL)
		counts_free(&ledger->counts);
	if (ledger->transfers.table.slots != NULL)
		transfers_free(&ledger->transfers);
	keys_free(&ledger->keys);
	journal_free(&ledger->journal);
	push_free(&ledger->push);
	discrepancies_free(&ledger->discrepancies);
	free(ledger->due);
	free(ledger);
}

/* ---- Shared helpers (ledger_internal.h) ---------------------------------- */

static const struct stock stock_zero;

const struct stock *ledger_stock_view(const struct ledger *ledger, uint32_t item, uint32_t location)
{
	const struct stock *stock = stock_find(&ledger->stocks, item, location);
	return stock != NULL ? stock : &stock_zero;
}

uint32_t ledger_missing(const struct ledger *ledger, const struct expansion *x, uint32_t location)
{
	uint32_t missing = 0;
	for (uint32_t i = 0; i < x->count; i++)
		missing += stock_find(&ledger->stocks, x->item[i], location) == NULL;
	return missing;
}

int64_t ledger_spare(const struct ledger *ledger, const struct item *item, uint32_t item_id,
                     uint32_t location, int64_t floor)
{
	if (!item->bundle)
		return stock_available(ledger_stock_view(ledger, item_id, location)) - floor;
	const struct component *components = catalog_components(&ledger->catalog, item);
	int64_t kits = INT64_MAX;
	for (uint32_t i = 0; i < item->components; i++) {
		int64_t spare =
		        stock_available(ledger_stock_view(ledger, components[i].item, location)) -
		        floor;
		if (spare <= 0)
			return 0;
		int64_t here = spare / components[i].quantity;
		if (here < kits)
			kits = here;
	}
	return item->components == 0 ? 0 : kits;
}

/* ---- Batches -------------------------------------------------------------- */

static void result_fail(struct skuld_result *result, uint32_t index, uint32_t status)
{
	memset(result, 0, sizeof(*result));
	result->index = index;
	result->status = (uint16_t)status;
}

static uint32_t dispatch(struct ledger *ledger, const struct skuld_event *event,
                         enum ledger_source source, struct skuld_result *result)
{
	if (catalog_kind(event->kind))
		return catalog_apply(&ledger->catalog, &ledger->journal, event);
	if (movement_kind(event->kind))
		return movement_apply(ledger, event, result);
	if (reservation_kind(event->kind))
		return reservation_apply(ledger, event, source, result);
	if (push_kind(event->kind))
		return push_apply(ledger, event);
	if (event->kind == SKULD_DISCREPANCY_ACK)
		return discrepancy_ack_apply(ledger, event);
	return SKULD_ERR_EVENT_KIND;
}

static int has_stock_target(uint32_t kind)
{
	return movement_kind(kind) || kind == SKULD_RESERVE;
}

/* Kinds that act on an existing hold, whose stock entry is the hold's. */
static int acts_on_hold(uint32_t kind)
{
	return reservation_kind(kind) && kind != SKULD_RESERVE;
}

/* XXH3-64 of the event's 128 bytes: the same function as skuld_checksum,
 * inlined here (XXH_INLINE_ALL) because every client event needs it. */
static uint64_t event_checksum(const struct skuld_event *event)
{
	return XXH3_64bits(event, sizeof(*event));
}

/*
 * The apply pipeline: a software-prefetch schedule over the batch. Before
 * event i is applied, event i + PIPELINE_SLOTS enters the pipeline (its
 * hashes are computed once, into stages[], and its index slots fetched),
 * event i + PIPELINE_RECORDS has its records fetched through those slots,
 * and a hold event i + PIPELINE_HOLD_STOCK reads its hold to fetch the
 * stock entry the hold names (struct hold caches its index). All of it is
 * hints: nothing changes, and a guess
 * made stale by an earlier event of the batch costs only bandwidth. Event i
 * then takes its idempotency key hash from stages[] instead of rehashing.
 */
#define PIPELINE_SIZE       32 /* stages[] ring, a power of two */
#define PIPELINE_SLOTS      16
#define PIPELINE_RECORDS    8
#define PIPELINE_HOLD_STOCK 4

struct stage {
	uint64_t key_hash;   /* keys_hash of the key (client events) */
	uint64_t stock_hash; /* stock_hash_of (item, location) */
	uint64_t hold_hash;  /* table_mix of the hold id (hold events) */
};

struct pipeline {
	const struct skuld_event *events;
	uint32_t count;
	uint32_t entered; /* events before it have entered */
	enum ledger_source source;
	struct stage stages[PIPELINE_SIZE];
};

static struct stage *pipeline_stage(struct pipeline *pipeline, uint32_t index)
{
	return &pipeline->stages[index & (PIPELINE_SIZE - 1)];
}

/* Computes the hashes of event index and prefetches its index slots. */
__attribute__((always_inline)) static inline void
pipeline_enter(const struct ledger *ledger, struct pipeline *pipeline, uint32_t index)
{
	const struct skuld_event *event = &pipeline->events[index];
	struct stage *stage = pipeline_stage(pipeline, index);
	if (pipeline->source == LEDGER_SOURCE_CLIENT) {
		stage->key_hash = keys_hash(event->key);
		keys_prefetch(&ledger->keys, stage->key_hash);
	}
	if (has_stock_target(event->kind) && event->location != 0) {
		stage->stock_hash = stock_hash_of(event->item, event->location);
		table_prefetch_slot(&ledger->stocks.table, stage->stock_hash);
	}
	if (reservation_kind(event->kind)) {
		stage->hold_hash = table_mix(event->id);
		table_prefetch_slot(&ledger->holds.table, stage->hold_hash);
	}
}

/* Prefetches the records of event index through its (fetched) slots. */
__attribute__((always_inline)) static inline void
pipeline_records(const struct ledger *ledger, struct pipeline *pipeline, uint32_t index)
{
	const struct skuld_event *event = &pipeline->events[index];
	const struct stage *stage = pipeline_stage(pipeline, index);
	if (has_stock_target(event->kind) && event->location != 0)
		table_prefetch_record(&ledger->stocks.table, stage->stock_hash);
	if (acts_on_hold(event->kind))
		table_prefetch_record(&ledger->holds.table, stage->hold_hash);
}

/* For a hold event: the stock entry its hold names. */
__attribute__((always_inline)) static inline void
pipeline_hold_stock(const struct ledger *ledger, struct pipeline *pipeline, uint32_t index)
{
	const struct skuld_event *event = &pipeline->events[index];
	if (!acts_on_hold(event->kind))
		return;
	const struct stage *stage = pipeline_stage(pipeline, index);
	const struct hold *hold = table_peek(&ledger->holds.table, stage->hold_hash);
	if (hold != NULL && hold->stock != TABLE_NONE)
		__builtin_prefetch(stock_at(&ledger->stocks, hold->stock));
}

static void pipeline_start(const struct ledger *ledger, struct pipeline *pipeline,
                           enum ledger_source source, const struct skuld_event *events,
                           uint32_t count)
{
	pipeline->events = events;
	pipeline->count = count;
	pipeline->source = source;
	pipeline->entered = 0;
	while (pipeline->entered < count && pipeline->entered < PIPELINE_SLOTS)
		pipeline_enter(ledger, pipeline, pipeline->entered++);
}

/* Moves the pipeline on before event index is applied. */
__attribute__((always_inline)) static inline void
pipeline_advance(const struct ledger *ledger, struct pipeline *pipeline, uint32_t index)
{
	uint32_t count = pipeline->count;
	/* Events skipped without being applied (a chain that is too long) do
	 * not enter; event index itself always has when this returns. */
	if (pipeline->entered < index)
		pipeline->entered = index;
	while (pipeline->entered <= index + PIPELINE_SLOTS && pipeline->entered < count)
		pipeline_enter(ledger, pipeline, pipeline->entered++);
	if (index + PIPELINE_RECORDS < count)
		pipeline_records(ledger, pipeline, index + PIPELINE_RECORDS);
	if (index + PIPELINE_HOLD_STOCK < count)
		pipeline_hold_stock(ledger, pipeline, index + PIPELINE_HOLD_STOCK);
}

/* The idempotency check of a client event: 1 when result is final (a
 * replay, KEY_REUSED or KEYS_FULL), else 0 with *slot where its key goes. */
static int key_check(struct ledger *ledger, const struct skuld_event *event, uint64_t key_hash,
                     uint64_t event_hash, uint32_t index, uint32_t *slot,
                     struct skuld_result *result)
{
	const struct key_entry *entry = keys_find(&ledger->keys, event->key, key_hash, slot);
	if (entry != NULL) {
		if (entry->event_hash != event_hash) {
			result_fail(result, index, SKULD_KEY_REUSED);
			return 1;
		}
		*result = entry->result;
		result->index = index;
		result->flags |= SKULD_RESULT_REPLAYED;
		return 1;
	}
	if (keys_full(&ledger->keys)) {
		result_fail(result, index, SKULD_KEYS_FULL);
		return 1;
	}
	return 0;
}

static void apply_one(struct ledger *ledger, struct pipeline *pipeline, uint32_t index,
                      struct skuld_result *result)
{
	const struct skuld_event *event = &pipeline->events[index];
	enum ledger_source source = pipeline->source;
	pipeline_advance(ledger, pipeline, index);
	uint64_t key_hash = pipeline_stage(pipeline, index)->key_hash;
	uint64_t event_hash = 0;
	uint32_t slot = 0;
	if (source == LEDGER_SOURCE_CLIENT) {
		event_hash = event_checksum(event);
		if (key_check(ledger, event, key_hash, event_hash, index, &slot, result))
			return;
	}
	memset(result, 0, sizeof(*result));
	result->index = index;
	ledger->sequence = ledger->sequence_next + index;
	/* A hold event changes the stock where the hold was before it. Only
	 * listings are told of changes: with none, nothing is recorded. */
	int listed = ledger->push.listings.used != 0 || push_kind(event->kind);
	uint32_t hold_item = 0;
	uint32_t hold_location = 0;
	if (listed && acts_on_hold(event->kind)) {
		const struct hold *hold = holds_find(&ledger->holds, event->id);
		if (hold != NULL) {
			hold_item = hold->item;
			hold_location = hold->location;
		}
	}
	uint32_t status = dispatch(ledger, event, source, result);
	if (status != SKULD_OK) {
		result_fail(result, index, status);
		return;
	}
	result->status = SKULD_OK;
	if (listed)
		push_record(ledger, event, result, hold_item, hold_location);
	if (source == LEDGER_SOURCE_CLIENT)
		keys_insert(&ledger->keys, &ledger->journal, event->key, key_hash, slot, event_hash,
		            ledger->now, result);
}

static void undo(struct ledger *ledger)
{
	struct journal *journal = &ledger->journal;
	while (journal->count > 0) {
		struct journal_entry *entry = &journal->entries[--journal->count];
		struct table *table = entry->target;
		switch (entry->kind) {
		case JOURNAL_BYTES:
			memcpy(entry->target, entry->bytes, entry->size);
			break;
		case JOURNAL_TABLE_INSERT:
			table_unlink(table, entry->index);
			table_unalloc(table, entry->index);
			break;
		case JOURNAL_TABLE_DELETE: {
			table_unrelease(table, entry->index);
			void *record = table_record(table, entry->index);
			memcpy(record, entry->bytes, entry->size);
			table_link(table, entry->index, table->hash(record));
			break;
		}
		case JOURNAL_TIMER_INSERT:
			timer_remove(&ledger->timer, entry->index);
			break;
		case JOURNAL_TIMER_REMOVE: {
			const struct hold *hold = table_record(&ledger->holds.table, entry->index);
			timer_insert(&ledger->timer, entry->index, entry->value, hold->id);
			break;
		}
		case JOURNAL_TIMER_UPDATE:
			timer_update(&ledger->timer, entry->index, entry->value);
			break;
		case JOURNAL_CLOSED_PUSH:
			holds_undo_close_push(&ledger->holds);
			break;
		case JOURNAL_KEY_INSERT:
			keys_undo_insert(&ledger->keys);
			break;
		default:
			SKULD_ASSERT(!"unknown journal entry");
		}
	}
}

/* Applies events[first..last] (last has no LINKED) all or nothing. */
static void apply_chain(struct ledger *ledger, struct pipeline *pipeline, uint32_t first,
                        uint32_t last, struct skuld_result *results)
{
	if (last - first + 1 > ledger->config.chain_events_max) {
		result_fail(&results[first], first, SKULD_CHAIN_TOO_LONG);
		for (uint32_t i = first + 1; i <= last; i++)
			result_fail(&results[i], i, SKULD_LINKED_FAILED);
		return;
	}
	ledger->journal.active = 1;
	ledger->journal.count = 0;
	uint32_t failed = UINT32_MAX;
	for (uint32_t i = first; i <= last; i++) {
		apply_one(ledger, pipeline, i, &results[i]);
		if (results[i].status != SKULD_OK) {
			failed = i;
			break;
		}
	}
	if (failed != UINT32_MAX) {
		undo(ledger);
		push_discard(&ledger->push);
		discrepancies_discard(&ledger->discrepancies);
		for (uint32_t i = first; i <= last; i++) {
			if (i != failed)
				result_fail(&results[i], i, SKULD_LINKED_FAILED);
		}
	}
	ledger->journal.active = 0;
	ledger->journal.count = 0;
	push_flush(ledger);
	discrepancies_flush(&ledger->discrepancies);
}

void ledger_apply(struct ledger *ledger, uint64_t timestamp_ns, enum ledger_source source,
                  const struct skuld_event *events, uint32_t count, struct skuld_result *results)
{
	SKULD_ASSERT(count <= ledger->config.batch_events_max);
	SKULD_ASSERT(!ledger->journal.active);
	if (ledger->discrepancies.origin == DISCREPANCIES_ORIGIN_NEXT)
		ledger->discrepancies.origin = ledger->sequence_next;
	if (timestamp_ns > ledger->now)
		ledger->now = timestamp_ns;
	keys_expire(&ledger->keys, ledger->now, ledger->config.key_window_ns);
	holds_forget(&ledger->holds, ledger->now, ledger->config.closed_hold_grace_ns,
	             ledger->config.closed_holds_max);

	/* A chain still open at the end of the batch is not evaluated. */
	uint32_t open_from = count;
	if (count > 0 && (events[count - 1].flags & SKULD_EVENT_LINKED)) {
		open_from = count - 1;
		while (open_from > 0 && (events[open_from - 1].flags & SKULD_EVENT_LINKED))
			open_from--;
	}
	struct pipeline pipeline;
	pipeline_start(ledger, &pipeline, source, events, count);
	uint32_t i = 0;
	while (i < open_from) {
		uint32_t last = i;
		while (events[last].flags & SKULD_EVENT_LINKED)
			last++;
		SKULD_ASSERT(last < open_from);
		if (last == i) {
			apply_one(ledger, &pipeline, i, &results[i]);
			if (ledger->push.touch_count != 0)
				push_flush(ledger);
			if (ledger->discrepancies.note_count != 0)
				discrepancies_flush(&ledger->discrepancies);
		} else {
			apply_chain(ledger, &pipeline, i, last, results);
		}
		i = last + 1;
	}
	for (uint32_t j = open_from; j < count; j++)
		result_fail(&results[j], j, SKULD_LINKED_OPEN);
	keys_publish();
	ledger->sequence_next += count;
}

void ledger_sequence(struct ledger *ledger, uint64_t event_first)
{
	SKULD_ASSERT(!ledger->journal.active);
	ledger->sequence_next = event_first;
	/* Restored from a version 2 snapshot: tracking begins here. */
	if (ledger->discrepancies.origin == DISCREPANCIES_ORIGIN_NEXT)
		ledger->discrepancies.origin = event_first;
}

uint64_t ledger_discrepancy_origin(const struct ledger *ledger)
{
	return ledger->discrepancies.origin;
}

void ledger_discrepancy_origin_set(struct ledger *ledger, uint64_t origin)
{
	SKULD_ASSERT(!ledger->journal.active);
	SKULD_ASSERT(origin != DISCREPANCIES_ORIGIN_NEXT);
	SKULD_ASSERT(ledger->discrepancies.table.used == 0);
	ledger->discrepancies.origin = origin;
}

uint32_t ledger_expire_due(struct ledger *ledger, uint64_t now_ns, uint32_t max, uint64_t *hold_ids)
{
	if (max > ledger->config.holds_max)
		max = ledger->config.holds_max;
	uint32_t found = timer_due(&ledger->timer, now_ns, max, ledger->due);
	for (uint32_t i = 0; i < found; i++) {
		const struct hold *hold = table_record(&ledger->holds.table, ledger->due[i]);
		hold_ids[i] = hold->id;
	}
	return found;
}

/* ---- Queries -------------------------------------------------------------- */

uint32_t ledger_level(const struct ledger *ledger, uint32_t item, uint32_t location,
                      struct ledger_level *out)
{
	memset(out, 0, sizeof(*out));
	const struct item *record = catalog_item(&ledger->catalog, item);
	if (record == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (record->bundle)
		return SKULD_BUNDLE_NOT_STOCKED;
	if (catalog_location(&ledger->catalog, location) == NULL)
		return SKULD_LOCATION_UNKNOWN;
	const struct stock *stock = ledger_stock_view(ledger, item, location);
	out->on_hand = stock->on_hand;
	out->reserved = stock->reserved;
	out->committed = stock->committed;
	out->damaged = stock->damaged;
	out->quarantine = stock->quarantine;
	out->incoming = stock->incoming;
	out->available = stock_available(stock);
	out->counted_at = stock->counted_at;
	return SKULD_OK;
}

int64_t ledger_available(const struct ledger *ledger, uint32_t item, uint32_t location)
{
	const struct item *record = catalog_item(&ledger->catalog, item);
	if (record == NULL || catalog_location(&ledger->catalog, location) == NULL)
		return 0;
	return ledger_spare(ledger, record, item, location, 0);
}

uint32_t ledger_channel_quantity(const struct ledger *ledger, uint32_t channel, uint32_t item,
                                 int64_t *out)
{
	*out = 0;
	const struct channel *record = catalog_channel(&ledger->catalog, channel);
	if (record == NULL)
		return SKULD_CHANNEL_UNKNOWN;
	const struct item *item_record = catalog_item(&ledger->catalog, item);
	if (item_record == NULL)
		return SKULD_ITEM_UNKNOWN;
	const struct pool_entry *pool = catalog_pool(&ledger->catalog, channel);
	int64_t sum = 0;
	for (uint32_t i = 0; i < record->pool_count; i++) {
		if (!pool[i].active)
			continue;
		const struct location *location = &ledger->catalog.locations[pool[i].location];
		if (location->state != SKULD_LIFECYCLE_ACTIVE)
			continue;
		int64_t spare =
		        ledger_spare(ledger, item_record, item, pool[i].location, pool[i].floor);
		/* spare <= QMAX: only a pool of over 1023 locations could
		 * overflow; saturate rather than wrap. */
		if (spare > 0 && __builtin_add_overflow(sum, spare, &sum))
			sum = INT64_MAX;
	}
	int64_t quantity = sum - catalog_buffer(&ledger->catalog, channel, item);
	if (quantity < 0)
		quantity = 0;
	if (record->cap > 0 && quantity > record->cap)
		quantity = record->cap;
	if (quantity < record->minimum)
		quantity = 0;
	*out = quantity;
	return SKULD_OK;
}

uint32_t ledger_hold(const struct ledger *ledger, uint64_t id, struct ledger_hold_info *out)
{
	memset(out, 0, sizeof(*out));
	const struct hold *hold = holds_find(&ledger->holds, id);
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	out->id = hold->id;
	out->expires_at_ns = hold->expires_at;
	out->closed_at_ns = hold->closed_at;
	out->remaining = hold->remaining;
	out->item = hold->item;
	out->location = hold->location;
	out->channel = hold->channel;
	out->state = hold->state;
	return SKULD_OK;
}

bool ledger_pool_member(const struct ledger *ledger, uint32_t channel, uint32_t location)
{
	if (catalog_channel(&ledger->catalog, channel) == NULL)
		return false;
	return catalog_pool_find(&ledger->catalog, channel, location) != NULL;
}

uint32_t ledger_sku_lookup(const struct ledger *ledger, const char *code, int *retired)
{
	const struct sku *sku = catalog_sku_find(&ledger->catalog, code);
	if (retired != NULL)
		*retired = sku != NULL && sku->retired;
	return sku != NULL ? sku->item : 0;
}

uint32_t ledger_barcode_lookup(const struct ledger *ledger, const char *code,
                               struct ledger_barcode_match *out, uint32_t max)
{
	return catalog_barcode_lookup(&ledger->catalog, code, out, max);
}

int ledger_attribute(const struct ledger *ledger, uint32_t item, const char *name, char *value)
{
	size_t name_size = strnlen(name, SKULD_CODE_SIZE);
	const struct attribute *attribute =
	        catalog_attribute_find(&ledger->catalog, item, name, name_size);
	if (attribute == NULL)
		return 0;
	memset(value, 0, SKULD_CODE_SIZE);
	memcpy(value, attribute->text + name_size + 1, SKULD_CODE_SIZE - name_size - 1);
	return 1;
}

uint32_t ledger_item(const struct ledger *ledger, uint32_t item, struct ledger_item_info *out)
{
	const struct item *record = catalog_item(&ledger->catalog, item);
	if (record == NULL)
		return SKULD_ITEM_UNKNOWN;
	out->scale = record->scale;
	out->bundle = record->bundle;
	return SKULD_OK;
}

int ledger_location_code(const struct ledger *ledger, uint32_t location, char *code)
{
	const struct location *record = catalog_location(&ledger->catalog, location);
	if (record == NULL)
		return 0;
	memcpy(code, record->code, SKULD_CODE_SIZE);
	return 1;
}

int ledger_channel_code(const struct ledger *ledger, uint32_t channel, char *code)
{
	const struct channel *record = catalog_channel(&ledger->catalog, channel);
	if (record == NULL)
		return 0;
	memcpy(code, record->code, SKULD_CODE_SIZE);
	return 1;
}

int ledger_location_state(const struct ledger *ledger, uint32_t location)
{
	const struct location *record = catalog_location(&ledger->catalog, location);
	return record != NULL ? record->state : -1;
}

uint32_t ledger_holds_open(const struct ledger *ledger)
{
	return ledger->holds.open;
}

uint32_t ledger_stock_count(const struct ledger *ledger)
{
	SKULD_ASSERT(!ledger->journal.active);
	return ledger->stocks.table.top;
}

void ledger_stock_entry(const struct ledger *ledger, uint32_t index, uint32_t *item,
                        uint32_t *location, struct ledger_level *out)
{
	SKULD_ASSERT(index < ledger->stocks.table.top);
	const struct stock *stock = table_record(&ledger->stocks.table, index);
	*item = stock->item;
	*location = stock->location;
	out->on_hand = stock->on_hand;
	out->reserved = stock->reserved;
	out->committed = stock->committed;
	out->damaged = stock->damaged;
	out->quarantine = stock->quarantine;
	out->incoming = stock->incoming;
	out->available = stock_available(stock);
	out->counted_at = stock->counted_at;
}

/* ---- Discrepancies ---------------------------------------------------------- */

static uint64_t discrepancy_order(uint32_t location, uint32_t item)
{
	return (uint64_t)location << 32 | item;
}

static void discrepancy_info(const struct discrepancy *record, struct ledger_discrepancy_info *out)
{
	out->item = record->item;
	out->location = record->location;
	out->first_sequence = record->first_sequence;
	out->last_sequence = record->last_sequence;
	out->first_at = record->first_at;
	out->last_at = record->last_at;
	out->expected = record->expected;
	out->found = record->found;
	out->occurrences = record->occurrences;
	out->kinds = record->kinds;
	out->last_kind = record->last_kind;
	out->acknowledged = record->acknowledged;
}

uint32_t ledger_discrepancy_page(const struct ledger *ledger, uint32_t location,
                                 uint32_t after_location, uint32_t after_item, uint32_t max,
                                 struct ledger_discrepancy_info *out, int *more)
{
	/* Successive lookups in the (location, item) treap: O(max * log n)
	 * expected, whatever the table holds. */
	const struct discrepancies *discrepancies = &ledger->discrepancies;
	uint64_t after = discrepancy_order(after_location, after_item);
	if (location != 0 && after < discrepancy_order(location, 0))
		after = discrepancy_order(location, 0); /* item ids start at 1 */
	uint32_t count = 0;
	*more = 0;
	while (max > 0) {
		uint32_t index = discrepancies_next(discrepancies, after);
		if (index == TABLE_NONE)
			break;
		const struct discrepancy *record = table_record(&discrepancies->table, index);
		if (location != 0 && record->location != location)
			break;
		if (count == max) {
			*more = 1;
			break;
		}
		discrepancy_info(record, &out[count++]);
		after = discrepancy_order(record->location, record->item);
	}
	return count;
}

void ledger_discrepancy_figures(const struct ledger *ledger, struct ledger_discrepancy_figures *out)
{
	const struct discrepancies *discrepancies = &ledger->discrepancies;
	out->records = discrepancies->table.used;
	out->capacity = discrepancies->table.capacity;
	out->dropped = discrepancies->dropped;
	out->evicted = discrepancies->evicted;
}

/* ---- State hash ----------------------------------------------------------- */

/* Sum of the hashes of the first `size` bytes of every live record. */
static uint64_t live_sum(const struct table *table, uint32_t size, int skip_zero_stock)
{
	uint64_t sum = 0;
	for (uint32_t slot = 0; slot <= table->slot_mask; slot++) {
		uint64_t entry = table->slots[slot];
		if (entry == 0)
			continue;
		const void *record = table_record(table, table_slot_index(entry));
		if (skip_zero_stock) {
			const struct stock *stock = record;
			if ((stock->on_hand | stock->reserved | stock->committed | stock->damaged |
			     stock->quarantine | stock->incoming) == 0 &&
			    stock->counted_at == 0)
				continue;
		}
		sum += skuld_checksum(record, size);
	}
	return sum;
}

uint64_t ledger_hash(const struct ledger *ledger)
{
	uint64_t parts[10];
	parts[0] = ledger->now;
	parts[1] = catalog_hash(&ledger->catalog);
	parts[2] = live_sum(&ledger->stocks.table, sizeof(struct stock), 1);
	parts[3] = live_sum(&ledger->holds.table, HOLD_HASHED_BYTES, 0);
	parts[4] = live_sum(&ledger->counts.table, ledger->counts.table.record_size, 0);
	parts[5] = live_sum(&ledger->transfers.table, ledger->transfers.table.record_size, 0);
	/* Keys and closed holds: in ring order, which decides what goes first. */
	uint64_t keys = ledger->keys.count;
	for (uint32_t i = 0; i < ledger->keys.count; i++)
		keys = keys * 0x100000001b3ull +
		       skuld_checksum(keys_at(&ledger->keys, i), sizeof(struct key_entry));
	parts[6] = keys;
	uint64_t closed = ledger->holds.closed_count;
	for (uint32_t i = 0; i < ledger->holds.closed_count; i++) {
		uint32_t position = ledger->holds.closed_head + i;
		if (position >= ledger->holds.closed_capacity)
			position -= ledger->holds.closed_capacity;
		const struct hold *hold =
		        table_record(&ledger->holds.table, ledger->holds.closed[position]);
		closed = closed * 0x100000001b3ull + hold->id;
	}
	parts[7] = closed;
	parts[8] = push_hash(&ledger->push);
	parts[9] = discrepancies_hash(&ledger->discrepancies);
	return skuld_checksum(parts, sizeof(parts));
}
