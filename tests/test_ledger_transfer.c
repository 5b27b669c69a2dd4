/*
 * test_ledger_transfer.c — TRANSFER_OUT / TRANSFER_IN through incoming at the
 * destination, partial arrivals, and every transfer error code.
 */
#include "ledger_helpers.h"

static struct skuld_event ev_out(uint64_t id, uint32_t item, uint32_t from, uint32_t to,
                                 int64_t quantity)
{
	struct skuld_event event = ev_stock(SKULD_TRANSFER_OUT, item, from, quantity);
	event.target = to;
	event.id = id;
	return event;
}

static struct skuld_event ev_in(uint64_t id, uint32_t item, uint32_t to, int64_t quantity)
{
	struct skuld_event event = ev_stock(SKULD_TRANSFER_IN, item, to, quantity);
	event.id = id;
	return event;
}

Test(ledger_transfer, out_then_in_in_two_parts)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 10);
	struct skuld_result result = helper_apply(ledger, ev_out(7, 1, 1, 2, 6));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.location, 1);
	cr_assert_eq(result.available, 4);
	cr_assert_eq(helper_level(ledger, 1, 2).incoming, 6);
	helper_ok(ledger, ev_in(7, 1, 2, 4));
	struct ledger_level level = helper_level(ledger, 1, 2);
	cr_assert_eq(level.on_hand, 4);
	cr_assert_eq(level.incoming, 2);
	cr_assert_eq(helper_status(ledger, ev_in(7, 1, 2, 3)), SKULD_QUANTITY_EXCEEDS);
	helper_ok(ledger, ev_in(7, 1, 2, 2));
	cr_assert_eq(helper_status(ledger, ev_in(7, 1, 2, 1)), SKULD_TRANSFER_UNKNOWN, "complete");
	level = helper_level(ledger, 1, 2);
	cr_assert_eq(level.on_hand, 6);
	cr_assert_eq(level.incoming, 0);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 4);
	ledger_destroy(ledger);
}

Test(ledger_transfer, errors)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 10);
	helper_receive(ledger, 2, 1, 10);
	cr_assert_eq(helper_status(ledger, ev_out(1, 1, 1, 9, 1)), SKULD_LOCATION_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_out(1, 1, 1, 1, 1)), SKULD_SAME_LOCATION);
	cr_assert_eq(helper_status(ledger, ev_out(1, 1, 1, 2, 0)), SKULD_QUANTITY_INVALID);
	cr_assert_eq(helper_status(ledger, ev_out(1, 1, 1, 2, 11)), SKULD_INSUFFICIENT);
	helper_ok(ledger, ev_out(1, 1, 1, 2, 1));
	cr_assert_eq(helper_status(ledger, ev_out(1, 1, 1, 3, 1)), SKULD_TRANSFER_EXISTS);
	helper_ok(ledger, ev_out(1, 2, 1, 3, 1)); /* another line of shipment 1 */
	cr_assert_eq(helper_status(ledger, ev_in(1, 1, 3, 1)), SKULD_LOCATION_MISMATCH);
	cr_assert_eq(helper_status(ledger, ev_in(2, 1, 2, 1)), SKULD_TRANSFER_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_in(1, 3, 2, 1)), SKULD_TRANSFER_UNKNOWN);
	helper_set_state(ledger, 4, SKULD_LIFECYCLE_CLOSED);
	cr_assert_eq(helper_status(ledger, ev_out(5, 1, 1, 4, 1)), SKULD_LOCATION_CLOSED);
	ledger_destroy(ledger);
}
