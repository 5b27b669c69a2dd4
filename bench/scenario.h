/*
 * scenario.h — skuld-bench's workloads. A scenario is one row of a table:
 * the catalog and load it defaults to, and its op chooser, which fills each
 * request's events. Nothing else in skuld-bench branches on the scenario:
 * accounting (bench_net.c) and the check (bench_check.c) follow the kinds
 * of the events the chooser wrote.
 *
 *   steady      the classic closed loop (the default): reserve B/2, commit
 *               3 in 4 and release 1 in 4 of the previous request's holds,
 *               uniform over items x locations or over H hot items
 *   flash-sale  H hot items (default 5) at location 1 with 2,000 units each;
 *               checkouts reserve, then commit 5 in 6 and release 1 in 6;
 *               1 reserve in 7 is abandoned (a 1 s hold left to expire)
 *   uniform     the steady mix plus 1 RECEIVE in 8 events (stock
 *               replenished), uniform over 10,000 items x 100 locations
 *   zipf        as uniform, item-locations drawn by rank with P(rank k)
 *               proportional to 1 / k^S (--skew S, default 1.0); ranks are
 *               scattered over the catalog by a fixed permutation
 *   till-storm  tills: each request is one sale (7 in 10), one restocking
 *               return (2 in 10) or one exchange (1 in 10: RETURN + SALE at
 *               the same location, LINKED, all or nothing), 500 items x 200
 *               locations, 512 connections
 *   mixed       tills, gateways and push workers at once over 1,000 items x
 *               20 locations, 100,000 units each, a channel WEB whose pool
 *               holds every location and which lists every item: of N
 *               connections, N/8 (at least 1) are push workers, N/4 (at
 *               least 1) gateways, the rest tills. A till sends one
 *               till-storm transaction per request; a gateway a flash-sale
 *               request against the pool; a push worker pages through the
 *               channel's dirty items (QUERY PUSH, 64 at a time, its own
 *               cursor), acknowledges each with PUSH_ACK at the version and
 *               quantity offered, as skuld-push does once the channel took
 *               it, then waits 10 ms (the channel's API call, not made), or
 *               20 ms when nothing was dirty. Closed loop only
 *
 * With --pool NAME, every RESERVE of steady, flash-sale, uniform and zipf
 * goes against channel BENCH_CHANNEL's pool (location 0) and the ledger
 * picks the location; the setup defines the channel with every bench
 * location in its pool, and flash-sale's hot items are stocked at each.
 *
 * Invariant: a chooser writes finishing events (COMMIT, RELEASE of
 * connection->holds[0..finishing)) first, then anything else, at most
 * bench_request_events_max() events.
 */
#ifndef SKULD_BENCH_SCENARIO_H
#define SKULD_BENCH_SCENARIO_H

#include <stdint.h>
#include <stdio.h>

#include "protocol.h"

struct bench;
struct bench_connection;

/* A RESERVE with this ttl is abandoned: never finished, left to expire. */
#define SCENARIO_TTL_ABANDON_S 1u
#define SCENARIO_TTL_HOLD_S    600u

struct scenario {
	const char *name;
	/* Defaults, for the options the command line does not set. */
	uint32_t connections;
	uint32_t batch;
	uint32_t items;
	uint32_t locations;
	uint32_t hot; /* 0: uniform or zipf over items x locations */
	long stock;
	/* Fills events; returns their count (1..bench_request_events_max), or
	 * 0 when this request is the QUERY the chooser put in
	 * connection->query. */
	uint32_t (*fill)(struct bench *bench, struct bench_connection *connection,
	                 struct skuld_event *events);
};

/* The scenario called name, or NULL. */
const struct scenario *scenario_find(const char *name);
/* The default scenario (steady). */
const struct scenario *scenario_default(void);
/* Writes the names, separated by '|', to file. */
void scenario_names_print(FILE *file);

/* The role of connection index (mixed), else BENCH_ROLE_TILL. */
uint8_t scenario_role(const struct bench *bench, uint32_t index);
/* mixed: takes the records of a QUERY PUSH reply for the next request. */
void scenario_push_records(struct bench_connection *connection, const void *records,
                           uint32_t count);

/* Builds what the scenario needs before the run (zipf's table); 0 or -1. */
int scenario_prepare(struct bench *bench);
void scenario_free(struct bench *bench);

#endif
