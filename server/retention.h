/*
 * retention.h — which log segments stay in the live log directory, and
 * moving the others to the archive (or removing them).
 *
 * Owns: the retention rule and its execution. Segments leave the live
 * directory only as a prefix (oldest first), and only when
 *   - a limit asks for it: the live segments take more than keep_bytes, or
 *     the segment was created more than keep_age_ns ago (0: no such limit;
 *     with neither limit set, nothing ever leaves), and
 *   - nothing still needs them there: every segment from `boundary` on is
 *     kept, where boundary is the segment recovery starts in from the
 *     oldest snapshot kept (so any kept snapshot can still be replayed
 *     from), and, when segments are deleted rather than archived, also the
 *     oldest segment a session's saved reply lives in.
 * Before the first segment of a run leaves, the snapshot at the boundary is
 * copied into the archive (archive_dir, or DATA_DIR/archive-snapshots when
 * segments are deleted), so `skuld-replay state --at` keeps a starting
 * point after the segments before it are gone. An archived segment is
 * renamed into archive_dir (copied, fsynced and then removed when the
 * archive is on another file system); the archive directory is fsynced
 * before the live directory, so a crash in between leaves a segment in
 * both places, never in neither.
 *
 * Runs in the snapshot writer (a forked child) right after a snapshot was
 * renamed into place, never in the loop. Every disk call goes through the
 * storage seam (storage.h).
 */
#ifndef SKULD_SERVER_RETENTION_H
#define SKULD_SERVER_RETENTION_H

#include <stddef.h>
#include <stdint.h>

struct retention_config {
	uint64_t keep_bytes;     /* live segments' total size at most; 0: no size limit */
	uint64_t keep_age_ns;    /* segments younger than this stay; 0: no age limit */
	const char *archive_dir; /* where segments go; NULL or "": they are deleted */
};

struct retention_segment {
	uint64_t index;      /* the number in its name */
	uint64_t bytes;      /* file size */
	uint64_t created_ns; /* from its header (wall clock) */
};

/* The segments of log_dir, sorted by index; *segments malloc'd (free it).
 * Returns 0 or -errno. */
int retention_segments(const char *log_dir, struct retention_segment **segments, uint32_t *count);

/* Copies the file from to a new file to, fsynced (through the storage
 * seam). Returns 0 or -errno; a partial copy is removed. */
int retention_copy(const char *from, const char *to);

/* How many of the oldest segments (sorted by index) leave: pure. */
uint32_t retention_plan(const struct retention_segment *segments, uint32_t count, uint64_t boundary,
                        uint64_t now_ns, const struct retention_config *config);

/* Applies the rule to log_dir. boundary as above (the caller computes it);
 * snapshot_path is the snapshot at the boundary, copied to the archive
 * first (snapshot_archive: where it goes). Returns the number of segments
 * moved or removed, or -errno with a message. */
int retention_run(const char *log_dir, const char *snapshot_path, const char *snapshot_archive,
                  uint64_t boundary, uint64_t now_ns, const struct retention_config *config,
                  char *message, size_t message_size);

#endif /* SKULD_SERVER_RETENTION_H */
