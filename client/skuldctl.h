/*
 * skuldctl.h — what the parts of skuldctl share (docs/SKULDCTL.md).
 *
 * Owns: the exit codes, the connection to the server, the translation of the
 * codes people type (SKU, location code, channel name) into ids, the
 * allocation of ids for new definitions, exact decimal quantities, and the
 * JSON string writer. skuldctl.c has the commands, skuldctl_import.c the CSV
 * import, skuldctl_csv.c the RFC 4180 reader.
 *
 * Invariants:
 *   - Quantities never pass through floating point: text <-> base units is
 *     integer arithmetic in the item's scale, within [-2^53, 2^53].
 *   - Every loop that talks to the server has a bound (probes, retries).
 */
#ifndef SKULD_CLIENT_SKULDCTL_H
#define SKULD_CLIENT_SKULDCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <skuld/skuld.h>

/* Exit codes, the same for every command (skuldctl --help). */
enum ctl_exit {
	CTL_EXIT_OK = 0,      /* done (or already done: an idempotent re-run) */
	CTL_EXIT_REFUSED = 1, /* the ledger refused (insufficient stock, unknown SKU...),
	                         or import found defects in the file */
	CTL_EXIT_USAGE = 2,   /* bad command line, bad quantity text, unreadable file */
	CTL_EXIT_ERROR = 3,   /* cannot connect, timeout, the server refused the session or
	                         a frame: the outcome may be unknown, re-running is safe */
};

#define CTL_QUANTITY_MAX   (INT64_C(1) << 53) /* LEDGER.md QMAX */
#define CTL_TIMEOUT_MS     10000u
#define CTL_KEY_SOURCE     "skuldctl"
#define CTL_QUANTITY_CHARS 32 /* "-9007199254740992" with a point and NUL fits */

struct ctl {
	skuld_client *client; /* NULL until ctl_connect */
	const char *server;   /* "HOST:PORT" */
	const char *token;    /* may be NULL */
	const char *tls_ca;   /* --tls-ca / $SKULD_TLS_CA: speak TLS, verify with it; or NULL */
	const char *tls_name; /* --tls-server-name / $SKULD_TLS_SERVER_NAME, or NULL */
	const char *key;      /* --key: idempotency source for movements, or NULL */
	int json;             /* --json */
	uint32_t events_max;  /* from the REGISTER reply */
};

/* Connects and registers. Returns CTL_EXIT_OK or CTL_EXIT_ERROR (message
 * printed). */
int ctl_connect(struct ctl *ctl);
void ctl_close(struct ctl *ctl);

/* Prints "skuldctl: <text>: <skuld_strerror(rc)>" and returns the exit code
 * for a library return value rc (negative errno or SKULD_ERR_*). */
int ctl_fail(int rc, const char *text);

/* SUBMIT with the default deadline; on a library error prints it and
 * returns CTL_EXIT_ERROR, else CTL_EXIT_OK (check each result). */
int ctl_submit(struct ctl *ctl, const struct skuld_event *events, uint32_t count,
               struct skuld_result *results);

/* ---- Codes -> ids ---------------------------------------------------------- */

/* The item with SKU sku: *id (0 if unknown) and its scale (0 if unknown),
 * both from the one SKU match. Returns CTL_EXIT_OK or CTL_EXIT_ERROR. */
int ctl_lookup_item(struct ctl *ctl, const char *sku, uint32_t *id, uint8_t *scale);
/* The scale of item id (LOOKUP ITEM); 0 for an unknown item. Returns
 * CTL_EXIT_OK or CTL_EXIT_ERROR. */
int ctl_item_scale(struct ctl *ctl, uint32_t id, uint8_t *scale);
/* Location code / channel name -> id (0 if unknown). */
int ctl_lookup_location(struct ctl *ctl, const char *code, uint32_t *id);
int ctl_lookup_channel(struct ctl *ctl, const char *name, uint32_t *id);

enum ctl_id_kind {
	CTL_ID_ITEM = 0,
	CTL_ID_LOCATION = 1,
	CTL_ID_CHANNEL = 2,
};

/* The lowest id above every defined id of kind, found by galloping then
 * bisecting over "is id defined" queries (ids that skuldctl allocates are
 * dense from 1). A definition can still race with another client: the
 * ledger then answers ITEM_EXISTS (...) and the caller moves past it.
 * Returns CTL_EXIT_OK or CTL_EXIT_ERROR. */
int ctl_next_free_id(struct ctl *ctl, enum ctl_id_kind kind, uint32_t *next);
/* Whether id of kind is defined: 1 yes, 0 no, -1 error (printed). */
int ctl_id_defined(struct ctl *ctl, enum ctl_id_kind kind, uint32_t id);

/* ---- Quantities ----------------------------------------------------------- */

/* Parses a decimal ("12", "1.250", "-3", "+2.5") into base units of scale:
 * at most scale decimals (further digits must be zeros), |value| <= 2^53,
 * a sign only when allow_sign. Returns 0 or -1. */
int ctl_quantity_parse(const char *text, uint8_t scale, int allow_sign, int64_t *out);
/* Writes base units as a decimal with exactly scale decimals. */
void ctl_quantity_format(int64_t units, uint8_t scale, char out[CTL_QUANTITY_CHARS]);
/* 10^scale for scale 0..9. */
int64_t ctl_scale_unit(uint8_t scale);

/* "15m", "2h", "90s", "1d", "600" (seconds) -> seconds. Returns 0 or -1. */
int ctl_duration_parse(const char *text, uint32_t *seconds);
/* A u64 from text (decimal). Returns 0 or -1. */
int ctl_u64_parse(const char *text, uint64_t *out);

/* ---- Keys and ids ----------------------------------------------------------- */

/* A random non-zero u64 (getrandom); for hold, count and transfer ids and
 * keys of movements run without --key. */
uint64_t ctl_random_u64(void);
/* The key of one movement: with --key K, skuld_key("skuldctl", K, line,
 * action) so the same command with the same K is applied once; without,
 * random. */
skuld_u128 ctl_movement_key(const struct ctl *ctl, uint32_t line, const char *action);

/* ---- Channels (skuldctl_channels.c) ----------------------------------------- */

#define CTL_CHANNEL_SCAN_MAX 4096u

struct ctl_channel_ref {
	uint32_t id;
	char name[SKULD_CODE_SIZE + 8]; /* as named, or "#ID" when found by the scan */
};

/* The channels named (count > 0), or every channel found by id from 1
 * (skuldctl allocates them densely; the scan ends after a run of unknown
 * ids), into out[0..*found), at most CTL_CHANNEL_SCAN_MAX. Returns an exit
 * code (CTL_EXIT_REFUSED for an unknown name). */
int ctl_channels_resolve(struct ctl *ctl, const char *const *names, int count,
                         struct ctl_channel_ref *out, uint32_t *found);
/* The CHANNEL_PUSH record of channel. Returns an exit code. */
int ctl_channel_record(struct ctl *ctl, uint32_t channel, struct skuld_channel_push_record *record);

/* `channels [NAME...]`: per channel, listings, dirty and parked items, the
 * oldest dirty age, the last push and the channel's exception. */
int ctl_channels(struct ctl *ctl, const char *const *names, int count);
/* What `exceptions` lists. */
struct ctl_exception_filter {
	int channels;      /* channel exceptions (of `name`, or of every channel) */
	int discrepancies; /* discrepancy records */
	uint32_t location; /* discrepancies of this location only, 0: all */
	int acknowledged;  /* --all: acknowledged discrepancies too */
};

/* `exceptions [--channel NAME] [--discrepancies] [--location LOC] [--all]`:
 * open channel exceptions, then remembered discrepancies. */
int ctl_exceptions(struct ctl *ctl, const char *name, const struct ctl_exception_filter *filter);
/* `import mappings FILE.csv [--dry-run]`: columns sku, channel, listing
 * ("-" unmaps). */
int ctl_import_mappings(struct ctl *ctl, const char *path, int dry_run);

/* ---- Output ------------------------------------------------------------------ */

/* Writes text as a JSON string (quotes, escapes). */
void ctl_json_string(FILE *out, const char *text);
/* A code is valid protocol text: 1..32 printable ASCII, no leading or
 * trailing space. */
int ctl_code_valid(const char *code);

/* ---- Catalog chains (define-* and import build the same events) ------------ */

/* Fills events with the linked chain that defines item id: ITEM_DEFINE
 * (BUNDLE when bundle, with its scale), BARCODE_DEFINE of barcode (pack one
 * whole unit) when not NULL or empty, ATTRIBUTE_SET of each "name=value".
 * Keys derive from the content and the id (docs/SKULDCTL.md), so the same
 * definition sent again is REPLAYED. events has room for
 * 2 + attribute_count. Returns the event count, or 0 when a text is not a
 * valid code. */
uint32_t ctl_item_chain(struct skuld_event *events, uint32_t id, const char *sku, uint8_t scale,
                        int bundle, const char *barcode, const char *const *attributes,
                        uint32_t attribute_count);
/* The BUNDLE_COMPONENT event of bundle id (SKU sku): units of component. */
void ctl_component_event(struct skuld_event *event, uint32_t id, const char *sku,
                         uint32_t component, const char *component_sku, int64_t units);
/* The first status in a chain's results that is not OK or LINKED_FAILED
 * (the failing event's real status), or SKULD_OK; *index gets its index. */
uint16_t ctl_chain_status(const struct skuld_result *results, uint32_t count, uint32_t *index);

/* skuldctl import WHAT PATH [--dry-run] [--session S] (skuldctl_import.c):
 * what is items, locations, bundles or counts; session (counts only, may be
 * NULL) names the counting session that the keys derive from. Returns an
 * enum ctl_exit code. */
int ctl_import(struct ctl *ctl, const char *what, const char *path, int dry_run,
               const char *session);

/* ---- Metrics (skuldctl_metrics.c) ------------------------------------------- */

/* `stats --prometheus`: STATS and every channel's push record in the
 * Prometheus text format, on stdout. */
int ctl_stats_prometheus(struct ctl *ctl);
/* `metrics --listen HOST:PORT`: serves the same at http://HOST:PORT/metrics,
 * asking the server afresh per scrape, until SIGINT or SIGTERM. Prints
 * "skuldctl: metrics on http://HOST:PORT/metrics" (port 0: the one taken). */
int ctl_metrics_serve(struct ctl *ctl, const char *listen);

#endif /* SKULD_CLIENT_SKULDCTL_H */
