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
	if (discrepancies->notes == NULL) {
		table_free(&discrepancies->table);
		memset(discrepancies, 0, sizeof(*discrepancies));
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

/* Frees one record of a full table (discrepancies.h, eviction rule). */
static void evict_one(struct discrepancies *discrepancies)
{
	struct table *table = &discrepancies->table;
	uint32_t victim = TABLE_NONE;
	for (uint32_t slot = 0; slot <= table->slot_mask; slot++) {
		if (table->slots[slot] == 0)
			continue;
		uint32_t index = table_slot_index(table->slots[slot]);
		if (victim == TABLE_NONE ||
		    evict_before(table_record(table, index), table_record(table, victim)))
			victim = index;
	}
	SKULD_ASSERT(victim != TABLE_NONE);
	const struct discrepancy *record = table_record(table, victim);
	if (record->acknowledged)
		discrepancies->evicted++;
	else
		discrepancies->dropped++;
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
	return record;
}

static void apply_note(struct discrepancies *discrepancies, const struct discrepancy_note *note)
{
	struct discrepancy *record = find(discrepancies, note->item, note->location);
	if (note->kind == NOTE_ACK) {
		/* The record may have been evicted by an earlier note of the
		 * same chain: then there is nothing left to acknowledge. */
		if (record != NULL)
			record->acknowledged = 1;
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
}

void discrepancies_flush(struct discrepancies *discrepancies)
{
	for (uint32_t i = 0; i < discrepancies->note_count; i++)
		apply_note(discrepancies, &discrepancies->notes[i]);
	discrepancies->note_count = 0;
}

void discrepancies_restore(struct discrepancies *discrepancies, const struct discrepancy *record)
{
	struct table *table = &discrepancies->table;
	uint32_t index = table_alloc(table);
	SKULD_ASSERT(index != TABLE_NONE);
	memcpy(table_record(table, index), record, sizeof(*record));
	table_link(table, index, discrepancy_hash(record));
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
