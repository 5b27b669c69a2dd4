/*
 * test_server_oversell.c — no oversell across the whole pipeline. Several
 * client processes race to reserve the last units of one item while they
 * also commit, release and let holds expire; the server is killed and
 * restarted (SIGKILL, then SIGTERM) in the middle. Clients retry through
 * reconnects with the same request numbers (exactly-once). Afterwards:
 * units committed never exceed the stock, every counter agrees with what
 * the clients were told, and a replay of the log (recovery, which checks
 * every logged result) gives the same counters.
 */
#include "server_harness.h"

#include "recovery.h"
#include "service.h"

#define STOCK      40
#define CHILDREN   4
#define OPERATIONS 20000 /* at most; children stop after RUN_MS */
#define RUN_MS     2000

static const char *config_race = "items_max = 16\nlocations_max = 4\n";

/* What a child reports through its pipe. */
struct tally {
	uint32_t reserved; /* RESERVE answered OK */
	uint32_t insufficient;
	uint32_t committed; /* COMMIT answered OK: units sold */
	uint32_t released;
	uint32_t left; /* holds left to expire */
	uint32_t errors;
};

/* Connects (again) to whatever port the server now listens on. */
static int child_connect(struct client *client, const char *port_path, skuld_u128 id)
{
	for (int attempt = 0; attempt < 400; attempt++) {
		FILE *file = fopen(port_path, "r");
		unsigned port = 0;
		if (file != NULL) {
			if (fscanf(file, "%u", &port) != 1)
				port = 0;
			fclose(file);
		}
		if (port != 0 && client_open(client, (uint16_t)port, id) == 0)
			return 0;
		usleep(25000);
	}
	return -1;
}

/* One request, exactly once: on a lost connection, reconnect and send the
 * same request number again; the server applies it or returns its saved
 * reply. Returns 0, or -1 when the server stayed away. */
static int child_call(struct client *client, const char *port_path, const struct skuld_event *event,
                      struct skuld_result *result)
{
	uint64_t request = client->request_next;
	for (int attempt = 0; attempt < 20; attempt++) {
		client->request_next = request;
		uint32_t error = 0;
		if (client->fd >= 0 && client_submit(client, event, 1, result, &error) == 0)
			return 0;
		client_close(client);
		if (child_connect(client, port_path, client->id) != 0)
			return -1;
		/* request_next is request (not applied) or request + 1 (applied):
		 * either way the same number is right. */
		if (client->request_next != request && client->request_next != request + 1)
			return -1;
	}
	return -1;
}

static void child_run(int child, const char *port_path, int out)
{
	struct tally tally;
	memset(&tally, 0, sizeof(tally));
	struct client client;
	client.fd = -1;
	client.id = client_id(100 + (uint64_t)child);
	if (child_connect(&client, port_path, client.id) != 0)
		_exit(3);
	uint64_t state = 0x9e37 + (uint64_t)child;
	uint64_t stop_ms = harness_now_ms() + RUN_MS;
	for (uint32_t i = 0; i < OPERATIONS && harness_now_ms() < stop_ms; i++) {
		uint64_t hold = (uint64_t)child << 32 | (i + 1);
		struct skuld_event reserve = event_stock(SKULD_RESERVE, 1, 1, 1, hold);
		reserve.key.hi = 77;
		reserve.id = hold;
		reserve.ttl_s = 1;
		struct skuld_result result;
		if (child_call(&client, port_path, &reserve, &result) != 0)
			_exit(4);
		if (result.status == SKULD_INSUFFICIENT) {
			tally.insufficient++;
			usleep(2000);
			continue;
		}
		if (result.status != SKULD_OK) {
			tally.errors++;
			continue;
		}
		tally.reserved++;
		state = state * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t choice = (uint32_t)(state >> 60) % 4;
		if (choice == 3) {
			tally.left++; /* expires by itself after 1 s */
			continue;
		}
		struct skuld_event close =
		        event_hold(choice == 0 ? SKULD_COMMIT : SKULD_RELEASE, hold, hold);
		close.key.hi = 78;
		if (child_call(&client, port_path, &close, &result) != 0)
			_exit(5);
		if (result.status == SKULD_OK && choice == 0)
			tally.committed++;
		else if (result.status == SKULD_OK)
			tally.released++;
		else if (result.status != SKULD_HOLD_EXPIRED)
			tally.errors++;
	}
	client_close(&client);
	ssize_t written = write(out, &tally, sizeof(tally));
	_exit(written == sizeof(tally) ? 0 : 6);
}

/* Replays the log of the stopped server in this process; returns the level
 * of (1, 1) as recovery rebuilds it. */
static struct ledger_level replayed_level(const struct server *server)
{
	char log_dir[128];
	snprintf(log_dir, sizeof(log_dir), "%s/data/log", server->dir);
	struct service_config config;
	memset(&config, 0, sizeof(config));
	ledger_config_default(&config.ledger);
	config.ledger.items_max = 16;
	config.ledger.locations_max = 4;
	config.sessions_max = 4096;
	config.events_max = SKULD_EVENTS_PER_FRAME_MAX;
	config.expire_batch = 256;
	config.query_limit = 16;
	config.query_scan = 100;
	config.write_size_max = 4u << 20;
	config.log_dir = log_dir;
	struct service *service = NULL;
	cr_assert_eq(service_create(&config, &service), 0);
	struct recovery_summary summary;
	char message[512];
	cr_assert_eq(recovery_run(service, log_dir, &summary, message, sizeof(message)), 0,
	             "replay: %s", message);
	struct ledger_level level;
	cr_assert_eq(ledger_level(service_ledger(service), 1, 1, &level), SKULD_OK);
	service_destroy(service);
	return level;
}

Test(server_oversell, last_units_never_oversold_through_restarts, .timeout = 90)
{
	struct server server;
	server_init(&server, config_race);
	server_start(&server);
	char port_path[128];
	snprintf(port_path, sizeof(port_path), "%s/data/port", server.dir);
	struct client admin;
	cr_assert_eq(client_open(&admin, server.port, client_id(1)), 0);
	struct skuld_event setup[3] = {
	        event_item(1, 1),
	        event_location(1, 2),
	        event_stock(SKULD_RECEIVE, 1, 1, STOCK, 3),
	};
	struct skuld_result results[3];
	cr_assert_eq(client_submit(&admin, setup, 3, results, NULL), 0);
	client_close(&admin);

	int pipes[CHILDREN][2];
	pid_t children[CHILDREN];
	for (int c = 0; c < CHILDREN; c++) {
		cr_assert_eq(pipe(pipes[c]), 0);
		children[c] = fork();
		cr_assert_geq(children[c], 0);
		if (children[c] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(pipes[c][0]);
			child_run(c, port_path, pipes[c][1]);
		}
		close(pipes[c][1]);
	}
	/* Crash in the middle, then a clean stop, each followed by a restart;
	 * while they are down the clients retry. */
	usleep(300000);
	server_kill(&server);
	unlink(port_path);
	server_start(&server);
	usleep(500000);
	cr_assert_eq(server_stop(&server), 0);
	unlink(port_path);
	server_start(&server);

	struct tally total;
	memset(&total, 0, sizeof(total));
	for (int c = 0; c < CHILDREN; c++) {
		struct tally tally;
		int got = read(pipes[c][0], &tally, sizeof(tally)) == sizeof(tally) ? 0 : -1;
		close(pipes[c][0]);
		int status = 0;
		waitpid(children[c], &status, 0);
		cr_assert_eq(got, 0, "child %d failed: status %#x", c, status);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", c,
		          status);
		total.reserved += tally.reserved;
		total.insufficient += tally.insufficient;
		total.committed += tally.committed;
		total.released += tally.released;
		total.left += tally.left;
		total.errors += tally.errors;
	}
	cr_log_info("reserved %u (refused %u), committed %u, released %u, left to expire %u",
	            total.reserved, total.insufficient, total.committed, total.released,
	            total.left);
	cr_assert_eq(total.errors, 0);
	cr_assert_leq(total.committed, STOCK, "oversold: %u committed of %u", total.committed,
	              STOCK);
	cr_assert_gt(total.insufficient, 0, "the race never reached the last units");

	/* Let every remaining hold expire (ttl 1 s), then compare. */
	cr_assert_eq(client_open(&admin, server.port, client_id(1)), 0);
	struct skuld_level_record level;
	uint64_t deadline = harness_now_ms() + 10000;
	do {
		usleep(100000);
		level = client_level(&admin, 1, 1);
	} while (level.reserved != 0 && harness_now_ms() < deadline);
	cr_assert_eq(level.reserved, 0, "holds did not expire");
	cr_assert_eq(level.on_hand, STOCK);
	cr_assert_eq(level.committed, (int64_t)total.committed);
	cr_assert_eq(level.available, STOCK - (int64_t)total.committed);
	struct skuld_stats stats;
	cr_assert_eq(client_stats(&admin, &stats), 0);
	client_close(&admin);
	cr_assert_eq(server_stop(&server), 0);

	struct ledger_level replayed = replayed_level(&server);
	cr_assert_eq(replayed.on_hand, level.on_hand);
	cr_assert_eq(replayed.reserved, level.reserved);
	cr_assert_eq(replayed.committed, level.committed);
	cr_assert_eq(replayed.available, level.available);
	server_fini(&server);
}
