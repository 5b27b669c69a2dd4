/*
 * protocol.h — skuld's wire format: frame header, event records, result
 * records, REGISTER bodies, and the codec that checks them.
 *
 * Owns: the byte layout of everything that crosses a socket, and (because
 * the log stores events and results verbatim) the layout of event and result
 * records on disk too. docs/PROTOCOL.md is the same information as byte
 * tables; keep the two in step.
 *
 * Invariants:
 *   - Every structure is fixed-size, naturally aligned and little-endian; the
 *     static_asserts below pin every size and offset. The code maps structs
 *     straight onto bytes, so it builds only for little-endian hosts.
 *   - Reserved bytes are zero on the wire; the decoder rejects anything else,
 *     so a later version can give them meaning.
 *   - Nothing here allocates or performs I/O. Decoders read only the bytes
 *     they are given and never trust a length they have not checked.
 */
#ifndef SKULD_PROTOCOL_H
#define SKULD_PROTOCOL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "skuld maps wire structures onto memory and needs a little-endian host"
#endif

/* ---- Constants ---------------------------------------------------------- */

#define SKULD_MAGIC                0x444c4b53u /* "SKLD" as bytes on the wire */
#define SKULD_PROTOCOL_VERSION_MIN 1
#define SKULD_PROTOCOL_VERSION_MAX 1

#define SKULD_HEADER_SIZE          64u
#define SKULD_BODY_SIZE_MAX        (1u << 20) /* 1 MiB */
#define SKULD_EVENT_SIZE           128u
#define SKULD_RESULT_SIZE          32u
#define SKULD_EVENTS_PER_FRAME_MAX (SKULD_BODY_SIZE_MAX / SKULD_EVENT_SIZE)
#define SKULD_CODE_SIZE            32u /* SKU, barcode, location code, channel name */
#define SKULD_TOKEN_SIZE           64u /* REGISTER token */
#define SKULD_CLIENT_NAME_SIZE     32u

/* A 128-bit identifier (client id, idempotency key, reference). Two 64-bit
 * halves keep the record layout free of compiler-specific __int128. */
typedef struct skuld_u128 {
	uint64_t lo;
	uint64_t hi;
} skuld_u128;

static inline int skuld_u128_is_zero(skuld_u128 value)
{
	return (value.lo | value.hi) == 0;
}

static inline int skuld_u128_equal(skuld_u128 a, skuld_u128 b)
{
	return a.lo == b.lo && a.hi == b.hi;
}

/* ---- Frame header (64 bytes) -------------------------------------------- */

enum skuld_operation {
	SKULD_OP_REGISTER = 1, /* body: one skuld_register_request / _reply */
	SKULD_OP_SUBMIT = 2,   /* body: events; reply: one result per event */
	SKULD_OP_PING = 3,     /* empty body both ways */
	SKULD_OP_ERROR = 4,    /* server only: body is one skuld_error_body */
	SKULD_OP_QUERY = 5,    /* body: one skuld_query; reply: 64-byte query records */
	SKULD_OP_LOOKUP = 6,   /* body: one skuld_lookup; reply: skuld_lookup_match records */
	SKULD_OP_STATS = 7,    /* empty body; reply: 256-byte stats records */
};
#define SKULD_OP_FIRST SKULD_OP_REGISTER
#define SKULD_OP_LAST  SKULD_OP_STATS

enum skuld_frame_flags {
	SKULD_FRAME_REPLY = 1u << 0, /* set on every frame the server sends */
};
#define SKULD_FRAME_FLAGS_KNOWN SKULD_FRAME_REPLY

struct skuld_header {
	uint32_t magic;           /* SKULD_MAGIC */
	uint16_t version;         /* protocol version of this frame */
	uint8_t operation;        /* enum skuld_operation */
	uint8_t flags;            /* enum skuld_frame_flags */
	uint64_t request;         /* request number within the session */
	skuld_u128 client;        /* client id, chosen by the client, non-zero */
	uint32_t body_size;       /* bytes after the header */
	uint32_t count;           /* records in the body */
	uint32_t result;          /* replies: enum skuld_status; requests: 0 */
	uint32_t reserved;        /* zero */
	uint64_t checksum_body;   /* XXH3-64 of the body bytes */
	uint64_t checksum_header; /* XXH3-64 of header bytes 0..55 */
};
static_assert(sizeof(struct skuld_header) == SKULD_HEADER_SIZE, "header");
static_assert(offsetof(struct skuld_header, version) == 4, "header");
static_assert(offsetof(struct skuld_header, operation) == 6, "header");
static_assert(offsetof(struct skuld_header, flags) == 7, "header");
static_assert(offsetof(struct skuld_header, request) == 8, "header");
static_assert(offsetof(struct skuld_header, client) == 16, "header");
static_assert(offsetof(struct skuld_header, body_size) == 32, "header");
static_assert(offsetof(struct skuld_header, count) == 36, "header");
static_assert(offsetof(struct skuld_header, result) == 40, "header");
static_assert(offsetof(struct skuld_header, reserved) == 44, "header");
static_assert(offsetof(struct skuld_header, checksum_body) == 48, "header");
static_assert(offsetof(struct skuld_header, checksum_header) == 56, "header");

/* ---- Event record (128 bytes) ------------------------------------------- */

/* Every stock movement and every catalog definition is one event. The record
 * is flat: each kind uses a subset of the fields and every field it does not
 * use must be zero (the per-kind table in protocol.c and PROTOCOL.md). */
enum skuld_event_kind {
	/* Catalog and configuration. */
	SKULD_ITEM_DEFINE = 1,      /* item, code = primary SKU, scale, flags BUNDLE */
	SKULD_SKU_ALIAS = 2,        /* item, code = SKU; flag RETIRE drops it */
	SKULD_BARCODE_DEFINE = 3,   /* item, code = barcode, quantity = pack size */
	SKULD_ATTRIBUTE_SET = 4,    /* item, code = "name=value" variant attribute */
	SKULD_LOCATION_DEFINE = 5,  /* location, code, reason = lifecycle */
	SKULD_LOCATION_STATE = 6,   /* location, reason = lifecycle */
	SKULD_BUNDLE_COMPONENT = 7, /* item = bundle, target = component, quantity */
	SKULD_CHANNEL_DEFINE = 8,   /* channel, code = name, quantity = buffer */
	SKULD_CHANNEL_POOL = 9,     /* channel, location, quantity = floor; flag RETIRE */
	SKULD_CHANNEL_BUFFER = 10,  /* channel, item, quantity = per-item buffer */
	SKULD_CHANNEL_CAP = 11,     /* channel, quantity = cap (0: none) */
	SKULD_CHANNEL_MIN = 12,     /* channel, quantity = minimum to publish */
	SKULD_CHANNEL_LISTING = 13, /* channel, item, listing = the channel's identifier;
	                               flag RETIRE unmaps */
	/* Movements. */
	SKULD_RECEIVE = 32,      /* item, location, quantity > 0; flag FROM_INCOMING */
	SKULD_ADJUST = 33,       /* item, location, quantity != 0, reason */
	SKULD_COUNT_OPEN = 34,   /* item, location, id = count id */
	SKULD_COUNT_CLOSE = 35,  /* item, location, id = count id, quantity = counted */
	SKULD_SALE = 36,         /* item, location, quantity > 0 */
	SKULD_RESERVE = 37,      /* item, location | channel, id = hold, quantity, ttl */
	SKULD_EXTEND = 38,       /* id = hold, ttl */
	SKULD_COMMIT = 39,       /* id = hold, quantity (0: all); flag AFTER_EXPIRY */
	SKULD_RELEASE = 40,      /* id = hold */
	SKULD_REALLOCATE = 41,   /* id = hold, target = new location */
	SKULD_EXPIRE = 42,       /* id = hold; written by the server only */
	SKULD_FULFILL = 43,      /* item, location, quantity: committed leaves on_hand */
	SKULD_RETURN = 44,       /* item, location, quantity, reason = disposition */
	SKULD_TRANSFER_OUT = 45, /* item, location, target, id = transfer, quantity */
	SKULD_TRANSFER_IN = 46,  /* item, location, id = transfer, quantity */
	SKULD_MOVE = 47,         /* item, location, quantity, bucket_from, bucket_to */
	SKULD_INCOMING = 48,     /* item, location, quantity != 0: on order / in transit */
	/* Channel push (docs/LEDGER.md section 12): written by push workers. */
	SKULD_PUSH_ACK = 49,       /* channel, item, id = version, quantity = shown */
	SKULD_PUSH_EXCEPTION = 50, /* channel, item (0: the whole channel), id = version,
	                              reason = enum skuld_push_exception, code = detail */
	/* Discrepancies (docs/LEDGER.md section 13). */
	SKULD_DISCREPANCY_ACK = 51, /* item, location: acknowledge its discrepancy record */
};

enum skuld_event_flags {
	SKULD_EVENT_LINKED = 1u << 0,        /* all-or-nothing with the next event */
	SKULD_EVENT_BUNDLE = 1u << 1,        /* ITEM_DEFINE: the item is a bundle */
	SKULD_EVENT_RETIRE = 1u << 2,        /* SKU_ALIAS, CHANNEL_POOL, CHANNEL_LISTING: remove */
	SKULD_EVENT_AFTER_EXPIRY = 1u << 3,  /* COMMIT: sell even if the hold expired */
	SKULD_EVENT_FROM_INCOMING = 1u << 4, /* RECEIVE: also lowers incoming */
	SKULD_EVENT_EXPECTED = 1u << 5,      /* RETURN: refunded, not yet back */
};
#define SKULD_EVENT_FLAGS_KNOWN 0x3fu

enum skuld_lifecycle {
	SKULD_LIFECYCLE_ACTIVE = 0,
	SKULD_LIFECYCLE_NOT_SELLING = 1, /* no new holds; late till sales accepted */
	SKULD_LIFECYCLE_CLOSED = 2,      /* late till sales accepted and flagged */
};

enum skuld_adjust_reason {
	SKULD_REASON_NONE = 0,
	SKULD_REASON_CORRECTION = 1,
	SKULD_REASON_DAMAGE = 2,
	SKULD_REASON_THEFT = 3,
	SKULD_REASON_LOSS = 4,
	SKULD_REASON_FOUND = 5,
	SKULD_REASON_EXPIRED_GOODS = 6,
	SKULD_REASON_INTERNAL_USE = 7,
};
#define SKULD_REASON_LAST SKULD_REASON_INTERNAL_USE

enum skuld_disposition {
	SKULD_DISPOSITION_RESTOCK = 0,
	SKULD_DISPOSITION_DAMAGED = 1,
	SKULD_DISPOSITION_QUARANTINE = 2,
};

/* Stock buckets that MOVE shifts units between. */
enum skuld_bucket {
	SKULD_BUCKET_SELLABLE = 0,
	SKULD_BUCKET_DAMAGED = 1,
	SKULD_BUCKET_QUARANTINE = 2,
};
#define SKULD_BUCKET_LAST SKULD_BUCKET_QUARANTINE

#define SKULD_SCALE_MAX 9 /* decimal places in an item's base unit */

/* Why a channel would not take an item's quantity (PUSH_EXCEPTION reason). */
enum skuld_push_exception {
	SKULD_PUSH_UNMAPPED = 1,    /* no listing identifiers for this channel */
	SKULD_PUSH_UNKNOWN = 2,     /* the channel does not know the listing */
	SKULD_PUSH_INACTIVE = 3,    /* listing inactive, or its location inactive */
	SKULD_PUSH_NOT_STOCKED = 4, /* the item is not stocked at the channel's location */
	SKULD_PUSH_AUTH = 5,        /* the channel refused the credentials */
	SKULD_PUSH_VALIDATION = 6,  /* the channel refused the value or the request */
	SKULD_PUSH_THROTTLING = 7,  /* throttled again and again: reported, not parked */
	SKULD_PUSH_MISMATCH = 8,    /* read back, the channel shows another quantity than it
	                               accepted (a sale the ledger has not seen, an edit in the
	                               channel's admin): reported, not parked */
};
#define SKULD_PUSH_EXCEPTION_LAST SKULD_PUSH_MISMATCH

#define SKULD_LISTING_SIZE 40u /* CHANNEL_LISTING: code and reserved_1 as one text */

struct skuld_event {
	skuld_u128 key;       /* idempotency key, non-zero */
	skuld_u128 reference; /* client's reference (order, receipt, sale key) */
	uint64_t occurred_at; /* ns since the Unix epoch, UTC, at the source */
	int64_t quantity;     /* base units of the item (see the kind) */
	uint64_t id;          /* hold, count or transfer id */
	uint32_t item;        /* item id */
	uint32_t location;    /* location id */
	uint32_t target;      /* destination location, or bundle component */
	uint32_t channel;     /* channel id */
	uint32_t ttl_s;       /* hold time to live, seconds */
	uint16_t kind;        /* enum skuld_event_kind */
	uint16_t flags;       /* enum skuld_event_flags */
	uint8_t reason;       /* adjust reason, disposition or lifecycle */
	uint8_t bucket_from;  /* MOVE */
	uint8_t bucket_to;    /* MOVE */
	uint8_t scale;        /* ITEM_DEFINE: decimal places */
	uint32_t reserved_0;  /* zero */
	union {
		struct {
			char code[SKULD_CODE_SIZE]; /* text, NUL-padded; catalog kinds only */
			uint64_t reserved_1;        /* zero */
		};
		char listing[SKULD_LISTING_SIZE]; /* CHANNEL_LISTING only: text, NUL-padded */
	};
};
static_assert(sizeof(struct skuld_event) == SKULD_EVENT_SIZE, "event");
static_assert(offsetof(struct skuld_event, reference) == 16, "event");
static_assert(offsetof(struct skuld_event, occurred_at) == 32, "event");
static_assert(offsetof(struct skuld_event, quantity) == 40, "event");
static_assert(offsetof(struct skuld_event, id) == 48, "event");
static_assert(offsetof(struct skuld_event, item) == 56, "event");
static_assert(offsetof(struct skuld_event, location) == 60, "event");
static_assert(offsetof(struct skuld_event, target) == 64, "event");
static_assert(offsetof(struct skuld_event, channel) == 68, "event");
static_assert(offsetof(struct skuld_event, ttl_s) == 72, "event");
static_assert(offsetof(struct skuld_event, kind) == 76, "event");
static_assert(offsetof(struct skuld_event, flags) == 78, "event");
static_assert(offsetof(struct skuld_event, reason) == 80, "event");
static_assert(offsetof(struct skuld_event, bucket_from) == 81, "event");
static_assert(offsetof(struct skuld_event, bucket_to) == 82, "event");
static_assert(offsetof(struct skuld_event, scale) == 83, "event");
static_assert(offsetof(struct skuld_event, reserved_0) == 84, "event");
static_assert(offsetof(struct skuld_event, code) == 88, "event");
static_assert(offsetof(struct skuld_event, reserved_1) == 120, "event");
static_assert(offsetof(struct skuld_event, listing) == 88, "event");

/* ---- Result record (32 bytes) ------------------------------------------- */

enum skuld_status {
	SKULD_OK = 0,
	/* Per-event results (the state machine). */
	SKULD_LINKED_FAILED = 1,     /* another event of the chain failed */
	SKULD_LINKED_OPEN = 2,       /* last event of the batch has LINKED */
	SKULD_INSUFFICIENT = 3,      /* not enough available */
	SKULD_HOLDS_FULL = 4,        /* the hold table is full */
	SKULD_HOLD_EXISTS = 5,       /* hold id already used */
	SKULD_HOLD_UNKNOWN = 6,      /* no such hold */
	SKULD_HOLD_EXPIRED = 7,      /* the hold expired before this event */
	SKULD_HOLD_CLOSED = 8,       /* committed or released already */
	SKULD_QUANTITY_INVALID = 9,  /* zero, negative or out of range */
	SKULD_QUANTITY_EXCEEDS = 10, /* more than the hold / bucket / transfer has */
	SKULD_TTL_INVALID = 11,      /* zero or over the configured maximum */
	SKULD_ITEM_UNKNOWN = 12,
	SKULD_LOCATION_UNKNOWN = 13,
	SKULD_CHANNEL_UNKNOWN = 14,
	SKULD_ITEM_EXISTS = 15,
	SKULD_LOCATION_EXISTS = 16,
	SKULD_CHANNEL_EXISTS = 17,
	SKULD_CODE_EXISTS = 18,  /* SKU, barcode or name taken */
	SKULD_CODE_INVALID = 19, /* empty, not printable, or bad form */
	SKULD_LOCATION_NOT_SELLING = 20,
	SKULD_LOCATION_CLOSED = 21,
	SKULD_COUNT_EXISTS = 22,
	SKULD_COUNT_UNKNOWN = 23,
	SKULD_TRANSFER_EXISTS = 24,
	SKULD_TRANSFER_UNKNOWN = 25,
	SKULD_BUNDLE_INVALID = 26, /* bundle in a bundle, self, or stocked */
	SKULD_NOT_A_BUNDLE = 27,
	SKULD_BUNDLE_NOT_STOCKED = 28, /* stock movement on a bundle item */
	SKULD_SERVER_ONLY = 29,        /* EXPIRE from a client */
	SKULD_KEY_REUSED = 30,         /* same key, different event */
	SKULD_KEYS_FULL = 31,          /* idempotency window is full */
	SKULD_LOCATION_MISMATCH = 32,  /* event names another location than the hold */
	SKULD_INVALID_STATE = 33,      /* reason / bucket / lifecycle value invalid */
	SKULD_SAME_LOCATION = 34,      /* transfer or reallocate to itself */
	SKULD_CATALOG_FULL = 35,       /* a configured table is full */
	SKULD_HOLD_NOT_DUE = 36,       /* EXPIRE of a hold not yet past due */
	SKULD_CHAIN_TOO_LONG = 37,     /* linked chain over the configured length */
	SKULD_LISTING_UNKNOWN = 38,    /* (channel, item) has no listing (not mapped) */
	SKULD_VERSION_INVALID = 39,    /* PUSH_ACK / _EXCEPTION of a version not offered */
	SKULD_LISTINGS_FULL = 40,      /* the listing table is full */
	SKULD_DENIED = 41,             /* the connection's role may not do this */

	/* DISCREPANCY_ACK of an (item, location) without a discrepancy record. */
	SKULD_DISCREPANCY_UNKNOWN = 42,
	/* Frame-level errors (codec and server), sent in SKULD_OP_ERROR. */
	SKULD_ERR_MAGIC = 100,
	SKULD_ERR_VERSION = 101,
	SKULD_ERR_OPERATION = 102,
	SKULD_ERR_FLAGS = 103,
	SKULD_ERR_SIZE = 104,  /* body size out of range */
	SKULD_ERR_COUNT = 105, /* count does not match body size */
	SKULD_ERR_HEADER_CHECKSUM = 106,
	SKULD_ERR_BODY_CHECKSUM = 107,
	SKULD_ERR_RESERVED = 108,       /* a reserved byte is not zero */
	SKULD_ERR_EVENT_KIND = 109,     /* unknown event kind */
	SKULD_ERR_EVENT_FIELD = 110,    /* a field the kind does not use is set */
	SKULD_ERR_EVENT_VALUE = 111,    /* impossible value: flag, enum, text, id */
	SKULD_ERR_CLIENT = 112,         /* client id is zero */
	SKULD_ERR_REQUEST = 113,        /* request number out of sequence */
	SKULD_ERR_NOT_REGISTERED = 114, /* first frame was not REGISTER */
	SKULD_ERR_TOKEN = 115,          /* REGISTER token refused */
	SKULD_ERR_BUSY = 116,           /* server overloaded; retry later */
	SKULD_ERR_QUERY = 117,          /* QUERY / LOOKUP record malformed */
	SKULD_ERR_DENIED = 118,         /* QUERY / LOOKUP / STATS outside the role */
	SKULD_ERR_TLS_REQUIRED = 119,   /* plaintext to a server that takes TLS only */
};

enum skuld_result_flags {
	SKULD_RESULT_REPLAYED = 1u << 0,    /* repeated key: the original result */
	SKULD_RESULT_DISCREPANCY = 1u << 1, /* SALE/COUNT found less than expected */
	SKULD_RESULT_LATE = 1u << 2,        /* SALE at a closed location */
	SKULD_RESULT_PRE_COUNT = 1u << 3,   /* occurred before an applied count */
	SKULD_RESULT_EXPANDED = 1u << 4,    /* bundle expanded into components */
};

struct skuld_result {
	uint32_t index;    /* event index within the request */
	uint16_t status;   /* enum skuld_status */
	uint16_t flags;    /* enum skuld_result_flags */
	uint32_t location; /* location acted on (chosen, for channel holds) */
	uint32_t reserved; /* zero */
	int64_t quantity;  /* quantity applied (count delta, partial commit) */
	int64_t available; /* available at location after the event */
};
static_assert(sizeof(struct skuld_result) == SKULD_RESULT_SIZE, "result");
static_assert(offsetof(struct skuld_result, status) == 4, "result");
static_assert(offsetof(struct skuld_result, flags) == 6, "result");
static_assert(offsetof(struct skuld_result, location) == 8, "result");
static_assert(offsetof(struct skuld_result, reserved) == 12, "result");
static_assert(offsetof(struct skuld_result, quantity) == 16, "result");
static_assert(offsetof(struct skuld_result, available) == 24, "result");

/* ---- REGISTER (128-byte request, 64-byte reply) ------------------------- */

struct skuld_register_request {
	uint16_t version_min;                     /* lowest protocol version the client speaks */
	uint16_t version_max;                     /* highest; version_min <= version_max */
	uint32_t reserved_0;                      /* zero */
	uint64_t reserved_1;                      /* zero */
	char token[SKULD_TOKEN_SIZE];             /* NUL-padded */
	char client_name[SKULD_CLIENT_NAME_SIZE]; /* NUL-padded, for logs */
	uint8_t reserved_2[16];                   /* zero */
};
static_assert(sizeof(struct skuld_register_request) == 128, "register");
static_assert(offsetof(struct skuld_register_request, token) == 16, "register");
static_assert(offsetof(struct skuld_register_request, client_name) == 80, "register");

struct skuld_register_reply {
	uint16_t version;       /* the version chosen for this session */
	uint16_t reserved_0;    /* zero */
	uint32_t events_max;    /* most events the server takes in one frame */
	uint64_t request_next;  /* request number the server expects next */
	uint64_t session;       /* session id assigned by the server */
	uint64_t reserved_1[5]; /* zero */
};
static_assert(sizeof(struct skuld_register_reply) == 64, "register reply");
static_assert(offsetof(struct skuld_register_reply, request_next) == 8, "register reply");

/* ---- ERROR body (64 bytes) ---------------------------------------------- */

/* The server's answer to a malformed or refused frame, sent just before it
 * closes the connection. header.result repeats status. */
struct skuld_error_body {
	uint32_t status;  /* enum skuld_status, a SKULD_ERR_* code */
	uint32_t index;   /* failing record within the body, or 0 */
	char message[56]; /* NUL-padded English text for logs and people */
};
static_assert(sizeof(struct skuld_error_body) == 64, "error body");

/* ---- QUERY (64-byte request, 64-byte reply records) ---------------------- */

/* What a QUERY asks. Fields a kind does not use must be zero (PROTOCOL.md
 * section 12 has the table). Replies answer from durable state only. */
enum skuld_query_kind {
	SKULD_QUERY_LEVEL = 1,           /* item, location: one level record */
	SKULD_QUERY_ITEM_LEVELS = 2,     /* item at every location; after_location, limit */
	SKULD_QUERY_LOCATION_LEVELS = 3, /* every item at location; after_item, limit */
	SKULD_QUERY_CHANNEL = 4,         /* channel; item, or every item: after_item, limit */
	SKULD_QUERY_HOLD = 5,            /* hold: one hold record */
	SKULD_QUERY_PUSH = 6,          /* channel: dirty items (push records); after_item, limit */
	SKULD_QUERY_PUSH_ALL = 7,      /* channel: every mapped item (push records); paged */
	SKULD_QUERY_LISTING = 8,       /* channel; item, or every mapped item: listing records */
	SKULD_QUERY_EXCEPTIONS = 9,    /* channel: open exceptions; after_item, limit */
	SKULD_QUERY_CHANNEL_PUSH = 10, /* channel: one channel push record */

	/* location or 0: discrepancy records; after_location, after_item, limit. */
	SKULD_QUERY_DISCREPANCIES = 11,
};
#define SKULD_QUERY_KIND_LAST SKULD_QUERY_DISCREPANCIES
#define SKULD_QUERY_LIMIT_MAX 1024u /* records per QUERY reply, at most */

struct skuld_query {
	uint16_t kind;           /* enum skuld_query_kind */
	uint16_t reserved_0;     /* zero */
	uint32_t limit;          /* list kinds: records wanted, 0 = server default */
	uint32_t item;           /* item id */
	uint32_t location;       /* location id */
	uint32_t channel;        /* channel id */
	uint32_t after_item;     /* paging cursor: item of the last record received */
	uint32_t after_location; /* paging cursor: location of the last record received */
	uint32_t reserved_1;     /* zero */
	uint64_t hold;           /* hold id */
	uint64_t reserved_2[3];  /* zero */
};
static_assert(sizeof(struct skuld_query) == 64, "query");
static_assert(offsetof(struct skuld_query, reserved_0) == 2, "query");
static_assert(offsetof(struct skuld_query, limit) == 4, "query");
static_assert(offsetof(struct skuld_query, item) == 8, "query");
static_assert(offsetof(struct skuld_query, location) == 12, "query");
static_assert(offsetof(struct skuld_query, channel) == 16, "query");
static_assert(offsetof(struct skuld_query, after_item) == 20, "query");
static_assert(offsetof(struct skuld_query, after_location) == 24, "query");
static_assert(offsetof(struct skuld_query, reserved_1) == 28, "query");
static_assert(offsetof(struct skuld_query, hold) == 32, "query");
static_assert(offsetof(struct skuld_query, reserved_2) == 40, "query");

enum skuld_query_flags {
	SKULD_QUERY_MORE = 1u << 0,   /* last record of a full page: ask again after it */
	SKULD_QUERY_CURSOR = 1u << 1, /* not an answer, only where the scan stopped */
};
#define SKULD_QUERY_FLAGS_KNOWN 0x03u

/* Reply record for LEVEL, ITEM_LEVELS, LOCATION_LEVELS and CHANNEL. The
 * last 8 bytes (status, kind, flags, channel) are common to both layouts;
 * kind says which layout the record has. */
struct skuld_level_record {
	uint32_t item;      /* item id */
	uint32_t location;  /* location id; 0 for CHANNEL */
	int64_t on_hand;    /* counters of (item, location); 0 for CHANNEL */
	int64_t reserved;   /* in open holds */
	int64_t committed;  /* sold, not yet fulfilled */
	int64_t unsellable; /* damaged + quarantine */
	int64_t incoming;   /* ordered / in transit */
	int64_t available;  /* on_hand - reserved - committed - unsellable; CHANNEL: published */
	uint16_t status;    /* SKULD_OK or why there is no answer (ITEM_UNKNOWN...) */
	uint8_t kind;       /* enum skuld_query_kind answered */
	uint8_t flags;      /* enum skuld_query_flags */
	uint32_t channel;   /* CHANNEL: the channel; else 0 */
};
static_assert(sizeof(struct skuld_level_record) == 64, "level record");
static_assert(offsetof(struct skuld_level_record, location) == 4, "level record");
static_assert(offsetof(struct skuld_level_record, on_hand) == 8, "level record");
static_assert(offsetof(struct skuld_level_record, reserved) == 16, "level record");
static_assert(offsetof(struct skuld_level_record, committed) == 24, "level record");
static_assert(offsetof(struct skuld_level_record, unsellable) == 32, "level record");
static_assert(offsetof(struct skuld_level_record, incoming) == 40, "level record");
static_assert(offsetof(struct skuld_level_record, available) == 48, "level record");
static_assert(offsetof(struct skuld_level_record, status) == 56, "level record");
static_assert(offsetof(struct skuld_level_record, kind) == 58, "level record");
static_assert(offsetof(struct skuld_level_record, flags) == 59, "level record");
static_assert(offsetof(struct skuld_level_record, channel) == 60, "level record");

enum skuld_hold_state {
	SKULD_HOLD_STATE_OPEN = 0,
	SKULD_HOLD_STATE_COMMITTED = 1,
	SKULD_HOLD_STATE_RELEASED = 2,
	SKULD_HOLD_STATE_EXPIRED = 3,
};
#define SKULD_HOLD_STATE_LAST SKULD_HOLD_STATE_EXPIRED

/* Reply record for HOLD (kind = SKULD_QUERY_HOLD). */
struct skuld_hold_record {
	uint32_t item;          /* item (or bundle) held */
	uint32_t location;      /* location holding it */
	uint64_t hold;          /* hold id */
	uint64_t expires_at_ns; /* ns since the epoch */
	uint64_t closed_at_ns;  /* 0 while open */
	int64_t remaining;      /* units (bundles) still held or committable */
	uint32_t state;         /* enum skuld_hold_state */
	uint32_t reserved_0;    /* zero */
	uint64_t reserved_1;    /* zero */
	uint16_t status;        /* SKULD_OK or SKULD_HOLD_UNKNOWN */
	uint8_t kind;           /* SKULD_QUERY_HOLD */
	uint8_t flags;          /* zero */
	uint32_t channel;       /* channel of a channel hold, else 0 */
};
static_assert(sizeof(struct skuld_hold_record) == 64, "hold record");
static_assert(offsetof(struct skuld_hold_record, hold) == 8, "hold record");
static_assert(offsetof(struct skuld_hold_record, expires_at_ns) == 16, "hold record");
static_assert(offsetof(struct skuld_hold_record, closed_at_ns) == 24, "hold record");
static_assert(offsetof(struct skuld_hold_record, remaining) == 32, "hold record");
static_assert(offsetof(struct skuld_hold_record, state) == 40, "hold record");
static_assert(offsetof(struct skuld_hold_record, reserved_0) == 44, "hold record");
static_assert(offsetof(struct skuld_hold_record, reserved_1) == 48, "hold record");
static_assert(offsetof(struct skuld_hold_record, status) == 56, "hold record");
static_assert(offsetof(struct skuld_hold_record, kind) == 58, "hold record");
static_assert(offsetof(struct skuld_hold_record, flags) == 59, "hold record");
static_assert(offsetof(struct skuld_hold_record, channel) == 60, "hold record");

/* Push state of a (channel, item) (docs/LEDGER.md section 12). */
enum skuld_push_state {
	SKULD_PUSH_SHOWN_KNOWN = 1u << 0, /* shown is what the channel last accepted */
	SKULD_PUSH_DIRTY = 1u << 1,       /* version not yet accepted */
	SKULD_PUSH_PARKED = 1u << 2,      /* an exception holds it until the listing changes */
};

/* Reply record for PUSH and PUSH_ALL: what a push worker is to push. */
struct skuld_push_record {
	uint32_t item;           /* item id */
	uint32_t listing_serial; /* changes whenever the listing text changes */
	uint64_t version;        /* of quantity: acknowledge this */
	int64_t quantity;        /* to show, base units of the item */
	int64_t shown;           /* what the channel last accepted (if SHOWN_KNOWN) */
	uint64_t dirty_since;    /* ledger time the item first differed, 0 when clean */
	uint8_t scale;           /* the item's decimal places */
	uint8_t state;           /* enum skuld_push_state */
	uint16_t exception;      /* enum skuld_push_exception while parked, else 0 */
	uint32_t reserved_0;     /* zero */
	uint64_t accepted;       /* the version the channel last accepted, 0: none */
	uint16_t status;         /* SKULD_OK or CHANNEL_UNKNOWN */
	uint8_t kind;            /* SKULD_QUERY_PUSH or _PUSH_ALL */
	uint8_t flags;           /* enum skuld_query_flags */
	uint32_t channel;        /* the channel */
};
static_assert(sizeof(struct skuld_push_record) == 64, "push record");
static_assert(offsetof(struct skuld_push_record, version) == 8, "push record");
static_assert(offsetof(struct skuld_push_record, quantity) == 16, "push record");
static_assert(offsetof(struct skuld_push_record, shown) == 24, "push record");
static_assert(offsetof(struct skuld_push_record, dirty_since) == 32, "push record");
static_assert(offsetof(struct skuld_push_record, scale) == 40, "push record");
static_assert(offsetof(struct skuld_push_record, state) == 41, "push record");
static_assert(offsetof(struct skuld_push_record, exception) == 42, "push record");
static_assert(offsetof(struct skuld_push_record, reserved_0) == 44, "push record");
static_assert(offsetof(struct skuld_push_record, accepted) == 48, "push record");
static_assert(offsetof(struct skuld_push_record, status) == 56, "push record");

/* Reply record for LISTING. */
struct skuld_listing_record {
	uint32_t item;                    /* item id */
	uint32_t listing_serial;          /* as in the push record */
	char listing[SKULD_LISTING_SIZE]; /* NUL-padded */
	uint64_t reserved;                /* zero */
	uint16_t status;                  /* SKULD_OK, CHANNEL_UNKNOWN or LISTING_UNKNOWN */
	uint8_t kind;                     /* SKULD_QUERY_LISTING */
	uint8_t flags;                    /* enum skuld_query_flags */
	uint32_t channel;                 /* the channel */
};
static_assert(sizeof(struct skuld_listing_record) == 64, "listing record");
static_assert(offsetof(struct skuld_listing_record, listing) == 8, "listing record");
static_assert(offsetof(struct skuld_listing_record, reserved) == 48, "listing record");
static_assert(offsetof(struct skuld_listing_record, status) == 56, "listing record");

#define SKULD_EXCEPTION_DETAIL_SIZE 24u /* the first bytes of the worker's detail */

/* Reply record for EXCEPTIONS: one open exception. Item 0 is the channel's. */
struct skuld_exception_record {
	uint32_t item;                            /* item id, 0 for the channel as a whole */
	uint16_t exception;                       /* enum skuld_push_exception */
	uint16_t reserved_0;                      /* zero */
	uint64_t first_seen;                      /* ledger time of the first report */
	uint64_t last_seen;                       /* ledger time of the latest */
	uint32_t reports;                         /* how many reports */
	uint32_t reserved_1;                      /* zero */
	char detail[SKULD_EXCEPTION_DETAIL_SIZE]; /* NUL-padded */
	uint16_t status;                          /* SKULD_OK or CHANNEL_UNKNOWN */
	uint8_t kind;                             /* SKULD_QUERY_EXCEPTIONS */
	uint8_t flags;                            /* enum skuld_query_flags */
	uint32_t channel;                         /* the channel */
};
static_assert(sizeof(struct skuld_exception_record) == 64, "exception record");
static_assert(offsetof(struct skuld_exception_record, first_seen) == 8, "exception record");
static_assert(offsetof(struct skuld_exception_record, reports) == 24, "exception record");
static_assert(offsetof(struct skuld_exception_record, detail) == 32, "exception record");
static_assert(offsetof(struct skuld_exception_record, status) == 56, "exception record");

/* Flags of a DISCREPANCIES record besides MORE and CURSOR (every other
 * kind keeps these bits zero). */
enum skuld_discrepancy_flags {
	SKULD_DISCREPANCY_ACKNOWLEDGED = 1u << 2, /* acknowledged since its latest event */
	SKULD_DISCREPANCY_SALE_SHORT = 1u << 3,   /* a SALE found too little available */
	SKULD_DISCREPANCY_COUNT_OFF = 1u << 4,    /* a COUNT_CLOSE was off the threshold */
	SKULD_DISCREPANCY_LAST_COUNT = 1u << 5,   /* the latest event was the count */
};
#define SKULD_DISCREPANCY_FLAGS_KNOWN 0x3fu

/* Reply record for DISCREPANCIES: one (item, location). The first page
 * (no cursor, limit >= 2) starts with the table's figures: item 0,
 * location 0, expected = capacity, found = records remembered,
 * first_sequence = acknowledged records evicted, last_sequence = open
 * records dropped to make room (PROTOCOL.md section 12). */
struct skuld_discrepancy_record {
	uint32_t item;           /* item id */
	uint32_t location;       /* location id */
	uint64_t first_sequence; /* log sequence of the first event of the episode */
	uint64_t last_sequence;  /* log sequence of the latest */
	uint64_t first_at;       /* event time (occurred_at, else batch time) of the first */
	uint64_t last_at;        /* event time of the latest */
	int64_t expected;        /* latest: available before the sale, or the expected count */
	int64_t found;           /* latest: units sold, or units counted */
	uint16_t status;         /* SKULD_OK or LOCATION_UNKNOWN */
	uint8_t kind;            /* SKULD_QUERY_DISCREPANCIES */
	uint8_t flags;           /* enum skuld_query_flags | enum skuld_discrepancy_flags */
	uint32_t occurrences;    /* events in the episode, saturating */
};
static_assert(sizeof(struct skuld_discrepancy_record) == 64, "discrepancy record");
static_assert(offsetof(struct skuld_discrepancy_record, first_sequence) == 8, "discrepancy");
static_assert(offsetof(struct skuld_discrepancy_record, first_at) == 24, "discrepancy");
static_assert(offsetof(struct skuld_discrepancy_record, expected) == 40, "discrepancy");
static_assert(offsetof(struct skuld_discrepancy_record, status) == 56, "discrepancy");
static_assert(offsetof(struct skuld_discrepancy_record, occurrences) == 60, "discrepancy");

/* Reply record for CHANNEL_PUSH: a channel's push figures. */
struct skuld_channel_push_record {
	uint32_t mapped;         /* items with a listing */
	uint32_t dirty;          /* of those, not yet accepted at their version */
	uint64_t oldest_dirty;   /* ledger time the longest-dirty item first differed */
	uint64_t last_ack;       /* ledger time of the latest PUSH_ACK, 0: none */
	uint64_t acks;           /* PUSH_ACK events applied */
	uint32_t parked;         /* items parked by an exception */
	uint16_t exception;      /* the channel's own open exception, 0: none */
	uint16_t reserved_0;     /* zero */
	uint64_t exception_last; /* ledger time of its latest report */
	uint64_t reserved_1;     /* zero */
	uint16_t status;         /* SKULD_OK or CHANNEL_UNKNOWN */
	uint8_t kind;            /* SKULD_QUERY_CHANNEL_PUSH */
	uint8_t flags;           /* zero */
	uint32_t channel;        /* the channel */
};
static_assert(sizeof(struct skuld_channel_push_record) == 64, "channel push record");
static_assert(offsetof(struct skuld_channel_push_record, oldest_dirty) == 8, "channel push");
static_assert(offsetof(struct skuld_channel_push_record, acks) == 24, "channel push");
static_assert(offsetof(struct skuld_channel_push_record, parked) == 32, "channel push");
static_assert(offsetof(struct skuld_channel_push_record, exception_last) == 40, "channel push");
static_assert(offsetof(struct skuld_channel_push_record, status) == 56, "channel push");

/* ---- LOOKUP (64-byte request, 32-byte reply records) --------------------- */

enum skuld_lookup_kind {
	SKULD_LOOKUP_SKU = 1,      /* SKU code -> item */
	SKULD_LOOKUP_BARCODE = 2,  /* barcode -> items with pack sizes */
	SKULD_LOOKUP_LOCATION = 3, /* location code -> location */
	SKULD_LOOKUP_CHANNEL = 4,  /* channel name -> channel */
	SKULD_LOOKUP_ITEM = 5,     /* item id -> its scale and bundle flag */
};
#define SKULD_LOOKUP_KIND_LAST   SKULD_LOOKUP_ITEM
#define SKULD_LOOKUP_MATCHES_MAX 64u /* records per LOOKUP reply, at most */
#define SKULD_LOOKUP_MATCH_SIZE  32u

struct skuld_lookup {
	uint16_t kind;              /* enum skuld_lookup_kind */
	uint16_t reserved_0;        /* zero */
	uint32_t id;                /* ITEM: the item id; other kinds: zero */
	uint64_t reserved_2;        /* zero */
	char code[SKULD_CODE_SIZE]; /* ITEM: all zero; else text, NUL-padded, non-empty */
	uint64_t reserved_3[2];     /* zero */
};
static_assert(sizeof(struct skuld_lookup) == 64, "lookup");
static_assert(offsetof(struct skuld_lookup, reserved_0) == 2, "lookup");
static_assert(offsetof(struct skuld_lookup, id) == 4, "lookup");
static_assert(offsetof(struct skuld_lookup, reserved_2) == 8, "lookup");
static_assert(offsetof(struct skuld_lookup, code) == 16, "lookup");
static_assert(offsetof(struct skuld_lookup, reserved_3) == 48, "lookup");

enum skuld_lookup_flags {
	SKULD_LOOKUP_RETIRED = 1u << 0, /* SKU: the code is retired (history only) */
	SKULD_LOOKUP_MORE = 1u << 1,    /* BARCODE: more matches than the reply holds */
	SKULD_LOOKUP_BUNDLE = 1u << 2,  /* SKU, BARCODE, ITEM: the item is a bundle */
};
#define SKULD_LOOKUP_FLAGS_KNOWN 0x07u

struct skuld_lookup_match {
	uint32_t id;           /* item, location or channel id; 0 when not found */
	uint16_t status;       /* SKULD_OK, ITEM_ / LOCATION_ / CHANNEL_UNKNOWN */
	uint8_t kind;          /* enum skuld_lookup_kind answered */
	uint8_t flags;         /* enum skuld_lookup_flags */
	int64_t pack;          /* BARCODE: units of the item per scan; else 0 */
	uint8_t scale;         /* SKU, BARCODE, ITEM: decimal places of the item's unit */
	uint8_t reserved_0[7]; /* zero */
	uint64_t reserved_1;   /* zero */
};
static_assert(sizeof(struct skuld_lookup_match) == SKULD_LOOKUP_MATCH_SIZE, "lookup match");
static_assert(offsetof(struct skuld_lookup_match, status) == 4, "lookup match");
static_assert(offsetof(struct skuld_lookup_match, kind) == 6, "lookup match");
static_assert(offsetof(struct skuld_lookup_match, flags) == 7, "lookup match");
static_assert(offsetof(struct skuld_lookup_match, pack) == 8, "lookup match");
static_assert(offsetof(struct skuld_lookup_match, scale) == 16, "lookup match");
static_assert(offsetof(struct skuld_lookup_match, reserved_0) == 17, "lookup match");
static_assert(offsetof(struct skuld_lookup_match, reserved_1) == 24, "lookup match");

/* ---- STATS (empty request, reply of 256-byte records) -------------------- */

/* Server figures since start-up unless a field says otherwise. */
struct skuld_stats {
	uint64_t uptime_ns;            /* since the server started */
	uint64_t connections_open;     /* now */
	uint64_t connections_accepted; /* total */
	uint64_t connections_refused;  /* over connections_max */
	uint64_t sessions;             /* sessions in the table now */
	uint64_t requests;             /* SUBMITs applied */
	uint64_t requests_retried;     /* SUBMITs answered with the saved reply */
	uint64_t events;               /* client events applied */
	uint64_t events_expired;       /* EXPIRE events the server wrote */
	uint64_t queries;              /* QUERY, LOOKUP and STATS answered */
	uint64_t frames_rejected;      /* ERROR frames sent */
	uint64_t log_bytes;            /* bytes written to the log */
	uint64_t log_writes;           /* group-commit writes made durable */
	uint64_t event_durable;        /* sequence of the last durable event, 0: none */
	uint64_t write_durable;        /* sequence of the last durable write, 0: none */
	uint64_t group_records_last;   /* records in the last write */
	uint64_t group_records_max;    /* most records in one write */
	uint64_t group_events_last;    /* events in the last write */
	uint64_t group_events_max;     /* most events in one write */
	uint64_t fsync_ns_last;        /* write + fdatasync of the last write */
	uint64_t fsync_ns_max;         /* slowest write + fdatasync */
	uint64_t fsync_ns_total;       /* sum; mean = fsync_ns_total / log_writes */
	uint64_t holds_open;           /* now */
	uint64_t memory_bytes;         /* the configured memory bound (OPERATIONS.md) */
	uint64_t log_segment;          /* segment the log ends in */
	uint64_t disk_free_bytes;      /* free on the data directory's file system (10 s old) */
	uint64_t disk_alarm;       /* bit 0: free space low; bit 1: full within the alarm hours */
	uint64_t chain_head_event; /* last event the exported SHA-256 chain head covers; 0: none */
	uint8_t chain_head[32];    /* that head (OPERATIONS.md, "Chain head") */
};
static_assert(sizeof(struct skuld_stats) == 256, "stats");
static_assert(offsetof(struct skuld_stats, connections_open) == 8, "stats");
static_assert(offsetof(struct skuld_stats, sessions) == 32, "stats");
static_assert(offsetof(struct skuld_stats, requests) == 40, "stats");
static_assert(offsetof(struct skuld_stats, events) == 56, "stats");
static_assert(offsetof(struct skuld_stats, log_bytes) == 88, "stats");
static_assert(offsetof(struct skuld_stats, event_durable) == 104, "stats");
static_assert(offsetof(struct skuld_stats, group_records_last) == 120, "stats");
static_assert(offsetof(struct skuld_stats, fsync_ns_last) == 152, "stats");
static_assert(offsetof(struct skuld_stats, holds_open) == 176, "stats");
static_assert(offsetof(struct skuld_stats, memory_bytes) == 184, "stats");
static_assert(offsetof(struct skuld_stats, log_segment) == 192, "stats");
static_assert(offsetof(struct skuld_stats, disk_free_bytes) == 200, "stats");
static_assert(offsetof(struct skuld_stats, disk_alarm) == 208, "stats");
static_assert(offsetof(struct skuld_stats, chain_head_event) == 216, "stats");
static_assert(offsetof(struct skuld_stats, chain_head) == 224, "stats");

/* A STATS reply is an array of 256-byte records (docs/PROTOCOL.md section
 * 14): record 0 is struct skuld_stats, record 1 struct skuld_stats_limits,
 * record 2 struct skuld_stats_rejects. The request's header count says how
 * many records the client takes (0: one, as clients before record 1 sent);
 * the server sends that many, or as many as it has, at least one. A reader
 * takes the records it knows and ignores any after them. */
#define SKULD_STATS_RECORD_SIZE     256u
#define SKULD_STATS_RECORDS         3u       /* records this build sends */
#define SKULD_STATS_LATENCY_BUCKETS 16u      /* log-spaced, the last one open-ended */
#define SKULD_STATS_LATENCY_BASE_NS 64000ull /* bucket i: <= BASE << i (i < 15) */

/* Record 1: every limit hit, and the server-side SUBMIT latency histogram
 * (from the frame's arrival to its durable reply being released). */
struct skuld_stats_limits {
	uint64_t frames_oversize;     /* over body_max or frame_events_max: ERR_SIZE */
	uint64_t closed_slow;         /* a frame not whole within frame_timeout_ms */
	uint64_t closed_unregistered; /* no REGISTER within frame_timeout_ms */
	uint64_t closed_idle;         /* registered, no frame for idle_timeout_ms */
	uint64_t closed_stalled;      /* replies unsent for stall_timeout_ms */
	uint64_t reply_waits;         /* input paused: the reply ring was full */
	uint64_t pool_waits;          /* a large frame waited for a pool buffer */
	uint64_t recv_paused;         /* receives stopped: unread input held */
	uint64_t denied_events;       /* per-event DENIED results */
	uint64_t denied_reads;        /* ERR_DENIED */
	uint64_t tokens_refused;      /* ERR_TOKEN */
	uint64_t sessions_busy;       /* REGISTER refused: every session attached */
	uint64_t latency_count;       /* SUBMIT replies measured */
	uint64_t latency_sum_ns;      /* their latencies, summed */
	uint64_t latency_bucket[SKULD_STATS_LATENCY_BUCKETS]; /* per bucket, not cumulative */
	uint64_t latency_max_ns;                              /* slowest */
	uint64_t reserved;                                    /* zero */
};
static_assert(sizeof(struct skuld_stats_limits) == SKULD_STATS_RECORD_SIZE, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, closed_slow) == 8, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, closed_stalled) == 32, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, denied_events) == 64, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, sessions_busy) == 88, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, latency_count) == 96, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, latency_bucket) == 112, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, latency_max_ns) == 240, "stats limits");
static_assert(offsetof(struct skuld_stats_limits, reserved) == 248, "stats limits");

/* Record 2: ERROR frames sent, by status: rejected[k] counts SKULD_ERR 100+k. */
struct skuld_stats_rejects {
	uint64_t rejected[32];
};
static_assert(sizeof(struct skuld_stats_rejects) == SKULD_STATS_RECORD_SIZE, "stats rejects");

/* ---- Codec --------------------------------------------------------------- */

/* Names for logs and error messages; never NULL ("unknown" for bad values). */
const char *skuld_status_name(uint32_t status);
const char *skuld_event_kind_name(uint32_t kind);
const char *skuld_operation_name(uint32_t operation);

/* Size of one record in the body of a frame of this operation and direction,
 * or 0 when the body is free-form / empty. */
uint32_t proto_record_size(uint8_t operation, int reply);

/* Fills header fields and both checksums for a frame whose body (body_size
 * bytes) is already in place. body may be NULL only when body_size is 0. */
void proto_header_seal(struct skuld_header *header, const void *body);

/* Checks the 64 bytes at header: magic, version, operation, flags, sizes,
 * count against body size, reserved, and the header checksum. Returns
 * SKULD_OK or the first SKULD_ERR_* found. The body is not read. */
uint32_t proto_header_check(const struct skuld_header *header);

/* Checks the body checksum and, per record, the structural rules of the
 * operation (reserved bytes zero, known event kinds, fields per kind).
 * header must already have passed proto_header_check. On failure returns
 * the SKULD_ERR_* code and stores the failing record's index in *index (if
 * index is not NULL). */
uint32_t proto_body_check(const struct skuld_header *header, const void *body, uint32_t *index);

/* Structural rules for one event: known kind and flags, zero in every field
 * the kind does not use, enum values in range, code NUL-padded printable
 * text where the kind uses it. Semantic rules (does the item exist, is the
 * quantity positive) belong to the state machine. Returns SKULD_OK or
 * SKULD_ERR_EVENT_KIND / _FIELD / _VALUE / SKULD_ERR_RESERVED. */
uint32_t proto_event_check(const struct skuld_event *event);

/* Structural rules for a QUERY request record: reserved bytes zero
 * (SKULD_ERR_RESERVED); a known kind, zero in every field the kind does not
 * use, limit <= SKULD_QUERY_LIMIT_MAX (SKULD_ERR_QUERY). */
uint32_t proto_query_check(const struct skuld_query *query);

/* Structural rules for a LOOKUP request record: reserved bytes zero
 * (SKULD_ERR_RESERVED); a known kind; ITEM: code all zero and a non-zero id,
 * other kinds: a zero id and non-empty text (SKULD_ERR_QUERY). */
uint32_t proto_lookup_check(const struct skuld_lookup *lookup);

/* The version a server speaking SKULD_PROTOCOL_VERSION_MIN..MAX picks for a
 * client speaking client_min..client_max: the highest both speak, or 0 when
 * the ranges do not overlap (the server then answers SKULD_ERR_VERSION). */
uint16_t proto_version_negotiate(uint16_t client_min, uint16_t client_max);

/* Checks a NUL-padded text field: printable ASCII, then only NULs. Returns 1
 * when valid; an empty field is valid only if allow_empty. */
int proto_text_valid(const char *text, size_t size, int allow_empty);

/* XXH3-64 of bytes; the one checksum used by frames, logs and snapshots. */
uint64_t skuld_checksum(const void *bytes, size_t size);

#endif /* SKULD_PROTOCOL_H */
