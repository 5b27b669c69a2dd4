/*
 * protocol.c — checks and seals skuld frames; the per-kind field table.
 *
 * Owns: the structural validity rules of docs/PROTOCOL.md. A frame is valid
 * when, in this order: the magic matches, the version is one this build
 * speaks, the header checksum matches, the reserved word is zero, only known
 * flags are set, a request's result word is zero, the operation is known for
 * the direction, the body size is in range for the operation, the count
 * matches the body size, the client id is non-zero (an ERROR reply may carry
 * zero: the server may not know who sent a broken frame), the body checksum
 * matches, and every record passes its own rules. The first failing rule is
 * the error.
 *
 * Semantic rules (does the item exist, is the quantity positive, is a hold
 * open) belong to the state machine and come back as per-event results.
 */
#include "protocol.h"

#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

uint64_t skuld_checksum(const void *bytes, size_t size)
{
	return XXH3_64bits(bytes, size);
}

/* ---- Names ---------------------------------------------------------------- */

const char *skuld_operation_name(uint32_t operation)
{
	switch (operation) {
	case SKULD_OP_REGISTER:
		return "register";
	case SKULD_OP_SUBMIT:
		return "submit";
	case SKULD_OP_PING:
		return "ping";
	case SKULD_OP_ERROR:
		return "error";
	case SKULD_OP_QUERY:
		return "query";
	case SKULD_OP_LOOKUP:
		return "lookup";
	case SKULD_OP_STATS:
		return "stats";
	default:
		return "unknown";
	}
}

struct name_entry {
	uint32_t value;
	const char *name;
};

#define NAME(prefix, x)                                                                            \
	{                                                                                          \
		prefix##x, #x                                                                      \
	}

static const struct name_entry status_names[] = {
        NAME(SKULD_, OK),
        NAME(SKULD_, LINKED_FAILED),
        NAME(SKULD_, LINKED_OPEN),
        NAME(SKULD_, INSUFFICIENT),
        NAME(SKULD_, HOLDS_FULL),
        NAME(SKULD_, HOLD_EXISTS),
        NAME(SKULD_, HOLD_UNKNOWN),
        NAME(SKULD_, HOLD_EXPIRED),
        NAME(SKULD_, HOLD_CLOSED),
        NAME(SKULD_, QUANTITY_INVALID),
        NAME(SKULD_, QUANTITY_EXCEEDS),
        NAME(SKULD_, TTL_INVALID),
        NAME(SKULD_, ITEM_UNKNOWN),
        NAME(SKULD_, LOCATION_UNKNOWN),
        NAME(SKULD_, CHANNEL_UNKNOWN),
        NAME(SKULD_, ITEM_EXISTS),
        NAME(SKULD_, LOCATION_EXISTS),
        NAME(SKULD_, CHANNEL_EXISTS),
        NAME(SKULD_, CODE_EXISTS),
        NAME(SKULD_, CODE_INVALID),
        NAME(SKULD_, LOCATION_NOT_SELLING),
        NAME(SKULD_, LOCATION_CLOSED),
        NAME(SKULD_, COUNT_EXISTS),
        NAME(SKULD_, COUNT_UNKNOWN),
        NAME(SKULD_, TRANSFER_EXISTS),
        NAME(SKULD_, TRANSFER_UNKNOWN),
        NAME(SKULD_, BUNDLE_INVALID),
        NAME(SKULD_, NOT_A_BUNDLE),
        NAME(SKULD_, BUNDLE_NOT_STOCKED),
        NAME(SKULD_, SERVER_ONLY),
        NAME(SKULD_, KEY_REUSED),
        NAME(SKULD_, KEYS_FULL),
        NAME(SKULD_, LOCATION_MISMATCH),
        NAME(SKULD_, INVALID_STATE),
        NAME(SKULD_, SAME_LOCATION),
        NAME(SKULD_, CATALOG_FULL),
        NAME(SKULD_, HOLD_NOT_DUE),
        NAME(SKULD_, CHAIN_TOO_LONG),
        NAME(SKULD_, LISTING_UNKNOWN),
        NAME(SKULD_, VERSION_INVALID),
        NAME(SKULD_, LISTINGS_FULL),
        NAME(SKULD_, DENIED),
        NAME(SKULD_, DISCREPANCY_UNKNOWN),
        NAME(SKULD_, ERR_MAGIC),
        NAME(SKULD_, ERR_VERSION),
        NAME(SKULD_, ERR_OPERATION),
        NAME(SKULD_, ERR_FLAGS),
        NAME(SKULD_, ERR_SIZE),
        NAME(SKULD_, ERR_COUNT),
        NAME(SKULD_, ERR_HEADER_CHECKSUM),
        NAME(SKULD_, ERR_BODY_CHECKSUM),
        NAME(SKULD_, ERR_RESERVED),
        NAME(SKULD_, ERR_EVENT_KIND),
        NAME(SKULD_, ERR_EVENT_FIELD),
        NAME(SKULD_, ERR_EVENT_VALUE),
        NAME(SKULD_, ERR_CLIENT),
        NAME(SKULD_, ERR_REQUEST),
        NAME(SKULD_, ERR_NOT_REGISTERED),
        NAME(SKULD_, ERR_TOKEN),
        NAME(SKULD_, ERR_BUSY),
        NAME(SKULD_, ERR_QUERY),
        NAME(SKULD_, ERR_DENIED),
        NAME(SKULD_, ERR_TLS_REQUIRED),
};

static const char *name_find(const struct name_entry *table, size_t count, uint32_t value)
{
	for (size_t i = 0; i < count; i++) {
		if (table[i].value == value)
			return table[i].name;
	}
	return "UNKNOWN";
}

const char *skuld_status_name(uint32_t status)
{
	return name_find(status_names, sizeof(status_names) / sizeof(status_names[0]), status);
}

/* ---- The per-kind field table --------------------------------------------- */

/* Fields an event kind may set. key must be non-zero for every kind;
 * reference and occurred_at are allowed on every kind. */
enum field {
	F_QUANTITY = 1u << 0,
	F_ID = 1u << 1,
	F_ITEM = 1u << 2,
	F_LOCATION = 1u << 3,
	F_TARGET = 1u << 4,
	F_CHANNEL = 1u << 5,
	F_TTL = 1u << 6,
	F_REASON = 1u << 7,
	F_BUCKETS = 1u << 8,
	F_SCALE = 1u << 9,
	F_CODE = 1u << 10,
	F_LISTING = 1u << 11, /* code and reserved_1 as one 40-byte text */
};

/* How the reason byte is read, for range checks. */
enum reason_kind {
	REASON_NONE = 0,
	REASON_ADJUST,
	REASON_DISPOSITION,
	REASON_LIFECYCLE,
	REASON_PUSH_EXCEPTION,
};

struct kind_rule {
	const char *name;
	uint16_t fields;     /* enum field: fields the kind may set */
	uint16_t flags;      /* flags the kind may set besides LINKED */
	uint8_t reason_kind; /* enum reason_kind */
};

#define KIND_SLOTS 64
static const struct kind_rule kind_rules[KIND_SLOTS] = {
        [SKULD_ITEM_DEFINE] = {"ITEM_DEFINE", F_ITEM | F_CODE | F_SCALE, SKULD_EVENT_BUNDLE, 0},
        [SKULD_SKU_ALIAS] = {"SKU_ALIAS", F_ITEM | F_CODE, SKULD_EVENT_RETIRE, 0},
        [SKULD_BARCODE_DEFINE] = {"BARCODE_DEFINE", F_ITEM | F_CODE | F_QUANTITY,
                                  SKULD_EVENT_RETIRE, 0},
        [SKULD_ATTRIBUTE_SET] = {"ATTRIBUTE_SET", F_ITEM | F_CODE, 0, 0},
        [SKULD_LOCATION_DEFINE] = {"LOCATION_DEFINE", F_LOCATION | F_CODE | F_REASON, 0,
                                   REASON_LIFECYCLE},
        [SKULD_LOCATION_STATE] = {"LOCATION_STATE", F_LOCATION | F_REASON, 0, REASON_LIFECYCLE},
        [SKULD_BUNDLE_COMPONENT] = {"BUNDLE_COMPONENT", F_ITEM | F_TARGET | F_QUANTITY, 0, 0},
        [SKULD_CHANNEL_DEFINE] = {"CHANNEL_DEFINE", F_CHANNEL | F_CODE | F_QUANTITY, 0, 0},
        [SKULD_CHANNEL_POOL] = {"CHANNEL_POOL", F_CHANNEL | F_LOCATION | F_QUANTITY,
                                SKULD_EVENT_RETIRE, 0},
        [SKULD_CHANNEL_BUFFER] = {"CHANNEL_BUFFER", F_CHANNEL | F_ITEM | F_QUANTITY, 0, 0},
        [SKULD_CHANNEL_CAP] = {"CHANNEL_CAP", F_CHANNEL | F_QUANTITY, 0, 0},
        [SKULD_CHANNEL_MIN] = {"CHANNEL_MIN", F_CHANNEL | F_QUANTITY, 0, 0},
        [SKULD_CHANNEL_LISTING] = {"CHANNEL_LISTING", F_CHANNEL | F_ITEM | F_LISTING,
                                   SKULD_EVENT_RETIRE, 0},
        [SKULD_RECEIVE] = {"RECEIVE", F_ITEM | F_LOCATION | F_QUANTITY, SKULD_EVENT_FROM_INCOMING,
                           0},
        [SKULD_ADJUST] = {"ADJUST", F_ITEM | F_LOCATION | F_QUANTITY | F_REASON, 0, REASON_ADJUST},
        [SKULD_COUNT_OPEN] = {"COUNT_OPEN", F_ITEM | F_LOCATION | F_ID, 0, 0},
        [SKULD_COUNT_CLOSE] = {"COUNT_CLOSE", F_ITEM | F_LOCATION | F_ID | F_QUANTITY, 0, 0},
        [SKULD_SALE] = {"SALE", F_ITEM | F_LOCATION | F_QUANTITY, 0, 0},
        [SKULD_RESERVE] = {"RESERVE", F_ITEM | F_LOCATION | F_CHANNEL | F_ID | F_QUANTITY | F_TTL,
                           0, 0},
        [SKULD_EXTEND] = {"EXTEND", F_ID | F_TTL, 0, 0},
        [SKULD_COMMIT] = {"COMMIT", F_ID | F_QUANTITY, SKULD_EVENT_AFTER_EXPIRY, 0},
        [SKULD_RELEASE] = {"RELEASE", F_ID, 0, 0},
        [SKULD_REALLOCATE] = {"REALLOCATE", F_ID | F_TARGET, 0, 0},
        [SKULD_EXPIRE] = {"EXPIRE", F_ID, 0, 0},
        [SKULD_FULFILL] = {"FULFILL", F_ITEM | F_LOCATION | F_QUANTITY, 0, 0},
        [SKULD_RETURN] = {"RETURN", F_ITEM | F_LOCATION | F_QUANTITY | F_REASON,
                          SKULD_EVENT_EXPECTED, REASON_DISPOSITION},
        [SKULD_TRANSFER_OUT] = {"TRANSFER_OUT", F_ITEM | F_LOCATION | F_TARGET | F_ID | F_QUANTITY,
                                0, 0},
        [SKULD_TRANSFER_IN] = {"TRANSFER_IN", F_ITEM | F_LOCATION | F_ID | F_QUANTITY, 0, 0},
        [SKULD_MOVE] = {"MOVE", F_ITEM | F_LOCATION | F_QUANTITY | F_BUCKETS, 0, 0},
        [SKULD_INCOMING] = {"INCOMING", F_ITEM | F_LOCATION | F_QUANTITY, 0, 0},
        [SKULD_PUSH_ACK] = {"PUSH_ACK", F_CHANNEL | F_ITEM | F_ID | F_QUANTITY, 0, 0},
        [SKULD_PUSH_EXCEPTION] = {"PUSH_EXCEPTION", F_CHANNEL | F_ITEM | F_ID | F_REASON | F_CODE,
                                  0, REASON_PUSH_EXCEPTION},
        [SKULD_DISCREPANCY_ACK] = {"DISCREPANCY_ACK", F_ITEM | F_LOCATION, 0, 0},
};

static const struct kind_rule *kind_rule_find(uint32_t kind)
{
	if (kind >= KIND_SLOTS || kind_rules[kind].name == NULL)
		return NULL;
	return &kind_rules[kind];
}

const char *skuld_event_kind_name(uint32_t kind)
{
	const struct kind_rule *rule = kind_rule_find(kind);
	return rule ? rule->name : "UNKNOWN";
}

int proto_text_valid(const char *text, size_t size, int allow_empty)
{
	size_t length = 0;
	while (length < size && text[length] != '\0') {
		unsigned char c = (unsigned char)text[length];
		if (c < 0x20 || c > 0x7e)
			return 0;
		length++;
	}
	/* The padding is checked first: an empty field hides nothing either. */
	for (size_t i = length; i < size; i++) {
		if (text[i] != '\0')
			return 0;
	}
	if (length == 0)
		return allow_empty;
	if (text[0] == ' ' || text[length - 1] == ' ')
		return 0;
	return 1;
}

static int bytes_zero(const void *bytes, size_t size)
{
	const unsigned char *p = bytes;
	for (size_t i = 0; i < size; i++) {
		if (p[i] != 0)
			return 0;
	}
	return 1;
}

/* Returns the set of fields that hold a non-zero value. */
static uint32_t event_fields_set(const struct skuld_event *event)
{
	uint32_t set = 0;
	set |= event->quantity != 0 ? F_QUANTITY : 0;
	set |= event->id != 0 ? F_ID : 0;
	set |= event->item != 0 ? F_ITEM : 0;
	set |= event->location != 0 ? F_LOCATION : 0;
	set |= event->target != 0 ? F_TARGET : 0;
	set |= event->channel != 0 ? F_CHANNEL : 0;
	set |= event->ttl_s != 0 ? F_TTL : 0;
	set |= event->reason != 0 ? F_REASON : 0;
	set |= (event->bucket_from | event->bucket_to) != 0 ? F_BUCKETS : 0;
	set |= event->scale != 0 ? F_SCALE : 0;
	uint64_t code_words[SKULD_CODE_SIZE / sizeof(uint64_t)];
	memcpy(code_words, event->code, sizeof(code_words));
	set |= (code_words[0] | code_words[1] | code_words[2] | code_words[3]) != 0 ? F_CODE : 0;
	return set;
}

static int reason_in_range(uint8_t reason_kind, uint8_t reason)
{
	switch (reason_kind) {
	case REASON_ADJUST:
		return reason <= SKULD_REASON_LAST;
	case REASON_DISPOSITION:
		return reason <= SKULD_DISPOSITION_QUARANTINE;
	case REASON_LIFECYCLE:
		return reason <= SKULD_LIFECYCLE_CLOSED;
	case REASON_PUSH_EXCEPTION:
		return reason >= 1 && reason <= SKULD_PUSH_EXCEPTION_LAST;
	default:
		return reason == 0;
	}
}

uint32_t proto_event_check(const struct skuld_event *event)
{
	const struct kind_rule *rule = kind_rule_find(event->kind);
	/* CHANNEL_LISTING's text runs on into reserved_1 (PROTOCOL.md). */
	int listing = rule != NULL && (rule->fields & F_LISTING);
	if (event->reserved_0 != 0 || (!listing && event->reserved_1 != 0))
		return SKULD_ERR_RESERVED;
	if (rule == NULL)
		return SKULD_ERR_EVENT_KIND;
	uint32_t set = event_fields_set(event);
	if (listing)
		set = (set & ~(uint32_t)F_CODE) | F_LISTING;
	if ((set & ~(uint32_t)rule->fields) != 0)
		return SKULD_ERR_EVENT_FIELD;
	if ((event->flags & ~(uint32_t)(rule->flags | SKULD_EVENT_LINKED)) != 0)
		return SKULD_ERR_EVENT_VALUE;
	if (skuld_u128_is_zero(event->key))
		return SKULD_ERR_EVENT_VALUE;
	if (!reason_in_range(rule->reason_kind, event->reason))
		return SKULD_ERR_EVENT_VALUE;
	if (event->bucket_from > SKULD_BUCKET_LAST || event->bucket_to > SKULD_BUCKET_LAST)
		return SKULD_ERR_EVENT_VALUE;
	if (event->scale > SKULD_SCALE_MAX)
		return SKULD_ERR_EVENT_VALUE;
	/* Text is required where a kind names something; PUSH_EXCEPTION's
	 * detail may be empty. */
	int text_optional = event->kind == SKULD_PUSH_EXCEPTION;
	if ((rule->fields & F_CODE) &&
	    !proto_text_valid(event->code, sizeof(event->code), text_optional))
		return SKULD_ERR_EVENT_VALUE;
	if (listing && !proto_text_valid(event->listing, sizeof(event->listing), 0))
		return SKULD_ERR_EVENT_VALUE;
	return SKULD_OK;
}

/* ---- Frames --------------------------------------------------------------- */

/* Body shape of each operation and direction: either a fixed record size
 * (count = body_size / record_size) or an exact body (size, count). */
struct body_rule {
	uint32_t record_size; /* 0: the body must be exactly size bytes */
	uint32_t size;
	uint32_t count;
	uint32_t records_min; /* arrays: fewer records is a SIZE error */
	bool count_any;       /* exact body: count is not checked (STATS request) */
};

static int body_rule_find(uint8_t operation, int reply, struct body_rule *rule)
{
	memset(rule, 0, sizeof(*rule));
	switch (operation) {
	case SKULD_OP_REGISTER:
		rule->size = reply ? sizeof(struct skuld_register_reply)
		                   : sizeof(struct skuld_register_request);
		rule->count = 1;
		return 1;
	case SKULD_OP_SUBMIT:
		rule->record_size = reply ? SKULD_RESULT_SIZE : SKULD_EVENT_SIZE;
		return 1;
	case SKULD_OP_PING:
		return 1;
	case SKULD_OP_ERROR:
		if (!reply)
			return 0;
		rule->size = sizeof(struct skuld_error_body);
		rule->count = 1;
		return 1;
	case SKULD_OP_QUERY:
		if (reply) {
			rule->record_size = sizeof(struct skuld_level_record);
		} else {
			rule->size = sizeof(struct skuld_query);
			rule->count = 1;
		}
		return 1;
	case SKULD_OP_LOOKUP:
		if (reply) {
			rule->record_size = sizeof(struct skuld_lookup_match);
		} else {
			rule->size = sizeof(struct skuld_lookup);
			rule->count = 1;
		}
		return 1;
	case SKULD_OP_STATS:
		if (reply) {
			rule->record_size = SKULD_STATS_RECORD_SIZE;
			rule->records_min = 1;
		} else {
			rule->count_any = true; /* the records the client takes; 0: one */
		}
		return 1;
	default:
		return 0;
	}
}

uint32_t proto_record_size(uint8_t operation, int reply)
{
	struct body_rule rule;
	if (!body_rule_find(operation, reply, &rule))
		return 0;
	return rule.record_size;
}

void proto_header_seal(struct skuld_header *header, const void *body)
{
	static const char empty[1];
	header->magic = SKULD_MAGIC;
	header->reserved = 0;
	header->checksum_body = skuld_checksum(body ? body : empty, header->body_size);
	header->checksum_header =
	        skuld_checksum(header, offsetof(struct skuld_header, checksum_header));
}

uint32_t proto_header_check(const struct skuld_header *header)
{
	if (header->magic != SKULD_MAGIC)
		return SKULD_ERR_MAGIC;
	if (header->version < SKULD_PROTOCOL_VERSION_MIN ||
	    header->version > SKULD_PROTOCOL_VERSION_MAX)
		return SKULD_ERR_VERSION;
	uint64_t checksum = skuld_checksum(header, offsetof(struct skuld_header, checksum_header));
	if (checksum != header->checksum_header)
		return SKULD_ERR_HEADER_CHECKSUM;
	if (header->reserved != 0)
		return SKULD_ERR_RESERVED;
	if ((header->flags & ~(uint32_t)SKULD_FRAME_FLAGS_KNOWN) != 0)
		return SKULD_ERR_FLAGS;
	/* result is a status only in replies; in a request it is reserved. */
	if ((header->flags & SKULD_FRAME_REPLY) == 0 && header->result != 0)
		return SKULD_ERR_RESERVED;
	struct body_rule rule;
	if (!body_rule_find(header->operation, header->flags & SKULD_FRAME_REPLY, &rule))
		return SKULD_ERR_OPERATION;
	if (header->body_size > SKULD_BODY_SIZE_MAX)
		return SKULD_ERR_SIZE;
	if (rule.record_size == 0) {
		if (header->body_size != rule.size)
			return SKULD_ERR_SIZE;
		if (!rule.count_any && header->count != rule.count)
			return SKULD_ERR_COUNT;
	} else {
		if (header->body_size % rule.record_size != 0 ||
		    header->body_size / rule.record_size < rule.records_min)
			return SKULD_ERR_SIZE;
		if (header->count != header->body_size / rule.record_size)
			return SKULD_ERR_COUNT;
	}
	/* An ERROR may answer a frame whose client id could not be trusted (bad
	 * magic, bad checksum) before any REGISTER: the server sends zero then. */
	if (skuld_u128_is_zero(header->client) && header->operation != SKULD_OP_ERROR)
		return SKULD_ERR_CLIENT;
	return SKULD_OK;
}

static uint32_t register_request_check(const struct skuld_register_request *request)
{
	if (request->reserved_0 != 0 || request->reserved_1 != 0 ||
	    !bytes_zero(request->reserved_2, sizeof(request->reserved_2)))
		return SKULD_ERR_RESERVED;
	if (request->version_min == 0 || request->version_min > request->version_max)
		return SKULD_ERR_VERSION;
	if (!proto_text_valid(request->token, sizeof(request->token), 1) ||
	    !proto_text_valid(request->client_name, sizeof(request->client_name), 1))
		return SKULD_ERR_EVENT_VALUE;
	return SKULD_OK;
}

static uint32_t register_reply_check(const struct skuld_register_reply *reply)
{
	if (reply->reserved_0 != 0 || !bytes_zero(reply->reserved_1, sizeof(reply->reserved_1)))
		return SKULD_ERR_RESERVED;
	if (reply->version < SKULD_PROTOCOL_VERSION_MIN ||
	    reply->version > SKULD_PROTOCOL_VERSION_MAX)
		return SKULD_ERR_VERSION;
	return SKULD_OK;
}

static uint32_t error_body_check(const struct skuld_error_body *error)
{
	if (!proto_text_valid(error->message, sizeof(error->message), 1))
		return SKULD_ERR_EVENT_VALUE;
	return SKULD_OK;
}

static uint32_t result_check(const struct skuld_result *result)
{
	return result->reserved == 0 ? SKULD_OK : SKULD_ERR_RESERVED;
}

/* ---- QUERY, LOOKUP, STATS ------------------------------------------------- */

/* Fields a query kind may set (docs/PROTOCOL.md section 12). */
enum query_field {
	Q_LIMIT = 1u << 0,
	Q_ITEM = 1u << 1,
	Q_LOCATION = 1u << 2,
	Q_CHANNEL = 1u << 3,
	Q_AFTER_ITEM = 1u << 4,
	Q_AFTER_LOCATION = 1u << 5,
	Q_HOLD = 1u << 6,
};

static const uint8_t query_fields[SKULD_QUERY_KIND_LAST + 1] = {
        [SKULD_QUERY_LEVEL] = Q_ITEM | Q_LOCATION,
        [SKULD_QUERY_ITEM_LEVELS] = Q_ITEM | Q_LIMIT | Q_AFTER_LOCATION,
        [SKULD_QUERY_LOCATION_LEVELS] = Q_LOCATION | Q_LIMIT | Q_AFTER_ITEM,
        [SKULD_QUERY_CHANNEL] = Q_CHANNEL | Q_ITEM | Q_LIMIT | Q_AFTER_ITEM,
        [SKULD_QUERY_HOLD] = Q_HOLD,
        [SKULD_QUERY_PUSH] = Q_CHANNEL | Q_LIMIT | Q_AFTER_ITEM,
        [SKULD_QUERY_PUSH_ALL] = Q_CHANNEL | Q_LIMIT | Q_AFTER_ITEM,
        [SKULD_QUERY_LISTING] = Q_CHANNEL | Q_ITEM | Q_LIMIT | Q_AFTER_ITEM,
        [SKULD_QUERY_EXCEPTIONS] = Q_CHANNEL | Q_LIMIT | Q_AFTER_ITEM,
        [SKULD_QUERY_CHANNEL_PUSH] = Q_CHANNEL,
        [SKULD_QUERY_DISCREPANCIES] = Q_LOCATION | Q_LIMIT | Q_AFTER_ITEM | Q_AFTER_LOCATION,
};

uint32_t proto_query_check(const struct skuld_query *query)
{
	if (query->reserved_0 != 0 || query->reserved_1 != 0 ||
	    !bytes_zero(query->reserved_2, sizeof(query->reserved_2)))
		return SKULD_ERR_RESERVED;
	if (query->kind == 0 || query->kind > SKULD_QUERY_KIND_LAST)
		return SKULD_ERR_QUERY;
	uint32_t set = 0;
	set |= query->limit != 0 ? Q_LIMIT : 0;
	set |= query->item != 0 ? Q_ITEM : 0;
	set |= query->location != 0 ? Q_LOCATION : 0;
	set |= query->channel != 0 ? Q_CHANNEL : 0;
	set |= query->after_item != 0 ? Q_AFTER_ITEM : 0;
	set |= query->after_location != 0 ? Q_AFTER_LOCATION : 0;
	set |= query->hold != 0 ? Q_HOLD : 0;
	if ((set & ~(uint32_t)query_fields[query->kind]) != 0)
		return SKULD_ERR_QUERY;
	if (query->limit > SKULD_QUERY_LIMIT_MAX)
		return SKULD_ERR_QUERY;
	/* DISCREPANCIES of one location pages within it. */
	if (query->kind == SKULD_QUERY_DISCREPANCIES && query->location != 0 &&
	    query->after_location != 0 && query->after_location != query->location)
		return SKULD_ERR_QUERY;
	return SKULD_OK;
}

/* ITEM asks by id and uses no code; every other kind asks by code and uses
 * no id (docs/PROTOCOL.md section 13.1). */
uint32_t proto_lookup_check(const struct skuld_lookup *lookup)
{
	if (lookup->reserved_0 != 0 || lookup->reserved_2 != 0 ||
	    !bytes_zero(lookup->reserved_3, sizeof(lookup->reserved_3)))
		return SKULD_ERR_RESERVED;
	if (lookup->kind == 0 || lookup->kind > SKULD_LOOKUP_KIND_LAST)
		return SKULD_ERR_QUERY;
	if (lookup->kind == SKULD_LOOKUP_ITEM) {
		if (!bytes_zero(lookup->code, sizeof(lookup->code)))
			return SKULD_ERR_QUERY;
		if (lookup->id == 0)
			return SKULD_ERR_QUERY;
		return SKULD_OK;
	}
	if (lookup->id != 0)
		return SKULD_ERR_QUERY;
	if (!proto_text_valid(lookup->code, sizeof(lookup->code), 0))
		return SKULD_ERR_QUERY;
	return SKULD_OK;
}

/* One QUERY reply record: kind, then flags, then the layout's own rules. */
static uint32_t query_record_check(const struct skuld_level_record *record)
{
	if (record->kind == 0 || record->kind > SKULD_QUERY_KIND_LAST)
		return SKULD_ERR_QUERY;
	uint32_t flags_known = record->kind == SKULD_QUERY_DISCREPANCIES
	                               ? SKULD_DISCREPANCY_FLAGS_KNOWN
	                               : SKULD_QUERY_FLAGS_KNOWN;
	if ((record->flags & ~flags_known) != 0)
		return SKULD_ERR_FLAGS;
	switch (record->kind) {
	case SKULD_QUERY_PUSH:
	case SKULD_QUERY_PUSH_ALL: {
		const struct skuld_push_record *push = (const struct skuld_push_record *)record;
		if (push->reserved_0 != 0)
			return SKULD_ERR_RESERVED;
		if (push->scale > SKULD_SCALE_MAX || push->exception > SKULD_PUSH_EXCEPTION_LAST ||
		    (push->state & ~7u) != 0)
			return SKULD_ERR_QUERY;
		return SKULD_OK;
	}
	case SKULD_QUERY_LISTING: {
		const struct skuld_listing_record *listing =
		        (const struct skuld_listing_record *)record;
		if (listing->reserved != 0)
			return SKULD_ERR_RESERVED;
		if (!proto_text_valid(listing->listing, sizeof(listing->listing), 1))
			return SKULD_ERR_QUERY;
		return SKULD_OK;
	}
	case SKULD_QUERY_EXCEPTIONS: {
		const struct skuld_exception_record *exception =
		        (const struct skuld_exception_record *)record;
		if (exception->reserved_0 != 0 || exception->reserved_1 != 0)
			return SKULD_ERR_RESERVED;
		if (exception->exception > SKULD_PUSH_EXCEPTION_LAST ||
		    !proto_text_valid(exception->detail, sizeof(exception->detail), 1))
			return SKULD_ERR_QUERY;
		return SKULD_OK;
	}
	case SKULD_QUERY_CHANNEL_PUSH: {
		const struct skuld_channel_push_record *channel =
		        (const struct skuld_channel_push_record *)record;
		if (channel->flags != 0)
			return SKULD_ERR_FLAGS;
		if (channel->reserved_0 != 0 || channel->reserved_1 != 0)
			return SKULD_ERR_RESERVED;
		if (channel->exception > SKULD_PUSH_EXCEPTION_LAST)
			return SKULD_ERR_QUERY;
		return SKULD_OK;
	}
	case SKULD_QUERY_HOLD:
		break;
	default:
		return SKULD_OK;
	}
	const struct skuld_hold_record *hold = (const struct skuld_hold_record *)record;
	if (hold->flags != 0)
		return SKULD_ERR_FLAGS;
	if (hold->reserved_0 != 0 || hold->reserved_1 != 0)
		return SKULD_ERR_RESERVED;
	if (hold->state > SKULD_HOLD_STATE_LAST)
		return SKULD_ERR_QUERY;
	return SKULD_OK;
}

static uint32_t lookup_match_check(const struct skuld_lookup_match *match)
{
	if (!bytes_zero(match->reserved_0, sizeof(match->reserved_0)) || match->reserved_1 != 0)
		return SKULD_ERR_RESERVED;
	if (match->kind == 0 || match->kind > SKULD_LOOKUP_KIND_LAST)
		return SKULD_ERR_QUERY;
	if (match->scale > SKULD_SCALE_MAX)
		return SKULD_ERR_QUERY;
	if ((match->flags & ~(uint32_t)SKULD_LOOKUP_FLAGS_KNOWN) != 0)
		return SKULD_ERR_FLAGS;
	return SKULD_OK;
}

/* Record 0 and record 2 are figures only; record 1 has one reserved word.
 * Records after the ones this build knows are a newer server's: ignored. */
static uint32_t stats_check(const void *body, uint32_t count, uint32_t *index)
{
	if (count > 1) {
		const struct skuld_stats_limits *limits =
		        (const struct skuld_stats_limits *)((const unsigned char *)body +
		                                            SKULD_STATS_RECORD_SIZE);
		if (limits->reserved != 0) {
			if (index != NULL)
				*index = 1;
			return SKULD_ERR_RESERVED;
		}
	}
	return SKULD_OK;
}

/* Checks count records of record_size bytes with check; stores the failing
 * index. */
static uint32_t records_check(const void *body, uint32_t count, uint32_t record_size,
                              uint32_t (*check)(const void *record), uint32_t *index)
{
	const unsigned char *bytes = body;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t status = check(bytes + (size_t)i * record_size);
		if (status != SKULD_OK) {
			if (index != NULL)
				*index = i;
			return status;
		}
	}
	return SKULD_OK;
}

static uint32_t query_record_check_any(const void *record)
{
	return query_record_check(record);
}

static uint32_t lookup_match_check_any(const void *record)
{
	return lookup_match_check(record);
}

uint32_t proto_body_check(const struct skuld_header *header, const void *body, uint32_t *index)
{
	static const char empty[1];
	if (index != NULL)
		*index = 0;
	if (skuld_checksum(body ? body : empty, header->body_size) != header->checksum_body)
		return SKULD_ERR_BODY_CHECKSUM;
	int reply = header->flags & SKULD_FRAME_REPLY;
	switch (header->operation) {
	case SKULD_OP_REGISTER:
		return reply ? register_reply_check(body) : register_request_check(body);
	case SKULD_OP_ERROR:
		return error_body_check(body);
	case SKULD_OP_QUERY:
		if (!reply)
			return proto_query_check(body);
		return records_check(body, header->count, sizeof(struct skuld_level_record),
		                     query_record_check_any, index);
	case SKULD_OP_LOOKUP:
		if (!reply)
			return proto_lookup_check(body);
		return records_check(body, header->count, sizeof(struct skuld_lookup_match),
		                     lookup_match_check_any, index);
	case SKULD_OP_STATS:
		return reply ? stats_check(body, header->count, index) : SKULD_OK;
	case SKULD_OP_SUBMIT:
		break;
	default:
		return SKULD_OK;
	}
	for (uint32_t i = 0; i < header->count; i++) {
		uint32_t status = reply ? result_check((const struct skuld_result *)body + i)
		                        : proto_event_check((const struct skuld_event *)body + i);
		if (status != SKULD_OK) {
			if (index != NULL)
				*index = i;
			return status;
		}
	}
	return SKULD_OK;
}

uint16_t proto_version_negotiate(uint16_t client_min, uint16_t client_max)
{
	uint16_t high =
	        client_max < SKULD_PROTOCOL_VERSION_MAX ? client_max : SKULD_PROTOCOL_VERSION_MAX;
	uint16_t low =
	        client_min > SKULD_PROTOCOL_VERSION_MIN ? client_min : SKULD_PROTOCOL_VERSION_MIN;
	return high >= low ? high : 0;
}
