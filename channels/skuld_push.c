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

#include "push_shopify.h"
#include "push_worker.h"

static volatile sig_atomic_t stop;

static void on_signal(int signal_number)
{
	(void)signal_number;
	stop = 1;
}

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

static uint64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--config") != 0) {
		fprintf(stderr, "usage: skuld-push --config FILE\n");
		return 2;
	}
	struct push_worker_config config;
	char error[512];
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
	struct shopify_driver_config shopify = {
	        .timeout_ms = config.timeout_ms,
	        .bucket_capacity = 2000,
	        .restore_rate = 100,
	        .call_cost = 10,
	        .backoff = {.base_ms = 100, .cap_ms = 30000},
	};
	snprintf(shopify.shop_url, sizeof(shopify.shop_url), "%s", config.api_url);
	snprintf(shopify.token, sizeof(shopify.token), "%s", config.api_token);
	snprintf(shopify.version, sizeof(shopify.version), "%s", config.api_version);
	snprintf(shopify.channel, sizeof(shopify.channel), "%.31s", config.channel);
	static struct shopify_driver driver;
	if (shopify_driver_init(&driver, &shopify, monotonic_ns(), monotonic_ns()) != 0) {
		fprintf(stderr, "skuld-push: the Shopify driver did not start\n");
		return 1;
	}
	struct push_driver adapter = {
	        .context = &driver,
	        .batch_max = SHOPIFY_QUANTITIES_MAX,
	        .read_max = SHOPIFY_READ_MAX,
	        .wait_ns = shopify_wait,
	        .push = shopify_push,
	        .read = shopify_read,
	};
	fprintf(stderr, "skuld-push: channel %s (%s %s at %s), skuld at %s\n", config.channel,
	        config.kind, config.api_version, config.api_url, config.server);
	struct push_worker_figures figures = {0};
	int ret = push_worker_run(&config, &adapter, &stop, &figures, error, sizeof(error));
	if (ret != 0)
		fprintf(stderr, "skuld-push: %s\n", error);
	fprintf(stderr,
	        "skuld-push: pulls %" PRIu64 ", calls %" PRIu64 " (%" PRIu64
	        " throttled), items pushed %" PRIu64 ", acknowledged %" PRIu64 " (%" PRIu64
	        " without a call), left dirty %" PRIu64 ", exceptions %" PRIu64
	        ", mismatches %" PRIu64 "\n",
	        figures.pulls, figures.calls, driver.calls_throttled, figures.pushed, figures.acked,
	        figures.unchanged, figures.retries, figures.exceptions, figures.mismatches);
	shopify_driver_fini(&driver);
	return ret == 0 ? 0 : 1;
}
