/*
 * test_replay.c — the real skuld-replay binary on a log the real skuld
 * server wrote (started on port 0 in a temporary directory by
 * tests/server_harness.h) with known movements: verify and its chain head,
 * a flipped bit, a wrong and a right --head, a tampered record whose XXH3
 * checksums were all recomputed, state at past points with exact counters,
 * history with its running balance, export in CSV and JSON lines; the
 * committed sample log's chain head; and the chain head's text form.
 *
 * Every child is bounded: skuld-replay runs get PR_SET_PDEATHSIG and are
 * killed after REPLAY_RUN_TIMEOUT_S; the server dies with the test process
 * (server_harness.h) and is stopped on every path by server_fini.
 */
#include "command_harness.h"

#include <stdarg.h>

#include "chain.h"
#include "log.h"

#define REPLAY_BINARY        SKULD_BINARY_DIR "/server/skuld-replay"
#define REPLAY_RUN_TIMEOUT_S 120
#define SEGMENT_FIRST        "log-0000000000000001.skl"

/* The server's capacities; skuld-replay gets the same file. */
static const char *const config_text = "items_max = 64\n"
                                       "locations_max = 16\n"
                                       "stock_max = 256\n";

static struct server server;
static struct command_run run_result;
static char data_dir[128];
static char log_dir[160];

/* Runs skuld-replay with the arguments (NULL-terminated). */
static struct command_run *replay_run_argv(const char *const *argv_in)
{
	static const char *const unset[] = {"SKULD_REPLAY_TIMING", NULL};
	const char *argv[COMMAND_ARGS_MAX];
	int argc = 0;
	argv[argc++] = "skuld-replay";
	for (int i = 0; argv_in[i] != NULL && argc < COMMAND_ARGS_MAX - 1; i++)
		argv[argc++] = argv_in[i];
	argv[argc] = NULL;
	return command_run(&run_result, REPLAY_BINARY, argv, server.dir, REPLAY_RUN_TIMEOUT_S,
	                   unset);
}

/* Runs and asserts the exit status. */
static struct command_run *replay_expect(int status, const char *const *argv)
{
	struct command_run *run = replay_run_argv(argv);
	cr_assert_eq(run->status, status, "%s: exit %d, wanted %d\nstdout: %s\nstderr: %s", argv[0],
	             run->status, status, run->out, run->err);
	return run;
}

#define expect(status, ...) replay_expect(status, (const char *const[]){__VA_ARGS__, NULL})

static void contains(const char *haystack, const char *needle)
{
	cr_assert_not_null(strstr(haystack, needle), "lacks '%s' in:\n%s", needle, haystack);
}

static void stop(void)
{
	server_fini(&server);
}

TestSuite(replay, .fini = stop);

/* ---- The log: a real server, known movements ------------------------------- */

static uint64_t key_next = 1000;

static void submit(struct client *client, struct skuld_event *events, uint32_t count)
{
	struct skuld_result results[8];
	cr_assert_leq(count, 8);
	for (uint32_t i = 0; i < count; i++)
		events[i].key.lo = ++key_next;
	cr_assert_eq(client_submit(client, events, count, results, NULL), 0);
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u of request %llu: status %u", i,
		             (unsigned long long)client->request_next - 1, results[i].status);
}

static struct skuld_event named(struct skuld_event event, const char *code)
{
	memset(event.code, 0, sizeof(event.code));
	memcpy(event.code, code, strlen(code));
	return event;
}

/*
 * One request per record (the client waits for each reply, so each is its
 * own group-commit write too):
 *   events 1..4   request 1: locations S1, S2; items TEE, MUG
 *   event 5       request 2: RECEIVE TEE@S1 10
 *   event 6       request 3: SALE TEE@S1 3
 *   events 7, 8   request 4: RECEIVE TEE@S2 4, RECEIVE MUG@S1 7
 *   event 9       request 5: RESERVE TEE@S1 2, hold 100
 *   event 10      request 6: SALE TEE@S1 1
 *   event 11      request 7: COMMIT hold 100
 *   event 12      request 8: ADJUST TEE@S2 -1 (theft)
 */
static void make_log(void)
{
	server_init(&server, config_text);
	server_start(&server);
	snprintf(data_dir, sizeof(data_dir), "%s/data", server.dir);
	snprintf(log_dir, sizeof(log_dir), "%s/log", data_dir);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(1)), 0);
	struct skuld_event catalog[4] = {
	        named(event_location(1, 0), "S1"),
	        named(event_location(2, 0), "S2"),
	        named(event_item(1, 0), "TEE"),
	        named(event_item(2, 0), "MUG"),
	};
	submit(&client, catalog, 4);
	struct skuld_event event = event_stock(SKULD_RECEIVE, 1, 1, 10, 0);
	submit(&client, &event, 1);
	event = event_stock(SKULD_SALE, 1, 1, 3, 0);
	submit(&client, &event, 1);
	struct skuld_event two[2] = {event_stock(SKULD_RECEIVE, 1, 2, 4, 0),
	                             event_stock(SKULD_RECEIVE, 2, 1, 7, 0)};
	submit(&client, two, 2);
	event = event_stock(SKULD_RESERVE, 1, 1, 2, 0);
	event.id = 100;
	event.ttl_s = 600;
	submit(&client, &event, 1);
	event = event_stock(SKULD_SALE, 1, 1, 1, 0);
	submit(&client, &event, 1);
	event = event_hold(SKULD_COMMIT, 100, 0);
	submit(&client, &event, 1);
	event = event_stock(SKULD_ADJUST, 1, 2, -1, 0);
	event.reason = SKULD_REASON_THEFT;
	submit(&client, &event, 1);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
}

/* The head verify prints, "SEQ:HEX", into head. */
static void head_of(const char *dir, char head[CHAIN_TEXT_SIZE])
{
	struct command_run *run = expect(0, "verify", dir, "--json", "--config", server.config);
	const char *at = strstr(run->out, "],\"head\":\"");
	cr_assert_not_null(at, "%s", run->out);
	at += strlen("],\"head\":\"");
	const char *end = strchr(at, '"');
	cr_assert_not_null(end);
	cr_assert_lt((size_t)(end - at), (size_t)CHAIN_TEXT_SIZE);
	memcpy(head, at, (size_t)(end - at));
	head[end - at] = '\0';
}

/* ---- Walking the segment files as bytes (to damage them on purpose) -------- */

struct place {
	uint64_t write_offset;  /* of the write holding the record */
	uint64_t record_offset; /* of the record */
	uint32_t record_size;
};

static uint8_t *file_read(const char *path, size_t *size)
{
	FILE *file = fopen(path, "rb");
	cr_assert_not_null(file, "%s: %s", path, strerror(errno));
	fseek(file, 0, SEEK_END);
	*size = (size_t)ftell(file);
	fseek(file, 0, SEEK_SET);
	uint8_t *bytes = malloc(*size);
	cr_assert_not_null(bytes);
	cr_assert_eq(fread(bytes, 1, *size, file), *size);
	fclose(file);
	return bytes;
}

static void file_write(const char *path, const uint8_t *bytes, size_t size)
{
	FILE *file = fopen(path, "r+b");
	cr_assert_not_null(file);
	cr_assert_eq(fwrite(bytes, 1, size, file), size);
	fclose(file);
}

/*
 * Walks the writes of one segment image. For each record calls visit (may
 * be NULL) and, when rechain is set, rewrites the chain: every record links
 * to *chain and gets a recomputed checksum, every write a recomputed payload
 * and header checksum — what someone who edits a record and wants the XXH3
 * checks to pass must do. Returns the number of records.
 */
static uint32_t segment_walk(uint8_t *bytes, size_t size, uint64_t *chain, bool rechain,
                             void (*visit)(uint8_t *record, uint64_t write, uint64_t offset,
                                           void *context),
                             void *context)
{
	uint32_t records = 0;
	if (rechain) {
		struct log_segment_header *segment = (struct log_segment_header *)bytes;
		if (*chain != 0)
			segment->checksum_prev = *chain;
		segment->checksum_header = skuld_checksum(segment, 120);
	}
	for (uint64_t offset = LOG_BLOCK_SIZE; offset + LOG_WRITE_HEADER_SIZE <= size;) {
		struct log_write_header *write = (struct log_write_header *)(bytes + offset);
		if (write->magic != LOG_WRITE_MAGIC)
			break;
		uint64_t at = offset + LOG_WRITE_HEADER_SIZE;
		for (uint32_t r = 0; r < write->record_count; r++) {
			struct log_record_header *record = (struct log_record_header *)(bytes + at);
			uint64_t record_size = log_record_size(record->count);
			if (visit != NULL)
				visit(bytes + at, offset, at, context);
			if (rechain) {
				if (*chain != 0)
					record->checksum_prev = *chain;
				record->checksum = skuld_checksum(bytes + at + 8, record_size - 8);
			}
			*chain = record->checksum;
			at += record_size;
			records++;
		}
		if (rechain) {
			write->checksum_payload = skuld_checksum(
			        bytes + offset + LOG_WRITE_HEADER_SIZE, write->payload_size);
			write->checksum_header = skuld_checksum(write, 56);
		}
		offset += (LOG_WRITE_HEADER_SIZE + write->payload_size + LOG_BLOCK_SIZE - 1) /
		          LOG_BLOCK_SIZE * LOG_BLOCK_SIZE;
	}
	return records;
}

struct find {
	uint64_t sequence;
	bool found;
	struct place place;
};

static void find_visit(uint8_t *bytes, uint64_t write, uint64_t offset, void *context)
{
	struct find *find = context;
	const struct log_record_header *record = (const struct log_record_header *)bytes;
	if (record->count > 0 && record->event_first <= find->sequence &&
	    find->sequence < record->event_first + record->count) {
		find->found = true;
		find->place =
		        (struct place){write, offset, (uint32_t)log_record_size(record->count)};
	}
}

/* Where the record holding event sequence lies in the first segment. */
static struct place record_find(uint64_t sequence)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", log_dir, SEGMENT_FIRST);
	size_t size;
	uint8_t *bytes = file_read(path, &size);
	struct find find = {.sequence = sequence};
	uint64_t chain = 0;
	segment_walk(bytes, size, &chain, false, find_visit, &find);
	free(bytes);
	cr_assert(find.found, "event %llu not found", (unsigned long long)sequence);
	return find.place;
}

static char *quoted(const char *format, ...)
{
	static char text[512];
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(text, sizeof(text), format, arguments);
	va_end(arguments);
	return text;
}

/* ---- verify --------------------------------------------------------------------- */

Test(replay, verify_passes_and_prints_the_head)
{
	make_log();
	struct command_run *run = expect(0, "verify", data_dir, "--config", server.config);
	contains(run->out, "records    8\n");
	contains(run->out, "events     12 (1 .. 12)\n");
	contains(run->out, "segments   1 (" SEGMENT_FIRST " .. " SEGMENT_FIRST ")\n");
	contains(run->out, "\nhead       12:");
	contains(run->out, "OK         0 faults");
	/* The log directory itself works as DIR too, and the JSON has the same
	 * head, 64 hex digits after the sequence. */
	char head[CHAIN_TEXT_SIZE];
	head_of(log_dir, head);
	cr_assert_eq(strlen(head), 3 + 64, "%s", head);
	contains(run->out, head);
	struct chain_head parsed;
	cr_assert_eq(chain_parse(head, &parsed), 0);
	cr_assert_eq(parsed.sequence, 12);
	/* The snapshot the server wrote at shutdown equals a replay. */
	run = expect(0, "verify", data_dir, "--config", server.config);
	contains(run->out, "snapshots  1 in ");
	contains(run->out, "snapshot   snapshot-000000000000000c.sks  after event 12  state hash ");
	contains(run->out, " equals the replay's\n");
	/* Without the server's capacities the snapshot cannot be checked. */
	run = expect(1, "verify", data_dir);
	contains(run->err, "cannot be read: taken with other ledger capacities");
	contains(run->err, "--config");
	/* --replay re-applies every record with the server's capacities. */
	run = expect(0, "verify", data_dir, "--replay", "--config", server.config);
	contains(run->out, "replayed   every record re-applied with its logged results");
	/* A torn last write is a warning, as in recovery: garbage where the
	 * next write would go, and no genuine write after it. */
	struct place last = record_find(12);
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", log_dir, SEGMENT_FIRST);
	size_t size;
	uint8_t *bytes = file_read(path, &size);
	uint64_t next = last.write_offset + LOG_BLOCK_SIZE;
	memset(bytes + next + 100, 0x5a, 16);
	file_write(path, bytes, size);
	free(bytes);
	run = expect(0, "verify", data_dir, "--config", server.config);
	contains(run->err, "warning: the last log write in ");
	contains(run->err, quoted("at offset %llu is torn", (unsigned long long)next));
	contains(run->out, head); /* every acknowledged record is still there */
}

Test(replay, a_flipped_bit_names_the_file_and_offset)
{
	make_log();
	struct place place = record_find(6); /* request 3, a middle write */
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", log_dir, SEGMENT_FIRST);
	size_t size;
	uint8_t *bytes = file_read(path, &size);
	bytes[place.record_offset + LOG_RECORD_HEADER_SIZE + 40] ^= 0x10; /* the quantity */
	file_write(path, bytes, size);
	free(bytes);
	struct command_run *run = expect(1, "verify", data_dir, "--config", server.config);
	contains(run->err, quoted("log corrupt in %s/%s at offset %llu", log_dir, SEGMENT_FIRST,
	                          (unsigned long long)place.write_offset));
	contains(run->out, "FAILED");
	/* The records before the damage were read: 2 of them, events 1..5. */
	contains(run->out, "records    2\n");
	/* Every command that reads the log stops there with the same fault. */
	run = expect(1, "export", data_dir, "--format", "csv");
	contains(run->err, "log corrupt in");
	run = expect(1, "state", data_dir, "--config", server.config);
	contains(run->err, quoted("at offset %llu", (unsigned long long)place.write_offset));
}

Test(replay, head_check_wrong_right_and_unreached)
{
	make_log();
	char head[CHAIN_TEXT_SIZE];
	head_of(data_dir, head);
	struct command_run *run =
	        expect(0, "verify", data_dir, "--head", head, "--config", server.config);
	contains(run->out, quoted("--head     %s matches after record 8", head));
	/* One hex digit changed. */
	char wrong[CHAIN_TEXT_SIZE];
	memcpy(wrong, head, sizeof(wrong));
	size_t last = strlen(wrong) - 1;
	wrong[last] = wrong[last] == '0' ? '1' : '0';
	run = expect(1, "verify", data_dir, "--head", wrong, "--config", server.config);
	contains(run->err, quoted("--head %s does not match", wrong));
	contains(run->err, head); /* what the chain really is there */
	/* The same hash claimed for another position. */
	char moved[CHAIN_TEXT_SIZE];
	snprintf(moved, sizeof(moved), "11%s", strchr(head, ':'));
	expect(1, "verify", data_dir, "--head", moved, "--config", server.config);
	/* A head beyond the end: the log lost records, or it is another log. */
	char beyond[CHAIN_TEXT_SIZE];
	snprintf(beyond, sizeof(beyond), "99%s", strchr(head, ':'));
	run = expect(1, "verify", data_dir, "--head", beyond, "--config", server.config);
	contains(run->err, "was not reached: the log ends at event 12");
	/* head_0 holds for every log. */
	char zero[CHAIN_TEXT_SIZE];
	snprintf(zero, sizeof(zero), "0:%064d", 0);
	expect(0, "verify", data_dir, "--head", zero, "--config", server.config);
	/* Not a head at all. */
	expect(2, "verify", data_dir, "--head", "12:abc", "--config", server.config);
}

/* Changes the SALE of event 6 from 3 to 30 units and recomputes every XXH3
 * checksum after it. */
static void tamper_visit(uint8_t *bytes, uint64_t write, uint64_t offset, void *context)
{
	(void)write, (void)offset, (void)context;
	struct log_record_header *record = (struct log_record_header *)bytes;
	if (record->event_first == 6 && record->count == 1) {
		struct skuld_event *event = (struct skuld_event *)(bytes + LOG_RECORD_HEADER_SIZE);
		cr_assert_eq(event->kind, SKULD_SALE);
		event->quantity = 30;
	}
}

Test(replay, tampering_with_recomputed_checksums_is_caught_by_the_head)
{
	make_log();
	char head_end[CHAIN_TEXT_SIZE], head_5[CHAIN_TEXT_SIZE];
	head_of(data_dir, head_end);
	/* The head at event 5, before the record that will be changed. */
	struct command_run *run =
	        expect(0, "verify", data_dir, "--json", "--config", server.config);
	(void)run;
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", log_dir, SEGMENT_FIRST);
	size_t size;
	uint8_t *original = file_read(path, &size);
	uint8_t *copy = malloc(size);
	cr_assert_not_null(copy);
	memcpy(copy, original, size);
	/* head_5 from the file: SHA-256 chain over the first two records. */
	struct chain *chain;
	cr_assert_eq(chain_create(&chain), 0);
	for (uint64_t offset = LOG_BLOCK_SIZE, records = 0; records < 2;) {
		const struct log_write_header *write =
		        (const struct log_write_header *)(original + offset);
		uint64_t at = offset + LOG_WRITE_HEADER_SIZE;
		for (uint32_t r = 0; r < write->record_count && records < 2; r++, records++) {
			const struct log_record_header *record =
			        (const struct log_record_header *)(original + at);
			cr_assert_eq(chain_add(chain, record, log_record_size(record->count),
			                       record->event_first + record->count - 1),
			             0);
			at += log_record_size(record->count);
		}
		offset += LOG_BLOCK_SIZE *
		          ((LOG_WRITE_HEADER_SIZE + write->payload_size + LOG_BLOCK_SIZE - 1) /
		           LOG_BLOCK_SIZE);
	}
	struct chain_head head;
	chain_head(chain, &head);
	chain_format(&head, head_5);
	chain_destroy(chain);
	cr_assert_eq(head.sequence, 5);
	expect(0, "verify", data_dir, "--head", head_5, "--config", server.config);

	/* The snapshot taken at shutdown would be checked against a replay,
	 * which notices (below); here the head alone must tell. */
	char snapshots[256];
	snprintf(snapshots, sizeof(snapshots), "%s/snapshots", data_dir);
	remove_tree(snapshots);
	uint64_t link = 0;
	cr_assert_eq(segment_walk(copy, size, &link, true, tamper_visit, NULL), 8);
	file_write(path, copy, size);
	free(original);
	free(copy);
	/* Every XXH3 check passes: corruption checks cannot see this. */
	run = expect(0, "verify", data_dir, "--config", server.config);
	contains(run->out, "OK         0 faults");
	cr_assert_null(strstr(run->out, head_end));
	/* The head kept from before proves the change; the head before the
	 * changed record still holds. */
	run = expect(1, "verify", data_dir, "--head", head_end, "--config", server.config);
	contains(run->err, "does not match");
	expect(0, "verify", data_dir, "--head", head_5, "--config", server.config);
	/* A replay notices that the changed event does not give the logged
	 * result; a careful forger would have to rewrite every later result
	 * too, and the head would still tell. */
	run = expect(1, "state", data_dir, "--at", "6", "--config", server.config);
	contains(run->err, quoted("%s/%s offset", log_dir, SEGMENT_FIRST));
	contains(run->err, "request 3: replayed event 0 (SALE)");
}

/* ---- state ---------------------------------------------------------------------- */

static const char level_tee_s1_after_6[] =
        "{\"sku\":\"TEE\",\"item\":1,\"location\":\"S1\",\"location_id\":1,\"scale\":0,"
        "\"on_hand\":7,\"reserved\":0,\"committed\":0,\"unsellable\":0,\"incoming\":0,"
        "\"available\":7,";

/* The recorded time of event sequence, as RFC 3339 with nanoseconds, from
 * export's JSON lines. */
static void recorded_time_of(uint64_t sequence, char *out, size_t size)
{
	struct command_run *run = expect(0, "export", data_dir, "--format", "jsonl", "--from",
	                                 quoted("%llu", (unsigned long long)sequence), "--to",
	                                 quoted("%llu", (unsigned long long)sequence));
	const char *at = strstr(run->out, "\"recorded_ns\":");
	cr_assert_not_null(at);
	unsigned long long ns = 0;
	cr_assert_eq(sscanf(at, "\"recorded_ns\":%llu", &ns), 1);
	time_t seconds = (time_t)(ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&seconds, &tm);
	char whole[32];
	strftime(whole, sizeof(whole), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%09lluZ", whole, ns % 1000000000ull);
}

Test(replay, state_at_past_points_has_exact_counters)
{
	make_log();
	/* After event 6: TEE at S1 only. */
	struct command_run *run =
	        expect(0, "state", data_dir, "--at", "6", "--config", server.config, "--json");
	contains(run->out, "\"at\":{\"event\":6,\"records\":3,");
	contains(run->out, level_tee_s1_after_6);
	cr_assert_null(strstr(run->out, "\"S2\""), "%s", run->out);
	/* Event 7 lies inside the record of events 7..8: the state before it. */
	run = expect(0, "state", data_dir, "--at", "7", "--config", server.config, "--json");
	contains(run->out, "\"at\":{\"event\":6,");
	contains(run->out, "inside the record of events 7 .. 8");
	/* After event 11 (the commit): 6 on hand, 2 committed, 4 available. */
	run = expect(0, "state", data_dir, "--at", "11", "--config", server.config, "--json");
	contains(run->out, "\"sku\":\"TEE\",\"item\":1,\"location\":\"S1\",\"location_id\":1,"
	                   "\"scale\":0,\"on_hand\":6,\"reserved\":0,\"committed\":2,"
	                   "\"unsellable\":0,\"incoming\":0,\"available\":4,");
	contains(run->out, "\"sku\":\"TEE\",\"item\":1,\"location\":\"S2\",\"location_id\":2,"
	                   "\"scale\":0,\"on_hand\":4,");
	contains(run->out, "\"sku\":\"MUG\",\"item\":2,\"location\":\"S1\",\"location_id\":1,"
	                   "\"scale\":0,\"on_hand\":7,");
	/* After event 9 (the reserve): 2 reserved. */
	run = expect(0, "state", data_dir, "--at", "9", "--config", server.config, "--json");
	contains(run->out, "\"location\":\"S1\",\"location_id\":1,\"scale\":0,\"on_hand\":7,"
	                   "\"reserved\":2,\"committed\":0,\"unsellable\":0,\"incoming\":0,"
	                   "\"available\":5,");
	/* The end (no --at): the theft at S2; human output with codes. */
	run = expect(0, "state", data_dir, "--config", server.config);
	contains(run->out, "after event 12 (8 records");
	contains(run->out, "3 item-locations");
	cr_assert_not_null(strstr(run->out, "\nTEE  S2"), "%s", run->out);
	/* By time: the record time of event 6 is a point at which event 6 is
	 * in and event 7 is not. */
	char time[64];
	recorded_time_of(6, time, sizeof(time));
	run = expect(0, "state", data_dir, "--at", time, "--config", server.config, "--json");
	contains(run->out, "\"at\":{\"event\":6,");
	contains(run->out, level_tee_s1_after_6);
	/* Before the first record: nothing yet. */
	run = expect(0, "state", data_dir, "--at", "2000-01-01T00:00:00Z", "--config",
	             server.config, "--json");
	contains(run->out, "\"at\":{\"event\":0,\"records\":0");
	contains(run->out, "\"levels\":[]");
	/* Usage. */
	expect(2, "state", data_dir, "--at", "yesterday");
	expect(2, "state", data_dir, "--head", "1:00");
	expect(2, "state", data_dir, "--config", "/nonexistent/skuld.conf");
}

/* ---- history -------------------------------------------------------------------- */

/* The JSON object of the movement with this sequence at this location. */
static const char *movement(const char *json, uint64_t sequence, const char *location)
{
	static char object[2048];
	char start[64];
	snprintf(start, sizeof(start), "{\"seq\":%llu,", (unsigned long long)sequence);
	const char *at = json;
	while ((at = strstr(at, start)) != NULL) {
		const char *end = strchr(at, '}');
		cr_assert_not_null(end);
		size_t length = (size_t)(end - at + 1);
		cr_assert_lt(length, sizeof(object));
		memcpy(object, at, length);
		object[length] = '\0';
		char where[64];
		snprintf(where, sizeof(where), "\"location\":\"%s\"", location);
		if (strstr(object, where) != NULL)
			return object;
		at = end;
	}
	cr_assert_fail("no movement %llu at %s in:\n%s", (unsigned long long)sequence, location,
	               json);
	return NULL;
}

static void movement_has(const char *json, uint64_t sequence, const char *location,
                         const char *fields)
{
	contains(movement(json, sequence, location), fields);
}

Test(replay, history_shows_the_running_balance)
{
	make_log();
	struct command_run *run =
	        expect(0, "history", data_dir, "TEE@S1", "--config", server.config, "--json");
	contains(run->out, "{\"sku\":\"TEE\",\"item\":1,\"scale\":0,\"bundle\":false,"
	                   "\"location\":\"S1\",\"location_id\":1,\"movements\":[");
	movement_has(run->out, 5, "S1", "\"kind\":\"RECEIVE\"");
	movement_has(run->out, 5, "S1",
	             "\"quantity\":10,\"change\":10,\"on_hand\":10,\"available\":10,"
	             "\"status\":\"OK\"");
	movement_has(run->out, 5, "S1", "\"request\":2,");
	movement_has(run->out, 6, "S1",
	             "\"quantity\":3,\"change\":-3,\"on_hand\":7,\"available\":7");
	movement_has(run->out, 9, "S1", "\"kind\":\"RESERVE\"");
	movement_has(run->out, 9, "S1", "\"change\":0,\"on_hand\":7,\"available\":5");
	movement_has(run->out, 9, "S1", "\"hold\":100");
	movement_has(run->out, 10, "S1", "\"change\":-1,\"on_hand\":6,\"available\":4");
	movement_has(run->out, 11, "S1", "\"kind\":\"COMMIT\"");
	movement_has(run->out, 11, "S1",
	             "\"quantity\":2,\"change\":0,\"on_hand\":6,\"available\":4");
	contains(run->out, "\"count\":5,\"balance_mismatches\":0,\"on_hand\":[{\"location\":\"S1\","
	                   "\"on_hand\":6}]}");
	/* Who sent it: the harness client's id, the request number, the key. */
	char client[64];
	skuld_u128 id = client_id(1);
	snprintf(client, sizeof(client), "\"client\":\"%016llx%016llx\"", (unsigned long long)id.hi,
	         (unsigned long long)id.lo);
	movement_has(run->out, 6, "S1", client);
	movement_has(run->out, 6, "S1", "\"request\":3,\"key\":\"");
	/* Every location: S2's rows too, with their own balance. */
	run = expect(0, "history", data_dir, "TEE", "--config", server.config, "--json");
	movement_has(run->out, 7, "S2", "\"change\":4,\"on_hand\":4,");
	movement_has(run->out, 12, "S2", "\"kind\":\"ADJUST\"");
	movement_has(run->out, 12, "S2", "\"quantity\":-1,\"change\":-1,\"on_hand\":3,");
	contains(run->out, "\"count\":7,");
	/* --from / --to pick rows; the balance still counts what came before. */
	run = expect(0, "history", data_dir, "TEE@S1", "--from", "6", "--to", "10", "--config",
	             server.config, "--json");
	contains(run->out, "\"count\":3,");
	movement_has(run->out, 6, "S1", "\"on_hand\":7,");
	cr_assert_null(strstr(run->out, "{\"seq\":5,"));
	cr_assert_null(strstr(run->out, "{\"seq\":11,"));
	/* Human output. */
	run = expect(0, "history", data_dir, "TEE@S1", "--config", server.config);
	contains(run->out, "history of TEE (item 1) at S1 (location 1)\n");
	contains(run->out, "5 movements; on hand at the end: S1 6\n");
	/* MUG never moved at S2; an unknown SKU is a fault. */
	run = expect(0, "history", data_dir, "MUG@S2", "--config", server.config);
	contains(run->out, "0 movements");
	run = expect(1, "history", data_dir, "NOPE", "--config", server.config);
	contains(run->err, "SKU 'NOPE' is not defined in the log");
	expect(2, "history", data_dir);
}

Test(replay, history_follows_bundles_holds_and_reallocations)
{
	server_init(&server, config_text);
	server_start(&server);
	snprintf(data_dir, sizeof(data_dir), "%s/data", server.dir);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(3)), 0);
	struct skuld_event kit = named(event_item(3, 0), "KIT");
	kit.flags = SKULD_EVENT_BUNDLE;
	struct skuld_event component = event_make(SKULD_BUNDLE_COMPONENT, 0, 5);
	component.item = 3;
	component.target = 1;
	component.quantity = 2;
	struct skuld_event catalog[5] = {
	        named(event_location(1, 0), "S1"),
	        named(event_location(2, 0), "S2"),
	        named(event_item(1, 0), "TEE"),
	        kit,
	        component,
	};
	submit(&client, catalog, 5);                                          /* 1..5 */
	struct skuld_event two[2] = {event_stock(SKULD_RECEIVE, 1, 1, 10, 0), /* 6 */
	                             event_stock(SKULD_RECEIVE, 1, 2, 3, 0)}; /* 7 */
	submit(&client, two, 2);
	struct skuld_event event = event_stock(SKULD_SALE, 3, 1, 2, 0); /* 8: 4 TEE */
	submit(&client, &event, 1);
	event = event_stock(SKULD_RESERVE, 3, 1, 1, 0); /* 9: 2 TEE held */
	event.id = 7;
	event.ttl_s = 600;
	submit(&client, &event, 1);
	event = event_hold(SKULD_RELEASE, 7, 0); /* 10 */
	submit(&client, &event, 1);
	event = event_stock(SKULD_RESERVE, 1, 1, 1, 0); /* 11 */
	event.id = 8;
	event.ttl_s = 600;
	submit(&client, &event, 1);
	event = event_hold(SKULD_REALLOCATE, 8, 0); /* 12: to S2 */
	event.target = 2;
	submit(&client, &event, 1);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);

	struct command_run *run =
	        expect(0, "history", data_dir, "TEE", "--config", server.config, "--json");
	movement_has(run->out, 8, "S1", "\"kind\":\"SALE\"");
	movement_has(run->out, 8, "S1",
	             "\"quantity\":4,\"change\":-4,\"on_hand\":6,"
	             "\"available\":null,");
	movement_has(run->out, 8, "S1", "\"via\":\"KIT\"");
	movement_has(run->out, 9, "S1", "\"kind\":\"RESERVE\"");
	movement_has(run->out, 9, "S1", "\"quantity\":2,\"change\":0,\"on_hand\":6,");
	movement_has(run->out, 10, "S1", "\"kind\":\"RELEASE\"");
	movement_has(run->out, 10, "S1", "\"hold\":7,\"via\":\"KIT\"");
	movement_has(run->out, 12, "S1", "\"kind\":\"REALLOCATE\"");
	movement_has(run->out, 12, "S1", "\"note\":\"moved to S2\"");
	movement_has(run->out, 12, "S2", "\"note\":\"moved from S1\"");
	movement_has(run->out, 12, "S2", "\"on_hand\":3,\"available\":2,");
	contains(run->out, "\"count\":8,\"balance_mismatches\":0,\"on_hand\":["
	                   "{\"location\":\"S1\",\"on_hand\":6},"
	                   "{\"location\":\"S2\",\"on_hand\":3}]}");
	/* The bundle's own card: its events, no stock of its own. */
	run = expect(0, "history", data_dir, "KIT@S1", "--config", server.config, "--json");
	contains(run->out, "\"bundle\":true,");
	movement_has(run->out, 8, "S1", "\"quantity\":2,\"change\":0,\"on_hand\":null,");
	contains(run->out, "\"count\":3,");
	/* The state agrees. */
	run = expect(0, "state", data_dir, "--config", server.config, "--json");
	contains(run->out, "\"location\":\"S2\",\"location_id\":2,\"scale\":0,\"on_hand\":3,"
	                   "\"reserved\":1,");
}

/* ---- export --------------------------------------------------------------------- */

static int lines_count(const char *text)
{
	int lines = 0;
	for (const char *at = text; *at != '\0'; at++)
		lines += *at == '\n';
	return lines;
}

/* Splits one CSV line without quotes into fields; returns the count. */
static int csv_fields(const char *line, char fields[][64], int max)
{
	int count = 0;
	const char *at = line;
	while (count < max) {
		size_t length = strcspn(at, ",\n");
		cr_assert_lt(length, 64);
		memcpy(fields[count], at, length);
		fields[count][length] = '\0';
		count++;
		if (at[length] != ',')
			break;
		at += length + 1;
	}
	return count;
}

Test(replay, export_csv_and_jsonl_lines_parse_and_count)
{
	make_log();
	struct command_run *run = expect(0, "export", data_dir, "--format", "csv");
	cr_assert_eq(lines_count(run->out), 1 + 12, "%s", run->out);
	char fields[40][64];
	char header[40][64];
	int columns = csv_fields(run->out, header, 40);
	cr_assert_eq(columns, 35);
	cr_assert_str_eq(header[0], "seq");
	const char *line = run->out;
	for (int row = 1; row <= 12; row++) {
		line = strchr(line, '\n') + 1;
		cr_assert_eq(csv_fields(line, fields, 40), columns, "line %d: %.200s", row, line);
		cr_assert_eq(atoi(fields[0]), row);
	}
	/* Line 6 (event 6): the SALE of 3 TEE at S1, OK, 7 left. */
	line = run->out;
	for (int row = 0; row < 6; row++)
		line = strchr(line, '\n') + 1;
	csv_fields(line, fields, 40);
	for (int column = 0; column < columns; column++) {
		const char *name = header[column];
		const char *value = fields[column];
		if (strcmp(name, "kind") == 0)
			cr_assert_str_eq(value, "SALE");
		else if (strcmp(name, "sku") == 0)
			cr_assert_str_eq(value, "TEE");
		else if (strcmp(name, "location_code") == 0)
			cr_assert_str_eq(value, "S1");
		else if (strcmp(name, "quantity") == 0)
			cr_assert_str_eq(value, "3");
		else if (strcmp(name, "status") == 0)
			cr_assert_str_eq(value, "OK");
		else if (strcmp(name, "result_available") == 0)
			cr_assert_str_eq(value, "7");
		else if (strcmp(name, "request") == 0)
			cr_assert_str_eq(value, "3");
		else if (strcmp(name, "source") == 0)
			cr_assert_str_eq(value, "client");
	}
	/* JSON lines: one object per line, every event. */
	run = expect(0, "export", data_dir, "--format", "jsonl");
	cr_assert_eq(lines_count(run->out), 12);
	line = run->out;
	for (int row = 1; row <= 12; row++) {
		const char *end = strchr(line, '\n');
		cr_assert_eq(line[0], '{');
		cr_assert_eq(end[-1], '}');
		char start[32];
		snprintf(start, sizeof(start), "{\"seq\":%d,", row);
		cr_assert_eq(strncmp(line, start, strlen(start)), 0, "%.100s", line);
		line = end + 1;
	}
	contains(run->out,
	         "\"kind\":\"ADJUST\",\"flags\":\"\",\"item\":1,\"sku\":\"TEE\",\"scale\":0,"
	         "\"location\":2,\"location_code\":\"S2\"");
	/* A range by sequence, both ends included. */
	run = expect(0, "export", data_dir, "--format", "jsonl", "--from", "6", "--to", "8");
	cr_assert_eq(lines_count(run->out), 3);
	contains(run->out, "{\"seq\":6,");
	contains(run->out, "{\"seq\":8,");
	run = expect(0, "export", data_dir, "--format", "csv", "--from", "13");
	cr_assert_eq(lines_count(run->out), 1);
	expect(2, "export", data_dir);
	expect(2, "export", data_dir, "--format", "xml");
	expect(2, "export", data_dir, "--format", "csv", "--json");
}

/* ---- snapshots ------------------------------------------------------------------ */

Test(replay, snapshots_are_checked_against_the_replay)
{
	make_log();
	/* The log as it was at event 12. */
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", log_dir, SEGMENT_FIRST);
	size_t size;
	uint8_t *at_12 = file_read(path, &size);
	/* The server again: one more event, a snapshot at 13 at shutdown. */
	server_start(&server);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(2)), 0);
	struct skuld_event event = event_stock(SKULD_RECEIVE, 2, 2, 5, 0);
	submit(&client, &event, 1);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
	struct command_run *run = expect(0, "verify", data_dir, "--config", server.config);
	contains(run->out, "snapshot-000000000000000c.sks  after event 12");
	contains(run->out, "snapshot-000000000000000d.sks  after event 13");
	/* Back to the log at event 12: snapshot 13 is not in it. */
	file_write(path, at_12, size);
	free(at_12);
	run = expect(1, "verify", data_dir, "--config", server.config, "--json");
	contains(run->out, "{\"file\":\"snapshot-000000000000000c.sks\",\"event\":12,"
	                   "\"matched\":true,");
	contains(run->out, "{\"file\":\"snapshot-000000000000000d.sks\",\"event\":13,"
	                   "\"matched\":false,");
	contains(run->err, "snapshot-000000000000000d.sks: its position (after event 13");
	contains(run->err, "is not in the log");
	/* A flipped bit in a snapshot file. */
	snprintf(path, sizeof(path), "%s/snapshots/snapshot-000000000000000c.sks", data_dir);
	uint8_t *bytes = file_read(path, &size);
	bytes[size / 2] ^= 0x01;
	file_write(path, bytes, size);
	free(bytes);
	run = expect(1, "verify", data_dir, "--config", server.config);
	contains(run->err, "snapshot-000000000000000c.sks cannot be read");
}

/* ---- The committed sample log, and the head's text form ------------------------ */

Test(replay, sample_log_chain_head_is_pinned)
{
	server_init(&server, NULL); /* only for the output files */
	/* tests/data/log-v1 is replayed by every later version; its SHA-256
	 * chain head is fixed by docs/FORMAT.md's definition. */
	struct command_run *run = expect(0, "verify", SKULD_TEST_DATA "/log-v1");
	contains(run->out, "head       54:e295683edd5a7191dde25acc413b2687c8b7cb344db348c95c5eb007b"
	                   "13596f5\n");
	contains(run->out, "segment    log-0000000000000001.skl  records 5  events 1 .. 9  head "
	                   "9:1b0eef763a96b314dcb710106250ff8ee563f173c94f9855fb26ddf31cb71c99\n");
	expect(0, "verify", SKULD_TEST_DATA "/log-v1", "--head",
	       "13:2bd4db1c68e8d0f2844022b1dc8615368914a9371ecf7b4103928daca261982a");
	run = expect(3, "verify", "/nonexistent/skuld-data");
	contains(run->err, "cannot read /nonexistent/skuld-data");
	expect(2, "frobnicate", "x");
	run = expect(0, "--help");
	contains(run->out, "usage: skuld-replay");
}

Test(replay, chain_head_text_round_trip)
{
	struct chain *chain;
	cr_assert_eq(chain_create(&chain), 0);
	struct chain_head head;
	chain_head(chain, &head);
	char text[CHAIN_TEXT_SIZE];
	chain_format(&head, text);
	cr_assert_str_eq(text,
	                 "0:0000000000000000000000000000000000000000000000000000000000000000");
	/* SHA-256(32 zero bytes || "abc"), a value any SHA-256 tool gives. */
	cr_assert_eq(chain_add(chain, "abc", 3, 7), 0);
	chain_head(chain, &head);
	chain_format(&head, text);
	cr_assert_str_eq(text,
	                 "7:365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370");
	struct chain_head parsed;
	cr_assert_eq(chain_parse(text, &parsed), 0);
	cr_assert(chain_head_equal(&parsed, &head));
	/* Upper-case hex is the same head. */
	cr_assert_eq(
	        chain_parse("7:365AA7D8F7F9402C4B9434502B4CC89DDB09FE50D7CD95B493B834C62D5A5370",
	                    &parsed),
	        0);
	cr_assert(chain_head_equal(&parsed, &head));
	cr_assert_eq(chain_parse("7:365a", &parsed), -EINVAL);
	cr_assert_eq(
	        chain_parse(":365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370",
	                    &parsed),
	        -EINVAL);
	cr_assert_eq(chain_parse("99999999999999999999:"
	                         "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370",
	                         &parsed),
	             -EINVAL);
	cr_assert_eq(
	        chain_parse("7:g65aa7b47d2a6c9c7fc3e3e7d57a5ffd84cdc3d4de7d88ea05f9df3e6a4bd9e5",
	                    &parsed),
	        -EINVAL);
	chain_reset(chain, NULL);
	chain_head(chain, &head);
	cr_assert_eq(head.sequence, 0);
	chain_destroy(chain);
}
