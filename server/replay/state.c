/*
 * state.c — skuld-replay state DIR [--at SEQ|TIME] (docs/REPLAY.md,
 * "state").
 *
 * Owns: replaying the log up to a point and listing every counter of every
 * item-location the ledger then had, with SKU and location codes.
 *
 * The point is reached in whole records: a record is one applied batch and
 * the ledger never showed a state inside one. So the state is the one after
 * the last record that lies entirely at or before the point: for SEQ, every
 * event of it is <= SEQ; for TIME, its record time (the server's clock when
 * the batch was applied, not occurred_at) is <= TIME.
 *
 * A log that no longer starts at segment 1 (retention archived the earlier
 * segments, and no --archive gave them back) starts from the snapshot kept
 * at its start, at or before the point (start.h); the output says which.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "start.h"

struct level_row {
	uint32_t item;
	uint32_t location;
	struct ledger_level level;
};

static int level_compare(const void *a, const void *b)
{
	const struct level_row *left = a, *right = b;
	if (left->item != right->item)
		return left->item < right->item ? -1 : 1;
	return (left->location > right->location) - (left->location < right->location);
}

/* Every stock entry of the ledger, sorted by item then location. Returns
 * the rows (caller frees) or NULL when out of memory (count 0: not NULL). */
static struct level_row *levels_collect(const struct ledger *ledger, uint32_t *count)
{
	*count = ledger_stock_count(ledger);
	struct level_row *rows = calloc(*count ? *count : 1, sizeof(*rows));
	if (rows == NULL)
		return NULL;
	for (uint32_t i = 0; i < *count; i++)
		ledger_stock_entry(ledger, i, &rows[i].item, &rows[i].location, &rows[i].level);
	qsort(rows, *count, sizeof(*rows), level_compare);
	return rows;
}

struct state_position {
	uint64_t records;
	uint64_t event_last; /* 0: no event yet */
	uint64_t time_ns;    /* record time of the last record applied; 0: none */
};

void replay_point_text(const struct text_point *point, char *out, size_t size)
{
	if (point->kind == TEXT_POINT_SEQUENCE) {
		snprintf(out, size, "event %" PRIu64, point->value);
	} else if (point->kind == TEXT_POINT_TIME) {
		char time[TEXT_TIME_SIZE];
		text_time(point->value, time);
		snprintf(out, size, "%s", time);
	} else {
		snprintf(out, size, "the end of the log");
	}
}

void replay_position_note(const struct walk *walk, const struct text_point *point, char *out,
                          size_t size)
{
	out[0] = '\0';
	if (!walk->stopped) {
		if (point->kind != TEXT_POINT_NONE)
			snprintf(out, size, "the log ends before the point");
		return;
	}
	if (point->kind == TEXT_POINT_SEQUENCE && walk->stopped_first <= point->value)
		snprintf(out, size,
		         "event %" PRIu64 " is inside the record of events %" PRIu64 " .. %" PRIu64
		         ", applied as one batch: the state before it",
		         point->value, walk->stopped_first, walk->stopped_last);
}

static void print_human(const struct names *names, const struct level_row *rows, uint32_t count,
                        const struct state_position *position, const char *point, const char *note,
                        const struct start_snapshot *start)
{
	char time[TEXT_TIME_SIZE] = "-";
	if (position->records > 0 || start->used)
		text_time(position->time_ns, time);
	printf("state at %s: after event %" PRIu64 " (%" PRIu64 " records%s, last recorded %s)\n",
	       point, position->event_last, position->records,
	       start->used ? " after the snapshot" : "", time);
	if (start->used)
		printf("started from snapshot %s at event %" PRIu64
		       " (the log before it was archived)\n",
		       start->path, start->number);
	if (note[0] != '\0')
		printf("note: %s\n", note);
	int sku_width = 3, location_width = 8;
	for (uint32_t i = 0; i < count; i++) {
		char code[TEXT_CODE_SIZE];
		names_code(names, NAMES_ITEM, rows[i].item, code);
		if ((int)strlen(code) > sku_width)
			sku_width = (int)strlen(code);
		names_code(names, NAMES_LOCATION, rows[i].location, code);
		if ((int)strlen(code) > location_width)
			location_width = (int)strlen(code);
	}
	printf("%-*s  %-*s %14s %14s %14s %14s %14s %14s\n", sku_width, "SKU", location_width,
	       "LOCATION", "ON_HAND", "RESERVED", "COMMITTED", "UNSELLABLE", "INCOMING",
	       "AVAILABLE");
	for (uint32_t i = 0; i < count; i++) {
		const struct ledger_level *level = &rows[i].level;
		uint8_t scale = names_scale(names, rows[i].item);
		char sku[TEXT_CODE_SIZE], location[TEXT_CODE_SIZE];
		char figures[6][TEXT_QUANTITY_SIZE];
		names_code(names, NAMES_ITEM, rows[i].item, sku);
		names_code(names, NAMES_LOCATION, rows[i].location, location);
		text_quantity(level->on_hand, scale, figures[0]);
		text_quantity(level->reserved, scale, figures[1]);
		text_quantity(level->committed, scale, figures[2]);
		text_quantity(level->damaged + level->quarantine, scale, figures[3]);
		text_quantity(level->incoming, scale, figures[4]);
		text_quantity(level->available, scale, figures[5]);
		printf("%-*s  %-*s %14s %14s %14s %14s %14s %14s\n", sku_width, sku, location_width,
		       location, figures[0], figures[1], figures[2], figures[3], figures[4],
		       figures[5]);
	}
	printf("%u item-location%s\n", count, count == 1 ? "" : "s");
}

static void print_json(const struct names *names, const struct level_row *rows, uint32_t count,
                       const struct state_position *position, const struct text_point *point,
                       const char *note, const struct start_snapshot *start)
{
	printf("{\"at\":{\"event\":%" PRIu64 ",\"records\":%" PRIu64, position->event_last,
	       position->records);
	if (position->records > 0 || start->used) {
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
	if (start->used) {
		printf("{\"file\":");
		text_json_string(stdout, start->path);
		printf(",\"event\":%" PRIu64 "}", start->number);
	} else {
		printf("null");
	}
	printf(",\"levels\":[");
	for (uint32_t i = 0; i < count; i++) {
		const struct ledger_level *level = &rows[i].level;
		uint8_t scale = names_scale(names, rows[i].item);
		char code[TEXT_CODE_SIZE];
		char figures[8][TEXT_QUANTITY_SIZE];
		text_quantity(level->on_hand, scale, figures[0]);
		text_quantity(level->reserved, scale, figures[1]);
		text_quantity(level->committed, scale, figures[2]);
		text_quantity(level->damaged + level->quarantine, scale, figures[3]);
		text_quantity(level->incoming, scale, figures[4]);
		text_quantity(level->available, scale, figures[5]);
		text_quantity(level->damaged, scale, figures[6]);
		text_quantity(level->quarantine, scale, figures[7]);
		printf("%s{\"sku\":", i ? "," : "");
		names_code(names, NAMES_ITEM, rows[i].item, code);
		text_json_string(stdout, code);
		printf(",\"item\":%u,\"location\":", rows[i].item);
		names_code(names, NAMES_LOCATION, rows[i].location, code);
		text_json_string(stdout, code);
		printf(",\"location_id\":%u,\"scale\":%u,\"on_hand\":%s,\"reserved\":%s,"
		       "\"committed\":%s,\"unsellable\":%s,\"incoming\":%s,\"available\":%s,"
		       "\"damaged\":%s,\"quarantine\":%s}",
		       rows[i].location, scale, figures[0], figures[1], figures[2], figures[3],
		       figures[4], figures[5], figures[6], figures[7]);
	}
	printf("]}\n");
}

int replay_state(const struct replay_args *args)
{
	static struct walk walk;
	static struct start_snapshot start;
	memset(&start, 0, sizeof(start));
	int status = walk_open(&walk, args->positional[0], args->archive, args->config, WALK_APPLY);
	if (status == REPLAY_EXIT_OK && walk_partial(&walk))
		status = start_snapshot_load(&walk, &args->at, &start);
	if (status != REPLAY_EXIT_OK) {
		fprintf(stderr, "skuld-replay: %s\n", walk.fault);
		walk_close(&walk);
		return status;
	}
	if (args->at.kind != TEXT_POINT_NONE)
		walk_stop_at(&walk, &args->at, true);
	struct state_position position = {0};
	if (start.used) {
		position.event_last = start.number;
		position.time_ns = start.batch_ns;
	}
	struct log_record record;
	while (walk_next(&walk, &record) > 0) {
		position.records++;
		position.time_ns = record.header->timestamp_ns;
		if (walk_record_last(&record) > position.event_last)
			position.event_last = walk_record_last(&record);
	}
	status = replay_report_end(&walk);
	if (status == REPLAY_EXIT_OK) {
		uint32_t count = 0;
		struct level_row *rows = levels_collect(service_ledger(walk.service), &count);
		if (rows == NULL) {
			fprintf(stderr, "skuld-replay: out of memory\n");
			status = REPLAY_EXIT_ERROR;
		} else {
			char point[64], note[256];
			replay_point_text(&args->at, point, sizeof(point));
			replay_position_note(&walk, &args->at, note, sizeof(note));
			if (args->json)
				print_json(&walk.names, rows, count, &position, &args->at, note,
				           &start);
			else
				print_human(&walk.names, rows, count, &position, point, note,
				            &start);
		}
		free(rows);
	}
	walk_close(&walk);
	return status;
}
