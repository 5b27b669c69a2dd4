/*
 * loop.c — the io_uring event loop (loop.h). The only file that includes
 * liburing.
 *
 * Ring: SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them (6.1+),
 * else COOP_TASKRUN, else plain. Completions are drained in batches with
 * io_uring_for_each_cqe + io_uring_cq_advance; every submission carries
 * user_data = op << 56 | connection generation << 32 | connection index.
 *
 * Operations in flight:
 *   - one multishot accept on the listening socket (re-armed when a CQE
 *     comes without IORING_CQE_F_MORE; paused while the refusal queue is
 *     full, see Refusals);
 *   - per connection, one multishot recv over the provided buffer ring
 *     (group RECV_GROUP), re-armed the same way, cancelled while the
 *     connection cannot take input (see backpressure);
 *   - per connection, at most one send: every released reply byte that is
 *     contiguous in its ring, so replies are batched; a short send just
 *     advances and the rest goes next turn;
 *   - at most one log write: a write SQE linked (IOSQE_IO_LINK) to an
 *     fdatasync SQE, both in one submission (a link ends with its
 *     submission); a short write breaks the link and is a disk error. The
 *     storage seam (storage.h) hears of the write before it is submitted
 *     and of both completions before anything of the write is released,
 *     and the loop acts on what the seam returns (test faults, the
 *     power-loss model). With fsync_delay_us (benchmarks and tests only)
 *     a timeout of that length is linked after the fdatasync, and the
 *     write ends when the timeout completes, not the fdatasync: a slower
 *     disk, simulated without blocking the loop;
 *   - a read on a signalfd for SIGINT / SIGTERM.
 * Timers: none in the ring but that delay. The wait itself has a timeout: while holds
 * are open, the next look for due holds (every EXPIRE_PERIOD_NS, so a hold
 * is expired at most that late; until then the ledger already treats a
 * past-due hold as expired for EXTEND and COMMIT), else the housekeeping
 * tick.
 *
 * Snapshots: every turn, right after the log write was started (when the
 * open write is empty), snapshotter_tick may fork the snapshot writer
 * (snapshot.h); the child closes the ring's descriptor with every other one
 * and never touches the ring. The same call reaps it (waitpid WNOHANG) on
 * later turns, which come at least every housekeeping tick.
 *
 * Provided buffers with liburing 2.3: it has io_uring_register_buf_ring and
 * the io_uring_buf_ring_* helpers but not io_uring_setup_buf_ring (2.4), so
 * the ring memory is mmap()ed here and registered by hand. Kernels without
 * buffer rings (before 5.19) or multishot recv (before 6.0) are refused at
 * start-up with a message; there is no second code path.
 *
 * Backpressure: every received buffer is queued on its connection (a list
 * through bid_next) and consumed by conn_input as far as the connection can
 * go. A connection stops consuming when it waits: for a pool buffer (a large
 * frame and the pool is empty), for room in its reply ring (the client does
 * not read), for log space or for durability (a retry of a request not yet
 * on disk). Its unconsumed buffers stay queued; once it holds two, its recv
 * is cancelled, so one stuck client cannot drain the buffer ring. Every
 * turn, waiting connections are tried again.
 *
 * Refusals (over connections_max): an accepted connection with no free slot
 * is queued (at most REFUSE_QUEUE) and answered ERR_BUSY, then closed, after
 * the turn's own work was submitted: at most REFUSE_PER_TURN a turn, so a
 * burst of a storm's connections never holds up the replies and log write of
 * connected clients for more than a few refusals. The loop does not sleep
 * while refusals wait. When the queue is full the multishot accept is
 * cancelled and new connections wait in the kernel's listen backlog (one
 * that finds the backlog full is dropped by the kernel and not seen here);
 * accepting resumes once the queue is down to a quarter. Each refusal is
 * counted (connections_refused) when its ERR_BUSY is sent.
 *
 * Deadlines (housekeeping, every TICK_NS; docs/OPERATIONS.md "Limits under
 * abuse"): a frame with no byte for frame_timeout_ms, or not whole by its
 * first byte + frame_timeout_ms + body_size / frame_min_rate_bytes (checked
 * as it goes: its body may not fall behind that rate by more than
 * frame_timeout_ms), and REGISTER not answered frame_timeout_ms after the
 * accept (absolute, waiting or not); replies that cannot be sent for
 * stall_timeout_ms, and a registered connection without a frame or a byte
 * for idle_timeout_ms (when set, and with nothing in flight either way:
 * no send, no ciphertext out, nothing half received), close it. Time spent
 * waiting on the server restarts the frame deadlines. Housekeeping runs
 * after a turn's completions, on a time read before the kernel is asked
 * for every completion it holds, so a connection whose bytes arrived
 * during a long turn is never judged silent. Before REGISTER a connection
 * takes no frame but REGISTER (conn.h register_first): anything else is
 * refused from its header, so it never holds a pool buffer. Every limit
 * hit is counted in STATS record 1 (service_limits), and each SUBMIT's time
 * from its whole frame to its durable reply's release goes into the latency
 * histogram there.
 *
 * TLS (tls = on | required; tls.h does the TLS, over memory): a
 * connection's first received byte decides its transport. 0x16 starts a
 * TLS session: held receive buffers are fed to it as it asks, and frame
 * assembly takes the plaintext it hands out; released replies are
 * encrypted a record at a time and the send reads the ciphertext in place
 * from the session (valid until tls_sent). A reply marked close, or a
 * broken handshake or record, closes the connection once the ciphertext
 * (an alert at most) is sent. Anything else is plaintext, or, with tls =
 * required, refused: its first header only is taken and answered with
 * ERR_TLS_REQUIRED. Refusals are logged at most once a second, with totals.
 *
 * Group commit, the write state machine:
 *     IDLE --(records pending: service_seal, [create segment], write+fsync)--> IN FLIGHT
 *     IN FLIGHT --(fsync CQE ok: service_durable, release replies)--> IDLE
 *     IN FLIGHT --(write short/error or fsync error)--> stop, exit non-zero
 * (errors as the storage seam returns them). Frames keep being applied into
 * the other buffer while a write is in flight; a write starts as soon as
 * the previous one is durable and anything is pending, never after a timer.
 * The CMake option SKULD_BROKEN_SKIP_FDATASYNC (test-only, deliberately
 * broken) submits the write alone and treats its completion as durable: it
 * exists only to prove that tests/test_server_crash.c catches that.
 */
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Receive buffers are filled by the kernel through the buffer ring, which
 * valgrind's memcheck cannot see; on_recv tells it (a no-op when not run
 * under valgrind, or built without its header). */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(address, size) ((void)(address), (void)(size))
#endif

#include "conn.h"
#include "disk_watch.h"
#include "skuld_assert.h"
#include "storage.h"

#define RING_ENTRIES     1024u
#define RING_CQ_ENTRIES  16384u
#define RECV_GROUP       7
#define HELD_CANCEL_AT   2u                     /* held buffers that cancel a waiting recv */
#define TICK_NS          (250ull * 1000000ull)  /* housekeeping period */
#define DRAIN_NS         (2000ull * 1000000ull) /* shutdown: time to send the last replies */
#define EXPIRE_PERIOD_NS (10ull * 1000000ull)   /* holds expire at most this late */
#define INDEX_NONE       UINT32_MAX
#define REFUSE_QUEUE     256u /* accepted connections waiting for their ERR_BUSY */
#define REFUSE_PER_TURN  8u   /* refusals answered per turn, after its own work */

enum op {
	OP_ACCEPT = 1,
	OP_RECV = 2,
	OP_SEND = 3,
	OP_WRITE = 4,
	OP_FSYNC = 5,
	OP_SIGNAL = 6,
	OP_CANCEL = 7,
	OP_FSYNC_DELAY = 8, /* fsync_delay_us: a timeout linked after the fdatasync */
};

/* How a connection's bytes travel: with tls = on | required the first byte
 * tells (a TLS ClientHello starts with 0x16, a skuld frame with 'S'). */
enum transport {
	TRANSPORT_UNKNOWN = 0, /* nothing received yet */
	TRANSPORT_PLAIN = 1,   /* frames as they are */
	TRANSPORT_TLS = 2,     /* frames inside TLS (tls.h) */
	TRANSPORT_REFUSED = 3, /* plaintext to a tls = required server: its first header
	                          is read, answered with ERR_TLS_REQUIRED, and it closes */
};

enum connection_state {
	CONNECTION_FREE = 0,
	CONNECTION_OPEN = 1,    /* reading and answering */
	CONNECTION_DRAIN = 2,   /* an ERROR is queued: no more input, close once sent */
	CONNECTION_CLOSING = 3, /* shut down; freed when nothing is in flight */
};

struct connection {
	struct conn conn;
	struct service_peer peer;
	int fd;
	uint32_t index;
	uint32_t generation;
	enum connection_state state;
	bool recv_armed;
	bool recv_cancelling;
	bool send_armed;
	bool waiting;       /* could not go on this turn */
	uint32_t held_head; /* first queued buffer id + 1, 0: none */
	uint32_t held_tail;
	uint32_t held_count;
	uint32_t held_offset;    /* bytes of the first buffer already taken */
	uint64_t input_ns;       /* last time input arrived (monotonic) */
	uint64_t send_ns;        /* when the send in flight was armed / progressed */
	uint64_t accept_ns;      /* when it was accepted: REGISTER is due frame_timeout later */
	uint64_t frame_start_ns; /* the frame being assembled took its first byte */
	uint64_t frame_ns;       /* the held frame became whole (SUBMIT latency starts) */
	uint64_t frame_last_ns;  /* the last frame was answered (idle_timeout_ms) */
	bool reply_blocked;      /* waiting for room in its reply ring (counted once) */
	bool pool_blocked;       /* waiting for a pool buffer (counted once) */

	enum transport transport; /* decided by the first byte received */
	struct tls_session *tls;  /* TRANSPORT_TLS: the session (tls.h); else NULL */
	bool tls_closing;         /* TLS: close once the ciphertext out is sent */
};

struct loop {
	struct io_uring ring;
	const struct server_config *config;
	struct service *service;
	struct log_writer *writer;
	int listen_fd;
	int signal_fd;
	struct signalfd_siginfo siginfo;
	bool accept_armed;
	bool accept_paused; /* the refusal queue is full: the listen backlog holds */
	bool signal_armed;
	bool stopping;
	uint64_t stop_deadline_ns;
	enum loop_exit exit;
	bool done;

	struct connection *connections;
	uint32_t connections_max;
	uint32_t *free_slots;
	uint32_t free_count;
	uint32_t *open_list; /* indexes of non-free connections */
	uint32_t open_count;
	uint8_t *connection_memory;

	int refuse_fds[REFUSE_QUEUE]; /* accepted over connections_max, oldest first */
	uint32_t refuse_first;
	uint32_t refuse_count;

	struct frame_pool pool;

	struct io_uring_buf_ring *buffer_ring;
	size_t buffer_ring_size;
	uint8_t *recv_memory;
	uint32_t recv_count;
	uint32_t recv_size;
	uint32_t *bid_next;   /* held-list link per buffer id (+1) */
	uint32_t *bid_length; /* bytes received in it */
	uint32_t held_total;

	struct log_write write;
	bool write_in_flight;
	bool write_failed;
	int write_error;
	uint64_t write_start_ns;
	struct __kernel_timespec fsync_delay; /* fsync_delay_us; the kernel reads it at submit */
	int fsync_result;                     /* the fdatasync's result while its delay runs */

	uint64_t now_ns;    /* CLOCK_REALTIME, read once per turn */
	uint64_t mono_ns;   /* CLOCK_MONOTONIC */
	uint64_t tick_ns;   /* next housekeeping */
	uint64_t expire_ns; /* next look for due holds */

	struct disk_watch disk;        /* the low-disk alarm, sampled from housekeeping */
	struct snapshotter *snapshots; /* background snapshots (snapshot.h), or NULL */

	struct tls_context *tls;     /* tls = on | required; NULL: off */
	uint64_t tls_failures;       /* handshakes or records that broke TLS */
	uint64_t tls_plain_refused;  /* plaintext connections refused (tls = required) */
	uint64_t tls_log_ns;         /* last TLS refusal line (at most one a second) */
	uint64_t tls_log_suppressed; /* refusals since that line, not logged */
};

/* ---- Helpers ------------------------------------------------------------- */

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static uint64_t user_data_pack(enum op op, const struct connection *connection)
{
	if (connection == NULL)
		return (uint64_t)op << 56;
	return (uint64_t)op << 56 | (uint64_t)(connection->generation & 0xffffffu) << 32 |
	       connection->index;
}

static enum op user_data_op(uint64_t data)
{
	return (enum op)(data >> 56);
}

/* The connection a completion belongs to, or NULL when it is stale. */
static struct connection *user_data_connection(struct loop *loop, uint64_t data)
{
	uint32_t index = (uint32_t)data;
	uint32_t generation = (uint32_t)(data >> 32) & 0xffffffu;
	if (index >= loop->connections_max)
		return NULL;
	struct connection *connection = &loop->connections[index];
	if (connection->state == CONNECTION_FREE ||
	    (connection->generation & 0xffffffu) != generation)
		return NULL;
	return connection;
}

static uint64_t connection_owner(const struct connection *connection)
{
	return (uint64_t)connection->generation << 32 | (connection->index + 1);
}

/* An SQE, submitting first when the submission queue is full. */
static struct io_uring_sqe *sqe_get(struct loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
	if (sqe == NULL) {
		io_uring_submit(&loop->ring);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	SKULD_ASSERT(sqe != NULL);
	return sqe;
}

/* ---- Set-up ---------------------------------------------------------------- */

static int ring_setup(struct loop *loop)
{
	static const unsigned flag_sets[] = {
	        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	        IORING_SETUP_COOP_TASKRUN,
	        0,
	};
	int ret = -EINVAL;
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params params;
		memset(&params, 0, sizeof(params));
		params.flags = flag_sets[i] | IORING_SETUP_CQSIZE;
		params.cq_entries = RING_CQ_ENTRIES;
		ret = io_uring_queue_init_params(RING_ENTRIES, &loop->ring, &params);
		if (ret == 0)
			return 0;
		if (ret != -EINVAL)
			break;
	}
	fprintf(stderr, "skuld: io_uring_queue_init: %s\n", strerror(-ret));
	return ret;
}

static int buffers_setup(struct loop *loop)
{
	loop->recv_count = loop->config->recv_buffers;
	loop->recv_size = loop->config->recv_buffer_bytes;
	loop->buffer_ring_size = loop->recv_count * sizeof(struct io_uring_buf);
	void *ring_memory = mmap(NULL, loop->buffer_ring_size, PROT_READ | PROT_WRITE,
	                         MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (ring_memory == MAP_FAILED)
		return -errno;
	loop->buffer_ring = ring_memory;
	loop->recv_memory = aligned_alloc(4096, (size_t)loop->recv_count * loop->recv_size);
	loop->bid_next = calloc(loop->recv_count, sizeof(uint32_t));
	loop->bid_length = calloc(loop->recv_count, sizeof(uint32_t));
	if (loop->recv_memory == NULL || loop->bid_next == NULL || loop->bid_length == NULL)
		return -ENOMEM;
	struct io_uring_buf_reg registration;
	memset(&registration, 0, sizeof(registration));
	registration.ring_addr = (unsigned long)loop->buffer_ring;
	registration.ring_entries = loop->recv_count;
	registration.bgid = RECV_GROUP;
	int ret = io_uring_register_buf_ring(&loop->ring, &registration, 0);
	if (ret != 0) {
		fprintf(stderr,
		        "skuld: provided buffer rings are not available (%s); skuld needs Linux "
		        "6.0 or later\n",
		        strerror(-ret));
		return ret;
	}
	io_uring_buf_ring_init(loop->buffer_ring);
	int mask = io_uring_buf_ring_mask(loop->recv_count);
	for (uint32_t bid = 0; bid < loop->recv_count; bid++)
		io_uring_buf_ring_add(loop->buffer_ring,
		                      loop->recv_memory + (size_t)bid * loop->recv_size,
		                      loop->recv_size, (unsigned short)bid, mask, (int)bid);
	io_uring_buf_ring_advance(loop->buffer_ring, (int)loop->recv_count);
	return 0;
}

static int connections_setup(struct loop *loop)
{
	const struct server_config *config = loop->config;
	loop->connections_max = config->connections_max;
	loop->connections = calloc(loop->connections_max, sizeof(struct connection));
	loop->free_slots = calloc(loop->connections_max, sizeof(uint32_t));
	loop->open_list = calloc(loop->connections_max, sizeof(uint32_t));
	size_t small = ((size_t)config->frame_small_bytes + 63) & ~(size_t)63;
	size_t out = ((size_t)config->reply_bytes + 63) & ~(size_t)63;
	size_t entries =
	        ((size_t)config->replies_max * sizeof(struct conn_reply) + 63) & ~(size_t)63;
	size_t per = small + out + entries;
	loop->connection_memory = aligned_alloc(64, per * loop->connections_max);
	if (loop->connections == NULL || loop->free_slots == NULL || loop->open_list == NULL ||
	    loop->connection_memory == NULL)
		return -ENOMEM;
	struct conn_limits limits = {
	        .small_bytes = config->frame_small_bytes,
	        .body_max = config_body_max(config),
	        .events_max = config->frame_events_max,
	        .reply_bytes = config->reply_bytes,
	        .replies_max = config->replies_max,
	        .register_first = true,
	};
	for (uint32_t i = 0; i < loop->connections_max; i++) {
		struct connection *connection = &loop->connections[i];
		uint8_t *memory = loop->connection_memory + per * i;
		conn_init(&connection->conn, &limits, memory, memory + small,
		          (struct conn_reply *)(memory + small + out));
		connection->index = i;
		connection->fd = -1;
		loop->free_slots[i] = loop->connections_max - 1 - i;
	}
	loop->free_count = loop->connections_max;
	return frame_pool_init(&loop->pool, config->frame_pool, config_body_max(config));
}

static int signals_setup(struct loop *loop)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	loop->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	return loop->signal_fd < 0 ? -errno : 0;
}

static void refusals_run(struct loop *loop, uint32_t limit);

static void loop_teardown(struct loop *loop)
{
	refusals_run(loop, REFUSE_QUEUE);
	for (uint32_t i = 0; loop->connections != NULL && i < loop->connections_max; i++) {
		if (loop->connections[i].fd >= 0)
			close(loop->connections[i].fd);
	}
	if (loop->ring.ring_fd > 0)
		io_uring_queue_exit(&loop->ring);
	if (loop->buffer_ring != NULL)
		munmap(loop->buffer_ring, loop->buffer_ring_size);
	if (loop->signal_fd >= 0)
		close(loop->signal_fd);
	frame_pool_destroy(&loop->pool);
	free(loop->connections);
	free(loop->free_slots);
	free(loop->open_list);
	free(loop->connection_memory);
	free(loop->recv_memory);
	free(loop->bid_next);
	free(loop->bid_length);
}

/* ---- Receive buffers ------------------------------------------------------------ */

static void buffer_recycle(struct loop *loop, uint32_t bid)
{
	int mask = io_uring_buf_ring_mask(loop->recv_count);
	io_uring_buf_ring_add(loop->buffer_ring, loop->recv_memory + (size_t)bid * loop->recv_size,
	                      loop->recv_size, (unsigned short)bid, mask, 0);
	io_uring_buf_ring_advance(loop->buffer_ring, 1);
}

static void held_push(struct loop *loop, struct connection *connection, uint32_t bid,
                      uint32_t length)
{
	loop->bid_next[bid] = 0;
	loop->bid_length[bid] = length;
	if (connection->held_tail != 0)
		loop->bid_next[connection->held_tail - 1] = bid + 1;
	else
		connection->held_head = bid + 1;
	connection->held_tail = bid + 1;
	connection->held_count++;
	loop->held_total++;
}

static void held_pop(struct loop *loop, struct connection *connection)
{
	uint32_t bid = connection->held_head - 1;
	connection->held_head = loop->bid_next[bid];
	if (connection->held_head == 0)
		connection->held_tail = 0;
	connection->held_count--;
	connection->held_offset = 0;
	loop->held_total--;
	buffer_recycle(loop, bid);
}

static void held_drop(struct loop *loop, struct connection *connection)
{
	while (connection->held_head != 0)
		held_pop(loop, connection);
}

/* ---- Connections ---------------------------------------------------------------- */

static void recv_arm(struct loop *loop, struct connection *connection)
{
	struct io_uring_sqe *sqe = sqe_get(loop);
	io_uring_prep_recv_multishot(sqe, connection->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = RECV_GROUP;
	io_uring_sqe_set_data64(sqe, user_data_pack(OP_RECV, connection));
	connection->recv_armed = true;
	connection->recv_cancelling = false;
}

static void recv_cancel(struct loop *loop, struct connection *connection)
{
	if (!connection->recv_armed || connection->recv_cancelling)
		return;
	struct io_uring_sqe *sqe = sqe_get(loop);
	io_uring_prep_cancel64(sqe, user_data_pack(OP_RECV, connection), 0);
	io_uring_sqe_set_data64(sqe, user_data_pack(OP_CANCEL, NULL));
	connection->recv_cancelling = true;
}

/* Starts closing: no more input or output; the slot is freed once nothing is
 * in flight (connection_reap). */
static void connection_close(struct loop *loop, struct connection *connection)
{
	if (connection->state == CONNECTION_CLOSING || connection->state == CONNECTION_FREE)
		return;
	connection->state = CONNECTION_CLOSING;
	service_peer_close(loop->service, &connection->peer, connection_owner(connection));
	held_drop(loop, connection);
	/* Wakes a recv or send in flight: they complete and the slot frees. */
	shutdown(connection->fd, SHUT_RDWR);
	recv_cancel(loop, connection);
}

static void connection_reap(struct loop *loop, struct connection *connection, uint32_t position)
{
	if (connection->state != CONNECTION_CLOSING || connection->recv_armed ||
	    connection->send_armed)
		return;
	close(connection->fd);
	connection->fd = -1;
	conn_reset(&connection->conn, &loop->pool);
	/* No send reads its ciphertext any more (send_armed is false). */
	tls_session_destroy(connection->tls);
	connection->tls = NULL;
	connection->state = CONNECTION_FREE;
	connection->generation++;
	loop->free_slots[loop->free_count++] = connection->index;
	loop->open_list[position] = loop->open_list[--loop->open_count];
	service_stats(loop->service)->connections_open = loop->open_count;
}

static void connection_close_owner(struct loop *loop, uint64_t owner)
{
	uint32_t index = (uint32_t)owner - 1;
	if (index >= loop->connections_max)
		return;
	struct connection *connection = &loop->connections[index];
	if (connection->state != CONNECTION_FREE &&
	    connection->generation == (uint32_t)(owner >> 32))
		connection_close(loop, connection);
}

/* A frame could not be taken: ERROR frame, then close once it is sent. */
static void connection_refuse(struct loop *loop, struct connection *connection, uint32_t status,
                              uint32_t index, const struct skuld_header *header,
                              const char *message)
{
	struct service_reply reply;
	service_error(loop->service, &connection->peer, header, status, index, message, &reply);
	conn_reply_push_error(&connection->conn, reply.data, reply.size, reply.tag);
	connection->state = CONNECTION_DRAIN;
	held_drop(loop, connection);
	recv_cancel(loop, connection);
}

/* Hands the held frame to the service. Returns false when the connection
 * must wait (the frame stays held). */
static bool connection_frame(struct loop *loop, struct connection *connection)
{
	const struct skuld_header *header = conn_frame_header(&connection->conn);
	uint32_t room = service_reply_size_max(loop->service, header);
	if (!conn_reply_fits(&connection->conn, room)) {
		/* Output backpressure: the client does not read its replies, so
		 * its input stops here (and its receive, once two buffers wait). */
		if (!connection->reply_blocked)
			service_limits(loop->service)->reply_waits++;
		connection->reply_blocked = true;
		return false;
	}
	connection->reply_blocked = false;
	bool submit = header->operation == SKULD_OP_SUBMIT;
	struct service_reply reply;
	enum service_outcome outcome =
	        service_frame(loop->service, &connection->peer, connection_owner(connection),
	                      loop->now_ns, header, conn_frame_body(&connection->conn), &reply);
	if (outcome != SERVICE_REPLY)
		return false; /* log full or not yet durable: tried again next turn */
	if (reply.takeover != 0)
		connection_close_owner(loop, reply.takeover);
	if (connection->peer.registered)
		conn_set_registered(&connection->conn); /* every operation from now on */
	conn_reply_push(&connection->conn, reply.data, reply.size, reply.tag, reply.close);
	if (submit && !reply.close)
		conn_reply_arrival(&connection->conn,
		                   connection->frame_ns != 0 ? connection->frame_ns : 1);
	connection->frame_last_ns = loop->mono_ns;
	conn_frame_done(&connection->conn, &loop->pool);
	if (reply.close) {
		connection->state = CONNECTION_DRAIN;
		held_drop(loop, connection);
		recv_cancel(loop, connection);
	}
	return true;
}

static const char *refusal_message(uint32_t status)
{
	switch (status) {
	case SKULD_ERR_MAGIC:
		return "not a skuld frame";
	case SKULD_ERR_SIZE:
		return "frame size out of range for this server";
	case SKULD_ERR_HEADER_CHECKSUM:
		return "header checksum mismatch";
	case SKULD_ERR_BODY_CHECKSUM:
		return "body checksum mismatch";
	case SKULD_ERR_FLAGS:
		return "frame flags not allowed from a client";
	default:
		return skuld_status_name(status);
	}
}

/* True when a refused frame's header announced more than this server takes
 * (body over the pool buffers' size, or more events than frame_events_max):
 * STATS frames_oversize. The header bytes are whole when ERR_SIZE is seen. */
static bool connection_oversize(const struct loop *loop, const struct conn *conn)
{
	if (conn->error_status != SKULD_ERR_SIZE || conn->header_have < SKULD_HEADER_SIZE)
		return false;
	const struct skuld_header *header = conn_frame_header(conn);
	return header->body_size > config_body_max(loop->config) ||
	       (header->operation == SKULD_OP_SUBMIT &&
	        header->count > loop->config->frame_events_max);
}

/* ---- Transport: plaintext or TLS (tls.h) ------------------------------------ */

/* "ADDRESS:PORT" of the connection's peer, for logs. */
static const char *peer_name(const struct connection *connection, char *buffer, size_t size)
{
	struct sockaddr_in address;
	socklen_t length = sizeof(address);
	char host[INET_ADDRSTRLEN] = "?";
	memset(&address, 0, sizeof(address));
	if (getpeername(connection->fd, (struct sockaddr *)&address, &length) == 0 &&
	    address.sin_family == AF_INET)
		inet_ntop(AF_INET, &address.sin_addr, host, sizeof(host));
	snprintf(buffer, size, "%s:%u", host, (unsigned)ntohs(address.sin_port));
	return buffer;
}

/* A TLS refusal, on stderr at most once a second; each line carries the
 * totals and how many refusals went unlogged since the previous line. */
static void tls_log(struct loop *loop, const struct connection *connection, const char *what,
                    const char *why)
{
	if (loop->tls_log_ns != 0 && loop->mono_ns - loop->tls_log_ns < 1000000000ull) {
		loop->tls_log_suppressed++;
		return;
	}
	char peer[64];
	fprintf(stderr,
	        "skuld: tls: %s from %s%s%s (so far: %llu TLS failures, %llu plaintext connections "
	        "refused; %llu not logged since the last line)\n",
	        what, peer_name(connection, peer, sizeof(peer)), why[0] != '\0' ? ": " : "", why,
	        (unsigned long long)loop->tls_failures, (unsigned long long)loop->tls_plain_refused,
	        (unsigned long long)loop->tls_log_suppressed);
	loop->tls_log_ns = loop->mono_ns;
	loop->tls_log_suppressed = 0;
}

/* tls = on | required, first bytes in: a ClientHello starts a TLS session;
 * anything else is plaintext, or refused when TLS is required. */
static void transport_decide(struct loop *loop, struct connection *connection)
{
	uint32_t bid = connection->held_head - 1;
	uint8_t first = loop->recv_memory[(size_t)bid * loop->recv_size + connection->held_offset];
	if (first != TLS_CONTENT_TYPE) {
		connection->transport = loop->config->tls == CONFIG_TLS_REQUIRED ? TRANSPORT_REFUSED
		                                                                 : TRANSPORT_PLAIN;
		return;
	}
	if (tls_session_create(loop->tls, &connection->tls) != 0) {
		fprintf(stderr, "skuld: tls: no memory for a session; connection closed\n");
		connection_close(loop, connection);
		return;
	}
	connection->transport = TRANSPORT_TLS;
}

/* tls = required and a plaintext client: its first header was read (to
 * answer it in its own session's terms); ERR_TLS_REQUIRED, then close. */
static void transport_refuse(struct loop *loop, struct connection *connection)
{
	const struct conn *conn = &connection->conn;
	bool trusted = !conn->failed || conn->header_trusted;
	bool registering = trusted && conn_frame_header(conn)->operation == SKULD_OP_REGISTER;
	loop->tls_plain_refused++;
	tls_log(loop, connection, "plaintext connection refused (tls = required)",
	        registering ? "its REGISTER token crossed the network in clear text; replace "
	                      "that token if the network is not trusted"
	                    : "");
	connection_refuse(loop, connection, SKULD_ERR_TLS_REQUIRED, 0,
	                  trusted ? conn_frame_header(conn) : NULL,
	                  "this server takes TLS connections only (tls = required)");
}

/* The session broke TLS (or the peer closed it): no more input; its alert,
 * if any, is sent, then the connection closes. */
static void tls_input_failed(struct loop *loop, struct connection *connection, ssize_t error)
{
	if (error == -ESHUTDOWN) {
		connection_close(loop, connection); /* close_notify: the client is done */
		return;
	}
	bool handshake = !tls_established(connection->tls);
	loop->tls_failures++;
	tls_log(loop, connection, handshake ? "handshake failed" : "bad TLS record",
	        tls_failure(connection->tls));
	connection->state = CONNECTION_DRAIN;
	connection->tls_closing = true;
	held_drop(loop, connection);
	recv_cancel(loop, connection);
}

/* TLS: decrypted bytes for frame assembly, feeding the session from the
 * held receive buffers as it asks. Each pass feeds a buffer or returns. */
static bool tls_input_next(struct loop *loop, struct connection *connection, const uint8_t **data,
                           size_t *length)
{
	for (;;) {
		ssize_t got = tls_input_span(connection->tls, data);
		if (got > 0) {
			*length = (size_t)got;
			return true;
		}
		if (got == -EAGAIN) {
			connection->waiting = true; /* its output must be sent first */
			return false;
		}
		if (got < 0) {
			tls_input_failed(loop, connection, got);
			return false;
		}
		if (connection->held_head == 0)
			return false;
		uint32_t bid = connection->held_head - 1;
		const uint8_t *cipher =
		        loop->recv_memory + (size_t)bid * loop->recv_size + connection->held_offset;
		size_t fed = tls_feed(connection->tls, cipher,
		                      loop->bid_length[bid] - connection->held_offset);
		if (fed == 0)
			return false;
		connection->held_offset += (uint32_t)fed;
		if (connection->held_offset == loop->bid_length[bid])
			held_pop(loop, connection);
	}
}

/* The next bytes for frame assembly: held receive buffers as they are, or
 * what TLS decrypted from them. While a plaintext client of a tls =
 * required server is refused, only its first header is taken. Returns
 * false when there are none for now (the connection may have closed). */
static bool connection_input_span(struct loop *loop, struct connection *connection,
                                  const uint8_t **data, size_t *length)
{
	if (connection->transport == TRANSPORT_UNKNOWN && connection->held_head != 0)
		transport_decide(loop, connection);
	if (connection->transport == TRANSPORT_TLS)
		return tls_input_next(loop, connection, data, length);
	if (connection->held_head == 0 || connection->state != CONNECTION_OPEN)
		return false;
	uint32_t bid = connection->held_head - 1;
	*data = loop->recv_memory + (size_t)bid * loop->recv_size + connection->held_offset;
	*length = loop->bid_length[bid] - connection->held_offset;
	if (connection->transport == TRANSPORT_REFUSED) {
		size_t header_left = SKULD_HEADER_SIZE - connection->conn.header_have;
		*length = *length < header_left ? *length : header_left;
	}
	return true;
}

/* used bytes of the span connection_input_span gave were taken. */
static void connection_input_take(struct loop *loop, struct connection *connection, size_t used)
{
	if (connection->transport == TRANSPORT_TLS) {
		tls_input_take(connection->tls, used);
		return;
	}
	uint32_t bid = connection->held_head - 1;
	connection->held_offset += (uint32_t)used;
	if (connection->held_offset == loop->bid_length[bid])
		held_pop(loop, connection);
}

/* TLS: encrypts released replies while whole records fit, and returns the
 * ciphertext to send (0: none). A reply marked close, or a failed session,
 * ends with the ciphertext sent: then the connection closes. */
static size_t tls_output(struct loop *loop, struct connection *connection, const uint8_t **data)
{
	struct tls_session *tls = connection->tls;
	const uint8_t *plain = NULL;
	size_t span = 0;
	while (!connection->tls_closing && (span = conn_send_span(&connection->conn, &plain)) > 0) {
		ssize_t taken = tls_write(tls, plain, span);
		if (taken < 0)
			connection->tls_closing = true;
		if (taken <= 0)
			break;
		if (conn_sent(&connection->conn, (size_t)taken)) {
			tls_shutdown(tls);
			connection->tls_closing = true;
		}
	}
	size_t pending = tls_send_span(tls, data);
	if (pending == 0 && connection->tls_closing)
		connection_close(loop, connection);
	return pending;
}

/* Consumes held input as far as the connection can go. */
static void connection_input(struct loop *loop, struct connection *connection)
{
	connection->waiting = false;
	while (connection->state == CONNECTION_OPEN) {
		if (connection->conn.frame_ready) {
			if (!connection_frame(loop, connection)) {
				connection->waiting = true;
				break;
			}
			continue;
		}
		const uint8_t *data = NULL;
		size_t length = 0;
		if (!connection_input_span(loop, connection, &data, &length))
			break;
		if (!conn_partial(&connection->conn))
			connection->frame_start_ns = loop->mono_ns; /* a new frame begins */
		enum conn_input result;
		size_t used = conn_input(&connection->conn, &loop->pool, data, length, &result);
		connection_input_take(loop, connection, used);
		if (connection->transport == TRANSPORT_REFUSED &&
		    connection->conn.header_have == SKULD_HEADER_SIZE) {
			transport_refuse(loop, connection);
			break;
		}
		if (result == CONN_FRAME)
			connection->frame_ns = loop->mono_ns;
		if (result == CONN_BLOCKED) {
			if (!connection->pool_blocked)
				service_limits(loop->service)->pool_waits++;
			connection->pool_blocked = true;
			connection->waiting = true;
			break;
		}
		connection->pool_blocked = false;
		if (result == CONN_ERROR) {
			const struct conn *conn = &connection->conn;
			if (connection_oversize(loop, conn))
				service_limits(loop->service)->frames_oversize++;
			connection_refuse(loop, connection, conn->error_status, conn->error_index,
			                  conn->header_trusted ? conn_frame_header(conn) : NULL,
			                  refusal_message(conn->error_status));
			break;
		}
	}
	if (connection->waiting && connection->held_count >= HELD_CANCEL_AT) {
		if (connection->recv_armed && !connection->recv_cancelling)
			service_limits(loop->service)->recv_paused++;
		recv_cancel(loop, connection);
	}
}

static void connection_send(struct loop *loop, struct connection *connection)
{
	if (connection->send_armed || connection->state == CONNECTION_CLOSING)
		return;
	const uint8_t *data = NULL;
	size_t span = connection->transport == TRANSPORT_TLS
	                      ? tls_output(loop, connection, &data)
	                      : conn_send_span(&connection->conn, &data);
	if (span == 0)
		return;
	struct io_uring_sqe *sqe = sqe_get(loop);
	io_uring_prep_send(sqe, connection->fd, data, span, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, user_data_pack(OP_SEND, connection));
	connection->send_armed = true;
	connection->send_ns = loop->mono_ns;
}

/* ---- Completions ------------------------------------------------------------------ */

static void accept_arm(struct loop *loop)
{
	struct io_uring_sqe *sqe = sqe_get(loop);
	io_uring_prep_multishot_accept(sqe, loop->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, user_data_pack(OP_ACCEPT, NULL));
	loop->accept_armed = true;
}

/* Over connections_max: one ERROR frame without waiting, then close. */
static void accept_refuse(struct loop *loop, int fd)
{
	struct service_peer nobody;
	memset(&nobody, 0, sizeof(nobody));
	struct service_reply reply;
	service_error(loop->service, &nobody, NULL, SKULD_ERR_BUSY, 0,
	              "too many connections; retry later", &reply);
	ssize_t sent = send(fd, reply.data, reply.size, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)sent;
	close(fd);
	service_stats(loop->service)->connections_refused++;
}

/* Answers up to limit queued refusals (oldest first); accepting resumes
 * once the queue is down to a quarter. */
static void refusals_run(struct loop *loop, uint32_t limit)
{
	for (uint32_t done = 0; done < limit && loop->refuse_count > 0; done++) {
		accept_refuse(loop, loop->refuse_fds[loop->refuse_first]);
		loop->refuse_first = (loop->refuse_first + 1) % REFUSE_QUEUE;
		loop->refuse_count--;
	}
	if (loop->accept_paused && loop->refuse_count <= REFUSE_QUEUE / 4)
		loop->accept_paused = false; /* turn re-arms the accept */
}

/* An accepted connection without a slot: queued for its ERR_BUSY. When the
 * queue fills, accepting pauses (the listen backlog holds new connections);
 * accepts completed before the cancel takes effect are refused at once. */
static void refusal_queue(struct loop *loop, int fd)
{
	if (loop->refuse_count == REFUSE_QUEUE) {
		accept_refuse(loop, fd);
		return;
	}
	loop->refuse_fds[(loop->refuse_first + loop->refuse_count) % REFUSE_QUEUE] = fd;
	loop->refuse_count++;
	if (loop->refuse_count == REFUSE_QUEUE && !loop->accept_paused) {
		loop->accept_paused = true;
		if (loop->accept_armed) {
			struct io_uring_sqe *sqe = sqe_get(loop);
			io_uring_prep_cancel64(sqe, user_data_pack(OP_ACCEPT, NULL), 0);
			io_uring_sqe_set_data64(sqe, user_data_pack(OP_CANCEL, NULL));
		}
	}
}

static void on_accept(struct loop *loop, const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		loop->accept_armed = false;
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED)
			fprintf(stderr, "skuld: accept: %s\n", strerror(-cqe->res));
		return;
	}
	int fd = cqe->res;
	if (loop->stopping) {
		close(fd);
		return;
	}
	if (loop->free_count == 0) {
		refusal_queue(loop, fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct connection *connection = &loop->connections[loop->free_slots[--loop->free_count]];
	connection->fd = fd;
	connection->state = CONNECTION_OPEN;
	memset(&connection->peer, 0, sizeof(connection->peer));
	connection->held_head = connection->held_tail = 0;
	connection->held_count = connection->held_offset = 0;
	connection->waiting = false;
	connection->input_ns = loop->mono_ns;
	connection->accept_ns = loop->mono_ns;
	connection->frame_start_ns = connection->frame_ns = 0;
	connection->frame_last_ns = loop->mono_ns;
	connection->reply_blocked = connection->pool_blocked = false;
	connection->transport = loop->tls != NULL ? TRANSPORT_UNKNOWN : TRANSPORT_PLAIN;
	connection->tls = NULL;
	connection->tls_closing = false;
	loop->open_list[loop->open_count++] = connection->index;
	struct skuld_stats *stats = service_stats(loop->service);
	stats->connections_accepted++;
	stats->connections_open = loop->open_count;
	recv_arm(loop, connection);
}

static void on_recv(struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct connection *connection = user_data_connection(loop, cqe->user_data);
	bool has_buffer = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
	uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	if (connection == NULL) {
		if (has_buffer)
			buffer_recycle(loop, bid);
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		connection->recv_armed = false;
	if (cqe->res <= 0) {
		if (has_buffer)
			buffer_recycle(loop, bid);
		/* ENOBUFS: the buffer ring ran dry; re-armed once buffers return.
		 * ECANCELED: we stopped it. Anything else, and EOF, ends it. */
		if (cqe->res == 0 || (cqe->res != -ENOBUFS && cqe->res != -ECANCELED))
			connection_close(loop, connection);
		return;
	}
	SKULD_ASSERT(has_buffer);
	if (connection->state != CONNECTION_OPEN || loop->stopping || loop->done) {
		buffer_recycle(loop, bid);
		return;
	}
	VALGRIND_MAKE_MEM_DEFINED(loop->recv_memory + (size_t)bid * loop->recv_size,
	                          (size_t)cqe->res);
	held_push(loop, connection, bid, (uint32_t)cqe->res);
	connection->input_ns = loop->mono_ns;
	connection_input(loop, connection);
}

static void on_send(struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct connection *connection = user_data_connection(loop, cqe->user_data);
	if (connection == NULL)
		return;
	connection->send_armed = false;
	if (cqe->res < 0) {
		connection_close(loop, connection);
		return;
	}
	connection->send_ns = loop->mono_ns;
	if (connection->state == CONNECTION_CLOSING)
		return;
	if (connection->transport == TRANSPORT_TLS) {
		tls_sent(connection->tls, (size_t)cqe->res); /* replies left at tls_write */
	} else if (conn_sent(&connection->conn, (size_t)cqe->res)) {
		connection_close(loop, connection);
		return;
	}
	connection_send(loop, connection);
}

static void write_fail(struct loop *loop, const char *what, int error)
{
	if (loop->write_failed)
		return;
	loop->write_failed = true;
	loop->write_error = error;
	fprintf(stderr,
	        "skuld: fatal: log %s of write %llu (segment %llu, offset %llu, %u bytes) failed: "
	        "%s. Not retried and nothing of it acknowledged; stopping. A restart recovers from "
	        "the log what is really on disk.\n",
	        what, (unsigned long long)loop->write.sequence,
	        (unsigned long long)loop->write.segment, (unsigned long long)loop->write.offset,
	        loop->write.size, strerror(-error));
	log_writer_fail(loop->writer, error);
	/* Stop now: the rest of this batch of completions must not hand
	 * frames to a failed writer (on_recv checks done). */
	loop->exit = LOOP_EXIT_DISK_ERROR;
	loop->done = true;
}

/* The write in flight ended: result is 0 once its fdatasync completed, or
 * the -errno of the fdatasync. Releases its replies, or stops the loop. */
static void write_finish(struct loop *loop, int result)
{
	loop->write_in_flight = false;
	if (result < 0)
		write_fail(loop, "fdatasync", result == -ECANCELED ? -EIO : result);
	if (loop->write_failed) {
		loop->exit = LOOP_EXIT_DISK_ERROR;
		loop->done = true;
		return;
	}
	service_durable(loop->service, &loop->write, loop->mono_ns - loop->write_start_ns);
}

static void on_write(struct loop *loop, const struct io_uring_cqe *cqe)
{
	const struct log_write *write = &loop->write;
	int result = storage_get()->write_end(write->fd, write->offset, write->size, cqe->res);
	if (result < 0)
		write_fail(loop, "write", result);
	else if ((uint32_t)result != write->size)
		write_fail(loop, "write (short)", -EIO);
#if SKULD_BROKEN_SKIP_FDATASYNC
	/* TEST-ONLY, deliberately broken: no fdatasync was made (none is
	 * reported to the seam), yet the write counts as durable. */
	write_finish(loop, 0);
#endif
}

static void on_fsync(struct loop *loop, const struct io_uring_cqe *cqe)
{
	/* The seam hears of the fdatasync before any reply of the write can
	 * leave (service_durable releases them). */
	int result = storage_get()->sync_end(loop->write.fd, cqe->res);
	if (loop->config->fsync_delay_us != 0) {
		loop->fsync_result = result; /* the write ends with its delay */
		return;
	}
	write_finish(loop, result);
}

/* fsync_delay_us: the timeout linked after the fdatasync completed, with
 * -ETIME once the delay ran out, or -ECANCELED when the write or the
 * fdatasync failed (the link broke). Either way the write ends now, with
 * the fdatasync's result. */
static void on_fsync_delay(struct loop *loop, const struct io_uring_cqe *cqe)
{
	(void)cqe;
	write_finish(loop, loop->fsync_result);
}

static void on_signal(struct loop *loop, const struct io_uring_cqe *cqe)
{
	loop->signal_armed = false;
	if (cqe->res < 0 && cqe->res != -EAGAIN && cqe->res != -EINTR)
		return;
	if (cqe->res > 0 && !loop->stopping) {
		fprintf(stderr, "skuld: %s: finishing in-flight work, then exiting\n",
		        strsignal((int)loop->siginfo.ssi_signo));
		loop->stopping = true;
		loop->stop_deadline_ns = loop->mono_ns + DRAIN_NS;
	}
}

static void on_completion(struct loop *loop, const struct io_uring_cqe *cqe)
{
	switch (user_data_op(cqe->user_data)) {
	case OP_ACCEPT:
		on_accept(loop, cqe);
		break;
	case OP_RECV:
		on_recv(loop, cqe);
		break;
	case OP_SEND:
		on_send(loop, cqe);
		break;
	case OP_WRITE:
		on_write(loop, cqe);
		break;
	case OP_FSYNC:
		on_fsync(loop, cqe);
		break;
	case OP_SIGNAL:
		on_signal(loop, cqe);
		break;
	case OP_CANCEL:
		break;
	case OP_FSYNC_DELAY:
		on_fsync_delay(loop, cqe);
		break;
	}
}

/* ---- Each turn ---------------------------------------------------------------------- */

static void write_start(struct loop *loop)
{
	if (loop->write_in_flight || loop->write_failed || !service_log_pending(loop->service))
		return;
	int ret = service_seal(loop->service, &loop->write);
	SKULD_ASSERT(ret == 0);
	loop->write_in_flight = true;
	loop->write_start_ns = loop->mono_ns;
	const char *failed = NULL;
	if (loop->write.create_segment) {
		/* Blocking, once per segment: pre-allocate, header, fsync, rename,
		 * fsync the directory (log.h), all through the storage seam. */
		ret = log_writer_create_segment(loop->writer, &loop->write);
		failed = "segment creation";
	}
	if (ret == 0) {
		ret = storage_get()->write_begin(loop->write.fd, loop->write.offset,
		                                 loop->write.size);
		failed = "write (storage seam)";
	}
	if (ret != 0) {
		write_fail(loop, failed, ret); /* stops the loop */
		loop->write_in_flight = false;
		return;
	}
	/* Room for every SQE of the link now: it must not be split by a submit. */
	if (io_uring_sq_space_left(&loop->ring) < 3)
		io_uring_submit(&loop->ring);
	struct io_uring_sqe *sqe = sqe_get(loop);
	io_uring_prep_write(sqe, loop->write.fd, loop->write.data, loop->write.size,
	                    loop->write.offset);
	io_uring_sqe_set_data64(sqe, user_data_pack(OP_WRITE, NULL));
#if !SKULD_BROKEN_SKIP_FDATASYNC
	sqe->flags |= IOSQE_IO_LINK;
	sqe = sqe_get(loop);
	io_uring_prep_fsync(sqe, loop->write.fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, user_data_pack(OP_FSYNC, NULL));
	if (loop->config->fsync_delay_us != 0) {
		/* Benchmarks and tests: the write completes that much later, as
		 * on a slower disk; the loop goes on meanwhile. */
		sqe->flags |= IOSQE_IO_LINK;
		sqe = sqe_get(loop);
		io_uring_prep_timeout(sqe, &loop->fsync_delay, 0, 0);
		io_uring_sqe_set_data64(sqe, user_data_pack(OP_FSYNC_DELAY, NULL));
	}
#endif
}

/* True when the frame being assembled is late: elapsed since its first
 * byte is past frame_timeout_ms and, once its header is whole, its body has
 * fallen behind frame_min_rate_bytes by more than that, so it is whole by
 * first byte + frame_timeout_ms + body_size / frame_min_rate_bytes at the
 * latest, and a byte a second cannot hold it open that long. */
static bool frame_late(const struct server_config *config, const struct conn *conn,
                       uint64_t elapsed)
{
	uint64_t frame_timeout = (uint64_t)config->frame_timeout_ms * 1000000ull;
	if (elapsed <= frame_timeout)
		return false;
	if (!conn_header_whole(conn))
		return true;
	/* The time the body bytes received so far buy at the minimum rate. */
	uint64_t earned = (uint64_t)conn->body_have * 1000000000ull / config->frame_min_rate_bytes;
	return elapsed - frame_timeout > earned;
}

/* TLS: ciphertext is waiting to be sent (encrypted replies not yet out). */
static bool tls_output_pending(struct connection *connection)
{
	const uint8_t *data = NULL;
	return connection->tls != NULL && tls_send_span(connection->tls, &data) > 0;
}

/* The deadlines of one connection (OPERATIONS.md, Limits under abuse);
 * each close is counted in STATS record 1. */
static void connection_deadlines(struct loop *loop, struct connection *connection)
{
	const struct server_config *config = loop->config;
	uint64_t frame_timeout = (uint64_t)config->frame_timeout_ms * 1000000ull;
	uint64_t stall_timeout = (uint64_t)config->stall_timeout_ms * 1000000ull;
	uint64_t idle_timeout = (uint64_t)config->idle_timeout_ms * 1000000ull;
	struct skuld_stats_limits *limits = service_limits(loop->service);
	uint64_t now = loop->mono_ns;
	const struct conn *conn = &connection->conn;
	if (connection->state == CONNECTION_OPEN && connection->waiting) {
		/* The REGISTER deadline is absolute: waiting does not extend it. */
		if (!connection->peer.registered && now - connection->accept_ns > frame_timeout &&
		    !conn->frame_ready) {
			limits->closed_unregistered++;
			connection_close(loop, connection);
			return;
		}
		/* Waiting on the server (a pool buffer, reply room, the log) is
		 * not the client's time: its frame deadlines start again. */
		connection->input_ns = connection->frame_start_ns = now;
	} else if (connection->state == CONNECTION_OPEN) {
		/* A frame arriving in pieces: no input for frame_timeout, or late
		 * by frame_late (a byte a second keeps the first rule quiet, not
		 * this one). Waiting on the server (a pool buffer, reply room)
		 * does not count. */
		bool partial =
		        (conn_partial(conn) || connection->held_count > 0) && !conn->frame_ready;
		bool slow = partial && conn_partial(conn) &&
		            frame_late(config, conn, now - connection->frame_start_ns);
		if ((partial && now - connection->input_ns > frame_timeout) || slow) {
			limits->closed_slow++;
			connection_close(loop, connection);
			return;
		}
		if (!connection->peer.registered && now - connection->accept_ns > frame_timeout &&
		    !conn->frame_ready) {
			limits->closed_unregistered++;
			connection_close(loop, connection);
			return;
		}
		/* Idle: no frame answered and no byte received for idle_timeout,
		 * and nothing on its way in or out (a reply queued, a send in
		 * flight, TLS ciphertext not yet sent). */
		uint64_t last = connection->frame_last_ns > connection->input_ns
		                        ? connection->frame_last_ns
		                        : connection->input_ns;
		if (idle_timeout != 0 && connection->peer.registered && !partial &&
		    !conn->frame_ready && conn_output_empty(conn) && !connection->send_armed &&
		    !tls_output_pending(connection) && now - last > idle_timeout) {
			limits->closed_idle++;
			connection_close(loop, connection);
			return;
		}
	}
	if (connection->send_armed && now - connection->send_ns > stall_timeout) {
		limits->closed_stalled++;
		connection_close(loop, connection);
	}
}

static void housekeeping(struct loop *loop)
{
	struct skuld_stats *stats = service_stats(loop->service);
	disk_watch_poll(&loop->disk, loop->mono_ns, stats->log_bytes);
	stats->disk_free_bytes = loop->disk.free_bytes;
	stats->disk_alarm = loop->disk.alarm;
	for (uint32_t i = 0; i < loop->open_count; i++) {
		struct connection *connection = &loop->connections[loop->open_list[i]];
		if (connection->state != CONNECTION_CLOSING)
			connection_deadlines(loop, connection);
	}
}

/* conn_release_timed's measure: a SUBMIT's reply leaves for the client. */
static void latency_measure(void *context, uint64_t latency_ns)
{
	service_latency(context, latency_ns);
}

/* Everything a turn does after its completions: retry waiting connections,
 * expire holds, start a write, release and send replies, re-arm receives. */
static void turn(struct loop *loop)
{
	uint64_t durable = service_durable_write(loop->service);
	for (uint32_t i = 0; i < loop->open_count; i++) {
		struct connection *connection = &loop->connections[loop->open_list[i]];
		if (connection->state == CONNECTION_OPEN && connection->waiting && !loop->stopping)
			connection_input(loop, connection);
	}
	if (!loop->stopping && loop->mono_ns >= loop->expire_ns) {
		/* Listing due holds also walks closed holds' dead timer entries
		 * that are due (timer.h), so it runs every EXPIRE_PERIOD_NS, and
		 * again at once while whole batches of K come out. */
		int expired = service_expire(loop->service, loop->now_ns);
		bool more = expired == (int)loop->config->expire_batch || expired == -EAGAIN;
		loop->expire_ns = more ? loop->mono_ns : loop->mono_ns + EXPIRE_PERIOD_NS;
	}
	write_start(loop);
	/* Right after a write was sealed the open write is empty: the moment
	 * a snapshot can be forked (snapshot.h). Never blocks. */
	snapshotter_tick(loop->snapshots, loop->service, loop->mono_ns,
	                 loop->stopping || loop->write_failed);
	durable = service_durable_write(loop->service);
	for (uint32_t i = 0; i < loop->open_count;) {
		struct connection *connection = &loop->connections[loop->open_list[i]];
		if (connection->state == CONNECTION_OPEN || connection->state == CONNECTION_DRAIN) {
			conn_release_timed(&connection->conn, durable, loop->mono_ns,
			                   latency_measure, loop->service);
			connection_send(loop, connection);
		}
		if (connection->state == CONNECTION_OPEN && !connection->recv_armed &&
		    !loop->stopping && connection->held_count < HELD_CANCEL_AT &&
		    !(connection->waiting && connection->held_count > 0) &&
		    loop->held_total < loop->recv_count)
			recv_arm(loop, connection);
		uint32_t before = loop->open_count;
		connection_reap(loop, connection, i);
		if (loop->open_count == before)
			i++;
	}
	if (!loop->accept_armed && !loop->accept_paused && !loop->stopping && loop->listen_fd >= 0)
		accept_arm(loop);
	if (!loop->signal_armed) {
		struct io_uring_sqe *sqe = sqe_get(loop);
		io_uring_prep_read(sqe, loop->signal_fd, &loop->siginfo, sizeof(loop->siginfo), 0);
		io_uring_sqe_set_data64(sqe, user_data_pack(OP_SIGNAL, NULL));
		loop->signal_armed = true;
	}
}

/* Hands every completion in the queue to its handler. */
static void completions_drain(struct loop *loop)
{
	struct io_uring_cqe *cqe = NULL;
	unsigned head;
	unsigned seen = 0;
	io_uring_for_each_cqe(&loop->ring, head, cqe)
	{
		on_completion(loop, cqe);
		seen++;
	}
	io_uring_cq_advance(&loop->ring, seen);
}

/* Housekeeping, when due, after the turn's completions: the time is read
 * first, then the kernel hands over every completion it holds (deferred
 * task work included), so whatever a client sent before that time is seen
 * before its deadlines are judged, however long the turn was. */
static void housekeeping_due(struct loop *loop)
{
	if (loop->done || loop->mono_ns < loop->tick_ns)
		return;
	loop->now_ns = clock_ns(CLOCK_REALTIME);
	loop->mono_ns = clock_ns(CLOCK_MONOTONIC);
	io_uring_get_events(&loop->ring);
	completions_drain(loop);
	if (loop->done)
		return;
	housekeeping(loop);
	loop->tick_ns = loop->mono_ns + TICK_NS;
}

/* True once a stopping server has nothing left to do. */
static bool stop_complete(struct loop *loop)
{
	if (loop->write_in_flight || service_log_pending(loop->service))
		return false;
	if (loop->mono_ns >= loop->stop_deadline_ns)
		return true;
	for (uint32_t i = 0; i < loop->open_count; i++) {
		const struct connection *connection = &loop->connections[loop->open_list[i]];
		if (connection->state != CONNECTION_CLOSING && connection->send_armed)
			return false;
	}
	return true;
}

static void stop_begin(struct loop *loop)
{
	if (loop->listen_fd < 0)
		return;
	if (loop->accept_armed) {
		struct io_uring_sqe *sqe = sqe_get(loop);
		io_uring_prep_cancel64(sqe, user_data_pack(OP_ACCEPT, NULL), 0);
		io_uring_sqe_set_data64(sqe, user_data_pack(OP_CANCEL, NULL));
	}
	loop->listen_fd = -1; /* main closes it */
	for (uint32_t i = 0; i < loop->open_count; i++)
		recv_cancel(loop, &loop->connections[loop->open_list[i]]);
}

static struct __kernel_timespec wait_time(struct loop *loop)
{
	uint64_t wait = loop->tick_ns > loop->mono_ns ? loop->tick_ns - loop->mono_ns : 0;
	if (service_holds_open(loop->service)) {
		uint64_t until =
		        loop->expire_ns > loop->mono_ns ? loop->expire_ns - loop->mono_ns : 0;
		wait = until < wait ? until : wait;
	}
	struct __kernel_timespec timeout = {
	        .tv_sec = (long long)(wait / 1000000000ull),
	        .tv_nsec = (long long)(wait % 1000000000ull),
	};
	return timeout;
}

static void loop_serve(struct loop *loop)
{
	while (!loop->done) {
		loop->now_ns = clock_ns(CLOCK_REALTIME);
		loop->mono_ns = clock_ns(CLOCK_MONOTONIC);
		turn(loop);
		if (loop->done)
			break;
		if (loop->stopping) {
			stop_begin(loop);
			if (stop_complete(loop)) {
				loop->exit = LOOP_EXIT_SIGNAL;
				break;
			}
		}
		if (loop->refuse_count > 0) {
			/* The turn's replies and log write leave first; then a few
			 * refusals, and no sleep while more wait. */
			io_uring_submit(&loop->ring);
			refusals_run(loop, REFUSE_PER_TURN);
		}
		struct __kernel_timespec timeout = wait_time(loop);
		if (loop->stopping && timeout.tv_sec > 0) {
			timeout.tv_sec = 0;
			timeout.tv_nsec = 50000000;
		}
		if (loop->refuse_count > 0)
			timeout.tv_sec = timeout.tv_nsec = 0;
		struct io_uring_cqe *cqe = NULL;
		int ret = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &timeout, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY)
			fprintf(stderr, "skuld: io_uring wait: %s\n", strerror(-ret));
		loop->now_ns = clock_ns(CLOCK_REALTIME);
		loop->mono_ns = clock_ns(CLOCK_MONOTONIC);
		completions_drain(loop);
		housekeeping_due(loop);
	}
}

enum loop_exit loop_run(const struct server_config *config, struct service *service,
                        struct log_writer *writer, struct snapshotter *snapshots, int listen_fd,
                        struct tls_context *tls)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	if (loop == NULL)
		return LOOP_EXIT_SETUP;
	loop->config = config;
	loop->service = service;
	loop->writer = writer;
	loop->snapshots = snapshots;
	loop->listen_fd = listen_fd;
	loop->signal_fd = -1;
	loop->tls = tls;
	loop->fsync_delay.tv_sec = config->fsync_delay_us / 1000000u;
	loop->fsync_delay.tv_nsec = (long long)(config->fsync_delay_us % 1000000u) * 1000;
	if (config->fsync_delay_us != 0)
		fprintf(stderr,
		        "skuld: fsync_delay_us = %u: every log write completes %u us after its "
		        "fdatasync (for benchmarks and tests only)\n",
		        config->fsync_delay_us, config->fsync_delay_us);
	struct disk_watch_config disk = {
	        .free_percent = config->disk_alarm_percent,
	        .free_bytes = config->disk_alarm_bytes,
	        .hours_left = config->disk_alarm_hours,
	};
	disk_watch_init(&loop->disk, &disk, config->data_dir);
	int ret = ring_setup(loop);
	if (ret == 0)
		ret = buffers_setup(loop);
	if (ret == 0)
		ret = connections_setup(loop);
	if (ret == 0)
		ret = signals_setup(loop);
	enum loop_exit exit_reason = LOOP_EXIT_SETUP;
	if (ret == 0) {
		loop_serve(loop);
		exit_reason = loop->exit;
	} else {
		fprintf(stderr, "skuld: event loop set-up failed: %s\n", strerror(-ret));
	}
	loop_teardown(loop);
	free(loop);
	return exit_reason;
}
