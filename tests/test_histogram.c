/*
 * test_histogram.c — the latency histogram of skuld-bench: bucket bounds,
 * percentiles against an exact sort, merge.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "histogram.h"

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

Test(histogram, small_values_are_exact)
{
	struct histogram h;
	histogram_init(&h);
	for (uint64_t v = 1; v <= 31; v++)
		histogram_record(&h, v);
	cr_assert_eq(histogram_percentile(&h, 50), 16);
	cr_assert_eq(histogram_percentile(&h, 100), 31);
	cr_assert_eq(h.min, 1);
	cr_assert_eq(h.max, 31);
	cr_assert_eq(h.total, 31);
}

Test(histogram, percentiles_within_relative_error_of_exact_sort)
{
	enum {
		N = 100000
	};
	uint64_t *values = malloc(sizeof(uint64_t) * N);
	cr_assert_not_null(values);
	struct histogram h;
	histogram_init(&h);
	uint64_t state = 12345;
	for (int i = 0; i < N; i++) {
		state = state * 6364136223846793005ull + 1442695040888963407ull;
		/* Spread over 1 us .. ~1 s, log-uniform-ish. */
		uint64_t v = 1 + ((state >> 33) % 1000) * (1ull << ((state >> 20) % 20));
		values[i] = v;
		histogram_record(&h, v);
	}
	qsort(values, N, sizeof(uint64_t), compare_u64);
	const double percentiles[] = {50, 90, 99, 99.9};
	for (size_t p = 0; p < sizeof(percentiles) / sizeof(percentiles[0]); p++) {
		uint64_t exact = values[(size_t)(percentiles[p] / 100.0 * N + 0.5) - 1];
		uint64_t got = histogram_percentile(&h, percentiles[p]);
		cr_assert_geq(got, exact, "p%.1f: %llu below exact %llu", percentiles[p],
		              (unsigned long long)got, (unsigned long long)exact);
		cr_assert_leq((double)got, (double)exact * (1.0 + 1.0 / 32) + 1,
		              "p%.1f: %llu too far above exact %llu", percentiles[p],
		              (unsigned long long)got, (unsigned long long)exact);
	}
	cr_assert_eq(histogram_percentile(&h, 100), values[N - 1]);
	free(values);
}

Test(histogram, merge_adds_counts_and_keeps_extremes)
{
	struct histogram a, b;
	histogram_init(&a);
	histogram_init(&b);
	histogram_record(&a, 5);
	histogram_record(&b, 5000);
	histogram_record(&b, 7);
	histogram_merge(&a, &b);
	cr_assert_eq(a.total, 3);
	cr_assert_eq(a.min, 5);
	cr_assert_eq(a.max, 5000);
	cr_assert_eq(histogram_percentile(&a, 50), 7);
}

Test(histogram, empty_reports_zero)
{
	struct histogram h;
	histogram_init(&h);
	cr_assert_eq(histogram_percentile(&h, 99), 0);
}
