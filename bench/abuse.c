/*
 * abuse.c — skuld-abuse-bench: a well-behaved client's latency on a quiet
 * server and on the same server under abuse (docs/BENCHMARKS.md, "Latency
 * under abuse"; docs/OPERATIONS.md, "Limits under abuse").
 *
 *   skuld-abuse-bench --server HOST:PORT [--token T] [--seconds N]
 *                     [--storm N] [--storm-rate N] [--slow N] [--events-max N]
 *                     [--abuse-nice N]
 *
 * The good client sends one RECEIVE per SUBMIT, closed loop, and checks
 * every result (OK, available = its running total). It runs --seconds on
 * the quiet server, then again while, from two more threads:
 *   - a storm keeps up to --storm connections (default 10,000, as the
 *     descriptor limit allows) opening, reconnecting at most --storm-rate a
 *     second (default 2000) as the server refuses or closes them;
 *   - a flooder writes STATS requests without ever reading a reply (so it
 *     uses up no idempotency keys), and reconnects whenever the server
 *     closes it;
 *   - --slow slowloris connections (default 8) each send a SUBMIT a byte a
 *     second;
 *   - every 500 ms a frame of --events-max events (the server's maximum,
 *     default 8192, answered and read) and a frame one event over it (refused
 *     with ERR_SIZE) are sent. Those events use idempotency keys: run the
 *     server with keys_max of at least 16 x events_max x (seconds + 2).
 * --abuse-nice N (0..19) runs the abusers' two threads at that nice value
 * (the well-behaved client keeps the default): on a machine shared by the
 * server, the client and the abusers, an approximation of abusers on other
 * machines, whose CPU would not be taken from the server's cores.
 * A connection storm at connections_max also refuses new well-behaved
 * connections (ERR_BUSY): the good client and the maximum-size sender
 * connect before it starts.
 * It prints both latency distributions, the p99 ratio (abuse / quiet), what
 * the server saw of each phase (its group-commit writes and its own SUBMIT
 * latency histogram, STATS records 0 and 1, taken before and after each
 * phase), and the server's limit counters after the run.
 *
 * Owns nothing the server uses; speaks the protocol with protocol.h only.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "histogram.h"
#include "protocol.h"

#define STATS_BYTES (SKULD_STATS_RECORDS * SKULD_STATS_RECORD_SIZE)

struct options {
	struct sockaddr_in server;
	const char *token;
	uint32_t seconds;
	uint32_t storm;
	uint32_t storm_rate;
	uint32_t slow;
	uint32_t events_max;
	int abuse_nice;
};

struct peer {
	int fd;
	skuld_u128 id;
	uint64_t request_next;
	uint16_t version;
};

static struct options options;
static atomic_bool abuse_stop;
static atomic_uint_fast64_t flood_frames, flood_reconnects, storm_opens, slow_reconnects,
        big_frames, oversize_frames;

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static int io_all(int fd, void *bytes, size_t size, bool reading)
{
	uint8_t *at = bytes;
	while (size > 0) {
		ssize_t done = reading ? recv(fd, at, size, 0) : send(fd, at, size, MSG_NOSIGNAL);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return -1;
		at += done;
		size -= (size_t)done;
	}
	return 0;
}

/* A connection to the server; receive_buffer (0: the default) is set
 * before connect, so the window it advertises is small from the start. */
static int connect_to(bool blocking, int receive_buffer)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0)
		return -1;
	if (receive_buffer != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (blocking) {
		struct timeval timeout = {.tv_sec = 30};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	}
	if (connect(fd, (struct sockaddr *)&options.server, sizeof(options.server)) != 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A sealed frame in bytes (room for 64 + body_size); returns its size. */
static size_t frame_build(uint8_t *bytes, const struct peer *peer, uint8_t operation,
                          uint64_t request, const void *body, uint32_t body_size, uint32_t count)
{
	struct skuld_header *header = (struct skuld_header *)bytes;
	memset(header, 0, sizeof(*header));
	header->version = peer->version != 0 ? peer->version : 1;
	header->operation = operation;
	header->request = request;
	header->client = peer->id;
	header->body_size = body_size;
	header->count = count;
	if (body_size > 0 && body != bytes + SKULD_HEADER_SIZE)
		memcpy(bytes + SKULD_HEADER_SIZE, body, body_size);
	proto_header_seal(header, bytes + SKULD_HEADER_SIZE);
	return SKULD_HEADER_SIZE + body_size;
}

/* Reads one reply frame (header and body checked) into bytes (room for
 * 64 + SKULD_BODY_SIZE_MAX). Returns 0 or -1. */
static int frame_read(int fd, uint8_t *bytes)
{
	const struct skuld_header *header = (const struct skuld_header *)bytes;
	if (io_all(fd, bytes, SKULD_HEADER_SIZE, true) != 0 || proto_header_check(header) != 0 ||
	    io_all(fd, bytes + SKULD_HEADER_SIZE, header->body_size, true) != 0 ||
	    proto_body_check(header, bytes + SKULD_HEADER_SIZE, NULL) != 0)
		return -1;
	return 0;
}

static uint8_t *buffer_new(void)
{
	uint8_t *bytes = aligned_alloc(64, SKULD_HEADER_SIZE + SKULD_BODY_SIZE_MAX);
	if (bytes == NULL) {
		fprintf(stderr, "skuld-abuse-bench: out of memory\n");
		exit(1);
	}
	return bytes;
}

/* Connects (blocking) and registers peer (its id is kept). 0 or -1. */
static int peer_open(struct peer *peer, uint8_t *buffer, int receive_buffer)
{
	peer->fd = connect_to(true, receive_buffer);
	if (peer->fd < 0)
		return -1;
	struct skuld_register_request request;
	memset(&request, 0, sizeof(request));
	request.version_min = request.version_max = 1;
	if (options.token != NULL)
		memcpy(request.token, options.token, strnlen(options.token, sizeof(request.token)));
	struct peer unregistered = *peer;
	unregistered.version = 1;
	size_t size = frame_build(buffer, &unregistered, SKULD_OP_REGISTER, 0, &request,
	                          sizeof(request), 1);
	const struct skuld_header *header = (const struct skuld_header *)buffer;
	if (io_all(peer->fd, buffer, size, false) != 0 || frame_read(peer->fd, buffer) != 0 ||
	    header->operation != SKULD_OP_REGISTER) {
		close(peer->fd);
		peer->fd = -1;
		return -1;
	}
	const struct skuld_register_reply *reply =
	        (const struct skuld_register_reply *)(buffer + SKULD_HEADER_SIZE);
	peer->request_next = reply->request_next;
	peer->version = reply->version;
	return 0;
}

static skuld_u128 id_make(uint64_t seed)
{
	skuld_u128 id = {now_ns() ^ (seed * 0x9e3779b97f4a7c15ull), 0xab05eull + seed};
	return id;
}

static void receive_event(struct skuld_event *event, uint32_t item, uint64_t key_lo,
                          uint64_t key_hi)
{
	memset(event, 0, sizeof(*event));
	event->kind = SKULD_RECEIVE;
	event->item = item;
	event->location = 1;
	event->quantity = 1;
	event->key.lo = key_lo;
	event->key.hi = key_hi;
}

/* SUBMITs count events built in the buffer's body; reads the reply.
 * Returns 0, or -1 (the reply was an ERROR or the connection was lost). */
static int peer_submit(struct peer *peer, uint8_t *buffer, uint32_t count)
{
	size_t size = frame_build(buffer, peer, SKULD_OP_SUBMIT, peer->request_next,
	                          buffer + SKULD_HEADER_SIZE, count * SKULD_EVENT_SIZE, count);
	const struct skuld_header *header = (const struct skuld_header *)buffer;
	if (io_all(peer->fd, buffer, size, false) != 0 || frame_read(peer->fd, buffer) != 0 ||
	    header->operation != SKULD_OP_SUBMIT || header->count != count)
		return -1;
	peer->request_next++;
	return 0;
}

/* ---- The abusers --------------------------------------------------------- */

/* --abuse-nice: this thread only (Linux takes a thread id for PRIO_PROCESS). */
static void abuser_nice(void)
{
	if (options.abuse_nice != 0 &&
	    setpriority(PRIO_PROCESS, (id_t)gettid(), options.abuse_nice) != 0)
		perror("skuld-abuse-bench: setpriority");
}

struct slow {
	struct peer peer;
	uint8_t frame[SKULD_HEADER_SIZE + SKULD_EVENT_SIZE];
	uint32_t sent;
	uint64_t next_ns;
};

/* Connects and registers a slowloris, and prepares the frame it dribbles. */
static void slow_open(struct slow *slow, uint64_t seed, uint8_t *buffer)
{
	slow->peer.id = id_make(seed);
	slow->peer.version = 0;
	if (peer_open(&slow->peer, buffer, 0) != 0)
		return;
	struct skuld_event event;
	receive_event(&event, 2, seed, now_ns());
	frame_build(slow->frame, &slow->peer, SKULD_OP_SUBMIT, slow->peer.request_next, &event,
	            SKULD_EVENT_SIZE, 1);
	slow->sent = 0;
	slow->next_ns = now_ns();
	fcntl(slow->peer.fd, F_SETFL, fcntl(slow->peer.fd, F_GETFL) | O_NONBLOCK);
}

/* One byte a second; reconnect when the server closed it. */
static void slow_step(struct slow *slow, uint64_t seed, uint8_t *buffer)
{
	uint64_t now = now_ns();
	if (slow->peer.fd < 0) {
		if (now >= slow->next_ns) {
			slow_open(slow, seed, buffer);
			slow->next_ns = now + 100000000ull;
			atomic_fetch_add(&slow_reconnects, 1);
		}
		return;
	}
	char byte;
	ssize_t got = recv(slow->peer.fd, &byte, 1, MSG_DONTWAIT);
	bool closed = got == 0 || (got < 0 && errno != EAGAIN);
	if (!closed && now >= slow->next_ns && slow->sent < sizeof(slow->frame)) {
		closed = send(slow->peer.fd, slow->frame + slow->sent, 1, MSG_NOSIGNAL) != 1;
		slow->sent++;
		slow->next_ns = now + 1000000000ull;
	}
	if (closed || got > 0) { /* an ERROR came, or the connection ended */
		close(slow->peer.fd);
		slow->peer.fd = -1;
	}
}

/* The flooder: STATS requests (the largest reply for the smallest request,
 * and no idempotency keys used up), never a read; reconnects when closed. */
static void flood_step(struct peer *flooder, uint8_t *buffer, uint64_t *key, uint64_t *retry_ns)
{
	if (flooder->fd < 0) {
		if (now_ns() < *retry_ns)
			return;
		*retry_ns = now_ns() + 100000000ull;
		if (peer_open(flooder, buffer, 4096) != 0)
			return;
		fcntl(flooder->fd, F_SETFL, fcntl(flooder->fd, F_GETFL) | O_NONBLOCK);
		atomic_fetch_add(&flood_reconnects, 1);
	}
	for (int i = 0; i < 64; i++) {
		_Alignas(8) uint8_t frame[SKULD_HEADER_SIZE];
		size_t size = frame_build(frame, flooder, SKULD_OP_STATS, (*key)++, NULL, 0, 0);
		ssize_t wrote = send(flooder->fd, frame, size, MSG_NOSIGNAL);
		if (wrote < 0 && errno == EAGAIN)
			return;
		if (wrote < 0) {
			close(flooder->fd);
			flooder->fd = -1;
			return;
		}
		if ((size_t)wrote < size) {
			/* Whole frames only; a cut one would be a slowloris. */
			fcntl(flooder->fd, F_SETFL, fcntl(flooder->fd, F_GETFL) & ~O_NONBLOCK);
			int failed =
			        io_all(flooder->fd, frame + wrote, size - (size_t)wrote, false);
			fcntl(flooder->fd, F_SETFL, fcntl(flooder->fd, F_GETFL) | O_NONBLOCK);
			if (failed) {
				close(flooder->fd);
				flooder->fd = -1;
				return;
			}
		}
		atomic_fetch_add(&flood_frames, 1);
	}
}

/* The storm: closes what the server refused or closed, reopens at most
 * storm_rate a second. */
static void storm_step(int *fds, struct pollfd *polls, uint32_t count, uint64_t *budget_ns)
{
	uint32_t watched = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (fds[i] < 0)
			continue;
		polls[watched].fd = fds[i];
		polls[watched].events = POLLIN;
		polls[watched].revents = 0;
		watched++;
	}
	if (watched > 0 && poll(polls, watched, 0) > 0) {
		uint32_t at = 0;
		for (uint32_t i = 0; i < count; i++) {
			if (fds[i] < 0)
				continue;
			if (polls[at].revents != 0) {
				close(fds[i]);
				fds[i] = -1;
			}
			at++;
		}
	}
	uint64_t now = now_ns();
	uint64_t step = 1000000000ull / options.storm_rate;
	if (*budget_ns + 100000000ull < now)
		*budget_ns = now - 100000000ull; /* at most 100 ms of opens at once */
	for (uint32_t i = 0; i < count && *budget_ns + step <= now; i++) {
		if (fds[i] >= 0)
			continue;
		fds[i] = connect_to(false, 0);
		*budget_ns += step;
		atomic_fetch_add(&storm_opens, 1);
	}
}

static void *abuse_connections(void *unused)
{
	(void)unused;
	abuser_nice();
	uint8_t *buffer = buffer_new();
	int *fds = malloc(options.storm * sizeof(int));
	struct pollfd *polls = malloc(options.storm * sizeof(struct pollfd));
	struct slow *slows = calloc(options.slow, sizeof(struct slow));
	if (fds == NULL || polls == NULL || slows == NULL)
		exit(1);
	for (uint32_t i = 0; i < options.storm; i++)
		fds[i] = -1;
	for (uint32_t i = 0; i < options.slow; i++)
		slows[i].peer.fd = -1;
	struct peer flooder = {.fd = -1, .id = id_make(77)};
	uint64_t key = 1, retry_ns = 0, budget_ns = now_ns(), storm_ns = 0;
	while (!atomic_load(&abuse_stop)) {
		/* The storm's poll over every descriptor runs every 20 ms, so that
		 * this generator's own CPU (on the server's machine) stays small;
		 * its reopen rate is storm_rate either way. */
		if (now_ns() >= storm_ns) {
			storm_step(fds, polls, options.storm, &budget_ns);
			storm_ns = now_ns() + 20000000ull;
		}
		flood_step(&flooder, buffer, &key, &retry_ns);
		for (uint32_t i = 0; i < options.slow; i++)
			slow_step(&slows[i], 1000 + i, buffer);
		usleep(2000);
	}
	for (uint32_t i = 0; i < options.storm; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (uint32_t i = 0; i < options.slow; i++)
		if (slows[i].peer.fd >= 0)
			close(slows[i].peer.fd);
	if (flooder.fd >= 0)
		close(flooder.fd);
	free(fds);
	free(polls);
	free(slows);
	free(buffer);
	return NULL;
}

/* Every 500 ms: a frame of events_max events (answered, read), and one of
 * events_max + 1 (refused with ERR_SIZE). */
static void *abuse_frames(void *unused)
{
	(void)unused;
	abuser_nice();
	uint8_t *buffer = buffer_new();
	struct peer big = {.fd = -1, .id = id_make(88)};
	uint64_t key = 1;
	while (!atomic_load(&abuse_stop)) {
		if (big.fd < 0 && peer_open(&big, buffer, 0) != 0) {
			usleep(200000);
			continue;
		}
		struct skuld_event *events = (struct skuld_event *)(buffer + SKULD_HEADER_SIZE);
		for (uint32_t i = 0; i < options.events_max; i++)
			receive_event(&events[i], 3, key++, 0xb16);
		if (peer_submit(&big, buffer, options.events_max) != 0) {
			close(big.fd);
			big.fd = -1;
		}
		atomic_fetch_add(&big_frames, 1);
		struct peer over = {.fd = -1, .id = id_make(key)};
		if (peer_open(&over, buffer, 0) == 0) {
			/* The header alone, sealed by hand: the server refuses it
			 * before any body (checksum_body stays 0). */
			_Alignas(8) uint8_t bytes[SKULD_HEADER_SIZE];
			frame_build(bytes, &over, SKULD_OP_SUBMIT, over.request_next, NULL, 0, 0);
			struct skuld_header *header = (struct skuld_header *)bytes;
			header->body_size = (options.events_max + 1) * SKULD_EVENT_SIZE;
			header->count = options.events_max + 1;
			header->checksum_body = 0;
			header->checksum_header = skuld_checksum(
			        header, offsetof(struct skuld_header, checksum_header));
			if (io_all(over.fd, bytes, sizeof(bytes), false) == 0)
				(void)frame_read(over.fd, buffer);
			close(over.fd);
			atomic_fetch_add(&oversize_frames, 1);
		}
		usleep(500000);
	}
	if (big.fd >= 0)
		close(big.fd);
	free(buffer);
	return NULL;
}

/* ---- The well-behaved client ----------------------------------------------- */

struct good {
	struct peer peer;
	uint8_t *buffer;
	uint64_t key;
	int64_t available;
	uint64_t errors;
	bool checking; /* after set-up: every result must be the running total */
};

/* One closed-loop RECEIVE; checks its result. Returns its latency, ns. */
static uint64_t good_request(struct good *good)
{
	struct skuld_event *event = (struct skuld_event *)(good->buffer + SKULD_HEADER_SIZE);
	receive_event(event, 1, good->key++, 0x600d);
	uint64_t start = now_ns();
	if (peer_submit(&good->peer, good->buffer, 1) != 0) {
		fprintf(stderr, "skuld-abuse-bench: the well-behaved client's SUBMIT failed\n");
		exit(1);
	}
	uint64_t latency = now_ns() - start;
	const struct skuld_result *result =
	        (const struct skuld_result *)(good->buffer + SKULD_HEADER_SIZE);
	if (good->checking &&
	    (result->status != SKULD_OK || result->available != good->available + 1)) {
		if (good->errors++ == 0)
			fprintf(stderr,
			        "skuld-abuse-bench: a wrong result: %s, available %" PRId64
			        " after %" PRId64 "\n",
			        skuld_status_name(result->status), result->available,
			        good->available);
	}
	good->available = result->available;
	return latency;
}

static void good_run(struct good *good, uint32_t seconds, struct histogram *histogram)
{
	histogram_init(histogram);
	uint64_t end = now_ns() + (uint64_t)seconds * 1000000000ull;
	while (now_ns() < end)
		histogram_record(histogram, good_request(good));
}

static void report(const char *name, const struct histogram *histogram)
{
	printf("%-6s requests %8" PRIu64 "  p50 %8.1f us  p99 %8.1f us  p99.9 %8.1f us  max %8.1f "
	       "us\n",
	       name, histogram->total, histogram_percentile(histogram, 50) / 1e3,
	       histogram_percentile(histogram, 99) / 1e3,
	       histogram_percentile(histogram, 99.9) / 1e3, histogram->max / 1e3);
}

/* Defines item 1..3 and location 1, and learns item 1's available there. */
static void setup(struct good *good)
{
	struct skuld_event *events = (struct skuld_event *)(good->buffer + SKULD_HEADER_SIZE);
	memset(events, 0, 4 * sizeof(*events));
	for (uint32_t i = 0; i < 3; i++) {
		events[i].kind = SKULD_ITEM_DEFINE;
		events[i].item = i + 1;
		snprintf(events[i].code, sizeof(events[i].code), "ABUSE-%u", i + 1);
		events[i].key = id_make(i);
	}
	events[3].kind = SKULD_LOCATION_DEFINE;
	events[3].location = 1;
	snprintf(events[3].code, sizeof(events[3].code), "ABUSE-STORE");
	events[3].key = id_make(9);
	if (peer_submit(&good->peer, good->buffer, 4) != 0) {
		fprintf(stderr, "skuld-abuse-bench: set-up SUBMIT failed\n");
		exit(1);
	}
	/* Defined now or before (ITEM_EXISTS): either way, ask the level. */
	good_request(good);
	good->checking = true;
}

/* The server's STATS records 0 and 1, or -1 (an older server without
 * record 1). */
static int stats_fetch(struct good *good, struct skuld_stats *stats,
                       struct skuld_stats_limits *limits)
{
	size_t size = frame_build(good->buffer, &good->peer, SKULD_OP_STATS, 0, NULL, 0,
	                          SKULD_STATS_RECORDS); /* count: the records taken */
	const struct skuld_header *header = (const struct skuld_header *)good->buffer;
	if (io_all(good->peer.fd, good->buffer, size, false) != 0 ||
	    frame_read(good->peer.fd, good->buffer) != 0 || header->operation != SKULD_OP_STATS ||
	    header->count < 2)
		return -1;
	memcpy(stats, good->buffer + SKULD_HEADER_SIZE, sizeof(*stats));
	memcpy(limits, good->buffer + SKULD_HEADER_SIZE + SKULD_STATS_RECORD_SIZE, sizeof(*limits));
	return 0;
}

/* What the server saw of one phase (between two STATS): its group-commit
 * writes and its own SUBMIT latency (whole frame to reply released), whose
 * histogram is log-spaced: the p99 is given as its bucket's upper bound. */
static void phase_print(const char *name, const struct skuld_stats *s0,
                        const struct skuld_stats_limits *l0, const struct skuld_stats *s1,
                        const struct skuld_stats_limits *l1)
{
	uint64_t writes = s1->log_writes - s0->log_writes;
	uint64_t count = l1->latency_count - l0->latency_count;
	uint64_t over = 0, seen = 0, p99_ns = 0;
	for (uint32_t i = 0; i < SKULD_STATS_LATENCY_BUCKETS; i++) {
		uint64_t in = l1->latency_bucket[i] - l0->latency_bucket[i];
		if (i >= 4) /* over 1024 us */
			over += in;
		seen += in;
		if (p99_ns == 0 && count > 0 && seen * 100 >= count * 99)
			p99_ns = SKULD_STATS_LATENCY_BASE_NS << i;
	}
	printf("server %-5s writes %7" PRIu64 " (write + fdatasync mean %6.1f us)  SUBMIT latency "
	       "mean %6.1f us, p99 <= %5" PRIu64 " us, over 1024 us %5.2f%%\n",
	       name, writes,
	       writes > 0 ? (double)(s1->fsync_ns_total - s0->fsync_ns_total) / writes / 1e3 : 0.0,
	       count > 0 ? (double)(l1->latency_sum_ns - l0->latency_sum_ns) / count / 1e3 : 0.0,
	       p99_ns / 1000, count > 0 ? 100.0 * (double)over / (double)count : 0.0);
}

static void stats_print(const struct skuld_stats *stats, const struct skuld_stats_limits *limits)
{
	printf("server: refused %" PRIu64 " oversize %" PRIu64 " closed slow %" PRIu64
	       " unregistered %" PRIu64 " stalled %" PRIu64 " reply_waits %" PRIu64
	       " pool_waits %" PRIu64 "\n",
	       stats->connections_refused, limits->frames_oversize, limits->closed_slow,
	       limits->closed_unregistered, limits->closed_stalled, limits->reply_waits,
	       limits->pool_waits);
}

static int usage(void)
{
	fprintf(stderr, "usage: skuld-abuse-bench --server HOST:PORT [--token T] [--seconds N] "
	                "[--storm N] [--storm-rate N] [--slow N] [--events-max N] "
	                "[--abuse-nice N]\n");
	return 2;
}

static int options_parse(int argc, char **argv)
{
	options.seconds = 10;
	options.storm = 10000;
	options.storm_rate = 2000;
	options.slow = 8;
	options.events_max = 8192;
	const char *server = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		unsigned long value = strtoul(argv[i + 1], NULL, 10);
		if (strcmp(argv[i], "--server") == 0)
			server = argv[i + 1];
		else if (strcmp(argv[i], "--token") == 0)
			options.token = argv[i + 1];
		else if (strcmp(argv[i], "--seconds") == 0 && value > 0)
			options.seconds = (uint32_t)value;
		else if (strcmp(argv[i], "--storm") == 0)
			options.storm = (uint32_t)value;
		else if (strcmp(argv[i], "--storm-rate") == 0 && value > 0)
			options.storm_rate = (uint32_t)value;
		else if (strcmp(argv[i], "--slow") == 0)
			options.slow = (uint32_t)value;
		else if (strcmp(argv[i], "--abuse-nice") == 0 && value < 20)
			options.abuse_nice = (int)value;
		else if (strcmp(argv[i], "--events-max") == 0 && value > 0 && value < 8192 + 1)
			options.events_max = (uint32_t)value;
		else
			return usage();
	}
	char host[64];
	const char *colon = server != NULL ? strrchr(server, ':') : NULL;
	if ((argc % 2) != 1 || colon == NULL || (size_t)(colon - server) >= sizeof(host))
		return usage();
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = '\0';
	options.server.sin_family = AF_INET;
	options.server.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &options.server.sin_addr) != 1)
		return usage();
	/* The storm is bounded by the descriptor limit (raised when allowed). */
	struct rlimit limit;
	getrlimit(RLIMIT_NOFILE, &limit);
	limit.rlim_cur = limit.rlim_max;
	setrlimit(RLIMIT_NOFILE, &limit);
	getrlimit(RLIMIT_NOFILE, &limit);
	if (limit.rlim_cur < options.storm + 256ull)
		options.storm = limit.rlim_cur > 512 ? (uint32_t)(limit.rlim_cur - 256) : 0;
	return 0;
}

int main(int argc, char **argv)
{
	int rc = options_parse(argc, argv);
	if (rc != 0)
		return rc;
	struct good good = {.peer = {.id = id_make(1)}, .key = now_ns()};
	good.buffer = buffer_new();
	if (peer_open(&good.peer, good.buffer, 0) != 0) {
		fprintf(stderr, "skuld-abuse-bench: cannot connect and REGISTER\n");
		return 1;
	}
	setup(&good);
	static struct histogram quiet, abused;
	static struct skuld_stats stats[4];
	static struct skuld_stats_limits limits[4];
	good_run(&good, 1, &quiet); /* warm-up */
	int have = stats_fetch(&good, &stats[0], &limits[0]);
	good_run(&good, options.seconds, &quiet);
	have |= stats_fetch(&good, &stats[1], &limits[1]);
	pthread_t connections, frames;
	pthread_create(&connections, NULL, abuse_connections, NULL);
	pthread_create(&frames, NULL, abuse_frames, NULL);
	sleep(2); /* the storm fills the server's connections */
	have |= stats_fetch(&good, &stats[2], &limits[2]);
	good_run(&good, options.seconds, &abused);
	have |= stats_fetch(&good, &stats[3], &limits[3]);
	atomic_store(&abuse_stop, true);
	pthread_join(connections, NULL);
	pthread_join(frames, NULL);
	if (options.abuse_nice != 0)
		printf("abusers at nice %d\n", options.abuse_nice);
	printf("abuse: storm of up to %u connections (%" PRIu64 " opened), flooder %" PRIu64
	       " frames unread (%" PRIu64 " connections), %u slowloris (%" PRIu64
	       " reconnects), %" PRIu64 " frames of %u events, %" PRIu64 " over the limit\n",
	       options.storm, (uint64_t)atomic_load(&storm_opens),
	       (uint64_t)atomic_load(&flood_frames), (uint64_t)atomic_load(&flood_reconnects),
	       options.slow, (uint64_t)atomic_load(&slow_reconnects),
	       (uint64_t)atomic_load(&big_frames), options.events_max,
	       (uint64_t)atomic_load(&oversize_frames));
	report("quiet", &quiet);
	report("abuse", &abused);
	double ratio = (double)histogram_percentile(&abused, 99) /
	               (double)histogram_percentile(&quiet, 99);
	printf("p99 ratio (abuse / quiet): %.2f (target <= 2.00)\n", ratio);
	printf("well-behaved results wrong: %" PRIu64 "\n", good.errors);
	if (have == 0) {
		phase_print("quiet", &stats[0], &limits[0], &stats[1], &limits[1]);
		phase_print("abuse", &stats[2], &limits[2], &stats[3], &limits[3]);
		stats_print(&stats[3], &limits[3]);
	} else {
		printf("server STATS: no limit counters (an older server?)\n");
	}
	close(good.peer.fd);
	free(good.buffer);
	return good.errors == 0 ? 0 : 1;
}
