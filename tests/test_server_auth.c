/*
 * test_server_auth.c — tokens and roles through the real server: each role's
 * allowed and denied events and reads, a wrong token, a till token used for
 * another location, a binding to a location defined after REGISTER, a
 * refused request surviving a restart (replay), a configuration readable by
 * others refused at start-up, and the single `token` of older
 * configurations.
 */
#include <criterion/criterion.h>

#include <sys/stat.h>

#include "server_harness.h"

#define ADMIN_SECRET "admin-secret-0123456789"
#define TILL1_SECRET "till-one-secret-0123456789"
#define TILL2_SECRET "till-two-secret-0123456789"
#define GATE_SECRET  "gateway-secret-0123456789"
#define PUSH_SECRET  "push-secret-0123456789"
#define READ_SECRET  "read-secret-0123456789"

#define TOKENS                                                                                     \
	"token.admin = " ADMIN_SECRET " admin\n"                                                   \
	"token.till1 = " TILL1_SECRET " till location=STORE-1\n"                                   \
	"token.till2 = " TILL2_SECRET " till location=2\n"                                         \
	"token.web-gateway = " GATE_SECRET " gateway channel=web\n"                                \
	"token.web-push = " PUSH_SECRET " push channel=web\n"                                      \
	"token.audit = " READ_SECRET " read\n"

/* Connects and registers with token. Returns 0, or -1 with the ERROR
 * status in *error (0 when the connection failed otherwise). */
static int token_open(struct client *client, uint16_t port, uint64_t seed, const char *token,
                      uint32_t *error)
{
	memset(client, 0, sizeof(*client));
	*error = 0;
	client->id = client_id(seed);
	client->fd = socket_connect(port);
	cr_assert_geq(client->fd, 0);
	struct skuld_register_request request;
	memset(&request, 0, sizeof(request));
	request.version_min = 1;
	request.version_max = 1;
	memcpy(request.token, token, strlen(token));
	snprintf(request.client_name, sizeof(request.client_name), "auth-test");
	static struct reply reply;
	if (frame_send(client->fd, SKULD_OP_REGISTER, client->id, 0, 1, &request, sizeof(request),
	               1) != 0 ||
	    frame_read(client->fd, &reply) != 0) {
		client_close(client);
		return -1;
	}
	if (reply_header(&reply)->operation != SKULD_OP_REGISTER) {
		*error = reply_header(&reply)->result;
		client_close(client);
		return -1;
	}
	const struct skuld_register_reply *body = reply_body(&reply);
	client->request_next = body->request_next;
	client->version = body->version;
	return 0;
}

static void open_ok(struct client *client, uint16_t port, uint64_t seed, const char *token)
{
	uint32_t error = 0;
	cr_assert_eq(token_open(client, port, seed, token, &error), 0, "register: status %u",
	             error);
}

/* One event; returns its status. */
static uint16_t submit_one(struct client *client, struct skuld_event event)
{
	struct skuld_result result;
	uint32_t error = 0;
	cr_assert_eq(client_submit(client, &event, 1, &result, &error), 0, "error frame %u", error);
	return result.status;
}

/* A read the role may not do: an ERROR frame ERR_DENIED, then EOF. */
static void read_denied(struct client *client, uint8_t operation, const void *body, uint32_t size)
{
	static struct reply reply;
	cr_assert_eq(frame_send(client->fd, operation, client->id, 0, client->version, body, size,
	                        size > 0 ? 1 : 0),
	             0);
	cr_assert_eq(frame_read(client->fd, &reply), 0);
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_ERROR);
	cr_assert_eq(reply_header(&reply)->result, SKULD_ERR_DENIED);
	cr_assert_eq(frame_read(client->fd, &reply), -1, "the connection closes");
	client_close(client);
}

static struct skuld_event channel_define(uint32_t channel, const char *name, uint64_t key)
{
	struct skuld_event event = event_make(SKULD_CHANNEL_DEFINE, key, 5);
	event.channel = channel;
	snprintf(event.code, sizeof(event.code), "%s", name);
	return event;
}

static struct skuld_event channel_pool(uint32_t channel, uint32_t location, uint64_t key)
{
	struct skuld_event event = event_make(SKULD_CHANNEL_POOL, key, 6);
	event.channel = channel;
	event.location = location;
	return event;
}

static struct skuld_event reserve_channel(uint64_t hold, uint32_t item, uint32_t channel,
                                          uint64_t key)
{
	struct skuld_event event = event_make(SKULD_RESERVE, key, 7);
	event.id = hold;
	event.item = item;
	event.channel = channel;
	event.quantity = 1;
	event.ttl_s = 600;
	return event;
}

static struct skuld_event push_ack(uint32_t channel, uint32_t item, uint64_t key)
{
	struct skuld_event event = event_make(SKULD_PUSH_ACK, key, 8);
	event.channel = channel;
	event.item = item;
	event.id = 1;
	event.quantity = 1;
	return event;
}

static struct skuld_event adjust(uint32_t item, uint32_t location, int64_t quantity, uint64_t key)
{
	struct skuld_event event = event_stock(SKULD_ADJUST, item, location, quantity, key);
	event.reason = SKULD_REASON_CORRECTION;
	return event;
}

static void server_secure_init(struct server *server, const char *config)
{
	server_init(server, config);
	cr_assert_eq(chmod(server->config, 0600), 0);
}

/* Items 1, 2; STORE-1 and STORE-2 with 100 of each; channel 1 "web" over
 * STORE-1, channel 2 "other" over STORE-2; hold 900 on "other". */
static void catalog_define(struct client *admin)
{
	struct skuld_event events[] = {
	        event_item(1, 1),
	        event_item(2, 2),
	        event_location(1, 3),
	        event_location(2, 4),
	        event_stock(SKULD_RECEIVE, 1, 1, 100, 5),
	        event_stock(SKULD_RECEIVE, 1, 2, 100, 6),
	        channel_define(1, "web", 7),
	        channel_pool(1, 1, 8),
	        channel_define(2, "other", 9),
	        channel_pool(2, 2, 10),
	        reserve_channel(900, 1, 2, 11),
	};
	uint32_t count = sizeof(events) / sizeof(events[0]);
	struct skuld_result results[16];
	cr_assert_eq(client_submit(admin, events, count, results, NULL), 0);
	for (uint32_t i = 0; i < count; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: %s", i,
		             skuld_status_name(results[i].status));
}

Test(server_auth, wrong_token_and_no_token_are_refused)
{
	struct server server;
	server_secure_init(&server, TOKENS);
	server_start(&server);
	struct client client;
	uint32_t error = 0;
	cr_assert_eq(token_open(&client, server.port, 1, "no-such-secret-0123456789", &error), -1);
	cr_assert_eq(error, SKULD_ERR_TOKEN);
	cr_assert_eq(token_open(&client, server.port, 2, "", &error), -1);
	cr_assert_eq(error, SKULD_ERR_TOKEN);
	/* A prefix of a real secret is not it. */
	cr_assert_eq(token_open(&client, server.port, 3, "admin-secret-012345678", &error), -1);
	cr_assert_eq(error, SKULD_ERR_TOKEN);
	open_ok(&client, server.port, 4, ADMIN_SECRET);
	client_close(&client);
	server_fini(&server);
}

Test(server_auth, till_posts_at_its_location_only)
{
	struct server server;
	server_secure_init(&server, TOKENS);
	server_start(&server);
	/* Registered before its location STORE-1 is defined: bound by code,
	 * resolved when the first event needs it. */
	struct client till;
	open_ok(&till, server.port, 10, TILL1_SECRET);
	cr_assert_eq(submit_one(&till, event_stock(SKULD_SALE, 1, 1, 1, 100)), SKULD_DENIED);
	struct client admin;
	open_ok(&admin, server.port, 11, ADMIN_SECRET);
	catalog_define(&admin);

	cr_assert_eq(submit_one(&till, event_stock(SKULD_SALE, 1, 1, 2, 101)), SKULD_OK);
	cr_assert_eq(submit_one(&till, event_stock(SKULD_RETURN, 1, 1, 1, 102)), SKULD_OK);
	struct skuld_event count = event_stock(SKULD_COUNT_OPEN, 1, 1, 0, 103);
	count.id = 5;
	cr_assert_eq(submit_one(&till, count), SKULD_OK);
	/* Another location, and kinds a till may not post. */
	cr_assert_eq(submit_one(&till, event_stock(SKULD_SALE, 1, 2, 1, 104)), SKULD_DENIED);
	cr_assert_eq(submit_one(&till, event_stock(SKULD_RECEIVE, 1, 1, 5, 105)), SKULD_DENIED);
	cr_assert_eq(submit_one(&till, adjust(1, 1, 5, 106)), SKULD_DENIED);
	cr_assert_eq(submit_one(&till, event_item(3, 107)), SKULD_DENIED);
	cr_assert_eq(submit_one(&till, event_hold(SKULD_RELEASE, 900, 108)), SKULD_DENIED);
	/* A request with one denied event applies nothing. */
	struct skuld_event mixed[] = {event_stock(SKULD_SALE, 1, 1, 3, 109),
	                              event_stock(SKULD_SALE, 1, 2, 3, 110)};
	struct skuld_result results[2];
	cr_assert_eq(client_submit(&till, mixed, 2, results, NULL), 0);
	cr_assert_eq(results[0].status, SKULD_LINKED_FAILED);
	cr_assert_eq(results[1].status, SKULD_DENIED);
	/* The till reads. */
	struct skuld_level_record level = client_level(&till, 1, 1);
	cr_assert_eq(level.on_hand, 99);
	cr_assert_eq(client_level(&till, 1, 2).on_hand, 100);

	/* till2 is bound to location id 2: STORE-1 is another location. */
	struct client till2;
	open_ok(&till2, server.port, 12, TILL2_SECRET);
	cr_assert_eq(submit_one(&till2, event_stock(SKULD_SALE, 1, 1, 1, 111)), SKULD_DENIED);
	cr_assert_eq(submit_one(&till2, event_stock(SKULD_SALE, 1, 2, 1, 112)), SKULD_OK);

	/* The refused requests are in the log; recovery (a crash: no snapshot
	 * at shutdown) replays around them. */
	client_close(&till);
	client_close(&till2);
	client_close(&admin);
	server_kill(&server);
	server_start(&server);
	open_ok(&admin, server.port, 11, ADMIN_SECRET);
	cr_assert_eq(client_level(&admin, 1, 1).on_hand, 99);
	cr_assert_eq(client_level(&admin, 1, 2).on_hand, 99);
	/* The retried refused request gets the saved reply. */
	open_ok(&till, server.port, 10, TILL1_SECRET);
	cr_assert_eq(client_submit_send(&till, till.request_next - 1, mixed, 2), 0);
	static struct reply reply;
	cr_assert_eq(frame_read(till.fd, &reply), 0);
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_SUBMIT);
	const struct skuld_result *saved = reply_body(&reply);
	cr_assert_eq(saved[0].status, SKULD_LINKED_FAILED);
	cr_assert_eq(saved[1].status, SKULD_DENIED);
	client_close(&till);
	client_close(&admin);
	server_fini(&server);
}

Test(server_auth, gateway_holds_and_sales_of_its_channel)
{
	struct server server;
	server_secure_init(&server, TOKENS);
	server_start(&server);
	struct client admin;
	open_ok(&admin, server.port, 20, ADMIN_SECRET);
	catalog_define(&admin);
	struct client gateway;
	open_ok(&gateway, server.port, 21, GATE_SECRET);
	cr_assert_eq(submit_one(&gateway, reserve_channel(1, 1, 1, 200)), SKULD_OK);
	cr_assert_eq(submit_one(&gateway, event_hold(SKULD_COMMIT, 1, 201)), SKULD_OK);
	cr_assert_eq(submit_one(&gateway, reserve_channel(2, 1, 1, 202)), SKULD_OK);
	cr_assert_eq(submit_one(&gateway, event_hold(SKULD_RELEASE, 2, 203)), SKULD_OK);
	/* Reserve and commit in one request. */
	struct skuld_event both[] = {reserve_channel(3, 1, 1, 204),
	                             event_hold(SKULD_COMMIT, 3, 205)};
	struct skuld_result results[2];
	cr_assert_eq(client_submit(&gateway, both, 2, results, NULL), 0);
	cr_assert_eq(results[0].status, SKULD_OK);
	cr_assert_eq(results[1].status, SKULD_OK);
	/* Another channel's pool and hold, a location hold, stock changes. */
	cr_assert_eq(submit_one(&gateway, reserve_channel(4, 1, 2, 206)), SKULD_DENIED);
	cr_assert_eq(submit_one(&gateway, event_hold(SKULD_RELEASE, 900, 207)), SKULD_DENIED);
	cr_assert_eq(submit_one(&gateway, event_hold(SKULD_COMMIT, 900, 208)), SKULD_DENIED);
	struct skuld_event location_hold = reserve_channel(5, 1, 0, 209);
	location_hold.location = 1;
	cr_assert_eq(submit_one(&gateway, location_hold), SKULD_DENIED);
	cr_assert_eq(submit_one(&gateway, adjust(1, 1, 5, 210)), SKULD_DENIED);
	/* Channel orders: a SALE in its pool, not elsewhere. */
	cr_assert_eq(submit_one(&gateway, event_stock(SKULD_SALE, 1, 1, 1, 211)), SKULD_OK);
	cr_assert_eq(submit_one(&gateway, event_stock(SKULD_RETURN, 1, 1, 1, 212)), SKULD_OK);
	cr_assert_eq(submit_one(&gateway, event_stock(SKULD_SALE, 1, 2, 1, 213)), SKULD_DENIED);
	struct skuld_level_record level = client_level(&gateway, 1, 1);
	cr_assert_eq(level.on_hand, 100); /* a sale and its return */
	cr_assert_eq(level.committed, 2); /* holds 1 and 3 */
	cr_assert_eq(level.reserved, 0);
	client_close(&gateway);
	client_close(&admin);
	server_fini(&server);
}

Test(server_auth, push_acknowledges_and_reads_its_channel_only)
{
	struct server server;
	server_secure_init(&server, TOKENS);
	server_start(&server);
	struct client admin;
	open_ok(&admin, server.port, 30, ADMIN_SECRET);
	catalog_define(&admin);
	struct client push;
	open_ok(&push, server.port, 31, PUSH_SECRET);
	uint16_t status = submit_one(&push, push_ack(1, 1, 300));
	cr_assert(status != SKULD_DENIED && status != SKULD_LINKED_FAILED, "%s",
	          skuld_status_name(status));
	cr_assert_eq(submit_one(&push, push_ack(2, 1, 301)), SKULD_DENIED);
	cr_assert_eq(submit_one(&push, event_stock(SKULD_SALE, 1, 1, 1, 302)), SKULD_DENIED);
	cr_assert_eq(submit_one(&push, reserve_channel(6, 1, 1, 303)), SKULD_DENIED);
	struct skuld_query dirty = {.kind = SKULD_QUERY_PUSH, .channel = 1};
	uint8_t records[64 * 8];
	cr_assert_geq(client_query(&push, &dirty, records, 8), 0);
	struct skuld_stats stats;
	cr_assert_eq(client_stats(&push, &stats), 0);
	struct skuld_query theirs = {.kind = SKULD_QUERY_PUSH, .channel = 2};
	read_denied(&push, SKULD_OP_QUERY, &theirs, sizeof(theirs));
	open_ok(&push, server.port, 31, PUSH_SECRET);
	struct skuld_query level = {.kind = SKULD_QUERY_LEVEL, .item = 1, .location = 1};
	read_denied(&push, SKULD_OP_QUERY, &level, sizeof(level));
	client_close(&admin);
	server_fini(&server);
}

Test(server_auth, read_only_reads_and_admin_does_everything)
{
	struct server server;
	server_secure_init(&server, TOKENS);
	server_start(&server);
	struct client admin;
	open_ok(&admin, server.port, 40, ADMIN_SECRET);
	catalog_define(&admin);
	cr_assert_eq(submit_one(&admin, adjust(1, 2, -3, 400)), SKULD_OK);
	cr_assert_eq(submit_one(&admin, event_hold(SKULD_RELEASE, 900, 401)), SKULD_OK);
	struct client audit;
	open_ok(&audit, server.port, 41, READ_SECRET);
	cr_assert_eq(client_level(&audit, 1, 2).on_hand, 97);
	struct skuld_stats stats;
	cr_assert_eq(client_stats(&audit, &stats), 0);
	cr_assert_eq(submit_one(&audit, event_stock(SKULD_SALE, 1, 1, 1, 402)), SKULD_DENIED);
	cr_assert_eq(submit_one(&audit, event_item(9, 403)), SKULD_DENIED);
	cr_assert_eq(client_level(&audit, 1, 1).on_hand, 100);
	client_close(&audit);
	client_close(&admin);
	server_fini(&server);
}

/* Runs skuld on server's directory to its exit; returns the exit status
 * and its stderr in text. */
static int server_run_to_exit(struct server *server, char *text, size_t size)
{
	int err[2];
	cr_assert_eq(pipe(err), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(err[1], STDERR_FILENO);
		close(err[0]);
		close(err[1]);
		char data_dir[80];
		snprintf(data_dir, sizeof(data_dir), "%s/data", server->dir);
		execl(SKULD_BINARY_DIR "/server/skuld", "skuld", "--listen", "127.0.0.1:0",
		      "--data-dir", data_dir, "--config", server->config, (char *)NULL);
		_exit(98);
	}
	close(err[1]);
	server->pid = pid;
	size_t have = 0;
	ssize_t got;
	while (have + 1 < size && (got = read(err[0], text + have, size - 1 - have)) > 0)
		have += (size_t)got;
	text[have] = '\0';
	close(err[0]);
	int status = server_wait(server);
	server->pid = 0;
	return status;
}

Test(server_auth, config_with_tokens_readable_by_others_is_refused)
{
	static const mode_t modes[] = {0644, 0640, 0604, 0660};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct server server;
		server_init(&server, "token.admin = " ADMIN_SECRET " admin\n");
		cr_assert_eq(chmod(server.config, modes[i]), 0);
		char text[1024];
		cr_assert_eq(server_run_to_exit(&server, text, sizeof(text)), 1, "mode %o: %s",
		             modes[i], text);
		cr_assert(strstr(text, "readable by others") != NULL, "%s", text);
		server_fini(&server);
	}
	/* The single token counts as a token too. */
	struct server server;
	server_init(&server, "token = old-style-secret\n");
	char text[1024];
	cr_assert_eq(server_run_to_exit(&server, text, sizeof(text)), 1, "%s", text);
	cr_assert(strstr(text, "readable by others") != NULL, "%s", text);
	server_fini(&server);
	/* Without tokens the mode is not checked, and the server warns. */
	server_init(&server, "connections_max = 16\n");
	server_start(&server);
	cr_assert_eq(server_stop(&server), 0);
	server_fini(&server);
}

Test(server_auth, single_token_of_older_configurations_is_admin)
{
	struct server server;
	server_secure_init(&server, "token = old-style-secret\n");
	server_start(&server);
	struct client client;
	uint32_t error = 0;
	cr_assert_eq(token_open(&client, server.port, 50, "old-style-secre", &error), -1);
	cr_assert_eq(error, SKULD_ERR_TOKEN);
	open_ok(&client, server.port, 51, "old-style-secret");
	catalog_define(&client);
	cr_assert_eq(submit_one(&client, adjust(1, 1, 5, 500)), SKULD_OK);
	cr_assert_eq(client_level(&client, 1, 1).on_hand, 105);
	client_close(&client);
	server_fini(&server);
}
