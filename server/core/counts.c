/*
 * counts.c — open stock counts; see counts.h.
 */
#include "counts.h"

#include "skuld_assert.h"
#include "stock.h"

static uint64_t count_hash(const void *record)
{
	const struct count *count = record;
	return table_mix(stock_key(count->item, count->location) ^ 0x636f756e74ull);
}

size_t counts_bytes(uint32_t capacity)
{
	return table_bytes(capacity, sizeof(struct count), 1);
}

int counts_init(struct counts *counts, uint32_t capacity)
{
	return table_init(&counts->table, capacity, sizeof(struct count), 1, count_hash);
}

void counts_free(struct counts *counts)
{
	table_free(&counts->table);
}

struct count *counts_find(const struct counts *counts, uint32_t item, uint32_t location)
{
	const struct table *table = &counts->table;
	if (table->used == 0)
		return NULL;
	struct count probe = {.item = item, .location = location};
	uint64_t hash = count_hash(&probe);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct count *count = table_record(table, index);
		if (count->item == item && count->location == location)
			return count;
	}
	return NULL;
}

struct count *counts_open(struct counts *counts, struct journal *journal, uint32_t item,
                          uint32_t location)
{
	uint32_t index = table_alloc(&counts->table);
	SKULD_ASSERT(index != TABLE_NONE);
	struct count *count = table_record(&counts->table, index);
	count->item = item;
	count->location = location;
	table_link(&counts->table, index, count_hash(count));
	journal_push(journal, JOURNAL_TABLE_INSERT, &counts->table, index, 0);
	return count;
}

void counts_close(struct counts *counts, struct journal *journal, struct count *count)
{
	uint32_t index =
	        (uint32_t)(((unsigned char *)count - counts->table.records) / sizeof(struct count));
	table_unlink(&counts->table, index);
	table_release(&counts->table, index);
	journal_push_deleted(journal, &counts->table, index, count, sizeof(*count));
}
