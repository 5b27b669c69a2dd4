/*
 * server_harness.h — what tests/test_server_*.c share: start the real skuld
 * binary on 127.0.0.1 port 0 in a mkdtemp directory, stop or kill it, and
 * speak the protocol to it through the protocol library.
 *
 * Safety: every child server gets PR_SET_PDEATHSIG = SIGKILL, so it dies
 * with the test process whatever path the test takes (a failed assertion
 * ends the test's process); tests also stop it explicitly. Every wait is
 * bounded: sockets have 10 s receive and send timeouts, waiting for a
 * server's start or exit gives up after 20 s.
 */
#ifndef SKULD_TESTS_SERVER_HARNESS_H
#define SKULD_TESTS_SERVER_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POLLRDHUP */
#endif

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define HARNESS_TIMEOUT_S 20

/* Every helper is static; a test file uses only some of them. */
#define HARNESS static __attribute__((unused))

struct server {
	pid_t pid;
	uint16_t port;
	char dir[64];
	char config[128];
	const char *flag; /* one more argument for skuld (a flag), or NULL */
};

HARNESS uint64_t harness_now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Makes the temporary data directory and writes the config text (may be
 * NULL) into it. */
HARNESS void server_init(struct server *server, const char *config_text)
{
	memset(server, 0, sizeof(*server));
	snprintf(server->dir, sizeof(server->dir), "/tmp/skuld-test-XXXXXX");
	cr_assert_not_null(mkdtemp(server->dir), "mkdtemp: %s", strerror(errno));
	snprintf(server->config, sizeof(server->config), "%s/skuld.conf", server->dir);
	FILE *file = fopen(server->config, "w");
	cr_assert_not_null(file);
	fprintf(file, "%s\n", config_text != NULL ? config_text : "");
	fclose(file);
}

/* Starts skuld on the directory; waits for its "listening on" line. */
HARNESS void server_start(struct server *server)
{
	int out[2];
	cr_assert_eq(pipe(out), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		/* Sanitizer reports of the server go to its stderr; leaks are the
		 * server's own business in these tests. */
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		char data_dir[80];
		snprintf(data_dir, sizeof(data_dir), "%s/data", server->dir);
		/* SKULD_TEST_VALGRIND set: the server runs under memcheck, which
		 * writes what it finds to DIR/valgrind.PID.log (server_fini fails
		 * the test when one is not empty; make test-valgrind). */
		const char *valgrind = getenv("SKULD_TEST_VALGRIND");
		if (valgrind != NULL && valgrind[0] != '\0') {
			char log[160];
			snprintf(log, sizeof(log), "--log-file=%s/valgrind.%%p.log", server->dir);
			execlp("valgrind", "valgrind", "--quiet", "--leak-check=no", log,
			       SKULD_BINARY_DIR "/server/skuld", "--listen", "127.0.0.1:0",
			       "--data-dir", data_dir, "--config", server->config, server->flag,
			       (char *)NULL);
			_exit(96);
		}
		execl(SKULD_BINARY_DIR "/server/skuld", "skuld", "--listen", "127.0.0.1:0",
		      "--data-dir", data_dir, "--config", server->config, server->flag,
		      (char *)NULL);
		_exit(98);
	}
	close(out[1]);
	server->pid = pid;
	char line[256];
	size_t have = 0;
	uint64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_S * 1000;
	while (have < sizeof(line) - 1 && memchr(line, '\n', have) == NULL) {
		struct pollfd poll_fd = {.fd = out[0], .events = POLLIN};
		int wait = (int)(deadline > harness_now_ms() ? deadline - harness_now_ms() : 0);
		if (poll(&poll_fd, 1, wait) <= 0)
			break;
		ssize_t got = read(out[0], line + have, sizeof(line) - 1 - have);
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	close(out[0]);
	line[have] = '\0';
	unsigned port = 0;
	char *at = strstr(line, "listening on 127.0.0.1:");
	if (at == NULL || sscanf(at, "listening on 127.0.0.1:%u", &port) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		server->pid = 0;
		cr_assert_fail("skuld did not start: '%s'", line);
	}
	server->port = (uint16_t)port;
}

/* Waits for the server to exit (bounded); returns its exit status, or -sig
 * when a signal killed it. */
HARNESS int server_wait(struct server *server)
{
	uint64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_S * 1000;
	int status = 0;
	for (;;) {
		pid_t done = waitpid(server->pid, &status, WNOHANG);
		if (done == server->pid)
			break;
		if (harness_now_ms() > deadline) {
			kill(server->pid, SIGKILL);
			waitpid(server->pid, &status, 0);
			server->pid = 0;
			cr_assert_fail("skuld did not exit in %d s", HARNESS_TIMEOUT_S);
		}
		usleep(10000);
	}
	server->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/* SIGTERM and wait: returns the exit status. */
HARNESS int server_stop(struct server *server)
{
	if (server->pid <= 0)
		return -1;
	kill(server->pid, SIGTERM);
	return server_wait(server);
}

/* SIGKILL: a crash, nothing flushed beyond what was durable. */
HARNESS void server_kill(struct server *server)
{
	if (server->pid <= 0)
		return;
	kill(server->pid, SIGKILL);
	server_wait(server);
}

HARNESS void remove_tree(const char *path)
{
	DIR *dir = opendir(path);
	if (dir == NULL) {
		unlink(path);
		return;
	}
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		char child[512];
		snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
		struct stat status;
		if (lstat(child, &status) == 0 && S_ISDIR(status.st_mode))
			remove_tree(child);
		else
			unlink(child);
	}
	closedir(dir);
	rmdir(path);
}

/* Fails the test if memcheck reported anything (SKULD_TEST_VALGRIND). */
HARNESS void valgrind_logs_check(const char *dir)
{
	DIR *directory = opendir(dir);
	if (directory == NULL)
		return;
	struct dirent *entry;
	char report[4096] = "";
	while ((entry = readdir(directory)) != NULL && report[0] == '\0') {
		if (strncmp(entry->d_name, "valgrind.", 9) != 0)
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		FILE *file = fopen(path, "r");
		if (file == NULL)
			continue;
		size_t got = fread(report, 1, sizeof(report) - 1, file);
		report[got] = '\0';
		fclose(file);
	}
	closedir(directory);
	cr_expect(report[0] == '\0', "valgrind found errors in the server:\n%s", report);
}

HARNESS void server_fini(struct server *server)
{
	server_kill(server);
	valgrind_logs_check(server->dir);
	remove_tree(server->dir);
}

/* ---- Clients ------------------------------------------------------------ */

struct client {
	int fd;
	skuld_u128 id;
	uint64_t request_next;
	uint16_t version;
};

/* A connected socket, with bounded blocking I/O; -1 on failure. */
HARNESS int socket_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct timeval timeout = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

HARNESS int write_all(int fd, const void *bytes, size_t size)
{
	const uint8_t *at = bytes;
	while (size > 0) {
		ssize_t sent = send(fd, at, size, MSG_NOSIGNAL);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			return -1;
		at += sent;
		size -= (size_t)sent;
	}
	return 0;
}

HARNESS int read_all(int fd, void *bytes, size_t size)
{
	uint8_t *at = bytes;
	while (size > 0) {
		ssize_t got = recv(fd, at, size, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		at += got;
		size -= (size_t)got;
	}
	return 0;
}

/* A frame read from the server into an 8-byte aligned buffer. */
struct reply {
	_Alignas(8) uint8_t bytes[SKULD_HEADER_SIZE + (1u << 20)];
};

HARNESS const struct skuld_header *reply_header(const struct reply *reply)
{
	return (const struct skuld_header *)reply->bytes;
}

HARNESS const void *reply_body(const struct reply *reply)
{
	return reply->bytes + SKULD_HEADER_SIZE;
}

/* Reads one frame and checks it with the codec. Returns 0, or -1 on EOF /
 * timeout / a malformed frame. */
HARNESS int frame_read(int fd, struct reply *reply)
{
	if (read_all(fd, reply->bytes, SKULD_HEADER_SIZE) != 0)
		return -1;
	const struct skuld_header *header = reply_header(reply);
	if (proto_header_check(header) != SKULD_OK || header->body_size > (1u << 20))
		return -1;
	if (read_all(fd, reply->bytes + SKULD_HEADER_SIZE, header->body_size) != 0)
		return -1;
	if (proto_body_check(header, reply_body(reply), NULL) != SKULD_OK)
		return -1;
	return 0;
}

/* Builds a sealed request frame into bytes (room for 64 + body_size). */
HARNESS size_t frame_build(uint8_t *bytes, uint8_t operation, skuld_u128 client, uint64_t request,
                           uint16_t version, const void *body, uint32_t body_size, uint32_t count)
{
	struct skuld_header *header = (struct skuld_header *)bytes;
	memset(header, 0, sizeof(*header));
	header->version = version;
	header->operation = operation;
	header->request = request;
	header->client = client;
	header->body_size = body_size;
	header->count = count;
	if (body_size > 0)
		memcpy(bytes + SKULD_HEADER_SIZE, body, body_size);
	proto_header_seal(header, bytes + SKULD_HEADER_SIZE);
	return SKULD_HEADER_SIZE + body_size;
}

HARNESS int frame_send(int fd, uint8_t operation, skuld_u128 client, uint64_t request,
                       uint16_t version, const void *body, uint32_t body_size, uint32_t count)
{
	uint8_t *bytes = malloc(SKULD_HEADER_SIZE + body_size);
	cr_assert_not_null(bytes);
	size_t size =
	        frame_build(bytes, operation, client, request, version, body, body_size, count);
	int ret = write_all(fd, bytes, size);
	free(bytes);
	return ret;
}

HARNESS skuld_u128 client_id(uint64_t seed)
{
	skuld_u128 id = {seed * 0x9e3779b97f4a7c15ull + 0x5eed, seed ^ 0xc11e47ull};
	return id;
}

/* Connects and registers; returns 0 or -1 (the connection is then closed). */
HARNESS int client_open(struct client *client, uint16_t port, skuld_u128 id)
{
	memset(client, 0, sizeof(*client));
	client->id = id;
	client->fd = socket_connect(port);
	if (client->fd < 0)
		return -1;
	struct skuld_register_request request;
	memset(&request, 0, sizeof(request));
	request.version_min = 1;
	request.version_max = 1;
	snprintf(request.client_name, sizeof(request.client_name), "test");
	static struct reply reply;
	if (frame_send(client->fd, SKULD_OP_REGISTER, id, 0, 1, &request, sizeof(request), 1) !=
	            0 ||
	    frame_read(client->fd, &reply) != 0 ||
	    reply_header(&reply)->operation != SKULD_OP_REGISTER) {
		close(client->fd);
		client->fd = -1;
		return -1;
	}
	const struct skuld_register_reply *body = reply_body(&reply);
	client->request_next = body->request_next;
	client->version = body->version;
	return 0;
}

HARNESS void client_close(struct client *client)
{
	if (client->fd >= 0)
		close(client->fd);
	client->fd = -1;
}

/* Sends a SUBMIT with request number `request` (no reply read). */
HARNESS int client_submit_send(struct client *client, uint64_t request,
                               const struct skuld_event *events, uint32_t count)
{
	return frame_send(client->fd, SKULD_OP_SUBMIT, client->id, request, client->version, events,
	                  count * SKULD_EVENT_SIZE, count);
}

/* SUBMIT with the next request number and read the results. Returns 0 or
 * -1 (connection lost, or an ERROR frame: *error gets its status). */
HARNESS int client_submit(struct client *client, const struct skuld_event *events, uint32_t count,
                          struct skuld_result *results, uint32_t *error)
{
	static struct reply reply;
	if (error != NULL)
		*error = 0;
	if (client_submit_send(client, client->request_next, events, count) != 0 ||
	    frame_read(client->fd, &reply) != 0)
		return -1;
	const struct skuld_header *header = reply_header(&reply);
	if (header->operation == SKULD_OP_ERROR) {
		if (error != NULL)
			*error = header->result;
		return -1;
	}
	cr_assert_eq(header->operation, SKULD_OP_SUBMIT);
	cr_assert_eq(header->request, client->request_next);
	cr_assert_eq(header->count, count);
	memcpy(results, reply_body(&reply), (size_t)count * SKULD_RESULT_SIZE);
	client->request_next++;
	return 0;
}

/* One QUERY; returns the number of records copied into records (room for
 * max), or -1. */
HARNESS int client_query(struct client *client, const struct skuld_query *query, void *records,
                         uint32_t max)
{
	static struct reply reply;
	if (frame_send(client->fd, SKULD_OP_QUERY, client->id, 0, client->version, query,
	               sizeof(*query), 1) != 0 ||
	    frame_read(client->fd, &reply) != 0)
		return -1;
	const struct skuld_header *header = reply_header(&reply);
	if (header->operation != SKULD_OP_QUERY)
		return -1;
	uint32_t count = header->count < max ? header->count : max;
	memcpy(records, reply_body(&reply), (size_t)count * 64);
	return (int)count;
}

HARNESS int client_stats(struct client *client, struct skuld_stats *stats)
{
	static struct reply reply;
	if (frame_send(client->fd, SKULD_OP_STATS, client->id, 0, client->version, NULL, 0, 0) !=
	            0 ||
	    frame_read(client->fd, &reply) != 0 ||
	    reply_header(&reply)->operation != SKULD_OP_STATS)
		return -1;
	memcpy(stats, reply_body(&reply), sizeof(*stats));
	return 0;
}

/* ---- Events ----------------------------------------------------------------- */

HARNESS struct skuld_event event_make(uint16_t kind, uint64_t key_lo, uint64_t key_hi)
{
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.kind = kind;
	event.key.lo = key_lo;
	event.key.hi = key_hi;
	return event;
}

HARNESS struct skuld_event event_item(uint32_t item, uint64_t key)
{
	struct skuld_event event = event_make(SKULD_ITEM_DEFINE, key, 1);
	event.item = item;
	snprintf(event.code, sizeof(event.code), "SKU-%u", item);
	return event;
}

HARNESS struct skuld_event event_location(uint32_t location, uint64_t key)
{
	struct skuld_event event = event_make(SKULD_LOCATION_DEFINE, key, 2);
	event.location = location;
	snprintf(event.code, sizeof(event.code), "STORE-%u", location);
	return event;
}

HARNESS struct skuld_event event_stock(uint16_t kind, uint32_t item, uint32_t location,
                                       int64_t quantity, uint64_t key)
{
	struct skuld_event event = event_make(kind, key, 3);
	event.item = item;
	event.location = location;
	event.quantity = quantity;
	return event;
}

HARNESS struct skuld_event event_hold(uint16_t kind, uint64_t hold, uint64_t key)
{
	struct skuld_event event = event_make(kind, key, 4);
	event.id = hold;
	return event;
}

/* The level of (item, location) through QUERY LEVEL. */
HARNESS struct skuld_level_record client_level(struct client *client, uint32_t item,
                                               uint32_t location)
{
	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_LEVEL;
	query.item = item;
	query.location = location;
	struct skuld_level_record record;
	cr_assert_eq(client_query(client, &query, &record, 1), 1);
	return record;
}

#endif /* SKULD_TESTS_SERVER_HARNESS_H */
