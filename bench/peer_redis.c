/*
 * peer_redis.c — compare's Redis target, through hiredis: how one would
 * build a reservation service on Redis 7. Stock is a string per item
 * (avail:ITEM), a hold a hash (hold:ID, item and quantity), units sold a
 * counter per item (sold:ITEM), and every change is appended to one stream
 * (events) as the record of what happened. Each operation is one EVALSHA
 * of a Lua script, which Redis runs atomically:
 *
 *   reserve  available >= quantity ? DECRBY, HSET the hold, XADD : refuse
 *   commit   the hold exists ? DEL it, INCRBY sold, XADD : error
 *   release  the hold exists ? DEL it, INCRBY available back, XADD : error
 *   till     a return INCRBY available, DECRBY sold; a sale the reverse;
 *            an exchange both in one script; an XADD for each (till-storm)
 *
 * Durability is the server's appendfsync, set by this connection (always:
 * the AOF is fsynced before the reply; everysec: once a second).
 */
#include "compare.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_REDIS_CHUNK 1000u

static const char *const redis_reserve_script =
        "local a = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
        "local q = tonumber(ARGV[1])\n"
        "if a < q then return 0 end\n"
        "redis.call('DECRBY', KEYS[1], q)\n"
        "redis.call('HSET', KEYS[2], 'item', ARGV[2], 'qty', q)\n"
        "redis.call('XADD', 'events', '*', 'kind', 'reserve', 'hold', ARGV[3], 'item', ARGV[2], "
        "'qty', q)\n"
        "return 1\n";

/* ARGV[2]: the counter the units go to, "sold:" (commit) or "avail:" (release). */
static const char *const redis_finish_script =
        "local h = redis.call('HMGET', KEYS[1], 'item', 'qty')\n"
        "if not h[1] then return -1 end\n"
        "redis.call('DEL', KEYS[1])\n"
        "redis.call('INCRBY', ARGV[2] .. h[1], h[2])\n"
        "redis.call('XADD', 'events', '*', 'kind', ARGV[3], 'hold', ARGV[1], 'item', h[1], "
        "'qty', h[2])\n"
        "return 1\n";

/* KEYS: avail and sold of the returned item, then of the sold item;
 * ARGV[1]: sale, return or exchange; ARGV[2], ARGV[3]: the two items. */
static const char *const redis_till_script =
        "if ARGV[1] ~= 'sale' then\n"
        "  redis.call('INCRBY', KEYS[1], 1)\n"
        "  redis.call('DECRBY', KEYS[2], 1)\n"
        "  redis.call('XADD', 'events', '*', 'kind', 'return', 'item', ARGV[2], 'qty', 1)\n"
        "end\n"
        "if ARGV[1] ~= 'return' then\n"
        "  redis.call('DECRBY', KEYS[3], 1)\n"
        "  redis.call('INCRBY', KEYS[4], 1)\n"
        "  redis.call('XADD', 'events', '*', 'kind', 'sale', 'item', ARGV[3], 'qty', 1)\n"
        "end\n"
        "return 1\n";

struct peer_redis {
	redisContext *context;
	char reserve_sha[48];
	char finish_sha[48];
	char till_sha[48];
};

static void redis_close(void *connection)
{
	struct peer_redis *peer = connection;
	if (peer->context != NULL)
		redisFree(peer->context);
	free(peer);
}

/* A command whose reply must not be an error; 0 or -1. */
static int redis_ok(struct peer_redis *peer, redisReply *reply, const char *what)
{
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "skuld-bench compare: redis %s: %s\n", what,
		        reply != NULL ? reply->str : peer->context->errstr);
		if (reply != NULL)
			freeReplyObject(reply);
		return -1;
	}
	freeReplyObject(reply);
	return 0;
}

static int redis_script_load(struct peer_redis *peer, const char *script, char *sha)
{
	redisReply *reply = redisCommand(peer->context, "SCRIPT LOAD %s", script);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len >= 48) {
		if (reply != NULL)
			freeReplyObject(reply);
		return -1;
	}
	memcpy(sha, reply->str, (size_t)reply->len + 1);
	freeReplyObject(reply);
	return 0;
}

static void *redis_open(const char *address, const char *option)
{
	char host[64];
	unsigned port = 0;
	if (sscanf(address, "%63[^:]:%u", host, &port) != 2)
		return NULL;
	struct peer_redis *peer = calloc(1, sizeof(*peer));
	if (peer == NULL)
		return NULL;
	struct timeval timeout = {.tv_sec = 10};
	peer->context = redisConnectWithTimeout(host, (int)port, timeout);
	if (peer->context == NULL || peer->context->err != 0 ||
	    redisSetTimeout(peer->context, timeout) != REDIS_OK ||
	    redis_ok(peer, redisCommand(peer->context, "CONFIG SET appendfsync %s", option),
	             "CONFIG SET") != 0 ||
	    redis_script_load(peer, redis_reserve_script, peer->reserve_sha) != 0 ||
	    redis_script_load(peer, redis_finish_script, peer->finish_sha) != 0 ||
	    redis_script_load(peer, redis_till_script, peer->till_sha) != 0) {
		fprintf(stderr, "skuld-bench compare: redis at %s: %s\n", address,
		        peer->context != NULL ? peer->context->errstr : "no memory");
		redis_close(peer);
		return NULL;
	}
	return peer;
}

static int redis_load(void *connection, const struct compare_workload *workload)
{
	struct peer_redis *peer = connection;
	if (redis_ok(peer, redisCommand(peer->context, "FLUSHALL"), "FLUSHALL") != 0)
		return -1;
	uint32_t sent = 0;
	for (uint32_t item = 1; item <= workload->items; item++) {
		redisAppendCommand(peer->context, "SET avail:%u %ld", item, workload->stock);
		sent++;
		if (sent == PEER_REDIS_CHUNK || item == workload->items) {
			for (; sent > 0; sent--) {
				redisReply *reply = NULL;
				if (redisGetReply(peer->context, (void **)&reply) != REDIS_OK ||
				    redis_ok(peer, reply, "SET") != 0)
					return -1;
			}
		}
	}
	return 0;
}

/* The integer an EVALSHA answered, or -2 on an error. */
static long long redis_eval(struct peer_redis *peer, const char *sha, const char *key1,
                            const char *key2, const char *arg1, const char *arg2, const char *arg3)
{
	const char *argv[8] = {"EVALSHA", sha, key2 != NULL ? "2" : "1", key1};
	int argc = 4;
	if (key2 != NULL)
		argv[argc++] = key2;
	argv[argc++] = arg1;
	argv[argc++] = arg2;
	argv[argc++] = arg3;
	redisReply *reply = redisCommandArgv(peer->context, argc, argv, NULL);
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		fprintf(stderr, "skuld-bench compare: redis EVALSHA: %s\n",
		        reply == NULL
		                ? peer->context->errstr
		                : (reply->type == REDIS_REPLY_ERROR ? reply->str : "not a number"));
		if (reply != NULL)
			freeReplyObject(reply);
		return -2;
	}
	long long value = reply->integer;
	freeReplyObject(reply);
	return value;
}

static int redis_reserve(void *connection, uint64_t hold, uint32_t item, long quantity)
{
	struct peer_redis *peer = connection;
	char stock_key[32], hold_key[40], quantity_text[24], item_text[16], hold_text[24];
	snprintf(stock_key, sizeof(stock_key), "avail:%u", item);
	snprintf(hold_key, sizeof(hold_key), "hold:%llu", (unsigned long long)hold);
	snprintf(quantity_text, sizeof(quantity_text), "%ld", quantity);
	snprintf(item_text, sizeof(item_text), "%u", item);
	snprintf(hold_text, sizeof(hold_text), "%llu", (unsigned long long)hold);
	long long value = redis_eval(peer, peer->reserve_sha, stock_key, hold_key, quantity_text,
	                             item_text, hold_text);
	return value == 1 ? 1 : value == 0 ? 0 : -1;
}

static int redis_finish(struct peer_redis *peer, uint64_t hold, const char *counter,
                        const char *kind)
{
	char hold_key[40], hold_text[24];
	snprintf(hold_key, sizeof(hold_key), "hold:%llu", (unsigned long long)hold);
	snprintf(hold_text, sizeof(hold_text), "%llu", (unsigned long long)hold);
	long long value =
	        redis_eval(peer, peer->finish_sha, hold_key, NULL, hold_text, counter, kind);
	return value == 1 ? 1 : -1;
}

static int redis_commit(void *connection, uint64_t hold)
{
	return redis_finish(connection, hold, "sold:", "commit");
}

static int redis_release(void *connection, uint64_t hold)
{
	return redis_finish(connection, hold, "avail:", "release");
}

static int redis_till(void *connection, enum compare_till_kind kind, uint32_t return_item,
                      uint32_t sale_item)
{
	static const char *const kinds[] = {"sale", "return", "exchange"};
	struct peer_redis *peer = connection;
	char keys[4][32], items[2][16];
	snprintf(keys[0], sizeof(keys[0]), "avail:%u", return_item);
	snprintf(keys[1], sizeof(keys[1]), "sold:%u", return_item);
	snprintf(keys[2], sizeof(keys[2]), "avail:%u", sale_item);
	snprintf(keys[3], sizeof(keys[3]), "sold:%u", sale_item);
	snprintf(items[0], sizeof(items[0]), "%u", return_item);
	snprintf(items[1], sizeof(items[1]), "%u", sale_item);
	const char *argv[] = {"EVALSHA", peer->till_sha, "4",         keys[0],  keys[1],
	                      keys[2],   keys[3],        kinds[kind], items[0], items[1]};
	redisReply *reply = redisCommandArgv(peer->context, 10, argv, NULL);
	int ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
	if (!ok)
		fprintf(stderr, "skuld-bench compare: redis till: %s\n",
		        reply == NULL                      ? peer->context->errstr
		        : reply->type == REDIS_REPLY_ERROR ? reply->str
		                                           : "unexpected reply");
	if (reply != NULL)
		freeReplyObject(reply);
	return ok ? 1 : -1;
}

/* The integer in a bulk string reply (absent: 0) into *value; 0, or -1
 * when not a number. */
static int redis_number(const redisReply *reply, int64_t *value)
{
	*value = 0;
	if (reply->type == REDIS_REPLY_NIL)
		return 0;
	if (reply->type != REDIS_REPLY_STRING)
		return -1;
	*value = strtoll(reply->str, NULL, 10);
	return 0;
}

static int redis_totals(void *connection, const struct compare_workload *workload, int64_t *sold,
                        int64_t *available)
{
	struct peer_redis *peer = connection;
	*sold = 0;
	*available = 0;
	for (uint32_t item = 1; item <= workload->items; item++) {
		redisReply *reply =
		        redisCommand(peer->context, "MGET avail:%u sold:%u", item, item);
		if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
			if (reply != NULL)
				freeReplyObject(reply);
			return -1;
		}
		int64_t left, gone;
		int bad = redis_number(reply->element[0], &left) != 0 ||
		          redis_number(reply->element[1], &gone) != 0;
		freeReplyObject(reply);
		/* Returns may outnumber an item's sales in a till storm. */
		if (bad || left < 0 || (gone < 0 && workload->scenario != COMPARE_TILL_STORM))
			return -1;
		*available += left;
		*sold += gone;
	}
	redisReply *reply =
	        redisCommand(peer->context, "EVAL %s 0", "return #redis.call('KEYS', 'hold:*')");
	long long open = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
	if (reply != NULL)
		freeReplyObject(reply);
	return open == 0 ? 0 : -1;
}

const struct peer_ops peer_redis_ops = {
        .kind = "redis",
        .open = redis_open,
        .close = redis_close,
        .load = redis_load,
        .reserve = redis_reserve,
        .commit = redis_commit,
        .release = redis_release,
        .till = redis_till,
        .totals = redis_totals,
};
