/*
 * test_bench.c — skuld-bench against a real server: the setup, both
 * closed-loop shapes (batched and one event per request, uniform and hot),
 * the JSON figures and the end-of-run check. Runs are one second long: this
 * proves the harness works and checks the ledger, it measures nothing.
 */
#include "server_harness.h"

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
