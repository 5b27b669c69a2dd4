/*
 * keyfile.c — "key = value" configuration files (keyfile.h).
 */
#include "keyfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *text)
{
	while (isspace((unsigned char)*text))
		text++;
	size_t length = strlen(text);
	while (length > 0 && isspace((unsigned char)text[length - 1]))
		text[--length] = '\0';
	return text;
}

int keyfile_read(const char *path, keyfile_key key, void *context, char *error, size_t error_size)
{
	FILE *file = fopen(path, "r");
	if (file == NULL) {
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[1024]; /* an LWA refresh token is several hundred bytes */
	int number = 0;
	int ret = 0;
	while (ret == 0 && fgets(line, sizeof(line), file) != NULL) {
		number++;
		if (strchr(line, '\n') == NULL && !feof(file)) {
			snprintf(error, error_size, "%s:%d: line longer than %zu bytes", path,
			         number, sizeof(line) - 1);
			ret = -1;
			break;
		}
		char *comment = strchr(line, '#');
		if (comment != NULL)
			*comment = '\0';
		char *text = trim(line);
		if (*text == '\0')
			continue;
		char *equals = strchr(text, '=');
		if (equals == NULL) {
			snprintf(error, error_size, "%s:%d: expected key = value", path, number);
			ret = -1;
			break;
		}
		*equals = '\0';
		char *name = trim(text);
		enum keyfile_verdict verdict = key(context, name, trim(equals + 1));
		if (verdict != KEYFILE_OK) {
			snprintf(error, error_size, "%s:%d: %s %s", path, number,
			         verdict == KEYFILE_UNKNOWN_KEY ? "unknown key" : "bad value for",
			         name);
			ret = -1;
		}
	}
	fclose(file);
	return ret;
}

enum keyfile_verdict keyfile_text(char *field, size_t size, const char *value)
{
	size_t length = strlen(value);
	if (length == 0 || length >= size)
		return KEYFILE_BAD_VALUE;
	memcpy(field, value, length + 1);
	return KEYFILE_OK;
}

enum keyfile_verdict keyfile_u32(uint32_t *field, const char *value, uint32_t min, uint32_t max)
{
	char *end = NULL;
	errno = 0;
	unsigned long long number = strtoull(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || number < min ||
	    number > max)
		return KEYFILE_BAD_VALUE;
	*field = (uint32_t)number;
	return KEYFILE_OK;
}
