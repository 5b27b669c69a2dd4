/*
 * idempotency.c — the key window; see idempotency.h.
 */
#include "memory.h"
#include "idempotency.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"
#include "table.h"

static uint32_t keys_slot_count(uint32_t capacity)
{
	uint64_t slots = 16;
	while (slots < 2ull * capacity)
		slots <<= 1;
	return (uint32_t)slots;
}

size_t keys_bytes(uint32_t capacity)
{
	return (size_t)capacity * sizeof(struct key_entry) +
	       (size_t)keys_slot_count(capacity) * sizeof(uint64_t);
}

int keys_init(struct keys *keys, uint32_t capacity)
{
	memset(keys, 0, sizeof(*keys));
	uint32_t slots = keys_slot_count(capacity);
	keys->ring = core_calloc(capacity ? capacity : 1, sizeof(struct key_entry));
	keys->slots = core_calloc(slots, sizeof(uint64_t));
	if (keys->ring == NULL || keys->slots == NULL) {
		keys_free(keys);
		return -ENOMEM;
	}
	keys->slot_mask = slots - 1;
	keys->capacity = capacity;
	return 0;
}

void keys_free(struct keys *keys)
{
	free(keys->ring);
	free(keys->slots);
	memset(keys, 0, sizeof(*keys));
}

const struct key_entry *keys_find(const struct keys *keys, skuld_u128 key, uint64_t hash,
                                  uint32_t *slot)
{
	uint32_t tag = (uint32_t)hash;
	uint32_t probe = tag & keys->slot_mask;
	for (;;) {
		uint64_t entry = keys->slots[probe];
		if (entry == 0)
			break;
		if ((uint32_t)(entry >> 32) == tag) {
			const struct key_entry *found = &keys->ring[(uint32_t)entry - 1];
			if (skuld_u128_equal(found->key, key))
				return found;
		}
		probe = (probe + 1) & keys->slot_mask;
	}
	*slot = probe;
	return NULL;
}

void keys_insert(struct keys *keys, struct journal *journal, skuld_u128 key, uint64_t hash,
                 uint32_t slot, uint64_t event_hash, uint64_t now,
                 const struct skuld_result *result)
{
	SKULD_ASSERT(keys->count < keys->capacity);
	SKULD_ASSERT(keys->slots[slot] == 0);
	uint32_t position = keys->head + keys->count;
	if (position >= keys->capacity)
		position -= keys->capacity;
	struct key_entry *entry = &keys->ring[position];
	entry->key = key;
	entry->event_hash = event_hash;
	entry->inserted_at = now;
	entry->result = *result;
	keys->count++;
	keys->slots[slot] = (uint64_t)(uint32_t)hash << 32 | (position + 1);
	journal_push(journal, JOURNAL_KEY_INSERT, keys, position, 0);
}

/* Removes ring position from the index, starting the search at slot (the
 * key's home slot; backward-shift deletion: the home slot of each later
 * slot comes from the hash bits stored in it). */
static void keys_unlink(struct keys *keys, uint32_t position, uint32_t slot)
{
	uint32_t mask = keys->slot_mask;
	while ((uint32_t)keys->slots[slot] != position + 1) {
		SKULD_ASSERT(keys->slots[slot] != 0);
		slot = (slot + 1) & mask;
	}
	uint32_t hole = slot;
	uint32_t next = (hole + 1) & mask;
	while (keys->slots[next] != 0) {
		uint32_t home = (uint32_t)(keys->slots[next] >> 32) & mask;
		if (((next - home) & mask) >= ((next - hole) & mask)) {
			keys->slots[hole] = keys->slots[next];
			hole = next;
		}
		next = (next + 1) & mask;
	}
	keys->slots[hole] = 0;
}

static uint32_t keys_home(const struct keys *keys, uint32_t position)
{
	return (uint32_t)keys_hash(keys->ring[position].key) & keys->slot_mask;
}

void keys_undo_insert(struct keys *keys)
{
	SKULD_ASSERT(keys->count > 0);
	uint32_t position = keys->head + keys->count - 1;
	if (position >= keys->capacity)
		position -= keys->capacity;
	keys_unlink(keys, position, keys_home(keys, position));
	keys->count--;
}

/* Keys at the head with now - inserted_at >= window_ns, at most max. */
static uint32_t keys_expired(const struct keys *keys, uint64_t now, uint64_t window_ns,
                             uint32_t max)
{
	uint32_t expired = 0;
	while (expired < max && expired < keys->count &&
	       now - keys_at(keys, expired)->inserted_at >= window_ns)
		expired++;
	return expired;
}

void keys_expire(struct keys *keys, uint64_t now, uint64_t window_ns)
{
	uint32_t home[KEYS_EXPIRE_CHUNK];
	for (;;) {
		uint32_t chunk = keys_expired(keys, now, window_ns, KEYS_EXPIRE_CHUNK);
		if (chunk == 0)
			return;
		for (uint32_t i = 0; i < chunk; i++) {
			home[i] = keys_home(keys, (uint32_t)(keys_at(keys, i) - keys->ring));
			__builtin_prefetch(&keys->slots[home[i]]);
		}
		for (uint32_t i = 0; i < chunk; i++) {
			keys_unlink(keys, keys->head, home[i]);
			keys->head++;
			if (keys->head == keys->capacity)
				keys->head = 0;
			keys->count--;
		}
	}
}
