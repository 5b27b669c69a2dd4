/*
 * keyfile.h — the "key = value" configuration files of skuld-push and
 * skuld-gateway.
 *
 * Owns: the line syntax (`#` starts a comment, blank lines are skipped,
 * spaces around keys and values are trimmed, lines up to 1023 bytes) and
 * the error text that names the file and line. What a key means is the
 * caller's: each line goes to its callback.
 */
#ifndef SKULD_CHANNELS_KEYFILE_H
#define SKULD_CHANNELS_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

enum keyfile_verdict {
	KEYFILE_OK = 0,
	KEYFILE_BAD_VALUE = -1,
	KEYFILE_UNKNOWN_KEY = -2,
};

typedef enum keyfile_verdict (*keyfile_key)(void *context, const char *key, const char *value);

/* Reads path line by line into key(). Returns 0, or -1 with "PATH:LINE:
 * ..." (or "PATH: ..." when it cannot be opened) in error. */
int keyfile_read(const char *path, keyfile_key key, void *context, char *error, size_t error_size);

/* Helpers for callbacks: copy value (1..size-1 bytes) into field; parse a
 * decimal in min..max. Return KEYFILE_OK or KEYFILE_BAD_VALUE. */
enum keyfile_verdict keyfile_text(char *field, size_t size, const char *value);
enum keyfile_verdict keyfile_u32(uint32_t *field, const char *value, uint32_t min, uint32_t max);

#endif /* SKULD_CHANNELS_KEYFILE_H */
