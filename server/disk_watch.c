/*
 * disk_watch.c — the low-disk alarm (disk_watch.h).
 */
#include "disk_watch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

void disk_watch_init(struct disk_watch *watch, const struct disk_watch_config *config,
                     const char *path)
{
	memset(watch, 0, sizeof(*watch));
	watch->config = *config;
	watch->path = path;
	watch->seconds_left = UINT64_MAX;
}

/* Seconds until free_bytes are gone at the log's growth over the window,
 * or UINT64_MAX when the log did not grow (or there is one sample). */
static uint64_t seconds_left(const struct disk_watch *watch, uint64_t free_bytes)
{
	if (watch->window_count < 2)
		return UINT64_MAX;
	uint32_t newest = (watch->window_next + DISK_WATCH_WINDOW - 1) % DISK_WATCH_WINDOW;
	uint32_t oldest = watch->window_count < DISK_WATCH_WINDOW ? 0 : watch->window_next;
	const struct disk_sample *a = &watch->window[oldest];
	const struct disk_sample *b = &watch->window[newest];
	if (b->log_bytes <= a->log_bytes || b->mono_ns <= a->mono_ns)
		return UINT64_MAX;
	double rate =
	        (double)(b->log_bytes - a->log_bytes) / ((double)(b->mono_ns - a->mono_ns) / 1e9);
	double left = (double)free_bytes / rate;
	return left >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)left;
}

uint32_t disk_watch_assess(struct disk_watch *watch, uint64_t mono_ns, uint64_t free_bytes,
                           uint64_t total_bytes, uint64_t log_bytes)
{
	watch->window[watch->window_next] = (struct disk_sample){mono_ns, log_bytes};
	watch->window_next = (watch->window_next + 1) % DISK_WATCH_WINDOW;
	if (watch->window_count < DISK_WATCH_WINDOW)
		watch->window_count++;
	watch->free_bytes = free_bytes;
	watch->total_bytes = total_bytes;
	watch->seconds_left = seconds_left(watch, free_bytes);

	const struct disk_watch_config *config = &watch->config;
	uint32_t alarm = 0;
	if (config->free_percent != 0 && total_bytes != 0 &&
	    free_bytes < total_bytes / 100 * config->free_percent)
		alarm |= DISK_ALARM_LOW;
	if (config->free_bytes != 0 && free_bytes < config->free_bytes)
		alarm |= DISK_ALARM_LOW;
	if (config->hours_left != 0 && watch->seconds_left < (uint64_t)config->hours_left * 3600)
		alarm |= DISK_ALARM_FILLING;
	watch->alarm = alarm;
	return alarm;
}

static void alarm_report(const struct disk_watch *watch, uint32_t before)
{
	double free_mib = (double)watch->free_bytes / (1024.0 * 1024.0);
	double share = watch->total_bytes != 0
	                       ? 100.0 * (double)watch->free_bytes / (double)watch->total_bytes
	                       : 0.0;
	if ((watch->alarm & DISK_ALARM_LOW) && !(before & DISK_ALARM_LOW))
		fprintf(stderr,
		        "skuld: ALARM: %s has %.0f MiB free (%.1f%%), below the alarm level "
		        "(disk_alarm_percent %u, disk_alarm_bytes %llu): move segments to the "
		        "archive or add disk\n",
		        watch->path, free_mib, share, watch->config.free_percent,
		        (unsigned long long)watch->config.free_bytes);
	if ((watch->alarm & DISK_ALARM_FILLING) && !(before & DISK_ALARM_FILLING))
		fprintf(stderr,
		        "skuld: ALARM: at the log's current rate %s is full in %.1f hours "
		        "(%.0f MiB free; disk_alarm_hours %u)\n",
		        watch->path, (double)watch->seconds_left / 3600.0, free_mib,
		        watch->config.hours_left);
	if (before != 0 && watch->alarm == 0)
		fprintf(stderr, "skuld: disk alarm cleared: %s has %.0f MiB free (%.1f%%)\n",
		        watch->path, free_mib, share);
}

void disk_watch_poll(struct disk_watch *watch, uint64_t mono_ns, uint64_t log_bytes)
{
	if (mono_ns < watch->next_ns)
		return;
	watch->next_ns = mono_ns + DISK_WATCH_PERIOD_NS;
	struct statvfs fs;
	if (statvfs(watch->path, &fs) != 0) {
		if (watch->error != errno)
			fprintf(stderr, "skuld: warning: cannot read the free space of %s: %s\n",
			        watch->path, strerror(errno));
		watch->error = errno;
		return;
	}
	watch->error = 0;
	uint32_t before = watch->alarm;
	disk_watch_assess(watch, mono_ns, (uint64_t)fs.f_bavail * fs.f_frsize,
	                  (uint64_t)fs.f_blocks * fs.f_frsize, log_bytes);
	if (watch->alarm != before)
		alarm_report(watch, before);
}
