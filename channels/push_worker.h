/*
 * push_worker.h — skuld-push's loop: pull a channel's dirty items from
 * skuld, push them through a channel driver, and acknowledge or report each
 * (docs/CHANNELS.md, "skuld-push").
 *
 * Owns: the worker's configuration file, its cache of listing texts (kept
 * by listing serial, so a remap is seen at the next pull), the items a
 * stale answer taught it (what the channel was just read to show), the
 * rounds (pull every dirty item, up to 65,536, then push them in order for
 * a second: zeros and low first, then decreases, then increases, each
 * class oldest change first; then pull afresh),
 * the schedule of read-backs and zero re-sends, and the keys of the events
 * it writes (one PUSH_ACK per accepted (item, version), so a resent
 * acknowledgement is applied once).
 *
 * Invariants:
 *   - Nothing is dropped: an item leaves the dirty set only by a PUSH_ACK
 *     of its current version, which the worker writes only after the
 *     channel accepted that value (or already showed it). A failed call, a
 *     lost connection or a crash leaves the item dirty; the next pull offers
 *     it again.
 *   - The worker keeps no state that a restart needs: the acknowledged
 *     versions are in the ledger.
 *   - Only the driver talks HTTP; this file speaks libskuld.
 */
#ifndef SKULD_CHANNELS_PUSH_WORKER_H
#define SKULD_CHANNELS_PUSH_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "push.h"

struct push_worker_config {
	char server[128];                 /* skuld address, HOST:PORT */
	char server_token[65];            /* REGISTER token */
	char server_tls_ca[256];          /* PEM CAs: speak TLS to skuld ("" : plaintext) */
	char server_tls_name[256];        /* name skuld's certificate carries ("" : its host) */
	char client_id_path[256];         /* where the worker's client id is kept ("" : per run) */
	char channel[33];                 /* skuld channel name */
	char kind[16];                    /* "shopify" */
	char api_url[256];                /* the channel's API base URL */
	char api_token[128];              /* the channel's credentials */
	char api_version[16];             /* e.g. 2025-01 */
	char location[PUSH_LISTING_SIZE]; /* the channel's location identifier */
	char listing_prefix[48];          /* put before an all-digit listing */
	uint32_t batch;                   /* items per call, at most the API's limit */
	uint32_t idle_ms;                 /* pull interval when nothing is dirty */
	uint32_t reconcile_s;             /* read every listing back this often; 0: never */
	uint32_t zero_resend_s;           /* push zeros again this often; 0: never */
	int64_t low_threshold;            /* whole units at or below which an item goes first */
	uint32_t timeout_ms;              /* one API call */
	/* Amazon (kind "amazon"): location is the marketplace id. */
	char seller_id[64];          /* the selling partner id */
	char lwa_url[256];           /* Login with Amazon, https://api.amazon.com */
	char lwa_client_id[128];     /* LWA client id */
	char lwa_client_secret[128]; /* LWA client secret */
	char lwa_refresh_token[512]; /* LWA refresh token */
};

/* Fills defaults, then reads "key = value" lines from path ('#' starts a
 * comment). Returns 0, or -1 with a message naming the line in error. */
int push_worker_config_read(struct push_worker_config *config, const char *path, char *error,
                            size_t error_size);

/* A channel driver as the worker sees it. */
struct push_driver {
	void *context;
	uint32_t batch_max; /* items per push call */
	uint32_t read_max;  /* items per read call */
	uint64_t (*wait_ns)(void *context, uint64_t now_ns);
	void (*push)(void *context, const struct push_item *items, uint32_t count,
	             struct push_result *results, uint64_t now_ns);
	int (*read)(void *context, const struct push_item *items, uint32_t count,
	            struct push_level *levels, uint64_t now_ns);
};

struct push_worker_figures {
	uint64_t pulls;
	uint64_t calls;   /* push calls */
	uint64_t pushed;  /* items in them */
	uint64_t acked;   /* PUSH_ACKs applied */
	uint64_t retries; /* items left dirty after a call */
	uint64_t exceptions;
	uint64_t mismatches; /* read-backs that differed */
	uint64_t unchanged;  /* acknowledged without a call: the channel showed it already */
};

/* Runs until *stop is set. Connects to skuld (and reconnects), then pulls,
 * pushes and acknowledges. Returns 0 after a stop, or -1 with a message
 * when the channel is unknown or skuld refuses the worker. */
int push_worker_run(const struct push_worker_config *config, const struct push_driver *driver,
                    volatile sig_atomic_t *stop, struct push_worker_figures *figures, char *error,
                    size_t error_size);

#endif /* SKULD_CHANNELS_PUSH_WORKER_H */
