/*
 * amazon.c — the Selling Partner API's bodies and answers (amazon.h).
 */
#include "amazon.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATCH_PATH "/attributes/fulfillment_availability"

const char *amazon_outcome_name(enum amazon_outcome outcome)
{
	static const char *const names[] = {
	        [AMAZON_OK] = "ok",
	        [AMAZON_INVALID] = "invalid",
	        [AMAZON_THROTTLED] = "throttled",
	        [AMAZON_AUTH] = "auth",
	        [AMAZON_NOT_FOUND] = "not-found",
	        [AMAZON_REJECTED] = "rejected",
	        [AMAZON_SERVER_ERROR] = "server-error",
	        [AMAZON_MALFORMED] = "malformed",
	};
	if ((unsigned)outcome >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[outcome];
}

/* Printable ASCII only, cut to size. */
static void copy_text(char *out, size_t size, const char *text)
{
	size_t used = 0;
	for (; text != NULL && *text != '\0' && used + 1 < size; text++)
		out[used++] = (*text >= 0x20 && *text <= 0x7e) ? *text : '?';
	out[used] = '\0';
}

static const char *string_of(const json_t *object, const char *key)
{
	return json_string_value(json_object_get(object, key));
}

static json_t *parse(const char *body, size_t size)
{
	if (body == NULL || size == 0)
		return NULL;
	return json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
}

static char *dump(json_t *root, char *error, size_t error_size)
{
	char *text = root == NULL ? NULL : json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		snprintf(error, error_size, "out of memory");
	return text;
}

/* ---- Percent-encoding -------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends text percent-encoded at out[*used]; returns -1 when it does not fit. */
static int encode(char *out, size_t size, size_t *used, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
		size_t need = unreserved(*c) ? 1 : 3;
		if (*used + need >= size)
			return -1;
		if (need == 1) {
			out[(*used)++] = (char)*c;
		} else {
			out[(*used)++] = '%';
			out[(*used)++] = hex[*c >> 4];
			out[(*used)++] = hex[*c & 15];
		}
	}
	out[*used] = '\0';
	return 0;
}

static int append(char *out, size_t size, size_t *used, const char *text)
{
	size_t length = strlen(text);
	if (*used + length >= size)
		return -1;
	memcpy(out + *used, text, length + 1);
	*used += length;
	return 0;
}

/* ---- Errors and issues ----------------------------------------------------------- */

static void issue_read(const json_t *object, struct amazon_issue *issue)
{
	memset(issue, 0, sizeof(*issue));
	copy_text(issue->code, sizeof(issue->code), string_of(object, "code"));
	copy_text(issue->severity, sizeof(issue->severity), string_of(object, "severity"));
	copy_text(issue->message, sizeof(issue->message), string_of(object, "message"));
}

/* The first error of an ErrorList {"errors": [{code, message, details}]};
 * false when the body is not one. */
static bool error_list_read(const json_t *root, struct amazon_issue *error)
{
	const json_t *errors = json_object_get(root, "errors");
	const json_t *first = json_array_get(errors, 0);
	if (!json_is_array(errors) || !json_is_object(first) ||
	    !json_is_string(json_object_get(first, "code")))
		return false;
	issue_read(first, error);
	return true;
}

/* The outcome of a status other than the expected success. */
static enum amazon_outcome status_outcome(long http_status, const json_t *root,
                                          struct amazon_issue *error)
{
	bool readable = root != NULL && error_list_read(root, error);
	if (http_status == 429)
		return AMAZON_THROTTLED;
	if (http_status >= 500 && http_status <= 599)
		return AMAZON_SERVER_ERROR;
	if (http_status == 401 || http_status == 403)
		return AMAZON_AUTH;
	if (http_status == 404)
		return AMAZON_NOT_FOUND;
	if (http_status >= 400 && http_status <= 499)
		return readable || http_status == 413 || http_status == 415 ? AMAZON_REJECTED
		                                                            : AMAZON_MALFORMED;
	return AMAZON_MALFORMED;
}

/* ---- Login with Amazon ------------------------------------------------------- */

char *amazon_token_body(const char *client_id, const char *client_secret, const char *refresh_token,
                        char *error, size_t error_size)
{
	const char *names[] = {"refresh_token", "client_id", "client_secret"};
	const char *values[] = {refresh_token, client_id, client_secret};
	size_t size = 32;
	for (size_t i = 0; i < 3; i++) {
		if (values[i] == NULL || values[i][0] == '\0') {
			snprintf(error, error_size, "LWA %s is empty", names[i]);
			return NULL;
		}
		size += strlen(names[i]) + 2 + 3 * strlen(values[i]);
	}
	char *body = malloc(size);
	if (body == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	size_t used = 0;
	body[0] = '\0';
	int ret = append(body, size, &used, "grant_type=refresh_token");
	for (size_t i = 0; i < 3 && ret == 0; i++) {
		ret = append(body, size, &used, "&");
		ret = ret != 0 ? ret : append(body, size, &used, names[i]);
		ret = ret != 0 ? ret : append(body, size, &used, "=");
		ret = ret != 0 ? ret : encode(body, size, &used, values[i]);
	}
	if (ret != 0) { /* cannot happen: size counts every byte */
		free(body);
		snprintf(error, error_size, "token body too long");
		return NULL;
	}
	return body;
}

static bool printable(const char *text)
{
	for (; *text != '\0'; text++)
		if (*text < 0x21 || *text > 0x7e)
			return false;
	return true;
}

void amazon_token_answer(long http_status, const char *body, size_t size,
                         struct amazon_token *token)
{
	memset(token, 0, sizeof(*token));
	json_t *root = parse(body, size);
	if (http_status == 200) {
		const char *access = string_of(root, "access_token");
		json_t *expires = json_object_get(root, "expires_in");
		json_int_t seconds = json_is_integer(expires) ? json_integer_value(expires) : 0;
		if (access == NULL || access[0] == '\0' || strlen(access) >= AMAZON_TOKEN_SIZE ||
		    !printable(access) || seconds < 1 || seconds > 86400 * 30) {
			token->outcome = AMAZON_MALFORMED;
		} else {
			memcpy(token->access_token, access, strlen(access) + 1);
			token->expires_in_s = (uint64_t)seconds;
			token->outcome = AMAZON_OK;
		}
		json_decref(root);
		return;
	}
	const char *code = string_of(root, "error");
	if (code != NULL) {
		copy_text(token->error.code, sizeof(token->error.code), code);
		copy_text(token->error.message, sizeof(token->error.message),
		          string_of(root, "error_description"));
	}
	if (http_status == 429)
		token->outcome = AMAZON_THROTTLED;
	else if (http_status >= 500 && http_status <= 599)
		token->outcome = AMAZON_SERVER_ERROR;
	else if (code != NULL &&
	         (strcmp(code, "invalid_grant") == 0 || strcmp(code, "invalid_client") == 0 ||
	          strcmp(code, "unauthorized_client") == 0))
		token->outcome = AMAZON_AUTH;
	else if (http_status == 401 || http_status == 403)
		token->outcome = AMAZON_AUTH;
	else if (code != NULL && http_status >= 400 && http_status <= 499)
		token->outcome = AMAZON_REJECTED;
	else
		token->outcome = AMAZON_MALFORMED;
	json_decref(root);
}

/* ---- Listings Items ---------------------------------------------------------- */

int amazon_listing_url(char *out, size_t size, const char *base, const char *seller,
                       const char *sku, const char *marketplace, const char *query)
{
	if (size == 0 || base == NULL || seller == NULL || sku == NULL || marketplace == NULL ||
	    base[0] == '\0' || seller[0] == '\0' || sku[0] == '\0' || marketplace[0] == '\0')
		return -1;
	size_t used = 0;
	out[0] = '\0';
	int ret = append(out, size, &used, base);
	ret = ret != 0 ? ret : append(out, size, &used, "/listings/2021-08-01/items/");
	ret = ret != 0 ? ret : encode(out, size, &used, seller);
	ret = ret != 0 ? ret : append(out, size, &used, "/");
	ret = ret != 0 ? ret : encode(out, size, &used, sku);
	ret = ret != 0 ? ret : append(out, size, &used, "?marketplaceIds=");
	ret = ret != 0 ? ret : encode(out, size, &used, marketplace);
	if (ret == 0 && query != NULL) {
		ret = append(out, size, &used, "&");
		ret = ret != 0 ? ret : append(out, size, &used, query);
	}
	return ret;
}

static json_t *patches_make(int64_t quantity)
{
	if (quantity < 0)
		quantity = 0;
	return json_pack("[{s:s, s:s, s:[{s:s, s:I}]}]", "op", "merge", "path", PATCH_PATH, "value",
	                 "fulfillment_channel_code", "DEFAULT", "quantity", (json_int_t)quantity);
}

char *amazon_patch_body(const char *product_type, int64_t quantity, char *error, size_t error_size)
{
	if (product_type == NULL || product_type[0] == '\0') {
		snprintf(error, error_size, "productType is empty");
		return NULL;
	}
	if (quantity > AMAZON_QUANTITY_MAX) {
		snprintf(error, error_size, "quantity %lld is too large", (long long)quantity);
		return NULL;
	}
	json_t *patches = patches_make(quantity);
	json_t *root = patches == NULL ? NULL
	                               : json_pack("{s:s, s:o}", "productType", product_type,
	                                           "patches", patches);
	return dump(root, error, error_size);
}

static void issues_read(const json_t *issues, struct amazon_issue *kept, uint32_t *count,
                        uint32_t *errors)
{
	size_t i;
	const json_t *issue;
	*count = 0;
	*errors = 0;
	json_array_foreach(issues, i, issue)
	{
		if (!json_is_object(issue))
			continue;
		const char *severity = string_of(issue, "severity");
		bool error = severity != NULL && strcmp(severity, "ERROR") == 0;
		*errors += error;
		if (*count < AMAZON_ISSUES_MAX)
			issue_read(issue, &kept[*count]);
		(*count)++;
	}
	if (*count > AMAZON_ISSUES_MAX)
		*count = AMAZON_ISSUES_MAX;
}

void amazon_patch_answer(long http_status, const char *body, size_t size, const char *sku,
                         struct amazon_answer *answer)
{
	memset(answer, 0, sizeof(*answer));
	json_t *root = parse(body, size);
	if (http_status != 200) {
		answer->outcome = status_outcome(http_status, root, &answer->error);
		json_decref(root);
		return;
	}
	const char *answered = string_of(root, "sku");
	const char *status = string_of(root, "status");
	const char *submission = string_of(root, "submissionId");
	const json_t *issues = json_object_get(root, "issues");
	answer->outcome = AMAZON_MALFORMED;
	if (answered == NULL || status == NULL || submission == NULL ||
	    (issues != NULL && !json_is_array(issues)) || sku == NULL ||
	    strcmp(answered, sku) != 0) {
		json_decref(root);
		return;
	}
	copy_text(answer->status, sizeof(answer->status), status);
	copy_text(answer->submission_id, sizeof(answer->submission_id), submission);
	issues_read(issues, answer->issues, &answer->issue_count, &answer->error_issues);
	if (strcmp(status, "ACCEPTED") == 0 || strcmp(status, "VALID") == 0)
		answer->outcome = AMAZON_OK;
	else if (strcmp(status, "INVALID") == 0)
		answer->outcome = AMAZON_INVALID;
	json_decref(root);
}

static void summary_read(const json_t *summaries, const char *marketplace,
                         struct amazon_listing *listing)
{
	size_t i;
	const json_t *summary;
	json_array_foreach(summaries, i, summary)
	{
		const char *id = string_of(summary, "marketplaceId");
		if (id == NULL || strcmp(id, marketplace) != 0)
			continue;
		listing->summary = true;
		copy_text(listing->last_updated, sizeof(listing->last_updated),
		          string_of(summary, "lastUpdatedDate"));
		size_t s;
		const json_t *status;
		json_array_foreach(json_object_get(summary, "status"), s, status)
		{
			const char *text = json_string_value(status);
			listing->buyable |= text != NULL && strcmp(text, "BUYABLE") == 0;
			listing->discoverable |= text != NULL && strcmp(text, "DISCOVERABLE") == 0;
		}
		return;
	}
}

static void availability_read(const json_t *availability, struct amazon_listing *listing)
{
	size_t i;
	const json_t *entry;
	json_array_foreach(availability, i, entry)
	{
		const char *code = string_of(entry, "fulfillmentChannelCode");
		const json_t *quantity = json_object_get(entry, "quantity");
		if (code == NULL || strcmp(code, "DEFAULT") != 0 || !json_is_integer(quantity) ||
		    json_integer_value(quantity) < 0)
			continue;
		listing->quantity_known = true;
		listing->quantity = (int64_t)json_integer_value(quantity);
		return;
	}
}

void amazon_listing_answer(long http_status, const char *body, size_t size, const char *sku,
                           const char *marketplace, struct amazon_listing *listing)
{
	memset(listing, 0, sizeof(*listing));
	json_t *root = parse(body, size);
	if (http_status != 200) {
		listing->outcome = status_outcome(http_status, root, &listing->error);
		json_decref(root);
		return;
	}
	const char *answered = string_of(root, "sku");
	const json_t *summaries = json_object_get(root, "summaries");
	const json_t *issues = json_object_get(root, "issues");
	const json_t *availability = json_object_get(root, "fulfillmentAvailability");
	listing->outcome = AMAZON_MALFORMED;
	if (answered == NULL || sku == NULL || marketplace == NULL || strcmp(answered, sku) != 0 ||
	    (summaries != NULL && !json_is_array(summaries)) ||
	    (issues != NULL && !json_is_array(issues)) ||
	    (availability != NULL && !json_is_array(availability))) {
		json_decref(root);
		return;
	}
	summary_read(summaries, marketplace, listing);
	availability_read(availability, listing);
	struct amazon_issue first[AMAZON_ISSUES_MAX];
	uint32_t count = 0;
	issues_read(issues, first, &count, &listing->error_issues);
	for (uint32_t i = 0; i < count; i++) {
		if (strcmp(first[i].severity, "ERROR") == 0) {
			listing->issue = first[i];
			break;
		}
	}
	if (listing->issue.code[0] == '\0' && count > 0)
		listing->issue = first[0];
	listing->outcome = AMAZON_OK;
	json_decref(root);
}

/* ---- JSON_LISTINGS_FEED --------------------------------------------------------- */

char *amazon_feed_document(const char *seller, const char *product_type,
                           const struct amazon_feed_message *messages, uint32_t count, char *error,
                           size_t error_size)
{
	if (count == 0 || count > AMAZON_FEED_MESSAGES_MAX || seller == NULL || seller[0] == '\0' ||
	    product_type == NULL || product_type[0] == '\0') {
		snprintf(error, error_size,
		         "a feed needs a seller, a product type and 1..%u messages",
		         AMAZON_FEED_MESSAGES_MAX);
		return NULL;
	}
	json_t *list = json_array();
	for (uint32_t i = 0; list != NULL && i < count; i++) {
		if (messages[i].sku == NULL || messages[i].sku[0] == '\0' ||
		    messages[i].quantity > AMAZON_QUANTITY_MAX) {
			json_decref(list);
			snprintf(error, error_size,
			         "feed message %u: empty SKU or quantity too large", i + 1);
			return NULL;
		}
		json_t *patches = patches_make(messages[i].quantity);
		json_t *message = patches == NULL
		                          ? NULL
		                          : json_pack("{s:I, s:s, s:s, s:s, s:o}", "messageId",
		                                      (json_int_t)(i + 1), "sku", messages[i].sku,
		                                      "operationType", "PATCH", "productType",
		                                      product_type, "patches", patches);
		if (message == NULL || json_array_append_new(list, message) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	json_t *root = list == NULL ? NULL
	                            : json_pack("{s:{s:s, s:s}, s:o}", "header", "sellerId", seller,
	                                        "version", "2.0", "messages", list);
	return dump(root, error, error_size);
}

char *amazon_document_spec_body(char *error, size_t error_size)
{
	return dump(json_pack("{s:s}", "contentType", AMAZON_FEED_CONTENT_TYPE), error, error_size);
}

char *amazon_create_feed_body(const char *document_id, const char *marketplace, char *error,
                              size_t error_size)
{
	if (document_id == NULL || document_id[0] == '\0' || marketplace == NULL ||
	    marketplace[0] == '\0') {
		snprintf(error, error_size, "createFeed needs a document id and a marketplace");
		return NULL;
	}
	return dump(json_pack("{s:s, s:[s], s:s}", "feedType", AMAZON_FEED_TYPE, "marketplaceIds",
	                      marketplace, "inputFeedDocumentId", document_id),
	            error, error_size);
}

/* Copies an id: non-empty printable ASCII that fits. */
static bool id_copy(char *out, size_t size, const char *text)
{
	if (text == NULL || text[0] == '\0' || strlen(text) >= size || !printable(text))
		return false;
	memcpy(out, text, strlen(text) + 1);
	return true;
}

void amazon_document_answer(long http_status, const char *body, size_t size,
                            struct amazon_document *document)
{
	memset(document, 0, sizeof(*document));
	json_t *root = parse(body, size);
	if (http_status != 200 && http_status != 201) {
		document->outcome = status_outcome(http_status, root, &document->error);
		json_decref(root);
		return;
	}
	const char *url = string_of(root, "url");
	const char *compression = string_of(root, "compressionAlgorithm");
	document->outcome = AMAZON_MALFORMED;
	if (id_copy(document->document_id, sizeof(document->document_id),
	            string_of(root, "feedDocumentId")) &&
	    id_copy(document->url, sizeof(document->url), url) &&
	    (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
	    (compression == NULL || strcmp(compression, "GZIP") == 0)) {
		document->gzip = compression != NULL;
		document->outcome = AMAZON_OK;
	}
	json_decref(root);
}

void amazon_create_feed_answer(long http_status, const char *body, size_t size,
                               struct amazon_feed *feed)
{
	memset(feed, 0, sizeof(*feed));
	json_t *root = parse(body, size);
	if (http_status != 202) {
		feed->outcome = status_outcome(http_status, root, &feed->error);
		json_decref(root);
		return;
	}
	feed->outcome = id_copy(feed->feed_id, sizeof(feed->feed_id), string_of(root, "feedId"))
	                        ? AMAZON_OK
	                        : AMAZON_MALFORMED;
	json_decref(root);
}

static enum amazon_feed_status feed_status(const char *text)
{
	static const char *const names[] = {
	        [AMAZON_FEED_IN_QUEUE] = "IN_QUEUE", [AMAZON_FEED_IN_PROGRESS] = "IN_PROGRESS",
	        [AMAZON_FEED_DONE] = "DONE",         [AMAZON_FEED_CANCELLED] = "CANCELLED",
	        [AMAZON_FEED_FATAL] = "FATAL",
	};
	for (size_t i = 1; text != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(text, names[i]) == 0)
			return (enum amazon_feed_status)i;
	return AMAZON_FEED_UNKNOWN;
}

void amazon_feed_answer(long http_status, const char *body, size_t size, const char *feed_id,
                        struct amazon_feed *feed)
{
	memset(feed, 0, sizeof(*feed));
	json_t *root = parse(body, size);
	if (http_status != 200) {
		feed->outcome = status_outcome(http_status, root, &feed->error);
		json_decref(root);
		return;
	}
	feed->outcome = AMAZON_MALFORMED;
	const char *answered = string_of(root, "feedId");
	const char *result = string_of(root, "resultFeedDocumentId");
	feed->status = feed_status(string_of(root, "processingStatus"));
	if (answered != NULL && feed_id != NULL && strcmp(answered, feed_id) == 0 &&
	    feed->status != AMAZON_FEED_UNKNOWN &&
	    id_copy(feed->feed_id, sizeof(feed->feed_id), answered) &&
	    (result == NULL ||
	     id_copy(feed->result_document_id, sizeof(feed->result_document_id), result)) &&
	    (feed->status != AMAZON_FEED_DONE || result != NULL))
		feed->outcome = AMAZON_OK;
	json_decref(root);
}

static bool count_read(const json_t *summary, const char *key, uint32_t *out)
{
	const json_t *value = json_object_get(summary, key);
	if (!json_is_integer(value) || json_integer_value(value) < 0 ||
	    json_integer_value(value) > UINT32_MAX)
		return false;
	*out = (uint32_t)json_integer_value(value);
	return true;
}

void amazon_report_read(const char *body, size_t size, const char *feed_id, uint32_t count,
                        struct amazon_report_message *messages, struct amazon_report *report)
{
	memset(report, 0, sizeof(*report));
	memset(messages, 0, sizeof(*messages) * count);
	report->outcome = AMAZON_MALFORMED;
	json_t *root = parse(body, size);
	const json_t *header = json_object_get(root, "header");
	const json_t *summary = json_object_get(root, "summary");
	const json_t *issues = json_object_get(root, "issues");
	const char *answered = string_of(header, "feedId");
	if (answered == NULL || feed_id == NULL || strcmp(answered, feed_id) != 0 ||
	    !json_is_array(issues) ||
	    !count_read(summary, "messagesProcessed", &report->processed) ||
	    !count_read(summary, "messagesAccepted", &report->accepted) ||
	    !count_read(summary, "messagesInvalid", &report->invalid)) {
		json_decref(root);
		return;
	}
	size_t i;
	const json_t *issue;
	json_array_foreach(issues, i, issue)
	{
		const char *severity = string_of(issue, "severity");
		if (severity == NULL || strcmp(severity, "ERROR") != 0)
			continue;
		const json_t *id = json_object_get(issue, "messageId");
		if (id == NULL) {
			if (!report->feed_error)
				issue_read(issue, &report->first);
			report->feed_error = true;
			continue;
		}
		if (!json_is_integer(id) || json_integer_value(id) < 1 ||
		    json_integer_value(id) > count)
			continue; /* names no message of this feed: ignored */
		struct amazon_report_message *message = &messages[json_integer_value(id) - 1];
		if (!message->invalid)
			copy_text(message->message, sizeof(message->message),
			          string_of(issue, "message"));
		message->invalid = true;
		if (report->first.code[0] == '\0' && report->first.message[0] == '\0')
			issue_read(issue, &report->first);
	}
	report->outcome = AMAZON_OK;
	json_decref(root);
}

/* ---- Rate limits ------------------------------------------------------------------ */

double amazon_rate_limit_parse(const char *value)
{
	if (value == NULL || value[0] == '\0')
		return -1;
	for (const char *c = value; *c != '\0'; c++)
		if (!((*c >= '0' && *c <= '9') || *c == '.'))
			return -1;
	char *end = NULL;
	double rate = strtod(value, &end);
	if (end == value || *end != '\0' || !isfinite(rate) || rate <= 0 || rate > 1e6)
		return -1;
	return rate;
}
