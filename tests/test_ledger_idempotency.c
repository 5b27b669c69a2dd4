/*
 * test_ledger_idempotency.c — the key window: a repeated key returns the
 * original result and changes nothing; the same key with other bytes is
 * KEY_REUSED; failures are not remembered; the window expires; KEYS_FULL.
 */
#include "ledger_helpers.h"

Test(ledger_idempotency, repeated_key_returns_original_result)
{
	struct ledger *ledger = helper_ledger();
	helper_channel(ledger, 1, "web", 0);
	helper_pool(ledger, 1, 1, 0);
	helper_pool(ledger, 1, 2, 0);
	helper_receive(ledger, 1, 2, 3);
	struct skuld_event reserve = ev_reserve(1, 1, 0, 2, 60);
	reserve.channel = 1;
	struct skuld_result first = helper_apply(ledger, reserve);
	cr_assert_eq(first.status, SKULD_OK);
	cr_assert_eq(first.location, 2);
	helper_receive(ledger, 1, 1, 100);
	uint64_t hash = ledger_hash(ledger);
	/* A re-delivered webhook, in a batch of its own at a later index. */
	struct skuld_event events[2] = {ev_stock(SKULD_RECEIVE, 3, 3, 1), reserve};
	struct skuld_result results[2];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events + 1, 1, results);
	cr_assert_eq(results[0].status, SKULD_OK);
	cr_assert_eq(results[0].flags, SKULD_RESULT_REPLAYED);
	cr_assert_eq(results[0].location, 2, "the original choice, not today's");
	cr_assert_eq(results[0].available, first.available);
	cr_assert_eq(ledger_hash(ledger), hash);
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 2, results);
	cr_assert_eq(results[1].index, 1);
	cr_assert_eq(results[1].flags, SKULD_RESULT_REPLAYED);
	cr_assert_eq(helper_level(ledger, 1, 2).reserved, 2);
	/* Same key, other bytes. */
	reserve.quantity = 1;
	cr_assert_eq(helper_status(ledger, reserve), SKULD_KEY_REUSED);
	ledger_destroy(ledger);
}

Test(ledger_idempotency, failures_are_not_remembered)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event reserve = ev_reserve(1, 1, 1, 2, 60);
	cr_assert_eq(helper_status(ledger, reserve), SKULD_INSUFFICIENT);
	helper_receive(ledger, 1, 1, 2);
	struct skuld_result result = helper_apply(ledger, reserve);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, 0);
	ledger_destroy(ledger);
}

Test(ledger_idempotency, window_expires_and_fills)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.keys_max = 4;
	config.key_window_ns = 100 * HELPER_S;
	struct ledger *ledger = helper_ledger_config(&config);
	struct skuld_event item = ev_code(SKULD_ITEM_DEFINE, "A");
	item.item = 1;
	struct skuld_event location = ev_code(SKULD_LOCATION_DEFINE, "L");
	location.location = 1;
	helper_apply_at(ledger, HELPER_T0, item);
	helper_apply_at(ledger, HELPER_T0, location);
	struct skuld_event receive = ev_stock(SKULD_RECEIVE, 1, 1, 1);
	cr_assert_eq(helper_apply_at(ledger, HELPER_T0 + 10 * HELPER_S, receive).status, SKULD_OK);
	helper_apply_at(ledger, HELPER_T0 + 20 * HELPER_S, ev_stock(SKULD_RECEIVE, 1, 1, 1));
	struct skuld_result result = helper_apply_at(ledger, HELPER_T0 + 20 * HELPER_S,
	                                             ev_stock(SKULD_RECEIVE, 1, 1, 1));
	cr_assert_eq(result.status, SKULD_KEYS_FULL);
	/* Server events need no key. */
	struct skuld_event server = ev_stock(SKULD_RECEIVE, 1, 1, 1);
	ledger_apply(ledger, HELPER_T0 + 20 * HELPER_S, LEDGER_SOURCE_SERVER, &server, 1, &result);
	cr_assert_eq(result.status, SKULD_OK);
	/* At T0 + 100 s the two catalog keys expire. */
	result = helper_apply_at(ledger, HELPER_T0 + 100 * HELPER_S,
	                         ev_stock(SKULD_RECEIVE, 1, 1, 1));
	cr_assert_eq(result.status, SKULD_OK);
	result = helper_apply_at(ledger, HELPER_T0 + 100 * HELPER_S, receive);
	cr_assert_eq(result.flags, SKULD_RESULT_REPLAYED, "still in the window");
	result = helper_apply_at(ledger, HELPER_T0 + 110 * HELPER_S, receive);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.flags, 0, "forgotten: applied again");
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 5);
	/* A batch time going backwards is clamped to the latest one. */
	result = helper_apply_at(ledger, HELPER_T0, receive);
	cr_assert_eq(result.flags, SKULD_RESULT_REPLAYED);
	ledger_destroy(ledger);
}

Test(ledger_idempotency, duplicate_key_within_one_batch)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event receive = ev_stock(SKULD_RECEIVE, 1, 1, 3);
	struct skuld_event events[2] = {receive, receive};
	struct skuld_result results[2];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 2, results);
	cr_assert_eq(results[0].flags, 0);
	cr_assert_eq(results[1].flags, SKULD_RESULT_REPLAYED);
	cr_assert_eq(results[1].index, 1);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 3);
	ledger_destroy(ledger);
}
