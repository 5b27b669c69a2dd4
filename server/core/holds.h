/*
 * holds.h — the hold table: open holds and recently closed ones.
 *
 * Owns: hold records in a deletable table (table.h) indexed by hold id, and
 * a FIFO ring of closed holds in the order they closed. Open holds are
 * bounded by holds_max (HOLDS_FULL beyond). A closed hold (committed,
 * released, expired) is remembered until closed_at + grace <= batch time or
 * until more than closed_max holds are closed; both are forgotten only in
 * holds_forget at the start of a batch, so within a batch the ring may grow
 * by at most batch_events_max (each event closes at most one hold).
 *
 * Invariants:
 *   - A hold id names at most one record (open or remembered closed).
 *   - Closed-ring order is closing order, which is time order because batch
 *     times never go backwards: forgetting pops from the head only.
 *   - Record memory: open_max + closed_max + batch_max records.
 *   - A plain-item hold's `stock` names the stock entry of (item, location):
 *     entries never move, and one that an undone chain takes back was made
 *     after every hold that could name it (a hold needs stock to exist).
 */
#ifndef SKULD_HOLDS_H
#define SKULD_HOLDS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "ledger.h"
#include "table.h"

struct hold {
	uint64_t id;
	uint64_t expires_at; /* ns; the hold is past due when batch time >= it */
	uint64_t closed_at;  /* batch time it closed; 0 while open */
	int64_t remaining;   /* units of item still held (bundles for a bundle) */
	uint32_t item;
	uint32_t location;
	uint32_t channel; /* 0: a location hold */
	uint32_t state;   /* enum ledger_hold_state */
	/* Not state (ledger_hash stops before it): a cache of the lookup of
	 * (item, location) in the stock table, so a commit or release does not
	 * hash again. The stock record index; TABLE_NONE for a bundle hold. */
	uint32_t stock;
	uint32_t unused[3]; /* zero: one record per cache line */
};
static_assert(sizeof(struct hold) == 64, "one cache line per hold");
#define HOLD_HASHED_BYTES offsetof(struct hold, stock)

struct holds {
	struct table table; /* struct hold, keyed by id */
	uint32_t open;      /* open holds */
	uint32_t open_max;
	uint32_t *closed; /* ring of record indexes, oldest at closed_head */
	uint32_t closed_head;
	uint32_t closed_count;
	uint32_t closed_capacity;
};

size_t holds_bytes(uint32_t open_max, uint32_t closed_max, uint32_t batch_max);
int holds_init(struct holds *holds, uint32_t open_max, uint32_t closed_max, uint32_t batch_max);
void holds_free(struct holds *holds);

/* The record of hold id, or NULL (inline: every hold event makes one). */
static inline struct hold *holds_find(const struct holds *holds, uint64_t id)
{
	const struct table *table = &holds->table;
	uint64_t hash = table_mix(id);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct hold *hold = table_record(table, index);
		if (hold->id == id)
			return hold;
	}
	return NULL;
}

static inline uint32_t holds_index(const struct holds *holds, const struct hold *hold)
{
	return (uint32_t)(((const unsigned char *)hold - holds->table.records) /
	                  sizeof(struct hold));
}

/* A new open hold record for id (journaled); the caller fills the fields.
 * The caller has checked that fewer than open_max holds are open. */
struct hold *holds_insert(struct holds *holds, struct journal *journal, uint64_t id);

/* Marks an open hold closed in state at time now and queues it on the
 * closed ring (journaled). */
void holds_close(struct holds *holds, struct journal *journal, struct hold *hold, uint32_t state,
                 uint64_t now);

/* Snapshot load: a new record with the HOLD_HASHED_BYTES of saved; an open
 * hold counts as open, a closed one goes to the tail of the closed ring.
 * Its stock cache is TABLE_NONE (the caller sets it). The caller checked
 * the fields, that the id is new and that there is room: open < open_max,
 * closed ring not full. Not journaled. */
struct hold *holds_restore(struct holds *holds, const struct hold *saved);

/* Undo of the ring push in holds_close. */
void holds_undo_close_push(struct holds *holds);

/* Forgets closed holds with closed_at + grace_ns <= now, then the oldest
 * while more than closed_max are remembered. Not journaled (batch start). */
void holds_forget(struct holds *holds, uint64_t now, uint64_t grace_ns, uint32_t closed_max);

#endif /* SKULD_HOLDS_H */
