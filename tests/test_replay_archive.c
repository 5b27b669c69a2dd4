/*
 * test_replay_archive.c — skuld-replay after log retention (docs/REPLAY.md,
 * "Archived segments"): the real skuld server, with small segments, one
 * snapshot kept and a retention limit, moves its early segments to an
 * archive directory while a till sends known movements; then the real
 * skuld-replay binary reads the data directory:
 *   - state at the end and at a point after the archive boundary, without
 *     --archive (from the snapshot kept at the boundary) and with it (the
 *     whole log), equal each other, the server's own answers and the
 *     counters the movements give;
 *   - state with --archive at a point before the boundary has the counters
 *     of that point; without --archive it is a fault naming the reason;
 *   - history without --archive starts from the snapshot, with its balance;
 *     a --from before it is a fault;
 *   - a segment missing from the archive is a fault naming it;
 *   - verify goes on from the head file kept with the boundary snapshot,
 *     and its head equals the head file the server wrote at its stop and
 *     the head verify computes over the whole log with --archive.
 *
 * Every child is bounded (server_harness.h; skuld-replay runs are killed
 * after REPLAY_RUN_TIMEOUT_S).
 */
#include "command_harness.h"

#include <inttypes.h>

#include "chain.h"

#define REPLAY_BINARY        SKULD_BINARY_DIR "/server/skuld-replay"
#define REPLAY_RUN_TIMEOUT_S 120
#define PER_REQUEST          16u
#define REQUESTS             150u
#define CATALOG_EVENTS       4u
#define ITEMS                2u
#define LOCATIONS            2u

static struct server server;
static struct command_run run_result;
static char data_dir[128], log_dir[160], archive_dir[160];
static int64_t server_on_hand[ITEMS + 1][LOCATIONS + 1]; /* QUERY LEVEL before the stop */

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

static struct command_run *replay_expect(int status, const char *const *argv)
{
	struct command_run *run = replay_run_argv(argv);
	cr_assert_eq(run->status, status, "%s %s: exit %d, wanted %d\nstdout: %s\nstderr: %s",
	             argv[0], argv[1], run->status, status, run->out, run->err);
	return run;
}

#define expect(status, ...) replay_expect(status, (const char *const[]){__VA_ARGS__, NULL})

static void contains(const char *haystack, const char *needle)
{
	cr_assert_not_null(strstr(haystack, needle), "lacks '%s' in:\n%s", needle, haystack);
}

static char *number_text(uint64_t value)
{
	static char texts[8][32];
	static int next;
	char *text = texts[next++ % 8];
	snprintf(text, sizeof(texts[0]), "%" PRIu64, value);
	return text;
}

static void stop(void)
{
	server_fini(&server);
}

TestSuite(replay_archive, .fini = stop);

/* ---- The data directory ------------------------------------------------------ */

/*
 * Event 1..4: locations S1, S2, items TEE, MUG (one request). Then request
 * r = 0, 1, ...: events 0..14 RECEIVE (item 1 + i % 2, location
 * 1 + (i / 2) % 2, quantity r + 1), event 15 SALE TEE@S1 1. One request is
 * one record (the till waits for every reply).
 */
static void request_events(uint32_t r, struct skuld_event *events)
{
	for (uint32_t i = 0; i < PER_REQUEST - 1; i++)
		events[i] = event_stock(SKULD_RECEIVE, 1 + i % 2, 1 + (i / 2) % 2, r + 1,
		                        (uint64_t)r * PER_REQUEST + i + 100);
	events[PER_REQUEST - 1] = event_stock(SKULD_SALE, 1, 1, 1, (uint64_t)r * PER_REQUEST + 99);
	events[PER_REQUEST - 1].key.hi = 5;
}

/* On hand of (item, location) after the last whole record at or before
 * event `at` (the state skuld-replay gives for --at). */
static int64_t expected_on_hand(uint32_t item, uint32_t location, uint64_t at)
{
	int64_t on_hand = 0;
	for (uint32_t r = 0; r < REQUESTS; r++) {
		uint64_t last = CATALOG_EVENTS + (uint64_t)(r + 1) * PER_REQUEST;
		if (last > at)
			break;
		for (uint32_t i = 0; i < PER_REQUEST - 1; i++) {
			if (1 + i % 2 == item && 1 + (i / 2) % 2 == location)
				on_hand += r + 1;
		}
		if (item == 1 && location == 1)
			on_hand -= 1;
	}
	return on_hand;
}

static struct skuld_event named(struct skuld_event event, const char *code)
{
	memset(event.code, 0, sizeof(event.code));
	memcpy(event.code, code, strlen(code));
	return event;
}

static uint32_t segments_in(const char *dir, uint64_t *lowest)
{
	DIR *handle = opendir(dir);
	cr_assert_not_null(handle, "%s: %s", dir, strerror(errno));
	uint32_t count = 0;
	*lowest = UINT64_MAX;
	struct dirent *entry;
	while ((entry = readdir(handle)) != NULL) {
		uint64_t index;
		if (strlen(entry->d_name) != 24 ||
		    sscanf(entry->d_name, "log-%16" SCNx64 ".skl", &index) != 1)
			continue;
		count++;
		if (index < *lowest)
			*lowest = index;
	}
	closedir(handle);
	return count;
}

static void make_data(void)
{
	char config[512];
	server_init(&server, NULL);
	snprintf(data_dir, sizeof(data_dir), "%s/data", server.dir);
	snprintf(log_dir, sizeof(log_dir), "%s/log", data_dir);
	snprintf(archive_dir, sizeof(archive_dir), "%s/archive", server.dir);
	cr_assert_eq(mkdir(archive_dir, 0755), 0);
	snprintf(config, sizeof(config),
	         "items_max = 16\nlocations_max = 4\nstock_max = 64\nframe_events_max = 64\n"
	         "segment_bytes = 128k\n"
	         "write_bytes = 64k\nsnapshot_events = 300\nsnapshot_interval_s = 0\n"
	         "snapshot_keep = 1\nretain_bytes = 256k\narchive_dir = %s\n",
	         archive_dir);
	FILE *file = fopen(server.config, "w");
	cr_assert_not_null(file);
	fputs(config, file);
	fclose(file);
	server_start(&server);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(1)), 0);
	struct skuld_event catalog[CATALOG_EVENTS] = {
	        named(event_location(1, 1), "S1"),
	        named(event_location(2, 2), "S2"),
	        named(event_item(1, 3), "TEE"),
	        named(event_item(2, 4), "MUG"),
	};
	struct skuld_result results[PER_REQUEST];
	cr_assert_eq(client_submit(&client, catalog, CATALOG_EVENTS, results, NULL), 0);
	for (uint32_t r = 0; r < REQUESTS; r++) {
		struct skuld_event events[PER_REQUEST];
		request_events(r, events);
		cr_assert_eq(client_submit(&client, events, PER_REQUEST, results, NULL), 0);
		for (uint32_t i = 0; i < PER_REQUEST; i++)
			cr_assert_eq(results[i].status, SKULD_OK, "request %u event %u: %u", r, i,
			             results[i].status);
		usleep(2000); /* lets background snapshots and retention keep up */
	}
	for (uint32_t item = 1; item <= ITEMS; item++) {
		for (uint32_t location = 1; location <= LOCATIONS; location++)
			server_on_hand[item][location] =
			        client_level(&client, item, location).on_hand;
	}
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
	uint64_t live_lowest, archive_lowest;
	cr_assert_geq(segments_in(archive_dir, &archive_lowest), 2, "retention archived nothing");
	cr_assert_eq(archive_lowest, 1);
	cr_assert_geq(segments_in(log_dir, &live_lowest), 1);
	cr_assert_gt(live_lowest, 1, "the live log still starts at segment 1");
}

/* The "levels" array of state's JSON. */
static void levels_of(const char *json, char *out, size_t size)
{
	const char *at = strstr(json, "\"levels\":[");
	cr_assert_not_null(at, "%s", json);
	const char *end = strchr(at, ']');
	cr_assert_not_null(end);
	snprintf(out, size, "%.*s", (int)(end - at + 1), at);
}

static void level_is(const char *json, const char *sku, uint32_t item, const char *location,
                     uint32_t location_id, int64_t on_hand)
{
	char want[256];
	snprintf(want, sizeof(want),
	         "{\"sku\":\"%s\",\"item\":%u,\"location\":\"%s\",\"location_id\":%u,\"scale\":0,"
	         "\"on_hand\":%" PRId64 ",",
	         sku, item, location, location_id, on_hand);
	contains(json, want);
}

static void levels_are(const char *json, uint64_t at)
{
	static const char *skus[] = {"", "TEE", "MUG"}, *codes[] = {"", "S1", "S2"};
	for (uint32_t item = 1; item <= ITEMS; item++) {
		for (uint32_t location = 1; location <= LOCATIONS; location++)
			level_is(json, skus[item], item, codes[location], location,
			         expected_on_hand(item, location, at));
	}
}

/* The snapshot event state reports it started from (0: none). */
static uint64_t snapshot_event_of(const char *json)
{
	const char *at = strstr(json, "\"snapshot\":{\"file\":");
	if (at == NULL)
		return 0;
	at = strstr(at, "\"event\":");
	cr_assert_not_null(at);
	unsigned long long event = 0;
	cr_assert_eq(sscanf(at, "\"event\":%llu", &event), 1);
	return event;
}

static const uint64_t events_total = CATALOG_EVENTS + (uint64_t)REQUESTS * PER_REQUEST;

/* ---- state -------------------------------------------------------------------- */

Test(replay_archive, state_without_the_archive_equals_the_whole_log_and_the_server, .timeout = 300)
{
	make_data();
	/* The end: from the boundary snapshot, and from the whole log. */
	struct command_run *run = expect(0, "state", data_dir, "--config", server.config, "--json");
	uint64_t start = snapshot_event_of(run->out);
	cr_assert_gt(start, 0, "no snapshot start: %s", run->out);
	levels_are(run->out, events_total);
	static const char *skus[] = {"", "TEE", "MUG"}, *codes[] = {"", "S1", "S2"};
	for (uint32_t item = 1; item <= ITEMS; item++) {
		for (uint32_t location = 1; location <= LOCATIONS; location++)
			level_is(run->out, skus[item], item, codes[location], location,
			         server_on_hand[item][location]);
	}
	static char partial[1 << 16], whole[1 << 16];
	levels_of(run->out, partial, sizeof(partial));
	run = expect(0, "state", data_dir, "--archive", archive_dir, "--config", server.config,
	             "--json");
	contains(run->out, "\"snapshot\":null");
	levels_of(run->out, whole, sizeof(whole));
	cr_assert_str_eq(partial, whole);
	char text[64];
	snprintf(text, sizeof(text), "\"at\":{\"event\":%" PRIu64 ",", events_total);
	contains(run->out, text);

	/* A point after the boundary, inside a record: the same both ways. */
	uint64_t at = start + (events_total - start) / 2;
	run = expect(0, "state", data_dir, "--at", number_text(at), "--config", server.config,
	             "--json");
	cr_assert_eq(snapshot_event_of(run->out), start);
	levels_are(run->out, at);
	levels_of(run->out, partial, sizeof(partial));
	run = expect(0, "state", data_dir, "--archive", archive_dir, "--at", number_text(at),
	             "--config", server.config, "--json");
	levels_of(run->out, whole, sizeof(whole));
	cr_assert_str_eq(partial, whole);
	/* For people: it says where it started. */
	run = expect(0, "state", data_dir, "--at", number_text(at), "--config", server.config);
	contains(run->out, "started from snapshot ");
	contains(run->out, "records after the snapshot");

	/* Before the boundary: with the archive, the counters of that point ... */
	uint64_t early = CATALOG_EVENTS + 3 * PER_REQUEST;
	cr_assert_lt(early, start);
	run = expect(0, "state", data_dir, "--archive", archive_dir, "--at", number_text(early),
	             "--config", server.config, "--json");
	levels_are(run->out, early);
	contains(run->out, "\"snapshot\":null");
	/* ... without it, a fault that says why. */
	run = expect(1, "state", data_dir, "--at", number_text(early), "--config", server.config);
	contains(run->err, "is before the log present");
	contains(run->err, "--archive");
}

/* ---- history -------------------------------------------------------------------- */

Test(replay_archive, history_starts_from_the_snapshot_with_its_balance, .timeout = 300)
{
	make_data();
	struct command_run *run =
	        expect(0, "history", data_dir, "TEE@S1", "--config", server.config, "--json");
	uint64_t start = snapshot_event_of(run->out);
	cr_assert_gt(start, 0, "%s", run->out);
	char want[128];
	snprintf(want, sizeof(want), "\"on_hand\":[{\"location\":\"S1\",\"on_hand\":%" PRId64 "}]",
	         expected_on_hand(1, 1, events_total));
	contains(run->out, want);
	contains(run->out, "\"balance_mismatches\":0");
	/* The first row's balance continues the snapshot's counter. */
	const char *row = strstr(run->out, "\"movements\":[{\"seq\":");
	cr_assert_not_null(row, "%s", run->out);
	unsigned long long seq = 0;
	cr_assert_eq(sscanf(row, "\"movements\":[{\"seq\":%llu", &seq), 1);
	cr_assert_gt(seq, start);
	uint64_t record_last = seq + (PER_REQUEST - 1 - (seq - CATALOG_EVENTS - 1) % PER_REQUEST);
	const char *sale = strstr(row, "\"kind\":\"SALE\"");
	cr_assert_not_null(sale);
	snprintf(want, sizeof(want), "\"on_hand\":%" PRId64 ",",
	         expected_on_hand(1, 1, record_last));
	cr_assert_not_null(strstr(sale, want), "first record ends at %" PRIu64 ", wants %s: %.400s",
	                   record_last, want, sale);
	/* With the archive: the whole history, the same end. */
	run = expect(0, "history", data_dir, "TEE@S1", "--archive", archive_dir, "--config",
	             server.config, "--json");
	contains(run->out, "\"movements\":[{\"seq\":5,");
	contains(run->out, "\"snapshot\":null,");
	snprintf(want, sizeof(want), "\"on_hand\":[{\"location\":\"S1\",\"on_hand\":%" PRId64 "}]",
	         expected_on_hand(1, 1, events_total));
	contains(run->out, want);
	/* Rows before the snapshot are in the archive only. */
	run = expect(1, "history", data_dir, "TEE@S1", "--from", "10", "--config", server.config);
	contains(run->err, "--from 10 is at or before the snapshot");
}

/* ---- A gap, and verify's chain head -------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb");
	FILE *out = fopen(to, "wb");
	cr_assert(in != NULL && out != NULL, "%s -> %s", from, to);
	static char buffer[1 << 16];
	size_t got;
	while ((got = fread(buffer, 1, sizeof(buffer), in)) > 0)
		cr_assert_eq(fwrite(buffer, 1, got, out), got);
	fclose(in);
	fclose(out);
}

Test(replay_archive, a_segment_missing_from_the_archive_is_a_fault, .timeout = 300)
{
	make_data();
	/* A copy of the archive without segment 2. */
	char gap[192];
	snprintf(gap, sizeof(gap), "%s/gap", server.dir);
	cr_assert_eq(mkdir(gap, 0755), 0);
	DIR *handle = opendir(archive_dir);
	cr_assert_not_null(handle);
	struct dirent *entry;
	while ((entry = readdir(handle)) != NULL) {
		if (strncmp(entry->d_name, "log-", 4) != 0 ||
		    strcmp(entry->d_name, "log-0000000000000002.skl") == 0)
			continue;
		char from[512], to[512];
		snprintf(from, sizeof(from), "%s/%s", archive_dir, entry->d_name);
		snprintf(to, sizeof(to), "%s/%s", gap, entry->d_name);
		copy_file(from, to);
	}
	closedir(handle);
	struct command_run *run =
	        expect(1, "state", data_dir, "--archive", gap, "--config", server.config);
	contains(run->err, "segment 2 is missing");
	contains(run->err, "log-0000000000000003.skl");
	run = expect(1, "verify", data_dir, "--archive", gap, "--config", server.config);
	contains(run->out, "segment 2 is missing");
	contains(run->out, "FAILED");
	/* Only segment 1 in the archive: the gap is between it and the live log. */
	uint64_t live_lowest;
	segments_in(log_dir, &live_lowest);
	char only[192], from[512], to[512];
	snprintf(only, sizeof(only), "%s/only", server.dir);
	cr_assert_eq(mkdir(only, 0755), 0);
	snprintf(from, sizeof(from), "%s/log-0000000000000001.skl", archive_dir);
	snprintf(to, sizeof(to), "%s/log-0000000000000001.skl", only);
	copy_file(from, to);
	run = expect(1, "export", data_dir, "--archive", only, "--format", "csv");
	contains(run->err, "segment 2 (log-0000000000000002.skl) is missing: the archive ");
	/* A segment in both places with different bytes. */
	snprintf(from, sizeof(from), "%s/log-%016" PRIx64 ".skl", log_dir, live_lowest);
	snprintf(to, sizeof(to), "%s/log-%016" PRIx64 ".skl", archive_dir, live_lowest);
	copy_file(from, to);
	expect(0, "verify", data_dir, "--archive", archive_dir, "--config", server.config);
	FILE *file = fopen(from, "r+b"); /* the live copy: the archive's is read first */
	cr_assert_not_null(file);
	fseek(file, 40000, SEEK_SET);
	int byte = fgetc(file);
	fseek(file, 40000, SEEK_SET);
	fputc(byte ^ 0x40, file);
	fclose(file);
	run = expect(1, "verify", data_dir, "--archive", archive_dir, "--config", server.config);
	contains(run->err, "is both in the archive and in the live log, with different bytes");
}

/* The head verify prints in JSON ("head":"SEQ:HEX"), or "" for null. */
static void head_of(const char *json, char head[CHAIN_TEXT_SIZE])
{
	const char *at = strstr(json, "],\"head\":\"");
	cr_assert_not_null(at, "%s", json);
	at += strlen("],\"head\":\"");
	const char *end = strchr(at, '"');
	cr_assert_not_null(end);
	cr_assert_lt((size_t)(end - at), (size_t)CHAIN_TEXT_SIZE);
	memcpy(head, at, (size_t)(end - at));
	head[end - at] = '\0';
}

Test(replay_archive, verify_goes_on_from_the_kept_head, .timeout = 300)
{
	make_data();
	/* The head the server wrote at its stop: the newest line of
	 * chain-heads, and the head file of the newest snapshot. */
	char path[256], line[256], last[CHAIN_TEXT_SIZE] = "";
	snprintf(path, sizeof(path), "%s/chain-heads", data_dir);
	FILE *heads = fopen(path, "r");
	cr_assert_not_null(heads);
	while (fgets(line, sizeof(line), heads) != NULL)
		snprintf(last, sizeof(last), "%.*s", (int)strcspn(line, " \n"), line);
	fclose(heads);
	snprintf(path, sizeof(path), "%s/snapshots/snapshot-%016" PRIx64 ".head", data_dir,
	         events_total);
	char file_head[256];
	command_read_file(path, file_head, sizeof(file_head));
	file_head[strcspn(file_head, "\n")] = '\0';
	cr_assert_str_eq(last, file_head);
	char want[32];
	snprintf(want, sizeof(want), "%" PRIu64 ":", events_total);
	cr_assert(strncmp(last, want, strlen(want)) == 0, "%s", last);

	/* Without the archive: from the head kept with the boundary snapshot. */
	struct command_run *run =
	        expect(0, "verify", data_dir, "--config", server.config, "--json");
	contains(run->out, "\"head_start\":{\"file\":");
	char partial[CHAIN_TEXT_SIZE], whole[CHAIN_TEXT_SIZE];
	head_of(run->out, partial);
	cr_assert_str_eq(partial, last);
	/* With it: the whole log from head_0, the same head. */
	run = expect(0, "verify", data_dir, "--archive", archive_dir, "--config", server.config,
	             "--json");
	contains(run->out, "\"head_start\":null");
	head_of(run->out, whole);
	cr_assert_str_eq(whole, last);
	/* The kept head proves the log up to it without the archive, and a
	 * changed one fails. */
	run = expect(0, "verify", data_dir, "--config", server.config, "--head", last);
	contains(run->out, "head from  ");
	contains(run->out, "--head     ");
	last[strlen(last) - 1] = last[strlen(last) - 1] == '0' ? '1' : '0';
	run = expect(1, "verify", data_dir, "--config", server.config, "--head", last);
	contains(run->err, "does not match");
	/* A --head before the kept one cannot be checked without the archive. */
	run = expect(1, "verify", data_dir, "--config", server.config, "--head",
	             "20:"
	             "0000000000000000000000000000000000000000000000000000000000000000");
	contains(run->err, "is before the head the chain starts from");
}
