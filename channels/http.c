/*
 * http.c — libcurl behind http.h. The only file of skuld that includes curl.
 */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backoff.h"

struct http_client {
	CURL *curl;
	char *body; /* HTTP_BODY_MAX + 1 bytes */
	size_t body_size;
	int overflow; /* the answer did not fit */
	uint64_t retry_after_ms;
	char request_id[HTTP_REQUEST_ID];
	char rate_limit[32];
	char error[CURL_ERROR_SIZE];
};

int http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

struct http_client *http_client_create(void)
{
	struct http_client *client = calloc(1, sizeof(*client));
	if (client == NULL)
		return NULL;
	client->body = malloc(HTTP_BODY_MAX + 1);
	client->curl = curl_easy_init();
	if (client->body == NULL || client->curl == NULL) {
		http_client_destroy(client);
		return NULL;
	}
	return client;
}

void http_client_destroy(struct http_client *client)
{
	if (client == NULL)
		return;
	if (client->curl != NULL)
		curl_easy_cleanup(client->curl);
	free(client->body);
	free(client);
}

static size_t body_write(char *data, size_t size, size_t count, void *context)
{
	struct http_client *client = context;
	size_t bytes = size * count;
	if (bytes > HTTP_BODY_MAX - client->body_size) {
		client->overflow = 1;
		return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
	}
	memcpy(client->body + client->body_size, data, bytes);
	client->body_size += bytes;
	return bytes;
}

/* Copies a header's value (trimmed) when line is "name: value". */
static int header_value(const char *line, size_t size, const char *name, char *out, size_t out_size)
{
	size_t length = strlen(name);
	if (size <= length || line[length] != ':' || strncasecmp(line, name, length) != 0)
		return 0;
	const char *value = line + length + 1;
	const char *end = line + size;
	while (value < end && (*value == ' ' || *value == '\t'))
		value++;
	while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	size_t n = (size_t)(end - value) < out_size - 1 ? (size_t)(end - value) : out_size - 1;
	memcpy(out, value, n);
	out[n] = '\0';
	return 1;
}

static size_t header_read(char *line, size_t size, size_t count, void *context)
{
	struct http_client *client = context;
	size_t bytes = size * count;
	char value[64];
	if (header_value(line, bytes, "Retry-After", value, sizeof(value)))
		client->retry_after_ms = backoff_retry_after_ms(value);
	/* Amazon's rate of the operation, which its driver's buckets learn. */
	header_value(line, bytes, "x-amzn-RateLimit-Limit", client->rate_limit,
	             sizeof(client->rate_limit));
	if (!header_value(line, bytes, "x-request-id", client->request_id,
	                  sizeof(client->request_id)))
		header_value(line, bytes, "x-amzn-RequestId", client->request_id,
		             sizeof(client->request_id));
	return bytes;
}

static void call_reset(struct http_client *client, struct http_response *response)
{
	client->body_size = 0;
	client->overflow = 0;
	client->retry_after_ms = 0;
	client->request_id[0] = '\0';
	client->rate_limit[0] = '\0';
	client->error[0] = '\0';
	memset(response, 0, sizeof(*response));
}

static struct curl_slist *headers_build(const struct http_request *request)
{
	struct curl_slist *list = NULL;
	for (uint32_t i = 0; i < HTTP_HEADERS_MAX && request->headers[i] != NULL; i++) {
		struct curl_slist *next = curl_slist_append(list, request->headers[i]);
		if (next == NULL) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = next;
	}
	/* No "Expect: 100-continue" round trip before a body. */
	struct curl_slist *next = curl_slist_append(list, "Expect:");
	if (next == NULL)
		curl_slist_free_all(list);
	return next;
}

int http_call(struct http_client *client, const struct http_request *request,
              struct http_response *response)
{
	call_reset(client, response);
	struct curl_slist *headers = headers_build(request);
	if (headers == NULL) {
		snprintf(response->error, sizeof(response->error), "out of memory");
		return -1;
	}
	CURL *curl = client->curl;
	curl_easy_reset(curl); /* keeps the connection cache: keep-alive survives */
	curl_easy_setopt(curl, CURLOPT_URL, request->url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request->method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (request->body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_size);
	} else if (strcmp(request->method, "GET") == 0) {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)request->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, client);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_read);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, client);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, client->error);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode code = curl_easy_perform(curl);
	curl_slist_free_all(headers);
	curl_off_t elapsed = 0;
	curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &elapsed);
	response->elapsed_us = (uint64_t)elapsed;
	if (code != CURLE_OK) {
		snprintf(response->error, sizeof(response->error), "%s",
		         client->overflow   ? "the answer is larger than HTTP_BODY_MAX"
		         : client->error[0] ? client->error
		                            : curl_easy_strerror(code));
		return -1;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
	client->body[client->body_size] = '\0';
	response->body = client->body;
	response->body_size = client->body_size;
	response->retry_after_ms = client->retry_after_ms;
	memcpy(response->request_id, client->request_id, sizeof(response->request_id));
	memcpy(response->rate_limit, client->rate_limit, sizeof(response->rate_limit));
	return 0;
}
