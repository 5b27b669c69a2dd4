/*
 * test_server_snapshot.c — snapshots through the real server (server/snapshot.c,
 * server/recovery.c): taken in the background under load, at a clean stop,
 * and used at start-up.
 *
 * What is checked:
 *   - Under load (snapshot_events small) the server takes snapshots in the
 *     background and answers every request meanwhile; it keeps exactly
 *     snapshot_keep of them; a temporary file a dead writer left is removed.
 *   - A restart recovers from the newest snapshot plus the log after it:
 *     every level, hold and channel quantity answers as before the restart;
 *     the state equals a full replay of the log (ledger_hash, computed in
 *     this process through the server's own recovery code on the same data
 *     directory, with and without the snapshots).
 *   - A damaged newest snapshot (one flipped byte) is skipped with a warning
 *     naming the file and why, and the previous one is used with a longer
 *     replay; with every snapshot damaged, or taken with other ledger
 *     capacities, the whole log is replayed. The answers never change.
 *   - A request retried after a restart from a snapshot (its record in an
 *     older log segment than the snapshot's position) gets its saved reply,
 *     byte for byte.
 * Every wait is bounded; nothing asserts on time.
 */
#include "server_harness.h"

#include <inttypes.h>

#include "chain.h"
#include "config.h"
#include "ledger.h"
#include "recovery.h"
#include "service.h"
#include "snapshot.h"

#define ITEMS     12u
#define LOCATIONS 3u
#define CLIENTS   2u
#define PER_REQ   16u
#define TTL_S     3600u
#define WAIT_MS   20000u
#define HOLDS_MAX (CLIENTS * 256u * 4u)

static const char *config_base = "items_max = 16\n"
                                 "locations_max = 4\n"
                                 "channels_max = 2\n"
                                 "frame_events_max = 64\n"
                                 "segment_bytes = 256k\n"
                                 "write_bytes = 64k\n"
                                 "snapshot_interval_s = 0\n"
                                 "snapshot_keep = 2\n";

static struct {
	struct server server;
	int stderr_saved;
	uint64_t request_count[CLIENTS]; /* workload requests sent per client */
} bed = {.stderr_saved = -1};

static void stderr_restore(void)
{
	if (bed.stderr_saved < 0)
		return;
	dup2(bed.stderr_saved, STDERR_FILENO);
	close(bed.stderr_saved);
	bed.stderr_saved = -1;
}

/* SKULD_SNAPSHOT_VERBOSE=1 prints what the servers said. */
static const char *stderr_text(void);

static void bed_cleanup(void)
{
	stderr_restore();
	if (bed.server.dir[0] != '\0' && getenv("SKULD_SNAPSHOT_VERBOSE") != NULL) {
		server_kill(&bed.server);
		fprintf(stderr, "---- %s/stderr\n%s", bed.server.dir, stderr_text());
	}
	if (bed.server.dir[0] != '\0')
		server_fini(&bed.server);
	memset(&bed, 0, sizeof(bed));
	bed.stderr_saved = -1;
}

/* Rewrites the server's config file: the base plus extra lines. */
static void config_write(const char *extra)
{
	FILE *file = fopen(bed.server.config, "w");
	cr_assert_not_null(file);
	fprintf(file, "%s%s\n", config_base, extra);
	fclose(file);
}

/* Starts the server with its stderr appended to DIR/stderr. */
static void start(void)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/stderr", bed.server.dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	bed.stderr_saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	server_start(&bed.server);
	stderr_restore();
}

/* The server's stderr so far (static buffer), and its length at a mark. */
static const char *stderr_text(void)
{
	static char text[1 << 20];
	char path[160];
	snprintf(path, sizeof(path), "%s/stderr", bed.server.dir);
	FILE *file = fopen(path, "r");
	cr_assert_not_null(file);
	size_t got = fread(text, 1, sizeof(text) - 1, file);
	text[got] = '\0';
	fclose(file);
	return text;
}

static size_t stderr_mark(void)
{
	return strlen(stderr_text());
}

/* Occurrences of needle in the server's stderr after mark. */
static uint32_t stderr_count(size_t mark, const char *needle)
{
	const char *text = stderr_text() + mark;
	uint32_t count = 0;
	while ((text = strstr(text, needle)) != NULL) {
		count++;
		text += strlen(needle);
	}
	return count;
}

static void snapshot_dir(char *path, size_t size)
{
	snprintf(path, size, "%s/data/snapshots", bed.server.dir);
}

static void log_dir(char *path, size_t size)
{
	snprintf(path, size, "%s/data/log", bed.server.dir);
}

/* Snapshot numbers (newest first) in the data directory. */
static uint32_t snapshots(uint64_t *numbers, uint32_t max)
{
	char dir[128];
	snapshot_dir(dir, sizeof(dir));
	uint64_t *list = NULL;
	uint32_t count = 0;
	cr_assert_eq(snapshot_list(dir, &list, &count), 0);
	for (uint32_t i = 0; i < count && i < max; i++)
		numbers[i] = list[i];
	free(list);
	return count;
}

static void snapshot_file(char *path, size_t size, uint64_t number)
{
	char dir[128];
	char name[SNAPSHOT_NAME_SIZE];
	snapshot_dir(dir, sizeof(dir));
	cr_assert_eq(snapshot_name(name, sizeof(name), number, ".sks"), 0);
	snprintf(path, size, "%s/%s", dir, name);
}

/* ---- The workload ------------------------------------------------------------ */

static uint64_t hold_id(uint32_t client, uint64_t request, uint32_t index)
{
	return (uint64_t)(client + 1) << 40 | request << 8 | index;
}

static void catalog_setup(uint16_t port)
{
	struct client setup;
	cr_assert_eq(client_open(&setup, port, client_id(900)), 0);
	struct skuld_event events[64];
	struct skuld_result results[64];
	uint32_t count = 0;
	for (uint32_t item = 1; item <= ITEMS; item++)
		events[count++] = event_item(item, 1000 + item);
	for (uint32_t location = 1; location <= LOCATIONS; location++)
		events[count++] = event_location(location, 2000 + location);
	struct skuld_event channel = event_make(SKULD_CHANNEL_DEFINE, 3000, 5);
	channel.channel = 1;
	channel.quantity = 2;
	snprintf(channel.code, sizeof(channel.code), "web");
	events[count++] = channel;
	for (uint32_t location = 1; location <= 2; location++) {
		struct skuld_event pool = event_make(SKULD_CHANNEL_POOL, 3000 + location, 5);
		pool.channel = 1;
		pool.location = location;
		events[count++] = pool;
	}
	cr_assert_eq(client_submit(&setup, events, count, results, NULL), 0);
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "setup event %u: %s", i,
		             skuld_status_name(results[i].status));
	count = 0;
	for (uint32_t item = 1; item <= ITEMS; item++) {
		for (uint32_t location = 1; location <= LOCATIONS; location++)
			events[count++] = event_stock(SKULD_RECEIVE, item, location, 40,
			                              4000 + item * 16 + location);
	}
	cr_assert_eq(client_submit(&setup, events, count, results, NULL), 0);
	client_close(&setup);
}

/* Request `request` of client: receipts, sales, holds placed, and the
 * holds of the request before committed or released. */
static void request_events(uint32_t client, uint64_t request, struct skuld_event *events)
{
	for (uint32_t i = 0; i < PER_REQ; i++) {
		uint32_t item = 1 + (uint32_t)((request * 7 + i * 3 + client) % ITEMS);
		uint32_t location = 1 + (uint32_t)((request + i + client) % LOCATIONS);
		uint64_t key = (uint64_t)(client + 1) << 48 | request << 8 | i;
		struct skuld_event *event = &events[i];
		switch (i % 8) {
		case 1:
		case 5:
			*event = event_stock(SKULD_RESERVE, item, location, 1 + i % 3, key);
			event->id = hold_id(client, request, i);
			event->ttl_s = TTL_S;
			break;
		case 2:
		case 6:
			*event = event_hold(i % 8 == 2 ? SKULD_COMMIT : SKULD_RELEASE,
			                    hold_id(client, request - 1, i - 1), key);
			break;
		case 3:
			*event = event_stock(SKULD_SALE, item, location, 1, key);
			break;
		default:
			*event = event_stock(SKULD_RECEIVE, item, location, 2, key);
			break;
		}
	}
}

/* Each client sends `requests` more requests, DEPTH pipelined; every reply
 * must come, in order, with a result per event. */
#define DEPTH 4
static void workload(uint16_t port, uint64_t requests)
{
	struct client clients[CLIENTS];
	uint64_t first[CLIENTS];
	uint64_t sent[CLIENTS];
	uint64_t answered[CLIENTS];
	for (uint32_t c = 0; c < CLIENTS; c++) {
		cr_assert_eq(client_open(&clients[c], port, client_id(c + 1)), 0);
		first[c] = clients[c].request_next;
		sent[c] = answered[c] = first[c] - 1;
	}
	uint64_t deadline = harness_now_ms() + 60000;
	static struct reply reply;
	for (;;) {
		bool done = true;
		for (uint32_t c = 0; c < CLIENTS; c++) {
			while (sent[c] - answered[c] < DEPTH && sent[c] + 1 < first[c] + requests) {
				struct skuld_event events[PER_REQ];
				request_events(c, sent[c] + 1, events);
				cr_assert_eq(client_submit_send(&clients[c], sent[c] + 1, events,
				                                PER_REQ),
				             0);
				sent[c]++;
			}
			done = done && answered[c] + 1 == first[c] + requests;
		}
		if (done)
			break;
		cr_assert_lt(harness_now_ms(), deadline, "the workload did not finish");
		for (uint32_t c = 0; c < CLIENTS; c++) {
			if (answered[c] == sent[c])
				continue;
			cr_assert_eq(frame_read(clients[c].fd, &reply), 0, "client %u: no reply",
			             c);
			const struct skuld_header *header = reply_header(&reply);
			cr_assert_eq(header->operation, SKULD_OP_SUBMIT, "client %u: %s", c,
			             skuld_status_name(header->result));
			cr_assert_eq(header->request, answered[c] + 1);
			cr_assert_eq(header->count, PER_REQ);
			answered[c]++;
		}
	}
	for (uint32_t c = 0; c < CLIENTS; c++) {
		bed.request_count[c] = sent[c];
		client_close(&clients[c]);
	}
}

/* ---- The state, as clients see it --------------------------------------------- */

struct state {
	struct skuld_level_record levels[ITEMS * LOCATIONS];
	struct skuld_level_record channel[ITEMS];
	uint32_t holds;
	struct skuld_hold_record hold[HOLDS_MAX];
	struct skuld_stats stats;
};

static void state_capture(uint16_t port, struct state *state)
{
	memset(state, 0, sizeof(*state));
	struct client client;
	cr_assert_eq(client_open(&client, port, client_id(901)), 0);
	for (uint32_t item = 1; item <= ITEMS; item++) {
		for (uint32_t location = 1; location <= LOCATIONS; location++)
			state->levels[(item - 1) * LOCATIONS + location - 1] =
			        client_level(&client, item, location);
		struct skuld_query query;
		memset(&query, 0, sizeof(query));
		query.kind = SKULD_QUERY_CHANNEL;
		query.channel = 1;
		query.item = item;
		cr_assert_eq(client_query(&client, &query, &state->channel[item - 1], 1), 1);
	}
	for (uint32_t c = 0; c < CLIENTS; c++) {
		for (uint64_t request = 1; request <= bed.request_count[c]; request++) {
			for (uint32_t i = 1; i < PER_REQ; i += 4) {
				cr_assert_lt(state->holds, HOLDS_MAX);
				struct skuld_query query;
				memset(&query, 0, sizeof(query));
				query.kind = SKULD_QUERY_HOLD;
				query.hold = hold_id(c, request, i);
				cr_assert_eq(client_query(&client, &query,
				                          &state->hold[state->holds], 1),
				             1);
				state->holds++;
			}
		}
	}
	cr_assert_eq(client_stats(&client, &state->stats), 0);
	client_close(&client);
}

static void state_expect(uint16_t port, const struct state *want, const char *when)
{
	static struct state got;
	state_capture(port, &got);
	for (uint32_t i = 0; i < ITEMS * LOCATIONS; i++)
		cr_assert(memcmp(&got.levels[i], &want->levels[i], sizeof(got.levels[i])) == 0,
		          "%s: level of item %u location %u differs", when, want->levels[i].item,
		          want->levels[i].location);
	cr_assert(memcmp(got.channel, want->channel, sizeof(got.channel)) == 0,
	          "%s: channel quantities differ", when);
	cr_assert_eq(got.holds, want->holds);
	for (uint32_t i = 0; i < want->holds; i++)
		cr_assert(memcmp(&got.hold[i], &want->hold[i], sizeof(got.hold[i])) == 0,
		          "%s: hold %" PRIx64 " differs", when, want->hold[i].hold);
	cr_assert_eq(got.stats.holds_open, want->stats.holds_open, "%s", when);
	cr_assert_eq(got.stats.event_durable, want->stats.event_durable, "%s", when);
}

/* ---- The server's recovery, in this process ------------------------------------------ */

/* A service configured as the server is (its config file), fresh. */
static struct service *service_like_server(char *log_path, size_t log_size)
{
	static struct server_config config;
	char error[CONFIG_ERROR_SIZE];
	config_defaults(&config);
	cr_assert_eq(config_load(&config, bed.server.config, error, sizeof(error)), 0, "%s", error);
	cr_assert_eq(config_finish(&config, error, sizeof(error)), 0, "%s", error);
	log_dir(log_path, log_size);
	struct service_config service_config = config_service(&config, log_path);
	struct service *service = NULL;
	cr_assert_eq(service_create(&service_config, &service), 0);
	return service;
}

/* With the server stopped: the state recovered from the snapshots plus the
 * log must hash like a replay of the whole log. Returns the snapshot used. */
static uint64_t recovery_compare(void)
{
	char log_path[128];
	char snapshots_path[128];
	char message[1024];
	snapshot_dir(snapshots_path, sizeof(snapshots_path));
	struct service *full = service_like_server(log_path, sizeof(log_path));
	struct service *fast = service_like_server(log_path, sizeof(log_path));
	struct recovery_summary whole;
	struct recovery_summary tail;
	cr_assert_eq(recovery_run(full, log_path, &whole, message, sizeof(message)), 0, "%s",
	             message);
	cr_assert_eq(recovery_run_snapshots(fast, log_path, snapshots_path, &tail, message,
	                                    sizeof(message)),
	             0, "%s", message);
	cr_assert_eq(ledger_hash(service_ledger(fast)), ledger_hash(service_ledger(full)),
	             "snapshot %016" PRIx64 " + %" PRIu64
	             " records differs from a replay of %" PRIu64 " records",
	             tail.snapshot, tail.records, whole.records);
	cr_assert(memcmp(&tail.position, &whole.position, sizeof(whole.position)) == 0,
	          "the writer would resume elsewhere");
	cr_assert_lt(tail.records, whole.records);
	service_destroy(full);
	service_destroy(fast);
	return tail.snapshot;
}

/* After a SIGKILL: the server's snapshot writer (killed with it) may still
 * finish the one system call it was in; wait (bounded) until the snapshot
 * directory stops changing. */
static void snapshots_settle(void)
{
	uint64_t before[8] = {0};
	uint64_t after[8] = {0};
	uint32_t count = snapshots(before, 8);
	for (uint32_t round = 0; round < 100; round++) {
		usleep(50000);
		uint32_t again = snapshots(after, 8);
		if (again == count && memcmp(before, after, sizeof(before)) == 0)
			return;
		count = again;
		memcpy(before, after, sizeof(before));
	}
	cr_assert_fail("the snapshot directory keeps changing after the server was killed");
}

/* More of the workload until at least count snapshots are in the directory
 * (how fast they come depends on timing; bounded). */
static void workload_until_snapshots(uint16_t port, uint32_t count)
{
	uint64_t numbers[8];
	uint64_t deadline = harness_now_ms() + WAIT_MS;
	while (snapshots(numbers, 8) < count) {
		cr_assert_lt(harness_now_ms(), deadline, "fewer than %u snapshots after %u ms",
		             count, WAIT_MS);
		workload(port, 10);
		usleep(20000);
	}
}

/* ---- Tests ------------------------------------------------------------------------ */

Test(server_snapshot, restart_recovers_from_snapshot_and_log_tail, .timeout = 180,
     .fini = bed_cleanup)
{
	server_init(&bed.server, NULL);
	config_write("snapshot_events = 300\n");
	start();
	catalog_setup(bed.server.port);
	workload(bed.server.port, 40);
	workload_until_snapshots(bed.server.port, 2);
	static struct state before;
	state_capture(bed.server.port, &before);
	cr_assert_geq(stderr_count(0, "in the background"), 2);
	server_kill(&bed.server);
	snapshots_settle();
	uint64_t used = recovery_compare();
	cr_assert_gt(used, 0);

	/* No more snapshots from here: what follows stays in the log tail. */
	config_write("snapshot_events = 0\n");
	size_t mark = stderr_mark();
	start();
	char line[128];
	snprintf(line, sizeof(line), "recovered from snapshot of events 1..%" PRIu64, used);
	cr_assert_eq(stderr_count(mark, line), 1, "%s", stderr_text() + mark);
	state_expect(bed.server.port, &before, "after a restart from the snapshot");
	workload(bed.server.port, 30);
	static struct state later;
	state_capture(bed.server.port, &later);
	server_kill(&bed.server);
	cr_assert_eq(recovery_compare(), used);

	mark = stderr_mark();
	start();
	cr_assert_eq(stderr_count(mark, line), 1, "%s", stderr_text() + mark);
	cr_assert_eq(stderr_count(mark, "then 0 records"), 0, "no log tail was replayed");
	state_expect(bed.server.port, &later, "after a restart from the snapshot and a tail");

	/* A clean stop takes one more snapshot: it covers everything. */
	cr_assert_eq(server_stop(&bed.server), 0);
	uint64_t numbers[4];
	cr_assert_geq(snapshots(numbers, 4), 1);
	cr_assert_eq(numbers[0], later.stats.event_durable,
	             "the shutdown snapshot covers %" PRIu64 " of %" PRIu64 " events", numbers[0],
	             later.stats.event_durable);
	mark = stderr_mark();
	start();
	cr_assert_eq(stderr_count(mark, "then 0 records"), 1, "%s", stderr_text() + mark);
	state_expect(bed.server.port, &later, "after a clean stop and restart");
}

Test(server_snapshot, damaged_newest_snapshot_falls_back, .timeout = 180, .fini = bed_cleanup)
{
	server_init(&bed.server, NULL);
	config_write("snapshot_events = 250\n");
	start();
	catalog_setup(bed.server.port);
	workload(bed.server.port, 40);
	workload_until_snapshots(bed.server.port, 2);
	static struct state before;
	state_capture(bed.server.port, &before);
	server_kill(&bed.server);
	snapshots_settle();
	config_write("snapshot_events = 0\n");
	uint64_t numbers[8];
	uint32_t count = snapshots(numbers, 8);
	cr_assert_geq(count, 2);
	char newest[256];
	char older[256];
	snapshot_file(newest, sizeof(newest), numbers[0]);
	snapshot_file(older, sizeof(older), numbers[1]);
	/* A writer killed with the server may have renamed one more before
	 * the server removed the oldest: keep the two newest, as it would. */
	for (uint32_t i = 2; i < count && i < 8; i++) {
		char path[256];
		snapshot_file(path, sizeof(path), numbers[i]);
		cr_assert_eq(unlink(path), 0);
	}

	/* One flipped byte in the middle of the newest. */
	int fd = open(newest, O_RDWR);
	cr_assert_geq(fd, 0);
	struct stat status;
	cr_assert_eq(fstat(fd, &status), 0);
	uint8_t byte;
	off_t middle = status.st_size / 2;
	cr_assert_eq(pread(fd, &byte, 1, middle), 1);
	byte ^= 0x10;
	cr_assert_eq(pwrite(fd, &byte, 1, middle), 1);
	close(fd);
	size_t mark = stderr_mark();
	start();
	char line[512];
	snprintf(line, sizeof(line), "snapshot %s skipped: file checksum mismatch", newest);
	cr_assert_eq(stderr_count(mark, line), 1, "%s", stderr_text() + mark);
	snprintf(line, sizeof(line), "recovered from snapshot of events 1..%" PRIu64, numbers[1]);
	cr_assert_eq(stderr_count(mark, line), 1, "%s", stderr_text() + mark);
	state_expect(bed.server.port, &before, "from the older snapshot");
	server_kill(&bed.server);

	/* Other ledger capacities: neither snapshot fits, the whole log does. */
	config_write("snapshot_events = 0\nholds_max = 5000\n");
	mark = stderr_mark();
	start();
	snprintf(line, sizeof(line), "snapshot %s skipped: taken with other ledger capacities",
	         older);
	cr_assert_eq(stderr_count(mark, line), 1, "%s", stderr_text() + mark);
	cr_assert_eq(stderr_count(mark, "recovering from the whole log"), 1);
	cr_assert_eq(stderr_count(mark, "recovered from snapshot"), 0);
	state_expect(bed.server.port, &before, "from the whole log (capacities changed)");
	server_kill(&bed.server);

	/* The older one cut short too: the whole log. */
	config_write("snapshot_events = 0\n");
	cr_assert_eq(truncate(older, 1000), 0);
	mark = stderr_mark();
	start();
	snprintf(line, sizeof(line), "snapshot %s skipped:", older);
	cr_assert_eq(stderr_count(mark, line), 1, "%s", stderr_text() + mark);
	cr_assert_eq(stderr_count(mark, "recovered from snapshot"), 0);
	state_expect(bed.server.port, &before, "from the whole log (both damaged)");
}

Test(server_snapshot, retry_after_restart_from_snapshot_gets_saved_reply, .timeout = 180,
     .fini = bed_cleanup)
{
	server_init(&bed.server, NULL);
	config_write("snapshot_events = 0\n");
	start();
	catalog_setup(bed.server.port);
	struct client till;
	cr_assert_eq(client_open(&till, bed.server.port, client_id(77)), 0);
	struct skuld_event events[PER_REQ];
	struct skuld_result saved[PER_REQ];
	request_events(5, 1, events);
	uint64_t request = till.request_next;
	cr_assert_eq(client_submit(&till, events, PER_REQ, saved, NULL), 0);
	client_close(&till);
	/* Others fill the log so that the till's record is segments behind the
	 * snapshot's position (256 KiB segments). */
	workload(bed.server.port, 120);
	cr_assert_eq(server_stop(&bed.server), 0);
	uint64_t numbers[2];
	cr_assert_eq(snapshots(numbers, 2), 1);

	size_t mark = stderr_mark();
	start();
	cr_assert_eq(stderr_count(mark, "recovered from snapshot"), 1, "%s", stderr_text() + mark);
	cr_assert_eq(stderr_count(mark, "then 0 records"), 1);
	cr_assert_eq(client_open(&till, bed.server.port, client_id(77)), 0);
	cr_assert_eq(till.request_next, request + 1, "the session was not in the snapshot");
	cr_assert_eq(client_submit_send(&till, request, events, PER_REQ), 0);
	static struct reply reply;
	cr_assert_eq(frame_read(till.fd, &reply), 0);
	const struct skuld_header *header = reply_header(&reply);
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT, "%s", skuld_status_name(header->result));
	cr_assert_eq(header->request, request);
	cr_assert_eq(header->count, PER_REQ);
	cr_assert(memcmp(reply_body(&reply), saved, sizeof(saved)) == 0,
	          "the saved reply differs from the original");
	struct skuld_stats stats;
	cr_assert_eq(client_stats(&till, &stats), 0);
	cr_assert_eq(stats.requests_retried, 1);
	client_close(&till);
}

Test(server_snapshot, snapshots_during_load_keep_answering, .timeout = 180, .fini = bed_cleanup)
{
	server_init(&bed.server, NULL);
	config_write("snapshot_events = 100\n");
	/* A temporary file of a writer that died is removed at start-up. */
	char path[256];
	snprintf(path, sizeof(path), "%s/data", bed.server.dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/data/snapshots", bed.server.dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/data/snapshots/snapshot-0000000000000007.tmp",
	         bed.server.dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	start();
	cr_assert_neq(access(path, F_OK), 0, "the stale temporary file is still there");
	cr_assert_eq(stderr_count(0, "left by a snapshot writer that died"), 1);
	catalog_setup(bed.server.port);
	/* 2 clients x 200 requests x 16 events, pipelined: a snapshot is due
	 * every 100 events, so dozens are taken while every request is
	 * answered (workload asserts each reply). */
	workload(bed.server.port, 200);
	cr_assert_eq(server_stop(&bed.server), 0);
	/* How many are taken depends on timing; that the first one due is
	 * taken while requests keep coming does not. */
	uint32_t taken = stderr_count(0, "in the background");
	uint32_t at_stop = stderr_count(0, "at shutdown");
	fprintf(stderr, "server snapshot: %u snapshots in the background under load\n", taken);
	cr_assert_geq(taken, 1, "no snapshot was taken under load");
	cr_assert_eq(stderr_count(0, "failed"), 0, "%s", stderr_text());
	uint64_t numbers[8];
	uint32_t kept = snapshots(numbers, 8);
	cr_assert_eq(kept, taken + at_stop < 2 ? taken + at_stop : 2, "snapshot_keep = 2");
	char dir_path[128];
	snapshot_dir(dir_path, sizeof(dir_path));
	DIR *dir = opendir(dir_path);
	cr_assert_not_null(dir);
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL)
		cr_assert_null(strstr(entry->d_name, ".tmp"), "%s left behind", entry->d_name);
	closedir(dir);
	uint64_t used = recovery_compare();
	cr_assert_eq(used, numbers[0]);
}

/* The live segments' names in DIR/data/log or in the archive. */
static uint32_t segment_count(const char *dir, uint64_t *lowest)
{
	DIR *handle = opendir(dir);
	cr_assert_not_null(handle, "%s: %s", dir, strerror(errno));
	uint32_t count = 0;
	*lowest = UINT64_MAX;
	struct dirent *entry;
	while ((entry = readdir(handle)) != NULL) {
		uint64_t index;
		if (sscanf(entry->d_name, "log-%16" SCNx64 ".skl", &index) != 1)
			continue;
		count++;
		if (index < *lowest)
			*lowest = index;
	}
	closedir(handle);
	return count;
}

static uint32_t archived_snapshots(const char *dir)
{
	DIR *handle = opendir(dir);
	cr_assert_not_null(handle);
	uint32_t count = 0;
	struct dirent *entry;
	while ((entry = readdir(handle)) != NULL)
		count += strncmp(entry->d_name, "snapshot-", 9) == 0 &&
		         strstr(entry->d_name, ".sks") != NULL;
	closedir(handle);
	return count;
}

/* Retention by size with an archive: old segments move to the archive with
 * the snapshot at the boundary, a restart recovers from what is left, and a
 * till whose saved reply lives in an archived segment still gets it. */
Test(server_snapshot, retention_moves_old_segments_to_the_archive, .timeout = 180,
     .fini = bed_cleanup)
{
	server_init(&bed.server, NULL);
	char archive[128], extra[256], live[160];
	snprintf(archive, sizeof(archive), "%s/archive", bed.server.dir);
	cr_assert_eq(mkdir(archive, 0755), 0);
	snprintf(extra, sizeof(extra),
	         "snapshot_events = 3000\nsnapshot_keep = 1\nretain_bytes = 512k\narchive_dir = "
	         "%s\n",
	         archive);
	config_write(extra);
	start();
	catalog_setup(bed.server.port);
	struct client till;
	cr_assert_eq(client_open(&till, bed.server.port, client_id(77)), 0);
	struct skuld_event events[PER_REQ];
	struct skuld_result saved[PER_REQ];
	request_events(5, 1, events);
	uint64_t request = till.request_next;
	cr_assert_eq(client_submit(&till, events, PER_REQ, saved, NULL), 0);
	client_close(&till);

	/* Fill the log (256 KiB segments) until retention moved some out. */
	log_dir(live, sizeof(live));
	uint64_t lowest = 0;
	uint64_t deadline = harness_now_ms() + WAIT_MS;
	while (segment_count(archive, &lowest) == 0) {
		cr_assert_lt(harness_now_ms(), deadline, "nothing archived after %u ms: %s",
		             WAIT_MS, stderr_text());
		workload(bed.server.port, 20);
		usleep(20000);
	}
	struct state before;
	state_capture(bed.server.port, &before);
	cr_assert_eq(server_stop(&bed.server), 0);

	uint64_t live_lowest = 0, archive_lowest = 0;
	uint32_t live_count = segment_count(live, &live_lowest);
	uint32_t archived = segment_count(archive, &archive_lowest);
	cr_assert_eq(archive_lowest, 1, "the oldest segment is in the archive");
	cr_assert_eq(live_lowest, archived + 1, "live segments continue the archived ones");
	cr_assert_geq(live_count, 1);
	cr_assert_geq(archived_snapshots(archive), 1, "a snapshot at the archive boundary");
	cr_assert_geq(stderr_count(0, "log retention:"), 1);

	size_t mark = stderr_mark();
	start();
	cr_assert_eq(stderr_count(mark, "recovered from snapshot"), 1, "%s", stderr_text() + mark);
	state_expect(bed.server.port, &before, "after a restart with archived segments");
	/* The till's record is in segment 1, now in the archive. */
	cr_assert_eq(client_open(&till, bed.server.port, client_id(77)), 0);
	cr_assert_eq(client_submit_send(&till, request, events, PER_REQ), 0);
	static struct reply reply;
	cr_assert_eq(frame_read(till.fd, &reply), 0);
	const struct skuld_header *header = reply_header(&reply);
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT, "%s", skuld_status_name(header->result));
	cr_assert(memcmp(reply_body(&reply), saved, sizeof(saved)) == 0,
	          "the saved reply differs from the original");
	client_close(&till);
}

/* Runs command; returns its exit status and the first line of its stdout. */
static int command_line(const char *command, char *line, size_t size)
{
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe);
	line[0] = '\0';
	if (fgets(line, (int)size, pipe) != NULL)
		line[strcspn(line, "\n")] = '\0';
	char rest[256];
	while (fgets(rest, sizeof(rest), pipe) != NULL)
		;
	int status = pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The server exports the SHA-256 chain head at each snapshot: STATS and
 * `skuldctl chain-head` show it, DATA_DIR/chain-heads keeps every one, and
 * `skuld-replay verify --head` proves the log up to it. */
Test(server_snapshot, chain_heads_are_exported_and_verify, .timeout = 180, .fini = bed_cleanup)
{
	server_init(&bed.server, NULL);
	config_write("snapshot_events = 3000\n");
	start();
	catalog_setup(bed.server.port);
	workload_until_snapshots(bed.server.port, 2);
	struct client reader;
	cr_assert_eq(client_open(&reader, bed.server.port, client_id(91)), 0);
	struct skuld_stats stats;
	uint64_t deadline = harness_now_ms() + WAIT_MS;
	do {
		cr_assert_lt(harness_now_ms(), deadline, "no chain head in STATS: %s",
		             stderr_text());
		usleep(50000);
		workload(bed.server.port, 1);
		cr_assert_eq(client_stats(&reader, &stats), 0);
	} while (stats.chain_head_event == 0);
	client_close(&reader);

	char command[1024], head[128], line[256];
	snprintf(command, sizeof(command), "%s/client/skuldctl --server 127.0.0.1:%u chain-head",
	         SKULD_BINARY_DIR, bed.server.port);
	cr_assert_eq(command_line(command, head, sizeof(head)), 0);
	char want[32];
	snprintf(want, sizeof(want), "%" PRIu64 ":", stats.chain_head_event);
	cr_assert(strncmp(head, want, strlen(want)) == 0 && strlen(head) == strlen(want) + 64,
	          "skuldctl chain-head: '%s', STATS event %" PRIu64, head, stats.chain_head_event);
	cr_assert_eq(server_stop(&bed.server), 0);

	/* Every head exported so far is in chain-heads, the newest last. */
	char path[160];
	snprintf(path, sizeof(path), "%s/data/chain-heads", bed.server.dir);
	FILE *heads = fopen(path, "r");
	cr_assert_not_null(heads);
	uint32_t lines = 0;
	bool listed = false;
	char last[CHAIN_TEXT_SIZE] = "";
	while (fgets(line, sizeof(line), heads) != NULL) {
		lines++;
		listed |= strncmp(line, head, strlen(head)) == 0;
		snprintf(last, sizeof(last), "%.*s", (int)strcspn(line, " \n"), line);
	}
	fclose(heads);
	cr_assert_geq(lines, 3, "two background snapshots and the one at the stop");
	cr_assert(listed, "%s is not in %s", head, path);
	/* The newest head, at the stop, covers the whole log. */
	snprintf(command, sizeof(command),
	         "%s/server/skuld-replay verify %s/data --config %s --head %s 2>&1",
	         SKULD_BINARY_DIR, bed.server.dir, bed.server.config, last);
	cr_assert_eq(command_line(command, line, sizeof(line)), 0, "verify --head %s: %s", last,
	             line);

	snprintf(command, sizeof(command),
	         "%s/server/skuld-replay verify %s/data --config %s --head %s 2>&1",
	         SKULD_BINARY_DIR, bed.server.dir, bed.server.config, head);
	int status = command_line(command, line, sizeof(line));
	cr_assert_eq(status, 0, "skuld-replay verify --head %s: exit %d (%s)", head, status, line);
	/* A head the log never had fails. */
	head[strlen(head) - 1] = head[strlen(head) - 1] == '0' ? '1' : '0';
	snprintf(command, sizeof(command),
	         "%s/server/skuld-replay verify %s/data --config %s --head %s >/dev/null 2>&1",
	         SKULD_BINARY_DIR, bed.server.dir, bed.server.config, head);
	cr_assert_eq(command_line(command, line, sizeof(line)), 1);
}
