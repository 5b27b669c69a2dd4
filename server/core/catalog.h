/*
 * catalog.h — items, codes, locations, bundles and channels.
 *
 * Owns: the definitions that movements refer to by compact numeric id:
 *   - items 1..items_max (direct-indexed): bundle flag, scale, frozen flag;
 *   - SKU codes (aliases; retired, never deleted, never moved to another
 *     item, so a code's history stays unambiguous), barcodes (one barcode,
 *     many (item, pack) pairs), variant attributes ("name=value");
 *   - locations 1..locations_max with their lifecycle and code;
 *   - bundle components: a fixed block of bundle_components_max per bundle,
 *     allocated at the bundle's first component;
 *   - channels 1..channels_max: code, default buffer, cap, minimum, a pool
 *     of (location, floor) of pool_locations_max entries, per-item buffers.
 * It applies the catalog event kinds (docs/LEDGER.md section 5, Catalog).
 *
 * Invariants:
 *   - A frozen bundle's components never change (a movement used them).
 *   - A component is a defined, non-bundle item other than the bundle.
 *   - Lifecycle only moves forward: ACTIVE -> NOT_SELLING -> CLOSED.
 *   - Every change goes through the journal, so a failed chain undoes it.
 */
#ifndef SKULD_CATALOG_H
#define SKULD_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "ledger.h"
#include "protocol.h"
#include "table.h"

#define CATALOG_COMPONENTS_MAX 64

struct item {
	uint8_t defined;
	uint8_t bundle;
	uint8_t frozen; /* bundle: a movement used its components */
	uint8_t scale;
	uint32_t bundle_slot; /* component block + 1; 0: none yet */
	uint32_t components;  /* components defined */
	uint32_t unused;
};

struct location {
	uint8_t defined;
	uint8_t state; /* enum skuld_location_state */
	uint8_t unused[6];
	char code[SKULD_CODE_SIZE];
};

struct component {
	uint32_t item;
	uint32_t unused;
	int64_t quantity; /* units of item per bundle */
};

struct pool_entry {
	uint32_t location;
	uint32_t active; /* 0: retired from the pool (entry kept for reuse) */
	int64_t floor;   /* available a channel hold never goes below */
};

struct channel {
	uint32_t defined;
	uint32_t pool_count; /* entries used in the channel's pool block */
	int64_t buffer;      /* default safety buffer */
	int64_t cap;         /* 0: none */
	int64_t minimum;     /* publish 0 below this */
	char code[SKULD_CODE_SIZE];
};

struct sku {
	char code[SKULD_CODE_SIZE];
	uint32_t item;
	uint32_t retired;
};

struct barcode {
	char code[SKULD_CODE_SIZE];
	uint32_t item;
	uint32_t retired;
	int64_t pack;
};

struct attribute {
	uint32_t item;
	char text[SKULD_CODE_SIZE]; /* "name=value" */
};

struct channel_buffer {
	uint32_t channel;
	uint32_t item;
	int64_t buffer;
};

struct catalog {
	uint32_t items_max;
	uint32_t locations_max;
	uint32_t channels_max;
	uint32_t bundles_max;
	uint32_t components_max; /* per bundle */
	uint32_t pool_max;       /* per channel */
	uint32_t bundles_used;
	struct item *items;           /* [items_max + 1] */
	struct location *locations;   /* [locations_max + 1] */
	struct channel *channels;     /* [channels_max + 1] */
	struct pool_entry *pools;     /* [channels_max + 1][pool_max] */
	struct component *components; /* [bundles_max][components_max] */
	struct table skus;
	struct table barcodes;
	struct table attributes;
	struct table buffers;
};

size_t catalog_bytes(const struct ledger_config *config);
int catalog_init(struct catalog *catalog, const struct ledger_config *config);
void catalog_free(struct catalog *catalog);

/* Applies one catalog event; returns its status (docs/LEDGER.md). */
uint32_t catalog_apply(struct catalog *catalog, struct journal *journal,
                       const struct skuld_event *event);

/* Is kind a catalog kind? */
static inline int catalog_kind(uint32_t kind)
{
	return kind >= SKULD_ITEM_DEFINE && kind <= SKULD_CHANNEL_MIN;
}

/* Defined item / location / channel by id, or NULL. */
static inline struct item *catalog_item(const struct catalog *catalog, uint32_t id)
{
	if (id == 0 || id > catalog->items_max || !catalog->items[id].defined)
		return NULL;
	return &catalog->items[id];
}

static inline struct location *catalog_location(const struct catalog *catalog, uint32_t id)
{
	if (id == 0 || id > catalog->locations_max || !catalog->locations[id].defined)
		return NULL;
	return &catalog->locations[id];
}

static inline struct channel *catalog_channel(const struct catalog *catalog, uint32_t id)
{
	if (id == 0 || id > catalog->channels_max || !catalog->channels[id].defined)
		return NULL;
	return &catalog->channels[id];
}

/* The component block of a bundle item (item->components entries). */
static inline const struct component *catalog_components(const struct catalog *catalog,
                                                         const struct item *item)
{
	if (item->bundle_slot == 0)
		return NULL;
	return &catalog->components[(size_t)(item->bundle_slot - 1) * catalog->components_max];
}

/* The pool block of a channel (channel->pool_count entries, some retired). */
static inline struct pool_entry *catalog_pool(const struct catalog *catalog, uint32_t channel)
{
	return &catalog->pools[(size_t)channel * catalog->pool_max];
}

/* The active pool entry of location in channel, or NULL. */
const struct pool_entry *catalog_pool_find(const struct catalog *catalog, uint32_t channel,
                                           uint32_t location);

/* The buffer of (channel, item): the per-item one if set, else the default. */
int64_t catalog_buffer(const struct catalog *catalog, uint32_t channel, uint32_t item);

/* Look-ups by code (SKULD_CODE_SIZE bytes). */
const struct sku *catalog_sku_find(const struct catalog *catalog, const char *code);
uint32_t catalog_barcode_lookup(const struct catalog *catalog, const char *code,
                                struct ledger_barcode_match *out, uint32_t max);
const struct attribute *catalog_attribute_find(const struct catalog *catalog, uint32_t item,
                                               const char *name, size_t name_size);

/* Order-independent hash of every catalog record (docs/LEDGER.md 7). */
uint64_t catalog_hash(const struct catalog *catalog);

#endif /* SKULD_CATALOG_H */
