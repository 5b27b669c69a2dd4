/*
 * test_ledger_hash.c — state hash determinism: the same batches into two
 * ledgers give the same hash; one different event gives another.
 */
#include "ledger_helpers.h"

/* A deterministic mixed workload of n batches; variant changes one event. */
static void workload(struct ledger *ledger, uint32_t batches, int variant)
{
	uint64_t seed = 42;
	for (uint32_t batch = 0; batch < batches; batch++) {
		struct skuld_event events[64];
		struct skuld_result results[64];
		for (uint32_t i = 0; i < 64; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t r = (uint32_t)(seed >> 33);
			uint32_t item = 1 + r % 8;
			uint32_t location = 1 + (r >> 4) % 4;
			uint64_t hold = 1 + (r >> 8) % 200;
			switch (r % 7) {
			case 0:
				events[i] =
				        ev_stock(SKULD_RECEIVE, item, location, 1 + (r >> 12) % 9);
				break;
			case 1:
				events[i] = ev_stock(SKULD_SALE, item, location, 1 + (r >> 12) % 3);
				break;
			case 2:
			case 3:
				events[i] = ev_reserve(hold, item, location, 1 + (r >> 12) % 3,
				                       1 + (r >> 16) % 120);
				break;
			case 4:
				events[i] = ev_hold(SKULD_COMMIT, hold);
				break;
			case 5:
				events[i] = ev_hold(SKULD_RELEASE, hold);
				break;
			default:
				events[i] = ev_stock(SKULD_RECEIVE, item, location, 1);
				events[i].flags = SKULD_EVENT_LINKED;
				break;
			}
			events[i].key.lo = seed;
		}
		events[63].flags = 0;
		events[9].flags = 0;
		if (variant && batch == batches / 2) {
			skuld_u128 key = events[10].key;
			events[10] = ev_stock(SKULD_RECEIVE, 1, 1, 7);
			events[10].key = key;
		}
		uint64_t now = HELPER_T0 + (uint64_t)batch * 10 * HELPER_S;
		ledger_apply(ledger, now, LEDGER_SOURCE_CLIENT, events, 64, results);
		uint64_t due[16];
		uint32_t found = ledger_expire_due(ledger, now, 16, due);
		struct skuld_event expire[16];
		for (uint32_t i = 0; i < found; i++)
			expire[i] = ev_hold(SKULD_EXPIRE, due[i]);
		ledger_apply(ledger, now, LEDGER_SOURCE_SERVER, expire, found, results);
		for (uint32_t i = 0; i < found; i++)
			cr_assert_eq(results[i].status, SKULD_OK);
	}
}

Test(ledger_hash, same_batches_same_hash)
{
	struct ledger *a = helper_ledger();
	struct ledger *b = helper_ledger();
	cr_assert_eq(ledger_hash(a), ledger_hash(b));
	workload(a, 200, 0);
	workload(b, 200, 0);
	cr_assert_eq(ledger_hash(a), ledger_hash(b));
	struct ledger *c = helper_ledger();
	workload(c, 200, 1);
	cr_assert_neq(ledger_hash(a), ledger_hash(c));
	ledger_destroy(a);
	ledger_destroy(b);
	ledger_destroy(c);
}

Test(ledger_hash, every_kind_of_state_changes_the_hash)
{
	struct ledger *ledger = helper_ledger();
	uint64_t seen[8];
	uint32_t n = 0;
	seen[n++] = ledger_hash(ledger);
	helper_receive(ledger, 1, 1, 5);
	seen[n++] = ledger_hash(ledger);
	helper_ok(ledger, ev_reserve(1, 1, 1, 1, 60));
	seen[n++] = ledger_hash(ledger);
	helper_ok(ledger, ev_stock(SKULD_COUNT_OPEN, 1, 1, 0));
	seen[n++] = ledger_hash(ledger);
	helper_channel(ledger, 1, "web", 0);
	seen[n++] = ledger_hash(ledger);
	struct skuld_event attribute = ev_code(SKULD_ATTRIBUTE_SET, "size=S");
	attribute.item = 1;
	helper_ok(ledger, attribute);
	seen[n++] = ledger_hash(ledger);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			cr_assert_neq(seen[i], seen[j], "%u vs %u", i, j);
	ledger_destroy(ledger);
}

Test(ledger_hash, invariant_reserved_equals_open_holds)
{
	struct ledger *ledger = helper_ledger();
	workload(ledger, 100, 0);
	for (uint32_t item = 1; item <= 8; item++) {
		for (uint32_t location = 1; location <= 4; location++) {
			int64_t held = 0;
			for (uint64_t id = 1; id <= 200; id++) {
				struct ledger_hold_info hold;
				if (ledger_hold(ledger, id, &hold) == SKULD_OK &&
				    hold.state == LEDGER_HOLD_OPEN && hold.item == item &&
				    hold.location == location)
					held += hold.remaining;
			}
			cr_assert_eq(helper_level(ledger, item, location).reserved, held);
		}
	}
	ledger_destroy(ledger);
}
