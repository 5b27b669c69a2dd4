/*
 * snapshot_stream.h — the framing of a ledger snapshot stream, shared by
 * ledger_snapshot.c and the table modules that save and load their own
 * records (catalog.c). Internal to server/core.
 *
 * Owns: the stream's record layouts (the byte tables of docs/FORMAT.md,
 * "Ledger snapshot stream"), a buffered writer over a caller's sink and a
 * reader over a caller's source that turns every shortfall into a reason
 * string. Nothing here trusts a byte it reads: every count a part header
 * announces is checked against a bound before a record is read, and every
 * failure is a return value, never an assertion.
 *
 * Invariants:
 *   - A stream is: the stream header, then the parts in the order of enum
 *     snapshot_part, each a part header and `count` records of exactly
 *     `record_size` bytes, then the END part (record size 0, count 0).
 *   - All integers little-endian (the structs below are written as they lie
 *     in memory, which static_assert pins to little-endian); reserved bytes
 *     are written as zero and a reader refuses anything else.
 *   - Once a writer or reader has failed, every later call fails with the
 *     same error and changes nothing.
 */
#ifndef SKULD_CORE_SNAPSHOT_STREAM_H
#define SKULD_CORE_SNAPSHOT_STREAM_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger_snapshot.h"
#include "protocol.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "snapshot records are little-endian");

#define SNAPSHOT_STREAM_MAGIC 0x5245474445444c53ull /* "SLDEDGER" as bytes */
#define SNAPSHOT_BUFFER_SIZE  (64u << 10)

/* Parts, in stream order. */
enum snapshot_part {
	SNAPSHOT_PART_ITEMS = 1,
	SNAPSHOT_PART_LOCATIONS = 2,
	SNAPSHOT_PART_CHANNELS = 3,
	SNAPSHOT_PART_POOLS = 4,
	SNAPSHOT_PART_COMPONENTS = 5,
	SNAPSHOT_PART_SKUS = 6,
	SNAPSHOT_PART_BARCODES = 7,
	SNAPSHOT_PART_ATTRIBUTES = 8,
	SNAPSHOT_PART_BUFFERS = 9,
	SNAPSHOT_PART_STOCK = 10,
	SNAPSHOT_PART_HOLDS_CLOSED = 11,
	SNAPSHOT_PART_HOLDS_OPEN = 12,
	SNAPSHOT_PART_COUNTS = 13,
	SNAPSHOT_PART_TRANSFERS = 14,
	SNAPSHOT_PART_KEYS = 15,
	SNAPSHOT_PART_PUSH = 16,
	SNAPSHOT_PART_CHANNEL_PUSH = 17,
	SNAPSHOT_PART_LISTINGS = 18,
	SNAPSHOT_PART_DISCREPANCY_STATE = 19,
	SNAPSHOT_PART_DISCREPANCIES = 20,
	SNAPSHOT_PART_END = 21,
	SNAPSHOT_PART_END_V1 = 16, /* version 1 ended after KEYS */
	SNAPSHOT_PART_END_V2 = 19, /* version 2 ended after LISTINGS */
};

struct snapshot_stream_header {
	uint64_t magic;              /* SNAPSHOT_STREAM_MAGIC */
	uint32_t version;            /* LEDGER_SNAPSHOT_VERSION */
	uint32_t header_size;        /* 64 */
	uint64_t config_fingerprint; /* ledger_config_fingerprint of the ledger */
	uint64_t now;                /* batch time T */
	uint32_t bundles_used;       /* component blocks handed out */
	uint32_t reserved32;         /* zero */
	uint64_t reserved[3];        /* zero */
};
static_assert(sizeof(struct snapshot_stream_header) == 64, "stream header");
static_assert(offsetof(struct snapshot_stream_header, config_fingerprint) == 16, "stream header");
static_assert(offsetof(struct snapshot_stream_header, now) == 24, "stream header");
static_assert(offsetof(struct snapshot_stream_header, bundles_used) == 32, "stream header");

struct snapshot_part_header {
	uint32_t tag;         /* enum snapshot_part */
	uint32_t record_size; /* bytes per record */
	uint32_t count;       /* records that follow */
	uint32_t reserved;    /* zero */
};
static_assert(sizeof(struct snapshot_part_header) == 16, "part header");

struct snapshot_item {
	uint32_t id;
	uint8_t bundle; /* 0 or 1 */
	uint8_t frozen; /* 0 or 1; 1 only for a bundle */
	uint8_t scale;  /* 0..SKULD_SCALE_MAX */
	uint8_t reserved;
	uint32_t bundle_slot; /* component block + 1, 0: none */
	uint32_t components;  /* components in that block */
};
static_assert(sizeof(struct snapshot_item) == 16, "item record");

struct snapshot_location {
	uint32_t id;
	uint8_t state; /* enum skuld_location_state */
	uint8_t reserved[3];
	char code[SKULD_CODE_SIZE];
};
static_assert(sizeof(struct snapshot_location) == 40, "location record");

struct snapshot_channel {
	uint32_t id;
	uint32_t pool_count; /* entries used in the channel's pool block */
	int64_t buffer;
	int64_t cap;
	int64_t minimum;
	char code[SKULD_CODE_SIZE];
};
static_assert(sizeof(struct snapshot_channel) == 64, "channel record");

struct snapshot_pool {
	uint32_t channel;
	uint32_t location;
	uint32_t active; /* 0 or 1 */
	uint32_t reserved;
	int64_t floor;
};
static_assert(sizeof(struct snapshot_pool) == 24, "pool record");

struct snapshot_component {
	uint32_t bundle;
	uint32_t item;
	int64_t quantity;
};
static_assert(sizeof(struct snapshot_component) == 16, "component record");

struct snapshot_sku {
	char code[SKULD_CODE_SIZE];
	uint32_t item;
	uint32_t retired; /* 0 or 1 */
};
static_assert(sizeof(struct snapshot_sku) == 40, "sku record");

struct snapshot_barcode {
	char code[SKULD_CODE_SIZE];
	uint32_t item;
	uint32_t retired; /* 0 or 1 */
	int64_t pack;
};
static_assert(sizeof(struct snapshot_barcode) == 48, "barcode record");

struct snapshot_attribute {
	uint32_t item;
	uint32_t reserved;
	char text[SKULD_CODE_SIZE]; /* "name=value" */
};
static_assert(sizeof(struct snapshot_attribute) == 40, "attribute record");

struct snapshot_buffer {
	uint32_t channel;
	uint32_t item;
	int64_t buffer;
};
static_assert(sizeof(struct snapshot_buffer) == 16, "buffer record");

struct snapshot_stock {
	uint32_t item;
	uint32_t location;
	int64_t on_hand;
	int64_t reserved;
	int64_t committed;
	int64_t damaged;
	int64_t quarantine;
	int64_t incoming;
	uint64_t counted_at;
};
static_assert(sizeof(struct snapshot_stock) == 64, "stock record");

struct snapshot_hold {
	uint64_t id;
	uint64_t expires_at;
	uint64_t closed_at;
	int64_t remaining;
	uint32_t item;
	uint32_t location;
	uint32_t channel;
	uint32_t state; /* enum ledger_hold_state */
};
static_assert(sizeof(struct snapshot_hold) == 48, "hold record");

struct snapshot_count {
	uint32_t item;
	uint32_t location;
	uint64_t id;
	int64_t expected;
	uint64_t opened_at;
};
static_assert(sizeof(struct snapshot_count) == 32, "count record");

struct snapshot_transfer {
	uint64_t id;
	uint32_t item;
	uint32_t from;
	uint32_t to;
	uint32_t reserved;
	int64_t remaining;
};
static_assert(sizeof(struct snapshot_transfer) == 32, "transfer record");

/* The push clocks (one record). */
struct snapshot_push {
	uint64_t serial;         /* the push version clock */
	uint32_t listing_serial; /* the listing text clock */
	uint32_t reserved;
};
static_assert(sizeof(struct snapshot_push) == 16, "push record");

/* A channel's push figures that are not derived from its listings: only
 * channels with an acknowledgement or an open exception, ascending. */
struct snapshot_channel_push {
	uint32_t channel;
	uint16_t exception; /* enum skuld_push_exception, 0: none */
	uint16_t reserved_0;
	uint32_t reports;
	uint32_t reserved_1;
	uint64_t acks;
	uint64_t last_ack;
	uint64_t first_seen;
	uint64_t last_seen;
	char detail[SKULD_EXCEPTION_DETAIL_SIZE];
};
static_assert(sizeof(struct snapshot_channel_push) == 72, "channel push record");

/* A listing record is struct listing (push_state.h), 136 bytes. */

/* The discrepancy table's counters (one record, version 3). */
struct snapshot_discrepancy_state {
	uint64_t sequence_next; /* log sequence the next batch would start at */
	uint64_t dropped;       /* open records evicted */
	uint64_t evicted;       /* acknowledged records evicted */
	uint64_t origin;        /* tracking origin: notes of earlier events ignored; 0: all */
};
static_assert(sizeof(struct snapshot_discrepancy_state) == 32, "discrepancy state record");

/* A discrepancy record is struct discrepancy (discrepancies.h), 64 bytes. */

struct snapshot_key {
	skuld_u128 key;
	uint64_t event_hash;
	uint64_t inserted_at;
	struct skuld_result result;
};
static_assert(sizeof(struct snapshot_key) == 64, "key record");

/* ---- Writing ------------------------------------------------------------- */

struct snapshot_writer {
	const struct snapshot_sink *sink;
	int error; /* 0, or the sink's first error */
	size_t used;
	uint64_t written; /* bytes handed to put so far */
	unsigned char buffer[SNAPSHOT_BUFFER_SIZE];
};

/* Appends size bytes (buffered). After a sink error, does nothing. */
void snapshot_put(struct snapshot_writer *writer, const void *bytes, size_t size);

/* Appends a part header. */
void snapshot_part_put(struct snapshot_writer *writer, uint32_t tag, uint32_t record_size,
                       uint32_t count);

/* Hands the buffered bytes to the sink. Returns 0 or the sink's error. */
int snapshot_flush(struct snapshot_writer *writer);

/* ---- Reading ------------------------------------------------------------- */

struct snapshot_reader {
	const struct snapshot_source *source;
	char *reason; /* the caller's, reason_size bytes */
	size_t reason_size;
	int error;         /* 0, or the first failure */
	uint64_t consumed; /* bytes read so far (for messages) */
};

/* Reads exactly size bytes. Returns 0, or the source's error (-ENODATA:
 * the stream ended early) with a reason. */
int snapshot_get(struct snapshot_reader *reader, void *bytes, size_t size);

/* Records a refusal: the reason (printf format) and -EBADMSG, which it
 * returns. Keeps an earlier failure if there was one. */
int snapshot_refuse(struct snapshot_reader *reader, const char *format, ...)
        __attribute__((format(printf, 2, 3)));

/* Reads a part header and checks it: tag, record size, count <= count_max,
 * reserved zero. Returns 0 with *count set, or a refusal. */
int snapshot_part_get(struct snapshot_reader *reader, uint32_t tag, uint32_t record_size,
                      uint32_t count_max, uint32_t *count);

/* 1 when size bytes at bytes are all zero. */
int snapshot_zero(const void *bytes, size_t size);

/* 1 when a code field is one the ledger could have stored: its first byte
 * is non-zero (the ledger's own rule; protocol/ is stricter). */
int snapshot_code_valid(const char *code);

/* ---- The catalog's part of the stream (catalog.c) ----------------------- */

struct catalog;

/* Bytes the catalog's parts take (part headers included). */
uint64_t catalog_snapshot_bytes(const struct catalog *catalog);

/* Writes parts ITEMS .. BUFFERS. */
void catalog_snapshot_save(const struct catalog *catalog, struct snapshot_writer *writer);

/* Reads parts ITEMS .. BUFFERS into a freshly initialised catalog whose
 * bundles_used the caller set from the stream header (checked against
 * bundles_max), checking every record against the capacities and the
 * records before it. Returns 0 or the reader's error. */
int catalog_snapshot_load(struct catalog *catalog, struct snapshot_reader *reader);

#endif /* SKULD_CORE_SNAPSHOT_STREAM_H */
