/*
 * command_harness.h — runs one of the project's binaries (skuld-replay,
 * skuldctl) as a bounded child for the tests that check its output: stdout
 * and stderr go to files in the test's directory and are read back whole.
 *
 * Every child is bounded: it gets PR_SET_PDEATHSIG (it dies with the test
 * process) and is killed, failing the test, after its time-out. Leak checks
 * stay on in sanitizer builds (ASAN_OPTIONS=detect_leaks=1); the caller names
 * the environment variables the child must not inherit, so a developer's
 * own SKULD_SERVER or SKULD_TOKEN cannot change what a test sees.
 */
#ifndef SKULD_TESTS_COMMAND_HARNESS_H
#define SKULD_TESTS_COMMAND_HARNESS_H

#include "server_harness.h"

#define COMMAND_OUTPUT_MAX (1u << 20)
#define COMMAND_ARGS_MAX   80

struct command_run {
	int status; /* exit status, or -signal */
	char out[COMMAND_OUTPUT_MAX];
	char err[COMMAND_OUTPUT_MAX];
};

/* The whole file, NUL-terminated and cut at size - 1; empty if unreadable. */
HARNESS void command_read_file(const char *path, char *buffer, size_t size)
{
	buffer[0] = '\0';
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return;
	size_t got = fread(buffer, 1, size - 1, file);
	buffer[got] = '\0';
	fclose(file);
}

/* Runs binary with argv (argv[0] its name, NULL-terminated) into run, with
 * the output files in dir and the variables in unset (NULL-terminated, may
 * be NULL) removed from its environment. */
HARNESS struct command_run *command_run(struct command_run *run, const char *binary,
                                        const char *const *argv, const char *dir,
                                        unsigned timeout_s, const char *const *unset)
{
	char out_path[256], err_path[256];
	snprintf(out_path, sizeof(out_path), "%s/%s.out", dir, argv[0]);
	snprintf(err_path, sizeof(err_path), "%s/%s.err", dir, argv[0]);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (out < 0 || err < 0)
			_exit(97);
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		setenv("ASAN_OPTIONS", "detect_leaks=1", 1);
		for (int i = 0; unset != NULL && unset[i] != NULL; i++)
			unsetenv(unset[i]);
		execv(binary, (char *const *)argv);
		_exit(98);
	}
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_s * 1000;
	int status = 0;
	for (;;) {
		pid_t done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			break;
		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("%s did not finish in %u s", argv[0], timeout_s);
		}
		usleep(2000);
	}
	run->status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
	command_read_file(out_path, run->out, sizeof(run->out));
	command_read_file(err_path, run->err, sizeof(run->err));
	return run;
}

#endif
