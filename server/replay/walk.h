/*
 * walk.h — one pass over a log for skuld-replay: read and check every
 * record (log_reader), hash it into the SHA-256 chain, re-apply it through
 * the server's own replay path (service_replay: ledger, sessions,
 * directory), and collect names and figures.
 *
 * Owns: the reader, the chain, the service and the names of one pass, and
 * the decision how a pass ended: clean; a torn last write (a warning, as
 * recovery gives it: the write was never acknowledged); or a fault (a
 * corrupt log naming file and offset, a record that does not replay to its
 * logged results, an I/O error).
 *
 * One log from two directories: with --archive, the segments retention
 * moved to the archive are read first, then the live ones of DIR, as one
 * log. Where the archive ends and DIR/log begins is checked: the next
 * segment must be there (a gap is a fault naming the missing segment), its
 * header must continue the archive's last write, event and chain value, and
 * a segment in both places (a crash during retention leaves one) must be
 * the same bytes in both, else it is a fault naming both files.
 *
 * A log that does not start at segment 1 (earlier segments archived, no
 * --archive) is read from its first segment present as the reader allows.
 * A replay (WALK_APPLY) of it needs a starting state: the caller loads a
 * snapshot (start.h) before the first walk_next; without one, walk_next
 * ends with a fault naming the first segment present.
 *
 * Invariants:
 *   - Read-only: nothing under DIR is ever written (a torn write is
 *     reported, not discarded; the server discards it at its next start).
 *   - A record is handed to the caller only after it was checked, hashed
 *     (WALK_CHAIN) and applied with every result equal to the logged one
 *     (WALK_APPLY); names are noted from its logged results.
 *   - Never the loop, never liburing, never a socket.
 */
#ifndef SKULD_REPLAY_WALK_H
#define SKULD_REPLAY_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "chain.h"
#include "config.h"
#include "log.h"
#include "names.h"
#include "service.h"
#include "text.h"

enum replay_exit {
	REPLAY_EXIT_OK = 0,    /* done; the log checks out as far as it was read */
	REPLAY_EXIT_FAULT = 1, /* the log is damaged, changed, or does not replay */
	REPLAY_EXIT_USAGE = 2, /* bad command line or --config */
	REPLAY_EXIT_ERROR = 3, /* cannot read DIR, out of memory */
};

enum walk_flags {
	WALK_CHAIN = 1u << 0, /* compute the SHA-256 chain head */
	WALK_APPLY = 1u << 1, /* re-apply every record (needs the server's capacities) */
};

#define WALK_MESSAGE_SIZE 1024u

struct walk {
	/* Set by walk_open. */
	char log_dir[LOG_PATH_SIZE];     /* the live segments: DIR or DIR/log */
	char archive_dir[LOG_PATH_SIZE]; /* --archive; "" without one */
	unsigned flags;
	struct server_config config;
	struct log_reader *reader;
	struct chain *chain;     /* WALK_CHAIN, else NULL */
	struct service *service; /* WALK_APPLY, else NULL */
	struct names names;
	uint64_t segment_first; /* index of the first segment file; 0: none */
	uint64_t segment_last;
	uint64_t segment_files;
	uint64_t live_first; /* the same for DIR/log alone ... */
	uint64_t live_last;
	uint64_t live_files;
	uint64_t archive_first; /* ... and for the archive alone (0: none) */
	uint64_t archive_last;
	uint64_t archive_files;
	bool first_known;                       /* first_header is a checked header */
	struct log_segment_header first_header; /* of segment_first */
	bool in_archive;                        /* the reader reads the archive */
	bool started;                           /* a snapshot gave the replay its start */
	bool chain_waiting;                     /* the chain starts after chain_at */
	struct log_position chain_at;

	/* Figures of the records handed out so far. */
	uint64_t records;
	uint64_t events;
	uint64_t event_first; /* sequence of the first event read; 0: none yet */
	uint64_t event_next;  /* one past the last event read */
	uint64_t time_first_ns;
	uint64_t time_last_ns;
	double opened_s;     /* monotonic clock when walk_open finished */
	double ended_s;      /* ... when the pass ended; 0 before */
	double opened_cpu_s; /* the thread's CPU time at the same two points */
	double ended_cpu_s;

	/* Called with each record just before it is applied (WALK_APPLY),
	 * while walk->service still holds the state before it; NULL: none.
	 * The record's bytes are checked by the reader, its events not yet by
	 * the protocol's rules. */
	void (*before_apply)(void *context, const struct log_record *record);
	void *before_context;

	/* Where to stop (walk_stop_at). */
	struct text_point stop;
	bool stop_whole;

	/* How the pass ended (once walk_next returned <= 0). */
	bool ended;
	bool stopped;             /* at the stop point, before the end of the log */
	uint64_t stopped_first;   /* the record not taken: first event, */
	uint64_t stopped_last;    /* last event, */
	uint64_t stopped_time_ns; /* and record time */
	bool torn;
	int exit;                        /* enum replay_exit */
	char warning[WALK_MESSAGE_SIZE]; /* torn: one line, no newline */
	char fault[WALK_MESSAGE_SIZE];   /* exit != OK: one line, no newline */
	struct log_outcome outcome;      /* the reader's, when it ended the pass */
};

/* Finds the log under dir (dir itself when it holds segment files, else
 * dir/log, the server's data directory layout), and the archived segments
 * in archive (NULL: none; a directory holding log-*.skl files); loads the
 * configuration (config_path may be NULL: the server's defaults) and opens
 * everything flags ask for. WALK_CHAIN starts the chain at head_0 only when
 * the log starts at segment 1 (else walk->chain stays NULL until
 * walk_chain_start). Returns REPLAY_EXIT_OK, or another exit code with
 * walk->fault set. walk_close is safe either way. */
int walk_open(struct walk *walk, const char *dir, const char *archive, const char *config_path,
              unsigned flags);

/* True when the log read does not start at segment 1: the records before
 * it are not there. */
static inline bool walk_partial(const struct walk *walk)
{
	return walk->segment_first > 1;
}

/* Before the first walk_next: the replay starts at position (a snapshot's,
 * loaded into walk->service by the caller) instead of at the first record
 * present. position must lie in the log present: at its very start (the
 * first segment continues it exactly), or inside one of its segments.
 * Returns REPLAY_EXIT_OK, or a fault with walk->fault. */
int walk_start_at(struct walk *walk, const struct log_position *position);

/* Before the first walk_next: the SHA-256 chain goes on from head, a head
 * kept for the log position at (a snapshot's): from the first record when
 * the log present starts there, else from the first record after the one
 * that ends at. Until then walk_chain_known is false. Returns
 * REPLAY_EXIT_OK or REPLAY_EXIT_ERROR with walk->fault. */
int walk_chain_start(struct walk *walk, const struct chain_head *head,
                     const struct log_position *at);

/* Whether walk->chain holds the head of the records read so far. */
static inline bool walk_chain_known(const struct walk *walk)
{
	return walk->chain != NULL && !walk->chain_waiting;
}

/* Ends the walk with a fault (exit, one line from format) before or
 * instead of walking; returns exit. */
__attribute__((format(printf, 3, 4))) int walk_fault(struct walk *walk, int exit,
                                                     const char *format, ...);

/* The directory a segment of this log is read from (the archive's, or the
 * live one), for messages. */
const char *walk_segment_dir(const struct walk *walk, uint64_t segment);

/* The next record (valid until the next call). Returns 1 with a record;
 * 0 at the end of the log (walk->torn says whether a torn last write was
 * left out, with walk->warning); -1 on a fault (walk->exit and walk->fault).
 * After 0 or -1 it keeps returning the same. */
int walk_next(struct walk *walk, struct log_record *record);

/* With SKULD_REPLAY_TIMING=1 in the environment, prints one line to stderr:
 * the records and events of the pass and how long the pass took, in wall
 * clock and in this thread's CPU time (from the end of walk_open, so
 * allocating the ledger is not counted). Then frees everything. */
void walk_close(struct walk *walk);

/* Makes walk_next end (0, with walk->stopped) at the first record beyond
 * point, without applying it. A SEQUENCE point: a record is beyond when its
 * last event is (whole_records: a state never includes an event after the
 * point, records being applied whole), or when its first event is (the
 * record holding the point is still read). A TIME point: when its record
 * time is later. */
void walk_stop_at(struct walk *walk, const struct text_point *point, bool whole_records);

/* The record's last event sequence, or the one before it for a record of
 * 0 events. */
static inline uint64_t walk_record_last(const struct log_record *record)
{
	uint64_t next = record->header->event_first + record->header->count;
	return next > 0 ? next - 1 : 0;
}

/* A fresh service with the walk's configuration (the server's capacities),
 * e.g. to load a snapshot into. Returns 0 or -errno; the caller destroys
 * it. */
int walk_service_create(const struct walk *walk, struct service **out);

/* "log-....skl" of a segment, for messages. */
void walk_segment_name(uint64_t segment, char out[32]);

#endif /* SKULD_REPLAY_WALK_H */
