/*
 * ledger_model.h — the reference model of the ledger state machine and the
 * randomized generator that drives it, shared by the model-based tests:
 * tests/test_ledger_model.c (against the ledger in process, and a replay
 * through the log) and tests/test_server_model.c (through the real server
 * over TCP). Both executables compile tests/ledger_model.c.
 *
 * The model is written from docs/LEDGER.md alone, never from the .c files of
 * server/core: plain arrays, linear scans, every check of every kind in the
 * order the specification lists it (ledger_model.c has the readings of the
 * points the specification leaves implicit). model_apply is the model's
 * ledger_apply: same arguments, same results.
 *
 * The generator (struct run) is seeded (splitmix64) and reads the model to
 * pick plausible ids: defined items, open holds, open counts and transfers,
 * recent events to repeat. A driver generates a batch, applies it where it
 * tests it and to the model, and calls record_statistics; the sequence of
 * random numbers depends only on the seed and the model's state.
 *
 * Capacities are the CFG_* constants, deliberately small so that every
 * "full" result happens; model_config gives the same values as a
 * struct ledger_config. LEDGER_MODEL_REALTIME (set by the server test's
 * build) changes the idempotency window, the one capacity that depends on
 * how fast events come.
 */
#ifndef SKULD_TESTS_LEDGER_MODEL_H
#define SKULD_TESTS_LEDGER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "log.h"
#include "protocol.h"

/* ---- Configuration -------------------------------------------------------- */

#define QMAX      LEDGER_QUANTITY_MAX
#define NS_PER_S  1000000000ull
#define NS_PER_MS 1000000ull

/* Small capacities so that CATALOG_FULL, HOLDS_FULL and KEYS_FULL happen. */
#define CFG_ITEMS           16u
#define CFG_LOCATIONS       6u
#define CFG_CHANNELS        3u
#define CFG_STOCK           52u /* < items x locations: the stock-room rule happens */
#define CFG_CODES           24u
#define CFG_BARCODES        8u
#define CFG_ATTRIBUTES      10u
#define CFG_BUNDLES         2u
#define CFG_COMPONENTS      3u
#define CFG_POOL            3u
#define CFG_BUFFERS         4u
#define CFG_HOLDS           12u
#define CFG_CLOSED_HOLDS    8u
#define CFG_CLOSED_GRACE_NS (10ull * NS_PER_S)
#define CFG_TTL_MAX_S       60u
#define CFG_COUNTS          3u
#define CFG_TRANSFERS       3u
#ifndef LEDGER_MODEL_REALTIME
#define CFG_KEYS          128u
#define CFG_KEY_WINDOW_NS (3ull * NS_PER_S)
#else
/* Driven in real time (tests/test_server_model.c): about a thousand events a
 * second, so a 3 s window of 128 keys would answer nearly every event with
 * KEYS_FULL. This window and size still fill up in bursts and forget keys
 * all the time. */
#define CFG_KEYS          1024u
#define CFG_KEY_WINDOW_NS (2ull * NS_PER_S)
#endif
#define CFG_BATCH 64u
#define CFG_CHAIN 4u

#define HOLD_ID_MAX 40u /* the generator's hold ids are 0..HOLD_ID_MAX */
/* Open holds, closed ones remembered, and those closed within one batch. */
#define MODEL_HOLDS_CAP (CFG_HOLDS + CFG_CLOSED_HOLDS + CFG_BATCH + 8u)

#define TIME_START (1700000000ull * NS_PER_S)

/* The capacities above as a ledger configuration. */
void model_config(struct ledger_config *config);

/* ---- Coverage of the model's branches (printed with SKULD_MODEL_VERBOSE) -- */

enum coverage {
	COVER_BOUND,                /* an effect failed the counter bound */
	COVER_SALE_PRE_COUNT,       /* a sale before an applied count */
	COVER_SALE_OPEN_COUNT,      /* a sale lowered an open count's expected */
	COVER_COMMIT_PARTIAL,       /* a commit left some of the hold */
	COVER_COMMIT_PAST_DUE,      /* AFTER_EXPIRY on an open, past-due hold */
	COVER_COMMIT_EXPIRED,       /* AFTER_EXPIRY on an expired hold */
	COVER_COMMIT_EXPIRED_SHORT, /* ... refused: INSUFFICIENT */
	COVER_RESERVE_CHANNEL,      /* a channel hold placed */
	COVER_RESERVE_CHANNEL_TIE,  /* ... with two locations of equal best spare */
	COVER_RESERVE_BUNDLE,       /* a bundle hold placed */
	COVER_REALLOCATE_CHANNEL,   /* a channel hold moved */
	COVER_CHAIN_UNDONE,         /* a chain failed after a success */
	COVER_FORGET_KEY,           /* housekeeping forgot a key */
	COVER_FORGET_HOLD_TIME,     /* ... a closed hold, by grace time */
	COVER_FORGET_HOLD_COUNT,    /* ... a closed hold, over closed_holds_max */
	COVER_STOCK_FULL,           /* the stock-room rule refused an event */
	COVER_EXPECTED_BOUND,       /* a sale would push a count's expected out */
	COVER_COUNT,
};

extern const char *const coverage_names[COVER_COUNT];
extern uint64_t coverage[COVER_COUNT];

/* ---- The reference model: state ------------------------------------------ */

enum counter {
	COUNTER_ON_HAND,
	COUNTER_RESERVED,
	COUNTER_COMMITTED,
	COUNTER_DAMAGED,
	COUNTER_QUARANTINE,
	COUNTER_INCOMING,
	COUNTER_COUNT,
};

struct model_entry {
	int64_t counter[COUNTER_COUNT];
	uint64_t counted_at;
};

struct model_item {
	bool defined;
	bool bundle;
	bool frozen;
	uint8_t scale;
	uint32_t component_count;
	uint32_t component[CFG_COMPONENTS];
	int64_t component_k[CFG_COMPONENTS];
};

struct model_code {
	char text[SKULD_CODE_SIZE];
	uint32_t item;
	bool retired;
};

struct model_barcode {
	char text[SKULD_CODE_SIZE];
	uint32_t item;
	int64_t pack;
	bool active;
};

struct model_attribute {
	uint32_t item;
	char name[SKULD_CODE_SIZE + 1];
	char value[SKULD_CODE_SIZE + 1];
};

struct model_location {
	bool defined;
	char code[SKULD_CODE_SIZE];
	uint32_t state;
};

struct model_pool {
	uint32_t location;
	int64_t floor;
};

struct model_channel {
	bool defined;
	char code[SKULD_CODE_SIZE];
	int64_t buffer;
	int64_t cap;
	int64_t minimum;
	uint32_t pool_count;
	struct model_pool pool[CFG_POOL];
};

struct model_buffer {
	uint32_t channel;
	uint32_t item;
	int64_t quantity;
};

struct model_count {
	uint32_t item;
	uint32_t location;
	uint64_t id;
	int64_t expected;
	uint64_t opened_at;
};

struct model_transfer {
	uint64_t id;
	uint32_t item;
	uint32_t from;
	uint32_t to;
	int64_t remaining;
};

struct model_hold {
	uint64_t id;
	uint64_t expires_at;
	uint64_t closed_at;
	uint64_t close_order; /* event order of the closing, for forgetting ties */
	int64_t remaining;
	uint32_t item;
	uint32_t location;
	uint32_t channel;
	uint32_t state; /* enum ledger_hold_state */
};

struct model_key {
	skuld_u128 key;
	struct skuld_event event; /* the bytes, compared whole */
	uint64_t inserted_at;
	struct skuld_result result;
};

struct model {
	uint64_t time; /* T */
	struct model_item item[CFG_ITEMS + 1];
	struct model_entry stock[CFG_ITEMS + 1][CFG_LOCATIONS + 1];
	bool stock_exists[CFG_ITEMS + 1][CFG_LOCATIONS + 1]; /* created, never removed */
	uint32_t stock_count;
	struct model_location location[CFG_LOCATIONS + 1];
	struct model_channel channel[CFG_CHANNELS + 1];
	uint32_t code_count;
	struct model_code code[CFG_CODES];
	uint32_t barcode_count;
	struct model_barcode barcode[CFG_BARCODES];
	uint32_t attribute_count;
	struct model_attribute attribute[CFG_ATTRIBUTES];
	uint32_t buffer_count;
	struct model_buffer buffer[CFG_BUFFERS];
	uint32_t count_count;
	struct model_count count[CFG_COUNTS];
	uint32_t transfer_count;
	struct model_transfer transfer[CFG_TRANSFERS];
	uint32_t hold_count;
	struct model_hold hold[MODEL_HOLDS_CAP];
	uint64_t close_order_next;
	uint32_t key_count;
	struct model_key key[CFG_KEYS];
};

/* The unit entries a quantity of item touches: itself, or its components. */
struct expansion {
	uint32_t count;
	uint32_t item[CFG_COMPONENTS];
	int64_t k[CFG_COMPONENTS];
};

/* ---- The reference model: queries and batches ------------------------------ */

int64_t entry_available(const struct model_entry *entry);
int64_t model_available(const struct model *model, uint32_t item, uint32_t location);
/* "available" as results report it: kits for a bundle. */
int64_t model_result_available(const struct model *model, uint32_t item, uint32_t location);
struct expansion model_expand(const struct model *model, uint32_t item);
struct model_code *model_code_find(struct model *model, const char *text);
struct model_barcode *model_barcode_find(struct model *model, const char *text, uint32_t item);
struct model_attribute *model_attribute_find(struct model *model, uint32_t item, const char *name);
struct model_hold *model_hold_find(struct model *model, uint64_t id);
uint32_t model_holds_open(const struct model *model);
/* SKULD_OK, or ITEM_UNKNOWN / LOCATION_UNKNOWN (section 5 notation). */
uint32_t check_item(const struct model *model, uint32_t item);
uint32_t check_location(const struct model *model, uint32_t location);
/* What ledger_level answers for (item, location). */
uint32_t model_level_status(const struct model *model, uint32_t item, uint32_t location);

/* One batch, as ledger_apply: results[i] for events[i]. */
void model_apply(struct model *model, uint64_t timestamp_ns, enum ledger_source source,
                 const struct skuld_event *events, uint32_t count, struct skuld_result *results);

/* Open holds due at now, ascending (expires_at, id), at most max. */
uint32_t model_expire_due(const struct model *model, uint64_t now, uint32_t max, uint64_t *ids);

/* Section 6: the channel's published quantity of item. */
uint32_t model_channel_quantity(struct model *model, uint32_t channel, uint32_t item, int64_t *out);

/* Codes the generator uses: S00..S29 (SKUs), B00..B04 (barcodes). */
#define SKU_POOL     30u
#define BARCODE_POOL 5u

void code_text(char *code, const char *prefix, uint32_t number);

extern const char *const attribute_names[3];

/* ---- The run: generator state and statistics ----------------------------- */

struct run_options {
	uint64_t seed;
	uint64_t client_events_min; /* stop once this many client events ran */
	uint32_t epoch_batches;     /* client batches before a fresh ledger; 0: never */
	const char *log_dir;        /* NULL, or append every batch to a log there */
};

#define HISTORY_SIZE 256u
#define HASHES_MAX   8192u

struct run {
	const struct run_options *options;
	uint64_t rng;
	struct ledger *ledger;
	struct model *model;
	uint64_t now;      /* the generator's clock, monotonic */
	uint64_t key_next; /* fresh idempotency keys */
	uint64_t batch;    /* batches applied, over all epochs */
	uint32_t epoch;
	uint32_t epoch_batch;
	struct skuld_event history[HISTORY_SIZE]; /* recent client events */
	uint64_t history_count;
	/* Statistics. */
	uint64_t client_events;
	uint64_t server_events;
	uint64_t status_count[256];
	uint64_t kind_ok[64];
	uint64_t replayed;
	uint64_t flag_count[5]; /* results with each enum skuld_result_flags bit */
	uint64_t chains;
	uint64_t due_calls;
	/* Replay support. */
	struct log_writer *writer;
	uint64_t request;
	uint32_t hash_count;
	uint64_t *hashes; /* ledger_hash after every batch, when logging */
};

uint64_t rng_next(struct run *run);
uint32_t rng_below(struct run *run, uint32_t bound);
bool rng_percent(struct run *run, uint32_t percent);

/* One line of text for an event or a result, for failure reports. */
void event_describe(char *text, size_t size, const struct skuld_event *event);
void result_describe(char *text, size_t size, const struct skuld_result *result);

/* ---- The generator --------------------------------------------------------- */

/* A zeroed event of kind with a fresh idempotency key. */
struct skuld_event event_new(struct run *run, uint16_t kind);
uint32_t pick_ttl(struct run *run);
uint64_t pick_hold_id(struct run *run);

/* A client batch of 1..CFG_BATCH events into events; returns the count. */
uint32_t generate_batch(struct run *run, struct skuld_event *events);

/* Steps run->now as the in-process test's clock does. */
void advance_time(struct run *run);
uint64_t batch_timestamp(struct run *run);

/* A fresh ledger's first two batches (apply the first before generating the
 * second); each returns its count. */
uint32_t epoch_setup_catalog(struct run *run, struct skuld_event *events);
uint32_t epoch_setup_stock(struct run *run, struct skuld_event *events);

/* Counts the batch's statuses and flags and remembers its client events for
 * later repeats; call after every applied batch. */
void record_statistics(struct run *run, enum ledger_source source, const struct skuld_event *events,
                       uint32_t count, const struct skuld_result *results);

/* ---- Runs ------------------------------------------------------------------- */

/* A number from the environment (decimal or 0x hex), or fallback. */
uint64_t env_u64(const char *name, uint64_t fallback);

/* One line of figures on stderr; with SKULD_MODEL_VERBOSE=1 every count. */
void run_report(const struct run *run);

#endif /* SKULD_TESTS_LEDGER_MODEL_H */
