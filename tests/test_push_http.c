/*
 * test_push_http.c — the push workers' HTTP client (channels/http.c) and
 * Shopify's bodies (channels/shopify.c) against the Shopify stand-in: an
 * accepted set read back, compare-and-set after an external sale, and each
 * failure a channel can answer with (auth, throttling with Retry-After,
 * 5xx, a reset connection, a hang past the deadline, a malformed body).
 */
#include <jansson.h>

#include "shopify.h"
#include "standin_harness.h"

#define ITEM     "gid://shopify/InventoryItem/1"
#define LOCATION "gid://shopify/Location/1"

static const char seed[] =
        "{\"locations\":[{\"id\":\"" LOCATION "\",\"name\":\"Web\",\"active\":true}],"
        "\"items\":[{\"id\":\"" ITEM "\",\"sku\":\"TEE-M\"}],"
        "\"levels\":[{\"inventoryItemId\":\"" ITEM "\",\"locationId\":\"" LOCATION
        "\",\"available\":3}]}";

static struct standin standin;
static struct http_client *client;

static void setup(void)
{
	cr_assert_eq(http_global_init(), 0);
	client = http_client_create();
	cr_assert_not_null(client);
	standin_start(&standin, "shopify.py", seed);
}

static void teardown(void)
{
	standin_stop(&standin);
	http_client_destroy(client);
}

TestSuite(push_http, .init = setup, .fini = teardown, .timeout = 60);

/* One GraphQL call; returns the HTTP result (status 0: no answer). */
static int graphql(const char *token, const char *body, uint32_t timeout_ms,
                   struct http_response *response)
{
	char url[256], auth[128];
	snprintf(url, sizeof(url), "%s/admin/api/2025-01/graphql.json", standin.base);
	snprintf(auth, sizeof(auth), "X-Shopify-Access-Token: %s", token);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/json", auth},
	        .body = body,
	        .body_size = strlen(body),
	        .timeout_ms = timeout_ms,
	};
	return http_call(client, &request, response);
}

/* Sets the item to quantity (compared with shown when known). */
static void set_quantity(int64_t quantity, int64_t shown, bool known, struct shopify_answer *answer)
{
	struct shopify_quantity q = {ITEM, LOCATION, quantity, shown, known};
	struct shopify_set set = {"2025-01", NULL, "skuld://push/web/1", &q, 1};
	char error[128];
	char *body = shopify_set_body(&set, error, sizeof(error));
	cr_assert_not_null(body, "%s", error);
	struct http_response response;
	cr_assert_eq(graphql("shpat_standin", body, 10000, &response), 0, "%s", response.error);
	free(body);
	shopify_set_answer(response.status, response.body, response.body_size, 1, answer);
}

static struct shopify_level level_read(void)
{
	const char *items[] = {ITEM};
	char error[128];
	char *body = shopify_read_body(items, 1, LOCATION, error, sizeof(error));
	cr_assert_not_null(body);
	struct http_response response;
	cr_assert_eq(graphql("shpat_standin", body, 10000, &response), 0);
	free(body);
	struct shopify_level level;
	struct shopify_answer answer;
	cr_assert_eq(shopify_read_answer(response.status, response.body, response.body_size, 1,
	                                 &level, &answer),
	             SHOPIFY_ACCEPTED, "%.300s", response.body);
	return level;
}

Test(push_http, a_set_is_accepted_and_reads_back)
{
	struct shopify_answer answer;
	set_quantity(7, 3, true, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_ACCEPTED);
	cr_assert(answer.cost_known);
	cr_assert_lt(answer.available, answer.maximum, "the call was charged");
	struct shopify_level level = level_read();
	cr_assert(level.found && level.stocked);
	cr_assert_eq(level.available, 7);
}

Test(push_http, an_external_sale_makes_the_compare_stale)
{
	standin_control(&standin, client, "sale",
	                "{\"inventoryItemId\":\"" ITEM "\",\"locationId\":\"" LOCATION
	                "\",\"quantity\":1}");
	struct shopify_answer answer;
	set_quantity(5, 3, true, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_USER_ERRORS);
	cr_assert_eq(answer.errors[0].index, 0);
	cr_assert_eq(answer.errors[0].code, SHOPIFY_ERROR_STALE);
	/* Nothing applied; the channel shows 2 after its own sale. */
	cr_assert_eq(level_read().available, 2);
}

Test(push_http, a_wrong_token_is_auth)
{
	struct http_response response;
	cr_assert_eq(graphql("shpat_wrong", "{\"query\":\"{ shop { name } }\"}", 10000, &response),
	             0);
	struct shopify_answer answer;
	shopify_set_answer(response.status, response.body, response.body_size, 1, &answer);
	cr_assert_eq(response.status, 401);
	cr_assert_eq(answer.outcome, SHOPIFY_AUTH);
}

Test(push_http, throttled_with_429_carries_retry_after)
{
	standin_control(&standin, client, "faults", "{\"kind\":\"throttle\",\"status\":429}");
	struct shopify_answer answer;
	set_quantity(4, 3, true, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_THROTTLED);
	struct http_response response;
	standin_control(&standin, client, "faults", "{\"kind\":\"throttle\",\"status\":429}");
	cr_assert_eq(
	        graphql("shpat_standin", "{\"query\":\"{ shop { name } }\"}", 10000, &response), 0);
	cr_assert_eq(response.status, 429);
	cr_assert_gt(response.retry_after_ms, 0);
	cr_assert_eq(level_read().available, 3, "nothing applied");
}

Test(push_http, server_errors_resets_hangs_and_malformed_bodies)
{
	struct shopify_answer answer;
	standin_control(&standin, client, "faults", "{\"kind\":\"http_error\",\"status\":503}");
	set_quantity(4, 3, true, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_SERVER_ERROR);

	standin_control(&standin, client, "faults", "{\"kind\":\"malformed\"}");
	set_quantity(4, 3, true, &answer);
	cr_assert_eq(answer.outcome, SHOPIFY_MALFORMED);

	/* On a new connection: curl re-sends a request once by itself when a
	 * kept-alive connection dies before any answer (http.h). */
	struct http_response response;
	standin_control(&standin, client, "faults", "{\"kind\":\"reset\"}");
	struct http_client *kept = client;
	client = http_client_create();
	cr_assert_eq(
	        graphql("shpat_standin", "{\"query\":\"{ shop { name } }\"}", 10000, &response),
	        -1);
	http_client_destroy(client);
	client = kept;
	cr_assert_eq(response.status, 0);
	cr_assert_neq(response.error[0], '\0');

	/* The change is applied, then no answer: the client gives up at its
	 * deadline, and a read shows the channel took it. */
	standin_control(&standin, client, "faults",
	                "{\"kind\":\"timeout\",\"seconds\":5,\"apply\":true}");
	struct shopify_quantity q = {ITEM, LOCATION, 9, 3, true};
	struct shopify_set set = {"2025-01", NULL, NULL, &q, 1};
	char error[128];
	char *body = shopify_set_body(&set, error, sizeof(error));
	cr_assert_eq(graphql("shpat_standin", body, 500, &response), -1);
	free(body);
	cr_assert_eq(response.status, 0);
	cr_assert_not_null(strstr(response.error, "timed out"), "%s", response.error);
	cr_assert_eq(level_read().available, 9);
}
