/*
 * recovery.h — start-up: the log, replayed into a fresh service.
 *
 * Owns: the decision what the log says is true. Every record is re-applied
 * to the ledger with its own timestamp and source, and every result must
 * equal the logged one (the state machine is deterministic; a difference
 * means the capacities changed or the code did). Sessions and the
 * directory are rebuilt from the same records. A torn last write is
 * discarded with a warning naming its file and offset (log_discard_torn);
 * anything else wrong stops start-up with a message naming file and offset.
 * Snapshots come later: today the whole log is replayed.
 */
#ifndef SKULD_SERVER_RECOVERY_H
#define SKULD_SERVER_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "service.h"

struct recovery_summary {
	struct log_position position; /* where the writer resumes */
	uint64_t records;
	uint64_t events;
	int torn; /* a torn last write was discarded */
};

/* Replays the log in dir into service. Returns 0, or -EBADMSG (corrupt log
 * or a replay difference) / -errno (I/O) with one line in message. Warnings
 * go to stderr. */
int recovery_run(struct service *service, const char *dir, struct recovery_summary *summary,
                 char *message, size_t message_size);

#endif /* SKULD_SERVER_RECOVERY_H */
