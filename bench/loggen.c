/*
 * loggen.c — skuld-loggen: writes a large, real log for skuld-replay's
 * figures (docs/BENCHMARKS.md, "Replay and verify").
 *
 *   skuld-loggen DIR [--events N] [--batch B] [--mix holds|pos]
 *
 * Creates DIR/log/ (segments, exactly as the server writes them: the log
 * writer, with write + fdatasync per group-commit write) and DIR/skuld.conf
 * with the capacities it used, so `skuld-replay state DIR --config
 * DIR/skuld.conf` replays it to the same results. Every record is a batch
 * really applied to a ledger of that configuration, from one of four
 * clients with consecutive request numbers, so the server itself would
 * recover from it.
 *
 * Mixes, over 1,000 items x 100 locations stocked high at the start:
 *   holds  the batch of skuld-microbench ledger: half RESERVEs of new holds,
 *          half COMMITs (3 in 4) or RELEASEs of the holds reserved by the
 *          batch before (the ledger's slowest path);
 *   pos    till traffic: 60% SALE, 20% RECEIVE, 10% ADJUST, 10% RETURN.
 * Batch time advances 1 ms per batch (key window 2 s: about 2 million keys
 * remembered at 1,000-event batches).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "ledger.h"
#include "log.h"

#define GEN_ITEMS     1000u
#define GEN_LOCATIONS 100u
#define GEN_CLIENTS   4u
#define GEN_START_NS  1795000000000000000ull /* 2026-11-18 */
#define GEN_BATCH_NS  1000000u

static const char config_text[] = "items_max = 1024\n"
                                  "locations_max = 128\n"
                                  "stock_max = 131072\n"
                                  "codes_max = 1024\n"
                                  "holds_max = 4096\n"
                                  "closed_holds_max = 4096\n"
                                  "closed_hold_grace_s = 1\n"
                                  "keys_max = 4194304\n"
                                  "key_window_s = 2\n";

struct gen {
	struct server_config config;
	struct ledger *ledger;
	struct log_writer *writer;
	struct skuld_event *events;
	struct skuld_result *results;
	uint32_t batch;
	uint64_t now_ns;
	uint64_t seed;
	uint64_t key_next;
	uint64_t hold_next;
	uint64_t requests[GEN_CLIENTS];
	uint64_t records;
	uint64_t refused;
	int pos;
};

static uint64_t gen_random(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	uint64_t z = *state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct skuld_event *gen_event(struct gen *gen, uint32_t index, uint16_t kind)
{
	struct skuld_event *event = memset(&gen->events[index], 0, sizeof(struct skuld_event));
	event->kind = kind;
	event->key.lo = ++gen->key_next;
	event->key.hi = 0x6c6f6767656eu;
	return event;
}

/* Applies count events as one record of the next client and appends it,
 * flushing (write + fdatasync) when the write is full. Returns 0 or -errno. */
static int gen_record(struct gen *gen, uint32_t count)
{
	gen->now_ns += GEN_BATCH_NS;
	uint32_t client = (uint32_t)(gen->records % GEN_CLIENTS);
	ledger_apply(gen->ledger, gen->now_ns, LEDGER_SOURCE_CLIENT, gen->events, count,
	             gen->results);
	for (uint32_t i = 0; i < count; i++)
		gen->refused += gen->results[i].status != SKULD_OK;
	struct log_record_info info = {
	        .timestamp_ns = gen->now_ns,
	        .client = {.lo = 0x10000u + client, .hi = 0x6c6f6767656eu},
	        .request = ++gen->requests[client],
	        .operation = SKULD_OP_SUBMIT,
	};
	int ret = log_writer_append(gen->writer, &info, gen->events, gen->results, count, NULL);
	if (ret == -ENOSPC) {
		ret = log_writer_flush(gen->writer);
		if (ret == 0)
			ret = log_writer_append(gen->writer, &info, gen->events, gen->results,
			                        count, NULL);
	}
	gen->records++;
	return ret;
}

/* Locations, items, and a high stock of every item everywhere. */
static int gen_catalog(struct gen *gen)
{
	uint32_t n = 0;
	int ret = 0;
	for (uint32_t step = 0; ret == 0 && step < GEN_LOCATIONS + GEN_ITEMS * (1 + GEN_LOCATIONS);
	     step++) {
		struct skuld_event *event;
		if (step < GEN_LOCATIONS) {
			event = gen_event(gen, n, SKULD_LOCATION_DEFINE);
			event->location = step + 1;
			snprintf(event->code, sizeof(event->code), "STORE-%u", step + 1);
		} else if (step < GEN_LOCATIONS + GEN_ITEMS) {
			event = gen_event(gen, n, SKULD_ITEM_DEFINE);
			event->item = step - GEN_LOCATIONS + 1;
			snprintf(event->code, sizeof(event->code), "SKU-%07u", event->item);
		} else {
			uint32_t pair = step - GEN_LOCATIONS - GEN_ITEMS;
			event = gen_event(gen, n, SKULD_RECEIVE);
			event->item = pair / GEN_LOCATIONS + 1;
			event->location = pair % GEN_LOCATIONS + 1;
			event->quantity = 1000000000;
		}
		if (++n == gen->batch) {
			ret = gen_record(gen, n);
			n = 0;
		}
	}
	return ret == 0 && n > 0 ? gen_record(gen, n) : ret;
}

static void gen_fill_holds(struct gen *gen)
{
	uint32_t half = gen->batch / 2;
	uint64_t previous_first = gen->hold_next - half;
	for (uint32_t i = 0; i < half; i++) {
		uint64_t r = gen_random(&gen->seed);
		struct skuld_event *event = gen_event(gen, i, SKULD_RESERVE);
		event->item = 1 + (uint32_t)(r % GEN_ITEMS);
		event->location = 1 + (uint32_t)((r >> 32) % GEN_LOCATIONS);
		event->id = gen->hold_next++;
		event->quantity = 1 + (int64_t)((r >> 20) & 3);
		event->ttl_s = 900;
	}
	for (uint32_t i = half; i < gen->batch; i++) {
		uint32_t j = i - half;
		struct skuld_event *event =
		        gen_event(gen, i, (j & 3) == 3 ? SKULD_RELEASE : SKULD_COMMIT);
		event->id = previous_first + j;
	}
}

static void gen_fill_pos(struct gen *gen)
{
	for (uint32_t i = 0; i < gen->batch; i++) {
		uint64_t r = gen_random(&gen->seed);
		uint32_t pick = (uint32_t)(r % 10);
		uint16_t kind = pick < 6   ? SKULD_SALE
		                : pick < 8 ? SKULD_RECEIVE
		                : pick < 9 ? SKULD_ADJUST
		                           : SKULD_RETURN;
		struct skuld_event *event = gen_event(gen, i, kind);
		event->item = 1 + (uint32_t)((r >> 8) % GEN_ITEMS);
		event->location = 1 + (uint32_t)((r >> 32) % GEN_LOCATIONS);
		event->quantity = 1 + (int64_t)((r >> 20) & 3);
		event->occurred_at = gen->now_ns - (r >> 40) % 1000000000u;
		if (kind == SKULD_ADJUST) {
			event->reason = SKULD_REASON_CORRECTION;
			if (r & (1u << 4))
				event->quantity = -event->quantity;
		}
	}
}

static int gen_open(struct gen *gen, const char *dir)
{
	char path[CONFIG_PATH_SIZE + 32], error[CONFIG_ERROR_SIZE];
	snprintf(path, sizeof(path), "%s/skuld.conf", dir);
	FILE *file = fopen(path, "w");
	if (file == NULL || fputs(config_text, file) < 0 || fclose(file) != 0) {
		fprintf(stderr, "skuld-loggen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	config_defaults(&gen->config);
	if (config_load(&gen->config, path, error, sizeof(error)) != 0 ||
	    config_finish(&gen->config, error, sizeof(error)) != 0) {
		fprintf(stderr, "skuld-loggen: %s\n", error);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/log", dir);
	if (mkdir(path, 0755) != 0) {
		fprintf(stderr, "skuld-loggen: %s: %s (it must not exist yet)\n", path,
		        strerror(errno));
		return -1;
	}
	gen->events = calloc(gen->batch, sizeof(struct skuld_event));
	gen->results = calloc(gen->batch, sizeof(struct skuld_result));
	int ret = gen->events && gen->results ? ledger_create(&gen->config.ledger, &gen->ledger)
	                                      : -ENOMEM;
	struct log_writer_config writer = {
	        .dir = path,
	        .segment_size = gen->config.segment_bytes,
	        .write_size_max = gen->config.write_bytes,
	        .log_id = {.lo = 0x6c6f6767656eu, .hi = 0x736b756c64u},
	};
	struct log_position empty = {.write_next = 1, .event_next = 1};
	if (ret == 0)
		ret = log_writer_init(&gen->writer, &writer, &empty);
	if (ret != 0)
		fprintf(stderr, "skuld-loggen: %s\n", strerror(-ret));
	return ret;
}

static int arguments_parse(int argc, char **argv, struct gen *gen, uint64_t *events)
{
	for (int i = 2; i + 1 < argc; i += 2) {
		char *end = NULL;
		unsigned long long value = strtoull(argv[i + 1], &end, 10);
		if (strcmp(argv[i], "--events") == 0 && *end == '\0' && value > 0)
			*events = value;
		else if (strcmp(argv[i], "--batch") == 0 && *end == '\0' && value >= 2 &&
		         value <= gen->config.frame_events_max)
			gen->batch = (uint32_t)value;
		else if (strcmp(argv[i], "--mix") == 0 && strcmp(argv[i + 1], "pos") == 0)
			gen->pos = 1;
		else if (strcmp(argv[i], "--mix") == 0 && strcmp(argv[i + 1], "holds") == 0)
			gen->pos = 0;
		else
			return -1;
	}
	return argc >= 2 && argc % 2 == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static struct gen gen;
	uint64_t events = 10000000;
	gen.batch = 1000;
	gen.seed = 11;
	gen.now_ns = GEN_START_NS;
	config_defaults(&gen.config);
	if (arguments_parse(argc, argv, &gen, &events) != 0) {
		fprintf(stderr,
		        "usage: skuld-loggen DIR [--events N] [--batch 2..%u] "
		        "[--mix holds|pos]\n",
		        gen.config.frame_events_max);
		return 2;
	}
	int ret = gen_open(&gen, argv[1]);
	gen.hold_next = 1 + gen.batch / 2; /* the first commits find no hold */
	if (ret == 0)
		ret = gen_catalog(&gen);
	uint64_t written = gen.records > 0 ? log_writer_event_next(gen.writer) - 1 : 0;
	while (ret == 0 && written < events) {
		if (gen.pos)
			gen_fill_pos(&gen);
		else
			gen_fill_holds(&gen);
		ret = gen_record(&gen, gen.batch);
		written += gen.batch;
	}
	if (ret == 0)
		ret = log_writer_flush(gen.writer);
	if (ret != 0 && ret != -ENODATA)
		fprintf(stderr, "skuld-loggen: writing the log: %s\n", strerror(-ret));
	else
		printf("skuld-loggen: %s/log: %" PRIu64 " records, %" PRIu64 " events (%" PRIu64
		       " refused), %s mix, %u events per record\n",
		       argv[1], gen.records, log_writer_event_next(gen.writer) - 1, gen.refused,
		       gen.pos ? "pos" : "holds", gen.batch);
	if (gen.writer != NULL)
		log_writer_close(gen.writer);
	ledger_destroy(gen.ledger);
	free(gen.events);
	free(gen.results);
	return ret != 0 && ret != -ENODATA ? 1 : 0;
}
