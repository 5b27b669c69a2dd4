/*
 * table.c — fixed-capacity record slabs with an open-addressing index. See
 * table.h for the invariants.
 */
#include "memory.h"
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"

static uint32_t table_slot_count(uint32_t capacity)
{
	uint64_t slots = 16;
	while (slots < 2ull * capacity)
		slots <<= 1;
	return (uint32_t)slots;
}

size_t table_bytes(uint32_t capacity, uint32_t record_size, int deletable)
{
	size_t bytes = (size_t)table_slot_count(capacity) * sizeof(uint64_t);
	bytes += (size_t)capacity * record_size;
	if (deletable)
		bytes += (size_t)capacity * sizeof(uint32_t);
	return bytes;
}

int table_init(struct table *table, uint32_t capacity, uint32_t record_size, int deletable,
               table_hash_fn hash)
{
	memset(table, 0, sizeof(*table));
	uint32_t slots = table_slot_count(capacity);
	table->slot_mask = slots - 1;
	table->capacity = capacity;
	table->record_size = record_size;
	table->free_head = TABLE_NONE;
	table->hash = hash;
	table->slots = core_calloc(slots, sizeof(uint64_t));
	table->records = core_calloc(capacity ? capacity : 1, record_size);
	if (deletable)
		table->free_next = core_calloc(capacity ? capacity : 1, sizeof(uint32_t));
	if (table->slots == NULL || table->records == NULL ||
	    (deletable && table->free_next == NULL)) {
		table_free(table);
		return -ENOMEM;
	}
	return 0;
}

void table_free(struct table *table)
{
	free(table->slots);
	free(table->records);
	free(table->free_next);
	memset(table, 0, sizeof(*table));
}

uint32_t table_alloc(struct table *table)
{
	uint32_t index;
	if (table->free_head != TABLE_NONE) {
		index = table->free_head;
		table->free_head = table->free_next[index];
	} else if (table->top < table->capacity) {
		index = table->top++;
	} else {
		return TABLE_NONE;
	}
	table->used++;
	memset(table_record(table, index), 0, table->record_size);
	return index;
}

void table_link(struct table *table, uint32_t index, uint64_t hash)
{
	uint32_t slot = table_home(table, hash);
	while (table->slots[slot] != 0)
		slot = (slot + 1) & table->slot_mask;
	table->slots[slot] = (uint64_t)(uint32_t)hash << 32 | (index + 1);
}

void table_unlink(struct table *table, uint32_t index)
{
	uint32_t mask = table->slot_mask;
	uint32_t slot = table_home(table, table->hash(table_record(table, index)));
	while ((uint32_t)table->slots[slot] != index + 1) {
		SKULD_ASSERT(table->slots[slot] != 0);
		slot = (slot + 1) & mask;
	}
	/* Backward-shift deletion: pull later members of the cluster into the
	 * hole when their home slot is not between the hole and them. */
	uint32_t hole = slot;
	uint32_t next = (hole + 1) & mask;
	while (table->slots[next] != 0) {
		uint32_t home = (uint32_t)(table->slots[next] >> 32) & mask;
		if (((next - home) & mask) >= ((next - hole) & mask)) {
			table->slots[hole] = table->slots[next];
			hole = next;
		}
		next = (next + 1) & mask;
	}
	table->slots[hole] = 0;
}

void table_release(struct table *table, uint32_t index)
{
	SKULD_ASSERT(table->free_next != NULL);
	SKULD_ASSERT(table->used > 0);
	table->free_next[index] = table->free_head;
	table->free_head = index;
	table->used--;
}

void table_unrelease(struct table *table, uint32_t index)
{
	SKULD_ASSERT(table->free_head == index);
	table->free_head = table->free_next[index];
	table->used++;
}

void table_unalloc(struct table *table, uint32_t index)
{
	SKULD_ASSERT(table->used > 0);
	if (table->free_next != NULL) {
		table->free_next[index] = table->free_head;
		table->free_head = index;
	} else {
		SKULD_ASSERT(index + 1 == table->top);
		table->top--;
	}
	table->used--;
}
