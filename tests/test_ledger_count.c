/*
 * test_ledger_count.c — COUNT_OPEN / COUNT_CLOSE and a count racing a sale:
 * sales before the count's moment are never taken off twice.
 */
#include "ledger_helpers.h"

static struct skuld_event ev_count(uint16_t kind, uint32_t item, uint32_t location, uint64_t id,
                                   int64_t quantity, uint64_t occurred_at)
{
	struct skuld_event event = ev_stock(kind, item, location, quantity);
	event.id = id;
	event.occurred_at = occurred_at;
	return event;
}

static struct skuld_event ev_sale_at(uint32_t item, uint32_t location, int64_t quantity,
                                     uint64_t occurred_at)
{
	struct skuld_event event = ev_stock(SKULD_SALE, item, location, quantity);
	event.occurred_at = occurred_at;
	return event;
}

#define T(s) (HELPER_T0 + (uint64_t)(s)*HELPER_S)

Test(ledger_count, count_applies_counted_minus_expected)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 10);
	struct skuld_result result =
	        helper_apply(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 5, 0, T(0)));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, 10, "expected balance");
	result = helper_apply(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 5, 7, 0));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, -3);
	cr_assert_eq(result.flags, SKULD_RESULT_DISCREPANCY);
	struct ledger_level level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.on_hand, 7);
	cr_assert_eq(level.counted_at, T(0));
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 6, 0, T(1)));
	result = helper_apply(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 6, 9, 0));
	cr_assert_eq(result.quantity, 2);
	cr_assert_eq(result.flags, 0);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 9);
	ledger_destroy(ledger);
}

Test(ledger_count, count_errors)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.counts_max = 1;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_item(ledger, 1, 0);
	helper_define_item(ledger, 2, 0);
	helper_define_item(ledger, 10, 1);
	helper_define_location(ledger, 1);
	cr_assert_eq(helper_status(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 5, 1, 0)),
	             SKULD_COUNT_UNKNOWN);
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 5, 0, 0));
	cr_assert_eq(helper_status(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 6, 0, 0)),
	             SKULD_COUNT_EXISTS);
	cr_assert_eq(helper_status(ledger, ev_count(SKULD_COUNT_OPEN, 2, 1, 6, 0, 0)),
	             SKULD_CATALOG_FULL);
	cr_assert_eq(helper_status(ledger, ev_count(SKULD_COUNT_OPEN, 10, 1, 6, 0, 0)),
	             SKULD_BUNDLE_NOT_STOCKED);
	cr_assert_eq(helper_status(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 6, 1, 0)),
	             SKULD_COUNT_UNKNOWN, "wrong id");
	cr_assert_eq(helper_status(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 5, -1, 0)),
	             SKULD_QUANTITY_INVALID);
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 5, 0, 0));
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 2, 1, 6, 0, 0));
	ledger_destroy(ledger);
}

/* Shelf: 10 units. An offline till sold 2 at T(5); the shelf was counted
 * at T(10) (8 there); the till posts its sale after the close. */
Test(ledger_count, sale_before_count_arrives_after_close)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 10);
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 1, 0, T(10)));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 1, 8, 0));
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 8);
	struct skuld_result result = helper_apply(ledger, ev_sale_at(1, 1, 2, T(5)));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_PRE_COUNT);
	cr_assert_eq(result.available, 8);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 8, "not taken off twice");
	/* A sale after the count's moment applies normally. */
	result = helper_apply(ledger, ev_sale_at(1, 1, 1, T(10)));
	cr_assert_eq(result.flags, 0);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 7);
	ledger_destroy(ledger);
}

/* The same sale arriving while the count is still open. */
Test(ledger_count, sale_before_count_arrives_while_open)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 10);
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 1, 0, T(10)));
	struct skuld_result result = helper_apply(ledger, ev_sale_at(1, 1, 2, T(5)));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, 0);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 8);
	/* A sale after the count's moment during the count: not in the count. */
	helper_ok(ledger, ev_sale_at(1, 1, 1, T(12)));
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 7);
	result = helper_apply(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 1, 8, 0));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, 0, "expected was lowered to 8");
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 7);
	ledger_destroy(ledger);
}

Test(ledger_count, bundle_sale_with_one_counted_component)
{
	struct ledger *ledger = helper_ledger();
	helper_define_item(ledger, 10, 1);
	helper_component(ledger, 10, 1, 1);
	helper_component(ledger, 10, 2, 1);
	helper_receive(ledger, 1, 1, 5);
	helper_receive(ledger, 2, 1, 5);
	helper_ok(ledger, ev_count(SKULD_COUNT_OPEN, 1, 1, 1, 0, T(10)));
	helper_ok(ledger, ev_count(SKULD_COUNT_CLOSE, 1, 1, 1, 4, 0));
	struct skuld_result result = helper_apply(ledger, ev_sale_at(10, 1, 1, T(5)));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_PRE_COUNT | SKULD_RESULT_EXPANDED);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 4, "counted component untouched");
	cr_assert_eq(helper_level(ledger, 2, 1).on_hand, 4);
	ledger_destroy(ledger);
}
