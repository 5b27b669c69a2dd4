/*
 * recovery.c — replay of the log at start-up (recovery.h).
 */
#include "recovery.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int recovery_walk(struct service *service, const char *dir, struct log_reader *reader,
                         struct recovery_summary *summary, char *message, size_t message_size)
{
	struct log_record record;
	enum log_status status;
	char why[LOG_REASON_SIZE + 64];
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
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

int recovery_run(struct service *service, const char *dir, struct recovery_summary *summary,
                 char *message, size_t message_size)
{
	memset(summary, 0, sizeof(*summary));
	struct log_reader *reader = NULL;
	int ret = log_reader_open(&reader, dir, NULL);
	if (ret != 0) {
		snprintf(message, message_size, "opening the log in %s: %s", dir, strerror(-ret));
		return ret;
	}
	ret = recovery_walk(service, dir, reader, summary, message, message_size);
	log_reader_close(reader);
	if (ret == 0 && summary->torn) {
		ret = log_discard_torn(dir, &summary->position, NULL);
		if (ret != 0)
			snprintf(message, message_size, "discarding the torn write in %s: %s", dir,
			         strerror(-ret));
	}
	return ret;
}
