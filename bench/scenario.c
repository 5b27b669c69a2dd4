/*
 * scenario.c — the scenario table and its op choosers (scenario.h).
 *
 * Choosers draw from the bench's one random stream (single thread). Every
 * event gets a fresh idempotency key from the connection's counter; holds
 * ids come from the connection's hold counter, so they never collide
 * across connections or runs.
 */
#include "scenario.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* A prime above zipf's largest table (2^26 ranks), so multiplying by it
 * modulo the table size permutes the ranks. */
#define ZIPF_SCATTER    2654435761u
#define ZIPF_SIZE_MAX   (1u << 26)
#define RECEIVE_EVERY   8u /* uniform, zipf: one RECEIVE in 8 events */
#define RECEIVE_UNITS   4
#define ABANDON_EVERY   7u /* flash-sale: one reserve in 7 is abandoned */
#define RELEASE_EVERY_F 6u /* flash-sale: one finished hold in 6 is released */

static void event_key(struct bench_connection *connection, struct skuld_event *event)
{
	event->key.lo = ++connection->key_next;
	event->key.hi = connection->client.lo;
}

/* A target uniform over the catalog, or over the hot items at location 1. */
static void target_uniform(struct bench *bench, struct skuld_event *event)
{
	const struct bench_options *options = &bench->options;
	uint64_t r = bench_random(&bench->seed);
	if (options->hot != 0) {
		event->item = 1 + (uint32_t)(r % options->hot);
		event->location = 1;
	} else {
		event->item = 1 + (uint32_t)(r % options->items);
		event->location = 1 + (uint32_t)((r >> 32) % options->locations);
	}
}

/* A target by zipf rank, scattered over the catalog's item-locations. */
static void target_zipf(struct bench *bench, struct skuld_event *event)
{
	double u = (double)(bench_random(&bench->seed) >> 11) * 0x1.0p-53;
	uint64_t low = 0, high = bench->zipf_size - 1;
	while (low < high) {
		uint64_t middle = low + (high - low) / 2;
		if (bench->zipf_cdf[middle] < u)
			low = middle + 1;
		else
			high = middle;
	}
	uint64_t index = (low * ZIPF_SCATTER) % bench->zipf_size;
	event->item = 1 + (uint32_t)(index / bench->options.locations);
	event->location = 1 + (uint32_t)(index % bench->options.locations);
}

static void target(struct bench *bench, struct skuld_event *event)
{
	if (bench->zipf_cdf != NULL)
		target_zipf(bench, event);
	else
		target_uniform(bench, event);
}

/* Writes COMMIT / RELEASE for up to half of the open holds (at least one)
 * into events[0..); one in release_every is released. Returns the count and
 * sets connection->finishing. */
static uint32_t holds_finish(struct bench *bench, struct bench_connection *connection,
                             struct skuld_event *events, uint32_t batch, uint32_t release_every)
{
	uint32_t finish_max = batch > 1 ? batch / 2 : 1;
	uint32_t finish =
	        connection->holds_count < finish_max ? connection->holds_count : finish_max;
	for (uint32_t i = 0; i < finish; i++) {
		struct skuld_event *event = &events[i];
		event_key(connection, event);
		event->id = connection->holds[i];
		event->kind = bench_random(&bench->seed) % release_every == 0 ? SKULD_RELEASE
		                                                              : SKULD_COMMIT;
	}
	connection->finishing = finish;
	return finish;
}

static void reserve_fill(struct bench *bench, struct bench_connection *connection,
                         struct skuld_event *event, uint32_t ttl_s)
{
	event_key(connection, event);
	event->kind = SKULD_RESERVE;
	event->id = ++connection->hold_next;
	event->ttl_s = ttl_s;
	target(bench, event);
	event->quantity = 1 + (int64_t)(bench_random(&bench->seed) & 1);
	if (bench->options.pool != NULL) {
		/* Against the channel's pool: the ledger picks the location. */
		event->channel = BENCH_CHANNEL;
		event->location = 0;
	}
}

/* steady, uniform, zipf: finish half, reserve the rest; every eighth
 * event of uniform and zipf is a RECEIVE instead. */
static uint32_t fill_mix(struct bench *bench, struct bench_connection *connection,
                         struct skuld_event *events, int replenish)
{
	uint32_t batch = bench->options.batch;
	memset(events, 0, sizeof(*events) * batch);
	uint32_t finish = holds_finish(bench, connection, events, batch, 4);
	for (uint32_t i = finish; i < batch; i++) {
		if (replenish && bench_random(&bench->seed) % RECEIVE_EVERY == 0) {
			struct skuld_event *event = &events[i];
			event_key(connection, event);
			event->kind = SKULD_RECEIVE;
			target(bench, event);
			event->quantity = RECEIVE_UNITS;
			continue;
		}
		reserve_fill(bench, connection, &events[i], SCENARIO_TTL_HOLD_S);
	}
	return batch;
}

static uint32_t fill_steady(struct bench *bench, struct bench_connection *connection,
                            struct skuld_event *events)
{
	return fill_mix(bench, connection, events, 0);
}

static uint32_t fill_replenished(struct bench *bench, struct bench_connection *connection,
                                 struct skuld_event *events)
{
	return fill_mix(bench, connection, events, 1);
}

/* flash-sale: checkouts finish their holds (commit most, release some) and
 * reserve again; some reserves are abandoned to expire. */
static uint32_t fill_flash_sale(struct bench *bench, struct bench_connection *connection,
                                struct skuld_event *events)
{
	uint32_t batch = bench->options.batch;
	memset(events, 0, sizeof(*events) * batch);
	uint32_t finish = holds_finish(bench, connection, events, batch, RELEASE_EVERY_F);
	for (uint32_t i = finish; i < batch; i++) {
		int abandon = bench_random(&bench->seed) % ABANDON_EVERY == 0;
		reserve_fill(bench, connection, &events[i],
		             abandon ? SCENARIO_TTL_ABANDON_S : SCENARIO_TTL_HOLD_S);
		events[i].quantity = 1;
	}
	return batch;
}

/* Till transactions until batch events are written; an exchange is a
 * linked RETURN + SALE and needs two slots. */
static uint32_t till_fill(struct bench *bench, struct bench_connection *connection,
                          struct skuld_event *events, uint32_t batch)
{
	uint32_t room = batch < 2 ? 2 : batch;
	uint32_t count = 0;
	memset(events, 0, sizeof(*events) * room);
	connection->finishing = 0;
	while (count < batch) {
		uint32_t draw = (uint32_t)(bench_random(&bench->seed) % 10);
		struct skuld_event *event = &events[count];
		event_key(connection, event);
		target_uniform(bench, event);
		event->quantity = 1;
		if (draw < 7) {
			event->kind = SKULD_SALE;
		} else if (draw < 9 || count + 2 > room) {
			event->kind = SKULD_RETURN;
			event->reason = SKULD_DISPOSITION_RESTOCK;
		} else {
			event->kind = SKULD_RETURN;
			event->reason = SKULD_DISPOSITION_RESTOCK;
			event->flags = SKULD_EVENT_LINKED;
			struct skuld_event *sale = &events[count + 1];
			event_key(connection, sale);
			sale->kind = SKULD_SALE;
			sale->location = event->location;
			uint32_t items =
			        bench->options.hot != 0 ? bench->options.hot : bench->options.items;
			sale->item = 1 + (uint32_t)(bench_random(&bench->seed) % items);
			sale->quantity = 1;
			count++;
		}
		count++;
	}
	return count;
}

static uint32_t fill_till_storm(struct bench *bench, struct bench_connection *connection,
                                struct skuld_event *events)
{
	return till_fill(bench, connection, events, bench->options.batch);
}

/* A push worker: acknowledges what its last query returned, or asks for
 * the next page of dirty items (returns 0: the request is the query). */
static uint32_t push_fill(struct bench *bench, struct bench_connection *connection,
                          struct skuld_event *events)
{
	connection->finishing = 0;
	uint32_t count = connection->push_count;
	if (count == 0) {
		memset(&connection->query, 0, sizeof(connection->query));
		connection->query.kind = SKULD_QUERY_PUSH;
		connection->query.channel = BENCH_CHANNEL;
		connection->query.after_item = connection->push_cursor;
		connection->query.limit = BENCH_PUSH_PULL_MAX;
		return 0;
	}
	memset(events, 0, sizeof(*events) * count);
	for (uint32_t i = 0; i < count; i++) {
		struct skuld_event *event = &events[i];
		event_key(connection, event);
		event->kind = SKULD_PUSH_ACK;
		event->channel = BENCH_CHANNEL;
		event->item = connection->push[i].item;
		event->id = connection->push[i].version;
		event->quantity = connection->push[i].quantity;
	}
	(void)bench;
	connection->push_count = 0;
	return count;
}

/* mixed: each connection plays its role (scenario_role). */
static uint32_t fill_mixed(struct bench *bench, struct bench_connection *connection,
                           struct skuld_event *events)
{
	switch (connection->role) {
	case BENCH_ROLE_PUSH:
		return push_fill(bench, connection, events);
	case BENCH_ROLE_GATEWAY:
		return fill_flash_sale(bench, connection, events);
	default:
		return till_fill(bench, connection, events, 1);
	}
}

void scenario_push_records(struct bench_connection *connection, const void *records, uint32_t count)
{
	const struct skuld_push_record *record = records;
	connection->push_count = 0;
	for (uint32_t i = 0; i < count && i < BENCH_PUSH_PULL_MAX; i++) {
		if (record[i].status != SKULD_OK || (record[i].flags & SKULD_QUERY_CURSOR) ||
		    record[i].version == 0)
			continue;
		struct bench_push_item *item = &connection->push[connection->push_count++];
		item->item = record[i].item;
		item->version = record[i].version;
		item->quantity = record[i].quantity < 0 ? 0 : record[i].quantity;
	}
	int more = count != 0 && (record[count - 1].flags & SKULD_QUERY_MORE);
	connection->push_cursor = more ? record[count - 1].item : 0;
}

uint8_t scenario_role(const struct bench *bench, uint32_t index)
{
	if (strcmp(bench->options.scenario->name, "mixed") != 0)
		return BENCH_ROLE_TILL;
	uint32_t connections = bench->options.connections;
	uint32_t push = connections / 8 ? connections / 8 : 1;
	uint32_t gateways = connections / 4 ? connections / 4 : 1;
	if (index < push)
		return BENCH_ROLE_PUSH;
	return index < push + gateways ? BENCH_ROLE_GATEWAY : BENCH_ROLE_TILL;
}

static const struct scenario scenarios[] = {
        {"steady", 4, 1000, 1000, 100, 0, 1000000000, fill_steady},
        {"flash-sale", 64, 2, 5, 1, 5, 2000, fill_flash_sale},
        {"uniform", 4, 1000, 10000, 100, 0, 1000, fill_replenished},
        {"zipf", 4, 1000, 10000, 100, 0, 1000, fill_replenished},
        {"till-storm", 512, 1, 500, 200, 0, 1000000, fill_till_storm},
        {"mixed", 64, 2, 1000, 20, 0, 100000, fill_mixed},
};

const struct scenario *scenario_find(const char *name)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strcmp(scenarios[i].name, name) == 0)
			return &scenarios[i];
	}
	return NULL;
}

const struct scenario *scenario_default(void)
{
	return &scenarios[0];
}

void scenario_names_print(FILE *file)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(file, "%s%s", i ? "|" : "", scenarios[i].name);
}

int scenario_prepare(struct bench *bench)
{
	const struct bench_options *options = &bench->options;
	if (strcmp(options->scenario->name, "zipf") != 0)
		return 0;
	uint64_t size = (uint64_t)options->items * options->locations;
	if (size > ZIPF_SIZE_MAX)
		return -1;
	bench->zipf_cdf = malloc(size * sizeof(double));
	if (bench->zipf_cdf == NULL)
		return -1;
	double sum = 0;
	for (uint64_t k = 0; k < size; k++) {
		sum += 1.0 / pow((double)(k + 1), options->skew);
		bench->zipf_cdf[k] = sum;
	}
	for (uint64_t k = 0; k < size; k++)
		bench->zipf_cdf[k] /= sum;
	bench->zipf_cdf[size - 1] = 1.0;
	bench->zipf_size = size;
	return 0;
}

void scenario_free(struct bench *bench)
{
	free(bench->zipf_cdf);
	bench->zipf_cdf = NULL;
}
