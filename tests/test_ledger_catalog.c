/*
 * test_ledger_catalog.c — catalog definitions: items, SKU aliases (rename
 * keeps history), barcodes (several items, packs), attributes, location
 * lifecycle, bundle components, channels; every catalog error code.
 */
#include "ledger_helpers.h"

static char *code32(const char *text)
{
	static char buffer[SKULD_CODE_SIZE];
	memset(buffer, 0, sizeof(buffer));
	memcpy(buffer, text, strlen(text) < sizeof(buffer) ? strlen(text) : sizeof(buffer));
	return buffer;
}

Test(ledger_catalog, item_define_errors)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.items_max = 10;
	config.codes_max = 3;
	struct ledger *ledger = helper_ledger_config(&config);
	struct skuld_event event = ev_code(SKULD_ITEM_DEFINE, "A-1");
	cr_assert_eq(helper_status(ledger, event), SKULD_ITEM_UNKNOWN, "item 0");
	event.item = 11;
	cr_assert_eq(helper_status(ledger, event), SKULD_CATALOG_FULL);
	event.item = 1;
	event.scale = 3;
	helper_ok(ledger, event);
	event = ev_code(SKULD_ITEM_DEFINE, "A-2");
	event.item = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_ITEM_EXISTS);
	event = ev(SKULD_ITEM_DEFINE);
	event.item = 2;
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_INVALID);
	event = ev_code(SKULD_ITEM_DEFINE, "A-1");
	event.item = 2;
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_EXISTS);
	event = ev_code(SKULD_ITEM_DEFINE, "A-2");
	event.item = 2;
	event.scale = 10;
	cr_assert_eq(helper_status(ledger, event), SKULD_INVALID_STATE);
	event.scale = 0;
	helper_ok(ledger, event);
	event = ev_code(SKULD_ITEM_DEFINE, "A-3");
	event.item = 3;
	helper_ok(ledger, event);
	event = ev_code(SKULD_ITEM_DEFINE, "A-4");
	event.item = 4;
	cr_assert_eq(helper_status(ledger, event), SKULD_CATALOG_FULL, "codes_max");
	cr_assert_eq(ledger_sku_lookup(ledger, code32("A-1"), NULL), 1);
	cr_assert_eq(ledger_sku_lookup(ledger, code32("A-4"), NULL), 0);
	ledger_destroy(ledger);
}

Test(ledger_catalog, rename_keeps_item_and_history)
{
	struct ledger *ledger = helper_ledger();
	helper_receive(ledger, 1, 1, 4);
	struct skuld_event alias = ev_code(SKULD_SKU_ALIAS, "NEW-1");
	alias.item = 1;
	helper_ok(ledger, alias);
	struct skuld_event retire = ev_code(SKULD_SKU_ALIAS, "SKU-1");
	retire.item = 1;
	retire.flags = SKULD_EVENT_RETIRE;
	helper_ok(ledger, retire);
	int retired = 0;
	cr_assert_eq(ledger_sku_lookup(ledger, code32("NEW-1"), &retired), 1);
	cr_assert_eq(retired, 0);
	cr_assert_eq(ledger_sku_lookup(ledger, code32("SKU-1"), &retired), 1);
	cr_assert_eq(retired, 1);
	cr_assert_eq(helper_level(ledger, 1, 1).on_hand, 4, "stock stays with the item id");
	/* A retired code never moves to another item. */
	struct skuld_event steal = ev_code(SKULD_SKU_ALIAS, "SKU-1");
	steal.item = 2;
	cr_assert_eq(helper_status(ledger, steal), SKULD_CODE_EXISTS);
	retire.key.lo += 1000000;
	cr_assert_eq(helper_status(ledger, retire), SKULD_CODE_INVALID, "already retired");
	alias = ev_code(SKULD_SKU_ALIAS, "NEW-1");
	alias.item = 1;
	cr_assert_eq(helper_status(ledger, alias), SKULD_CODE_EXISTS);
	alias = ev_code(SKULD_SKU_ALIAS, "SKU-1");
	alias.item = 1;
	helper_ok(ledger, alias);
	cr_assert_eq(ledger_sku_lookup(ledger, code32("SKU-1"), &retired), 1);
	cr_assert_eq(retired, 0, "re-activated");
	alias = ev_code(SKULD_SKU_ALIAS, "X");
	alias.item = 77;
	cr_assert_eq(helper_status(ledger, alias), SKULD_ITEM_UNKNOWN);
	ledger_destroy(ledger);
}

Test(ledger_catalog, barcode_several_items_and_packs)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event event = ev_code(SKULD_BARCODE_DEFINE, "4006381333931");
	event.item = 3;
	event.quantity = 1;
	helper_ok(ledger, event);
	event = ev_code(SKULD_BARCODE_DEFINE, "4006381333931");
	event.item = 2;
	event.quantity = 6;
	helper_ok(ledger, event);
	event.key.lo += 1000000; /* the same key would be a replay */
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_EXISTS);
	struct ledger_barcode_match matches[4];
	cr_assert_eq(ledger_barcode_lookup(ledger, code32("4006381333931"), matches, 4), 2);
	cr_assert_eq(matches[0].item, 2);
	cr_assert_eq(matches[0].pack, 6);
	cr_assert_eq(matches[1].item, 3);
	cr_assert_eq(matches[1].pack, 1);
	cr_assert_eq(ledger_barcode_lookup(ledger, code32("4006381333931"), matches, 1), 2);
	cr_assert_eq(matches[0].item, 2, "the lowest item id first");
	event = ev_code(SKULD_BARCODE_DEFINE, "4006381333931");
	event.item = 2;
	event.flags = SKULD_EVENT_RETIRE;
	helper_ok(ledger, event);
	cr_assert_eq(ledger_barcode_lookup(ledger, code32("4006381333931"), matches, 4), 1);
	cr_assert_eq(matches[0].item, 3);
	event = ev_code(SKULD_BARCODE_DEFINE, "123");
	event.item = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_QUANTITY_INVALID, "pack 0");
	event.flags = SKULD_EVENT_RETIRE;
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_INVALID, "retire unknown");
	ledger_destroy(ledger);
}

Test(ledger_catalog, attributes)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event event = ev_code(SKULD_ATTRIBUTE_SET, "size=M");
	event.item = 1;
	helper_ok(ledger, event);
	event = ev_code(SKULD_ATTRIBUTE_SET, "size=L");
	event.item = 1;
	helper_ok(ledger, event);
	char value[SKULD_CODE_SIZE];
	cr_assert_eq(ledger_attribute(ledger, 1, "size", value), 1);
	cr_assert_str_eq(value, "L");
	cr_assert_eq(ledger_attribute(ledger, 2, "size", value), 0);
	event = ev_code(SKULD_ATTRIBUTE_SET, "=L");
	event.item = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_INVALID);
	event = ev_code(SKULD_ATTRIBUTE_SET, "colour");
	event.item = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_INVALID);
	ledger_destroy(ledger);
}

Test(ledger_catalog, location_lifecycle_moves_forward_only)
{
	struct ledger *ledger = helper_ledger();
	struct skuld_event event = ev_code(SKULD_LOCATION_DEFINE, "L1");
	event.location = 5;
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_EXISTS);
	event = ev_code(SKULD_LOCATION_DEFINE, "POPUP");
	event.location = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_LOCATION_EXISTS);
	event.location = 0;
	cr_assert_eq(helper_status(ledger, event), SKULD_LOCATION_UNKNOWN);
	event.location = 100000;
	cr_assert_eq(helper_status(ledger, event), SKULD_CATALOG_FULL);
	event.location = 5;
	event.reason = 3;
	cr_assert_eq(helper_status(ledger, event), SKULD_INVALID_STATE);
	event.reason = SKULD_LIFECYCLE_NOT_SELLING;
	helper_ok(ledger, event);
	cr_assert_eq(ledger_location_state(ledger, 5), SKULD_LIFECYCLE_NOT_SELLING);
	struct skuld_event state = ev(SKULD_LOCATION_STATE);
	state.location = 5;
	state.reason = SKULD_LIFECYCLE_ACTIVE;
	cr_assert_eq(helper_status(ledger, state), SKULD_INVALID_STATE, "backwards");
	helper_set_state(ledger, 5, SKULD_LIFECYCLE_CLOSED);
	helper_set_state(ledger, 5, SKULD_LIFECYCLE_CLOSED);
	cr_assert_eq(ledger_location_state(ledger, 5), SKULD_LIFECYCLE_CLOSED);
	state.location = 6;
	cr_assert_eq(helper_status(ledger, state), SKULD_LOCATION_UNKNOWN);
	cr_assert_eq(ledger_location_state(ledger, 6), -1);
	ledger_destroy(ledger);
}

Test(ledger_catalog, bundle_component_rules)
{
	struct ledger *ledger = helper_ledger();
	helper_define_item(ledger, 10, 1);
	helper_define_item(ledger, 11, 1);
	struct skuld_event event = ev(SKULD_BUNDLE_COMPONENT);
	event.item = 1;
	event.target = 2;
	event.quantity = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_NOT_A_BUNDLE);
	event.item = 10;
	event.target = 11;
	cr_assert_eq(helper_status(ledger, event), SKULD_BUNDLE_INVALID, "bundle in a bundle");
	event.target = 10;
	cr_assert_eq(helper_status(ledger, event), SKULD_BUNDLE_INVALID, "itself");
	event.target = 99;
	cr_assert_eq(helper_status(ledger, event), SKULD_ITEM_UNKNOWN);
	event.target = 1;
	event.quantity = 0;
	cr_assert_eq(helper_status(ledger, event), SKULD_QUANTITY_INVALID);
	helper_component(ledger, 10, 1, 2);
	helper_component(ledger, 10, 2, 1);
	helper_component(ledger, 10, 1, 3); /* replaces */
	helper_receive(ledger, 1, 1, 9);
	helper_receive(ledger, 2, 1, 9);
	cr_assert_eq(ledger_available(ledger, 10, 1), 3);
	/* No components: a bundle cannot move. */
	cr_assert_eq(helper_status(ledger, ev_stock(SKULD_SALE, 11, 1, 1)), SKULD_BUNDLE_INVALID);
	/* Frozen after its first movement. */
	helper_ok(ledger, ev_stock(SKULD_SALE, 10, 1, 1));
	event.item = 10;
	event.target = 3;
	event.quantity = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_BUNDLE_INVALID, "frozen");
	ledger_destroy(ledger);
}

Test(ledger_catalog, bundle_capacity)
{
	struct ledger_config config;
	ledger_config_default(&config);
	config.bundles_max = 1;
	config.bundle_components_max = 2;
	struct ledger *ledger = helper_ledger_config(&config);
	for (uint32_t id = 1; id <= 4; id++)
		helper_define_item(ledger, id, 0);
	helper_define_item(ledger, 10, 1);
	helper_define_item(ledger, 11, 1);
	helper_component(ledger, 10, 1, 1);
	helper_component(ledger, 10, 2, 1);
	struct skuld_event event = ev(SKULD_BUNDLE_COMPONENT);
	event.item = 10;
	event.target = 3;
	event.quantity = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_CATALOG_FULL, "components per bundle");
	event.item = 11;
	cr_assert_eq(helper_status(ledger, event), SKULD_CATALOG_FULL, "bundles_max");
	ledger_destroy(ledger);
}

Test(ledger_catalog, channel_definitions)
{
	struct ledger *ledger = helper_ledger();
	helper_channel(ledger, 1, "shopify", 2);
	struct skuld_event event = ev_code(SKULD_CHANNEL_DEFINE, "shopify");
	event.channel = 2;
	cr_assert_eq(helper_status(ledger, event), SKULD_CODE_EXISTS);
	event.channel = 1;
	cr_assert_eq(helper_status(ledger, event), SKULD_CHANNEL_EXISTS);
	event.channel = 0;
	cr_assert_eq(helper_status(ledger, event), SKULD_CHANNEL_UNKNOWN);
	event.channel = 17;
	cr_assert_eq(helper_status(ledger, event), SKULD_CATALOG_FULL);
	event = ev_code(SKULD_CHANNEL_DEFINE, "amazon");
	event.channel = 2;
	event.quantity = -1;
	cr_assert_eq(helper_status(ledger, event), SKULD_QUANTITY_INVALID);
	struct skuld_event pool = ev(SKULD_CHANNEL_POOL);
	pool.channel = 3;
	pool.location = 1;
	cr_assert_eq(helper_status(ledger, pool), SKULD_CHANNEL_UNKNOWN);
	pool.channel = 1;
	pool.location = 9;
	cr_assert_eq(helper_status(ledger, pool), SKULD_LOCATION_UNKNOWN);
	pool.location = 1;
	pool.flags = SKULD_EVENT_RETIRE;
	cr_assert_eq(helper_status(ledger, pool), SKULD_LOCATION_MISMATCH);
	pool.flags = 0;
	pool.quantity = -1;
	cr_assert_eq(helper_status(ledger, pool), SKULD_QUANTITY_INVALID);
	helper_pool(ledger, 1, 1, 0);
	helper_receive(ledger, 1, 1, 10);
	int64_t quantity = -1;
	cr_assert_eq(ledger_channel_quantity(ledger, 1, 1, &quantity), SKULD_OK);
	cr_assert_eq(quantity, 8, "10 - buffer 2");
	struct skuld_event buffer = ev_stock(SKULD_CHANNEL_BUFFER, 1, 0, 5);
	buffer.channel = 1;
	helper_ok(ledger, buffer);
	cr_assert_eq(ledger_channel_quantity(ledger, 1, 1, &quantity), SKULD_OK);
	cr_assert_eq(quantity, 5, "per-item buffer");
	struct skuld_event cap = ev(SKULD_CHANNEL_CAP);
	cap.channel = 1;
	cap.quantity = 3;
	helper_ok(ledger, cap);
	cr_assert_eq(ledger_channel_quantity(ledger, 1, 1, &quantity), SKULD_OK);
	cr_assert_eq(quantity, 3, "cap");
	struct skuld_event minimum = ev(SKULD_CHANNEL_MIN);
	minimum.channel = 1;
	minimum.quantity = 4;
	helper_ok(ledger, minimum);
	cr_assert_eq(ledger_channel_quantity(ledger, 1, 1, &quantity), SKULD_OK);
	cr_assert_eq(quantity, 0, "below the minimum to publish");
	cr_assert_eq(ledger_channel_quantity(ledger, 9, 1, &quantity), SKULD_CHANNEL_UNKNOWN);
	cr_assert_eq(ledger_channel_quantity(ledger, 1, 99, &quantity), SKULD_ITEM_UNKNOWN);
	pool.flags = SKULD_EVENT_RETIRE;
	pool.quantity = 0;
	pool.key.lo += 1000000;
	helper_ok(ledger, pool);
	minimum.quantity = 0;
	minimum.key.lo += 1000000;
	helper_ok(ledger, minimum);
	cr_assert_eq(ledger_channel_quantity(ledger, 1, 1, &quantity), SKULD_OK);
	cr_assert_eq(quantity, 0, "pool empty");
	ledger_destroy(ledger);
}
