/*
 * holds.c — the hold table; see holds.h.
 */
#include "memory.h"
#include "holds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"

static uint64_t hold_hash(const void *record)
{
	const struct hold *hold = record;
	return table_mix(hold->id);
}

size_t holds_bytes(uint32_t open_max, uint32_t closed_max, uint32_t batch_max)
{
	uint32_t records = open_max + closed_max + batch_max;
	return table_bytes(records, sizeof(struct hold), 1) +
	       (size_t)(closed_max + batch_max) * sizeof(uint32_t);
}

int holds_init(struct holds *holds, uint32_t open_max, uint32_t closed_max, uint32_t batch_max)
{
	memset(holds, 0, sizeof(*holds));
	holds->open_max = open_max;
	holds->closed_capacity = closed_max + batch_max;
	holds->closed = core_calloc(holds->closed_capacity, sizeof(uint32_t));
	if (holds->closed == NULL)
		return -ENOMEM;
	int rc = table_init(&holds->table, open_max + closed_max + batch_max, sizeof(struct hold),
	                    1, hold_hash);
	if (rc != 0) {
		free(holds->closed);
		holds->closed = NULL;
	}
	return rc;
}

void holds_free(struct holds *holds)
{
	table_free(&holds->table);
	free(holds->closed);
	memset(holds, 0, sizeof(*holds));
}

struct hold *holds_insert(struct holds *holds, struct journal *journal, uint64_t id)
{
	SKULD_ASSERT(holds->open < holds->open_max);
	uint32_t index = table_alloc(&holds->table);
	SKULD_ASSERT(index != TABLE_NONE);
	struct hold *hold = table_record(&holds->table, index);
	hold->id = id;
	hold->state = LEDGER_HOLD_OPEN;
	table_link(&holds->table, index, table_mix(id));
	journal_push(journal, JOURNAL_TABLE_INSERT, &holds->table, index, 0);
	journal_set_u32(journal, &holds->open, holds->open + 1);
	return hold;
}

void holds_close(struct holds *holds, struct journal *journal, struct hold *hold, uint32_t state,
                 uint64_t now)
{
	SKULD_ASSERT(hold->state == LEDGER_HOLD_OPEN);
	SKULD_ASSERT(holds->closed_count < holds->closed_capacity);
	journal_set_u32(journal, &hold->state, state);
	journal_set_u64(journal, &hold->closed_at, now);
	journal_set_u32(journal, &holds->open, holds->open - 1);
	uint32_t tail = holds->closed_head + holds->closed_count;
	if (tail >= holds->closed_capacity)
		tail -= holds->closed_capacity;
	holds->closed[tail] = holds_index(holds, hold);
	holds->closed_count++;
	journal_push(journal, JOURNAL_CLOSED_PUSH, holds, 0, 0);
}

struct hold *holds_restore(struct holds *holds, const struct hold *saved)
{
	uint32_t index = table_alloc(&holds->table);
	SKULD_ASSERT(index != TABLE_NONE);
	struct hold *hold = table_record(&holds->table, index);
	memcpy(hold, saved, HOLD_HASHED_BYTES);
	hold->stock = TABLE_NONE;
	table_link(&holds->table, index, table_mix(hold->id));
	if (hold->state == LEDGER_HOLD_OPEN) {
		SKULD_ASSERT(holds->open < holds->open_max);
		holds->open++;
		return hold;
	}
	SKULD_ASSERT(holds->closed_count < holds->closed_capacity);
	uint32_t tail = holds->closed_head + holds->closed_count;
	if (tail >= holds->closed_capacity)
		tail -= holds->closed_capacity;
	holds->closed[tail] = index;
	holds->closed_count++;
	return hold;
}

void holds_undo_close_push(struct holds *holds)
{
	SKULD_ASSERT(holds->closed_count > 0);
	holds->closed_count--;
}

void holds_forget(struct holds *holds, uint64_t now, uint64_t grace_ns, uint32_t closed_max)
{
	while (holds->closed_count > 0) {
		uint32_t index = holds->closed[holds->closed_head];
		const struct hold *hold = table_record(&holds->table, index);
		int due = now - hold->closed_at >= grace_ns; /* closed_at <= now */
		if (!due && holds->closed_count <= closed_max)
			break;
		table_unlink(&holds->table, index);
		table_release(&holds->table, index);
		holds->closed_head++;
		if (holds->closed_head == holds->closed_capacity)
			holds->closed_head = 0;
		holds->closed_count--;
	}
}
