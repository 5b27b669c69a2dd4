/*
 * snapshot.h — snapshot files: the whole state of the server at a log
 * position, so that a restart replays only the log after it.
 *
 * Owns: the snapshot file format (docs/FORMAT.md, "Snapshot files"; the
 * byte tables are also at the top of snapshot.c), writing one (into a
 * temporary file, fsynced, renamed into place and the directory fsynced only
 * once the log is durable up to the snapshot's position), reading and
 * checking one for recovery, and the schedule that takes them in the
 * background: a forked child writes the file from its copy of the parent's
 * memory while the parent's loop goes on serving.
 *
 * Files live in one directory (DATA_DIR/snapshots):
 *   snapshot-XXXXXXXXXXXXXXXX.sks   X: the last event it covers, 16 lower-case
 *                                   hex digits (its log position's event_next
 *                                   - 1), so names sort in log order
 *   snapshot-XXXXXXXXXXXXXXXX.tmp   one being written; removed at start-up
 *
 * Invariants:
 *   - A .sks file exists only if the log is durable up to its position: the
 *     writer renames only after the parent said so (or, at shutdown, after
 *     the loop ended with everything durable).
 *   - The child never touches the io_uring ring or any descriptor the
 *     parent had, except stderr and its pipe (it closes the rest first), and
 *     ends with _exit. At most one child at a time.
 *   - Every byte read from a file is checked (header checksum, whole-file
 *     checksum, then the structure of each section) before it is trusted.
 *   - Every disk call goes through the storage seam (storage.h), in the
 *     wrappers at the top of snapshot.c.
 */
#ifndef SKULD_SERVER_SNAPSHOT_H
#define SKULD_SERVER_SNAPSHOT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "retention.h"
#include "protocol.h"
#include "service.h"

#define SNAPSHOT_FILE_MAGIC   0x504e53444c554b53ull /* "SKULDSNP" as bytes */
#define SNAPSHOT_FILE_VERSION 1u
#define SNAPSHOT_NAME_SIZE    32u /* "snapshot-" + 16 hex + ".sks" + NUL, rounded */

/* The first 128 bytes of a snapshot file. */
struct snapshot_header {
	uint64_t magic;              /* SNAPSHOT_FILE_MAGIC */
	uint32_t version;            /* SNAPSHOT_FILE_VERSION */
	uint32_t header_size;        /* 128 */
	skuld_u128 log_id;           /* the log it belongs to */
	uint64_t config_fingerprint; /* ledger_config_fingerprint of the ledger */
	uint64_t write_next;         /* the first write replay reads */
	uint64_t event_next;         /* the first event replay reads */
	uint64_t segment;            /* where that write goes: this segment ... */
	uint64_t offset;             /* ... at this offset (or the next segment) */
	uint64_t checksum_prev;      /* chain value of the last record covered */
	uint64_t created_ns;         /* wall clock when taken (informational) */
	uint64_t ledger_size;        /* bytes of the ledger section */
	uint64_t service_size;       /* bytes of the service section */
	uint8_t reserved[16];        /* zero */
	uint64_t checksum_header;    /* XXH3-64 of bytes 0..119 */
};
static_assert(sizeof(struct snapshot_header) == 128, "snapshot header");
static_assert(offsetof(struct snapshot_header, log_id) == 16, "snapshot header");
static_assert(offsetof(struct snapshot_header, config_fingerprint) == 32, "snapshot header");
static_assert(offsetof(struct snapshot_header, write_next) == 40, "snapshot header");
static_assert(offsetof(struct snapshot_header, segment) == 56, "snapshot header");
static_assert(offsetof(struct snapshot_header, checksum_prev) == 72, "snapshot header");
static_assert(offsetof(struct snapshot_header, ledger_size) == 88, "snapshot header");
static_assert(offsetof(struct snapshot_header, reserved) == 104, "snapshot header");
static_assert(offsetof(struct snapshot_header, checksum_header) == 120, "snapshot header");

/* The last 16 bytes of a snapshot file. */
struct snapshot_trailer {
	uint64_t file_size; /* 128 + ledger_size + service_size + 16 */
	uint64_t checksum;  /* XXH3-64 of every byte of the file before this field */
};
static_assert(sizeof(struct snapshot_trailer) == 16, "snapshot trailer");

/* "snapshot-%016llx" + suffix (".sks" or ".tmp") for number. Returns 0 or
 * -ENAMETOOLONG. */
int snapshot_name(char *name, size_t size, uint64_t number, const char *suffix);

/* The snapshots (.sks) in dir, newest first, into *numbers (malloc'ed, the
 * caller frees; NULL when none). Returns 0 or -errno from opendir (a
 * missing directory is an empty list). */
int snapshot_list(const char *dir, uint64_t **numbers, uint32_t *count);

/* Writes service's state, which is at position (service_snapshot_position),
 * as snapshot-<position->event_next - 1>.sks in dir. When durable_fd >= 0,
 * waits (blocking) after the fsync for one byte on it, the word that the log
 * is durable up to position; end of file there abandons the snapshot
 * (-ECANCELED, the temporary file removed). Sets *size to the file's bytes.
 * Returns 0, or -errno with one line in message. */
int snapshot_write(const struct service *service, const char *dir,
                   const struct log_position *position, uint64_t created_ns, int durable_fd,
                   uint64_t *size, char *message, size_t message_size);

/* Recovery: reads the snapshot file at path into service, which must be
 * fresh (service_create, or service_reset). Checks the header, the
 * whole-file checksum, then loads and checks the ledger and the service
 * sections. Sets *position (segment_size 0) to where the log resumes.
 * Returns 0; -EBADMSG (not a valid snapshot of this configuration: reason
 * says why) or -errno; on any failure the service must be reset. */
int snapshot_read(struct service *service, const char *path, struct log_position *position,
                  char *reason, size_t reason_size);

/* ---- The schedule (the parent's side) -------------------------------------- */

struct snapshot_config {
	const char *dir;      /* DATA_DIR/snapshots; must exist */
	uint64_t events;      /* a snapshot once this many events were applied since the
	                          last one; 0: never by count */
	uint64_t interval_ns; /* ... or this long after the last one, if any event came
	                          since; 0: never by time */
	uint32_t keep;        /* newest snapshots kept, >= 1 */
	/* Log retention, applied by the snapshot writer after each snapshot
	 * (retention.h): */
	const char *log_dir;            /* DATA_DIR/log */
	const char *snapshot_archive;   /* where the boundary snapshot is kept */
	struct retention_config retain; /* limits and the archive directory */
	const char *chain_heads;        /* DATA_DIR/chain-heads (chain_export.h); NULL: no heads */
};

struct snapshotter;

/* Starts the schedule as if a snapshot covering the log up to event_next
 * (the recovered snapshot's, or 1) had been taken at mono_ns; removes
 * temporary files a dead writer left in config->dir. Returns 0, -EINVAL or
 * -ENOMEM. */
int snapshotter_create(struct snapshotter **out, const struct snapshot_config *config,
                       uint64_t event_next, uint64_t mono_ns);

/* Called by the loop every turn, after it started a log write: reaps a
 * finished child (one line on stderr per snapshot; older snapshots beyond
 * `keep` are removed), tells a running child once the log is durable up to
 * its position, and, unless stopping, forks a new one when one is due and
 * the open log write is empty. Never blocks. */
void snapshotter_tick(struct snapshotter *snapshotter, struct service *service, uint64_t mono_ns,
                      bool stopping);

/* Clean shutdown, the loop ended with everything durable: waits for a
 * running child, then writes a snapshot in this process if any event was
 * applied since the last one. Returns 0 or -errno (said on stderr; the log
 * is intact either way). */
int snapshotter_finish(struct snapshotter *snapshotter, struct service *service);

/* Kills a running child (SIGKILL to its pid) and reaps it, then frees. */
void snapshotter_destroy(struct snapshotter *snapshotter);

#endif /* SKULD_SERVER_SNAPSHOT_H */
