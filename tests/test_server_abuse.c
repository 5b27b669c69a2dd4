/*
 * test_server_abuse.c — limits under abuse, through the real server
 * (docs/OPERATIONS.md, "Limits under abuse"; PROTOCOL.md section 14.2).
 *
 * One server with small limits (64 connections, 1024-event frames, 4 pool
 * buffers, 1 s frame and stall deadlines, a 2.5 s idle deadline) meets, in
 * turn: a storm of connections (as many as the descriptor limit allows, up
 * to 10,000), connections that hold every pool buffer with half a frame,
 * frames at the maximum size and just over it, a flooder that writes
 * requests and never reads a reply, a slowloris that sends a frame a byte
 * at a time, an unregistered connection, an idle one, a wrong token and a
 * read-only token that submits. Throughout, a well-behaved client gets
 * correct replies (each RECEIVE's available is the running total), every
 * limit counter of STATS moves, and the server's peak RSS (VmHWM) stays
 * under the documented bound: STATS memory_bytes plus RSS_FIXED_BYTES.
 *
 * Every loop is bounded in count and in time; nothing asserts how fast the
 * server is (waits for a counter give up after WAIT_MS and then fail on the
 * counter, not on the time).
 */
#define _GNU_SOURCE /* POLLRDHUP */

#include <criterion/criterion.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include "server_harness.h"

#define ADMIN_SECRET "abuse-admin-secret-0123456789"
#define READ_SECRET  "abuse-read-secret-0123456789"

#define CONNECTIONS_MAX 64u
#define EVENTS_MAX      1024u
#define POOL_BUFFERS    4u
#define STORM_MAX       10000u
#define WAIT_MS         15000u
#define FLOOD_FRAMES    200000u
/* What RSS may hold beyond the configured memory bound: the program, its
 * libraries, the io_uring rings and the loop's connection table. */
#define RSS_FIXED_BYTES (16ull << 20)

#define ABUSE_CONFIG                                                                               \
	"connections_max = 64\n"                                                                   \
	"frame_events_max = 1024\n"                                                                \
	"frame_pool = 4\n"                                                                         \
	"replies_max = 16\n"                                                                       \
	"frame_timeout_ms = 1000\n"                                                                \
	"stall_timeout_ms = 1000\n"                                                                \
	"idle_timeout_ms = 2500\n"                                                                 \
	"token.admin = " ADMIN_SECRET " admin\n"                                                   \
	"token.audit = " READ_SECRET " read\n"

struct stats_all {
	struct skuld_stats server;
	struct skuld_stats_limits limits;
	struct skuld_stats_rejects rejects;
};

/* The well-behaved client and what it has received so far. */
struct good {
	struct client client;
	uint64_t key;
	int64_t available; /* item 1 at location 1 */
};

static struct server server;

/* Connects and registers with token; returns 0 or -1 with the ERROR status
 * in *error (0 when the connection failed otherwise). */
static int token_register(struct client *client, uint64_t seed, const char *token, uint32_t *error);

static int token_open(struct client *client, uint64_t seed, const char *token, uint32_t *error)
{
	memset(client, 0, sizeof(*client));
	client->fd = socket_connect(server.port);
	return token_register(client, seed, token, error);
}

/* Registers client->fd (connected, or -1) with token; on failure the
 * connection is closed. Returns 0 or -1 as token_open. */
static int token_register(struct client *client, uint64_t seed, const char *token, uint32_t *error)
{
	*error = 0;
	client->id = client_id(seed);
	if (client->fd < 0)
		return -1;
	struct skuld_register_request request;
	memset(&request, 0, sizeof(request));
	request.version_min = 1;
	request.version_max = 1;
	memcpy(request.token, token, strlen(token));
	static struct reply reply;
	if (frame_send(client->fd, SKULD_OP_REGISTER, client->id, 0, 1, &request, sizeof(request),
	               1) != 0 ||
	    frame_read(client->fd, &reply) != 0 ||
	    reply_header(&reply)->operation != SKULD_OP_REGISTER) {
		if (reply_header(&reply)->operation == SKULD_OP_ERROR)
			*error = reply_header(&reply)->result;
		client_close(client);
		return -1;
	}
	const struct skuld_register_reply *body = reply_body(&reply);
	client->request_next = body->request_next;
	client->version = body->version;
	return 0;
}

static void stats_read(struct client *client, struct stats_all *out)
{
	static struct reply reply;
	cr_assert_eq(frame_send(client->fd, SKULD_OP_STATS, client->id, 0, client->version, NULL, 0,
	                        SKULD_STATS_RECORDS),
	             0);
	cr_assert_eq(frame_read(client->fd, &reply), 0, "STATS reply");
	const struct skuld_header *header = reply_header(&reply);
	cr_assert_eq(header->operation, SKULD_OP_STATS);
	cr_assert_eq(header->count, SKULD_STATS_RECORDS, "a STATS reply of %u records",
	             header->count);
	memcpy(out, reply_body(&reply), sizeof(*out));
}

/* count RECEIVEs of 1 of item 1 at location 1: each result must say OK and
 * the running total. */
static void good_receive(struct good *good, uint32_t count)
{
	static struct skuld_event events[EVENTS_MAX];
	static struct skuld_result results[EVENTS_MAX];
	cr_assert_leq(count, EVENTS_MAX);
	for (uint32_t i = 0; i < count; i++)
		events[i] = event_stock(SKULD_RECEIVE, 1, 1, 1, 1000000 + good->key++);
	uint32_t error = 0;
	cr_assert_eq(client_submit(&good->client, events, count, results, &error), 0,
	             "the well-behaved client's SUBMIT failed (ERROR %u)", error);
	for (uint32_t i = 0; i < count; i++) {
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: status %u", i,
		             results[i].status);
		cr_assert_eq(results[i].available, good->available + 1 + (int64_t)i,
		             "event %u: available %lld", i, (long long)results[i].available);
	}
	good->available += count;
}

/* Peak resident set of the server (VmHWM), bytes. */
static uint64_t server_rss_peak(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)server.pid);
	FILE *file = fopen(path, "r");
	cr_assert_not_null(file, "%s: %s", path, strerror(errno));
	char line[256];
	unsigned long long kib = 0;
	while (fgets(line, sizeof(line), file) != NULL)
		if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
			break;
	fclose(file);
	cr_assert_gt(kib, 0);
	return kib * 1024ull;
}

/* Polls STATS until field (a pointer into the snapshot) is at least want,
 * for at most WAIT_MS; the caller asserts on the value. */
static uint64_t wait_counter(struct good *good, struct stats_all *stats, const uint64_t *field,
                             uint64_t want)
{
	uint64_t deadline = harness_now_ms() + WAIT_MS;
	for (;;) {
		stats_read(&good->client, stats);
		if (*field >= want || harness_now_ms() > deadline)
			return *field;
		usleep(50000);
	}
}

static int nonblocking_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(server.port)};
	inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* As many connections as the descriptor limit allows (up to STORM_MAX),
 * held until the server has refused or accepted a good part of them. */
static void storm(struct good *good)
{
	struct rlimit limit;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &limit), 0);
	rlim_t want = STORM_MAX + 256;
	if (limit.rlim_cur < want) {
		limit.rlim_cur = limit.rlim_max < want ? limit.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &limit);
		getrlimit(RLIMIT_NOFILE, &limit);
	}
	uint32_t count =
	        limit.rlim_cur > 256 + STORM_MAX ? STORM_MAX : (uint32_t)(limit.rlim_cur - 256);
	cr_assert_gt(count, CONNECTIONS_MAX * 2, "descriptor limit %llu is too low",
	             (unsigned long long)limit.rlim_cur);
	int *fds = calloc(count, sizeof(int));
	cr_assert_not_null(fds);
	uint32_t opened = 0;
	for (uint32_t i = 0; i < count; i++) {
		fds[i] = nonblocking_connect();
		opened += fds[i] >= 0;
	}
	cr_log_info("storm: %u of %u connections opened", opened, count);
	struct stats_all stats;
	wait_counter(good, &stats, &stats.server.connections_refused, opened / 2);
	/* The server is full of connections that say nothing: it still answers. */
	good_receive(good, 3);
	for (uint32_t i = 0; i < count; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	cr_assert_gt(stats.server.connections_refused, 0);
}

/* Header plus the first KiB of a maximum-size SUBMIT, then silence: each
 * such connection holds a pool buffer until frame_timeout_ms closes it. */
static int half_frame(uint64_t seed)
{
	struct client client;
	uint32_t error = 0;
	cr_assert_eq(token_open(&client, seed, ADMIN_SECRET, &error), 0, "register %u", error);
	static struct skuld_event events[EVENTS_MAX];
	for (uint32_t i = 0; i < EVENTS_MAX; i++)
		events[i] = event_stock(SKULD_RECEIVE, 2, 1, 1, 5000000 + seed * EVENTS_MAX + i);
	static uint8_t frame[SKULD_HEADER_SIZE + EVENTS_MAX * SKULD_EVENT_SIZE];
	frame_build(frame, SKULD_OP_SUBMIT, client.id, client.request_next, client.version, events,
	            EVENTS_MAX * SKULD_EVENT_SIZE, EVENTS_MAX);
	cr_assert_eq(write_all(client.fd, frame, SKULD_HEADER_SIZE + 1024), 0);
	return client.fd;
}

/* A SUBMIT header announcing events events (body_size events x 128, or
 * body_size when non-zero): the server answers ERR_SIZE and closes. */
static void oversize(uint64_t seed, uint32_t events, uint32_t body_size)
{
	struct client client;
	uint32_t error = 0;
	cr_assert_eq(token_open(&client, seed, ADMIN_SECRET, &error), 0, "register %u", error);
	uint8_t frame[SKULD_HEADER_SIZE];
	struct skuld_header *header = (struct skuld_header *)frame;
	memset(header, 0, sizeof(*header));
	header->version = client.version;
	header->operation = SKULD_OP_SUBMIT;
	header->request = client.request_next;
	header->client = client.id;
	header->body_size = body_size != 0 ? body_size : events * SKULD_EVENT_SIZE;
	header->count = events;
	/* Sealed by hand: there is no body (the server refuses the header
	 * alone), so checksum_body stays 0. */
	header->magic = SKULD_MAGIC;
	header->checksum_header =
	        skuld_checksum(header, offsetof(struct skuld_header, checksum_header));
	cr_assert_eq(write_all(client.fd, frame, sizeof(frame)), 0);
	static struct reply reply;
	cr_assert_eq(frame_read(client.fd, &reply), 0);
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_ERROR);
	cr_assert_eq(reply_header(&reply)->result, SKULD_ERR_SIZE);
	client_close(&client);
}

/* Pool hogs, then frames at the maximum size (served) and just over it. */
static void big_frames(struct good *good)
{
	int hogs[POOL_BUFFERS + 1];
	for (uint32_t i = 0; i < POOL_BUFFERS + 1; i++)
		hogs[i] = half_frame(100 + i);
	/* The well-behaved client's own maximum-size frame waits for a pool
	 * buffer until the hogs are closed, then is served whole. */
	good_receive(good, EVENTS_MAX);
	for (uint32_t i = 0; i < POOL_BUFFERS + 1; i++)
		close(hogs[i]);
	oversize(200, EVENTS_MAX + 1, 0);
	oversize(201, 1, SKULD_BODY_SIZE_MAX + SKULD_EVENT_SIZE);
	good_receive(good, EVENTS_MAX);
}

/* Writes SUBMITs and STATS and never reads a reply, until the server closes
 * the connection (or FLOOD_FRAMES, or WAIT_MS): once the replies fill the
 * socket buffers and the connection's reply ring, the server stops reading
 * it and, when no reply byte could be sent for stall_timeout_ms, closes
 * it. Meanwhile the well-behaved client is served. */
static void flood(struct good *good)
{
	/* A small receive buffer, set before connect (so the window it
	 * advertises is small from the start): the replies fill it soon. */
	struct client flooder;
	memset(&flooder, 0, sizeof(flooder));
	flooder.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(flooder.fd, 0);
	int small = 4096;
	setsockopt(flooder.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct timeval timeout = {.tv_sec = 10};
	setsockopt(flooder.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(flooder.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(server.port)};
	inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
	cr_assert_eq(connect(flooder.fd, (struct sockaddr *)&address, sizeof(address)), 0);
	uint32_t error = 0;
	cr_assert_eq(token_register(&flooder, 300, ADMIN_SECRET, &error), 0, "register %u", error);
	fcntl(flooder.fd, F_SETFL, fcntl(flooder.fd, F_GETFL) | O_NONBLOCK);
	uint8_t frame[SKULD_HEADER_SIZE + SKULD_EVENT_SIZE];
	uint32_t sent = 0;
	bool closed = false, served = false;
	uint64_t deadline = harness_now_ms() + WAIT_MS, good_ms = harness_now_ms();
	while (!closed && sent < FLOOD_FRAMES && harness_now_ms() < deadline) {
		size_t size;
		if (sent % 2 == 0) {
			struct skuld_event event =
			        event_stock(SKULD_RECEIVE, 2, 1, 1, 9000000 + sent);
			size = frame_build(frame, SKULD_OP_SUBMIT, flooder.id, flooder.request_next,
			                   flooder.version, &event, SKULD_EVENT_SIZE, 1);
		} else {
			size = frame_build(frame, SKULD_OP_STATS, flooder.id, 0, flooder.version,
			                   NULL, 0, 0);
		}
		if (harness_now_ms() > good_ms + 500) {
			good_receive(good, 1); /* well within idle_timeout_ms */
			good_ms = harness_now_ms();
		}
		struct pollfd poll_fd = {.fd = flooder.fd, .events = POLLOUT};
		int ready = poll(&poll_fd, 1, 500);
		if (ready == 0 && !served) {
			/* The server has stopped reading the flooder: others go on. */
			good_receive(good, 5);
			served = true;
		}
		if (ready <= 0)
			continue;
		if (poll_fd.revents & (POLLERR | POLLHUP)) {
			closed = true;
			break;
		}
		/* Whole frames; a frame cut short is finished blocking. */
		ssize_t wrote = send(flooder.fd, frame, size, MSG_NOSIGNAL);
		if (wrote < 0 && errno == EAGAIN)
			continue;
		if (wrote < 0) {
			closed = true;
			break;
		}
		if ((size_t)wrote < size) {
			fcntl(flooder.fd, F_SETFL, fcntl(flooder.fd, F_GETFL) & ~O_NONBLOCK);
			closed = write_all(flooder.fd, frame + wrote, size - (size_t)wrote) != 0;
			fcntl(flooder.fd, F_SETFL, fcntl(flooder.fd, F_GETFL) | O_NONBLOCK);
		}
		if (sent % 2 == 0)
			flooder.request_next++;
		sent++;
	}
	cr_log_info("flood: %u frames written without reading a reply", sent);
	cr_assert(closed, "the server did not close a client that never reads");
	struct stats_all stats;
	cr_assert_geq(wait_counter(good, &stats, &stats.limits.closed_stalled, 1), 1,
	              "the flooder was not closed for stalling (slow %llu, idle %llu)",
	              (unsigned long long)stats.limits.closed_slow,
	              (unsigned long long)stats.limits.closed_idle);
	client_close(&flooder);
	good_receive(good, 5);
}

/* A registered client that sends a SUBMIT's header a byte every 250 ms;
 * the server closes it frame_timeout_ms after the first byte, though input
 * never stops for that long. */
static void slowloris(struct good *good)
{
	struct client slow;
	uint32_t error = 0;
	cr_assert_eq(token_open(&slow, 400, ADMIN_SECRET, &error), 0, "register %u", error);
	struct skuld_event event = event_stock(SKULD_RECEIVE, 2, 1, 1, 7000000);
	uint8_t frame[SKULD_HEADER_SIZE + SKULD_EVENT_SIZE];
	frame_build(frame, SKULD_OP_SUBMIT, slow.id, slow.request_next, slow.version, &event,
	            SKULD_EVENT_SIZE, 1);
	bool closed = false;
	for (uint32_t i = 0; i < 40 && !closed; i++) {
		closed = send(slow.fd, frame + i, 1, MSG_NOSIGNAL) != 1;
		struct pollfd poll_fd = {.fd = slow.fd, .events = POLLRDHUP};
		if (!closed && poll(&poll_fd, 1, 250) > 0)
			closed = true;
		if (i % 4 == 3)
			good_receive(good, 1); /* and everyone else goes on */
	}
	client_close(&slow);
	cr_assert(closed, "a byte every 250 ms kept the connection open for 10 s");
}

/* A connection that never registers is closed frame_timeout_ms after it
 * was accepted. */
static void unregistered(struct good *good)
{
	int fd = socket_connect(server.port);
	cr_assert_geq(fd, 0);
	struct stats_all stats;
	stats_read(&good->client, &stats);
	uint64_t before = stats.limits.closed_unregistered;
	cr_assert_gt(wait_counter(good, &stats, &stats.limits.closed_unregistered, before + 1),
	             before, "a connection that never registered stayed open");
	char byte;
	cr_assert_eq(recv(fd, &byte, 1, 0), 0, "the unregistered connection was closed");
	close(fd);
}

/* A wrong token, and a read-only token that submits. */
static void refusals(struct good *good)
{
	struct client client;
	uint32_t error = 0;
	cr_assert_eq(token_open(&client, 500, "not-a-configured-secret-000", &error), -1);
	cr_assert_eq(error, SKULD_ERR_TOKEN);
	cr_assert_eq(token_open(&client, 501, READ_SECRET, &error), 0, "register %u", error);
	struct skuld_event event = event_stock(SKULD_RECEIVE, 1, 1, 1, 8000000);
	struct skuld_result result;
	cr_assert_eq(client_submit(&client, &event, 1, &result, &error), 0, "ERROR %u", error);
	cr_assert_eq(result.status, SKULD_DENIED);
	client_close(&client);
	good_receive(good, 1);
}

static void catalog(struct good *good)
{
	struct skuld_event events[] = {
	        event_item(1, 1),
	        event_item(2, 2),
	        event_location(1, 3),
	};
	struct skuld_result results[3];
	uint32_t error = 0;
	cr_assert_eq(client_submit(&good->client, events, 3, results, &error), 0, "ERROR %u",
	             error);
	for (uint32_t i = 0; i < 3; i++)
		cr_assert_eq(results[i].status, SKULD_OK);
}

/* Every counter of STATS record 1 that the abuse above must have moved. */
static void limits_check(const struct stats_all *stats)
{
	const struct skuld_stats_limits *limits = &stats->limits;
	cr_log_info(
	        "refused %llu oversize %llu slow %llu unregistered %llu idle %llu stalled %llu "
	        "reply_waits %llu pool_waits %llu recv_paused %llu denied %llu tokens %llu "
	        "latency n %llu max %llu us",
	        (unsigned long long)stats->server.connections_refused,
	        (unsigned long long)limits->frames_oversize,
	        (unsigned long long)limits->closed_slow,
	        (unsigned long long)limits->closed_unregistered,
	        (unsigned long long)limits->closed_idle, (unsigned long long)limits->closed_stalled,
	        (unsigned long long)limits->reply_waits, (unsigned long long)limits->pool_waits,
	        (unsigned long long)limits->recv_paused, (unsigned long long)limits->denied_events,
	        (unsigned long long)limits->tokens_refused,
	        (unsigned long long)limits->latency_count,
	        (unsigned long long)(limits->latency_max_ns / 1000));
	cr_assert_gt(stats->server.connections_refused, 0);
	cr_assert_geq(limits->frames_oversize, 2);
	cr_assert_geq(limits->closed_slow, 1 + POOL_BUFFERS);
	cr_assert_gt(limits->closed_unregistered, 0);
	cr_assert_geq(limits->closed_idle, 1);
	cr_assert_geq(limits->closed_stalled, 1);
	cr_assert_gt(limits->reply_waits, 0);
	cr_assert_gt(limits->pool_waits, 0);
	cr_assert_gt(limits->recv_paused, 0);
	cr_assert_geq(limits->denied_events, 1);
	cr_assert_geq(limits->tokens_refused, 1);
	cr_assert_eq(limits->reserved, 0);
	uint64_t measured = 0;
	for (uint32_t i = 0; i < SKULD_STATS_LATENCY_BUCKETS; i++)
		measured += limits->latency_bucket[i];
	cr_assert_eq(measured, limits->latency_count);
	cr_assert_gt(limits->latency_count, 0);
	cr_assert_leq(limits->latency_max_ns, limits->latency_sum_ns);
	uint64_t rejected = 0;
	for (uint32_t i = 0; i < 32; i++)
		rejected += stats->rejects.rejected[i];
	cr_assert_eq(rejected, stats->server.frames_rejected);
	cr_assert_geq(stats->rejects.rejected[SKULD_ERR_SIZE - 100], 2);
	cr_assert_geq(stats->rejects.rejected[SKULD_ERR_TOKEN - 100], 1);
	cr_assert_geq(stats->rejects.rejected[SKULD_ERR_BUSY - 100],
	              stats->server.connections_refused);
}

Test(server_abuse, limits_hold_and_are_counted, .timeout = 240)
{
	server_init(&server, ABUSE_CONFIG);
	cr_assert_eq(chmod(server.config, 0600), 0);
	server_start(&server);
	struct good good = {.key = 1};
	uint32_t error = 0;
	cr_assert_eq(token_open(&good.client, 1, ADMIN_SECRET, &error), 0, "register %u", error);
	catalog(&good);
	struct client idle;
	cr_assert_eq(token_open(&idle, 2, ADMIN_SECRET, &error), 0, "register %u", error);
	good_receive(&good, 1);

	storm(&good);
	big_frames(&good);
	flood(&good);
	slowloris(&good);
	unregistered(&good);
	refusals(&good);

	struct stats_all stats;
	wait_counter(&good, &stats, &stats.limits.closed_idle, 1);
	char byte;
	cr_assert_eq(recv(idle.fd, &byte, 1, 0), 0, "the idle connection was closed");
	client_close(&idle);
	good_receive(&good, 1);
	stats_read(&good.client, &stats);
	limits_check(&stats);
	uint64_t rss = server_rss_peak();
	cr_log_info("server peak RSS %llu KiB; memory bound %llu KiB",
	            (unsigned long long)(rss >> 10),
	            (unsigned long long)(stats.server.memory_bytes >> 10));
#if !defined(__SANITIZE_ADDRESS__)
	cr_assert_leq(rss, stats.server.memory_bytes + RSS_FIXED_BYTES,
	              "peak RSS %llu over the bound %llu + %llu", (unsigned long long)rss,
	              (unsigned long long)stats.server.memory_bytes,
	              (unsigned long long)RSS_FIXED_BYTES);
#endif
	client_close(&good.client);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}
