/*
 * config.c — defaults, the `key = value` parser and the validation rules of
 * config.h. The table below is the list of keys; docs/OPERATIONS.md repeats
 * it with the reasons behind each default.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conn.h"
#include "directory.h"
#include "log.h"
#include "session.h"
#include "tls.h"

void config_defaults(struct server_config *config)
{
	memset(config, 0, sizeof(*config));
	snprintf(config->listen_host, sizeof(config->listen_host), "127.0.0.1");
	config->listen_port = 7878;
	snprintf(config->data_dir, sizeof(config->data_dir), "./skuld-data");
	config->connections_max = 256;
	config->frame_events_max = SKULD_EVENTS_PER_FRAME_MAX;
	config->frame_small_bytes = 16384;
	config->frame_pool = 16;
	config->replies_max = 64;
	config->reply_bytes = 0;
	config->sessions_max = 4096;
	config->expire_batch = 256;
	config->segment_bytes = LOG_SEGMENT_SIZE_DEFAULT;
	config->write_bytes = LOG_WRITE_SIZE_DEFAULT;
	config->query_limit = SKULD_QUERY_LIMIT_MAX;
	config->query_scan = 65536;
	config->recv_buffers = 256;
	config->recv_buffer_bytes = 16384;
	config->frame_timeout_ms = 10000;
	config->frame_min_rate_bytes = 16384;
	config->stall_timeout_ms = 10000;
	config->idle_timeout_ms = 0;
	config->disk_alarm_percent = 10;
	config->disk_alarm_bytes = 0;
	config->disk_alarm_hours = 24;
	config->snapshot_events = 10ull << 20;
	config->snapshot_interval_s = 300;
	config->snapshot_keep = 2;
	ledger_config_default(&config->ledger);
	config->ledger.batch_events_max = config->frame_events_max;
}

/* Where a key's value goes: a u32 or u64 field, or seconds stored as ns. */
enum key_type {
	KEY_U32,
	KEY_U64,
	KEY_SECONDS_NS,
};

struct key_entry {
	const char *name;
	enum key_type type;
	size_t offset;
	uint64_t min;
	uint64_t max;
};

#define SERVER_KEY(name, type, min, max)                                                           \
	{                                                                                          \
#name, type, offsetof(struct server_config, name), min, max                        \
	}
#define LEDGER_KEY(name, type, min, max)                                                           \
	{                                                                                          \
#name, type,                                                                       \
		        offsetof(struct server_config, ledger) +                                   \
		                offsetof(struct ledger_config, name),                              \
		        min, max                                                                   \
	}

static const struct key_entry keys[] = {
        SERVER_KEY(connections_max, KEY_U32, 1, 1u << 20),
        SERVER_KEY(frame_events_max, KEY_U32, 1, SKULD_EVENTS_PER_FRAME_MAX),
        SERVER_KEY(frame_small_bytes, KEY_U32, 256, SKULD_BODY_SIZE_MAX),
        SERVER_KEY(frame_pool, KEY_U32, 1, 1u << 16),
        SERVER_KEY(replies_max, KEY_U32, 2, 1u << 16),
        SERVER_KEY(reply_bytes, KEY_U32, 0, 1u << 30),
        SERVER_KEY(sessions_max, KEY_U32, 1, 1u << 24),
        SERVER_KEY(expire_batch, KEY_U32, 1, SKULD_EVENTS_PER_FRAME_MAX),
        SERVER_KEY(segment_bytes, KEY_U64, LOG_SEGMENT_SIZE_MIN, LOG_SEGMENT_SIZE_MAX),
        SERVER_KEY(write_bytes, KEY_U32, LOG_BLOCK_SIZE, LOG_WRITE_SIZE_MAX),
        SERVER_KEY(query_limit, KEY_U32, 1, SKULD_QUERY_LIMIT_MAX),
        SERVER_KEY(query_scan, KEY_U32, 1, UINT32_MAX),
        SERVER_KEY(recv_buffers, KEY_U32, 4, 32768),
        SERVER_KEY(recv_buffer_bytes, KEY_U32, 512, 1u << 20),
        SERVER_KEY(frame_timeout_ms, KEY_U32, 1, UINT32_MAX),
        SERVER_KEY(frame_min_rate_bytes, KEY_U32, 1, UINT32_MAX),
        SERVER_KEY(stall_timeout_ms, KEY_U32, 1, UINT32_MAX),
        SERVER_KEY(idle_timeout_ms, KEY_U32, 0, UINT32_MAX),
        SERVER_KEY(disk_alarm_percent, KEY_U32, 0, 99),
        SERVER_KEY(retain_bytes, KEY_U64, 0, UINT64_MAX),
        SERVER_KEY(retain_days, KEY_U32, 0, 100u * 366),
        SERVER_KEY(disk_alarm_bytes, KEY_U64, 0, UINT64_MAX),
        SERVER_KEY(disk_alarm_hours, KEY_U32, 0, 24u * 365),
        SERVER_KEY(snapshot_events, KEY_U64, 0, 1ull << 50),
        SERVER_KEY(snapshot_interval_s, KEY_U32, 0, 7u * 24 * 3600),
        SERVER_KEY(snapshot_keep, KEY_U32, 1, 1000),
        SERVER_KEY(fsync_delay_us, KEY_U32, 0, 1000000),
        LEDGER_KEY(items_max, KEY_U32, 1, UINT32_MAX - 1),
        LEDGER_KEY(locations_max, KEY_U32, 1, UINT32_MAX - 1),
        LEDGER_KEY(channels_max, KEY_U32, 1, UINT32_MAX - 1),
        LEDGER_KEY(stock_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(codes_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(barcodes_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(attributes_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(bundles_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(bundle_components_max, KEY_U32, 1, 64),
        LEDGER_KEY(pool_locations_max, KEY_U32, 1, 1u << 20),
        LEDGER_KEY(channel_buffers_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(listings_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(holds_max, KEY_U32, 1, 1u << 28),
        LEDGER_KEY(closed_holds_max, KEY_U32, 1, 1u << 28),
        LEDGER_KEY(closed_hold_grace_ns, KEY_SECONDS_NS, 1, 100ull * 365 * 24 * 3600),
        LEDGER_KEY(ttl_max_s, KEY_U32, 1, UINT32_MAX),
        LEDGER_KEY(counts_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(transfers_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(keys_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(key_window_ns, KEY_SECONDS_NS, 1, 100ull * 365 * 24 * 3600),
        LEDGER_KEY(chain_events_max, KEY_U32, 1, SKULD_EVENTS_PER_FRAME_MAX),
        LEDGER_KEY(discrepancies_max, KEY_U32, 1, 1u << 30),
        LEDGER_KEY(count_off_percent, KEY_U32, 0, LEDGER_COUNT_OFF_PERCENT_MAX),
        LEDGER_KEY(count_off_units, KEY_U64, 0, 1ull << 53),
};

/* The name a key has in the file: the two time windows are given in seconds. */
static const char *key_file_name(const struct key_entry *entry)
{
	if (strcmp(entry->name, "closed_hold_grace_ns") == 0)
		return "closed_hold_grace_s";
	if (strcmp(entry->name, "key_window_ns") == 0)
		return "key_window_s";
	return entry->name;
}

static int number_parse(const char *text, uint64_t *out)
{
	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	char *end = NULL;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0)
		return -EINVAL;
	uint64_t scale = 1;
	if (*end == 'k' || *end == 'K')
		scale = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		scale = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		scale = 1024 * 1024 * 1024, end++;
	if (*end != '\0' || value > UINT64_MAX / scale)
		return -EINVAL;
	*out = value * scale;
	return 0;
}

int config_set_listen(struct server_config *config, const char *listen)
{
	const char *colon = strrchr(listen, ':');
	if (colon == NULL || colon == listen ||
	    (size_t)(colon - listen) >= sizeof(config->listen_host))
		return -EINVAL;
	uint64_t port = 0;
	if (number_parse(colon + 1, &port) != 0 || port > 65535)
		return -EINVAL;
	memcpy(config->listen_host, listen, (size_t)(colon - listen));
	config->listen_host[colon - listen] = '\0';
	config->listen_port = (uint16_t)port;
	return 0;
}

int config_set(struct server_config *config, const char *key, const char *value, char *error,
               size_t error_size)
{
	if (strcmp(key, "listen") == 0) {
		if (config_set_listen(config, value) != 0) {
			snprintf(error, error_size, "listen: want HOST:PORT, got '%s'", value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "data_dir") == 0) {
		if (strlen(value) + 1 > sizeof(config->data_dir) || value[0] == '\0') {
			snprintf(error, error_size, "data_dir: empty or too long");
			return -EINVAL;
		}
		snprintf(config->data_dir, sizeof(config->data_dir), "%s", value);
		return 0;
	}
	if (strcmp(key, "archive_dir") == 0) {
		if (strlen(value) + 1 > sizeof(config->archive_dir)) {
			snprintf(error, error_size, "archive_dir: too long");
			return -EINVAL;
		}
		snprintf(config->archive_dir, sizeof(config->archive_dir), "%s", value);
		return 0;
	}
	if (strcmp(key, "tls") == 0) {
		static const char *const modes[] = {"off", "on", "required"};
		for (uint32_t mode = 0; mode < 3; mode++) {
			if (strcmp(value, modes[mode]) == 0) {
				config->tls = mode;
				return 0;
			}
		}
		snprintf(error, error_size, "tls: want off, on or required, got '%s'", value);
		return -EINVAL;
	}
	char *path = strcmp(key, "tls_cert") == 0        ? config->tls_cert
	             : strcmp(key, "tls_key") == 0       ? config->tls_key
	             : strcmp(key, "tls_client_ca") == 0 ? config->tls_client_ca
	                                                 : NULL;
	if (path != NULL) {
		if (strlen(value) + 1 > CONFIG_PATH_SIZE || value[0] == '\0') {
			snprintf(error, error_size, "%s: empty or too long", key);
			return -EINVAL;
		}
		snprintf(path, CONFIG_PATH_SIZE, "%s", value);
		return 0;
	}
	if (strcmp(key, "token") == 0) {
		if (!proto_text_valid(value, strnlen(value, SKULD_TOKEN_SIZE + 1), 0) ||
		    strlen(value) > SKULD_TOKEN_SIZE) {
			snprintf(error, error_size, "token: 1..64 printable characters");
			return -EINVAL;
		}
		snprintf(config->token, sizeof(config->token), "%s", value);
		return 0;
	}
	if (strncmp(key, "token.", 6) == 0) {
		struct auth_token token;
		if (auth_token_parse(key + 6, value, &token, error, error_size) != 0)
			return -EINVAL;
		int ret = auth_table_add(&config->tokens, &token);
		if (ret == -EEXIST)
			snprintf(error, error_size, "%s: name or secret used by another token",
			         key);
		else if (ret != 0)
			snprintf(error, error_size, "%s: more than %u tokens", key,
			         AUTH_TOKENS_MAX);
		return ret != 0 ? -EINVAL : 0;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key_entry *entry = &keys[i];
		if (strcmp(key, key_file_name(entry)) != 0)
			continue;
		uint64_t number = 0;
		if (number_parse(value, &number) != 0 || number < entry->min ||
		    number > entry->max) {
			snprintf(error, error_size, "%s: want a number in %llu..%llu, got '%s'",
			         key, (unsigned long long)entry->min,
			         (unsigned long long)entry->max, value);
			return -EINVAL;
		}
		char *field = (char *)config + entry->offset;
		if (entry->type == KEY_U32) {
			uint32_t narrow = (uint32_t)number;
			memcpy(field, &narrow, sizeof(narrow));
		} else if (entry->type == KEY_U64) {
			memcpy(field, &number, sizeof(number));
		} else {
			uint64_t ns = number * 1000000000ull;
			memcpy(field, &ns, sizeof(ns));
		}
		return 0;
	}
	snprintf(error, error_size, "unknown key '%s'", key);
	return -EINVAL;
}

/* Trims spaces at both ends in place; returns the start. */
static char *trim(char *text)
{
	while (isspace((unsigned char)*text))
		text++;
	size_t length = strlen(text);
	while (length > 0 && isspace((unsigned char)text[length - 1]))
		text[--length] = '\0';
	return text;
}

int config_load(struct server_config *config, const char *path, char *error, size_t error_size)
{
	FILE *file = fopen(path, "r");
	if (file == NULL) {
		int ret = -errno;
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
		return ret;
	}
	char line[1024];
	char why[CONFIG_ERROR_SIZE];
	int ret = 0;
	for (unsigned number = 1; ret == 0 && fgets(line, sizeof(line), file) != NULL; number++) {
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *text = trim(line);
		if (*text == '\0')
			continue;
		char *equals = strchr(text, '=');
		if (equals == NULL) {
			snprintf(error, error_size, "%s:%u: want 'key = value'", path, number);
			ret = -EINVAL;
			break;
		}
		*equals = '\0';
		char *key = trim(text);
		char *value = trim(equals + 1);
		if (config_set(config, key, value, why, sizeof(why)) != 0) {
			snprintf(error, error_size, "%s:%u: %s", path, number, why);
			ret = -EINVAL;
		}
	}
	struct stat status;
	if (ret == 0 && config_has_tokens(config) && fstat(fileno(file), &status) != 0) {
		ret = -errno;
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
	} else if (ret == 0 && config_has_tokens(config) && (status.st_mode & 077) != 0) {
		snprintf(error, error_size,
		         "%s holds tokens and is readable by others (mode %03o): chmod 600 it",
		         path, (unsigned)(status.st_mode & 0777));
		ret = -EPERM;
	}
	fclose(file);
	return ret;
}

bool config_has_tokens(const struct server_config *config)
{
	return config->token[0] != '\0' || config->tokens.count > 0;
}

uint32_t config_reply_frame_max(const struct server_config *config)
{
	uint64_t body = (uint64_t)config->frame_events_max * SKULD_RESULT_SIZE;
	uint64_t query = (uint64_t)config->query_limit * sizeof(struct skuld_level_record);
	uint64_t lookup = (uint64_t)SKULD_LOOKUP_MATCHES_MAX * sizeof(struct skuld_lookup_match);
	uint64_t largest = body;
	largest = query > largest ? query : largest;
	largest = lookup > largest ? lookup : largest;
	largest = sizeof(struct skuld_stats) > largest ? sizeof(struct skuld_stats) : largest;
	return (uint32_t)(SKULD_HEADER_SIZE + largest);
}

uint32_t config_body_max(const struct server_config *config)
{
	uint32_t events = config->frame_events_max * SKULD_EVENT_SIZE;
	return events > sizeof(struct skuld_register_request)
	               ? events
	               : sizeof(struct skuld_register_request);
}

int config_finish(struct server_config *config, char *error, size_t error_size)
{
	config->ledger.batch_events_max = config->frame_events_max > config->expire_batch
	                                          ? config->frame_events_max
	                                          : config->expire_batch;
	uint32_t reply_max = config_reply_frame_max(config);
	if (config->reply_bytes == 0)
		config->reply_bytes = reply_max + CONN_ERROR_RESERVE;
	if (config->reply_bytes < reply_max + CONN_ERROR_RESERVE) {
		snprintf(error, error_size, "reply_bytes: at least %u for these settings",
		         reply_max + CONN_ERROR_RESERVE);
		return -EINVAL;
	}
	if (config->segment_bytes % LOG_BLOCK_SIZE != 0 ||
	    config->write_bytes % LOG_BLOCK_SIZE != 0) {
		snprintf(error, error_size, "segment_bytes and write_bytes: multiples of %u",
		         LOG_BLOCK_SIZE);
		return -EINVAL;
	}
	if (config->write_bytes > config->segment_bytes - LOG_BLOCK_SIZE) {
		snprintf(error, error_size, "write_bytes: at most segment_bytes - %u",
		         LOG_BLOCK_SIZE);
		return -EINVAL;
	}
	uint64_t record_max =
	        LOG_WRITE_HEADER_SIZE + log_record_size(config->ledger.batch_events_max);
	if (record_max > config->write_bytes) {
		snprintf(error, error_size,
		         "write_bytes: at least %llu to hold a record of %u events",
		         (unsigned long long)record_max, config->ledger.batch_events_max);
		return -EINVAL;
	}
	if ((config->recv_buffers & (config->recv_buffers - 1)) != 0) {
		snprintf(error, error_size, "recv_buffers: a power of two");
		return -EINVAL;
	}
	if (config->frame_small_bytes % 8 != 0) {
		snprintf(error, error_size, "frame_small_bytes: a multiple of 8");
		return -EINVAL;
	}
	if (config->tls != CONFIG_TLS_OFF &&
	    (config->tls_cert[0] == '\0' || config->tls_key[0] == '\0')) {
		snprintf(error, error_size, "tls = %s needs tls_cert and tls_key",
		         config->tls == CONFIG_TLS_ON ? "on" : "required");
		return -EINVAL;
	}
	if (ledger_memory_bytes(&config->ledger) == 0) {
		snprintf(error, error_size, "ledger capacities are not valid together");
		return -EINVAL;
	}
	return 0;
}

uint64_t config_memory_bytes(const struct server_config *config)
{
	uint64_t per_connection = conn_memory_bytes(config->frame_small_bytes, config->reply_bytes,
	                                            config->replies_max);
	if (config->tls != CONFIG_TLS_OFF)
		per_connection += TLS_SESSION_BYTES; /* tls.h: buffers and OpenSSL's state */
	uint64_t bytes = (uint64_t)config->connections_max * per_connection;
	bytes += (uint64_t)config->frame_pool * config_body_max(config);
	bytes += (uint64_t)config->recv_buffers * config->recv_buffer_bytes;
	bytes += 2ull * config->write_bytes;
	bytes += ledger_memory_bytes(&config->ledger);
	bytes += session_table_bytes(config->sessions_max);
	bytes += directory_bytes(config->ledger.locations_max, config->ledger.channels_max);
	bytes += sizeof(struct auth_table); /* the service's copy of the tokens */
	/* The service's scratch: one reply frame, one log record read back. */
	bytes += config_reply_frame_max(config);
	bytes += log_record_size(config->ledger.batch_events_max);
	return bytes;
}

struct service_config config_service(const struct server_config *config, const char *log_dir)
{
	return (struct service_config){
	        .ledger = config->ledger,
	        .sessions_max = config->sessions_max,
	        .events_max = config->frame_events_max,
	        .expire_batch = config->expire_batch,
	        .query_limit = config->query_limit,
	        .query_scan = config->query_scan,
	        .write_size_max = config->write_bytes,
	        .log_dir = log_dir,
	        .archive_dir = config->archive_dir[0] != '\0' ? config->archive_dir : NULL,
	        .token = config->token,
	        .tokens = &config->tokens,
	        .memory_bytes = config_memory_bytes(config),
	};
}
