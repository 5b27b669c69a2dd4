/*
 * session.h — the fixed-size table of client sessions.
 *
 * Owns: one entry per client id: the last applied request number and where
 * that request's log record is; which connection (if any) the session is
 * attached to; the LRU order of detached sessions. Pure: no I/O.
 *
 * Saved replies: a session keeps no copy of its last reply. The log record
 * of every applied request stores the results verbatim, so the session keeps
 * only the record's position (write sequence, segment, offset, count); a
 * retry reads the results back from the log (service.c). That costs no
 * memory per session, and the saved reply survives a restart because
 * recovery rebuilds the positions from the log.
 *
 * Invariants:
 *   - At most `capacity` sessions; the hash index has at least 2x slots.
 *   - A session is on the LRU list exactly when no connection owns it; the
 *     list runs from least to most recently used. Only detached sessions
 *     are evicted, so a connected client never loses its session.
 *   - A session whose last record is in the log write still being built is
 *     on the open list; session_seal turns its write-relative offset into a
 *     segment offset once that write is placed.
 */
#ifndef SKULD_SERVER_SESSION_H
#define SKULD_SERVER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define SESSION_NONE 0u /* list link / index value meaning "none" */

struct session {
	skuld_u128 client;       /* client id, non-zero while used */
	uint64_t id;             /* session id given at creation (for logs) */
	uint64_t request_last;   /* last applied request number, 0: none */
	uint64_t record_write;   /* write sequence holding that request's record */
	uint64_t record_segment; /* its segment; 0 while the write is not placed */
	uint64_t record_offset;  /* byte offset: in the segment, or in the write while open */
	uint32_t record_count;   /* events in the record */
	uint64_t owner;          /* connection attached, 0: none */
	uint32_t lru_prev;       /* index + 1, SESSION_NONE */
	uint32_t lru_next;
	uint32_t open_prev; /* index + 1 on the open list, SESSION_NONE */
	uint32_t open_next;
	bool used;
	bool on_lru;
	bool on_open;
};

struct session_table {
	struct session *sessions; /* capacity entries */
	uint32_t capacity;
	uint32_t count;
	uint32_t *slots; /* hash index: index + 1, or SESSION_NONE */
	uint32_t slot_mask;
	uint32_t *free_list; /* unused entry indexes */
	uint32_t free_count;
	uint32_t lru_head; /* least recently used detached session */
	uint32_t lru_tail;
	uint32_t open_head;
	uint64_t id_next;
};

/* Bytes session_table_init allocates for capacity sessions. */
uint64_t session_table_bytes(uint32_t capacity);

/* Returns 0, -EINVAL (capacity 0) or -ENOMEM. */
int session_table_init(struct session_table *table, uint32_t capacity);
void session_table_destroy(struct session_table *table);

/* The session of client, or NULL. */
struct session *session_find(struct session_table *table, skuld_u128 client);

/* A new detached session for client (not in the table), most recently used;
 * NULL when the table is full (evict first). */
struct session *session_create(struct session_table *table, skuld_u128 client);

/* The least recently used detached session, or NULL if all are attached. */
struct session *session_lru_victim(struct session_table *table);

/* Removes session from the table. */
void session_remove(struct session_table *table, struct session *session);

/* Attaches session to connection owner (non-zero): off the LRU list. */
void session_attach(struct session_table *table, struct session *session, uint64_t owner);

/* Detaches it: most recently used on the LRU list. */
void session_detach(struct session_table *table, struct session *session);

/* Moves a detached session to the most recently used end. */
void session_touch(struct session_table *table, struct session *session);

/* Request `request` was applied and its record (count events) appended at
 * offset_in_write of write `write` (still open). */
void session_applied(struct session_table *table, struct session *session, uint64_t request,
                     uint64_t write, uint64_t offset_in_write, uint32_t count);

/* Recovery: request's record is at (segment, offset), in write `write`. */
void session_recovered(struct session_table *table, struct session *session, uint64_t request,
                       uint64_t write, uint64_t segment, uint64_t offset, uint32_t count);

/* The open write was sealed as `write` at (segment, write_offset): every
 * session on the open list learns where its record is. */
void session_seal(struct session_table *table, uint64_t write, uint64_t segment,
                  uint64_t write_offset);

static inline uint32_t session_index(const struct session_table *table,
                                     const struct session *session)
{
	return (uint32_t)(session - table->sessions);
}

#endif /* SKULD_SERVER_SESSION_H */
