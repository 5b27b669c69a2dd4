/*
 * push.h — what a push worker pushes and what it reports back, the same for
 * every channel.
 *
 * Owns: struct push_item (one dirty (channel, item) as the ledger offers it:
 * the quantity to show with its version, what the channel last accepted,
 * and the item's listing identifiers on that channel), struct push_result
 * (one verdict per item: accepted with the value the channel now shows,
 * retry later, or an exception that is not retried until the mapping
 * changes), and the exception kinds every channel maps its errors to.
 *
 * Quantities are in the item's base unit with its decimal scale, as the
 * ledger counts them; a driver for a channel that takes whole units rounds
 * down (push_whole_units), so a channel never shows a unit that is not
 * there.
 */
#ifndef SKULD_CHANNELS_PUSH_H
#define SKULD_CHANNELS_PUSH_H

#include <stdbool.h>
#include <stdint.h>

#define PUSH_LISTING_SIZE 96u /* one listing identifier, with the NUL */
#define PUSH_DETAIL_SIZE  160u

enum push_exception {
	PUSH_EXCEPTION_NONE = 0,
	PUSH_EXCEPTION_UNMAPPED = 1,    /* no listing identifiers for this channel */
	PUSH_EXCEPTION_UNKNOWN = 2,     /* the channel does not know the listing */
	PUSH_EXCEPTION_INACTIVE = 3,    /* listing inactive, or location inactive */
	PUSH_EXCEPTION_NOT_STOCKED = 4, /* the item is not stocked at the location */
	PUSH_EXCEPTION_AUTH = 5,        /* the channel refused the credentials */
	PUSH_EXCEPTION_VALIDATION = 6,  /* the channel refused the value or the request */
	PUSH_EXCEPTION_THROTTLING = 7,  /* throttled again and again (reported, still retried) */
	PUSH_EXCEPTION_MISMATCH = 8,    /* read back, the channel shows another quantity */
};

const char *push_exception_name(enum push_exception exception);

struct push_item {
	uint32_t item;
	uint64_t version;                   /* of quantity, from the ledger */
	int64_t quantity;                   /* to show, in base units */
	uint8_t scale;                      /* the item's decimal places */
	int64_t shown;                      /* what the channel last accepted, in base units */
	bool shown_known;                   /* false: never accepted, or forgotten by a resync */
	uint64_t dirty_since;               /* ledger time the item first differed */
	bool stale;                         /* the channel answered "stale" last time: shown was
	                                       just read back, push at most that (a channel sale
	                                       the ledger has not seen yet is never undone) */
	char listing[2][PUSH_LISTING_SIZE]; /* Shopify: inventory item gid, location gid */
};

enum push_verdict {
	PUSH_ACCEPTED = 1,  /* the channel shows `shown` now */
	PUSH_RETRY = 2,     /* nothing known to be applied: offer it again later */
	PUSH_EXCEPTION = 3, /* parked until the mapping changes */
};

struct push_result {
	uint32_t item;
	uint64_t version;
	enum push_verdict verdict;
	int64_t shown;    /* what the channel shows, in base units, when shown_known */
	bool shown_known; /* ACCEPTED: always; RETRY: after a stale answer's read-back */
	bool stale;       /* RETRY after a stale answer: copy into the item's stale */
	enum push_exception exception;
	char detail[PUSH_DETAIL_SIZE]; /* the channel's words, for the exception list */
};

/* What a read-back found for one item. */
struct push_level {
	bool known;    /* the listing exists and is stocked at the location */
	int64_t shown; /* what the channel shows, in base units */
	/* When not known: why, if the read-back found the listing unusable
	 * (Amazon: INACTIVE when not BUYABLE, UNKNOWN when not found); NONE:
	 * nothing to report (e.g. a change accepted but not applied yet). */
	enum push_exception exception;
	char detail[PUSH_DETAIL_SIZE];
};

/* A fresh result for item: verdict, exception and the channel's detail
 * (NULL: none); shown unknown. */
void push_result_set(struct push_result *result, const struct push_item *item,
                     enum push_verdict verdict, enum push_exception exception, const char *detail);

/* The same verdict for every item one call carried: results[sent[i]] for
 * items[sent[i]], i < count. */
void push_results_set(struct push_result *results, const struct push_item *items,
                      const uint32_t *sent, uint32_t count, enum push_verdict verdict,
                      enum push_exception exception, const char *detail);

/* quantity (base units at scale) in whole units, rounded down; negative
 * quantities show as 0. */
int64_t push_whole_units(int64_t quantity, uint8_t scale);

/* Whole units back to base units at scale (saturating). */
int64_t push_base_units(int64_t whole, uint8_t scale);

#endif /* SKULD_CHANNELS_PUSH_H */
