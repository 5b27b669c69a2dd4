/*
 * test_server_corrupt.c — corruption fixtures through the real server: a
 * log of several segments is made by a real server (setup, then REQUESTS
 * acknowledged SUBMITs, then SIGTERM), its snapshots removed (so start-up
 * replays the whole log: damage before the newest valid snapshot is not
 * read at start-up), damaged on disk, and the server is started on it
 * again. Each case has the outcome docs/OPERATIONS.md ("Recovery
 * outcomes") documents:
 *
 *   - a bit flipped inside a write in the middle of a segment (writes of
 *     the log follow it): start-up refuses, exit 2, naming the segment file
 *     and the offset of the damaged write;
 *   - a bit flipped in the zero bytes after the last write of a segment
 *     that is not the last: refused, exit 2, the offset where the next
 *     write would have started;
 *   - a bit flipped in a segment header: refused, exit 2, offset 0;
 *   - a segment truncated (to a block boundary, or mid-block): refused,
 *     exit 2, offset 0, "size";
 *   - a segment missing between others: refused, exit 2, naming the
 *     segment after the gap ("segment N is missing");
 *   - the first segment missing (no snapshot covers what it held):
 *     refused, exit 2, "a segment before the first one present is
 *     missing";
 *   - a bit flipped in the last write of the last segment: this is what a
 *     torn last write looks like, so the server starts, warns naming file
 *     and offset, and that write's requests are gone (the format cannot
 *     tell the two apart; this is why the test puts it on record).
 * Nothing is served in the refused cases (the port file is not written).
 */
#include "server_harness.h"

#include <inttypes.h>

#include "log.h"

#define REQUESTS       60 /* acknowledged SUBMITs after the setup */
#define EVENTS         32 /* RECEIVE events each: one write of 8 KiB each, 7 per segment */
#define SEGMENTS_MIN   4
#define CORRUPT_CLIENT 3

static const char *config_corrupt = "segment_bytes = 64k\n"
                                    "write_bytes = 16k\n"
                                    "frame_events_max = 32\n"
                                    "expire_batch = 32\n"
                                    "items_max = 16\n"
                                    "locations_max = 4\n"
                                    "channels_max = 4\n"
                                    "connections_max = 8\n";

static struct server fixture;

static void fixture_cleanup(void)
{
	if (fixture.dir[0] != '\0')
		server_fini(&fixture);
	memset(&fixture, 0, sizeof(fixture));
}

static void log_dir(char *out, size_t size)
{
	snprintf(out, size, "%s/data/log", fixture.dir);
}

static void segment_file(char *out, size_t size, uint64_t segment)
{
	char dir[128];
	char name[64];
	log_dir(dir, sizeof(dir));
	cr_assert_eq(log_segment_name(name, sizeof(name), segment), 0);
	snprintf(out, size, "%s/%s", dir, name);
}

static uint64_t segment_count(void)
{
	uint64_t count = 0;
	for (uint64_t segment = 1; segment < 1000; segment++) {
		char path[256];
		segment_file(path, sizeof(path), segment);
		if (access(path, F_OK) != 0)
			break;
		count = segment;
	}
	return count;
}

/* A log of several segments, written and cleanly stopped by a real server. */
static void fixture_make(void)
{
	server_init(&fixture, config_corrupt);
	server_start(&fixture);
	struct client client;
	cr_assert_eq(client_open(&client, fixture.port, client_id(CORRUPT_CLIENT)), 0);
	struct skuld_event events[EVENTS];
	struct skuld_result results[EVENTS];
	events[0] = event_item(1, 1);
	events[1] = event_location(1, 2);
	cr_assert_eq(client_submit(&client, events, 2, results, NULL), 0);
	for (uint32_t request = 0; request < REQUESTS; request++) {
		for (uint32_t i = 0; i < EVENTS; i++)
			events[i] =
			        event_stock(SKULD_RECEIVE, 1, 1, 1, 1000 + request * EVENTS + i);
		cr_assert_eq(client_submit(&client, events, EVENTS, results, NULL), 0);
		for (uint32_t i = 0; i < EVENTS; i++)
			cr_assert_eq(results[i].status, SKULD_OK);
	}
	client_close(&client);
	cr_assert_eq(server_stop(&fixture), 0);
	/* The clean stop wrote a snapshot of everything; without it, start-up
	 * replays the whole log, which is what these cases damage. */
	char snapshots[128];
	snprintf(snapshots, sizeof(snapshots), "%s/data/snapshots", fixture.dir);
	remove_tree(snapshots);
	cr_assert_geq(segment_count(), SEGMENTS_MIN, "the fixture log has %" PRIu64 " segments",
	              segment_count());
}

/* Offsets of the writes of a segment (the chain of write headers from
 * 4096), and where its writes end. Returns how many. */
static uint32_t segment_writes(uint64_t segment, uint64_t *offsets, uint32_t max, uint64_t *end)
{
	char path[256];
	segment_file(path, sizeof(path), segment);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	uint32_t count = 0;
	uint64_t offset = LOG_BLOCK_SIZE;
	for (; count < max; count++) {
		struct log_write_header header;
		if (pread(fd, &header, sizeof(header), (off_t)offset) != (ssize_t)sizeof(header) ||
		    header.magic != LOG_WRITE_MAGIC)
			break;
		offsets[count] = offset;
		offset += (LOG_WRITE_HEADER_SIZE + header.payload_size + LOG_BLOCK_SIZE - 1) &
		          ~(uint64_t)(LOG_BLOCK_SIZE - 1);
	}
	close(fd);
	*end = offset;
	return count;
}

static void bit_flip(uint64_t segment, uint64_t offset, uint8_t mask)
{
	char path[256];
	segment_file(path, sizeof(path), segment);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t byte;
	cr_assert_eq(pread(fd, &byte, 1, (off_t)offset), 1);
	byte ^= mask;
	cr_assert_eq(pwrite(fd, &byte, 1, (off_t)offset), 1);
	close(fd);
}

/* Runs skuld on the fixture until it exits (bounded); returns its status
 * and its stderr in text. A server that starts serving instead fails the
 * test. */
static int run_to_exit(char *text, size_t size)
{
	char err_path[128];
	snprintf(err_path, sizeof(err_path), "%s/stderr", fixture.dir);
	char data_dir[96];
	snprintf(data_dir, sizeof(data_dir), "%s/data", fixture.dir);
	char port_path[128];
	snprintf(port_path, sizeof(port_path), "%s/data/port", fixture.dir);
	unlink(port_path);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open("/dev/null", O_WRONLY);
		dup2(err, STDERR_FILENO);
		dup2(null, STDOUT_FILENO);
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		execl(SKULD_BINARY_DIR "/server/skuld", "skuld", "--listen", "127.0.0.1:0",
		      "--data-dir", data_dir, "--config", fixture.config, (char *)NULL);
		_exit(98);
	}
	fixture.pid = pid;
	int status = server_wait(&fixture);
	FILE *file = fopen(err_path, "r");
	cr_assert_not_null(file);
	size_t got = fread(text, 1, size - 1, file);
	text[got] = '\0';
	fclose(file);
	cr_assert_neq(access(port_path, F_OK), 0, "the server served a damaged log:\n%s", text);
	return status;
}

/* Start-up must refuse with exit 2 and "log corrupt in FILE at offset N". */
static void expect_refusal(uint64_t segment, uint64_t offset, const char *reason)
{
	static char text[16384];
	int status = run_to_exit(text, sizeof(text));
	char file[256];
	segment_file(file, sizeof(file), segment);
	char expected[400];
	snprintf(expected, sizeof(expected), "log corrupt in %s at offset %" PRIu64 ": ", file,
	         offset);
	const char *at = strstr(text, expected);
	cr_assert_eq(status, 2, "exit %d, expected 2:\n%s", status, text);
	cr_assert_not_null(at, "expected '%s%s', stderr:\n%s", expected, reason, text);
	cr_assert_not_null(strstr(at, reason), "expected '%s%s', stderr:\n%s", expected, reason,
	                   text);
	fprintf(stderr, "server corrupt: %.*s\n", (int)strcspn(text, "\n"),
	        strstr(text, "skuld: recovery failed") != NULL
	                ? strstr(text, "skuld: recovery failed")
	                : text);
}

TestSuite(server_corrupt, .fini = fixture_cleanup, .timeout = 60);

Test(server_corrupt, bit_flip_mid_segment_is_refused_naming_file_and_offset)
{
	fixture_make();
	uint64_t writes[64];
	uint64_t end;
	uint32_t count = segment_writes(2, writes, 64, &end);
	cr_assert_geq(count, 3);
	uint64_t target = writes[count / 2];
	/* Inside the payload, among the events of the write's first record. */
	bit_flip(2, target + LOG_WRITE_HEADER_SIZE + LOG_RECORD_HEADER_SIZE + 300, 0x10);
	expect_refusal(2, target, "payload checksum mismatch");
}

Test(server_corrupt, bit_flip_in_a_write_header_is_refused)
{
	fixture_make();
	uint64_t writes[64];
	uint64_t end;
	uint32_t count = segment_writes(2, writes, 64, &end);
	cr_assert_geq(count, 3);
	bit_flip(2, writes[1] + 9, 0x01); /* the sequence field */
	expect_refusal(2, writes[1], "write header is not valid, and segment 3 follows");
}

Test(server_corrupt, bit_flip_after_a_segments_last_write_is_refused)
{
	fixture_make();
	uint64_t writes[64];
	uint64_t end;
	segment_writes(2, writes, 64, &end);
	char path[256];
	segment_file(path, sizeof(path), 2);
	struct stat status;
	cr_assert_eq(stat(path, &status), 0);
	cr_assert_lt(end + 100, (uint64_t)status.st_size, "segment 2 is full");
	bit_flip(2, end + 100, 0x04);
	expect_refusal(2, end, "segment 3 follows");
}

Test(server_corrupt, bit_flip_in_a_segment_header_is_refused_at_offset_0)
{
	fixture_make();
	bit_flip(2, 40, 0x02); /* event_first */
	expect_refusal(2, 0, "checksum mismatch");
}

Test(server_corrupt, truncated_segment_is_refused)
{
	fixture_make();
	char path[256];
	segment_file(path, sizeof(path), 2);
	cr_assert_eq(truncate(path, 32 * 1024), 0);
	expect_refusal(2, 0, "size");
}

Test(server_corrupt, segment_truncated_mid_block_is_refused)
{
	fixture_make();
	uint64_t last = segment_count();
	char path[256];
	segment_file(path, sizeof(path), last);
	cr_assert_eq(truncate(path, 3 * LOG_BLOCK_SIZE + 100), 0);
	expect_refusal(last, 0, "size");
}

Test(server_corrupt, missing_segment_between_others_is_refused)
{
	fixture_make();
	char path[256];
	segment_file(path, sizeof(path), 2);
	cr_assert_eq(unlink(path), 0);
	expect_refusal(3, 0, "segment 2 is missing");
}

Test(server_corrupt, missing_first_segment_is_refused)
{
	fixture_make();
	char path[256];
	segment_file(path, sizeof(path), 1);
	cr_assert_eq(unlink(path), 0);
	static char text[16384];
	int status = run_to_exit(text, sizeof(text));
	cr_assert_eq(status, 2, "exit %d, expected 2:\n%s", status, text);
	const char *failed = strstr(text, "skuld: recovery failed");
	cr_assert_not_null(failed, "%s", text);
	cr_assert_not_null(strstr(failed, "a segment before the first one present is missing"),
	                   "%s", failed);
	fprintf(stderr, "server corrupt: %.*s\n", (int)strcspn(failed, "\n"), failed);
}

Test(server_corrupt, bit_flip_in_the_last_write_reads_as_torn)
{
	fixture_make();
	uint64_t last = segment_count();
	uint64_t writes[64];
	uint64_t end;
	uint32_t count = segment_writes(last, writes, 64, &end);
	cr_assert_geq(count, 1);
	uint64_t target = writes[count - 1];
	bit_flip(last, target + LOG_WRITE_HEADER_SIZE + LOG_RECORD_HEADER_SIZE + 10, 0x80);
	char err_path[128];
	snprintf(err_path, sizeof(err_path), "%s/stderr", fixture.dir);
	int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int saved = dup(STDERR_FILENO);
	dup2(err, STDERR_FILENO);
	close(err);
	server_start(&fixture);
	dup2(saved, STDERR_FILENO);
	close(saved);
	struct client client;
	cr_assert_eq(client_open(&client, fixture.port, client_id(CORRUPT_CLIENT)), 0);
	/* The last request (REQUESTS + 1 with the setup) was in that write. */
	cr_assert_eq(client.request_next, REQUESTS + 1);
	client_close(&client);
	cr_assert_eq(server_stop(&fixture), 0);
	static char text[16384];
	FILE *file = fopen(err_path, "r");
	cr_assert_not_null(file);
	text[fread(text, 1, sizeof(text) - 1, file)] = '\0';
	fclose(file);
	char file_name[256];
	segment_file(file_name, sizeof(file_name), last);
	char expected[400];
	snprintf(expected, sizeof(expected),
	         "the last log write in %s at offset %" PRIu64 " is torn", file_name, target);
	cr_assert_not_null(strstr(text, expected), "expected '%s', stderr:\n%s", expected, text);
}

/* The operator's option: with --recover-to-damage the server moves the
 * damaged write and everything after it aside (DATA_DIR/damaged-*), starts
 * from the intact part, serves, and restarts cleanly without the option. */
Test(server_corrupt, recover_to_damage_starts_from_the_intact_part)
{
	fixture_make();
	uint64_t writes[64], end;
	uint32_t first = segment_writes(1, writes, 64, &end);
	uint32_t count = segment_writes(2, writes, 64, &end);
	cr_assert_geq(count, 3);
	uint64_t segments = segment_count();
	bit_flip(2, writes[count / 2] + LOG_WRITE_HEADER_SIZE + LOG_RECORD_HEADER_SIZE + 300, 0x10);
	/* One request per write; the first write of segment 1 is the setup. */
	int64_t intact = (int64_t)EVENTS * ((first - 1) + count / 2);

	fixture.flag = "--recover-to-damage";
	server_start(&fixture);
	struct client client;
	cr_assert_eq(client_open(&client, fixture.port, client_id(CORRUPT_CLIENT + 1)), 0);
	struct skuld_level_record level = client_level(&client, 1, 1);
	cr_assert_eq(level.on_hand, intact, "on hand %" PRId64 ", the intact writes hold %" PRId64,
	             level.on_hand, intact);
	struct skuld_event event = event_stock(SKULD_RECEIVE, 1, 1, 5, 99999);
	struct skuld_result result;
	cr_assert_eq(client_submit(&client, &event, 1, &result, NULL), 0);
	cr_assert_eq(result.status, SKULD_OK);
	client_close(&client);
	cr_assert_eq(server_stop(&fixture), 0);

	/* What was moved aside: a copy of segment 2 and every later segment. */
	char data[96];
	snprintf(data, sizeof(data), "%s/data", fixture.dir);
	DIR *dir = opendir(data);
	cr_assert_not_null(dir);
	char aside[96 + 1 + 256] = "";
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL)
		if (strncmp(entry->d_name, "damaged-", 8) == 0)
			snprintf(aside, sizeof(aside), "%s/%s", data, entry->d_name);
	closedir(dir);
	cr_assert_neq(aside[0], '\0', "no damaged-* directory in %s", data);
	for (uint64_t segment = 2; segment <= segments; segment++) {
		char name[64], path[sizeof(aside) + 64];
		log_segment_name(name, sizeof(name), segment);
		snprintf(path, sizeof(path), "%s/%s", aside, name);
		cr_assert_eq(access(path, F_OK), 0, "%s was not moved aside", path);
	}

	fixture.flag = NULL;
	server_start(&fixture);
	cr_assert_eq(client_open(&client, fixture.port, client_id(CORRUPT_CLIENT + 2)), 0);
	level = client_level(&client, 1, 1);
	cr_assert_eq(level.on_hand, intact + 5);
	client_close(&client);
	cr_assert_eq(server_stop(&fixture), 0);
}
