/*
 * discrepancies.c — remembered stock discrepancies; see discrepancies.h.
 */
#include "discrepancies.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "protocol.h"
#include "skuld_assert.h"
#include "stock.h"

static uint64_t discrepancy_hash(const void *record)
{
	const struct discrepancy *discrepancy = record;
	return table_mix(stock_key(discrepancy->item, discrepancy->location) ^ 0x6469736372ull);
}

size_t discrepancies_bytes(uint32_t capacity, uint32_t note_capacity)
{
	return table_bytes(capacity, sizeof(struct discrepancy), 1) +
	       4 * (size_t)capacity * sizeof(uint32_t) +
	       (size_t)note_capacity * sizeof(struct discrepancy_note);
}

int discrepancies_init(struct discrepancies *discrepancies, uint32_t capacity,
                       uint32_t note_capacity)
{
	memset(discrepancies, 0, sizeof(*discrepancies));
	int rc = table_init(&discrepancies->table, capacity, sizeof(struct discrepancy), 1,
	                    discrepancy_hash);
	if (rc != 0)
		return rc;
	discrepancies->notes = core_calloc(note_capacity, sizeof(struct discrepancy_note));
	discrepancies->heap = core_calloc(capacity, sizeof(uint32_t));
	discrepancies->heap_at = core_calloc(capacity, sizeof(uint32_t));
	discrepancies->order_left = core_calloc(capacity, sizeof(uint32_t));
	discrepancies->order_right = core_calloc(capacity, sizeof(uint32_t));
	discrepancies->order_root = TABLE_NONE;
	if (discrepancies->notes == NULL || discrepancies->heap == NULL ||
	    discrepancies->heap_at == NULL || discrepancies->order_left == NULL ||
	    discrepancies->order_right == NULL) {
		discrepancies_free(discrepancies);
		return -ENOMEM;
	}
	discrepancies->note_capacity = note_capacity;
	return 0;
}

void discrepancies_free(struct discrepancies *discrepancies)
{
	if (discrepancies->table.slots != NULL)
		table_free(&discrepancies->table);
	free(discrepancies->notes);
	free(discrepancies->heap);
	free(discrepancies->heap_at);
	free(discrepancies->order_left);
	free(discrepancies->order_right);
	memset(discrepancies, 0, sizeof(*discrepancies));
}

static struct discrepancy *find(const struct discrepancies *discrepancies, uint32_t item,
                                uint32_t location)
{
	const struct table *table = &discrepancies->table;
	if (table->used == 0)
		return NULL;
	struct discrepancy probe = {.item = item, .location = location};
	uint64_t hash = discrepancy_hash(&probe);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct discrepancy *record = table_record(table, index);
		if (record->item == item && record->location == location)
			return record;
	}
	return NULL;
}

const struct discrepancy *discrepancies_find(const struct discrepancies *discrepancies,
                                             uint32_t item, uint32_t location)
{
	return find(discrepancies, item, location);
}

void discrepancies_note(struct discrepancies *discrepancies, const struct discrepancy_note *note)
{
	SKULD_ASSERT(discrepancies->note_count < discrepancies->note_capacity);
	discrepancies->notes[discrepancies->note_count++] = *note;
}

void discrepancies_discard(struct discrepancies *discrepancies)
{
	discrepancies->note_count = 0;
}

/* 1 when a should be evicted before b: acknowledged first, then the
 * smallest (last_sequence, location, item). */
static int evict_before(const struct discrepancy *a, const struct discrepancy *b)
{
	if (a->acknowledged != b->acknowledged)
		return a->acknowledged > b->acknowledged;
	if (a->last_sequence != b->last_sequence)
		return a->last_sequence < b->last_sequence;
	if (a->location != b->location)
		return a->location < b->location;
	return a->item < b->item;
}

/* ---- Eviction heap -------------------------------------------------------- */

static const struct discrepancy *record_at(const struct discrepancies *discrepancies,
                                           uint32_t position)
{
	return table_record(&discrepancies->table, discrepancies->heap[position]);
}

static void heap_place(struct discrepancies *discrepancies, uint32_t position, uint32_t index)
{
	discrepancies->heap[position] = index;
	discrepancies->heap_at[index] = position;
}

/* Moves the record at position towards the root while it goes before its
 * parent; returns its final position. */
static uint32_t heap_up(struct discrepancies *discrepancies, uint32_t position)
{
	uint32_t index = discrepancies->heap[position];
	const struct discrepancy *record = table_record(&discrepancies->table, index);
	while (position > 0) {
		uint32_t parent = (position - 1) / 2;
		if (!evict_before(record, record_at(discrepancies, parent)))
			break;
		heap_place(discrepancies, position, discrepancies->heap[parent]);
		position = parent;
	}
	heap_place(discrepancies, position, index);
	return position;
}

/* Moves the record at position towards the leaves while a child goes
 * before it; count is the number of heap entries. */
static void heap_down(struct discrepancies *discrepancies, uint32_t position, uint32_t count)
{
	uint32_t index = discrepancies->heap[position];
	const struct discrepancy *record = table_record(&discrepancies->table, index);
	for (;;) {
		uint64_t left = 2 * (uint64_t)position + 1;
		if (left >= count)
			break;
		uint32_t child = (uint32_t)left;
		if (child + 1 < count && evict_before(record_at(discrepancies, child + 1),
		                                      record_at(discrepancies, child)))
			child++;
		if (!evict_before(record_at(discrepancies, child), record))
			break;
		heap_place(discrepancies, position, discrepancies->heap[child]);
		position = child;
	}
	heap_place(discrepancies, position, index);
}

/* The key of a live record changed: restores the heap order. */
static void heap_fix(struct discrepancies *discrepancies, const struct discrepancy *record)
{
	const struct table *table = &discrepancies->table;
	uint32_t index =
	        (uint32_t)(((const unsigned char *)record - table->records) / table->record_size);
	uint32_t position = discrepancies->heap_at[index];
	SKULD_ASSERT(position < table->used && discrepancies->heap[position] == index);
	if (heap_up(discrepancies, position) == position)
		heap_down(discrepancies, position, table->used);
}

/* Adds a record just linked (table.used already counts it). */
static void heap_push(struct discrepancies *discrepancies, uint32_t index)
{
	uint32_t position = discrepancies->table.used - 1;
	heap_place(discrepancies, position, index);
	heap_up(discrepancies, position);
}

/* ---- Listing order (treap) ------------------------------------------------ */

static uint64_t order_key(const struct discrepancies *discrepancies, uint32_t index)
{
	const struct discrepancy *record = table_record(&discrepancies->table, index);
	return (uint64_t)record->location << 32 | record->item;
}

static uint64_t order_priority(const struct discrepancies *discrepancies, uint32_t index)
{
	return table_mix(order_key(discrepancies, index) ^ 0x6f72646572ull);
}

/* Splits the subtree at node into the keys below key (*less) and the rest
 * (*rest). Recursion depth: the treap's depth, O(log n) expected. */
static void order_split(struct discrepancies *discrepancies, uint32_t node, uint64_t key,
                        uint32_t *less, uint32_t *rest)
{
	if (node == TABLE_NONE) {
		*less = *rest = TABLE_NONE;
	} else if (order_key(discrepancies, node) < key) {
		order_split(discrepancies, discrepancies->order_right[node], key,
		            &discrepancies->order_right[node], rest);
		*less = node;
	} else {
		order_split(discrepancies, discrepancies->order_left[node], key, less,
		            &discrepancies->order_left[node]);
		*rest = node;
	}
}

/* Joins two subtrees, every key of a below every key of b. */
static uint32_t order_merge(struct discrepancies *discrepancies, uint32_t a, uint32_t b)
{
	if (a == TABLE_NONE)
		return b;
	if (b == TABLE_NONE)
		return a;
	if (order_priority(discrepancies, a) >= order_priority(discrepancies, b)) {
		discrepancies->order_right[a] =
		        order_merge(discrepancies, discrepancies->order_right[a], b);
		return a;
	}
	discrepancies->order_left[b] = order_merge(discrepancies, a, discrepancies->order_left[b]);
	return b;
}

static void order_insert(struct discrepancies *discrepancies, uint32_t index)
{
	uint32_t less, rest;
	discrepancies->order_left[index] = TABLE_NONE;
	discrepancies->order_right[index] = TABLE_NONE;
	order_split(discrepancies, discrepancies->order_root, order_key(discrepancies, index),
	            &less, &rest);
	discrepancies->order_root =
	        order_merge(discrepancies, order_merge(discrepancies, less, index), rest);
}

static void order_remove(struct discrepancies *discrepancies, uint32_t index)
{
	uint64_t key = order_key(discrepancies, index);
	uint32_t less, rest, equal, greater;
	order_split(discrepancies, discrepancies->order_root, key, &less, &rest);
	order_split(discrepancies, rest, key + 1, &equal, &greater);
	SKULD_ASSERT(equal == index);
	SKULD_ASSERT(discrepancies->order_left[index] == TABLE_NONE &&
	             discrepancies->order_right[index] == TABLE_NONE);
	discrepancies->order_root = order_merge(discrepancies, less, greater);
}

uint32_t discrepancies_next(const struct discrepancies *discrepancies, uint64_t after)
{
	uint32_t best = TABLE_NONE;
	uint32_t node = discrepancies->order_root;
	while (node != TABLE_NONE) {
		if (order_key(discrepancies, node) > after) {
			best = node;
			node = discrepancies->order_left[node];
		} else {
			node = discrepancies->order_right[node];
		}
	}
	return best;
}

uint32_t discrepancies_victim(const struct discrepancies *discrepancies)
{
	return discrepancies->table.used == 0 ? TABLE_NONE : discrepancies->heap[0];
}

/* Frees one record of a full table (discrepancies.h, eviction rule): the
 * heap top, then the last heap entry sifts down from the root. */
static void evict_one(struct discrepancies *discrepancies)
{
	struct table *table = &discrepancies->table;
	uint32_t victim = discrepancies_victim(discrepancies);
	SKULD_ASSERT(victim != TABLE_NONE);
	const struct discrepancy *record = table_record(table, victim);
	if (record->acknowledged)
		discrepancies->evicted++;
	else
		discrepancies->dropped++;
	uint32_t last = table->used - 1;
	if (last > 0) {
		heap_place(discrepancies, 0, discrepancies->heap[last]);
		heap_down(discrepancies, 0, last);
	}
	order_remove(discrepancies, victim);
	table_unlink(table, victim);
	table_release(table, victim);
	/* A free record reads as all zero (ledger_discrepancy_page skips it). */
	memset(table_record(table, victim), 0, sizeof(struct discrepancy));
}

static struct discrepancy *insert(struct discrepancies *discrepancies, uint32_t item,
                                  uint32_t location)
{
	struct table *table = &discrepancies->table;
	if (table_room(table) == 0)
		evict_one(discrepancies);
	uint32_t index = table_alloc(table);
	SKULD_ASSERT(index != TABLE_NONE);
	struct discrepancy *record = table_record(table, index);
	memset(record, 0, sizeof(*record));
	record->item = item;
	record->location = location;
	table_link(table, index, discrepancy_hash(record));
	heap_push(discrepancies, index);
	order_insert(discrepancies, index);
	return record;
}

static void apply_note(struct discrepancies *discrepancies, const struct discrepancy_note *note)
{
	struct discrepancy *record = find(discrepancies, note->item, note->location);
	if (note->kind == NOTE_ACK) {
		/* The record may have been evicted by an earlier note of the
		 * same chain: then there is nothing left to acknowledge. */
		if (record != NULL && !record->acknowledged) {
			record->acknowledged = 1;
			heap_fix(discrepancies, record);
		}
		return;
	}
	if (record == NULL)
		record = insert(discrepancies, note->item, note->location);
	if (record->occurrences == 0 || record->acknowledged) {
		/* A new episode: an acknowledged record starts again. */
		record->first_sequence = note->sequence;
		record->first_at = note->at;
		record->occurrences = 0;
		record->kinds = 0;
		record->acknowledged = 0;
	}
	record->last_sequence = note->sequence;
	record->last_at = note->at;
	record->expected = note->expected;
	record->found = note->found;
	if (record->occurrences != UINT32_MAX)
		record->occurrences++;
	record->kinds |= (uint8_t)note->kind;
	record->last_kind = (uint8_t)note->kind;
	heap_fix(discrepancies, record);
}

void discrepancies_flush(struct discrepancies *discrepancies)
{
	for (uint32_t i = 0; i < discrepancies->note_count; i++) {
		const struct discrepancy_note *note = &discrepancies->notes[i];
		SKULD_ASSERT(discrepancies->origin != DISCREPANCIES_ORIGIN_NEXT);
		if (note->sequence >= discrepancies->origin)
			apply_note(discrepancies, note);
	}
	discrepancies->note_count = 0;
}

void discrepancies_restore(struct discrepancies *discrepancies, const struct discrepancy *record)
{
	struct table *table = &discrepancies->table;
	uint32_t index = table_alloc(table);
	SKULD_ASSERT(index != TABLE_NONE);
	memcpy(table_record(table, index), record, sizeof(*record));
	table_link(table, index, discrepancy_hash(record));
	heap_push(discrepancies, index);
	order_insert(discrepancies, index);
}

uint64_t discrepancies_hash(const struct discrepancies *discrepancies)
{
	const struct table *table = &discrepancies->table;
	uint64_t sum = discrepancies->dropped * 0x9e3779b97f4a7c15ull + discrepancies->evicted;
	for (uint32_t slot = 0; slot <= table->slot_mask; slot++) {
		if (table->slots[slot] == 0)
			continue;
		sum += skuld_checksum(table_record(table, table_slot_index(table->slots[slot])),
		                      sizeof(struct discrepancy));
	}
	return sum;
}
