/*
 * start.c — the snapshot or chain head a partial log is read from
 * (start.h).
 */
#include "start.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chain_export.h"
#include "snapshot.h"
#include "snapshot_stream.h"

#define START_DIRS_MAX        4
#define SERVICE_SECTION_MAGIC 0x4356524553444c53ull /* "SLDSERVC" as bytes */

struct start_dirs {
	char dirs[START_DIRS_MAX][LOG_PATH_SIZE];
	int count;
};

static void dirs_add(struct start_dirs *dirs, const char *dir)
{
	if (dir == NULL || dir[0] == '\0' || dirs->count == START_DIRS_MAX ||
	    strlen(dir) + 1 > LOG_PATH_SIZE)
		return;
	for (int i = 0; i < dirs->count; i++) {
		if (strcmp(dirs->dirs[i], dir) == 0)
			return;
	}
	snprintf(dirs->dirs[dirs->count++], LOG_PATH_SIZE, "%s", dir);
}

/* The directories start.h lists, in that order. */
static void dirs_collect(const struct walk *walk, struct start_dirs *dirs)
{
	memset(dirs, 0, sizeof(*dirs));
	const char *log_dir = walk->log_dir;
	const char *slash = strrchr(log_dir, '/');
	const char *base = slash != NULL ? slash + 1 : log_dir;
	if (strcmp(base, "log") == 0) {
		int parent = slash != NULL ? (int)(slash - log_dir) : 0;
		char dir[LOG_PATH_SIZE];
		snprintf(dir, sizeof(dir), "%.*s%ssnapshots", parent, log_dir,
		         slash != NULL ? "/" : "");
		dirs_add(dirs, dir);
		snprintf(dir, sizeof(dir), "%.*s%sarchive-snapshots", parent, log_dir,
		         slash != NULL ? "/" : "");
		dirs_add(dirs, dir);
	}
	dirs_add(dirs, walk->archive_dir);
	dirs_add(dirs, walk->config.archive_dir);
}

static void dirs_text(const struct start_dirs *dirs, char *out, size_t size)
{
	out[0] = '\0';
	for (int i = 0; i < dirs->count; i++) {
		size_t used = strlen(out);
		snprintf(out + used, size - used, "%s%s", i ? ", " : "", dirs->dirs[i]);
	}
	if (dirs->count == 0)
		snprintf(out, size, "(none: not a data directory)");
}

static int read_at(FILE *file, void *bytes, size_t size, uint64_t offset)
{
	if (offset > (uint64_t)INT64_MAX || fseeko(file, (off_t)offset, SEEK_SET) != 0)
		return -EIO;
	return fread(bytes, 1, size, file) == size ? 0 : -ENODATA;
}

/* The header of the snapshot at path, checked as snapshot_read does
 * (format rules 1 and 2, docs/FORMAT.md), and the record time of its last
 * batch from the service section. Returns 0, or -1 with why. */
static int header_check(const char *path, uint64_t number, struct snapshot_header *header,
                        uint64_t *batch_ns, char *why, size_t why_size)
{
	FILE *file = fopen(path, "rb");
	if (file == NULL) {
		snprintf(why, why_size, "%s", strerror(errno));
		return -1;
	}
	struct stat status;
	uint64_t file_size = 0;
	if (fstat(fileno(file), &status) == 0 && status.st_size > 0)
		file_size = (uint64_t)status.st_size;
	const char *wrong = NULL;
	uint8_t service[24];
	if (file_size < sizeof(*header) + sizeof(struct snapshot_trailer) ||
	    read_at(file, header, sizeof(*header), 0) != 0)
		wrong = "too short";
	else if (header->magic != SNAPSHOT_FILE_MAGIC)
		wrong = "not a snapshot file (bad magic)";
	else if (header->version != SNAPSHOT_FILE_VERSION)
		wrong = "unsupported format version";
	else if (header->header_size != sizeof(*header) ||
	         header->checksum_header !=
	                 skuld_checksum(header, offsetof(struct snapshot_header, checksum_header)))
		wrong = "header checksum mismatch";
	else if (header->ledger_size > file_size || header->service_size > file_size ||
	         sizeof(*header) + header->ledger_size + header->service_size +
	                         sizeof(struct snapshot_trailer) !=
	                 file_size)
		wrong = "section sizes do not add up to the file size";
	else if (header->event_next == 0 || header->event_next - 1 != number)
		wrong = "named for another log position";
	else if (header->segment == 0 || header->offset < LOG_BLOCK_SIZE ||
	         header->offset % LOG_BLOCK_SIZE != 0 || header->write_next < 2 ||
	         skuld_u128_is_zero(header->log_id))
		wrong = "not a log position";
	else if (header->service_size < sizeof(service) ||
	         read_at(file, service, sizeof(service), sizeof(*header) + header->ledger_size) !=
	                 0)
		wrong = "service section too short";
	fclose(file);
	if (wrong == NULL) {
		uint64_t magic;
		memcpy(&magic, service, sizeof(magic));
		memcpy(batch_ns, service + 16, sizeof(*batch_ns));
		if (magic != SERVICE_SECTION_MAGIC)
			wrong = "service section: bad magic";
	}
	for (size_t i = 0; wrong == NULL && i < sizeof(header->reserved); i++) {
		if (header->reserved[i] != 0)
			wrong = "reserved header bytes are not zero";
	}
	if (wrong != NULL) {
		snprintf(why, why_size, "%s", wrong);
		return -1;
	}
	return 0;
}

static struct log_position header_position(const struct snapshot_header *header)
{
	return (struct log_position){
	        .segment = header->segment,
	        .offset = header->offset,
	        .write_next = header->write_next,
	        .event_next = header->event_next,
	        .checksum_prev = header->checksum_prev,
	        .log_id = header->log_id,
	};
}

/* Whether the log present begins exactly where position left off. */
static bool at_log_start(const struct walk *walk, const struct log_position *position)
{
	const struct log_segment_header *first = &walk->first_header;
	return walk->first_known && first->write_first == position->write_next &&
	       first->event_first == position->event_next &&
	       first->checksum_prev == position->checksum_prev &&
	       skuld_u128_equal(first->log_id, position->log_id);
}

/* Whether position lies inside a segment of the log present, after its
 * start. */
static bool in_log(const struct walk *walk, const struct log_position *position)
{
	return position->segment >= walk->segment_first &&
	       position->segment <= walk->segment_last &&
	       (!walk->first_known ||
	        (position->write_next > walk->first_header.write_first &&
	         skuld_u128_equal(position->log_id, walk->first_header.log_id)));
}

static bool beyond(const struct text_point *limit, uint64_t number, uint64_t batch_ns)
{
	if (limit->kind == TEXT_POINT_SEQUENCE)
		return number > limit->value;
	if (limit->kind == TEXT_POINT_TIME)
		return batch_ns > limit->value;
	return false;
}

static void snapshot_path_of(char *path, const char *dir, uint64_t number, const char *suffix)
{
	char name[SNAPSHOT_NAME_SIZE];
	snapshot_name(name, sizeof(name), number, suffix);
	snprintf(path, START_PATH_SIZE, "%s/%s", dir, name);
}

/* ---- Parts of the ledger section --------------------------------------------- */

int start_part_each(const struct start_snapshot *snapshot, uint32_t tag, uint32_t record_size,
                    int (*visit)(void *context, const void *record), void *context, char *reason,
                    size_t reason_size)
{
	struct snapshot_header header;
	uint64_t batch_ns;
	if (header_check(snapshot->path, snapshot->number, &header, &batch_ns, reason,
	                 reason_size) != 0)
		return -EBADMSG;
	FILE *file = fopen(snapshot->path, "rb");
	if (file == NULL) {
		int ret = -errno;
		snprintf(reason, reason_size, "%s", strerror(-ret));
		return ret;
	}
	uint64_t end = sizeof(header) + header.ledger_size;
	uint64_t offset = sizeof(header);
	struct snapshot_stream_header stream;
	int ret = offset + sizeof(stream) <= end ? read_at(file, &stream, sizeof(stream), offset)
	                                         : -ENODATA;
	if (ret == 0 &&
	    (stream.magic != SNAPSHOT_STREAM_MAGIC || stream.header_size != sizeof(stream)))
		ret = -EBADMSG;
	offset += sizeof(stream);
	uint8_t record[256];
	/* Bounded: every pass moves offset forward within the section. */
	while (ret == 0) {
		struct snapshot_part_header part;
		if (offset + sizeof(part) > end) {
			ret = -EBADMSG;
			break;
		}
		ret = read_at(file, &part, sizeof(part), offset);
		if (ret != 0)
			break;
		offset += sizeof(part);
		uint64_t bytes = (uint64_t)part.record_size * part.count;
		if (bytes > end - offset || part.tag > tag || part.tag == SNAPSHOT_PART_END) {
			ret = -EBADMSG;
			break;
		}
		if (part.tag != tag) {
			offset += bytes;
			continue;
		}
		if (part.record_size != record_size || record_size > sizeof(record)) {
			ret = -EBADMSG;
			break;
		}
		for (uint32_t i = 0; ret == 0 && i < part.count; i++) {
			ret = read_at(file, record, record_size, offset);
			offset += record_size;
			if (ret == 0)
				ret = visit(context, record);
		}
		break;
	}
	fclose(file);
	if (ret == -EBADMSG || ret == -ENODATA) {
		snprintf(reason, reason_size,
		         "the ledger section does not hold part %" PRIu32 " as the format says",
		         tag);
		ret = -EBADMSG;
	} else if (ret < 0 && ret != -ENOMEM) {
		snprintf(reason, reason_size, "%s", strerror(-ret));
	}
	return ret;
}

/* ---- Names from the snapshot's catalog ----------------------------------------- */

struct names_context {
	struct walk *walk;
};

static int name_location(void *context, const void *bytes)
{
	const struct snapshot_location *record = bytes;
	struct names_context *names = context;
	return names_define(&names->walk->names, NAMES_LOCATION, record->id, record->code, 0, 0);
}

static int name_channel(void *context, const void *bytes)
{
	const struct snapshot_channel *record = bytes;
	struct names_context *names = context;
	return names_define(&names->walk->names, NAMES_CHANNEL, record->id, record->code, 0, 0);
}

/* An item's name is the first SKU code made for it: the one it was defined
 * with. */
static int name_item(void *context, const void *bytes)
{
	const struct snapshot_sku *record = bytes;
	struct names_context *names = context;
	struct walk *walk = names->walk;
	struct ledger_item_info info;
	if (names_find(&walk->names, NAMES_ITEM, record->item) != NULL ||
	    ledger_item(service_ledger(walk->service), record->item, &info) != SKULD_OK)
		return 0;
	return names_define(&walk->names, NAMES_ITEM, record->item, record->code, info.scale,
	                    info.bundle);
}

static int names_fill(struct walk *walk, const struct start_snapshot *snapshot)
{
	struct names_context context = {.walk = walk};
	char reason[256] = "";
	int ret =
	        start_part_each(snapshot, SNAPSHOT_PART_LOCATIONS, sizeof(struct snapshot_location),
	                        name_location, &context, reason, sizeof(reason));
	if (ret == 0)
		ret = start_part_each(snapshot, SNAPSHOT_PART_CHANNELS,
		                      sizeof(struct snapshot_channel), name_channel, &context,
		                      reason, sizeof(reason));
	if (ret == 0)
		ret = start_part_each(snapshot, SNAPSHOT_PART_SKUS, sizeof(struct snapshot_sku),
		                      name_item, &context, reason, sizeof(reason));
	if (ret == -ENOMEM)
		return walk_fault(walk, REPLAY_EXIT_ERROR, "out of memory for the catalog's codes");
	if (ret != 0)
		return walk_fault(walk, REPLAY_EXIT_FAULT, "snapshot %s: %s", snapshot->path,
		                  reason);
	return REPLAY_EXIT_OK;
}

/* ---- Choosing the snapshot ---------------------------------------------------- */

struct candidate {
	char path[START_PATH_SIZE];
	uint64_t number;
	uint64_t batch_ns;
	struct log_position position;
	bool at_start;
};

/* The one at the start of the log first, then the oldest inside it. */
static int candidate_compare(const void *a, const void *b)
{
	const struct candidate *left = a, *right = b;
	if (left->at_start != right->at_start)
		return left->at_start ? -1 : 1;
	return (left->number > right->number) - (left->number < right->number);
}

struct candidates {
	struct candidate *list;
	uint32_t count;
	uint32_t capacity;
	uint32_t beyond;       /* usable, but beyond the limit */
	uint64_t beyond_first; /* the oldest of those */
};

static int candidates_add(struct candidates *candidates, const struct candidate *candidate)
{
	if (candidates->count == candidates->capacity) {
		uint32_t grown = candidates->capacity ? candidates->capacity * 2 : 8;
		struct candidate *list = realloc(candidates->list, grown * sizeof(*list));
		if (list == NULL)
			return -ENOMEM;
		candidates->list = list;
		candidates->capacity = grown;
	}
	candidates->list[candidates->count++] = *candidate;
	return 0;
}

/* Every snapshot of dir that could start the log present, checked by its
 * header. Returns 0 or -ENOMEM. */
static int candidates_collect(const struct walk *walk, const char *dir,
                              const struct text_point *limit, struct candidates *candidates)
{
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	int ret = snapshot_list(dir, &numbers, &count);
	if (ret != 0 && ret != -ENOENT)
		fprintf(stderr, "skuld-replay: warning: snapshots in %s: %s\n", dir,
		        strerror(-ret));
	for (uint32_t i = 0; ret == 0 && i < count; i++) {
		struct candidate candidate = {.number = numbers[i]};
		struct snapshot_header header;
		char why[160];
		snapshot_path_of(candidate.path, dir, numbers[i], ".sks");
		if (header_check(candidate.path, numbers[i], &header, &candidate.batch_ns, why,
		                 sizeof(why)) != 0) {
			fprintf(stderr, "skuld-replay: warning: snapshot %s skipped: %s\n",
			        candidate.path, why);
			continue;
		}
		candidate.position = header_position(&header);
		candidate.at_start = at_log_start(walk, &candidate.position);
		if (!candidate.at_start && !in_log(walk, &candidate.position))
			continue;
		if (beyond(limit, candidate.number, candidate.batch_ns)) {
			if (candidates->beyond == 0 || candidate.number < candidates->beyond_first)
				candidates->beyond_first = candidate.number;
			candidates->beyond++;
			continue;
		}
		ret = candidates_add(candidates, &candidate);
	}
	free(numbers);
	return ret;
}

static int no_snapshot(struct walk *walk, const struct start_dirs *dirs,
                       const struct candidates *candidates, const struct text_point *limit)
{
	char name[32], where[START_DIRS_MAX * LOG_PATH_SIZE / 2];
	walk_segment_name(walk->segment_first, name);
	dirs_text(dirs, where, sizeof(where));
	uint64_t event = walk->first_known ? walk->first_header.event_first : 0;
	if (candidates->beyond > 0) {
		char point[TEXT_TIME_SIZE + 16];
		if (limit->kind == TEXT_POINT_SEQUENCE)
			snprintf(point, sizeof(point), "event %" PRIu64, limit->value);
		else
			text_time(limit->value, point);
		return walk_fault(walk, REPLAY_EXIT_FAULT,
		                  "%s is before the log present and its snapshots: the log starts "
		                  "at %s (event %" PRIu64 ") and the oldest snapshot that starts "
		                  "it is after event %" PRIu64
		                  "; earlier segments were archived: give --archive DIR",
		                  point, name, event, candidates->beyond_first);
	}
	return walk_fault(walk, REPLAY_EXIT_FAULT,
	                  "the log in %s starts at %s (event %" PRIu64
	                  "): earlier segments were archived, and no snapshot in %.400s starts "
	                  "the log present; give --archive DIR with the archived segments",
	                  walk_segment_dir(walk, walk->segment_first), name, event, where);
}

/* Loads the first candidate that reads. Returns 1 with *out, 0 when none
 * did, or -1 (walk->exit and walk->fault set). */
static int candidates_try(struct walk *walk, const struct candidates *candidates,
                          struct start_snapshot *out)
{
	for (uint32_t i = 0; i < candidates->count; i++) {
		const struct candidate *candidate = &candidates->list[i];
		struct log_position position;
		char reason[WALK_MESSAGE_SIZE / 2];
		if (snapshot_read(walk->service, candidate->path, &position, reason,
		                  sizeof(reason)) != 0) {
			fprintf(stderr, "skuld-replay: warning: snapshot %s skipped: %s%s\n",
			        candidate->path, reason,
			        strstr(reason, "capacities") != NULL
			                ? " (give the server's configuration with --config)"
			                : "");
			if (service_reset(walk->service) != 0) {
				walk_fault(walk, REPLAY_EXIT_ERROR, "out of memory");
				return -1;
			}
			continue;
		}
		*out = (struct start_snapshot){
		        .used = true,
		        .number = candidate->number,
		        .batch_ns = candidate->batch_ns,
		        .position = position,
		        .at_start = candidate->at_start,
		};
		memcpy(out->path, candidate->path, sizeof(out->path));
		return 1;
	}
	return 0;
}

int start_snapshot_load(struct walk *walk, const struct text_point *limit,
                        struct start_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	struct start_dirs dirs;
	dirs_collect(walk, &dirs);
	struct candidates candidates = {0};
	int ret = 0;
	for (int i = 0; ret == 0 && i < dirs.count; i++)
		ret = candidates_collect(walk, dirs.dirs[i], limit, &candidates);
	if (ret != 0) {
		free(candidates.list);
		return walk_fault(walk, REPLAY_EXIT_ERROR, "out of memory");
	}
	if (candidates.count > 1)
		qsort(candidates.list, candidates.count, sizeof(struct candidate),
		      candidate_compare);
	int found = candidates_try(walk, &candidates, out);
	int exit = found == 1 ? REPLAY_EXIT_OK : walk->exit;
	if (found == 0)
		exit = no_snapshot(walk, &dirs, &candidates, limit);
	free(candidates.list);
	if (exit != REPLAY_EXIT_OK)
		return exit;
	exit = walk_start_at(walk, &out->position);
	if (exit == REPLAY_EXIT_OK)
		exit = names_fill(walk, out);
	return exit;
}

/* ---- Chain heads ------------------------------------------------------------------- */

/* The head kept beside snapshot number in dir, when the snapshot's
 * position lies in the log present. Returns 1 with *head and *position, 0
 * when none (warnings for files that do not check out). */
static int head_try(const struct walk *walk, const char *dir, uint64_t number,
                    struct chain_head *head, struct log_position *position,
                    char path[START_PATH_SIZE])
{
	struct stat status;
	char sks[START_PATH_SIZE], why[160];
	struct snapshot_header header;
	uint64_t batch_ns;
	snapshot_path_of(path, dir, number, ".head");
	if (stat(path, &status) != 0)
		return 0;
	snapshot_path_of(sks, dir, number, ".sks");
	if (header_check(sks, number, &header, &batch_ns, why, sizeof(why)) != 0) {
		fprintf(stderr,
		        "skuld-replay: warning: head file %s skipped: its snapshot %s: %s\n", path,
		        sks, why);
		return 0;
	}
	*position = header_position(&header);
	if (!at_log_start(walk, position) && !in_log(walk, position))
		return 0;
	int ret = chain_head_read(dir, number, head);
	if (ret != 0 || head->sequence != number) {
		fprintf(stderr, "skuld-replay: warning: head file %s skipped: %s\n", path,
		        ret != 0 ? "not one line SEQ:HEX"
		                 : "its SEQ is not its snapshot's last event");
		return 0;
	}
	return 1;
}

int start_head_find(struct walk *walk, struct chain_head *head, struct log_position *position,
                    char path[START_PATH_SIZE])
{
	struct start_dirs dirs;
	dirs_collect(walk, &dirs);
	bool found = false;
	for (int d = 0; d < dirs.count; d++) {
		uint64_t *numbers = NULL;
		uint32_t count = 0;
		if (snapshot_list(dirs.dirs[d], &numbers, &count) != 0)
			count = 0;
		/* Newest first: the last one that checks out is the oldest. */
		for (uint32_t i = 0; i < count; i++) {
			struct chain_head candidate;
			struct log_position at;
			char file[START_PATH_SIZE];
			if ((found && numbers[i] >= head->sequence) ||
			    head_try(walk, dirs.dirs[d], numbers[i], &candidate, &at, file) != 1)
				continue;
			*head = candidate;
			*position = at;
			memcpy(path, file, START_PATH_SIZE);
			found = true;
		}
		free(numbers);
	}
	return found ? 1 : 0;
}
