/*
 * stock.c — the counters per (item, location); see stock.h.
 */
#include "stock.h"

#include "skuld_assert.h"

static uint64_t stock_hash(const void *record)
{
	const struct stock *stock = record;
	return table_mix(stock_key(stock->item, stock->location));
}

size_t stock_bytes(uint32_t capacity)
{
	return table_bytes(capacity, sizeof(struct stock), 0);
}

int stock_init(struct stock_table *stocks, uint32_t capacity)
{
	return table_init(&stocks->table, capacity, sizeof(struct stock), 0, stock_hash);
}

void stock_free(struct stock_table *stocks)
{
	table_free(&stocks->table);
}

struct stock *stock_get(struct stock_table *stocks, struct journal *journal, uint32_t item,
                        uint32_t location)
{
	struct stock *stock = stock_find(stocks, item, location);
	if (stock != NULL)
		return stock;
	uint32_t index = table_alloc(&stocks->table);
	SKULD_ASSERT(index != TABLE_NONE);
	stock = table_record(&stocks->table, index);
	stock->item = item;
	stock->location = location;
	table_link(&stocks->table, index, table_mix(stock_key(item, location)));
	journal_push(journal, JOURNAL_TABLE_INSERT, &stocks->table, index, 0);
	return stock;
}
