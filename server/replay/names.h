/*
 * names.h — the codes people know things by (SKU, location code, channel
 * name), collected from the log itself as skuld-replay walks it.
 *
 * Owns: id -> code maps for items (with their scale and bundle flag),
 * locations and channels, filled from definitions whose logged result is OK
 * (ITEM_DEFINE, LOCATION_DEFINE, CHANNEL_DEFINE), in log order. They need no
 * replay through the ledger, so `export` and `verify` have them too. An
 * item's name is the SKU it was defined with; SKU_ALIAS adds aliases that
 * `history` accepts but that are not printed.
 *
 * Invariants:
 *   - Ids come from the disk and are not trusted: the maps are hash tables
 *     that grow with the number of definitions, never arrays indexed by a
 *     logged id. A definition's logged result decides, so an id is named
 *     once (the ledger refuses a second definition).
 *   - Growth is the only allocation; it fails cleanly with -ENOMEM.
 */
#ifndef SKULD_REPLAY_NAMES_H
#define SKULD_REPLAY_NAMES_H

#include <stdint.h>

#include "protocol.h"
#include "text.h"

struct name {
	uint32_t id;               /* 0: empty slot */
	uint8_t scale;             /* items: decimal places */
	uint8_t bundle;            /* items: 1 for a bundle */
	char code[TEXT_CODE_SIZE]; /* NUL-terminated */
};

struct names_map {
	struct name *slots;
	uint32_t mask; /* slot count - 1; 0 before the first insertion */
	uint32_t count;
};

enum names_kind {
	NAMES_ITEM = 0,
	NAMES_LOCATION = 1,
	NAMES_CHANNEL = 2,
};

struct names {
	struct names_map maps[3]; /* by enum names_kind */
};

void names_init(struct names *names);
void names_free(struct names *names);

/* Notes the definitions among count logged events and their results.
 * Returns 0 or -ENOMEM. */
int names_note(struct names *names, const struct skuld_event *events,
               const struct skuld_result *results, uint32_t count);

/* Names one id directly (from a snapshot's catalog, start.h): code is
 * SKULD_CODE_SIZE bytes, NUL-padded. Returns 0 or -ENOMEM. */
int names_define(struct names *names, enum names_kind kind, uint32_t id,
                 const char code[SKULD_CODE_SIZE], uint8_t scale, uint8_t bundle);

/* The entry of id, or NULL when it was never defined. */
const struct name *names_find(const struct names *names, enum names_kind kind, uint32_t id);

/* The code of id into out, or "#id" when it has none (never defined, or 0
 * as "-"). */
void names_code(const struct names *names, enum names_kind kind, uint32_t id,
                char out[TEXT_CODE_SIZE]);

/* The scale of item id; 0 when unknown. */
uint8_t names_scale(const struct names *names, uint32_t item);

#endif /* SKULD_REPLAY_NAMES_H */
