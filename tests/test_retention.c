/*
 * test_retention.c — the log retention rule (server/retention.c): only a
 * prefix leaves, never at or past the boundary, by size, by age, and
 * nothing without a limit.
 */
#include <criterion/criterion.h>

#include "retention.h"

#define DAY (86400ull * 1000000000ull)

/* Ten segments of 100 bytes, one created each day: segment i on day i. */
static struct retention_segment segments[10];

static void ten_days(void)
{
	for (uint32_t i = 0; i < 10; i++)
		segments[i] = (struct retention_segment){i + 1, 100, (i + 1) * DAY};
}

Test(retention, without_a_limit_nothing_leaves, .init = ten_days)
{
	struct retention_config config = {0};
	cr_assert_eq(retention_plan(segments, 10, 11, 100 * DAY, &config), 0);
}

Test(retention, size_keeps_the_newest_within_the_limit, .init = ten_days)
{
	struct retention_config config = {.keep_bytes = 350};
	cr_assert_eq(retention_plan(segments, 10, 11, 11 * DAY, &config), 7, "400 > 350");
	config.keep_bytes = 1000;
	cr_assert_eq(retention_plan(segments, 10, 11, 11 * DAY, &config), 0);
}

Test(retention, age_moves_what_is_older_than_the_limit, .init = ten_days)
{
	struct retention_config config = {.keep_age_ns = 3 * DAY};
	/* Day 11: segments of days 1..7 are older than 3 days. */
	cr_assert_eq(retention_plan(segments, 10, 11, 11 * DAY, &config), 7);
	/* A segment whose header did not check out (created 0) is not old. */
	segments[0].created_ns = 0;
	cr_assert_eq(retention_plan(segments, 10, 11, 11 * DAY, &config), 0);
}

Test(retention, never_at_or_past_the_boundary, .init = ten_days)
{
	struct retention_config config = {.keep_bytes = 1};
	cr_assert_eq(retention_plan(segments, 10, 4, 11 * DAY, &config), 3,
	             "segment 4 holds the oldest kept snapshot's position");
	cr_assert_eq(retention_plan(segments, 10, 1, 11 * DAY, &config), 0);
	cr_assert_eq(retention_plan(segments, 10, 0, 11 * DAY, &config), 0);
}

Test(retention, only_a_prefix_leaves, .init = ten_days)
{
	/* Segment 3 is young (a clock step): it and everything after stay. */
	segments[2].created_ns = 10 * DAY;
	struct retention_config config = {.keep_age_ns = 3 * DAY};
	cr_assert_eq(retention_plan(segments, 10, 11, 11 * DAY, &config), 2);
}
