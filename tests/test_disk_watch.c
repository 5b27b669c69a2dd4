/*
 * test_disk_watch.c — the low-disk alarm's policy (server/disk_watch.c):
 * the free-space threshold, the projection from the log's growth, and the
 * alarm clearing again.
 */
#include <criterion/criterion.h>

#include "disk_watch.h"

#define GIB    (1024ull * 1024 * 1024)
#define SECOND 1000000000ull

static struct disk_watch watch;

static void watch_setup(uint32_t percent, uint64_t bytes, uint32_t hours)
{
	struct disk_watch_config config = {percent, bytes, hours};
	disk_watch_init(&watch, &config, "/data");
}

Test(disk_watch, free_share_below_the_percent_raises_low)
{
	watch_setup(10, 0, 0);
	cr_assert_eq(disk_watch_assess(&watch, 1 * SECOND, 11 * GIB, 100 * GIB, 0), 0);
	cr_assert_eq(disk_watch_assess(&watch, 2 * SECOND, 9 * GIB, 100 * GIB, 0), DISK_ALARM_LOW);
	cr_assert_eq(watch.free_bytes, 9 * GIB);
	cr_assert_eq(watch.total_bytes, 100 * GIB);
	/* Space freed (segments archived): the alarm clears. */
	cr_assert_eq(disk_watch_assess(&watch, 3 * SECOND, 30 * GIB, 100 * GIB, 0), 0);
}

Test(disk_watch, absolute_bytes_raise_low_on_a_large_disk)
{
	watch_setup(0, 50 * GIB, 0);
	cr_assert_eq(disk_watch_assess(&watch, SECOND, 60 * GIB, 10000 * GIB, 0), 0);
	cr_assert_eq(disk_watch_assess(&watch, 2 * SECOND, 40 * GIB, 10000 * GIB, 0),
	             DISK_ALARM_LOW);
}

Test(disk_watch, growth_that_fills_the_disk_within_the_hours_raises_filling)
{
	watch_setup(0, 0, 24);
	/* 100 MiB/s of log and 1 TiB free: about 2.9 hours left. */
	uint64_t log = 0;
	cr_assert_eq(disk_watch_assess(&watch, 10 * SECOND, 1024 * GIB, 4096 * GIB, log), 0,
	             "one sample projects nothing");
	log += 1000ull * 1024 * 1024;
	cr_assert_eq(disk_watch_assess(&watch, 20 * SECOND, 1024 * GIB, 4096 * GIB, log),
	             DISK_ALARM_FILLING);
	cr_assert(watch.seconds_left > 2 * 3600 && watch.seconds_left < 3 * 3600, "%llu s left",
	          (unsigned long long)watch.seconds_left);
}

Test(disk_watch, slow_growth_stays_quiet_and_a_quiet_log_projects_nothing)
{
	watch_setup(0, 0, 24);
	/* 1 MiB/s against 1 TiB free: about 12 days. */
	cr_assert_eq(disk_watch_assess(&watch, 0, 1024 * GIB, 4096 * GIB, 0), 0);
	cr_assert_eq(
	        disk_watch_assess(&watch, 10 * SECOND, 1024 * GIB, 4096 * GIB, 10ull * 1024 * 1024),
	        0);
	cr_assert(watch.seconds_left > 11 * 86400 && watch.seconds_left < 13 * 86400);
	watch_setup(0, 0, 24);
	disk_watch_assess(&watch, 0, GIB, 4096 * GIB, 5000);
	cr_assert_eq(disk_watch_assess(&watch, 10 * SECOND, GIB, 4096 * GIB, 5000), 0);
	cr_assert_eq(watch.seconds_left, UINT64_MAX);
}

Test(disk_watch, the_projection_uses_the_window_not_the_whole_history)
{
	watch_setup(0, 0, 1);
	/* A burst long ago, then DISK_WATCH_WINDOW quiet samples: it ages out. */
	uint64_t log = 0, t = 0;
	disk_watch_assess(&watch, t, 10 * GIB, 100 * GIB, log);
	t += 10 * SECOND;
	log += 100 * GIB;
	cr_assert_eq(disk_watch_assess(&watch, t, 10 * GIB, 100 * GIB, log), DISK_ALARM_FILLING);
	uint32_t alarm = DISK_ALARM_FILLING;
	for (uint32_t i = 0; i < DISK_WATCH_WINDOW; i++) {
		t += 10 * SECOND;
		alarm = disk_watch_assess(&watch, t, 10 * GIB, 100 * GIB, log);
	}
	cr_assert_eq(alarm, 0);
}

Test(disk_watch, zero_settings_turn_the_alarm_off)
{
	watch_setup(0, 0, 0);
	cr_assert_eq(disk_watch_assess(&watch, 0, 0, 100 * GIB, 0), 0);
	cr_assert_eq(disk_watch_assess(&watch, SECOND, 0, 100 * GIB, 100 * GIB), 0);
}
