/*
 * push.c — shared helpers of the push drivers (push.h).
 */
#include "push.h"

#include <stdio.h>
#include <string.h>

static const char *const exception_names[] = {
        [PUSH_EXCEPTION_NONE] = "none",
        [PUSH_EXCEPTION_UNMAPPED] = "unmapped",
        [PUSH_EXCEPTION_UNKNOWN] = "unknown-listing",
        [PUSH_EXCEPTION_INACTIVE] = "inactive",
        [PUSH_EXCEPTION_NOT_STOCKED] = "not-stocked",
        [PUSH_EXCEPTION_AUTH] = "auth",
        [PUSH_EXCEPTION_VALIDATION] = "validation",
        [PUSH_EXCEPTION_THROTTLING] = "throttling",
        [PUSH_EXCEPTION_MISMATCH] = "mismatch",
};

const char *push_exception_name(enum push_exception exception)
{
	if ((unsigned)exception >= sizeof(exception_names) / sizeof(exception_names[0]))
		return "unknown";
	return exception_names[exception];
}

static int64_t power_of_ten(uint8_t scale)
{
	int64_t power = 1;
	for (uint8_t i = 0; i < scale && i < 18; i++)
		power *= 10;
	return power;
}

int64_t push_whole_units(int64_t quantity, uint8_t scale)
{
	if (quantity <= 0)
		return 0;
	return quantity / power_of_ten(scale);
}

int64_t push_base_units(int64_t whole, uint8_t scale)
{
	int64_t power = power_of_ten(scale);
	if (whole > INT64_MAX / power)
		return INT64_MAX;
	if (whole < INT64_MIN / power)
		return INT64_MIN;
	return whole * power;
}

void push_result_set(struct push_result *result, const struct push_item *item,
                     enum push_verdict verdict, enum push_exception exception, const char *detail)
{
	memset(result, 0, sizeof(*result));
	result->item = item->item;
	result->version = item->version;
	result->verdict = verdict;
	result->exception = exception;
	snprintf(result->detail, sizeof(result->detail), "%s", detail != NULL ? detail : "");
}

void push_results_set(struct push_result *results, const struct push_item *items,
                      const uint32_t *sent, uint32_t count, enum push_verdict verdict,
                      enum push_exception exception, const char *detail)
{
	for (uint32_t i = 0; i < count; i++)
		push_result_set(&results[sent[i]], &items[sent[i]], verdict, exception, detail);
}
