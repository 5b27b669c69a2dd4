/*
 * test_push_amazon.c — the Selling Partner API's bodies and answers
 * (channels/amazon.c): the LWA refresh, the listing URL, the patch body and
 * its answers, getListingsItem, the feed documents and calls, the
 * processing report and x-amzn-RateLimit-Limit; malformed answers included.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "amazon.h"

#define ANSWER(text) text, sizeof(text) - 1

static json_t *loads(char *text)
{
	cr_assert_not_null(text);
	json_t *root = json_loads(text, 0, NULL);
	free(text);
	cr_assert_not_null(root);
	return root;
}

Test(amazon, token_body_is_form_encoded)
{
	char error[128];
	char *body =
	        amazon_token_body("amzn1.client", "se cr&et", "Atzr|IwE=", error, sizeof(error));
	cr_assert_not_null(body, "%s", error);
	cr_assert_str_eq(body, "grant_type=refresh_token&refresh_token=Atzr%7CIwE%3D"
	                       "&client_id=amzn1.client&client_secret=se%20cr%26et");
	free(body);
	cr_assert_null(amazon_token_body("id", "", "token", error, sizeof(error)));
}

Test(amazon, token_answers)
{
	struct amazon_token token;
	amazon_token_answer(200,
	                    ANSWER("{\"access_token\":\"Atza|abc\",\"token_type\":\"bearer\","
	                           "\"expires_in\":3600,\"refresh_token\":\"Atzr|x\"}"),
	                    &token);
	cr_assert_eq(token.outcome, AMAZON_OK);
	cr_assert_str_eq(token.access_token, "Atza|abc");
	cr_assert_eq(token.expires_in_s, 3600);
	amazon_token_answer(
	        400, ANSWER("{\"error\":\"invalid_grant\",\"error_description\":\"bad\"}"), &token);
	cr_assert_eq(token.outcome, AMAZON_AUTH);
	cr_assert_str_eq(token.error.code, "invalid_grant");
	amazon_token_answer(401, ANSWER("{\"error\":\"invalid_client\"}"), &token);
	cr_assert_eq(token.outcome, AMAZON_AUTH);
	amazon_token_answer(400, ANSWER("{\"error\":\"invalid_request\"}"), &token);
	cr_assert_eq(token.outcome, AMAZON_REJECTED);
	amazon_token_answer(503, ANSWER(""), &token);
	cr_assert_eq(token.outcome, AMAZON_SERVER_ERROR);
	/* No expiry, a zero expiry, a token with a space or a newline, not JSON. */
	const char *bad[] = {
	        "{\"access_token\":\"Atza|abc\"}",
	        "{\"access_token\":\"Atza|abc\",\"expires_in\":0}",
	        "{\"access_token\":\"Atza abc\",\"expires_in\":60}",
	        "{\"access_token\":\"Atza|\\nabc\",\"expires_in\":60}",
	        "{\"access_token\":\"\",\"expires_in\":60}",
	        "{\"access_token\":\"Atza|abc\",\"expires_in\":\"60\"}",
	        "{\"access_token\":\"Atza|abc\",\"expires_in\":60",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		amazon_token_answer(200, bad[i], strlen(bad[i]), &token);
		cr_assert_eq(token.outcome, AMAZON_MALFORMED, "%s", bad[i]);
	}
}

Test(amazon, listing_url_encodes_the_seller_and_the_sku)
{
	char url[256];
	cr_assert_eq(
	        amazon_listing_url(url, sizeof(url), "http://h", "A1", "MUG/BLUE 2%", "ATVP", NULL),
	        0);
	cr_assert_str_eq(
	        url, "http://h/listings/2021-08-01/items/A1/MUG%2FBLUE%202%25?marketplaceIds=ATVP");
	cr_assert_eq(amazon_listing_url(url, sizeof(url), "http://h", "A1", "S-1.x_~", "ATVP",
	                                "includedData=summaries,issues"),
	             0);
	cr_assert_str_eq(url, "http://h/listings/2021-08-01/items/A1/S-1.x_~?marketplaceIds=ATVP"
	                      "&includedData=summaries,issues");
	cr_assert_eq(
	        amazon_listing_url(url, 40, "http://h", "A1", "LONG-SKU-0123456789", "ATVP", NULL),
	        -1);
	cr_assert_eq(amazon_listing_url(url, sizeof(url), "http://h", "A1", "", "ATVP", NULL), -1);
}

Test(amazon, patch_body_merges_fulfillment_availability)
{
	char error[128];
	json_t *body = loads(amazon_patch_body("PRODUCT", 7, error, sizeof(error)));
	cr_assert_str_eq(json_string_value(json_object_get(body, "productType")), "PRODUCT");
	json_t *patch = json_array_get(json_object_get(body, "patches"), 0);
	cr_assert_eq(json_array_size(json_object_get(body, "patches")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(patch, "op")), "merge");
	cr_assert_str_eq(json_string_value(json_object_get(patch, "path")),
	                 "/attributes/fulfillment_availability");
	json_t *value = json_array_get(json_object_get(patch, "value"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(value, "fulfillment_channel_code")),
	                 "DEFAULT");
	cr_assert_eq(json_integer_value(json_object_get(value, "quantity")), 7);
	json_decref(body);
	body = loads(amazon_patch_body("PRODUCT", -3, error, sizeof(error)));
	value = json_array_get(
	        json_object_get(json_array_get(json_object_get(body, "patches"), 0), "value"), 0);
	cr_assert_eq(json_integer_value(json_object_get(value, "quantity")), 0, "never below 0");
	json_decref(body);
	cr_assert_null(amazon_patch_body("", 1, error, sizeof(error)));
	cr_assert_null(amazon_patch_body("PRODUCT", (int64_t)INT32_MAX + 1, error, sizeof(error)));
}

Test(amazon, patch_answers)
{
	struct amazon_answer answer;
	amazon_patch_answer(
	        200,
	        ANSWER("{\"sku\":\"S1\",\"status\":\"ACCEPTED\",\"submissionId\":\"f1\","
	               "\"issues\":[]}"),
	        "S1", &answer);
	cr_assert_eq(answer.outcome, AMAZON_OK);
	cr_assert_str_eq(answer.submission_id, "f1");
	amazon_patch_answer(
	        200,
	        ANSWER("{\"sku\":\"S1\",\"status\":\"INVALID\",\"submissionId\":\"f2\","
	               "\"issues\":[{\"code\":\"1\",\"severity\":\"WARNING\",\"message\":"
	               "\"w\"},{\"code\":\"4000001\",\"severity\":\"ERROR\",\"message\":"
	               "\"bad quantity\",\"categories\":[]}]}"),
	        "S1", &answer);
	cr_assert_eq(answer.outcome, AMAZON_INVALID);
	cr_assert_eq(answer.issue_count, 2);
	cr_assert_eq(answer.error_issues, 1);
	cr_assert_str_eq(answer.issues[1].message, "bad quantity");
	/* Another SKU's answer, no submissionId, an unknown status: malformed. */
	const char *bad[] = {
	        "{\"sku\":\"S2\",\"status\":\"ACCEPTED\",\"submissionId\":\"f\"}",
	        "{\"sku\":\"S1\",\"status\":\"ACCEPTED\"}",
	        "{\"sku\":\"S1\",\"status\":\"MAYBE\",\"submissionId\":\"f\"}",
	        "{\"sku\":\"S1\",\"status\":\"ACCEPTED\",\"submissionId\":\"f\",\"issues\":{}}",
	        "{\"sku\":\"S1\",\"sku\":\"S1\",\"status\":\"ACCEPTED\",\"submissionId\":\"f\"}",
	        "[]",
	        "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		amazon_patch_answer(200, bad[i], strlen(bad[i]), "S1", &answer);
		cr_assert_eq(answer.outcome, AMAZON_MALFORMED, "%s", bad[i]);
	}
	static const char quota[] = "{\"errors\":[{\"code\":\"QuotaExceeded\",\"message\":\"q\"}]}";
	amazon_patch_answer(429, ANSWER(quota), "S1", &answer);
	cr_assert_eq(answer.outcome, AMAZON_THROTTLED);
	cr_assert_str_eq(answer.error.code, "QuotaExceeded");
	amazon_patch_answer(
	        403,
	        ANSWER("{\"errors\":[{\"code\":\"Unauthorized\",\"message\":\"Access to "
	               "requested resource is denied.\",\"details\":\"\"}]}"),
	        "S1", &answer);
	cr_assert_eq(answer.outcome, AMAZON_AUTH);
	amazon_patch_answer(400,
	                    ANSWER("{\"errors\":[{\"code\":\"InvalidInput\",\"message\":\"m\"}]}"),
	                    "S1", &answer);
	cr_assert_eq(answer.outcome, AMAZON_REJECTED);
	amazon_patch_answer(400, ANSWER("<html>"), "S1", &answer);
	cr_assert_eq(answer.outcome, AMAZON_MALFORMED);
	amazon_patch_answer(503, ANSWER("<html>"), "S1", &answer);
	cr_assert_eq(answer.outcome, AMAZON_SERVER_ERROR);
}

Test(amazon, listing_answers)
{
	static const char buyable[] =
	        "{\"sku\":\"S1\",\"summaries\":[{\"marketplaceId\":\"OTHER\",\"status\":[]},"
	        "{\"marketplaceId\":\"ATVP\",\"productType\":\"PRODUCT\",\"status\":[\"BUYABLE\","
	        "\"DISCOVERABLE\"],\"lastUpdatedDate\":\"2025-01-02T03:04:05Z\"}],\"issues\":[],"
	        "\"fulfillmentAvailability\":[{\"fulfillmentChannelCode\":\"AMAZON_NA\","
	        "\"quantity\":9},{\"fulfillmentChannelCode\":\"DEFAULT\",\"quantity\":4}]}";
	struct amazon_listing listing;
	amazon_listing_answer(200, ANSWER(buyable), "S1", "ATVP", &listing);
	cr_assert_eq(listing.outcome, AMAZON_OK);
	cr_assert(listing.summary && listing.buyable && listing.discoverable);
	cr_assert(listing.quantity_known);
	cr_assert_eq(listing.quantity, 4);
	cr_assert_str_eq(listing.last_updated, "2025-01-02T03:04:05Z");
	amazon_listing_answer(200, ANSWER(buyable), "S1", "OTHER", &listing);
	cr_assert(listing.summary && !listing.buyable);
	static const char inactive[] =
	        "{\"sku\":\"S1\",\"summaries\":[{\"marketplaceId\":\"ATVP\",\"status\":["
	        "\"DISCOVERABLE\"]}],\"issues\":[{\"code\":\"1\",\"severity\":\"INFO\",\"message\":"
	        "\"i\"},{\"code\":\"18027\",\"severity\":\"ERROR\",\"message\":\"suppressed\"}]}";
	amazon_listing_answer(200, ANSWER(inactive), "S1", "ATVP", &listing);
	cr_assert_eq(listing.outcome, AMAZON_OK);
	cr_assert(!listing.buyable && !listing.quantity_known);
	cr_assert_str_eq(listing.issue.code, "18027");
	amazon_listing_answer(404,
	                      ANSWER("{\"errors\":[{\"code\":\"NOT_FOUND\",\"message\":\"m\"}]}"),
	                      "S1", "ATVP", &listing);
	cr_assert_eq(listing.outcome, AMAZON_NOT_FOUND);
	amazon_listing_answer(200, ANSWER("{\"sku\":\"S2\"}"), "S1", "ATVP", &listing);
	cr_assert_eq(listing.outcome, AMAZON_MALFORMED);
	amazon_listing_answer(200, ANSWER("{\"sku\":\"S1\",\"summaries\":{}}"), "S1", "ATVP",
	                      &listing);
	cr_assert_eq(listing.outcome, AMAZON_MALFORMED);
	/* A negative quantity is not a quantity. */
	amazon_listing_answer(200,
	                      ANSWER("{\"sku\":\"S1\",\"fulfillmentAvailability\":[{"
	                             "\"fulfillmentChannelCode\":\"DEFAULT\",\"quantity\":-1}]}"),
	                      "S1", "ATVP", &listing);
	cr_assert(!listing.quantity_known);
}

Test(amazon, feed_document_and_calls)
{
	char error[128];
	struct amazon_feed_message messages[] = {{"A", 3}, {"B/2", -1}};
	json_t *document =
	        loads(amazon_feed_document("SELLER", "PRODUCT", messages, 2, error, sizeof(error)));
	json_t *header = json_object_get(document, "header");
	cr_assert_str_eq(json_string_value(json_object_get(header, "sellerId")), "SELLER");
	cr_assert_str_eq(json_string_value(json_object_get(header, "version")), "2.0");
	json_t *second = json_array_get(json_object_get(document, "messages"), 1);
	cr_assert_eq(json_integer_value(json_object_get(second, "messageId")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(second, "sku")), "B/2");
	cr_assert_str_eq(json_string_value(json_object_get(second, "operationType")), "PATCH");
	json_t *value = json_array_get(
	        json_object_get(json_array_get(json_object_get(second, "patches"), 0), "value"), 0);
	cr_assert_eq(json_integer_value(json_object_get(value, "quantity")), 0);
	json_decref(document);
	cr_assert_null(
	        amazon_feed_document("SELLER", "PRODUCT", messages, 0, error, sizeof(error)));
	json_t *create = loads(amazon_create_feed_body("doc-1", "ATVP", error, sizeof(error)));
	cr_assert_str_eq(json_string_value(json_object_get(create, "feedType")),
	                 "JSON_LISTINGS_FEED");
	cr_assert_str_eq(
	        json_string_value(json_array_get(json_object_get(create, "marketplaceIds"), 0)),
	        "ATVP");
	json_decref(create);

	struct amazon_document doc;
	amazon_document_answer(201, ANSWER("{\"feedDocumentId\":\"d1\",\"url\":\"https://s3/x\"}"),
	                       &doc);
	cr_assert_eq(doc.outcome, AMAZON_OK);
	cr_assert_str_eq(doc.url, "https://s3/x");
	amazon_document_answer(201, ANSWER("{\"feedDocumentId\":\"d1\",\"url\":\"file:///etc\"}"),
	                       &doc);
	cr_assert_eq(doc.outcome, AMAZON_MALFORMED, "only http and https");
	amazon_document_answer(200,
	                       ANSWER("{\"feedDocumentId\":\"d1\",\"url\":\"https://s3/x\","
	                              "\"compressionAlgorithm\":\"GZIP\"}"),
	                       &doc);
	cr_assert(doc.outcome == AMAZON_OK && doc.gzip);

	struct amazon_feed feed;
	amazon_create_feed_answer(202, ANSWER("{\"feedId\":\"5001\"}"), &feed);
	cr_assert_eq(feed.outcome, AMAZON_OK);
	cr_assert_str_eq(feed.feed_id, "5001");
	amazon_create_feed_answer(200, ANSWER("{\"feedId\":\"5001\"}"), &feed);
	cr_assert_eq(feed.outcome, AMAZON_MALFORMED, "createFeed answers 202");
	amazon_feed_answer(200,
	                   ANSWER("{\"feedId\":\"5001\",\"feedType\":\"JSON_LISTINGS_FEED\","
	                          "\"createdTime\":\"t\",\"processingStatus\":\"IN_PROGRESS\"}"),
	                   "5001", &feed);
	cr_assert_eq(feed.status, AMAZON_FEED_IN_PROGRESS);
	amazon_feed_answer(200,
	                   ANSWER("{\"feedId\":\"5001\",\"processingStatus\":\"DONE\","
	                          "\"resultFeedDocumentId\":\"r1\"}"),
	                   "5001", &feed);
	cr_assert(feed.outcome == AMAZON_OK && feed.status == AMAZON_FEED_DONE);
	cr_assert_str_eq(feed.result_document_id, "r1");
	amazon_feed_answer(200, ANSWER("{\"feedId\":\"5001\",\"processingStatus\":\"DONE\"}"),
	                   "5001", &feed);
	cr_assert_eq(feed.outcome, AMAZON_MALFORMED, "DONE without a result");
	amazon_feed_answer(200, ANSWER("{\"feedId\":\"5002\",\"processingStatus\":\"FATAL\"}"),
	                   "5001", &feed);
	cr_assert_eq(feed.outcome, AMAZON_MALFORMED, "another feed");
	amazon_feed_answer(200, ANSWER("{\"feedId\":\"5001\",\"processingStatus\":\"WAITING\"}"),
	                   "5001", &feed);
	cr_assert_eq(feed.outcome, AMAZON_MALFORMED);
}

Test(amazon, processing_report)
{
	static const char report_text[] =
	        "{\"header\":{\"sellerId\":\"S\",\"version\":\"2.0\",\"feedId\":\"5001\"},"
	        "\"issues\":[{\"messageId\":2,\"sku\":\"B\",\"code\":\"4000001\",\"severity\":"
	        "\"ERROR\",\"message\":\"bad\"},{\"messageId\":1,\"severity\":\"WARNING\","
	        "\"message\":\"w\"},{\"messageId\":9,\"severity\":\"ERROR\",\"message\":\"x\"}],"
	        "\"summary\":{\"errors\":1,\"warnings\":1,\"messagesProcessed\":3,"
	        "\"messagesAccepted\":2,\"messagesInvalid\":1}}";
	struct amazon_report_message messages[3];
	struct amazon_report report;
	amazon_report_read(ANSWER(report_text), "5001", 3, messages, &report);
	cr_assert_eq(report.outcome, AMAZON_OK);
	cr_assert_eq(report.processed, 3);
	cr_assert(!messages[0].invalid && messages[1].invalid && !messages[2].invalid);
	cr_assert_str_eq(messages[1].message, "bad");
	cr_assert(!report.feed_error);
	amazon_report_read(ANSWER(report_text), "5002", 3, messages, &report);
	cr_assert_eq(report.outcome, AMAZON_MALFORMED, "another feed's report");
	static const char feed_error[] =
	        "{\"header\":{\"sellerId\":\"S\",\"version\":\"2.0\",\"feedId\":\"5001\"},"
	        "\"issues\":[{\"severity\":\"ERROR\",\"code\":\"100000\",\"message\":\"schema\"}],"
	        "\"summary\":{\"errors\":1,\"warnings\":0,\"messagesProcessed\":0,"
	        "\"messagesAccepted\":0,\"messagesInvalid\":0}}";
	amazon_report_read(ANSWER(feed_error), "5001", 3, messages, &report);
	cr_assert(report.outcome == AMAZON_OK && report.feed_error);
	cr_assert_str_eq(report.first.message, "schema");
	amazon_report_read(ANSWER("{\"header\":{\"feedId\":\"5001\"},\"issues\":[]}"), "5001", 3,
	                   messages, &report);
	cr_assert_eq(report.outcome, AMAZON_MALFORMED, "no summary");
}

Test(amazon, rate_limit_header)
{
	cr_assert_float_eq(amazon_rate_limit_parse("5.0"), 5.0, 1e-12);
	cr_assert_float_eq(amazon_rate_limit_parse("0.0083"), 0.0083, 1e-12);
	cr_assert_lt(amazon_rate_limit_parse(""), 0);
	cr_assert_lt(amazon_rate_limit_parse("0"), 0);
	cr_assert_lt(amazon_rate_limit_parse("-1"), 0);
	cr_assert_lt(amazon_rate_limit_parse("5/s"), 0);
	cr_assert_lt(amazon_rate_limit_parse("1e3"), 0);
	cr_assert_lt(amazon_rate_limit_parse(NULL), 0);
}
