/*
 * timer.h — the expiry timer of open holds: an indexed binary min-heap.
 *
 * Owns: one heap entry per open hold, keyed by (expires_at, hold id), and
 * the heap position of every hold record, so a hold's entry is updated or
 * removed in O(log n) when it is extended or closed. Listing the due holds
 * walks only the heap nodes that are due (a k-smallest search with a small
 * auxiliary heap), never all holds.
 *
 * Invariants:
 *   - heap[i] <= heap[2i+1], heap[2i+2] in (expires_at, id) order.
 *   - position[hold] == i exactly when heap[i].hold == hold; TIMER_NONE
 *     otherwise. A hold is in the heap exactly while it is open.
 *   - The heap holds at most capacity entries (holds_max).
 */
#ifndef SKULD_TIMER_H
#define SKULD_TIMER_H

#include <stddef.h>
#include <stdint.h>

#define TIMER_NONE UINT32_MAX

struct timer_entry {
	uint64_t expires_at;
	uint64_t id;   /* hold id: breaks ties so the order is total */
	uint32_t hold; /* hold record index */
	uint32_t unused;
};

struct timer {
	struct timer_entry *heap;
	uint32_t *position; /* per hold record: heap index or TIMER_NONE */
	uint32_t *scratch;  /* auxiliary heap of heap indexes for timer_due */
	uint32_t count;
	uint32_t capacity; /* heap entries */
};

size_t timer_bytes(uint32_t capacity, uint32_t records);
int timer_init(struct timer *timer, uint32_t capacity, uint32_t records);
void timer_free(struct timer *timer);

void timer_insert(struct timer *timer, uint32_t hold, uint64_t expires_at, uint64_t id);
void timer_remove(struct timer *timer, uint32_t hold);
void timer_update(struct timer *timer, uint32_t hold, uint64_t expires_at);

/* Writes up to max hold record indexes with expires_at <= now, ascending by
 * (expires_at, id). Returns how many. Uses the scratch array only. */
uint32_t timer_due(struct timer *timer, uint64_t now, uint32_t max, uint32_t *holds);

#endif /* SKULD_TIMER_H */
