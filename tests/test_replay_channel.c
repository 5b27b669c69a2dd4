/*
 * test_replay_channel.c — skuld-replay channel-view on a log the real skuld
 * server wrote (tests/server_harness.h): a channel with one of two stores in
 * its pool, listings, receipts and sales, acknowledgements at the versions
 * the server reported (QUERY PUSH), an exception; then the view at several
 * points, by event and by time, with exact wanted and shown quantities,
 * versions, dirty times and exceptions, the exact list of events behind one
 * item (also two in one batch, each with the view right after it), and the
 * faults for an unknown channel or SKU and an item not mapped.
 *
 * Every child is bounded: skuld-replay runs get PR_SET_PDEATHSIG and are
 * killed after REPLAY_RUN_TIMEOUT_S; the server dies with the test process
 * and is stopped on every path by server_fini.
 */
#include "command_harness.h"

#include <inttypes.h>

#define REPLAY_BINARY        SKULD_BINARY_DIR "/server/skuld-replay"
#define REPLAY_RUN_TIMEOUT_S 120

#define SHOP  1
#define S1    1
#define S2    2
#define TEE   1
#define MUG   2
#define PLATE 3

static const char *const config_text = "items_max = 64\n"
                                       "locations_max = 16\n"
                                       "stock_max = 256\n";

static struct server server;
static struct command_run run_result;
static char data_dir[128];

/* What the server said while the log was written. */
static uint64_t tee_first_version; /* after the listing (event 9) */
static uint64_t tee_last_version;  /* after the batch of events 14, 15 */
static uint64_t mug_version;       /* after the listing (event 10) */
static char time_after_13[64];     /* a time between the records of 13 and 14 */

static struct command_run *replay_run_argv(const char *const *argv_in)
{
	static const char *const unset[] = {"SKULD_REPLAY_TIMING", NULL};
	const char *argv[COMMAND_ARGS_MAX];
	int argc = 0;
	argv[argc++] = "skuld-replay";
	for (int i = 0; argv_in[i] != NULL && argc < COMMAND_ARGS_MAX - 1; i++)
		argv[argc++] = argv_in[i];
	argv[argc] = NULL;
	return command_run(&run_result, REPLAY_BINARY, argv, server.dir, REPLAY_RUN_TIMEOUT_S,
	                   unset);
}

static struct command_run *replay_expect(int status, const char *const *argv)
{
	struct command_run *run = replay_run_argv(argv);
	cr_assert_eq(run->status, status, "%s: exit %d, wanted %d\nstdout: %s\nstderr: %s", argv[0],
	             run->status, status, run->out, run->err);
	return run;
}

#define expect(status, ...) replay_expect(status, (const char *const[]){__VA_ARGS__, NULL})

static void contains(const char *haystack, const char *needle)
{
	cr_assert_not_null(strstr(haystack, needle), "lacks '%s' in:\n%s", needle, haystack);
}

static void stop(void)
{
	server_fini(&server);
}

TestSuite(replay_channel, .fini = stop);

/* ---- The log ---------------------------------------------------------------- */

static uint64_t key_next = 5000;

static void submit(struct client *client, struct skuld_event *events, uint32_t count)
{
	struct skuld_result results[8];
	cr_assert_leq(count, 8);
	for (uint32_t i = 0; i < count; i++)
		events[i].key.lo = ++key_next;
	cr_assert_eq(client_submit(client, events, count, results, NULL), 0);
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u of request %llu: status %u", i,
		             (unsigned long long)client->request_next - 1, results[i].status);
}

static struct skuld_event named(struct skuld_event event, const char *code)
{
	memset(event.code, 0, sizeof(event.code));
	memcpy(event.code, code, strlen(code));
	return event;
}

static struct skuld_event channel_event(uint16_t kind, uint32_t item)
{
	struct skuld_event event = event_make(kind, 0, 7);
	event.channel = SHOP;
	event.item = item;
	return event;
}

static struct skuld_event listing(uint32_t item, const char *text)
{
	struct skuld_event event = channel_event(SKULD_CHANNEL_LISTING, item);
	memcpy(event.listing, text, strlen(text));
	return event;
}

static struct skuld_event ack(uint32_t item, uint64_t version, int64_t shown)
{
	struct skuld_event event = channel_event(SKULD_PUSH_ACK, item);
	event.id = version;
	event.quantity = shown;
	return event;
}

/* The push record of item among SHOP's dirty items (QUERY PUSH). */
static struct skuld_push_record dirty_record(struct client *client, uint32_t item)
{
	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_PUSH;
	query.channel = SHOP;
	static struct skuld_push_record records[16];
	int count = client_query(client, &query, records, 16);
	cr_assert_gt(count, 0);
	for (int i = 0; i < count; i++) {
		if (records[i].item == item) {
			cr_assert_eq(records[i].status, SKULD_OK);
			return records[i];
		}
	}
	cr_assert_fail("item %u is not dirty on the channel", item);
	return records[0];
}

static void time_now_text(char *out, size_t size)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec);
}

/*
 * One request per record:
 *   request 1: S1, S2, TEE, MUG, PLATE, CHANNEL_DEFINE SHOP, CHANNEL_POOL SHOP S1
 *              (events 1..7)
 *   request 2: RECEIVE TEE@S1 12                  event 8
 *   request 3: RECEIVE TEE@S2 5 (not in the pool) event 9
 *   request 4: CHANNEL_LISTING TEE, MUG           events 10, 11
 *   request 5: PUSH_ACK TEE at its version, 12    event 12
 *   request 6: SALE TEE@S1 2                      event 13
 *   request 7: SALE TEE@S2 1 (not in the pool)    event 14
 *   request 8: RECEIVE TEE@S1 3, SALE TEE@S1 1    events 15, 16
 *   request 9: PUSH_ACK TEE at its version, 12    event 17
 *   request 10: PUSH_EXCEPTION MUG validation     event 18
 */
static void make_log(void)
{
	server_init(&server, config_text);
	server_start(&server);
	snprintf(data_dir, sizeof(data_dir), "%s/data", server.dir);
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(3)), 0);
	struct skuld_event channel = named(channel_event(SKULD_CHANNEL_DEFINE, 0), "SHOP");
	struct skuld_event pool = channel_event(SKULD_CHANNEL_POOL, 0);
	pool.location = S1;
	struct skuld_event catalog[7] = {
	        named(event_location(S1, 0), "S1"),
	        named(event_location(S2, 0), "S2"),
	        named(event_item(TEE, 0), "TEE"),
	        named(event_item(MUG, 0), "MUG"),
	        named(event_item(PLATE, 0), "PLATE"),
	        channel,
	        pool,
	};
	submit(&client, catalog, 7);
	struct skuld_event event = event_stock(SKULD_RECEIVE, TEE, S1, 12, 0);
	submit(&client, &event, 1);
	event = event_stock(SKULD_RECEIVE, TEE, S2, 5, 0);
	submit(&client, &event, 1);
	struct skuld_event listings[2] = {listing(TEE, "gid-tee"), listing(MUG, "gid-mug")};
	submit(&client, listings, 2);
	struct skuld_push_record tee = dirty_record(&client, TEE);
	cr_assert_eq(tee.quantity, 12);
	tee_first_version = tee.version;
	mug_version = dirty_record(&client, MUG).version;
	event = ack(TEE, tee_first_version, 12);
	submit(&client, &event, 1);
	event = event_stock(SKULD_SALE, TEE, S1, 2, 0);
	submit(&client, &event, 1);
	event = event_stock(SKULD_SALE, TEE, S2, 1, 0);
	submit(&client, &event, 1);
	usleep(2000);
	time_now_text(time_after_13, sizeof(time_after_13));
	usleep(2000);
	struct skuld_event two[2] = {event_stock(SKULD_RECEIVE, TEE, S1, 3, 0),
	                             event_stock(SKULD_SALE, TEE, S1, 1, 0)};
	submit(&client, two, 2);
	tee = dirty_record(&client, TEE);
	cr_assert_eq(tee.quantity, 12);
	cr_assert_eq(tee.accepted, tee_first_version);
	tee_last_version = tee.version;
	event = ack(TEE, tee_last_version, 12);
	submit(&client, &event, 1);
	event = channel_event(SKULD_PUSH_EXCEPTION, MUG);
	event.id = mug_version;
	event.reason = SKULD_PUSH_VALIDATION;
	memcpy(event.code, "bad value", 9);
	submit(&client, &event, 1);
	client_close(&client);
	cr_assert_eq(server_stop(&server), 0);
}

/* ---- Reading the JSON ------------------------------------------------------- */

/* The recorded_ns of the point of a channel-view --json output. */
static uint64_t at_recorded_ns(const char *json)
{
	const char *at = strstr(json, "\"at\":{");
	cr_assert_not_null(at);
	const char *field = strstr(at, "\"recorded_ns\":");
	cr_assert_not_null(field);
	return strtoull(field + strlen("\"recorded_ns\":"), NULL, 10);
}

/* The JSON object of item sku in "items" (copied into out): up to the next
 * item or the end of the list. */
static void item_json(const char *json, const char *sku, char *out, size_t size)
{
	char needle[64];
	snprintf(needle, sizeof(needle), "{\"sku\":\"%s\"", sku);
	const char *start = strstr(json, needle);
	cr_assert_not_null(start, "no item %s in %s", sku, json);
	const char *end = strstr(start + 1, "{\"sku\":");
	const char *list_end = strstr(start, "]");
	if (end == NULL || (list_end != NULL && list_end < end))
		end = list_end;
	cr_assert_not_null(end);
	size_t length = (size_t)(end - start);
	cr_assert_lt(length, size);
	memcpy(out, start, length);
	out[length] = '\0';
}

struct event_row {
	uint64_t seq;
	char kind[32];
	char wants[32];
	char state[32];
	uint64_t version;
	uint64_t accepted;
};

static void field_copy(const char *row, const char *end, const char *name, char *out, size_t size)
{
	const char *at = strstr(row, name);
	cr_assert(at != NULL && at < end, "no %s in the row", name);
	at += strlen(name);
	size_t length = strcspn(at, "\",}");
	cr_assert_lt(length, size);
	memcpy(out, at, length);
	out[length] = '\0';
}

/* The rows of "events", in order. Returns how many. */
static int event_rows(const char *json, struct event_row *rows, int max)
{
	const char *events = strstr(json, "\"events\":[");
	cr_assert_not_null(events, "no events in %s", json);
	int count = 0;
	const char *row = strstr(events, "{\"seq\":");
	while (row != NULL) {
		cr_assert_lt(count, max);
		const char *next = strstr(row + 1, "{\"seq\":");
		const char *end = next != NULL ? next : row + strlen(row);
		struct event_row *out = &rows[count++];
		char number[32];
		field_copy(row, end, "{\"seq\":", number, sizeof(number));
		out->seq = strtoull(number, NULL, 10);
		field_copy(row, end, "\"kind\":\"", out->kind, sizeof(out->kind));
		field_copy(row, end, "\"wants\":", out->wants, sizeof(out->wants));
		field_copy(row, end, "\"state\":\"", out->state, sizeof(out->state));
		field_copy(row, end, "\"version\":", number, sizeof(number));
		out->version = strtoull(number, NULL, 10);
		field_copy(row, end, "\"accepted\":", number, sizeof(number));
		out->accepted = strtoull(number, NULL, 10);
		row = next;
	}
	return count;
}

/* ---- The tests ---------------------------------------------------------------- */

Test(replay_channel, the_channel_at_several_points)
{
	make_log();
	char item[1024], wanted[512];

	/* After the listings (event 11): both dirty, nothing shown yet. */
	struct command_run *run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--at",
	                                 "11", "--json", "--config", server.config);
	uint64_t listed_ns = at_recorded_ns(run->out);
	contains(run->out, "\"summary\":{\"mapped\":2,\"dirty\":2,\"parked\":0,\"acks\":0,");
	item_json(run->out, "TEE", item, sizeof(item));
	snprintf(wanted, sizeof(wanted),
	         "\"listing\":\"gid-tee\",\"listing_serial\":1,\"mapped\":true,\"wants\":12,"
	         "\"version\":%" PRIu64 ",\"accepted\":0,\"shown\":null,\"state\":\"dirty\","
	         "\"dirty\":true,\"parked\":false,",
	         tee_first_version);
	contains(item, wanted);
	snprintf(wanted, sizeof(wanted), "\"dirty_since_ns\":%" PRIu64 ",\"exception\":null",
	         listed_ns);
	contains(item, wanted);
	item_json(run->out, "MUG", item, sizeof(item));
	contains(item, "\"wants\":0,");
	contains(item, "\"shown\":null,\"state\":\"dirty\"");

	/* After the first acknowledgement (event 12): TEE clean, shown 12. */
	run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--at", "12", "--json",
	             "--config", server.config);
	contains(run->out, "\"summary\":{\"mapped\":2,\"dirty\":1,\"parked\":0,\"acks\":1,");
	item_json(run->out, "TEE", item, sizeof(item));
	snprintf(wanted, sizeof(wanted),
	         "\"wants\":12,\"version\":%" PRIu64 ",\"accepted\":%" PRIu64
	         ",\"shown\":12,\"state\":\"clean\",\"dirty\":false,\"parked\":false,"
	         "\"dirty_since\":null",
	         tee_first_version, tee_first_version);
	contains(item, wanted);

	/* After the sale at S1 (event 13): wants 10, dirty since that record. */
	run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--at", "13", "--json",
	             "--config", server.config);
	uint64_t sale_ns = at_recorded_ns(run->out);
	item_json(run->out, "TEE", item, sizeof(item));
	snprintf(wanted, sizeof(wanted),
	         "\"wants\":10,\"version\":%" PRIu64 ",\"accepted\":%" PRIu64
	         ",\"shown\":12,\"state\":\"dirty\",\"dirty\":true,\"parked\":false,",
	         tee_first_version + 2, tee_first_version);
	contains(item, wanted);
	snprintf(wanted, sizeof(wanted), "\"dirty_since_ns\":%" PRIu64 ",", sale_ns);
	contains(item, wanted);

	/* By time, between events 14 and 15: the sale at S2 changed nothing. */
	struct command_run *by_time =
	        expect(0, "channel-view", data_dir, "--channel", "SHOP", "--at", time_after_13,
	               "--json", "--config", server.config);
	contains(by_time->out, "\"at\":{\"event\":14,");
	char again[1024];
	item_json(by_time->out, "TEE", again, sizeof(again));
	cr_assert_str_eq(again, item);

	/* The end: TEE clean at its last version, MUG parked by the exception. */
	run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--json", "--config",
	             server.config);
	contains(run->out, "\"summary\":{\"mapped\":2,\"dirty\":0,\"parked\":1,\"acks\":2,");
	contains(run->out, "\"oldest_dirty\":null");
	item_json(run->out, "TEE", item, sizeof(item));
	snprintf(wanted, sizeof(wanted),
	         "\"wants\":12,\"version\":%" PRIu64 ",\"accepted\":%" PRIu64
	         ",\"shown\":12,\"state\":\"clean\"",
	         tee_last_version, tee_last_version);
	contains(item, wanted);
	cr_assert_eq(tee_last_version, tee_first_version + 4);
	item_json(run->out, "MUG", item, sizeof(item));
	contains(item, "\"state\":\"dirty,parked\",\"dirty\":true,\"parked\":true,");
	contains(item, "\"exception\":{\"kind\":\"validation\",\"code\":6,\"reports\":1,");
	contains(item, "\"detail\":\"bad value\"}");
	cr_assert_null(strstr(run->out, "PLATE"), "PLATE is not mapped: %s", run->out);

	/* For people. */
	run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--config", server.config);
	contains(run->out, "channel SHOP (channel 1): 2 mapped, 0 dirty (oldest since -), 1 "
	                   "parked, 2 pushes acknowledged");
	contains(run->out, "channel exception: -");
	contains(run->out, "validation, 1 report, ");
	contains(run->out, ": bad value");
	contains(run->out, "2 items mapped");
}

Test(replay_channel, the_events_behind_one_item)
{
	make_log();
	struct command_run *run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--item",
	                                 "TEE", "--json", "--config", server.config);
	struct event_row rows[32];
	int count = event_rows(run->out, rows, 32);
	/* The channel's definition, the receipt at S1 before the listing, the
	 * listing, the acknowledgements and the movements at S1; not the
	 * receipt and sale at S2, the pool (no change yet), MUG's events. */
	static const struct {
		uint64_t seq;
		const char *kind;
		const char *wants;
		const char *state;
		uint64_t version; /* + tee_first_version, or 0 */
		uint64_t accepted;
	} expected[] = {
	        {6, "CHANNEL_DEFINE", "0", "not mapped", 0, 0},
	        {8, "RECEIVE", "12", "not mapped", 0, 0},
	        {10, "CHANNEL_LISTING", "12", "dirty", 1, 0},
	        {12, "PUSH_ACK", "12", "clean", 1, 1},
	        {13, "SALE", "10", "dirty", 3, 1},
	        {15, "RECEIVE", "13", "dirty", 4, 1},
	        {16, "SALE", "12", "dirty", 5, 1},
	        {17, "PUSH_ACK", "12", "clean", 5, 5},
	};
	uint32_t wanted = sizeof(expected) / sizeof(expected[0]);
	cr_assert_eq(count, (int)wanted, "%d rows in %s", count, run->out);
	for (uint32_t i = 0; i < wanted; i++) {
		cr_assert_eq(rows[i].seq, expected[i].seq, "row %u: seq %" PRIu64, i, rows[i].seq);
		cr_assert_str_eq(rows[i].kind, expected[i].kind, "row %u", i);
		cr_assert_str_eq(rows[i].wants, expected[i].wants, "row %u (seq %" PRIu64 ")", i,
		                 rows[i].seq);
		cr_assert_str_eq(rows[i].state, expected[i].state, "row %u", i);
		uint64_t version =
		        expected[i].version ? tee_first_version + expected[i].version - 1 : 0;
		uint64_t accepted =
		        expected[i].accepted ? tee_first_version + expected[i].accepted - 1 : 0;
		cr_assert_eq(rows[i].version, version, "row %u: version %" PRIu64, i,
		             rows[i].version);
		cr_assert_eq(rows[i].accepted, accepted, "row %u", i);
	}
	contains(run->out, "\"count\":8}");

	/* Up to event 13, by sequence; the same rows, cut there. */
	run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--item", "TEE", "--at",
	             "13", "--json", "--config", server.config);
	cr_assert_eq(event_rows(run->out, rows, 32), 5);
	cr_assert_eq(rows[4].seq, 13);

	/* For people: each event with the view right after it. */
	run = expect(0, "channel-view", data_dir, "--channel", "SHOP", "--item", "TEE", "--config",
	             server.config);
	char line[256];
	snprintf(line, sizeof(line),
	         "SALE             %-40s -> wants 10; version %" PRIu64
	         "; shown 12 at version %" PRIu64 "; dirty since ",
	         "2 at S1", tee_first_version + 2, tee_first_version);
	contains(run->out, line);
	snprintf(line, sizeof(line), "version %" PRIu64 " shown 12", tee_last_version);
	contains(run->out, line);
	snprintf(line, sizeof(line), "RECEIVE          %-40s -> wants 12; not mapped", "12 at S1");
	contains(run->out, line);
	contains(run->out, "listing \"gid-tee\"");
	contains(run->out, "8 events\n");
}

Test(replay_channel, faults_and_usage)
{
	make_log();
	struct command_run *run = expect(1, "channel-view", data_dir, "--channel", "AMAZON",
	                                 "--config", server.config);
	contains(run->err, "skuld-replay: channel 'AMAZON' is not defined in the log");
	run = expect(1, "channel-view", data_dir, "--channel", "SHOP", "--item", "NOPE", "--config",
	             server.config);
	contains(run->err, "skuld-replay: SKU 'NOPE' is not defined in the log");
	run = expect(1, "channel-view", data_dir, "--channel", "SHOP", "--item", "PLATE",
	             "--config", server.config);
	contains(run->err, "skuld-replay: SKU 'PLATE' is not mapped on channel 'SHOP' at the end "
	                   "of the log");
	run = expect(1, "channel-view", data_dir, "--channel", "SHOP", "--item", "TEE", "--at", "9",
	             "--config", server.config);
	contains(run->err, "SKU 'TEE' is not mapped on channel 'SHOP' at event 9");
	run = expect(2, "channel-view", data_dir, "--config", server.config);
	contains(run->err, "channel-view needs --channel NAME");
	run = expect(2, "state", data_dir, "--channel", "SHOP");
	contains(run->err, "state does not take --channel");
	run = expect(2, "channel-view", data_dir, "--channel", "SHOP", "--from", "3");
	contains(run->err, "channel-view does not take --from");
	expect(2, "channel-view", data_dir, "--channel", "SHOP", "--at", "yesterday");
}
