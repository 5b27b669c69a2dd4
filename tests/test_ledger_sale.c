/*
 * test_ledger_sale.c — SALE (a fact: discrepancy, negative on_hand, late
 * sales at closed stores), bundles whose component is also sold alone,
 * FULFILL, and RETURN with every disposition and expected returns.
 */
#include "ledger_helpers.h"

Test(ledger_sale, sale_is_a_fact_and_flags_discrepancy)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 2);
	struct skuld_result result = helper_apply(ledger, ev_stock(SKULD_SALE, 1, 1, 1));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, 0);
	cr_assert_eq(result.available, 1);
	result = helper_apply(ledger, ev_stock(SKULD_SALE, 1, 1, 3));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_DISCREPANCY);
	cr_assert_eq(result.available, -2);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, -2);
	/* Reserved stock counts: available 0 with a hold means a discrepancy. */
	helper_receive(ledger, 1, 2, 1);
	helper_ok(ledger, ev_reserve(1, 1, 2, 1, 60));
	result = helper_apply(ledger, ev_stock(SKULD_SALE, 1, 2, 1));
	cr_assert_eq(result.flags, SKULD_RESULT_DISCREPANCY);
	cr_assert_eq(result.available, -1);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_SALE, 1, 1, 0)), SKULD_QUANTITY_INVALID);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_SALE, 9, 1, 1)), SKULD_ITEM_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_SALE, 1, 9, 1)), SKULD_LOCATION_UNKNOWN);
	ledger_destroy(ledger);
}

Test(ledger_sale, late_sale_at_closed_store)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 3, 5);
	helper_set_state(ledger, 3, SKULD_LIFECYCLE_NOT_SELLING);
	struct skuld_result result = helper_apply(ledger, ev_stock(SKULD_SALE, 1, 3, 1));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_LATE);
	helper_set_state(ledger, 3, SKULD_LIFECYCLE_CLOSED);
	result = helper_apply(ledger, ev_stock(SKULD_SALE, 1, 3, 5));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_LATE | SKULD_RESULT_DISCREPANCY);
	cr_assert_eq(helper_level(ledger, 1, 3).on_hand, -1);
	ledger_destroy(ledger);
}

Test(ledger_sale, bundle_whose_component_is_also_sold_alone)
{
	struct ledger *ledger = helper_ledger();
	helper_define_item(ledger, 10, 1);
	helper_component(ledger, 10, 1, 1); /* shampoo */
	helper_component(ledger, 10, 2, 1); /* conditioner */
	helper_receive(ledger, 1, 1, 3);
	helper_receive(ledger, 2, 1, 5);
	cr_assert_eq(ledger_available(ledger, 10, 1), 3);
	/* Shampoo sold alone lowers the kits. */
	helper_ok(ledger, ev_stock(SKULD_SALE, 1, 1, 2));
	cr_assert_eq(ledger_available(ledger, 10, 1), 1);
	/* A hold on the bundle holds its components. */
	struct skuld_result result = helper_apply(ledger, ev_reserve(1, 10, 1, 1, 60));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_EXPANDED);
	cr_assert_eq(helper_level(ledger, 1, 1).available, 0);
	cr_assert_eq(helper_level(ledger, 2, 1).available, 4);
	cr_assert_eq(helper_status(ledger, ev_reserve(2, 10, 1, 1, 60)), SKULD_INSUFFICIENT);
	cr_assert_eq(helper_status(ledger, ev_reserve(2, 1, 1, 1, 60)), SKULD_INSUFFICIENT,
	             "the held shampoo is not sold alone");
	helper_ok(ledger, ev_reserve(3, 2, 1, 2, 60));
	/* A bundle sale at the till with too little: recorded, flagged. */
	result = helper_apply(ledger, ev_stock(SKULD_SALE, 10, 1, 1));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_DISCREPANCY | SKULD_RESULT_EXPANDED);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 0);
	cr_assert_eq(helper_level(ledger, 2, 1).on_hand, 4);
	/* Return of the bundle reverses exactly its expansion. */
	struct skuld_event back = ev_stock(SKULD_RETURN, 10, 1, 1);
	result = helper_apply(ledger, back);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, SKULD_RESULT_EXPANDED);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 1);
	cr_assert_eq(helper_level(ledger, 2, 1).on_hand, 5);
	struct ledger_level level;
	cr_assert_eq(ledger_level(ledger, 10, 1, &level), SKULD_BUNDLE_NOT_STOCKED);
	ledger_destroy(ledger);
}

Test(ledger_sale, bundle_quantity_overflow)
{
	struct ledger *ledger = helper_ledger();
	helper_define_item(ledger, 10, 1);
	helper_component(ledger, 10, 1, 1000);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_SALE, 10, 1, LEDGER_QUANTITY_MAX / 100)),
	             SKULD_QUANTITY_INVALID);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 0);
	ledger_destroy(ledger);
}

Test(ledger_sale, returns_with_disposition_and_expected)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event event = ev_stock(SKULD_RETURN, 1, 2, 3);
	event.reason = SKULD_DISPOSITION_RESTOCK;
	helper_ok(ledger, event);
	event = ev_stock(SKULD_RETURN, 1, 2, 2);
	event.reason = SKULD_DISPOSITION_DAMAGED;
	helper_ok(ledger, event);
	event = ev_stock(SKULD_RETURN, 1, 2, 1);
	event.reason = SKULD_DISPOSITION_QUARANTINE;
	struct skuld_result result = helper_apply(ledger, event);
	cr_assert_eq(result.available, 3);
	struct ledger_level level = helper_level(ledger, 1, 2);
	cr_assert_eq(level.on_hand, 6);
	cr_assert_eq(level.damaged, 2);
	cr_assert_eq(level.quarantine, 1);
	cr_assert_eq(level.available, 3);
	/* Refunded before the parcel is back: incoming, then a RECEIVE. */
	event = ev_stock(SKULD_RETURN, 1, 2, 4);
	event.flags = SKULD_EVENT_EXPECTED;
	helper_ok(ledger, event);
	level = helper_level(ledger, 1, 2);
	cr_assert_eq(level.incoming, 4);
	cr_assert_eq(level.on_hand, 6);
	struct skuld_event arrive = ev_stock(SKULD_RECEIVE, 1, 2, 4);
	arrive.flags = SKULD_EVENT_FROM_INCOMING;
	helper_ok(ledger, arrive);
	level = helper_level(ledger, 1, 2);
	cr_assert_eq(level.incoming, 0);
	cr_assert_eq(level.on_hand, 10);
	event = ev_stock(SKULD_RETURN, 1, 2, 1);
	event.reason = 3;
	cr_assert_eq(helper_status(ledger, event), SKULD_INVALID_STATE);
	helper_set_state(ledger, 4, SKULD_LIFECYCLE_CLOSED);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RETURN, 1, 4, 1)), SKULD_LOCATION_CLOSED);
	ledger_destroy(ledger);
}
