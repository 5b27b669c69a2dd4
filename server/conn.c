/*
 * conn.c — frame assembly and the reply ring (the rules are in conn.h).
 */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"

/* ---- The large-frame pool ---------------------------------------------- */

int frame_pool_init(struct frame_pool *pool, uint32_t count, uint32_t size)
{
	memset(pool, 0, sizeof(*pool));
	size_t rounded = ((size_t)size + 63) & ~(size_t)63;
	pool->memory = aligned_alloc(64, rounded * count);
	pool->free_list = calloc(count, sizeof(uint32_t));
	if (pool->memory == NULL || pool->free_list == NULL) {
		frame_pool_destroy(pool);
		return -ENOMEM;
	}
	pool->count = count;
	pool->size = (uint32_t)rounded;
	for (uint32_t i = 0; i < count; i++)
		pool->free_list[i] = count - 1 - i;
	pool->free_count = count;
	return 0;
}

void frame_pool_destroy(struct frame_pool *pool)
{
	free(pool->memory);
	free(pool->free_list);
	memset(pool, 0, sizeof(*pool));
}

uint8_t *frame_pool_acquire(struct frame_pool *pool)
{
	if (pool->free_count == 0)
		return NULL;
	uint32_t index = pool->free_list[--pool->free_count];
	return pool->memory + (size_t)index * pool->size;
}

void frame_pool_release(struct frame_pool *pool, uint8_t *buffer)
{
	SKULD_ASSERT(buffer >= pool->memory);
	size_t offset = (size_t)(buffer - pool->memory);
	SKULD_ASSERT(offset % pool->size == 0 && offset / pool->size < pool->count);
	SKULD_ASSERT(pool->free_count < pool->count);
	pool->free_list[pool->free_count++] = (uint32_t)(offset / pool->size);
}

/* ---- Input ---------------------------------------------------------------- */

uint64_t conn_memory_bytes(uint32_t small_bytes, uint32_t reply_bytes, uint32_t replies_max)
{
	return sizeof(struct conn) + (uint64_t)small_bytes + reply_bytes +
	       (uint64_t)replies_max * sizeof(struct conn_reply);
}

void conn_init(struct conn *conn, const struct conn_limits *limits, uint8_t *small, uint8_t *out,
               struct conn_reply *replies)
{
	SKULD_ASSERT(((uintptr_t)small & 7) == 0);
	SKULD_ASSERT(limits->replies_max >= 2);
	SKULD_ASSERT(limits->reply_bytes > CONN_ERROR_RESERVE);
	memset(conn, 0, sizeof(*conn));
	conn->limits = *limits;
	conn->small = small;
	conn->out = out;
	conn->replies = replies;
}

void conn_reset(struct conn *conn, struct frame_pool *pool)
{
	if (conn->body_pooled)
		frame_pool_release(pool, conn->body);
	struct conn_limits limits = conn->limits;
	conn_init(conn, &limits, conn->small, conn->out, conn->replies);
}

static void conn_fail(struct conn *conn, uint32_t status, uint32_t index, bool trusted)
{
	conn->failed = true;
	conn->error_status = status;
	conn->error_index = index;
	conn->header_trusted = trusted;
}

/* The header is complete: the codec's rules, then the server's own limits.
 * Returns SKULD_OK or the status to fail with. */
static uint32_t conn_header_accept(struct conn *conn, bool *trusted)
{
	const struct skuld_header *header = conn_frame_header(conn);
	*trusted = false;
	uint32_t status = proto_header_check(header);
	if (status != SKULD_OK)
		return status;
	*trusted = true;
	/* A client never sends a reply, nor anything this big. */
	if (header->flags & SKULD_FRAME_REPLY)
		return SKULD_ERR_FLAGS;
	if (header->operation == SKULD_OP_SUBMIT && header->count > conn->limits.events_max)
		return SKULD_ERR_SIZE;
	if (header->body_size > conn->limits.body_max)
		return SKULD_ERR_SIZE;
	/* No session yet: REGISTER only, decided before any body byte is kept
	 * (PROTOCOL.md section 8, first frame). */
	if (conn->limits.register_first && !conn->registered &&
	    header->operation != SKULD_OP_REGISTER)
		return SKULD_ERR_NOT_REGISTERED;
	return SKULD_OK;
}

size_t conn_input(struct conn *conn, struct frame_pool *pool, const uint8_t *data, size_t size,
                  enum conn_input *result)
{
	size_t used = 0;
	if (conn->failed) {
		*result = CONN_ERROR;
		return 0;
	}
	if (conn->frame_ready) {
		*result = CONN_FRAME;
		return 0;
	}
	if (conn->header_have < SKULD_HEADER_SIZE) {
		size_t take = SKULD_HEADER_SIZE - conn->header_have;
		take = take < size ? take : size;
		memcpy(conn->header + conn->header_have, data, take);
		conn->header_have += (uint32_t)take;
		used += take;
		if (conn->header_have < SKULD_HEADER_SIZE) {
			*result = CONN_NEED_MORE;
			return used;
		}
		bool trusted = false;
		uint32_t status = conn_header_accept(conn, &trusted);
		if (status != SKULD_OK) {
			conn_fail(conn, status, 0, trusted);
			*result = CONN_ERROR;
			return used;
		}
	}
	const struct skuld_header *header = conn_frame_header(conn);
	uint32_t body_size = header->body_size;
	if (conn->body == NULL) {
		if (body_size <= conn->limits.small_bytes) {
			conn->body = conn->small;
		} else {
			conn->body = frame_pool_acquire(pool);
			if (conn->body == NULL) {
				*result = CONN_BLOCKED;
				return used;
			}
			conn->body_pooled = true;
		}
	}
	if (conn->body_have < body_size) {
		size_t take = body_size - conn->body_have;
		take = take < size - used ? take : size - used;
		memcpy(conn->body + conn->body_have, data + used, take);
		conn->body_have += (uint32_t)take;
		used += take;
		if (conn->body_have < body_size) {
			*result = CONN_NEED_MORE;
			return used;
		}
	}
	uint32_t index = 0;
	uint32_t status = proto_body_check(header, conn->body, &index);
	if (status != SKULD_OK) {
		conn_fail(conn, status, index, true);
		*result = CONN_ERROR;
		return used;
	}
	conn->frame_ready = true;
	*result = CONN_FRAME;
	return used;
}

void conn_frame_done(struct conn *conn, struct frame_pool *pool)
{
	SKULD_ASSERT(conn->frame_ready);
	if (conn->body_pooled)
		frame_pool_release(pool, conn->body);
	conn->body_pooled = false;
	conn->body = NULL;
	conn->header_have = 0;
	conn->body_have = 0;
	conn->frame_ready = false;
}

bool conn_partial(const struct conn *conn)
{
	return !conn->frame_ready && !conn->failed && conn->header_have > 0;
}

/* ---- Output ---------------------------------------------------------------- */

bool conn_reply_fits(const struct conn *conn, uint32_t size)
{
	uint64_t used = conn->out_tail - conn->out_head;
	return used + size + CONN_ERROR_RESERVE <= conn->limits.reply_bytes &&
	       conn->reply_count + 2 <= conn->limits.replies_max;
}

static void conn_reply_queue(struct conn *conn, const void *bytes, uint32_t size, uint64_t tag,
                             bool close)
{
	uint32_t capacity = conn->limits.reply_bytes;
	SKULD_ASSERT(conn->out_tail - conn->out_head + size <= capacity);
	SKULD_ASSERT(conn->reply_count < conn->limits.replies_max);
	uint32_t start = (uint32_t)(conn->out_tail % capacity);
	uint32_t first = capacity - start < size ? capacity - start : size;
	memcpy(conn->out + start, bytes, first);
	memcpy(conn->out, (const uint8_t *)bytes + first, size - first);
	conn->out_tail += size;
	uint32_t slot = (conn->reply_first + conn->reply_count) % conn->limits.replies_max;
	conn->replies[slot] =
	        (struct conn_reply){.end = conn->out_tail, .tag = tag, .close = close};
	conn->reply_count++;
}

void conn_reply_push(struct conn *conn, const void *bytes, uint32_t size, uint64_t tag, bool close)
{
	SKULD_ASSERT(conn_reply_fits(conn, size));
	conn_reply_queue(conn, bytes, size, tag, close);
}

void conn_reply_push_error(struct conn *conn, const void *bytes, uint32_t size, uint64_t tag)
{
	SKULD_ASSERT(size <= CONN_ERROR_RESERVE);
	conn_reply_queue(conn, bytes, size, tag, true);
}

void conn_reply_arrival(struct conn *conn, uint64_t arrival_ns)
{
	SKULD_ASSERT(conn->reply_count > conn->reply_released);
	uint32_t slot = (conn->reply_first + conn->reply_count - 1) % conn->limits.replies_max;
	conn->replies[slot].arrival_ns = arrival_ns;
}

uint64_t conn_release_timed(struct conn *conn, uint64_t durable, uint64_t now_ns,
                            void (*measure)(void *context, uint64_t latency_ns), void *context)
{
	uint64_t before = conn->out_released;
	while (conn->reply_released < conn->reply_count) {
		uint32_t slot =
		        (conn->reply_first + conn->reply_released) % conn->limits.replies_max;
		const struct conn_reply *reply = &conn->replies[slot];
		if (reply->tag > durable)
			break;
		if (measure != NULL && reply->arrival_ns != 0)
			measure(context,
			        now_ns > reply->arrival_ns ? now_ns - reply->arrival_ns : 0);
		conn->out_released = reply->end;
		conn->reply_released++;
	}
	return conn->out_released - before;
}

uint64_t conn_release(struct conn *conn, uint64_t durable)
{
	return conn_release_timed(conn, durable, 0, NULL, NULL);
}

size_t conn_send_span(const struct conn *conn, const uint8_t **data)
{
	if (conn->out_head == conn->out_released)
		return 0;
	uint32_t capacity = conn->limits.reply_bytes;
	uint32_t start = (uint32_t)(conn->out_head % capacity);
	uint64_t pending = conn->out_released - conn->out_head;
	size_t span = capacity - start < pending ? capacity - start : (size_t)pending;
	*data = conn->out + start;
	return span;
}

bool conn_sent(struct conn *conn, size_t count)
{
	SKULD_ASSERT(conn->out_head + count <= conn->out_released);
	conn->out_head += count;
	while (conn->reply_count > 0) {
		struct conn_reply *reply = &conn->replies[conn->reply_first];
		if (reply->end > conn->out_head)
			break;
		SKULD_ASSERT(conn->reply_released > 0);
		if (reply->close)
			conn->close_ready = true;
		conn->reply_first = (conn->reply_first + 1) % conn->limits.replies_max;
		conn->reply_count--;
		conn->reply_released--;
	}
	return conn->close_ready;
}
