/*
 * micro.c — skuld-microbench: single-core throughput of the building blocks.
 *
 *   skuld-microbench [codec|log|ledger|memory|snapshot|restart|chain|all] [--rounds N]
 *
 * Each scenario runs N rounds (default 7) of a fixed amount of work and
 * prints the median, minimum and maximum events per second, so a noisy
 * machine shows as a wide range rather than a wrong number. Nothing here is
 * a test: docs/BENCHMARKS.md records the figures and how they were taken.
 */
#include "micro.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t micro_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

uint64_t micro_random(uint64_t *state)
{
	/* splitmix64: deterministic, fast, good enough for load shapes. */
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void micro_report(const char *name, double *rates, int rounds, const char *unit)
{
	qsort(rates, (size_t)rounds, sizeof(rates[0]), compare_double);
	printf("%-34s median %12.0f %s  (min %.0f, max %.0f, %d rounds)\n", name, rates[rounds / 2],
	       unit, rates[0], rates[rounds - 1], rounds);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: skuld-microbench "
	                "[codec|log|ledger|memory|snapshot|restart|chain|discrepancies|all] "
	                "[--rounds N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *scenario = "all";
	int rounds = 7;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = atoi(argv[++i]);
			if (rounds < 1 || rounds > 1000)
				usage();
		} else if (argv[i][0] != '-') {
			scenario = argv[i];
		} else {
			usage();
		}
	}
	int all = strcmp(scenario, "all") == 0;
	int ran = 0;
	if (all || strcmp(scenario, "codec") == 0)
		ran += micro_codec(rounds) == 0;
	if (all || strcmp(scenario, "log") == 0)
		ran += micro_log(rounds) == 0;
	if (all || strcmp(scenario, "ledger") == 0)
		ran += micro_ledger(rounds) == 0;
	if (all || strcmp(scenario, "memory") == 0)
		ran += micro_memory() == 0;
	if (all || strcmp(scenario, "snapshot") == 0)
		ran += micro_snapshot(rounds) == 0;
	if (strcmp(scenario, "restart") == 0) /* minutes and gigabytes of disk: on demand */
		ran += micro_restart(rounds) == 0;
	if (all || strcmp(scenario, "chain") == 0)
		ran += micro_chain(rounds) == 0;
	if (strcmp(scenario, "discrepancies") == 0) /* fills a million records: on demand */
		ran += micro_discrepancies(rounds) == 0;
	if (ran == 0)
		usage();
	return 0;
}
