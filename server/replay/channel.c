/*
 * channel.c — skuld-replay channel-view DIR --channel NAME [--at SEQ|TIME]
 * [--item SKU] (docs/REPLAY.md, "channel-view").
 *
 * Owns: what a sales channel was told at a past point, and why. The log is
 * replayed to the point as `state` does (whole records), then the ledger's
 * own push state is read (ledger_push_next, ledger_push_item,
 * ledger_channel_push): for every item mapped on the channel, its listing,
 * the quantity the ledger wanted the channel to show, what the channel had
 * accepted (quantity and version), dirty since when, parked, its open
 * exception; and the channel's figures.
 *
 * With --item, also the events that produced the item's state: every push
 * event of (channel, item) (CHANNEL_LISTING, PUSH_ACK, PUSH_EXCEPTION, also
 * refused ones), and every applied event after which the item's view
 * changed (its push version — the ledger bumps it for every change that may
 * move the channel quantity —, the wanted quantity, accepted, state or
 * exception), each with the view right after it.
 *
 * "Right after it" is exact, also inside a batch. The ledger applies a
 * record's elements (a single event, or a linked chain) one after the
 * other, so the view after element k is the view after applying the
 * record's elements 0..k. A record with at most one element that may touch
 * the item (the filter below) needs nothing more than the view after the
 * record. A record with two or more: before the walk applies it, the
 * ledger is copied (snapshot stream, in memory); after, the copy applies
 * the record element by element, each result is compared with the logged
 * one (the index within the request aside: an element applied alone is at
 * index 0), and the view is read after each. If they do not agree (they
 * always should), a warning says so and the rows of that record get the
 * view after the record.
 *
 * The filter (which events may touch the item's view) is wider than the
 * ledger's rules, never narrower: push events of (channel, item); the
 * channel's settings; every LOCATION_STATE; movements and hold events of the
 * item, of its components, of the bundles that contain it or one of its
 * components (at any location); BUNDLE_COMPONENT of any of those. Bundle
 * pairs are learnt from the log (and a starting snapshot). A record that
 * changes the view though no event of it passes the filter (a rule this
 * file does not know) lists all its applied events, with a warning.
 *
 * Codes, listing text and exception detail come from the disk: they are
 * copied with a bound and printed escaped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_snapshot.h"
#include "replay.h"
#include "snapshot_stream.h"
#include "start.h"

#define LISTING_TEXT_SIZE (SKULD_LISTING_SIZE + 1)
#define DETAIL_TEXT_SIZE  (SKULD_EXCEPTION_DETAIL_SIZE + 1)
#define DESCRIBE_SIZE     256u

static const char *const exception_names[] = {
        "none", "unmapped",   "unknown-listing", "inactive", "not-stocked",
        "auth", "validation", "throttling",      "mismatch",
};

static const char *exception_name(uint16_t kind)
{
	return kind < sizeof(exception_names) / sizeof(exception_names[0]) ? exception_names[kind]
	                                                                   : "unknown";
}

/* A fixed-size text field from the disk as a C string: at most size bytes,
 * cut at the first NUL, bytes outside printable ASCII as '?' (the JSON
 * output escapes what it prints anyway). */
static void field_text(const char *field, size_t size, char *out)
{
	size_t length = 0;
	while (length < size && field[length] != '\0')
		length++;
	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)field[i];
		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[length] = '\0';
}

/* ---- A set of u64 keys (never 0) ----------------------------------------- */

struct set {
	uint64_t *slots;
	uint64_t mask;
	uint64_t count;
};

static uint64_t set_home(uint64_t key, uint64_t mask)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return key & mask;
}

static bool set_has(const struct set *set, uint64_t key)
{
	if (set->slots == NULL)
		return false;
	for (uint64_t slot = set_home(key, set->mask); set->slots[slot] != 0;
	     slot = (slot + 1) & set->mask) {
		if (set->slots[slot] == key)
			return true;
	}
	return false;
}

static void set_put(struct set *set, uint64_t key)
{
	uint64_t slot = set_home(key, set->mask);
	while (set->slots[slot] != 0 && set->slots[slot] != key)
		slot = (slot + 1) & set->mask;
	if (set->slots[slot] == 0) {
		set->slots[slot] = key;
		set->count++;
	}
}

/* Returns 0 or -ENOMEM. */
static int set_add(struct set *set, uint64_t key)
{
	if (set_has(set, key))
		return 0;
	if (set->slots == NULL || (set->count + 1) * 2 > set->mask + 1) {
		uint64_t slots = set->slots == NULL ? 64 : (set->mask + 1) * 2;
		struct set grown = {.slots = calloc(slots, sizeof(uint64_t)), .mask = slots - 1};
		if (grown.slots == NULL)
			return -ENOMEM;
		for (uint64_t i = 0; set->slots != NULL && i <= set->mask; i++) {
			if (set->slots[i] != 0)
				set_put(&grown, set->slots[i]);
		}
		free(set->slots);
		*set = grown;
	}
	set_put(set, key);
	return 0;
}

/* ---- The item's view on the channel --------------------------------------- */

struct view {
	bool channel_known;           /* the channel was defined */
	bool mapped;                  /* the item had a listing in force */
	int64_t quantity;             /* what the ledger wanted the channel to show */
	struct ledger_push_info info; /* when mapped */
};

static void view_read(const struct ledger *ledger, uint32_t channel, uint32_t item,
                      struct view *out)
{
	memset(out, 0, sizeof(*out));
	out->mapped = ledger_push_item(ledger, channel, item, &out->info) == SKULD_OK;
	uint32_t status = ledger_channel_quantity(ledger, channel, item, &out->quantity);
	out->channel_known = status != SKULD_CHANNEL_UNKNOWN;
	if (status != SKULD_OK)
		out->quantity = 0;
}

static bool view_changed(const struct view *a, const struct view *b)
{
	if (a->channel_known != b->channel_known || a->mapped != b->mapped ||
	    a->quantity != b->quantity)
		return true;
	if (!a->mapped)
		return false;
	const struct ledger_push_info *x = &a->info, *y = &b->info;
	return x->version != y->version || x->accepted != y->accepted || x->shown != y->shown ||
	       x->state != y->state || x->dirty_since != y->dirty_since ||
	       x->exception != y->exception || x->reports != y->reports ||
	       x->last_seen != y->last_seen || x->listing_serial != y->listing_serial;
}

/* ---- The command's state -------------------------------------------------- */

struct row {
	uint64_t sequence;
	uint64_t recorded_ns;
	struct skuld_event event;
	struct skuld_result result;
	uint32_t hold_item; /* hold kinds: the hold's item and location (0: unknown) */
	uint32_t hold_location;
	struct view after;
};

struct channel_view {
	const struct replay_args *args;
	const struct start_snapshot *start;
	struct walk *walk;
	uint32_t channel;
	uint32_t item; /* --item, else 0 */
	uint8_t scale;
	char channel_name[TEXT_CODE_SIZE];
	char sku[TEXT_CODE_SIZE];

	/* --item: what the filter knows. */
	struct set pairs;     /* bundle << 32 | component, every pair defined */
	uint32_t *components; /* components of the item (when a bundle) */
	uint32_t component_count;
	uint32_t component_room;

	/* The record being applied (before_apply), by event index. */
	uint32_t event_room;
	bool *candidate;
	uint32_t *hold_items;
	uint32_t *hold_locations;
	struct skuld_result *results; /* the copy's results */
	bool split;                   /* saved holds the state before the record */
	uint8_t *saved;
	size_t saved_size;
	size_t saved_room;

	struct view before; /* after the previous record */
	struct row *rows;
	size_t row_count;
	size_t row_room;
	uint64_t splits;
	bool failed; /* out of memory */
};

static bool is_hold_kind(uint16_t kind)
{
	return kind == SKULD_EXTEND || kind == SKULD_COMMIT || kind == SKULD_RELEASE ||
	       kind == SKULD_REALLOCATE || kind == SKULD_EXPIRE;
}

static bool is_movement(uint16_t kind)
{
	return kind >= SKULD_RECEIVE && kind <= SKULD_INCOMING && !is_hold_kind(kind);
}

static bool is_push_kind(uint16_t kind)
{
	return kind == SKULD_CHANNEL_LISTING || kind == SKULD_PUSH_ACK ||
	       kind == SKULD_PUSH_EXCEPTION;
}

static bool applied(const struct skuld_result *result)
{
	return result->status == SKULD_OK && !(result->flags & SKULD_RESULT_REPLAYED);
}

static bool push_event_of(const struct channel_view *view, const struct skuld_event *event)
{
	return is_push_kind(event->kind) && event->channel == view->channel &&
	       event->item == view->item;
}

static uint64_t pair_key(uint32_t bundle, uint32_t component)
{
	return (uint64_t)bundle << 32 | component;
}

/* Whether a stock change of item x may move the item's channel quantity. */
static bool related(const struct channel_view *view, uint32_t x)
{
	if (x == 0)
		return false;
	if (x == view->item || set_has(&view->pairs, pair_key(view->item, x)) ||
	    set_has(&view->pairs, pair_key(x, view->item)))
		return true;
	for (uint32_t i = 0; i < view->component_count; i++) {
		if (set_has(&view->pairs, pair_key(x, view->components[i])))
			return true;
	}
	return false;
}

static bool candidate_of(const struct channel_view *view, const struct skuld_event *event,
                         uint32_t hold_item)
{
	switch (event->kind) {
	case SKULD_CHANNEL_LISTING:
	case SKULD_PUSH_ACK:
	case SKULD_PUSH_EXCEPTION:
		return push_event_of(view, event);
	case SKULD_CHANNEL_DEFINE:
	case SKULD_CHANNEL_POOL:
	case SKULD_CHANNEL_BUFFER:
	case SKULD_CHANNEL_CAP:
	case SKULD_CHANNEL_MIN:
		return event->channel == view->channel;
	case SKULD_LOCATION_STATE:
		return true;
	case SKULD_BUNDLE_COMPONENT:
		return related(view, event->item) || related(view, event->target);
	default:
		if (is_hold_kind(event->kind))
			return related(view, hold_item);
		return is_movement(event->kind) && related(view, event->item);
	}
}

/* Notes a bundle pair defined in the log or a snapshot. Returns 0 or
 * -ENOMEM. */
static int pair_note(struct channel_view *view, uint32_t bundle, uint32_t component)
{
	if (set_has(&view->pairs, pair_key(bundle, component)))
		return 0;
	if (set_add(&view->pairs, pair_key(bundle, component)) != 0)
		return -ENOMEM;
	if (bundle != view->item)
		return 0;
	if (view->component_count == view->component_room) {
		uint32_t room = view->component_room ? view->component_room * 2 : 16;
		uint32_t *grown = realloc(view->components, room * sizeof(uint32_t));
		if (grown == NULL)
			return -ENOMEM;
		view->components = grown;
		view->component_room = room;
	}
	view->components[view->component_count++] = component;
	return 0;
}

static bool event_room(struct channel_view *view, uint32_t count)
{
	if (count <= view->event_room)
		return true;
	uint32_t room = count < 64 ? 64 : count;
	free(view->candidate);
	free(view->hold_items);
	free(view->hold_locations);
	free(view->results);
	view->candidate = calloc(room, sizeof(bool));
	view->hold_items = calloc(room, sizeof(uint32_t));
	view->hold_locations = calloc(room, sizeof(uint32_t));
	view->results = calloc(room, sizeof(struct skuld_result));
	view->event_room = room;
	if (view->candidate != NULL && view->hold_items != NULL && view->hold_locations != NULL &&
	    view->results != NULL)
		return true;
	view->event_room = 0;
	return false;
}

/* ---- The ledger copied in memory ------------------------------------------ */

static int saved_write(void *context, const void *bytes, size_t size)
{
	struct channel_view *view = context;
	if (view->saved_room - view->saved_size < size) {
		size_t room = view->saved_room ? view->saved_room : 1u << 20;
		while (room - view->saved_size < size)
			room *= 2;
		uint8_t *grown = realloc(view->saved, room);
		if (grown == NULL)
			return -ENOMEM;
		view->saved = grown;
		view->saved_room = room;
	}
	memcpy(view->saved + view->saved_size, bytes, size);
	view->saved_size += size;
	return 0;
}

struct saved_reader {
	const uint8_t *bytes;
	size_t size;
	size_t at;
};

static int saved_read(void *context, void *bytes, size_t size)
{
	struct saved_reader *reader = context;
	if (reader->size - reader->at < size)
		return -ENODATA;
	memcpy(bytes, reader->bytes + reader->at, size);
	reader->at += size;
	return 0;
}

/* Called by the walk before it applies a record: which events may touch
 * the item, and the ledger copied when two elements or more may. */
static void before_apply(void *context, const struct log_record *record)
{
	struct channel_view *view = context;
	const struct ledger *ledger = service_ledger(view->walk->service);
	uint32_t count = record->header->count;
	view->split = false;
	if (view->failed || !event_room(view, count)) {
		view->failed = true;
		return;
	}
	uint32_t elements = 0;
	bool element = false;
	for (uint32_t i = 0; i < count; i++) {
		const struct skuld_event *event = &record->events[i];
		view->hold_items[i] = view->hold_locations[i] = 0;
		if (is_hold_kind(event->kind)) {
			struct ledger_hold_info hold;
			if (ledger_hold(ledger, event->id, &hold) == SKULD_OK) {
				view->hold_items[i] = hold.item;
				view->hold_locations[i] = hold.location;
			}
			/* A hold reserved earlier in the same record. */
			for (uint32_t j = 0; j < i && view->hold_items[i] == 0; j++) {
				if (record->events[j].kind == SKULD_RESERVE &&
				    record->events[j].id == event->id &&
				    record->results[j].status == SKULD_OK) {
					view->hold_items[i] = record->events[j].item;
					view->hold_locations[i] = record->results[j].location;
				}
			}
		}
		view->candidate[i] = candidate_of(view, event, view->hold_items[i]);
		if (event->kind == SKULD_BUNDLE_COMPONENT &&
		    record->results[i].status == SKULD_OK &&
		    pair_note(view, event->item, event->target) != 0) {
			view->failed = true;
			return;
		}
		element = element || view->candidate[i];
		if (!(event->flags & SKULD_EVENT_LINKED) || i + 1 == count) {
			elements += element;
			element = false;
		}
	}
	if (elements < 2)
		return;
	view->saved_size = 0;
	struct snapshot_sink sink = {.write = saved_write, .context = view};
	if (ledger_snapshot_save(ledger, &sink) != 0) {
		view->failed = true;
		return;
	}
	view->split = true;
}

static int row_add(struct channel_view *view, const struct log_record *record, uint32_t index,
                   const struct view *after)
{
	if (view->row_count == view->row_room) {
		size_t room = view->row_room ? view->row_room * 2 : 64;
		struct row *grown = realloc(view->rows, room * sizeof(struct row));
		if (grown == NULL) {
			view->failed = true;
			return -ENOMEM;
		}
		view->rows = grown;
		view->row_room = room;
	}
	struct row *row = &view->rows[view->row_count++];
	row->sequence = record->header->event_first + index;
	row->recorded_ns = record->header->timestamp_ns;
	row->event = record->events[index];
	row->result = record->results[index];
	row->hold_item = view->hold_items[index];
	row->hold_location = view->hold_locations[index];
	row->after = *after;
	return 0;
}

/* The rows of events first..last (one element, or a whole record), whose
 * view went from before to after. Returns how many rows were added. */
static size_t element_rows(struct channel_view *view, const struct log_record *record,
                           uint32_t first, uint32_t last, const struct view *before,
                           const struct view *after)
{
	bool changed = view_changed(before, after);
	size_t added = 0;
	for (uint32_t i = first; i <= last; i++) {
		const struct skuld_event *event = &record->events[i];
		bool listed = push_event_of(view, event) ||
		              (changed && view->candidate[i] && applied(&record->results[i]));
		if (listed && row_add(view, record, i, after) == 0)
			added++;
	}
	return added;
}

/* The record applied element by element on a copy of the ledger before it.
 * Returns 0, or -1 (rows of the record taken back) when the copy cannot be
 * made or does not give the logged results and the walk's view. */
static int split_rows(struct channel_view *view, const struct log_record *record,
                      const struct view *after)
{
	const struct ledger *original = service_ledger(view->walk->service);
	const struct log_record_header *header = record->header;
	struct ledger *copy = NULL;
	char reason[256] = "";
	size_t rows_before = view->row_count;
	int ret = ledger_create(ledger_configuration(original), &copy);
	if (ret == 0) {
		struct saved_reader reader = {.bytes = view->saved, .size = view->saved_size};
		struct snapshot_source source = {.read = saved_read, .context = &reader};
		ret = ledger_snapshot_load(copy, &source, reason, sizeof(reason));
	}
	enum ledger_source source =
	        skuld_u128_is_zero(header->client) ? LEDGER_SOURCE_SERVER : LEDGER_SOURCE_CLIENT;
	struct view before = view->before;
	uint32_t first = 0;
	for (uint32_t i = 0; ret == 0 && i < header->count; i++) {
		if ((record->events[i].flags & SKULD_EVENT_LINKED) && i + 1 < header->count)
			continue;
		ledger_sequence(copy, header->event_first + first);
		ledger_apply(copy, header->timestamp_ns, source, &record->events[first],
		             i - first + 1, &view->results[first]);
		for (uint32_t j = first; j <= i && ret == 0; j++) {
			struct skuld_result logged = record->results[j];
			logged.index = view->results[j].index;
			if (memcmp(&logged, &view->results[j], sizeof(logged)) != 0) {
				snprintf(reason, sizeof(reason),
				         "event %" PRIu64 " gives %s applied alone, %s in the log",
				         header->event_first + j,
				         skuld_status_name(view->results[j].status),
				         skuld_status_name(record->results[j].status));
				ret = -EPROTO;
			}
		}
		struct view middle;
		view_read(copy, view->channel, view->item, &middle);
		if (ret == 0)
			element_rows(view, record, first, i, &before, &middle);
		before = middle;
		first = i + 1;
	}
	if (ret == 0 && view_changed(&before, after)) {
		snprintf(reason, sizeof(reason), "the view after its last event differs");
		ret = -EPROTO;
	}
	if (copy != NULL)
		ledger_destroy(copy);
	if (ret == 0) {
		view->splits++;
		return 0;
	}
	view->row_count = rows_before;
	if (ret == -ENOMEM) {
		view->failed = true;
		return -1;
	}
	fprintf(stderr,
	        "skuld-replay: warning: the record of events %" PRIu64 " .. %" PRIu64
	        " could not be applied event by event (%s); its rows show the view after "
	        "the whole record\n",
	        header->event_first, walk_record_last(record),
	        reason[0] != '\0' ? reason : strerror(-ret));
	return -1;
}

/* After the walk applied a record. */
static void record_rows(struct channel_view *view, const struct log_record *record)
{
	if (view->failed)
		return;
	struct view after;
	view_read(service_ledger(view->walk->service), view->channel, view->item, &after);
	uint32_t count = record->header->count;
	if ((!view->split || split_rows(view, record, &after) != 0) && count > 0 && !view->failed &&
	    element_rows(view, record, 0, count - 1, &view->before, &after) == 0 &&
	    view_changed(&view->before, &after)) {
		fprintf(stderr,
		        "skuld-replay: warning: the record of events %" PRIu64 " .. %" PRIu64
		        " changed the item's view though none of its events is one known to; "
		        "listing every applied event of it\n",
		        record->header->event_first, walk_record_last(record));
		for (uint32_t i = 0; i < count; i++) {
			if (applied(&record->results[i]))
				row_add(view, record, i, &after);
		}
	}
	view->before = after;
}

/* ---- Finding the channel and the item -------------------------------------- */

static bool code_equal(const char code[SKULD_CODE_SIZE], const char *text)
{
	char field[TEXT_CODE_SIZE];
	text_code(code, field);
	return strcmp(field, text) == 0;
}

static uint32_t channel_in_names(const struct names *names, const char *name)
{
	const struct names_map *channels = &names->maps[NAMES_CHANNEL];
	for (uint32_t i = 0; channels->slots != NULL && i <= channels->mask; i++) {
		if (channels->slots[i].id != 0 && strcmp(channels->slots[i].code, name) == 0)
			return channels->slots[i].id;
	}
	return 0;
}

/* The channel's id and the item's (any SKU it ever had) from the whole log
 * (read, not replayed) and the snapshot the replay starts from (started:
 * the replay's walk before its first record, or NULL). Returns an exit
 * code. */
static int resolve(struct channel_view *view, const struct walk *started)
{
	const char *where = started != NULL ? " present or its starting snapshot" : "";
	if (started != NULL) {
		view->channel = channel_in_names(&started->names, view->channel_name);
		if (view->item == 0 && view->sku[0] != '\0') {
			char code[SKULD_CODE_SIZE] = {0};
			memcpy(code, view->sku, strlen(view->sku));
			view->item =
			        ledger_sku_lookup(service_ledger(started->service), code, NULL);
		}
	}
	static struct walk walk;
	int status = walk_open(&walk, view->args->positional[0], view->args->archive, NULL, 0);
	struct log_record record;
	while (status == REPLAY_EXIT_OK && walk_next(&walk, &record) > 0) {
		for (uint32_t i = 0; i < record.header->count; i++) {
			const struct skuld_event *event = &record.events[i];
			if (record.results[i].status != SKULD_OK)
				continue;
			if (view->channel == 0 && event->kind == SKULD_CHANNEL_DEFINE &&
			    code_equal(event->code, view->channel_name))
				view->channel = event->channel;
			if (view->sku[0] != '\0' && view->item == 0 &&
			    (event->kind == SKULD_ITEM_DEFINE ||
			     (event->kind == SKULD_SKU_ALIAS &&
			      !(event->flags & SKULD_EVENT_RETIRE))) &&
			    code_equal(event->code, view->sku))
				view->item = event->item;
		}
	}
	if (status == REPLAY_EXIT_OK)
		status = walk.exit;
	if (status != REPLAY_EXIT_OK) {
		fprintf(stderr, "skuld-replay: %s\n", walk.fault);
	} else if (view->channel == 0) {
		fprintf(stderr, "skuld-replay: channel '%s' is not defined in the log%s\n",
		        view->channel_name, where);
		status = REPLAY_EXIT_FAULT;
	} else if (view->sku[0] != '\0' && view->item == 0) {
		fprintf(stderr, "skuld-replay: SKU '%s' is not defined in the log%s\n", view->sku,
		        where);
		status = REPLAY_EXIT_FAULT;
	} else if (view->item != 0) {
		const struct name *name = names_find(&walk.names, NAMES_ITEM, view->item);
		if (name == NULL && started != NULL)
			name = names_find(&started->names, NAMES_ITEM, view->item);
		view->scale = name != NULL ? name->scale : 0;
	}
	walk_close(&walk);
	return status;
}

static int seed_component(void *context, const void *bytes)
{
	const struct snapshot_component *record = bytes;
	return pair_note(context, record->bundle, record->item);
}

/* ---- Output ----------------------------------------------------------------- */

static void state_text(const struct view *view, char *out, size_t size)
{
	if (!view->mapped) {
		snprintf(out, size, "not mapped");
		return;
	}
	snprintf(out, size, "%s%s", (view->info.state & SKULD_PUSH_DIRTY) ? "dirty" : "clean",
	         (view->info.state & SKULD_PUSH_PARKED) ? ",parked" : "");
}

static void exception_text(uint16_t kind, uint32_t reports, uint64_t first, uint64_t last,
                           const char *detail_field, char *out, size_t size)
{
	if (kind == 0) {
		snprintf(out, size, "-");
		return;
	}
	char first_text[TEXT_TIME_SIZE], last_text[TEXT_TIME_SIZE], detail[DETAIL_TEXT_SIZE];
	text_time(first, first_text);
	text_time(last, last_text);
	field_text(detail_field, SKULD_EXCEPTION_DETAIL_SIZE, detail);
	snprintf(out, size, "%s, %" PRIu32 " report%s, %s .. %s: %s", exception_name(kind), reports,
	         reports == 1 ? "" : "s", first_text, last_text, detail);
}

/* "wants 11; version 7; shown 12 at version 5; dirty since T" for people. */
static void view_text(const struct view *view, uint8_t scale, char *out, size_t size)
{
	char wants[TEXT_QUANTITY_SIZE];
	text_quantity(view->quantity, scale, wants);
	if (!view->channel_known) {
		snprintf(out, size, "channel not defined");
		return;
	}
	if (!view->mapped) {
		snprintf(out, size, "wants %s; not mapped", wants);
		return;
	}
	const struct ledger_push_info *info = &view->info;
	char shown[TEXT_QUANTITY_SIZE + 32] = "shown never";
	if (info->accepted != 0) {
		char quantity[TEXT_QUANTITY_SIZE];
		text_quantity(info->shown, scale, quantity);
		snprintf(shown, sizeof(shown), "shown %s at version %" PRIu64, quantity,
		         info->accepted);
	}
	char state[TEXT_TIME_SIZE + 32] = "clean";
	if (info->state & SKULD_PUSH_DIRTY) {
		char since[TEXT_TIME_SIZE];
		text_time(info->dirty_since, since);
		snprintf(state, sizeof(state), "dirty since %s", since);
	}
	snprintf(out, size, "wants %s; version %" PRIu64 "; %s; %s%s%s%s", wants, info->version,
	         shown, state, (info->state & SKULD_PUSH_PARKED) ? "; parked" : "",
	         info->exception ? "; exception " : "",
	         info->exception ? exception_name(info->exception) : "");
}

static void json_time(const char *name, uint64_t ns)
{
	if (ns == 0) {
		printf("\"%s\":null,\"%s_ns\":0", name, name);
		return;
	}
	char text[TEXT_TIME_SIZE];
	text_time(ns, text);
	printf("\"%s\":\"%s\",\"%s_ns\":%" PRIu64, name, text, name, ns);
}

static void json_exception(uint16_t kind, uint32_t reports, uint64_t first, uint64_t last,
                           const char *detail_field)
{
	if (kind == 0) {
		printf("null");
		return;
	}
	char detail[DETAIL_TEXT_SIZE];
	field_text(detail_field, SKULD_EXCEPTION_DETAIL_SIZE, detail);
	printf("{\"kind\":\"%s\",\"code\":%u,\"reports\":%" PRIu32 ",", exception_name(kind), kind,
	       reports);
	json_time("first_seen", first);
	printf(",");
	json_time("last_seen", last);
	printf(",\"detail\":");
	text_json_string(stdout, detail);
	printf("}");
}

/* The view's fields, without braces. */
static void json_view(const struct view *view, uint8_t scale)
{
	char wants[TEXT_QUANTITY_SIZE], shown[TEXT_QUANTITY_SIZE] = "null";
	const struct ledger_push_info *info = &view->info;
	text_quantity(view->quantity, scale, wants);
	if (view->mapped && info->accepted != 0)
		text_quantity(info->shown, scale, shown);
	char state[32];
	state_text(view, state, sizeof(state));
	printf("\"mapped\":%s,\"wants\":%s,\"version\":%" PRIu64 ",\"accepted\":%" PRIu64
	       ",\"shown\":%s,\"state\":\"%s\",\"dirty\":%s,\"parked\":%s,",
	       view->mapped ? "true" : "false", wants, info->version, info->accepted, shown, state,
	       (info->state & SKULD_PUSH_DIRTY) ? "true" : "false",
	       (info->state & SKULD_PUSH_PARKED) ? "true" : "false");
	json_time("dirty_since", (info->state & SKULD_PUSH_DIRTY) ? info->dirty_since : 0);
	printf(",\"exception\":");
	json_exception(info->exception, info->reports, info->first_seen, info->last_seen,
	               info->detail);
}

/* What the event says, for people ("2 at S1", "version 5 shown 12"). */
static void event_describe(const struct channel_view *view, const struct row *row, char *out,
                           size_t size)
{
	const struct names *names = &view->walk->names;
	const struct skuld_event *event = &row->event;
	char location[TEXT_CODE_SIZE], other[TEXT_CODE_SIZE], sku[TEXT_CODE_SIZE];
	char quantity[TEXT_QUANTITY_SIZE], text[LISTING_TEXT_SIZE];
	names_code(names, NAMES_LOCATION, event->location, location);
	names_code(names, NAMES_ITEM, event->item, sku);
	text_quantity(event->quantity, names_scale(names, event->item), quantity);
	size_t used = 0;
	out[0] = '\0';
	switch (event->kind) {
	case SKULD_CHANNEL_LISTING:
		field_text(event->listing, SKULD_LISTING_SIZE, text);
		if (event->flags & SKULD_EVENT_RETIRE)
			snprintf(out, size, "unmapped");
		else
			snprintf(out, size, "listing \"%s\"", text);
		break;
	case SKULD_PUSH_ACK:
		snprintf(out, size, "version %" PRIu64 " shown %s", event->id, quantity);
		break;
	case SKULD_PUSH_EXCEPTION:
		field_text(event->code, SKULD_EXCEPTION_DETAIL_SIZE, text);
		snprintf(out, size, "version %" PRIu64 " %s: %s", event->id,
		         exception_name(event->reason), text);
		break;
	case SKULD_CHANNEL_DEFINE:
		text_quantity(event->quantity, view->scale, quantity);
		snprintf(out, size, "defined, buffer %s", quantity);
		break;
	case SKULD_CHANNEL_POOL:
		text_quantity(event->quantity, view->scale, quantity);
		if (event->flags & SKULD_EVENT_RETIRE)
			snprintf(out, size, "pool %s removed", location);
		else
			snprintf(out, size, "pool %s floor %s", location, quantity);
		break;
	case SKULD_CHANNEL_BUFFER:
		snprintf(out, size, "buffer %s of %s", quantity, sku);
		break;
	case SKULD_CHANNEL_CAP:
	case SKULD_CHANNEL_MIN:
		text_quantity(event->quantity, view->scale, quantity);
		snprintf(out, size, "%s %s", event->kind == SKULD_CHANNEL_CAP ? "cap" : "min",
		         quantity);
		break;
	case SKULD_LOCATION_STATE:
		snprintf(out, size, "%s %s", location,
		         event->reason == SKULD_LIFECYCLE_ACTIVE        ? "active"
		         : event->reason == SKULD_LIFECYCLE_NOT_SELLING ? "not-selling"
		         : event->reason == SKULD_LIFECYCLE_CLOSED      ? "closed"
		                                                        : "lifecycle ?");
		break;
	case SKULD_BUNDLE_COMPONENT:
		names_code(names, NAMES_ITEM, event->target, other);
		text_quantity(event->quantity, names_scale(names, event->target), quantity);
		snprintf(out, size, "%s holds %s of %s", sku, quantity, other);
		break;
	default:
		if (is_hold_kind(event->kind)) {
			names_code(names, NAMES_ITEM, row->hold_item, sku);
			names_code(names, NAMES_LOCATION, row->hold_location, location);
			snprintf(out, size, "hold %" PRIu64 " of %s at %s", event->id, sku,
			         location);
			if (event->kind == SKULD_REALLOCATE) {
				names_code(names, NAMES_LOCATION, event->target, other);
				used = strlen(out);
				snprintf(out + used, size - used, " to %s", other);
			}
			break;
		}
		if (event->location == 0 && row->result.location != 0)
			names_code(names, NAMES_LOCATION, row->result.location, location);
		if (event->item == view->item)
			snprintf(out, size, "%s at %s", quantity, location);
		else
			snprintf(out, size, "%s of %s at %s", quantity, sku, location);
		if (event->kind == SKULD_TRANSFER_OUT) {
			names_code(names, NAMES_LOCATION, event->target, other);
			used = strlen(out);
			snprintf(out + used, size - used, " to %s", other);
		}
		if (event->kind == SKULD_RESERVE) {
			used = strlen(out);
			snprintf(out + used, size - used, ", hold %" PRIu64, event->id);
		}
		break;
	}
	if (!applied(&row->result)) {
		used = strlen(out);
		snprintf(out + used, size - used, " [%s%s]", skuld_status_name(row->result.status),
		         (row->result.flags & SKULD_RESULT_REPLAYED) ? " REPLAYED" : "");
	}
}

struct position {
	uint64_t records;
	uint64_t event_last;
	uint64_t time_ns;
};

static void print_human_head(const struct channel_view *view, const struct position *position,
                             const struct ledger_channel_push_info *channel)
{
	char point[64], note[256], time[TEXT_TIME_SIZE] = "-";
	replay_point_text(&view->args->at, point, sizeof(point));
	replay_position_note(view->walk, &view->args->at, note, sizeof(note));
	if (position->records > 0 || view->start->used)
		text_time(position->time_ns, time);
	printf("channel %s at %s: after event %" PRIu64 " (%" PRIu64 " records%s, last recorded "
	       "%s)\n",
	       view->channel_name, point, position->event_last, position->records,
	       view->start->used ? " after the snapshot" : "", time);
	if (view->start->used)
		printf("started from snapshot %s at event %" PRIu64
		       " (the log before it was archived)\n",
		       view->start->path, view->start->number);
	if (note[0] != '\0')
		printf("note: %s\n", note);
	char last_ack[TEXT_TIME_SIZE] = "-", oldest[TEXT_TIME_SIZE] = "-";
	char exception[DESCRIBE_SIZE];
	if (channel->last_ack != 0)
		text_time(channel->last_ack, last_ack);
	if (channel->oldest_dirty != 0)
		text_time(channel->oldest_dirty, oldest);
	exception_text(channel->exception, channel->reports, channel->first_seen,
	               channel->last_seen, channel->detail, exception, sizeof(exception));
	printf("channel %s (channel %u): %u mapped, %u dirty (oldest since %s), %u parked, "
	       "%" PRIu64 " pushes acknowledged (last %s); channel exception: %s\n",
	       view->channel_name, view->channel, channel->mapped, channel->dirty, oldest,
	       channel->parked, channel->acks, last_ack, exception);
}

static int listing_width_of(const struct view *states, uint32_t count)
{
	int width = 7;
	for (uint32_t i = 0; i < count; i++) {
		char listing[LISTING_TEXT_SIZE];
		field_text(states[i].info.listing, SKULD_LISTING_SIZE, listing);
		if ((int)strlen(listing) > width)
			width = (int)strlen(listing);
	}
	return width;
}

static void print_human(const struct channel_view *view, const struct position *position,
                        const struct ledger_channel_push_info *channel, const struct view *states,
                        uint32_t count)
{
	print_human_head(view, position, channel);
	int sku_width = 3, listing_width = listing_width_of(states, count);
	for (uint32_t i = 0; i < count; i++) {
		char sku[TEXT_CODE_SIZE];
		names_code(&view->walk->names, NAMES_ITEM, states[i].info.item, sku);
		if ((int)strlen(sku) > sku_width)
			sku_width = (int)strlen(sku);
	}
	printf("%-*s  %-*s %12s %12s %10s %10s  %-12s %-30s %s\n", sku_width, "SKU", listing_width,
	       "LISTING", "WANTS", "SHOWN", "ACCEPTED", "VERSION", "STATE", "DIRTY_SINCE",
	       "EXCEPTION");
	for (uint32_t i = 0; i < count; i++) {
		char line_version[24];
		snprintf(line_version, sizeof(line_version), "%" PRIu64, states[i].info.version);
		const struct ledger_push_info *info = &states[i].info;
		char sku[TEXT_CODE_SIZE], listing[LISTING_TEXT_SIZE], wants[TEXT_QUANTITY_SIZE];
		char shown[TEXT_QUANTITY_SIZE] = "never", accepted[24] = "-";
		char since[TEXT_TIME_SIZE] = "-", status[32], exception[DESCRIBE_SIZE];
		names_code(&view->walk->names, NAMES_ITEM, info->item, sku);
		field_text(info->listing, SKULD_LISTING_SIZE, listing);
		text_quantity(states[i].quantity, info->scale, wants);
		if (info->accepted != 0) {
			text_quantity(info->shown, info->scale, shown);
			snprintf(accepted, sizeof(accepted), "%" PRIu64, info->accepted);
		}
		if (info->state & SKULD_PUSH_DIRTY)
			text_time(info->dirty_since, since);
		state_text(&states[i], status, sizeof(status));
		exception_text(info->exception, info->reports, info->first_seen, info->last_seen,
		               info->detail, exception, sizeof(exception));
		printf("%-*s  %-*s %12s %12s %10s %10s  %-12s %-30s %s\n", sku_width, sku,
		       listing_width, listing, wants, shown, accepted, line_version, status, since,
		       exception);
	}
	printf("%u item%s mapped\n", count, count == 1 ? "" : "s");
	if (view->item == 0)
		return;
	char state[DESCRIBE_SIZE];
	view_text(&states[0], view->scale, state, sizeof(state));
	printf("%s on %s: %s\n", view->sku, view->channel_name, state);
	printf("events that produced it, each with the view right after it:\n");
	printf("%8s  %-30s %-16s %-40s %s\n", "SEQ", "RECORDED", "EVENT", "DETAIL", "AFTER");
	for (size_t i = 0; i < view->row_count; i++) {
		const struct row *row = &view->rows[i];
		char recorded[TEXT_TIME_SIZE], describe[DESCRIBE_SIZE], after[DESCRIBE_SIZE];
		text_time(row->recorded_ns, recorded);
		event_describe(view, row, describe, sizeof(describe));
		view_text(&row->after, view->scale, after, sizeof(after));
		printf("%8" PRIu64 "  %-30s %-16s %-40s -> %s\n", row->sequence, recorded,
		       skuld_event_kind_name(row->event.kind), describe, after);
	}
	printf("%zu event%s\n", view->row_count, view->row_count == 1 ? "" : "s");
}

static void print_json(const struct channel_view *view, const struct position *position,
                       const struct ledger_channel_push_info *channel, const struct view *states,
                       uint32_t count)
{
	const struct text_point *point = &view->args->at;
	char note[256];
	replay_position_note(view->walk, point, note, sizeof(note));
	printf("{\"channel\":");
	text_json_string(stdout, view->channel_name);
	printf(",\"channel_id\":%u,\"at\":{\"event\":%" PRIu64 ",\"records\":%" PRIu64,
	       view->channel, position->event_last, position->records);
	if (position->records > 0 || view->start->used) {
		char time[TEXT_TIME_SIZE];
		text_time(position->time_ns, time);
		printf(",\"recorded\":\"%s\",\"recorded_ns\":%" PRIu64, time, position->time_ns);
	}
	if (point->kind == TEXT_POINT_SEQUENCE)
		printf(",\"point_event\":%" PRIu64, point->value);
	else if (point->kind == TEXT_POINT_TIME)
		printf(",\"point_ns\":%" PRIu64, point->value);
	printf(",\"note\":");
	text_json_string(stdout, note);
	printf("},\"snapshot\":");
	if (view->start->used) {
		printf("{\"file\":");
		text_json_string(stdout, view->start->path);
		printf(",\"event\":%" PRIu64 "}", view->start->number);
	} else {
		printf("null");
	}
	printf(",\"summary\":{\"mapped\":%u,\"dirty\":%u,\"parked\":%u,\"acks\":%" PRIu64 ",",
	       channel->mapped, channel->dirty, channel->parked, channel->acks);
	json_time("last_ack", channel->last_ack);
	printf(",");
	json_time("oldest_dirty", channel->oldest_dirty);
	printf(",\"exception\":");
	json_exception(channel->exception, channel->reports, channel->first_seen,
	               channel->last_seen, channel->detail);
	printf("},\"items\":[");
	for (uint32_t i = 0; i < count; i++) {
		const struct ledger_push_info *info = &states[i].info;
		char sku[TEXT_CODE_SIZE], listing[LISTING_TEXT_SIZE];
		names_code(&view->walk->names, NAMES_ITEM, info->item, sku);
		field_text(info->listing, SKULD_LISTING_SIZE, listing);
		printf("%s{\"sku\":", i ? "," : "");
		text_json_string(stdout, sku);
		printf(",\"item\":%u,\"scale\":%u,\"listing\":", info->item, info->scale);
		text_json_string(stdout, listing);
		printf(",\"listing_serial\":%u,", info->listing_serial);
		json_view(&states[i], info->scale);
		printf("}");
	}
	printf("]");
	if (view->item != 0) {
		printf(",\"events\":[");
		for (size_t i = 0; i < view->row_count; i++) {
			const struct row *row = &view->rows[i];
			char recorded[TEXT_TIME_SIZE], describe[DESCRIBE_SIZE],
			        flags[TEXT_FLAGS_SIZE];
			text_time(row->recorded_ns, recorded);
			event_describe(view, row, describe, sizeof(describe));
			text_result_flags(row->result.flags, flags);
			printf("%s{\"seq\":%" PRIu64
			       ",\"recorded_at\":\"%s\",\"recorded_ns\":%" PRIu64
			       ",\"kind\":\"%s\",\"status\":\"%s\",\"result_flags\":\"%s\","
			       "\"detail\":",
			       i ? "," : "", row->sequence, recorded, row->recorded_ns,
			       skuld_event_kind_name(row->event.kind),
			       skuld_status_name(row->result.status), flags);
			text_json_string(stdout, describe);
			printf(",\"after\":{");
			json_view(&row->after, view->scale);
			printf("}}");
		}
		printf("],\"count\":%zu", view->row_count);
	}
	printf("}\n");
}

/* ---- The command ------------------------------------------------------------- */

static int arguments_check(struct channel_view *view, const struct replay_args *args)
{
	size_t length = strlen(args->channel);
	if (length == 0 || length > SKULD_CODE_SIZE) {
		fprintf(stderr,
		        "skuld-replay: --channel wants a channel name of 1 to %u characters\n",
		        SKULD_CODE_SIZE);
		return REPLAY_EXIT_USAGE;
	}
	snprintf(view->channel_name, sizeof(view->channel_name), "%s", args->channel);
	if (args->item != NULL) {
		length = strlen(args->item);
		if (length == 0 || length > SKULD_CODE_SIZE) {
			fprintf(stderr, "skuld-replay: --item wants a SKU of 1 to %u characters\n",
			        SKULD_CODE_SIZE);
			return REPLAY_EXIT_USAGE;
		}
		snprintf(view->sku, sizeof(view->sku), "%s", args->item);
	}
	return REPLAY_EXIT_OK;
}

/* Everything before the walk: the snapshot to start from, the ids, the
 * bundle pairs of the snapshot. Returns an exit code. */
static int channel_view_open(struct channel_view *view, struct walk *walk,
                             struct start_snapshot *start)
{
	const struct replay_args *args = view->args;
	int status = walk_open(walk, args->positional[0], args->archive, args->config, WALK_APPLY);
	if (status == REPLAY_EXIT_OK && walk_partial(walk))
		status = start_snapshot_load(walk, &args->at, start);
	if (status != REPLAY_EXIT_OK) {
		fprintf(stderr, "skuld-replay: %s\n", walk->fault);
		return status;
	}
	status = resolve(view, start->used ? walk : NULL);
	if (status != REPLAY_EXIT_OK || view->item == 0)
		return status;
	if (start->used) {
		char reason[256] = "";
		int ret = start_part_each(start, SNAPSHOT_PART_COMPONENTS,
		                          sizeof(struct snapshot_component), seed_component, view,
		                          reason, sizeof(reason));
		if (ret == -ENOMEM) {
			fprintf(stderr, "skuld-replay: out of memory\n");
			return REPLAY_EXIT_ERROR;
		}
		if (ret != 0) {
			fprintf(stderr, "skuld-replay: snapshot %s: %s\n", start->path, reason);
			return REPLAY_EXIT_FAULT;
		}
	}
	view_read(service_ledger(walk->service), view->channel, view->item, &view->before);
	walk->before_apply = before_apply;
	walk->before_context = view;
	return REPLAY_EXIT_OK;
}

/* After the walk: the channel and its items at the point, printed. Returns
 * an exit code. */
static int channel_view_print(struct channel_view *view, const struct position *position)
{
	const struct ledger *ledger = service_ledger(view->walk->service);
	struct ledger_channel_push_info channel;
	char point[64];
	replay_point_text(&view->args->at, point, sizeof(point));
	if (ledger_channel_push(ledger, view->channel, &channel) != SKULD_OK) {
		fprintf(stderr, "skuld-replay: channel '%s' is not defined at %s\n",
		        view->channel_name, point);
		return REPLAY_EXIT_FAULT;
	}
	uint32_t count = 0;
	if (view->item != 0) {
		count = 1;
	} else {
		for (uint32_t item = ledger_push_next(ledger, view->channel, 0, 0); item != 0;
		     item = ledger_push_next(ledger, view->channel, item, 0))
			count++;
	}
	struct view *states = calloc(count ? count : 1, sizeof(struct view));
	if (states == NULL) {
		fprintf(stderr, "skuld-replay: out of memory\n");
		return REPLAY_EXIT_ERROR;
	}
	if (view->item != 0) {
		view_read(ledger, view->channel, view->item, &states[0]);
		if (!states[0].mapped) {
			fprintf(stderr,
			        "skuld-replay: SKU '%s' is not mapped on channel '%s' at %s\n",
			        view->sku, view->channel_name, point);
			free(states);
			return REPLAY_EXIT_FAULT;
		}
	} else {
		uint32_t i = 0;
		for (uint32_t item = ledger_push_next(ledger, view->channel, 0, 0);
		     item != 0 && i < count;
		     item = ledger_push_next(ledger, view->channel, item, 0))
			view_read(ledger, view->channel, item, &states[i++]);
	}
	if (view->args->json)
		print_json(view, position, &channel, states, count);
	else
		print_human(view, position, &channel, states, count);
	free(states);
	return REPLAY_EXIT_OK;
}

static void channel_view_free(struct channel_view *view)
{
	free(view->pairs.slots);
	free(view->components);
	free(view->candidate);
	free(view->hold_items);
	free(view->hold_locations);
	free(view->results);
	free(view->saved);
	free(view->rows);
}

int replay_channel_view(const struct replay_args *args)
{
	static struct channel_view view;
	static struct start_snapshot start;
	static struct walk walk;
	memset(&view, 0, sizeof(view));
	memset(&start, 0, sizeof(start));
	view.args = args;
	view.start = &start;
	view.walk = &walk;
	int status = arguments_check(&view, args);
	if (status != REPLAY_EXIT_OK)
		return status;
	status = channel_view_open(&view, &walk, &start);
	if (status != REPLAY_EXIT_OK) {
		walk_close(&walk);
		channel_view_free(&view);
		return status;
	}
	if (args->at.kind != TEXT_POINT_NONE)
		walk_stop_at(&walk, &args->at, true);
	struct position position = {0};
	if (start.used) {
		position.event_last = start.number;
		position.time_ns = start.batch_ns;
	}
	struct log_record record;
	while (!view.failed && walk_next(&walk, &record) > 0) {
		position.records++;
		position.time_ns = record.header->timestamp_ns;
		if (walk_record_last(&record) > position.event_last)
			position.event_last = walk_record_last(&record);
		if (view.item != 0)
			record_rows(&view, &record);
	}
	if (view.failed) {
		fprintf(stderr, "skuld-replay: out of memory\n");
		status = REPLAY_EXIT_ERROR;
	} else {
		status = replay_report_end(&walk);
		if (status == REPLAY_EXIT_OK)
			status = channel_view_print(&view, &position);
	}
	walk_close(&walk);
	channel_view_free(&view);
	return status;
}
