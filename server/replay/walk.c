/*
 * walk.c — one checked, hashed and replayed pass over a log (walk.h).
 */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double walk_clock_s(clockid_t clock)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static double walk_now_s(void)
{
	return walk_clock_s(CLOCK_MONOTONIC);
}

/* The pass ends now: for SKULD_REPLAY_TIMING. */
static void walk_ended_now(struct walk *walk)
{
	walk->ended_s = walk_now_s();
	walk->ended_cpu_s = walk_clock_s(CLOCK_THREAD_CPUTIME_ID);
}

__attribute__((format(printf, 3, 4))) static int walk_fail(struct walk *walk, int exit,
                                                           const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(walk->fault, sizeof(walk->fault), format, arguments);
	va_end(arguments);
	walk->exit = exit;
	walk->ended = true;
	walk_ended_now(walk);
	return exit;
}

void walk_segment_name(uint64_t segment, char out[32])
{
	if (log_segment_name(out, 32, segment) != 0)
		snprintf(out, 32, "segment %" PRIu64, segment);
}

/* "log-<16 lower-case hex>.skl", as the reader parses it. */
static bool segment_name_parse(const char *name, uint64_t *segment)
{
	if (strlen(name) != 24 || strncmp(name, "log-", 4) != 0 || strcmp(name + 20, ".skl") != 0)
		return false;
	uint64_t value = 0;
	for (int i = 4; i < 20; i++) {
		char c = name[i];
		if (c >= '0' && c <= '9')
			value = value << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			value = value << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	*segment = value;
	return true;
}

/* Counts the segment files of dir and their first and last index. Returns
 * 0 or -errno from opendir. */
static int segments_list(struct walk *walk, const char *dir)
{
	DIR *directory = opendir(dir);
	if (directory == NULL)
		return -errno;
	walk->segment_files = 0;
	walk->segment_first = walk->segment_last = 0;
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL) {
		uint64_t segment;
		if (!segment_name_parse(entry->d_name, &segment))
			continue;
		if (walk->segment_files == 0 || segment < walk->segment_first)
			walk->segment_first = segment;
		if (walk->segment_files == 0 || segment > walk->segment_last)
			walk->segment_last = segment;
		walk->segment_files++;
	}
	closedir(directory);
	return 0;
}

/* DIR itself when it holds segments, else DIR/log when that is a
 * directory (the server's --data-dir), else DIR (an empty log). */
static int log_dir_find(struct walk *walk, const char *dir)
{
	if (strlen(dir) + sizeof("/log") > sizeof(walk->log_dir))
		return walk_fail(walk, REPLAY_EXIT_USAGE, "%s: path too long", dir);
	int ret = segments_list(walk, dir);
	if (ret != 0)
		return walk_fail(walk, REPLAY_EXIT_ERROR, "cannot read %s: %s", dir,
		                 strerror(-ret));
	snprintf(walk->log_dir, sizeof(walk->log_dir), "%s", dir);
	if (walk->segment_files > 0)
		return REPLAY_EXIT_OK;
	char nested[LOG_PATH_SIZE];
	snprintf(nested, sizeof(nested), "%s/log", dir);
	struct stat status;
	if (stat(nested, &status) == 0 && S_ISDIR(status.st_mode)) {
		ret = segments_list(walk, nested);
		if (ret != 0)
			return walk_fail(walk, REPLAY_EXIT_ERROR, "cannot read %s: %s", nested,
			                 strerror(-ret));
		snprintf(walk->log_dir, sizeof(walk->log_dir), "%s", nested);
	}
	return REPLAY_EXIT_OK;
}

static int config_read(struct walk *walk, const char *config_path)
{
	char error[CONFIG_ERROR_SIZE];
	config_defaults(&walk->config);
	if (config_path != NULL &&
	    config_load(&walk->config, config_path, error, sizeof(error)) != 0)
		return walk_fail(walk, REPLAY_EXIT_USAGE, "--config: %s", error);
	if (config_finish(&walk->config, error, sizeof(error)) != 0)
		return walk_fail(walk, REPLAY_EXIT_USAGE, "--config: %s", error);
	return REPLAY_EXIT_OK;
}

int walk_service_create(const struct walk *walk, struct service **out)
{
	const struct server_config *config = &walk->config;
	struct service_config service_config = config_service(config, walk->log_dir);
	service_config.token = NULL;
	return service_create(&service_config, out);
}

static int service_open(struct walk *walk)
{
	int ret = walk_service_create(walk, &walk->service);
	if (ret != 0)
		return walk_fail(
		        walk, REPLAY_EXIT_ERROR, "cannot allocate the ledger (%.1f MiB): %s",
		        (double)ledger_memory_bytes(&walk->config.ledger) / (1024.0 * 1024.0),
		        strerror(-ret));
	return REPLAY_EXIT_OK;
}

int walk_open(struct walk *walk, const char *dir, const char *config_path, unsigned flags)
{
	memset(walk, 0, sizeof(*walk));
	names_init(&walk->names);
	walk->flags = flags;
	int exit = log_dir_find(walk, dir);
	if (exit == REPLAY_EXIT_OK)
		exit = config_read(walk, config_path);
	if (exit != REPLAY_EXIT_OK)
		return exit;
	if ((flags & WALK_APPLY) && walk->segment_first > 1) {
		char name[32];
		walk_segment_name(walk->segment_first, name);
		return walk_fail(walk, REPLAY_EXIT_FAULT,
		                 "the log in %s starts at %s: earlier segments were archived, and "
		                 "a replay needs every record from the first (or a snapshot)",
		                 walk->log_dir, name);
	}
	int ret = 0;
	if ((flags & WALK_CHAIN) && walk->segment_first <= 1)
		ret = chain_create(&walk->chain);
	if (ret != 0)
		return walk_fail(walk, REPLAY_EXIT_ERROR, "SHA-256 (libcrypto): %s",
		                 strerror(-ret));
	if ((flags & WALK_APPLY) && service_open(walk) != REPLAY_EXIT_OK)
		return walk->exit;
	ret = log_reader_open(&walk->reader, walk->log_dir, NULL);
	if (ret != 0)
		return walk_fail(walk, REPLAY_EXIT_ERROR, "cannot open the log in %s: %s",
		                 walk->log_dir, strerror(-ret));
	walk->opened_s = walk_now_s();
	walk->opened_cpu_s = walk_clock_s(CLOCK_THREAD_CPUTIME_ID);
	return REPLAY_EXIT_OK;
}

void walk_close(struct walk *walk)
{
	const char *timing = getenv("SKULD_REPLAY_TIMING");
	if (timing != NULL && strcmp(timing, "1") == 0 && walk->opened_s > 0) {
		if (walk->ended_s == 0)
			walk_ended_now(walk);
		double seconds = walk->ended_s - walk->opened_s;
		double cpu = walk->ended_cpu_s - walk->opened_cpu_s;
		fprintf(stderr,
		        "skuld-replay: timing: %" PRIu64 " records, %" PRIu64
		        " events in %.3f s: %.2f M events/s; %.3f s of CPU: %.2f M events per CPU "
		        "second (%s%s)\n",
		        walk->records, walk->events, seconds,
		        seconds > 0 ? (double)walk->events / seconds / 1e6 : 0.0, cpu,
		        cpu > 0 ? (double)walk->events / cpu / 1e6 : 0.0,
		        walk->chain != NULL ? "checked, SHA-256" : "checked",
		        walk->service != NULL ? ", replayed" : "");
	}
	log_reader_close(walk->reader);
	chain_destroy(walk->chain);
	service_destroy(walk->service);
	names_free(&walk->names);
	walk->reader = NULL;
	walk->chain = NULL;
	walk->service = NULL;
}

/* Where a record is, for messages: "DIR/log-...skl offset N". */
static void record_place(const struct walk *walk, const struct log_record *record, char *out,
                         size_t size)
{
	char name[32];
	walk_segment_name(record->segment, name);
	snprintf(out, size, "%s/%s offset %" PRIu64, walk->log_dir, name, record->offset);
}

/* Re-applies the record through the server's replay path. Events are
 * checked with the protocol's rules first: the server only logs events
 * that passed them, and the disk is not trusted. Returns 0 or -1 (fault). */
static int walk_apply(struct walk *walk, const struct log_record *record)
{
	const struct log_record_header *header = record->header;
	char place[LOG_PATH_SIZE + 64];
	for (uint32_t i = 0; i < header->count; i++) {
		uint32_t status = proto_event_check(&record->events[i]);
		if (status != SKULD_OK) {
			record_place(walk, record, place, sizeof(place));
			walk_fail(walk, REPLAY_EXIT_FAULT,
			          "log %s: event %" PRIu32
			          " of the record breaks the protocol's rules "
			          "(%s)",
			          place, i, skuld_status_name(status));
			return -1;
		}
	}
	char why[LOG_REASON_SIZE + 128];
	if (service_replay(walk->service, record, why, sizeof(why)) != 0) {
		record_place(walk, record, place, sizeof(place));
		walk_fail(walk, REPLAY_EXIT_FAULT,
		          "log %s: record of client %016" PRIx64 "%016" PRIx64 " request %" PRIu64
		          ": %s",
		          place, header->client.hi, header->client.lo, header->request, why);
		return -1;
	}
	return 0;
}

static int walk_end(struct walk *walk, enum log_status status)
{
	walk->outcome = *log_reader_outcome(walk->reader);
	const struct log_outcome *outcome = &walk->outcome;
	walk->ended = true;
	walk_ended_now(walk);
	switch (status) {
	case LOG_END_CLEAN:
		walk->exit = REPLAY_EXIT_OK;
		return 0;
	case LOG_END_TORN:
		walk->torn = true;
		walk->exit = REPLAY_EXIT_OK;
		snprintf(walk->warning, sizeof(walk->warning),
		         "the last log write in %s at offset %" PRIu64
		         " is torn (%s): it was never acknowledged, and the server discards it "
		         "at its next start",
		         outcome->file, outcome->offset, outcome->reason);
		return 0;
	case LOG_CORRUPT:
		walk_fail(walk, REPLAY_EXIT_FAULT, "log corrupt in %s at offset %" PRIu64 ": %s",
		          outcome->file, outcome->offset, outcome->reason);
		return -1;
	default:
		walk_fail(walk, REPLAY_EXIT_ERROR, "reading the log in %s: %s (%s)", walk->log_dir,
		          strerror(outcome->error < 0 ? -outcome->error : EIO), outcome->file);
		return -1;
	}
}

void walk_stop_at(struct walk *walk, const struct text_point *point, bool whole_records)
{
	walk->stop = *point;
	walk->stop_whole = whole_records;
}

static bool walk_beyond_stop(const struct walk *walk, const struct log_record *record)
{
	switch (walk->stop.kind) {
	case TEXT_POINT_SEQUENCE:
		if (walk->stop_whole)
			return walk_record_last(record) > walk->stop.value;
		return record->header->event_first > walk->stop.value;
	case TEXT_POINT_TIME:
		return record->header->timestamp_ns > walk->stop.value;
	default:
		return false;
	}
}

int walk_next(struct walk *walk, struct log_record *record)
{
	if (walk->ended)
		return walk->exit == REPLAY_EXIT_OK ? 0 : -1;
	enum log_status status = log_reader_next(walk->reader, record);
	if (status != LOG_RECORD)
		return walk_end(walk, status);
	const struct log_record_header *header = record->header;
	if (walk_beyond_stop(walk, record)) {
		walk->ended = true;
		walk_ended_now(walk);
		walk->stopped = true;
		walk->exit = REPLAY_EXIT_OK;
		walk->stopped_first = header->event_first;
		walk->stopped_last = walk_record_last(record);
		walk->stopped_time_ns = header->timestamp_ns;
		return 0;
	}
	if (walk->chain != NULL && chain_add_record(walk->chain, record) != 0) {
		walk_fail(walk, REPLAY_EXIT_ERROR, "SHA-256 (libcrypto) failed");
		return -1;
	}
	if (walk->service != NULL && walk_apply(walk, record) != 0)
		return -1;
	if (names_note(&walk->names, record->events, record->results, header->count) != 0) {
		walk_fail(walk, REPLAY_EXIT_ERROR, "out of memory for the catalog's codes");
		return -1;
	}
	if (walk->records == 0) {
		walk->event_first = header->event_first;
		walk->time_first_ns = header->timestamp_ns;
	}
	walk->records++;
	walk->events += header->count;
	walk->event_next = header->event_first + header->count;
	walk->time_last_ns = header->timestamp_ns;
	return 1;
}
