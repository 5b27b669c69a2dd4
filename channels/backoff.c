/*
 * backoff.c — retry delays (backoff.h).
 */
#include "backoff.h"

#include <ctype.h>
#include <stddef.h>

/* splitmix64: small, fast, and good enough to spread retries apart. */
static uint64_t random_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t backoff_delay_ms(const struct backoff_policy *policy, uint32_t attempt,
                          uint64_t retry_after_ms, uint64_t *rng)
{
	uint64_t step = policy->cap_ms;
	if (attempt < 63 && policy->base_ms <= (policy->cap_ms >> attempt))
		step = policy->base_ms << attempt;
	uint64_t half = step / 2;
	uint64_t delay = step - half + (half != 0 ? random_next(rng) % (half + 1) : 0);
	return delay > retry_after_ms ? delay : retry_after_ms;
}

uint64_t backoff_retry_after_ms(const char *value)
{
	if (value == NULL)
		return 0;
	while (*value == ' ' || *value == '\t')
		value++;
	if (!isdigit((unsigned char)*value))
		return 0;
	uint64_t seconds = 0;
	for (; isdigit((unsigned char)*value); value++) {
		if (seconds > 86400)
			return 86400ull *
			       1000; /* a day at most: a bad header is not a week's pause */
		seconds = seconds * 10 + (uint64_t)(*value - '0');
	}
	while (*value == ' ' || *value == '\t' || *value == '\r' || *value == '\n')
		value++;
	if (*value != '\0')
		return 0;
	if (seconds > 86400)
		seconds = 86400;
	return seconds * 1000;
}
