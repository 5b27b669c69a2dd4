/*
 * bench.c — skuld-bench: closed- or open-loop load against a running skuld.
 *
 *   skuld-bench [--server HOST:PORT] [--scenario NAME] [--connections N]
 *               [--batch B] [--keys K | --items I] [--locations L] [--hot H]
 *               [--stock Q] [--skew S] [--rate R] [--duration SECONDS]
 *               [--setup] [--server-pid PID] [--json] [--plot PREFIX]
 *               [--pool NAME] [--disk-min-mb M]
 *               [--start-server [--skuld PATH] [--data-dir DIR]
 *                [--server-config FILE] [--fsync-delay-us N] [--keep]]
 *
 * The scenario (scenario.h: steady, the default, flash-sale, uniform, zipf,
 * till-storm) chooses each request's events and gives the defaults of the
 * catalog and load options; the command line overrides them. --setup first
 * defines the catalog and receives Q units at every item-location (at the
 * H hot items of location 1 with --hot). At the end the ledger is checked
 * against what the run was told (bench_check.c): nothing oversold, every
 * unit accounted for. --pool NAME makes the reserves go against a
 * channel's pool (scenario.h). mixed reports its tills, gateways and push
 * workers each on their own as well.
 *
 * --start-server: skuld-bench starts its own skuld (bench_server.c) in a
 * fresh directory under DIR, with --fsync-delay-us N as its fsync_delay_us
 * (each log write completes N us after its fdatasync, as on a slower disk),
 * implies --setup, and stops it and removes the directory at the end
 * (unless --keep). Free space: a started server's file system, or a running
 * server's data directory as its STATS report it, must have at least
 * --disk-min-mb MiB free (default 1024), or the run is refused. The
 * server's STATS before and after the run give the group commit figures:
 * log writes, events per write, the largest write, write + fdatasync time.
 *
 * Closed loop (the default): N connections each keep one request in
 * flight; latency runs from the send to the reply, which hides queueing a
 * real arrival rate would meet. Open loop (--rate R): request k falls due
 * at start + k / R and goes out on an idle connection; when none is idle it
 * waits, and its latency still runs from when it was due, so a server that
 * falls behind shows its queueing (no coordinated omission). Requests due
 * before the end that never found a connection are counted as never sent.
 *
 * Figures: events/s, requests/s, accepted and refused events, latency
 * percentiles, the CPU seconds of this process and (with --server-pid) of
 * the server, events per 100 ms for the plot (bench_plot.c).
 *
 * One thread, epoll, blocking-free sockets. Every loop is bounded by the
 * duration; the generator stops by itself.
 */
#include "bench.h"
#include "compare.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: skuld-bench [--server HOST:PORT] [--scenario ");
	scenario_names_print(stderr);
	fprintf(stderr,
	        "]\n"
	        "                   [--connections N] [--batch B] [--items I] [--locations L]\n"
	        "                   [--hot H] [--stock Q] [--skew S] [--rate REQUESTS_PER_S]\n"
	        "                   [--duration SECONDS] [--setup] [--server-pid PID] [--json]\n"
	        "                   [--plot PREFIX] [--pool NAME] [--disk-min-mb M]\n"
	        "                   [--start-server [--skuld PATH] [--data-dir DIR]\n"
	        "                    [--server-config FILE] [--fsync-delay-us N] [--keep]]\n");
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

static double parse_double(const char *text, double low, double high)
{
	char *end = NULL;
	errno = 0;
	double value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(value >= low && value <= high)) {
		fprintf(stderr, "skuld-bench: bad number '%s' (%g..%g)\n", text, low, high);
		exit(2);
	}
	return value;
}

/* The scenario named on the command line, or the default; its defaults go
 * into options before the other flags are read. */
static void scenario_choose(struct bench_options *options, int argc, char **argv)
{
	const struct scenario *scenario = scenario_default();
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--scenario") != 0)
			continue;
		scenario = scenario_find(argv[i + 1]);
		if (scenario == NULL) {
			fprintf(stderr, "skuld-bench: unknown scenario '%s'\n", argv[i + 1]);
			usage();
		}
	}
	options->scenario = scenario;
	options->connections = scenario->connections;
	options->batch = scenario->batch;
	options->items = scenario->items;
	options->locations = scenario->locations;
	options->hot = scenario->hot;
	options->stock = scenario->stock;
	options->skew = 1.0;
}

/* What the flags cannot be together; exits 2 with why. */
static void options_check(const struct bench_options *options)
{
	const char *why = NULL;
	if (!options->start_server &&
	    (options->fsync_delay_us != 0 || options->skuld_binary != NULL ||
	     options->data_parent != NULL || options->server_config != NULL || options->keep))
		why = "--fsync-delay-us, --skuld, --data-dir, --server-config and --keep apply to "
		      "the server --start-server starts (a running server's settings cannot be "
		      "changed)";
	else if (options->pool != NULL &&
	         (options->pool[0] == '\0' || strlen(options->pool) >= SKULD_CODE_SIZE))
		why = "--pool: a channel name of 1..31 characters";
	else if (options->pool != NULL && strcmp(options->scenario->name, "till-storm") == 0)
		why = "--pool: till-storm reserves nothing (tills sell at their location)";
	else if (options->listings && options->rate > 0)
		why = "mixed runs in closed loop only (--rate)";
	else if (options->listings && options->connections < 3)
		why = "mixed: at least 3 connections (a push worker, a gateway, a till)";
	else if (options->listings && options->hot != 0)
		why = "mixed: tills and gateways draw over items x locations, not --hot";
	if (why == NULL)
		return;
	fprintf(stderr, "skuld-bench: %s\n", why);
	exit(2);
}

static void options_parse(struct bench_options *options, int argc, char **argv)
{
	const char *server = getenv("SKULD_SERVER");
	options->server = server != NULL ? server : "127.0.0.1:7878";
	options->duration_s = 10;
	options->disk_min_mb = BENCH_DISK_MIN_MB;
	scenario_choose(options, argc, argv);
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
		if (strcmp(arg, "--forge-oversell") == 0) {
			options->forge_oversell = 1;
			continue;
		}
		if (strcmp(arg, "--start-server") == 0) {
			options->start_server = 1;
			continue;
		}
		if (strcmp(arg, "--keep") == 0) {
			options->keep = 1;
			continue;
		}
		if (value == NULL)
			usage();
		i++;
		if (strcmp(arg, "--server") == 0)
			options->server = value;
		else if (strcmp(arg, "--scenario") == 0)
			continue;
		else if (strcmp(arg, "--skew") == 0)
			options->skew = parse_double(value, 0.0, 10.0);
		else if (strcmp(arg, "--rate") == 0)
			options->rate = parse_double(value, 1.0, 1e8);
		else if (strcmp(arg, "--plot") == 0)
			options->plot = value;
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
		else if (strcmp(arg, "--pool") == 0)
			options->pool = value;
		else if (strcmp(arg, "--skuld") == 0)
			options->skuld_binary = value;
		else if (strcmp(arg, "--data-dir") == 0)
			options->data_parent = value;
		else if (strcmp(arg, "--server-config") == 0)
			options->server_config = value;
		else if (strcmp(arg, "--fsync-delay-us") == 0)
			options->fsync_delay_us = (uint32_t)parse_long(value, 0, 1000000);
		else if (strcmp(arg, "--disk-min-mb") == 0)
			options->disk_min_mb = (uint32_t)parse_long(value, 0, UINT32_MAX);
		else
			usage();
	}
	if (keys != 0)
		options->items = (keys + options->locations - 1) / options->locations;
	if (strcmp(options->scenario->name, "mixed") == 0) {
		/* Gateways reserve against the channel WEB (or --pool), which
		 * lists every item for the push workers. */
		options->listings = 1;
		if (options->pool == NULL)
			options->pool = "WEB";
	}
	options_check(options);
	if (options->hot > options->items) {
		fprintf(stderr, "skuld-bench: --hot must not exceed --items\n");
		exit(2);
	}
	if (strcmp(options->scenario->name, "zipf") == 0 && options->hot != 0) {
		fprintf(stderr, "skuld-bench: zipf draws over items x locations, not --hot\n");
		exit(2);
	}
}

uint64_t bench_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Open loop: sends every request due by now on an idle connection, and
 * returns the time until the next one falls due (ns, at most 100 ms), or
 * -1 when a send fails. */
static int64_t open_loop_send(struct bench *bench, uint64_t now)
{
	uint64_t interval_ns = (uint64_t)llround(1e9 / bench->options.rate);
	if (interval_ns == 0)
		interval_ns = 1;
	while (!bench->stopping && bench->due_ns <= now && bench->idle_count > 0) {
		struct bench_connection *connection = bench->idle[--bench->idle_count];
		if (connection_send_next(bench, connection, bench->due_ns) != 0)
			return -1;
		bench->due_ns += interval_ns;
	}
	if (bench->stopping || bench->idle_count == 0 || bench->due_ns > now + 100000000u)
		return 100000000;
	return bench->due_ns <= now ? 0 : (int64_t)(bench->due_ns - now);
}

/* Closed loop: sends the next request of every parked connection (a push
 * worker pausing, mixed) whose pause is over; returns the time until
 * the next one is due (ns, at most 100 ms), or -1 when a send fails. */
static int64_t parked_send(struct bench *bench, uint64_t now)
{
	int64_t timeout_ns = 100000000;
	for (uint32_t i = 0; !bench->stopping && i < bench->idle_count;) {
		struct bench_connection *connection = bench->idle[i];
		if (connection->resume_ns > now) {
			int64_t until = (int64_t)(connection->resume_ns - now);
			timeout_ns = until < timeout_ns ? until : timeout_ns;
			i++;
			continue;
		}
		bench->idle[i] = bench->idle[--bench->idle_count];
		if (connection_send_next(bench, connection, 0) != 0)
			return -1;
	}
	return timeout_ns;
}

/* Runs the loop until the deadline and every reply is in; 0 or -1. */
static int bench_loop(struct bench *bench, uint64_t deadline_ns)
{
	struct epoll_event ready[BENCH_CONNECTIONS_MAX];
	int open_loop = bench->options.rate > 0;
	while (bench->connections_open > 0) {
		uint64_t now = bench_now_ns();
		if (now >= deadline_ns && !bench->stopping) {
			bench->stopping = 1;
			if (open_loop && bench->due_ns < deadline_ns) {
				uint64_t interval_ns = (uint64_t)llround(1e9 / bench->options.rate);
				bench->never_sent += (deadline_ns - bench->due_ns) /
				                     (interval_ns ? interval_ns : 1);
			}
			/* Idle connections have nothing in flight: close them. */
			while (bench->idle_count > 0) {
				struct bench_connection *connection =
				        bench->idle[--bench->idle_count];
				epoll_ctl(bench->epoll_fd, EPOLL_CTL_DEL, connection->fd, NULL);
				close(connection->fd);
				connection->state = CONNECTION_CLOSED;
				bench->connections_open--;
			}
			if (bench->connections_open == 0)
				break;
		}
		int64_t timeout_ns =
		        open_loop ? open_loop_send(bench, now) : parked_send(bench, now);
		if (timeout_ns < 0)
			return -1;
		struct timespec timeout = {.tv_sec = timeout_ns / 1000000000,
		                           .tv_nsec = timeout_ns % 1000000000};
		int n = epoll_pwait2(bench->epoll_fd, ready, BENCH_CONNECTIONS_MAX, &timeout, NULL);
		if (n < 0 && errno != EINTR) {
			perror("skuld-bench: epoll_pwait2");
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

/* Reads the levels after the run. Abandoned holds must have expired
 * first: waits until the last one is past due, then reads again (up to 5 s
 * more) while the server's expiry has not caught up. */
static int totals_after_read(struct bench *bench, struct bench_totals *before,
                             struct bench_totals *after)
{
	if (bench->abandoned_ok != 0) {
		uint64_t due = bench->abandoned_last_ns + SCENARIO_TTL_ABANDON_S * 1000000000ull +
		               200000000u;
		uint64_t now = bench_now_ns();
		if (due > now)
			usleep((useconds_t)((due - now) / 1000u));
	}
	int64_t expected = bench_reserved_expected(bench);
	for (int attempt = 0; attempt < 50; attempt++) {
		if (bench_totals_read(bench, after, bench->options.forge_oversell) != 0)
			return -1;
		if (bench->abandoned_ok == 0 || after->reserved - before->reserved == expected)
			return 0;
		usleep(100000);
	}
	return 0;
}

/* A running server: its STATS say how much is free where its data is
 * (sampled every 10 s; 0 before the first sample, then not checked). A
 * server that does not answer STATS is run against unchecked. */
static int server_disk_check(struct bench *bench)
{
	struct skuld_stats stats;
	if (bench_stats_read(bench->options.server, &stats) != 0) {
		/* A token whose role may not read STATS, or a test double. */
		fprintf(stderr,
		        "skuld-bench: no STATS from %s: its free disk space is not checked and "
		        "no group commit figures are reported\n",
		        bench->options.server);
		return 0;
	}
	if (stats.disk_free_bytes == 0)
		return 0;
	return bench_disk_check(&bench->options, (int64_t)(stats.disk_free_bytes >> 20),
	                        "the server's data directory (its STATS)");
}

/* Sets up, runs and checks one benchmark; returns the exit status. */
static int bench_run(struct bench *bench)
{
	if (scenario_prepare(bench) != 0) {
		fprintf(stderr, "skuld-bench: cannot prepare the scenario\n");
		return 1;
	}
	bench->timeline_slots = (bench->options.duration_s + 12) * 10;
	bench->timeline_requests = calloc(bench->timeline_slots, sizeof(uint64_t));
	bench->timeline_events = calloc(bench->timeline_slots, sizeof(uint64_t));
	if (bench->timeline_requests == NULL || bench->timeline_events == NULL)
		return 1;
	if (bench->options.pool != NULL) {
		bench->pool_reserves = calloc(bench->options.locations + 1u, sizeof(uint64_t));
		if (bench->pool_reserves == NULL)
			return 1;
	}
	if (bench->options.start_server && bench_server_start(bench) != 0)
		return 1;
	if (!bench->options.start_server && server_disk_check(bench) != 0)
		return 1;
	if (bench->options.setup && bench_setup(bench) != 0)
		return 1;
	struct bench_totals before, after;
	if (bench_totals_read(bench, &before, 0) != 0) {
		fprintf(stderr, "skuld-bench: cannot read the levels before the run\n");
		return 1;
	}
	bench->stats_ok = bench_stats_read(bench->options.server, &bench->stats_before) == 0;
	bench->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (bench->epoll_fd < 0 || connections_open(bench) != 0)
		return 1;
	struct bench_cpu cpu_start;
	bench_cpu_read(bench, &cpu_start);
	bench->started_ns = bench_now_ns();
	bench->due_ns = bench->started_ns;
	for (uint32_t i = 0; i < bench->options.connections; i++) {
		if (bench->options.rate > 0)
			bench->idle[bench->idle_count++] = &bench->connections[i];
		else if (connection_send_next(bench, &bench->connections[i], 0) != 0)
			return 1;
	}
	int status = bench_loop(bench, bench->started_ns +
	                                       (uint64_t)bench->options.duration_s * 1000000000u);
	bench->finished_ns = bench_now_ns();
	struct bench_cpu cpu_end;
	bench_cpu_read(bench, &cpu_end);
	if (status != 0)
		return 1;
	if (totals_after_read(bench, &before, &after) != 0) {
		fprintf(stderr, "skuld-bench: cannot read the levels after the run\n");
		return 1;
	}
	bench->stats_ok = bench->stats_ok &&
	                  bench_stats_read(bench->options.server, &bench->stats_after) == 0;
	bench->check_failed = bench_check(bench, &before, &after) != 0;
	bench_report(bench, &cpu_start, &cpu_end);
	if (bench->options.plot != NULL && bench_plot(bench, bench->options.plot) != 0) {
		fprintf(stderr, "skuld-bench: cannot write the plot %s\n", bench->options.plot);
		return 1;
	}
	return bench->errors == 0 && !bench->check_failed ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "compare") == 0)
		return compare_main(argc - 1, argv + 1);
	struct bench *bench = calloc(1, sizeof(*bench));
	if (bench == NULL)
		return 1;
	options_parse(&bench->options, argc, argv);
	histogram_init(&bench->latency_us);
	histogram_init(&bench->service_us);
	for (uint32_t i = 0; i < BENCH_ROLES; i++)
		histogram_init(&bench->roles[i].latency_us);
	bench->epoll_fd = -1;
	int status = bench_run(bench);
	connections_free(bench);
	bench_server_stop(bench);
	free(bench->pool_reserves);
	scenario_free(bench);
	free(bench->timeline_requests);
	free(bench->timeline_events);
	if (bench->epoll_fd >= 0)
		close(bench->epoll_fd);
	free(bench);
	return status;
}
