/*
 * skuldctl_import.c — `skuldctl import items|locations|bundles|counts FILE.csv`
 * (docs/SKULDCTL.md has the columns and the checks).
 *
 * Three phases, in this order, and the next starts only when the previous
 * found nothing wrong:
 *   1. read: the whole file through the RFC 4180 reader into a table;
 *      malformed rows are defects.
 *   2. check: every defect a retailer must fix (duplicates, case or space
 *      look-alikes, shared barcodes, incomplete variant families, unknown
 *      components, bad quantities), each with its line numbers, then
 *      LOOKUPs to find what the ledger already has. Any defect: exit 1 with
 *      nothing sent.
 *   3. apply (unless --dry-run): one linked chain per row (or bundle), so a
 *      row is all-or-nothing; chains packed into requests of at most the
 *      server's events_max. Keys derive from the content (and the allocated
 *      id), so the file sent again changes nothing: present rows are found
 *      by LOOKUP and skipped, and a chain sent twice is REPLAYED.
 *
 * Invariants: every loop is bounded by the rows of the file or a stated
 * retry count; nothing is sent before phase 2 has passed.
 */
#include "skuldctl.h"
#include "skuldctl_csv.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IMPORT_PROBLEMS_SHOWN 200     /* defects printed; all are counted */
#define IMPORT_CHAIN_MAX      72      /* events of one row or bundle */
#define IMPORT_RETRIES        8       /* ids taken by a racing client, per row */
#define IMPORT_COMBINATIONS   100000u /* variant combinations checked per family */
#define IMPORT_BUNDLE_PARTS   64

/* ---- The table read from the file ------------------------------------------ */

struct table {
	uint32_t columns;
	char *names[CSV_FIELDS_MAX]; /* header, lower case, trimmed */
	uint32_t rows;
	uint32_t rows_capacity;
	uint32_t *lines; /* per row: line in the file */
	size_t *offsets; /* rows x columns: offset of the field in text */
	char *text;
	size_t text_used;
	size_t text_capacity;
};

static const char *cell(const struct table *table, uint32_t row, uint32_t column)
{
	return table->text + table->offsets[(size_t)row * table->columns + column];
}

static int column_find(const struct table *table, const char *name)
{
	for (uint32_t i = 0; i < table->columns; i++) {
		if (strcmp(table->names[i], name) == 0)
			return (int)i;
	}
	return -1;
}

static void table_free(struct table *table)
{
	for (uint32_t i = 0; i < table->columns; i++)
		free(table->names[i]);
	free(table->lines);
	free(table->offsets);
	free(table->text);
	memset(table, 0, sizeof(*table));
}

static int text_append(struct table *table, const char *field, size_t *offset)
{
	size_t length = strlen(field) + 1;
	if (table->text_used + length > table->text_capacity) {
		size_t capacity = table->text_capacity * 2 + length + 4096;
		char *text = realloc(table->text, capacity);
		if (text == NULL)
			return -ENOMEM;
		table->text = text;
		table->text_capacity = capacity;
	}
	memcpy(table->text + table->text_used, field, length);
	*offset = table->text_used;
	table->text_used += length;
	return 0;
}

static int row_append(struct table *table, const struct csv_record *record)
{
	if (table->rows == table->rows_capacity) {
		uint32_t capacity = table->rows_capacity * 2 + 1024;
		uint32_t *lines = realloc(table->lines, capacity * sizeof(*lines));
		if (lines == NULL)
			return -ENOMEM;
		table->lines = lines;
		size_t *offsets = realloc(table->offsets,
		                          (size_t)capacity * table->columns * sizeof(*offsets));
		if (offsets == NULL)
			return -ENOMEM;
		table->offsets = offsets;
		table->rows_capacity = capacity;
	}
	uint32_t row = table->rows;
	for (uint32_t i = 0; i < table->columns; i++) {
		if (text_append(table, record->fields[i],
		                &table->offsets[(size_t)row * table->columns + i]) != 0)
			return -ENOMEM;
	}
	table->lines[row] = record->line;
	table->rows++;
	return 0;
}

/* ---- Defects ----------------------------------------------------------------------- */

struct problem {
	uint32_t line;  /* 0: the whole file */
	uint32_t order; /* discovery order, for a stable sort */
	char *text;
};

struct report {
	uint32_t problems;       /* found, all of them */
	uint32_t kept;           /* stored, at most IMPORT_PROBLEMS_SHOWN */
	struct problem *entries; /* IMPORT_PROBLEMS_SHOWN entries, or NULL (out of memory) */
};

static void problem(struct report *report, uint32_t line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Notes a defect; they are printed sorted by line at the end. */
static void problem(struct report *report, uint32_t line, const char *fmt, ...)
{
	char text[512];
	va_list list;
	va_start(list, fmt);
	vsnprintf(text, sizeof(text), fmt, list);
	va_end(list);
	report->problems++;
	if (report->entries == NULL)
		report->entries = calloc(IMPORT_PROBLEMS_SHOWN, sizeof(*report->entries));
	if (report->entries == NULL || report->kept == IMPORT_PROBLEMS_SHOWN)
		return;
	struct problem *entry = &report->entries[report->kept];
	entry->text = strdup(text);
	if (entry->text == NULL)
		return;
	entry->line = line;
	entry->order = report->kept++;
}

static int problem_compare(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Prints the kept defects sorted by line: text on stderr, and with --json
 * a "problems" array member on stdout. */
static void report_print(struct report *report, int json)
{
	if (report->kept > 0)
		qsort(report->entries, report->kept, sizeof(*report->entries), problem_compare);
	for (uint32_t i = 0; i < report->kept; i++) {
		const struct problem *entry = &report->entries[i];
		if (entry->line != 0)
			fprintf(stderr, "line %u: %s\n", entry->line, entry->text);
		else
			fprintf(stderr, "%s\n", entry->text);
	}
	if (report->problems > report->kept)
		fprintf(stderr, "... and %u more\n", report->problems - report->kept);
	if (!json)
		return;
	printf(",\"problems\":[");
	for (uint32_t i = 0; i < report->kept; i++) {
		printf("%s{\"line\":%u,\"message\":", i ? "," : "", report->entries[i].line);
		ctl_json_string(stdout, report->entries[i].text);
		printf("}");
	}
	printf("]");
}

static void report_free(struct report *report)
{
	for (uint32_t i = 0; i < report->kept; i++)
		free(report->entries[i].text);
	free(report->entries);
	memset(report, 0, sizeof(*report));
}

/* ---- Import state ---------------------------------------------------------------- */

enum import_kind {
	IMPORT_ITEMS = 0,
	IMPORT_LOCATIONS = 1,
	IMPORT_BUNDLES = 2,
	IMPORT_COUNTS = 3,
};

struct import {
	struct ctl *ctl;
	enum import_kind kind;
	const char *path;
	int dry_run;
	char session[40]; /* counts: what makes this file's keys unique */
	struct table table;
	struct report report;
	/* Per unit (a row; for bundles the first row of each bundle). */
	uint32_t units;
	uint32_t *unit_row;  /* first row of the unit */
	uint32_t *unit_rows; /* rows in the unit (bundles), else 1 */
	uint32_t *id;        /* resolved or allocated id; 0 = new */
	uint8_t *present;    /* found in the ledger before applying */
	uint8_t *done;       /* applied by this run */
	uint8_t *tries;      /* ids taken by others, per unit */
	/* Columns. */
	int col_code, col_barcode, col_scale, col_family, col_name;
	int col_bundle, col_component, col_qty, col_sku, col_location;
	uint32_t attribute_columns[CSV_FIELDS_MAX];
	uint32_t attribute_count;
	/* counts / bundles: resolved per row. */
	uint32_t *row_item, *row_location;
	int64_t *row_units;
	uint8_t *row_scale;
	/* Totals. */
	uint32_t applied, already, failed;
};

static const char *const kind_names[] = {"items", "locations", "bundles", "counts"};

/* Lower-case, space-free copy: what "differs only in case or spaces" compares. */
static void normalize(const char *text, char *out, size_t size)
{
	size_t n = 0;
	for (const char *at = text; *at != '\0' && n + 1 < size; at++) {
		if (isspace((unsigned char)*at))
			continue;
		out[n++] = (char)tolower((unsigned char)*at);
	}
	out[n] = '\0';
}

/* ---- Phase 1: read ------------------------------------------------------------------ */

static int import_read(struct import *import)
{
	struct csv_reader reader;
	static struct csv_record record;
	int rc = csv_open(&reader, import->path);
	if (rc != 0) {
		fprintf(stderr, "skuldctl: cannot read %s: %s\n", import->path, strerror(-rc));
		return CTL_EXIT_USAGE;
	}
	/* The session of a counts file defaults to its content's checksum. */
	if (import->session[0] == '\0')
		snprintf(import->session, sizeof(import->session), "%016" PRIx64,
		         skuld_checksum(reader.data, reader.size));
	int got = csv_next(&reader, &record);
	if (got <= 0) {
		fprintf(stderr, "skuldctl: %s: %s\n", import->path,
		        got == 0 ? "empty file: a header row is required" : record.error);
		csv_close(&reader);
		return CTL_EXIT_REFUSED;
	}
	struct table *table = &import->table;
	table->columns = record.count;
	for (uint32_t i = 0; i < record.count; i++) {
		char name[SKULD_CODE_SIZE * 2];
		normalize(record.fields[i], name, sizeof(name));
		table->names[i] = strdup(name);
		if (table->names[i] == NULL) {
			csv_close(&reader);
			return CTL_EXIT_ERROR;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (strcmp(table->names[j], name) == 0)
				problem(&import->report, record.line, "column '%s' appears twice",
				        name);
		}
	}
	for (uint64_t guard = 0; guard <= reader.size; guard++) {
		got = csv_next(&reader, &record);
		if (got == 0)
			break;
		if (got < 0) {
			problem(&import->report, record.line, "malformed row: %s", record.error);
			continue;
		}
		if (record.count != table->columns) {
			problem(&import->report, record.line,
			        "malformed row: %u fields, the header has %u", record.count,
			        table->columns);
			continue;
		}
		if (row_append(table, &record) != 0) {
			csv_close(&reader);
			fprintf(stderr, "skuldctl: out of memory\n");
			return CTL_EXIT_ERROR;
		}
	}
	csv_close(&reader);
	return CTL_EXIT_OK;
}

static int require_column(struct import *import, const char *name, int *column)
{
	*column = column_find(&import->table, name);
	if (*column < 0) {
		problem(&import->report, 1, "the header has no '%s' column", name);
		return -1;
	}
	return 0;
}

/* A code cell: 1..32 printable characters, no edge spaces. */
static int check_code(struct import *import, uint32_t row, int column, const char *what,
                      int optional)
{
	const char *text = cell(&import->table, row, (uint32_t)column);
	if (optional && text[0] == '\0')
		return 0;
	if (!ctl_code_valid(text)) {
		problem(&import->report, import->table.lines[row],
		        "malformed row: %s '%s' must be 1 to 32 printable ASCII characters without "
		        "leading or trailing spaces",
		        what, text);
		return -1;
	}
	return 0;
}

/* ---- Phase 2: checks on the file ----------------------------------------------------- */

struct sort_entry {
	const char *key;
	uint32_t row;
};

static int sort_entry_compare(const void *a, const void *b)
{
	const struct sort_entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c != 0)
		return c;
	return x->row < y->row ? -1 : x->row > y->row;
}

/* Reports rows whose column value repeats (exact) and, when look_alike,
 * values that differ only in case or spaces. rows_of_unit: when not NULL,
 * only these rows are compared (the first row of each bundle). */
static int check_unique(struct import *import, int column, const char *what, int look_alike,
                        const uint32_t *rows, uint32_t row_count)
{
	struct table *table = &import->table;
	struct sort_entry *entries = calloc(row_count + 1, sizeof(*entries));
	char *normal = calloc((size_t)row_count + 1, SKULD_CODE_SIZE * 2);
	if (entries == NULL || normal == NULL) {
		free(entries);
		free(normal);
		return -1;
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < row_count; i++) {
		uint32_t row = rows != NULL ? rows[i] : i;
		const char *value = cell(table, row, (uint32_t)column);
		if (value[0] == '\0')
			continue;
		entries[n].key = value;
		entries[n++].row = row;
	}
	qsort(entries, n, sizeof(*entries), sort_entry_compare);
	for (uint32_t i = 1; i < n; i++) {
		if (strcmp(entries[i].key, entries[i - 1].key) != 0)
			continue;
		uint32_t first = i - 1;
		while (first > 0 && strcmp(entries[first - 1].key, entries[i].key) == 0)
			first--;
		problem(&import->report, table->lines[entries[i].row],
		        "duplicate %s '%s' (first on line %u)", what, entries[i].key,
		        table->lines[entries[first].row]);
	}
	if (look_alike) {
		for (uint32_t i = 0; i < n; i++) {
			char *slot = normal + (size_t)i * SKULD_CODE_SIZE * 2;
			normalize(entries[i].key, slot, SKULD_CODE_SIZE * 2);
			entries[i].key = slot; /* the row keeps the original for messages */
		}
		qsort(entries, n, sizeof(*entries), sort_entry_compare);
		for (uint32_t i = 1; i < n; i++) {
			if (strcmp(entries[i].key, entries[i - 1].key) != 0)
				continue;
			uint32_t first = i - 1;
			while (first > 0 && strcmp(entries[first - 1].key, entries[i].key) == 0)
				first--;
			const char *a = cell(table, entries[first].row, (uint32_t)column);
			const char *b = cell(table, entries[i].row, (uint32_t)column);
			if (strcmp(a, b) == 0)
				continue; /* an exact duplicate, reported above */
			problem(&import->report, table->lines[entries[i].row],
			        "%s '%s' differs only in case or spaces from '%s' on line %u", what,
			        b, a, table->lines[entries[first].row]);
		}
	}
	free(entries);
	free(normal);
	return 0;
}

/* Barcodes shared by several rows (several items). */
static int check_barcodes(struct import *import)
{
	struct table *table = &import->table;
	struct sort_entry *entries = calloc(table->rows + 1, sizeof(*entries));
	if (entries == NULL)
		return -1;
	uint32_t n = 0;
	for (uint32_t row = 0; row < table->rows; row++) {
		const char *value = cell(table, row, (uint32_t)import->col_barcode);
		if (value[0] != '\0') {
			entries[n].key = value;
			entries[n++].row = row;
		}
	}
	qsort(entries, n, sizeof(*entries), sort_entry_compare);
	for (uint32_t i = 1; i < n; i++) {
		if (strcmp(entries[i].key, entries[i - 1].key) != 0)
			continue;
		uint32_t first = i - 1;
		while (first > 0 && strcmp(entries[first - 1].key, entries[i].key) == 0)
			first--;
		problem(&import->report, table->lines[entries[i].row],
		        "barcode '%s' of SKU '%s' is also the barcode of SKU '%s' on line %u",
		        entries[i].key, cell(table, entries[i].row, (uint32_t)import->col_code),
		        cell(table, entries[first].row, (uint32_t)import->col_code),
		        table->lines[entries[first].row]);
	}
	free(entries);
	return 0;
}

/* The distinct values of one axis within rows[0..n), sorted, into values. */
static uint32_t axis_values(const struct table *table, const uint32_t *rows, uint32_t n,
                            uint32_t column, const char **values)
{
	uint32_t count = 0;
	for (uint32_t i = 0; i < n; i++) {
		const char *value = cell(table, rows[i], column);
		uint32_t at = 0;
		while (at < count && strcmp(values[at], value) < 0)
			at++;
		if (at < count && strcmp(values[at], value) == 0)
			continue;
		memmove(&values[at + 1], &values[at], (count - at) * sizeof(*values));
		values[at] = value;
		count++;
	}
	return count;
}

/* One family: every combination of its axis values must be a row. */
static void check_family(struct import *import, const uint32_t *rows, uint32_t n)
{
	const struct table *table = &import->table;
	uint32_t axes = import->attribute_count;
	const char **values[CSV_FIELDS_MAX];
	uint32_t value_count[CSV_FIELDS_MAX], odometer[CSV_FIELDS_MAX];
	uint64_t combinations = 1;
	const char *family = cell(table, rows[0], (uint32_t)import->col_family);
	if (axes == 0)
		return;
	memset(values, 0, sizeof(values));
	for (uint32_t a = 0; a < axes; a++) {
		values[a] = calloc(n, sizeof(*values[a]));
		if (values[a] == NULL)
			goto done;
		value_count[a] =
		        axis_values(table, rows, n, import->attribute_columns[a], values[a]);
		combinations *= value_count[a];
		if (combinations > IMPORT_COMBINATIONS) {
			problem(&import->report, table->lines[rows[0]],
			        "family '%s' has more than %u variant combinations; split it",
			        family, IMPORT_COMBINATIONS);
			goto done;
		}
	}
	/* Each combination: find a row with exactly these values. The rows are
	 * few per family (sizes x colours), so a scan per combination is fine. */
	memset(odometer, 0, sizeof(odometer));
	for (uint64_t c = 0; c < combinations; c++) {
		int found = 0;
		for (uint32_t i = 0; i < n && !found; i++) {
			found = 1;
			for (uint32_t a = 0; a < axes && found; a++)
				found = strcmp(cell(table, rows[i], import->attribute_columns[a]),
				               values[a][odometer[a]]) == 0;
		}
		if (!found) {
			char text[256];
			size_t used = 0;
			for (uint32_t a = 0; a < axes && used < sizeof(text); a++)
				used += (size_t)snprintf(text + used, sizeof(text) - used,
				                         "%s%s=%s", a ? " " : "",
				                         table->names[import->attribute_columns[a]],
				                         values[a][odometer[a]]);
			problem(&import->report, table->lines[rows[0]],
			        "family '%s' (lines %u..%u) has no variant %s", family,
			        table->lines[rows[0]], table->lines[rows[n - 1]], text);
		}
		for (uint32_t a = 0; a < axes; a++) { /* next combination */
			if (++odometer[a] < value_count[a])
				break;
			odometer[a] = 0;
		}
	}
	/* Two SKUs with the same variant values. */
	for (uint32_t i = 1; i < n; i++) {
		for (uint32_t j = 0; j < i; j++) {
			int same = 1;
			for (uint32_t a = 0; a < axes && same; a++)
				same = strcmp(cell(table, rows[i], import->attribute_columns[a]),
				              cell(table, rows[j], import->attribute_columns[a])) ==
				       0;
			if (same) {
				problem(&import->report, table->lines[rows[i]],
				        "SKU '%s' is the same variant of family '%s' as SKU '%s' "
				        "on line "
				        "%u",
				        cell(table, rows[i], (uint32_t)import->col_code), family,
				        cell(table, rows[j], (uint32_t)import->col_code),
				        table->lines[rows[j]]);
				break;
			}
		}
	}
done:
	for (uint32_t a = 0; a < axes; a++)
		free(values[a]);
}

static int check_families(struct import *import)
{
	struct table *table = &import->table;
	struct sort_entry *entries = calloc(table->rows + 1, sizeof(*entries));
	uint32_t *rows = calloc(table->rows + 1, sizeof(*rows));
	if (entries == NULL || rows == NULL) {
		free(entries);
		free(rows);
		return -1;
	}
	uint32_t n = 0;
	for (uint32_t row = 0; row < table->rows; row++) {
		const char *family = cell(table, row, (uint32_t)import->col_family);
		if (family[0] != '\0') {
			entries[n].key = family;
			entries[n++].row = row;
		}
	}
	qsort(entries, n, sizeof(*entries), sort_entry_compare);
	for (uint32_t start = 0; start < n;) {
		uint32_t end = start + 1;
		while (end < n && strcmp(entries[end].key, entries[start].key) == 0)
			end++;
		for (uint32_t i = start; i < end; i++)
			rows[i - start] = entries[i].row;
		check_family(import, rows, end - start);
		start = end;
	}
	free(entries);
	free(rows);
	return 0;
}

/* ---- Units: what one chain defines ----------------------------------------------- */

static int units_alloc(struct import *import, uint32_t count)
{
	import->units = count;
	import->unit_row = calloc(count + 1, sizeof(uint32_t));
	import->unit_rows = calloc(count + 1, sizeof(uint32_t));
	import->id = calloc(count + 1, sizeof(uint32_t));
	import->present = calloc(count + 1, 1);
	import->done = calloc(count + 1, 1);
	import->tries = calloc(count + 1, 1);
	uint32_t rows = import->table.rows + 1;
	import->row_item = calloc(rows, sizeof(uint32_t));
	import->row_location = calloc(rows, sizeof(uint32_t));
	import->row_units = calloc(rows, sizeof(int64_t));
	import->row_scale = calloc(rows, 1);
	if (import->unit_row == NULL || import->unit_rows == NULL || import->id == NULL ||
	    import->present == NULL || import->done == NULL || import->tries == NULL ||
	    import->row_item == NULL || import->row_location == NULL || import->row_units == NULL ||
	    import->row_scale == NULL)
		return -1;
	return 0;
}

static void import_free(struct import *import)
{
	free(import->unit_row);
	free(import->unit_rows);
	free(import->id);
	free(import->present);
	free(import->done);
	free(import->tries);
	free(import->row_item);
	free(import->row_location);
	free(import->row_units);
	free(import->row_scale);
	table_free(&import->table);
	report_free(&import->report);
}

/* Items and locations: one unit per row. */
static int units_per_row(struct import *import)
{
	if (units_alloc(import, import->table.rows) != 0)
		return -1;
	for (uint32_t i = 0; i < import->table.rows; i++) {
		import->unit_row[i] = i;
		import->unit_rows[i] = 1;
	}
	return 0;
}

static int check_items(struct import *import)
{
	struct table *table = &import->table;
	if (require_column(import, "sku", &import->col_code) != 0)
		return 0;
	import->col_barcode = column_find(table, "barcode");
	import->col_scale = column_find(table, "scale");
	import->col_family = column_find(table, "family");
	import->col_name = column_find(table, "name");
	for (uint32_t c = 0; c < table->columns; c++) {
		if ((int)c == import->col_code || (int)c == import->col_barcode ||
		    (int)c == import->col_scale || (int)c == import->col_family ||
		    (int)c == import->col_name)
			continue;
		if (table->names[c][0] == '\0' || strchr(table->names[c], '=') != NULL) {
			problem(&import->report, 1, "column %u has no usable name", c + 1);
			continue;
		}
		import->attribute_columns[import->attribute_count++] = c;
	}
	for (uint32_t row = 0; row < table->rows; row++) {
		uint32_t line = table->lines[row];
		check_code(import, row, import->col_code, "SKU", 0);
		if (import->col_barcode >= 0)
			check_code(import, row, import->col_barcode, "barcode", 1);
		if (import->col_scale >= 0) {
			const char *scale = cell(table, row, (uint32_t)import->col_scale);
			uint64_t value = 0;
			if (scale[0] != '\0' && (ctl_u64_parse(scale, &value) != 0 || value > 9))
				problem(&import->report, line,
				        "malformed row: scale '%s' must be 0 to 9", scale);
			import->row_scale[row] = (uint8_t)value;
		}
		if (import->col_family >= 0) {
			const char *family = cell(table, row, (uint32_t)import->col_family);
			char attribute[256];
			snprintf(attribute, sizeof(attribute), "family=%s", family);
			if (family[0] != '\0' && !ctl_code_valid(attribute))
				problem(&import->report, line,
				        "malformed row: family '%s' must be at most 25 printable "
				        "characters",
				        family);
		}
		for (uint32_t a = 0; a < import->attribute_count; a++) {
			uint32_t c = import->attribute_columns[a];
			const char *value = cell(table, row, c);
			char attribute[256];
			if (value[0] == '\0')
				continue;
			snprintf(attribute, sizeof(attribute), "%s=%s", table->names[c], value);
			if (!ctl_code_valid(attribute))
				problem(&import->report, line,
				        "malformed row: attribute '%s' must be at most 32 "
				        "printable "
				        "characters as name=value",
				        attribute);
		}
	}
	check_unique(import, import->col_code, "SKU", 1, NULL, table->rows);
	if (import->col_barcode >= 0)
		check_barcodes(import);
	if (import->col_family >= 0)
		check_families(import);
	return 0;
}

static int check_locations(struct import *import)
{
	struct table *table = &import->table;
	if (require_column(import, "code", &import->col_code) != 0)
		return 0;
	for (uint32_t row = 0; row < table->rows; row++)
		check_code(import, row, import->col_code, "location code", 0);
	check_unique(import, import->col_code, "location code", 1, NULL, table->rows);
	return 0;
}

/* Bundles: rows grouped by bundle SKU (in file order of first appearance). */
static int check_bundles(struct import *import)
{
	struct table *table = &import->table;
	if (require_column(import, "bundle", &import->col_bundle) != 0 ||
	    require_column(import, "component", &import->col_component) != 0 ||
	    require_column(import, "qty", &import->col_qty) != 0)
		return 0;
	import->col_code = import->col_bundle;
	for (uint32_t row = 0; row < table->rows; row++) {
		check_code(import, row, import->col_bundle, "bundle SKU", 0);
		check_code(import, row, import->col_component, "component SKU", 0);
		int64_t probe;
		const char *qty = cell(table, row, (uint32_t)import->col_qty);
		if (ctl_quantity_parse(qty, SKULD_SCALE_MAX, 0, &probe) != 0 || probe == 0)
			problem(&import->report, table->lines[row],
			        "malformed row: qty '%s' must be a positive decimal", qty);
	}
	/* Group: sort rows by bundle, keep the file order of bundles. */
	struct sort_entry *entries = calloc(table->rows + 1, sizeof(*entries));
	if (entries == NULL || units_alloc(import, table->rows) != 0) {
		free(entries);
		return -1;
	}
	for (uint32_t row = 0; row < table->rows; row++) {
		entries[row].key = cell(table, row, (uint32_t)import->col_bundle);
		entries[row].row = row;
	}
	qsort(entries, table->rows, sizeof(*entries), sort_entry_compare);
	uint32_t units = 0;
	for (uint32_t start = 0; start < table->rows;) {
		uint32_t end = start + 1;
		while (end < table->rows && strcmp(entries[end].key, entries[start].key) == 0)
			end++;
		if (end - start > IMPORT_BUNDLE_PARTS)
			problem(&import->report, table->lines[entries[start].row],
			        "bundle '%s' has more than %u components", entries[start].key,
			        IMPORT_BUNDLE_PARTS);
		/* Rows of one bundle are kept together in row_item as a list. */
		import->unit_row[units] = entries[start].row;
		import->unit_rows[units] = end - start;
		for (uint32_t i = start; i < end; i++) {
			import->row_location[i] = entries[i].row; /* reused: the unit's rows */
			for (uint32_t j = start; j < i; j++) {
				if (strcmp(cell(table, entries[i].row,
				                (uint32_t)import->col_component),
				           cell(table, entries[j].row,
				                (uint32_t)import->col_component)) == 0) {
					problem(&import->report, table->lines[entries[i].row],
					        "component '%s' of bundle '%s' repeats line %u",
					        cell(table, entries[i].row,
					             (uint32_t)import->col_component),
					        entries[i].key, table->lines[entries[j].row]);
					break;
				}
			}
			/* A bundle cannot contain a bundle (LEDGER.md BUNDLE_COMPONENT). */
			const char *component =
			        cell(table, entries[i].row, (uint32_t)import->col_component);
			for (uint32_t k = 0; k < table->rows; k++) {
				if (strcmp(entries[k].key, component) == 0) {
					problem(&import->report, table->lines[entries[i].row],
					        "component '%s' is itself a bundle (line %u)",
					        component, table->lines[entries[k].row]);
					break;
				}
				if (strcmp(entries[k].key, component) > 0)
					break;
			}
		}
		/* unit_row indexes the sorted position; keep it in the unit. */
		import->unit_row[units] = start;
		units++;
		start = end;
	}
	import->units = units;
	/* Look-alike bundle SKUs: compare the first row of each bundle. */
	uint32_t *firsts = calloc(units + 1, sizeof(*firsts));
	if (firsts == NULL) {
		free(entries);
		return -1;
	}
	for (uint32_t u = 0; u < units; u++)
		firsts[u] = entries[import->unit_row[u]].row;
	check_unique(import, import->col_bundle, "bundle SKU", 1, firsts, units);
	free(firsts);
	free(entries);
	return 0;
}

static int check_counts(struct import *import)
{
	struct table *table = &import->table;
	if (require_column(import, "sku", &import->col_sku) != 0 ||
	    require_column(import, "location", &import->col_location) != 0 ||
	    require_column(import, "qty", &import->col_qty) != 0)
		return 0;
	import->col_code = import->col_sku;
	for (uint32_t row = 0; row < table->rows; row++) {
		check_code(import, row, import->col_sku, "SKU", 0);
		check_code(import, row, import->col_location, "location", 0);
		int64_t probe;
		const char *qty = cell(table, row, (uint32_t)import->col_qty);
		if (ctl_quantity_parse(qty, SKULD_SCALE_MAX, 0, &probe) != 0)
			problem(&import->report, table->lines[row],
			        "malformed row: qty '%s' must be a decimal, 0 or more", qty);
	}
	/* One count per (SKU, location) in a file. */
	struct sort_entry *entries = calloc(table->rows + 1, sizeof(*entries));
	char *keys = calloc((size_t)table->rows + 1, SKULD_CODE_SIZE * 2 + 2);
	if (entries == NULL || keys == NULL) {
		free(entries);
		free(keys);
		return -1;
	}
	for (uint32_t row = 0; row < table->rows; row++) {
		char *key = keys + (size_t)row * (SKULD_CODE_SIZE * 2 + 2);
		snprintf(key, SKULD_CODE_SIZE * 2 + 2, "%.32s@%.32s",
		         cell(table, row, (uint32_t)import->col_sku),
		         cell(table, row, (uint32_t)import->col_location));
		entries[row].key = key;
		entries[row].row = row;
	}
	qsort(entries, table->rows, sizeof(*entries), sort_entry_compare);
	for (uint32_t i = 1; i < table->rows; i++) {
		if (strcmp(entries[i].key, entries[i - 1].key) == 0)
			problem(&import->report, table->lines[entries[i].row],
			        "%s is counted twice (also line %u)", entries[i].key,
			        table->lines[entries[i - 1].row]);
	}
	free(entries);
	free(keys);
	return units_per_row(import);
}

/* ---- Phase 2b: what the ledger has ----------------------------------------------- */

static void progress(const struct import *import, const char *what, uint32_t done, uint32_t total)
{
	static time_t last;
	time_t now = time(NULL);
	if (done != total && now == last)
		return;
	last = now;
	fprintf(stderr, "import %s: %s %u/%u\n", kind_names[import->kind], what, done, total);
}

/* Items / locations: LOOKUP each code; the present ones are skipped. */
static int resolve_present(struct import *import)
{
	struct table *table = &import->table;
	for (uint32_t u = 0; u < import->units; u++) {
		uint32_t row = import->unit_row[u];
		const char *code = cell(table, row, (uint32_t)import->col_code);
		uint32_t id = 0;
		uint8_t scale = 0;
		int rc;
		if (import->kind == IMPORT_LOCATIONS)
			rc = ctl_lookup_location(import->ctl, code, &id);
		else
			rc = ctl_lookup_item(import->ctl, code, &id, &scale);
		if (rc != CTL_EXIT_OK)
			return rc;
		if (id != 0) {
			import->present[u] = 1;
			import->id[u] = id;
			if (import->kind == IMPORT_ITEMS && scale != import->row_scale[row])
				problem(&import->report, table->lines[row],
				        "SKU '%s' exists in the ledger with scale %u, not %u", code,
				        scale, import->row_scale[row]);
		}
		if ((u + 1) % 4096 == 0 || u + 1 == import->units)
			progress(import, "looked up", u + 1, import->units);
	}
	return CTL_EXIT_OK;
}

/* Bundles: the bundle SKU (present?), each component (must exist). */
static int resolve_bundles(struct import *import)
{
	struct table *table = &import->table;
	/* Sorted positions -> rows were kept in row_location (check_bundles). */
	for (uint32_t u = 0; u < import->units; u++) {
		uint32_t first = import->unit_row[u];
		uint32_t bundle_row = import->row_location[first];
		const char *bundle = cell(table, bundle_row, (uint32_t)import->col_bundle);
		uint32_t id = 0;
		uint8_t scale = 0;
		int rc = ctl_lookup_item(import->ctl, bundle, &id, &scale);
		if (rc != CTL_EXIT_OK)
			return rc;
		import->id[u] = id;
		import->present[u] = id != 0;
		for (uint32_t i = 0; i < import->unit_rows[u]; i++) {
			uint32_t row = import->row_location[first + i];
			const char *component = cell(table, row, (uint32_t)import->col_component);
			if ((rc = ctl_lookup_item(import->ctl, component, &id, &scale)) !=
			    CTL_EXIT_OK)
				return rc;
			if (id == 0) {
				problem(&import->report, table->lines[row],
				        "component '%s' of bundle '%s' is not in the ledger "
				        "(import items "
				        "first)",
				        component, bundle);
				continue;
			}
			import->row_item[row] = id;
			import->row_scale[row] = scale;
			const char *qty = cell(table, row, (uint32_t)import->col_qty);
			if (ctl_quantity_parse(qty, scale, 0, &import->row_units[row]) != 0 ||
			    import->row_units[row] == 0)
				problem(&import->report, table->lines[row],
				        "qty '%s' has more decimals than component '%s' (scale %u)",
				        qty, component, scale);
		}
	}
	return CTL_EXIT_OK;
}

static int resolve_counts(struct import *import)
{
	struct table *table = &import->table;
	for (uint32_t row = 0; row < table->rows; row++) {
		const char *sku = cell(table, row, (uint32_t)import->col_sku);
		const char *location = cell(table, row, (uint32_t)import->col_location);
		uint32_t item = 0, place = 0;
		uint8_t scale = 0;
		int rc = ctl_lookup_item(import->ctl, sku, &item, &scale);
		if (rc == CTL_EXIT_OK)
			rc = ctl_lookup_location(import->ctl, location, &place);
		if (rc != CTL_EXIT_OK)
			return rc;
		if (item == 0)
			problem(&import->report, table->lines[row], "unknown SKU '%s'", sku);
		if (place == 0)
			problem(&import->report, table->lines[row], "unknown location '%s'",
			        location);
		import->row_item[row] = item;
		import->row_location[row] = place;
		import->row_scale[row] = scale;
		const char *qty = cell(table, row, (uint32_t)import->col_qty);
		if (item != 0 && ctl_quantity_parse(qty, scale, 0, &import->row_units[row]) != 0)
			problem(&import->report, table->lines[row],
			        "qty '%s' has more decimals than SKU '%s' allows (scale %u)", qty,
			        sku, scale);
	}
	return CTL_EXIT_OK;
}

/* ---- Phase 3: apply --------------------------------------------------------------------- */

/* Builds unit u's chain at id (items, locations, bundles) into events. */
static uint32_t unit_chain(struct import *import, uint32_t u, uint32_t id,
                           struct skuld_event *events)
{
	struct table *table = &import->table;
	uint32_t row = import->unit_row[u];
	char document[SKULD_CODE_SIZE + 16];
	switch (import->kind) {
	case IMPORT_ITEMS: {
		static char attributes[CSV_FIELDS_MAX][SKULD_CODE_SIZE + 1];
		const char *pointers[CSV_FIELDS_MAX];
		uint32_t count = 0;
		for (uint32_t a = 0; a < import->attribute_count; a++) {
			uint32_t c = import->attribute_columns[a];
			const char *value = cell(table, row, c);
			if (value[0] == '\0')
				continue;
			snprintf(attributes[count], sizeof(attributes[count]), "%s=%s",
			         table->names[c], value);
			pointers[count] = attributes[count];
			count++;
		}
		if (import->col_family >= 0 &&
		    cell(table, row, (uint32_t)import->col_family)[0] != '\0') {
			snprintf(attributes[count], sizeof(attributes[count]), "family=%s",
			         cell(table, row, (uint32_t)import->col_family));
			pointers[count] = attributes[count];
			count++;
		}
		const char *barcode = import->col_barcode >= 0
		                              ? cell(table, row, (uint32_t)import->col_barcode)
		                              : NULL;
		return ctl_item_chain(events, id, cell(table, row, (uint32_t)import->col_code),
		                      import->row_scale[row], 0, barcode, pointers, count);
	}
	case IMPORT_LOCATIONS: {
		const char *code = cell(table, row, (uint32_t)import->col_code);
		snprintf(document, sizeof(document), "location:%s", code);
		if (skuld_event_location_define(&events[0],
		                                skuld_key(CTL_KEY_SOURCE, document, id, "define"),
		                                id, code) != 0)
			return 0;
		return 1;
	}
	case IMPORT_BUNDLES: {
		uint32_t first_row = import->row_location[row];
		const char *sku = cell(table, first_row, (uint32_t)import->col_bundle);
		uint32_t count = ctl_item_chain(events, id, sku, 0, 1, NULL, NULL, 0);
		if (count == 0)
			return 0;
		for (uint32_t i = 0; i < import->unit_rows[u]; i++) {
			uint32_t part = import->row_location[row + i];
			ctl_component_event(&events[count++], id, sku, import->row_item[part],
			                    cell(table, part, (uint32_t)import->col_component),
			                    import->row_units[part]);
		}
		skuld_events_link(events, count);
		return count;
	}
	default: { /* counts: COUNT_OPEN + COUNT_CLOSE, keys from the session */
		char action[96];
		snprintf(document, sizeof(document), "counts:%s", import->session);
		snprintf(action, sizeof(action), "count %" PRIu32 "@%" PRIu32 "=%" PRId64,
		         import->row_item[row], import->row_location[row], import->row_units[row]);
		skuld_u128 open_key = skuld_key(CTL_KEY_SOURCE, document, 0, action);
		memset(events, 0, 2 * sizeof(*events));
		events[0].kind = SKULD_COUNT_OPEN;
		events[0].key = open_key;
		events[0].item = import->row_item[row];
		events[0].location = import->row_location[row];
		events[0].id = (open_key.lo >> 1) | 1;
		events[1] = events[0];
		events[1].kind = SKULD_COUNT_CLOSE;
		events[1].key = skuld_key(CTL_KEY_SOURCE, document, 1, action);
		events[1].quantity = import->row_units[row];
		skuld_events_link(events, 2);
		return 2;
	}
	}
}

static uint16_t exists_status(enum import_kind kind)
{
	return kind == IMPORT_LOCATIONS ? SKULD_LOCATION_EXISTS : SKULD_ITEM_EXISTS;
}

/* Sends the pending units in requests of at most events_max events. Units
 * whose id another client took are given the next id and sent again (at
 * most IMPORT_RETRIES times each). Stops after a request in which a unit
 * failed otherwise. */
static int apply(struct import *import)
{
	struct ctl *ctl = import->ctl;
	uint32_t batch_max = ctl->events_max < 8192 ? ctl->events_max : 8192;
	struct skuld_event *events = calloc(batch_max, sizeof(*events));
	struct skuld_result *results = calloc(batch_max, sizeof(*results));
	uint32_t *batch_unit = calloc(batch_max, sizeof(*batch_unit));
	uint32_t *batch_start = calloc(batch_max, sizeof(*batch_start));
	int rc = CTL_EXIT_OK;
	uint32_t next_id = 0;
	if (events == NULL || results == NULL || batch_unit == NULL || batch_start == NULL) {
		rc = CTL_EXIT_ERROR;
		goto done;
	}
	if (import->kind != IMPORT_COUNTS) {
		rc = ctl_next_free_id(
		        ctl, import->kind == IMPORT_LOCATIONS ? CTL_ID_LOCATION : CTL_ID_ITEM,
		        &next_id);
		if (rc != CTL_EXIT_OK)
			goto done;
	}
	uint32_t pending = 0, total = 0;
	for (uint32_t u = 0; u < import->units; u++)
		pending += !import->present[u];
	total = pending;
	/* Each turn sends at least one unit or ends a unit's retries. */
	uint32_t cursor = 0;
	for (uint64_t turn = 0; pending > 0 && turn < (uint64_t)import->units * IMPORT_RETRIES + 16;
	     turn++) {
		uint32_t used = 0, chains = 0, scan_from = cursor;
		for (uint32_t scanned = 0; scanned < import->units; scanned++) {
			uint32_t u = (scan_from + scanned) % import->units;
			if (import->present[u] || import->done[u])
				continue;
			struct skuld_event chain[IMPORT_CHAIN_MAX];
			if (import->id[u] == 0 && import->kind != IMPORT_COUNTS)
				import->id[u] = next_id++;
			uint32_t n = unit_chain(import, u, import->id[u], chain);
			if (n == 0 || n > batch_max) {
				problem(&import->report, import->table.lines[import->unit_row[u]],
				        "row cannot be sent (%u events)", n);
				rc = CTL_EXIT_REFUSED;
				goto done;
			}
			if (used + n > batch_max)
				break;
			memcpy(&events[used], chain, n * sizeof(*chain));
			batch_unit[chains] = u;
			batch_start[chains++] = used;
			used += n;
			cursor = (u + 1) % import->units;
		}
		if (chains == 0)
			break;
		rc = ctl_submit(ctl, events, used, results);
		if (rc != CTL_EXIT_OK) {
			fprintf(stderr,
			        "skuldctl: the last request's outcome is unknown; %u of %u rows "
			        "were "
			        "applied before it. Re-running the same import is safe.\n",
			        import->applied, total);
			goto done;
		}
		int failed = 0;
		for (uint32_t c = 0; c < chains; c++) {
			uint32_t u = batch_unit[c];
			uint32_t start = batch_start[c];
			uint32_t end = c + 1 < chains ? batch_start[c + 1] : used;
			uint32_t index = 0;
			uint16_t status = ctl_chain_status(&results[start], end - start, &index);
			uint32_t line = import->table.lines[import->unit_row[u]];
			if (import->kind == IMPORT_BUNDLES)
				line = import->table
				               .lines[import->row_location[import->unit_row[u]]];
			if (status == SKULD_OK) {
				import->done[u] = 1;
				pending--;
				if (results[start].flags & SKULD_RESULT_REPLAYED)
					import->already++;
				else
					import->applied++;
			} else if (status == exists_status(import->kind) && index == 0 &&
			           import->tries[u] < IMPORT_RETRIES) {
				/* Another client took the id: the next one, after every id seen. */
				import->tries[u]++;
				if (import->id[u] >= next_id)
					next_id = import->id[u] + 1;
				import->id[u] = next_id++;
			} else if (status == SKULD_CODE_EXISTS && index == 0 &&
			           import->kind != IMPORT_COUNTS) {
				/* Defined by another client since the look-up. */
				import->done[u] = 1;
				pending--;
				import->already++;
			} else {
				problem(&import->report, line,
				        "refused by the ledger: %s (%s), event %u of "
				        "the row",
				        skuld_status_name(status), skuld_strerror(status),
				        index + 1);
				import->done[u] = 1;
				pending--;
				import->failed++;
				failed = 1;
			}
		}
		progress(import, "applied", import->applied + import->already + import->failed,
		         total);
		if (failed) {
			rc = CTL_EXIT_REFUSED;
			fprintf(stderr,
			        "skuldctl: stopped: %u rows applied, %u failed (above), %u not "
			        "sent. "
			        "Each row is all-or-nothing; fix the cause and run the same import "
			        "again: applied rows are found present and skipped.\n",
			        import->applied, import->failed, pending);
			goto done;
		}
	}
	if (pending > 0) {
		fprintf(stderr, "skuldctl: %u rows could not get a free id; run again\n", pending);
		rc = CTL_EXIT_ERROR;
	}
done:
	free(events);
	free(results);
	free(batch_unit);
	free(batch_start);
	return rc;
}

/* ---- Entry ------------------------------------------------------------------------------- */

static void summary(struct import *import, uint32_t present, uint32_t to_apply)
{
	const char *name = kind_names[import->kind];
	if (import->ctl->json) {
		printf("{\"command\":\"import\",\"kind\":\"%s\",\"file\":", name);
		ctl_json_string(stdout, import->path);
		printf(",\"rows\":%u,\"units\":%u,\"dry_run\":%s,\"defects\":%u,\"already_"
		       "present\":%u,"
		       "\"to_apply\":%u,\"applied\":%u,\"failed\":%u",
		       import->table.rows, import->units, import->dry_run ? "true" : "false",
		       import->report.problems, present + import->already, to_apply,
		       import->applied, import->failed);
		report_print(&import->report, 1);
		printf("}\n");
		return;
	}
	report_print(&import->report, 0);
	if (import->report.problems > 0 && import->applied == 0 && import->already == 0) {
		printf("import %s: %u defects in %s (listed on stderr); nothing was applied\n",
		       name, import->report.problems, import->path);
		return;
	}
	if (import->dry_run) {
		printf("import %s: %u rows checked, no defects; %u already present, %u would be "
		       "applied (dry run: nothing sent)\n",
		       name, import->table.rows, present, to_apply);
		return;
	}
	printf("import %s: %u rows, %u applied, %u already present, %u failed\n", name,
	       import->table.rows, import->applied, present + import->already, import->failed);
}

int ctl_import(struct ctl *ctl, const char *what, const char *path, int dry_run,
               const char *session)
{
	static struct import import;
	memset(&import, 0, sizeof(import));
	import.ctl = ctl;
	import.path = path;
	import.dry_run = dry_run;
	import.col_barcode = import.col_scale = import.col_family = import.col_name = -1;
	if (session != NULL)
		snprintf(import.session, sizeof(import.session), "%s", session);
	int kind = -1;
	for (int i = 0; i < 4; i++) {
		if (strcmp(what, kind_names[i]) == 0)
			kind = i;
	}
	if (kind < 0) {
		fprintf(stderr, "skuldctl: import items|locations|bundles|counts FILE.csv\n");
		return CTL_EXIT_USAGE;
	}
	import.kind = (enum import_kind)kind;
	int rc = import_read(&import);
	if (rc != CTL_EXIT_OK)
		goto done;
	int checked = 0;
	switch (import.kind) {
	case IMPORT_ITEMS:
		checked = units_per_row(&import);
		if (checked == 0)
			checked = check_items(&import);
		break;
	case IMPORT_LOCATIONS:
		checked = units_per_row(&import);
		if (checked == 0)
			checked = check_locations(&import);
		break;
	case IMPORT_BUNDLES:
		checked = check_bundles(&import);
		break;
	default:
		checked = check_counts(&import);
		break;
	}
	if (checked != 0) {
		fprintf(stderr, "skuldctl: out of memory\n");
		rc = CTL_EXIT_ERROR;
		goto done;
	}
	if (import.report.problems == 0 && import.units > 0) {
		if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
			goto done;
		if (import.kind == IMPORT_BUNDLES)
			rc = resolve_bundles(&import);
		else if (import.kind == IMPORT_COUNTS)
			rc = resolve_counts(&import);
		else
			rc = resolve_present(&import);
		if (rc != CTL_EXIT_OK)
			goto done;
	}
	uint32_t present = 0;
	for (uint32_t u = 0; u < import.units; u++)
		present += import.present[u];
	uint32_t to_apply = import.units - present;
	if (import.report.problems > 0) {
		summary(&import, present, to_apply);
		rc = CTL_EXIT_REFUSED;
		goto done;
	}
	if (!import.dry_run && to_apply > 0)
		rc = apply(&import);
	summary(&import, present, to_apply);
done:
	import_free(&import);
	return rc;
}
