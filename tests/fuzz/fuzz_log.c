/*
 * fuzz_log.c — the log reader (server/core/log_reader.c) on arbitrary
 * segment files (docs/FUZZING.md).
 *
 * Input: one mode byte, then the bytes of one segment file:
 *   bit 0  make every checksum right before writing: the segment header's,
 *          and per write (found at block boundaries by its magic) each
 *          record's chain link and checksum, the payload's and the write
 *          header's, so the fuzzer gets past XXH3 to the rules behind it;
 *   bit 1  keep the file size as it is (else zero-padded to whole blocks,
 *          at least two, as the writer makes them);
 *   bit 2  start with log_reader_seek at the first write of the segment,
 *          with the sequences and chain value its header gives.
 * The file is named after the header's segment index and written into one
 * temporary directory per process (on /dev/shm when there is one), the
 * previous input's file removed first. The reader then reads every record
 * to the end: it must end with a status and a reason, never crash, assert
 * or loop (at most one record per 64 bytes). A torn end is discarded with
 * log_discard_torn, after which the log must read clean to the same place.
 *
 * Seeds: the committed sample log (tests/data/log-v1, via make-corpus.sh)
 * and small logs this target writes with the real writer.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "log.h"
#include "log_internal.h"

#define FUZZ_LOG_INPUT_MAX (256u << 10)
#define MODE_FIX_CHECKSUMS 0x01u
#define MODE_RAW_SIZE      0x02u
#define MODE_SEEK          0x04u

static char directory[256];
static char file_previous[LOG_PATH_SIZE];
static uint8_t *file_bytes; /* FUZZ_LOG_INPUT_MAX + 2 blocks */
static int verbose;         /* SKULD_FUZZ_VERBOSE set: print how each walk ends */

static void remove_directory(void)
{
	if (file_previous[0] != '\0')
		unlink(file_previous);
	if (directory[0] != '\0')
		rmdir(directory);
}

static void make_directory(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(directory, sizeof(directory), "%s/skuld-fuzz-log-XXXXXX",
	         base != NULL ? base : "/tmp");
	if (mkdtemp(directory) == NULL) {
		perror(directory);
		exit(1);
	}
	atexit(remove_directory);
}

/* Recomputes the checksums of the segment in bytes[0..size) (bit 0). */
static void fix_checksums(uint8_t *bytes, size_t size)
{
	if (size < LOG_BLOCK_SIZE)
		return;
	struct log_segment_header segment;
	memcpy(&segment, bytes, sizeof(segment));
	segment.checksum_header = log_segment_header_checksum(&segment);
	memcpy(bytes, &segment, sizeof(segment));
	uint64_t chain =
	        segment.segment == 1 ? log_chain_seed(segment.log_id) : segment.checksum_prev;
	for (size_t offset = LOG_BLOCK_SIZE; offset + LOG_WRITE_HEADER_SIZE <= size;) {
		struct log_write_header write;
		memcpy(&write, bytes + offset, sizeof(write));
		if (write.magic != LOG_WRITE_MAGIC) {
			offset += LOG_BLOCK_SIZE;
			continue;
		}
		size_t payload = offset + LOG_WRITE_HEADER_SIZE;
		size_t payload_size = write.payload_size;
		if (payload_size > size - payload)
			payload_size = size - payload;
		for (size_t record = payload;
		     record + LOG_RECORD_HEADER_SIZE <= payload + payload_size;) {
			struct log_record_header header;
			memcpy(&header, bytes + record, sizeof(header));
			uint64_t record_size = log_record_size(header.count);
			if (record_size > payload + payload_size - record)
				break;
			header.checksum_prev = chain;
			memcpy(bytes + record, &header, sizeof(header));
			header.checksum = skuld_checksum(bytes + record + 8, record_size - 8);
			memcpy(bytes + record, &header, sizeof(header));
			chain = header.checksum;
			record += record_size;
		}
		write.checksum_payload = skuld_checksum(bytes + payload, payload_size);
		write.checksum_header = log_write_header_checksum(&write);
		memcpy(bytes + offset, &write, sizeof(write));
		offset = log_align_up(payload + payload_size); /* > offset: payload > offset */
	}
}

/* Reads the log in the directory to its end; returns the final status and
 * the position (if clean or torn). */
static enum log_status read_all(const struct log_position *seek, size_t size,
                                struct log_position *position)
{
	struct log_reader *reader = NULL;
	int ret = log_reader_open(&reader, directory, NULL);
	FUZZ_CHECK(ret == 0, "log_reader_open: %d", ret);
	if (seek != NULL && log_reader_seek(reader, seek) != 0)
		seek = NULL;
	struct log_record record;
	enum log_status status;
	uint64_t records = 0;
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
		records++;
		FUZZ_CHECK(records <= size / LOG_RECORD_HEADER_SIZE + 1,
		           "%" PRIu64 " records from %zu bytes", records, size);
		for (uint32_t i = 0; i < record.header->count; i++) {
			(void)proto_event_check(&record.events[i]);
			(void)skuld_status_name(record.results[i].status);
		}
	}
	const struct log_outcome *outcome = log_reader_outcome(reader);
	if (verbose)
		fprintf(stderr,
		        "fuzz_log: %" PRIu64 " records, status %d at segment %" PRIu64
		        " offset %" PRIu64 ": %s\n",
		        records, status, outcome->segment, outcome->offset, outcome->reason);
	FUZZ_CHECK(outcome->status == status, "outcome %d, status %d", outcome->status, status);
	FUZZ_CHECK(outcome->reason[0] != '\0', "status %d without a reason", status);
	FUZZ_CHECK(memchr(outcome->reason, '\0', sizeof(outcome->reason)) != NULL, "reason");
	FUZZ_CHECK(log_reader_next(reader, &record) == status, "the end changed");
	ret = log_reader_position(reader, position);
	if (status == LOG_END_CLEAN || status == LOG_END_TORN)
		FUZZ_CHECK(ret == 0, "position after %d: %d", status, ret);
	else
		FUZZ_CHECK(ret == -EINVAL, "position after %d: %d", status, ret);
	log_reader_close(reader);
	return status;
}

/* ---- Seeds ---------------------------------------------------------------- */

static void seed_from_directory(const char *seed_dir, const char *name, uint8_t mode,
                                uint64_t segment)
{
	char path[LOG_PATH_SIZE];
	if (log_segment_path(path, sizeof(path), directory, segment, "") != 0)
		abort();
	FILE *file = fopen(path, "rb");
	if (file == NULL) {
		perror(path);
		exit(1);
	}
	file_bytes[0] = mode;
	size_t size = fread(file_bytes + 1, 1, FUZZ_LOG_INPUT_MAX, file);
	fclose(file);
	fuzz_seed_write(seed_dir, name, file_bytes, size + 1);
}

static void clear_directory(void)
{
	DIR *dir = opendir(directory);
	struct dirent *entry;
	while (dir != NULL && (entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		char path[LOG_PATH_SIZE];
		snprintf(path, sizeof(path), "%s/%s", directory, entry->d_name);
		unlink(path);
	}
	if (dir != NULL)
		closedir(dir);
}

/* Segment creation times: fixed, so the seeds come out the same each time. */
static uint64_t seed_clock_ns(void)
{
	return FUZZ_T0;
}

/* A log of small segments written by the real writer: every write holds
 * 1..3 records of the scenario events (with made-up results). */
static void write_log(uint64_t segment_size, uint32_t writes)
{
	static struct log_os os;
	os = log_os_default;
	os.clock_ns = seed_clock_ns;
	clear_directory();
	struct log_position empty;
	FUZZ_CHECK(read_all(NULL, 0, &empty) == LOG_END_CLEAN, "an empty log");
	struct log_writer_config config = {
	        .dir = directory,
	        .segment_size = segment_size,
	        .write_size_max = 2 * LOG_BLOCK_SIZE,
	        .log_id = {.lo = 0x0123456789abcdefull, .hi = 0xfedcba9876543210ull},
	        .os = &os,
	};
	struct log_writer *writer = NULL;
	FUZZ_CHECK(log_writer_init(&writer, &config, &empty) == 0, "log_writer_init");
	struct fuzz_script script = {0};
	fuzz_scenario_catalog(&script);
	fuzz_scenario_movements(&script);
	size_t offset = 0;
	for (uint32_t write = 0; write < writes; write++) {
		for (uint32_t record = 0; record < 1 + write % 3; record++) {
			if (offset >= script.size)
				offset = 0;
			uint32_t count = (script.bytes[offset++] & 7u) + 1;
			struct skuld_event events[FUZZ_BATCH_EVENTS_MAX];
			struct skuld_result results[FUZZ_BATCH_EVENTS_MAX];
			memcpy(events, script.bytes + offset, count * sizeof(events[0]));
			offset += count * sizeof(events[0]);
			memset(results, 0, sizeof(results));
			for (uint32_t i = 0; i < count; i++) {
				results[i].index = i;
				results[i].location = events[i].location;
				results[i].quantity = events[i].quantity;
			}
			struct log_record_info info = {
			        .timestamp_ns = FUZZ_T0 + write,
			        .client = {.lo = 5, .hi = 0},
			        .request = write + 1,
			        .operation = SKULD_OP_SUBMIT,
			};
			int ret = log_writer_append(writer, &info, events, results, count, NULL);
			FUZZ_CHECK(ret == 0, "log_writer_append: %d", ret);
		}
		int ret = log_writer_flush(writer);
		FUZZ_CHECK(ret == 0, "log_writer_flush: %d", ret);
	}
	log_writer_close(writer);
	free(script.bytes);
}

static void write_seeds(const char *seed_dir)
{
	/* One segment of a few writes; then a log long enough for three
	 * segments (the later ones start with earlier segments "archived"). */
	write_log(4 * LOG_BLOCK_SIZE, 2);
	seed_from_directory(seed_dir, "one-segment", MODE_FIX_CHECKSUMS, 1);
	seed_from_directory(seed_dir, "one-segment-raw", 0, 1);
	seed_from_directory(seed_dir, "one-segment-seek", MODE_FIX_CHECKSUMS | MODE_SEEK, 1);
	write_log(3 * LOG_BLOCK_SIZE, 6);
	seed_from_directory(seed_dir, "segment-2", MODE_FIX_CHECKSUMS, 2);
	seed_from_directory(seed_dir, "segment-3-seek", MODE_SEEK, 3);
	/* A torn last write: the start of the second write's payload (its
	 * first record header, at block 2) never reached the disk. */
	write_log(4 * LOG_BLOCK_SIZE, 2);
	char path[LOG_PATH_SIZE];
	if (log_segment_path(path, sizeof(path), directory, 1, "") != 0)
		abort();
	FILE *file = fopen(path, "r+b");
	if (file == NULL || fseek(file, 2 * LOG_BLOCK_SIZE + LOG_WRITE_HEADER_SIZE, SEEK_SET) != 0)
		abort();
	static const uint8_t zeros[LOG_RECORD_HEADER_SIZE];
	if (fwrite(zeros, 1, sizeof(zeros), file) != sizeof(zeros) || fclose(file) != 0)
		abort();
	seed_from_directory(seed_dir, "torn", 0, 1);
	clear_directory();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_directory();
	verbose = getenv("SKULD_FUZZ_VERBOSE") != NULL;
	file_bytes = malloc(FUZZ_LOG_INPUT_MAX + 2 * LOG_BLOCK_SIZE);
	if (file_bytes == NULL)
		abort();
	const char *seed_dir = fuzz_seed_dir();
	if (seed_dir != NULL) {
		write_seeds(seed_dir);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > FUZZ_LOG_INPUT_MAX)
		return 0;
	uint8_t mode = data[0];
	size_t file_size = size - 1;
	memcpy(file_bytes, data + 1, file_size);
	if (!(mode & MODE_RAW_SIZE)) {
		size_t padded = log_align_up(file_size);
		if (padded < LOG_SEGMENT_SIZE_MIN)
			padded = LOG_SEGMENT_SIZE_MIN;
		memset(file_bytes + file_size, 0, padded - file_size);
		file_size = padded;
	}
	if (mode & MODE_FIX_CHECKSUMS)
		fix_checksums(file_bytes, file_size);
	struct log_segment_header header;
	memset(&header, 0, sizeof(header));
	memcpy(&header, file_bytes, file_size < sizeof(header) ? file_size : sizeof(header));

	if (file_previous[0] != '\0')
		unlink(file_previous);
	char path[LOG_PATH_SIZE];
	if (log_segment_path(path, sizeof(path), directory, header.segment, "") != 0)
		abort();
	FILE *file = fopen(path, "wb");
	FUZZ_CHECK(file != NULL, "%s: %s", path, strerror(errno));
	FUZZ_CHECK(fwrite(file_bytes, 1, file_size, file) == file_size && fclose(file) == 0,
	           "writing %s", path);
	memcpy(file_previous, path, sizeof(path));

	struct log_position seek = {
	        .segment = header.segment,
	        .segment_size = header.segment_size,
	        .offset = LOG_BLOCK_SIZE,
	        .write_next = header.write_first,
	        .event_next = header.event_first,
	        .checksum_prev =
	                header.segment == 1 ? log_chain_seed(header.log_id) : header.checksum_prev,
	        .log_id = header.log_id,
	};
	struct log_position position;
	enum log_status status =
	        read_all((mode & MODE_SEEK) ? &seek : NULL, file_size + LOG_BLOCK_SIZE, &position);
	if (status == LOG_END_TORN) {
		/* What recovery does: re-zero the torn write; then it reads clean. */
		int ret = log_discard_torn(directory, &position, NULL);
		FUZZ_CHECK(ret == 0, "log_discard_torn: %d", ret);
		struct log_position again;
		status = read_all((mode & MODE_SEEK) ? &seek : NULL, file_size + LOG_BLOCK_SIZE,
		                  &again);
		FUZZ_CHECK(status == LOG_END_CLEAN, "after discarding the torn write: %d", status);
		FUZZ_CHECK(again.offset == position.offset &&
		                   again.write_next == position.write_next &&
		                   again.event_next == position.event_next &&
		                   again.checksum_prev == position.checksum_prev,
		           "the position moved after discarding the torn write");
	}
	return 0;
}
