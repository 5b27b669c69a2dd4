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
	char log_dir[LOG_PATH_SIZE];
	unsigned flags;
	struct server_config config;
	struct log_reader *reader;
	struct chain *chain;     /* WALK_CHAIN, else NULL */
	struct service *service; /* WALK_APPLY, else NULL */
	struct names names;
	uint64_t segment_first; /* index of the first segment file; 0: none */
	uint64_t segment_last;
	uint64_t segment_files;

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
 * dir/log, the server's data directory layout), loads the configuration
 * (config_path may be NULL: the server's defaults) and opens everything
 * flags ask for. Returns REPLAY_EXIT_OK, or another exit code with
 * walk->fault set. walk_close is safe either way. */
int walk_open(struct walk *walk, const char *dir, const char *config_path, unsigned flags);

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
