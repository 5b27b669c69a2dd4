/*
 * bench.h — the state of skuld-bench: options, connections and figures.
 */
#ifndef SKULD_BENCH_H
#define SKULD_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "protocol.h"
#include "scenario.h"

#define BENCH_CONNECTIONS_MAX 1024u
#define BENCH_SLICE_NS        100000000u /* the timeline's resolution: 100 ms */
#define BENCH_CHANNEL         1u         /* --pool: the channel the bench defines */
#define BENCH_DISK_MIN_MB     1024u      /* --disk-min-mb's default */
#define BENCH_PUSH_PULL_MAX   64u        /* mixed: push records one PUSH query asks for */
#define BENCH_PUSH_IDLE_NS    20000000u  /* mixed: a push worker that found nothing waits */
#define BENCH_PUSH_CALL_NS    10000000u  /* mixed: a push worker's channel call per page */

/* mixed: what a connection plays (scenario_role); every other scenario's
 * connections are all BENCH_ROLE_TILL and report no roles. */
enum bench_role {
	BENCH_ROLE_TILL = 0,    /* sales, returns, exchanges at a location */
	BENCH_ROLE_GATEWAY = 1, /* reserve, then commit or release, against the pool */
	BENCH_ROLE_PUSH = 2,    /* QUERY PUSH of dirty items, then PUSH_ACK of them */
	BENCH_ROLES = 3,
};

/* One role's figures (mixed). */
struct bench_role_figures {
	uint32_t connections;
	uint64_t requests; /* SUBMITs and QUERYs answered */
	uint64_t queries;
	uint64_t events;
	uint64_t accepted;
	uint64_t refused;
	uint64_t records; /* push records the queries returned */
	struct histogram latency_us;
};

/* A push record to acknowledge (mixed). */
struct bench_push_item {
	uint32_t item;
	uint64_t version;
	int64_t quantity;
};

struct bench_options {
	const char *server;
	const struct scenario *scenario;
	uint32_t connections;
	uint32_t batch;
	uint32_t items;
	uint32_t locations;
	uint32_t hot; /* 0: uniform over items x locations */
	long stock;
	double skew;        /* zipf's exponent */
	double rate;        /* open loop: requests/s; 0: closed loop */
	const char *plot;   /* path prefix of the plot files, or NULL */
	int forge_oversell; /* test only: the check reads one forged oversold level */
	uint32_t duration_s;
	int server_pid; /* 0: server CPU not measured */
	int setup;
	int json;
	const char *pool; /* --pool NAME: reserves against channel BENCH_CHANNEL's pool */
	int listings;     /* the setup maps every item on the channel (mixed) */
	/* --start-server: skuld-bench starts its own skuld (bench_server.c). */
	int start_server;
	const char *skuld_binary;  /* --skuld PATH; default: this build's */
	const char *data_parent;   /* --data-dir DIR: the run's directory is made in DIR */
	const char *server_config; /* --server-config FILE: keys added to the defaults */
	uint32_t fsync_delay_us;   /* --fsync-delay-us: the started server's fsync_delay_us */
	uint32_t disk_min_mb;      /* refuse a run with less free on the data file system */
	int keep;                  /* --keep: leave the run's directory */
};

/* The skuld skuld-bench started (--start-server). */
struct bench_server {
	int pid;        /* 0: none */
	char dir[4096]; /* the run's directory: skuld.conf, server.log, data/; "": none */
	char address[32];
};

enum connection_state {
	CONNECTION_REGISTERING = 0,
	CONNECTION_RUNNING = 1,
	CONNECTION_CLOSED = 2,
};

struct bench_connection {
	int fd;
	uint32_t index;
	enum connection_state state;
	skuld_u128 client;
	uint64_t request;   /* last request number sent */
	uint64_t key_next;  /* idempotency key counter */
	uint64_t hold_next; /* hold id counter */
	uint64_t due_ns;    /* when the request in flight was due (open loop) or sent */
	uint64_t sent_ns;   /* when it was sent */
	uint32_t events;    /* events in the request in flight */
	uint8_t operation;  /* of the request in flight: SKULD_OP_SUBMIT or _QUERY */
	uint8_t role;       /* enum bench_role */
	uint64_t resume_ns; /* mixed: a parked push worker's next query is due then */
	/* mixed, push workers: the next query, and the records the last one
	 * returned, acknowledged by the next request. */
	struct skuld_query query;
	uint32_t push_cursor;
	struct bench_push_item push[BENCH_PUSH_PULL_MAX];
	uint32_t push_count;
	/* Holds this connection reserved successfully and has not finished,
	 * oldest first, with the units each holds. */
	uint64_t *holds;
	int64_t *hold_units;
	uint32_t holds_count;
	uint32_t finishing; /* holds[0..finishing) are finished by the request in flight */
	/* Outgoing frame and incoming reply. */
	uint8_t *send_buffer;
	size_t send_size;
	size_t send_done;
	uint8_t *receive_buffer;
	size_t receive_size;
	size_t receive_capacity;
};

/* Sums over every level of the bench's catalog (bench_check.c). */
struct bench_totals {
	int64_t on_hand;
	int64_t reserved;
	int64_t committed;
	uint64_t levels;
	uint64_t oversold; /* levels with reserved + committed > on_hand, or available < 0 */
};

/* What the end-of-run check compared: the ledger's change against what
 * the run was told. */
struct bench_check_figures {
	uint64_t levels;
	uint64_t oversold_levels;
	int64_t on_hand_ledger, on_hand_expected;
	int64_t committed_ledger, committed_expected;
	int64_t reserved_ledger, reserved_expected;
	int64_t stock_before; /* available before the run, summed */
};

struct bench_cpu {
	double self_s;
	double server_s;
};

struct bench {
	struct bench_options options;
	struct bench_connection connections[BENCH_CONNECTIONS_MAX];
	uint32_t connections_open;
	/* Open loop: connections with no request in flight, and the time the
	 * next request is due. */
	struct bench_connection *idle[BENCH_CONNECTIONS_MAX];
	uint32_t idle_count;
	uint64_t due_ns;
	uint64_t sent_late;  /* requests sent more than 1 ms after they were due */
	uint64_t never_sent; /* requests due before the end that no connection was free for */
	/* zipf: cumulative probabilities of ranks 1..zipf_size. */
	double *zipf_cdf;
	uint64_t zipf_size;
	int epoll_fd;
	int stopping;
	uint64_t seed;
	uint64_t started_ns;
	uint64_t finished_ns;
	/* Figures. */
	uint64_t requests;
	uint64_t events;
	uint64_t accepted;
	uint64_t refused;
	uint64_t refused_by_status[64];
	uint64_t errors;
	uint64_t reserved_ok;
	uint64_t committed_ok;
	uint64_t released_ok;
	uint64_t abandoned_ok; /* reserves left to expire */
	uint64_t accepted_by_kind[64];
	int64_t units_reserved;
	int64_t units_committed;
	int64_t units_released;
	int64_t units_abandoned;
	int64_t units_received;
	int64_t units_sold;
	int64_t units_returned;
	uint64_t abandoned_last_ns;  /* when the last abandoned hold was granted */
	struct histogram latency_us; /* from when due (open loop) or sent */
	struct histogram service_us; /* from when sent: the server's share */
	/* Completed requests and events per 100 ms since started_ns. */
	uint64_t *timeline_requests;
	uint64_t *timeline_events;
	uint32_t timeline_slots;
	int check_failed;
	struct bench_check_figures check;
	int roles_on; /* mixed: roles reported */
	struct bench_role_figures roles[BENCH_ROLES];
	/* --pool: accepted channel reserves by the location the ledger chose
	 * (1..locations), for the report's spread. */
	uint64_t *pool_reserves;
	/* The server's STATS before and after the run (group commit figures). */
	struct skuld_stats stats_before;
	struct skuld_stats stats_after;
	int stats_ok;
	struct bench_server server;
};

uint64_t bench_now_ns(void);
uint64_t bench_random(uint64_t *state);
/* Events one request may hold: the batch, and at least a linked pair (and
 * a push worker's acknowledgements, mixed). */
uint32_t bench_request_events_max(const struct bench_options *options);

/* bench_net.c: sockets, frames and the request mix. */
int bench_connect(const char *server);
int connections_open(struct bench *bench);
/* Closes what is still open and frees every connection's buffers. */
void connections_free(struct bench *bench);
/* Sends the next request; due_ns is when it was due (latency is measured
 * from then), 0 for now. */
int connection_send_next(struct bench *bench, struct bench_connection *connection, uint64_t due_ns);
int connection_service(struct bench *bench, struct bench_connection *connection,
                       uint32_t epoll_events);
/* Sends one SUBMIT on a blocking socket and waits for its results. */
int bench_submit_blocking(int fd, skuld_u128 client, uint64_t request,
                          const struct skuld_event *events, uint32_t count,
                          struct skuld_result *results);
int bench_register_blocking(int fd, skuld_u128 client);
int bench_write_all(int fd, const void *bytes, size_t size);
/* Reads one reply frame on a blocking socket into buffer; 0 when it is a
 * valid reply to operation. */
int bench_reply_read(int fd, uint8_t operation, uint8_t *buffer, size_t capacity);
/* Reads the server's STATS over a new connection; 0 or -1. */
int bench_stats_read(const char *server, struct skuld_stats *stats);

/* bench_server.c: the free-space check, and the skuld of --start-server.
 * Each returns 0, or -1 after printing why. */
/* Free space of the file system holding path, in MiB, or -1. */
int64_t bench_disk_free_mb(const char *path);
/* Refuses (-1, with a message naming what and the bound) when free_mb is
 * below options->disk_min_mb. */
int bench_disk_check(const struct bench_options *options, int64_t free_mb, const char *what);
/* Checks the free space, makes the run's directory, starts skuld there on
 * a free port and waits (bounded) until it listens. */
int bench_server_start(struct bench *bench);
/* Stops it (SIGTERM, at most 20 s, then SIGKILL) and removes the run's
 * directory unless --keep. */
void bench_server_stop(struct bench *bench);
/* The skuld beside this skuld-bench (BUILD/bench/../server/skuld). */
const char *bench_skuld_binary_default(char *path, size_t size);

/* bench_check.c: the end-of-run check. forge: test only, one level read
 * is made oversold (options.forge_oversell) so the check must fail. */
int bench_totals_read(const struct bench *bench, struct bench_totals *totals, int forge);
/* The reserved units the ledger should have gained (abandoned holds
 * counted as expired). */
int64_t bench_reserved_expected(const struct bench *bench);
/* Compares, fills bench->check and returns 0 when the ledger agrees. */
int bench_check(struct bench *bench, const struct bench_totals *before,
                const struct bench_totals *after);

/* bench_setup.c: catalog and stock. */
int bench_setup(struct bench *bench);

/* bench_report.c: figures as text or JSON. */
void bench_cpu_read(const struct bench *bench, struct bench_cpu *cpu);
void bench_report(const struct bench *bench, const struct bench_cpu *start,
                  const struct bench_cpu *end);

/* bench_plot.c: PREFIX-throughput.dat, PREFIX-latency.dat, PREFIX.gp, and
 * PREFIX.svg when gnuplot is installed; 0 or -1. */
int bench_plot(const struct bench *bench, const char *prefix);

#endif
