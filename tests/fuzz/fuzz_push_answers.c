/*
 * fuzz_push_answers.c — the channel answer parsers on arbitrary bodies and
 * HTTP statuses (docs/FUZZING.md): Shopify's inventorySetQuantities and
 * read-back answers (channels/shopify.h), Square's batch-create and
 * batch-retrieve answers and its quantity text (channels/square.h),
 * Amazon's token, listing patch and get, feed document, feed and report
 * answers and its rate-limit header (channels/amazon.h), and the Shopify
 * order webhooks the gateway reads (channels/gateway_shopify.h).
 *
 * Input: byte 0 chooses the parser (enum parser, modulo its count), byte 1
 * the HTTP status (statuses[], or a made-up one), byte 2 the quantities or
 * messages the answer is for (1..256), then the body. The body is copied
 * into a heap block of exactly its size (it is never NUL-terminated, as
 * curl hands it over), so an over-read is an ASan report. Every parser
 * must fill its answer and never crash; a few results are checked against
 * the header's promises (counts within their arrays, strings terminated).
 */
#include "amazon.h"
#include "fuzz_common.h"
#include "gateway_shopify.h"
#include "shopify.h"
#include "square.h"

enum parser {
	PARSER_SHOPIFY_SET,
	PARSER_SHOPIFY_READ,
	PARSER_SQUARE_BATCH,
	PARSER_SQUARE_READ,
	PARSER_SQUARE_QUANTITY,
	PARSER_AMAZON_TOKEN,
	PARSER_AMAZON_PATCH,
	PARSER_AMAZON_LISTING,
	PARSER_AMAZON_DOCUMENT,
	PARSER_AMAZON_CREATE_FEED,
	PARSER_AMAZON_FEED,
	PARSER_AMAZON_REPORT,
	PARSER_AMAZON_RATE,
	PARSER_WEBHOOK_CREATE,
	PARSER_WEBHOOK_CANCELLED,
	PARSER_WEBHOOK_REFUND,
	PARSER_WEBHOOK_OTHER,
	PARSER_WEBHOOK_VERIFY,
	PARSER_COUNT,
};

static const long statuses[] = {200, 201, 202, 204, 400, 401, 403, 404,
                                409, 422, 429, 500, 502, 503, 0,   302};
#define STATUSES (sizeof(statuses) / sizeof(statuses[0]))

#define SKU         "SKU-1"
#define MARKETPLACE "ATVPDKIKX0DER"
#define FEED        "5001"

static void check_text(const char *text, size_t size, const char *what)
{
	FUZZ_CHECK(memchr(text, '\0', size) != NULL, "%s is not terminated", what);
}

static void run_shopify(enum parser parser, long status, const char *body, size_t size,
                        uint32_t count)
{
	static struct shopify_answer answer;
	static struct shopify_level levels[SHOPIFY_READ_MAX];
	if (count > SHOPIFY_QUANTITIES_MAX)
		count = SHOPIFY_QUANTITIES_MAX;
	if (parser == PARSER_SHOPIFY_SET)
		shopify_set_answer(status, body, size, count, &answer);
	else
		shopify_read_answer(status, body, size, count, levels, &answer);
	FUZZ_CHECK(answer.error_count <= SHOPIFY_QUANTITIES_MAX, "%u errors", answer.error_count);
	check_text(answer.message, sizeof(answer.message), "message");
	for (uint32_t i = 0; i < answer.error_count; i++) {
		FUZZ_CHECK(answer.errors[i].index >= -1 && answer.errors[i].index < (int32_t)count,
		           "error %u names quantity %d of %u", i, answer.errors[i].index, count);
		check_text(answer.errors[i].code_text, sizeof(answer.errors[i].code_text), "code");
		check_text(answer.errors[i].message, sizeof(answer.errors[i].message), "message");
	}
}

static void run_square(enum parser parser, long status, const char *body, size_t size,
                       uint32_t count)
{
	static struct square_answer answer;
	static char objects[SQUARE_CHANGES_MAX][16];
	static struct square_count_change changes[SQUARE_CHANGES_MAX];
	if (count > SQUARE_CHANGES_MAX)
		count = SQUARE_CHANGES_MAX;
	for (uint32_t i = 0; i < count; i++) {
		snprintf(objects[i], sizeof(objects[i]), "VAR%u", i + 1);
		changes[i] = (struct square_count_change){
		        .catalog_object_id = objects[i],
		        .location_id = "LOC1",
		        .quantity = (int64_t)i,
		        .occurred_at_ns = FUZZ_T0,
		};
	}
	struct square_batch batch = {.idempotency_key = "k", .changes = changes, .count = count};
	if (parser == PARSER_SQUARE_BATCH)
		square_batch_answer(status, body, size, &batch, &answer);
	else
		square_read_answer(status, body, size, &answer);
	FUZZ_CHECK(answer.error_count <= SQUARE_ERRORS_MAX, "%u errors", answer.error_count);
	FUZZ_CHECK(answer.count_count <= SQUARE_COUNTS_MAX, "%u counts", answer.count_count);
	check_text(answer.cursor, sizeof(answer.cursor), "cursor");
	check_text(answer.message, sizeof(answer.message), "message");
	for (uint32_t i = 0; i < answer.error_count; i++) {
		const struct square_error *error = &answer.errors[i];
		if (parser == PARSER_SQUARE_BATCH)
			FUZZ_CHECK(error->index >= -1 && error->index < (int32_t)count,
			           "error %u names change %d of %u", i, error->index, count);
		check_text(error->category, sizeof(error->category), "category");
		check_text(error->code_text, sizeof(error->code_text), "code");
		check_text(error->field, sizeof(error->field), "field");
		check_text(error->detail, sizeof(error->detail), "detail");
	}
	for (uint32_t i = 0; i < answer.count_count; i++) {
		const struct square_count *found = &answer.counts[i];
		check_text(found->catalog_object_id, sizeof(found->catalog_object_id), "object");
		check_text(found->location_id, sizeof(found->location_id), "location");
		check_text(found->quantity, sizeof(found->quantity), "quantity");
		int64_t units;
		(void)square_quantity_parse(found->quantity, (uint8_t)(i % 10), &units);
	}
	(void)square_count_find(&answer, "VAR1", "LOC1");
}

static void check_issue(const struct amazon_issue *issue)
{
	check_text(issue->code, sizeof(issue->code), "code");
	check_text(issue->severity, sizeof(issue->severity), "severity");
	check_text(issue->message, sizeof(issue->message), "message");
}

static void run_amazon(enum parser parser, long status, const char *body, size_t size,
                       uint32_t count)
{
	static struct amazon_token token;
	static struct amazon_answer answer;
	static struct amazon_listing listing;
	static struct amazon_document document;
	static struct amazon_feed feed;
	static struct amazon_report report;
	static struct amazon_report_message messages[256];
	switch (parser) {
	case PARSER_AMAZON_TOKEN:
		amazon_token_answer(status, body, size, &token);
		check_text(token.access_token, sizeof(token.access_token), "token");
		check_issue(&token.error);
		if (token.outcome == AMAZON_OK)
			FUZZ_CHECK(token.expires_in_s >= 1 && token.access_token[0] != '\0',
			           "token for %llu s", (unsigned long long)token.expires_in_s);
		break;
	case PARSER_AMAZON_PATCH:
		amazon_patch_answer(status, body, size, SKU, &answer);
		check_text(answer.status, sizeof(answer.status), "status");
		check_text(answer.submission_id, sizeof(answer.submission_id), "submission");
		for (uint32_t i = 0; i < answer.issue_count && i < AMAZON_ISSUES_MAX; i++)
			check_issue(&answer.issues[i]);
		check_issue(&answer.error);
		break;
	case PARSER_AMAZON_LISTING:
		amazon_listing_answer(status, body, size, SKU, MARKETPLACE, &listing);
		check_text(listing.last_updated, sizeof(listing.last_updated), "last updated");
		check_issue(&listing.issue);
		check_issue(&listing.error);
		if (listing.quantity_known)
			FUZZ_CHECK(listing.quantity >= 0, "quantity %lld",
			           (long long)listing.quantity);
		break;
	case PARSER_AMAZON_DOCUMENT:
		amazon_document_answer(status, body, size, &document);
		check_text(document.document_id, sizeof(document.document_id), "document");
		check_text(document.url, sizeof(document.url), "url");
		if (document.outcome == AMAZON_OK)
			FUZZ_CHECK(strncmp(document.url, "http://", 7) == 0 ||
			                   strncmp(document.url, "https://", 8) == 0,
			           "url %s", document.url);
		break;
	case PARSER_AMAZON_CREATE_FEED:
	case PARSER_AMAZON_FEED:
		if (parser == PARSER_AMAZON_FEED)
			amazon_feed_answer(status, body, size, FEED, &feed);
		else
			amazon_create_feed_answer(status, body, size, &feed);
		check_text(feed.feed_id, sizeof(feed.feed_id), "feed");
		check_text(feed.result_document_id, sizeof(feed.result_document_id), "result");
		check_issue(&feed.error);
		break;
	case PARSER_AMAZON_REPORT:
		amazon_report_read(body, size, FEED, count, messages, &report);
		for (uint32_t i = 0; i < count; i++)
			check_text(messages[i].message, sizeof(messages[i].message), "message");
		check_issue(&report.first);
		break;
	default:
		break;
	}
}

static void run_webhook(enum parser parser, const char *body, size_t size, uint32_t max)
{
	static struct gateway_action actions[256];
	static const char *const topics[] = {
	        [PARSER_WEBHOOK_CREATE] = "orders/create",
	        [PARSER_WEBHOOK_CANCELLED] = "orders/cancelled",
	        [PARSER_WEBHOOK_REFUND] = "refunds/create",
	        [PARSER_WEBHOOK_OTHER] = "orders/updated",
	};
	char error[160];
	error[0] = '\0';
	int count = shopify_webhook_actions(topics[parser], body, size, actions, max, error,
	                                    sizeof(error));
	FUZZ_CHECK(count >= -1 && count <= (int)max, "%d actions, room for %u", count, max);
	if (count < 0)
		check_text(error, sizeof(error), "error");
	for (int i = 0; i < count; i++) {
		const struct gateway_action *action = &actions[i];
		check_text(action->sku, sizeof(action->sku), "sku");
		check_text(action->channel_location, sizeof(action->channel_location), "location");
		check_text(action->order, sizeof(action->order), "order");
		check_text(action->line, sizeof(action->line), "line");
		check_text(action->refund, sizeof(action->refund), "refund");
		check_text(action->refund_line, sizeof(action->refund_line), "refund line");
	}
}

/* NUL-terminated copy of body (for the parsers of text, not JSON). */
static void run_text(enum parser parser, const char *body, size_t size, uint32_t count)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, body, size);
	text[size] = '\0';
	if (parser == PARSER_SQUARE_QUANTITY) {
		int64_t units;
		(void)square_quantity_parse(text, (uint8_t)(count % 12), &units);
	} else if (parser == PARSER_AMAZON_RATE) {
		double rate = amazon_rate_limit_parse(text);
		FUZZ_CHECK(rate == -1 || rate > 0, "rate %g", rate);
	} else {
		/* The signature header is the text up to the first newline. */
		char *newline = strchr(text, '\n');
		const char *payload = newline != NULL ? newline + 1 : "";
		if (newline != NULL)
			*newline = '\0';
		(void)shopify_webhook_verify("hush-secret", payload, strlen(payload), text);
	}
	free(text);
}

/* ---- Seeds ---------------------------------------------------------------- */

struct seed {
	const char *name;
	enum parser parser;
	long status;
	uint8_t count;
	const char *body;
};

static const struct seed seeds[] = {
        {"shopify-set-accepted", PARSER_SHOPIFY_SET, 200, 1,
         "{\"data\":{\"inventorySetQuantities\":{\"inventoryAdjustmentGroup\":{\"id\":"
         "\"gid://shopify/InventoryAdjustmentGroup/1\"},\"userErrors\":[]}},\"extensions\":{"
         "\"cost\":{\"requestedQueryCost\":10,\"actualQueryCost\":10,\"throttleStatus\":{"
         "\"maximumAvailable\":2000.0,\"currentlyAvailable\":1990,\"restoreRate\":100.0}}}}"},
        {"shopify-set-throttled", PARSER_SHOPIFY_SET, 200, 2,
         "{\"errors\":[{\"message\":\"Throttled\",\"extensions\":{\"code\":\"THROTTLED\"}}],"
         "\"extensions\":{\"cost\":{\"requestedQueryCost\":10,\"actualQueryCost\":null,"
         "\"throttleStatus\":{\"maximumAvailable\":2000.0,\"currentlyAvailable\":5,"
         "\"restoreRate\":100.0}}}}"},
        {"shopify-set-user-errors", PARSER_SHOPIFY_SET, 200, 3,
         "{\"data\":{\"inventorySetQuantities\":{\"userErrors\":[{\"code\":"
         "\"INVALID_LOCATION\",\"field\":[\"input\",\"quantities\",\"2\"],\"message\":\"x\"},"
         "{\"code\":\"CHANGE_FROM_QUANTITY_STALE\",\"field\":[\"input\",\"quantities\",\"0\","
         "\"changeFromQuantity\"],\"message\":\"stale\"}]}}}"},
        {"shopify-set-auth", PARSER_SHOPIFY_SET, 401, 1,
         "{\"errors\":\"[API] Invalid API key or access token\"}"},
        {"shopify-read", PARSER_SHOPIFY_READ, 200, 3,
         "{\"data\":{\"nodes\":[{\"id\":\"gid://shopify/InventoryItem/1\",\"inventoryLevel\":"
         "{\"quantities\":[{\"name\":\"available\",\"quantity\":12}]}},{\"id\":\"gid://"
         "shopify/InventoryItem/2\",\"inventoryLevel\":null},null]}}"},
        {"square-batch-accepted", PARSER_SQUARE_BATCH, 200, 2,
         "{\"counts\":[{\"catalog_object_id\":\"VAR1\",\"catalog_object_type\":"
         "\"ITEM_VARIATION\",\"state\":\"IN_STOCK\",\"location_id\":\"LOC1\",\"quantity\":"
         "\"4\",\"calculated_at\":\"2025-08-20T14:26:41.000Z\"},{\"catalog_object_id\":"
         "\"VAR1\",\"state\":\"SOLD\",\"location_id\":\"LOC1\",\"quantity\":\"1\"}],"
         "\"changes\":[]}"},
        {"square-batch-errors", PARSER_SQUARE_BATCH, 400, 8,
         "{\"errors\":[{\"category\":\"INVALID_REQUEST_ERROR\",\"code\":\"NOT_FOUND\","
         "\"detail\":\"Item variation with catalog object ID `VAR2` not found.\",\"field\":"
         "\"changes[1].physical_count.catalog_object_id\"},{\"category\":"
         "\"INVALID_REQUEST_ERROR\",\"code\":\"INVALID_VALUE\",\"detail\":\"Invalid object "
         "`VAR1`.\",\"field\":\"catalog_object_id\"},{\"category\":\"INVALID_REQUEST_ERROR\","
         "\"code\":\"INVALID_TIME\",\"field\":\"changes[7].physical_count.occurred_at\"}]}"},
        {"square-rate-limited", PARSER_SQUARE_BATCH, 429, 1,
         "{\"errors\":[{\"category\":\"RATE_LIMIT_ERROR\",\"code\":\"RATE_LIMITED\"}]}"},
        {"square-read", PARSER_SQUARE_READ, 200, 1,
         "{\"counts\":[{\"catalog_object_id\":\"VAR1\",\"state\":\"IN_STOCK\","
         "\"location_id\":\"LOC1\",\"quantity\":\"12.50000\"}],\"cursor\":\"next-page\"}"},
        {"square-quantity", PARSER_SQUARE_QUANTITY, 200, 3, "-12.00001"},
        {"amazon-token", PARSER_AMAZON_TOKEN, 200, 1,
         "{\"access_token\":\"Atza|abc\",\"token_type\":\"bearer\",\"expires_in\":3600}"},
        {"amazon-token-refused", PARSER_AMAZON_TOKEN, 400, 1,
         "{\"error\":\"invalid_grant\",\"error_description\":\"bad\"}"},
        {"amazon-patch", PARSER_AMAZON_PATCH, 200, 1,
         "{\"sku\":\"SKU-1\",\"status\":\"INVALID\",\"submissionId\":\"f2\",\"issues\":[{"
         "\"code\":\"1\",\"severity\":\"WARNING\",\"message\":\"w\"},{\"code\":\"4000001\","
         "\"severity\":\"ERROR\",\"message\":\"e\"}]}"},
        {"amazon-patch-quota", PARSER_AMAZON_PATCH, 429, 1,
         "{\"errors\":[{\"code\":\"QuotaExceeded\",\"message\":\"q\"}]}"},
        {"amazon-listing", PARSER_AMAZON_LISTING, 200, 1,
         "{\"sku\":\"SKU-1\",\"summaries\":[{\"marketplaceId\":\"OTHER\",\"status\":[]},{"
         "\"marketplaceId\":\"ATVPDKIKX0DER\",\"productType\":\"PRODUCT\",\"status\":["
         "\"BUYABLE\",\"DISCOVERABLE\"],\"lastUpdatedDate\":\"2025-01-02T03:04:05Z\"}],"
         "\"issues\":[{\"code\":\"18027\",\"severity\":\"ERROR\",\"message\":\"s\"}],"
         "\"fulfillmentAvailability\":[{\"fulfillmentChannelCode\":\"AMAZON_NA\",\"quantity\":"
         "9},{\"fulfillmentChannelCode\":\"DEFAULT\",\"quantity\":4}]}"},
        {"amazon-document", PARSER_AMAZON_DOCUMENT, 201, 1,
         "{\"feedDocumentId\":\"d1\",\"url\":\"https://s3/x\",\"compressionAlgorithm\":"
         "\"GZIP\"}"},
        {"amazon-create-feed", PARSER_AMAZON_CREATE_FEED, 202, 1, "{\"feedId\":\"5001\"}"},
        {"amazon-feed", PARSER_AMAZON_FEED, 200, 1,
         "{\"feedId\":\"5001\",\"feedType\":\"JSON_LISTINGS_FEED\",\"processingStatus\":"
         "\"DONE\",\"resultFeedDocumentId\":\"r1\"}"},
        {"amazon-report", PARSER_AMAZON_REPORT, 200, 3,
         "{\"header\":{\"sellerId\":\"S\",\"version\":\"2.0\",\"feedId\":\"5001\"},"
         "\"issues\":[{\"messageId\":2,\"severity\":\"ERROR\",\"code\":\"100000\",\"message\":"
         "\"schema\"},{\"severity\":\"ERROR\",\"code\":\"1\",\"message\":\"feed\"}],"
         "\"summary\":{\"messagesProcessed\":3,\"messagesAccepted\":2,\"messagesInvalid\":1}}"},
        {"amazon-rate", PARSER_AMAZON_RATE, 200, 1, "0.0083"},
        {"webhook-create", PARSER_WEBHOOK_CREATE, 200, 8,
         "{\"id\":820982911946154508,\"source_name\":\"web\",\"created_at\":"
         "\"2026-11-27T09:30:00-05:00\",\"line_items\":[{\"id\":466157049,\"sku\":"
         "\"TEE-RED-M\",\"quantity\":2},{\"id\":466157051,\"sku\":\"MUG\",\"quantity\":1}]}"},
        {"webhook-create-pos", PARSER_WEBHOOK_CREATE, 200, 8,
         "{\"id\":\"77\",\"source_name\":\"pos\",\"location_id\":655441491,\"created_at\":"
         "\"2026-11-27T14:30:00.250Z\",\"line_items\":[{\"id\":1,\"sku\":\"MUG\","
         "\"quantity\":3}]}"},
        {"webhook-cancelled", PARSER_WEBHOOK_CANCELLED, 200, 8,
         "{\"id\":5,\"line_items\":[{\"id\":9,\"sku\":\"MUG\",\"quantity\":4}]}"},
        {"webhook-refund", PARSER_WEBHOOK_REFUND, 200, 8,
         "{\"id\":509562969,\"order_id\":5,\"created_at\":\"2026-11-27T10:00:00Z\","
         "\"refund_line_items\":[{\"id\":1,\"line_item_id\":9,\"quantity\":1,\"restock_type\":"
         "\"return\",\"location_id\":655441491,\"line_item\":{\"sku\":\"MUG\"}},{\"id\":2,"
         "\"line_item_id\":10,\"quantity\":2,\"restock_type\":\"cancel\",\"line_item\":{"
         "\"sku\":\"TEE\"}},{\"id\":3,\"line_item_id\":11,\"quantity\":1,\"restock_type\":"
         "\"no_restock\",\"line_item\":{\"sku\":\"CAP\"}}]}"},
        {"webhook-verify", PARSER_WEBHOOK_VERIFY, 200, 1, "3q2+7w==\n{\"id\":1}"},
};

static void write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t size = strlen(seeds[i].body);
		uint8_t *bytes = malloc(3 + size);
		if (bytes == NULL)
			abort();
		bytes[0] = (uint8_t)seeds[i].parser;
		bytes[1] = 0;
		for (size_t status = 0; status < STATUSES; status++) {
			if (statuses[status] == seeds[i].status)
				bytes[1] = (uint8_t)status;
		}
		bytes[2] = (uint8_t)(seeds[i].count - 1);
		memcpy(bytes + 3, seeds[i].body, size);
		fuzz_seed_write(dir, seeds[i].name, bytes, 3 + size);
		free(bytes);
	}
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
	if (size < 3)
		return 0;
	enum parser parser = (enum parser)(data[0] % PARSER_COUNT);
	/* Statuses beyond the table: 100..739, odd ones included. */
	long status = data[1] < STATUSES ? statuses[data[1]] : 100 + (long)data[1] * 5 / 2;
	uint32_t count = (uint32_t)data[2] + 1;
	size -= 3;
	char *body = malloc(size > 0 ? size : 1);
	if (body == NULL)
		abort();
	memcpy(body, data + 3, size);
	switch (parser) {
	case PARSER_SHOPIFY_SET:
	case PARSER_SHOPIFY_READ:
		run_shopify(parser, status, body, size, count);
		break;
	case PARSER_SQUARE_BATCH:
	case PARSER_SQUARE_READ:
		run_square(parser, status, body, size, count);
		break;
	case PARSER_SQUARE_QUANTITY:
	case PARSER_AMAZON_RATE:
	case PARSER_WEBHOOK_VERIFY:
		run_text(parser, body, size, count);
		break;
	case PARSER_WEBHOOK_CREATE:
	case PARSER_WEBHOOK_CANCELLED:
	case PARSER_WEBHOOK_REFUND:
	case PARSER_WEBHOOK_OTHER:
		run_webhook(parser, body, size, count);
		break;
	default:
		run_amazon(parser, status, body, size, count);
		break;
	}
	free(body);
	return 0;
}
