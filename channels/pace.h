/*
 * pace.h — rate-limit buckets for the push workers: how long to wait before
 * a call of a given cost so that the channel never has to throttle it.
 *
 * Owns: one bucket model that fits the channels' limits —
 *   - Shopify's cost-based leaky bucket (capacity in points, restore rate in
 *     points/s, each call's requested cost taken up front), learned from
 *     every response's extensions.cost.throttleStatus;
 *   - Amazon's per-operation token buckets (burst, rate/s), seeded from the
 *     published figures and corrected by x-amzn-RateLimit-Limit;
 *   - Square's undocumented limit, which a worker paces with a guessed
 *     bucket and corrects by backoff (backoff.h).
 *
 * Invariants: level never exceeds capacity; time only moves forward (an
 * older now_ns than the last seen is treated as the last seen). Nothing
 * here reads a clock or does I/O: the caller passes now_ns, so tests drive
 * it with a controlled clock.
 */
#ifndef SKULD_CHANNELS_PACE_H
#define SKULD_CHANNELS_PACE_H

#include <stdint.h>

#define PACE_NEVER UINT64_MAX /* a cost the bucket can never hold */

struct pace_bucket {
	double capacity; /* most the bucket holds (points or tokens) */
	double rate;     /* restored per second */
	double level;    /* available at at_ns */
	uint64_t at_ns;  /* time of level */
};

/* A full bucket of capacity restoring rate per second, as of now_ns. */
void pace_init(struct pace_bucket *bucket, double capacity, double rate, uint64_t now_ns);

/* What the bucket holds at now_ns (restored since at_ns, at most capacity). */
double pace_level(const struct pace_bucket *bucket, uint64_t now_ns);

/* Nanoseconds to wait before a call costing cost may be sent: 0 when it may
 * go now, PACE_NEVER when cost exceeds capacity or nothing restores. */
uint64_t pace_wait_ns(const struct pace_bucket *bucket, double cost, uint64_t now_ns);

/* Takes cost for a call sent at now_ns (the level may not go below zero:
 * a caller that did not wait is clamped, and the channel will say so). */
void pace_take(struct pace_bucket *bucket, double cost, uint64_t now_ns);

/* The channel's own view, read from a response at now_ns: replaces level
 * and, when given (> 0), capacity and rate. This is how a worker learns the
 * real bucket (a Plus shop restores 10x faster than the default guess). */
void pace_observe(struct pace_bucket *bucket, double available, double capacity, double rate,
                  uint64_t now_ns);

/* The channel throttled a call at now_ns: the bucket is empty now. */
void pace_throttled(struct pace_bucket *bucket, uint64_t now_ns);

#endif /* SKULD_CHANNELS_PACE_H */
