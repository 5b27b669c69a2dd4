/*
 * client.c — the client handle and the calls made from the program's
 * threads: create, connect, close, submit, ping, query, lookup, stats.
 *
 * Owns: the caller's side of every call. A caller checks its arguments,
 * puts a call (on its own stack) into the client's queue, wakes the I/O
 * thread (io.c) and waits on the call's condition variable until the call is
 * done or its deadline passes. On a deadline it unlinks the call itself
 * (from the queue, or from the in-flight request's slice), so the I/O
 * thread never touches it again. Invariants: the queue never holds more
 * than calls_max calls; a call is done exactly once.
 */
#include "client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS         5000u
#define DEFAULT_CONNECT_TIMEOUT_MS 2000u
#define DEFAULT_REPLY_TIMEOUT_MS   10000u
#define DEFAULT_RECONNECT_MIN_MS   10u
#define DEFAULT_RECONNECT_MAX_MS   1000u
#define DEFAULT_CALLS_MAX          4096u
#define ADDRESS_SIZE_MAX           1024u

void skuld__assert_fail(const char *expression, const char *file, int line)
{
	fprintf(stderr, "libskuld: assertion failed: %s (%s:%d)\n", expression, file, line);
	abort();
}

uint64_t skuld__now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

SKULD_EXTERN void skuld_options_init(struct skuld_options *options)
{
	memset(options, 0, sizeof(*options));
	options->timeout_ms = DEFAULT_TIMEOUT_MS;
	options->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	options->reply_timeout_ms = DEFAULT_REPLY_TIMEOUT_MS;
	options->reconnect_min_ms = DEFAULT_RECONNECT_MIN_MS;
	options->reconnect_max_ms = DEFAULT_RECONNECT_MAX_MS;
	options->calls_max = DEFAULT_CALLS_MAX;
}

static uint32_t or_default(uint32_t value, uint32_t fallback)
{
	return value != 0 ? value : fallback;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into two heap strings. 0 or -EINVAL/-ENOMEM. */
static int address_split(const char *address, char **host, char **port)
{
	size_t length = strlen(address);
	const char *colon = strrchr(address, ':');
	const char *host_begin = address;
	size_t host_length;

	if (length == 0 || length >= ADDRESS_SIZE_MAX || colon == NULL || colon[1] == '\0')
		return -EINVAL;
	host_length = (size_t)(colon - address);
	if (host_length >= 2 && address[0] == '[' && address[host_length - 1] == ']') {
		host_begin++;
		host_length -= 2;
	}
	if (host_length == 0)
		return -EINVAL;
	for (const char *p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
	}
	*host = strndup(host_begin, host_length);
	*port = strdup(colon + 1);
	if (*host == NULL || *port == NULL) {
		free(*host);
		free(*port);
		return -ENOMEM;
	}
	return 0;
}

/* Copies text into a NUL-padded wire field; -EINVAL if it breaks the rules. */
static int text_copy(char *field, size_t size, const char *text, int allow_empty)
{
	size_t length = text != NULL ? strnlen(text, size + 1) : 0;

	if (length > size)
		return -EINVAL;
	memset(field, 0, size);
	if (length > 0)
		memcpy(field, text, length);
	return proto_text_valid(field, size, allow_empty) ? 0 : -EINVAL;
}

static void client_free(struct skuld_client *client)
{
	if (client->wake_fd >= 0)
		close(client->wake_fd);
	pthread_mutex_destroy(&client->lock);
	pthread_cond_destroy(&client->io_wake);
	pthread_cond_destroy(&client->state_wake);
	skuld__tls_free(client);
	free(client->request.slices);
	free(client->send_buffer);
	free(client->receive_buffer);
	free(client->host);
	free(client->port);
	free(client);
}

static int cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attributes;
	int rc = pthread_condattr_init(&attributes);

	if (rc != 0)
		return -rc;
	rc = pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cond, &attributes);
	pthread_condattr_destroy(&attributes);
	return -rc;
}

static int client_identity(struct skuld_client *client, const struct skuld_options *options)
{
	if (!skuld_u128_is_zero(options->client_id)) {
		client->client_id = options->client_id;
		return 0;
	}
	if (options->client_id_path != NULL)
		return skuld_client_id_load(options->client_id_path, &client->client_id);
	return skuld_client_id_generate(&client->client_id);
}

SKULD_EXTERN int skuld_client_create(skuld_client **out, const struct skuld_options *options)
{
	struct skuld_client *client;
	int rc;

	*out = NULL;
	if (options == NULL || options->address == NULL)
		return -EINVAL;
	client = calloc(1, sizeof(*client));
	if (client == NULL)
		return -ENOMEM;
	client->fd = -1;
	client->wake_fd = -1;
	pthread_mutex_init(&client->lock, NULL);
	rc = cond_init_monotonic(&client->io_wake);
	if (rc == 0)
		rc = cond_init_monotonic(&client->state_wake);
	if (rc == 0)
		rc = address_split(options->address, &client->host, &client->port);
	if (rc == 0)
		rc = text_copy(client->token, sizeof(client->token), options->token, 1);
	if (rc == 0)
		rc = text_copy(client->client_name, sizeof(client->client_name),
		               options->client_name, 1);
	if (rc == 0)
		rc = client_identity(client, options);
	if (rc == 0)
		rc = skuld__tls_setup(client, options);
	if (rc != 0) {
		client_free(client);
		return rc;
	}

	client->options = *options;
	client->options.address = NULL;
	client->options.token = NULL;
	client->options.client_name = NULL;
	client->options.client_id_path = NULL;
	client->options.tls_ca_file = NULL;
	client->options.tls_server_name = NULL;
	client->options.tls_cert_file = NULL;
	client->options.tls_key_file = NULL;
	client->options.timeout_ms = or_default(options->timeout_ms, DEFAULT_TIMEOUT_MS);
	client->options.connect_timeout_ms =
	        or_default(options->connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS);
	client->options.reply_timeout_ms =
	        or_default(options->reply_timeout_ms, DEFAULT_REPLY_TIMEOUT_MS);
	client->options.reconnect_min_ms =
	        or_default(options->reconnect_min_ms, DEFAULT_RECONNECT_MIN_MS);
	client->options.reconnect_max_ms =
	        or_default(options->reconnect_max_ms, DEFAULT_RECONNECT_MAX_MS);
	if (client->options.reconnect_max_ms < client->options.reconnect_min_ms)
		client->options.reconnect_max_ms = client->options.reconnect_min_ms;
	client->options.calls_max = or_default(options->calls_max, DEFAULT_CALLS_MAX);

	/* Everything the connection needs is allocated here, once. */
	client->request.slices_max = client->options.calls_max < SKULD_EVENTS_PER_FRAME_MAX
	                                     ? client->options.calls_max
	                                     : SKULD_EVENTS_PER_FRAME_MAX;
	client->request.slices = calloc(client->request.slices_max, sizeof(struct skuld__slice));
	client->send_buffer = aligned_alloc(64, SKULD_HEADER_SIZE + SKULD_BODY_SIZE_MAX);
	client->receive_buffer = aligned_alloc(64, SKULD_HEADER_SIZE + SKULD_BODY_SIZE_MAX);
	client->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (client->request.slices == NULL || client->send_buffer == NULL ||
	    client->receive_buffer == NULL || client->wake_fd < 0) {
		rc = client->wake_fd < 0 ? -errno : -ENOMEM;
		client_free(client);
		return rc;
	}
	client->random_state = client->client_id.lo ^ client->client_id.hi ^ skuld__now_ms();
	client->state = SKULD_STATE_DISCONNECTED;
	*out = client;
	return 0;
}

SKULD_EXTERN void skuld_client_close(skuld_client *client)
{
	uint64_t one = 1;

	if (client == NULL)
		return;
	pthread_mutex_lock(&client->lock);
	client->closing = 1;
	pthread_cond_broadcast(&client->io_wake);
	pthread_mutex_unlock(&client->lock);
	if (write(client->wake_fd, &one, sizeof(one)) < 0) {
		/* An eventfd write fails only on counter overflow: already awake. */
	}
	if (client->thread_started)
		pthread_join(client->thread, NULL);
	/* No caller may be waiting (documented); anything left is abandoned. */
	SKULD__ASSERT(client->queue.length == 0);
	client_free(client);
}

/* Absolute monotonic deadline for a timeout (0 = the client's default). */
static uint64_t deadline_of(const struct skuld_client *client, uint32_t timeout_ms)
{
	return skuld__now_ms() + (timeout_ms != 0 ? timeout_ms : client->options.timeout_ms);
}

static void timespec_of(uint64_t deadline_ms, struct timespec *out)
{
	out->tv_sec = (time_t)(deadline_ms / 1000u);
	out->tv_nsec = (long)(deadline_ms % 1000u) * 1000000L;
}

SKULD_EXTERN int skuld_client_connect(skuld_client *client, uint32_t timeout_ms)
{
	uint64_t deadline = deadline_of(client, timeout_ms);
	struct timespec until;
	int rc = 0;

	timespec_of(deadline, &until);
	pthread_mutex_lock(&client->lock);
	if (!client->thread_started)
		rc = skuld__io_start(client);
	if (rc == 0 && !client->connect_wanted) {
		client->connect_wanted = 1;
		client->last_error = 0;
		pthread_cond_broadcast(&client->io_wake);
	}
	/* Wait for CONNECTED, a fatal refusal (connect_wanted dropped) or the deadline. */
	while (rc == 0 && client->state != SKULD_STATE_CONNECTED && client->connect_wanted) {
		if (pthread_cond_timedwait(&client->state_wake, &client->lock, &until) == ETIMEDOUT)
			break;
	}
	if (rc == 0 && client->state != SKULD_STATE_CONNECTED)
		rc = client->last_error != 0 ? client->last_error : -ETIMEDOUT;
	pthread_mutex_unlock(&client->lock);
	return rc;
}

SKULD_EXTERN skuld_state skuld_client_state(skuld_client *client)
{
	skuld_state state;

	pthread_mutex_lock(&client->lock);
	state = client->state;
	pthread_mutex_unlock(&client->lock);
	return state;
}

SKULD_EXTERN const char *skuld_state_name(skuld_state state)
{
	switch (state) {
	case SKULD_STATE_DISCONNECTED:
		return "disconnected";
	case SKULD_STATE_RECONNECTING:
		return "reconnecting";
	case SKULD_STATE_CONNECTED:
		return "connected";
	}
	return "unknown";
}

SKULD_EXTERN skuld_u128 skuld_client_id(skuld_client *client)
{
	return client->client_id;
}

SKULD_EXTERN void skuld_client_info(skuld_client *client, struct skuld_client_info *info)
{
	pthread_mutex_lock(&client->lock);
	*info = (struct skuld_client_info){
	        .state = client->state,
	        .last_error = client->last_error,
	        .version = client->version,
	        .events_max = client->events_max,
	        .session = client->session,
	        .request_next = client->request_next,
	        .calls = client->calls,
	        .requests = client->requests,
	        .events = client->events,
	        .resends = client->resends,
	        .connects = client->connects,
	        .replayed = client->replayed,
	};
	pthread_mutex_unlock(&client->lock);
}

void skuld__call_finish(struct skuld__call *call, int status)
{
	call->status = status;
	call->where = SKULD__CALL_DONE;
	pthread_cond_signal(&call->done);
}

/* Unlinks a call whose caller gives up (lock held). */
static void call_abandon(struct skuld_client *client, struct skuld__call *call)
{
	if (call->where == SKULD__CALL_QUEUED) {
		skuld__queue_remove(&client->queue, call);
	} else if (call->where == SKULD__CALL_INFLIGHT) {
		for (uint32_t s = 0; s < client->request.slices_len; s++) {
			if (client->request.slices[s].call == call)
				client->request.slices[s].call = NULL;
		}
	}
	call->where = SKULD__CALL_DONE;
}

/* Queues call, wakes the I/O thread and waits until it is done or the
 * deadline passes. Returns the call's status. */
static int call_run(struct skuld_client *client, struct skuld__call *call, uint32_t timeout_ms)
{
	uint64_t deadline = deadline_of(client, timeout_ms);
	struct timespec until;
	int rc;

	timespec_of(deadline, &until);
	rc = cond_init_monotonic(&call->done);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&client->lock);
	if (!client->thread_started || client->closing) {
		rc = -ENOTCONN;
	} else if (!client->connect_wanted) {
		rc = client->last_error != 0 ? client->last_error : -ENOTCONN;
	} else if (client->queue.length >= client->options.calls_max) {
		rc = -EAGAIN;
	} else if (call->operation == SKULD_OP_SUBMIT && client->events_max != 0 &&
	           call->count > client->events_max) {
		rc = -EMSGSIZE;
	} else {
		if (call->operation == SKULD_OP_SUBMIT)
			client->calls++;
		skuld__queue_push(&client->queue, call);
		pthread_cond_signal(&client->io_wake);
		while (call->where != SKULD__CALL_DONE) {
			if (pthread_cond_timedwait(&call->done, &client->lock, &until) ==
			    ETIMEDOUT) {
				if (call->where != SKULD__CALL_DONE) {
					call_abandon(client, call);
					call->status = -ETIMEDOUT;
				}
			}
		}
		rc = call->status;
	}
	pthread_mutex_unlock(&client->lock);
	pthread_cond_destroy(&call->done);
	return rc;
}

SKULD_EXTERN int skuld_submit(skuld_client *client, const struct skuld_event *events,
                              uint32_t count, struct skuld_result *results, uint32_t *bad_index,
                              uint32_t timeout_ms)
{
	struct skuld__call call = {.operation = SKULD_OP_SUBMIT};

	if (count > SKULD_EVENTS_PER_FRAME_MAX)
		return -EMSGSIZE;
	if (count > 0 && (events == NULL || results == NULL))
		return -EINVAL;
	/* A malformed event would make the server reject the whole merged
	 * request, other callers' events with it: catch it here. */
	for (uint32_t i = 0; i < count; i++) {
		uint32_t status = proto_event_check(&events[i]);

		if (status != SKULD_OK) {
			if (bad_index != NULL)
				*bad_index = i;
			return (int)status;
		}
	}
	if (count == 0)
		return 0;
	call.events = events;
	call.count = count;
	call.results = results;
	return call_run(client, &call, timeout_ms);
}

SKULD_EXTERN int skuld_ping(skuld_client *client, uint32_t timeout_ms)
{
	struct skuld__call call = {.operation = SKULD_OP_PING};

	return call_run(client, &call, timeout_ms);
}

SKULD_EXTERN int skuld_query(skuld_client *client, const struct skuld_query *query,
                             union skuld_query_record *records, uint32_t capacity, uint32_t *count,
                             uint32_t timeout_ms)
{
	struct skuld_query request = *query;
	struct skuld__call call = {.operation = SKULD_OP_QUERY};
	uint32_t status;
	int rc;

	*count = 0;
	if (capacity == 0 || records == NULL)
		return -EINVAL;
	int list = request.kind == SKULD_QUERY_ITEM_LEVELS ||
	           request.kind == SKULD_QUERY_LOCATION_LEVELS ||
	           request.kind == SKULD_QUERY_CHANNEL || request.kind == SKULD_QUERY_PUSH ||
	           request.kind == SKULD_QUERY_PUSH_ALL || request.kind == SKULD_QUERY_EXCEPTIONS ||
	           request.kind == SKULD_QUERY_DISCREPANCIES ||
	           (request.kind == SKULD_QUERY_LISTING && request.item == 0);
	if (list) {
		if (request.limit == 0 || request.limit > capacity)
			request.limit =
			        capacity < SKULD_QUERY_LIMIT_MAX ? capacity : SKULD_QUERY_LIMIT_MAX;
	}
	status = proto_query_check(&request);
	if (status != SKULD_OK)
		return (int)status;
	call.body = &request;
	call.body_size = sizeof(request);
	call.reply = records;
	call.reply_record_size = sizeof(*records);
	call.reply_capacity = capacity;
	rc = call_run(client, &call, timeout_ms);
	if (rc == 0)
		*count = call.reply_count < capacity ? call.reply_count : capacity;
	return rc;
}

SKULD_EXTERN int skuld_query_level(skuld_client *client, uint32_t item, uint32_t location,
                                   struct skuld_level_record *out, uint32_t timeout_ms)
{
	struct skuld_query query = {.kind = SKULD_QUERY_LEVEL, .item = item, .location = location};
	union skuld_query_record record;
	uint32_t count;
	int rc = skuld_query(client, &query, &record, 1, &count, timeout_ms);

	if (rc == 0 && count != 1)
		rc = -EPROTO;
	if (rc == 0)
		*out = record.level;
	return rc;
}

SKULD_EXTERN int skuld_query_hold(skuld_client *client, uint64_t hold,
                                  struct skuld_hold_record *out, uint32_t timeout_ms)
{
	struct skuld_query query = {.kind = SKULD_QUERY_HOLD, .hold = hold};
	union skuld_query_record record;
	uint32_t count;
	int rc = skuld_query(client, &query, &record, 1, &count, timeout_ms);

	if (rc == 0 && (count != 1 || record.hold.kind != SKULD_QUERY_HOLD))
		rc = -EPROTO;
	if (rc == 0)
		*out = record.hold;
	return rc;
}

/* Sends one LOOKUP request (borrowed) once it passes the codec's rules.
 * Returns 0 with *count the matches answered, a SKULD_ERR_* for a malformed
 * request (nothing sent), or an error as for skuld_submit. */
static int lookup_run(skuld_client *client, const struct skuld_lookup *request,
                      struct skuld_lookup_match *matches, uint32_t capacity, uint32_t *count,
                      uint32_t timeout_ms)
{
	struct skuld__call call = {.operation = SKULD_OP_LOOKUP};
	uint32_t status = proto_lookup_check(request);
	int rc;

	if (status != SKULD_OK)
		return (int)status;
	call.body = request;
	call.body_size = sizeof(*request);
	call.reply = matches;
	call.reply_record_size = sizeof(*matches);
	call.reply_capacity = capacity;
	rc = call_run(client, &call, timeout_ms);
	if (rc == 0)
		*count = call.reply_count;
	return rc;
}

SKULD_EXTERN int skuld_lookup(skuld_client *client, uint16_t kind, const char *code,
                              struct skuld_lookup_match *matches, uint32_t capacity,
                              uint32_t *count, uint32_t timeout_ms)
{
	struct skuld_lookup request = {.kind = kind};

	*count = 0;
	if (capacity == 0 || matches == NULL ||
	    text_copy(request.code, sizeof(request.code), code, 0) != 0)
		return -EINVAL;
	return lookup_run(client, &request, matches, capacity, count, timeout_ms);
}

SKULD_EXTERN int skuld_lookup_sku(skuld_client *client, const char *sku, uint32_t *item,
                                  uint32_t timeout_ms)
{
	struct skuld_lookup_match match;
	uint32_t count;
	int rc = skuld_lookup(client, SKULD_LOOKUP_SKU, sku, &match, 1, &count, timeout_ms);

	*item = 0;
	if (rc == 0 && count < 1)
		rc = -EPROTO;
	if (rc == 0 && match.status == SKULD_OK)
		*item = match.id;
	return rc;
}

SKULD_EXTERN int skuld_lookup_item(skuld_client *client, uint32_t id,
                                   struct skuld_lookup_match *out, uint32_t timeout_ms)
{
	struct skuld_lookup request = {.kind = SKULD_LOOKUP_ITEM, .id = id};
	struct skuld_lookup_match match;
	uint32_t count = 0;
	int rc;

	if (id == 0 || out == NULL)
		return -EINVAL;
	rc = lookup_run(client, &request, &match, 1, &count, timeout_ms);
	/* Exactly one match, of this kind, about this id or none. */
	if (rc == 0 &&
	    (count != 1 || match.kind != SKULD_LOOKUP_ITEM || (match.id != id && match.id != 0)))
		rc = -EPROTO;
	if (rc == 0)
		*out = match;
	return rc;
}

SKULD_EXTERN int skuld_stats(skuld_client *client, struct skuld_stats *out, uint32_t timeout_ms)
{
	struct skuld__call call = {.operation = SKULD_OP_STATS};

	call.reply = out;
	call.reply_record_size = sizeof(*out);
	call.reply_capacity = 1;
	return call_run(client, &call, timeout_ms);
}

SKULD_EXTERN int skuld_stats_all(skuld_client *client, struct skuld_stats_all *out,
                                 uint32_t *records, uint32_t timeout_ms)
{
	static_assert(sizeof(struct skuld_stats_all) ==
	                      SKULD_STATS_RECORDS * SKULD_STATS_RECORD_SIZE,
	              "stats records");
	struct skuld_stats_all all;
	struct skuld__call call = {.operation = SKULD_OP_STATS};
	int rc;

	if (out == NULL)
		return -EINVAL;
	memset(&all, 0, sizeof(all));
	call.reply = &all;
	call.reply_record_size = SKULD_STATS_RECORD_SIZE;
	call.reply_capacity = SKULD_STATS_RECORDS;
	rc = call_run(client, &call, timeout_ms);
	if (rc == SKULD_ERR_COUNT) {
		/* A server from before the request's count (PROTOCOL.md section
		 * 14) takes only 0: ask it for its one record. */
		struct skuld__call first = {.operation = SKULD_OP_STATS};
		first.reply = &all;
		first.reply_record_size = SKULD_STATS_RECORD_SIZE;
		first.reply_capacity = 1;
		rc = call_run(client, &first, timeout_ms);
		call.reply_count = first.reply_count;
	}
	if (rc != 0)
		return rc;
	*out = all;
	if (records != NULL)
		*records = call.reply_count;
	return 0;
}
