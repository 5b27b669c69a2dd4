/*
 * test_log.c — the event log: round trips across segments, resume, torn last
 * writes (every prefix, sector subsets), bit flips before the last write,
 * chain breaks, injected I/O failures, and the committed sample log of
 * format version 1 (tests/data/log-v1).
 *
 * Every test works in its own mkdtemp directory under /tmp and removes it.
 * Events and results are generated from their sequence number, so any record
 * read back can be checked field by field.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SEGMENT_SMALL (16u * 1024u) /* header block + 3 blocks */
#define WRITE_SMALL   (8u * 1024u)

static const skuld_u128 test_log_id = {.lo = 0x0123456789abcdefull, .hi = 0xfedcba9876543210ull};

/* ---- Helpers ------------------------------------------------------------ */

static char *temp_dir(void)
{
	char *dir = strdup("/tmp/skuld-test-log-XXXXXX");
	cr_assert_not_null(dir);
	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

static void remove_dir(char *dir)
{
	DIR *directory = opendir(dir);
	cr_assert_not_null(directory);
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {
			continue;
		}
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		cr_assert_eq(unlink(path), 0);
	}
	closedir(directory);
	cr_assert_eq(rmdir(dir), 0);
	free(dir);
}

static void segment_path(char *path, size_t size, const char *dir, uint64_t segment)
{
	char name[64];
	cr_assert_eq(log_segment_name(name, sizeof(name), segment), 0);
	snprintf(path, size, "%s/%s", dir, name);
}

static uint64_t mix(uint64_t value)
{
	value += 0x9e3779b97f4a7c15ull;
	value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
	value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
	return value ^ (value >> 31);
}

/* The event and result a test log holds at event sequence number sequence. */
static struct skuld_event event_at(uint64_t sequence)
{
	return (struct skuld_event){
	        .key = {.lo = mix(sequence), .hi = sequence},
	        .reference = {.lo = mix(sequence + 1000000), .hi = 7},
	        .occurred_at = 1700000000000000000ull + sequence * 1000,
	        .quantity = (int64_t)(sequence % 17) + 1,
	        .item = (uint32_t)(sequence % 101) + 1,
	        .location = (uint32_t)(sequence % 5) + 1,
	        .kind = SKULD_SALE,
	};
}

static struct skuld_result result_at(uint64_t sequence, uint32_t index)
{
	return (struct skuld_result){
	        .index = index,
	        .status = SKULD_OK,
	        .location = (uint32_t)(sequence % 5) + 1,
	        .quantity = (int64_t)(sequence % 17) + 1,
	        .available = (int64_t)(mix(sequence) % 1000),
	};
}

/* Appends one record of count generated events. */
static void append_generated(struct log_writer *writer, uint32_t count, uint64_t request)
{
	static struct skuld_event events[64];
	static struct skuld_result results[64];
	cr_assert_leq(count, 64);
	uint64_t first = log_writer_event_next(writer);
	for (uint32_t index = 0; index < count; index++) {
		events[index] = event_at(first + index);
		results[index] = result_at(first + index, index);
	}
	struct log_record_info info = {
	        .timestamp_ns = 1800000000000000000ull + request,
	        .client = {.lo = 42, .hi = request % 3},
	        .request = request,
	        .operation = SKULD_OP_SUBMIT,
	};
	uint64_t event_first = 0;
	cr_assert_eq(log_writer_append(writer, &info, events, results, count, &event_first), 0);
	cr_assert_eq(event_first, first);
}

/* Where each write went, for tests that damage particular bytes. */
struct layout {
	uint32_t write_count;
	struct log_write writes[256];
	uint32_t record_count;
	uint64_t record_segment[1024];
	uint64_t record_offset[1024];
	uint64_t event_next;
	uint64_t checksum_last;
};

static struct log_writer_config config_for(const char *dir, uint64_t segment_size,
                                           uint32_t write_size)
{
	return (struct log_writer_config){
	        .dir = dir,
	        .segment_size = segment_size,
	        .write_size_max = write_size,
	        .log_id = test_log_id,
	};
}

static struct log_writer *writer_new(const char *dir, uint64_t segment_size, uint32_t write_size)
{
	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, dir, NULL), 0);
	struct log_record record;
	enum log_status status;
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
	}
	cr_assert_eq(status, LOG_END_CLEAN, "%s", log_reader_outcome(reader)->reason);
	struct log_position position;
	cr_assert_eq(log_reader_position(reader, &position), 0);
	log_reader_close(reader);
	struct log_writer_config config = config_for(dir, segment_size, write_size);
	struct log_writer *writer;
	cr_assert_eq(log_writer_init(&writer, &config, &position), 0);
	return writer;
}

/* Seals, writes and completes one write, recording where it went. */
static void flush_recorded(struct log_writer *writer, struct layout *layout)
{
	struct log_write write;
	cr_assert_eq(log_writer_seal(writer, &write), 0);
	cr_assert_eq(log_write_sync(writer, &write), 0);
	log_writer_complete(writer, &write);
	cr_assert_lt(layout->write_count, 256);
	layout->writes[layout->write_count++] = write;
	layout->event_next = log_writer_event_next(writer);
	layout->checksum_last = log_writer_checksum_last(writer);
}

/* Writes writes_total writes; write w holds 1 + w % 3 records of counts that
 * vary with the record number, so writes are one or two blocks long. */
static void build_log(const char *dir, uint64_t segment_size, uint32_t writes_total,
                      struct layout *layout)
{
	memset(layout, 0, sizeof(*layout));
	struct log_writer *writer = writer_new(dir, segment_size, WRITE_SMALL);
	uint64_t request = 1;
	for (uint32_t write = 0; write < writes_total; write++) {
		uint32_t records = 1 + write % 3;
		uint64_t offset = LOG_WRITE_HEADER_SIZE;
		for (uint32_t record = 0; record < records; record++) {
			uint32_t count = (uint32_t)((request * 7) % 23);
			uint32_t index = layout->record_count++;
			layout->record_offset[index] = offset; /* made absolute below */
			offset += log_record_size(count);
			append_generated(writer, count, request++);
		}
		flush_recorded(writer, layout);
		struct log_write *done = &layout->writes[layout->write_count - 1];
		for (uint32_t index = layout->record_count - records; index < layout->record_count;
		     index++) {
			layout->record_segment[index] = done->segment;
			layout->record_offset[index] += done->offset;
		}
	}
	log_writer_close(writer);
}

struct summary {
	enum log_status status;
	struct log_outcome outcome;
	struct log_position position;
	uint32_t records;
	uint64_t event_next;
	uint64_t checksum_last;
};

/* Reads the whole log, checking every event and result against the
 * generator and every record's place in the chain. */
static void read_log(const char *dir, struct summary *summary)
{
	memset(summary, 0, sizeof(*summary));
	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, dir, NULL), 0);
	struct log_record record;
	uint64_t event_next = 1;
	uint64_t checksum = log_chain_seed(test_log_id);
	while ((summary->status = log_reader_next(reader, &record)) == LOG_RECORD) {
		const struct log_record_header *header = record.header;
		cr_assert_eq(header->event_first, event_next);
		cr_assert_eq(header->checksum_prev, checksum);
		cr_assert_eq(header->request, summary->records + 1);
		for (uint32_t index = 0; index < header->count; index++) {
			struct skuld_event event = event_at(event_next + index);
			struct skuld_result result = result_at(event_next + index, index);
			cr_assert_eq(memcmp(&record.events[index], &event, sizeof(event)), 0);
			cr_assert_eq(memcmp(&record.results[index], &result, sizeof(result)), 0);
		}
		event_next += header->count;
		checksum = header->checksum;
		summary->records += 1;
	}
	summary->outcome = *log_reader_outcome(reader);
	if (summary->status == LOG_END_CLEAN || summary->status == LOG_END_TORN) {
		cr_assert_eq(log_reader_position(reader, &summary->position), 0);
		cr_assert_eq(summary->position.event_next, event_next);
		if (summary->position.segment != 0) { /* an empty log has no log id yet */
			cr_assert_eq(summary->position.checksum_prev, checksum);
		}
	} else {
		cr_assert_eq(log_reader_position(reader, &summary->position), -EINVAL);
	}
	summary->event_next = event_next;
	summary->checksum_last = checksum;
	log_reader_close(reader);
}

/* Records in the first writes writes of a layout. */
static uint32_t records_before(const struct layout *layout, uint32_t writes)
{
	uint32_t records = 0;
	for (uint32_t write = 0; write < writes; write++) {
		records += layout->writes[write].record_count;
	}
	return records;
}

static int file_open(const char *dir, uint64_t segment)
{
	char path[1024];
	segment_path(path, sizeof(path), dir, segment);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0, "%s", path);
	return fd;
}

static void file_read(int fd, void *bytes, size_t size, uint64_t offset)
{
	cr_assert_eq(pread(fd, bytes, size, (off_t)offset), (ssize_t)size);
}

static void file_write(int fd, const void *bytes, size_t size, uint64_t offset)
{
	cr_assert_eq(pwrite(fd, bytes, size, (off_t)offset), (ssize_t)size);
}

static uint64_t file_size(const char *dir, uint64_t segment)
{
	char path[1024];
	segment_path(path, sizeof(path), dir, segment);
	struct stat status;
	cr_assert_eq(stat(path, &status), 0);
	return (uint64_t)status.st_size;
}

/* ---- Round trips -------------------------------------------------------- */

Test(log, empty_directory_is_a_clean_empty_log)
{
	char *dir = temp_dir();
	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_CLEAN);
	cr_assert_eq(summary.records, 0);
	cr_assert_eq(summary.position.segment, 0);
	cr_assert_eq(summary.position.write_next, 1);
	cr_assert_eq(summary.position.event_next, 1);
	remove_dir(dir);
}

Test(log, round_trip_across_segments)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 24, &layout);

	/* Every write is where the writer said, in sequence, rolled as needed. */
	cr_assert_eq(layout.write_count, 24);
	uint64_t segment_last = layout.writes[23].segment;
	cr_assert_geq(segment_last, 6, "24 writes of 1-2 blocks need >= 6 segments of 3 blocks");
	for (uint32_t write = 0; write < 24; write++) {
		const struct log_write *done = &layout.writes[write];
		cr_assert_eq(done->sequence, write + 1);
		cr_assert_eq(done->offset % LOG_BLOCK_SIZE, 0);
		cr_assert_geq(done->offset, LOG_BLOCK_SIZE);
		cr_assert_leq(done->offset + done->size, SEGMENT_SMALL);
		cr_assert_eq(done->create_segment,
		             write == 0 || done->segment != layout.writes[write - 1].segment);
	}
	for (uint64_t segment = 1; segment <= segment_last; segment++) {
		cr_assert_eq(file_size(dir, segment), SEGMENT_SMALL);
	}

	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_CLEAN, "%s", summary.outcome.reason);
	cr_assert_eq(summary.records, layout.record_count);
	cr_assert_eq(summary.records, records_before(&layout, 24));
	cr_assert_eq(summary.event_next, layout.event_next);
	cr_assert_eq(summary.checksum_last, layout.checksum_last);
	cr_assert_eq(summary.position.segment, segment_last);
	cr_assert_eq(summary.position.offset, layout.writes[23].offset + layout.writes[23].size);
	cr_assert_eq(summary.position.write_next, 25);

	/* The segment header of the second segment continues the first. */
	int fd = file_open(dir, 2);
	struct log_segment_header header;
	file_read(fd, &header, sizeof(header), 0);
	close(fd);
	cr_assert_eq(header.magic, LOG_SEGMENT_MAGIC);
	cr_assert_eq(header.segment, 2);
	cr_assert_eq(header.segment_size, SEGMENT_SMALL);
	uint32_t first_in_two = 0;
	while (layout.writes[first_in_two].segment != 2) {
		first_in_two++;
	}
	cr_assert_eq(header.write_first, first_in_two + 1);
	cr_assert_eq(header.event_first, layout.writes[first_in_two].event_first);
	remove_dir(dir);
}

Test(log, resume_after_reopen_continues_sequences_and_chain)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 5, &layout);
	uint64_t event_next = layout.event_next;
	uint32_t records = layout.record_count;

	/* Reopen: the reader's position resumes the writer. */
	struct log_writer *writer = writer_new(dir, SEGMENT_SMALL, WRITE_SMALL);
	struct log_position durable;
	log_writer_position(writer, &durable);
	cr_assert_eq(durable.write_next, 6);
	cr_assert_eq(durable.event_next, event_next);
	cr_assert_eq(durable.checksum_prev, layout.checksum_last);
	for (uint32_t write = 0; write < 7; write++) {
		append_generated(writer, 9, records + write + 1);
		cr_assert_eq(log_writer_flush(writer), 0);
	}
	log_writer_position(writer, &durable);
	log_writer_close(writer);

	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_CLEAN, "%s", summary.outcome.reason);
	cr_assert_eq(summary.records, records + 7);
	cr_assert_eq(summary.event_next, event_next + 63);
	cr_assert_eq(summary.position.write_next, 13);
	cr_assert_eq(summary.position.segment, durable.segment);
	cr_assert_eq(summary.position.offset, durable.offset);
	cr_assert_eq(summary.position.checksum_prev, durable.checksum_prev);
	remove_dir(dir);
}

Test(log, writer_refuses_another_logs_position)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 2, &layout);
	struct summary summary;
	read_log(dir, &summary);
	struct log_writer_config config = config_for(dir, SEGMENT_SMALL, WRITE_SMALL);
	config.log_id.lo ^= 1;
	struct log_writer *writer;
	cr_assert_eq(log_writer_init(&writer, &config, &summary.position), -EINVAL);
	cr_assert_null(writer);
	config = config_for(dir, SEGMENT_SMALL, SEGMENT_SMALL); /* write > segment - block */
	cr_assert_eq(log_writer_init(&writer, &config, &summary.position), -EINVAL);
	remove_dir(dir);
}

Test(log, append_limits_and_double_buffering)
{
	char *dir = temp_dir();
	struct log_writer *writer = writer_new(dir, SEGMENT_SMALL, WRITE_SMALL);
	struct log_write write;
	cr_assert_eq(log_writer_seal(writer, &write), -ENODATA);

	/* 8192 - 64 bytes of payload: 50 events (8064 B) fit once, then no more. */
	static struct skuld_event events[64];
	static struct skuld_result results[64];
	struct log_record_info info = {.request = 1, .operation = SKULD_OP_SUBMIT};
	cr_assert_eq(log_writer_append(writer, &info, events, results, 51, NULL), -EMSGSIZE);
	cr_assert_eq(log_writer_append(writer, &info, events, results, 50, NULL), 0);
	cr_assert_eq(log_writer_append(writer, &info, events, results, 1, NULL), -ENOSPC);
	cr_assert_eq(log_writer_append(writer, &info, NULL, NULL, 0, NULL), 0, "64 B fit exactly");

	/* Sealed write in flight; appends continue into the other buffer. */
	cr_assert_eq(log_writer_seal(writer, &write), 0);
	cr_assert_eq(write.size, 8192);
	cr_assert_eq(write.create_segment, true);
	cr_assert_eq(write.segment, 1);
	cr_assert_eq(write.event_first, 1);
	cr_assert_eq(write.event_next, 51);
	cr_assert_eq(write.record_count, 2);
	uint64_t event_first = 0;
	cr_assert_eq(log_writer_append(writer, &info, events, results, 3, &event_first), 0);
	cr_assert_eq(event_first, 51);
	cr_assert_eq(log_write_sync(writer, &write), 0);
	log_writer_complete(writer, &write);

	/* The second write does not fit the 8 KiB left after the first: roll. */
	struct log_write second;
	cr_assert_eq(log_writer_seal(writer, &second), 0);
	cr_assert_eq(second.sequence, 2);
	cr_assert_eq(second.offset, LOG_BLOCK_SIZE + 8192);
	cr_assert_eq(second.create_segment, false);
	cr_assert_eq(log_write_sync(writer, &second), 0);
	log_writer_complete(writer, &second);
	cr_assert_eq(log_writer_append(writer, &info, NULL, NULL, 0, NULL), 0);
	cr_assert_eq(log_writer_seal(writer, &write), 0);
	cr_assert_eq(write.segment, 2);
	cr_assert_eq(write.offset, LOG_BLOCK_SIZE);
	cr_assert_eq(write.create_segment, true);
	cr_assert_eq(log_write_sync(writer, &write), 0);
	log_writer_complete(writer, &write);
	log_writer_close(writer);

	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, dir, NULL), 0);
	struct log_record record;
	uint32_t counts[4] = {0};
	uint32_t records = 0;
	while (log_reader_next(reader, &record) == LOG_RECORD) {
		cr_assert_lt(records, 4);
		counts[records++] = record.header->count;
	}
	cr_assert_eq(log_reader_outcome(reader)->status, LOG_END_CLEAN);
	cr_assert_eq(records, 4);
	cr_assert_eq(counts[0], 50);
	cr_assert_eq(counts[1], 0);
	cr_assert_eq(counts[2], 3);
	cr_assert_eq(counts[3], 0);
	log_reader_close(reader);
	remove_dir(dir);
}

/* ---- Torn last writes --------------------------------------------------- */

enum last_write {
	LAST_INTACT, /* every byte of data survived */
	LAST_TORN,   /* some did, some did not */
	LAST_ABSENT, /* none did: as if it was never written */
};

/* Checks how the log ends after damage to its last write: clean with every
 * record (intact), or back at the start of the last write with every earlier
 * record intact: torn there, or clean there when nothing of it survived. */
static void expect_last_write(const char *dir, const struct layout *layout, enum last_write state)
{
	const struct log_write *last = &layout->writes[layout->write_count - 1];
	struct summary summary;
	read_log(dir, &summary);
	if (state == LAST_INTACT) {
		cr_assert_eq(summary.status, LOG_END_CLEAN, "%s", summary.outcome.reason);
		cr_assert_eq(summary.records, layout->record_count);
		cr_assert_eq(summary.position.offset, last->offset + last->size);
		return;
	}
	cr_assert_eq(summary.status, state == LAST_TORN ? LOG_END_TORN : LOG_END_CLEAN,
	             "status %d: %s", summary.status, summary.outcome.reason);
	cr_assert_eq(summary.outcome.segment, last->segment);
	cr_assert_eq(summary.outcome.offset, last->offset);
	cr_assert_eq(summary.records, records_before(layout, layout->write_count - 1));
	cr_assert_eq(summary.position.segment, last->segment);
	cr_assert_eq(summary.position.offset, last->offset);
	cr_assert_eq(summary.position.write_next, last->sequence);
	cr_assert_eq(summary.position.event_next, last->event_first);
}

Test(log, torn_prefix_at_every_byte_is_discarded)
{
	char *dir = temp_dir();
	static struct layout layout;
	/* Write 3 holds 3 records and spans two blocks; it is the last one. */
	build_log(dir, 64 * 1024, 3, &layout);
	const struct log_write *last = &layout.writes[2];
	cr_assert_eq(last->size, 8192, "the last write spans two blocks");
	cr_assert_eq(last->record_count, 3);
	int fd = file_open(dir, last->segment);
	static uint8_t original[8192];
	static uint8_t zeros[8192];
	file_read(fd, original, last->size, last->offset);
	struct log_write_header header;
	memcpy(&header, original, sizeof(header));
	uint64_t used = LOG_WRITE_HEADER_SIZE + header.payload_size;
	cr_assert_eq(used, 64 + 3 * 64 + 36 * 160);
	/* The data ends with the high bytes of a result's available, which are
	 * zero; cutting only zeros changes nothing. */
	uint64_t data_end = used;
	while (original[data_end - 1] == 0) {
		data_end--;
	}
	cr_assert_gt(data_end, used - 8);

	for (uint32_t cut = 0; cut < last->size; cut++) {
		file_write(fd, zeros, last->size - cut, last->offset + cut);
		enum last_write state = cut == 0 ? LAST_ABSENT : LAST_TORN;

		expect_last_write(dir, &layout, cut >= data_end ? LAST_INTACT : state);
		file_write(fd, original + cut, last->size - cut, last->offset + cut);
	}
	close(fd);
	remove_dir(dir);
}

/* Keeps the sectors of the last write whose bit is set in keep and zeroes the
 * others; returns whether the write should still be intact. */
static void sectors_keep(int fd, const struct log_write *last, const uint8_t *original,
                         uint64_t keep, uint32_t sectors)
{
	static uint8_t zeros[512];
	for (uint32_t sector = 0; sector < sectors; sector++) {
		const uint8_t *bytes = (keep >> sector) & 1 ? original + sector * 512 : zeros;
		file_write(fd, bytes, 512, last->offset + sector * 512);
	}
}

Test(log, torn_sector_subsets_are_discarded)
{
	char *dir = temp_dir();
	static struct layout layout;
	memset(&layout, 0, sizeof(layout));
	struct log_writer *writer = writer_new(dir, 64 * 1024, WRITE_SMALL);
	append_generated(writer, 5, 1);
	flush_recorded(writer, &layout);
	/* Last write: 64 + 64 + 12 * 160 = 2048 bytes of data = sectors 0..3. */
	append_generated(writer, 12, 2);
	flush_recorded(writer, &layout);
	layout.record_count = 2;
	log_writer_close(writer);
	const struct log_write *last = &layout.writes[1];
	cr_assert_eq(last->size, 4096);

	int fd = file_open(dir, last->segment);
	static uint8_t original[3 * 4096];
	file_read(fd, original, last->size, last->offset);
	for (uint64_t keep = 0; keep < 256; keep++) {
		sectors_keep(fd, last, original, keep, 8);
		enum last_write state = LAST_TORN;
		if ((keep & 0x0f) == 0x0f) {
			state = LAST_INTACT;
		} else if ((keep & 0x0f) == 0) {
			state = LAST_ABSENT;
		}
		expect_last_write(dir, &layout, state);
	}
	sectors_keep(fd, last, original, 0xff, 8);
	expect_last_write(dir, &layout, LAST_INTACT);
	close(fd);
	remove_dir(dir);
}

Test(log, torn_multi_block_write_in_non_prefix_patterns)
{
	char *dir = temp_dir();
	static struct layout layout;
	memset(&layout, 0, sizeof(layout));
	struct log_writer *writer = writer_new(dir, 64 * 1024, 16 * 1024);
	append_generated(writer, 5, 1);
	flush_recorded(writer, &layout);
	append_generated(writer, 40, 2); /* 64 + 64 + 6400 + ... */
	append_generated(writer, 30, 3); /* ... + 64 + 4800 = 11392 bytes: 23 sectors */
	flush_recorded(writer, &layout);
	layout.record_count = 3;
	log_writer_close(writer);
	const struct log_write *last = &layout.writes[1];
	cr_assert_eq(last->size, 3 * 4096);

	int fd = file_open(dir, last->segment);
	static uint8_t original[3 * 4096];
	file_read(fd, original, last->size, last->offset);
	const uint64_t all = (1ull << 24) - 1;
	const uint64_t patterns[] = {
	        all & ~1ull,                  /* first sector (the header) missing */
	        all & ~(1ull << 12),          /* one sector in the middle */
	        all & ~(0xffull << 8),        /* the middle block */
	        all & ~(1ull << 22),          /* the last sector with data */
	        0x555555ull,                  /* every other sector */
	        0xaaaaaaull,                  /* the other half, header missing */
	        1ull,                         /* only the header */
	        all & ~((1ull << 22) | 1ull), /* first and last data sectors */
	        (1ull << 8) | (1ull << 16),   /* only the starts of later blocks */
	};
	for (size_t index = 0; index < sizeof(patterns) / sizeof(patterns[0]); index++) {
		sectors_keep(fd, last, original, patterns[index], 24);
		expect_last_write(dir, &layout, LAST_TORN);
	}
	/* Only the padding sector lost: the data is all there. */
	sectors_keep(fd, last, original, all & ~(1ull << 23), 24);
	expect_last_write(dir, &layout, LAST_INTACT);
	close(fd);
	remove_dir(dir);
}

Test(log, torn_then_discarded_then_resumed)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 8, &layout);
	const struct log_write *last = &layout.writes[7];
	int fd = file_open(dir, last->segment);
	static uint8_t garbage[4096];
	memset(garbage, 0x5a, sizeof(garbage));
	file_write(fd, garbage + 100, 200, last->offset + 1000); /* part of a sector */
	close(fd);

	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_TORN);
	cr_assert_eq(summary.outcome.offset, last->offset);
	cr_assert_neq(strstr(summary.outcome.file, "log-"), NULL);
	cr_assert_eq(log_discard_torn(dir, &summary.position, NULL), 0);

	/* The discarded bytes are zero again; the writer resumes at the torn write. */
	fd = file_open(dir, last->segment);
	static uint8_t bytes[SEGMENT_SMALL];
	uint64_t tail = SEGMENT_SMALL - last->offset;
	file_read(fd, bytes, tail, last->offset);
	close(fd);
	for (uint64_t index = 0; index < tail; index++) {
		cr_assert_eq(bytes[index], 0, "byte %" PRIu64, index);
	}
	struct log_writer_config config = config_for(dir, SEGMENT_SMALL, WRITE_SMALL);
	struct log_writer *writer;
	cr_assert_eq(log_writer_init(&writer, &config, &summary.position), 0);
	append_generated(writer, 4, summary.records + 1);
	struct log_write write;
	cr_assert_eq(log_writer_seal(writer, &write), 0);
	cr_assert_eq(write.sequence, last->sequence);
	cr_assert_eq(write.segment, last->segment);
	cr_assert_eq(write.offset, last->offset);
	cr_assert_eq(log_write_sync(writer, &write), 0);
	log_writer_complete(writer, &write);
	log_writer_close(writer);
	uint32_t before = summary.records;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_CLEAN, "%s", summary.outcome.reason);
	cr_assert_eq(summary.records, before + 1);
	remove_dir(dir);
}

Test(log, torn_first_write_of_a_new_segment)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 5, &layout);
	const struct log_write *last = &layout.writes[4];
	cr_assert_eq(last->offset, LOG_BLOCK_SIZE, "the last write starts a segment");
	int fd = file_open(dir, last->segment);
	static uint8_t zeros[512];
	file_write(fd, zeros, sizeof(zeros), last->offset + 512);
	close(fd);
	expect_last_write(dir, &layout, LAST_TORN);
	remove_dir(dir);
}

/* ---- Corruption before the last write ----------------------------------- */

/* Where the reader must report a flip of the byte at offset in segment. */
static uint64_t expected_offset(const struct layout *layout, uint64_t segment, uint64_t offset)
{
	if (offset < LOG_BLOCK_SIZE) {
		return 0;
	}
	uint64_t end = LOG_BLOCK_SIZE;
	for (uint32_t write = 0; write < layout->write_count; write++) {
		const struct log_write *done = &layout->writes[write];
		if (done->segment != segment) {
			continue;
		}
		if (offset >= done->offset && offset < done->offset + done->size) {
			return done->offset;
		}
		end = done->offset + done->size;
	}
	return end; /* the zeros after the segment's last write */
}

Test(log, bit_flip_before_the_last_write_is_corruption_with_offset)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 12, &layout);
	const struct log_write *last = &layout.writes[11];
	uint32_t flips = 0;
	for (uint64_t segment = 1; segment <= last->segment; segment++) {
		int fd = file_open(dir, segment);
		uint64_t limit = segment == last->segment ? last->offset : SEGMENT_SMALL;
		for (uint64_t offset = 0; offset < limit; offset++) {
			/* Every header byte; a stride through the rest. */
			bool header = offset < LOG_SEGMENT_HEADER_SIZE ||
			              (expected_offset(&layout, segment, offset) + 64 > offset &&
			               offset >= LOG_BLOCK_SIZE);
			if (!header && offset % 53 != 0) {
				continue;
			}
			uint8_t byte;
			file_read(fd, &byte, 1, offset);
			uint8_t flipped = byte ^ (uint8_t)(1u << (offset % 8));
			file_write(fd, &flipped, 1, offset);

			struct summary summary;
			read_log(dir, &summary);
			cr_assert_eq(summary.status, LOG_CORRUPT,
			             "flip at segment %" PRIu64 " offset %" PRIu64 ": status %d",
			             segment, offset, summary.status);
			cr_assert_eq(summary.outcome.segment, segment, "flip at %" PRIu64, offset);
			cr_assert_eq(summary.outcome.offset,
			             expected_offset(&layout, segment, offset),
			             "flip at segment %" PRIu64 " offset %" PRIu64 ": %s", segment,
			             offset, summary.outcome.reason);
			char path[1024];
			segment_path(path, sizeof(path), dir, segment);
			cr_assert_str_eq(summary.outcome.file, path);
			file_write(fd, &byte, 1, offset);
			flips++;
		}
		close(fd);
	}
	cr_assert_gt(flips, 1000);
	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_CLEAN);
	remove_dir(dir);
}

Test(log, non_zero_bytes_after_the_end_of_the_last_segment_are_discarded)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, 64 * 1024, 3, &layout);
	const struct log_write *last = &layout.writes[2];
	uint64_t end = last->offset + last->size;
	int fd = file_open(dir, last->segment);
	uint8_t byte = 1;
	file_write(fd, &byte, 1, end + 5000);
	close(fd);
	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_TORN);
	cr_assert_eq(summary.outcome.offset, end);
	cr_assert_eq(summary.records, layout.record_count);
	cr_assert_eq(log_discard_torn(dir, &summary.position, NULL), 0);
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_CLEAN);
	cr_assert_eq(summary.records, layout.record_count);
	remove_dir(dir);
}

/* ---- The chain ---------------------------------------------------------- */

static void fix_record(uint8_t *record)
{
	struct log_record_header header;
	memcpy(&header, record, sizeof(header));
	header.checksum = skuld_checksum(record + 8, log_record_size(header.count) - 8);
	memcpy(record, &header.checksum, 8);
}

/* Recomputes a write's payload and header checksums (and zero padding). */
static void fix_write(uint8_t *write, uint32_t payload_size, uint32_t record_count,
                      uint64_t sequence, uint64_t event_first)
{
	struct log_write_header header;
	memcpy(&header, write, sizeof(header));
	header.payload_size = payload_size;
	header.record_count = record_count;
	header.sequence = sequence;
	header.event_first = event_first;
	header.checksum_payload = skuld_checksum(write + 64, payload_size);
	header.checksum_header = skuld_checksum(&header, 56);
	memcpy(write, &header, sizeof(header));
	uint64_t used = 64 + payload_size;
	memset(write + used, 0, ((used + 4095) & ~4095ull) - used);
}

static void expect_corrupt(const char *dir, uint64_t segment, uint64_t offset, const char *reason)
{
	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_CORRUPT, "status %d", summary.status);
	cr_assert_eq(summary.outcome.segment, segment);
	cr_assert_eq(summary.outcome.offset, offset, "%s", summary.outcome.reason);
	cr_assert_neq(strstr(summary.outcome.reason, reason), NULL, "%s", summary.outcome.reason);
}

Test(log, chain_catches_a_removed_record)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, 64 * 1024, 6, &layout);
	/* Write 3 (index 2) has three records; drop the middle one. */
	const struct log_write *victim = &layout.writes[2];
	cr_assert_eq(victim->record_count, 3);
	int fd = file_open(dir, victim->segment);
	static uint8_t bytes[8192];
	file_read(fd, bytes, victim->size, victim->offset);
	uint32_t first = records_before(&layout, 2);
	uint64_t at[3];
	for (int index = 0; index < 3; index++) {
		at[index] = layout.record_offset[first + index] - victim->offset;
	}
	struct log_write_header header;
	memcpy(&header, bytes, sizeof(header));
	uint64_t end = 64 + header.payload_size;
	memmove(bytes + at[1], bytes + at[2], end - at[2]);
	uint32_t payload = (uint32_t)(header.payload_size - (at[2] - at[1]));
	fix_write(bytes, payload, 2, header.sequence, header.event_first);
	file_write(fd, bytes, victim->size, victim->offset);
	close(fd);
	expect_corrupt(dir, victim->segment, victim->offset + at[1], "chain broken");
	remove_dir(dir);
}

Test(log, chain_catches_a_write_spliced_out)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, 64 * 1024, 6, &layout);
	/* Remove write 3 (index 2); move writes 4..6 up, renumber them and
	 * their records' event sequences, and fix every checksum except the
	 * chain links, so only the chain can tell. */
	const struct log_write *gone = &layout.writes[2];
	cr_assert_eq(layout.writes[5].segment, gone->segment);
	uint64_t events_gone = gone->event_next - gone->event_first;
	cr_assert_gt(events_gone, 0);
	int fd = file_open(dir, gone->segment);
	static uint8_t image[64 * 1024] __attribute__((aligned(4096)));
	file_read(fd, image, sizeof(image), 0);
	uint64_t shift = gone->size;
	uint64_t tail_end = layout.writes[5].offset + layout.writes[5].size;
	memmove(image + gone->offset, image + gone->offset + shift,
	        tail_end - gone->offset - shift);
	memset(image + tail_end - shift, 0, shift);
	for (uint32_t write = 3; write < 6; write++) {
		uint8_t *bytes = image + layout.writes[write].offset - shift;
		struct log_write_header header;
		memcpy(&header, bytes, sizeof(header));
		uint64_t offset = 64;
		for (uint32_t record = 0; record < header.record_count; record++) {
			struct log_record_header *rh = (struct log_record_header *)(bytes + offset);
			rh->event_first -= events_gone;
			fix_record(bytes + offset);
			offset += log_record_size(rh->count);
		}
		fix_write(bytes, header.payload_size, header.record_count, header.sequence - 1,
		          header.event_first - events_gone);
	}
	file_write(fd, image, sizeof(image), 0);
	close(fd);
	expect_corrupt(dir, gone->segment, gone->offset + 64, "chain broken");
	remove_dir(dir);
}

Test(log, chain_catches_a_reordered_pair_of_records)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, 64 * 1024, 6, &layout);
	const struct log_write *victim = &layout.writes[1]; /* two records */
	cr_assert_eq(victim->record_count, 2);
	int fd = file_open(dir, victim->segment);
	static uint8_t bytes[8192];
	static uint8_t swapped[8192];
	file_read(fd, bytes, victim->size, victim->offset);
	struct log_write_header header;
	memcpy(&header, bytes, sizeof(header));
	uint32_t first = records_before(&layout, 1);
	uint64_t second_at = layout.record_offset[first + 1] - victim->offset;
	uint64_t end = 64 + header.payload_size;
	memcpy(swapped, bytes, 64);
	memcpy(swapped + 64, bytes + second_at, end - second_at);
	memcpy(swapped + 64 + (end - second_at), bytes + 64, second_at - 64);
	fix_write(swapped, header.payload_size, 2, header.sequence, header.event_first);
	file_write(fd, swapped, victim->size, victim->offset);
	close(fd);
	expect_corrupt(dir, victim->segment, victim->offset + 64, "chain broken");
	remove_dir(dir);
}

Test(log, missing_middle_segment_is_corruption)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 10, &layout);
	cr_assert_geq(layout.writes[9].segment, 3);
	char path[1024];
	segment_path(path, sizeof(path), dir, 2);
	cr_assert_eq(unlink(path), 0);
	expect_corrupt(dir, 3, 0, "segment 2 is missing");
	remove_dir(dir);
}

Test(log, swapped_segments_are_corruption)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 10, &layout);
	char two[1024], three[1024], spare[1100];
	segment_path(two, sizeof(two), dir, 2);
	segment_path(three, sizeof(three), dir, 3);
	snprintf(spare, sizeof(spare), "%s.spare", two);
	cr_assert_eq(rename(two, spare), 0);
	cr_assert_eq(rename(three, two), 0);
	cr_assert_eq(rename(spare, three), 0);
	expect_corrupt(dir, 2, 0, "index 3 in file 2");

	/* Even with the headers renumbered to match the names, the chain breaks. */
	for (uint64_t segment = 2; segment <= 3; segment++) {
		int fd = file_open(dir, segment);
		struct log_segment_header header;
		file_read(fd, &header, sizeof(header), 0);
		header.segment = segment;
		header.checksum_header = skuld_checksum(&header, 120);
		file_write(fd, &header, sizeof(header), 0);
		close(fd);
	}
	expect_corrupt(dir, 2, 0, "continues write");
	remove_dir(dir);
}

Test(log, segment_of_another_log_is_corruption)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 10, &layout);
	int fd = file_open(dir, 2);
	struct log_segment_header header;
	file_read(fd, &header, sizeof(header), 0);
	header.log_id.hi ^= 1;
	header.checksum_header = skuld_checksum(&header, 120);
	file_write(fd, &header, sizeof(header), 0);
	close(fd);
	expect_corrupt(dir, 2, 0, "another log");
	remove_dir(dir);
}

/* Found by tests/fuzz/fuzz_log.c: a lone, otherwise valid segment named and
 * numbered 0 read as a log whose position (segment 0) says "empty", so a
 * torn write in it was never discarded and a writer would start over. */
Test(log, segment_index_0_is_corruption)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 2, &layout);
	cr_assert_eq(layout.writes[1].segment, 1);
	char one[1024], zero[1024];
	segment_path(one, sizeof(one), dir, 1);
	segment_path(zero, sizeof(zero), dir, 0);
	cr_assert_eq(rename(one, zero), 0);
	int fd = file_open(dir, 0);
	struct log_segment_header header;
	file_read(fd, &header, sizeof(header), 0);
	header.segment = 0;
	header.checksum_header = skuld_checksum(&header, 120);
	file_write(fd, &header, sizeof(header), 0);
	close(fd);
	expect_corrupt(dir, 0, 0, "index 0");
	remove_dir(dir);
}

Test(log, truncated_segment_is_corruption)
{
	char *dir = temp_dir();
	static struct layout layout;
	build_log(dir, SEGMENT_SMALL, 10, &layout);
	char path[1024];
	segment_path(path, sizeof(path), dir, 2);
	cr_assert_eq(truncate(path, SEGMENT_SMALL - LOG_BLOCK_SIZE), 0);
	expect_corrupt(dir, 2, 0, "size");
	remove_dir(dir);
}

/* ---- Injected failures -------------------------------------------------- */

static int fail_after; /* calls of the failing function that succeed first */
static int fail_errno; /* errno it fails with */
static int short_max;  /* pwrite writes at most this many bytes when > 0 */

static ssize_t pwrite_failing(int fd, const void *bytes, size_t size, off_t offset)
{
	if (fail_after-- == 0) {
		errno = fail_errno;
		return -1;
	}
	if (short_max > 0 && size > (size_t)short_max) {
		size = (size_t)short_max;
	}
	return pwrite(fd, bytes, size, offset);
}

static int fdatasync_failing(int fd)
{
	(void)fd;
	errno = fail_errno;
	return -1;
}

static int fsync_failing(int fd)
{
	if (fail_after-- == 0) {
		errno = fail_errno;
		return -1;
	}
	return fsync(fd);
}

static int fallocate_unsupported(int fd, int mode, off_t offset, off_t size)
{
	(void)fd, (void)mode, (void)offset, (void)size;
	errno = EOPNOTSUPP;
	return -1;
}

static struct log_writer *writer_with_os(const char *dir, const struct log_os *os)
{
	struct log_writer_config config = config_for(dir, SEGMENT_SMALL, WRITE_SMALL);
	config.os = os;
	struct log_position empty = {.write_next = 1, .event_next = 1};
	struct log_writer *writer;
	cr_assert_eq(log_writer_init(&writer, &config, &empty), 0);
	return writer;
}

Test(log, pwrite_failure_is_returned_and_fails_the_writer)
{
	char *dir = temp_dir();
	struct log_os os = log_os_default;
	os.pwrite = pwrite_failing;
	fail_after = 1; /* the segment header succeeds, the write fails */
	fail_errno = EIO;
	struct log_writer *writer = writer_with_os(dir, &os);
	append_generated(writer, 3, 1);
	cr_assert_eq(log_writer_flush(writer), -EIO);
	struct log_record_info info = {.operation = SKULD_OP_SUBMIT};
	cr_assert_eq(log_writer_append(writer, &info, NULL, NULL, 0, NULL), -EIO);
	struct log_write write;
	cr_assert_eq(log_writer_seal(writer, &write), -EIO);
	log_writer_close(writer);
	remove_dir(dir);
}

Test(log, fdatasync_failure_is_returned_and_never_retried)
{
	char *dir = temp_dir();
	struct log_os os = log_os_default;
	os.fdatasync = fdatasync_failing;
	fail_errno = ENOSPC;
	struct log_writer *writer = writer_with_os(dir, &os);
	append_generated(writer, 3, 1);
	struct log_write write;
	cr_assert_eq(log_writer_seal(writer, &write), 0);
	cr_assert_eq(log_write_sync(writer, &write), -ENOSPC);
	cr_assert_eq(log_write_sync(writer, &write), -ENOSPC); /* stays failed */
	struct log_position position;
	log_writer_position(writer, &position);
	cr_assert_eq(position.write_next, 1, "nothing became durable");
	log_writer_close(writer);
	remove_dir(dir);
}

Test(log, directory_fsync_failure_fails_segment_creation)
{
	char *dir = temp_dir();
	struct log_os os = log_os_default;
	os.fsync = fsync_failing;
	fail_after = 1; /* the segment file's fsync succeeds, the directory's fails */
	fail_errno = EIO;
	struct log_writer *writer = writer_with_os(dir, &os);
	append_generated(writer, 3, 1);
	struct log_write write;
	cr_assert_eq(log_writer_seal(writer, &write), 0);
	cr_assert_eq(write.create_segment, true);
	cr_assert_eq(log_writer_create_segment(writer, &write), -EIO);
	cr_assert_eq(write.fd, -1);
	cr_assert_eq(log_write_sync(writer, &write), -EIO);
	log_writer_close(writer);
	remove_dir(dir);
}

Test(log, fallocate_fallback_and_short_writes_still_make_a_valid_log)
{
	char *dir = temp_dir();
	struct log_os os = log_os_default;
	os.fallocate = fallocate_unsupported;
	os.pwrite = pwrite_failing;
	fail_after = -1000000; /* never */
	short_max = 1000;
	struct log_writer *writer = writer_with_os(dir, &os);
	for (uint32_t write = 0; write < 6; write++) {
		append_generated(writer, 20, write + 1);
		cr_assert_eq(log_writer_flush(writer), 0);
	}
	log_writer_close(writer);
	short_max = 0;
	cr_assert_eq(file_size(dir, 1), SEGMENT_SMALL);
	struct summary summary;
	read_log(dir, &summary);
	cr_assert_eq(summary.status, LOG_END_CLEAN, "%s", summary.outcome.reason);
	cr_assert_eq(summary.records, 6);
	cr_assert_eq(summary.event_next, 121);
	remove_dir(dir);
}

/* ---- The committed sample log of format version 1 ----------------------- */

/* tests/data/log-v1 is read by every later version of the reader. It is made
 * by sample_regenerate_if_asked below (SKULD_REGENERATE_SAMPLE=1); the expected
 * values in sample_v1_reads_exactly are those it was committed with. Do not
 * regenerate it once a release has shipped: the point is that the bytes stay. */

#define SAMPLE_SEGMENT_SIZE (16u * 1024u)
#define SAMPLE_WRITE_SIZE   (8u * 1024u)
#define SAMPLE_TIME_NS      1735689600000000000ull /* 2025-01-01T00:00:00Z */

static const skuld_u128 sample_log_id = {.lo = 0x31762d676f6c2d73ull, .hi = 0x646c756b73ull};
static const skuld_u128 sample_admin = {.lo = 0xad11, .hi = 1};
static const skuld_u128 sample_till = {.lo = 0x7111, .hi = 2};

static uint64_t sample_clock_ns(void)
{
	return SAMPLE_TIME_NS;
}

struct sample_batch {
	uint8_t operation;
	skuld_u128 client;
	uint64_t request;
	uint32_t count;
	struct skuld_event events[40];
	struct skuld_result results[40];
};

static struct skuld_event sample_event(uint16_t kind, uint32_t item, uint32_t location,
                                       int64_t quantity, uint64_t key)
{
	return (struct skuld_event){
	        .key = {.lo = key, .hi = 0x6b6579},
	        .occurred_at = SAMPLE_TIME_NS - 60000000000ull + key * 1000000ull,
	        .kind = kind,
	        .item = item,
	        .location = location,
	        .quantity = quantity,
	};
}

static void sample_add(struct sample_batch *batch, struct skuld_event event, int64_t quantity,
                       int64_t available)
{
	uint32_t index = batch->count++;
	batch->events[index] = event;
	batch->results[index] = (struct skuld_result){
	        .index = index,
	        .status = SKULD_OK,
	        .location = event.location,
	        .quantity = quantity,
	        .available = available,
	};
}

static void sample_define(struct sample_batch *batch, uint16_t kind, uint32_t id, const char *code,
                          uint64_t key)
{
	struct skuld_event event = sample_event(kind, 0, 0, 0, key);
	if (kind == SKULD_ITEM_DEFINE) {
		event.item = id;
		event.scale = id == 2 ? 3 : 0;
	} else if (kind == SKULD_LOCATION_DEFINE) {
		event.location = id;
		event.reason = 0; /* lifecycle: active */
	} else {
		event.channel = id;
		event.quantity = 2; /* channel buffer */
	}
	size_t length = strlen(code);
	cr_assert_lt(length, sizeof(event.code));
	memcpy(event.code, code, length); /* NUL-padded: the event starts zeroed */
	sample_add(batch, event, 0, 0);
}

/* The sample's batches: a catalog, receipts, a till sale, holds, a commit, a
 * server-written expiry, a 40-line basket and a damage adjustment. Returns
 * the number of batches; writes[] says after which batch a write is sealed. */
static uint32_t sample_batches(struct sample_batch *batches, bool *seal_after)
{
	memset(batches, 0, 10 * sizeof(*batches));
	struct sample_batch *b = batches;
	b[0] = (struct sample_batch){.operation = SKULD_OP_REGISTER, .client = sample_admin};
	b[1] = (struct sample_batch){
	        .operation = SKULD_OP_SUBMIT, .client = sample_admin, .request = 1};
	sample_define(&b[1], SKULD_ITEM_DEFINE, 1, "TSHIRT-RED-M", 1);
	sample_define(&b[1], SKULD_ITEM_DEFINE, 2, "COFFEE-BEANS-1KG", 2);
	sample_define(&b[1], SKULD_LOCATION_DEFINE, 1, "STORE-OSLO", 3);
	sample_define(&b[1], SKULD_LOCATION_DEFINE, 2, "WAREHOUSE-1", 4);
	sample_define(&b[1], SKULD_CHANNEL_DEFINE, 1, "shopify", 5);
	b[2] = (struct sample_batch){
	        .operation = SKULD_OP_SUBMIT, .client = sample_admin, .request = 2};
	sample_add(&b[2], sample_event(SKULD_RECEIVE, 1, 1, 50, 6), 50, 50);
	sample_add(&b[2], sample_event(SKULD_RECEIVE, 1, 2, 200, 7), 200, 200);
	sample_add(&b[2], sample_event(SKULD_RECEIVE, 2, 1, 12500, 8), 12500, 12500);
	b[3] = (struct sample_batch){.operation = SKULD_OP_REGISTER, .client = sample_till};
	b[4] = (struct sample_batch){
	        .operation = SKULD_OP_SUBMIT, .client = sample_till, .request = 1};
	sample_add(&b[4], sample_event(SKULD_SALE, 1, 1, 2, 9), 2, 48);
	b[5] = (struct sample_batch){
	        .operation = SKULD_OP_SUBMIT, .client = sample_admin, .request = 3};
	struct skuld_event hold = sample_event(SKULD_RESERVE, 1, 2, 3, 10);
	hold.id = 1001;
	hold.ttl_s = 900;
	sample_add(&b[5], hold, 3, 197);
	hold = sample_event(SKULD_RESERVE, 2, 1, 500, 11);
	hold.id = 1002;
	hold.ttl_s = 60;
	sample_add(&b[5], hold, 500, 12000);
	b[6] = (struct sample_batch){
	        .operation = SKULD_OP_SUBMIT, .client = sample_admin, .request = 4};
	struct skuld_event commit = sample_event(SKULD_COMMIT, 0, 0, 0, 12);
	commit.id = 1001;
	sample_add(&b[6], commit, 3, 197);
	b[6].results[0].location = 2;
	b[7] = (struct sample_batch){.operation = SKULD_OP_SUBMIT}; /* the server: client 0 */
	struct skuld_event expire = sample_event(SKULD_EXPIRE, 0, 0, 0, 13);
	expire.id = 1002;
	sample_add(&b[7], expire, 500, 12500);
	b[7].results[0].location = 1;
	b[8] = (struct sample_batch){
	        .operation = SKULD_OP_SUBMIT, .client = sample_till, .request = 2};
	for (uint32_t line = 0; line < 40; line++) {
		struct skuld_event sale = sample_event(SKULD_SALE, 1, 1, 1, 100 + line);
		sale.reference = (skuld_u128){.lo = 5001, .hi = 0}; /* the receipt */
		sample_add(&b[8], sale, 1, 47 - (int64_t)line);
	}
	b[9] = (struct sample_batch){
	        .operation = SKULD_OP_SUBMIT, .client = sample_till, .request = 3};
	struct skuld_event damage = sample_event(SKULD_ADJUST, 1, 1, -1, 140);
	damage.reason = SKULD_REASON_DAMAGE;
	sample_add(&b[9], damage, -1, 7);
	/* Writes: {0,1} {2} {3,4} | {5} {6} {7} | {8} {9} -> 3 segments. */
	const bool seal[10] = {false, true, true, false, true, true, true, true, true, true};
	memcpy(seal_after, seal, sizeof(seal));
	return 10;
}

static void sample_clear(const char *dir)
{
	DIR *directory = opendir(dir);
	cr_assert_not_null(directory, "%s", dir);
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL) {
		if (strncmp(entry->d_name, "log-", 4) == 0) {
			char path[1024];
			snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
			cr_assert_eq(unlink(path), 0);
		}
	}
	closedir(directory);
}

/* Writes the sample log into dir (which must hold no segments). */
static void sample_write(const char *dir, struct log_position *end)
{
	struct log_os os = log_os_default;
	os.clock_ns = sample_clock_ns;
	struct log_writer_config config = {
	        .dir = dir,
	        .segment_size = SAMPLE_SEGMENT_SIZE,
	        .write_size_max = SAMPLE_WRITE_SIZE,
	        .log_id = sample_log_id,
	        .os = &os,
	};
	struct log_position empty = {.write_next = 1, .event_next = 1};
	struct log_writer *writer;
	cr_assert_eq(log_writer_init(&writer, &config, &empty), 0);
	static struct sample_batch batches[10];
	bool seal_after[10];
	uint32_t count = sample_batches(batches, seal_after);
	for (uint32_t index = 0; index < count; index++) {
		const struct sample_batch *batch = &batches[index];
		struct log_record_info info = {
		        .timestamp_ns = SAMPLE_TIME_NS + index * 1000000000ull,
		        .client = batch->client,
		        .request = batch->request,
		        .operation = batch->operation,
		};
		cr_assert_eq(log_writer_append(writer, &info, batch->events, batch->results,
		                               batch->count, NULL),
		             0);
		if (seal_after[index]) {
			cr_assert_eq(log_writer_flush(writer), 0);
		}
	}
	log_writer_position(writer, end);
	log_writer_close(writer);
}

/* With SKULD_REGENERATE_SAMPLE=1, rewrites tests/data/log-v1 from today's
 * writer before sample_v1_is_what_the_writer_writes_today compares it. */
static void sample_regenerate_if_asked(void)
{
	const char *regenerate = getenv("SKULD_REGENERATE_SAMPLE");
	if (regenerate == NULL || strcmp(regenerate, "1") != 0)
		return;
	const char *dir = SKULD_TEST_DATA "/log-v1";
	mkdir(dir, 0755);
	sample_clear(dir);
	struct log_position end;
	sample_write(dir, &end);
	fprintf(stderr,
	        "sample: segment %" PRIu64 " offset %" PRIu64 " write_next %" PRIu64
	        " event_next %" PRIu64 " checksum_last 0x%016" PRIx64 "\n",
	        end.segment, end.offset, end.write_next, end.event_next, end.checksum_prev);
}

/* Checks one record's header fields. */
static void sample_expect_record(const struct log_record *record, uint64_t batch,
                                 uint64_t event_first, uint32_t count, uint8_t operation,
                                 skuld_u128 client, uint64_t request)
{
	const struct log_record_header *header = record->header;
	cr_assert_eq(header->event_first, event_first, "record %" PRIu64, batch);
	cr_assert_eq(header->count, count, "record %" PRIu64, batch);
	cr_assert_eq(header->operation, operation, "record %" PRIu64, batch);
	cr_assert(skuld_u128_equal(header->client, client), "record %" PRIu64, batch);
	cr_assert_eq(header->request, request, "record %" PRIu64, batch);
	cr_assert_eq(header->timestamp_ns, SAMPLE_TIME_NS + batch * 1000000000ull);
}

/* Spot checks of the events and results of the sample's records. */
static void sample_expect_contents(const struct log_record *record, uint32_t index)
{
	const struct skuld_event *events = record->events;
	const struct skuld_result *results = record->results;
	switch (index) {
	case 1:
		cr_assert_eq(events[0].kind, SKULD_ITEM_DEFINE);
		cr_assert_str_eq(events[0].code, "TSHIRT-RED-M");
		cr_assert_eq(events[1].scale, 3);
		cr_assert_str_eq(events[1].code, "COFFEE-BEANS-1KG");
		cr_assert_eq(events[4].kind, SKULD_CHANNEL_DEFINE);
		cr_assert_str_eq(events[4].code, "shopify");
		cr_assert_eq(events[4].quantity, 2);
		break;
	case 2:
		cr_assert_eq(events[2].kind, SKULD_RECEIVE);
		cr_assert_eq(events[2].item, 2);
		cr_assert_eq(events[2].quantity, 12500);
		cr_assert_eq(results[2].available, 12500);
		break;
	case 5:
		cr_assert_eq(events[1].kind, SKULD_RESERVE);
		cr_assert_eq(events[1].id, 1002);
		cr_assert_eq(events[1].ttl_s, 60);
		cr_assert_eq(results[1].available, 12000);
		break;
	case 7:
		cr_assert_eq(events[0].kind, SKULD_EXPIRE);
		cr_assert_eq(events[0].id, 1002);
		cr_assert_eq(results[0].available, 12500);
		break;
	case 8:
		cr_assert_eq(events[39].kind, SKULD_SALE);
		cr_assert_eq(events[39].key.lo, 139);
		cr_assert_eq(events[39].key.hi, 0x6b6579);
		cr_assert_eq(events[39].reference.lo, 5001);
		cr_assert_eq(results[39].index, 39);
		cr_assert_eq(results[39].available, 8);
		break;
	case 9:
		cr_assert_eq(events[0].kind, SKULD_ADJUST);
		cr_assert_eq(events[0].quantity, -1);
		cr_assert_eq(events[0].reason, SKULD_REASON_DAMAGE);
		cr_assert_eq(results[0].available, 7);
		break;
	default:
		break;
	}
}

Test(log, sample_v1_reads_exactly)
{
	struct log_reader *reader;
	cr_assert_eq(log_reader_open(&reader, SKULD_TEST_DATA "/log-v1", NULL), 0);
	static const struct {
		uint64_t event_first;
		uint32_t count;
		uint8_t operation;
		uint8_t who; /* 0 server, 1 admin, 2 till */
		uint64_t request;
		uint64_t segment;
		uint64_t write;
	} expected[10] = {
	        {1, 0, SKULD_OP_REGISTER, 1, 0, 1, 1}, {1, 5, SKULD_OP_SUBMIT, 1, 1, 1, 1},
	        {6, 3, SKULD_OP_SUBMIT, 1, 2, 1, 2},   {9, 0, SKULD_OP_REGISTER, 2, 0, 1, 3},
	        {9, 1, SKULD_OP_SUBMIT, 2, 1, 1, 3},   {10, 2, SKULD_OP_SUBMIT, 1, 3, 2, 4},
	        {12, 1, SKULD_OP_SUBMIT, 1, 4, 2, 5},  {13, 1, SKULD_OP_SUBMIT, 0, 0, 2, 6},
	        {14, 40, SKULD_OP_SUBMIT, 2, 2, 3, 7}, {54, 1, SKULD_OP_SUBMIT, 2, 3, 3, 8},
	};
	const skuld_u128 clients[3] = {{0, 0}, sample_admin, sample_till};
	struct log_record record;
	uint32_t index = 0;
	while (log_reader_next(reader, &record) == LOG_RECORD) {
		cr_assert_lt(index, 10);
		sample_expect_record(&record, index, expected[index].event_first,
		                     expected[index].count, expected[index].operation,
		                     clients[expected[index].who], expected[index].request);
		cr_assert_eq(record.segment, expected[index].segment, "record %u", index);
		cr_assert_eq(record.write_sequence, expected[index].write, "record %u", index);
		sample_expect_contents(&record, index);
		index++;
	}
	const struct log_outcome *outcome = log_reader_outcome(reader);
	cr_assert_eq(outcome->status, LOG_END_CLEAN, "%s", outcome->reason);
	cr_assert_eq(index, 10);
	struct log_position end;
	cr_assert_eq(log_reader_position(reader, &end), 0);
	cr_assert_eq(end.segment, 3);
	cr_assert_eq(end.offset, SAMPLE_SEGMENT_SIZE);
	cr_assert_eq(end.write_next, 9);
	cr_assert_eq(end.event_next, 55);
	cr_assert_eq(end.checksum_prev, 0xac57146a339a7cafull);
	cr_assert(skuld_u128_equal(end.log_id, sample_log_id));
	log_reader_close(reader);
}

Test(log, sample_v1_is_what_the_writer_writes_today)
{
	sample_regenerate_if_asked();
	char *dir = temp_dir();
	struct log_position end;
	sample_write(dir, &end);
	cr_assert_eq(end.checksum_prev, 0xac57146a339a7cafull);
	for (uint64_t segment = 1; segment <= 3; segment++) {
		static uint8_t made[SAMPLE_SEGMENT_SIZE];
		static uint8_t committed[SAMPLE_SEGMENT_SIZE];
		int fd = file_open(dir, segment);
		file_read(fd, made, sizeof(made), 0);
		close(fd);
		char path[1024];
		segment_path(path, sizeof(path), SKULD_TEST_DATA "/log-v1", segment);
		fd = open(path, O_RDONLY);
		cr_assert_geq(fd, 0);
		file_read(fd, committed, sizeof(committed), 0);
		close(fd);
		cr_assert_eq(memcmp(made, committed, sizeof(made)), 0, "segment %" PRIu64, segment);
	}
	remove_dir(dir);
}
