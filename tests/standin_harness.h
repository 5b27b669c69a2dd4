/*
 * standin_harness.h — starts a channel stand-in (tests/standins/) on a
 * free port for a C test, and speaks its control API.
 *
 * The stand-in runs under SKULD_PYTHON3 (Debian's python3, which has
 * python3-graphql-core), writes its port to a file in a temporary
 * directory, and dies with the test (PR_SET_PDEATHSIG).
 */
#ifndef SKULD_TESTS_STANDIN_HARNESS_H
#define SKULD_TESTS_STANDIN_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#define STANDIN static __attribute__((unused))

struct standin {
	pid_t pid;
	unsigned port;
	char dir[64];
	char base[64]; /* http://127.0.0.1:PORT */
};

STANDIN void standin_start(struct standin *standin, const char *script, const char *seed_json)
{
	memset(standin, 0, sizeof(*standin));
	snprintf(standin->dir, sizeof(standin->dir), "/tmp/skuld-standin-XXXXXX");
	cr_assert_not_null(mkdtemp(standin->dir));
	char seed[128], port_file[128], path[512];
	snprintf(seed, sizeof(seed), "%s/seed.json", standin->dir);
	snprintf(port_file, sizeof(port_file), "%s/port", standin->dir);
	snprintf(path, sizeof(path), "%s/../standins/%s", SKULD_TEST_DATA, script);
	FILE *file = fopen(seed, "w");
	cr_assert_not_null(file);
	fputs(seed_json, file);
	fclose(file);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		execl(SKULD_PYTHON3, "python3", "-B", path, "--port-file", port_file, "--seed",
		      seed, (char *)NULL);
		_exit(98);
	}
	standin->pid = pid;
	for (int i = 0; i < 200 && standin->port == 0; i++) { /* 20 s at most */
		FILE *port = fopen(port_file, "r");
		if (port != NULL) {
			if (fscanf(port, "%u", &standin->port) != 1)
				standin->port = 0;
			fclose(port);
		}
		if (standin->port == 0)
			nanosleep(&(struct timespec){0, 100000000}, NULL);
	}
	cr_assert_neq(standin->port, 0, "the stand-in %s did not start", script);
	snprintf(standin->base, sizeof(standin->base), "http://127.0.0.1:%u", standin->port);
}

STANDIN void standin_stop(struct standin *standin)
{
	if (standin->pid > 0) {
		kill(standin->pid, SIGTERM);
		waitpid(standin->pid, NULL, 0);
	}
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", standin->dir);
	cr_assert_eq(system(command), 0);
}

/* POSTs json to /_control/what; asserts a 200. */
STANDIN void standin_control(struct standin *standin, struct http_client *client, const char *what,
                             const char *json)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/%s", standin->base, what);
	struct http_request request = {
	        .method = "POST",
	        .url = url,
	        .headers = {"Content-Type: application/json"},
	        .body = json,
	        .body_size = strlen(json),
	        .timeout_ms = 10000,
	};
	struct http_response response;
	cr_assert_eq(http_call(client, &request, &response), 0, "control %s: %s", what,
	             response.error);
	cr_assert_eq(response.status, 200, "control %s: %ld %s", what, response.status,
	             response.body);
}

#endif /* SKULD_TESTS_STANDIN_HARNESS_H */
