/*
 * skuldctl_channels.c — `skuldctl channels`, `skuldctl exceptions` and
 * `skuldctl import mappings FILE.csv` (docs/SKULDCTL.md, docs/CHANNELS.md).
 *
 * Owns: the reading of the channel push records for people (ages from the
 * ledger's wall-clock times), the exception list with each item's listing
 * and the remembered stock discrepancies (sale short, count off),
 * and the mapping import: every row checked before anything is sent, then
 * CHANNEL_LISTING events whose keys derive from (channel, SKU, listing), so
 * a re-run of the same file is answered REPLAYED and changes nothing.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skuldctl.h"
#include "skuldctl_csv.h"

#define CHANNEL_SCAN_GAP 16u /* unknown ids in a row that end a channel scan */
#define MAPPINGS_BATCH   512u
#define SHOPIFY_ITEM_GID "gid://shopify/InventoryItem/"
#define EXCEPTIONS_PAGE  256u /* records per page, channel exceptions or discrepancies */
#define MAPPING_ROWS_MAX (1u << 22)

static const char *const exception_names[] = {
        "none", "unmapped",   "unknown-listing", "inactive", "not-stocked",
        "auth", "validation", "throttling",      "mismatch",
};

static const char *exception_name(uint16_t kind)
{
	return kind < sizeof(exception_names) / sizeof(exception_names[0]) ? exception_names[kind]
	                                                                   : "unknown";
}

static uint64_t wall_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* RFC 3339 UTC of a ledger time, or "-" for 0. */
static void time_text(uint64_t ns, char out[32])
{
	if (ns == 0) {
		snprintf(out, 32, "-");
		return;
	}
	time_t seconds = (time_t)(ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&seconds, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Seconds from a ledger time to now, or -1 for 0. */
static int64_t age_s(uint64_t ns, uint64_t now)
{
	if (ns == 0)
		return -1;
	return now > ns ? (int64_t)((now - ns) / 1000000000ull) : 0;
}

int ctl_channel_record(struct ctl *ctl, uint32_t channel, struct skuld_channel_push_record *record)
{
	struct skuld_query query = {.kind = SKULD_QUERY_CHANNEL_PUSH, .channel = channel};
	union skuld_query_record answer;
	uint32_t count = 0;
	int rc = skuld_query(ctl->client, &query, &answer, 1, &count, CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "channel query");
	if (count != 1) {
		fprintf(stderr, "skuldctl: the server answered %u records\n", count);
		return CTL_EXIT_ERROR;
	}
	*record = answer.channel_push;
	return CTL_EXIT_OK;
}

int ctl_channels_resolve(struct ctl *ctl, const char *const *names, int count,
                         struct ctl_channel_ref *out, uint32_t *found)
{
	*found = 0;
	for (int i = 0; i < count; i++) {
		uint32_t id = 0;
		int rc = ctl_lookup_channel(ctl, names[i], &id);
		if (rc != CTL_EXIT_OK)
			return rc;
		if (id == 0) {
			fprintf(stderr, "skuldctl: no channel named %s\n", names[i]);
			return CTL_EXIT_REFUSED;
		}
		out[*found].id = id;
		snprintf(out[*found].name, sizeof(out[*found].name), "%s", names[i]);
		(*found)++;
	}
	if (count > 0)
		return CTL_EXIT_OK;
	uint32_t gap = 0;
	for (uint32_t id = 1; id <= CTL_CHANNEL_SCAN_MAX && gap < CHANNEL_SCAN_GAP; id++) {
		struct skuld_channel_push_record record;
		int rc = ctl_channel_record(ctl, id, &record);
		if (rc != CTL_EXIT_OK)
			return rc;
		if (record.status != SKULD_OK) {
			gap++;
			continue;
		}
		gap = 0;
		out[*found].id = id;
		snprintf(out[*found].name, sizeof(out[*found].name), "#%" PRIu32, id);
		(*found)++;
	}
	return CTL_EXIT_OK;
}

int ctl_channels(struct ctl *ctl, const char *const *names, int count)
{
	static struct ctl_channel_ref channels[CTL_CHANNEL_SCAN_MAX];
	uint32_t found = 0;
	int rc = ctl_connect(ctl);
	if (rc == CTL_EXIT_OK)
		rc = ctl_channels_resolve(ctl, names, count, channels, &found);
	if (rc != CTL_EXIT_OK)
		return rc;
	uint64_t now = wall_ns();
	if (ctl->json)
		printf("[");
	else
		printf("%-20s %8s %8s %8s %12s %12s %10s %s\n", "channel", "mapped", "dirty",
		       "parked", "oldest_dirty", "last_push", "pushes", "exception");
	for (uint32_t i = 0; i < found; i++) {
		struct skuld_channel_push_record record;
		if ((rc = ctl_channel_record(ctl, channels[i].id, &record)) != CTL_EXIT_OK)
			return rc;
		if (ctl->json) {
			printf("%s{\"channel\":", i > 0 ? "," : "");
			ctl_json_string(stdout, channels[i].name);
			printf(",\"channel_id\":%" PRIu32 ",\"mapped\":%" PRIu32
			       ",\"dirty\":%" PRIu32 ",\"parked\":%" PRIu32
			       ",\"oldest_dirty_age_s\":%" PRId64 ",\"last_push_age_s\":%" PRId64
			       ",\"pushes\":%" PRIu64 ",\"exception\":",
			       channels[i].id, record.mapped, record.dirty, record.parked,
			       age_s(record.oldest_dirty, now), age_s(record.last_ack, now),
			       record.acks);
			if (record.exception != 0)
				ctl_json_string(stdout, exception_name(record.exception));
			else
				printf("null");
			printf("}");
		} else {
			char oldest[24], last[24];
			int64_t a = age_s(record.oldest_dirty, now),
			        b = age_s(record.last_ack, now);
			snprintf(oldest, sizeof(oldest), a < 0 ? "-" : "%" PRId64 "s", a);
			snprintf(last, sizeof(last), b < 0 ? "never" : "%" PRId64 "s ago", b);
			printf("%-20s %8" PRIu32 " %8" PRIu32 " %8" PRIu32 " %12s %12s %10" PRIu64
			       " %s\n",
			       channels[i].name, record.mapped, record.dirty, record.parked, oldest,
			       last, record.acks,
			       record.exception != 0 ? exception_name(record.exception) : "-");
		}
	}
	if (ctl->json)
		printf("]\n");
	return CTL_EXIT_OK;
}

static void listing_text(struct ctl *ctl, uint32_t channel, uint32_t item,
                         char out[SKULD_LISTING_SIZE + 1])
{
	struct skuld_query query = {.kind = SKULD_QUERY_LISTING, .channel = channel, .item = item};
	union skuld_query_record answer;
	uint32_t count = 0;
	out[0] = '\0';
	if (item == 0 ||
	    skuld_query(ctl->client, &query, &answer, 1, &count, CTL_TIMEOUT_MS) != 0 ||
	    count != 1 || answer.listing.status != SKULD_OK)
		return;
	memcpy(out, answer.listing.listing, SKULD_LISTING_SIZE);
	out[SKULD_LISTING_SIZE] = '\0';
}

/* Prints one channel exception (listed: how many came before it). */
static void exception_print(struct ctl *ctl, const struct ctl_channel_ref *channel,
                            const struct skuld_exception_record *record, uint32_t listed)
{
	char listing[SKULD_LISTING_SIZE + 1], first[32], last[32],
	        detail[SKULD_EXCEPTION_DETAIL_SIZE + 1];
	listing_text(ctl, channel->id, record->item, listing);
	time_text(record->first_seen, first);
	time_text(record->last_seen, last);
	memcpy(detail, record->detail, SKULD_EXCEPTION_DETAIL_SIZE);
	detail[SKULD_EXCEPTION_DETAIL_SIZE] = '\0';
	if (ctl->json) {
		printf("%s{\"channel\":", listed > 0 ? "," : "");
		ctl_json_string(stdout, channel->name);
		printf(",\"item\":%" PRIu32 ",\"listing\":", record->item);
		ctl_json_string(stdout, listing);
		printf(",\"exception\":");
		ctl_json_string(stdout, exception_name(record->exception));
		printf(",\"reports\":%" PRIu32 ",\"first_seen\":\"%s\","
		       "\"last_seen\":\"%s\",\"detail\":",
		       record->reports, first, last);
		ctl_json_string(stdout, detail);
		printf("}");
	} else {
		printf("%s item %s%" PRIu32 " listing %s: %s, %" PRIu32
		       " report%s, first %s, last %s%s%s\n",
		       channel->name, record->item == 0 ? "(channel) " : "", record->item,
		       listing[0] ? listing : "-", exception_name(record->exception),
		       record->reports, record->reports == 1 ? "" : "s", first, last,
		       detail[0] ? ": " : "", detail);
	}
}

/* Lists the open exceptions of every channel in channels; adds to *listed. */
static int channel_exceptions(struct ctl *ctl, const struct ctl_channel_ref *channels,
                              uint32_t found, uint32_t *listed)
{
	static union skuld_query_record page[EXCEPTIONS_PAGE];
	for (uint32_t c = 0; c < found; c++) {
		uint32_t after = 0;
		for (uint32_t pages = 0; pages < 65536; pages++) {
			struct skuld_query query = {.kind = SKULD_QUERY_EXCEPTIONS,
			                            .channel = channels[c].id,
			                            .after_item = after,
			                            .limit = EXCEPTIONS_PAGE};
			uint32_t count = 0;
			int rc = skuld_query(ctl->client, &query, page, EXCEPTIONS_PAGE, &count,
			                     CTL_TIMEOUT_MS);
			if (rc != 0)
				return ctl_fail(rc, "exceptions query");
			for (uint32_t i = 0; i < count; i++) {
				const struct skuld_exception_record *record = &page[i].exception;
				/* A CURSOR record only says where the server's scan stopped. */
				if (record->status != SKULD_OK ||
				    (record->flags & SKULD_QUERY_CURSOR))
					continue;
				exception_print(ctl, &channels[c], record, *listed);
				(*listed)++;
			}
			if (count == 0 || !(page[count - 1].exception.flags & SKULD_QUERY_MORE))
				break;
			after = page[count - 1].exception.item;
		}
	}
	return CTL_EXIT_OK;
}

/* "sale-short", "count-off" or both, of the flags' kind bits. */
static const char *discrepancy_kinds(uint8_t flags)
{
	int sale = (flags & SKULD_DISCREPANCY_SALE_SHORT) != 0;
	int count = (flags & SKULD_DISCREPANCY_COUNT_OFF) != 0;
	return sale && count ? "sale-short,count-off" : count ? "count-off" : "sale-short";
}

static void discrepancy_print(struct ctl *ctl, const struct skuld_discrepancy_record *record,
                              uint32_t listed)
{
	uint8_t scale = 0;
	if (ctl_item_scale(ctl, record->item, &scale) != CTL_EXIT_OK)
		scale = 0; /* the item is gone from the catalog: print base units */
	char expected[CTL_QUANTITY_CHARS], found[CTL_QUANTITY_CHARS], first[32], last[32];
	ctl_quantity_format(record->expected, scale, expected);
	ctl_quantity_format(record->found, scale, found);
	time_text(record->first_at, first);
	time_text(record->last_at, last);
	int count = (record->flags & SKULD_DISCREPANCY_LAST_COUNT) != 0;
	int acknowledged = (record->flags & SKULD_DISCREPANCY_ACKNOWLEDGED) != 0;
	if (ctl->json) {
		printf("%s{\"discrepancy\":\"%s\",\"kinds\":\"%s\",\"item\":%" PRIu32
		       ",\"location\":%" PRIu32 ",\"occurrences\":%" PRIu32
		       ",\"first_sequence\":%" PRIu64 ",\"last_sequence\":%" PRIu64
		       ",\"first_at\":\"%s\",\"last_at\":\"%s\",\"expected\":%s,\"found\":%s,"
		       "\"acknowledged\":%s}",
		       listed > 0 ? "," : "", count ? "count-off" : "sale-short",
		       discrepancy_kinds(record->flags), record->item, record->location,
		       record->occurrences, record->first_sequence, record->last_sequence, first,
		       last, expected, found, acknowledged ? "true" : "false");
		return;
	}
	printf("discrepancy item %" PRIu32 " at location %" PRIu32 ": %s, %" PRIu32
	       " occurrence%s, first event %" PRIu64 " at %s, last event %" PRIu64
	       " at %s: %s %s, %s %s%s\n",
	       record->item, record->location, discrepancy_kinds(record->flags),
	       record->occurrences, record->occurrences == 1 ? "" : "s", record->first_sequence,
	       first, record->last_sequence, last, count ? "expected" : "available", expected,
	       count ? "counted" : "sold", found, acknowledged ? " (acknowledged)" : "");
}

/* Lists the discrepancy records the filter asks for; adds to *listed. */
static int discrepancy_list(struct ctl *ctl, const struct ctl_exception_filter *filter,
                            uint32_t *listed)
{
	static union skuld_query_record page[EXCEPTIONS_PAGE];
	uint32_t after_location = 0, after_item = 0;
	for (uint32_t pages = 0; pages < 65536; pages++) {
		struct skuld_query query = {.kind = SKULD_QUERY_DISCREPANCIES,
		                            .location = filter->location,
		                            .after_location = after_location,
		                            .after_item = after_item,
		                            .limit = EXCEPTIONS_PAGE};
		uint32_t count = 0;
		int rc = skuld_query(ctl->client, &query, page, EXCEPTIONS_PAGE, &count,
		                     CTL_TIMEOUT_MS);
		if (rc != 0)
			return ctl_fail(rc, "discrepancies query");
		for (uint32_t i = 0; i < count; i++) {
			const struct skuld_discrepancy_record *record = &page[i].discrepancy;
			if (record->status != SKULD_OK || record->kind != SKULD_QUERY_DISCREPANCIES)
				continue;
			if (record->item == 0) {
				/* The table's figures: say when open ones were lost. */
				if (record->last_sequence == 0)
					continue;
				if (ctl->json)
					printf("%s{\"discrepancies_dropped\":%" PRIu64
					       ",\"discrepancies_max\":%" PRId64 "}",
					       *listed > 0 ? "," : "", record->last_sequence,
					       record->expected);
				else
					printf("discrepancies: %" PRIu64
					       " open ones dropped to make room (discrepancies_max "
					       "%" PRId64 ")\n",
					       record->last_sequence, record->expected);
				(*listed)++;
				continue;
			}
			if ((record->flags & SKULD_DISCREPANCY_ACKNOWLEDGED) &&
			    !filter->acknowledged)
				continue;
			discrepancy_print(ctl, record, *listed);
			(*listed)++;
		}
		if (count == 0 || !(page[count - 1].discrepancy.flags & SKULD_QUERY_MORE))
			break;
		after_location = page[count - 1].discrepancy.location;
		after_item = page[count - 1].discrepancy.item;
	}
	return CTL_EXIT_OK;
}

int ctl_exceptions(struct ctl *ctl, const char *name, const struct ctl_exception_filter *filter)
{
	static struct ctl_channel_ref channels[CTL_CHANNEL_SCAN_MAX];
	uint32_t found = 0;
	int rc = ctl_connect(ctl);
	if (rc == CTL_EXIT_OK && filter->channels)
		rc = ctl_channels_resolve(ctl, &name, name != NULL, channels, &found);
	if (rc != CTL_EXIT_OK)
		return rc;
	uint32_t listed = 0;
	if (ctl->json)
		printf("[");
	if (filter->channels)
		rc = channel_exceptions(ctl, channels, found, &listed);
	if (rc == CTL_EXIT_OK && filter->discrepancies)
		rc = discrepancy_list(ctl, filter, &listed);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctl->json)
		printf("]\n");
	else if (listed == 0)
		printf("no open exceptions\n");
	return CTL_EXIT_OK;
}

/* ---- import mappings ---------------------------------------------------------- */

struct mapping_row {
	uint32_t line;
	int retire;
	char sku[SKULD_CODE_SIZE + 1];
	char channel[SKULD_CODE_SIZE + 1];
	char listing[SKULD_LISTING_SIZE + 1];
	uint32_t item;
	uint32_t channel_id;
};

static int listing_valid(const char *text)
{
	size_t length = strlen(text);
	if (length == 0 || length > SKULD_LISTING_SIZE || text[0] == ' ' || text[length - 1] == ' ')
		return 0;
	for (size_t i = 0; i < length; i++) {
		if (text[i] < 0x20 || text[i] > 0x7e)
			return 0;
	}
	return 1;
}

static int column_of(const struct csv_record *header, const char *name)
{
	for (uint32_t i = 0; i < header->count; i++) {
		if (strcmp(header->fields[i], name) == 0)
			return (int)i;
	}
	return -1;
}

/* Reads and checks every row; returns the number of defects (printed). */
static uint32_t mappings_read(const char *path, struct mapping_row **rows_out, uint32_t *count_out,
                              int *usage)
{
	struct csv_reader reader;
	struct csv_record record;
	*rows_out = NULL;
	*count_out = 0;
	*usage = 0;
	int rc = csv_open(&reader, path);
	if (rc != 0) {
		fprintf(stderr, "skuldctl: cannot read %s: %s\n", path, strerror(-rc));
		*usage = 1;
		return 1;
	}
	uint32_t defects = 0;
	int sku = -1, channel = -1, listing = -1;
	if (csv_next(&reader, &record) != 1 || (sku = column_of(&record, "sku")) < 0 ||
	    (channel = column_of(&record, "channel")) < 0 ||
	    (listing = column_of(&record, "listing")) < 0) {
		fprintf(stderr, "%s:1: the header needs the columns sku, channel and listing\n",
		        path);
		csv_close(&reader);
		return 1;
	}
	uint32_t capacity = 1024;
	struct mapping_row *rows = calloc(capacity, sizeof(*rows));
	uint32_t count = 0;
	int next;
	while (rows != NULL && (next = csv_next(&reader, &record)) != 0) {
		if (next < 0) {
			fprintf(stderr, "%s:%u: %s\n", path, record.line, record.error);
			defects++;
			break;
		}
		if (count == MAPPING_ROWS_MAX) {
			fprintf(stderr, "%s:%u: more than %u rows\n", path, record.line,
			        MAPPING_ROWS_MAX);
			defects++;
			break;
		}
		if (count == capacity) {
			struct mapping_row *grown = realloc(rows, 2 * capacity * sizeof(*rows));
			if (grown == NULL)
				break;
			rows = grown;
			capacity *= 2;
		}
		struct mapping_row *row = &rows[count];
		memset(row, 0, sizeof(*row));
		row->line = record.line;
		int width = sku > channel ? sku : channel;
		width = listing > width ? listing : width;
		if ((uint32_t)width >= record.count) {
			fprintf(stderr, "%s:%u: %u fields, the header has more\n", path,
			        record.line, record.count);
			defects++;
			continue;
		}
		const char *sku_text = record.fields[sku];
		const char *channel_text = record.fields[channel];
		const char *listing_text_in = record.fields[listing];
		/* Shopify inventory item gids are kept as their number, which
		 * skuld-push turns back into the gid (listing_prefix). */
		size_t prefix = strlen(SHOPIFY_ITEM_GID);
		if (strncmp(listing_text_in, SHOPIFY_ITEM_GID, prefix) == 0)
			listing_text_in += prefix;
		row->retire = strcmp(listing_text_in, "-") == 0;
		if (!ctl_code_valid(sku_text)) {
			fprintf(stderr, "%s:%u: SKU '%s' is not 1 to 32 printable characters\n",
			        path, record.line, sku_text);
			defects++;
		} else if (!ctl_code_valid(channel_text)) {
			fprintf(stderr, "%s:%u: channel '%s' is not 1 to 32 printable characters\n",
			        path, record.line, channel_text);
			defects++;
		} else if (!row->retire && !listing_valid(listing_text_in)) {
			fprintf(stderr,
			        "%s:%u: listing '%s' is not 1 to 40 printable characters (a "
			        "Shopify "
			        "gid may be given whole)\n",
			        path, record.line, listing_text_in);
			defects++;
		} else {
			snprintf(row->sku, sizeof(row->sku), "%s", sku_text);
			snprintf(row->channel, sizeof(row->channel), "%s", channel_text);
			snprintf(row->listing, sizeof(row->listing), "%s",
			         row->retire ? "" : listing_text_in);
			count++;
		}
	}
	csv_close(&reader);
	if (rows == NULL) {
		fprintf(stderr, "skuldctl: out of memory\n");
		*usage = 1;
		return 1;
	}
	/* One listing per (SKU, channel) in a file. */
	for (uint32_t i = 0; i < count; i++) {
		for (uint32_t j = i + 1; j < count && count <= 65536; j++) {
			if (strcmp(rows[i].sku, rows[j].sku) == 0 &&
			    strcmp(rows[i].channel, rows[j].channel) == 0) {
				fprintf(stderr, "%s:%u: SKU %s on %s is mapped again (line %u)\n",
				        path, rows[j].line, rows[j].sku, rows[j].channel,
				        rows[i].line);
				defects++;
			}
		}
	}
	*rows_out = rows;
	*count_out = count;
	return defects;
}

int ctl_import_mappings(struct ctl *ctl, const char *path, int dry_run)
{
	struct mapping_row *rows = NULL;
	uint32_t count = 0;
	int usage = 0;
	uint32_t defects = mappings_read(path, &rows, &count, &usage);
	if (usage) {
		free(rows);
		return CTL_EXIT_USAGE;
	}
	int rc = defects == 0 ? ctl_connect(ctl) : CTL_EXIT_OK;
	for (uint32_t i = 0; rc == CTL_EXIT_OK && defects == 0 && i < count; i++) {
		struct mapping_row *row = &rows[i];
		uint8_t scale = 0;
		if ((rc = ctl_lookup_item(ctl, row->sku, &row->item, &scale)) != CTL_EXIT_OK ||
		    (rc = ctl_lookup_channel(ctl, row->channel, &row->channel_id)) != CTL_EXIT_OK)
			break;
		if (row->item == 0 || row->channel_id == 0) {
			fprintf(stderr, "%s:%u: %s %s is not defined\n", path, row->line,
			        row->item == 0 ? "SKU" : "channel",
			        row->item == 0 ? row->sku : row->channel);
			defects++;
		}
	}
	if (rc != CTL_EXIT_OK || defects > 0) {
		if (defects > 0)
			fprintf(stderr, "skuldctl: %u defect%s in %s; nothing applied\n", defects,
			        defects == 1 ? "" : "s", path);
		free(rows);
		return rc != CTL_EXIT_OK ? rc : CTL_EXIT_REFUSED;
	}
	/* The file's rows name its session: a re-run of the same file is
	 * REPLAYED, while a later file that maps a listing back to an earlier
	 * text is a new change. */
	uint64_t session = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < count; i++) {
		const struct mapping_row *row = &rows[i];
		const char *parts[] = {row->sku, row->channel, row->retire ? "-" : row->listing};
		for (size_t p = 0; p < 3; p++)
			for (const char *c = parts[p];; c++) {
				session = (session ^ (unsigned char)*c) * 0x100000001b3ull;
				if (*c == '\0')
					break;
			}
	}
	char source[48];
	snprintf(source, sizeof(source), "skuldctl-mappings/%016" PRIx64, session);
	uint32_t applied = 0, already = 0, refused = 0;
	static struct skuld_event events[MAPPINGS_BATCH];
	static struct skuld_result results[MAPPINGS_BATCH];
	for (uint32_t first = 0; !dry_run && first < count; first += MAPPINGS_BATCH) {
		uint32_t size = count - first < MAPPINGS_BATCH ? count - first : MAPPINGS_BATCH;
		for (uint32_t i = 0; i < size; i++) {
			const struct mapping_row *row = &rows[first + i];
			struct skuld_event *event = &events[i];
			memset(event, 0, sizeof(*event));
			char document[2 * SKULD_CODE_SIZE + 2];
			snprintf(document, sizeof(document), "%s/%s", row->channel, row->sku);
			event->kind = SKULD_CHANNEL_LISTING;
			event->key =
			        skuld_key(source, document, 0, row->retire ? "-" : row->listing);
			event->channel = row->channel_id;
			event->item = row->item;
			/* The text is required; a retirement's is not read. */
			if (row->retire)
				event->flags = SKULD_EVENT_RETIRE;
			const char *text = row->retire ? "-" : row->listing;
			memcpy(event->listing, text, strlen(text));
		}
		if ((rc = ctl_submit(ctl, events, size, results)) != CTL_EXIT_OK)
			break;
		for (uint32_t i = 0; i < size; i++) {
			if (results[i].status == SKULD_OK) {
				if (results[i].flags & SKULD_RESULT_REPLAYED)
					already++;
				else
					applied++;
				continue;
			}
			fprintf(stderr, "%s:%u: %s on %s refused: %s\n", path, rows[first + i].line,
			        rows[first + i].sku, rows[first + i].channel,
			        skuld_status_name(results[i].status));
			refused++;
		}
	}
	if (rc == CTL_EXIT_OK) {
		if (ctl->json)
			printf("{\"rows\":%u,\"applied\":%u,\"already\":%u,\"refused\":%u,"
			       "\"dry_run\":%s}\n",
			       count, applied, already, refused, dry_run ? "true" : "false");
		else if (dry_run)
			printf("%u mapping%s checked; nothing sent (--dry-run)\n", count,
			       count == 1 ? "" : "s");
		else
			printf("%u mapping%s: %u applied, %u already applied, %u refused\n", count,
			       count == 1 ? "" : "s", applied, already, refused);
	}
	free(rows);
	if (rc != CTL_EXIT_OK)
		return rc;
	return refused > 0 ? CTL_EXIT_REFUSED : CTL_EXIT_OK;
}
