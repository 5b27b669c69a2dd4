/*
 * conn.h — one client connection's bytes: frame assembly from the received
 * stream, and the queue of replies waiting to be sent. Pure code: no
 * sockets, no io_uring (server/loop.c moves the bytes), so every path is
 * unit-tested with plain buffers (tests/test_conn.c).
 *
 * Owns:
 *   - Input: a frame is assembled as a 64-byte header first, checked with
 *     proto_header_check (plus the server's own limits) before a single body
 *     byte is kept, then its body: into the connection's own small buffer
 *     when body_size <= small_bytes, else into a buffer from the shared
 *     frame pool. A connection that cannot get a pool buffer stops
 *     (CONN_BLOCKED) until one frees; the bytes it has not taken stay with
 *     the caller. The whole frame is then checked with proto_body_check.
 *     With register_first, until conn_set_registered a header of any
 *     operation but REGISTER fails (SKULD_ERR_NOT_REGISTERED) on the header
 *     alone, so a connection without a session never takes a pool buffer.
 *   - Output: a ring of reply_bytes bytes and of replies_max entries. Each
 *     reply carries a tag, the log write that must be durable before it may
 *     be sent; replies are released strictly in order, so a reply never
 *     overtakes an earlier one on the same connection.
 *
 * Invariants:
 *   - At most one frame is held (frame_ready) until conn_frame_done.
 *   - A pool buffer is held only while a large frame is being received or
 *     processed; conn_frame_done returns it.
 *   - out_head <= out_released <= out_tail, out_tail - out_head <= reply_bytes.
 *   - CONN_ERROR_RESERVE bytes and one entry are always left for an ERROR
 *     frame: conn_reply_fits keeps them back, conn_reply_push_error may use
 *     them. So an ERROR can always be queued, whatever else is queued.
 */
#ifndef SKULD_SERVER_CONN_H
#define SKULD_SERVER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define CONN_ERROR_RESERVE 256u /* >= header + ERROR body (128 bytes) */

/* ---- The large-frame pool ---------------------------------------------- */

/* count buffers of size bytes, 64-byte aligned, allocated once. */
struct frame_pool {
	uint8_t *memory;
	uint32_t count;
	uint32_t size;
	uint32_t *free_list; /* indexes of free buffers */
	uint32_t free_count;
};

/* Returns 0 or -ENOMEM. */
int frame_pool_init(struct frame_pool *pool, uint32_t count, uint32_t size);
void frame_pool_destroy(struct frame_pool *pool);

/* A free buffer, or NULL when every buffer is taken. */
uint8_t *frame_pool_acquire(struct frame_pool *pool);

/* Returns buffer (from frame_pool_acquire) to the pool. */
void frame_pool_release(struct frame_pool *pool, uint8_t *buffer);

/* ---- Connections ---------------------------------------------------------- */

struct conn_limits {
	uint32_t small_bytes; /* bodies up to this: the connection's own buffer */
	uint32_t body_max;    /* larger bodies (pool buffers) up to this */
	uint32_t events_max;  /* most events in one SUBMIT */
	uint32_t reply_bytes; /* reply ring size */
	uint32_t replies_max; /* reply ring entries, >= 2 */
	bool register_first;  /* only REGISTER is taken until conn_set_registered */
};

struct conn_reply {
	uint64_t end;        /* out position one past the reply's last byte */
	uint64_t tag;        /* log write that must be durable first; 0: none */
	uint64_t arrival_ns; /* when its request arrived, if measured; 0: not */
	bool close;          /* close the connection once it is sent */
};

enum conn_input {
	CONN_NEED_MORE = 0, /* every byte taken; no whole frame yet */
	CONN_FRAME = 1,     /* a checked frame is ready: conn_frame_header / _body */
	CONN_BLOCKED = 2,   /* the body needs a pool buffer and none is free */
	CONN_ERROR = 3,     /* the frame is malformed: error_status, error_index */
};

struct conn {
	struct conn_limits limits;
	/* Input. */
	_Alignas(8) uint8_t header[SKULD_HEADER_SIZE];
	uint32_t header_have;  /* header bytes received */
	uint32_t body_have;    /* body bytes received */
	uint8_t *small;        /* small_bytes, 8-byte aligned, owned by the caller */
	uint8_t *body;         /* small or a pool buffer; NULL until the header passed */
	bool body_pooled;      /* body is a pool buffer */
	bool frame_ready;      /* a whole, checked frame is held */
	bool failed;           /* a malformed frame was seen; input is over */
	bool header_trusted;   /* failed after the header passed proto_header_check */
	uint32_t error_status; /* SKULD_ERR_* */
	uint32_t error_index;  /* failing record */
	bool registered;       /* conn_set_registered: any operation is taken */
	/* Output. */
	uint8_t *out;               /* reply_bytes, owned by the caller */
	uint64_t out_head;          /* sent up to here */
	uint64_t out_released;      /* may be sent up to here */
	uint64_t out_tail;          /* queued up to here */
	struct conn_reply *replies; /* replies_max entries, owned by the caller */
	uint32_t reply_first;       /* oldest queued entry */
	uint32_t reply_count;       /* entries queued (sent ones are dropped) */
	uint32_t reply_released;    /* of those, released */
	bool close_ready;           /* a reply marked close was sent completely */
};

/* Bytes one connection needs: the struct plus the memory conn_init borrows. */
uint64_t conn_memory_bytes(uint32_t small_bytes, uint32_t reply_bytes, uint32_t replies_max);

/* Prepares conn with caller memory: small (limits->small_bytes, 8-byte
 * aligned), out (limits->reply_bytes), replies (limits->replies_max). */
void conn_init(struct conn *conn, const struct conn_limits *limits, uint8_t *small, uint8_t *out,
               struct conn_reply *replies);

/* Forgets everything (returning a held pool buffer) so the slot can serve a
 * new connection. */
void conn_reset(struct conn *conn, struct frame_pool *pool);

/* Takes bytes from data for the frame being assembled and reports what
 * happened; returns how many bytes were taken. Stops at the end of a frame
 * (CONN_FRAME: the bytes after it are not taken), when blocked on the pool,
 * or at the first malformed frame (CONN_ERROR: the connection is done).
 * While a frame is held it takes nothing and reports CONN_FRAME again.
 * size may be 0 (to retry a blocked connection). */
size_t conn_input(struct conn *conn, struct frame_pool *pool, const uint8_t *data, size_t size,
                  enum conn_input *result);

/* The held frame (after CONN_FRAME). The body is 8-byte aligned. */
static inline const struct skuld_header *conn_frame_header(const struct conn *conn)
{
	return (const struct skuld_header *)conn->header;
}

static inline const uint8_t *conn_frame_body(const struct conn *conn)
{
	return conn->body;
}

/* Done with the held frame: returns its pool buffer; assembly starts over. */
void conn_frame_done(struct conn *conn, struct frame_pool *pool);

/* The connection's REGISTER was answered: frames of every operation are
 * taken from now on (see register_first). */
static inline void conn_set_registered(struct conn *conn)
{
	conn->registered = true;
}

/* True once the header of the frame being assembled (or held) is whole
 * and passed its checks; its body_size is then known (body_have so far). */
static inline bool conn_header_whole(const struct conn *conn)
{
	return conn->header_have == SKULD_HEADER_SIZE && !conn->failed;
}

/* True while part of a frame has arrived but not all of it. */
bool conn_partial(const struct conn *conn);

/* True when a reply of size bytes can be queued (room left for an ERROR). */
bool conn_reply_fits(const struct conn *conn, uint32_t size);

/* Queues a reply (copied). conn_reply_fits must have said yes. */
void conn_reply_push(struct conn *conn, const void *bytes, uint32_t size, uint64_t tag, bool close);

/* Queues an ERROR frame into the reserve: always fits (size <= 128). */
void conn_reply_push_error(struct conn *conn, const void *bytes, uint32_t size, uint64_t tag);

/* Marks the reply queued last (not yet released) as measured: its request
 * arrived at arrival_ns (non-zero, the caller's clock). */
void conn_reply_arrival(struct conn *conn, uint64_t arrival_ns);

/* Releases, in order, the replies whose tag <= durable. Returns how many
 * bytes became sendable. */
uint64_t conn_release(struct conn *conn, uint64_t durable);

/* conn_release, and for each released reply marked by conn_reply_arrival
 * calls measure(context, now_ns - its arrival). measure may be NULL. */
uint64_t conn_release_timed(struct conn *conn, uint64_t durable, uint64_t now_ns,
                            void (*measure)(void *context, uint64_t latency_ns), void *context);

/* Contiguous released bytes not yet sent (0 if none); *data points at them. */
size_t conn_send_span(const struct conn *conn, const uint8_t **data);

/* count bytes of the span were sent. Returns true once a reply marked close
 * has been sent completely. */
bool conn_sent(struct conn *conn, size_t count);

/* Replies queued and not yet released (waiting for durability). */
static inline bool conn_unreleased(const struct conn *conn)
{
	return conn->reply_released < conn->reply_count;
}

/* Nothing queued at all. */
static inline bool conn_output_empty(const struct conn *conn)
{
	return conn->out_head == conn->out_tail;
}

#endif /* SKULD_SERVER_CONN_H */
