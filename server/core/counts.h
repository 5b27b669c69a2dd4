/*
 * counts.h — open stock counts, at most one per (item, location).
 *
 * Owns: records of counts between COUNT_OPEN and COUNT_CLOSE in a deletable
 * table (table.h) keyed by the packed (item, location): the count id, the
 * balance expected when the shelf was counted, and when that was.
 *
 * Invariants:
 *   - At most one open count per (item, location); at most counts_max open.
 *   - expected is on_hand at opened_at, less the units of sales that
 *     occurred before opened_at but arrived while the count was open.
 */
#ifndef SKULD_COUNTS_H
#define SKULD_COUNTS_H

#include <stdint.h>

#include "journal.h"
#include "table.h"

struct count {
	uint32_t item;
	uint32_t location;
	uint64_t id;
	int64_t expected;
	uint64_t opened_at;
};

struct counts {
	struct table table;
};

size_t counts_bytes(uint32_t capacity);
int counts_init(struct counts *counts, uint32_t capacity);
void counts_free(struct counts *counts);

/* The open count of (item, location), or NULL. */
struct count *counts_find(const struct counts *counts, uint32_t item, uint32_t location);

/* Opens a count (journaled); the caller checked room and absence. */
struct count *counts_open(struct counts *counts, struct journal *journal, uint32_t item,
                          uint32_t location);

/* Closes (removes) a count (journaled). */
void counts_close(struct counts *counts, struct journal *journal, struct count *count);

#endif /* SKULD_COUNTS_H */
