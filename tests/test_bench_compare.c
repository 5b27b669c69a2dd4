/*
 * test_bench_compare.c — `skuld-bench compare` against every peer (skuld,
 * Redis with appendfsync always and everysec, PostgreSQL with
 * synchronous_commit on and off, redis-benchmark's PING) with a tiny load:
 * 2 connections, 1 s per target, for each scenario (uniform, flash-sale,
 * zipf, till-storm). It proves that compare starts each peer,
 * runs the same workload on it, checks it and stops it; it measures
 * nothing. The peers are Debian packages .ci/install-deps installs.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *const compare_targets[] = {"skuld", "redis-always", "redis-everysec",
                                              "postgres-sync-on", "postgres-sync-off"};

/* Runs skuld-bench compare with args; its stdout in out, its exit status. */
static int compare_run(const char *args, char *out, size_t size)
{
	char command[512];
	snprintf(command, sizeof(command),
	         "%s/bench/skuld-bench compare %s --connections 2 --duration 1 --json",
	         SKULD_BINARY_DIR, args);
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe, "popen: %s", strerror(errno));
	size_t used = fread(out, 1, size - 1, pipe);
	out[used] = '\0';
	int status = pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The object of target name in json (copied to object), or fails. */
static void target_object(const char *json, const char *name, char *object, size_t size)
{
	char key[64];
	snprintf(key, sizeof(key), "{\"name\":\"%s\"", name);
	const char *at = strstr(json, key);
	cr_assert_not_null(at, "no target %s in %s", name, json);
	const char *end = strchr(at, '}');
	cr_assert_not_null(end, "%s", json);
	size_t length = (size_t)(end - at) + 1;
	cr_assert_lt(length, size);
	memcpy(object, at, length);
	object[length] = '\0';
}

/* The number after "\"field\":" in object, or -1. */
static double field_number(const char *object, const char *field)
{
	char key[64];
	snprintf(key, sizeof(key), "\"%s\":", field);
	const char *at = strstr(object, key);
	return at != NULL ? strtod(at + strlen(key), NULL) : -1;
}

/* Every target ran, served requests and passed its check; none skipped. */
static void compare_assert(const char *json, int status, long stock_total)
{
	cr_assert_eq(status, 0, "compare failed: %s", json);
	cr_assert_not_null(strstr(json, "\"skipped\":[]"), "a peer was skipped: %s", json);
	for (size_t i = 0; i < sizeof(compare_targets) / sizeof(compare_targets[0]); i++) {
		char object[1024];
		target_object(json, compare_targets[i], object, sizeof(object));
		cr_assert_not_null(strstr(object, "\"check\":\"ok\""), "%s", object);
		cr_assert_gt(field_number(object, "requests_per_s"), 0, "%s", object);
		cr_assert_gt(field_number(object, "checkouts"), 0, "%s", object);
		cr_assert_eq(field_number(object, "errors"), 0, "%s", object);
		cr_assert_geq(field_number(object, "p99_us"), field_number(object, "p50_us"), "%s",
		              object);
		/* What the clients saw committed is what the store sold. */
		cr_assert_eq(field_number(object, "sold"), field_number(object, "units_committed"),
		             "%s", object);
		cr_assert_eq(field_number(object, "sold") + field_number(object, "available"),
		             (double)stock_total, "%s", object);
	}
	char ping[512];
	target_object(json, "redis-benchmark-ping", ping, sizeof(ping));
	cr_assert_gt(field_number(ping, "requests_per_s"), 0, "%s", ping);
}

Test(bench_compare, flash_sale_sells_the_stock_exactly_on_every_peer, .timeout = 120)
{
	/* 2 items x 20 units: sold out within the second on every peer, so
	 * the refusals and the check of the sell-out are exercised. */
	char json[8192];
	int status = compare_run("flash-sale --items 2 --stock 20", json, sizeof(json));
	compare_assert(json, status, 40);
	for (size_t i = 0; i < sizeof(compare_targets) / sizeof(compare_targets[0]); i++) {
		char object[1024];
		target_object(json, compare_targets[i], object, sizeof(object));
		cr_assert_gt(field_number(object, "refused"), 0, "not sold out: %s", object);
		cr_assert_eq(field_number(object, "available"), 0, "%s", object);
		cr_assert_eq(field_number(object, "sold"), 40, "%s", object);
	}
}

Test(bench_compare, uniform_runs_on_every_peer, .timeout = 120)
{
	char json[8192];
	int status = compare_run("uniform --items 100 --stock 1000", json, sizeof(json));
	compare_assert(json, status, 100 * 1000);
	for (size_t i = 0; i < sizeof(compare_targets) / sizeof(compare_targets[0]); i++) {
		char object[1024];
		target_object(json, compare_targets[i], object, sizeof(object));
		cr_assert_eq(field_number(object, "refused"), 0, "stock is ample: %s", object);
	}
}

/* zipf and till-storm: every peer runs them and its books agree with what
 * its clients were told (till-storm: units sold less returned). A till
 * sale is a fact, recorded whatever the stock: till-storm's stock covers
 * any second of sales, so nothing goes below zero. */
static const struct {
	const char *args;
	long stock_total;
} compare_cases[] = {
        {"zipf --items 50 --stock 20 --skew 1.5", 50 * 20},
        {"till-storm --items 20 --stock 1000000", 20 * 1000000L},
};

Test(bench_compare, zipf_and_till_storm_run_on_every_peer, .timeout = 240)
{
	for (size_t i = 0; i < sizeof(compare_cases) / sizeof(compare_cases[0]); i++) {
		char json[8192];
		int status = compare_run(compare_cases[i].args, json, sizeof(json));
		compare_assert(json, status, compare_cases[i].stock_total);
	}
}

Test(bench_compare, refuses_an_unknown_scenario)
{
	char out[256];
	cr_assert_eq(compare_run("no-such-scenario", out, sizeof(out)), 2);
}
