/*
 * test_gateway_shopify.c — Shopify webhooks as skuld-gateway reads them
 * (channels/gateway_shopify.c): the signature against a value computed
 * elsewhere (Python's hmac), the actions of each topic, the keys they get,
 * and bodies that are not what Shopify sends; and order edits: the order
 * an orders/edited delivery names, and the order read back with its sales
 * agreements (gateway_order_read, channels/gateway_poll.c) as actions; its
 * refunds as the same actions as their webhooks; the spool's retry slices,
 * which never split a linked group, and an exchange too long for one chain.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_poll.h"
#include "gateway_shopify.h"

static struct gateway_action actions[16];
static char error[160];

static int read_topic(const char *topic, const char *body)
{
	error[0] = '\0';
	return shopify_webhook_actions(topic, body, strlen(body), actions, 16, error,
	                               sizeof(error));
}

Test(gateway_shopify, the_signature_is_base64_hmac_sha256_of_the_raw_body)
{
	const char body[] = "{\"id\":1}";
	/* python3: base64(hmac.new(b"hush-secret", body, sha256).digest()) */
	const char want[] = "fz73s71B9pgV8DvuwoFaAut3l6fV6Lr9cCbe9Z87Spw=";
	char signed_text[45];
	shopify_webhook_sign("hush-secret", body, strlen(body), signed_text);
	cr_assert_str_eq(signed_text, want);
	cr_assert_eq(shopify_webhook_verify("hush-secret", body, strlen(body), want), 1);
	cr_assert_eq(shopify_webhook_verify("other-secret", body, strlen(body), want), 0);
	cr_assert_eq(shopify_webhook_verify("hush-secret", "{\"id\":2}", 8, want), 0);
	cr_assert_eq(shopify_webhook_verify("hush-secret", body, strlen(body), NULL), 0);
	cr_assert_eq(shopify_webhook_verify("hush-secret", body, strlen(body), "short"), 0);
	cr_assert_eq(shopify_webhook_verify("", body, strlen(body), want), 0);
}

Test(gateway_shopify, an_online_order_is_a_sale_per_line)
{
	int count = read_topic("orders/create",
	                       "{\"id\":820982911946154508,\"source_name\":\"web\","
	                       "\"created_at\":\"2026-11-27T09:30:00-05:00\",\"line_items\":["
	                       "{\"id\":466157049,\"sku\":\"TEE-RED-M\",\"quantity\":2},"
	                       "{\"id\":466157050,\"sku\":\"MUG\",\"quantity\":0},"
	                       "{\"id\":466157051,\"sku\":\"MUG\",\"quantity\":1}]}");
	cr_assert_eq(count, 2, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_SALE);
	cr_assert_str_eq(actions[0].sku, "TEE-RED-M");
	cr_assert_eq(actions[0].quantity, 2);
	cr_assert_str_eq(actions[0].order, "820982911946154508");
	cr_assert_str_eq(actions[0].line, "466157049");
	cr_assert_str_eq(actions[0].channel_location, "", "online");
	/* 2026-11-27T14:30:00Z */
	cr_assert_eq(actions[0].occurred_at, 1795789800ull * 1000000000ull);
	cr_assert_str_eq(actions[1].line, "466157051");
}

Test(gateway_shopify, a_pos_order_names_its_store)
{
	int count = read_topic("orders/create",
	                       "{\"id\":\"77\",\"source_name\":\"pos\",\"location_id\":655441491,"
	                       "\"created_at\":\"2026-11-27T14:30:00.250Z\",\"line_items\":["
	                       "{\"id\":1,\"sku\":\"MUG\",\"quantity\":3}]}");
	cr_assert_eq(count, 1, "%s", error);
	cr_assert_str_eq(actions[0].channel_location, "655441491");
	cr_assert_eq(actions[0].occurred_at, 1795789800ull * 1000000000ull + 250000000ull);
}

Test(gateway_shopify, cancellations_and_refunds)
{
	cr_assert_eq(read_topic("orders/cancelled", "{\"id\":5,\"line_items\":[{\"id\":9,"
	                                            "\"sku\":\"MUG\",\"quantity\":4}]}"),
	             1, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_CANCEL);
	cr_assert_eq(actions[0].quantity, 4);
	int count = read_topic(
	        "refunds/create",
	        "{\"id\":509562969,\"order_id\":5,\"created_at\":\"2026-11-27T10:00:00Z\","
	        "\"refund_line_items\":["
	        "{\"id\":1,\"line_item_id\":9,\"quantity\":1,\"restock_type\":\"return\","
	        "\"location_id\":655441491,\"line_item\":{\"sku\":\"MUG\"}},"
	        "{\"id\":2,\"line_item_id\":10,\"quantity\":2,\"restock_type\":\"cancel\","
	        "\"line_item\":{\"sku\":\"TEE\"}},"
	        "{\"id\":3,\"line_item_id\":11,\"quantity\":1,\"restock_type\":\"no_restock\","
	        "\"line_item\":{\"sku\":\"CAP\"}}]}");
	cr_assert_eq(count, 2, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_EXPECTED_RETURN);
	cr_assert_str_eq(actions[0].refund, "509562969");
	cr_assert_str_eq(actions[0].refund_line, "1");
	cr_assert_str_eq(actions[0].line, "9");
	cr_assert_str_eq(actions[0].order, "5");
	cr_assert_str_eq(actions[0].channel_location, "655441491");
	cr_assert_eq(actions[1].kind, GATEWAY_RESTOCK);
	cr_assert_str_eq(actions[1].sku, "TEE");
}

Test(gateway_shopify, keys_derive_from_the_ids_and_the_action)
{
	read_topic("orders/create",
	           "{\"id\":5,\"line_items\":[{\"id\":9,\"sku\":\"MUG\",\"quantity\":4}]}");
	struct gateway_action sale = actions[0];
	read_topic("orders/cancelled",
	           "{\"id\":5,\"line_items\":[{\"id\":9,\"sku\":\"MUG\",\"quantity\":4}]}");
	struct gateway_action cancel = actions[0];
	/* The cancellation's SALE has the order's key; its RETURN another. */
	cr_assert(skuld_u128_equal(gateway_key("shopify", &sale, "sale"),
	                           gateway_key("shopify", &cancel, "sale")));
	cr_assert_not(skuld_u128_equal(gateway_key("shopify", &cancel, "sale"),
	                               gateway_key("shopify", &cancel, "cancel")));
	cr_assert_not(skuld_u128_equal(gateway_key("shopify", &sale, "sale"),
	                               gateway_key("other", &sale, "sale")));
	read_topic("orders/create",
	           "{\"id\":5,\"line_items\":[{\"id\":10,\"sku\":\"MUG\",\"quantity\":4}]}");
	cr_assert_not(skuld_u128_equal(gateway_key("shopify", &sale, "sale"),
	                               gateway_key("shopify", &actions[0], "sale")));
}

Test(gateway_shopify, bodies_shopify_does_not_send_are_refused)
{
	const char *bad[] = {
	        "not json",
	        "{\"line_items\":[]}",
	        "{\"id\":1}",
	        "{\"id\":1,\"line_items\":[{\"id\":2,\"sku\":\"A\",\"quantity\":-1}]}",
	        "{\"id\":1,\"line_items\":[{\"id\":2,\"sku\":\"A\",\"quantity\":\"3\"}]}",
	        "{\"id\":1,\"line_items\":[{\"sku\":\"A\",\"quantity\":1}]}",
	        "{\"id\":1,\"line_items\":[{\"id\":2,\"quantity\":1}]}",
	        "{\"id\":1,\"line_items\":[{\"id\":2,\"sku\":"
	        "\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\","
	        "\"quantity\":1}]}",
	        "{\"id\":1,\"created_at\":\"yesterday\",\"line_items\":[]}",
	        "{\"id\":\"has space\",\"line_items\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(read_topic("orders/create", bad[i]), -1, "body %zu", i);
		cr_assert_neq(error[0], '\0');
	}
	cr_assert_eq(read_topic("refunds/create",
	                        "{\"id\":1,\"order_id\":2,\"refund_line_items\":[{\"id\":3,"
	                        "\"line_item_id\":4,\"quantity\":1,\"restock_type\":\"maybe\","
	                        "\"line_item\":{\"sku\":\"A\"}}]}"),
	             -1);
	/* Topics that move no stock are read as nothing. */
	cr_assert_eq(read_topic("products/update", "not even json"), 0);
	cr_assert_eq(read_topic(NULL, "{}"), -1);
	/* More lines than the room given. */
	char many[4096] = "{\"id\":1,\"line_items\":[";
	for (int i = 0; i < 20; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		         "%s{\"id\":%d,\"sku\":\"A\",\"quantity\":1}", i ? "," : "", i + 1);
	strcat(many, "]}");
	cr_assert_eq(read_topic("orders/create", many), -1);
}

Test(gateway_shopify, orders_edited_names_its_order_and_is_read_back)
{
	char order[GATEWAY_ID_SIZE];
	const char edited[] = "{\"order_edit\":{\"id\":78912328,\"order_id\":450789469,"
	                      "\"created_at\":\"2026-11-27T09:30:00-05:00\",\"line_items\":{"
	                      "\"additions\":[{\"id\":466157049,\"delta\":1}],"
	                      "\"removals\":[]}}}";
	cr_assert_eq(shopify_webhook_order("orders/edited", edited, strlen(edited), order, error,
	                                   sizeof(error)),
	             1);
	cr_assert_str_eq(order, "450789469");
	const char cancelled[] = "{\"id\":5,\"line_items\":[]}";
	cr_assert_eq(shopify_webhook_order("orders/cancelled", cancelled, strlen(cancelled), order,
	                                   error, sizeof(error)),
	             1);
	cr_assert_str_eq(order, "5");
	cr_assert_eq(shopify_webhook_order("orders/create", cancelled, strlen(cancelled), order,
	                                   error, sizeof(error)),
	             0);
	cr_assert_eq(shopify_webhook_order("orders/edited", "{\"order_edit\":{}}", 15, order, error,
	                                   sizeof(error)),
	             -1);
	/* Its payload alone moves nothing: no SKUs in it. */
	cr_assert_eq(read_topic("orders/edited", edited), 0);
}

/* An order as the read-back query answers it: line 1 ordered 4 (an edit
 * removed 3, then another added 1), line 2 ordered 1 plus 2 an edit added,
 * line 3 added by the first edit. The ORDER agreement names the order's own
 * units; without it they are quantity less what edits added. */
#define EDITED_ORDER(CANCELLED)                                                                    \
	"{\"data\":{\"order\":{\"id\":\"gid://shopify/Order/5\",\"legacyResourceId\":\"5\","       \
	"\"createdAt\":\"2026-11-27T14:00:00Z\",\"updatedAt\":\"2026-11-27T15:00:00Z\","           \
	"\"cancelledAt\":" CANCELLED ",\"sourceName\":\"web\",\"physicalLocation\":null,"          \
	"\"lineItems\":{\"pageInfo\":{\"hasNextPage\":false},\"nodes\":["                          \
	"{\"id\":\"gid://shopify/LineItem/1\",\"sku\":\"MUG\",\"quantity\":5},"                    \
	"{\"id\":\"gid://shopify/LineItem/2\",\"sku\":\"TEE\",\"quantity\":3},"                    \
	"{\"id\":\"gid://shopify/LineItem/3\",\"sku\":\"MUG\",\"quantity\":2}]},"                  \
	"\"agreements\":{\"pageInfo\":{\"hasNextPage\":false},\"nodes\":["                         \
	"{\"id\":\"gid://shopify/SalesAgreement/5\",\"reason\":\"ORDER\","                         \
	"\"happenedAt\":\"2026-11-27T14:00:00Z\",\"sales\":{\"pageInfo\":{\"hasNextPage\":false}," \
	"\"nodes\":[{\"quantity\":4,\"lineItem\":{\"id\":\"gid://shopify/LineItem/1\","            \
	"\"sku\":\"MUG\"}},{\"quantity\":1,\"lineItem\":{\"id\":\"gid://shopify/LineItem/2\","     \
	"\"sku\":\"TEE\"}}]}},"                                                                    \
	"{\"id\":\"gid://shopify/SalesAgreement/70\",\"reason\":\"ORDER_EDIT\","                   \
	"\"happenedAt\":\"2026-11-27T14:30:00Z\",\"sales\":{\"pageInfo\":{\"hasNextPage\":false}," \
	"\"nodes\":[{\"quantity\":-3,\"lineItem\":{\"id\":\"gid://shopify/LineItem/1\","           \
	"\"sku\":\"MUG\"}},{\"quantity\":2,\"lineItem\":{\"id\":\"gid://shopify/LineItem/2\","     \
	"\"sku\":\"TEE\"}},{\"quantity\":2,\"lineItem\":{\"id\":\"gid://shopify/LineItem/3\","     \
	"\"sku\":\"MUG\"}},{\"quantity\":1}]}},"                                                   \
	"{\"id\":\"gid://shopify/SalesAgreement/71\",\"reason\":\"ORDER_EDIT\","                   \
	"\"happenedAt\":\"2026-11-27T14:40:00Z\",\"sales\":{\"pageInfo\":{\"hasNextPage\":false}," \
	"\"nodes\":[{\"quantity\":1,\"lineItem\":{\"id\":\"gid://shopify/LineItem/1\","            \
	"\"sku\":\"MUG\"}}]}}]}}}}"

static int read_order(const char *body)
{
	error[0] = '\0';
	return gateway_order_read(200, body, strlen(body), actions, 16, error, sizeof(error));
}

Test(gateway_shopify, an_edited_order_is_its_own_sales_and_each_edits_change)
{
	int count = read_order(EDITED_ORDER("null"));
	cr_assert_eq(count, 6, "%s", error);
	/* The order's own sales: quantity less what edits added. */
	cr_assert_eq(actions[0].kind, GATEWAY_SALE);
	cr_assert_str_eq(actions[0].line, "1");
	cr_assert_eq(actions[0].quantity, 4);
	cr_assert_str_eq(actions[0].refund, "");
	cr_assert_eq(actions[1].kind, GATEWAY_SALE);
	cr_assert_str_eq(actions[1].line, "2");
	cr_assert_eq(actions[1].quantity, 1);
	/* Line 3 came with an edit: no SALE of its own. Then the edits. */
	cr_assert_eq(actions[2].kind, GATEWAY_EDIT_REMOVE);
	cr_assert_str_eq(actions[2].line, "1");
	cr_assert_str_eq(actions[2].refund, "70");
	cr_assert_eq(actions[2].quantity, 3);
	cr_assert_eq(actions[2].occurred_at, 1795789800ull * 1000000000ull);
	cr_assert_eq(actions[3].kind, GATEWAY_EDIT_ADD);
	cr_assert_str_eq(actions[3].line, "2");
	cr_assert_str_eq(actions[3].sku, "TEE");
	cr_assert_eq(actions[3].quantity, 2);
	cr_assert_eq(actions[4].kind, GATEWAY_EDIT_ADD);
	cr_assert_str_eq(actions[4].line, "3");
	cr_assert_eq(actions[4].quantity, 2);
	cr_assert_eq(actions[5].kind, GATEWAY_EDIT_ADD);
	cr_assert_str_eq(actions[5].line, "1");
	cr_assert_str_eq(actions[5].refund, "71");
	cr_assert_eq(actions[5].quantity, 1);
	/* Two edits of one line that leave it at the same quantity are two
	 * facts with two keys; each differs from the line's own SALE. */
	cr_assert_not(skuld_u128_equal(gateway_key("shopify", &actions[2], "edit-remove"),
	                               gateway_key("shopify", &actions[5], "edit-add")));
	struct gateway_action same_line = actions[5];
	snprintf(same_line.refund, sizeof(same_line.refund), "70");
	cr_assert_not(skuld_u128_equal(gateway_key("shopify", &same_line, "edit-add"),
	                               gateway_key("shopify", &actions[5], "edit-add")));
	cr_assert_not(skuld_u128_equal(gateway_key("shopify", &actions[0], "sale"),
	                               gateway_key("shopify", &actions[5], "edit-add")));
}

Test(gateway_shopify, a_cancelled_edited_order_undoes_each_edit_too)
{
	int count = read_order(EDITED_ORDER("\"2026-11-27T16:00:00Z\""));
	cr_assert_eq(count, 6, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_CANCEL);
	cr_assert_eq(actions[0].quantity, 4);
	cr_assert_eq(actions[1].kind, GATEWAY_CANCEL);
	cr_assert_eq(actions[2].kind, GATEWAY_EDIT_REMOVE_CANCEL);
	cr_assert_eq(actions[2].quantity, 3);
	cr_assert_eq(actions[3].kind, GATEWAY_EDIT_ADD_CANCEL);
	cr_assert_eq(actions[5].kind, GATEWAY_EDIT_ADD_CANCEL);
}

Test(gateway_shopify, an_order_read_back_that_cannot_be_applied)
{
	/* No usable answer: try again (503). */
	cr_assert_eq(gateway_order_read(503, "", 0, actions, 16, error, sizeof(error)), -1);
	const char throttled[] = "{\"errors\":[{\"message\":\"Throttled\","
	                         "\"extensions\":{\"code\":\"THROTTLED\"}}]}";
	cr_assert_eq(gateway_order_read(200, throttled, strlen(throttled), actions, 16, error,
	                                sizeof(error)),
	             -1);
	/* Unknown, or more edits than one read holds: not applicable (400). */
	cr_assert_eq(read_order("{\"data\":{\"order\":null}}"), -2);
	char *cut = strdup(EDITED_ORDER("null"));
	char *more = strstr(cut, "\"agreements\":{\"pageInfo\":{\"hasNextPage\":false}");
	cr_assert_not_null(more);
	memcpy(strstr(more, "false"), "true ", 5);
	cr_assert_eq(read_order(cut), -2);
	cr_assert_neq(error[0], '\0');
	free(cut);
	/* Too many actions for the room given. */
	cr_assert_eq(gateway_order_read(200, EDITED_ORDER("null"), strlen(EDITED_ORDER("null")),
	                                actions, 4, error, sizeof(error)),
	             -2);
	/* Without the ORDER agreement, the own units are quantity less what
	 * edits added: the same actions. */
	char *no_order = strdup(EDITED_ORDER("null"));
	char *order_agreement = strstr(no_order, "\"reason\":\"ORDER\"");
	cr_assert_not_null(order_agreement);
	memcpy(order_agreement, "\"reason\":\"OTHER\"", 15);
	cr_assert_eq(read_order(no_order), 6, "%s", error);
	cr_assert_eq(actions[0].quantity, 4);
	cr_assert_eq(actions[1].quantity, 1);
	free(no_order);
	/* An order read without agreements (an older query): its lines only. */
	cr_assert_eq(read_order("{\"data\":{\"order\":{\"id\":\"gid://shopify/Order/9\","
	                        "\"createdAt\":\"2026-11-27T14:00:00Z\",\"updatedAt\":"
	                        "\"2026-11-27T14:00:00Z\",\"cancelledAt\":null,\"lineItems\":{"
	                        "\"nodes\":[{\"id\":\"gid://shopify/LineItem/4\",\"sku\":\"MUG\","
	                        "\"quantity\":2}]}}}}"),
	             1, "%s", error);
	cr_assert_eq(actions[0].quantity, 2);
}

Test(gateway_shopify, a_line_property_names_the_checkout_hold_to_commit)
{
	cr_assert_eq(
	        read_topic("orders/create",
	                   "{\"id\":5,\"created_at\":\"2026-11-27T09:00:00Z\",\"line_items\":["
	                   "{\"id\":1,\"sku\":\"MUG\",\"quantity\":2,\"properties\":[{\"name\":"
	                   "\"gift\",\"value\":\"yes\"},{\"name\":\"_skuld_hold\",\"value\":"
	                   "\"18446744073709551615\"}]},"
	                   "{\"id\":2,\"sku\":\"TEE\",\"quantity\":1,\"properties\":[]},"
	                   "{\"id\":3,\"sku\":\"CAP\",\"quantity\":1,\"properties\":[{\"name\":"
	                   "\"_skuld_hold\",\"value\":\"not-a-hold\"}]}]}"),
	        3, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_SALE);
	cr_assert_eq(actions[0].hold, UINT64_MAX);
	cr_assert_eq(actions[1].hold, 0, "no property: a plain SALE");
	cr_assert_eq(actions[2].hold, 0, "not a hold id: a plain SALE");
	/* The same hold on the cancellation: its COMMIT comes with the line. */
	cr_assert_eq(
	        read_topic("orders/cancelled",
	                   "{\"id\":5,\"line_items\":[{\"id\":1,\"sku\":\"MUG\",\"quantity\":2,"
	                   "\"properties\":[{\"name\":\"_skuld_hold\",\"value\":\"42\"}]}]}"),
	        1, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_CANCEL);
	cr_assert_eq(actions[0].hold, 42);
	/* The GraphQL shape (the poll and the read-back): customAttributes {key value}. */
	json_t *attributes = json_loads("[{\"key\":\"_skuld_hold\",\"value\":\"7001\"}]", 0, NULL);
	cr_assert_eq(shopify_line_hold(attributes, "key"), 7001);
	cr_assert_eq(shopify_line_hold(attributes, "name"), 0);
	json_decref(attributes);
	attributes = json_loads("[{\"key\":\"_skuld_hold\",\"value\":\"18446744073709551616\"},"
	                        "{\"key\":\"_skuld_hold\",\"value\":\"\"}]",
	                        0, NULL);
	cr_assert_eq(shopify_line_hold(attributes, "key"), 0, "over 2^64-1");
	json_decref(attributes);
	cr_assert_eq(shopify_line_hold(NULL, "key"), 0);
	/* The commit's key is the line's, distinct from its SALE's. */
	struct gateway_action line = {.kind = GATEWAY_SALE, .order = "5", .line = "1"};
	skuld_u128 commit = gateway_key("shop", &line, "commit");
	skuld_u128 sale = gateway_key("shop", &line, "sale");
	cr_assert_neq(memcmp(&commit, &sale, sizeof(commit)), 0);
}

Test(gateway_shopify, an_exchange_is_the_return_and_the_replacement_in_one_chain)
{
	cr_assert_eq(
	        read_topic(
	                "refunds/create",
	                "{\"id\":900,\"order_id\":5,\"created_at\":\"2026-11-27T12:00:00Z\","
	                "\"refund_line_items\":[{\"id\":901,\"line_item_id\":1,\"quantity\":1,"
	                "\"restock_type\":\"return\",\"line_item\":{\"sku\":\"TEE-M\"}}],"
	                "\"return\":{\"id\":90000,\"exchange_line_items\":[{\"id\":90001,"
	                "\"quantity\":1,\"line_item\":{\"id\":77,\"sku\":\"TEE-L\"}},{\"id\":90002,"
	                "\"quantity\":0,\"line_item\":{\"id\":78,\"sku\":\"CAP\"}}]}}"),
	        2, "%s", error);
	cr_assert_eq(actions[0].kind, GATEWAY_EXPECTED_RETURN);
	cr_assert(actions[0].linked, "the RETURN is linked with the SALE after it");
	cr_assert_eq(actions[1].kind, GATEWAY_EXCHANGE_SALE);
	cr_assert_not(actions[1].linked, "the chain ends with the replacement");
	cr_assert_str_eq(actions[1].sku, "TEE-L");
	cr_assert_eq(actions[1].quantity, 1);
	cr_assert_str_eq(actions[1].order, "5");
	cr_assert_str_eq(actions[1].line, "77");
	cr_assert_str_eq(actions[1].refund, "900");
	cr_assert_str_eq(actions[1].refund_line, "90001");
	cr_assert_eq(actions[1].occurred_at, actions[0].occurred_at);
	/* The RETURN is the event a refund without exchange gives: the same key. */
	skuld_u128 linked_return = gateway_key("shop", &actions[0], "expected-return");
	skuld_u128 sale = gateway_key("shop", &actions[1], "exchange-sale");
	cr_assert_eq(
	        read_topic("refunds/create",
	                   "{\"id\":900,\"order_id\":5,\"created_at\":\"2026-11-27T12:00:00Z\","
	                   "\"refund_line_items\":[{\"id\":901,\"line_item_id\":1,\"quantity\":1,"
	                   "\"restock_type\":\"return\",\"line_item\":{\"sku\":\"TEE-M\"}}]}"),
	        1);
	cr_assert_not(actions[0].linked);
	skuld_u128 plain_return = gateway_key("shop", &actions[0], "expected-return");
	cr_assert_eq(memcmp(&linked_return, &plain_return, sizeof(sale)), 0);
	cr_assert_neq(memcmp(&linked_return, &sale, sizeof(sale)), 0);
	/* Not what Shopify sends: refused. */
	cr_assert_eq(read_topic("refunds/create",
	                        "{\"id\":900,\"order_id\":5,\"refund_line_items\":[],"
	                        "\"return\":{\"exchange_line_items\":[{\"id\":1,\"quantity\":1,"
	                        "\"line_item\":{\"id\":2}}]}}"),
	             -1);
}

/* The spool's retry sends requests of at most GATEWAY_LINES_MAX actions; a
 * slice ends before a linked group that would not fit (an exchange is one
 * chain, never two). */
Test(gateway_shopify, a_retry_slice_never_splits_a_linked_group)
{
	static struct gateway_action spool[GATEWAY_LINES_MAX + 8];
	memset(spool, 0, sizeof(spool));
	/* 511 singles, then an exchange (RETURN linked with its SALE) across 512. */
	spool[511].kind = GATEWAY_EXPECTED_RETURN;
	spool[511].linked = true;
	spool[512].kind = GATEWAY_EXCHANGE_SALE;
	cr_assert_eq(gateway_slice(spool, 513, GATEWAY_LINES_MAX), 511);
	cr_assert_eq(gateway_slice(&spool[511], 2, GATEWAY_LINES_MAX), 2);
	/* 510 singles and the group: 512, all in one. */
	cr_assert_eq(gateway_slice(&spool[1], 512, GATEWAY_LINES_MAX), 512);
	/* Fewer than max: all; nothing: nothing. */
	cr_assert_eq(gateway_slice(spool, 40, GATEWAY_LINES_MAX), 40);
	cr_assert_eq(gateway_slice(spool, 0, GATEWAY_LINES_MAX), 0);
	/* Groups of three: the slice ends at a group's end. */
	for (uint32_t i = 0; i < 12; i++)
		spool[i].linked = i % 3 != 2;
	cr_assert_eq(gateway_slice(spool, 12, 8), 6);
	cr_assert_eq(gateway_slice(spool, 12, 9), 9);
	cr_assert_eq(gateway_group_longest(spool, 12), 3);
	cr_assert_eq(gateway_group_longest(spool, 513), 3);
	/* A first group longer than max (refused when read): cut at max. */
	for (uint32_t i = 0; i < 12; i++)
		spool[i].linked = i < 10;
	cr_assert_eq(gateway_slice(spool, 12, 8), 8);
	cr_assert_eq(gateway_group_longest(spool, 12), 11);
	/* Every slice of a long spool ends between groups and covers it all. */
	static struct gateway_action many[2000];
	memset(many, 0, sizeof(many));
	for (uint32_t i = 0; i < 2000; i++)
		many[i].linked = i % 7 == 3 || i % 7 == 4; /* groups of three at 3..5 */
	many[1999].linked = false;                         /* the last group ends the spool */
	uint32_t covered = 0, slices = 0;
	while (covered < 2000) {
		uint32_t size = gateway_slice(&many[covered], 2000 - covered, GATEWAY_LINES_MAX);
		cr_assert(size > 0 && size <= GATEWAY_LINES_MAX);
		covered += size;
		cr_assert_not(many[covered - 1].linked, "slice %u ends inside a group", slices);
		slices++;
	}
	cr_assert_eq(covered, 2000);
	cr_assert_eq(slices, 4);
}

/* An exchange whose chain would be longer than GATEWAY_GROUP_MAX is refused
 * when read (400, logged): it could never be applied as one chain. */
Test(gateway_shopify, an_exchange_longer_than_one_chain_is_refused)
{
	static struct gateway_action many[GATEWAY_LINES_MAX];
	size_t size = 64 + 120 * GATEWAY_GROUP_MAX + 200;
	char *body = malloc(size);
	cr_assert_not_null(body);
	for (uint32_t lines = GATEWAY_GROUP_MAX - 1; lines <= GATEWAY_GROUP_MAX; lines++) {
		int at = snprintf(
		        body, size,
		        "{\"id\":900,\"order_id\":5,\"created_at\":\"2026-11-27T12:00:00Z\","
		        "\"refund_line_items\":[");
		for (uint32_t i = 0; i < lines; i++)
			at += snprintf(body + at, size - (size_t)at,
			               "%s{\"id\":%u,\"line_item_id\":%u,\"quantity\":1,\"restock_"
			               "type\":\"return\",\"line_item\":{\"sku\":\"TEE-M\"}}",
			               i > 0 ? "," : "", 1000 + i, 10 + i);
		snprintf(body + at, size - (size_t)at,
		         "],\"return\":{\"id\":90000,\"exchange_line_items\":[{\"id\":90001,"
		         "\"quantity\":1,\"line_item\":{\"id\":77,\"sku\":\"TEE-L\"}}]}}");
		error[0] = '\0';
		int count = shopify_webhook_actions("refunds/create", body, strlen(body), many,
		                                    GATEWAY_LINES_MAX, error, sizeof(error));
		if (lines + 1 <= GATEWAY_GROUP_MAX) {
			cr_assert_eq(count, (int)lines + 1, "%s", error);
			cr_assert_eq(gateway_group_longest(many, (uint32_t)count), lines + 1);
		} else {
			cr_assert_eq(count, -1);
			cr_assert_not_null(strstr(error, "more than the 256"), "%s", error);
		}
	}
	free(body);
}

/* An order's refunds read by the poll (and the read-back): the actions and
 * keys of their refunds/create webhooks, an exchange linked in one chain. */
#define REFUNDED_ORDER                                                                             \
	"{\"data\":{\"order\":{\"id\":\"gid://shopify/Order/5\",\"legacyResourceId\":\"5\","       \
	"\"createdAt\":\"2026-11-27T10:00:00Z\",\"updatedAt\":\"2026-11-27T12:00:00Z\","           \
	"\"cancelledAt\":null,\"lineItems\":{\"pageInfo\":{\"hasNextPage\":false},\"nodes\":["     \
	"{\"id\":\"gid://shopify/LineItem/1\",\"sku\":\"TEE-M\",\"quantity\":3}]},"                \
	"\"refunds\":[{\"id\":\"gid://shopify/Refund/800\",\"legacyResourceId\":\"800\","          \
	"\"createdAt\":\"2026-11-27T11:00:00Z\",\"refundLineItems\":{\"pageInfo\":{"               \
	"\"hasNextPage\":false},\"nodes\":[{\"id\":\"gid://shopify/RefundLineItem/801\","          \
	"\"quantity\":1,\"restockType\":\"CANCEL\",\"location\":{\"id\":"                          \
	"\"gid://shopify/Location/655441491\"},\"lineItem\":{\"id\":\"gid://shopify/LineItem/1\"," \
	"\"sku\":\"TEE-M\"}},{\"id\":\"gid://shopify/RefundLineItem/802\",\"quantity\":1,"         \
	"\"restockType\":\"NO_RESTOCK\",\"location\":null,\"lineItem\":{\"id\":"                   \
	"\"gid://shopify/LineItem/1\",\"sku\":\"TEE-M\"}}]},\"return\":null},"                     \
	"{\"id\":\"gid://shopify/Refund/900\",\"legacyResourceId\":\"900\",\"createdAt\":"         \
	"\"2026-11-27T12:00:00Z\",\"refundLineItems\":{\"pageInfo\":{\"hasNextPage\":false},"      \
	"\"nodes\":[{\"id\":\"gid://shopify/RefundLineItem/901\",\"quantity\":1,\"restockType\":"  \
	"\"RETURN\",\"location\":null,\"lineItem\":{\"id\":\"gid://shopify/LineItem/1\",\"sku\":"  \
	"\"TEE-M\"}}]},\"return\":{\"exchangeLineItems\":{\"pageInfo\":{\"hasNextPage\":" HAS_MORE \
	"},"                                                                                       \
	"\"nodes\":[{\"id\":\"gid://shopify/ExchangeLineItem/"                                     \
	"90001\",\"quantity\":1,\"lineItem\":{"                                                    \
	"\"id\":\"gid://shopify/LineItem/77\",\"sku\":\"TEE-L\"}}]}}}]}}}"

Test(gateway_shopify, the_poll_reads_refunds_as_their_webhooks_do)
{
#define HAS_MORE "false"
	int count = read_order(REFUNDED_ORDER);
	cr_assert_eq(count, 4, "%s", error);
	struct gateway_action polled[4];
	memcpy(polled, actions, sizeof(polled));
	cr_assert_eq(polled[0].kind, GATEWAY_SALE);
	cr_assert_eq(polled[1].kind, GATEWAY_RESTOCK);
	cr_assert_str_eq(polled[1].channel_location, "655441491");
	cr_assert_not(polled[1].linked);
	cr_assert_eq(polled[2].kind, GATEWAY_EXPECTED_RETURN);
	cr_assert(polled[2].linked, "the exchange's RETURN is linked with its SALE");
	cr_assert_eq(polled[3].kind, GATEWAY_EXCHANGE_SALE);
	cr_assert_not(polled[3].linked);
	/* The same refunds as refunds/create delivers them: the same actions. */
	cr_assert_eq(
	        read_topic(
	                "refunds/create",
	                "{\"id\":800,\"order_id\":5,\"created_at\":\"2026-11-27T06:00:00-05:00\","
	                "\"refund_line_items\":[{\"id\":801,\"line_item_id\":1,\"quantity\":1,"
	                "\"restock_type\":\"cancel\",\"location_id\":655441491,"
	                "\"line_item\":{\"sku\":\"TEE-M\"}},{\"id\":802,\"line_item_id\":1,"
	                "\"quantity\":1,\"restock_type\":\"no_restock\",\"line_item\":{"
	                "\"sku\":\"TEE-M\"}}]}"),
	        1, "%s", error);
	cr_assert_eq(memcmp(&actions[0], &polled[1], sizeof(actions[0])), 0,
	             "the restock differs from its webhook's");
	cr_assert_eq(
	        read_topic("refunds/create",
	                   "{\"id\":900,\"order_id\":5,\"created_at\":\"2026-11-27T12:00:00Z\","
	                   "\"refund_line_items\":[{\"id\":901,\"line_item_id\":1,\"quantity\":1,"
	                   "\"restock_type\":\"return\",\"line_item\":{\"sku\":\"TEE-M\"}}],"
	                   "\"return\":{\"id\":90000,\"exchange_line_items\":[{\"id\":90001,"
	                   "\"quantity\":1,\"line_item\":{\"id\":77,\"sku\":\"TEE-L\"}}]}}"),
	        2, "%s", error);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(memcmp(&actions[i], &polled[2 + i], sizeof(actions[0])), 0,
		             "exchange action %d differs from its webhook's", i);
		const char *what = i == 0 ? "expected-return" : "exchange-sale";
		cr_assert(skuld_u128_equal(gateway_key("shop", &actions[i], what),
		                           gateway_key("shop", &polled[2 + i], what)));
	}
#undef HAS_MORE
	/* An exchange not read whole: that refund is left to its webhook, the rest applied. */
#define HAS_MORE "true"
	cr_assert_eq(read_order(REFUNDED_ORDER), 2, "%s", error);
	cr_assert_eq(actions[1].kind, GATEWAY_RESTOCK);
#undef HAS_MORE
}

/* A cancellation's refund (Shopify refunds what a cancelled order still holds): line 9
 * restocked "cancel", line 10 "no_restock"; as refunds/create and orders/cancelled's
 * `refunds` carry it. */
#define CANCEL_REFUND                                                                              \
	"{\"id\":600,\"order_id\":5,\"created_at\":\"2026-11-27T16:00:00Z\","                      \
	"\"refund_line_items\":[{\"id\":601,\"line_item_id\":9,\"quantity\":4,"                    \
	"\"restock_type\":\"cancel\",\"location_id\":655441491,\"line_item\":{\"sku\":\"MUG\"}},"  \
	"{\"id\":602,\"line_item_id\":10,\"quantity\":2,\"restock_type\":\"no_restock\","          \
	"\"line_item\":{\"sku\":\"TEE\"}}]}"

Test(gateway_shopify, a_cancelled_orders_refunds_give_its_units_back_as_refunds_create_does)
{
	/* Line 12 has no refund (an older API version's cancellation): the line's RETURN. */
	int count = read_topic("orders/cancelled",
	                       "{\"id\":5,\"created_at\":\"2026-11-27T14:00:00Z\",\"line_items\":["
	                       "{\"id\":9,\"sku\":\"MUG\",\"quantity\":4},"
	                       "{\"id\":10,\"sku\":\"TEE\",\"quantity\":2},"
	                       "{\"id\":12,\"sku\":\"CAP\",\"quantity\":1}],"
	                       "\"refunds\":[" CANCEL_REFUND "]}");
	cr_assert_eq(count, 4, "%s", error);
	struct gateway_action cancelled[4];
	memcpy(cancelled, actions, sizeof(cancelled));
	cr_assert_eq(cancelled[0].kind, GATEWAY_CANCEL_SALE);
	cr_assert_str_eq(cancelled[0].line, "9");
	cr_assert_eq(cancelled[0].quantity, 4);
	cr_assert_eq(cancelled[1].kind, GATEWAY_CANCEL_SALE);
	cr_assert_str_eq(cancelled[1].line, "10");
	cr_assert_eq(cancelled[2].kind, GATEWAY_CANCEL);
	cr_assert_str_eq(cancelled[2].line, "12");
	cr_assert_eq(cancelled[3].kind, GATEWAY_RESTOCK);
	cr_assert_str_eq(cancelled[3].refund, "600");
	cr_assert_str_eq(cancelled[3].refund_line, "601");
	cr_assert_eq(cancelled[3].quantity, 4);
	/* The line's SALE is the order's (same key), so a cancellation arriving first sells
	 * it; orders/create's SALE is the same action but for its kind. */
	cr_assert_eq(read_topic("orders/create",
	                        "{\"id\":5,\"created_at\":\"2026-11-27T14:00:00Z\",\"line_items\":["
	                        "{\"id\":9,\"sku\":\"MUG\",\"quantity\":4}]}"),
	             1, "%s", error);
	struct gateway_action sale = cancelled[0];
	sale.kind = GATEWAY_SALE;
	cr_assert_eq(memcmp(&actions[0], &sale, sizeof(sale)), 0);
	/* refunds/create: the very action (and so the same events and keys). */
	cr_assert_eq(read_topic("refunds/create", CANCEL_REFUND), 1, "%s", error);
	cr_assert_eq(memcmp(&actions[0], &cancelled[3], sizeof(actions[0])), 0,
	             "orders/cancelled's restock differs from refunds/create's");
	cr_assert(skuld_u128_equal(gateway_key("shop", &actions[0], "restock"),
	                           gateway_key("shop", &cancelled[3], "restock")));
	/* A refund in the order's refunds may leave out order_id; one naming another order is
	 * not this order's. */
	cr_assert_eq(
	        read_topic("orders/cancelled",
	                   "{\"id\":5,\"line_items\":[{\"id\":9,\"sku\":\"MUG\",\"quantity\":4}],"
	                   "\"refunds\":[{\"id\":600,\"refund_line_items\":[{\"id\":601,"
	                   "\"line_item_id\":9,\"quantity\":4,\"restock_type\":\"cancel\","
	                   "\"line_item\":{\"sku\":\"MUG\"}}]}]}"),
	        2, "%s", error);
	cr_assert_str_eq(actions[1].order, "5");
	cr_assert_eq(
	        read_topic("orders/cancelled",
	                   "{\"id\":5,\"line_items\":[],\"refunds\":[{\"id\":600,\"order_id\":6,"
	                   "\"refund_line_items\":[]}]}"),
	        -1);
	cr_assert_eq(read_topic("orders/cancelled", "{\"id\":5,\"line_items\":[],\"refunds\":{}}"),
	             -1);
}

/* The same cancelled order read back (and polled): the same actions as its webhooks'. */
#define CANCELLED_REFUNDED_ORDER                                                                   \
	"{\"data\":{\"order\":{\"id\":\"gid://shopify/Order/5\",\"legacyResourceId\":\"5\","       \
	"\"createdAt\":\"2026-11-27T14:00:00Z\",\"updatedAt\":\"2026-11-27T16:00:00Z\","           \
	"\"cancelledAt\":\"2026-11-27T16:00:00Z\",\"sourceName\":\"web\","                         \
	"\"physicalLocation\":null,\"lineItems\":{\"pageInfo\":{\"hasNextPage\":false},\"nodes\":" \
	"["                                                                                        \
	"{\"id\":\"gid://shopify/LineItem/9\",\"sku\":\"MUG\",\"quantity\":4},"                    \
	"{\"id\":\"gid://shopify/LineItem/10\",\"sku\":\"TEE\",\"quantity\":2},"                   \
	"{\"id\":\"gid://shopify/LineItem/12\",\"sku\":\"CAP\",\"quantity\":1}]},"                 \
	"\"refunds\":[{\"id\":\"gid://shopify/Refund/600\",\"legacyResourceId\":\"600\","          \
	"\"createdAt\":\"2026-11-27T16:00:00Z\",\"refundLineItems\":{\"pageInfo\":{"               \
	"\"hasNextPage\":false},\"nodes\":[{\"id\":\"gid://shopify/RefundLineItem/601\","          \
	"\"quantity\":4,\"restockType\":\"CANCEL\",\"location\":{\"id\":"                          \
	"\"gid://shopify/Location/655441491\"},\"lineItem\":{\"id\":\"gid://shopify/LineItem/9\"," \
	"\"sku\":\"MUG\"}},{\"id\":\"gid://shopify/RefundLineItem/602\",\"quantity\":2,"           \
	"\"restockType\":\"NO_RESTOCK\",\"location\":null,\"lineItem\":{\"id\":"                   \
	"\"gid://shopify/LineItem/10\",\"sku\":\"TEE\"}}]},\"return\":null}]}}}"

Test(gateway_shopify, a_cancelled_order_read_back_gives_its_units_back_through_its_refunds)
{
	cr_assert_eq(read_topic("orders/cancelled",
	                        "{\"id\":5,\"created_at\":\"2026-11-27T14:00:00Z\",\"line_items\":["
	                        "{\"id\":9,\"sku\":\"MUG\",\"quantity\":4},"
	                        "{\"id\":10,\"sku\":\"TEE\",\"quantity\":2},"
	                        "{\"id\":12,\"sku\":\"CAP\",\"quantity\":1}],"
	                        "\"refunds\":[" CANCEL_REFUND "]}"),
	             4, "%s", error);
	struct gateway_action webhook[4];
	memcpy(webhook, actions, sizeof(webhook));
	cr_assert_eq(read_order(CANCELLED_REFUNDED_ORDER), 4, "%s", error);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(memcmp(&actions[i], &webhook[i], sizeof(actions[0])), 0,
		             "read-back action %d differs from orders/cancelled's", i);
}
