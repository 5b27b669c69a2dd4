/*
 * session.c — the session table: a hash index over a fixed array, an LRU
 * list of detached sessions and the list of sessions whose record is in the
 * open log write (session.h).
 */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skuld_assert.h"

static uint32_t slots_for(uint32_t capacity)
{
	uint32_t slots = 2;
	while (slots < 2ull * capacity)
		slots <<= 1;
	return slots;
}

uint64_t session_table_bytes(uint32_t capacity)
{
	return (uint64_t)capacity * (sizeof(struct session) + sizeof(uint32_t)) +
	       (uint64_t)slots_for(capacity) * sizeof(uint32_t);
}

int session_table_init(struct session_table *table, uint32_t capacity)
{
	memset(table, 0, sizeof(*table));
	if (capacity == 0)
		return -EINVAL;
	uint32_t slots = slots_for(capacity);
	table->sessions = calloc(capacity, sizeof(struct session));
	table->slots = calloc(slots, sizeof(uint32_t));
	table->free_list = calloc(capacity, sizeof(uint32_t));
	if (table->sessions == NULL || table->slots == NULL || table->free_list == NULL) {
		session_table_destroy(table);
		return -ENOMEM;
	}
	table->capacity = capacity;
	table->slot_mask = slots - 1;
	for (uint32_t i = 0; i < capacity; i++)
		table->free_list[i] = capacity - 1 - i;
	table->free_count = capacity;
	table->id_next = 1;
	return 0;
}

void session_table_destroy(struct session_table *table)
{
	free(table->sessions);
	free(table->slots);
	free(table->free_list);
	memset(table, 0, sizeof(*table));
}

static uint32_t client_hash(skuld_u128 client)
{
	uint64_t mixed = client.lo * 0x9e3779b97f4a7c15ull ^ client.hi * 0xc2b2ae3d27d4eb4full;
	return (uint32_t)(mixed >> 32) ^ (uint32_t)mixed;
}

/* Slot holding client, or the empty slot where it would go. */
static uint32_t slot_find(const struct session_table *table, skuld_u128 client)
{
	uint32_t slot = client_hash(client) & table->slot_mask;
	for (;;) {
		uint32_t entry = table->slots[slot];
		if (entry == SESSION_NONE ||
		    skuld_u128_equal(table->sessions[entry - 1].client, client))
			return slot;
		slot = (slot + 1) & table->slot_mask;
	}
}

struct session *session_find(struct session_table *table, skuld_u128 client)
{
	uint32_t entry = table->slots[slot_find(table, client)];
	return entry == SESSION_NONE ? NULL : &table->sessions[entry - 1];
}

/* ---- Lists ------------------------------------------------------------ */

static void lru_unlink(struct session_table *table, struct session *session)
{
	SKULD_ASSERT(session->on_lru);
	if (session->lru_prev != SESSION_NONE)
		table->sessions[session->lru_prev - 1].lru_next = session->lru_next;
	else
		table->lru_head = session->lru_next;
	if (session->lru_next != SESSION_NONE)
		table->sessions[session->lru_next - 1].lru_prev = session->lru_prev;
	else
		table->lru_tail = session->lru_prev;
	session->lru_prev = session->lru_next = SESSION_NONE;
	session->on_lru = false;
}

static void lru_append(struct session_table *table, struct session *session)
{
	SKULD_ASSERT(!session->on_lru);
	uint32_t self = session_index(table, session) + 1;
	session->lru_prev = table->lru_tail;
	session->lru_next = SESSION_NONE;
	if (table->lru_tail != SESSION_NONE)
		table->sessions[table->lru_tail - 1].lru_next = self;
	else
		table->lru_head = self;
	table->lru_tail = self;
	session->on_lru = true;
}

static void open_unlink(struct session_table *table, struct session *session)
{
	SKULD_ASSERT(session->on_open);
	if (session->open_prev != SESSION_NONE)
		table->sessions[session->open_prev - 1].open_next = session->open_next;
	else
		table->open_head = session->open_next;
	if (session->open_next != SESSION_NONE)
		table->sessions[session->open_next - 1].open_prev = session->open_prev;
	session->open_prev = session->open_next = SESSION_NONE;
	session->on_open = false;
}

static void open_push(struct session_table *table, struct session *session)
{
	SKULD_ASSERT(!session->on_open);
	uint32_t self = session_index(table, session) + 1;
	session->open_prev = SESSION_NONE;
	session->open_next = table->open_head;
	if (table->open_head != SESSION_NONE)
		table->sessions[table->open_head - 1].open_prev = self;
	table->open_head = self;
	session->on_open = true;
}

/* ---- Table operations ---------------------------------------------------- */

struct session *session_create(struct session_table *table, skuld_u128 client)
{
	SKULD_ASSERT(!skuld_u128_is_zero(client));
	uint32_t slot = slot_find(table, client);
	SKULD_ASSERT(table->slots[slot] == SESSION_NONE);
	if (table->free_count == 0)
		return NULL;
	uint32_t index = table->free_list[--table->free_count];
	struct session *session = &table->sessions[index];
	memset(session, 0, sizeof(*session));
	session->used = true;
	session->client = client;
	session->id = table->id_next++;
	table->slots[slot] = index + 1;
	table->count++;
	lru_append(table, session);
	return session;
}

struct session *session_lru_victim(struct session_table *table)
{
	return table->lru_head == SESSION_NONE ? NULL : &table->sessions[table->lru_head - 1];
}

void session_remove(struct session_table *table, struct session *session)
{
	SKULD_ASSERT(session->used);
	if (session->on_lru)
		lru_unlink(table, session);
	if (session->on_open)
		open_unlink(table, session);
	/* Backward-shift deletion keeps every probe sequence unbroken. */
	uint32_t hole = slot_find(table, session->client);
	SKULD_ASSERT(table->slots[hole] == session_index(table, session) + 1);
	uint32_t slot = hole;
	for (;;) {
		slot = (slot + 1) & table->slot_mask;
		uint32_t entry = table->slots[slot];
		if (entry == SESSION_NONE)
			break;
		uint32_t home = client_hash(table->sessions[entry - 1].client) & table->slot_mask;
		/* entry may move to hole when hole lies between its home and slot. */
		if (((slot - home) & table->slot_mask) >= ((slot - hole) & table->slot_mask)) {
			table->slots[hole] = entry;
			hole = slot;
		}
	}
	table->slots[hole] = SESSION_NONE;
	session->used = false;
	table->free_list[table->free_count++] = session_index(table, session);
	table->count--;
}

void session_attach(struct session_table *table, struct session *session, uint64_t owner)
{
	SKULD_ASSERT(owner != 0);
	if (session->on_lru)
		lru_unlink(table, session);
	session->owner = owner;
}

void session_detach(struct session_table *table, struct session *session)
{
	session->owner = 0;
	if (!session->on_lru)
		lru_append(table, session);
}

void session_touch(struct session_table *table, struct session *session)
{
	if (session->on_lru) {
		lru_unlink(table, session);
		lru_append(table, session);
	}
}

void session_applied(struct session_table *table, struct session *session, uint64_t request,
                     uint64_t write, uint64_t offset_in_write, uint32_t count)
{
	session->request_last = request;
	session->record_write = write;
	session->record_segment = 0;
	session->record_offset = offset_in_write;
	session->record_count = count;
	if (!session->on_open)
		open_push(table, session);
}

void session_recovered(struct session_table *table, struct session *session, uint64_t request,
                       uint64_t write, uint64_t segment, uint64_t offset, uint32_t count)
{
	if (session->on_open)
		open_unlink(table, session);
	session->request_last = request;
	session->record_write = write;
	session->record_segment = segment;
	session->record_offset = offset;
	session->record_count = count;
	session_touch(table, session);
}

void session_seal(struct session_table *table, uint64_t write, uint64_t segment,
                  uint64_t write_offset)
{
	while (table->open_head != SESSION_NONE) {
		struct session *session = &table->sessions[table->open_head - 1];
		SKULD_ASSERT(session->record_write == write);
		session->record_segment = segment;
		session->record_offset += write_offset;
		open_unlink(table, session);
	}
}
