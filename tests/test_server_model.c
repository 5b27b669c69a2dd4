/*
 * test_server_model.c — the randomized model test of the ledger state
 * machine, run again through the real server: the generator and reference
 * model of tests/ledger_model.c drive skuld over TCP, and every result the
 * server produced is compared with the model.
 *
 * What runs: EPOCHS servers one after the other, each on 127.0.0.1 port 0
 * in its own mkdtemp directory from an empty log (a fresh ledger, as the
 * in-process test's epochs: locations only ever close, so one long run
 * would end up refusing most sales), with the model's ledger capacities in
 * the config file (ledger_model.h, built with LEDGER_MODEL_REALTIME) and
 * 2 MiB segments, so the log rolls over to new segments. CLIENTS sessions,
 * one connection each, pipeline up to DEPTH SUBMITs each; the generator's
 * batches (1..64 events: every kind, bundles, linked chains failing midway,
 * too long or left open, repeated keys with the same and a changed body) go
 * to them in turn, paced at about RATE_EVENTS_PER_S, so group commit merges
 * requests of several connections and the server's hold expiry runs in
 * between. Now and then the run pauses 1.1..2.5 s after placing a few 1 s
 * holds, so that holds expire (at a thousand events a second the
 * generator's own holds are committed or released long before their TTL)
 * and keys are forgotten with no traffic. At least EVENTS_MIN client events
 * go through the servers.
 *
 * Time, the hard part: the server stamps every batch with its own clock and
 * writes its own EXPIRE batches whenever holds fall due, and with several
 * connections the order in which batches are applied is the server's too.
 * So the comparison is not made while sending. The log records all three
 * (each record's timestamp, the apply order, the server's EXPIRE records),
 * and after each epoch the test reads it back with log_reader and replays
 * the model record by record with the logged timestamps and sources. It
 * checks:
 *   - every logged result equals the model's (every field of every result);
 *   - every result a client received equals the logged result of its
 *     request, byte for byte;
 *   - every request sent is in the log exactly once, with the events sent,
 *     and a request that was acknowledged before a restart was kept;
 *   - the server's records are EXPIRE batches only, timestamps never go
 *     backwards;
 *   - at the end (holds released, so the server writes nothing more) every
 *     counter of every (item, location), every hold, every channel quantity
 *     and the SKU, barcode, location and channel look-ups answered by QUERY
 *     and LOOKUP equal the model, and equal again after a SIGTERM + restart
 *     (recovery preserved everything).
 * So the hold TTLs (1..60 s), the 2 s key window and the 10 s closed-hold
 * grace all act in real time, with no restriction on what is generated.
 * What the test does not check: results against the exact send-time state
 * (the logged time and order are the truth, not the client's). While
 * sending, the generator steers by a second model (the "guide") that
 * applies each batch at the client's clock in send order and expires holds
 * as the server would: it only picks plausible ids and is never compared.
 *
 * Mid-run, with requests in flight on every connection, the server gets
 * SIGTERM (it must exit 0): client 0 has dropped its connection before
 * reading its replies, the others send once more right after the signal.
 * The server is restarted on the same directory and every client
 * reconnects: REGISTER's request_next must cover every acknowledged
 * request; the last applied request, if unacknowledged, is retried with its
 * number (the saved reply, read back from the log after the restart); the
 * rest is sent again with the same numbers. The replay then checks that the
 * batches after the restart continue from exactly the recovered state.
 *
 * Not through the server: events the protocol codec rejects as a frame
 * (unknown kinds, a field the kind does not use, out-of-range reason, bucket
 * or scale, empty codes) would close the connection with an ERROR frame
 * (tests/test_server_input.c covers that); the generator makes a few per
 * cent of those, and they are dropped from the batch before it is sent
 * (counted in the report). Empty batches are not sent.
 *
 * SKULD_MODEL_SEED changes the generator's seed (the server's timing makes
 * a run unrepeatable anyway); SKULD_MODEL_VERBOSE=1 prints every count of
 * the replay.
 */
#include "server_harness.h"

#include <inttypes.h>

#include "ledger_model.h"
#include "log.h"

#define EPOCHS            3     /* servers, each from an empty log */
#define CLIENTS           4     /* sessions, one connection each */
#define DEPTH             4     /* SUBMITs in flight per connection */
#define EVENTS_MIN        20000 /* client events through the server, at least */
#define EVENTS_TARGET     22500 /* what the run aims for, over all epochs */
#define RATE_EVENTS_PER_S 1200  /* pacing, so that time acts between events */
#define PAUSE_PERCENT     4     /* batches followed by a pause */
#define PAUSE_BUDGET_MS   14000 /* all pauses together, at most */
#define EXPIRE_BURST      10    /* short holds placed before a pause, at most */
#define RUN_DEADLINE_MS   50000 /* sending, over all epochs, at most */
#define BATCHES_MAX       2048  /* requests per epoch */
#define QUERY_CLIENT      900   /* client_id() of the snapshot reader */
#define SEED_DEFAULT      0x5eed0f5c01dull

/* One SUBMIT as sent, and what came back. */
struct sent {
	uint32_t peer;
	uint32_t count;
	uint64_t request;
	bool acknowledged; /* a reply was read */
	bool logged;       /* found in the log by the replay */
	struct skuld_event events[CFG_BATCH];
	struct skuld_result results[CFG_BATCH]; /* as received */
};

struct peer {
	struct client client;
	uint64_t request_next;  /* the next number this client sends */
	uint32_t flight[DEPTH]; /* sent indexes awaiting a reply, oldest first */
	uint32_t flight_count;
	uint32_t by_request[BATCHES_MAX]; /* request number -> sent index + 1 */
};

struct drive {
	struct server server;
	struct run_options options;
	struct run run; /* the generator, steering by the guide model */
	struct model *guide;
	struct peer peers[CLIENTS];
	struct sent *sent; /* this epoch's requests */
	uint32_t sent_count;
	uint64_t events_sent; /* over all epochs */
	uint64_t requests_sent;
	uint64_t events_dropped; /* refused by the codec: not sent */
	uint64_t pause_ms;
	uint64_t start_ms;
	uint64_t pacing_rng;
	struct log_reader *reader; /* the replay's, closed by the fini too */
	/* The mid-run restarts. */
	uint32_t restart_in_flight;
	uint32_t restart_acknowledged;
	uint32_t restart_retried;
	uint32_t restart_resent;
};

static struct drive drive;
static struct reply frame;

static void peers_close(void)
{
	for (uint32_t i = 0; i < CLIENTS; i++)
		client_close(&drive.peers[i].client);
}

/* Criterion's fini: runs however the test ended. */
static void drive_cleanup(void)
{
	peers_close();
	if (drive.server.dir[0] != '\0')
		server_fini(&drive.server);
	if (drive.reader != NULL)
		log_reader_close(drive.reader);
	free(drive.sent);
	free(drive.guide);
	memset(&drive, 0, sizeof(drive));
}

static uint64_t realtime_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * NS_PER_S + (uint64_t)now.tv_nsec;
}

/* ---- The server's configuration: the model's capacities --------------------- */

static void config_write(char *text, size_t size)
{
	struct ledger_config ledger;
	model_config(&ledger);
	/* Whole seconds, or the file could not say it. */
	cr_assert_eq(ledger.closed_hold_grace_ns % NS_PER_S, 0);
	cr_assert_eq(ledger.key_window_ns % NS_PER_S, 0);
	snprintf(text, size,
	         "connections_max = 16\nsessions_max = 64\nframe_events_max = %u\n"
	         "expire_batch = %u\nsegment_bytes = 2m\nwrite_bytes = 256k\n"
	         "items_max = %u\nlocations_max = %u\nchannels_max = %u\nstock_max = %u\n"
	         "codes_max = %u\nbarcodes_max = %u\nattributes_max = %u\nbundles_max = %u\n"
	         "bundle_components_max = %u\npool_locations_max = %u\n"
	         "channel_buffers_max = %u\nholds_max = %u\nclosed_holds_max = %u\n"
	         "closed_hold_grace_s = %" PRIu64 "\nttl_max_s = %u\ncounts_max = %u\n"
	         "transfers_max = %u\nkeys_max = %u\nkey_window_s = %" PRIu64 "\n"
	         "chain_events_max = %u\ndiscrepancies_max = %u\n",
	         ledger.batch_events_max, ledger.batch_events_max, ledger.items_max,
	         ledger.locations_max, ledger.channels_max, ledger.stock_max, ledger.codes_max,
	         ledger.barcodes_max, ledger.attributes_max, ledger.bundles_max,
	         ledger.bundle_components_max, ledger.pool_locations_max,
	         ledger.channel_buffers_max, ledger.holds_max, ledger.closed_holds_max,
	         (uint64_t)(ledger.closed_hold_grace_ns / NS_PER_S), ledger.ttl_max_s,
	         ledger.counts_max, ledger.transfers_max, ledger.keys_max,
	         (uint64_t)(ledger.key_window_ns / NS_PER_S), ledger.chain_events_max,
	         ledger.discrepancies_max);
}

/* ---- Sending and receiving ---------------------------------------------------- */

static void peer_open(uint32_t index)
{
	struct peer *peer = &drive.peers[index];
	cr_assert_eq(client_open(&peer->client, drive.server.port, client_id(500 + index)), 0,
	             "client %u cannot register", index);
}

/* Sends a request; it is in flight even when the send fails, which is
 * allowed only while the server is stopping (allow_fail). */
static void submit_send(uint32_t index, bool allow_fail)
{
	const struct sent *sent = &drive.sent[index];
	struct peer *peer = &drive.peers[sent->peer];
	cr_assert_lt(peer->flight_count, DEPTH);
	int ret = client_submit_send(&peer->client, sent->request, sent->events, sent->count);
	cr_assert(ret == 0 || allow_fail, "client %u: send of request %" PRIu64 " failed",
	          sent->peer, sent->request);
	peer->flight[peer->flight_count++] = index;
}

/* Reads one frame: the reply to the peer's oldest request in flight.
 * Returns 0, or -1 when the connection ended (only expected around a
 * SIGTERM: allow_end). */
static int reply_read(uint32_t peer_index, bool allow_end)
{
	struct peer *peer = &drive.peers[peer_index];
	if (frame_read(peer->client.fd, &frame) != 0) {
		cr_assert(allow_end, "client %u: connection lost with %u requests in flight",
		          peer_index, peer->flight_count);
		return -1;
	}
	const struct skuld_header *header = reply_header(&frame);
	if (header->operation == SKULD_OP_ERROR) {
		const struct skuld_error_body *error = reply_body(&frame);
		cr_assert_fail("client %u: ERROR frame %s: %.56s", peer_index,
		               skuld_status_name(header->result), error->message);
	}
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT);
	cr_assert_gt(peer->flight_count, 0, "client %u: a reply with nothing in flight",
	             peer_index);
	struct sent *sent = &drive.sent[peer->flight[0]];
	cr_assert_eq(header->request, sent->request,
	             "client %u: reply to %" PRIu64 " while %" PRIu64 " is the oldest in flight",
	             peer_index, header->request, sent->request);
	cr_assert_eq(header->count, sent->count);
	memcpy(sent->results, reply_body(&frame), (size_t)sent->count * SKULD_RESULT_SIZE);
	sent->acknowledged = true;
	peer->flight_count--;
	memmove(peer->flight, peer->flight + 1, peer->flight_count * sizeof(peer->flight[0]));
	return 0;
}

/* Reads every reply that arrives within timeout_ms. */
static void replies_pump(int timeout_ms)
{
	struct pollfd polls[CLIENTS];
	for (uint32_t i = 0; i < CLIENTS; i++)
		polls[i] = (struct pollfd){.fd = drive.peers[i].client.fd, .events = POLLIN};
	if (poll(polls, CLIENTS, timeout_ms) <= 0)
		return;
	for (uint32_t i = 0; i < CLIENTS; i++) {
		if (polls[i].revents != 0)
			reply_read(i, false);
	}
}

static uint32_t flight_total(void)
{
	uint32_t total = 0;
	for (uint32_t i = 0; i < CLIENTS; i++)
		total += drive.peers[i].flight_count;
	return total;
}

static void replies_drain(void)
{
	uint64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_S * 1000;
	while (flight_total() > 0) {
		cr_assert_lt(harness_now_ms(), deadline, "replies did not come back in %d s",
		             HARNESS_TIMEOUT_S);
		replies_pump(100);
	}
}

/* A new request of peer with these events; returns its sent index. */
static uint32_t sent_add(uint32_t peer_index, const struct skuld_event *events, uint32_t count)
{
	cr_assert_lt(drive.sent_count, BATCHES_MAX, "epoch too long for the request table");
	struct peer *peer = &drive.peers[peer_index];
	uint32_t index = drive.sent_count++;
	struct sent *sent = &drive.sent[index];
	memset(sent, 0, sizeof(*sent));
	sent->peer = peer_index;
	sent->count = count;
	sent->request = peer->request_next++;
	cr_assert_lt(sent->request, BATCHES_MAX);
	memcpy(sent->events, events, (size_t)count * sizeof(events[0]));
	peer->by_request[sent->request] = index + 1;
	drive.events_sent += count;
	drive.requests_sent++;
	return index;
}

/* ---- The generator and the guide model ------------------------------------------ */

/* What the server does between batches, done to the guide: EXPIRE of the
 * holds due now. */
static void guide_expire(uint64_t now)
{
	uint64_t ids[CFG_HOLDS];
	uint32_t count = model_expire_due(drive.guide, now, CFG_HOLDS, ids);
	if (count == 0)
		return;
	struct skuld_event events[CFG_HOLDS];
	struct skuld_result results[CFG_HOLDS];
	memset(events, 0, sizeof(events));
	for (uint32_t i = 0; i < count; i++) {
		events[i].kind = SKULD_EXPIRE;
		events[i].id = ids[i];
		events[i].key = (skuld_u128){.lo = ids[i], .hi = 1};
	}
	model_apply(drive.guide, now, LEDGER_SOURCE_SERVER, events, count, results);
}

/* Keeps the events the codec accepts (the server would close the
 * connection on the others); returns how many are left. */
static uint32_t batch_filter(struct skuld_event *events, uint32_t count)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (proto_event_check(&events[i]) == SKULD_OK)
			events[kept++] = events[i];
	}
	drive.events_dropped += count - kept;
	return kept;
}

/* Applies a batch about to be sent to the guide, as the generator expects. */
static void guide_apply(const struct skuld_event *events, uint32_t count)
{
	struct skuld_result results[CFG_BATCH];
	model_apply(drive.guide, drive.run.now, LEDGER_SOURCE_CLIENT, events, count, results);
	record_statistics(&drive.run, LEDGER_SOURCE_CLIENT, events, count, results);
	drive.run.batch++;
}

/* Generates the next batch (codec-valid, non-empty) and sends it from peer. */
static void batch_send(uint32_t peer_index, bool allow_fail)
{
	struct skuld_event events[CFG_BATCH];
	for (int attempt = 0; attempt < 100; attempt++) {
		drive.run.now = realtime_ns();
		guide_expire(drive.run.now);
		uint32_t count = batch_filter(events, generate_batch(&drive.run, events));
		if (count > 0) {
			guide_apply(events, count);
			submit_send(sent_add(peer_index, events, count), allow_fail);
			return;
		}
	}
	cr_assert_fail("the generator made 100 batches the codec refuses whole");
}

/* Sends a batch from peer and waits for its reply. */
static void submit_now(uint32_t peer_index, const struct skuld_event *events, uint32_t count)
{
	submit_send(sent_add(peer_index, events, count), false);
	while (drive.peers[peer_index].flight_count > 0)
		reply_read(peer_index, false);
}

/* The catalog and stock every epoch starts from (ledger_model.h). */
static void epoch_setup(void)
{
	struct skuld_event events[CFG_BATCH];
	drive.run.now = realtime_ns();
	uint32_t count = epoch_setup_catalog(&drive.run, events);
	guide_apply(events, count);
	submit_now(0, events, count);
	count = epoch_setup_stock(&drive.run, events);
	guide_apply(events, count);
	submit_now(0, events, count);
}

static uint64_t pacing_next(void)
{
	uint64_t z = (drive.pacing_rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Before a pause: RESERVEs with a 1 s TTL on the setup's items and
 * locations, under hold ids the generator uses, so that holds expire during
 * the pause (the server's EXPIRE records) and the generator's later events
 * meet expired holds. At high rates its own holds are committed or released
 * long before their TTL. */
/* A plain item with available stock at a selling location, by the guide's
 * reckoning; false when none turned up. */
static bool stock_pick(uint32_t *item, uint32_t *location)
{
	const struct model *guide = drive.guide;
	for (int tries = 0; tries < 40; tries++) {
		*item = 1 + (uint32_t)(pacing_next() % CFG_ITEMS);
		*location = 1 + (uint32_t)(pacing_next() % CFG_LOCATIONS);
		if (check_item(guide, *item) == SKULD_OK && !guide->item[*item].bundle &&
		    check_location(guide, *location) == SKULD_OK &&
		    guide->location[*location].state == SKULD_LIFECYCLE_ACTIVE &&
		    model_available(guide, *item, *location) > 0)
			return true;
	}
	return false;
}

static void holds_to_expire(void)
{
	uint32_t peer_index = CLIENTS;
	for (uint32_t i = 0; i < CLIENTS; i++)
		if (drive.peers[i].flight_count < DEPTH)
			peer_index = i;
	if (peer_index == CLIENTS)
		return;
	struct skuld_event events[EXPIRE_BURST];
	uint32_t room = CFG_HOLDS - model_holds_open(drive.guide);
	uint32_t count = 0;
	for (uint64_t id = 1; id <= HOLD_ID_MAX && count < EXPIRE_BURST && count < room; id++) {
		uint32_t item;
		uint32_t location;
		if (model_hold_find(drive.guide, id) != NULL || !stock_pick(&item, &location))
			continue;
		struct skuld_event *event = &events[count++];
		*event = event_new(&drive.run, SKULD_RESERVE);
		event->id = id;
		event->item = item;
		event->location = location;
		event->quantity = 1;
		event->ttl_s = 1;
	}
	if (count == 0)
		return;
	drive.run.now = realtime_ns();
	guide_apply(events, count);
	submit_send(sent_add(peer_index, events, count), false);
}

/* Waits while the run is ahead of its rate, and now and then pauses (1.1
 * to 2.5 s) so that holds expire and keys are forgotten with no traffic. */
static void pace(void)
{
	if (pacing_next() % 100 < PAUSE_PERCENT && drive.pause_ms < PAUSE_BUDGET_MS) {
		holds_to_expire();
		uint64_t pause = 1100 + pacing_next() % 1400;
		uint64_t until = harness_now_ms() + pause;
		while (harness_now_ms() < until)
			replies_pump(20);
		drive.pause_ms += pause;
	}
	for (int spin = 0; spin < 1000; spin++) {
		uint64_t elapsed = harness_now_ms() - drive.start_ms - drive.pause_ms;
		if (drive.events_sent <= elapsed * RATE_EVENTS_PER_S / 1000 + CFG_BATCH)
			break;
		replies_pump(5);
	}
}

/* Sends generated batches, round robin over the connections with room,
 * until events_goal client events went out (over all epochs). */
static void run_until(uint64_t events_goal)
{
	uint32_t next_peer = 0;
	while (drive.events_sent < events_goal) {
		cr_assert_lt(harness_now_ms() - drive.start_ms, RUN_DEADLINE_MS,
		             "only %" PRIu64 " events sent in %d ms", drive.events_sent,
		             RUN_DEADLINE_MS);
		pace();
		uint32_t peer_index = CLIENTS;
		for (uint32_t i = 0; i < CLIENTS && peer_index == CLIENTS; i++) {
			uint32_t candidate = (next_peer + i) % CLIENTS;
			if (drive.peers[candidate].flight_count < DEPTH)
				peer_index = candidate;
		}
		if (peer_index == CLIENTS) {
			replies_pump(100);
			continue;
		}
		next_peer = (peer_index + 1) % CLIENTS;
		batch_send(peer_index, false);
		replies_pump(0);
	}
}

/* ---- The mid-run restart ----------------------------------------------------------- */

/* After the restart: the peer registers again; what it had in flight was
 * applied (numbers below request_next) or not (sent again, same numbers). */
static void peer_resume(uint32_t peer_index)
{
	struct peer *peer = &drive.peers[peer_index];
	uint32_t flight[DEPTH];
	uint32_t flight_count = peer->flight_count;
	memcpy(flight, peer->flight, sizeof(flight));
	uint64_t acknowledged_last = 0;
	for (uint64_t request = 1; request < peer->request_next; request++) {
		uint32_t index = peer->by_request[request];
		if (index != 0 && drive.sent[index - 1].acknowledged)
			acknowledged_last = request;
	}
	client_close(&peer->client);
	peer_open(peer_index);
	uint64_t applied_next = peer->client.request_next;
	cr_assert_gt(applied_next, acknowledged_last,
	             "client %u: request %" PRIu64 " was acknowledged, the restarted server "
	             "expects %" PRIu64,
	             peer_index, acknowledged_last, applied_next);
	cr_assert_leq(applied_next, peer->request_next);
	peer->flight_count = 0;
	for (uint32_t i = 0; i < flight_count; i++) {
		const struct sent *sent = &drive.sent[flight[i]];
		if (sent->request + 1 == applied_next) {
			/* The last applied request: its saved reply, read back from
			 * the log by the restarted server. */
			submit_send(flight[i], false);
			reply_read(peer_index, false);
			drive.restart_retried++;
		} else if (sent->request >= applied_next) {
			submit_send(flight[i], false);
			drive.restart_resent++;
		}
	}
}

/* SIGTERM with requests in flight on every connection; client 0 has lost
 * its connection before reading its replies, the others send once more
 * right after the signal. The server must exit 0; after the restart every
 * client goes on where REGISTER says it is. */
static void restart_in_flight(void)
{
	for (uint32_t i = 0; i < CLIENTS; i++) {
		uint32_t fill = i == 0 ? DEPTH : DEPTH - 1;
		while (drive.peers[i].flight_count < fill)
			batch_send(i, false);
	}
	client_close(&drive.peers[0].client);
	kill(drive.server.pid, SIGTERM);
	for (uint32_t i = 1; i < CLIENTS; i++)
		batch_send(i, true);
	drive.restart_in_flight += flight_total();
	for (uint32_t i = 1; i < CLIENTS; i++) {
		while (drive.peers[i].flight_count > 0 && reply_read(i, true) == 0)
			drive.restart_acknowledged++;
	}
	cr_assert_eq(server_wait(&drive.server), 0, "SIGTERM: skuld did not exit 0");
	server_start(&drive.server);
	for (uint32_t i = 0; i < CLIENTS; i++)
		peer_resume(i);
}

/* ---- The state the server answers, and the model's ----------------------------- */

#define LOCATION_CODES 8u /* the generator's L00..L07 */
#define CHANNEL_CODES  5u /* C00..C04 */

struct snapshot {
	struct skuld_level_record level[CFG_ITEMS + 2][CFG_LOCATIONS + 2];
	struct skuld_hold_record hold[HOLD_ID_MAX + 2];
	struct skuld_level_record channel[CFG_CHANNELS + 2][CFG_ITEMS + 2]; /* item 0 unused */
	struct skuld_lookup_match sku[SKU_POOL];
	struct skuld_lookup_match barcode[BARCODE_POOL][CFG_BARCODES];
	uint32_t barcode_count[BARCODE_POOL];
	struct skuld_lookup_match location[LOCATION_CODES];
	struct skuld_lookup_match channel_name[CHANNEL_CODES];
};

static void query_one(struct client *client, uint16_t kind, uint32_t item, uint32_t location,
                      uint32_t channel, uint64_t hold, void *record)
{
	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = kind;
	query.item = item;
	query.location = location;
	query.channel = channel;
	query.hold = hold;
	cr_assert_eq(client_query(client, &query, record, 1), 1, "QUERY kind %u failed", kind);
}

/* Returns the number of matches copied into matches (room for max). */
static uint32_t lookup_one(struct client *client, uint16_t kind, const char *code,
                           struct skuld_lookup_match *matches, uint32_t max)
{
	struct skuld_lookup lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = kind;
	memcpy(lookup.code, code, SKULD_CODE_SIZE);
	cr_assert_eq(frame_send(client->fd, SKULD_OP_LOOKUP, client->id, 0, client->version,
	                        &lookup, sizeof(lookup), 1),
	             0);
	cr_assert_eq(frame_read(client->fd, &frame), 0);
	const struct skuld_header *header = reply_header(&frame);
	cr_assert_eq(header->operation, SKULD_OP_LOOKUP);
	cr_assert(header->count >= 1 && header->count <= max, "LOOKUP: %u matches", header->count);
	memcpy(matches, reply_body(&frame), header->count * sizeof(matches[0]));
	return header->count;
}

/* Everything QUERY and LOOKUP say about the ids and codes the generator uses. */
static void snapshot_take(struct snapshot *snapshot)
{
	memset(snapshot, 0, sizeof(*snapshot));
	struct client reader;
	cr_assert_eq(client_open(&reader, drive.server.port, client_id(QUERY_CLIENT)), 0);
	for (uint32_t item = 0; item <= CFG_ITEMS + 1; item++)
		for (uint32_t location = 0; location <= CFG_LOCATIONS + 1; location++)
			query_one(&reader, SKULD_QUERY_LEVEL, item, location, 0, 0,
			          &snapshot->level[item][location]);
	for (uint64_t id = 0; id <= HOLD_ID_MAX + 1; id++)
		query_one(&reader, SKULD_QUERY_HOLD, 0, 0, 0, id, &snapshot->hold[id]);
	for (uint32_t channel = 0; channel <= CFG_CHANNELS + 1; channel++)
		for (uint32_t item = 1; item <= CFG_ITEMS + 1; item++)
			query_one(&reader, SKULD_QUERY_CHANNEL, item, 0, channel, 0,
			          &snapshot->channel[channel][item]);
	char code[SKULD_CODE_SIZE];
	for (uint32_t n = 0; n < SKU_POOL; n++) {
		code_text(code, "S", n);
		lookup_one(&reader, SKULD_LOOKUP_SKU, code, &snapshot->sku[n], 1);
	}
	for (uint32_t n = 0; n < BARCODE_POOL; n++) {
		code_text(code, "B", n);
		snapshot->barcode_count[n] = lookup_one(&reader, SKULD_LOOKUP_BARCODE, code,
		                                        snapshot->barcode[n], CFG_BARCODES);
	}
	for (uint32_t n = 0; n < LOCATION_CODES; n++) {
		code_text(code, "L", n);
		lookup_one(&reader, SKULD_LOOKUP_LOCATION, code, &snapshot->location[n], 1);
	}
	for (uint32_t n = 0; n < CHANNEL_CODES; n++) {
		code_text(code, "C", n);
		lookup_one(&reader, SKULD_LOOKUP_CHANNEL, code, &snapshot->channel_name[n], 1);
	}
	client_close(&reader);
}

static void level_expect(struct model *model, const struct skuld_level_record *got, uint32_t item,
                         uint32_t location)
{
	struct skuld_level_record want;
	memset(&want, 0, sizeof(want));
	want.item = item;
	want.location = location;
	want.kind = SKULD_QUERY_LEVEL;
	want.status = (uint16_t)model_level_status(model, item, location);
	if (want.status == SKULD_OK) {
		const struct model_entry *entry = &model->stock[item][location];
		want.on_hand = entry->counter[COUNTER_ON_HAND];
		want.reserved = entry->counter[COUNTER_RESERVED];
		want.committed = entry->counter[COUNTER_COMMITTED];
		want.unsellable =
		        entry->counter[COUNTER_DAMAGED] + entry->counter[COUNTER_QUARANTINE];
		want.incoming = entry->counter[COUNTER_INCOMING];
		want.available = entry_available(entry);
	}
	cr_assert(memcmp(&want, got, sizeof(want)) == 0,
	          "LEVEL item %u location %u: expected %s on_hand %" PRId64 " reserved %" PRId64
	          " committed %" PRId64 " unsellable %" PRId64 " incoming %" PRId64
	          ", server says %s %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64,
	          item, location, skuld_status_name(want.status), want.on_hand, want.reserved,
	          want.committed, want.unsellable, want.incoming, skuld_status_name(got->status),
	          got->on_hand, got->reserved, got->committed, got->unsellable, got->incoming);
}

static void hold_expect(struct model *model, const struct skuld_hold_record *got, uint64_t id)
{
	const struct model_hold *hold = model_hold_find(model, id);
	cr_assert_eq(got->status, hold != NULL ? SKULD_OK : SKULD_HOLD_UNKNOWN,
	             "HOLD %" PRIu64 ": status %s", id, skuld_status_name(got->status));
	if (hold == NULL)
		return;
	uint64_t closed_at = hold->state == LEDGER_HOLD_OPEN ? 0 : hold->closed_at;
	bool remaining_differs =
	        got->remaining != hold->remaining && hold->state != LEDGER_HOLD_RELEASED;
	cr_assert(got->hold == id && got->item == hold->item && got->location == hold->location &&
	                  got->channel == hold->channel && got->expires_at_ns == hold->expires_at &&
	                  got->closed_at_ns == closed_at && got->state == hold->state &&
	                  !remaining_differs,
	          "HOLD %" PRIu64 ": expected item %u location %u channel %u expires %" PRIu64
	          " closed %" PRIu64 " state %u remaining %" PRId64
	          ", server says %u %u %u %" PRIu64 " %" PRIu64 " %u %" PRId64,
	          id, hold->item, hold->location, hold->channel, hold->expires_at, closed_at,
	          hold->state, hold->remaining, got->item, got->location, got->channel,
	          got->expires_at_ns, got->closed_at_ns, got->state, got->remaining);
}

static void lookups_expect(struct model *model, const struct snapshot *snapshot)
{
	char code[SKULD_CODE_SIZE];
	for (uint32_t n = 0; n < SKU_POOL; n++) {
		code_text(code, "S", n);
		const struct model_code *want = model_code_find(model, code);
		const struct skuld_lookup_match *got = &snapshot->sku[n];
		cr_assert_eq(got->id, want != NULL ? want->item : 0, "SKU %s", code);
		cr_assert_eq(got->status, want != NULL ? SKULD_OK : SKULD_ITEM_UNKNOWN, "SKU %s",
		             code);
		if (want == NULL)
			continue;
		const struct model_item *item = &model->item[want->item];
		unsigned flags = (want->retired ? SKULD_LOOKUP_RETIRED : 0u) |
		                 (item->bundle ? SKULD_LOOKUP_BUNDLE : 0u);
		cr_assert_eq(got->flags, flags, "SKU %s: flags %#x, expected %#x", code, got->flags,
		             flags);
		cr_assert_eq(got->scale, item->scale, "SKU %s: scale", code);
	}
	for (uint32_t n = 0; n < BARCODE_POOL; n++) {
		code_text(code, "B", n);
		uint32_t matches = 0;
		for (uint32_t item = 1; item <= CFG_ITEMS; item++) {
			const struct model_barcode *barcode = model_barcode_find(model, code, item);
			if (barcode == NULL || !barcode->active)
				continue;
			cr_assert_lt(matches, snapshot->barcode_count[n], "BARCODE %s: too few",
			             code);
			const struct skuld_lookup_match *got = &snapshot->barcode[n][matches++];
			cr_assert(got->status == SKULD_OK && got->id == item &&
			                  got->pack == barcode->pack &&
			                  got->scale == model->item[item].scale &&
			                  (got->flags & SKULD_LOOKUP_BUNDLE) ==
			                          (model->item[item].bundle ? SKULD_LOOKUP_BUNDLE
			                                                    : 0u),
			          "BARCODE %s: expected item %u pack %" PRId64 ", got %u %" PRId64,
			          code, item, barcode->pack, got->id, got->pack);
		}
		if (matches == 0)
			cr_assert(snapshot->barcode_count[n] == 1 &&
			                  snapshot->barcode[n][0].status == SKULD_ITEM_UNKNOWN,
			          "BARCODE %s: the server knows it, the model does not", code);
		else
			cr_assert_eq(snapshot->barcode_count[n], matches, "BARCODE %s", code);
	}
	for (uint32_t n = 0; n < LOCATION_CODES; n++) {
		code_text(code, "L", n);
		uint32_t want = 0;
		for (uint32_t location = 1; location <= CFG_LOCATIONS; location++)
			if (model->location[location].defined &&
			    memcmp(model->location[location].code, code, SKULD_CODE_SIZE) == 0)
				want = location;
		cr_assert_eq(snapshot->location[n].id, want, "LOOKUP LOCATION %s", code);
	}
	for (uint32_t n = 0; n < CHANNEL_CODES; n++) {
		code_text(code, "C", n);
		uint32_t want = 0;
		for (uint32_t channel = 1; channel <= CFG_CHANNELS; channel++)
			if (model->channel[channel].defined &&
			    memcmp(model->channel[channel].code, code, SKULD_CODE_SIZE) == 0)
				want = channel;
		cr_assert_eq(snapshot->channel_name[n].id, want, "LOOKUP CHANNEL %s", code);
	}
}

static void snapshot_expect(struct model *model, const struct snapshot *snapshot)
{
	for (uint32_t item = 0; item <= CFG_ITEMS + 1; item++)
		for (uint32_t location = 0; location <= CFG_LOCATIONS + 1; location++)
			level_expect(model, &snapshot->level[item][location], item, location);
	for (uint64_t id = 0; id <= HOLD_ID_MAX + 1; id++)
		hold_expect(model, &snapshot->hold[id], id);
	for (uint32_t channel = 0; channel <= CFG_CHANNELS + 1; channel++) {
		for (uint32_t item = 1; item <= CFG_ITEMS + 1; item++) {
			int64_t quantity = 0;
			uint32_t status = model_channel_quantity(model, channel, item, &quantity);
			const struct skuld_level_record *got = &snapshot->channel[channel][item];
			cr_assert(got->status == status &&
			                  got->available == (status == SKULD_OK ? quantity : 0),
			          "CHANNEL %u item %u: expected %s %" PRId64
			          ", server says %s %" PRId64,
			          channel, item, skuld_status_name(status), quantity,
			          skuld_status_name(got->status), got->available);
		}
	}
	lookups_expect(model, snapshot);
}

/* ---- The replay of the log ------------------------------------------------------------ */

static void record_fail(uint32_t number, const struct log_record *record,
                        const struct skuld_result *want, uint32_t index)
{
	const struct log_record_header *header = record->header;
	fprintf(stderr,
	        "server model test: log record %u (client %#" PRIx64 ":%#" PRIx64
	        " request %" PRIu64 " timestamp %" PRIu64 ", %u events):\n",
	        number, header->client.hi, header->client.lo, header->request, header->timestamp_ns,
	        header->count);
	for (uint32_t i = 0; i < header->count; i++) {
		char event_text[512];
		char want_text[256];
		char got_text[256];
		event_describe(event_text, sizeof(event_text), &record->events[i]);
		result_describe(want_text, sizeof(want_text), &want[i]);
		result_describe(got_text, sizeof(got_text), &record->results[i]);
		fprintf(stderr, "  event %u: %s\n    model %s\n    log   %s\n", i, event_text,
		        want_text, got_text);
	}
	cr_assert_fail("log record %u event %u: the server's result differs from the model's "
	               "(seed %#" PRIx64 ", batch printed on stderr)",
	               number, index, drive.options.seed);
}

/* A client record: the request that was sent, once, with the results its
 * client was given. */
static void record_match(uint32_t number, const struct log_record *record)
{
	const struct log_record_header *header = record->header;
	uint32_t peer_index = CLIENTS;
	for (uint32_t i = 0; i < CLIENTS; i++)
		if (skuld_u128_equal(header->client, drive.peers[i].client.id))
			peer_index = i;
	cr_assert_lt(peer_index, CLIENTS, "log record %u: unknown client", number);
	cr_assert_lt(header->request, BATCHES_MAX);
	uint32_t index = drive.peers[peer_index].by_request[header->request];
	cr_assert_neq(index, 0, "log record %u: client %u request %" PRIu64 " was never sent",
	              number, peer_index, header->request);
	struct sent *sent = &drive.sent[index - 1];
	cr_assert(!sent->logged, "client %u request %" PRIu64 " is in the log twice", peer_index,
	          header->request);
	sent->logged = true;
	cr_assert_eq(header->count, sent->count);
	cr_assert(memcmp(record->events, sent->events, sent->count * sizeof(sent->events[0])) == 0,
	          "client %u request %" PRIu64 ": logged events differ from those sent", peer_index,
	          header->request);
	if (!sent->acknowledged)
		return;
	for (uint32_t i = 0; i < sent->count; i++) {
		if (memcmp(&sent->results[i], &record->results[i], sizeof(sent->results[i])) == 0)
			continue;
		char got_text[256];
		char logged_text[256];
		result_describe(got_text, sizeof(got_text), &sent->results[i]);
		result_describe(logged_text, sizeof(logged_text), &record->results[i]);
		cr_assert_fail("client %u request %" PRIu64 " event %u: received %s, logged %s",
		               peer_index, header->request, i, got_text, logged_text);
	}
}

/* Replays the whole log into model (fresh), comparing as the file header
 * says; statistics go to stats. */
static void log_replay(struct model *model, struct run *stats)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/data/log", drive.server.dir);
	cr_assert_eq(log_reader_open(&drive.reader, dir, NULL), 0);
	struct log_reader *reader = drive.reader;
	struct log_record record;
	enum log_status status;
	uint32_t number = 0;
	uint64_t timestamp_last = 0;
	struct skuld_result want[CFG_BATCH];
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD) {
		const struct log_record_header *header = record.header;
		cr_assert_eq(header->operation, SKULD_OP_SUBMIT,
		             "log record %u: operation %u (no session may be evicted here)", number,
		             header->operation);
		cr_assert(header->count >= 1 && header->count <= CFG_BATCH,
		          "log record %u: %u events", number, header->count);
		cr_assert_geq(header->timestamp_ns, timestamp_last, "log record %u: time went back",
		              number);
		timestamp_last = header->timestamp_ns;
		bool server = skuld_u128_is_zero(header->client);
		enum ledger_source source = server ? LEDGER_SOURCE_SERVER : LEDGER_SOURCE_CLIENT;
		model_apply(model, header->timestamp_ns, source, record.events, header->count,
		            want);
		for (uint32_t i = 0; i < header->count; i++)
			if (memcmp(&want[i], &record.results[i], sizeof(want[i])) != 0)
				record_fail(number, &record, want, i);
		if (server) {
			cr_assert_eq(header->request, 0);
			for (uint32_t i = 0; i < header->count; i++)
				cr_assert_eq(record.events[i].kind, SKULD_EXPIRE,
				             "log record %u: a server batch of %s", number,
				             skuld_event_kind_name(record.events[i].kind));
		} else {
			record_match(number, &record);
		}
		record_statistics(stats, source, record.events, header->count, record.results);
		stats->batch++;
		number++;
	}
	cr_assert_eq(status, LOG_END_CLEAN, "log ended with %d: %s", status,
	             log_reader_outcome(reader)->reason);
	log_reader_close(reader);
	drive.reader = NULL;
	for (uint32_t i = 0; i < drive.sent_count; i++)
		cr_assert(drive.sent[i].logged, "client %u request %" PRIu64 " is not in the log",
		          drive.sent[i].peer, drive.sent[i].request);
}

/* ---- The test ------------------------------------------------------------------------ */

/* ---- The test ------------------------------------------------------------------------ */

/* No open hold afterwards, so the server has nothing left to write. */
static void release_all(void)
{
	struct skuld_event events[HOLD_ID_MAX + 2];
	for (uint64_t id = 0; id <= HOLD_ID_MAX + 1; id++) {
		events[id] = event_new(&drive.run, SKULD_RELEASE);
		events[id].id = id;
	}
	uint32_t count = batch_filter(events, HOLD_ID_MAX + 2);
	drive.run.now = realtime_ns();
	guide_apply(events, count);
	submit_now(0, events, count);
	struct skuld_stats stats;
	cr_assert_eq(client_stats(&drive.peers[0].client, &stats), 0);
	cr_assert_eq(stats.holds_open, 0, "%" PRIu64 " holds still open", stats.holds_open);
}

/* One server from an empty log: setup, half the events, the restart with
 * requests in flight, the other half, then the final state (before and
 * after a clean restart) and the replay of the log. */
static void epoch_run(const char *config, uint64_t events_goal, struct run *stats)
{
	memset(drive.guide, 0, sizeof(*drive.guide));
	memset(drive.peers, 0, sizeof(drive.peers));
	for (uint32_t i = 0; i < CLIENTS; i++) {
		drive.peers[i].client.fd = -1;
		drive.peers[i].request_next = 1;
	}
	drive.sent_count = 0;
	drive.run.epoch++;
	server_init(&drive.server, config);
	server_start(&drive.server);
	for (uint32_t i = 0; i < CLIENTS; i++)
		peer_open(i);
	epoch_setup();
	run_until(drive.events_sent + (events_goal - drive.events_sent) / 2);
	restart_in_flight();
	run_until(events_goal);
	replies_drain();
	release_all();

	static struct snapshot before;
	static struct snapshot after;
	snapshot_take(&before);
	peers_close();
	cr_assert_eq(server_stop(&drive.server), 0);
	server_start(&drive.server);
	snapshot_take(&after);
	cr_assert_eq(server_stop(&drive.server), 0);
	cr_assert(memcmp(&before, &after, sizeof(before)) == 0,
	          "epoch %u: QUERY / LOOKUP answers differ after a restart", drive.run.epoch);

	static struct model model;
	memset(&model, 0, sizeof(model));
	stats->model = &model;
	log_replay(&model, stats);
	snapshot_expect(&model, &before);
	stats->model = NULL;
	stats->epoch++;
	server_fini(&drive.server);
}

Test(server_model, random_operations_through_the_server_match_the_model, .timeout = 300,
     .fini = drive_cleanup)
{
	static char config[2048];
	config_write(config, sizeof(config));
	drive.options.seed = env_u64("SKULD_MODEL_SEED", SEED_DEFAULT) ^ 0x736572766572ull;
	drive.options.client_events_min = EVENTS_MIN;
	drive.run.options = &drive.options;
	drive.run.rng = drive.options.seed;
	drive.pacing_rng = drive.options.seed ^ 0x70616365ull;
	drive.guide = calloc(1, sizeof(*drive.guide));
	drive.run.model = drive.guide;
	drive.sent = calloc(BATCHES_MAX, sizeof(drive.sent[0]));
	cr_assert(drive.guide != NULL && drive.sent != NULL);
	static struct run stats;
	memset(&stats, 0, sizeof(stats));
	stats.options = &drive.options;

	drive.start_ms = harness_now_ms();
	for (uint32_t epoch = 1; epoch <= EPOCHS; epoch++)
		epoch_run(config, EVENTS_TARGET * epoch / EPOCHS, &stats);
	uint64_t run_ms = harness_now_ms() - drive.start_ms;

	cr_assert_geq(stats.client_events, EVENTS_MIN);
	fprintf(stderr,
	        "server model run: %" PRIu64 " requests, %" PRIu64 " events sent in %" PRIu64
	        " ms (%" PRIu64 " ms paused), %u servers, %d connections each; %" PRIu64
	        " events dropped as codec-invalid; restarts with %u requests in flight: %u "
	        "acknowledged, %u retried for the saved reply, %u sent again\n",
	        drive.requests_sent, drive.events_sent, run_ms, drive.pause_ms, EPOCHS, CLIENTS,
	        drive.events_dropped, drive.restart_in_flight, drive.restart_acknowledged,
	        drive.restart_retried, drive.restart_resent);
	run_report(&stats);
}
