/*
 * log_internal.h — what log.c, log_reader.c and log_writer.c share and
 * nobody else needs. Not installed, not included outside server/core/log*.c.
 */
#ifndef SKULD_LOG_INTERNAL_H
#define SKULD_LOG_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* Always-on assertion for programmer errors (never for disk bytes). */
#ifndef SKULD_ASSERT
#define SKULD_ASSERT(condition)                                                                    \
	do {                                                                                       \
		if (!(condition)) {                                                                \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,       \
			        #condition);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
#endif

#define LOG_SEGMENT_NAME_SIZE 25u /* "log-" + 16 hex + ".skl" + NUL */

static inline uint64_t log_align_up(uint64_t value)
{
	return (value + LOG_BLOCK_SIZE - 1) & ~(uint64_t)(LOG_BLOCK_SIZE - 1);
}

/* Joins dir and the name of segment (plus suffix, may be "") into path.
 * Returns 0 or -ENAMETOOLONG. */
int log_segment_path(char *path, size_t size, const char *dir, uint64_t segment,
                     const char *suffix);

/* Fills the header checksum of a segment header / write header. */
uint64_t log_segment_header_checksum(const struct log_segment_header *header);
uint64_t log_write_header_checksum(const struct log_write_header *header);

/* 1 when size bytes at bytes are all zero. */
int log_bytes_zero(const uint8_t *bytes, uint64_t size);

/* pwrite of all size bytes (continuing after short writes) / pread of all
 * size bytes. Return 0, -errno, or -EIO for an unexpected end of file. */
int log_pwrite_all(const struct log_os *os, int fd, const void *bytes, uint64_t size,
                   uint64_t offset);
int log_pread_all(const struct log_os *os, int fd, void *bytes, uint64_t size, uint64_t offset);

/* Writes zeros over [offset, offset + size) of fd. Returns 0 or -errno. */
int log_write_zeros(const struct log_os *os, int fd, uint64_t offset, uint64_t size);

/* fsync of the directory itself. Returns 0 or -errno. */
int log_fsync_dir(const struct log_os *os, const char *dir);

#endif /* SKULD_LOG_INTERNAL_H */
