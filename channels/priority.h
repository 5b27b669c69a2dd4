/*
 * priority.h — the order in which a push worker sends its dirty items.
 *
 * Owns: the rule of issue "channel push": items reaching zero or a low
 * threshold go first (they are the ones that oversell), then decreases,
 * then increases (a late increase only loses a sale; a late decrease sells
 * stock that is gone). Within a class, the item dirty longest goes first,
 * then the lower item id, so the order is total and deterministic.
 *
 * An item whose shown quantity is unknown (never pushed, or after a
 * resync) is treated as a decrease: the channel may show more than there
 * is.
 */
#ifndef SKULD_CHANNELS_PRIORITY_H
#define SKULD_CHANNELS_PRIORITY_H

#include <stdbool.h>
#include <stdint.h>

enum push_class {
	PUSH_CLASS_LOW = 0,      /* the new quantity is at or below the low threshold */
	PUSH_CLASS_DECREASE = 1, /* lower than shown, or shown unknown */
	PUSH_CLASS_INCREASE = 2, /* higher than shown */
	PUSH_CLASS_SAME = 3,     /* equal to shown: a re-send (zeros on a schedule, resync) */
};

struct push_rank {
	uint32_t item;
	int64_t desired;      /* the quantity to show */
	int64_t shown;        /* what the channel last accepted */
	bool shown_known;     /* false: never pushed, or forgotten by a resync */
	uint64_t dirty_since; /* ledger time the item first differed */
};

enum push_class push_class(const struct push_rank *rank, int64_t low_threshold);

/* qsort-style: negative when a goes before b. */
int push_rank_compare(const struct push_rank *a, const struct push_rank *b, int64_t low_threshold);

#endif /* SKULD_CHANNELS_PRIORITY_H */
