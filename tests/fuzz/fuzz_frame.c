/*
 * fuzz_frame.c — the frame codec of protocol/protocol.c on arbitrary bytes
 * (docs/FUZZING.md): proto_header_check, then proto_body_check, which runs
 * proto_event_check, proto_query_check, proto_lookup_check and the reply
 * record rules by operation.
 *
 * Input: a frame as it arrives on a socket, a 64-byte header and then the
 * body. As the server does, the header and the body are copied into their
 * own buffers (the body into a heap block of exactly body_size bytes, so an
 * over-read is an ASan report); a header that passes but claims more body
 * than the input has is simply refused. Every input is checked twice: as
 * it is, and resealed (magic, reserved word and both checksums made right
 * by proto_header_seal), so the fuzzer reaches the per-record rules without
 * having to forge XXH3 checksums.
 */
#include "fuzz_common.h"

static void check_frame(struct skuld_header *header, const uint8_t *rest, size_t rest_size,
                        int reseal)
{
	if (reseal) {
		if (header->body_size > rest_size)
			return;
		proto_header_seal(header, header->body_size > 0 ? rest : NULL);
	}
	uint32_t status = proto_header_check(header);
	(void)skuld_status_name(status);
	(void)skuld_status_name(header->result);
	(void)skuld_operation_name(header->operation);
	if (status != SKULD_OK)
		return;
	FUZZ_CHECK(header->body_size <= SKULD_BODY_SIZE_MAX, "body size %u", header->body_size);
	if (header->body_size > rest_size)
		return; /* the connection would wait for bytes that never come */
	void *body = NULL;
	if (header->body_size > 0) {
		body = malloc(header->body_size);
		if (body == NULL)
			abort();
		memcpy(body, rest, header->body_size);
	}
	uint32_t index = UINT32_MAX;
	status = proto_body_check(header, body, &index);
	FUZZ_CHECK(index == 0 || (status != SKULD_OK && index < header->count),
	           "status %u index %u of %u records", status, index, header->count);
	if (status == SKULD_OK && header->operation == SKULD_OP_SUBMIT &&
	    !(header->flags & SKULD_FRAME_REPLY)) {
		const struct skuld_event *events = body;
		for (uint32_t i = 0; i < header->count; i++)
			(void)skuld_event_kind_name(events[i].kind);
	}
	if (status == SKULD_OK && header->operation == SKULD_OP_REGISTER &&
	    !(header->flags & SKULD_FRAME_REPLY)) {
		const struct skuld_register_request *request = body;
		uint16_t version =
		        proto_version_negotiate(request->version_min, request->version_max);
		FUZZ_CHECK(version == 0 || (version >= request->version_min &&
		                            version <= request->version_max),
		           "version %u", version);
	}
	free(body);
}

/* ---- Seeds ---------------------------------------------------------------- */

static void seed_frame(const char *dir, const char *name, uint8_t operation, int reply,
                       const void *body, uint32_t body_size, uint32_t count)
{
	uint8_t frame[SKULD_HEADER_SIZE + 4096];
	struct skuld_header header;
	memset(&header, 0, sizeof(header));
	header.version = SKULD_PROTOCOL_VERSION_MAX;
	header.operation = operation;
	header.flags = reply ? SKULD_FRAME_REPLY : 0;
	header.request = 7;
	header.client.lo = 0x1122334455667788ull;
	header.client.hi = 0x99;
	header.body_size = body_size;
	header.count = count;
	proto_header_seal(&header, body);
	if (body_size > sizeof(frame) - SKULD_HEADER_SIZE)
		abort();
	memcpy(frame, &header, sizeof(header));
	if (body_size > 0)
		memcpy(frame + SKULD_HEADER_SIZE, body, body_size);
	fuzz_seed_write(dir, name, frame, SKULD_HEADER_SIZE + body_size);
}

static void write_seeds(const char *dir)
{
	struct skuld_register_request request;
	memset(&request, 0, sizeof(request));
	request.version_min = 1;
	request.version_max = 1;
	memcpy(request.token, "secret-token", 12);
	memcpy(request.client_name, "till-7", 6);
	seed_frame(dir, "register", SKULD_OP_REGISTER, 0, &request, sizeof(request), 1);

	struct skuld_register_reply registered;
	memset(&registered, 0, sizeof(registered));
	registered.version = 1;
	registered.events_max = SKULD_EVENTS_PER_FRAME_MAX;
	registered.request_next = 8;
	registered.session = 3;
	seed_frame(dir, "register-reply", SKULD_OP_REGISTER, 1, &registered, sizeof(registered), 1);

	seed_frame(dir, "ping", SKULD_OP_PING, 0, NULL, 0, 0);
	seed_frame(dir, "stats", SKULD_OP_STATS, 0, NULL, 0, 0);

	/* SUBMIT: the scenario events, eight at a time. */
	struct fuzz_script script = {0};
	fuzz_scenario_catalog(&script);
	fuzz_scenario_holds(&script);
	fuzz_scenario_channel(&script);
	struct skuld_event events[24];
	uint32_t count = 0;
	for (size_t offset = 0; offset < script.size && count < 24;) {
		uint32_t batch = (script.bytes[offset++] & 7u) + 1;
		for (uint32_t i = 0; i < batch && count < 24; i++) {
			memcpy(&events[count++], script.bytes + offset, SKULD_EVENT_SIZE);
			offset += SKULD_EVENT_SIZE;
		}
	}
	free(script.bytes);
	for (uint32_t first = 0; first < count; first += 8) {
		char name[32];
		snprintf(name, sizeof(name), "submit-%u", first / 8);
		seed_frame(dir, name, SKULD_OP_SUBMIT, 0, &events[first], 8 * SKULD_EVENT_SIZE, 8);
	}

	struct skuld_result results[3];
	memset(results, 0, sizeof(results));
	for (uint32_t i = 0; i < 3; i++) {
		results[i].index = i;
		results[i].location = 1;
		results[i].quantity = 4;
		results[i].available = 10;
	}
	results[2].status = SKULD_INSUFFICIENT;
	results[2].location = 0;
	results[2].quantity = 0;
	results[2].available = 0;
	seed_frame(dir, "submit-reply", SKULD_OP_SUBMIT, 1, results, sizeof(results), 3);

	struct skuld_error_body error;
	memset(&error, 0, sizeof(error));
	error.status = SKULD_ERR_EVENT_FIELD;
	error.index = 2;
	memcpy(error.message, "event 2: a field the kind does not use", 38);
	seed_frame(dir, "error", SKULD_OP_ERROR, 1, &error, sizeof(error), 1);

	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_LEVEL;
	query.item = 1;
	query.location = 1;
	seed_frame(dir, "query-level", SKULD_OP_QUERY, 0, &query, sizeof(query), 1);
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_PUSH;
	query.channel = 1;
	query.limit = 100;
	seed_frame(dir, "query-push", SKULD_OP_QUERY, 0, &query, sizeof(query), 1);
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_HOLD;
	query.hold = 101;
	seed_frame(dir, "query-hold", SKULD_OP_QUERY, 0, &query, sizeof(query), 1);

	struct skuld_level_record levels[2];
	memset(levels, 0, sizeof(levels));
	levels[0].item = 1;
	levels[0].location = 1;
	levels[0].on_hand = 20;
	levels[0].reserved = 3;
	levels[0].available = 17;
	levels[0].kind = SKULD_QUERY_ITEM_LEVELS;
	levels[1] = levels[0];
	levels[1].location = 2;
	levels[1].flags = SKULD_QUERY_MORE;
	seed_frame(dir, "query-reply", SKULD_OP_QUERY, 1, levels, sizeof(levels), 2);

	struct skuld_push_record push;
	memset(&push, 0, sizeof(push));
	push.item = 3;
	push.version = 9;
	push.quantity = 5;
	push.state = SKULD_PUSH_DIRTY;
	push.kind = SKULD_QUERY_PUSH;
	push.channel = 1;
	seed_frame(dir, "query-push-reply", SKULD_OP_QUERY, 1, &push, sizeof(push), 1);

	struct skuld_lookup lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = SKULD_LOOKUP_SKU;
	memcpy(lookup.code, "SKU-1", 5);
	seed_frame(dir, "lookup", SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = SKULD_LOOKUP_ITEM;
	lookup.id = 4;
	seed_frame(dir, "lookup-item", SKULD_OP_LOOKUP, 0, &lookup, sizeof(lookup), 1);

	struct skuld_stats stats;
	memset(&stats, 0, sizeof(stats));
	stats.sessions = 2;
	seed_frame(dir, "stats-reply", SKULD_OP_STATS, 1, &stats, sizeof(stats), 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *dir = fuzz_seed_dir();
	if (dir != NULL) {
		write_seeds(dir);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < SKULD_HEADER_SIZE)
		return 0;
	for (int reseal = 0; reseal <= 1; reseal++) {
		struct skuld_header header;
		memcpy(&header, data, sizeof(header));
		check_frame(&header, data + SKULD_HEADER_SIZE, size - SKULD_HEADER_SIZE, reseal);
	}
	return 0;
}
