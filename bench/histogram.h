/*
 * histogram.h — a log-linear latency histogram (HDR style) with a fixed
 * footprint: values in microseconds, relative error under 1/32 (about 3%)
 * from 1 us to about 70 minutes. Recording is O(1), percentiles walk the
 * buckets once.
 */
#ifndef SKULD_HISTOGRAM_H
#define SKULD_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS   5u /* 32 linear sub-buckets per power of two */
#define HISTOGRAM_SUB_COUNT  (1u << HISTOGRAM_SUB_BITS)
#define HISTOGRAM_MAGNITUDES 32u
#define HISTOGRAM_BUCKETS    (HISTOGRAM_MAGNITUDES * HISTOGRAM_SUB_COUNT)

struct histogram {
	uint64_t counts[HISTOGRAM_BUCKETS];
	uint64_t total;
	uint64_t max;
	uint64_t min;
	double sum;
};

void histogram_init(struct histogram *histogram);
void histogram_record(struct histogram *histogram, uint64_t value);
void histogram_merge(struct histogram *into, const struct histogram *from);

/* The smallest recorded-bucket upper bound at or above percentile (0..100);
 * 0 when nothing was recorded. */
uint64_t histogram_percentile(const struct histogram *histogram, double percentile);

#endif
