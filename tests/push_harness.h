/*
 * push_harness.h — what the skuld-push end-to-end tests share: starting and
 * stopping a real skuld-push on a configuration file, reading a stand-in's
 * control API as JSON, and a channel's push record from skuld.
 *
 * A worker dies with the test (PR_SET_PDEATHSIG); push_worker_stop with
 * SIGTERM asserts that it exited 0 (CHANNELS.md, "Exit status").
 */
#ifndef SKULD_TESTS_PUSH_HARNESS_H
#define SKULD_TESTS_PUSH_HARNESS_H

#include <jansson.h>

#include "server_harness.h"
#include "standin_harness.h"

#define PUSH_HARNESS static __attribute__((unused))

struct push_worker {
	pid_t pid;        /* 0: not running */
	char config[160]; /* the configuration file the worker is started with */
};

PUSH_HARNESS void push_worker_start(struct push_worker *worker)
{
	cr_assert_eq(worker->pid, 0, "the worker runs already");
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		execl(SKULD_BINARY_DIR "/channels/skuld-push", "skuld-push", "--config",
		      worker->config, (char *)NULL);
		_exit(98);
	}
	worker->pid = pid;
}

/* Sends signal_number and reaps the worker; after SIGTERM it must exit 0. */
PUSH_HARNESS void push_worker_stop(struct push_worker *worker, int signal_number)
{
	if (worker->pid <= 0)
		return;
	kill(worker->pid, signal_number);
	int status = 0;
	waitpid(worker->pid, &status, 0);
	if (signal_number == SIGTERM)
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "skuld-push status %d",
		          status);
	worker->pid = 0;
}

/* GET /_control/what of the stand-in, as JSON (the caller decrefs). */
PUSH_HARNESS json_t *standin_get_json(struct standin *standin, struct http_client *client,
                                      const char *what)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/%s", standin->base, what);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(client, &request, &response), 0);
	cr_assert_eq(response.status, 200);
	json_t *value = json_loadb(response.body, response.body_size, 0, NULL);
	cr_assert_not_null(value);
	return value;
}

/* The stand-in's request log after sequence `since`, as a JSON array (the
 * caller decrefs). */
PUSH_HARNESS json_t *standin_log_json(struct standin *standin, struct http_client *client,
                                      uint64_t since)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/_control/log?since=%llu", standin->base,
	         (unsigned long long)since);
	struct http_request request = {.method = "GET", .url = url, .timeout_ms = 5000};
	struct http_response response;
	cr_assert_eq(http_call(client, &request, &response), 0);
	cr_assert_eq(response.status, 200);
	json_t *entries = json_array();
	const char *line = response.body;
	const char *end_of_body = response.body + response.body_size;
	while (line < end_of_body) {
		const char *end = memchr(line, '\n', (size_t)(end_of_body - line));
		size_t length = end != NULL ? (size_t)(end - line) : (size_t)(end_of_body - line);
		json_t *entry = json_loadb(line, length, 0, NULL);
		if (entry != NULL)
			json_array_append_new(entries, entry);
		line += length + 1;
	}
	return entries;
}

/* The CHANNEL_PUSH record of channel (dirty, parked, acknowledgements). */
PUSH_HARNESS struct skuld_channel_push_record channel_push_of(struct client *client,
                                                              uint32_t channel)
{
	struct skuld_query query = {.kind = SKULD_QUERY_CHANNEL_PUSH, .channel = channel};
	struct skuld_channel_push_record record;
	cr_assert_eq(client_query(client, &query, &record, 1), 1);
	return record;
}

#endif /* SKULD_TESTS_PUSH_HARNESS_H */
