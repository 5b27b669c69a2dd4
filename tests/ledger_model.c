/*
 * ledger_model.c — the reference model of the ledger state machine and its
 * generator (ledger_model.h has the contract).
 *
 * Readings of points docs/LEDGER.md leaves implicit, modelled here:
 *   - RELEASE and EXPIRE results: location = the hold's location.
 *   - kits() of a bundle without components: 0 (ledger_available and the
 *     channel quantity of such a bundle).
 *   - A hold's remaining after RELEASE is not compared (not specified).
 *   - BUNDLE_COMPONENT's "bundles_max bundles already have components"
 *     refuses only a bundle that has none yet.
 *   - Stock entries created by a chain that fails are undone with it (the
 *     stock-room rule can only observe this at the stock_max boundary).
 *   - ledger_level checks item, then bundle, then location.
 */
#include "ledger_model.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Configuration -------------------------------------------------------- */

void model_config(struct ledger_config *config)
{
	memset(config, 0, sizeof(*config));
	config->items_max = CFG_ITEMS;
	config->locations_max = CFG_LOCATIONS;
	config->channels_max = CFG_CHANNELS;
	config->stock_max = CFG_STOCK;
	config->codes_max = CFG_CODES;
	config->barcodes_max = CFG_BARCODES;
	config->attributes_max = CFG_ATTRIBUTES;
	config->bundles_max = CFG_BUNDLES;
	config->bundle_components_max = CFG_COMPONENTS;
	config->pool_locations_max = CFG_POOL;
	config->channel_buffers_max = CFG_BUFFERS;
	config->holds_max = CFG_HOLDS;
	config->closed_holds_max = CFG_CLOSED_HOLDS;
	config->closed_hold_grace_ns = CFG_CLOSED_GRACE_NS;
	config->ttl_max_s = CFG_TTL_MAX_S;
	config->counts_max = CFG_COUNTS;
	config->transfers_max = CFG_TRANSFERS;
	config->keys_max = CFG_KEYS;
	config->key_window_ns = CFG_KEY_WINDOW_NS;
	config->batch_events_max = CFG_BATCH;
	config->chain_events_max = CFG_CHAIN;
	config->listings_max = 64;
	config->discrepancies_max = 32; /* small: the runs evict */
	config->count_off_percent = 5;
}

/* ---- Coverage of the model's branches (printed with SKULD_MODEL_VERBOSE) -- */

const char *const coverage_names[COVER_COUNT] = {
        "bound check",         "sale pre-count",        "sale during open count", "partial commit",
        "commit past due",     "commit expired hold",   "commit expired short",   "channel reserve",
        "channel reserve tie", "bundle reserve",        "channel reallocate",     "chain undone",
        "key forgotten",       "closed hold forgotten", "closed hold over max",   "stock room full",
        "expected bound",
};

uint64_t coverage[COVER_COUNT];

/* ---- The reference model: arithmetic and lookups ------------------------- */

static bool code_equal(const char *a, const char *b)
{
	return memcmp(a, b, SKULD_CODE_SIZE) == 0;
}

int64_t entry_available(const struct model_entry *entry)
{
	const int64_t *c = entry->counter;
	return c[COUNTER_ON_HAND] - c[COUNTER_RESERVED] - c[COUNTER_COMMITTED] -
	       c[COUNTER_DAMAGED] - c[COUNTER_QUARANTINE];
}

int64_t model_available(const struct model *model, uint32_t item, uint32_t location)
{
	return entry_available(&model->stock[item][location]);
}

/* Division rounding toward minus infinity; divisor > 0. */
static int64_t floor_div(int64_t dividend, int64_t divisor)
{
	int64_t quotient = dividend / divisor;
	if (dividend % divisor != 0 && dividend < 0)
		quotient--;
	return quotient;
}

/* kits(b, L, f) of section 1; 0 for a bundle without components. */
static int64_t model_kits(const struct model *model, uint32_t bundle, uint32_t location,
                          int64_t floor)
{
	const struct model_item *item = &model->item[bundle];
	if (item->component_count == 0)
		return 0;
	int64_t kits = INT64_MAX;
	for (uint32_t c = 0; c < item->component_count; c++) {
		int64_t spare = model_available(model, item->component[c], location) - floor;
		int64_t n = floor_div(spare, item->component_k[c]);
		if (n < kits)
			kits = n;
	}
	return kits < 0 ? 0 : kits;
}

/* "available" as results report it: kits for a bundle. */
int64_t model_result_available(const struct model *model, uint32_t item, uint32_t location)
{
	if (model->item[item].bundle)
		return model_kits(model, item, location, 0);
	return model_available(model, item, location);
}

/* spare of section 5 RESERVE: available - floor, or kits with the floor. */
static int64_t model_spare(const struct model *model, uint32_t item, uint32_t location,
                           int64_t floor)
{
	if (model->item[item].bundle)
		return model_kits(model, item, location, floor);
	return model_available(model, item, location) - floor;
}

/* The unit entries a quantity of item touches: itself, or its components. */
struct expansion model_expand(const struct model *model, uint32_t item)
{
	struct expansion expansion = {0};
	const struct model_item *entry = &model->item[item];
	if (!entry->bundle) {
		expansion.count = 1;
		expansion.item[0] = item;
		expansion.k[0] = 1;
		return expansion;
	}
	expansion.count = entry->component_count;
	for (uint32_t c = 0; c < entry->component_count; c++) {
		expansion.item[c] = entry->component[c];
		expansion.k[c] = entry->component_k[c];
	}
	return expansion;
}

static bool quantity_valid_plain(int64_t quantity)
{
	return quantity > 0 && quantity <= QMAX;
}

/* qv(q) of section 1, with the bundle rule. */
static bool quantity_valid(const struct model *model, uint32_t item, int64_t quantity)
{
	if (!quantity_valid_plain(quantity))
		return false;
	const struct model_item *entry = &model->item[item];
	if (entry->bundle) {
		for (uint32_t c = 0; c < entry->component_count; c++) {
			if (quantity > QMAX / entry->component_k[c])
				return false;
		}
	}
	return true;
}

static bool signed_quantity_valid(int64_t quantity)
{
	return quantity != 0 && quantity >= -QMAX && quantity <= QMAX;
}

struct model_code *model_code_find(struct model *model, const char *text)
{
	for (uint32_t i = 0; i < model->code_count; i++) {
		if (code_equal(model->code[i].text, text))
			return &model->code[i];
	}
	return NULL;
}

struct model_barcode *model_barcode_find(struct model *model, const char *text, uint32_t item)
{
	for (uint32_t i = 0; i < model->barcode_count; i++) {
		if (model->barcode[i].item == item && code_equal(model->barcode[i].text, text))
			return &model->barcode[i];
	}
	return NULL;
}

struct model_attribute *model_attribute_find(struct model *model, uint32_t item, const char *name)
{
	for (uint32_t i = 0; i < model->attribute_count; i++) {
		if (model->attribute[i].item == item && strcmp(model->attribute[i].name, name) == 0)
			return &model->attribute[i];
	}
	return NULL;
}

static struct model_pool *model_pool_find(struct model *model, uint32_t channel, uint32_t location)
{
	struct model_channel *entry = &model->channel[channel];
	for (uint32_t i = 0; i < entry->pool_count; i++) {
		if (entry->pool[i].location == location)
			return &entry->pool[i];
	}
	return NULL;
}

static struct model_buffer *model_buffer_find(struct model *model, uint32_t channel, uint32_t item)
{
	for (uint32_t i = 0; i < model->buffer_count; i++) {
		if (model->buffer[i].channel == channel && model->buffer[i].item == item)
			return &model->buffer[i];
	}
	return NULL;
}

static struct model_count *model_count_find(struct model *model, uint32_t item, uint32_t location)
{
	for (uint32_t i = 0; i < model->count_count; i++) {
		if (model->count[i].item == item && model->count[i].location == location)
			return &model->count[i];
	}
	return NULL;
}

static struct model_transfer *model_transfer_find(struct model *model, uint64_t id, uint32_t item)
{
	for (uint32_t i = 0; i < model->transfer_count; i++) {
		if (model->transfer[i].id == id && model->transfer[i].item == item)
			return &model->transfer[i];
	}
	return NULL;
}

struct model_hold *model_hold_find(struct model *model, uint64_t id)
{
	for (uint32_t i = 0; i < model->hold_count; i++) {
		if (model->hold[i].id == id)
			return &model->hold[i];
	}
	return NULL;
}

uint32_t model_holds_open(const struct model *model)
{
	uint32_t open = 0;
	for (uint32_t i = 0; i < model->hold_count; i++)
		open += model->hold[i].state == LEDGER_HOLD_OPEN;
	return open;
}

static uint32_t model_bundles_with_components(const struct model *model)
{
	uint32_t bundles = 0;
	for (uint32_t i = 1; i <= CFG_ITEMS; i++)
		bundles += model->item[i].bundle && model->item[i].component_count > 0;
	return bundles;
}

static void model_hold_remove(struct model *model, uint32_t index)
{
	model->hold[index] = model->hold[model->hold_count - 1];
	model->hold_count--;
}

static void model_hold_close(struct model *model, struct model_hold *hold, uint32_t state)
{
	hold->state = state;
	hold->closed_at = model->time;
	hold->close_order = model->close_order_next++;
}

/* ---- The reference model: counter changes with the bound check ----------- */

/* The counter changes of one event, applied only if every counter stays in
 * [-QMAX, QMAX] (the last check of every kind, section 1). */
struct plan {
	uint32_t count;
	struct {
		uint32_t item;
		uint32_t location;
		int64_t delta[COUNTER_COUNT];
	} change[2 * CFG_COMPONENTS];
};

static void plan_add(struct plan *plan, uint32_t item, uint32_t location, enum counter counter,
                     int64_t delta)
{
	uint32_t i = 0;
	while (i < plan->count &&
	       (plan->change[i].item != item || plan->change[i].location != location))
		i++;
	if (i == plan->count) {
		cr_assert_lt(plan->count, 2 * CFG_COMPONENTS, "model plan overflow");
		memset(&plan->change[i], 0, sizeof(plan->change[i]));
		plan->change[i].item = item;
		plan->change[i].location = location;
		plan->count++;
	}
	plan->change[i].delta[counter] += delta;
}

static bool plan_fits(const struct model *model, const struct plan *plan)
{
	for (uint32_t i = 0; i < plan->count; i++) {
		const struct model_entry *entry =
		        &model->stock[plan->change[i].item][plan->change[i].location];
		for (int c = 0; c < COUNTER_COUNT; c++) {
			int64_t after = entry->counter[c] + plan->change[i].delta[c];
			if (after < -QMAX || after > QMAX)
				return false;
		}
	}
	return true;
}

static uint32_t bound_failed(void)
{
	coverage[COVER_BOUND]++;
	return SKULD_QUANTITY_INVALID;
}

/* The stock-room rule, then the counter bound (section 1): every entry a
 * plan touches is created if it does not exist yet. */
static uint32_t plan_check(const struct model *model, const struct plan *plan)
{
	uint32_t created = 0;
	for (uint32_t i = 0; i < plan->count; i++)
		created += !model->stock_exists[plan->change[i].item][plan->change[i].location];
	if (model->stock_count + created > CFG_STOCK) {
		coverage[COVER_STOCK_FULL]++;
		return SKULD_CATALOG_FULL;
	}
	if (!plan_fits(model, plan))
		return bound_failed();
	return SKULD_OK;
}

static void plan_apply(struct model *model, const struct plan *plan)
{
	for (uint32_t i = 0; i < plan->count; i++) {
		uint32_t item = plan->change[i].item;
		uint32_t location = plan->change[i].location;
		if (!model->stock_exists[item][location]) {
			model->stock_exists[item][location] = true;
			model->stock_count++;
		}
		struct model_entry *entry = &model->stock[item][location];
		for (int c = 0; c < COUNTER_COUNT; c++)
			entry->counter[c] += plan->change[i].delta[c];
	}
}

/* Every unit entry of the expansion of quantity of item at location. */
static void plan_expansion(struct plan *plan, const struct expansion *expansion, uint32_t location,
                           int64_t quantity, enum counter counter, int sign)
{
	for (uint32_t c = 0; c < expansion->count; c++)
		plan_add(plan, expansion->item[c], location, counter,
		         sign * quantity * expansion->k[c]);
}

/* ---- The reference model: shared checks (section 5 notation) ------------- */

#define CHECK(expression)                                                                          \
	do {                                                                                       \
		uint32_t check_status_ = (expression);                                             \
		if (check_status_ != SKULD_OK)                                                     \
			return check_status_;                                                      \
	} while (0)

uint32_t check_item(const struct model *model, uint32_t item)
{
	if (item == 0 || item > CFG_ITEMS || !model->item[item].defined)
		return SKULD_ITEM_UNKNOWN;
	return SKULD_OK;
}

static uint32_t check_stocked(const struct model *model, uint32_t item)
{
	return model->item[item].bundle ? SKULD_BUNDLE_NOT_STOCKED : SKULD_OK;
}

static uint32_t check_expandable(const struct model *model, uint32_t item)
{
	const struct model_item *entry = &model->item[item];
	return entry->bundle && entry->component_count == 0 ? SKULD_BUNDLE_INVALID : SKULD_OK;
}

uint32_t check_location(const struct model *model, uint32_t location)
{
	if (location == 0 || location > CFG_LOCATIONS || !model->location[location].defined)
		return SKULD_LOCATION_UNKNOWN;
	return SKULD_OK;
}

static uint32_t check_not_closed(const struct model *model, uint32_t location)
{
	return model->location[location].state == SKULD_LIFECYCLE_CLOSED ? SKULD_LOCATION_CLOSED
	                                                                 : SKULD_OK;
}

static uint32_t check_selling(const struct model *model, uint32_t location)
{
	if (model->location[location].state == SKULD_LIFECYCLE_NOT_SELLING)
		return SKULD_LOCATION_NOT_SELLING;
	return check_not_closed(model, location);
}

static uint32_t check_channel(const struct model *model, uint32_t channel)
{
	if (channel == 0 || channel > CFG_CHANNELS || !model->channel[channel].defined)
		return SKULD_CHANNEL_UNKNOWN;
	return SKULD_OK;
}

static bool nonnegative_quantity_valid(int64_t quantity)
{
	return quantity >= 0 && quantity <= QMAX;
}

/* Result of a movement at a location: section 2's defaults. */
static void result_at(const struct model *model, struct skuld_result *result, uint32_t item,
                      uint32_t location, int64_t quantity, uint16_t flags)
{
	result->location = location;
	result->quantity = quantity;
	result->available = model_result_available(model, item, location);
	result->flags = flags;
}

static uint16_t expanded_flag(const struct model *model, uint32_t item)
{
	return model->item[item].bundle ? SKULD_RESULT_EXPANDED : 0;
}

static void freeze(struct model *model, uint32_t item)
{
	if (model->item[item].bundle)
		model->item[item].frozen = true;
}

/* ---- The reference model: catalog kinds ---------------------------------- */

static uint32_t kind_item_define(struct model *model, const struct skuld_event *event)
{
	if (event->item == 0)
		return SKULD_ITEM_UNKNOWN;
	if (event->item > CFG_ITEMS)
		return SKULD_CATALOG_FULL;
	if (model->item[event->item].defined)
		return SKULD_ITEM_EXISTS;
	if (event->code[0] == '\0')
		return SKULD_CODE_INVALID;
	if (event->scale > SKULD_SCALE_MAX)
		return SKULD_INVALID_STATE;
	if (model_code_find(model, event->code) != NULL)
		return SKULD_CODE_EXISTS;
	if (model->code_count == CFG_CODES)
		return SKULD_CATALOG_FULL;
	struct model_item *item = &model->item[event->item];
	item->defined = true;
	item->bundle = (event->flags & SKULD_EVENT_BUNDLE) != 0;
	item->scale = event->scale;
	struct model_code *code = &model->code[model->code_count++];
	memcpy(code->text, event->code, SKULD_CODE_SIZE);
	code->item = event->item;
	code->retired = false;
	return SKULD_OK;
}

static uint32_t kind_sku_alias(struct model *model, const struct skuld_event *event)
{
	CHECK(check_item(model, event->item));
	if (event->code[0] == '\0')
		return SKULD_CODE_INVALID;
	struct model_code *code = model_code_find(model, event->code);
	if (event->flags & SKULD_EVENT_RETIRE) {
		if (code == NULL || code->item != event->item || code->retired)
			return SKULD_CODE_INVALID;
		code->retired = true;
		return SKULD_OK;
	}
	if (code != NULL && code->item != event->item)
		return SKULD_CODE_EXISTS;
	if (code != NULL && !code->retired)
		return SKULD_CODE_EXISTS;
	if (code != NULL) {
		code->retired = false;
		return SKULD_OK;
	}
	if (model->code_count == CFG_CODES)
		return SKULD_CATALOG_FULL;
	code = &model->code[model->code_count++];
	memcpy(code->text, event->code, SKULD_CODE_SIZE);
	code->item = event->item;
	code->retired = false;
	return SKULD_OK;
}

static uint32_t kind_barcode_define(struct model *model, const struct skuld_event *event)
{
	CHECK(check_item(model, event->item));
	if (event->code[0] == '\0')
		return SKULD_CODE_INVALID;
	struct model_barcode *barcode = model_barcode_find(model, event->code, event->item);
	if (event->flags & SKULD_EVENT_RETIRE) {
		if (barcode == NULL || !barcode->active)
			return SKULD_CODE_INVALID;
		barcode->active = false;
		return SKULD_OK;
	}
	if (!quantity_valid_plain(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (barcode != NULL && barcode->active)
		return SKULD_CODE_EXISTS;
	if (barcode != NULL) {
		barcode->active = true;
		barcode->pack = event->quantity;
		return SKULD_OK;
	}
	if (model->barcode_count == CFG_BARCODES)
		return SKULD_CATALOG_FULL;
	barcode = &model->barcode[model->barcode_count++];
	memcpy(barcode->text, event->code, SKULD_CODE_SIZE);
	barcode->item = event->item;
	barcode->pack = event->quantity;
	barcode->active = true;
	return SKULD_OK;
}

static uint32_t kind_attribute_set(struct model *model, const struct skuld_event *event)
{
	CHECK(check_item(model, event->item));
	char text[SKULD_CODE_SIZE + 1];
	memcpy(text, event->code, SKULD_CODE_SIZE);
	text[SKULD_CODE_SIZE] = '\0';
	char *equals = strchr(text, '=');
	if (text[0] == '\0' || equals == NULL || equals == text)
		return SKULD_CODE_INVALID;
	*equals = '\0';
	const char *value = equals + 1;
	struct model_attribute *attribute = model_attribute_find(model, event->item, text);
	if (attribute == NULL) {
		if (model->attribute_count == CFG_ATTRIBUTES)
			return SKULD_CATALOG_FULL;
		attribute = &model->attribute[model->attribute_count++];
		attribute->item = event->item;
		strcpy(attribute->name, text);
	}
	strcpy(attribute->value, value);
	return SKULD_OK;
}

static uint32_t kind_location_define(struct model *model, const struct skuld_event *event)
{
	if (event->location == 0)
		return SKULD_LOCATION_UNKNOWN;
	if (event->location > CFG_LOCATIONS)
		return SKULD_CATALOG_FULL;
	if (model->location[event->location].defined)
		return SKULD_LOCATION_EXISTS;
	if (event->code[0] == '\0')
		return SKULD_CODE_INVALID;
	if (event->reason > SKULD_LIFECYCLE_CLOSED)
		return SKULD_INVALID_STATE;
	for (uint32_t l = 1; l <= CFG_LOCATIONS; l++) {
		if (model->location[l].defined && code_equal(model->location[l].code, event->code))
			return SKULD_CODE_EXISTS;
	}
	struct model_location *location = &model->location[event->location];
	location->defined = true;
	memcpy(location->code, event->code, SKULD_CODE_SIZE);
	location->state = event->reason;
	return SKULD_OK;
}

static uint32_t kind_location_state(struct model *model, const struct skuld_event *event)
{
	CHECK(check_location(model, event->location));
	struct model_location *location = &model->location[event->location];
	if (event->reason > SKULD_LIFECYCLE_CLOSED || event->reason < location->state)
		return SKULD_INVALID_STATE;
	location->state = event->reason;
	return SKULD_OK;
}

static uint32_t kind_bundle_component(struct model *model, const struct skuld_event *event)
{
	CHECK(check_item(model, event->item));
	struct model_item *bundle = &model->item[event->item];
	if (!bundle->bundle)
		return SKULD_NOT_A_BUNDLE;
	if (event->target == 0 || event->target > CFG_ITEMS || !model->item[event->target].defined)
		return SKULD_ITEM_UNKNOWN;
	if (model->item[event->target].bundle || event->target == event->item)
		return SKULD_BUNDLE_INVALID;
	if (!quantity_valid_plain(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (bundle->frozen)
		return SKULD_BUNDLE_INVALID;
	for (uint32_t c = 0; c < bundle->component_count; c++) {
		if (bundle->component[c] == event->target) {
			bundle->component_k[c] = event->quantity;
			return SKULD_OK;
		}
	}
	if (bundle->component_count == CFG_COMPONENTS)
		return SKULD_CATALOG_FULL;
	if (bundle->component_count == 0 && model_bundles_with_components(model) >= CFG_BUNDLES)
		return SKULD_CATALOG_FULL;
	bundle->component[bundle->component_count] = event->target;
	bundle->component_k[bundle->component_count] = event->quantity;
	bundle->component_count++;
	return SKULD_OK;
}

static uint32_t kind_channel_define(struct model *model, const struct skuld_event *event)
{
	if (event->channel == 0)
		return SKULD_CHANNEL_UNKNOWN;
	if (event->channel > CFG_CHANNELS)
		return SKULD_CATALOG_FULL;
	if (model->channel[event->channel].defined)
		return SKULD_CHANNEL_EXISTS;
	if (event->code[0] == '\0')
		return SKULD_CODE_INVALID;
	if (!nonnegative_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	for (uint32_t c = 1; c <= CFG_CHANNELS; c++) {
		if (model->channel[c].defined && code_equal(model->channel[c].code, event->code))
			return SKULD_CODE_EXISTS;
	}
	struct model_channel *channel = &model->channel[event->channel];
	memset(channel, 0, sizeof(*channel));
	channel->defined = true;
	memcpy(channel->code, event->code, SKULD_CODE_SIZE);
	channel->buffer = event->quantity;
	return SKULD_OK;
}

static uint32_t kind_channel_pool(struct model *model, const struct skuld_event *event)
{
	CHECK(check_channel(model, event->channel));
	CHECK(check_location(model, event->location));
	if (!nonnegative_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct model_channel *channel = &model->channel[event->channel];
	struct model_pool *pool = model_pool_find(model, event->channel, event->location);
	if (event->flags & SKULD_EVENT_RETIRE) {
		if (pool == NULL)
			return SKULD_LOCATION_MISMATCH;
		*pool = channel->pool[--channel->pool_count];
		return SKULD_OK;
	}
	if (pool != NULL) {
		pool->floor = event->quantity;
		return SKULD_OK;
	}
	if (channel->pool_count == CFG_POOL)
		return SKULD_CATALOG_FULL;
	channel->pool[channel->pool_count].location = event->location;
	channel->pool[channel->pool_count].floor = event->quantity;
	channel->pool_count++;
	return SKULD_OK;
}

static uint32_t kind_channel_buffer(struct model *model, const struct skuld_event *event)
{
	CHECK(check_channel(model, event->channel));
	CHECK(check_item(model, event->item));
	if (!nonnegative_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct model_buffer *buffer = model_buffer_find(model, event->channel, event->item);
	if (buffer == NULL) {
		if (model->buffer_count == CFG_BUFFERS)
			return SKULD_CATALOG_FULL;
		buffer = &model->buffer[model->buffer_count++];
		buffer->channel = event->channel;
		buffer->item = event->item;
	}
	buffer->quantity = event->quantity;
	return SKULD_OK;
}

static uint32_t kind_channel_cap_minimum(struct model *model, const struct skuld_event *event)
{
	CHECK(check_channel(model, event->channel));
	if (!nonnegative_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (event->kind == SKULD_CHANNEL_CAP)
		model->channel[event->channel].cap = event->quantity;
	else
		model->channel[event->channel].minimum = event->quantity;
	return SKULD_OK;
}

/* ---- The reference model: stock movements -------------------------------- */

static uint64_t event_time(const struct model *model, const struct skuld_event *event)
{
	return event->occurred_at != 0 ? event->occurred_at : model->time;
}

static uint32_t kind_receive(struct model *model, const struct skuld_event *event,
                             struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	CHECK(check_not_closed(model, event->location));
	struct plan plan = {0};
	plan_add(&plan, event->item, event->location, COUNTER_ON_HAND, event->quantity);
	if (event->flags & SKULD_EVENT_FROM_INCOMING) {
		int64_t incoming =
		        model->stock[event->item][event->location].counter[COUNTER_INCOMING];
		int64_t taken = incoming > 0 ? incoming : 0;
		if (event->quantity < taken)
			taken = event->quantity;
		plan_add(&plan, event->item, event->location, COUNTER_INCOMING, -taken);
	}
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	result_at(model, result, event->item, event->location, event->quantity, 0);
	return SKULD_OK;
}

static uint32_t kind_adjust(struct model *model, const struct skuld_event *event,
                            struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	if (!signed_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (event->reason < 1 || event->reason > SKULD_REASON_LAST)
		return SKULD_INVALID_STATE;
	const struct model_entry *entry = &model->stock[event->item][event->location];
	if (event->quantity < 0 && entry->counter[COUNTER_ON_HAND] + event->quantity < 0)
		return SKULD_QUANTITY_EXCEEDS;
	struct plan plan = {0};
	plan_add(&plan, event->item, event->location, COUNTER_ON_HAND, event->quantity);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	result_at(model, result, event->item, event->location, event->quantity, 0);
	return SKULD_OK;
}

static uint32_t kind_incoming(struct model *model, const struct skuld_event *event,
                              struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	if (!signed_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (event->quantity > 0 && model->location[event->location].state == SKULD_LIFECYCLE_CLOSED)
		return SKULD_LOCATION_CLOSED;
	const struct model_entry *entry = &model->stock[event->item][event->location];
	if (entry->counter[COUNTER_INCOMING] + event->quantity < 0)
		return SKULD_QUANTITY_EXCEEDS;
	struct plan plan = {0};
	plan_add(&plan, event->item, event->location, COUNTER_INCOMING, event->quantity);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	result_at(model, result, event->item, event->location, event->quantity, 0);
	return SKULD_OK;
}

static enum counter bucket_counter(uint8_t bucket)
{
	return bucket == SKULD_BUCKET_DAMAGED ? COUNTER_DAMAGED : COUNTER_QUARANTINE;
}

static uint32_t kind_move(struct model *model, const struct skuld_event *event,
                          struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	uint8_t from = event->bucket_from;
	uint8_t to = event->bucket_to;
	if (from > SKULD_BUCKET_LAST || to > SKULD_BUCKET_LAST || from == to)
		return SKULD_INVALID_STATE;
	const struct model_entry *entry = &model->stock[event->item][event->location];
	struct plan plan = {0};
	if (from == SKULD_BUCKET_SELLABLE) {
		if (entry_available(entry) < event->quantity)
			return SKULD_INSUFFICIENT;
		plan_add(&plan, event->item, event->location, bucket_counter(to), event->quantity);
	} else {
		if (entry->counter[bucket_counter(from)] < event->quantity)
			return SKULD_QUANTITY_EXCEEDS;
		plan_add(&plan, event->item, event->location, bucket_counter(from),
		         -event->quantity);
		if (to != SKULD_BUCKET_SELLABLE)
			plan_add(&plan, event->item, event->location, bucket_counter(to),
			         event->quantity);
	}
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	result_at(model, result, event->item, event->location, event->quantity, 0);
	return SKULD_OK;
}

static uint32_t kind_count_open(struct model *model, const struct skuld_event *event,
                                struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	if (model_count_find(model, event->item, event->location) != NULL)
		return SKULD_COUNT_EXISTS;
	if (model->count_count == CFG_COUNTS)
		return SKULD_CATALOG_FULL;
	struct model_count *count = &model->count[model->count_count++];
	count->item = event->item;
	count->location = event->location;
	count->id = event->id;
	count->expected = model->stock[event->item][event->location].counter[COUNTER_ON_HAND];
	count->opened_at = event_time(model, event);
	result_at(model, result, event->item, event->location, count->expected, 0);
	return SKULD_OK;
}

static uint32_t kind_count_close(struct model *model, const struct skuld_event *event,
                                 struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	struct model_count *count = model_count_find(model, event->item, event->location);
	if (count == NULL || count->id != event->id)
		return SKULD_COUNT_UNKNOWN;
	if (!nonnegative_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	int64_t delta = event->quantity - count->expected;
	struct plan plan = {0};
	plan_add(&plan, event->item, event->location, COUNTER_ON_HAND, delta);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	struct model_entry *entry = &model->stock[event->item][event->location];
	if (count->opened_at > entry->counted_at)
		entry->counted_at = count->opened_at;
	*count = model->count[--model->count_count];
	result_at(model, result, event->item, event->location, delta,
	          delta < 0 ? SKULD_RESULT_DISCREPANCY : 0);
	return SKULD_OK;
}

static uint32_t kind_sale(struct model *model, const struct skuld_event *event,
                          struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_expandable(model, event->item));
	CHECK(check_location(model, event->location));
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	uint64_t when = event_time(model, event);
	struct expansion expansion = model_expand(model, event->item);
	bool applied[CFG_COMPONENTS] = {false};
	uint16_t flags = 0;
	struct plan plan = {0};
	for (uint32_t c = 0; c < expansion.count; c++) {
		const struct model_entry *entry = &model->stock[expansion.item[c]][event->location];
		int64_t units = event->quantity * expansion.k[c];
		if (when < entry->counted_at) {
			coverage[COVER_SALE_PRE_COUNT]++;
			flags |= SKULD_RESULT_PRE_COUNT;
			continue;
		}
		if (entry_available(entry) < units)
			flags |= SKULD_RESULT_DISCREPANCY;
		plan_add(&plan, expansion.item[c], event->location, COUNTER_ON_HAND, -units);
		applied[c] = true;
	}
	CHECK(plan_check(model, &plan));
	for (uint32_t c = 0; c < expansion.count; c++) {
		const struct model_count *count =
		        model_count_find(model, expansion.item[c], event->location);
		if (!applied[c] || count == NULL || when >= count->opened_at)
			continue;
		int64_t after = count->expected - event->quantity * expansion.k[c];
		if (after < -QMAX || after > QMAX) {
			coverage[COVER_EXPECTED_BOUND]++;
			return bound_failed();
		}
	}
	plan_apply(model, &plan);
	for (uint32_t c = 0; c < expansion.count; c++) {
		struct model_count *count =
		        model_count_find(model, expansion.item[c], event->location);
		if (applied[c] && count != NULL && when < count->opened_at) {
			coverage[COVER_SALE_OPEN_COUNT]++;
			count->expected -= event->quantity * expansion.k[c];
		}
	}
	if (model->location[event->location].state != SKULD_LIFECYCLE_ACTIVE)
		flags |= SKULD_RESULT_LATE;
	flags |= expanded_flag(model, event->item);
	freeze(model, event->item);
	result_at(model, result, event->item, event->location, event->quantity, flags);
	return SKULD_OK;
}

static uint32_t kind_fulfill(struct model *model, const struct skuld_event *event,
                             struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_expandable(model, event->item));
	CHECK(check_location(model, event->location));
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct expansion expansion = model_expand(model, event->item);
	for (uint32_t c = 0; c < expansion.count; c++) {
		const struct model_entry *entry = &model->stock[expansion.item[c]][event->location];
		if (entry->counter[COUNTER_COMMITTED] < event->quantity * expansion.k[c])
			return SKULD_QUANTITY_EXCEEDS;
	}
	struct plan plan = {0};
	plan_expansion(&plan, &expansion, event->location, event->quantity, COUNTER_COMMITTED, -1);
	plan_expansion(&plan, &expansion, event->location, event->quantity, COUNTER_ON_HAND, -1);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	freeze(model, event->item);
	result_at(model, result, event->item, event->location, event->quantity,
	          expanded_flag(model, event->item));
	return SKULD_OK;
}

static uint32_t kind_return(struct model *model, const struct skuld_event *event,
                            struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_expandable(model, event->item));
	CHECK(check_location(model, event->location));
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (event->reason > SKULD_DISPOSITION_QUARANTINE)
		return SKULD_INVALID_STATE;
	CHECK(check_not_closed(model, event->location));
	struct expansion expansion = model_expand(model, event->item);
	struct plan plan = {0};
	if (event->flags & SKULD_EVENT_EXPECTED) {
		plan_expansion(&plan, &expansion, event->location, event->quantity,
		               COUNTER_INCOMING, 1);
	} else {
		plan_expansion(&plan, &expansion, event->location, event->quantity, COUNTER_ON_HAND,
		               1);
		if (event->reason == SKULD_DISPOSITION_DAMAGED)
			plan_expansion(&plan, &expansion, event->location, event->quantity,
			               COUNTER_DAMAGED, 1);
		if (event->reason == SKULD_DISPOSITION_QUARANTINE)
			plan_expansion(&plan, &expansion, event->location, event->quantity,
			               COUNTER_QUARANTINE, 1);
	}
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	freeze(model, event->item);
	result_at(model, result, event->item, event->location, event->quantity,
	          expanded_flag(model, event->item));
	return SKULD_OK;
}

static uint32_t kind_transfer_out(struct model *model, const struct skuld_event *event,
                                  struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	CHECK(check_location(model, event->target));
	if (event->target == event->location)
		return SKULD_SAME_LOCATION;
	CHECK(check_not_closed(model, event->target));
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (model_transfer_find(model, event->id, event->item) != NULL)
		return SKULD_TRANSFER_EXISTS;
	if (model->transfer_count == CFG_TRANSFERS)
		return SKULD_CATALOG_FULL;
	if (model_available(model, event->item, event->location) < event->quantity)
		return SKULD_INSUFFICIENT;
	struct plan plan = {0};
	plan_add(&plan, event->item, event->location, COUNTER_ON_HAND, -event->quantity);
	plan_add(&plan, event->item, event->target, COUNTER_INCOMING, event->quantity);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	struct model_transfer *transfer = &model->transfer[model->transfer_count++];
	transfer->id = event->id;
	transfer->item = event->item;
	transfer->from = event->location;
	transfer->to = event->target;
	transfer->remaining = event->quantity;
	result_at(model, result, event->item, event->location, event->quantity, 0);
	return SKULD_OK;
}

static uint32_t kind_transfer_in(struct model *model, const struct skuld_event *event,
                                 struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_stocked(model, event->item));
	CHECK(check_location(model, event->location));
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	struct model_transfer *transfer = model_transfer_find(model, event->id, event->item);
	if (transfer == NULL)
		return SKULD_TRANSFER_UNKNOWN;
	if (event->location != transfer->to)
		return SKULD_LOCATION_MISMATCH;
	if (event->quantity > transfer->remaining)
		return SKULD_QUANTITY_EXCEEDS;
	int64_t incoming = model->stock[event->item][event->location].counter[COUNTER_INCOMING];
	int64_t taken = incoming > 0 ? incoming : 0;
	if (event->quantity < taken)
		taken = event->quantity;
	struct plan plan = {0};
	plan_add(&plan, event->item, event->location, COUNTER_INCOMING, -taken);
	plan_add(&plan, event->item, event->location, COUNTER_ON_HAND, event->quantity);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	transfer->remaining -= event->quantity;
	if (transfer->remaining == 0)
		*transfer = model->transfer[--model->transfer_count];
	result_at(model, result, event->item, event->location, event->quantity, 0);
	return SKULD_OK;
}

/* ---- The reference model: holds ------------------------------------------ */

static bool past_due(const struct model *model, const struct model_hold *hold)
{
	return model->time >= hold->expires_at;
}

static bool hold_closed(const struct model_hold *hold)
{
	return hold->state == LEDGER_HOLD_COMMITTED || hold->state == LEDGER_HOLD_RELEASED;
}

static bool ttl_valid(uint32_t ttl_s)
{
	return ttl_s != 0 && ttl_s <= CFG_TTL_MAX_S;
}

/* The location a channel hold goes to, or 0 (section 5 RESERVE). */
static uint32_t channel_choice(struct model *model, uint32_t channel, uint32_t item,
                               int64_t quantity)
{
	uint32_t best = 0;
	int64_t best_spare = 0;
	for (uint32_t location = 1; location <= CFG_LOCATIONS; location++) {
		struct model_pool *pool = model_pool_find(model, channel, location);
		if (pool == NULL || model->location[location].state != SKULD_LIFECYCLE_ACTIVE)
			continue;
		int64_t spare = model_spare(model, item, location, pool->floor);
		if (spare >= quantity && best != 0 && spare == best_spare)
			coverage[COVER_RESERVE_CHANNEL_TIE]++;
		if (spare >= quantity && (best == 0 || spare > best_spare)) {
			best = location;
			best_spare = spare;
		}
	}
	return best;
}

static uint32_t kind_reserve(struct model *model, const struct skuld_event *event,
                             struct skuld_result *result)
{
	CHECK(check_item(model, event->item));
	CHECK(check_expandable(model, event->item));
	if (event->channel != 0) {
		CHECK(check_channel(model, event->channel));
		if (event->location != 0)
			return SKULD_LOCATION_MISMATCH;
	} else {
		CHECK(check_location(model, event->location));
	}
	if (!quantity_valid(model, event->item, event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (!ttl_valid(event->ttl_s))
		return SKULD_TTL_INVALID;
	if (model_hold_find(model, event->id) != NULL)
		return SKULD_HOLD_EXISTS;
	if (model_holds_open(model) >= CFG_HOLDS)
		return SKULD_HOLDS_FULL;
	uint32_t location = event->location;
	if (event->channel == 0) {
		CHECK(check_selling(model, location));
		if (model_spare(model, event->item, location, 0) < event->quantity)
			return SKULD_INSUFFICIENT;
	} else {
		location = channel_choice(model, event->channel, event->item, event->quantity);
		if (location == 0)
			return SKULD_INSUFFICIENT;
	}
	struct expansion expansion = model_expand(model, event->item);
	struct plan plan = {0};
	plan_expansion(&plan, &expansion, location, event->quantity, COUNTER_RESERVED, 1);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	cr_assert_lt(model->hold_count, MODEL_HOLDS_CAP, "model hold table overflow");
	struct model_hold *hold = &model->hold[model->hold_count++];
	memset(hold, 0, sizeof(*hold));
	hold->id = event->id;
	hold->item = event->item;
	hold->location = location;
	hold->channel = event->channel;
	hold->remaining = event->quantity;
	hold->expires_at = model->time + (uint64_t)event->ttl_s * NS_PER_S;
	hold->state = LEDGER_HOLD_OPEN;
	coverage[COVER_RESERVE_CHANNEL] += event->channel != 0;
	coverage[COVER_RESERVE_BUNDLE] += model->item[event->item].bundle;
	freeze(model, event->item);
	result_at(model, result, event->item, location, event->quantity,
	          expanded_flag(model, event->item));
	/* Invariant: a successful reserve never leaves available negative. */
	for (uint32_t c = 0; c < expansion.count; c++)
		cr_assert_geq(model_available(model, expansion.item[c], location), 0,
		              "model: reserve left available negative");
	return SKULD_OK;
}

static uint32_t kind_extend(struct model *model, const struct skuld_event *event,
                            struct skuld_result *result)
{
	struct model_hold *hold = model_hold_find(model, event->id);
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	if (hold_closed(hold))
		return SKULD_HOLD_CLOSED;
	if (hold->state == LEDGER_HOLD_EXPIRED || past_due(model, hold))
		return SKULD_HOLD_EXPIRED;
	if (!ttl_valid(event->ttl_s))
		return SKULD_TTL_INVALID;
	hold->expires_at = model->time + (uint64_t)event->ttl_s * NS_PER_S;
	result_at(model, result, hold->item, hold->location, hold->remaining, 0);
	return SKULD_OK;
}

static uint32_t kind_commit(struct model *model, const struct skuld_event *event,
                            struct skuld_result *result)
{
	struct model_hold *hold = model_hold_find(model, event->id);
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	if (!nonnegative_quantity_valid(event->quantity))
		return SKULD_QUANTITY_INVALID;
	if (hold_closed(hold))
		return SKULD_HOLD_CLOSED;
	bool expired = hold->state == LEDGER_HOLD_EXPIRED || past_due(model, hold);
	if (expired && !(event->flags & SKULD_EVENT_AFTER_EXPIRY))
		return SKULD_HOLD_EXPIRED;
	int64_t n = event->quantity != 0 ? event->quantity : hold->remaining;
	if (n > hold->remaining)
		return SKULD_QUANTITY_EXCEEDS;
	struct expansion expansion = model_expand(model, hold->item);
	struct plan plan = {0};
	if (hold->state == LEDGER_HOLD_OPEN) {
		plan_expansion(&plan, &expansion, hold->location, n, COUNTER_RESERVED, -1);
	} else {
		for (uint32_t c = 0; c < expansion.count; c++) {
			if (model_available(model, expansion.item[c], hold->location) <
			    n * expansion.k[c]) {
				coverage[COVER_COMMIT_EXPIRED_SHORT]++;
				return SKULD_INSUFFICIENT;
			}
		}
	}
	plan_expansion(&plan, &expansion, hold->location, n, COUNTER_COMMITTED, 1);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	coverage[COVER_COMMIT_PARTIAL] += n < hold->remaining;
	coverage[COVER_COMMIT_PAST_DUE] += hold->state == LEDGER_HOLD_OPEN && expired;
	coverage[COVER_COMMIT_EXPIRED] += hold->state == LEDGER_HOLD_EXPIRED;
	hold->remaining -= n;
	if (hold->remaining == 0) {
		if (hold->state == LEDGER_HOLD_OPEN)
			model_hold_close(model, hold, LEDGER_HOLD_COMMITTED);
		else
			hold->state = LEDGER_HOLD_COMMITTED;
	}
	result_at(model, result, hold->item, hold->location, n, expanded_flag(model, hold->item));
	return SKULD_OK;
}

static uint32_t kind_release(struct model *model, const struct skuld_event *event,
                             struct skuld_result *result)
{
	struct model_hold *hold = model_hold_find(model, event->id);
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	if (hold_closed(hold))
		return SKULD_HOLD_CLOSED;
	if (hold->state == LEDGER_HOLD_EXPIRED)
		return SKULD_HOLD_EXPIRED;
	struct expansion expansion = model_expand(model, hold->item);
	struct plan plan = {0};
	plan_expansion(&plan, &expansion, hold->location, hold->remaining, COUNTER_RESERVED, -1);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	model_hold_close(model, hold, LEDGER_HOLD_RELEASED);
	result_at(model, result, hold->item, hold->location, hold->remaining, 0);
	return SKULD_OK;
}

static uint32_t kind_reallocate(struct model *model, const struct skuld_event *event,
                                struct skuld_result *result)
{
	struct model_hold *hold = model_hold_find(model, event->id);
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	if (hold_closed(hold))
		return SKULD_HOLD_CLOSED;
	if (hold->state == LEDGER_HOLD_EXPIRED || past_due(model, hold))
		return SKULD_HOLD_EXPIRED;
	CHECK(check_location(model, event->target));
	if (event->target == hold->location)
		return SKULD_SAME_LOCATION;
	CHECK(check_selling(model, event->target));
	int64_t floor = 0;
	if (hold->channel != 0) {
		struct model_pool *pool = model_pool_find(model, hold->channel, event->target);
		if (pool == NULL)
			return SKULD_LOCATION_MISMATCH;
		floor = pool->floor;
	}
	if (model_spare(model, hold->item, event->target, floor) < hold->remaining)
		return SKULD_INSUFFICIENT;
	struct expansion expansion = model_expand(model, hold->item);
	struct plan plan = {0};
	plan_expansion(&plan, &expansion, hold->location, hold->remaining, COUNTER_RESERVED, -1);
	plan_expansion(&plan, &expansion, event->target, hold->remaining, COUNTER_RESERVED, 1);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	coverage[COVER_REALLOCATE_CHANNEL] += hold->channel != 0;
	hold->location = event->target;
	result_at(model, result, hold->item, hold->location, hold->remaining, 0);
	return SKULD_OK;
}

static uint32_t kind_expire(struct model *model, const struct skuld_event *event,
                            enum ledger_source source, struct skuld_result *result)
{
	if (source == LEDGER_SOURCE_CLIENT)
		return SKULD_SERVER_ONLY;
	struct model_hold *hold = model_hold_find(model, event->id);
	if (hold == NULL)
		return SKULD_HOLD_UNKNOWN;
	if (hold_closed(hold))
		return SKULD_HOLD_CLOSED;
	if (hold->state == LEDGER_HOLD_EXPIRED)
		return SKULD_HOLD_EXPIRED;
	if (!past_due(model, hold))
		return SKULD_HOLD_NOT_DUE;
	struct expansion expansion = model_expand(model, hold->item);
	struct plan plan = {0};
	plan_expansion(&plan, &expansion, hold->location, hold->remaining, COUNTER_RESERVED, -1);
	CHECK(plan_check(model, &plan));
	plan_apply(model, &plan);
	model_hold_close(model, hold, LEDGER_HOLD_EXPIRED);
	result_at(model, result, hold->item, hold->location, hold->remaining, 0);
	return SKULD_OK;
}

/* ---- The reference model: events and batches ----------------------------- */

static uint32_t model_kind(struct model *model, const struct skuld_event *event,
                           enum ledger_source source, struct skuld_result *result)
{
	switch (event->kind) {
	case SKULD_ITEM_DEFINE:
		return kind_item_define(model, event);
	case SKULD_SKU_ALIAS:
		return kind_sku_alias(model, event);
	case SKULD_BARCODE_DEFINE:
		return kind_barcode_define(model, event);
	case SKULD_ATTRIBUTE_SET:
		return kind_attribute_set(model, event);
	case SKULD_LOCATION_DEFINE:
		return kind_location_define(model, event);
	case SKULD_LOCATION_STATE:
		return kind_location_state(model, event);
	case SKULD_BUNDLE_COMPONENT:
		return kind_bundle_component(model, event);
	case SKULD_CHANNEL_DEFINE:
		return kind_channel_define(model, event);
	case SKULD_CHANNEL_POOL:
		return kind_channel_pool(model, event);
	case SKULD_CHANNEL_BUFFER:
		return kind_channel_buffer(model, event);
	case SKULD_CHANNEL_CAP:
	case SKULD_CHANNEL_MIN:
		return kind_channel_cap_minimum(model, event);
	case SKULD_RECEIVE:
		return kind_receive(model, event, result);
	case SKULD_ADJUST:
		return kind_adjust(model, event, result);
	case SKULD_COUNT_OPEN:
		return kind_count_open(model, event, result);
	case SKULD_COUNT_CLOSE:
		return kind_count_close(model, event, result);
	case SKULD_SALE:
		return kind_sale(model, event, result);
	case SKULD_RESERVE:
		return kind_reserve(model, event, result);
	case SKULD_EXTEND:
		return kind_extend(model, event, result);
	case SKULD_COMMIT:
		return kind_commit(model, event, result);
	case SKULD_RELEASE:
		return kind_release(model, event, result);
	case SKULD_REALLOCATE:
		return kind_reallocate(model, event, result);
	case SKULD_EXPIRE:
		return kind_expire(model, event, source, result);
	case SKULD_FULFILL:
		return kind_fulfill(model, event, result);
	case SKULD_RETURN:
		return kind_return(model, event, result);
	case SKULD_TRANSFER_OUT:
		return kind_transfer_out(model, event, result);
	case SKULD_TRANSFER_IN:
		return kind_transfer_in(model, event, result);
	case SKULD_MOVE:
		return kind_move(model, event, result);
	case SKULD_INCOMING:
		return kind_incoming(model, event, result);
	default:
		return SKULD_ERR_EVENT_KIND;
	}
}

static struct skuld_result failed_result(uint32_t index, uint32_t status)
{
	struct skuld_result result = {0};
	result.index = index;
	result.status = (uint16_t)status;
	return result;
}

static struct model_key *model_key_find(struct model *model, skuld_u128 key)
{
	for (uint32_t i = 0; i < model->key_count; i++) {
		if (skuld_u128_equal(model->key[i].key, key))
			return &model->key[i];
	}
	return NULL;
}

/* Section 4: one event, with the idempotency window for a client event. */
static struct skuld_result model_event(struct model *model, const struct skuld_event *event,
                                       enum ledger_source source, uint32_t index)
{
	if (source == LEDGER_SOURCE_CLIENT) {
		struct model_key *key = model_key_find(model, event->key);
		if (key != NULL) {
			if (memcmp(&key->event, event, sizeof(*event)) != 0)
				return failed_result(index, SKULD_KEY_REUSED);
			struct skuld_result result = key->result;
			result.index = index;
			result.flags |= SKULD_RESULT_REPLAYED;
			return result;
		}
		if (model->key_count == CFG_KEYS)
			return failed_result(index, SKULD_KEYS_FULL);
	}
	struct skuld_result result = {0};
	uint32_t status = model_kind(model, event, source, &result);
	if (status != SKULD_OK)
		return failed_result(index, status);
	result.index = index;
	if (source == LEDGER_SOURCE_CLIENT) {
		struct model_key *key = &model->key[model->key_count++];
		key->key = event->key;
		key->event = *event;
		key->inserted_at = model->time;
		key->result = result;
	}
	return result;
}

/* Section 3, step 2. */
static void model_housekeeping(struct model *model)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < model->key_count; i++) {
		if (model->key[i].inserted_at + CFG_KEY_WINDOW_NS > model->time)
			model->key[kept++] = model->key[i];
		else
			coverage[COVER_FORGET_KEY]++;
	}
	model->key_count = kept;

	for (uint32_t i = 0; i < model->hold_count;) {
		struct model_hold *hold = &model->hold[i];
		if (hold->state != LEDGER_HOLD_OPEN &&
		    hold->closed_at + CFG_CLOSED_GRACE_NS <= model->time) {
			coverage[COVER_FORGET_HOLD_TIME]++;
			model_hold_remove(model, i);
		} else {
			i++;
		}
	}
	for (;;) {
		uint32_t closed = 0;
		uint32_t earliest = 0;
		for (uint32_t i = 0; i < model->hold_count; i++) {
			const struct model_hold *hold = &model->hold[i];
			if (hold->state == LEDGER_HOLD_OPEN)
				continue;
			const struct model_hold *best = &model->hold[earliest];
			if (closed == 0 || hold->closed_at < best->closed_at ||
			    (hold->closed_at == best->closed_at &&
			     hold->close_order < best->close_order))
				earliest = i;
			closed++;
		}
		if (closed <= CFG_CLOSED_HOLDS)
			break;
		coverage[COVER_FORGET_HOLD_COUNT]++;
		model_hold_remove(model, earliest);
	}
}

static struct model model_snapshot; /* the state before a chain, for undo */

/* Evaluates the chain events[first..last] (section 3). */
static void model_chain(struct model *model, enum ledger_source source,
                        const struct skuld_event *events, uint32_t first, uint32_t last,
                        struct skuld_result *results)
{
	if (first == last) {
		results[first] = model_event(model, &events[first], source, first);
		return;
	}
	model_snapshot = *model;
	uint32_t failed = UINT32_MAX;
	for (uint32_t i = first; i <= last; i++) {
		results[i] = model_event(model, &events[i], source, i);
		if (results[i].status != SKULD_OK) {
			failed = i;
			break;
		}
	}
	if (failed == UINT32_MAX)
		return;
	*model = model_snapshot;
	coverage[COVER_CHAIN_UNDONE] += failed > first;
	for (uint32_t i = first; i <= last; i++) {
		if (i != failed)
			results[i] = failed_result(i, SKULD_LINKED_FAILED);
	}
}

void model_apply(struct model *model, uint64_t timestamp_ns, enum ledger_source source,
                 const struct skuld_event *events, uint32_t count, struct skuld_result *results)
{
	if (timestamp_ns > model->time)
		model->time = timestamp_ns;
	model_housekeeping(model);
	uint32_t first = 0;
	while (first < count) {
		uint32_t last = first;
		while (last + 1 < count && (events[last].flags & SKULD_EVENT_LINKED))
			last++;
		bool open = (events[last].flags & SKULD_EVENT_LINKED) != 0;
		if (open) {
			for (uint32_t i = first; i <= last; i++)
				results[i] = failed_result(i, SKULD_LINKED_OPEN);
		} else if (last - first + 1 > CFG_CHAIN) {
			results[first] = failed_result(first, SKULD_CHAIN_TOO_LONG);
			for (uint32_t i = first + 1; i <= last; i++)
				results[i] = failed_result(i, SKULD_LINKED_FAILED);
		} else {
			model_chain(model, source, events, first, last, results);
		}
		first = last + 1;
	}
}

/* Open holds due at now, ascending (expires_at, id), at most max. */
uint32_t model_expire_due(const struct model *model, uint64_t now, uint32_t max, uint64_t *ids)
{
	uint32_t found = 0;
	uint64_t after_time = 0;
	uint64_t after_id = 0;
	bool first = true;
	while (found < max) {
		const struct model_hold *next = NULL;
		for (uint32_t i = 0; i < model->hold_count; i++) {
			const struct model_hold *hold = &model->hold[i];
			if (hold->state != LEDGER_HOLD_OPEN || hold->expires_at > now)
				continue;
			if (!first && (hold->expires_at < after_time ||
			               (hold->expires_at == after_time && hold->id <= after_id)))
				continue;
			if (next == NULL || hold->expires_at < next->expires_at ||
			    (hold->expires_at == next->expires_at && hold->id < next->id))
				next = hold;
		}
		if (next == NULL)
			break;
		ids[found++] = next->id;
		after_time = next->expires_at;
		after_id = next->id;
		first = false;
	}
	return found;
}

/* Section 6. */
uint32_t model_channel_quantity(struct model *model, uint32_t channel, uint32_t item, int64_t *out)
{
	CHECK(check_channel(model, channel));
	CHECK(check_item(model, item));
	const struct model_channel *entry = &model->channel[channel];
	int64_t sum = 0;
	for (uint32_t i = 0; i < entry->pool_count; i++) {
		uint32_t location = entry->pool[i].location;
		if (model->location[location].state != SKULD_LIFECYCLE_ACTIVE)
			continue;
		int64_t spare = model_spare(model, item, location, entry->pool[i].floor);
		sum += spare > 0 ? spare : 0;
	}
	const struct model_buffer *buffer = model_buffer_find(model, channel, item);
	int64_t quantity = sum - (buffer != NULL ? buffer->quantity : entry->buffer);
	if (quantity < 0)
		quantity = 0;
	if (entry->cap > 0 && quantity > entry->cap)
		quantity = entry->cap;
	if (quantity < entry->minimum)
		quantity = 0;
	*out = quantity;
	return SKULD_OK;
}

/* ---- The run: random numbers and failure reports ------------------------- */

uint64_t rng_next(struct run *run)
{
	uint64_t z = (run->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint32_t rng_below(struct run *run, uint32_t bound)
{
	return (uint32_t)(rng_next(run) % bound);
}

bool rng_percent(struct run *run, uint32_t percent)
{
	return rng_below(run, 100) < percent;
}

/* ---- Failure reports ------------------------------------------------------ */

void event_describe(char *text, size_t size, const struct skuld_event *event)
{
	snprintf(text, size,
	         "%s(kind %u) key %#" PRIx64 ":%#" PRIx64 " flags %#x item %u location %u "
	         "target %u channel %u id %" PRIu64 " quantity %" PRId64 " ttl %u reason %u "
	         "buckets %u->%u scale %u occurred_at %" PRIu64 " code \"%.32s\"",
	         skuld_event_kind_name(event->kind), event->kind, event->key.hi, event->key.lo,
	         event->flags, event->item, event->location, event->target, event->channel,
	         event->id, event->quantity, event->ttl_s, event->reason, event->bucket_from,
	         event->bucket_to, event->scale, event->occurred_at, event->code);
}

void result_describe(char *text, size_t size, const struct skuld_result *result)
{
	snprintf(text, size,
	         "{index %u status %s(%u) flags %#x location %u reserved %u quantity %" PRId64
	         " available %" PRId64 "}",
	         result->index, skuld_status_name(result->status), result->status, result->flags,
	         result->location, result->reserved, result->quantity, result->available);
}

uint32_t model_level_status(const struct model *model, uint32_t item, uint32_t location)
{
	CHECK(check_item(model, item));
	CHECK(check_stocked(model, item));
	CHECK(check_location(model, location));
	return SKULD_OK;
}

void code_text(char *code, const char *prefix, uint32_t number)
{
	memset(code, 0, SKULD_CODE_SIZE);
	snprintf(code, SKULD_CODE_SIZE, "%s%02u", prefix, number);
}

const char *const attribute_names[3] = {"color", "size", "wt"};

void record_statistics(struct run *run, enum ledger_source source, const struct skuld_event *events,
                       uint32_t count, const struct skuld_result *results)
{
	for (uint32_t i = 0; i < count; i++) {
		run->status_count[results[i].status & 0xff]++;
		for (uint32_t bit = 0; bit < 5; bit++)
			run->flag_count[bit] += (results[i].flags >> bit) & 1;
		if (results[i].flags & SKULD_RESULT_REPLAYED)
			run->replayed++;
		else if (results[i].status == SKULD_OK)
			run->kind_ok[events[i].kind & 63]++;
		if (source == LEDGER_SOURCE_CLIENT) {
			run->history[run->history_count % HISTORY_SIZE] = events[i];
			run->history_count++;
		}
		if (i > 0 && (events[i - 1].flags & SKULD_EVENT_LINKED) &&
		    (i < 2 || !(events[i - 2].flags & SKULD_EVENT_LINKED)))
			run->chains++;
	}
	if (source == LEDGER_SOURCE_CLIENT)
		run->client_events += count;
	else
		run->server_events += count;
}

/* ---- The generator --------------------------------------------------------- */

struct skuld_event event_new(struct run *run, uint16_t kind)
{
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.kind = kind;
	event.key.lo = ++run->key_next;
	event.key.hi = run->options->seed | 1;
	return event;
}

static void event_code(struct skuld_event *event, const char *text)
{
	size_t length = strlen(text);
	cr_assert_lt(length, sizeof(event->code));
	memset(event->code, 0, sizeof(event->code));
	memcpy(event->code, text, length);
}

static uint32_t pick_defined_item(struct run *run, int bundle)
{
	uint32_t candidates[CFG_ITEMS];
	uint32_t count = 0;
	for (uint32_t item = 1; item <= CFG_ITEMS; item++) {
		const struct model_item *entry = &run->model->item[item];
		if (entry->defined && (bundle < 0 || entry->bundle == (bundle != 0)))
			candidates[count++] = item;
	}
	if (count == 0)
		return 1 + rng_below(run, CFG_ITEMS);
	return candidates[rng_below(run, count)];
}

static uint32_t pick_item_any(struct run *run)
{
	uint32_t roll = rng_below(run, 100);
	if (roll < 3) {
		static const uint32_t bad[] = {0, CFG_ITEMS + 1, UINT32_MAX};
		return bad[rng_below(run, 3)];
	}
	if (roll < 10)
		return 1 + rng_below(run, CFG_ITEMS);
	return pick_defined_item(run, -1);
}

/* Mostly a defined plain item. */
static uint32_t pick_item_plain(struct run *run)
{
	return rng_percent(run, 90) ? pick_defined_item(run, 0) : pick_item_any(run);
}

/* Plain items and bundles, for the kinds that expand bundles. */
static uint32_t pick_item_sellable(struct run *run)
{
	uint32_t roll = rng_below(run, 100);
	if (roll < 25)
		return pick_defined_item(run, 1);
	if (roll < 92)
		return pick_defined_item(run, 0);
	return pick_item_any(run);
}

/* Mostly a defined location; now and then an undefined or invalid id. */
static uint32_t pick_location(struct run *run)
{
	uint32_t roll = rng_below(run, 100);
	if (roll < 3)
		return rng_percent(run, 50) ? 0 : CFG_LOCATIONS + 1;
	if (roll < 10)
		return 1 + rng_below(run, CFG_LOCATIONS);
	uint32_t candidates[CFG_LOCATIONS];
	uint32_t count = 0;
	for (uint32_t location = 1; location <= CFG_LOCATIONS; location++) {
		if (run->model->location[location].defined)
			candidates[count++] = location;
	}
	return count == 0 ? 1 : candidates[rng_below(run, count)];
}

static uint32_t pick_channel(struct run *run)
{
	uint32_t roll = rng_below(run, 100);
	if (roll < 3)
		return rng_percent(run, 50) ? 0 : CFG_CHANNELS + 1;
	if (roll < 10)
		return 1 + rng_below(run, CFG_CHANNELS);
	uint32_t candidates[CFG_CHANNELS];
	uint32_t count = 0;
	for (uint32_t channel = 1; channel <= CFG_CHANNELS; channel++) {
		if (run->model->channel[channel].defined)
			candidates[count++] = channel;
	}
	return count == 0 ? 1 : candidates[rng_below(run, count)];
}

/* A positive quantity, now and then zero, negative or huge. */
static int64_t pick_quantity(struct run *run, uint32_t typical)
{
	uint32_t roll = rng_below(run, 1000);
	if (roll < 25)
		return 0;
	if (roll < 35)
		return -(int64_t)(1 + rng_below(run, 3));
	if (roll < 39) {
		static const int64_t huge[] = {QMAX,      QMAX + 1,  QMAX / 2 + 1, QMAX / 3 + 1,
		                               INT64_MAX, INT64_MIN, QMAX - 1};
		return huge[rng_below(run, 7)];
	}
	if (roll < 80)
		return 1 + rng_below(run, 40);
	return 1 + rng_below(run, typical);
}

/* A non-zero signed quantity, now and then zero or out of range. */
static int64_t pick_signed_quantity(struct run *run, uint32_t typical)
{
	uint32_t roll = rng_below(run, 1000);
	if (roll < 20)
		return 0;
	if (roll < 26) {
		static const int64_t edge[] = {QMAX,      QMAX + 1,  -QMAX,
		                               -QMAX - 1, INT64_MIN, INT64_MAX};
		return edge[rng_below(run, 6)];
	}
	int64_t magnitude = 1 + rng_below(run, typical);
	return rng_percent(run, 50) ? magnitude : -magnitude;
}

uint32_t pick_ttl(struct run *run)
{
	uint32_t roll = rng_below(run, 100);
	if (roll < 4)
		return 0;
	if (roll < 8)
		return CFG_TTL_MAX_S + rng_below(run, 2);
	if (roll < 15)
		return 20 + rng_below(run, CFG_TTL_MAX_S - 20);
	return 1 + rng_below(run, 12);
}

uint64_t pick_hold_id(struct run *run)
{
	struct model *model = run->model;
	uint32_t roll = rng_below(run, 100);
	if (roll < 60 && model->hold_count > 0) {
		uint32_t open = model_holds_open(model);
		for (uint32_t tries = 0; tries < 8; tries++) {
			const struct model_hold *hold =
			        &model->hold[rng_below(run, model->hold_count)];
			if (hold->state == LEDGER_HOLD_OPEN || open == 0 || roll >= 45)
				return hold->id;
		}
	}
	if (roll == 99)
		return 0;
	return 1 + rng_below(run, HOLD_ID_MAX);
}

static uint64_t pick_new_hold_id(struct run *run)
{
	for (uint32_t tries = 0; tries < 8 && rng_percent(run, 90); tries++) {
		uint64_t id = 1 + rng_below(run, HOLD_ID_MAX);
		if (model_hold_find(run->model, id) == NULL)
			return id;
	}
	return rng_percent(run, 3) ? 0 : 1 + rng_below(run, HOLD_ID_MAX);
}

/* An occurred_at: mostly 0 (the batch time), sometimes in the past, now and
 * then ahead of the batch time. */
static uint64_t pick_occurred_at(struct run *run)
{
	uint32_t roll = rng_below(run, 100);
	if (roll < 65)
		return 0;
	if (roll < 70)
		return run->now + (uint64_t)rng_below(run, 40) * 250 * NS_PER_MS;
	uint64_t back = (uint64_t)rng_below(run, 120) * 250 * NS_PER_MS;
	return run->now > back ? run->now - back : 1;
}

static void generate_catalog(struct run *run, struct skuld_event *event)
{
	static const uint16_t kinds[] = {
	        SKULD_ITEM_DEFINE,      SKULD_SKU_ALIAS,        SKULD_SKU_ALIAS,
	        SKULD_BARCODE_DEFINE,   SKULD_BARCODE_DEFINE,   SKULD_ATTRIBUTE_SET,
	        SKULD_ATTRIBUTE_SET,    SKULD_LOCATION_DEFINE,  SKULD_LOCATION_STATE,
	        SKULD_BUNDLE_COMPONENT, SKULD_BUNDLE_COMPONENT, SKULD_CHANNEL_DEFINE,
	        SKULD_CHANNEL_POOL,     SKULD_CHANNEL_POOL,     SKULD_CHANNEL_BUFFER,
	        SKULD_CHANNEL_CAP,      SKULD_CHANNEL_MIN,
	};
	static const char *const attributes[] = {
	        "color=red", "color=blue", "size=L", "size=", "wt=5",
	        "=x",        "noeq",       "",       "wt=10", "size=XL=2"};
	char code[SKULD_CODE_SIZE];
	uint16_t kind = kinds[rng_below(run, sizeof(kinds) / sizeof(kinds[0]))];
	*event = event_new(run, kind);
	switch (kind) {
	case SKULD_ITEM_DEFINE:
		event->item = rng_percent(run, 90) ? 1 + rng_below(run, CFG_ITEMS + 1)
		                                   : pick_item_any(run);
		code_text(code, "S", rng_below(run, SKU_POOL));
		event_code(event, rng_percent(run, 5) ? "" : code);
		event->scale = (uint8_t)(rng_percent(run, 5) ? 10 + rng_below(run, 3)
		                                             : rng_below(run, 10));
		if (rng_percent(run, 30))
			event->flags |= SKULD_EVENT_BUNDLE;
		break;
	case SKULD_SKU_ALIAS:
		event->item = pick_item_any(run);
		code_text(code, "S", rng_below(run, SKU_POOL));
		event_code(event, rng_percent(run, 4) ? "" : code);
		if (rng_percent(run, 35))
			event->flags |= SKULD_EVENT_RETIRE;
		break;
	case SKULD_BARCODE_DEFINE:
		event->item = pick_item_any(run);
		code_text(code, "B", rng_below(run, BARCODE_POOL));
		event_code(event, rng_percent(run, 4) ? "" : code);
		event->quantity = pick_quantity(run, 12);
		if (rng_percent(run, 30))
			event->flags |= SKULD_EVENT_RETIRE;
		break;
	case SKULD_ATTRIBUTE_SET:
		event->item = pick_item_any(run);
		event_code(event, attributes[rng_below(run, 10)]);
		break;
	case SKULD_LOCATION_DEFINE:
		event->location = rng_below(run, CFG_LOCATIONS + 2);
		code_text(code, "L", rng_below(run, 8));
		event_code(event, rng_percent(run, 5) ? "" : code);
		event->reason = (uint8_t)(rng_percent(run, 80) ? 0 : rng_below(run, 4));
		break;
	case SKULD_LOCATION_STATE: {
		event->location = pick_location(run);
		uint32_t state = event->location >= 1 && event->location <= CFG_LOCATIONS
		                         ? run->model->location[event->location].state
		                         : 0;
		uint32_t roll = rng_below(run, 100);
		if (roll < 70)
			event->reason = (uint8_t)state;
		else if (roll < 78)
			event->reason = (uint8_t)(state + 1);
		else
			event->reason = (uint8_t)rng_below(run, 4);
		break;
	}
	case SKULD_BUNDLE_COMPONENT:
		event->item = rng_percent(run, 80) ? pick_defined_item(run, 1) : pick_item_any(run);
		event->target =
		        rng_percent(run, 85) ? pick_defined_item(run, 0) : pick_item_any(run);
		event->quantity =
		        rng_percent(run, 90) ? 1 + rng_below(run, 3) : pick_quantity(run, 3);
		break;
	case SKULD_CHANNEL_DEFINE:
		event->channel = rng_below(run, CFG_CHANNELS + 2);
		code_text(code, "C", rng_below(run, 5));
		event_code(event, rng_percent(run, 5) ? "" : code);
		event->quantity = rng_percent(run, 90) ? rng_below(run, 3) : pick_quantity(run, 3);
		break;
	case SKULD_CHANNEL_POOL:
		event->channel = pick_channel(run);
		event->location = pick_location(run);
		event->quantity = rng_percent(run, 90) ? rng_below(run, 3) : pick_quantity(run, 3);
		if (rng_percent(run, 30))
			event->flags |= SKULD_EVENT_RETIRE;
		break;
	case SKULD_CHANNEL_BUFFER:
		event->channel = pick_channel(run);
		event->item = pick_item_any(run);
		event->quantity = rng_percent(run, 90) ? rng_below(run, 5) : pick_quantity(run, 5);
		break;
	case SKULD_CHANNEL_CAP:
	case SKULD_CHANNEL_MIN:
		event->channel = pick_channel(run);
		event->quantity = rng_percent(run, 50) ? 0 : pick_quantity(run, 20);
		break;
	default:
		break;
	}
}

/* A (item, location) with committed stock, or a random one. */
static void pick_committed(struct run *run, uint32_t *item, uint32_t *location)
{
	for (uint32_t tries = 0; tries < 12; tries++) {
		uint32_t i = 1 + rng_below(run, CFG_ITEMS);
		uint32_t l = 1 + rng_below(run, CFG_LOCATIONS);
		if (run->model->stock[i][l].counter[COUNTER_COMMITTED] > 0) {
			*item = i;
			*location = l;
			return;
		}
	}
	*item = pick_item_sellable(run);
	*location = pick_location(run);
}

static void generate_holds(struct run *run, struct skuld_event *event, uint16_t kind)
{
	*event = event_new(run, kind);
	if (kind == SKULD_RESERVE) {
		event->item = pick_item_sellable(run);
		if (rng_percent(run, 50)) {
			event->channel = pick_channel(run);
			if (rng_percent(run, 3))
				event->location = pick_location(run);
		} else {
			event->location = pick_location(run);
		}
		event->quantity = pick_quantity(run, 4);
		event->id = pick_new_hold_id(run);
		event->ttl_s = pick_ttl(run);
		return;
	}
	event->id = pick_hold_id(run);
	const struct model_hold *hold = model_hold_find(run->model, event->id);
	switch (kind) {
	case SKULD_EXTEND:
		event->ttl_s = pick_ttl(run);
		break;
	case SKULD_COMMIT: {
		uint32_t roll = rng_below(run, 100);
		if (roll < 45)
			event->quantity = 0;
		else if (roll < 90 && hold != NULL)
			event->quantity =
			        1 + (int64_t)rng_below(run, (uint32_t)(hold->remaining % 8) + 2);
		else
			event->quantity = pick_quantity(run, 4);
		if (rng_percent(run, 35))
			event->flags |= SKULD_EVENT_AFTER_EXPIRY;
		break;
	}
	case SKULD_REALLOCATE:
		event->target = pick_location(run);
		break;
	default:
		break;
	}
}

static void generate_movement(struct run *run, struct skuld_event *event, uint16_t kind)
{
	*event = event_new(run, kind);
	switch (kind) {
	case SKULD_RECEIVE:
		event->item = pick_item_plain(run);
		event->location = pick_location(run);
		event->quantity = pick_quantity(run, 12);
		if (rng_percent(run, 25))
			event->flags |= SKULD_EVENT_FROM_INCOMING;
		break;
	case SKULD_ADJUST:
		event->item = pick_item_plain(run);
		event->location = pick_location(run);
		event->quantity = pick_signed_quantity(run, 5);
		event->reason = (uint8_t)(rng_percent(run, 92) ? 1 + rng_below(run, 7)
		                                               : (rng_percent(run, 50) ? 0 : 8));
		break;
	case SKULD_INCOMING:
		event->item = pick_item_plain(run);
		event->location = pick_location(run);
		event->quantity =
		        rng_percent(run, 70) ? pick_quantity(run, 8) : pick_signed_quantity(run, 4);
		break;
	case SKULD_MOVE:
		event->item = pick_item_plain(run);
		event->location = pick_location(run);
		event->quantity = pick_quantity(run, 4);
		event->bucket_from = (uint8_t)(rng_percent(run, 95) ? rng_below(run, 3) : 3);
		event->bucket_to = (uint8_t)(rng_percent(run, 95) ? rng_below(run, 3) : 3);
		break;
	case SKULD_COUNT_OPEN:
		event->item = pick_item_plain(run);
		event->location = pick_location(run);
		event->id = 1 + rng_below(run, 3);
		event->occurred_at = pick_occurred_at(run);
		break;
	case SKULD_COUNT_CLOSE: {
		const struct model *model = run->model;
		if (model->count_count > 0 && rng_percent(run, 80)) {
			const struct model_count *count =
			        &model->count[rng_below(run, model->count_count)];
			event->item = count->item;
			event->location = count->location;
			event->id = rng_percent(run, 90) ? count->id : 1 + rng_below(run, 3);
			int64_t counted = count->expected - 3 + (int64_t)rng_below(run, 7);
			event->quantity = counted < 0 ? 0 : counted;
		} else {
			event->item = pick_item_plain(run);
			event->location = pick_location(run);
			event->id = 1 + rng_below(run, 3);
			event->quantity = pick_quantity(run, 10);
		}
		if (rng_percent(run, 3))
			event->quantity = -1;
		break;
	}
	case SKULD_SALE:
		event->item = pick_item_sellable(run);
		event->location = pick_location(run);
		event->quantity = pick_quantity(run, 5);
		event->occurred_at = pick_occurred_at(run);
		break;
	case SKULD_FULFILL:
		if (rng_percent(run, 70)) {
			pick_committed(run, &event->item, &event->location);
		} else {
			event->item = pick_item_sellable(run);
			event->location = pick_location(run);
		}
		event->quantity = pick_quantity(run, 3);
		break;
	case SKULD_RETURN:
		event->item = pick_item_sellable(run);
		event->location = pick_location(run);
		event->quantity = pick_quantity(run, 3);
		event->reason = (uint8_t)(rng_percent(run, 95) ? rng_below(run, 3) : 3);
		if (rng_percent(run, 25))
			event->flags |= SKULD_EVENT_EXPECTED;
		break;
	case SKULD_TRANSFER_OUT:
		event->item = pick_item_plain(run);
		event->location = pick_location(run);
		event->target = rng_percent(run, 10) ? event->location : pick_location(run);
		event->id = 1 + rng_below(run, 3);
		event->quantity = pick_quantity(run, 5);
		break;
	case SKULD_TRANSFER_IN: {
		const struct model *model = run->model;
		if (model->transfer_count > 0 && rng_percent(run, 80)) {
			const struct model_transfer *transfer =
			        &model->transfer[rng_below(run, model->transfer_count)];
			event->item = transfer->item;
			event->location = rng_percent(run, 90) ? transfer->to : pick_location(run);
			event->id = transfer->id;
			event->quantity = 1 + (int64_t)rng_below(
			                              run, (uint32_t)(transfer->remaining % 6) + 1);
			if (rng_percent(run, 40))
				event->quantity = transfer->remaining;
		} else {
			event->item = pick_item_plain(run);
			event->location = pick_location(run);
			event->id = 1 + rng_below(run, 3);
			event->quantity = pick_quantity(run, 5);
		}
		break;
	}
	default:
		break;
	}
}

/* A client event: a fresh one of a weighted kind, or a repeat of an earlier
 * event with the same body (a replay) or a changed body (key reuse). */
static struct skuld_event generate_event(struct run *run)
{
	static const struct {
		uint16_t kind;
		uint16_t weight;
	} mix[] = {
	        {SKULD_RECEIVE, 110},
	        {SKULD_SALE, 100},
	        {SKULD_RESERVE, 150},
	        {SKULD_COMMIT, 80},
	        {SKULD_RELEASE, 45},
	        {SKULD_EXTEND, 40},
	        {SKULD_REALLOCATE, 30},
	        {SKULD_FULFILL, 50},
	        {SKULD_RETURN, 40},
	        {SKULD_ADJUST, 35},
	        {SKULD_INCOMING, 30},
	        {SKULD_MOVE, 40},
	        {SKULD_COUNT_OPEN, 20},
	        {SKULD_COUNT_CLOSE, 25},
	        {SKULD_TRANSFER_OUT, 30},
	        {SKULD_TRANSFER_IN, 30},
	        {SKULD_EXPIRE, 8},
	        {SKULD_ITEM_DEFINE, 100},
	        {0, 4},
	};
	struct skuld_event event;
	uint32_t roll = rng_below(run, 1000);
	if (roll < 70 && run->history_count > 0) {
		uint64_t depth =
		        run->history_count < HISTORY_SIZE ? run->history_count : HISTORY_SIZE;
		uint64_t back =
		        rng_percent(run, 75) ? rng_below(run, 48) : rng_below(run, HISTORY_SIZE);
		if (back >= depth)
			back = depth - 1;
		event = run->history[(run->history_count - 1 - back) % HISTORY_SIZE];
		if (roll >= 50) {
			if (rng_percent(run, 50))
				event.quantity = (int64_t)((uint64_t)event.quantity + 1);
			else
				event.id ^= 1;
		}
		return event;
	}
	uint32_t total = 0;
	for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++)
		total += mix[i].weight;
	uint32_t pick = rng_below(run, total);
	uint16_t kind = 0;
	for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++) {
		if (pick < mix[i].weight) {
			kind = mix[i].kind;
			break;
		}
		pick -= mix[i].weight;
	}
	switch (kind) {
	case SKULD_ITEM_DEFINE: /* stands for every catalog kind */
		generate_catalog(run, &event);
		break;
	case SKULD_RESERVE:
	case SKULD_EXTEND:
	case SKULD_COMMIT:
	case SKULD_RELEASE:
	case SKULD_REALLOCATE:
	case SKULD_EXPIRE:
		generate_holds(run, &event, kind);
		break;
	case 0: {
		static const uint16_t unknown[] = {0, 14, 31, 52, 200};
		event = event_new(run, unknown[rng_below(run, 5)]);
		event.item = pick_item_any(run);
		break;
	}
	default:
		generate_movement(run, &event, kind);
		break;
	}
	return event;
}

/* A client batch of 1..64 events with linked chains now and then. */
uint32_t generate_batch(struct run *run, struct skuld_event *events)
{
	uint32_t count = 1 + rng_below(run, CFG_BATCH);
	uint32_t i = 0;
	while (i < count) {
		if (i + 1 < count && rng_percent(run, 7)) {
			uint32_t length = rng_percent(run, 12) ? CFG_CHAIN + 1 + rng_below(run, 2)
			                                       : 2 + rng_below(run, CFG_CHAIN - 1);
			if (length > count - i)
				length = count - i;
			for (uint32_t j = 0; j < length; j++) {
				events[i + j] = generate_event(run);
				if (j + 1 < length)
					events[i + j].flags |= SKULD_EVENT_LINKED;
				else
					events[i + j].flags &= (uint16_t)~SKULD_EVENT_LINKED;
			}
			i += length;
		} else {
			events[i++] = generate_event(run);
		}
	}
	if (rng_percent(run, 3))
		events[count - 1].flags |= SKULD_EVENT_LINKED;
	return count;
}

/* Steps of 250 ms multiples so hold expiries, the key window and the closed
 * hold grace are often hit exactly; now and then a long jump. */
void advance_time(struct run *run)
{
	uint32_t roll = rng_below(run, 100);
	uint64_t quarters;
	if (roll < 55)
		quarters = rng_below(run, 3);
	else if (roll < 90)
		quarters = rng_below(run, 16);
	else if (roll < 97)
		quarters = 20 + rng_below(run, 100);
	else
		quarters = 240 + rng_below(run, 600);
	run->now += quarters * 250 * NS_PER_MS;
}

/* The batch timestamp: now, or (rarely) a clock that stepped back. */
uint64_t batch_timestamp(struct run *run)
{
	if (rng_percent(run, 3))
		return run->now - (uint64_t)rng_below(run, 20) * 250 * NS_PER_MS;
	return run->now;
}

/* ---- Epochs: a fresh ledger with a defined catalog ------------------------- */

static void setup_item(struct run *run, struct skuld_event *event, uint32_t item, bool bundle)
{
	char code[SKULD_CODE_SIZE];
	*event = event_new(run, SKULD_ITEM_DEFINE);
	event->item = item;
	code_text(code, "S", item - 1);
	event_code(event, code);
	if (bundle)
		event->flags |= SKULD_EVENT_BUNDLE;
}

/* Items 1..10 plain, 11 and 12 bundles of overlapping components, locations
 * 1..5, channels 1 and 2 with overlapping pools. Items 13..16, location 6 and
 * channel 3 are left for the generator to define. */
uint32_t epoch_setup_catalog(struct run *run, struct skuld_event *events)
{
	uint32_t count = 0;
	char code[SKULD_CODE_SIZE];
	for (uint32_t item = 1; item <= 12; item++)
		setup_item(run, &events[count++], item, item >= 11);
	for (uint32_t location = 1; location <= 5; location++) {
		events[count] = event_new(run, SKULD_LOCATION_DEFINE);
		events[count].location = location;
		code_text(code, "L", location);
		event_code(&events[count], code);
		if (location == 5 && rng_percent(run, 30))
			events[count].reason = SKULD_LIFECYCLE_NOT_SELLING;
		count++;
	}
	static const struct {
		uint32_t channel;
		uint32_t location;
		int64_t floor;
	} pools[] = {{1, 1, 0}, {1, 2, 1}, {1, 3, 0}, {2, 3, 2}, {2, 4, 0}};
	for (uint32_t channel = 1; channel <= 2; channel++) {
		events[count] = event_new(run, SKULD_CHANNEL_DEFINE);
		events[count].channel = channel;
		code_text(code, "C", channel);
		event_code(&events[count], code);
		events[count].quantity = channel == 1 ? 1 : 0;
		count++;
	}
	for (uint32_t i = 0; i < 5; i++) {
		events[count] = event_new(run, SKULD_CHANNEL_POOL);
		events[count].channel = pools[i].channel;
		events[count].location = pools[i].location;
		events[count].quantity = pools[i].floor;
		count++;
	}
	static const struct {
		uint32_t bundle;
		uint32_t part;
		int64_t k;
	} parts[] = {{11, 1, 1}, {11, 2, 2}, {12, 2, 1}, {12, 3, 3}};
	for (uint32_t i = 0; i < 4; i++) {
		events[count] = event_new(run, SKULD_BUNDLE_COMPONENT);
		events[count].item = parts[i].bundle;
		events[count].target = parts[i].part;
		events[count].quantity = parts[i].k;
		count++;
	}
	return count;
}

/* Some stock of items 1..10 at locations 1..5 (applied after the catalog). */
uint32_t epoch_setup_stock(struct run *run, struct skuld_event *events)
{
	uint32_t count = 0;
	for (uint32_t item = 1; item <= 10; item++) {
		for (uint32_t location = 1; location <= 5; location++) {
			if (count == CFG_BATCH || rng_percent(run, 30))
				continue;
			events[count] = event_new(run, SKULD_RECEIVE);
			events[count].item = item;
			events[count].location = location;
			events[count].quantity = 1 + rng_below(run, 20);
			count++;
		}
	}
	return count;
}

/* ---- Runs ------------------------------------------------------------------- */

uint64_t env_u64(const char *name, uint64_t fallback)
{
	const char *text = getenv(name);
	if (text == NULL || *text == '\0')
		return fallback;
	return strtoull(text, NULL, 0);
}

void run_report(const struct run *run)
{
	uint64_t ok = run->status_count[SKULD_OK];
	fprintf(stderr,
	        "model run seed %#" PRIx64 ": %" PRIu64 " client + %" PRIu64
	        " server events in %" PRIu64 " batches, %u epochs; OK %" PRIu64
	        " (replayed %" PRIu64 "), chains %" PRIu64 ", due calls %" PRIu64 "\n",
	        run->options->seed, run->client_events, run->server_events, run->batch, run->epoch,
	        ok, run->replayed, run->chains, run->due_calls);
	if (env_u64("SKULD_MODEL_VERBOSE", 0) == 0)
		return;
	fprintf(stderr,
	        "  flags: REPLAYED %" PRIu64 " DISCREPANCY %" PRIu64 " LATE %" PRIu64
	        " PRE_COUNT %" PRIu64 " EXPANDED %" PRIu64 "\n",
	        run->flag_count[0], run->flag_count[1], run->flag_count[2], run->flag_count[3],
	        run->flag_count[4]);
	for (uint32_t i = 0; i < COVER_COUNT; i++)
		fprintf(stderr, "  model branch %-22s %" PRIu64 "\n", coverage_names[i],
		        coverage[i]);
	for (uint32_t status = 0; status < 256; status++) {
		if (run->status_count[status] != 0)
			fprintf(stderr, "  %-20s %" PRIu64 "\n", skuld_status_name(status),
			        run->status_count[status]);
	}
	for (uint32_t kind = 0; kind < 64; kind++) {
		if (run->kind_ok[kind] != 0)
			fprintf(stderr, "  OK %-17s %" PRIu64 "\n", skuld_event_kind_name(kind),
			        run->kind_ok[kind]);
	}
}
