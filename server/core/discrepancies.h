/*
 * discrepancies.h — what the ledger remembers of stock discrepancies: a
 * till SALE that found less available than it sold (SALE_SHORT) and a
 * COUNT_CLOSE whose count differs from the expected balance by more than
 * the configured threshold (COUNT_OFF), one record per (item, location)
 * (docs/LEDGER.md section 13).
 *
 * Owns: a deletable table (table.h) of at most discrepancies_max records
 * keyed by (item, location), a binary min-heap of the live record indices
 * in eviction order (so choosing a victim costs O(log n), not a scan), a
 * treap of them in (location, item) order (for listing), the tracking origin, and the notes a batch
 * makes before they are applied. Handlers never change the table directly: they note what they saw
 * (discrepancies_note), and the notes are applied in event order once the event or linked chain has
 * succeeded (discrepancies_flush) or thrown away when it failed
 * (discrepancies_discard), as push_state.c does with its touches, so the
 * undo journal never sees this table.
 *
 * Invariants:
 *   - At most one record per (item, location); at most capacity records.
 *   - A record is open or acknowledged; occurrences >= 1; first_sequence <=
 *     last_sequence; first_at <= last_at unless an event came in with an
 *     earlier occurred_at (times are the events', not the batch's).
 *   - Full table, new (item, location): the acknowledged record with the
 *     smallest (last_sequence, location, item) is evicted; when none is
 *     acknowledged, the open record with the smallest such key is evicted
 *     and counted in `dropped`. The choice depends only on the records, so
 *     replay evicts exactly the same ones.
 *   - heap[0 .. table.used) holds every live record index once, each
 *     position no later in eviction order than its children; heap_at[index]
 *     is the position of record index (valid only while it is live). The
 *     order is total (keys are unique), so heap[0] is the victim above.
 *   - order_root, order_left, order_right: a treap of the live record
 *     indices, a binary search tree by (location, item) and a heap by a
 *     hash of that key, so listing a page costs O(limit * log n) expected,
 *     not a scan. Its shape depends only on the keys held.
 *   - origin: notes of events whose log sequence is below it are never
 *     applied (tracking began there: a ledger restored from a version 2
 *     snapshot); 0 or 1 means from the first event. DISCREPANCIES_ORIGIN_NEXT
 *     means "from the next sequence the ledger is given" (ledger.c resolves
 *     it before any note is made).
 *   - No allocation after discrepancies_init.
 */
#ifndef SKULD_DISCREPANCIES_H
#define SKULD_DISCREPANCIES_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

enum discrepancy_kind {
	DISCREPANCY_SALE_SHORT = 1u << 0, /* sold more than the ledger showed available */
	DISCREPANCY_COUNT_OFF = 1u << 1,  /* a count off by more than the threshold */
};
#define DISCREPANCY_KINDS_KNOWN 0x03u

/* One record: 64 bytes, the snapshot record as well (docs/FORMAT.md). */
struct discrepancy {
	uint32_t item;
	uint32_t location;
	uint64_t first_sequence; /* log sequence of the first event of this episode */
	uint64_t last_sequence;  /* of the latest */
	uint64_t first_at;       /* event time (occurred_at, else batch time) of the first */
	uint64_t last_at;        /* of the latest */
	int64_t expected;        /* latest: the ledger's figure (available, expected count) */
	int64_t found;           /* latest: units sold, or units counted */
	uint32_t occurrences;    /* events in this episode (saturates) */
	uint8_t kinds;           /* enum discrepancy_kind seen in this episode */
	uint8_t last_kind;       /* enum discrepancy_kind of the latest */
	uint8_t acknowledged;    /* 1 after DISCREPANCY_ACK, until the next event */
	uint8_t reserved;        /* zero */
};
_Static_assert(sizeof(struct discrepancy) == 64, "discrepancy record");

enum discrepancy_note_kind {
	NOTE_SALE_SHORT = DISCREPANCY_SALE_SHORT,
	NOTE_COUNT_OFF = DISCREPANCY_COUNT_OFF,
	NOTE_ACK = 0x80,
};

struct discrepancy_note {
	uint32_t item;
	uint32_t location;
	uint64_t sequence;
	uint64_t at;
	int64_t expected;
	int64_t found;
	uint32_t kind; /* enum discrepancy_note_kind */
	uint32_t unused;
};

/* origin: from the next log sequence (a version 2 snapshot was loaded). */
#define DISCREPANCIES_ORIGIN_NEXT UINT64_MAX

struct discrepancies {
	struct table table;
	uint32_t *heap;       /* live record indices, eviction order (a min-heap) */
	uint32_t *heap_at;    /* per record index: its position in heap */
	uint32_t *order_left; /* per record index: treap children, TABLE_NONE if none */
	uint32_t *order_right;
	uint32_t order_root;            /* TABLE_NONE when empty */
	uint64_t origin;                /* notes of events below this sequence are ignored */
	struct discrepancy_note *notes; /* pending until flush or discard */
	uint32_t note_count;
	uint32_t note_capacity;
	uint64_t dropped; /* open records evicted to make room */
	uint64_t evicted; /* acknowledged records evicted to make room */
};

/* Bytes discrepancies_init allocates. */
size_t discrepancies_bytes(uint32_t capacity, uint32_t note_capacity);

/* Allocates the table and note_capacity notes. Returns 0 or -ENOMEM. */
int discrepancies_init(struct discrepancies *discrepancies, uint32_t capacity,
                       uint32_t note_capacity);
void discrepancies_free(struct discrepancies *discrepancies);

/* The record of (item, location), or NULL. */
const struct discrepancy *discrepancies_find(const struct discrepancies *discrepancies,
                                             uint32_t item, uint32_t location);

/* Queues a note (asserts room: the ledger sizes notes for the longest
 * chain of the widest bundle). */
void discrepancies_note(struct discrepancies *discrepancies, const struct discrepancy_note *note);

/* Applies the queued notes in order (those of events below origin are
 * skipped), then forgets them. */
void discrepancies_flush(struct discrepancies *discrepancies);

/* Forgets the queued notes (their chain failed). */
void discrepancies_discard(struct discrepancies *discrepancies);

/* Puts a record read from a snapshot into the table and the eviction heap;
 * the caller checked room, absence and every field. */
void discrepancies_restore(struct discrepancies *discrepancies, const struct discrepancy *record);

/* The record index the next eviction would take (heap top), or TABLE_NONE
 * when the table is empty. For tests and the eviction itself. */
uint32_t discrepancies_victim(const struct discrepancies *discrepancies);

/* The record index with the smallest (location, item), as
 * (uint64_t)location << 32 | item, greater than after; TABLE_NONE if none.
 * O(log n) expected. */
uint32_t discrepancies_next(const struct discrepancies *discrepancies, uint64_t after);

/* Sum of the XXH3 hashes of every record, plus the counters, for
 * ledger_hash. */
uint64_t discrepancies_hash(const struct discrepancies *discrepancies);

#endif /* SKULD_DISCREPANCIES_H */
