/*
 * test_ledger_holds.c — RESERVE at a location, EXTEND, COMMIT (full,
 * partial, after expiry), RELEASE, REALLOCATE, EXPIRE and the timer:
 * expiry racing a commit, a full hold table, a hold id used twice, and every
 * hold error code.
 */
#include "ledger_helpers.h"

static struct skuld_result server_apply(struct ledger *ledger, uint64_t now,
                                        struct skuld_event event)
{
	struct skuld_result result;
	ledger_apply(ledger, now, LEDGER_SOURCE_SERVER, &event, 1, &result);
	return result;
}

Test(ledger_holds, reserve_commit_fulfill)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 10);
	struct skuld_result result = helper_apply(ledger, ev_reserve(77, 1, 1, 4, 600));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.location, 1);
	cr_assert_eq(result.quantity, 4);
	cr_assert_eq(result.available, 6);
	struct ledger_level level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.reserved, 4);
	cr_assert_eq(ledger_holds_open(ledger), 1);
	struct ledger_hold_info hold;
	cr_assert_eq(ledger_hold(ledger, 77, &hold), SKULD_OK);
	cr_assert_eq(hold.expires_at_ns, HELPER_T0 + 600 * HELPER_S);
	cr_assert_eq(hold.state, LEDGER_HOLD_OPEN);

	struct skuld_event commit = ev_hold(SKULD_COMMIT, 77);
	commit.quantity = 1;
	result = helper_apply(ledger, commit);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, 1);
	level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.reserved, 3);
	cr_assert_eq(level.committed, 1);
	cr_assert_eq(level.available, 6);
	commit = ev_hold(SKULD_COMMIT, 77);
	commit.quantity = 4;
	cr_assert_eq(helper_status(ledger, commit), SKULD_QUANTITY_EXCEEDS);
	commit.quantity = -1;
	cr_assert_eq(helper_status(ledger, commit), SKULD_QUANTITY_INVALID);
	commit.quantity = 0; /* the rest */
	result = helper_apply(ledger, commit);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, 3);
	cr_assert_eq(ledger_hold(ledger, 77, &hold), SKULD_OK);
	cr_assert_eq(hold.state, LEDGER_HOLD_COMMITTED);
	cr_assert_eq(ledger_holds_open(ledger), 0);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_COMMIT, 77)), SKULD_HOLD_CLOSED);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_RELEASE, 77)), SKULD_HOLD_CLOSED);

	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_FULFILL, 1, 1, 5)),
	             SKULD_QUANTITY_EXCEEDS);
	helper_ok(ledger, ev_stock(SKULD_FULFILL, 1, 1, 4));
	level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.on_hand, 6);
	cr_assert_eq(level.committed, 0);
	cr_assert_eq(level.reserved, 0);
	cr_assert_eq(level.available, 6);
	ledger_destroy(ledger);
}

Test(ledger_holds, reserve_errors_in_order)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.holds_max = 2;
	config.ttl_max_s = 3600;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_item(ledger, 1, 0);
	helper_define_location(ledger, 1);
	helper_define_location(ledger, 2);
	helper_receive(ledger, 1, 1, 5);
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 9, 1, 1, 60)), SKULD_ITEM_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 1, 9, 1, 60)), SKULD_LOCATION_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 1, 1, 0, 60)), SKULD_QUANTITY_INVALID);
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 1, 1, 1, 0)), SKULD_TTL_INVALID);
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 1, 1, 1, 3601)), SKULD_TTL_INVALID);
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 1, 1, 6, 60)), SKULD_INSUFFICIENT);
	helper_ok(ledger, ev_reserve(1, 1, 1, 1, 60));
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 1, 1, 1, 60)), SKULD_HOLD_EXISTS);
	helper_ok(ledger, ev_reserve(2, 1, 1, 1, 60));
	/* The table is full: a third hold is refused even with stock there. */
	cr_assert_eq(helper_status(ledger, ev_reserve(3, 1, 1, 1, 60)), SKULD_HOLDS_FULL);
	helper_ok(ledger, ev_hold(SKULD_RELEASE, 2));
	helper_ok(ledger, ev_reserve(3, 1, 1, 1, 60));
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 2);
	helper_set_state(ledger, 2, SKULD_LIFECYCLE_NOT_SELLING);
	helper_ok(ledger, ev_hold(SKULD_RELEASE, 3));
	cr_assert_eq(helper_status(ledger, ev_reserve(4, 1, 2, 1, 60)), SKULD_LOCATION_NOT_SELLING);
	helper_set_state(ledger, 2, SKULD_LIFECYCLE_CLOSED);
	cr_assert_eq(helper_status(ledger, ev_reserve(4, 1, 2, 1, 60)), SKULD_LOCATION_CLOSED);
	ledger_destroy(ledger);
}

Test(ledger_holds, extend_release_reallocate)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 5);
	helper_receive(ledger, 1, 2, 2);
	helper_ok(ledger, ev_reserve(5, 1, 1, 3, 60));
	struct skuld_event extend = ev_hold(SKULD_EXTEND, 5);
	extend.ttl_s = 0;
	cr_assert_eq(helper_status(ledger, extend), SKULD_TTL_INVALID);
	extend.ttl_s = 7200;
	struct skuld_result result = helper_apply_at(ledger, HELPER_T0 + 30 * HELPER_S, extend);
	cr_assert_eq(result.status, SKULD_OK);
	struct ledger_hold_info hold;
	ledger_hold(ledger, 5, &hold);
	cr_assert_eq(hold.expires_at_ns, HELPER_T0 + 7230 * HELPER_S);

	struct skuld_event move = ev_hold(SKULD_REALLOCATE, 5);
	move.target = 1;
	cr_assert_eq(helper_status(ledger, move), SKULD_SAME_LOCATION);
	move.target = 9;
	cr_assert_eq(helper_status(ledger, move), SKULD_LOCATION_UNKNOWN);
	move.target = 2;
	cr_assert_eq(helper_status(ledger, move), SKULD_INSUFFICIENT, "only 2 at location 2");
	helper_receive(ledger, 1, 2, 1);
	result = helper_apply(ledger, move);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.location, 2);
	cr_assert_eq(result.available, 0);
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 0);
	cr_assert_eq(helper_level(ledger, 1, 2).reserved, 3);

	result = helper_apply(ledger, ev_hold(SKULD_RELEASE, 5));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, 3);
	cr_assert_eq(result.location, 2);
	cr_assert_eq(helper_level(ledger, 1, 2).reserved, 0);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_RELEASE, 6)), SKULD_HOLD_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_EXTEND, 6)), SKULD_HOLD_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_COMMIT, 6)), SKULD_HOLD_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_REALLOCATE, 6)), SKULD_HOLD_UNKNOWN);
	extend = ev_hold(SKULD_EXTEND, 5);
	extend.ttl_s = 10;
	cr_assert_eq(helper_status(ledger, extend), SKULD_HOLD_CLOSED);
	ledger_destroy(ledger);
}

Test(ledger_holds, expire_is_server_only_and_due_only)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 5);
	helper_ok(ledger, ev_reserve(9, 1, 1, 2, 60));
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_EXPIRE, 9)), SKULD_SERVER_ONLY);
	cr_assert_eq(
	        server_apply(ledger, HELPER_T0 + 59 * HELPER_S, ev_hold(SKULD_EXPIRE, 9)).status,
	        SKULD_HOLD_NOT_DUE);
	struct skuld_result result =
	        server_apply(ledger, HELPER_T0 + 60 * HELPER_S, ev_hold(SKULD_EXPIRE, 9));
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, 2);
	cr_assert_eq(result.available, 5);
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 0);
	cr_assert_eq(
	        server_apply(ledger, HELPER_T0 + 61 * HELPER_S, ev_hold(SKULD_EXPIRE, 9)).status,
	        SKULD_HOLD_EXPIRED);
	cr_assert_eq(
	        server_apply(ledger, HELPER_T0 + 61 * HELPER_S, ev_hold(SKULD_EXPIRE, 8)).status,
	        SKULD_HOLD_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_RELEASE, 9)), SKULD_HOLD_EXPIRED);
	cr_assert_eq(helper_status(ledger, ev_hold(SKULD_COMMIT, 9)), SKULD_HOLD_EXPIRED);
	ledger_destroy(ledger);
}

Test(ledger_holds, expiry_racing_a_commit)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 5);
	helper_ok(ledger, ev_reserve(1, 1, 1, 2, 60));
	helper_ok(ledger, ev_reserve(2, 1, 1, 2, 60));
	uint64_t late = HELPER_T0 + 60 * HELPER_S;
	/* Past due, EXPIRE not yet applied: a plain commit is refused and
	 * changes nothing; with AFTER_EXPIRY it takes the still-held stock. */
	cr_assert_eq(helper_apply_at(ledger, late, ev_hold(SKULD_COMMIT, 1)).status,
	             SKULD_HOLD_EXPIRED);
	struct skuld_event extend = ev_hold(SKULD_EXTEND, 1);
	extend.ttl_s = 60;
	cr_assert_eq(helper_apply_at(ledger, late, extend).status, SKULD_HOLD_EXPIRED);
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 4);
	struct skuld_event commit = ev_hold(SKULD_COMMIT, 1);
	commit.flags = SKULD_EVENT_AFTER_EXPIRY;
	struct skuld_result result = helper_apply_at(ledger, late, commit);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.quantity, 2);
	/* Hold 2 expires first; then a paid order arrives. */
	uint64_t due[4];
	cr_assert_eq(ledger_expire_due(ledger, late, 4, due), 1);
	cr_assert_eq(due[0], 2);
	cr_assert_eq(server_apply(ledger, late, ev_hold(SKULD_EXPIRE, 2)).status, SKULD_OK);
	cr_assert_eq(ledger_expire_due(ledger, late, 4, due), 0);
	struct ledger_level level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.reserved, 0);
	cr_assert_eq(level.committed, 2);
	cr_assert_eq(level.available, 3);
	/* Someone else takes 2 of the 3 left; the late commit of 2 fails. */
	helper_ok(ledger, ev_stock(SKULD_SALE, 1, 1, 2));
	commit = ev_hold(SKULD_COMMIT, 2);
	commit.flags = SKULD_EVENT_AFTER_EXPIRY;
	cr_assert_eq(helper_apply_at(ledger, late, commit).status, SKULD_INSUFFICIENT);
	/* A partial one of 1 sells, and the rest stays committable. */
	commit.quantity = 1;
	commit.key.lo += 1000000;
	result = helper_apply_at(ledger, late, commit);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(result.available, 0);
	struct ledger_hold_info hold;
	ledger_hold(ledger, 2, &hold);
	cr_assert_eq(hold.state, LEDGER_HOLD_EXPIRED);
	cr_assert_eq(hold.remaining, 1);
	level = helper_level(ledger, 1, 1);
	cr_assert_eq(level.committed, 3);
	cr_assert_eq(level.on_hand, 3);
	helper_receive(ledger, 1, 1, 1);
	commit.quantity = 0;
	commit.key.lo += 1000000;
	cr_assert_eq(helper_apply_at(ledger, late, commit).status, SKULD_OK);
	ledger_hold(ledger, 2, &hold);
	cr_assert_eq(hold.state, LEDGER_HOLD_COMMITTED);
	cr_assert_eq(helper_apply_at(ledger, late, ev_hold(SKULD_COMMIT, 2)).status,
	             SKULD_HOLD_CLOSED);
	ledger_destroy(ledger);
}

Test(ledger_holds, expire_due_in_order_and_bounded)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 100);
	const uint32_t ttls[] = {50, 10, 30, 10, 40, 20, 90};
	for (uint32_t i = 0; i < 7; i++)
		helper_ok(ledger, ev_reserve(100 + i, 1, 1, 1, ttls[i]));
	uint64_t due[8];
	cr_assert_eq(ledger_expire_due(ledger, HELPER_T0 + 9 * HELPER_S, 8, due), 0);
	cr_assert_eq(ledger_expire_due(ledger, HELPER_T0 + 40 * HELPER_S, 8, due), 5);
	const uint64_t expect[] = {101, 103, 105, 102, 104};
	for (uint32_t i = 0; i < 5; i++)
		cr_assert_eq(due[i], expect[i], "position %u", i);
	cr_assert_eq(ledger_expire_due(ledger, HELPER_T0 + 40 * HELPER_S, 3, due), 3);
	cr_assert_eq(due[2], 105);
	struct skuld_event events[3];
	for (uint32_t i = 0; i < 3; i++)
		events[i] = ev_hold(SKULD_EXPIRE, due[i]);
	struct skuld_result results[3];
	ledger_apply(ledger, HELPER_T0 + 40 * HELPER_S, LEDGER_SOURCE_SERVER, events, 3, results);
	for (uint32_t i = 0; i < 3; i++)
		cr_assert_eq(results[i].status, SKULD_OK);
	cr_assert_eq(ledger_expire_due(ledger, HELPER_T0 + 1000 * HELPER_S, 8, due), 4);
	cr_assert_eq(due[0], 102);
	cr_assert_eq(due[3], 106);
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 4);
	ledger_destroy(ledger);
}

Test(ledger_holds, closed_holds_forgotten_after_grace)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.closed_hold_grace_ns = 100 * HELPER_S;
	config.closed_holds_max = 2;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_item(ledger, 1, 0);
	helper_define_location(ledger, 1);
	helper_receive(ledger, 1, 1, 10);
	helper_ok(ledger, ev_reserve(1, 1, 1, 1, 60));
	helper_ok(ledger, ev_hold(SKULD_RELEASE, 1));
	cr_assert_eq(helper_status(ledger, ev_reserve(1, 1, 1, 1, 60)), SKULD_HOLD_EXISTS);
	struct ledger_hold_info hold;
	cr_assert_eq(helper_apply_at(ledger, HELPER_T0 + 99 * HELPER_S, ev_hold(SKULD_RELEASE, 1))
	                     .status,
	             SKULD_HOLD_CLOSED);
	cr_assert_eq(helper_apply_at(ledger, HELPER_T0 + 100 * HELPER_S, ev_hold(SKULD_RELEASE, 1))
	                     .status,
	             SKULD_HOLD_UNKNOWN);
	cr_assert_eq(ledger_hold(ledger, 1, &hold), SKULD_HOLD_UNKNOWN);
	/* More than closed_holds_max closed: the oldest is forgotten at the
	 * start of the next batch. */
	uint64_t now = HELPER_T0 + 200 * HELPER_S;
	for (uint64_t id = 10; id < 13; id++) {
		helper_apply_at(ledger, now, ev_reserve(id, 1, 1, 1, 60));
		helper_apply_at(ledger, now, ev_hold(SKULD_RELEASE, id));
	}
	helper_apply_at(ledger, now, ev_stock(SKULD_RECEIVE, 1, 1, 1));
	cr_assert_eq(ledger_hold(ledger, 10, &hold), SKULD_HOLD_UNKNOWN);
	cr_assert_eq(ledger_hold(ledger, 11, &hold), SKULD_OK);
	cr_assert_eq(hold.state, LEDGER_HOLD_RELEASED);
	cr_assert_eq(ledger_hold(ledger, 12, &hold), SKULD_OK);
	ledger_destroy(ledger);
}

Test(ledger_holds, hold_table_full_under_churn)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.holds_max = 64;
	config.closed_holds_max = 16;
	config.batch_events_max = 256;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_item(ledger, 1, 0);
	helper_define_location(ledger, 1);
	helper_receive(ledger, 1, 1, 1000);
	/* Reserve and release in batches; the closed ring wraps many times. */
	uint64_t id = 1;
	for (uint32_t round = 0; round < 50; round++) {
		struct skuld_event events[128];
		struct skuld_result results[128];
		for (uint32_t i = 0; i < 64; i++)
			events[i] = ev_reserve(id + i, 1, 1, 1, 60);
		events[64] = ev_reserve(id + 64, 1, 1, 1, 60);
		for (uint32_t i = 0; i < 63; i++)
			events[65 + i] = ev_hold(SKULD_RELEASE, id + i);
		ledger_apply(ledger, HELPER_T0 + round, LEDGER_SOURCE_CLIENT, events, 128, results);
		for (uint32_t i = 0; i < 64; i++)
			cr_assert_eq(results[i].status, SKULD_OK);
		cr_assert_eq(results[64].status, SKULD_HOLDS_FULL);
		for (uint32_t i = 65; i < 128; i++)
			cr_assert_eq(results[i].status, SKULD_OK);
		struct skuld_event last = ev_hold(SKULD_RELEASE, id + 63);
		cr_assert_eq(helper_apply_at(ledger, HELPER_T0 + round, last).status, SKULD_OK);
		cr_assert_eq(ledger_holds_open(ledger), 0);
		id += 100;
	}
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 0);
	ledger_destroy(ledger);
}
