/*
 * test_server_crash.c — crash, power-loss and storage-fault tests of the
 * real server (issue 6, "Crash and power-loss tests").
 *
 * The load: CLIENTS sessions, one connection each, keep up to DEPTH
 * SUBMITs in flight; each request carries 1..EVENTS_MAX events drawn from
 * receipts (every item), till sales (items 3, 4), reserves of items 1, 2
 * (short holds that expire by themselves, long ones that the client later
 * commits or releases), commits and releases. Every event has its own
 * idempotency key; every acknowledgement is recorded with its results.
 * Stock of items 1, 2 is scarce, so reserves race for the last units.
 *
 * The server takes background snapshots every 1000 events (a forked child,
 * its disk calls through the same seam and model), so a restart recovers
 * from a snapshot and the log after it while check 2 compares with a replay
 * of the whole log.
 *
 * A run is epochs of CYCLES crashes each, every epoch from an empty data
 * directory (so the log, and each restart's recovery, stays small). A cycle: load for
 * a random 3..40 ms, SIGKILL the server at that moment, then
 *   - power_cuts_*: cut the power through the power-loss model
 *     (SKULD_TEST_POWER_MODEL, server/storage_model.h): every write no
 *     completed fdatasync covered is kept, lost or torn in a random
 *     non-prefix pattern of its 512-byte sectors, name changes not covered
 *     by a directory fsync are undone (a random suffix of them);
 *   - sigkill_*: nothing more (the production storage table, page cache
 *     intact);
 * and check (check_image, check_state, clients_resolve):
 *   1. the log as the disk now holds it (read-only, with the core library):
 *      ends clean or with a torn last write, never corrupt; every record
 *      replays to its logged results; each client's requests appear once
 *      each, numbered 1, 2, 3, ..., with the events that were sent; no
 *      idempotency key is applied (OK, not REPLAYED) twice; after every
 *      record, reserved + committed <= on_hand for items 1, 2 at every
 *      location (no reserve ever exceeded the stock); every acknowledged
 *      request is there with exactly the results its client was given;
 *   2. the server restarted on that disk answers QUERY (every level of
 *      every location, the holds of the last cycles) byte for byte as the
 *      replay of its log does (the replay caught up with the EXPIRE records
 *      the server wrote since, bracketed by two STATS that agree);
 *   3. every client reconnects: REGISTER's request_next covers every
 *      acknowledged request and nothing beyond what was sent; the last
 *      applied request, retried with its number and events, returns the
 *      saved reply (equal to the acknowledged one when it was
 *      acknowledged); requests never applied are sent again with the same
 *      numbers and keys (applied now, once); applied but unacknowledged
 *      ones are sent again with the same keys in a new request (each event
 *      REPLAYED with its logged result, or applied now if it had failed);
 *      and the OK events of up to VERIFY_REQUESTS acknowledged requests of
 *      the cycle are sent again by key: every one REPLAYED with the result
 *      that was acknowledged.
 * The epoch ends with SIGTERM (exit 0) and the same log check (clean end).
 *
 * Counts per run: POWER_CUTS power cuts (SKULD_CRASH_CUTS=N for more),
 * KILLS SIGKILLs (SKULD_CRASH_KILLS=N), SKULD_CRASH_SEED for another seed.
 *
 * A server that skips fdatasync must fail power_cuts: build it with
 *   cmake -S . -B build-broken -DSKULD_BROKEN_SKIP_FDATASYNC=ON && cmake --build build-broken
 *   build-broken/tests/test_server_crash --filter 'server_crash/power_cuts*'
 * (never in CI: it is broken on purpose).
 *
 * Storage faults (storage_fault_*): the server runs with
 * SKULD_TEST_STORAGE_FAULT (a write completing with EIO or ENOSPC, an
 * fdatasync with EIO, the pre-allocation of a new segment with ENOSPC)
 * under the same load; it must exit with status 3 naming the failed write,
 * no client may hold an acknowledgement of a request in that write or a
 * later one, and a restart without the fault passes checks 1..3.
 *
 * Every loop is bounded by a count and a deadline (a deadline exceeded is
 * a hang, reported as such, never a timing assertion). Servers die with the
 * test (PR_SET_PDEATHSIG); directories are removed by the fini.
 */
#include "server_harness.h"

#include <inttypes.h>

#include "config.h"
#include "log.h"
#include "query.h"
#include "service.h"
#include "storage_model.h"

#define CLIENTS         3
#define DEPTH           3    /* SUBMITs in flight per client */
#define EVENTS_MAX      6    /* events per request */
#define REQUESTS_MAX    4096 /* request numbers per client per epoch */
#define WEB_ITEMS       2    /* items 1..2: receipts, reserves, commits, releases */
#define ITEMS           4    /* items 3..4: receipts and till sales */
#define LOCATIONS       2
#define STOCK_START     6 /* per (item, location) at setup */
#define POOL_MAX        64
#define RECENT_HOLDS    128 /* holds compared with the server after a restart */
#define VERIFY_REQUESTS 6   /* acknowledged requests re-sent by key per client per cycle */
#define LOAD_MS_MIN     3
#define LOAD_MS_MAX     40
#define CYCLES          20 /* crashes per epoch (one data directory) */
#define POWER_CUTS      200
#define KILLS           20
#define CRASHES_MAX     100000
#define EPOCH_HANG_MS   120000 /* an epoch taking longer is a hang */
#define EPOCH_MS_MIN    1500   /* an epoch lasts this long at least (holds expire) */
#define ADMIN_CLIENT    900
#define CHECK_CLIENT    901
#define TTL_SHORT_S     1
#define TTL_LONG_S      600
#define KEY_HI          0x43524153480000ull /* "CRASH" */
#define KEY_SLOTS       (1u << 17)

static const char *config_crash = "connections_max = 16\n"
                                  "sessions_max = 64\n"
                                  "frame_events_max = 16\n"
                                  "expire_batch = 16\n"
                                  "frame_pool = 2\n"
                                  "recv_buffers = 64\n"
                                  "segment_bytes = 64k\n"
                                  "write_bytes = 16k\n"
                                  "items_max = 16\n"
                                  "locations_max = 4\n"
                                  "channels_max = 4\n"
                                  "holds_max = 8192\n"
                                  "closed_holds_max = 8192\n"
                                  "keys_max = 65536\n"
                                  "disk_alarm_percent = 0\n"
                                  "disk_alarm_bytes = 0\n"
                                  "disk_alarm_hours = 0\n"
                                  "snapshot_events = 1000\n";

enum crash_mode {
	MODE_POWER = 1, /* the power-loss model cuts the power after each SIGKILL */
	MODE_KILL = 2,  /* SIGKILL only: the production storage table */
	MODE_FAULT = 3, /* one injected storage fault, then a restart */
};

/* One request of a client, as sent, and what became of it. */
struct request {
	uint32_t count;
	bool acknowledged; /* its client holds a reply (results) */
	bool outcome;      /* what it did is known (acknowledged or resolved) */
	bool logged;       /* found by the current log check */
	uint64_t write;    /* the log write holding it (current log check) */
	struct skuld_event events[EVENTS_MAX];
	struct skuld_result results[EVENTS_MAX];        /* as acknowledged */
	struct skuld_result logged_results[EVENTS_MAX]; /* as in the log */
};

enum call_kind {
	CALL_SAVED = 1,  /* the last applied request again: its saved reply */
	CALL_NUMBER = 2, /* a request never applied, with its own number */
	CALL_KEY = 3,    /* an applied, unanswered request's events by key */
	CALL_VERIFY = 4, /* an acknowledged request's OK events by key */
};

#define CALLS_MAX (1 + 2 * DEPTH + VERIFY_REQUESTS)

/* One request a client sends after a restart. */
struct call {
	enum call_kind kind;
	uint64_t number;          /* the request sent */
	uint64_t original;        /* CALL_KEY, CALL_VERIFY: the request it repeats */
	uint32_t map[EVENTS_MAX]; /* CALL_VERIFY: event i is the original's map[i] */
};

struct crash_client {
	struct client conn;
	uint32_t index;
	struct request *requests; /* by request number, REQUESTS_MAX */
	uint64_t sent_last;       /* highest number sent */
	uint64_t settled_last;    /* every request up to it has an outcome */
	uint64_t acked_last;      /* highest number acknowledged */
	uint64_t cycle_first;     /* first request number of this cycle */
	uint64_t logged_last;     /* current log check: last number seen */
	uint64_t key_next;
	uint64_t hold_next;
	uint64_t pool[POOL_MAX]; /* long holds it may commit or release */
	uint32_t pool_count;
	bool ended; /* connection gone (fault runs) */
	struct call calls[CALLS_MAX];
	uint32_t call_count;
};

struct totals {
	uint64_t crashes;
	uint64_t torn_ends; /* log checks that found a torn last write */
	uint64_t requests_acked;
	uint64_t requests_saved; /* saved replies read back after a restart */
	uint64_t requests_resent_number;
	uint64_t requests_resent_key;
	uint64_t events_verified; /* acknowledged events re-sent by key */
	uint64_t reserves_ok;
	uint64_t reserves_refused;
	uint64_t expired; /* EXPIRE events in the final logs */
	uint64_t holds_compared;
	struct storage_model_cut cut;
	uint64_t cut_count;
};

static struct {
	enum crash_mode mode;
	struct server server;
	char model_dir[128];
	char stderr_path[160];
	char fault_spec[64];
	int stderr_saved;
	uint64_t rng;
	uint64_t seed;
	uint32_t epoch;
	uint32_t cycle;
	struct crash_client clients[CLIENTS];
	uint64_t recent_holds[RECENT_HOLDS];
	uint32_t recent_count;
	skuld_u128 *keys; /* open addressing, KEY_SLOTS: applied keys of a log check */
	struct service *replayed;
	struct server_config config;
	uint64_t image_records; /* records of the log at the last check */
	uint64_t image_checksum;
	bool image_torn;
	struct totals totals;
} crash = {.stderr_saved = -1};

static uint64_t random_next(void)
{
	uint64_t z = (crash.rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t random_below(uint64_t bound)
{
	return random_next() % bound;
}

static uint64_t env_count(const char *name, uint64_t fallback)
{
	const char *value = getenv(name);
	if (value == NULL || value[0] == '\0')
		return fallback;
	char *end = NULL;
	unsigned long long number = strtoull(value, &end, 0);
	cr_assert(end != value && *end == '\0', "%s='%s' is not a number", name, value);
	return number;
}

/* ---- Servers ------------------------------------------------------------------- */

static void stderr_restore(void)
{
	if (crash.stderr_saved < 0)
		return;
	dup2(crash.stderr_saved, STDERR_FILENO);
	close(crash.stderr_saved);
	crash.stderr_saved = -1;
}

/* Starts the server with its stderr appended to DIR/stderr, with the test
 * switch of the run (and the fault only when `fault` is set). */
static void crash_server_start(bool fault)
{
	if (crash.mode == MODE_POWER)
		setenv("SKULD_TEST_POWER_MODEL", crash.model_dir, 1);
	if (fault)
		setenv("SKULD_TEST_STORAGE_FAULT", crash.fault_spec, 1);
	int fd = open(crash.stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", crash.stderr_path, strerror(errno));
	crash.stderr_saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	server_start(&crash.server);
	stderr_restore();
	unsetenv("SKULD_TEST_POWER_MODEL");
	unsetenv("SKULD_TEST_STORAGE_FAULT");
}

/* Reaps what a killed server left running: its snapshot writer (a forked
 * child, killed by PR_SET_PDEATHSIG when the server dies) is reparented to
 * this process, the subreaper (run_init). Nothing may use the power model,
 * or write in the data directory, when the power is cut or a server
 * restarts. */
static void orphans_reap(void)
{
	uint64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_S * 1000;
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid < 0 && errno == ECHILD)
			return;
		cr_assert_lt(harness_now_ms(), deadline,
		             "a killed server's child is still running after %d s",
		             HARNESS_TIMEOUT_S);
		if (pid <= 0)
			usleep(1000);
	}
}

static void clients_close(void)
{
	for (uint32_t i = 0; i < CLIENTS; i++)
		client_close(&crash.clients[i].conn);
}

static void crash_cleanup(void)
{
	stderr_restore();
	clients_close();
	if (crash.replayed != NULL)
		service_destroy(crash.replayed);
	crash.replayed = NULL;
	if (crash.server.dir[0] != '\0') {
		if (getenv("SKULD_CRASH_KEEP") != NULL) {
			server_kill(&crash.server);
			fprintf(stderr, "server crash: kept %s\n", crash.server.dir);
		} else {
			server_fini(&crash.server);
		}
	}
	memset(&crash.server, 0, sizeof(crash.server));
	for (uint32_t i = 0; i < CLIENTS; i++) {
		free(crash.clients[i].requests);
		crash.clients[i].requests = NULL;
	}
	free(crash.keys);
	crash.keys = NULL;
}

/* ---- The load -------------------------------------------------------------------- */

static void recent_hold(uint64_t hold)
{
	crash.recent_holds[crash.recent_count++ % RECENT_HOLDS] = hold;
}

static struct skuld_event event_keyed(struct crash_client *client, struct skuld_event event)
{
	event.key.lo = (uint64_t)(client->index + 1) << 40 | ++client->key_next;
	event.key.hi = KEY_HI + crash.epoch;
	return event;
}

/* One random event of client. */
static struct skuld_event event_random(struct crash_client *client)
{
	uint32_t location = 1 + (uint32_t)random_below(LOCATIONS);
	uint32_t web_item = 1 + (uint32_t)random_below(WEB_ITEMS);
	uint32_t till_item = WEB_ITEMS + 1 + (uint32_t)random_below(ITEMS - WEB_ITEMS);
	uint32_t choice = (uint32_t)random_below(100);
	if (choice >= 65 && client->pool_count > 0) {
		uint32_t pick = (uint32_t)random_below(client->pool_count);
		uint64_t hold = client->pool[pick];
		client->pool[pick] = client->pool[--client->pool_count];
		uint16_t kind = choice >= 82 ? SKULD_RELEASE : SKULD_COMMIT;
		return event_keyed(client, event_hold(kind, hold, 0));
	}
	if (choice < 8)
		return event_keyed(client, event_stock(SKULD_RECEIVE, web_item, location,
		                                       1 + (int64_t)random_below(2), 0));
	if (choice < 18)
		return event_keyed(client, event_stock(SKULD_RECEIVE, till_item, location,
		                                       1 + (int64_t)random_below(3), 0));
	if (choice < 33)
		return event_keyed(client, event_stock(SKULD_SALE, till_item, location,
		                                       1 + (int64_t)random_below(2), 0));
	struct skuld_event reserve =
	        event_stock(SKULD_RESERVE, web_item, location, 1 + (int64_t)random_below(2), 0);
	reserve.id = (uint64_t)(client->index + 1) << 40 | (uint64_t)crash.epoch << 32 |
	             ++client->hold_next;
	reserve.ttl_s = random_below(3) == 0 ? TTL_SHORT_S : TTL_LONG_S;
	recent_hold(reserve.id);
	return event_keyed(client, reserve);
}

static struct request *request_new(struct crash_client *client, uint64_t *number)
{
	*number = ++client->sent_last;
	cr_assert_lt(*number, REQUESTS_MAX, "client %u: more than %d requests in an epoch",
	             client->index, REQUESTS_MAX);
	struct request *request = &client->requests[*number];
	memset(request, 0, sizeof(*request));
	return request;
}

/* What a request with an outcome did, for the client's own holds. */
static void outcome_note(struct crash_client *client, const struct skuld_event *events,
                         const struct skuld_result *results, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		if (events[i].kind != SKULD_RESERVE)
			continue;
		if (results[i].status != SKULD_OK) {
			crash.totals.reserves_refused++;
			continue;
		}
		crash.totals.reserves_ok++;
		if (events[i].ttl_s == TTL_LONG_S && client->pool_count < POOL_MAX)
			client->pool[client->pool_count++] = events[i].id;
	}
}

static int request_send(struct crash_client *client, uint64_t number)
{
	const struct request *request = &client->requests[number];
	return client_submit_send(&client->conn, number, request->events, request->count);
}

/* Reads one SUBMIT reply for request `number` into results. Returns 0, or
 * -1 when the connection ended. */
static int reply_read(struct crash_client *client, uint64_t number, struct skuld_result *results,
                      uint32_t count)
{
	static struct reply reply;
	if (frame_read(client->conn.fd, &reply) != 0)
		return -1;
	const struct skuld_header *header = reply_header(&reply);
	if (header->operation == SKULD_OP_ERROR) {
		const struct skuld_error_body *error = reply_body(&reply);
		cr_assert_fail("client %u request %" PRIu64 ": ERROR %s: %.56s", client->index,
		               number, skuld_status_name(header->result), error->message);
	}
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT);
	cr_assert_eq(header->request, number, "client %u: reply to %" PRIu64 ", expected %" PRIu64,
	             client->index, header->request, number);
	cr_assert_eq(header->count, count);
	memcpy(results, reply_body(&reply), (size_t)count * SKULD_RESULT_SIZE);
	return 0;
}

/* A request answered now (normal flow): its reply is its outcome. */
static void request_acknowledged(struct crash_client *client, uint64_t number)
{
	struct request *request = &client->requests[number];
	request->acknowledged = true;
	request->outcome = true;
	client->acked_last = number;
	client->settled_last = number;
	crash.totals.requests_acked++;
	outcome_note(client, request->events, request->results, request->count);
}

static void client_fill(struct crash_client *client)
{
	while (!client->ended && client->sent_last - client->settled_last < DEPTH) {
		uint64_t number;
		struct request *request = request_new(client, &number);
		request->count = 1 + (uint32_t)random_below(EVENTS_MAX);
		for (uint32_t i = 0; i < request->count; i++)
			request->events[i] = event_random(client);
		if (request_send(client, number) != 0)
			client->ended = true;
	}
}

/* Reads the reply to the client's oldest request in flight. Returns false
 * when the connection ended (allowed only when allow_end). */
static bool client_reply(struct crash_client *client, bool allow_end)
{
	uint64_t number = client->settled_last + 1;
	cr_assert_leq(number, client->sent_last, "client %u: a reply with nothing in flight",
	              client->index);
	struct request *request = &client->requests[number];
	if (reply_read(client, number, request->results, request->count) != 0) {
		cr_assert(allow_end, "client %u: connection lost under load", client->index);
		client->ended = true;
		return false;
	}
	request_acknowledged(client, number);
	return true;
}

/* Runs the load for duration_ms, or (until_exit) until every connection
 * ended because the server stopped. */
static void load_run(uint64_t duration_ms, bool until_exit)
{
	uint64_t start = harness_now_ms();
	uint64_t deadline = start + duration_ms;
	for (uint32_t turn = 0;; turn++) {
		uint64_t now = harness_now_ms();
		cr_assert_lt(turn, 10000000u, "load: too many turns");
		if (!until_exit && now >= deadline)
			return;
		cr_assert(!until_exit || now < deadline,
		          "load: the server did not stop in %" PRIu64 " ms", duration_ms);
		struct pollfd polls[CLIENTS];
		uint32_t open = 0;
		for (uint32_t i = 0; i < CLIENTS; i++) {
			struct crash_client *client = &crash.clients[i];
			client_fill(client);
			polls[i] = (struct pollfd){.fd = client->ended ? -1 : client->conn.fd,
			                           .events = POLLIN};
			open += !client->ended;
		}
		if (open == 0)
			return;
		int wait = until_exit ? 50 : (int)(deadline - now);
		if (poll(polls, CLIENTS, wait) <= 0)
			continue;
		for (uint32_t i = 0; i < CLIENTS; i++) {
			struct crash_client *client = &crash.clients[i];
			if (polls[i].revents != 0 && !client->ended)
				client_reply(client, until_exit);
		}
	}
}

/* Reads every reply still due, sending nothing new. */
static void load_drain(void)
{
	uint64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_S * 1000;
	for (;;) {
		struct pollfd polls[CLIENTS];
		uint32_t waiting = 0;
		for (uint32_t i = 0; i < CLIENTS; i++) {
			const struct crash_client *client = &crash.clients[i];
			bool due = client->settled_last < client->sent_last;
			polls[i] =
			        (struct pollfd){.fd = due ? client->conn.fd : -1, .events = POLLIN};
			waiting += due;
		}
		if (waiting == 0)
			return;
		cr_assert_lt(harness_now_ms(), deadline, "replies did not come back in %d s",
		             HARNESS_TIMEOUT_S);
		if (poll(polls, CLIENTS, 100) <= 0)
			continue;
		for (uint32_t i = 0; i < CLIENTS; i++)
			if (polls[i].revents != 0)
				client_reply(&crash.clients[i], false);
	}
}

/* ---- Setup ---------------------------------------------------------------------- */

static void catalog_setup(void)
{
	struct client admin;
	cr_assert_eq(client_open(&admin, crash.server.port, client_id(ADMIN_CLIENT)), 0);
	struct skuld_event events[ITEMS + LOCATIONS + ITEMS * LOCATIONS];
	struct skuld_result results[ITEMS + LOCATIONS + ITEMS * LOCATIONS];
	uint32_t count = 0;
	for (uint32_t item = 1; item <= ITEMS; item++)
		events[count++] = event_item(item, 10 + item);
	for (uint32_t location = 1; location <= LOCATIONS; location++)
		events[count++] = event_location(location, 20 + location);
	for (uint32_t item = 1; item <= ITEMS; item++)
		for (uint32_t location = 1; location <= LOCATIONS; location++)
			events[count++] = event_stock(SKULD_RECEIVE, item, location, STOCK_START,
			                              100 + item * 10 + location);
	cr_assert_eq(client_submit(&admin, events, count, results, NULL), 0);
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "setup event %u: %s", i,
		             skuld_status_name(results[i].status));
	client_close(&admin);
}

static void clients_open(void)
{
	for (uint32_t i = 0; i < CLIENTS; i++) {
		struct crash_client *client = &crash.clients[i];
		cr_assert_eq(client_open(&client->conn, crash.server.port, client_id(i + 1)), 0,
		             "client %u cannot register", i);
		client->ended = false;
	}
}

static void epoch_begin(void)
{
	crash.epoch++;
	crash.cycle = 0;
	crash.recent_count = 0;
	server_init(&crash.server, config_crash);
	snprintf(crash.model_dir, sizeof(crash.model_dir), "%s/model", crash.server.dir);
	snprintf(crash.stderr_path, sizeof(crash.stderr_path), "%s/stderr", crash.server.dir);
	cr_assert_eq(mkdir(crash.model_dir, 0755), 0);
	char data_dir[128];
	snprintf(data_dir, sizeof(data_dir), "%s/data", crash.server.dir);
	cr_assert_eq(mkdir(data_dir, 0755), 0);
	for (uint32_t i = 0; i < CLIENTS; i++) {
		struct crash_client *client = &crash.clients[i];
		struct request *requests = client->requests;
		memset(client, 0, sizeof(*client));
		client->requests = requests;
		client->index = i;
		client->conn.fd = -1;
		client->conn.id = client_id(i + 1);
	}
	crash.image_records = 0;
	crash.image_checksum = 0;
	char error[CONFIG_ERROR_SIZE];
	config_defaults(&crash.config);
	cr_assert_eq(config_load(&crash.config, crash.server.config, error, sizeof(error)), 0, "%s",
	             error);
	cr_assert_eq(config_finish(&crash.config, error, sizeof(error)), 0, "%s", error);
}

/* ---- Check 1: the log as the disk holds it ------------------------------------------ */

static struct crash_client *client_by_id(skuld_u128 id)
{
	for (uint32_t i = 0; i < CLIENTS; i++)
		if (skuld_u128_equal(crash.clients[i].conn.id, id))
			return &crash.clients[i];
	return NULL;
}

/* Adds key to the set of applied keys; false when it was there. */
static bool key_first(skuld_u128 key)
{
	uint64_t slot = (key.lo * 0x9e3779b97f4a7c15ull ^ key.hi) & (KEY_SLOTS - 1);
	for (uint32_t probe = 0; probe < KEY_SLOTS; probe++) {
		skuld_u128 *entry = &crash.keys[(slot + probe) & (KEY_SLOTS - 1)];
		if (skuld_u128_is_zero(*entry)) {
			*entry = key;
			return true;
		}
		if (skuld_u128_equal(*entry, key))
			return false;
	}
	cr_assert_fail("the key set is full");
	return false;
}

static struct service *service_fresh(const char *log_dir)
{
	const struct server_config *config = &crash.config;
	struct service_config service_config = config_service(config, log_dir);
	struct service *service = NULL;
	cr_assert_eq(service_create(&service_config, &service), 0);
	return service;
}

/* Replays one record into the check's service, with every per-record
 * check of check 1. */
static void record_check(const struct log_record *record, uint64_t number)
{
	const struct log_record_header *header = record->header;
	char why[256];
	cr_assert_eq(service_replay(crash.replayed, record, why, sizeof(why)), 0,
	             "epoch %u cycle %u: log record %" PRIu64 " does not replay: %s", crash.epoch,
	             crash.cycle, number, why);
	const struct ledger *ledger = service_ledger(crash.replayed);
	for (uint32_t item = 1; item <= WEB_ITEMS; item++) {
		for (uint32_t location = 1; location <= LOCATIONS; location++) {
			struct ledger_level level;
			cr_assert_eq(ledger_level(ledger, item, location, &level), SKULD_OK);
			cr_assert_leq(level.reserved + level.committed, level.on_hand,
			              "oversold after log record %" PRIu64 ": item %u location %u "
			              "on_hand %" PRId64 " reserved %" PRId64 " committed %" PRId64,
			              number, item, location, level.on_hand, level.reserved,
			              level.committed);
		}
	}
	if (skuld_u128_is_zero(header->client)) {
		for (uint32_t i = 0; i < header->count; i++)
			cr_assert_eq(record->events[i].kind, SKULD_EXPIRE);
		return;
	}
	for (uint32_t i = 0; i < header->count; i++) {
		const struct skuld_result *result = &record->results[i];
		if (result->status == SKULD_OK && !(result->flags & SKULD_RESULT_REPLAYED))
			cr_assert(key_first(record->events[i].key),
			          "epoch %u cycle %u: key %" PRIx64 ":%" PRIx64
			          " applied twice (log "
			          "record %" PRIu64 ")",
			          crash.epoch, crash.cycle, record->events[i].key.hi,
			          record->events[i].key.lo, number);
	}
	struct crash_client *client = client_by_id(header->client);
	if (client == NULL)
		return; /* the admin's setup */
	cr_assert_eq(header->request, client->logged_last + 1,
	             "epoch %u cycle %u: client %u request %" PRIu64 " after %" PRIu64
	             " in the log (applied twice, or a gap)",
	             crash.epoch, crash.cycle, client->index, header->request, client->logged_last);
	client->logged_last = header->request;
	cr_assert_leq(header->request, client->sent_last,
	              "client %u: request %" PRIu64 " in the log was never sent", client->index,
	              header->request);
	struct request *request = &client->requests[header->request];
	cr_assert_eq(header->count, request->count);
	cr_assert(memcmp(record->events, request->events, request->count * SKULD_EVENT_SIZE) == 0,
	          "client %u request %" PRIu64 ": logged events differ from those sent",
	          client->index, header->request);
	request->logged = true;
	request->write = record->write_sequence;
	memcpy(request->logged_results, record->results, request->count * SKULD_RESULT_SIZE);
}

/* Check 1 on the log in DATA_DIR/log. Leaves the replayed service in
 * crash.replayed. final: the server stopped cleanly (no torn end). */
static void check_image(bool final)
{
	char log_dir[160];
	snprintf(log_dir, sizeof(log_dir), "%s/data/log", crash.server.dir);
	if (crash.replayed != NULL)
		service_destroy(crash.replayed);
	crash.replayed = service_fresh(log_dir);
	memset(crash.keys, 0, KEY_SLOTS * sizeof(skuld_u128));
	for (uint32_t i = 0; i < CLIENTS; i++) {
		struct crash_client *client = &crash.clients[i];
		client->logged_last = 0;
		for (uint64_t n = 1; n <= client->sent_last; n++)
			client->requests[n].logged = false;
	}
	struct log_reader *reader = NULL;
	cr_assert_eq(log_reader_open(&reader, log_dir, NULL), 0);
	struct log_record record;
	enum log_status status;
	uint64_t number = 0;
	uint64_t checksum = 0;
	uint64_t expired = 0;
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
		number++;
		cr_assert_lt(number, 10000000u);
		record_check(&record, number);
		checksum = record.header->checksum;
		if (skuld_u128_is_zero(record.header->client))
			expired += record.header->count;
	}
	const struct log_outcome *outcome = log_reader_outcome(reader);
	static const char *const endings[] = {"a record", "a clean end", "a torn last write",
	                                      "corruption", "an I/O error"};
	char ending[LOG_PATH_SIZE + LOG_REASON_SIZE + 64];
	snprintf(ending, sizeof(ending), "%s at %s offset %" PRIu64 ": %s",
	         endings[status <= LOG_ERROR ? status : LOG_ERROR], outcome->file, outcome->offset,
	         outcome->reason);
	/* Acknowledged work first: it is what a broken durability promise
	 * loses. */
	for (uint32_t i = 0; i < CLIENTS; i++) {
		struct crash_client *client = &crash.clients[i];
		for (uint64_t n = 1; n <= client->sent_last; n++) {
			const struct request *request = &client->requests[n];
			if (!request->acknowledged)
				continue;
			cr_assert(request->logged,
			          "epoch %u cycle %u: client %u request %" PRIu64
			          " was acknowledged and is not in the log (the log ends with %s)",
			          crash.epoch, crash.cycle, i, n, ending);
			cr_assert(memcmp(request->results, request->logged_results,
			                 request->count * SKULD_RESULT_SIZE) == 0,
			          "client %u request %" PRIu64 ": acknowledged results differ from "
			          "the logged ones",
			          i, n);
		}
	}
	cr_assert(status == LOG_END_CLEAN || (status == LOG_END_TORN && !final),
	          "epoch %u cycle %u: the log ends with %s", crash.epoch, crash.cycle, ending);
	crash.image_torn = status == LOG_END_TORN;
	crash.totals.torn_ends += crash.image_torn;
	log_reader_close(reader);
	crash.image_records = number;
	crash.image_checksum = checksum;
	if (final)
		crash.totals.expired += expired;
}

/* ---- Check 2: the restarted server against the replay --------------------------------- */

#define QUERY_RECORDS 64 /* records per answer, at most (LOCATION_LEVELS limit) */

static void query_one(struct client *check, const struct skuld_query *query, uint8_t *records,
                      uint32_t *count)
{
	int got = client_query(check, query, records, QUERY_RECORDS);
	cr_assert_geq(got, 0, "QUERY kind %u failed", query->kind);
	*count = (uint32_t)got;
}

#define QUERIES_MAX (LOCATIONS + RECENT_HOLDS + 1)

struct query_set {
	struct skuld_query queries[QUERIES_MAX];
	uint32_t count;
	uint8_t answers[QUERIES_MAX][QUERY_RECORDS * 64];
	uint32_t answer_counts[QUERIES_MAX];
};

static void queries_plan(struct query_set *set)
{
	set->count = 0;
	for (uint32_t location = 1; location <= LOCATIONS; location++) {
		struct skuld_query *query = &set->queries[set->count++];
		memset(query, 0, sizeof(*query));
		query->kind = SKULD_QUERY_LOCATION_LEVELS;
		query->location = location;
		query->limit = QUERY_RECORDS;
	}
	uint32_t holds = crash.recent_count < RECENT_HOLDS ? crash.recent_count : RECENT_HOLDS;
	for (uint32_t i = 0; i < holds; i++) {
		struct skuld_query *query = &set->queries[set->count++];
		memset(query, 0, sizeof(*query));
		query->kind = SKULD_QUERY_HOLD;
		query->hold = crash.recent_holds[i];
	}
	struct skuld_query *unknown = &set->queries[set->count++];
	memset(unknown, 0, sizeof(*unknown));
	unknown->kind = SKULD_QUERY_HOLD;
	unknown->hold = 0xdeadull << 40;
	crash.totals.holds_compared += holds;
}

/* Replays the records the server wrote after the last check's image (its
 * EXPIRE batches) until `expired` events, from the live log. */
static void replay_catch_up(uint64_t expired)
{
	char log_dir[160];
	snprintf(log_dir, sizeof(log_dir), "%s/data/log", crash.server.dir);
	struct log_reader *reader = NULL;
	cr_assert_eq(log_reader_open(&reader, log_dir, NULL), 0);
	struct log_record record;
	uint64_t number = 0;
	uint64_t applied = 0;
	while (applied < expired) {
		enum log_status status = log_reader_next(reader, &record);
		cr_assert_eq(status, LOG_RECORD,
		             "the live log ends (%d: %s) before the %" PRIu64
		             " EXPIRE events the server reported",
		             status, log_reader_outcome(reader)->reason, expired);
		number++;
		if (number < crash.image_records)
			continue;
		if (number == crash.image_records) {
			cr_assert_eq(record.header->checksum, crash.image_checksum,
			             "the recovered log differs from the checked image");
			continue;
		}
		cr_assert(skuld_u128_is_zero(record.header->client),
		          "a client record before any client request");
		record_check(&record, number);
		applied += record.header->count;
	}
	cr_assert_eq(applied, expired);
	log_reader_close(reader);
}

/* Check 2. */
static void check_state(void)
{
	static struct query_set set;
	queries_plan(&set);
	struct client check;
	cr_assert_eq(client_open(&check, crash.server.port, client_id(CHECK_CLIENT)), 0);
	struct skuld_stats before;
	struct skuld_stats after;
	bool stable = false;
	for (uint32_t attempt = 0; attempt < 50 && !stable; attempt++) {
		cr_assert_eq(client_stats(&check, &before), 0);
		for (uint32_t i = 0; i < set.count; i++)
			query_one(&check, &set.queries[i], set.answers[i], &set.answer_counts[i]);
		cr_assert_eq(client_stats(&check, &after), 0);
		cr_assert_eq(before.requests, 0,
		             "the server applied a request before any was sent");
		stable = before.events_expired == after.events_expired &&
		         before.requests == after.requests;
	}
	cr_assert(stable, "the server kept expiring holds during 50 rounds of queries");
	client_close(&check);
	replay_catch_up(before.events_expired);
	const struct query_limits limits = {
	        .limit_max = crash.config.query_limit,
	        .scan_max = crash.config.query_scan,
	        .items_max = crash.config.ledger.items_max,
	        .locations_max = crash.config.ledger.locations_max,
	};
	static uint8_t expected[SKULD_QUERY_LIMIT_MAX * 64];
	for (uint32_t i = 0; i < set.count; i++) {
		uint32_t count = query_answer(service_ledger(crash.replayed), &limits,
		                              &set.queries[i], expected);
		cr_assert_eq(count, set.answer_counts[i],
		             "epoch %u cycle %u: QUERY %u: %u records, "
		             "the replay has %u",
		             crash.epoch, crash.cycle, i, set.answer_counts[i], count);
		cr_assert(memcmp(expected, set.answers[i], (size_t)count * 64) == 0,
		          "epoch %u cycle %u: QUERY kind %u (location %u, hold %#" PRIx64
		          ") differs from the replay of the log",
		          crash.epoch, crash.cycle, set.queries[i].kind, set.queries[i].location,
		          set.queries[i].hold);
	}
}

/* ---- Check 3: every client settles what it sent ------------------------------------------- */

/* The result a key-replayed event must carry: the original, with REPLAYED. */
static void expect_replayed(const struct crash_client *client, uint64_t number, uint32_t index,
                            const struct skuld_result *original, const struct skuld_result *got)
{
	struct skuld_result want = *original;
	want.index = got->index;
	want.flags |= SKULD_RESULT_REPLAYED;
	cr_assert(memcmp(&want, got, sizeof(want)) == 0,
	          "client %u request %" PRIu64 " event %u sent again by key: %s flags %#x "
	          "quantity %" PRId64 ", originally %s flags %#x quantity %" PRId64,
	          client->index, number, index, skuld_status_name(got->status), got->flags,
	          got->quantity, skuld_status_name(original->status), original->flags,
	          original->quantity);
}

/* A request number for events sent again by key (the events of original,
 * those of map when map is not NULL). */
static uint64_t request_again(struct crash_client *client, uint64_t original, const uint32_t *map,
                              uint32_t count)
{
	uint64_t again;
	struct request *copy = request_new(client, &again);
	const struct request *from = &client->requests[original];
	copy->count = count;
	for (uint32_t i = 0; i < count; i++)
		copy->events[i] = from->events[map != NULL ? map[i] : i];
	return again;
}

/* Everything a client sends after the restart, planned at once and
 * pipelined (so group commit takes them together). */
static void resolve_plan(struct crash_client *client)
{
	cr_assert_eq(client_open(&client->conn, crash.server.port, client_id(client->index + 1)), 0,
	             "client %u cannot register after the restart", client->index);
	client->ended = false;
	client->call_count = 0;
	uint64_t applied_last = client->conn.request_next - 1;
	cr_assert_geq(applied_last, client->acked_last,
	              "epoch %u cycle %u: client %u: request %" PRIu64
	              " was acknowledged, the server has applied up to %" PRIu64,
	              crash.epoch, crash.cycle, client->index, client->acked_last, applied_last);
	cr_assert_leq(applied_last, client->sent_last);
	cr_assert_eq(applied_last, client->logged_last, "REGISTER and the log disagree");
	uint64_t sent_before = client->sent_last;
	struct call *call;
	if (applied_last >= 1) {
		/* The saved reply, read back from the log by the restarted server. */
		call = &client->calls[client->call_count++];
		*call = (struct call){.kind = CALL_SAVED, .number = applied_last};
	}
	for (uint64_t n = applied_last + 1; n <= sent_before; n++) {
		/* Never applied: the same number and keys, applied now. */
		call = &client->calls[client->call_count++];
		*call = (struct call){.kind = CALL_NUMBER, .number = n};
	}
	for (uint64_t n = client->settled_last + 1; n < applied_last; n++) {
		/* Applied, never answered: the same keys in a new request. */
		if (client->requests[n].outcome)
			continue;
		call = &client->calls[client->call_count++];
		*call = (struct call){.kind = CALL_KEY, .original = n};
		call->number = request_again(client, n, NULL, client->requests[n].count);
	}
	uint32_t verifies = 0;
	for (uint64_t n = client->cycle_first; n <= sent_before && verifies < VERIFY_REQUESTS;
	     n++) {
		/* Acknowledged: its OK events again by key. */
		const struct request *original = &client->requests[n];
		if (!original->acknowledged)
			continue;
		call = &client->calls[client->call_count];
		*call = (struct call){.kind = CALL_VERIFY, .original = n};
		uint32_t count = 0;
		for (uint32_t i = 0; i < original->count; i++)
			if (original->results[i].status == SKULD_OK)
				call->map[count++] = i;
		if (count == 0)
			continue;
		call->number = request_again(client, n, call->map, count);
		client->call_count++;
		verifies++;
	}
	cr_assert_leq(client->call_count, CALLS_MAX);
	for (uint32_t i = 0; i < client->call_count; i++)
		cr_assert_eq(request_send(client, client->calls[i].number), 0,
		             "client %u: send of %" PRIu64 " failed", client->index,
		             client->calls[i].number);
}

/* One answered call of resolve_plan. */
static void resolve_answer(struct crash_client *client, const struct call *call,
                           const struct skuld_result *results)
{
	struct request *request = &client->requests[call->number];
	switch (call->kind) {
	case CALL_SAVED:
		cr_assert(memcmp(results, request->logged_results,
		                 request->count * SKULD_RESULT_SIZE) == 0,
		          "client %u request %" PRIu64 ": the saved reply differs from the log",
		          client->index, call->number);
		if (!request->outcome) {
			memcpy(request->results, results, request->count * SKULD_RESULT_SIZE);
			request->acknowledged = true;
			request->outcome = true;
			outcome_note(client, request->events, results, request->count);
		}
		crash.totals.requests_saved++;
		return;
	case CALL_NUMBER:
		memcpy(request->results, results, request->count * SKULD_RESULT_SIZE);
		request_acknowledged(client, call->number);
		crash.totals.requests_resent_number++;
		return;
	case CALL_KEY: {
		struct request *original = &client->requests[call->original];
		memcpy(request->results, results, request->count * SKULD_RESULT_SIZE);
		for (uint32_t i = 0; i < request->count; i++) {
			if (results[i].flags & SKULD_RESULT_REPLAYED)
				expect_replayed(client, call->original, i,
				                &original->logged_results[i], &results[i]);
			else
				cr_assert_neq(original->logged_results[i].status, SKULD_OK,
				              "client %u request %" PRIu64
				              " event %u: applied, yet its "
				              "key was not remembered",
				              client->index, call->original, i);
		}
		request->acknowledged = true;
		request->outcome = true;
		original->outcome = true;
		crash.totals.requests_resent_key++;
		outcome_note(client, request->events, results, request->count);
		return;
	}
	case CALL_VERIFY: {
		const struct request *original = &client->requests[call->original];
		memcpy(request->results, results, request->count * SKULD_RESULT_SIZE);
		for (uint32_t i = 0; i < request->count; i++)
			expect_replayed(client, call->original, call->map[i],
			                &original->results[call->map[i]], &results[i]);
		request->acknowledged = true;
		request->outcome = true;
		crash.totals.events_verified += request->count;
		return;
	}
	}
}

/* Check 3: every client plans and sends, then every answer is read. */
static void clients_resolve(void)
{
	for (uint32_t i = 0; i < CLIENTS; i++)
		resolve_plan(&crash.clients[i]);
	for (uint32_t i = 0; i < CLIENTS; i++) {
		struct crash_client *client = &crash.clients[i];
		for (uint32_t c = 0; c < client->call_count; c++) {
			const struct call *call = &client->calls[c];
			struct skuld_result results[EVENTS_MAX];
			uint32_t count = client->requests[call->number].count;
			cr_assert_eq(reply_read(client, call->number, results, count), 0,
			             "client %u: no reply to %" PRIu64, client->index,
			             call->number);
			resolve_answer(client, call, results);
		}
		client->settled_last = client->sent_last;
		client->acked_last = client->sent_last;
		client->cycle_first = client->sent_last + 1;
	}
}

/* ---- Runs --------------------------------------------------------------------------------- */

/* After a crash (the server is gone): the cut, the three checks, and the
 * clients back at work. */
static void crash_recover(void)
{
	clients_close();
	if (crash.mode == MODE_POWER) {
		struct storage_model_cut cut;
		char message[256];
		uint64_t seed = crash.seed ^ ((uint64_t)crash.epoch << 32 | crash.cycle);
		cr_assert_eq(storage_model_power_cut(crash.model_dir, seed, &cut, message,
		                                     sizeof(message)),
		             0, "%s", message);
		struct storage_model_cut *total = &crash.totals.cut;
		total->writes += cut.writes;
		total->writes_kept += cut.writes_kept;
		total->writes_lost += cut.writes_lost;
		total->writes_torn += cut.writes_torn;
		total->sectors_kept += cut.sectors_kept;
		total->sectors_lost += cut.sectors_lost;
		total->names += cut.names;
		total->names_undone += cut.names_undone;
		total->sizes += cut.sizes;
		total->sizes_undone += cut.sizes_undone;
		crash.totals.cut_count++;
	}
	check_image(false);
	crash_server_start(false);
	check_state();
	clients_resolve();
	crash.totals.crashes++;
}

static void epoch_run(uint32_t cycles)
{
	uint64_t started = harness_now_ms();
	epoch_begin();
	crash_server_start(false);
	catalog_setup();
	clients_open();
	for (crash.cycle = 1; crash.cycle <= cycles; crash.cycle++) {
		cr_assert_lt(harness_now_ms() - started, EPOCH_HANG_MS, "epoch %u hangs",
		             crash.epoch);
		load_run(LOAD_MS_MIN + random_below(LOAD_MS_MAX - LOAD_MS_MIN + 1), false);
		server_kill(&crash.server);
		orphans_reap();
		crash_recover();
	}
	/* Short holds of the epoch's first cycles are due by now or after a
	 * short wait (bounded): the final log has EXPIRE batches however fast
	 * the cycles ran. */
	load_drain();
	for (uint32_t wait = 0;
	     wait < EPOCH_MS_MIN / 10 && harness_now_ms() - started < EPOCH_MS_MIN; wait++)
		usleep(10000);
	load_run(LOAD_MS_MIN, false);
	load_drain();
	clients_close();
	cr_assert_eq(server_stop(&crash.server), 0, "SIGTERM: the server must exit 0");
	crash.cycle = cycles + 1;
	check_image(true);
	service_destroy(crash.replayed);
	crash.replayed = NULL;
	server_fini(&crash.server);
	memset(&crash.server, 0, sizeof(crash.server));
}

static void run_init(enum crash_mode mode)
{
	crash.mode = mode;
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	crash.seed = env_count("SKULD_CRASH_SEED", 0x5eedc4a5full) ^ (uint64_t)mode;
	crash.rng = crash.seed;
	crash.epoch = 0;
	memset(&crash.totals, 0, sizeof(crash.totals));
	crash.keys = calloc(KEY_SLOTS, sizeof(skuld_u128));
	cr_assert_not_null(crash.keys);
	for (uint32_t i = 0; i < CLIENTS; i++) {
		crash.clients[i].requests = calloc(REQUESTS_MAX, sizeof(struct request));
		cr_assert_not_null(crash.clients[i].requests);
	}
}

static void run_crashes(enum crash_mode mode, uint64_t crashes)
{
	run_init(mode);
	cr_assert(crashes > 0 && crashes <= CRASHES_MAX);
	uint64_t started = harness_now_ms();
	for (uint64_t done = 0; done < crashes; done += CYCLES)
		epoch_run((uint32_t)(crashes - done < CYCLES ? crashes - done : CYCLES));
	const struct totals *t = &crash.totals;
	cr_assert_eq(t->crashes, crashes);
	fprintf(stderr,
	        "server crash (%s): %" PRIu64 " crashes in %u epochs, %.1f s; %" PRIu64
	        " torn last writes discarded; requests: %" PRIu64 " acknowledged, %" PRIu64
	        " saved replies, %" PRIu64 " re-sent by number, %" PRIu64
	        " re-sent by key; %" PRIu64
	        " acknowledged events verified by key; reserves %" PRIu64 " ok / %" PRIu64
	        " refused; %" PRIu64 " EXPIRE events; %" PRIu64 " hold answers compared\n",
	        mode == MODE_POWER ? "power cuts" : "SIGKILL", t->crashes, crash.epoch,
	        (double)(harness_now_ms() - started) / 1000.0, t->torn_ends, t->requests_acked,
	        t->requests_saved, t->requests_resent_number, t->requests_resent_key,
	        t->events_verified, t->reserves_ok, t->reserves_refused, t->expired,
	        t->holds_compared);
	if (mode == MODE_POWER)
		fprintf(stderr,
		        "server crash (power cuts): writes not durable at the cut: %u (kept %u, "
		        "lost %u, torn %u; sectors kept %" PRIu64 ", lost %" PRIu64
		        "); size changes %u (%u undone); name changes %u (%u undone)\n",
		        t->cut.writes, t->cut.writes_kept, t->cut.writes_lost, t->cut.writes_torn,
		        t->cut.sectors_kept, t->cut.sectors_lost, t->cut.sizes, t->cut.sizes_undone,
		        t->cut.names, t->cut.names_undone);
	cr_assert_gt(t->reserves_refused, 0, "the reserves never reached the last units");
	cr_assert_gt(t->expired, 0, "no hold expired");
	if (mode == MODE_POWER && crashes >= POWER_CUTS)
		cr_assert_gt(t->cut.writes_torn, 0, "no write was ever torn in %" PRIu64 " cuts",
		             crashes);
}

Test(server_crash, power_cuts_lose_nothing_acknowledged, .timeout = 300, .fini = crash_cleanup)
{
	run_crashes(MODE_POWER, env_count("SKULD_CRASH_CUTS", POWER_CUTS));
}

Test(server_crash, sigkill_loses_nothing_acknowledged, .timeout = 300, .fini = crash_cleanup)
{
	run_crashes(MODE_KILL, env_count("SKULD_CRASH_KILLS", KILLS));
}

/* ---- Storage faults ------------------------------------------------------------------------- */

/* The write sequence named by the server's fatal message. */
static uint64_t fatal_write(const char *what, int error)
{
	static char text[65536];
	FILE *file = fopen(crash.stderr_path, "r");
	cr_assert_not_null(file);
	size_t got = fread(text, 1, sizeof(text) - 1, file);
	text[got] = '\0';
	fclose(file);
	const char *fatal = strstr(text, "fatal: log ");
	cr_assert_not_null(fatal, "no fatal message on stderr:\n%s", text);
	char expected[64];
	snprintf(expected, sizeof(expected), "fatal: log %s of write ", what);
	cr_assert(strncmp(fatal, expected, strlen(expected)) == 0 &&
	                  strstr(fatal, strerror(error)) != NULL,
	          "expected '%s... %s', got:\n%s", expected, strerror(error), fatal);
	unsigned long long write = 0;
	cr_assert_eq(sscanf(fatal + strlen(expected), "%llu", &write), 1);
	fprintf(stderr, "server crash (fault %s): skuld said: %.*s\n", crash.fault_spec,
	        (int)strcspn(fatal, "\n"), fatal);
	return write;
}

static void fault_run(const char *spec, const char *what, int error)
{
	run_init(MODE_FAULT);
	snprintf(crash.fault_spec, sizeof(crash.fault_spec), "%s", spec);
	epoch_begin();
	crash_server_start(true);
	catalog_setup();
	clients_open();
	load_run(20000, true);
	int status = server_wait(&crash.server);
	orphans_reap();
	cr_assert_eq(status, 3, "%s: skuld must exit 3, exited %d", spec, status);
	uint64_t failed = fatal_write(what, error);
	crash.cycle = 1;
	check_image(false);
	for (uint32_t i = 0; i < CLIENTS; i++) {
		const struct crash_client *client = &crash.clients[i];
		cr_assert_gt(client->acked_last, 0,
		             "client %u: nothing acknowledged before the fault", i);
		for (uint64_t n = 1; n <= client->sent_last; n++) {
			const struct request *request = &client->requests[n];
			cr_assert(!request->acknowledged || request->write < failed,
			          "client %u request %" PRIu64 " is in write %" PRIu64
			          " and was acknowledged, but write %" PRIu64 " failed",
			          i, n, request->write, failed);
		}
	}
	crash_server_start(false);
	check_state();
	clients_resolve();
	clients_close();
	cr_assert_eq(server_stop(&crash.server), 0);
	crash.cycle = 2;
	check_image(true);
}

Test(server_crash, storage_fault_write_eio, .timeout = 60, .fini = crash_cleanup)
{
	fault_run("write=EIO@40", "write", EIO);
}

Test(server_crash, storage_fault_write_enospc, .timeout = 60, .fini = crash_cleanup)
{
	fault_run("write=ENOSPC@40", "write", ENOSPC);
}

Test(server_crash, storage_fault_fdatasync_eio, .timeout = 60, .fini = crash_cleanup)
{
	fault_run("fdatasync=EIO@40", "fdatasync", EIO);
}

Test(server_crash, storage_fault_segment_creation_enospc, .timeout = 60, .fini = crash_cleanup)
{
	fault_run("fallocate=ENOSPC@3", "segment creation", ENOSPC);
}
