/*
 * gateway_harness.h — runs the real skuld-gateway for an end-to-end test:
 * started with a configuration file (its stderr to a log file), its port
 * read from the line it prints, stopped by a signal, and the figures it
 * prints on exit read back from the log.
 *
 * The gateway dies with the test (PR_SET_PDEATHSIG); every wait is bounded.
 */
#ifndef SKULD_TESTS_GATEWAY_HARNESS_H
#define SKULD_TESTS_GATEWAY_HARNESS_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server_harness.h"

#define GATEWAY_HARNESS static __attribute__((unused))

struct gateway_process {
	pid_t pid;
	unsigned port;
	char config[160]; /* the configuration file, written by the test */
	char log[160];    /* its stderr */
};

/* Submits one event as the test's admin; asserts it is applied. */
GATEWAY_HARNESS void admin_submit_ok(struct client *admin, struct skuld_event event)
{
	struct skuld_result result;
	cr_assert_eq(client_submit(admin, &event, 1, &result, NULL), 0);
	cr_assert_eq(result.status, SKULD_OK, "%s", skuld_status_name(result.status));
}

/* Defines an item or location event under code, as the test's admin. */
GATEWAY_HARNESS void admin_define_code(struct client *admin, struct skuld_event event,
                                       const char *code)
{
	memset(event.code, 0, sizeof(event.code));
	snprintf(event.code, sizeof(event.code), "%s", code);
	admin_submit_ok(admin, event);
}

GATEWAY_HARNESS void sleep_ms(unsigned ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

GATEWAY_HARNESS uint64_t gateway_harness_now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Starts skuld-gateway --config process->config; asserts it listens. */
GATEWAY_HARNESS void gateway_process_start(struct gateway_process *process)
{
	int out[2];
	cr_assert_eq(pipe(out), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		dup2(out[1], STDOUT_FILENO);
		int log = open(process->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (log >= 0)
			dup2(log, STDERR_FILENO);
		close(out[0]);
		close(out[1]);
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		execl(SKULD_BINARY_DIR "/channels/skuld-gateway", "skuld-gateway", "--config",
		      process->config, (char *)NULL);
		_exit(98);
	}
	close(out[1]);
	process->pid = pid;
	char line[256] = "";
	size_t have = 0;
	uint64_t deadline = gateway_harness_now_ms() + 20000;
	while (have < sizeof(line) - 1 && memchr(line, '\n', have) == NULL &&
	       gateway_harness_now_ms() < deadline) {
		struct pollfd poll_fd = {.fd = out[0], .events = POLLIN};
		if (poll(&poll_fd, 1, 1000) <= 0)
			continue;
		ssize_t got = read(out[0], line + have, sizeof(line) - 1 - have);
		if (got <= 0)
			break;
		have += (size_t)got;
		line[have] = '\0';
	}
	close(out[0]);
	char *at = strstr(line, "listening on 127.0.0.1:");
	cr_assert_not_null(at, "skuld-gateway did not start: '%s' (log %s)", line, process->log);
	cr_assert_eq(sscanf(at, "listening on 127.0.0.1:%u", &process->port), 1);
}

/* Stops it; SIGTERM asserts a clean exit (its figures are then in the log). */
GATEWAY_HARNESS void gateway_process_stop(struct gateway_process *process, int signal_number)
{
	if (process->pid <= 0)
		return;
	kill(process->pid, signal_number);
	int status = 0;
	waitpid(process->pid, &status, 0);
	process->pid = 0;
	if (signal_number == SIGTERM)
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

/* The figure next to label in the log's exit lines: the number after it
 * ("already applied 12"), else the one before it ("3 unverified"). */
GATEWAY_HARNESS long gateway_process_figure(const struct gateway_process *process,
                                            const char *label)
{
	FILE *file = fopen(process->log, "r");
	cr_assert_not_null(file);
	static char text[65536];
	size_t size = fread(text, 1, sizeof(text) - 1, file);
	fclose(file);
	text[size] = '\0';
	char *at = strstr(text, label);
	cr_assert_not_null(at, "no '%s' in the gateway's output: %s", label, text);
	char *after = at + strlen(label);
	while (*after == ' ')
		after++;
	if (*after >= '0' && *after <= '9')
		return strtol(after, NULL, 10);
	while (at > text && at[-1] == ' ')
		at--;
	while (at > text && at[-1] >= '0' && at[-1] <= '9')
		at--;
	return strtol(at, NULL, 10);
}

#endif /* SKULD_TESTS_GATEWAY_HARNESS_H */
