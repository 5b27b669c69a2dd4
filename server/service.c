/*
 * service.c — frames in, ledger batches and log records, replies out
 * (service.h has the contract; docs/PROTOCOL.md section 8 the session rules).
 *
 * Records the service appends to the log (docs/FORMAT.md):
 *   - operation SUBMIT, client != 0: a client's request, events and results;
 *   - operation SUBMIT, client 0, request 0: a server batch (EXPIRE events);
 *   - operation REGISTER, count 0: the session of `client` (last applied
 *     request `request`) was evicted from the session table to make room.
 * Replay rebuilds the ledger, the directory and the session table from
 * exactly these.
 *
 * Roles (auth.h): a SUBMIT with any event the connection's role may not
 * post is applied as nothing at all: its record is logged (the attempt is
 * on the audit trail and the request number is used, so a retry gets the
 * same reply) with SKULD_DENIED for each refused event and
 * SKULD_LINKED_FAILED for the others, and replay applies no event of a
 * record that holds a SKULD_DENIED result.
 */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "directory.h"
#include "query.h"
#include "session.h"
#include "skuld_assert.h"

/* Marks the idempotency key of an EXPIRE the server writes ("EXPIRE" + id);
 * the ledger ignores keys of server events, this only keeps them non-zero. */
#define EXPIRE_KEY_HI 0x4552495058450000ull

struct service {
	struct service_config config;
	char log_dir[LOG_PATH_SIZE];
	char archive_dir[LOG_PATH_SIZE]; /* "": none */
	struct auth_table tokens;        /* token.<name> keys and the single admin token */
	uint64_t denials;                /* refused events and reads since the last log line */
	uint64_t denial_logged_ns;       /* when the last line was written */
	struct ledger *ledger;
	struct session_table sessions;
	struct directory directory;
	struct query_limits query_limits;
	struct log_writer *writer;
	uint64_t write_open;        /* sequence the write being built will get */
	uint64_t open_payload;      /* bytes of records in it */
	uint64_t applied_write;     /* last write holding anything applied */
	uint64_t durable_write;     /* last write on disk */
	uint64_t batch_ns;          /* timestamp of the last batch */
	struct log_position sealed; /* end of the last sealed write (segment_size: 0) */
	uint64_t start_ns;
	uint8_t *scratch; /* one reply frame */
	uint32_t scratch_size;
	uint8_t *record; /* one log record read back */
	uint64_t record_size;
	struct skuld_event *expire_events;
	struct skuld_result *expire_results;
	uint64_t *expire_ids;
	struct skuld_stats stats;
	struct skuld_stats_limits limits;   /* STATS record 1: limit hits, SUBMIT latency */
	struct skuld_stats_rejects rejects; /* STATS record 2: ERROR frames by status */
};

static uint32_t reply_frame_max(const struct service_config *config)
{
	uint64_t largest = (uint64_t)config->events_max * SKULD_RESULT_SIZE;
	uint64_t query = (uint64_t)config->query_limit * sizeof(struct skuld_level_record);
	largest = query > largest ? query : largest;
	uint64_t lookup = SKULD_LOOKUP_MATCHES_MAX * sizeof(struct skuld_lookup_match);
	largest = lookup > largest ? lookup : largest;
	uint64_t stats = (uint64_t)SKULD_STATS_RECORDS * SKULD_STATS_RECORD_SIZE;
	largest = stats > largest ? stats : largest;
	return (uint32_t)(SKULD_HEADER_SIZE + largest);
}

int service_create(const struct service_config *config, struct service **out)
{
	*out = NULL;
	if (config->events_max == 0 || config->events_max > config->ledger.batch_events_max ||
	    config->expire_batch == 0 || config->expire_batch > config->ledger.batch_events_max ||
	    config->query_limit == 0 || config->query_limit > SKULD_QUERY_LIMIT_MAX ||
	    config->log_dir == NULL || strlen(config->log_dir) >= LOG_PATH_SIZE - 32 ||
	    (config->archive_dir != NULL && strlen(config->archive_dir) >= LOG_PATH_SIZE - 32))
		return -EINVAL;
	if (config->token != NULL && strlen(config->token) > SKULD_TOKEN_SIZE)
		return -EINVAL;
	struct service *service = calloc(1, sizeof(*service));
	if (service == NULL)
		return -ENOMEM;
	service->config = *config;
	snprintf(service->log_dir, sizeof(service->log_dir), "%s", config->log_dir);
	if (config->tokens != NULL)
		service->tokens = *config->tokens;
	if (config->token != NULL && config->token[0] != '\0') {
		/* The single `token` of older configurations: an admin token. */
		struct auth_token admin = {.name = "token", .role = AUTH_ROLE_ADMIN};
		memcpy(admin.secret, config->token, strlen(config->token));
		if (auth_table_add(&service->tokens, &admin) != 0) {
			free(service);
			return -EINVAL;
		}
	}
	service->config.tokens = NULL;
	service->config.log_dir = service->log_dir;
	if (config->archive_dir != NULL)
		snprintf(service->archive_dir, sizeof(service->archive_dir), "%s",
		         config->archive_dir);
	service->config.archive_dir = service->archive_dir;
	service->config.token = NULL;
	service->query_limits = (struct query_limits){
	        .limit_max = config->query_limit,
	        .scan_max = config->query_scan,
	        .items_max = config->ledger.items_max,
	        .locations_max = config->ledger.locations_max,
	};
	service->scratch_size = reply_frame_max(config);
	service->record_size = log_record_size(config->ledger.batch_events_max);
	int ret = ledger_create(&config->ledger, &service->ledger);
	if (ret == 0)
		ret = session_table_init(&service->sessions, config->sessions_max);
	if (ret == 0)
		ret = directory_init(&service->directory, config->ledger.locations_max,
		                     config->ledger.channels_max);
	if (ret == 0) {
		service->scratch = aligned_alloc(64, (service->scratch_size + 63) & ~63u);
		service->record = aligned_alloc(64, (service->record_size + 63) & ~63ull);
		service->expire_events = calloc(config->expire_batch, sizeof(struct skuld_event));
		service->expire_results = calloc(config->expire_batch, sizeof(struct skuld_result));
		service->expire_ids = calloc(config->expire_batch, sizeof(uint64_t));
		if (service->scratch == NULL || service->record == NULL ||
		    service->expire_events == NULL || service->expire_results == NULL ||
		    service->expire_ids == NULL)
			ret = -ENOMEM;
	}
	if (ret != 0) {
		service_destroy(service);
		return ret;
	}
	service->stats.memory_bytes = config->memory_bytes;
	*out = service;
	return 0;
}

void service_destroy(struct service *service)
{
	if (service == NULL)
		return;
	ledger_destroy(service->ledger);
	session_table_destroy(&service->sessions);
	directory_destroy(&service->directory);
	free(service->scratch);
	free(service->record);
	free(service->expire_events);
	free(service->expire_results);
	free(service->expire_ids);
	free(service);
}

struct skuld_stats *service_stats(struct service *service)
{
	return &service->stats;
}

struct skuld_stats_limits *service_limits(struct service *service)
{
	return &service->limits;
}

void service_latency(struct service *service, uint64_t latency_ns)
{
	struct skuld_stats_limits *limits = &service->limits;
	uint32_t bucket = 0;
	while (bucket + 1 < SKULD_STATS_LATENCY_BUCKETS && latency_ns > SKULD_STATS_LATENCY_BASE_NS
	                                                                        << bucket)
		bucket++;
	limits->latency_bucket[bucket]++;
	limits->latency_count++;
	limits->latency_sum_ns += latency_ns;
	if (latency_ns > limits->latency_max_ns)
		limits->latency_max_ns = latency_ns;
}

struct ledger *service_ledger(struct service *service)
{
	return service->ledger;
}

uint64_t service_durable_write(const struct service *service)
{
	return service->durable_write;
}

bool service_log_pending(const struct service *service)
{
	return service->open_payload > 0;
}

/* ---- The log ---------------------------------------------------------- */

static bool log_room(const struct service *service, uint32_t count)
{
	return LOG_WRITE_HEADER_SIZE + service->open_payload + log_record_size(count) <=
	       service->config.write_size_max;
}

/* Appends a record to the open write (log_room said yes) and returns its
 * offset within the write. */
static uint64_t log_append(struct service *service, uint64_t timestamp_ns, skuld_u128 client,
                           uint64_t request, uint8_t operation, const struct skuld_event *events,
                           const struct skuld_result *results, uint32_t count)
{
	SKULD_ASSERT(log_room(service, count));
	struct log_record_info info = {
	        .timestamp_ns = timestamp_ns,
	        .client = client,
	        .request = request,
	        .operation = operation,
	};
	int ret = log_writer_append(service->writer, &info, events, results, count, NULL);
	/* Room was checked and an I/O failure stops the server before this. */
	SKULD_ASSERT(ret == 0);
	uint64_t offset = LOG_WRITE_HEADER_SIZE + service->open_payload;
	service->open_payload += log_record_size(count);
	service->applied_write = service->write_open;
	return offset;
}

static uint64_t batch_time(struct service *service, uint64_t now_ns)
{
	if (now_ns > service->batch_ns)
		service->batch_ns = now_ns;
	return service->batch_ns;
}

void service_start(struct service *service, struct log_writer *writer,
                   const struct log_position *position, uint64_t now_ns)
{
	service->writer = writer;
	service->write_open = position->write_next;
	service->durable_write = position->write_next - 1;
	service->applied_write = service->durable_write;
	service->open_payload = 0;
	service->start_ns = now_ns;
	service->stats.write_durable = service->durable_write;
	service->stats.event_durable = position->event_next - 1;
	service->stats.log_segment = position->segment;
	service->sealed = *position;
}

int service_seal(struct service *service, struct log_write *write)
{
	int ret = log_writer_seal(service->writer, write);
	if (ret != 0)
		return ret;
	SKULD_ASSERT(write->sequence == service->write_open);
	session_seal(&service->sessions, write->sequence, write->segment, write->offset);
	if (write->segment != service->sealed.segment)
		service->sealed.segment_size = 0;
	service->sealed.segment = write->segment;
	service->sealed.offset = write->offset + write->size;
	service->sealed.write_next = write->sequence + 1;
	service->sealed.event_next = write->event_next;
	service->write_open++;
	service->open_payload = 0;
	return 0;
}

void service_durable(struct service *service, const struct log_write *write, uint64_t latency_ns)
{
	log_writer_complete(service->writer, write);
	SKULD_ASSERT(write->sequence == service->durable_write + 1);
	service->durable_write = write->sequence;
	struct skuld_stats *stats = &service->stats;
	uint64_t events = write->event_next - write->event_first;
	stats->log_writes++;
	stats->log_bytes += write->size;
	stats->write_durable = write->sequence;
	stats->event_durable = write->event_next - 1;
	stats->log_segment = write->segment;
	stats->group_records_last = write->record_count;
	stats->group_events_last = events;
	if (write->record_count > stats->group_records_max)
		stats->group_records_max = write->record_count;
	if (events > stats->group_events_max)
		stats->group_events_max = events;
	stats->fsync_ns_last = latency_ns;
	stats->fsync_ns_total += latency_ns;
	if (latency_ns > stats->fsync_ns_max)
		stats->fsync_ns_max = latency_ns;
}

/* ---- Replies ------------------------------------------------------------ */

/* Seals a reply frame whose body is already in the scratch after the header. */
static void reply_frame(struct service *service, struct service_reply *reply, uint8_t operation,
                        uint16_t version, skuld_u128 client, uint64_t request, uint32_t body_size,
                        uint32_t count, uint32_t result)
{
	SKULD_ASSERT(SKULD_HEADER_SIZE + body_size <= service->scratch_size);
	struct skuld_header *header = (struct skuld_header *)service->scratch;
	memset(header, 0, sizeof(*header));
	header->version = version;
	header->operation = operation;
	header->flags = SKULD_FRAME_REPLY;
	header->request = request;
	header->client = client;
	header->body_size = body_size;
	header->count = count;
	header->result = result;
	proto_header_seal(header, service->scratch + SKULD_HEADER_SIZE);
	reply->data = service->scratch;
	reply->size = SKULD_HEADER_SIZE + body_size;
	reply->tag = service->applied_write;
}

static struct session *peer_session(struct service *service, const struct service_peer *peer,
                                    uint64_t owner)
{
	if (!peer->registered || peer->session == 0)
		return NULL;
	struct session *session = &service->sessions.sessions[peer->session - 1];
	if (!session->used || session->id != peer->session_id)
		return NULL;
	if (owner != 0 && session->owner != owner)
		return NULL;
	return session;
}

void service_error(struct service *service, const struct service_peer *peer,
                   const struct skuld_header *header, uint32_t status, uint32_t index,
                   const char *message, struct service_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	struct skuld_error_body *body =
	        (struct skuld_error_body *)(service->scratch + SKULD_HEADER_SIZE);
	memset(body, 0, sizeof(*body));
	body->status = status;
	body->index = index;
	size_t length = strnlen(message, sizeof(body->message));
	memcpy(body->message, message, length);
	/* Keep the text valid: printable, no trailing space. */
	for (size_t i = 0; i < length; i++) {
		if (body->message[i] < 0x20 || body->message[i] > 0x7e)
			body->message[i] = '?';
	}
	while (length > 0 && body->message[length - 1] == ' ')
		body->message[--length] = '\0';
	skuld_u128 client = {0, 0};
	struct session *session = peer_session(service, peer, 0);
	if (session != NULL)
		client = session->client;
	else if (header != NULL)
		client = header->client;
	uint16_t version = peer->registered ? peer->version : 1;
	reply_frame(service, reply, SKULD_OP_ERROR, version, client,
	            header != NULL ? header->request : 0, sizeof(*body), 1, status);
	reply->close = true;
	service->stats.frames_rejected++;
	if (status >= 100 && status - 100 < sizeof(service->rejects.rejected) / sizeof(uint64_t))
		service->rejects.rejected[status - 100]++;
	if (status == SKULD_ERR_TOKEN)
		service->limits.tokens_refused++;
	if (status == SKULD_ERR_DENIED)
		service->limits.denied_reads++;
}

static enum service_outcome frame_error(struct service *service, const struct service_peer *peer,
                                        const struct skuld_header *header, uint32_t status,
                                        const char *message, struct service_reply *reply)
{
	service_error(service, peer, header, status, 0, message, reply);
	return SERVICE_REPLY;
}

uint32_t service_reply_size_max(const struct service *service, const struct skuld_header *header)
{
	uint64_t body = 0;
	switch (header->operation) {
	case SKULD_OP_REGISTER:
		body = sizeof(struct skuld_register_reply);
		break;
	case SKULD_OP_SUBMIT:
		body = (uint64_t)header->count * SKULD_RESULT_SIZE;
		break;
	case SKULD_OP_QUERY:
		body = (uint64_t)service->config.query_limit * sizeof(struct skuld_level_record);
		break;
	case SKULD_OP_LOOKUP:
		body = SKULD_LOOKUP_MATCHES_MAX * sizeof(struct skuld_lookup_match);
		break;
	case SKULD_OP_STATS:
		body = (uint64_t)SKULD_STATS_RECORDS * SKULD_STATS_RECORD_SIZE;
		break;
	default:
		break;
	}
	if (body < sizeof(struct skuld_error_body))
		body = sizeof(struct skuld_error_body);
	return (uint32_t)(SKULD_HEADER_SIZE + body);
}

/* ---- REGISTER ------------------------------------------------------------ */

/* Makes room for a new session: evicts the least recently used detached
 * session and logs the eviction. */
static enum service_outcome session_make_room(struct service *service)
{
	if (service->sessions.count < service->sessions.capacity)
		return SERVICE_REPLY;
	struct session *victim = session_lru_victim(&service->sessions);
	SKULD_ASSERT(victim != NULL); /* checked by the caller */
	if (!log_room(service, 0))
		return SERVICE_WAIT_LOG;
	log_append(service, service->batch_ns, victim->client, victim->request_last,
	           SKULD_OP_REGISTER, NULL, NULL, 0);
	session_remove(&service->sessions, victim);
	return SERVICE_REPLY;
}

static enum service_outcome frame_register(struct service *service, struct service_peer *peer,
                                           uint64_t owner, const struct skuld_header *header,
                                           const struct skuld_register_request *request,
                                           struct service_reply *reply)
{
	if (peer->registered)
		return frame_error(service, peer, header, SKULD_ERR_REQUEST,
		                   "this connection is registered already", reply);
	if (header->request != 0)
		return frame_error(service, peer, header, SKULD_ERR_REQUEST,
		                   "REGISTER carries request number 0", reply);
	int token = -1;
	if (service->tokens.count > 0) {
		token = auth_table_match(&service->tokens, request->token);
		if (token < 0)
			return frame_error(service, peer, header, SKULD_ERR_TOKEN, "token refused",
			                   reply);
	}
	uint16_t version = proto_version_negotiate(request->version_min, request->version_max);
	if (version == 0)
		return frame_error(service, peer, header, SKULD_ERR_VERSION,
		                   "no protocol version in common", reply);
	struct session *session = session_find(&service->sessions, header->client);
	if (session == NULL) {
		if (service->sessions.count == service->sessions.capacity &&
		    session_lru_victim(&service->sessions) == NULL) {
			service->limits.sessions_busy++;
			return frame_error(service, peer, header, SKULD_ERR_BUSY,
			                   "every session is connected; retry later", reply);
		}
		if (session_make_room(service) == SERVICE_WAIT_LOG)
			return SERVICE_WAIT_LOG;
		session = session_create(&service->sessions, header->client);
		SKULD_ASSERT(session != NULL);
	} else if (session->owner != 0 && session->owner != owner) {
		/* The client reconnected before its old connection was noticed
		 * dead: the new connection takes the session over. */
		reply->takeover = session->owner;
	}
	session_attach(&service->sessions, session, owner);
	peer->registered = true;
	peer->session = session_index(&service->sessions, session) + 1;
	peer->session_id = session->id;
	peer->version = version;
	peer->token = token;
	peer->grant = (struct auth_grant){
	        .role = token < 0 ? AUTH_ROLE_ADMIN : service->tokens.tokens[token].role,
	};

	struct skuld_register_reply *body =
	        (struct skuld_register_reply *)(service->scratch + SKULD_HEADER_SIZE);
	memset(body, 0, sizeof(*body));
	body->version = version;
	body->events_max = service->config.events_max;
	body->request_next = session->request_last + 1;
	body->session = session->id;
	uint64_t takeover = reply->takeover;
	reply_frame(service, reply, SKULD_OP_REGISTER, 1, header->client, 0, sizeof(*body), 1,
	            SKULD_OK);
	reply->takeover = takeover;
	return SERVICE_REPLY;
}

/* ---- Roles ------------------------------------------------------------------ */

/* The peer's grant, its binding resolved now if it was not yet: a location
 * or channel named by code may be defined by an admin after the token's
 * connection registered, and codes never change owner once defined. */
static const struct auth_grant *peer_grant(const struct service *service, struct service_peer *peer)
{
	struct auth_grant *grant = &peer->grant;
	if (peer->token < 0 || (grant->location != 0 || grant->channel != 0))
		return grant;
	const struct auth_token *token = &service->tokens.tokens[peer->token];
	uint32_t id = token->bind_id;
	bool location = token->role == AUTH_ROLE_TILL;
	if (id == 0 && token->bind_code[0] != '\0')
		id = directory_find(&service->directory,
		                    location ? DIRECTORY_LOCATION : DIRECTORY_CHANNEL,
		                    token->bind_code);
	if (location)
		grant->location = id;
	else if (token->role == AUTH_ROLE_GATEWAY || token->role == AUTH_ROLE_PUSH)
		grant->channel = id;
	return grant;
}

/* Writes one line about a refusal, at most one a second; the lines between
 * are counted into the next one. */
static void denial_log(struct service *service, const struct service_peer *peer, uint64_t now_ns,
                       const char *what, uint32_t count)
{
	service->denials += count;
	if (service->denial_logged_ns != 0 && now_ns < service->denial_logged_ns + 1000000000ull)
		return;
	const struct auth_token *token = &service->tokens.tokens[peer->token];
	fprintf(stderr, "skuld: denied: token '%s' (%s) %s; %llu refusal%s since the last line\n",
	        token->name, auth_role_name(token->role), what,
	        (unsigned long long)service->denials, service->denials == 1 ? "" : "s");
	service->denials = 0;
	service->denial_logged_ns = now_ns != 0 ? now_ns : 1;
}

/* Checks every event of a SUBMIT against the peer's role. When any is
 * denied, fills results (SKULD_DENIED for those, SKULD_LINKED_FAILED for
 * the others) and returns how many were denied; else returns 0. */
static uint32_t submit_denied(struct service *service, struct service_peer *peer, uint64_t now_ns,
                              const struct skuld_event *events, uint32_t count,
                              struct skuld_result *results)
{
	const struct auth_grant *grant = peer_grant(service, peer);
	if (grant->role == AUTH_ROLE_ADMIN)
		return 0;
	memset(results, 0, (size_t)count * sizeof(*results));
	uint32_t denied = 0;
	uint32_t first = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct auth_facts facts = {0};
		if (auth_event_needs_hold(grant, &events[i])) {
			struct ledger_hold_info hold;
			facts.hold_known =
			        ledger_hold(service->ledger, events[i].id, &hold) == SKULD_OK;
			facts.hold_channel = hold.channel;
		}
		if (auth_event_needs_pool(grant, &events[i]))
			facts.location_in_pool = ledger_pool_member(service->ledger, grant->channel,
			                                            events[i].location);
		results[i].index = i;
		results[i].status = (uint16_t)auth_event(grant, &events[i], &facts);
		if (results[i].status != SKULD_OK && denied++ == 0)
			first = i;
	}
	if (denied == 0)
		return 0;
	service->limits.denied_events += denied;
	for (uint32_t i = 0; i < count; i++) {
		if (results[i].status == SKULD_OK)
			results[i].status = SKULD_LINKED_FAILED;
	}
	char what[96];
	snprintf(what, sizeof(what), "%u of %u events of a request (first: event %u, %s)", denied,
	         count, first, skuld_event_kind_name(events[first].kind));
	denial_log(service, peer, now_ns, what, denied);
	return denied;
}

/* True when a logged record is a refused request (no event applied). */
static bool record_refused(const struct skuld_result *results, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		if (results[i].status == SKULD_DENIED)
			return true;
	}
	return false;
}

/* ---- SUBMIT ----------------------------------------------------------------- */

/* Reads the saved results of session's last request back from its log
 * record into the reply scratch. Returns 0 or -errno / -EBADMSG. */
static int saved_results_read(struct service *service, const struct session *session)
{
	char name[64];
	char path[LOG_PATH_SIZE + 64];
	if (log_segment_name(name, sizeof(name), session->record_segment) != 0)
		return -ENAMETOOLONG;
	snprintf(path, sizeof(path), "%s/%s", service->log_dir, name);
	uint64_t size = log_record_size(session->record_count);
	if (size > service->record_size)
		return -EBADMSG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && service->archive_dir[0] != '\0') {
		/* Retention moved the segment to the archive (retention.h). */
		snprintf(path, sizeof(path), "%s/%s", service->archive_dir, name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	int ret = 0;
	uint64_t done = 0;
	while (ret == 0 && done < size) {
		ssize_t got = pread(fd, service->record + done, size - done,
		                    (off_t)(session->record_offset + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			ret = -errno;
		else if (got == 0)
			ret = -EBADMSG;
		else
			done += (uint64_t)got;
	}
	close(fd);
	if (ret != 0)
		return ret;
	const struct log_record_header *record = (const struct log_record_header *)service->record;
	if (skuld_checksum(service->record + 8, size - 8) != record->checksum ||
	    !skuld_u128_equal(record->client, session->client) ||
	    record->request != session->request_last || record->count != session->record_count)
		return -EBADMSG;
	memcpy(service->scratch + SKULD_HEADER_SIZE,
	       service->record + LOG_RECORD_HEADER_SIZE +
	               (uint64_t)record->count * SKULD_EVENT_SIZE,
	       (uint64_t)record->count * SKULD_RESULT_SIZE);
	return 0;
}

static enum service_outcome submit_retry(struct service *service, struct service_peer *peer,
                                         struct session *session, const struct skuld_header *header,
                                         struct service_reply *reply)
{
	if (header->count != session->record_count)
		return frame_error(service, peer, header, SKULD_ERR_REQUEST,
		                   "retry has another event count than the applied request", reply);
	if (session->record_write > service->durable_write) {
		reply->wait_write = session->record_write;
		return SERVICE_WAIT_DURABLE;
	}
	int ret = saved_results_read(service, session);
	if (ret != 0) {
		fprintf(stderr,
		        "skuld: saved reply of session %llu request %llu unreadable at segment "
		        "%llu offset %llu: %s\n",
		        (unsigned long long)session->id, (unsigned long long)session->request_last,
		        (unsigned long long)session->record_segment,
		        (unsigned long long)session->record_offset,
		        ret == -EBADMSG ? "record does not match" : strerror(-ret));
		return frame_error(service, peer, header, SKULD_ERR_REQUEST,
		                   "saved reply unavailable", reply);
	}
	service->stats.requests_retried++;
	reply_frame(service, reply, SKULD_OP_SUBMIT, peer->version, header->client, header->request,
	            header->count * SKULD_RESULT_SIZE, header->count, SKULD_OK);
	return SERVICE_REPLY;
}

static enum service_outcome frame_submit(struct service *service, struct service_peer *peer,
                                         struct session *session, uint64_t now_ns,
                                         const struct skuld_header *header,
                                         const struct skuld_event *events,
                                         struct service_reply *reply)
{
	if (session->request_last != 0 && header->request == session->request_last)
		return submit_retry(service, peer, session, header, reply);
	if (header->request != session->request_last + 1) {
		char message[56];
		snprintf(message, sizeof(message), "request out of sequence: expected %llu",
		         (unsigned long long)(session->request_last + 1));
		return frame_error(service, peer, header, SKULD_ERR_REQUEST, message, reply);
	}
	uint32_t count = header->count;
	if (!log_room(service, count))
		return SERVICE_WAIT_LOG;
	uint64_t timestamp = batch_time(service, now_ns);
	struct skuld_result *results =
	        (struct skuld_result *)(service->scratch + SKULD_HEADER_SIZE);
	bool refused = submit_denied(service, peer, now_ns, events, count, results) > 0;
	if (!refused) {
		ledger_sequence(service->ledger, log_writer_event_next(service->writer));
		ledger_apply(service->ledger, timestamp, LEDGER_SOURCE_CLIENT, events, count,
		             results);
	}
	uint64_t offset = log_append(service, timestamp, header->client, header->request,
	                             SKULD_OP_SUBMIT, events, results, count);
	if (!refused)
		directory_note(&service->directory, events, results, count);
	session_applied(&service->sessions, session, header->request, service->write_open, offset,
	                count);
	service->stats.requests++;
	service->stats.events += count;
	reply_frame(service, reply, SKULD_OP_SUBMIT, peer->version, header->client, header->request,
	            count * SKULD_RESULT_SIZE, count, SKULD_OK);
	return SERVICE_REPLY;
}

/* ---- Reads ------------------------------------------------------------------ */

static void stats_fill(struct service *service, uint64_t now_ns, struct skuld_stats *out)
{
	struct skuld_stats *stats = &service->stats;
	stats->uptime_ns = now_ns > service->start_ns ? now_ns - service->start_ns : 0;
	stats->sessions = service->sessions.count;
	stats->holds_open = ledger_holds_open(service->ledger);
	*out = *stats;
}

static enum service_outcome frame_read(struct service *service, struct service_peer *peer,
                                       uint64_t now_ns, const struct skuld_header *header,
                                       const void *body, struct service_reply *reply)
{
	uint8_t *out = service->scratch + SKULD_HEADER_SIZE;
	uint32_t count = 0;
	uint32_t body_size = 0;
	const struct skuld_query *query = header->operation == SKULD_OP_QUERY ? body : NULL;
	if (auth_read(peer_grant(service, peer), header->operation, query) != SKULD_OK) {
		char what[64];
		snprintf(what, sizeof(what), "a %s (query kind %u)",
		         header->operation == SKULD_OP_QUERY ? "QUERY" : "read",
		         query != NULL ? query->kind : 0);
		denial_log(service, peer, now_ns, what, 1);
		return frame_error(service, peer, header, SKULD_ERR_DENIED,
		                   "this token's role may not ask this", reply);
	}
	switch (header->operation) {
	case SKULD_OP_PING:
		break;
	case SKULD_OP_QUERY:
		count = query_answer(service->ledger, &service->query_limits, body, out);
		body_size = count * (uint32_t)sizeof(struct skuld_level_record);
		service->stats.queries++;
		break;
	case SKULD_OP_LOOKUP:
		count = lookup_answer(service->ledger, &service->directory, body,
		                      (struct skuld_lookup_match *)out);
		body_size = count * (uint32_t)sizeof(struct skuld_lookup_match);
		service->stats.queries++;
		break;
	case SKULD_OP_STATS:
		/* The request's count is the records the client takes (0: one,
		 * from clients that knew only record 0); never more than we have. */
		count = header->count == 0 ? 1 : header->count;
		count = count < SKULD_STATS_RECORDS ? count : SKULD_STATS_RECORDS;
		service->stats.queries++;
		stats_fill(service, now_ns, (struct skuld_stats *)out);
		memcpy(out + SKULD_STATS_RECORD_SIZE, &service->limits, sizeof(service->limits));
		memcpy(out + 2 * SKULD_STATS_RECORD_SIZE, &service->rejects,
		       sizeof(service->rejects));
		body_size = count * SKULD_STATS_RECORD_SIZE;
		break;
	default:
		return frame_error(service, peer, header, SKULD_ERR_OPERATION,
		                   "operation not accepted from a client", reply);
	}
	reply_frame(service, reply, header->operation, peer->version, header->client,
	            header->request, body_size, count, SKULD_OK);
	return SERVICE_REPLY;
}

enum service_outcome service_frame(struct service *service, struct service_peer *peer,
                                   uint64_t owner, uint64_t now_ns,
                                   const struct skuld_header *header, const void *body,
                                   struct service_reply *reply)
{
	SKULD_ASSERT(owner != 0 && service->writer != NULL);
	memset(reply, 0, sizeof(*reply));
	if (header->operation == SKULD_OP_REGISTER)
		return frame_register(service, peer, owner, header, body, reply);
	if (!peer->registered)
		return frame_error(service, peer, header, SKULD_ERR_NOT_REGISTERED,
		                   "the first frame must be REGISTER", reply);
	if (header->version != peer->version)
		return frame_error(service, peer, header, SKULD_ERR_VERSION,
		                   "frame version is not the session's", reply);
	struct session *session = peer_session(service, peer, owner);
	if (session == NULL)
		return frame_error(service, peer, header, SKULD_ERR_REQUEST,
		                   "session taken over by another connection", reply);
	if (!skuld_u128_equal(header->client, session->client))
		return frame_error(service, peer, header, SKULD_ERR_CLIENT,
		                   "client id is not the session's", reply);
	if (header->operation == SKULD_OP_SUBMIT)
		return frame_submit(service, peer, session, now_ns, header, body, reply);
	return frame_read(service, peer, now_ns, header, body, reply);
}

void service_peer_close(struct service *service, struct service_peer *peer, uint64_t owner)
{
	struct session *session = peer_session(service, peer, owner);
	if (session != NULL)
		session_detach(&service->sessions, session);
	memset(peer, 0, sizeof(*peer));
}

/* ---- Hold expiry ------------------------------------------------------------ */

int service_expire(struct service *service, uint64_t now_ns)
{
	if (ledger_holds_open(service->ledger) == 0)
		return 0;
	uint64_t timestamp = now_ns > service->batch_ns ? now_ns : service->batch_ns;
	uint32_t count = ledger_expire_due(service->ledger, timestamp, service->config.expire_batch,
	                                   service->expire_ids);
	if (count == 0)
		return 0;
	if (!log_room(service, count))
		return -EAGAIN;
	timestamp = batch_time(service, timestamp);
	memset(service->expire_events, 0, (size_t)count * sizeof(struct skuld_event));
	for (uint32_t i = 0; i < count; i++) {
		struct skuld_event *event = &service->expire_events[i];
		event->kind = SKULD_EXPIRE;
		event->id = service->expire_ids[i];
		event->key.lo = service->expire_ids[i];
		event->key.hi = EXPIRE_KEY_HI;
	}
	ledger_sequence(service->ledger, log_writer_event_next(service->writer));
	ledger_apply(service->ledger, timestamp, LEDGER_SOURCE_SERVER, service->expire_events,
	             count, service->expire_results);
	skuld_u128 server = {0, 0};
	log_append(service, timestamp, server, 0, SKULD_OP_SUBMIT, service->expire_events,
	           service->expire_results, count);
	service->stats.events_expired += count;
	return (int)count;
}

bool service_holds_open(const struct service *service)
{
	return ledger_holds_open(service->ledger) > 0;
}

/* ---- Recovery --------------------------------------------------------------- */

static int replay_session(struct service *service, const struct log_record *record)
{
	const struct log_record_header *header = record->header;
	struct session *session = session_find(&service->sessions, header->client);
	if (header->operation == SKULD_OP_REGISTER) {
		if (session != NULL)
			session_remove(&service->sessions, session);
		return 0;
	}
	if (session == NULL) {
		if (service->sessions.count == service->sessions.capacity)
			session_remove(&service->sessions, session_lru_victim(&service->sessions));
		session = session_create(&service->sessions, header->client);
		SKULD_ASSERT(session != NULL);
	}
	session_recovered(&service->sessions, session, header->request, record->write_sequence,
	                  record->segment, record->offset, header->count);
	return 0;
}

int service_replay(struct service *service, const struct log_record *record, char *why,
                   size_t why_size)
{
	const struct log_record_header *header = record->header;
	bool server = skuld_u128_is_zero(header->client);
	if (header->operation == SKULD_OP_REGISTER && header->count == 0 && !server)
		return replay_session(service, record);
	if (header->operation != SKULD_OP_SUBMIT) {
		snprintf(why, why_size, "record of unknown operation %u", header->operation);
		return -EPROTO;
	}
	if (header->count > service->config.ledger.batch_events_max) {
		snprintf(why, why_size,
		         "record of %u events exceeds frame_events_max %u of this configuration",
		         header->count, service->config.ledger.batch_events_max);
		return -EPROTO;
	}
	if (record_refused(record->results, header->count))
		return server ? 0 : replay_session(service, record);
	struct skuld_result *results = (struct skuld_result *)service->record;
	SKULD_ASSERT((uint64_t)header->count * SKULD_RESULT_SIZE <= service->record_size);
	ledger_sequence(service->ledger, header->event_first);
	ledger_apply(service->ledger, header->timestamp_ns,
	             server ? LEDGER_SOURCE_SERVER : LEDGER_SOURCE_CLIENT, record->events,
	             header->count, results);
	if (header->timestamp_ns > service->batch_ns)
		service->batch_ns = header->timestamp_ns;
	for (uint32_t i = 0; i < header->count; i++) {
		if (memcmp(&results[i], &record->results[i], sizeof(results[i])) != 0) {
			snprintf(why, why_size,
			         "replayed event %u (%s) gives %s where the log says %s "
			         "(capacities changed since it was written?)",
			         i, skuld_event_kind_name(record->events[i].kind),
			         skuld_status_name(results[i].status),
			         skuld_status_name(record->results[i].status));
			return -EPROTO;
		}
	}
	directory_note(&service->directory, record->events, results, header->count);
	if (server)
		return 0;
	return replay_session(service, record);
}

/* ---- Snapshots ----------------------------------------------------------------
 *
 * The service section, version 1 (docs/FORMAT.md): a 32-byte header and one
 * 64-byte record per session that has applied a request, detached sessions
 * first from least to most recently used, then the attached ones. A session
 * that never applied a request has nothing in the log either (replay would
 * not know it) and is left out. */

#define SERVICE_SNAPSHOT_MAGIC   0x4356524553444c53ull /* "SLDSERVC" as bytes */
#define SERVICE_SNAPSHOT_VERSION 1u

struct service_snapshot_header {
	uint64_t magic;           /* SERVICE_SNAPSHOT_MAGIC */
	uint32_t version;         /* SERVICE_SNAPSHOT_VERSION */
	uint32_t session_count;   /* records that follow */
	uint64_t batch_ns;        /* timestamp of the last batch */
	uint64_t session_id_next; /* the id the next new session gets */
};
static_assert(sizeof(struct service_snapshot_header) == 32, "service section header");

struct service_snapshot_session {
	skuld_u128 client;       /* non-zero, unique */
	uint64_t id;             /* 1 .. session_id_next - 1 */
	uint64_t request_last;   /* >= 1 */
	uint64_t record_write;   /* write holding that request's record */
	uint64_t record_segment; /* its segment */
	uint64_t record_offset;  /* its byte offset in the segment */
	uint32_t record_count;   /* its events */
	uint32_t reserved;       /* zero */
};
static_assert(sizeof(struct service_snapshot_session) == 64, "service section session");
static_assert(offsetof(struct service_snapshot_session, record_count) == 56, "session record");

int service_snapshot_position(const struct service *service, struct log_position *position)
{
	if (service->open_payload > 0)
		return -EAGAIN;
	struct log_position durable;
	log_writer_position(service->writer, &durable);
	*position = service->sealed;
	position->checksum_prev = log_writer_checksum_last(service->writer);
	position->log_id = durable.log_id;
	SKULD_ASSERT(position->event_next == log_writer_event_next(service->writer));
	return 0;
}

static bool session_saved(const struct session *session)
{
	return session->used && session->request_last != 0;
}

uint64_t service_reply_segment_min(const struct service *service)
{
	uint64_t min = 0;
	for (uint32_t i = 0; i < service->sessions.capacity; i++) {
		const struct session *session = &service->sessions.sessions[i];
		if (session_saved(session) && session->record_segment != 0 &&
		    (min == 0 || session->record_segment < min))
			min = session->record_segment;
	}
	return min;
}

uint64_t service_snapshot_size(const struct service *service)
{
	uint64_t count = 0;
	for (uint32_t i = 0; i < service->sessions.capacity; i++)
		count += session_saved(&service->sessions.sessions[i]);
	return sizeof(struct service_snapshot_header) +
	       count * sizeof(struct service_snapshot_session);
}

static int session_save(const struct session *session, const struct snapshot_sink *sink)
{
	SKULD_ASSERT(!session->on_open); /* only between writes */
	struct service_snapshot_session record = {
	        .client = session->client,
	        .id = session->id,
	        .request_last = session->request_last,
	        .record_write = session->record_write,
	        .record_segment = session->record_segment,
	        .record_offset = session->record_offset,
	        .record_count = session->record_count,
	};
	return sink->write(sink->context, &record, sizeof(record));
}

int service_snapshot_save(const struct service *service, const struct snapshot_sink *sink)
{
	const struct session_table *table = &service->sessions;
	struct service_snapshot_header header = {
	        .magic = SERVICE_SNAPSHOT_MAGIC,
	        .version = SERVICE_SNAPSHOT_VERSION,
	        .session_count = (uint32_t)((service_snapshot_size(service) - sizeof(header)) /
	                                    sizeof(struct service_snapshot_session)),
	        .batch_ns = service->batch_ns,
	        .session_id_next = table->id_next,
	};
	int ret = sink->write(sink->context, &header, sizeof(header));
	for (uint32_t at = table->lru_head; ret == 0 && at != SESSION_NONE;) {
		const struct session *session = &table->sessions[at - 1];
		if (session_saved(session))
			ret = session_save(session, sink);
		at = session->lru_next;
	}
	for (uint32_t i = 0; ret == 0 && i < table->capacity; i++) {
		const struct session *session = &table->sessions[i];
		if (session_saved(session) && !session->on_lru)
			ret = session_save(session, sink);
	}
	return ret;
}

static int snapshot_refused(char *reason, size_t reason_size, const char *text, uint64_t value)
{
	snprintf(reason, reason_size, "service section: %s (%llu)", text,
	         (unsigned long long)value);
	return -EBADMSG;
}

/* Checks a session record against the snapshot's log position. */
static const char *session_record_wrong(const struct service *service,
                                        const struct service_snapshot_session *record,
                                        const struct service_snapshot_header *header,
                                        const struct log_position *position)
{
	if (skuld_u128_is_zero(record->client) || record->reserved != 0)
		return "a session without a client id";
	if (record->id == 0 || record->id >= header->session_id_next)
		return "a session id out of range";
	if (record->request_last == 0)
		return "a session without an applied request";
	if (record->record_write == 0 || record->record_write >= position->write_next ||
	    record->record_segment == 0 || record->record_segment > position->segment ||
	    record->record_offset < LOG_BLOCK_SIZE + LOG_WRITE_HEADER_SIZE ||
	    record->record_offset >= LOG_SEGMENT_SIZE_MAX ||
	    record->record_count > service->config.ledger.batch_events_max)
		return "a saved reply outside the log the snapshot covers";
	if (session_find((struct session_table *)&service->sessions, record->client) != NULL)
		return "a client with two sessions";
	return NULL;
}

int service_snapshot_load(struct service *service, const struct snapshot_source *source,
                          const struct log_position *position, char *reason, size_t reason_size)
{
	struct service_snapshot_header header;
	int ret = source->read(source->context, &header, sizeof(header));
	if (ret != 0) {
		snprintf(reason, reason_size, "service section: ends early (%s)", strerror(-ret));
		return ret;
	}
	if (header.magic != SERVICE_SNAPSHOT_MAGIC)
		return snapshot_refused(reason, reason_size, "bad magic", header.magic);
	if (header.version != SERVICE_SNAPSHOT_VERSION)
		return snapshot_refused(reason, reason_size, "unsupported version", header.version);
	if (header.session_count > service->sessions.capacity || header.session_id_next == 0)
		return snapshot_refused(reason, reason_size, "more sessions than sessions_max",
		                        header.session_count);
	for (uint32_t i = 0; i < header.session_count; i++) {
		struct service_snapshot_session record;
		ret = source->read(source->context, &record, sizeof(record));
		if (ret != 0) {
			snprintf(reason, reason_size,
			         "service section: ends early at session %u (%s)", i,
			         strerror(-ret));
			return ret;
		}
		const char *wrong = session_record_wrong(service, &record, &header, position);
		if (wrong != NULL)
			return snapshot_refused(reason, reason_size, wrong, i);
		struct session *session = session_create(&service->sessions, record.client);
		SKULD_ASSERT(session != NULL); /* count <= capacity */
		session->id = record.id;
		session_recovered(&service->sessions, session, record.request_last,
		                  record.record_write, record.record_segment, record.record_offset,
		                  record.record_count);
	}
	service->sessions.id_next = header.session_id_next;
	service->batch_ns = header.batch_ns;
	/* The directory is the catalog's codes (directory.h), rebuilt. */
	char code[SKULD_CODE_SIZE];
	for (uint32_t id = 1; id <= service->config.ledger.locations_max; id++) {
		if (ledger_location_code(service->ledger, id, code) &&
		    directory_define(&service->directory, DIRECTORY_LOCATION, id, code) != 0)
			return snapshot_refused(reason, reason_size, "a location code used twice",
			                        id);
	}
	for (uint32_t id = 1; id <= service->config.ledger.channels_max; id++) {
		if (ledger_channel_code(service->ledger, id, code) &&
		    directory_define(&service->directory, DIRECTORY_CHANNEL, id, code) != 0)
			return snapshot_refused(reason, reason_size, "a channel name used twice",
			                        id);
	}
	/* The ledger's next sequence is the snapshot's position (a version 2
	 * ledger section does not carry it; discrepancy tracking begins there). */
	ledger_sequence(service->ledger, position->event_next);
	return 0;
}

int service_reset(struct service *service)
{
	SKULD_ASSERT(service->writer == NULL);
	ledger_destroy(service->ledger);
	service->ledger = NULL;
	session_table_destroy(&service->sessions);
	directory_destroy(&service->directory);
	int ret = ledger_create(&service->config.ledger, &service->ledger);
	if (ret == 0)
		ret = session_table_init(&service->sessions, service->config.sessions_max);
	if (ret == 0)
		ret = directory_init(&service->directory, service->config.ledger.locations_max,
		                     service->config.ledger.channels_max);
	service->batch_ns = 0;
	uint64_t memory_bytes = service->stats.memory_bytes;
	memset(&service->stats, 0, sizeof(service->stats));
	memset(&service->limits, 0, sizeof(service->limits));
	memset(&service->rejects, 0, sizeof(service->rejects));
	service->stats.memory_bytes = memory_bytes;
	return ret;
}
