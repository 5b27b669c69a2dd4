/*
 * snapshot.c — snapshot files and the background schedule (snapshot.h).
 *
 * SNAPSHOT FILE, format version 1 (docs/FORMAT.md has the same as byte
 * tables). Little-endian; XXH3 is XXH3-64, seed 0.
 *
 *   header   128 B  magic "SKULDSNP", version 1, header size 128, log id,
 *                   configuration fingerprint, the log position (write_next,
 *                   event_next, segment, offset, checksum_prev), created_ns,
 *                   ledger_size, service_size, 16 reserved zero bytes, XXH3
 *                   of bytes 0..119
 *   ledger   ledger_size B   the ledger snapshot stream (ledger_snapshot.h)
 *   service  service_size B  the service section (service.c)
 *   trailer  16 B   file size, XXH3 of every byte before this field
 *
 * Validity, checked in this order by snapshot_read (the first failure
 * refuses the file and says which rule):
 *   1. the file is at least 144 bytes; magic; version (another one is
 *      "unsupported"); header size; header checksum; reserved zero;
 *   2. 128 + ledger_size + service_size + 16 equals the file size and the
 *      trailer's file size; the name's number is event_next - 1; the
 *      position is one: segment >= 1, offset a multiple of 4096 and >= 4096,
 *      write_next >= 2, event_next >= 1, log id non-zero;
 *   3. the configuration fingerprint is this server's;
 *   4. the trailer checksum over the whole file;
 *   5. the ledger section loads (all of ledger_snapshot_load's rules) and
 *      ends exactly at its size; the service section loads (service.c's
 *      rules) and ends exactly at its size.
 *
 * Writing (snapshot_write): the header (sizes are computed first), the
 * sections and the trailer go to snapshot-N.tmp through one buffer and one
 * running XXH3; then fsync, close; then (background snapshots) wait for
 * the parent's byte that the log is durable up to the position; rename to
 * snapshot-N.sks; fsync the directory.
 *
 * The schedule (struct snapshotter): the loop calls snapshotter_tick every
 * turn. A snapshot is due after `events` events or `interval_ns` (with at
 * least one event) since the last; it is started only when the open log
 * write is empty (service_snapshot_position), by fork(). The child closes
 * every inherited descriptor but stderr and its end of a pipe (so neither
 * the ring, nor a socket, nor the data directory's lock outlives the
 * parent in it), asks to be killed if the parent dies, writes the file and
 * waits on the pipe. The parent writes the byte once service_durable_write
 * reaches the last write the snapshot covers, and reaps the child with
 * waitpid(WNOHANG) on later turns (the loop wakes at least every 250 ms).
 */
#define _GNU_SOURCE /* close_range */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "skuld_assert.h"
#include "chain_export.h"
#include "storage.h"

#define SNAPSHOT_PATH_SIZE   (LOG_PATH_SIZE + SNAPSHOT_NAME_SIZE)
#define SNAPSHOT_IO_SIZE     (1u << 20)              /* bytes per read or write */
#define SNAPSHOT_RETRY_NS    (10ull * 1000000000ull) /* after a failed snapshot */
#define SNAPSHOT_CHILD_OK    0
#define SNAPSHOT_CHILD_ERROR 1 /* the child said why on stderr */
#define SNAPSHOT_CHILD_GONE  2 /* the parent went away before the log was durable */

/* ---- Disk calls: every one goes through the storage seam ------------------- */

static int disk_open(const char *path, int flags)
{
	int fd = storage_get()->os.open(path, flags | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

static void disk_close(int fd)
{
	storage_get()->os.close(fd);
}

static int disk_pwrite_all(int fd, const void *bytes, size_t size, uint64_t offset)
{
	const uint8_t *cursor = bytes;
	while (size > 0) {
		ssize_t done = storage_get()->os.pwrite(fd, cursor, size, (off_t)offset);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return done < 0 ? -errno : -EIO;
		cursor += done;
		size -= (size_t)done;
		offset += (uint64_t)done;
	}
	return 0;
}

static int disk_pread_all(int fd, void *bytes, size_t size, uint64_t offset)
{
	uint8_t *cursor = bytes;
	while (size > 0) {
		ssize_t done = storage_get()->os.pread(fd, cursor, size, (off_t)offset);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return done < 0 ? -errno : -ENODATA;
		cursor += done;
		size -= (size_t)done;
		offset += (uint64_t)done;
	}
	return 0;
}

static int disk_fsync(int fd)
{
	return storage_get()->os.fsync(fd) == 0 ? 0 : -errno;
}

static int disk_size(int fd, uint64_t *size)
{
	struct stat status;
	if (storage_get()->os.fstat(fd, &status) != 0)
		return -errno;
	*size = status.st_size < 0 ? 0 : (uint64_t)status.st_size;
	return 0;
}

static int disk_rename(const char *from, const char *to)
{
	return storage_get()->os.rename(from, to) == 0 ? 0 : -errno;
}

static int disk_unlink(const char *path)
{
	return storage_get()->unlink(path) == 0 ? 0 : -errno;
}

static int disk_fsync_dir(const char *dir)
{
	int fd = disk_open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	int ret = disk_fsync(fd);
	disk_close(fd);
	return ret;
}

/* ---- Names ---------------------------------------------------------------------- */

int snapshot_name(char *name, size_t size, uint64_t number, const char *suffix)
{
	int length = snprintf(name, size, "snapshot-%016" PRIx64 "%s", number, suffix);
	return length < 0 || (size_t)length >= size ? -ENAMETOOLONG : 0;
}

static int snapshot_path(char *path, size_t size, const char *dir, uint64_t number,
                         const char *suffix)
{
	char name[SNAPSHOT_NAME_SIZE];
	int ret = snapshot_name(name, sizeof(name), number, suffix);
	if (ret != 0)
		return ret;
	int length = snprintf(path, size, "%s/%s", dir, name);
	return length < 0 || (size_t)length >= size ? -ENAMETOOLONG : 0;
}

/* Parses "snapshot-<16 lower-case hex>" + suffix. Returns 1 and *number. */
static int snapshot_name_parse(const char *name, const char *suffix, uint64_t *number)
{
	size_t suffix_size = strlen(suffix);
	if (strlen(name) != 9 + 16 + suffix_size || memcmp(name, "snapshot-", 9) != 0 ||
	    strcmp(name + 25, suffix) != 0)
		return 0;
	uint64_t value = 0;
	for (int i = 9; i < 25; i++) {
		char digit = name[i];
		if (digit >= '0' && digit <= '9')
			value = value << 4 | (uint64_t)(digit - '0');
		else if (digit >= 'a' && digit <= 'f')
			value = value << 4 | (uint64_t)(digit - 'a' + 10);
		else
			return 0;
	}
	*number = value;
	return 1;
}

static int number_descending(const void *a, const void *b)
{
	uint64_t left = *(const uint64_t *)a;
	uint64_t right = *(const uint64_t *)b;
	return (left < right) - (left > right);
}

/* Numbers of the files with suffix in dir, newest first. */
static int snapshot_list_suffix(const char *dir, const char *suffix, uint64_t **numbers,
                                uint32_t *count)
{
	*numbers = NULL;
	*count = 0;
	DIR *directory = opendir(dir);
	if (directory == NULL)
		return errno == ENOENT ? 0 : -errno;
	uint32_t capacity = 0;
	int ret = 0;
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL) {
		uint64_t number;
		if (!snapshot_name_parse(entry->d_name, suffix, &number))
			continue;
		if (*count == capacity) {
			capacity = capacity == 0 ? 8 : capacity * 2;
			uint64_t *grown = realloc(*numbers, capacity * sizeof(uint64_t));
			if (grown == NULL) {
				ret = -ENOMEM;
				break;
			}
			*numbers = grown;
		}
		(*numbers)[(*count)++] = number;
	}
	closedir(directory);
	if (ret != 0) {
		free(*numbers);
		*numbers = NULL;
		*count = 0;
		return ret;
	}
	if (*count > 1)
		qsort(*numbers, *count, sizeof(uint64_t), number_descending);
	return 0;
}

int snapshot_list(const char *dir, uint64_t **numbers, uint32_t *count)
{
	return snapshot_list_suffix(dir, ".sks", numbers, count);
}

/* ---- Writing ---------------------------------------------------------------------- */

/* A sink into a file: buffered, hashed as it goes. */
struct file_out {
	int fd;
	uint64_t offset; /* of the first buffered byte */
	uint8_t *buffer;
	size_t used;
	XXH3_state_t *hash;
	int error;
};

static int file_out_flush(struct file_out *out)
{
	if (out->error == 0 && out->used > 0) {
		out->error = disk_pwrite_all(out->fd, out->buffer, out->used, out->offset);
		out->offset += out->used;
	}
	out->used = 0;
	return out->error;
}

static int file_out_write(void *context, const void *bytes, size_t size)
{
	struct file_out *out = context;
	XXH3_64bits_update(out->hash, bytes, size);
	const uint8_t *cursor = bytes;
	while (size > 0 && out->error == 0) {
		if (out->used == SNAPSHOT_IO_SIZE)
			file_out_flush(out);
		size_t piece = SNAPSHOT_IO_SIZE - out->used;
		piece = size < piece ? size : piece;
		memcpy(out->buffer + out->used, cursor, piece);
		out->used += piece;
		cursor += piece;
		size -= piece;
	}
	return out->error;
}

static void header_seal(struct snapshot_header *header)
{
	header->checksum_header =
	        skuld_checksum(header, offsetof(struct snapshot_header, checksum_header));
}

/* Header, sections and trailer into out. Returns 0 or -errno / -EIO. */
static int snapshot_content(const struct service *service, const struct log_position *position,
                            uint64_t created_ns, struct file_out *out, uint64_t *size,
                            char *message, size_t message_size)
{
	const struct ledger *ledger = service_ledger((struct service *)service);
	struct snapshot_header header = {
	        .magic = SNAPSHOT_FILE_MAGIC,
	        .version = SNAPSHOT_FILE_VERSION,
	        .header_size = sizeof(struct snapshot_header),
	        .log_id = position->log_id,
	        .config_fingerprint = ledger_config_fingerprint(ledger_configuration(ledger)),
	        .write_next = position->write_next,
	        .event_next = position->event_next,
	        .segment = position->segment,
	        .offset = position->offset,
	        .checksum_prev = position->checksum_prev,
	        .created_ns = created_ns,
	        .ledger_size = ledger_snapshot_size(ledger),
	        .service_size = service_snapshot_size(service),
	};
	header_seal(&header);
	struct snapshot_sink sink = {.write = file_out_write, .context = out};
	int ret = file_out_write(out, &header, sizeof(header));
	if (ret == 0)
		ret = ledger_snapshot_save(ledger, &sink);
	if (ret == 0)
		ret = service_snapshot_save(service, &sink);
	uint64_t written = out->offset + out->used;
	struct snapshot_trailer trailer = {.file_size = written + sizeof(trailer)};
	if (ret == 0 && written != sizeof(header) + header.ledger_size + header.service_size) {
		snprintf(message, message_size,
		         "wrote %" PRIu64 " bytes where the header says %" PRIu64, written,
		         sizeof(header) + header.ledger_size + header.service_size);
		return -EIO;
	}
	if (ret == 0)
		ret = file_out_write(out, &trailer.file_size, sizeof(trailer.file_size));
	trailer.checksum = XXH3_64bits_digest(out->hash);
	if (ret == 0)
		ret = file_out_write(out, &trailer.checksum, sizeof(trailer.checksum));
	if (ret == 0)
		ret = file_out_flush(out);
	if (ret != 0)
		snprintf(message, message_size, "writing: %s", strerror(-ret));
	*size = trailer.file_size;
	return ret;
}

/* Waits for the parent's byte: 0 once it came, -ECANCELED at end of file. */
static int durable_wait(int fd)
{
	for (;;) {
		char byte;
		ssize_t got = read(fd, &byte, 1);
		if (got == 1)
			return 0;
		if (got == 0)
			return -ECANCELED;
		if (errno != EINTR)
			return -errno;
	}
}

int snapshot_write(const struct service *service, const char *dir,
                   const struct log_position *position, uint64_t created_ns, int durable_fd,
                   uint64_t *size, char *message, size_t message_size)
{
	SKULD_ASSERT(position->event_next >= 2);
	char temporary[SNAPSHOT_PATH_SIZE];
	char final[SNAPSHOT_PATH_SIZE];
	int ret =
	        snapshot_path(temporary, sizeof(temporary), dir, position->event_next - 1, ".tmp");
	if (ret == 0)
		ret = snapshot_path(final, sizeof(final), dir, position->event_next - 1, ".sks");
	if (ret != 0) {
		snprintf(message, message_size, "%s: directory name too long", dir);
		return ret;
	}
	struct file_out out = {.fd = -1};
	out.buffer = malloc(SNAPSHOT_IO_SIZE);
	out.hash = XXH3_createState();
	if (out.buffer == NULL || out.hash == NULL) {
		ret = -ENOMEM;
		snprintf(message, message_size, "%s: out of memory", temporary);
		goto done;
	}
	XXH3_64bits_reset(out.hash);
	out.fd = disk_open(temporary, O_WRONLY | O_CREAT | O_TRUNC);
	if (out.fd < 0) {
		ret = out.fd;
		snprintf(message, message_size, "%s: %s", temporary, strerror(-ret));
		goto done;
	}
	char why[160] = "";
	ret = snapshot_content(service, position, created_ns, &out, size, why, sizeof(why));
	if (ret == 0) {
		ret = disk_fsync(out.fd);
		snprintf(why, sizeof(why), "fsync: %s", strerror(-ret));
	}
	disk_close(out.fd);
	if (ret == 0 && durable_fd >= 0) {
		ret = durable_wait(durable_fd);
		snprintf(why, sizeof(why), "the log never became durable up to its position");
	}
	if (ret == 0) {
		ret = disk_rename(temporary, final);
		snprintf(why, sizeof(why), "rename: %s", strerror(-ret));
	}
	if (ret == 0) {
		ret = disk_fsync_dir(dir);
		snprintf(why, sizeof(why), "fsync of the directory: %s", strerror(-ret));
		if (ret != 0) /* renamed, not durable: not a snapshot to count on */
			disk_unlink(final);
	} else {
		disk_unlink(temporary);
	}
	if (ret != 0)
		snprintf(message, message_size, "%s: %s", temporary, why);
done:
	free(out.buffer);
	if (out.hash != NULL)
		XXH3_freeState(out.hash);
	return ret;
}

/* ---- Reading ------------------------------------------------------------------------ */

/* A source over bytes [offset, end) of a file, buffered. */
struct file_in {
	int fd;
	uint64_t offset; /* file offset of the next byte handed out */
	uint64_t end;
	uint8_t *buffer;
	uint64_t buffer_offset; /* file offset of buffer[0] */
	size_t filled;
	int error;
};

static int file_in_read(void *context, void *bytes, size_t size)
{
	struct file_in *in = context;
	if (in->error != 0)
		return in->error;
	if (size > in->end - in->offset)
		return -ENODATA;
	uint8_t *cursor = bytes;
	while (size > 0) {
		uint64_t have = in->buffer_offset + in->filled;
		if (in->offset >= have) {
			uint64_t want = in->end - in->offset;
			size_t fill = want < SNAPSHOT_IO_SIZE ? (size_t)want : SNAPSHOT_IO_SIZE;
			in->error = disk_pread_all(in->fd, in->buffer, fill, in->offset);
			if (in->error != 0)
				return in->error;
			in->buffer_offset = in->offset;
			in->filled = fill;
			have = in->offset + fill;
		}
		size_t piece = (size_t)(have - in->offset);
		piece = size < piece ? size : piece;
		memcpy(cursor, in->buffer + (in->offset - in->buffer_offset), piece);
		in->offset += piece;
		cursor += piece;
		size -= piece;
	}
	return 0;
}

/* Rules 1 to 3 of the file comment. Returns NULL, or what is wrong. */
static const char *header_wrong(const struct snapshot_header *header, uint64_t file_size,
                                uint64_t number, const struct service *service)
{
	if (header->magic != SNAPSHOT_FILE_MAGIC)
		return "not a snapshot file (bad magic)";
	if (header->version != SNAPSHOT_FILE_VERSION)
		return "unsupported format version";
	if (header->header_size != sizeof(*header) ||
	    header->checksum_header !=
	            skuld_checksum(header, offsetof(struct snapshot_header, checksum_header)))
		return "header checksum mismatch";
	for (size_t i = 0; i < sizeof(header->reserved); i++) {
		if (header->reserved[i] != 0)
			return "reserved header bytes are not zero";
	}
	uint64_t sections = header->ledger_size + header->service_size;
	if (header->ledger_size > file_size || header->service_size > file_size ||
	    sizeof(*header) + sections + sizeof(struct snapshot_trailer) != file_size)
		return "section sizes do not add up to the file size";
	if (header->event_next == 0 || header->event_next - 1 != number)
		return "named for another log position";
	if (header->segment == 0 || header->offset < LOG_BLOCK_SIZE ||
	    header->offset % LOG_BLOCK_SIZE != 0 || header->write_next < 2 ||
	    skuld_u128_is_zero(header->log_id))
		return "not a log position";
	const struct ledger *ledger = service_ledger((struct service *)service);
	if (ledger_config_fingerprint_version(ledger_configuration(ledger),
	                                      header->config_fingerprint) == 0)
		return "taken with other ledger capacities (configuration fingerprint differs)";
	return NULL;
}

/* Rule 4: the whole-file checksum. */
static int checksum_check(struct file_in *in, uint64_t file_size, uint64_t expected)
{
	XXH3_state_t *hash = XXH3_createState();
	if (hash == NULL)
		return -ENOMEM;
	XXH3_64bits_reset(hash);
	uint64_t covered = file_size - sizeof(uint64_t);
	int ret = 0;
	for (uint64_t at = 0; ret == 0 && at < covered; at += SNAPSHOT_IO_SIZE) {
		size_t piece =
		        covered - at < SNAPSHOT_IO_SIZE ? (size_t)(covered - at) : SNAPSHOT_IO_SIZE;
		ret = disk_pread_all(in->fd, in->buffer, piece, at);
		if (ret == 0)
			XXH3_64bits_update(hash, in->buffer, piece);
	}
	if (ret == 0 && XXH3_64bits_digest(hash) != expected)
		ret = -EBADMSG;
	XXH3_freeState(hash);
	return ret;
}

/* Rule 5: the sections. */
static int sections_load(struct service *service, struct file_in *in,
                         const struct snapshot_header *header, const struct log_position *position,
                         char *reason, size_t reason_size)
{
	struct snapshot_source source = {.read = file_in_read, .context = in};
	char why[200] = "";
	in->offset = sizeof(*header);
	in->end = sizeof(*header) + header->ledger_size;
	in->filled = 0;
	int ret = ledger_snapshot_load(service_ledger(service), &source, why, sizeof(why));
	if (ret == 0 && in->offset != in->end) {
		snprintf(why, sizeof(why), "%" PRIu64 " bytes after its end", in->end - in->offset);
		ret = -EBADMSG;
	}
	if (ret != 0) {
		snprintf(reason, reason_size, "ledger section: %s", why);
		return ret == -ENODATA ? -EBADMSG : ret;
	}
	in->end += header->service_size;
	ret = service_snapshot_load(service, &source, position, why, sizeof(why));
	if (ret == 0 && in->offset != in->end) {
		snprintf(why, sizeof(why), "service section: %" PRIu64 " bytes after its end",
		         in->end - in->offset);
		ret = -EBADMSG;
	}
	if (ret != 0) {
		snprintf(reason, reason_size, "%s", why);
		return ret == -ENODATA ? -EBADMSG : ret;
	}
	return 0;
}

int snapshot_read(struct service *service, const char *path, struct log_position *position,
                  char *reason, size_t reason_size)
{
	const char *name = strrchr(path, '/');
	name = name != NULL ? name + 1 : path;
	uint64_t number = 0;
	if (!snapshot_name_parse(name, ".sks", &number)) {
		snprintf(reason, reason_size, "not a snapshot file name");
		return -EINVAL;
	}
	struct file_in in = {.fd = -1};
	in.buffer = malloc(SNAPSHOT_IO_SIZE);
	if (in.buffer == NULL) {
		snprintf(reason, reason_size, "out of memory");
		return -ENOMEM;
	}
	int ret = disk_open(path, O_RDONLY);
	in.fd = ret;
	uint64_t file_size = 0;
	if (ret >= 0)
		ret = disk_size(in.fd, &file_size);
	struct snapshot_header header;
	struct snapshot_trailer trailer;
	if (ret >= 0 && file_size < sizeof(header) + sizeof(trailer)) {
		snprintf(reason, reason_size, "%" PRIu64 " bytes: too short", file_size);
		ret = -EBADMSG;
		goto done;
	}
	if (ret >= 0)
		ret = disk_pread_all(in.fd, &header, sizeof(header), 0);
	if (ret >= 0)
		ret = disk_pread_all(in.fd, &trailer, sizeof(trailer), file_size - sizeof(trailer));
	if (ret < 0) {
		snprintf(reason, reason_size, "reading: %s", strerror(-ret));
		goto done;
	}
	const char *wrong = header_wrong(&header, file_size, number, service);
	if (wrong == NULL && trailer.file_size != file_size)
		wrong = "trailer file size differs from the file's";
	if (wrong != NULL) {
		snprintf(reason, reason_size, "%s", wrong);
		ret = -EBADMSG;
		goto done;
	}
	ret = checksum_check(&in, file_size, trailer.checksum);
	if (ret != 0) {
		snprintf(reason, reason_size, "%s",
		         ret == -EBADMSG ? "file checksum mismatch" : strerror(-ret));
		goto done;
	}
	*position = (struct log_position){
	        .segment = header.segment,
	        .offset = header.offset,
	        .write_next = header.write_next,
	        .event_next = header.event_next,
	        .checksum_prev = header.checksum_prev,
	        .log_id = header.log_id,
	};
	ret = sections_load(service, &in, &header, position, reason, reason_size);
done:
	if (in.fd >= 0)
		disk_close(in.fd);
	free(in.buffer);
	return ret < 0 ? ret : 0;
}

/* ---- The schedule ----------------------------------------------------------------- */

struct snapshotter {
	struct snapshot_config config;
	char dir[LOG_PATH_SIZE];
	uint64_t event_next;          /* what the newest snapshot covers: events before this */
	uint64_t last_ns;             /* monotonic time of the newest snapshot (or start) */
	uint64_t retry_ns;            /* no new attempt before this (after a failure) */
	pid_t child;                  /* writing, or 0 */
	int durable_fd;               /* our end of its pipe, -1 when none */
	uint64_t durable_write;       /* the last write it covers: durable before the byte */
	struct log_position position; /* its position */
	uint64_t started_ns;          /* monotonic, at fork */
	uint64_t fork_ns;             /* how long fork() took */
	struct chain_head head;       /* the newest exported chain head */
	bool head_new;                /* head changed: publish it in STATS */
};

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* Removes snapshot-*.tmp (a writer that died) from dir. */
static void temporaries_remove(const char *dir)
{
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	if (snapshot_list_suffix(dir, ".tmp", &numbers, &count) != 0)
		return;
	for (uint32_t i = 0; i < count; i++) {
		char path[SNAPSHOT_PATH_SIZE];
		if (snapshot_path(path, sizeof(path), dir, numbers[i], ".tmp") == 0 &&
		    disk_unlink(path) == 0)
			fprintf(stderr, "skuld: removed %s, left by a snapshot writer that died\n",
			        path);
	}
	free(numbers);
}

/* Keeps the newest `keep` snapshots of dir, removes the others. */
static void retention(const struct snapshotter *snapshotter)
{
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	if (snapshot_list(snapshotter->dir, &numbers, &count) != 0)
		return;
	for (uint32_t i = snapshotter->config.keep; i < count; i++) {
		char path[SNAPSHOT_PATH_SIZE];
		if (snapshot_path(path, sizeof(path), snapshotter->dir, numbers[i], ".sks") != 0)
			continue;
		int ret = disk_unlink(path);
		if (ret != 0 && ret != -ENOENT)
			fprintf(stderr, "skuld: warning: removing old snapshot %s: %s\n", path,
			        strerror(-ret));
		if (snapshot_path(path, sizeof(path), snapshotter->dir, numbers[i], ".head") == 0)
			disk_unlink(path); /* its chain head, if it has one */
	}
	free(numbers);
}

static void head_load(struct snapshotter *snapshotter);

int snapshotter_create(struct snapshotter **out, const struct snapshot_config *config,
                       uint64_t event_next, uint64_t mono_ns)
{
	*out = NULL;
	if (config->dir == NULL || strlen(config->dir) + SNAPSHOT_NAME_SIZE + 2 > LOG_PATH_SIZE ||
	    config->keep == 0)
		return -EINVAL;
	struct snapshotter *snapshotter = calloc(1, sizeof(*snapshotter));
	if (snapshotter == NULL)
		return -ENOMEM;
	snapshotter->config = *config;
	snprintf(snapshotter->dir, sizeof(snapshotter->dir), "%s", config->dir);
	snapshotter->config.dir = snapshotter->dir;
	snapshotter->event_next = event_next;
	snapshotter->last_ns = mono_ns;
	snapshotter->durable_fd = -1;
	temporaries_remove(snapshotter->dir);
	head_load(snapshotter);
	*out = snapshotter;
	return 0;
}

static void snapshot_report(const struct snapshotter *snapshotter,
                            const struct log_position *position, uint64_t took_ns, uint64_t fork_ns,
                            const char *how)
{
	char path[SNAPSHOT_PATH_SIZE];
	struct stat status;
	uint64_t size = 0;
	if (snapshot_path(path, sizeof(path), snapshotter->dir, position->event_next - 1, ".sks") ==
	            0 &&
	    stat(path, &status) == 0)
		size = (uint64_t)status.st_size;
	fprintf(stderr,
	        "skuld: snapshot %s: events 1..%" PRIu64 ", %.1f MiB, %.3f s %s (fork %.1f ms); "
	        "the log resumes at write %" PRIu64 ", segment %" PRIu64 " offset %" PRIu64 "\n",
	        path, position->event_next - 1, (double)size / (1024.0 * 1024.0),
	        (double)took_ns / 1e9, how, (double)fork_ns / 1e6, position->write_next,
	        position->segment, position->offset);
}

/* The child is done (status from waitpid). */
static void child_finished(struct snapshotter *snapshotter, int status, uint64_t mono_ns)
{
	pid_t pid = snapshotter->child;
	snapshotter->child = 0;
	if (snapshotter->durable_fd >= 0)
		close(snapshotter->durable_fd);
	snapshotter->durable_fd = -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == SNAPSHOT_CHILD_OK) {
		snapshot_report(snapshotter, &snapshotter->position,
		                mono_ns - snapshotter->started_ns, snapshotter->fork_ns,
		                "in the background");
		snapshotter->event_next = snapshotter->position.event_next;
		snapshotter->last_ns = mono_ns;
		if (chain_head_read(snapshotter->dir, snapshotter->position.event_next - 1,
		                    &snapshotter->head) == 0)
			snapshotter->head_new = true;
		retention(snapshotter);
		return;
	}
	if (WIFEXITED(status))
		fprintf(stderr,
		        "skuld: snapshot of events 1..%" PRIu64 " failed (writer %d exited %d)\n",
		        snapshotter->position.event_next - 1, (int)pid, WEXITSTATUS(status));
	else
		fprintf(stderr, "skuld: snapshot of events 1..%" PRIu64 " failed (writer %d: %s)\n",
		        snapshotter->position.event_next - 1, (int)pid,
		        strsignal(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
	snapshotter->retry_ns = mono_ns + SNAPSHOT_RETRY_NS;
}

/* Reads and checks (magic, header checksum) the header of the snapshot at
 * path. Returns 0 or -errno / -EBADMSG. */
static int header_read(const char *path, struct snapshot_header *header)
{
	int fd = disk_open(path, O_RDONLY);
	if (fd < 0)
		return fd;
	int ret = disk_pread_all(fd, header, sizeof(*header), 0);
	disk_close(fd);
	if (ret == 0 &&
	    (header->magic != SNAPSHOT_FILE_MAGIC ||
	     header->checksum_header !=
	             skuld_checksum(header, offsetof(struct snapshot_header, checksum_header))))
		ret = -EBADMSG;
	return ret;
}

/* The segment recovery starts in from the oldest snapshot that stays (the
 * keep-th newest), with that snapshot's path; 0 when it cannot be read. */
static uint64_t retention_boundary(const struct snapshotter *snapshotter, char *path,
                                   size_t path_size)
{
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	if (snapshot_list(snapshotter->dir, &numbers, &count) != 0 || count == 0) {
		free(numbers);
		return 0;
	}
	uint32_t oldest =
	        count < snapshotter->config.keep ? count - 1 : snapshotter->config.keep - 1;
	uint64_t boundary = 0;
	struct snapshot_header header;
	if (snapshot_path(path, path_size, snapshotter->dir, numbers[oldest], ".sks") == 0 &&
	    header_read(path, &header) == 0)
		boundary = header.segment;
	free(numbers);
	return boundary;
}

/* After a snapshot: moves old log segments out of the live directory
 * (retention.h). Failures are reported and change nothing acknowledged. */
static void retention_apply(const struct service *service, const struct snapshotter *snapshotter)
{
	const struct snapshot_config *config = &snapshotter->config;
	if (config->log_dir == NULL ||
	    (config->retain.keep_bytes == 0 && config->retain.keep_age_ns == 0))
		return;
	char path[SNAPSHOT_PATH_SIZE];
	uint64_t boundary = retention_boundary(snapshotter, path, sizeof(path));
	bool deleting = config->retain.archive_dir == NULL || config->retain.archive_dir[0] == '\0';
	uint64_t replies = service_reply_segment_min(service);
	if (deleting && replies != 0 && replies < boundary)
		boundary = replies; /* a saved reply must stay readable */
	if (boundary == 0)
		return;
	char message[LOG_PATH_SIZE + 256] = "";
	int moved =
	        retention_run(config->log_dir, path, config->snapshot_archive, boundary,
	                      clock_ns(CLOCK_REALTIME), &config->retain, message, sizeof(message));
	if (moved < 0)
		fprintf(stderr, "skuld: warning: log retention: %s\n", message);
	else if (moved > 0)
		fprintf(stderr,
		        "skuld: log retention: %d segment(s) before segment %" PRIu64
		        " %s; %s kept in %s\n",
		        moved, boundary, deleting ? "removed" : "moved to the archive", path,
		        config->snapshot_archive);
}

/* Extends the SHA-256 chain to the snapshot just written (chain_export.h):
 * from the newest older snapshot with a head, or from the start of the log. */
static void chain_apply(const struct snapshotter *snapshotter, const struct log_position *position)
{
	const struct snapshot_config *config = &snapshotter->config;
	if (config->chain_heads == NULL || config->log_dir == NULL)
		return;
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	if (snapshot_list(snapshotter->dir, &numbers, &count) != 0)
		return;
	uint64_t number = position->event_next - 1;
	struct chain_head start_head;
	struct log_position start;
	bool found = false;
	for (uint32_t i = 0; i < count && !found; i++) {
		char path[SNAPSHOT_PATH_SIZE];
		struct snapshot_header header;
		if (numbers[i] >= number ||
		    chain_head_read(snapshotter->dir, numbers[i], &start_head) != 0 ||
		    snapshot_path(path, sizeof(path), snapshotter->dir, numbers[i], ".sks") != 0 ||
		    header_read(path, &header) != 0)
			continue;
		start = (struct log_position){
		        .segment = header.segment,
		        .offset = header.offset,
		        .write_next = header.write_next,
		        .event_next = header.event_next,
		        .checksum_prev = header.checksum_prev,
		        .log_id = header.log_id,
		};
		found = true;
	}
	free(numbers);
	char first[LOG_PATH_SIZE + 64], name[64];
	struct stat status;
	log_segment_name(name, sizeof(name), 1);
	snprintf(first, sizeof(first), "%s/%s", config->log_dir, name);
	if (!found && stat(first, &status) != 0) {
		fprintf(stderr,
		        "skuld: warning: no chain head for snapshot %" PRIu64
		        ": no earlier head, and the log no longer starts at segment 1\n",
		        number);
		return;
	}
	char message[LOG_PATH_SIZE + 256];
	struct chain_head head;
	if (chain_export(config->log_dir, snapshotter->dir, number, found ? &start : NULL,
	                 &start_head, position, config->chain_heads, &head, message,
	                 sizeof(message)) != 0)
		fprintf(stderr, "skuld: warning: chain head at event %" PRIu64 ": %s\n", number,
		        message);
}

/* The newest head of dir into snapshotter (at start-up). */
static void head_load(struct snapshotter *snapshotter)
{
	uint64_t *numbers = NULL;
	uint32_t count = 0;
	if (snapshot_list(snapshotter->dir, &numbers, &count) != 0)
		return;
	for (uint32_t i = 0; i < count; i++) {
		if (chain_head_read(snapshotter->dir, numbers[i], &snapshotter->head) == 0) {
			snapshotter->head_new = true;
			break;
		}
	}
	free(numbers);
}

/* The forked child: never returns. */
static void child_main(const struct service *service, const struct snapshotter *snapshotter,
                       pid_t parent, int durable_fd)
{
	/* Killed with the parent (which then never says the log is durable). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(SNAPSHOT_CHILD_GONE);
	/* Nothing of the parent's but stderr and the pipe: not the ring, not
	 * a socket, not the data directory's lock. */
	if (durable_fd > 3)
		close_range(3, (unsigned)durable_fd - 1, 0);
	close_range((unsigned)durable_fd + 1, ~0u, 0);
	char message[LOG_PATH_SIZE + 256];
	uint64_t size = 0;
	int ret = snapshot_write(service, snapshotter->dir, &snapshotter->position,
	                         clock_ns(CLOCK_REALTIME), durable_fd, &size, message,
	                         sizeof(message));
	if (ret == -ECANCELED)
		_exit(SNAPSHOT_CHILD_GONE);
	if (ret != 0) {
		fprintf(stderr, "skuld: snapshot writer: %s\n", message);
		_exit(SNAPSHOT_CHILD_ERROR);
	}
	chain_apply(snapshotter, &snapshotter->position);
	retention_apply(service, snapshotter);
	_exit(SNAPSHOT_CHILD_OK);
}

static void child_start(struct snapshotter *snapshotter, const struct service *service,
                        const struct log_position *position, uint64_t mono_ns)
{
	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
		fprintf(stderr, "skuld: snapshot: pipe: %s\n", strerror(errno));
		snapshotter->retry_ns = mono_ns + SNAPSHOT_RETRY_NS;
		return;
	}
	snapshotter->position = *position;
	snapshotter->durable_write = position->write_next - 1;
	pid_t parent = getpid();
	uint64_t before = clock_ns(CLOCK_MONOTONIC);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		close(pipe_fds[1]);
		child_main(service, snapshotter, parent, pipe_fds[0]);
	}
	uint64_t after = clock_ns(CLOCK_MONOTONIC);
	close(pipe_fds[0]);
	if (pid < 0) {
		fprintf(stderr, "skuld: snapshot: fork: %s\n", strerror(errno));
		close(pipe_fds[1]);
		snapshotter->retry_ns = mono_ns + SNAPSHOT_RETRY_NS;
		return;
	}
	snapshotter->child = pid;
	snapshotter->durable_fd = pipe_fds[1];
	snapshotter->started_ns = before;
	snapshotter->fork_ns = after - before;
}

/* Tells the child the log is durable up to its position, once it is. */
static void child_tell(struct snapshotter *snapshotter, const struct service *service)
{
	if (snapshotter->durable_fd < 0 ||
	    service_durable_write(service) < snapshotter->durable_write)
		return;
	char byte = 'd';
	ssize_t sent = write(snapshotter->durable_fd, &byte, 1);
	(void)sent; /* an empty pipe takes one byte; a dead child is reaped below */
	close(snapshotter->durable_fd);
	snapshotter->durable_fd = -1;
}

static bool snapshot_due(const struct snapshotter *snapshotter, uint64_t event_next,
                         uint64_t mono_ns)
{
	if (event_next <= snapshotter->event_next || mono_ns < snapshotter->retry_ns)
		return false;
	uint64_t events = event_next - snapshotter->event_next;
	const struct snapshot_config *config = &snapshotter->config;
	return (config->events != 0 && events >= config->events) ||
	       (config->interval_ns != 0 && mono_ns - snapshotter->last_ns >= config->interval_ns);
}

void snapshotter_tick(struct snapshotter *snapshotter, struct service *service, uint64_t mono_ns,
                      bool stopping)
{
	if (snapshotter == NULL)
		return;
	if (snapshotter->head_new) {
		struct skuld_stats *stats = service_stats(service);
		stats->chain_head_event = snapshotter->head.sequence;
		memcpy(stats->chain_head, snapshotter->head.hash, sizeof(stats->chain_head));
		snapshotter->head_new = false;
	}
	if (snapshotter->child != 0) {
		child_tell(snapshotter, service);
		int status = 0;
		pid_t done = waitpid(snapshotter->child, &status, WNOHANG);
		if (done == snapshotter->child)
			child_finished(snapshotter, status, mono_ns);
		return;
	}
	if (stopping)
		return;
	struct log_position position;
	if (service_snapshot_position(service, &position) != 0 ||
	    !snapshot_due(snapshotter, position.event_next, mono_ns))
		return;
	child_start(snapshotter, service, &position, mono_ns);
	child_tell(snapshotter, service);
}

int snapshotter_finish(struct snapshotter *snapshotter, struct service *service)
{
	if (snapshotter == NULL)
		return 0;
	if (snapshotter->child != 0) {
		child_tell(snapshotter, service);
		int status = 0;
		while (waitpid(snapshotter->child, &status, 0) < 0 && errno == EINTR)
			;
		child_finished(snapshotter, status, clock_ns(CLOCK_MONOTONIC));
	}
	struct log_position position;
	if (service_snapshot_position(service, &position) != 0 ||
	    position.event_next <= snapshotter->event_next)
		return 0;
	uint64_t started = clock_ns(CLOCK_MONOTONIC);
	char message[LOG_PATH_SIZE + 256];
	uint64_t size = 0;
	int ret = snapshot_write(service, snapshotter->dir, &position, clock_ns(CLOCK_REALTIME), -1,
	                         &size, message, sizeof(message));
	if (ret != 0) {
		fprintf(stderr, "skuld: warning: shutdown snapshot not written: %s\n", message);
		return ret;
	}
	snapshot_report(snapshotter, &position, clock_ns(CLOCK_MONOTONIC) - started, 0,
	                "at shutdown");
	chain_apply(snapshotter, &position);
	snapshotter->event_next = position.event_next;
	retention(snapshotter);
	return 0;
}

void snapshotter_destroy(struct snapshotter *snapshotter)
{
	if (snapshotter == NULL)
		return;
	if (snapshotter->child != 0) {
		kill(snapshotter->child, SIGKILL);
		while (waitpid(snapshotter->child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (snapshotter->durable_fd >= 0)
		close(snapshotter->durable_fd);
	free(snapshotter);
}
