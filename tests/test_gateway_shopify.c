/*
 * test_gateway_shopify.c — Shopify webhooks as skuld-gateway reads them
 * (channels/gateway_shopify.c): the signature against a value computed
 * elsewhere (Python's hmac), the actions of each topic, the keys they get,
 * and bodies that are not what Shopify sends.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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
