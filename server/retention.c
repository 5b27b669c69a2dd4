/*
 * retention.c — moving old log segments out of the live directory
 * (retention.h).
 */
#include "retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "storage.h"

uint32_t retention_plan(const struct retention_segment *segments, uint32_t count, uint64_t boundary,
                        uint64_t now_ns, const struct retention_config *config)
{
	if (config->keep_bytes == 0 && config->keep_age_ns == 0)
		return 0;
	uint64_t total = 0;
	for (uint32_t i = 0; i < count; i++)
		total += segments[i].bytes;
	uint32_t leave = 0;
	for (; leave < count && segments[leave].index < boundary; leave++) {
		const struct retention_segment *segment = &segments[leave];
		bool too_big = config->keep_bytes != 0 && total > config->keep_bytes;
		bool too_old = config->keep_age_ns != 0 && segment->created_ns != 0 &&
		               now_ns > segment->created_ns &&
		               now_ns - segment->created_ns > config->keep_age_ns;
		if (!too_big && !too_old)
			break;
		total -= segment->bytes;
	}
	return leave;
}

/* ---- Execution ----------------------------------------------------------- */

static int compare_index(const void *a, const void *b)
{
	const struct retention_segment *x = a, *y = b;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The creation time in a segment's header, when the header checks out;
 * else 0 (such a segment is never old: it stays for recovery to judge). */
static uint64_t segment_created(const char *path)
{
	const struct log_os *os = storage_os();
	int fd = os->open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct log_segment_header header;
	ssize_t got = os->pread(fd, &header, sizeof(header), 0);
	os->close(fd);
	if (got != (ssize_t)sizeof(header) || header.magic != LOG_SEGMENT_MAGIC ||
	    skuld_checksum(&header, offsetof(struct log_segment_header, checksum_header)) !=
	            header.checksum_header)
		return 0;
	return header.created_ns;
}

/* The segments of log_dir, sorted; *segments malloc'd. */
int retention_segments(const char *log_dir, struct retention_segment **segments, uint32_t *count)
{
	*segments = NULL;
	*count = 0;
	DIR *dir = opendir(log_dir);
	if (dir == NULL)
		return -errno;
	uint32_t capacity = 0;
	struct dirent *entry;
	int ret = 0;
	while (ret == 0 && (entry = readdir(dir)) != NULL) {
		uint64_t index;
		char tail[8];
		if (sscanf(entry->d_name, "log-%16" SCNx64 ".sk%1s", &index, tail) != 2 ||
		    strcmp(tail, "l") != 0 || strlen(entry->d_name) != 24)
			continue;
		if (*count == capacity) {
			capacity = capacity ? 2 * capacity : 64;
			void *grown = realloc(*segments, capacity * sizeof(**segments));
			if (grown == NULL) {
				ret = -ENOMEM;
				break;
			}
			*segments = grown;
		}
		char path[LOG_PATH_SIZE + 64];
		snprintf(path, sizeof(path), "%s/%s", log_dir, entry->d_name);
		struct stat status;
		if (stat(path, &status) != 0)
			continue;
		(*segments)[(*count)++] = (struct retention_segment){
		        .index = index,
		        .bytes = (uint64_t)status.st_size,
		        .created_ns = segment_created(path),
		};
	}
	closedir(dir);
	if (ret == 0 && *count > 1)
		qsort(*segments, *count, sizeof(**segments), compare_index);
	return ret;
}

static int fsync_dir(const char *path)
{
	const struct log_os *os = storage_os();
	int fd = os->open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int ret = os->fsync(fd) == 0 ? 0 : -errno;
	os->close(fd);
	return ret;
}

/* Copies from to to (a new file), fsynced (retention.h). */
int retention_copy(const char *from, const char *to)
{
	const struct log_os *os = storage_os();
	int in = os->open(from, O_RDONLY | O_CLOEXEC, 0);
	if (in < 0)
		return -errno;
	int out = os->open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		int ret = -errno;
		os->close(in);
		return ret;
	}
	static char buffer[1u << 20];
	int ret = 0;
	for (off_t offset = 0;;) {
		ssize_t got = os->pread(in, buffer, sizeof(buffer), offset);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			ret = got < 0 ? -errno : 0;
			break;
		}
		if (os->pwrite(out, buffer, (size_t)got, offset) != got) {
			ret = -EIO;
			break;
		}
		offset += got;
	}
	if (ret == 0 && os->fsync(out) != 0)
		ret = -errno;
	os->close(in);
	os->close(out);
	if (ret != 0)
		storage_get()->unlink(to);
	return ret;
}

/* Puts from at to: a rename, or across file systems a copy (the caller
 * removes from). Returns 1 when from still exists, 0 when renamed. */
static int file_place(const char *from, const char *to)
{
	if (storage_os()->rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return -errno;
	int ret = retention_copy(from, to);
	return ret < 0 ? ret : 1;
}

/* Puts a hard link (or a copy) of from at dir/<from's name>, unless one is
 * there already. Returns 0 or -errno. */
static int file_keep(const char *from, const char *dir)
{
	const char *name = strrchr(from, '/');
	name = name != NULL ? name + 1 : from;
	char to[LOG_PATH_SIZE + 64];
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	struct stat status;
	if (stat(to, &status) == 0)
		return 0; /* kept by an earlier run */
	if (link(from, to) != 0)
		return retention_copy(from, to);
	return 0;
}

/* The boundary snapshot, and its chain head file when it has one (so that
 * skuld-replay verify can go on from it once the segments before it are
 * gone), into snapshot_archive. */
static int snapshot_keep(const char *snapshot_path, const char *snapshot_archive)
{
	if (snapshot_path == NULL || snapshot_archive == NULL)
		return 0;
	int ret = file_keep(snapshot_path, snapshot_archive);
	size_t length = strlen(snapshot_path);
	char head[LOG_PATH_SIZE + 64];
	struct stat status;
	if (ret == 0 && length > 4 && length < sizeof(head) - 2 &&
	    strcmp(snapshot_path + length - 4, ".sks") == 0) {
		snprintf(head, sizeof(head), "%.*s.head", (int)(length - 4), snapshot_path);
		if (stat(head, &status) == 0)
			ret = file_keep(head, snapshot_archive);
	}
	return ret == 0 ? fsync_dir(snapshot_archive) : ret;
}

int retention_run(const char *log_dir, const char *snapshot_path, const char *snapshot_archive,
                  uint64_t boundary, uint64_t now_ns, const struct retention_config *config,
                  char *message, size_t message_size)
{
	struct retention_segment *segments = NULL;
	uint32_t count = 0;
	int ret = retention_segments(log_dir, &segments, &count);
	if (ret != 0) {
		snprintf(message, message_size, "listing %s: %s", log_dir, strerror(-ret));
		return ret;
	}
	uint32_t leave = retention_plan(segments, count, boundary, now_ns, config);
	if (leave > 0 && (ret = snapshot_keep(snapshot_path, snapshot_archive)) != 0) {
		snprintf(message, message_size, "keeping %s in %s: %s", snapshot_path,
		         snapshot_archive, strerror(-ret));
		leave = 0;
	}
	bool archive = config->archive_dir != NULL && config->archive_dir[0] != '\0';
	uint32_t done = 0;
	for (uint32_t i = 0; ret == 0 && i < leave; i++) {
		char name[64], from[LOG_PATH_SIZE + 64], to[LOG_PATH_SIZE + 64];
		log_segment_name(name, sizeof(name), segments[i].index);
		snprintf(from, sizeof(from), "%s/%s", log_dir, name);
		int copied = 1;
		if (archive) {
			snprintf(to, sizeof(to), "%s/%s", config->archive_dir, name);
			copied = file_place(from, to);
			if (copied >= 0)
				ret = fsync_dir(config->archive_dir);
			else
				ret = copied;
		}
		if (ret == 0 && copied == 1 && storage_get()->unlink(from) != 0)
			ret = -errno;
		if (ret != 0)
			snprintf(message, message_size, "%s %s: %s",
			         archive ? "archiving" : "removing", from, strerror(-ret));
		else
			done++;
	}
	if (done > 0 && ret == 0)
		ret = fsync_dir(log_dir);
	free(segments);
	return ret < 0 ? ret : (int)done;
}
