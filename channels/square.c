/*
 * square.c — batch-create and batch-retrieve bodies and answers (square.h).
 */
#include "square.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCALE_MAX 18 /* 10^18 still fits an int64_t */

static int64_t power_of_ten(unsigned exponent)
{
	int64_t power = 1;
	for (unsigned i = 0; i < exponent && i < SCALE_MAX; i++)
		power *= 10;
	return power;
}

static unsigned scale_clamp(uint8_t scale)
{
	return scale > SCALE_MAX ? SCALE_MAX : scale;
}

/* quantity without the digits Square does not take: (kept, decimals). */
static int64_t quantity_kept(int64_t quantity, uint8_t scale, unsigned *decimals)
{
	unsigned digits = scale_clamp(scale);
	*decimals = digits < SQUARE_DECIMALS_MAX ? digits : SQUARE_DECIMALS_MAX;
	if (quantity <= 0)
		return 0;
	return quantity / power_of_ten(digits - *decimals);
}

int square_quantity_text(int64_t quantity, uint8_t scale, char *out, size_t size)
{
	unsigned decimals;
	int64_t kept = quantity_kept(quantity, scale, &decimals);
	int64_t unit = power_of_ten(decimals);
	int64_t whole = kept / unit;
	int64_t fraction = kept % unit;
	int written;
	if (fraction == 0) {
		written = snprintf(out, size, "%lld", (long long)whole);
	} else {
		unsigned width = decimals;
		while (fraction % 10 == 0) { /* "2.5", not "2.50000" */
			fraction /= 10;
			width--;
		}
		written = snprintf(out, size, "%lld.%0*lld", (long long)whole, (int)width,
		                   (long long)fraction);
	}
	return written < 0 || (size_t)written >= size ? -1 : 0;
}

int64_t square_quantity_sent(int64_t quantity, uint8_t scale)
{
	unsigned decimals;
	int64_t kept = quantity_kept(quantity, scale, &decimals);
	return kept * power_of_ten(scale_clamp(scale) - decimals);
}

/* Appends one digit to *value; -1 on overflow. */
static int digit_append(int64_t *value, int digit)
{
	if (*value > (INT64_MAX - digit) / 10)
		return -1;
	*value = *value * 10 + digit;
	return 0;
}

int square_quantity_parse(const char *text, uint8_t scale, int64_t *out)
{
	unsigned digits = scale_clamp(scale);
	if (text == NULL || strlen(text) > SQUARE_QUANTITY_SIZE)
		return -1;
	const char *c = text;
	bool negative = *c == '-';
	if (negative)
		c++;
	if (!isdigit((unsigned char)*c))
		return -1;
	int64_t value = 0;
	for (; isdigit((unsigned char)*c); c++)
		if (digit_append(&value, *c - '0') != 0)
			return -1;
	unsigned fraction_digits = 0;
	bool dropped = false; /* a non-zero digit below the scale */
	if (*c == '.') {
		c++;
		if (!isdigit((unsigned char)*c))
			return -1;
		for (; isdigit((unsigned char)*c); c++) {
			if (fraction_digits < digits) {
				if (digit_append(&value, *c - '0') != 0)
					return -1;
				fraction_digits++;
			} else {
				dropped = dropped || *c != '0';
			}
		}
	}
	if (*c != '\0')
		return -1;
	for (; fraction_digits < digits; fraction_digits++)
		if (digit_append(&value, 0) != 0)
			return -1;
	/* Rounded down: towards minus infinity. */
	*out = negative ? -value - (dropped ? 1 : 0) : value;
	return 0;
}

int square_time_text(uint64_t epoch_ns, char *out, size_t size)
{
	time_t seconds = (time_t)(epoch_ns / 1000000000ull);
	unsigned milliseconds = (unsigned)(epoch_ns / 1000000ull % 1000);
	struct tm utc;
	if (gmtime_r(&seconds, &utc) == NULL)
		return -1;
	int written = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", utc.tm_year + 1900,
	                       utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
	                       milliseconds);
	return written < 0 || (size_t)written >= size ? -1 : 0;
}

uint64_t square_occurred_at(uint64_t dirty_since_ns, uint64_t now_ns)
{
	if (dirty_since_ns == 0 || dirty_since_ns > now_ns)
		return now_ns;
	if (now_ns - dirty_since_ns > SQUARE_WINDOW_NS - SQUARE_WINDOW_MARGIN_NS)
		return now_ns;
	return dirty_since_ns;
}

static int fail(char *error, size_t size, const char *why)
{
	snprintf(error, size, "%s", why);
	return -1;
}

static bool id_valid(const char *id)
{
	return id != NULL && id[0] != '\0' && strlen(id) < SQUARE_ID_SIZE;
}

static int batch_check(const struct square_batch *batch, char *error, size_t size)
{
	if (batch->idempotency_key == NULL || batch->idempotency_key[0] == '\0' ||
	    strlen(batch->idempotency_key) > 128)
		return fail(error, size, "an idempotency key is 1 to 128 bytes");
	if (batch->count == 0 || batch->count > SQUARE_CHANGES_MAX)
		return fail(error, size, "a call makes 1 to 100 changes");
	for (uint32_t i = 0; i < batch->count; i++) {
		const struct square_count_change *change = &batch->changes[i];
		if (!id_valid(change->catalog_object_id) || !id_valid(change->location_id))
			return fail(
			        error, size,
			        "a change lacks its catalog object or location (1 to 100 bytes)");
		if (change->reference_id != NULL && strlen(change->reference_id) > 255)
			return fail(error, size, "a reference id is at most 255 bytes");
	}
	return 0;
}

static json_t *change_make(const struct square_count_change *change)
{
	char quantity[SQUARE_QUANTITY_SIZE], occurred[SQUARE_TIME_SIZE];
	if (square_quantity_text(change->quantity, change->scale, quantity, sizeof(quantity)) !=
	            0 ||
	    square_time_text(change->occurred_at_ns, occurred, sizeof(occurred)) != 0)
		return NULL;
	json_t *count =
	        json_pack("{s:s, s:s, s:s, s:s, s:s}", "catalog_object_id",
	                  change->catalog_object_id, "location_id", change->location_id, "state",
	                  "IN_STOCK", "quantity", quantity, "occurred_at", occurred);
	if (count != NULL && change->reference_id != NULL &&
	    json_object_set_new(count, "reference_id", json_string(change->reference_id)) != 0) {
		json_decref(count);
		return NULL;
	}
	return count == NULL
	               ? NULL
	               : json_pack("{s:s, s:o}", "type", "PHYSICAL_COUNT", "physical_count", count);
}

char *square_batch_body(const struct square_batch *batch, char *error, size_t error_size)
{
	if (batch_check(batch, error, error_size) != 0)
		return NULL;
	json_t *changes = json_array();
	for (uint32_t i = 0; changes != NULL && i < batch->count; i++) {
		json_t *change = change_make(&batch->changes[i]);
		if (change == NULL || json_array_append_new(changes, change) != 0) {
			json_decref(changes);
			changes = NULL;
		}
	}
	json_t *body =
	        changes == NULL
	                ? NULL
	                : json_pack("{s:s, s:b, s:o}", "idempotency_key", batch->idempotency_key,
	                            "ignore_unchanged_counts", 0, "changes", changes);
	char *text = body == NULL ? NULL : json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	if (text == NULL)
		fail(error, error_size, "out of memory, or a string is not UTF-8");
	return text;
}

char *square_read_body(const char *const *objects, uint32_t count, const char *location,
                       const char *cursor, char *error, size_t error_size)
{
	if (count == 0 || count > SQUARE_READ_MAX || !id_valid(location)) {
		fail(error, error_size, "a read names 1 to 100 catalog objects and a location");
		return NULL;
	}
	json_t *ids = json_array();
	for (uint32_t i = 0; ids != NULL && i < count; i++)
		if (!id_valid(objects[i]) ||
		    json_array_append_new(ids, json_string(objects[i])) != 0) {
			json_decref(ids);
			ids = NULL;
		}
	json_t *body = ids == NULL ? NULL
	                           : json_pack("{s:o, s:[s], s:[s], s:i}", "catalog_object_ids",
	                                       ids, "location_ids", location, "states", "IN_STOCK",
	                                       "limit", SQUARE_COUNTS_MAX);
	if (body != NULL && cursor != NULL && cursor[0] != '\0' &&
	    json_object_set_new(body, "cursor", json_string(cursor)) != 0) {
		json_decref(body);
		body = NULL;
	}
	char *text = body == NULL ? NULL : json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	if (text == NULL)
		fail(error, error_size, "a catalog object id is missing, too long or not UTF-8");
	return text;
}

/* ---- Answers ------------------------------------------------------------- */

static const struct {
	const char *text;
	enum square_error_code code;
} error_codes[] = {
        {"RATE_LIMITED", SQUARE_ERROR_RATE_LIMITED},
        {"UNAUTHORIZED", SQUARE_ERROR_AUTH},
        {"ACCESS_TOKEN_EXPIRED", SQUARE_ERROR_AUTH},
        {"ACCESS_TOKEN_REVOKED", SQUARE_ERROR_AUTH},
        {"CLIENT_DISABLED", SQUARE_ERROR_AUTH},
        {"FORBIDDEN", SQUARE_ERROR_AUTH},
        {"INSUFFICIENT_SCOPES", SQUARE_ERROR_AUTH},
        {"APPLICATION_DISABLED", SQUARE_ERROR_AUTH},
        {"V1_ACCESS_TOKEN", SQUARE_ERROR_AUTH},
        {"NOT_FOUND", SQUARE_ERROR_NOT_FOUND},
        {"INVALID_VALUE", SQUARE_ERROR_INVALID_VALUE},
        {"IDEMPOTENCY_KEY_REUSED", SQUARE_ERROR_IDEMPOTENCY},
        {"INVALID_TIME", SQUARE_ERROR_INVALID_TIME},
        {"INVALID_SQUARE_VERSION_FORMAT", SQUARE_ERROR_VERSION},
        {"API_VERSION_INCOMPATIBLE", SQUARE_ERROR_VERSION},
        {"INTERNAL_SERVER_ERROR", SQUARE_ERROR_SERVER},
        {"SERVICE_UNAVAILABLE", SQUARE_ERROR_SERVER},
        {"GATEWAY_TIMEOUT", SQUARE_ERROR_SERVER},
        {"BAD_GATEWAY", SQUARE_ERROR_SERVER},
        {"TEMPORARY_ERROR", SQUARE_ERROR_SERVER},
        {"REQUEST_TIMEOUT", SQUARE_ERROR_SERVER},
};

enum square_error_code square_error_code(const char *code)
{
	for (size_t i = 0; code != NULL && i < sizeof(error_codes) / sizeof(error_codes[0]); i++)
		if (strcmp(code, error_codes[i].text) == 0)
			return error_codes[i].code;
	return SQUARE_ERROR_OTHER;
}

static void copy_text(char *out, size_t size, const char *text)
{
	snprintf(out, size, "%s", text != NULL ? text : "");
}

/* The change index of a field "changes[N]..." (N < count), or -1. */
static int32_t field_index(const char *field, uint32_t count)
{
	static const char prefix[] = "changes[";
	if (strncmp(field, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	const char *digits = field + sizeof(prefix) - 1;
	char *end = NULL;
	if (!isdigit((unsigned char)*digits))
		return -1;
	long value = strtol(digits, &end, 10);
	if (*end != ']' || value < 0 || value >= (long)count)
		return -1;
	return (int32_t)value;
}

static enum square_error_field field_kind(const char *field)
{
	if (strstr(field, "catalog_object_id") != NULL)
		return SQUARE_FIELD_OBJECT;
	if (strstr(field, "location_id") != NULL)
		return SQUARE_FIELD_LOCATION;
	if (strstr(field, "occurred_at") != NULL)
		return SQUARE_FIELD_TIME;
	if (strstr(field, "quantity") != NULL)
		return SQUARE_FIELD_QUANTITY;
	return SQUARE_FIELD_OTHER;
}

static bool id_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Whether text names id as a whole word. */
static bool names(const char *text, const char *id)
{
	size_t length = strlen(id);
	if (length == 0)
		return false;
	for (const char *at = strstr(text, id); at != NULL; at = strstr(at + 1, id)) {
		bool before = at == text || !id_char(at[-1]);
		bool after = !id_char(at[length]);
		if (before && after)
			return true;
	}
	return false;
}

/* The change whose catalog object id the detail names, when exactly one
 * object is named; -1 otherwise. */
static int32_t detail_index(const char *detail, const struct square_batch *batch)
{
	int32_t found = -1;
	for (uint32_t i = 0; batch != NULL && i < batch->count; i++) {
		const char *id = batch->changes[i].catalog_object_id;
		if (id == NULL || !names(detail, id))
			continue;
		if (found >= 0 && strcmp(batch->changes[found].catalog_object_id, id) != 0)
			return -1; /* two objects: it names neither */
		if (found < 0)
			found = (int32_t)i;
	}
	return found;
}

/* errors[]: returns 0, or -1 when an entry is not an error object. */
static int errors_read(json_t *list, const struct square_batch *batch, struct square_answer *answer)
{
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item)
	{
		if (!json_is_object(item))
			return -1;
		const char *code = json_string_value(json_object_get(item, "code"));
		const char *category = json_string_value(json_object_get(item, "category"));
		if (code == NULL || category == NULL)
			return -1; /* both required (Error) */
		if (answer->error_count == SQUARE_ERRORS_MAX)
			continue;
		struct square_error *error = &answer->errors[answer->error_count++];
		copy_text(error->code_text, sizeof(error->code_text), code);
		copy_text(error->category, sizeof(error->category), category);
		copy_text(error->field, sizeof(error->field),
		          json_string_value(json_object_get(item, "field")));
		copy_text(error->detail, sizeof(error->detail),
		          json_string_value(json_object_get(item, "detail")));
		error->code = square_error_code(code);
		if (error->code == SQUARE_ERROR_OTHER &&
		    strcmp(category, "AUTHENTICATION_ERROR") == 0)
			error->code = SQUARE_ERROR_AUTH;
		if (error->code == SQUARE_ERROR_OTHER && strcmp(category, "RATE_LIMIT_ERROR") == 0)
			error->code = SQUARE_ERROR_RATE_LIMITED;
		error->field_kind = field_kind(error->field);
		error->index = field_index(error->field, batch != NULL ? batch->count : 0);
		if (error->index < 0)
			error->index = detail_index(error->detail, batch);
	}
	if (answer->error_count > 0)
		snprintf(answer->message, sizeof(answer->message), "%.47s: %.100s",
		         answer->errors[0].code_text, answer->errors[0].detail);
	return 0;
}

/* counts[]: the IN_STOCK ones; 0, or -1 when malformed. */
static int counts_read(json_t *list, struct square_answer *answer)
{
	if (list == NULL)
		return 0;
	if (!json_is_array(list))
		return -1;
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item)
	{
		if (!json_is_object(item))
			return -1;
		const char *state = json_string_value(json_object_get(item, "state"));
		if (state == NULL || strcmp(state, "IN_STOCK") != 0)
			continue;
		const char *object = json_string_value(json_object_get(item, "catalog_object_id"));
		const char *location = json_string_value(json_object_get(item, "location_id"));
		const char *quantity = json_string_value(json_object_get(item, "quantity"));
		if (!id_valid(object) || !id_valid(location) || quantity == NULL ||
		    strlen(quantity) >= SQUARE_QUANTITY_SIZE)
			return -1;
		int64_t unused;
		if (square_quantity_parse(quantity, 0, &unused) != 0)
			return -1;
		if (answer->count_count == SQUARE_COUNTS_MAX) {
			answer->counts_cut = true;
			continue;
		}
		struct square_count *count = &answer->counts[answer->count_count++];
		copy_text(count->catalog_object_id, sizeof(count->catalog_object_id), object);
		copy_text(count->location_id, sizeof(count->location_id), location);
		copy_text(count->quantity, sizeof(count->quantity), quantity);
	}
	return 0;
}

/* The outcome that a readable errors[] gives: auth and rate limits first. */
static enum square_outcome errors_outcome(const struct square_answer *answer)
{
	for (uint32_t i = 0; i < answer->error_count; i++)
		if (answer->errors[i].code == SQUARE_ERROR_AUTH)
			return SQUARE_AUTH;
	for (uint32_t i = 0; i < answer->error_count; i++)
		if (answer->errors[i].code == SQUARE_ERROR_RATE_LIMITED)
			return SQUARE_RATE_LIMITED;
	return SQUARE_ERRORS;
}

static void answer_read(long http_status, const char *body, size_t size,
                        const struct square_batch *batch, struct square_answer *answer)
{
	memset(answer, 0, sizeof(*answer));
	json_t *root = body != NULL ? json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL) : NULL;
	json_t *errors = json_object_get(root, "errors");
	bool readable = json_is_object(root) && (errors == NULL || json_is_array(errors)) &&
	                errors_read(errors, batch, answer) == 0;
	if (http_status == 429)
		answer->outcome = SQUARE_RATE_LIMITED;
	else if (http_status == 401 || http_status == 403)
		answer->outcome = SQUARE_AUTH;
	else if (http_status >= 500 && http_status <= 599)
		answer->outcome = SQUARE_SERVER_ERROR;
	else if (http_status >= 400 && http_status <= 499)
		answer->outcome = readable && answer->error_count > 0 ? errors_outcome(answer)
		                                                      : SQUARE_REJECTED;
	else if (http_status != 200 || !readable)
		answer->outcome = SQUARE_MALFORMED;
	else if (answer->error_count > 0)
		answer->outcome = errors_outcome(answer);
	else if (counts_read(json_object_get(root, "counts"), answer) != 0)
		answer->outcome = SQUARE_MALFORMED;
	else {
		json_t *cursor = json_object_get(root, "cursor");
		const char *text = json_string_value(cursor);
		if (cursor != NULL && (text == NULL || strlen(text) >= sizeof(answer->cursor)))
			answer->outcome = SQUARE_MALFORMED;
		else
			copy_text(answer->cursor, sizeof(answer->cursor), text);
	}
	if (answer->outcome != SQUARE_ACCEPTED && answer->message[0] == '\0')
		snprintf(answer->message, sizeof(answer->message), "HTTP %ld", http_status);
	json_decref(root);
}

void square_batch_answer(long http_status, const char *body, size_t size,
                         const struct square_batch *batch, struct square_answer *answer)
{
	answer_read(http_status, body, size, batch, answer);
}

enum square_outcome square_read_answer(long http_status, const char *body, size_t size,
                                       struct square_answer *answer)
{
	answer_read(http_status, body, size, NULL, answer);
	return answer->outcome;
}

const struct square_count *square_count_find(const struct square_answer *answer, const char *object,
                                             const char *location)
{
	for (uint32_t i = 0; i < answer->count_count; i++) {
		const struct square_count *count = &answer->counts[i];
		if (strcmp(count->catalog_object_id, object) == 0 &&
		    strcmp(count->location_id, location) == 0)
			return count;
	}
	return NULL;
}
