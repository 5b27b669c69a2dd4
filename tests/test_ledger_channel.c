/*
 * test_ledger_channel.c — channel pools: the deterministic location choice
 * of a channel hold (largest spare above the floor, ties to the lowest id),
 * floors, overlapping pools, channel quantities of items and bundles
 * (components spread over two stores make no kit).
 */
#include "ledger_helpers.h"

static struct skuld_event ev_channel_reserve(uint64_t hold, uint32_t item, uint32_t channel,
                                             int64_t quantity)
{
	struct skuld_event event = ev_reserve(hold, item, 0, quantity, 600);
	event.channel = channel;
	return event;
}

static int64_t channel_quantity(struct ledger *ledger, uint32_t channel, uint32_t item)
{
	int64_t quantity = -1;
	cr_assert_eq(ledger_channel_quantity(ledger, channel, item, &quantity), SKULD_OK);
	return quantity;
}

Test(ledger_channel, choice_is_largest_spare_above_floor)
{
	struct ledger *ledger = helper_ledger();
	helper_channel(ledger, 1, "web", 0);
	helper_pool(ledger, 1, 1, 0);
	helper_pool(ledger, 1, 2, 5);
	helper_pool(ledger, 1, 3, 0);
	helper_receive(ledger, 1, 1, 4);
	helper_receive(ledger, 1, 2, 10); /* spare 5 */
	helper_receive(ledger, 1, 3, 5);  /* spare 5: ties with 2, 2 wins */
	struct skuld_result result = helper_apply(ledger, ev_channel_reserve(1, 1, 1, 2));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.location, 2);
	cr_assert_eq(result.available, 8);
	/* Now 3 has spare 5, 2 has 3, 1 has 4. */
	result = helper_apply(ledger, ev_channel_reserve(2, 1, 1, 5));
	cr_assert_eq(result.location, 3);
	/* 1: 4, 2: 3, 3: 0. A hold of 4 only fits at 1. */
	result = helper_apply(ledger, ev_channel_reserve(3, 1, 1, 4));
	cr_assert_eq(result.location, 1);
	/* Only location 2 has anything above its floor: 3; 4 never fits. */
	cr_assert_eq(helper_status(ledger, ev_channel_reserve(4, 1, 1, 4)), SKULD_INSUFFICIENT);
	cr_assert_eq(helper_level(ledger, 1, 2).available, 8, "floor of 5 kept");
	struct ledger_hold_info hold;
	cr_assert_eq(ledger_hold(ledger, 2, &hold), SKULD_OK);
	cr_assert_eq(hold.location, 3);
	cr_assert_eq(hold.channel, 1);
	/* The channel publishes sum(max(0, available - floor)) = 0 + 3 + 0. */
	cr_assert_eq(channel_quantity(ledger, 1, 1), 3);
	ledger_destroy(ledger);
}

Test(ledger_channel, reserve_errors)
{
	struct ledger *ledger = helper_ledger();
	helper_channel(ledger, 1, "web", 0);
	cr_assert_eq(helper_status(ledger, ev_channel_reserve(1, 1, 5, 1)), SKULD_CHANNEL_UNKNOWN);
	struct skuld_event both = ev_channel_reserve(1, 1, 1, 1);
	both.location = 1;
	cr_assert_eq(helper_status(ledger, both), SKULD_LOCATION_MISMATCH);
	cr_assert_eq(helper_status(ledger, ev_channel_reserve(1, 1, 1, 1)), SKULD_INSUFFICIENT,
	             "empty pool");
	ledger_destroy(ledger);
}

Test(ledger_channel, not_selling_locations_are_skipped)
{
	struct ledger *ledger = helper_ledger();
	helper_channel(ledger, 1, "web", 0);
	helper_pool(ledger, 1, 1, 0);
	helper_pool(ledger, 1, 2, 0);
	helper_receive(ledger, 1, 1, 2);
	helper_receive(ledger, 1, 2, 9);
	helper_set_state(ledger, 2, SKULD_LIFECYCLE_NOT_SELLING);
	cr_assert_eq(channel_quantity(ledger, 1, 1), 2);
	struct skuld_result result = helper_apply(ledger, ev_channel_reserve(1, 1, 1, 1));
	cr_assert_eq(result.location, 1);
	cr_assert_eq(helper_status(ledger, ev_channel_reserve(2, 1, 1, 2)), SKULD_INSUFFICIENT);
	ledger_destroy(ledger);
}

Test(ledger_channel, overlapping_pools_share_stock)
{
	struct ledger *ledger = helper_ledger();
	helper_channel(ledger, 1, "shopify", 0);
	helper_channel(ledger, 2, "amazon", 1);
	helper_pool(ledger, 1, 1, 0);
	helper_pool(ledger, 1, 2, 0);
	helper_pool(ledger, 2, 2, 0);
	helper_pool(ledger, 2, 3, 0);
	helper_receive(ledger, 1, 1, 3);
	helper_receive(ledger, 1, 2, 5);
	helper_receive(ledger, 1, 3, 1);
	cr_assert_eq(channel_quantity(ledger, 1, 1), 8);
	cr_assert_eq(channel_quantity(ledger, 2, 1), 5, "6 - buffer 1");
	/* Amazon takes 4 at location 2 (largest spare); both channels see it. */
	struct skuld_result result = helper_apply(ledger, ev_channel_reserve(1, 1, 2, 4));
	cr_assert_eq(result.location, 2);
	cr_assert_eq(channel_quantity(ledger, 1, 1), 4);
	cr_assert_eq(channel_quantity(ledger, 2, 1), 1);
	/* Shopify now picks location 1 (3 > 1). */
	result = helper_apply(ledger, ev_channel_reserve(2, 1, 1, 2));
	cr_assert_eq(result.location, 1);
	cr_assert_eq(channel_quantity(ledger, 2, 1), 1);
	/* Reallocate the amazon hold: not in its pool at 1; fine at 3 only if
	 * it fits (1 < 4). */
	struct skuld_event move = ev_hold(SKULD_REALLOCATE, 1);
	move.target = 1;
	cr_assert_eq(helper_status(ledger, move), SKULD_LOCATION_MISMATCH);
	move.target = 3;
	cr_assert_eq(helper_status(ledger, move), SKULD_INSUFFICIENT);
	helper_receive(ledger, 1, 3, 3);
	move.key.lo += 1000000;
	result = helper_apply(ledger, move);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.location, 3);
	cr_assert_eq(helper_level(ledger, 1, 2).reserved, 0);
	cr_assert_eq(helper_level(ledger, 1, 3).reserved, 4);
	ledger_destroy(ledger);
}

Test(ledger_channel, bundle_kits_are_counted_per_location)
{
	struct ledger *ledger = helper_ledger();
	helper_define_item(ledger, 10, 1);
	helper_component(ledger, 10, 1, 1); /* a frame */
	helper_component(ledger, 10, 2, 2); /* two wheels */
	helper_channel(ledger, 1, "web", 0);
	helper_pool(ledger, 1, 1, 0);
	helper_pool(ledger, 1, 2, 0);
	/* Frames only at 1, wheels only at 2: no kit anywhere. */
	helper_receive(ledger, 1, 1, 5);
	helper_receive(ledger, 2, 2, 10);
	cr_assert_eq(channel_quantity(ledger, 1, 10), 0);
	cr_assert_eq(channel_quantity(ledger, 1, 1), 5);
	cr_assert_eq(channel_quantity(ledger, 1, 2), 10);
	cr_assert_eq(helper_status(ledger, ev_channel_reserve(1, 10, 1, 1)), SKULD_INSUFFICIENT);
	/* 3 wheels at 1: one kit there (floor(3/2) = 1). */
	helper_receive(ledger, 2, 1, 3);
	cr_assert_eq(ledger_available(ledger, 10, 1), 1);
	cr_assert_eq(channel_quantity(ledger, 1, 10), 1);
	struct skuld_result result = helper_apply(ledger, ev_channel_reserve(1, 10, 1, 1));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.location, 1);
	cr_assert_eq(result.flags, SKULD_RESULT_EXPANDED);
	cr_assert_eq(result.available, 0);
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 1);
	cr_assert_eq(helper_level(ledger, 2, 1).reserved, 2);
	cr_assert_eq(channel_quantity(ledger, 1, 10), 0);
	/* Commit and fulfil the bundle: components leave exactly. */
	helper_ok(ledger, ev_hold(SKULD_COMMIT, 1));
	cr_assert_eq(helper_level(ledger, 2, 1).committed, 2);
	helper_ok(ledger, ev_stock(SKULD_FULFILL, 10, 1, 1));
	struct ledger_level wheels = helper_level(ledger, 2, 1);
	cr_assert_eq(wheels.on_hand, 1);
	cr_assert_eq(wheels.committed, 0);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 4);
	ledger_destroy(ledger);
}
