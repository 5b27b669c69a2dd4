/*
 * histogram.c — see histogram.h. Bucket b holds values whose highest set bit
 * is magnitude m = b / 32 (values below 32 sit in magnitude 0 exactly), and
 * the next 5 bits below it select the sub-bucket.
 */
#include "histogram.h"

#include <string.h>

void histogram_init(struct histogram *histogram)
{
	memset(histogram, 0, sizeof(*histogram));
	histogram->min = UINT64_MAX;
}

static uint32_t bucket_of(uint64_t value)
{
	if (value < HISTOGRAM_SUB_COUNT)
		return (uint32_t)value;
	uint32_t top = 63u - (uint32_t)__builtin_clzll(value); /* >= SUB_BITS */
	uint32_t magnitude = top - HISTOGRAM_SUB_BITS + 1;
	if (magnitude >= HISTOGRAM_MAGNITUDES)
		return HISTOGRAM_BUCKETS - 1;
	uint32_t sub = (uint32_t)(value >> (top - HISTOGRAM_SUB_BITS)) & (HISTOGRAM_SUB_COUNT - 1);
	return magnitude * HISTOGRAM_SUB_COUNT + sub;
}

/* Largest value that falls in bucket. */
static uint64_t bucket_upper(uint32_t bucket)
{
	uint32_t magnitude = bucket / HISTOGRAM_SUB_COUNT;
	uint32_t sub = bucket % HISTOGRAM_SUB_COUNT;
	if (magnitude == 0)
		return sub;
	uint32_t shift = magnitude - 1;
	uint64_t base = (uint64_t)(HISTOGRAM_SUB_COUNT + sub) << shift;
	return base + (((uint64_t)1 << shift) - 1);
}

void histogram_record(struct histogram *histogram, uint64_t value)
{
	histogram->counts[bucket_of(value)]++;
	histogram->total++;
	histogram->sum += (double)value;
	if (value > histogram->max)
		histogram->max = value;
	if (value < histogram->min)
		histogram->min = value;
}

void histogram_merge(struct histogram *into, const struct histogram *from)
{
	for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++)
		into->counts[i] += from->counts[i];
	into->total += from->total;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
	if (from->min < into->min)
		into->min = from->min;
}

uint64_t histogram_percentile(const struct histogram *histogram, double percentile)
{
	if (histogram->total == 0)
		return 0;
	uint64_t rank = (uint64_t)(percentile / 100.0 * (double)histogram->total + 0.5);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
		seen += histogram->counts[i];
		if (seen >= rank) {
			uint64_t upper = bucket_upper(i);
			return upper < histogram->max ? upper : histogram->max;
		}
	}
	return histogram->max;
}
