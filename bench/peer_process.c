/*
 * peer_process.c — compare's servers as local processes: skuld (the build's
 * binary), redis-server and PostgreSQL 15, each on 127.0.0.1 on a free port
 * in its own temporary directory, and redis-benchmark's PING (bounded by
 * timeout(1): redis-benchmark waits forever for a server that is gone).
 *
 * Every child gets PR_SET_PDEATHSIG, so a server dies with skuld-bench
 * whatever path it takes; peer_process_stop asks it to stop, waits at most
 * 20 s (then SIGKILL), and removes its directory. PostgreSQL refuses to run
 * as root: as root, initdb and postgres run as the postgres user, in a
 * directory chowned to it. Every wait is bounded.
 */
#define _GNU_SOURCE
#include "compare.h"

#include <libpq-fe.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PEER_WAIT_MS      20000u
#define PEER_POSTGRES_BIN "/usr/lib/postgresql/15/bin"

/* The skuld configuration compare uses: up to 100,000 items, holds and
 * keys for a long run. */
static const char *const peer_skuld_config = "items_max = 100000\n"
                                             "locations_max = 16\n"
                                             "stock_max = 1m\n"
                                             "codes_max = 256k\n"
                                             "holds_max = 256k\n"
                                             "closed_holds_max = 256k\n"
                                             "closed_hold_grace_s = 60\n"
                                             "keys_max = 8m\n"
                                             "key_window_s = 2\n"
                                             "connections_max = 1024\n";

static uint64_t peer_now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* A port nobody listens on now (the kernel's choice for port 0). */
static uint16_t peer_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in address = {.sin_family = AF_INET,
	                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t size = sizeof(address);
	uint16_t port = 0;
	if (bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&address, &size) == 0)
		port = ntohs(address.sin_port);
	close(fd);
	return port;
}

static int peer_dir_make(struct peer_process *process, const char *name)
{
	snprintf(process->dir, sizeof(process->dir), "/tmp/skuld-compare-%s-XXXXXX", name);
	if (mkdtemp(process->dir) == NULL) {
		fprintf(stderr, "skuld-bench compare: mkdtemp: %s\n", strerror(errno));
		process->dir[0] = '\0';
		return -1;
	}
	return 0;
}

/* Runs argv in a child: as uid/gid when they are not ours, in dir, output to
 * dir/log. Returns its pid or -1. */
static pid_t peer_spawn(const struct peer_process *process, char *const argv[])
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (process->uid != getuid() && (setgid(process->gid) != 0 || setuid(process->uid) != 0))
		_exit(97);
	/* After setuid, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(99);
	char log[96];
	snprintf(log, sizeof(log), "%s/log", process->dir);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if (chdir(process->dir) != 0)
		_exit(96);
	execvp(argv[0], argv);
	_exit(98);
}

/* Waits (bounded) for a short-lived child; 0 when it exited with 0. */
static int peer_run(const struct peer_process *process, char *const argv[])
{
	pid_t pid = peer_spawn(process, argv);
	if (pid < 0)
		return -1;
	int status = 0;
	uint64_t deadline = peer_now_ms() + 60000u;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (peer_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(20000);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int peer_alive(struct peer_process *process)
{
	int status;
	if (waitpid(process->pid, &status, WNOHANG) == process->pid) {
		process->pid = 0;
		return 0;
	}
	return 1;
}

static int peer_tcp_ready(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in address = {.sin_family = AF_INET,
	                              .sin_port = htons(port),
	                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ready = connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0;
	close(fd);
	return ready;
}

static int peer_remove_entry(const char *path, const struct stat *status, int flag,
                             struct FTW *walk)
{
	(void)status;
	(void)flag;
	(void)walk;
	remove(path);
	return 0;
}

/* Prints the tail of the child's log, stops it and cleans up; -1. */
static int peer_failed(struct peer_process *process, const char *name)
{
	fprintf(stderr, "skuld-bench compare: %s did not start; its log:\n", name);
	char path[96];
	snprintf(path, sizeof(path), "%s/log", process->dir);
	FILE *log = fopen(path, "r");
	if (log != NULL) {
		char line[512];
		while (fgets(line, sizeof(line), log) != NULL)
			fprintf(stderr, "  %s", line);
		fclose(log);
	}
	peer_process_stop(process);
	return -1;
}

int peer_process_skuld(struct peer_process *process, const char *binary)
{
	memset(process, 0, sizeof(*process));
	process->uid = getuid();
	process->gid = getgid();
	if (access(binary, X_OK) != 0) {
		fprintf(stderr, "skuld-bench compare: no skuld at %s (--skuld PATH)\n", binary);
		return -1;
	}
	if (peer_dir_make(process, "skuld") != 0)
		return -1;
	char config[96], data[96], port_file[112];
	snprintf(config, sizeof(config), "%s/skuld.conf", process->dir);
	snprintf(data, sizeof(data), "%s/data", process->dir);
	snprintf(port_file, sizeof(port_file), "%s/port", data);
	FILE *file = fopen(config, "w");
	if (file == NULL || fputs(peer_skuld_config, file) < 0) {
		if (file != NULL)
			fclose(file);
		return peer_failed(process, "skuld");
	}
	fclose(file);
	char *argv[] = {(char *)binary, "--listen", "127.0.0.1:0", "--data-dir",
	                data,           "--config", config,        NULL};
	process->pid = peer_spawn(process, argv);
	if (process->pid < 0)
		return peer_failed(process, "skuld");
	uint64_t deadline = peer_now_ms() + PEER_WAIT_MS;
	while (peer_now_ms() < deadline && peer_alive(process)) {
		unsigned port = 0;
		file = fopen(port_file, "r");
		if (file != NULL) {
			int got = fscanf(file, "%u", &port);
			fclose(file);
			if (got == 1 && port > 0 && port < 65536 &&
			    peer_tcp_ready((uint16_t)port)) {
				process->port = (uint16_t)port;
				return 0;
			}
		}
		usleep(20000);
	}
	return peer_failed(process, "skuld");
}

int peer_process_redis(struct peer_process *process)
{
	memset(process, 0, sizeof(*process));
	process->uid = getuid();
	process->gid = getgid();
	if (peer_dir_make(process, "redis") != 0)
		return -1;
	process->port = peer_free_port();
	char port[8];
	snprintf(port, sizeof(port), "%u", process->port);
	/* AOF on, RDB snapshots off: appendfsync (always or everysec) is set
	 * by each target's connections. */
	char *argv[] = {"redis-server",
	                "--bind",
	                "127.0.0.1",
	                "--port",
	                port,
	                "--dir",
	                process->dir,
	                "--appendonly",
	                "yes",
	                "--appendfsync",
	                "always",
	                "--save",
	                "",
	                "--daemonize",
	                "no",
	                NULL};
	process->pid = peer_spawn(process, argv);
	if (process->pid < 0)
		return peer_failed(process, "redis-server");
	uint64_t deadline = peer_now_ms() + PEER_WAIT_MS;
	while (peer_now_ms() < deadline && peer_alive(process)) {
		if (peer_tcp_ready(process->port))
			return 0;
		usleep(20000);
	}
	return peer_failed(process, "redis-server");
}

int peer_process_postgres(struct peer_process *process)
{
	memset(process, 0, sizeof(*process));
	process->uid = getuid();
	process->gid = getgid();
	process->postgres = 1;
	if (peer_dir_make(process, "postgres") != 0)
		return -1;
	if (getuid() == 0) {
		struct passwd *user = getpwnam("postgres");
		if (user == NULL) {
			fprintf(stderr,
			        "skuld-bench compare: PostgreSQL refuses root and there is no "
			        "postgres user\n");
			return peer_failed(process, "postgres");
		}
		process->uid = user->pw_uid;
		process->gid = user->pw_gid;
		if (chown(process->dir, process->uid, process->gid) != 0)
			return peer_failed(process, "postgres");
	}
	char data[96];
	snprintf(data, sizeof(data), "%s/data", process->dir);
	char *initdb[] = {PEER_POSTGRES_BIN "/initdb",
	                  "-D",
	                  data,
	                  "-U",
	                  "postgres",
	                  "--auth=trust",
	                  "-E",
	                  "UTF8",
	                  "--no-sync",
	                  NULL};
	if (peer_run(process, initdb) != 0)
		return peer_failed(process, "initdb");
	process->port = peer_free_port();
	char port[8];
	snprintf(port, sizeof(port), "%u", process->port);
	/* fsync on (the default), full_page_writes on; synchronous_commit is
	 * set by each target's connections. */
	char *argv[] = {PEER_POSTGRES_BIN "/postgres",
	                "-D",
	                data,
	                "-p",
	                port,
	                "-k",
	                process->dir,
	                "-c",
	                "listen_addresses=127.0.0.1",
	                "-c",
	                "fsync=on",
	                "-c",
	                "max_connections=300",
	                NULL};
	process->pid = peer_spawn(process, argv);
	if (process->pid < 0)
		return peer_failed(process, "postgres");
	char info[128];
	snprintf(info, sizeof(info),
	         "host=127.0.0.1 port=%u user=postgres dbname=postgres connect_timeout=2",
	         process->port);
	uint64_t deadline = peer_now_ms() + PEER_WAIT_MS;
	while (peer_now_ms() < deadline && peer_alive(process)) {
		if (PQping(info) == PQPING_OK)
			return 0;
		usleep(50000);
	}
	return peer_failed(process, "postgres");
}

void peer_process_stop(struct peer_process *process)
{
	if (process->pid > 0) {
		/* postgres: SIGINT is the fast shutdown; skuld and redis stop on SIGTERM. */
		kill(process->pid, process->postgres ? SIGINT : SIGTERM);
		uint64_t deadline = peer_now_ms() + PEER_WAIT_MS;
		int status;
		while (waitpid(process->pid, &status, WNOHANG) == 0) {
			if (peer_now_ms() > deadline) {
				kill(process->pid, SIGKILL);
				waitpid(process->pid, &status, 0);
				break;
			}
			usleep(20000);
		}
		process->pid = 0;
	}
	if (process->dir[0] != '\0') {
		nftw(process->dir, peer_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		process->dir[0] = '\0';
	}
}

/* Whether program is on PATH (or, with a slash, exists). */
static int peer_program_found(const char *program)
{
	if (strchr(program, '/') != NULL)
		return access(program, X_OK) == 0;
	const char *path = getenv("PATH");
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path != '\0') {
		size_t length = strcspn(path, ":");
		char candidate[512];
		snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)length, path, program);
		if (length > 0 && access(candidate, X_OK) == 0)
			return 1;
		path += length;
		if (*path == ':')
			path++;
	}
	return 0;
}

int peer_program_ensure(const char *program, const char *package)
{
	if (peer_program_found(program))
		return 0;
	if (geteuid() != 0) {
		fprintf(stderr,
		        "skuld-bench compare: %s is missing; skipping its targets (as root: "
		        "apt-get install -y %s)\n",
		        program, package);
		return -1;
	}
	fprintf(stderr, "skuld-bench compare: %s is missing; installing %s with apt-get\n", program,
	        package);
	char command[256];
	snprintf(command, sizeof(command),
	         "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
	         "%s >&2 || (apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get "
	         "install -y -qq --no-install-recommends %s >&2)",
	         package, package);
	if (system(command) != 0 || !peer_program_found(program)) {
		fprintf(stderr, "skuld-bench compare: installing %s failed; skipping its targets\n",
		        package);
		return -1;
	}
	return 0;
}

int peer_ping_baseline(uint16_t port, uint32_t connections, uint32_t requests, double *per_s,
                       double *p50_us, double *p99_us)
{
	char command[256];
	snprintf(command, sizeof(command),
	         "timeout 120 redis-benchmark -h 127.0.0.1 -p %u -t ping -c %u -n %u --csv "
	         "2>/dev/null",
	         port, connections, requests);
	FILE *pipe = popen(command, "r");
	if (pipe == NULL)
		return -1;
	char line[512];
	int found = 0;
	while (fgets(line, sizeof(line), pipe) != NULL) {
		/* "PING_MBULK","rps","avg_ms","min_ms","p50_ms","p95_ms","p99_ms","max_ms" */
		double rps, average, low, p50, p95, p99;
		if (sscanf(line, "\"PING_MBULK\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\"",
		           &rps, &average, &low, &p50, &p95, &p99) == 6) {
			*per_s = rps;
			*p50_us = p50 * 1000.0;
			*p99_us = p99 * 1000.0;
			found = 1;
		}
	}
	int status = pclose(pipe);
	return found && status == 0 ? 0 : -1;
}
