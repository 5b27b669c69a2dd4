/*
 * recovery.c — replay of the log at start-up (recovery.h).
 */
#include "recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "retention.h"
#include "skuld_assert.h"
#include "snapshot.h"
#include "storage.h"

static int recovery_walk(struct service *service, const char *dir, struct log_reader *reader,
                         struct recovery_summary *summary, char *message, size_t message_size)
{
	struct log_record record;
	enum log_status status;
	char why[LOG_REASON_SIZE + 64];
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
		if (summary->records == 0 &&
		    record.header->event_first != summary->snapshot_event_next) {
			char name[64];
			log_segment_name(name, sizeof(name), record.segment);
			snprintf(message, message_size,
			         "the log in %s begins at event %llu (%s), but recovery needs it "
			         "from event %llu (a segment before the first one present is "
			         "missing, and no snapshot covers it)",
			         dir, (unsigned long long)record.header->event_first, name,
			         (unsigned long long)summary->snapshot_event_next);
			return -EBADMSG;
		}
		if (service_replay(service, &record, why, sizeof(why)) != 0) {
			char name[64];
			log_segment_name(name, sizeof(name), record.segment);
			snprintf(message, message_size,
			         "log %s/%s offset %llu: record of client %016llx%016llx request "
			         "%llu: %s",
			         dir, name, (unsigned long long)record.offset,
			         (unsigned long long)record.header->client.hi,
			         (unsigned long long)record.header->client.lo,
			         (unsigned long long)record.header->request, why);
			return -EBADMSG;
		}
		summary->records++;
		summary->events += record.header->count;
	}
	const struct log_outcome *outcome = log_reader_outcome(reader);
	switch (status) {
	case LOG_END_CLEAN:
		break;
	case LOG_END_TORN:
		fprintf(stderr,
		        "skuld: warning: the last log write in %s at offset %llu is torn (%s); "
		        "discarding it: it was never acknowledged\n",
		        outcome->file, (unsigned long long)outcome->offset, outcome->reason);
		summary->torn = 1;
		break;
	case LOG_CORRUPT:
		summary->damaged = 1;
		summary->damage = *outcome;
		snprintf(message, message_size, "log corrupt in %s at offset %llu: %s",
		         outcome->file, (unsigned long long)outcome->offset, outcome->reason);
		return -EBADMSG;
	default:
		snprintf(message, message_size, "reading the log in %s: %s (%s)", dir,
		         strerror(-outcome->error), outcome->file);
		return outcome->error < 0 ? outcome->error : -EIO;
	}
	int ret = log_reader_position(reader, &summary->position);
	if (ret != 0) {
		snprintf(message, message_size, "log position: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

/* NULL when segment position->segment of the log in dir is of the log the
 * snapshot names (or cannot be read: then the walk reports it), else why
 * not. */
static const char *log_mismatch(const char *dir, const struct log_position *position)
{
	char name[64];
	char path[LOG_PATH_SIZE + 64];
	if (log_segment_name(name, sizeof(name), position->segment) != 0)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	const struct log_os *os = storage_os();
	int fd = os->open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct log_segment_header header;
	ssize_t got = os->pread(fd, &header, sizeof(header), 0);
	os->close(fd);
	if (got != (ssize_t)sizeof(header) || header.magic != LOG_SEGMENT_MAGIC ||
	    header.checksum_header !=
	            skuld_checksum(&header, offsetof(struct log_segment_header, checksum_header)))
		return NULL;
	if (!skuld_u128_equal(header.log_id, position->log_id))
		return "it belongs to another log (log id differs)";
	return NULL;
}

/* Loads the newest usable snapshot of snapshot_dir into service. Returns 0
 * (summary->snapshot 0 when none was usable: service is fresh), or -ENOMEM /
 * -errno with message. */
static int snapshot_choose(struct service *service, const char *dir, const char *snapshot_dir,
                           struct log_position *start, struct recovery_summary *summary,
                           char *message, size_t message_size)
{
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	int ret = snapshot_list(snapshot_dir, &numbers, &count);
	if (ret != 0) {
		snprintf(message, message_size, "listing snapshots in %s: %s", snapshot_dir,
		         strerror(-ret));
		return ret;
	}
	for (uint32_t i = 0; i < count; i++) {
		char name[SNAPSHOT_NAME_SIZE];
		char path[LOG_PATH_SIZE + SNAPSHOT_NAME_SIZE];
		char reason[256] = "";
		snapshot_name(name, sizeof(name), numbers[i], ".sks");
		snprintf(path, sizeof(path), "%s/%s", snapshot_dir, name);
		ret = snapshot_read(service, path, start, reason, sizeof(reason));
		const char *mismatch = ret == 0 ? log_mismatch(dir, start) : NULL;
		if (ret == 0 && mismatch == NULL) {
			summary->snapshot = numbers[i];
			summary->snapshot_event_next = start->event_next;
			break;
		}
		if (ret != -ENOMEM) {
			fprintf(stderr,
			        "skuld: warning: snapshot %s skipped: %s; recovering from %s\n",
			        path, mismatch != NULL ? mismatch : reason,
			        i + 1 < count ? "an older snapshot and a longer replay of the log"
			                      : "the whole log");
			summary->snapshots_skipped++;
			ret = service_reset(service);
		}
		if (ret != 0) {
			free(numbers);
			snprintf(message, message_size, "loading snapshot %s: out of memory", path);
			return -ENOMEM;
		}
	}
	free(numbers);
	return 0;
}

int recovery_run_snapshots(struct service *service, const char *dir, const char *snapshot_dir,
                           struct recovery_summary *summary, char *message, size_t message_size)
{
	memset(summary, 0, sizeof(*summary));
	summary->snapshot_event_next = 1;
	struct log_position start;
	memset(&start, 0, sizeof(start));
	if (snapshot_dir != NULL) {
		int ret = snapshot_choose(service, dir, snapshot_dir, &start, summary, message,
		                          message_size);
		if (ret != 0)
			return ret;
	}
	struct log_reader *reader = NULL;
	int ret = log_reader_open(&reader, dir, storage_os());
	if (ret != 0) {
		snprintf(message, message_size, "opening the log in %s: %s", dir, strerror(-ret));
		return ret;
	}
	if (summary->snapshot != 0) {
		ret = log_reader_seek(reader, &start);
		SKULD_ASSERT(ret == 0); /* snapshot_read checked the position */
	}
	ret = recovery_walk(service, dir, reader, summary, message, message_size);
	log_reader_close(reader);
	if (ret == 0 &&
	    summary->snapshot_event_next + summary->events != summary->position.event_next) {
		/* The walk began later than the state it replays into (segment 1,
		 * or the snapshot's position): the events between were never
		 * applied. A log whose first segments are gone needs a snapshot
		 * that covers them. */
		snprintf(
		        message, message_size,
		        "the log in %s begins at event %llu, but recovery needs it from event %llu "
		        "(a segment before the first one present is missing, and no snapshot "
		        "covers it)",
		        dir, (unsigned long long)(summary->position.event_next - summary->events),
		        (unsigned long long)summary->snapshot_event_next);
		ret = -EBADMSG;
	}
	if (ret != 0 && summary->snapshot != 0) {
		size_t used = strlen(message);
		snprintf(message + used, message_size - used,
		         " (reading on from snapshot %016llx, write %llu)",
		         (unsigned long long)summary->snapshot,
		         (unsigned long long)start.write_next);
	}
	if (ret == 0 && summary->torn) {
		ret = log_discard_torn(dir, &summary->position, storage_os());
		if (ret != 0)
			snprintf(message, message_size, "discarding the torn write in %s: %s", dir,
			         strerror(-ret));
	}
	return ret;
}

int recovery_run(struct service *service, const char *dir, struct recovery_summary *summary,
                 char *message, size_t message_size)
{
	return recovery_run_snapshots(service, dir, NULL, summary, message, message_size);
}

/* ---- Recovering up to damage --------------------------------------------- */

static int directory_sync(const char *dir)
{
	const struct log_os *os = storage_os();
	int fd = os->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int ret = os->fsync(fd) == 0 ? 0 : -errno;
	os->close(fd);
	return ret;
}

/* Segment index of log_dir into path and aside. */
static void segment_paths(const char *log_dir, const char *aside_dir, uint64_t index, char *path,
                          char *aside, size_t size)
{
	char name[64];
	log_segment_name(name, sizeof(name), index);
	snprintf(path, size, "%s/%s", log_dir, name);
	snprintf(aside, size, "%s/%s", aside_dir, name);
}

int recovery_salvage(const char *log_dir, const char *aside_dir, const struct log_outcome *damage,
                     char *message, size_t message_size)
{
	if (mkdir(aside_dir, 0755) != 0 && errno != EEXIST) {
		snprintf(message, message_size, "creating %s: %s", aside_dir, strerror(errno));
		return -errno;
	}
	struct retention_segment *segments = NULL;
	uint32_t count = 0;
	int ret = retention_segments(log_dir, &segments, &count);
	char path[LOG_PATH_SIZE + 64], aside[LOG_PATH_SIZE + 64];
	/* The damaged segment: kept up to the damaged write (whose offset is
	 * rounded down to its block), or moved whole when the damage is its
	 * header, its size, or a gap before it. */
	uint64_t keep_to = damage->offset & ~(uint64_t)(LOG_BLOCK_SIZE - 1);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		if (segments[i].index < damage->segment)
			continue;
		segment_paths(log_dir, aside_dir, segments[i].index, path, aside, sizeof(path));
		if (segments[i].index == damage->segment && keep_to >= LOG_BLOCK_SIZE) {
			ret = retention_copy(path, aside);
			if (ret == 0) {
				struct log_position position = {
				        .segment = damage->segment,
				        .segment_size = segments[i].bytes,
				        .offset = keep_to,
				};
				ret = log_discard_torn(log_dir, &position, storage_os());
			}
		} else if (storage_os()->rename(path, aside) != 0) {
			ret = -errno;
		}
		if (ret != 0)
			snprintf(message, message_size, "moving %s aside to %s: %s", path,
			         aside_dir, strerror(-ret));
	}
	free(segments);
	if (ret == 0 && (ret = directory_sync(aside_dir)) == 0)
		ret = directory_sync(log_dir);
	if (ret != 0 && message[0] == '\0')
		snprintf(message, message_size, "syncing %s: %s", log_dir, strerror(-ret));
	return ret;
}
