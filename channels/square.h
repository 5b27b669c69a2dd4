/*
 * square.h — Square's Inventory API calls as bytes: the batch-create body of
 * PHYSICAL_COUNT changes a push worker sends, the batch-retrieve body of a
 * read-back, and the reading of Square's answers into what the worker must
 * do next (Square-Version 2025-08-20, shared/channel-schemas/square/).
 *
 * Owns:
 *   - quantities: a decimal string of the item's base units at its scale,
 *     rounded down to the 5 decimal places Square takes (InventoryPhysical-
 *     Count.quantity: "up to 5 digits after the decimal point"), trailing
 *     zeros dropped; a negative quantity is sent as "0" (a channel never
 *     shows a unit that is not there). An answer's quantity is read back
 *     into base units rounded down (towards minus infinity);
 *   - occurred_at: the ledger time the value began to differ, as RFC 3339
 *     UTC with milliseconds, unless it is outside Square's window for
 *     physical counts ("cannot be older than 24 hours or in the future
 *     relative to the time of the request"), in which case it is now; the
 *     window is taken SQUARE_WINDOW_MARGIN_NS narrower, so a retry a few
 *     minutes later still fits;
 *   - the classification of an answer: accepted (200, no errors), rate
 *     limited (429 or RATE_LIMITED), auth (401/403 or an AUTHENTICATION_ERROR
 *     code), server error (5xx), errors (a readable errors[] on another
 *     status), rejected (a 4xx without readable errors), malformed
 *     (anything else). Each error names the change it concerns when its
 *     `field` starts with "changes[N]" or, failing that, when its `detail`
 *     names the catalog object id of exactly one change [unverified: the
 *     real API's field paths].
 *
 * No I/O: bodies in, bodies out. An answer is untrusted input: anything
 * unexpected is MALFORMED, never a crash, and strings are copied bounded.
 */
#ifndef SKULD_CHANNELS_SQUARE_H
#define SKULD_CHANNELS_SQUARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SQUARE_CHANGES_MAX      100 /* changes per batch-create call */
#define SQUARE_READ_MAX         100 /* catalog object ids per batch-retrieve call */
#define SQUARE_COUNTS_MAX       256 /* IN_STOCK counts kept from one answer */
#define SQUARE_ERRORS_MAX       128 /* errors kept from one answer */
#define SQUARE_DECIMALS_MAX     5   /* digits after the point Square takes */
#define SQUARE_QUANTITY_SIZE    32  /* a quantity string with its NUL (Square: 26) */
#define SQUARE_ID_SIZE          101 /* a catalog object or location id (Square: 100) */
#define SQUARE_TIME_SIZE        32  /* "2025-08-20T12:34:56.789Z" */
#define SQUARE_DETAIL_SIZE      160
#define SQUARE_WINDOW_NS        (24ull * 3600 * 1000000000ull)
#define SQUARE_WINDOW_MARGIN_NS (30ull * 60 * 1000000000ull)

/* quantity (base units at scale) as Square's decimal string, rounded down
 * to SQUARE_DECIMALS_MAX places; negative is "0". Returns 0, or -1 when out
 * does not hold it. */
int square_quantity_text(int64_t quantity, uint8_t scale, char *out, size_t size);

/* The base units at scale that square_quantity_text sends for quantity. */
int64_t square_quantity_sent(int64_t quantity, uint8_t scale);

/* A decimal string from Square ("-3", "12.5", "0.00001") as base units at
 * scale, rounded down. Returns 0, or -1 when the text is not a decimal or
 * the value does not fit. */
int square_quantity_parse(const char *text, uint8_t scale, int64_t *out);

/* ns since the epoch as RFC 3339 UTC with milliseconds. Returns 0 or -1. */
int square_time_text(uint64_t epoch_ns, char *out, size_t size);

/* The occurred_at of a physical count: dirty_since_ns (ledger time, ns since
 * the epoch) when it lies within the window before now_ns (wall clock), else
 * now_ns. 0 (unknown) is now. */
uint64_t square_occurred_at(uint64_t dirty_since_ns, uint64_t now_ns);

struct square_count_change {
	const char *catalog_object_id; /* the item variation */
	const char *location_id;
	int64_t quantity;         /* absolute, base units at scale */
	uint8_t scale;            /* the item's decimal places */
	uint64_t occurred_at_ns;  /* wall clock, ns since the epoch */
	const char *reference_id; /* NULL: none; else at most 255 bytes */
};

struct square_batch {
	const char *idempotency_key; /* 1..128 bytes; the same on a retry of the same body */
	const struct square_count_change *changes;
	uint32_t count; /* 1..SQUARE_CHANGES_MAX */
};

/* The JSON body of POST /v2/inventory/changes/batch-create:
 *   {"idempotency_key", "ignore_unchanged_counts": false, "changes": [{"type":
 *   "PHYSICAL_COUNT", "physical_count": {catalog_object_id, location_id,
 *   "state": "IN_STOCK", quantity, occurred_at, reference_id?}}]}
 * ignore_unchanged_counts is false: with Square's default (true) a count
 * equal to the last physical count is dropped even when adjustments have
 * moved the count since, and a re-sent value would never land.
 * malloc'd (free() it), or NULL with a reason in error. */
char *square_batch_body(const struct square_batch *batch, char *error, size_t error_size);

/* The JSON body of POST /v2/inventory/counts/batch-retrieve for count
 * catalog object ids at one location, state IN_STOCK, with the cursor of
 * the previous page (NULL: the first). malloc'd, or NULL with a reason. */
char *square_read_body(const char *const *objects, uint32_t count, const char *location,
                       const char *cursor, char *error, size_t error_size);

enum square_outcome {
	SQUARE_ACCEPTED = 0, /* applied: every change as sent */
	SQUARE_RATE_LIMITED, /* nothing applied; back off */
	SQUARE_AUTH,         /* the token is wrong, expired, revoked or lacks scopes */
	SQUARE_SERVER_ERROR, /* 5xx: unknown whether applied; retry the same key */
	SQUARE_ERRORS,       /* nothing applied; see errors[] */
	SQUARE_REJECTED,     /* a 4xx without readable errors (wrong URL, say) */
	SQUARE_MALFORMED,    /* not what Square sends; unknown whether applied */
};

enum square_error_code {
	SQUARE_ERROR_OTHER = 0,
	SQUARE_ERROR_RATE_LIMITED,  /* RATE_LIMITED */
	SQUARE_ERROR_AUTH,          /* UNAUTHORIZED, ACCESS_TOKEN_*, INSUFFICIENT_SCOPES, ... */
	SQUARE_ERROR_NOT_FOUND,     /* NOT_FOUND */
	SQUARE_ERROR_INVALID_VALUE, /* INVALID_VALUE */
	SQUARE_ERROR_IDEMPOTENCY,   /* IDEMPOTENCY_KEY_REUSED: a new key */
	SQUARE_ERROR_INVALID_TIME,  /* INVALID_TIME: occurred_at outside the window */
	SQUARE_ERROR_VERSION,       /* INVALID_SQUARE_VERSION_FORMAT, API_VERSION_INCOMPATIBLE */
	SQUARE_ERROR_SERVER,        /* INTERNAL_SERVER_ERROR, SERVICE_UNAVAILABLE, ... */
};

enum square_error_field {
	SQUARE_FIELD_OTHER = 0,
	SQUARE_FIELD_OBJECT,   /* catalog_object_id */
	SQUARE_FIELD_LOCATION, /* location_id */
	SQUARE_FIELD_TIME,     /* occurred_at */
	SQUARE_FIELD_QUANTITY, /* quantity */
};

struct square_error {
	int32_t index; /* the change it names, -1: the call as a whole */
	enum square_error_code code;
	enum square_error_field field_kind;
	char category[32];
	char code_text[48];
	char field[96];
	char detail[SQUARE_DETAIL_SIZE];
};

struct square_count {
	char catalog_object_id[SQUARE_ID_SIZE];
	char location_id[SQUARE_ID_SIZE];
	char quantity[SQUARE_QUANTITY_SIZE]; /* as Square sent it; square_quantity_parse */
};

struct square_answer {
	enum square_outcome outcome;
	uint32_t error_count;
	struct square_error errors[SQUARE_ERRORS_MAX];
	uint32_t count_count; /* IN_STOCK counts (other states are skipped) */
	struct square_count counts[SQUARE_COUNTS_MAX];
	bool counts_cut;                  /* more IN_STOCK counts than SQUARE_COUNTS_MAX */
	char cursor[256];                 /* batch-retrieve: the next page, "" when last */
	char message[SQUARE_DETAIL_SIZE]; /* the first error, for logs */
};

/* Reads the answer to a batch-create of batch (for the changes its errors
 * name). body need not be NUL-terminated. Always fills answer. */
void square_batch_answer(long http_status, const char *body, size_t size,
                         const struct square_batch *batch, struct square_answer *answer);

/* Reads the answer to a batch-retrieve. Returns answer->outcome. */
enum square_outcome square_read_answer(long http_status, const char *body, size_t size,
                                       struct square_answer *answer);

enum square_error_code square_error_code(const char *code);

/* The IN_STOCK count of object at location in answer, or NULL. */
const struct square_count *square_count_find(const struct square_answer *answer, const char *object,
                                             const char *location);

#endif /* SKULD_CHANNELS_SQUARE_H */
