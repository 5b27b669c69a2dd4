/*
 * push_harness.h — what the skuld-push end-to-end tests share: starting and
 * stopping a real skuld-push on a configuration file, reading a stand-in's
 * control API as JSON, a channel's push record from skuld, waiting until a
 * channel shows what the ledger wants, submitting events that must succeed,
 * and the small catalog of the single-channel tests.
 *
 * A worker dies with the test (PR_SET_PDEATHSIG); push_worker_stop with
 * SIGTERM asserts that it exited 0 (CHANNELS.md, "Exit status").
 */
#ifndef SKULD_TESTS_PUSH_HARNESS_H
#define SKULD_TESTS_PUSH_HARNESS_H

#include <jansson.h>

#include "server_harness.h"
#include "standin_harness.h"

#define PUSH_HARNESS static __attribute__((unused))

struct push_worker {
	pid_t pid;        /* 0: not running */
	char config[160]; /* the configuration file the worker is started with */
};

PUSH_HARNESS void push_worker_start(struct push_worker *worker)
{
	cr_assert_eq(worker->pid, 0, "the worker runs already");
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		execl(SKULD_BINARY_DIR "/channels/skuld-push", "skuld-push", "--config",
		      worker->config, (char *)NULL);
		_exit(98);
	}
	worker->pid = pid;
}

/* Sends signal_number and reaps the worker; after SIGTERM it must exit 0. */
PUSH_HARNESS void push_worker_stop(struct push_worker *worker, int signal_number)
{
	if (worker->pid <= 0)
		return;
	kill(worker->pid, signal_number);
	int status = 0;
	waitpid(worker->pid, &status, 0);
	if (signal_number == SIGTERM)
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "skuld-push status %d",
		          status);
	worker->pid = 0;
}

/* GET /_control/what of the stand-in, as JSON (the caller decrefs). */
PUSH_HARNESS json_t *standin_get_json(struct standin *standin, struct http_client *client,
                                      const char *what)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/%s", standin->base, what);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(client, &request, &response), 0);
	cr_assert_eq(response.status, 200);
	json_t *value = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert_not_null(value);
	return value;
}

/* The stand-in's request log after sequence `since`, as a JSON array (the
 * caller decrefs). */
PUSH_HARNESS json_t *standin_log_json(struct standin *standin, struct http_client *client,
                                      uint64_t since)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/log?since=%llu", standin->base,
	         (unsigned long long)since);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(client, &request, &response), 0);
	cr_assert_eq(response.status, 200);
	json_t *entries = json_array();
	const char *line = response.body;
	const char *end_of_body = response.body + response.body_size;
	while (line < end_of_body) {
		const char *end = memchr(line, '\n', (size_t)(end_of_body - line));
		size_t length = end != NULL ? (size_t)(end - line) : (size_t)(end_of_body - line);
		json_t *entry = json_loadb(line, length, 0, NULL);
		if (entry != NULL)
			json_array_append_new(entries, entry);
		line += length + 1;
	}
	return entries;
}

/* The CHANNEL_PUSH record of channel (dirty, parked, acknowledgements). */
PUSH_HARNESS struct skuld_channel_push_record channel_push_of(struct client *client,
                                                              uint32_t channel)
{
	struct skuld_query query = {.kind = SKULD_QUERY_CHANNEL_PUSH, .channel = channel};
	struct skuld_channel_push_record record;
	cr_assert_eq(client_query(client, &query, &record, 1), 1);
	return record;
}

/* Waits (20 s at most) until shown_of(item) equals want[item] for every
 * item 1..items (want -1: any) and channel has nothing dirty; fails the test
 * with what, naming what the channel shows. */
PUSH_HARNESS void push_converge(struct client *client, uint32_t channel, uint32_t items,
                                int64_t (*shown_of)(uint32_t item), const int64_t *want,
                                const char *what)
{
	uint64_t deadline = harness_now_ms() + 20000;
	int64_t shown[16];
	uint32_t dirty = 0;
	cr_assert_lt(items, 16);
	for (;;) {
		int equal = 1;
		for (uint32_t item = 1; item <= items; item++) {
			shown[item] = shown_of(item);
			equal &= want[item] < 0 || shown[item] == want[item];
		}
		dirty = channel_push_of(client, channel).dirty;
		if (equal && dirty == 0)
			return;
		if (harness_now_ms() > deadline)
			break;
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	}
	char text[400] = "";
	size_t used = 0;
	for (uint32_t item = 1; item <= items && used < sizeof(text); item++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, " %lld",
		                         (long long)shown[item]);
	cr_assert_fail("%s: the channel shows%s, %u items dirty", what, text, dirty);
}

/* SUBMITs events[0..count) (count <= 16) and asserts every one is OK. */
PUSH_HARNESS void push_submit_ok(struct client *client, struct skuld_event *events, uint32_t count)
{
	struct skuld_result results[16];
	cr_assert_leq(count, 16);
	cr_assert_eq(client_submit(client, events, count, results, NULL), 0);
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: %s", i,
		             skuld_status_name(results[i].status));
}

/* The catalog of the single-channel tests: items 1..4 and bundle 5 (2 x
 * item 1 + 1 x item 2); stores 1 and 2 in channel `channel` (named name),
 * store 3 outside it; receipts 10 and 5 of item 1 at stores 1 and 2, 3 of
 * item 2 and 1 of item 3 at store 1, 9 of item 4 at store 3; and a listing
 * per item, listing_prefix followed by "10" and the item id. *key is the
 * key counter. */
PUSH_HARNESS void push_catalog(struct client *client, uint64_t *key, uint32_t channel,
                               const char *name, const char *listing_prefix)
{
	struct skuld_event catalog[16];
	uint32_t count = 0;
	for (uint32_t item = 1; item <= 5; item++) {
		catalog[count] = event_item(item, ++*key);
		if (item == 5)
			catalog[count].flags = SKULD_EVENT_BUNDLE;
		count++;
	}
	for (uint32_t location = 1; location <= 3; location++)
		catalog[count++] = event_location(location, ++*key);
	push_submit_ok(client, catalog, count);
	struct skuld_event events[2];
	for (int part = 0; part < 2; part++) {
		events[part] = event_make(SKULD_BUNDLE_COMPONENT, ++*key, 5);
		events[part].item = 5;
		events[part].target = part == 0 ? 1 : 2;
		events[part].quantity = part == 0 ? 2 : 1;
	}
	push_submit_ok(client, events, 2);
	struct skuld_event define = event_make(SKULD_CHANNEL_DEFINE, ++*key, 6);
	define.channel = channel;
	snprintf(define.code, sizeof(define.code), "%s", name);
	push_submit_ok(client, &define, 1);
	for (uint32_t location = 1; location <= 2; location++) {
		struct skuld_event pool = event_make(SKULD_CHANNEL_POOL, ++*key, 6);
		pool.channel = channel;
		pool.location = location;
		push_submit_ok(client, &pool, 1);
	}
	const struct {
		uint32_t item, location;
		int64_t quantity;
	} receipts[] = {{1, 1, 10}, {1, 2, 5}, {2, 1, 3}, {3, 1, 1}, {4, 3, 9}};
	for (size_t i = 0; i < sizeof(receipts) / sizeof(receipts[0]); i++) {
		struct skuld_event receive =
		        event_stock(SKULD_RECEIVE, receipts[i].item, receipts[i].location,
		                    receipts[i].quantity, ++*key);
		push_submit_ok(client, &receive, 1);
	}
	for (uint32_t item = 1; item <= 5; item++) {
		struct skuld_event listing = event_make(SKULD_CHANNEL_LISTING, ++*key, 7);
		listing.channel = channel;
		listing.item = item;
		snprintf(listing.listing, sizeof(listing.listing), "%s10%u", listing_prefix, item);
		push_submit_ok(client, &listing, 1);
	}
}

#endif /* SKULD_TESTS_PUSH_HARNESS_H */
