/*
 * log_writer.c — builds group-commit writes of the event log in memory and
 * places them in segments (the format is specified at the top of log.c).
 *
 * Owns: two write buffers of write_size_max bytes (allocated at init, never
 * per append), the chain and sequence counters, the open segment file.
 *
 * Invariants:
 *   - At most one write is in flight (sealed, not yet completed). Appends go
 *     to the other buffer meanwhile. This is what makes a torn write always
 *     the last write of the log, and why a new segment is created only
 *     while nothing is in flight: seal() is the only place that decides a
 *     roll, and it refuses to run with a write in flight.
 *   - The chain and event counters advance at append time; the durable
 *     position advances only in complete().
 *   - After a failed write, fdatasync or segment creation the writer is
 *     failed and every later call returns that error: the page cache may have
 *     dropped the data, so only recovery from the log can say what is true.
 *   - Both buffers are resident from init on (log_buffer_alloc): an append
 *     never takes a page fault, which would cost more than the copy itself
 *     (a 4 KiB fault per 25 events of 160 bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "log_internal.h"
#include "memory.h"

#if defined(__x86_64__)
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#endif

/* XXH3-64 of a record or a write payload: the very function skuld_checksum
 * computes (the format says XXH3-64, seed 0), but on x86-64 through
 * libxxhash's run-time dispatch, which uses the widest vector unit the CPU
 * has (AVX2, AVX-512) where the plain entry point keeps to the baseline.
 * These are the only inputs of kilobytes: 160 bytes per event. */
static uint64_t log_checksum_bulk(const void *bytes, size_t size)
{
#if defined(__x86_64__)
	return XXH3_64bits_dispatch(bytes, size);
#else
	return skuld_checksum(bytes, size);
#endif
}

struct log_writer {
	const struct log_os *os;
	char dir[LOG_PATH_SIZE];
	uint64_t segment_size_new; /* size of segments this writer creates */
	uint32_t write_size_max;   /* bytes of each buffer */
	skuld_u128 log_id;
	int failed; /* 0, or the -errno that failed the writer */

	uint8_t *buffers[2];
	uint32_t buffer_current; /* index of the buffer appends go to */

	/* The write being built in buffers[buffer_current]. */
	uint32_t payload_size;
	uint32_t record_count;
	uint64_t write_event_first;   /* event_next when its first record came */
	uint64_t write_checksum_prev; /* chain value before its first record */

	/* Append-time counters. */
	uint64_t write_next;    /* sequence the next sealed write gets */
	uint64_t event_next;    /* sequence the next appended event gets */
	uint64_t checksum_last; /* checksum of the last appended record */

	/* Placement: advanced by seal. */
	uint64_t segment;      /* segment of the last placed write; 0: none yet */
	uint64_t segment_size; /* its size */
	uint64_t offset;       /* where the next write goes in it */
	int fd;                /* its file; -1 until created */

	/* The write in flight. */
	bool in_flight;
	uint64_t flight_sequence;
	uint64_t flight_checksum_prev; /* chain before its first record (new segment header) */
	uint64_t flight_checksum_last; /* chain after its last record */

	struct log_position durable;
};

static int log_writer_config_valid(const struct log_writer_config *config)
{
	if (config->dir == NULL ||
	    strlen(config->dir) + LOG_SEGMENT_NAME_SIZE + 8 > LOG_PATH_SIZE) {
		return 0;
	}
	uint64_t segment_size = config->segment_size;
	if (segment_size < LOG_SEGMENT_SIZE_MIN || segment_size > LOG_SEGMENT_SIZE_MAX ||
	    segment_size % LOG_BLOCK_SIZE != 0) {
		return 0;
	}
	uint32_t write_size = config->write_size_max;
	if (write_size < LOG_BLOCK_SIZE || write_size % LOG_BLOCK_SIZE != 0 ||
	    write_size > LOG_WRITE_SIZE_MAX || write_size > segment_size - LOG_BLOCK_SIZE) {
		return 0;
	}
	return !skuld_u128_is_zero(config->log_id);
}

static int log_writer_resume_valid(const struct log_writer_config *config,
                                   const struct log_position *resume)
{
	if (resume->segment == 0) {
		/* A new log. (A log whose every segment was archived is not resumable.) */
		return resume->write_next == 1 && resume->event_next == 1;
	}
	uint64_t size = resume->segment_size;
	if (size < LOG_SEGMENT_SIZE_MIN || size > LOG_SEGMENT_SIZE_MAX || size % LOG_BLOCK_SIZE) {
		return 0;
	}
	if (resume->offset < LOG_BLOCK_SIZE || resume->offset > size ||
	    resume->offset % LOG_BLOCK_SIZE != 0) {
		return 0;
	}
	return resume->write_next >= 1 && resume->event_next >= 1 &&
	       skuld_u128_equal(resume->log_id, config->log_id);
}

/* A write buffer of size bytes (a multiple of LOG_BLOCK_SIZE): block
 * aligned, offered for huge pages when it spans them (2 MiB aligned then),
 * and written once so that the kernel backs it with real pages now rather
 * than on the append path. NULL when memory is short; free with free(). */
static uint8_t *log_buffer_alloc(uint32_t size)
{
	size_t align = size >= CORE_HUGE_PAGE ? CORE_HUGE_PAGE : LOG_BLOCK_SIZE;
	size_t rounded = ((size_t)size + align - 1) & ~(align - 1);
	void *buffer = NULL;
	if (posix_memalign(&buffer, align, rounded) != 0) {
		return NULL;
	}
	if (align == CORE_HUGE_PAGE) {
		madvise(buffer, rounded, MADV_HUGEPAGE); /* advice only: failure is fine */
	}
	memset(buffer, 0, rounded);
	return buffer;
}

int log_writer_init(struct log_writer **writer_out, const struct log_writer_config *config,
                    const struct log_position *resume)
{
	*writer_out = NULL;
	if (!log_writer_config_valid(config) || !log_writer_resume_valid(config, resume)) {
		return -EINVAL;
	}
	struct log_writer *writer = calloc(1, sizeof(*writer));
	if (writer == NULL) {
		return -ENOMEM;
	}
	writer->os = config->os != NULL ? config->os : &log_os_default;
	memcpy(writer->dir, config->dir, strlen(config->dir) + 1);
	writer->segment_size_new = config->segment_size;
	writer->write_size_max = config->write_size_max;
	writer->log_id = config->log_id;
	writer->fd = -1;
	writer->write_next = resume->write_next;
	writer->event_next = resume->event_next;
	writer->segment = resume->segment;
	writer->segment_size = resume->segment_size;
	writer->offset = resume->offset;
	writer->checksum_last =
	        resume->segment == 0 ? log_chain_seed(config->log_id) : resume->checksum_prev;
	writer->durable = *resume;
	writer->durable.checksum_prev = writer->checksum_last;
	writer->durable.log_id = config->log_id;

	int ret = 0;
	for (int index = 0; index < 2 && ret == 0; index++) {
		writer->buffers[index] = log_buffer_alloc(config->write_size_max);
		if (writer->buffers[index] == NULL) {
			ret = -ENOMEM;
		}
	}
	if (ret == 0 && resume->segment != 0) {
		char path[LOG_PATH_SIZE];
		ret = log_segment_path(path, sizeof(path), writer->dir, resume->segment, "");
		if (ret == 0) {
			writer->fd = writer->os->open(path, O_RDWR | O_CLOEXEC, 0);
			ret = writer->fd < 0 ? -errno : 0;
		}
	}
	if (ret != 0) {
		log_writer_close(writer);
		return ret;
	}
	*writer_out = writer;
	return 0;
}

int log_writer_append(struct log_writer *writer, const struct log_record_info *info,
                      const struct skuld_event *events, const struct skuld_result *results,
                      uint32_t count, uint64_t *event_first)
{
	SKULD_ASSERT(info != NULL);
	SKULD_ASSERT(count == 0 || events != NULL);
	SKULD_ASSERT(count == 0 || results != NULL);
	if (writer->failed != 0) {
		return writer->failed;
	}
	uint64_t record_size = log_record_size(count);
	if (LOG_WRITE_HEADER_SIZE + record_size > writer->write_size_max) {
		return -EMSGSIZE;
	}
	if (LOG_WRITE_HEADER_SIZE + writer->payload_size + record_size > writer->write_size_max) {
		return -ENOSPC;
	}
	SKULD_ASSERT(writer->event_next + count >= writer->event_next);
	if (writer->record_count == 0) {
		writer->write_event_first = writer->event_next;
		writer->write_checksum_prev = writer->checksum_last;
	}
	uint8_t *record = writer->buffers[writer->buffer_current] + LOG_WRITE_HEADER_SIZE +
	                  writer->payload_size;
	struct log_record_header header = {
	        .checksum_prev = writer->checksum_last,
	        .event_first = writer->event_next,
	        .timestamp_ns = info->timestamp_ns,
	        .client = info->client,
	        .request = info->request,
	        .count = count,
	        .operation = info->operation,
	};
	memcpy(record, &header, sizeof(header));
	if (count > 0) {
		uint64_t events_size = (uint64_t)count * SKULD_EVENT_SIZE;
		memcpy(record + LOG_RECORD_HEADER_SIZE, events, events_size);
		memcpy(record + LOG_RECORD_HEADER_SIZE + events_size, results,
		       (uint64_t)count * SKULD_RESULT_SIZE);
	}
	header.checksum = log_checksum_bulk(record + 8, record_size - 8);
	memcpy(record, &header.checksum, sizeof(header.checksum));

	if (event_first != NULL) {
		*event_first = writer->event_next;
	}
	writer->checksum_last = header.checksum;
	writer->event_next += count;
	writer->payload_size += (uint32_t)record_size;
	writer->record_count += 1;
	return 0;
}

/* Decides where a write of size bytes goes: the current segment if it fits,
 * else the start of a new one (closing the old file: nothing is in flight). */
static bool log_writer_place(struct log_writer *writer, uint64_t size)
{
	if (writer->segment != 0 && writer->offset + size <= writer->segment_size) {
		return false;
	}
	if (writer->fd >= 0) {
		writer->os->close(writer->fd);
		writer->fd = -1;
	}
	writer->segment += 1;
	writer->segment_size = writer->segment_size_new;
	writer->offset = LOG_BLOCK_SIZE;
	SKULD_ASSERT(writer->offset + size <= writer->segment_size);
	return true;
}

int log_writer_seal(struct log_writer *writer, struct log_write *write)
{
	if (writer->failed != 0) {
		return writer->failed;
	}
	SKULD_ASSERT(!writer->in_flight); /* at most one write in flight */
	if (writer->record_count == 0) {
		return -ENODATA;
	}
	uint8_t *buffer = writer->buffers[writer->buffer_current];
	uint64_t used = LOG_WRITE_HEADER_SIZE + writer->payload_size;
	uint64_t size = log_align_up(used);
	SKULD_ASSERT(size <= writer->write_size_max);
	memset(buffer + used, 0, size - used);

	struct log_write_header header = {
	        .magic = LOG_WRITE_MAGIC,
	        .sequence = writer->write_next,
	        .event_first = writer->write_event_first,
	        .payload_size = writer->payload_size,
	        .record_count = writer->record_count,
	        .log_id = writer->log_id,
	};
	header.checksum_payload =
	        log_checksum_bulk(buffer + LOG_WRITE_HEADER_SIZE, writer->payload_size);
	header.checksum_header = log_write_header_checksum(&header);
	memcpy(buffer, &header, sizeof(header));

	bool create = log_writer_place(writer, size);
	*write = (struct log_write){
	        .sequence = writer->write_next,
	        .segment = writer->segment,
	        .offset = writer->offset,
	        .data = buffer,
	        .size = (uint32_t)size,
	        .record_count = writer->record_count,
	        .event_first = writer->write_event_first,
	        .event_next = writer->event_next,
	        .fd = writer->fd,
	        .create_segment = create,
	};
	writer->offset += size;
	writer->in_flight = true;
	writer->flight_sequence = writer->write_next;
	writer->flight_checksum_prev = writer->write_checksum_prev;
	writer->flight_checksum_last = writer->checksum_last;

	writer->write_next += 1;
	writer->buffer_current ^= 1u;
	writer->payload_size = 0;
	writer->record_count = 0;
	return 0;
}

static void log_writer_segment_header(const struct log_writer *writer,
                                      const struct log_write *write, uint8_t *block)
{
	struct log_segment_header header = {
	        .magic = LOG_SEGMENT_MAGIC,
	        .version = LOG_FORMAT_VERSION,
	        .block_size = LOG_BLOCK_SIZE,
	        .segment = write->segment,
	        .segment_size = writer->segment_size,
	        .write_first = write->sequence,
	        .event_first = write->event_first,
	        .checksum_prev = writer->flight_checksum_prev,
	        .created_ns = writer->os->clock_ns(),
	        .log_id = writer->log_id,
	};
	header.checksum_header = log_segment_header_checksum(&header);
	memset(block, 0, LOG_BLOCK_SIZE);
	memcpy(block, &header, sizeof(header));
}

/* Pre-allocates size bytes of zeros: fallocate, or writing zeros where the
 * file system cannot. Returns 0 or -errno. */
static int log_preallocate(const struct log_os *os, int fd, uint64_t size)
{
	if (os->fallocate(fd, 0, 0, (off_t)size) == 0) {
		return 0;
	}
	int error = errno;
	if (error != EOPNOTSUPP && error != ENOSYS && error != EINVAL) {
		return -error;
	}
	return log_write_zeros(os, fd, 0, size);
}

int log_writer_create_segment(struct log_writer *writer, struct log_write *write)
{
	SKULD_ASSERT(writer->in_flight && write->sequence == writer->flight_sequence);
	SKULD_ASSERT(write->create_segment && write->segment == writer->segment);
	SKULD_ASSERT(writer->fd < 0);
	if (writer->failed != 0) {
		return writer->failed;
	}
	const struct log_os *os = writer->os;
	char path_temporary[LOG_PATH_SIZE];
	char path[LOG_PATH_SIZE];
	int ret = log_segment_path(path_temporary, sizeof(path_temporary), writer->dir,
	                           write->segment, ".tmp");
	SKULD_ASSERT(ret == 0); /* the directory length was checked at init */
	ret = log_segment_path(path, sizeof(path), writer->dir, write->segment, "");
	SKULD_ASSERT(ret == 0);

	int fd = os->open(path_temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		goto failed;
	}
	ret = log_preallocate(os, fd, writer->segment_size);
	if (ret == 0) {
		uint8_t block[LOG_BLOCK_SIZE];
		log_writer_segment_header(writer, write, block);
		ret = log_pwrite_all(os, fd, block, sizeof(block), 0);
	}
	if (ret == 0 && os->fsync(fd) != 0) {
		ret = -errno;
	}
	if (ret == 0 && os->rename(path_temporary, path) != 0) {
		ret = -errno;
	}
	if (ret == 0) {
		ret = log_fsync_dir(os, writer->dir);
	}
	if (ret != 0) {
		os->close(fd);
		goto failed;
	}
	writer->fd = fd;
	write->fd = fd;
	return 0;
failed:
	writer->failed = ret;
	return ret;
}

int log_write_sync(struct log_writer *writer, struct log_write *write)
{
	SKULD_ASSERT(writer->in_flight && write->sequence == writer->flight_sequence);
	if (writer->failed != 0) {
		return writer->failed;
	}
	int ret = 0;
	if (write->create_segment && write->fd < 0) {
		ret = log_writer_create_segment(writer, write);
		if (ret != 0) {
			return ret;
		}
	}
	SKULD_ASSERT(write->fd >= 0 && write->fd == writer->fd);
	ret = log_pwrite_all(writer->os, write->fd, write->data, write->size, write->offset);
	if (ret == 0 && writer->os->fdatasync(write->fd) != 0) {
		ret = -errno;
	}
	if (ret != 0) {
		writer->failed = ret; /* never retried: see the file comment */
	}
	return ret;
}

void log_writer_complete(struct log_writer *writer, const struct log_write *write)
{
	SKULD_ASSERT(writer->in_flight);
	SKULD_ASSERT(write->sequence == writer->flight_sequence);
	SKULD_ASSERT(writer->failed == 0);
	writer->durable.segment = write->segment;
	writer->durable.segment_size = writer->segment_size;
	writer->durable.offset = write->offset + write->size;
	writer->durable.write_next = write->sequence + 1;
	writer->durable.event_next = write->event_next;
	writer->durable.checksum_prev = writer->flight_checksum_last;
	writer->in_flight = false;
}

void log_writer_fail(struct log_writer *writer, int error)
{
	SKULD_ASSERT(error < 0);
	if (writer->failed == 0) {
		writer->failed = error;
	}
}

int log_writer_flush(struct log_writer *writer)
{
	struct log_write write;
	int ret = log_writer_seal(writer, &write);
	if (ret != 0) {
		return ret;
	}
	ret = log_write_sync(writer, &write);
	if (ret != 0) {
		return ret;
	}
	log_writer_complete(writer, &write);
	return 0;
}

void log_writer_position(const struct log_writer *writer, struct log_position *position)
{
	*position = writer->durable;
}

uint64_t log_writer_event_next(const struct log_writer *writer)
{
	return writer->event_next;
}

uint64_t log_writer_checksum_last(const struct log_writer *writer)
{
	return writer->checksum_last;
}

void log_writer_close(struct log_writer *writer)
{
	if (writer == NULL) {
		return;
	}
	SKULD_ASSERT(!writer->in_flight || writer->failed != 0);
	if (writer->fd >= 0) {
		writer->os->close(writer->fd);
	}
	free(writer->buffers[0]);
	free(writer->buffers[1]);
	free(writer);
}
