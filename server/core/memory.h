/*
 * memory.h — start-up allocation for the ledger's tables (the log writer
 * allocates its write buffers the same way, with these constants).
 *
 * Every table is allocated once, in ledger_create, and then never grows.
 * Every table starts on a cache line (64-byte stock and hold records each
 * take exactly one line).
 * core_calloc writes every byte once, so the kernel backs the whole table
 * with real pages at start-up: no page fault (and no out-of-memory surprise)
 * ever happens later on the apply path. Tables of 2 MiB and more are aligned
 * to 2 MiB and offered to the kernel for transparent huge pages: the hash
 * indexes are probed at random, and with 4 KiB pages nearly every probe of
 * a large table would also miss the TLB.
 */
#ifndef SKULD_CORE_MEMORY_H
#define SKULD_CORE_MEMORY_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CORE_HUGE_PAGE  ((size_t)2 << 20)
#define CORE_CACHE_LINE ((size_t)64)

/* Like calloc (NULL on overflow or exhaustion), with every page resident.
 * Free with free(). */
static inline void *core_calloc(size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	size_t bytes = count * size;
	void *memory = NULL;
	if (bytes < CORE_HUGE_PAGE) {
		/* Cache-line aligned, so 64-byte records never straddle lines. */
		size_t rounded = (bytes + CORE_CACHE_LINE - 1) & ~(CORE_CACHE_LINE - 1);
		if (posix_memalign(&memory, CORE_CACHE_LINE, rounded ? rounded : CORE_CACHE_LINE))
			return NULL;
		memset(memory, 0, rounded);
		return memory;
	}
	size_t rounded = (bytes + CORE_HUGE_PAGE - 1) & ~(CORE_HUGE_PAGE - 1);
	if (posix_memalign(&memory, CORE_HUGE_PAGE, rounded) != 0)
		return NULL;
	madvise(memory, rounded, MADV_HUGEPAGE); /* advice only: failure is fine */
	memset(memory, 0, rounded);
	return memory;
}

#endif /* SKULD_CORE_MEMORY_H */
