/*
 * backoff.h — how long a push worker waits before it retries a call that
 * was throttled, failed with a server error, or got no answer.
 *
 * Owns: exponential backoff with "equal jitter" (half of the step fixed,
 * half random), capped, and never shorter than the channel's Retry-After.
 * A retry keeps the work: the caller re-sends the same items (with the same
 * idempotency key where the API has one) after the delay; nothing here
 * gives up, because a push that is dropped is a quantity that is wrong on a
 * channel (CHANNELS.md: "a full sync abandoned after 3 RATE_LIMITED retries
 * and never resumed").
 *
 * Pure: the caller passes the random state; no clock, no I/O.
 */
#ifndef SKULD_CHANNELS_BACKOFF_H
#define SKULD_CHANNELS_BACKOFF_H

#include <stdint.h>

struct backoff_policy {
	uint64_t base_ms; /* the first step */
	uint64_t cap_ms;  /* the largest step */
};

/* Delay before retry number attempt (0 for the first retry): a step of
 * min(cap, base * 2^attempt), of which the upper half is random; at least
 * retry_after_ms (0: the channel said nothing). *rng is advanced. */
uint64_t backoff_delay_ms(const struct backoff_policy *policy, uint32_t attempt,
                          uint64_t retry_after_ms, uint64_t *rng);

/* Parses an HTTP Retry-After value given in seconds ("120"); returns
 * milliseconds, or 0 when the value is absent or not a plain number (an
 * HTTP-date is treated as absent: the backoff still applies). */
uint64_t backoff_retry_after_ms(const char *value);

#endif /* SKULD_CHANNELS_BACKOFF_H */
