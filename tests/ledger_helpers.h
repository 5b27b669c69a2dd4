/*
 * ledger_helpers.h — building events and small ledgers for the ledger
 * suites (tests/test_ledger_*.c). Header-only: every suite is its own
 * executable.
 *
 * The standard fixture (helper_ledger) has items 1..8 (SKU "SKU-<id>"),
 * locations 1..4 ("L<id>", ACTIVE) and no channels; batch time starts at
 * HELPER_T0 and each helper_apply advances nothing unless told.
 */
#ifndef SKULD_TESTS_LEDGER_HELPERS_H
#define SKULD_TESTS_LEDGER_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ledger.h"
#include "protocol.h"

#define HELPER_T0 1000000000000000000ull /* 2001-09-09, in ns */
#define HELPER_S  1000000000ull

static uint64_t helper_key_next = 1;

/* An event of kind with a fresh key; other fields zero. */
static inline struct skuld_event ev(uint16_t kind)
{
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.kind = kind;
	event.key.lo = helper_key_next++;
	event.key.hi = 0x5445535400000000ull;
	return event;
}

static inline struct skuld_event ev_stock(uint16_t kind, uint32_t item, uint32_t location,
                                          int64_t quantity)
{
	struct skuld_event event = ev(kind);
	event.item = item;
	event.location = location;
	event.quantity = quantity;
	return event;
}

static inline struct skuld_event ev_code(uint16_t kind, const char *code)
{
	struct skuld_event event = ev(kind);
	size_t size = strlen(code);
	memcpy(event.code, code, size < sizeof(event.code) ? size : sizeof(event.code));
	return event;
}

static inline struct skuld_event ev_reserve(uint64_t hold, uint32_t item, uint32_t location,
                                            int64_t quantity, uint32_t ttl_s)
{
	struct skuld_event event = ev_stock(SKULD_RESERVE, item, location, quantity);
	event.id = hold;
	event.ttl_s = ttl_s;
	return event;
}

static inline struct skuld_event ev_hold(uint16_t kind, uint64_t hold)
{
	struct skuld_event event = ev(kind);
	event.id = hold;
	return event;
}

static inline struct ledger *helper_ledger_config(const struct ledger_config *config)
{
	struct ledger *ledger = NULL;
	cr_assert_eq(ledger_create(config, &ledger), 0);
	cr_assert_not_null(ledger);
	return ledger;
}

/* Applies one client event at time now and returns its result. */
static inline struct skuld_result helper_apply_at(struct ledger *ledger, uint64_t now,
                                                  struct skuld_event event)
{
	struct skuld_result result;
	ledger_apply(ledger, now, LEDGER_SOURCE_CLIENT, &event, 1, &result);
	return result;
}

static inline struct skuld_result helper_apply(struct ledger *ledger, struct skuld_event event)
{
	return helper_apply_at(ledger, HELPER_T0, event);
}

static inline uint32_t helper_status(struct ledger *ledger, struct skuld_event event)
{
	return helper_apply(ledger, event).status;
}

#define helper_ok(ledger, event)                                                                   \
	do {                                                                                       \
		struct skuld_result helper_result_ = helper_apply((ledger), (event));              \
		cr_assert_eq(helper_result_.status, SKULD_OK, "status %u (%s)",                    \
		             helper_result_.status, skuld_status_name(helper_result_.status));     \
	} while (0)

static inline void helper_define_item(struct ledger *ledger, uint32_t id, int bundle)
{
	char code[32];
	snprintf(code, sizeof(code), "SKU-%u", id);
	struct skuld_event event = ev_code(SKULD_ITEM_DEFINE, code);
	event.item = id;
	if (bundle)
		event.flags |= SKULD_EVENT_BUNDLE;
	helper_ok(ledger, event);
}

static inline void helper_define_location(struct ledger *ledger, uint32_t id)
{
	char code[32];
	snprintf(code, sizeof(code), "L%u", id);
	struct skuld_event event = ev_code(SKULD_LOCATION_DEFINE, code);
	event.location = id;
	helper_ok(ledger, event);
}

static inline void helper_set_state(struct ledger *ledger, uint32_t location, uint8_t state)
{
	struct skuld_event event = ev(SKULD_LOCATION_STATE);
	event.location = location;
	event.reason = state;
	helper_ok(ledger, event);
}

static inline void helper_component(struct ledger *ledger, uint32_t bundle, uint32_t part,
                                    int64_t quantity)
{
	struct skuld_event event = ev(SKULD_BUNDLE_COMPONENT);
	event.item = bundle;
	event.target = part;
	event.quantity = quantity;
	helper_ok(ledger, event);
}

static inline void helper_channel(struct ledger *ledger, uint32_t channel, const char *name,
                                  int64_t buffer)
{
	struct skuld_event event = ev_code(SKULD_CHANNEL_DEFINE, name);
	event.channel = channel;
	event.quantity = buffer;
	helper_ok(ledger, event);
}

static inline void helper_pool(struct ledger *ledger, uint32_t channel, uint32_t location,
                               int64_t floor)
{
	struct skuld_event event = ev(SKULD_CHANNEL_POOL);
	event.channel = channel;
	event.location = location;
	event.quantity = floor;
	helper_ok(ledger, event);
}

static inline void helper_receive(struct ledger *ledger, uint32_t item, uint32_t location,
                                  int64_t quantity)
{
	helper_ok(ledger, ev_stock(SKULD_RECEIVE, item, location, quantity));
}

/* The standard fixture: items 1..8, locations 1..4, default config. */
static inline struct ledger *helper_ledger(void)
{
	struct ledger_config config;
	ledger_config_default(&config);
	struct ledger *ledger = helper_ledger_config(&config);
	helper_key_next = 1; /* equal fixtures get equal keys, so equal hashes */
	for (uint32_t id = 1; id <= 8; id++)
		helper_define_item(ledger, id, 0);
	for (uint32_t id = 1; id <= 4; id++)
		helper_define_location(ledger, id);
	return ledger;
}

static inline struct ledger_level helper_level(struct ledger *ledger, uint32_t item,
                                               uint32_t location)
{
	struct ledger_level level;
	cr_assert_eq(ledger_level(ledger, item, location, &level), SKULD_OK);
	return level;
}

#endif /* SKULD_TESTS_LEDGER_HELPERS_H */
