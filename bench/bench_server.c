/*
 * bench_server.c — the free-space check before a run, and the skuld that
 * skuld-bench starts itself with --start-server.
 *
 * --start-server makes a directory DIR/skuld-bench-XXXXXX (DIR from
 * --data-dir, else $TMPDIR, else /tmp) holding skuld.conf, server.log and
 * the data directory data/, after checking that DIR's file system has at
 * least --disk-min-mb MiB free. The configuration is bench_server_config
 * below, then fsync_delay_us, then the lines of --server-config (a key given
 * twice takes its last value). skuld listens on 127.0.0.1 port 0 and writes
 * the port it got to data/port, which is read here (bounded wait). At the
 * end skuld is stopped with SIGTERM (it drains and exits; SIGKILL after
 * 20 s) and the directory is removed, unless --keep, when its path is
 * printed. The child has PR_SET_PDEATHSIG: it never outlives skuld-bench.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_SERVER_WAIT_NS (60ull * 1000000000ull) /* start-up, and stop, at most */

/* Capacities for every scenario's default catalog (uniform and zipf: 10,000
 * items x 100 locations = 1M item-locations), the --pool channel, and keys
 * for a long run at full speed (a 2 s window). */
static const char *const bench_server_config = "items_max = 100000\n"
                                               "codes_max = 128k\n"
                                               "locations_max = 1000\n"
                                               "stock_max = 1100k\n"
                                               "channels_max = 16\n"
                                               "pool_locations_max = 1000\n"
                                               "listings_max = 100000\n"
                                               "holds_max = 256k\n"
                                               "closed_holds_max = 256k\n"
                                               "closed_hold_grace_s = 60\n"
                                               "keys_max = 8m\n"
                                               "key_window_s = 2\n"
                                               "connections_max = 1024\n"
                                               "frame_events_max = 8192\n";

int64_t bench_disk_free_mb(const char *path)
{
	struct statvfs status;
	if (statvfs(path, &status) != 0)
		return -1;
	return (int64_t)((uint64_t)status.f_bavail * status.f_frsize / (1024u * 1024u));
}

int bench_disk_check(const struct bench_options *options, int64_t free_mb, const char *what)
{
	if (free_mb >= (int64_t)options->disk_min_mb)
		return 0;
	fprintf(stderr,
	        "skuld-bench: only %lld MiB free on the file system of %s; a run needs at "
	        "least %u MiB (--disk-min-mb): not running\n",
	        (long long)free_mb, what, options->disk_min_mb);
	return -1;
}

const char *bench_skuld_binary_default(char *path, size_t size)
{
	char self[4096];
	ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (length <= 0)
		return "skuld";
	self[length] = '\0';
	char *slash = strrchr(self, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(path, size, "%.4000s/../server/skuld", self);
	return path;
}

static int config_write(const struct bench_options *options, const char *path)
{
	FILE *file = fopen(path, "w");
	if (file == NULL)
		return -1;
	int failed = fputs(bench_server_config, file) < 0;
	failed |= fprintf(file, "fsync_delay_us = %u\n", options->fsync_delay_us) < 0;
	if (options->server_config != NULL) {
		FILE *extra = fopen(options->server_config, "r");
		char line[1024];
		if (extra == NULL) {
			fprintf(stderr, "skuld-bench: %s: %s\n", options->server_config,
			        strerror(errno));
			failed = 1;
		}
		while (extra != NULL && fgets(line, sizeof(line), extra) != NULL)
			failed |= fputs(line, file) < 0;
		failed |= fputs("\n", file) < 0;
		if (extra != NULL)
			fclose(extra);
	}
	failed |= fclose(file) != 0;
	return failed ? -1 : 0;
}

static pid_t server_spawn(const char *binary, const char *dir)
{
	char config[4200], data[4200], log[4200];
	snprintf(config, sizeof(config), "%s/skuld.conf", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(99);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	execl(binary, binary, "--listen", "127.0.0.1:0", "--data-dir", data, "--config", config,
	      (char *)NULL);
	fprintf(stderr, "skuld-bench: exec %s: %s\n", binary, strerror(errno));
	_exit(98);
}

/* Prints the server's log to stderr. */
static void server_log_print(const struct bench_server *server)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/server.log", server->dir);
	FILE *log = fopen(path, "r");
	char line[512];
	while (log != NULL && fgets(line, sizeof(line), log) != NULL)
		fprintf(stderr, "  %s", line);
	if (log != NULL)
		fclose(log);
}

/* Waits (bounded) for data/port; 0 once skuld listens. */
static int server_wait(struct bench_server *server)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/data/port", server->dir);
	uint64_t deadline = bench_now_ns() + BENCH_SERVER_WAIT_NS;
	while (bench_now_ns() < deadline) {
		int status;
		if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
			server->pid = 0;
			return -1;
		}
		FILE *file = fopen(path, "r");
		unsigned port = 0;
		if (file != NULL) {
			int got = fscanf(file, "%u", &port);
			fclose(file);
			if (got == 1 && port > 0 && port < 65536) {
				snprintf(server->address, sizeof(server->address), "127.0.0.1:%u",
				         port);
				return 0;
			}
		}
		usleep(20000);
	}
	return -1;
}

int bench_server_start(struct bench *bench)
{
	struct bench_options *options = &bench->options;
	struct bench_server *server = &bench->server;
	const char *parent = options->data_parent;
	if (parent == NULL)
		parent = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	int64_t free_mb = bench_disk_free_mb(parent);
	if (free_mb < 0) {
		fprintf(stderr, "skuld-bench: %s: %s\n", parent, strerror(errno));
		return -1;
	}
	if (bench_disk_check(options, free_mb, parent) != 0)
		return -1;
	char binary_default[4200];
	const char *binary =
	        options->skuld_binary != NULL
	                ? options->skuld_binary
	                : bench_skuld_binary_default(binary_default, sizeof(binary_default));
	if (access(binary, X_OK) != 0) {
		fprintf(stderr, "skuld-bench: no skuld at %s (--skuld PATH)\n", binary);
		return -1;
	}
	snprintf(server->dir, sizeof(server->dir), "%.4000s/skuld-bench-XXXXXX", parent);
	if (mkdtemp(server->dir) == NULL) {
		fprintf(stderr, "skuld-bench: mkdtemp in %s: %s\n", parent, strerror(errno));
		server->dir[0] = '\0';
		return -1;
	}
	char config[4200];
	snprintf(config, sizeof(config), "%s/skuld.conf", server->dir);
	if (config_write(options, config) != 0) {
		fprintf(stderr, "skuld-bench: cannot write %s\n", config);
		return -1;
	}
	server->pid = server_spawn(binary, server->dir);
	if (server->pid < 0 || server_wait(server) != 0) {
		fprintf(stderr, "skuld-bench: skuld did not start; its log:\n");
		server_log_print(server);
		return -1;
	}
	options->server = server->address;
	options->server_pid = server->pid;
	options->setup = 1;
	return 0;
}

static int remove_entry(const char *path, const struct stat *status, int flag, struct FTW *walk)
{
	(void)status;
	(void)flag;
	(void)walk;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void bench_server_stop(struct bench *bench)
{
	struct bench_server *server = &bench->server;
	if (server->pid > 0) {
		kill(server->pid, SIGTERM);
		uint64_t deadline = bench_now_ns() + BENCH_SERVER_WAIT_NS / 3;
		int status;
		while (waitpid(server->pid, &status, WNOHANG) == 0) {
			if (bench_now_ns() > deadline) {
				kill(server->pid, SIGKILL);
				waitpid(server->pid, &status, 0);
				break;
			}
			usleep(20000);
		}
		server->pid = 0;
	}
	if (server->dir[0] == '\0')
		return;
	if (bench->options.keep)
		fprintf(stderr, "skuld-bench: kept %s (--keep)\n", server->dir);
	else if (nftw(server->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "skuld-bench: could not remove all of %s: %s\n", server->dir,
		        strerror(errno));
	server->dir[0] = '\0';
}
