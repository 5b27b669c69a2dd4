/*
 * test_server_basic.c — the real skuld binary, over TCP: a catalog, stock
 * movements, queries, look-ups (by code and by item id, with the item's
 * scale and bundle flag) and figures; exactly-once across dropped
 * connections, restarts and new sessions; SIGTERM exits 0 and a restart
 * recovers everything acknowledged; a crash (SIGKILL) too.
 */
#include "server_harness.h"

static const char *config_small = "items_max = 64\nlocations_max = 8\nchannels_max = 4\n";

/* Defines items 1..items and locations 1..locations, receives `stock` of
 * every item everywhere. */
static void catalog_setup(struct client *client, uint32_t items, uint32_t locations, int64_t stock)
{
	struct skuld_event events[256];
	struct skuld_result results[256];
	uint32_t count = 0;
	for (uint32_t item = 1; item <= items; item++)
		events[count++] = event_item(item, 1000 + item);
	for (uint32_t location = 1; location <= locations; location++)
		events[count++] = event_location(location, 2000 + location);
	for (uint32_t item = 1; item <= items; item++)
		for (uint32_t location = 1; location <= locations; location++)
			events[count++] = event_stock(SKULD_RECEIVE, item, location, stock,
			                              100000 + item * 100 + location);
	cr_assert_leq(count, 256);
	cr_assert_eq(client_submit(client, events, count, results, NULL), 0);
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: %s", i,
		             skuld_status_name(results[i].status));
}

/* One LOOKUP on client's connection: copies the matches (room for max) and
 * returns how many the reply carries. */
static uint32_t lookup_send(struct client *client, const struct skuld_lookup *lookup,
                            struct skuld_lookup_match *matches, uint32_t max)
{
	static struct reply reply;
	cr_assert_eq(frame_send(client->fd, SKULD_OP_LOOKUP, client->id, 0, client->version, lookup,
	                        sizeof(*lookup), 1),
	             0);
	cr_assert_eq(frame_read(client->fd, &reply), 0);
	const struct skuld_header *header = reply_header(&reply);
	cr_assert_eq(header->operation, SKULD_OP_LOOKUP);
	cr_assert(header->count >= 1 && header->count <= max, "%u matches", header->count);
	memcpy(matches, reply_body(&reply), header->count * sizeof(matches[0]));
	return header->count;
}

static struct skuld_lookup lookup_code(uint16_t kind, const char *code)
{
	struct skuld_lookup lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = kind;
	snprintf(lookup.code, sizeof(lookup.code), "%s", code);
	return lookup;
}

static struct skuld_lookup lookup_id(uint32_t id)
{
	struct skuld_lookup lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = SKULD_LOOKUP_ITEM;
	lookup.id = id;
	return lookup;
}

/* Item 4 "HAM" (scale 3) and bundle 5 "KIT" sharing barcode "4001": LOOKUP
 * answers the scale and the bundle flag by SKU, by barcode and by id; a
 * malformed ITEM lookup is refused with ERR_QUERY (the connection ends). */
static void lookups_answer_scale_and_bundle(struct client *client)
{
	struct skuld_event events[4] = {
	        event_make(SKULD_ITEM_DEFINE, 8001, 1),
	        event_make(SKULD_ITEM_DEFINE, 8002, 1),
	        event_make(SKULD_BARCODE_DEFINE, 8003, 1),
	        event_make(SKULD_BARCODE_DEFINE, 8004, 1),
	};
	events[0].item = 4;
	events[0].scale = 3;
	snprintf(events[0].code, sizeof(events[0].code), "HAM");
	events[1].item = 5;
	events[1].flags = SKULD_EVENT_BUNDLE;
	snprintf(events[1].code, sizeof(events[1].code), "KIT");
	events[2].item = 4;
	events[2].quantity = 1000;
	snprintf(events[2].code, sizeof(events[2].code), "4001");
	events[3].item = 5;
	events[3].quantity = 1;
	snprintf(events[3].code, sizeof(events[3].code), "4001");
	struct skuld_result results[4];
	cr_assert_eq(client_submit(client, events, 4, results, NULL), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "%d: %s", i,
		             skuld_status_name(results[i].status));

	struct skuld_lookup_match m[4];
	struct skuld_lookup lookup = lookup_code(SKULD_LOOKUP_SKU, "HAM");
	cr_assert_eq(lookup_send(client, &lookup, m, 4), 1);
	cr_assert(m[0].id == 4 && m[0].status == SKULD_OK && m[0].scale == 3 && m[0].flags == 0);
	lookup = lookup_code(SKULD_LOOKUP_SKU, "KIT");
	cr_assert_eq(lookup_send(client, &lookup, m, 4), 1);
	cr_assert(m[0].id == 5 && m[0].scale == 0 && m[0].flags == SKULD_LOOKUP_BUNDLE);
	lookup = lookup_code(SKULD_LOOKUP_BARCODE, "4001");
	cr_assert_eq(lookup_send(client, &lookup, m, 4), 2);
	cr_assert(m[0].id == 4 && m[0].pack == 1000 && m[0].scale == 3 && m[0].flags == 0);
	cr_assert(m[1].id == 5 && m[1].pack == 1 && m[1].scale == 0 &&
	          m[1].flags == SKULD_LOOKUP_BUNDLE);
	lookup = lookup_id(4);
	cr_assert_eq(lookup_send(client, &lookup, m, 4), 1);
	cr_assert_eq(m[0].kind, SKULD_LOOKUP_ITEM);
	cr_assert(m[0].id == 4 && m[0].status == SKULD_OK && m[0].scale == 3 && m[0].flags == 0);
	cr_assert_eq(m[0].pack, 0);
	lookup = lookup_id(5);
	cr_assert_eq(lookup_send(client, &lookup, m, 4), 1);
	cr_assert(m[0].id == 5 && m[0].status == SKULD_OK && m[0].scale == 0 &&
	          m[0].flags == SKULD_LOOKUP_BUNDLE);
	lookup = lookup_id(1);
	cr_assert_eq(lookup_send(client, &lookup, m, 4), 1);
	cr_assert(m[0].id == 1 && m[0].status == SKULD_OK && m[0].scale == 0 && m[0].flags == 0);
	/* Undefined, and beyond items_max: unknown, nothing else said. */
	static const uint32_t unknown[] = {6, 64, 65, UINT32_MAX};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		lookup = lookup_id(unknown[i]);
		cr_assert_eq(lookup_send(client, &lookup, m, 4), 1);
		cr_assert(m[0].id == 0 && m[0].status == SKULD_ITEM_UNKNOWN && m[0].scale == 0 &&
		                  m[0].flags == 0,
		          "item %u", unknown[i]);
	}

	/* An ITEM lookup that also carries a code is malformed. */
	lookup = lookup_id(4);
	snprintf(lookup.code, sizeof(lookup.code), "HAM");
	static struct reply reply;
	cr_assert_eq(frame_send(client->fd, SKULD_OP_LOOKUP, client->id, 0, client->version,
	                        &lookup, sizeof(lookup), 1),
	             0);
	cr_assert_eq(frame_read(client->fd, &reply), 0);
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_ERROR);
	cr_assert_eq(reply_header(&reply)->result, SKULD_ERR_QUERY);
}

Test(server_basic, movements_queries_lookups_stats)
{
	struct server server;
	server_init(&server, config_small);
	server_start(&server);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(1)), 0);
	cr_assert_eq(client.request_next, 1);
	catalog_setup(&client, 3, 2, 10);

	struct skuld_event events[3] = {
	        event_stock(SKULD_SALE, 1, 1, 4, 7001),
	        event_stock(SKULD_RESERVE, 2, 1, 3, 7002),
	        event_stock(SKULD_MOVE, 3, 2, 2, 7003),
	};
	events[1].id = 55;
	events[1].ttl_s = 600;
	events[2].bucket_to = SKULD_BUCKET_DAMAGED;
	struct skuld_result results[3];
	cr_assert_eq(client_submit(&client, events, 3, results, NULL), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "%d: %s", i,
		             skuld_status_name(results[i].status));
	cr_assert_eq(results[0].available, 6);

	struct skuld_level_record level = client_level(&client, 1, 1);
	cr_assert_eq(level.status, SKULD_OK);
	cr_assert_eq(level.on_hand, 6);
	level = client_level(&client, 2, 1);
	cr_assert_eq(level.reserved, 3);
	cr_assert_eq(level.available, 7);
	level = client_level(&client, 3, 2);
	cr_assert_eq(level.unsellable, 2);
	cr_assert_eq(level.available, 8);
	level = client_level(&client, 9, 1);
	cr_assert_eq(level.status, SKULD_ITEM_UNKNOWN);

	/* ITEM_LEVELS and LOCATION_LEVELS, paged one record at a time. */
	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_LOCATION_LEVELS;
	query.location = 1;
	query.limit = 1;
	struct skuld_level_record records[8];
	uint32_t seen = 0;
	for (int page = 0; page < 10; page++) {
		int count = client_query(&client, &query, records, 8);
		cr_assert_geq(count, 0);
		if (count == 0)
			break;
		seen += (uint32_t)count;
		cr_assert_eq(records[0].item, seen);
		if (!(records[count - 1].flags & SKULD_QUERY_MORE))
			break;
		query.after_item = records[count - 1].item;
	}
	cr_assert_eq(seen, 3);
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_ITEM_LEVELS;
	query.item = 3;
	cr_assert_eq(client_query(&client, &query, records, 8), 2);
	cr_assert_eq(records[1].location, 2);
	cr_assert_eq(records[1].unsellable, 2);

	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_HOLD;
	query.hold = 55;
	cr_assert_eq(client_query(&client, &query, records, 8), 1);
	const struct skuld_hold_record *hold = (const struct skuld_hold_record *)&records[0];
	cr_assert_eq(hold->status, SKULD_OK);
	cr_assert_eq(hold->remaining, 3);
	cr_assert_eq(hold->state, SKULD_HOLD_STATE_OPEN);

	/* LOOKUP of a SKU and a location code. */
	struct skuld_lookup lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = SKULD_LOOKUP_LOCATION;
	snprintf(lookup.code, sizeof(lookup.code), "STORE-2");
	static struct reply reply;
	cr_assert_eq(
	        frame_send(client.fd, SKULD_OP_LOOKUP, client.id, 0, 1, &lookup, sizeof(lookup), 1),
	        0);
	cr_assert_eq(frame_read(client.fd, &reply), 0);
	const struct skuld_lookup_match *match = reply_body(&reply);
	cr_assert_eq(match->status, SKULD_OK);
	cr_assert_eq(match->id, 2);
	lookup.kind = SKULD_LOOKUP_SKU;
	memset(lookup.code, 0, sizeof(lookup.code));
	snprintf(lookup.code, sizeof(lookup.code), "SKU-3");
	cr_assert_eq(
	        frame_send(client.fd, SKULD_OP_LOOKUP, client.id, 0, 1, &lookup, sizeof(lookup), 1),
	        0);
	cr_assert_eq(frame_read(client.fd, &reply), 0);
	cr_assert_eq(match->id, 3);

	struct skuld_stats stats;
	cr_assert_eq(client_stats(&client, &stats), 0);
	cr_assert_eq(stats.requests, 2);
	cr_assert_eq(stats.connections_open, 1);
	cr_assert_geq(stats.log_writes, 1);
	cr_assert_eq(stats.event_durable, 3 + 2 + 6 + 3);
	cr_assert_gt(stats.memory_bytes, 0);
	cr_assert_gt(stats.disk_free_bytes, 0, "sampled at start-up");
	/* The STATS request's count is the records the client takes: 0 (a
	 * client from before record 1) gets exactly one 256-byte record. */
	static const uint32_t asked[] = {0, 1, 2, 3, 4, 1000};
	static const uint32_t given[] = {1, 1, 2, 3, 3, 3};
	for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
		cr_assert_eq(
		        frame_send(client.fd, SKULD_OP_STATS, client.id, 0, 1, NULL, 0, asked[i]),
		        0);
		cr_assert_eq(frame_read(client.fd, &reply), 0);
		const struct skuld_header *header = reply_header(&reply);
		cr_assert_eq(header->operation, SKULD_OP_STATS);
		cr_assert_eq(header->count, given[i], "count %u asked", asked[i]);
		cr_assert_eq(header->body_size, given[i] * SKULD_STATS_RECORD_SIZE,
		             "count %u asked", asked[i]);
		const struct skuld_stats *record = reply_body(&reply);
		cr_assert_eq(record->requests, 2);
	}

	lookups_answer_scale_and_bundle(&client);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}

/* The on_hand of item 1 at location 1 as a fresh client sees it. */
static int64_t on_hand_now(struct server *server)
{
	struct client reader;
	cr_assert_eq(client_open(&reader, server->port, client_id(999)), 0);
	int64_t on_hand = client_level(&reader, 1, 1).on_hand;
	client_close(&reader);
	return on_hand;
}

Test(server_basic, exactly_once_across_drops_restarts_and_sessions)
{
	struct server server;
	server_init(&server, config_small);
	server_start(&server);
	struct client client;
	skuld_u128 till = client_id(7);
	cr_assert_eq(client_open(&client, server.port, till), 0);
	catalog_setup(&client, 1, 1, 100);
	cr_assert_eq(on_hand_now(&server), 100);

	/* 1. Send a sale, drop the connection before reading the reply,
	 * reconnect, retry the same request: applied once. */
	struct skuld_event sale = event_stock(SKULD_SALE, 1, 1, 5, 9001);
	uint64_t request = client.request_next;
	cr_assert_eq(client_submit_send(&client, request, &sale, 1), 0);
	client_close(&client);
	cr_assert_eq(client_open(&client, server.port, till), 0);
	/* The sale may or may not have been applied before the drop was seen;
	 * request_next says which, and a retry is safe either way. */
	cr_assert(client.request_next == request || client.request_next == request + 1);
	struct skuld_result result;
	client.request_next = request;
	cr_assert_eq(client_submit(&client, &sale, 1, &result, NULL), 0);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(on_hand_now(&server), 95);
	/* And once more: the saved reply again, nothing applied. */
	client.request_next = request;
	cr_assert_eq(client_submit(&client, &sale, 1, &result, NULL), 0);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(on_hand_now(&server), 95);

	/* 2. Send, restart the server before reading, retry: once. */
	struct skuld_event second = event_stock(SKULD_SALE, 1, 1, 7, 9002);
	request = client.request_next;
	cr_assert_eq(client_submit_send(&client, request, &second, 1), 0);
	usleep(100000);
	cr_assert_eq(server_stop(&server), 0);
	client_close(&client);
	server_start(&server);
	cr_assert_eq(client_open(&client, server.port, till), 0);
	cr_assert(client.request_next == request || client.request_next == request + 1);
	client.request_next = request;
	cr_assert_eq(client_submit(&client, &second, 1, &result, NULL), 0);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(on_hand_now(&server), 88);

	/* 3. The same idempotency key from a new session (a re-imaged till
	 * with a new client id): the original result, flagged REPLAYED. */
	struct client other;
	cr_assert_eq(client_open(&other, server.port, client_id(8)), 0);
	cr_assert_eq(other.request_next, 1);
	cr_assert_eq(client_submit(&other, &second, 1, &result, NULL), 0);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert(result.flags & SKULD_RESULT_REPLAYED);
	cr_assert_eq(on_hand_now(&server), 88);

	/* 4. A crash (SIGKILL) after acknowledged requests loses none. */
	struct skuld_event third = event_stock(SKULD_SALE, 1, 1, 1, 9003);
	cr_assert_eq(client_submit(&other, &third, 1, &result, NULL), 0);
	server_kill(&server);
	client_close(&client);
	client_close(&other);
	server_start(&server);
	cr_assert_eq(on_hand_now(&server), 87);
	cr_assert_eq(client_open(&other, server.port, client_id(8)), 0);
	cr_assert_eq(other.request_next, 3);
	client_close(&other);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}

Test(server_basic, sigterm_exits_zero_and_restart_recovers)
{
	struct server server;
	server_init(&server, config_small);
	server_start(&server);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(3)), 0);
	catalog_setup(&client, 4, 2, 50);
	struct skuld_result results[64];
	struct skuld_event events[64];
	for (uint32_t round = 0; round < 20; round++) {
		for (uint32_t i = 0; i < 4; i++)
			events[i] = event_stock(SKULD_SALE, i + 1, 1 + round % 2, 1,
			                        50000 + round * 10 + i);
		cr_assert_eq(client_submit(&client, events, 4, results, NULL), 0);
	}
	/* Pipelined requests still in flight when SIGTERM comes: whatever the
	 * server acknowledges must be there after the restart. */
	uint64_t first = client.request_next;
	for (uint32_t i = 0; i < 5; i++) {
		events[0] = event_stock(SKULD_RECEIVE, 1, 1, 1, 60000 + i);
		cr_assert_eq(client_submit_send(&client, first + i, events, 1), 0);
	}
	cr_assert_eq(server_stop(&server), 0);
	static struct reply reply;
	uint32_t acknowledged = 0;
	while (acknowledged < 5 && frame_read(client.fd, &reply) == 0 &&
	       reply_header(&reply)->operation == SKULD_OP_SUBMIT)
		acknowledged++;
	client_close(&client);
	server_start(&server);
	cr_assert_eq(client_open(&client, server.port, client_id(3)), 0);
	cr_assert_geq(client.request_next, first + acknowledged);
	struct skuld_level_record level = client_level(&client, 1, 1);
	/* 50 received, 10 sold at location 1 (even rounds), then receipts. */
	cr_assert_eq(level.on_hand, 40 + (int64_t)(client.request_next - first));
	cr_assert_geq(level.on_hand, 40 + (int64_t)acknowledged);
	level = client_level(&client, 4, 2);
	cr_assert_eq(level.on_hand, 40);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}

/* An alarm level above the disk's free space raises the low-disk alarm in
 * STATS at start-up (the server logs it once and goes on serving). */
Test(server_basic, disk_alarm_shows_in_stats, .timeout = 60)
{
	struct server server;
	server_init(&server, "disk_alarm_bytes = 1000000g\ndisk_alarm_hours = 0\n");
	server_start(&server);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(77)), 0);
	struct skuld_stats stats;
	cr_assert_eq(client_stats(&client, &stats), 0);
	cr_assert_eq(stats.disk_alarm, 1u);
	cr_assert_gt(stats.disk_free_bytes, 0);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}
