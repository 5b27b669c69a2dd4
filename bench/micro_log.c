/*
 * micro_log.c — appends of 1,000-event records into the log's group-commit
 * buffer: record header, chain link, and the XXH3 over events and results.
 *
 * Pure append, no I/O: one writer on an empty temporary directory; when its
 * write buffer is full, the write is sealed and marked complete without
 * being written (outside the timed part), so the two buffers are reused as
 * in the server and no file is ever created. The disk side of group commit
 * is measured with the server.
 */
#include "micro.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_EVENTS      1000u
#define LOG_WRITE_BYTES (16u << 20)
#define LOG_RECORDS     2000u

/* Seals the full write and recycles its buffer without any I/O. */
int micro_log_recycle(struct log_writer *writer)
{
	struct log_write write;
	int error = log_writer_seal(writer, &write);
	if (error == 0)
		log_writer_complete(writer, &write);
	return error;
}

static int log_round(struct log_writer *writer, const struct skuld_event *events,
                     const struct skuld_result *results, double *rate)
{
	struct log_record_info info = {
	        .timestamp_ns = 1, .client = {.lo = 9}, .request = 1, .operation = SKULD_OP_SUBMIT};
	uint64_t elapsed = 0;
	for (uint32_t record = 0; record < LOG_RECORDS; record++) {
		uint64_t start = micro_now_ns();
		int error = log_writer_append(writer, &info, events, results, LOG_EVENTS, NULL);
		elapsed += micro_now_ns() - start;
		if (error == -ENOSPC) {
			error = micro_log_recycle(writer);
			record--;
			continue;
		}
		if (error != 0) {
			fprintf(stderr, "log: append failed: %s\n", strerror(-error));
			return -1;
		}
		info.request++;
		info.timestamp_ns++;
	}
	*rate = (double)LOG_RECORDS * LOG_EVENTS * 1e9 / (double)elapsed;
	return 0;
}

int micro_log(int rounds)
{
	char dir[] = "/tmp/skuld-microbench-XXXXXX";
	struct skuld_event *events = calloc(LOG_EVENTS, sizeof(*events));
	struct skuld_result *results = calloc(LOG_EVENTS, sizeof(*results));
	double *rates = calloc((size_t)rounds, sizeof(double));
	int status = -1;
	if (events == NULL || results == NULL || rates == NULL || mkdtemp(dir) == NULL) {
		fprintf(stderr, "log: cannot set up: %s\n", strerror(errno));
		goto out;
	}
	uint64_t seed = 7;
	for (uint32_t i = 0; i < LOG_EVENTS; i++) {
		events[i].key.lo = micro_random(&seed) | 1;
		events[i].kind = SKULD_SALE;
		events[i].item = 1 + i;
		events[i].location = 1;
		events[i].quantity = 1;
		results[i].index = i;
		results[i].location = 1;
		results[i].quantity = 1;
	}
	struct log_writer_config config = {
	        .dir = dir,
	        .segment_size = 1u << 30,
	        .write_size_max = LOG_WRITE_BYTES,
	        .log_id = {.lo = 1, .hi = 2},
	};
	struct log_position empty = {.write_next = 1, .event_next = 1}; /* a new log */
	struct log_writer *writer = NULL;
	status = log_writer_init(&writer, &config, &empty);
	if (status != 0)
		fprintf(stderr, "log: writer init failed: %s\n", strerror(-status));
	for (int round = 0; round < rounds && status == 0; round++)
		status = log_round(writer, events, results, &rates[round]);
	if (writer != NULL)
		log_writer_close(writer);
	if (status == 0)
		micro_report("log: append 1000-event records", rates, rounds, "events/s");
	rmdir(dir);
out:
	free(events), free(results), free(rates);
	return status;
}
