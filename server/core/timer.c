/*
 * timer.c — indexed binary min-heap of open holds; see timer.h.
 */
#include "memory.h"
#include "timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"

#define TIMER_DEAD_SLACK 1024 /* dead entries tolerated beyond the live count */

static int entry_less(const struct timer_entry *a, const struct timer_entry *b)
{
	if (a->expires_at != b->expires_at)
		return a->expires_at < b->expires_at;
	return a->id < b->id;
}

static uint32_t timer_capacity(uint32_t holds_max)
{
	return 2 * holds_max + 16;
}

size_t timer_bytes(uint32_t holds_max, uint32_t records)
{
	size_t capacity = timer_capacity(holds_max);
	return capacity * sizeof(struct timer_entry) + (size_t)records * sizeof(uint32_t) +
	       (capacity + 2) * sizeof(uint32_t);
}

int timer_init(struct timer *timer, uint32_t holds_max, uint32_t records)
{
	memset(timer, 0, sizeof(*timer));
	uint32_t capacity = timer_capacity(holds_max);
	timer->capacity = capacity;
	timer->heap = core_calloc(capacity ? capacity : 1, sizeof(struct timer_entry));
	timer->position = malloc((records ? records : 1) * sizeof(uint32_t));
	timer->scratch = core_calloc((size_t)capacity + 2, sizeof(uint32_t));
	if (timer->heap == NULL || timer->position == NULL || timer->scratch == NULL) {
		timer_free(timer);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < records; i++)
		timer->position[i] = TIMER_NONE;
	return 0;
}

void timer_free(struct timer *timer)
{
	free(timer->heap);
	free(timer->position);
	free(timer->scratch);
	memset(timer, 0, sizeof(*timer));
}

/* Field by field, not as one struct copy: the entry is usually still in
 * registers or was just written by 8-byte stores, and a 16-byte reload of
 * those stores would stall on store forwarding. */
static void timer_place(struct timer *timer, uint32_t index, struct timer_entry entry)
{
	struct timer_entry *slot = &timer->heap[index];
	slot->expires_at = entry.expires_at;
	slot->id = entry.id;
	slot->hold = entry.hold;
	slot->unused = 0;
	if (entry.hold != TIMER_NONE)
		timer->position[entry.hold] = index;
}

/* Places entry, which goes at index (a free leaf), where it belongs above. */
static void timer_sift_up(struct timer *timer, uint32_t index, struct timer_entry entry)
{
	while (index > 0) {
		uint32_t parent = (index - 1) / 2;
		if (!entry_less(&entry, &timer->heap[parent]))
			break;
		timer_place(timer, index, timer->heap[parent]);
		index = parent;
	}
	timer_place(timer, index, entry);
}

static void timer_sift_down(struct timer *timer, uint32_t index)
{
	struct timer_entry entry = timer->heap[index];
	for (;;) {
		uint32_t child = 2 * index + 1;
		if (child >= timer->count)
			break;
		if (child + 1 < timer->count &&
		    entry_less(&timer->heap[child + 1], &timer->heap[child]))
			child++;
		if (!entry_less(&timer->heap[child], &entry))
			break;
		timer_place(timer, index, timer->heap[child]);
		index = child;
	}
	timer_place(timer, index, entry);
}

/* Drops dead entries and rebuilds the heap (Floyd): O(count). */
static void timer_compact(struct timer *timer)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < timer->count; i++) {
		if (timer->heap[i].hold != TIMER_NONE)
			timer_place(timer, kept++, timer->heap[i]);
	}
	SKULD_ASSERT(kept == timer->live);
	timer->count = kept;
	for (uint32_t i = kept / 2; i-- > 0;)
		timer_sift_down(timer, i);
}

/* 1 when the dead entries outnumber the live ones by TIMER_DEAD_SLACK: then
 * a rebuild costs O(count) = O(removals since the last one), and the array
 * stays within about twice the live entries, small enough to stay cached. */
static int timer_bloated(const struct timer *timer)
{
	return timer->count - timer->live >= timer->live + TIMER_DEAD_SLACK;
}

void timer_insert(struct timer *timer, uint32_t hold, uint64_t expires_at, uint64_t id)
{
	SKULD_ASSERT(timer->position[hold] == TIMER_NONE);
	if (timer->count == timer->capacity || timer_bloated(timer))
		timer_compact(timer);
	SKULD_ASSERT(timer->count < timer->capacity);
	struct timer_entry entry = {.expires_at = expires_at, .id = id, .hold = hold};
	uint32_t index = timer->count++;
	timer->live++;
	timer_sift_up(timer, index, entry);
}

void timer_remove(struct timer *timer, uint32_t hold)
{
	uint32_t index = timer->position[hold];
	SKULD_ASSERT(index != TIMER_NONE && index < timer->count);
	timer->position[hold] = TIMER_NONE;
	timer->heap[index].hold = TIMER_NONE;
	timer->live--;
	/* Dead leaves at the end of the array go at once: a leaf has no
	 * children, so the heap order is untouched. */
	while (timer->count > 0 && timer->heap[timer->count - 1].hold == TIMER_NONE)
		timer->count--;
}

void timer_update(struct timer *timer, uint32_t hold, uint64_t expires_at)
{
	uint32_t index = timer->position[hold];
	SKULD_ASSERT(index != TIMER_NONE);
	uint64_t id = timer->heap[index].id;
	timer_remove(timer, hold);
	timer_insert(timer, hold, expires_at, id);
}

/* Auxiliary min-heap over heap indexes, ordered by the entries they name. */
static int scratch_less(const struct timer *timer, uint32_t a, uint32_t b)
{
	return entry_less(&timer->heap[a], &timer->heap[b]);
}

static void scratch_push(struct timer *timer, uint32_t *size, uint32_t value)
{
	uint32_t index = (*size)++;
	while (index > 0) {
		uint32_t parent = (index - 1) / 2;
		if (!scratch_less(timer, value, timer->scratch[parent]))
			break;
		timer->scratch[index] = timer->scratch[parent];
		index = parent;
	}
	timer->scratch[index] = value;
}

static uint32_t scratch_pop(struct timer *timer, uint32_t *size)
{
	uint32_t top = timer->scratch[0];
	uint32_t value = timer->scratch[--(*size)];
	uint32_t index = 0;
	for (;;) {
		uint32_t child = 2 * index + 1;
		if (child >= *size)
			break;
		if (child + 1 < *size &&
		    scratch_less(timer, timer->scratch[child + 1], timer->scratch[child]))
			child++;
		if (!scratch_less(timer, timer->scratch[child], value))
			break;
		timer->scratch[index] = timer->scratch[child];
		index = child;
	}
	timer->scratch[index] = value;
	return top;
}

uint32_t timer_due(struct timer *timer, uint64_t now, uint32_t max, uint32_t *holds)
{
	uint32_t written = 0;
	uint32_t size = 0;
	if (timer->count == 0 || timer->heap[0].expires_at > now)
		return 0;
	if (max > timer->live)
		max = timer->live;
	scratch_push(timer, &size, 0);
	/* Each pop adds at most two children, so the auxiliary heap never holds
	 * more than count + 1 <= capacity + 1 entries. */
	while (size > 0 && written < max) {
		uint32_t index = scratch_pop(timer, &size);
		if (timer->heap[index].hold != TIMER_NONE)
			holds[written++] = timer->heap[index].hold;
		for (uint32_t child = 2 * index + 1; child <= 2 * index + 2; child++) {
			if (child < timer->count && timer->heap[child].expires_at <= now)
				scratch_push(timer, &size, child);
		}
	}
	return written;
}
