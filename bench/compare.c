/*
 * compare.c — `skuld-bench compare SCENARIO`: the same workload, at the
 * same durability, against skuld and against its peers in one run.
 *
 *   skuld-bench compare uniform|flash-sale|zipf|till-storm [--connections N]
 *                       [--duration S] [--items I] [--stock Q] [--skew S]
 *                       [--skuld PATH] [--json]
 *
 * Targets, in order: skuld (every reply after its group commit's
 * fdatasync), Redis with appendfsync always and everysec, PostgreSQL with
 * synchronous_commit on and off, and redis-benchmark's PING as the
 * round trip that does no work. Each server is started here on 127.0.0.1
 * in a temporary directory (peer_process.c) and stopped at the end; a peer
 * whose programs are missing is installed with apt-get when we are root,
 * else skipped with a line saying so.
 *
 * Workload: N threads per target, each with its own blocking connection.
 * One checkout is a reserve of 1 unit of an item, then a commit (9 in 10)
 * or a release of the hold; zipf draws the item by rank, P(rank k)
 * proportional to 1/k^S (--skew, default 1.0), the rest uniformly. A
 * till-storm transaction is one request: a sale (7 in 10), a return (2 in
 * 10) or an exchange (1 in 10, a return and a sale of another item, all or
 * nothing), recorded whatever the stock. Thread t draws its operations from a generator
 * seeded by t alone (workload_next), so every target gets the same
 * operations in the same order; only how far each gets in the duration
 * differs. Latency is per request (reserve, commit or release), from the
 * call to its answer.
 *
 * The check, per target: the units the clients saw committed equal the
 * units the store says are sold (till-storm: sold less returned), and
 * sold + available equals the stock loaded (every hold is finished by the
 * end) with nothing below zero.
 */
#define _GNU_SOURCE
#include "compare.h"

#include "bench.h"
#include "histogram.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMPARE_THREADS_MAX 256u
#define COMPARE_TARGETS     5u

struct compare_options {
	enum compare_scenario scenario;
	const char *scenario_name;
	uint32_t connections;
	uint32_t duration_s;
	uint32_t items;
	long stock;
	double skew;
	const char *skuld_binary;
	int json;
};

struct target {
	const char *name;
	const char *durability;
	const struct peer_ops *ops;
	const char *option; /* passed to ops->open */
	struct peer_process *process;
	int skipped;
	const char *skip_reason;
	/* Figures. */
	uint64_t checkouts, requests, reserved, refused, committed, released, errors;
	int64_t units_committed, sold, available;
	double seconds;
	struct histogram latency_us;
	int check_ok;
	int ran;
};

struct worker {
	struct target *target;
	const struct compare_workload *workload;
	uint32_t index;
	char address[64];
	pthread_barrier_t *start;
	uint64_t end_ns;
	int open_failed;
	uint64_t checkouts, requests, reserved, refused, committed, released, errors;
	int64_t units_committed;
	struct histogram latency_us;
};

static uint64_t compare_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* splitmix64: the operations of thread t depend on t and the sequence only. */
static uint64_t workload_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct checkout {
	uint64_t hold;
	uint32_t item;
	int release; /* 1: release the hold instead of committing it */
};

/* The shared chooser: the sequence-th checkout of thread, the same on every
 * target. */
static void workload_next(const struct compare_workload *workload, uint32_t thread, uint64_t *state,
                          uint64_t sequence, struct checkout *checkout)
{
	uint64_t random = workload_random(state);
	checkout->item = 1 + (uint32_t)(random % workload->items);
	checkout->release = (random >> 40) % 10 == 0;
	if (workload->zipf_cdf != NULL) {
		double u = (double)(workload_random(state) >> 11) * 0x1.0p-53;
		uint32_t low = 0, high = workload->items - 1;
		while (low < high) {
			uint32_t middle = low + (high - low) / 2;
			if (workload->zipf_cdf[middle] < u)
				low = middle + 1;
			else
				high = middle;
		}
		checkout->item = 1 + low;
	}
	checkout->hold = ((uint64_t)(thread + 1) << 40) | (sequence + 1);
}

struct till_transaction {
	enum compare_till_kind kind;
	uint32_t return_item;
	uint32_t sale_item; /* another item than return_item in an exchange */
};

static void till_next(const struct compare_workload *workload, uint64_t *state,
                      struct till_transaction *transaction)
{
	uint64_t random = workload_random(state);
	uint32_t draw = (uint32_t)(random % 10);
	transaction->kind = draw < 7 ? COMPARE_SALE : draw < 9 ? COMPARE_RETURN : COMPARE_EXCHANGE;
	transaction->return_item = 1 + (uint32_t)((random >> 8) % workload->items);
	transaction->sale_item = 1 + (uint32_t)((random >> 36) % workload->items);
	if (transaction->kind == COMPARE_EXCHANGE &&
	    transaction->sale_item == transaction->return_item)
		transaction->sale_item = transaction->sale_item % workload->items + 1;
}

/* till-storm: transactions until the end; 0, or -1 on an error. */
static void till_worker_run(struct worker *worker, void *connection)
{
	const struct peer_ops *ops = worker->target->ops;
	uint64_t state = 0x74696c6cull ^ ((uint64_t)worker->index << 32);
	while (compare_now_ns() < worker->end_ns) {
		struct till_transaction transaction;
		till_next(worker->workload, &state, &transaction);
		uint64_t sent = compare_now_ns();
		int status = ops->till(connection, transaction.kind, transaction.return_item,
		                       transaction.sale_item);
		histogram_record(&worker->latency_us, (compare_now_ns() - sent) / 1000u);
		worker->requests++;
		worker->checkouts++;
		if (status != 1) {
			worker->errors++;
			break;
		}
		worker->committed++;
		worker->units_committed += transaction.kind == COMPARE_SALE     ? 1
		                           : transaction.kind == COMPARE_RETURN ? -1
		                                                                : 0;
	}
}

static void *worker_run(void *argument)
{
	struct worker *worker = argument;
	const struct peer_ops *ops = worker->target->ops;
	void *connection = ops->open(worker->address, worker->target->option);
	worker->open_failed = connection == NULL;
	histogram_init(&worker->latency_us);
	pthread_barrier_wait(worker->start);
	if (connection == NULL)
		return NULL;
	if (worker->workload->scenario == COMPARE_TILL_STORM) {
		till_worker_run(worker, connection);
		ops->close(connection);
		return NULL;
	}
	uint64_t state = 0x636f6d70617265ull ^ ((uint64_t)worker->index << 32);
	for (uint64_t sequence = 0; compare_now_ns() < worker->end_ns; sequence++) {
		struct checkout checkout;
		workload_next(worker->workload, worker->index, &state, sequence, &checkout);
		uint64_t sent = compare_now_ns();
		int status = ops->reserve(connection, checkout.hold, checkout.item, 1);
		uint64_t answered = compare_now_ns();
		histogram_record(&worker->latency_us, (answered - sent) / 1000u);
		worker->requests++;
		worker->checkouts++;
		if (status < 0) {
			worker->errors++;
			break;
		}
		if (status == 0) {
			worker->refused++;
			continue;
		}
		worker->reserved++;
		sent = compare_now_ns();
		status = checkout.release ? ops->release(connection, checkout.hold)
		                          : ops->commit(connection, checkout.hold);
		answered = compare_now_ns();
		histogram_record(&worker->latency_us, (answered - sent) / 1000u);
		worker->requests++;
		if (status != 1) {
			worker->errors++;
			break;
		}
		if (checkout.release) {
			worker->released++;
		} else {
			worker->committed++;
			worker->units_committed++;
		}
	}
	ops->close(connection);
	return NULL;
}

static int target_run(struct target *target, const struct compare_options *options,
                      const struct compare_workload *workload)
{
	char address[64];
	snprintf(address, sizeof(address), "127.0.0.1:%u", target->process->port);
	histogram_init(&target->latency_us);
	void *loader = target->ops->open(address, target->option);
	if (loader == NULL || target->ops->load(loader, workload) != 0) {
		fprintf(stderr, "skuld-bench compare: %s: loading the stock failed\n",
		        target->name);
		if (loader != NULL)
			target->ops->close(loader);
		target->errors++;
		return -1;
	}
	uint32_t count = options->connections;
	struct worker *workers = calloc(count, sizeof(*workers));
	pthread_t *threads = calloc(count, sizeof(*threads));
	pthread_barrier_t start;
	if (workers == NULL || threads == NULL ||
	    pthread_barrier_init(&start, NULL, count + 1) != 0) {
		free(workers);
		free(threads);
		target->ops->close(loader);
		return -1;
	}
	uint32_t started = 0;
	for (uint32_t i = 0; i < count; i++) {
		workers[i].target = target;
		workers[i].workload = workload;
		workers[i].index = i;
		workers[i].start = &start;
		workers[i].end_ns = UINT64_MAX;
		snprintf(workers[i].address, sizeof(workers[i].address), "%s", address);
		if (pthread_create(&threads[i], NULL, worker_run, &workers[i]) != 0)
			break;
		started++;
	}
	if (started < count) {
		/* The barrier counts count + 1: fail the run rather than hang. */
		fprintf(stderr, "skuld-bench compare: could not start %u threads\n", count);
		exit(1);
	}
	uint64_t begun = compare_now_ns();
	uint64_t end = begun + (uint64_t)options->duration_s * 1000000000u;
	/* Written before the barrier the workers wait on, read after it. */
	for (uint32_t i = 0; i < count; i++)
		workers[i].end_ns = end;
	pthread_barrier_wait(&start);
	for (uint32_t i = 0; i < count; i++)
		pthread_join(threads[i], NULL);
	target->seconds = (double)(compare_now_ns() - begun) / 1e9;
	pthread_barrier_destroy(&start);
	for (uint32_t i = 0; i < count; i++) {
		struct worker *worker = &workers[i];
		if (worker->open_failed) {
			fprintf(stderr, "skuld-bench compare: %s: connection %u failed\n",
			        target->name, i);
			target->errors++;
		}
		target->checkouts += worker->checkouts;
		target->requests += worker->requests;
		target->reserved += worker->reserved;
		target->refused += worker->refused;
		target->committed += worker->committed;
		target->released += worker->released;
		target->errors += worker->errors;
		target->units_committed += worker->units_committed;
		histogram_merge(&target->latency_us, &worker->latency_us);
	}
	free(workers);
	free(threads);
	int totals = target->ops->totals(loader, workload, &target->sold, &target->available);
	target->ops->close(loader);
	int64_t stock = (int64_t)workload->items * workload->stock;
	target->check_ok = totals == 0 && target->errors == 0 && target->available >= 0 &&
	                   target->sold == target->units_committed &&
	                   target->sold + target->available == stock;
	target->ran = 1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: skuld-bench compare uniform|flash-sale|zipf|till-storm [--connections N]\n"
	        "                           [--duration S] [--items I] [--stock Q] [--skew S]\n"
	        "                           [--skuld PATH] [--json]\n");
	exit(2);
}

static long number(const char *text, long low, long high)
{
	char *end = NULL;
	errno = 0;
	long value = text != NULL ? strtol(text, &end, 10) : 0;
	if (text == NULL || errno != 0 || end == text || *end != '\0' || value < low ||
	    value > high) {
		fprintf(stderr, "skuld-bench compare: bad number '%s' (%ld..%ld)\n",
		        text != NULL ? text : "", low, high);
		exit(2);
	}
	return value;
}

static double skew_parse(const char *text)
{
	char *end = NULL;
	errno = 0;
	double value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(value >= 0 && value <= 10)) {
		fprintf(stderr, "skuld-bench compare: bad skew '%s' (0..10)\n", text);
		exit(2);
	}
	return value;
}

/* COMPARE_ZIPF: the cumulative probabilities of ranks 1..items (the caller
 * frees), or NULL. */
static double *zipf_cdf_make(uint32_t items, double skew)
{
	double *cdf = malloc((size_t)items * sizeof(double));
	if (cdf == NULL)
		return NULL;
	double sum = 0;
	for (uint32_t k = 0; k < items; k++) {
		sum += 1.0 / pow((double)(k + 1), skew);
		cdf[k] = sum;
	}
	for (uint32_t k = 0; k < items; k++)
		cdf[k] /= sum;
	cdf[items - 1] = 1.0;
	return cdf;
}

static void options_parse(struct compare_options *options, int argc, char **argv, char *skuld_path,
                          size_t skuld_size)
{
	if (argc < 2)
		usage();
	options->scenario_name = argv[1];
	if (strcmp(argv[1], "uniform") == 0) {
		options->scenario = COMPARE_UNIFORM;
		options->items = 10000;
		options->stock = 100000;
	} else if (strcmp(argv[1], "flash-sale") == 0) {
		options->scenario = COMPARE_FLASH_SALE;
		options->items = 10;
		options->stock = 100;
	} else if (strcmp(argv[1], "zipf") == 0) {
		options->scenario = COMPARE_ZIPF;
		options->items = 10000;
		options->stock = 100000;
	} else if (strcmp(argv[1], "till-storm") == 0) {
		options->scenario = COMPARE_TILL_STORM;
		options->items = 500;
		options->stock = 1000000;
	} else {
		usage();
	}
	options->connections = 8;
	options->duration_s = 10;
	options->skew = 1.0;
	options->skuld_binary = bench_skuld_binary_default(skuld_path, skuld_size);
	for (int i = 2; i < argc; i++) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--json") == 0) {
			options->json = 1;
			continue;
		}
		if (value == NULL)
			usage();
		if (strcmp(argv[i], "--connections") == 0)
			options->connections = (uint32_t)number(value, 1, COMPARE_THREADS_MAX);
		else if (strcmp(argv[i], "--duration") == 0)
			options->duration_s = (uint32_t)number(value, 1, 3600);
		else if (strcmp(argv[i], "--items") == 0)
			options->items = (uint32_t)number(value, 1, 100000);
		else if (strcmp(argv[i], "--stock") == 0)
			options->stock = number(value, 1, 1000000);
		else if (strcmp(argv[i], "--skuld") == 0)
			options->skuld_binary = value;
		else if (strcmp(argv[i], "--skew") == 0 && options->scenario == COMPARE_ZIPF)
			options->skew = skew_parse(value);
		else
			usage();
		i++;
	}
}

struct baseline {
	int ran;
	double per_s, p50_us, p99_us;
};

static double target_rate(const struct target *target, uint64_t count)
{
	return target->seconds > 0 ? (double)count / target->seconds : 0;
}

static void report_text(const struct compare_options *options, struct target *targets,
                        const struct baseline *ping)
{
	double skuld_rate = targets[0].ran ? target_rate(&targets[0], targets[0].requests) : 0;
	printf("compare %s: %u connections, %u s per target, %u items x %ld units\n",
	       options->scenario_name, options->connections, options->duration_s, options->items,
	       options->stock);
	printf("%-22s %-34s %12s %12s %8s %8s %9s %6s %9s\n", "target", "durability", "checkouts/s",
	       "requests/s", "p50 us", "p99 us", "refused", "check", "vs skuld");
	for (uint32_t i = 0; i < COMPARE_TARGETS; i++) {
		struct target *target = &targets[i];
		if (!target->ran) {
			printf("%-22s skipped: %s\n", target->name,
			       target->skip_reason != NULL ? target->skip_reason : "failed");
			continue;
		}
		double rate = target_rate(target, target->requests);
		printf("%-22s %-34s %12.0f %12.0f %8" PRIu64 " %8" PRIu64 " %9" PRIu64
		       " %6s %8.2fx\n",
		       target->name, target->durability, target_rate(target, target->checkouts),
		       rate, histogram_percentile(&target->latency_us, 50),
		       histogram_percentile(&target->latency_us, 99), target->refused,
		       target->check_ok ? "ok" : "FAIL", skuld_rate > 0 ? rate / skuld_rate : 0);
	}
	if (ping->ran)
		printf("%-22s %-34s %12s %12.0f %8.0f %8.0f %9s %6s %8.2fx\n",
		       "redis-benchmark ping", "none (no work)", "-", ping->per_s, ping->p50_us,
		       ping->p99_us, "-", "-", skuld_rate > 0 ? ping->per_s / skuld_rate : 0);
	else
		printf("%-22s skipped: redis-benchmark is not installed\n", "redis-benchmark ping");
	if (options->scenario == COMPARE_TILL_STORM)
		printf("checkout = one till transaction per request: a sale (7 in 10), a return (2 "
		       "in 10) or an exchange (1 in 10, all or nothing); vs skuld = requests/s "
		       "over "
		       "skuld's\n");
	else
		printf("checkout = reserve 1 unit, then commit (9 in 10) or release: 2 requests "
		       "when "
		       "reserved; vs skuld = requests/s over skuld's\n");
}

static void report_json(const struct compare_options *options, struct target *targets,
                        const struct baseline *ping)
{
	double skuld_rate = targets[0].ran ? target_rate(&targets[0], targets[0].requests) : 0;
	printf("{\"scenario\":\"%s\",\"connections\":%u,\"duration_s\":%u,\"items\":%u,"
	       "\"stock\":%ld,\"skew\":%.2f,\"targets\":[",
	       options->scenario_name, options->connections, options->duration_s, options->items,
	       options->stock, options->skew);
	int first = 1;
	for (uint32_t i = 0; i < COMPARE_TARGETS; i++) {
		struct target *target = &targets[i];
		if (!target->ran)
			continue;
		double rate = target_rate(target, target->requests);
		printf("%s{\"name\":\"%s\",\"durability\":\"%s\",\"checkouts\":%" PRIu64
		       ",\"checkouts_per_s\":%.1f,\"requests\":%" PRIu64 ",\"requests_per_s\":%.1f,"
		       "\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"reserved\":%" PRIu64
		       ",\"refused\":%" PRIu64 ",\"committed\":%" PRIu64 ",\"released\":%" PRIu64
		       ",\"errors\":%" PRIu64 ",\"units_committed\":%" PRId64 ",\"sold\":%" PRId64
		       ",\"available\":%" PRId64 ",\"check\":\"%s\",\"ratio\":%.3f}",
		       first ? "" : ",", target->name, target->durability, target->checkouts,
		       target_rate(target, target->checkouts), target->requests, rate,
		       histogram_percentile(&target->latency_us, 50),
		       histogram_percentile(&target->latency_us, 99), target->reserved,
		       target->refused, target->committed, target->released, target->errors,
		       target->units_committed, target->sold, target->available,
		       target->check_ok ? "ok" : "failed", skuld_rate > 0 ? rate / skuld_rate : 0);
		first = 0;
	}
	if (ping->ran)
		printf("%s{\"name\":\"redis-benchmark-ping\",\"durability\":\"none\","
		       "\"requests_per_s\":%.1f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"check\":\"n/a\","
		       "\"ratio\":%.3f}",
		       first ? "" : ",", ping->per_s, ping->p50_us, ping->p99_us,
		       skuld_rate > 0 ? ping->per_s / skuld_rate : 0);
	printf("],\"skipped\":[");
	first = 1;
	for (uint32_t i = 0; i < COMPARE_TARGETS; i++) {
		if (targets[i].ran)
			continue;
		printf("%s\"%s\"", first ? "" : ",", targets[i].name);
		first = 0;
	}
	if (!ping->ran)
		printf("%s\"redis-benchmark-ping\"", first ? "" : ",");
	printf("]}\n");
}

int compare_main(int argc, char **argv)
{
	struct compare_options options = {0};
	char skuld_path[4200];
	options_parse(&options, argc, argv, skuld_path, sizeof(skuld_path));
	struct compare_workload workload = {
	        .scenario = options.scenario, .items = options.items, .stock = options.stock};
	double *zipf_cdf = NULL;
	if (options.scenario == COMPARE_ZIPF) {
		zipf_cdf = zipf_cdf_make(options.items, options.skew);
		if (zipf_cdf == NULL)
			return 1;
		workload.zipf_cdf = zipf_cdf;
	}

	struct peer_process skuld = {0}, redis = {0}, postgres = {0};
	struct target targets[COMPARE_TARGETS] = {
	        {.name = "skuld",
	         .durability = "fdatasync per group commit",
	         .ops = &peer_skuld_ops,
	         .process = &skuld},
	        {.name = "redis-always",
	         .durability = "appendfsync always",
	         .ops = &peer_redis_ops,
	         .option = "always",
	         .process = &redis},
	        {.name = "redis-everysec",
	         .durability = "appendfsync everysec (loses <=1 s)",
	         .ops = &peer_redis_ops,
	         .option = "everysec",
	         .process = &redis},
	        {.name = "postgres-sync-on",
	         .durability = "synchronous_commit on",
	         .ops = &peer_postgres_ops,
	         .option = "on",
	         .process = &postgres},
	        {.name = "postgres-sync-off",
	         .durability = "synchronous_commit off (loses <1 s)",
	         .ops = &peer_postgres_ops,
	         .option = "off",
	         .process = &postgres},
	};

	int have_skuld = peer_process_skuld(&skuld, options.skuld_binary) == 0;
	int have_redis = peer_program_ensure("redis-server", "redis-server") == 0 &&
	                 peer_process_redis(&redis) == 0;
	int have_postgres =
	        peer_program_ensure("/usr/lib/postgresql/15/bin/initdb", "postgresql-15") == 0 &&
	        peer_process_postgres(&postgres) == 0;
	int have_benchmark =
	        have_redis && peer_program_ensure("redis-benchmark", "redis-tools") == 0;
	int failed = !have_skuld;
	for (uint32_t i = 0; i < COMPARE_TARGETS; i++) {
		struct target *target = &targets[i];
		int have = target->process == &skuld   ? have_skuld
		           : target->process == &redis ? have_redis
		                                       : have_postgres;
		if (!have) {
			target->skip_reason = "its server could not be installed or started";
			continue;
		}
		if (!options.json)
			fprintf(stderr, "running %s for %u s...\n", target->name,
			        options.duration_s);
		if (target_run(target, &options, &workload) != 0 || !target->check_ok)
			failed = 1;
	}
	struct baseline ping = {0};
	if (have_benchmark) {
		uint64_t requests = 40000ull * options.duration_s;
		ping.ran = peer_ping_baseline(redis.port, options.connections, (uint32_t)requests,
		                              &ping.per_s, &ping.p50_us, &ping.p99_us) == 0;
	}
	peer_process_stop(&skuld);
	peer_process_stop(&redis);
	peer_process_stop(&postgres);
	if (options.json)
		report_json(&options, targets, &ping);
	else
		report_text(&options, targets, &ping);
	free(zipf_cdf);
	return failed ? 1 : 0;
}
