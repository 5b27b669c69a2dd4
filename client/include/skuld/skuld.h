/*
 * skuld.h — libskuld, the client library of the skuld inventory ledger.
 *
 * What POS tills, web checkouts and tools link. One client handle keeps one
 * TCP connection to a skuld server, registers a session on it, and carries
 * calls from any number of the program's threads:
 *
 *   - skuld_submit() sends a batch of events and returns one result per
 *     event. Concurrent submits from several threads are merged into one
 *     request while another request is in flight; each caller gets its own
 *     slice of the results. A LINKED chain is never split across requests.
 *   - Lost connections are re-established in the background. A request whose
 *     reply was lost is sent again with the same request number (the server
 *     answers its saved reply) or, when the server's session has moved on,
 *     as a new request whose events keep their idempotency keys (the server
 *     answers the original results, flagged SKULD_RESULT_REPLAYED). A sale is
 *     applied once, whatever the network does.
 *   - Every call has a deadline. The connection state is visible
 *     (skuld_client_state, and a callback), so a till can switch to its
 *     offline queue instead of waiting.
 *
 * Return values: 0 on success; a negative errno for system and library
 * failures (-ETIMEDOUT, -ECONNREFUSED, -ENOTCONN, -EINVAL, -EMSGSIZE...); a
 * positive SKULD_ERR_* status (100 and up) when the server refused the frame
 * or the session (SKULD_ERR_TOKEN, SKULD_ERR_VERSION...). Per-event outcomes
 * are not return values: they are in each struct skuld_result's status.
 * skuld_strerror() reads all of them.
 *
 * Ownership, everywhere: a pointer argument is borrowed for the duration of
 * the call only. Strings in struct skuld_options are copied by
 * skuld_client_create(). Output buffers are written only before the call
 * returns; a call that returns an error (a timeout included) never writes to
 * them afterwards.
 *
 * The wire structures (struct skuld_event, struct skuld_result, the status
 * and kind numbers, the query records) come from <skuld/protocol.h>, which
 * is docs/PROTOCOL.md as C. Only its skuld_* functions (skuld_status_name,
 * skuld_event_kind_name, skuld_operation_name, skuld_checksum) are part of
 * libskuld; its proto_* codec functions belong to the server and are not
 * exported.
 */
#ifndef SKULD_SKULD_H
#define SKULD_SKULD_H

#include "protocol.h" /* installed next to this file as <skuld/protocol.h> */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKULD_EXTERN __attribute__((visibility("default")))

#define SKULD_LIBRARY_VERSION_MAJOR 0
#define SKULD_LIBRARY_VERSION_MINOR 1
#define SKULD_LIBRARY_VERSION_PATCH 0

/* ---- Client handle -------------------------------------------------------- */

typedef struct skuld_client skuld_client; /* opaque; one per server connection */

typedef enum skuld_state {
	SKULD_STATE_DISCONNECTED = 0, /* not connected and not trying: before connect,
	                                 after skuld_client_close, or after the server
	                                 refused the session (bad token, version) */
	SKULD_STATE_RECONNECTING = 1, /* trying to (re)connect in the background; calls
	                                 wait for it until their deadline */
	SKULD_STATE_CONNECTED = 2,    /* registered; calls go out at once */
} skuld_state;

/* Called from the library's I/O thread on every state change, with the
 * error that caused it (0, -errno or SKULD_ERR_*). It must not call back
 * into the same client and should return quickly. */
typedef void (*skuld_state_callback)(void *context, skuld_state state, int error);

#define SKULD_TIMEOUT_DEFAULT 0u /* a call's timeout_ms: use options.timeout_ms */

struct skuld_options {
	const char *address;           /* "HOST:PORT" or "[IPv6]:PORT". Required. Copied. */
	const char *token;             /* REGISTER token, at most 64 printable ASCII. Copied. */
	const char *client_name;       /* for the server's logs, at most 32; may be NULL. Copied. */
	skuld_u128 client_id;          /* the session's client id; non-zero: used as is */
	const char *client_id_path;    /* client_id zero: read from this file, or create it with
	                                  a random id (skuld_client_id_load). Both zero/NULL: a
	                                  random id for this process only. Copied. */
	uint32_t timeout_ms;           /* deadline of a call given SKULD_TIMEOUT_DEFAULT; 5000 */
	uint32_t connect_timeout_ms;   /* one connect + REGISTER attempt; 2000 */
	uint32_t reply_timeout_ms;     /* no reply for this long: reconnect and resend; 10000 */
	uint32_t reconnect_min_ms;     /* first back-off after a failed attempt; 10 */
	uint32_t reconnect_max_ms;     /* back-off doubles up to this; 1000 */
	uint32_t calls_max;            /* calls waiting at once, bound of the queue; 4096 */
	skuld_state_callback on_state; /* may be NULL */
	void *context;                 /* passed to on_state */
	/* TLS (docs/CLIENT.md, TLS). With any of the four set the client speaks
	 * TLS 1.2 or 1.3 only, verifies the server's certificate (chain and
	 * name) and never sends a byte in clear. tls_key_file without
	 * tls_cert_file: -EINVAL. */
	const char *tls_ca_file;     /* PEM CAs the server's certificate must chain to; NULL:
	                                the system's default CAs. Copied. */
	const char *tls_server_name; /* name the certificate must carry (and SNI); NULL: the
	                                address's host. Copied. */
	const char *tls_cert_file;   /* PEM client certificate, for servers asking for one
	                                (mutual TLS); NULL: none. Copied. */
	const char *tls_key_file;    /* its private key; NULL: in tls_cert_file. Copied. */
	uint64_t reserved[4];        /* zero (skuld_options_init) */
};

/* Fills options with the defaults above (zero means "default" everywhere). */
SKULD_EXTERN void skuld_options_init(struct skuld_options *options);

/* Allocates a client from options (borrowed; strings copied). Nothing is
 * connected yet. Returns 0 and sets *client, or -EINVAL (bad address, token
 * or name), -ENOMEM, or the error of reading client_id_path. */
SKULD_EXTERN int skuld_client_create(skuld_client **client, const struct skuld_options *options);

/* Starts the I/O thread (first call only) and waits until the session is
 * registered or timeout_ms passes. Returns 0 when connected; -ETIMEDOUT or
 * the last connect error (-ECONNREFUSED, -EKEYREJECTED for a TLS certificate
 * that did not verify...) otherwise, in which case the library keeps trying
 * in the background (state RECONNECTING); or the server's refusal
 * (SKULD_ERR_TOKEN, SKULD_ERR_VERSION, SKULD_ERR_CLIENT, SKULD_ERR_TLS_REQUIRED),
 * after which it stops trying (state DISCONNECTED) until connect is called
 * again. */
SKULD_EXTERN int skuld_client_connect(skuld_client *client, uint32_t timeout_ms);

/* Stops the I/O thread, closes the connection and frees the client. No call
 * on this client may be running or start later. A request still in flight
 * is abandoned: its outcome is unknown, and submitting its events again with
 * the same keys (on any client) is how to learn it. NULL is a no-op. */
SKULD_EXTERN void skuld_client_close(skuld_client *client);

SKULD_EXTERN skuld_state skuld_client_state(skuld_client *client);
SKULD_EXTERN const char *skuld_state_name(skuld_state state);
SKULD_EXTERN skuld_u128 skuld_client_id(skuld_client *client);

/* A snapshot of the client's session and counters. */
struct skuld_client_info {
	skuld_state state;
	int last_error;        /* what ended the last connection or attempt; 0: none */
	uint16_t version;      /* negotiated protocol version; 0 before the first REGISTER */
	uint32_t events_max;   /* the server's events per request; 0 before REGISTER */
	uint64_t session;      /* the server's session id, for support */
	uint64_t request_next; /* number the next new request will carry */
	uint64_t calls;        /* submit calls accepted */
	uint64_t requests;     /* SUBMIT requests completed (merged calls count once) */
	uint64_t events;       /* events in completed requests */
	uint64_t resends;      /* SUBMITs sent again after a lost connection or reply */
	uint64_t connects;     /* successful REGISTERs */
	uint64_t replayed;     /* results flagged REPLAYED */
};
SKULD_EXTERN void skuld_client_info(skuld_client *client, struct skuld_client_info *info);

/* ---- Calls (thread-safe; each blocks its caller until done or deadline) ---- */

/* Submits count events (0..SKULD_EVENTS_PER_FRAME_MAX) and stores one result
 * per event, in order, in results (count entries; results[i].index == i).
 * Both arrays are borrowed for the duration of the call. The events are
 * checked first (proto rules of PROTOCOL.md section 6.3): a malformed event
 * returns its SKULD_ERR_EVENT_* status with nothing sent, and *bad_index
 * (when not NULL) names it. Returns 0 when every event has a result (check
 * each status); -ETIMEDOUT when the deadline passed first, in which case the
 * events may or may not be applied and submitting them again with the same
 * keys is safe and tells which; -ENOTCONN before skuld_client_connect;
 * -EMSGSIZE when count exceeds the server's events_max; -EAGAIN when
 * calls_max calls are already waiting; a SKULD_ERR_* refusal. */
SKULD_EXTERN int skuld_submit(skuld_client *client, const struct skuld_event *events,
                              uint32_t count, struct skuld_result *results, uint32_t *bad_index,
                              uint32_t timeout_ms);

/* One PING round trip. 0, or an error as for skuld_submit. */
SKULD_EXTERN int skuld_ping(skuld_client *client, uint32_t timeout_ms);

/* A QUERY reply record: kind 1..4 read as level, kind 5 (HOLD) as hold,
 * 6 and 7 (PUSH, PUSH_ALL) as push, 8 as listing, 9 as exception, 10 as
 * channel_push. */
union skuld_query_record {
	struct skuld_level_record level;
	struct skuld_hold_record hold;
	struct skuld_push_record push;
	struct skuld_listing_record listing;
	struct skuld_exception_record exception;
	struct skuld_channel_push_record channel_push;
	struct skuld_discrepancy_record discrepancy;
};
static_assert(sizeof(union skuld_query_record) == 64, "query record");

/* Sends one QUERY (borrowed; PROTOCOL.md section 12). At most capacity
 * records are stored in records; for list kinds a limit of 0 or over
 * capacity is lowered to capacity, so nothing is cut off. *count receives the
 * number of records stored. Returns 0, SKULD_ERR_QUERY for a malformed
 * query (nothing sent), or an error as for skuld_submit. */
SKULD_EXTERN int skuld_query(skuld_client *client, const struct skuld_query *query,
                             union skuld_query_record *records, uint32_t capacity, uint32_t *count,
                             uint32_t timeout_ms);

/* The counters of (item, location). out->status says whether they exist. */
SKULD_EXTERN int skuld_query_level(skuld_client *client, uint32_t item, uint32_t location,
                                   struct skuld_level_record *out, uint32_t timeout_ms);

/* The state of hold id hold. out->status is SKULD_OK or SKULD_HOLD_UNKNOWN. */
SKULD_EXTERN int skuld_query_hold(skuld_client *client, uint64_t hold,
                                  struct skuld_hold_record *out, uint32_t timeout_ms);

/* Translates a code (SKU, barcode, location code, channel name: kind is an
 * enum skuld_lookup_kind other than SKULD_LOOKUP_ITEM) to ids. Stores at most
 * capacity matches; *count receives how many the server answered (more than
 * capacity means some were left out). A reply has at least one match; a code
 * that names nothing has one match with id 0 and a *_UNKNOWN status. SKU and
 * barcode matches carry the item's scale and SKULD_LOOKUP_BUNDLE. Returns 0,
 * -EINVAL for a code that is not valid text or capacity 0, SKULD_ERR_QUERY
 * for an unknown kind or SKULD_LOOKUP_ITEM (nothing sent), or an error as for
 * skuld_submit. */
SKULD_EXTERN int skuld_lookup(skuld_client *client, uint16_t kind, const char *code,
                              struct skuld_lookup_match *matches, uint32_t capacity,
                              uint32_t *count, uint32_t timeout_ms);

/* Shorthand for a SKU lookup: *item is 0 when unknown. */
SKULD_EXTERN int skuld_lookup_sku(skuld_client *client, const char *sku, uint32_t *item,
                                  uint32_t timeout_ms);

/* What the catalog says of item id (LOOKUP ITEM): out->status is SKULD_OK
 * with out->id == id, out->scale and SKULD_LOOKUP_BUNDLE in out->flags, or
 * SKULD_ITEM_UNKNOWN with out->id == 0. Returns 0, -EINVAL for id 0 (nothing
 * sent), or an error as for skuld_submit; out is written only on 0. */
SKULD_EXTERN int skuld_lookup_item(skuld_client *client, uint32_t id,
                                   struct skuld_lookup_match *out, uint32_t timeout_ms);

/* The server's figures (PROTOCOL.md section 14): the first STATS record. */
SKULD_EXTERN int skuld_stats(skuld_client *client, struct skuld_stats *out, uint32_t timeout_ms);

/* Every STATS record this library knows, in wire order (768 bytes). */
struct skuld_stats_all {
	struct skuld_stats server;          /* record 0 */
	struct skuld_stats_limits limits;   /* record 1: limit hits, SUBMIT latency */
	struct skuld_stats_rejects rejects; /* record 2: ERROR frames by status */
};

/* All of the server's figures. *records (may be NULL) is how many records
 * the server sent (an older server sends 1); the records it did not send
 * are zero in out. Returns 0 or an error as for skuld_submit; out is written
 * only on 0. */
SKULD_EXTERN int skuld_stats_all(skuld_client *client, struct skuld_stats_all *out,
                                 uint32_t *records, uint32_t timeout_ms);

/* ---- Errors --------------------------------------------------------------- */

/* Text for 0, a negative errno, a per-event status (1..99) or a SKULD_ERR_*
 * status (100..). Never NULL; the string is static. */
SKULD_EXTERN const char *skuld_strerror(int code);

/* ---- Client ids and idempotency keys --------------------------------------- */

/* A fresh random client id from getrandom(2). Returns 0 or -errno. */
SKULD_EXTERN int skuld_client_id_generate(skuld_u128 *id);

/* Reads the client id kept in the file at path (32 hex digits, hi then lo),
 * or, when there is none, creates the file with a fresh random id (written
 * to a temporary file, fsynced and linked into place, so two processes
 * racing agree on one id). Returns 0 or -errno (-EINVAL: the file is not an
 * id). */
SKULD_EXTERN int skuld_client_id_load(const char *path, skuld_u128 *id);

/* The idempotency key of one intended effect: XXH3-128 over a versioned,
 * length-prefixed encoding of source (the till, web shop or gateway), document
 * (receipt, order or transfer number), line (the line within it) and action
 * ("sale", "return", "reserve", "commit", ...). The same four values give
 * the same key on every machine and in every language (docs/CLIENT.md has the
 * encoding and a test vector); never zero. NULL strings read as "". */
SKULD_EXTERN skuld_u128 skuld_key(const char *source, const char *document, uint32_t line,
                                  const char *action);

/* ---- Event builders ---------------------------------------------------------
 * Each zeroes *event and fills the fields its kind uses (PROTOCOL.md section
 * 4). occurred_at is 0 ("now"); set it for events recorded offline. */

SKULD_EXTERN void skuld_event_sale(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                   uint32_t location, int64_t quantity);
/* disposition: enum skuld_disposition (RESTOCK, DAMAGED, QUARANTINE). */
SKULD_EXTERN void skuld_event_return(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                     uint32_t location, int64_t quantity, uint8_t disposition);
SKULD_EXTERN void skuld_event_receive(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                      uint32_t location, int64_t quantity);
/* reason: enum skuld_adjust_reason. */
SKULD_EXTERN void skuld_event_adjust(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                     uint32_t location, int64_t delta, uint8_t reason);
/* A hold of quantity at location for ttl_s seconds; hold is the caller's id. */
SKULD_EXTERN void skuld_event_reserve(struct skuld_event *event, skuld_u128 key, uint64_t hold,
                                      uint32_t item, uint32_t location, int64_t quantity,
                                      uint32_t ttl_s);
/* A hold against a channel's pool; the ledger picks the location. */
SKULD_EXTERN void skuld_event_reserve_channel(struct skuld_event *event, skuld_u128 key,
                                              uint64_t hold, uint32_t item, uint32_t channel,
                                              int64_t quantity, uint32_t ttl_s);
SKULD_EXTERN void skuld_event_extend(struct skuld_event *event, skuld_u128 key, uint64_t hold,
                                     uint32_t ttl_s);
/* quantity 0 commits all that is held. */
SKULD_EXTERN void skuld_event_commit(struct skuld_event *event, skuld_u128 key, uint64_t hold,
                                     int64_t quantity);
SKULD_EXTERN void skuld_event_release(struct skuld_event *event, skuld_u128 key, uint64_t hold);
SKULD_EXTERN void skuld_event_fulfill(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                      uint32_t location, int64_t quantity);
SKULD_EXTERN void skuld_event_transfer_out(struct skuld_event *event, skuld_u128 key,
                                           uint64_t transfer, uint32_t item, uint32_t from,
                                           uint32_t to, int64_t quantity);
SKULD_EXTERN void skuld_event_transfer_in(struct skuld_event *event, skuld_u128 key,
                                          uint64_t transfer, uint32_t item, uint32_t location,
                                          int64_t quantity);
/* Catalog definitions. They return 0, or -EINVAL when code is not valid text
 * of at most 32 characters (the event is then left zeroed). */
SKULD_EXTERN int skuld_event_item_define(struct skuld_event *event, skuld_u128 key, uint32_t item,
                                         const char *sku, uint8_t scale);
SKULD_EXTERN int skuld_event_location_define(struct skuld_event *event, skuld_u128 key,
                                             uint32_t location, const char *code);

/* Makes events[0..count) one all-or-nothing chain: LINKED on every event
 * but the last, cleared on the last. */
SKULD_EXTERN void skuld_events_link(struct skuld_event *events, uint32_t count);

#ifdef __cplusplus
}
#endif

#endif /* SKULD_SKULD_H */
