/*
 * priority.c — push order (priority.h).
 */
#include "priority.h"

enum push_class push_class(const struct push_rank *rank, int64_t low_threshold)
{
	bool unchanged = rank->shown_known && rank->shown == rank->desired;
	/* A zero is never "just a re-send": it goes first, also on schedule. */
	if (rank->desired <= 0 || (rank->desired <= low_threshold && !unchanged))
		return PUSH_CLASS_LOW;
	if (unchanged)
		return PUSH_CLASS_SAME;
	if (!rank->shown_known || rank->desired < rank->shown)
		return PUSH_CLASS_DECREASE;
	return PUSH_CLASS_INCREASE;
}

int push_rank_compare(const struct push_rank *a, const struct push_rank *b, int64_t low_threshold)
{
	enum push_class ca = push_class(a, low_threshold);
	enum push_class cb = push_class(b, low_threshold);
	if (ca != cb)
		return ca < cb ? -1 : 1;
	if (a->dirty_since != b->dirty_since)
		return a->dirty_since < b->dirty_since ? -1 : 1;
	if (a->item != b->item)
		return a->item < b->item ? -1 : 1;
	return 0;
}
