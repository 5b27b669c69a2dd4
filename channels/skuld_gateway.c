/*
 * skuld_gateway.c — the skuld-gateway program: an HTTP server for a
 * channel's order webhooks (libmicrohttpd; the only file that includes it)
 * in front of the gateway core (gateway.h). docs/GATEWAY.md.
 *
 *   skuld-gateway --config FILE
 *
 * With poll_s set, the main loop also runs the safety-net orders poll
 * (gateway_poll.h), or with kind = amazon the Amazon orders poll
 * (gateway_amazon.h), the only way Amazon's orders come in: their HTTP
 * calls are made outside the gateway's lock, their actions applied under it.
 *
 * Routes: POST /webhooks/shopify or, with kind = square, POST
 * /webhooks/square (a delivery: 200, 400, 401, 413, 503; none with kind =
 * amazon),
 * GET /pending (the spooled actions as JSON), GET /health. Prints
 * "skuld-gateway: listening on HOST:PORT" once it accepts, and its figures
 * on stderr when SIGINT or SIGTERM stops it (exit 0). Exit status 2: a bad
 * command line or configuration; 1: it could not start.
 *
 * One request at a time (libmicrohttpd's internal thread, one connection
 * served at once), so deliveries reach the ledger in the order received.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "gateway.h"
#include "gateway_amazon.h"
#include "gateway_poll.h"
#include "http.h"

#define BODY_MAX (4u << 20) /* larger deliveries are refused (413) */

static volatile sig_atomic_t stop;
static struct gateway_config config;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the gateway: one caller */

/* The poll's actions go through the same applier as the webhooks, under the
 * same lock. */
static int poll_apply(void *context, const struct gateway_action *actions, uint32_t count)
{
	pthread_mutex_lock(&lock);
	int ret = gateway_apply(context, actions, count);
	pthread_mutex_unlock(&lock);
	return ret;
}

static uint64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static void on_signal(int signal_number)
{
	(void)signal_number;
	stop = 1;
}

struct request {
	char *body;
	size_t size;
	int too_large;
};

static enum MHD_Result reply(struct MHD_Connection *connection, unsigned status, const char *text)
{
	struct MHD_Response *response =
	        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (response == NULL)
		return MHD_NO;
	MHD_add_response_header(response, "Content-Type", "application/json");
	enum MHD_Result result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result on_request(void *context, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
	(void)version;
	struct gateway *gateway = context;
	struct request *request = *state;
	if (request == NULL) {
		request = calloc(1, sizeof(*request));
		if (request == NULL)
			return MHD_NO;
		*state = request;
		return MHD_YES;
	}
	if (*data_size > 0) {
		if (request->size + *data_size > BODY_MAX) {
			request->too_large = 1;
		} else {
			char *grown = realloc(request->body, request->size + *data_size + 1);
			if (grown == NULL)
				return MHD_NO;
			memcpy(grown + request->size, data, *data_size);
			request->body = grown;
			request->size += *data_size;
			request->body[request->size] = '\0';
		}
		*data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0)
		return reply(connection, MHD_HTTP_OK, "{\"ok\":true}");
	if (strcmp(method, "GET") == 0 && strcmp(url, "/pending") == 0) {
		pthread_mutex_lock(&lock);
		char *pending = gateway_pending_json(gateway);
		pthread_mutex_unlock(&lock);
		enum MHD_Result result = reply(
		        connection, pending != NULL ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR,
		        pending != NULL ? pending : "{}");
		free(pending);
		return result;
	}
	int square = strcmp(config.kind, "square") == 0;
	if (strcmp(method, "POST") != 0 || strcmp(config.kind, "amazon") == 0 ||
	    strcmp(url, square ? "/webhooks/square" : "/webhooks/shopify") != 0)
		return reply(connection, MHD_HTTP_NOT_FOUND, "{\"error\":\"no such route\"}");
	if (request->too_large)
		return reply(connection, 413, "{\"error\":\"body too large\"}");
	/* Square names the event in the body (gateway_deliver reads it). */
	const char *topic = square ? NULL
	                           : MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
	                                                         "X-Shopify-Topic");
	const char *delivery = square ? NULL
	                              : MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
	                                                            "X-Shopify-Webhook-Id");
	const char *signature = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
	                                                    square ? "x-square-hmacsha256-signature"
	                                                           : "X-Shopify-Hmac-SHA256");
	pthread_mutex_lock(&lock);
	int status = gateway_deliver(gateway, topic, delivery, signature,
	                             request->body != NULL ? request->body : "", request->size);
	pthread_mutex_unlock(&lock);
	const char *text = status == 200   ? "{\"ok\":true}"
	                   : status == 401 ? "{\"error\":\"signature\"}"
	                   : status == 400
	                           ? "{\"error\":\"not a delivery this gateway reads\"}"
	                           : "{\"error\":\"the ledger did not answer; deliver again\"}";
	return reply(connection, (unsigned)status, text);
}

static void on_completed(void *context, struct MHD_Connection *connection, void **state,
                         enum MHD_RequestTerminationCode code)
{
	(void)context;
	(void)connection;
	(void)code;
	struct request *request = *state;
	if (request != NULL) {
		free(request->body);
		free(request);
	}
	*state = NULL;
}

static int listen_address(const char *text, struct sockaddr_in *address)
{
	char host[64];
	unsigned port = 0;
	const char *colon = strrchr(text, ':');
	if (colon == NULL || (size_t)(colon - text) >= sizeof(host) ||
	    sscanf(colon + 1, "%u", &port) != 1 || port > 65535)
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
	memset(address, 0, sizeof(*address));
	address->sin_family = AF_INET;
	address->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &address->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--config") != 0) {
		fprintf(stderr, "usage: skuld-gateway --config FILE\n");
		return 2;
	}
	char error[512] = "";
	struct sockaddr_in address;
	if (gateway_config_read(&config, argv[2], error, sizeof(error)) != 0) {
		fprintf(stderr, "skuld-gateway: %s\n", error);
		return 2;
	}
	if (listen_address(config.listen, &address) != 0) {
		fprintf(stderr, "skuld-gateway: listen %s is not IPv4-ADDRESS:PORT\n",
		        config.listen);
		return 2;
	}
	struct sigaction action = {.sa_handler = on_signal};
	sigemptyset(&action.sa_mask);
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct gateway *gateway = gateway_open(&config, &stop, error, sizeof(error));
	if (gateway == NULL) {
		if (stop)
			return 0;
		fprintf(stderr, "skuld-gateway: %s\n", error);
		return 1;
	}
	struct gateway_poll *poll = NULL;
	struct gateway_amazon *amazon = NULL;
	if (config.poll_s > 0) {
		int is_amazon = strcmp(config.kind, "amazon") == 0;
		if (http_global_init() != 0)
			snprintf(error, sizeof(error), "libcurl did not start");
		else if (is_amazon)
			amazon = gateway_amazon_open(&config, (uint64_t)time(NULL), error,
			                             sizeof(error));
		else
			poll = gateway_poll_open(&config, (uint64_t)time(NULL), error,
			                         sizeof(error));
		if (poll == NULL && amazon == NULL) {
			fprintf(stderr, "skuld-gateway: poll: %s\n", error);
			gateway_close(gateway);
			return 1;
		}
	}
	struct MHD_Daemon *daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
	        gateway, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (daemon == NULL) {
		fprintf(stderr, "skuld-gateway: cannot listen on %s\n", config.listen);
		gateway_poll_close(poll);
		gateway_amazon_close(amazon);
		gateway_close(gateway);
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	printf("skuld-gateway: listening on %.*s:%u\n",
	       (int)(strrchr(config.listen, ':') - config.listen), config.listen,
	       info != NULL ? info->port : 0);
	fflush(stdout);
	uint64_t waited_ms = 0;
	while (!stop) {
		nanosleep(&(struct timespec){0, 100000000}, NULL);
		waited_ms += 100;
		if (waited_ms >= (uint64_t)config.retry_s * 1000) {
			waited_ms = 0;
			pthread_mutex_lock(&lock);
			gateway_retry(gateway);
			pthread_mutex_unlock(&lock);
		}
		/* One call at most, made without the lock: webhooks go on meanwhile. */
		if (poll != NULL && !stop)
			gateway_poll_step(poll, monotonic_ns(), poll_apply, gateway);
		if (amazon != NULL && !stop)
			gateway_amazon_step(amazon, monotonic_ns(), poll_apply, gateway);
	}
	MHD_stop_daemon(daemon);
	if (poll != NULL) {
		const struct gateway_poll_figures *polled = gateway_poll_figures(poll);
		fprintf(stderr,
		        "skuld-gateway: poll: passes %" PRIu64 ", calls %" PRIu64 " (%" PRIu64
		        " throttled, %" PRIu64 " failed), orders %" PRIu64
		        ", pages not applied %" PRIu64 ", skipped %" PRIu64 "\n",
		        polled->passes, polled->calls, polled->throttled, polled->failed,
		        polled->orders, polled->unapplied, polled->skipped);
		gateway_poll_close(poll);
	}
	if (amazon != NULL) {
		const struct gateway_amazon_figures *polled = gateway_amazon_figures(amazon);
		fprintf(stderr,
		        "skuld-gateway: amazon: passes %" PRIu64 ", calls %" PRIu64 " (%" PRIu64
		        " throttled, %" PRIu64 " failed), orders %" PRIu64
		        ", orders not applied %" PRIu64 ", skipped %" PRIu64 "\n",
		        polled->passes, polled->calls, polled->throttled, polled->failed,
		        polled->orders, polled->unapplied, polled->skipped);
		gateway_amazon_close(amazon);
	}
	const struct gateway_figures *figures = gateway_figures(gateway);
	fprintf(stderr,
	        "skuld-gateway: deliveries %" PRIu64 " (%" PRIu64 " unverified, %" PRIu64
	        " duplicates, %" PRIu64 " malformed, %" PRIu64
	        " answered 503), actions applied %" PRIu64 ", already applied %" PRIu64
	        ", spooled %" PRIu64 ", stale %" PRIu64 ", holds committed %" PRIu64
	        ", holds gone (sold) %" PRIu64 "\n",
	        figures->deliveries, figures->unverified, figures->duplicates, figures->malformed,
	        figures->unavailable, figures->applied, figures->replayed, figures->spooled,
	        figures->stale, figures->holds_committed, figures->holds_gone);
	gateway_close(gateway);
	return 0;
}
