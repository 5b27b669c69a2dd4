/*
 * bench.c — skuld-bench: closed-loop load against a running skuld.
 *
 *   skuld-bench [--server HOST:PORT] [--connections N] [--batch B]
 *               [--keys K | --items I] [--locations L] [--hot H] [--stock Q]
 *               [--duration SECONDS] [--setup] [--server-pid PID] [--json]
 *
 * N connections each keep one request in flight (closed loop). A request of
 * B events reserves B/2 new holds (at least one) and commits 3 in 4 and
 * releases 1 in 4 of the holds the same connection reserved in its previous
 * request, so the number of open holds stays steady. Item-locations are
 * uniform over I x L (--keys K sets I = K / L), or all traffic goes to H hot
 * items at location 1. --setup first defines the catalog and receives Q
 * units everywhere. At the end the ledger is checked against what the run
 * was told (bench_check.c): nothing oversold, every unit accounted for.
 *
 * Latency is measured per request, from the send to the reply; this is
 * closed-loop latency, which hides queueing a real arrival rate would see
 * (the open-loop mode comes with the peak-sale harness). Figures: events/s,
 * requests/s, accepted and refused events, latency percentiles, and the
 * CPU seconds of this process and (with --server-pid) of the server.
 *
 * One thread, epoll, blocking-free sockets. Every loop is bounded by the
 * duration; the generator stops by itself.
 */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr,
	        "usage: skuld-bench [--server HOST:PORT] [--connections N] [--batch B]\n"
	        "                   [--items I] [--locations L] [--hot H] [--stock Q]\n"
	        "                   [--duration SECONDS] [--setup] [--server-pid PID] [--json]\n");
	exit(2);
}

static long parse_long(const char *text, long low, long high)
{
	char *end = NULL;
	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
		fprintf(stderr, "skuld-bench: bad number '%s' (%ld..%ld)\n", text, low, high);
		exit(2);
	}
	return value;
}

static void options_parse(struct bench_options *options, int argc, char **argv)
{
	const char *server = getenv("SKULD_SERVER");
	options->server = server != NULL ? server : "127.0.0.1:7878";
	options->connections = 4;
	options->batch = 1000;
	options->items = 1000;
	options->locations = 100;
	options->stock = 1000000000;
	options->duration_s = 10;
	uint32_t keys = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(arg, "--setup") == 0) {
			options->setup = 1;
			continue;
		}
		if (strcmp(arg, "--json") == 0) {
			options->json = 1;
			continue;
		}
		if (value == NULL)
			usage();
		i++;
		if (strcmp(arg, "--server") == 0)
			options->server = value;
		else if (strcmp(arg, "--connections") == 0)
			options->connections =
			        (uint32_t)parse_long(value, 1, BENCH_CONNECTIONS_MAX);
		else if (strcmp(arg, "--batch") == 0)
			options->batch = (uint32_t)parse_long(value, 1, SKULD_EVENTS_PER_FRAME_MAX);
		else if (strcmp(arg, "--items") == 0)
			options->items = (uint32_t)parse_long(value, 1, 100000000);
		else if (strcmp(arg, "--keys") == 0)
			keys = (uint32_t)parse_long(value, 1, 1000000000);
		else if (strcmp(arg, "--locations") == 0)
			options->locations = (uint32_t)parse_long(value, 1, 100000);
		else if (strcmp(arg, "--hot") == 0)
			options->hot = (uint32_t)parse_long(value, 1, 100000000);
		else if (strcmp(arg, "--stock") == 0)
			options->stock = parse_long(value, 1, 1L << 50);
		else if (strcmp(arg, "--duration") == 0)
			options->duration_s = (uint32_t)parse_long(value, 1, 3600);
		else if (strcmp(arg, "--server-pid") == 0)
			options->server_pid = (int)parse_long(value, 1, 1 << 30);
		else
			usage();
	}
	if (keys != 0)
		options->items = (keys + options->locations - 1) / options->locations;
	if (options->hot > options->items) {
		fprintf(stderr, "skuld-bench: --hot must not exceed --items\n");
		exit(2);
	}
}

uint64_t bench_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Runs the closed loop until the deadline; returns 0 or -1. */
static int bench_loop(struct bench *bench, uint64_t deadline_ns)
{
	struct epoll_event ready[BENCH_CONNECTIONS_MAX];
	while (bench->connections_open > 0) {
		uint64_t now = bench_now_ns();
		if (now >= deadline_ns)
			bench->stopping = 1;
		int timeout_ms = 100;
		int n = epoll_wait(bench->epoll_fd, ready, BENCH_CONNECTIONS_MAX, timeout_ms);
		if (n < 0 && errno != EINTR) {
			perror("skuld-bench: epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct bench_connection *connection = ready[i].data.ptr;
			if (connection_service(bench, connection, ready[i].events) != 0)
				return -1;
		}
		if (bench->stopping && bench_now_ns() > deadline_ns + 10000000000u) {
			fprintf(stderr, "skuld-bench: replies still missing 10 s after the end\n");
			return -1;
		}
	}
	return 0;
}

/* Sets up, runs and checks one benchmark; returns the exit status. */
static int bench_run(struct bench *bench)
{
	if (bench->options.setup && bench_setup(bench) != 0)
		return 1;
	struct bench_totals before, after;
	if (bench_totals_read(bench, &before) != 0) {
		fprintf(stderr, "skuld-bench: cannot read the levels before the run\n");
		return 1;
	}
	bench->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (bench->epoll_fd < 0 || connections_open(bench) != 0)
		return 1;
	struct bench_cpu cpu_start;
	bench_cpu_read(bench, &cpu_start);
	bench->started_ns = bench_now_ns();
	for (uint32_t i = 0; i < bench->options.connections; i++) {
		if (connection_send_next(bench, &bench->connections[i]) != 0)
			return 1;
	}
	int status = bench_loop(bench, bench->started_ns +
	                                       (uint64_t)bench->options.duration_s * 1000000000u);
	bench->finished_ns = bench_now_ns();
	struct bench_cpu cpu_end;
	bench_cpu_read(bench, &cpu_end);
	if (status != 0)
		return 1;
	if (bench_totals_read(bench, &after) != 0) {
		fprintf(stderr, "skuld-bench: cannot read the levels after the run\n");
		return 1;
	}
	bench->check_failed = bench_check(bench, &before, &after) != 0;
	bench_report(bench, &cpu_start, &cpu_end);
	return bench->errors == 0 && !bench->check_failed ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct bench *bench = calloc(1, sizeof(*bench));
	if (bench == NULL)
		return 1;
	options_parse(&bench->options, argc, argv);
	histogram_init(&bench->latency_us);
	bench->epoll_fd = -1;
	int status = bench_run(bench);
	connections_free(bench);
	if (bench->epoll_fd >= 0)
		close(bench->epoll_fd);
	free(bench);
	return status;
}
