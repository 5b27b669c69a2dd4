/*
 * micro_codec.c — encode + checksum + decode + validate of 1,000-event
 * SUBMIT frames, the work a frame costs on both sides of a socket.
 *
 * One iteration: copy 1,000 events into a frame buffer behind a header, seal
 * it (header and body checksums), then check the header, the body checksum
 * and every event's structural rules, as the server does on receipt.
 */
#include "micro.h"

#include "protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_EVENTS 1000u
#define CODEC_FRAMES 20000u

static void codec_events_fill(struct skuld_event *events, uint32_t count)
{
	uint64_t seed = 42;
	memset(events, 0, sizeof(*events) * count);
	for (uint32_t i = 0; i < count; i++) {
		struct skuld_event *event = &events[i];
		event->key.lo = micro_random(&seed) | 1;
		event->key.hi = micro_random(&seed);
		event->occurred_at = 1764115200000000000u + i;
		event->item = 1 + (uint32_t)(micro_random(&seed) % 100000);
		event->location = 1 + (uint32_t)(micro_random(&seed) % 100);
		event->quantity = 1 + (int64_t)(micro_random(&seed) % 5);
		if (i % 2 == 0) {
			event->kind = SKULD_RESERVE;
			event->id = 1 + i;
			event->ttl_s = 900;
		} else {
			event->kind = SKULD_SALE;
		}
	}
}

int micro_codec(int rounds)
{
	size_t body_size = CODEC_EVENTS * sizeof(struct skuld_event);
	unsigned char *frame = aligned_alloc(64, SKULD_HEADER_SIZE + body_size);
	struct skuld_event *events = malloc(body_size);
	double *rates = calloc((size_t)rounds, sizeof(double));
	if (frame == NULL || events == NULL || rates == NULL) {
		fprintf(stderr, "codec: out of memory\n");
		free(frame), free(events), free(rates);
		return -1;
	}
	codec_events_fill(events, CODEC_EVENTS);
	struct skuld_header *header = (struct skuld_header *)frame;
	unsigned char *body = frame + SKULD_HEADER_SIZE;
	uint64_t rejected = 0;
	for (int round = 0; round < rounds; round++) {
		uint64_t start = micro_now_ns();
		for (uint32_t f = 0; f < CODEC_FRAMES; f++) {
			memset(header, 0, sizeof(*header));
			header->version = SKULD_PROTOCOL_VERSION_MAX;
			header->operation = SKULD_OP_SUBMIT;
			header->request = f + 1;
			header->client.lo = 7;
			header->body_size = (uint32_t)body_size;
			header->count = CODEC_EVENTS;
			memcpy(body, events, body_size);
			proto_header_seal(header, body);
			uint32_t index = 0;
			if (proto_header_check(header) != SKULD_OK ||
			    proto_body_check(header, body, &index) != SKULD_OK)
				rejected++;
		}
		uint64_t elapsed = micro_now_ns() - start;
		rates[round] = (double)CODEC_FRAMES * CODEC_EVENTS * 1e9 / (double)elapsed;
	}
	if (rejected != 0) {
		fprintf(stderr, "codec: %llu valid frames were rejected\n",
		        (unsigned long long)rejected);
		free(frame), free(events), free(rates);
		return -1;
	}
	micro_report("codec: encode+seal+check, 1000/frame", rates, rounds, "events/s");
	free(frame), free(events), free(rates);
	return 0;
}
