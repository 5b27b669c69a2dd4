/*
 * micro_chain.c — the SHA-256 chain head (server/core/chain.c) on one core:
 * what it costs per event for records of 1, 10, 100 and 1,000 events
 * (64 + 160 N bytes each), hashed from a buffer of 64 MiB of records as
 * skuld-replay verify hashes them (each record just read, so in cache).
 * The fixed part per record (a SHA-256 init and final, the previous head's
 * 32 bytes and the padding block) is what makes small records dearer per
 * event.
 */
#include "micro.h"

#include "chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_BUFFER_BYTES (64u << 20)

int micro_chain(int rounds)
{
	static const uint32_t counts[] = {1, 10, 100, 1000};
	struct chain *chain = NULL;
	uint8_t *buffer = malloc(CHAIN_BUFFER_BYTES);
	double *rates = calloc((size_t)rounds, sizeof(double));
	int status = -1;
	if (buffer == NULL || rates == NULL || chain_create(&chain) != 0) {
		fprintf(stderr, "chain: cannot allocate or no SHA-256 in libcrypto\n");
		goto out;
	}
	uint64_t seed = 5;
	for (uint32_t i = 0; i < CHAIN_BUFFER_BYTES / 8; i++) {
		uint64_t value = micro_random(&seed);
		memcpy(buffer + (size_t)i * 8, &value, 8);
	}
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		uint64_t size = log_record_size(counts[c]);
		uint64_t records = CHAIN_BUFFER_BYTES / size;
		double ns_per_event = 0;
		for (int round = 0; round < rounds; round++) {
			uint64_t start = micro_now_ns();
			for (uint64_t r = 0; r < records; r++) {
				if (chain_add(chain, buffer + r * size, size, r) != 0)
					goto out;
			}
			uint64_t elapsed = micro_now_ns() - start;
			rates[round] = (double)(records * counts[c]) * 1e9 / (double)elapsed;
		}
		char name[64];
		snprintf(name, sizeof(name), "chain: SHA-256, %u event%s/record", counts[c],
		         counts[c] == 1 ? "" : "s");
		micro_report(name, rates, rounds, "events/s");
		ns_per_event = 1e9 / rates[rounds / 2];
		printf("%-34s %.0f ns per event, %.0f ns per record, %.2f GB/s\n", "", ns_per_event,
		       ns_per_event * counts[c],
		       (double)size * rates[rounds / 2] / counts[c] / 1e9);
	}
	status = 0;
out:
	chain_destroy(chain);
	free(buffer);
	free(rates);
	return status;
}
