/*
 * test_server_input.c — bad input against the real skuld: random bytes, a
 * bad header checksum, a bad body checksum, an oversized frame, a truncated
 * frame, half a frame then a stall, a client that never reads its replies.
 * Each gets an ERROR frame (where one is due) and its connection closed;
 * a well-behaved client on another connection keeps being served with its
 * normal latency, and the server never stops.
 */
#include "server_harness.h"

static const char *config_input = "items_max = 64\n"
                                  "locations_max = 8\n"
                                  "frame_events_max = 64\n"
                                  "frame_timeout_ms = 400\n"
                                  "stall_timeout_ms = 800\n"
                                  "replies_max = 16\n";

/* Reads frames until an ERROR arrives or the connection ends. Returns the
 * ERROR's status, or 0 if the connection ended without one. */
static uint32_t error_then_close(int fd)
{
	static struct reply reply;
	uint32_t status = 0;
	for (int frames = 0; frames < 100; frames++) {
		if (frame_read(fd, &reply) != 0)
			break;
		if (reply_header(&reply)->operation == SKULD_OP_ERROR) {
			const struct skuld_error_body *error = reply_body(&reply);
			cr_assert_eq(error->status, reply_header(&reply)->result);
			cr_assert(error->message[0] != '\0', "an ERROR says why");
			status = error->status;
			break;
		}
	}
	/* After the ERROR the server closes: the next read sees the end. */
	uint8_t byte;
	ssize_t got = recv(fd, &byte, 1, 0);
	cr_assert_leq(got, 0, "connection still open after an ERROR");
	return status;
}

/* A round trip of the good client; returns its latency in ms. */
static uint64_t good_round_trip(struct client *good, uint32_t round)
{
	uint64_t start = harness_now_ms();
	struct skuld_event sale = event_stock(SKULD_SALE, 1, 1, 1, 80000 + round);
	struct skuld_result result;
	cr_assert_eq(client_submit(good, &sale, 1, &result, NULL), 0, "good client refused");
	cr_assert_eq(result.status, SKULD_OK);
	return harness_now_ms() - start;
}

static void setup(struct client *good)
{
	struct skuld_event events[3] = {
	        event_item(1, 1),
	        event_location(1, 2),
	        event_stock(SKULD_RECEIVE, 1, 1, 1000000, 3),
	};
	struct skuld_result results[3];
	cr_assert_eq(client_submit(good, events, 3, results, NULL), 0);
}

Test(server_input, malformed_frames_get_an_error_and_a_close)
{
	struct server server;
	server_init(&server, config_input);
	server_start(&server);
	struct client good;
	cr_assert_eq(client_open(&good, server.port, client_id(1)), 0);
	setup(&good);

	/* Random bytes. */
	int fd = socket_connect(server.port);
	uint8_t noise[300];
	uint64_t state = 12345;
	for (size_t i = 0; i < sizeof(noise); i++) {
		state = state * 6364136223846793005ull + 1442695040888963407ull;
		noise[i] = (uint8_t)(state >> 56);
	}
	noise[0] = 'G'; /* certainly not "SKLD" */
	cr_assert_eq(write_all(fd, noise, sizeof(noise)), 0);
	cr_assert_eq(error_then_close(fd), SKULD_ERR_MAGIC);
	close(fd);
	good_round_trip(&good, 1);

	/* Bad header checksum, bad body checksum. */
	uint8_t frame[SKULD_HEADER_SIZE + 2 * SKULD_EVENT_SIZE];
	struct skuld_event events[2] = {
	        event_stock(SKULD_SALE, 1, 1, 1, 501),
	        event_stock(SKULD_SALE, 1, 1, 1, 502),
	};
	size_t size =
	        frame_build(frame, SKULD_OP_SUBMIT, client_id(2), 1, 1, events, sizeof(events), 2);
	frame[40] ^= 1; /* result word: covered by the header checksum */
	fd = socket_connect(server.port);
	cr_assert_eq(write_all(fd, frame, size), 0);
	cr_assert_eq(error_then_close(fd), SKULD_ERR_HEADER_CHECKSUM);
	close(fd);
	/* A body is read only from a registered connection (before REGISTER
	 * the header alone is refused, below). */
	struct client registered;
	cr_assert_eq(client_open(&registered, server.port, client_id(2)), 0);
	frame_build(frame, SKULD_OP_SUBMIT, registered.id, registered.request_next,
	            registered.version, events, sizeof(events), 2);
	frame[SKULD_HEADER_SIZE + 140] ^= 0x10;
	cr_assert_eq(write_all(registered.fd, frame, size), 0);
	cr_assert_eq(error_then_close(registered.fd), SKULD_ERR_BODY_CHECKSUM);
	client_close(&registered);

	/* Oversized: more events than frame_events_max (64). Only the header
	 * is sent; the server refuses before reading any body. */
	struct skuld_header header;
	memset(&header, 0, sizeof(header));
	header.version = 1;
	header.operation = SKULD_OP_SUBMIT;
	header.client = client_id(3);
	header.request = 1;
	header.count = 65;
	header.body_size = 65 * SKULD_EVENT_SIZE;
	header.magic = SKULD_MAGIC;
	header.checksum_header = skuld_checksum(&header, 56);
	fd = socket_connect(server.port);
	cr_assert_eq(write_all(fd, &header, sizeof(header)), 0);
	cr_assert_eq(error_then_close(fd), SKULD_ERR_SIZE);
	close(fd);

	/* A SUBMIT before REGISTER, on a fresh connection. */
	fd = socket_connect(server.port);
	size = frame_build(frame, SKULD_OP_SUBMIT, client_id(4), 1, 1, events, sizeof(events), 2);
	cr_assert_eq(write_all(fd, frame, size), 0);
	cr_assert_eq(error_then_close(fd), SKULD_ERR_NOT_REGISTERED);
	close(fd);

	/* A truncated frame: half of it, then the client goes away. */
	fd = socket_connect(server.port);
	cr_assert_eq(write_all(fd, frame, size / 2), 0);
	close(fd);

	/* Half a frame, then a stall: closed after frame_timeout_ms. (A
	 * registered client: before REGISTER the header alone is refused.) */
	struct client staller;
	cr_assert_eq(client_open(&staller, server.port, client_id(5)), 0);
	fd = staller.fd;
	frame_build(frame, SKULD_OP_SUBMIT, staller.id, staller.request_next, staller.version,
	            events, sizeof(events), 2);
	cr_assert_eq(write_all(fd, frame, SKULD_HEADER_SIZE + 10), 0);
	uint64_t start = harness_now_ms();
	for (uint32_t round = 2; round < 12; round++) {
		uint64_t latency = good_round_trip(&good, round);
		cr_assert_lt(latency, 1000, "good client took %llu ms",
		             (unsigned long long)latency);
	}
	uint8_t byte;
	ssize_t got = recv(fd, &byte, 1, 0);
	cr_assert_leq(got, 0);
	cr_assert_lt(harness_now_ms() - start, 5000, "a stalled frame was not timed out");
	close(fd);

	/* A closed connection's slot is freed once its last completion is in:
	 * the count may lag the close by a turn. */
	struct skuld_stats stats;
	for (int attempt = 0; attempt < 100; attempt++) {
		cr_assert_eq(client_stats(&good, &stats), 0);
		if (stats.connections_open == 1)
			break;
		usleep(20000);
	}
	cr_assert_geq(stats.frames_rejected, 5);
	cr_assert_eq(stats.connections_open, 1);
	client_close(&good);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}

Test(server_input, a_client_that_never_reads_is_cut_off)
{
	struct server server;
	server_init(&server, config_input);
	server_start(&server);
	struct client good;
	cr_assert_eq(client_open(&good, server.port, client_id(1)), 0);
	setup(&good);

	/* A registered client that pipelines STATS requests and reads
	 * nothing, through a tiny receive window. */
	struct client lazy;
	memset(&lazy, 0, sizeof(lazy));
	lazy.id = client_id(9);
	lazy.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 4096;
	setsockopt(lazy.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(server.port)};
	inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
	cr_assert_eq(connect(lazy.fd, (struct sockaddr *)&address, sizeof(address)), 0);
	struct skuld_register_request request;
	memset(&request, 0, sizeof(request));
	request.version_min = 1;
	request.version_max = 1;
	cr_assert_eq(
	        frame_send(lazy.fd, SKULD_OP_REGISTER, lazy.id, 0, 1, &request, sizeof(request), 1),
	        0);
	fcntl(lazy.fd, F_SETFL, O_NONBLOCK);
	static uint8_t stats_frames[256 * SKULD_HEADER_SIZE];
	for (int i = 0; i < 256; i++)
		frame_build(stats_frames + i * SKULD_HEADER_SIZE, SKULD_OP_STATS, lazy.id, 0, 1,
		            NULL, 0, 0);
	uint64_t sent = 0;
	uint64_t start = harness_now_ms();
	uint32_t round = 100;
	bool cut = false;
	while (harness_now_ms() - start < 15000 && !cut) {
		/* Keep pushing requests while the server takes them. */
		for (int burst = 0; burst < 64; burst++) {
			ssize_t n = send(lazy.fd, stats_frames, sizeof(stats_frames),
			                 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n <= 0)
				break;
			sent += (uint64_t)n;
		}
		uint64_t latency = good_round_trip(&good, round++);
		cr_assert_lt(latency, 1000, "good client took %llu ms",
		             (unsigned long long)latency);
		struct pollfd poll_fd = {.fd = lazy.fd, .events = POLLRDHUP};
		if (poll(&poll_fd, 1, 20) > 0 &&
		    (poll_fd.revents & (POLLHUP | POLLERR | POLLRDHUP)) != 0)
			cut = true;
	}
	cr_assert(cut, "the client that never reads was not cut off (%llu bytes sent)",
	          (unsigned long long)sent);
	cr_assert_gt(sent, 64 * 1024, "it did send a lot first");
	close(lazy.fd);
	struct skuld_stats stats;
	for (int attempt = 0; attempt < 100; attempt++) {
		cr_assert_eq(client_stats(&good, &stats), 0);
		if (stats.connections_open == 1)
			break;
		usleep(20000);
	}
	cr_assert_eq(stats.connections_open, 1);
	client_close(&good);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}
