/*
 * test_gateway_amazon.c — Amazon's Orders API answers as skuld-gateway's
 * Amazon poll reads them (channels/gateway_amazon.c): getOrders pages
 * (merchant-fulfilled or not, the next token, orders that cannot be read),
 * getOrderItems into actions (a sale, a cancellation, the SKU from
 * SellerSKU or the listing map), and the outcomes of 429, 403 and 5xx.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "gateway_amazon.h"

static struct gateway_amazon_page page;
static struct gateway_config config;
static struct gateway_action actions[8];

static void read_orders(long status, const char *body)
{
	gateway_amazon_orders_read(status, body, strlen(body), &page);
}

Test(gateway_amazon, a_page_of_orders_with_its_next_token)
{
	read_orders(200,
	            "{\"payload\":{\"Orders\":["
	            "{\"AmazonOrderId\":\"111-1\",\"OrderStatus\":\"Unshipped\","
	            "\"FulfillmentChannel\":\"MFN\",\"LastUpdateDate\":\"2026-11-27T09:30:00Z\","
	            "\"PurchaseDate\":\"2026-11-27T09:29:00.5Z\"},"
	            "{\"AmazonOrderId\":\"111-2\",\"OrderStatus\":\"Shipped\","
	            "\"FulfillmentChannel\":\"AFN\",\"LastUpdateDate\":\"2026-11-27T09:31:00Z\"},"
	            "{\"OrderStatus\":\"Shipped\"}],"
	            "\"NextToken\":\"abc+/=\"}}");
	cr_assert_eq(page.outcome, GATEWAY_POLL_OK, "%s", page.message);
	cr_assert_eq(page.count, 2);
	cr_assert_eq(page.skipped, 1, "the order without an id");
	cr_assert_str_eq(page.orders[0].id, "111-1");
	cr_assert_eq(page.orders[0].merchant, 1);
	cr_assert_eq(page.orders[0].updated_s, 1795771800ull);
	cr_assert_eq(page.orders[0].purchase_ns, 1795771740500000000ull);
	cr_assert_eq(page.orders[1].merchant, 0, "fulfilled by Amazon");
	cr_assert_str_eq(page.next_token, "abc+/=");
}

Test(gateway_amazon, throttled_refused_and_failed_answers)
{
	read_orders(429,
	            "{\"errors\":[{\"code\":\"QuotaExceeded\",\"message\":\"You exceeded\"}]}");
	cr_assert_eq(page.outcome, GATEWAY_POLL_THROTTLED);
	read_orders(403, "{\"errors\":[{\"code\":\"Unauthorized\"}]}");
	cr_assert_eq(page.outcome, GATEWAY_POLL_AUTH);
	read_orders(503, "oops");
	cr_assert_eq(page.outcome, GATEWAY_POLL_FAILED);
	read_orders(200, "{\"payload\":{}}");
	cr_assert_eq(page.outcome, GATEWAY_POLL_FAILED);
}

static int read_items(const char *status, const char *body, struct gateway_amazon_items *items)
{
	struct gateway_amazon_order order;
	memset(&order, 0, sizeof(order));
	snprintf(order.id, sizeof(order.id), "111-9");
	snprintf(order.status, sizeof(order.status), "%s", status);
	order.merchant = 1;
	order.purchase_ns = 7;
	gateway_amazon_items_read(200, body, strlen(body), &config, &order, actions, 8, items);
	return (int)items->count;
}

Test(gateway_amazon, items_become_sales_or_cancellations_keyed_by_order_and_item)
{
	memset(&config, 0, sizeof(config));
	config.listing_count = 1;
	snprintf(config.listing_object[0], GATEWAY_ID_SIZE, "AMZ-MUG-RED");
	snprintf(config.listing_sku[0], SKULD_CODE_SIZE + 1, "MUG");
	const char body[] =
	        "{\"payload\":{\"AmazonOrderId\":\"111-9\",\"OrderItems\":["
	        "{\"OrderItemId\":\"i1\",\"SellerSKU\":\"AMZ-MUG-RED\",\"QuantityOrdered\":2},"
	        "{\"OrderItemId\":\"i2\",\"SellerSKU\":\"TEE\",\"QuantityOrdered\":1},"
	        "{\"OrderItemId\":\"i3\",\"SellerSKU\":\"TEE\",\"QuantityOrdered\":0},"
	        "{\"OrderItemId\":\"i4\",\"QuantityOrdered\":1}],\"NextToken\":\"n2\"}}";
	struct gateway_amazon_items items;
	cr_assert_eq(read_items("Unshipped", body, &items), 2, "%s", items.message);
	cr_assert_eq(items.outcome, GATEWAY_POLL_OK);
	cr_assert_eq(items.skipped, 1, "the item without a SellerSKU");
	cr_assert_str_eq(items.next_token, "n2");
	cr_assert_eq(actions[0].kind, GATEWAY_SALE);
	cr_assert_str_eq(actions[0].sku, "MUG", "mapped by a listing line");
	cr_assert_str_eq(actions[0].order, "111-9");
	cr_assert_str_eq(actions[0].line, "i1");
	cr_assert_eq(actions[0].quantity, 2);
	cr_assert_eq(actions[0].occurred_at, 7);
	cr_assert_str_eq(actions[1].sku, "TEE", "the SellerSKU itself");
	/* Cancelled: the same lines, the same keys, units back. */
	skuld_u128 sale = gateway_key("amazon", &actions[0], "sale");
	cr_assert_eq(read_items("Canceled", body, &items), 2);
	cr_assert_eq(actions[0].kind, GATEWAY_CANCEL);
	skuld_u128 again = gateway_key("amazon", &actions[0], "sale");
	cr_assert_eq(memcmp(&sale, &again, sizeof(sale)), 0);
}

Test(gateway_amazon, more_items_than_room_fail_rather_than_apply_part)
{
	memset(&config, 0, sizeof(config));
	char body[2048] = "{\"payload\":{\"OrderItems\":[";
	for (int i = 0; i < 9; i++) {
		char item[96];
		snprintf(item, sizeof(item),
		         "%s{\"OrderItemId\":\"i%d\",\"SellerSKU\":\"S\",\"QuantityOrdered\":1}",
		         i > 0 ? "," : "", i);
		strcat(body, item);
	}
	strcat(body, "]}}");
	struct gateway_amazon_items items;
	read_items("Shipped", body, &items);
	cr_assert_eq(items.outcome, GATEWAY_POLL_FAILED);
}
