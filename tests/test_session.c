/*
 * test_session.c — the session table (server/session.c) and the session
 * rules of the service (server/service.c) without a socket: REGISTER, the
 * request sequence, a retry answered with the saved reply read back from
 * the log (also after a "restart": a fresh service replaying the log), LRU
 * eviction logged as a record and replayed, takeover of a session by a new
 * connection.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "recovery.h"
#include "service.h"
#include "session.h"

/* ---- The table alone ------------------------------------------------------ */

static skuld_u128 id_of(uint64_t n)
{
	skuld_u128 id = {n * 0x9e3779b97f4a7c15ull + 1, n};
	return id;
}

Test(session, find_create_remove_many)
{
	struct session_table table;
	cr_assert_eq(session_table_init(&table, 100), 0);
	for (uint64_t n = 1; n <= 100; n++)
		cr_assert_not_null(session_create(&table, id_of(n)));
	cr_assert_null(session_create(&table, id_of(101)));
	for (uint64_t n = 1; n <= 100; n++)
		cr_assert_not_null(session_find(&table, id_of(n)), "%llu", (unsigned long long)n);
	/* Remove every third; the others must still be found (probe chains). */
	for (uint64_t n = 3; n <= 100; n += 3)
		session_remove(&table, session_find(&table, id_of(n)));
	for (uint64_t n = 1; n <= 100; n++) {
		struct session *s = session_find(&table, id_of(n));
		if (n % 3 == 0)
			cr_assert_null(s);
		else
			cr_assert_not_null(s, "%llu", (unsigned long long)n);
	}
	for (uint64_t n = 3; n <= 100; n += 3)
		cr_assert_not_null(session_create(&table, id_of(n + 1000)));
	cr_assert_eq(table.count, 100);
	session_table_destroy(&table);
}

Test(session, lru_victim_is_least_recent_detached)
{
	struct session_table table;
	cr_assert_eq(session_table_init(&table, 4), 0);
	struct session *s[4];
	for (int i = 0; i < 4; i++)
		s[i] = session_create(&table, id_of((uint64_t)i + 1));
	cr_assert_eq(session_lru_victim(&table), s[0]);
	session_attach(&table, s[0], 77); /* connected: never a victim */
	cr_assert_eq(session_lru_victim(&table), s[1]);
	session_touch(&table, s[1]);
	cr_assert_eq(session_lru_victim(&table), s[2]);
	session_detach(&table, s[0]); /* most recent now */
	session_attach(&table, s[2], 78);
	session_attach(&table, s[3], 79);
	cr_assert_eq(session_lru_victim(&table), s[1]);
	session_attach(&table, s[1], 80);
	session_attach(&table, s[0], 81);
	cr_assert_null(session_lru_victim(&table));
	session_table_destroy(&table);
}

/* ---- Through the service, with a real log ------------------------------ */

struct bed {
	char dir[64];
	struct service *service;
	struct log_writer *writer;
	uint64_t now;
};

static struct service_config bed_config(const char *dir, uint32_t sessions_max)
{
	struct service_config config;
	memset(&config, 0, sizeof(config));
	ledger_config_default(&config.ledger);
	config.ledger.batch_events_max = 64;
	config.sessions_max = sessions_max;
	config.events_max = 64;
	config.expire_batch = 16;
	config.query_limit = 16;
	config.query_scan = 1000;
	config.write_size_max = 64 * 1024;
	config.log_dir = dir;
	return config;
}

/* (Re)starts the service on bed->dir: recovery, then a writer. */
static void bed_start(struct bed *bed, uint32_t sessions_max)
{
	struct service_config config = bed_config(bed->dir, sessions_max);
	cr_assert_eq(service_create(&config, &bed->service), 0);
	struct recovery_summary summary;
	char message[512];
	cr_assert_eq(recovery_run(bed->service, bed->dir, &summary, message, sizeof(message)), 0,
	             "%s", message);
	struct log_writer_config writer_config = {
	        .dir = bed->dir,
	        .segment_size = 1 << 20,
	        .write_size_max = 64 * 1024,
	        .log_id = {0x5e55, 0x10},
	};
	cr_assert_eq(log_writer_init(&bed->writer, &writer_config, &summary.position), 0);
	service_start(bed->service, bed->writer, &summary.position, bed->now);
}

static void bed_stop(struct bed *bed)
{
	service_destroy(bed->service);
	log_writer_close(bed->writer);
}

static void bed_init(struct bed *bed, uint32_t sessions_max)
{
	memset(bed, 0, sizeof(*bed));
	snprintf(bed->dir, sizeof(bed->dir), "/tmp/skuld-session-XXXXXX");
	cr_assert_not_null(mkdtemp(bed->dir));
	bed->now = 1700000000000000000ull;
	bed_start(bed, sessions_max);
}

static void bed_fini(struct bed *bed)
{
	bed_stop(bed);
	DIR *dir = opendir(bed->dir);
	struct dirent *entry;
	while (dir != NULL && (entry = readdir(dir)) != NULL) {
		char path[512];
		if (entry->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", bed->dir, entry->d_name);
		unlink(path);
	}
	if (dir != NULL)
		closedir(dir);
	rmdir(bed->dir);
}

/* Seals and writes whatever is pending, synchronously. */
static void bed_commit(struct bed *bed)
{
	struct log_write write;
	int ret = service_seal(bed->service, &write);
	if (ret == -ENODATA)
		return;
	cr_assert_eq(ret, 0);
	cr_assert_eq(log_write_sync(bed->writer, &write), 0);
	service_durable(bed->service, &write, 1000);
}

struct frame {
	_Alignas(8) uint8_t bytes[SKULD_HEADER_SIZE + 64 * SKULD_EVENT_SIZE];
};

static const struct skuld_header *frame_header_of(const struct frame *frame)
{
	return (const struct skuld_header *)frame->bytes;
}

static void frame_seal(struct frame *frame, uint8_t operation, skuld_u128 client, uint64_t request,
                       uint32_t body_size, uint32_t count)
{
	struct skuld_header *header = (struct skuld_header *)frame->bytes;
	memset(header, 0, sizeof(*header));
	header->version = 1;
	header->operation = operation;
	header->request = request;
	header->client = client;
	header->body_size = body_size;
	header->count = count;
	proto_header_seal(header, frame->bytes + SKULD_HEADER_SIZE);
	cr_assert_eq(proto_header_check(header), SKULD_OK);
	cr_assert_eq(proto_body_check(header, frame->bytes + SKULD_HEADER_SIZE, NULL), SKULD_OK);
}

static enum service_outcome bed_frame(struct bed *bed, struct service_peer *peer, uint64_t owner,
                                      const struct frame *frame, struct service_reply *reply)
{
	bed->now += 1000;
	return service_frame(bed->service, peer, owner, bed->now, frame_header_of(frame),
	                     frame->bytes + SKULD_HEADER_SIZE, reply);
}

/* REGISTER; returns request_next. */
static uint64_t bed_register(struct bed *bed, struct service_peer *peer, uint64_t owner,
                             skuld_u128 client)
{
	struct frame frame;
	struct skuld_register_request *request =
	        (struct skuld_register_request *)(frame.bytes + SKULD_HEADER_SIZE);
	memset(request, 0, sizeof(*request));
	request->version_min = 1;
	request->version_max = 3;
	frame_seal(&frame, SKULD_OP_REGISTER, client, 0, sizeof(*request), 1);
	struct service_reply reply;
	cr_assert_eq(bed_frame(bed, peer, owner, &frame, &reply), SERVICE_REPLY);
	const struct skuld_header *header = (const struct skuld_header *)reply.data;
	cr_assert_eq(header->operation, SKULD_OP_REGISTER, "got %s",
	             skuld_operation_name(header->operation));
	const struct skuld_register_reply *body =
	        (const struct skuld_register_reply *)(reply.data + SKULD_HEADER_SIZE);
	cr_assert_eq(body->version, 1);
	cr_assert_eq(body->events_max, 64);
	return body->request_next;
}

/* A SUBMIT of one RECEIVE-free event: an ITEM_DEFINE with a unique key, so
 * the status tells whether it was applied (OK) or seen before (ITEM_EXISTS
 * without REPLAYED would mean a second application). */
static void submit_make(struct frame *frame, skuld_u128 client, uint64_t request, uint32_t item)
{
	struct skuld_event *event = (struct skuld_event *)(frame->bytes + SKULD_HEADER_SIZE);
	memset(event, 0, sizeof(*event));
	event->kind = SKULD_ITEM_DEFINE;
	event->key.lo = item;
	event->key.hi = 42;
	event->item = item;
	snprintf(event->code, sizeof(event->code), "SKU-%u", item);
	frame_seal(frame, SKULD_OP_SUBMIT, client, request, sizeof(*event), 1);
}

static struct skuld_result reply_result(const struct service_reply *reply)
{
	const struct skuld_header *header = (const struct skuld_header *)reply->data;
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT, "got %s (%s)",
	             skuld_operation_name(header->operation), skuld_status_name(header->result));
	cr_assert_eq(header->count, 1);
	struct skuld_result result;
	memcpy(&result, reply->data + SKULD_HEADER_SIZE, sizeof(result));
	return result;
}

static uint32_t reply_error(const struct service_reply *reply)
{
	const struct skuld_header *header = (const struct skuld_header *)reply->data;
	cr_assert_eq(header->operation, SKULD_OP_ERROR);
	cr_assert(reply->close);
	return header->result;
}

Test(session, request_numbers_and_retry_with_saved_reply)
{
	struct bed bed;
	bed_init(&bed, 8);
	skuld_u128 client = id_of(1);
	struct service_peer peer = {0};
	cr_assert_eq(bed_register(&bed, &peer, 1, client), 1);
	struct frame frame;
	struct service_reply reply;

	submit_make(&frame, client, 1, 10);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_result(&reply).status, SKULD_OK);
	cr_assert_eq(reply.tag, service_durable_write(bed.service) + 1, "tagged with its write");

	/* The retry of request 1 before its write is durable must wait. */
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_WAIT_DURABLE);
	bed_commit(&bed);
	cr_assert_geq(service_durable_write(bed.service), reply.wait_write);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	struct skuld_result result = reply_result(&reply);
	cr_assert_eq(result.status, SKULD_OK, "saved reply, not a second ITEM_EXISTS");
	cr_assert_eq(result.flags & SKULD_RESULT_REPLAYED, 0);
	cr_assert_eq(service_stats(bed.service)->requests, 1);
	cr_assert_eq(service_stats(bed.service)->requests_retried, 1);

	/* Anything but last or next is refused. */
	submit_make(&frame, client, 3, 11);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_error(&reply), SKULD_ERR_REQUEST);
	submit_make(&frame, client, 0, 11);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_error(&reply), SKULD_ERR_REQUEST);

	submit_make(&frame, client, 2, 11);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_result(&reply).status, SKULD_OK);
	bed_commit(&bed);

	/* Restart: the session and its saved reply come back from the log. */
	service_peer_close(bed.service, &peer, 1);
	bed_stop(&bed);
	bed_start(&bed, 8);
	struct service_peer again = {0};
	cr_assert_eq(bed_register(&bed, &again, 2, client), 3);
	submit_make(&frame, client, 2, 11);
	cr_assert_eq(bed_frame(&bed, &again, 2, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_result(&reply).status, SKULD_OK);
	cr_assert_eq(reply_result(&reply).flags, 0);
	bed_fini(&bed);
}

Test(session, frames_before_register_and_second_register_are_refused)
{
	struct bed bed;
	bed_init(&bed, 8);
	skuld_u128 client = id_of(2);
	struct service_peer peer = {0};
	struct frame frame;
	struct service_reply reply;
	submit_make(&frame, client, 1, 10);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_error(&reply), SKULD_ERR_NOT_REGISTERED);
	bed_register(&bed, &peer, 1, client);
	struct skuld_register_request *request =
	        (struct skuld_register_request *)(frame.bytes + SKULD_HEADER_SIZE);
	memset(request, 0, sizeof(*request));
	request->version_min = 1;
	request->version_max = 1;
	frame_seal(&frame, SKULD_OP_REGISTER, client, 0, sizeof(*request), 1);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_error(&reply), SKULD_ERR_REQUEST);
	/* Another client id on a registered connection. */
	submit_make(&frame, id_of(3), 1, 10);
	cr_assert_eq(bed_frame(&bed, &peer, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_error(&reply), SKULD_ERR_CLIENT);
	bed_fini(&bed);
}

Test(session, lru_eviction_is_logged_and_replayed)
{
	struct bed bed;
	bed_init(&bed, 2);
	struct frame frame;
	struct service_reply reply;
	/* Clients 1 and 2 apply a request each and disconnect. */
	for (uint64_t n = 1; n <= 2; n++) {
		struct service_peer peer = {0};
		bed_register(&bed, &peer, n, id_of(n));
		submit_make(&frame, id_of(n), 1, (uint32_t)(100 + n));
		cr_assert_eq(bed_frame(&bed, &peer, n, &frame, &reply), SERVICE_REPLY);
		service_peer_close(bed.service, &peer, n);
	}
	/* Client 3 needs a slot: client 1 (least recent) is evicted. */
	struct service_peer third = {0};
	cr_assert_eq(bed_register(&bed, &third, 3, id_of(3)), 1);
	bed_commit(&bed);
	struct service_peer peer = {0};
	cr_assert_eq(bed_register(&bed, &peer, 4, id_of(2)), 2, "client 2 kept its session");
	/* Table: 2 (attached), 3 (attached): a fourth client finds no victim. */
	struct service_peer fourth = {0};
	struct frame reg;
	struct skuld_register_request *request =
	        (struct skuld_register_request *)(reg.bytes + SKULD_HEADER_SIZE);
	memset(request, 0, sizeof(*request));
	request->version_min = 1;
	request->version_max = 1;
	frame_seal(&reg, SKULD_OP_REGISTER, id_of(4), 0, sizeof(*request), 1);
	cr_assert_eq(bed_frame(&bed, &fourth, 5, &reg, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_error(&reply), SKULD_ERR_BUSY);
	service_peer_close(bed.service, &peer, 4);
	service_peer_close(bed.service, &third, 3);
	bed_commit(&bed);

	/* After a restart client 1 is still gone (the eviction record), and
	 * client 2 remembers its request. */
	bed_stop(&bed);
	bed_start(&bed, 2);
	struct service_peer one = {0};
	cr_assert_eq(bed_register(&bed, &one, 6, id_of(2)), 2);
	struct service_peer other = {0};
	cr_assert_eq(bed_register(&bed, &other, 7, id_of(1)), 1, "client 1 was evicted");
	bed_fini(&bed);
}

Test(session, reconnect_takes_the_session_over)
{
	struct bed bed;
	bed_init(&bed, 4);
	skuld_u128 client = id_of(9);
	struct service_peer old = {0};
	bed_register(&bed, &old, 1, client);
	struct frame frame;
	struct service_reply reply;
	submit_make(&frame, client, 1, 50);
	cr_assert_eq(bed_frame(&bed, &old, 1, &frame, &reply), SERVICE_REPLY);
	bed_commit(&bed);

	struct service_peer fresh = {0};
	struct frame reg;
	struct skuld_register_request *request =
	        (struct skuld_register_request *)(reg.bytes + SKULD_HEADER_SIZE);
	memset(request, 0, sizeof(*request));
	request->version_min = 1;
	request->version_max = 1;
	frame_seal(&reg, SKULD_OP_REGISTER, client, 0, sizeof(*request), 1);
	cr_assert_eq(bed_frame(&bed, &fresh, 2, &reg, &reply), SERVICE_REPLY);
	cr_assert_eq(reply.takeover, 1, "the old connection is to be closed");
	/* The old connection may not use the session any more. */
	submit_make(&frame, client, 2, 51);
	cr_assert_eq(bed_frame(&bed, &old, 1, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_error(&reply), SKULD_ERR_REQUEST);
	service_peer_close(bed.service, &old, 1); /* must not detach the new owner */
	cr_assert_eq(bed_frame(&bed, &fresh, 2, &frame, &reply), SERVICE_REPLY);
	cr_assert_eq(reply_result(&reply).status, SKULD_OK);
	bed_fini(&bed);
}
