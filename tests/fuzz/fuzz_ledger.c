/*
 * fuzz_ledger.c — event validation and the ledger state machine on
 * arbitrary batches (docs/FUZZING.md).
 *
 * Input: fuzz_common.h's script format — batches of a control byte (events
 * in the batch, client or server source, time step, expire due holds first)
 * and up to 8 records of 128 bytes. Each record goes through
 * proto_event_check, as the server's codec does, and the valid ones are
 * applied as one batch to a small ledger (fuzz_ledger_config).
 *
 * After every batch, through the public API only:
 *   - one result per event, its index right, reserved zero, and a failed
 *     event's flags, location, quantity and available all zero
 *     (docs/LEDGER.md section 2);
 *   - every (item, location) counter in [-QMAX, QMAX]; reserved, committed,
 *     damaged, quarantine and incoming never negative; available =
 *     on_hand - reserved - committed - damaged - quarantine;
 *   - open holds within holds_max.
 * At the end: ledger_hash is the same after a snapshot save and a load into
 * a fresh ledger, and the stream is as long as ledger_snapshot_size said.
 */
#include <errno.h>
#include <inttypes.h>

#include "fuzz_common.h"
#include "ledger_snapshot.h"

static struct ledger_config config;

static void check_results(const struct skuld_event *events, const struct skuld_result *results,
                          uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct skuld_result *result = &results[i];
		FUZZ_CHECK(result->index == i, "result %u has index %u", i, result->index);
		FUZZ_CHECK(result->reserved == 0, "result %u", i);
		if (result->status != SKULD_OK) {
			FUZZ_CHECK(result->flags == 0 && result->location == 0 &&
			                   result->quantity == 0 && result->available == 0,
			           "failed result %u (%s, kind %s) carries figures", i,
			           skuld_status_name(result->status),
			           skuld_event_kind_name(events[i].kind));
		}
	}
}

static void check_level(const struct ledger_level *level, uint32_t item, uint32_t location)
{
	const int64_t counters[] = {level->on_hand,  level->reserved,   level->committed,
	                            level->damaged,  level->quarantine, level->incoming,
	                            level->available};
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		FUZZ_CHECK(counters[i] >= -LEDGER_QUANTITY_MAX &&
		                   counters[i] <= LEDGER_QUANTITY_MAX,
		           "item %u location %u counter %zu is %" PRId64, item, location, i,
		           counters[i]);
	}
	FUZZ_CHECK(level->reserved >= 0 && level->committed >= 0 && level->damaged >= 0 &&
	                   level->quarantine >= 0 && level->incoming >= 0,
	           "item %u location %u: reserved %" PRId64 " committed %" PRId64
	           " damaged %" PRId64 " quarantine %" PRId64 " incoming %" PRId64,
	           item, location, level->reserved, level->committed, level->damaged,
	           level->quarantine, level->incoming);
	FUZZ_CHECK(level->available == level->on_hand - level->reserved - level->committed -
	                                       level->damaged - level->quarantine,
	           "item %u location %u: available %" PRId64 " on_hand %" PRId64, item, location,
	           level->available, level->on_hand);
}

static void check_ledger(struct ledger *ledger, const struct skuld_event *events,
                         const struct skuld_result *results, uint32_t count)
{
	check_results(events, results, count);
	for (uint32_t item = 1; item <= config.items_max; item++) {
		for (uint32_t location = 1; location <= config.locations_max; location++) {
			struct ledger_level level;
			if (ledger_level(ledger, item, location, &level) == SKULD_OK)
				check_level(&level, item, location);
		}
	}
	FUZZ_CHECK(ledger_holds_open(ledger) <= config.holds_max, "%u holds open",
	           ledger_holds_open(ledger));
}

/* ---- Snapshot round trip ------------------------------------------------- */

struct stream {
	uint8_t *bytes;
	size_t size;
	size_t capacity;
	size_t offset;
};

static int stream_write(void *context, const void *bytes, size_t size)
{
	struct stream *stream = context;
	if (stream->size + size > stream->capacity) {
		size_t capacity = stream->capacity ? stream->capacity : 65536;
		while (capacity < stream->size + size)
			capacity *= 2;
		uint8_t *grown = realloc(stream->bytes, capacity);
		if (grown == NULL)
			return -ENOMEM;
		stream->bytes = grown;
		stream->capacity = capacity;
	}
	memcpy(stream->bytes + stream->size, bytes, size);
	stream->size += size;
	return 0;
}

static int stream_read(void *context, void *bytes, size_t size)
{
	struct stream *stream = context;
	if (size > stream->size - stream->offset)
		return -ENODATA;
	memcpy(bytes, stream->bytes + stream->offset, size);
	stream->offset += size;
	return 0;
}

static void check_round_trip(const struct ledger *ledger)
{
	struct stream stream = {0};
	struct snapshot_sink sink = {.write = stream_write, .context = &stream};
	FUZZ_CHECK(ledger_snapshot_save(ledger, &sink) == 0, "save failed");
	FUZZ_CHECK(stream.size == ledger_snapshot_size(ledger),
	           "saved %zu bytes, ledger_snapshot_size said %" PRIu64, stream.size,
	           ledger_snapshot_size(ledger));
	struct ledger *copy = NULL;
	FUZZ_CHECK(ledger_create(&config, &copy) == 0, "ledger_create");
	struct snapshot_source source = {.read = stream_read, .context = &stream};
	char reason[256] = "";
	int ret = ledger_snapshot_load(copy, &source, reason, sizeof(reason));
	FUZZ_CHECK(ret == 0, "load of a saved snapshot: %d (%s)", ret, reason);
	FUZZ_CHECK(stream.offset == stream.size, "load left %zu bytes",
	           stream.size - stream.offset);
	FUZZ_CHECK(ledger_hash(copy) == ledger_hash(ledger),
	           "hash %016" PRIx64 " after the round trip, %016" PRIx64 " before",
	           ledger_hash(copy), ledger_hash(ledger));
	ledger_destroy(copy);
	free(stream.bytes);
}

/* ---- Seeds ---------------------------------------------------------------- */

static void seed_script(const char *name, const struct fuzz_script *script, void *context)
{
	fuzz_seed_write(context, name, script->bytes, script->size);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_ledger_config(&config);
	const char *dir = fuzz_seed_dir();
	if (dir != NULL) {
		fuzz_scripts(seed_script, (void *)dir);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ledger *ledger = NULL;
	FUZZ_CHECK(ledger_create(&config, &ledger) == 0, "ledger_create");
	fuzz_script_run(ledger, data, size, check_ledger);
	check_round_trip(ledger);
	ledger_destroy(ledger);
	return 0;
}
