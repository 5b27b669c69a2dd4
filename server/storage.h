/*
 * storage.h — the seam between skuld and the system calls that make data
 * durable: one function table, chosen once at start-up.
 *
 * Owns: the table (struct storage) and the choice of table. The production
 * table calls the kernel and nothing else. Builds with the CMake option
 * SKULD_TEST_HOOKS (on wherever SKULD_TESTS is, off in a build without
 * tests) can also run a test table, which adds fault injection and the
 * power-loss model (storage_model.h) in front of the kernel calls; without
 * that option the test switches below are refused, never ignored.
 *
 * What goes through the seam:
 *   - os: every synchronous call of the log (server/core/log*.c takes it as
 *     its struct log_os): open/create, close, pread, pwrite, fdatasync,
 *     fsync (also of a directory: open O_DIRECTORY + fsync), fallocate,
 *     fstat, rename. Recovery, log_discard_torn and segment creation use it.
 *   - unlink, for files that are removed (snapshots, retention).
 *   - The loop's asynchronous group-commit write (io_uring, server/loop.c is
 *     the only file that includes liburing): the loop calls write_begin
 *     before it submits a write, write_end with the write's completion, and
 *     sync_end with the completion of the fdatasync linked to it, and acts
 *     on the results these return, not on the raw completions. That is how
 *     faults reach the real completion path, and how the power-loss model
 *     learns exactly what the kernel made durable.
 * Reads that only look at data already durable (service.c reading a saved
 * reply back) do not need the seam and do not use it.
 *
 * Rules for callers (what makes the model's view exact):
 *   - Report every write before it can reach the file (write_begin, or a
 *     pwrite through os) and every successful fdatasync / fsync after the
 *     kernel returned it, before anything depending on it is acknowledged.
 *   - Never report a sync that was not made (a deliberately broken build,
 *     SKULD_BROKEN_SKIP_FDATASYNC, skips the fdatasync and so reports none).
 *
 * Test switches (environment variables, test builds only):
 *   SKULD_TEST_POWER_MODEL=DIR   keep the power-loss model's journal in DIR
 *                                (storage_model.h); DIR must exist and be on
 *                                the same file system as the data directory.
 *   SKULD_TEST_STORAGE_FAULT=SPEC  fail one call: SPEC is POINT=ERRNO@N, POINT
 *                                one of write (the loop's group-commit write
 *                                completion), fdatasync (its fdatasync
 *                                completion), fallocate (segment
 *                                pre-allocation), create (open with O_CREAT);
 *                                ERRNO one of EIO, ENOSPC, EDQUOT, EROFS; N the
 *                                1-based count of calls at POINT since start.
 *                                E.g. "write=EIO@5": the fifth group-commit
 *                                write completes with -EIO (after the kernel
 *                                really wrote it: as a real EIO, the bytes may
 *                                or may not be on disk).
 * With either set, skuld prints one "TEST-ONLY" warning line to stderr.
 * Fault counts are per process (a forked snapshot writer counts on from
 * its parent's count); an injected fdatasync failure is not recorded as
 * durable by the model.
 *
 * Errors: the table's functions behave like the libc functions of the same
 * names (-1 and errno); the hooks return 0 / a byte count or -errno.
 */
#ifndef SKULD_SERVER_STORAGE_H
#define SKULD_SERVER_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct storage {
	struct log_os os; /* synchronous calls; handed to the log reader and writer */
	int (*unlink)(const char *path);
	/* Before a write of size bytes at offset of fd is submitted. Returns 0,
	 * or -errno: then the write must not be submitted (it failed). */
	int (*write_begin)(int fd, uint64_t offset, uint32_t size);
	/* The write's completion (bytes written or -errno). Returns what the
	 * caller must act on: result itself, or an injected -errno. */
	int (*write_end)(int fd, uint64_t offset, uint32_t size, int result);
	/* The completion of an fdatasync of fd that the caller submitted
	 * (0 or -errno). Returns what the caller must act on. */
	int (*sync_end)(int fd, int result);
};

/* The kernel, with nothing in front. */
extern const struct storage storage_kernel;

/* Chooses the table for this process from the test switches above (the
 * kernel's when none is set). data_dir is the server's data directory (the
 * model covers every file under it). Call once, before any other storage
 * function. Returns 0, or -EINVAL / -errno with one line in message: a
 * switch that is malformed, or set in a build without SKULD_TEST_HOOKS. */
int storage_setup(const char *data_dir, char *message, size_t message_size);

/* The table chosen by storage_setup (storage_kernel before it). Valid for
 * the life of the process; a forked child inherits it. */
const struct storage *storage_get(void);

/* &storage_get()->os, for the log's functions. */
const struct log_os *storage_os(void);

#endif /* SKULD_SERVER_STORAGE_H */
