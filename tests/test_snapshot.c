/*
 * test_snapshot.c — the ledger snapshot stream (server/core/ledger_snapshot.h).
 *
 * Round trip: the model test's seeded generator (tests/ledger_model.c) drives
 * a ledger through random states, every kind, bundles, chains, expiries,
 * full tables; at many points the ledger is saved and loaded into a fresh
 * ledger of the same configuration. The copy must have the same
 * ledger_hash, and from then on the original and the copy are fed the same
 * batches (and asked for the same due holds): every result, every due list
 * and every hash after every batch must be equal.
 *
 * Refusals: every truncation of a stream, flips of the bits that frame it,
 * a stream of another configuration or version, a duplicated record, and a
 * load into a ledger that is not fresh are refused with a reason; random
 * bit flips anywhere are refused or load into a ledger that then takes
 * further batches without tripping an assertion (this suite runs under the
 * sanitizers too). The file layer (server/snapshot.c) checksums the stream;
 * the loader must still never trust it.
 *
 * SKULD_SNAPSHOT_SEED=<n> changes the seed, SKULD_SNAPSHOT_OPS=<n> the
 * client events of the round-trip run.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "ledger_model.h"
#include "ledger_snapshot.h"
#include "log.h"

/* ---- Memory sink and source ------------------------------------------------ */

struct stream {
	uint8_t *bytes;
	size_t size;
	size_t capacity;
	size_t offset;     /* read position */
	size_t fail_after; /* write: fail once this many bytes were taken (0: never) */
};

static int stream_write(void *context, const void *bytes, size_t size)
{
	struct stream *stream = context;
	if (stream->fail_after != 0 && stream->size + size > stream->fail_after)
		return -ENOSPC;
	if (stream->size + size > stream->capacity) {
		size_t capacity = stream->capacity ? stream->capacity : 4096;
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

static void stream_free(struct stream *stream)
{
	free(stream->bytes);
	memset(stream, 0, sizeof(*stream));
}

static void save(const struct ledger *ledger, struct stream *stream)
{
	memset(stream, 0, sizeof(*stream));
	struct snapshot_sink sink = {.write = stream_write, .context = stream};
	cr_assert_eq(ledger_snapshot_save(ledger, &sink), 0);
	cr_assert_eq(stream->size, ledger_snapshot_size(ledger), "size %zu, predicted %" PRIu64,
	             stream->size, ledger_snapshot_size(ledger));
}

/* Loads size bytes of bytes into a fresh ledger of config; returns the
 * status, the ledger (or NULL) through *out and the reason. */
static int load(const struct ledger_config *config, const uint8_t *bytes, size_t size,
                struct ledger **out, char *reason, size_t reason_size)
{
	struct ledger *ledger;
	cr_assert_eq(ledger_create(config, &ledger), 0);
	struct stream stream = {.bytes = (uint8_t *)bytes, .size = size};
	struct snapshot_source source = {.read = stream_read, .context = &stream};
	int ret = ledger_snapshot_load(ledger, &source, reason, reason_size);
	if (ret == 0) {
		cr_assert_eq(stream.offset, size, "load left %zu bytes unread",
		             size - stream.offset);
		*out = ledger;
	} else {
		ledger_destroy(ledger);
		*out = NULL;
	}
	return ret;
}

/* ---- Driving two ledgers with the generator ------------------------------- */

struct twin {
	struct run run;
	struct ledger *copy; /* loaded from a snapshot of run.ledger; NULL before */
	uint64_t snapshots;
	uint64_t batches_compared;
};

static void twin_fail(struct twin *twin, const char *what, uint32_t index)
{
	cr_assert_fail("seed %#" PRIx64 " batch %" PRIu64 " epoch %u: %s (event %u)",
	               twin->run.options->seed, twin->run.batch, twin->run.epoch, what, index);
}

/* Applies a batch to the model, the ledger and its copy; compares the
 * ledger's results and hash with the copy's. */
static void twin_batch(struct twin *twin, uint64_t timestamp_ns, enum ledger_source source,
                       const struct skuld_event *events, uint32_t count)
{
	struct run *run = &twin->run;
	struct skuld_result model_results[CFG_BATCH];
	struct skuld_result results[CFG_BATCH];
	struct skuld_result copy_results[CFG_BATCH];
	model_apply(run->model, timestamp_ns, source, events, count, model_results);
	ledger_apply(run->ledger, timestamp_ns, source, events, count, results);
	record_statistics(run, source, events, count, results);
	run->batch++;
	if (twin->copy == NULL)
		return;
	ledger_apply(twin->copy, timestamp_ns, source, events, count, copy_results);
	for (uint32_t i = 0; i < count; i++) {
		if (memcmp(&results[i], &copy_results[i], sizeof(results[i])) != 0)
			twin_fail(twin, "the loaded copy gives another result", i);
	}
	if (ledger_hash(run->ledger) != ledger_hash(twin->copy))
		twin_fail(twin, "the loaded copy's hash differs after the batch", 0);
	twin->batches_compared++;
}

/* The server's expiry: due holds listed by both, then an EXPIRE batch. */
static void twin_expiry(struct twin *twin)
{
	struct run *run = &twin->run;
	uint64_t due[CFG_HOLDS + 1];
	uint64_t copy_due[CFG_HOLDS + 1];
	uint32_t max = 1 + rng_below(run, CFG_HOLDS);
	uint32_t found = ledger_expire_due(run->ledger, run->now, max, due);
	if (twin->copy != NULL) {
		uint32_t copy_found = ledger_expire_due(twin->copy, run->now, max, copy_due);
		if (copy_found != found || memcmp(due, copy_due, found * sizeof(due[0])) != 0)
			twin_fail(twin, "the loaded copy lists other due holds", found);
	}
	if (found == 0)
		return;
	struct skuld_event events[CFG_BATCH];
	for (uint32_t i = 0; i < found; i++) {
		events[i] = event_new(run, SKULD_EXPIRE);
		events[i].id = due[i];
	}
	twin_batch(twin, run->now, LEDGER_SOURCE_SERVER, events, found);
}

/* Saves the ledger and loads the copy from it. */
static void twin_snapshot(struct twin *twin)
{
	struct run *run = &twin->run;
	struct stream stream;
	save(run->ledger, &stream);
	struct ledger_config config;
	model_config(&config);
	if (twin->copy != NULL)
		ledger_destroy(twin->copy);
	char reason[256];
	int ret = load(&config, stream.bytes, stream.size, &twin->copy, reason, sizeof(reason));
	cr_assert_eq(ret, 0, "seed %#" PRIx64 " batch %" PRIu64 ": load refused: %s",
	             run->options->seed, run->batch, reason);
	cr_assert_eq(ledger_hash(twin->copy), ledger_hash(run->ledger),
	             "seed %#" PRIx64 " batch %" PRIu64 ": hash differs right after load",
	             run->options->seed, run->batch);
	/* A snapshot of the copy is byte for byte the snapshot it came from
	 * (except record orders the format leaves open: compare sizes). */
	struct stream again;
	save(twin->copy, &again);
	cr_assert_eq(again.size, stream.size);
	stream_free(&again);
	stream_free(&stream);
	twin->snapshots++;
}

static void twin_epoch(struct twin *twin)
{
	struct run *run = &twin->run;
	if (run->ledger != NULL)
		ledger_destroy(run->ledger);
	if (twin->copy != NULL)
		ledger_destroy(twin->copy);
	twin->copy = NULL;
	struct ledger_config config;
	model_config(&config);
	cr_assert_eq(ledger_create(&config, &run->ledger), 0);
	memset(run->model, 0, sizeof(*run->model));
	run->epoch++;
	run->epoch_batch = 0;
	run->now += 1000 * NS_PER_S;
	/* A snapshot of a fresh ledger first: an empty stream loads too. */
	twin_snapshot(twin);
	struct skuld_event events[CFG_BATCH];
	uint32_t count = epoch_setup_catalog(run, events);
	twin_batch(twin, run->now, LEDGER_SOURCE_CLIENT, events, count);
	count = epoch_setup_stock(run, events);
	twin_batch(twin, run->now, LEDGER_SOURCE_CLIENT, events, count);
}

static void twin_run(struct twin *twin, const struct run_options *options)
{
	struct run *run = &twin->run;
	memset(twin, 0, sizeof(*twin));
	run->options = options;
	run->rng = options->seed;
	run->now = TIME_START;
	run->model = calloc(1, sizeof(*run->model));
	cr_assert_not_null(run->model);
	twin_epoch(twin);
	struct skuld_event events[CFG_BATCH];
	while (run->client_events < options->client_events_min) {
		if (options->epoch_batches != 0 && run->epoch_batch == options->epoch_batches)
			twin_epoch(twin);
		advance_time(run);
		if (rng_percent(run, 40))
			twin_expiry(twin);
		/* A snapshot every few batches, at random points: between a
		 * batch and its expiry, right after an epoch's set-up, ... */
		if (rng_percent(run, 7))
			twin_snapshot(twin);
		uint32_t count = generate_batch(run, events);
		twin_batch(twin, batch_timestamp(run), LEDGER_SOURCE_CLIENT, events, count);
		run->epoch_batch++;
	}
}

static void twin_free(struct twin *twin)
{
	if (twin->run.ledger != NULL)
		ledger_destroy(twin->run.ledger);
	if (twin->copy != NULL)
		ledger_destroy(twin->copy);
	free(twin->run.model);
	memset(twin, 0, sizeof(*twin));
}

#define SEED_DEFAULT 0x5eed5a4a5407ull

Test(snapshot, round_trip_keeps_hash_and_behaviour, .timeout = 600)
{
	struct run_options options = {
	        .seed = env_u64("SKULD_SNAPSHOT_SEED", SEED_DEFAULT),
	        .client_events_min = env_u64("SKULD_SNAPSHOT_OPS", 150000),
	        .epoch_batches = 80,
	};
	static struct twin twin;
	twin_run(&twin, &options);
	fprintf(stderr,
	        "snapshot round trip: seed %#" PRIx64 ", %" PRIu64 " client events, %" PRIu64
	        " snapshots loaded, %" PRIu64 " batches compared after a load, %u epochs\n",
	        options.seed, twin.run.client_events, twin.snapshots, twin.batches_compared,
	        twin.run.epoch);
	cr_assert_gt(twin.snapshots, 100);
	cr_assert_gt(twin.batches_compared, 1000);
	twin_free(&twin);
}

/* ---- Refusals ------------------------------------------------------------- */

/* A ledger in a busy state: one long epoch of the generator. */
static void busy_stream(struct stream *stream, uint64_t seed)
{
	struct run_options options = {.seed = seed, .client_events_min = 20000};
	static struct twin twin;
	twin_run(&twin, &options);
	save(twin.run.ledger, stream);
	twin_free(&twin);
}

/* Offsets of the part headers of a stream (the format: a 64-byte header,
 * then parts of a 16-byte header and count x record size bytes). */
static uint32_t part_offsets(const struct stream *stream, size_t *offsets, uint32_t max)
{
	size_t offset = 64;
	uint32_t parts = 0;
	while (parts < max && offset + 16 <= stream->size) {
		uint32_t header[4];
		memcpy(header, stream->bytes + offset, sizeof(header));
		offsets[parts++] = offset;
		if (header[0] == 16)
			break;
		offset += 16 + (size_t)header[1] * header[2];
	}
	return parts;
}

Test(snapshot, busy_state_has_every_part)
{
	struct stream stream;
	busy_stream(&stream, 0xb05e);
	size_t offsets[32];
	uint32_t parts = part_offsets(&stream, offsets, 32);
	cr_assert_eq(parts, 16);
	uint32_t nonempty = 0;
	for (uint32_t i = 0; i < parts; i++) {
		uint32_t header[4];
		memcpy(header, stream.bytes + offsets[i], sizeof(header));
		cr_assert_eq(header[0], i + 1, "part %u has tag %u", i, header[0]);
		nonempty += header[2] > 0;
	}
	/* Every table but possibly one or two is in use in a busy state. */
	cr_assert_geq(nonempty, 12, "only %u parts have records", nonempty);
	stream_free(&stream);
}

Test(snapshot, every_truncation_is_refused)
{
	struct stream stream;
	busy_stream(&stream, 0x7a0c);
	struct ledger_config config;
	model_config(&config);
	for (size_t size = 0; size < stream.size; size++) {
		struct ledger *ledger;
		char reason[256] = "";
		int ret = load(&config, stream.bytes, size, &ledger, reason, sizeof(reason));
		cr_assert(ret == -ENODATA || ret == -EBADMSG,
		          "a stream cut to %zu of %zu bytes: %d (%s)", size, stream.size, ret,
		          reason);
		cr_assert_neq(reason[0], '\0', "no reason for a cut at %zu", size);
	}
	stream_free(&stream);
}

Test(snapshot, flipped_framing_bits_are_refused)
{
	struct stream stream;
	busy_stream(&stream, 0xf11b);
	struct ledger_config config;
	model_config(&config);
	size_t offsets[32];
	uint32_t parts = part_offsets(&stream, offsets, 32);
	cr_assert_eq(parts, 16);
	/* Stream header: magic, version, header size, fingerprint, reserved;
	 * each part header: tag, record size, reserved. */
	size_t positions[64 + 16 * 12];
	uint32_t count = 0;
	for (size_t i = 0; i < 24; i++)
		positions[count++] = i;
	for (size_t i = 36; i < 64; i++)
		positions[count++] = i;
	for (uint32_t p = 0; p < parts; p++) {
		for (size_t i = 0; i < 8; i++)
			positions[count++] = offsets[p] + i;
		for (size_t i = 12; i < 16; i++)
			positions[count++] = offsets[p] + i;
	}
	for (uint32_t n = 0; n < count; n++) {
		for (int bit = 0; bit < 8; bit++) {
			stream.bytes[positions[n]] ^= (uint8_t)(1u << bit);
			struct ledger *ledger;
			char reason[256] = "";
			int ret = load(&config, stream.bytes, stream.size, &ledger, reason,
			               sizeof(reason));
			stream.bytes[positions[n]] ^= (uint8_t)(1u << bit);
			cr_assert(ret == -EBADMSG || ret == -ENODATA,
			          "bit %d of byte %zu flipped: loaded (%d)", bit, positions[n],
			          ret);
			cr_assert_neq(reason[0], '\0');
		}
	}
	stream_free(&stream);
}

/* Random flips anywhere: refused, or a ledger that survives more batches. */
Test(snapshot, random_bit_flips_never_crash, .timeout = 300)
{
	struct stream stream;
	busy_stream(&stream, 0xf1195);
	struct ledger_config config;
	model_config(&config);
	uint64_t rng = 0x5eedf11bull;
	uint32_t refused = 0;
	uint32_t loaded = 0;
	static struct twin driver;
	struct run_options options = {.seed = 0xd71e, .client_events_min = 0};
	twin_run(&driver, &options);
	for (uint32_t trial = 0; trial < 3000; trial++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		size_t position = (size_t)(rng >> 33) % stream.size;
		uint8_t mask = (uint8_t)(1u << ((rng >> 20) & 7));
		if ((rng >> 16 & 3) == 0) /* sometimes a whole byte */
			mask = (uint8_t)(rng >> 40) | 1;
		stream.bytes[position] ^= mask;
		struct ledger *ledger;
		char reason[256] = "";
		int ret = load(&config, stream.bytes, stream.size, &ledger, reason, sizeof(reason));
		stream.bytes[position] ^= mask;
		if (ret != 0) {
			cr_assert(ret == -EBADMSG || ret == -ENODATA, "%d", ret);
			cr_assert_neq(reason[0], '\0');
			refused++;
			continue;
		}
		loaded++;
		/* What was loaded must take further work like any ledger. */
		struct skuld_event events[CFG_BATCH];
		struct skuld_result results[CFG_BATCH];
		uint64_t due[CFG_HOLDS];
		for (uint32_t b = 0; b < 20; b++) {
			advance_time(&driver.run);
			uint32_t count = generate_batch(&driver.run, events);
			ledger_apply(ledger, batch_timestamp(&driver.run), LEDGER_SOURCE_CLIENT,
			             events, count, results);
			uint32_t found = ledger_expire_due(ledger, driver.run.now + b * NS_PER_S,
			                                   CFG_HOLDS, due);
			for (uint32_t i = 0; i < found; i++) {
				events[i] = event_new(&driver.run, SKULD_EXPIRE);
				events[i].id = due[i];
			}
			ledger_apply(ledger, driver.run.now + b * NS_PER_S, LEDGER_SOURCE_SERVER,
			             events, found, results);
		}
		ledger_hash(ledger);
		ledger_destroy(ledger);
	}
	fprintf(stderr, "snapshot bit flips: %u refused, %u loaded and kept working\n", refused,
	        loaded);
	cr_assert_gt(refused, 0);
	twin_free(&driver);
	stream_free(&stream);
}

Test(snapshot, another_configuration_is_refused)
{
	struct stream stream;
	busy_stream(&stream, 0xc0f1);
	struct ledger_config config;
	model_config(&config);
	config.holds_max += 1;
	struct ledger *ledger;
	char reason[256] = "";
	int ret = load(&config, stream.bytes, stream.size, &ledger, reason, sizeof(reason));
	cr_assert_eq(ret, -EBADMSG);
	cr_assert_not_null(strstr(reason, "configuration"), "%s", reason);
	stream_free(&stream);
}

Test(snapshot, another_version_is_refused)
{
	struct stream stream;
	busy_stream(&stream, 0x7e55);
	uint32_t version = LEDGER_SNAPSHOT_VERSION + 1;
	memcpy(stream.bytes + 8, &version, sizeof(version));
	struct ledger_config config;
	model_config(&config);
	struct ledger *ledger;
	char reason[256] = "";
	cr_assert_eq(load(&config, stream.bytes, stream.size, &ledger, reason, sizeof(reason)),
	             -EBADMSG);
	cr_assert_not_null(strstr(reason, "version 4"), "%s", reason);
	stream_free(&stream);
}

Test(snapshot, duplicated_records_are_refused)
{
	struct stream stream;
	busy_stream(&stream, 0xd0b1);
	struct ledger_config config;
	model_config(&config);
	size_t offsets[32];
	cr_assert_eq(part_offsets(&stream, offsets, 32), 16);
	/* The second record of a part made a copy of the first: STOCK (10),
	 * SKUS (6), KEYS (15), HOLDS_OPEN or HOLDS_CLOSED (12, 11). */
	static const uint32_t tags[] = {10, 6, 15, 12, 11, 2, 1};
	uint32_t tried = 0;
	for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
		uint32_t header[4];
		memcpy(header, stream.bytes + offsets[tags[t] - 1], sizeof(header));
		if (header[2] < 2)
			continue;
		uint8_t *first = stream.bytes + offsets[tags[t] - 1] + 16;
		uint8_t *saved = malloc(header[1]);
		memcpy(saved, first + header[1], header[1]);
		memcpy(first + header[1], first, header[1]);
		struct ledger *ledger;
		char reason[256] = "";
		int ret = load(&config, stream.bytes, stream.size, &ledger, reason, sizeof(reason));
		memcpy(first + header[1], saved, header[1]);
		free(saved);
		cr_assert_eq(ret, -EBADMSG, "part %u with a duplicate record loaded", tags[t]);
		tried++;
	}
	cr_assert_geq(tried, 4);
	stream_free(&stream);
}

Test(snapshot, load_needs_a_fresh_ledger)
{
	struct ledger_config config;
	model_config(&config);
	struct ledger *ledger;
	cr_assert_eq(ledger_create(&config, &ledger), 0);
	struct stream stream;
	save(ledger, &stream);
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.kind = SKULD_LOCATION_DEFINE;
	event.location = 1;
	event.key.lo = 1;
	snprintf(event.code, sizeof(event.code), "L1");
	struct skuld_result result;
	ledger_apply(ledger, 0, LEDGER_SOURCE_CLIENT, &event, 1, &result);
	cr_assert_eq(result.status, SKULD_OK);
	struct snapshot_source source = {.read = stream_read, .context = &stream};
	char reason[128] = "";
	cr_assert_eq(ledger_snapshot_load(ledger, &source, reason, sizeof(reason)), -EINVAL);
	cr_assert_neq(reason[0], '\0');
	ledger_destroy(ledger);
	stream_free(&stream);
}

Test(snapshot, sink_errors_end_the_save)
{
	struct stream stream;
	busy_stream(&stream, 0x5e4c);
	struct ledger_config config;
	model_config(&config);
	struct ledger *ledger;
	cr_assert_eq(load(&config, stream.bytes, stream.size, &ledger, NULL, 0), 0);
	for (size_t after = 1; after < stream.size; after += stream.size / 7) {
		struct stream failing = {.fail_after = after};
		struct snapshot_sink sink = {.write = stream_write, .context = &failing};
		cr_assert_eq(ledger_snapshot_save(ledger, &sink), -ENOSPC);
		cr_assert_leq(failing.size, after);
		stream_free(&failing);
	}
	ledger_destroy(ledger);
	stream_free(&stream);
}

Test(snapshot, fingerprint_covers_every_field)
{
	struct ledger_config base;
	ledger_config_default(&base);
	uint64_t fingerprint = ledger_config_fingerprint(&base);
	uint32_t *words = (uint32_t *)&base;
	for (size_t i = 0; i < sizeof(base) / sizeof(uint32_t); i++) {
		struct ledger_config changed = base;
		uint32_t *changed_words = (uint32_t *)&changed;
		/* Skip padding: a word no field uses changes nothing. */
		changed_words[i] ^= 1;
		if (i == 13 || i == 27) /* padding after closed_holds_max and count_off_percent */
			continue;
		cr_assert_neq(ledger_config_fingerprint(&changed), fingerprint, "word %zu", i);
	}
	(void)words;
}

/* ---- The log read from a snapshot's position (log_reader_seek) ------------ */

#define SEEK_WRITES 10u

static struct {
	char dir[64];
	struct log_position after[SEEK_WRITES + 1]; /* after[k]: the log after write k */
	uint64_t first_event[SEEK_WRITES + 1];      /* first event of write k */
} seek_log;

static void seek_cleanup(void)
{
	if (seek_log.dir[0] == '\0')
		return;
	DIR *dir = opendir(seek_log.dir);
	struct dirent *entry;
	while (dir != NULL && (entry = readdir(dir)) != NULL) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", seek_log.dir, entry->d_name);
		if (entry->d_name[0] != '.')
			unlink(path);
	}
	if (dir != NULL)
		closedir(dir);
	rmdir(seek_log.dir);
	memset(&seek_log, 0, sizeof(seek_log));
}

/* A log of SEEK_WRITES writes of one record each (1 + k % 3 events), three
 * writes per 16 KiB segment, and the position after every write. */
static void seek_log_make(void)
{
	snprintf(seek_log.dir, sizeof(seek_log.dir), "/tmp/skuld-test-seek-XXXXXX");
	cr_assert_not_null(mkdtemp(seek_log.dir));
	struct log_writer_config config = {
	        .dir = seek_log.dir,
	        .segment_size = 16384,
	        .write_size_max = 4096,
	        .log_id = {.lo = 0x7365656b, .hi = 0x6c6f67},
	};
	struct log_position empty = {.write_next = 1, .event_next = 1};
	struct log_writer *writer;
	cr_assert_eq(log_writer_init(&writer, &config, &empty), 0);
	for (uint32_t k = 1; k <= SEEK_WRITES; k++) {
		struct skuld_event events[3];
		struct skuld_result results[3];
		memset(events, 0, sizeof(events));
		memset(results, 0, sizeof(results));
		uint32_t count = 1 + k % 3;
		for (uint32_t i = 0; i < count; i++) {
			events[i].kind = SKULD_RECEIVE;
			events[i].key.lo = k * 10 + i;
			results[i].index = i;
		}
		struct log_record_info info = {.timestamp_ns = k, .operation = SKULD_OP_SUBMIT};
		cr_assert_eq(log_writer_append(writer, &info, events, results, count,
		                               &seek_log.first_event[k]),
		             0);
		cr_assert_eq(log_writer_flush(writer), 0);
		log_writer_position(writer, &seek_log.after[k]);
	}
	log_writer_close(writer);
}

/* Reads from start to the end: records seen (their writes' first events in
 * firsts), and how it ended. */
static enum log_status seek_walk(const struct log_position *start, uint64_t *firsts,
                                 uint32_t *count, struct log_position *end, char *reason)
{
	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, seek_log.dir, NULL), 0);
	cr_assert_eq(log_reader_seek(reader, start), 0);
	struct log_record record;
	enum log_status status;
	*count = 0;
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD)
		firsts[(*count)++] = record.header->event_first;
	const struct log_outcome *outcome = log_reader_outcome(reader);
	snprintf(reason, LOG_REASON_SIZE, "%s", outcome->reason);
	if (end != NULL && (status == LOG_END_CLEAN || status == LOG_END_TORN))
		cr_assert_eq(log_reader_position(reader, end), 0);
	log_reader_close(reader);
	return status;
}

Test(log_seek, every_write_boundary_resumes_the_rest, .fini = seek_cleanup)
{
	seek_log_make();
	for (uint32_t k = 1; k <= SEEK_WRITES; k++) {
		uint64_t firsts[SEEK_WRITES];
		uint32_t count = 0;
		struct log_position end;
		char reason[LOG_REASON_SIZE];
		enum log_status status =
		        seek_walk(&seek_log.after[k], firsts, &count, &end, reason);
		cr_assert_eq(status, LOG_END_CLEAN, "after write %u: %s", k, reason);
		cr_assert_eq(count, SEEK_WRITES - k, "after write %u", k);
		for (uint32_t i = 0; i < count; i++)
			cr_assert_eq(firsts[i], seek_log.first_event[k + 1 + i]);
		const struct log_position *last = &seek_log.after[SEEK_WRITES];
		cr_assert_eq(end.segment, last->segment);
		cr_assert_eq(end.offset, last->offset);
		cr_assert_eq(end.write_next, last->write_next);
		cr_assert_eq(end.event_next, last->event_next);
		cr_assert_eq(end.checksum_prev, last->checksum_prev);
	}
}

Test(log_seek, a_position_the_log_does_not_continue_is_corrupt, .fini = seek_cleanup)
{
	seek_log_make();
	uint64_t firsts[SEEK_WRITES];
	uint32_t count = 0;
	char reason[LOG_REASON_SIZE];
	struct log_position start = seek_log.after[4];
	start.checksum_prev ^= 1;
	cr_assert_eq(seek_walk(&start, firsts, &count, NULL, reason), LOG_CORRUPT);
	cr_assert_not_null(strstr(reason, "chain broken"), "%s", reason);
	start = seek_log.after[4];
	start.write_next += 1;
	cr_assert_eq(seek_walk(&start, firsts, &count, NULL, reason), LOG_CORRUPT);
	cr_assert_not_null(strstr(reason, "out of sequence"), "%s", reason);
	start = seek_log.after[4];
	start.log_id.lo ^= 1;
	cr_assert_eq(seek_walk(&start, firsts, &count, NULL, reason), LOG_CORRUPT);
	cr_assert_not_null(strstr(reason, "another log"), "%s", reason);
	/* A position before its segment's first write: not this log's. */
	start = seek_log.after[7]; /* segment 3 starts with write 7 */
	start.write_next = seek_log.after[2].write_next;
	start.event_next = seek_log.after[2].event_next;
	cr_assert_eq(seek_walk(&start, firsts, &count, NULL, reason), LOG_CORRUPT);
}

Test(log_seek, segments_before_the_position_are_not_read, .fini = seek_cleanup)
{
	seek_log_make();
	char path[128];
	snprintf(path, sizeof(path), "%s/log-0000000000000001.skl", seek_log.dir);
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "garbage!", 8, 0), 8);
	close(fd);
	uint64_t firsts[SEEK_WRITES];
	uint32_t count = 0;
	char reason[LOG_REASON_SIZE];
	cr_assert_eq(seek_walk(&seek_log.after[5], firsts, &count, NULL, reason), LOG_END_CLEAN,
	             "%s", reason);
	cr_assert_eq(count, SEEK_WRITES - 5);
	/* The start segment itself missing, or a later one: corrupt. */
	snprintf(path, sizeof(path), "%s/log-0000000000000003.skl", seek_log.dir);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(seek_walk(&seek_log.after[7], firsts, &count, NULL, reason), LOG_CORRUPT);
	cr_assert_not_null(strstr(reason, "missing"), "%s", reason);
	cr_assert_eq(seek_walk(&seek_log.after[5], firsts, &count, NULL, reason), LOG_CORRUPT);
	cr_assert_not_null(strstr(reason, "missing"), "%s", reason);
	snprintf(path, sizeof(path), "%s/log-0000000000000004.skl", seek_log.dir);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(seek_walk(&seek_log.after[7], firsts, &count, NULL, reason), LOG_CORRUPT);
	cr_assert_not_null(strstr(reason, "where the walk resumes, is missing"), "%s", reason);
}

Test(log_seek, a_torn_write_after_the_position_is_discarded, .fini = seek_cleanup)
{
	seek_log_make();
	/* Tear the last write (segment 4, the first write there). */
	const struct log_position *before = &seek_log.after[SEEK_WRITES - 1];
	char path[128];
	snprintf(path, sizeof(path), "%s/log-0000000000000004.skl", seek_log.dir);
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "torn", 4, 4096 + 200), 4);
	close(fd);
	uint64_t firsts[SEEK_WRITES];
	uint32_t count = 0;
	struct log_position end;
	char reason[LOG_REASON_SIZE];
	cr_assert_eq(seek_walk(&seek_log.after[6], firsts, &count, &end, reason), LOG_END_TORN);
	cr_assert_eq(count, SEEK_WRITES - 7);
	cr_assert_eq(end.segment, 4);
	cr_assert_eq(end.offset, 4096);
	cr_assert_eq(end.write_next, before->write_next);
	cr_assert_eq(end.checksum_prev, before->checksum_prev);
}

Test(log_seek, bad_positions_are_refused)
{
	struct log_reader *reader;
	char dir[] = "/tmp/skuld-test-seek-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(log_reader_open(&reader, dir, NULL), 0);
	struct log_position good = {.segment = 1,
	                            .offset = 4096,
	                            .write_next = 2,
	                            .event_next = 2,
	                            .log_id = {.lo = 1}};
	struct log_position bad = good;
	bad.segment = 0;
	cr_assert_eq(log_reader_seek(reader, &bad), -EINVAL);
	bad = good;
	bad.offset = 4097;
	cr_assert_eq(log_reader_seek(reader, &bad), -EINVAL);
	bad = good;
	bad.offset = 0;
	cr_assert_eq(log_reader_seek(reader, &bad), -EINVAL);
	bad = good;
	bad.log_id.lo = 0;
	cr_assert_eq(log_reader_seek(reader, &bad), -EINVAL);
	cr_assert_eq(log_reader_seek(reader, &good), 0);
	cr_assert_eq(log_reader_seek(reader, &good), -EINVAL, "a second seek");
	struct log_record record;
	cr_assert_eq(log_reader_next(reader, &record), LOG_CORRUPT, "segment 1 is missing");
	log_reader_close(reader);
	rmdir(dir);
}

/* ---- Version 1 streams (written before channel push) ---------------------- */

/* The fingerprint version 1 streams carry: the configuration's fields
 * without listings_max, each as a little-endian u64 (docs/FORMAT.md). */
static uint64_t fingerprint_v1(const struct ledger_config *c)
{
	const uint64_t fields[] = {
	        c->items_max,
	        c->locations_max,
	        c->channels_max,
	        c->stock_max,
	        c->codes_max,
	        c->barcodes_max,
	        c->attributes_max,
	        c->bundles_max,
	        c->bundle_components_max,
	        c->pool_locations_max,
	        c->channel_buffers_max,
	        c->holds_max,
	        c->closed_holds_max,
	        c->closed_hold_grace_ns,
	        c->ttl_max_s,
	        c->counts_max,
	        c->transfers_max,
	        c->keys_max,
	        c->key_window_ns,
	        c->batch_events_max,
	        c->chain_events_max,
	};
	return skuld_checksum(fields, sizeof(fields));
}

/* The fingerprint version 2 streams carry: version 1's fields and
 * listings_max. */
static uint64_t fingerprint_v2(const struct ledger_config *c)
{
	const uint64_t fields[] = {
	        c->items_max,
	        c->locations_max,
	        c->channels_max,
	        c->stock_max,
	        c->codes_max,
	        c->barcodes_max,
	        c->attributes_max,
	        c->bundles_max,
	        c->bundle_components_max,
	        c->pool_locations_max,
	        c->channel_buffers_max,
	        c->holds_max,
	        c->closed_holds_max,
	        c->closed_hold_grace_ns,
	        c->ttl_max_s,
	        c->counts_max,
	        c->transfers_max,
	        c->keys_max,
	        c->key_window_ns,
	        c->batch_events_max,
	        c->chain_events_max,
	        c->listings_max,
	};
	return skuld_checksum(fields, sizeof(fields));
}

/* Cuts a version 3 stream back to version 2: without the DISCREPANCY_STATE
 * and DISCREPANCIES parts, END as part 19, the version 2 fingerprint.
 * Returns the new size; *records says how many discrepancies were cut. */
static size_t stream_to_v2(struct stream *stream, const struct ledger_config *config,
                           uint32_t *records)
{
	/* From the end: END (16), then DISCREPANCIES (16 + n * 64) after
	 * DISCREPANCY_STATE (16 + 32), so STATE starts at end - 64 - n * 64. */
	size_t end = stream->size - 16;
	size_t at = 0;
	for (uint32_t n = 0;; n++) {
		cr_assert_lt((size_t)n * 64 + 64 + 64, end, "no discrepancy parts found");
		at = end - 64 - (size_t)n * 64;
		uint32_t part[4], records_part[4];
		memcpy(part, stream->bytes + at, sizeof(part));
		memcpy(records_part, stream->bytes + at + 48, sizeof(records_part));
		if (part[0] == 19 && part[1] == 32 && part[2] == 1 && records_part[0] == 20 &&
		    records_part[1] == 64 && records_part[2] == n) {
			*records = n;
			break;
		}
	}
	uint32_t end_v2[4] = {19, 0, 0, 0};
	memcpy(stream->bytes + at, end_v2, sizeof(end_v2));
	uint32_t version = 2;
	memcpy(stream->bytes + 8, &version, sizeof(version));
	uint64_t fingerprint = fingerprint_v2(config);
	memcpy(stream->bytes + 16, &fingerprint, sizeof(fingerprint));
	stream->size = at + 16;
	return stream->size;
}

Test(snapshot, a_version_1_stream_loads_with_no_push_state)
{
	struct stream stream;
	busy_stream(&stream, 0x1001);
	struct ledger_config config;
	model_config(&config);
	struct ledger *latest;
	char reason[256] = "";
	cr_assert_eq(load(&config, stream.bytes, stream.size, &latest, reason, sizeof(reason)), 0,
	             "%s", reason);
	/* Version 2 (before discrepancies) loads with none remembered. */
	uint32_t records = 0;
	stream_to_v2(&stream, &config, &records);
	cr_assert_gt(records, 0, "the model's run sold at zero somewhere");
	cr_assert_eq(ledger_config_fingerprint_version(&config, fingerprint_v2(&config)), 2);
	struct ledger *current;
	cr_assert_eq(load(&config, stream.bytes, stream.size, &current, reason, sizeof(reason)), 0,
	             "%s", reason);
	struct ledger_discrepancy_figures figures;
	ledger_discrepancy_figures(latest, &figures);
	cr_assert_eq(figures.records, records);
	ledger_discrepancy_figures(current, &figures);
	cr_assert_eq(figures.records, 0);
	cr_assert_neq(ledger_hash(current), ledger_hash(latest));
	ledger_destroy(latest);
	/* A version 2 stream of a ledger without listings ends with PUSH (a
	 * header and its one record), empty CHANNEL_PUSH and LISTINGS, END:
	 * 80 bytes. Version 1 ended with END as part 16 right after KEYS. */
	size_t tail = 16 + 16 + 16 + 16 + 16;
	uint32_t tag = 0;
	memcpy(&tag, stream.bytes + stream.size - tail, sizeof(tag));
	cr_assert_eq(tag, 16, "PUSH where version 1 had END");
	uint8_t *v1 = malloc(stream.size - tail + 16);
	cr_assert_not_null(v1);
	memcpy(v1, stream.bytes, stream.size - tail);
	uint32_t end_v1[4] = {16, 0, 0, 0};
	memcpy(v1 + stream.size - tail, end_v1, sizeof(end_v1));
	uint32_t version = 1;
	memcpy(v1 + 8, &version, sizeof(version));
	uint64_t fingerprint = fingerprint_v1(&config);
	memcpy(v1 + 16, &fingerprint, sizeof(fingerprint));
	cr_assert_eq(ledger_config_fingerprint_version(&config, fingerprint), 1);
	cr_assert_eq(ledger_config_fingerprint_version(&config, ledger_config_fingerprint(&config)),
	             LEDGER_SNAPSHOT_VERSION);
	struct ledger *old;
	cr_assert_eq(load(&config, v1, stream.size - tail + 16, &old, reason, sizeof(reason)), 0,
	             "%s", reason);
	cr_assert_eq(ledger_hash(old), ledger_hash(current));
	/* A version 1 stream with the version 2 fingerprint is refused. */
	fingerprint = ledger_config_fingerprint(&config);
	memcpy(v1 + 16, &fingerprint, sizeof(fingerprint));
	struct ledger *refused;
	cr_assert_eq(load(&config, v1, stream.size - tail + 16, &refused, reason, sizeof(reason)),
	             -EBADMSG);
	ledger_destroy(old);
	ledger_destroy(current);
	free(v1);
	stream_free(&stream);
}
