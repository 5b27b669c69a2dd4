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

int walk_fault(struct walk *walk, int exit, const char *format, ...)
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
static int segments_range(const char *dir, uint64_t *first, uint64_t *last, uint64_t *files)
{
	DIR *directory = opendir(dir);
	if (directory == NULL)
		return -errno;
	*files = 0;
	*first = *last = 0;
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL) {
		uint64_t segment;
		if (!segment_name_parse(entry->d_name, &segment))
			continue;
		if (*files == 0 || segment < *first)
			*first = segment;
		if (*files == 0 || segment > *last)
			*last = segment;
		(*files)++;
	}
	closedir(directory);
	return 0;
}

static int segments_list(struct walk *walk, const char *dir)
{
	return segments_range(dir, &walk->live_first, &walk->live_last, &walk->live_files);
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
	if (walk->live_files > 0)
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

/* --archive DIR: a directory of archived segments, read before the live
 * ones. */
static int archive_find(struct walk *walk, const char *archive)
{
	if (strlen(archive) + 32 > sizeof(walk->archive_dir))
		return walk_fail(walk, REPLAY_EXIT_USAGE, "--archive %s: path too long", archive);
	int ret = segments_range(archive, &walk->archive_first, &walk->archive_last,
	                         &walk->archive_files);
	if (ret != 0)
		return walk_fail(walk, REPLAY_EXIT_ERROR, "cannot read --archive %s: %s", archive,
		                 strerror(-ret));
	if (walk->archive_files == 0)
		return walk_fail(walk, REPLAY_EXIT_USAGE,
		                 "--archive %s holds no log segments (log-*.skl)", archive);
	snprintf(walk->archive_dir, sizeof(walk->archive_dir), "%s", archive);
	return REPLAY_EXIT_OK;
}

/* The segments of the one log: the archive's, then the live ones after
 * it (a live segment also in the archive is counted once). */
static void segments_combine(struct walk *walk)
{
	walk->segment_first = walk->live_first;
	walk->segment_last = walk->live_last;
	walk->segment_files = walk->live_files;
	if (walk->archive_files == 0)
		return;
	walk->segment_first = walk->archive_first;
	walk->segment_files = walk->archive_files;
	walk->segment_last = walk->archive_last;
	if (walk->live_files > 0 && walk->live_last > walk->archive_last) {
		uint64_t from = walk->live_first > walk->archive_last ? walk->live_first
		                                                      : walk->archive_last + 1;
		walk->segment_files += walk->live_last - from + 1;
		walk->segment_last = walk->live_last;
	}
}

const char *walk_segment_dir(const struct walk *walk, uint64_t segment)
{
	if (walk->archive_files > 0 && segment >= walk->archive_first &&
	    segment <= walk->archive_last)
		return walk->archive_dir;
	return walk->log_dir;
}

/* Reads and checks (magic, version, checksum, index) the header of segment
 * in dir. Returns 0, or -errno / -EBADMSG. */
static int segment_header_read(const char *dir, uint64_t segment, struct log_segment_header *out)
{
	char name[32], path[LOG_PATH_SIZE + 32];
	walk_segment_name(segment, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *file = fopen(path, "rb");
	if (file == NULL)
		return -errno;
	size_t got = fread(out, 1, sizeof(*out), file);
	fclose(file);
	if (got != sizeof(*out) || out->magic != LOG_SEGMENT_MAGIC ||
	    out->version != LOG_FORMAT_VERSION ||
	    out->checksum_header !=
	            skuld_checksum(out, offsetof(struct log_segment_header, checksum_header)) ||
	    out->segment != segment)
		return -EBADMSG;
	return 0;
}

/* Whether two files hold the same bytes. Returns 1, 0, or -errno. */
static int files_equal(const char *a, const char *b)
{
	FILE *left = fopen(a, "rb");
	FILE *right = fopen(b, "rb");
	int ret = left != NULL && right != NULL ? 1 : -errno;
	static char buffer_left[1u << 16], buffer_right[1u << 16];
	while (ret == 1) {
		size_t got_left = fread(buffer_left, 1, sizeof(buffer_left), left);
		size_t got_right = fread(buffer_right, 1, sizeof(buffer_right), right);
		if (got_left != got_right || memcmp(buffer_left, buffer_right, got_left) != 0)
			ret = 0;
		else if (got_left == 0)
			break;
	}
	if (ret >= 0 && ((left != NULL && ferror(left)) || (right != NULL && ferror(right))))
		ret = -EIO;
	if (left != NULL)
		fclose(left);
	if (right != NULL)
		fclose(right);
	return ret;
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

/* The reader over dir, into walk->reader. */
static int reader_open(struct walk *walk, const char *dir)
{
	int ret = log_reader_open(&walk->reader, dir, NULL);
	if (ret != 0)
		return walk_fail(walk, REPLAY_EXIT_ERROR, "cannot open the log in %s: %s", dir,
		                 strerror(-ret));
	return REPLAY_EXIT_OK;
}

int walk_open(struct walk *walk, const char *dir, const char *archive, const char *config_path,
              unsigned flags)
{
	memset(walk, 0, sizeof(*walk));
	names_init(&walk->names);
	walk->flags = flags;
	int exit = log_dir_find(walk, dir);
	if (exit == REPLAY_EXIT_OK && archive != NULL)
		exit = archive_find(walk, archive);
	if (exit == REPLAY_EXIT_OK)
		exit = config_read(walk, config_path);
	if (exit != REPLAY_EXIT_OK)
		return exit;
	segments_combine(walk);
	walk->first_known = walk->segment_files > 0 &&
	                    segment_header_read(walk_segment_dir(walk, walk->segment_first),
	                                        walk->segment_first, &walk->first_header) == 0;
	int ret = 0;
	if ((flags & WALK_CHAIN) && !walk_partial(walk))
		ret = chain_create(&walk->chain);
	if (ret != 0)
		return walk_fail(walk, REPLAY_EXIT_ERROR, "SHA-256 (libcrypto): %s",
		                 strerror(-ret));
	if ((flags & WALK_APPLY) && service_open(walk) != REPLAY_EXIT_OK)
		return walk->exit;
	walk->in_archive = walk->archive_files > 0;
	exit = reader_open(walk, walk->in_archive ? walk->archive_dir : walk->log_dir);
	if (exit != REPLAY_EXIT_OK)
		return exit;
	walk->opened_s = walk_now_s();
	walk->opened_cpu_s = walk_clock_s(CLOCK_THREAD_CPUTIME_ID);
	return REPLAY_EXIT_OK;
}

/* Whether the log present begins exactly where position left off. */
static bool walk_at_start(const struct walk *walk, const struct log_position *position)
{
	const struct log_segment_header *first = &walk->first_header;
	return walk->first_known && first->write_first == position->write_next &&
	       first->event_first == position->event_next &&
	       first->checksum_prev == position->checksum_prev &&
	       skuld_u128_equal(first->log_id, position->log_id);
}

int walk_chain_start(struct walk *walk, const struct chain_head *head,
                     const struct log_position *at)
{
	int ret = walk->chain != NULL ? 0 : chain_create(&walk->chain);
	if (ret != 0)
		return walk_fail(walk, REPLAY_EXIT_ERROR, "SHA-256 (libcrypto): %s",
		                 strerror(-ret));
	chain_reset(walk->chain, head);
	walk->chain_at = *at;
	walk->chain_waiting = !walk_at_start(walk, at);
	return REPLAY_EXIT_OK;
}

int walk_start_at(struct walk *walk, const struct log_position *position)
{
	const struct log_segment_header *first = &walk->first_header;
	walk->started = true;
	if (walk_at_start(walk, position))
		return REPLAY_EXIT_OK; /* the log present starts exactly there */
	char name[32];
	walk_segment_name(walk->segment_first, name);
	if (position->segment < walk->segment_first || position->segment > walk->segment_last ||
	    (walk->first_known && position->write_next <= first->write_first))
		return walk_fail(walk, REPLAY_EXIT_FAULT,
		                 "the snapshot's position (write %" PRIu64 ", event %" PRIu64
		                 ", segment %" PRIu64 ") is not in the log, which starts at %s",
		                 position->write_next, position->event_next, position->segment,
		                 name);
	if (walk->in_archive && position->segment > walk->archive_last) {
		/* Everything archived lies before the start: the live log only. */
		log_reader_close(walk->reader);
		walk->reader = NULL;
		walk->in_archive = false;
		int exit = reader_open(walk, walk->log_dir);
		if (exit != REPLAY_EXIT_OK)
			return exit;
	}
	if (log_reader_seek(walk->reader, position) != 0)
		return walk_fail(walk, REPLAY_EXIT_FAULT,
		                 "the snapshot's position (segment %" PRIu64 " offset %" PRIu64
		                 ") is not a log position",
		                 position->segment, position->offset);
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
	snprintf(out, size, "%s/%s offset %" PRIu64, walk_segment_dir(walk, record->segment), name,
	         record->offset);
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
		walk_fail(walk, REPLAY_EXIT_ERROR, "reading the log in %s: %s (%s)",
		          walk->in_archive ? walk->archive_dir : walk->log_dir,
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

/* Where the archive ends, the live segments must go on: the next segment
 * there, its header continuing the archive's last write, event and chain
 * value; a segment in both places must be the same bytes. Opens the live
 * reader at that point. Returns 0, or -1 with a fault. */
static int walk_cross(struct walk *walk, enum log_status status)
{
	const struct log_outcome *outcome = log_reader_outcome(walk->reader);
	char name[32], live_name[32];
	if (status == LOG_END_TORN) {
		walk_segment_name(walk->live_first, live_name);
		walk_fail(walk, REPLAY_EXIT_FAULT,
		          "log corrupt in %s at offset %" PRIu64 ": %s, and %s follows in %s",
		          outcome->file, outcome->offset, outcome->reason, live_name,
		          walk->log_dir);
		return -1;
	}
	struct log_position end;
	if (log_reader_position(walk->reader, &end) != 0 || end.segment == 0) {
		walk_fail(walk, REPLAY_EXIT_FAULT, "the archive %s holds no log",
		          walk->archive_dir);
		return -1;
	}
	uint64_t next = end.segment + 1;
	walk_segment_name(end.segment, name);
	walk_segment_name(walk->live_first, live_name);
	if (walk->live_first > next) {
		char missing[32];
		walk_segment_name(next, missing);
		walk_fail(walk, REPLAY_EXIT_FAULT,
		          "segment %" PRIu64 " (%s) is missing: the archive %s ends with %s and %s "
		          "starts with %s",
		          next, missing, walk->archive_dir, name, walk->log_dir, live_name);
		return -1;
	}
	for (uint64_t segment = walk->live_first; segment < next; segment++) {
		char both[32], archived[LOG_PATH_SIZE + 32], live[LOG_PATH_SIZE + 32];
		walk_segment_name(segment, both);
		snprintf(archived, sizeof(archived), "%s/%s", walk->archive_dir, both);
		snprintf(live, sizeof(live), "%s/%s", walk->log_dir, both);
		int equal = files_equal(archived, live);
		if (equal != 1) {
			walk_fail(walk, REPLAY_EXIT_FAULT,
			          "%s is both in the archive and in the live log, %s: %s and %s",
			          both, equal == 0 ? "with different bytes" : "and cannot be read",
			          archived, live);
			return -1;
		}
	}
	struct log_segment_header header;
	char next_name[32];
	walk_segment_name(next, next_name);
	int ret = segment_header_read(walk->log_dir, next, &header);
	if (ret != 0) {
		walk_fail(walk, REPLAY_EXIT_FAULT,
		          "log corrupt in %s/%s at offset 0: segment header %s (the segment after "
		          "the archive's %s)",
		          walk->log_dir, next_name,
		          ret == -EBADMSG ? "is not valid" : strerror(-ret), name);
		return -1;
	}
	if (header.write_first != end.write_next || header.event_first != end.event_next ||
	    header.checksum_prev != end.checksum_prev ||
	    !skuld_u128_equal(header.log_id, end.log_id)) {
		walk_fail(
		        walk, REPLAY_EXIT_FAULT,
		        "log corrupt in %s/%s at offset 0: segment header continues write %" PRIu64
		        " event %" PRIu64 ", the archive %s ends at write %" PRIu64
		        " event %" PRIu64 " (or the chain or log id differs)",
		        walk->log_dir, next_name, header.write_first, header.event_first,
		        walk->archive_dir, end.write_next, end.event_next);
		return -1;
	}
	log_reader_close(walk->reader);
	walk->reader = NULL;
	walk->in_archive = false;
	if (reader_open(walk, walk->log_dir) != REPLAY_EXIT_OK)
		return -1;
	struct log_position start = end;
	start.segment = next;
	start.segment_size = 0;
	start.offset = LOG_BLOCK_SIZE;
	if (log_reader_seek(walk->reader, &start) != 0) {
		walk_fail(walk, REPLAY_EXIT_FAULT, "the archive %s ends at no valid position",
		          walk->archive_dir);
		return -1;
	}
	return 0;
}

int walk_next(struct walk *walk, struct log_record *record)
{
	if (walk->ended)
		return walk->exit == REPLAY_EXIT_OK ? 0 : -1;
	if ((walk->flags & WALK_APPLY) && walk_partial(walk) && !walk->started) {
		char name[32];
		walk_segment_name(walk->segment_first, name);
		walk_fail(
		        walk, REPLAY_EXIT_FAULT,
		        "the log in %s starts at %s: earlier segments were archived, and a replay "
		        "needs every record from the first (give --archive DIR) or a snapshot "
		        "at or after the start of the log present",
		        walk_segment_dir(walk, walk->segment_first), name);
		return -1;
	}
	enum log_status status = log_reader_next(walk->reader, record);
	if (status != LOG_RECORD && status != LOG_CORRUPT && status != LOG_ERROR &&
	    walk->in_archive && walk->live_last > walk->archive_last) {
		if (walk_cross(walk, status) != 0)
			return -1;
		status = log_reader_next(walk->reader, record);
	}
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
	if (walk_chain_known(walk) && chain_add_record(walk->chain, record) != 0) {
		walk_fail(walk, REPLAY_EXIT_ERROR, "SHA-256 (libcrypto) failed");
		return -1;
	}
	/* The record that ends at the kept head's position: the head covers it,
	 * the chain goes on after it. */
	if (walk->chain_waiting && record->write_sequence + 1 == walk->chain_at.write_next &&
	    header->checksum == walk->chain_at.checksum_prev &&
	    header->event_first + header->count == walk->chain_at.event_next)
		walk->chain_waiting = false;
	if (walk->service != NULL && walk->before_apply != NULL)
		walk->before_apply(walk->before_context, record);
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
