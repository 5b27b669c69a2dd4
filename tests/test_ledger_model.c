/*
 * test_ledger_model.c — a randomized model-based test of the ledger state
 * machine, and a replay of what it produced through the event log.
 *
 * The reference model and the generator are in tests/ledger_model.c (shared
 * with tests/test_server_model.c, which drives the real server with them).
 * Written from docs/LEDGER.md alone, never from the .c files of server/core.
 * A seeded generator (splitmix64) drives the real ledger and the model with
 * the same batches — every kind, bundles, linked chains (failing midway, too
 * long, left open), channel reserves over overlapping pools, expiries
 * submitted the way the server does (ledger_expire_due, then an EXPIRE batch
 * with LEDGER_SOURCE_SERVER), repeated keys with the same and a different
 * body, and small capacities so that every "full" result happens. After
 * every batch the test compares every result field, every counter of every
 * (item, location), channel quantities, holds, the catalog lookups and the
 * due list, and checks the invariants: a successful RESERVE never leaves
 * available negative, and reserved equals the sum of the open holds at every
 * (item, location).
 *
 * To reproduce a failure: SKULD_MODEL_SEED=<seed printed> (decimal or 0x
 * hex); the failing batch is printed to stderr event by event.
 * SKULD_MODEL_OPS=<n> changes the number of client events of the main run,
 * SKULD_MODEL_TRACE=<kind number> prints every event of that kind with its
 * result, SKULD_MODEL_VERBOSE=1 prints the status, flag and branch counts.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "ledger_model.h"
#include "log.h"
#include "protocol.h"

/* ---- Failure reports ------------------------------------------------------ */

/* Prints the batch being checked to stderr, then fails the test. */
static void run_fail(const struct run *run, const struct skuld_event *events, uint32_t count,
                     const char *format, ...) __attribute__((format(printf, 4, 5)));

static void run_fail(const struct run *run, const struct skuld_event *events, uint32_t count,
                     const char *format, ...)
{
	char message[1024];
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(message, sizeof(message), format, arguments);
	va_end(arguments);
	fprintf(stderr, "model test failed: seed %#" PRIx64 " batch %" PRIu64 " (epoch %u)\n",
	        run->options->seed, run->batch, run->epoch);
	for (uint32_t i = 0; i < count; i++) {
		char text[512];
		event_describe(text, sizeof(text), &events[i]);
		fprintf(stderr, "  event %u: %s\n", i, text);
	}
	cr_assert_fail("seed %#" PRIx64 " (SKULD_MODEL_SEED) batch %" PRIu64 " epoch %u T %" PRIu64
	               ": %s",
	               run->options->seed, run->batch, run->epoch, run->model->time, message);
}

/* ---- Checking the ledger against the model after a batch ------------------ */

static void check_results(struct run *run, const struct skuld_event *events, uint32_t count,
                          const struct skuld_result *want, const struct skuld_result *got)
{
	for (uint32_t i = 0; i < count; i++) {
		if (memcmp(&want[i], &got[i], sizeof(want[i])) == 0)
			continue;
		char event_text[512];
		char want_text[256];
		char got_text[256];
		event_describe(event_text, sizeof(event_text), &events[i]);
		result_describe(want_text, sizeof(want_text), &want[i]);
		result_describe(got_text, sizeof(got_text), &got[i]);
		run_fail(run, events, count, "event %u %s: expected %s got %s", i, event_text,
		         want_text, got_text);
	}
}
static void check_levels(struct run *run, const struct skuld_event *events, uint32_t count)
{
	static const char *const names[COUNTER_COUNT] = {"on_hand", "reserved",   "committed",
	                                                 "damaged", "quarantine", "incoming"};
	struct model *model = run->model;
	for (uint32_t item = 0; item <= CFG_ITEMS + 1; item++) {
		for (uint32_t location = 0; location <= CFG_LOCATIONS + 1; location++) {
			struct ledger_level level;
			memset(&level, 0, sizeof(level));
			uint32_t got = ledger_level(run->ledger, item, location, &level);
			uint32_t want = model_level_status(model, item, location);
			if (got != want)
				run_fail(run, events, count,
				         "ledger_level(%u, %u): expected %s got %s", item, location,
				         skuld_status_name(want), skuld_status_name(got));
			int64_t available = 0;
			if (want == SKULD_OK) {
				const struct model_entry *entry = &model->stock[item][location];
				const int64_t got_counter[COUNTER_COUNT] = {
				        level.on_hand, level.reserved,   level.committed,
				        level.damaged, level.quarantine, level.incoming};
				for (int c = 0; c < COUNTER_COUNT; c++) {
					if (got_counter[c] != entry->counter[c])
						run_fail(run, events, count,
						         "item %u location %u: %s expected %" PRId64
						         " got %" PRId64,
						         item, location, names[c],
						         entry->counter[c], got_counter[c]);
				}
				if (level.available != entry_available(entry))
					run_fail(run, events, count,
					         "item %u location %u: available expected %" PRId64
					         " got %" PRId64,
					         item, location, entry_available(entry),
					         level.available);
				if (level.counted_at != entry->counted_at)
					run_fail(run, events, count,
					         "item %u location %u: counted_at expected %" PRIu64
					         " got %" PRIu64,
					         item, location, entry->counted_at,
					         level.counted_at);
			}
			if (check_item(model, item) == SKULD_OK &&
			    check_location(model, location) == SKULD_OK)
				available = model_result_available(model, item, location);
			int64_t got_available = ledger_available(run->ledger, item, location);
			if (got_available != available)
				run_fail(run, events, count,
				         "ledger_available(%u, %u): expected %" PRId64
				         " got %" PRId64,
				         item, location, available, got_available);
		}
	}
}

static void check_channels(struct run *run, const struct skuld_event *events, uint32_t count)
{
	for (uint32_t channel = 0; channel <= CFG_CHANNELS + 1; channel++) {
		for (uint32_t item = 0; item <= CFG_ITEMS + 1; item++) {
			int64_t want_quantity = 0;
			int64_t got_quantity = 0;
			uint32_t want =
			        model_channel_quantity(run->model, channel, item, &want_quantity);
			uint32_t got =
			        ledger_channel_quantity(run->ledger, channel, item, &got_quantity);
			if (want != got || (want == SKULD_OK && want_quantity != got_quantity))
				run_fail(run, events, count,
				         "ledger_channel_quantity(channel %u, item %u): expected "
				         "%s %" PRId64 " got %s %" PRId64,
				         channel, item, skuld_status_name(want), want_quantity,
				         skuld_status_name(got), got_quantity);
		}
	}
}

static void check_holds(struct run *run, const struct skuld_event *events, uint32_t count)
{
	struct model *model = run->model;
	int64_t reserved_by_ledger_holds[CFG_ITEMS + 1][CFG_LOCATIONS + 1];
	memset(reserved_by_ledger_holds, 0, sizeof(reserved_by_ledger_holds));
	uint32_t open = 0;
	for (uint64_t id = 0; id <= HOLD_ID_MAX + 1; id++) {
		struct ledger_hold_info info;
		memset(&info, 0, sizeof(info));
		uint32_t status = ledger_hold(run->ledger, id, &info);
		const struct model_hold *hold = model_hold_find(model, id);
		if ((status == SKULD_OK) != (hold != NULL))
			run_fail(run, events, count, "ledger_hold(%" PRIu64 "): expected %s got %s",
			         id, hold != NULL ? "a hold" : "HOLD_UNKNOWN",
			         skuld_status_name(status));
		if (hold == NULL)
			continue;
		bool remaining_differs =
		        info.remaining != hold->remaining && hold->state != LEDGER_HOLD_RELEASED;
		uint64_t closed_at = hold->state == LEDGER_HOLD_OPEN ? 0 : hold->closed_at;
		if (info.id != id || info.expires_at_ns != hold->expires_at ||
		    info.closed_at_ns != closed_at || remaining_differs ||
		    info.item != hold->item || info.location != hold->location ||
		    info.channel != hold->channel || info.state != hold->state)
			run_fail(run, events, count,
			         "hold %" PRIu64 ": expected {expires_at %" PRIu64
			         " closed_at %" PRIu64 " remaining %" PRId64
			         " item %u location %u channel %u state %u} got {id %" PRIu64
			         " expires_at %" PRIu64 " closed_at %" PRIu64 " remaining %" PRId64
			         " item %u location %u channel %u state %u}",
			         id, hold->expires_at, closed_at, hold->remaining, hold->item,
			         hold->location, hold->channel, hold->state, info.id,
			         info.expires_at_ns, info.closed_at_ns, info.remaining, info.item,
			         info.location, info.channel, info.state);
		if (info.state != LEDGER_HOLD_OPEN)
			continue;
		open++;
		struct expansion expansion = model_expand(model, info.item);
		for (uint32_t c = 0; c < expansion.count; c++)
			reserved_by_ledger_holds[expansion.item[c]][info.location] +=
			        info.remaining * expansion.k[c];
	}
	if (ledger_holds_open(run->ledger) != open || model_holds_open(model) != open)
		run_fail(run, events, count,
		         "open holds: model %u, ledger_holds_open %u, found by id %u",
		         model_holds_open(model), ledger_holds_open(run->ledger), open);

	/* Invariant: reserved equals the sum of the open holds, from the model's
	 * holds and from the ledger's own hold lookups. */
	int64_t reserved_by_model_holds[CFG_ITEMS + 1][CFG_LOCATIONS + 1];
	memset(reserved_by_model_holds, 0, sizeof(reserved_by_model_holds));
	for (uint32_t i = 0; i < model->hold_count; i++) {
		const struct model_hold *hold = &model->hold[i];
		if (hold->state != LEDGER_HOLD_OPEN)
			continue;
		struct expansion expansion = model_expand(model, hold->item);
		for (uint32_t c = 0; c < expansion.count; c++)
			reserved_by_model_holds[expansion.item[c]][hold->location] +=
			        hold->remaining * expansion.k[c];
	}
	for (uint32_t item = 1; item <= CFG_ITEMS; item++) {
		for (uint32_t location = 1; location <= CFG_LOCATIONS; location++) {
			int64_t reserved = model->stock[item][location].counter[COUNTER_RESERVED];
			if (reserved != reserved_by_model_holds[item][location] ||
			    reserved != reserved_by_ledger_holds[item][location])
				run_fail(run, events, count,
				         "item %u location %u: reserved %" PRId64
				         " but open holds sum to %" PRId64 " (model) / %" PRId64
				         " (ledger_hold)",
				         item, location, reserved,
				         reserved_by_model_holds[item][location],
				         reserved_by_ledger_holds[item][location]);
		}
	}
}

static void check_catalog(struct run *run, const struct skuld_event *events, uint32_t count)
{
	struct model *model = run->model;
	char code[SKULD_CODE_SIZE];
	for (uint32_t n = 0; n < SKU_POOL; n++) {
		code_text(code, "S", n);
		int retired = -1;
		uint32_t item = ledger_sku_lookup(run->ledger, code, &retired);
		const struct model_code *want = model_code_find(model, code);
		uint32_t want_item = want != NULL ? want->item : 0;
		if (item != want_item || (want != NULL && (retired != 0) != want->retired))
			run_fail(run, events, count,
			         "ledger_sku_lookup(%s): expected item %u retired %d, got item "
			         "%u retired %d",
			         code, want_item, want != NULL && want->retired, item, retired);
	}
	for (uint32_t n = 0; n < BARCODE_POOL; n++) {
		code_text(code, "B", n);
		struct ledger_barcode_match got[CFG_BARCODES + 1];
		uint32_t got_count = ledger_barcode_lookup(run->ledger, code, got, CFG_BARCODES);
		uint32_t want_count = 0;
		for (uint32_t item = 1; item <= CFG_ITEMS; item++) {
			const struct model_barcode *barcode = model_barcode_find(model, code, item);
			if (barcode == NULL || !barcode->active)
				continue;
			if (want_count >= got_count || got[want_count].item != item ||
			    got[want_count].pack != barcode->pack)
				run_fail(run, events, count,
				         "ledger_barcode_lookup(%s): match %u should be item %u "
				         "pack %" PRId64,
				         code, want_count, item, barcode->pack);
			want_count++;
		}
		if (got_count != want_count)
			run_fail(run, events, count,
			         "ledger_barcode_lookup(%s): expected %u matches, got %u", code,
			         want_count, got_count);
	}
	for (uint32_t item = 1; item <= CFG_ITEMS; item++) {
		for (uint32_t a = 0; a < 3; a++) {
			char value[SKULD_CODE_SIZE + 1];
			memset(value, 0, sizeof(value));
			int found = ledger_attribute(run->ledger, item, attribute_names[a], value);
			const struct model_attribute *want =
			        model_attribute_find(model, item, attribute_names[a]);
			if ((found != 0) != (want != NULL) ||
			    (want != NULL && strcmp(value, want->value) != 0))
				run_fail(run, events, count,
				         "ledger_attribute(%u, %s): expected %s \"%s\", got %d "
				         "\"%s\"",
				         item, attribute_names[a], want ? "found" : "none",
				         want ? want->value : "", found, value);
		}
	}
	for (uint32_t location = 0; location <= CFG_LOCATIONS + 1; location++) {
		int want = -1;
		if (check_location(model, location) == SKULD_OK)
			want = (int)model->location[location].state;
		int got = ledger_location_state(run->ledger, location);
		if (got != want)
			run_fail(run, events, count,
			         "ledger_location_state(%u): expected %d got %d", location, want,
			         got);
	}
}

static void log_batch(struct run *run, uint64_t timestamp_ns, enum ledger_source source,
                      const struct skuld_event *events, uint32_t count,
                      const struct skuld_result *results)
{
	struct log_record_info info = {
	        .timestamp_ns = timestamp_ns,
	        .operation = SKULD_OP_SUBMIT,
	};
	if (source == LEDGER_SOURCE_CLIENT) {
		info.client = (skuld_u128){.lo = 0x636c69656e74ull, .hi = 1};
		info.request = ++run->request;
	}
	int error = log_writer_append(run->writer, &info, events, results, count, NULL);
	if (error == -ENOSPC) {
		cr_assert_eq(log_writer_flush(run->writer), 0);
		error = log_writer_append(run->writer, &info, events, results, count, NULL);
	}
	cr_assert_eq(error, 0, "log_writer_append: %s", strerror(-error));
	if (run->batch % 8 == 0)
		cr_assert_eq(log_writer_flush(run->writer), 0);
	cr_assert_lt(run->hash_count, HASHES_MAX, "replay run too long for the hash array");
	run->hashes[run->hash_count++] = ledger_hash(run->ledger);
}

static uint32_t trace_kind; /* SKULD_MODEL_TRACE: print every event of this kind */

/* Applies one batch to the ledger and the model, and compares everything. */
static void run_batch(struct run *run, uint64_t timestamp_ns, enum ledger_source source,
                      const struct skuld_event *events, uint32_t count)
{
	struct skuld_result want[CFG_BATCH];
	struct skuld_result got[CFG_BATCH];
	cr_assert(count > 0 && count <= CFG_BATCH);
	memset(got, 0xa5, sizeof(got));
	model_apply(run->model, timestamp_ns, source, events, count, want);
	ledger_apply(run->ledger, timestamp_ns, source, events, count, got);
	if (trace_kind != 0) {
		for (uint32_t i = 0; i < count; i++) {
			if (events[i].kind != trace_kind)
				continue;
			char event_text[512];
			char result_text[256];
			event_describe(event_text, sizeof(event_text), &events[i]);
			result_describe(result_text, sizeof(result_text), &got[i]);
			fprintf(stderr, "trace batch %" PRIu64 " T %" PRIu64 " event %u %s -> %s\n",
			        run->batch, run->model->time, i, event_text, result_text);
		}
	}
	check_results(run, events, count, want, got);
	for (uint32_t i = 0; i < count; i++) {
		if (events[i].kind == SKULD_RESERVE && got[i].status == SKULD_OK &&
		    got[i].available < 0)
			run_fail(run, events, count, "event %u: RESERVE left available %" PRId64, i,
			         got[i].available);
	}
	check_levels(run, events, count);
	check_channels(run, events, count);
	check_holds(run, events, count);
	check_catalog(run, events, count);
	record_statistics(run, source, events, count, got);
	if (run->writer != NULL)
		log_batch(run, timestamp_ns, source, events, count, got);
	run->batch++;
}

/* What the server does: ask for due holds, then submit EXPIRE for them; a
 * client batch on the same holds sometimes races in between. */
static void run_expiry(struct run *run)
{
	uint64_t got[CFG_HOLDS + 1];
	uint64_t want[CFG_HOLDS + 1];
	uint32_t max = 1 + rng_below(run, CFG_HOLDS);
	uint32_t got_count = ledger_expire_due(run->ledger, run->now, max, got);
	uint32_t want_count = model_expire_due(run->model, run->now, max, want);
	run->due_calls++;
	if (got_count != want_count || memcmp(got, want, want_count * sizeof(want[0])) != 0) {
		char text[512];
		size_t used = 0;
		for (uint32_t i = 0; i < want_count && used < sizeof(text); i++)
			used += (size_t)snprintf(text + used, sizeof(text) - used, " %" PRIu64,
			                         want[i]);
		text[used < sizeof(text) ? used : sizeof(text) - 1] = '\0';
		run_fail(run, NULL, 0,
		         "ledger_expire_due(now %" PRIu64 ", max %u): got %u ids, expected %u:%s",
		         run->now, max, got_count, want_count, want_count ? text : " none");
	}
	if (got_count == 0 && !rng_percent(run, 10))
		return;

	struct skuld_event events[CFG_BATCH];
	if (got_count > 0 && rng_percent(run, 20)) {
		uint32_t count = 0;
		for (uint32_t i = 0; i < got_count; i++) {
			static const uint16_t kinds[] = {SKULD_COMMIT, SKULD_RELEASE, SKULD_EXTEND};
			uint16_t kind = kinds[rng_below(run, 3)];
			events[count] = event_new(run, kind);
			events[count].id = got[i];
			if (kind == SKULD_EXTEND)
				events[count].ttl_s = pick_ttl(run);
			if (kind == SKULD_COMMIT && rng_percent(run, 60))
				events[count].flags |= SKULD_EVENT_AFTER_EXPIRY;
			count++;
		}
		run_batch(run, batch_timestamp(run), LEDGER_SOURCE_CLIENT, events, count);
	}
	uint32_t count = 0;
	for (uint32_t i = 0; i < got_count; i++) {
		events[count] = event_new(run, SKULD_EXPIRE);
		events[count].id = got[i];
		if (rng_percent(run, 10) && run->history_count > 0)
			events[count].key =
			        run->history[(run->history_count - 1) % HISTORY_SIZE].key;
		count++;
	}
	if (count == 0 || rng_percent(run, 15)) {
		events[count] = event_new(run, SKULD_EXPIRE);
		events[count].id = pick_hold_id(run);
		count++;
	}
	run_batch(run, run->now, LEDGER_SOURCE_SERVER, events, count);
}

/* ---- Epochs: a fresh ledger with a defined catalog ------------------------- */

static void epoch_setup(struct run *run)
{
	struct skuld_event events[CFG_BATCH];
	uint32_t count = epoch_setup_catalog(run, events);
	run_batch(run, run->now, LEDGER_SOURCE_CLIENT, events, count);
	count = epoch_setup_stock(run, events);
	run_batch(run, run->now, LEDGER_SOURCE_CLIENT, events, count);
}

static void epoch_start(struct run *run)
{
	if (run->ledger != NULL)
		ledger_destroy(run->ledger);
	struct ledger_config config;
	model_config(&config);
	cr_assert_eq(ledger_create(&config, &run->ledger), 0);
	memset(run->model, 0, sizeof(*run->model));
	run->epoch++;
	run->epoch_batch = 0;
	run->now += 1000 * NS_PER_S;
	epoch_setup(run);
}

/* ---- Runs ------------------------------------------------------------------- */

static void run_model(struct run *run)
{
	const struct run_options *options = run->options;
	memset(coverage, 0, sizeof(coverage));
	trace_kind = (uint32_t)env_u64("SKULD_MODEL_TRACE", 0);
	run->rng = options->seed;
	run->now = TIME_START;
	run->model = calloc(1, sizeof(*run->model));
	cr_assert_not_null(run->model);
	epoch_start(run);
	struct skuld_event events[CFG_BATCH];
	while (run->client_events < options->client_events_min) {
		if (options->epoch_batches != 0 && run->epoch_batch == options->epoch_batches)
			epoch_start(run);
		advance_time(run);
		if (rng_percent(run, 40))
			run_expiry(run);
		uint32_t count = generate_batch(run, events);
		run_batch(run, batch_timestamp(run), LEDGER_SOURCE_CLIENT, events, count);
		run->epoch_batch++;
	}
	run_report(run);
}

static void run_free(struct run *run)
{
	if (run->ledger != NULL)
		ledger_destroy(run->ledger);
	free(run->model);
	free(run->hashes);
	memset(run, 0, sizeof(*run));
}

#define SEED_DEFAULT 0x5eed0f5c01dull

Test(ledger_model, random_operations_match_the_model, .timeout = 600)
{
	struct run_options options = {
	        .seed = env_u64("SKULD_MODEL_SEED", SEED_DEFAULT),
	        .client_events_min = env_u64("SKULD_MODEL_OPS", 500000),
	        .epoch_batches = 60,
	};
	static struct run run;
	memset(&run, 0, sizeof(run));
	run.options = &options;
	run_model(&run);
	cr_assert_geq(run.client_events, options.client_events_min);
	run_free(&run);
}

/* ---- Replay through the log ---------------------------------------------- */

/* The replay test's log directory; removed by replay_cleanup even when an
 * assertion ends the test early. */
static char replay_dir[64];

static void replay_cleanup(void)
{
	if (replay_dir[0] == '\0')
		return;
	DIR *directory = opendir(replay_dir);
	if (directory != NULL) {
		struct dirent *entry;
		while ((entry = readdir(directory)) != NULL) {
			if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
				continue;
			char path[1024];
			snprintf(path, sizeof(path), "%s/%s", replay_dir, entry->d_name);
			unlink(path);
		}
		closedir(directory);
	}
	rmdir(replay_dir);
	replay_dir[0] = '\0';
}

static struct log_writer *writer_open(const char *dir)
{
	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, dir, NULL), 0);
	struct log_record record;
	cr_assert_eq(log_reader_next(reader, &record), LOG_END_CLEAN);
	struct log_position position;
	cr_assert_eq(log_reader_position(reader, &position), 0);
	log_reader_close(reader);
	struct log_writer_config config = {
	        .dir = dir,
	        .segment_size = 1u << 20,
	        .write_size_max = 128u << 10,
	        .log_id = {.lo = 0x6d6f64656cull, .hi = 0x7265706c6179ull},
	};
	struct log_writer *writer;
	cr_assert_eq(log_writer_init(&writer, &config, &position), 0);
	return writer;
}

/* Reads the log back into a fresh ledger: every result and every hash along
 * the way must equal what the original run produced. */
static void replay_log(const char *dir, const struct run *run)
{
	struct ledger_config config;
	model_config(&config);
	struct ledger *ledger;
	cr_assert_eq(ledger_create(&config, &ledger), 0);
	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, dir, NULL), 0);
	struct log_record record;
	enum log_status status;
	uint32_t records = 0;
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
		const struct log_record_header *header = record.header;
		cr_assert_leq(header->count, CFG_BATCH);
		enum ledger_source source = skuld_u128_is_zero(header->client)
		                                    ? LEDGER_SOURCE_SERVER
		                                    : LEDGER_SOURCE_CLIENT;
		struct skuld_result results[CFG_BATCH];
		ledger_apply(ledger, header->timestamp_ns, source, record.events, header->count,
		             results);
		for (uint32_t i = 0; i < header->count; i++) {
			if (memcmp(&results[i], &record.results[i], sizeof(results[i])) != 0) {
				char want[256];
				char got[256];
				result_describe(want, sizeof(want), &record.results[i]);
				result_describe(got, sizeof(got), &results[i]);
				cr_assert_fail("replay seed %#" PRIx64
				               " record %u event %u: logged %s, "
				               "replayed %s",
				               run->options->seed, records, i, want, got);
			}
		}
		cr_assert_lt(records, run->hash_count);
		cr_assert_eq(ledger_hash(ledger), run->hashes[records],
		             "replay seed %#" PRIx64 ": hash differs after record %u",
		             run->options->seed, records);
		records++;
	}
	cr_assert_eq(status, LOG_END_CLEAN, "log ended with %d: %s", status,
	             log_reader_outcome(reader)->reason);
	cr_assert_eq(records, run->hash_count, "replayed %u of %u batches", records,
	             run->hash_count);
	cr_assert_eq(ledger_hash(ledger), ledger_hash(run->ledger));
	log_reader_close(reader);
	ledger_destroy(ledger);
}

Test(ledger_model, replay_of_the_log_gives_the_same_hash, .timeout = 600, .fini = replay_cleanup)
{
	snprintf(replay_dir, sizeof(replay_dir), "/tmp/skuld-test-model-XXXXXX");
	cr_assert_not_null(mkdtemp(replay_dir));
	const char *dir = replay_dir;
	struct run_options options = {
	        .seed = env_u64("SKULD_MODEL_SEED", SEED_DEFAULT) ^ 0x7265706c6179ull,
	        .client_events_min = 50000,
	        .epoch_batches = 0,
	        .log_dir = dir,
	};
	static struct run run;
	memset(&run, 0, sizeof(run));
	run.options = &options;
	run.writer = writer_open(dir);
	run.hashes = calloc(HASHES_MAX, sizeof(run.hashes[0]));
	cr_assert_not_null(run.hashes);
	run_model(&run);
	int error = log_writer_flush(run.writer);
	cr_assert(error == 0 || error == -ENODATA, "log_writer_flush: %s", strerror(-error));
	log_writer_close(run.writer);
	run.writer = NULL;
	replay_log(dir, &run);
	run_free(&run);
	replay_cleanup();
	struct stat status;
	cr_assert_neq(stat(dir, &status), 0, "log directory left behind");
}
