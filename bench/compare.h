/*
 * compare.h — `skuld-bench compare`: one workload, the same operations in
 * the same order, against skuld and against peers built the usual way
 * (Redis with a Lua script, PostgreSQL with a conditional UPDATE).
 *
 * A peer is a table of blocking calls (struct peer_ops). compare.c starts
 * the peers' processes (peer_process.c), loads the same stock into each,
 * runs N threads per target, each with its own connection, and checks at
 * the end that what the clients saw committed is what the store sold.
 */
#ifndef SKULD_COMPARE_H
#define SKULD_COMPARE_H

#include <stdint.h>
#include <sys/types.h>

enum compare_scenario {
	COMPARE_UNIFORM = 0,    /* reserve 1 of a random item of I, then commit (9/10) or release */
	COMPARE_FLASH_SALE = 1, /* the same over a few hot items with little stock: refusals */
	COMPARE_ZIPF = 2,       /* the same, item of rank k drawn with P proportional to 1/k^S */
	COMPARE_TILL_STORM = 3, /* till transactions: a sale, a return or an exchange */
};

/* A till transaction (COMPARE_TILL_STORM), of 1 unit each way. */
enum compare_till_kind {
	COMPARE_SALE = 0,     /* 7 in 10 */
	COMPARE_RETURN = 1,   /* 2 in 10: back into stock */
	COMPARE_EXCHANGE = 2, /* 1 in 10: a return and a sale of another item, all or nothing */
};

struct compare_workload {
	enum compare_scenario scenario;
	uint32_t items;         /* the catalog: items 1..items, one location */
	long stock;             /* units of each item at the start */
	const double *zipf_cdf; /* COMPARE_ZIPF: P(rank <= k + 1), items entries */
};

/* One peer connection's outcome of a call: 1 done, 0 refused (not enough
 * available), -1 error (the run fails). */
struct peer_ops {
	const char *kind; /* "skuld", "redis", "postgres" */
	/* Opens one connection to target (address and option set by compare.c). */
	void *(*open)(const char *address, const char *option);
	void (*close)(void *connection);
	/* Resets the store and loads the workload's stock (one connection). */
	int (*load)(void *connection, const struct compare_workload *workload);
	int (*reserve)(void *connection, uint64_t hold, uint32_t item, long quantity);
	int (*commit)(void *connection, uint64_t hold);
	int (*release)(void *connection, uint64_t hold);
	/* COMPARE_TILL_STORM: records a till transaction whatever the stock (a
	 * sale is a fact): return_item comes back (RETURN, EXCHANGE), sale_item
	 * goes (SALE, EXCHANGE); an exchange is one atomic change. 1 done, -1
	 * error. */
	int (*till)(void *connection, enum compare_till_kind kind, uint32_t return_item,
	            uint32_t sale_item);
	/* Units sold (committed; till-storm: sold less returned) and units left
	 * available, summed over the catalog; 0 or -1. */
	int (*totals)(void *connection, const struct compare_workload *workload, int64_t *sold,
	              int64_t *available);
};

extern const struct peer_ops peer_skuld_ops;
extern const struct peer_ops peer_redis_ops;
extern const struct peer_ops peer_postgres_ops;

/* peer_process.c: a peer's server process in a temporary directory. */
struct peer_process {
	pid_t pid;
	uint16_t port;
	char dir[64];
	int postgres; /* stopped with pg_ctl */
	char pg_bin[128];
	uid_t uid; /* PostgreSQL runs as this user (postgres when we are root) */
	gid_t gid;
};

/* Each returns 0 with the process listening on 127.0.0.1:port, or -1 after
 * printing why (and cleaning up). */
int peer_process_skuld(struct peer_process *process, const char *binary);
int peer_process_redis(struct peer_process *process);
int peer_process_postgres(struct peer_process *process);
/* Stops the process (bounded) and removes its directory. */
void peer_process_stop(struct peer_process *process);

/* Whether program (a name on PATH, or an absolute path) exists; when it
 * does not and we are root, installs package with apt-get and looks again.
 * Prints what it does. */
int peer_program_ensure(const char *program, const char *package);

/* redis-benchmark -t ping against port: round trips per second, p50 and
 * p99 in microseconds; 0 or -1. */
int peer_ping_baseline(uint16_t port, uint32_t connections, uint32_t requests, double *per_s,
                       double *p50_us, double *p99_us);

int compare_main(int argc, char **argv);

#endif
