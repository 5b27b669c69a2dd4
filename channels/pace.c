/*
 * pace.c — rate-limit buckets (pace.h).
 */
#include "pace.h"

void pace_init(struct pace_bucket *bucket, double capacity, double rate, uint64_t now_ns)
{
	bucket->capacity = capacity > 0 ? capacity : 0;
	bucket->rate = rate > 0 ? rate : 0;
	bucket->level = bucket->capacity;
	bucket->at_ns = now_ns;
}

double pace_level(const struct pace_bucket *bucket, uint64_t now_ns)
{
	if (now_ns <= bucket->at_ns)
		return bucket->level;
	double level = bucket->level + bucket->rate * ((double)(now_ns - bucket->at_ns) / 1e9);
	return level < bucket->capacity ? level : bucket->capacity;
}

/* Brings level up to now_ns (never backwards). */
static void advance(struct pace_bucket *bucket, uint64_t now_ns)
{
	if (now_ns <= bucket->at_ns)
		return;
	bucket->level = pace_level(bucket, now_ns);
	bucket->at_ns = now_ns;
}

uint64_t pace_wait_ns(const struct pace_bucket *bucket, double cost, uint64_t now_ns)
{
	if (cost > bucket->capacity)
		return PACE_NEVER;
	double level = pace_level(bucket, now_ns);
	if (level >= cost)
		return 0;
	if (bucket->rate <= 0)
		return PACE_NEVER;
	double wait_ns = (cost - level) / bucket->rate * 1e9;
	/* Round up, so that after waiting the level really holds cost. */
	uint64_t whole = (uint64_t)wait_ns;
	return whole + ((double)whole < wait_ns ? 1 : 0);
}

void pace_take(struct pace_bucket *bucket, double cost, uint64_t now_ns)
{
	advance(bucket, now_ns);
	bucket->level -= cost;
	if (bucket->level < 0)
		bucket->level = 0;
}

void pace_observe(struct pace_bucket *bucket, double available, double capacity, double rate,
                  uint64_t now_ns)
{
	advance(bucket, now_ns);
	if (capacity > 0)
		bucket->capacity = capacity;
	if (rate > 0)
		bucket->rate = rate;
	if (available < 0)
		available = 0;
	bucket->level = available < bucket->capacity ? available : bucket->capacity;
}

void pace_throttled(struct pace_bucket *bucket, uint64_t now_ns)
{
	advance(bucket, now_ns);
	bucket->level = 0;
}
