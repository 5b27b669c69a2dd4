/*
 * text.h — how skuld-replay writes and reads times, quantities, ids and
 * strings (docs/REPLAY.md, "Output").
 *
 * Owns: RFC 3339 UTC times both ways, exact decimal quantities in an item's
 * scale, 128-bit ids as 32 hex digits, JSON and CSV string escaping, the
 * names of event and result flags, and the "SEQ or TIME" points of --at,
 * --from and --to.
 *
 * Invariants: nothing here trusts a code field to be NUL-terminated (codes
 * from the log are 32 bytes, NUL-padded, and a 32-character code has no
 * NUL); quantities never pass through floating point.
 */
#ifndef SKULD_REPLAY_TEXT_H
#define SKULD_REPLAY_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "protocol.h"

#define TEXT_TIME_SIZE     40u /* "2026-11-26T14:02:00.123456789Z" and NUL, with room */
#define TEXT_QUANTITY_SIZE 32u
#define TEXT_U128_SIZE     33u
#define TEXT_CODE_SIZE     (SKULD_CODE_SIZE + 1)
#define TEXT_FLAGS_SIZE    96u

/* ns since the Unix epoch as RFC 3339 UTC: seconds always, the fraction
 * only when non-zero, with 3, 6 or 9 digits (the fewest that are exact). */
void text_time(uint64_t ns, char out[TEXT_TIME_SIZE]);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (a 'z', or a space instead of
 * the 'T', are accepted; no other offsets) into ns since the epoch.
 * Returns 0 or -1 (not a time, out of range, before 1970). */
int text_time_parse(const char *text, uint64_t *ns);

/* units of an item with scale decimals, as "-12.340" (exactly scale
 * decimals; a scale above 9 is printed as 9). */
void text_quantity(int64_t units, uint8_t scale, char out[TEXT_QUANTITY_SIZE]);

/* A 128-bit id as 32 lower-case hex digits, hi then lo (as the server's
 * messages write client ids). */
void text_u128(skuld_u128 value, char out[TEXT_U128_SIZE]);

/* A 32-byte NUL-padded code field as a C string (at most 32 characters). */
void text_code(const char code[SKULD_CODE_SIZE], char out[TEXT_CODE_SIZE]);

/* text as a JSON string, quotes included; bytes outside printable ASCII
 * are written as \u00XX. */
void text_json_string(FILE *out, const char *text);

/* text as one CSV field (RFC 4180): quoted when it holds a comma, quote,
 * CR or LF, or starts or ends with a space. */
void text_csv_field(FILE *out, const char *text);

/* Names of set event flags ("LINKED|BUNDLE") / result flags ("REPLAYED|
 * DISCREPANCY"); "" when none. Unknown bits are written as 0xNN. */
void text_event_flags(uint32_t flags, char out[TEXT_FLAGS_SIZE]);
void text_result_flags(uint32_t flags, char out[TEXT_FLAGS_SIZE]);

/* --at / --from / --to: an event sequence number (digits only) or a time
 * (text_time_parse). */
enum text_point_kind {
	TEXT_POINT_NONE = 0,
	TEXT_POINT_SEQUENCE = 1,
	TEXT_POINT_TIME = 2,
};

struct text_point {
	enum text_point_kind kind;
	uint64_t value; /* event sequence, or ns since the epoch */
};

/* Returns 0 or -1. */
int text_point_parse(const char *text, struct text_point *out);

#endif /* SKULD_REPLAY_TEXT_H */
