/*
 * service.h — what the server does with a frame, without any I/O of its own
 * except reading a saved reply back from the log.
 *
 * Owns: the ledger, the session table, the directory and the log writer's
 * append side; the rules of docs/PROTOCOL.md section 8 (REGISTER, request
 * numbers, retries); the group-commit bookkeeping that tags every reply with
 * the log write that must be durable before the reply may leave; hold
 * expiry as server batches of EXPIRE events; the server's figures (STATS).
 *
 * The loop (server/loop.c) owns the I/O: it hands service_frame whole,
 * checked frames in arrival order, seals writes with service_seal when it
 * can start one, performs write + fdatasync, and reports completion with
 * service_durable. Recovery (server/recovery.c) replays the log through
 * service_replay before the loop starts.
 *
 * Group commit and tags: every applied batch goes into the write being
 * built, whose sequence is `write_open`. A reply is tagged with the sequence
 * of the last write that holds anything applied so far (`applied_write`):
 * for a SUBMIT, its own write; for a QUERY, PING or REGISTER computed now,
 * whatever was applied before it. The loop sends a reply only once
 * service_durable_write() >= its tag. So a client never sees a result, or a
 * state, that a crash could still undo.
 *
 * Invariants:
 *   - Nothing is applied to the ledger unless its record fits in the open
 *     write (checked first: SERVICE_WAIT_LOG), so every applied batch is
 *     logged, in apply order, with the timestamp the ledger used.
 *   - Batch timestamps never go backwards (max of the clock and the last).
 *   - A request number is applied at most once per session.
 */
#ifndef SKULD_SERVER_SERVICE_H
#define SKULD_SERVER_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "ledger.h"
#include "ledger_snapshot.h"
#include "log.h"
#include "protocol.h"

struct service_config {
	struct ledger_config ledger;
	uint32_t sessions_max;
	uint32_t events_max;             /* most events per SUBMIT (REGISTER reply's events_max) */
	uint32_t expire_batch;           /* EXPIRE events per service_expire call (K) */
	uint32_t query_limit;            /* records per QUERY page */
	uint32_t query_scan;             /* ids a list QUERY looks at */
	uint32_t write_size_max;         /* the log writer's write_size_max */
	const char *log_dir;             /* segment directory, for saved replies */
	const char *archive_dir;         /* where retention moved older segments; NULL: none */
	const char *token;               /* the single admin token; NULL or "": none */
	const struct auth_table *tokens; /* token.<name> keys; NULL: none. Copied. */
	uint64_t memory_bytes;           /* reported in STATS */
};

/* Per-connection protocol state, kept by the loop in its connection. */
struct service_peer {
	uint32_t session; /* session index + 1; 0: not registered */
	uint64_t session_id;
	uint16_t version; /* negotiated */
	bool registered;
	int32_t token;           /* index in the token table; -1: an open server */
	struct auth_grant grant; /* role and binding (resolved when first needed) */
};

enum service_outcome {
	SERVICE_REPLY = 0,        /* reply is set */
	SERVICE_WAIT_LOG = 1,     /* the open write is full: seal, then call again */
	SERVICE_WAIT_DURABLE = 2, /* call again once write `wait_write` is durable */
};

struct service_reply {
	const uint8_t
	        *data; /* a whole frame, in the service's scratch: valid until the next call */
	uint32_t size;
	uint64_t tag;        /* write that must be durable first; 0: none */
	bool close;          /* an ERROR: close the connection once it is sent */
	uint64_t takeover;   /* owner of a connection to close (its session moved), or 0 */
	uint64_t wait_write; /* SERVICE_WAIT_DURABLE */
};

struct service;

/* Allocates everything. Returns 0, -EINVAL or -ENOMEM. */
int service_create(const struct service_config *config, struct service **out);
void service_destroy(struct service *service);

/* Recovery: applies one logged record (events with its timestamp and source,
 * session and eviction bookkeeping) and checks that every result equals the
 * logged one. Returns 0, or -EPROTO with the first difference described in
 * why. */
int service_replay(struct service *service, const struct log_record *record, char *why,
                   size_t why_size);

/* After recovery: appends go to writer (borrowed until service_destroy),
 * which resumes at position. */
void service_start(struct service *service, struct log_writer *writer,
                   const struct log_position *position, uint64_t now_ns);

/* Handles one whole, checked frame from connection `owner` (non-zero, unique
 * per connection while it lives). now_ns is the loop's clock. */
enum service_outcome service_frame(struct service *service, struct service_peer *peer,
                                   uint64_t owner, uint64_t now_ns,
                                   const struct skuld_header *header, const void *body,
                                   struct service_reply *reply);

/* An ERROR frame for status (SKULD_ERR_*): header may be NULL when it could
 * not be trusted. Tagged like any reply, so earlier replies go first. */
void service_error(struct service *service, const struct service_peer *peer,
                   const struct skuld_header *header, uint32_t status, uint32_t index,
                   const char *message, struct service_reply *reply);

/* Largest reply service_frame can produce for this (checked) header: the
 * room the loop must have before handing the frame over. */
uint32_t service_reply_size_max(const struct service *service, const struct skuld_header *header);

/* The connection `owner` closed: its session becomes evictable. */
void service_peer_close(struct service *service, struct service_peer *peer, uint64_t owner);

/* Writes EXPIRE events for up to expire_batch holds due at now_ns as one
 * server record. Returns how many, or -EAGAIN when the open write is full. */
int service_expire(struct service *service, uint64_t now_ns);

/* True while any hold is open. */
bool service_holds_open(const struct service *service);

/* True when the open write holds records. */
bool service_log_pending(const struct service *service);

/* Seals the open write (log_writer_seal) and places the sessions' records.
 * Returns 0, -ENODATA when nothing is pending, or the writer's error. */
int service_seal(struct service *service, struct log_write *write);

/* The write is on disk (write + fdatasync succeeded) in latency_ns. */
void service_durable(struct service *service, const struct log_write *write, uint64_t latency_ns);

/* Sequence of the last durable write. */
uint64_t service_durable_write(const struct service *service);

/* The running figures; the loop keeps the connection counters in it. */
struct skuld_stats *service_stats(struct service *service);

/* STATS record 1: the loop counts the limits it enforces in it; the service
 * counts denials, refused tokens and a full session table. */
struct skuld_stats_limits *service_limits(struct service *service);

/* Adds one SUBMIT's latency (its arrival to its durable reply's release)
 * to the histogram of STATS record 1. */
void service_latency(struct service *service, uint64_t latency_ns);

/* The ledger (for tests and tools). */
struct ledger *service_ledger(struct service *service);

/* ---- Snapshots (server/snapshot.c writes and reads the files) ---------------
 *
 * A snapshot is taken between log writes: when the open write holds nothing,
 * every applied batch is in a sealed write (durable, or the one in flight),
 * so the state is exactly "the log up to the end of the last sealed write".
 * The service section (docs/FORMAT.md) holds what the service keeps besides
 * the ledger: the sessions with their saved-reply references (LRU order
 * first, then the attached ones) and the last batch time. The directory is
 * rebuilt from the ledger's catalog. */

/* Where a snapshot of the state now resumes the log: the end of the last
 * sealed write, the next write and event sequences and the chain value of
 * the last record. Returns 0, or -EAGAIN while the open write holds
 * records. */
/* The oldest segment a session's saved reply lives in (0: none): what
 * retention must keep when it deletes segments instead of archiving them. */
uint64_t service_reply_segment_min(const struct service *service);

int service_snapshot_position(const struct service *service, struct log_position *position);

/* Bytes service_snapshot_save writes now. */
uint64_t service_snapshot_size(const struct service *service);

/* Writes the service section. Returns 0 or the sink's error. */
int service_snapshot_save(const struct service *service, const struct snapshot_sink *sink);

/* Recovery, after the ledger section was loaded into service_ledger():
 * reads the service section (every session checked against position, the
 * snapshot's log position), then rebuilds the directory from the ledger.
 * The service must otherwise be fresh. Returns 0, or -EBADMSG / -ENODATA /
 * the source's error with one line in reason; then call service_reset. */
int service_snapshot_load(struct service *service, const struct snapshot_source *source,
                          const struct log_position *position, char *reason, size_t reason_size);

/* Back to the state of service_create (a new ledger, no sessions, an empty
 * directory), e.g. after a snapshot that failed to load. Returns 0 or
 * -ENOMEM. Only before service_start. */
int service_reset(struct service *service);

#endif /* SKULD_SERVER_SERVICE_H */
