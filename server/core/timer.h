/*
 * timer.h — the expiry timer of open holds: an indexed binary min-heap.
 *
 * Owns: one live heap entry per open hold, keyed by (expires_at, hold id),
 * and the heap position of every hold record. Removal is lazy: a closed or
 * extended hold's entry is only marked dead (O(1)); dead entries keep their
 * key, so the heap order still holds, and are dropped in one O(n) rebuild
 * when the array is full or when the dead entries outnumber the live ones
 * by a fixed slack (each rebuild follows at least as many removals as it
 * keeps entries: amortized O(1); and the array stays near twice the open
 * holds, so it stays in cache however large holds_max is). Insertion sifts up, which is O(1) on
 * average because new deadlines are mostly later than the old ones. Listing the due holds walks
 * only heap nodes that are due (a k-smallest search with an auxiliary heap), never all holds, and
 * never changes anything.
 *
 * Invariants:
 *   - heap[i] <= heap[2i+1], heap[2i+2] in (expires_at, id) order, dead
 *     entries included.
 *   - position[hold] == i exactly when heap[i] is the live entry of hold;
 *     TIMER_NONE otherwise. A hold has a live entry exactly while it is open.
 *   - live <= holds_max; the array holds 2 * holds_max + 16 entries.
 */
#ifndef SKULD_TIMER_H
#define SKULD_TIMER_H

#include <stddef.h>
#include <stdint.h>

#define TIMER_NONE UINT32_MAX

struct timer_entry {
	uint64_t expires_at;
	uint64_t id;   /* hold id: breaks ties so the order is total */
	uint32_t hold; /* hold record index; TIMER_NONE: dead */
	uint32_t unused;
};

struct timer {
	struct timer_entry *heap;
	uint32_t *position; /* per hold record: heap index or TIMER_NONE */
	uint32_t *scratch;  /* auxiliary heap of heap indexes for timer_due */
	uint32_t count;     /* entries, live and dead */
	uint32_t live;      /* live entries */
	uint32_t capacity;  /* heap entries */
};

/* holds_max: most open holds; records: hold record indexes. */
size_t timer_bytes(uint32_t holds_max, uint32_t records);
int timer_init(struct timer *timer, uint32_t holds_max, uint32_t records);
void timer_free(struct timer *timer);

void timer_insert(struct timer *timer, uint32_t hold, uint64_t expires_at, uint64_t id);
void timer_remove(struct timer *timer, uint32_t hold);
void timer_update(struct timer *timer, uint32_t hold, uint64_t expires_at);

/* Writes up to max hold record indexes with expires_at <= now, ascending by
 * (expires_at, id). Returns how many. Uses the scratch array only. */
uint32_t timer_due(struct timer *timer, uint64_t now, uint32_t max, uint32_t *holds);

#endif /* SKULD_TIMER_H */
