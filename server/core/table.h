/*
 * table.h — fixed-capacity record slabs with an open-addressing index.
 *
 * Owns: an array of fixed-size records and a power-of-two array of index
 * slots (linear probing). A slot holds record index + 1; 0 is empty. Every
 * ledger table (stock, holds, counts, transfers, codes, ...) is one of these.
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
	uint32_t *slots;         /* record index + 1, 0 = empty */
	uint32_t slot_mask;      /* slot count - 1 */
	uint32_t capacity;       /* records */
	uint32_t record_size;    /* bytes per record */
	uint32_t top;            /* records handed out from the end */
	uint32_t used;           /* live records */
	uint32_t free_head;      /* free list head, TABLE_NONE if empty */
	uint32_t *free_next;     /* free list links; NULL for append-only */
	unsigned char *records;  /* capacity * record_size bytes */
	table_hash_fn hash;      /* hash of a live record, for removal */
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
