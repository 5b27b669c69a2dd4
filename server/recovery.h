/*
 * recovery.h — start-up: the newest valid snapshot, then the log after it,
 * replayed into a fresh service.
 *
 * Owns: the decision what the log says is true. Every record is re-applied
 * to the ledger with its own timestamp and source, and every result must
 * equal the logged one (the state machine is deterministic; a difference
 * means the capacities changed or the code did). Sessions and the
 * directory are rebuilt from the same records. A torn last write is
 * discarded with a warning naming its file and offset (log_discard_torn);
 * anything else wrong stops start-up with a message naming file and offset.
 *
 * Snapshots (snapshot.h): recovery tries the snapshots newest first. One
 * that is damaged (checksum, version, structure), was taken with other
 * ledger capacities or belongs to another log is skipped with a warning
 * naming the file and why, and the next older one is tried (a longer
 * replay), and finally the whole log from its start. The log is read from
 * the chosen snapshot's position: the first write there must continue the
 * snapshot's write and event sequences and its chain value, else the log
 * is corrupt (it is not a reason to fall back: the log is what is true).
 * What comes before that position is not read at start-up (skuld-replay
 * verify checks the whole log and every snapshot against it).
 */
#ifndef SKULD_SERVER_RECOVERY_H
#define SKULD_SERVER_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "service.h"

struct recovery_summary {
	struct log_position position; /* where the writer resumes */
	uint64_t records;             /* replayed from the log */
	uint64_t events;
	int torn;                     /* a torn last write was discarded */
	uint64_t snapshot;            /* last event of the snapshot started from; 0: none */
	uint64_t snapshot_event_next; /* its position's event_next (1 without one) */
	uint32_t snapshots_skipped;   /* newer snapshots that were not usable */
	int damaged;                  /* the walk ended LOG_CORRUPT: see damage */
	struct log_outcome damage;    /* where and why */
};

/* Replays the log in dir into service. Returns 0, or -EBADMSG (corrupt log
 * or a replay difference) / -errno (I/O) with one line in message. Warnings
 * go to stderr. */
int recovery_run(struct service *service, const char *dir, struct recovery_summary *summary,
                 char *message, size_t message_size);

/* The same, starting from the newest usable snapshot in snapshot_dir (NULL
 * or an empty directory: the whole log). service must be fresh. Returns 0,
 * -EBADMSG (corrupt log, a replay difference), -ENOMEM or -errno, with one
 * line in message. */
int recovery_run_snapshots(struct service *service, const char *dir, const char *snapshot_dir,
                           struct recovery_summary *summary, char *message, size_t message_size);

/* The operator's choice after a corrupt log (skuld --recover-to-damage,
 * OPERATIONS.md "Recovering up to damage"): everything from the damage on
 * is moved into aside_dir (created) — the damaged segment copied there and
 * then zeroed from the damaged write on, every later segment moved — so
 * that recovery, run again on a fresh service, ends at the last intact
 * write. Events in what was moved aside are lost to the ledger, even if
 * they were acknowledged: that is the choice the option makes. Returns 0
 * or -errno with one line in message. */
int recovery_salvage(const char *log_dir, const char *aside_dir, const struct log_outcome *damage,
                     char *message, size_t message_size);

#endif /* SKULD_SERVER_RECOVERY_H */
