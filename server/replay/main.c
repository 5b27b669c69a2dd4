/*
 * main.c — skuld-replay: the auditor's tool. Rebuilds any past state from
 * the log alone, with the same log and ledger code as the server (the
 * server's replay path, service_replay), never the loop, liburing or a
 * socket. docs/REPLAY.md is the manual.
 *
 *   skuld-replay verify  DIR [--head SEQ:HEX] [--replay] [--archive DIR] [--config FILE] [--json]
 *   skuld-replay state   DIR [--at SEQ|TIME] [--archive DIR] [--config FILE] [--json]
 *   skuld-replay history DIR SKU[@LOC] [--from P] [--to P] [--archive DIR] [--config FILE]
 *                        [--json]
 *   skuld-replay export  DIR --format csv|jsonl [--from P] [--to P] [--archive DIR]
 *   skuld-replay channel-view DIR --channel NAME [--at SEQ|TIME] [--item SKU]
 *                        [--config FILE] [--archive DIR] [--json]
 *
 * Owns: the command line (which command takes which option) and the exit
 * status. Reads only: nothing under DIR is ever written.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "replay.h"

static const char usage_text[] =
        "usage: skuld-replay COMMAND DIR ...\n"
        "\n"
        "  verify  DIR [--head SEQ:HEX] [--replay] [--archive DIR] [--config FILE] [--json]\n"
        "          check every checksum, the XXH3 chain and the SHA-256 chain of the log;\n"
        "          print the chain head; with --head prove the log up to SEQ is unchanged;\n"
        "          with --replay also re-apply every record and compare its results\n"
        "  state   DIR [--at SEQ|TIME] [--archive DIR] [--config FILE] [--json]\n"
        "          every counter of every item-location after the last record at or before\n"
        "          the point (default: the end of the log)\n"
        "  history DIR SKU[@LOC] [--from P] [--to P] [--archive DIR] [--config FILE]\n"
        "          [--json]\n"
        "          every movement of the item (at LOC) with its running on-hand balance,\n"
        "          its result, who sent it and when\n"
        "  export  DIR --format csv|jsonl [--from P] [--to P] [--archive DIR]\n"
        "          every event with its result, one line each\n"
        "  channel-view DIR --channel NAME [--at SEQ|TIME] [--item SKU] [--config FILE]\n"
        "          [--archive DIR] [--json]\n"
        "          what the ledger wanted the channel to show for each mapped item at\n"
        "          the point, what the channel had accepted, dirty, parked, exceptions;\n"
        "          with --item that item and every event that produced its state\n"
        "\n"
        "DIR is the server's --data-dir (its log/ directory is read) or the log directory.\n"
        "--archive DIR (every command) reads the segments retention archived there\n"
        "first, then DIR's, as one log. Without it, a log that no longer starts at\n"
        "segment 1 is replayed from the snapshot kept at its start, and verify continues\n"
        "the SHA-256 chain from the head file kept with that snapshot.\n"
        "A point P is an event sequence number (e.g. 1500) or an RFC 3339 UTC time\n"
        "(e.g. 2026-11-26T14:02:00Z, fractions allowed); times are the server's record\n"
        "times. --config is the server's configuration file: a replay needs the server's\n"
        "capacities to give the logged results.\n"
        "\n"
        "Exit status:\n"
        "  0  done: the log checks out as far as it was read (a torn last write is a\n"
        "     warning: it was never acknowledged)\n"
        "  1  fault: the log is corrupt (file and offset named), a --head does not match,\n"
        "     a record does not replay to its logged results, the SKU or channel is not in\n"
        "     the log, or the item is not mapped on the channel at the point\n"
        "  2  usage: bad command line or --config\n"
        "  3  cannot read DIR, or out of memory\n";

double replay_now_s(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int replay_report_end(const struct walk *walk)
{
	if (walk->torn)
		fprintf(stderr, "skuld-replay: warning: %s\n", walk->warning);
	if (walk->exit != REPLAY_EXIT_OK)
		fprintf(stderr, "skuld-replay: %s\n", walk->fault);
	return walk->exit;
}

static int usage_error(const char *message, const char *what)
{
	fprintf(stderr, "skuld-replay: %s%s\n(skuld-replay --help lists the commands)\n", message,
	        what);
	return REPLAY_EXIT_USAGE;
}

/* Options, and the commands that take each. */
enum {
	TAKES_VERIFY = 1 << 0,
	TAKES_STATE = 1 << 1,
	TAKES_HISTORY = 1 << 2,
	TAKES_EXPORT = 1 << 3,
	TAKES_CHANNEL = 1 << 4, /* channel-view */
};

struct option_rule {
	const char *name;
	int flag; /* takes no value */
	int commands;
};

static const struct option_rule option_rules[] = {
        {"--json", 1, TAKES_VERIFY | TAKES_STATE | TAKES_HISTORY | TAKES_CHANNEL},
        {"--replay", 1, TAKES_VERIFY},
        {"--config", 0, TAKES_VERIFY | TAKES_STATE | TAKES_HISTORY | TAKES_CHANNEL},
        {"--archive", 0, TAKES_VERIFY | TAKES_STATE | TAKES_HISTORY | TAKES_EXPORT | TAKES_CHANNEL},
        {"--head", 0, TAKES_VERIFY},
        {"--at", 0, TAKES_STATE | TAKES_CHANNEL},
        {"--channel", 0, TAKES_CHANNEL},
        {"--item", 0, TAKES_CHANNEL},
        {"--from", 0, TAKES_HISTORY | TAKES_EXPORT},
        {"--to", 0, TAKES_HISTORY | TAKES_EXPORT},
        {"--format", 0, TAKES_EXPORT},
};

static int command_bit(const char *command)
{
	if (strcmp(command, "verify") == 0)
		return TAKES_VERIFY;
	if (strcmp(command, "state") == 0)
		return TAKES_STATE;
	if (strcmp(command, "history") == 0)
		return TAKES_HISTORY;
	if (strcmp(command, "export") == 0)
		return TAKES_EXPORT;
	if (strcmp(command, "channel-view") == 0)
		return TAKES_CHANNEL;
	return 0;
}

static int point_set(struct text_point *point, const char *name, const char *value)
{
	if (text_point_parse(value, point) != 0) {
		fprintf(stderr,
		        "skuld-replay: %s wants an event sequence number or an RFC 3339 UTC time "
		        "like 2026-11-26T14:02:00Z, not '%s'\n",
		        name, value);
		return REPLAY_EXIT_USAGE;
	}
	return 0;
}

static int option_set(struct replay_args *args, const char *name, const char *value)
{
	if (strcmp(name, "--json") == 0)
		args->json = true;
	else if (strcmp(name, "--replay") == 0)
		args->replay = true;
	else if (strcmp(name, "--config") == 0)
		args->config = value;
	else if (strcmp(name, "--archive") == 0)
		args->archive = value;
	else if (strcmp(name, "--head") == 0)
		args->head = value;
	else if (strcmp(name, "--format") == 0)
		args->format = value;
	else if (strcmp(name, "--channel") == 0)
		args->channel = value;
	else if (strcmp(name, "--item") == 0)
		args->item = value;
	else if (strcmp(name, "--at") == 0)
		return point_set(&args->at, name, value);
	else if (strcmp(name, "--from") == 0)
		return point_set(&args->from, name, value);
	else if (strcmp(name, "--to") == 0)
		return point_set(&args->to, name, value);
	return 0;
}

static int arguments_parse(struct replay_args *args, int argc, char **argv)
{
	memset(args, 0, sizeof(*args));
	args->command = argv[1];
	int command = command_bit(args->command);
	if (command == 0)
		return usage_error("unknown command ", args->command);
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i];
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			if (args->positional_count == REPLAY_POSITIONAL_MAX)
				return usage_error("too many arguments", "");
			args->positional[args->positional_count++] = arg;
			continue;
		}
		const struct option_rule *rule = NULL;
		for (size_t r = 0; r < sizeof(option_rules) / sizeof(option_rules[0]); r++) {
			if (strcmp(option_rules[r].name, arg) == 0)
				rule = &option_rules[r];
		}
		if (rule == NULL)
			return usage_error("unknown option ", arg);
		if (!(rule->commands & command)) {
			fprintf(stderr, "skuld-replay: %s does not take %s\n", args->command, arg);
			return REPLAY_EXIT_USAGE;
		}
		const char *value = NULL;
		if (!rule->flag) {
			if (i + 1 >= argc)
				return usage_error("a value is missing after ", arg);
			value = argv[++i];
		}
		int ret = option_set(args, arg, value);
		if (ret != 0)
			return ret;
	}
	int wanted = command == TAKES_HISTORY ? 2 : 1;
	if (args->positional_count != wanted) {
		fprintf(stderr, "skuld-replay: %s takes %s\n", args->command,
		        command == TAKES_HISTORY ? "DIR and SKU[@LOC]" : "one DIR");
		return REPLAY_EXIT_USAGE;
	}
	if (command == TAKES_CHANNEL && args->channel == NULL) {
		fprintf(stderr, "skuld-replay: channel-view needs --channel NAME\n");
		return REPLAY_EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return REPLAY_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return REPLAY_EXIT_OK;
	}
	struct replay_args args;
	int status = arguments_parse(&args, argc, argv);
	if (status != 0)
		return status;
	switch (command_bit(args.command)) {
	case TAKES_VERIFY:
		status = replay_verify(&args);
		break;
	case TAKES_STATE:
		status = replay_state(&args);
		break;
	case TAKES_HISTORY:
		status = replay_history(&args);
		break;
	case TAKES_CHANNEL:
		status = replay_channel_view(&args);
		break;
	default:
		status = replay_export(&args);
		break;
	}
	if (fflush(stdout) != 0 && status == REPLAY_EXIT_OK) {
		perror("skuld-replay: stdout");
		status = REPLAY_EXIT_ERROR;
	}
	return status;
}
