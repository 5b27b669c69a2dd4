/*
 * tls_bench.c — skuld-tls-bench: the same libskuld load with and without
 * TLS, for docs/BENCHMARKS.md "TLS".
 *
 *   skuld-tls-bench --server HOST:PORT [--tls-ca FILE] [--token T]
 *                   [--batch N] [--threads N] [--seconds S] [--run NAME] [--setup]
 *
 * threads callers share one libskuld client (so their calls are merged into
 * requests, as a till's threads would be); each submits batch RECEIVE
 * events of item 1 at location 1 per call, with keys unique to the run,
 * until seconds have passed. --setup defines ITEM-1 and STORE-1 first.
 * Prints one line: events/s, calls/s, requests/s and the mean call time.
 * The server should run `tls = on` so that one server serves both runs.
 */
#include <skuld/skuld.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX   1024u
#define THREADS_MAX 64u

struct settings {
	const char *server;
	const char *tls_ca;
	const char *token;
	const char *run;
	uint32_t batch;
	uint32_t threads;
	double seconds;
	int setup;
};

struct shared {
	const struct settings *settings;
	skuld_client *client;
	uint64_t end_ns;
	atomic_uint_fast64_t events;
	atomic_uint_fast64_t calls;
	atomic_uint_fast64_t call_ns;
	atomic_int failed;
};

struct worker {
	struct shared *shared;
	uint32_t id;
};

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static void *worker_main(void *argument)
{
	struct worker *worker = argument;
	struct shared *shared = worker->shared;
	uint32_t batch = shared->settings->batch;
	struct skuld_event *events = calloc(batch, sizeof(*events));
	struct skuld_result *results = calloc(batch, sizeof(*results));
	char document[96];
	for (uint64_t call = 0; events != NULL && results != NULL && now_ns() < shared->end_ns &&
	                        atomic_load(&shared->failed) == 0;
	     call++) {
		snprintf(document, sizeof(document), "%s-%u-%llu", shared->settings->run,
		         worker->id, (unsigned long long)call);
		for (uint32_t i = 0; i < batch; i++)
			skuld_event_receive(&events[i],
			                    skuld_key("tls-bench", document, i, "receive"), 1, 1,
			                    1);
		uint64_t start = now_ns();
		int rc = skuld_submit(shared->client, events, batch, results, NULL, 10000);
		if (rc != 0) {
			fprintf(stderr, "skuld-tls-bench: submit: %s\n", skuld_strerror(rc));
			atomic_store(&shared->failed, 1);
			break;
		}
		atomic_fetch_add(&shared->call_ns, now_ns() - start);
		atomic_fetch_add(&shared->calls, 1);
		atomic_fetch_add(&shared->events, batch);
	}
	free(events);
	free(results);
	return NULL;
}

static int catalog_setup(skuld_client *client)
{
	struct skuld_event events[2];
	struct skuld_result results[2];
	if (skuld_event_item_define(&events[0], skuld_key("tls-bench", "catalog", 1, "item"), 1,
	                            "ITEM-1", 0) != 0 ||
	    skuld_event_location_define(&events[1],
	                                skuld_key("tls-bench", "catalog", 2, "location"), 1,
	                                "STORE-1") != 0)
		return -EINVAL;
	return skuld_submit(client, events, 2, results, NULL, 10000);
}

static int arguments_parse(int argc, char **argv, struct settings *settings)
{
	*settings = (struct settings){.server = "127.0.0.1:7878",
	                              .token = getenv("SKULD_TOKEN"),
	                              .run = "run",
	                              .batch = 1,
	                              .threads = 1,
	                              .seconds = 5.0};
	for (int i = 1; i < argc; i++) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--setup") == 0) {
			settings->setup = 1;
			continue;
		}
		if (value == NULL)
			return -EINVAL;
		if (strcmp(argv[i], "--server") == 0)
			settings->server = value;
		else if (strcmp(argv[i], "--tls-ca") == 0)
			settings->tls_ca = value;
		else if (strcmp(argv[i], "--token") == 0)
			settings->token = value;
		else if (strcmp(argv[i], "--run") == 0)
			settings->run = value;
		else if (strcmp(argv[i], "--batch") == 0)
			settings->batch = (uint32_t)strtoul(value, NULL, 10);
		else if (strcmp(argv[i], "--threads") == 0)
			settings->threads = (uint32_t)strtoul(value, NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0)
			settings->seconds = strtod(value, NULL);
		else
			return -EINVAL;
		i++;
	}
	if (settings->batch == 0 || settings->batch > BATCH_MAX || settings->threads == 0 ||
	    settings->threads > THREADS_MAX ||
	    !(settings->seconds > 0 && settings->seconds <= 3600))
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct settings settings;
	if (arguments_parse(argc, argv, &settings) != 0) {
		fprintf(stderr,
		        "usage: skuld-tls-bench --server HOST:PORT [--tls-ca FILE] [--token T] "
		        "[--batch 1..1024] [--threads 1..64] [--seconds S] [--run NAME] "
		        "[--setup]\n");
		return 1;
	}
	struct skuld_options options;
	skuld_options_init(&options);
	options.address = settings.server;
	options.token = settings.token;
	options.client_name = "skuld-tls-bench";
	options.tls_ca_file = settings.tls_ca;
	struct shared shared = {.settings = &settings};
	int rc = skuld_client_create(&shared.client, &options);
	if (rc == 0)
		rc = skuld_client_connect(shared.client, 10000);
	if (rc == 0 && settings.setup)
		rc = catalog_setup(shared.client);
	if (rc != 0) {
		fprintf(stderr, "skuld-tls-bench: %s: %s\n", settings.server, skuld_strerror(rc));
		skuld_client_close(shared.client);
		return 1;
	}
	struct worker workers[THREADS_MAX];
	pthread_t threads[THREADS_MAX];
	uint64_t start = now_ns();
	shared.end_ns = start + (uint64_t)(settings.seconds * 1e9);
	uint32_t started = 0;
	for (; started < settings.threads; started++) {
		workers[started] = (struct worker){.shared = &shared, .id = started};
		if (pthread_create(&threads[started], NULL, worker_main, &workers[started]) != 0)
			break;
	}
	for (uint32_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	double elapsed = (double)(now_ns() - start) / 1e9;
	struct skuld_client_info info;
	skuld_client_info(shared.client, &info);
	uint64_t calls = atomic_load(&shared.calls);
	printf("%s batch=%u threads=%u: %.0f events/s, %.0f calls/s, %.0f requests/s, mean call "
	       "%.2f ms\n",
	       settings.tls_ca != NULL ? "tls" : "plain", settings.batch, settings.threads,
	       (double)atomic_load(&shared.events) / elapsed, (double)calls / elapsed,
	       (double)info.requests / elapsed,
	       calls != 0 ? (double)atomic_load(&shared.call_ns) / (double)calls / 1e6 : 0.0);
	skuld_client_close(shared.client);
	return atomic_load(&shared.failed) != 0 || started != settings.threads;
}
