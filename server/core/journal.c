/*
 * journal.c — storage of undo entries; see journal.h. The undo itself lives
 * in ledger.c, which knows every structure an entry can name.
 */
#include "memory.h"
#include "journal.h"

#include <errno.h>
#include <stdlib.h>

#include "skuld_assert.h"

int journal_init(struct journal *journal, uint32_t capacity)
{
	memset(journal, 0, sizeof(*journal));
	journal->entries = core_calloc(capacity ? capacity : 1, sizeof(struct journal_entry));
	if (journal->entries == NULL)
		return -ENOMEM;
	journal->capacity = capacity;
	return 0;
}

void journal_free(struct journal *journal)
{
	free(journal->entries);
	memset(journal, 0, sizeof(*journal));
}

void journal_record(struct journal *journal, uint32_t kind, void *target, uint32_t index,
                    uint64_t value)
{
	SKULD_ASSERT(journal->active);
	SKULD_ASSERT(journal->count < journal->capacity);
	struct journal_entry *entry = &journal->entries[journal->count++];
	entry->kind = kind;
	entry->size = 0;
	entry->index = index;
	entry->target = target;
	entry->value = value;
}

void journal_save(struct journal *journal, void *target, uint32_t size)
{
	if (!journal->active)
		return;
	unsigned char *bytes = target;
	while (size > 0) {
		uint32_t piece = size < JOURNAL_BYTES_MAX ? size : JOURNAL_BYTES_MAX;
		SKULD_ASSERT(journal->count < journal->capacity);
		struct journal_entry *entry = &journal->entries[journal->count++];
		entry->kind = JOURNAL_BYTES;
		entry->size = piece;
		entry->target = bytes;
		memcpy(entry->bytes, bytes, piece);
		bytes += piece;
		size -= piece;
	}
}

void journal_push_deleted(struct journal *journal, void *table, uint32_t index, const void *record,
                          uint32_t size)
{
	if (!journal->active)
		return;
	SKULD_ASSERT(size <= JOURNAL_BYTES_MAX);
	journal_push(journal, JOURNAL_TABLE_DELETE, table, index, 0);
	struct journal_entry *entry = &journal->entries[journal->count - 1];
	entry->size = size;
	memcpy(entry->bytes, record, size);
}
