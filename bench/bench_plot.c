/*
 * bench_plot.c — a run at a glance: with --plot PREFIX, skuld-bench writes
 *   PREFIX-throughput.dat  time (s), events/s, requests/s per 100 ms slice
 *   PREFIX-latency.dat     percentile, latency (us) and 1 / (1 - p), from
 *                          p50 to p99.999 and the max, from the histogram
 *   PREFIX.gp              a gnuplot script drawing both into PREFIX.svg
 * and, when gnuplot is on PATH, runs it (PREFIX.svg). Without gnuplot the
 * script stays for later: `gnuplot PREFIX.gp`.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

#define PLOT_PATH_MAX 4096

static FILE *plot_open(char *path, const char *prefix, const char *suffix)
{
	int n = snprintf(path, PLOT_PATH_MAX, "%s%s", prefix, suffix);
	if (n < 0 || n >= PLOT_PATH_MAX)
		return NULL;
	FILE *file = fopen(path, "w");
	if (file == NULL)
		fprintf(stderr, "skuld-bench: %s: %s\n", path, strerror(errno));
	return file;
}

static int plot_close(FILE *file)
{
	int failed = ferror(file);
	return fclose(file) != 0 || failed ? -1 : 0;
}

static int throughput_write(const struct bench *bench, const char *prefix)
{
	char path[PLOT_PATH_MAX];
	FILE *file = plot_open(path, prefix, "-throughput.dat");
	if (file == NULL)
		return -1;
	uint64_t slices =
	        (bench->finished_ns - bench->started_ns + BENCH_SLICE_NS - 1) / BENCH_SLICE_NS;
	if (slices > bench->timeline_slots)
		slices = bench->timeline_slots;
	double per_s = 1e9 / BENCH_SLICE_NS;
	fprintf(file, "# t_s events_per_s requests_per_s\n");
	for (uint64_t i = 0; i < slices; i++)
		fprintf(file, "%.1f %.0f %.0f\n", (double)(i + 1) / per_s,
		        (double)bench->timeline_events[i] * per_s,
		        (double)bench->timeline_requests[i] * per_s);
	return plot_close(file);
}

static int latency_write(const struct bench *bench, const char *prefix)
{
	char path[PLOT_PATH_MAX];
	FILE *file = plot_open(path, prefix, "-latency.dat");
	if (file == NULL)
		return -1;
	fprintf(file, "# percentile latency_us one_over_one_minus_p\n");
	/* 20 points a decade from p50 (1/(1-p) = 2) to p99.999 (10^5). */
	for (int step = 0; step <= 94; step++) {
		double nines = pow(10.0, log10(2.0) + step / 20.0);
		double percentile = 100.0 * (1.0 - 1.0 / nines);
		fprintf(file, "%.5f %llu %.3f\n", percentile,
		        (unsigned long long)histogram_percentile(&bench->latency_us, percentile),
		        nines);
	}
	return plot_close(file);
}

static int script_write(const struct bench *bench, const char *prefix, char *script)
{
	FILE *file = plot_open(script, prefix, ".gp");
	if (file == NULL)
		return -1;
	const struct bench_options *options = &bench->options;
	fprintf(file,
	        "# skuld-bench %s: %u connections x %u events, %s\n"
	        "set terminal svg size 900,800 dynamic background rgb 'white'\n"
	        "set output '%s.svg'\n"
	        "set multiplot layout 2,1 title 'skuld-bench %s'\n"
	        "set title 'throughput (per 100 ms)'\n"
	        "set xlabel 'seconds'\nset ylabel 'events/s'\nset y2label 'requests/s'\n"
	        "set ytics nomirror\nset y2tics\nset grid\nset key top left\n"
	        "set yrange [0:*]\nset y2range [0:*]\n"
	        "plot '%s-throughput.dat' using 1:2 with lines title 'events/s', \\\n"
	        "     '' using 1:3 axes x1y2 with lines title 'requests/s'\n"
	        "unset y2label\nunset y2tics\nset ytics mirror\n"
	        "set title 'latency by percentile%s'\n"
	        "set logscale x\nset logscale y\nset autoscale y\n"
	        "set xlabel 'percentile'\nset ylabel 'microseconds'\n"
	        "set xtics ('50' 2, '90' 10, '99' 100, '99.9' 1000, '99.99' 10000, "
	        "'99.999' 100000)\n"
	        "plot '%s-latency.dat' using 3:2 with steps title 'latency'\n"
	        "unset multiplot\n",
	        options->scenario->name, options->connections, options->batch,
	        options->rate > 0 ? "open loop" : "closed loop", prefix, options->scenario->name,
	        prefix, options->rate > 0 ? " (from when due)" : "", prefix);
	return plot_close(file);
}

/* Runs gnuplot on script when it is installed; 0 when it ran or is
 * missing, -1 when it failed. */
static int gnuplot_run(const char *script)
{
	char *argv[] = {"gnuplot", (char *)script, NULL};
	pid_t pid;
	if (posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) != 0) {
		fprintf(stderr, "skuld-bench: gnuplot is not installed; render with: gnuplot %s\n",
		        script);
		return 0;
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		fprintf(stderr, "skuld-bench: gnuplot is not installed; render with: gnuplot %s\n",
		        script);
		return 0;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int bench_plot(const struct bench *bench, const char *prefix)
{
	if (strchr(prefix, '\'') != NULL) {
		fprintf(stderr, "skuld-bench: --plot PREFIX must not contain a quote\n");
		return -1;
	}
	char script[PLOT_PATH_MAX];
	if (throughput_write(bench, prefix) != 0 || latency_write(bench, prefix) != 0 ||
	    script_write(bench, prefix, script) != 0)
		return -1;
	return gnuplot_run(script);
}
