/*
 * log.h — skuld's append-only, checksummed, segmented event log.
 *
 * Owns: the on-disk layout of log segments (docs/FORMAT.md is the same
 * information as byte tables; log.c opens with the rules), a writer that
 * builds group-commit writes in memory, and a reader that walks a directory
 * of segments and tells a clean end from a torn last write from corruption.
 *
 * The pieces, in the order the server uses them:
 *   1. log_reader_open() (+ log_reader_seek() to start at a snapshot's
 *      position) + log_reader_next() until it returns something other
 *      than LOG_RECORD: replay the records, then read the outcome. LOG_CORRUPT
 *      stops startup; LOG_END_TORN is logged as a warning and the torn bytes
 *      are re-zeroed with log_discard_torn(); LOG_END_CLEAN needs nothing.
 *   2. log_reader_position() gives the position a writer resumes at.
 *   3. log_writer_init() with that position; log_writer_append() one record per
 *      applied batch; log_writer_seal() when the loop decides to commit; the
 *      caller writes the returned bytes (io_uring in the server, or
 *      log_write_sync()) and calls log_writer_complete() after the fdatasync.
 *
 * Ownership: every pointer a function takes is borrowed for the call only,
 * unless the comment says otherwise. Pointers a function returns point into
 * memory owned by the reader or writer and say how long they stay valid.
 * Errors are 0 / -errno; nothing here retries a failed write or fdatasync.
 */
#ifndef SKULD_LOG_H
#define SKULD_LOG_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "protocol.h"

/* ---- Format constants (docs/FORMAT.md) ---------------------------------- */

#define LOG_FORMAT_VERSION 1u
#define LOG_BLOCK_SIZE     4096u                 /* unit of alignment and padding */
#define LOG_SEGMENT_MAGIC  0x474f4c444c554b53ull /* "SKULDLOG" as bytes */
#define LOG_WRITE_MAGIC    0x57444c53u           /* "SLDW" as bytes */

#define LOG_SEGMENT_HEADER_SIZE 128u
#define LOG_WRITE_HEADER_SIZE   64u
#define LOG_RECORD_HEADER_SIZE  64u
#define LOG_RECORD_EVENT_SIZE   (SKULD_EVENT_SIZE + SKULD_RESULT_SIZE) /* 160 */

#define LOG_SEGMENT_SIZE_MIN     (2u * LOG_BLOCK_SIZE)
#define LOG_SEGMENT_SIZE_MAX     (1ull << 30) /* 1 GiB */
#define LOG_SEGMENT_SIZE_DEFAULT (64ull << 20)
#define LOG_WRITE_SIZE_DEFAULT   (4u << 20) /* one group-commit write, padded */
#define LOG_WRITE_SIZE_MAX       (1u << 30)

#define LOG_PATH_SIZE   512u /* directory + segment name, with the NUL */
#define LOG_REASON_SIZE 160u

/* Segment header: the first 128 bytes of the first block of a segment file;
 * the rest of that block is zero. */
struct log_segment_header {
	uint64_t magic;           /* LOG_SEGMENT_MAGIC */
	uint32_t version;         /* LOG_FORMAT_VERSION */
	uint32_t block_size;      /* LOG_BLOCK_SIZE */
	uint64_t segment;         /* segment index, the number in the file name */
	uint64_t segment_size;    /* bytes, equals the file size */
	uint64_t write_first;     /* sequence of the first write in this segment */
	uint64_t event_first;     /* sequence of the first event in this segment */
	uint64_t checksum_prev;   /* checksum of the record before this segment */
	uint64_t created_ns;      /* wall clock at creation, ns since the epoch */
	skuld_u128 log_id;        /* random per ledger, ties the segments together */
	uint8_t reserved[40];     /* zero */
	uint64_t checksum_header; /* XXH3-64 of bytes 0..119 */
};
static_assert(sizeof(struct log_segment_header) == LOG_SEGMENT_HEADER_SIZE, "segment header");
static_assert(offsetof(struct log_segment_header, version) == 8, "segment header");
static_assert(offsetof(struct log_segment_header, block_size) == 12, "segment header");
static_assert(offsetof(struct log_segment_header, segment) == 16, "segment header");
static_assert(offsetof(struct log_segment_header, segment_size) == 24, "segment header");
static_assert(offsetof(struct log_segment_header, write_first) == 32, "segment header");
static_assert(offsetof(struct log_segment_header, event_first) == 40, "segment header");
static_assert(offsetof(struct log_segment_header, checksum_prev) == 48, "segment header");
static_assert(offsetof(struct log_segment_header, created_ns) == 56, "segment header");
static_assert(offsetof(struct log_segment_header, log_id) == 64, "segment header");
static_assert(offsetof(struct log_segment_header, reserved) == 80, "segment header");
static_assert(offsetof(struct log_segment_header, checksum_header) == 120, "segment header");

/* Write header: the first 64 bytes of every group-commit write. */
struct log_write_header {
	uint32_t magic;            /* LOG_WRITE_MAGIC */
	uint32_t reserved;         /* zero */
	uint64_t sequence;         /* write sequence, 1, 2, 3, ... across the log */
	uint64_t event_first;      /* sequence of the first event of the first record */
	uint32_t payload_size;     /* bytes of records after this header */
	uint32_t record_count;     /* records in the payload, at least 1 */
	skuld_u128 log_id;         /* equals the segment header's */
	uint64_t checksum_payload; /* XXH3-64 of the payload_size bytes */
	uint64_t checksum_header;  /* XXH3-64 of bytes 0..55 */
};
static_assert(sizeof(struct log_write_header) == LOG_WRITE_HEADER_SIZE, "write header");
static_assert(offsetof(struct log_write_header, reserved) == 4, "write header");
static_assert(offsetof(struct log_write_header, sequence) == 8, "write header");
static_assert(offsetof(struct log_write_header, event_first) == 16, "write header");
static_assert(offsetof(struct log_write_header, payload_size) == 24, "write header");
static_assert(offsetof(struct log_write_header, record_count) == 28, "write header");
static_assert(offsetof(struct log_write_header, log_id) == 32, "write header");
static_assert(offsetof(struct log_write_header, checksum_payload) == 48, "write header");
static_assert(offsetof(struct log_write_header, checksum_header) == 56, "write header");

/* Record header: one applied batch. Followed by count events (128 B each)
 * and then count results (32 B each). */
struct log_record_header {
	uint64_t checksum;      /* XXH3-64 of the record from byte 8 to its end */
	uint64_t checksum_prev; /* checksum of the previous record (the chain) */
	uint64_t event_first;   /* sequence of the first event of this record */
	uint64_t timestamp_ns;  /* server time the batch was applied, ns since epoch */
	skuld_u128 client;      /* client id; zero for batches the server writes */
	uint64_t request;       /* the client's request number; 0 for the server */
	uint32_t count;         /* events (and results) in the record */
	uint8_t operation;      /* enum skuld_operation that produced the batch */
	uint8_t reserved[3];    /* zero */
};
static_assert(sizeof(struct log_record_header) == LOG_RECORD_HEADER_SIZE, "record header");
static_assert(offsetof(struct log_record_header, checksum_prev) == 8, "record header");
static_assert(offsetof(struct log_record_header, event_first) == 16, "record header");
static_assert(offsetof(struct log_record_header, timestamp_ns) == 24, "record header");
static_assert(offsetof(struct log_record_header, client) == 32, "record header");
static_assert(offsetof(struct log_record_header, request) == 48, "record header");
static_assert(offsetof(struct log_record_header, count) == 56, "record header");
static_assert(offsetof(struct log_record_header, operation) == 60, "record header");
static_assert(offsetof(struct log_record_header, reserved) == 61, "record header");
/* Records are packed back to back; every record size is a multiple of 32, so
 * every event and result in a write stays 8-byte aligned. */
static_assert(LOG_RECORD_HEADER_SIZE % 32 == 0, "record alignment");
static_assert(LOG_RECORD_EVENT_SIZE % 32 == 0, "record alignment");
static_assert(LOG_WRITE_HEADER_SIZE % 32 == 0, "record alignment");

/* Bytes of a record of count events. */
static inline uint64_t log_record_size(uint32_t count)
{
	return LOG_RECORD_HEADER_SIZE + (uint64_t)count * LOG_RECORD_EVENT_SIZE;
}

/* The chain value the first record of a log points back to: XXH3-64 of the
 * 16 bytes "skuld log chain\0" followed by the log id (lo, hi). */
uint64_t log_chain_seed(skuld_u128 log_id);

/* Segment file name for an index: "log-%016" PRIx64 ".skl" (lower-case hex).
 * Writes at most size bytes; returns 0 or -ENAMETOOLONG. */
int log_segment_name(char *name, size_t size, uint64_t segment);

/* ---- System calls: the seam tests use to inject failures ----------------- */

/* Every system call the log makes goes through one of these. Each behaves
 * like the libc function of the same name (-1 and errno on failure). */
struct log_os {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buffer, size_t size, off_t offset);
	ssize_t (*pwrite)(int fd, const void *buffer, size_t size, off_t offset);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*fallocate)(int fd, int mode, off_t offset, off_t size);
	int (*fstat)(int fd, struct stat *status);
	int (*rename)(const char *from, const char *to);
	uint64_t (*clock_ns)(void); /* CLOCK_REALTIME, for segment creation times */
};

/* The real system calls. */
extern const struct log_os log_os_default;

/* ---- Positions ----------------------------------------------------------- */

/* Where the log ends: what a writer needs to continue it. */
struct log_position {
	uint64_t segment;       /* index of the last segment; 0: the log is empty */
	uint64_t segment_size;  /* that segment's size; 0 when segment is 0 */
	uint64_t offset;        /* byte offset where the next write goes */
	uint64_t write_next;    /* sequence of the next write */
	uint64_t event_next;    /* sequence of the next event */
	uint64_t checksum_prev; /* checksum of the last record (chain seed if none) */
	skuld_u128 log_id;      /* zero when the log is empty */
};

/* ---- Reader -------------------------------------------------------------- */

enum log_status {
	LOG_RECORD = 0,    /* log_reader_next produced a record */
	LOG_END_CLEAN = 1, /* every write is valid; nothing follows the last */
	LOG_END_TORN = 2,  /* the last write is torn: discard it (see outcome) */
	LOG_CORRUPT = 3,   /* damage that a crash cannot explain (see outcome) */
	LOG_ERROR = 4,     /* a system call failed (outcome.error is -errno) */
};

/* How a read ended. For LOG_END_TORN: segment / offset / file name the torn
 * write. For LOG_CORRUPT: they name the bad segment header (offset 0), the
 * bad write (its first byte) or the bad record (its first byte); reason says
 * what is wrong. */
struct log_outcome {
	enum log_status status;
	int error;                    /* LOG_ERROR: -errno */
	uint64_t segment;             /* segment index */
	uint64_t offset;              /* byte offset in that segment file */
	char file[LOG_PATH_SIZE];     /* path of the segment file */
	char reason[LOG_REASON_SIZE]; /* one line of prose, no trailing newline */
};

/* One record, pointing into the reader's segment buffer. Valid until the
 * next call to log_reader_next or log_reader_close. */
struct log_record {
	const struct log_record_header *header;
	const struct skuld_event *events;   /* header->count of them */
	const struct skuld_result *results; /* header->count of them */
	uint64_t segment;                   /* where the record starts */
	uint64_t offset;
	uint64_t write_sequence; /* the write the record belongs to */
};

struct log_reader;

/* Lists the segments in dir and allocates one buffer as large as the largest
 * (at most LOG_SEGMENT_SIZE_MAX). os may be NULL for log_os_default. Returns
 * 0, -ENOMEM, -ENAMETOOLONG, or -errno from opendir. A directory with no
 * segments is an empty log. Format problems surface in log_reader_next. */
int log_reader_open(struct log_reader **reader, const char *dir, const struct log_os *os);

/* Before the first log_reader_next: starts the walk at start instead of at
 * the first segment, as recovery from a snapshot does. start gives the
 * segment and the byte offset of the first write to read (a block boundary;
 * it may be the segment's end, or the end of its writes, and the walk then
 * goes on in the next segment) with the write sequence, event sequence and
 * chain value that write must continue, and the log id. Segments before
 * start->segment are never read. The start segment's header must be valid
 * and of this log, and must not start after the position; the first write
 * read must carry start->write_next and its first record must link to
 * start->checksum_prev (else LOG_CORRUPT "chain broken"); a missing start
 * segment is LOG_CORRUPT. Returns 0, or -EINVAL for a position that cannot
 * be one (segment 0, offset not a block boundary past the header block,
 * sequences 0, log id 0) or a walk already begun. */
int log_reader_seek(struct log_reader *reader, const struct log_position *start);

/* Produces the next record (LOG_RECORD) or ends the walk with LOG_END_CLEAN,
 * LOG_END_TORN, LOG_CORRUPT or LOG_ERROR; once ended it keeps returning the
 * same status. A write's records are produced only after the whole write
 * (header, payload checksum, padding) checks out, but corruption in a later
 * write is found after earlier records were produced. */
enum log_status log_reader_next(struct log_reader *reader, struct log_record *record);

/* How the walk ended; meaningful once log_reader_next returned != LOG_RECORD. */
const struct log_outcome *log_reader_outcome(const struct log_reader *reader);

/* After LOG_END_CLEAN or LOG_END_TORN: where a writer resumes (for a torn
 * end, the torn write's offset). Returns 0, or -EINVAL in any other state. */
int log_reader_position(const struct log_reader *reader, struct log_position *position);

void log_reader_close(struct log_reader *reader);

/* Re-zeroes segment position->segment from position->offset to its end and
 * fsyncs it, so bytes of a discarded torn write cannot be mistaken for data
 * after the writer resumes. Run it after LOG_END_TORN, before the first
 * write. Returns 0 or -errno. */
int log_discard_torn(const char *dir, const struct log_position *position, const struct log_os *os);

/* ---- Writer -------------------------------------------------------------- */

struct log_writer_config {
	const char *dir;         /* segment directory; must exist */
	uint64_t segment_size;   /* new segments: multiple of LOG_BLOCK_SIZE */
	uint32_t write_size_max; /* bytes per write incl. header and padding */
	skuld_u128 log_id;       /* non-zero; must match an existing log's */
	const struct log_os *os; /* NULL: log_os_default */
};

/* What the caller writes: size bytes from data at offset of segment's file,
 * then fdatasync. When create_segment is set, run log_writer_create_segment
 * first (it sets fd); the writer never has two writes in flight, so a new
 * segment is only ever created after every write of the previous one is
 * durable. */
struct log_write {
	uint64_t sequence;   /* write sequence */
	uint64_t segment;    /* segment index */
	uint64_t offset;     /* byte offset in the segment, block-aligned */
	const uint8_t *data; /* writer's buffer; valid until complete */
	uint32_t size;       /* multiple of LOG_BLOCK_SIZE */
	uint32_t record_count;
	uint64_t event_first; /* first event in the write */
	uint64_t event_next;  /* one past its last event */
	int fd;               /* the segment file, -1 until it exists */
	bool create_segment;  /* the write starts a new segment */
};

struct log_record_info {
	uint64_t timestamp_ns; /* server time of the batch, from the loop */
	skuld_u128 client;     /* zero for batches the server writes itself */
	uint64_t request;      /* the client's request number */
	uint8_t operation;     /* enum skuld_operation */
};

struct log_writer;

/* Allocates two write buffers of config->write_size_max bytes and opens the
 * segment the log ends in (none for an empty log). resume comes from
 * log_reader_position after a clean or discarded-torn end; its log id must
 * match config->log_id unless the log is empty. Returns 0, -EINVAL for a bad
 * config or position, -ENOMEM, or -errno from open. */
int log_writer_init(struct log_writer **writer, const struct log_writer_config *config,
                    const struct log_position *resume);

/* Appends one record (count events and their results; either may be NULL
 * only when count is 0) to the write being built, with its checksum and
 * chain link. No I/O. Sets *event_first (if not NULL) to the sequence of its
 * first event. Returns 0; -ENOSPC when the current write is full (seal it,
 * then append again); -EMSGSIZE when the record can never fit in one write;
 * or the writer's earlier I/O error. */
int log_writer_append(struct log_writer *writer, const struct log_record_info *info,
                      const struct skuld_event *events, const struct skuld_result *results,
                      uint32_t count, uint64_t *event_first);

/* Finishes the write being built (header, checksums, zero padding), fills
 * *write, and starts the next write in the other buffer, so appends go on
 * while this one is in flight. Only one write may be in flight: calling seal
 * again before log_writer_complete is a programmer error. Returns 0,
 * -ENODATA when nothing was appended, or the writer's earlier I/O error. */
int log_writer_seal(struct log_writer *writer, struct log_write *write);

/* For a write with create_segment: creates the segment under a temporary
 * name, pre-allocates and zero-fills it, writes its header, fsyncs it,
 * renames it into place and fsyncs the directory. Blocking. Sets write->fd.
 * Returns 0 or -errno (the writer is then failed). */
int log_writer_create_segment(struct log_writer *writer, struct log_write *write);

/* Blocking I/O for a sealed write: creates the segment if needed, pwrites the
 * bytes and fdatasyncs. Never retries: an error is returned and the writer
 * is failed (every later call returns it). Does not call complete. */
int log_write_sync(struct log_writer *writer, struct log_write *write);

/* The caller's write + fdatasync of this write succeeded. */
void log_writer_complete(struct log_writer *writer, const struct log_write *write);

/* The caller's write or fdatasync of the write in flight failed with error
 * (-errno): the writer is failed and every later call returns error. */
void log_writer_fail(struct log_writer *writer, int error);

/* seal + log_write_sync + complete: for tests, tools and replay. Returns 0,
 * -ENODATA when nothing was appended, or -errno. */
int log_writer_flush(struct log_writer *writer);

/* The durable end of the log: what a reader would report after the last
 * completed write. */
void log_writer_position(const struct log_writer *writer, struct log_position *position);

/* Sequence of the next event append will assign, and the chain value of the
 * last appended record (durable or not): what a snapshot records. */
uint64_t log_writer_event_next(const struct log_writer *writer);
uint64_t log_writer_checksum_last(const struct log_writer *writer);

/* Closes the segment file and frees the buffers. A write in flight must have
 * completed (or the writer failed). */
void log_writer_close(struct log_writer *writer);

#endif /* SKULD_LOG_H */
