/*
 * ledger_snapshot.c — the ledger as a stream of records (ledger_snapshot.h)
 * and the stream's framing (snapshot_stream.h).
 *
 * LEDGER SNAPSHOT STREAM, version 3 (docs/FORMAT.md has the byte tables of
 * every record). Little-endian; reserved bytes zero.
 *
 *   stream header (64 B): magic "SLDEDGER", version 3, header size 64, the
 *       configuration fingerprint, batch time T, component blocks used
 *   then 21 parts, in this order, each a 16-byte part header (tag, record
 *   size, count, reserved) and `count` records:
 *     1 ITEMS        16 B  defined items, ascending id
 *     2 LOCATIONS    40 B  defined locations, ascending id
 *     3 CHANNELS     64 B  defined channels, ascending id
 *     4 POOLS        24 B  each channel's pool block entries, in block order
 *     5 COMPONENTS   16 B  each bundle's components, bundles by ascending id
 *     6 SKUS         40 B  SKU codes, in the order they were made
 *     7 BARCODES     48 B  (barcode, item) pairs, in the order made
 *     8 ATTRIBUTES   40 B  (item, "name=value"), in the order made
 *     9 BUFFERS      16 B  (channel, item) buffers, in the order made
 *    10 STOCK        64 B  stock entries, in the order made
 *    11 HOLDS_CLOSED 48 B  remembered closed holds, oldest closing first
 *    12 HOLDS_OPEN   48 B  open holds
 *    13 COUNTS       32 B  open counts
 *    14 TRANSFERS    32 B  open transfer lines
 *    15 KEYS         64 B  the idempotency window, oldest first
 *    16 PUSH         16 B  one record: the push version and listing clocks
 *    17 CHANNEL_PUSH 72 B  channels with acknowledgements or an exception
 *    18 LISTINGS    136 B  every (channel, item) listing, in the order made
 *    19 DISCREPANCY_STATE 32 B  one record: the next sequence, evictions,
 *                             the tracking origin
 *    20 DISCREPANCIES 64 B  discrepancy records, in table order
 *    21 END           0 B  no records
 *   (version 2 ends after LISTINGS with END as part 19; version 1 after
 *   KEYS with END as part 16)
 *
 * Load rules (every one refuses the stream with a reason): magic, version,
 * header size and fingerprint equal; reserved bytes zero; each part's tag
 * and record size as listed, its count within the capacity it fills; ids in
 * range, ascending where listed, and unique (ids, codes per table, (item,
 * location) pairs, hold ids, keys); every reference names a defined record
 * of the right sort (a component is a defined plain item other than its
 * bundle; a stock entry, count or transfer is of a plain item at defined
 * locations; a hold's item, location and channel are defined, a bundle hold
 * is of a frozen bundle with components); quantities within the ledger's
 * bounds; a hold's remaining fits its state (0 when COMMITTED, else
 * 1..QMAX) and every stock entry it moves exists; closed holds and keys are
 * in time order, none after T; stored results are successes.
 *
 * What load rebuilds instead of reading: every hash index, the timer heap,
 * the free lists, and the stock index each hold caches.
 */
#include "ledger_snapshot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ledger_internal.h"
#include "skuld_assert.h"
#include "snapshot_stream.h"

#define SNAPSHOT_CHUNK 256u /* records read at once from a large part */

/* ---- Stream framing ----------------------------------------------------- */

int snapshot_flush(struct snapshot_writer *writer)
{
	if (writer->error == 0 && writer->used > 0) {
		writer->error =
		        writer->sink->write(writer->sink->context, writer->buffer, writer->used);
		SKULD_ASSERT(writer->error <= 0);
	}
	writer->used = 0;
	return writer->error;
}

void snapshot_put(struct snapshot_writer *writer, const void *bytes, size_t size)
{
	const unsigned char *cursor = bytes;
	writer->written += size;
	while (size > 0 && writer->error == 0) {
		if (writer->used == sizeof(writer->buffer))
			snapshot_flush(writer);
		size_t room = sizeof(writer->buffer) - writer->used;
		size_t piece = size < room ? size : room;
		memcpy(writer->buffer + writer->used, cursor, piece);
		writer->used += piece;
		cursor += piece;
		size -= piece;
	}
}

void snapshot_part_put(struct snapshot_writer *writer, uint32_t tag, uint32_t record_size,
                       uint32_t count)
{
	struct snapshot_part_header header = {
	        .tag = tag, .record_size = record_size, .count = count};
	snapshot_put(writer, &header, sizeof(header));
}

int snapshot_refuse(struct snapshot_reader *reader, const char *format, ...)
{
	if (reader->error != 0)
		return reader->error;
	reader->error = -EBADMSG;
	if (reader->reason != NULL && reader->reason_size > 0) {
		va_list arguments;
		va_start(arguments, format);
		vsnprintf(reader->reason, reader->reason_size, format, arguments);
		va_end(arguments);
	}
	return reader->error;
}

int snapshot_get(struct snapshot_reader *reader, void *bytes, size_t size)
{
	if (reader->error != 0)
		return reader->error;
	int ret = reader->source->read(reader->source->context, bytes, size);
	if (ret == 0) {
		reader->consumed += size;
		return 0;
	}
	reader->error = ret < 0 ? ret : -EIO;
	if (reader->reason != NULL && reader->reason_size > 0) {
		if (reader->error == -ENODATA)
			snprintf(reader->reason, reader->reason_size,
			         "the stream ends early: %zu bytes wanted after byte %llu", size,
			         (unsigned long long)reader->consumed);
		else
			snprintf(reader->reason, reader->reason_size, "reading byte %llu: %s",
			         (unsigned long long)reader->consumed, strerror(-reader->error));
	}
	return reader->error;
}

int snapshot_part_get(struct snapshot_reader *reader, uint32_t tag, uint32_t record_size,
                      uint32_t count_max, uint32_t *count)
{
	struct snapshot_part_header header;
	*count = 0;
	int ret = snapshot_get(reader, &header, sizeof(header));
	if (ret != 0)
		return ret;
	if (header.tag != tag || header.record_size != record_size || header.reserved != 0)
		return snapshot_refuse(reader,
		                       "part header at byte %llu: tag %u record size %u, expected "
		                       "tag %u record size %u",
		                       (unsigned long long)(reader->consumed - sizeof(header)),
		                       header.tag, header.record_size, tag, record_size);
	if (header.count > count_max)
		return snapshot_refuse(reader, "part %u: %u records, at most %u fit this ledger",
		                       tag, header.count, count_max);
	*count = header.count;
	return 0;
}

int snapshot_zero(const void *bytes, size_t size)
{
	const unsigned char *cursor = bytes;
	for (size_t i = 0; i < size; i++) {
		if (cursor[i] != 0)
			return 0;
	}
	return 1;
}

int snapshot_code_valid(const char *code)
{
	return code[0] != '\0';
}

/* ---- Configuration fingerprint ------------------------------------------- */

/* The configuration's fields in declaration order, each as a u64; version
 * 1 streams were fingerprinted before listings_max (the last) existed, so
 * theirs is the checksum of all but the last field. */
static uint64_t fingerprint_of(const struct ledger_config *config, uint32_t version)
{
	const uint64_t fields[] = {
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
	        config->closed_hold_grace_ns,
	        config->ttl_max_s,
	        config->counts_max,
	        config->transfers_max,
	        config->keys_max,
	        config->key_window_ns,
	        config->batch_events_max,
	        config->chain_events_max,
	        config->listings_max,
	        config->discrepancies_max,
	        config->count_off_percent,
	        config->count_off_units,
	};
	/* A field added to struct ledger_config must be added above. */
	static_assert(sizeof(struct ledger_config) == 120, "every field is in the fingerprint");
	/* Version 2 streams end at listings_max, version 1 one before. */
	size_t count = sizeof(fields) / sizeof(fields[0]) - (version == 1   ? 4
	                                                     : version == 2 ? 3
	                                                                    : 0);
	return skuld_checksum(fields, count * sizeof(fields[0]));
}

uint64_t ledger_config_fingerprint(const struct ledger_config *config)
{
	return fingerprint_of(config, LEDGER_SNAPSHOT_VERSION);
}

uint32_t ledger_config_fingerprint_version(const struct ledger_config *config, uint64_t fingerprint)
{
	if (fingerprint == fingerprint_of(config, LEDGER_SNAPSHOT_VERSION))
		return LEDGER_SNAPSHOT_VERSION;
	if (fingerprint == fingerprint_of(config, 2))
		return 2;
	if (fingerprint == fingerprint_of(config, 1))
		return 1;
	return 0;
}

/* ---- Save ---------------------------------------------------------------- */

static const struct hold *closed_hold_at(const struct holds *holds, uint32_t i)
{
	uint32_t position = holds->closed_head + i;
	if (position >= holds->closed_capacity)
		position -= holds->closed_capacity;
	return table_record(&holds->table, holds->closed[position]);
}

static int channel_push_saved(const struct channel_push *record)
{
	return record->acks != 0 || record->exception != 0;
}

static void save_push(const struct ledger *ledger, struct snapshot_writer *writer)
{
	const struct push_state *push = &ledger->push;
	struct snapshot_push clocks = {
	        .serial = push->serial,
	        .listing_serial = push->listing_serial,
	};
	snapshot_part_put(writer, SNAPSHOT_PART_PUSH, sizeof(clocks), 1);
	snapshot_put(writer, &clocks, sizeof(clocks));
	uint32_t saved = 0;
	for (uint32_t channel = 1; channel <= push->channels_max; channel++)
		saved += (uint32_t)channel_push_saved(&push->channels[channel]);
	snapshot_part_put(writer, SNAPSHOT_PART_CHANNEL_PUSH, sizeof(struct snapshot_channel_push),
	                  saved);
	for (uint32_t channel = 1; channel <= push->channels_max; channel++) {
		const struct channel_push *from = &push->channels[channel];
		if (!channel_push_saved(from))
			continue;
		struct snapshot_channel_push record = {
		        .channel = channel,
		        .exception = from->exception,
		        .reports = from->reports,
		        .acks = from->acks,
		        .last_ack = from->last_ack,
		        .first_seen = from->first_seen,
		        .last_seen = from->last_seen,
		};
		memcpy(record.detail, from->detail, sizeof(record.detail));
		snapshot_put(writer, &record, sizeof(record));
	}
	const struct table *table = &push->listings;
	snapshot_part_put(writer, SNAPSHOT_PART_LISTINGS, sizeof(struct listing), table->top);
	snapshot_put(writer, table->records, (size_t)table->top * sizeof(struct listing));
}

static void save_discrepancies(const struct ledger *ledger, struct snapshot_writer *writer)
{
	const struct discrepancies *discrepancies = &ledger->discrepancies;
	struct snapshot_discrepancy_state state = {
	        .sequence_next = ledger->sequence_next,
	        .dropped = discrepancies->dropped,
	        .evicted = discrepancies->evicted,
	        /* Not yet resolved (a version 2 load, no batch since): the
	         * next sequence is where tracking begins. */
	        .origin = discrepancies->origin == DISCREPANCIES_ORIGIN_NEXT
	                          ? ledger->sequence_next
	                          : discrepancies->origin,
	};
	snapshot_part_put(writer, SNAPSHOT_PART_DISCREPANCY_STATE, sizeof(state), 1);
	snapshot_put(writer, &state, sizeof(state));
	const struct table *table = &discrepancies->table;
	snapshot_part_put(writer, SNAPSHOT_PART_DISCREPANCIES, sizeof(struct discrepancy),
	                  table->used);
	/* Free records read as all zero (discrepancies.c). */
	for (uint32_t index = 0; index < table->top; index++) {
		const struct discrepancy *record = table_record(table, index);
		if (record->occurrences != 0)
			snapshot_put(writer, record, sizeof(*record));
	}
}

uint64_t ledger_snapshot_size(const struct ledger *ledger)
{
	uint64_t bytes = sizeof(struct snapshot_stream_header);
	bytes += catalog_snapshot_bytes(&ledger->catalog);
	bytes += 10 * sizeof(struct snapshot_part_header); /* STOCK .. END */
	bytes += (uint64_t)ledger->stocks.table.used * sizeof(struct snapshot_stock);
	bytes += (uint64_t)ledger->holds.closed_count * sizeof(struct snapshot_hold);
	bytes += (uint64_t)ledger->holds.open * sizeof(struct snapshot_hold);
	bytes += (uint64_t)ledger->counts.table.used * sizeof(struct snapshot_count);
	bytes += (uint64_t)ledger->transfers.table.used * sizeof(struct snapshot_transfer);
	bytes += (uint64_t)ledger->keys.count * sizeof(struct snapshot_key);
	bytes += sizeof(struct snapshot_push);
	for (uint32_t channel = 1; channel <= ledger->config.channels_max; channel++)
		bytes += channel_push_saved(&ledger->push.channels[channel]) *
		         sizeof(struct snapshot_channel_push);
	bytes += (uint64_t)ledger->push.listings.top * sizeof(struct listing);
	bytes += 2 * sizeof(struct snapshot_part_header); /* the discrepancy parts */
	bytes += sizeof(struct snapshot_discrepancy_state);
	bytes += (uint64_t)ledger->discrepancies.table.used * sizeof(struct discrepancy);
	return bytes;
}

static void hold_record(const struct hold *hold, struct snapshot_hold *record)
{
	static_assert(sizeof(*record) == HOLD_HASHED_BYTES, "a hold record is its hashed bytes");
	*record = (struct snapshot_hold){
	        .id = hold->id,
	        .expires_at = hold->expires_at,
	        .closed_at = hold->closed_at,
	        .remaining = hold->remaining,
	        .item = hold->item,
	        .location = hold->location,
	        .channel = hold->channel,
	        .state = hold->state,
	};
}

static void save_holds(const struct ledger *ledger, struct snapshot_writer *writer)
{
	const struct holds *holds = &ledger->holds;
	struct snapshot_hold record;
	snapshot_part_put(writer, SNAPSHOT_PART_HOLDS_CLOSED, sizeof(record), holds->closed_count);
	for (uint32_t i = 0; i < holds->closed_count; i++) {
		hold_record(closed_hold_at(holds, i), &record);
		snapshot_put(writer, &record, sizeof(record));
	}
	snapshot_part_put(writer, SNAPSHOT_PART_HOLDS_OPEN, sizeof(record), holds->open);
	const struct table *table = &holds->table;
	for (uint32_t slot = 0; slot <= table->slot_mask; slot++) {
		if (table->slots[slot] == 0)
			continue;
		const struct hold *hold = table_record(table, table_slot_index(table->slots[slot]));
		if (hold->state != LEDGER_HOLD_OPEN)
			continue;
		hold_record(hold, &record);
		snapshot_put(writer, &record, sizeof(record));
	}
}

static void save_counts_transfers(const struct ledger *ledger, struct snapshot_writer *writer)
{
	const struct table *table = &ledger->counts.table;
	snapshot_part_put(writer, SNAPSHOT_PART_COUNTS, sizeof(struct snapshot_count), table->used);
	for (uint32_t slot = 0; slot <= table->slot_mask; slot++) {
		if (table->slots[slot] == 0)
			continue;
		const struct count *count =
		        table_record(table, table_slot_index(table->slots[slot]));
		struct snapshot_count record = {
		        .item = count->item,
		        .location = count->location,
		        .id = count->id,
		        .expected = count->expected,
		        .opened_at = count->opened_at,
		};
		snapshot_put(writer, &record, sizeof(record));
	}
	table = &ledger->transfers.table;
	snapshot_part_put(writer, SNAPSHOT_PART_TRANSFERS, sizeof(struct snapshot_transfer),
	                  table->used);
	for (uint32_t slot = 0; slot <= table->slot_mask; slot++) {
		if (table->slots[slot] == 0)
			continue;
		const struct transfer *transfer =
		        table_record(table, table_slot_index(table->slots[slot]));
		struct snapshot_transfer record = {
		        .id = transfer->id,
		        .item = transfer->item,
		        .from = transfer->from,
		        .to = transfer->to,
		        .remaining = transfer->remaining,
		};
		snapshot_put(writer, &record, sizeof(record));
	}
}

int ledger_snapshot_save(const struct ledger *ledger, const struct snapshot_sink *sink)
{
	struct snapshot_writer writer_memory; /* 64 KiB of buffer */
	struct snapshot_writer *writer = &writer_memory;
	writer->sink = sink;
	writer->error = 0;
	writer->used = 0;
	writer->written = 0;
	struct snapshot_stream_header header = {
	        .magic = SNAPSHOT_STREAM_MAGIC,
	        .version = LEDGER_SNAPSHOT_VERSION,
	        .header_size = sizeof(struct snapshot_stream_header),
	        .config_fingerprint = ledger_config_fingerprint(&ledger->config),
	        .now = ledger->now,
	        .bundles_used = ledger->catalog.bundles_used,
	};
	snapshot_put(writer, &header, sizeof(header));
	catalog_snapshot_save(&ledger->catalog, writer);
	/* The stock part is written straight from the table (its records are
	 * the format), so it must come where the format puts it: after the
	 * catalog, and keys after counts and transfers. */
	const struct table *stock = &ledger->stocks.table;
	static_assert(sizeof(struct snapshot_stock) == sizeof(struct stock), "stock record");
	static_assert(offsetof(struct snapshot_stock, counted_at) ==
	                      offsetof(struct stock, counted_at),
	              "stock record");
	snapshot_part_put(writer, SNAPSHOT_PART_STOCK, sizeof(struct snapshot_stock), stock->used);
	snapshot_put(writer, stock->records, (size_t)stock->used * sizeof(struct stock));
	save_holds(ledger, writer);
	save_counts_transfers(ledger, writer);
	snapshot_part_put(writer, SNAPSHOT_PART_KEYS, sizeof(struct snapshot_key),
	                  ledger->keys.count);
	for (uint32_t i = 0; i < ledger->keys.count; i++) {
		const struct key_entry *entry = keys_at(&ledger->keys, i);
		struct snapshot_key record = {
		        .key = entry->key,
		        .event_hash = entry->event_hash,
		        .inserted_at = entry->inserted_at,
		        .result = entry->result,
		};
		snapshot_put(writer, &record, sizeof(record));
	}
	save_push(ledger, writer);
	save_discrepancies(ledger, writer);
	snapshot_part_put(writer, SNAPSHOT_PART_END, 0, 0);
	int ret = snapshot_flush(writer);
	SKULD_ASSERT(ret != 0 || writer->written == ledger_snapshot_size(ledger));
	return ret;
}

/* ---- Load ---------------------------------------------------------------- */

/* Nothing applied yet: what ledger_create leaves. */
static int ledger_fresh(const struct ledger *ledger)
{
	if (ledger->now != 0 || ledger->stocks.table.used != 0 || ledger->holds.table.used != 0 ||
	    ledger->counts.table.used != 0 || ledger->transfers.table.used != 0 ||
	    ledger->keys.count != 0 || ledger->catalog.skus.used != 0 ||
	    ledger->catalog.barcodes.used != 0 || ledger->catalog.attributes.used != 0 ||
	    ledger->catalog.buffers.used != 0 || ledger->catalog.bundles_used != 0 ||
	    ledger->push.listings.used != 0 || ledger->push.serial != 0 ||
	    ledger->discrepancies.table.used != 0)
		return 0;
	/* Items come with an SKU code; locations and channels do not. */
	for (uint32_t id = 1; id <= ledger->config.locations_max; id++) {
		if (ledger->catalog.locations[id].defined)
			return 0;
	}
	for (uint32_t id = 1; id <= ledger->config.channels_max; id++) {
		if (ledger->catalog.channels[id].defined)
			return 0;
	}
	return 1;
}

static int load_header(struct ledger *ledger, struct snapshot_reader *reader, uint32_t *version)
{
	struct snapshot_stream_header header;
	int ret = snapshot_get(reader, &header, sizeof(header));
	if (ret != 0)
		return ret;
	if (header.magic != SNAPSHOT_STREAM_MAGIC)
		return snapshot_refuse(reader, "not a ledger snapshot stream (bad magic)");
	if (header.version != LEDGER_SNAPSHOT_VERSION && header.version != 1 && header.version != 2)
		return snapshot_refuse(reader,
		                       "ledger snapshot version %u is not supported (this "
		                       "build reads versions 1 to %u)",
		                       header.version, LEDGER_SNAPSHOT_VERSION);
	if (header.header_size != sizeof(header) || header.reserved32 != 0 ||
	    !snapshot_zero(header.reserved, sizeof(header.reserved)))
		return snapshot_refuse(reader, "stream header: bad size or reserved bytes");
	if (ledger_config_fingerprint_version(&ledger->config, header.config_fingerprint) !=
	    header.version)
		return snapshot_refuse(
		        reader,
		        "saved with another ledger configuration (fingerprint "
		        "%016llx, this one is %016llx)",
		        (unsigned long long)header.config_fingerprint,
		        (unsigned long long)ledger_config_fingerprint(&ledger->config));
	if (header.bundles_used > ledger->config.bundles_max)
		return snapshot_refuse(reader, "%u component blocks used, bundles_max is %u",
		                       header.bundles_used, ledger->config.bundles_max);
	ledger->now = header.now;
	ledger->catalog.bundles_used = header.bundles_used;
	*version = header.version;
	return 0;
}

/* A plain item or a location that may hold stock. */
static int stock_ids_valid(const struct ledger *ledger, uint32_t item, uint32_t location)
{
	const struct item *record = catalog_item(&ledger->catalog, item);
	return record != NULL && !record->bundle &&
	       catalog_location(&ledger->catalog, location) != NULL;
}

static int stock_record_valid(const struct ledger *ledger, const struct snapshot_stock *record)
{
	return stock_ids_valid(ledger, record->item, record->location) &&
	       quantity_within(record->on_hand) && quantity_within(record->reserved) &&
	       quantity_within(record->committed) && quantity_within(record->damaged) &&
	       quantity_within(record->quarantine) && quantity_within(record->incoming);
}

static int load_stock(struct ledger *ledger, struct snapshot_reader *reader)
{
	struct table *table = &ledger->stocks.table;
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_STOCK, sizeof(struct snapshot_stock),
	                            table->capacity, &count);
	struct snapshot_stock chunk[SNAPSHOT_CHUNK];
	for (uint32_t done = 0; ret == 0 && done < count;) {
		uint32_t step = count - done < SNAPSHOT_CHUNK ? count - done : SNAPSHOT_CHUNK;
		ret = snapshot_get(reader, chunk, (size_t)step * sizeof(chunk[0]));
		for (uint32_t i = 0; ret == 0 && i < step; i++) {
			const struct snapshot_stock *record = &chunk[i];
			if (!stock_record_valid(ledger, record) ||
			    stock_find(&ledger->stocks, record->item, record->location) != NULL)
				return snapshot_refuse(
				        reader,
				        "stock entry %u (item %u, location %u): unknown "
				        "ids, a counter out of range, or twice",
				        done + i, record->item, record->location);
			uint32_t index = table_alloc(table);
			SKULD_ASSERT(index != TABLE_NONE); /* count <= capacity */
			memcpy(table_record(table, index), record, sizeof(*record));
			table_link(table, index, stock_hash_of(record->item, record->location));
		}
		done += step;
	}
	return ret;
}

/* The checks every hold record passes; fills x with its expansion at its
 * location, resolved (all entries exist when it returns 1). */
static int hold_record_valid(const struct ledger *ledger, const struct snapshot_hold *record,
                             struct expansion *x)
{
	const struct item *item = catalog_item(&ledger->catalog, record->item);
	if (item == NULL || (item->bundle && (item->components == 0 || !item->frozen)))
		return 0;
	if (catalog_location(&ledger->catalog, record->location) == NULL ||
	    (record->channel != 0 && catalog_channel(&ledger->catalog, record->channel) == NULL))
		return 0;
	if (record->state > LEDGER_HOLD_EXPIRED)
		return 0;
	int64_t remaining = record->remaining;
	if (record->state == LEDGER_HOLD_COMMITTED ? remaining != 0 : !quantity_positive(remaining))
		return 0;
	/* A hold's whole expansion was in stock at its location when it was
	 * placed or moved, and entries are never removed. */
	if (ledger_expand(ledger, item, record->item, remaining != 0 ? remaining : 1, x) !=
	    SKULD_OK)
		return 0;
	ledger_resolve(ledger, x, record->location);
	for (uint32_t i = 0; i < x->count; i++) {
		if (x->stock[i] == NULL)
			return 0;
	}
	return 1;
}

static int load_hold(struct ledger *ledger, struct snapshot_reader *reader,
                     const struct snapshot_hold *record, int open, uint64_t *closed_before)
{
	struct expansion x;
	if (!hold_record_valid(ledger, record, &x))
		return snapshot_refuse(reader,
		                       "hold %llu: unknown or unusable item %u, location %u or "
		                       "channel %u, state %u, or remaining %lld",
		                       (unsigned long long)record->id, record->item,
		                       record->location, record->channel, record->state,
		                       (long long)record->remaining);
	if (open ? record->state != LEDGER_HOLD_OPEN || record->closed_at != 0
	         : record->state == LEDGER_HOLD_OPEN || record->closed_at > ledger->now ||
	                    record->closed_at < *closed_before)
		return snapshot_refuse(reader, "hold %llu: state %u or closing time out of place",
		                       (unsigned long long)record->id, record->state);
	if (holds_find(&ledger->holds, record->id) != NULL)
		return snapshot_refuse(reader, "hold %llu twice", (unsigned long long)record->id);
	struct hold saved = {0};
	memcpy(&saved, record, sizeof(*record));
	struct hold *hold = holds_restore(&ledger->holds, &saved);
	const struct item *item = &ledger->catalog.items[record->item];
	hold->stock = item->bundle ? TABLE_NONE : stock_index(&ledger->stocks, x.stock[0]);
	if (open)
		timer_insert(&ledger->timer, holds_index(&ledger->holds, hold), hold->expires_at,
		             hold->id);
	else
		*closed_before = record->closed_at;
	return 0;
}

static int load_holds(struct ledger *ledger, struct snapshot_reader *reader)
{
	static_assert(offsetof(struct snapshot_hold, closed_at) == offsetof(struct hold, closed_at),
	              "a hold record is the hold's hashed bytes");
	static_assert(offsetof(struct snapshot_hold, item) == offsetof(struct hold, item),
	              "a hold record is the hold's hashed bytes");
	static_assert(offsetof(struct snapshot_hold, state) == offsetof(struct hold, state),
	              "a hold record is the hold's hashed bytes");
	const struct ledger_config *config = &ledger->config;
	uint64_t closed_before = 0;
	for (int open = 0; open <= 1; open++) {
		uint32_t count = 0;
		uint32_t limit = open ? config->holds_max
		                      : config->closed_holds_max + config->batch_events_max;
		int ret = snapshot_part_get(
		        reader, open ? SNAPSHOT_PART_HOLDS_OPEN : SNAPSHOT_PART_HOLDS_CLOSED,
		        sizeof(struct snapshot_hold), limit, &count);
		for (uint32_t i = 0; ret == 0 && i < count; i++) {
			struct snapshot_hold record;
			ret = snapshot_get(reader, &record, sizeof(record));
			if (ret == 0)
				ret = load_hold(ledger, reader, &record, open, &closed_before);
		}
		if (ret != 0)
			return ret;
	}
	return 0;
}

static int load_counts(struct ledger *ledger, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_COUNTS, sizeof(struct snapshot_count),
	                            ledger->config.counts_max, &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_count record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (!stock_ids_valid(ledger, record.item, record.location) ||
		    !quantity_within(record.expected) ||
		    counts_find(&ledger->counts, record.item, record.location) != NULL)
			return snapshot_refuse(reader,
			                       "count %llu (item %u, location %u): unknown ids, "
			                       "expected out of range, or a second open count",
			                       (unsigned long long)record.id, record.item,
			                       record.location);
		struct count *open = counts_open(&ledger->counts, &ledger->journal, record.item,
		                                 record.location);
		open->id = record.id;
		open->expected = record.expected;
		open->opened_at = record.opened_at;
	}
	return ret;
}

static int load_transfers(struct ledger *ledger, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret =
	        snapshot_part_get(reader, SNAPSHOT_PART_TRANSFERS, sizeof(struct snapshot_transfer),
	                          ledger->config.transfers_max, &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_transfer record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (!stock_ids_valid(ledger, record.item, record.from) ||
		    catalog_location(&ledger->catalog, record.to) == NULL ||
		    record.from == record.to || record.reserved != 0 ||
		    !quantity_positive(record.remaining) ||
		    transfers_find(&ledger->transfers, record.id, record.item) != NULL)
			return snapshot_refuse(
			        reader,
			        "transfer %llu item %u: unknown ids, remaining out of "
			        "range, or twice",
			        (unsigned long long)record.id, record.item);
		struct transfer *open = transfers_open(&ledger->transfers, &ledger->journal,
		                                       record.id, record.item);
		open->from = record.from;
		open->to = record.to;
		open->remaining = record.remaining;
	}
	return ret;
}

static int load_keys(struct ledger *ledger, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_KEYS, sizeof(struct snapshot_key),
	                            ledger->config.keys_max, &count);
	uint64_t before = 0;
	struct snapshot_key chunk[SNAPSHOT_CHUNK];
	for (uint32_t done = 0; ret == 0 && done < count;) {
		uint32_t step = count - done < SNAPSHOT_CHUNK ? count - done : SNAPSHOT_CHUNK;
		ret = snapshot_get(reader, chunk, (size_t)step * sizeof(chunk[0]));
		for (uint32_t i = 0; ret == 0 && i < step; i++) {
			const struct snapshot_key *record = &chunk[i];
			uint64_t hash = keys_hash(record->key);
			uint32_t slot = 0;
			if (record->inserted_at < before || record->inserted_at > ledger->now ||
			    record->result.status != SKULD_OK || record->result.reserved != 0 ||
			    keys_find(&ledger->keys, record->key, hash, &slot) != NULL)
				return snapshot_refuse(reader,
				                       "idempotency key %u: out of time order, a "
				                       "failure remembered, or twice",
				                       done + i);
			before = record->inserted_at;
			keys_insert(&ledger->keys, &ledger->journal, record->key, hash, slot,
			            record->event_hash, record->inserted_at, &record->result);
		}
		done += step;
	}
	keys_publish();
	return ret;
}

static int detail_valid(const char *detail)
{
	return proto_text_valid(detail, SKULD_EXCEPTION_DETAIL_SIZE, 1);
}

static int load_channel_push(struct ledger *ledger, struct snapshot_reader *reader)
{
	struct push_state *push = &ledger->push;
	uint32_t count = 0;
	int ret =
	        snapshot_part_get(reader, SNAPSHOT_PART_CHANNEL_PUSH,
	                          sizeof(struct snapshot_channel_push), push->channels_max, &count);
	uint32_t before = 0;
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_channel_push record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (record.channel <= before ||
		    catalog_channel(&ledger->catalog, record.channel) == NULL ||
		    record.reserved_0 != 0 || record.reserved_1 != 0 ||
		    record.exception > SKULD_PUSH_EXCEPTION_LAST ||
		    (record.exception == 0) != (record.reports == 0) ||
		    record.last_ack > ledger->now || record.last_seen > ledger->now ||
		    record.first_seen > record.last_seen || !detail_valid(record.detail) ||
		    (record.acks == 0 && record.exception == 0))
			return snapshot_refuse(reader,
			                       "channel push record %u (channel %u): out of order, "
			                       "unknown channel, bad exception or times",
			                       i, record.channel);
		before = record.channel;
		struct channel_push *to = &push->channels[record.channel];
		to->exception = record.exception;
		to->reports = record.reports;
		to->acks = record.acks;
		to->last_ack = record.last_ack;
		to->first_seen = record.first_seen;
		to->last_seen = record.last_seen;
		memcpy(to->detail, record.detail, sizeof(to->detail));
	}
	return ret;
}

static int listing_record_valid(const struct ledger *ledger, const struct listing *record)
{
	const struct push_state *push = &ledger->push;
	const uint8_t known =
	        SKULD_PUSH_SHOWN_KNOWN | SKULD_PUSH_DIRTY | SKULD_PUSH_PARKED | LISTING_MAPPED;
	if (catalog_channel(&ledger->catalog, record->channel) == NULL ||
	    catalog_item(&ledger->catalog, record->item) == NULL)
		return 0;
	if ((record->state & ~known) != 0 || !snapshot_zero(record->unused, sizeof(record->unused)))
		return 0;
	if (record->version > push->serial || record->accepted > record->version ||
	    record->serial == 0 || record->serial > push->listing_serial)
		return 0;
	if (record->shown < 0 || record->shown > LEDGER_QUANTITY_MAX ||
	    ((record->state & SKULD_PUSH_SHOWN_KNOWN) == 0 &&
	     (record->shown != 0 || record->accepted != 0)))
		return 0;
	if ((!(record->state & SKULD_PUSH_DIRTY) && record->dirty_since != 0) ||
	    record->dirty_since > ledger->now)
		return 0;
	if (record->exception > SKULD_PUSH_EXCEPTION_LAST ||
	    (record->exception == 0) != (record->reports == 0) ||
	    record->first_seen > record->last_seen || record->last_seen > ledger->now ||
	    !detail_valid(record->detail))
		return 0;
	if ((record->state & SKULD_PUSH_PARKED) &&
	    (record->exception == 0 || record->exception == SKULD_PUSH_THROTTLING ||
	     record->exception == SKULD_PUSH_MISMATCH))
		return 0;
	return proto_text_valid(record->text, sizeof(record->text), 0);
}

static int load_push(struct ledger *ledger, struct snapshot_reader *reader)
{
	struct push_state *push = &ledger->push;
	uint32_t count = 0;
	struct snapshot_push clocks;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_PUSH, sizeof(clocks), 1, &count);
	if (ret == 0 && count != 1)
		return snapshot_refuse(reader, "the push part has %u records, not 1", count);
	ret = snapshot_get(reader, &clocks, sizeof(clocks));
	if (ret != 0)
		return ret;
	if (clocks.reserved != 0)
		return snapshot_refuse(reader, "push clocks: reserved bytes set");
	push->serial = clocks.serial;
	push->listing_serial = clocks.listing_serial;
	ret = load_channel_push(ledger, reader);
	if (ret == 0)
		ret = snapshot_part_get(reader, SNAPSHOT_PART_LISTINGS, sizeof(struct listing),
		                        push->listings.capacity, &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct listing record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (!listing_record_valid(ledger, &record) ||
		    push_listing(push, record.channel, record.item) != NULL)
			return snapshot_refuse(reader,
			                       "listing %u (channel %u, item %u): unknown ids, "
			                       "bad state, versions, quantity or text, or twice",
			                       i, record.channel, record.item);
		uint32_t index = table_alloc(&push->listings);
		SKULD_ASSERT(index != TABLE_NONE); /* count <= capacity */
		memcpy(table_record(&push->listings, index), &record, sizeof(record));
		table_link(&push->listings, index, push->listings.hash(&record));
	}
	if (ret == 0)
		push_rebuild(push);
	return ret;
}

/* A record as discrepancies.c keeps one: known ids, kinds and state, the
 * latest kind among the seen, sequences in order, found within QMAX and
 * expected within 5 * QMAX. */
static int discrepancy_record_valid(const struct ledger *ledger, const struct discrepancy *record)
{
	if (!stock_ids_valid(ledger, record->item, record->location))
		return 0;
	if (record->occurrences == 0 || record->reserved != 0 || record->acknowledged > 1 ||
	    record->kinds == 0 || (record->kinds & ~DISCREPANCY_KINDS_KNOWN) != 0 ||
	    (record->last_kind != DISCREPANCY_SALE_SHORT &&
	     record->last_kind != DISCREPANCY_COUNT_OFF) ||
	    (record->kinds & record->last_kind) == 0)
		return 0;
	if (record->first_sequence > record->last_sequence ||
	    record->last_sequence >= UINT64_MAX / 2)
		return 0;
	/* expected is the available a sale found: on_hand less four
	 * buckets, each within QMAX. */
	return record->expected >= -5 * LEDGER_QUANTITY_MAX &&
	       record->expected <= 5 * LEDGER_QUANTITY_MAX && quantity_within(record->found);
}

static int load_discrepancies(struct ledger *ledger, struct snapshot_reader *reader)
{
	struct discrepancies *discrepancies = &ledger->discrepancies;
	uint32_t count = 0;
	struct snapshot_discrepancy_state state;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_DISCREPANCY_STATE, sizeof(state), 1,
	                            &count);
	if (ret == 0 && count != 1)
		return snapshot_refuse(reader, "the discrepancy state part has %u records, not 1",
		                       count);
	ret = snapshot_get(reader, &state, sizeof(state));
	if (ret != 0)
		return ret;
	if (state.origin > state.sequence_next)
		return snapshot_refuse(reader,
		                       "discrepancy state: origin %llu after the next sequence",
		                       (unsigned long long)state.origin);
	ledger->sequence_next = state.sequence_next;
	discrepancies->origin = state.origin;
	discrepancies->dropped = state.dropped;
	discrepancies->evicted = state.evicted;
	ret = snapshot_part_get(reader, SNAPSHOT_PART_DISCREPANCIES, sizeof(struct discrepancy),
	                        discrepancies->table.capacity, &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct discrepancy record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (!discrepancy_record_valid(ledger, &record) ||
		    discrepancies_find(discrepancies, record.item, record.location) != NULL)
			return snapshot_refuse(
			        reader,
			        "discrepancy %u (item %u, location %u): unknown ids, "
			        "bad kinds, state, sequences or figures, or twice",
			        i, record.item, record.location);
		discrepancies_restore(discrepancies, &record);
	}
	return ret;
}

int ledger_snapshot_load(struct ledger *ledger, const struct snapshot_source *source, char *reason,
                         size_t reason_size)
{
	struct snapshot_reader reader = {
	        .source = source,
	        .reason = reason,
	        .reason_size = reason_size,
	};
	if (reason != NULL && reason_size > 0)
		reason[0] = '\0';
	SKULD_ASSERT(!ledger->journal.active);
	if (!ledger_fresh(ledger)) {
		if (reason != NULL && reason_size > 0)
			snprintf(reason, reason_size, "the ledger is not fresh from ledger_create");
		return -EINVAL;
	}
	uint32_t version = 0;
	int ret = load_header(ledger, &reader, &version);
	if (ret == 0)
		ret = catalog_snapshot_load(&ledger->catalog, &reader);
	if (ret == 0)
		ret = load_stock(ledger, &reader);
	if (ret == 0)
		ret = load_holds(ledger, &reader);
	if (ret == 0)
		ret = load_counts(ledger, &reader);
	if (ret == 0)
		ret = load_transfers(ledger, &reader);
	if (ret == 0)
		ret = load_keys(ledger, &reader);
	/* Version 1 has no push parts (no listing existed) and ends at tag 16;
	 * version 2 has no discrepancy parts and ends at tag 19. */
	if (ret == 0 && version != 1)
		ret = load_push(ledger, &reader);
	if (ret == 0 && version != 1 && version != 2)
		ret = load_discrepancies(ledger, &reader);
	/* Without discrepancy parts, tracking begins at the next sequence the
	 * ledger is given (discrepancies.h, origin). */
	if (ret == 0 && (version == 1 || version == 2))
		ledger->discrepancies.origin = DISCREPANCIES_ORIGIN_NEXT;
	uint32_t end = version == 1   ? SNAPSHOT_PART_END_V1
	               : version == 2 ? SNAPSHOT_PART_END_V2
	                              : SNAPSHOT_PART_END;
	uint32_t count = 0;
	if (ret == 0)
		ret = snapshot_part_get(&reader, end, 0, 0, &count);
	return ret;
}
