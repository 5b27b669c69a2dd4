/*
 * storage_model.c — the power-loss model (storage_model.h has the contract
 * and the layout of the model directory). TEST-ONLY: built with
 * SKULD_TEST_HOOKS.
 *
 * Invariants:
 *   - An entry is in DIR/pending before the change it undoes can reach the
 *     data directory (written, then the kernel is called), and leaves it
 *     only after the kernel returned a sync that covers the change. So at
 *     any moment a SIGKILL can come, DIR/pending holds at least every change
 *     that is not durable; holding one more (a sync done but not yet
 *     recorded) only makes a power cut undo what it could have undone
 *     anyway a moment earlier.
 *   - Every change of DIR happens under DIR/lock, opened per operation (a
 *     forked child shares its parent's open file descriptions, and flock
 *     locks belong to those), so a server and its snapshot writer keep one
 *     order of entries.
 *   - Nothing here retries or hides a failure: a bookkeeping error fails the
 *     call it wraps.
 * Not on any production path: it allocates per write and makes several
 * system calls per change.
 */
#define _GNU_SOURCE /* fallocate */
#include "storage_model.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_PATH_SIZE   1024u
#define MODEL_HEADER_SIZE 4096u
#define MODEL_SECTOR      512u
#define MODEL_MAGIC       0x4c45444f4d444c53ull /* "SLDMODEL" */

enum model_kind {
	MODEL_WRITE = 1,    /* bytes of a range: old contents follow the header */
	MODEL_SIZE = 2,     /* a file's size changed (fallocate) */
	MODEL_TRUNCATE = 3, /* O_TRUNC of a non-empty file: its whole contents follow */
	MODEL_CREATE = 4,   /* a name made by open(O_CREAT) */
	MODEL_RENAME = 5,   /* path renamed to target (a replaced target kept in N.link) */
	MODEL_UNLINK = 6,   /* path removed (the file kept in N.link) */
};

/* The header of DIR/pending/N.entry. */
struct model_entry {
	uint64_t magic;    /* MODEL_MAGIC */
	uint32_t kind;     /* enum model_kind */
	uint32_t link;     /* 1: DIR/pending/N.link keeps a file this change removed */
	uint64_t sequence; /* N: one order for every process */
	uint64_t device;   /* WRITE, SIZE, TRUNCATE: the file */
	uint64_t inode;
	uint64_t offset;   /* WRITE: the range */
	uint64_t size;     /* WRITE: its bytes; TRUNCATE: the old size */
	uint64_t old_size; /* WRITE, SIZE, TRUNCATE: the file's size before */
	uint64_t saved;    /* bytes of old contents after the header */
	uint64_t reserved_words[7];
	char directory[MODEL_PATH_SIZE]; /* CREATE, RENAME, UNLINK: the directory changed */
	char path[MODEL_PATH_SIZE];      /* CREATE, UNLINK: the name; RENAME: the source */
	char target[MODEL_PATH_SIZE];    /* RENAME: the target */
	uint8_t reserved[MODEL_HEADER_SIZE - 128 - 3 * MODEL_PATH_SIZE];
};
static_assert(sizeof(struct model_entry) == MODEL_HEADER_SIZE, "model entry header");

static struct {
	bool on;
	char dir[MODEL_PATH_SIZE];
	char pending[MODEL_PATH_SIZE];
} model;

/* ---- Helpers ----------------------------------------------------------------- */

static int path_join(char *out, size_t size, const char *left, const char *right)
{
	int length = snprintf(out, size, "%s/%s", left, right);
	return length < 0 || (size_t)length >= size ? -ENAMETOOLONG : 0;
}

/* The absolute form of path whose last component may not exist: the real
 * path of its directory (into parent) joined with its name (into full). */
static int path_resolve(const char *path, char *full, char *parent)
{
	char copy[MODEL_PATH_SIZE];
	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	char *slash = strrchr(copy, '/');
	const char *name = copy;
	const char *directory = ".";
	if (slash != NULL) {
		*slash = '\0';
		name = slash + 1;
		directory = slash == copy ? "/" : copy;
	}
	char real[PATH_MAX];
	if (realpath(directory, real) == NULL)
		return -errno;
	if (strlen(real) >= MODEL_PATH_SIZE)
		return -ENAMETOOLONG;
	strcpy(parent, real);
	return path_join(full, MODEL_PATH_SIZE, strcmp(real, "/") == 0 ? "" : real, name);
}

static int lock_take(const char *dir)
{
	char path[MODEL_PATH_SIZE + 16];
	snprintf(path, sizeof(path), "%s/lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			int ret = -errno;
			close(fd);
			return ret;
		}
	}
	return fd;
}

static void lock_drop(int fd)
{
	close(fd); /* releases the flock */
}

static int pread_all(int fd, void *bytes, size_t size, uint64_t offset, size_t *got_out)
{
	size_t got = 0;
	while (got < size) {
		ssize_t step = pread(fd, (uint8_t *)bytes + got, size - got, (off_t)(offset + got));
		if (step < 0 && errno == EINTR)
			continue;
		if (step < 0)
			return -errno;
		if (step == 0)
			break;
		got += (size_t)step;
	}
	*got_out = got;
	return 0;
}

static int pwrite_all(int fd, const void *bytes, size_t size, uint64_t offset)
{
	size_t done = 0;
	while (done < size) {
		ssize_t step = pwrite(fd, (const uint8_t *)bytes + done, size - done,
		                      (off_t)(offset + done));
		if (step < 0 && errno == EINTR)
			continue;
		if (step <= 0)
			return step < 0 ? -errno : -EIO;
		done += (size_t)step;
	}
	return 0;
}

/* Takes the next change number (under the lock). */
static int sequence_next(const char *dir, uint64_t *sequence)
{
	char path[MODEL_PATH_SIZE + 16];
	snprintf(path, sizeof(path), "%s/sequence", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	uint64_t next = 0;
	size_t got = 0;
	int ret = pread_all(fd, &next, sizeof(next), 0, &got);
	if (ret == 0 && got != sizeof(next))
		next = 1;
	*sequence = next;
	next++;
	if (ret == 0)
		ret = pwrite_all(fd, &next, sizeof(next), 0);
	close(fd);
	return ret;
}

static void entry_name(char *out, size_t size, uint64_t sequence, const char *suffix)
{
	snprintf(out, size, "%s/%016" PRIx64 ".%s", model.pending, sequence, suffix);
}

/* Writes entry (sequence set) and its saved bytes as N.part, then renames
 * it to N.entry: a process killed meanwhile leaves no half entry (and had
 * not made the change yet). */
static int entry_store(const struct model_entry *entry, const uint8_t *saved)
{
	char part[MODEL_PATH_SIZE + 32];
	char path[MODEL_PATH_SIZE + 32];
	entry_name(part, sizeof(part), entry->sequence, "part");
	entry_name(path, sizeof(path), entry->sequence, "entry");
	int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int ret = pwrite_all(fd, entry, sizeof(*entry), 0);
	if (ret == 0 && entry->saved > 0)
		ret = pwrite_all(fd, saved, entry->saved, sizeof(*entry));
	close(fd);
	if (ret == 0 && rename(part, path) != 0)
		ret = -errno;
	if (ret != 0)
		unlink(part);
	return ret;
}

static void entry_remove(uint64_t sequence, bool link)
{
	char path[MODEL_PATH_SIZE + 32];
	entry_name(path, sizeof(path), sequence, "entry");
	unlink(path);
	if (link) {
		entry_name(path, sizeof(path), sequence, "link");
		unlink(path);
	}
}

static struct model_entry *entry_new(enum model_kind kind)
{
	struct model_entry *entry = calloc(1, sizeof(*entry));
	if (entry != NULL) {
		entry->magic = MODEL_MAGIC;
		entry->kind = kind;
	}
	return entry;
}

/* Records a new entry: takes the lock, numbers it, makes the link (from
 * link_from, if not NULL), stores it. On success *lock is held and the
 * caller drops it after the kernel call. */
static int entry_record(struct model_entry *entry, const uint8_t *saved, const char *link_from,
                        int *lock)
{
	*lock = lock_take(model.dir);
	if (*lock < 0)
		return *lock;
	int ret = sequence_next(model.dir, &entry->sequence);
	if (ret == 0 && link_from != NULL) {
		char path[MODEL_PATH_SIZE + 32];
		entry_name(path, sizeof(path), entry->sequence, "link");
		ret = link(link_from, path) == 0 ? 0 : -errno;
		entry->link = ret == 0;
	}
	if (ret == 0)
		ret = entry_store(entry, saved);
	if (ret != 0) {
		entry_remove(entry->sequence, entry->link);
		lock_drop(*lock);
		*lock = -1;
	}
	return ret;
}

static bool entry_load(const char *path, struct model_entry *entry)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size_t got = 0;
	int ret = pread_all(fd, entry, sizeof(*entry), 0, &got);
	close(fd);
	return ret == 0 && got == sizeof(*entry) && entry->magic == MODEL_MAGIC;
}

static bool name_is_entry(const char *name)
{
	size_t length = strlen(name);
	return length == 16 + 6 && strcmp(name + 16, ".entry") == 0;
}

/* ---- Set-up -------------------------------------------------------------------- */

int storage_model_init(const char *dir, const char *data_dir, char *message, size_t message_size)
{
	char real[PATH_MAX];
	char root[PATH_MAX];
	if (realpath(dir, real) == NULL || realpath(data_dir, root) == NULL) {
		int ret = -errno;
		snprintf(message, message_size, "power model: %s or %s: %s", dir, data_dir,
		         strerror(errno));
		return ret;
	}
	if (strlen(real) + 32 > MODEL_PATH_SIZE || strlen(root) + 64 > MODEL_PATH_SIZE) {
		snprintf(message, message_size, "power model: path too long");
		return -ENAMETOOLONG;
	}
	struct stat dir_status;
	struct stat root_status;
	if (stat(real, &dir_status) != 0 || stat(root, &root_status) != 0)
		return -errno;
	if (dir_status.st_dev != root_status.st_dev) {
		snprintf(message, message_size,
		         "power model: %s and %s are on different file systems (the model "
		         "keeps hard links)",
		         real, root);
		return -EXDEV;
	}
	strcpy(model.dir, real);
	path_join(model.pending, sizeof(model.pending), real, "pending"); /* fits: checked */
	if (mkdir(model.pending, 0755) != 0 && errno != EEXIST) {
		int ret = -errno;
		snprintf(message, message_size, "power model: mkdir %s: %s", model.pending,
		         strerror(errno));
		return ret;
	}
	char path[MODEL_PATH_SIZE + 16];
	path_join(path, sizeof(path), real, "root");
	FILE *file = fopen(path, "w");
	if (file == NULL || fprintf(file, "%s\n", root) < 0 || fclose(file) != 0) {
		snprintf(message, message_size, "power model: cannot write %s", path);
		return -EIO;
	}
	model.on = true;
	return 0;
}

/* ---- Recording changes ------------------------------------------------------------- */

/* A write of size bytes at offset of fd is about to be made: records the
 * range's old contents. */
static int note_write(int fd, uint64_t offset, uint64_t size)
{
	struct stat status;
	if (fstat(fd, &status) != 0)
		return -errno;
	if (!S_ISREG(status.st_mode) || size == 0)
		return 0;
	uint64_t old_size = (uint64_t)status.st_size;
	uint64_t keep = offset < old_size ? old_size - offset : 0;
	keep = keep < size ? keep : size;
	uint8_t *saved = keep > 0 ? malloc(keep) : NULL;
	struct model_entry *entry = entry_new(MODEL_WRITE);
	int ret = entry == NULL || (keep > 0 && saved == NULL) ? -ENOMEM : 0;
	size_t got = 0;
	if (ret == 0 && keep > 0)
		ret = pread_all(fd, saved, keep, offset, &got);
	if (ret == 0) {
		entry->device = status.st_dev;
		entry->inode = status.st_ino;
		entry->offset = offset;
		entry->size = size;
		entry->old_size = old_size;
		entry->saved = got;
		int lock = -1;
		ret = entry_record(entry, saved, NULL, &lock);
		if (ret == 0)
			lock_drop(lock);
	}
	free(saved);
	free(entry);
	return ret;
}

int storage_model_write_begin(int fd, uint64_t offset, uint32_t size)
{
	return model.on ? note_write(fd, offset, size) : 0;
}

ssize_t storage_model_pwrite(int fd, const void *buffer, size_t size, off_t offset)
{
	int ret = model.on ? note_write(fd, (uint64_t)offset, size) : 0;
	if (ret != 0) {
		errno = -ret;
		return -1;
	}
	return pwrite(fd, buffer, size, offset);
}

/* A name change of kind on path (and target): the entry is recorded and
 * the lock held while the kernel makes the change; an entry for a change
 * that failed is removed again. Returns the kernel's result. */
static int name_change(enum model_kind kind, const char *path, const char *target, int flags,
                       mode_t mode)
{
	struct model_entry *entry = entry_new(kind);
	if (entry == NULL) {
		errno = ENOMEM;
		return -1;
	}
	int ret = path_resolve(path, entry->path, entry->directory);
	char target_parent[MODEL_PATH_SIZE];
	if (ret == 0 && target != NULL)
		ret = path_resolve(target, entry->target, target_parent);
	if (ret == 0 && kind == MODEL_RENAME)
		strcpy(entry->directory, target_parent);
	const char *link_from = NULL;
	struct stat status;
	if (kind == MODEL_UNLINK)
		link_from = path;
	else if (kind == MODEL_RENAME && stat(target, &status) == 0)
		link_from = target;
	int lock = -1;
	if (ret == 0)
		ret = entry_record(entry, NULL, link_from, &lock);
	if (ret != 0) {
		free(entry);
		errno = -ret;
		return -1;
	}
	int result;
	if (kind == MODEL_CREATE)
		result = open(path, flags, mode);
	else if (kind == MODEL_RENAME)
		result = rename(path, target);
	else
		result = unlink(path);
	int error = errno;
	if (result < 0)
		entry_remove(entry->sequence, entry->link);
	lock_drop(lock);
	free(entry);
	errno = error;
	return result;
}

/* O_TRUNC of an existing non-empty file: records its whole contents. */
static int note_truncate(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat status;
	int ret = fstat(fd, &status) == 0 ? 0 : -errno;
	if (ret != 0 || !S_ISREG(status.st_mode) || status.st_size == 0) {
		close(fd);
		return ret;
	}
	uint64_t size = (uint64_t)status.st_size;
	uint8_t *saved = malloc(size);
	struct model_entry *entry = entry_new(MODEL_TRUNCATE);
	size_t got = 0;
	ret = saved == NULL || entry == NULL ? -ENOMEM : pread_all(fd, saved, size, 0, &got);
	close(fd);
	if (ret == 0) {
		entry->device = status.st_dev;
		entry->inode = status.st_ino;
		entry->size = size;
		entry->old_size = size;
		entry->saved = got;
		int lock = -1;
		ret = entry_record(entry, saved, NULL, &lock);
		if (ret == 0)
			lock_drop(lock);
	}
	free(saved);
	free(entry);
	return ret;
}

int storage_model_open(const char *path, int flags, mode_t mode)
{
	if (!model.on || (flags & (O_CREAT | O_TRUNC)) == 0)
		return open(path, flags, mode);
	struct stat status;
	if ((flags & O_CREAT) && stat(path, &status) != 0 && errno == ENOENT)
		return name_change(MODEL_CREATE, path, NULL, flags, mode);
	if (flags & O_TRUNC) {
		int ret = note_truncate(path);
		if (ret != 0) {
			errno = -ret;
			return -1;
		}
	}
	return open(path, flags, mode);
}

int storage_model_rename(const char *from, const char *to)
{
	if (!model.on)
		return rename(from, to);
	return name_change(MODEL_RENAME, from, to, 0, 0);
}

int storage_model_unlink(const char *path)
{
	if (!model.on)
		return unlink(path);
	return name_change(MODEL_UNLINK, path, NULL, 0, 0);
}

int storage_model_fallocate(int fd, int mode, off_t offset, off_t size)
{
	if (model.on) {
		struct stat status;
		struct model_entry *entry = entry_new(MODEL_SIZE);
		int ret = entry == NULL ? -ENOMEM : fstat(fd, &status) == 0 ? 0 : -errno;
		if (ret == 0) {
			entry->device = status.st_dev;
			entry->inode = status.st_ino;
			entry->old_size = (uint64_t)status.st_size;
			int lock = -1;
			ret = entry_record(entry, NULL, NULL, &lock);
			if (ret == 0)
				lock_drop(lock);
		}
		free(entry);
		if (ret != 0) {
			errno = -ret;
			return -1;
		}
	}
	return fallocate(fd, mode, offset, size);
}

/* ---- Syncs ----------------------------------------------------------------------- */

/* Removes the entries a completed sync of fd made durable: its data and
 * size changes (a file), or the name changes in it (a directory). */
int storage_model_synced(int fd)
{
	if (!model.on)
		return 0;
	struct stat status;
	if (fstat(fd, &status) != 0)
		return -errno;
	bool directory = S_ISDIR(status.st_mode);
	char directory_path[MODEL_PATH_SIZE];
	if (directory) {
		char link_path[64];
		snprintf(link_path, sizeof(link_path), "/proc/self/fd/%d", fd);
		ssize_t length = readlink(link_path, directory_path, sizeof(directory_path) - 1);
		if (length < 0)
			return -errno;
		directory_path[length] = '\0';
	}
	int lock = lock_take(model.dir);
	if (lock < 0)
		return lock;
	DIR *pending = opendir(model.pending);
	if (pending == NULL) {
		int ret = -errno;
		lock_drop(lock);
		return ret;
	}
	struct model_entry *entry = malloc(sizeof(*entry));
	int ret = entry == NULL ? -ENOMEM : 0;
	struct dirent *item;
	while (ret == 0 && (item = readdir(pending)) != NULL) {
		if (!name_is_entry(item->d_name))
			continue;
		char path[MODEL_PATH_SIZE + 32];
		if (path_join(path, sizeof(path), model.pending, item->d_name) != 0 ||
		    !entry_load(path, entry))
			continue;
		bool covered;
		if (directory)
			covered = entry->kind >= MODEL_CREATE &&
			          strcmp(entry->directory, directory_path) == 0;
		else
			covered = entry->kind < MODEL_CREATE && entry->device == status.st_dev &&
			          entry->inode == status.st_ino;
		if (covered)
			entry_remove(entry->sequence, entry->link);
	}
	closedir(pending);
	free(entry);
	lock_drop(lock);
	return ret;
}

static int sync_then_note(int (*sync_call)(int), int fd)
{
	if (sync_call(fd) != 0)
		return -1;
	int ret = storage_model_synced(fd);
	if (ret != 0) {
		errno = -ret;
		return -1;
	}
	return 0;
}

int storage_model_fdatasync(int fd)
{
	return sync_then_note(fdatasync, fd);
}

int storage_model_fsync(int fd)
{
	return sync_then_note(fsync, fd);
}

/* ---- The power cut ------------------------------------------------------------------ */

static uint64_t random_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Where each file (device, inode) has a name now. */
struct file_name {
	uint64_t device;
	uint64_t inode;
	char path[MODEL_PATH_SIZE];
};

struct file_names {
	struct file_name *names;
	size_t count;
	size_t capacity;
};

static int names_add(struct file_names *names, const struct stat *status, const char *path)
{
	if (names->count == names->capacity) {
		size_t grown = names->capacity == 0 ? 64 : names->capacity * 2;
		struct file_name *list = realloc(names->names, grown * sizeof(*list));
		if (list == NULL)
			return -ENOMEM;
		names->names = list;
		names->capacity = grown;
	}
	struct file_name *name = &names->names[names->count++];
	name->device = status->st_dev;
	name->inode = status->st_ino;
	snprintf(name->path, sizeof(name->path), "%s", path);
	return 0;
}

/* Every regular file under path (depth-bounded), skipping the model's own
 * directory. */
static int names_scan(struct file_names *names, const char *path, int depth)
{
	if (depth > 8 || strcmp(path, model.dir) == 0)
		return 0;
	DIR *dir = opendir(path);
	if (dir == NULL)
		return -errno;
	int ret = 0;
	struct dirent *item;
	while (ret == 0 && (item = readdir(dir)) != NULL) {
		if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0)
			continue;
		char child[MODEL_PATH_SIZE];
		if (path_join(child, sizeof(child), path, item->d_name) != 0)
			continue;
		struct stat status;
		if (lstat(child, &status) != 0)
			continue;
		if (S_ISDIR(status.st_mode))
			ret = names_scan(names, child, depth + 1);
		else if (S_ISREG(status.st_mode))
			ret = names_add(names, &status, child);
	}
	closedir(dir);
	return ret;
}

static const char *names_find(const struct file_names *names, uint64_t device, uint64_t inode)
{
	for (size_t i = 0; i < names->count; i++)
		if (names->names[i].device == device && names->names[i].inode == inode)
			return names->names[i].path;
	return NULL;
}

/* A pending entry in memory, with the sectors the cut kept of it. */
struct cut_entry {
	struct model_entry header;
	uint8_t *kept; /* WRITE: one byte per sector, 1 = this write's bytes survive */
};

/* True when a newer write (index > self) of the same file kept the sector
 * at byte position `at`. */
static bool sector_settled(const struct cut_entry *entries, size_t count, size_t self, uint64_t at)
{
	const struct model_entry *mine = &entries[self].header;
	for (size_t i = self + 1; i < count; i++) {
		const struct model_entry *other = &entries[i].header;
		if (other->kind != MODEL_WRITE || entries[i].kept == NULL ||
		    other->device != mine->device || other->inode != mine->inode ||
		    at < other->offset || at >= other->offset + other->size)
			continue;
		if (entries[i].kept[(at - other->offset) / MODEL_SECTOR])
			return true;
	}
	return false;
}

static int saved_read(const char *pending, uint64_t sequence, uint8_t *bytes, uint64_t size)
{
	char path[MODEL_PATH_SIZE + 32];
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".entry", pending, sequence);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	int ret = pread_all(fd, bytes, size, MODEL_HEADER_SIZE, &got);
	close(fd);
	return ret == 0 && got != size ? -EIO : ret;
}

/* Undoes a write not durable, sector by sector (see the header). */
static int cut_write(struct cut_entry *entries, size_t count, size_t self, const char *path,
                     uint64_t *random, struct storage_model_cut *cut)
{
	const struct model_entry *entry = &entries[self].header;
	uint64_t sectors = (entry->size + MODEL_SECTOR - 1) / MODEL_SECTOR;
	entries[self].kept = calloc(sectors, 1);
	uint8_t *saved = entry->saved > 0 ? malloc(entry->saved) : NULL;
	if (entries[self].kept == NULL || (entry->saved > 0 && saved == NULL)) {
		free(saved);
		return -ENOMEM;
	}
	int ret = entry->saved > 0 ? saved_read(model.pending, entry->sequence, saved, entry->saved)
	                           : 0;
	int fd = ret == 0 ? open(path, O_RDWR | O_CLOEXEC) : -1;
	if (ret == 0 && fd < 0)
		ret = -errno;
	uint32_t pattern = (uint32_t)(random_next(random) % 3); /* 0 kept, 1 lost, 2 torn */
	uint64_t kept = 0;
	static const uint8_t zeros[MODEL_SECTOR];
	for (uint64_t sector = 0; ret == 0 && sector < sectors; sector++) {
		uint64_t start = sector * MODEL_SECTOR;
		uint64_t end =
		        start + MODEL_SECTOR < entry->size ? start + MODEL_SECTOR : entry->size;
		bool keep = pattern == 0 || (pattern == 2 && (random_next(random) & 1));
		if (keep || sector_settled(entries, count, self, entry->offset + start)) {
			entries[self].kept[sector] = 1;
			kept++;
			continue;
		}
		/* Back to the old bytes; past what was saved (the old end of
		 * the file), zeros. */
		uint64_t from_saved = start < entry->saved
		                              ? (end < entry->saved ? end : entry->saved) - start
		                              : 0;
		if (from_saved > 0)
			ret = pwrite_all(fd, saved + start, from_saved, entry->offset + start);
		if (ret == 0 && end - start > from_saved)
			ret = pwrite_all(fd, zeros, end - start - from_saved,
			                 entry->offset + start + from_saved);
	}
	if (fd >= 0)
		close(fd);
	free(saved);
	cut->writes++;
	cut->sectors_kept += kept;
	cut->sectors_lost += sectors - kept;
	if (kept == sectors)
		cut->writes_kept++;
	else if (kept == 0)
		cut->writes_lost++;
	else
		cut->writes_torn++;
	return ret;
}

/* Undoes a size change (SIZE) or a truncation (TRUNCATE), or not. */
static int cut_size(const struct model_entry *entry, const char *path, uint64_t *random,
                    struct storage_model_cut *cut)
{
	cut->sizes++;
	if (random_next(random) & 1)
		return 0;
	cut->sizes_undone++;
	if (truncate(path, (off_t)entry->old_size) != 0)
		return -errno;
	if (entry->kind != MODEL_TRUNCATE || entry->saved == 0)
		return 0;
	uint8_t *saved = malloc(entry->saved);
	if (saved == NULL)
		return -ENOMEM;
	int ret = saved_read(model.pending, entry->sequence, saved, entry->saved);
	int fd = ret == 0 ? open(path, O_RDWR | O_CLOEXEC) : -1;
	if (ret == 0 && fd < 0)
		ret = -errno;
	if (ret == 0)
		ret = pwrite_all(fd, saved, entry->saved, 0);
	if (fd >= 0)
		close(fd);
	free(saved);
	return ret;
}

/* Undoes one name change. Newer changes are undone first, so the names are
 * as this change left them, or as before it when the process died between
 * recording it and making it: a source that still exists (rename) or a
 * name still there (unlink) says the change was never made. */
static int cut_name(const struct model_entry *entry)
{
	char link_path[MODEL_PATH_SIZE + 32];
	entry_name(link_path, sizeof(link_path), entry->sequence, "link");
	struct stat status;
	switch (entry->kind) {
	case MODEL_CREATE:
		if (unlink(entry->path) != 0 && errno != ENOENT)
			return -errno;
		return 0;
	case MODEL_RENAME:
		if (lstat(entry->path, &status) == 0)
			return 0; /* never renamed */
		if (rename(entry->target, entry->path) != 0)
			return -errno;
		if (entry->link && link(link_path, entry->target) != 0)
			return -errno;
		return 0;
	case MODEL_UNLINK:
		if (lstat(entry->path, &status) == 0)
			return 0; /* never removed */
		if (entry->link && link(link_path, entry->path) != 0)
			return -errno;
		return 0;
	default:
		return -EINVAL;
	}
}

static int pending_load(struct cut_entry **entries_out, size_t *count_out)
{
	struct dirent **list = NULL;
	int listed = scandir(model.pending, &list, NULL, alphasort);
	if (listed < 0)
		return -errno;
	struct cut_entry *entries = calloc((size_t)listed + 1, sizeof(*entries));
	size_t count = 0;
	int ret = entries == NULL ? -ENOMEM : 0;
	for (int i = 0; i < listed; i++) {
		char path[MODEL_PATH_SIZE + 32];
		if (ret == 0 && name_is_entry(list[i]->d_name) &&
		    path_join(path, sizeof(path), model.pending, list[i]->d_name) == 0) {
			if (entry_load(path, &entries[count].header))
				count++;
			else
				ret = -EBADMSG;
		}
		free(list[i]);
	}
	free(list);
	*entries_out = entries;
	*count_out = count;
	return ret;
}

static void pending_clear(void)
{
	DIR *dir = opendir(model.pending);
	if (dir == NULL)
		return;
	struct dirent *item;
	while ((item = readdir(dir)) != NULL) {
		char path[MODEL_PATH_SIZE + 32];
		if (item->d_name[0] != '.' &&
		    path_join(path, sizeof(path), model.pending, item->d_name) == 0)
			unlink(path);
	}
	closedir(dir);
}

/* The cut itself, under the lock: data newest first, then names. */
static int cut_apply(struct cut_entry *entries, size_t count, struct file_names *names,
                     uint64_t *random, struct storage_model_cut *cut)
{
	int ret = 0;
	for (size_t i = count; ret == 0 && i-- > 0;) {
		const struct model_entry *entry = &entries[i].header;
		if (entry->kind >= MODEL_CREATE)
			continue;
		const char *path = names_find(names, entry->device, entry->inode);
		if (path == NULL) {
			cut->files_gone++;
			continue;
		}
		if (entry->kind == MODEL_WRITE)
			ret = cut_write(entries, count, i, path, random, cut);
		else
			ret = cut_size(entry, path, random, cut);
	}
	size_t name_count = 0;
	for (size_t i = 0; i < count; i++)
		name_count += entries[i].header.kind >= MODEL_CREATE;
	size_t keep = (size_t)(random_next(random) % (name_count + 1));
	cut->names = (uint32_t)name_count;
	cut->names_undone = (uint32_t)(name_count - keep);
	size_t seen = name_count;
	for (size_t i = count; ret == 0 && i-- > 0;) {
		if (entries[i].header.kind < MODEL_CREATE)
			continue;
		if (--seen < keep)
			break;
		ret = cut_name(&entries[i].header);
	}
	return ret;
}

int storage_model_power_cut(const char *dir, uint64_t seed, struct storage_model_cut *cut,
                            char *message, size_t message_size)
{
	memset(cut, 0, sizeof(*cut));
	char real[PATH_MAX];
	if (realpath(dir, real) == NULL || strlen(real) + 32 > MODEL_PATH_SIZE) {
		snprintf(message, message_size, "power cut: %s: %s", dir, strerror(errno));
		return -ENOENT;
	}
	strcpy(model.dir, real);
	path_join(model.pending, sizeof(model.pending), real, "pending"); /* fits: checked */
	char root[MODEL_PATH_SIZE];
	char path[MODEL_PATH_SIZE + 16];
	path_join(path, sizeof(path), real, "root");
	FILE *file = fopen(path, "r");
	if (file == NULL || fgets(root, sizeof(root), file) == NULL) {
		if (file != NULL)
			fclose(file);
		snprintf(message, message_size, "power cut: cannot read %s", path);
		return -ENOENT;
	}
	fclose(file);
	root[strcspn(root, "\n")] = '\0';

	int lock = lock_take(real);
	if (lock < 0) {
		snprintf(message, message_size, "power cut: lock: %s", strerror(-lock));
		return lock;
	}
	struct cut_entry *entries = NULL;
	size_t count = 0;
	struct file_names names = {0};
	int ret = pending_load(&entries, &count);
	if (ret == 0)
		ret = names_scan(&names, root, 0);
	for (size_t i = 0; ret == 0 && i < count; i++) {
		if (!entries[i].header.link)
			continue;
		char link_path[MODEL_PATH_SIZE + 32];
		entry_name(link_path, sizeof(link_path), entries[i].header.sequence, "link");
		struct stat status;
		if (stat(link_path, &status) == 0)
			ret = names_add(&names, &status, link_path);
	}
	uint64_t random = seed;
	if (ret == 0)
		ret = cut_apply(entries, count, &names, &random, cut);
	if (ret == 0)
		pending_clear();
	else
		snprintf(message, message_size, "power cut in %s: %s", real, strerror(-ret));
	for (size_t i = 0; entries != NULL && i < count; i++)
		free(entries[i].kept);
	free(entries);
	free(names.names);
	lock_drop(lock);
	return ret;
}
