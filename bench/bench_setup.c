/*
 * bench_setup.c — defines skuld-bench's catalog (locations STORE-n, items
 * SKU-n), with --pool the channel whose pool holds every location (and
 * for mixed a listing of every item on it), and
 * receives the starting stock at every item-location, in
 * batches of 1,000 over one connection. Idempotency keys are derived from
 * the ids, so running the setup twice is harmless: the second run's events
 * come back REPLAYED and change nothing.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SETUP_BATCH        1000u
#define SETUP_KEY_LOCATION 0x10000000000ull
#define SETUP_KEY_ITEM     0x20000000000ull
#define SETUP_KEY_RECEIVE  0x30000000000ull
#define SETUP_KEY_CHANNEL  0x40000000000ull
#define SETUP_KEY_LISTING  0x50000000000ull

struct setup {
	int fd;
	skuld_u128 client;
	uint64_t request;
	struct skuld_event events[SETUP_BATCH];
	struct skuld_result results[SETUP_BATCH];
	uint32_t count;
	uint64_t applied;
	uint64_t replayed;
};

static int setup_flush(struct setup *setup)
{
	if (setup->count == 0)
		return 0;
	if (bench_submit_blocking(setup->fd, setup->client, ++setup->request, setup->events,
	                          setup->count, setup->results) != 0)
		return -1;
	for (uint32_t i = 0; i < setup->count; i++) {
		const struct skuld_result *result = &setup->results[i];
		int existed = result->status == SKULD_ITEM_EXISTS ||
		              result->status == SKULD_LOCATION_EXISTS ||
		              result->status == SKULD_CHANNEL_EXISTS;
		if (result->status != SKULD_OK && !existed) {
			fprintf(stderr, "skuld-bench: setup %s failed: %s\n",
			        skuld_event_kind_name(setup->events[i].kind),
			        skuld_status_name(result->status));
			return -1;
		}
		if ((result->flags & SKULD_RESULT_REPLAYED) || existed)
			setup->replayed++;
		else
			setup->applied++;
	}
	setup->count = 0;
	return 0;
}

static struct skuld_event *setup_next(struct setup *setup, uint64_t key)
{
	if (setup->count == SETUP_BATCH && setup_flush(setup) != 0)
		return NULL;
	struct skuld_event *event = &setup->events[setup->count++];
	memset(event, 0, sizeof(*event));
	event->key.lo = key;
	event->key.hi = 0x62656e6368u; /* "bench" */
	return event;
}

static int setup_catalog(struct setup *setup, const struct bench_options *options)
{
	for (uint32_t location = 1; location <= options->locations; location++) {
		struct skuld_event *event = setup_next(setup, SETUP_KEY_LOCATION + location);
		if (event == NULL)
			return -1;
		event->kind = SKULD_LOCATION_DEFINE;
		event->location = location;
		snprintf(event->code, sizeof(event->code), "STORE-%u", location);
	}
	for (uint32_t item = 1; item <= options->items; item++) {
		struct skuld_event *event = setup_next(setup, SETUP_KEY_ITEM + item);
		if (event == NULL)
			return -1;
		event->kind = SKULD_ITEM_DEFINE;
		event->item = item;
		snprintf(event->code, sizeof(event->code), "SKU-%u", item);
	}
	return 0;
}

/* --pool NAME: channel BENCH_CHANNEL called NAME, buffer 0, with every
 * bench location in its pool at floor 0; mixed: every item listed on it
 * as NAME-n. */
static int setup_channel(struct setup *setup, const struct bench_options *options)
{
	if (options->pool == NULL)
		return 0;
	struct skuld_event *event = setup_next(setup, SETUP_KEY_CHANNEL);
	if (event == NULL)
		return -1;
	event->kind = SKULD_CHANNEL_DEFINE;
	event->channel = BENCH_CHANNEL;
	snprintf(event->code, sizeof(event->code), "%s", options->pool);
	for (uint32_t location = 1; location <= options->locations; location++) {
		event = setup_next(setup, SETUP_KEY_CHANNEL + location);
		if (event == NULL)
			return -1;
		event->kind = SKULD_CHANNEL_POOL;
		event->channel = BENCH_CHANNEL;
		event->location = location;
	}
	for (uint32_t item = 1; options->listings && item <= options->items; item++) {
		event = setup_next(setup, SETUP_KEY_LISTING + item);
		if (event == NULL)
			return -1;
		event->kind = SKULD_CHANNEL_LISTING;
		event->channel = BENCH_CHANNEL;
		event->item = item;
		snprintf(event->listing, sizeof(event->listing), "%s-%u", options->pool, item);
	}
	return 0;
}

static int setup_stock(struct setup *setup, const struct bench_options *options)
{
	uint32_t items = options->hot != 0 ? options->hot : options->items;
	uint32_t locations = options->hot != 0 && options->pool == NULL ? 1 : options->locations;
	for (uint32_t item = 1; item <= items; item++) {
		for (uint32_t location = 1; location <= locations; location++) {
			uint64_t key = SETUP_KEY_RECEIVE + (uint64_t)item * 100000u + location;
			struct skuld_event *event = setup_next(setup, key);
			if (event == NULL)
				return -1;
			event->kind = SKULD_RECEIVE;
			event->item = item;
			event->location = location;
			event->quantity = options->stock;
		}
	}
	return 0;
}

int bench_setup(struct bench *bench)
{
	struct setup *setup = calloc(1, sizeof(*setup));
	if (setup == NULL)
		return -1;
	setup->client.lo = (uint64_t)bench_now_ns() | 1;
	setup->client.hi = (uint64_t)getpid();
	setup->fd = bench_connect(bench->options.server);
	int status = -1;
	if (setup->fd >= 0 && bench_register_blocking(setup->fd, setup->client) == 0 &&
	    setup_catalog(setup, &bench->options) == 0 &&
	    setup_channel(setup, &bench->options) == 0 &&
	    setup_stock(setup, &bench->options) == 0 && setup_flush(setup) == 0) {
		status = 0;
		if (!bench->options.json)
			printf("setup: %llu events applied, %llu already there\n",
			       (unsigned long long)setup->applied,
			       (unsigned long long)setup->replayed);
	}
	if (setup->fd >= 0)
		close(setup->fd);
	free(setup);
	return status;
}
