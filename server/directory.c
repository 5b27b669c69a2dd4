/*
 * directory.c — open-addressing index of location codes and channel names
 * (directory.h).
 */
#include "directory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"

static uint32_t directory_slots(uint32_t locations_max, uint32_t channels_max)
{
	uint64_t want = 2ull * ((uint64_t)locations_max + channels_max);
	uint32_t slots = 4;
	while (slots < want)
		slots <<= 1;
	return slots;
}

uint64_t directory_bytes(uint32_t locations_max, uint32_t channels_max)
{
	return ((uint64_t)locations_max + channels_max + 2) * SKULD_CODE_SIZE +
	       (uint64_t)directory_slots(locations_max, channels_max) * sizeof(uint32_t);
}

int directory_init(struct directory *directory, uint32_t locations_max, uint32_t channels_max)
{
	memset(directory, 0, sizeof(*directory));
	if (locations_max == 0 || channels_max == 0 || locations_max >= (1u << 31) ||
	    channels_max >= (1u << 31))
		return -EINVAL;
	uint32_t slots = directory_slots(locations_max, channels_max);
	directory->max[DIRECTORY_LOCATION] = locations_max;
	directory->max[DIRECTORY_CHANNEL] = channels_max;
	directory->codes[0] = calloc((size_t)locations_max + 1, SKULD_CODE_SIZE);
	directory->codes[1] = calloc((size_t)channels_max + 1, SKULD_CODE_SIZE);
	directory->slots = calloc(slots, sizeof(uint32_t));
	if (directory->codes[0] == NULL || directory->codes[1] == NULL ||
	    directory->slots == NULL) {
		directory_destroy(directory);
		return -ENOMEM;
	}
	directory->slot_mask = slots - 1;
	return 0;
}

void directory_destroy(struct directory *directory)
{
	free(directory->codes[0]);
	free(directory->codes[1]);
	free(directory->slots);
	memset(directory, 0, sizeof(*directory));
}

static uint32_t code_slot(const struct directory *directory, enum directory_kind kind,
                          const char *code)
{
	uint64_t hash = skuld_checksum(code, SKULD_CODE_SIZE) + kind;
	return (uint32_t)hash & directory->slot_mask;
}

uint32_t directory_find(const struct directory *directory, enum directory_kind kind,
                        const char *code)
{
	uint32_t slot = code_slot(directory, kind, code);
	for (uint32_t probes = 0; probes <= directory->slot_mask; probes++) {
		uint32_t entry = directory->slots[slot];
		if (entry == 0)
			return 0;
		uint32_t id = entry & 0x7fffffffu;
		if ((entry >> 31) == (uint32_t)kind &&
		    memcmp(directory->codes[kind][id], code, SKULD_CODE_SIZE) == 0)
			return id;
		slot = (slot + 1) & directory->slot_mask;
	}
	return 0;
}

static void directory_add(struct directory *directory, enum directory_kind kind, uint32_t id,
                          const char *code)
{
	if (id == 0 || id > directory->max[kind] || directory->codes[kind][id][0] != '\0')
		return; /* out of range, or defined before: the ledger said OK anyway */
	memcpy(directory->codes[kind][id], code, SKULD_CODE_SIZE);
	uint32_t slot = code_slot(directory, kind, code);
	while (directory->slots[slot] != 0)
		slot = (slot + 1) & directory->slot_mask;
	directory->slots[slot] = (uint32_t)kind << 31 | id;
}

int directory_define(struct directory *directory, enum directory_kind kind, uint32_t id,
                     const char *code)
{
	if (id == 0 || id > directory->max[kind] || directory->codes[kind][id][0] != '\0' ||
	    code[0] == '\0')
		return -EINVAL;
	if (directory_find(directory, kind, code) != 0)
		return -EEXIST;
	directory_add(directory, kind, id, code);
	return 0;
}

void directory_note(struct directory *directory, const struct skuld_event *events,
                    const struct skuld_result *results, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		if (results[i].status != SKULD_OK || (results[i].flags & SKULD_RESULT_REPLAYED))
			continue;
		if (events[i].kind == SKULD_LOCATION_DEFINE)
			directory_add(directory, DIRECTORY_LOCATION, events[i].location,
			              events[i].code);
		else if (events[i].kind == SKULD_CHANNEL_DEFINE)
			directory_add(directory, DIRECTORY_CHANNEL, events[i].channel,
			              events[i].code);
	}
}
