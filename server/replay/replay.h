/*
 * replay.h — what the commands of skuld-replay share (docs/REPLAY.md).
 *
 * Owns: the parsed command line. main.c parses it and checks which options
 * a command takes; verify.c, state.c, history.c and export.c each run one
 * command and return an enum replay_exit code (walk.h).
 *
 * Invariants: every command reads the log only (never writes under DIR),
 * prints its result on stdout (human-readable, or JSON with --json) and
 * every warning or fault on stderr, one line each, starting
 * "skuld-replay: ".
 */
#ifndef SKULD_REPLAY_REPLAY_H
#define SKULD_REPLAY_REPLAY_H

#include <stdbool.h>

#include "text.h"
#include "walk.h"

#define REPLAY_POSITIONAL_MAX 4

struct replay_args {
	const char *command;
	const char *positional[REPLAY_POSITIONAL_MAX]; /* after the command: DIR first */
	int positional_count;
	const char *config;  /* --config FILE */
	const char *archive; /* --archive DIR: archived segments, read before DIR's */
	const char *head;    /* --head SEQ:HEX */
	const char *format;  /* --format csv|jsonl */
	struct text_point at, from, to;
	bool json;   /* --json */
	bool replay; /* --replay (verify) */
};

int replay_verify(const struct replay_args *args);
int replay_state(const struct replay_args *args);
int replay_history(const struct replay_args *args);
int replay_export(const struct replay_args *args);

/* Prints "skuld-replay: <fault>" (or the warning) for a walk that ended, and
 * returns walk->exit. */
int replay_report_end(const struct walk *walk);

/* Seconds on the monotonic clock, for the figures commands print. */
double replay_now_s(void);

#endif /* SKULD_REPLAY_REPLAY_H */
