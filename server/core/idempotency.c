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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static uint32_t keys_slot_count(uint32_t capacity)
{
	uint64_t slots = 16;
	while (slots < 2ull * capacity)
		slots <<= 1;
	return (uint32_t)slots;
}

size_t keys_bytes(uint32_t capacity)
{
	return (size_t)capacity * (sizeof(struct key_entry) + sizeof(uint32_t)) +
	       (size_t)keys_slot_count(capacity) * sizeof(uint64_t);
}

int keys_init(struct keys *keys, uint32_t capacity)
{
	memset(keys, 0, sizeof(*keys));
	uint32_t slots = keys_slot_count(capacity);
	keys->ring = core_calloc(capacity ? capacity : 1, sizeof(struct key_entry));
	keys->tags = core_calloc(capacity ? capacity : 1, sizeof(uint32_t));
	keys->slots = core_calloc(slots, sizeof(uint64_t));
	if (keys->ring == NULL || keys->tags == NULL || keys->slots == NULL) {
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
	free(keys->tags);
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

/* Stores one 8-byte word of a ring entry: streaming on x86-64, so the eight
 * words of an entry fill one write-combining line that goes to memory
 * without the line being read first. */
static inline void key_word_store(void *at, uint64_t value)
{
#if defined(__SSE2__) && defined(__x86_64__)
	_mm_stream_si64((long long *)at, (long long)value);
#else
	memcpy(at, &value, sizeof(value));
#endif
}

void keys_publish(void)
{
#if defined(__SSE2__)
	_mm_sfence();
#endif
}

/* The result's first 8 bytes (index, status, flags) built from its fields:
 * the caller has just stored them one by one, and a single 8-byte load of
 * those narrower stores would stall on store forwarding. */
static inline uint64_t result_head(const struct skuld_result *result)
{
	return (uint64_t)result->index | (uint64_t)result->status << 32 |
	       (uint64_t)result->flags << 48;
}

static void key_entry_store(struct key_entry *entry, skuld_u128 key, uint64_t event_hash,
                            uint64_t now, const struct skuld_result *result)
{
	static_assert(offsetof(struct key_entry, result) == 32, "key entry words");
	static_assert(offsetof(struct skuld_result, location) == 8, "result words");
	uint64_t *words = (uint64_t *)entry;
	key_word_store(&words[0], key.lo);
	key_word_store(&words[1], key.hi);
	key_word_store(&words[2], event_hash);
	key_word_store(&words[3], now);
	key_word_store(&words[4], result_head(result));
	key_word_store(&words[5], (uint64_t)result->location | (uint64_t)result->reserved << 32);
	key_word_store(&words[6], (uint64_t)result->quantity);
	key_word_store(&words[7], (uint64_t)result->available);
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
	key_entry_store(&keys->ring[position], key, event_hash, now, result);
	keys->tags[position] = (uint32_t)hash;
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
	return keys->tags[position] & keys->slot_mask;
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

static int key_due(const struct keys *keys, uint32_t i, uint64_t now, uint64_t window_ns)
{
	return now - keys_at(keys, i)->inserted_at >= window_ns; /* inserted_at <= now */
}

/* Keys at the head with now - inserted_at >= window_ns. They are a prefix
 * (inserted_at is sorted), found by galloping from the head and then
 * bisecting: O(log expired) ring reads instead of one per key. */
static uint32_t keys_expired(const struct keys *keys, uint64_t now, uint64_t window_ns)
{
	if (keys->count == 0 || !key_due(keys, 0, now, window_ns))
		return 0;
	uint32_t due = 0;               /* known due */
	uint32_t not_due = keys->count; /* known not due, or count */
	for (uint32_t probe = 1; probe < keys->count; probe *= 2) {
		if (!key_due(keys, probe, now, window_ns)) {
			not_due = probe;
			break;
		}
		due = probe;
	}
	while (not_due - due > 1) {
		uint32_t middle = due + (not_due - due) / 2;
		if (key_due(keys, middle, now, window_ns))
			due = middle;
		else
			not_due = middle;
	}
	return not_due;
}

void keys_expire(struct keys *keys, uint64_t now, uint64_t window_ns)
{
	uint32_t home[KEYS_EXPIRE_CHUNK];
	uint32_t expired = keys_expired(keys, now, window_ns);
	while (expired > 0) {
		uint32_t chunk = expired < KEYS_EXPIRE_CHUNK ? expired : KEYS_EXPIRE_CHUNK;
		expired -= chunk;
		uint32_t position = keys->head;
		for (uint32_t i = 0; i < chunk; i++) {
			home[i] = keys_home(keys, position);
			__builtin_prefetch(&keys->slots[home[i]]);
			if (++position == keys->capacity)
				position = 0;
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
