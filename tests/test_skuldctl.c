/*
 * test_skuldctl.c — the real skuldctl binary against the real skuld server
 * (started on port 0 in a temporary directory by tests/server_harness.h):
 * every command in human and JSON output with its values, the exit codes,
 * imports (50,000 rows, the same file again, a file with every defect,
 * --dry-run), and the RFC 4180 reader on its own.
 *
 * Every child is bounded: skuldctl runs get PR_SET_PDEATHSIG and are killed
 * after CTL_RUN_TIMEOUT_S; the server dies with the test process
 * (server_harness.h) and is stopped on every path by server_fini.
 */
#include "command_harness.h"
#include "skuldctl_csv.h"

#include <stdarg.h>

#define CTL_BINARY        SKULD_BINARY_DIR "/client/skuldctl"
#define CTL_RUN_TIMEOUT_S 120

/* Capacities for a 50,000-SKU catalog (OPERATIONS.md: the defaults are
 * sized for a small shop). */
static const char *const big_config = "items_max = 65536\n"
                                      "codes_max = 131072\n"
                                      "barcodes_max = 131072\n"
                                      "attributes_max = 262144\n"
                                      "keys_max = 524288\n";

static struct server server;
static struct command_run run_result;
static char server_address[32];

/* Runs skuldctl with the arguments (NULL-terminated), --server first. */
static struct command_run *ctl_run_argv(const char *const *argv_in)
{
	static const char *const unset[] = {"SKULD_SERVER", "SKULD_TOKEN", NULL};
	const char *argv[COMMAND_ARGS_MAX];
	int argc = 0;
	argv[argc++] = "skuldctl";
	argv[argc++] = "--server";
	argv[argc++] = server_address;
	for (int i = 0; argv_in[i] != NULL && argc < COMMAND_ARGS_MAX - 1; i++)
		argv[argc++] = argv_in[i];
	argv[argc] = NULL;
	return command_run(&run_result, CTL_BINARY, argv, server.dir, CTL_RUN_TIMEOUT_S, unset);
}

#define ctl(...) ctl_run_argv((const char *const[]){__VA_ARGS__, NULL})

/* Runs and asserts the exit status and that stdout contains text. */
static struct command_run *ctl_expect(int status, const char *text, const char *const *argv)
{
	struct command_run *run = ctl_run_argv(argv);
	cr_assert_eq(run->status, status, "%s: exit %d, wanted %d\nstdout: %s\nstderr: %s", argv[0],
	             run->status, status, run->out, run->err);
	if (text != NULL)
		cr_assert_not_null(strstr(run->out, text), "%s: stdout lacks '%s':\n%s\nstderr: %s",
		                   argv[0], text, run->out, run->err);
	return run;
}

#define expect(status, text, ...) ctl_expect(status, text, (const char *const[]){__VA_ARGS__, NULL})

static void contains(const char *haystack, const char *needle)
{
	cr_assert_not_null(strstr(haystack, needle), "lacks '%s' in:\n%s", needle, haystack);
}

static void start(const char *config)
{
	server_init(&server, config);
	server_start(&server);
	snprintf(server_address, sizeof(server_address), "127.0.0.1:%u", server.port);
}

static void stop(void)
{
	server_fini(&server);
}

static void write_text(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");
	cr_assert_not_null(file);
	fputs(text, file);
	fclose(file);
}

static void path_in_dir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", server.dir, name);
}

/* LOOKUP through a raw connection (not through skuldctl): the id, or 0. */
static uint32_t raw_lookup(uint16_t kind, const char *code)
{
	struct client client;
	cr_assert_eq(client_open(&client, server.port, client_id(77)), 0);
	struct skuld_lookup lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.kind = kind;
	memcpy(lookup.code, code, strlen(code));
	static struct reply reply;
	cr_assert_eq(frame_send(client.fd, SKULD_OP_LOOKUP, client.id, 0, client.version, &lookup,
	                        sizeof(lookup), 1),
	             0);
	cr_assert_eq(frame_read(client.fd, &reply), 0);
	cr_assert_eq(reply_header(&reply)->operation, SKULD_OP_LOOKUP);
	const struct skuld_lookup_match *match = reply_body(&reply);
	uint32_t id = match->status == SKULD_OK ? match->id : 0;
	client_close(&client);
	return id;
}

static struct skuld_stats raw_stats(void)
{
	struct client client;
	struct skuld_stats stats;
	cr_assert_eq(client_open(&client, server.port, client_id(78)), 0);
	cr_assert_eq(client_stats(&client, &stats), 0);
	client_close(&client);
	return stats;
}

/* A failed assertion ends the test function; .fini still stops the server
 * and removes its directory. */
TestSuite(skuldctl, .fini = stop);

/* ---- Commands ------------------------------------------------------------------ */

static void define_shop(void)
{
	expect(0, "location S1 defined as id 1", "define-location", "S1");
	expect(0, "location S2 defined as id 2", "define-location", "S2");
	expect(0, "item TEE defined as id 1", "define-item", "TEE", "--barcode", "4001");
	expect(0, "\"id\":2,\"already_present\":false", "--json", "define-item", "HAM", "--scale",
	       "3");
}

Test(skuldctl, catalog_commands_define_once_and_report_present)
{
	start(NULL);
	define_shop();
	/* Two locations, TEE and its barcode, HAM: the scale travels with
	 * ITEM_DEFINE, nothing else is written for it. */
	cr_assert_eq(raw_stats().events, 5);
	/* Re-running a definition is harmless and says so. */
	expect(0, "location S1 already defined as id 1", "define-location", "S1");
	expect(0, "\"already_present\":true", "--json", "define-item", "TEE", "--barcode", "4001");
	/* The same SKU with another scale is refused. */
	expect(1, NULL, "define-item", "HAM", "--scale", "2");
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "TEE"), 1);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_BARCODE, "4001"), 1);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_LOCATION, "S2"), 2);
	/* Channels and bundles. */
	expect(0, "channel web defined as id 1", "define-channel", "web", "--pool", "S1,S2",
	       "--buffer", "2");
	expect(0, "\"already_present\":true", "--json", "define-channel", "web", "--pool", "S1");
	expect(1, NULL, "define-channel", "app", "--pool", "S1,NOPE");
	expect(0, "item KIT defined as id 3", "define-bundle", "KIT", "TEE:2", "HAM:0.500");
	expect(1, NULL, "define-bundle", "KIT2", "TEE:1", "NOPE:1");
	expect(2, NULL, "define-bundle", "KIT3", "HAM:0.0001"); /* more decimals than scale 3 */
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_CHANNEL, "web"), 1);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "KIT"), 3);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "KIT2"), 0);
	stop();
}

Test(skuldctl, stock_movements_human_and_json)
{
	start(NULL);
	define_shop();
	expect(0, "received 10 TEE at S1: available 10", "receive", "TEE@S1", "10");
	expect(0, "\"quantity\":1.250,\"available\":1.250", "--json", "receive", "HAM@S1", "1.25");
	expect(0, "sold 0.005 HAM at S1: available 1.245", "sell", "HAM@S1", "0.005");
	expect(0, "\"quantity\":3,\"available\":7,\"replayed\":false,\"discrepancy\":false",
	       "--json", "sell", "TEE@S1", "3");
	/* A sale is a fact even without stock: recorded, flagged. */
	expect(0, "(discrepancy", "sell", "TEE@S2", "1");
	expect(0, "returned 1 TEE at S1: available 7", "return", "TEE@S1", "1", "--damaged");
	expect(0, "adjusted by -2 TEE at S1: available 5", "adjust", "TEE@S1", "-2", "--reason",
	       "theft");
	struct command_run *run = expect(0, NULL, "--json", "level", "TEE@S1");
	contains(run->out, "\"sku\":\"TEE\",\"item\":1,\"location\":\"S1\",\"location_id\":1,"
	                   "\"scale\":0,\"on_hand\":6,\"reserved\":0,\"committed\":0,"
	                   "\"unsellable\":1,\"incoming\":0,\"available\":5}");
	run = expect(0, NULL, "level", "HAM@S1");
	contains(run->out, "ON_HAND");
	contains(run->out, "1.245");
	/* Count: expected 6 on hand, counted 8. */
	expect(0, "counted 8 TEE at S1 (expected 6): delta +2, available 7", "count", "TEE@S1",
	       "8");
	run = expect(0, "\"expected\":1.245,\"counted\":1.000,\"delta\":-0.245", "--json", "count",
	             "HAM@S1", "1");
	/* Two-phase count: open, then close. */
	run = expect(0, "\"count_id\":", "--json", "count", "TEE@S1", "--open");
	unsigned long long count_id = 0;
	cr_assert_eq(sscanf(strstr(run->out, "\"count_id\":"), "\"count_id\":%llu", &count_id), 1);
	char id_text[32];
	snprintf(id_text, sizeof(id_text), "%llu", count_id);
	expect(0, "counted 9 TEE at S1: delta +1", "count", "TEE@S1", "9", "--close", id_text);
	/* Transfers: immediate, and in transit then arrived. */
	expect(0, "moved from S1 to S2", "transfer", "TEE", "S1", "S2", "2");
	run = expect(0, "\"in_transit\":true", "--json", "transfer", "TEE", "S1", "S2", "1",
	             "--in-transit");
	unsigned long long transfer = 0;
	cr_assert_eq(
	        sscanf(strstr(run->out, "\"transfer_id\":"), "\"transfer_id\":%llu", &transfer), 1);
	run = expect(0, "\"incoming\":1,", "--json", "level", "TEE@S2");
	snprintf(id_text, sizeof(id_text), "%llu", transfer);
	expect(0, "arrived from S1 to S2", "transfer", "TEE", "S1", "S2", "1", "--arrive", id_text);
	run = expect(0, NULL, "--json", "level", "TEE");
	contains(run->out, "\"location_id\":1,\"scale\":0,\"on_hand\":6,");
	contains(run->out, "\"location_id\":2,\"scale\":0,\"on_hand\":2,\"reserved\":0,"
	                   "\"committed\":0,\"unsellable\":0,\"incoming\":0,\"available\":2}");
	run = expect(0, NULL, "--json", "levels", "S1");
	contains(run->out, "{\"sku\":null,\"item\":1,\"location\":\"S1\"");
	contains(run->out, "\"item\":2,\"location\":\"S1\",\"location_id\":1,\"scale\":3,"
	                   "\"on_hand\":1.000,");
	run = expect(0, "#2", "levels", "S1");
	contains(run->out, "1.000");
	stop();
}

Test(skuldctl, holds_channels_and_stats)
{
	start(NULL);
	define_shop();
	expect(0, NULL, "receive", "TEE@S1", "10");
	expect(0, NULL, "receive", "TEE@S2", "4");
	expect(0, "hold 7: holds 4 TEE at location #1, available there 6", "reserve", "TEE@S1", "4",
	       "--hold", "7", "--ttl", "15m");
	expect(0, "\"hold\":7,\"sku\":null,\"location_id\":1,\"quantity\":4,", "--json", "extend",
	       "7", "--ttl", "1h");
	expect(0, "hold 7: committed 1 at location #1", "commit", "7", "1");
	expect(0, "hold 7: released 3", "release", "7");
	expect(1, NULL, "release", "7"); /* closed already */
	expect(1, NULL, "commit", "999");
	/* Channel: pool S1+S2 available 9 + 4, buffer 2. */
	expect(0, NULL, "define-channel", "web", "--pool", "S1,S2", "--buffer", "2");
	expect(0, "TEE on web: 11", "channel-level", "TEE", "--channel", "web");
	expect(0, "\"channel\":\"web\",\"channel_id\":1,\"scale\":0,\"available\":11}", "--json",
	       "channel-level", "TEE", "--channel", "web");
	/* A channel hold: the ledger picks S1 (largest spare). */
	expect(0, "\"location_id\":1,\"quantity\":5,", "--json", "reserve", "TEE@channel:web", "5",
	       "--hold", "8");
	/* Oversell refused: exit 1, JSON says why. */
	struct command_run *run =
	        expect(1, "\"status\":\"INSUFFICIENT\"", "--json", "reserve", "TEE@S2", "5");
	contains(run->err, "INSUFFICIENT");
	expect(0, "\"holds_open\":1,", "--json", "stats");
	run = expect(0, "holds_open", "stats");
	contains(run->out, "events");
	/* STATS records 1 and 2: the limit counters and the latency buckets. */
	contains(run->out, "\nclosed_slow ");
	contains(run->out, "\nlatency_le_64us ");
	contains(run->out, "\nlatency_le_inf ");
	expect(0, "\"frames_oversize\":0,", "--json", "stats");
	stop();
}

/* The value of the sample "name " (no labels) in a Prometheus text, or -1. */
static long long prometheus_value(const char *text, const char *name)
{
	char needle[96];
	snprintf(needle, sizeof(needle), "\n%s ", name);
	const char *at = strstr(text, needle);
	return at != NULL ? strtoll(at + strlen(needle), NULL, 10) : -1;
}

/* GET path from the exporter on port: the whole answer, status line first. */
static void http_get(uint16_t port, const char *path, char *answer, size_t size)
{
	int fd = socket_connect(port);
	cr_assert_geq(fd, 0, "the exporter's port %u does not accept", port);
	char request[128];
	int length = snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\n\r\n", path);
	cr_assert_eq(write(fd, request, (size_t)length), length);
	size_t used = 0;
	for (int reads = 0; reads < 1000 && used + 1 < size; reads++) {
		ssize_t n = read(fd, answer + used, size - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	answer[used] = '\0';
	close(fd);
}

Test(skuldctl, prometheus_metrics_on_stdout_and_over_http)
{
	start(NULL);
	define_shop();
	expect(0, NULL, "receive", "TEE@S1", "10");
	expect(0, NULL, "define-channel", "web", "--pool", "S1,S2");
	expect(0, NULL, "reserve", "TEE@S1", "4", "--hold", "9");
	struct command_run *run =
	        expect(0, "# TYPE skuld_events_total counter", "stats", "--prometheus");
	struct skuld_stats stats = raw_stats();
	cr_assert_eq(prometheus_value(run->out, "skuld_events_total"), (long long)stats.events);
	cr_assert_eq(prometheus_value(run->out, "skuld_holds_open"), 1);
	cr_assert_eq(prometheus_value(run->out, "skuld_event_durable"),
	             (long long)stats.event_durable);
	contains(run->out, "\nskuld_channel_listings{channel_id=\"1\"} 0\n");
	/* The SUBMIT latency histogram: every request so far measured, the
	 * +Inf bucket equal to the count; each limit counter present. */
	contains(run->out, "# TYPE skuld_request_latency_seconds histogram\n");
	long long measured = prometheus_value(run->out, "skuld_request_latency_seconds_count");
	cr_assert_geq(measured, 3, "requests measured: %lld", measured);
	char infinite[128];
	snprintf(infinite, sizeof(infinite),
	         "\nskuld_request_latency_seconds_bucket{le=\"+Inf\"} %lld\n", measured);
	contains(run->out, infinite);
	contains(run->out, "\nskuld_request_latency_seconds_bucket{le=\"0.000064\"} ");
	contains(run->out, "\nskuld_request_latency_seconds_sum ");
	cr_assert_eq(prometheus_value(run->out, "skuld_connections_closed_slow_total"), 0);
	cr_assert_eq(prometheus_value(run->out, "skuld_frames_oversize_total"), 0);
	contains(run->out, "\nskuld_frames_rejected_by_status_total{status=\"ERR_SIZE\"} 0\n");
	contains(run->out, "\nskuld_channel_exception{channel_id=\"1\"} 0\n");

	/* The endpoint: started on port 0, it names the port it took. */
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
		close(out[0]);
		execl(CTL_BINARY, "skuldctl", "--server", server_address, "metrics", "--listen",
		      "127.0.0.1:0", (char *)NULL);
		_exit(98);
	}
	close(out[1]);
	char line[256] = "";
	size_t used = 0;
	for (int polls = 0; polls < 100 && strchr(line, '\n') == NULL; polls++) {
		struct pollfd ready = {.fd = out[0], .events = POLLIN};
		if (poll(&ready, 1, 100) <= 0)
			continue;
		ssize_t n = read(out[0], line + used, sizeof(line) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		line[used] = '\0';
	}
	close(out[0]);
	unsigned port = 0;
	const char *at = strstr(line, "http://127.0.0.1:");
	cr_assert(at != NULL && sscanf(at, "http://127.0.0.1:%u/metrics", &port) == 1,
	          "no port in '%s'", line);
	static char answer[1 << 16];
	http_get((uint16_t)port, "/metrics", answer, sizeof(answer));
	contains(answer, " 200 OK\r\n");
	contains(answer, "text/plain; version=0.0.4");
	cr_assert_eq(prometheus_value(answer, "skuld_holds_open"), 1);
	/* A scrape asks afresh: the commit shows in the next one. */
	expect(0, NULL, "commit", "9");
	http_get((uint16_t)port, "/metrics", answer, sizeof(answer));
	cr_assert_eq(prometheus_value(answer, "skuld_holds_open"), 0);
	http_get((uint16_t)port, "/other", answer, sizeof(answer));
	contains(answer, " 404 ");
	int status = 0;
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exporter status %d", status);
	stop();
}

Test(skuldctl, key_makes_a_movement_apply_once)
{
	start(NULL);
	define_shop();
	expect(0, "received 5 TEE at S1: available 5", "--key", "PO-1", "receive", "TEE@S1", "5");
	expect(0, "(already applied)", "--key", "PO-1", "receive", "TEE@S1", "5");
	expect(0, "\"replayed\":true", "--json", "--key", "PO-1", "receive", "TEE@S1", "5");
	/* Without a key every run is a new movement. */
	expect(0, "available 8", "receive", "TEE@S1", "3");
	expect(0, "\"on_hand\":8,", "--json", "level", "TEE@S1");
	/* A keyed count is the same count when re-run. */
	expect(0, "delta +2", "--key", "C-1", "count", "TEE@S1", "10");
	expect(0, "(already applied)", "--key", "C-1", "count", "TEE@S1", "10");
	expect(0, "\"on_hand\":10,", "--json", "level", "TEE@S1");
	stop();
}

Test(skuldctl, exit_codes_usage_refused_error)
{
	start(NULL);
	define_shop();
	struct command_run *run = expect(0, "Exit status", "--help");
	contains(run->out, "3  connection or server error");
	expect(2, NULL, "bogus");
	expect(2, NULL, "sell", "TEE");
	expect(2, NULL, "sell", "TEE@S1", "abc");
	expect(2, NULL, "sell", "HAM@S1", "1.0005"); /* scale 3 */
	expect(2, NULL, "sell", "TEE@S1", "1.5");    /* scale 0 */
	expect(2, NULL, "sell", "TEE@S1", "0");
	expect(2, NULL, "sell", "TEE@S1", "-1");
	expect(2, NULL, "adjust", "TEE@S1", "1"); /* no --reason */
	expect(2, NULL, "reserve", "TEE@S1", "1", "--ttl", "soon");
	expect(2, NULL, "define-item", "TEE", "--scale", "12");
	expect(2, NULL, "define-item", "THIS-SKU-IS-LONGER-THAN-32-CHARACTERS");
	expect(2, NULL, "level", "TEE@S1", "--frobnicate", "1");
	expect(1, NULL, "sell", "NOPE@S1", "1");
	expect(1, NULL, "sell", "TEE@NOWHERE", "1");
	expect(1, NULL, "reserve", "TEE@S1", "1"); /* nothing there */
	expect(1, NULL, "transfer", "TEE", "S1", "S2", "1");
	/* Nothing listens on port 1. */
	const char *argv[] = {"stats", NULL};
	snprintf(server_address, sizeof(server_address), "127.0.0.1:1");
	run = ctl_run_argv(argv);
	cr_assert_eq(run->status, 3, "exit %d: %s", run->status, run->err);
	contains(run->err, "cannot connect");
	stop();
}

/* ---- Import ------------------------------------------------------------------------ */

/* A catalog of families x 5 colours x 5 sizes; rows = 25 x families. */
static void write_catalog(const char *path, uint32_t families)
{
	static const char *const colors[] = {"red", "blue", "green", "black", "white"};
	static const char *const sizes[] = {"XS", "S", "M", "L", "XL"};
	FILE *file = fopen(path, "w");
	cr_assert_not_null(file);
	fprintf(file, "sku,barcode,scale,name,family,color,size\r\n");
	uint64_t n = 0;
	for (uint32_t f = 0; f < families; f++) {
		for (int c = 0; c < 5; c++) {
			for (int s = 0; s < 5; s++, n++)
				fprintf(file,
				        "F%05u-%s-%s,%013llu,0,\"Tee %u, %s\",F%05u,%s,%s\r\n", f,
				        colors[c], sizes[s],
				        (unsigned long long)(4000000000000ull + n), f, colors[c], f,
				        colors[c], sizes[s]);
		}
	}
	fclose(file);
}

Test(skuldctl, import_50000_items_then_again_changes_nothing, .timeout = 300)
{
	start(big_config);
	char path[128];
	path_in_dir(path, sizeof(path), "items.csv");
	write_catalog(path, 2000);

	/* --dry-run: checked, nothing sent. */
	struct command_run *run =
	        expect(0, "50000 rows checked, no defects; 0 already present, 50000 would",
	               "import", "items", path, "--dry-run");
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "F00000-red-XS"), 0);
	cr_assert_eq(raw_stats().events, 0);

	uint64_t started = harness_now_ms();
	run = expect(0, "import items: 50000 rows, 50000 applied, 0 already present, 0 failed",
	             "import", "items", path);
	uint64_t elapsed = harness_now_ms() - started;
	fprintf(stderr, "skuldctl import of 50,000 items: %llu ms\n", (unsigned long long)elapsed);
	contains(run->err, "import items: applied 50000/50000");
	struct skuld_stats after_first = raw_stats();
	/* sku, barcode, family, color, size per row. */
	cr_assert_eq(after_first.events, 250000);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "F00000-red-XS"), 1);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "F01999-white-XL"), 50000);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_BARCODE, "4000000049999"), 50000);

	/* The same file again: everything present, nothing sent. */
	run = expect(0, "import items: 50000 rows, 0 applied, 50000 already present, 0 failed",
	             "import", "items", path);
	cr_assert_eq(raw_stats().events, after_first.events);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "F01999-white-XL"), 50000);
	run = expect(0, "\"already_present\":50000,\"to_apply\":0,\"applied\":0", "--json",
	             "import", "items", path, "--dry-run");
	/* The next define gets the next id. */
	expect(0, "item NEW-1 defined as id 50001", "define-item", "NEW-1");
	stop();
}

Test(skuldctl, import_reports_every_defect_and_applies_nothing)
{
	start(NULL);
	char path[128];
	path_in_dir(path, sizeof(path), "bad.csv");
	write_text(path, "sku,barcode,scale,family,color,size\r\n" /* line 1 */
	                 "TEE-R-S,111,0,TEE,red,S\r\n"             /* 2 */
	                 "TEE-R-M,222,0,TEE,red,M\r\n"             /* 3 */
	                 "TEE-B-S,333,0,TEE,blue,S\r\n"            /* 4: blue M missing */
	                 "TEE-R-S,444,0,,,\r\n"                    /* 5: duplicate SKU */
	                 "tee-r-m,555,0,,,\r\n"                    /* 6: case look-alike */
	                 "MUG,111,0,,,\r\n"                        /* 7: shared barcode */
	                 "\"CAP, WOOL\",666,x,,,\r\n"              /* 8: bad scale */
	                 "HAT,\"77\"7,0,,,\r\n"                    /* 9: text after quote */
	                 "SOCK,888,0\r\n"                          /* 10: 3 fields */
	                 "\"SCARF\nRED\",999,0,,,\r\n"             /* 11-12: newline in SKU */
	                 "TEE-R -S,1010,0,,,\r\n"                  /* 13: space look-alike */
	                 "GOOD-1,1111,0,,,\r\n");                  /* 14 */
	struct command_run *run = expect(1, "defects in", "import", "items", path);
	/* Sorted by line; a family's gap is reported on its first line. */
	contains(run->err, "line 2: family 'TEE' (lines 2..4) has no variant color=blue size=M\n"
	                   "line 5: duplicate SKU");
	contains(run->err, "line 5: duplicate SKU 'TEE-R-S' (first on line 2)");
	contains(run->err, "line 6: SKU 'tee-r-m' differs only in case or spaces from 'TEE-R-M' on "
	                   "line 3");
	contains(run->err,
	         "line 7: barcode '111' of SKU 'MUG' is also the barcode of SKU 'TEE-R-S' "
	         "on line 2");
	contains(run->err, "line 8: malformed row: scale 'x'");
	contains(run->err, "line 9: malformed row: text after a closing quote");
	contains(run->err, "line 10: malformed row: 3 fields, the header has 6");
	contains(run->err, "line 11: malformed row: SKU 'SCARF");
	contains(run->err,
	         "line 13: SKU 'TEE-R -S' differs only in case or spaces from 'TEE-R-S' on "
	         "line 2");
	contains(run->out, "nothing was applied");
	/* Nothing exists: not even the good rows. */
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "GOOD-1"), 0);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "TEE-R-M"), 0);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_BARCODE, "1111"), 0);
	cr_assert_eq(raw_stats().events, 0);
	/* JSON counts them too. */
	run = expect(1, "\"defects\":9,", "--json", "import", "items", path);
	contains(run->out, "\"problems\":[{\"line\":2,\"message\":\"family 'TEE' (lines 2..4) has "
	                   "no variant color=blue size=M\"},{\"line\":5,");
	/* A file without the required column, and one that is missing. */
	write_text(path, "code,barcode\r\nX,1\r\n");
	run = expect(1, NULL, "import", "items", path);
	contains(run->err, "line 1: the header has no 'sku' column");
	path_in_dir(path, sizeof(path), "nope.csv");
	expect(2, NULL, "import", "items", path);
	expect(2, NULL, "import", "widgets", path);
	stop();
}

Test(skuldctl, import_locations_bundles_counts)
{
	start(NULL);
	char path[128];
	path_in_dir(path, sizeof(path), "locations.csv");
	write_text(path, "code,name\nS1,Main street\nS2,\"Mall, unit 4\"\nWH,Warehouse\n");
	expect(0, "import locations: 3 rows, 3 applied, 0 already present", "import", "locations",
	       path);
	expect(0, "import locations: 3 rows, 0 applied, 3 already present", "import", "locations",
	       path);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_LOCATION, "WH"), 3);
	write_text(path, "code\nS1\ns1\n");
	struct command_run *run = expect(1, NULL, "import", "locations", path);
	contains(run->err, "line 3: location code 's1' differs only in case or spaces from 'S1'");

	path_in_dir(path, sizeof(path), "items.csv");
	write_text(path, "sku,scale\nTEE,0\nHAM,3\nMUG,\n");
	expect(0, "3 applied", "import", "items", path);

	path_in_dir(path, sizeof(path), "bundles.csv");
	write_text(path, "bundle,component,qty\nGIFT,TEE,1\nGIFT,MUG,2\nPICNIC,HAM,0.250\n"
	                 "PICNIC,MUG,1\n");
	expect(0, "import bundles: 4 rows, 2 applied, 0 already present", "import", "bundles",
	       path);
	expect(0, "import bundles: 4 rows, 0 applied, 2 already present", "import", "bundles",
	       path);
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "GIFT"), 4);
	write_text(path,
	           "bundle,component,qty\nBOX,TEE,1\nBOX,NOPE,1\nBOX,HAM,0.0001\nBOX2,GIFT,1\n"
	           "BOX2,TEE,1\nBOX2,TEE,2\n");
	run = expect(1, NULL, "import", "bundles", path);
	contains(run->err, "line 7: component 'TEE' of bundle 'BOX2' repeats line 6");
	write_text(path, "bundle,component,qty\nBOX,TEE,1\nBOX,NOPE,1\nBOX,HAM,0.0001\n");
	run = expect(1, NULL, "import", "bundles", path);
	contains(run->err, "line 3: component 'NOPE' of bundle 'BOX' is not in the ledger");
	contains(run->err, "line 4: qty '0.0001' has more decimals than component 'HAM'");
	cr_assert_eq(raw_lookup(SKULD_LOOKUP_SKU, "BOX"), 0);

	/* Counts: a stocktake file; the same file again changes nothing. */
	expect(0, NULL, "receive", "TEE@S1", "5");
	path_in_dir(path, sizeof(path), "counts.csv");
	write_text(path, "sku,location,qty\r\nTEE,S1,7\r\nHAM,S2,1.5\r\nMUG,WH,0\r\n");
	expect(0, "\"already_present\":0,\"to_apply\":3,\"applied\":0", "--json", "import",
	       "counts", path, "--dry-run");
	expect(0, "\"on_hand\":5,", "--json", "level", "TEE@S1");
	expect(0, "import counts: 3 rows, 3 applied, 0 already present", "import", "counts", path);
	expect(0, "\"on_hand\":7,", "--json", "level", "TEE@S1");
	expect(0, "\"on_hand\":1.500,", "--json", "level", "HAM@S2");
	expect(0, "import counts: 3 rows, 0 applied, 3 already present", "import", "counts", path);
	expect(0, "\"on_hand\":7,", "--json", "level", "TEE@S1");
	write_text(path, "sku,location,qty\nTEE,S1,7\nTEE,S1,8\nHAM,S2,1.2345\nZZZ,S1,1\n");
	run = expect(1, NULL, "import", "counts", path);
	contains(run->err, "line 3: TEE@S1 is counted twice (also line 2)");
	stop();
}

/* ---- The CSV reader ------------------------------------------------------------------ */

Test(skuldctl_csv, rfc4180_quotes_commas_crlf_and_errors)
{
	static const char text[] = "\xef\xbb\xbf"
	                           "a,b,c\r\n"
	                           "\"x, y\",\"say \"\"hi\"\"\",\r\n"
	                           "\r\n"
	                           "\"multi\r\nline\",2,3\n"
	                           "bad\"quote,1,2\n"
	                           "\"open,1,2\n";
	struct csv_reader reader;
	struct csv_record record;
	cr_assert_eq(csv_open_text(&reader, text, sizeof(text) - 1), 0);
	cr_assert_eq(csv_next(&reader, &record), 1);
	cr_assert_eq(record.line, 1);
	cr_assert_eq(record.count, 3);
	cr_assert_str_eq(record.fields[0], "a");
	cr_assert_eq(csv_next(&reader, &record), 1);
	cr_assert_eq(record.line, 2);
	cr_assert_eq(record.count, 3);
	cr_assert_str_eq(record.fields[0], "x, y");
	cr_assert_str_eq(record.fields[1], "say \"hi\"");
	cr_assert_str_eq(record.fields[2], "");
	cr_assert_eq(csv_next(&reader, &record), 1); /* the empty line 3 is skipped */
	cr_assert_eq(record.line, 4);
	cr_assert_str_eq(record.fields[0], "multi\r\nline");
	cr_assert_str_eq(record.fields[2], "3");
	cr_assert_eq(csv_next(&reader, &record), -1);
	cr_assert_eq(record.line, 6);
	cr_assert_not_null(strstr(record.error, "quote inside an unquoted field"));
	cr_assert_eq(csv_next(&reader, &record), -1);
	cr_assert_eq(record.line, 7);
	cr_assert_not_null(strstr(record.error, "never closes"));
	cr_assert_eq(csv_next(&reader, &record), 0);
	csv_close(&reader);
}

/* ---- Discrepancies -------------------------------------------------------------- */

/* Stops the server (SIGTERM: it snapshots on the way out, or SIGKILL: it
 * recovers from an earlier snapshot and the log after it) and starts it. */
static void restart(int crash)
{
	if (crash)
		server_kill(&server);
	else
		cr_assert_eq(server_stop(&server), 0);
	server_start(&server);
	snprintf(server_address, sizeof(server_address), "127.0.0.1:%u", server.port);
}

/* Raising discrepancies_max makes the next start-up replay the whole log
 * (the snapshot's fingerprint differs); an ACK that the small table
 * answered without a record gives the same result in the replay, so the
 * server starts, and the larger table holds the acknowledged record. */
Test(skuldctl, raising_discrepancies_max_replays_the_log)
{
	start("discrepancies_max = 1\n");
	define_shop();
	expect(0, NULL, "sell", "TEE@S1", "1");
	expect(0, NULL, "sell", "TEE@S2", "1"); /* evicts TEE@S1 */
	expect(0, NULL, "acknowledge", "TEE@S1");
	struct command_run *run = expect(0, NULL, "exceptions", "--all");
	cr_assert_null(strstr(run->out, "location 1:"), "%s", run->out);
	cr_assert_eq(server_stop(&server), 0);
	write_text(server.config, "discrepancies_max = 8\n");
	server_start(&server);
	snprintf(server_address, sizeof(server_address), "127.0.0.1:%u", server.port);
	run = expect(0, NULL, "exceptions", "--all");
	contains(run->out, "discrepancy item 1 at location 1: sale-short");
	contains(run->out, "(acknowledged)");
	run = expect(0, "discrepancy item 1 at location 2: sale-short", "exceptions");
	cr_assert_null(strstr(run->out, "location 1:"), "%s", run->out);
	stop();
}

/* A till sale at zero and a count far off are listed next to the channel
 * exceptions, survive restarts (one from a snapshot plus the log after it),
 * are acknowledged by an event, and skuld-replay verify agrees. */
Test(skuldctl, exceptions_list_discrepancies_across_restarts)
{
	start("snapshot_events = 6\ncount_off_percent = 10\n");
	define_shop();
	expect(0, "no open exceptions", "exceptions");
	expect(0, NULL, "receive", "TEE@S1", "1");
	expect(0, NULL, "sell", "TEE@S1", "3"); /* 2 more than the ledger had */
	expect(0, NULL, "receive", "TEE@S2", "100");
	expect(0, NULL, "count", "TEE@S2", "95");  /* 5%: within the threshold */
	expect(0, NULL, "count", "HAM@S2", "1.5"); /* expected 0 */
	struct command_run *run = expect(0, NULL, "exceptions");
	contains(run->out, "discrepancy item 1 at location 1: sale-short, 1 occurrence");
	contains(run->out, "available 1, sold 3");
	contains(run->out, "discrepancy item 2 at location 2: count-off, 1 occurrence");
	contains(run->out, "expected 0.000, counted 1.500");
	cr_assert_null(strstr(run->out, "item 1 at location 2"), "%s", run->out);
	char *before = strdup(run->out);
	cr_assert_not_null(before);
	run = expect(0, NULL, "--json", "exceptions", "--discrepancies", "--location", "S1");
	contains(run->out, "[{\"discrepancy\":\"sale-short\",\"kinds\":\"sale-short\",\"item\":1,"
	                   "\"location\":1,\"occurrences\":1,");
	contains(run->out, "\"expected\":1,\"found\":3,\"acknowledged\":false}]");
	cr_assert_null(strstr(run->out, "\"location\":2"), "%s", run->out);
	/* The same list after a crash (an earlier snapshot plus the log after
	 * it), and after a clean stop (a snapshot at shutdown). */
	restart(1);
	expect(0, before, "exceptions");
	expect(0, NULL, "sell", "TEE@S1", "1");
	expect(0, "2 occurrences", "exceptions", "--discrepancies");
	restart(0);
	free(before);
	expect(0, "sale-short, 2 occurrences", "exceptions");
	/* Acknowledged: gone from the default list, kept with --all. */
	expect(0, "discrepancy of TEE at S1 acknowledged", "acknowledge", "TEE@S1");
	/* None there: a successful no-op (LEDGER.md section 13). */
	expect(0, NULL, "acknowledge", "TEE@S2");
	expect(0, "discrepancy item 2 at location 2: count-off", "exceptions");
	run = expect(0, NULL, "exceptions");
	cr_assert_null(strstr(run->out, "location 1:"), "%s", run->out);
	expect(0, "(acknowledged)", "exceptions", "--all");
	restart(1);
	expect(0, "sale-short, 2 occurrences", "exceptions", "--all");
	run = expect(0, NULL, "exceptions");
	cr_assert_null(strstr(run->out, "location 1:"), "%s", run->out);
	/* A new sale short starts a new episode. */
	expect(0, NULL, "sell", "TEE@S1", "1");
	expect(0, "sale-short, 1 occurrence", "exceptions", "--location", "S1");
	expect(2, NULL, "exceptions", "--channel", "x", "--discrepancies");
	/* skuld-replay rebuilds the same ledger from the log. */
	cr_assert_eq(server_stop(&server), 0);
	const char *argv[] = {"skuld-replay", "verify", NULL, "--config", server.config, NULL};
	char data_dir[160];
	snprintf(data_dir, sizeof(data_dir), "%s/data", server.dir);
	argv[2] = data_dir;
	struct command_run *verify =
	        command_run(&run_result, SKULD_BINARY_DIR "/server/skuld-replay", argv, server.dir,
	                    CTL_RUN_TIMEOUT_S, NULL);
	cr_assert_eq(verify->status, 0, "verify: %s\n%s", verify->out, verify->err);
}
