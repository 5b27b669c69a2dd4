/*
 * shopify.h — Shopify's Admin GraphQL inventory calls as bytes: the
 * inventorySetQuantities request a push worker sends, and the reading of
 * Shopify's answer into what the worker must do next.
 *
 * Owns: the version rules of the compare-and-set field (CHANNELS.md):
 *   - up to 2025-10: `compareQuantity` per quantity, or the input's
 *     `ignoreCompareQuantity: true` when the worker does not know what the
 *     channel shows;
 *   - 2026-01: `changeFromQuantity` per quantity and the `@idempotent(key:)`
 *     directive;
 *   - 2026-04 and later: the same, with `changeFromQuantity` required on
 *     every quantity.
 * From 2026-01 an unknown shown value is always sent as an explicit
 * `changeFromQuantity: null` (the documented opt-out), so one body is valid
 * under both rules.
 * and the classification of an answer: accepted; throttled (HTTP 200 with
 * a THROTTLED error, or 429); user errors per quantity (by the index in
 * their `field` path); auth failure; server error; malformed; rejected
 * (a GraphQL error other than THROTTLED: the request itself is wrong).
 * Every answer's `extensions.cost.throttleStatus` is read for pacing.
 *
 * No I/O: bodies in, bodies out (the HTTP side is the push worker's). An
 * answer is untrusted input: anything unexpected is MALFORMED, never a
 * crash, and strings are copied bounded.
 */
#ifndef SKULD_CHANNELS_SHOPIFY_H
#define SKULD_CHANNELS_SHOPIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHOPIFY_QUANTITIES_MAX 250 /* per inventorySetQuantities call */
#define SHOPIFY_MESSAGE_SIZE   160

enum shopify_cas {
	SHOPIFY_CAS_COMPARE_QUANTITY = 1, /* 2023-xx .. 2025-10 */
	SHOPIFY_CAS_CHANGE_FROM = 2,      /* 2026-01 */
	SHOPIFY_CAS_CHANGE_FROM_REQUIRED = 3,
};

/* The compare-and-set rule of an API version "YYYY-MM" (MM one of 01, 04,
 * 07, 10), or 0 when the text is not such a version. */
enum shopify_cas shopify_cas_rule(const char *version);

struct shopify_quantity {
	const char *inventory_item; /* "gid://shopify/InventoryItem/N" */
	const char *location;       /* "gid://shopify/Location/N" */
	int64_t quantity;           /* the absolute quantity to show */
	int64_t shown;              /* what the worker believes the channel shows */
	bool shown_known;           /* false: no compare (the channel's value is unknown) */
};

struct shopify_set {
	const char *version;         /* API version, "2025-01" */
	const char *idempotency_key; /* 2026-01 and later; reused on a retry */
	const char *reference;       /* referenceDocumentUri, e.g. skuld://push/web/42 */
	const struct shopify_quantity *quantities;
	uint32_t count; /* 1..SHOPIFY_QUANTITIES_MAX */
};

/* The JSON body {"query": ..., "variables": ...} of an inventorySetQuantities
 * call, malloc'd (free() it), or NULL with a reason in error. Up to 2025-10
 * a call must not mix known and unknown shown values (the opt-out is for
 * the whole input): that is refused, so the caller splits such a batch. */
char *shopify_set_body(const struct shopify_set *set, char *error, size_t error_size);

enum shopify_outcome {
	SHOPIFY_ACCEPTED = 0, /* applied: every quantity as sent */
	SHOPIFY_THROTTLED,    /* nothing applied; wait for the bucket */
	SHOPIFY_USER_ERRORS,  /* nothing applied; see errors[] */
	SHOPIFY_AUTH,         /* 401/403: the token is wrong or revoked */
	SHOPIFY_SERVER_ERROR, /* 5xx: unknown whether applied; retry the same key */
	SHOPIFY_MALFORMED,    /* the answer is not what Shopify sends; retry */
	SHOPIFY_REJECTED,     /* GraphQL errors: the request is wrong; an exception */
	SHOPIFY_NOT_FOUND,    /* 404: unknown API version or shop */
};

enum shopify_error_code {
	SHOPIFY_ERROR_OTHER = 0,
	SHOPIFY_ERROR_STALE,                /* COMPARE_QUANTITY_STALE, CHANGE_FROM_QUANTITY_STALE */
	SHOPIFY_ERROR_UNKNOWN_ITEM,         /* INVALID_INVENTORY_ITEM, NON_MUTABLE_INVENTORY_ITEM */
	SHOPIFY_ERROR_UNKNOWN_LOCATION,     /* INVALID_LOCATION */
	SHOPIFY_ERROR_NOT_STOCKED,          /* ITEM_NOT_STOCKED_AT_LOCATION */
	SHOPIFY_ERROR_QUANTITY,             /* INVALID_QUANTITY_* */
	SHOPIFY_ERROR_COMPARE_REQUIRED,     /* COMPARE_QUANTITY_REQUIRED */
	SHOPIFY_ERROR_IDEMPOTENCY_BUSY,     /* IDEMPOTENCY_CONCURRENT_REQUEST: retry, same key */
	SHOPIFY_ERROR_IDEMPOTENCY_FAILED,   /* IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED: new key */
	SHOPIFY_ERROR_IDEMPOTENCY_MISMATCH, /* IDEMPOTENCY_KEY_PARAMETER_MISMATCH: new key */
};

struct shopify_error {
	int32_t index; /* the quantity it names, -1: the call as a whole */
	enum shopify_error_code code;
	char code_text[48];
	char message[SHOPIFY_MESSAGE_SIZE];
};

struct shopify_answer {
	enum shopify_outcome outcome;
	bool cost_known; /* throttleStatus was present and well-formed */
	double requested_cost;
	double actual_cost;
	double available;    /* throttleStatus.currentlyAvailable */
	double maximum;      /* throttleStatus.maximumAvailable */
	double restore_rate; /* throttleStatus.restoreRate */
	uint32_t error_count;
	struct shopify_error errors[SHOPIFY_QUANTITIES_MAX];
	char message[SHOPIFY_MESSAGE_SIZE]; /* the first top-level error, for logs */
};

/* Reads the answer to an inventorySetQuantities call of count quantities.
 * body need not be NUL-terminated. Always fills answer. */
void shopify_set_answer(long http_status, const char *body, size_t size, uint32_t count,
                        struct shopify_answer *answer);

enum shopify_error_code shopify_error_code(const char *code);

/* ---- Reconciliation: reading the channel's quantities back --------------- */

#define SHOPIFY_READ_MAX 250 /* ids per nodes() query */

/* The JSON body of a query for the "available" quantity of count inventory
 * items (gids) at one location (gid):
 *   query SkuldLevels($ids: [ID!]!, $location: ID!) { nodes(ids: $ids) {
 *     ... on InventoryItem { id inventoryLevel(locationId: $location) {
 *       quantities(names: ["available"]) { name quantity } } } } }
 * malloc'd, or NULL with a reason in error. */
char *shopify_read_body(const char *const *items, uint32_t count, const char *location, char *error,
                        size_t error_size);

struct shopify_level {
	bool found;   /* the item exists (a null node: unknown item) */
	bool stocked; /* it has an inventory level at the location */
	int64_t available;
};

/* Reads the answer to shopify_read_body's query into levels[0..count): the
 * nodes come back in the order of the ids. Returns the outcome (ACCEPTED,
 * THROTTLED, AUTH, ...); cost fields as for a set. */
enum shopify_outcome shopify_read_answer(long http_status, const char *body, size_t size,
                                         uint32_t count, struct shopify_level *levels,
                                         struct shopify_answer *answer);

#endif /* SKULD_CHANNELS_SHOPIFY_H */
