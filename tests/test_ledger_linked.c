/*
 * test_ledger_linked.c — LINKED chains: all or nothing. A failing chain
 * leaves nothing behind (counters, holds, counts, transfers, catalog,
 * idempotency keys); LINKED_OPEN; CHAIN_TOO_LONG.
 */
#include "ledger_helpers.h"

static void link_all(struct skuld_event *events, uint32_t count)
{
	for (uint32_t i = 0; i + 1 < count; i++)
		events[i].flags |= SKULD_EVENT_LINKED;
}

Test(ledger_linked, exchange_return_plus_sale)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 2, 1, 1);
	struct skuld_event events[2] = {ev_stock(SKULD_RETURN, 1, 1, 1),
	                                ev_stock(SKULD_SALE, 2, 1, 1)};
	link_all(events, 2);
	struct skuld_result results[2];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 2, results);
	cr_assert_eq(results[0].status, SKULD_OK);
	cr_assert_eq(results[1].status, SKULD_OK);
	cr_assert_eq(results[1].index, 1);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 1);
	cr_assert_eq(helper_level(ledger, 2, 1).on_hand, 0);
	ledger_destroy(ledger);
}

Test(ledger_linked, failing_chain_leaves_nothing_behind)
{
	struct ledger *ledger = helper_ledger();
	helper_define_item(ledger, 10, 1);
	helper_component(ledger, 10, 1, 1);
	helper_receive(ledger, 1, 1, 5);
	helper_receive(ledger, 2, 1, 5);
	helper_ok(ledger, ev_reserve(50, 1, 1, 1, 60));
	helper_ok(ledger, ev_stock(SKULD_COUNT_OPEN, 3, 2, 0));
	uint64_t before = ledger_hash(ledger);

	struct skuld_event events[12];
	uint32_t n = 0;
	events[n++] = ev_reserve(1, 1, 1, 2, 60);       /* new hold */
	events[n++] = ev_reserve(2, 10, 1, 1, 60);      /* bundle: freezes it */
	events[n++] = ev_hold(SKULD_COMMIT, 50);        /* closes a hold */
	events[n++] = ev_stock(SKULD_RECEIVE, 4, 3, 7); /* creates a stock entry */
	events[n++] = ev_stock(SKULD_SALE, 2, 1, 1);
	struct skuld_event extend = ev_hold(SKULD_EXTEND, 1); /* timer update */
	extend.ttl_s = 3000;
	events[n++] = extend;
	struct skuld_event close = ev_stock(SKULD_COUNT_CLOSE, 3, 2, 0); /* deletes a count */
	events[n++] = close;
	struct skuld_event out = ev_stock(SKULD_TRANSFER_OUT, 2, 1, 1);
	out.target = 2;
	out.id = 9;
	events[n++] = out;
	struct skuld_event define = ev_code(SKULD_ITEM_DEFINE, "NEW");
	define.item = 30;
	events[n++] = define;
	struct skuld_event pool = ev_code(SKULD_CHANNEL_DEFINE, "web");
	pool.channel = 1;
	events[n++] = pool;
	events[n++] = ev_reserve(3, 2, 1, 100, 60); /* fails: INSUFFICIENT */
	events[n++] = ev_stock(SKULD_RECEIVE, 1, 1, 1);
	link_all(events, n);
	struct skuld_result results[12];
	ledger_apply(ledger, HELPER_T0 + HELPER_S, LEDGER_SOURCE_CLIENT, events, n, results);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t expect = i == 10 ? SKULD_INSUFFICIENT : SKULD_LINKED_FAILED;
		cr_assert_eq(results[i].status, expect, "event %u: %u", i, results[i].status);
		cr_assert_eq(results[i].index, i);
		cr_assert_eq(results[i].quantity, 0);
	}
	/* Only the batch time moved; put it back to compare the rest. */
	cr_assert_eq(helper_level(ledger, 1, 1).reserved, 1);
	cr_assert_eq(helper_level(ledger, 1, 1).committed, 0);
	cr_assert_eq(helper_level(ledger, 2, 1).on_hand, 5);
	cr_assert_eq(ledger_holds_open(ledger), 1);
	struct ledger_hold_info hold;
	cr_assert_eq(ledger_hold(ledger, 1, &hold), SKULD_HOLD_UNKNOWN);
	cr_assert_eq(ledger_hold(ledger, 50, &hold), SKULD_OK);
	cr_assert_eq(hold.state, LEDGER_HOLD_OPEN);
	uint64_t due[4];
	cr_assert_eq(ledger_expire_due(ledger, HELPER_T0 + 3600 * HELPER_S, 4, due), 1);
	cr_assert_eq(due[0], 50);
	/* The bundle is not frozen: a component can still be added. */
	helper_define_item(ledger, 11, 0);
	struct skuld_event component = ev(SKULD_BUNDLE_COMPONENT);
	component.item = 10;
	component.target = 11;
	component.quantity = 1;
	cr_assert_eq(helper_status(ledger, component), SKULD_OK);
	helper_receive(ledger, 11, 1, 1);
	/* Keys are gone too: the same events evaluate afresh. */
	events[10] = ev_reserve(3, 2, 1, 1, 60);
	events[10].flags |= SKULD_EVENT_LINKED;
	ledger_apply(ledger, HELPER_T0 + HELPER_S, LEDGER_SOURCE_CLIENT, events, n, results);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: %u", i, results[i].status);
		cr_assert_eq(results[i].flags & SKULD_RESULT_REPLAYED, 0);
	}
	cr_assert_eq(helper_level(ledger, 4, 3).on_hand, 7);
	cr_assert_neq(ledger_hash(ledger), before);
	ledger_destroy(ledger);
}

Test(ledger_linked, rolled_back_chain_hashes_like_never_applied)
{
	struct ledger *a = helper_ledger();
	struct ledger *b = helper_ledger();
	struct skuld_result result;
	struct skuld_event receive = ev_stock(SKULD_RECEIVE, 1, 1, 3);
	ledger_apply(a, HELPER_T0, LEDGER_SOURCE_CLIENT, &receive, 1, &result);
	ledger_apply(b, HELPER_T0, LEDGER_SOURCE_CLIENT, &receive, 1, &result);
	struct skuld_event events[4] = {ev_reserve(1, 1, 1, 1, 60),
	                                ev_stock(SKULD_RECEIVE, 2, 2, 4), ev_hold(SKULD_RELEASE, 1),
	                                ev_stock(SKULD_SALE, 9, 1, 1)};
	link_all(events, 4);
	struct skuld_result results[4];
	ledger_apply(a, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 4, results);
	cr_assert_eq(results[3].status, SKULD_ITEM_UNKNOWN);
	cr_assert_eq(ledger_hash(a), ledger_hash(b));
	ledger_destroy(a);
	ledger_destroy(b);
}

Test(ledger_linked, open_chain_at_end_of_batch)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event events[4] = {
	        ev_stock(SKULD_RECEIVE, 1, 1, 1), ev_stock(SKULD_RECEIVE, 1, 1, 2),
	        ev_stock(SKULD_RECEIVE, 1, 1, 4), ev_stock(SKULD_RECEIVE, 1, 1, 8)};
	events[1].flags = SKULD_EVENT_LINKED;
	events[2].flags = SKULD_EVENT_LINKED;
	events[3].flags = SKULD_EVENT_LINKED;
	struct skuld_result results[4];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 4, results);
	cr_assert_eq(results[0].status, SKULD_OK);
	for (uint32_t i = 1; i < 4; i++)
		cr_assert_eq(results[i].status, SKULD_LINKED_OPEN);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 1);
	ledger_destroy(ledger);
}

Test(ledger_linked, chain_too_long)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.chain_events_max = 2;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_item(ledger, 1, 0);
	helper_define_location(ledger, 1);
	struct skuld_event events[5] = {
	        ev_stock(SKULD_RECEIVE, 1, 1, 1), ev_stock(SKULD_RECEIVE, 1, 1, 2),
	        ev_stock(SKULD_RECEIVE, 1, 1, 4), ev_stock(SKULD_RECEIVE, 1, 1, 8),
	        ev_stock(SKULD_RECEIVE, 1, 1, 16)};
	link_all(events, 3);
	events[3].flags = SKULD_EVENT_LINKED;
	struct skuld_result results[5];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 5, results);
	cr_assert_eq(results[0].status, SKULD_CHAIN_TOO_LONG);
	cr_assert_eq(results[1].status, SKULD_LINKED_FAILED);
	cr_assert_eq(results[2].status, SKULD_LINKED_FAILED);
	cr_assert_eq(results[3].status, SKULD_OK);
	cr_assert_eq(results[4].status, SKULD_OK);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 24);
	ledger_destroy(ledger);
}

/* The undo journal is sized for the worst event; fill a maximal chain with
 * the heaviest events (bundles of the most components) and roll it back. */
Test(ledger_linked, longest_chain_of_widest_bundles_rolls_back)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.bundle_components_max = 64;
	config.chain_events_max = 24;
	struct ledger *ledger = helper_ledger_config(&config);
	helper_define_location(ledger, 1);
	helper_define_location(ledger, 2);
	helper_define_item(ledger, 100, 1);
	for (uint32_t id = 1; id <= 64; id++) {
		helper_define_item(ledger, id, 0);
		helper_component(ledger, 100, id, 2);
		helper_receive(ledger, id, 1, 1000);
	}
	struct skuld_event count_open = ev_stock(SKULD_COUNT_OPEN, 5, 1, 0);
	count_open.occurred_at = HELPER_T0 + 100 * HELPER_S;
	helper_ok(ledger, count_open);
	uint64_t before = ledger_hash(ledger);
	struct skuld_event events[24];
	for (uint32_t i = 0; i < 23; i++) {
		switch (i % 6) {
		case 0:
			events[i] = ev_reserve(1000 + i, 100, 1, 1, 60);
			break;
		case 1:
			events[i] = ev_hold(SKULD_COMMIT, 1000 + i - 1);
			break;
		case 2:
			events[i] = ev_stock(SKULD_SALE, 100, 1, 1);
			events[i].occurred_at = HELPER_T0; /* lowers the open count */
			break;
		case 3:
			events[i] = ev_stock(SKULD_RETURN, 100, 2, 1);
			events[i].reason = SKULD_DISPOSITION_DAMAGED;
			break;
		case 4:
			events[i] = ev_stock(SKULD_FULFILL, 100, 1, 1);
			break;
		default:
			events[i] = ev_reserve(1000 + i, 100, 1, 2, 60);
			break;
		}
		events[i].flags |= SKULD_EVENT_LINKED;
	}
	events[23] = ev_stock(SKULD_SALE, 100, 9, 1); /* unknown location */
	struct skuld_result results[24];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 24, results);
	for (uint32_t i = 0; i < 23; i++)
		cr_assert_eq(results[i].status, SKULD_LINKED_FAILED, "event %u", i);
	cr_assert_eq(results[23].status, SKULD_LOCATION_UNKNOWN);
	cr_assert_eq(ledger_hash(ledger), before);
	/* The same chain without the bad event applies in full. */
	events[22].flags &= (uint16_t)~SKULD_EVENT_LINKED;
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, events, 23, results);
	for (uint32_t i = 0; i < 23; i++)
		cr_assert_eq(results[i].status, SKULD_OK, "event %u: %u", i, results[i].status);
	struct ledger_level level = helper_level(ledger, 7, 1);
	cr_assert_eq(level.on_hand, 1000 - 4 * 2 - 4 * 2, "4 sales, 4 fulfilments of 2 each");
	cr_assert_eq(level.reserved, 3 * 2 * 2, "3 open holds of 2 bundles");
	cr_assert_eq(level.committed, 0, "4 commits, 4 fulfilments");
	cr_assert_eq(helper_level(ledger, 7, 2).damaged, 4 * 2);
	ledger_destroy(ledger);
}
