/*
 * disk_watch.h — the alarm that warns operators well before the data
 * directory's file system is full.
 *
 * Owns: the policy that turns samples of (free bytes, total bytes, log
 * bytes written so far) into an alarm state, and the statvfs call that
 * takes a sample. The loop calls disk_watch_poll from its housekeeping; the
 * server's STATS carry disk_free_bytes and disk_alarm.
 *
 * The alarm has two causes, reported as bits:
 *   DISK_ALARM_LOW       free space is below free_percent of the file system
 *                        or below free_bytes;
 *   DISK_ALARM_FILLING   at the rate the log grew over the last window
 *                        (up to DISK_WATCH_WINDOW samples), the free space
 *                        lasts less than hours_left hours.
 * Each change of the alarm state is one line on stderr (raised with the
 * figures that caused it, cleared when it clears); nothing repeats while the
 * state holds, so a full disk does not also fill the server's own output.
 *
 * Invariants: samples are taken at most once per DISK_WATCH_PERIOD_NS;
 * disk_watch_assess reads no clock and does no I/O.
 */
#ifndef SKULD_SERVER_DISK_WATCH_H
#define SKULD_SERVER_DISK_WATCH_H

#include <stdint.h>

#define DISK_WATCH_PERIOD_NS (10ull * 1000000000ull) /* one sample per 10 s */
#define DISK_WATCH_WINDOW    60u                     /* samples: the last 10 minutes */

enum disk_alarm {
	DISK_ALARM_LOW = 1u << 0,
	DISK_ALARM_FILLING = 1u << 1,
};

struct disk_watch_config {
	uint32_t free_percent; /* DISK_ALARM_LOW below this share free; 0: off */
	uint64_t free_bytes;   /* DISK_ALARM_LOW below this many bytes free; 0: off */
	uint32_t hours_left;   /* DISK_ALARM_FILLING below this many hours; 0: off */
};

struct disk_sample {
	uint64_t mono_ns;   /* when it was taken */
	uint64_t log_bytes; /* STATS.log_bytes then */
};

struct disk_watch {
	struct disk_watch_config config;
	const char *path; /* borrowed: the data directory */
	uint64_t next_ns; /* next sample due (monotonic) */
	struct disk_sample window[DISK_WATCH_WINDOW];
	uint32_t window_count;
	uint32_t window_next;
	uint64_t free_bytes;   /* at the last sample */
	uint64_t total_bytes;  /* at the last sample */
	uint64_t seconds_left; /* projected at the last sample; UINT64_MAX: not filling */
	uint32_t alarm;        /* enum disk_alarm bits */
	int error;             /* errno of the last failed statvfs, 0: none */
};

void disk_watch_init(struct disk_watch *watch, const struct disk_watch_config *config,
                     const char *path);

/* Adds one sample and recomputes the alarm (no I/O, no clock). Returns the
 * alarm bits; the caller compares them with the previous ones. */
uint32_t disk_watch_assess(struct disk_watch *watch, uint64_t mono_ns, uint64_t free_bytes,
                           uint64_t total_bytes, uint64_t log_bytes);

/* Takes a sample if one is due: statvfs on the data directory, then
 * disk_watch_assess, and one stderr line when the alarm changes. A failed
 * statvfs keeps the previous state and is reported once. */
void disk_watch_poll(struct disk_watch *watch, uint64_t mono_ns, uint64_t log_bytes);

#endif /* SKULD_SERVER_DISK_WATCH_H */
