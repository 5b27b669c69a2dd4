/*
 * skuldctl_csv.c — RFC 4180 reader (skuldctl_csv.h).
 */
#include "skuldctl_csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int reader_prepare(struct csv_reader *reader)
{
	/* A record decodes to at most its own bytes plus one NUL per field. */
	reader->buffer_size = reader->size + CSV_FIELDS_MAX + 1;
	reader->buffer = malloc(reader->buffer_size);
	if (reader->buffer == NULL)
		return -ENOMEM;
	reader->line = 1;
	if (reader->size >= 3 && memcmp(reader->data, "\xef\xbb\xbf", 3) == 0)
		reader->position = 3;
	return 0;
}

int csv_open(struct csv_reader *reader, const char *path)
{
	memset(reader, 0, sizeof(*reader));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat status;
	int rc = 0;
	if (fstat(fd, &status) != 0) {
		rc = -errno;
		goto done;
	}
	reader->size = (size_t)status.st_size;
	reader->data = malloc(reader->size + 1);
	if (reader->data == NULL) {
		rc = -ENOMEM;
		goto done;
	}
	for (size_t have = 0; have < reader->size;) {
		ssize_t got = read(fd, reader->data + have, reader->size - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : -EIO;
			goto done;
		}
		have += (size_t)got;
	}
	reader->data[reader->size] = '\0';
	rc = reader_prepare(reader);
done:
	close(fd);
	if (rc != 0)
		csv_close(reader);
	return rc;
}

int csv_open_text(struct csv_reader *reader, const char *text, size_t size)
{
	memset(reader, 0, sizeof(*reader));
	reader->data = malloc(size + 1);
	if (reader->data == NULL)
		return -ENOMEM;
	memcpy(reader->data, text, size);
	reader->data[size] = '\0';
	reader->size = size;
	int rc = reader_prepare(reader);
	if (rc != 0)
		csv_close(reader);
	return rc;
}

void csv_close(struct csv_reader *reader)
{
	free(reader->data);
	free(reader->buffer);
	memset(reader, 0, sizeof(*reader));
}

/* Consumes one line end (CRLF, LF or CR) at the position, if any. */
static int line_end(struct csv_reader *reader)
{
	const char *data = reader->data;
	if (reader->position < reader->size && data[reader->position] == '\r') {
		reader->position++;
		if (reader->position < reader->size && data[reader->position] == '\n')
			reader->position++;
		reader->line++;
		return 1;
	}
	if (reader->position < reader->size && data[reader->position] == '\n') {
		reader->position++;
		reader->line++;
		return 1;
	}
	return 0;
}

/* After a malformed record: skip to the start of the next line. */
static int malformed(struct csv_reader *reader, struct csv_record *record, const char *text)
{
	snprintf(record->error, sizeof(record->error), "%s", text);
	while (reader->position < reader->size && !line_end(reader))
		reader->position++;
	return -1;
}

int csv_next(struct csv_reader *reader, struct csv_record *record)
{
	const char *data = reader->data;
	record->count = 0;
	record->error[0] = '\0';
	/* Empty lines are not records. */
	while (reader->position < reader->size && line_end(reader))
		;
	if (reader->position >= reader->size)
		return 0;
	record->line = reader->line;
	size_t out = 0;
	for (;;) { /* one field per turn; bounded by CSV_FIELDS_MAX */
		if (record->count == CSV_FIELDS_MAX)
			return malformed(reader, record, "more than 64 fields");
		record->fields[record->count++] = &reader->buffer[out];
		if (reader->position < reader->size && data[reader->position] == '"') {
			uint32_t opened = reader->line;
			reader->position++;
			for (;;) {
				if (reader->position >= reader->size) {
					snprintf(record->error, sizeof(record->error),
					         "quoted field opened on line %u never closes",
					         opened);
					return -1;
				}
				char c = data[reader->position];
				if (c == '"') {
					if (reader->position + 1 < reader->size &&
					    data[reader->position + 1] == '"') {
						reader->buffer[out++] = '"';
						reader->position += 2;
						continue;
					}
					reader->position++;
					break;
				}
				if (c == '\0')
					return malformed(reader, record, "NUL byte in a field");
				if (c == '\n')
					reader->line++;
				else if (c == '\r' && (reader->position + 1 >= reader->size ||
				                       data[reader->position + 1] != '\n'))
					reader->line++;
				reader->buffer[out++] = c;
				reader->position++;
			}
			if (reader->position < reader->size && data[reader->position] != ',' &&
			    data[reader->position] != '\n' && data[reader->position] != '\r')
				return malformed(reader, record, "text after a closing quote");
		} else {
			while (reader->position < reader->size) {
				char c = data[reader->position];
				if (c == ',' || c == '\n' || c == '\r')
					break;
				if (c == '"')
					return malformed(
					        reader, record,
					        "quote inside an unquoted field (quote the whole "
					        "field and double the quote)");
				if (c == '\0')
					return malformed(reader, record, "NUL byte in a field");
				reader->buffer[out++] = c;
				reader->position++;
			}
		}
		reader->buffer[out++] = '\0';
		if (reader->position < reader->size && data[reader->position] == ',') {
			reader->position++;
			continue;
		}
		line_end(reader);
		return 1;
	}
}
