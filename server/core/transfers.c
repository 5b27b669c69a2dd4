/*
 * transfers.c — open transfer lines; see transfers.h.
 */
#include "transfers.h"

#include "skuld_assert.h"

static uint64_t transfer_key_hash(uint64_t id, uint32_t item)
{
	return table_mix(id ^ table_mix(item));
}

static uint64_t transfer_hash(const void *record)
{
	const struct transfer *transfer = record;
	return transfer_key_hash(transfer->id, transfer->item);
}

size_t transfers_bytes(uint32_t capacity)
{
	return table_bytes(capacity, sizeof(struct transfer), 1);
}

int transfers_init(struct transfers *transfers, uint32_t capacity)
{
	return table_init(&transfers->table, capacity, sizeof(struct transfer), 1, transfer_hash);
}

void transfers_free(struct transfers *transfers)
{
	table_free(&transfers->table);
}

struct transfer *transfers_find(const struct transfers *transfers, uint64_t id, uint32_t item)
{
	const struct table *table = &transfers->table;
	uint64_t hash = transfer_key_hash(id, item);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct transfer *transfer = table_record(table, index);
		if (transfer->id == id && transfer->item == item)
			return transfer;
	}
	return NULL;
}

struct transfer *transfers_open(struct transfers *transfers, struct journal *journal, uint64_t id,
                                uint32_t item)
{
	uint32_t index = table_alloc(&transfers->table);
	SKULD_ASSERT(index != TABLE_NONE);
	struct transfer *transfer = table_record(&transfers->table, index);
	transfer->id = id;
	transfer->item = item;
	table_link(&transfers->table, index, transfer_key_hash(id, item));
	journal_push(journal, JOURNAL_TABLE_INSERT, &transfers->table, index, 0);
	return transfer;
}

void transfers_close(struct transfers *transfers, struct journal *journal,
                     struct transfer *transfer)
{
	uint32_t index = (uint32_t)(((unsigned char *)transfer - transfers->table.records) /
	                            sizeof(struct transfer));
	table_unlink(&transfers->table, index);
	table_release(&transfers->table, index);
	journal_push_deleted(journal, &transfers->table, index, transfer, sizeof(*transfer));
}
