/*
 * start.h — where skuld-replay begins when the log no longer starts at
 * segment 1 (retention moved the earlier segments to an archive, and no
 * --archive was given): a snapshot for a replay (state, history), a kept
 * chain head for the SHA-256 chain (verify). docs/REPLAY.md, "Archived
 * segments".
 *
 * Owns: finding them. Snapshots and head files are looked for in
 *   DATA_DIR/snapshots           the server's own (snapshot_keep newest)
 *   DATA_DIR/archive-snapshots   the boundary copies when segments are deleted
 *   the --archive directory      the boundary copies when segments are archived
 *   the configuration's archive_dir (--config), the same when given that way
 * where DATA_DIR is the parent of the log directory when that is named
 * "log" (the server's layout).
 *
 * A snapshot starts a replay when its position lies in the log present: at
 * its very start (the first segment's header continues the snapshot's
 * write, event and chain value exactly: nothing present is skipped), or,
 * failing that, inside a segment present (the records before it are then
 * not replayed). The one at the start is preferred, then the oldest inside;
 * only snapshots at or before the caller's point qualify. Retention keeps
 * the snapshot recovery starts from at the boundary, whose position is
 * usually inside the first segment left: the records before it in that
 * segment are read and checked, not replayed.
 *
 * A head file (snapshot-X.head, "SEQ:HEX", kept beside snapshot X)
 * continues the chain when snapshot X's position lies in the log present
 * (the oldest such) and SEQ is X; the chain then covers the records after
 * X's position.
 *
 * Invariants: every byte read from a snapshot or head file is checked
 * before it is used (the header's checksum and rules before its position is
 * believed; the whole file by the server's reader, snapshot_read, before
 * its catalog is read); a file that fails is skipped with a warning on
 * stderr naming it and why. Nothing is written.
 */
#ifndef SKULD_REPLAY_START_H
#define SKULD_REPLAY_START_H

#include <stdbool.h>
#include <stdint.h>

#include "walk.h"

#define START_PATH_SIZE (LOG_PATH_SIZE + 64)

struct start_snapshot {
	bool used;                    /* the replay starts from it */
	char path[START_PATH_SIZE];   /* the file */
	uint64_t number;              /* the last event it covers */
	uint64_t batch_ns;            /* record time of the last record it covers */
	struct log_position position; /* where the log after it begins */
	bool at_start;                /* exactly at the start of the log present */
};

/* For a replay (walk opened with WALK_APPLY) of a partial log
 * (walk_partial): loads the snapshot that starts it into walk->service,
 * names its catalog in walk->names and positions the walk after it
 * (walk_start_at). limit (kind TEXT_POINT_NONE: none) is a point the
 * snapshot must not lie beyond. Returns REPLAY_EXIT_OK with *out filled, or
 * an exit code with walk->fault saying why no snapshot could start it. */
int start_snapshot_load(struct walk *walk, const struct text_point *limit,
                        struct start_snapshot *out);

/* For verify of a partial log: the oldest head kept for a position in the
 * log present. Returns 1 with *head, its position (its snapshot's) and the
 * head file's path; 0 when there is none (or none that checks out:
 * warnings said why). */
int start_head_find(struct walk *walk, struct chain_head *head, struct log_position *position,
                    char path[START_PATH_SIZE]);

/* The records of one part (tag, each record_size bytes) of the ledger
 * section of a snapshot that snapshot_read accepted, each handed to visit
 * (which returns 0 to go on). Returns 0, -EBADMSG with reason (the section
 * does not hold the part as the format says), -errno, or visit's value. */
int start_part_each(const struct start_snapshot *snapshot, uint32_t tag, uint32_t record_size,
                    int (*visit)(void *context, const void *record), void *context, char *reason,
                    size_t reason_size);

#endif /* SKULD_REPLAY_START_H */
