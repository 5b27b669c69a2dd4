/*
 * idempotency.h — the window of remembered idempotency keys.
 *
 * Owns: a FIFO ring of (key, XXH3 of the event bytes, batch time, result)
 * for every client event that succeeded, an open-addressing index from key
 * to ring position, and beside the ring the 32 hash bits of every key (its
 * index tag and home slot). Keys are appended in batch-time order (batch
 * times never go backwards), so the oldest key is always at the head and
 * expiry pops from the head in O(1) per key.
 *
 * Memory traffic, which is what a key costs (the ring and index are far
 * larger than any cache): a key is written once (whole-line streaming
 * stores: the ring line is never read for ownership), its index slot is
 * read at lookup and again at expiry, and its ring entry is read only when
 * the key comes back (a replay) or the chain that made it is undone.
 * Expiry finds how many keys are due by a galloping search over the ring
 * (batch times are sorted), then deletes them through the tags: 4 bytes per
 * key read, not the 64-byte entry.
 *
 * Invariants:
 *   - A key appears at most once in the ring.
 *   - inserted_at never decreases from head to tail.
 *   - tags[p] == (uint32_t)keys_hash(ring[p].key) for every live position.
 *   - Index slots hold (low 32 hash bits) << 32 | (ring position + 1); 0 is
 *     empty; at least 2x capacity slots; backward-shift deletion.
 *   - Only keys_expire removes from the head (at batch start); only an undone
 *     chain removes from the tail (keys_undo_insert).
 *   - Expiry runs in chunks of KEYS_EXPIRE_CHUNK keys: home slots first (a
 *     sequential read of the tags), then a prefetch of every one, then the
 *     deletions, so the chunk's random index misses overlap.
 *   - Ring entries are written with non-temporal stores; keys_publish
 *     (sfence) runs before the ledger returns from a batch, so any thread
 *     that later takes the ledger sees them.
 */
#ifndef SKULD_IDEMPOTENCY_H
#define SKULD_IDEMPOTENCY_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "protocol.h"
#include "table.h"

struct key_entry {
	skuld_u128 key;
	uint64_t event_hash;  /* XXH3-64 of the 128 event bytes */
	uint64_t inserted_at; /* batch time */
	struct skuld_result result;
};
static_assert(sizeof(struct key_entry) == 64, "key entry");

#define KEYS_EXPIRE_CHUNK 64 /* keys whose index slots are fetched together */

struct keys {
	struct key_entry *ring; /* 64-byte aligned: one line per entry */
	uint32_t *tags;         /* per ring position: low 32 bits of keys_hash */
	uint64_t *slots;        /* hash32 << 32 | (ring position + 1); 0 = empty */
	uint32_t slot_mask;
	uint32_t capacity;
	uint32_t head;
	uint32_t count;
};

size_t keys_bytes(uint32_t capacity);
int keys_init(struct keys *keys, uint32_t capacity);
void keys_free(struct keys *keys);

/* The remembered entry of key (hash: keys_hash(key)), or NULL; then *slot
 * is the empty index slot where the probe stopped, which keys_insert takes
 * as long as the index has not changed in between. */
const struct key_entry *keys_find(const struct keys *keys, skuld_u128 key, uint64_t hash,
                                  uint32_t *slot);

static inline int keys_full(const struct keys *keys)
{
	return keys->count == keys->capacity;
}

static inline uint64_t keys_hash(skuld_u128 key)
{
	return table_mix(key.lo ^ table_mix(key.hi));
}

/* Prefetch hint: the index slot of a key hash (always_inline: see stock.h). */
__attribute__((always_inline)) static inline void keys_prefetch(const struct keys *keys,
                                                                uint64_t hash)
{
	__builtin_prefetch(&keys->slots[(uint32_t)hash & keys->slot_mask]);
}

/* Appends a key (journaled) into the empty slot that keys_find returned for
 * it. The caller checked keys_full and keys_find. */
void keys_insert(struct keys *keys, struct journal *journal, skuld_u128 key, uint64_t hash,
                 uint32_t slot, uint64_t event_hash, uint64_t now,
                 const struct skuld_result *result);

/* Orders the streaming stores of keys_insert before later stores (the end
 * of a batch), so the ring is coherent for any thread that follows. */
void keys_publish(void);

/* Undo of the newest keys_insert. */
void keys_undo_insert(struct keys *keys);

/* Forgets keys with now - inserted_at >= window_ns. */
void keys_expire(struct keys *keys, uint64_t now, uint64_t window_ns);

/* Ring entry i (0 = oldest), for hashing. */
static inline const struct key_entry *keys_at(const struct keys *keys, uint32_t i)
{
	uint32_t position = keys->head + i;
	if (position >= keys->capacity)
		position -= keys->capacity;
	return &keys->ring[position];
}

#endif /* SKULD_IDEMPOTENCY_H */
