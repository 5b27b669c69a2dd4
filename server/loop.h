/*
 * loop.h — the server's one thread: an io_uring event loop.
 *
 * Owns: the ring, the listening socket's accepts, every connection's socket
 * and buffers, the provided receive buffers, the large-frame pool, the log
 * write in flight, the signal file descriptor. server/loop.c is the only
 * file of the project that includes liburing.
 */
#ifndef SKULD_SERVER_LOOP_H
#define SKULD_SERVER_LOOP_H

#include "config.h"
#include "log.h"
#include "service.h"
#include "snapshot.h"
#include "tls.h"

/* Exit reasons of loop_run. */
enum loop_exit {
	LOOP_EXIT_SIGNAL = 0,     /* SIGINT / SIGTERM: everything applied is durable */
	LOOP_EXIT_DISK_ERROR = 1, /* a log write or fdatasync failed: nothing more was sent */
	LOOP_EXIT_SETUP = 2,      /* the ring or its buffers could not be set up */
};

/* Serves listen_fd (bound, listening, non-blocking) until a signal or a disk
 * error. service has been recovered and started with writer. SIGINT and
 * SIGTERM must be blocked in the calling thread (loop_run reads them from a
 * signalfd). snapshots (may be NULL) gets snapshotter_tick every turn,
 * after the turn's log write was started. tls (may be NULL: config->tls is
 * off) is the TLS context connections are served with (tls.h). */
enum loop_exit loop_run(const struct server_config *config, struct service *service,
                        struct log_writer *writer, struct snapshotter *snapshots, int listen_fd,
                        struct tls_context *tls);

#endif /* SKULD_SERVER_LOOP_H */
