/*
 * ledger.h — the public API of skuld's ledger state machine.
 *
 * Owns: the whole in-memory stock state — catalog, counters per (item,
 * location), holds and their timer, open counts and transfers, and the
 * idempotency window — and the rules by which events change it. The rules
 * are specified in docs/LEDGER.md; this header is the contract for callers.
 *
 * Invariants:
 *   - Pure and deterministic: no I/O, no clock, no allocation after
 *     ledger_create. The caller passes every batch's timestamp, so the same
 *     batches always give the same results and the same ledger_hash.
 *   - Every event gets exactly one result; a failed event changes nothing; a
 *     linked chain is applied entirely or not at all.
 *   - Every table is sized from struct ledger_config at creation.
 *
 * Threading: a ledger is used by one thread at a time.
 */
#ifndef SKULD_LEDGER_H
#define SKULD_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define LEDGER_QUANTITY_MAX          ((int64_t)1 << 53) /* QMAX in docs/LEDGER.md */
#define LEDGER_COUNT_OFF_PERCENT_MAX 10000u             /* count_off_percent, at most */

struct ledger;

/* Capacities and windows. ledger_config_default fills sensible values;
 * every field must be non-zero. */
struct ledger_config {
	uint32_t items_max;             /* item ids are 1..items_max */
	uint32_t locations_max;         /* location ids are 1..locations_max */
	uint32_t channels_max;          /* channel ids are 1..channels_max */
	uint32_t stock_max;             /* (item, location) counter entries */
	uint32_t codes_max;             /* SKU codes, active and retired */
	uint32_t barcodes_max;          /* (barcode, item) pairs */
	uint32_t attributes_max;        /* (item, attribute name) pairs */
	uint32_t bundles_max;           /* bundles with at least one component */
	uint32_t bundle_components_max; /* components per bundle, at most 64 */
	uint32_t pool_locations_max;    /* locations per channel pool */
	uint32_t channel_buffers_max;   /* per-(channel, item) buffers */
	uint32_t holds_max;             /* open holds */
	uint32_t closed_holds_max;      /* closed holds remembered */
	uint64_t closed_hold_grace_ns;  /* how long a closed hold is remembered */
	uint32_t ttl_max_s;             /* longest hold time to live */
	uint32_t counts_max;            /* open counts */
	uint32_t transfers_max;         /* open (transfer id, item) lines */
	uint32_t keys_max;              /* idempotency keys remembered */
	uint64_t key_window_ns;         /* how long a key is remembered */
	uint32_t batch_events_max;      /* most events per ledger_apply */
	uint32_t chain_events_max;      /* longest linked chain */
	uint32_t listings_max;          /* (channel, item) listings ever mapped */
	uint32_t discrepancies_max;     /* (item, location) discrepancy records */
	uint32_t count_off_percent;     /* COUNT_OFF: off by more than this % of expected, */
	uint64_t count_off_units;       /* and by more than this many base units (may be 0) */
};

enum ledger_source {
	LEDGER_SOURCE_CLIENT = 0, /* keys checked and remembered; EXPIRE refused */
	LEDGER_SOURCE_SERVER = 1, /* written by the server itself: no keys */
};

struct ledger_level {
	int64_t on_hand;
	int64_t reserved;
	int64_t committed;
	int64_t damaged;
	int64_t quarantine;
	int64_t incoming;
	int64_t available;   /* on_hand - reserved - committed - damaged - quarantine */
	uint64_t counted_at; /* opened_at of the latest applied count, 0 none */
};

enum ledger_hold_state {
	LEDGER_HOLD_OPEN = 0,
	LEDGER_HOLD_COMMITTED = 1,
	LEDGER_HOLD_RELEASED = 2,
	LEDGER_HOLD_EXPIRED = 3,
};

struct ledger_hold_info {
	uint64_t id;
	uint64_t expires_at_ns;
	uint64_t closed_at_ns; /* 0 while open */
	int64_t remaining;     /* units of the item (bundles, for a bundle hold) */
	uint32_t item;
	uint32_t location;
	uint32_t channel; /* 0: a location hold */
	uint32_t state;   /* enum ledger_hold_state */
};

struct ledger_barcode_match {
	uint32_t item;
	int64_t pack; /* units of the item per scan */
};

/* Fills config with defaults sized for tests and small stores. */
void ledger_config_default(struct ledger_config *config);

/* Bytes ledger_create would allocate for config (0 if config is invalid). */
size_t ledger_memory_bytes(const struct ledger_config *config);

/* The configuration the ledger was created with. */
const struct ledger_config *ledger_configuration(const struct ledger *ledger);

/* Allocates a ledger. Returns 0 and sets *out, -EINVAL for a config with a
 * zero or out-of-range field, -ENOMEM. The caller owns *out and frees it with
 * ledger_destroy. */
int ledger_create(const struct ledger_config *config, struct ledger **out);
void ledger_destroy(struct ledger *ledger);

/* Applies count events (count <= batch_events_max, asserted) at batch time
 * max(timestamp_ns, previous batch time), writing results[i] for events[i].
 * source says whether the events come from a client or from the server
 * itself. Never fails as a whole: every outcome is in the results. */
void ledger_apply(struct ledger *ledger, uint64_t timestamp_ns, enum ledger_source source,
                  const struct skuld_event *events, uint32_t count, struct skuld_result *results);

/* Writes to hold_ids up to max (capped at holds_max) ids of open holds with
 * expires_at <= now_ns, ascending by (expires_at, id); returns how many.
 * Changes no ledger state (the pointer is not const only because the walk
 * uses scratch memory inside the ledger). */
uint32_t ledger_expire_due(struct ledger *ledger, uint64_t now_ns, uint32_t max,
                           uint64_t *hold_ids);

/* Counters of (item, location); all zero if never touched. Returns SKULD_OK,
 * SKULD_ITEM_UNKNOWN, SKULD_BUNDLE_NOT_STOCKED or SKULD_LOCATION_UNKNOWN. */
uint32_t ledger_level(const struct ledger *ledger, uint32_t item, uint32_t location,
                      struct ledger_level *out);

/* Available of an item at a location, or kits for a bundle (docs/LEDGER.md
 * section 1). Returns 0 for unknown ids. */
int64_t ledger_available(const struct ledger *ledger, uint32_t item, uint32_t location);

/* Quantity the channel publishes for item (docs/LEDGER.md section 6).
 * Returns SKULD_OK, SKULD_CHANNEL_UNKNOWN or SKULD_ITEM_UNKNOWN. */
uint32_t ledger_channel_quantity(const struct ledger *ledger, uint32_t channel, uint32_t item,
                                 int64_t *out);

/* Hold by id (open or remembered closed). Returns SKULD_OK or
 * SKULD_HOLD_UNKNOWN. */
uint32_t ledger_hold(const struct ledger *ledger, uint64_t id, struct ledger_hold_info *out);

/* True when location is an active member of channel's pool (false for
 * unknown ids). */
bool ledger_pool_member(const struct ledger *ledger, uint32_t channel, uint32_t location);

/* Item of an SKU code (SKULD_CODE_SIZE bytes, NUL-padded). Returns the item
 * id or 0; *retired (may be NULL) says whether the code was retired. */
uint32_t ledger_sku_lookup(const struct ledger *ledger, const char *code, int *retired);

/* Items a barcode maps to, ascending by item id; writes up to max matches
 * and returns the total number of matches. */
uint32_t ledger_barcode_lookup(const struct ledger *ledger, const char *code,
                               struct ledger_barcode_match *out, uint32_t max);

/* Value of attribute name (NUL-terminated) of item into value (size >=
 * SKULD_CODE_SIZE). Returns 1 if found, else 0. */
int ledger_attribute(const struct ledger *ledger, uint32_t item, const char *name, char *value);

struct ledger_item_info {
	uint8_t scale;  /* decimal places of the item's base unit */
	uint8_t bundle; /* 1: a bundle (no stock of its own) */
};

/* What the catalog says of a defined item. Returns SKULD_OK or
 * SKULD_ITEM_UNKNOWN. */
uint32_t ledger_item(const struct ledger *ledger, uint32_t item, struct ledger_item_info *out);

/* Code of a defined location / name of a defined channel (SKULD_CODE_SIZE
 * bytes, NUL-padded) into code. Returns 1, or 0 (code untouched) when the
 * id is not defined. */
int ledger_location_code(const struct ledger *ledger, uint32_t location, char *code);
int ledger_channel_code(const struct ledger *ledger, uint32_t channel, char *code);

/* Location lifecycle (enum skuld_location_state), or -1 if undefined. */
int ledger_location_state(const struct ledger *ledger, uint32_t location);

/* Number of open holds. */
uint32_t ledger_holds_open(const struct ledger *ledger);

/* Stock entries: the (item, location) pairs a movement has touched, in the
 * order they were created (an entry is never removed). For tools that list
 * every counter (skuld-replay state): ledger_stock_count says how many;
 * ledger_stock_entry fills the ids and counters of entry index < count.
 * Between batches only. */
uint32_t ledger_stock_count(const struct ledger *ledger);
void ledger_stock_entry(const struct ledger *ledger, uint32_t index, uint32_t *item,
                        uint32_t *location, struct ledger_level *out);

/* What a channel has been told of an item (docs/LEDGER.md section 12). */
struct ledger_push_info {
	uint32_t item;
	uint32_t listing_serial; /* changes whenever the listing text changes */
	uint64_t version;        /* of quantity */
	uint64_t accepted;       /* version the channel last accepted, 0: none */
	int64_t quantity;        /* what the channel should show now */
	int64_t shown;           /* what it accepted with `accepted` */
	uint64_t dirty_since;    /* ledger time it first differed, 0 when clean */
	uint64_t first_seen;     /* open exception, else 0 */
	uint64_t last_seen;
	uint32_t reports;
	uint16_t exception; /* enum skuld_push_exception, 0: none */
	uint8_t state;      /* enum skuld_push_state */
	uint8_t scale;
	char detail[SKULD_EXCEPTION_DETAIL_SIZE];
	char listing[SKULD_LISTING_SIZE];
};

/* The push state of a mapped (channel, item). Returns SKULD_OK,
 * SKULD_CHANNEL_UNKNOWN or SKULD_LISTING_UNKNOWN (not mapped now). */
uint32_t ledger_push_item(const struct ledger *ledger, uint32_t channel, uint32_t item,
                          struct ledger_push_info *out);

/* The first item after `after` that is mapped on channel (dirty_only 0) or
 * dirty there (1), or 0 when there is none (or no such channel). */
uint32_t ledger_push_next(const struct ledger *ledger, uint32_t channel, uint32_t after,
                          int dirty_only);

struct ledger_channel_push_info {
	uint32_t mapped;
	uint32_t dirty;
	uint32_t parked;
	uint32_t reports;      /* the channel's own exception */
	uint64_t oldest_dirty; /* ledger time, 0 when nothing is dirty */
	uint64_t last_ack;
	uint64_t acks;
	uint64_t first_seen;
	uint64_t last_seen;
	uint16_t exception;
	char detail[SKULD_EXCEPTION_DETAIL_SIZE];
};

/* A channel's push figures. Returns SKULD_OK or SKULD_CHANNEL_UNKNOWN. */
uint32_t ledger_channel_push(const struct ledger *ledger, uint32_t channel,
                             struct ledger_channel_push_info *out);

/* The log sequence of the first event of the next ledger_apply (the server
 * calls it before every batch, with the sequence the log will give it;
 * without it the ledger numbers events on from the previous batch). The
 * sequence is only remembered in discrepancy records (docs/LEDGER.md
 * section 13). */
void ledger_sequence(struct ledger *ledger, uint64_t event_first);

/* The discrepancy tracking origin (docs/LEDGER.md section 13): notes of
 * events whose log sequence is below it are not remembered. 0 for a ledger
 * that tracked from its first event; UINT64_MAX for one restored from a
 * version 2 snapshot that has not yet been given a sequence (the next
 * ledger_sequence, or ledger_apply, fixes it there). */
uint64_t ledger_discrepancy_origin(const struct ledger *ledger);

/* Sets the origin of a ledger that holds no discrepancy record yet (a
 * replay that must match a ledger restored from a version 2 snapshot:
 * skuld-replay verify). origin must not be UINT64_MAX. */
void ledger_discrepancy_origin_set(struct ledger *ledger, uint64_t origin);

/* A remembered discrepancy (docs/LEDGER.md section 13). */
struct ledger_discrepancy_info {
	uint32_t item;
	uint32_t location;
	uint64_t first_sequence; /* log sequence of the first event of the episode */
	uint64_t last_sequence;  /* of the latest */
	uint64_t first_at;       /* event times of those */
	uint64_t last_at;
	int64_t expected; /* latest: available before the sale, or the expected count */
	int64_t found;    /* latest: units sold, or units counted */
	uint32_t occurrences;
	uint8_t kinds;        /* seen in the episode: 1 sale short, 2 count off */
	uint8_t last_kind;    /* 1 or 2: of the latest */
	uint8_t acknowledged; /* 1 after DISCREPANCY_ACK, until the next one */
};

/* Up to max records with location == `location` (0: any) whose (location,
 * item) is after (after_location, after_item), ascending by (location,
 * item), into out; returns how many. *more says whether more such records
 * exist beyond them. O(max * log n) expected (a treap lookup per record,
 * discrepancies.h). */
uint32_t ledger_discrepancy_page(const struct ledger *ledger, uint32_t location,
                                 uint32_t after_location, uint32_t after_item, uint32_t max,
                                 struct ledger_discrepancy_info *out, int *more);

struct ledger_discrepancy_figures {
	uint32_t records;  /* remembered now */
	uint32_t capacity; /* discrepancies_max */
	uint64_t dropped;  /* open records evicted to make room */
	uint64_t evicted;  /* acknowledged records evicted to make room */
};

void ledger_discrepancy_figures(const struct ledger *ledger,
                                struct ledger_discrepancy_figures *out);

/* XXH3-64 over all state in a canonical order (docs/LEDGER.md section 7). */
uint64_t ledger_hash(const struct ledger *ledger);

#endif /* SKULD_LEDGER_H */
