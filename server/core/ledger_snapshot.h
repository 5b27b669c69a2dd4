/*
 * ledger_snapshot.h — the whole ledger state as a byte stream, and back.
 *
 * Owns: the ledger snapshot stream format, version LEDGER_SNAPSHOT_VERSION
 * (docs/FORMAT.md, "Ledger snapshot stream"; the byte tables are also at the
 * top of ledger_snapshot.c). The stream is logical: the used records of
 * every table (catalog, SKU codes, barcodes, attributes, buffers, stock
 * entries, open and remembered closed holds, open counts and transfers, the
 * idempotency window with its results), never a memory image; indexes, the
 * timer heap, free lists and cached stock indexes are rebuilt on load.
 *
 * Invariants:
 *   - Pure: no I/O, no clock. Bytes go out through the caller's sink and
 *     come in through the caller's source.
 *   - save then load into a fresh ledger of the same configuration gives a
 *     ledger with the same ledger_hash that answers every later batch, query
 *     and expiry listing exactly as the original does.
 *   - load reads version 1 streams too (written before channel push: the
 *     same parts up to KEYS, END as part 16, and a fingerprint without
 *     listings_max); the ledger then starts with no listings. It reads
 *     version 2 streams (written before discrepancies: the same parts up
 *     to LISTINGS, END as part 19, and a fingerprint without the last three
 *     configuration fields); the ledger then starts with no discrepancy
 *     records, and replay of the log after the snapshot adds the later ones.
 *   - load never trusts a byte: every length, count, id, range, reference
 *     and uniqueness rule is checked, and a bad stream is refused with a
 *     reason, never asserted on. It does not check a checksum: the file
 *     that carries the stream does (server/snapshot.c).
 *
 * Threading: save reads the ledger (one thread, or a forked copy); load
 * writes it, like ledger_apply.
 */
#ifndef SKULD_LEDGER_SNAPSHOT_H
#define SKULD_LEDGER_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "ledger.h"

#define LEDGER_SNAPSHOT_VERSION 3u

/* Where save puts bytes: write(context, bytes, size) takes all size bytes
 * and returns 0, or a negative errno that ends the save. */
struct snapshot_sink {
	int (*write)(void *context, const void *bytes, size_t size);
	void *context;
};

/* Where load takes bytes from: read(context, bytes, size) fills exactly
 * size bytes and returns 0, -ENODATA when fewer remain (a truncated
 * stream), or another negative errno. */
struct snapshot_source {
	int (*read)(void *context, void *bytes, size_t size);
	void *context;
};

/* XXH3-64 of every field of config, in declaration order, each as a
 * little-endian u64. Two configurations with equal fingerprints size every
 * table the same; a snapshot loads only into a ledger whose configuration
 * has the fingerprint it was saved with. */
uint64_t ledger_config_fingerprint(const struct ledger_config *config);

/* The stream version whose fingerprint of config is `fingerprint`:
 * LEDGER_SNAPSHOT_VERSION, 2 (streams written before discrepancies_max,
 * count_off_percent and count_off_units existed, which load with no
 * discrepancy records), 1 (before listings_max as well, which load with no
 * push state), or 0 for another configuration. */
uint32_t ledger_config_fingerprint_version(const struct ledger_config *config,
                                           uint64_t fingerprint);

/* Bytes ledger_snapshot_save writes for this ledger now. */
uint64_t ledger_snapshot_size(const struct ledger *ledger);

/* Writes the stream. Returns 0 or the sink's error. Changes nothing. */
int ledger_snapshot_save(const struct ledger *ledger, const struct snapshot_sink *sink);

/* Reads a stream into ledger, which must be fresh from ledger_create (no
 * batch applied). Reads exactly the stream's bytes, up to and including its
 * END part. Returns 0; -EBADMSG for a stream that is not valid (wrong
 * magic, version or configuration, a record out of range, a broken
 * reference, ...); -ENODATA when the source ended early; -EINVAL when the
 * ledger is not fresh; or the source's error. On failure reason (may be
 * NULL) holds one line saying what is wrong and the ledger is in an
 * unspecified state: destroy it. */
int ledger_snapshot_load(struct ledger *ledger, const struct snapshot_source *source, char *reason,
                         size_t reason_size);

#endif /* SKULD_LEDGER_SNAPSHOT_H */
