/*
 * test_client_unit.c — libskuld without a server: idempotency keys, client
 * id files, event builders, error text, argument checks, and the merging of
 * calls into requests (batch.c) driven directly, as a fake transport would.
 */
#include <criterion/criterion.h>

#include "client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- Keys ------------------------------------------------------------------ */

Test(client_key, deterministic_and_distinct)
{
	skuld_u128 a = skuld_key("till-1", "R-1001", 1, "sale");
	skuld_u128 b = skuld_key("till-1", "R-1001", 1, "sale");

	cr_assert(skuld_u128_equal(a, b));
	cr_assert(!skuld_u128_is_zero(a));
	cr_assert(!skuld_u128_equal(a, skuld_key("till-1", "R-1001", 2, "sale")));
	cr_assert(!skuld_u128_equal(a, skuld_key("till-1", "R-1001", 1, "return")));
	cr_assert(!skuld_u128_equal(a, skuld_key("till-2", "R-1001", 1, "sale")));
	cr_assert(!skuld_u128_equal(a, skuld_key("till-1", "R-1002", 1, "sale")));
}

Test(client_key, encoding_is_unambiguous)
{
	/* Without length prefixes these would hash the same bytes. */
	cr_assert(!skuld_u128_equal(skuld_key("ab", "c", 0, "x"), skuld_key("a", "bc", 0, "x")));
	cr_assert(!skuld_u128_equal(skuld_key("", "", 0, ""), skuld_key(NULL, "", 0, "x")));
	cr_assert(skuld_u128_equal(skuld_key(NULL, NULL, 0, NULL), skuld_key("", "", 0, "")));
}

Test(client_key, test_vector_of_the_document)
{
	/* docs/CLIENT.md quotes this vector; other languages check against it. */
	skuld_u128 key = skuld_key("till-1", "R-1001", 1, "sale");
	char text[40];

	snprintf(text, sizeof(text), "%016llx%016llx", (unsigned long long)key.hi,
	         (unsigned long long)key.lo);
	cr_log_info("key(till-1, R-1001, 1, sale) = %s", text);
	cr_assert_str_eq(text, "7718086af3d74d1d9f65dbf259e923ee");
}

Test(client_key, encoding_matches_the_document)
{
	/* The bytes docs/CLIENT.md spells out, hashed in one piece. */
	static const unsigned char bytes[] = {
	        's', 'k', 'u', 'l', 'd', '-', 'k', 'e', 'y', '-', 'v', '1', 0, /* tag + NUL */
	        6,   0,   0,   0,   't', 'i', 'l', 'l', '-', '1',              /* source */
	        6,   0,   0,   0,   'R', '-', '1', '0', '0', '1',              /* document */
	        1,   0,   0,   0,                                              /* line */
	        4,   0,   0,   0,   's', 'a', 'l', 'e',                        /* action */
	};
	XXH128_hash_t hash = XXH3_128bits(bytes, sizeof(bytes));
	skuld_u128 key = skuld_key("till-1", "R-1001", 1, "sale");

	cr_assert_eq(key.lo, hash.low64);
	cr_assert_eq(key.hi, hash.high64);
}

/* ---- Client ids ------------------------------------------------------------ */

static char *temporary_directory(void)
{
	char *path = strdup("/tmp/skuld-client-unit-XXXXXX");

	cr_assert_not_null(mkdtemp(path));
	return path;
}

Test(client_id, created_once_then_read_back)
{
	char *directory = temporary_directory();
	char path[512];
	skuld_u128 first, second;
	struct stat info;

	snprintf(path, sizeof(path), "%s/client-id", directory);
	cr_assert_eq(skuld_client_id_load(path, &first), 0);
	cr_assert(!skuld_u128_is_zero(first));
	cr_assert_eq(stat(path, &info), 0);
	cr_assert_eq(info.st_size, 33);
	cr_assert_eq(skuld_client_id_load(path, &second), 0);
	cr_assert(skuld_u128_equal(first, second));
	unlink(path);
	rmdir(directory);
	free(directory);
}

Test(client_id, malformed_file_is_refused)
{
	char *directory = temporary_directory();
	char path[512];
	skuld_u128 id;
	int fd;

	snprintf(path, sizeof(path), "%s/client-id", directory);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert(write(fd, "not-hex\n", 8) == 8);
	close(fd);
	cr_assert_eq(skuld_client_id_load(path, &id), -EINVAL);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert(write(fd, "00000000000000000000000000000000\n", 33) == 33);
	close(fd);
	cr_assert_eq(skuld_client_id_load(path, &id), -EINVAL, "a zero id is not an id");
	unlink(path);
	rmdir(directory);
	free(directory);
}

Test(client_id, generated_ids_differ)
{
	skuld_u128 a, b;

	cr_assert_eq(skuld_client_id_generate(&a), 0);
	cr_assert_eq(skuld_client_id_generate(&b), 0);
	cr_assert(!skuld_u128_equal(a, b));
}

/* ---- Event builders -------------------------------------------------------- */

Test(client_events, every_builder_makes_a_valid_event)
{
	skuld_u128 key = skuld_key("t", "d", 1, "a");
	struct skuld_event events[16];
	uint32_t n = 0;

	skuld_event_sale(&events[n++], key, 1, 2, 3);
	skuld_event_return(&events[n++], key, 1, 2, 3, SKULD_DISPOSITION_DAMAGED);
	skuld_event_receive(&events[n++], key, 1, 2, 3);
	skuld_event_adjust(&events[n++], key, 1, 2, -3, SKULD_REASON_THEFT);
	skuld_event_reserve(&events[n++], key, 9, 1, 2, 3, 900);
	skuld_event_reserve_channel(&events[n++], key, 9, 1, 4, 3, 900);
	skuld_event_extend(&events[n++], key, 9, 900);
	skuld_event_commit(&events[n++], key, 9, 0);
	skuld_event_release(&events[n++], key, 9);
	skuld_event_fulfill(&events[n++], key, 1, 2, 3);
	skuld_event_transfer_out(&events[n++], key, 5, 1, 2, 3, 4);
	skuld_event_transfer_in(&events[n++], key, 5, 1, 3, 4);
	cr_assert_eq(skuld_event_item_define(&events[n++], key, 1, "SKU-1", 0), 0);
	cr_assert_eq(skuld_event_location_define(&events[n++], key, 2, "STORE-12"), 0);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(proto_event_check(&events[i]), SKULD_OK, "event %u (%s)", i,
		             skuld_event_kind_name(events[i].kind));
	cr_assert_eq(events[0].kind, SKULD_SALE);
	cr_assert_eq(events[0].quantity, 3);
	cr_assert_eq(events[5].channel, 4);
	cr_assert_eq(events[5].location, 0);
}

Test(client_events, bad_codes_are_refused)
{
	struct skuld_event event;
	skuld_u128 key = {1, 0};

	cr_assert_eq(skuld_event_item_define(&event, key, 1, "", 0), -EINVAL);
	cr_assert_eq(skuld_event_item_define(&event, key, 1, " lead", 0), -EINVAL);
	cr_assert_eq(
	        skuld_event_item_define(&event, key, 1, "0123456789012345678901234567890123", 0),
	        -EINVAL);
	cr_assert_eq(skuld_event_location_define(&event, key, 1, "tab\there"), -EINVAL);
	cr_assert_eq(event.kind, 0, "a refused event is left zeroed");
	cr_assert_eq(skuld_event_item_define(&event, key, 1, "01234567890123456789012345678901", 0),
	             0, "32 characters fill the field exactly");
}

Test(client_events, link_marks_all_but_the_last)
{
	struct skuld_event events[3];
	skuld_u128 key = {1, 0};

	for (int i = 0; i < 3; i++)
		skuld_event_sale(&events[i], key, 1, 1, 1);
	events[2].flags = SKULD_EVENT_LINKED;
	skuld_events_link(events, 3);
	cr_assert(events[0].flags & SKULD_EVENT_LINKED);
	cr_assert(events[1].flags & SKULD_EVENT_LINKED);
	cr_assert(!(events[2].flags & SKULD_EVENT_LINKED));
}

/* ---- Error text ------------------------------------------------------------ */

Test(client_errors, every_code_reads)
{
	cr_assert_str_eq(skuld_strerror(0), "ok");
	cr_assert_str_eq(skuld_strerror(SKULD_INSUFFICIENT), "not enough stock available");
	cr_assert_str_eq(skuld_strerror(SKULD_ERR_TOKEN), "the server refused the token");
	cr_assert_str_eq(skuld_strerror(-ETIMEDOUT), "deadline passed before the server answered");
	cr_assert_str_eq(skuld_strerror(-ENOENT), "No such file or directory");
	cr_assert_str_eq(skuld_strerror(99), "unknown skuld status");
	for (int status = 0; status <= SKULD_CHAIN_TOO_LONG; status++)
		cr_assert_str_neq(skuld_strerror(status), "unknown skuld status", "%d", status);
	for (int status = SKULD_ERR_MAGIC; status <= SKULD_ERR_QUERY; status++)
		cr_assert_str_neq(skuld_strerror(status), "unknown skuld status", "%d", status);
	cr_assert_str_eq(skuld_state_name(SKULD_STATE_RECONNECTING), "reconnecting");
}

/* ---- Arguments and calls without a connection ------------------------------ */

static skuld_client *client_unconnected(void)
{
	struct skuld_options options;
	skuld_client *client;

	skuld_options_init(&options);
	options.address = "127.0.0.1:1";
	options.token = "secret";
	cr_assert_eq(skuld_client_create(&client, &options), 0);
	return client;
}

Test(client_calls, create_checks_its_options)
{
	struct skuld_options options;
	skuld_client *client;

	skuld_options_init(&options);
	options.token = "t";
	const char *bad[] = {NULL, "", "localhost", "localhost:", ":7878", "host:78x8", "[]:7878"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		options.address = bad[i];
		cr_assert_eq(skuld_client_create(&client, &options), -EINVAL, "address %zu", i);
		cr_assert_null(client);
	}
	options.address = "[::1]:7878";
	options.token = "tok\nen";
	cr_assert_eq(skuld_client_create(&client, &options), -EINVAL, "control byte in token");
	options.token = "t";
	options.client_name = "a name that is much longer than thirty-two bytes";
	cr_assert_eq(skuld_client_create(&client, &options), -EINVAL);
	options.client_name = "till 3";
	options.client_id = (skuld_u128){7, 9};
	cr_assert_eq(skuld_client_create(&client, &options), 0);
	cr_assert(skuld_u128_equal(skuld_client_id(client), (skuld_u128){7, 9}));
	cr_assert_eq(skuld_client_state(client), SKULD_STATE_DISCONNECTED);
	skuld_client_close(client);
}

Test(client_calls, calls_before_connect_are_refused)
{
	skuld_client *client = client_unconnected();
	struct skuld_event event;
	struct skuld_result result;
	struct skuld_stats stats;

	skuld_event_sale(&event, skuld_key("t", "d", 1, "sale"), 1, 1, 1);
	cr_assert_eq(skuld_submit(client, &event, 1, &result, NULL, 100), -ENOTCONN);
	cr_assert_eq(skuld_ping(client, 100), -ENOTCONN);
	cr_assert_eq(skuld_stats(client, &stats, 100), -ENOTCONN);
	cr_assert_eq(skuld_submit(client, NULL, 0, NULL, NULL, 100), 0, "nothing to send");
	skuld_client_close(client);
}

Test(client_calls, malformed_events_are_caught_before_sending)
{
	skuld_client *client = client_unconnected();
	struct skuld_event events[3];
	struct skuld_result results[3];
	uint32_t bad = 99;

	for (int i = 0; i < 3; i++)
		skuld_event_sale(&events[i], skuld_key("t", "d", (uint32_t)i, "sale"), 1, 1, 1);
	events[1].ttl_s = 5; /* SALE does not use ttl_s */
	cr_assert_eq(skuld_submit(client, events, 3, results, &bad, 100), SKULD_ERR_EVENT_FIELD);
	cr_assert_eq(bad, 1);
	events[1].ttl_s = 0;
	events[2].key = (skuld_u128){0, 0};
	cr_assert_eq(skuld_submit(client, events, 3, results, &bad, 100), SKULD_ERR_EVENT_VALUE);
	cr_assert_eq(bad, 2);
	cr_assert_eq(
	        skuld_submit(client, events, SKULD_EVENTS_PER_FRAME_MAX + 1, results, &bad, 100),
	        -EMSGSIZE);
	skuld_client_close(client);
}

Test(client_calls, connect_to_nothing_reports_and_keeps_trying)
{
	skuld_client *client = client_unconnected(); /* port 1: refused */
	int rc = skuld_client_connect(client, 300);

	cr_assert(rc == -ECONNREFUSED || rc == -ETIMEDOUT, "%d %s", rc, skuld_strerror(rc));
	cr_assert_eq(skuld_client_state(client), SKULD_STATE_RECONNECTING);
	cr_assert_eq(skuld_ping(client, 50), -ETIMEDOUT, "calls wait for their deadline");
	skuld_client_close(client);
}

/* ---- Merging (batch.c) ------------------------------------------------------ */

struct batch_fixture {
	struct skuld__queue queue;
	struct skuld__request request;
	struct skuld__slice slices[64];
	struct skuld_event body[64];
	struct skuld__call calls[16];
	struct skuld_event events[16][16];
	struct skuld_result results[16][16];
};

static struct batch_fixture *fixture_new(void)
{
	struct batch_fixture *f = calloc(1, sizeof(*f));

	f->request.slices = f->slices;
	f->request.slices_max = 64;
	return f;
}

/* Queues call c as a SUBMIT of count sales (last one LINKED if open). */
static void queue_submit(struct batch_fixture *f, int c, uint32_t count, int open_chain)
{
	for (uint32_t i = 0; i < count; i++)
		skuld_event_sale(&f->events[c][i],
		                 skuld_key("t", "d", (uint32_t)(c * 100) + i, "s"), 1, 1,
		                 (int64_t)(c * 100 + (int)i + 1));
	if (open_chain)
		f->events[c][count - 1].flags |= SKULD_EVENT_LINKED;
	f->calls[c] = (struct skuld__call){.operation = SKULD_OP_SUBMIT,
	                                   .events = f->events[c],
	                                   .count = count,
	                                   .results = f->results[c]};
	skuld__queue_push(&f->queue, &f->calls[c]);
}

static void queue_other(struct batch_fixture *f, int c, uint8_t operation)
{
	f->calls[c] = (struct skuld__call){.operation = operation};
	skuld__queue_push(&f->queue, &f->calls[c]);
}

/* Answers the request as a server would: result i for event i. */
static void answer(struct batch_fixture *f)
{
	struct skuld_result results[64];

	for (uint32_t i = 0; i < f->request.events; i++)
		results[i] = (struct skuld_result){
		        .index = i, .quantity = f->body[i].quantity, .location = 1};
	results[0].flags = SKULD_RESULT_REPLAYED;
	cr_assert_eq(skuld__batch_scatter(&f->request, results), 1);
	f->request.active = 0;
}

Test(client_batch, merges_submits_and_scatters_per_caller)
{
	struct batch_fixture *f = fixture_new();
	struct skuld__call *rejected;

	queue_submit(f, 0, 3, 0);
	queue_submit(f, 1, 2, 0);
	queue_submit(f, 2, 4, 0);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 64, &rejected), 3);
	cr_assert_null(rejected);
	cr_assert_eq(f->request.events, 9);
	cr_assert_eq(f->queue.length, 0);
	cr_assert_eq(f->slices[1].first, 3);
	cr_assert_eq(f->slices[2].first, 5);
	cr_assert_eq(f->body[3].quantity, 101, "caller 1's first event follows caller 0's");
	answer(f);
	for (int c = 0; c < 3; c++) {
		cr_assert_eq(f->calls[c].where, SKULD__CALL_DONE);
		cr_assert_eq(f->calls[c].status, 0);
		for (uint32_t i = 0; i < f->calls[c].count; i++) {
			cr_assert_eq(f->results[c][i].index, i, "index rebased to the caller");
			cr_assert_eq(f->results[c][i].quantity, f->events[c][i].quantity);
		}
	}
	cr_assert(f->results[0][0].flags & SKULD_RESULT_REPLAYED);
	free(f);
}

Test(client_batch, stops_at_the_frame_limit_without_splitting_a_call)
{
	struct batch_fixture *f = fixture_new();
	struct skuld__call *rejected;

	queue_submit(f, 0, 4, 0);
	queue_submit(f, 1, 4, 0); /* 8 > 6: waits for the next request */
	queue_submit(f, 2, 1, 0);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 6, &rejected), 1);
	cr_assert_eq(f->request.events, 4);
	cr_assert_eq(f->queue.head, &f->calls[1], "FIFO: no overtaking of a waiting call");
	answer(f);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 6, &rejected), 2);
	cr_assert_eq(f->request.events, 5);
	free(f);
}

Test(client_batch, nothing_joins_an_open_chain)
{
	struct batch_fixture *f = fixture_new();
	struct skuld__call *rejected;

	queue_submit(f, 0, 2, 0);
	queue_submit(f, 1, 2, 1); /* ends with LINKED: the server answers LINKED_OPEN */
	queue_submit(f, 2, 2, 0);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 64, &rejected), 2);
	cr_assert_eq(f->request.events, 4);
	cr_assert(f->body[3].flags & SKULD_EVENT_LINKED);
	cr_assert_eq(f->queue.head, &f->calls[2]);
	free(f);
}

Test(client_batch, other_operations_travel_alone_and_keep_their_place)
{
	struct batch_fixture *f = fixture_new();
	struct skuld__call *rejected;

	queue_other(f, 0, SKULD_OP_PING);
	queue_submit(f, 1, 1, 0);
	queue_other(f, 2, SKULD_OP_QUERY);
	queue_submit(f, 3, 1, 0);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 64, &rejected), 1);
	cr_assert_eq(f->request.operation, SKULD_OP_PING);
	f->request.active = 0;
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 64, &rejected), 2,
	             "submits 1 and 3 merge around the query");
	cr_assert_eq(f->request.operation, SKULD_OP_SUBMIT);
	cr_assert_eq(f->queue.head, &f->calls[2]);
	cr_assert_eq(f->queue.length, 1);
	free(f);
}

Test(client_batch, a_call_larger_than_the_server_takes_is_rejected)
{
	struct batch_fixture *f = fixture_new();
	struct skuld__call *rejected;

	queue_submit(f, 0, 8, 0);
	queue_submit(f, 1, 2, 0);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 4, &rejected), 0);
	cr_assert_eq(rejected, &f->calls[0]);
	cr_assert_eq(f->calls[0].status, -EMSGSIZE);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 4, &rejected), 1);
	cr_assert_eq(f->request.events, 2);
	free(f);
}

Test(client_batch, a_caller_that_left_gets_nothing_written)
{
	struct batch_fixture *f = fixture_new();
	struct skuld__call *rejected;

	queue_submit(f, 0, 2, 0);
	queue_submit(f, 1, 2, 0);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 64, &rejected), 2);
	f->slices[0].call = NULL; /* caller 0's deadline passed */
	memset(f->results[0], 0xab, sizeof(f->results[0]));
	answer(f);
	cr_assert_eq(f->results[0][0].index, 0xabababab);
	cr_assert_eq(f->results[1][1].quantity, 102);
	free(f);
}

Test(client_batch, slices_bound_the_calls_per_request)
{
	struct batch_fixture *f = fixture_new();
	struct skuld__call *rejected;

	f->request.slices_max = 2;
	for (int c = 0; c < 5; c++)
		queue_submit(f, c, 1, 0);
	cr_assert_eq(skuld__batch_take(&f->queue, &f->request, f->body, 64, &rejected), 2);
	cr_assert_eq(f->queue.length, 3);
	free(f);
}
