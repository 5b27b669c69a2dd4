/*
 * replay.h — what the commands of skuld-replay share (docs/REPLAY.md).
 *
 * Owns: the parsed command line. main.c parses it and checks which options
 * a command takes; verify.c, state.c, history.c, export.c and channel.c each
 * run one command and return an enum replay_exit code (walk.h).
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
	const char *channel; /* --channel NAME (channel-view) */
	const char *item;    /* --item SKU (channel-view) */
	struct text_point at, from, to;
	bool json;   /* --json */
	bool replay; /* --replay (verify) */
};

int replay_verify(const struct replay_args *args);
int replay_state(const struct replay_args *args);
int replay_history(const struct replay_args *args);
int replay_export(const struct replay_args *args);
int replay_channel_view(const struct replay_args *args);

/* The point for people: "event N", the time, or "the end of the log". */
void replay_point_text(const struct text_point *point, char *out, size_t size);

/* One line on how the point relates to the records read up to it (a SEQ
 * inside a record, a log that ends before the point), for people; "" when
 * there is nothing to say. */
void replay_position_note(const struct walk *walk, const struct text_point *point, char *out,
                          size_t size);

/* Prints "skuld-replay: <fault>" (or the warning) for a walk that ended, and
 * returns walk->exit. */
int replay_report_end(const struct walk *walk);

/* Seconds on the monotonic clock, for the figures commands print. */
double replay_now_s(void);

#endif /* SKULD_REPLAY_REPLAY_H */
