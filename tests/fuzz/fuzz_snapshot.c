/*
 * fuzz_snapshot.c — ledger_snapshot_load on arbitrary bytes from a memory
 * source (docs/FUZZING.md).
 *
 * Input: a snapshot stream. It is loaded into a fresh ledger of the small
 * configuration (fuzz_ledger_config, whose fingerprint the seeds carry).
 * A refusal must be -EBADMSG or -ENODATA with a reason; nothing may crash,
 * leak or assert. A stream that loads must describe a ledger that saves
 * and loads again to the same ledger_hash, with a stream as long as
 * ledger_snapshot_size said.
 *
 * Seeds: the streams of ledgers after fuzz_common.h's scenarios (catalog,
 * holds, movements, a channel with listings, acknowledgements and
 * exceptions).
 */
#include <errno.h>
#include <inttypes.h>

#include "fuzz_common.h"
#include "ledger_snapshot.h"

static struct ledger_config config;

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

static void save(const struct ledger *ledger, struct stream *stream)
{
	memset(stream, 0, sizeof(*stream));
	struct snapshot_sink sink = {.write = stream_write, .context = stream};
	FUZZ_CHECK(ledger_snapshot_save(ledger, &sink) == 0, "save failed");
	FUZZ_CHECK(stream->size == ledger_snapshot_size(ledger),
	           "saved %zu bytes, ledger_snapshot_size said %" PRIu64, stream->size,
	           ledger_snapshot_size(ledger));
}

/* ---- Seeds ---------------------------------------------------------------- */

static void seed_script(const char *name, const struct fuzz_script *script, void *context)
{
	struct ledger *ledger = NULL;
	FUZZ_CHECK(ledger_create(&config, &ledger) == 0, "ledger_create");
	fuzz_script_run(ledger, script->bytes, script->size, NULL);
	struct stream stream;
	save(ledger, &stream);
	fuzz_seed_write(context, name, stream.bytes, stream.size);
	free(stream.bytes);
	ledger_destroy(ledger);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_ledger_config(&config);
	const char *dir = fuzz_seed_dir();
	if (dir != NULL) {
		struct ledger *empty = NULL;
		FUZZ_CHECK(ledger_create(&config, &empty) == 0, "ledger_create");
		struct stream stream;
		save(empty, &stream);
		fuzz_seed_write(dir, "empty", stream.bytes, stream.size);
		free(stream.bytes);
		ledger_destroy(empty);
		fuzz_scripts(seed_script, (void *)dir);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ledger *ledger = NULL;
	FUZZ_CHECK(ledger_create(&config, &ledger) == 0, "ledger_create");
	struct stream input = {.bytes = (uint8_t *)data, .size = size};
	struct snapshot_source source = {.read = stream_read, .context = &input};
	char reason[256] = "";
	int ret = ledger_snapshot_load(ledger, &source, reason, sizeof(reason));
	if (ret != 0) {
		FUZZ_CHECK(ret == -EBADMSG || ret == -ENODATA, "load returned %d (%s)", ret,
		           reason);
		FUZZ_CHECK(reason[0] != '\0', "refused (%d) without a reason", ret);
		ledger_destroy(ledger);
		return 0;
	}
	/* Loaded: the ledger must survive its own round trip. */
	uint64_t hash = ledger_hash(ledger);
	struct stream saved;
	save(ledger, &saved);
	struct ledger *copy = NULL;
	FUZZ_CHECK(ledger_create(&config, &copy) == 0, "ledger_create");
	struct snapshot_source again = {.read = stream_read, .context = &saved};
	ret = ledger_snapshot_load(copy, &again, reason, sizeof(reason));
	FUZZ_CHECK(ret == 0, "a loaded ledger's own snapshot is refused: %d (%s)", ret, reason);
	FUZZ_CHECK(ledger_hash(copy) == hash,
	           "hash %016" PRIx64 " after the round trip, %016" PRIx64, ledger_hash(copy),
	           hash);
	ledger_destroy(copy);
	free(saved.bytes);
	ledger_destroy(ledger);
	return 0;
}
