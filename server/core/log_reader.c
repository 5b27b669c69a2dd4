/*
 * log_reader.c — walks a directory of log segments record by record and
 * decides how the log ends: clean, torn last write, or corrupt (the rules are
 * at the top of log.c).
 *
 * Owns: the sorted list of segment indices found at open, and one buffer as
 * large as the largest segment, into which each segment is read whole with
 * pread. Records handed out point into that buffer. A walk starts at the
 * first segment, or (log_reader_seek, recovery from a snapshot) at a
 * position inside a later one, with the sequences and chain value the log
 * has there; nothing before that position is read.
 *
 * Invariants:
 *   - Nothing read from disk is trusted before it is checked: every size and
 *     count is bounded by the bytes that remain before it is used, and a
 *     write's records are handed out only after its payload checksum and
 *     padding check out. Bad disk bytes produce LOG_CORRUPT or LOG_END_TORN,
 *     never an assertion.
 *   - write_next, event_next and checksum_prev are what the next write,
 *     event and record must carry; they advance only over validated data, so
 *     at a clean or torn end they are exactly where a writer resumes.
 *   - Once the walk has ended, the outcome never changes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "log_internal.h"

struct log_reader {
	const struct log_os *os;
	char dir[LOG_PATH_SIZE];
	uint64_t *segments; /* indices found at open, ascending */
	uint32_t segment_count;
	uint32_t segment_cursor; /* index into segments of the next to load */

	uint8_t *buffer; /* the current segment, whole */
	uint64_t buffer_size;
	bool loaded; /* buffer holds a validated segment */
	uint64_t segment;
	uint64_t segment_size;
	char path[LOG_PATH_SIZE];
	uint64_t offset; /* next write's offset in the segment */

	/* The write whose records are being handed out. */
	bool in_write;
	uint64_t write_offset;
	uint64_t write_sequence;
	uint64_t record_offset;
	uint64_t payload_end;
	uint32_t records_left;

	/* What the next write, event and record must carry. */
	bool started; /* a segment header set the expectations */
	uint64_t write_next;
	uint64_t event_next;
	uint64_t checksum_prev;
	skuld_u128 log_id;

	/* log_reader_seek: the next segment loaded is seek.segment, its walk
	 * starts at seek.offset. */
	bool seeking;
	struct log_position seek;

	bool ended;
	struct log_outcome outcome;
};

/* ---- Open --------------------------------------------------------------- */

/* Parses "log-<16 lower-case hex>.skl". Returns 1 and sets *segment if so. */
static int log_name_parse(const char *name, uint64_t *segment)
{
	if (strlen(name) != LOG_SEGMENT_NAME_SIZE - 1 || memcmp(name, "log-", 4) != 0 ||
	    memcmp(name + 20, ".skl", 4) != 0) {
		return 0;
	}
	uint64_t value = 0;
	for (int index = 4; index < 20; index++) {
		char digit = name[index];
		if (digit >= '0' && digit <= '9') {
			value = value << 4 | (uint64_t)(digit - '0');
		} else if (digit >= 'a' && digit <= 'f') {
			value = value << 4 | (uint64_t)(digit - 'a' + 10);
		} else {
			return 0;
		}
	}
	*segment = value;
	return 1;
}

static int log_compare_u64(const void *a, const void *b)
{
	uint64_t left = *(const uint64_t *)a;
	uint64_t right = *(const uint64_t *)b;
	return (left > right) - (left < right);
}

/* Collects the segment indices in reader->dir, sorted. Returns 0 or -errno. */
static int log_reader_list(struct log_reader *reader)
{
	DIR *directory = opendir(reader->dir);
	if (directory == NULL) {
		return -errno;
	}
	uint32_t capacity = 0;
	int ret = 0;
	struct dirent *entry;
	while (ret == 0 && (entry = readdir(directory)) != NULL) {
		uint64_t segment;
		if (!log_name_parse(entry->d_name, &segment)) {
			continue;
		}
		if (reader->segment_count == capacity) {
			uint32_t grown = capacity == 0 ? 16 : capacity * 2;
			uint64_t *list = realloc(reader->segments, grown * sizeof(uint64_t));
			if (list == NULL) {
				ret = -ENOMEM; /* the old list is freed by log_reader_close */
				break;
			}
			reader->segments = list;
			capacity = grown;
		}
		reader->segments[reader->segment_count++] = segment;
	}
	closedir(directory);
	if (ret == 0 && reader->segment_count > 0) {
		qsort(reader->segments, reader->segment_count, sizeof(uint64_t), log_compare_u64);
	}
	return ret;
}

/* Size of the buffer: the largest segment file, capped at the format's
 * maximum (a larger file is reported as corrupt when it is reached). */
static int log_reader_size_buffer(struct log_reader *reader)
{
	uint64_t largest = LOG_SEGMENT_SIZE_MIN;
	for (uint32_t index = 0; index < reader->segment_count; index++) {
		char path[LOG_PATH_SIZE];
		int ret = log_segment_path(path, sizeof(path), reader->dir, reader->segments[index],
		                           "");
		if (ret != 0) {
			return ret;
		}
		int fd = reader->os->open(path, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0) {
			return -errno;
		}
		struct stat status;
		ret = reader->os->fstat(fd, &status) == 0 ? 0 : -errno;
		reader->os->close(fd);
		if (ret != 0) {
			return ret;
		}
		uint64_t size = status.st_size < 0 ? 0 : (uint64_t)status.st_size;
		if (size <= LOG_SEGMENT_SIZE_MAX && size > largest) {
			largest = size;
		}
	}
	reader->buffer_size = log_align_up(largest);
	reader->buffer = aligned_alloc(LOG_BLOCK_SIZE, reader->buffer_size);
	return reader->buffer == NULL ? -ENOMEM : 0;
}

int log_reader_open(struct log_reader **reader_out, const char *dir, const struct log_os *os)
{
	*reader_out = NULL;
	if (strlen(dir) + LOG_SEGMENT_NAME_SIZE + 8 > LOG_PATH_SIZE) {
		return -ENAMETOOLONG;
	}
	struct log_reader *reader = calloc(1, sizeof(*reader));
	if (reader == NULL) {
		return -ENOMEM;
	}
	reader->os = os != NULL ? os : &log_os_default;
	memcpy(reader->dir, dir, strlen(dir) + 1);
	reader->write_next = 1;
	reader->event_next = 1;
	int ret = log_reader_list(reader);
	if (ret == 0) {
		ret = log_reader_size_buffer(reader);
	}
	if (ret != 0) {
		log_reader_close(reader);
		return ret;
	}
	*reader_out = reader;
	return 0;
}

void log_reader_close(struct log_reader *reader)
{
	if (reader == NULL) {
		return;
	}
	free(reader->segments);
	free(reader->buffer);
	free(reader);
}

int log_reader_seek(struct log_reader *reader, const struct log_position *start)
{
	if (reader->started || reader->loaded || reader->ended || start->segment == 0 ||
	    start->offset < LOG_BLOCK_SIZE || start->offset % LOG_BLOCK_SIZE != 0 ||
	    start->write_next == 0 || start->event_next == 0 || skuld_u128_is_zero(start->log_id)) {
		return -EINVAL;
	}
	uint32_t cursor = 0;
	while (cursor < reader->segment_count && reader->segments[cursor] < start->segment) {
		cursor++;
	}
	reader->segment_cursor = cursor;
	reader->seeking = true;
	reader->seek = *start;
	/* What the walk expects from here, as if it had read up to start. */
	reader->started = true;
	reader->log_id = start->log_id;
	reader->segment = start->segment - 1;
	reader->write_next = start->write_next;
	reader->event_next = start->event_next;
	reader->checksum_prev = start->checksum_prev;
	return 0;
}

/* ---- Endings ------------------------------------------------------------ */

__attribute__((format(printf, 5, 6))) static enum log_status
log_reader_end(struct log_reader *reader, enum log_status status, uint64_t segment, uint64_t offset,
               const char *format, ...)
{
	SKULD_ASSERT(!reader->ended);
	SKULD_ASSERT(status != LOG_RECORD);
	struct log_outcome *outcome = &reader->outcome;
	outcome->status = status;
	outcome->segment = segment;
	outcome->offset = offset;
	if (segment != 0) {
		int ret = log_segment_path(outcome->file, sizeof(outcome->file), reader->dir,
		                           segment, "");
		SKULD_ASSERT(ret == 0);
	}
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(outcome->reason, sizeof(outcome->reason), format, arguments);
	va_end(arguments);
	reader->ended = true;
	return status;
}

#define log_reader_corrupt(reader, offset, ...)                                                    \
	log_reader_end(reader, LOG_CORRUPT, (reader)->segment, offset, __VA_ARGS__)

static enum log_status log_reader_error(struct log_reader *reader, int error, const char *what)
{
	enum log_status status = log_reader_end(reader, LOG_ERROR, reader->segment, 0, "%s: %s",
	                                        what, strerror(-error));
	reader->outcome.error = error;
	return status;
}

const struct log_outcome *log_reader_outcome(const struct log_reader *reader)
{
	return &reader->outcome;
}

int log_reader_position(const struct log_reader *reader, struct log_position *position)
{
	if (!reader->ended ||
	    (reader->outcome.status != LOG_END_CLEAN && reader->outcome.status != LOG_END_TORN)) {
		return -EINVAL;
	}
	*position = (struct log_position){
	        .segment = reader->segment,
	        .segment_size = reader->segment_size,
	        .offset = reader->offset,
	        .write_next = reader->write_next,
	        .event_next = reader->event_next,
	        .checksum_prev = reader->checksum_prev,
	        .log_id = reader->log_id,
	};
	return 0;
}

/* ---- Segments ----------------------------------------------------------- */

/* Checks the segment header in the buffer against the file and the log so
 * far. Returns LOG_RECORD when valid, else ends the walk with LOG_CORRUPT. */
static enum log_status log_reader_check_segment(struct log_reader *reader, uint64_t file_size)
{
	struct log_segment_header header;
	memcpy(&header, reader->buffer, sizeof(header));
	if (header.magic != LOG_SEGMENT_MAGIC) {
		return log_reader_corrupt(reader, 0, "segment header: bad magic");
	}
	if (header.version != LOG_FORMAT_VERSION) {
		return log_reader_corrupt(
		        reader, 0, "segment header: unsupported format version %u", header.version);
	}
	if (header.checksum_header != log_segment_header_checksum(&header)) {
		return log_reader_corrupt(reader, 0, "segment header: checksum mismatch");
	}
	if (header.block_size != LOG_BLOCK_SIZE ||
	    !log_bytes_zero(header.reserved, sizeof(header.reserved)) ||
	    !log_bytes_zero(reader->buffer + sizeof(header), LOG_BLOCK_SIZE - sizeof(header))) {
		return log_reader_corrupt(reader, 0, "segment header: bad block size or padding");
	}
	if (header.segment == 0) {
		/* Indices start at 1: a position at segment 0 means an empty log,
		 * so a segment 0 could be neither resumed nor discarded. */
		return log_reader_corrupt(reader, 0,
		                          "segment header: index 0 (indices start at 1)");
	}
	if (header.segment != reader->segment) {
		return log_reader_corrupt(reader, 0,
		                          "segment header: index %" PRIu64 " in file %" PRIu64,
		                          header.segment, reader->segment);
	}
	if (header.segment_size != file_size) {
		return log_reader_corrupt(reader, 0,
		                          "segment header: size %" PRIu64 ", file has %" PRIu64,
		                          header.segment_size, file_size);
	}
	if (skuld_u128_is_zero(header.log_id) ||
	    (reader->started && !skuld_u128_equal(header.log_id, reader->log_id))) {
		return log_reader_corrupt(reader, 0, "segment header: log id of another log");
	}
	if (!reader->started) {
		reader->started = true;
		reader->log_id = header.log_id;
		if (header.segment != 1) { /* earlier segments archived: start here */
			reader->write_next = header.write_first;
			reader->event_next = header.event_first;
			reader->checksum_prev = header.checksum_prev;
		} else {
			reader->checksum_prev = log_chain_seed(header.log_id);
		}
	}
	if (reader->seeking) {
		/* The walk starts inside this segment: its header starts at or
		 * before the position. */
		if (header.write_first > reader->write_next ||
		    header.event_first > reader->event_next ||
		    reader->seek.offset > header.segment_size) {
			return log_reader_corrupt(
			        reader, 0,
			        "segment header: starts at write %" PRIu64 " event %" PRIu64
			        ", after the position to resume "
			        "(write %" PRIu64 " event %" PRIu64 " offset %" PRIu64 ")",
			        header.write_first, header.event_first, reader->write_next,
			        reader->event_next, reader->seek.offset);
		}
		return LOG_RECORD;
	}
	if (header.write_first != reader->write_next || header.event_first != reader->event_next ||
	    header.checksum_prev != reader->checksum_prev) {
		return log_reader_corrupt(reader, 0,
		                          "segment header: continues write %" PRIu64
		                          " event %" PRIu64 ", log is at write %" PRIu64
		                          " event %" PRIu64 " (or the chain differs)",
		                          header.write_first, header.event_first,
		                          reader->write_next, reader->event_next);
	}
	return LOG_RECORD;
}

/* Reads the next segment whole and checks its header. Returns LOG_RECORD
 * when it is ready, else ends the walk. */
static enum log_status log_reader_load(struct log_reader *reader)
{
	SKULD_ASSERT(reader->segment_cursor < reader->segment_count);
	uint64_t segment = reader->segments[reader->segment_cursor++];
	if (reader->started && segment != reader->segment + 1) {
		uint64_t missing = reader->segment + 1;
		reader->segment = segment;
		return log_reader_corrupt(reader, 0, "segment %" PRIu64 " is missing", missing);
	}
	reader->segment = segment;
	reader->loaded = false;
	int ret = log_segment_path(reader->path, sizeof(reader->path), reader->dir, segment, "");
	SKULD_ASSERT(ret == 0);
	int fd = reader->os->open(reader->path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		return log_reader_error(reader, -errno, "open");
	}
	struct stat status;
	if (reader->os->fstat(fd, &status) != 0) {
		ret = -errno;
		reader->os->close(fd);
		return log_reader_error(reader, ret, "fstat");
	}
	uint64_t size = status.st_size < 0 ? 0 : (uint64_t)status.st_size;
	if (size < LOG_SEGMENT_SIZE_MIN || size % LOG_BLOCK_SIZE != 0 ||
	    size > reader->buffer_size) {
		reader->os->close(fd);
		return log_reader_corrupt(reader, 0, "segment file size %" PRIu64 " is invalid",
		                          size);
	}
	/* A walk that resumes inside this segment never looks at the bytes
	 * between the header block and its position: they are not read. */
	uint64_t skip_to = LOG_BLOCK_SIZE;
	if (reader->seeking && reader->seek.offset > LOG_BLOCK_SIZE &&
	    reader->seek.offset <= size) {
		skip_to = reader->seek.offset;
	}
	ret = log_pread_all(reader->os, fd, reader->buffer, LOG_BLOCK_SIZE, 0);
	if (ret == 0) {
		ret = log_pread_all(reader->os, fd, reader->buffer + skip_to, size - skip_to,
		                    skip_to);
	}
	reader->os->close(fd);
	if (ret != 0) {
		return log_reader_error(reader, ret, "pread");
	}
	reader->segment_size = size;
	if (log_reader_check_segment(reader, size) != LOG_RECORD) {
		return reader->outcome.status;
	}
	reader->loaded = true;
	reader->offset = reader->seeking ? reader->seek.offset : LOG_BLOCK_SIZE;
	reader->seeking = false;
	return LOG_RECORD;
}

/* ---- Writes ------------------------------------------------------------- */

/* A write header whose magic, checksum and log id are right: only the writer
 * makes these, so one found after a damaged write proves the damage is not
 * a torn last write. */
static bool log_reader_header_genuine(const struct log_reader *reader, uint64_t offset)
{
	struct log_write_header header;
	memcpy(&header, reader->buffer + offset, sizeof(header));
	return header.magic == LOG_WRITE_MAGIC &&
	       header.checksum_header == log_write_header_checksum(&header) &&
	       skuld_u128_equal(header.log_id, reader->log_id);
}

/* The write at offset is damaged (why says how). It is a torn last write if
 * nothing the writer wrote later survives; otherwise the log is corrupt. */
static enum log_status log_reader_damaged(struct log_reader *reader, uint64_t offset,
                                          const char *why)
{
	if (reader->segment_cursor < reader->segment_count) {
		return log_reader_corrupt(reader, offset, "%s, and segment %" PRIu64 " follows",
		                          why, reader->segments[reader->segment_cursor]);
	}
	for (uint64_t later = offset + LOG_BLOCK_SIZE; later < reader->segment_size;
	     later += LOG_BLOCK_SIZE) {
		if (log_reader_header_genuine(reader, later)) {
			return log_reader_corrupt(
			        reader, offset, "%s, and a valid write follows at offset %" PRIu64,
			        why, later);
		}
	}
	reader->offset = offset;
	return log_reader_end(reader, LOG_END_TORN, reader->segment, offset,
	                      "torn write (%s) discarded", why);
}

/* Checks the fields of a genuine write header at offset. Returns NULL when
 * they are right, else what is wrong (which only corruption can cause). */
static const char *log_reader_write_fields(const struct log_reader *reader,
                                           const struct log_write_header *header, uint64_t offset)
{
	if (header->reserved != 0) {
		return "write header: reserved bytes are not zero";
	}
	if (header->sequence != reader->write_next) {
		return "write header: out of sequence";
	}
	if (header->event_first != reader->event_next) {
		return "write header: first event out of sequence";
	}
	if (header->record_count == 0 || header->payload_size < LOG_RECORD_HEADER_SIZE ||
	    header->payload_size > reader->segment_size - offset - LOG_WRITE_HEADER_SIZE) {
		return "write header: size or record count out of range";
	}
	return NULL;
}

/* Validates the write at reader->offset and starts handing out its records.
 * Returns LOG_RECORD when a write is ready, LOG_END_CLEAN when the segment
 * has no more writes (without ending the walk), or ends the walk. */
static enum log_status log_reader_write(struct log_reader *reader)
{
	uint64_t offset = reader->offset;
	if (offset >= reader->segment_size) {
		return LOG_END_CLEAN; /* the segment is full */
	}
	const uint8_t *bytes = reader->buffer + offset;
	if (log_bytes_zero(bytes, LOG_WRITE_HEADER_SIZE)) {
		if (log_bytes_zero(bytes, reader->segment_size - offset)) {
			return LOG_END_CLEAN;
		}
		return log_reader_damaged(reader, offset, "no write header, but non-zero bytes");
	}
	if (!log_reader_header_genuine(reader, offset)) {
		return log_reader_damaged(reader, offset, "write header is not valid");
	}
	struct log_write_header header;
	memcpy(&header, bytes, sizeof(header));
	const char *wrong = log_reader_write_fields(reader, &header, offset);
	if (wrong != NULL) {
		return log_reader_corrupt(reader, offset,
		                          "%s (write %" PRIu64 ", expected %" PRIu64 ")", wrong,
		                          header.sequence, reader->write_next);
	}
	const uint8_t *payload = bytes + LOG_WRITE_HEADER_SIZE;
	if (skuld_checksum(payload, header.payload_size) != header.checksum_payload) {
		return log_reader_damaged(reader, offset, "payload checksum mismatch");
	}
	uint64_t used = LOG_WRITE_HEADER_SIZE + (uint64_t)header.payload_size;
	uint64_t size = log_align_up(used);
	if (!log_bytes_zero(bytes + used, size - used)) {
		return log_reader_damaged(reader, offset, "padding is not zero");
	}
	reader->in_write = true;
	reader->write_offset = offset;
	reader->write_sequence = header.sequence;
	reader->record_offset = offset + LOG_WRITE_HEADER_SIZE;
	reader->payload_end = offset + used;
	reader->records_left = header.record_count;
	reader->write_next += 1;
	return LOG_RECORD;
}

/* ---- Records ------------------------------------------------------------ */

/* Hands out the next record of the current write after checking it. */
static enum log_status log_reader_record(struct log_reader *reader, struct log_record *record)
{
	uint64_t offset = reader->record_offset;
	uint64_t remaining = reader->payload_end - offset;
	if (remaining < LOG_RECORD_HEADER_SIZE) {
		return log_reader_corrupt(reader, offset, "record header overruns the payload");
	}
	const uint8_t *bytes = reader->buffer + offset;
	const struct log_record_header *header = (const struct log_record_header *)bytes;
	uint64_t size = log_record_size(header->count);
	if (size > remaining) {
		return log_reader_corrupt(reader, offset,
		                          "record of %" PRIu32 " events overruns the payload",
		                          header->count);
	}
	if (skuld_checksum(bytes + 8, size - 8) != header->checksum) {
		return log_reader_corrupt(reader, offset, "record checksum mismatch");
	}
	if (header->checksum_prev != reader->checksum_prev) {
		return log_reader_corrupt(reader, offset,
		                          "chain broken: record links to %016" PRIx64
		                          ", previous record is %016" PRIx64,
		                          header->checksum_prev, reader->checksum_prev);
	}
	if (header->event_first != reader->event_next ||
	    header->count > UINT64_MAX - reader->event_next) {
		return log_reader_corrupt(reader, offset,
		                          "event sequence %" PRIu64 ", expected %" PRIu64,
		                          header->event_first, reader->event_next);
	}
	if (!log_bytes_zero(header->reserved, sizeof(header->reserved))) {
		return log_reader_corrupt(reader, offset, "record reserved bytes are not zero");
	}
	reader->records_left -= 1;
	if ((reader->records_left == 0) != (offset + size == reader->payload_end)) {
		return log_reader_corrupt(reader, reader->write_offset,
		                          "record count does not match the payload size");
	}
	reader->checksum_prev = header->checksum;
	reader->event_next += header->count;
	reader->record_offset = offset + size;
	const uint8_t *events = bytes + LOG_RECORD_HEADER_SIZE;
	*record = (struct log_record){
	        .header = header,
	        .events = (const struct skuld_event *)events,
	        .results = (const struct skuld_result *)(events + (uint64_t)header->count *
	                                                                  SKULD_EVENT_SIZE),
	        .segment = reader->segment,
	        .offset = offset,
	        .write_sequence = reader->write_sequence,
	};
	return LOG_RECORD;
}

enum log_status log_reader_next(struct log_reader *reader, struct log_record *record)
{
	/* Bounded: each pass consumes a record, a write or a segment. */
	while (!reader->ended) {
		if (reader->in_write && reader->records_left > 0) {
			return log_reader_record(reader, record);
		}
		if (reader->in_write) {
			reader->in_write = false;
			reader->offset = log_align_up(reader->payload_end);
			continue;
		}
		if (!reader->loaded) {
			if (reader->seeking && reader->segment_cursor == reader->segment_count) {
				reader->segment = reader->seek.segment;
				return log_reader_corrupt(reader, 0,
				                          "segment %" PRIu64
				                          ", where the walk resumes, is missing",
				                          reader->seek.segment);
			}
			if (reader->segment_count == 0) {
				return log_reader_end(reader, LOG_END_CLEAN, 0, 0, "empty log");
			}
			if (log_reader_load(reader) != LOG_RECORD) {
				return reader->outcome.status;
			}
			continue;
		}
		enum log_status status = log_reader_write(reader);
		if (status == LOG_END_CLEAN) {
			if (reader->segment_cursor == reader->segment_count) {
				return log_reader_end(reader, LOG_END_CLEAN, reader->segment,
				                      reader->offset, "clean end");
			}
			reader->loaded = false;
		}
	}
	return reader->outcome.status;
}
