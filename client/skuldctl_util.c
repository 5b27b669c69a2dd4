/*
 * skuldctl_util.c — connection, look-ups, id allocation, quantities and
 * keys shared by the skuldctl commands (skuldctl.h).
 */
#include "skuldctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int ctl_fail(int rc, const char *text)
{
	fprintf(stderr, "skuldctl: %s: %s\n", text, skuld_strerror(rc));
	return CTL_EXIT_ERROR;
}

int ctl_connect(struct ctl *ctl)
{
	struct skuld_options options;
	skuld_options_init(&options);
	options.address = ctl->server;
	options.token = ctl->token;
	options.tls_ca_file = ctl->tls_ca;
	options.tls_server_name = ctl->tls_name;
	options.client_name = "skuldctl";
	options.timeout_ms = CTL_TIMEOUT_MS;
	/* No client id file: a random id per run. Retries inside this run keep
	 * their request number; across runs the idempotency keys decide. */
	int rc = skuld_client_create(&ctl->client, &options);
	if (rc != 0) {
		ctl->client = NULL;
		fprintf(stderr, "skuldctl: server address '%s'%s%s: %s\n", ctl->server,
		        ctl->tls_ca != NULL ? " or TLS CA file " : "",
		        ctl->tls_ca != NULL ? ctl->tls_ca : "", skuld_strerror(rc));
		return rc == -EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_ERROR;
	}
	rc = skuld_client_connect(ctl->client, 3000);
	if (rc != 0) {
		fprintf(stderr, "skuldctl: cannot connect to %s: %s\n", ctl->server,
		        skuld_strerror(rc));
		ctl_close(ctl);
		return CTL_EXIT_ERROR;
	}
	struct skuld_client_info info;
	skuld_client_info(ctl->client, &info);
	ctl->events_max = info.events_max;
	return CTL_EXIT_OK;
}

void ctl_close(struct ctl *ctl)
{
	skuld_client_close(ctl->client);
	ctl->client = NULL;
}

int ctl_submit(struct ctl *ctl, const struct skuld_event *events, uint32_t count,
               struct skuld_result *results)
{
	uint32_t bad = 0;
	int rc = skuld_submit(ctl->client, events, count, results, &bad, CTL_TIMEOUT_MS);
	if (rc == 0)
		return CTL_EXIT_OK;
	if (rc == SKULD_ERR_EVENT_FIELD || rc == SKULD_ERR_EVENT_VALUE) {
		fprintf(stderr, "skuldctl: event %" PRIu32 " malformed: %s\n", bad,
		        skuld_strerror(rc));
		return CTL_EXIT_ERROR;
	}
	if (rc == -ETIMEDOUT) {
		fprintf(stderr,
		        "skuldctl: no answer in %u ms: the request may or may not be "
		        "applied; running the same command again with the same --key is "
		        "safe\n",
		        CTL_TIMEOUT_MS);
		return CTL_EXIT_ERROR;
	}
	return ctl_fail(rc, "submit");
}

/* ---- Codes -> ids ---------------------------------------------------------- */

/* The first match of a lookup of code, or a zeroed match with id 0 when
 * nothing matched. Returns CTL_EXIT_OK or CTL_EXIT_ERROR (printed). */
static int lookup_first(struct ctl *ctl, uint16_t kind, const char *code,
                        struct skuld_lookup_match *first)
{
	struct skuld_lookup_match matches[SKULD_LOOKUP_MATCHES_MAX];
	uint32_t count = 0;
	memset(first, 0, sizeof(*first));
	int rc = skuld_lookup(ctl->client, kind, code, matches, SKULD_LOOKUP_MATCHES_MAX, &count,
	                      CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "lookup");
	if (count >= 1 && matches[0].status == SKULD_OK)
		*first = matches[0];
	return CTL_EXIT_OK;
}

static int lookup_one(struct ctl *ctl, uint16_t kind, const char *code, uint32_t *id)
{
	struct skuld_lookup_match match;
	int rc = lookup_first(ctl, kind, code, &match);
	*id = match.id;
	return rc;
}

int ctl_item_scale(struct ctl *ctl, uint32_t id, uint8_t *scale)
{
	struct skuld_lookup_match match;
	*scale = 0;
	int rc = skuld_lookup_item(ctl->client, id, &match, CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "lookup");
	if (match.status == SKULD_OK)
		*scale = match.scale;
	return CTL_EXIT_OK;
}

int ctl_lookup_item(struct ctl *ctl, const char *sku, uint32_t *id, uint8_t *scale)
{
	struct skuld_lookup_match match;
	int rc = lookup_first(ctl, SKULD_LOOKUP_SKU, sku, &match);
	*id = match.id;
	*scale = match.scale;
	return rc;
}

int ctl_lookup_location(struct ctl *ctl, const char *code, uint32_t *id)
{
	return lookup_one(ctl, SKULD_LOOKUP_LOCATION, code, id);
}

int ctl_lookup_channel(struct ctl *ctl, const char *name, uint32_t *id)
{
	return lookup_one(ctl, SKULD_LOOKUP_CHANNEL, name, id);
}

int ctl_id_defined(struct ctl *ctl, enum ctl_id_kind kind, uint32_t id)
{
	struct skuld_query query;
	union skuld_query_record record;
	uint32_t count = 0;
	uint16_t unknown;
	memset(&query, 0, sizeof(query));
	switch (kind) {
	case CTL_ID_ITEM: /* LEVEL answers ITEM_UNKNOWN before looking at the location */
		query.kind = SKULD_QUERY_LEVEL;
		query.item = id;
		unknown = SKULD_ITEM_UNKNOWN;
		break;
	case CTL_ID_LOCATION:
		query.kind = SKULD_QUERY_LOCATION_LEVELS;
		query.location = id;
		unknown = SKULD_LOCATION_UNKNOWN;
		break;
	default:
		query.kind = SKULD_QUERY_CHANNEL;
		query.channel = id;
		unknown = SKULD_CHANNEL_UNKNOWN;
		break;
	}
	query.limit = kind == CTL_ID_ITEM ? 0 : 1;
	int rc = skuld_query(ctl->client, &query, &record, 1, &count, CTL_TIMEOUT_MS);
	if (rc != 0) {
		ctl_fail(rc, "query");
		return -1;
	}
	return !(count >= 1 && record.level.status == unknown);
}

int ctl_next_free_id(struct ctl *ctl, enum ctl_id_kind kind, uint32_t *next)
{
	/* Gallop: 1, 2, 4, ... until an undefined id (at most 32 probes). */
	uint64_t defined = 0, undefined = 1;
	for (int probe = 0; probe < 32; probe++) {
		int is = ctl_id_defined(ctl, kind, (uint32_t)undefined);
		if (is < 0)
			return CTL_EXIT_ERROR;
		if (!is)
			break;
		defined = undefined;
		undefined = undefined * 2 > UINT32_MAX ? UINT32_MAX : undefined * 2;
	}
	/* Bisect (defined, undefined): at most 32 probes. */
	while (undefined - defined > 1) {
		uint64_t middle = defined + (undefined - defined) / 2;
		int is = ctl_id_defined(ctl, kind, (uint32_t)middle);
		if (is < 0)
			return CTL_EXIT_ERROR;
		if (is)
			defined = middle;
		else
			undefined = middle;
	}
	*next = (uint32_t)undefined;
	return CTL_EXIT_OK;
}

/* ---- Quantities ----------------------------------------------------------- */

int64_t ctl_scale_unit(uint8_t scale)
{
	int64_t unit = 1;
	for (uint8_t i = 0; i < scale && i < SKULD_SCALE_MAX; i++)
		unit *= 10;
	return unit;
}

int ctl_quantity_parse(const char *text, uint8_t scale, int allow_sign, int64_t *out)
{
	int negative = 0;
	const char *at = text;
	if (scale > SKULD_SCALE_MAX || text == NULL)
		return -1;
	if (*at == '-' || *at == '+') {
		if (!allow_sign)
			return -1;
		negative = *at == '-';
		at++;
	}
	uint64_t whole = 0, fraction = 0;
	int digits = 0, decimals = 0;
	for (; *at >= '0' && *at <= '9'; at++, digits++) {
		whole = whole * 10 + (uint64_t)(*at - '0');
		if (whole > (uint64_t)CTL_QUANTITY_MAX)
			return -1;
	}
	if (*at == '.') {
		at++;
		for (; *at >= '0' && *at <= '9'; at++) {
			if (decimals < scale) {
				fraction = fraction * 10 + (uint64_t)(*at - '0');
				decimals++;
			} else if (*at != '0') {
				return -1; /* more precision than the item's unit */
			}
			digits++;
		}
	}
	if (*at != '\0' || digits == 0)
		return -1;
	for (; decimals < scale; decimals++)
		fraction *= 10;
	uint64_t unit = (uint64_t)ctl_scale_unit(scale);
	if (whole > (uint64_t)CTL_QUANTITY_MAX / unit)
		return -1;
	uint64_t units = whole * unit + fraction;
	if (units > (uint64_t)CTL_QUANTITY_MAX)
		return -1;
	*out = negative ? -(int64_t)units : (int64_t)units;
	return 0;
}

void ctl_quantity_format(int64_t units, uint8_t scale, char out[CTL_QUANTITY_CHARS])
{
	uint64_t magnitude = units < 0 ? 0 - (uint64_t)units : (uint64_t)units;
	if (scale > SKULD_SCALE_MAX)
		scale = SKULD_SCALE_MAX;
	uint64_t unit = (uint64_t)ctl_scale_unit(scale);
	if (scale == 0) {
		snprintf(out, CTL_QUANTITY_CHARS, "%s%" PRIu64, units < 0 ? "-" : "", magnitude);
		return;
	}
	/* The fraction with exactly scale digits, leading zeros included. */
	char fraction[SKULD_SCALE_MAX + 1];
	uint64_t rest = magnitude % unit;
	for (int i = (int)scale - 1; i >= 0; i--, rest /= 10)
		fraction[i] = (char)('0' + rest % 10);
	fraction[scale] = '\0';
	snprintf(out, CTL_QUANTITY_CHARS, "%s%" PRIu64 ".%s", units < 0 ? "-" : "",
	         magnitude / unit, fraction);
}

int ctl_u64_parse(const char *text, uint64_t *out)
{
	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	char *end = NULL;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = value;
	return 0;
}

int ctl_duration_parse(const char *text, uint32_t *seconds)
{
	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	char *end = NULL;
	unsigned long long value = strtoull(text, &end, 10);
	uint64_t multiplier = 1;
	if (errno != 0)
		return -1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		multiplier = 60, end++;
	else if (*end == 'h')
		multiplier = 3600, end++;
	else if (*end == 'd')
		multiplier = 86400, end++;
	if (*end != '\0' || value == 0 || value > UINT32_MAX / multiplier)
		return -1;
	*seconds = (uint32_t)(value * multiplier);
	return 0;
}

/* ---- Keys and ids ----------------------------------------------------------- */

uint64_t ctl_random_u64(void)
{
	uint64_t value = 0;
	for (int attempt = 0; attempt < 16 && value == 0; attempt++) {
		if (getrandom(&value, sizeof(value), 0) != (ssize_t)sizeof(value))
			value = 0;
	}
	if (value == 0) {
		fprintf(stderr, "skuldctl: getrandom failed\n");
		exit(CTL_EXIT_ERROR);
	}
	return value >> 1 != 0 ? value >> 1 : 1; /* 63 bits: readable as a signed id too */
}

skuld_u128 ctl_movement_key(const struct ctl *ctl, uint32_t line, const char *action)
{
	if (ctl->key != NULL)
		return skuld_key(CTL_KEY_SOURCE, ctl->key, line, action);
	skuld_u128 key = {ctl_random_u64(), ctl_random_u64()};
	return key;
}

/* ---- Output ------------------------------------------------------------------ */

void ctl_json_string(FILE *out, const char *text)
{
	fputc('"', out);
	for (const unsigned char *at = (const unsigned char *)text; *at != '\0'; at++) {
		if (*at == '"' || *at == '\\')
			fprintf(out, "\\%c", *at);
		else if (*at < 0x20)
			fprintf(out, "\\u%04x", *at);
		else
			fputc(*at, out);
	}
	fputc('"', out);
}

int ctl_code_valid(const char *code)
{
	char field[SKULD_CODE_SIZE];
	size_t length = strnlen(code, SKULD_CODE_SIZE + 1);
	if (length == 0 || length > SKULD_CODE_SIZE)
		return 0;
	memset(field, 0, sizeof(field));
	memcpy(field, code, length);
	return proto_text_valid(field, sizeof(field), 0);
}

/* ---- Catalog chains ------------------------------------------------------------ */

uint32_t ctl_item_chain(struct skuld_event *events, uint32_t id, const char *sku, uint8_t scale,
                        int bundle, const char *barcode, const char *const *attributes,
                        uint32_t attribute_count)
{
	char document[SKULD_CODE_SIZE + 8];
	char action[SKULD_CODE_SIZE + 32];
	uint32_t count = 0;
	snprintf(document, sizeof(document), "item:%s", sku);
	snprintf(action, sizeof(action), "define scale=%u bundle=%d", scale, bundle ? 1 : 0);
	if (skuld_event_item_define(&events[count], skuld_key(CTL_KEY_SOURCE, document, id, action),
	                            id, sku, scale) != 0)
		return 0;
	if (bundle)
		events[count].flags |= SKULD_EVENT_BUNDLE;
	count++;
	if (barcode != NULL && barcode[0] != '\0') {
		if (!ctl_code_valid(barcode))
			return 0;
		struct skuld_event *event = &events[count++];
		memset(event, 0, sizeof(*event));
		snprintf(action, sizeof(action), "barcode:%s", barcode);
		event->kind = SKULD_BARCODE_DEFINE;
		event->key = skuld_key(CTL_KEY_SOURCE, document, id, action);
		event->item = id;
		event->quantity = ctl_scale_unit(scale);
		memcpy(event->code, barcode, strlen(barcode));
	}
	for (uint32_t i = 0; i < attribute_count; i++) {
		if (!ctl_code_valid(attributes[i]))
			return 0;
		struct skuld_event *event = &events[count++];
		memset(event, 0, sizeof(*event));
		snprintf(action, sizeof(action), "attribute:%s", attributes[i]);
		event->kind = SKULD_ATTRIBUTE_SET;
		event->key = skuld_key(CTL_KEY_SOURCE, document, id, action);
		event->item = id;
		memcpy(event->code, attributes[i], strlen(attributes[i]));
	}
	skuld_events_link(events, count);
	return count;
}

void ctl_component_event(struct skuld_event *event, uint32_t id, const char *sku,
                         uint32_t component, const char *component_sku, int64_t units)
{
	char document[SKULD_CODE_SIZE + 8];
	char action[SKULD_CODE_SIZE + 48];
	snprintf(document, sizeof(document), "item:%s", sku);
	snprintf(action, sizeof(action), "component:%s=%" PRId64, component_sku, units);
	memset(event, 0, sizeof(*event));
	event->kind = SKULD_BUNDLE_COMPONENT;
	event->key = skuld_key(CTL_KEY_SOURCE, document, id, action);
	event->item = id;
	event->target = component;
	event->quantity = units;
}

uint16_t ctl_chain_status(const struct skuld_result *results, uint32_t count, uint32_t *index)
{
	for (uint32_t i = 0; i < count; i++) {
		if (results[i].status != SKULD_OK && results[i].status != SKULD_LINKED_FAILED) {
			if (index != NULL)
				*index = i;
			return results[i].status;
		}
	}
	if (index != NULL)
		*index = 0;
	return count > 0 && results[0].status == SKULD_LINKED_FAILED ? SKULD_LINKED_FAILED
	                                                             : SKULD_OK;
}
