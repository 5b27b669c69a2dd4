/*
 * test_push_three_e2e.c — the real skuld, the Shopify, Square and Amazon
 * stand-ins and three real skuld-push workers, one per channel, together.
 * The three skuld channels have the same pool (stores 1 and 2; store 3 is
 * outside it) and list the same items: Shopify by inventory item number,
 * Square by catalog object id, Amazon by seller SKU. A till sale and a hold
 * reach all three; every fault a stand-in injects into an API call (5xx,
 * resets, rate limits, malformed, lost and slow answers; for Amazon also a
 * failing token refresh after the token expired) on one channel while the
 * others run converges on all three with nothing applied twice; each worker
 * killed in turn while sales go on resumes, and all three converge.
 *
 * Not here: the Amazon stand-in's feed_fatal and feed_cancelled faults. They
 * act on a feed, which skuld-push sends only for 100 changed items in one
 * call and polls every 30 s; test_push_amazon_driver.c drives them.
 */
#include "push_harness.h"
#include "square.h"

#define ITEMS      4 /* 1..3 in the pool, 4 stocked only outside it */
#define CHANNELS   3
#define MARKET     "ATVPDKIKX0DER"
#define SHOP_PLACE "gid://shopify/Location/1"
#define SQ_PLACE   "SQLOC1"

enum channel_kind {
	SHOPIFY = 0,
	SQUARE,
	AMAZON
};

struct channel {
	const char *name;   /* the skuld channel's code, and the worker's kind */
	const char *script; /* the stand-in */
	const char *seed;
	struct standin standin;
	struct push_worker worker;
};

#define SHOP_LEVEL(n)                                                                              \
	"{\"inventoryItemId\":\"gid://shopify/InventoryItem/10" #n                                 \
	"\",\"locationId\":\"" SHOP_PLACE "\",\"available\":0}"
#define SQ_COUNT(n)                                                                                \
	"{\"catalog_object_id\":\"SQVAR10" #n "\",\"location_id\":\"" SQ_PLACE                     \
	"\",\"quantity\":\"0\"}"
#define AMZ_LISTING(n) "{\"sku\":\"AMZ-" #n "\",\"quantity\":0}"

static struct channel channels[CHANNELS] = {
        {"shopify", "shopify.py",
         "{\"locations\":[{\"id\":\"" SHOP_PLACE "\",\"name\":\"Web\",\"active\":true}],"
         "\"levels\":[" SHOP_LEVEL(1) "," SHOP_LEVEL(2) "," SHOP_LEVEL(3) "," SHOP_LEVEL(4) "]}"},
        {"square", "square.py",
         "{\"locations\":[{\"id\":\"" SQ_PLACE "\",\"name\":\"Web\"}],"
         "\"counts\":[" SQ_COUNT(1) "," SQ_COUNT(2) "," SQ_COUNT(3) "," SQ_COUNT(4) "]}"},
        {"amazon", "amazon.py",
         "{\"listings\":[" AMZ_LISTING(1) "," AMZ_LISTING(2) "," AMZ_LISTING(3) "," AMZ_LISTING(
                 4) "]}"},
};

static struct server server;
static struct http_client *control;
static struct client admin;
static uint64_t key_serial = 1000;

static uint32_t channel_id(enum channel_kind kind)
{
	return (uint32_t)kind + 1;
}

static void submit_ok(struct skuld_event *events, uint32_t count)
{
	push_submit_ok(&admin, events, count);
}

static void one(struct skuld_event event)
{
	submit_ok(&event, 1);
}

static struct skuld_event stock(uint16_t kind, uint32_t item, uint32_t location, int64_t quantity)
{
	return event_stock(kind, item, location, quantity, ++key_serial);
}

/* The item's listing text on a channel. */
static void listing_text(enum channel_kind kind, uint32_t item, char *out, size_t size)
{
	static const char *const formats[CHANNELS] = {"10%u", "SQVAR10%u", "AMZ-%u"};
	snprintf(out, size, formats[kind], item);
}

static void worker_config_write(enum channel_kind kind)
{
	struct channel *channel = &channels[kind];
	snprintf(channel->worker.config, sizeof(channel->worker.config), "%s/%s.conf", server.dir,
	         channel->name);
	FILE *file = fopen(channel->worker.config, "w");
	cr_assert_not_null(file);
	fprintf(file,
	        "server = 127.0.0.1:%u\nchannel = %s\nkind = %s\napi_url = %s\n"
	        "idle_ms = 20\nreconcile_s = 0\nzero_resend_s = 0\ntimeout_ms = 3000\n",
	        server.port, channel->name, channel->name, channel->standin.base);
	if (kind == SHOPIFY)
		fprintf(file, "api_token = shpat_standin\napi_version = 2025-01\n"
		              "location = " SHOP_PLACE "\n");
	else if (kind == SQUARE)
		fprintf(file, "api_token = EAAAEstandin-square-token\napi_version = 2025-08-20\n"
		              "location = " SQ_PLACE "\n");
	else
		fprintf(file,
		        "lwa_url = %s\nseller_id = A1STANDINSELLER\n"
		        "lwa_client_id = amzn1.application-oa2-client.standin\n"
		        "lwa_client_secret = standin-secret\n"
		        "lwa_refresh_token = Atzr|standin-refresh\nlocation = " MARKET "\n",
		        channel->standin.base);
	fclose(file);
}

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	control = http_client_create();
	for (int kind = 0; kind < CHANNELS; kind++)
		standin_start(&channels[kind].standin, channels[kind].script, channels[kind].seed);
	/* As in test_push_amazon_e2e.c: buckets the test never runs dry on. */
	standin_control(&channels[AMAZON].standin, control, "config",
	                "{\"limits\":{\"patchListingsItem\":[50,50],\"getListingsItem\":[50,50]}}");
	server_init(&server, NULL);
	server_start(&server);
	cr_assert_eq(client_open(&admin, server.port, client_id(77)), 0);
	struct skuld_event catalog[16];
	uint32_t count = 0;
	for (uint32_t item = 1; item <= ITEMS; item++)
		catalog[count++] = event_item(item, ++key_serial);
	for (uint32_t location = 1; location <= 3; location++)
		catalog[count++] = event_location(location, ++key_serial);
	submit_ok(catalog, count);
	for (int kind = 0; kind < CHANNELS; kind++) {
		struct skuld_event define = event_make(SKULD_CHANNEL_DEFINE, ++key_serial, 6);
		define.channel = channel_id(kind);
		snprintf(define.code, sizeof(define.code), "%s", channels[kind].name);
		one(define);
		for (uint32_t location = 1; location <= 2; location++) {
			struct skuld_event pool = event_make(SKULD_CHANNEL_POOL, ++key_serial, 6);
			pool.channel = channel_id(kind);
			pool.location = location;
			one(pool);
		}
		for (uint32_t item = 1; item <= ITEMS; item++) {
			struct skuld_event listing =
			        event_make(SKULD_CHANNEL_LISTING, ++key_serial, 7);
			listing.channel = channel_id(kind);
			listing.item = item;
			listing_text(kind, item, listing.listing, sizeof(listing.listing));
			one(listing);
		}
		worker_config_write(kind);
	}
	one(stock(SKULD_RECEIVE, 1, 1, 10));
	one(stock(SKULD_RECEIVE, 1, 2, 5));
	one(stock(SKULD_RECEIVE, 2, 1, 3));
	one(stock(SKULD_RECEIVE, 3, 1, 1));
	one(stock(SKULD_RECEIVE, 4, 3, 9)); /* outside the pool */
}

static void teardown(void)
{
	for (int kind = 0; kind < CHANNELS; kind++)
		push_worker_stop(&channels[kind].worker, SIGKILL);
	client_close(&admin);
	server_stop(&server);
	server_fini(&server);
	for (int kind = 0; kind < CHANNELS; kind++)
		standin_stop(&channels[kind].standin);
	http_client_destroy(control);
}

TestSuite(push_three_e2e, .init = setup, .fini = teardown, .timeout = 120);

static void workers_start(void)
{
	for (int kind = 0; kind < CHANNELS; kind++)
		push_worker_start(&channels[kind].worker);
}

static void workers_stop(void)
{
	for (int kind = 0; kind < CHANNELS; kind++)
		push_worker_stop(&channels[kind].worker, SIGTERM);
}

/* What each channel's stand-in shows for items 1..ITEMS (-1: no such
 * listing), from one read of its state. */
static void channel_shows(enum channel_kind kind, int64_t *shown)
{
	static const char *const arrays[CHANNELS] = {"levels", "counts", "listings"};
	static const char *const ids[CHANNELS] = {"inventoryItemId", "catalog_object_id", "sku"};
	static const char *const quantities[CHANNELS] = {"available", "quantity", "quantity"};
	json_t *state = standin_get_json(&channels[kind].standin, control, "state");
	for (uint32_t item = 1; item <= ITEMS; item++) {
		char want[64], text[48];
		listing_text(kind, item, text, sizeof(text));
		snprintf(want, sizeof(want), "%s%s",
		         kind == SHOPIFY ? "gid://shopify/InventoryItem/" : "", text);
		shown[item] = -1;
		size_t i;
		json_t *entry;
		json_array_foreach(json_object_get(state, arrays[kind]), i, entry)
		{
			const char *id = json_string_value(json_object_get(entry, ids[kind]));
			json_t *quantity = json_object_get(entry, quantities[kind]);
			if (id == NULL || strcmp(id, want) != 0)
				continue;
			if (kind == SQUARE)
				cr_assert_eq(square_quantity_parse(json_string_value(quantity), 0,
				                                   &shown[item]),
				             0);
			else
				shown[item] = json_integer_value(quantity);
		}
	}
	json_decref(state);
}

/* Waits (20 s at most) until every channel shows want[1..ITEMS] (-1: any)
 * and none has a dirty item. */
static void converge(const int64_t *want, const char *what)
{
	uint64_t deadline = harness_now_ms() + 20000;
	int64_t shown[CHANNELS][ITEMS + 1];
	uint32_t dirty[CHANNELS];
	for (;;) {
		int equal = 1;
		for (int kind = 0; kind < CHANNELS; kind++) {
			channel_shows(kind, shown[kind]);
			for (uint32_t item = 1; item <= ITEMS; item++)
				equal &= want[item] < 0 || shown[kind][item] == want[item];
			dirty[kind] = channel_push_of(&admin, channel_id(kind)).dirty;
			equal &= dirty[kind] == 0;
		}
		if (equal)
			return;
		if (harness_now_ms() > deadline)
			break;
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	}
	for (int kind = 0; kind < CHANNELS; kind++)
		cr_log_error("%s: %s shows %lld %lld %lld %lld, %u items dirty", what,
		             channels[kind].name, (long long)shown[kind][1],
		             (long long)shown[kind][2], (long long)shown[kind][3],
		             (long long)shown[kind][4], dirty[kind]);
	cr_assert_fail("%s: the channels did not converge", what);
}

/* What a channel applied to an item, from its stand-in's records. */
struct applied {
	int64_t sum;    /* of the changes: where the item ended, from 0 */
	uint32_t empty; /* changes of 0: an absolute value applied again */
	int64_t low;    /* the lowest and highest value set */
	int64_t high;
	uint32_t count;
};

static void applied_note(struct applied *applied, int64_t delta, int64_t after)
{
	applied->sum += delta;
	applied->empty += delta == 0;
	if (applied->count == 0 || after < applied->low)
		applied->low = after;
	if (applied->count == 0 || after > applied->high)
		applied->high = after;
	applied->count++;
}

/* Shopify and Square: each change in the request log's `applied`; Amazon:
 * each entry of the state's `applications`. */
static struct applied applied_of(enum channel_kind kind, uint32_t item)
{
	struct applied applied = {0};
	char text[48], id[80];
	listing_text(kind, item, text, sizeof(text));
	snprintf(id, sizeof(id), "%s%s", kind == SHOPIFY ? "gid://shopify/InventoryItem/" : "",
	         text);
	size_t i, n;
	json_t *entry, *change;
	if (kind == AMAZON) {
		json_t *state = standin_get_json(&channels[kind].standin, control, "state");
		json_array_foreach(json_object_get(state, "applications"), i, entry)
		{
			if (strcmp(json_string_value(json_object_get(entry, "sku")), id) != 0)
				continue;
			applied_note(&applied, json_integer_value(json_object_get(entry, "delta")),
			             json_integer_value(json_object_get(entry, "quantity")));
		}
		json_decref(state);
		return applied;
	}
	json_t *entries = standin_log_json(&channels[kind].standin, control, 0);
	json_array_foreach(entries, i, entry)
	{
		json_array_foreach(json_object_get(entry, "applied"), n, change)
		{
			if (kind == SHOPIFY) {
				const char *name =
				        json_string_value(json_object_get(change, "name"));
				const char *what =
				        json_string_value(json_object_get(change, "item"));
				if (name == NULL || what == NULL ||
				    strcmp(name, "available") != 0 || strcmp(what, id) != 0)
					continue;
				applied_note(&applied,
				             json_integer_value(json_object_get(change, "delta")),
				             json_integer_value(json_object_get(
				                     change, "quantityAfterChange")));
				continue;
			}
			const char *what =
			        json_string_value(json_object_get(change, "catalog_object_id"));
			if (what == NULL || strcmp(what, id) != 0)
				continue;
			int64_t delta = 0, after = 0;
			cr_assert_eq(square_quantity_parse(
			                     json_string_value(json_object_get(change, "delta")), 0,
			                     &delta),
			             0);
			cr_assert_eq(square_quantity_parse(
			                     json_string_value(json_object_get(change, "after")), 0,
			                     &after),
			             0);
			applied_note(&applied, delta, after);
		}
	}
	json_decref(entries);
	return applied;
}

/* Item 1 on every channel went from 0 to `final` with values in
 * [final, high]; at most empty_max[kind] absolute values applied again. */
static void applied_check(int64_t final, int64_t high, const uint32_t *empty_max)
{
	for (int kind = 0; kind < CHANNELS; kind++) {
		struct applied applied = applied_of(kind, 1);
		const char *name = channels[kind].name;
		cr_assert_eq(applied.sum, final, "%s: changes add up to %lld", name,
		             (long long)applied.sum);
		cr_assert_leq(applied.empty, empty_max[kind], "%s: %u values applied again", name,
		              applied.empty);
		cr_assert(applied.low >= final && applied.high <= high,
		          "%s: values %lld..%lld applied, the ledger asked %lld..%lld", name,
		          (long long)applied.low, (long long)applied.high, (long long) final,
		          (long long)high);
	}
}

Test(push_three_e2e, a_till_sale_reaches_all_three)
{
	workers_start();
	/* 15 in the pool; 3; 1; item 4 only outside it. */
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0};
	converge(want, "first push");
	one(stock(SKULD_SALE, 1, 2, 4));
	want[1] = 11;
	converge(want, "till sale");
	workers_stop();
	applied_check(11, 15, (const uint32_t[CHANNELS]){0, 0, 0});
}

Test(push_three_e2e, a_hold_that_empties_an_item_shows_0_on_all_three)
{
	workers_start();
	int64_t want[ITEMS + 1] = {0, 15, 3, 1, 0};
	converge(want, "first push");
	struct skuld_event reserve = stock(SKULD_RESERVE, 3, 1, 1);
	reserve.id = 501;
	reserve.ttl_s = 600;
	one(reserve);
	want[3] = 0;
	converge(want, "hold");
	workers_stop();
}

/* Each fault the stand-in of `kind` injects before an answer, one at a
 * time, each followed by a till sale of item 1 that all three channels
 * must show. */
static void faults_on(enum channel_kind kind, const char *const *faults, size_t count,
                      uint32_t empty_max)
{
	one(stock(SKULD_RECEIVE, 1, 1, 20)); /* 35: a sale per fault */
	workers_start();
	int64_t want[ITEMS + 1] = {0, 35, 3, 1, 0};
	converge(want, "first push");
	for (size_t f = 0; f < count; f++) {
		bool expire = kind == AMAZON && strstr(faults[f], "\"token\"") != NULL;
		standin_control(&channels[kind].standin, control, "faults", faults[f]);
		if (expire)
			standin_control(&channels[kind].standin, control, "tokens/expire", "{}");
		one(stock(SKULD_SALE, 1, 1, 1));
		want[1]--;
		char what[160];
		snprintf(what, sizeof(what), "%s fault %zu %s", channels[kind].name, f, faults[f]);
		converge(want, what);
	}
	workers_stop();
	uint32_t empty_max_of[CHANNELS] = {0, 0, 0};
	empty_max_of[kind] = empty_max;
	applied_check(want[1], 35, empty_max_of);
}

Test(push_three_e2e, shopify_faults_while_the_others_run)
{
	static const char *const faults[] = {
	        "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}",
	        "{\"kind\":\"reset\"}",
	        "{\"kind\":\"throttle\",\"count\":3}",
	        "{\"kind\":\"malformed\"}",
	        "{\"kind\":\"timeout\",\"seconds\":4,\"apply\":true}",
	        "{\"kind\":\"http_error\",\"status\":500}",
	        "{\"kind\":\"delay\",\"seconds\":1}",
	};
	/* As test_push_e2e.c: compare-and-set, so nothing is set twice. */
	faults_on(SHOPIFY, faults, sizeof(faults) / sizeof(faults[0]), 0);
}

Test(push_three_e2e, square_faults_while_the_others_run)
{
	static const char *const faults[] = {
	        "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}",
	        "{\"kind\":\"reset\"}",
	        "{\"kind\":\"rate_limit\",\"count\":3}",
	        "{\"kind\":\"malformed\",\"apply\":true}",
	        "{\"kind\":\"timeout\",\"seconds\":4,\"apply\":true}",
	        "{\"kind\":\"http_error\",\"status\":500}",
	        "{\"kind\":\"delay\",\"seconds\":1}",
	};
	/* As test_push_square_e2e.c: a retry reuses its idempotency key. */
	faults_on(SQUARE, faults, sizeof(faults) / sizeof(faults[0]), 0);
}

Test(push_three_e2e, amazon_faults_while_the_others_run)
{
	static const char *const faults[] = {
	        "{\"kind\":\"http_error\",\"status\":503,\"apply\":true}",
	        "{\"kind\":\"reset\"}",
	        "{\"kind\":\"throttle\",\"count\":3}",
	        "{\"kind\":\"malformed\"}",
	        "{\"kind\":\"timeout\",\"seconds\":4,\"apply\":true}",
	        "{\"kind\":\"http_error\",\"status\":500}",
	        "{\"kind\":\"delay\",\"seconds\":1}",
	        "{\"kind\":\"http_error\",\"status\":500,\"match\":\"token\"}",
	};
	/* As test_push_amazon_e2e.c: no idempotency key, so each of the two
	 * faults that lose the answer to an accepted PATCH may have the same
	 * value applied again (a change of 0), never another value. */
	faults_on(AMAZON, faults, sizeof(faults) / sizeof(faults[0]), 2);
}

Test(push_three_e2e, each_worker_killed_in_turn_while_sales_go_on)
{
	one(stock(SKULD_RECEIVE, 1, 1, 30)); /* 45 */
	workers_start();
	int64_t want[ITEMS + 1] = {0, 45, 3, 1, 0};
	converge(want, "first push");
	uint64_t acks[CHANNELS];
	for (int kind = 0; kind < CHANNELS; kind++)
		acks[kind] = channel_push_of(&admin, channel_id(kind)).acks;
	for (int kind = 0; kind < CHANNELS; kind++) {
		/* Slow answers, so the kill finds a call in flight. */
		standin_control(&channels[kind].standin, control, "faults",
		                "{\"kind\":\"delay\",\"seconds\":1,\"count\":3}");
		for (int sale = 0; sale < 8; sale++) {
			one(stock(SKULD_SALE, 1, 1, 1));
			want[1]--;
			if (sale == 3)
				push_worker_stop(&channels[kind].worker, SIGKILL);
			if (sale == 5)
				push_worker_start(&channels[kind].worker);
			nanosleep(&(struct timespec){0, 100000000}, NULL);
		}
	}
	cr_assert_eq(want[1], 21);
	converge(want, "after the restarts");
	for (int kind = 0; kind < CHANNELS; kind++)
		cr_assert_gt(channel_push_of(&admin, channel_id(kind)).acks, acks[kind], "%s",
		             channels[kind].name);
	workers_stop();
	/* A killed call may have been applied without its acknowledgement; the
	 * restarted worker pushes the same value again: a change of 0 is
	 * allowed once per kill, another value never. */
	applied_check(21, 45, (const uint32_t[CHANNELS]){1, 1, 1});
}
