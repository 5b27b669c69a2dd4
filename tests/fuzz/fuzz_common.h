/*
 * fuzz_common.h — what the libFuzzer targets of tests/fuzz share: the seed
 * writing mode, the small ledger every ledger and snapshot target uses, and
 * the event scenarios their seeds are made of. Header-only: each target is
 * its own executable (docs/FUZZING.md).
 *
 * Seed writing: run a target with SKULD_FUZZ_SEEDS=<dir> and it writes its
 * generated seeds there as seed-<name> files and exits before fuzzing
 * (tests/fuzz/make-corpus.sh does this for every target).
 *
 * A target reports a broken invariant with FUZZ_CHECK, which prints it and
 * aborts: libFuzzer then keeps the input as a crash.
 */
#ifndef SKULD_TESTS_FUZZ_COMMON_H
#define SKULD_TESTS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(condition, ...)                                                                 \
	do {                                                                                       \
		if (!(condition)) {                                                                \
			fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__,       \
			        #condition);                                                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* ---- Seeds --------------------------------------------------------------- */

/* The directory SKULD_FUZZ_SEEDS names, or NULL when the target fuzzes. */
static inline const char *fuzz_seed_dir(void)
{
	const char *dir = getenv("SKULD_FUZZ_SEEDS");
	return dir != NULL && dir[0] != '\0' ? dir : NULL;
}

/* Writes size bytes as dir/seed-<name>; exits with status 1 on failure. */
static inline void fuzz_seed_write(const char *dir, const char *name, const void *bytes,
                                   size_t size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	FILE *file = fopen(path, "wb");
	if (file == NULL || fwrite(bytes, 1, size, file) != size || fclose(file) != 0) {
		perror(path);
		exit(1);
	}
}

/* ---- The small ledger ------------------------------------------------------ */

/* ledger_config_default shrunk so that tables fill up within a few events
 * and a ledger is cheap to create per input. The snapshot seeds are saved
 * from it: its fingerprint is part of every seed. */
static inline void fuzz_ledger_config(struct ledger_config *config)
{
	ledger_config_default(config);
	config->items_max = 16;
	config->locations_max = 8;
	config->channels_max = 4;
	config->stock_max = 48;
	config->codes_max = 24;
	config->barcodes_max = 16;
	config->attributes_max = 16;
	config->bundles_max = 4;
	config->bundle_components_max = 4;
	config->pool_locations_max = 4;
	config->channel_buffers_max = 8;
	config->holds_max = 16;
	config->closed_holds_max = 8;
	config->closed_hold_grace_ns = 3600ull * 1000000000ull;
	config->ttl_max_s = 3600;
	config->counts_max = 8;
	config->transfers_max = 8;
	config->keys_max = 64;
	config->key_window_ns = 86400ull * 1000000000ull;
	config->batch_events_max = 16;
	config->chain_events_max = 4;
	config->listings_max = 16;
	config->discrepancies_max = 8;
}

/* ---- Scenarios ------------------------------------------------------------- */

/* fuzz_ledger's input, used for its seeds and (applied) for fuzz_snapshot's:
 * a sequence of batches, each one control byte and then 1..8 events of 128
 * bytes. The control byte: bits 0-2 events - 1; bit 3 source SERVER; bits
 * 4-6 index into fuzz_time_steps (how far the batch time moves); bit 7
 * expire the holds due before the batch (as the server's EXPIRE batches). */
#define FUZZ_BATCH_EVENTS_MAX 8u
#define FUZZ_CONTROL_SERVER   0x08u
#define FUZZ_CONTROL_EXPIRE   0x80u
#define FUZZ_T0               1700000000000000000ull

static const uint64_t fuzz_time_steps[8] = {
        0,
        1000000000ull,
        60000000000ull,
        3600000000000ull,
        86400000000000ull,
        /* Steps back: the ledger keeps max(timestamp, previous). */
        (uint64_t)-1000000000ll,
        (uint64_t)-86400000000000ll,
        7ull * 86400000000000ull,
};

struct fuzz_script {
	uint8_t *bytes;
	size_t size;
	size_t capacity;
	uint64_t key;
};

static inline void fuzz_script_put(struct fuzz_script *script, const void *bytes, size_t size)
{
	if (script->size + size > script->capacity) {
		size_t capacity = script->capacity ? script->capacity * 2 : 4096;
		while (capacity < script->size + size)
			capacity *= 2;
		script->bytes = realloc(script->bytes, capacity);
		if (script->bytes == NULL)
			abort();
		script->capacity = capacity;
	}
	memcpy(script->bytes + script->size, bytes, size);
	script->size += size;
}

/* An event of kind with a fresh key; the caller fills the rest. */
static inline struct skuld_event fuzz_event(struct fuzz_script *script, uint16_t kind)
{
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.kind = kind;
	event.key.lo = ++script->key;
	event.key.hi = 0x46555a5a00000000ull;
	return event;
}

/* One batch: control byte (events - 1 is filled in) and the events. */
static inline void fuzz_batch(struct fuzz_script *script, uint8_t control,
                              const struct skuld_event *events, uint32_t count)
{
	if (count == 0 || count > FUZZ_BATCH_EVENTS_MAX)
		abort();
	control = (uint8_t)((control & ~7u) | (count - 1));
	fuzz_script_put(script, &control, 1);
	fuzz_script_put(script, events, (size_t)count * sizeof(*events));
}

static inline void fuzz_one(struct fuzz_script *script, uint8_t control, struct skuld_event event)
{
	fuzz_batch(script, control, &event, 1);
}

static inline struct skuld_event fuzz_code(struct fuzz_script *script, uint16_t kind,
                                           const char *code)
{
	struct skuld_event event = fuzz_event(script, kind);
	memcpy(event.code, code, strlen(code));
	return event;
}

static inline struct skuld_event fuzz_stock(struct fuzz_script *script, uint16_t kind,
                                            uint32_t item, uint32_t location, int64_t quantity)
{
	struct skuld_event event = fuzz_event(script, kind);
	event.item = item;
	event.location = location;
	event.quantity = quantity;
	return event;
}

/* Items 1..4 (4 a bundle of 1 x2 and 2 x1), locations 1..3, stock. */
static inline void fuzz_scenario_catalog(struct fuzz_script *script)
{
	struct skuld_event events[8];
	for (uint32_t item = 1; item <= 4; item++) {
		char code[16];
		snprintf(code, sizeof(code), "SKU-%u", item);
		events[item - 1] = fuzz_code(script, SKULD_ITEM_DEFINE, code);
		events[item - 1].item = item;
		if (item == 4)
			events[item - 1].flags = SKULD_EVENT_BUNDLE;
	}
	fuzz_batch(script, 0, events, 4);
	for (uint32_t location = 1; location <= 3; location++) {
		char code[16];
		snprintf(code, sizeof(code), "L%u", location);
		events[location - 1] = fuzz_code(script, SKULD_LOCATION_DEFINE, code);
		events[location - 1].location = location;
	}
	events[3] = fuzz_event(script, SKULD_BUNDLE_COMPONENT);
	events[3].item = 4;
	events[3].target = 1;
	events[3].quantity = 2;
	events[4] = events[3];
	events[4].key.lo = ++script->key;
	events[4].target = 2;
	events[4].quantity = 1;
	events[5] = fuzz_code(script, SKULD_SKU_ALIAS, "ALIAS-1");
	events[5].item = 1;
	events[6] = fuzz_code(script, SKULD_BARCODE_DEFINE, "4006381333931");
	events[6].item = 1;
	events[6].quantity = 6;
	events[7] = fuzz_code(script, SKULD_ATTRIBUTE_SET, "size=M");
	events[7].item = 1;
	fuzz_batch(script, 0x10, events, 8);
	events[0] = fuzz_stock(script, SKULD_RECEIVE, 1, 1, 20);
	events[1] = fuzz_stock(script, SKULD_RECEIVE, 2, 1, 10);
	events[2] = fuzz_stock(script, SKULD_RECEIVE, 1, 2, 5);
	events[3] = fuzz_stock(script, SKULD_INCOMING, 3, 3, 7);
	fuzz_batch(script, 0x10, events, 4);
}

/* Holds: reserve, extend, commit, fulfil, release, expire, reallocate. */
static inline void fuzz_scenario_holds(struct fuzz_script *script)
{
	struct skuld_event events[8];
	events[0] = fuzz_stock(script, SKULD_RESERVE, 1, 1, 3);
	events[0].id = 101;
	events[0].ttl_s = 60;
	events[1] = fuzz_stock(script, SKULD_RESERVE, 4, 1, 1);
	events[1].id = 102;
	events[1].ttl_s = 600;
	events[2] = fuzz_stock(script, SKULD_RESERVE, 2, 1, 2);
	events[2].id = 103;
	events[2].ttl_s = 30;
	fuzz_batch(script, 0x10, events, 3);
	events[0] = fuzz_event(script, SKULD_EXTEND);
	events[0].id = 102;
	events[0].ttl_s = 900;
	events[1] = fuzz_event(script, SKULD_COMMIT);
	events[1].id = 101;
	events[1].quantity = 2;
	events[2] = fuzz_stock(script, SKULD_FULFILL, 1, 1, 2);
	events[3] = fuzz_event(script, SKULD_REALLOCATE);
	events[3].id = 102;
	events[3].target = 2;
	fuzz_batch(script, 0x10, events, 4);
	/* A minute later hold 103 is due: the server expires it. */
	fuzz_one(script, 0x20 | FUZZ_CONTROL_EXPIRE, fuzz_stock(script, SKULD_SALE, 1, 2, 1));
	struct skuld_event release = fuzz_event(script, SKULD_RELEASE);
	release.id = 102;
	fuzz_one(script, 0x10, release);
}

/* Counts, transfers, moves, returns, adjustments and a linked chain. */
static inline void fuzz_scenario_movements(struct fuzz_script *script)
{
	struct skuld_event events[8];
	events[0] = fuzz_stock(script, SKULD_COUNT_OPEN, 1, 1, 0);
	events[0].id = 7;
	events[1] = fuzz_stock(script, SKULD_SALE, 1, 1, 1);
	events[2] = fuzz_stock(script, SKULD_COUNT_CLOSE, 1, 1, 18);
	events[2].id = 7;
	events[3] = fuzz_stock(script, SKULD_TRANSFER_OUT, 2, 1, 4);
	events[3].target = 2;
	events[3].id = 55;
	events[4] = fuzz_stock(script, SKULD_TRANSFER_IN, 2, 2, 3);
	events[4].id = 55;
	events[5] = fuzz_stock(script, SKULD_MOVE, 1, 1, 2);
	events[5].bucket_to = SKULD_BUCKET_DAMAGED;
	events[6] = fuzz_stock(script, SKULD_RETURN, 1, 2, 1);
	events[6].reason = SKULD_DISPOSITION_QUARANTINE;
	events[7] = fuzz_stock(script, SKULD_ADJUST, 2, 2, -1);
	events[7].reason = SKULD_REASON_DAMAGE;
	fuzz_batch(script, 0x10, events, 8);
	events[0] = fuzz_stock(script, SKULD_SALE, 1, 1, 1);
	events[0].flags = SKULD_EVENT_LINKED;
	events[1] = fuzz_stock(script, SKULD_RESERVE, 2, 1, 100); /* fails: so does the chain */
	events[1].id = 104;
	events[1].ttl_s = 60;
	events[2] = fuzz_stock(script, SKULD_RETURN, 4, 1, 1);
	events[2].flags = SKULD_EVENT_EXPECTED;
	events[3] = fuzz_stock(script, SKULD_RECEIVE, 3, 3, 5);
	events[3].flags = SKULD_EVENT_FROM_INCOMING;
	fuzz_batch(script, 0x10, events, 4);
	/* The same keys again: replayed. */
	fuzz_batch(script, 0x10, events, 4);
}

/* A channel with a pool, buffer, cap, listings, acks and exceptions (the
 * events of tests/test_ledger_push.c). */
static inline void fuzz_scenario_channel(struct fuzz_script *script)
{
	struct skuld_event events[8];
	events[0] = fuzz_code(script, SKULD_CHANNEL_DEFINE, "shopify");
	events[0].channel = 1;
	events[0].quantity = 1;
	events[1] = fuzz_event(script, SKULD_CHANNEL_POOL);
	events[1].channel = 1;
	events[1].location = 1;
	events[2] = fuzz_event(script, SKULD_CHANNEL_POOL);
	events[2].channel = 1;
	events[2].location = 2;
	events[2].quantity = 1;
	events[3] = fuzz_event(script, SKULD_CHANNEL_BUFFER);
	events[3].channel = 1;
	events[3].item = 2;
	events[3].quantity = 2;
	events[4] = fuzz_event(script, SKULD_CHANNEL_CAP);
	events[4].channel = 1;
	events[4].quantity = 50;
	events[5] = fuzz_event(script, SKULD_CHANNEL_MIN);
	events[5].channel = 1;
	events[5].quantity = 1;
	fuzz_batch(script, 0x10, events, 6);
	for (uint32_t item = 1; item <= 4; item++) {
		events[item - 1] = fuzz_event(script, SKULD_CHANNEL_LISTING);
		events[item - 1].channel = 1;
		events[item - 1].item = item;
		snprintf(events[item - 1].listing, SKULD_LISTING_SIZE, "gid://shopify/Item/%u",
		         item);
	}
	fuzz_batch(script, 0x10, events, 4);
	/* Versions start at 1 and count every change: ack the first ones. */
	for (uint32_t item = 1; item <= 3; item++) {
		events[item - 1] = fuzz_event(script, SKULD_PUSH_ACK);
		events[item - 1].channel = 1;
		events[item - 1].item = item;
		events[item - 1].id = item;
		events[item - 1].quantity = 5;
	}
	events[3] = fuzz_code(script, SKULD_PUSH_EXCEPTION, "INVALID_INVENTORY_ITEM");
	events[3].channel = 1;
	events[3].item = 4;
	events[3].id = 4;
	events[3].reason = SKULD_PUSH_UNKNOWN;
	events[4] = fuzz_code(script, SKULD_PUSH_EXCEPTION, "401");
	events[4].channel = 1;
	events[4].reason = SKULD_PUSH_AUTH;
	fuzz_batch(script, 0x10, events, 5);
	events[0] = fuzz_stock(script, SKULD_RESERVE, 1, 0, 2);
	events[0].channel = 1;
	events[0].id = 201;
	events[0].ttl_s = 120;
	events[1] = fuzz_event(script, SKULD_CHANNEL_LISTING);
	events[1].channel = 1;
	events[1].item = 4;
	events[1].flags = SKULD_EVENT_RETIRE;
	memcpy(events[1].listing, "gid://shopify/Item/4", 20);
	fuzz_batch(script, 0x10, events, 2);
}

/* The seed scripts: name, and the scenarios in order. */
static inline void fuzz_scripts(void (*each)(const char *name, const struct fuzz_script *script,
                                             void *context),
                                void *context)
{
	struct fuzz_script script = {0};
	fuzz_scenario_catalog(&script);
	each("catalog", &script, context);
	fuzz_scenario_holds(&script);
	each("holds", &script, context);
	fuzz_scenario_movements(&script);
	each("movements", &script, context);
	fuzz_scenario_channel(&script);
	each("channel", &script, context);
	free(script.bytes);

	memset(&script, 0, sizeof(script));
	fuzz_scenario_catalog(&script);
	fuzz_scenario_channel(&script);
	each("channel-only", &script, context);
	free(script.bytes);
}

/* Runs a script (fuzz_ledger's input format) on ledger; each batch's events
 * are checked with proto_event_check first and only the valid ones are
 * applied. after_batch (may be NULL) runs after every batch. Returns the
 * batch time of the last batch. */
typedef void fuzz_after_batch(struct ledger *ledger, const struct skuld_event *events,
                              const struct skuld_result *results, uint32_t count);

static inline uint64_t fuzz_script_run(struct ledger *ledger, const uint8_t *data, size_t size,
                                       fuzz_after_batch *after_batch)
{
	uint64_t now = FUZZ_T0;
	size_t offset = 0;
	const uint32_t holds_max = ledger_configuration(ledger)->holds_max;
	uint64_t *due = malloc(holds_max * sizeof(*due));
	if (due == NULL)
		abort();
	while (offset < size) {
		uint8_t control = data[offset++];
		uint32_t wanted = (control & 7u) + 1;
		now += fuzz_time_steps[(control >> 4) & 7u];
		if (control & FUZZ_CONTROL_EXPIRE) {
			struct skuld_event expire[FUZZ_BATCH_EVENTS_MAX];
			struct skuld_result results[FUZZ_BATCH_EVENTS_MAX];
			uint32_t count = ledger_expire_due(ledger, now, FUZZ_BATCH_EVENTS_MAX, due);
			for (uint32_t i = 0; i < count; i++) {
				memset(&expire[i], 0, sizeof(expire[i]));
				expire[i].kind = SKULD_EXPIRE;
				expire[i].id = due[i];
				expire[i].key.lo = due[i];
				expire[i].key.hi = 0x4558504952450000ull;
			}
			if (count > 0) {
				ledger_apply(ledger, now, LEDGER_SOURCE_SERVER, expire, count,
				             results);
				if (after_batch != NULL)
					after_batch(ledger, expire, results, count);
			}
		}
		struct skuld_event events[FUZZ_BATCH_EVENTS_MAX];
		struct skuld_result results[FUZZ_BATCH_EVENTS_MAX];
		uint32_t count = 0;
		for (uint32_t i = 0; i < wanted && size - offset >= SKULD_EVENT_SIZE; i++) {
			/* Copied into an aligned record, as the server's receive
			 * buffers hold them. */
			memcpy(&events[count], data + offset, SKULD_EVENT_SIZE);
			offset += SKULD_EVENT_SIZE;
			if (proto_event_check(&events[count]) == SKULD_OK)
				count++;
		}
		if (count == 0)
			continue;
		enum ledger_source source = (control & FUZZ_CONTROL_SERVER) ? LEDGER_SOURCE_SERVER
		                                                            : LEDGER_SOURCE_CLIENT;
		ledger_apply(ledger, now, source, events, count, results);
		if (after_batch != NULL)
			after_batch(ledger, events, results, count);
	}
	free(due);
	return now;
}

#endif /* SKULD_TESTS_FUZZ_COMMON_H */
