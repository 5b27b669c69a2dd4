/*
 * peer_skuld.c — compare's skuld target, through libskuld: one client (one
 * connection, one request in flight) per thread, so nothing is merged
 * across threads. A reserve is a RESERVE event with a 300 s hold at
 * location 1, a commit a COMMIT of the whole hold, a release a RELEASE;
 * each is one SUBMIT of one event and is answered after the group commit
 * that holds it is fdatasynced. A till transaction (till-storm) is one
 * SUBMIT of a SALE, of a RETURN restocked, or of both LINKED (an exchange,
 * all or nothing), at location 1.
 */
#include "compare.h"

#include <skuld/skuld.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_SKULD_TIMEOUT_MS 10000u
#define PEER_SKULD_BATCH      1000u

struct peer_skuld {
	skuld_client *client;
	uint64_t key_next;
	skuld_u128 client_id;
};

static void *skuld_open(const char *address, const char *option)
{
	(void)option;
	struct peer_skuld *peer = calloc(1, sizeof(*peer));
	if (peer == NULL)
		return NULL;
	struct skuld_options options;
	skuld_options_init(&options);
	options.address = address;
	options.client_name = "skuld-bench-compare";
	options.timeout_ms = PEER_SKULD_TIMEOUT_MS;
	if (skuld_client_id_generate(&peer->client_id) != 0 ||
	    (options.client_id = peer->client_id,
	     skuld_client_create(&peer->client, &options) != 0)) {
		free(peer);
		return NULL;
	}
	if (skuld_client_connect(peer->client, PEER_SKULD_TIMEOUT_MS) != 0) {
		skuld_client_close(peer->client);
		free(peer);
		return NULL;
	}
	return peer;
}

static void skuld_close(void *connection)
{
	struct peer_skuld *peer = connection;
	skuld_client_close(peer->client);
	free(peer);
}

/* A key unique to this connection: its client id and a counter. */
static skuld_u128 skuld_next_key(struct peer_skuld *peer)
{
	skuld_u128 key = peer->client_id;
	key.lo ^= ++peer->key_next;
	key.hi ^= 0x636d70; /* never the client id itself */
	return key;
}

static int skuld_submit_checked(struct peer_skuld *peer, struct skuld_event *events, uint32_t count,
                                struct skuld_result *results)
{
	if (count == 0)
		return 0;
	int status =
	        skuld_submit(peer->client, events, count, results, NULL, PEER_SKULD_TIMEOUT_MS);
	if (status != 0) {
		fprintf(stderr, "skuld-bench compare: skuld: %s\n", skuld_strerror(status));
		return -1;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (results[i].status != SKULD_OK && results[i].status != SKULD_ITEM_EXISTS &&
		    results[i].status != SKULD_LOCATION_EXISTS) {
			fprintf(stderr, "skuld-bench compare: skuld load: %s\n",
			        skuld_status_name(results[i].status));
			return -1;
		}
	}
	return 0;
}

static int skuld_load(void *connection, const struct compare_workload *workload)
{
	struct peer_skuld *peer = connection;
	struct skuld_event *events = calloc(PEER_SKULD_BATCH, sizeof(*events));
	struct skuld_result *results = calloc(PEER_SKULD_BATCH, sizeof(*results));
	int status = events != NULL && results != NULL ? 0 : -1;
	uint32_t count = 0;
	if (status == 0 &&
	    skuld_event_location_define(&events[count++], skuld_next_key(peer), 1, "STORE-1") != 0)
		status = -1;
	for (uint32_t item = 1; status == 0 && item <= workload->items; item++) {
		char sku[32];
		snprintf(sku, sizeof(sku), "SKU-%u", item);
		if (count == PEER_SKULD_BATCH) {
			status = skuld_submit_checked(peer, events, count, results);
			count = 0;
		}
		if (skuld_event_item_define(&events[count++], skuld_next_key(peer), item, sku, 0) !=
		    0)
			status = -1;
	}
	for (uint32_t item = 1; status == 0 && item <= workload->items; item++) {
		if (count == PEER_SKULD_BATCH) {
			status = skuld_submit_checked(peer, events, count, results);
			count = 0;
		}
		skuld_event_receive(&events[count++], skuld_next_key(peer), item, 1,
		                    workload->stock);
	}
	if (status == 0)
		status = skuld_submit_checked(peer, events, count, results);
	free(events);
	free(results);
	return status;
}

/* One event: its status, or -1. */
static int skuld_one(struct peer_skuld *peer, struct skuld_event *event)
{
	struct skuld_result result;
	int status = skuld_submit(peer->client, event, 1, &result, NULL, PEER_SKULD_TIMEOUT_MS);
	if (status != 0) {
		fprintf(stderr, "skuld-bench compare: skuld: %s\n", skuld_strerror(status));
		return -1;
	}
	return result.status;
}

static int skuld_reserve(void *connection, uint64_t hold, uint32_t item, long quantity)
{
	struct peer_skuld *peer = connection;
	struct skuld_event event;
	skuld_event_reserve(&event, skuld_next_key(peer), hold, item, 1, quantity, 300);
	int status = skuld_one(peer, &event);
	if (status == SKULD_OK)
		return 1;
	if (status == SKULD_INSUFFICIENT)
		return 0;
	if (status > 0)
		fprintf(stderr, "skuld-bench compare: skuld reserve: %s\n",
		        skuld_status_name(status));
	return -1;
}

static int skuld_finish(struct peer_skuld *peer, struct skuld_event *event)
{
	int status = skuld_one(peer, event);
	if (status == SKULD_OK)
		return 1;
	if (status > 0)
		fprintf(stderr, "skuld-bench compare: skuld %s: %s\n",
		        skuld_event_kind_name(event->kind), skuld_status_name(status));
	return -1;
}

static int skuld_commit(void *connection, uint64_t hold)
{
	struct peer_skuld *peer = connection;
	struct skuld_event event;
	skuld_event_commit(&event, skuld_next_key(peer), hold, 0);
	return skuld_finish(peer, &event);
}

static int skuld_release(void *connection, uint64_t hold)
{
	struct peer_skuld *peer = connection;
	struct skuld_event event;
	skuld_event_release(&event, skuld_next_key(peer), hold);
	return skuld_finish(peer, &event);
}

static int skuld_till(void *connection, enum compare_till_kind kind, uint32_t return_item,
                      uint32_t sale_item)
{
	struct peer_skuld *peer = connection;
	struct skuld_event events[2];
	struct skuld_result results[2];
	uint32_t count = 0;
	if (kind != COMPARE_SALE)
		skuld_event_return(&events[count++], skuld_next_key(peer), return_item, 1, 1,
		                   SKULD_DISPOSITION_RESTOCK);
	if (kind != COMPARE_RETURN)
		skuld_event_sale(&events[count++], skuld_next_key(peer), sale_item, 1, 1);
	skuld_events_link(events, count);
	int status =
	        skuld_submit(peer->client, events, count, results, NULL, PEER_SKULD_TIMEOUT_MS);
	if (status != 0) {
		fprintf(stderr, "skuld-bench compare: skuld: %s\n", skuld_strerror(status));
		return -1;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (results[i].status != SKULD_OK) {
			fprintf(stderr, "skuld-bench compare: skuld %s: %s\n",
			        skuld_event_kind_name(events[i].kind),
			        skuld_status_name(results[i].status));
			return -1;
		}
	}
	return 1;
}

static int skuld_totals(void *connection, const struct compare_workload *workload, int64_t *sold,
                        int64_t *available)
{
	struct peer_skuld *peer = connection;
	*sold = 0;
	*available = 0;
	for (uint32_t item = 1; item <= workload->items; item++) {
		struct skuld_level_record level;
		if (skuld_query_level(peer->client, item, 1, &level, PEER_SKULD_TIMEOUT_MS) != 0 ||
		    level.status != SKULD_OK)
			return -1;
		if (level.available < 0 || level.reserved != 0)
			return -1;
		/* Holds commit into committed; till sales take on_hand itself. */
		*sold += workload->scenario == COMPARE_TILL_STORM ? workload->stock - level.on_hand
		                                                  : level.committed;
		*available += level.available;
	}
	return 0;
}

const struct peer_ops peer_skuld_ops = {
        .kind = "skuld",
        .open = skuld_open,
        .close = skuld_close,
        .load = skuld_load,
        .reserve = skuld_reserve,
        .commit = skuld_commit,
        .release = skuld_release,
        .till = skuld_till,
        .totals = skuld_totals,
};
