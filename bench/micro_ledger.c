/*
 * micro_ledger.c — batches of 1,000 events through the ledger state machine
 * and into the log's group-commit buffer, over 100,000 uniform
 * item-locations (1,000 items x 100 locations), with a steady number of
 * open holds: each batch reserves 500 new holds and commits (3 in 4) or
 * releases (1 in 4) the 500 reserved by the batch before. Stock starts high
 * enough that refusals are rare; accepted and refused events are counted
 * separately.
 *
 * Also the memory scenario: a ledger sized for and filled with 1,000,000
 * item-locations, reporting the allocated bytes per item-location.
 *
 * And the discrepancies scenario (on demand): short sales of new
 * (item, location) pairs into a full discrepancy table of 1,024, 65,536
 * and 1,048,576 records, each evicting one, in thread CPU ns per sale.
 */
#include "micro.h"

#include "ledger.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_ITEMS     1000u
#define BENCH_LOCATIONS 100u
#define BENCH_BATCH     1000u
#define BENCH_BATCHES   2000u    /* per round: 2 million events (default) */
#define BENCH_BATCH_NS  1000000u /* ledger time advances 1 ms per batch */

struct bench {
	struct ledger *ledger;
	struct log_writer *writer;
	char dir[64];
	struct skuld_event *events;
	struct skuld_result *results;
	uint64_t seed;
	uint64_t key_next;
	uint64_t hold_next;
	uint64_t now_ns;
	uint64_t accepted;
	uint64_t refused;
	uint64_t request;
	uint64_t cpu_ns; /* thread CPU time in the timed part of the round */
};

/* Thread CPU time: unlike the wall clock, it stops while other work on a
 * shared machine has the core, so A/B comparisons are less noisy. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void event_key(struct bench *bench, struct skuld_event *event)
{
	event->key.lo = ++bench->key_next;
	event->key.hi = 0x736b756c64u;
}

/* Applies count events from bench->events outside the timed loop (setup). */
static int bench_setup_apply(struct bench *bench, uint32_t count)
{
	bench->now_ns += BENCH_BATCH_NS;
	ledger_apply(bench->ledger, bench->now_ns, LEDGER_SOURCE_CLIENT, bench->events, count,
	             bench->results);
	for (uint32_t i = 0; i < count; i++) {
		if (bench->results[i].status != SKULD_OK) {
			fprintf(stderr, "ledger: setup event %u (%s) failed: %s\n", i,
			        skuld_event_kind_name(bench->events[i].kind),
			        skuld_status_name(bench->results[i].status));
			return -1;
		}
	}
	return 0;
}

static int bench_catalog(struct bench *bench, uint32_t items, uint32_t locations, int64_t stock)
{
	uint32_t n = 0;
	for (uint32_t location = 1; location <= locations; location++, n++) {
		if (n == BENCH_BATCH && bench_setup_apply(bench, n) != 0)
			return -1;
		n %= BENCH_BATCH;
		struct skuld_event *event =
		        memset(&bench->events[n], 0, sizeof(struct skuld_event));
		event_key(bench, event);
		event->kind = SKULD_LOCATION_DEFINE;
		event->location = location;
		snprintf(event->code, sizeof(event->code), "STORE-%u", location);
	}
	for (uint32_t item = 1; item <= items; item++, n++) {
		if (n == BENCH_BATCH && bench_setup_apply(bench, n) != 0)
			return -1;
		n %= BENCH_BATCH;
		struct skuld_event *event =
		        memset(&bench->events[n], 0, sizeof(struct skuld_event));
		event_key(bench, event);
		event->kind = SKULD_ITEM_DEFINE;
		event->item = item;
		snprintf(event->code, sizeof(event->code), "SKU-%07u", item);
	}
	for (uint32_t item = 1; item <= items; item++) {
		for (uint32_t location = 1; location <= locations; location++, n++) {
			if (n == BENCH_BATCH && bench_setup_apply(bench, n) != 0)
				return -1;
			n %= BENCH_BATCH;
			struct skuld_event *event =
			        memset(&bench->events[n], 0, sizeof(struct skuld_event));
			event_key(bench, event);
			event->kind = SKULD_RECEIVE;
			event->item = item;
			event->location = location;
			event->quantity = stock;
		}
	}
	return n == 0 ? 0 : bench_setup_apply(bench, n);
}

/* Fills one batch: 500 reserves of new holds, then commits or releases of
 * the 500 holds reserved by the previous batch. */
static void bench_batch_fill(struct bench *bench)
{
	const uint32_t half = BENCH_BATCH / 2;
	uint64_t previous_first = bench->hold_next - half;
	memset(bench->events, 0, sizeof(struct skuld_event) * BENCH_BATCH);
	for (uint32_t i = 0; i < half; i++) {
		struct skuld_event *event = &bench->events[i];
		uint64_t r = micro_random(&bench->seed);
		event_key(bench, event);
		event->kind = SKULD_RESERVE;
		event->item = 1 + (uint32_t)(r % BENCH_ITEMS);
		event->location = 1 + (uint32_t)((r >> 32) % BENCH_LOCATIONS);
		event->id = bench->hold_next++;
		event->quantity = 1 + (int64_t)((r >> 20) & 3);
		event->ttl_s = 900;
	}
	for (uint32_t i = 0; i < half; i++) {
		struct skuld_event *event = &bench->events[half + i];
		event_key(bench, event);
		event->id = previous_first + i;
		event->kind = (i & 3) == 3 ? SKULD_RELEASE : SKULD_COMMIT;
	}
}

static int bench_open_writer(struct bench *bench)
{
	struct log_writer_config config = {
	        .dir = bench->dir,
	        .segment_size = 1u << 30,
	        .write_size_max = 16u << 20,
	        .log_id = {.lo = 3, .hi = 4},
	};
	struct log_position empty = {.write_next = 1, .event_next = 1}; /* a new log */
	int error = log_writer_init(&bench->writer, &config, &empty);
	if (error != 0)
		fprintf(stderr, "ledger: log writer: %s\n", strerror(-error));
	return error;
}

/* Seals the full write buffer and completes it without I/O (the write is
 * the server's I/O side, not measured here), so the writer goes on with its
 * other buffer exactly as a server does: the two buffers are reused, never
 * reallocated. Returns 0 or -errno. */
static int bench_recycle(struct bench *bench)
{
	struct log_write write;
	int error = log_writer_seal(bench->writer, &write);
	if (error == 0)
		log_writer_complete(bench->writer, &write);
	return error;
}

/* Batches per round: BENCH_BATCHES, or SKULD_BENCH_BATCHES from the
 * environment (smaller for cachegrind runs, which are ~50x slower). */
static uint32_t bench_batches(void)
{
	const char *text = getenv("SKULD_BENCH_BATCHES");
	long value = text != NULL ? strtol(text, NULL, 10) : 0;
	return value > 0 && value <= 1000000 ? (uint32_t)value : BENCH_BATCHES;
}

/* One round: bench_batches() batches through apply + append; returns the
 * nanoseconds spent in them (sealing a full write buffer is not counted:
 * that is the I/O side of group commit). */
static int64_t bench_round(struct bench *bench)
{
	uint64_t elapsed = 0;
	uint32_t batches = bench_batches();
	for (uint32_t b = 0; b < batches; b++) {
		bench_batch_fill(bench);
		bench->now_ns += BENCH_BATCH_NS;
		struct log_record_info info = {.timestamp_ns = bench->now_ns,
		                               .client = {.lo = 1},
		                               .request = ++bench->request,
		                               .operation = SKULD_OP_SUBMIT};
		uint64_t start = micro_now_ns();
		uint64_t cpu_start = thread_cpu_ns();
		ledger_apply(bench->ledger, bench->now_ns, LEDGER_SOURCE_CLIENT, bench->events,
		             BENCH_BATCH, bench->results);
		int error = log_writer_append(bench->writer, &info, bench->events, bench->results,
		                              BENCH_BATCH, NULL);
		bench->cpu_ns += thread_cpu_ns() - cpu_start;
		elapsed += micro_now_ns() - start;
		if (error == -ENOSPC) {
			error = bench_recycle(bench);
			if (error == 0)
				error = log_writer_append(bench->writer, &info, bench->events,
				                          bench->results, BENCH_BATCH, NULL);
		}
		if (error != 0) {
			fprintf(stderr, "ledger: append: %s\n", strerror(-error));
			return -1;
		}
		for (uint32_t i = 0; i < BENCH_BATCH; i++) {
			if (bench->results[i].status == SKULD_OK)
				bench->accepted++;
			else
				bench->refused++;
		}
	}
	return (int64_t)elapsed;
}

static void bench_config(struct ledger_config *config, uint32_t stock_max)
{
	ledger_config_default(config);
	config->items_max = stock_max / BENCH_LOCATIONS + 16;
	config->locations_max = BENCH_LOCATIONS;
	config->stock_max = stock_max;
	config->codes_max = config->items_max;
	config->holds_max = 4096;
	config->closed_holds_max = 4096;
	config->closed_hold_grace_ns = 1000000000u; /* 1 s of ledger time */
	config->keys_max = 4u << 20;
	config->key_window_ns = 2000000000u; /* 2 s of ledger time: 2M keys */
}

static void bench_free(struct bench *bench)
{
	if (bench->writer != NULL)
		log_writer_close(bench->writer);
	if (bench->ledger != NULL)
		ledger_destroy(bench->ledger);
	if (bench->dir[0] != '\0')
		rmdir(bench->dir);
	free(bench->events), free(bench->results);
}

static int bench_init(struct bench *bench, uint32_t stock_max)
{
	memset(bench, 0, sizeof(*bench));
	bench->seed = 11;
	bench->hold_next = 1 + BENCH_BATCH / 2; /* the first commits miss: no holds yet */
	bench->events = calloc(BENCH_BATCH, sizeof(struct skuld_event));
	bench->results = calloc(BENCH_BATCH, sizeof(struct skuld_result));
	struct ledger_config config;
	bench_config(&config, stock_max);
	int error = ledger_create(&config, &bench->ledger);
	if (bench->events == NULL || bench->results == NULL || error != 0) {
		fprintf(stderr, "ledger: cannot create: %s\n", strerror(error ? -error : ENOMEM));
		return -1;
	}
	return 0;
}

int micro_ledger(int rounds)
{
	struct bench bench;
	double *rates = calloc((size_t)rounds, sizeof(double));
	double *cpu_rates = calloc((size_t)rounds, sizeof(double));
	int status = -1;
	if (rates == NULL || cpu_rates == NULL ||
	    bench_init(&bench, BENCH_ITEMS * BENCH_LOCATIONS) != 0)
		goto out;
	snprintf(bench.dir, sizeof(bench.dir), "/tmp/skuld-microbench-XXXXXX");
	if (mkdtemp(bench.dir) == NULL || bench_open_writer(&bench) != 0)
		goto out;
	if (bench_catalog(&bench, BENCH_ITEMS, BENCH_LOCATIONS, 1000000000) != 0)
		goto out;
	uint64_t accepted = 0, refused = 0;
	for (int round = 0; round < rounds; round++) {
		bench.accepted = bench.refused = bench.cpu_ns = 0;
		int64_t elapsed = bench_round(&bench);
		if (elapsed <= 0)
			goto out;
		rates[round] = (double)bench_batches() * BENCH_BATCH * 1e9 / (double)elapsed;
		cpu_rates[round] =
		        (double)bench_batches() * BENCH_BATCH * 1e9 / (double)bench.cpu_ns;
		accepted += bench.accepted;
		refused += bench.refused;
	}
	micro_report("ledger: apply+log append, 1000/batch", rates, rounds, "events/s");
	micro_report("  the same per thread CPU second", cpu_rates, rounds, "events/s");
	printf("%-34s accepted %llu, refused %llu (the first batch's commits find no hold)\n", "",
	       (unsigned long long)accepted, (unsigned long long)refused);
	status = 0;
out:
	bench_free(&bench);
	free(rates);
	free(cpu_rates);
	return status;
}

int micro_memory(void)
{
	const uint32_t item_locations = 1000000;
	struct bench bench;
	if (bench_init(&bench, item_locations) != 0) {
		bench_free(&bench);
		return -1;
	}
	struct ledger_config config;
	bench_config(&config, item_locations);
	struct ledger_config stock_only = config;
	stock_only.stock_max = 1;
	size_t total = ledger_memory_bytes(&config);
	size_t stock = total - ledger_memory_bytes(&stock_only);
	int status = bench_catalog(&bench, item_locations / BENCH_LOCATIONS, BENCH_LOCATIONS, 5);
	if (status == 0) {
		printf("%-34s %.1f bytes per item-location (counters + index), "
		       "%.1f MiB ledger in all (holds, keys, catalog included)\n",
		       "memory: 1,000,000 item-locations", (double)stock / item_locations,
		       (double)total / (1 << 20));
	}
	bench_free(&bench);
	return status;
}

/* ---- Discrepancy eviction ------------------------------------------------ */

/* Defines BENCH_LOCATIONS locations and `items` items, with no stock. */
static int bench_define(struct bench *bench, uint32_t items)
{
	uint32_t n = 0;
	for (uint32_t id = 1; id <= BENCH_LOCATIONS + items; id++, n++) {
		if (n == BENCH_BATCH && bench_setup_apply(bench, n) != 0)
			return -1;
		n %= BENCH_BATCH;
		struct skuld_event *event =
		        memset(&bench->events[n], 0, sizeof(struct skuld_event));
		event_key(bench, event);
		if (id <= BENCH_LOCATIONS) {
			event->kind = SKULD_LOCATION_DEFINE;
			event->location = id;
			snprintf(event->code, sizeof(event->code), "STORE-%u", id);
		} else {
			event->kind = SKULD_ITEM_DEFINE;
			event->item = id - BENCH_LOCATIONS;
			snprintf(event->code, sizeof(event->code), "SKU-%07u", event->item);
		}
	}
	return n == 0 ? 0 : bench_setup_apply(bench, n);
}

/* Fills batch events with short sales (nothing in stock) of the pairs
 * first, first + 1, ... (pair p: item p / BENCH_LOCATIONS + 1, location
 * p % BENCH_LOCATIONS + 1). */
static void bench_short_sales(struct bench *bench, uint32_t first, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		struct skuld_event *event =
		        memset(&bench->events[i], 0, sizeof(struct skuld_event));
		event_key(bench, event);
		event->kind = SKULD_SALE;
		event->item = (first + i) / BENCH_LOCATIONS + 1;
		event->location = (first + i) % BENCH_LOCATIONS + 1;
		event->quantity = 1;
	}
}

/* Thread CPU ns per short sale of a new pair into a full table of
 * `records` discrepancies (each sale evicts one), or -1. */
static double discrepancy_evict_ns(uint32_t records, uint32_t sales)
{
	struct bench bench;
	memset(&bench, 0, sizeof(bench));
	uint32_t items = (records + sales) / BENCH_LOCATIONS + 1;
	struct ledger_config config;
	bench_config(&config, items * BENCH_LOCATIONS);
	config.discrepancies_max = records;
	double result = -1;
	bench.events = calloc(BENCH_BATCH, sizeof(struct skuld_event));
	bench.results = calloc(BENCH_BATCH, sizeof(struct skuld_result));
	if (bench.events == NULL || bench.results == NULL ||
	    ledger_create(&config, &bench.ledger) != 0 || bench_define(&bench, items) != 0)
		goto out;
	for (uint32_t at = 0; at < records; at += BENCH_BATCH) {
		uint32_t count = records - at < BENCH_BATCH ? records - at : BENCH_BATCH;
		bench_short_sales(&bench, at, count);
		if (bench_setup_apply(&bench, count) != 0)
			goto out;
	}
	uint64_t cpu_ns = 0;
	for (uint32_t at = 0; at < sales; at += BENCH_BATCH) {
		uint32_t count = sales - at < BENCH_BATCH ? sales - at : BENCH_BATCH;
		bench_short_sales(&bench, records + at, count);
		bench.now_ns += BENCH_BATCH_NS;
		uint64_t start = thread_cpu_ns();
		ledger_apply(bench.ledger, bench.now_ns, LEDGER_SOURCE_CLIENT, bench.events, count,
		             bench.results);
		cpu_ns += thread_cpu_ns() - start;
	}
	struct ledger_discrepancy_figures figures;
	ledger_discrepancy_figures(bench.ledger, &figures);
	if (figures.records != records || figures.dropped != sales) {
		fprintf(stderr, "discrepancies: %u records, %llu dropped; wanted %u and %u\n",
		        figures.records, (unsigned long long)figures.dropped, records, sales);
		goto out;
	}
	result = (double)cpu_ns / sales;
out:
	bench_free(&bench);
	return result;
}

int micro_discrepancies(int rounds)
{
	static const uint32_t sizes[] = {1024, 65536, 1u << 20};
	double *rates = calloc((size_t)rounds, sizeof(double));
	if (rates == NULL)
		return -1;
	int status = 0;
	for (size_t s = 0; status == 0 && s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (int round = 0; status == 0 && round < rounds; round++) {
			rates[round] = discrepancy_evict_ns(sizes[s], 2000);
			status = rates[round] < 0 ? -1 : 0;
		}
		char name[64];
		snprintf(name, sizeof(name), "discrepancies: evicting, %u held", sizes[s]);
		if (status == 0)
			micro_report(name, rates, rounds, "ns/short sale");
	}
	free(rates);
	return status;
}
