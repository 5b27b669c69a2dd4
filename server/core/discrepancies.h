/*
 * discrepancies.h — what the ledger remembers of stock discrepancies: a
 * till SALE that found less available than it sold (SALE_SHORT) and a
 * COUNT_CLOSE whose count differs from the expected balance by more than
 * the configured threshold (COUNT_OFF), one record per (item, location)
 * (docs/LEDGER.md section 13).
 *
 * Owns: a deletable table (table.h) of at most discrepancies_max records
 * keyed by (item, location), the eviction rule when it is full, and the
 * notes a batch makes before they are applied. Handlers never change the
 * table directly: they note what they saw (discrepancies_note), and the
 * notes are applied in event order once the event or linked chain has
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

struct discrepancies {
	struct table table;
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

/* Applies the queued notes in order, then forgets them. */
void discrepancies_flush(struct discrepancies *discrepancies);

/* Forgets the queued notes (their chain failed). */
void discrepancies_discard(struct discrepancies *discrepancies);

/* Puts a record read from a snapshot into the table; the caller checked
 * room, absence and every field. */
void discrepancies_restore(struct discrepancies *discrepancies, const struct discrepancy *record);

/* Sum of the XXH3 hashes of every record, plus the counters, for
 * ledger_hash. */
uint64_t discrepancies_hash(const struct discrepancies *discrepancies);

#endif /* SKULD_DISCREPANCIES_H */
