/*
 * chain_export.c — the chain head at each snapshot (chain_export.h).
 */
#include "chain_export.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"

static void head_path(char *path, size_t size, const char *dir, uint64_t number)
{
	snprintf(path, size, "%s/snapshot-%016" PRIx64 ".head", dir, number);
}

/* Writes text to path (created or appended), fsynced. */
static int text_write(const char *path, const char *text, bool append)
{
	const struct log_os *os = storage_os();
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
	int fd = os->open(path, flags, 0644);
	if (fd < 0)
		return -errno;
	int ret = 0;
	size_t size = strlen(text);
	struct stat status;
	off_t offset = 0;
	if (append && os->fstat(fd, &status) == 0)
		offset = status.st_size;
	if (os->pwrite(fd, text, size, offset) != (ssize_t)size)
		ret = -EIO;
	if (ret == 0 && os->fsync(fd) != 0)
		ret = -errno;
	os->close(fd);
	return ret;
}

static int dir_sync(const char *dir)
{
	const struct log_os *os = storage_os();
	int fd = os->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int ret = os->fsync(fd) == 0 ? 0 : -errno;
	os->close(fd);
	return ret;
}

/* Hashes every record from start up to (not including) position's write. */
static int chain_walk(const char *log_dir, const struct log_position *start,
                      const struct log_position *position, struct chain *chain, char *message,
                      size_t message_size)
{
	struct log_reader *reader = NULL;
	int ret = log_reader_open(&reader, log_dir, storage_os());
	if (ret == 0 && start != NULL)
		ret = log_reader_seek(reader, start);
	if (ret != 0) {
		snprintf(message, message_size, "reading %s: %s", log_dir, strerror(-ret));
		log_reader_close(reader);
		return ret;
	}
	struct log_record record;
	enum log_status status;
	while ((status = log_reader_next(reader, &record)) == LOG_RECORD &&
	       record.write_sequence < position->write_next) {
		ret = chain_add_record(chain, &record);
		if (ret != 0)
			break;
	}
	/* The walk stops at the first record of a later write, or where the
	 * log ends: exactly at the snapshot's position (a snapshot at shutdown,
	 * or before anything else was written), never short of it. */
	struct log_position end;
	if (ret == 0 && status != LOG_RECORD &&
	    !((status == LOG_END_CLEAN || status == LOG_END_TORN) &&
	      log_reader_position(reader, &end) == 0 && end.write_next == position->write_next)) {
		const struct log_outcome *outcome = log_reader_outcome(reader);
		snprintf(message, message_size,
		         "the log ends before the snapshot's position (%s at "
		         "offset %llu: %s)",
		         outcome->file, (unsigned long long)outcome->offset, outcome->reason);
		ret = -EBADMSG;
	}
	log_reader_close(reader);
	return ret;
}

int chain_export(const char *log_dir, const char *snapshot_dir, uint64_t number,
                 const struct log_position *start, const struct chain_head *start_head,
                 const struct log_position *position, const char *heads_file,
                 struct chain_head *out, char *message, size_t message_size)
{
	struct chain *chain = NULL;
	int ret = chain_create(&chain);
	if (ret != 0) {
		snprintf(message, message_size, "SHA-256: %s", strerror(-ret));
		return ret;
	}
	chain_reset(chain, start != NULL ? start_head : NULL);
	ret = chain_walk(log_dir, start, position, chain, message, message_size);
	if (ret == 0)
		chain_head(chain, out);
	chain_destroy(chain);
	if (ret != 0)
		return ret;
	char text[CHAIN_TEXT_SIZE + 64], path[LOG_PATH_SIZE + 64];
	chain_format(out, text);
	size_t length = strlen(text);
	snprintf(text + length, sizeof(text) - length, "\n");
	head_path(path, sizeof(path), snapshot_dir, number);
	ret = text_write(path, text, false);
	if (ret == 0)
		ret = dir_sync(snapshot_dir);
	if (ret == 0) {
		time_t now = time(NULL);
		struct tm utc;
		gmtime_r(&now, &utc);
		text[length] = ' ';
		strftime(text + length + 1, sizeof(text) - length - 1, "%Y-%m-%dT%H:%M:%SZ\n",
		         &utc);
		ret = text_write(heads_file, text, true);
	}
	if (ret != 0)
		snprintf(message, message_size, "writing the chain head: %s", strerror(-ret));
	return ret;
}

int chain_head_read(const char *snapshot_dir, uint64_t number, struct chain_head *out)
{
	char path[LOG_PATH_SIZE + 64], text[CHAIN_TEXT_SIZE + 8] = "";
	head_path(path, sizeof(path), snapshot_dir, number);
	const struct log_os *os = storage_os();
	int fd = os->open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t got = os->pread(fd, text, sizeof(text) - 1, 0);
	os->close(fd);
	if (got <= 0)
		return -EINVAL;
	text[got] = '\0';
	char *end = strchr(text, '\n');
	if (end == NULL)
		return -EINVAL;
	*end = '\0';
	return chain_parse(text, out);
}
