/*
 * log.c — the event log's format, and the pieces the reader and the writer
 * share (names, checksums, the system-call table).
 *
 * This comment is the specification of log format version 1; docs/FORMAT.md
 * says the same with byte tables. All integers are little-endian. XXH3 means
 * XXH3-64 with seed 0 (skuld_checksum).
 *
 * DIRECTORY. A log is one directory of segment files named
 * "log-XXXXXXXXXXXXXXXX.skl", where the X are the segment index in 16
 * lower-case hex digits. Indices start at 1 and are consecutive; other names
 * (such as the "*.tmp" of a segment being created) are ignored.
 *
 * SEGMENT. A segment file is pre-allocated to its full size (a multiple of
 * 4096 bytes, at least 8192) and zero-filled when it is created. Its first
 * 4096-byte block holds the 128-byte segment header, then zeros:
 *
 *     0   8  magic "SKULDLOG"
 *     8   4  format version (1)
 *    12   4  block size (4096)
 *    16   8  segment index (equals the number in the file name)
 *    24   8  segment size in bytes (equals the file size)
 *    32   8  sequence of the first write in the segment
 *    40   8  sequence of the first event in the segment
 *    48   8  checksum of the last record before the segment (the chain)
 *    56   8  creation time, ns since the Unix epoch (informational)
 *    64  16  log id: random per ledger, the same in every segment, non-zero
 *    80  40  reserved, zero
 *   120   8  XXH3 of bytes 0..119
 *
 * A segment is created under "<name>.tmp", zero-filled, given its header,
 * fsynced, renamed into place, and the directory fsynced; so a segment file
 * with a bad header was damaged after it was created, never torn.
 *
 * WRITES. After the first block a segment holds group-commit writes, back to
 * back, each starting on a 4096-byte boundary and padded with zeros to a
 * multiple of 4096 bytes. A write never straddles two segments; when the next
 * write does not fit, the writer starts a new segment. A write starts with a
 * 64-byte write header:
 *
 *     0   4  magic "SLDW"
 *     4   4  reserved, zero
 *     8   8  write sequence: 1 for the first write of the log, then +1
 *    16   8  sequence of the first event of the first record
 *    24   4  payload size: bytes of records that follow the header
 *    28   4  record count (at least 1)
 *    32  16  log id (equals the segment header's)
 *    48   8  XXH3 of the payload
 *    56   8  XXH3 of bytes 0..55
 *
 * The log id in every write header means that a client, who controls most of
 * the bytes of its events and so could place a well-formed header inside a
 * payload, cannot forge one that the reader would accept: it does not know
 * the log id.
 *
 * RECORDS. The payload is records back to back, each one applied batch:
 *
 *     0   8  XXH3 of the record from byte 8 to its end
 *     8   8  checksum of the previous record in the log (the chain); the
 *            first record of a log links to the chain seed, XXH3 of the 16
 *            bytes "skuld log chain\0" followed by the log id
 *    16   8  sequence of the first event (events are numbered 1, 2, 3, ...
 *            across the log, consecutive across records; a record of 0
 *            events carries the next sequence)
 *    24   8  server timestamp of the batch, ns since the Unix epoch
 *    32  16  client id (zero for batches the server writes, such as expiry)
 *    48   8  the client's request number
 *    56   4  event count N
 *    60   1  operation (the protocol operation that produced the batch)
 *    61   3  reserved, zero
 *    64      N events of 128 bytes (struct skuld_event)
 *            N results of 32 bytes (struct skuld_result), result i for event i
 *
 * Every record size (64 + 160 N) is a multiple of 32, so fields stay
 * naturally aligned when a segment is read into a 4096-aligned buffer.
 *
 * VALIDITY. Reading from the first segment to the last with the expected
 * write sequence W, event sequence E and chain value C:
 *   - A segment is valid when its header's magic, version, block size,
 *     checksum and reserved bytes are right, the rest of its first block is
 *     zero, its index is the one in the name and one more than the previous
 *     segment's, its size is the file's size, its log id is the log's, and
 *     its first write, first event and previous checksum equal W, E and C.
 *     (The first segment of a log whose segment 1 has been archived away
 *     sets W, E and C; segment 1 itself must say 1, 1 and the chain seed.)
 *   - At a block boundary: 64 zero bytes followed by zeros to the end of the
 *     segment end the segment's writes. Otherwise there must be a valid write:
 *     its header checksum, magic, reserved, log id are right, its sequence is
 *     W, its first event is E, it has records, it fits in the segment, its
 *     payload checksum is right, and its padding is zero.
 *   - Inside a valid write, each record must fit in what remains of the
 *     payload, have a right checksum, a previous checksum equal to C, a first
 *     event equal to E and zero reserved bytes; the records must fill the
 *     payload exactly and number record count.
 *
 * TORN WRITES. A power cut may keep any subset of the sectors of the write in
 * flight, and the writer keeps at most one write in flight and creates a new
 * segment only when no write is in flight. So a damaged write is a torn last
 * write only when nothing the writer wrote later survives: it is in the last
 * segment, and no block after it in that segment holds a write header whose
 * magic, checksum and log id are right. Such a write (and everything after it)
 * is discarded; the reader reports where, and log_discard_torn() re-zeroes it.
 * Anything else that breaks a rule above is corruption: the reader stops and
 * names the segment file and byte offset of the bad segment header (offset
 * 0), the bad write (its first byte; for non-zero bytes after a segment's
 * last write, the offset where the next write would have started), or the
 * bad record (its first byte).
 */
#define _GNU_SOURCE /* fallocate */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log_internal.h"

static_assert(LOG_SEGMENT_HEADER_SIZE <= LOG_BLOCK_SIZE, "segment header fits its block");
static_assert(LOG_WRITE_SIZE_DEFAULT % LOG_BLOCK_SIZE == 0, "write size");
static_assert(LOG_SEGMENT_SIZE_DEFAULT % LOG_BLOCK_SIZE == 0, "segment size");

static int log_os_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static uint64_t log_os_clock_ns(void)
{
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
		return 0;
	}
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

const struct log_os log_os_default = {
        .open = log_os_open,
        .close = close,
        .pread = pread,
        .pwrite = pwrite,
        .fdatasync = fdatasync,
        .fsync = fsync,
        .fallocate = fallocate,
        .fstat = fstat,
        .rename = rename,
        .clock_ns = log_os_clock_ns,
};

uint64_t log_chain_seed(skuld_u128 log_id)
{
	uint8_t bytes[32];
	memcpy(bytes, "skuld log chain", 16); /* 15 characters and the NUL */
	memcpy(bytes + 16, &log_id.lo, 8);
	memcpy(bytes + 24, &log_id.hi, 8);
	return skuld_checksum(bytes, sizeof(bytes));
}

int log_segment_name(char *name, size_t size, uint64_t segment)
{
	int length = snprintf(name, size, "log-%016" PRIx64 ".skl", segment);
	if (length < 0 || (size_t)length >= size) {
		return -ENAMETOOLONG;
	}
	return 0;
}

int log_segment_path(char *path, size_t size, const char *dir, uint64_t segment, const char *suffix)
{
	char name[LOG_SEGMENT_NAME_SIZE];
	int ret = log_segment_name(name, sizeof(name), segment);
	SKULD_ASSERT(ret == 0);
	int length = snprintf(path, size, "%s/%s%s", dir, name, suffix);
	if (length < 0 || (size_t)length >= size) {
		return -ENAMETOOLONG;
	}
	return 0;
}

uint64_t log_segment_header_checksum(const struct log_segment_header *header)
{
	return skuld_checksum(header, offsetof(struct log_segment_header, checksum_header));
}

uint64_t log_write_header_checksum(const struct log_write_header *header)
{
	return skuld_checksum(header, offsetof(struct log_write_header, checksum_header));
}

int log_bytes_zero(const uint8_t *bytes, uint64_t size)
{
	uint64_t index = 0;
	/* Word at a time where alignment allows; the buffers here are 4096-aligned. */
	while (index < size && ((uintptr_t)(bytes + index) & 7u) != 0) {
		if (bytes[index++] != 0) {
			return 0;
		}
	}
	for (; index + 8 <= size; index += 8) {
		uint64_t word;
		memcpy(&word, bytes + index, 8);
		if (word != 0) {
			return 0;
		}
	}
	for (; index < size; index++) {
		if (bytes[index] != 0) {
			return 0;
		}
	}
	return 1;
}

int log_pwrite_all(const struct log_os *os, int fd, const void *bytes, uint64_t size,
                   uint64_t offset)
{
	const uint8_t *cursor = bytes;
	while (size > 0) {
		ssize_t done = os->pwrite(fd, cursor, size, (off_t)offset);
		if (done < 0) {
			return errno != 0 ? -errno : -EIO;
		}
		if (done == 0) {
			return -EIO;
		}
		cursor += done;
		size -= (uint64_t)done;
		offset += (uint64_t)done;
	}
	return 0;
}

int log_pread_all(const struct log_os *os, int fd, void *bytes, uint64_t size, uint64_t offset)
{
	uint8_t *cursor = bytes;
	while (size > 0) {
		ssize_t done = os->pread(fd, cursor, size, (off_t)offset);
		if (done < 0) {
			if (errno == EINTR) {
				continue; /* reading again is harmless */
			}
			return errno != 0 ? -errno : -EIO;
		}
		if (done == 0) {
			return -EIO; /* the file shrank under us */
		}
		cursor += done;
		size -= (uint64_t)done;
		offset += (uint64_t)done;
	}
	return 0;
}

int log_write_zeros(const struct log_os *os, int fd, uint64_t offset, uint64_t size)
{
	enum {
		chunk_size = 1u << 20
	};
	uint8_t *zeros = calloc(1, chunk_size);
	if (zeros == NULL) {
		return -ENOMEM;
	}
	int ret = 0;
	while (size > 0 && ret == 0) {
		uint64_t step = size < chunk_size ? size : chunk_size;
		ret = log_pwrite_all(os, fd, zeros, step, offset);
		offset += step;
		size -= step;
	}
	free(zeros);
	return ret;
}

int log_fsync_dir(const struct log_os *os, const char *dir)
{
	int fd = os->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	int ret = 0;
	if (os->fsync(fd) != 0) {
		ret = -errno;
	}
	os->close(fd);
	return ret;
}

int log_discard_torn(const char *dir, const struct log_position *position, const struct log_os *os)
{
	if (os == NULL) {
		os = &log_os_default;
	}
	if (position->segment == 0) {
		return 0; /* an empty log has nothing to discard */
	}
	if (position->offset < LOG_BLOCK_SIZE || position->offset > position->segment_size ||
	    position->offset % LOG_BLOCK_SIZE != 0) {
		return -EINVAL;
	}
	char path[LOG_PATH_SIZE];
	int ret = log_segment_path(path, sizeof(path), dir, position->segment, "");
	if (ret != 0) {
		return ret;
	}
	int fd = os->open(path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	ret = log_write_zeros(os, fd, position->offset, position->segment_size - position->offset);
	if (ret == 0 && os->fsync(fd) != 0) {
		ret = -errno;
	}
	os->close(fd);
	return ret;
}
