/*
 * test_protocol.c — the wire codec of protocol/: round trips of every
 * structure, every rejection with its exact status, reads that stay inside
 * the caller's buffer (exact-size heap blocks under ASan, and guard pages),
 * and a deterministic mutation test checked against an independent model.
 *
 * Independence: the expected per-kind table, the frame rules and the byte
 * offsets below are copied from docs/PROTOCOL.md, not from protocol.c. The
 * model reads frames through byte offsets and XXH3 directly, never through
 * the codec, so a change to the codec that the document does not describe
 * fails here. Keep this file, PROTOCOL.md and protocol.c in step.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "protocol.h"

/* ---- Little-endian loads (the wire is little-endian whatever the host) ---- */

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---- The expected per-kind table (docs/PROTOCOL.md, "Event kinds") ------- */

enum want_field {
	W_QUANTITY = 1u << 0,
	W_ID = 1u << 1,
	W_ITEM = 1u << 2,
	W_LOCATION = 1u << 3,
	W_TARGET = 1u << 4,
	W_CHANNEL = 1u << 5,
	W_TTL = 1u << 6,
	W_REASON = 1u << 7,
	W_BUCKET_FROM = 1u << 8,
	W_BUCKET_TO = 1u << 9,
	W_SCALE = 1u << 10,
	W_CODE = 1u << 11,
};
#define WANT_FIELD_COUNT 12
#define W_BUCKETS        (W_BUCKET_FROM | W_BUCKET_TO)

/* How the reason byte reads, and its largest valid value. */
enum want_reason {
	WR_NONE = 0,        /* must be 0 (and is a field the kind does not use) */
	WR_ADJUST = 7,      /* NONE..INTERNAL_USE */
	WR_DISPOSITION = 2, /* RESTOCK..QUARANTINE */
	WR_LIFECYCLE = 2,   /* ACTIVE..CLOSED */
	WR_PUSH = 8,        /* UNMAPPED..MISMATCH, and 0 is not valid */
};

/* How a kind's code bytes read. */
enum want_text {
	WT_REQUIRED = 0, /* code: non-empty text */
	WT_OPTIONAL = 1, /* code: text, may be empty */
	WT_LISTING = 2,  /* code and reserved_1 (88..127): one non-empty text */
};

/* Event flag bits as documented. */
#define WF_LINKED        0x01u
#define WF_BUNDLE        0x02u
#define WF_RETIRE        0x04u
#define WF_AFTER_EXPIRY  0x08u
#define WF_FROM_INCOMING 0x10u
#define WF_EXPECTED      0x20u

struct want_kind {
	uint16_t kind;
	const char *name;
	uint32_t fields;    /* enum want_field */
	uint16_t flags;     /* allowed besides LINKED */
	uint8_t reason_max; /* enum want_reason */
	uint8_t reason_min;
	uint8_t text; /* enum want_text, for kinds with W_CODE */
};

static const struct want_kind want_kinds[] = {
        {1, "ITEM_DEFINE", W_ITEM | W_CODE | W_SCALE, WF_BUNDLE, WR_NONE},
        {2, "SKU_ALIAS", W_ITEM | W_CODE, WF_RETIRE, WR_NONE},
        {3, "BARCODE_DEFINE", W_ITEM | W_CODE | W_QUANTITY, WF_RETIRE, WR_NONE},
        {4, "ATTRIBUTE_SET", W_ITEM | W_CODE, 0, WR_NONE},
        {5, "LOCATION_DEFINE", W_LOCATION | W_CODE | W_REASON, 0, WR_LIFECYCLE},
        {6, "LOCATION_STATE", W_LOCATION | W_REASON, 0, WR_LIFECYCLE},
        {7, "BUNDLE_COMPONENT", W_ITEM | W_TARGET | W_QUANTITY, 0, WR_NONE},
        {8, "CHANNEL_DEFINE", W_CHANNEL | W_CODE | W_QUANTITY, 0, WR_NONE},
        {9, "CHANNEL_POOL", W_CHANNEL | W_LOCATION | W_QUANTITY, WF_RETIRE, WR_NONE},
        {10, "CHANNEL_BUFFER", W_CHANNEL | W_ITEM | W_QUANTITY, 0, WR_NONE},
        {11, "CHANNEL_CAP", W_CHANNEL | W_QUANTITY, 0, WR_NONE},
        {12, "CHANNEL_MIN", W_CHANNEL | W_QUANTITY, 0, WR_NONE},
        {13, "CHANNEL_LISTING", W_CHANNEL | W_ITEM | W_CODE, WF_RETIRE, WR_NONE, 0, WT_LISTING},
        {32, "RECEIVE", W_ITEM | W_LOCATION | W_QUANTITY, WF_FROM_INCOMING, WR_NONE},
        {33, "ADJUST", W_ITEM | W_LOCATION | W_QUANTITY | W_REASON, 0, WR_ADJUST},
        {34, "COUNT_OPEN", W_ITEM | W_LOCATION | W_ID, 0, WR_NONE},
        {35, "COUNT_CLOSE", W_ITEM | W_LOCATION | W_ID | W_QUANTITY, 0, WR_NONE},
        {36, "SALE", W_ITEM | W_LOCATION | W_QUANTITY, 0, WR_NONE},
        {37, "RESERVE", W_ITEM | W_LOCATION | W_CHANNEL | W_ID | W_QUANTITY | W_TTL, 0, WR_NONE},
        {38, "EXTEND", W_ID | W_TTL, 0, WR_NONE},
        {39, "COMMIT", W_ID | W_QUANTITY, WF_AFTER_EXPIRY, WR_NONE},
        {40, "RELEASE", W_ID, 0, WR_NONE},
        {41, "REALLOCATE", W_ID | W_TARGET, 0, WR_NONE},
        {42, "EXPIRE", W_ID, 0, WR_NONE},
        {43, "FULFILL", W_ITEM | W_LOCATION | W_QUANTITY, 0, WR_NONE},
        {44, "RETURN", W_ITEM | W_LOCATION | W_QUANTITY | W_REASON, WF_EXPECTED, WR_DISPOSITION},
        {45, "TRANSFER_OUT", W_ITEM | W_LOCATION | W_TARGET | W_ID | W_QUANTITY, 0, WR_NONE},
        {46, "TRANSFER_IN", W_ITEM | W_LOCATION | W_ID | W_QUANTITY, 0, WR_NONE},
        {47, "MOVE", W_ITEM | W_LOCATION | W_QUANTITY | W_BUCKETS, 0, WR_NONE},
        {48, "INCOMING", W_ITEM | W_LOCATION | W_QUANTITY, 0, WR_NONE},
        {49, "PUSH_ACK", W_CHANNEL | W_ITEM | W_ID | W_QUANTITY, 0, WR_NONE},
        {50, "PUSH_EXCEPTION", W_CHANNEL | W_ITEM | W_ID | W_REASON | W_CODE, 0, WR_PUSH, 1,
         WT_OPTIONAL},
        {51, "DISCREPANCY_ACK", W_ITEM | W_LOCATION, 0, WR_NONE},
};
#define WANT_KIND_COUNT (sizeof(want_kinds) / sizeof(want_kinds[0]))

static const struct want_kind *want_kind_find(uint32_t kind)
{
	for (size_t i = 0; i < WANT_KIND_COUNT; i++) {
		if (want_kinds[i].kind == kind)
			return &want_kinds[i];
	}
	return NULL;
}

static const struct want_kind *want_kind_named(const char *name)
{
	for (size_t i = 0; i < WANT_KIND_COUNT; i++) {
		if (strcmp(want_kinds[i].name, name) == 0)
			return &want_kinds[i];
	}
	cr_assert_fail("no kind named %s in the expected table", name);
	return NULL;
}

static const char *want_field_name(uint32_t field)
{
	static const char *names[WANT_FIELD_COUNT] = {
	        "quantity", "id",     "item",        "location",  "target", "channel",
	        "ttl_s",    "reason", "bucket_from", "bucket_to", "scale",  "code",
	};
	for (int i = 0; i < WANT_FIELD_COUNT; i++) {
		if (field == 1u << i)
			return names[i];
	}
	return "?";
}

/* ---- Test data ------------------------------------------------------------ */

static const skuld_u128 test_client = {0x0123456789abcdefull, 0xfedcba9876543210ull};

/* Sets one field to a valid non-zero value for every kind that uses it. */
static void field_set(struct skuld_event *event, uint32_t field)
{
	switch (field) {
	case W_QUANTITY:
		event->quantity = 12;
		break;
	case W_ID:
		event->id = 0x1122334455667788ull;
		break;
	case W_ITEM:
		event->item = 1001;
		break;
	case W_LOCATION:
		event->location = 17;
		break;
	case W_TARGET:
		event->target = 18;
		break;
	case W_CHANNEL:
		event->channel = 3;
		break;
	case W_TTL:
		event->ttl_s = 900;
		break;
	case W_REASON:
		event->reason = 1;
		break;
	case W_BUCKET_FROM:
		event->bucket_from = 1;
		break;
	case W_BUCKET_TO:
		event->bucket_to = 2;
		break;
	case W_SCALE:
		event->scale = 3;
		break;
	case W_CODE:
		memset(event->code, 0, sizeof(event->code));
		memcpy(event->code, "SKU-0042", 8);
		break;
	default:
		cr_assert_fail("unknown field bit %#x", field);
	}
}

/* A valid event of the kind with every field it uses set. */
static struct skuld_event event_full(const struct want_kind *kind)
{
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.key.lo = 0x5000u + kind->kind;
	event.key.hi = 0xabcdef;
	event.reference.lo = 77;
	event.reference.hi = 88;
	event.occurred_at = 1700000000123456789ull;
	event.kind = kind->kind;
	for (int i = 0; i < WANT_FIELD_COUNT; i++) {
		if (kind->fields & (1u << i))
			field_set(&event, 1u << i);
	}
	return event;
}

static struct skuld_event event_named(const char *name)
{
	return event_full(want_kind_named(name));
}

static struct skuld_register_request register_request_valid(void)
{
	struct skuld_register_request request;
	memset(&request, 0, sizeof(request));
	request.version_min = 1;
	request.version_max = 3;
	memcpy(request.token, "till-token-0001", 15);
	memcpy(request.client_name, "store 12 till 3", 15);
	return request;
}

static struct skuld_register_reply register_reply_valid(void)
{
	struct skuld_register_reply reply;
	memset(&reply, 0, sizeof(reply));
	reply.version = 1;
	reply.events_max = SKULD_EVENTS_PER_FRAME_MAX;
	reply.request_next = 1;
	reply.session = 0x77;
	return reply;
}

static struct skuld_error_body error_body_valid(uint32_t status)
{
	struct skuld_error_body error;
	memset(&error, 0, sizeof(error));
	error.status = status;
	error.index = 3;
	memcpy(error.message, "event 3: field not used by kind", 31);
	return error;
}

/* ---- Frames in a caller buffer -------------------------------------------- */

#define FRAME_BODY_CAPACITY (64u * SKULD_EVENT_SIZE)

/* Header plus room for a body, aligned as the codec requires (8 bytes). */
struct frame {
	_Alignas(64) unsigned char bytes[SKULD_HEADER_SIZE + FRAME_BODY_CAPACITY];
};

static struct skuld_header *frame_header(struct frame *frame)
{
	return (struct skuld_header *)frame->bytes;
}

static unsigned char *frame_body(struct frame *frame)
{
	return frame->bytes + SKULD_HEADER_SIZE;
}

/* Builds a sealed frame as a client or the server would. */
static void frame_make(struct frame *frame, uint8_t operation, uint8_t flags, const void *body,
                       uint32_t body_size, uint32_t count)
{
	cr_assert_leq(body_size, FRAME_BODY_CAPACITY);
	memset(frame, 0, sizeof(*frame));
	struct skuld_header *header = frame_header(frame);
	header->version = 1;
	header->operation = operation;
	header->flags = flags;
	header->request = 41;
	header->client = test_client;
	header->body_size = body_size;
	header->count = count;
	if (body_size > 0)
		memcpy(frame_body(frame), body, body_size);
	proto_header_seal(header, body_size > 0 ? frame_body(frame) : NULL);
}

/* Recomputes only the header checksum (proto_header_seal also rewrites the
 * magic and the reserved word, which some tests want to keep wrong). */
static void header_checksum_fix(struct skuld_header *header)
{
	header->checksum_header = XXH3_64bits(header, 56);
}

/* Both checks, as a receiver runs them. index is set only by the body check. */
static uint32_t frame_check_at(const unsigned char *header_bytes, const unsigned char *body,
                               uint32_t *index)
{
	const struct skuld_header *header = (const struct skuld_header *)header_bytes;
	uint32_t status = proto_header_check(header);
	if (status != SKULD_OK)
		return status;
	return proto_body_check(header, body, index);
}

static uint32_t frame_check(struct frame *frame, uint32_t *index)
{
	return frame_check_at(frame->bytes, frame_body(frame), index);
}

/* ---- An independent model of the rules (docs/PROTOCOL.md) ----------------- */

static int model_text_valid(const unsigned char *text, size_t size, int allow_empty)
{
	size_t length = 0;
	while (length < size && text[length] != 0)
		length++;
	for (size_t i = length; i < size; i++) {
		if (text[i] != 0)
			return 0;
	}
	if (length == 0)
		return allow_empty;
	for (size_t i = 0; i < length; i++) {
		if (text[i] < 0x20 || text[i] > 0x7e)
			return 0;
	}
	return text[0] != ' ' && text[length - 1] != ' ';
}

static int model_zero(const unsigned char *bytes, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		if (bytes[i] != 0)
			return 0;
	}
	return 1;
}

static uint32_t model_event_check(const unsigned char *e)
{
	const struct want_kind *kind = want_kind_find(le16(e + 76));
	int listing = kind != NULL && kind->text == WT_LISTING;
	if (le32(e + 84) != 0 || (!listing && le64(e + 120) != 0))
		return SKULD_ERR_RESERVED;
	if (kind == NULL)
		return SKULD_ERR_EVENT_KIND;
	uint32_t set = 0;
	set |= le64(e + 40) != 0 ? W_QUANTITY : 0;
	set |= le64(e + 48) != 0 ? W_ID : 0;
	set |= le32(e + 56) != 0 ? W_ITEM : 0;
	set |= le32(e + 60) != 0 ? W_LOCATION : 0;
	set |= le32(e + 64) != 0 ? W_TARGET : 0;
	set |= le32(e + 68) != 0 ? W_CHANNEL : 0;
	set |= le32(e + 72) != 0 ? W_TTL : 0;
	set |= e[80] != 0 ? W_REASON : 0;
	set |= e[81] != 0 ? W_BUCKET_FROM : 0;
	set |= e[82] != 0 ? W_BUCKET_TO : 0;
	set |= e[83] != 0 ? W_SCALE : 0;
	set |= !model_zero(e + 88, listing ? 40 : 32) ? W_CODE : 0;
	/* MOVE uses both buckets as one field pair. */
	if (set & ~kind->fields)
		return SKULD_ERR_EVENT_FIELD;
	if (le16(e + 78) & ~(kind->flags | WF_LINKED))
		return SKULD_ERR_EVENT_VALUE;
	if (model_zero(e, 16))
		return SKULD_ERR_EVENT_VALUE;
	if (e[80] > kind->reason_max || e[80] < kind->reason_min)
		return SKULD_ERR_EVENT_VALUE;
	if (e[81] > 2 || e[82] > 2)
		return SKULD_ERR_EVENT_VALUE;
	if (e[83] > 9)
		return SKULD_ERR_EVENT_VALUE;
	if ((kind->fields & W_CODE) &&
	    !model_text_valid(e + 88, listing ? 40 : 32, kind->text == WT_OPTIONAL))
		return SKULD_ERR_EVENT_VALUE;
	return SKULD_OK;
}

/* Header rules in documented order. h is the 64 header bytes. */
static uint32_t model_header_check(const unsigned char *h)
{
	if (memcmp(h, "SKLD", 4) != 0)
		return SKULD_ERR_MAGIC;
	if (le16(h + 4) != 1)
		return SKULD_ERR_VERSION;
	if (XXH3_64bits(h, 56) != le64(h + 56))
		return SKULD_ERR_HEADER_CHECKSUM;
	if (le32(h + 44) != 0)
		return SKULD_ERR_RESERVED;
	uint8_t flags = h[7];
	if (flags & ~1u)
		return SKULD_ERR_FLAGS;
	int reply = flags & 1;
	if (!reply && le32(h + 40) != 0)
		return SKULD_ERR_RESERVED;
	uint32_t record = 0, size = 0, count = 0;
	switch (h[6]) {
	case 1:
		size = reply ? 64 : 128;
		count = 1;
		break;
	case 2:
		record = reply ? 32 : 128;
		break;
	case 3:
		break;
	case 4:
		if (!reply)
			return SKULD_ERR_OPERATION;
		size = 64;
		count = 1;
		break;
	case 5: /* QUERY: one 64-byte query; reply: 64-byte records */
		record = reply ? 64 : 0;
		size = 64;
		count = 1;
		break;
	case 6: /* LOOKUP: one 64-byte lookup; reply: 32-byte matches */
		record = reply ? 32 : 0;
		size = 64;
		count = 1;
		break;
	case 7: /* STATS: empty, count any (records taken); reply: 256-byte records, at least one */
		record = reply ? 256 : 0;
		size = 0;
		count = reply ? 0 : le32(h + 36);
		if (reply && le32(h + 32) == 0)
			return SKULD_ERR_SIZE;
		break;
	default:
		return SKULD_ERR_OPERATION;
	}
	uint32_t body_size = le32(h + 32);
	if (body_size > (1u << 20))
		return SKULD_ERR_SIZE;
	if (record == 0 && body_size != size)
		return SKULD_ERR_SIZE;
	if (record != 0 && body_size % record != 0)
		return SKULD_ERR_SIZE;
	if (record != 0)
		count = body_size / record;
	if (le32(h + 36) != count)
		return SKULD_ERR_COUNT;
	if (model_zero(h + 16, 16) && h[6] != 4)
		return SKULD_ERR_CLIENT;
	return SKULD_OK;
}

/* QUERY request (docs/PROTOCOL.md section 12): fields each kind may set,
 * as byte offsets: limit 4, item 8, location 12, channel 16, after_item 20,
 * after_location 24, hold 32 (u64). */
enum want_query_field {
	WQ_LIMIT = 1u << 0,
	WQ_ITEM = 1u << 1,
	WQ_LOCATION = 1u << 2,
	WQ_CHANNEL = 1u << 3,
	WQ_AFTER_ITEM = 1u << 4,
	WQ_AFTER_LOCATION = 1u << 5,
	WQ_HOLD = 1u << 6,
};

static const uint32_t want_query_fields[12] = {
        0,
        WQ_ITEM | WQ_LOCATION,
        WQ_ITEM | WQ_LIMIT | WQ_AFTER_LOCATION,
        WQ_LOCATION | WQ_LIMIT | WQ_AFTER_ITEM,
        WQ_CHANNEL | WQ_ITEM | WQ_LIMIT | WQ_AFTER_ITEM,
        WQ_HOLD,
        WQ_CHANNEL | WQ_LIMIT | WQ_AFTER_ITEM,
        WQ_CHANNEL | WQ_LIMIT | WQ_AFTER_ITEM,
        WQ_CHANNEL | WQ_ITEM | WQ_LIMIT | WQ_AFTER_ITEM,
        WQ_CHANNEL | WQ_LIMIT | WQ_AFTER_ITEM,
        WQ_CHANNEL,
        WQ_LOCATION | WQ_LIMIT | WQ_AFTER_ITEM | WQ_AFTER_LOCATION,
};

static uint32_t model_query_check(const unsigned char *q)
{
	if (le16(q + 2) != 0 || le32(q + 28) != 0 || !model_zero(q + 40, 24))
		return SKULD_ERR_RESERVED;
	uint16_t kind = le16(q);
	if (kind == 0 || kind > 11)
		return SKULD_ERR_QUERY;
	uint32_t set = 0;
	set |= le32(q + 4) != 0 ? WQ_LIMIT : 0;
	set |= le32(q + 8) != 0 ? WQ_ITEM : 0;
	set |= le32(q + 12) != 0 ? WQ_LOCATION : 0;
	set |= le32(q + 16) != 0 ? WQ_CHANNEL : 0;
	set |= le32(q + 20) != 0 ? WQ_AFTER_ITEM : 0;
	set |= le32(q + 24) != 0 ? WQ_AFTER_LOCATION : 0;
	set |= le64(q + 32) != 0 ? WQ_HOLD : 0;
	if (set & ~want_query_fields[kind])
		return SKULD_ERR_QUERY;
	if (le32(q + 4) > 1024)
		return SKULD_ERR_QUERY;
	/* DISCREPANCIES of one location: after_location 0 or that location. */
	if (kind == 11 && le32(q + 12) != 0 && le32(q + 24) != 0 && le32(q + 24) != le32(q + 12))
		return SKULD_ERR_QUERY;
	return SKULD_OK;
}

/* LOOKUP request (section 13.1): kinds 1..4 name a code (id 4..7 zero),
 * kind 5 ITEM names an id (code 16..47 zero). */
static uint32_t model_lookup_check(const unsigned char *l)
{
	if (!model_zero(l + 2, 2) || !model_zero(l + 8, 8) || !model_zero(l + 48, 16))
		return SKULD_ERR_RESERVED;
	if (le16(l) == 0 || le16(l) > 5)
		return SKULD_ERR_QUERY;
	if (le16(l) == 5)
		return model_zero(l + 16, 32) && le32(l + 4) != 0 ? SKULD_OK : SKULD_ERR_QUERY;
	if (le32(l + 4) != 0)
		return SKULD_ERR_QUERY;
	return model_text_valid(l + 16, 32, 0) ? SKULD_OK : SKULD_ERR_QUERY;
}

static uint32_t model_query_records_check(const unsigned char *b, uint32_t count, uint32_t *index)
{
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *r = b + (size_t)i * 64;
		uint32_t status = SKULD_OK;
		uint8_t kind = r[58];
		if (kind == 0 || kind > 11)
			status = SKULD_ERR_QUERY;
		/* DISCREPANCIES knows flag bits 0..5, every other kind 0..1. */
		else if (r[59] & (kind == 11 ? ~0x3fu : ~3u))
			status = SKULD_ERR_FLAGS;
		/* PUSH, PUSH_ALL: reserved 44..47; scale <= 9, exception <= 8,
		 * state bits 0..2. */
		else if ((kind == 6 || kind == 7) && !model_zero(r + 44, 4))
			status = SKULD_ERR_RESERVED;
		else if ((kind == 6 || kind == 7) && (r[40] > 9 || le16(r + 42) > 8 || r[41] > 7))
			status = SKULD_ERR_QUERY;
		/* LISTING: reserved 48..55, text 8..47. */
		else if (kind == 8 && !model_zero(r + 48, 8))
			status = SKULD_ERR_RESERVED;
		else if (kind == 8 && !model_text_valid(r + 8, 40, 1))
			status = SKULD_ERR_QUERY;
		/* EXCEPTIONS: reserved 6..7 and 28..31; exception <= 8, detail text. */
		else if (kind == 9 && (!model_zero(r + 6, 2) || !model_zero(r + 28, 4)))
			status = SKULD_ERR_RESERVED;
		else if (kind == 9 && (le16(r + 4) > 8 || !model_text_valid(r + 32, 24, 1)))
			status = SKULD_ERR_QUERY;
		/* CHANNEL_PUSH: no flags; reserved 38..39 and 48..55. */
		else if (kind == 10 && r[59] != 0)
			status = SKULD_ERR_FLAGS;
		else if (kind == 10 && (!model_zero(r + 38, 2) || !model_zero(r + 48, 8)))
			status = SKULD_ERR_RESERVED;
		else if (kind == 10 && le16(r + 36) > 8)
			status = SKULD_ERR_QUERY;
		else if (r[58] == 5 && r[59] != 0)
			status = SKULD_ERR_FLAGS;
		else if (r[58] == 5 && !model_zero(r + 44, 12))
			status = SKULD_ERR_RESERVED;
		else if (r[58] == 5 && le32(r + 40) > 3)
			status = SKULD_ERR_QUERY;
		if (status != SKULD_OK) {
			*index = i;
			return status;
		}
	}
	return SKULD_OK;
}

static uint32_t model_lookup_matches_check(const unsigned char *b, uint32_t count, uint32_t *index)
{
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *r = b + (size_t)i * 32;
		uint32_t status = SKULD_OK;
		if (!model_zero(r + 17, 15))
			status = SKULD_ERR_RESERVED;
		else if (r[6] == 0 || r[6] > 5 || r[16] > 9)
			status = SKULD_ERR_QUERY;
		else if (r[7] & ~7u)
			status = SKULD_ERR_FLAGS;
		if (status != SKULD_OK) {
			*index = i;
			return status;
		}
	}
	return SKULD_OK;
}

static uint32_t model_body_check(const unsigned char *h, const unsigned char *b, uint32_t *index)
{
	*index = 0;
	uint32_t body_size = le32(h + 32);
	if (XXH3_64bits(b, body_size) != le64(h + 48))
		return SKULD_ERR_BODY_CHECKSUM;
	int reply = h[7] & 1;
	switch (h[6]) {
	case 1:
		if (reply) {
			if (le16(b + 2) != 0 || !model_zero(b + 24, 40))
				return SKULD_ERR_RESERVED;
			return le16(b) == 1 ? SKULD_OK : SKULD_ERR_VERSION;
		}
		if (!model_zero(b + 4, 12) || !model_zero(b + 112, 16))
			return SKULD_ERR_RESERVED;
		if (le16(b) == 0 || le16(b) > le16(b + 2))
			return SKULD_ERR_VERSION;
		if (!model_text_valid(b + 16, 64, 1) || !model_text_valid(b + 80, 32, 1))
			return SKULD_ERR_EVENT_VALUE;
		return SKULD_OK;
	case 4:
		return model_text_valid(b + 8, 56, 1) ? SKULD_OK : SKULD_ERR_EVENT_VALUE;
	case 5:
		return reply ? model_query_records_check(b, body_size / 64, index)
		             : model_query_check(b);
	case 6:
		return reply ? model_lookup_matches_check(b, body_size / 32, index)
		             : model_lookup_check(b);
	case 7: /* record 1's word at 248..255 is reserved; the rest are figures */
		if (reply && body_size >= 512 && !model_zero(b + 256 + 248, 8)) {
			*index = 1;
			return SKULD_ERR_RESERVED;
		}
		return SKULD_OK;
	case 2: {
		uint32_t record = reply ? 32 : 128;
		for (uint32_t i = 0; i < body_size / record; i++) {
			const unsigned char *r = b + (size_t)i * record;
			uint32_t status =
			        reply ? (le32(r + 12) == 0 ? SKULD_OK : SKULD_ERR_RESERVED)
			              : model_event_check(r);
			if (status != SKULD_OK) {
				*index = i;
				return status;
			}
		}
		return SKULD_OK;
	}
	default:
		return SKULD_OK;
	}
}

/* ---- Pinned wire values --------------------------------------------------- */

Test(protocol, wire_values_are_pinned)
{
	cr_assert_eq(SKULD_MAGIC, 0x444c4b53u);
	cr_assert_eq(SKULD_HEADER_SIZE, 64);
	cr_assert_eq(SKULD_EVENT_SIZE, 128);
	cr_assert_eq(SKULD_RESULT_SIZE, 32);
	cr_assert_eq(SKULD_BODY_SIZE_MAX, 1048576);
	cr_assert_eq(SKULD_EVENTS_PER_FRAME_MAX, 8192);
	cr_assert_eq(SKULD_PROTOCOL_VERSION_MIN, 1);
	cr_assert_eq(SKULD_PROTOCOL_VERSION_MAX, 1);
	cr_assert_eq(SKULD_OP_REGISTER, 1);
	cr_assert_eq(SKULD_OP_SUBMIT, 2);
	cr_assert_eq(SKULD_OP_PING, 3);
	cr_assert_eq(SKULD_OP_ERROR, 4);
	cr_assert_eq(SKULD_FRAME_REPLY, 1);
	cr_assert_eq(SKULD_EVENT_LINKED, WF_LINKED);
	cr_assert_eq(SKULD_EVENT_BUNDLE, WF_BUNDLE);
	cr_assert_eq(SKULD_EVENT_RETIRE, WF_RETIRE);
	cr_assert_eq(SKULD_EVENT_AFTER_EXPIRY, WF_AFTER_EXPIRY);
	cr_assert_eq(SKULD_EVENT_FROM_INCOMING, WF_FROM_INCOMING);
	cr_assert_eq(SKULD_EVENT_EXPECTED, WF_EXPECTED);
	cr_assert_eq(SKULD_REASON_LAST, WR_ADJUST);
	cr_assert_eq(SKULD_DISPOSITION_QUARANTINE, WR_DISPOSITION);
	cr_assert_eq(SKULD_LIFECYCLE_CLOSED, WR_LIFECYCLE);
	cr_assert_eq(SKULD_BUCKET_LAST, 2);
	cr_assert_eq(SKULD_SCALE_MAX, 9);
	cr_assert_eq(SKULD_SALE, 36);
	cr_assert_eq(SKULD_ITEM_DEFINE, 1);
	cr_assert_eq(SKULD_INCOMING, 48);
	cr_assert_eq(SKULD_CHANNEL_MIN, 12);
}

struct want_status {
	uint32_t value;
	const char *name;
};

static const struct want_status want_statuses[] = {
        {0, "OK"},
        {1, "LINKED_FAILED"},
        {2, "LINKED_OPEN"},
        {3, "INSUFFICIENT"},
        {4, "HOLDS_FULL"},
        {5, "HOLD_EXISTS"},
        {6, "HOLD_UNKNOWN"},
        {7, "HOLD_EXPIRED"},
        {8, "HOLD_CLOSED"},
        {9, "QUANTITY_INVALID"},
        {10, "QUANTITY_EXCEEDS"},
        {11, "TTL_INVALID"},
        {12, "ITEM_UNKNOWN"},
        {13, "LOCATION_UNKNOWN"},
        {14, "CHANNEL_UNKNOWN"},
        {15, "ITEM_EXISTS"},
        {16, "LOCATION_EXISTS"},
        {17, "CHANNEL_EXISTS"},
        {18, "CODE_EXISTS"},
        {19, "CODE_INVALID"},
        {20, "LOCATION_NOT_SELLING"},
        {21, "LOCATION_CLOSED"},
        {22, "COUNT_EXISTS"},
        {23, "COUNT_UNKNOWN"},
        {24, "TRANSFER_EXISTS"},
        {25, "TRANSFER_UNKNOWN"},
        {26, "BUNDLE_INVALID"},
        {27, "NOT_A_BUNDLE"},
        {28, "BUNDLE_NOT_STOCKED"},
        {29, "SERVER_ONLY"},
        {30, "KEY_REUSED"},
        {31, "KEYS_FULL"},
        {32, "LOCATION_MISMATCH"},
        {33, "INVALID_STATE"},
        {34, "SAME_LOCATION"},
        {35, "CATALOG_FULL"},
        {36, "HOLD_NOT_DUE"},
        {37, "CHAIN_TOO_LONG"},
        {38, "LISTING_UNKNOWN"},
        {39, "VERSION_INVALID"},
        {40, "LISTINGS_FULL"},
        {41, "DENIED"},
        {42, "DISCREPANCY_UNKNOWN"},
        {100, "ERR_MAGIC"},
        {101, "ERR_VERSION"},
        {102, "ERR_OPERATION"},
        {103, "ERR_FLAGS"},
        {104, "ERR_SIZE"},
        {105, "ERR_COUNT"},
        {106, "ERR_HEADER_CHECKSUM"},
        {107, "ERR_BODY_CHECKSUM"},
        {108, "ERR_RESERVED"},
        {109, "ERR_EVENT_KIND"},
        {110, "ERR_EVENT_FIELD"},
        {111, "ERR_EVENT_VALUE"},
        {112, "ERR_CLIENT"},
        {113, "ERR_REQUEST"},
        {114, "ERR_NOT_REGISTERED"},
        {115, "ERR_TOKEN"},
        {116, "ERR_BUSY"},
        {117, "ERR_QUERY"},
        {118, "ERR_DENIED"},
        {119, "ERR_TLS_REQUIRED"},
};

Test(protocol, status_names_match_the_documented_codes)
{
	size_t count = sizeof(want_statuses) / sizeof(want_statuses[0]);
	for (size_t i = 0; i < count; i++) {
		cr_assert_str_eq(skuld_status_name(want_statuses[i].value), want_statuses[i].name,
		                 "status %u", want_statuses[i].value);
	}
	/* Every other value in 0..1023 is unknown. */
	for (uint32_t value = 0; value < 1024; value++) {
		int known = 0;
		for (size_t i = 0; i < count; i++)
			known |= want_statuses[i].value == value;
		if (!known)
			cr_assert_str_eq(skuld_status_name(value), "UNKNOWN", "status %u", value);
	}
	cr_assert_str_eq(skuld_status_name(UINT32_MAX), "UNKNOWN");
	cr_assert_eq(SKULD_ERR_MAGIC, 100);
	cr_assert_eq(SKULD_ERR_BUSY, 116);
	cr_assert_eq(SKULD_CATALOG_FULL, 35);
}

Test(protocol, operation_and_kind_names)
{
	cr_assert_str_eq(skuld_operation_name(1), "register");
	cr_assert_str_eq(skuld_operation_name(2), "submit");
	cr_assert_str_eq(skuld_operation_name(3), "ping");
	cr_assert_str_eq(skuld_operation_name(4), "error");
	cr_assert_str_eq(skuld_operation_name(0), "unknown");
	cr_assert_str_eq(skuld_operation_name(5), "query");
	cr_assert_str_eq(skuld_operation_name(6), "lookup");
	cr_assert_str_eq(skuld_operation_name(7), "stats");
	cr_assert_str_eq(skuld_operation_name(8), "unknown");
	cr_assert_str_eq(skuld_operation_name(UINT32_MAX), "unknown");
	for (uint32_t kind = 0; kind < 70000; kind++) {
		const struct want_kind *want = want_kind_find(kind);
		cr_assert_str_eq(skuld_event_kind_name(kind), want ? want->name : "UNKNOWN",
		                 "kind %u", kind);
	}
}

Test(protocol, record_sizes_per_operation)
{
	cr_assert_eq(proto_record_size(SKULD_OP_SUBMIT, 0), 128);
	cr_assert_eq(proto_record_size(SKULD_OP_SUBMIT, 1), 32);
	cr_assert_eq(proto_record_size(SKULD_OP_REGISTER, 0), 0);
	cr_assert_eq(proto_record_size(SKULD_OP_REGISTER, 1), 0);
	cr_assert_eq(proto_record_size(SKULD_OP_PING, 0), 0);
	cr_assert_eq(proto_record_size(SKULD_OP_ERROR, 1), 0);
	cr_assert_eq(proto_record_size(SKULD_OP_ERROR, 0), 0);
	cr_assert_eq(proto_record_size(0, 0), 0);
	cr_assert_eq(proto_record_size(200, 1), 0);
}

Test(protocol, checksum_is_xxh3_64_seed_0)
{
	/* The published XXH3-64 value of the empty input (seed 0). */
	cr_assert_eq(skuld_checksum("", 0), 0x2d06800538d394c2ull);
	unsigned char bytes[300];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(i * 7 + 1);
	for (size_t size = 0; size <= sizeof(bytes); size += 13)
		cr_assert_eq(skuld_checksum(bytes, size), XXH3_64bits(bytes, size), "size %zu",
		             size);
}

/* ---- Byte layout as documented -------------------------------------------- */

Test(protocol, header_bytes_match_the_table)
{
	struct frame frame;
	struct skuld_event event = event_named("SALE");
	frame_make(&frame, SKULD_OP_SUBMIT, 0, &event, sizeof(event), 1);
	struct skuld_header *header = frame_header(&frame);
	header->request = 0x0807060504030201ull;
	proto_header_seal(header, frame_body(&frame));
	const unsigned char *b = frame.bytes;
	cr_assert_eq(memcmp(b, "SKLD", 4), 0);
	cr_assert_eq(b[4], 1);
	cr_assert_eq(b[5], 0);
	cr_assert_eq(b[6], 2);
	cr_assert_eq(b[7], 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(b[8 + i], i + 1);
	cr_assert_eq(le64(b + 16), test_client.lo);
	cr_assert_eq(le64(b + 24), test_client.hi);
	cr_assert_eq(le32(b + 32), 128);
	cr_assert_eq(le32(b + 36), 1);
	cr_assert_eq(le32(b + 40), 0);
	cr_assert_eq(le32(b + 44), 0);
	cr_assert_eq(le64(b + 48), XXH3_64bits(b + 64, 128));
	cr_assert_eq(le64(b + 56), XXH3_64bits(b, 56));
}

Test(protocol, event_bytes_match_the_table)
{
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.key.lo = 0x0101010101010101ull;
	event.key.hi = 0x0202020202020202ull;
	event.reference.lo = 3;
	event.reference.hi = 4;
	event.occurred_at = 5;
	event.quantity = -5;
	event.id = 6;
	event.item = 7;
	event.location = 8;
	event.target = 9;
	event.channel = 10;
	event.ttl_s = 11;
	event.kind = 0x1234;
	event.flags = 0x5678;
	event.reason = 12;
	event.bucket_from = 13;
	event.bucket_to = 14;
	event.scale = 15;
	event.reserved_0 = 16;
	memcpy(event.code, "AB", 2);
	event.reserved_1 = 17;
	const unsigned char *b = (const unsigned char *)&event;
	cr_assert_eq(b[0], 1);
	cr_assert_eq(b[8], 2);
	cr_assert_eq(le64(b + 16), 3);
	cr_assert_eq(le64(b + 24), 4);
	cr_assert_eq(le64(b + 32), 5);
	cr_assert_eq(le64(b + 40), 0xfffffffffffffffbull);
	cr_assert_eq(le64(b + 48), 6);
	cr_assert_eq(le32(b + 56), 7);
	cr_assert_eq(le32(b + 60), 8);
	cr_assert_eq(le32(b + 64), 9);
	cr_assert_eq(le32(b + 68), 10);
	cr_assert_eq(le32(b + 72), 11);
	cr_assert_eq(b[76], 0x34);
	cr_assert_eq(b[77], 0x12);
	cr_assert_eq(le16(b + 78), 0x5678);
	cr_assert_eq(b[80], 12);
	cr_assert_eq(b[81], 13);
	cr_assert_eq(b[82], 14);
	cr_assert_eq(b[83], 15);
	cr_assert_eq(le32(b + 84), 16);
	cr_assert_eq(b[88], 'A');
	cr_assert_eq(b[89], 'B');
	cr_assert_eq(b[90], 0);
	cr_assert_eq(le64(b + 120), 17);
}

Test(protocol, result_register_and_error_bytes_match_the_tables)
{
	struct skuld_result result = {.index = 1,
	                              .status = 2,
	                              .flags = 3,
	                              .location = 4,
	                              .reserved = 5,
	                              .quantity = -6,
	                              .available = 7};
	const unsigned char *r = (const unsigned char *)&result;
	cr_assert_eq(le32(r), 1);
	cr_assert_eq(le16(r + 4), 2);
	cr_assert_eq(le16(r + 6), 3);
	cr_assert_eq(le32(r + 8), 4);
	cr_assert_eq(le32(r + 12), 5);
	cr_assert_eq(le64(r + 16), (uint64_t)-6);
	cr_assert_eq(le64(r + 24), 7);

	struct skuld_register_request request = register_request_valid();
	const unsigned char *q = (const unsigned char *)&request;
	cr_assert_eq(le16(q), 1);
	cr_assert_eq(le16(q + 2), 3);
	cr_assert_eq(memcmp(q + 16, "till-token-0001", 16), 0);
	cr_assert_eq(memcmp(q + 80, "store 12 till 3", 16), 0);

	struct skuld_register_reply reply = register_reply_valid();
	const unsigned char *p = (const unsigned char *)&reply;
	cr_assert_eq(le16(p), 1);
	cr_assert_eq(le32(p + 4), 8192);
	cr_assert_eq(le64(p + 8), 1);
	cr_assert_eq(le64(p + 16), 0x77);

	struct skuld_error_body error = error_body_valid(SKULD_ERR_EVENT_FIELD);
	const unsigned char *e = (const unsigned char *)&error;
	cr_assert_eq(le32(e), 110);
	cr_assert_eq(le32(e + 4), 3);
	cr_assert_eq(memcmp(e + 8, "event 3:", 8), 0);
}

/* The example frame printed in docs/PROTOCOL.md, byte for byte: a client can
 * test its own encoder and XXH3 against it. */
Test(protocol, golden_ping_frame_from_the_document)
{
	static const unsigned char golden[64] = {
	        0x53, 0x4b, 0x4c, 0x44, 0x01, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	        0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
	        0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc2, 0x94, 0xd3, 0x38,
	        0x05, 0x80, 0x06, 0x2d, 0xb7, 0x44, 0xc0, 0xa5, 0xd2, 0x70, 0xcc, 0x1a,
	};
	struct skuld_header header;
	memset(&header, 0, sizeof(header));
	header.version = 1;
	header.operation = SKULD_OP_PING;
	header.request = 1;
	header.client.lo = 0x0706050403020100ull;
	header.client.hi = 0x0f0e0d0c0b0a0908ull;
	proto_header_seal(&header, NULL);
	cr_assert_eq(memcmp(&header, golden, sizeof(golden)), 0);
	struct skuld_header copy;
	memcpy(&copy, golden, sizeof(copy));
	cr_assert_eq(proto_header_check(&copy), SKULD_OK);
	cr_assert_eq(proto_body_check(&copy, NULL, NULL), SKULD_OK);
}

/* ---- Round trips ---------------------------------------------------------- */

/* Copies a frame as a receiver would get it off the socket, checks it, and
 * returns the copy's header for field comparisons. */
static const struct skuld_header *frame_receive(struct frame *sent, struct frame *received)
{
	memcpy(received, sent, sizeof(*received));
	uint32_t index = 99;
	cr_assert_eq(proto_header_check(frame_header(received)), SKULD_OK);
	cr_assert_eq(proto_body_check(frame_header(received), frame_body(received), &index),
	             SKULD_OK);
	cr_assert_eq(index, 0);
	return frame_header(received);
}

static void header_assert_fields(const struct skuld_header *header, uint8_t operation,
                                 uint8_t flags, uint32_t body_size, uint32_t count)
{
	cr_assert_eq(header->magic, SKULD_MAGIC);
	cr_assert_eq(header->version, 1);
	cr_assert_eq(header->operation, operation);
	cr_assert_eq(header->flags, flags);
	cr_assert_eq(header->request, 41);
	cr_assert(skuld_u128_equal(header->client, test_client));
	cr_assert_eq(header->body_size, body_size);
	cr_assert_eq(header->count, count);
	cr_assert_eq(header->reserved, 0);
}

Test(protocol, round_trip_register_request)
{
	struct skuld_register_request request = register_request_valid();
	struct frame sent, received;
	frame_make(&sent, SKULD_OP_REGISTER, 0, &request, sizeof(request), 1);
	const struct skuld_header *header = frame_receive(&sent, &received);
	header_assert_fields(header, SKULD_OP_REGISTER, 0, 128, 1);
	cr_assert_eq(header->result, 0);
	const struct skuld_register_request *got = (const void *)frame_body(&received);
	cr_assert_eq(got->version_min, 1);
	cr_assert_eq(got->version_max, 3);
	cr_assert_str_eq(got->token, "till-token-0001");
	cr_assert_str_eq(got->client_name, "store 12 till 3");
	cr_assert_eq(memcmp(got, &request, sizeof(request)), 0);
}

Test(protocol, round_trip_register_reply)
{
	struct skuld_register_reply reply = register_reply_valid();
	reply.request_next = 0x1000000000ull;
	struct frame sent, received;
	frame_make(&sent, SKULD_OP_REGISTER, SKULD_FRAME_REPLY, &reply, sizeof(reply), 1);
	const struct skuld_header *header = frame_receive(&sent, &received);
	header_assert_fields(header, SKULD_OP_REGISTER, SKULD_FRAME_REPLY, 64, 1);
	const struct skuld_register_reply *got = (const void *)frame_body(&received);
	cr_assert_eq(got->version, 1);
	cr_assert_eq(got->events_max, 8192);
	cr_assert_eq(got->request_next, 0x1000000000ull);
	cr_assert_eq(got->session, 0x77);
	cr_assert_eq(memcmp(got, &reply, sizeof(reply)), 0);
}

static void event_assert_equal(const struct skuld_event *got, const struct skuld_event *want)
{
	cr_assert(skuld_u128_equal(got->key, want->key));
	cr_assert(skuld_u128_equal(got->reference, want->reference));
	cr_assert_eq(got->occurred_at, want->occurred_at);
	cr_assert_eq(got->quantity, want->quantity);
	cr_assert_eq(got->id, want->id);
	cr_assert_eq(got->item, want->item);
	cr_assert_eq(got->location, want->location);
	cr_assert_eq(got->target, want->target);
	cr_assert_eq(got->channel, want->channel);
	cr_assert_eq(got->ttl_s, want->ttl_s);
	cr_assert_eq(got->kind, want->kind);
	cr_assert_eq(got->flags, want->flags);
	cr_assert_eq(got->reason, want->reason);
	cr_assert_eq(got->bucket_from, want->bucket_from);
	cr_assert_eq(got->bucket_to, want->bucket_to);
	cr_assert_eq(got->scale, want->scale);
	cr_assert_eq(got->reserved_0, 0);
	cr_assert_eq(memcmp(got->code, want->code, sizeof(got->code)), 0);
	cr_assert_eq(got->reserved_1, 0);
}

/* One event of every kind, every field it uses set, every flag it may carry. */
static void events_every_kind(struct skuld_event *events)
{
	for (size_t i = 0; i < WANT_KIND_COUNT; i++) {
		events[i] = event_full(&want_kinds[i]);
		events[i].flags = want_kinds[i].flags;
		events[i].reason = want_kinds[i].reason_max;
		if (i % 3 == 0)
			events[i].flags |= WF_LINKED;
	}
}

Test(protocol, round_trip_submit_events)
{
	struct skuld_event events[WANT_KIND_COUNT];
	events_every_kind(events);
	events[16].quantity = INT64_MIN; /* the codec does not judge quantities */
	events[17].quantity = INT64_MAX;
	struct frame sent, received;
	uint32_t size = (uint32_t)sizeof(events);
	frame_make(&sent, SKULD_OP_SUBMIT, 0, events, size, WANT_KIND_COUNT);
	const struct skuld_header *header = frame_receive(&sent, &received);
	header_assert_fields(header, SKULD_OP_SUBMIT, 0, size, WANT_KIND_COUNT);
	const struct skuld_event *got = (const void *)frame_body(&received);
	for (size_t i = 0; i < WANT_KIND_COUNT; i++)
		event_assert_equal(&got[i], &events[i]);
	cr_assert_eq(got[16].quantity, INT64_MIN);
	cr_assert_str_eq(got[0].code, "SKU-0042");
}

Test(protocol, round_trip_submit_results)
{
	struct skuld_result results[5] = {
	        {0, SKULD_OK, 0, 17, 0, 3, 40},
	        {1, SKULD_INSUFFICIENT, 0, 17, 0, 0, 2},
	        {2, SKULD_OK, SKULD_RESULT_DISCREPANCY | SKULD_RESULT_LATE, 9, 0, -4, -1},
	        {3, SKULD_LINKED_FAILED, SKULD_RESULT_REPLAYED, 0, 0, 0, 0},
	        {4, SKULD_OK, 0xffff, UINT32_MAX, 0, INT64_MIN, INT64_MAX},
	};
	struct frame sent, received;
	frame_make(&sent, SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, results, sizeof(results), 5);
	const struct skuld_header *header = frame_receive(&sent, &received);
	header_assert_fields(header, SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, 160, 5);
	const struct skuld_result *got = (const void *)frame_body(&received);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(got[i].index, results[i].index);
		cr_assert_eq(got[i].status, results[i].status);
		cr_assert_eq(got[i].flags, results[i].flags);
		cr_assert_eq(got[i].location, results[i].location);
		cr_assert_eq(got[i].reserved, 0);
		cr_assert_eq(got[i].quantity, results[i].quantity);
		cr_assert_eq(got[i].available, results[i].available);
	}
	cr_assert_eq(got[2].available, -1);
	cr_assert_eq(got[4].quantity, INT64_MIN);
}

Test(protocol, round_trip_ping_both_ways)
{
	struct frame sent, received;
	frame_make(&sent, SKULD_OP_PING, 0, NULL, 0, 0);
	header_assert_fields(frame_receive(&sent, &received), SKULD_OP_PING, 0, 0, 0);
	cr_assert_eq(frame_header(&received)->checksum_body, 0x2d06800538d394c2ull);
	/* A NULL body is fine when body_size is 0. */
	cr_assert_eq(proto_body_check(frame_header(&received), NULL, NULL), SKULD_OK);
	frame_make(&sent, SKULD_OP_PING, SKULD_FRAME_REPLY, NULL, 0, 0);
	header_assert_fields(frame_receive(&sent, &received), SKULD_OP_PING, SKULD_FRAME_REPLY, 0,
	                     0);
}

Test(protocol, round_trip_error)
{
	struct skuld_error_body error = error_body_valid(SKULD_ERR_EVENT_FIELD);
	struct frame sent, received;
	frame_make(&sent, SKULD_OP_ERROR, SKULD_FRAME_REPLY, &error, sizeof(error), 1);
	frame_header(&sent)->result = SKULD_ERR_EVENT_FIELD;
	proto_header_seal(frame_header(&sent), frame_body(&sent));
	const struct skuld_header *header = frame_receive(&sent, &received);
	header_assert_fields(header, SKULD_OP_ERROR, SKULD_FRAME_REPLY, 64, 1);
	cr_assert_eq(header->result, SKULD_ERR_EVENT_FIELD);
	const struct skuld_error_body *got = (const void *)frame_body(&received);
	cr_assert_eq(got->status, SKULD_ERR_EVENT_FIELD);
	cr_assert_eq(got->index, 3);
	cr_assert_str_eq(got->message, "event 3: field not used by kind");
}

Test(protocol, empty_submit_is_well_formed)
{
	struct frame frame;
	frame_make(&frame, SKULD_OP_SUBMIT, 0, NULL, 0, 0);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
	frame_make(&frame, SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, NULL, 0, 0);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
}

Test(protocol, largest_frame_is_accepted)
{
	size_t size = SKULD_BODY_SIZE_MAX;
	unsigned char *bytes = malloc(SKULD_HEADER_SIZE + size);
	cr_assert_not_null(bytes);
	struct skuld_event *events = (struct skuld_event *)(bytes + SKULD_HEADER_SIZE);
	for (uint32_t i = 0; i < SKULD_EVENTS_PER_FRAME_MAX; i++) {
		events[i] = event_full(&want_kinds[i % WANT_KIND_COUNT]);
		events[i].key.lo = i + 1;
	}
	struct skuld_header *header = (struct skuld_header *)bytes;
	memset(header, 0, sizeof(*header));
	header->version = 1;
	header->operation = SKULD_OP_SUBMIT;
	header->client = test_client;
	header->body_size = (uint32_t)size;
	header->count = SKULD_EVENTS_PER_FRAME_MAX;
	proto_header_seal(header, events);
	uint32_t index = 99;
	cr_assert_eq(frame_check_at(bytes, (const unsigned char *)events, &index), SKULD_OK);
	cr_assert_eq(index, 0);
	/* The last record is checked too. */
	events[SKULD_EVENTS_PER_FRAME_MAX - 1].ttl_s = 5;
	proto_header_seal(header, events);
	cr_assert_eq(frame_check_at(bytes, (const unsigned char *)events, &index),
	             want_kind_find(events[8191].kind)->fields & W_TTL ? SKULD_OK
	                                                               : SKULD_ERR_EVENT_FIELD);
	cr_assert_eq(index, 8191);
	free(bytes);
}

/* ---- Header rejections, one test each ------------------------------------ */

static void frame_sale(struct frame *frame)
{
	struct skuld_event event = event_named("SALE");
	frame_make(frame, SKULD_OP_SUBMIT, 0, &event, sizeof(event), 1);
}

Test(protocol, reject_bad_magic)
{
	static const uint32_t magics[] = {0, 0x534b4c44u, 0x444c4b54u, 0xffffffffu, 0x444c4b52u};
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		struct frame frame;
		frame_sale(&frame);
		frame_header(&frame)->magic = magics[i];
		header_checksum_fix(frame_header(&frame));
		cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_MAGIC, "magic %#x",
		             magics[i]);
	}
}

Test(protocol, reject_version_too_low)
{
	struct frame frame;
	frame_sale(&frame);
	frame_header(&frame)->version = 0;
	proto_header_seal(frame_header(&frame), frame_body(&frame));
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_VERSION);
}

Test(protocol, reject_version_too_high)
{
	static const uint16_t versions[] = {2, 3, 0x100, 0xffff};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct frame frame;
		frame_sale(&frame);
		frame_header(&frame)->version = versions[i];
		proto_header_seal(frame_header(&frame), frame_body(&frame));
		cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_VERSION,
		             "version %u", versions[i]);
	}
}

Test(protocol, reject_every_header_bit_flip)
{
	struct frame frame;
	frame_sale(&frame);
	for (int byte = 0; byte < 64; byte++) {
		uint32_t want = byte < 4   ? SKULD_ERR_MAGIC
		                : byte < 6 ? SKULD_ERR_VERSION
		                           : SKULD_ERR_HEADER_CHECKSUM;
		for (int bit = 0; bit < 8; bit++) {
			frame.bytes[byte] ^= (unsigned char)(1u << bit);
			cr_assert_eq(proto_header_check(frame_header(&frame)), want,
			             "byte %d bit %d", byte, bit);
			frame.bytes[byte] ^= (unsigned char)(1u << bit);
		}
		frame.bytes[byte] ^= 0xff;
		cr_assert_eq(proto_header_check(frame_header(&frame)), want, "byte %d ^ 0xff",
		             byte);
		frame.bytes[byte] ^= 0xff;
	}
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
}

Test(protocol, reject_unknown_operation)
{
	static const uint8_t operations[] = {0, 8, 9, 127, 255};
	for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
		for (uint8_t flags = 0; flags < 2; flags++) {
			struct frame frame;
			frame_make(&frame, operations[i], flags, NULL, 0, 0);
			cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_OPERATION,
			             "operation %u flags %u", operations[i], flags);
		}
	}
}

Test(protocol, reject_error_sent_as_request)
{
	struct skuld_error_body error = error_body_valid(SKULD_ERR_MAGIC);
	struct frame frame;
	frame_make(&frame, SKULD_OP_ERROR, 0, &error, sizeof(error), 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_OPERATION);
}

Test(protocol, reject_unknown_frame_flags)
{
	for (int bit = 1; bit < 8; bit++) {
		struct frame frame;
		frame_make(&frame, SKULD_OP_PING, (uint8_t)(1u << bit), NULL, 0, 0);
		cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_FLAGS, "bit %d",
		             bit);
		frame_make(&frame, SKULD_OP_PING, (uint8_t)(1u << bit | SKULD_FRAME_REPLY), NULL, 0,
		           0);
		cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_FLAGS,
		             "bit %d with REPLY", bit);
	}
}

/* The header check never reads the body, so a header can claim any size. */
static uint32_t header_claiming(uint8_t operation, uint8_t flags, uint32_t body_size,
                                uint32_t count)
{
	struct skuld_header header;
	memset(&header, 0, sizeof(header));
	header.version = 1;
	header.operation = operation;
	header.flags = flags;
	header.client = test_client;
	header.body_size = body_size;
	header.count = count;
	header.magic = SKULD_MAGIC;
	header.checksum_body = 1;
	header_checksum_fix(&header);
	return proto_header_check(&header);
}

Test(protocol, reject_body_over_one_mebibyte)
{
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 1u << 20, 8192), SKULD_OK);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, (1u << 20) + 128, 8193), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, (1u << 20) + 32, 32769),
	             SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 0xffffff80u, 0x1ffffff), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, UINT32_MAX, 0), SKULD_ERR_SIZE);
}

Test(protocol, reject_body_size_not_a_record_multiple)
{
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 129, 1), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 127, 0), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 64, 0), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, 48, 1), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, 128, 4), SKULD_OK);
	/* Fixed bodies must have their exact size. */
	cr_assert_eq(header_claiming(SKULD_OP_REGISTER, 0, 127, 1), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_REGISTER, 0, 256, 1), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_REGISTER, 0, 64, 1), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_REGISTER, SKULD_FRAME_REPLY, 128, 1), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_PING, 0, 8, 0), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_ERROR, SKULD_FRAME_REPLY, 0, 1), SKULD_ERR_SIZE);
	cr_assert_eq(header_claiming(SKULD_OP_ERROR, SKULD_FRAME_REPLY, 65, 1), SKULD_ERR_SIZE);
}

Test(protocol, reject_count_not_matching_size)
{
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 256, 3), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 256, 1), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 0, 1), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, 256, 2), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_SUBMIT, 0, 1u << 20, UINT32_MAX), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_REGISTER, 0, 128, 0), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_REGISTER, SKULD_FRAME_REPLY, 64, 2), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_PING, 0, 0, 1), SKULD_ERR_COUNT);
	cr_assert_eq(header_claiming(SKULD_OP_ERROR, SKULD_FRAME_REPLY, 64, 0), SKULD_ERR_COUNT);
}

Test(protocol, reject_bad_body_checksum)
{
	struct frame frame;
	frame_sale(&frame);
	uint32_t index = 99;
	for (uint32_t i = 0; i < 128; i++) {
		frame_body(&frame)[i] ^= 0x20;
		cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_OK);
		cr_assert_eq(proto_body_check(frame_header(&frame), frame_body(&frame), &index),
		             SKULD_ERR_BODY_CHECKSUM, "body byte %u", i);
		cr_assert_eq(index, 0);
		frame_body(&frame)[i] ^= 0x20;
	}
	/* A wrong checksum_body with a consistent header checksum. */
	frame_header(&frame)->checksum_body ^= 1;
	header_checksum_fix(frame_header(&frame));
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_OK);
	cr_assert_eq(proto_body_check(frame_header(&frame), frame_body(&frame), NULL),
	             SKULD_ERR_BODY_CHECKSUM);
	/* An empty body must carry the checksum of the empty input. */
	frame_make(&frame, SKULD_OP_PING, 0, NULL, 0, 0);
	frame_header(&frame)->checksum_body = 0;
	header_checksum_fix(frame_header(&frame));
	cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_BODY_CHECKSUM);
}

Test(protocol, reject_zero_client_id)
{
	struct frame frame;
	frame_sale(&frame);
	memset(&frame_header(&frame)->client, 0, sizeof(skuld_u128));
	proto_header_seal(frame_header(&frame), frame_body(&frame));
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_CLIENT);
	/* Either half alone is enough to be non-zero. */
	frame_header(&frame)->client.lo = 1;
	proto_header_seal(frame_header(&frame), frame_body(&frame));
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_OK);
	frame_header(&frame)->client.lo = 0;
	frame_header(&frame)->client.hi = 1ull << 63;
	proto_header_seal(frame_header(&frame), frame_body(&frame));
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_OK);
	/* Replies other than ERROR need it as well. */
	frame_make(&frame, SKULD_OP_PING, SKULD_FRAME_REPLY, NULL, 0, 0);
	memset(&frame_header(&frame)->client, 0, sizeof(skuld_u128));
	proto_header_seal(frame_header(&frame), NULL);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_CLIENT);
}

Test(protocol, error_reply_may_carry_zero_client_id)
{
	struct skuld_error_body error = error_body_valid(SKULD_ERR_MAGIC);
	struct frame frame;
	frame_make(&frame, SKULD_OP_ERROR, SKULD_FRAME_REPLY, &error, sizeof(error), 1);
	memset(&frame_header(&frame)->client, 0, sizeof(skuld_u128));
	frame_header(&frame)->result = SKULD_ERR_MAGIC;
	proto_header_seal(frame_header(&frame), frame_body(&frame));
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
}

Test(protocol, reject_nonzero_header_reserved)
{
	for (int byte = 0; byte < 4; byte++) {
		struct frame frame;
		frame_sale(&frame);
		frame.bytes[44 + byte] = 0x01;
		header_checksum_fix(frame_header(&frame));
		cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_RESERVED,
		             "byte %d", 44 + byte);
	}
}

Test(protocol, reject_nonzero_result_in_request)
{
	struct frame frame;
	frame_sale(&frame);
	frame_header(&frame)->result = SKULD_ERR_MAGIC;
	proto_header_seal(frame_header(&frame), frame_body(&frame));
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_RESERVED);
	/* In a reply it is the frame's status. */
	struct skuld_result result = {0, SKULD_INSUFFICIENT, 0, 17, 0, 0, 2};
	frame_make(&frame, SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, &result, sizeof(result), 1);
	frame_header(&frame)->result = 7;
	proto_header_seal(frame_header(&frame), frame_body(&frame));
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
}

/* The first failing rule is the one reported: each row breaks two rules and
 * expects the earlier one. */
Test(protocol, header_rules_apply_in_documented_order)
{
	struct frame frame;
	struct skuld_header *header = frame_header(&frame);

	frame_sale(&frame);
	header->magic = 1;
	header->version = 9;
	cr_assert_eq(proto_header_check(header), SKULD_ERR_MAGIC);

	frame_sale(&frame);
	header->version = 9;
	header->checksum_header ^= 1;
	cr_assert_eq(proto_header_check(header), SKULD_ERR_VERSION);

	frame_sale(&frame);
	header->reserved = 1;
	cr_assert_eq(proto_header_check(header), SKULD_ERR_HEADER_CHECKSUM);

	frame_sale(&frame);
	header->reserved = 1;
	header->flags = 0x80;
	header_checksum_fix(header);
	cr_assert_eq(proto_header_check(header), SKULD_ERR_RESERVED);

	frame_sale(&frame);
	header->flags = 0x80;
	header->result = 5;
	header_checksum_fix(header);
	cr_assert_eq(proto_header_check(header), SKULD_ERR_FLAGS);

	frame_sale(&frame);
	header->result = 5;
	header->operation = 9;
	header_checksum_fix(header);
	cr_assert_eq(proto_header_check(header), SKULD_ERR_RESERVED);

	frame_sale(&frame);
	header->operation = 9;
	header->body_size = 3u << 20;
	header_checksum_fix(header);
	cr_assert_eq(proto_header_check(header), SKULD_ERR_OPERATION);

	frame_sale(&frame);
	header->body_size = 100;
	header->count = 7;
	header_checksum_fix(header);
	cr_assert_eq(proto_header_check(header), SKULD_ERR_SIZE);

	frame_sale(&frame);
	header->count = 7;
	memset(&header->client, 0, sizeof(header->client));
	header_checksum_fix(header);
	cr_assert_eq(proto_header_check(header), SKULD_ERR_COUNT);

	/* The header check does not look at the body checksum. */
	frame_sale(&frame);
	memset(&header->client, 0, sizeof(header->client));
	header->checksum_body ^= 1;
	header_checksum_fix(header);
	cr_assert_eq(proto_header_check(header), SKULD_ERR_CLIENT);
}

/* ---- Event rejections, one test each ------------------------------------- */

Test(protocol, every_kind_accepts_its_full_event)
{
	for (size_t i = 0; i < WANT_KIND_COUNT; i++) {
		struct skuld_event event = event_full(&want_kinds[i]);
		cr_assert_eq(proto_event_check(&event), SKULD_OK, "%s", want_kinds[i].name);
		/* Key, reference and occurred_at are all a kind needs besides its code. */
		if (!(want_kinds[i].fields & W_CODE)) {
			struct skuld_event bare;
			memset(&bare, 0, sizeof(bare));
			bare.kind = want_kinds[i].kind;
			bare.key.hi = 1;
			cr_assert_eq(proto_event_check(&bare), SKULD_OK, "%s bare",
			             want_kinds[i].name);
		}
	}
}

Test(protocol, reject_nonzero_event_reserved_0)
{
	for (int byte = 0; byte < 4; byte++) {
		struct skuld_event event = event_named("RECEIVE");
		((unsigned char *)&event)[84 + byte] = 0x80;
		cr_assert_eq(proto_event_check(&event), SKULD_ERR_RESERVED, "byte %d", 84 + byte);
	}
}

Test(protocol, reject_nonzero_event_reserved_1)
{
	for (int byte = 0; byte < 8; byte++) {
		struct skuld_event event = event_named("ITEM_DEFINE");
		((unsigned char *)&event)[120 + byte] = 0x01;
		cr_assert_eq(proto_event_check(&event), SKULD_ERR_RESERVED, "byte %d", 120 + byte);
	}
}

Test(protocol, reject_unknown_event_kind)
{
	static const uint16_t kinds[] = {0, 14, 31, 52, 63, 64, 65535};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct skuld_event event = event_named("SALE");
		event.kind = kinds[i];
		cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_KIND, "kind %u", kinds[i]);
	}
	/* And exactly the documented kinds are known. */
	for (uint32_t kind = 0; kind <= UINT16_MAX; kind++) {
		struct skuld_event event;
		memset(&event, 0, sizeof(event));
		event.key.lo = 1;
		event.kind = (uint16_t)kind;
		uint32_t status = proto_event_check(&event);
		if (want_kind_find(kind) == NULL && status != SKULD_ERR_EVENT_KIND)
			cr_assert_fail("kind %u: status %u, want ERR_EVENT_KIND", kind, status);
		if (want_kind_find(kind) != NULL && status == SKULD_ERR_EVENT_KIND)
			cr_assert_fail("documented kind %u rejected as unknown", kind);
	}
}

Test(protocol, reject_field_the_kind_does_not_use)
{
	int rejected = 0;
	for (size_t k = 0; k < WANT_KIND_COUNT; k++) {
		const struct want_kind *kind = &want_kinds[k];
		for (int f = 0; f < WANT_FIELD_COUNT; f++) {
			uint32_t field = 1u << f;
			struct skuld_event event = event_full(kind);
			field_set(&event, field);
			uint32_t want = (kind->fields & field) ? SKULD_OK : SKULD_ERR_EVENT_FIELD;
			cr_assert_eq(proto_event_check(&event), want, "%s with %s", kind->name,
			             want_field_name(field));
			rejected += want == SKULD_ERR_EVENT_FIELD;
		}
	}
	/* 33 kinds x 12 fields, minus the 100 uses in the table (MOVE counts both buckets). */
	cr_assert_eq(rejected, 33 * 12 - 100);
	/* The examples in the brief, spelled out. */
	struct skuld_event sale = event_named("SALE");
	sale.ttl_s = 60;
	cr_assert_eq(proto_event_check(&sale), SKULD_ERR_EVENT_FIELD);
	struct skuld_event commit = event_named("COMMIT");
	commit.item = 5;
	cr_assert_eq(proto_event_check(&commit), SKULD_ERR_EVENT_FIELD);
	/* Any non-zero byte of code counts as setting it, even after a NUL. */
	struct skuld_event release = event_named("RELEASE");
	release.code[31] = 'x';
	cr_assert_eq(proto_event_check(&release), SKULD_ERR_EVENT_FIELD);
	/* A negative quantity is set too (its sign is the state machine's). */
	struct skuld_event extend = event_named("EXTEND");
	extend.quantity = -1;
	cr_assert_eq(proto_event_check(&extend), SKULD_ERR_EVENT_FIELD);
}

Test(protocol, reject_flag_not_allowed_for_the_kind)
{
	for (size_t k = 0; k < WANT_KIND_COUNT; k++) {
		const struct want_kind *kind = &want_kinds[k];
		for (int bit = 0; bit < 16; bit++) {
			struct skuld_event event = event_full(kind);
			event.flags = (uint16_t)(1u << bit);
			uint32_t allowed = kind->flags | WF_LINKED;
			uint32_t want = (allowed & (1u << bit)) ? SKULD_OK : SKULD_ERR_EVENT_VALUE;
			cr_assert_eq(proto_event_check(&event), want, "%s flag bit %d", kind->name,
			             bit);
		}
		struct skuld_event all = event_full(kind);
		all.flags = (uint16_t)(kind->flags | WF_LINKED);
		cr_assert_eq(proto_event_check(&all), SKULD_OK, "%s all its flags", kind->name);
	}
}

Test(protocol, reject_zero_idempotency_key)
{
	for (size_t k = 0; k < WANT_KIND_COUNT; k++) {
		struct skuld_event event = event_full(&want_kinds[k]);
		memset(&event.key, 0, sizeof(event.key));
		cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_VALUE, "%s",
		             want_kinds[k].name);
		event.key.hi = 1;
		cr_assert_eq(proto_event_check(&event), SKULD_OK, "%s", want_kinds[k].name);
	}
}

static void reason_range_assert(const char *name, uint8_t reason_max)
{
	for (int reason = 0; reason < 256; reason++) {
		struct skuld_event event = event_named(name);
		event.reason = (uint8_t)reason;
		uint32_t want = reason <= reason_max ? SKULD_OK : SKULD_ERR_EVENT_VALUE;
		cr_assert_eq(proto_event_check(&event), want, "%s reason %d", name, reason);
	}
}

Test(protocol, reject_adjust_reason_out_of_range)
{
	reason_range_assert("ADJUST", 7);
}

Test(protocol, reject_return_disposition_out_of_range)
{
	reason_range_assert("RETURN", 2);
}

Test(protocol, reject_location_lifecycle_out_of_range)
{
	reason_range_assert("LOCATION_DEFINE", 2);
	reason_range_assert("LOCATION_STATE", 2);
}

Test(protocol, reject_bucket_out_of_range)
{
	for (int value = 0; value < 256; value++) {
		struct skuld_event event = event_named("MOVE");
		event.bucket_from = (uint8_t)value;
		uint32_t want = value <= 2 ? SKULD_OK : SKULD_ERR_EVENT_VALUE;
		cr_assert_eq(proto_event_check(&event), want, "bucket_from %d", value);
		event = event_named("MOVE");
		event.bucket_to = (uint8_t)value;
		cr_assert_eq(proto_event_check(&event), want, "bucket_to %d", value);
	}
}

Test(protocol, reject_scale_over_nine)
{
	for (int scale = 0; scale < 256; scale++) {
		struct skuld_event event = event_named("ITEM_DEFINE");
		event.scale = (uint8_t)scale;
		uint32_t want = scale <= 9 ? SKULD_OK : SKULD_ERR_EVENT_VALUE;
		cr_assert_eq(proto_event_check(&event), want, "scale %d", scale);
	}
}

static uint32_t code_check(const char *name, const char *code, size_t size)
{
	struct skuld_event event = event_named(name);
	memset(event.code, 0, sizeof(event.code));
	memcpy(event.code, code, size);
	return proto_event_check(&event);
}

Test(protocol, reject_code_with_non_printable_byte)
{
	static const char bad[] = {0x01, 0x09,       0x0a,       0x1f,
	                           0x7f, (char)0x80, (char)0xc3, (char)0xff};
	for (size_t i = 0; i < sizeof(bad); i++) {
		char code[8] = {'A', 'B', 'C', bad[i], 'D', 'E'};
		cr_assert_eq(code_check("SKU_ALIAS", code, 6), SKULD_ERR_EVENT_VALUE, "byte %#x",
		             (unsigned char)bad[i]);
	}
	/* Every printable byte, 0x20..0x7e, is allowed inside. */
	for (int c = 0x20; c <= 0x7e; c++) {
		char code[3] = {'A', (char)c, 'B'};
		cr_assert_eq(code_check("SKU_ALIAS", code, 3), SKULD_OK, "byte %#x", c);
	}
}

Test(protocol, reject_code_byte_after_nul)
{
	char code[32] = "ABC";
	code[4] = 'D';
	cr_assert_eq(code_check("ITEM_DEFINE", code, 32), SKULD_ERR_EVENT_VALUE);
	memset(code, 0, sizeof(code));
	code[0] = 'A';
	code[31] = 'Z';
	cr_assert_eq(code_check("BARCODE_DEFINE", code, 32), SKULD_ERR_EVENT_VALUE);
	/* The full 32 bytes with no NUL at all is a valid code. */
	memset(code, 'Q', sizeof(code));
	cr_assert_eq(code_check("BARCODE_DEFINE", code, 32), SKULD_OK);
}

Test(protocol, reject_code_with_leading_or_trailing_space)
{
	cr_assert_eq(code_check("CHANNEL_DEFINE", " shopify", 8), SKULD_ERR_EVENT_VALUE);
	cr_assert_eq(code_check("CHANNEL_DEFINE", "shopify ", 8), SKULD_ERR_EVENT_VALUE);
	cr_assert_eq(code_check("CHANNEL_DEFINE", " ", 1), SKULD_ERR_EVENT_VALUE);
	cr_assert_eq(code_check("ATTRIBUTE_SET", "colour=dark blue", 16), SKULD_OK);
}

Test(protocol, reject_empty_code_where_required)
{
	for (size_t k = 0; k < WANT_KIND_COUNT; k++) {
		if (!(want_kinds[k].fields & W_CODE) || want_kinds[k].text == WT_OPTIONAL)
			continue;
		struct skuld_event event = event_full(&want_kinds[k]);
		memset(event.code, 0, sizeof(event.code));
		cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_VALUE, "%s",
		             want_kinds[k].name);
	}
}

Test(protocol, event_rules_apply_in_documented_order)
{
	struct skuld_event event = event_named("SALE");
	event.reserved_0 = 1;
	event.kind = 14;
	cr_assert_eq(proto_event_check(&event), SKULD_ERR_RESERVED);

	event = event_named("SALE");
	event.kind = 14;
	event.ttl_s = 5;
	cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_KIND);

	event = event_named("SALE");
	event.ttl_s = 5;
	event.flags = 0x100;
	memset(&event.key, 0, sizeof(event.key));
	cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_FIELD);

	/* A reason on a kind without one is a field, not a value. */
	event = event_named("SALE");
	event.reason = 200;
	cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_FIELD);
	event = event_named("SALE");
	event.scale = 10;
	cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_FIELD);
	event = event_named("SALE");
	event.bucket_to = 9;
	cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_FIELD);
}

Test(protocol, submit_body_reports_the_failing_event_index)
{
	struct skuld_event events[WANT_KIND_COUNT];
	events_every_kind(events);
	events[5].reserved_1 = 1;
	events[9].kind = 0;
	struct frame frame;
	frame_make(&frame, SKULD_OP_SUBMIT, 0, events, sizeof(events), WANT_KIND_COUNT);
	uint32_t index = 99;
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_RESERVED);
	cr_assert_eq(index, 5);
	events[5].reserved_1 = 0;
	frame_make(&frame, SKULD_OP_SUBMIT, 0, events, sizeof(events), WANT_KIND_COUNT);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_EVENT_KIND);
	cr_assert_eq(index, 9);
	events[9] = events[8];
	events[28].channel = 1; /* INCOMING has no channel */
	frame_make(&frame, SKULD_OP_SUBMIT, 0, events, sizeof(events), WANT_KIND_COUNT);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_EVENT_FIELD);
	cr_assert_eq(index, 28);
	/* index is reset to 0 on success. */
	events[28].channel = 0;
	frame_make(&frame, SKULD_OP_SUBMIT, 0, events, sizeof(events), WANT_KIND_COUNT);
	cr_assert_eq(frame_check(&frame, &index), SKULD_OK);
	cr_assert_eq(index, 0);
}

Test(protocol, reject_nonzero_result_reserved)
{
	struct skuld_result results[3] = {
	        {0, SKULD_OK, 0, 1, 0, 1, 1},
	        {1, SKULD_OK, 0, 1, 0, 1, 1},
	        {2, SKULD_OK, 0, 1, 0x01000000, 1, 1},
	};
	struct frame frame;
	frame_make(&frame, SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, results, sizeof(results), 3);
	uint32_t index = 99;
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_RESERVED);
	cr_assert_eq(index, 2);
}

/* ---- REGISTER and ERROR body rejections ---------------------------------- */

static uint32_t register_check(const struct skuld_register_request *request)
{
	struct frame frame;
	frame_make(&frame, SKULD_OP_REGISTER, 0, request, sizeof(*request), 1);
	uint32_t index = 99;
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_OK);
	uint32_t status = proto_body_check(frame_header(&frame), frame_body(&frame), &index);
	cr_assert_eq(index, 0);
	return status;
}

Test(protocol, reject_register_version_min_above_max)
{
	struct skuld_register_request request = register_request_valid();
	request.version_min = 3;
	request.version_max = 2;
	cr_assert_eq(register_check(&request), SKULD_ERR_VERSION);
	request.version_min = 0xffff;
	request.version_max = 1;
	cr_assert_eq(register_check(&request), SKULD_ERR_VERSION);
	/* Equal is a range of one. */
	request.version_min = 7;
	request.version_max = 7;
	cr_assert_eq(register_check(&request), SKULD_OK);
}

Test(protocol, reject_register_version_min_zero)
{
	struct skuld_register_request request = register_request_valid();
	request.version_min = 0;
	cr_assert_eq(register_check(&request), SKULD_ERR_VERSION);
	request.version_max = 0;
	cr_assert_eq(register_check(&request), SKULD_ERR_VERSION);
}

Test(protocol, reject_register_reserved)
{
	static const int reserved[] = {4,   5,   6,   7,   8,   9,   10,  11,  12,  13,
	                               14,  15,  112, 113, 114, 115, 116, 117, 118, 119,
	                               120, 121, 122, 123, 124, 125, 126, 127};
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		struct skuld_register_request request = register_request_valid();
		((unsigned char *)&request)[reserved[i]] = 0x10;
		cr_assert_eq(register_check(&request), SKULD_ERR_RESERVED, "byte %d", reserved[i]);
	}
}

Test(protocol, reject_register_token_with_control_character)
{
	static const char controls[] = {0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x7f};
	for (size_t i = 0; i < sizeof(controls); i++) {
		struct skuld_register_request request = register_request_valid();
		request.token[4] = controls[i];
		cr_assert_eq(register_check(&request), SKULD_ERR_EVENT_VALUE, "byte %#x",
		             controls[i]);
		request = register_request_valid();
		request.client_name[0] = controls[i];
		cr_assert_eq(register_check(&request), SKULD_ERR_EVENT_VALUE, "name byte %#x",
		             controls[i]);
	}
	struct skuld_register_request request = register_request_valid();
	request.token[63] = 'x'; /* after the NUL padding began */
	cr_assert_eq(register_check(&request), SKULD_ERR_EVENT_VALUE);
	request = register_request_valid();
	memset(request.token, 'T', sizeof(request.token)); /* full width, no NUL */
	cr_assert_eq(register_check(&request), SKULD_OK);
	/* The codec accepts an empty token; the server refuses it (ERR_TOKEN). */
	request = register_request_valid();
	memset(request.token, 0, sizeof(request.token));
	memset(request.client_name, 0, sizeof(request.client_name));
	cr_assert_eq(register_check(&request), SKULD_OK);
}

Test(protocol, reject_register_reply_bad_fields)
{
	for (int byte = 2; byte < 64; byte++) {
		if (byte >= 4 && byte < 24)
			continue; /* events_max, request_next, session */
		struct skuld_register_reply reply = register_reply_valid();
		((unsigned char *)&reply)[byte] = 0x04;
		struct frame frame;
		frame_make(&frame, SKULD_OP_REGISTER, SKULD_FRAME_REPLY, &reply, sizeof(reply), 1);
		cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_RESERVED, "byte %d", byte);
	}
	static const uint16_t versions[] = {0, 2, 0xffff};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct skuld_register_reply reply = register_reply_valid();
		reply.version = versions[i];
		struct frame frame;
		frame_make(&frame, SKULD_OP_REGISTER, SKULD_FRAME_REPLY, &reply, sizeof(reply), 1);
		cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_VERSION, "version %u",
		             versions[i]);
	}
}

Test(protocol, reject_error_message_not_text)
{
	struct skuld_error_body error = error_body_valid(SKULD_ERR_SIZE);
	error.message[2] = '\n';
	struct frame frame;
	frame_make(&frame, SKULD_OP_ERROR, SKULD_FRAME_REPLY, &error, sizeof(error), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_EVENT_VALUE);
	error = error_body_valid(SKULD_ERR_SIZE);
	error.message[55] = 'x';
	frame_make(&frame, SKULD_OP_ERROR, SKULD_FRAME_REPLY, &error, sizeof(error), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_EVENT_VALUE);
	memset(error.message, 0, sizeof(error.message));
	frame_make(&frame, SKULD_OP_ERROR, SKULD_FRAME_REPLY, &error, sizeof(error), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
}

Test(protocol, text_rules)
{
	cr_assert_eq(proto_text_valid("abc\0\0", 5, 0), 1);
	cr_assert_eq(proto_text_valid("abcde", 5, 0), 1);
	cr_assert_eq(proto_text_valid("\0\0\0\0\0", 5, 0), 0);
	cr_assert_eq(proto_text_valid("\0\0\0\0\0", 5, 1), 1);
	cr_assert_eq(proto_text_valid("\0\0\0\0x", 5, 1), 0);
	cr_assert_eq(proto_text_valid(" abc\0", 5, 1), 0);
	cr_assert_eq(proto_text_valid("abc \0", 5, 1), 0);
	cr_assert_eq(proto_text_valid("a b c", 5, 1), 1);
	cr_assert_eq(proto_text_valid("a\tb\0\0", 5, 1), 0);
	cr_assert_eq(proto_text_valid("ab\0c\0", 5, 1), 0);
}

/* ---- Version negotiation -------------------------------------------------- */

Test(protocol, negotiate_overlap)
{
	cr_assert_eq(proto_version_negotiate(1, 1), 1);
	cr_assert_eq(proto_version_negotiate(1, 3), 1);
	cr_assert_eq(proto_version_negotiate(0, 1), 1);
}

Test(protocol, negotiate_client_newer_than_server)
{
	/* The client also speaks 1: the server picks 1. */
	cr_assert_eq(proto_version_negotiate(1, 9), 1);
	cr_assert_eq(proto_version_negotiate(1, 0xffff), 1);
	/* The client only speaks newer versions: no version. */
	cr_assert_eq(proto_version_negotiate(2, 9), 0);
	cr_assert_eq(proto_version_negotiate(0xffff, 0xffff), 0);
}

Test(protocol, negotiate_no_overlap)
{
	cr_assert_eq(proto_version_negotiate(0, 0), 0);
	cr_assert_eq(proto_version_negotiate(2, 2), 0);
	cr_assert_eq(proto_version_negotiate(3, 2), 0); /* an empty range */
	/* Against the model over a grid: the highest version both speak, or 0. */
	for (uint32_t low = 0; low < 12; low++) {
		for (uint32_t high = 0; high < 12; high++) {
			uint32_t want = 0;
			for (uint32_t v = SKULD_PROTOCOL_VERSION_MIN;
			     v <= SKULD_PROTOCOL_VERSION_MAX; v++) {
				if (v >= low && v <= high)
					want = v;
			}
			cr_assert_eq(proto_version_negotiate((uint16_t)low, (uint16_t)high), want,
			             "%u..%u", low, high);
		}
	}
}

/* The exchange a server runs on REGISTER, through the codec both ways. */
static uint32_t register_exchange(uint16_t version_min, uint16_t version_max, struct frame *answer)
{
	struct skuld_register_request request = register_request_valid();
	request.version_min = version_min;
	request.version_max = version_max;
	struct frame frame;
	frame_make(&frame, SKULD_OP_REGISTER, 0, &request, sizeof(request), 1);
	cr_assert_eq(frame_header(&frame)->version, 1); /* REGISTER always goes as version 1 */
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
	const struct skuld_register_request *got = (const void *)frame_body(&frame);
	uint16_t version = proto_version_negotiate(got->version_min, got->version_max);
	if (version == 0) {
		struct skuld_error_body error = error_body_valid(SKULD_ERR_VERSION);
		frame_make(answer, SKULD_OP_ERROR, SKULD_FRAME_REPLY, &error, sizeof(error), 1);
		frame_header(answer)->result = SKULD_ERR_VERSION;
	} else {
		struct skuld_register_reply reply = register_reply_valid();
		reply.version = version;
		frame_make(answer, SKULD_OP_REGISTER, SKULD_FRAME_REPLY, &reply, sizeof(reply), 1);
	}
	/* The answer to REGISTER goes as version 1 too; the body names the
	 * session's version, which every later frame carries. */
	cr_assert_eq(frame_header(answer)->version, 1);
	proto_header_seal(frame_header(answer), frame_body(answer));
	uint32_t status = frame_check(answer, NULL);
	cr_assert_eq(status, SKULD_OK);
	return frame_header(answer)->operation;
}

Test(protocol, register_exchange_picks_a_version_or_errors)
{
	struct frame answer;
	cr_assert_eq(register_exchange(1, 4, &answer), SKULD_OP_REGISTER);
	cr_assert_eq(((const struct skuld_register_reply *)frame_body(&answer))->version, 1);
	cr_assert_eq(frame_header(&answer)->version, 1);
	cr_assert_eq(register_exchange(2, 4, &answer), SKULD_OP_ERROR);
	cr_assert_eq(frame_header(&answer)->result, SKULD_ERR_VERSION);
	cr_assert_eq(((const struct skuld_error_body *)frame_body(&answer))->status,
	             SKULD_ERR_VERSION);
}

/* ---- Reads stay inside the buffer ---------------------------------------- */

/* A read-only copy of size bytes placed flush against an inaccessible page
 * (after it when at_end, before it otherwise). Any read outside faults. */
struct guarded {
	unsigned char *map;
	size_t map_size;
	unsigned char *data;
};

static void guarded_place(struct guarded *g, const void *source, size_t size, int at_end)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = size == 0 ? 1 : (size + page - 1) / page;
	g->map_size = (data_pages + 2) * page;
	void *map =
	        mmap(NULL, g->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(map, MAP_FAILED);
	g->map = map;
	unsigned char *first = g->map + page;
	unsigned char *after = first + data_pages * page;
	g->data = at_end ? after - size : first;
	if (size > 0)
		memcpy(g->data, source, size);
	cr_assert_eq(mprotect(g->map, page, PROT_NONE), 0);
	cr_assert_eq(mprotect(after, page, PROT_NONE), 0);
	cr_assert_eq(mprotect(first, data_pages * page, PROT_READ), 0);
}

static void guarded_free(struct guarded *g)
{
	cr_assert_eq(munmap(g->map, g->map_size), 0);
}

/* The test frames used by the bounds and mutation tests. */
/* ---- QUERY, LOOKUP and STATS test data ------------------------------------ */

/* A valid query of the kind with every field it uses set. */
static struct skuld_query query_valid(uint16_t kind)
{
	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = kind;
	switch (kind) {
	case SKULD_QUERY_LEVEL:
		query.item = 1001;
		query.location = 17;
		break;
	case SKULD_QUERY_ITEM_LEVELS:
		query.item = 1001;
		query.limit = 50;
		query.after_location = 3;
		break;
	case SKULD_QUERY_LOCATION_LEVELS:
		query.location = 17;
		query.limit = 1024;
		query.after_item = 999;
		break;
	case SKULD_QUERY_CHANNEL:
		query.channel = 3;
		query.item = 1001;
		query.limit = 10;
		query.after_item = 5;
		break;
	case SKULD_QUERY_HOLD:
		query.hold = 0x1122334455667788ull;
		break;
	case SKULD_QUERY_DISCREPANCIES:
		query.location = 17;
		query.limit = 100;
		query.after_location = 17;
		query.after_item = 1001;
		break;
	default:
		break;
	}
	return query;
}

/* Two level records and a hold record, as a QUERY reply carries them. */
static void query_records_valid(unsigned char *records)
{
	struct skuld_level_record level = {
	        .item = 1001,
	        .location = 17,
	        .on_hand = 10,
	        .reserved = 2,
	        .committed = 1,
	        .unsellable = 1,
	        .incoming = 4,
	        .available = 6,
	        .status = SKULD_OK,
	        .kind = SKULD_QUERY_LOCATION_LEVELS,
	};
	memcpy(records, &level, 64);
	level.item = 1002;
	level.flags = SKULD_QUERY_MORE;
	memcpy(records + 64, &level, 64);
	struct skuld_hold_record hold = {
	        .item = 1001,
	        .location = 17,
	        .hold = 77,
	        .expires_at_ns = 1000,
	        .remaining = 2,
	        .state = SKULD_HOLD_STATE_OPEN,
	        .status = SKULD_OK,
	        .kind = SKULD_QUERY_HOLD,
	};
	memcpy(records + 128, &hold, 64);
}

/* A valid lookup of the kind: a code, or for ITEM an id (one non-zero byte,
 * so that a byte sweep reaches id 0). */
static struct skuld_lookup lookup_valid(uint16_t kind)
{
	struct skuld_lookup lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = kind;
	if (kind == SKULD_LOOKUP_ITEM)
		lookup.id = 7;
	else
		memcpy(lookup.code, "4006381333931", 13);
	return lookup;
}

#define TEST_FRAMES 17

static void test_frames_build(struct frame *frames)
{
	struct skuld_register_request request = register_request_valid();
	frame_make(&frames[0], SKULD_OP_REGISTER, 0, &request, sizeof(request), 1);
	struct skuld_register_reply reply = register_reply_valid();
	frame_make(&frames[1], SKULD_OP_REGISTER, SKULD_FRAME_REPLY, &reply, sizeof(reply), 1);
	struct skuld_event events[WANT_KIND_COUNT];
	events_every_kind(events);
	frame_make(&frames[2], SKULD_OP_SUBMIT, 0, events, sizeof(events), WANT_KIND_COUNT);
	frame_make(&frames[3], SKULD_OP_SUBMIT, 0, &events[16], sizeof(events[0]), 1);
	struct skuld_result results[4] = {
	        {0, SKULD_OK, 0, 17, 0, 3, 40},
	        {1, SKULD_LINKED_FAILED, 0, 17, 0, 0, 40},
	        {2, SKULD_INSUFFICIENT, 0, 17, 0, 0, 2},
	        {3, SKULD_OK, SKULD_RESULT_REPLAYED, 9, 0, 1, 0},
	};
	frame_make(&frames[4], SKULD_OP_SUBMIT, SKULD_FRAME_REPLY, results, sizeof(results), 4);
	frame_make(&frames[5], SKULD_OP_PING, 0, NULL, 0, 0);
	frame_make(&frames[6], SKULD_OP_PING, SKULD_FRAME_REPLY, NULL, 0, 0);
	struct skuld_error_body error = error_body_valid(SKULD_ERR_EVENT_FIELD);
	frame_make(&frames[7], SKULD_OP_ERROR, SKULD_FRAME_REPLY, &error, sizeof(error), 1);
	frame_header(&frames[7])->result = SKULD_ERR_EVENT_FIELD;
	proto_header_seal(frame_header(&frames[7]), frame_body(&frames[7]));
	/* A SUBMIT whose last event is bad: the rejection path reads to the end. */
	events[WANT_KIND_COUNT - 1].ttl_s = 7;
	frame_make(&frames[8], SKULD_OP_SUBMIT, 0, events, sizeof(events), WANT_KIND_COUNT);
	/* QUERY, LOOKUP and STATS, both ways. */
	struct skuld_query query = query_valid(SKULD_QUERY_LOCATION_LEVELS);
	frame_make(&frames[9], SKULD_OP_QUERY, 0, &query, sizeof(query), 1);
	unsigned char records[3 * 64];
	query_records_valid(records);
	frame_make(&frames[10], SKULD_OP_QUERY, SKULD_FRAME_REPLY, records, sizeof(records), 3);
	struct skuld_lookup lookup = lookup_valid(SKULD_LOOKUP_BARCODE);
	frame_make(&frames[11], SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
	struct skuld_lookup_match matches[2] = {
	        {.id = 7, .status = SKULD_OK, .kind = SKULD_LOOKUP_BARCODE, .pack = 6},
	        {.id = 9,
	         .status = SKULD_OK,
	         .kind = SKULD_LOOKUP_BARCODE,
	         .pack = 1,
	         .flags = SKULD_LOOKUP_MORE},
	};
	frame_make(&frames[12], SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	frame_make(&frames[13], SKULD_OP_STATS, 0, NULL, 0, 0);
	struct {
		struct skuld_stats stats;
		struct skuld_stats_limits limits;
		struct skuld_stats_rejects rejects;
	} stats = {.stats = {.uptime_ns = 5, .requests = 3, .log_segment = 1},
	           .limits = {.closed_slow = 2, .latency_bucket = {[3] = 7}},
	           .rejects = {.rejected = {[4] = 1}}};
	frame_make(&frames[14], SKULD_OP_STATS, SKULD_FRAME_REPLY, &stats, sizeof(stats), 3);
	/* LOOKUP ITEM, both ways: a bundle with scale 3. */
	lookup = lookup_valid(SKULD_LOOKUP_ITEM);
	frame_make(&frames[15], SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
	struct skuld_lookup_match item = {.id = 7,
	                                  .status = SKULD_OK,
	                                  .kind = SKULD_LOOKUP_ITEM,
	                                  .flags = SKULD_LOOKUP_BUNDLE,
	                                  .scale = 3};
	frame_make(&frames[16], SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, &item, sizeof(item), 1);
}

static uint32_t test_frame_status(int i)
{
	return i == 8 ? SKULD_ERR_EVENT_FIELD : SKULD_OK;
}

Test(protocol, checks_stay_inside_guard_pages)
{
	static struct frame frames[TEST_FRAMES];
	test_frames_build(frames);
	for (int i = 0; i < TEST_FRAMES; i++) {
		uint32_t body_size = frame_header(&frames[i])->body_size;
		for (int at_end = 0; at_end < 2; at_end++) {
			struct guarded header, body, whole;
			guarded_place(&header, frames[i].bytes, SKULD_HEADER_SIZE, at_end);
			guarded_place(&body, frame_body(&frames[i]), body_size, at_end);
			guarded_place(&whole, frames[i].bytes, SKULD_HEADER_SIZE + body_size,
			              at_end);
			uint32_t index = 99;
			cr_assert_eq(frame_check_at(header.data, body.data, &index),
			             test_frame_status(i), "frame %d at_end %d", i, at_end);
			cr_assert_eq(index, i == 8 ? WANT_KIND_COUNT - 1 : 0);
			cr_assert_eq(
			        frame_check_at(whole.data, whole.data + SKULD_HEADER_SIZE, &index),
			        test_frame_status(i), "frame %d whole at_end %d", i, at_end);
			guarded_free(&header);
			guarded_free(&body);
			guarded_free(&whole);
		}
	}
}

Test(protocol, header_check_reads_only_its_64_bytes)
{
	/* A header claiming the largest body, with nothing readable after it. */
	struct skuld_header claim;
	memset(&claim, 0, sizeof(claim));
	claim.version = 1;
	claim.operation = SKULD_OP_SUBMIT;
	claim.client = test_client;
	claim.body_size = SKULD_BODY_SIZE_MAX;
	claim.count = SKULD_EVENTS_PER_FRAME_MAX;
	claim.magic = SKULD_MAGIC;
	header_checksum_fix(&claim);
	struct guarded g;
	guarded_place(&g, &claim, sizeof(claim), 1);
	cr_assert_eq(proto_header_check((const struct skuld_header *)g.data), SKULD_OK);
	guarded_free(&g);
}

Test(protocol, event_and_text_checks_stay_inside_guard_pages)
{
	for (size_t k = 0; k < WANT_KIND_COUNT; k++) {
		struct skuld_event event = event_full(&want_kinds[k]);
		if (want_kinds[k].fields & W_CODE)
			memset(event.code, 'C', sizeof(event.code)); /* no NUL to stop at */
		struct guarded g;
		guarded_place(&g, &event, sizeof(event), 1);
		cr_assert_eq(proto_event_check((const struct skuld_event *)g.data), SKULD_OK, "%s",
		             want_kinds[k].name);
		guarded_free(&g);
	}
	struct guarded text;
	guarded_place(&text, "ABCDEFGH", 8, 1);
	cr_assert_eq(proto_text_valid((const char *)text.data, 8, 0), 1);
	guarded_free(&text);
}

Test(protocol, checks_stay_inside_exact_heap_blocks)
{
	static struct frame frames[TEST_FRAMES];
	test_frames_build(frames);
	for (int i = 0; i < TEST_FRAMES; i++) {
		uint32_t body_size = frame_header(&frames[i])->body_size;
		unsigned char *header = malloc(SKULD_HEADER_SIZE);
		unsigned char *body = malloc(body_size > 0 ? body_size : 1);
		cr_assert(header != NULL && body != NULL);
		memcpy(header, frames[i].bytes, SKULD_HEADER_SIZE);
		memcpy(body, frame_body(&frames[i]), body_size);
		cr_assert_eq(frame_check_at(header, body, NULL), test_frame_status(i), "frame %d",
		             i);
		free(header);
		free(body);
	}
}

/* ---- Deterministic mutation test ----------------------------------------- */

static uint64_t random_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Runs the codec and the model on one frame; they must agree. */
static uint32_t mutation_check(const unsigned char *bytes, int frame, uint32_t position)
{
	uint32_t index = 0, model_index = 0;
	uint32_t status = frame_check_at(bytes, bytes + SKULD_HEADER_SIZE, &index);
	uint32_t model = model_header_check(bytes);
	if (model == SKULD_OK)
		model = model_body_check(bytes, bytes + SKULD_HEADER_SIZE, &model_index);
	if (status != model ||
	    (status != SKULD_OK && model >= SKULD_ERR_BODY_CHECKSUM && index != model_index))
		cr_assert_fail("frame %d byte %u: codec %s index %u, model %s index %u", frame,
		               position, skuld_status_name(status), index, skuld_status_name(model),
		               model_index);
	return status;
}

Test(protocol, random_single_byte_mutations)
{
	static struct frame frames[TEST_FRAMES];
	test_frames_build(frames);
	/* Room for any body size a mutated-then-resealed header can claim. */
	unsigned char *work = calloc(1, SKULD_HEADER_SIZE + SKULD_BODY_SIZE_MAX);
	cr_assert_not_null(work);
	uint64_t state = 0x736b756c64ull;
	uint32_t counts[4] = {0}; /* magic, version, header checksum, body checksum */
	uint32_t resealed = 0, resealed_accepted = 0;
	for (uint32_t round = 0; round < 200000; round++) {
		int f = (int)(random_next(&state) % TEST_FRAMES);
		uint32_t size = SKULD_HEADER_SIZE + frame_header(&frames[f])->body_size;
		memcpy(work, frames[f].bytes, size);
		uint32_t position = (uint32_t)(random_next(&state) % size);
		unsigned char mask = (unsigned char)(1 + random_next(&state) % 255);
		work[position] ^= mask;

		/* Every byte is covered by a checksum: every change is rejected,
		 * with the code of the first rule that sees it. */
		uint32_t want = position < 4                   ? SKULD_ERR_MAGIC
		                : position < 6                 ? SKULD_ERR_VERSION
		                : position < SKULD_HEADER_SIZE ? SKULD_ERR_HEADER_CHECKSUM
		                                               : SKULD_ERR_BODY_CHECKSUM;
		uint32_t status = mutation_check(work, f, position);
		if (status != want)
			cr_assert_fail("frame %d byte %u ^ %#x: %s, want %s", f, position, mask,
			               skuld_status_name(status), skuld_status_name(want));
		counts[want == SKULD_ERR_MAGIC           ? 0
		       : want == SKULD_ERR_VERSION       ? 1
		       : want == SKULD_ERR_BODY_CHECKSUM ? 3
		                                         : 2]++;

		/* The same change with fresh checksums reaches the structural
		 * rules: the codec must agree with the model on every one. */
		struct skuld_header *header = (struct skuld_header *)work;
		if (header->body_size <= SKULD_BODY_SIZE_MAX) {
			proto_header_seal(header, work + SKULD_HEADER_SIZE);
			resealed++;
			resealed_accepted += mutation_check(work, f, position) == SKULD_OK;
		}
		/* Leave the zero tail of the work buffer zero. */
		memset(work, 0, size);
	}
	free(work);
	cr_assert_eq(counts[0] + counts[1] + counts[2] + counts[3], 200000);
	for (int i = 0; i < 4; i++)
		cr_assert_gt(counts[i], 1000, "class %d reached only %u times", i, counts[i]);
	/* Some resealed mutations are harmless (a quantity, a reference), most
	 * are not; both paths must have been exercised. */
	cr_assert_gt(resealed, 190000);
	cr_assert_gt(resealed_accepted, 1000);
	cr_assert_lt(resealed_accepted, resealed - 1000);
}

/* ---- QUERY, LOOKUP and STATS (docs/PROTOCOL.md sections 12..14) ----------- */

Test(protocol, query_lookup_stats_values_are_pinned)
{
	cr_assert_eq(SKULD_OP_QUERY, 5);
	cr_assert_eq(SKULD_OP_LOOKUP, 6);
	cr_assert_eq(SKULD_OP_STATS, 7);
	cr_assert_eq(SKULD_ERR_QUERY, 117);
	cr_assert_eq(SKULD_QUERY_LEVEL, 1);
	cr_assert_eq(SKULD_QUERY_ITEM_LEVELS, 2);
	cr_assert_eq(SKULD_QUERY_LOCATION_LEVELS, 3);
	cr_assert_eq(SKULD_QUERY_CHANNEL, 4);
	cr_assert_eq(SKULD_QUERY_HOLD, 5);
	cr_assert_eq(SKULD_QUERY_LIMIT_MAX, 1024);
	cr_assert_eq(SKULD_QUERY_MORE, 1);
	cr_assert_eq(SKULD_QUERY_CURSOR, 2);
	cr_assert_eq(SKULD_LOOKUP_SKU, 1);
	cr_assert_eq(SKULD_LOOKUP_BARCODE, 2);
	cr_assert_eq(SKULD_LOOKUP_LOCATION, 3);
	cr_assert_eq(SKULD_LOOKUP_CHANNEL, 4);
	cr_assert_eq(SKULD_LOOKUP_ITEM, 5);
	cr_assert_eq(SKULD_LOOKUP_KIND_LAST, 5);
	cr_assert_eq(SKULD_LOOKUP_RETIRED, 1);
	cr_assert_eq(SKULD_LOOKUP_MORE, 2);
	cr_assert_eq(SKULD_LOOKUP_BUNDLE, 4);
	cr_assert_eq(SKULD_LOOKUP_MATCHES_MAX, 64);
	cr_assert_eq(SKULD_HOLD_STATE_OPEN, 0);
	cr_assert_eq(SKULD_HOLD_STATE_EXPIRED, 3);
	cr_assert_eq(proto_record_size(SKULD_OP_QUERY, 0), 0);
	cr_assert_eq(proto_record_size(SKULD_OP_QUERY, 1), 64);
	cr_assert_eq(proto_record_size(SKULD_OP_LOOKUP, 0), 0);
	cr_assert_eq(proto_record_size(SKULD_OP_LOOKUP, 1), 32);
	cr_assert_eq(proto_record_size(SKULD_OP_STATS, 0), 0);
	cr_assert_eq(proto_record_size(SKULD_OP_STATS, 1), 256);
	cr_assert_eq(SKULD_STATS_RECORD_SIZE, 256);
	cr_assert_eq(SKULD_STATS_RECORDS, 3);
	cr_assert_eq(SKULD_STATS_LATENCY_BUCKETS, 16);
	cr_assert_eq(SKULD_STATS_LATENCY_BASE_NS, 64000);
}

Test(protocol, query_lookup_stats_bytes_match_the_tables)
{
	struct skuld_query query = query_valid(SKULD_QUERY_CHANNEL);
	query.after_location = 0x0a0b0c0d;
	query.hold = 0x0102030405060708ull;
	const unsigned char *q = (const unsigned char *)&query;
	cr_assert_eq(le16(q), 4);
	cr_assert_eq(le32(q + 4), 10);
	cr_assert_eq(le32(q + 8), 1001);
	cr_assert_eq(le32(q + 16), 3);
	cr_assert_eq(le32(q + 20), 5);
	cr_assert_eq(le32(q + 24), 0x0a0b0c0d);
	cr_assert_eq(le64(q + 32), 0x0102030405060708ull);

	unsigned char records[3 * 64];
	query_records_valid(records);
	cr_assert_eq(le32(records), 1001);
	cr_assert_eq(le32(records + 4), 17);
	cr_assert_eq(le64(records + 8), 10);
	cr_assert_eq(le64(records + 16), 2);
	cr_assert_eq(le64(records + 24), 1);
	cr_assert_eq(le64(records + 32), 1);
	cr_assert_eq(le64(records + 40), 4);
	cr_assert_eq(le64(records + 48), 6);
	cr_assert_eq(le16(records + 56), 0);
	cr_assert_eq(records[58], 3);
	cr_assert_eq(records[64 + 59], 1);
	const unsigned char *h = records + 128;
	cr_assert_eq(le64(h + 8), 77);
	cr_assert_eq(le64(h + 16), 1000);
	cr_assert_eq(le64(h + 32), 2);
	cr_assert_eq(h[58], 5);

	struct skuld_lookup lookup = lookup_valid(SKULD_LOOKUP_SKU);
	const unsigned char *l = (const unsigned char *)&lookup;
	cr_assert_eq(le16(l), 1);
	cr_assert_eq(memcmp(l + 16, "4006381333931", 13), 0);
	lookup = lookup_valid(SKULD_LOOKUP_ITEM);
	lookup.id = 0x0a0b0c0d;
	cr_assert_eq(le16(l), 5);
	cr_assert_eq(le32(l + 4), 0x0a0b0c0d);
	cr_assert(model_zero(l + 16, 32));

	struct skuld_lookup_match match = {
	        .id = 9, .status = 12, .kind = 2, .flags = 1, .pack = -3, .scale = 6};
	const unsigned char *m = (const unsigned char *)&match;
	cr_assert_eq(le32(m), 9);
	cr_assert_eq(le16(m + 4), 12);
	cr_assert_eq(m[6], 2);
	cr_assert_eq(m[7], 1);
	cr_assert_eq((int64_t)le64(m + 8), -3);
	cr_assert_eq(m[16], 6);

	struct skuld_stats stats = {.requests = 40,
	                            .event_durable = 104,
	                            .log_segment = 192,
	                            .disk_free_bytes = 200,
	                            .disk_alarm = 208};
	const unsigned char *st = (const unsigned char *)&stats;
	cr_assert_eq(le64(st + 40), 40);
	cr_assert_eq(le64(st + 104), 104);
	cr_assert_eq(le64(st + 192), 192);
	cr_assert_eq(le64(st + 200), 200);
	cr_assert_eq(le64(st + 208), 208);

	/* Section 14.2: record 1, offsets within the record. */
	struct skuld_stats_limits limits = {.frames_oversize = 1,
	                                    .closed_slow = 2,
	                                    .closed_unregistered = 3,
	                                    .closed_idle = 4,
	                                    .closed_stalled = 5,
	                                    .reply_waits = 6,
	                                    .pool_waits = 7,
	                                    .recv_paused = 8,
	                                    .denied_events = 9,
	                                    .denied_reads = 10,
	                                    .tokens_refused = 11,
	                                    .sessions_busy = 12,
	                                    .latency_count = 13,
	                                    .latency_sum_ns = 14,
	                                    .latency_max_ns = 31};
	for (uint32_t i = 0; i < 16; i++)
		limits.latency_bucket[i] = 15 + i;
	const unsigned char *li = (const unsigned char *)&limits;
	for (uint32_t word = 0; word < 31; word++)
		cr_assert_eq(le64(li + 8 * word), word + 1, "word %u", word);
	cr_assert_eq(le64(li + 248), 0);
	/* Section 14.3: record 2, status 100 + k at 8 k. */
	struct skuld_stats_rejects rejects = {.rejected = {[4] = 104, [18] = 118}};
	const unsigned char *re = (const unsigned char *)&rejects;
	cr_assert_eq(le64(re + 32), 104);
	cr_assert_eq(le64(re + 144), 118);
}

Test(protocol, round_trip_query_lookup_stats)
{
	struct frame frames[TEST_FRAMES];
	test_frames_build(frames);
	for (int i = 9; i < TEST_FRAMES; i++) {
		uint32_t index = 99;
		cr_assert_eq(frame_check(&frames[i], &index), SKULD_OK, "frame %d", i);
		cr_assert_eq(index, 0);
	}
	for (uint16_t kind = 1; kind <= SKULD_QUERY_KIND_LAST; kind++) {
		struct skuld_query query = query_valid(kind);
		cr_assert_eq(proto_query_check(&query), SKULD_OK, "kind %u", kind);
		struct frame frame;
		frame_make(&frame, SKULD_OP_QUERY, 0, &query, sizeof(query), 1);
		cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
	}
	for (uint16_t kind = 1; kind <= SKULD_LOOKUP_KIND_LAST; kind++) {
		struct skuld_lookup lookup = lookup_valid(kind);
		cr_assert_eq(proto_lookup_check(&lookup), SKULD_OK, "kind %u", kind);
		struct frame frame;
		frame_make(&frame, SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
		cr_assert_eq(frame_check(&frame, NULL), SKULD_OK, "kind %u", kind);
	}
	/* LOOKUP ITEM: the largest id, and both answers (found, unknown). */
	struct skuld_lookup lookup = lookup_valid(SKULD_LOOKUP_ITEM);
	lookup.id = UINT32_MAX;
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_OK);
	struct skuld_lookup_match answers[2] = {
	        {.id = 7,
	         .status = SKULD_OK,
	         .kind = SKULD_LOOKUP_ITEM,
	         .flags = SKULD_LOOKUP_BUNDLE,
	         .scale = SKULD_SCALE_MAX},
	        {.id = 0, .status = SKULD_ITEM_UNKNOWN, .kind = SKULD_LOOKUP_ITEM},
	};
	struct frame reply;
	frame_make(&reply, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, answers, sizeof(answers), 2);
	cr_assert_eq(frame_check(&reply, NULL), SKULD_OK);
	const struct skuld_lookup_match *back =
	        (const struct skuld_lookup_match *)frame_body(&reply);
	cr_assert_eq(memcmp(back, answers, sizeof(answers)), 0);
	/* An empty QUERY reply (nothing matched) is well-formed. */
	struct frame frame;
	frame_make(&frame, SKULD_OP_QUERY, SKULD_FRAME_REPLY, NULL, 0, 0);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
}

Test(protocol, reject_query_lookup_stats_body_sizes)
{
	unsigned char body[512];
	memset(body, 0, sizeof(body));
	struct frame frame;
	/* QUERY request: exactly one 64-byte record. */
	frame_make(&frame, SKULD_OP_QUERY, 0, body, 128, 2);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_QUERY, 0, NULL, 0, 0);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_QUERY, 0, body, 64, 2);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_COUNT);
	/* QUERY reply: whole 64-byte records. */
	frame_make(&frame, SKULD_OP_QUERY, SKULD_FRAME_REPLY, body, 96, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_QUERY, SKULD_FRAME_REPLY, body, 128, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_COUNT);
	/* LOOKUP request: one 64-byte record; reply: 32-byte matches. */
	frame_make(&frame, SKULD_OP_LOOKUP, 0, body, 32, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, body, 48, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, body, 64, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_COUNT);
	/* STATS: empty request whose count is the records the client takes
	 * (any value: 0 from clients before record 1, 3 from this one, more
	 * from a later one); 256-byte reply records. */
	frame_make(&frame, SKULD_OP_STATS, 0, body, 64, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	static const uint32_t stats_counts[] = {0, 1, 2, 3, 4, 0xffffffffu};
	for (size_t i = 0; i < sizeof(stats_counts) / sizeof(stats_counts[0]); i++) {
		frame_make(&frame, SKULD_OP_STATS, 0, NULL, 0, stats_counts[i]);
		cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_OK, "count %u",
		             stats_counts[i]);
		cr_assert_eq(frame_check(&frame, NULL), SKULD_OK, "count %u", stats_counts[i]);
	}
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, body, 128, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, body, 256, 0);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_COUNT);
	/* STATS reply: whole 256-byte records, at least one. */
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, NULL, 0, 0);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, body, 384, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_SIZE);
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, body, 512, 1);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_ERR_COUNT);
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, body, 512, 2);
	cr_assert_eq(proto_header_check(frame_header(&frame)), SKULD_OK);
}

Test(protocol, reject_query_reserved)
{
	static const size_t reserved_offsets[] = {2, 3, 28, 31, 40, 47, 48, 63};
	for (size_t i = 0; i < sizeof(reserved_offsets) / sizeof(reserved_offsets[0]); i++) {
		struct skuld_query query = query_valid(SKULD_QUERY_LEVEL);
		((unsigned char *)&query)[reserved_offsets[i]] = 1;
		cr_assert_eq(proto_query_check(&query), SKULD_ERR_RESERVED, "byte %zu",
		             reserved_offsets[i]);
		struct frame frame;
		frame_make(&frame, SKULD_OP_QUERY, 0, &query, sizeof(query), 1);
		cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_RESERVED);
	}
	/* Reserved comes before the kind. */
	struct skuld_query query = query_valid(SKULD_QUERY_LEVEL);
	query.kind = 77;
	query.reserved_1 = 1;
	cr_assert_eq(proto_query_check(&query), SKULD_ERR_RESERVED);
}

Test(protocol, reject_query_unknown_kind)
{
	static const uint16_t kinds[] = {0, 12, 13, 255, 65535};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct skuld_query query;
		memset(&query, 0, sizeof(query));
		query.kind = kinds[i];
		cr_assert_eq(proto_query_check(&query), SKULD_ERR_QUERY, "kind %u", kinds[i]);
	}
}

Test(protocol, reject_query_field_the_kind_does_not_use)
{
	/* Field offsets: limit, item, location, channel, after_item,
	 * after_location (u32), hold (u64). */
	static const size_t offsets[] = {4, 8, 12, 16, 20, 24, 32};
	for (uint16_t kind = 1; kind <= 5; kind++) {
		for (size_t f = 0; f < sizeof(offsets) / sizeof(offsets[0]); f++) {
			struct skuld_query query;
			memset(&query, 0, sizeof(query));
			query.kind = kind;
			((unsigned char *)&query)[offsets[f]] = 1;
			uint32_t want =
			        (want_query_fields[kind] & (1u << f)) ? SKULD_OK : SKULD_ERR_QUERY;
			cr_assert_eq(proto_query_check(&query), want, "kind %u field %zu", kind, f);
		}
	}
}

Test(protocol, reject_query_limit_over_maximum)
{
	struct skuld_query query = query_valid(SKULD_QUERY_ITEM_LEVELS);
	query.limit = SKULD_QUERY_LIMIT_MAX;
	cr_assert_eq(proto_query_check(&query), SKULD_OK);
	query.limit = SKULD_QUERY_LIMIT_MAX + 1;
	cr_assert_eq(proto_query_check(&query), SKULD_ERR_QUERY);
	query.limit = UINT32_MAX;
	cr_assert_eq(proto_query_check(&query), SKULD_ERR_QUERY);
}

Test(protocol, reject_lookup_bad_records)
{
	static const size_t reserved_offsets[] = {2, 3, 8, 15, 48, 63};
	for (size_t i = 0; i < sizeof(reserved_offsets) / sizeof(reserved_offsets[0]); i++) {
		for (uint16_t kind = SKULD_LOOKUP_SKU; kind <= SKULD_LOOKUP_ITEM; kind += 4) {
			struct skuld_lookup lookup = lookup_valid(kind);
			((unsigned char *)&lookup)[reserved_offsets[i]] = 1;
			cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_RESERVED,
			             "kind %u byte %zu", kind, reserved_offsets[i]);
		}
	}
	struct skuld_lookup lookup = lookup_valid(0);
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
	lookup = lookup_valid(6);
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
	lookup = lookup_valid(SKULD_LOOKUP_LOCATION);
	memset(lookup.code, 0, sizeof(lookup.code));
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
	lookup = lookup_valid(SKULD_LOOKUP_CHANNEL);
	lookup.code[3] = '\n';
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
	lookup = lookup_valid(SKULD_LOOKUP_CHANNEL);
	lookup.code[31] = 'x'; /* a byte after the NUL padding began */
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
	lookup = lookup_valid(SKULD_LOOKUP_SKU);
	lookup.code[0] = ' ';
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
	struct frame frame;
	lookup = lookup_valid(9);
	frame_make(&frame, SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_QUERY);
}

Test(protocol, reject_lookup_id_on_a_code_kind)
{
	/* SKU, BARCODE, LOCATION, CHANNEL name a code: an id is a field the
	 * kind does not use, whichever of its bytes is set. */
	for (uint16_t kind = SKULD_LOOKUP_SKU; kind <= SKULD_LOOKUP_CHANNEL; kind++) {
		for (size_t byte = 0; byte < 4; byte++) {
			struct skuld_lookup lookup = lookup_valid(kind);
			((unsigned char *)&lookup.id)[byte] = 1;
			cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY,
			             "kind %u byte %zu", kind, byte);
		}
	}
	struct skuld_lookup lookup = lookup_valid(SKULD_LOOKUP_BARCODE);
	lookup.id = 7;
	struct frame frame;
	frame_make(&frame, SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_QUERY);
	/* Reserved comes before the kind's fields. */
	lookup.reserved_2 = 1;
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_RESERVED);
}

Test(protocol, reject_lookup_item_without_an_id)
{
	struct skuld_lookup lookup = lookup_valid(SKULD_LOOKUP_ITEM);
	lookup.id = 0;
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
	struct frame frame;
	frame_make(&frame, SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_QUERY);
	/* Reserved comes before the kind's fields. */
	lookup.reserved_0 = 1;
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_RESERVED);
}

Test(protocol, reject_lookup_item_with_a_code)
{
	/* ITEM names an id: any non-zero code byte is a field the kind does
	 * not use, valid text or not. */
	for (size_t byte = 0; byte < SKULD_CODE_SIZE; byte++) {
		struct skuld_lookup lookup = lookup_valid(SKULD_LOOKUP_ITEM);
		lookup.code[byte] = 'A';
		cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY, "byte %zu", byte);
	}
	struct skuld_lookup lookup = lookup_valid(SKULD_LOOKUP_ITEM);
	memcpy(lookup.code, "SKU-7", 5);
	struct frame frame;
	frame_make(&frame, SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_ERR_QUERY);
	/* Both a code and no id: still ERR_QUERY. */
	lookup.id = 0;
	cr_assert_eq(proto_lookup_check(&lookup), SKULD_ERR_QUERY);
}

Test(protocol, reject_bad_query_reply_records)
{
	struct {
		size_t record;
		size_t offset;
		unsigned char value;
		uint32_t want;
	} cases[] = {
	        {0, 58, 0, SKULD_ERR_QUERY},    /* kind 0 */
	        {1, 58, 12, SKULD_ERR_QUERY},   /* unknown kind */
	        {1, 59, 4, SKULD_ERR_FLAGS},    /* unknown flag */
	        {2, 59, 1, SKULD_ERR_FLAGS},    /* a hold record has no flags */
	        {2, 44, 1, SKULD_ERR_RESERVED}, /* hold reserved_0 */
	        {2, 55, 1, SKULD_ERR_RESERVED}, /* hold reserved_1 */
	        {2, 40, 4, SKULD_ERR_QUERY},    /* hold state out of range */
	        {0, 44, 1, SKULD_OK},           /* incoming of a level record: any value */
	        {1, 59, 3, SKULD_OK},           /* MORE | CURSOR */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char records[3 * 64];
		query_records_valid(records);
		records[cases[i].record * 64 + cases[i].offset] = cases[i].value;
		struct frame frame;
		frame_make(&frame, SKULD_OP_QUERY, SKULD_FRAME_REPLY, records, sizeof(records), 3);
		uint32_t index = 99;
		cr_assert_eq(frame_check(&frame, &index), cases[i].want, "case %zu", i);
		if (cases[i].want != SKULD_OK)
			cr_assert_eq(index, cases[i].record, "case %zu", i);
	}
}

Test(protocol, discrepancies_query_and_records)
{
	struct skuld_query query = query_valid(SKULD_QUERY_DISCREPANCIES);
	cr_assert_eq(proto_query_check(&query), SKULD_OK);
	query.after_location = 18; /* pages within location 17 only */
	cr_assert_eq(proto_query_check(&query), SKULD_ERR_QUERY);
	query.location = 0; /* every location: any cursor */
	cr_assert_eq(proto_query_check(&query), SKULD_OK);
	query.channel = 1;
	cr_assert_eq(proto_query_check(&query), SKULD_ERR_QUERY);
	query.channel = 0;
	query.hold = 1;
	cr_assert_eq(proto_query_check(&query), SKULD_ERR_QUERY);
	/* Flag bits 2..5 are known in a discrepancy record only. */
	struct skuld_discrepancy_record records[2];
	memset(records, 0, sizeof(records));
	records[0].kind = SKULD_QUERY_DISCREPANCIES;
	records[1].kind = SKULD_QUERY_DISCREPANCIES;
	records[1].flags = SKULD_QUERY_MORE | SKULD_DISCREPANCY_ACKNOWLEDGED |
	                   SKULD_DISCREPANCY_SALE_SHORT | SKULD_DISCREPANCY_COUNT_OFF |
	                   SKULD_DISCREPANCY_LAST_COUNT;
	records[1].occurrences = 3;
	struct frame frame;
	frame_make(&frame, SKULD_OP_QUERY, SKULD_FRAME_REPLY, records, sizeof(records), 2);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK);
	records[1].flags |= 0x40;
	frame_make(&frame, SKULD_OP_QUERY, SKULD_FRAME_REPLY, records, sizeof(records), 2);
	uint32_t index = 99;
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_FLAGS);
	cr_assert_eq(index, 1);
	records[1].flags = SKULD_DISCREPANCY_ACKNOWLEDGED;
	records[1].kind = SKULD_QUERY_EXCEPTIONS;
	frame_make(&frame, SKULD_OP_QUERY, SKULD_FRAME_REPLY, records, sizeof(records), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_FLAGS);
	/* DISCREPANCY_ACK: item and location, nothing else. */
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.key.lo = 1;
	event.kind = SKULD_DISCREPANCY_ACK;
	event.item = 3;
	event.location = 4;
	cr_assert_eq(proto_event_check(&event), SKULD_OK);
	event.quantity = 1;
	cr_assert_eq(proto_event_check(&event), SKULD_ERR_EVENT_FIELD);
}

Test(protocol, reject_bad_lookup_matches_and_stats)
{
	struct skuld_lookup_match matches[2] = {
	        {.id = 7, .status = SKULD_OK, .kind = SKULD_LOOKUP_SKU},
	        {.id = 8, .status = SKULD_OK, .kind = SKULD_LOOKUP_SKU},
	};
	struct frame frame;
	uint32_t index = 99;
	matches[1].reserved_1 = 1;
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_RESERVED);
	cr_assert_eq(index, 1);
	matches[1].reserved_1 = 0;
	matches[1].reserved_0[6] = 1;
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_RESERVED);
	matches[1].reserved_0[6] = 0;
	matches[1].scale = SKULD_SCALE_MAX + 1;
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_QUERY);
	matches[1].scale = SKULD_SCALE_MAX;
	matches[0].flags = SKULD_LOOKUP_BUNDLE | SKULD_LOOKUP_RETIRED;
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_OK,
	             "scale 9 and the bundle flag are valid");
	matches[0].flags = 0;
	matches[1].kind = SKULD_LOOKUP_ITEM;
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_OK, "an ITEM match is valid");
	matches[1].kind = 6;
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_QUERY);
	matches[1].kind = SKULD_LOOKUP_SKU;
	matches[0].flags = 0x80;
	frame_make(&frame, SKULD_OP_LOOKUP, SKULD_FRAME_REPLY, matches, sizeof(matches), 2);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_FLAGS);
	cr_assert_eq(index, 0);

	struct skuld_stats stats = {.requests = 1, .chain_head_event = 9};
	memset(stats.chain_head, 0xff, sizeof(stats.chain_head));
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, &stats, sizeof(stats), 1);
	cr_assert_eq(frame_check(&frame, NULL), SKULD_OK, "every stats byte is a figure");

	/* Three records: record 1's reserved word must be zero; records after
	 * the third are a newer server's and are not looked at. */
	static unsigned char records[4 * 256];
	memset(records, 0xff, sizeof(records));
	memset(records + 256 + 248, 0, 8);
	index = 0;
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, records, 3 * 256, 3);
	cr_assert_eq(frame_check(&frame, &index), SKULD_OK);
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, records, 4 * 256, 4);
	cr_assert_eq(frame_check(&frame, &index), SKULD_OK, "a fourth record is not looked at");
	records[256 + 255] = 1;
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, records, 3 * 256, 3);
	cr_assert_eq(frame_check(&frame, &index), SKULD_ERR_RESERVED);
	cr_assert_eq(index, 1);
	frame_make(&frame, SKULD_OP_STATS, SKULD_FRAME_REPLY, records, 256, 1);
	cr_assert_eq(frame_check(&frame, &index), SKULD_OK, "one record: no reserved word");
}

Test(protocol, query_check_agrees_with_the_model)
{
	/* Every single-byte value at every offset of a valid query of each
	 * kind: the codec and the model of section 12 agree. */
	for (uint16_t kind = 1; kind <= 5; kind++) {
		for (size_t offset = 0; offset < 64; offset++) {
			for (unsigned value = 0; value < 256; value += 51) {
				struct skuld_query query = query_valid(kind);
				((unsigned char *)&query)[offset] = (unsigned char)value;
				cr_assert_eq(proto_query_check(&query),
				             model_query_check((const unsigned char *)&query),
				             "kind %u offset %zu value %u", kind, offset, value);
			}
		}
	}
	for (uint16_t kind = 1; kind <= 5; kind++) {
		for (size_t offset = 0; offset < 64; offset++) {
			for (unsigned value = 0; value < 256; value += 17) {
				struct skuld_lookup lookup = lookup_valid(kind);
				((unsigned char *)&lookup)[offset] = (unsigned char)value;
				cr_assert_eq(proto_lookup_check(&lookup),
				             model_lookup_check((const unsigned char *)&lookup),
				             "kind %u offset %zu value %u", kind, offset, value);
			}
		}
	}
}
