/*
 * query.c — QUERY and LOOKUP answers (query.h).
 */
#include "query.h"

#include <stddef.h>
#include <string.h>

#include "skuld_assert.h"

static void level_fill(struct skuld_level_record *record, uint32_t kind, uint32_t item,
                       uint32_t location, uint32_t status, const struct ledger_level *level)
{
	memset(record, 0, sizeof(*record));
	record->item = item;
	record->location = location;
	record->status = (uint16_t)status;
	record->kind = (uint8_t)kind;
	if (status != SKULD_OK || level == NULL)
		return;
	record->on_hand = level->on_hand;
	record->reserved = level->reserved;
	record->committed = level->committed;
	record->unsellable = level->damaged + level->quarantine;
	record->incoming = level->incoming;
	record->available = level->available;
}

static int level_is_zero(const struct ledger_level *level)
{
	return level->on_hand == 0 && level->reserved == 0 && level->committed == 0 &&
	       level->damaged == 0 && level->quarantine == 0 && level->incoming == 0;
}

static uint32_t page_limit(const struct query_limits *limits, uint32_t asked)
{
	if (asked == 0 || asked > limits->limit_max)
		return limits->limit_max;
	return asked;
}

/* The list walk shared by the three list kinds: ids after `after` up to
 * `last`, each answered by `one` (which returns 1 when it wrote a record).
 * Stops on a full page (MORE) or at the scan budget (a CURSOR record). */
struct list_walk {
	const struct ledger *ledger;
	const struct skuld_query *query;
	struct skuld_level_record *records;
	uint32_t count;
	uint32_t limit;
};

typedef int (*list_one)(struct list_walk *walk, uint32_t id, struct skuld_level_record *record);

static uint32_t list_run(struct list_walk *walk, const struct query_limits *limits, uint32_t after,
                         uint32_t last, list_one one, int cursor_is_item)
{
	uint32_t scanned = 0;
	for (uint64_t id = (uint64_t)after + 1; id <= last; id++) {
		if (walk->count == walk->limit) {
			walk->records[walk->count - 1].flags |= SKULD_QUERY_MORE;
			return walk->count;
		}
		if (scanned == limits->scan_max) {
			/* Out of budget before the page filled: say where to go on. */
			struct skuld_level_record *cursor = &walk->records[walk->count];
			level_fill(cursor, walk->query->kind, 0, 0, SKULD_OK, NULL);
			if (cursor_is_item) {
				cursor->item = (uint32_t)id - 1;
				cursor->location = walk->query->location;
			} else {
				cursor->item = walk->query->item;
				cursor->location = (uint32_t)id - 1;
			}
			cursor->channel = walk->query->channel;
			cursor->flags = SKULD_QUERY_MORE | SKULD_QUERY_CURSOR;
			return ++walk->count;
		}
		scanned++;
		walk->count += (uint32_t)one(walk, (uint32_t)id, &walk->records[walk->count]);
	}
	return walk->count;
}

static int item_level_one(struct list_walk *walk, uint32_t location,
                          struct skuld_level_record *record)
{
	struct ledger_level level;
	uint32_t status = ledger_level(walk->ledger, walk->query->item, location, &level);
	if (status != SKULD_OK || level_is_zero(&level))
		return 0;
	level_fill(record, SKULD_QUERY_ITEM_LEVELS, walk->query->item, location, status, &level);
	return 1;
}

static int location_level_one(struct list_walk *walk, uint32_t item,
                              struct skuld_level_record *record)
{
	struct ledger_level level;
	uint32_t status = ledger_level(walk->ledger, item, walk->query->location, &level);
	if (status != SKULD_OK || level_is_zero(&level))
		return 0;
	level_fill(record, SKULD_QUERY_LOCATION_LEVELS, item, walk->query->location, status,
	           &level);
	return 1;
}

static void channel_fill(struct skuld_level_record *record, uint32_t channel, uint32_t item,
                         uint32_t status, int64_t quantity)
{
	level_fill(record, SKULD_QUERY_CHANNEL, item, 0, status, NULL);
	record->channel = channel;
	record->available = status == SKULD_OK ? quantity : 0;
}

static int channel_one(struct list_walk *walk, uint32_t item, struct skuld_level_record *record)
{
	int64_t quantity = 0;
	uint32_t status =
	        ledger_channel_quantity(walk->ledger, walk->query->channel, item, &quantity);
	if (status != SKULD_OK)
		return 0;
	channel_fill(record, walk->query->channel, item, status, quantity);
	return 1;
}

static uint32_t hold_answer(const struct ledger *ledger, const struct skuld_query *query,
                            struct skuld_hold_record *record)
{
	struct ledger_hold_info info;
	uint32_t status = ledger_hold(ledger, query->hold, &info);
	memset(record, 0, sizeof(*record));
	record->hold = query->hold;
	record->status = (uint16_t)status;
	record->kind = SKULD_QUERY_HOLD;
	if (status == SKULD_OK) {
		record->item = info.item;
		record->location = info.location;
		record->channel = info.channel;
		record->expires_at_ns = info.expires_at_ns;
		record->closed_at_ns = info.closed_at_ns;
		record->remaining = info.remaining;
		record->state = info.state;
	}
	return 1;
}

/* ---- Channel push (PUSH, PUSH_ALL, LISTING, EXCEPTIONS, CHANNEL_PUSH) ------- */

static void push_fill(struct skuld_push_record *record, uint32_t kind, uint32_t channel,
                      uint32_t status, const struct ledger_push_info *info)
{
	memset(record, 0, sizeof(*record));
	record->kind = (uint8_t)kind;
	record->channel = channel;
	record->status = (uint16_t)status;
	if (info == NULL)
		return;
	record->item = info->item;
	record->listing_serial = info->listing_serial;
	record->version = info->version;
	record->quantity = info->quantity;
	record->shown = info->shown;
	record->dirty_since = info->dirty_since;
	record->scale = info->scale;
	record->state = info->state;
	record->exception = (uint16_t)((info->state & SKULD_PUSH_PARKED) ? info->exception : 0);
	record->accepted = info->accepted;
}

static void listing_fill(struct skuld_listing_record *record, uint32_t channel, uint32_t status,
                         const struct ledger_push_info *info)
{
	memset(record, 0, sizeof(*record));
	record->kind = SKULD_QUERY_LISTING;
	record->channel = channel;
	record->status = (uint16_t)status;
	if (info == NULL)
		return;
	record->item = info->item;
	if (status == SKULD_OK) {
		record->listing_serial = info->listing_serial;
		memcpy(record->listing, info->listing, sizeof(record->listing));
	}
}

static void exception_fill(struct skuld_exception_record *record, uint32_t channel, uint32_t item,
                           uint16_t exception, uint64_t first_seen, uint64_t last_seen,
                           uint32_t reports, const char *detail)
{
	memset(record, 0, sizeof(*record));
	record->kind = SKULD_QUERY_EXCEPTIONS;
	record->channel = channel;
	record->item = item;
	record->exception = exception;
	record->first_seen = first_seen;
	record->last_seen = last_seen;
	record->reports = reports;
	memcpy(record->detail, detail, sizeof(record->detail));
}

/* PUSH, PUSH_ALL, LISTING (every item) and EXCEPTIONS: a page of the
 * channel's mapped (or dirty) items after the cursor, ascending. The
 * bitmaps skip unmapped items 64 at a time, so a page costs its records,
 * not the catalog. EXCEPTIONS looks at every mapped item for the few with
 * an exception, so it stops at the scan budget with a CURSOR record. */
static uint32_t push_page(const struct ledger *ledger, const struct query_limits *limits,
                          const struct skuld_query *query, uint32_t limit, void *records_memory)
{
	uint8_t *records = records_memory;
	const size_t size = 64;
	char name[SKULD_CODE_SIZE];
	if (!ledger_channel_code(ledger, query->channel, name)) {
		/* The common tail (status, kind, channel) is at the same place in
		 * every layout. */
		push_fill(records_memory, query->kind, query->channel, SKULD_CHANNEL_UNKNOWN, NULL);
		return 1;
	}
	uint32_t count = 0;
	int dirty_only = query->kind == SKULD_QUERY_PUSH;
	/* The channel's own exception (item 0) leads the first page, when the
	 * page has room for it and one more: a page of it alone would page on
	 * after item 0, which is the first page again. */
	if (query->kind == SKULD_QUERY_EXCEPTIONS && query->after_item == 0 && limit >= 2) {
		struct ledger_channel_push_info channel;
		ledger_channel_push(ledger, query->channel, &channel);
		if (channel.exception != 0) {
			exception_fill(records_memory, query->channel, 0, channel.exception,
			               channel.first_seen, channel.last_seen, channel.reports,
			               channel.detail);
			count++;
		}
	}
	uint32_t scanned = 0;
	for (uint32_t item =
	             ledger_push_next(ledger, query->channel, query->after_item, dirty_only);
	     item != 0; item = ledger_push_next(ledger, query->channel, item, dirty_only)) {
		if (count == limit) {
			records[(count - 1) * size + offsetof(struct skuld_level_record, flags)] |=
			        SKULD_QUERY_MORE;
			break;
		}
		if (query->kind == SKULD_QUERY_EXCEPTIONS && scanned++ == limits->scan_max) {
			/* Out of budget: say where to go on. */
			struct skuld_exception_record *cursor = (void *)(records + count * size);
			exception_fill(cursor, query->channel, item - 1, 0, 0, 0, 0,
			               (const char[SKULD_EXCEPTION_DETAIL_SIZE]){0});
			cursor->flags = SKULD_QUERY_MORE | SKULD_QUERY_CURSOR;
			return count + 1;
		}
		struct ledger_push_info info;
		uint32_t found = ledger_push_item(ledger, query->channel, item, &info);
		SKULD_ASSERT(found == SKULD_OK);
		void *record = records + count * size;
		switch (query->kind) {
		case SKULD_QUERY_LISTING:
			listing_fill(record, query->channel, found, &info);
			break;
		case SKULD_QUERY_EXCEPTIONS:
			if (info.exception == 0)
				continue;
			exception_fill(record, query->channel, item, info.exception,
			               info.first_seen, info.last_seen, info.reports, info.detail);
			break;
		default:
			push_fill(record, query->kind, query->channel, found, &info);
			break;
		}
		count++;
	}
	return count;
}

static uint32_t channel_push_answer(const struct ledger *ledger, uint32_t channel,
                                    struct skuld_channel_push_record *record)
{
	struct ledger_channel_push_info info;
	uint32_t status = ledger_channel_push(ledger, channel, &info);
	memset(record, 0, sizeof(*record));
	record->kind = SKULD_QUERY_CHANNEL_PUSH;
	record->channel = channel;
	record->status = (uint16_t)status;
	record->mapped = info.mapped;
	record->dirty = info.dirty;
	record->oldest_dirty = info.oldest_dirty;
	record->last_ack = info.last_ack;
	record->acks = info.acks;
	record->parked = info.parked;
	record->exception = info.exception;
	record->exception_last = info.last_seen;
	return 1;
}

/* ---- Discrepancies ------------------------------------------------------------ */

static void discrepancy_fill(struct skuld_discrepancy_record *record,
                             const struct ledger_discrepancy_info *info)
{
	memset(record, 0, sizeof(*record));
	record->kind = SKULD_QUERY_DISCREPANCIES;
	record->item = info->item;
	record->location = info->location;
	record->first_sequence = info->first_sequence;
	record->last_sequence = info->last_sequence;
	record->first_at = info->first_at;
	record->last_at = info->last_at;
	record->expected = info->expected;
	record->found = info->found;
	record->occurrences = info->occurrences;
	record->flags = (uint8_t)((info->acknowledged ? SKULD_DISCREPANCY_ACKNOWLEDGED : 0) |
	                          ((info->kinds & 1) ? SKULD_DISCREPANCY_SALE_SHORT : 0) |
	                          ((info->kinds & 2) ? SKULD_DISCREPANCY_COUNT_OFF : 0) |
	                          (info->last_kind == 2 ? SKULD_DISCREPANCY_LAST_COUNT : 0));
}

/* DISCREPANCIES: the table's figures first on a first page (limit >= 2,
 * so a page never holds them alone), then records after the cursor
 * ascending by (location, item), MORE on a full page. */
static uint32_t discrepancies_answer(const struct ledger *ledger, const struct skuld_query *query,
                                     uint32_t limit, void *records_memory)
{
	struct skuld_discrepancy_record *records = records_memory;
	if (query->location != 0 && ledger_location_state(ledger, query->location) < 0) {
		memset(records, 0, sizeof(*records));
		records->kind = SKULD_QUERY_DISCREPANCIES;
		records->location = query->location;
		records->status = SKULD_LOCATION_UNKNOWN;
		return 1;
	}
	uint32_t count = 0;
	if (query->after_item == 0 && query->after_location == 0 && limit >= 2) {
		struct ledger_discrepancy_figures figures;
		ledger_discrepancy_figures(ledger, &figures);
		memset(records, 0, sizeof(*records));
		records->kind = SKULD_QUERY_DISCREPANCIES;
		records->expected = figures.capacity;
		records->found = figures.records;
		records->first_sequence = figures.evicted;
		records->last_sequence = figures.dropped;
		count = 1;
	}
	struct ledger_discrepancy_info page[SKULD_QUERY_LIMIT_MAX];
	int more = 0;
	uint32_t found = ledger_discrepancy_page(ledger, query->location, query->after_location,
	                                         query->after_item, limit - count, page, &more);
	for (uint32_t i = 0; i < found; i++)
		discrepancy_fill(&records[count++], &page[i]);
	if (more && count > 0)
		records[count - 1].flags |= SKULD_QUERY_MORE;
	return count;
}

uint32_t query_answer(const struct ledger *ledger, const struct query_limits *limits,
                      const struct skuld_query *query, void *records_memory)
{
	struct skuld_level_record *records = records_memory;
	struct ledger_level level;
	struct list_walk walk = {
	        .ledger = ledger,
	        .query = query,
	        .records = records,
	        .limit = page_limit(limits, query->limit),
	};
	uint32_t status;
	int64_t quantity = 0;
	switch (query->kind) {
	case SKULD_QUERY_LEVEL:
		status = ledger_level(ledger, query->item, query->location, &level);
		level_fill(records, SKULD_QUERY_LEVEL, query->item, query->location, status,
		           &level);
		return 1;
	case SKULD_QUERY_ITEM_LEVELS:
		/* Any location: the item's own status (unknown, bundle) answers. */
		status = ledger_level(ledger, query->item, 0, &level);
		if (status == SKULD_ITEM_UNKNOWN || status == SKULD_BUNDLE_NOT_STOCKED) {
			level_fill(records, query->kind, query->item, 0, status, NULL);
			return 1;
		}
		return list_run(&walk, limits, query->after_location, limits->locations_max,
		                item_level_one, 0);
	case SKULD_QUERY_LOCATION_LEVELS:
		if (ledger_location_state(ledger, query->location) < 0) {
			level_fill(records, query->kind, 0, query->location, SKULD_LOCATION_UNKNOWN,
			           NULL);
			return 1;
		}
		return list_run(&walk, limits, query->after_item, limits->items_max,
		                location_level_one, 1);
	case SKULD_QUERY_CHANNEL:
		if (query->item != 0) {
			status = ledger_channel_quantity(ledger, query->channel, query->item,
			                                 &quantity);
			channel_fill(records, query->channel, query->item, status, quantity);
			return 1;
		}
		/* Item 0 is never defined: this only asks whether the channel is. */
		status = ledger_channel_quantity(ledger, query->channel, 0, &quantity);
		if (status == SKULD_CHANNEL_UNKNOWN) {
			channel_fill(records, query->channel, 0, status, 0);
			return 1;
		}
		return list_run(&walk, limits, query->after_item, limits->items_max, channel_one,
		                1);
	case SKULD_QUERY_HOLD:
		return hold_answer(ledger, query, records_memory);
	case SKULD_QUERY_LISTING:
		if (query->item != 0) {
			struct ledger_push_info info;
			status = ledger_push_item(ledger, query->channel, query->item, &info);
			listing_fill(records_memory, query->channel, status, &info);
			return 1;
		}
		return push_page(ledger, limits, query, walk.limit, records_memory);
	case SKULD_QUERY_PUSH:
	case SKULD_QUERY_PUSH_ALL:
	case SKULD_QUERY_EXCEPTIONS:
		return push_page(ledger, limits, query, walk.limit, records_memory);
	case SKULD_QUERY_CHANNEL_PUSH:
		return channel_push_answer(ledger, query->channel, records_memory);
	case SKULD_QUERY_DISCREPANCIES:
		return discrepancies_answer(ledger, query, walk.limit, records_memory);
	default:
		SKULD_ASSERT(!"query kind checked by the codec");
		return 0;
	}
}

static void match_fill(struct skuld_lookup_match *match, uint32_t kind, uint32_t id,
                       uint32_t status)
{
	memset(match, 0, sizeof(*match));
	match->id = id;
	match->kind = (uint8_t)kind;
	match->status = (uint16_t)(id != 0 ? SKULD_OK : status);
}

/* Adds the item's scale and bundle flag to a SKU or barcode match. */
static void match_item_describe(const struct ledger *ledger, struct skuld_lookup_match *match)
{
	struct ledger_item_info info;
	if (match->id == 0 || ledger_item(ledger, match->id, &info) != SKULD_OK)
		return;
	match->scale = info.scale;
	if (info.bundle)
		match->flags |= SKULD_LOOKUP_BUNDLE;
}

uint32_t lookup_answer(const struct ledger *ledger, const struct directory *directory,
                       const struct skuld_lookup *lookup, struct skuld_lookup_match *out)
{
	int retired = 0;
	uint32_t id;
	switch (lookup->kind) {
	case SKULD_LOOKUP_SKU:
		id = ledger_sku_lookup(ledger, lookup->code, &retired);
		match_fill(out, lookup->kind, id, SKULD_ITEM_UNKNOWN);
		match_item_describe(ledger, out);
		if (id != 0 && retired)
			out->flags |= SKULD_LOOKUP_RETIRED;
		return 1;
	case SKULD_LOOKUP_LOCATION:
		id = directory_find(directory, DIRECTORY_LOCATION, lookup->code);
		match_fill(out, lookup->kind, id, SKULD_LOCATION_UNKNOWN);
		return 1;
	case SKULD_LOOKUP_CHANNEL:
		id = directory_find(directory, DIRECTORY_CHANNEL, lookup->code);
		match_fill(out, lookup->kind, id, SKULD_CHANNEL_UNKNOWN);
		return 1;
	case SKULD_LOOKUP_ITEM: {
		/* By id (non-zero: the codec checked). An undefined or out-of-range
		 * id answers id 0 and ITEM_UNKNOWN, like a code that names nothing. */
		struct ledger_item_info info;
		int defined = ledger_item(ledger, lookup->id, &info) == SKULD_OK;
		match_fill(out, lookup->kind, defined ? lookup->id : 0, SKULD_ITEM_UNKNOWN);
		if (defined) {
			out->scale = info.scale;
			out->flags = info.bundle ? SKULD_LOOKUP_BUNDLE : 0;
		}
		return 1;
	}
	case SKULD_LOOKUP_BARCODE: {
		struct ledger_barcode_match matches[SKULD_LOOKUP_MATCHES_MAX];
		uint32_t total = ledger_barcode_lookup(ledger, lookup->code, matches,
		                                       SKULD_LOOKUP_MATCHES_MAX);
		if (total == 0) {
			match_fill(out, lookup->kind, 0, SKULD_ITEM_UNKNOWN);
			return 1;
		}
		uint32_t count =
		        total < SKULD_LOOKUP_MATCHES_MAX ? total : SKULD_LOOKUP_MATCHES_MAX;
		for (uint32_t i = 0; i < count; i++) {
			match_fill(&out[i], lookup->kind, matches[i].item, SKULD_OK);
			match_item_describe(ledger, &out[i]);
			out[i].pack = matches[i].pack;
		}
		if (total > count)
			out[count - 1].flags |= SKULD_LOOKUP_MORE; /* keeps BUNDLE */
		return count;
	}
	default:
		SKULD_ASSERT(!"lookup kind checked by the codec");
		return 0;
	}
}
