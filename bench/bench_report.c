/*
 * bench_report.c — skuld-bench's figures as text for people or one JSON
 * object for scripts, and CPU time of this process and of the server.
 */
#include "bench.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static double process_cpu_s(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return -1;
	unsigned long user = 0, system = 0;
	/* Fields 14 and 15 (utime, stime); the command name in field 2 has no
	 * spaces for skuld. */
	int matched = fscanf(file, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	                     &user, &system);
	fclose(file);
	if (matched != 2)
		return -1;
	return (double)(user + system) / (double)sysconf(_SC_CLK_TCK);
}

void bench_cpu_read(const struct bench *bench, struct bench_cpu *cpu)
{
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	cpu->self_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
	              (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
	cpu->server_s = bench->options.server_pid ? process_cpu_s(bench->options.server_pid) : -1;
}

void bench_report(const struct bench *bench, const struct bench_cpu *start,
                  const struct bench_cpu *end)
{
	const struct bench_options *options = &bench->options;
	double seconds = (double)(bench->finished_ns - bench->started_ns) / 1e9;
	double events_per_s = (double)bench->events / seconds;
	double requests_per_s = (double)bench->requests / seconds;
	const struct histogram *latency = &bench->latency_us;
	uint64_t p50 = histogram_percentile(latency, 50), p90 = histogram_percentile(latency, 90);
	uint64_t p99 = histogram_percentile(latency, 99),
	         p999 = histogram_percentile(latency, 99.9);
	double self_cpu = end->self_s - start->self_s;
	double server_cpu =
	        end->server_s >= 0 && start->server_s >= 0 ? end->server_s - start->server_s : -1;
	if (options->json) {
		printf("{\"connections\":%u,\"batch\":%u,\"hot\":%u,\"seconds\":%.3f,"
		       "\"events_per_s\":%.0f,\"requests_per_s\":%.0f,\"accepted\":%llu,"
		       "\"refused\":%llu,\"errors\":%llu,\"latency_us\":{\"p50\":%llu,"
		       "\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu},"
		       "\"cpu_s\":{\"bench\":%.2f,\"server\":%.2f},\"check\":\"%s\"}\n",
		       options->connections, options->batch, options->hot, seconds, events_per_s,
		       requests_per_s, (unsigned long long)bench->accepted,
		       (unsigned long long)bench->refused, (unsigned long long)bench->errors,
		       (unsigned long long)p50, (unsigned long long)p90, (unsigned long long)p99,
		       (unsigned long long)p999, (unsigned long long)latency->max, self_cpu,
		       server_cpu, bench->check_failed ? "failed" : "ok");
		return;
	}
	printf("skuld-bench: %u connections, %u events/request, %s, %.1f s\n", options->connections,
	       options->batch, options->hot ? "hot items" : "uniform", seconds);
	printf("  throughput  %.0f events/s, %.0f requests/s\n", events_per_s, requests_per_s);
	printf("  events      %llu accepted, %llu refused, %llu errors\n",
	       (unsigned long long)bench->accepted, (unsigned long long)bench->refused,
	       (unsigned long long)bench->errors);
	for (uint32_t status = 0; status < 64; status++) {
		if (bench->refused_by_status[status] != 0)
			printf("              %llu %s\n",
			       (unsigned long long)bench->refused_by_status[status],
			       skuld_status_name(status));
	}
	printf("  holds       %llu reserved, %llu committed, %llu released\n",
	       (unsigned long long)bench->reserved_ok, (unsigned long long)bench->committed_ok,
	       (unsigned long long)bench->released_ok);
	printf("  latency us  p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
	       (unsigned long long)p50, (unsigned long long)p90, (unsigned long long)p99,
	       (unsigned long long)p999, (unsigned long long)latency->max);
	printf("  check       %s (nothing oversold; %lld units committed, %lld reserved, "
	       "%lld released match the ledger)\n",
	       bench->check_failed ? "FAILED" : "ok", (long long)bench->units_committed,
	       (long long)bench->units_reserved, (long long)bench->units_released);
	printf("  cpu s       bench %.2f", self_cpu);
	if (server_cpu >= 0)
		printf(", server %.2f", server_cpu);
	printf("\n");
}
