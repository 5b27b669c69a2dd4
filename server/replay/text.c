/*
 * text.c — times, quantities, ids and escaping for skuld-replay (text.h).
 *
 * Calendar arithmetic is Howard Hinnant's days_from_civil / civil_from_days
 * on the proleptic Gregorian calendar, in integers: no time zone database
 * and no locale are involved, so output is the same on every machine.
 */
#include "text.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define NS_PER_S   1000000000ull
#define S_PER_DAY  86400ull
#define YEAR_FIRST 1970
#define YEAR_LAST  2554 /* u64 ns since the epoch end in July 2554 */

/* Days since 1970-01-01 of a civil date (month 1..12, day 1..31). */
static int64_t days_from_civil(int64_t year, unsigned month, unsigned day)
{
	year -= month <= 2;
	int64_t era = (year >= 0 ? year : year - 399) / 400;
	unsigned year_of_era = (unsigned)(year - era * 400);
	unsigned day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	return era * 146097 + (int64_t)day_of_era - 719468;
}

static void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
	days += 719468;
	int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	unsigned day_of_era = (unsigned)(days - era * 146097);
	unsigned year_of_era =
	        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
	unsigned day_of_year =
	        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	unsigned month_index = (5 * day_of_year + 2) / 153;
	*day = day_of_year - (153 * month_index + 2) / 5 + 1;
	*month = month_index < 10 ? month_index + 3 : month_index - 9;
	*year = (int64_t)year_of_era + era * 400 + (*month <= 2);
}

void text_time(uint64_t ns, char out[TEXT_TIME_SIZE])
{
	uint64_t seconds = ns / NS_PER_S;
	uint64_t fraction = ns % NS_PER_S;
	int64_t year;
	unsigned month, day;
	civil_from_days((int64_t)(seconds / S_PER_DAY), &year, &month, &day);
	uint64_t in_day = seconds % S_PER_DAY;
	int used = snprintf(out, TEXT_TIME_SIZE, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u", year,
	                    month, day, (unsigned)(in_day / 3600), (unsigned)(in_day / 60 % 60),
	                    (unsigned)(in_day % 60));
	if (fraction == 0)
		snprintf(out + used, TEXT_TIME_SIZE - (size_t)used, "Z");
	else if (fraction % 1000000 == 0)
		snprintf(out + used, TEXT_TIME_SIZE - (size_t)used, ".%03" PRIu64 "Z",
		         fraction / 1000000);
	else if (fraction % 1000 == 0)
		snprintf(out + used, TEXT_TIME_SIZE - (size_t)used, ".%06" PRIu64 "Z",
		         fraction / 1000);
	else
		snprintf(out + used, TEXT_TIME_SIZE - (size_t)used, ".%09" PRIu64 "Z", fraction);
}

/* Reads exactly count digits at *at into *value. Returns 0 or -1. */
static int digits_read(const char **at, int count, unsigned *value)
{
	unsigned result = 0;
	for (int i = 0; i < count; i++) {
		char c = (*at)[i];
		if (c < '0' || c > '9')
			return -1;
		result = result * 10 + (unsigned)(c - '0');
	}
	*at += count;
	*value = result;
	return 0;
}

static unsigned month_days(int64_t year, unsigned month)
{
	static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

int text_time_parse(const char *text, uint64_t *ns)
{
	const char *at = text;
	unsigned year, month, day, hour, minute, second;
	if (digits_read(&at, 4, &year) != 0 || *at++ != '-' || digits_read(&at, 2, &month) != 0 ||
	    *at++ != '-' || digits_read(&at, 2, &day) != 0)
		return -1;
	if (*at != 'T' && *at != 't' && *at != ' ')
		return -1;
	at++;
	if (digits_read(&at, 2, &hour) != 0 || *at++ != ':' || digits_read(&at, 2, &minute) != 0 ||
	    *at++ != ':' || digits_read(&at, 2, &second) != 0)
		return -1;
	uint64_t fraction = 0;
	if (*at == '.') {
		at++;
		int digits = 0;
		while (*at >= '0' && *at <= '9') {
			if (digits == 9)
				return -1; /* finer than a nanosecond */
			fraction = fraction * 10 + (uint64_t)(*at - '0');
			digits++, at++;
		}
		if (digits == 0)
			return -1;
		for (; digits < 9; digits++)
			fraction *= 10;
	}
	if ((*at != 'Z' && *at != 'z') || at[1] != '\0')
		return -1;
	if (year < YEAR_FIRST || year > YEAR_LAST || month < 1 || month > 12 || day < 1 ||
	    day > month_days(year, month) || hour > 23 || minute > 59 || second > 59)
		return -1;
	int64_t days = days_from_civil(year, month, day);
	uint64_t seconds = (uint64_t)days * S_PER_DAY + hour * 3600u + minute * 60u + second;
	if (seconds > (UINT64_MAX - fraction) / NS_PER_S)
		return -1;
	*ns = seconds * NS_PER_S + fraction;
	return 0;
}

void text_quantity(int64_t units, uint8_t scale, char out[TEXT_QUANTITY_SIZE])
{
	uint64_t magnitude = units < 0 ? 0 - (uint64_t)units : (uint64_t)units;
	if (scale > SKULD_SCALE_MAX)
		scale = SKULD_SCALE_MAX;
	if (scale == 0) {
		snprintf(out, TEXT_QUANTITY_SIZE, "%s%" PRIu64, units < 0 ? "-" : "", magnitude);
		return;
	}
	uint64_t unit = 1;
	for (uint8_t i = 0; i < scale; i++)
		unit *= 10;
	char fraction[SKULD_SCALE_MAX + 1];
	uint64_t rest = magnitude % unit;
	for (int i = (int)scale - 1; i >= 0; i--, rest /= 10)
		fraction[i] = (char)('0' + rest % 10);
	fraction[scale] = '\0';
	snprintf(out, TEXT_QUANTITY_SIZE, "%s%" PRIu64 ".%s", units < 0 ? "-" : "",
	         magnitude / unit, fraction);
}

void text_u128(skuld_u128 value, char out[TEXT_U128_SIZE])
{
	snprintf(out, TEXT_U128_SIZE, "%016" PRIx64 "%016" PRIx64, value.hi, value.lo);
}

void text_code(const char code[SKULD_CODE_SIZE], char out[TEXT_CODE_SIZE])
{
	size_t length = strnlen(code, SKULD_CODE_SIZE);
	memcpy(out, code, length);
	out[length] = '\0';
}

void text_json_string(FILE *out, const char *text)
{
	fputc('"', out);
	for (const unsigned char *at = (const unsigned char *)text; *at != '\0'; at++) {
		if (*at == '"' || *at == '\\')
			fprintf(out, "\\%c", *at);
		else if (*at < 0x20 || *at > 0x7e)
			fprintf(out, "\\u%04x", *at);
		else
			fputc(*at, out);
	}
	fputc('"', out);
}

void text_csv_field(FILE *out, const char *text)
{
	size_t length = strlen(text);
	bool quote = length > 0 && (text[0] == ' ' || text[length - 1] == ' ');
	for (size_t i = 0; i < length && !quote; i++)
		quote = text[i] == ',' || text[i] == '"' || text[i] == '\r' || text[i] == '\n';
	if (!quote) {
		fputs(text, out);
		return;
	}
	fputc('"', out);
	for (size_t i = 0; i < length; i++) {
		if (text[i] == '"')
			fputc('"', out);
		fputc(text[i], out);
	}
	fputc('"', out);
}

static void flags_text(uint32_t flags, const char *const *names, uint32_t known,
                       char out[TEXT_FLAGS_SIZE])
{
	size_t used = 0;
	out[0] = '\0';
	for (uint32_t bit = 0; bit < 16; bit++) {
		if (!(flags & (1u << bit)))
			continue;
		const char *name = bit < known ? names[bit] : NULL;
		char unknown[8];
		if (name == NULL) {
			snprintf(unknown, sizeof(unknown), "0x%x", 1u << bit);
			name = unknown;
		}
		int wrote =
		        snprintf(out + used, TEXT_FLAGS_SIZE - used, "%s%s", used ? "|" : "", name);
		if (wrote < 0 || (size_t)wrote >= TEXT_FLAGS_SIZE - used)
			return;
		used += (size_t)wrote;
	}
}

void text_event_flags(uint32_t flags, char out[TEXT_FLAGS_SIZE])
{
	static const char *const names[] = {"LINKED",       "BUNDLE",        "RETIRE",
	                                    "AFTER_EXPIRY", "FROM_INCOMING", "EXPECTED"};
	flags_text(flags, names, sizeof(names) / sizeof(names[0]), out);
}

void text_result_flags(uint32_t flags, char out[TEXT_FLAGS_SIZE])
{
	static const char *const names[] = {"REPLAYED", "DISCREPANCY", "LATE", "PRE_COUNT",
	                                    "EXPANDED"};
	flags_text(flags, names, sizeof(names) / sizeof(names[0]), out);
}

int text_point_parse(const char *text, struct text_point *out)
{
	if (text == NULL || text[0] == '\0')
		return -1;
	size_t digits = strspn(text, "0123456789");
	if (text[digits] == '\0') {
		if (digits > 20)
			return -1;
		uint64_t value = 0;
		for (size_t i = 0; i < digits; i++) {
			uint64_t digit = (uint64_t)(text[i] - '0');
			if (value > (UINT64_MAX - digit) / 10)
				return -1;
			value = value * 10 + digit;
		}
		*out = (struct text_point){.kind = TEXT_POINT_SEQUENCE, .value = value};
		return 0;
	}
	uint64_t ns;
	if (text_time_parse(text, &ns) != 0)
		return -1;
	*out = (struct text_point){.kind = TEXT_POINT_TIME, .value = ns};
	return 0;
}
