/*
 * main.c — the skuld daemon: arguments, the data directory, recovery, the
 * listening socket, then the event loop.
 *
 *   skuld [--listen 127.0.0.1:7878] [--data-dir ./skuld-data] [--config FILE]
 *
 * Settings come from the defaults, then the config file, then the command
 * line. On start-up the newest usable snapshot in DATA_DIR/snapshots is
 * loaded and the log in DATA_DIR/log replayed after it (recovery.c; the
 * whole log when there is none); snapshots are then taken in the background
 * and at a clean stop (snapshot.c). Then one line "skuld: listening on
 * HOST:PORT" goes to stdout (also for port 0, with the port the kernel
 * chose) and the port is written to DATA_DIR/port. Everything else goes to
 * stderr. Before recovery the storage seam is chosen (storage.h: the
 * kernel, or in test builds the test table when a TEST-ONLY switch is set);
 * every disk call of the log goes through it.
 *
 * Exit status (docs/OPERATIONS.md): 0 after SIGINT / SIGTERM with every
 * applied request durable; 1 bad arguments or configuration; 2 the log is
 * corrupt or does not replay; 3 a log write or fdatasync failed while
 * serving; 4 any other start-up failure (data directory, lock, socket,
 * memory, io_uring).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "recovery.h"
#include "service.h"
#include "snapshot.h"
#include "storage.h"

enum exit_status {
	EXIT_CLEAN = 0,
	EXIT_USAGE = 1,
	EXIT_RECOVERY = 2,
	EXIT_DISK = 3,
	EXIT_STARTUP = 4,
};

static void usage(FILE *out)
{
	fprintf(out, "usage: skuld [--listen HOST:PORT] [--data-dir DIR] [--config FILE]\n"
	             "  --listen    address to serve (default 127.0.0.1:7878; port 0: any)\n"
	             "  --data-dir  where the log lives (default ./skuld-data)\n"
	             "  --config    a 'key = value' file (docs/OPERATIONS.md)\n"
	             "  --recover-to-damage\n"
	             "              when the log is corrupt, move the damaged write and\n"
	             "              everything after it aside and start from what is\n"
	             "              intact (OPERATIONS.md, \"Recovering up to damage\")\n");
}

/* Defaults, then --config, then the other options. Returns 0 or an exit
 * status. */
static int arguments_parse(int argc, char **argv, struct server_config *config)
{
	char error[CONFIG_ERROR_SIZE];
	config_defaults(config);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			exit(EXIT_CLEAN);
		}
		if (strcmp(argv[i], "--recover-to-damage") == 0) {
			config->recover_to_damage = 1;
			continue;
		}
		if (i + 1 >= argc || strncmp(argv[i], "--", 2) != 0) {
			usage(stderr);
			return EXIT_USAGE;
		}
		if (strcmp(argv[i], "--config") == 0 &&
		    config_load(config, argv[i + 1], error, sizeof(error)) != 0) {
			fprintf(stderr, "skuld: config: %s\n", error);
			return EXIT_USAGE;
		}
		i++;
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--recover-to-damage") == 0) {
			i--; /* a flag: no value follows it */
			continue;
		}
		const char *key = NULL;
		if (strcmp(argv[i], "--listen") == 0)
			key = "listen";
		else if (strcmp(argv[i], "--data-dir") == 0)
			key = "data_dir";
		else if (strcmp(argv[i], "--config") == 0)
			continue;
		if (key == NULL) {
			fprintf(stderr, "skuld: unknown option %s\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
		if (config_set(config, key, argv[i + 1], error, sizeof(error)) != 0) {
			fprintf(stderr, "skuld: %s\n", error);
			return EXIT_USAGE;
		}
	}
	if (config_finish(config, error, sizeof(error)) != 0) {
		fprintf(stderr, "skuld: config: %s\n", error);
		return EXIT_USAGE;
	}
	return 0;
}

static int directory_make(const char *path)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

/* Creates DATA_DIR and DATA_DIR/log, and takes DATA_DIR/lock so that two
 * servers never write one log. Returns the lock's fd or -errno. */
static int data_dir_prepare(const struct server_config *config, char *log_dir, size_t size)
{
	snprintf(log_dir, size, "%s/log", config->data_dir);
	int ret = directory_make(config->data_dir);
	if (ret == 0)
		ret = directory_make(log_dir);
	if (ret != 0) {
		fprintf(stderr, "skuld: cannot create %s: %s\n", log_dir, strerror(-ret));
		return ret;
	}
	char path[CONFIG_PATH_SIZE + 16];
	snprintf(path, sizeof(path), "%s/lock", config->data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ret = -errno;
		fprintf(stderr, "skuld: %s: %s (is another skuld using this data directory?)\n",
		        path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

static int listen_open(const struct server_config *config, uint16_t *port)
{
	struct sockaddr_in address;
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_port = htons(config->listen_port);
	if (inet_pton(AF_INET, config->listen_host, &address.sin_addr) != 1) {
		fprintf(stderr, "skuld: --listen: '%s' is not an IPv4 address\n",
		        config->listen_host);
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	socklen_t length = sizeof(address);
	if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(fd, 1024) != 0 ||
	    getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
		int ret = -errno;
		fprintf(stderr, "skuld: listen on %s:%u: %s\n", config->listen_host,
		        config->listen_port, strerror(errno));
		close(fd);
		return ret;
	}
	*port = ntohs(address.sin_port);
	return fd;
}

static void port_file_write(const struct server_config *config, uint16_t port)
{
	char path[CONFIG_PATH_SIZE + 16];
	snprintf(path, sizeof(path), "%s/port", config->data_dir);
	FILE *file = fopen(path, "w");
	if (file == NULL)
		return;
	fprintf(file, "%u\n", port);
	fclose(file);
}

static uint64_t realtime_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* --recover-to-damage: the operator chose to start from the intact part of
 * a corrupt log. Moves the damage aside (recovery_salvage) and recovers
 * again into a fresh service. Returns what that recovery returns. */
static int recover_to_damage(const struct server_config *config, const char *log_dir,
                             const char *snapshot_dir, struct service *service,
                             struct recovery_summary *summary, char *message, size_t message_size)
{
	fprintf(stderr, "skuld: recovery found damage: %s\n", message);
	char aside[CONFIG_PATH_SIZE + 48];
	snprintf(aside, sizeof(aside), "%s/damaged-%llu", config->data_dir,
	         (unsigned long long)(realtime_ns() / 1000000000ull));
	struct log_outcome damage = summary->damage;
	message[0] = '\0';
	int ret = recovery_salvage(log_dir, aside, &damage, message, message_size);
	if (ret != 0)
		return ret;
	fprintf(stderr,
	        "skuld: --recover-to-damage: segment %llu from offset %llu on, and every later "
	        "segment, moved aside to %s; events there are lost to the ledger\n",
	        (unsigned long long)damage.segment, (unsigned long long)damage.offset, aside);
	ret = service_reset(service);
	if (ret != 0) {
		snprintf(message, message_size, "resetting the service: %s", strerror(-ret));
		return ret;
	}
	return recovery_run_snapshots(service, log_dir, snapshot_dir, summary, message,
	                              message_size);
}

/* Loads the newest usable snapshot of snapshot_dir, replays the log after
 * it and opens the writer; *event_next is what the snapshot covered (1 for
 * none). Returns 0 or an exit status. */
static int state_recover(const struct server_config *config, const char *log_dir,
                         const char *snapshot_dir, struct service **service,
                         struct log_writer **writer, uint64_t *event_next)
{
	struct service_config service_config = config_service(config, log_dir);
	int ret = service_create(&service_config, service);
	if (ret != 0) {
		fprintf(stderr, "skuld: cannot allocate the ledger: %s\n", strerror(-ret));
		return EXIT_STARTUP;
	}
	struct recovery_summary summary;
	char message[1024];
	uint64_t started = realtime_ns();
	ret = recovery_run_snapshots(*service, log_dir, snapshot_dir, &summary, message,
	                             sizeof(message));
	if (ret == -EBADMSG && summary.damaged && config->recover_to_damage)
		ret = recover_to_damage(config, log_dir, snapshot_dir, *service, &summary, message,
		                        sizeof(message));
	if (ret != 0) {
		fprintf(stderr, "skuld: recovery failed: %s\n", message);
		return ret == -EBADMSG ? EXIT_RECOVERY : EXIT_STARTUP;
	}
	if (summary.snapshot != 0)
		fprintf(stderr,
		        "skuld: recovered from snapshot of events 1..%llu in %s, then %llu "
		        "records, %llu events from %s in %.3f s\n",
		        (unsigned long long)summary.snapshot, snapshot_dir,
		        (unsigned long long)summary.records, (unsigned long long)summary.events,
		        log_dir, (double)(realtime_ns() - started) / 1e9);
	else
		fprintf(stderr, "skuld: recovered %llu records, %llu events from %s in %.3f s\n",
		        (unsigned long long)summary.records, (unsigned long long)summary.events,
		        log_dir, (double)(realtime_ns() - started) / 1e9);
	*event_next = summary.snapshot_event_next;
	struct log_writer_config writer_config = {
	        .dir = log_dir,
	        .segment_size = config->segment_bytes,
	        .write_size_max = config->write_bytes,
	        .log_id = summary.position.log_id,
	        .os = storage_os(),
	};
	if (summary.position.segment == 0 &&
	    getrandom(&writer_config.log_id, sizeof(writer_config.log_id), 0) !=
	            sizeof(writer_config.log_id)) {
		fprintf(stderr, "skuld: getrandom: %s\n", strerror(errno));
		return EXIT_STARTUP;
	}
	if (skuld_u128_is_zero(writer_config.log_id))
		writer_config.log_id.lo = 1;
	ret = log_writer_init(writer, &writer_config, &summary.position);
	if (ret != 0) {
		fprintf(stderr, "skuld: cannot open the log writer in %s: %s\n", log_dir,
		        strerror(-ret));
		return EXIT_STARTUP;
	}
	service_start(*service, *writer, &summary.position, realtime_ns());
	return 0;
}

/* tls = on | required: loads the certificate and key (a bad one is a
 * configuration error, exit 1) and says how connections are served. */
static int tls_setup(const struct server_config *config, struct tls_context **tls)
{
	*tls = NULL;
	if (config->tls == CONFIG_TLS_OFF) {
		if (config_has_tokens(config) && strncmp(config->listen_host, "127.", 4) != 0)
			fprintf(stderr, "skuld: tls = off: tokens cross the network in clear text "
			                "(docs/OPERATIONS.md, TLS)\n");
		return 0;
	}
	struct tls_settings settings = {
	        .cert_file = config->tls_cert,
	        .key_file = config->tls_key,
	        .client_ca_file = config->tls_client_ca[0] != '\0' ? config->tls_client_ca : NULL,
	};
	char error[CONFIG_ERROR_SIZE];
	if (tls_context_create(tls, &settings, error, sizeof(error)) != 0) {
		fprintf(stderr, "skuld: config: tls: %s\n", error);
		return EXIT_USAGE;
	}
	fprintf(stderr, "skuld: tls = %s: TLS 1.2 or 1.3 with %s%s%s\n",
	        config->tls == CONFIG_TLS_ON ? "on (plaintext still accepted)" : "required",
	        config->tls_cert,
	        settings.client_ca_file != NULL ? "; client certificates from " : "",
	        settings.client_ca_file != NULL ? settings.client_ca_file : "");
	return 0;
}

int main(int argc, char **argv)
{
	static struct server_config config;
	int status = arguments_parse(argc, argv, &config);
	if (status != 0)
		return status;
	if (!config_has_tokens(&config))
		fprintf(stderr,
		        "skuld: warning: no tokens configured: every connection is admin "
		        "(for development only; see docs/OPERATIONS.md, Tokens and roles)\n");
	else
		fprintf(stderr, "skuld: %u token%s configured\n",
		        config.tokens.count + (config.token[0] != '\0'),
		        config.tokens.count + (config.token[0] != '\0') == 1 ? "" : "s");
	struct tls_context *tls = NULL;
	status = tls_setup(&config, &tls);
	if (status != 0)
		return status;
	/* Signals are read from a signalfd by the loop. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	char log_dir[CONFIG_PATH_SIZE + 8];
	int lock_fd = data_dir_prepare(&config, log_dir, sizeof(log_dir));
	if (lock_fd < 0)
		return EXIT_STARTUP;
	/* Every disk call from here on goes through the storage seam. */
	char storage_message[512];
	if (storage_setup(config.data_dir, storage_message, sizeof(storage_message)) != 0) {
		fprintf(stderr, "skuld: %s\n", storage_message);
		close(lock_fd);
		return EXIT_USAGE;
	}
#if SKULD_BROKEN_SKIP_FDATASYNC
	fprintf(stderr, "skuld: TEST-ONLY BROKEN BUILD (SKULD_BROKEN_SKIP_FDATASYNC): "
	                "replies are sent without fdatasync; never run a ledger like this\n");
#endif
	struct service *service = NULL;
	struct log_writer *writer = NULL;
	struct snapshotter *snapshots = NULL;
	int listen_fd = -1;
	uint16_t port = 0;
	char snapshot_dir[CONFIG_PATH_SIZE + 16];
	char snapshot_archive[CONFIG_PATH_SIZE + 24];
	char chain_heads[CONFIG_PATH_SIZE + 16];
	uint64_t event_next = 1;
	snprintf(snapshot_dir, sizeof(snapshot_dir), "%s/snapshots", config.data_dir);
	status = directory_make(snapshot_dir) == 0 ? 0 : EXIT_STARTUP;
	if (status != 0)
		fprintf(stderr, "skuld: cannot create %s: %s\n", snapshot_dir, strerror(errno));
	snprintf(chain_heads, sizeof(chain_heads), "%s/chain-heads", config.data_dir);
	/* Retention keeps a snapshot at each archive boundary: in the archive,
	 * or, when segments are deleted, in DATA_DIR/archive-snapshots. */
	if (config.archive_dir[0] != '\0')
		snprintf(snapshot_archive, sizeof(snapshot_archive), "%s", config.archive_dir);
	else
		snprintf(snapshot_archive, sizeof(snapshot_archive), "%s/archive-snapshots",
		         config.data_dir);
	if (status == 0 && (config.retain_bytes != 0 || config.retain_days != 0) &&
	    directory_make(snapshot_archive) != 0) {
		fprintf(stderr, "skuld: cannot create %s: %s\n", snapshot_archive, strerror(errno));
		status = EXIT_STARTUP;
	}
	if (status == 0)
		status = state_recover(&config, log_dir, snapshot_dir, &service, &writer,
		                       &event_next);
	if (status == 0) {
		struct snapshot_config snapshot_config = {
		        .dir = snapshot_dir,
		        .events = config.snapshot_events,
		        .interval_ns = (uint64_t)config.snapshot_interval_s * 1000000000ull,
		        .keep = config.snapshot_keep,
		        .log_dir = log_dir,
		        .snapshot_archive = snapshot_archive,
		        .chain_heads = chain_heads,
		        .retain = {.keep_bytes = config.retain_bytes,
		                   .keep_age_ns =
		                           (uint64_t)config.retain_days * 86400ull * 1000000000ull,
		                   .archive_dir = config.archive_dir},
		};
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (snapshotter_create(&snapshots, &snapshot_config, event_next,
		                       (uint64_t)now.tv_sec * 1000000000ull +
		                               (uint64_t)now.tv_nsec) != 0)
			status = EXIT_STARTUP;
	}
	if (status == 0) {
		listen_fd = listen_open(&config, &port);
		if (listen_fd < 0)
			status = EXIT_STARTUP;
	}
	if (status == 0) {
		port_file_write(&config, port);
		fprintf(stderr,
		        "skuld: data in %s; memory bound %.1f MiB; %u connections, %u events per "
		        "request\n"
		        "skuld: speak docs/PROTOCOL.md to it (REGISTER, SUBMIT, QUERY, LOOKUP, "
		        "STATS), e.g. build/bench/skuld-bench --server %s:%u --setup\n",
		        config.data_dir, (double)config_memory_bytes(&config) / (1024.0 * 1024.0),
		        config.connections_max, config.frame_events_max, config.listen_host, port);
		printf("skuld: listening on %s:%u\n", config.listen_host, port);
		fflush(stdout);
		enum loop_exit reason =
		        loop_run(&config, service, writer, snapshots, listen_fd, tls);
		status = reason == LOOP_EXIT_SIGNAL       ? EXIT_CLEAN
		         : reason == LOOP_EXIT_DISK_ERROR ? EXIT_DISK
		                                          : EXIT_STARTUP;
		/* Everything applied is durable: a snapshot of it makes the next
		 * start-up short (a failure is said and changes nothing else). */
		if (status == EXIT_CLEAN)
			snapshotter_finish(snapshots, service);
		if (status == EXIT_CLEAN)
			fprintf(stderr, "skuld: stopped; every acknowledged request is on disk\n");
	}
	snapshotter_destroy(snapshots);
	if (listen_fd >= 0)
		close(listen_fd);
	if (writer != NULL)
		log_writer_close(writer);
	service_destroy(service);
	tls_context_destroy(tls);
	close(lock_fd);
	return status;
}
