/*
 * storage_model.h — the power-loss model behind the storage seam (storage.h).
 * TEST-ONLY: compiled only with the CMake option SKULD_TEST_HOOKS, used by a
 * server only when SKULD_TEST_POWER_MODEL=DIR is set, and by tests to cut
 * the power.
 *
 * Owns: the model directory DIR, which says at every moment what a power
 * cut could take away from the data directory. The data directory itself
 * always holds what the running server sees (the page cache's view); DIR
 * holds the undo of everything not yet durable:
 *
 *   DIR/root          the data directory's real path (text, one line)
 *   DIR/lock          flock()ed around every change of DIR (the server and a
 *                     forked snapshot writer may both use the model)
 *   DIR/sequence      the next change number (u64), one order for all
 *                     processes
 *   DIR/pending/N.entry   one change not yet covered by a sync: a 4096-byte
 *                     header (struct in storage_model.c) and, for a write,
 *                     the bytes the range held before it
 *   DIR/pending/N.link    a hard link keeping a file that an unlink or a
 *                     rename over it removed, until that is durable
 *   DIR/pending/N.part    an entry being written: renamed to N.entry when
 *                     whole, before the change is made; a cut ignores it
 *
 * What is durable (the model's guarantees, which are POSIX's minimum):
 *   - A write (pwrite, or the loop's io_uring write reported through
 *     write_begin) is recorded before it reaches the file, with the old
 *     contents of its range. It becomes durable when an fdatasync or fsync
 *     of the same file (same inode, any descriptor, any process) completes
 *     successfully after it; so does a size change (fallocate, O_TRUNC).
 *   - A name change (a file created with O_CREAT, a rename, an unlink) in
 *     directory D becomes durable when an fsync of D completes. A rename
 *     counts as a change of its target's directory.
 *   - Everything else is not durable.
 * What a power cut does (storage_model_power_cut), with a seeded generator:
 *   - Every write not durable is kept whole, lost whole, or torn, with the
 *     same odds for each; torn keeps a random subset of its 512-byte
 *     sectors (not a prefix) and puts the old bytes back in the others.
 *     Writes are undone newest first, and a sector kept from a newer write
 *     is not touched by an older one, so each sector ends as one of the
 *     versions it went through.
 *   - Every size change not durable is kept or undone, even odds.
 *   - The name changes not durable since the last fsync of their directory
 *     survive as a random prefix in time order (journalling file systems
 *     commit metadata in order); the rest are undone newest first.
 *   - A change recorded but never made (the process died between the two)
 *     is undone as a no-op.
 * What it does not model: reordering of name changes beyond that prefix;
 * lost writes that extended a file still leave the file's new size (their
 * bytes read as zeros); a sync that the kernel completed just before the
 * process died but that was not yet recorded counts as not made (a power
 * cut just before it completed gives the same disk); media errors and
 * silent corruption (the corruption fixtures of the tests do those); any
 * file written without the seam (DATA_DIR/port, DATA_DIR/lock; the data
 * directory and DATA_DIR/log are assumed durable once they exist).
 */
#ifndef SKULD_SERVER_STORAGE_MODEL_H
#define SKULD_SERVER_STORAGE_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Prepares DIR (made if missing, with DIR/pending) for data_dir: both must
 * be on one file system (the model keeps hard links). Entries left by an
 * earlier process stay pending. Returns 0 or -errno with one line in
 * message. */
int storage_model_init(const char *dir, const char *data_dir, char *message, size_t message_size);

/* The calls of the seam, with the model's bookkeeping around the kernel's
 * call (libc conventions: -1 and errno). A failure of the bookkeeping
 * itself fails the call with its errno, so the server stops rather than
 * run unmodelled. */
int storage_model_open(const char *path, int flags, mode_t mode);
ssize_t storage_model_pwrite(int fd, const void *buffer, size_t size, off_t offset);
int storage_model_fdatasync(int fd);
int storage_model_fsync(int fd);
int storage_model_fallocate(int fd, int mode, off_t offset, off_t size);
int storage_model_rename(const char *from, const char *to);
int storage_model_unlink(const char *path);

/* The loop's asynchronous write: before it is submitted (0 or -errno), and
 * after a successful fdatasync of fd (0 or -errno). */
int storage_model_write_begin(int fd, uint64_t offset, uint32_t size);
int storage_model_synced(int fd);

/* What a power cut did. */
struct storage_model_cut {
	uint32_t writes;       /* writes not durable */
	uint32_t writes_kept;  /* ... of which every sector survived */
	uint32_t writes_lost;  /* ... none survived */
	uint32_t writes_torn;  /* ... some did */
	uint64_t sectors_kept; /* 512-byte sectors of those writes kept */
	uint64_t sectors_lost; /* ... and put back to their old bytes */
	uint32_t sizes;        /* size changes not durable */
	uint32_t sizes_undone; /* ... undone */
	uint32_t names;        /* name changes not durable */
	uint32_t names_undone; /* ... undone */
	uint32_t files_gone;   /* entries whose file no longer has a name */
};

/* Cuts the power: turns the data directory recorded in DIR into what the
 * disk would hold after a power cut now, as the file header says, and
 * empties DIR/pending (so a server started next on it starts from a disk
 * that is entirely durable). No process may be using the model (kill the
 * server first). Returns 0, or -errno with one line in message. */
int storage_model_power_cut(const char *dir, uint64_t seed, struct storage_model_cut *cut,
                            char *message, size_t message_size);

#endif /* SKULD_SERVER_STORAGE_MODEL_H */
