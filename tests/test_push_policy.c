/*
 * test_push_policy.c — the push workers' pure policy (channels/): the
 * rate-limit bucket on a controlled clock, backoff with jitter and
 * Retry-After, and the order dirty items are pushed in.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "backoff.h"
#include "pace.h"
#include "priority.h"

#define MS 1000000ull
#define S  1000000000ull

/* ---- pace ---------------------------------------------------------------- */

Test(pace, a_full_bucket_lets_calls_through_until_it_is_empty)
{
	struct pace_bucket bucket;
	pace_init(&bucket, 2000, 100, 0);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(pace_wait_ns(&bucket, 10, 0), 0, "call %d", i);
		pace_take(&bucket, 10, 0);
	}
	/* Empty: the next 10 points take 100 ms at 100 points/s. */
	cr_assert_eq(pace_wait_ns(&bucket, 10, 0), 100 * MS);
	cr_assert_eq(pace_wait_ns(&bucket, 10, 50 * MS), 50 * MS);
	cr_assert_eq(pace_wait_ns(&bucket, 10, 100 * MS), 0);
}

Test(pace, the_level_restores_up_to_capacity_and_no_further)
{
	struct pace_bucket bucket;
	pace_init(&bucket, 40, 2, 0);
	pace_take(&bucket, 40, 0);
	cr_assert_float_eq(pace_level(&bucket, 5 * S), 10.0, 1e-9);
	cr_assert_float_eq(pace_level(&bucket, 3600 * S), 40.0, 1e-9);
}

Test(pace, a_cost_above_capacity_or_without_restore_never_goes)
{
	struct pace_bucket bucket;
	pace_init(&bucket, 1000, 50, 0);
	cr_assert_eq(pace_wait_ns(&bucket, 1001, 0), PACE_NEVER);
	pace_init(&bucket, 10, 0, 0);
	pace_take(&bucket, 10, 0);
	cr_assert_eq(pace_wait_ns(&bucket, 1, S), PACE_NEVER);
}

Test(pace, observing_the_channel_learns_the_real_bucket)
{
	/* Guessed a Standard shop; the answers say Plus (1000/s restore). */
	struct pace_bucket bucket;
	pace_init(&bucket, 2000, 100, 0);
	pace_take(&bucket, 1990, 0);
	pace_observe(&bucket, 10, 20000, 1000, 0);
	cr_assert_float_eq(bucket.capacity, 20000.0, 1e-9);
	cr_assert_float_eq(bucket.rate, 1000.0, 1e-9);
	cr_assert_eq(pace_wait_ns(&bucket, 1010, 0), 1 * S);
	/* A throttled answer empties it, whatever the estimate said. */
	pace_observe(&bucket, 5000, 0, 0, 2 * S);
	pace_throttled(&bucket, 2 * S);
	cr_assert_eq(pace_wait_ns(&bucket, 100, 2 * S), 100 * MS);
}

Test(pace, time_never_runs_backwards)
{
	struct pace_bucket bucket;
	pace_init(&bucket, 100, 10, 10 * S);
	pace_take(&bucket, 100, 10 * S);
	pace_take(&bucket, 0, 5 * S); /* an older clock reading changes nothing */
	cr_assert_float_eq(pace_level(&bucket, 10 * S), 0.0, 1e-9);
	cr_assert_float_eq(pace_level(&bucket, 11 * S), 10.0, 1e-9);
}

/* A simulated worker against a simulated channel bucket: after it has
 * learned the bucket from the first answer, no call is ever throttled. */
Test(pace, a_learning_worker_is_never_throttled)
{
	struct pace_bucket channel, worker;
	pace_init(&channel, 1000, 50, 0);
	pace_init(&worker, 2000, 100, 0); /* a wrong guess */
	uint64_t now = 0;
	int throttled_after_learning = 0, calls = 0;
	bool learned = false;
	while (calls < 500) {
		uint64_t wait = pace_wait_ns(&worker, 112, now);
		cr_assert_neq(wait, PACE_NEVER);
		now += wait;
		if (pace_level(&channel, now) < 112) {
			throttled_after_learning += learned;
			pace_throttled(&worker, now);
			pace_observe(&worker, pace_level(&channel, now), channel.capacity,
			             channel.rate, now);
			learned = true;
			continue;
		}
		pace_take(&channel, 112, now);
		pace_take(&worker, 112, now);
		pace_observe(&worker, pace_level(&channel, now), channel.capacity, channel.rate,
		             now);
		learned = true;
		calls++;
	}
	cr_assert_eq(throttled_after_learning, 0);
	/* Steady state is the channel's restore rate: 500 calls of 112 points
	 * = 56,000 points, 1,000 up front, the rest at 50/s = 1,100 s. */
	cr_assert(now >= 1099 * S && now <= 1101 * S, "%llu ms", (unsigned long long)(now / MS));
}

/* ---- backoff ------------------------------------------------------------- */

Test(backoff, steps_double_up_to_the_cap_with_the_upper_half_random)
{
	struct backoff_policy policy = {.base_ms = 500, .cap_ms = 60000};
	uint64_t rng = 42;
	for (uint32_t attempt = 0; attempt < 40; attempt++) {
		uint64_t step = attempt < 7 ? 500ull << attempt : 60000;
		for (int i = 0; i < 50; i++) {
			uint64_t delay = backoff_delay_ms(&policy, attempt, 0, &rng);
			cr_assert(delay >= step / 2 && delay <= step,
			          "attempt %u: %llu of step %llu", attempt,
			          (unsigned long long)delay, (unsigned long long)step);
		}
	}
}

Test(backoff, jitter_spreads_retries_apart)
{
	struct backoff_policy policy = {.base_ms = 1000, .cap_ms = 60000};
	uint64_t rng = 7;
	uint64_t first = backoff_delay_ms(&policy, 3, 0, &rng);
	int differ = 0;
	for (int i = 0; i < 20; i++)
		differ += backoff_delay_ms(&policy, 3, 0, &rng) != first;
	cr_assert_geq(differ, 15);
}

Test(backoff, retry_after_is_a_floor)
{
	struct backoff_policy policy = {.base_ms = 100, .cap_ms = 1000};
	uint64_t rng = 1;
	cr_assert_eq(backoff_delay_ms(&policy, 0, 30000, &rng), 30000);
	cr_assert_eq(backoff_retry_after_ms("2"), 2000);
	cr_assert_eq(backoff_retry_after_ms(" 120\r\n"), 120000);
	cr_assert_eq(backoff_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
	cr_assert_eq(backoff_retry_after_ms("12abc"), 0);
	cr_assert_eq(backoff_retry_after_ms(""), 0);
	cr_assert_eq(backoff_retry_after_ms(NULL), 0);
	cr_assert_eq(backoff_retry_after_ms("99999999999999999999999"), 86400000);
}

/* ---- priority ------------------------------------------------------------ */

static struct push_rank rank(uint32_t item, int64_t desired, int64_t shown, bool known,
                             uint64_t since)
{
	return (struct push_rank){item, desired, shown, known, since};
}

Test(priority, classes_follow_the_risk_of_overselling)
{
	cr_assert_eq(push_class(&(struct push_rank){1, 0, 5, true, 0}, 2), PUSH_CLASS_LOW);
	cr_assert_eq(push_class(&(struct push_rank){1, 0, 0, true, 0}, 2), PUSH_CLASS_LOW,
	             "a zero re-send still goes first");
	cr_assert_eq(push_class(&(struct push_rank){1, 2, 9, true, 0}, 2), PUSH_CLASS_LOW);
	cr_assert_eq(push_class(&(struct push_rank){1, 2, 2, true, 0}, 2), PUSH_CLASS_SAME);
	cr_assert_eq(push_class(&(struct push_rank){1, 5, 9, true, 0}, 2), PUSH_CLASS_DECREASE);
	cr_assert_eq(push_class(&(struct push_rank){1, 9, 0, false, 0}, 2), PUSH_CLASS_DECREASE,
	             "unknown shown: the channel may show more");
	cr_assert_eq(push_class(&(struct push_rank){1, 9, 5, true, 0}, 2), PUSH_CLASS_INCREASE);
	cr_assert_eq(push_class(&(struct push_rank){1, 9, 9, true, 0}, 2), PUSH_CLASS_SAME);
}

static int64_t sort_threshold;
static int compare(const void *a, const void *b)
{
	return push_rank_compare(a, b, sort_threshold);
}

Test(priority, sorting_puts_zeros_then_decreases_then_increases_oldest_first)
{
	struct push_rank items[] = {
	        rank(10, 50, 40, true, 100), /* increase */
	        rank(11, 30, 40, true, 300), /* decrease, newer */
	        rank(12, 0, 3, true, 900),   /* zero */
	        rank(13, 30, 40, true, 200), /* decrease, older */
	        rank(14, 1, 8, true, 50),    /* low */
	        rank(15, 7, 7, true, 10),    /* same */
	        rank(16, 30, 40, true, 200), /* decrease, as old as 13: by id */
	};
	sort_threshold = 2;
	qsort(items, sizeof(items) / sizeof(items[0]), sizeof(items[0]), compare);
	uint32_t want[] = {14, 12, 13, 16, 11, 10, 15};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_eq(items[i].item, want[i], "position %zu: item %u", i, items[i].item);
}
