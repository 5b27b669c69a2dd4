/*
 * catalog.c — items, codes, locations, bundles and channels; see catalog.h.
 * The checks of every catalog kind run in the order docs/LEDGER.md lists
 * them and all of them run before the first change.
 */
#include "memory.h"
#include "catalog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"
#include "snapshot_stream.h"

static uint64_t code_hash(const char *code)
{
	return skuld_checksum(code, SKULD_CODE_SIZE);
}

static uint64_t sku_hash(const void *record)
{
	return code_hash(((const struct sku *)record)->code);
}

static uint64_t barcode_hash(const void *record)
{
	return code_hash(((const struct barcode *)record)->code);
}

/* Length of the attribute name in text (up to '='), or 0 if malformed. */
static size_t attribute_name_size(const char *text)
{
	for (size_t i = 0; i < SKULD_CODE_SIZE && text[i] != 0; i++) {
		if (text[i] == '=')
			return i;
	}
	return 0;
}

static uint64_t attribute_key_hash(uint32_t item, const char *name, size_t name_size)
{
	return skuld_checksum(name, name_size) ^ table_mix(item);
}

static uint64_t attribute_hash(const void *record)
{
	const struct attribute *attribute = record;
	return attribute_key_hash(attribute->item, attribute->text,
	                          attribute_name_size(attribute->text));
}

static uint64_t buffer_key_hash(uint32_t channel, uint32_t item)
{
	return table_mix((uint64_t)channel << 32 | item);
}

static uint64_t buffer_hash(const void *record)
{
	const struct channel_buffer *buffer = record;
	return buffer_key_hash(buffer->channel, buffer->item);
}

size_t catalog_bytes(const struct ledger_config *config)
{
	size_t bytes = ((size_t)config->items_max + 1) * sizeof(struct item);
	bytes += ((size_t)config->locations_max + 1) * sizeof(struct location);
	bytes += ((size_t)config->channels_max + 1) * sizeof(struct channel);
	bytes += ((size_t)config->channels_max + 1) * config->pool_locations_max *
	         sizeof(struct pool_entry);
	bytes += (size_t)config->bundles_max * config->bundle_components_max *
	         sizeof(struct component);
	bytes += table_bytes(config->codes_max, sizeof(struct sku), 0);
	bytes += table_bytes(config->barcodes_max, sizeof(struct barcode), 0);
	bytes += table_bytes(config->attributes_max, sizeof(struct attribute), 0);
	bytes += table_bytes(config->channel_buffers_max, sizeof(struct channel_buffer), 0);
	return bytes;
}

int catalog_init(struct catalog *catalog, const struct ledger_config *config)
{
	memset(catalog, 0, sizeof(*catalog));
	catalog->items_max = config->items_max;
	catalog->locations_max = config->locations_max;
	catalog->channels_max = config->channels_max;
	catalog->bundles_max = config->bundles_max;
	catalog->components_max = config->bundle_components_max;
	catalog->pool_max = config->pool_locations_max;
	catalog->items = core_calloc((size_t)config->items_max + 1, sizeof(struct item));
	catalog->locations =
	        core_calloc((size_t)config->locations_max + 1, sizeof(struct location));
	catalog->channels = core_calloc((size_t)config->channels_max + 1, sizeof(struct channel));
	catalog->pools =
	        core_calloc(((size_t)config->channels_max + 1) * config->pool_locations_max,
	                    sizeof(struct pool_entry));
	catalog->components =
	        core_calloc((size_t)config->bundles_max * config->bundle_components_max,
	                    sizeof(struct component));
	int rc = -ENOMEM;
	if (catalog->items == NULL || catalog->locations == NULL || catalog->channels == NULL ||
	    catalog->pools == NULL || catalog->components == NULL)
		goto fail;
	rc = table_init(&catalog->skus, config->codes_max, sizeof(struct sku), 0, sku_hash);
	if (rc == 0)
		rc = table_init(&catalog->barcodes, config->barcodes_max, sizeof(struct barcode), 0,
		                barcode_hash);
	if (rc == 0)
		rc = table_init(&catalog->attributes, config->attributes_max,
		                sizeof(struct attribute), 0, attribute_hash);
	if (rc == 0)
		rc = table_init(&catalog->buffers, config->channel_buffers_max,
		                sizeof(struct channel_buffer), 0, buffer_hash);
	if (rc == 0)
		return 0;
fail:
	catalog_free(catalog);
	return rc;
}

void catalog_free(struct catalog *catalog)
{
	free(catalog->items);
	free(catalog->locations);
	free(catalog->channels);
	free(catalog->pools);
	free(catalog->components);
	if (catalog->skus.slots != NULL)
		table_free(&catalog->skus);
	if (catalog->barcodes.slots != NULL)
		table_free(&catalog->barcodes);
	if (catalog->attributes.slots != NULL)
		table_free(&catalog->attributes);
	if (catalog->buffers.slots != NULL)
		table_free(&catalog->buffers);
	memset(catalog, 0, sizeof(*catalog));
}

/* ---- Look-ups ------------------------------------------------------------ */

const struct sku *catalog_sku_find(const struct catalog *catalog, const char *code)
{
	const struct table *table = &catalog->skus;
	uint64_t hash = code_hash(code);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		const struct sku *sku = table_record(table, index);
		if (memcmp(sku->code, code, SKULD_CODE_SIZE) == 0)
			return sku;
	}
	return NULL;
}

static struct barcode *barcode_find(const struct catalog *catalog, const char *code, uint32_t item)
{
	const struct table *table = &catalog->barcodes;
	uint64_t hash = code_hash(code);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct barcode *barcode = table_record(table, index);
		if (barcode->item == item && memcmp(barcode->code, code, SKULD_CODE_SIZE) == 0)
			return barcode;
	}
	return NULL;
}

uint32_t catalog_barcode_lookup(const struct catalog *catalog, const char *code,
                                struct ledger_barcode_match *out, uint32_t max)
{
	/* Every pair of this code is in the probe sequence from its home
	 * slot up to the first empty slot. */
	const struct table *table = &catalog->barcodes;
	uint64_t hash = code_hash(code);
	uint32_t slot = table_home(table, hash);
	uint32_t total = 0;
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		const struct barcode *barcode = table_record(table, index);
		if (barcode->retired || memcmp(barcode->code, code, SKULD_CODE_SIZE) != 0)
			continue;
		/* Insertion sort by item id into the caller's array. */
		uint32_t at = total < max ? total : max;
		while (at > 0 && out[at - 1].item > barcode->item) {
			if (at < max)
				out[at] = out[at - 1];
			at--;
		}
		if (at < max) {
			out[at].item = barcode->item;
			out[at].pack = barcode->pack;
		}
		total++;
	}
	return total;
}

const struct attribute *catalog_attribute_find(const struct catalog *catalog, uint32_t item,
                                               const char *name, size_t name_size)
{
	const struct table *table = &catalog->attributes;
	uint64_t hash = attribute_key_hash(item, name, name_size);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		const struct attribute *attribute = table_record(table, index);
		if (attribute->item == item && attribute_name_size(attribute->text) == name_size &&
		    memcmp(attribute->text, name, name_size) == 0)
			return attribute;
	}
	return NULL;
}

static struct channel_buffer *buffer_find(const struct catalog *catalog, uint32_t channel,
                                          uint32_t item)
{
	const struct table *table = &catalog->buffers;
	if (table->used == 0)
		return NULL;
	uint64_t hash = buffer_key_hash(channel, item);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct channel_buffer *buffer = table_record(table, index);
		if (buffer->channel == channel && buffer->item == item)
			return buffer;
	}
	return NULL;
}

int64_t catalog_buffer(const struct catalog *catalog, uint32_t channel, uint32_t item)
{
	const struct channel_buffer *buffer = buffer_find(catalog, channel, item);
	if (buffer != NULL)
		return buffer->buffer;
	return catalog->channels[channel].buffer;
}

static struct pool_entry *pool_find_any(const struct catalog *catalog, uint32_t channel,
                                        uint32_t location)
{
	struct pool_entry *pool = catalog_pool(catalog, channel);
	for (uint32_t i = 0; i < catalog->channels[channel].pool_count; i++) {
		if (pool[i].location == location)
			return &pool[i];
	}
	return NULL;
}

const struct pool_entry *catalog_pool_find(const struct catalog *catalog, uint32_t channel,
                                           uint32_t location)
{
	const struct pool_entry *entry = pool_find_any(catalog, channel, location);
	return entry != NULL && entry->active ? entry : NULL;
}

/* ---- Changes (journaled) ------------------------------------------------- */

static void *table_insert(struct table *table, struct journal *journal, uint64_t hash,
                          const void *record)
{
	uint32_t index = table_alloc(table);
	SKULD_ASSERT(index != TABLE_NONE);
	void *slot = table_record(table, index);
	memcpy(slot, record, table->record_size);
	table_link(table, index, hash);
	journal_push(journal, JOURNAL_TABLE_INSERT, table, index, 0);
	return slot;
}

static int quantity_valid(int64_t quantity)
{
	return quantity > 0 && quantity <= LEDGER_QUANTITY_MAX;
}

static int quantity_valid_or_zero(int64_t quantity)
{
	return quantity >= 0 && quantity <= LEDGER_QUANTITY_MAX;
}

static uint32_t item_define(struct catalog *catalog, struct journal *journal,
                            const struct skuld_event *event)
{
	if (event->item == 0)
		return SKULD_ITEM_UNKNOWN;
	if (event->item > catalog->items_max)
		return SKULD_CATALOG_FULL;
	struct item *item = &catalog->items[event->item];
	if (item->defined)
		return SKULD_ITEM_EXISTS;
	if (event->code[0] == 0)
		return SKULD_CODE_INVALID;
	if (event->scale > SKULD_SCALE_MAX)
		return SKULD_INVALID_STATE;
	if (catalog_sku_find(catalog, event->code) != NULL)
		return SKULD_CODE_EXISTS;
	if (table_room(&catalog->skus) == 0)
		return SKULD_CATALOG_FULL;
	struct sku sku = {.item = event->item};
	memcpy(sku.code, event->code, SKULD_CODE_SIZE);
	table_insert(&catalog->skus, journal, code_hash(event->code), &sku);
	journal_save(journal, item, sizeof(*item));
	item->defined = 1;
	item->bundle = (event->flags & SKULD_EVENT_BUNDLE) != 0;
	item->scale = event->scale;
	return SKULD_OK;
}

static uint32_t sku_alias(struct catalog *catalog, struct journal *journal,
                          const struct skuld_event *event)
{
	if (catalog_item(catalog, event->item) == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (event->code[0] == 0)
		return SKULD_CODE_INVALID;
	struct sku *sku = (struct sku *)catalog_sku_find(catalog, event->code);
	if (event->flags & SKULD_EVENT_RETIRE) {
		if (sku == NULL || sku->item != event->item || sku->retired)
			return SKULD_CODE_INVALID;
		journal_set_u32(journal, &sku->retired, 1);
		return SKULD_OK;
	}
	if (sku != NULL && (sku->item != event->item || !sku->retired))
		return SKULD_CODE_EXISTS;
	if (sku != NULL) {
		journal_set_u32(journal, &sku->retired, 0);
		return SKULD_OK;
	}
	if (table_room(&catalog->skus) == 0)
		return SKULD_CATALOG_FULL;
	struct sku fresh = {.item = event->item};
	memcpy(fresh.code, event->code, SKULD_CODE_SIZE);
	table_insert(&catalog->skus, journal, code_hash(event->code), &fresh);
	return SKULD_OK;
}

static uint32_t barcode_define(struct catalog *catalog, struct journal *journal,
                               const struct skuld_event *event)
{
	if (catalog_item(catalog, event->item) == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (event->code[0] == 0)
		return SKULD_CODE_INVALID;
	struct barcode *barcode = barcode_find(catalog, event->code, event->item);
	if (event->flags & SKULD_EVENT_RETIRE) {
		if (barcode == NULL || barcode->retired)
			return SKULD_CODE_INVALID;
		journal_set_u32(journal, &barcode->retired, 1);
		return SKULD_OK;
	}
	if (!quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (barcode != NULL && !barcode->retired)
		return SKULD_CODE_EXISTS;
	if (barcode != NULL) {
		journal_set_u32(journal, &barcode->retired, 0);
		journal_set_i64(journal, &barcode->pack, event->quantity);
		return SKULD_OK;
	}
	if (table_room(&catalog->barcodes) == 0)
		return SKULD_CATALOG_FULL;
	struct barcode fresh = {.item = event->item, .pack = event->quantity};
	memcpy(fresh.code, event->code, SKULD_CODE_SIZE);
	table_insert(&catalog->barcodes, journal, code_hash(event->code), &fresh);
	return SKULD_OK;
}

static uint32_t attribute_set(struct catalog *catalog, struct journal *journal,
                              const struct skuld_event *event)
{
	if (catalog_item(catalog, event->item) == NULL)
		return SKULD_ITEM_UNKNOWN;
	size_t name_size = attribute_name_size(event->code);
	if (name_size == 0)
		return SKULD_CODE_INVALID;
	struct attribute *attribute = (struct attribute *)catalog_attribute_find(
	        catalog, event->item, event->code, name_size);
	if (attribute != NULL) {
		journal_save(journal, attribute->text, SKULD_CODE_SIZE);
		memcpy(attribute->text, event->code, SKULD_CODE_SIZE);
		return SKULD_OK;
	}
	if (table_room(&catalog->attributes) == 0)
		return SKULD_CATALOG_FULL;
	struct attribute fresh = {.item = event->item};
	memcpy(fresh.text, event->code, SKULD_CODE_SIZE);
	table_insert(&catalog->attributes, journal,
	             attribute_key_hash(event->item, event->code, name_size), &fresh);
	return SKULD_OK;
}

static uint32_t location_define(struct catalog *catalog, struct journal *journal,
                                const struct skuld_event *event)
{
	if (event->location == 0)
		return SKULD_LOCATION_UNKNOWN;
	if (event->location > catalog->locations_max)
		return SKULD_CATALOG_FULL;
	struct location *location = &catalog->locations[event->location];
	if (location->defined)
		return SKULD_LOCATION_EXISTS;
	if (event->code[0] == 0)
		return SKULD_CODE_INVALID;
	if (event->reason > SKULD_LIFECYCLE_CLOSED)
		return SKULD_INVALID_STATE;
	for (uint32_t id = 1; id <= catalog->locations_max; id++) {
		const struct location *other = &catalog->locations[id];
		if (other->defined && memcmp(other->code, event->code, SKULD_CODE_SIZE) == 0)
			return SKULD_CODE_EXISTS;
	}
	journal_save(journal, location, sizeof(*location));
	location->defined = 1;
	location->state = event->reason;
	memcpy(location->code, event->code, SKULD_CODE_SIZE);
	return SKULD_OK;
}

static uint32_t location_state(struct catalog *catalog, struct journal *journal,
                               const struct skuld_event *event)
{
	struct location *location = catalog_location(catalog, event->location);
	if (location == NULL)
		return SKULD_LOCATION_UNKNOWN;
	if (event->reason > SKULD_LIFECYCLE_CLOSED || event->reason < location->state)
		return SKULD_INVALID_STATE;
	journal_set_u8(journal, &location->state, event->reason);
	return SKULD_OK;
}

static uint32_t bundle_component(struct catalog *catalog, struct journal *journal,
                                 const struct skuld_event *event)
{
	struct item *bundle = catalog_item(catalog, event->item);
	if (bundle == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (!bundle->bundle)
		return SKULD_NOT_A_BUNDLE;
	const struct item *part = catalog_item(catalog, event->target);
	if (part == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (part->bundle || event->target == event->item)
		return SKULD_BUNDLE_INVALID;
	if (!quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (bundle->frozen)
		return SKULD_BUNDLE_INVALID;
	struct component *block = (struct component *)catalog_components(catalog, bundle);
	for (uint32_t i = 0; i < bundle->components; i++) {
		if (block[i].item == event->target) {
			journal_set_i64(journal, &block[i].quantity, event->quantity);
			return SKULD_OK;
		}
	}
	if (bundle->components == catalog->components_max ||
	    (bundle->bundle_slot == 0 && catalog->bundles_used == catalog->bundles_max))
		return SKULD_CATALOG_FULL;
	if (bundle->bundle_slot == 0) {
		journal_set_u32(journal, &bundle->bundle_slot, catalog->bundles_used + 1);
		journal_set_u32(journal, &catalog->bundles_used, catalog->bundles_used + 1);
		block = (struct component *)catalog_components(catalog, bundle);
	}
	struct component *slot = &block[bundle->components];
	journal_save(journal, slot, sizeof(*slot));
	slot->item = event->target;
	slot->quantity = event->quantity;
	journal_set_u32(journal, &bundle->components, bundle->components + 1);
	return SKULD_OK;
}

static uint32_t channel_define(struct catalog *catalog, struct journal *journal,
                               const struct skuld_event *event)
{
	if (event->channel == 0)
		return SKULD_CHANNEL_UNKNOWN;
	if (event->channel > catalog->channels_max)
		return SKULD_CATALOG_FULL;
	struct channel *channel = &catalog->channels[event->channel];
	if (channel->defined)
		return SKULD_CHANNEL_EXISTS;
	if (event->code[0] == 0)
		return SKULD_CODE_INVALID;
	if (!quantity_valid_or_zero(event->quantity))
		return SKULD_QUANTITY_INVALID;
	for (uint32_t id = 1; id <= catalog->channels_max; id++) {
		const struct channel *other = &catalog->channels[id];
		if (other->defined && memcmp(other->code, event->code, SKULD_CODE_SIZE) == 0)
			return SKULD_CODE_EXISTS;
	}
	journal_save(journal, channel, sizeof(*channel));
	memset(channel, 0, sizeof(*channel));
	channel->defined = 1;
	channel->buffer = event->quantity;
	memcpy(channel->code, event->code, SKULD_CODE_SIZE);
	return SKULD_OK;
}

static uint32_t channel_pool(struct catalog *catalog, struct journal *journal,
                             const struct skuld_event *event)
{
	struct channel *channel = catalog_channel(catalog, event->channel);
	if (channel == NULL)
		return SKULD_CHANNEL_UNKNOWN;
	if (catalog_location(catalog, event->location) == NULL)
		return SKULD_LOCATION_UNKNOWN;
	if (!quantity_valid_or_zero(event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct pool_entry *entry = pool_find_any(catalog, event->channel, event->location);
	if (event->flags & SKULD_EVENT_RETIRE) {
		if (entry == NULL || !entry->active)
			return SKULD_LOCATION_MISMATCH;
		journal_set_u32(journal, &entry->active, 0);
		return SKULD_OK;
	}
	if (entry == NULL) {
		/* Full means pool_locations_max active entries; a retired
		 * entry's slot is reused once the block is used up. */
		struct pool_entry *pool = catalog_pool(catalog, event->channel);
		struct pool_entry *retired = NULL;
		uint32_t active = 0;
		for (uint32_t i = 0; i < channel->pool_count; i++) {
			active += pool[i].active != 0;
			if (!pool[i].active && retired == NULL)
				retired = &pool[i];
		}
		if (active == catalog->pool_max)
			return SKULD_CATALOG_FULL;
		if (channel->pool_count < catalog->pool_max) {
			entry = &pool[channel->pool_count];
			journal_set_u32(journal, &channel->pool_count, channel->pool_count + 1);
		} else {
			entry = retired;
		}
		journal_save(journal, entry, sizeof(*entry));
		entry->location = event->location;
	}
	journal_set_u32(journal, &entry->active, 1);
	journal_set_i64(journal, &entry->floor, event->quantity);
	return SKULD_OK;
}

static uint32_t channel_buffer(struct catalog *catalog, struct journal *journal,
                               const struct skuld_event *event)
{
	if (catalog_channel(catalog, event->channel) == NULL)
		return SKULD_CHANNEL_UNKNOWN;
	if (catalog_item(catalog, event->item) == NULL)
		return SKULD_ITEM_UNKNOWN;
	if (!quantity_valid_or_zero(event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct channel_buffer *buffer = buffer_find(catalog, event->channel, event->item);
	if (buffer != NULL) {
		journal_set_i64(journal, &buffer->buffer, event->quantity);
		return SKULD_OK;
	}
	if (table_room(&catalog->buffers) == 0)
		return SKULD_CATALOG_FULL;
	struct channel_buffer fresh = {
	        .channel = event->channel, .item = event->item, .buffer = event->quantity};
	table_insert(&catalog->buffers, journal, buffer_key_hash(event->channel, event->item),
	             &fresh);
	return SKULD_OK;
}

static uint32_t channel_limit(struct catalog *catalog, struct journal *journal,
                              const struct skuld_event *event)
{
	struct channel *channel = catalog_channel(catalog, event->channel);
	if (channel == NULL)
		return SKULD_CHANNEL_UNKNOWN;
	if (!quantity_valid_or_zero(event->quantity))
		return SKULD_QUANTITY_INVALID;
	int64_t *field = event->kind == SKULD_CHANNEL_CAP ? &channel->cap : &channel->minimum;
	journal_set_i64(journal, field, event->quantity);
	return SKULD_OK;
}

uint32_t catalog_apply(struct catalog *catalog, struct journal *journal,
                       const struct skuld_event *event)
{
	switch (event->kind) {
	case SKULD_ITEM_DEFINE:
		return item_define(catalog, journal, event);
	case SKULD_SKU_ALIAS:
		return sku_alias(catalog, journal, event);
	case SKULD_BARCODE_DEFINE:
		return barcode_define(catalog, journal, event);
	case SKULD_ATTRIBUTE_SET:
		return attribute_set(catalog, journal, event);
	case SKULD_LOCATION_DEFINE:
		return location_define(catalog, journal, event);
	case SKULD_LOCATION_STATE:
		return location_state(catalog, journal, event);
	case SKULD_BUNDLE_COMPONENT:
		return bundle_component(catalog, journal, event);
	case SKULD_CHANNEL_DEFINE:
		return channel_define(catalog, journal, event);
	case SKULD_CHANNEL_POOL:
		return channel_pool(catalog, journal, event);
	case SKULD_CHANNEL_BUFFER:
		return channel_buffer(catalog, journal, event);
	case SKULD_CHANNEL_CAP:
	case SKULD_CHANNEL_MIN:
		return channel_limit(catalog, journal, event);
	default:
		return SKULD_ERR_EVENT_KIND;
	}
}

/* ---- Hash ---------------------------------------------------------------- */

static uint64_t table_sum(const struct table *table, uint64_t tag)
{
	/* Order-independent: a sum of per-record hashes over live records. */
	uint64_t sum = tag;
	for (uint32_t slot = 0; slot <= table->slot_mask; slot++) {
		uint64_t entry = table->slots[slot];
		if (entry != 0)
			sum += skuld_checksum(table_record(table, table_slot_index(entry)),
			                      table->record_size);
	}
	return sum;
}

uint64_t catalog_hash(const struct catalog *catalog)
{
	uint64_t parts[8];
	parts[0] = skuld_checksum(catalog->items,
	                          ((size_t)catalog->items_max + 1) * sizeof(struct item));
	parts[1] = skuld_checksum(catalog->locations,
	                          ((size_t)catalog->locations_max + 1) * sizeof(struct location));
	parts[2] = skuld_checksum(catalog->channels,
	                          ((size_t)catalog->channels_max + 1) * sizeof(struct channel));
	parts[3] = skuld_checksum(catalog->pools, ((size_t)catalog->channels_max + 1) *
	                                                  catalog->pool_max *
	                                                  sizeof(struct pool_entry));
	parts[4] = skuld_checksum(catalog->components, (size_t)catalog->bundles_max *
	                                                       catalog->components_max *
	                                                       sizeof(struct component));
	parts[5] = table_sum(&catalog->skus, 1) ^ table_sum(&catalog->barcodes, 2) << 1;
	parts[6] = table_sum(&catalog->attributes, 3);
	parts[7] = table_sum(&catalog->buffers, 4) + catalog->bundles_used;
	return skuld_checksum(parts, sizeof(parts));
}

/* ---- Snapshot (snapshot_stream.h, docs/FORMAT.md) ------------------------ */

static uint32_t catalog_defined_items(const struct catalog *catalog)
{
	uint32_t count = 0;
	for (uint32_t id = 1; id <= catalog->items_max; id++)
		count += catalog->items[id].defined;
	return count;
}

static uint32_t catalog_defined_locations(const struct catalog *catalog)
{
	uint32_t count = 0;
	for (uint32_t id = 1; id <= catalog->locations_max; id++)
		count += catalog->locations[id].defined;
	return count;
}

/* Defined channels, and the pool entries they use (through *pools). */
static uint32_t catalog_defined_channels(const struct catalog *catalog, uint64_t *pools)
{
	uint32_t count = 0;
	*pools = 0;
	for (uint32_t id = 1; id <= catalog->channels_max; id++) {
		if (!catalog->channels[id].defined)
			continue;
		count++;
		*pools += catalog->channels[id].pool_count;
	}
	return count;
}

static uint64_t catalog_component_count(const struct catalog *catalog)
{
	uint64_t count = 0;
	for (uint32_t id = 1; id <= catalog->items_max; id++)
		count += catalog->items[id].components;
	return count;
}

uint64_t catalog_snapshot_bytes(const struct catalog *catalog)
{
	uint64_t pools = 0;
	uint64_t bytes = 9 * sizeof(struct snapshot_part_header);
	bytes += (uint64_t)catalog_defined_items(catalog) * sizeof(struct snapshot_item);
	bytes += (uint64_t)catalog_defined_locations(catalog) * sizeof(struct snapshot_location);
	bytes += (uint64_t)catalog_defined_channels(catalog, &pools) *
	         sizeof(struct snapshot_channel);
	bytes += pools * sizeof(struct snapshot_pool);
	bytes += catalog_component_count(catalog) * sizeof(struct snapshot_component);
	bytes += (uint64_t)catalog->skus.used * sizeof(struct snapshot_sku);
	bytes += (uint64_t)catalog->barcodes.used * sizeof(struct snapshot_barcode);
	bytes += (uint64_t)catalog->attributes.used * sizeof(struct snapshot_attribute);
	bytes += (uint64_t)catalog->buffers.used * sizeof(struct snapshot_buffer);
	return bytes;
}

static void catalog_save_definitions(const struct catalog *catalog, struct snapshot_writer *writer)
{
	snapshot_part_put(writer, SNAPSHOT_PART_ITEMS, sizeof(struct snapshot_item),
	                  catalog_defined_items(catalog));
	for (uint32_t id = 1; id <= catalog->items_max; id++) {
		const struct item *item = &catalog->items[id];
		if (!item->defined)
			continue;
		struct snapshot_item record = {
		        .id = id,
		        .bundle = item->bundle,
		        .frozen = item->frozen,
		        .scale = item->scale,
		        .bundle_slot = item->bundle_slot,
		        .components = item->components,
		};
		snapshot_put(writer, &record, sizeof(record));
	}
	snapshot_part_put(writer, SNAPSHOT_PART_LOCATIONS, sizeof(struct snapshot_location),
	                  catalog_defined_locations(catalog));
	for (uint32_t id = 1; id <= catalog->locations_max; id++) {
		const struct location *location = &catalog->locations[id];
		if (!location->defined)
			continue;
		struct snapshot_location record = {.id = id, .state = location->state};
		memcpy(record.code, location->code, SKULD_CODE_SIZE);
		snapshot_put(writer, &record, sizeof(record));
	}
	uint64_t pools = 0;
	snapshot_part_put(writer, SNAPSHOT_PART_CHANNELS, sizeof(struct snapshot_channel),
	                  catalog_defined_channels(catalog, &pools));
	for (uint32_t id = 1; id <= catalog->channels_max; id++) {
		const struct channel *channel = &catalog->channels[id];
		if (!channel->defined)
			continue;
		struct snapshot_channel record = {
		        .id = id,
		        .pool_count = channel->pool_count,
		        .buffer = channel->buffer,
		        .cap = channel->cap,
		        .minimum = channel->minimum,
		};
		memcpy(record.code, channel->code, SKULD_CODE_SIZE);
		snapshot_put(writer, &record, sizeof(record));
	}
	snapshot_part_put(writer, SNAPSHOT_PART_POOLS, sizeof(struct snapshot_pool),
	                  (uint32_t)pools);
	for (uint32_t id = 1; id <= catalog->channels_max; id++) {
		const struct channel *channel = &catalog->channels[id];
		const struct pool_entry *pool = catalog_pool(catalog, id);
		for (uint32_t i = 0; channel->defined && i < channel->pool_count; i++) {
			struct snapshot_pool record = {
			        .channel = id,
			        .location = pool[i].location,
			        .active = pool[i].active,
			        .floor = pool[i].floor,
			};
			snapshot_put(writer, &record, sizeof(record));
		}
	}
	snapshot_part_put(writer, SNAPSHOT_PART_COMPONENTS, sizeof(struct snapshot_component),
	                  (uint32_t)catalog_component_count(catalog));
	for (uint32_t id = 1; id <= catalog->items_max; id++) {
		const struct item *item = &catalog->items[id];
		const struct component *block = catalog_components(catalog, item);
		for (uint32_t i = 0; i < item->components; i++) {
			struct snapshot_component record = {
			        .bundle = id, .item = block[i].item, .quantity = block[i].quantity};
			snapshot_put(writer, &record, sizeof(record));
		}
	}
}

void catalog_snapshot_save(const struct catalog *catalog, struct snapshot_writer *writer)
{
	catalog_save_definitions(catalog, writer);
	/* Code tables are append-only: records 0..used-1 are live, in the order
	 * they were made, which load repeats (same record indexes). */
	snapshot_part_put(writer, SNAPSHOT_PART_SKUS, sizeof(struct snapshot_sku),
	                  catalog->skus.used);
	for (uint32_t i = 0; i < catalog->skus.used; i++) {
		const struct sku *sku = table_record(&catalog->skus, i);
		struct snapshot_sku record = {.item = sku->item, .retired = sku->retired};
		memcpy(record.code, sku->code, SKULD_CODE_SIZE);
		snapshot_put(writer, &record, sizeof(record));
	}
	snapshot_part_put(writer, SNAPSHOT_PART_BARCODES, sizeof(struct snapshot_barcode),
	                  catalog->barcodes.used);
	for (uint32_t i = 0; i < catalog->barcodes.used; i++) {
		const struct barcode *barcode = table_record(&catalog->barcodes, i);
		struct snapshot_barcode record = {
		        .item = barcode->item, .retired = barcode->retired, .pack = barcode->pack};
		memcpy(record.code, barcode->code, SKULD_CODE_SIZE);
		snapshot_put(writer, &record, sizeof(record));
	}
	snapshot_part_put(writer, SNAPSHOT_PART_ATTRIBUTES, sizeof(struct snapshot_attribute),
	                  catalog->attributes.used);
	for (uint32_t i = 0; i < catalog->attributes.used; i++) {
		const struct attribute *attribute = table_record(&catalog->attributes, i);
		struct snapshot_attribute record = {.item = attribute->item};
		memcpy(record.text, attribute->text, SKULD_CODE_SIZE);
		snapshot_put(writer, &record, sizeof(record));
	}
	snapshot_part_put(writer, SNAPSHOT_PART_BUFFERS, sizeof(struct snapshot_buffer),
	                  catalog->buffers.used);
	for (uint32_t i = 0; i < catalog->buffers.used; i++) {
		const struct channel_buffer *buffer = table_record(&catalog->buffers, i);
		struct snapshot_buffer record = {
		        .channel = buffer->channel, .item = buffer->item, .buffer = buffer->buffer};
		snapshot_put(writer, &record, sizeof(record));
	}
}

/* Appends a record to an append-only table during load (no journal). */
static void catalog_load_insert(struct table *table, uint64_t hash, const void *record)
{
	uint32_t index = table_alloc(table);
	SKULD_ASSERT(index != TABLE_NONE); /* the part's count was bounded by the capacity */
	memcpy(table_record(table, index), record, table->record_size);
	table_link(table, index, hash);
}

static int catalog_load_item(struct catalog *catalog, struct snapshot_reader *reader,
                             const struct snapshot_item *record, uint32_t previous)
{
	if (record->id <= previous || record->id > catalog->items_max)
		return snapshot_refuse(reader, "item %u: id out of order or above items_max",
		                       record->id);
	if (record->bundle > 1 || record->frozen > 1 || (record->frozen && !record->bundle) ||
	    record->scale > SKULD_SCALE_MAX || record->reserved != 0)
		return snapshot_refuse(reader, "item %u: bad flags or scale", record->id);
	if (record->components > catalog->components_max ||
	    (record->bundle_slot == 0) != (record->components == 0) ||
	    (!record->bundle && record->bundle_slot != 0) ||
	    record->bundle_slot > catalog->bundles_used)
		return snapshot_refuse(reader, "item %u: bad component block %u of %u components",
		                       record->id, record->bundle_slot, record->components);
	if (record->bundle_slot != 0) {
		/* Each block has one owner. A claimed block is marked in its first
		 * entry's unused word until the COMPONENTS part fills it. */
		struct component *first = &catalog->components[(size_t)(record->bundle_slot - 1) *
		                                               catalog->components_max];
		if (first->unused != 0)
			return snapshot_refuse(reader, "item %u: component block %u has two owners",
			                       record->id, record->bundle_slot);
		first->unused = 1;
	}
	struct item *item = &catalog->items[record->id];
	item->defined = 1;
	item->bundle = record->bundle;
	item->frozen = record->frozen;
	item->scale = record->scale;
	item->bundle_slot = record->bundle_slot;
	item->components = record->components;
	return 0;
}

static int catalog_load_items(struct catalog *catalog, struct snapshot_reader *reader,
                              uint64_t *components)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_ITEMS, sizeof(struct snapshot_item),
	                            catalog->items_max, &count);
	uint32_t previous = 0;
	uint32_t blocks = 0;
	*components = 0;
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_item record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret == 0)
			ret = catalog_load_item(catalog, reader, &record, previous);
		previous = record.id;
		blocks += record.bundle_slot != 0;
		*components += record.components;
	}
	if (ret == 0 && blocks != catalog->bundles_used)
		ret = snapshot_refuse(reader, "%u component blocks used, but %u owned",
		                      catalog->bundles_used, blocks);
	return ret;
}

static int catalog_load_locations(struct catalog *catalog, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret =
	        snapshot_part_get(reader, SNAPSHOT_PART_LOCATIONS, sizeof(struct snapshot_location),
	                          catalog->locations_max, &count);
	uint32_t previous = 0;
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_location record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (record.id <= previous || record.id > catalog->locations_max ||
		    record.state > SKULD_LIFECYCLE_CLOSED ||
		    !snapshot_zero(record.reserved, sizeof(record.reserved)) ||
		    !snapshot_code_valid(record.code))
			return snapshot_refuse(reader, "location %u: bad id, state or code",
			                       record.id);
		previous = record.id;
		struct location *location = &catalog->locations[record.id];
		location->defined = 1;
		location->state = record.state;
		memcpy(location->code, record.code, SKULD_CODE_SIZE);
	}
	return ret;
}

static int catalog_load_channels(struct catalog *catalog, struct snapshot_reader *reader,
                                 uint64_t *pools)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_CHANNELS, sizeof(struct snapshot_channel),
	                            catalog->channels_max, &count);
	uint32_t previous = 0;
	*pools = 0;
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_channel record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (record.id <= previous || record.id > catalog->channels_max ||
		    record.pool_count > catalog->pool_max ||
		    !quantity_valid_or_zero(record.buffer) || !quantity_valid_or_zero(record.cap) ||
		    !quantity_valid_or_zero(record.minimum) || !snapshot_code_valid(record.code))
			return snapshot_refuse(reader, "channel %u: bad id, pool, quantity or code",
			                       record.id);
		previous = record.id;
		struct channel *channel = &catalog->channels[record.id];
		channel->defined = 1;
		channel->pool_count = record.pool_count;
		channel->buffer = record.buffer;
		channel->cap = record.cap;
		channel->minimum = record.minimum;
		memcpy(channel->code, record.code, SKULD_CODE_SIZE);
		*pools += record.pool_count;
	}
	return ret;
}

static int catalog_load_pools(struct catalog *catalog, struct snapshot_reader *reader,
                              uint64_t expected)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_POOLS, sizeof(struct snapshot_pool),
	                            UINT32_MAX, &count);
	if (ret == 0 && count != expected)
		return snapshot_refuse(reader, "%u pool entries, channels use %llu", count,
		                       (unsigned long long)expected);
	for (uint32_t id = 1; ret == 0 && id <= catalog->channels_max; id++) {
		const struct channel *channel = &catalog->channels[id];
		struct pool_entry *pool = catalog_pool(catalog, id);
		for (uint32_t i = 0; ret == 0 && channel->defined && i < channel->pool_count; i++) {
			struct snapshot_pool record;
			ret = snapshot_get(reader, &record, sizeof(record));
			if (ret != 0)
				break;
			if (record.channel != id ||
			    catalog_location(catalog, record.location) == NULL ||
			    record.active > 1 || record.reserved != 0 ||
			    !quantity_valid_or_zero(record.floor) ||
			    pool_find_any(catalog, id, record.location) != NULL)
				return snapshot_refuse(reader,
				                       "channel %u pool entry %u: bad location %u, "
				                       "flag or floor",
				                       id, i, record.location);
			/* pool_find_any scans pool_count entries (set by the channel
			 * record); those not read yet are zero, location 0, never
			 * defined: the duplicate check above sees earlier ones only. */
			pool[i].location = record.location;
			pool[i].active = record.active;
			pool[i].floor = record.floor;
		}
	}
	return ret;
}

static int catalog_load_components(struct catalog *catalog, struct snapshot_reader *reader,
                                   uint64_t expected)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_COMPONENTS,
	                            sizeof(struct snapshot_component), UINT32_MAX, &count);
	if (ret == 0 && count != expected)
		return snapshot_refuse(reader, "%u bundle components, bundles have %llu", count,
		                       (unsigned long long)expected);
	for (uint32_t id = 1; ret == 0 && id <= catalog->items_max; id++) {
		const struct item *bundle = &catalog->items[id];
		struct component *block = (struct component *)catalog_components(catalog, bundle);
		for (uint32_t i = 0; ret == 0 && i < bundle->components; i++) {
			struct snapshot_component record;
			ret = snapshot_get(reader, &record, sizeof(record));
			if (ret != 0)
				break;
			const struct item *part = catalog_item(catalog, record.item);
			if (record.bundle != id || part == NULL || part->bundle ||
			    record.item == id || !quantity_valid(record.quantity))
				return snapshot_refuse(reader,
				                       "bundle %u component %u: bad item %u or "
				                       "quantity",
				                       id, i, record.item);
			for (uint32_t j = 0; j < i; j++) {
				if (block[j].item == record.item)
					return snapshot_refuse(reader,
					                       "bundle %u: component %u twice", id,
					                       record.item);
			}
			block[i].item = record.item;
			block[i].unused = 0;
			block[i].quantity = record.quantity;
		}
	}
	return ret;
}

static int catalog_load_skus(struct catalog *catalog, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_SKUS, sizeof(struct snapshot_sku),
	                            catalog->skus.capacity, &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_sku record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (!snapshot_code_valid(record.code) ||
		    catalog_item(catalog, record.item) == NULL || record.retired > 1 ||
		    catalog_sku_find(catalog, record.code) != NULL)
			return snapshot_refuse(reader,
			                       "SKU code %u: empty, of an unknown item %u, or "
			                       "twice",
			                       i, record.item);
		struct sku sku = {.item = record.item, .retired = record.retired};
		memcpy(sku.code, record.code, SKULD_CODE_SIZE);
		catalog_load_insert(&catalog->skus, code_hash(sku.code), &sku);
	}
	return ret;
}

static int catalog_load_barcodes(struct catalog *catalog, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_BARCODES, sizeof(struct snapshot_barcode),
	                            catalog->barcodes.capacity, &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_barcode record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (!snapshot_code_valid(record.code) ||
		    catalog_item(catalog, record.item) == NULL || record.retired > 1 ||
		    !quantity_valid(record.pack) ||
		    barcode_find(catalog, record.code, record.item) != NULL)
			return snapshot_refuse(reader,
			                       "barcode %u: empty, of an unknown item %u, bad "
			                       "pack, or twice",
			                       i, record.item);
		struct barcode barcode = {
		        .item = record.item, .retired = record.retired, .pack = record.pack};
		memcpy(barcode.code, record.code, SKULD_CODE_SIZE);
		catalog_load_insert(&catalog->barcodes, code_hash(barcode.code), &barcode);
	}
	return ret;
}

static int catalog_load_attributes(struct catalog *catalog, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_ATTRIBUTES,
	                            sizeof(struct snapshot_attribute), catalog->attributes.capacity,
	                            &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_attribute record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		size_t name_size = attribute_name_size(record.text);
		if (catalog_item(catalog, record.item) == NULL || record.reserved != 0 ||
		    name_size == 0 ||
		    catalog_attribute_find(catalog, record.item, record.text, name_size) != NULL)
			return snapshot_refuse(reader,
			                       "attribute %u: of an unknown item %u, no name, "
			                       "or twice",
			                       i, record.item);
		struct attribute attribute = {.item = record.item};
		memcpy(attribute.text, record.text, SKULD_CODE_SIZE);
		catalog_load_insert(&catalog->attributes,
		                    attribute_key_hash(record.item, record.text, name_size),
		                    &attribute);
	}
	return ret;
}

static int catalog_load_buffers(struct catalog *catalog, struct snapshot_reader *reader)
{
	uint32_t count = 0;
	int ret = snapshot_part_get(reader, SNAPSHOT_PART_BUFFERS, sizeof(struct snapshot_buffer),
	                            catalog->buffers.capacity, &count);
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct snapshot_buffer record;
		ret = snapshot_get(reader, &record, sizeof(record));
		if (ret != 0)
			break;
		if (catalog_channel(catalog, record.channel) == NULL ||
		    catalog_item(catalog, record.item) == NULL ||
		    !quantity_valid_or_zero(record.buffer) ||
		    buffer_find(catalog, record.channel, record.item) != NULL)
			return snapshot_refuse(reader,
			                       "buffer %u: unknown channel %u or item %u, bad "
			                       "quantity, or twice",
			                       i, record.channel, record.item);
		struct channel_buffer buffer = {
		        .channel = record.channel, .item = record.item, .buffer = record.buffer};
		catalog_load_insert(&catalog->buffers, buffer_key_hash(record.channel, record.item),
		                    &buffer);
	}
	return ret;
}

int catalog_snapshot_load(struct catalog *catalog, struct snapshot_reader *reader)
{
	uint64_t components = 0;
	uint64_t pools = 0;
	int ret = catalog_load_items(catalog, reader, &components);
	if (ret == 0)
		ret = catalog_load_locations(catalog, reader);
	if (ret == 0)
		ret = catalog_load_channels(catalog, reader, &pools);
	if (ret == 0)
		ret = catalog_load_pools(catalog, reader, pools);
	if (ret == 0)
		ret = catalog_load_components(catalog, reader, components);
	if (ret == 0)
		ret = catalog_load_skus(catalog, reader);
	if (ret == 0)
		ret = catalog_load_barcodes(catalog, reader);
	if (ret == 0)
		ret = catalog_load_attributes(catalog, reader);
	if (ret == 0)
		ret = catalog_load_buffers(catalog, reader);
	return ret;
}
