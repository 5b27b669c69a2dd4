/*
 * skuldctl_csv.h — an RFC 4180 CSV reader for skuldctl import.
 *
 * Owns: the bytes of one file, read whole, and the decoding of one record at
 * a time into a buffer it owns. Fields: comma-separated; a field may be
 * quoted with '"', inside which commas, CR, LF and doubled quotes ("") are
 * data. Records end with CRLF or LF (a lone CR too). A UTF-8 byte-order
 * mark at the start is skipped; empty lines are skipped.
 *
 * Malformed input (a quote inside an unquoted field, text after a closing
 * quote, an unterminated quoted field, a NUL byte, more than CSV_FIELDS_MAX
 * fields) is reported for the record with its first line number, and
 * reading goes on at the next line, so every defect of a file is found in
 * one pass.
 */
#ifndef SKULD_CLIENT_SKULDCTL_CSV_H
#define SKULD_CLIENT_SKULDCTL_CSV_H

#include <stddef.h>
#include <stdint.h>

#define CSV_FIELDS_MAX 64

struct csv_reader {
	char *data;      /* the whole file, owned */
	size_t size;     /* bytes in data */
	size_t position; /* next byte to read */
	uint32_t line;   /* line number of data[position], from 1 */
	char *buffer;    /* decoded fields of the current record, owned */
	size_t buffer_size;
};

struct csv_record {
	uint32_t line;                /* line the record starts on */
	uint32_t count;               /* fields */
	char *fields[CSV_FIELDS_MAX]; /* NUL-terminated, in reader->buffer */
	char error[128];              /* when csv_next returned -1 */
};

/* Reads the file at path. Returns 0 or -errno. */
int csv_open(struct csv_reader *reader, const char *path);
/* Reads text (copied). Returns 0 or -ENOMEM. */
int csv_open_text(struct csv_reader *reader, const char *text, size_t size);
void csv_close(struct csv_reader *reader);

/* The next record: 1 (record filled), 0 (end of file), -1 (malformed: the
 * record's line and error are filled; the reader has moved past it). The
 * fields stay valid until the next call. */
int csv_next(struct csv_reader *reader, struct csv_record *record);

#endif /* SKULD_CLIENT_SKULDCTL_CSV_H */
