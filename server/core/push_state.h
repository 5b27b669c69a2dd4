/*
 * push_state.h — what each sales channel has been told: listings, push
 * versions and exceptions (docs/LEDGER.md section 12).
 *
 * Owns:
 *   - the listing table: one record per (channel, item) that was ever
 *     mapped, with the channel's listing text, the item's push version, the
 *     version and quantity the channel last accepted, and its open
 *     exception. Records are never removed (an unmapped listing keeps what
 *     the channel was last shown), so the table is append-only and bounded
 *     by listings_max;
 *   - per channel: a bitmap of mapped items and a bitmap of dirty items
 *     (mapped, not accepted at their version, not parked), their counts,
 *     and the channel's own exception (one that is not any item's: auth);
 *   - the touch list: the (item, location) pairs, channels, locations and
 *     bundles an event changed, recorded while a batch element is applied
 *     and turned into version bumps once it has succeeded (push_flush);
 *   - two derived indexes, rebuilt from the catalog whenever a pool or a
 *     bundle changed: location -> channels whose pool holds it, and plain
 *     item -> bundles that contain it.
 *
 * Invariants:
 *   - A version is a value of the ledger-wide push serial, so versions only
 *     grow; an item's version changes whenever an applied event may have
 *     changed its channel quantity (an over-approximation: a version bump
 *     with an unchanged quantity costs one acknowledgement, never a wrong
 *     number).
 *   - dirty bit = MAPPED and DIRTY and not PARKED; the counts equal the
 *     bitmaps' populations. accepted <= version.
 *   - Pure like the rest of the ledger: no I/O, no clock; every change an
 *     event makes is journaled, and push_flush runs outside chains.
 */
#ifndef SKULD_PUSH_STATE_H
#define SKULD_PUSH_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "ledger.h"
#include "protocol.h"
#include "table.h"

#define LISTING_MAPPED 0x80u /* internal state bit: the listing is in force */

struct listing {
	uint32_t channel;
	uint32_t item;
	uint64_t version;     /* push serial of the latest change */
	uint64_t accepted;    /* version the channel last accepted, 0: none */
	int64_t shown;        /* quantity accepted with it */
	uint64_t dirty_since; /* ledger time it became dirty, 0 when clean */
	uint64_t first_seen;  /* open exception: first and latest report */
	uint64_t last_seen;
	uint32_t reports;
	uint32_t serial; /* listing serial of the latest text change */
	uint16_t exception;
	uint8_t state; /* enum skuld_push_state | LISTING_MAPPED */
	uint8_t unused[5];
	char detail[SKULD_EXCEPTION_DETAIL_SIZE];
	char text[SKULD_LISTING_SIZE];
};
static_assert(sizeof(struct listing) == 136, "listing record");

struct channel_push {
	uint32_t mapped;
	uint32_t dirty;
	uint32_t parked;
	uint32_t reports; /* the channel's own exception */
	uint64_t acks;
	uint64_t last_ack;
	uint64_t first_seen;
	uint64_t last_seen;
	uint16_t exception;
	uint8_t unused[6];
	char detail[SKULD_EXCEPTION_DETAIL_SIZE];
};

enum push_touch_kind {
	PUSH_TOUCH_STOCK = 1,    /* a: item, b: location */
	PUSH_TOUCH_LISTING = 2,  /* a: item, b: channel */
	PUSH_TOUCH_CHANNEL = 3,  /* b: channel: every listing */
	PUSH_TOUCH_LOCATION = 4, /* b: location: every channel whose pool holds it */
	PUSH_TOUCH_BUNDLE = 5,   /* a: bundle item, every channel */
	PUSH_TOUCH_POOLS = 6,    /* the pool index is stale */
};

struct push_touch {
	uint32_t kind;
	uint32_t a;
	uint32_t b;
};

struct push_state {
	uint32_t items_max;
	uint32_t locations_max;
	uint32_t channels_max;
	uint32_t words;         /* per channel bitmap row: items_max / 64 + 1 */
	uint32_t channel_words; /* per location row: channels_max / 64 + 1 */
	uint32_t listing_serial;
	uint64_t serial; /* the push version clock */
	struct table listings;
	struct channel_push *channels; /* [channels_max + 1] */
	uint64_t *mapped;              /* [channels_max + 1][words] */
	uint64_t *dirty;               /* [channels_max + 1][words] */
	/* Derived, rebuilt on demand. */
	uint64_t *location_channels; /* [locations_max + 1][channel_words] */
	uint32_t *bundle_first;      /* [items_max + 2]: bundles of item i at
	                                bundle_list[first[i] .. first[i + 1]) */
	uint32_t *bundle_list;       /* [bundles_max * components_max] */
	int pools_stale;
	int bundles_stale;
	/* Touches of the batch element being applied. */
	struct push_touch *touches;
	uint32_t touch_count;
	uint32_t touch_max;
};

size_t push_bytes(const struct ledger_config *config);
int push_init(struct push_state *push, const struct ledger_config *config);
void push_free(struct push_state *push);

static inline int push_kind(uint32_t kind)
{
	return kind == SKULD_CHANNEL_LISTING || kind == SKULD_PUSH_ACK ||
	       kind == SKULD_PUSH_EXCEPTION;
}

struct ledger;

/* Applies CHANNEL_LISTING, PUSH_ACK or PUSH_EXCEPTION; returns the status. */
uint32_t push_apply(struct ledger *ledger, const struct skuld_event *event);

/* Records what a successful event changed (before push_flush). hold_item
 * and hold_location are the hold's, read before a hold event. */
void push_record(struct ledger *ledger, const struct skuld_event *event,
                 const struct skuld_result *result, uint32_t hold_item, uint32_t hold_location);

/* Turns the recorded touches into version bumps; push_discard drops them
 * (a chain that failed). */
void push_flush(struct ledger *ledger);
static inline void push_discard(struct push_state *push)
{
	push->touch_count = 0;
}

/* The listing of (channel, item), mapped or not, or NULL. */
const struct listing *push_listing(const struct push_state *push, uint32_t channel, uint32_t item);

/* The first item after `after` whose bit is set in channel's mapped
 * (dirty_only == 0) or dirty row, or 0. */
uint32_t push_next(const struct push_state *push, uint32_t channel, uint32_t after, int dirty_only);

/* Order-independent hash of the push state (docs/LEDGER.md 7). */
uint64_t push_hash(const struct push_state *push);

/* Recomputes bitmaps and counts from the listing records (snapshot load). */
void push_rebuild(struct push_state *push);

#endif /* SKULD_PUSH_STATE_H */
