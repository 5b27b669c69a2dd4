/*
 * test_server_deadlines.c — the frame deadlines of a connection, through
 * the real server (docs/OPERATIONS.md, "Limits under abuse"):
 *   - a large SUBMIT sent slowly but steadily, above frame_min_rate_bytes,
 *     is served though it takes longer than frame_timeout_ms;
 *   - the same frame below that rate is closed while its bytes still flow,
 *     and counted in closed_slow;
 *   - before REGISTER, anything but REGISTER is refused from its header
 *     (ERR_NOT_REGISTERED), so connections without a session never hold a
 *     pool buffer.
 * Senders are paced against the clock (bytes sent follow rate x elapsed);
 * nothing asserts how fast the server is.
 */
#define _GNU_SOURCE /* POLLRDHUP */

#include <criterion/criterion.h>

#include "server_harness.h"

#define EVENTS      4096u /* a 512 KiB body */
#define FAST_RATE   (256u * 1024u)
#define SLOW_RATE   (16u * 1024u)
#define MIN_RATE    65536u
#define TIMEOUT_MS  1000u
#define SEND_MAX_MS 20000u

static const char config_deadlines[] = "frame_events_max = 4096\n"
                                       "frame_pool = 2\n"
                                       "frame_timeout_ms = 1000\n"
                                       "frame_min_rate_bytes = 65536\n"
                                       "stall_timeout_ms = 5000\n";

struct stats_all {
	struct skuld_stats server;
	struct skuld_stats_limits limits;
};

static void stats_read(struct client *client, struct stats_all *out)
{
	static struct reply reply;
	cr_assert_eq(frame_send(client->fd, SKULD_OP_STATS, client->id, 0, client->version, NULL, 0,
	                        SKULD_STATS_RECORDS),
	             0);
	cr_assert_eq(frame_read(client->fd, &reply), 0, "STATS reply");
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_STATS);
	cr_assert_geq(reply_header(&reply)->count, 2);
	memcpy(out, reply_body(&reply), sizeof(*out));
}

static void catalog(struct client *client)
{
	struct skuld_event events[] = {event_item(1, 1), event_location(1, 2)};
	struct skuld_result results[2];
	cr_assert_eq(client_submit(client, events, 2, results, NULL), 0);
}

/* A SUBMIT of EVENTS RECEIVEs of item 1 at location 1 into frame. */
static size_t big_submit(uint8_t *frame, const struct client *client, uint64_t key)
{
	static struct skuld_event events[EVENTS];
	for (uint32_t i = 0; i < EVENTS; i++)
		events[i] = event_stock(SKULD_RECEIVE, 1, 1, 1, key + i);
	return frame_build(frame, SKULD_OP_SUBMIT, client->id, client->request_next,
	                   client->version, events, EVENTS * SKULD_EVENT_SIZE, EVENTS);
}

/* Sends size bytes at rate bytes a second (chunk bytes at a time, as the
 * clock allows) until all are sent or the server closes the connection.
 * Returns true when all were sent; *elapsed_ms says how long it took. */
static bool paced_send(int fd, const uint8_t *bytes, size_t size, uint32_t rate, size_t chunk,
                       uint64_t *elapsed_ms)
{
	uint64_t start = harness_now_ms();
	size_t sent = 0;
	while (sent < size && harness_now_ms() - start < SEND_MAX_MS) {
		uint64_t allowed = (harness_now_ms() - start) * rate / 1000u + chunk;
		if (allowed > sent) {
			size_t length = size - sent < chunk ? size - sent : chunk;
			if (write_all(fd, bytes + sent, length) != 0)
				break;
			sent += length;
		}
		struct pollfd poll_fd = {.fd = fd, .events = POLLRDHUP};
		if (poll(&poll_fd, 1, 10) > 0)
			break; /* the server closed it (or answered early) */
	}
	*elapsed_ms = harness_now_ms() - start;
	return sent == size;
}

Test(server_deadlines, a_large_frame_sent_steadily_above_the_min_rate_is_served)
{
	struct server server;
	server_init(&server, config_deadlines);
	server_start(&server);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(1)), 0);
	catalog(&client);
	static uint8_t frame[SKULD_HEADER_SIZE + EVENTS * SKULD_EVENT_SIZE];
	size_t size = big_submit(frame, &client, 1000);
	uint64_t elapsed = 0;
	cr_assert(paced_send(client.fd, frame, size, FAST_RATE, 4096, &elapsed),
	          "closed after %llu ms while sending at %u B/s", (unsigned long long)elapsed,
	          FAST_RATE);
	cr_log_info("a %zu-byte frame at %u B/s took %llu ms (frame_timeout_ms %u)", size,
	            FAST_RATE, (unsigned long long)elapsed, TIMEOUT_MS);
	/* It took longer than frame_timeout_ms: the old rule would have cut it. */
	cr_assert_gt(elapsed, TIMEOUT_MS);
	static struct reply reply;
	cr_assert_eq(frame_read(client.fd, &reply), 0, "no reply to the slow frame");
	const struct skuld_header *header = reply_header(&reply);
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT, "operation %u (result %u)",
	             header->operation, header->result);
	cr_assert_eq(header->count, EVENTS);
	const struct skuld_result *results = reply_body(&reply);
	for (uint32_t i = 0; i < EVENTS; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: status %u", i,
		             results[i].status);
	cr_assert_eq(results[EVENTS - 1].available, EVENTS);
	client.request_next++;
	struct stats_all stats;
	stats_read(&client, &stats);
	cr_assert_eq(stats.limits.closed_slow, 0);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}

Test(server_deadlines, a_large_frame_below_the_min_rate_is_closed_and_counted)
{
	struct server server;
	server_init(&server, config_deadlines);
	server_start(&server);
	struct client watcher, slow;
	cr_assert_eq(client_open(&watcher, server.port, client_id(1)), 0);
	catalog(&watcher);
	cr_assert_eq(client_open(&slow, server.port, client_id(2)), 0);
	static uint8_t frame[SKULD_HEADER_SIZE + EVENTS * SKULD_EVENT_SIZE];
	size_t size = big_submit(frame, &slow, 1000);
	/* 2 KiB every 125 ms: bytes never stop for frame_timeout_ms, but the
	 * body falls behind 64 KiB/s. */
	uint64_t elapsed = 0;
	cr_assert_not(paced_send(slow.fd, frame, size, SLOW_RATE, 2048, &elapsed),
	              "a frame at %u B/s was taken whole (min rate %u)", SLOW_RATE, MIN_RATE);
	cr_log_info("a frame at %u B/s was closed after %llu ms", SLOW_RATE,
	            (unsigned long long)elapsed);
	cr_assert_gt(elapsed, TIMEOUT_MS, "closed before frame_timeout_ms");
	uint8_t byte;
	cr_assert_leq(recv(slow.fd, &byte, 1, 0), 0, "the slow connection was closed");
	client_close(&slow);
	struct stats_all stats;
	stats_read(&watcher, &stats);
	cr_assert_eq(stats.limits.closed_slow, 1);
	cr_assert_eq(stats.limits.closed_unregistered, 0);
	client_close(&watcher);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}

/* Before REGISTER: a large SUBMIT's header, or a PING, is answered
 * ERR_NOT_REGISTERED and the connection closed; the pool is never taken. */
Test(server_deadlines, before_register_nothing_but_register_is_taken)
{
	struct server server;
	server_init(&server, config_deadlines);
	server_start(&server);
	struct client good;
	cr_assert_eq(client_open(&good, server.port, client_id(1)), 0);
	catalog(&good);
	struct stats_all before;
	stats_read(&good, &before);
	static uint8_t frame[SKULD_HEADER_SIZE + EVENTS * SKULD_EVENT_SIZE];
	struct client stranger = {.id = client_id(9), .request_next = 1, .version = 1};
	size_t size = big_submit(frame, &stranger, 50000);
	(void)size;
	/* Three times as many as the pool has buffers, each header plus the
	 * first KiB of its body, all open at once. */
	int fds[6];
	for (uint32_t i = 0; i < 6; i++) {
		fds[i] = socket_connect(server.port);
		cr_assert_geq(fds[i], 0);
		cr_assert_eq(write_all(fds[i], frame, SKULD_HEADER_SIZE + 1024), 0);
	}
	static struct reply reply;
	for (uint32_t i = 0; i < 6; i++) {
		cr_assert_eq(frame_read(fds[i], &reply), 0, "connection %u: no answer", i);
		cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_ERROR);
		cr_assert_eq(reply_header(&reply)->result, SKULD_ERR_NOT_REGISTERED);
		uint8_t byte;
		cr_assert_leq(recv(fds[i], &byte, 1, 0), 0, "connection %u still open", i);
		close(fds[i]);
	}
	int fd = socket_connect(server.port);
	cr_assert_eq(frame_send(fd, SKULD_OP_PING, client_id(10), 0, 1, NULL, 0, 0), 0);
	cr_assert_eq(frame_read(fd, &reply), 0);
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_ERROR);
	cr_assert_eq(reply_header(&reply)->result, SKULD_ERR_NOT_REGISTERED);
	close(fd);
	/* A registered client's large frame takes a pool buffer at once. */
	size = big_submit(frame, &good, 100000);
	cr_assert_eq(write_all(good.fd, frame, size), 0);
	cr_assert_eq(frame_read(good.fd, &reply), 0);
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_SUBMIT);
	good.request_next++;
	struct stats_all after;
	stats_read(&good, &after);
	cr_assert_eq(after.limits.pool_waits, before.limits.pool_waits,
	             "a connection without REGISTER held a pool buffer");
	cr_assert_eq(after.server.frames_rejected, before.server.frames_rejected + 7);
	client_close(&good);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}
