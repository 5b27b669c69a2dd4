/*
 * micro_snapshot.c — snapshot figures for skuld-microbench.
 *
 *   snapshot  A ledger of 1,000,000 item-locations (1,000 items x 1,000
 *             locations, every pair stocked, the key window emptied) saved
 *             to memory with ledger_snapshot_save and loaded back into a
 *             fresh ledger with ledger_snapshot_load: time of each and the
 *             stream's size. The loaded ledger's hash is checked.
 *   restart   The server's start-up (service_create + recovery, the code the
 *             daemon runs) on a real data directory in $TMPDIR (or
 *             SKULD_BENCH_DIR): a log of the same 1,000,000 item-locations
 *             plus SKULD_BENCH_EVENTS hold events (default 10,000,000: half
 *             RESERVE, half COMMIT or RELEASE), with a snapshot file taken
 *             SKULD_BENCH_TAIL events before the end (default 1,000,000).
 *             Start-up with the snapshot (load it, replay the tail) against
 *             a full replay; both must end in the same ledger_hash. About
 *             2 GB of disk for the default.
 * The data directory is removed afterwards. Figures go to stdout; none of
 * this is a test (docs/BENCHMARKS.md records them).
 */
#include "micro.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"
#include "ledger_snapshot.h"
#include "log.h"
#include "recovery.h"
#include "service.h"
#include "snapshot.h"

#define GEN_ITEMS     1000u
#define GEN_LOCATIONS 1000u
#define GEN_BATCH     1000u
#define GEN_CLIENTS   4u
#define GEN_BATCH_NS  1000000ull
#define GEN_WINDOW_NS (2ull * 1000000000ull) /* key window: 2 s of batches */

struct gen {
	struct ledger *ledger;
	struct log_writer *writer; /* NULL: nothing logged */
	struct skuld_event events[GEN_BATCH];
	struct skuld_result results[GEN_BATCH];
	uint64_t now_ns;
	uint64_t key_next;
	uint64_t hold_next;
	uint64_t request[GEN_CLIENTS];
	uint64_t batches;
	uint64_t seed;
};

static void gen_config(struct ledger_config *config)
{
	ledger_config_default(config);
	config->items_max = 1024;
	config->locations_max = 1024;
	config->stock_max = 1u << 20;
	config->codes_max = 2048;
	config->holds_max = 1u << 16;
	config->closed_holds_max = 1u << 16;
	config->closed_hold_grace_ns = 1000000000ull;
	config->keys_max = 1u << 21;
	config->key_window_ns = GEN_WINDOW_NS;
	config->batch_events_max = GEN_BATCH;
}

static int gen_apply(struct gen *gen, uint32_t count)
{
	gen->now_ns += GEN_BATCH_NS;
	ledger_apply(gen->ledger, gen->now_ns, LEDGER_SOURCE_CLIENT, gen->events, count,
	             gen->results);
	if (gen->writer == NULL)
		return 0;
	uint32_t client = (uint32_t)(gen->batches++ % GEN_CLIENTS);
	struct log_record_info info = {
	        .timestamp_ns = gen->now_ns,
	        .client = {.lo = client + 1, .hi = 0x62656e6368ull},
	        .request = ++gen->request[client],
	        .operation = SKULD_OP_SUBMIT,
	};
	int ret = log_writer_append(gen->writer, &info, gen->events, gen->results, count, NULL);
	if (ret == -ENOSPC) {
		ret = log_writer_flush(gen->writer);
		if (ret == 0)
			ret = log_writer_append(gen->writer, &info, gen->events, gen->results,
			                        count, NULL);
	}
	if (ret != 0)
		fprintf(stderr, "snapshot bench: log: %s\n", strerror(-ret));
	return ret;
}

static struct skuld_event *gen_event(struct gen *gen, uint32_t n, uint16_t kind)
{
	struct skuld_event *event = memset(&gen->events[n], 0, sizeof(struct skuld_event));
	event->key.lo = ++gen->key_next;
	event->key.hi = 0x736e6170ull;
	event->kind = kind;
	return event;
}

/* Locations, items, and 100 units of every item at every location. */
static int gen_catalog(struct gen *gen)
{
	uint32_t n = 0;
	int ret = 0;
	for (uint32_t location = 1; location <= GEN_LOCATIONS && ret == 0; location++) {
		struct skuld_event *event = gen_event(gen, n++, SKULD_LOCATION_DEFINE);
		event->location = location;
		snprintf(event->code, sizeof(event->code), "STORE-%u", location);
		if (n == GEN_BATCH) {
			ret = gen_apply(gen, n);
			n = 0;
		}
	}
	for (uint32_t item = 1; item <= GEN_ITEMS && ret == 0; item++) {
		struct skuld_event *event = gen_event(gen, n++, SKULD_ITEM_DEFINE);
		event->item = item;
		snprintf(event->code, sizeof(event->code), "SKU-%07u", item);
		if (n == GEN_BATCH) {
			ret = gen_apply(gen, n);
			n = 0;
		}
	}
	for (uint32_t item = 1; item <= GEN_ITEMS && ret == 0; item++) {
		for (uint32_t location = 1; location <= GEN_LOCATIONS && ret == 0; location++) {
			struct skuld_event *event = gen_event(gen, n++, SKULD_RECEIVE);
			event->item = item;
			event->location = location;
			event->quantity = 100;
			if (n == GEN_BATCH) {
				ret = gen_apply(gen, n);
				n = 0;
			}
		}
	}
	return ret != 0 || n == 0 ? ret : gen_apply(gen, n);
}

/* One batch of the holds mix: 500 new holds, then commits (3 in 4) or
 * releases of the 500 of the batch before. */
static int gen_holds(struct gen *gen)
{
	const uint32_t half = GEN_BATCH / 2;
	uint64_t previous = gen->hold_next - half;
	for (uint32_t i = 0; i < half; i++) {
		uint64_t r = micro_random(&gen->seed);
		struct skuld_event *event = gen_event(gen, i, SKULD_RESERVE);
		event->item = 1 + (uint32_t)(r % GEN_ITEMS);
		event->location = 1 + (uint32_t)((r >> 32) % GEN_LOCATIONS);
		event->id = gen->hold_next++;
		event->quantity = 1;
		event->ttl_s = 900;
	}
	for (uint32_t i = 0; i < half; i++) {
		struct skuld_event *event =
		        gen_event(gen, half + i, (i & 3) == 3 ? SKULD_RELEASE : SKULD_COMMIT);
		event->id = previous + i;
	}
	return gen_apply(gen, GEN_BATCH);
}

static int gen_init(struct gen *gen)
{
	memset(gen, 0, sizeof(*gen));
	struct ledger_config config;
	gen_config(&config);
	gen->now_ns = 1795000000000000000ull;
	gen->hold_next = GEN_BATCH; /* the first batch's "previous" holds are unknown */
	gen->seed = 0x5eed;
	int ret = ledger_create(&config, &gen->ledger);
	if (ret != 0)
		fprintf(stderr, "snapshot bench: ledger_create: %s\n", strerror(-ret));
	return ret;
}

/* ---- snapshot: save and load in memory ------------------------------------------ */

struct memory {
	uint8_t *bytes;
	size_t size;
	size_t capacity;
	size_t offset;
};

static int memory_write(void *context, const void *bytes, size_t size)
{
	struct memory *memory = context;
	if (memory->size + size > memory->capacity)
		return -ENOSPC;
	memcpy(memory->bytes + memory->size, bytes, size);
	memory->size += size;
	return 0;
}

static int memory_read(void *context, void *bytes, size_t size)
{
	struct memory *memory = context;
	if (size > memory->size - memory->offset)
		return -ENODATA;
	memcpy(bytes, memory->bytes + memory->offset, size);
	memory->offset += size;
	return 0;
}

int micro_snapshot(int rounds)
{
	struct gen gen;
	if (gen_init(&gen) != 0 || gen_catalog(&gen) != 0)
		return -1;
	/* An empty batch after the key window: the window is empty, so what
	 * is measured is the catalog and the 1,000,000 stock entries. */
	gen.now_ns += GEN_WINDOW_NS;
	ledger_apply(gen.ledger, gen.now_ns, LEDGER_SOURCE_CLIENT, NULL, 0, NULL);
	struct memory memory = {.capacity = (size_t)ledger_snapshot_size(gen.ledger)};
	memory.bytes = malloc(memory.capacity);
	double *save_rates = calloc((size_t)rounds, sizeof(double));
	double *load_rates = calloc((size_t)rounds, sizeof(double));
	struct ledger_config config;
	gen_config(&config);
	uint64_t hash = ledger_hash(gen.ledger);
	int status = memory.bytes != NULL && save_rates != NULL && load_rates != NULL ? 0 : -1;
	for (int round = 0; round < rounds && status == 0; round++) {
		memory.size = 0;
		memory.offset = 0;
		struct snapshot_sink sink = {.write = memory_write, .context = &memory};
		uint64_t start = micro_now_ns();
		status = ledger_snapshot_save(gen.ledger, &sink);
		uint64_t saved = micro_now_ns();
		struct ledger *copy = NULL;
		if (status == 0)
			status = ledger_create(&config, &copy);
		uint64_t created = micro_now_ns();
		struct snapshot_source source = {.read = memory_read, .context = &memory};
		char reason[256] = "";
		if (status == 0)
			status = ledger_snapshot_load(copy, &source, reason, sizeof(reason));
		uint64_t loaded = micro_now_ns();
		if (status != 0 || ledger_hash(copy) != hash) {
			fprintf(stderr, "snapshot bench: round %d: %d %s\n", round, status, reason);
			status = -1;
		}
		ledger_destroy(copy);
		save_rates[round] = (double)(saved - start) / 1e6;
		load_rates[round] = (double)(loaded - created) / 1e6;
	}
	if (status == 0) {
		printf("snapshot: 1,000,000 item-locations, stream %.1f MiB (%.1f bytes per "
		       "item-location)\n",
		       (double)memory.size / (1 << 20), (double)memory.size / 1e6);
		micro_report("snapshot: save to memory", save_rates, rounds, "ms");
		micro_report("snapshot: load into a new ledger", load_rates, rounds, "ms");
	}
	free(save_rates);
	free(load_rates);
	free(memory.bytes);
	ledger_destroy(gen.ledger);
	return status;
}

/* ---- restart: the server's recovery with and without a snapshot ----------------- */

struct restart {
	char dir[256];
	char log[300];
	char snapshots[300];
	struct service_config config;
};

static void tree_remove(const char *path)
{
	DIR *dir = opendir(path);
	if (dir == NULL) {
		unlink(path);
		return;
	}
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		char child[600];
		snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
		tree_remove(child);
	}
	closedir(dir);
	rmdir(path);
}

static int restart_writer(struct restart *restart, const struct log_position *position,
                          struct log_writer **writer)
{
	struct log_writer_config config = {
	        .dir = restart->log,
	        .segment_size = 64ull << 20,
	        .write_size_max = 4u << 20,
	        .log_id = {.lo = 0x72657374, .hi = 0x61727421},
	};
	int ret = log_writer_init(writer, &config, position);
	if (ret != 0)
		fprintf(stderr, "snapshot bench: log writer: %s\n", strerror(-ret));
	return ret;
}

/* Starts a server's state as the daemon does: returns the seconds spent in
 * service_create and in recovery (snapshots: the snapshot directory or
 * NULL), and the service through *out. */
static int restart_once(struct restart *restart, const char *snapshots, struct service **out,
                        struct recovery_summary *summary, double *create_s, double *recover_s)
{
	uint64_t start = micro_now_ns();
	int ret = service_create(&restart->config, out);
	uint64_t created = micro_now_ns();
	char message[1024] = "";
	if (ret == 0)
		ret = recovery_run_snapshots(*out, restart->log, snapshots, summary, message,
		                             sizeof(message));
	uint64_t recovered = micro_now_ns();
	if (ret != 0)
		fprintf(stderr, "snapshot bench: recovery: %s\n", message);
	*create_s = (double)(created - start) / 1e9;
	*recover_s = (double)(recovered - created) / 1e9;
	return ret;
}

/* The log up to the snapshot, a snapshot of it (taken from a recovered
 * service, as a server would), then the tail. */
static int restart_prepare(struct restart *restart, uint64_t events, uint64_t tail)
{
	struct gen gen;
	struct log_position empty = {.write_next = 1, .event_next = 1};
	int ret = gen_init(&gen);
	if (ret == 0)
		ret = restart_writer(restart, &empty, &gen.writer);
	if (ret == 0)
		ret = gen_catalog(&gen);
	uint64_t batches = events / GEN_BATCH;
	uint64_t before = tail < events ? (events - tail) / GEN_BATCH : 0;
	for (uint64_t b = 0; b < before && ret == 0; b++)
		ret = gen_holds(&gen);
	if (ret == 0)
		ret = log_writer_flush(gen.writer);
	log_writer_close(gen.writer);
	gen.writer = NULL;
	struct service *service = NULL;
	struct recovery_summary summary;
	double create_s = 0;
	double recover_s = 0;
	if (ret == 0)
		ret = restart_once(restart, NULL, &service, &summary, &create_s, &recover_s);
	struct log_writer *writer = NULL;
	if (ret == 0)
		ret = restart_writer(restart, &summary.position, &writer);
	struct log_position position;
	uint64_t size = 0;
	char message[1024] = "";
	uint64_t start = micro_now_ns();
	if (ret == 0) {
		service_start(service, writer, &summary.position, gen.now_ns);
		ret = service_snapshot_position(service, &position);
	}
	if (ret == 0)
		ret = snapshot_write(service, restart->snapshots, &position, 0, -1, &size, message,
		                     sizeof(message));
	uint64_t written = micro_now_ns();
	if (ret == 0)
		printf("restart: snapshot of %" PRIu64 " events: %.1f MiB, written and fsynced in "
		       "%.0f ms\n",
		       position.event_next - 1, (double)size / (1 << 20),
		       (double)(written - start) / 1e6);
	else
		fprintf(stderr, "snapshot bench: snapshot: %s %s\n", strerror(-ret), message);
	log_writer_close(writer);
	service_destroy(service);
	if (ret == 0)
		ret = restart_writer(restart, &summary.position, &gen.writer);
	for (uint64_t b = before; b < batches && ret == 0; b++)
		ret = gen_holds(&gen);
	if (ret == 0)
		ret = log_writer_flush(gen.writer);
	if (ret == -ENODATA) /* no tail */
		ret = 0;
	log_writer_close(gen.writer);
	ledger_destroy(gen.ledger);
	return ret;
}

int micro_restart(int rounds)
{
	struct restart restart;
	memset(&restart, 0, sizeof(restart));
	const char *base = getenv("SKULD_BENCH_DIR");
	if (base == NULL)
		base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	snprintf(restart.dir, sizeof(restart.dir), "%s/skuld-restart-XXXXXX", base);
	if (mkdtemp(restart.dir) == NULL) {
		fprintf(stderr, "snapshot bench: mkdtemp %s: %s\n", restart.dir, strerror(errno));
		return -1;
	}
	snprintf(restart.log, sizeof(restart.log), "%s/log", restart.dir);
	snprintf(restart.snapshots, sizeof(restart.snapshots), "%s/snapshots", restart.dir);
	mkdir(restart.log, 0755);
	mkdir(restart.snapshots, 0755);
	const char *text = getenv("SKULD_BENCH_EVENTS");
	uint64_t events = text != NULL ? strtoull(text, NULL, 10) : 10000000;
	text = getenv("SKULD_BENCH_TAIL");
	uint64_t tail_events = text != NULL ? strtoull(text, NULL, 10) : 1000000;
	gen_config(&restart.config.ledger);
	restart.config.sessions_max = 16;
	restart.config.events_max = GEN_BATCH;
	restart.config.expire_batch = 256;
	restart.config.query_limit = 1024;
	restart.config.query_scan = 65536;
	restart.config.write_size_max = 4u << 20;
	restart.config.log_dir = restart.log;
	int status = restart_prepare(&restart, events, tail_events);
	if (rounds > 3)
		rounds = 3; /* each round replays the whole log */
	for (int round = 0; round < rounds && status == 0; round++) {
		struct service *full = NULL;
		struct service *fast = NULL;
		struct recovery_summary whole;
		struct recovery_summary tail;
		double create_full = 0, replay = 0, create_fast = 0, load = 0;
		status = restart_once(&restart, NULL, &full, &whole, &create_full, &replay);
		if (status == 0)
			status = restart_once(&restart, restart.snapshots, &fast, &tail,
			                      &create_fast, &load);
		if (status == 0 &&
		    ledger_hash(service_ledger(full)) != ledger_hash(service_ledger(fast))) {
			fprintf(stderr, "snapshot bench: the two start-ups differ\n");
			status = -1;
		}
		if (status == 0)
			printf("restart round %d: full replay of %" PRIu64 " events %.2f s (%.2f M "
			       "events/s); snapshot of %" PRIu64 " events + replay of %" PRIu64
			       " %.2f s; ledger allocation %.2f s each\n",
			       round, whole.events, replay, (double)whole.events / replay / 1e6,
			       tail.snapshot, tail.events, load, create_full);
		service_destroy(full);
		service_destroy(fast);
	}
	tree_remove(restart.dir);
	return status;
}
