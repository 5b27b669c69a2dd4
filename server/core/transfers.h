/*
 * transfers.h — open transfer lines between locations.
 *
 * Owns: one record per (transfer id, item) between TRANSFER_OUT and the
 * TRANSFER_IN that receives its last unit, in a deletable table (table.h).
 * One transfer id may carry many items (a shipment with many lines).
 *
 * Invariants:
 *   - remaining > 0 while the record exists; it is exactly what the
 *     destination's incoming still holds for this line.
 */
#ifndef SKULD_TRANSFERS_H
#define SKULD_TRANSFERS_H

#include <stdint.h>

#include "journal.h"
#include "table.h"

struct transfer {
	uint64_t id;
	uint32_t item;
	uint32_t from;
	uint32_t to;
	uint32_t unused;
	int64_t remaining;
};

struct transfers {
	struct table table;
};

size_t transfers_bytes(uint32_t capacity);
int transfers_init(struct transfers *transfers, uint32_t capacity);
void transfers_free(struct transfers *transfers);

/* The open line (id, item), or NULL. */
struct transfer *transfers_find(const struct transfers *transfers, uint64_t id, uint32_t item);

/* Opens a line (journaled); the caller checked room and absence. */
struct transfer *transfers_open(struct transfers *transfers, struct journal *journal, uint64_t id,
                                uint32_t item);

/* Closes (removes) a line (journaled). */
void transfers_close(struct transfers *transfers, struct journal *journal,
                     struct transfer *transfer);

#endif /* SKULD_TRANSFERS_H */
