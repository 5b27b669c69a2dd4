/*
 * stock.h — the counters per (item, location).
 *
 * Owns: one 64-byte entry per (item, location) that a movement has touched,
 * in an append-only table (table.h) indexed by open addressing on the
 * packed pair. Entries are never removed (only an undone chain takes back
 * the entries it created, newest first).
 *
 * Invariants:
 *   - available = on_hand - reserved - committed - damaged - quarantine;
 *     reserved, committed, damaged, quarantine and incoming are >= 0 and
 *     every counter is within [-LEDGER_QUANTITY_MAX, LEDGER_QUANTITY_MAX]
 *     (the movement code checks before it writes).
 *   - A missing entry reads as all zeros.
 */
#ifndef SKULD_STOCK_H
#define SKULD_STOCK_H

#include <assert.h>
#include <stdint.h>

#include "journal.h"
#include "table.h"

struct stock {
	uint32_t item;
	uint32_t location;
	int64_t on_hand;     /* physically at the location, every bucket */
	int64_t reserved;    /* open holds */
	int64_t committed;   /* sold, not yet picked / shipped */
	int64_t damaged;     /* unsellable */
	int64_t quarantine;  /* unsellable */
	int64_t incoming;    /* in transit, on order, expected returns */
	uint64_t counted_at; /* opened_at of the latest applied count, 0 none */
};
static_assert(sizeof(struct stock) == 64, "one cache line per item-location");

static inline int64_t stock_available(const struct stock *stock)
{
	return stock->on_hand - stock->reserved - stock->committed - stock->damaged -
	       stock->quarantine;
}

static inline uint64_t stock_key(uint32_t item, uint32_t location)
{
	return (uint64_t)item | (uint64_t)location << 32;
}

/* The index hash of (item, location). */
static inline uint64_t stock_hash_of(uint32_t item, uint32_t location)
{
	return table_mix(stock_key(item, location));
}

struct stock_table {
	struct table table;
};

size_t stock_bytes(uint32_t capacity);
int stock_init(struct stock_table *stocks, uint32_t capacity);
void stock_free(struct stock_table *stocks);

/* The entry of (item, location), or NULL if it was never created. Inline:
 * every movement and hold makes at least one lookup. */
static inline struct stock *stock_find(const struct stock_table *stocks, uint32_t item,
                                       uint32_t location)
{
	const struct table *table = &stocks->table;
	uint64_t hash = stock_hash_of(item, location);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct stock *stock = table_record(table, index);
		if (stock->item == item && stock->location == location)
			return stock;
	}
	return NULL;
}

/* The entry, created (zeroed, journaled) if missing. The caller has checked
 * stock_room; running out here is a programmer error. */
struct stock *stock_get(struct stock_table *stocks, struct journal *journal, uint32_t item,
                        uint32_t location);

/* The entry with record index `index` (a stock_index result), and back. */
static inline struct stock *stock_at(const struct stock_table *stocks, uint32_t index)
{
	return table_record(&stocks->table, index);
}

static inline uint32_t stock_index(const struct stock_table *stocks, const struct stock *stock)
{
	return (uint32_t)(stock - (const struct stock *)stocks->table.records);
}

/* Entries that can still be created. */
static inline uint32_t stock_room(const struct stock_table *stocks)
{
	return table_room(&stocks->table);
}

#endif /* SKULD_STOCK_H */
