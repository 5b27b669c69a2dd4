/*
 * journal.h — the undo journal that makes a linked chain all-or-nothing.
 *
 * Owns: a bounded array of undo entries recorded while a chain of two or
 * more events is being applied. Each entry says how to put one thing back:
 * a few bytes of a record, a record inserted into or deleted from a table,
 * a timer change, a closed-hold push, an idempotency key insert. Undoing
 * runs the entries newest first, so every structure returns to exactly the
 * state it had when the chain began (ledger.c dispatches the kinds).
 *
 * Invariants:
 *   - Entries are recorded only while `active`; single events are checked
 *     completely before they change anything and need no journal.
 *   - Capacity is chain_events_max * the most entries one event can make
 *     (ledger.c computes it); overflowing it is a programmer error.
 */
#ifndef SKULD_JOURNAL_H
#define SKULD_JOURNAL_H

#include <stdint.h>
#include <string.h>

#define JOURNAL_BYTES_MAX 40

enum journal_kind {
	JOURNAL_BYTES = 1,        /* target: field; bytes: old content */
	JOURNAL_TABLE_INSERT = 2, /* target: struct table; index: record */
	JOURNAL_TABLE_DELETE = 3, /* target: struct table; index; bytes: record */
	JOURNAL_TIMER_INSERT = 4, /* index: hold record */
	JOURNAL_TIMER_REMOVE = 5, /* index: hold record; value: expires_at */
	JOURNAL_TIMER_UPDATE = 6, /* index: hold record; value: old expires_at */
	JOURNAL_CLOSED_PUSH = 7,  /* a hold pushed on the closed ring */
	JOURNAL_KEY_INSERT = 8,   /* an idempotency key appended */
};

struct journal_entry {
	uint32_t kind;  /* enum journal_kind */
	uint32_t size;  /* JOURNAL_BYTES: bytes saved */
	uint32_t index; /* record index */
	uint32_t unused;
	void *target;   /* field address or table */
	uint64_t value; /* old timer key, hold id */
	unsigned char bytes[JOURNAL_BYTES_MAX];
};

struct journal {
	struct journal_entry *entries;
	uint32_t count;
	uint32_t capacity;
	int active; /* recording */
};

/* Allocates capacity entries. Returns 0 or -ENOMEM. */
int journal_init(struct journal *journal, uint32_t capacity);
void journal_free(struct journal *journal);

/* Records an entry (asserts capacity); journal_push does so only if active. */
void journal_record(struct journal *journal, uint32_t kind, void *target, uint32_t index,
                    uint64_t value);

static inline void journal_push(struct journal *journal, uint32_t kind, void *target,
                                uint32_t index, uint64_t value)
{
	if (journal->active)
		journal_record(journal, kind, target, index, value);
}

/* Records a deleted table record with its content (size <= 40) if active. */
void journal_push_deleted(struct journal *journal, void *table, uint32_t index, const void *record,
                          uint32_t size);

/* Saves size bytes at target (any size; split into pieces) if active. */
void journal_save(struct journal *journal, void *target, uint32_t size);

static inline void journal_set_i64(struct journal *journal, int64_t *field, int64_t value)
{
	if (journal->active)
		journal_save(journal, field, sizeof(*field));
	*field = value;
}

static inline void journal_set_u64(struct journal *journal, uint64_t *field, uint64_t value)
{
	if (journal->active)
		journal_save(journal, field, sizeof(*field));
	*field = value;
}

static inline void journal_set_u32(struct journal *journal, uint32_t *field, uint32_t value)
{
	if (journal->active)
		journal_save(journal, field, sizeof(*field));
	*field = value;
}

static inline void journal_set_u8(struct journal *journal, uint8_t *field, uint8_t value)
{
	if (journal->active)
		journal_save(journal, field, sizeof(*field));
	*field = value;
}

#endif /* SKULD_JOURNAL_H */
