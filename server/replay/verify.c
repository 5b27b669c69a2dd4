/*
 * verify.c — skuld-replay verify DIR [--head SEQ:HEX] [--replay]
 * (docs/REPLAY.md, "verify").
 *
 * Owns: the audit of a log as bytes: every segment header, write and record
 * checksum and the XXH3 chain (the reader's rules, docs/FORMAT.md), the
 * SHA-256 chain head at the end and at the end of every segment, the check
 * of a head an auditor kept (--head), snapshots against a replay, and the
 * summary.
 *
 * A --head SEQ:HEX passes when the chain equals it at a record boundary
 * where the log stood at event SEQ (one boundary, or several when records
 * of 0 events follow the one that reached SEQ). It fails when no boundary
 * at SEQ has that hash, and when the log does not reach SEQ.
 *
 * Snapshots (server/snapshot.c, DATA_DIR/snapshots next to DATA_DIR/log):
 * each is read and checked with the server's own reader (snapshot_read,
 * into a scratch service of the same capacities), its ledger state hash
 * taken; then the log is replayed from its first record, and where the
 * replay stands at a snapshot's position (the record whose checksum is the
 * position's chain value, with the same next event), ledger_hash of the
 * replay must equal the snapshot's. A snapshot that cannot be read, whose
 * position the log never reaches, or whose state differs is a fault.
 *
 * A log that no longer starts at segment 1 (retention archived the earlier
 * segments; --archive gives them back, and then the log is whole again):
 * the chain goes on from the head file kept for the start of the log
 * present (start.h), when there is one, and says which; otherwise the head
 * is unknown. A --replay starts from the snapshot kept there. Snapshots are
 * then not checked (their replay needs the log from its first record).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "snapshot.h"
#include "start.h"

struct segment_summary {
	uint64_t segment;
	uint64_t records;
	uint64_t event_first;
	uint64_t event_next;
	struct chain_head head; /* after its last record */
	bool head_known;        /* the chain was known there */
};

struct head_check {
	bool wanted;
	bool decided;
	bool matched;
	bool seen; /* a boundary at the head's sequence was reached */
	struct chain_head want;
	struct chain_head actual; /* the chain at the first boundary at want.sequence */
	uint64_t record;          /* records up to the matching boundary */
	uint64_t segment;         /* where the matching boundary's record is */
	uint64_t offset;
};

struct snapshot_check {
	uint64_t number; /* the name's: the last event covered */
	struct log_position position;
	uint64_t hash; /* ledger_hash of the snapshot's state */
	bool readable;
	bool reached;
	bool matched;
	uint64_t replay_hash;
	char problem[WALK_MESSAGE_SIZE];
};

struct verify {
	struct walk walk;
	char snapshot_dir[LOG_PATH_SIZE];
	char archive[LOG_PATH_SIZE];      /* --archive, or "" */
	struct snapshot_check *snapshots; /* ascending */
	uint32_t snapshot_count;
	char snapshots_note[WALK_MESSAGE_SIZE]; /* why they were not checked */
	struct segment_summary *segments;
	uint64_t segment_count;
	uint64_t segment_capacity;
	struct head_check head;
	struct chain_head last;       /* chain after the last record */
	bool head_started;            /* the chain goes on from a kept head */
	struct chain_head head_start; /* ... this one */
	struct log_position head_at;  /* ... kept for this position */
	char head_file[START_PATH_SIZE];
	struct start_snapshot start; /* --replay of a partial log: where it starts */
	uint32_t faults;
	char head_fault[WALK_MESSAGE_SIZE];
	char start_fault[WALK_MESSAGE_SIZE]; /* the kept head's position never came */
	double seconds;
};

/* ---- Snapshots ----------------------------------------------------------- */

/* The snapshot directory of the server layout: DATA_DIR/snapshots when the
 * log is DATA_DIR/log; none for a log directory of another name. Lists the
 * snapshots there, oldest first. Returns 0 or -errno. */
static int snapshots_find(struct verify *verify)
{
	const char *log_dir = verify->walk.log_dir;
	const char *slash = strrchr(log_dir, '/');
	const char *base = slash != NULL ? slash + 1 : log_dir;
	if (strcmp(base, "log") != 0)
		return 0;
	int parent = slash != NULL ? (int)(slash - log_dir) : 0;
	snprintf(verify->snapshot_dir, sizeof(verify->snapshot_dir), "%.*s%ssnapshots", parent,
	         log_dir, slash != NULL ? "/" : "");
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	int ret = snapshot_list(verify->snapshot_dir, &numbers, &count);
	if (ret != 0 || count == 0) {
		free(numbers);
		return ret == -ENOENT ? 0 : ret;
	}
	verify->snapshots = calloc(count, sizeof(*verify->snapshots));
	if (verify->snapshots == NULL) {
		free(numbers);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) /* the list is newest first */
		verify->snapshots[i].number = numbers[count - 1 - i];
	verify->snapshot_count = count;
	free(numbers);
	return 0;
}

/* Reads every snapshot into a scratch service: its position and state hash,
 * or why it cannot be read. The replay starts tracking discrepancies where
 * the latest of them did (a ledger restored from a version 2 snapshot began
 * there: docs/LEDGER.md section 13), so their states can match. Returns 0
 * or -ENOMEM. */
static int snapshots_load(struct verify *verify)
{
	struct service *scratch = NULL;
	uint64_t origin = 0;
	int ret = walk_service_create(&verify->walk, &scratch);
	for (uint32_t i = 0; ret == 0 && i < verify->snapshot_count; i++) {
		struct snapshot_check *check = &verify->snapshots[i];
		char name[SNAPSHOT_NAME_SIZE], path[LOG_PATH_SIZE + SNAPSHOT_NAME_SIZE];
		char reason[WALK_MESSAGE_SIZE / 2];
		snapshot_name(name, sizeof(name), check->number, ".sks");
		snprintf(path, sizeof(path), "%s/%s", verify->snapshot_dir, name);
		if (snapshot_read(scratch, path, &check->position, reason, sizeof(reason)) == 0) {
			check->readable = true;
			check->hash = ledger_hash(service_ledger(scratch));
			uint64_t from = ledger_discrepancy_origin(service_ledger(scratch));
			if (from != UINT64_MAX && from > origin)
				origin = from;
		} else {
			snprintf(check->problem, sizeof(check->problem),
			         "snapshot %.560s cannot be read: %.300s%s", path, reason,
			         strstr(reason, "capacities") != NULL
			                 ? " (give the server's configuration with --config)"
			                 : "");
		}
		ret = service_reset(scratch);
	}
	service_destroy(scratch);
	if (ret == 0 && origin > 1 && verify->walk.service != NULL)
		ledger_discrepancy_origin_set(service_ledger(verify->walk.service), origin);
	return ret;
}

/* After a replayed record: the snapshots taken at this point. */
static void snapshots_boundary(struct verify *verify, const struct log_record *record)
{
	const struct log_record_header *header = record->header;
	for (uint32_t i = 0; i < verify->snapshot_count; i++) {
		struct snapshot_check *check = &verify->snapshots[i];
		if (!check->readable || check->reached ||
		    check->position.checksum_prev != header->checksum ||
		    check->position.event_next != header->event_first + header->count)
			continue;
		check->reached = true;
		check->replay_hash = ledger_hash(service_ledger(verify->walk.service));
		check->matched = check->replay_hash == check->hash;
		if (!check->matched)
			snprintf(check->problem, sizeof(check->problem),
			         "snapshot %s/snapshot-%016" PRIx64 ".sks: state hash %016" PRIx64
			         ", the replay of the log up to event %" PRIu64
			         " gives %016" PRIx64,
			         verify->snapshot_dir, check->number, check->hash, check->number,
			         check->replay_hash);
	}
}

/* After the walk: snapshots never reached, and the fault count. */
static void snapshots_finish(struct verify *verify)
{
	for (uint32_t i = 0; i < verify->snapshot_count; i++) {
		struct snapshot_check *check = &verify->snapshots[i];
		if (check->readable && !check->reached)
			snprintf(check->problem, sizeof(check->problem),
			         "snapshot %s/snapshot-%016" PRIx64
			         ".sks: its position (after event "
			         "%" PRIu64 ", write %" PRIu64 ") %s",
			         verify->snapshot_dir, check->number,
			         check->position.event_next - 1, check->position.write_next - 1,
			         verify->walk.exit != REPLAY_EXIT_OK
			                 ? "was not reached: the log is damaged before it"
			                 : "is not in the log");
		if (!check->matched)
			verify->faults++;
	}
}

static int segment_note(struct verify *verify, const struct log_record *record)
{
	struct segment_summary *current =
	        verify->segment_count > 0 ? &verify->segments[verify->segment_count - 1] : NULL;
	if (current != NULL && current->segment == record->segment)
		return 0;
	if (current != NULL) {
		current->head = verify->last;
		current->head_known = walk_chain_known(&verify->walk);
	}
	if (verify->segment_count == verify->segment_capacity) {
		uint64_t grown = verify->segment_capacity ? verify->segment_capacity * 2 : 16;
		struct segment_summary *list =
		        realloc(verify->segments, grown * sizeof(struct segment_summary));
		if (list == NULL)
			return -ENOMEM;
		verify->segments = list;
		verify->segment_capacity = grown;
	}
	verify->segments[verify->segment_count++] = (struct segment_summary){
	        .segment = record->segment,
	        .event_first = record->header->event_first,
	};
	return 0;
}

/* The chain stands at a boundary after `records` records (record may be
 * NULL before the first): check --head there. */
static void head_boundary(struct verify *verify, const struct log_record *record)
{
	struct head_check *head = &verify->head;
	if (!head->wanted || head->decided || !walk_chain_known(&verify->walk))
		return;
	uint64_t at = record != NULL         ? walk_record_last(record)
	              : verify->head_started ? verify->head_start.sequence
	                                     : 0;
	if (record == NULL && verify->walk.records != 0)
		return;
	if (at > head->want.sequence) {
		head->decided = true;
		return;
	}
	if (at < head->want.sequence)
		return;
	struct chain_head now;
	chain_head(verify->walk.chain, &now);
	if (!head->seen)
		head->actual = now;
	head->seen = true;
	if (chain_head_equal(&now, &head->want)) {
		head->matched = head->decided = true;
		head->record = verify->walk.records;
		head->segment = record != NULL ? record->segment : 0;
		head->offset = record != NULL ? record->offset : 0;
	}
}

/* Why --head did not pass, into verify->head_fault. */
static void head_explain(struct verify *verify)
{
	const struct walk *walk = &verify->walk;
	struct head_check *head = &verify->head;
	char want[CHAIN_TEXT_SIZE], actual[CHAIN_TEXT_SIZE];
	chain_format(&head->want, want);
	if (walk->chain == NULL || (verify->head_started && walk->chain_waiting)) {
		char name[32];
		walk_segment_name(walk->segment_first, name);
		snprintf(verify->head_fault, sizeof(verify->head_fault),
		         "--head %s cannot be checked: the log starts at %s (earlier segments "
		         "archived), the chain needs every record from the first, and no head "
		         "file is kept for its start; give --archive DIR",
		         want, name);
	} else if (verify->head_started && head->want.sequence < verify->head_start.sequence) {
		snprintf(
		        verify->head_fault, sizeof(verify->head_fault),
		        "--head %s is before the head the chain starts from (%.400s, event %" PRIu64
		        "): the log before it was archived; give --archive DIR",
		        want, verify->head_file, verify->head_start.sequence);
	} else if (head->seen) {
		chain_format(&head->actual, actual);
		snprintf(verify->head_fault, sizeof(verify->head_fault),
		         "--head %s does not match: the log's chain at event %" PRIu64
		         " is %s; the log up to that event was changed",
		         want, head->want.sequence, actual);
	} else if (walk->exit != REPLAY_EXIT_OK) {
		snprintf(verify->head_fault, sizeof(verify->head_fault),
		         "--head %s was not reached: the log is damaged before event %" PRIu64,
		         want, head->want.sequence);
	} else {
		uint64_t last = walk->event_next > 0 ? walk->event_next - 1 : 0;
		snprintf(verify->head_fault, sizeof(verify->head_fault),
		         "--head %s was not reached: the log ends at event %" PRIu64
		         " (segments or records missing?)",
		         want, last);
	}
}

static int verify_walk(struct verify *verify)
{
	struct walk *walk = &verify->walk;
	struct log_record record;
	double start = replay_now_s();
	if (walk_chain_known(walk))
		chain_head(walk->chain, &verify->last);
	head_boundary(verify, NULL);
	int step;
	while ((step = walk_next(walk, &record)) > 0) {
		if (segment_note(verify, &record) != 0) {
			fprintf(stderr, "skuld-replay: out of memory\n");
			return REPLAY_EXIT_ERROR;
		}
		struct segment_summary *segment = &verify->segments[verify->segment_count - 1];
		segment->records++;
		segment->event_next = record.header->event_first + record.header->count;
		if (walk_chain_known(walk))
			chain_head(walk->chain, &verify->last);
		head_boundary(verify, &record);
		if (walk->service != NULL)
			snapshots_boundary(verify, &record);
	}
	verify->seconds = replay_now_s() - start;
	if (verify->segment_count > 0) {
		verify->segments[verify->segment_count - 1].head = verify->last;
		verify->segments[verify->segment_count - 1].head_known = walk_chain_known(walk);
	}
	if (walk->exit != REPLAY_EXIT_OK)
		verify->faults++;
	if (verify->head_started && walk->chain_waiting && walk->exit == REPLAY_EXIT_OK) {
		snprintf(verify->start_fault, sizeof(verify->start_fault),
		         "head file %.400s: its snapshot's position (write %" PRIu64
		         ", event %" PRIu64 ") is not in the log",
		         verify->head_file, verify->head_at.write_next, verify->head_at.event_next);
		verify->faults++;
	}
	if (verify->head.wanted && !verify->head.matched) {
		head_explain(verify);
		verify->faults++;
	}
	snapshots_finish(verify);
	return REPLAY_EXIT_OK;
}

/* ---- Output ------------------------------------------------------------- */

static void print_human(const struct verify *verify)
{
	const struct walk *walk = &verify->walk;
	char first[TEXT_TIME_SIZE], last[TEXT_TIME_SIZE], text[CHAIN_TEXT_SIZE];
	char name_first[32], name_last[32];
	printf("log        %s\n", walk->log_dir);
	walk_segment_name(walk->segment_first, name_first);
	walk_segment_name(walk->segment_last, name_last);
	if (walk->segment_files == 0)
		printf("segments   none (an empty log)\n");
	else
		printf("segments   %" PRIu64 " (%s .. %s)\n", walk->segment_files, name_first,
		       name_last);
	printf("records    %" PRIu64 "\n", walk->records);
	if (walk->records > 0) {
		printf("events     %" PRIu64 " (%" PRIu64 " .. %" PRIu64 ")\n", walk->events,
		       walk->event_first, walk->event_next - 1);
		text_time(walk->time_first_ns, first);
		text_time(walk->time_last_ns, last);
		printf("recorded   %s .. %s\n", first, last);
	} else {
		printf("events     0\n");
	}
	for (uint64_t i = 0; i < verify->segment_count && walk->chain != NULL; i++) {
		const struct segment_summary *segment = &verify->segments[i];
		char name[32];
		walk_segment_name(segment->segment, name);
		if (segment->head_known)
			chain_format(&segment->head, text);
		else
			snprintf(text, sizeof(text), "unknown (before the kept head)");
		printf("segment    %s  records %" PRIu64 "  events %" PRIu64 " .. %" PRIu64
		       "  head %s\n",
		       name, segment->records, segment->event_first, segment->event_next - 1, text);
	}
	if (verify->archive[0] != '\0')
		printf("archive    %s\n", verify->archive);
	if (verify->head_started) {
		chain_format(&verify->head_start, text);
		printf("head from  %s: %s, kept for the start of the log present\n",
		       verify->head_file, text);
	}
	if (verify->start.used)
		printf("replay     from snapshot %s at event %" PRIu64 "\n", verify->start.path,
		       verify->start.number);
	if (walk_chain_known(walk)) {
		chain_format(&verify->last, text);
		printf("head       %s\n", text);
	} else if (walk->chain != NULL) {
		printf("head       unknown: the kept head's position was not reached\n");
	} else {
		printf("head       unknown: the log starts at %s (earlier segments archived) and "
		       "no "
		       "head file is kept for its start; give --archive DIR\n",
		       name_first);
	}
	if (verify->head.matched) {
		char name[32];
		chain_format(&verify->head.want, text);
		walk_segment_name(verify->head.segment, name);
		if (verify->head.record == 0)
			printf("--head     %s matches (before the first record)\n", text);
		else
			printf("--head     %s matches after record %" PRIu64 " (%s offset %" PRIu64
			       ")\n",
			       text, verify->head.record, name, verify->head.offset);
	}
	if (walk->service != NULL && walk->exit == REPLAY_EXIT_OK)
		printf("replayed   every record re-applied with its logged results; state hash "
		       "%016" PRIx64 "\n",
		       ledger_hash(service_ledger(walk->service)));
	if (verify->snapshots_note[0] != '\0')
		printf("snapshots  not checked: %s\n", verify->snapshots_note);
	else
		printf("snapshots  %u in %s\n", verify->snapshot_count,
		       verify->snapshot_dir[0] ? verify->snapshot_dir
		                               : "(none: not a data directory)");
	for (uint32_t i = 0; i < verify->snapshot_count; i++) {
		const struct snapshot_check *check = &verify->snapshots[i];
		if (check->matched)
			printf("snapshot   snapshot-%016" PRIx64 ".sks  after event %" PRIu64
			       "  state hash %016" PRIx64 " equals the replay's\n",
			       check->number, check->number, check->hash);
		else
			printf("fault      %s\n", check->problem);
	}
	if (walk->torn)
		printf("warning    %s\n", walk->warning);
	if (walk->exit != REPLAY_EXIT_OK)
		printf("fault      %s\n", walk->fault);
	if (verify->head.wanted && !verify->head.matched)
		printf("fault      %s\n", verify->head_fault);
	if (verify->start_fault[0] != '\0')
		printf("fault      %s\n", verify->start_fault);
	double rate = verify->seconds > 0 ? (double)walk->events / verify->seconds : 0;
	printf("%-10s %u fault%s; read in %.3f s (%.2f M events/s)\n",
	       verify->faults ? "FAILED" : "OK", verify->faults, verify->faults == 1 ? "" : "s",
	       verify->seconds, rate / 1e6);
}

static void json_head(const char *key, const struct chain_head *head)
{
	char text[CHAIN_TEXT_SIZE];
	chain_format(head, text);
	printf("\"%s\":\"%s\"", key, text);
}

static void print_json(const struct verify *verify)
{
	const struct walk *walk = &verify->walk;
	char time[TEXT_TIME_SIZE];
	printf("{\"log\":");
	text_json_string(stdout, walk->log_dir);
	printf(",\"segments\":%" PRIu64 ",\"segment_first\":%" PRIu64 ",\"segment_last\":%" PRIu64
	       ",\"records\":%" PRIu64 ",\"events\":%" PRIu64,
	       walk->segment_files, walk->segment_first, walk->segment_last, walk->records,
	       walk->events);
	if (walk->records > 0) {
		printf(",\"event_first\":%" PRIu64 ",\"event_last\":%" PRIu64, walk->event_first,
		       walk->event_next - 1);
		text_time(walk->time_first_ns, time);
		printf(",\"recorded_first\":\"%s\",\"recorded_first_ns\":%" PRIu64, time,
		       walk->time_first_ns);
		text_time(walk->time_last_ns, time);
		printf(",\"recorded_last\":\"%s\",\"recorded_last_ns\":%" PRIu64, time,
		       walk->time_last_ns);
	}
	printf(",\"segment_heads\":[");
	for (uint64_t i = 0; i < verify->segment_count && walk->chain != NULL; i++) {
		const struct segment_summary *segment = &verify->segments[i];
		char name[32];
		walk_segment_name(segment->segment, name);
		printf("%s{\"file\":\"%s\",\"records\":%" PRIu64 ",\"event_first\":%" PRIu64
		       ",\"event_last\":%" PRIu64 ",",
		       i ? "," : "", name, segment->records, segment->event_first,
		       segment->event_next - 1);
		if (segment->head_known)
			json_head("head", &segment->head);
		else
			printf("\"head\":null");
		printf("}");
	}
	printf("],");
	if (walk_chain_known(walk))
		json_head("head", &verify->last);
	else
		printf("\"head\":null");
	printf(",\"archive\":");
	if (verify->archive[0] != '\0')
		text_json_string(stdout, verify->archive);
	else
		printf("null");
	printf(",\"head_start\":");
	if (verify->head_started) {
		printf("{\"file\":");
		text_json_string(stdout, verify->head_file);
		printf(",");
		json_head("head", &verify->head_start);
		printf("}");
	} else {
		printf("null");
	}
	printf(",\"replay_start\":");
	if (verify->start.used) {
		printf("{\"file\":");
		text_json_string(stdout, verify->start.path);
		printf(",\"event\":%" PRIu64 "}", verify->start.number);
	} else {
		printf("null");
	}
	if (verify->head.wanted) {
		printf(",\"head_check\":{");
		json_head("head", &verify->head.want);
		printf(",\"matched\":%s", verify->head.matched ? "true" : "false");
		if (verify->head.matched) {
			char name[32];
			walk_segment_name(verify->head.segment, name);
			printf(",\"record\":%" PRIu64 ",\"file\":\"%s\",\"offset\":%" PRIu64,
			       verify->head.record, verify->head.record ? name : "",
			       verify->head.offset);
		}
		printf("}");
	}
	printf(",\"replayed\":%s", walk->service != NULL ? "true" : "false");
	if (walk->service != NULL && walk->exit == REPLAY_EXIT_OK)
		printf(",\"state_hash\":\"%016" PRIx64 "\"",
		       ledger_hash(service_ledger(walk->service)));
	printf(",\"snapshots\":[");
	for (uint32_t i = 0; i < verify->snapshot_count; i++) {
		const struct snapshot_check *check = &verify->snapshots[i];
		printf("%s{\"file\":\"snapshot-%016" PRIx64 ".sks\",\"event\":%" PRIu64
		       ",\"matched\":%s",
		       i ? "," : "", check->number, check->number,
		       check->matched ? "true" : "false");
		if (check->readable)
			printf(",\"state_hash\":\"%016" PRIx64 "\"", check->hash);
		printf("}");
	}
	printf("],\"snapshots_note\":");
	text_json_string(stdout, verify->snapshots_note);
	printf(",\"warnings\":[");
	if (walk->torn)
		text_json_string(stdout, walk->warning);
	printf("],\"faults\":[");
	if (walk->exit != REPLAY_EXIT_OK)
		text_json_string(stdout, walk->fault);
	bool comma = walk->exit != REPLAY_EXIT_OK;
	if (verify->head.wanted && !verify->head.matched) {
		if (comma)
			printf(",");
		text_json_string(stdout, verify->head_fault);
		comma = true;
	}
	for (uint32_t i = 0; i < verify->snapshot_count; i++) {
		if (verify->snapshots[i].matched)
			continue;
		if (comma)
			printf(",");
		text_json_string(stdout, verify->snapshots[i].problem);
		comma = true;
	}
	if (verify->start_fault[0] != '\0') {
		if (comma)
			printf(",");
		text_json_string(stdout, verify->start_fault);
	}
	double rate = verify->seconds > 0 ? (double)walk->events / verify->seconds : 0;
	printf("],\"ok\":%s,\"seconds\":%.6f,\"events_per_second\":%.0f}\n",
	       verify->faults ? "false" : "true", verify->seconds, rate);
}

/* A log that does not start at segment 1: the chain from a kept head, a
 * --replay from the snapshot at its start; snapshots not checked. */
static int verify_partial(struct verify *verify, const struct replay_args *args)
{
	struct walk *walk = &verify->walk;
	if (verify->snapshot_count > 0)
		snprintf(verify->snapshots_note, sizeof(verify->snapshots_note),
		         "the log starts at segment %" PRIu64 " (earlier segments archived); "
		         "a replay that checks them needs every record from the first (give "
		         "--archive DIR)",
		         walk->segment_first);
	verify->snapshot_count = 0;
	if (start_head_find(walk, &verify->head_start, &verify->head_at, verify->head_file) == 1) {
		int status = walk_chain_start(walk, &verify->head_start, &verify->head_at);
		if (status != REPLAY_EXIT_OK)
			return status;
		verify->head_started = true;
	}
	if (args->replay)
		return start_snapshot_load(walk, &(struct text_point){0}, &verify->start);
	return REPLAY_EXIT_OK;
}

int replay_verify(const struct replay_args *args)
{
	static struct verify verify;
	memset(&verify, 0, sizeof(verify));
	if (args->head != NULL) {
		if (chain_parse(args->head, &verify.head.want) != 0) {
			fprintf(stderr,
			        "skuld-replay: --head wants SEQ:HEX (an event number, ':', 64 hex "
			        "digits), not '%s'\n",
			        args->head);
			return REPLAY_EXIT_USAGE;
		}
		verify.head.wanted = true;
	}
	unsigned flags = WALK_CHAIN | (args->replay ? WALK_APPLY : 0);
	if (args->archive != NULL)
		snprintf(verify.archive, sizeof(verify.archive), "%s", args->archive);
	int status =
	        walk_open(&verify.walk, args->positional[0], args->archive, args->config, flags);
	int ret = status == REPLAY_EXIT_OK ? snapshots_find(&verify) : 0;
	if (ret != 0) {
		fprintf(stderr, "skuld-replay: snapshots in %s: %s\n", verify.snapshot_dir,
		        strerror(-ret));
		status = REPLAY_EXIT_ERROR;
	} else if (status == REPLAY_EXIT_OK && walk_partial(&verify.walk)) {
		status = verify_partial(&verify, args);
	} else if (status == REPLAY_EXIT_OK && verify.snapshot_count > 0 && !(flags & WALK_APPLY)) {
		/* Snapshots are checked against a replay. */
		walk_close(&verify.walk);
		status = walk_open(&verify.walk, args->positional[0], args->archive, args->config,
		                   flags | WALK_APPLY);
	}
	if (status == REPLAY_EXIT_OK && snapshots_load(&verify) != 0) {
		fprintf(stderr, "skuld-replay: out of memory\n");
		status = REPLAY_EXIT_ERROR;
	}
	if (status != REPLAY_EXIT_OK) {
		if (verify.walk.fault[0] != '\0')
			fprintf(stderr, "skuld-replay: %s\n", verify.walk.fault);
		walk_close(&verify.walk);
		free(verify.snapshots);
		return status;
	}
	status = verify_walk(&verify);
	if (status == REPLAY_EXIT_OK) {
		if (args->json)
			print_json(&verify);
		else
			print_human(&verify);
		replay_report_end(&verify.walk);
		if (verify.head.wanted && !verify.head.matched)
			fprintf(stderr, "skuld-replay: %s\n", verify.head_fault);
		if (verify.start_fault[0] != '\0')
			fprintf(stderr, "skuld-replay: %s\n", verify.start_fault);
		for (uint32_t i = 0; i < verify.snapshot_count; i++) {
			if (!verify.snapshots[i].matched)
				fprintf(stderr, "skuld-replay: %s\n", verify.snapshots[i].problem);
		}
		if (verify.walk.exit != REPLAY_EXIT_OK)
			status = verify.walk.exit;
		else if (verify.faults > 0)
			status = REPLAY_EXIT_FAULT;
	}
	walk_close(&verify.walk);
	free(verify.segments);
	free(verify.snapshots);
	return status;
}
