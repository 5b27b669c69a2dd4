/*
 * push_state.c — listings, push versions and exceptions (push_state.h,
 * docs/LEDGER.md section 12).
 */
#include "push_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_internal.h"
#include "memory.h"
#include "skuld_assert.h"

/* ---- Bitmaps ---------------------------------------------------------------- */

static uint64_t *row(uint64_t *bitmap, uint32_t words, uint32_t index)
{
	return bitmap + (size_t)index * words;
}

static int bit_test(const uint64_t *bits, uint32_t index)
{
	return (bits[index >> 6] >> (index & 63)) & 1;
}

static void bit_put(struct journal *journal, uint64_t *bits, uint32_t index, int on)
{
	uint64_t *word = &bits[index >> 6];
	uint64_t mask = (uint64_t)1 << (index & 63);
	journal_set_u64(journal, word, on ? *word | mask : *word & ~mask);
}

/* ---- Creation --------------------------------------------------------------- */

static uint64_t listing_hash_of(uint32_t channel, uint32_t item)
{
	return table_mix((uint64_t)item | (uint64_t)channel << 32);
}

static uint64_t listing_hash(const void *record)
{
	const struct listing *listing = record;
	return listing_hash_of(listing->channel, listing->item);
}

static uint32_t touch_capacity(const struct ledger_config *config)
{
	/* A hold event touches two places (REALLOCATE), every other one. */
	return 2 * config->chain_events_max + 2;
}

size_t push_bytes(const struct ledger_config *config)
{
	size_t words = config->items_max / 64 + 1;
	size_t channel_words = config->channels_max / 64 + 1;
	size_t rows = (size_t)config->channels_max + 1;
	size_t bytes = table_bytes(config->listings_max, sizeof(struct listing), 0);
	bytes += rows * sizeof(struct channel_push);
	bytes += 2 * rows * words * sizeof(uint64_t);
	bytes += ((size_t)config->locations_max + 1) * channel_words * sizeof(uint64_t);
	bytes += ((size_t)config->items_max + 2) * sizeof(uint32_t);
	bytes += (size_t)config->bundles_max * config->bundle_components_max * sizeof(uint32_t);
	bytes += touch_capacity(config) * sizeof(struct push_touch);
	return bytes;
}

int push_init(struct push_state *push, const struct ledger_config *config)
{
	memset(push, 0, sizeof(*push));
	push->items_max = config->items_max;
	push->locations_max = config->locations_max;
	push->channels_max = config->channels_max;
	push->words = config->items_max / 64 + 1;
	push->channel_words = config->channels_max / 64 + 1;
	push->touch_max = touch_capacity(config);
	push->pools_stale = 1;
	push->bundles_stale = 1;
	size_t rows = (size_t)config->channels_max + 1;
	int rc = table_init(&push->listings, config->listings_max, sizeof(struct listing), 0,
	                    listing_hash);
	if (rc != 0)
		return rc;
	push->channels = core_calloc(rows, sizeof(struct channel_push));
	push->mapped = core_calloc(rows * push->words, sizeof(uint64_t));
	push->dirty = core_calloc(rows * push->words, sizeof(uint64_t));
	push->location_channels = core_calloc(
	        ((size_t)config->locations_max + 1) * push->channel_words, sizeof(uint64_t));
	push->bundle_first = core_calloc((size_t)config->items_max + 2, sizeof(uint32_t));
	push->bundle_list = core_calloc((size_t)config->bundles_max * config->bundle_components_max,
	                                sizeof(uint32_t));
	push->touches = core_calloc(push->touch_max, sizeof(struct push_touch));
	if (push->channels == NULL || push->mapped == NULL || push->dirty == NULL ||
	    push->location_channels == NULL || push->bundle_first == NULL ||
	    push->bundle_list == NULL || push->touches == NULL)
		return -ENOMEM;
	return 0;
}

void push_free(struct push_state *push)
{
	if (push->listings.slots != NULL)
		table_free(&push->listings);
	free(push->channels);
	free(push->mapped);
	free(push->dirty);
	free(push->location_channels);
	free(push->bundle_first);
	free(push->bundle_list);
	free(push->touches);
	memset(push, 0, sizeof(*push));
}

/* ---- Listings --------------------------------------------------------------- */

static struct listing *listing_find(const struct push_state *push, uint32_t channel, uint32_t item)
{
	const struct table *table = &push->listings;
	uint64_t hash = listing_hash_of(channel, item);
	uint32_t slot = table_home(table, hash);
	uint32_t index;
	while ((index = table_probe(table, hash, &slot)) != TABLE_NONE) {
		struct listing *listing = table_record(table, index);
		if (listing->channel == channel && listing->item == item)
			return listing;
	}
	return NULL;
}

const struct listing *push_listing(const struct push_state *push, uint32_t channel, uint32_t item)
{
	if (channel == 0 || channel > push->channels_max)
		return NULL;
	return listing_find(push, channel, item);
}

static int state_dirty_bit(uint8_t state)
{
	return (state & LISTING_MAPPED) && (state & SKULD_PUSH_DIRTY) &&
	       !(state & SKULD_PUSH_PARKED);
}

static int state_parked(uint8_t state)
{
	return (state & LISTING_MAPPED) && (state & SKULD_PUSH_PARKED);
}

/* Sets a listing's state and keeps the bitmaps and counts in step. */
static void listing_set_state(struct push_state *push, struct journal *journal,
                              struct listing *listing, uint8_t state)
{
	uint8_t old = listing->state;
	if (old == state)
		return;
	struct channel_push *channel = &push->channels[listing->channel];
	if ((old ^ state) & LISTING_MAPPED) {
		int on = (state & LISTING_MAPPED) != 0;
		bit_put(journal, row(push->mapped, push->words, listing->channel), listing->item,
		        on);
		journal_set_u32(journal, &channel->mapped, channel->mapped + (on ? 1 : -1u));
	}
	if (state_dirty_bit(old) != state_dirty_bit(state)) {
		int on = state_dirty_bit(state);
		bit_put(journal, row(push->dirty, push->words, listing->channel), listing->item,
		        on);
		journal_set_u32(journal, &channel->dirty, channel->dirty + (on ? 1 : -1u));
	}
	if (state_parked(old) != state_parked(state))
		journal_set_u32(journal, &channel->parked,
		                channel->parked + (state_parked(state) ? 1 : -1u));
	journal_set_u8(journal, &listing->state, state);
}

static void exception_clear(struct journal *journal, struct listing *listing)
{
	if (listing->exception == 0)
		return;
	journal_save(journal, &listing->exception, sizeof(listing->exception));
	listing->exception = 0;
	journal_set_u64(journal, &listing->first_seen, 0);
	journal_set_u64(journal, &listing->last_seen, 0);
	journal_set_u32(journal, &listing->reports, 0);
	journal_save(journal, listing->detail, sizeof(listing->detail));
	memset(listing->detail, 0, sizeof(listing->detail));
}

/* Records one report of exception kind with detail (NUL-padded, may be
 * longer than the stored part) at time now. */
static void exception_report(struct journal *journal, uint16_t *kind, uint64_t *first,
                             uint64_t *last, uint32_t *reports, char *stored,
                             const struct skuld_event *event, uint64_t now)
{
	if (*kind != event->reason) {
		journal_save(journal, kind, sizeof(*kind));
		*kind = event->reason;
		journal_set_u64(journal, first, now);
		journal_set_u32(journal, reports, 0);
	}
	journal_set_u64(journal, last, now);
	journal_set_u32(journal, reports, *reports + 1);
	journal_save(journal, stored, SKULD_EXCEPTION_DETAIL_SIZE);
	memcpy(stored, event->code, SKULD_EXCEPTION_DETAIL_SIZE);
	/* Cut at the stored size; the text stays NUL-padded and, like every
	 * protocol text, ends without a space. */
	stored[SKULD_EXCEPTION_DETAIL_SIZE - 1] = '\0';
	for (size_t i = SKULD_EXCEPTION_DETAIL_SIZE - 1; i > 0 && stored[i - 1] == ' '; i--)
		stored[i - 1] = '\0';
}

static void touch_add(struct push_state *push, uint32_t kind, uint32_t a, uint32_t b)
{
	SKULD_ASSERT(push->touch_count < push->touch_max);
	push->touches[push->touch_count++] = (struct push_touch){.kind = kind, .a = a, .b = b};
}

static uint32_t listing_define(struct ledger *ledger, const struct skuld_event *event)
{
	struct push_state *push = &ledger->push;
	struct journal *journal = &ledger->journal;
	struct listing *listing = listing_find(push, event->channel, event->item);
	if (event->flags & SKULD_EVENT_RETIRE) {
		if (listing == NULL || !(listing->state & LISTING_MAPPED))
			return SKULD_LISTING_UNKNOWN;
		listing_set_state(push, journal, listing, listing->state & ~LISTING_MAPPED);
		return SKULD_OK;
	}
	if (listing == NULL) {
		uint32_t index = table_alloc(&push->listings);
		if (index == TABLE_NONE)
			return SKULD_LISTINGS_FULL;
		journal_push(journal, JOURNAL_TABLE_INSERT, &push->listings, index, 0);
		listing = table_record(&push->listings, index);
		listing->channel = event->channel;
		listing->item = event->item;
		table_link(&push->listings, index, listing_hash_of(event->channel, event->item));
	}
	journal_save(journal, listing->text, sizeof(listing->text));
	memcpy(listing->text, event->listing, sizeof(listing->text));
	journal_set_u32(&ledger->journal, &push->listing_serial, push->listing_serial + 1);
	journal_set_u32(journal, &listing->serial, push->listing_serial);
	/* A new mapping is a new chance: the exception that parked the item
	 * is closed, and the flush marks the item dirty. */
	exception_clear(journal, listing);
	uint8_t state = (uint8_t)((listing->state | LISTING_MAPPED) & ~SKULD_PUSH_PARKED);
	listing_set_state(push, journal, listing, state);
	touch_add(push, PUSH_TOUCH_LISTING, event->item, event->channel);
	return SKULD_OK;
}

static uint32_t acknowledge(struct ledger *ledger, const struct skuld_event *event)
{
	struct push_state *push = &ledger->push;
	struct journal *journal = &ledger->journal;
	struct listing *listing = listing_find(push, event->channel, event->item);
	if (listing == NULL || !(listing->state & LISTING_MAPPED))
		return SKULD_LISTING_UNKNOWN;
	if (event->id == 0 || event->id > listing->version)
		return SKULD_VERSION_INVALID;
	if (event->quantity < 0 || event->quantity > LEDGER_QUANTITY_MAX)
		return SKULD_QUANTITY_INVALID;
	uint8_t state = listing->state;
	/* An older version than the one accepted already says nothing new. */
	int newer = event->id >= listing->accepted;
	if (newer) {
		journal_set_u64(journal, &listing->accepted, event->id);
		journal_set_i64(journal, &listing->shown, event->quantity);
		state |= SKULD_PUSH_SHOWN_KNOWN;
	}
	if (event->id == listing->version) {
		state &= (uint8_t)~SKULD_PUSH_DIRTY;
		journal_set_u64(journal, &listing->dirty_since, 0);
	} else if (newer) {
		/* The channel caught up to the offered value; what it still lacks
		 * changed after that offer, so the item waits from now, behind
		 * changes older than it (a busy item does not stay first). */
		journal_set_u64(journal, &listing->dirty_since, ledger->now);
	}
	/* The channel took a value: whatever held the item back is over. */
	state &= (uint8_t)~SKULD_PUSH_PARKED;
	exception_clear(journal, listing);
	listing_set_state(push, journal, listing, state);
	struct channel_push *channel = &push->channels[event->channel];
	journal_set_u64(journal, &channel->acks, channel->acks + 1);
	journal_set_u64(journal, &channel->last_ack, ledger->now);
	if (channel->exception != 0) {
		journal_save(journal, &channel->exception, sizeof(channel->exception));
		channel->exception = 0;
		journal_set_u32(journal, &channel->reports, 0);
	}
	return SKULD_OK;
}

static uint32_t report(struct ledger *ledger, const struct skuld_event *event)
{
	struct push_state *push = &ledger->push;
	struct journal *journal = &ledger->journal;
	if (event->item == 0) {
		if (event->id != 0)
			return SKULD_VERSION_INVALID;
		struct channel_push *channel = &push->channels[event->channel];
		exception_report(journal, &channel->exception, &channel->first_seen,
		                 &channel->last_seen, &channel->reports, channel->detail, event,
		                 ledger->now);
		return SKULD_OK;
	}
	struct listing *listing = listing_find(push, event->channel, event->item);
	if (listing == NULL || !(listing->state & LISTING_MAPPED))
		return SKULD_LISTING_UNKNOWN;
	if (event->id > listing->version)
		return SKULD_VERSION_INVALID;
	/* Throttling and a mismatch are reported and the item goes on; every
	 * other kind parks the item until its listing changes. A parked item
	 * keeps the exception that parked it: a later report of a kind that
	 * does not park (a read-back race) changes nothing. */
	int parks = event->reason != SKULD_PUSH_THROTTLING && event->reason != SKULD_PUSH_MISMATCH;
	if (!parks && (listing->state & SKULD_PUSH_PARKED))
		return SKULD_OK;
	exception_report(journal, &listing->exception, &listing->first_seen, &listing->last_seen,
	                 &listing->reports, listing->detail, event, ledger->now);
	if (parks)
		listing_set_state(push, journal, listing, listing->state | SKULD_PUSH_PARKED);
	return SKULD_OK;
}

uint32_t push_apply(struct ledger *ledger, const struct skuld_event *event)
{
	if (catalog_channel(&ledger->catalog, event->channel) == NULL)
		return SKULD_CHANNEL_UNKNOWN;
	if (event->kind == SKULD_PUSH_EXCEPTION && event->item == 0)
		return report(ledger, event);
	if (catalog_item(&ledger->catalog, event->item) == NULL)
		return SKULD_ITEM_UNKNOWN;
	switch (event->kind) {
	case SKULD_CHANNEL_LISTING:
		return listing_define(ledger, event);
	case SKULD_PUSH_ACK:
		return acknowledge(ledger, event);
	case SKULD_PUSH_EXCEPTION:
		return report(ledger, event);
	default:
		SKULD_ASSERT(!"not a push kind");
		return SKULD_ERR_EVENT_KIND;
	}
}

/* ---- Touches ---------------------------------------------------------------- */

void push_record(struct ledger *ledger, const struct skuld_event *event,
                 const struct skuld_result *result, uint32_t hold_item, uint32_t hold_location)
{
	struct push_state *push = &ledger->push;
	switch (event->kind) {
	case SKULD_LOCATION_STATE:
		touch_add(push, PUSH_TOUCH_LOCATION, 0, event->location);
		break;
	case SKULD_BUNDLE_COMPONENT:
		touch_add(push, PUSH_TOUCH_BUNDLE, event->item, 0);
		break;
	case SKULD_CHANNEL_DEFINE:
	case SKULD_CHANNEL_POOL:
		touch_add(push, PUSH_TOUCH_POOLS, 0, 0);
		touch_add(push, PUSH_TOUCH_CHANNEL, 0, event->channel);
		break;
	case SKULD_CHANNEL_CAP:
	case SKULD_CHANNEL_MIN:
		touch_add(push, PUSH_TOUCH_CHANNEL, 0, event->channel);
		break;
	case SKULD_CHANNEL_BUFFER:
		touch_add(push, PUSH_TOUCH_LISTING, event->item, event->channel);
		break;
	case SKULD_RESERVE:
		touch_add(push, PUSH_TOUCH_STOCK, event->item, result->location);
		break;
	case SKULD_COMMIT:
	case SKULD_RELEASE:
	case SKULD_EXPIRE:
		touch_add(push, PUSH_TOUCH_STOCK, hold_item, hold_location);
		break;
	case SKULD_REALLOCATE:
		touch_add(push, PUSH_TOUCH_STOCK, hold_item, hold_location);
		touch_add(push, PUSH_TOUCH_STOCK, hold_item, event->target);
		break;
	case SKULD_TRANSFER_OUT:
		/* The destination only gains incoming, which no channel counts. */
		touch_add(push, PUSH_TOUCH_STOCK, event->item, event->location);
		break;
	default:
		if (movement_kind(event->kind) && event->kind != SKULD_INCOMING)
			touch_add(push, PUSH_TOUCH_STOCK, event->item, event->location);
		break;
	}
}

static void pools_rebuild(struct push_state *push, const struct catalog *catalog)
{
	memset(push->location_channels, 0,
	       ((size_t)push->locations_max + 1) * push->channel_words * sizeof(uint64_t));
	for (uint32_t channel = 1; channel <= push->channels_max; channel++) {
		const struct channel *record = catalog_channel(catalog, channel);
		if (record == NULL)
			continue;
		const struct pool_entry *pool = catalog_pool(catalog, channel);
		for (uint32_t i = 0; i < record->pool_count; i++) {
			if (!pool[i].active)
				continue;
			uint64_t *bits =
			        row(push->location_channels, push->channel_words, pool[i].location);
			bits[channel >> 6] |= (uint64_t)1 << (channel & 63);
		}
	}
	push->pools_stale = 0;
}

/* The component -> bundles index, as counting sort over the components. */
static void bundles_rebuild(struct push_state *push, const struct catalog *catalog)
{
	uint32_t *first = push->bundle_first;
	memset(first, 0, ((size_t)push->items_max + 2) * sizeof(uint32_t));
	for (uint32_t id = 1; id <= push->items_max; id++) {
		const struct item *item = catalog_item(catalog, id);
		if (item == NULL || !item->bundle)
			continue;
		const struct component *components = catalog_components(catalog, item);
		for (uint32_t i = 0; i < item->components; i++)
			first[components[i].item + 1]++;
	}
	for (uint32_t id = 1; id <= push->items_max + 1; id++)
		first[id] += first[id - 1];
	/* Fill with first[] as cursors, then shift them back. */
	for (uint32_t id = 1; id <= push->items_max; id++) {
		const struct item *item = catalog_item(catalog, id);
		if (item == NULL || !item->bundle)
			continue;
		const struct component *components = catalog_components(catalog, item);
		for (uint32_t i = 0; i < item->components; i++)
			push->bundle_list[first[components[i].item]++] = id;
	}
	for (uint32_t id = push->items_max + 1; id > 0; id--)
		first[id] = first[id - 1];
	first[0] = 0;
	push->bundles_stale = 0;
}

static void mark(struct push_state *push, uint32_t channel, uint32_t item, uint64_t now)
{
	if (!bit_test(row(push->mapped, push->words, channel), item))
		return;
	struct listing *listing = listing_find(push, channel, item);
	SKULD_ASSERT(listing != NULL);
	listing->version = ++push->serial;
	if (!(listing->state & SKULD_PUSH_DIRTY)) {
		listing->dirty_since = now;
		struct journal none = {0};
		listing_set_state(push, &none, listing, listing->state | SKULD_PUSH_DIRTY);
	}
}

/* item itself and every bundle that contains it. */
static void mark_with_bundles(struct push_state *push, uint32_t channel, uint32_t item,
                              uint64_t now)
{
	mark(push, channel, item, now);
	for (uint32_t i = push->bundle_first[item]; i < push->bundle_first[item + 1]; i++)
		mark(push, channel, push->bundle_list[i], now);
}

static void mark_stock(struct ledger *ledger, uint32_t item_id, uint32_t location)
{
	struct push_state *push = &ledger->push;
	const uint64_t *channels = row(push->location_channels, push->channel_words, location);
	const struct item *item = catalog_item(&ledger->catalog, item_id);
	if (item == NULL)
		return;
	for (uint32_t word = 0; word < push->channel_words; word++) {
		for (uint64_t bits = channels[word]; bits != 0; bits &= bits - 1) {
			uint32_t channel = word * 64 + (uint32_t)__builtin_ctzll(bits);
			if (!item->bundle) {
				mark_with_bundles(push, channel, item_id, ledger->now);
				continue;
			}
			/* A bundle's movements move its components. */
			mark(push, channel, item_id, ledger->now);
			const struct component *components =
			        catalog_components(&ledger->catalog, item);
			for (uint32_t i = 0; i < item->components; i++)
				mark_with_bundles(push, channel, components[i].item, ledger->now);
		}
	}
}

static void mark_channel(struct push_state *push, uint32_t channel, uint64_t now)
{
	const uint64_t *mapped = row(push->mapped, push->words, channel);
	for (uint32_t word = 0; word < push->words; word++) {
		for (uint64_t bits = mapped[word]; bits != 0; bits &= bits - 1)
			mark(push, channel, word * 64 + (uint32_t)__builtin_ctzll(bits), now);
	}
}

void push_flush(struct ledger *ledger)
{
	struct push_state *push = &ledger->push;
	SKULD_ASSERT(!ledger->journal.active);
	if (push->touch_count == 0)
		return;
	for (uint32_t i = 0; i < push->touch_count; i++) {
		const struct push_touch *touch = &push->touches[i];
		if (touch->kind == PUSH_TOUCH_POOLS)
			push->pools_stale = 1;
		if (touch->kind == PUSH_TOUCH_BUNDLE)
			push->bundles_stale = 1;
	}
	for (uint32_t i = 0; i < push->touch_count; i++) {
		const struct push_touch *touch = &push->touches[i];
		/* The indexes are rebuilt only when a touch reads them, so a
		 * catalog import does not rebuild them once per definition. */
		if ((touch->kind == PUSH_TOUCH_STOCK || touch->kind == PUSH_TOUCH_LOCATION) &&
		    push->pools_stale)
			pools_rebuild(push, &ledger->catalog);
		if (touch->kind == PUSH_TOUCH_STOCK && push->bundles_stale)
			bundles_rebuild(push, &ledger->catalog);
		switch (touch->kind) {
		case PUSH_TOUCH_STOCK:
			mark_stock(ledger, touch->a, touch->b);
			break;
		case PUSH_TOUCH_LISTING:
			mark(push, touch->b, touch->a, ledger->now);
			break;
		case PUSH_TOUCH_CHANNEL:
			mark_channel(push, touch->b, ledger->now);
			break;
		case PUSH_TOUCH_LOCATION: {
			const uint64_t *channels =
			        row(push->location_channels, push->channel_words, touch->b);
			for (uint32_t word = 0; word < push->channel_words; word++) {
				for (uint64_t bits = channels[word]; bits != 0; bits &= bits - 1)
					mark_channel(push,
					             word * 64 + (uint32_t)__builtin_ctzll(bits),
					             ledger->now);
			}
			break;
		}
		case PUSH_TOUCH_BUNDLE:
			for (uint32_t channel = 1; channel <= push->channels_max; channel++)
				mark(push, channel, touch->a, ledger->now);
			break;
		default:
			break;
		}
	}
	push->touch_count = 0;
}

/* ---- Reading ---------------------------------------------------------------- */

uint32_t push_next(const struct push_state *push, uint32_t channel, uint32_t after, int dirty_only)
{
	if (channel == 0 || channel > push->channels_max || after >= push->items_max)
		return 0;
	const uint64_t *bits = row(dirty_only ? push->dirty : push->mapped, push->words, channel);
	uint32_t index = after + 1;
	uint32_t word = index >> 6;
	uint64_t current = bits[word] & (~(uint64_t)0 << (index & 63));
	for (;;) {
		if (current != 0)
			return word * 64 + (uint32_t)__builtin_ctzll(current);
		if (++word >= push->words)
			return 0;
		current = bits[word];
	}
}

uint64_t push_hash(const struct push_state *push)
{
	uint64_t sum = push->serial * 0x9e3779b97f4a7c15ull + push->listing_serial;
	const struct table *table = &push->listings;
	for (uint32_t index = 0; index < table->top; index++)
		sum += skuld_checksum(table_record(table, index), sizeof(struct listing));
	for (uint32_t channel = 1; channel <= push->channels_max; channel++) {
		const struct channel_push *record = &push->channels[channel];
		if (record->acks != 0 || record->exception != 0)
			sum += skuld_checksum(record, sizeof(*record)) + channel;
	}
	return sum;
}

void push_rebuild(struct push_state *push)
{
	size_t rows = (size_t)push->channels_max + 1;
	memset(push->mapped, 0, rows * push->words * sizeof(uint64_t));
	memset(push->dirty, 0, rows * push->words * sizeof(uint64_t));
	for (uint32_t channel = 0; channel <= push->channels_max; channel++) {
		push->channels[channel].mapped = 0;
		push->channels[channel].dirty = 0;
		push->channels[channel].parked = 0;
	}
	struct journal none = {0};
	const struct table *table = &push->listings;
	for (uint32_t index = 0; index < table->top; index++) {
		struct listing *listing = table_record(table, index);
		uint8_t state = listing->state;
		listing->state = 0;
		listing_set_state(push, &none, listing, state);
	}
	push->pools_stale = 1;
	push->bundles_stale = 1;
}

/* ---- The ledger's reading API (ledger.h) ----------------------------------- */

uint32_t ledger_push_item(const struct ledger *ledger, uint32_t channel, uint32_t item,
                          struct ledger_push_info *out)
{
	memset(out, 0, sizeof(*out));
	out->item = item;
	if (catalog_channel(&ledger->catalog, channel) == NULL)
		return SKULD_CHANNEL_UNKNOWN;
	const struct listing *listing = push_listing(&ledger->push, channel, item);
	if (listing == NULL || !(listing->state & LISTING_MAPPED))
		return SKULD_LISTING_UNKNOWN;
	out->listing_serial = listing->serial;
	out->version = listing->version;
	out->accepted = listing->accepted;
	out->shown = listing->shown;
	out->dirty_since = listing->dirty_since;
	out->first_seen = listing->first_seen;
	out->last_seen = listing->last_seen;
	out->reports = listing->reports;
	out->exception = listing->exception;
	out->state = listing->state & (uint8_t)~LISTING_MAPPED;
	out->scale = ledger->catalog.items[item].scale;
	memcpy(out->detail, listing->detail, sizeof(out->detail));
	memcpy(out->listing, listing->text, sizeof(out->listing));
	/* Defined: the listing names a defined item and channel. */
	uint32_t status = ledger_channel_quantity(ledger, channel, item, &out->quantity);
	SKULD_ASSERT(status == SKULD_OK);
	return SKULD_OK;
}

uint32_t ledger_push_next(const struct ledger *ledger, uint32_t channel, uint32_t after,
                          int dirty_only)
{
	return push_next(&ledger->push, channel, after, dirty_only);
}

uint32_t ledger_channel_push(const struct ledger *ledger, uint32_t channel,
                             struct ledger_channel_push_info *out)
{
	memset(out, 0, sizeof(*out));
	if (catalog_channel(&ledger->catalog, channel) == NULL)
		return SKULD_CHANNEL_UNKNOWN;
	const struct push_state *push = &ledger->push;
	const struct channel_push *record = &push->channels[channel];
	out->mapped = record->mapped;
	out->dirty = record->dirty;
	out->parked = record->parked;
	out->reports = record->reports;
	out->last_ack = record->last_ack;
	out->acks = record->acks;
	out->first_seen = record->first_seen;
	out->last_seen = record->last_seen;
	out->exception = record->exception;
	memcpy(out->detail, record->detail, sizeof(out->detail));
	for (uint32_t item = push_next(push, channel, 0, 1); item != 0;
	     item = push_next(push, channel, item, 1)) {
		const struct listing *listing = listing_find(push, channel, item);
		if (out->oldest_dirty == 0 || listing->dirty_since < out->oldest_dirty)
			out->oldest_dirty = listing->dirty_since;
	}
	return SKULD_OK;
}
