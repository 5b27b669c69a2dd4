/*
 * test_server_disk.c — the disk-error path of the real server: an error
 * from the log is never retried and never acknowledged, the server stops
 * with status 3 and a message naming the failure, and a restart recovers
 * from the log what is really there.
 *
 * How the error is made: the data directory is a tmpfs of TMPFS_SIZE
 * (mounted by the test, so it must run as root: CI does; as anyone else the
 * test fails saying so) and segment_bytes is 1 MiB. Segments are
 * pre-allocated whole (fallocate), so the first two fit and the creation of
 * the third fails with ENOSPC while CLIENTS clients keep submitting
 * pipelined requests of EVENTS_PER_REQUEST RECEIVE events, each event with
 * its own idempotency key.
 *
 * What is checked:
 *   - skuld exits with status 3, and its stderr names the failure (fatal,
 *     segment creation, ENOSPC's text);
 *   - the log is copied out of the tmpfs to an ordinary directory and a
 *     server started there recovers it (a larger disk, as an operator would);
 *   - every request a client got a reply for is there: REGISTER's
 *     request_next is past it, and each client's on_hand is exactly
 *     EVENTS_PER_REQUEST x the requests applied (nothing half-applied);
 *   - every request sent, acknowledged or not, is sent again with the same
 *     keys from a new session: a request below request_next answers
 *     REPLAYED for every event, any other applies now for every event
 *     (never some of each);
 *   - the recovered log, read with log_reader, holds each applied request of
 *     the first run exactly once, numbered 1..request_next - 1, whole.
 * The tmpfs is unmounted and the directories removed on every path (the
 * Criterion fini hook), the servers die with the test (PR_SET_PDEATHSIG).
 */
#include "server_harness.h"

#include <inttypes.h>
#include <sys/mount.h>

#include "log.h"

#define TMPFS_SIZE         "2560k" /* two 1 MiB segments and change */
#define CLIENTS            3
#define DEPTH              4  /* requests in flight per client */
#define EVENTS_PER_REQUEST 64 /* about 10 KiB per log record */
#define REQUESTS_MAX       2000
#define RUN_MS_MAX         30000
#define SETUP_CLIENT       999
#define AGAIN_CLIENT       700 /* + client: the session that sends everything again */

static const char *config_disk = "segment_bytes = 1m\n"
                                 "write_bytes = 128k\n"
                                 "frame_events_max = 64\n"
                                 "items_max = 16\n"
                                 "locations_max = 4\n"
                                 "channels_max = 4\n"
                                 "keys_max = 131072\n";

struct writer {
	struct client client;
	uint64_t sent_last;         /* highest request number sent (or attempted) */
	uint64_t acknowledged_last; /* highest request number answered */
	bool ended;                 /* the connection is gone */
};

static struct {
	struct server small; /* on the tmpfs */
	struct server large; /* on the copy */
	char mount[128];
	bool mounted;
	int stderr_saved;
	struct writer writers[CLIENTS];
} disk = {.stderr_saved = -1};

static void stderr_restore(void)
{
	if (disk.stderr_saved < 0)
		return;
	dup2(disk.stderr_saved, STDERR_FILENO);
	close(disk.stderr_saved);
	disk.stderr_saved = -1;
}

/* Criterion's fini: runs however the test ended. */
static void disk_cleanup(void)
{
	stderr_restore();
	for (uint32_t i = 0; i < CLIENTS; i++)
		client_close(&disk.writers[i].client);
	server_kill(&disk.small);
	server_kill(&disk.large);
	if (disk.mounted && umount2(disk.mount, 0) != 0 && umount2(disk.mount, MNT_DETACH) != 0)
		fprintf(stderr, "test_server_disk: umount %s: %s\n", disk.mount, strerror(errno));
	disk.mounted = false;
	if (disk.small.dir[0] != '\0')
		remove_tree(disk.small.dir);
	if (disk.large.dir[0] != '\0')
		remove_tree(disk.large.dir);
	memset(&disk.small, 0, sizeof(disk.small));
	memset(&disk.large, 0, sizeof(disk.large));
}

/* Starts the server with its stderr going to DIR/stderr (and not to ours). */
static void server_start_logged(struct server *server)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/stderr", server->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	disk.stderr_saved = dup(STDERR_FILENO);
	cr_assert_geq(disk.stderr_saved, 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	server_start(server);
	stderr_restore();
}

static void text_read(const char *path, char *text, size_t size)
{
	text[0] = '\0';
	FILE *file = fopen(path, "r");
	cr_assert_not_null(file, "%s: %s", path, strerror(errno));
	size_t got = fread(text, 1, size - 1, file);
	text[got] = '\0';
	fclose(file);
}

/* ---- The requests ------------------------------------------------------------ */

/* Request `request` of client `writer`: RECEIVE 1 of item writer + 1 at
 * location 1, EVENTS_PER_REQUEST times, each under its own key. */
static void request_events(uint32_t writer, uint64_t request, struct skuld_event *events)
{
	for (uint32_t i = 0; i < EVENTS_PER_REQUEST; i++) {
		events[i] = event_stock(SKULD_RECEIVE, writer + 1, 1, 1,
		                        request * EVENTS_PER_REQUEST + i);
		events[i].key.hi = 0xd15c000000ull + writer;
	}
}

static void catalog_setup(uint16_t port)
{
	struct client setup;
	cr_assert_eq(client_open(&setup, port, client_id(SETUP_CLIENT)), 0);
	struct skuld_event events[CLIENTS + 1];
	struct skuld_result results[CLIENTS + 1];
	for (uint32_t i = 0; i < CLIENTS; i++)
		events[i] = event_item(i + 1, 100 + i);
	events[CLIENTS] = event_location(1, 200);
	cr_assert_eq(client_submit(&setup, events, CLIENTS + 1, results, NULL), 0);
	for (uint32_t i = 0; i <= CLIENTS; i++)
		cr_assert_eq(results[i].status, SKULD_OK);
	client_close(&setup);
}

/* Reads one reply of writer; false when the connection ended. */
static bool writer_read(struct writer *writer)
{
	static struct reply reply;
	if (frame_read(writer->client.fd, &reply) != 0)
		return false;
	const struct skuld_header *header = reply_header(&reply);
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT, "operation %u (%s)", header->operation,
	             skuld_status_name(header->result));
	cr_assert_eq(header->request, writer->acknowledged_last + 1, "replies out of order");
	cr_assert_eq(header->count, EVENTS_PER_REQUEST);
	const struct skuld_result *results = reply_body(&reply);
	for (uint32_t i = 0; i < EVENTS_PER_REQUEST; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "request %" PRIu64 " event %u: %s",
		             header->request, i, skuld_status_name(results[i].status));
	writer->acknowledged_last = header->request;
	return true;
}

/* Every client keeps DEPTH requests in flight until its connection ends
 * (the server stopped). Bounded by REQUESTS_MAX per client and RUN_MS_MAX. */
static void submit_until_the_server_stops(void)
{
	struct skuld_event events[EVENTS_PER_REQUEST];
	uint64_t deadline = harness_now_ms() + RUN_MS_MAX;
	uint32_t ended = 0;
	while (ended < CLIENTS) {
		cr_assert_lt(harness_now_ms(), deadline, "the server did not stop in %d ms",
		             RUN_MS_MAX);
		struct pollfd polls[CLIENTS];
		for (uint32_t i = 0; i < CLIENTS; i++) {
			struct writer *writer = &disk.writers[i];
			polls[i] = (struct pollfd){.fd = writer->client.fd, .events = POLLIN};
			while (!writer->ended &&
			       writer->sent_last - writer->acknowledged_last < DEPTH) {
				cr_assert_lt(writer->sent_last, REQUESTS_MAX,
				             "the disk never filled up");
				uint64_t request = ++writer->sent_last;
				request_events(i, request, events);
				if (client_submit_send(&writer->client, request, events,
				                       EVENTS_PER_REQUEST) != 0)
					writer->ended = true;
			}
			if (writer->ended)
				polls[i].fd = -1;
		}
		if (poll(polls, CLIENTS, 100) <= 0)
			continue;
		for (uint32_t i = 0; i < CLIENTS; i++) {
			struct writer *writer = &disk.writers[i];
			if (polls[i].revents != 0 && !writer->ended && !writer_read(writer))
				writer->ended = true;
		}
		ended = 0;
		for (uint32_t i = 0; i < CLIENTS; i++)
			ended += disk.writers[i].ended;
	}
}

/* ---- After the failure ----------------------------------------------------------- */

/* Copies every file of from into to (made). */
static void directory_copy(const char *from, const char *to)
{
	cr_assert_eq(mkdir(to, 0755), 0, "mkdir %s: %s", to, strerror(errno));
	DIR *dir = opendir(from);
	cr_assert_not_null(dir, "%s: %s", from, strerror(errno));
	struct dirent *entry;
	static uint8_t buffer[1u << 16];
	while ((entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		char source[512];
		char target[512];
		snprintf(source, sizeof(source), "%s/%s", from, entry->d_name);
		snprintf(target, sizeof(target), "%s/%s", to, entry->d_name);
		int in = open(source, O_RDONLY | O_CLOEXEC);
		int out = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		cr_assert(in >= 0 && out >= 0, "copy %s: %s", source, strerror(errno));
		ssize_t got;
		while ((got = read(in, buffer, sizeof(buffer))) > 0)
			cr_assert_eq(write(out, buffer, (size_t)got), got);
		cr_assert_eq(got, 0);
		cr_assert_eq(fsync(out), 0);
		close(in);
		close(out);
	}
	closedir(dir);
}

/* Every request sent, again, from a new session with the same keys: all
 * REPLAYED below applied_next, all applied now from there on. */
static void send_everything_again(uint32_t writer_index, uint64_t applied_next)
{
	const struct writer *writer = &disk.writers[writer_index];
	struct client again;
	cr_assert_eq(client_open(&again, disk.large.port, client_id(AGAIN_CLIENT + writer_index)),
	             0);
	struct skuld_event events[EVENTS_PER_REQUEST];
	struct skuld_result results[EVENTS_PER_REQUEST];
	for (uint64_t request = 1; request <= writer->sent_last; request++) {
		request_events(writer_index, request, events);
		cr_assert_eq(client_submit(&again, events, EVENTS_PER_REQUEST, results, NULL), 0);
		bool applied = request < applied_next;
		for (uint32_t i = 0; i < EVENTS_PER_REQUEST; i++) {
			bool replayed = (results[i].flags & SKULD_RESULT_REPLAYED) != 0;
			cr_assert(results[i].status == SKULD_OK && replayed == applied,
			          "client %u request %" PRIu64 " event %u: %s%s, but the request "
			          "was %s",
			          writer_index, request, i, skuld_status_name(results[i].status),
			          replayed ? " REPLAYED" : "", applied ? "applied" : "not applied");
		}
	}
	client_close(&again);
}

/* The recovered log: client records of the first run numbered 1..n - 1 per
 * client, each once and whole. */
static void log_expect(const char *dir, const uint64_t *applied_next)
{
	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, dir, NULL), 0);
	uint64_t seen[CLIENTS] = {0};
	struct log_record record;
	enum log_status status;
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
		const struct log_record_header *header = record.header;
		for (uint32_t i = 0; i < CLIENTS; i++) {
			if (!skuld_u128_equal(header->client, disk.writers[i].client.id))
				continue;
			cr_assert_eq(header->request, seen[i] + 1,
			             "client %u: request %" PRIu64 " after %" PRIu64, i,
			             header->request, seen[i]);
			seen[i] = header->request;
			cr_assert_eq(header->count, EVENTS_PER_REQUEST);
			struct skuld_event events[EVENTS_PER_REQUEST];
			request_events(i, header->request, events);
			cr_assert(memcmp(record.events, events, sizeof(events)) == 0);
		}
	}
	cr_assert_eq(status, LOG_END_CLEAN, "%s", log_reader_outcome(reader)->reason);
	log_reader_close(reader);
	for (uint32_t i = 0; i < CLIENTS; i++)
		cr_assert_eq(seen[i] + 1, applied_next[i], "client %u", i);
}

Test(server_disk, enospc_stops_with_status_3_and_a_restart_recovers, .timeout = 120,
     .fini = disk_cleanup)
{
	cr_assert_eq(geteuid(), 0,
	             "test_server_disk must run as root: it mounts a tmpfs to fill the disk "
	             "(CI runs it as root)");
	server_init(&disk.small, config_disk);
	snprintf(disk.mount, sizeof(disk.mount), "%s/data", disk.small.dir);
	cr_assert_eq(mkdir(disk.mount, 0700), 0);
	cr_assert_eq(mount("tmpfs", disk.mount, "tmpfs", 0, "size=" TMPFS_SIZE ",mode=0700"), 0,
	             "mount -t tmpfs %s: %s", disk.mount, strerror(errno));
	disk.mounted = true;

	server_start_logged(&disk.small);
	catalog_setup(disk.small.port);
	for (uint32_t i = 0; i < CLIENTS; i++)
		cr_assert_eq(
		        client_open(&disk.writers[i].client, disk.small.port, client_id(i + 1)), 0);
	submit_until_the_server_stops();
	cr_assert_eq(server_wait(&disk.small), 3, "a failed segment creation must exit 3");
	char path[256];
	static char text[16384];
	snprintf(path, sizeof(path), "%s/stderr", disk.small.dir);
	text_read(path, text, sizeof(text));
	const char *fatal = strstr(text, "fatal: log segment creation");
	cr_assert(fatal != NULL && strstr(fatal, strerror(ENOSPC)) != NULL,
	          "stderr does not name the failure:\n%s", text);
	fprintf(stderr, "server disk: skuld said: %.*s\n", (int)strcspn(fatal, "\n"), fatal);
	uint64_t acknowledged = 0;
	for (uint32_t i = 0; i < CLIENTS; i++)
		acknowledged += disk.writers[i].acknowledged_last;
	cr_assert_gt(acknowledged, 0, "nothing was acknowledged before the disk filled up");

	/* The log, out of the tmpfs, on an ordinary disk. */
	server_init(&disk.large, config_disk);
	char from[256];
	char to[256];
	snprintf(from, sizeof(from), "%s/log", disk.mount);
	snprintf(to, sizeof(to), "%s/data", disk.large.dir);
	cr_assert_eq(mkdir(to, 0700), 0);
	snprintf(to, sizeof(to), "%s/data/log", disk.large.dir);
	directory_copy(from, to);
	cr_assert_eq(umount2(disk.mount, 0), 0, "umount %s: %s", disk.mount, strerror(errno));
	disk.mounted = false;
	server_start_logged(&disk.large);

	uint64_t applied_next[CLIENTS];
	for (uint32_t i = 0; i < CLIENTS; i++) {
		struct writer *writer = &disk.writers[i];
		client_close(&writer->client);
		cr_assert_eq(client_open(&writer->client, disk.large.port, client_id(i + 1)), 0);
		applied_next[i] = writer->client.request_next;
		cr_assert_gt(applied_next[i], writer->acknowledged_last,
		             "client %u: request %" PRIu64 " was acknowledged and is lost", i,
		             writer->acknowledged_last);
		cr_assert_leq(applied_next[i], writer->sent_last + 1);
		int64_t on_hand = client_level(&writer->client, i + 1, 1).on_hand;
		cr_assert_eq(on_hand, (int64_t)(applied_next[i] - 1) * EVENTS_PER_REQUEST,
		             "client %u: on_hand %" PRId64 " for %" PRIu64 " requests applied", i,
		             on_hand, applied_next[i] - 1);
		send_everything_again(i, applied_next[i]);
		on_hand = client_level(&writer->client, i + 1, 1).on_hand;
		cr_assert_eq(on_hand, (int64_t)writer->sent_last * EVENTS_PER_REQUEST);
		client_close(&writer->client);
	}
	cr_assert_eq(server_stop(&disk.large), 0);
	log_expect(to, applied_next);
	fprintf(stderr,
	        "server disk: exit 3 after %" PRIu64 " acknowledged requests; recovered, per "
	        "client (sent / acknowledged / applied):",
	        acknowledged);
	for (uint32_t i = 0; i < CLIENTS; i++)
		fprintf(stderr, " %" PRIu64 "/%" PRIu64 "/%" PRIu64, disk.writers[i].sent_last,
		        disk.writers[i].acknowledged_last, applied_next[i] - 1);
	fprintf(stderr, "\n");
}
