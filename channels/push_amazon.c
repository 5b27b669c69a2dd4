/*
 * push_amazon.c — the Amazon driver (push_amazon.h).
 */
#include "push_amazon.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS        UINT64_C(1000000)
#define NS_PER_S         UINT64_C(1000000000)
#define POLL_IDLE_MAX_NS (1000 * NS_PER_MS) /* the longest push sleeps for a feed */

/* The published usage plans (Listings Items 2021-08-01, Feeds 2021-06-30). */
static const double published_rate[AMAZON_OP_COUNT] = {5, 5, 0.5, 0.0083, 2, 0.0222};
static const double published_burst[AMAZON_OP_COUNT] = {5, 10, 15, 15, 15, 10};

/* ---- Clock, sleep ----------------------------------------------------------------- */

static uint64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * NS_PER_S + (uint64_t)now.tv_nsec;
}

static void nano_sleep(uint64_t ns)
{
	nanosleep(&(struct timespec){(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)}, NULL);
}

static uint64_t clock_now(const struct amazon_driver *driver)
{
	return driver->config.clock_ns != NULL ? driver->config.clock_ns() : monotonic_ns();
}

static void sleep_for(const struct amazon_driver *driver, uint64_t ns)
{
	if (ns == 0)
		return;
	if (driver->config.sleep_ns != NULL)
		driver->config.sleep_ns(ns);
	else
		nano_sleep(ns);
}

/* ---- Set-up ------------------------------------------------------------------------- */

void amazon_driver_config_defaults(struct amazon_driver_config *config)
{
	if (config->lwa_url[0] == '\0')
		snprintf(config->lwa_url, sizeof(config->lwa_url), "https://api.amazon.com");
	if (config->product_type[0] == '\0')
		snprintf(config->product_type, sizeof(config->product_type), "PRODUCT");
	if (config->timeout_ms == 0)
		config->timeout_ms = 10000;
	if (config->call_budget_ms == 0)
		config->call_budget_ms = 2000;
	if (config->feed_threshold == 0)
		config->feed_threshold = AMAZON_FEED_THRESHOLD;
	if (config->feed_poll_ms == 0)
		config->feed_poll_ms = 30000;
	if (config->feed_timeout_s == 0)
		config->feed_timeout_s = 3600;
	if (config->feed_cooldown_s == 0)
		config->feed_cooldown_s = 600;
	if (config->token_margin_s == 0)
		config->token_margin_s = 300;
	if (config->apply_window_s == 0)
		config->apply_window_s = 900;
	if (config->backoff.base_ms == 0)
		config->backoff.base_ms = 200;
	if (config->backoff.cap_ms == 0)
		config->backoff.cap_ms = 60000;
	for (int op = 0; op < AMAZON_OP_COUNT; op++) {
		if (config->rates[op] <= 0)
			config->rates[op] = published_rate[op];
		if (config->bursts[op] <= 0)
			config->bursts[op] = published_burst[op];
	}
}

int amazon_driver_init(struct amazon_driver *driver, const struct amazon_driver_config *config,
                       uint64_t seed, uint64_t now_ns)
{
	memset(driver, 0, sizeof(*driver));
	driver->config = *config;
	amazon_driver_config_defaults(&driver->config);
	const struct amazon_driver_config *c = &driver->config;
	if (c->api_url[0] == '\0' || c->seller_id[0] == '\0' || c->marketplace[0] == '\0' ||
	    c->client_id[0] == '\0' || c->client_secret[0] == '\0' || c->refresh_token[0] == '\0')
		return -1;
	driver->http = http_client_create();
	driver->entries = calloc(AMAZON_BATCH_MAX, sizeof(*driver->entries));
	driver->pending = calloc(AMAZON_PENDING_MAX, sizeof(*driver->pending));
	if (driver->http == NULL || driver->entries == NULL || driver->pending == NULL) {
		amazon_driver_fini(driver);
		return -1;
	}
	for (int op = 0; op < AMAZON_OP_COUNT; op++)
		pace_init(&driver->buckets[op], c->bursts[op], c->rates[op], now_ns);
	driver->rng = seed | 1;
	return 0;
}

void amazon_driver_fini(struct amazon_driver *driver)
{
	http_client_destroy(driver->http);
	free(driver->entries);
	free(driver->pending);
	driver->http = NULL;
	driver->entries = NULL;
	driver->pending = NULL;
}

uint64_t amazon_driver_wait_ns(const struct amazon_driver *driver, uint64_t now_ns)
{
	uint64_t backoff = driver->retry_at_ns > now_ns ? driver->retry_at_ns - now_ns : 0;
	uint64_t pace = pace_wait_ns(&driver->buckets[AMAZON_OP_PATCH], 1, now_ns);
	return backoff > pace ? backoff : pace;
}

int amazon_driver_rate_limit(struct amazon_driver *driver, enum amazon_operation operation,
                             const char *value, uint64_t now_ns)
{
	double rate = amazon_rate_limit_parse(value);
	if ((unsigned)operation >= AMAZON_OP_COUNT || rate <= 0)
		return -1;
	struct pace_bucket *bucket = &driver->buckets[operation];
	pace_observe(bucket, pace_level(bucket, now_ns), 0, rate, now_ns);
	driver->figures.rate_limits_learned++;
	return 0;
}

static void backoff_start(struct amazon_driver *driver, uint64_t retry_after_ms, uint64_t now_ns)
{
	uint64_t delay = backoff_delay_ms(&driver->config.backoff, driver->failures, retry_after_ms,
	                                  &driver->rng);
	driver->failures++;
	driver->retry_at_ns = now_ns + delay * NS_PER_MS;
}

/* ---- Token ---------------------------------------------------------------------------- */

/* Refreshes the access token. Returns the outcome (AMAZON_OK: a new token;
 * AMAZON_AUTH: LWA refused the credentials, remembered). */
static enum amazon_outcome token_refresh(struct amazon_driver *driver, uint64_t now_ns)
{
	char error[128];
	char *body = amazon_token_body(driver->config.client_id, driver->config.client_secret,
	                               driver->config.refresh_token, error, sizeof(error));
	if (body == NULL)
		return AMAZON_REJECTED;
	char url[320];
	snprintf(url, sizeof(url), "%s/auth/o2/token", driver->config.lwa_url);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/x-www-form-urlencoded;charset=UTF-8",
	                    "Accept: application/json"},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = driver->config.timeout_ms,
	};
	struct http_response response;
	int ret = http_call(driver->http, &request, &response);
	free(body);
	if (ret != 0)
		return AMAZON_SERVER_ERROR;
	struct amazon_token *token = malloc(sizeof(*token));
	if (token == NULL)
		return AMAZON_SERVER_ERROR;
	amazon_token_answer(response.status, response.body, response.body_size, token);
	enum amazon_outcome outcome = token->outcome;
	if (outcome == AMAZON_OK) {
		memcpy(driver->token, token->access_token, sizeof(driver->token));
		driver->token_lifetime_ns = token->expires_in_s * NS_PER_S;
		driver->token_expires_ns = now_ns + driver->token_lifetime_ns;
		driver->figures.token_refreshes++;
	} else if (outcome == AMAZON_AUTH) {
		driver->token_refused = true;
		driver->token[0] = '\0';
	}
	free(token);
	return outcome;
}

/* A token that is not about to expire. */
static enum amazon_outcome token_ensure(struct amazon_driver *driver, uint64_t now_ns)
{
	if (driver->token_refused)
		return AMAZON_AUTH;
	uint64_t margin = (uint64_t)driver->config.token_margin_s * NS_PER_S;
	if (margin > driver->token_lifetime_ns / 2)
		margin = driver->token_lifetime_ns / 2;
	if (driver->token[0] != '\0' && now_ns + margin < driver->token_expires_ns)
		return AMAZON_OK;
	return token_refresh(driver, now_ns);
}

/* ---- One SP-API call -------------------------------------------------------------------- */

enum call_result {
	CALL_ANSWERED = 0, /* response holds an answer (any status) */
	CALL_NO_ANSWER,    /* sent, no answer: unknown whether applied */
	CALL_NOT_SENT,     /* the bucket would wait past the deadline, or backing off */
	CALL_AUTH,         /* LWA refused the credentials */
	CALL_NO_TOKEN,     /* no token could be had now (LWA down): not sent */
};

/* Sends one call of operation once its bucket allows it before deadline_ns,
 * with a valid token; a 403 refreshes the token and sends it once more. */
static enum call_result sp_call(struct amazon_driver *driver, enum amazon_operation operation,
                                const char *method, const char *url, const char *body,
                                uint64_t deadline_ns, struct http_response *response)
{
	static char auth[AMAZON_TOKEN_SIZE + 32]; /* one driver per thread (http.h) */
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t now = clock_now(driver);
		if (driver->retry_at_ns > now)
			return CALL_NOT_SENT;
		uint64_t wait = pace_wait_ns(&driver->buckets[operation], 1, now);
		if (wait == PACE_NEVER || now + wait > deadline_ns)
			return CALL_NOT_SENT;
		sleep_for(driver, wait);
		now = clock_now(driver);
		enum amazon_outcome token = token_ensure(driver, now);
		if (token == AMAZON_AUTH)
			return CALL_AUTH;
		if (token != AMAZON_OK) {
			backoff_start(driver, 0, now);
			return CALL_NO_TOKEN;
		}
		snprintf(auth, sizeof(auth), "x-amz-access-token: %s", driver->token);
		struct http_request request = {
		        .method = method,
		        .url = url,
		        .headers = {auth, "Accept: application/json",
		                    body != NULL ? "Content-Type: application/json" : NULL},
		        .body = body,
		        .body_size = body != NULL ? strlen(body) : 0,
		        .timeout_ms = driver->config.timeout_ms,
		};
		pace_take(&driver->buckets[operation], 1, now);
		driver->figures.calls++;
		if (http_call(driver->http, &request, response) != 0)
			return CALL_NO_ANSWER;
		/* The answer says the operation's rate: the bucket learns it. */
		if (response->rate_limit[0] != '\0')
			amazon_driver_rate_limit(driver, operation, response->rate_limit,
			                         clock_now(driver));
		if (response->status == 429) {
			driver->figures.throttled++;
			pace_throttled(&driver->buckets[operation], clock_now(driver));
			backoff_start(driver, response->retry_after_ms, clock_now(driver));
		}
		if (response->status != 403 || attempt > 0)
			return CALL_ANSWERED;
		/* 403: the token may have expired early; once more with a new one. */
		driver->token[0] = '\0';
		driver->figures.token_refreshes_on_403++;
	}
	return CALL_ANSWERED;
}

/* ---- Items ------------------------------------------------------------------------------ */

static void accepted_set(struct push_result *result, const struct push_item *item, int64_t whole)
{
	push_result_set(result, item, PUSH_ACCEPTED, PUSH_EXCEPTION_NONE, NULL);
	result->shown = push_base_units(whole, item->scale);
	result->shown_known = true;
}

/* The whole units to send: after a stale answer or a mismatch, never more
 * than the channel was read to show. */
static int64_t quantity_to_send(const struct push_item *item)
{
	int64_t quantity = item->quantity;
	if (item->stale && item->shown_known && item->shown < quantity)
		quantity = item->shown;
	return push_whole_units(quantity, item->scale);
}

/* The SKU of item: its listing without the prefix the worker puts before an
 * all-digit listing. NULL when unmapped. */
static const char *item_sku(const struct amazon_driver *driver, const struct push_item *item)
{
	const char *listing = item->listing[0];
	if (listing[0] == '\0')
		return NULL;
	size_t prefix = strlen(driver->config.listing_prefix);
	if (prefix == 0 || strncmp(listing, driver->config.listing_prefix, prefix) != 0 ||
	    listing[prefix] == '\0')
		return listing;
	for (const char *c = listing + prefix; *c != '\0'; c++)
		if (!isdigit((unsigned char)*c))
			return listing;
	return listing + prefix;
}

static void issue_detail(char *out, size_t size, const struct amazon_issue *issue,
                         const char *otherwise)
{
	if (issue->code[0] == '\0' && issue->message[0] == '\0')
		snprintf(out, size, "%s", otherwise);
	else
		snprintf(out, size, "%.40s: %.110s", issue->code, issue->message);
}

/* ---- Accepted changes waiting to be seen ------------------------------------------------- */

static struct amazon_pending *pending_find(struct amazon_driver *driver, uint32_t item)
{
	for (uint32_t i = 0; i < AMAZON_PENDING_MAX; i++)
		if (driver->pending[i].item == item)
			return &driver->pending[i];
	return NULL;
}

static void pending_add(struct amazon_driver *driver, uint32_t item, int64_t quantity,
                        uint64_t now_ns)
{
	struct amazon_pending *slot = pending_find(driver, item);
	if (slot == NULL)
		slot = pending_find(driver, 0);
	if (slot == NULL) { /* full: the oldest by insertion order goes */
		slot = &driver->pending[driver->pending_next];
		driver->pending_next = (driver->pending_next + 1) % AMAZON_PENDING_MAX;
	}
	*slot = (struct amazon_pending){item, quantity, now_ns};
}

/* ---- PATCH ------------------------------------------------------------------------------- */

enum patch_next {
	PATCH_GO_ON,
	PATCH_STOP
};

/* PATCHes one item; hold: answer RETRY even when accepted. */
static enum patch_next patch_one(struct amazon_driver *driver, const struct push_item *item,
                                 const char *sku, int64_t whole, bool hold,
                                 struct push_result *result, uint64_t deadline_ns)
{
	char url[1024], error[128];
	char *body = amazon_patch_body(driver->config.product_type, whole, error, sizeof(error));
	if (body == NULL ||
	    amazon_listing_url(url, sizeof(url), driver->config.api_url, driver->config.seller_id,
	                       sku, driver->config.marketplace, NULL) != 0) {
		free(body);
		push_result_set(result, item, PUSH_EXCEPTION, PUSH_EXCEPTION_VALIDATION,
		                body == NULL ? error : "the SKU does not fit a URL");
		return PATCH_GO_ON;
	}
	struct http_response response;
	enum call_result sent =
	        sp_call(driver, AMAZON_OP_PATCH, "PATCH", url, body, deadline_ns, &response);
	free(body);
	uint64_t now = clock_now(driver);
	switch (sent) {
	case CALL_NOT_SENT:
		push_result_set(result, item, PUSH_RETRY, PUSH_EXCEPTION_NONE, "not reached");
		return PATCH_STOP;
	case CALL_AUTH:
		push_result_set(result, item, PUSH_EXCEPTION, PUSH_EXCEPTION_AUTH,
		                "Login with Amazon refused the credentials");
		return PATCH_STOP;
	case CALL_NO_TOKEN:
		push_result_set(result, item, PUSH_RETRY, PUSH_EXCEPTION_NONE, "no access token");
		return PATCH_STOP;
	case CALL_NO_ANSWER:
		backoff_start(driver, 0, now);
		push_result_set(result, item, PUSH_RETRY, PUSH_EXCEPTION_NONE, response.error);
		return PATCH_STOP;
	case CALL_ANSWERED:
		break;
	}
	struct amazon_answer answer;
	amazon_patch_answer(response.status, response.body, response.body_size, sku, &answer);
	char detail[PUSH_DETAIL_SIZE];
	switch (answer.outcome) {
	case AMAZON_OK:
		driver->failures = 0;
		driver->figures.patches_accepted++;
		pending_add(driver, item->item, whole, now);
		if (hold)
			push_result_set(result, item, PUSH_RETRY, PUSH_EXCEPTION_NONE,
			                "sent below the value of a feed in flight");
		else
			accepted_set(result, item, whole);
		return PATCH_GO_ON;
	case AMAZON_INVALID:
		driver->failures = 0;
		driver->figures.patches_invalid++;
		for (uint32_t i = 0; i < answer.issue_count; i++) {
			if (strcmp(answer.issues[i].severity, "ERROR") == 0) {
				answer.error = answer.issues[i];
				break;
			}
		}
		issue_detail(detail, sizeof(detail), &answer.error, "INVALID without issues");
		push_result_set(result, item, PUSH_EXCEPTION, PUSH_EXCEPTION_VALIDATION, detail);
		return PATCH_GO_ON;
	case AMAZON_NOT_FOUND:
		issue_detail(detail, sizeof(detail), &answer.error, "404");
		push_result_set(result, item, PUSH_EXCEPTION, PUSH_EXCEPTION_UNKNOWN, detail);
		return PATCH_GO_ON;
	case AMAZON_REJECTED:
		issue_detail(detail, sizeof(detail), &answer.error, "the request was refused");
		push_result_set(result, item, PUSH_EXCEPTION, PUSH_EXCEPTION_VALIDATION, detail);
		return PATCH_GO_ON;
	case AMAZON_AUTH:
		issue_detail(detail, sizeof(detail), &answer.error, "403");
		push_result_set(result, item, PUSH_EXCEPTION, PUSH_EXCEPTION_AUTH, detail);
		backoff_start(driver, 0, now);
		return PATCH_STOP;
	case AMAZON_THROTTLED: /* sp_call emptied the bucket and backs off */
		push_result_set(result, item, PUSH_RETRY, PUSH_EXCEPTION_NONE, "QuotaExceeded");
		return PATCH_STOP;
	default:
		backoff_start(driver, response.retry_after_ms, now);
		push_result_set(result, item, PUSH_RETRY, PUSH_EXCEPTION_NONE,
		                "server error or unreadable answer");
		return PATCH_STOP;
	}
}

/* ---- Feeds ------------------------------------------------------------------------------- */

static struct amazon_feed_entry *entry_find(struct amazon_driver *driver, uint32_t item)
{
	for (uint32_t i = 0; i < driver->entry_count; i++)
		if (driver->entries[i].item == item)
			return &driver->entries[i];
	return NULL;
}

static void entries_set(struct amazon_driver *driver, enum amazon_entry_state from,
                        enum amazon_entry_state to, const char *detail)
{
	for (uint32_t i = 0; i < driver->entry_count; i++) {
		if (driver->entries[i].state != from)
			continue;
		driver->entries[i].state = to;
		snprintf(driver->entries[i].detail, sizeof(driver->entries[i].detail), "%s",
		         detail);
	}
}

static void feed_failed(struct amazon_driver *driver, const char *why, uint64_t now_ns)
{
	entries_set(driver, AMAZON_ENTRY_SENT, AMAZON_ENTRY_FAILED, why);
	driver->feed_phase = AMAZON_FEED_FINISHED;
	driver->feed_cooldown_ns = now_ns + (uint64_t)driver->config.feed_cooldown_s * NS_PER_S;
	driver->figures.feeds_failed++;
}

/* A GET of an absolute URL without the SP-API's token (a presigned URL). */
static int plain_get(struct amazon_driver *driver, const char *url, struct http_response *response)
{
	struct http_request request = {
	        .method = "GET", .url = url, .timeout_ms = driver->config.timeout_ms};
	return http_call(driver->http, &request, response);
}

/* DONE: the processing report through getFeedDocument and its URL. */
static void feed_report(struct amazon_driver *driver, const char *document_id, uint64_t deadline_ns)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/feeds/2021-06-30/documents/%s", driver->config.api_url,
	         document_id);
	struct http_response response;
	if (sp_call(driver, AMAZON_OP_GET_DOCUMENT, "GET", url, NULL, deadline_ns, &response) !=
	    CALL_ANSWERED)
		return; /* polled again later */
	struct amazon_document *document = malloc(sizeof(*document));
	struct amazon_report_message *messages = calloc(driver->entry_count, sizeof(*messages));
	uint64_t now = clock_now(driver);
	if (document == NULL || messages == NULL)
		goto done;
	amazon_document_answer(response.status, response.body, response.body_size, document);
	if (document->outcome != AMAZON_OK || document->gzip) {
		if (document->outcome == AMAZON_OK || document->outcome == AMAZON_MALFORMED ||
		    document->outcome == AMAZON_NOT_FOUND)
			feed_failed(driver,
			            document->gzip ? "the report is compressed (GZIP): not read"
			                           : "the report document is unreadable",
			            now);
		goto done;
	}
	if (plain_get(driver, document->url, &response) != 0)
		goto done;
	struct amazon_report report;
	amazon_report_read(response.status == 200 ? response.body : NULL, response.body_size,
	                   driver->feed_id, driver->entry_count, messages, &report);
	if (report.outcome != AMAZON_OK || report.feed_error) {
		char why[PUSH_DETAIL_SIZE];
		issue_detail(why, sizeof(why), &report.first,
		             "the processing report is unreadable");
		feed_failed(driver, why, now);
		goto done;
	}
	bool all = report.processed >= driver->entry_count;
	for (uint32_t i = 0; i < driver->entry_count; i++) {
		struct amazon_feed_entry *entry = &driver->entries[i];
		if (messages[i].invalid) {
			entry->state = AMAZON_ENTRY_INVALID;
			snprintf(entry->detail, sizeof(entry->detail), "feed: %.150s",
			         messages[i].message);
		} else if (all) {
			entry->state = AMAZON_ENTRY_ACCEPTED;
			pending_add(driver, entry->item, entry->quantity, now);
		} else {
			entry->state = AMAZON_ENTRY_FAILED; /* not processed: push it again */
		}
	}
	driver->feed_phase = AMAZON_FEED_FINISHED;
done:
	free(document);
	free(messages);
}

/* Polls the feed in flight when it is time. */
static void feed_poll(struct amazon_driver *driver, uint64_t deadline_ns)
{
	uint64_t now = clock_now(driver);
	if (driver->feed_phase != AMAZON_FEED_IN_FLIGHT || now < driver->feed_poll_ns)
		return;
	if (now - driver->feed_started_ns > (uint64_t)driver->config.feed_timeout_s * NS_PER_S) {
		feed_failed(driver, "the feed took too long", now);
		return;
	}
	driver->feed_poll_ns = now + (uint64_t)driver->config.feed_poll_ms * NS_PER_MS;
	char url[512];
	snprintf(url, sizeof(url), "%s/feeds/2021-06-30/feeds/%s", driver->config.api_url,
	         driver->feed_id);
	struct http_response response;
	if (sp_call(driver, AMAZON_OP_GET_FEED, "GET", url, NULL, deadline_ns, &response) !=
	    CALL_ANSWERED)
		return;
	driver->figures.feed_polls++;
	struct amazon_feed feed;
	amazon_feed_answer(response.status, response.body, response.body_size, driver->feed_id,
	                   &feed);
	now = clock_now(driver);
	if (feed.outcome == AMAZON_NOT_FOUND) {
		feed_failed(driver, "the feed is unknown to Amazon", now);
		return;
	}
	if (feed.outcome != AMAZON_OK)
		return; /* polled again later */
	if (feed.status == AMAZON_FEED_CANCELLED || feed.status == AMAZON_FEED_FATAL) {
		feed_failed(driver,
		            feed.status == AMAZON_FEED_FATAL ? "feed FATAL" : "feed CANCELLED",
		            now);
		return;
	}
	if (feed.status == AMAZON_FEED_DONE)
		feed_report(driver, feed.result_document_id, deadline_ns);
}

/* createFeedDocument, the upload, createFeed. Returns 0 when the feed is in
 * flight (its entries set), -1 when it was not started. */
static int feed_start(struct amazon_driver *driver, const struct amazon_feed_entry *entries,
                      const char *const *skus, uint32_t count, uint64_t deadline_ns)
{
	char error[128], url[512];
	struct amazon_feed_message *messages = calloc(count, sizeof(*messages));
	struct amazon_document *document = malloc(sizeof(*document));
	char *text = NULL, *spec = NULL, *create = NULL;
	struct http_response response = {0};
	int ret = -1;
	if (messages == NULL || document == NULL)
		goto done;
	for (uint32_t i = 0; i < count; i++)
		messages[i] = (struct amazon_feed_message){skus[i], entries[i].quantity};
	text = amazon_feed_document(driver->config.seller_id, driver->config.product_type, messages,
	                            count, error, sizeof(error));
	spec = amazon_document_spec_body(error, sizeof(error));
	if (text == NULL || spec == NULL)
		goto done;
	snprintf(url, sizeof(url), "%s/feeds/2021-06-30/documents", driver->config.api_url);
	if (sp_call(driver, AMAZON_OP_CREATE_DOCUMENT, "POST", url, spec, deadline_ns, &response) !=
	    CALL_ANSWERED)
		goto done;
	amazon_document_answer(response.status, response.body, response.body_size, document);
	if (document->outcome != AMAZON_OK || response.status != 201)
		goto failed;
	struct http_request upload = {
	        .method = "PUT",
	        .url = document->url,
	        .headers = {"Content-Type: " AMAZON_FEED_CONTENT_TYPE},
	        .body = text,
	        .body_size = strlen(text),
	        .timeout_ms = driver->config.timeout_ms,
	};
	if (http_call(driver->http, &upload, &response) != 0 || response.status != 200)
		goto failed;
	create = amazon_create_feed_body(document->document_id, driver->config.marketplace, error,
	                                 sizeof(error));
	snprintf(url, sizeof(url), "%s/feeds/2021-06-30/feeds", driver->config.api_url);
	if (create == NULL || sp_call(driver, AMAZON_OP_CREATE_FEED, "POST", url, create,
	                              deadline_ns, &response) != CALL_ANSWERED)
		goto failed;
	struct amazon_feed feed;
	amazon_create_feed_answer(response.status, response.body, response.body_size, &feed);
	if (feed.outcome != AMAZON_OK)
		goto failed;
	uint64_t now = clock_now(driver);
	memcpy(driver->entries, entries, sizeof(*entries) * count);
	driver->entry_count = count;
	memcpy(driver->feed_id, feed.feed_id, sizeof(driver->feed_id));
	driver->feed_phase = AMAZON_FEED_IN_FLIGHT;
	driver->feed_started_ns = now;
	driver->feed_poll_ns = now + (uint64_t)driver->config.feed_poll_ms * NS_PER_MS;
	driver->figures.feeds++;
	driver->figures.feed_messages += count;
	driver->failures = 0;
	ret = 0;
	goto done;
failed:
	/* A createFeed without an answer may have started a feed: its values are
	 * absolute and older ones are PATCHed again, so it does no lasting harm. */
	backoff_start(driver, response.retry_after_ms, clock_now(driver));
	driver->feed_cooldown_ns =
	        clock_now(driver) + (uint64_t)driver->config.feed_cooldown_s * NS_PER_S;
done:
	free(messages);
	free(document);
	free(text);
	free(spec);
	free(create);
	return ret;
}

static bool feed_possible(const struct amazon_driver *driver, uint64_t now_ns)
{
	return driver->feed_phase != AMAZON_FEED_IN_FLIGHT && now_ns >= driver->feed_cooldown_ns &&
	       now_ns >= driver->retry_at_ns &&
	       pace_wait_ns(&driver->buckets[AMAZON_OP_CREATE_DOCUMENT], 1, now_ns) == 0 &&
	       pace_wait_ns(&driver->buckets[AMAZON_OP_CREATE_FEED], 1, now_ns) == 0;
}

/* ---- Push ----------------------------------------------------------------------------- */

enum plan {
	PLAN_DONE = 0, /* the result is set */
	PLAN_PATCH,
	PLAN_PATCH_HOLD, /* PATCH, answer RETRY */
	PLAN_FEED,
};

/* Sorts every item into done (a verdict without a call), PATCH or hold. */
static void plan_items(struct amazon_driver *driver, const struct push_item *items, uint32_t count,
                       struct push_result *results, uint8_t *plan, const char **skus,
                       int64_t *wholes)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct push_item *item = &items[i];
		plan[i] = PLAN_DONE;
		skus[i] = item_sku(driver, item);
		wholes[i] = quantity_to_send(item);
		if (skus[i] == NULL) {
			push_result_set(&results[i], item, PUSH_EXCEPTION, PUSH_EXCEPTION_UNMAPPED,
			                "no Amazon SKU for this item");
			continue;
		}
		struct amazon_feed_entry *entry = entry_find(driver, item->item);
		if (entry == NULL) {
			plan[i] = PLAN_PATCH;
			continue;
		}
		bool same = entry->quantity == wholes[i];
		if (entry->state == AMAZON_ENTRY_SENT) {
			if (wholes[i] < entry->quantity) {
				plan[i] = PLAN_PATCH_HOLD;
				continue;
			}
			push_result_set(&results[i], item, PUSH_RETRY, PUSH_EXCEPTION_NONE,
			                same ? "in a feed in flight"
			                     : "waiting for a feed in flight");
			continue;
		}
		if (same && entry->state == AMAZON_ENTRY_ACCEPTED)
			accepted_set(&results[i], item, wholes[i]);
		else if (same && entry->state == AMAZON_ENTRY_INVALID)
			push_result_set(&results[i], item, PUSH_EXCEPTION,
			                PUSH_EXCEPTION_VALIDATION, entry->detail);
		else
			plan[i] = PLAN_PATCH;
		entry->item = 0; /* used: the item's next value is its own */
	}
}

/* A large call: all but the zeros into one feed. */
static void plan_feed(struct amazon_driver *driver, const struct push_item *items, uint32_t count,
                      struct push_result *results, uint8_t *plan, const char **skus,
                      const int64_t *wholes, uint64_t deadline_ns)
{
	uint32_t patch = 0;
	for (uint32_t i = 0; i < count; i++)
		patch += plan[i] == PLAN_PATCH;
	if (patch < driver->config.feed_threshold || !feed_possible(driver, clock_now(driver)))
		return;
	struct amazon_feed_entry *entries = calloc(count, sizeof(*entries));
	const char **feed_skus = calloc(count, sizeof(*feed_skus));
	uint32_t used = 0;
	for (uint32_t i = 0; entries != NULL && feed_skus != NULL && i < count; i++) {
		if (plan[i] != PLAN_PATCH || wholes[i] == 0)
			continue;
		entries[used] =
		        (struct amazon_feed_entry){items[i].item, wholes[i], AMAZON_ENTRY_SENT, ""};
		feed_skus[used++] = skus[i];
	}
	if (used > 0 && feed_start(driver, entries, feed_skus, used, deadline_ns) == 0) {
		for (uint32_t i = 0; i < count; i++) {
			if (plan[i] != PLAN_PATCH || wholes[i] == 0)
				continue;
			plan[i] = PLAN_DONE;
			push_result_set(&results[i], &items[i], PUSH_RETRY, PUSH_EXCEPTION_NONE,
			                "sent in a feed");
		}
	}
	free(entries);
	free(feed_skus);
}

void amazon_driver_push(struct amazon_driver *driver, const struct push_item *items, uint32_t count,
                        struct push_result *results, uint64_t now_ns)
{
	for (uint32_t i = AMAZON_BATCH_MAX; i < count; i++)
		push_result_set(&results[i], &items[i], PUSH_RETRY, PUSH_EXCEPTION_NONE, NULL);
	if (count > AMAZON_BATCH_MAX)
		count = AMAZON_BATCH_MAX;
	if (count == 0)
		return;
	uint64_t deadline = now_ns + (uint64_t)driver->config.call_budget_ms * NS_PER_MS;
	feed_poll(driver, deadline);
	uint8_t *plan = calloc(count, sizeof(*plan));
	const char **skus = calloc(count, sizeof(*skus));
	int64_t *wholes = calloc(count, sizeof(*wholes));
	if (plan == NULL || skus == NULL || wholes == NULL) {
		for (uint32_t i = 0; i < count; i++)
			push_result_set(&results[i], &items[i], PUSH_RETRY, PUSH_EXCEPTION_NONE,
			                "out of memory");
		goto done;
	}
	plan_items(driver, items, count, results, plan, skus, wholes);
	plan_feed(driver, items, count, results, plan, skus, wholes, deadline);
	bool stop = false;
	uint64_t calls = driver->figures.calls;
	for (uint32_t i = 0; i < count; i++) {
		if (plan[i] == PLAN_DONE)
			continue;
		if (stop) {
			push_result_set(&results[i], &items[i], PUSH_RETRY, PUSH_EXCEPTION_NONE,
			                "not reached");
			continue;
		}
		stop = patch_one(driver, &items[i], skus[i], wholes[i], plan[i] == PLAN_PATCH_HOLD,
		                 &results[i], deadline) == PATCH_STOP;
	}
	bool sent = driver->figures.calls != calls;
	/* Everything waits for the feed: do not let the worker spin. */
	uint64_t now = clock_now(driver);
	if (!sent && driver->feed_phase == AMAZON_FEED_IN_FLIGHT && driver->feed_poll_ns > now) {
		uint64_t idle = driver->feed_poll_ns - now;
		sleep_for(driver, idle < POLL_IDLE_MAX_NS ? idle : POLL_IDLE_MAX_NS);
	}
done:
	free(plan);
	free(skus);
	free(wholes);
}

/* ---- Read-back -------------------------------------------------------------------------- */

/* What one listing shows, as the worker sees it. */
static void level_from(struct amazon_driver *driver, const struct push_item *item,
                       const struct amazon_listing *listing, struct push_level *level,
                       uint64_t now_ns)
{
	memset(level, 0, sizeof(*level));
	if (listing->outcome == AMAZON_NOT_FOUND) {
		level->exception = PUSH_EXCEPTION_UNKNOWN;
		issue_detail(level->detail, sizeof(level->detail), &listing->error,
		             "SKU not found");
		return;
	}
	if (!listing->summary || !listing->buyable) {
		driver->figures.reads_inactive++;
		level->exception = PUSH_EXCEPTION_INACTIVE;
		char issue[PUSH_DETAIL_SIZE];
		issue_detail(issue, sizeof(issue), &listing->issue, "no issue given");
		snprintf(level->detail, sizeof(level->detail), "not BUYABLE: %.130s", issue);
		return;
	}
	if (!listing->quantity_known)
		return; /* no DEFAULT (merchant) quantity: nothing to compare */
	struct amazon_pending *pending = pending_find(driver, item->item);
	if (pending != NULL && pending->quantity == listing->quantity) {
		uint64_t latency = now_ns - pending->accepted_ns;
		driver->figures.shown++;
		driver->figures.accept_to_show_ns_sum += latency;
		if (latency > driver->figures.accept_to_show_ns_max)
			driver->figures.accept_to_show_ns_max = latency;
		driver->figures.last_accepted_ns = pending->accepted_ns;
		driver->figures.last_shown_ns = now_ns;
		pending->item = 0;
	} else if (pending != NULL && now_ns - pending->accepted_ns <
	                                      (uint64_t)driver->config.apply_window_s * NS_PER_S) {
		driver->figures.reads_pending++;
		return; /* accepted, not applied yet: not a mismatch */
	} else if (pending != NULL) {
		pending->item = 0; /* the window passed: what it shows is what it shows */
	}
	level->known = true;
	level->shown = push_base_units(listing->quantity, item->scale);
}

int amazon_driver_read(struct amazon_driver *driver, const struct push_item *items, uint32_t count,
                       struct push_level *levels, uint64_t now_ns)
{
	if (count == 0 || count > AMAZON_READ_MAX)
		return -1;
	uint64_t deadline = now_ns + (uint64_t)driver->config.call_budget_ms * NS_PER_MS;
	struct amazon_listing listing;
	for (uint32_t i = 0; i < count; i++) {
		const char *sku = item_sku(driver, &items[i]);
		char url[1024];
		if (sku == NULL) {
			memset(&levels[i], 0, sizeof(levels[i]));
			continue;
		}
		if (amazon_listing_url(url, sizeof(url), driver->config.api_url,
		                       driver->config.seller_id, sku, driver->config.marketplace,
		                       "includedData=summaries,issues,fulfillmentAvailability") !=
		    0)
			return -1;
		struct http_response response;
		if (sp_call(driver, AMAZON_OP_GET, "GET", url, NULL, deadline, &response) !=
		    CALL_ANSWERED)
			return -1;
		amazon_listing_answer(response.status, response.body, response.body_size, sku,
		                      driver->config.marketplace, &listing);
		if (listing.outcome != AMAZON_OK && listing.outcome != AMAZON_NOT_FOUND)
			return -1;
		driver->figures.reads++;
		level_from(driver, &items[i], &listing, &levels[i], clock_now(driver));
	}
	return 0;
}

/* ---- skuld-push's kind "amazon" ----------------------------------------------------------- */

static struct amazon_driver amazon;

static uint64_t kind_wait(void *context, uint64_t now_ns)
{
	return amazon_driver_wait_ns(context, now_ns);
}

static void kind_push(void *context, const struct push_item *items, uint32_t count,
                      struct push_result *results, uint64_t now_ns)
{
	amazon_driver_push(context, items, count, results, now_ns);
}

static int kind_read(void *context, const struct push_item *items, uint32_t count,
                     struct push_level *levels, uint64_t now_ns)
{
	return amazon_driver_read(context, items, count, levels, now_ns);
}

int amazon_kind_start(const struct push_worker_config *config, struct push_driver *adapter)
{
	struct amazon_driver_config settings = {.timeout_ms = config->timeout_ms};
	snprintf(settings.api_url, sizeof(settings.api_url), "%s", config->api_url);
	snprintf(settings.lwa_url, sizeof(settings.lwa_url), "%s", config->lwa_url);
	snprintf(settings.seller_id, sizeof(settings.seller_id), "%s", config->seller_id);
	snprintf(settings.marketplace, sizeof(settings.marketplace), "%s", config->location);
	snprintf(settings.client_id, sizeof(settings.client_id), "%s", config->lwa_client_id);
	snprintf(settings.client_secret, sizeof(settings.client_secret), "%s",
	         config->lwa_client_secret);
	snprintf(settings.refresh_token, sizeof(settings.refresh_token), "%s",
	         config->lwa_refresh_token);
	snprintf(settings.channel, sizeof(settings.channel), "%.31s", config->channel);
	snprintf(settings.listing_prefix, sizeof(settings.listing_prefix), "%s",
	         config->listing_prefix);
	if (settings.seller_id[0] == '\0' || settings.client_id[0] == '\0' ||
	    settings.client_secret[0] == '\0' || settings.refresh_token[0] == '\0') {
		fprintf(stderr, "skuld-push: amazon: seller_id, lwa_client_id, lwa_client_secret "
		                "and lwa_refresh_token are required\n");
		return -1;
	}
	uint64_t seed = monotonic_ns() ^ ((uint64_t)getpid() << 32);
	if (amazon_driver_init(&amazon, &settings, seed, monotonic_ns()) != 0)
		return -1;
	*adapter = (struct push_driver){
	        .context = &amazon,
	        .batch_max = AMAZON_BATCH_MAX,
	        .read_max = AMAZON_READ_MAX,
	        .wait_ns = kind_wait,
	        .push = kind_push,
	        .read = kind_read,
	};
	return 0;
}

void amazon_kind_stop(void)
{
	const struct amazon_driver_figures *f = &amazon.figures;
	fprintf(stderr,
	        "skuld-push: Amazon calls %" PRIu64 ", throttled %" PRIu64
	        ", token refreshes %" PRIu64 " (%" PRIu64 " after a 403), accepted %" PRIu64
	        ", invalid %" PRIu64 ", feeds %" PRIu64 " (%" PRIu64 " messages, %" PRIu64
	        " failed), reads %" PRIu64 " (%" PRIu64 " inactive)\n",
	        f->calls, f->throttled, f->token_refreshes, f->token_refreshes_on_403,
	        f->patches_accepted, f->patches_invalid, f->feeds, f->feed_messages,
	        f->feeds_failed, f->reads, f->reads_inactive);
	if (f->shown > 0)
		fprintf(stderr,
		        "skuld-push: Amazon accepted to shown: %" PRIu64 " changes, mean %" PRIu64
		        " ms, max %" PRIu64 " ms\n",
		        f->shown, f->accept_to_show_ns_sum / f->shown / NS_PER_MS,
		        f->accept_to_show_ns_max / NS_PER_MS);
	amazon_driver_fini(&amazon);
}
