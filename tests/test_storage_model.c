/*
 * test_storage_model.c — the power-loss model behind the storage seam
 * (server/storage_model.h), on its own: what a power cut keeps and what it
 * takes, in-process, in a mkdtemp directory.
 *
 * Checked: a write covered by a completed fdatasync survives every cut; a
 * write not covered ends, sector by sector, as its new or its old bytes,
 * and over many seeds the model produces every pattern it promises (kept,
 * lost, torn with a lost sector before a kept one, i.e. not a prefix);
 * overlapping writes leave each sector at one of its versions; a name made
 * or removed without an fsync of its directory may be undone, with one it
 * never is; a size change without a sync may be undone.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_model.h"

#define SECTOR  512
#define SECTORS 16
#define SEEDS   200

static char base[64];
static char data[128];
static char model_dir[128];

static void tree_remove(const char *path)
{
	char command[256];
	snprintf(command, sizeof(command), "rm -rf '%s'", path);
	cr_assert_eq(system(command), 0);
}

static void model_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/skuld-model-XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(model_dir, sizeof(model_dir), "%s/model", base);
	cr_assert_eq(mkdir(data, 0755), 0);
	cr_assert_eq(mkdir(model_dir, 0755), 0);
	char message[256];
	cr_assert_eq(storage_model_init(model_dir, data, message, sizeof(message)), 0, "%s",
	             message);
}

static void model_teardown(void)
{
	if (base[0] != '\0')
		tree_remove(base);
}

static void path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", data, name);
}

static void fill(uint8_t *bytes, uint8_t value, size_t size)
{
	memset(bytes, value, size);
}

/* A file of SECTORS sectors of `old`, durable (written, fsynced, and its
 * directory fsynced). */
static int file_durable(const char *name, uint8_t old)
{
	char path[192];
	path_of(path, sizeof(path), name);
	int fd = storage_model_open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	uint8_t bytes[SECTORS * SECTOR];
	fill(bytes, old, sizeof(bytes));
	cr_assert_eq(storage_model_pwrite(fd, bytes, sizeof(bytes), 0), (ssize_t)sizeof(bytes));
	cr_assert_eq(storage_model_fsync(fd), 0);
	int dir = open(data, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(storage_model_fsync(dir), 0);
	close(dir);
	return fd;
}

static void cut(uint64_t seed, struct storage_model_cut *report)
{
	char message[256];
	cr_assert_eq(storage_model_power_cut(model_dir, seed, report, message, sizeof(message)), 0,
	             "%s", message);
}

static void contents(const char *name, uint8_t *bytes, size_t size)
{
	char path[192];
	path_of(path, sizeof(path), name);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(pread(fd, bytes, size, 0), (ssize_t)size);
	close(fd);
}

TestSuite(storage_model, .init = model_setup, .fini = model_teardown);

Test(storage_model, synced_writes_survive_and_unsynced_ones_tear_in_any_pattern)
{
	uint32_t kept = 0;
	uint32_t lost = 0;
	uint32_t torn = 0;
	uint32_t not_prefix = 0;
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		int fd = file_durable("segment", 0xaa);
		uint8_t bytes[SECTORS * SECTOR];
		/* Sectors 0..3 synced, 4..15 written after the sync. */
		fill(bytes, 0x11, sizeof(bytes));
		cr_assert_eq(storage_model_pwrite(fd, bytes, 4 * SECTOR, 0), 4 * SECTOR);
		cr_assert_eq(storage_model_fdatasync(fd), 0);
		cr_assert_eq(storage_model_write_begin(fd, 4 * SECTOR, 12 * SECTOR), 0);
		cr_assert_eq(pwrite(fd, bytes, 12 * SECTOR, 4 * SECTOR), 12 * SECTOR);
		close(fd);
		struct storage_model_cut report;
		cut(seed, &report);
		cr_assert_eq(report.writes, 1);
		contents("segment", bytes, sizeof(bytes));
		bool lost_before = false;
		uint32_t new_sectors = 0;
		for (uint32_t sector = 0; sector < SECTORS; sector++) {
			uint8_t first = bytes[sector * SECTOR];
			for (uint32_t i = 0; i < SECTOR; i++)
				cr_assert_eq(bytes[sector * SECTOR + i], first,
				             "sector %u is mixed", sector);
			if (sector < 4) {
				cr_assert_eq(first, 0x11, "seed %lu: a synced sector was lost",
				             (unsigned long)seed);
				continue;
			}
			cr_assert(first == 0x11 || first == 0xaa, "sector %u: %#x", sector, first);
			if (first == 0xaa)
				lost_before = true;
			else if (lost_before)
				not_prefix = 1;
			new_sectors += first == 0x11;
		}
		kept += new_sectors == 12;
		lost += new_sectors == 0;
		torn += new_sectors > 0 && new_sectors < 12;
		cr_assert_eq(report.sectors_kept, new_sectors);
	}
	cr_log_info("kept %u, lost %u, torn %u", kept, lost, torn);
	cr_assert(kept > 0 && lost > 0 && torn > 0 && not_prefix,
	          "patterns: kept %u lost %u torn %u, non-prefix seen %u", kept, lost, torn,
	          not_prefix);
}

Test(storage_model, overlapping_writes_leave_each_sector_at_one_version)
{
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		int fd = file_durable("overlap", 0x00);
		uint8_t bytes[SECTORS * SECTOR];
		fill(bytes, 0x01, sizeof(bytes));
		cr_assert_eq(storage_model_pwrite(fd, bytes, 8 * SECTOR, 0), 8 * SECTOR);
		fill(bytes, 0x02, sizeof(bytes));
		cr_assert_eq(storage_model_pwrite(fd, bytes, 8 * SECTOR, 4 * SECTOR), 8 * SECTOR);
		close(fd);
		struct storage_model_cut report;
		cut(seed, &report);
		contents("overlap", bytes, sizeof(bytes));
		for (uint32_t sector = 0; sector < SECTORS; sector++) {
			uint8_t value = bytes[sector * SECTOR];
			if (sector < 4)
				cr_assert(value == 0x00 || value == 0x01);
			else if (sector < 8)
				cr_assert(value == 0x00 || value == 0x01 || value == 0x02);
			else if (sector < 12)
				cr_assert(value == 0x00 || value == 0x02);
			else
				cr_assert_eq(value, 0x00);
		}
	}
}

Test(storage_model, names_need_a_directory_fsync)
{
	uint32_t gone = 0;
	uint32_t restored = 0;
	char tmp[192];
	char final[192];
	char victim[192];
	path_of(tmp, sizeof(tmp), "segment.tmp");
	path_of(final, sizeof(final), "segment");
	path_of(victim, sizeof(victim), "victim");
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		unlink(final);
		close(file_durable("victim", 0x55));
		int fd = storage_model_open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(storage_model_fallocate(fd, 0, 0, SECTORS * SECTOR), 0);
		cr_assert_eq(storage_model_fsync(fd), 0);
		close(fd);
		cr_assert_eq(storage_model_rename(tmp, final), 0);
		cr_assert_eq(storage_model_unlink(victim), 0);
		bool synced = seed % 2 == 0;
		if (synced) {
			int dir = open(data, O_RDONLY | O_DIRECTORY);
			cr_assert_eq(storage_model_fsync(dir), 0);
			close(dir);
		}
		struct storage_model_cut report;
		cut(seed, &report);
		struct stat status;
		bool final_there = stat(final, &status) == 0;
		bool victim_there = stat(victim, &status) == 0;
		if (synced) {
			cr_assert(final_there && !victim_there,
			          "seed %lu: a synced name was undone", (unsigned long)seed);
			cr_assert_eq(report.names, 0);
			continue;
		}
		cr_assert_eq(report.names, 3);
		/* A prefix of create, rename, unlink survives. */
		cr_assert(!victim_there || !final_there || report.names_undone == 1);
		gone += !final_there;
		restored += victim_there;
		if (victim_there) {
			uint8_t bytes[SECTOR];
			contents("victim", bytes, sizeof(bytes));
			cr_assert_eq(bytes[0], 0x55, "the restored file lost its bytes");
		}
		unlink(tmp);
	}
	cr_assert(gone > 0 && restored > 0, "gone %u restored %u", gone, restored);
}

Test(storage_model, size_changes_need_a_sync)
{
	uint32_t undone = 0;
	for (uint64_t seed = 1; seed <= 64; seed++) {
		int fd = file_durable("sized", 0x33);
		cr_assert_eq(storage_model_fallocate(fd, 0, 0, 4 * SECTORS * SECTOR), 0);
		close(fd);
		struct storage_model_cut report;
		cut(seed, &report);
		char path[192];
		path_of(path, sizeof(path), "sized");
		struct stat status;
		cr_assert_eq(stat(path, &status), 0);
		cr_assert(status.st_size == SECTORS * SECTOR ||
		          status.st_size == 4 * SECTORS * SECTOR);
		undone += status.st_size == SECTORS * SECTOR;
	}
	cr_assert(undone > 0 && undone < 64, "undone %u of 64", undone);
}
