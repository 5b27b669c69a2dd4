/*
 * bench_report.c — skuld-bench's figures as text for people or one JSON
 * object (one line) for scripts, and CPU time of this process and of the
 * server. The JSON keeps the fields of earlier versions (connections,
 * batch, hot, seconds, events_per_s, requests_per_s, accepted, refused,
 * errors, latency_us, cpu_s, check) and adds the scenario, the loop mode,
 * refusals by status and acceptances by event kind, units by movement, the
 * open loop's schedule misses and the check's figures, the server's group
 * commit figures over the run (from STATS), and with --pool where the
 * ledger placed the channel holds.
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

/* The figures both forms print. */
struct figures {
	double seconds;
	double events_per_s;
	double requests_per_s;
	uint64_t p50, p90, p99, p999, max;
	uint64_t service_p50, service_p99; /* from the send, not from when due */
	double self_cpu;
	double server_cpu; /* -1: not measured */
};

static void figures_compute(const struct bench *bench, const struct bench_cpu *start,
                            const struct bench_cpu *end, struct figures *figures)
{
	const struct histogram *latency = &bench->latency_us;
	figures->seconds = (double)(bench->finished_ns - bench->started_ns) / 1e9;
	figures->events_per_s = (double)bench->events / figures->seconds;
	figures->requests_per_s = (double)bench->requests / figures->seconds;
	figures->p50 = histogram_percentile(latency, 50);
	figures->p90 = histogram_percentile(latency, 90);
	figures->p99 = histogram_percentile(latency, 99);
	figures->p999 = histogram_percentile(latency, 99.9);
	figures->max = latency->max;
	figures->service_p50 = histogram_percentile(&bench->service_us, 50);
	figures->service_p99 = histogram_percentile(&bench->service_us, 99);
	figures->self_cpu = end->self_s - start->self_s;
	figures->server_cpu =
	        end->server_s >= 0 && start->server_s >= 0 ? end->server_s - start->server_s : -1;
}

/* Group commit over the run, from the server's STATS before and after. */
struct group_commit {
	uint64_t writes;         /* log writes made durable during the run */
	uint64_t events;         /* events they held (the run's, setup's and EXPIREs) */
	double events_per_write; /* mean */
	uint64_t events_max;     /* STATS group_events_max: since the server started */
	int events_max_in_run;   /* it grew during the run, so it is the run's */
	double write_us_mean;    /* write + fdatasync (+ fsync_delay_us) per write */
	uint64_t disk_free_mb;
};

static void group_commit_compute(const struct bench *bench, struct group_commit *group)
{
	const struct skuld_stats *before = &bench->stats_before;
	const struct skuld_stats *after = &bench->stats_after;
	group->writes = after->log_writes - before->log_writes;
	group->events = after->event_durable - before->event_durable;
	group->events_per_write = group->writes ? (double)group->events / group->writes : 0;
	group->events_max = after->group_events_max;
	group->events_max_in_run = after->group_events_max > before->group_events_max;
	group->write_us_mean = group->writes
	                               ? (double)(after->fsync_ns_total - before->fsync_ns_total) /
	                                         1e3 / (double)group->writes
	                               : 0;
	group->disk_free_mb = after->disk_free_bytes >> 20;
}

/* --pool: how many locations got channel holds, and the most one got. */
static void pool_spread(const struct bench *bench, uint32_t *used, uint64_t *most)
{
	*used = 0;
	*most = 0;
	for (uint32_t location = 1;
	     bench->pool_reserves != NULL && location <= bench->options.locations; location++) {
		uint64_t count = bench->pool_reserves[location];
		*used += count != 0;
		*most = count > *most ? count : *most;
	}
}

static void json_counts(const uint64_t *counts, const char *(*name)(uint32_t))
{
	int first = 1;
	printf("{");
	for (uint32_t i = 0; i < 64; i++) {
		if (counts[i] == 0)
			continue;
		printf("%s\"%s\":%llu", first ? "" : ",", name(i), (unsigned long long)counts[i]);
		first = 0;
	}
	printf("}");
}

static void report_json(const struct bench *bench, const struct figures *f)
{
	const struct bench_options *options = &bench->options;
	const struct bench_check_figures *check = &bench->check;
	printf("{\"scenario\":\"%s\",\"mode\":\"%s\",\"rate\":%.0f,\"connections\":%u,"
	       "\"batch\":%u,\"items\":%u,\"locations\":%u,\"hot\":%u,\"stock\":%ld,"
	       "\"skew\":%.2f,\"seconds\":%.3f,",
	       options->scenario->name, options->rate > 0 ? "open" : "closed", options->rate,
	       options->connections, options->batch, options->items, options->locations,
	       options->hot, options->stock, options->skew, f->seconds);
	printf("\"events_per_s\":%.0f,\"requests_per_s\":%.0f,\"requests\":%llu,\"events\":%llu,"
	       "\"accepted\":%llu,\"refused\":%llu,\"errors\":%llu,\"sent_late\":%llu,"
	       "\"never_sent\":%llu,\"refused_by\":",
	       f->events_per_s, f->requests_per_s, (unsigned long long)bench->requests,
	       (unsigned long long)bench->events, (unsigned long long)bench->accepted,
	       (unsigned long long)bench->refused, (unsigned long long)bench->errors,
	       (unsigned long long)bench->sent_late, (unsigned long long)bench->never_sent);
	json_counts(bench->refused_by_status, skuld_status_name);
	printf(",\"accepted_by\":");
	json_counts(bench->accepted_by_kind, skuld_event_kind_name);
	printf(",\"units\":{\"reserved\":%lld,\"committed\":%lld,\"released\":%lld,"
	       "\"abandoned\":%lld,\"received\":%lld,\"sold\":%lld,\"returned\":%lld},",
	       (long long)bench->units_reserved, (long long)bench->units_committed,
	       (long long)bench->units_released, (long long)bench->units_abandoned,
	       (long long)bench->units_received, (long long)bench->units_sold,
	       (long long)bench->units_returned);
	printf("\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,"
	       "\"max\":%llu},\"service_latency_us\":{\"p50\":%llu,\"p99\":%llu},\"cpu_s\":{"
	       "\"bench\":%.2f,\"server\":%.2f},\"check\":\"%s\",",
	       (unsigned long long)f->p50, (unsigned long long)f->p90, (unsigned long long)f->p99,
	       (unsigned long long)f->p999, (unsigned long long)f->max,
	       (unsigned long long)f->service_p50, (unsigned long long)f->service_p99, f->self_cpu,
	       f->server_cpu, bench->check_failed ? "failed" : "ok");
	printf("\"check_figures\":{\"levels\":%llu,\"oversold_levels\":%llu,"
	       "\"stock_before\":%lld,\"committed_ledger\":%lld,\"committed_expected\":%lld,"
	       "\"reserved_ledger\":%lld,\"reserved_expected\":%lld,\"on_hand_ledger\":%lld,"
	       "\"on_hand_expected\":%lld}",
	       (unsigned long long)check->levels, (unsigned long long)check->oversold_levels,
	       (long long)check->stock_before, (long long)check->committed_ledger,
	       (long long)check->committed_expected, (long long)check->reserved_ledger,
	       (long long)check->reserved_expected, (long long)check->on_hand_ledger,
	       (long long)check->on_hand_expected);
}

static const char *const role_names[BENCH_ROLES] = {"till", "gateway", "push"};

/* mixed: ,"roles":{"till":{...},...} */
static void report_json_roles(const struct bench *bench, double seconds)
{
	printf(",\"roles\":{");
	for (uint32_t i = 0; i < BENCH_ROLES; i++) {
		const struct bench_role_figures *role = &bench->roles[i];
		const struct histogram *latency = &role->latency_us;
		printf("%s\"%s\":{\"connections\":%u,\"requests\":%llu,\"requests_per_s\":%.0f,"
		       "\"queries\":%llu,\"records\":%llu,\"events\":%llu,\"accepted\":%llu,"
		       "\"refused\":%llu,\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
		       "\"p999\":%llu,\"max\":%llu}}",
		       i ? "," : "", role_names[i], role->connections,
		       (unsigned long long)role->requests, (double)role->requests / seconds,
		       (unsigned long long)role->queries, (unsigned long long)role->records,
		       (unsigned long long)role->events, (unsigned long long)role->accepted,
		       (unsigned long long)role->refused,
		       (unsigned long long)histogram_percentile(latency, 50),
		       (unsigned long long)histogram_percentile(latency, 90),
		       (unsigned long long)histogram_percentile(latency, 99),
		       (unsigned long long)histogram_percentile(latency, 99.9),
		       (unsigned long long)latency->max);
	}
	printf("}");
}

static void report_text_roles(const struct bench *bench, double seconds)
{
	for (uint32_t i = 0; i < BENCH_ROLES; i++) {
		const struct bench_role_figures *role = &bench->roles[i];
		printf("  %-10s  %u connections, %.0f requests/s", role_names[i], role->connections,
		       (double)role->requests / seconds);
		if (role->queries != 0)
			printf(" (%llu queries, %llu dirty items seen)",
			       (unsigned long long)role->queries,
			       (unsigned long long)role->records);
		printf(", %llu accepted, %llu refused; p50 %llu  p99 %llu  max %llu us\n",
		       (unsigned long long)role->accepted, (unsigned long long)role->refused,
		       (unsigned long long)histogram_percentile(&role->latency_us, 50),
		       (unsigned long long)histogram_percentile(&role->latency_us, 99),
		       (unsigned long long)role->latency_us.max);
	}
}

/* The fields after check_figures; each begins with a comma. */
static void report_json_server(const struct bench *bench)
{
	const struct bench_options *options = &bench->options;
	printf(",\"server_started\":%s,\"fsync_delay_us\":%u",
	       options->start_server ? "true" : "false", options->fsync_delay_us);
	if (bench->stats_ok) {
		struct group_commit group;
		group_commit_compute(bench, &group);
		printf(",\"group_commit\":{\"writes\":%llu,\"events\":%llu,"
		       "\"events_per_write\":%.2f,\"group_events_max\":%llu,"
		       "\"group_events_max_in_run\":%s,\"write_us_mean\":%.1f,"
		       "\"disk_free_mb\":%llu}",
		       (unsigned long long)group.writes, (unsigned long long)group.events,
		       group.events_per_write, (unsigned long long)group.events_max,
		       group.events_max_in_run ? "true" : "false", group.write_us_mean,
		       (unsigned long long)group.disk_free_mb);
	}
	if (options->pool != NULL) {
		uint32_t used;
		uint64_t most;
		pool_spread(bench, &used, &most);
		printf(",\"pool\":{\"channel\":%u,\"name\":\"%s\",\"locations\":%u,"
		       "\"locations_used\":%u,\"reserves_at_busiest\":%llu}",
		       BENCH_CHANNEL, options->pool, options->locations, used,
		       (unsigned long long)most);
	}
}

static void report_text_server(const struct bench *bench)
{
	const struct bench_options *options = &bench->options;
	if (bench->stats_ok) {
		struct group_commit group;
		group_commit_compute(bench, &group);
		printf("  group       %llu log writes, %.1f events per write, at most %llu%s; "
		       "write + fdatasync %.0f us mean",
		       (unsigned long long)group.writes, group.events_per_write,
		       (unsigned long long)group.events_max,
		       group.events_max_in_run ? "" : " (since the server started)",
		       group.write_us_mean);
		if (options->fsync_delay_us != 0)
			printf(" (fsync_delay_us %u)", options->fsync_delay_us);
		printf("\n");
	}
	if (options->pool != NULL) {
		uint32_t used;
		uint64_t most;
		pool_spread(bench, &used, &most);
		printf("  pool        channel %s: holds placed at %u of %u locations, at most %llu "
		       "at one\n",
		       options->pool, used, options->locations, (unsigned long long)most);
	}
}

static void report_text(const struct bench *bench, const struct figures *f)
{
	const struct bench_options *options = &bench->options;
	const struct bench_check_figures *check = &bench->check;
	printf("skuld-bench %s: %u connections, %u events/request, %s", options->scenario->name,
	       options->connections, options->batch, options->hot ? "hot items" : "catalog");
	if (options->rate > 0)
		printf(", open loop at %.0f requests/s", options->rate);
	else
		printf(", closed loop");
	printf(", %.1f s\n", f->seconds);
	printf("  throughput  %.0f events/s, %.0f requests/s\n", f->events_per_s,
	       f->requests_per_s);
	if (options->rate > 0)
		printf("  schedule    %llu requests sent over 1 ms late, %llu never sent\n",
		       (unsigned long long)bench->sent_late, (unsigned long long)bench->never_sent);
	printf("  events      %llu accepted, %llu refused, %llu errors\n",
	       (unsigned long long)bench->accepted, (unsigned long long)bench->refused,
	       (unsigned long long)bench->errors);
	for (uint32_t status = 0; status < 64; status++) {
		if (bench->refused_by_status[status] != 0)
			printf("              %llu %s\n",
			       (unsigned long long)bench->refused_by_status[status],
			       skuld_status_name(status));
	}
	printf("  holds       %llu reserved, %llu committed, %llu released, %llu abandoned\n",
	       (unsigned long long)bench->reserved_ok, (unsigned long long)bench->committed_ok,
	       (unsigned long long)bench->released_ok, (unsigned long long)bench->abandoned_ok);
	if (bench->units_sold != 0 || bench->units_returned != 0 || bench->units_received != 0)
		printf("  units       %lld sold, %lld returned, %lld received\n",
		       (long long)bench->units_sold, (long long)bench->units_returned,
		       (long long)bench->units_received);
	printf("  latency us  p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu%s\n",
	       (unsigned long long)f->p50, (unsigned long long)f->p90, (unsigned long long)f->p99,
	       (unsigned long long)f->p999, (unsigned long long)f->max,
	       options->rate > 0 ? " (from when due)" : "");
	if (options->rate > 0)
		printf("              from the send: p50 %llu  p99 %llu\n",
		       (unsigned long long)f->service_p50, (unsigned long long)f->service_p99);
	printf("  check       %s: %llu levels, %llu oversold; committed %lld (told %lld), "
	       "reserved %+lld (expected %+lld), on_hand %+lld (expected %+lld); stock "
	       "available before %lld\n",
	       bench->check_failed ? "FAILED" : "ok", (unsigned long long)check->levels,
	       (unsigned long long)check->oversold_levels, (long long)check->committed_ledger,
	       (long long)check->committed_expected, (long long)check->reserved_ledger,
	       (long long)check->reserved_expected, (long long)check->on_hand_ledger,
	       (long long)check->on_hand_expected, (long long)check->stock_before);
	printf("  cpu s       bench %.2f", f->self_cpu);
	if (f->server_cpu >= 0)
		printf(", server %.2f", f->server_cpu);
	printf("\n");
}

void bench_report(const struct bench *bench, const struct bench_cpu *start,
                  const struct bench_cpu *end)
{
	struct figures figures;
	figures_compute(bench, start, end, &figures);
	if (bench->options.json) {
		report_json(bench, &figures);
		report_json_server(bench);
		if (bench->options.listings)
			report_json_roles(bench, figures.seconds);
		printf("}\n");
	} else {
		report_text(bench, &figures);
		if (bench->options.listings)
			report_text_roles(bench, figures.seconds);
		report_text_server(bench);
	}
}
