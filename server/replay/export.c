/*
 * export.c — skuld-replay export DIR --format csv|jsonl [--from P] [--to P]
 * (docs/REPLAY.md, "export").
 *
 * Owns: one line per logged event with its logged result, for other tools.
 * Nothing is replayed: the results are the ones the log holds (the ones the
 * clients were told), and codes come from the logged definitions (names.h).
 * Quantities are integers in the item's base units, with the item's scale
 * beside them, so a spreadsheet or a database gets them exactly.
 *
 * --from / --to select events: a SEQ point by event sequence, a TIME point
 * by the record time of the event's batch; both ends are included.
 */
#include <inttypes.h>
#include <string.h>

#include "replay.h"

enum export_format {
	EXPORT_CSV = 0,
	EXPORT_JSONL = 1,
};

/* The columns, in order; the JSONL keys are the same names. */
static const char csv_header[] =
        "seq,recorded_at,recorded_ns,occurred_at,occurred_ns,client,request,source,index,kind,"
        "flags,item,sku,scale,location,location_code,target,target_code,channel,channel_code,"
        "id,quantity,reason,bucket_from,bucket_to,ttl_s,code,key,reference,status,result_flags,"
        "result_location,result_location_code,result_quantity,result_available\n";

/* Every value of one line, as text. */
struct export_line {
	uint64_t sequence;
	char recorded[TEXT_TIME_SIZE];
	uint64_t recorded_ns;
	char occurred[TEXT_TIME_SIZE]; /* "" when occurred_at is 0 */
	uint64_t occurred_ns;
	char client[TEXT_U128_SIZE];
	uint64_t request;
	const char *source;
	uint32_t index;
	const char *kind;
	char flags[TEXT_FLAGS_SIZE];
	char sku[TEXT_CODE_SIZE];
	uint8_t scale;
	char location[TEXT_CODE_SIZE];
	char target[TEXT_CODE_SIZE];
	char channel[TEXT_CODE_SIZE];
	char code[TEXT_CODE_SIZE];
	char key[TEXT_U128_SIZE];
	char reference[TEXT_U128_SIZE];
	const char *status;
	char result_flags[TEXT_FLAGS_SIZE];
	char result_location[TEXT_CODE_SIZE];
};

/* Codes of ids, or "" for id 0. */
static void code_of(const struct names *names, enum names_kind kind, uint32_t id,
                    char out[TEXT_CODE_SIZE])
{
	if (id == 0)
		out[0] = '\0';
	else
		names_code(names, kind, id, out);
}

static bool target_is_item(uint16_t kind)
{
	return kind == SKULD_BUNDLE_COMPONENT;
}

static void line_fill(struct export_line *line, const struct names *names,
                      const struct log_record *record, uint32_t index)
{
	const struct log_record_header *header = record->header;
	const struct skuld_event *event = &record->events[index];
	const struct skuld_result *result = &record->results[index];
	memset(line, 0, sizeof(*line));
	line->sequence = header->event_first + index;
	line->recorded_ns = header->timestamp_ns;
	text_time(header->timestamp_ns, line->recorded);
	line->occurred_ns = event->occurred_at;
	if (event->occurred_at != 0)
		text_time(event->occurred_at, line->occurred);
	text_u128(header->client, line->client);
	line->request = header->request;
	line->source = skuld_u128_is_zero(header->client) ? "server" : "client";
	line->index = index;
	line->kind = skuld_event_kind_name(event->kind);
	text_event_flags(event->flags, line->flags);
	code_of(names, NAMES_ITEM, event->item, line->sku);
	line->scale = names_scale(names, event->item);
	code_of(names, NAMES_LOCATION, event->location, line->location);
	code_of(names, target_is_item(event->kind) ? NAMES_ITEM : NAMES_LOCATION, event->target,
	        line->target);
	code_of(names, NAMES_CHANNEL, event->channel, line->channel);
	text_code(event->code, line->code);
	text_u128(event->key, line->key);
	text_u128(event->reference, line->reference);
	line->status = skuld_status_name(result->status);
	text_result_flags(result->flags, line->result_flags);
	code_of(names, NAMES_LOCATION, result->location, line->result_location);
}

static void print_csv(const struct export_line *line, const struct skuld_event *event,
                      const struct skuld_result *result)
{
	printf("%" PRIu64 ",%s,%" PRIu64 ",%s,%" PRIu64 ",%s,%" PRIu64 ",%s,%u,%s,%s,%u,",
	       line->sequence, line->recorded, line->recorded_ns, line->occurred, line->occurred_ns,
	       line->client, line->request, line->source, line->index, line->kind, line->flags,
	       event->item);
	text_csv_field(stdout, line->sku);
	printf(",%u,%u,", line->scale, event->location);
	text_csv_field(stdout, line->location);
	printf(",%u,", event->target);
	text_csv_field(stdout, line->target);
	printf(",%u,", event->channel);
	text_csv_field(stdout, line->channel);
	printf(",%" PRIu64 ",%" PRId64 ",%u,%u,%u,%u,", event->id, event->quantity, event->reason,
	       event->bucket_from, event->bucket_to, event->ttl_s);
	text_csv_field(stdout, line->code);
	printf(",%s,%s,%s,%s,%u,", line->key, line->reference, line->status, line->result_flags,
	       result->location);
	text_csv_field(stdout, line->result_location);
	printf(",%" PRId64 ",%" PRId64 "\n", result->quantity, result->available);
}

static void json_text(const char *key, const char *value)
{
	printf(",\"%s\":", key);
	text_json_string(stdout, value);
}

static void print_jsonl(const struct export_line *line, const struct skuld_event *event,
                        const struct skuld_result *result)
{
	printf("{\"seq\":%" PRIu64 ",\"recorded_at\":\"%s\",\"recorded_ns\":%" PRIu64,
	       line->sequence, line->recorded, line->recorded_ns);
	if (line->occurred_ns != 0)
		printf(",\"occurred_at\":\"%s\"", line->occurred);
	else
		printf(",\"occurred_at\":null");
	printf(",\"occurred_ns\":%" PRIu64 ",\"client\":\"%s\",\"request\":%" PRIu64
	       ",\"source\":\"%s\",\"index\":%u,\"kind\":\"%s\",\"flags\":\"%s\",\"item\":%u",
	       line->occurred_ns, line->client, line->request, line->source, line->index,
	       line->kind, line->flags, event->item);
	json_text("sku", line->sku);
	printf(",\"scale\":%u,\"location\":%u", line->scale, event->location);
	json_text("location_code", line->location);
	printf(",\"target\":%u", event->target);
	json_text("target_code", line->target);
	printf(",\"channel\":%u", event->channel);
	json_text("channel_code", line->channel);
	printf(",\"id\":%" PRIu64 ",\"quantity\":%" PRId64 ",\"reason\":%u,\"bucket_from\":%u,"
	       "\"bucket_to\":%u,\"ttl_s\":%u",
	       event->id, event->quantity, event->reason, event->bucket_from, event->bucket_to,
	       event->ttl_s);
	json_text("code", line->code);
	printf(",\"key\":\"%s\",\"reference\":\"%s\",\"status\":\"%s\",\"result_flags\":\"%s\","
	       "\"result_location\":%u",
	       line->key, line->reference, line->status, line->result_flags, result->location);
	json_text("result_location_code", line->result_location);
	printf(",\"result_quantity\":%" PRId64 ",\"result_available\":%" PRId64 "}\n",
	       result->quantity, result->available);
}

/* Whether the event at sequence in a record of time_ns lies in [from, to]. */
static bool selected(const struct replay_args *args, uint64_t sequence, uint64_t time_ns)
{
	const struct text_point *ends[2] = {&args->from, &args->to};
	for (int end = 0; end < 2; end++) {
		const struct text_point *point = ends[end];
		uint64_t value = point->kind == TEXT_POINT_SEQUENCE ? sequence : time_ns;
		if (point->kind == TEXT_POINT_NONE)
			continue;
		if (end == 0 ? value < point->value : value > point->value)
			return false;
	}
	return true;
}

int replay_export(const struct replay_args *args)
{
	enum export_format format;
	if (args->format != NULL && strcmp(args->format, "csv") == 0) {
		format = EXPORT_CSV;
	} else if (args->format != NULL && strcmp(args->format, "jsonl") == 0) {
		format = EXPORT_JSONL;
	} else {
		fprintf(stderr, "skuld-replay: export needs --format csv or --format jsonl\n");
		return REPLAY_EXIT_USAGE;
	}
	static struct walk walk;
	int status = walk_open(&walk, args->positional[0], args->archive, NULL, 0);
	if (status != REPLAY_EXIT_OK) {
		fprintf(stderr, "skuld-replay: %s\n", walk.fault);
		walk_close(&walk);
		return status;
	}
	if (args->to.kind != TEXT_POINT_NONE)
		walk_stop_at(&walk, &args->to, false);
	if (format == EXPORT_CSV)
		fputs(csv_header, stdout);
	struct log_record record;
	struct export_line line;
	while (walk_next(&walk, &record) > 0) {
		const struct log_record_header *header = record.header;
		for (uint32_t i = 0; i < header->count; i++) {
			if (!selected(args, header->event_first + i, header->timestamp_ns))
				continue;
			line_fill(&line, &walk.names, &record, i);
			if (format == EXPORT_CSV)
				print_csv(&line, &record.events[i], &record.results[i]);
			else
				print_jsonl(&line, &record.events[i], &record.results[i]);
		}
	}
	status = replay_report_end(&walk);
	walk_close(&walk);
	return status;
}
