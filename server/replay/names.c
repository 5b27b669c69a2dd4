/*
 * names.c — id -> code maps filled from logged definitions (names.h).
 * Linear probing on a power-of-two table kept at most half full.
 */
#include "names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NAMES_SLOTS_FIRST 64u

void names_init(struct names *names)
{
	memset(names, 0, sizeof(*names));
}

void names_free(struct names *names)
{
	for (int kind = 0; kind < 3; kind++)
		free(names->maps[kind].slots);
	memset(names, 0, sizeof(*names));
}

static uint32_t names_home(uint32_t id, uint32_t mask)
{
	return (uint32_t)(((uint64_t)id * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

static struct name *names_slot(const struct names_map *map, uint32_t id)
{
	uint32_t slot = names_home(id, map->mask);
	/* Bounded: the table is at most half full, so an empty slot ends it. */
	while (map->slots[slot].id != 0 && map->slots[slot].id != id)
		slot = (slot + 1) & map->mask;
	return &map->slots[slot];
}

static int names_grow(struct names_map *map)
{
	uint32_t slots = map->mask == 0 ? NAMES_SLOTS_FIRST : (map->mask + 1) * 2;
	if (slots == 0 || slots > (1u << 31))
		return -ENOMEM;
	struct names_map grown = {.slots = calloc(slots, sizeof(struct name)), .mask = slots - 1};
	if (grown.slots == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; map->mask != 0 && i <= map->mask; i++) {
		if (map->slots[i].id != 0) {
			*names_slot(&grown, map->slots[i].id) = map->slots[i];
			grown.count++;
		}
	}
	free(map->slots);
	*map = grown;
	return 0;
}

static int names_put(struct names_map *map, uint32_t id, const char code[SKULD_CODE_SIZE],
                     uint8_t scale, uint8_t bundle)
{
	if (id == 0)
		return 0;
	if (map->mask == 0 || (map->count + 1) * 2 > map->mask + 1) {
		int ret = names_grow(map);
		if (ret != 0)
			return ret;
	}
	struct name *slot = names_slot(map, id);
	if (slot->id == 0)
		map->count++;
	slot->id = id;
	slot->scale = scale;
	slot->bundle = bundle;
	text_code(code, slot->code);
	return 0;
}

int names_note(struct names *names, const struct skuld_event *events,
               const struct skuld_result *results, uint32_t count)
{
	int ret = 0;
	for (uint32_t i = 0; i < count && ret == 0; i++) {
		const struct skuld_event *event = &events[i];
		if (event->kind > SKULD_CHANNEL_DEFINE || results[i].status != SKULD_OK)
			continue;
		if (event->kind == SKULD_ITEM_DEFINE)
			ret = names_put(&names->maps[NAMES_ITEM], event->item, event->code,
			                event->scale, (event->flags & SKULD_EVENT_BUNDLE) != 0);
		else if (event->kind == SKULD_LOCATION_DEFINE)
			ret = names_put(&names->maps[NAMES_LOCATION], event->location, event->code,
			                0, 0);
		else if (event->kind == SKULD_CHANNEL_DEFINE)
			ret = names_put(&names->maps[NAMES_CHANNEL], event->channel, event->code, 0,
			                0);
	}
	return ret;
}

int names_define(struct names *names, enum names_kind kind, uint32_t id,
                 const char code[SKULD_CODE_SIZE], uint8_t scale, uint8_t bundle)
{
	return names_put(&names->maps[kind], id, code, scale, bundle);
}

const struct name *names_find(const struct names *names, enum names_kind kind, uint32_t id)
{
	const struct names_map *map = &names->maps[kind];
	if (id == 0 || map->mask == 0)
		return NULL;
	const struct name *slot = names_slot(map, id);
	return slot->id == id ? slot : NULL;
}

void names_code(const struct names *names, enum names_kind kind, uint32_t id,
                char out[TEXT_CODE_SIZE])
{
	const struct name *name = names_find(names, kind, id);
	if (name != NULL)
		memcpy(out, name->code, TEXT_CODE_SIZE);
	else if (id == 0)
		snprintf(out, TEXT_CODE_SIZE, "-");
	else
		snprintf(out, TEXT_CODE_SIZE, "#%u", id);
}

uint8_t names_scale(const struct names *names, uint32_t item)
{
	const struct name *name = names_find(names, NAMES_ITEM, item);
	return name != NULL ? name->scale : 0;
}
