/*
 * test_bench.c — skuld-bench against a real server: the setup, both
 * closed-loop shapes (batched and one event per request, uniform and hot),
 * every scenario (two seconds each, its JSON parsed with jansson), the open
 * loop, the plot files, the JSON figures and the end-of-run check, which
 * must pass against the real server and fail against a test double that
 * oversells (and on a level --forge-oversell alters). Runs are
 * short: this proves the harness works and checks the ledger, it measures
 * nothing.
 */
#include "server_harness.h"

#include <jansson.h>

/* Runs skuld-bench with args against server; returns its stdout (one JSON
 * line) in out and its exit status. */
static int bench_run(const struct server *server, const char *args, char *out, size_t size)
{
	char command[1024];
	snprintf(command, sizeof(command),
	         "%s/bench/skuld-bench --server 127.0.0.1:%u --json --duration 1 %s",
	         SKULD_BINARY_DIR, server->port, args);
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe, "popen: %s", strerror(errno));
	size_t used = fread(out, 1, size - 1, pipe);
	out[used] = '\0';
	int status = pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The unsigned number after "\"name\":" in json, or -1. */
static long long json_number(const char *json, const char *name)
{
	char key[64];
	snprintf(key, sizeof(key), "\"%s\":", name);
	const char *at = strstr(json, key);
	return at != NULL ? strtoll(at + strlen(key), NULL, 10) : -1;
}

static void bench_assert(const char *json, int status)
{
	cr_assert_eq(status, 0, "skuld-bench failed: %s", json);
	cr_assert_not_null(strstr(json, "\"check\":\"ok\""), "check: %s", json);
	cr_assert_gt(json_number(json, "accepted"), 0, "%s", json);
	cr_assert_eq(json_number(json, "errors"), 0, "%s", json);
	cr_assert_gt(json_number(json, "requests_per_s"), 0, "%s", json);
	cr_assert_geq(json_number(json, "p99"), json_number(json, "p50"), "%s", json);
	cr_assert_geq(json_number(json, "max"), json_number(json, "p999"), "%s", json);
}

Test(bench, closed_loop_runs_check_out_against_the_ledger, .timeout = 120)
{
	/* More keys than a one-second run can send (a few million events on
	 * a fast machine): nothing may be refused for KEYS_FULL. */
	struct server server;
	server_init(&server, "keys_max = 4m\nkey_window_s = 60\nholds_max = 65536\n");
	server_start(&server);
	char json[2048];

	int status = bench_run(&server,
	                       "--setup --items 50 --locations 4 --connections 2 "
	                       "--batch 200",
	                       json, sizeof(json));
	bench_assert(json, status);
	cr_assert_eq(json_number(json, "refused"), 0, "stock is ample: %s", json);

	status = bench_run(&server, "--items 50 --locations 4 --connections 8 --batch 1", json,
	                   sizeof(json));
	bench_assert(json, status);
	cr_assert_eq(json_number(json, "batch"), 1);

	/* Hot items: all traffic on 3 items at location 1, stock of 5 each,
	 * so most reserves are refused; the check still holds. */
	struct server hot;
	server_init(&hot, "keys_max = 1m\nkey_window_s = 60\nholds_max = 65536\n");
	server_start(&hot);
	status = bench_run(&hot,
	                   "--setup --items 3 --locations 1 --hot 3 --stock 5 "
	                   "--connections 4 --batch 10",
	                   json, sizeof(json));
	bench_assert(json, status);
	cr_assert_gt(json_number(json, "refused"), 0, "scarce stock refuses: %s", json);

	server_fini(&hot);
	server_fini(&server);
}

/* Runs a scenario for 2 s with args; returns its parsed JSON (the caller
 * decrefs) and sets *status. */
static json_t *scenario_run(const struct server *server, const char *args, int *status)
{
	char command[1024];
	char out[8192];
	snprintf(command, sizeof(command),
	         "%s/bench/skuld-bench --server 127.0.0.1:%u --server-pid %d --json --duration 2 "
	         "%s",
	         SKULD_BINARY_DIR, server->port, (int)server->pid, args);
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe, "popen: %s", strerror(errno));
	size_t used = fread(out, 1, sizeof(out) - 1, pipe);
	out[used] = '\0';
	int code = pclose(pipe);
	*status = WIFEXITED(code) ? WEXITSTATUS(code) : -1;
	json_error_t error;
	json_t *root = json_loads(out, 0, &error);
	cr_assert_not_null(root, "%s: not JSON (%s): %s", args, error.text, out);
	return root;
}

/* The integer at root.name (a "." separates levels); fails the test when
 * it is missing. */
static long long json_int(const json_t *root, const char *path)
{
	char name[128];
	snprintf(name, sizeof(name), "%s", path);
	const json_t *value = root;
	for (char *part = strtok(name, "."); part != NULL; part = strtok(NULL, "."))
		value = json_object_get(value, part);
	cr_assert(json_is_number(value), "no number %s", path);
	return json_is_integer(value) ? json_integer_value(value)
	                              : (long long)json_number_value(value);
}

/* Every run: the fields the scenario's JSON must carry, and a clean check. */
static void scenario_assert(const json_t *root, int status, const char *scenario)
{
	static const char *const numbers[] = {"seconds",
	                                      "events_per_s",
	                                      "requests_per_s",
	                                      "accepted",
	                                      "refused",
	                                      "errors",
	                                      "latency_us.p50",
	                                      "latency_us.p90",
	                                      "latency_us.p99",
	                                      "latency_us.p999",
	                                      "latency_us.max",
	                                      "service_latency_us.p50",
	                                      "cpu_s.bench",
	                                      "cpu_s.server",
	                                      "units.committed",
	                                      "check_figures.levels",
	                                      "check_figures.oversold_levels",
	                                      "check_figures.committed_ledger",
	                                      "check_figures.committed_expected",
	                                      "check_figures.on_hand_ledger",
	                                      "check_figures.on_hand_expected"};
	char *text = json_dumps(root, JSON_COMPACT);
	cr_assert_eq(status, 0, "%s failed: %s", scenario, text);
	cr_assert_str_eq(json_string_value(json_object_get(root, "scenario")), scenario);
	cr_assert_str_eq(json_string_value(json_object_get(root, "check")), "ok", "%s", text);
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		(void)json_int(root, numbers[i]);
	cr_assert(json_is_object(json_object_get(root, "refused_by")), "%s", text);
	cr_assert(json_is_object(json_object_get(root, "accepted_by")), "%s", text);
	cr_assert_gt(json_int(root, "accepted"), 0, "%s", text);
	cr_assert_eq(json_int(root, "errors"), 0, "%s", text);
	cr_assert_geq(json_int(root, "latency_us.p90"), json_int(root, "latency_us.p50"));
	cr_assert_geq(json_int(root, "latency_us.p999"), json_int(root, "latency_us.p99"));
	cr_assert_geq(json_int(root, "latency_us.max"), json_int(root, "latency_us.p999"));
	cr_assert_eq(json_int(root, "check_figures.oversold_levels"), 0, "%s", text);
	cr_assert_eq(json_int(root, "check_figures.committed_ledger"),
	             json_int(root, "check_figures.committed_expected"), "%s", text);
	cr_assert_eq(json_int(root, "check_figures.on_hand_ledger"),
	             json_int(root, "check_figures.on_hand_expected"), "%s", text);
	free(text);
}

static const char *config_scenarios = "keys_max = 4m\nkey_window_s = 2\nholds_max = 65536\n"
                                      "items_max = 1024\nlocations_max = 256\n"
                                      "stock_max = 64k\nconnections_max = 300\n";

Test(bench, flash_sale_sells_exactly_the_stock_it_acknowledges, .timeout = 120)
{
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	int status;
	/* 3 items x 40 units for 32 checkouts: the sale sells out, abandoned
	 * holds expire and their units sell again. */
	json_t *root = scenario_run(&server,
	                            "--scenario flash-sale --setup --items 3 --hot 3 --stock 40 "
	                            "--connections 32",
	                            &status);
	scenario_assert(root, status, "flash-sale");
	long long sold = json_int(root, "units.committed");
	cr_assert_gt(sold, 0);
	cr_assert_leq(sold, 3 * 40, "never more than the stock");
	cr_assert_eq(json_int(root, "check_figures.stock_before"), 3 * 40);
	cr_assert_eq(json_int(root, "check_figures.on_hand_ledger"), 0, "holds only");
	cr_assert_gt(json_int(root, "refused_by.INSUFFICIENT"), 0, "sold out");
	cr_assert_eq(json_int(root, "check_figures.reserved_ledger"),
	             json_int(root, "check_figures.reserved_expected"));
	json_decref(root);
	server_fini(&server);
}

Test(bench, uniform_and_zipf_replenish_and_check_out, .timeout = 120)
{
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	int status;
	json_t *root = scenario_run(&server,
	                            "--scenario uniform --setup --items 200 --locations 20 "
	                            "--connections 2 --batch 100",
	                            &status);
	scenario_assert(root, status, "uniform");
	cr_assert_gt(json_int(root, "units.received"), 0, "stock is replenished");
	cr_assert_eq(json_int(root, "check_figures.levels"), 200 * 20);
	json_decref(root);

	root = scenario_run(&server,
	                    "--scenario zipf --skew 1.2 --items 200 --locations 20 "
	                    "--connections 2 --batch 100",
	                    &status);
	scenario_assert(root, status, "zipf");
	cr_assert_gt(json_int(root, "units.received"), 0);
	json_decref(root);
	server_fini(&server);
}

Test(bench, till_storm_books_sales_returns_and_linked_exchanges, .timeout = 120)
{
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	int status;
	json_t *root = scenario_run(&server,
	                            "--scenario till-storm --setup --items 100 --locations 200 "
	                            "--connections 256 --stock 100000",
	                            &status);
	scenario_assert(root, status, "till-storm");
	cr_assert_eq(json_int(root, "batch"), 1);
	cr_assert_eq(json_int(root, "check_figures.levels"), 100 * 200);
	cr_assert_gt(json_int(root, "units.sold"), 0);
	cr_assert_gt(json_int(root, "units.returned"), 0);
	/* Exchanges make some requests carry two events. */
	cr_assert_gt(json_int(root, "events"), json_int(root, "requests"));
	json_decref(root);
	server_fini(&server);
}

Test(bench, open_loop_sends_no_more_than_the_schedule_and_plots, .timeout = 120)
{
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s/plot", server.dir);
	char args[512];
	snprintf(args, sizeof(args),
	         "--scenario till-storm --setup --items 50 --locations 20 --connections 16 "
	         "--rate 2000 --plot %s",
	         prefix);
	int status;
	json_t *root = scenario_run(&server, args, &status);
	scenario_assert(root, status, "till-storm");
	cr_assert_str_eq(json_string_value(json_object_get(root, "mode")), "open");
	/* Request k is due at k / 2000 s: 2 s send at most 4,000 (+1). */
	long long requests = json_int(root, "requests");
	cr_assert_gt(requests, 0);
	cr_assert_leq(requests, 4001, "open loop sent ahead of its schedule");
	cr_assert_leq(requests + json_int(root, "never_sent"), 4001);
	json_decref(root);

	static const char *const suffixes[] = {"-throughput.dat", "-latency.dat", ".gp"};
	for (size_t i = 0; i < 3; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s%s", prefix, suffixes[i]);
		FILE *file = fopen(path, "r");
		cr_assert_not_null(file, "%s missing", path);
		char line[256];
		int lines = 0;
		while (fgets(line, sizeof(line), file) != NULL)
			lines++;
		fclose(file);
		cr_assert_gt(lines, 5, "%s: %d lines", path, lines);
		unlink(path);
	}
	/* The picture is drawn too (.ci/install-deps installs gnuplot-nox). */
	cr_assert_eq(system("command -v gnuplot >/dev/null 2>&1"), 0,
	             "gnuplot is not installed (.ci/install-deps installs gnuplot-nox)");
	char svg[256];
	snprintf(svg, sizeof(svg), "%s.svg", prefix);
	FILE *file = fopen(svg, "r");
	cr_assert_not_null(file, "%s missing", svg);
	char head[64] = "";
	cr_assert_not_null(fgets(head, sizeof(head), file));
	fclose(file);
	cr_assert_not_null(strstr(head, "<?xml"), "%s: %s", svg, head);
	unlink(svg);
	server_fini(&server);
}

Test(bench, check_catches_an_oversold_level, .timeout = 120)
{
	/* --forge-oversell alters one level the check reads after the run as an
	 * overselling server would report it (committed beyond on_hand); the
	 * run's own check must fail and say so. */
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	int status;
	json_t *root = scenario_run(&server,
	                            "--scenario flash-sale --setup --items 3 --hot 3 --stock 40 "
	                            "--connections 8 --forge-oversell",
	                            &status);
	cr_assert_eq(status, 1, "an oversold ledger fails the run");
	cr_assert_str_eq(json_string_value(json_object_get(root, "check")), "failed");
	cr_assert_eq(json_int(root, "check_figures.oversold_levels"), 1);
	cr_assert_neq(json_int(root, "check_figures.committed_ledger"),
	              json_int(root, "check_figures.committed_expected"));
	json_decref(root);
	server_fini(&server);
}

Test(bench, flash_sale_against_a_channel_pool_sells_exactly_the_stock, .timeout = 120)
{
	/* --pool WEB: the bench defines channel 1 with locations 1..4 in its
	 * pool and 10 units of each of 3 hot items at each; every reserve
	 * goes against the pool and the ledger picks the location. */
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	int status;
	json_t *root = scenario_run(&server,
	                            "--scenario flash-sale --setup --items 3 --hot 3 --stock 10 "
	                            "--locations 4 --pool WEB --connections 32",
	                            &status);
	scenario_assert(root, status, "flash-sale");
	char *text = json_dumps(root, JSON_COMPACT);
	cr_assert_eq(json_int(root, "check_figures.levels"), 3 * 4, "%s", text);
	cr_assert_eq(json_int(root, "check_figures.stock_before"), 3 * 4 * 10, "%s", text);
	cr_assert_leq(json_int(root, "units.committed"), 3 * 4 * 10, "%s", text);
	cr_assert_gt(json_int(root, "refused_by.INSUFFICIENT"), 0, "sold out: %s", text);
	cr_assert_eq(json_int(root, "check_figures.reserved_ledger"),
	             json_int(root, "check_figures.reserved_expected"), "%s", text);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "pool"), "name")),
	                 "WEB");
	cr_assert_eq(json_int(root, "pool.channel"), 1, "%s", text);
	/* Selling out takes every unit of every location: the ledger placed
	 * holds at all four. */
	cr_assert_eq(json_int(root, "pool.locations_used"), 4, "%s", text);
	free(text);
	json_decref(root);
	server_fini(&server);
}

Test(bench, mixed_runs_tills_gateways_and_push_workers_at_once, .timeout = 120)
{
	/* 16 connections: 2 push workers, 4 gateways, 10 tills, over a
	 * channel WEB that lists all 100 items and pools all 8 locations. */
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	int status;
	json_t *root = scenario_run(&server,
	                            "--scenario mixed --setup --items 100 --locations 8 "
	                            "--connections 16",
	                            &status);
	scenario_assert(root, status, "mixed");
	char *text = json_dumps(root, JSON_COMPACT);
	static const struct {
		const char *role;
		long long connections;
	} roles[] = {{"till", 10}, {"gateway", 4}, {"push", 2}};
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "roles.%s.connections", roles[i].role);
		cr_assert_eq(json_int(root, path), roles[i].connections, "%s", text);
		static const char *const fields[] = {"requests", "accepted", "latency_us.p50",
		                                     "latency_us.p99", "latency_us.max"};
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			snprintf(path, sizeof(path), "roles.%s.%s", roles[i].role, fields[f]);
			cr_assert_gt(json_int(root, path), 0, "%s: %s", path, text);
		}
		snprintf(path, sizeof(path), "roles.%s.latency_us.p99", roles[i].role);
		long long p99 = json_int(root, path);
		snprintf(path, sizeof(path), "roles.%s.latency_us.max", roles[i].role);
		cr_assert_geq(json_int(root, path), p99, "%s", text);
	}
	/* Tills sell and take returns at their stores, gateways hold and
	 * commit against the pool, push workers acknowledge what is dirty
	 * (every item is dirty once listed). */
	cr_assert_gt(json_int(root, "units.sold"), 0, "%s", text);
	cr_assert_gt(json_int(root, "units.returned"), 0, "%s", text);
	cr_assert_gt(json_int(root, "units.committed"), 0, "%s", text);
	cr_assert_gt(json_int(root, "pool.locations_used"), 0, "%s", text);
	cr_assert_gt(json_int(root, "roles.push.queries"), 0, "%s", text);
	cr_assert_gt(json_int(root, "roles.push.records"), 0, "%s", text);
	cr_assert_eq(json_int(root, "accepted_by.PUSH_ACK"), json_int(root, "roles.push.accepted"),
	             "%s", text);
	cr_assert_eq(json_int(root, "check_figures.levels"), 100 * 8, "%s", text);
	free(text);
	json_decref(root);
	server_fini(&server);
}

/* ---- skuld-bench --start-server: its own skuld, the disk check ------------- */

/* A small server for --server-config: the defaults of a started server are
 * sized for a 1M item-location catalog. */
static const char *config_started = "keys_max = 1m\nholds_max = 65536\n"
                                    "closed_holds_max = 65536\nitems_max = 1024\n"
                                    "codes_max = 4096\nlocations_max = 64\n"
                                    "stock_max = 64k\nconnections_max = 128\n";

/* Entries of dir other than . and .. */
static int dir_entries(const char *dir, char *first, size_t size)
{
	DIR *handle = opendir(dir);
	cr_assert_not_null(handle, "%s: %s", dir, strerror(errno));
	int count = 0;
	for (struct dirent *entry = readdir(handle); entry != NULL; entry = readdir(handle)) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		if (count++ == 0)
			snprintf(first, size, "%s", entry->d_name);
	}
	closedir(handle);
	return count;
}

struct start_case {
	const char *args;
	int status; /* skuld-bench's exit status */
	int kept;   /* the run's directory is left in --data-dir */
	const char *stderr_has;
	long fsync_delay_us; /* the started server's; -1: the run is refused */
};

static const struct start_case start_cases[] = {
        /* Each write is acknowledged 2 ms after its fdatasync: the mean
         * write + fdatasync the server reports is at least that. */
        {"--fsync-delay-us 2000", 0, 0, NULL, 2000},
        {"--keep", 0, 1, "kept ", 0},
        /* No file system has 4 PiB free: refused before anything is made. */
        {"--disk-min-mb 4000000000", 1, 0, "MiB free on the file system of", -1},
};

static void start_case_run(const struct start_case *test)
{
	char dir[64] = "/tmp/skuld-bench-test-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char config[128], errors[128], command[1024];
	snprintf(config, sizeof(config), "%s/small.conf", dir);
	snprintf(errors, sizeof(errors), "%s/stderr", dir);
	FILE *file = fopen(config, "w");
	cr_assert_not_null(file);
	fputs(config_started, file);
	fclose(file);
	char runs[96];
	snprintf(runs, sizeof(runs), "%s/runs", dir);
	cr_assert_eq(mkdir(runs, 0700), 0);
	snprintf(command, sizeof(command),
	         "%s/bench/skuld-bench --start-server --server-config %s --data-dir %s --json "
	         "--duration 1 --scenario flash-sale --items 3 --hot 3 --stock 40 "
	         "--connections 16 %s 2>%s",
	         SKULD_BINARY_DIR, config, runs, test->args, errors);
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe);
	char out[8192];
	size_t used = fread(out, 1, sizeof(out) - 1, pipe);
	out[used] = '\0';
	int code = pclose(pipe);
	int status = WIFEXITED(code) ? WEXITSTATUS(code) : -1;
	char err[4096] = "";
	file = fopen(errors, "r");
	cr_assert_not_null(file);
	err[fread(err, 1, sizeof(err) - 1, file)] = '\0';
	fclose(file);
	cr_assert_eq(status, test->status, "%s: status %d: %s %s", test->args, status, out, err);
	if (test->stderr_has != NULL)
		cr_assert_not_null(strstr(err, test->stderr_has), "%s: %s", test->args, err);
	char first[256] = "";
	int entries = dir_entries(runs, first, sizeof(first));
	cr_assert_eq(entries, test->kept, "%s: %d entries left in %s", test->args, entries, runs);
	if (test->kept) {
		char log[512];
		snprintf(log, sizeof(log), "%s/%s/data/log", runs, first);
		struct stat info;
		cr_assert_eq(stat(log, &info), 0, "kept run has no log: %s", log);
		char remove[700];
		snprintf(remove, sizeof(remove), "rm -rf %s/%s", runs, first);
		cr_assert_eq(system(remove), 0);
	}
	if (test->fsync_delay_us >= 0) {
		json_error_t error;
		json_t *root = json_loads(out, 0, &error);
		cr_assert_not_null(root, "not JSON (%s): %s", error.text, out);
		scenario_assert(root, status, "flash-sale");
		char *text = json_dumps(root, JSON_COMPACT);
		cr_assert(json_is_true(json_object_get(root, "server_started")), "%s", text);
		cr_assert_eq(json_int(root, "fsync_delay_us"), test->fsync_delay_us, "%s", text);
		long long writes = json_int(root, "group_commit.writes");
		cr_assert_gt(writes, 0, "%s", text);
		cr_assert_geq(json_int(root, "group_commit.events"), writes, "%s", text);
		cr_assert_geq(json_int(root, "group_commit.group_events_max"),
		              json_int(root, "group_commit.events_per_write"), "%s", text);
		cr_assert_geq(json_int(root, "group_commit.write_us_mean"), test->fsync_delay_us,
		              "%s", text);
		cr_assert_gt(json_int(root, "group_commit.disk_free_mb"), 0, "%s", text);
		free(text);
		json_decref(root);
	}
	unlink(config);
	unlink(errors);
	cr_assert_eq(rmdir(runs), 0);
	cr_assert_eq(rmdir(dir), 0);
}

Test(bench, start_server_delays_fsync_checks_disk_and_cleans_up, .timeout = 180)
{
	for (size_t i = 0; i < sizeof(start_cases) / sizeof(start_cases[0]); i++)
		start_case_run(&start_cases[i]);
}

Test(bench, a_running_server_with_too_little_disk_is_refused, .timeout = 60)
{
	/* Against a running server the bound is checked on the free space its
	 * STATS report for its data directory. */
	struct server server;
	server_init(&server, config_scenarios);
	server_start(&server);
	char command[512];
	snprintf(command, sizeof(command),
	         "%s/bench/skuld-bench --server 127.0.0.1:%u --json --duration 1 --setup "
	         "--disk-min-mb 4000000000 2>&1",
	         SKULD_BINARY_DIR, server.port);
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe);
	char out[2048];
	size_t used = fread(out, 1, sizeof(out) - 1, pipe);
	out[used] = '\0';
	int code = pclose(pipe);
	cr_assert(WIFEXITED(code) && WEXITSTATUS(code) == 1, "%s", out);
	cr_assert_not_null(strstr(out, "the server's data directory"), "%s", out);
	cr_assert_null(strstr(out, "\"scenario\""), "nothing ran: %s", out);
	server_fini(&server);
}

/* ---- A test double that oversells ----------------------------------------
 * A tiny stand-in server, forked from the test: it speaks just enough of
 * the protocol for skuld-bench (REGISTER, SUBMIT, LOCATION_LEVELS at
 * location 1) and keeps honest books of what it acknowledged, but grants
 * every RESERVE whatever the stock. skuld-bench's own end-of-run check must
 * catch the oversold levels. */

#define FAKE_ITEMS       16u
#define FAKE_HOLDS       (1u << 20)
#define FAKE_CONNECTIONS 16u

struct fake_hold {
	uint64_t id;
	uint32_t item;
	int64_t units;
};

struct fake_ledger {
	int64_t on_hand[FAKE_ITEMS + 1];
	int64_t reserved[FAKE_ITEMS + 1];
	int64_t committed[FAKE_ITEMS + 1];
	struct fake_hold holds[FAKE_HOLDS]; /* open addressing by id */
};

static struct fake_hold *fake_hold_find(struct fake_ledger *ledger, uint64_t id, int insert)
{
	for (uint32_t probe = 0; probe < FAKE_HOLDS; probe++) {
		uint64_t slot = ((id * 0x9e3779b97f4a7c15u) >> 44) + probe;
		struct fake_hold *hold = &ledger->holds[slot % FAKE_HOLDS];
		if (hold->id == id)
			return hold;
		if (hold->id == 0)
			return insert ? hold : NULL;
	}
	return NULL;
}

static int fake_read(int fd, void *bytes, size_t size)
{
	for (size_t done = 0; done < size;) {
		ssize_t n = read(fd, (uint8_t *)bytes + done, size - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void fake_reply(int fd, const struct skuld_header *request, const void *body, uint32_t count,
                       uint32_t record_size)
{
	static uint8_t frame[SKULD_HEADER_SIZE + SKULD_QUERY_LIMIT_MAX * 64];
	struct skuld_header *header = (struct skuld_header *)frame;
	memset(header, 0, sizeof(*header));
	header->magic = SKULD_MAGIC;
	header->version = request->version;
	header->operation = request->operation;
	header->flags = SKULD_FRAME_REPLY;
	header->request = request->request;
	header->client = request->client;
	header->count = count;
	header->body_size = count * record_size;
	memcpy(frame + SKULD_HEADER_SIZE, body, header->body_size);
	proto_header_seal(header, frame + SKULD_HEADER_SIZE);
	size_t size = SKULD_HEADER_SIZE + header->body_size;
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, frame + done, size - done);
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

static void fake_submit(struct fake_ledger *ledger, int fd, const struct skuld_header *header,
                        const struct skuld_event *events)
{
	static struct skuld_result results[SKULD_EVENTS_PER_FRAME_MAX];
	for (uint32_t i = 0; i < header->count; i++) {
		const struct skuld_event *event = &events[i];
		struct skuld_result *result = &results[i];
		memset(result, 0, sizeof(*result));
		result->index = i;
		uint32_t item = event->item <= FAKE_ITEMS ? event->item : 0;
		struct fake_hold *hold = NULL;
		switch (event->kind) {
		case SKULD_RECEIVE:
			ledger->on_hand[item] += event->quantity;
			break;
		case SKULD_RESERVE: /* the bug: no look at what is available */
			hold = fake_hold_find(ledger, event->id, 1);
			if (hold == NULL) {
				result->status = SKULD_HOLDS_FULL;
				break;
			}
			hold->id = event->id;
			hold->item = item;
			hold->units = event->quantity;
			ledger->reserved[item] += event->quantity;
			break;
		case SKULD_COMMIT:
		case SKULD_RELEASE:
			hold = fake_hold_find(ledger, event->id, 0);
			if (hold == NULL || hold->units == 0) {
				result->status = SKULD_HOLD_UNKNOWN;
				break;
			}
			ledger->reserved[hold->item] -= hold->units;
			if (event->kind == SKULD_COMMIT)
				ledger->committed[hold->item] += hold->units;
			hold->units = 0;
			break;
		default: /* catalog definitions */
			break;
		}
	}
	fake_reply(fd, header, results, header->count, sizeof(results[0]));
}

static void fake_query(const struct fake_ledger *ledger, int fd, const struct skuld_header *header,
                       const struct skuld_query *query)
{
	static struct skuld_level_record records[FAKE_ITEMS];
	uint32_t count = 0;
	for (uint32_t item = query->after_item + 1; query->location == 1 && item <= FAKE_ITEMS;
	     item++) {
		if (ledger->on_hand[item] == 0 && ledger->reserved[item] == 0)
			continue;
		struct skuld_level_record *record = &records[count++];
		memset(record, 0, sizeof(*record));
		record->item = item;
		record->location = 1;
		record->on_hand = ledger->on_hand[item];
		record->reserved = ledger->reserved[item];
		record->committed = ledger->committed[item];
		record->available = record->on_hand - record->reserved - record->committed;
		record->kind = SKULD_QUERY_LOCATION_LEVELS;
	}
	fake_reply(fd, header, records, count, sizeof(records[0]));
}

/* Serves one frame from fd; -1 when the connection is done. */
static int fake_serve(struct fake_ledger *ledger, int fd)
{
	static uint8_t body[SKULD_EVENTS_PER_FRAME_MAX * SKULD_EVENT_SIZE];
	struct skuld_header header;
	if (fake_read(fd, &header, sizeof(header)) != 0 || header.body_size > sizeof(body) ||
	    fake_read(fd, body, header.body_size) != 0)
		return -1;
	if (header.operation == SKULD_OP_REGISTER) {
		struct skuld_register_reply reply = {.version = SKULD_PROTOCOL_VERSION_MAX,
		                                     .events_max = SKULD_EVENTS_PER_FRAME_MAX,
		                                     .request_next = 1,
		                                     .session = 1};
		fake_reply(fd, &header, &reply, 1, sizeof(reply));
	} else if (header.operation == SKULD_OP_SUBMIT) {
		fake_submit(ledger, fd, &header, (const void *)body);
	} else if (header.operation == SKULD_OP_QUERY) {
		fake_query(ledger, fd, &header, (const void *)body);
	} else {
		return -1;
	}
	return 0;
}

/* The double's process: serves until the test kills it (at most 60 s). */
static void fake_run(int listener)
{
	static struct fake_ledger ledger;
	struct pollfd fds[FAKE_CONNECTIONS + 1] = {{.fd = listener, .events = POLLIN}};
	nfds_t count = 1;
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* the test's end is the double's end */
	alarm(60);
	for (;;) {
		if (poll(fds, count, -1) < 0)
			_exit(1);
		if ((fds[0].revents & POLLIN) && count <= FAKE_CONNECTIONS) {
			int fd = accept(listener, NULL, NULL);
			if (fd >= 0)
				fds[count++] = (struct pollfd){.fd = fd, .events = POLLIN};
		}
		for (nfds_t i = 1; i < count; i++) {
			if (fds[i].revents == 0)
				continue;
			if (fake_serve(&ledger, fds[i].fd) != 0) {
				close(fds[i].fd);
				fds[i--] = fds[--count];
			}
		}
	}
}

Test(bench, check_catches_a_server_that_oversells, .timeout = 120)
{
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = {.sin_family = AF_INET,
	                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t size = sizeof(address);
	cr_assert_eq(bind(listener, (struct sockaddr *)&address, sizeof(address)), 0);
	cr_assert_eq(listen(listener, 16), 0);
	cr_assert_eq(getsockname(listener, (struct sockaddr *)&address, &size), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		fake_run(listener);
	close(listener);
	struct server fake = {.pid = pid, .port = ntohs(address.sin_port)};
	/* 2 items x 10 units, 4 connections reserving 5 at a time: the double
	 * grants far more than it has. */
	int status;
	json_t *root = scenario_run(&fake,
	                            "--scenario steady --setup --items 2 --locations 1 --hot 2 "
	                            "--stock 10 --connections 4 --batch 10",
	                            &status);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	char *text = json_dumps(root, JSON_COMPACT);
	cr_assert_eq(status, 1, "an oversold ledger fails the run: %s", text);
	cr_assert_str_eq(json_string_value(json_object_get(root, "check")), "failed", "%s", text);
	cr_assert_eq(json_int(root, "check_figures.oversold_levels"), 2, "%s", text);
	/* Its books agree with what it acknowledged: only the oversell is wrong. */
	cr_assert_eq(json_int(root, "check_figures.committed_ledger"),
	             json_int(root, "check_figures.committed_expected"), "%s", text);
	cr_assert_eq(json_int(root, "check_figures.reserved_ledger"),
	             json_int(root, "check_figures.reserved_expected"), "%s", text);
	cr_assert_gt(json_int(root, "units.committed"), 2 * 10, "%s", text);
	free(text);
	json_decref(root);
}
