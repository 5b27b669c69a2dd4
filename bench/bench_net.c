/*
 * bench_net.c — skuld-bench's connections: REGISTER, sending the requests
 * the scenario's chooser fills (scenario.c), the non-blocking send/receive
 * state machine, and reply accounting by event kind.
 *
 * Invariants: a connection has at most one request in flight; its send
 * buffer keeps that request's events until the reply arrives, so the reply's
 * results are matched to the events they answer; holds[] lists the holds
 * this connection reserved successfully, does not mean to abandon, and has
 * not finished yet. Closed loop: a reply sends the connection's next
 * request. Open loop: a reply puts the connection on bench->idle, and the
 * loop (bench.c) sends when a request falls due.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

uint64_t bench_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

int bench_connect(const char *server)
{
	char host[256];
	const char *colon = strrchr(server, ':');
	if (colon == NULL || (size_t)(colon - server) >= sizeof(host)) {
		fprintf(stderr, "skuld-bench: server must be HOST:PORT, not '%s'\n", server);
		return -1;
	}
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = '\0';
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *addresses = NULL;
	int error = getaddrinfo(host, colon + 1, &hints, &addresses);
	if (error != 0) {
		fprintf(stderr, "skuld-bench: %s: %s\n", server, gai_strerror(error));
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, addresses->ai_addr, addresses->ai_addrlen) != 0) {
		fprintf(stderr, "skuld-bench: connect %s: %s\n", server, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(addresses);
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

int bench_write_all(int fd, const void *bytes, size_t size)
{
	const uint8_t *p = bytes;
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *bytes, size_t size)
{
	uint8_t *p = bytes;
	while (size > 0) {
		ssize_t n = read(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

static void header_fill(struct skuld_header *header, uint8_t operation, skuld_u128 client,
                        uint64_t request, uint32_t body_size, uint32_t count)
{
	memset(header, 0, sizeof(*header));
	header->version = SKULD_PROTOCOL_VERSION_MAX;
	header->operation = operation;
	header->client = client;
	header->request = request;
	header->body_size = body_size;
	header->count = count;
}

int bench_reply_read(int fd, uint8_t operation, uint8_t *buffer, size_t capacity)
{
	struct skuld_header *header = (struct skuld_header *)buffer;
	if (read_all(fd, header, sizeof(*header)) != 0) {
		fprintf(stderr, "skuld-bench: connection closed while waiting for a reply\n");
		return -1;
	}
	uint32_t status = proto_header_check(header);
	if (status != SKULD_OK || header->body_size > capacity - sizeof(*header)) {
		fprintf(stderr, "skuld-bench: bad reply header: %s\n", skuld_status_name(status));
		return -1;
	}
	uint8_t *body = buffer + sizeof(*header);
	if (read_all(fd, body, header->body_size) != 0 ||
	    proto_body_check(header, body, NULL) != SKULD_OK) {
		fprintf(stderr, "skuld-bench: bad reply body\n");
		return -1;
	}
	if (header->operation == SKULD_OP_ERROR) {
		const struct skuld_error_body *error = (const void *)body;
		fprintf(stderr, "skuld-bench: server error %s: %.56s\n",
		        skuld_status_name(error->status), error->message);
		return -1;
	}
	return header->operation == operation ? 0 : -1;
}

int bench_register_blocking(int fd, skuld_u128 client)
{
	uint8_t frame[SKULD_HEADER_SIZE + sizeof(struct skuld_register_request)];
	struct skuld_header *header = (struct skuld_header *)frame;
	struct skuld_register_request *request = (void *)(frame + SKULD_HEADER_SIZE);
	header_fill(header, SKULD_OP_REGISTER, client, 0, sizeof(*request), 1);
	header->version = 1;
	memset(request, 0, sizeof(*request));
	request->version_min = SKULD_PROTOCOL_VERSION_MIN;
	request->version_max = SKULD_PROTOCOL_VERSION_MAX;
	snprintf(request->client_name, sizeof(request->client_name), "skuld-bench");
	const char *token = getenv("SKULD_TOKEN");
	if (token != NULL)
		strncpy(request->token, token, sizeof(request->token) - 1);
	proto_header_seal(header, request);
	uint8_t reply[SKULD_HEADER_SIZE + sizeof(struct skuld_error_body) + 64];
	if (bench_write_all(fd, frame, sizeof(frame)) != 0)
		return -1;
	return bench_reply_read(fd, SKULD_OP_REGISTER, reply, sizeof(reply));
}

int bench_stats_read(const char *server, struct skuld_stats *stats)
{
	skuld_u128 client = {.lo = bench_now_ns() | 1, .hi = (uint64_t)getpid() << 2 | 1};
	int fd = bench_connect(server);
	if (fd < 0)
		return -1;
	struct skuld_header header;
	header_fill(&header, SKULD_OP_STATS, client, 0, 0, SKULD_STATS_RECORDS);
	proto_header_seal(&header, NULL);
	/* The reply is 256-byte records (PROTOCOL.md section 14): the first is
	 * struct skuld_stats; room for every record this build knows. */
	_Alignas(8) uint8_t reply[SKULD_HEADER_SIZE + 3 * 256];
	static_assert(SKULD_STATS_RECORDS * SKULD_STATS_RECORD_SIZE == 3 * 256, "stats reply");
	int status = -1;
	if (bench_register_blocking(fd, client) == 0 &&
	    bench_write_all(fd, &header, sizeof(header)) == 0 &&
	    bench_reply_read(fd, SKULD_OP_STATS, reply, sizeof(reply)) == 0 &&
	    ((const struct skuld_header *)reply)->body_size >= sizeof(*stats)) {
		memcpy(stats, reply + SKULD_HEADER_SIZE, sizeof(*stats));
		status = 0;
	}
	close(fd);
	return status;
}

int bench_submit_blocking(int fd, skuld_u128 client, uint64_t request,
                          const struct skuld_event *events, uint32_t count,
                          struct skuld_result *results)
{
	size_t body_size = (size_t)count * sizeof(*events);
	size_t reply_capacity = SKULD_HEADER_SIZE + (size_t)count * sizeof(*results) + 64;
	struct skuld_header header;
	uint8_t *reply = malloc(reply_capacity);
	if (reply == NULL)
		return -1;
	header_fill(&header, SKULD_OP_SUBMIT, client, request, (uint32_t)body_size, count);
	proto_header_seal(&header, events);
	int status = -1;
	if (bench_write_all(fd, &header, sizeof(header)) == 0 &&
	    bench_write_all(fd, events, body_size) == 0 &&
	    bench_reply_read(fd, SKULD_OP_SUBMIT, reply, reply_capacity) == 0) {
		const struct skuld_header *reply_header = (const void *)reply;
		if (reply_header->count == count) {
			memcpy(results, reply + SKULD_HEADER_SIZE,
			       (size_t)count * sizeof(*results));
			status = 0;
		}
	}
	free(reply);
	return status;
}

int connections_open(struct bench *bench)
{
	const struct bench_options *options = &bench->options;
	bench->seed = (uint64_t)bench_now_ns();
	for (uint32_t i = 0; i < options->connections; i++)
		bench->connections[i].fd = -1;
	for (uint32_t i = 0; i < options->connections; i++) {
		struct bench_connection *connection = &bench->connections[i];
		connection->index = i;
		connection->client.lo = bench_random(&bench->seed) | 1;
		connection->client.hi = bench_random(&bench->seed);
		connection->hold_next = (uint64_t)(i + 1) << 40 | (bench->seed & 0xffffffu) << 16;
		connection->fd = bench_connect(options->server);
		if (connection->fd < 0 ||
		    bench_register_blocking(connection->fd, connection->client))
			return -1;
		connection->request = 0;
		connection->role = scenario_role(bench, i);
		bench->roles[connection->role].connections++;
		size_t events_max = bench_request_events_max(options);
		connection->holds = calloc(2 * events_max + 2, sizeof(uint64_t));
		connection->hold_units = calloc(2 * events_max + 2, sizeof(int64_t));
		connection->send_buffer = malloc(SKULD_HEADER_SIZE + events_max * SKULD_EVENT_SIZE);
		connection->receive_capacity =
		        SKULD_HEADER_SIZE + events_max * SKULD_RESULT_SIZE +
		        BENCH_PUSH_PULL_MAX * sizeof(struct skuld_push_record);
		connection->receive_buffer = malloc(connection->receive_capacity);
		if (connection->holds == NULL || connection->hold_units == NULL ||
		    connection->send_buffer == NULL || connection->receive_buffer == NULL)
			return -1;
		fcntl(connection->fd, F_SETFL, fcntl(connection->fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event interest = {.events = EPOLLIN, .data.ptr = connection};
		if (epoll_ctl(bench->epoll_fd, EPOLL_CTL_ADD, connection->fd, &interest) != 0)
			return -1;
		connection->state = CONNECTION_RUNNING;
		bench->connections_open++;
	}
	return 0;
}

void connections_free(struct bench *bench)
{
	for (uint32_t i = 0; i < bench->options.connections; i++) {
		struct bench_connection *connection = &bench->connections[i];
		if (connection->state != CONNECTION_CLOSED && connection->fd >= 0)
			close(connection->fd);
		free(connection->holds);
		free(connection->hold_units);
		free(connection->send_buffer);
		free(connection->receive_buffer);
	}
}

static int connection_flush(struct bench *bench, struct bench_connection *connection)
{
	while (connection->send_done < connection->send_size) {
		ssize_t n = send(connection->fd, connection->send_buffer + connection->send_done,
		                 connection->send_size - connection->send_done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			fprintf(stderr, "skuld-bench: send: %s\n", strerror(errno));
			return -1;
		}
		connection->send_done += (size_t)n;
	}
	uint32_t want =
	        connection->send_done < connection->send_size ? EPOLLIN | EPOLLOUT : EPOLLIN;
	struct epoll_event interest = {.events = want, .data.ptr = connection};
	(void)bench;
	return epoll_ctl(bench->epoll_fd, EPOLL_CTL_MOD, connection->fd, &interest);
}

uint32_t bench_request_events_max(const struct bench_options *options)
{
	uint32_t events = options->batch < 2 ? 2 : options->batch;
	if (strcmp(options->scenario->name, "mixed") == 0 && events < BENCH_PUSH_PULL_MAX)
		events = BENCH_PUSH_PULL_MAX;
	return events;
}

/* The chooser asked for connection->query instead of events. */
static void query_frame(struct bench_connection *connection)
{
	struct skuld_header *header = (struct skuld_header *)connection->send_buffer;
	uint8_t *body = connection->send_buffer + SKULD_HEADER_SIZE;
	memcpy(body, &connection->query, sizeof(connection->query));
	header_fill(header, SKULD_OP_QUERY, connection->client, 0, sizeof(connection->query), 1);
	proto_header_seal(header, body);
	connection->send_size = SKULD_HEADER_SIZE + sizeof(connection->query);
	connection->operation = SKULD_OP_QUERY;
	connection->events = 0;
}

int connection_send_next(struct bench *bench, struct bench_connection *connection, uint64_t due_ns)
{
	struct skuld_header *header = (struct skuld_header *)connection->send_buffer;
	struct skuld_event *events = (void *)(connection->send_buffer + SKULD_HEADER_SIZE);
	uint32_t count = bench->options.scenario->fill(bench, connection, events);
	if (count == 0) {
		query_frame(connection);
	} else {
		header_fill(header, SKULD_OP_SUBMIT, connection->client, ++connection->request,
		            count * SKULD_EVENT_SIZE, count);
		proto_header_seal(header, events);
		connection->send_size = SKULD_HEADER_SIZE + (size_t)count * SKULD_EVENT_SIZE;
		connection->operation = SKULD_OP_SUBMIT;
		connection->events = count;
	}
	connection->send_done = 0;
	connection->receive_size = 0;
	uint64_t now = bench_now_ns();
	if (due_ns != 0 && now > due_ns + 1000000u)
		bench->sent_late++;
	connection->due_ns = due_ns != 0 ? due_ns : now;
	connection->sent_ns = now;
	return connection_flush(bench, connection);
}

/* Counts one accepted event by kind, with its units. */
static void result_count(struct bench *bench, const struct skuld_event *event, int64_t units)
{
	bench->accepted++;
	bench->accepted_by_kind[event->kind < 64 ? event->kind : 63]++;
	switch (event->kind) {
	case SKULD_COMMIT:
		bench->committed_ok++;
		bench->units_committed += units;
		break;
	case SKULD_RELEASE:
		bench->released_ok++;
		bench->units_released += units;
		break;
	case SKULD_RESERVE:
		bench->reserved_ok++;
		bench->units_reserved += units;
		if (event->ttl_s == SCENARIO_TTL_ABANDON_S) {
			bench->abandoned_ok++;
			bench->units_abandoned += units;
			bench->abandoned_last_ns = bench_now_ns();
		}
		break;
	case SKULD_RECEIVE:
		bench->units_received += units;
		break;
	case SKULD_SALE:
		bench->units_sold += units;
		break;
	case SKULD_RETURN:
		bench->units_returned += units;
		break;
	default:
		break;
	}
}

/* Counts the results of the request in flight and updates the connection's
 * open holds: the first `finishing` holds were committed or released by it,
 * its successful reserves (but abandoned ones) join the list. */
static void results_account(struct bench *bench, struct bench_connection *connection,
                            const struct skuld_result *results, uint32_t count)
{
	const struct skuld_event *events =
	        (const void *)(connection->send_buffer + SKULD_HEADER_SIZE);
	struct bench_role_figures *role = &bench->roles[connection->role];
	uint32_t finished = connection->finishing;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t status = results[i].status;
		int64_t units = i < finished ? connection->hold_units[i] : events[i].quantity;
		role->accepted += status == SKULD_OK;
		role->refused += status != SKULD_OK;
		if (status != SKULD_OK) {
			bench->refused++;
			bench->refused_by_status[status < 64 ? status : 63]++;
			continue;
		}
		result_count(bench, &events[i], units);
		/* --pool: where the ledger put each channel hold. */
		if (events[i].kind == SKULD_RESERVE && events[i].channel != 0 &&
		    bench->pool_reserves != NULL && results[i].location >= 1 &&
		    results[i].location <= bench->options.locations)
			bench->pool_reserves[results[i].location]++;
	}
	connection->holds_count -= finished;
	memmove(connection->holds, connection->holds + finished,
	        connection->holds_count * sizeof(uint64_t));
	memmove(connection->hold_units, connection->hold_units + finished,
	        connection->holds_count * sizeof(int64_t));
	for (uint32_t i = finished; i < count; i++) {
		if (results[i].status != SKULD_OK || events[i].kind != SKULD_RESERVE ||
		    events[i].ttl_s == SCENARIO_TTL_ABANDON_S)
			continue;
		connection->holds[connection->holds_count] = events[i].id;
		connection->hold_units[connection->holds_count++] = events[i].quantity;
	}
	connection->finishing = 0;
}

static void connection_close(struct bench *bench, struct bench_connection *connection)
{
	epoll_ctl(bench->epoll_fd, EPOLL_CTL_DEL, connection->fd, NULL);
	close(connection->fd);
	connection->state = CONNECTION_CLOSED;
	bench->connections_open--;
}

/* The reply in receive_buffer is complete: check it and account for it. */
static int reply_finish(struct bench *bench, struct bench_connection *connection)
{
	const struct skuld_header *header = (const void *)connection->receive_buffer;
	const uint8_t *body = connection->receive_buffer + SKULD_HEADER_SIZE;
	if (proto_body_check(header, body, NULL) != SKULD_OK) {
		fprintf(stderr, "skuld-bench: reply body fails its checks\n");
		return -1;
	}
	if (header->operation == SKULD_OP_ERROR) {
		const struct skuld_error_body *error = (const void *)body;
		fprintf(stderr, "skuld-bench: server error %s: %.56s\n",
		        skuld_status_name(error->status), error->message);
		bench->errors++;
		connection_close(bench, connection);
		return 0;
	}
	int query = connection->operation == SKULD_OP_QUERY;
	if (header->operation != connection->operation ||
	    (!query &&
	     (header->request != connection->request || header->count != connection->events))) {
		fprintf(stderr, "skuld-bench: reply does not answer the request\n");
		return -1;
	}
	uint64_t now = bench_now_ns();
	uint32_t events = query ? 0 : header->count;
	struct bench_role_figures *role = &bench->roles[connection->role];
	histogram_record(&bench->latency_us, (now - connection->due_ns) / 1000);
	histogram_record(&bench->service_us, (now - connection->sent_ns) / 1000);
	histogram_record(&role->latency_us, (now - connection->due_ns) / 1000);
	bench->requests++;
	bench->events += events;
	role->requests++;
	role->events += events;
	uint64_t slice = (now - bench->started_ns) / BENCH_SLICE_NS;
	if (slice < bench->timeline_slots) {
		bench->timeline_requests[slice]++;
		bench->timeline_events[slice] += events;
	}
	if (query) {
		role->queries++;
		role->records += header->count;
		scenario_push_records(connection, body, header->count);
	} else {
		results_account(bench, connection, (const void *)body, header->count);
	}
	if (bench->stopping) {
		connection_close(bench, connection);
		return 0;
	}
	if (bench->options.rate > 0) {
		bench->idle[bench->idle_count++] = connection;
		return 0;
	}
	uint64_t pause_ns = 0;
	if (connection->role == BENCH_ROLE_PUSH && !query)
		pause_ns = BENCH_PUSH_CALL_NS; /* the channel's API call, after the fact */
	else if (query && connection->push_count == 0 && connection->push_cursor == 0)
		pause_ns = BENCH_PUSH_IDLE_NS; /* nothing dirty */
	if (pause_ns != 0) {
		connection->resume_ns = now + pause_ns;
		bench->idle[bench->idle_count++] = connection;
		return 0;
	}
	return connection_send_next(bench, connection, 0);
}

int connection_service(struct bench *bench, struct bench_connection *connection,
                       uint32_t epoll_events)
{
	if ((epoll_events & EPOLLOUT) && connection_flush(bench, connection) != 0)
		return -1;
	if (!(epoll_events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;
	for (;;) {
		size_t want = SKULD_HEADER_SIZE;
		if (connection->receive_size >= SKULD_HEADER_SIZE) {
			const struct skuld_header *header =
			        (const void *)connection->receive_buffer;
			want += header->body_size;
		}
		if (connection->receive_size == want && want > SKULD_HEADER_SIZE)
			return reply_finish(bench, connection);
		ssize_t n =
		        recv(connection->fd, connection->receive_buffer + connection->receive_size,
		             want - connection->receive_size, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			fprintf(stderr, "skuld-bench: server closed connection %u\n",
			        connection->index);
			return -1;
		}
		connection->receive_size += (size_t)n;
		if (connection->receive_size == SKULD_HEADER_SIZE) {
			const struct skuld_header *header =
			        (const void *)connection->receive_buffer;
			uint32_t status = proto_header_check(header);
			if (status != SKULD_OK || SKULD_HEADER_SIZE + (size_t)header->body_size >
			                                  connection->receive_capacity) {
				fprintf(stderr, "skuld-bench: bad reply header: %s\n",
				        skuld_status_name(status));
				return -1;
			}
			if (header->body_size == 0)
				return reply_finish(bench, connection);
		}
	}
}
