/*
 * peer_postgres.c — compare's PostgreSQL target, through libpq: how one
 * would build reservations on PostgreSQL 15. Tables:
 *
 *   stock(item PRIMARY KEY, available, sold)
 *   holds(id PRIMARY KEY, item, quantity)
 *   events(id bigserial, kind, hold, item, quantity, at timestamptz)
 *
 * Each operation is one prepared statement, so one round trip and one
 * transaction (a single statement commits on its own):
 *
 *   reserve  WITH u AS (UPDATE stock SET available = available - $q
 *                       WHERE item = $i AND available >= $q RETURNING item),
 *                 h AS (INSERT INTO holds SELECT $h, item, $q FROM u)
 *            INSERT INTO events SELECT 'reserve', ... FROM u
 *            one row inserted: reserved; none: refused
 *   commit   DELETE the hold RETURNING it, UPDATE stock SET sold += quantity,
 *            INSERT the event
 *   release  the same, giving the units back to available
 *   till     (till-storm) one UPDATE of the sold item (available - 1,
 *            sold + 1) or the returned one (the reverse), or for an exchange
 *            one UPDATE of both rows (WHERE item IN (...): locked in index
 *            order, so two exchanges cannot deadlock), plus the events; a
 *            serialization failure or deadlock is retried, as an
 *            application would
 *
 * Durability is synchronous_commit, set per connection (on: the WAL is
 * flushed before COMMIT returns; off: up to three wal_writer_delay later).
 */
#include "compare.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer_postgres {
	PGconn *connection;
	int prepared; /* the statements, prepared on first use (load makes the tables) */
};

static const char *const postgres_reserve =
        "WITH u AS (UPDATE stock SET available = available - $2 "
        "WHERE item = $1 AND available >= $2 RETURNING item), "
        "h AS (INSERT INTO holds (id, item, quantity) SELECT $3, item, $2 FROM u) "
        "INSERT INTO events (kind, hold, item, quantity) SELECT 'reserve', $3, item, $2 FROM u";

static const char *const postgres_commit =
        "WITH h AS (DELETE FROM holds WHERE id = $1 RETURNING item, quantity), "
        "s AS (UPDATE stock SET sold = stock.sold + h.quantity FROM h WHERE stock.item = h.item) "
        "INSERT INTO events (kind, hold, item, quantity) SELECT 'commit', $1, item, quantity FROM "
        "h";

static const char *const postgres_release =
        "WITH h AS (DELETE FROM holds WHERE id = $1 RETURNING item, quantity), "
        "s AS (UPDATE stock SET available = stock.available + h.quantity FROM h "
        "WHERE stock.item = h.item) "
        "INSERT INTO events (kind, hold, item, quantity) SELECT 'release', $1, item, quantity "
        "FROM h";

/* $1: the returned item, $2: the sold item ($1 != $2 for an exchange). */
static const char *const postgres_sale =
        "WITH u AS (UPDATE stock SET available = available - 1, sold = sold + 1 "
        "WHERE item = $2 RETURNING item) "
        "INSERT INTO events (kind, hold, item, quantity) SELECT 'sale', 0, item, 1 FROM u "
        "WHERE $1::integer IS NOT NULL";

static const char *const postgres_return =
        "WITH u AS (UPDATE stock SET available = available + 1, sold = sold - 1 "
        "WHERE item = $1 RETURNING item) "
        "INSERT INTO events (kind, hold, item, quantity) SELECT 'return', 0, item, 1 FROM u "
        "WHERE $2::integer IS NOT NULL";

static const char *const postgres_exchange =
        "WITH u AS (UPDATE stock SET "
        "available = available + CASE WHEN item = $1 THEN 1 ELSE -1 END, "
        "sold = sold + CASE WHEN item = $1 THEN -1 ELSE 1 END "
        "WHERE item IN ($1, $2) RETURNING item) "
        "INSERT INTO events (kind, hold, item, quantity) "
        "SELECT CASE WHEN item = $1 THEN 'return' ELSE 'sale' END, 0, item, 1 FROM u";

static void postgres_close(void *connection)
{
	struct peer_postgres *peer = connection;
	PQfinish(peer->connection);
	free(peer);
}

/* Runs a result's check: 0 when it is status, else prints and -1. Clears it. */
static int postgres_result(struct peer_postgres *peer, PGresult *result, ExecStatusType status,
                           const char *what)
{
	int ok = result != NULL && PQresultStatus(result) == status;
	if (!ok)
		fprintf(stderr, "skuld-bench compare: postgres %s: %s", what,
		        PQerrorMessage(peer->connection));
	PQclear(result);
	return ok ? 0 : -1;
}

static void *postgres_open(const char *address, const char *option)
{
	char host[64];
	unsigned port = 0;
	if (sscanf(address, "%63[^:]:%u", host, &port) != 2)
		return NULL;
	char info[256];
	snprintf(info, sizeof(info),
	         "host=%s port=%u user=postgres dbname=postgres connect_timeout=10 "
	         "options='-c synchronous_commit=%s'",
	         host, port, option);
	struct peer_postgres *peer = calloc(1, sizeof(*peer));
	if (peer == NULL)
		return NULL;
	peer->connection = PQconnectdb(info);
	if (PQstatus(peer->connection) != CONNECTION_OK) {
		fprintf(stderr, "skuld-bench compare: postgres at %s: %s", address,
		        PQerrorMessage(peer->connection));
		postgres_close(peer);
		return NULL;
	}
	return peer;
}

static int postgres_load(void *connection, const struct compare_workload *workload)
{
	struct peer_postgres *peer = connection;
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "SET client_min_messages TO warning;"
	         "DROP TABLE IF EXISTS stock, holds, events;"
	         "CREATE TABLE stock (item integer PRIMARY KEY, available bigint NOT NULL, "
	         "sold bigint NOT NULL DEFAULT 0);"
	         "CREATE TABLE holds (id bigint PRIMARY KEY, item integer NOT NULL, "
	         "quantity bigint NOT NULL);"
	         "CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL, "
	         "hold bigint NOT NULL, item integer NOT NULL, quantity bigint NOT NULL, "
	         "at timestamptz NOT NULL DEFAULT now());"
	         "INSERT INTO stock (item, available) SELECT g, %ld FROM generate_series(1, %u) g;"
	         "ANALYZE stock;",
	         workload->stock, workload->items);
	return postgres_result(peer, PQexec(peer->connection, sql), PGRES_COMMAND_OK, "load");
}

static int postgres_prepare(struct peer_postgres *peer)
{
	if (peer->prepared)
		return 0;
	if (postgres_result(peer, PQprepare(peer->connection, "reserve", postgres_reserve, 3, NULL),
	                    PGRES_COMMAND_OK, "prepare") != 0 ||
	    postgres_result(peer, PQprepare(peer->connection, "commit", postgres_commit, 1, NULL),
	                    PGRES_COMMAND_OK, "prepare") != 0 ||
	    postgres_result(peer, PQprepare(peer->connection, "release", postgres_release, 1, NULL),
	                    PGRES_COMMAND_OK, "prepare") != 0 ||
	    postgres_result(peer, PQprepare(peer->connection, "sale", postgres_sale, 2, NULL),
	                    PGRES_COMMAND_OK, "prepare") != 0 ||
	    postgres_result(peer, PQprepare(peer->connection, "return", postgres_return, 2, NULL),
	                    PGRES_COMMAND_OK, "prepare") != 0 ||
	    postgres_result(peer,
	                    PQprepare(peer->connection, "exchange", postgres_exchange, 2, NULL),
	                    PGRES_COMMAND_OK, "prepare") != 0)
		return -1;
	peer->prepared = 1;
	return 0;
}

/* A deadlock (40P01) or serialization failure (40001): the statement had
 * no effect and may run again. */
static int postgres_retryable(const char *state)
{
	return state != NULL && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0);
}

/* Rows a prepared statement changed (retried when retryable), or -1. */
static long postgres_run(struct peer_postgres *peer, const char *name, int count,
                         const char *const *values)
{
	if (postgres_prepare(peer) != 0)
		return -1;
	PGresult *result = PQexecPrepared(peer->connection, name, count, values, NULL, NULL, 0);
	for (int retry = 0;
	     retry < 5 && result != NULL && PQresultStatus(result) == PGRES_FATAL_ERROR &&
	     postgres_retryable(PQresultErrorField(result, PG_DIAG_SQLSTATE));
	     retry++) {
		PQclear(result);
		result = PQexecPrepared(peer->connection, name, count, values, NULL, NULL, 0);
	}
	if (result == NULL || PQresultStatus(result) != PGRES_COMMAND_OK) {
		fprintf(stderr, "skuld-bench compare: postgres %s: %s", name,
		        PQerrorMessage(peer->connection));
		PQclear(result);
		return -1;
	}
	long rows = strtol(PQcmdTuples(result), NULL, 10);
	PQclear(result);
	return rows;
}

static int postgres_reserve_call(void *connection, uint64_t hold, uint32_t item, long quantity)
{
	char item_text[16], quantity_text[24], hold_text[24];
	snprintf(item_text, sizeof(item_text), "%u", item);
	snprintf(quantity_text, sizeof(quantity_text), "%ld", quantity);
	snprintf(hold_text, sizeof(hold_text), "%llu", (unsigned long long)hold);
	const char *values[3] = {item_text, quantity_text, hold_text};
	long rows = postgres_run(connection, "reserve", 3, values);
	return rows == 1 ? 1 : rows == 0 ? 0 : -1;
}

static int postgres_finish(void *connection, const char *name, uint64_t hold)
{
	char hold_text[24];
	snprintf(hold_text, sizeof(hold_text), "%llu", (unsigned long long)hold);
	const char *values[1] = {hold_text};
	return postgres_run(connection, name, 1, values) == 1 ? 1 : -1;
}

static int postgres_commit_call(void *connection, uint64_t hold)
{
	return postgres_finish(connection, "commit", hold);
}

static int postgres_release_call(void *connection, uint64_t hold)
{
	return postgres_finish(connection, "release", hold);
}

static int postgres_till(void *connection, enum compare_till_kind kind, uint32_t return_item,
                         uint32_t sale_item)
{
	static const char *const statements[] = {"sale", "return", "exchange"};
	char return_text[16], sale_text[16];
	snprintf(return_text, sizeof(return_text), "%u", return_item);
	snprintf(sale_text, sizeof(sale_text), "%u", sale_item);
	const char *values[2] = {return_text, sale_text};
	long rows = postgres_run(connection, statements[kind], 2, values);
	return rows == (kind == COMPARE_EXCHANGE ? 2 : 1) ? 1 : -1;
}

static int postgres_totals(void *connection, const struct compare_workload *workload, int64_t *sold,
                           int64_t *available)
{
	(void)workload;
	struct peer_postgres *peer = connection;
	PGresult *result = PQexec(peer->connection,
	                          "SELECT coalesce(sum(sold), 0), coalesce(sum(available), 0), "
	                          "(SELECT count(*) FROM holds), "
	                          "(SELECT count(*) FROM stock WHERE available < 0) FROM stock");
	if (result == NULL || PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1) {
		fprintf(stderr, "skuld-bench compare: postgres totals: %s",
		        PQerrorMessage(peer->connection));
		PQclear(result);
		return -1;
	}
	*sold = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
	*available = strtoll(PQgetvalue(result, 0, 1), NULL, 10);
	int ok = strtoll(PQgetvalue(result, 0, 2), NULL, 10) == 0 &&
	         strtoll(PQgetvalue(result, 0, 3), NULL, 10) == 0;
	PQclear(result);
	return ok ? 0 : -1;
}

const struct peer_ops peer_postgres_ops = {
        .kind = "postgres",
        .open = postgres_open,
        .close = postgres_close,
        .load = postgres_load,
        .reserve = postgres_reserve_call,
        .commit = postgres_commit_call,
        .release = postgres_release_call,
        .till = postgres_till,
        .totals = postgres_totals,
};
