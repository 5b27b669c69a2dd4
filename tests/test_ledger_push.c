/*
 * test_ledger_push.c — listings, push versions and exceptions in the ledger
 * (docs/LEDGER.md section 12): what makes an item dirty and what does not,
 * acknowledgements at old, current and future versions, parking by an
 * exception and unparking by a new listing, channel-wide changes, linked
 * chains that fail, and the push state through a snapshot.
 */
#include <stdlib.h>

#include "ledger_helpers.h"
#include "ledger_snapshot.h"

#define SHOP 1
#define WEB  2

static struct skuld_event ev_listing(uint32_t channel, uint32_t item, const char *text)
{
	struct skuld_event event = ev(SKULD_CHANNEL_LISTING);
	event.channel = channel;
	event.item = item;
	memcpy(event.listing, text, strlen(text));
	return event;
}

static struct skuld_event ev_ack(uint32_t channel, uint32_t item, uint64_t version, int64_t shown)
{
	struct skuld_event event = ev(SKULD_PUSH_ACK);
	event.channel = channel;
	event.item = item;
	event.id = version;
	event.quantity = shown;
	return event;
}

static struct skuld_event ev_exception(uint32_t channel, uint32_t item, uint64_t version,
                                       uint8_t kind, const char *detail)
{
	struct skuld_event event = ev(SKULD_PUSH_EXCEPTION);
	event.channel = channel;
	event.item = item;
	event.id = version;
	event.reason = kind;
	memcpy(event.code, detail, strlen(detail));
	return event;
}

static struct ledger_push_info info_of(struct ledger *ledger, uint32_t channel, uint32_t item)
{
	struct ledger_push_info info;
	cr_assert_eq(ledger_push_item(ledger, channel, item, &info), SKULD_OK);
	return info;
}

/* Dirty items of channel, ascending, into out; returns how many. */
static uint32_t dirty_items(struct ledger *ledger, uint32_t channel, uint32_t *out, uint32_t max)
{
	uint32_t count = 0;
	for (uint32_t item = ledger_push_next(ledger, channel, 0, 1); item != 0;
	     item = ledger_push_next(ledger, channel, item, 1)) {
		cr_assert_lt(count, max);
		out[count++] = item;
	}
	return count;
}

/* Channel SHOP: pool of stores 1 and 2 (not 3); items 1..3 listed. */
static struct ledger *shop_ledger(void)
{
	struct ledger *ledger = helper_ledger();
	helper_channel(ledger, SHOP, "shopify", 0);
	helper_pool(ledger, SHOP, 1, 0);
	helper_pool(ledger, SHOP, 2, 0);
	helper_receive(ledger, 1, 1, 10);
	helper_receive(ledger, 1, 2, 5);
	helper_receive(ledger, 2, 1, 3);
	for (uint32_t item = 1; item <= 3; item++) {
		char text[40];
		snprintf(text, sizeof(text), "4000000%u", item);
		helper_ok(ledger, ev_listing(SHOP, item, text));
	}
	return ledger;
}

/* Acknowledges every dirty item of channel at its version and quantity. */
static void ack_all(struct ledger *ledger, uint32_t channel)
{
	uint32_t items[64];
	uint32_t count = dirty_items(ledger, channel, items, 64);
	for (uint32_t i = 0; i < count; i++) {
		struct ledger_push_info info = info_of(ledger, channel, items[i]);
		helper_ok(ledger, ev_ack(channel, items[i], info.version, info.quantity));
	}
	cr_assert_eq(ledger_push_next(ledger, channel, 0, 1), 0);
}

Test(ledger_push, a_new_listing_is_dirty_with_the_channel_quantity)
{
	struct ledger *ledger = shop_ledger();
	uint32_t items[8];
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	struct ledger_push_info info = info_of(ledger, SHOP, 1);
	cr_assert_eq(info.quantity, 15);
	cr_assert_str_eq(info.listing, "40000001");
	cr_assert(info.version > 0);
	cr_assert_eq(info.accepted, 0);
	cr_assert_eq(info.state, SKULD_PUSH_DIRTY);
	cr_assert_eq(info.dirty_since, HELPER_T0);
	cr_assert_eq(info_of(ledger, SHOP, 2).quantity, 3);
	cr_assert_eq(info_of(ledger, SHOP, 3).quantity, 0);
	/* Unlisted items and unknown channels. */
	struct ledger_push_info none;
	cr_assert_eq(ledger_push_item(ledger, SHOP, 4, &none), SKULD_LISTING_UNKNOWN);
	cr_assert_eq(ledger_push_item(ledger, WEB, 1, &none), SKULD_CHANNEL_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_listing(WEB, 1, "x")), SKULD_CHANNEL_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_listing(SHOP, 99, "x")), SKULD_ITEM_UNKNOWN);
	struct ledger_channel_push_info channel;
	cr_assert_eq(ledger_channel_push(ledger, SHOP, &channel), SKULD_OK);
	cr_assert_eq(channel.mapped, 3);
	cr_assert_eq(channel.dirty, 3);
	cr_assert_eq(channel.oldest_dirty, HELPER_T0);
	ledger_destroy(ledger);
}

Test(ledger_push, an_acknowledgement_at_the_current_version_makes_it_clean)
{
	struct ledger *ledger = shop_ledger();
	struct ledger_push_info before = info_of(ledger, SHOP, 1);
	helper_ok(ledger, ev_ack(SHOP, 1, before.version, 15));
	struct ledger_push_info after = info_of(ledger, SHOP, 1);
	cr_assert_eq(after.state, SKULD_PUSH_SHOWN_KNOWN);
	cr_assert_eq(after.accepted, before.version);
	cr_assert_eq(after.shown, 15);
	cr_assert_eq(after.dirty_since, 0);
	/* A till sale at store 2 makes it dirty again, at a newer version. */
	helper_ok(ledger, ev_stock(SKULD_SALE, 1, 2, 4));
	struct ledger_push_info sold = info_of(ledger, SHOP, 1);
	cr_assert(sold.version > before.version);
	cr_assert_eq(sold.quantity, 11);
	cr_assert_eq(sold.state, SKULD_PUSH_DIRTY | SKULD_PUSH_SHOWN_KNOWN);
	/* The channel took the old value only: shown moves, dirty stays, and
	 * the item now waits from the time of that acknowledgement. */
	helper_apply_at(ledger, HELPER_T0 + 5 * HELPER_S, ev_ack(SHOP, 1, before.version, 15));
	cr_assert_eq(info_of(ledger, SHOP, 1).state, SKULD_PUSH_DIRTY | SKULD_PUSH_SHOWN_KNOWN);
	cr_assert_eq(info_of(ledger, SHOP, 1).dirty_since, HELPER_T0 + 5 * HELPER_S);
	/* A version never offered is refused; so is an unlisted item. */
	cr_assert_eq(helper_status(ledger, ev_ack(SHOP, 1, sold.version + 1, 11)),
	             SKULD_VERSION_INVALID);
	cr_assert_eq(helper_status(ledger, ev_ack(SHOP, 1, 0, 11)), SKULD_VERSION_INVALID);
	cr_assert_eq(helper_status(ledger, ev_ack(SHOP, 4, 1, 0)), SKULD_LISTING_UNKNOWN);
	cr_assert_eq(helper_status(ledger, ev_ack(SHOP, 1, sold.version, -1)),
	             SKULD_QUANTITY_INVALID);
	helper_ok(ledger, ev_ack(SHOP, 1, sold.version, 11));
	cr_assert_eq(info_of(ledger, SHOP, 1).state, SKULD_PUSH_SHOWN_KNOWN);
	struct ledger_channel_push_info channel;
	cr_assert_eq(ledger_channel_push(ledger, SHOP, &channel), SKULD_OK);
	cr_assert_eq(channel.acks, 3);
	cr_assert_eq(channel.last_ack, HELPER_T0 + 5 * HELPER_S);
	cr_assert_eq(channel.dirty, 2);
	ledger_destroy(ledger);
}

Test(ledger_push, only_pool_locations_and_available_changes_dirty_an_item)
{
	struct ledger *ledger = shop_ledger();
	ack_all(ledger, SHOP);
	/* Store 3 is not in the pool. */
	helper_receive(ledger, 1, 3, 7);
	helper_ok(ledger, ev_stock(SKULD_SALE, 1, 3, 1));
	cr_assert_eq(ledger_push_next(ledger, SHOP, 0, 1), 0);
	/* Incoming is not available. */
	helper_ok(ledger, ev_stock(SKULD_INCOMING, 2, 1, 5));
	cr_assert_eq(ledger_push_next(ledger, SHOP, 0, 1), 0);
	/* A hold in the pool is. */
	helper_ok(ledger, ev_reserve(77, 2, 1, 1, 60));
	cr_assert_eq(ledger_push_next(ledger, SHOP, 0, 1), 2);
	cr_assert_eq(info_of(ledger, SHOP, 2).quantity, 2);
	ack_all(ledger, SHOP);
	/* Its expiry gives the unit back: dirty again. */
	uint64_t due[4];
	cr_assert_eq(ledger_expire_due(ledger, HELPER_T0 + 61 * HELPER_S, 4, due), 1);
	struct skuld_event expire = ev_hold(SKULD_EXPIRE, 77);
	struct skuld_result result;
	ledger_apply(ledger, HELPER_T0 + 61 * HELPER_S, LEDGER_SOURCE_SERVER, &expire, 1, &result);
	cr_assert_eq(result.status, SKULD_OK);
	cr_assert_eq(ledger_push_next(ledger, SHOP, 0, 1), 2);
	cr_assert_eq(info_of(ledger, SHOP, 2).quantity, 3);
	cr_assert_eq(info_of(ledger, SHOP, 2).dirty_since, HELPER_T0 + 61 * HELPER_S);
	ledger_destroy(ledger);
}

Test(ledger_push, a_component_sale_dirties_the_bundle)
{
	struct ledger *ledger = shop_ledger();
	helper_define_item(ledger, 9, 1);
	helper_component(ledger, 9, 1, 2);
	helper_component(ledger, 9, 2, 1);
	helper_ok(ledger, ev_listing(SHOP, 9, "kit-9"));
	ack_all(ledger, SHOP);
	/* Kits per store: store 1 min(10/2, 3/1) = 3; store 2 min(5/2, 0) = 0. */
	cr_assert_eq(info_of(ledger, SHOP, 9).quantity, 3);
	helper_ok(ledger, ev_stock(SKULD_SALE, 2, 1, 1));
	uint32_t items[8];
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 2);
	cr_assert_eq(items[0], 2);
	cr_assert_eq(items[1], 9);
	cr_assert_eq(info_of(ledger, SHOP, 9).quantity, 2);
	ack_all(ledger, SHOP);
	/* Selling the kit moves both components: all three are dirty. */
	helper_ok(ledger, ev_stock(SKULD_SALE, 9, 1, 1));
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	cr_assert_eq(info_of(ledger, SHOP, 9).quantity, 1);
	cr_assert_eq(info_of(ledger, SHOP, 1).quantity, 13);
	ledger_destroy(ledger);
}

Test(ledger_push, channel_settings_dirty_every_listing)
{
	struct ledger *ledger = shop_ledger();
	ack_all(ledger, SHOP);
	struct skuld_event cap = ev(SKULD_CHANNEL_CAP);
	cap.channel = SHOP;
	cap.quantity = 4;
	helper_ok(ledger, cap);
	uint32_t items[8];
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	cr_assert_eq(info_of(ledger, SHOP, 1).quantity, 4);
	ack_all(ledger, SHOP);
	/* Store 2 leaves the pool. */
	struct skuld_event retire = ev(SKULD_CHANNEL_POOL);
	retire.channel = SHOP;
	retire.location = 2;
	retire.flags = SKULD_EVENT_RETIRE;
	helper_ok(ledger, retire);
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	ack_all(ledger, SHOP);
	/* A sale there no longer counts. */
	helper_ok(ledger, ev_stock(SKULD_SALE, 1, 2, 1));
	cr_assert_eq(ledger_push_next(ledger, SHOP, 0, 1), 0);
	/* Store 1 stops selling: every listing of the channel is dirty. */
	helper_set_state(ledger, 1, SKULD_LIFECYCLE_NOT_SELLING);
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	cr_assert_eq(info_of(ledger, SHOP, 1).quantity, 0);
	ledger_destroy(ledger);
}

Test(ledger_push, an_exception_parks_the_item_until_its_listing_changes)
{
	struct ledger *ledger = shop_ledger();
	uint64_t version = info_of(ledger, SHOP, 2).version;
	struct skuld_result result = helper_apply_at(
	        ledger, HELPER_T0 + HELPER_S,
	        ev_exception(SHOP, 2, version, SKULD_PUSH_NOT_STOCKED, "not stocked at the store"));
	cr_assert_eq(result.status, SKULD_OK);
	helper_apply_at(ledger, HELPER_T0 + 2 * HELPER_S,
	                ev_exception(SHOP, 2, version, SKULD_PUSH_NOT_STOCKED, "again"));
	struct ledger_push_info info = info_of(ledger, SHOP, 2);
	cr_assert_eq(info.state, SKULD_PUSH_DIRTY | SKULD_PUSH_PARKED);
	cr_assert_eq(info.exception, SKULD_PUSH_NOT_STOCKED);
	cr_assert_eq(info.reports, 2);
	cr_assert_eq(info.first_seen, HELPER_T0 + HELPER_S);
	cr_assert_eq(info.last_seen, HELPER_T0 + 2 * HELPER_S);
	cr_assert_str_eq(info.detail, "again");
	uint32_t items[8];
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 2, "parked: not offered");
	/* Stock changes bump its version but do not offer it. */
	helper_ok(ledger, ev_stock(SKULD_SALE, 2, 1, 1));
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 2);
	cr_assert(info_of(ledger, SHOP, 2).version > version);
	struct ledger_channel_push_info channel;
	cr_assert_eq(ledger_channel_push(ledger, SHOP, &channel), SKULD_OK);
	cr_assert_eq(channel.parked, 1);
	/* A new listing closes the exception and offers the item again. */
	helper_ok(ledger, ev_listing(SHOP, 2, "40000022"));
	info = info_of(ledger, SHOP, 2);
	cr_assert_eq(info.state, SKULD_PUSH_DIRTY);
	cr_assert_eq(info.exception, 0);
	cr_assert_str_eq(info.listing, "40000022");
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	/* Throttling is reported, not parked. */
	helper_ok(ledger, ev_exception(SHOP, 3, 0, SKULD_PUSH_THROTTLING, ""));
	cr_assert_eq(info_of(ledger, SHOP, 3).state, SKULD_PUSH_DIRTY);
	cr_assert_eq(info_of(ledger, SHOP, 3).exception, SKULD_PUSH_THROTTLING);
	/* A report of a kind that does not park leaves a parked item as it is
	 * (a snapshot of it stays loadable). */
	helper_ok(ledger, ev_exception(SHOP, 2, 0, SKULD_PUSH_NOT_STOCKED, "gone"));
	helper_ok(ledger, ev_exception(SHOP, 2, 0, SKULD_PUSH_MISMATCH, "shows 3"));
	cr_assert_eq(info_of(ledger, SHOP, 2).exception, SKULD_PUSH_NOT_STOCKED);
	cr_assert_eq(info_of(ledger, SHOP, 2).state & SKULD_PUSH_PARKED, SKULD_PUSH_PARKED);
	/* A detail cut at the stored size never ends in a space. */
	helper_ok(ledger,
	          ev_exception(SHOP, 1, 0, SKULD_PUSH_THROTTLING, "abcdefghijklmnopqrstuv wxyz"));
	cr_assert_str_eq(info_of(ledger, SHOP, 1).detail, "abcdefghijklmnopqrstuv");
	/* Versions and listings are checked. */
	cr_assert_eq(helper_status(ledger, ev_exception(SHOP, 3, 1u << 30, 2, "")),
	             SKULD_VERSION_INVALID);
	cr_assert_eq(helper_status(ledger, ev_exception(SHOP, 5, 0, 2, "")), SKULD_LISTING_UNKNOWN);
	ledger_destroy(ledger);
}

Test(ledger_push, a_channel_exception_is_the_channels_until_an_acknowledgement)
{
	struct ledger *ledger = shop_ledger();
	helper_ok(ledger, ev_exception(SHOP, 0, 0, SKULD_PUSH_AUTH, "401 invalid token"));
	struct ledger_channel_push_info channel;
	cr_assert_eq(ledger_channel_push(ledger, SHOP, &channel), SKULD_OK);
	cr_assert_eq(channel.exception, SKULD_PUSH_AUTH);
	cr_assert_eq(channel.reports, 1);
	cr_assert_str_eq(channel.detail, "401 invalid token");
	cr_assert_eq(channel.dirty, 3, "no item parked");
	cr_assert_eq(helper_status(ledger, ev_exception(SHOP, 0, 5, SKULD_PUSH_AUTH, "")),
	             SKULD_VERSION_INVALID);
	ack_all(ledger, SHOP);
	cr_assert_eq(ledger_channel_push(ledger, SHOP, &channel), SKULD_OK);
	cr_assert_eq(channel.exception, 0);
	ledger_destroy(ledger);
}

Test(ledger_push, unmapping_keeps_history_and_stops_offers)
{
	struct ledger *ledger = shop_ledger();
	struct skuld_event retire = ev_listing(SHOP, 1, "40000001");
	retire.flags = SKULD_EVENT_RETIRE;
	helper_ok(ledger, retire);
	uint32_t items[8];
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 2);
	struct ledger_push_info info;
	cr_assert_eq(ledger_push_item(ledger, SHOP, 1, &info), SKULD_LISTING_UNKNOWN);
	cr_assert_eq(helper_status(ledger, retire), SKULD_OK, "same key: the first result");
	retire.key.lo++;
	cr_assert_eq(helper_status(ledger, retire), SKULD_LISTING_UNKNOWN);
	helper_ok(ledger, ev_stock(SKULD_SALE, 1, 1, 1));
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 2);
	helper_ok(ledger, ev_listing(SHOP, 1, "40000001"));
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	cr_assert_eq(info_of(ledger, SHOP, 1).quantity, 14);
	ledger_destroy(ledger);
}

Test(ledger_push, a_failed_chain_leaves_no_trace)
{
	struct ledger *ledger = shop_ledger();
	ack_all(ledger, SHOP);
	uint64_t hash = ledger_hash(ledger);
	struct skuld_event chain[3] = {
	        ev_stock(SKULD_SALE, 1, 1, 1), ev_listing(SHOP, 4, "new"),
	        ev_reserve(5, 2, 1, 50, 60), /* more than there is */
	};
	chain[0].flags = SKULD_EVENT_LINKED;
	chain[1].flags = SKULD_EVENT_LINKED;
	struct skuld_result results[3];
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, chain, 3, results);
	cr_assert_eq(results[2].status, SKULD_INSUFFICIENT);
	cr_assert_eq(ledger_push_next(ledger, SHOP, 0, 1), 0);
	cr_assert_eq(ledger_hash(ledger), hash);
	struct ledger_push_info info;
	cr_assert_eq(ledger_push_item(ledger, SHOP, 4, &info), SKULD_LISTING_UNKNOWN);
	/* The same chain that succeeds dirties all three. */
	chain[2].quantity = 1;
	for (int i = 0; i < 3; i++)
		chain[i].key.lo += 1000;
	ledger_apply(ledger, HELPER_T0, LEDGER_SOURCE_CLIENT, chain, 3, results);
	cr_assert_eq(results[2].status, SKULD_OK);
	uint32_t items[8];
	cr_assert_eq(dirty_items(ledger, SHOP, items, 8), 3);
	cr_assert_eq(items[2], 4);
	ledger_destroy(ledger);
}

/* ---- Through a snapshot ------------------------------------------------------ */

struct memory_stream {
	unsigned char *bytes;
	size_t size;
	size_t read;
};

static int memory_write(void *context, const void *bytes, size_t size)
{
	struct memory_stream *stream = context;
	unsigned char *grown = realloc(stream->bytes, stream->size + size);
	if (grown == NULL)
		return -ENOMEM;
	memcpy(grown + stream->size, bytes, size);
	stream->bytes = grown;
	stream->size += size;
	return 0;
}

static int memory_read(void *context, void *bytes, size_t size)
{
	struct memory_stream *stream = context;
	if (stream->size - stream->read < size)
		return -ENODATA;
	memcpy(bytes, stream->bytes + stream->read, size);
	stream->read += size;
	return 0;
}

Test(ledger_push, the_push_state_survives_a_snapshot)
{
	struct ledger *ledger = shop_ledger();
	uint64_t version = info_of(ledger, SHOP, 1).version;
	helper_ok(ledger, ev_ack(SHOP, 1, version, 15));
	helper_ok(ledger, ev_exception(SHOP, 2, 0, SKULD_PUSH_UNKNOWN, "no such inventory item"));
	helper_ok(ledger, ev_exception(SHOP, 0, 0, SKULD_PUSH_THROTTLING, "bucket"));
	struct memory_stream stream = {0};
	struct snapshot_sink sink = {.write = memory_write, .context = &stream};
	cr_assert_eq(ledger_snapshot_save(ledger, &sink), 0);
	cr_assert_eq(stream.size, ledger_snapshot_size(ledger));
	struct ledger *copy = helper_ledger_config(ledger_configuration(ledger));
	struct snapshot_source source = {.read = memory_read, .context = &stream};
	char reason[256] = "";
	cr_assert_eq(ledger_snapshot_load(copy, &source, reason, sizeof(reason)), 0, "%s", reason);
	cr_assert_eq(ledger_hash(copy), ledger_hash(ledger));
	struct ledger_push_info a = info_of(copy, SHOP, 2);
	cr_assert_eq(a.state, SKULD_PUSH_DIRTY | SKULD_PUSH_PARKED);
	cr_assert_str_eq(a.detail, "no such inventory item");
	struct ledger_channel_push_info channel;
	cr_assert_eq(ledger_channel_push(copy, SHOP, &channel), SKULD_OK);
	cr_assert_eq(channel.mapped, 3);
	cr_assert_eq(channel.dirty, 1);
	cr_assert_eq(channel.parked, 1);
	cr_assert_eq(channel.acks, 1);
	cr_assert_eq(channel.exception, SKULD_PUSH_THROTTLING);
	/* Both go on alike: the same sale gives the same versions. */
	struct skuld_event sale = ev_stock(SKULD_SALE, 1, 1, 2);
	struct skuld_result r1 = helper_apply(ledger, sale);
	struct skuld_result r2 = helper_apply(copy, sale);
	cr_assert_eq(r1.status, SKULD_OK);
	cr_assert_eq(r2.status, SKULD_OK);
	cr_assert_eq(info_of(copy, SHOP, 1).version, info_of(ledger, SHOP, 1).version);
	cr_assert_eq(ledger_hash(copy), ledger_hash(ledger));
	/* A listing record with a version from the future is refused. */
	size_t offset = stream.size - 16 - 136 * 3 + 8; /* first listing's version */
	uint64_t bad = UINT64_MAX;
	memcpy(stream.bytes + offset, &bad, sizeof(bad));
	stream.read = 0;
	struct ledger *refused = helper_ledger_config(ledger_configuration(ledger));
	cr_assert_eq(ledger_snapshot_load(refused, &source, reason, sizeof(reason)), -EBADMSG);
	cr_assert_not_null(strstr(reason, "listing 0"), "%s", reason);
	ledger_destroy(refused);
	ledger_destroy(copy);
	ledger_destroy(ledger);
	free(stream.bytes);
}
