/*
 * amazon.h — Amazon's Selling Partner API calls as bytes: the Login with
 * Amazon token refresh, the Listings Items 2021-08-01 patch and get of one
 * SKU, the JSON_LISTINGS_FEED documents and the Feeds 2021-06-30 calls
 * around them, and the reading of every answer into what a push worker
 * must do next (shared/channel-schemas/amazon-sp-api/).
 *
 * Owns:
 *   - the token refresh: `POST /auth/o2/token`, a form body
 *     grant_type=refresh_token&refresh_token=..&client_id=..&client_secret=..
 *     (each value percent-encoded), answered {access_token, token_type,
 *     expires_in} or {error, error_description};
 *   - the listing path /listings/2021-08-01/items/{sellerId}/{sku}?
 *     marketplaceIds=M, seller and SKU percent-encoded (RFC 3986 unreserved
 *     characters kept), so a SKU with '/', ' ' or '%' names one listing;
 *   - the patch body (ListingsItemPatchRequest: productType and patches
 *     both required):
 *       {"productType":P,"patches":[{"op":"merge",
 *        "path":"/attributes/fulfillment_availability",
 *        "value":[{"fulfillment_channel_code":"DEFAULT","quantity":N}]}]}
 *     with N whole units, 0 for anything below (the API's minimum is 0);
 *   - the feed document (listings-feed-schema-v2): header {sellerId,
 *     version "2.0"}, messages [{messageId i+1, sku, operationType PATCH,
 *     productType, patches}] with the same patch, at most 25,000 messages;
 *   - the classification of an answer: OK (a 2xx of the expected shape),
 *     INVALID (a patch answered status INVALID: nothing will be applied,
 *     issues[] say why), THROTTLED (429), AUTH (403, or a refused token),
 *     NOT_FOUND (404), REJECTED (another 4xx: the request is wrong),
 *     SERVER_ERROR (5xx), MALFORMED (anything else, an answer for another
 *     SKU included);
 *   - x-amzn-RateLimit-Limit, the rate in requests per second.
 *
 * No I/O: bodies in, bodies out. An answer is untrusted input: anything
 * unexpected is MALFORMED, never a crash; strings are copied bounded.
 */
#ifndef SKULD_CHANNELS_AMAZON_H
#define SKULD_CHANNELS_AMAZON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AMAZON_TOKEN_SIZE        2048u  /* an access token with its NUL */
#define AMAZON_URL_SIZE          2048u  /* a presigned document URL */
#define AMAZON_ID_SIZE           128u   /* submission, feed and document ids */
#define AMAZON_MESSAGE_SIZE      160u   /* an issue's or error's words, cut */
#define AMAZON_CODE_SIZE         48u    /* an issue's or error's code */
#define AMAZON_ISSUES_MAX        16u    /* issues kept from one answer */
#define AMAZON_FEED_MESSAGES_MAX 25000u /* messages in one listings feed document */
#define AMAZON_QUANTITY_MAX      INT32_MAX
#define AMAZON_FEED_TYPE         "JSON_LISTINGS_FEED"
#define AMAZON_FEED_CONTENT_TYPE "application/json; charset=UTF-8"

enum amazon_outcome {
	AMAZON_OK = 0,
	AMAZON_INVALID,      /* patch status INVALID: not applied, see issues */
	AMAZON_THROTTLED,    /* 429 QuotaExceeded */
	AMAZON_AUTH,         /* 403, invalid_grant, invalid_client, ... */
	AMAZON_NOT_FOUND,    /* 404 */
	AMAZON_REJECTED,     /* another 4xx: the request itself is wrong */
	AMAZON_SERVER_ERROR, /* 5xx: unknown whether applied */
	AMAZON_MALFORMED,    /* not what Amazon sends */
};

const char *amazon_outcome_name(enum amazon_outcome outcome);

/* An error of an ErrorList, or the LWA error, or an issue. */
struct amazon_issue {
	char code[AMAZON_CODE_SIZE];
	char severity[16]; /* ERROR | WARNING | INFO ("" for an error) */
	char message[AMAZON_MESSAGE_SIZE];
};

/* ---- Login with Amazon ------------------------------------------------------- */

/* The form body of a refresh, malloc'd, or NULL with a reason in error
 * (an empty value, or out of memory). */
char *amazon_token_body(const char *client_id, const char *client_secret, const char *refresh_token,
                        char *error, size_t error_size);

struct amazon_token {
	enum amazon_outcome outcome;
	char access_token[AMAZON_TOKEN_SIZE];
	uint64_t expires_in_s;     /* OK: at least 1 */
	struct amazon_issue error; /* the LWA error (code = error, message = description) */
};

/* Reads a token answer. OK needs a non-empty access_token of printable
 * ASCII and expires_in from 1 to 86400*30. Always fills token. */
void amazon_token_answer(long http_status, const char *body, size_t size,
                         struct amazon_token *token);

/* ---- Listings Items ---------------------------------------------------------- */

/* base + "/listings/2021-08-01/items/" + seller + "/" + sku + "?marketplaceIds="
 * + marketplace, then "&" + query when query is not NULL ("includedData=
 * summaries,issues"). Returns 0, or -1 when out does not hold it or a part
 * is empty. */
int amazon_listing_url(char *out, size_t size, const char *base, const char *seller,
                       const char *sku, const char *marketplace, const char *query);

/* The patch body for quantity whole units (negative: 0; at most
 * AMAZON_QUANTITY_MAX), malloc'd, or NULL with a reason. */
char *amazon_patch_body(const char *product_type, int64_t quantity, char *error, size_t error_size);

struct amazon_answer {
	enum amazon_outcome outcome;
	char status[16]; /* ACCEPTED | INVALID | VALID */
	char submission_id[AMAZON_ID_SIZE];
	uint32_t issue_count;  /* issues in the answer (all of them) */
	uint32_t error_issues; /* of which severity ERROR */
	struct amazon_issue issues[AMAZON_ISSUES_MAX];
	struct amazon_issue error; /* the first error of an ErrorList */
};

/* Reads a patchListingsItem answer for sku. 200: ListingsItemSubmissionResponse
 * (sku, status and submissionId required; sku must be the one sent); other
 * statuses: an ErrorList when readable. Always fills answer. */
void amazon_patch_answer(long http_status, const char *body, size_t size, const char *sku,
                         struct amazon_answer *answer);

struct amazon_listing {
	enum amazon_outcome outcome;
	bool summary;        /* a summary for the marketplace is there */
	bool buyable;        /* its status holds BUYABLE */
	bool discoverable;   /* its status holds DISCOVERABLE */
	bool quantity_known; /* fulfillmentAvailability holds DEFAULT with a quantity */
	int64_t quantity;    /* whole units */
	uint32_t error_issues;
	char last_updated[40];     /* the summary's lastUpdatedDate, as sent */
	struct amazon_issue issue; /* the first ERROR issue, else the first issue */
	struct amazon_issue error; /* the first error of an ErrorList */
};

/* Reads a getListingsItem answer (includedData=summaries,issues,
 * fulfillmentAvailability) for sku in marketplace. Always fills listing. */
void amazon_listing_answer(long http_status, const char *body, size_t size, const char *sku,
                           const char *marketplace, struct amazon_listing *listing);

/* ---- JSON_LISTINGS_FEED --------------------------------------------------------- */

struct amazon_feed_message {
	const char *sku;
	int64_t quantity; /* whole units; negative: 0 */
};

/* The feed document for messages[0..count) (messageId i + 1), malloc'd, or
 * NULL with a reason (count 0 or above AMAZON_FEED_MESSAGES_MAX, an empty
 * SKU). */
char *amazon_feed_document(const char *seller, const char *product_type,
                           const struct amazon_feed_message *messages, uint32_t count, char *error,
                           size_t error_size);

/* createFeedDocument's body: {"contentType": AMAZON_FEED_CONTENT_TYPE}. */
char *amazon_document_spec_body(char *error, size_t error_size);

/* createFeed's body {feedType, marketplaceIds: [marketplace],
 * inputFeedDocumentId}. */
char *amazon_create_feed_body(const char *document_id, const char *marketplace, char *error,
                              size_t error_size);

struct amazon_document {
	enum amazon_outcome outcome;
	char document_id[AMAZON_ID_SIZE];
	char url[AMAZON_URL_SIZE]; /* http:// or https:// only */
	bool gzip;                 /* compressionAlgorithm GZIP */
	struct amazon_issue error;
};

/* createFeedDocument (201) and getFeedDocument (200) answers. */
void amazon_document_answer(long http_status, const char *body, size_t size,
                            struct amazon_document *document);

enum amazon_feed_status {
	AMAZON_FEED_UNKNOWN = 0,
	AMAZON_FEED_IN_QUEUE,
	AMAZON_FEED_IN_PROGRESS,
	AMAZON_FEED_DONE,
	AMAZON_FEED_CANCELLED,
	AMAZON_FEED_FATAL,
};

struct amazon_feed {
	enum amazon_outcome outcome;
	char feed_id[AMAZON_ID_SIZE];
	enum amazon_feed_status status;          /* getFeed */
	char result_document_id[AMAZON_ID_SIZE]; /* getFeed, DONE (FATAL may have one) */
	struct amazon_issue error;
};

/* createFeed's answer (202 {feedId}). */
void amazon_create_feed_answer(long http_status, const char *body, size_t size,
                               struct amazon_feed *feed);

/* getFeed's answer (200 Feed); feed_id must be the one asked about. */
void amazon_feed_answer(long http_status, const char *body, size_t size, const char *feed_id,
                        struct amazon_feed *feed);

struct amazon_report_message {
	bool invalid; /* an ERROR issue names the message: not applied */
	char message[AMAZON_MESSAGE_SIZE];
};

struct amazon_report {
	enum amazon_outcome outcome; /* OK or MALFORMED */
	uint32_t processed, accepted, invalid;
	bool feed_error; /* an ERROR issue without a messageId: the feed itself */
	struct amazon_issue first;
};

/* Reads a processing report (listings-feed-processing-report-schema-v2) of
 * a feed of count messages into messages[0..count) (index messageId - 1).
 * The header's feedId must be feed_id. Always fills report. */
void amazon_report_read(const char *body, size_t size, const char *feed_id, uint32_t count,
                        struct amazon_report_message *messages, struct amazon_report *report);

/* ---- Rate limits ------------------------------------------------------------------ */

/* x-amzn-RateLimit-Limit ("5.0", "0.0083"): requests per second, or -1
 * when the value is not a positive decimal. */
double amazon_rate_limit_parse(const char *value);

#endif /* SKULD_CHANNELS_AMAZON_H */
