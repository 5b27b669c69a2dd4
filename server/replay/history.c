/*
 * history.c — skuld-replay history DIR SKU[@LOC] [--from P] [--to P]
 * (docs/REPLAY.md, "history").
 *
 * Owns: the stock card of one item: every movement of it (at one location,
 * or at all), with the running on-hand balance, the result, who sent it and
 * when. Two passes: the first reads the log (no replay) to find the item's
 * id from the SKU — any SKU of the item, also one added later by a rename,
 * so the whole history is found — and the location's id; the second
 * replays the log through the ledger and lists the rows.
 *
 * Which events are rows: stock movements whose item is the item, or a
 * bundle the item is a component of (SALE, FULFILL, RETURN, RESERVE of the
 * bundle move the component); hold events (EXTEND, COMMIT, RELEASE,
 * REALLOCATE, EXPIRE) of holds reserved on either; failed events too (with
 * their status and no change). A TRANSFER_OUT and a REALLOCATE are a row at
 * each of their two locations.
 *
 * The running balance is on_hand. A batch is applied at once, so the
 * ledger's counters are only observable after each record; within a record
 * each row's change follows the rules of docs/LEDGER.md from the event and
 * its logged result (REPLAY.md lists them), and after every record the
 * balance of each location touched is checked against the ledger. A
 * difference (which the rules should never give) is reported on stderr and
 * the ledger's figure is taken; the count is in the summary.
 * `available` is the ledger's own figure from the result, where the result
 * speaks of this item at this location.
 *
 * A log that no longer starts at segment 1 (earlier segments archived, no
 * --archive) is replayed from the snapshot kept at its start (start.h): the
 * item and location are also looked up in the snapshot's catalog, the
 * balances start from its counters, and its open holds and bundle
 * components of the item are known from it. Rows begin after it; a --from
 * or --to at or before it is a fault (those rows are in the archive).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "snapshot_stream.h"
#include "start.h"

/* ---- A small map: u64 key -> four numbers ------------------------------- */

struct entry {
	uint64_t key;
	uint32_t used;
	uint32_t a; /* holds: item; balances: touched in this record */
	uint32_t b; /* holds: location */
	int64_t c;  /* holds: units of the item per unit of the hold; balances: on_hand;
	               bundles: units per bundle */
	int64_t d;  /* holds: remaining */
};

struct map {
	struct entry *slots;
	uint64_t mask;
	uint64_t count;
};

static uint64_t map_home(uint64_t key, uint64_t mask)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return key & mask;
}

static struct entry *map_slot(const struct map *map, uint64_t key)
{
	uint64_t slot = map_home(key, map->mask);
	while (map->slots[slot].used && map->slots[slot].key != key)
		slot = (slot + 1) & map->mask;
	return &map->slots[slot];
}

static struct entry *map_find(const struct map *map, uint64_t key)
{
	if (map->slots == NULL)
		return NULL;
	struct entry *entry = map_slot(map, key);
	return entry->used ? entry : NULL;
}

/* The entry of key, created zeroed if missing; NULL when out of memory. */
static struct entry *map_get(struct map *map, uint64_t key)
{
	struct entry *entry = map_find(map, key);
	if (entry != NULL)
		return entry;
	if (map->slots == NULL || (map->count + 1) * 2 > map->mask + 1) {
		uint64_t slots = map->slots == NULL ? 64 : (map->mask + 1) * 2;
		struct map grown = {.slots = calloc(slots, sizeof(struct entry)),
		                    .mask = slots - 1};
		if (grown.slots == NULL)
			return NULL;
		for (uint64_t i = 0; map->slots != NULL && i <= map->mask; i++) {
			if (map->slots[i].used) {
				*map_slot(&grown, map->slots[i].key) = map->slots[i];
				grown.count++;
			}
		}
		free(map->slots);
		*map = grown;
	}
	entry = map_slot(map, key);
	memset(entry, 0, sizeof(*entry));
	entry->used = 1;
	entry->key = key;
	map->count++;
	return entry;
}

/* Removal with backward shift, so probes stay correct. */
static void map_remove(struct map *map, struct entry *entry)
{
	uint64_t hole = (uint64_t)(entry - map->slots);
	uint64_t next = (hole + 1) & map->mask;
	while (map->slots[next].used) {
		uint64_t home = map_home(map->slots[next].key, map->mask);
		/* Move next into the hole when its home is not in (hole, next]. */
		if (((next - home) & map->mask) >= ((next - hole) & map->mask)) {
			map->slots[hole] = map->slots[next];
			hole = next;
		}
		next = (next + 1) & map->mask;
	}
	memset(&map->slots[hole], 0, sizeof(struct entry));
	map->count--;
}

/* ---- The history ------------------------------------------------------- */

struct history {
	const struct replay_args *args;
	const struct start_snapshot *start; /* the snapshot the replay starts from, or unused */
	char sku[TEXT_CODE_SIZE];
	char location_code[TEXT_CODE_SIZE];
	bool by_location;
	uint32_t item;     /* 0: not found */
	uint32_t location; /* 0: not found (or all locations) */
	uint8_t scale;
	bool bundle;         /* the item is a bundle: no stock of its own */
	struct map bundles;  /* bundle id -> c = units of the item per bundle */
	struct map holds;    /* hold id -> a item, b location, c per, d remaining */
	struct map balances; /* location -> c on_hand, a touched in this record */
	uint64_t rows;
	uint64_t touched; /* balances moved in the record being read */
	uint64_t mismatches;
	bool failed; /* out of memory */
};

/* One row: the event's effect on the item at one location. */
struct row {
	const struct log_record *record;
	uint32_t index;
	uint32_t location;
	uint32_t via;     /* the bundle, or 0 */
	uint64_t hold;    /* hold id for hold kinds, else 0 */
	int64_t quantity; /* units of the item the event is about */
	int64_t change;   /* on_hand change at this location */
	bool available_known;
	int64_t available;
	const char *note; /* "to S2", ... or NULL */
	char note_text[TEXT_CODE_SIZE + 16];
};

static bool is_hold_kind(uint16_t kind)
{
	return kind == SKULD_EXTEND || kind == SKULD_COMMIT || kind == SKULD_RELEASE ||
	       kind == SKULD_REALLOCATE || kind == SKULD_EXPIRE;
}

/* Movements that name their item (the hold kinds name a hold instead). */
static bool is_movement(uint16_t kind)
{
	return kind >= SKULD_RECEIVE && kind <= SKULD_INCOMING && !is_hold_kind(kind);
}

/* Kinds whose item may be a bundle that expands onto its components. */
static bool bundle_kind(uint16_t kind)
{
	return kind == SKULD_SALE || kind == SKULD_FULFILL || kind == SKULD_RETURN ||
	       kind == SKULD_RESERVE;
}

/* Quantities come from the disk: a failed event may carry any value, so
 * arithmetic on them saturates instead of overflowing. */
static int64_t saturate_mul(int64_t a, int64_t b)
{
	int64_t product;
	if (!__builtin_mul_overflow(a, b, &product))
		return product;
	return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
}

static int64_t saturate_add(int64_t a, int64_t b)
{
	int64_t sum;
	if (!__builtin_add_overflow(a, b, &sum))
		return sum;
	return b < 0 ? INT64_MIN : INT64_MAX;
}

static bool applied(const struct skuld_result *result)
{
	return result->status == SKULD_OK && !(result->flags & SKULD_RESULT_REPLAYED);
}

/* The on_hand change of a movement at its (first) location, in units of
 * the item; per = units of the item per unit of the event's item. */
static int64_t on_hand_change(const struct skuld_event *event, const struct skuld_result *result,
                              int64_t per)
{
	if (!applied(result))
		return 0;
	int64_t units = saturate_mul(event->quantity, per);
	switch (event->kind) {
	case SKULD_RECEIVE:
	case SKULD_ADJUST:
	case SKULD_TRANSFER_IN:
		return units;
	case SKULD_COUNT_CLOSE:
		return result->quantity;
	case SKULD_SALE:
		return (result->flags & SKULD_RESULT_PRE_COUNT) ? 0 : saturate_mul(units, -1);
	case SKULD_FULFILL:
	case SKULD_TRANSFER_OUT:
		return saturate_mul(units, -1);
	case SKULD_RETURN:
		return (event->flags & SKULD_EVENT_EXPECTED) ? 0 : units;
	default:
		return 0;
	}
}

static struct entry *balance_of(struct history *history, uint32_t location)
{
	struct entry *entry = map_get(&history->balances, location);
	if (entry == NULL)
		history->failed = true;
	return entry;
}

/* ---- Output ------------------------------------------------------------- */

static void print_header(const struct history *history)
{
	if (history->args->json) {
		printf("{\"sku\":");
		text_json_string(stdout, history->sku);
		printf(",\"item\":%u,\"scale\":%u,\"bundle\":%s,\"location\":", history->item,
		       history->scale, history->bundle ? "true" : "false");
		if (history->by_location) {
			text_json_string(stdout, history->location_code);
			printf(",\"location_id\":%u", history->location);
		} else {
			printf("null");
		}
		printf(",\"movements\":[");
		return;
	}
	if (history->start->used)
		printf("started from snapshot %s at event %" PRIu64
		       " (the log before it was archived): rows after it, balances from its "
		       "counters\n",
		       history->start->path, history->start->number);
	printf("history of %s (item %u%s)", history->sku, history->item,
	       history->bundle ? ", a bundle: no stock of its own" : "");
	if (history->by_location)
		printf(" at %s (location %u)", history->location_code, history->location);
	printf("\n%-30s %8s  %-12s %-10s %12s %10s %12s %12s  %-18s %-30s %-32s %8s  %-32s  %s\n",
	       "RECORDED", "SEQ", "EVENT", "LOCATION", "QUANTITY", "CHANGE", "ON_HAND", "AVAILABLE",
	       "RESULT", "OCCURRED", "CLIENT", "REQUEST", "KEY", "NOTE");
}

static void print_row(struct history *history, const struct names *names, const struct row *row,
                      const int64_t *on_hand)
{
	const struct log_record_header *header = row->record->header;
	const struct skuld_event *event = &row->record->events[row->index];
	const struct skuld_result *result = &row->record->results[row->index];
	char recorded[TEXT_TIME_SIZE], occurred[TEXT_TIME_SIZE] = "-", location[TEXT_CODE_SIZE];
	char quantity[TEXT_QUANTITY_SIZE], change[TEXT_QUANTITY_SIZE + 1];
	char balance[TEXT_QUANTITY_SIZE] = "-";
	char available[TEXT_QUANTITY_SIZE] = "-", client[TEXT_U128_SIZE], key[TEXT_U128_SIZE];
	char flags[TEXT_FLAGS_SIZE], status[TEXT_FLAGS_SIZE + 32];
	text_time(header->timestamp_ns, recorded);
	if (event->occurred_at != 0)
		text_time(event->occurred_at, occurred);
	names_code(names, NAMES_LOCATION, row->location, location);
	text_quantity(row->quantity, history->scale, quantity);
	change[0] = '+';
	text_quantity(row->change, history->scale, change + (row->change > 0));
	if (on_hand != NULL)
		text_quantity(*on_hand, history->scale, balance);
	if (row->available_known)
		text_quantity(row->available, history->scale, available);
	text_u128(header->client, client);
	text_u128(event->key, key);
	text_result_flags(result->flags, flags);
	snprintf(status, sizeof(status), "%s%s%s", skuld_status_name(result->status),
	         flags[0] ? " " : "", flags);
	uint64_t sequence = header->event_first + row->index;
	const char *kind = skuld_event_kind_name(event->kind);
	if (history->args->json) {
		printf("%s{\"seq\":%" PRIu64 ",\"recorded_at\":\"%s\",\"recorded_ns\":%" PRIu64,
		       history->rows ? "," : "", sequence, recorded, header->timestamp_ns);
		if (event->occurred_at != 0)
			printf(",\"occurred_at\":\"%s\"", occurred);
		else
			printf(",\"occurred_at\":null");
		printf(",\"occurred_ns\":%" PRIu64 ",\"kind\":\"%s\",\"location\":",
		       event->occurred_at, kind);
		text_json_string(stdout, location);
		printf(",\"location_id\":%u,\"quantity\":%s,\"change\":%s,\"on_hand\":%s",
		       row->location, quantity, change + (change[0] == '+'),
		       on_hand != NULL ? balance : "null");
		printf(",\"available\":%s,\"status\":\"%s\",\"result_flags\":\"%s\"",
		       row->available_known ? available : "null", skuld_status_name(result->status),
		       flags);
		printf(",\"client\":\"%s\",\"request\":%" PRIu64 ",\"key\":\"%s\"", client,
		       header->request, key);
		if (row->hold != 0)
			printf(",\"hold\":%" PRIu64, row->hold);
		printf(",\"via\":");
		if (row->via != 0) {
			char via[TEXT_CODE_SIZE];
			names_code(names, NAMES_ITEM, row->via, via);
			text_json_string(stdout, via);
		} else {
			printf("null");
		}
		printf(",\"note\":");
		text_json_string(stdout, row->note != NULL ? row->note : "");
		printf("}");
		return;
	}
	char note[TEXT_CODE_SIZE * 2 + 32] = "";
	if (row->via != 0) {
		char via[TEXT_CODE_SIZE];
		names_code(names, NAMES_ITEM, row->via, via);
		snprintf(note, sizeof(note), "via bundle %s%s%s", via, row->note ? "; " : "",
		         row->note ? row->note : "");
	} else if (row->note != NULL) {
		snprintf(note, sizeof(note), "%s", row->note);
	}
	if (row->hold != 0) {
		size_t used = strlen(note);
		snprintf(note + used, sizeof(note) - used, "%shold %" PRIu64, used ? "; " : "",
		         row->hold);
	}
	printf("%-30s %8" PRIu64 "  %-12s %-10s %12s %10s %12s %12s  %-18s %-30s %-32s %8" PRIu64
	       "  %-32s  %s\n",
	       recorded, sequence, kind, location, quantity, change, balance, available, status,
	       occurred, client, header->request, key, note);
}

/* Shows the row (if --from/--to select it) and moves the balance. */
static void row_emit(struct history *history, const struct names *names, struct row *row)
{
	if (history->by_location && row->location != history->location)
		return;
	/* A bundle has no stock; an event refused before a location was
	 * chosen (a channel RESERVE) has none to move. */
	struct entry *balance = NULL;
	if (history->bundle || row->location == 0) {
		row->change = 0;
	} else {
		balance = balance_of(history, row->location);
		if (balance == NULL)
			return;
		balance->c = saturate_add(balance->c, row->change);
		balance->a = 1;
		history->touched++;
	}
	const struct log_record_header *header = row->record->header;
	const struct replay_args *args = history->args;
	uint64_t sequence = header->event_first + row->index;
	const struct text_point *ends[2] = {&args->from, &args->to};
	for (int end = 0; end < 2; end++) {
		const struct text_point *point = ends[end];
		if (point->kind == TEXT_POINT_NONE)
			continue;
		uint64_t value =
		        point->kind == TEXT_POINT_SEQUENCE ? sequence : header->timestamp_ns;
		if (end == 0 ? value < point->value : value > point->value)
			return;
	}
	print_row(history, names, row, balance != NULL ? &balance->c : NULL);
	history->rows++;
}

/* ---- Events -> rows ---------------------------------------------------- */

/* units of the item per unit of the event's item: 1 for the item itself,
 * k for a bundle holding k of it, 0 when the event is not about it. */
static int64_t units_per(const struct history *history, uint32_t item, uint16_t kind)
{
	if (item == history->item)
		return 1;
	if (!bundle_kind(kind))
		return 0;
	const struct entry *bundle = map_find(&history->bundles, item);
	return bundle != NULL ? bundle->c : 0;
}

static void movement_rows(struct history *history, const struct names *names,
                          const struct log_record *record, uint32_t index)
{
	const struct skuld_event *event = &record->events[index];
	const struct skuld_result *result = &record->results[index];
	int64_t per = units_per(history, event->item, event->kind);
	if (per == 0)
		return;
	struct row row = {
	        .record = record,
	        .index = index,
	        .location = event->location,
	        .via = event->item != history->item ? event->item : 0,
	        .quantity = saturate_mul(event->quantity, per),
	        .change = on_hand_change(event, result, per),
	};
	bool ok = applied(result);
	if (event->kind == SKULD_RESERVE) {
		row.hold = event->id;
		if (ok)
			row.location = result->location; /* chosen, for a channel hold */
		if (ok) {
			struct entry *hold = map_get(&history->holds, event->id);
			if (hold == NULL) {
				history->failed = true;
				return;
			}
			hold->a = event->item;
			hold->b = result->location;
			hold->c = per;
			hold->d = event->quantity;
		}
	}
	if (ok && row.via == 0 && result->location == row.location) {
		row.available_known = true;
		row.available = result->available;
	}
	if (event->kind == SKULD_TRANSFER_OUT) {
		char target[TEXT_CODE_SIZE];
		names_code(names, NAMES_LOCATION, event->target, target);
		snprintf(row.note_text, sizeof(row.note_text), "to %s", target);
		row.note = row.note_text;
	}
	row_emit(history, names, &row);
	if (event->kind == SKULD_TRANSFER_OUT) {
		struct row in = row;
		char source[TEXT_CODE_SIZE];
		names_code(names, NAMES_LOCATION, event->location, source);
		in.location = event->target;
		in.change = 0; /* it is incoming there until TRANSFER_IN */
		in.available_known = false;
		snprintf(in.note_text, sizeof(in.note_text), "incoming from %s", source);
		in.note = in.note_text;
		row_emit(history, names, &in);
	}
}

static void hold_rows(struct history *history, const struct names *names,
                      const struct log_record *record, uint32_t index)
{
	const struct skuld_event *event = &record->events[index];
	const struct skuld_result *result = &record->results[index];
	struct entry *hold = map_find(&history->holds, event->id);
	if (hold == NULL)
		return;
	bool ok = applied(result);
	struct row row = {
	        .record = record,
	        .index = index,
	        .location = hold->b,
	        .via = hold->a != history->item ? hold->a : 0,
	        .hold = event->id,
	        .quantity = saturate_mul(ok ? result->quantity : event->quantity, hold->c),
	};
	if (event->kind == SKULD_EXTEND)
		row.quantity = 0;
	if (ok && row.via == 0 && result->location == row.location) {
		row.available_known = true;
		row.available = result->available;
	}
	uint32_t target = event->target;
	if (event->kind == SKULD_REALLOCATE && ok) {
		char code[TEXT_CODE_SIZE];
		names_code(names, NAMES_LOCATION, target, code);
		snprintf(row.note_text, sizeof(row.note_text), "moved to %s", code);
		row.note = row.note_text;
	}
	uint32_t source = hold->b;
	if (ok && event->kind == SKULD_COMMIT)
		hold->d = saturate_add(hold->d, -(result->quantity > 0 ? result->quantity : 0));
	bool closed = ok && (event->kind == SKULD_RELEASE ||
	                     (event->kind == SKULD_COMMIT && hold->d <= 0));
	if (ok && event->kind == SKULD_REALLOCATE)
		hold->b = target;
	if (closed)
		map_remove(&history->holds, hold);
	row_emit(history, names, &row);
	if (event->kind == SKULD_REALLOCATE && ok) {
		struct row moved = row;
		char code[TEXT_CODE_SIZE];
		names_code(names, NAMES_LOCATION, source, code);
		moved.location = target;
		moved.available_known = moved.via == 0 && result->location == target;
		moved.available = result->available;
		snprintf(moved.note_text, sizeof(moved.note_text), "moved from %s", code);
		moved.note = moved.note_text;
		row.available_known = false;
		row_emit(history, names, &moved);
	}
}

/* After a record: the balance of every location it touched against the
 * ledger. */
static void balances_check(struct history *history, const struct walk *walk,
                           const struct log_record *record)
{
	const struct ledger *ledger = service_ledger(walk->service);
	if (history->touched == 0)
		return;
	history->touched = 0;
	for (uint64_t i = 0; history->balances.slots != NULL && i <= history->balances.mask; i++) {
		struct entry *entry = &history->balances.slots[i];
		if (!entry->used || !entry->a)
			continue;
		entry->a = 0;
		struct ledger_level level;
		if (history->bundle ||
		    ledger_level(ledger, history->item, (uint32_t)entry->key, &level) != SKULD_OK)
			continue;
		if (level.on_hand == entry->c)
			continue;
		char location[TEXT_CODE_SIZE], rules[TEXT_QUANTITY_SIZE], real[TEXT_QUANTITY_SIZE];
		names_code(&walk->names, NAMES_LOCATION, (uint32_t)entry->key, location);
		text_quantity(entry->c, history->scale, rules);
		text_quantity(level.on_hand, history->scale, real);
		fprintf(stderr,
		        "skuld-replay: warning: on hand of %s at %s after event %" PRIu64
		        ": the rows give %s, the ledger %s; going on from the ledger's\n",
		        history->sku, location, walk_record_last(record), rules, real);
		entry->c = level.on_hand;
		history->mismatches++;
	}
}

static void record_rows(struct history *history, const struct walk *walk,
                        const struct log_record *record)
{
	const struct log_record_header *header = record->header;
	for (uint32_t i = 0; i < header->count; i++) {
		const struct skuld_event *event = &record->events[i];
		const struct skuld_result *result = &record->results[i];
		if (event->kind == SKULD_BUNDLE_COMPONENT && event->target == history->item &&
		    result->status == SKULD_OK && event->item != history->item) {
			struct entry *bundle = map_get(&history->bundles, event->item);
			if (bundle == NULL)
				history->failed = true;
			else
				bundle->c = event->quantity;
		}
		if (is_movement(event->kind))
			movement_rows(history, &walk->names, record, i);
		else if (is_hold_kind(event->kind))
			hold_rows(history, &walk->names, record, i);
	}
	balances_check(history, walk, record);
}

/* ---- Pass 1: which item, which location --------------------------------- */

static bool code_equal(const char code[SKULD_CODE_SIZE], const char *text)
{
	char field[TEXT_CODE_SIZE];
	text_code(code, field);
	return strcmp(field, text) == 0;
}

/* The item of the SKU and the location of the code in the catalog of the
 * snapshot the replay starts from (started: the replay's walk, before its
 * first record). */
static void history_resolve_snapshot(struct history *history, const struct walk *started)
{
	char code[SKULD_CODE_SIZE] = {0};
	memcpy(code, history->sku, strlen(history->sku));
	history->item = ledger_sku_lookup(service_ledger(started->service), code, NULL);
	const struct names_map *locations = &started->names.maps[NAMES_LOCATION];
	for (uint32_t i = 0; history->by_location && locations->mask != 0 && i <= locations->mask;
	     i++) {
		const struct name *name = &locations->slots[i];
		if (name->id != 0 && strcmp(name->code, history->location_code) == 0)
			history->location = name->id;
	}
}

static int history_resolve(struct history *history, const struct walk *started)
{
	if (started != NULL)
		history_resolve_snapshot(history, started);
	static struct walk walk;
	int status =
	        walk_open(&walk, history->args->positional[0], history->args->archive, NULL, 0);
	struct log_record record;
	while (status == REPLAY_EXIT_OK && walk_next(&walk, &record) > 0) {
		for (uint32_t i = 0; i < record.header->count; i++) {
			const struct skuld_event *event = &record.events[i];
			if (record.results[i].status != SKULD_OK)
				continue;
			if (history->item == 0 &&
			    (event->kind == SKULD_ITEM_DEFINE ||
			     (event->kind == SKULD_SKU_ALIAS &&
			      !(event->flags & SKULD_EVENT_RETIRE))) &&
			    code_equal(event->code, history->sku)) {
				history->item = event->item;
				history->bundle = event->kind == SKULD_ITEM_DEFINE &&
				                  (event->flags & SKULD_EVENT_BUNDLE);
			}
			if (history->by_location && history->location == 0 &&
			    event->kind == SKULD_LOCATION_DEFINE &&
			    code_equal(event->code, history->location_code))
				history->location = event->location;
		}
	}
	if (status == REPLAY_EXIT_OK)
		status = walk.exit;
	if (status != REPLAY_EXIT_OK) {
		fprintf(stderr, "skuld-replay: %s\n", walk.fault);
	} else if (history->item == 0) {
		fprintf(stderr, "skuld-replay: SKU '%s' is not defined in the log%s\n",
		        history->sku, started != NULL ? " present or its starting snapshot" : "");
		status = REPLAY_EXIT_FAULT;
	} else if (history->by_location && history->location == 0) {
		fprintf(stderr, "skuld-replay: location '%s' is not defined in the log%s\n",
		        history->location_code,
		        started != NULL ? " present or its starting snapshot" : "");
		status = REPLAY_EXIT_FAULT;
	} else {
		const struct name *name = names_find(&walk.names, NAMES_ITEM, history->item);
		if (name == NULL && started != NULL)
			name = names_find(&started->names, NAMES_ITEM, history->item);
		history->scale = name != NULL ? name->scale : 0;
		history->bundle = name != NULL && name->bundle;
	}
	walk_close(&walk);
	return status;
}

/* ---- Starting from a snapshot ------------------------------------------------ */

static int seed_component(void *context, const void *bytes)
{
	struct history *history = context;
	const struct snapshot_component *record = bytes;
	if (record->item != history->item || record->bundle == history->item)
		return 0;
	struct entry *bundle = map_get(&history->bundles, record->bundle);
	if (bundle == NULL)
		return -ENOMEM;
	bundle->c = record->quantity;
	return 0;
}

static int seed_hold(void *context, const void *bytes)
{
	struct history *history = context;
	const struct snapshot_hold *record = bytes;
	int64_t per = record->item == history->item ? 1 : 0;
	const struct entry *bundle = map_find(&history->bundles, record->item);
	if (per == 0 && bundle != NULL)
		per = bundle->c;
	if (per == 0)
		return 0;
	struct entry *hold = map_get(&history->holds, record->id);
	if (hold == NULL)
		return -ENOMEM;
	hold->a = record->item;
	hold->b = record->location;
	hold->c = per;
	hold->d = record->remaining;
	return 0;
}

/* What the rows need from before the snapshot: the item's on-hand balances,
 * the bundles it is a component of, the open holds on either. Returns an
 * exit code. */
static int history_seed(struct history *history, const struct walk *walk)
{
	const struct ledger *ledger = service_ledger(walk->service);
	uint32_t count = ledger_stock_count(ledger);
	for (uint32_t i = 0; i < count && !history->bundle; i++) {
		uint32_t item, location;
		struct ledger_level level;
		ledger_stock_entry(ledger, i, &item, &location, &level);
		if (item != history->item ||
		    (history->by_location && location != history->location))
			continue;
		struct entry *balance = balance_of(history, location);
		if (balance == NULL)
			return REPLAY_EXIT_ERROR;
		balance->c = level.on_hand;
	}
	char reason[256] = "";
	int ret = start_part_each(history->start, SNAPSHOT_PART_COMPONENTS,
	                          sizeof(struct snapshot_component), seed_component, history,
	                          reason, sizeof(reason));
	if (ret == 0)
		ret = start_part_each(history->start, SNAPSHOT_PART_HOLDS_OPEN,
		                      sizeof(struct snapshot_hold), seed_hold, history, reason,
		                      sizeof(reason));
	if (ret == -ENOMEM) {
		fprintf(stderr, "skuld-replay: out of memory\n");
		return REPLAY_EXIT_ERROR;
	}
	if (ret != 0) {
		fprintf(stderr, "skuld-replay: snapshot %s: %s\n", history->start->path, reason);
		return REPLAY_EXIT_FAULT;
	}
	return REPLAY_EXIT_OK;
}

/* A --from or --to at or before the snapshot asks for rows the log present
 * does not hold. */
static int history_range_check(const struct history *history)
{
	const struct start_snapshot *start = history->start;
	const struct text_point *ends[2] = {&history->args->from, &history->args->to};
	for (int end = 0; end < 2 && start->used; end++) {
		const struct text_point *point = ends[end];
		bool before =
		        (point->kind == TEXT_POINT_SEQUENCE && point->value <= start->number) ||
		        (point->kind == TEXT_POINT_TIME && point->value <= start->batch_ns);
		if (!before)
			continue;
		char text[TEXT_TIME_SIZE + 16];
		if (point->kind == TEXT_POINT_SEQUENCE)
			snprintf(text, sizeof(text), "%" PRIu64, point->value);
		else
			text_time(point->value, text);
		fprintf(stderr,
		        "skuld-replay: %s %s is at or before the snapshot the replay starts from "
		        "(%s, after event %" PRIu64
		        "): the log before it was archived; give --archive DIR\n",
		        end == 0 ? "--from" : "--to", text, start->path, start->number);
		return REPLAY_EXIT_FAULT;
	}
	return REPLAY_EXIT_OK;
}

static int history_parse(struct history *history, const char *text)
{
	const char *at = strrchr(text, '@');
	size_t sku_length = at != NULL ? (size_t)(at - text) : strlen(text);
	if (sku_length == 0 || sku_length > SKULD_CODE_SIZE ||
	    (at != NULL && (strlen(at + 1) == 0 || strlen(at + 1) > SKULD_CODE_SIZE))) {
		fprintf(stderr,
		        "skuld-replay: '%s' is not SKU or SKU@LOCATION (codes are 1 to %u "
		        "characters)\n",
		        text, SKULD_CODE_SIZE);
		return REPLAY_EXIT_USAGE;
	}
	memcpy(history->sku, text, sku_length);
	history->sku[sku_length] = '\0';
	if (at != NULL) {
		history->by_location = true;
		snprintf(history->location_code, sizeof(history->location_code), "%s", at + 1);
	}
	return REPLAY_EXIT_OK;
}

static int entry_compare(const void *a, const void *b)
{
	uint64_t left = ((const struct entry *)a)->key, right = ((const struct entry *)b)->key;
	return (left > right) - (left < right);
}

/* The balances, by location id (sorts the map's slots in place: the map is
 * not used afterwards). */
static void print_footer(struct history *history, const struct walk *walk)
{
	struct map *balances = &history->balances;
	uint64_t count = 0;
	for (uint64_t i = 0; balances->slots != NULL && i <= balances->mask; i++) {
		if (balances->slots[i].used)
			balances->slots[count++] = balances->slots[i];
	}
	if (count > 0)
		qsort(balances->slots, count, sizeof(struct entry), entry_compare);
	if (history->args->json) {
		printf("],\"snapshot\":");
		if (history->start->used) {
			printf("{\"file\":");
			text_json_string(stdout, history->start->path);
			printf(",\"event\":%" PRIu64 "}", history->start->number);
		} else {
			printf("null");
		}
		printf(",\"count\":%" PRIu64 ",\"balance_mismatches\":%" PRIu64 ",\"on_hand\":[",
		       history->rows, history->mismatches);
	} else {
		printf("%" PRIu64 " movement%s; on hand at the end:", history->rows,
		       history->rows == 1 ? "" : "s");
	}
	bool first = true;
	for (uint64_t i = 0; i < count && !history->bundle; i++) {
		const struct entry *entry = &balances->slots[i];
		char location[TEXT_CODE_SIZE], quantity[TEXT_QUANTITY_SIZE];
		names_code(&walk->names, NAMES_LOCATION, (uint32_t)entry->key, location);
		text_quantity(entry->c, history->scale, quantity);
		if (history->args->json) {
			printf("%s{\"location\":", first ? "" : ",");
			text_json_string(stdout, location);
			printf(",\"on_hand\":%s}", quantity);
		} else {
			printf(" %s %s", location, quantity);
		}
		first = false;
	}
	if (history->args->json)
		printf("]}\n");
	else
		printf("%s%s\n", first ? " -" : "",
		       history->mismatches ? " (balance mismatches: see stderr)" : "");
}

int replay_history(const struct replay_args *args)
{
	static struct history history;
	static struct start_snapshot start;
	static struct walk walk;
	memset(&history, 0, sizeof(history));
	memset(&start, 0, sizeof(start));
	history.args = args;
	history.start = &start;
	int status = history_parse(&history, args->positional[1]);
	if (status != REPLAY_EXIT_OK)
		return status;
	status = walk_open(&walk, args->positional[0], args->archive, args->config, WALK_APPLY);
	if (status == REPLAY_EXIT_OK && walk_partial(&walk))
		status = start_snapshot_load(&walk, &args->to, &start);
	if (status != REPLAY_EXIT_OK) {
		fprintf(stderr, "skuld-replay: %s\n", walk.fault);
		walk_close(&walk);
		return status;
	}
	status = history_range_check(&history);
	if (status == REPLAY_EXIT_OK)
		status = history_resolve(&history, start.used ? &walk : NULL);
	if (status == REPLAY_EXIT_OK && start.used)
		status = history_seed(&history, &walk);
	if (status != REPLAY_EXIT_OK) {
		walk_close(&walk);
		free(history.bundles.slots);
		free(history.holds.slots);
		free(history.balances.slots);
		return status;
	}
	if (args->to.kind != TEXT_POINT_NONE)
		walk_stop_at(&walk, &args->to, false);
	print_header(&history);
	struct log_record record;
	while (!history.failed && walk_next(&walk, &record) > 0)
		record_rows(&history, &walk, &record);
	print_footer(&history, &walk);
	status = replay_report_end(&walk);
	if (history.failed) {
		fprintf(stderr, "skuld-replay: out of memory\n");
		status = REPLAY_EXIT_ERROR;
	}
	walk_close(&walk);
	free(history.bundles.slots);
	free(history.holds.slots);
	free(history.balances.slots);
	return status;
}
