/*
 * events.c — what a client builds without a connection: event records,
 * idempotency keys, client ids, and the text of every error.
 *
 * Owns: the idempotency key encoding (docs/CLIENT.md section "Keys"), which
 * is part of the data: keys already in a server's window were made with it,
 * so it never changes; a new encoding gets a new version tag.
 */
#define _GNU_SOURCE /* strerrordesc_np */
#include "client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

/* ---- Keys ----------------------------------------------------------------- */

#define KEY_TAG "skuld-key-v1"

static void key_put_text(XXH3_state_t *state, const char *text)
{
	uint32_t length = text != NULL ? (uint32_t)strlen(text) : 0;

	XXH3_128bits_update(state, &length, sizeof(length)); /* little-endian host */
	if (length > 0)
		XXH3_128bits_update(state, text, length);
}

SKULD_EXTERN skuld_u128 skuld_key(const char *source, const char *document, uint32_t line,
                                  const char *action)
{
	/* "skuld-key-v1\0", then u32 length + bytes of source and of document,
	 * u32 line, u32 length + bytes of action; all little-endian. The
	 * lengths make the encoding unambiguous ("ab"+"c" != "a"+"bc"). */
	XXH3_state_t state;
	XXH128_hash_t hash;
	skuld_u128 key;

	XXH3_128bits_reset(&state);
	XXH3_128bits_update(&state, KEY_TAG, sizeof(KEY_TAG)); /* with its NUL */
	key_put_text(&state, source);
	key_put_text(&state, document);
	XXH3_128bits_update(&state, &line, sizeof(line));
	key_put_text(&state, action);
	hash = XXH3_128bits_digest(&state);
	key.lo = hash.low64;
	key.hi = hash.high64;
	if (skuld_u128_is_zero(key))
		key.lo = 1; /* a zero key is invalid on the wire */
	return key;
}

/* ---- Client ids ----------------------------------------------------------- */

SKULD_EXTERN int skuld_client_id_generate(skuld_u128 *id)
{
	unsigned char bytes[16];
	size_t got = 0;

	for (int attempt = 0; attempt < 16 && got < sizeof(bytes); attempt++) {
		ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);

		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno != EINTR)
			return -errno;
	}
	if (got < sizeof(bytes))
		return -EIO;
	memcpy(&id->lo, bytes, 8);
	memcpy(&id->hi, bytes + 8, 8);
	if (skuld_u128_is_zero(*id))
		id->lo = 1;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads "32 hex digits[\n]" from path. 0, -ENOENT, -EINVAL or -errno. */
static int id_read(const char *path, skuld_u128 *id)
{
	char text[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t halves[2] = {0, 0};

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0)
		return -errno;
	if (n < 32 || (n > 32 && text[32] != '\n') || n > 33)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		int v = hex_value(text[i]);

		if (v < 0)
			return -EINVAL;
		halves[i / 16] = halves[i / 16] << 4 | (uint64_t)v;
	}
	id->hi = halves[0];
	id->lo = halves[1];
	return skuld_u128_is_zero(*id) ? -EINVAL : 0;
}

static int fsync_directory_of(const char *path)
{
	char directory[4096];
	const char *slash = strrchr(path, '/');
	int fd;
	int rc = 0;

	if (slash == NULL) {
		strcpy(directory, ".");
	} else if (slash == path) {
		strcpy(directory, "/");
	} else {
		size_t length = (size_t)(slash - path);

		if (length >= sizeof(directory))
			return -ENAMETOOLONG;
		memcpy(directory, path, length);
		directory[length] = '\0';
	}
	fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Writes a new random id to a temporary file and links it to path, which
 * fails with EEXIST when another process was first. */
static int id_create(const char *path)
{
	char temporary[4200];
	char text[34];
	skuld_u128 id;
	int rc = skuld_client_id_generate(&id);
	int fd;

	if (rc != 0)
		return rc;
	if (snprintf(temporary, sizeof(temporary), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(temporary))
		return -ENAMETOOLONG;
	snprintf(text, sizeof(text), "%016llx%016llx\n", (unsigned long long)id.hi,
	         (unsigned long long)id.lo);
	fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, 33) != 33 || fsync(fd) != 0)
		rc = errno != 0 ? -errno : -EIO;
	close(fd);
	if (rc == 0 && link(temporary, path) != 0)
		rc = -errno;
	unlink(temporary);
	if (rc == 0)
		rc = fsync_directory_of(path);
	return rc;
}

SKULD_EXTERN int skuld_client_id_load(const char *path, skuld_u128 *id)
{
	int rc;

	if (path == NULL || id == NULL)
		return -EINVAL;
	rc = id_read(path, id);
	if (rc != -ENOENT)
		return rc;
	rc = id_create(path);
	if (rc != 0 && rc != -EEXIST)
		return rc;
	return id_read(path, id);
}

/* ---- Event builders ------------------------------------------------------- */

static void event_begin(struct skuld_event *event, uint16_t kind, skuld_u128 key)
{
	memset(event, 0, sizeof(*event));
	event->kind = kind;
	event->key = key;
}

SKULD_EXTERN void skuld_event_sale(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                   uint32_t location, int64_t quantity)
{
	event_begin(event, SKULD_SALE, key);
	event->item = item;
	event->location = location;
	event->quantity = quantity;
}

SKULD_EXTERN void skuld_event_return(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                     uint32_t location, int64_t quantity, uint8_t disposition)
{
	event_begin(event, SKULD_RETURN, key);
	event->item = item;
	event->location = location;
	event->quantity = quantity;
	event->reason = disposition;
}

SKULD_EXTERN void skuld_event_receive(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                      uint32_t location, int64_t quantity)
{
	event_begin(event, SKULD_RECEIVE, key);
	event->item = item;
	event->location = location;
	event->quantity = quantity;
}

SKULD_EXTERN void skuld_event_adjust(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                     uint32_t location, int64_t delta, uint8_t reason)
{
	event_begin(event, SKULD_ADJUST, key);
	event->item = item;
	event->location = location;
	event->quantity = delta;
	event->reason = reason;
}

SKULD_EXTERN void skuld_event_reserve(struct skuld_event *event, skuld_u128 key, uint64_t hold,
                                      uint32_t item, uint32_t location, int64_t quantity,
                                      uint32_t ttl_s)
{
	event_begin(event, SKULD_RESERVE, key);
	event->id = hold;
	event->item = item;
	event->location = location;
	event->quantity = quantity;
	event->ttl_s = ttl_s;
}

SKULD_EXTERN void skuld_event_reserve_channel(struct skuld_event *event, skuld_u128 key,
                                              uint64_t hold, uint32_t item, uint32_t channel,
                                              int64_t quantity, uint32_t ttl_s)
{
	event_begin(event, SKULD_RESERVE, key);
	event->id = hold;
	event->item = item;
	event->channel = channel;
	event->quantity = quantity;
	event->ttl_s = ttl_s;
}

SKULD_EXTERN void skuld_event_extend(struct skuld_event *event, skuld_u128 key, uint64_t hold,
                                     uint32_t ttl_s)
{
	event_begin(event, SKULD_EXTEND, key);
	event->id = hold;
	event->ttl_s = ttl_s;
}

SKULD_EXTERN void skuld_event_commit(struct skuld_event *event, skuld_u128 key, uint64_t hold,
                                     int64_t quantity)
{
	event_begin(event, SKULD_COMMIT, key);
	event->id = hold;
	event->quantity = quantity;
}

SKULD_EXTERN void skuld_event_release(struct skuld_event *event, skuld_u128 key, uint64_t hold)
{
	event_begin(event, SKULD_RELEASE, key);
	event->id = hold;
}

SKULD_EXTERN void skuld_event_fulfill(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                      uint32_t location, int64_t quantity)
{
	event_begin(event, SKULD_FULFILL, key);
	event->item = item;
	event->location = location;
	event->quantity = quantity;
}

SKULD_EXTERN void skuld_event_transfer_out(struct skuld_event *event, skuld_u128 key,
                                           uint64_t transfer, uint32_t item, uint32_t from,
                                           uint32_t to, int64_t quantity)
{
	event_begin(event, SKULD_TRANSFER_OUT, key);
	event->id = transfer;
	event->item = item;
	event->location = from;
	event->target = to;
	event->quantity = quantity;
}

SKULD_EXTERN void skuld_event_transfer_in(struct skuld_event *event, skuld_u128 key,
                                          uint64_t transfer, uint32_t item, uint32_t location,
                                          int64_t quantity)
{
	event_begin(event, SKULD_TRANSFER_IN, key);
	event->id = transfer;
	event->item = item;
	event->location = location;
	event->quantity = quantity;
}

static int code_set(struct skuld_event *event, const char *code)
{
	size_t length = code != NULL ? strnlen(code, SKULD_CODE_SIZE + 1) : 0;

	if (length == 0 || length > SKULD_CODE_SIZE)
		return -EINVAL;
	memcpy(event->code, code, length);
	if (!proto_text_valid(event->code, SKULD_CODE_SIZE, 0))
		return -EINVAL;
	return 0;
}

SKULD_EXTERN int skuld_event_item_define(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                         const char *sku, uint8_t scale)
{
	event_begin(event, SKULD_ITEM_DEFINE, key);
	event->item = item;
	event->scale = scale;
	if (code_set(event, sku) != 0) {
		memset(event, 0, sizeof(*event));
		return -EINVAL;
	}
	return 0;
}

SKULD_EXTERN int skuld_event_location_define(struct skuld_event *event, skuld_u128 key,
                                             uint32_t location, const char *code)
{
	event_begin(event, SKULD_LOCATION_DEFINE, key);
	event->location = location;
	if (code_set(event, code) != 0) {
		memset(event, 0, sizeof(*event));
		return -EINVAL;
	}
	return 0;
}

SKULD_EXTERN void skuld_events_link(struct skuld_event *events, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		if (i + 1 < count)
			events[i].flags |= SKULD_EVENT_LINKED;
		else
			events[i].flags &= (uint16_t)~SKULD_EVENT_LINKED;
	}
}

/* ---- Error text ----------------------------------------------------------- */

struct status_text {
	int status;
	const char *text;
};

static const struct status_text status_texts[] = {
        {SKULD_OK, "ok"},
        {SKULD_LINKED_FAILED, "another event of its linked chain failed; nothing was applied"},
        {SKULD_LINKED_OPEN, "the batch ends inside a linked chain; the chain was not applied"},
        {SKULD_INSUFFICIENT, "not enough stock available"},
        {SKULD_HOLDS_FULL, "the server's hold table is full"},
        {SKULD_HOLD_EXISTS, "the hold id is already used"},
        {SKULD_HOLD_UNKNOWN, "no such hold"},
        {SKULD_HOLD_EXPIRED, "the hold expired"},
        {SKULD_HOLD_CLOSED, "the hold was already committed or released"},
        {SKULD_QUANTITY_INVALID, "quantity zero, negative or out of range"},
        {SKULD_QUANTITY_EXCEEDS, "quantity exceeds what the hold, bucket or transfer has"},
        {SKULD_TTL_INVALID, "hold time to live zero or over the server's maximum"},
        {SKULD_ITEM_UNKNOWN, "unknown item"},
        {SKULD_LOCATION_UNKNOWN, "unknown location"},
        {SKULD_CHANNEL_UNKNOWN, "unknown channel"},
        {SKULD_ITEM_EXISTS, "the item is already defined"},
        {SKULD_LOCATION_EXISTS, "the location is already defined"},
        {SKULD_CHANNEL_EXISTS, "the channel is already defined"},
        {SKULD_CODE_EXISTS, "the SKU, barcode or name is already taken"},
        {SKULD_CODE_INVALID, "the code is not acceptable"},
        {SKULD_LOCATION_NOT_SELLING, "the location takes no new holds"},
        {SKULD_LOCATION_CLOSED, "the location is closed"},
        {SKULD_COUNT_EXISTS, "the count id is already used"},
        {SKULD_COUNT_UNKNOWN, "no such count"},
        {SKULD_TRANSFER_EXISTS, "the transfer id is already used"},
        {SKULD_TRANSFER_UNKNOWN, "no such transfer"},
        {SKULD_BUNDLE_INVALID, "invalid bundle"},
        {SKULD_NOT_A_BUNDLE, "the item is not a bundle"},
        {SKULD_BUNDLE_NOT_STOCKED, "a bundle holds no stock of its own"},
        {SKULD_SERVER_ONLY, "only the server may write this event"},
        {SKULD_KEY_REUSED, "the idempotency key was already used for a different event"},
        {SKULD_KEYS_FULL, "the server's idempotency window is full"},
        {SKULD_LOCATION_MISMATCH, "the event names another location than the hold's"},
        {SKULD_INVALID_STATE, "reason, bucket or lifecycle value not valid here"},
        {SKULD_SAME_LOCATION, "source and destination are the same location"},
        {SKULD_CATALOG_FULL, "a server table is full"},
        {SKULD_HOLD_NOT_DUE, "the hold is not yet due to expire"},
        {SKULD_CHAIN_TOO_LONG, "the linked chain is longer than the server allows"},
        {SKULD_DENIED, "this token's role may not post this event"},
        {SKULD_DISCREPANCY_UNKNOWN, "no discrepancy is remembered for this item and location"},
        {SKULD_ERR_MAGIC, "not a skuld frame"},
        {SKULD_ERR_VERSION, "no protocol version in common with the server"},
        {SKULD_ERR_OPERATION, "unknown operation"},
        {SKULD_ERR_FLAGS, "unknown frame flag"},
        {SKULD_ERR_SIZE, "frame body size out of range"},
        {SKULD_ERR_COUNT, "record count does not match the body size"},
        {SKULD_ERR_HEADER_CHECKSUM, "frame header damaged"},
        {SKULD_ERR_BODY_CHECKSUM, "frame body damaged"},
        {SKULD_ERR_RESERVED, "a reserved field is not zero"},
        {SKULD_ERR_EVENT_KIND, "unknown event kind"},
        {SKULD_ERR_EVENT_FIELD, "an event sets a field its kind does not use"},
        {SKULD_ERR_EVENT_VALUE, "an event carries an impossible value (flag, key, reason, text)"},
        {SKULD_ERR_CLIENT, "the client id is zero"},
        {SKULD_ERR_REQUEST, "request number out of sequence"},
        {SKULD_ERR_NOT_REGISTERED, "the session is not registered"},
        {SKULD_ERR_TOKEN, "the server refused the token"},
        {SKULD_ERR_BUSY, "the server is overloaded; retry later"},
        {SKULD_ERR_QUERY, "malformed query or lookup"},
        {SKULD_ERR_DENIED, "this token's role may not ask that"},
        {SKULD_ERR_TLS_REQUIRED, "the server takes TLS connections only (give a CA file)"},
};

/* Library errors that strerror words for system calls, not for a ledger. */
static const struct status_text errno_texts[] = {
        {ETIMEDOUT, "deadline passed before the server answered"},
        {ENOTCONN, "not connected (skuld_client_connect was not called or was refused)"},
        {ECANCELED, "the client is closing"},
        {EMSGSIZE, "more events than one request may carry"},
        {EAGAIN, "too many calls waiting on this client"},
        {EPROTO, "the server sent a frame that breaks the protocol"},
        {EKEYREJECTED, "the server's TLS certificate did not verify (CA file, server name)"},
        {ECONNRESET, "the server closed the connection"},
        {ECONNREFUSED, "connection refused (is the server running?)"},
        {EHOSTUNREACH, "cannot resolve or reach the server's address"},
};

SKULD_EXTERN const char *skuld_strerror(int code)
{
	if (code < 0) {
		for (size_t i = 0; i < sizeof(errno_texts) / sizeof(errno_texts[0]); i++) {
			if (errno_texts[i].status == -code)
				return errno_texts[i].text;
		}
		const char *text = strerrordesc_np(-code);

		return text != NULL ? text : "unknown system error";
	}
	for (size_t i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++) {
		if (status_texts[i].status == code)
			return status_texts[i].text;
	}
	return "unknown skuld status";
}
