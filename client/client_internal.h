/*
 * client_internal.h — libskuld's private structures, shared by client.c (the
 * calls and their waiting), io.c (the I/O thread) and batch.c (merging).
 *
 * Locking: one mutex per client guards everything below except the socket
 * and the frame buffers, which only the I/O thread touches. A call lives on
 * its caller's stack; it is reachable from the client (queue or in-flight
 * request) only while its caller waits, and its caller unlinks it under the
 * mutex before returning, so the I/O thread never writes to a call, or to
 * the caller's results, after the call returned.
 */
#ifndef SKULD_CLIENT_INTERNAL_H
#define SKULD_CLIENT_INTERNAL_H

#include "skuld/skuld.h"

#include <pthread.h>
#include <stdint.h>

#define SKULD__ASSERT(expression)                                                                  \
	do {                                                                                       \
		if (!(expression))                                                                 \
			skuld__assert_fail(#expression, __FILE__, __LINE__);                       \
	} while (0)

__attribute__((noreturn)) void skuld__assert_fail(const char *expression, const char *file,
                                                  int line);

enum skuld__call_where {
	SKULD__CALL_QUEUED = 1,   /* in client->queue */
	SKULD__CALL_INFLIGHT = 2, /* in a slice of client->request */
	SKULD__CALL_DONE = 3,     /* status is final; nothing points at it */
};

struct skuld__call {
	struct skuld__call *next; /* queue link */
	uint8_t operation;        /* enum skuld_operation */
	uint8_t where;            /* enum skuld__call_where */
	/* SUBMIT: the caller's events and results (borrowed). */
	const struct skuld_event *events;
	uint32_t count;
	struct skuld_result *results;
	/* QUERY / LOOKUP / STATS / PING: request body (borrowed) and where the
	 * reply's records go (reply_capacity records of reply_record_size). */
	const void *body;
	uint32_t body_size;
	void *reply;
	uint32_t reply_record_size;
	uint32_t reply_capacity;
	uint32_t reply_count; /* records the server answered */
	int status;           /* 0, -errno or SKULD_ERR_* once where == DONE */
	pthread_cond_t done;  /* signalled when where becomes DONE */
};

/* FIFO of waiting calls. */
struct skuld__queue {
	struct skuld__call *head;
	struct skuld__call *tail;
	uint32_t length;
};

void skuld__queue_push(struct skuld__queue *queue, struct skuld__call *call);
/* Unlinks call (which must be in queue). */
void skuld__queue_remove(struct skuld__queue *queue, struct skuld__call *call);

/* One caller's part of a merged SUBMIT: events [first, first + count) of the
 * request. call is NULL once its caller gave up (deadline). */
struct skuld__slice {
	struct skuld__call *call;
	uint32_t first;
	uint32_t count;
};

/* The request being sent or waited for; at most one at a time. */
struct skuld__request {
	int active;                  /* 0: none */
	uint8_t operation;           /* enum skuld_operation */
	uint64_t number;             /* SUBMIT: request number once assigned; 0 otherwise */
	uint32_t events;             /* SUBMIT: events in the body */
	uint32_t body_size;          /* other operations: bytes of the request body */
	uint32_t slices_len;         /* slices in use */
	uint32_t sends;              /* times the frame went out */
	struct skuld__slice *slices; /* slices_max entries, allocated at create */
	uint32_t slices_max;
};

/*
 * Merging (batch.c; pure: no locks, no I/O, unit-tested on its own).
 *
 * skuld__batch_take moves calls from queue into request and copies their
 * events into body (room for events_max events):
 *   - If the queue's first call is not a SUBMIT, it is taken alone.
 *   - Otherwise SUBMIT calls are taken in FIFO order (other calls keep their
 *     place) while their events fit in events_max and slices remain; a call
 *     is never split, so neither is any LINKED chain inside it.
 *   - After a call whose last event has LINKED (an open chain, which the
 *     server answers with LINKED_OPEN) nothing more is taken: another
 *     caller's events would otherwise join that chain.
 *   - A first SUBMIT larger than events_max cannot be sent: it is completed
 *     at once with -EMSGSIZE (returned through *rejected) and skipped.
 * Returns the number of calls taken; 0 when the queue holds no call.
 */
uint32_t skuld__batch_take(struct skuld__queue *queue, struct skuld__request *request,
                           struct skuld_event *body, uint32_t events_max,
                           struct skuld__call **rejected);

/* Copies a SUBMIT reply's results (request->events of them, already
 * checked: result i has index i) into each waiting caller's results, with
 * index rebased to the caller's batch, and marks the calls DONE with status
 * 0. Returns the number of results flagged REPLAYED. Does not signal. */
uint64_t skuld__batch_scatter(struct skuld__request *request, const struct skuld_result *results);

/* Marks every call of the request DONE with status (does not signal). */
void skuld__batch_fail(struct skuld__request *request, int status);

/* The client. Fields after the mutex are guarded by it unless noted. */
struct skuld_client {
	/* Set at create, read-only afterwards. */
	char *host;
	char *port;
	char token[SKULD_TOKEN_SIZE];
	char client_name[SKULD_CLIENT_NAME_SIZE];
	skuld_u128 client_id;
	struct skuld_options options; /* string pointers cleared; defaults applied */
	int wake_fd;                  /* eventfd: readable once closing */

	pthread_mutex_t lock;
	pthread_cond_t io_wake;    /* I/O thread waits here for calls or connect */
	pthread_cond_t state_wake; /* skuld_client_connect waits here */
	pthread_t thread;
	int thread_started;
	int closing;
	int connect_wanted; /* 0 after a fatal refusal, until connect is called */
	skuld_state state;
	int last_error;
	uint64_t attempts; /* finished connect attempts (connect waits on it) */
	uint16_t version;
	uint32_t events_max;
	uint64_t session;
	uint64_t request_next;
	struct skuld__queue queue;
	struct skuld__request request;
	uint64_t calls, requests, events, resends, connects, replayed;

	/* TLS: set at create when options ask for it (io.c), read-only after. */
	struct ssl_ctx_st *tls_context; /* OpenSSL SSL_CTX; NULL: plaintext */
	char *tls_server_name;          /* the name the certificate must carry */

	/* I/O thread only. */
	int fd;
	struct ssl_st *tls;            /* the connection's OpenSSL SSL while fd is TLS; else NULL */
	unsigned char *send_buffer;    /* header + up to SKULD_BODY_SIZE_MAX */
	unsigned char *receive_buffer; /* header + up to SKULD_BODY_SIZE_MAX */
	uint32_t send_size;            /* bytes of the frame in send_buffer */
	uint64_t random_state;         /* back-off jitter */
};

/* Sets up TLS from options (io.c): nothing when neither tls_ca_file nor
 * tls_server_name is set. Returns 0, -EINVAL (a CA, certificate or key file
 * that cannot be loaded) or -ENOMEM. */
int skuld__tls_setup(struct skuld_client *client, const struct skuld_options *options);

/* Frees what skuld__tls_setup made. */
void skuld__tls_free(struct skuld_client *client);

/* Starts the I/O thread (io.c); called with the lock held, once. */
int skuld__io_start(struct skuld_client *client);

/* Marks the call DONE with status and wakes its caller (lock held). */
void skuld__call_finish(struct skuld__call *call, int status);

/* Monotonic clock, milliseconds and nanoseconds. */
uint64_t skuld__now_ms(void);

#endif /* SKULD_CLIENT_INTERNAL_H */
