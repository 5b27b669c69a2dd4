/*
 * skuld_push.c — the skuld-push program: one process per channel, set up by
 * one configuration file (docs/CHANNELS.md, "skuld-push").
 *
 *   skuld-push --config FILE
 *
 * It connects to skuld as the channel's push worker and runs until SIGINT or
 * SIGTERM, after which it finishes the call in flight, writes what it
 * learned from it, prints its figures on stderr and exits 0. Exit status 2:
 * a bad command line or configuration; 1: skuld refused the worker or does
 * not know the channel.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "push_amazon.h"
#include "push_shopify.h"
#include "push_square.h"
#include "push_worker.h"

static volatile sig_atomic_t stop;

static void on_signal(int signal_number)
{
	(void)signal_number;
	stop = 1;
}

static uint64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* ---- Shopify ------------------------------------------------------------------ */

static struct shopify_driver shopify;

static uint64_t shopify_wait(void *context, uint64_t now_ns)
{
	return shopify_driver_wait_ns(context, now_ns);
}

static void shopify_push(void *context, const struct push_item *items, uint32_t count,
                         struct push_result *results, uint64_t now_ns)
{
	shopify_driver_push(context, items, count, results, now_ns);
}

static int shopify_read(void *context, const struct push_item *items, uint32_t count,
                        struct push_level *levels, uint64_t now_ns)
{
	return shopify_driver_read(context, items, count, levels, now_ns);
}

static int shopify_start(const struct push_worker_config *config, struct push_driver *adapter)
{
	struct shopify_driver_config settings = {
	        .timeout_ms = config->timeout_ms,
	        .bucket_capacity = 2000,
	        .restore_rate = 100,
	        .call_cost = 10,
	        .backoff = {.base_ms = 100, .cap_ms = 30000},
	};
	snprintf(settings.shop_url, sizeof(settings.shop_url), "%s", config->api_url);
	snprintf(settings.token, sizeof(settings.token), "%s", config->api_token);
	snprintf(settings.version, sizeof(settings.version), "%s", config->api_version);
	snprintf(settings.channel, sizeof(settings.channel), "%.31s", config->channel);
	if (shopify_driver_init(&shopify, &settings, monotonic_ns(), monotonic_ns()) != 0)
		return -1;
	*adapter = (struct push_driver){
	        .context = &shopify,
	        .batch_max = SHOPIFY_QUANTITIES_MAX,
	        .read_max = SHOPIFY_READ_MAX,
	        .wait_ns = shopify_wait,
	        .push = shopify_push,
	        .read = shopify_read,
	};
	return 0;
}

static void shopify_stop(void)
{
	fprintf(stderr, "skuld-push: Shopify calls %" PRIu64 ", throttled %" PRIu64 "\n",
	        shopify.calls, shopify.calls_throttled);
	shopify_driver_fini(&shopify);
}

/* ---- The channel kinds ---------------------------------------------------------- */

struct kind {
	const char *name;
	int (*start)(const struct push_worker_config *config, struct push_driver *adapter);
	void (*stop)(void);
};

static const struct kind kinds[] = {
        {"shopify", shopify_start, shopify_stop},
        {"amazon", amazon_kind_start, amazon_kind_stop},
        {"square", square_kind_start, square_kind_stop},
};

static const struct kind *kind_find(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--config") != 0) {
		fprintf(stderr, "usage: skuld-push --config FILE\n");
		return 2;
	}
	struct push_worker_config config;
	char error[512] = "";
	if (push_worker_config_read(&config, argv[2], error, sizeof(error)) != 0) {
		fprintf(stderr, "skuld-push: %s\n", error);
		return 2;
	}
	struct sigaction action = {.sa_handler = on_signal};
	sigemptyset(&action.sa_mask);
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (http_global_init() != 0) {
		fprintf(stderr, "skuld-push: libcurl did not start\n");
		return 1;
	}
	const struct kind *kind = kind_find(config.kind);
	if (kind == NULL) {
		fprintf(stderr, "skuld-push: %s: kind %s is not built (shopify is)\n", argv[2],
		        config.kind);
		return 2;
	}
	struct push_driver adapter;
	if (kind->start(&config, &adapter) != 0) {
		fprintf(stderr, "skuld-push: the %s driver did not start\n", config.kind);
		return 1;
	}
	fprintf(stderr, "skuld-push: channel %s (%s %s at %s), skuld at %s\n", config.channel,
	        config.kind, config.api_version, config.api_url, config.server);
	struct push_worker_figures figures = {0};
	int ret = push_worker_run(&config, &adapter, &stop, &figures, error, sizeof(error));
	if (ret != 0)
		fprintf(stderr, "skuld-push: %s\n", error);
	fprintf(stderr,
	        "skuld-push: pulls %" PRIu64 ", calls %" PRIu64 ", items pushed %" PRIu64
	        ", acknowledged %" PRIu64 " (%" PRIu64 " without a call), left dirty %" PRIu64
	        ", exceptions %" PRIu64 ", mismatches %" PRIu64 "\n",
	        figures.pulls, figures.calls, figures.pushed, figures.acked, figures.unchanged,
	        figures.retries, figures.exceptions, figures.mismatches);
	kind->stop();
	return ret == 0 ? 0 : 1;
}
