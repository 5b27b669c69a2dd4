/*
 * test_ledger_stock.c — RECEIVE, ADJUST, INCOMING and MOVE: counters,
 * results and every error code of these kinds (docs/LEDGER.md section 5).
 */
#include "ledger_helpers.h"

Test(ledger_stock, receive_adds_on_hand_and_reports_available)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_result result = helper_apply(ledger, ev_stock(SKULD_RECEIVE, 1, 2, 10));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.index, 0);
	cr_assert_eq(result.location, 2);
	cr_assert_eq(result.quantity, 10);
	cr_assert_eq(result.available, 10);
	struct ledger_level level = helper_level(ledger, 1, 2);
	cr_assert_eq(level.on_hand, 10);
	cr_assert_eq(level.available, 10);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 0);
	ledger_destroy(ledger);
}

Test(ledger_stock, receive_from_incoming_lowers_incoming_not_below_zero)
{
	struct ledger *ledger = helper_ledger();
	helper_ok(ledger, ev_stock(SKULD_INCOMING, 1, 1, 5));
	struct skuld_event event = ev_stock(SKULD_RECEIVE, 1, 1, 7);
	event.flags = SKULD_EVENT_FROM_INCOMING;
	helper_ok(ledger, event);
	struct ledger_level level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.on_hand, 7);
	cr_assert_eq(level.incoming, 0);
	ledger_destroy(ledger);
}

Test(ledger_stock, receive_errors)
{
	struct ledger *ledger = helper_ledger();
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 99, 1, 1)), SKULD_ITEM_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 0, 1, 1)), SKULD_ITEM_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 1, 9, 1)),
	             SKULD_LOCATION_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 1, 1, 0)),
	             SKULD_QUANTITY_INVALID);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 1, 1, -3)),
	             SKULD_QUANTITY_INVALID);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 1, 1, LEDGER_QUANTITY_MAX + 1)),
	             SKULD_QUANTITY_INVALID);
	helper_ok(ledger, ev_stock(SKULD_RECEIVE, 1, 1, LEDGER_QUANTITY_MAX));
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 1, 1, 1)),
	             SKULD_QUANTITY_INVALID, "the counter bound");
	helper_define_item(ledger, 20, 1);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 20, 1, 1)),
	             SKULD_BUNDLE_NOT_STOCKED);
	helper_set_state(ledger, 3, SKULD_LIFECYCLE_CLOSED);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 1, 3, 1)),
	             SKULD_LOCATION_CLOSED);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, LEDGER_QUANTITY_MAX);
	cr_assert_eq(helper_level(ledger, 1, 3).on_hand, 0);
	ledger_destroy(ledger);
}

Test(ledger_stock, adjust_signed_with_reason)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 5);
	struct skuld_event event = ev_stock(SKULD_ADJUST, 1, 1, -2);
	event.reason = SKULD_REASON_THEFT;
	struct skuld_result result = helper_apply(ledger, event);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, -2);
	cr_assert_eq(result.available, 3);
	event = ev_stock(SKULD_ADJUST, 1, 1, -4);
	event.reason = SKULD_REASON_LOSS;
	cr_assert_eq(helper_status(ledger, event), SKULD_QUANTITY_EXCEEDS);
	event = ev_stock(SKULD_ADJUST, 1, 1, 4);
	cr_assert_eq(helper_status(ledger, event), SKULD_INVALID_STATE, "reason NONE");
	event.reason = SKULD_REASON_FOUND;
	event.quantity = 0;
	cr_assert_eq(helper_status(ledger, event), SKULD_QUANTITY_INVALID);
	event.quantity = 4;
	helper_ok(ledger, event);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 7);
	ledger_destroy(ledger);
}

Test(ledger_stock, incoming_signed_never_negative)
{
	struct ledger *ledger = helper_ledger();
	helper_ok(ledger, ev_stock(SKULD_INCOMING, 2, 1, 12));
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_INCOMING, 2, 1, -13)),
	             SKULD_QUANTITY_EXCEEDS);
	helper_ok(ledger, ev_stock(SKULD_INCOMING, 2, 1, -2));
	struct ledger_level level = helper_level(ledger, 2, 1);
	cr_assert_eq(level.incoming, 10);
	cr_assert_eq(level.on_hand, 0);
	cr_assert_eq(level.available, 0);
	helper_set_state(ledger, 1, SKULD_LIFECYCLE_CLOSED);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_INCOMING, 2, 1, 1)),
	             SKULD_LOCATION_CLOSED);
	helper_ok(ledger, ev_stock(SKULD_INCOMING, 2, 1, -10));
	ledger_destroy(ledger);
}

static struct skuld_event ev_move(uint32_t item, uint32_t location, int64_t quantity, uint8_t from,
                                  uint8_t to)
{
	struct skuld_event event = ev_stock(SKULD_MOVE, item, location, quantity);
	event.bucket_from = from;
	event.bucket_to = to;
	return event;
}

Test(ledger_stock, move_between_buckets)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 10);
	struct skuld_result result =
	        helper_apply(ledger, ev_move(1, 1, 3, SKULD_BUCKET_SELLABLE, SKULD_BUCKET_DAMAGED));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.available, 7);
	helper_ok(ledger, ev_move(1, 1, 2, SKULD_BUCKET_DAMAGED, SKULD_BUCKET_QUARANTINE));
	helper_ok(ledger, ev_move(1, 1, 1, SKULD_BUCKET_QUARANTINE, SKULD_BUCKET_SELLABLE));
	struct ledger_level level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.on_hand, 10);
	cr_assert_eq(level.damaged, 1);
	cr_assert_eq(level.quarantine, 1);
	cr_assert_eq(level.available, 8);
	cr_assert_eq(helper_status(ledger,
	                           ev_move(1, 1, 9, SKULD_BUCKET_SELLABLE, SKULD_BUCKET_DAMAGED)),
	             SKULD_INSUFFICIENT);
	cr_assert_eq(helper_status(ledger,
	                           ev_move(1, 1, 2, SKULD_BUCKET_DAMAGED, SKULD_BUCKET_SELLABLE)),
	             SKULD_QUANTITY_EXCEEDS);
	cr_assert_eq(
	        helper_status(ledger, ev_move(1, 1, 1, SKULD_BUCKET_DAMAGED, SKULD_BUCKET_DAMAGED)),
	        SKULD_INVALID_STATE);
	cr_assert_eq(helper_status(ledger, ev_move(1, 1, 1, 3, SKULD_BUCKET_DAMAGED)),
	             SKULD_INVALID_STATE);
	cr_assert_eq(helper_status(ledger,
	                           ev_move(1, 1, 0, SKULD_BUCKET_SELLABLE, SKULD_BUCKET_DAMAGED)),
	             SKULD_QUANTITY_INVALID);
	level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.damaged, 1);
	cr_assert_eq(level.available, 8);
	ledger_destroy(ledger);
}

Test(ledger_stock, stock_table_full)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.stock_max = 2;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_item(ledger, 1, 0);
	helper_define_location(ledger, 1);
	helper_define_location(ledger, 2);
	helper_define_location(ledger, 3);
	helper_receive(ledger, 1, 1, 1);
	helper_receive(ledger, 1, 2, 1);
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_RECEIVE, 1, 3, 1)), SKULD_CATALOG_FULL);
	helper_receive(ledger, 1, 2, 1);
	cr_assert_eq(helper_level(ledger, 1, 2).on_hand, 2);
	ledger_destroy(ledger);
}

Test(ledger_stock, unknown_kind_is_refused)
{
	struct ledger *ledger = helper_ledger();
	cr_assert_eq(helper_status(ledger, ev(200)), SKULD_ERR_EVENT_KIND);
	ledger_destroy(ledger);
}

Test(ledger_stock, config_validation_and_memory)
{
	struct ledger_config config;
	ledger_config_default(&config);
	cr_assert_gt(ledger_memory_bytes(&config), 0);
	config.holds_max = 0;
	struct ledger *ledger = (struct ledger *)1;
	cr_assert_eq(ledger_create(&config, &ledger), -EINVAL);
	cr_assert_null(ledger);
	cr_assert_eq(ledger_memory_bytes(&config), 0);
}
