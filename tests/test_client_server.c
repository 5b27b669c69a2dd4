/*
 * test_client_server.c — libskuld against the real skuld binary: every call,
 * deadlines (a SIGSTOPped server), exactly-once retry when a reply is lost
 * (through a proxy that swallows it) and when the server is killed and
 * restarted between send and reply, merging of concurrent callers, and the
 * disconnected state.
 *
 * Each test starts its own server on a free 127.0.0.1 port below the
 * ephemeral range (port_pick) in a mkdtemp directory, restarts it on that
 * port when it needs a restart, and kills it on every path (the Criterion
 * fini hook, and atexit for asserts). Every wait is bounded.
 */
#include <criterion/criterion.h>

#include <skuld/skuld.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN          "till-token"
#define START_WAIT_MS  15000
#define ITEM           1
#define STORE          1
#define WAIT_STEPS_MAX 2000 /* x 10 ms */

/* ---- The server process ---------------------------------------------------- */

struct server {
	pid_t pid;
	uint16_t port;
	char directory[128];
	char address[64];
};

static struct server the_server;

static uint64_t now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned milliseconds)
{
	struct timespec pause = {.tv_sec = milliseconds / 1000u,
	                         .tv_nsec = (long)(milliseconds % 1000u) * 1000000L};

	nanosleep(&pause, NULL);
}

static void server_kill(struct server *server)
{
	if (server->pid > 0) {
		kill(server->pid, SIGCONT);
		kill(server->pid, SIGKILL);
		waitpid(server->pid, NULL, 0);
		server->pid = 0;
	}
}

static void cleanup_at_exit(void)
{
	server_kill(&the_server);
}

/* Starts skuld on port (0: any) with the data in server->directory. Returns
 * 0, or -1 with why the server did not start in why (its stderr). */
static int server_try_start(struct server *server, uint16_t port, char *why, size_t why_size)
{
	char binary[512], listen[64], data[256], config[256], line[256];
	int out[2];
	size_t used = 0;
	uint64_t deadline = now_ms() + START_WAIT_MS;
	FILE *file;

	if (server->directory[0] == '\0') {
		strcpy(server->directory, "/tmp/skuld-client-test-XXXXXX");
		cr_assert_not_null(mkdtemp(server->directory));
		atexit(cleanup_at_exit);
	}
	snprintf(binary, sizeof(binary), "%s/server/skuld", SKULD_BINARY_DIR);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(data, sizeof(data), "%s/data", server->directory);
	snprintf(config, sizeof(config), "%s/skuld.conf", server->directory);
	file = fopen(config, "w");
	cr_assert_not_null(file);
	/* A file that holds a token must not be readable by others. */
	cr_assert_eq(fchmod(fileno(file), 0600), 0);
	fprintf(file, "token = %s\n", TOKEN);
	fclose(file);
	cr_assert_eq(pipe(out), 0);
	server->pid = fork();
	cr_assert(server->pid >= 0);
	if (server->pid == 0) {
		char log[256];
		int log_fd;

		snprintf(log, sizeof(log), "%s/skuld.log", server->directory);
		log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (log_fd >= 0)
			dup2(log_fd, STDERR_FILENO);
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		execl(binary, binary, "--listen", listen, "--data-dir", data, "--config", config,
		      (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* Read until "skuld: listening on 127.0.0.1:PORT\n". */
	int read_error = 0;
	while (now_ms() < deadline && used + 1 < sizeof(line)) {
		struct pollfd fd = {.fd = out[0], .events = POLLIN};
		ssize_t n;

		if (poll(&fd, 1, 100) <= 0)
			continue;
		n = read(out[0], line + used, sizeof(line) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			read_error = n < 0 ? errno : 0;
			break;
		}
		used += (size_t)n;
		line[used] = '\0';
		if (strchr(line, '\n') != NULL)
			break;
	}
	close(out[0]);
	line[used] = '\0';
	unsigned parsed = 0;
	if (sscanf(line, "skuld: listening on 127.0.0.1:%u", &parsed) != 1) {
		char log[256], text[2048] = "";
		snprintf(log, sizeof(log), "%s/skuld.log", server->directory);
		FILE *stderr_file = fopen(log, "r");
		if (stderr_file != NULL) {
			size_t length = fread(text, 1, sizeof(text) - 1, stderr_file);
			text[length] = '\0';
			fclose(stderr_file);
		}
		snprintf(why, why_size, "'%s' (read: %s); its stderr:\n%s", line,
		         read_error ? strerror(read_error) : "end of file or time-out", text);
		server_kill(server);
		return -1;
	}
	server->port = (uint16_t)parsed;
	snprintf(server->address, sizeof(server->address), "127.0.0.1:%u", server->port);
	return 0;
}

/* Starts skuld, on the port it had when restarting one. A SIGKILLed server's
 * listening socket can outlive its process for a moment (the kernel tears
 * down its io_uring, which holds the socket, in the background; slower when
 * the machine is busy), so a restart on the same port retries while the
 * address is still in use. */
static void server_start(struct server *server, uint16_t port)
{
	char why[2560];
	uint64_t deadline = now_ms() + START_WAIT_MS;

	for (int attempt = 0; attempt < 150; attempt++) {
		if (server_try_start(server, port, why, sizeof(why)) == 0)
			return;
		if (port == 0 || strstr(why, "Address already in use") == NULL ||
		    now_ms() >= deadline)
			break;
		cr_log_info("port %u still in use by the killed server; retrying", port);
		sleep_ms(100);
	}
	cr_assert_fail("server did not start: %s", why);
}

static void server_fini(void)
{
	server_kill(&the_server);
	if (the_server.directory[0] != '\0') {
		char command[256];

		snprintf(command, sizeof(command), "rm -rf '%s'", the_server.directory);
		if (system(command) != 0)
			cr_log_warn("could not remove %s", the_server.directory);
	}
	memset(&the_server, 0, sizeof(the_server));
}

/* A free port below the kernel's ephemeral range (32768 and up by default).
 * Tests restart the server on the same port while the client keeps
 * reconnecting; with an ephemeral port, the client's own source port could
 * take it in the meantime. */
static uint16_t port_pick(void)
{
	uint64_t seed = now_ms() ^ (uint64_t)getpid() << 20;
	for (int attempt = 0; attempt < 200; attempt++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint16_t port = (uint16_t)(20000 + (seed >> 33) % 12000);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
		address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int bound = fd >= 0 && bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0;
		if (fd >= 0)
			close(fd);
		if (bound)
			return port;
	}
	cr_assert_fail("no free port in 20000..31999");
	return 0;
}

static void server_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	memset(&the_server, 0, sizeof(the_server));
	server_start(&the_server, port_pick());
}

TestSuite(client_server, .init = server_init, .fini = server_fini, .timeout = 120);

/* ---- Client helpers -------------------------------------------------------- */

struct state_log {
	pthread_mutex_t lock;
	int seen[3];
};

static void on_state(void *context, skuld_state state, int error)
{
	struct state_log *log = context;

	(void)error;
	pthread_mutex_lock(&log->lock);
	log->seen[state]++;
	pthread_mutex_unlock(&log->lock);
}

static skuld_client *client_open(const char *address, const char *token, struct state_log *log)
{
	struct skuld_options options;
	skuld_client *client;
	int rc;

	skuld_options_init(&options);
	options.address = address;
	options.token = token;
	options.client_name = "test till";
	options.timeout_ms = 5000;
	options.reply_timeout_ms = 3000;
	options.reconnect_max_ms = 100;
	if (log != NULL) {
		options.on_state = on_state;
		options.context = log;
	}
	cr_assert_eq(skuld_client_create(&client, &options), 0);
	rc = skuld_client_connect(client, 5000);
	cr_assert_eq(rc, 0, "connect: %s", skuld_strerror(rc));
	return client;
}

/* Submits and asserts the call (not the events) succeeded. */
static void submit_ok(skuld_client *client, const struct skuld_event *events, uint32_t count,
                      struct skuld_result *results)
{
	int rc = skuld_submit(client, events, count, results, NULL, 5000);

	cr_assert_eq(rc, 0, "submit: %s", skuld_strerror(rc));
}

/* ITEM-1 at STORE-1 with quantity on hand. */
static void catalog_setup(skuld_client *client, int64_t quantity)
{
	struct skuld_event events[3];
	struct skuld_result results[3];

	cr_assert_eq(skuld_event_item_define(&events[0], skuld_key("setup", "catalog", 1, "item"),
	                                     ITEM, "ITEM-1", 0),
	             0);
	cr_assert_eq(skuld_event_location_define(&events[1],
	                                         skuld_key("setup", "catalog", 2, "location"),
	                                         STORE, "STORE-1"),
	             0);
	skuld_event_receive(&events[2], skuld_key("setup", "delivery", 1, "receive"), ITEM, STORE,
	                    quantity);
	submit_ok(client, events, 3, results);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "setup %d: %s", i,
		             skuld_strerror(results[i].status));
}

static int64_t on_hand(skuld_client *client)
{
	struct skuld_level_record level;
	int rc = skuld_query_level(client, ITEM, STORE, &level, 5000);

	cr_assert_eq(rc, 0, "query: %s", skuld_strerror(rc));
	cr_assert_eq(level.status, SKULD_OK);
	return level.on_hand;
}

static void wait_for_state(skuld_client *client, skuld_state state)
{
	for (int step = 0; step < WAIT_STEPS_MAX && skuld_client_state(client) != state; step++)
		sleep_ms(10);
	cr_assert_eq(skuld_client_state(client), state, "state %s, wanted %s",
	             skuld_state_name(skuld_client_state(client)), skuld_state_name(state));
}

/* ---- Every call ------------------------------------------------------------ */

Test(client_server, every_call)
{
	skuld_client *client = client_open(the_server.address, TOKEN, NULL);
	struct skuld_client_info info;
	struct skuld_event events[4];
	struct skuld_result results[4];
	struct skuld_lookup_match matches[4];
	struct skuld_lookup_match match;
	struct skuld_hold_record hold;
	struct skuld_stats stats;
	union skuld_query_record records[8];
	struct skuld_query query = {.kind = SKULD_QUERY_LOCATION_LEVELS, .location = STORE};
	uint32_t count = 0;
	uint32_t item = 0;

	cr_assert_eq(skuld_client_state(client), SKULD_STATE_CONNECTED);
	skuld_client_info(client, &info);
	cr_assert_eq(info.version, 1);
	cr_assert(info.events_max > 0 && info.request_next >= 1);
	cr_assert_eq(skuld_ping(client, 2000), 0);
	catalog_setup(client, 10);

	/* A sale, then a reserve / commit and a reserve / release. */
	skuld_event_sale(&events[0], skuld_key("till-1", "R-1", 1, "sale"), ITEM, STORE, 3);
	skuld_event_reserve(&events[1], skuld_key("web", "O-1", 1, "reserve"), 501, ITEM, STORE, 2,
	                    600);
	skuld_event_reserve(&events[2], skuld_key("web", "O-2", 1, "reserve"), 502, ITEM, STORE, 1,
	                    600);
	skuld_event_sale(&events[3], skuld_key("till-1", "R-2", 1, "sale"), ITEM, 99, 1);
	submit_ok(client, events, 4, results);
	cr_assert_eq(results[0].status, SKULD_OK);
	cr_assert_eq(results[0].available, 7);
	cr_assert_eq(results[1].status, SKULD_OK);
	cr_assert_eq(results[2].status, SKULD_OK);
	cr_assert_eq(results[2].available, 4);
	cr_assert_eq(results[3].status, SKULD_LOCATION_UNKNOWN);
	cr_assert_eq(results[3].index, 3);

	cr_assert_eq(skuld_query_hold(client, 501, &hold, 2000), 0);
	cr_assert_eq(hold.status, SKULD_OK);
	cr_assert_eq(hold.state, SKULD_HOLD_STATE_OPEN);
	cr_assert_eq(hold.remaining, 2);
	skuld_event_commit(&events[0], skuld_key("web", "O-1", 1, "commit"), 501, 0);
	skuld_event_release(&events[1], skuld_key("web", "O-2", 1, "release"), 502);
	submit_ok(client, events, 2, results);
	cr_assert_eq(results[0].status, SKULD_OK);
	cr_assert_eq(results[1].status, SKULD_OK);
	cr_assert_eq(skuld_query_hold(client, 501, &hold, 2000), 0);
	cr_assert_eq(hold.state, SKULD_HOLD_STATE_COMMITTED);

	cr_assert_eq(skuld_query(client, &query, records, 8, &count, 2000), 0);
	cr_assert_eq(count, 1);
	cr_assert_eq(records[0].level.item, ITEM);
	cr_assert_eq(records[0].level.on_hand, 7);
	cr_assert_eq(records[0].level.committed, 2);
	cr_assert_eq(records[0].level.available, 5);

	cr_assert_eq(skuld_lookup_sku(client, "ITEM-1", &item, 2000), 0);
	cr_assert_eq(item, ITEM);
	cr_assert_eq(skuld_lookup_sku(client, "NO-SUCH", &item, 2000), 0);
	cr_assert_eq(item, 0);
	cr_assert_eq(
	        skuld_lookup(client, SKULD_LOOKUP_LOCATION, "STORE-1", matches, 4, &count, 2000),
	        0);
	cr_assert_eq(count, 1);
	cr_assert_eq(matches[0].id, STORE);

	/* An item by id: its scale and bundle flag (LOOKUP ITEM). */
	cr_assert_eq(skuld_event_item_define(&events[0], skuld_key("setup", "catalog", 3, "item"),
	                                     2, "KIT-2", 2),
	             0);
	events[0].flags |= SKULD_EVENT_BUNDLE;
	submit_ok(client, events, 1, results);
	cr_assert_eq(results[0].status, SKULD_OK);
	cr_assert_eq(skuld_lookup_item(client, 2, &match, 2000), 0);
	cr_assert(match.status == SKULD_OK && match.id == 2 && match.kind == SKULD_LOOKUP_ITEM);
	cr_assert(match.scale == 2 && match.flags == SKULD_LOOKUP_BUNDLE);
	cr_assert_eq(skuld_lookup_item(client, ITEM, &match, 2000), 0);
	cr_assert(match.status == SKULD_OK && match.id == ITEM && match.scale == 0 &&
	          match.flags == 0);
	cr_assert_eq(skuld_lookup_item(client, 99, &match, 2000), 0);
	cr_assert(match.status == SKULD_ITEM_UNKNOWN && match.id == 0);
	cr_assert_eq(skuld_lookup_item(client, 0, &match, 2000), -EINVAL);
	cr_assert_eq(skuld_lookup(client, SKULD_LOOKUP_ITEM, "KIT-2", matches, 4, &count, 2000),
	             SKULD_ERR_QUERY, "ITEM takes an id, not a code");
	cr_assert_eq(skuld_lookup(client, SKULD_LOOKUP_SKU, "KIT-2", matches, 4, &count, 2000), 0);
	cr_assert(count == 1 && matches[0].id == 2 && matches[0].scale == 2 &&
	          matches[0].flags == SKULD_LOOKUP_BUNDLE);

	cr_assert_eq(skuld_stats(client, &stats, 2000), 0);
	cr_assert(stats.requests >= 3, "%llu", (unsigned long long)stats.requests);
	cr_assert(stats.connections_open >= 1);
	skuld_client_close(client);
}

Test(client_server, the_same_keys_again_are_replayed_not_reapplied)
{
	skuld_client *client = client_open(the_server.address, TOKEN, NULL);
	struct skuld_event sale;
	struct skuld_result result;
	struct skuld_client_info info;

	catalog_setup(client, 10);
	skuld_event_sale(&sale, skuld_key("till-1", "R-9", 1, "sale"), ITEM, STORE, 4);
	submit_ok(client, &sale, 1, &result);
	cr_assert_eq(result.flags & SKULD_RESULT_REPLAYED, 0);
	submit_ok(client, &sale, 1, &result); /* the offline queue replays it */
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert(result.flags & SKULD_RESULT_REPLAYED);
	cr_assert_eq(result.available, 6, "the original result");
	cr_assert_eq(on_hand(client), 6);
	skuld_client_info(client, &info);
	cr_assert_eq(info.replayed, 1);
	skuld_client_close(client);
}

Test(client_server, a_refused_token_leaves_the_client_disconnected)
{
	struct skuld_options options;
	skuld_client *client;

	skuld_options_init(&options);
	options.address = the_server.address;
	options.token = "wrong";
	cr_assert_eq(skuld_client_create(&client, &options), 0);
	cr_assert_eq(skuld_client_connect(client, 3000), SKULD_ERR_TOKEN);
	cr_assert_eq(skuld_client_state(client), SKULD_STATE_DISCONNECTED);
	cr_assert_eq(skuld_ping(client, 1000), SKULD_ERR_TOKEN, "fails at once, no waiting");
	skuld_client_close(client);
}

/* ---- Deadlines ------------------------------------------------------------- */

Test(client_server, a_stopped_server_makes_calls_time_out)
{
	skuld_client *client = client_open(the_server.address, TOKEN, NULL);
	struct skuld_event sale;
	struct skuld_result result;
	uint64_t began;
	int rc;

	catalog_setup(client, 10);
	cr_assert_eq(kill(the_server.pid, SIGSTOP), 0);
	began = now_ms();
	cr_assert_eq(skuld_ping(client, 200), -ETIMEDOUT);
	skuld_event_sale(&sale, skuld_key("till-1", "R-5", 1, "sale"), ITEM, STORE, 1);
	rc = skuld_submit(client, &sale, 1, &result, NULL, 300);
	cr_assert_eq(rc, -ETIMEDOUT, "%s", skuld_strerror(rc));
	cr_assert(now_ms() - began < 2000, "deadlines are kept");
	cr_assert_eq(kill(the_server.pid, SIGCONT), 0);
	/* The abandoned request still completes; the same key tells its outcome. */
	rc = skuld_submit(client, &sale, 1, &result, NULL, 8000);
	cr_assert_eq(rc, 0, "%s", skuld_strerror(rc));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(on_hand(client), 9, "applied once");
	skuld_client_close(client);
}

/* ---- Lost replies: a proxy that swallows SUBMIT replies --------------------- */

struct proxy {
	int listen_fd;
	uint16_t port;
	uint16_t upstream_port;
	int stop_pipe[2];
	pthread_t thread;
	pthread_mutex_t lock;
	int drop_submit_replies; /* swallow this many SUBMIT replies, closing both sides */
	int dropped;
	int connections;
};

static int read_exact(int fd, void *buffer, size_t size)
{
	size_t got = 0;

	while (got < size) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return -1;
		n = read(fd, (char *)buffer + got, size - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *buffer, size_t size)
{
	size_t sent = 0;

	while (sent < size) {
		ssize_t n = send(fd, (const char *)buffer + sent, size - sent, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		sent += (size_t)n;
	}
	return 0;
}

/* Relays one client connection; returns when either side closes or stop. */
static void proxy_relay(struct proxy *proxy, int client_fd)
{
	struct sockaddr_in address = {.sin_family = AF_INET,
	                              .sin_port = htons(proxy->upstream_port),
	                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int upstream = socket(AF_INET, SOCK_STREAM, 0);
	static unsigned char frame[SKULD_HEADER_SIZE + SKULD_BODY_SIZE_MAX];

	if (connect(upstream, (struct sockaddr *)&address, sizeof(address)) != 0)
		goto done;
	for (int turn = 0; turn < 1000000; turn++) {
		struct pollfd fds[3] = {{.fd = client_fd, .events = POLLIN},
		                        {.fd = upstream, .events = POLLIN},
		                        {.fd = proxy->stop_pipe[0], .events = POLLIN}};
		if (poll(fds, 3, 1000) < 0 || fds[2].revents)
			break;
		if (fds[0].revents) {
			ssize_t n = read(client_fd, frame, 65536);

			if (n <= 0 || write_all(upstream, frame, (size_t)n) != 0)
				break;
		}
		if (fds[1].revents) {
			struct skuld_header *header = (struct skuld_header *)frame;
			int drop = 0;

			if (read_exact(upstream, frame, SKULD_HEADER_SIZE) != 0 ||
			    header->body_size > SKULD_BODY_SIZE_MAX ||
			    read_exact(upstream, frame + SKULD_HEADER_SIZE, header->body_size) != 0)
				break;
			pthread_mutex_lock(&proxy->lock);
			if (header->operation == SKULD_OP_SUBMIT &&
			    proxy->drop_submit_replies > 0) {
				proxy->drop_submit_replies--;
				proxy->dropped++;
				drop = 1;
			}
			pthread_mutex_unlock(&proxy->lock);
			if (drop ||
			    write_all(client_fd, frame, SKULD_HEADER_SIZE + header->body_size) != 0)
				break;
		}
	}
done:
	close(upstream);
	close(client_fd);
}

static void *proxy_main(void *argument)
{
	struct proxy *proxy = argument;

	for (int turn = 0; turn < 100000; turn++) {
		struct pollfd fds[2] = {{.fd = proxy->listen_fd, .events = POLLIN},
		                        {.fd = proxy->stop_pipe[0], .events = POLLIN}};
		int client_fd;

		if (poll(fds, 2, 1000) < 0 || fds[1].revents)
			break;
		if (!fds[0].revents)
			continue;
		client_fd = accept(proxy->listen_fd, NULL, NULL);
		if (client_fd < 0)
			continue;
		pthread_mutex_lock(&proxy->lock);
		proxy->connections++;
		pthread_mutex_unlock(&proxy->lock);
		proxy_relay(proxy, client_fd);
	}
	return NULL;
}

static void proxy_start(struct proxy *proxy, uint16_t upstream_port)
{
	struct sockaddr_in address = {.sin_family = AF_INET,
	                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof(address);

	memset(proxy, 0, sizeof(*proxy));
	pthread_mutex_init(&proxy->lock, NULL);
	proxy->upstream_port = upstream_port;
	proxy->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(proxy->listen_fd, (struct sockaddr *)&address, sizeof(address)), 0);
	cr_assert_eq(listen(proxy->listen_fd, 16), 0);
	getsockname(proxy->listen_fd, (struct sockaddr *)&address, &length);
	proxy->port = ntohs(address.sin_port);
	cr_assert_eq(pipe(proxy->stop_pipe), 0);
	cr_assert_eq(pthread_create(&proxy->thread, NULL, proxy_main, proxy), 0);
}

static void proxy_stop(struct proxy *proxy)
{
	cr_assert(write(proxy->stop_pipe[1], "x", 1) == 1);
	pthread_join(proxy->thread, NULL);
	close(proxy->listen_fd);
	close(proxy->stop_pipe[0]);
	close(proxy->stop_pipe[1]);
}

Test(client_server, a_lost_reply_is_fetched_again_not_reapplied)
{
	struct proxy proxy;
	char address[64];
	skuld_client *client;
	struct skuld_event sale;
	struct skuld_result result;
	struct skuld_client_info info;
	uint64_t next;

	proxy_start(&proxy, the_server.port);
	snprintf(address, sizeof(address), "127.0.0.1:%u", proxy.port);
	client = client_open(address, TOKEN, NULL);
	catalog_setup(client, 10);
	skuld_client_info(client, &info);
	next = info.request_next;

	pthread_mutex_lock(&proxy.lock);
	proxy.drop_submit_replies = 1;
	pthread_mutex_unlock(&proxy.lock);
	skuld_event_sale(&sale, skuld_key("till-1", "R-7", 1, "sale"), ITEM, STORE, 3);
	submit_ok(client, &sale, 1, &result);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags & SKULD_RESULT_REPLAYED, 0,
	             "the saved reply of the same request number, not a key replay");
	cr_assert_eq(result.available, 7);
	cr_assert_eq(on_hand(client), 7, "applied exactly once");
	skuld_client_info(client, &info);
	cr_assert_eq(proxy.dropped, 1);
	cr_assert(proxy.connections >= 2, "the client reconnected");
	cr_assert_eq(info.resends, 1);
	cr_assert_eq(info.request_next, next + 1, "the request kept its number");
	skuld_client_close(client);
	proxy_stop(&proxy);
}

/* ---- Kill and restart between send and reply -------------------------------- */

struct background_submit {
	skuld_client *client;
	struct skuld_event event;
	struct skuld_result result;
	int rc;
};

static void *submit_in_background(void *argument)
{
	struct background_submit *job = argument;

	job->rc = skuld_submit(job->client, &job->event, 1, &job->result, NULL, 20000);
	return NULL;
}

Test(client_server, killed_and_restarted_between_send_and_reply)
{
	struct state_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
	skuld_client *client = client_open(the_server.address, TOKEN, &log);
	struct background_submit job = {.client = client};
	struct skuld_client_info before, after;
	pthread_t thread;

	catalog_setup(client, 10);
	skuld_client_info(client, &before);
	/* The server takes the request off the socket only after SIGCONT... which
	 * never comes: it is killed, then restarted on the same port and data. */
	cr_assert_eq(kill(the_server.pid, SIGSTOP), 0);
	skuld_event_sale(&job.event, skuld_key("till-1", "R-8", 1, "sale"), ITEM, STORE, 2);
	cr_assert_eq(pthread_create(&thread, NULL, submit_in_background, &job), 0);
	sleep_ms(300);
	server_kill(&the_server);
	wait_for_state(client, SKULD_STATE_RECONNECTING);
	server_start(&the_server, the_server.port);
	pthread_join(thread, NULL);
	cr_assert_eq(job.rc, 0, "%s", skuld_strerror(job.rc));
	cr_assert_eq(job.result.status, SKULD_OK);
	cr_assert_eq(job.result.available, 8);
	cr_assert_eq(skuld_client_state(client), SKULD_STATE_CONNECTED);
	cr_assert_eq(on_hand(client), 8, "applied exactly once");
	skuld_client_info(client, &after);
	cr_assert(after.resends >= 1);
	cr_assert(after.connects >= 2);
	pthread_mutex_lock(&log.lock);
	cr_assert(log.seen[SKULD_STATE_RECONNECTING] >= 1, "the callback saw the loss");
	pthread_mutex_unlock(&log.lock);
	skuld_client_close(client);
}

Test(client_server, a_server_that_lost_the_session_gets_the_request_renumbered)
{
	skuld_client *client = client_open(the_server.address, TOKEN, NULL);
	struct background_submit job = {.client = client};
	struct skuld_client_info info;
	struct skuld_event setup[2];
	struct skuld_result results[2];
	pthread_t thread;
	char command[256];

	catalog_setup(client, 10);
	skuld_client_info(client, &info);
	cr_assert(info.request_next > 1);
	/* In flight as request R > 1 when the server comes back with no data at
	 * all: its request_next is 1, so R is sent again as request 1. */
	cr_assert_eq(kill(the_server.pid, SIGSTOP), 0);
	skuld_event_receive(&job.event, skuld_key("dock", "D-1", 1, "receive"), ITEM, STORE, 2);
	cr_assert_eq(pthread_create(&thread, NULL, submit_in_background, &job), 0);
	sleep_ms(300);
	server_kill(&the_server);
	snprintf(command, sizeof(command), "rm -rf '%s/data'", the_server.directory);
	cr_assert_eq(system(command), 0);
	server_start(&the_server, the_server.port);
	pthread_join(thread, NULL);
	cr_assert_eq(job.rc, 0, "%s", skuld_strerror(job.rc));
	cr_assert_eq(job.result.status, SKULD_ITEM_UNKNOWN, "a new ledger knows no item");
	skuld_client_info(client, &info);
	cr_assert_eq(info.request_next, 2, "renumbered to the server's request_next");
	/* The session goes on normally from there. */
	cr_assert_eq(skuld_event_item_define(&setup[0], skuld_key("s", "c", 1, "item"), ITEM,
	                                     "ITEM-1", 0),
	             0);
	cr_assert_eq(skuld_event_location_define(&setup[1], skuld_key("s", "c", 2, "loc"), STORE,
	                                         "STORE-1"),
	             0);
	submit_ok(client, setup, 2, results);
	cr_assert_eq(results[1].status, SKULD_OK);
	skuld_client_close(client);
}

Test(client_server, applied_then_killed_is_not_applied_twice)
{
	skuld_client *client = client_open(the_server.address, TOKEN, NULL);
	struct skuld_event sale;
	struct skuld_result first, second;

	catalog_setup(client, 10);
	skuld_event_sale(&sale, skuld_key("till-1", "R-10", 1, "sale"), ITEM, STORE, 5);
	submit_ok(client, &sale, 1, &first);
	/* The till crashed before it stored the answer; the server restarts. */
	server_kill(&the_server);
	server_start(&the_server, the_server.port);
	submit_ok(client, &sale, 1, &second);
	cr_assert_eq(second.status, SKULD_OK);
	cr_assert(second.flags & SKULD_RESULT_REPLAYED);
	cr_assert_eq(second.available, first.available);
	cr_assert_eq(on_hand(client), 5);
	skuld_client_close(client);
}

/* ---- The disconnected state ------------------------------------------------- */

Test(client_server, a_dead_server_is_visible_and_calls_fail_in_time)
{
	struct state_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
	skuld_client *client = client_open(the_server.address, TOKEN, &log);
	struct skuld_event sale;
	struct skuld_result result;
	uint64_t began;

	catalog_setup(client, 10);
	server_kill(&the_server);
	cr_assert_eq(skuld_ping(client, 1000), -ETIMEDOUT, "the loss shows on the next call");
	wait_for_state(client, SKULD_STATE_RECONNECTING);
	skuld_event_sale(&sale, skuld_key("till-1", "R-11", 1, "sale"), ITEM, STORE, 1);
	began = now_ms();
	cr_assert_eq(skuld_submit(client, &sale, 1, &result, NULL, 250), -ETIMEDOUT);
	cr_assert(now_ms() - began < 1500);
	server_start(&the_server, the_server.port);
	wait_for_state(client, SKULD_STATE_CONNECTED);
	submit_ok(client, &sale, 1, &result); /* the offline queue, replayed */
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(on_hand(client), 9);
	skuld_client_close(client);
}

/* ---- Merging of concurrent callers ----------------------------------------- */

#define THREADS          8
#define CALLS_PER_THREAD 40

struct worker {
	skuld_client *client;
	int number;
	int failures;
};

static void *worker_main(void *argument)
{
	struct worker *worker = argument;

	for (int call = 0; call < CALLS_PER_THREAD; call++) {
		struct skuld_event events[3];
		struct skuld_result results[3];
		uint32_t count = (uint32_t)(call % 3) + 1;
		char document[32];

		snprintf(document, sizeof(document), "T%d-C%d", worker->number, call);
		for (uint32_t i = 0; i < count; i++)
			skuld_event_receive(&events[i], skuld_key("dock", document, i, "receive"),
			                    ITEM, STORE,
			                    worker->number * 1000 + call * 10 + (int)i + 1);
		if (skuld_submit(worker->client, events, count, results, NULL, 10000) != 0) {
			worker->failures++;
			continue;
		}
		for (uint32_t i = 0; i < count; i++) {
			if (results[i].status != SKULD_OK || results[i].index != i ||
			    results[i].quantity != events[i].quantity)
				worker->failures++;
		}
	}
	return NULL;
}

Test(client_server, concurrent_callers_are_merged_and_each_gets_its_results)
{
	skuld_client *client = client_open(the_server.address, TOKEN, NULL);
	struct worker workers[THREADS];
	pthread_t threads[THREADS];
	struct skuld_client_info before, after;
	int64_t expected = 0;

	catalog_setup(client, 10);
	skuld_client_info(client, &before);
	for (int t = 0; t < THREADS; t++) {
		workers[t] = (struct worker){.client = client, .number = t};
		cr_assert_eq(pthread_create(&threads[t], NULL, worker_main, &workers[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(threads[t], NULL);
		cr_assert_eq(workers[t].failures, 0, "thread %d", t);
		for (int call = 0; call < CALLS_PER_THREAD; call++)
			for (int i = 0; i < call % 3 + 1; i++)
				expected += t * 1000 + call * 10 + i + 1;
	}
	skuld_client_info(client, &after);
	uint64_t calls = after.calls - before.calls;
	uint64_t requests = after.requests - before.requests;
	cr_log_info("%llu calls in %llu requests", (unsigned long long)calls,
	            (unsigned long long)requests);
	cr_assert_eq(calls, THREADS * CALLS_PER_THREAD);
	cr_assert_lt(requests, calls, "calls were merged");
	cr_assert_eq(on_hand(client), 10 + expected, "every event applied once");
	skuld_client_close(client);
}
