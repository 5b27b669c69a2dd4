/*
 * config.h — the server's settings: command line, the `key = value` file,
 * defaults, validation, and the memory bound they imply.
 *
 * Owns: struct server_config and the rules that make it valid. Every table,
 * ring and buffer of the server is sized from it at start-up; nothing grows
 * afterwards. docs/OPERATIONS.md lists every key with its default and the
 * memory formula (config_memory_bytes computes the same number).
 *
 * File format: one `key = value` per line; `#` starts a comment; blank lines
 * are ignored; keys are the field names below (ledger capacities without the
 * ledger. prefix). An unknown key, a value that is not a number where one is
 * expected, or a number out of range is an error naming the line.
 * `token.<name> = <secret> <role> [location=..|channel=..]` may repeat, one
 * per name (auth.h). A file that holds any token (these or the single
 * `token`) must not be readable by group or other: config_load refuses it.
 * With no token at all the server is open (every connection is admin).
 * `tls = on | required` needs `tls_cert` and `tls_key` (config_finish).
 */
#ifndef SKULD_SERVER_CONFIG_H
#define SKULD_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "ledger.h"
#include "protocol.h"
#include "service.h"

#define CONFIG_PATH_SIZE  400u /* data directory, with the NUL */
#define CONFIG_ERROR_SIZE 256u

/* `tls = off | on | required` (docs/OPERATIONS.md, TLS). */
enum config_tls {
	CONFIG_TLS_OFF = 0,      /* plaintext only */
	CONFIG_TLS_ON = 1,       /* TLS and plaintext, told apart by the first byte */
	CONFIG_TLS_REQUIRED = 2, /* TLS only: a plaintext connection is refused */
};

struct server_config {
	char listen_host[64];               /* dotted IPv4 address */
	uint16_t listen_port;               /* 0: an ephemeral port */
	char data_dir[CONFIG_PATH_SIZE];    /* log in data_dir/log, port file, lock */
	char token[SKULD_TOKEN_SIZE + 1];   /* the single admin token; "" : none */
	struct auth_table tokens;           /* token.<name> keys (auth.h) */
	char archive_dir[CONFIG_PATH_SIZE]; /* retention moves segments here; empty: deletes */
	uint64_t retain_bytes;              /* live log segments' size at most; 0: no limit */
	uint32_t retain_days;               /* segments older than this leave; 0: no limit */
	int recover_to_damage;              /* --recover-to-damage (command line only) */
	uint32_t connections_max;           /* open connections at once */
	uint32_t frame_events_max;          /* events per SUBMIT */
	uint32_t frame_small_bytes;         /* bodies up to this use the connection's buffer */
	uint32_t frame_pool;                /* large-frame buffers shared by all connections */
	uint32_t replies_max;               /* replies queued per connection */
	uint32_t reply_bytes;               /* reply buffer per connection (0: derived) */
	uint32_t sessions_max;              /* session table size */
	uint32_t expire_batch;              /* EXPIRE events per loop turn (K) */
	uint64_t segment_bytes;             /* log segment size */
	uint32_t write_bytes;               /* one group-commit write, at most */
	uint32_t query_limit;               /* records per QUERY page, at most */
	uint32_t query_scan;                /* ids a list QUERY looks at, at most */
	uint32_t recv_buffers;              /* provided receive buffers (power of two) */
	uint32_t recv_buffer_bytes;         /* bytes each */
	uint32_t frame_timeout_ms;          /* a partial frame idle this long: closed */
	uint32_t frame_min_rate_bytes;      /* a large frame's body: bytes a second, at least */
	uint32_t stall_timeout_ms;          /* replies unsent this long: closed */
	uint32_t idle_timeout_ms;           /* registered, no frame this long: closed; 0: never */
	uint32_t disk_alarm_percent;        /* alarm below this share of the disk free; 0: off */
	uint64_t disk_alarm_bytes;          /* alarm below this many bytes free; 0: off */
	uint32_t disk_alarm_hours;          /* alarm when full within this many hours; 0: off */
	uint64_t snapshot_events;           /* a snapshot after this many events; 0: not by count */
	uint32_t snapshot_interval_s; /* ... or this long after the last one; 0: not by time */
	uint32_t snapshot_keep;       /* newest snapshots kept in data_dir/snapshots */

	uint32_t tls;                         /* enum config_tls */
	char tls_cert[CONFIG_PATH_SIZE];      /* PEM certificate (chain) file; "" : none */
	char tls_key[CONFIG_PATH_SIZE];       /* PEM private key file; "" : none */
	char tls_client_ca[CONFIG_PATH_SIZE]; /* PEM CAs for client certificates; "" : none */

	uint32_t fsync_delay_us;     /* benchmarks, tests: log writes complete this late */
	struct ledger_config ledger; /* state machine capacities */
};

/* Fills every field with its documented default. */
void config_defaults(struct server_config *config);

/* Applies one setting. Returns 0, or -EINVAL with a message in error. */
int config_set(struct server_config *config, const char *key, const char *value, char *error,
               size_t error_size);

/* Parses "HOST:PORT" into listen_host / listen_port. Returns 0 or -EINVAL. */
int config_set_listen(struct server_config *config, const char *listen);

/* Reads a `key = value` file. Returns 0, -errno when it cannot be read,
 * -EINVAL with "FILE:LINE: why" in error, or -EPERM when the file holds
 * tokens and its mode lets group or other read it. */
int config_load(struct server_config *config, const char *path, char *error, size_t error_size);

/* Checks the settings against each other and derives what is left at 0
 * (reply_bytes). Returns 0 or -EINVAL with a message in error. */
int config_finish(struct server_config *config, char *error, size_t error_size);

/* Largest reply frame (header included) the server can send with these
 * settings: what one connection's reply buffer must hold. */
uint32_t config_reply_frame_max(const struct server_config *config);

/* Largest request body the server reads. */
uint32_t config_body_max(const struct server_config *config);

/* The service settings these give, with log_dir as the segment directory
 * (what the server, skuld-replay and the tests create a service from). The
 * strings point into config and log_dir. */
struct service_config config_service(const struct server_config *config, const char *log_dir);

/* True when the configuration holds any token (not open to everyone). */
bool config_has_tokens(const struct server_config *config);

/* The memory bound of docs/OPERATIONS.md for these settings, in bytes. */
uint64_t config_memory_bytes(const struct server_config *config);

#endif /* SKULD_SERVER_CONFIG_H */
