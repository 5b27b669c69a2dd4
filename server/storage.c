/*
 * storage.c — the storage seam's tables (storage.h): the kernel's, and in
 * builds with SKULD_TEST_HOOKS the test table (fault injection in front of
 * the power-loss model, storage_model.c, in front of the kernel).
 *
 * Invariants:
 *   - The table is chosen once, by storage_setup, before any disk call;
 *     storage_get never changes its answer afterwards.
 *   - Without SKULD_TEST_HOOKS the test switches are refused, so a test that
 *     asks for a model or a fault never runs silently without it.
 *   - A fault fires exactly once, at the N-th call of its point.
 */
#define _GNU_SOURCE /* fallocate */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if SKULD_TEST_HOOKS
#include "storage_model.h"
#endif

/* ---- The kernel ------------------------------------------------------------------ */

static int kernel_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static uint64_t kernel_clock_ns(void)
{
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		return 0;
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static int kernel_write_begin(int fd, uint64_t offset, uint32_t size)
{
	(void)fd;
	(void)offset;
	(void)size;
	return 0;
}

static int kernel_write_end(int fd, uint64_t offset, uint32_t size, int result)
{
	(void)fd;
	(void)offset;
	(void)size;
	return result;
}

static int kernel_sync_end(int fd, int result)
{
	(void)fd;
	return result;
}

const struct storage storage_kernel = {
        .os =
                {
                        .open = kernel_open,
                        .close = close,
                        .pread = pread,
                        .pwrite = pwrite,
                        .fdatasync = fdatasync,
                        .fsync = fsync,
                        .fallocate = fallocate,
                        .fstat = fstat,
                        .rename = rename,
                        .clock_ns = kernel_clock_ns,
                },
        .unlink = unlink,
        .write_begin = kernel_write_begin,
        .write_end = kernel_write_end,
        .sync_end = kernel_sync_end,
};

static const struct storage *storage_current = &storage_kernel;

const struct storage *storage_get(void)
{
	return storage_current;
}

const struct log_os *storage_os(void)
{
	return &storage_current->os;
}

#if SKULD_TEST_HOOKS

/* ---- Test table: faults, then the model (or the kernel) ---------------------------- */

enum fault_point {
	FAULT_NONE = 0,
	FAULT_WRITE = 1,
	FAULT_FDATASYNC = 2,
	FAULT_FALLOCATE = 3,
	FAULT_CREATE = 4,
};

static struct {
	enum fault_point point;
	int error;      /* positive errno */
	uint64_t at;    /* the call that fails, 1-based */
	uint64_t calls; /* calls of point so far */
} fault;

static bool model_on;

/* Counts a call of point; true (errno set) when it is the one to fail. */
static bool fault_due(enum fault_point point)
{
	if (fault.point != point)
		return false;
	if (++fault.calls != fault.at)
		return false;
	fprintf(stderr, "skuld: TEST-ONLY: injecting %s at call %llu of this point\n",
	        strerror(fault.error), (unsigned long long)fault.at);
	errno = fault.error;
	return true;
}

static int test_open(const char *path, int flags, mode_t mode)
{
	if ((flags & O_CREAT) && fault_due(FAULT_CREATE))
		return -1;
	return model_on ? storage_model_open(path, flags, mode) : open(path, flags, mode);
}

static ssize_t test_pwrite(int fd, const void *buffer, size_t size, off_t offset)
{
	return model_on ? storage_model_pwrite(fd, buffer, size, offset)
	                : pwrite(fd, buffer, size, offset);
}

static int test_fdatasync(int fd)
{
	return model_on ? storage_model_fdatasync(fd) : fdatasync(fd);
}

static int test_fsync(int fd)
{
	return model_on ? storage_model_fsync(fd) : fsync(fd);
}

static int test_fallocate(int fd, int mode, off_t offset, off_t size)
{
	if (fault_due(FAULT_FALLOCATE))
		return -1;
	return model_on ? storage_model_fallocate(fd, mode, offset, size)
	                : fallocate(fd, mode, offset, size);
}

static int test_rename(const char *from, const char *to)
{
	return model_on ? storage_model_rename(from, to) : rename(from, to);
}

static int test_unlink(const char *path)
{
	return model_on ? storage_model_unlink(path) : unlink(path);
}

static int test_write_begin(int fd, uint64_t offset, uint32_t size)
{
	return model_on ? storage_model_write_begin(fd, offset, size) : 0;
}

static int test_write_end(int fd, uint64_t offset, uint32_t size, int result)
{
	(void)fd;
	(void)offset;
	(void)size;
	if (fault_due(FAULT_WRITE))
		return -fault.error;
	return result;
}

static int test_sync_end(int fd, int result)
{
	if (fault_due(FAULT_FDATASYNC))
		return -fault.error; /* and not recorded as durable */
	if (result == 0 && model_on)
		return storage_model_synced(fd);
	return result;
}

static const struct storage storage_test = {
        .os =
                {
                        .open = test_open,
                        .close = close,
                        .pread = pread,
                        .pwrite = test_pwrite,
                        .fdatasync = test_fdatasync,
                        .fsync = test_fsync,
                        .fallocate = test_fallocate,
                        .fstat = fstat,
                        .rename = test_rename,
                        .clock_ns = kernel_clock_ns,
                },
        .unlink = test_unlink,
        .write_begin = test_write_begin,
        .write_end = test_write_end,
        .sync_end = test_sync_end,
};

/* Parses POINT=ERRNO@N into fault. Returns 0 or -EINVAL. */
static int fault_parse(const char *spec)
{
	static const struct {
		const char *name;
		enum fault_point point;
	} points[] = {
	        {"write", FAULT_WRITE},
	        {"fdatasync", FAULT_FDATASYNC},
	        {"fallocate", FAULT_FALLOCATE},
	        {"create", FAULT_CREATE},
	};
	static const struct {
		const char *name;
		int error;
	} errors[] = {{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS}};
	const char *equals = strchr(spec, '=');
	const char *at = equals != NULL ? strchr(equals, '@') : NULL;
	if (equals == NULL || at == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		if (strlen(points[i].name) == (size_t)(equals - spec) &&
		    strncmp(spec, points[i].name, (size_t)(equals - spec)) == 0)
			fault.point = points[i].point;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (strlen(errors[i].name) == (size_t)(at - equals - 1) &&
		    strncmp(equals + 1, errors[i].name, (size_t)(at - equals - 1)) == 0)
			fault.error = errors[i].error;
	char *end = NULL;
	errno = 0;
	unsigned long long count = strtoull(at + 1, &end, 10);
	if (fault.point == FAULT_NONE || fault.error == 0 || errno != 0 || end == at + 1 ||
	    *end != '\0' || count == 0)
		return -EINVAL;
	fault.at = count;
	return 0;
}

int storage_setup(const char *data_dir, char *message, size_t message_size)
{
	const char *model_dir = getenv("SKULD_TEST_POWER_MODEL");
	const char *fault_spec = getenv("SKULD_TEST_STORAGE_FAULT");
	if ((model_dir == NULL || model_dir[0] == '\0') &&
	    (fault_spec == NULL || fault_spec[0] == '\0'))
		return 0;
	if (fault_spec != NULL && fault_spec[0] != '\0' && fault_parse(fault_spec) != 0) {
		snprintf(message, message_size,
		         "SKULD_TEST_STORAGE_FAULT='%s': expected POINT=ERRNO@N (POINT write, "
		         "fdatasync, fallocate or create; ERRNO EIO, ENOSPC, EDQUOT or EROFS; "
		         "N >= 1)",
		         fault_spec);
		return -EINVAL;
	}
	if (model_dir != NULL && model_dir[0] != '\0') {
		int ret = storage_model_init(model_dir, data_dir, message, message_size);
		if (ret != 0)
			return ret;
		model_on = true;
	}
	fprintf(stderr,
	        "skuld: TEST-ONLY storage seam active:%s%s%s%s — never run a ledger like this\n",
	        model_on ? " power-loss model in " : "", model_on ? model_dir : "",
	        fault.point != FAULT_NONE ? " fault " : "",
	        fault.point != FAULT_NONE ? fault_spec : "");
	storage_current = &storage_test;
	return 0;
}

#else /* !SKULD_TEST_HOOKS */

int storage_setup(const char *data_dir, char *message, size_t message_size)
{
	(void)data_dir;
	static const char *const switches[] = {"SKULD_TEST_POWER_MODEL",
	                                       "SKULD_TEST_STORAGE_FAULT"};
	for (size_t i = 0; i < sizeof(switches) / sizeof(switches[0]); i++) {
		const char *value = getenv(switches[i]);
		if (value != NULL && value[0] != '\0') {
			snprintf(message, message_size,
			         "%s is set, but this skuld was built without SKULD_TEST_HOOKS "
			         "(a test-only switch); unset it, or build with "
			         "-DSKULD_TEST_HOOKS=ON for tests",
			         switches[i]);
			return -EINVAL;
		}
	}
	return 0;
}

#endif /* SKULD_TEST_HOOKS */
