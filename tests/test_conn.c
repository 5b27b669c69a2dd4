/*
 * test_conn.c — frame assembly and the reply ring of server/conn.c, with
 * plain buffers: frames split at every byte, several frames in one buffer,
 * oversized and malformed frames, the large-frame pool running dry,
 * REGISTER first (no pool buffer before it), and replies released in order
 * by their durability tags.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "conn.h"

#define SMALL_BYTES 1024u
#define EVENTS_MAX  64u
#define REPLY_BYTES 4096u
#define REPLIES_MAX 8u

static const skuld_u128 client = {0x1111, 0x2222};

struct fixture {
	struct frame_pool pool;
	struct conn conn;
	_Alignas(8) uint8_t small[SMALL_BYTES];
	uint8_t out[REPLY_BYTES];
	struct conn_reply replies[REPLIES_MAX];
};

static void fixture_init(struct fixture *f, uint32_t pool_count)
{
	memset(f, 0, sizeof(*f));
	cr_assert_eq(frame_pool_init(&f->pool, pool_count, EVENTS_MAX * SKULD_EVENT_SIZE), 0);
	struct conn_limits limits = {
	        .small_bytes = SMALL_BYTES,
	        .body_max = EVENTS_MAX * SKULD_EVENT_SIZE,
	        .events_max = EVENTS_MAX,
	        .reply_bytes = REPLY_BYTES,
	        .replies_max = REPLIES_MAX,
	};
	conn_init(&f->conn, &limits, f->small, f->out, f->replies);
}

static void fixture_fini(struct fixture *f)
{
	conn_reset(&f->conn, &f->pool);
	cr_assert_eq(f->pool.free_count, f->pool.count, "a pool buffer leaked");
	frame_pool_destroy(&f->pool);
}

/* A sealed SUBMIT of count SALE events into bytes; returns its size. */
static size_t submit_make(uint8_t *bytes, uint64_t request, uint32_t count)
{
	struct skuld_header *header = (struct skuld_header *)bytes;
	memset(header, 0, sizeof(*header));
	header->version = 1;
	header->operation = SKULD_OP_SUBMIT;
	header->request = request;
	header->client = client;
	header->body_size = count * SKULD_EVENT_SIZE;
	header->count = count;
	struct skuld_event *events = (struct skuld_event *)(bytes + SKULD_HEADER_SIZE);
	for (uint32_t i = 0; i < count; i++) {
		memset(&events[i], 0, sizeof(events[i]));
		events[i].kind = SKULD_SALE;
		events[i].key.lo = request * 1000 + i + 1;
		events[i].item = 1;
		events[i].location = 1;
		events[i].quantity = 1;
	}
	proto_header_seal(header, events);
	return SKULD_HEADER_SIZE + header->body_size;
}

static size_t ping_make(uint8_t *bytes, uint64_t request)
{
	struct skuld_header *header = (struct skuld_header *)bytes;
	memset(header, 0, sizeof(*header));
	header->version = 1;
	header->operation = SKULD_OP_PING;
	header->request = request;
	header->client = client;
	proto_header_seal(header, NULL);
	return SKULD_HEADER_SIZE;
}

/* Feeds bytes in pieces of `piece` bytes; returns the frames completed, each
 * checked against want_request (request numbers 1, 2, ...). */
static uint32_t feed_pieces(struct fixture *f, const uint8_t *bytes, size_t size, size_t piece)
{
	uint32_t frames = 0;
	size_t at = 0;
	while (at < size) {
		size_t length = size - at < piece ? size - at : piece;
		size_t used = 0;
		while (used < length) {
			enum conn_input result;
			used += conn_input(&f->conn, &f->pool, bytes + at + used, length - used,
			                   &result);
			cr_assert(result == CONN_NEED_MORE || result == CONN_FRAME, "result %d",
			          result);
			if (result == CONN_FRAME) {
				frames++;
				cr_assert_eq(conn_frame_header(&f->conn)->request, frames);
				cr_assert_eq(((uintptr_t)conn_frame_body(&f->conn)) % 8, 0);
				conn_frame_done(&f->conn, &f->pool);
			}
		}
		at += length;
	}
	return frames;
}

Test(conn, small_frame_split_at_every_byte)
{
	static uint8_t bytes[SKULD_HEADER_SIZE + 4 * SKULD_EVENT_SIZE];
	size_t size = submit_make(bytes, 1, 4);
	for (size_t split = 1; split < size; split++) {
		struct fixture f;
		fixture_init(&f, 2);
		enum conn_input result;
		size_t used = conn_input(&f.conn, &f.pool, bytes, split, &result);
		cr_assert_eq(used, split);
		cr_assert_eq(result, CONN_NEED_MORE, "split %zu", split);
		cr_assert(conn_partial(&f.conn));
		used = conn_input(&f.conn, &f.pool, bytes + split, size - split, &result);
		cr_assert_eq(used, size - split);
		cr_assert_eq(result, CONN_FRAME, "split %zu", split);
		cr_assert_eq(conn_frame_header(&f.conn)->count, 4);
		cr_assert_eq(memcmp(conn_frame_body(&f.conn), bytes + SKULD_HEADER_SIZE, size - 64),
		             0);
		conn_frame_done(&f.conn, &f.pool);
		cr_assert(!conn_partial(&f.conn));
		fixture_fini(&f);
	}
}

Test(conn, large_frame_byte_by_byte_uses_and_returns_a_pool_buffer)
{
	static uint8_t bytes[SKULD_HEADER_SIZE + EVENTS_MAX * SKULD_EVENT_SIZE];
	size_t size = submit_make(bytes, 1, EVENTS_MAX);
	cr_assert_gt(size - SKULD_HEADER_SIZE, SMALL_BYTES);
	struct fixture f;
	fixture_init(&f, 1);
	cr_assert_eq(feed_pieces(&f, bytes, size, 1), 1);
	cr_assert_eq(f.pool.free_count, 1);
	fixture_fini(&f);
}

Test(conn, several_frames_in_one_buffer)
{
	static uint8_t bytes[8 * (SKULD_HEADER_SIZE + 16 * SKULD_EVENT_SIZE)];
	size_t size = 0;
	size += submit_make(bytes + size, 1, 2);
	size += ping_make(bytes + size, 2);
	size += submit_make(bytes + size, 3, 16); /* large: from the pool */
	size += submit_make(bytes + size, 4, 0);
	size += submit_make(bytes + size, 5, 1);
	for (size_t piece = 1; piece <= size; piece = piece * 3 + 1) {
		struct fixture f;
		fixture_init(&f, 1);
		cr_assert_eq(feed_pieces(&f, bytes, size, piece), 5, "piece %zu", piece);
		fixture_fini(&f);
	}
	struct fixture f;
	fixture_init(&f, 1);
	cr_assert_eq(feed_pieces(&f, bytes, size, size), 5);
	fixture_fini(&f);
}

Test(conn, frame_is_held_until_done)
{
	uint8_t bytes[2 * SKULD_HEADER_SIZE];
	ping_make(bytes, 1);
	ping_make(bytes + SKULD_HEADER_SIZE, 2);
	struct fixture f;
	fixture_init(&f, 1);
	enum conn_input result;
	size_t used = conn_input(&f.conn, &f.pool, bytes, sizeof(bytes), &result);
	cr_assert_eq(used, SKULD_HEADER_SIZE); /* stops after the first frame */
	cr_assert_eq(result, CONN_FRAME);
	cr_assert_eq(conn_input(&f.conn, &f.pool, bytes + used, sizeof(bytes) - used, &result), 0);
	cr_assert_eq(result, CONN_FRAME);
	conn_frame_done(&f.conn, &f.pool);
	used = conn_input(&f.conn, &f.pool, bytes + used, sizeof(bytes) - used, &result);
	cr_assert_eq(result, CONN_FRAME);
	cr_assert_eq(conn_frame_header(&f.conn)->request, 2);
	conn_frame_done(&f.conn, &f.pool);
	fixture_fini(&f);
}

static void expect_error(const uint8_t *bytes, size_t size, uint32_t status, bool trusted,
                         size_t used_want)
{
	struct fixture f;
	fixture_init(&f, 1);
	enum conn_input result;
	size_t used = conn_input(&f.conn, &f.pool, bytes, size, &result);
	cr_assert_eq(result, CONN_ERROR);
	cr_assert_eq(f.conn.error_status, status, "%s, want %s",
	             skuld_status_name(f.conn.error_status), skuld_status_name(status));
	cr_assert_eq(f.conn.header_trusted, trusted);
	cr_assert_eq(used, used_want);
	/* Once failed, nothing more is taken. */
	cr_assert_eq(conn_input(&f.conn, &f.pool, bytes, size, &result), 0);
	cr_assert_eq(result, CONN_ERROR);
	fixture_fini(&f);
}

Test(conn, oversized_frame_is_refused_at_the_header)
{
	static uint8_t bytes[SKULD_HEADER_SIZE + (EVENTS_MAX + 1) * SKULD_EVENT_SIZE];
	submit_make(bytes, 1, EVENTS_MAX + 1);
	/* Only the header is read: the body is never taken. */
	expect_error(bytes, sizeof(bytes), SKULD_ERR_SIZE, true, SKULD_HEADER_SIZE);

	/* A header that claims more than the codec allows at all. */
	struct skuld_header *header = (struct skuld_header *)bytes;
	header->body_size = 2u << 20;
	header->count = header->body_size / SKULD_EVENT_SIZE;
	header->checksum_header = skuld_checksum(header, 56);
	expect_error(bytes, SKULD_HEADER_SIZE, SKULD_ERR_SIZE, false, SKULD_HEADER_SIZE);
}

Test(conn, bad_checksums_are_refused)
{
	static uint8_t bytes[SKULD_HEADER_SIZE + 2 * SKULD_EVENT_SIZE];
	size_t size = submit_make(bytes, 1, 2);
	bytes[SKULD_HEADER_SIZE + 77] ^= 0x40; /* body byte */
	expect_error(bytes, size, SKULD_ERR_BODY_CHECKSUM, true, size);
	submit_make(bytes, 1, 2);
	bytes[20] ^= 0x01; /* header byte after the magic and version */
	expect_error(bytes, size, SKULD_ERR_HEADER_CHECKSUM, false, SKULD_HEADER_SIZE);
}

Test(conn, random_bytes_and_replies_from_a_client_are_refused)
{
	uint8_t bytes[SKULD_HEADER_SIZE];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 37 + 11);
	expect_error(bytes, sizeof(bytes), SKULD_ERR_MAGIC, false, SKULD_HEADER_SIZE);

	ping_make(bytes, 1);
	struct skuld_header *header = (struct skuld_header *)bytes;
	header->flags = SKULD_FRAME_REPLY;
	proto_header_seal(header, NULL);
	expect_error(bytes, sizeof(bytes), SKULD_ERR_FLAGS, true, SKULD_HEADER_SIZE);
}

Test(conn, bad_event_reports_its_index)
{
	static uint8_t bytes[SKULD_HEADER_SIZE + 3 * SKULD_EVENT_SIZE];
	size_t size = submit_make(bytes, 1, 3);
	struct skuld_event *events = (struct skuld_event *)(bytes + SKULD_HEADER_SIZE);
	events[2].scale = 1; /* SALE does not use scale */
	proto_header_seal((struct skuld_header *)bytes, events);
	struct fixture f;
	fixture_init(&f, 1);
	enum conn_input result;
	conn_input(&f.conn, &f.pool, bytes, size, &result);
	cr_assert_eq(result, CONN_ERROR);
	cr_assert_eq(f.conn.error_status, SKULD_ERR_EVENT_FIELD);
	cr_assert_eq(f.conn.error_index, 2);
	fixture_fini(&f);
}

Test(conn, truncated_frame_stays_partial)
{
	static uint8_t bytes[SKULD_HEADER_SIZE + 2 * SKULD_EVENT_SIZE];
	size_t size = submit_make(bytes, 1, 2);
	struct fixture f;
	fixture_init(&f, 1);
	enum conn_input result;
	cr_assert_eq(conn_input(&f.conn, &f.pool, bytes, size - 1, &result), size - 1);
	cr_assert_eq(result, CONN_NEED_MORE);
	cr_assert(conn_partial(&f.conn));
	fixture_fini(&f);
}

Test(conn, blocked_without_a_pool_buffer_until_one_frees)
{
	static uint8_t large[SKULD_HEADER_SIZE + EVENTS_MAX * SKULD_EVENT_SIZE];
	size_t size = submit_make(large, 1, EVENTS_MAX);
	struct fixture f;
	fixture_init(&f, 1);
	uint8_t *taken = frame_pool_acquire(&f.pool);
	cr_assert_not_null(taken);
	enum conn_input result;
	size_t used = conn_input(&f.conn, &f.pool, large, size, &result);
	cr_assert_eq(result, CONN_BLOCKED);
	cr_assert_eq(used, SKULD_HEADER_SIZE); /* the body stays with the caller */
	cr_assert_eq(conn_input(&f.conn, &f.pool, large + used, size - used, &result), 0);
	cr_assert_eq(result, CONN_BLOCKED);
	frame_pool_release(&f.pool, taken);
	used += conn_input(&f.conn, &f.pool, large + used, size - used, &result);
	cr_assert_eq(result, CONN_FRAME);
	cr_assert_eq(used, size);
	conn_frame_done(&f.conn, &f.pool);
	fixture_fini(&f);
}

/* ---- Replies -------------------------------------------------------------- */

static void reply_bytes(uint8_t *bytes, uint32_t size, uint8_t fill)
{
	memset(bytes, fill, size);
}

/* Sends everything sendable; appends it to sent. Returns whether a close
 * reply went out. */
static bool drain(struct conn *conn, uint8_t *sent, size_t *sent_size, size_t chunk)
{
	bool close = false;
	const uint8_t *data;
	size_t span;
	while ((span = conn_send_span(conn, &data)) > 0) {
		size_t n = span < chunk ? span : chunk;
		memcpy(sent + *sent_size, data, n);
		*sent_size += n;
		close = conn_sent(conn, n);
	}
	return close;
}

Test(conn, replies_wait_for_their_tag_and_keep_order)
{
	struct fixture f;
	fixture_init(&f, 1);
	uint8_t bytes[512];
	reply_bytes(bytes, 100, 'a');
	conn_reply_push(&f.conn, bytes, 100, 0, false); /* no tag: at once */
	reply_bytes(bytes, 200, 'b');
	conn_reply_push(&f.conn, bytes, 200, 5, false);
	reply_bytes(bytes, 50, 'c');
	conn_reply_push(&f.conn, bytes, 50, 3, false); /* earlier tag, but queued after */
	uint8_t sent[1024];
	size_t sent_size = 0;
	cr_assert_eq(conn_release(&f.conn, 2), 100);
	drain(&f.conn, sent, &sent_size, 7);
	cr_assert_eq(sent_size, 100);
	cr_assert_eq(conn_release(&f.conn, 4), 0); /* 'b' (5) holds 'c' back */
	cr_assert(conn_unreleased(&f.conn));
	cr_assert_eq(conn_release(&f.conn, 5), 250);
	drain(&f.conn, sent, &sent_size, 1000);
	cr_assert_eq(sent_size, 350);
	cr_assert_eq(sent[99], 'a');
	cr_assert_eq(sent[100], 'b');
	cr_assert_eq(sent[300], 'c');
	cr_assert(conn_output_empty(&f.conn));
	fixture_fini(&f);
}

Test(conn, reply_ring_wraps_and_bounds)
{
	struct fixture f;
	fixture_init(&f, 1);
	uint8_t bytes[1500];
	uint8_t sent[8192];
	size_t sent_size = 0;
	size_t want = 0;
	for (int round = 0; round < 20; round++) {
		reply_bytes(bytes, sizeof(bytes), (uint8_t)('A' + round));
		cr_assert(conn_reply_fits(&f.conn, sizeof(bytes)));
		conn_reply_push(&f.conn, bytes, sizeof(bytes), 0, false);
		cr_assert(conn_reply_fits(&f.conn, sizeof(bytes)));
		conn_reply_push(&f.conn, bytes, sizeof(bytes), 0, false);
		/* 3000 of 4096 used: no room for a third (the error reserve). */
		cr_assert(!conn_reply_fits(&f.conn, sizeof(bytes)));
		conn_release(&f.conn, 0);
		sent_size = 0;
		drain(&f.conn, sent, &sent_size, 333);
		want = 2 * sizeof(bytes);
		cr_assert_eq(sent_size, want);
		for (size_t i = 0; i < want; i++)
			cr_assert_eq(sent[i], 'A' + round, "round %d byte %zu", round, i);
	}
	/* The entry bound: replies_max - 1 small replies, one kept for an ERROR. */
	for (uint32_t i = 0; i + 2 <= REPLIES_MAX; i++) {
		cr_assert(conn_reply_fits(&f.conn, 64));
		conn_reply_push(&f.conn, bytes, 64, 9, false);
	}
	cr_assert(!conn_reply_fits(&f.conn, 64));
	conn_reply_push_error(&f.conn, bytes, 128, 9);
	cr_assert_eq(conn_release(&f.conn, 9), (REPLIES_MAX - 1) * 64 + 128);
	sent_size = 0;
	cr_assert(drain(&f.conn, sent, &sent_size, 4096)); /* the ERROR closes */
	cr_assert(f.conn.close_ready);
	fixture_fini(&f);
}

/* conn_release_timed's measure: records what it was told. */
struct measured {
	uint32_t count;
	uint64_t latencies[4];
};

static void measure_record(void *context, uint64_t latency_ns)
{
	struct measured *measured = context;
	cr_assert_lt(measured->count, 4);
	measured->latencies[measured->count++] = latency_ns;
}

Test(conn, released_replies_marked_with_an_arrival_are_measured_once)
{
	struct fixture f;
	fixture_init(&f, 1);
	uint8_t bytes[128];
	reply_bytes(bytes, 96, 'a');
	conn_reply_push(&f.conn, bytes, 96, 2, false);
	conn_reply_arrival(&f.conn, 1000); /* a SUBMIT's reply */
	reply_bytes(bytes, 64, 'b');
	conn_reply_push(&f.conn, bytes, 64, 2, false); /* a PING's: not measured */
	reply_bytes(bytes, 96, 'c');
	conn_reply_push(&f.conn, bytes, 96, 3, false);
	conn_reply_arrival(&f.conn, 1500);
	struct measured measured = {0};
	cr_assert_eq(conn_release_timed(&f.conn, 1, 2000, measure_record, &measured), 0);
	cr_assert_eq(measured.count, 0, "nothing is durable yet");
	cr_assert_eq(conn_release_timed(&f.conn, 2, 4000, measure_record, &measured), 160);
	cr_assert_eq(measured.count, 1);
	cr_assert_eq(measured.latencies[0], 3000);
	cr_assert_eq(conn_release_timed(&f.conn, 2, 5000, measure_record, &measured), 0);
	cr_assert_eq(measured.count, 1, "a released reply is not measured again");
	cr_assert_eq(conn_release_timed(&f.conn, 3, 9500, measure_record, &measured), 96);
	cr_assert_eq(measured.count, 2);
	cr_assert_eq(measured.latencies[1], 8000);
	fixture_fini(&f);
}

/* A REGISTER request (128-byte body) into bytes; returns its size. */
static size_t register_make(uint8_t *bytes)
{
	struct skuld_header *header = (struct skuld_header *)bytes;
	memset(bytes, 0, SKULD_HEADER_SIZE + sizeof(struct skuld_register_request));
	header->version = 1;
	header->operation = SKULD_OP_REGISTER;
	header->client = client;
	header->body_size = sizeof(struct skuld_register_request);
	header->count = 1;
	struct skuld_register_request *request =
	        (struct skuld_register_request *)(bytes + SKULD_HEADER_SIZE);
	request->version_min = 1;
	request->version_max = 1;
	proto_header_seal(header, request);
	return SKULD_HEADER_SIZE + header->body_size;
}

Test(conn, before_register_only_register_is_taken_and_no_pool_buffer)
{
	static uint8_t bytes[SKULD_HEADER_SIZE + EVENTS_MAX * SKULD_EVENT_SIZE];
	/* A large SUBMIT first: refused on its header alone, no body byte
	 * kept, the pool untouched. */
	size_t size = submit_make(bytes, 1, EVENTS_MAX);
	struct fixture f;
	fixture_init(&f, 1);
	f.conn.limits.register_first = true;
	enum conn_input result;
	size_t used = conn_input(&f.conn, &f.pool, bytes, size, &result);
	cr_assert_eq(result, CONN_ERROR);
	cr_assert_eq(used, SKULD_HEADER_SIZE);
	cr_assert_eq(f.conn.error_status, SKULD_ERR_NOT_REGISTERED);
	cr_assert(f.conn.header_trusted);
	cr_assert_eq(f.pool.free_count, 1, "a pool buffer was taken before REGISTER");
	fixture_fini(&f);

	/* PING first: refused too (PROTOCOL.md section 8: REGISTER first). */
	fixture_init(&f, 1);
	f.conn.limits.register_first = true;
	size = ping_make(bytes, 1);
	used = conn_input(&f.conn, &f.pool, bytes, size, &result);
	cr_assert_eq(result, CONN_ERROR);
	cr_assert_eq(f.conn.error_status, SKULD_ERR_NOT_REGISTERED);
	fixture_fini(&f);

	/* REGISTER is taken; once registered, the large SUBMIT is too. */
	fixture_init(&f, 1);
	f.conn.limits.register_first = true;
	size = register_make(bytes);
	used = conn_input(&f.conn, &f.pool, bytes, size, &result);
	cr_assert_eq(result, CONN_FRAME);
	cr_assert_eq(used, size);
	conn_set_registered(&f.conn);
	conn_frame_done(&f.conn, &f.pool);
	size = submit_make(bytes, 1, EVENTS_MAX);
	cr_assert(!conn_header_whole(&f.conn));
	used = conn_input(&f.conn, &f.pool, bytes, SKULD_HEADER_SIZE + 10, &result);
	cr_assert_eq(result, CONN_NEED_MORE);
	cr_assert(conn_header_whole(&f.conn));
	cr_assert_eq(f.conn.body_have, 10);
	cr_assert_eq(f.pool.free_count, 0);
	used = conn_input(&f.conn, &f.pool, bytes + SKULD_HEADER_SIZE + 10,
	                  size - SKULD_HEADER_SIZE - 10, &result);
	cr_assert_eq(result, CONN_FRAME);
	conn_frame_done(&f.conn, &f.pool);
	fixture_fini(&f);

	/* Without register_first (the default) a SUBMIT is taken at once. */
	fixture_init(&f, 1);
	size = submit_make(bytes, 1, 2);
	used = conn_input(&f.conn, &f.pool, bytes, size, &result);
	cr_assert_eq(result, CONN_FRAME);
	conn_frame_done(&f.conn, &f.pool);
	fixture_fini(&f);
}
