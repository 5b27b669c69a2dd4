/*
 * chain_export.h — the SHA-256 chain head of the log (server/core/chain.h),
 * computed in the background at every snapshot and exported for auditors.
 *
 * Owns: the head files and the export. After the snapshot writer (the
 * forked child) has put snapshot-X.sks in place, it extends the chain from
 * the newest earlier snapshot that has a head (snapshot-W.head, W < X, with
 * snapshot-W.sks still present: its header gives the log position to start
 * from) — or from the start of the log when there is none — over every
 * record up to X's position, and writes
 *   snapshot-X.head          "SEQ:HEX\n", the head at X's position
 *   DATA_DIR/chain-heads     one line appended: "SEQ:HEX TIME\n" (UTC, RFC 3339)
 * each fsynced. The loop never hashes: the cost (about 170 ns per event)
 * falls on the child, between snapshots. The parent reads snapshot-X.head
 * once the child is done and publishes it in STATS (chain_head_event,
 * chain_head); `skuldctl chain-head` prints it; `skuld-replay verify --head`
 * proves the log up to it unchanged.
 *
 * When the log no longer starts at segment 1 (retention moved it) and no
 * earlier head exists, no head can be computed: a warning, nothing written.
 */
#ifndef SKULD_SERVER_CHAIN_EXPORT_H
#define SKULD_SERVER_CHAIN_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "log.h"

/* Computes and writes the head at position for snapshot number (its last
 * event) in snapshot_dir; appends it to heads_file. start (NULL: the start
 * of the log) and start_head are where the walk begins. Returns 0 or -errno
 * with a message. */
int chain_export(const char *log_dir, const char *snapshot_dir, uint64_t number,
                 const struct log_position *start, const struct chain_head *start_head,
                 const struct log_position *position, const char *heads_file,
                 struct chain_head *out, char *message, size_t message_size);

/* Reads snapshot_dir/snapshot-<number>.head. Returns 0 or -errno / -EINVAL. */
int chain_head_read(const char *snapshot_dir, uint64_t number, struct chain_head *out);

#endif /* SKULD_SERVER_CHAIN_EXPORT_H */
