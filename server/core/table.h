/*
 * table.h — fixed-capacity record slabs with an open-addressing index.
 *
 * Owns: an array of fixed-size records and a power-of-two array of 64-bit
 * index slots (linear probing). A slot holds (low 32 bits of the record's
 * hash) << 32 | (record index + 1); 0 is empty. The stored hash bits give
 * the home slot (so removal never re-hashes) and a tag that skips records
 * without touching them (one cache miss per lookup, not one per probe).
 * Every ledger table (stock, holds, counts, transfers, codes, ...) is one.
 *
 * Invariants:
 *   - Slots are at least twice the record capacity, so the load factor is at
 *     most 1/2 and a probe always finds an empty slot.
 *   - Removal uses backward-shift deletion (no tombstones), so lookups stay
 *     short forever; it needs the record hash, hence the hash callback.
 *   - Records never move: their address is stable while they are live, so
 *     the undo journal may point at their fields.
 *   - Append-only tables (deletable == 0) allocate at `top` only; their
 *     allocation is undone in reverse order by table_unalloc.
 *   - No allocation after table_init.
 */
#ifndef SKULD_TABLE_H
#define SKULD_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define TABLE_NONE UINT32_MAX

typedef uint64_t (*table_hash_fn)(const void *record);

struct table {
	uint64_t *slots;        /* hash32 << 32 | (record index + 1); 0 = empty */
	uint32_t slot_mask;     /* slot count - 1 */
	uint32_t capacity;      /* records */
	uint32_t record_size;   /* bytes per record */
	uint32_t top;           /* records handed out from the end */
	uint32_t used;          /* live records */
	uint32_t free_head;     /* free list head, TABLE_NONE if empty */
	uint32_t *free_next;    /* free list links; NULL for append-only */
	unsigned char *records; /* capacity * record_size bytes */
	table_hash_fn hash;     /* hash of a live record, for removal */
};

/* 64-bit mixer (murmur3 finalizer): full avalanche, no division. */
static inline uint64_t table_mix(uint64_t value)
{
	value ^= value >> 33;
	value *= 0xff51afd7ed558ccdull;
	value ^= value >> 33;
	value *= 0xc4ceb9fe1a85ec53ull;
	value ^= value >> 33;
	return value;
}

static inline void *table_record(const struct table *table, uint32_t index)
{
	return table->records + (size_t)index * table->record_size;
}

static inline uint32_t table_room(const struct table *table)
{
	return table->capacity - table->used;
}

/* First slot of the probe sequence of hash. */
static inline uint32_t table_home(const struct table *table, uint64_t hash)
{
	return (uint32_t)hash & table->slot_mask;
}

/* Walks the probe sequence from *slot: returns the index of the next record
 * whose tag matches hash (the caller compares keys), or TABLE_NONE at the
 * first empty slot. */
static inline uint32_t table_probe(const struct table *table, uint64_t hash, uint32_t *slot)
{
	uint32_t tag = (uint32_t)hash;
	for (;;) {
		uint64_t entry = table->slots[*slot];
		if (entry == 0)
			return TABLE_NONE;
		*slot = (*slot + 1) & table->slot_mask;
		if ((uint32_t)(entry >> 32) == tag)
			return (uint32_t)entry - 1;
	}
}

/* Record index in a non-empty slot value. */
static inline uint32_t table_slot_index(uint64_t entry)
{
	return (uint32_t)entry - 1;
}

/* Prefetch hints for the apply pipeline (ledger.c): the home slot of hash,
 * then (once that is cached) the record it names. Neither changes anything.
 * always_inline: GCC marks a function whose only statement is a prefetch
 * pure and deletes its calls before it would inline them. */
__attribute__((always_inline)) static inline void table_prefetch_slot(const struct table *table,
                                                                      uint64_t hash)
{
	__builtin_prefetch(&table->slots[table_home(table, hash)]);
}

/* The record in the home slot of hash if its tag matches, else NULL: a
 * cheap guess that never walks the probe sequence. */
static inline void *table_peek(const struct table *table, uint64_t hash)
{
	uint64_t entry = table->slots[table_home(table, hash)];
	if (entry == 0 || (uint32_t)(entry >> 32) != (uint32_t)hash)
		return NULL;
	return table_record(table, table_slot_index(entry));
}

__attribute__((always_inline)) static inline void table_prefetch_record(const struct table *table,
                                                                        uint64_t hash)
{
	const void *record = table_peek(table, hash);
	if (record != NULL)
		__builtin_prefetch(record);
}

/* Bytes table_init allocates for these parameters. */
size_t table_bytes(uint32_t capacity, uint32_t record_size, int deletable);

/* Allocates the arrays. Returns 0 or -ENOMEM. */
int table_init(struct table *table, uint32_t capacity, uint32_t record_size, int deletable,
               table_hash_fn hash);
void table_free(struct table *table);

/* Hands out a zeroed record and returns its index, or TABLE_NONE when full. */
uint32_t table_alloc(struct table *table);

/* Puts a record allocated with table_alloc into the index under hash. */
void table_link(struct table *table, uint32_t index, uint64_t hash);

/* Removes a record from the index (its content is kept). */
void table_unlink(struct table *table, uint32_t index);

/* Returns an unlinked record of a deletable table to the free list. */
void table_release(struct table *table, uint32_t index);

/* Undo of table_release: takes index back off the free list head. */
void table_unrelease(struct table *table, uint32_t index);

/* Undo of table_alloc (the record must be unlinked already). */
void table_unalloc(struct table *table, uint32_t index);

#endif /* SKULD_TABLE_H */
