/*
 * skuldctl_metrics.c — `skuldctl stats --prometheus` and `skuldctl metrics
 * --listen HOST:PORT` (docs/SKULDCTL.md, docs/OPERATIONS.md "Metrics").
 *
 * Owns: the Prometheus text exposition (format 0.0.4) of the server's STATS
 * and of every channel's push record, and the HTTP endpoint that serves it
 * (libmicrohttpd, one internal thread: scrapes are answered one at a time).
 *
 * Invariants:
 *   - Every scrape asks the server afresh (one STATS, one CHANNEL_PUSH per
 *     channel): no figure is older than the scrape that shows it.
 *   - The server serves no HTTP itself; this exporter is a read-only client
 *     beside it, as the push workers are, so the ledger's loop keeps one
 *     protocol on one port.
 *   - A scrape that cannot reach the server is answered 503 with the reason,
 *     never with stale or zero figures; the client library reconnects for
 *     the next one.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "skuldctl.h"

#define METRICS_PATH       "/metrics"
#define METRICS_CONTENT    "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_CONNECTION 16u /* concurrent scrapers */

struct metric {
	const char *name;
	const char *type; /* "counter", "gauge" or "histogram" */
	const char *help;
};

static void metric_head(FILE *out, const struct metric *metric)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", metric->name, metric->help, metric->name,
	        metric->type);
}

static void metric_u64(FILE *out, const struct metric *metric, uint64_t value)
{
	metric_head(out, metric);
	fprintf(out, "%s %" PRIu64 "\n", metric->name, value);
}

static void metric_seconds(FILE *out, const struct metric *metric, uint64_t ns)
{
	metric_head(out, metric);
	fprintf(out, "%s %" PRIu64 ".%09" PRIu64 "\n", metric->name, ns / 1000000000u,
	        ns % 1000000000u);
}

static void stats_write(FILE *out, const struct skuld_stats *stats)
{
	static const struct metric uptime = {"skuld_uptime_seconds", "gauge",
	                                     "Seconds since the server started."};
	static const struct metric fsync_last = {
	        "skuld_fsync_last_seconds", "gauge",
	        "Write plus fdatasync time of the last group commit."};
	static const struct metric fsync_max = {
	        "skuld_fsync_max_seconds", "gauge",
	        "Slowest group-commit write plus fdatasync since start-up."};
	static const struct metric fsync_total = {
	        "skuld_fsync_seconds_total", "counter",
	        "Sum of group-commit write plus fdatasync times (mean: divide by "
	        "skuld_log_writes_total)."};
	const struct {
		struct metric metric;
		uint64_t value;
	} plain[] = {
	        {{"skuld_connections_open", "gauge", "Client connections open now."},
	         stats->connections_open},
	        {{"skuld_connections_accepted_total", "counter", "Client connections accepted."},
	         stats->connections_accepted},
	        {{"skuld_connections_refused_total", "counter",
	          "Connections refused over connections_max."},
	         stats->connections_refused},
	        {{"skuld_sessions", "gauge", "Client sessions in the session table."},
	         stats->sessions},
	        {{"skuld_requests_total", "counter", "SUBMIT requests applied."}, stats->requests},
	        {{"skuld_requests_retried_total", "counter",
	          "SUBMIT requests answered with their saved reply (client retries)."},
	         stats->requests_retried},
	        {{"skuld_events_total", "counter", "Client events applied."}, stats->events},
	        {{"skuld_events_expired_total", "counter", "Hold expiries the server wrote."},
	         stats->events_expired},
	        {{"skuld_queries_total", "counter", "QUERY, LOOKUP and STATS requests answered."},
	         stats->queries},
	        {{"skuld_frames_rejected_total", "counter",
	          "ERROR frames sent for malformed or refused frames."},
	         stats->frames_rejected},
	        {{"skuld_log_bytes_total", "counter", "Bytes written to the event log."},
	         stats->log_bytes},
	        {{"skuld_log_writes_total", "counter", "Group-commit writes made durable."},
	         stats->log_writes},
	        {{"skuld_event_durable", "gauge", "Sequence number of the last durable event."},
	         stats->event_durable},
	        {{"skuld_write_durable", "gauge", "Sequence number of the last durable write."},
	         stats->write_durable},
	        {{"skuld_group_records_last", "gauge", "Records in the last group commit."},
	         stats->group_records_last},
	        {{"skuld_group_records_max", "gauge", "Most records in one group commit."},
	         stats->group_records_max},
	        {{"skuld_group_events_last", "gauge", "Events in the last group commit."},
	         stats->group_events_last},
	        {{"skuld_group_events_max", "gauge", "Most events in one group commit."},
	         stats->group_events_max},
	        {{"skuld_holds_open", "gauge", "Reservations (holds) open now."},
	         stats->holds_open},
	        {{"skuld_memory_bound_bytes", "gauge",
	          "The configured memory bound (OPERATIONS.md, Memory)."},
	         stats->memory_bytes},
	        {{"skuld_log_segment", "gauge", "Number of the segment the log ends in."},
	         stats->log_segment},
	        {{"skuld_disk_free_bytes", "gauge",
	          "Free bytes on the data directory's file system (at most 10 s old)."},
	         stats->disk_free_bytes},
	        {{"skuld_disk_alarm", "gauge",
	          "Disk alarm bits: 1 free space low, 2 full within the alarm hours."},
	         stats->disk_alarm},
	        {{"skuld_chain_head_event", "gauge",
	          "Last event covered by the exported SHA-256 chain head (0: none)."},
	         stats->chain_head_event},
	};
	metric_seconds(out, &uptime, stats->uptime_ns);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		metric_u64(out, &plain[i].metric, plain[i].value);
	metric_seconds(out, &fsync_last, stats->fsync_ns_last);
	metric_seconds(out, &fsync_max, stats->fsync_ns_max);
	metric_seconds(out, &fsync_total, stats->fsync_ns_total);
}

/* STATS records 1 and 2: each limit hit as a counter, ERROR frames by
 * status, and the SUBMIT latency histogram (cumulative le buckets in
 * seconds, _sum and _count). */
static void limits_write(FILE *out, const struct skuld_stats_all *all)
{
	const struct skuld_stats_limits *limits = &all->limits;
	const struct {
		struct metric metric;
		uint64_t value;
	} plain[] = {
	        {{"skuld_frames_oversize_total", "counter",
	          "Frames refused for announcing more than the server takes (ERR_SIZE)."},
	         limits->frames_oversize},
	        {{"skuld_connections_closed_slow_total", "counter",
	          "Connections closed: a frame not whole within frame_timeout_ms."},
	         limits->closed_slow},
	        {{"skuld_connections_closed_unregistered_total", "counter",
	          "Connections closed: no REGISTER within frame_timeout_ms of connecting."},
	         limits->closed_unregistered},
	        {{"skuld_connections_closed_idle_total", "counter",
	          "Connections closed: no frame for idle_timeout_ms."},
	         limits->closed_idle},
	        {{"skuld_connections_closed_stalled_total", "counter",
	          "Connections closed: replies not read for stall_timeout_ms."},
	         limits->closed_stalled},
	        {{"skuld_reply_waits_total", "counter",
	          "Times a connection's input paused because its reply ring was full."},
	         limits->reply_waits},
	        {{"skuld_pool_waits_total", "counter",
	          "Times a large frame waited for a frame pool buffer."},
	         limits->pool_waits},
	        {{"skuld_recv_paused_total", "counter",
	          "Times a connection's receive stopped while its input waited."},
	         limits->recv_paused},
	        {{"skuld_denied_events_total", "counter", "Events refused for the token's role."},
	         limits->denied_events},
	        {{"skuld_denied_reads_total", "counter",
	          "Reads refused for the token's role (ERR_DENIED)."},
	         limits->denied_reads},
	        {{"skuld_tokens_refused_total", "counter", "REGISTERs with a wrong token."},
	         limits->tokens_refused},
	        {{"skuld_sessions_busy_total", "counter",
	          "REGISTERs refused because every session was connected."},
	         limits->sessions_busy},
	};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		metric_u64(out, &plain[i].metric, plain[i].value);
	static const struct metric rejected = {
	        "skuld_frames_rejected_by_status_total", "counter",
	        "ERROR frames sent, by status (PROTOCOL.md section 10.2)."};
	metric_head(out, &rejected);
	for (uint32_t i = 0; i < sizeof(all->rejects.rejected) / sizeof(uint64_t); i++) {
		if (all->rejects.rejected[i] != 0 || i <= SKULD_ERR_DENIED - 100)
			fprintf(out, "%s{status=\"%s\"} %" PRIu64 "\n", rejected.name,
			        skuld_status_name(100 + i), all->rejects.rejected[i]);
	}
	static const struct metric latency = {
	        "skuld_request_latency_seconds", "histogram",
	        "SUBMIT requests, from the frame's arrival to its durable reply's release."};
	metric_head(out, &latency);
	uint64_t cumulative = 0;
	for (uint32_t i = 0; i + 1 < SKULD_STATS_LATENCY_BUCKETS; i++) {
		uint64_t bound = SKULD_STATS_LATENCY_BASE_NS << i;
		cumulative += limits->latency_bucket[i];
		fprintf(out, "%s_bucket{le=\"%" PRIu64 ".%06" PRIu64 "\"} %" PRIu64 "\n",
		        latency.name, bound / 1000000000u, bound % 1000000000u / 1000u, cumulative);
	}
	cumulative += limits->latency_bucket[SKULD_STATS_LATENCY_BUCKETS - 1];
	fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", latency.name, cumulative);
	fprintf(out, "%s_sum %" PRIu64 ".%09" PRIu64 "\n", latency.name,
	        limits->latency_sum_ns / 1000000000u, limits->latency_sum_ns % 1000000000u);
	fprintf(out, "%s_count %" PRIu64 "\n", latency.name, limits->latency_count);
	static const struct metric latency_max = {"skuld_request_latency_max_seconds", "gauge",
	                                          "Slowest SUBMIT since start-up."};
	metric_seconds(out, &latency_max, limits->latency_max_ns);
}

static uint64_t wall_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* The per-channel families: one header each, then a sample per channel. */
static void channels_write(FILE *out, const struct ctl_channel_ref *channels,
                           const struct skuld_channel_push_record *records, uint32_t count)
{
	static const struct metric families[] = {
	        {"skuld_channel_listings", "gauge", "Items with a listing on the channel."},
	        {"skuld_channel_dirty", "gauge",
	         "Listed items whose quantity the channel has not yet accepted."},
	        {"skuld_channel_parked", "gauge",
	         "Items parked by an exception until their listing changes."},
	        {"skuld_channel_lag_seconds", "gauge",
	         "How long the longest-dirty item has differed from the channel (0: none)."},
	        {"skuld_channel_pushes_total", "counter", "Quantities the channel accepted."},
	        {"skuld_channel_exception", "gauge",
	         "The channel's own open exception (CHANNELS.md reason number; 0: none)."},
	};
	uint64_t now = wall_ns();
	for (size_t family = 0; family < sizeof(families) / sizeof(families[0]); family++) {
		metric_head(out, &families[family]);
		for (uint32_t i = 0; i < count; i++) {
			const struct skuld_channel_push_record *record = &records[i];
			uint64_t lag = record->oldest_dirty != 0 && now > record->oldest_dirty
			                       ? now - record->oldest_dirty
			                       : 0;
			fprintf(out, "%s{channel_id=\"%" PRIu32 "\"} ", families[family].name,
			        channels[i].id);
			switch (family) {
			case 0:
				fprintf(out, "%" PRIu32 "\n", record->mapped);
				break;
			case 1:
				fprintf(out, "%" PRIu32 "\n", record->dirty);
				break;
			case 2:
				fprintf(out, "%" PRIu32 "\n", record->parked);
				break;
			case 3:
				fprintf(out, "%" PRIu64 ".%03" PRIu64 "\n", lag / 1000000000u,
				        lag % 1000000000u / 1000000u);
				break;
			case 4:
				fprintf(out, "%" PRIu64 "\n", record->acks);
				break;
			default:
				fprintf(out, "%u\n", (unsigned)record->exception);
				break;
			}
		}
	}
}

/* The whole exposition into a malloc'd text (*text, *size), connected
 * client required. Returns CTL_EXIT_OK, or an exit code with the reason
 * printed on stderr. */
static int metrics_render(struct ctl *ctl, char **text, size_t *size)
{
	static struct ctl_channel_ref channels[CTL_CHANNEL_SCAN_MAX];
	static struct skuld_channel_push_record records[CTL_CHANNEL_SCAN_MAX];
	struct skuld_stats_all stats;
	uint32_t stats_records = 0;
	uint32_t found = 0;
	int rc = skuld_stats_all(ctl->client, &stats, &stats_records, CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "stats");
	if ((rc = ctl_channels_resolve(ctl, NULL, 0, channels, &found)) != CTL_EXIT_OK)
		return rc;
	for (uint32_t i = 0; i < found; i++)
		if ((rc = ctl_channel_record(ctl, channels[i].id, &records[i])) != CTL_EXIT_OK)
			return rc;
	*text = NULL;
	*size = 0;
	FILE *out = open_memstream(text, size);
	if (out == NULL) {
		fprintf(stderr, "skuldctl: out of memory\n");
		return CTL_EXIT_ERROR;
	}
	stats_write(out, &stats.server);
	if (stats_records >= 2) /* an older server sends the first record only */
		limits_write(out, &stats);
	channels_write(out, channels, records, found);
	if (fclose(out) != 0) {
		free(*text);
		fprintf(stderr, "skuldctl: out of memory\n");
		return CTL_EXIT_ERROR;
	}
	return CTL_EXIT_OK;
}

int ctl_stats_prometheus(struct ctl *ctl)
{
	char *text = NULL;
	size_t size = 0;
	int rc = ctl_connect(ctl);
	if (rc == CTL_EXIT_OK)
		rc = metrics_render(ctl, &text, &size);
	if (rc != CTL_EXIT_OK)
		return rc;
	fwrite(text, 1, size, stdout);
	free(text);
	return CTL_EXIT_OK;
}

/* ---- The HTTP endpoint ------------------------------------------------------ */

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status, const char *type,
                               char *body, size_t size)
{
	struct MHD_Response *response =
	        MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
	if (response == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, unsigned status,
                                    const char *text)
{
	char *body = strdup(text);
	return body != NULL ? respond(connection, status, "text/plain", body, strlen(body))
	                    : MHD_NO;
}

static enum MHD_Result scrape(void *context, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **request)
{
	(void)version;
	(void)upload;
	/* The first call per request only announces it; answer on the second. */
	if (*request == NULL) {
		*request = connection;
		return MHD_YES;
	}
	if (*upload_size != 0)
		return respond_text(connection, MHD_HTTP_BAD_REQUEST, "no body expected\n");
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return respond_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	if (strcmp(url, METRICS_PATH) != 0)
		return respond_text(connection, MHD_HTTP_NOT_FOUND, "see " METRICS_PATH "\n");
	char *text = NULL;
	size_t size = 0;
	if (metrics_render(context, &text, &size) != CTL_EXIT_OK)
		return respond_text(
		        connection, MHD_HTTP_SERVICE_UNAVAILABLE,
		        "the skuld server did not answer (see the exporter's stderr)\n");
	return respond(connection, MHD_HTTP_OK, METRICS_CONTENT, text, size);
}

static volatile sig_atomic_t metrics_stop;

static void on_signal(int signal_number)
{
	(void)signal_number;
	metrics_stop = 1;
}

int ctl_metrics_serve(struct ctl *ctl, const char *listen)
{
	char host[64];
	unsigned port = 0;
	const char *colon = strrchr(listen, ':');
	struct sockaddr_in address = {.sin_family = AF_INET};
	if (colon == NULL || (size_t)(colon - listen) >= sizeof(host) ||
	    sscanf(colon + 1, "%u", &port) != 1 || port > 65535) {
		fprintf(stderr, "skuldctl: --listen: '%s' is not HOST:PORT\n", listen);
		return CTL_EXIT_USAGE;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
		fprintf(stderr, "skuldctl: --listen: '%s' is not an IPv4 address\n", host);
		return CTL_EXIT_USAGE;
	}
	address.sin_port = htons((uint16_t)port);
	int rc = ctl_connect(ctl);
	if (rc != CTL_EXIT_OK)
		return rc;
	/* SIGINT and SIGTERM stay blocked (the daemon's thread inherits that)
	 * but while this thread waits for them in sigsuspend. */
	struct sigaction action = {.sa_handler = on_signal};
	sigset_t stopping, waiting;
	sigemptyset(&stopping);
	sigaddset(&stopping, SIGINT);
	sigaddset(&stopping, SIGTERM);
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	pthread_sigmask(SIG_BLOCK, &stopping, &waiting);
	sigdelset(&waiting, SIGINT);
	sigdelset(&waiting, SIGTERM);
	struct MHD_Daemon *daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, scrape, ctl,
	        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address, MHD_OPTION_CONNECTION_LIMIT,
	        METRICS_CONNECTION, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (daemon == NULL) {
		fprintf(stderr, "skuldctl: cannot serve metrics on %s\n", listen);
		return CTL_EXIT_ERROR;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	printf("skuldctl: metrics on http://%s:%u" METRICS_PATH "\n", host,
	       info != NULL ? (unsigned)info->port : port);
	fflush(stdout);
	while (!metrics_stop)
		sigsuspend(&waiting);
	MHD_stop_daemon(daemon);
	return CTL_EXIT_OK;
}
