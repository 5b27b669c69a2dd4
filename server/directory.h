/*
 * directory.h — location codes and channel names, to look them up.
 *
 * Owns: code -> id for locations and name -> id for channels, which the
 * ledger stores but does not index (it answers SKU and barcode look-ups
 * itself). Filled from applied events (LOCATION_DEFINE and CHANNEL_DEFINE
 * with result OK, not REPLAYED), at run time and in recovery alike, so it is
 * a pure function of the log. Pure: no I/O, allocated once.
 *
 * Invariants:
 *   - Codes are unique per kind (the ledger refuses a taken code with
 *     CODE_EXISTS) and never removed; ids are 1..locations_max / channels_max.
 *   - The hash index has at least twice as many slots as ids.
 */
#ifndef SKULD_SERVER_DIRECTORY_H
#define SKULD_SERVER_DIRECTORY_H

#include <stdint.h>

#include "protocol.h"

enum directory_kind {
	DIRECTORY_LOCATION = 0,
	DIRECTORY_CHANNEL = 1,
};

struct directory {
	uint32_t max[2];                   /* locations_max, channels_max */
	char (*codes[2])[SKULD_CODE_SIZE]; /* per kind, indexed by id (0 unused) */
	uint32_t *slots;                   /* (kind << 31 | id), 0: empty */
	uint32_t slot_mask;
};

uint64_t directory_bytes(uint32_t locations_max, uint32_t channels_max);

/* Returns 0, -EINVAL (a max of 0 or >= 2^31) or -ENOMEM. */
int directory_init(struct directory *directory, uint32_t locations_max, uint32_t channels_max);
void directory_destroy(struct directory *directory);

/* Notes the definitions among count applied events and their results. */
void directory_note(struct directory *directory, const struct skuld_event *events,
                    const struct skuld_result *results, uint32_t count);

/* Adds id with code (a snapshot's catalog being loaded). Returns 0, or
 * -EINVAL for an id out of range or already named, -EEXIST for a code that
 * names another id already. */
int directory_define(struct directory *directory, enum directory_kind kind, uint32_t id,
                     const char *code);

/* The id with this code (SKULD_CODE_SIZE bytes, NUL-padded), or 0. */
uint32_t directory_find(const struct directory *directory, enum directory_kind kind,
                        const char *code);

#endif /* SKULD_SERVER_DIRECTORY_H */
