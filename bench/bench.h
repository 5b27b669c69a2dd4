/*
 * bench.h — the state of skuld-bench: options, connections and figures.
 */
#ifndef SKULD_BENCH_H
#define SKULD_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "protocol.h"

#define BENCH_CONNECTIONS_MAX 1024u

struct bench_options {
	const char *server;
	uint32_t connections;
	uint32_t batch;
	uint32_t items;
	uint32_t locations;
	uint32_t hot; /* 0: uniform over items x locations */
	long stock;
	uint32_t duration_s;
	int server_pid; /* 0: server CPU not measured */
	int setup;
	int json;
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
	uint64_t sent_ns;   /* when the request in flight was sent */
	uint32_t events;    /* events in the request in flight */
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

struct bench_cpu {
	double self_s;
	double server_s;
};

struct bench {
	struct bench_options options;
	struct bench_connection connections[BENCH_CONNECTIONS_MAX];
	uint32_t connections_open;
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
	int64_t units_reserved;
	int64_t units_committed;
	int64_t units_released;
	struct histogram latency_us;
	int check_failed;
};

/* Sums over every level of the bench's catalog (bench_check.c). */
struct bench_totals {
	int64_t on_hand;
	int64_t reserved;
	int64_t committed;
	uint64_t levels;
	uint64_t oversold; /* levels with reserved + committed > on_hand */
};

uint64_t bench_now_ns(void);

/* bench_net.c: sockets, frames and the request mix. */
int bench_connect(const char *server);
int connections_open(struct bench *bench);
/* Closes what is still open and frees every connection's buffers. */
void connections_free(struct bench *bench);
int connection_send_next(struct bench *bench, struct bench_connection *connection);
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

/* bench_check.c: the end-of-run check. */
int bench_totals_read(const struct bench *bench, struct bench_totals *totals);
int bench_check(const struct bench *bench, const struct bench_totals *before,
                const struct bench_totals *after);

/* bench_setup.c: catalog and stock. */
int bench_setup(struct bench *bench);

/* bench_report.c: figures as text or JSON. */
void bench_cpu_read(const struct bench *bench, struct bench_cpu *cpu);
void bench_report(const struct bench *bench, const struct bench_cpu *start,
                  const struct bench_cpu *end);

#endif
