/*
 * chain.c — the SHA-256 chain head (chain.h), on OpenSSL's libcrypto.
 *
 * Owns: one EVP digest context and the SHA-256 method fetched once at
 * creation (OpenSSL 3 looks a method up on every implicit fetch; fetching
 * it once keeps the per-record cost at init + two updates + final).
 *
 * Invariants: the only file of skuld that includes OpenSSL. head is always
 * a complete SHA-256 output (or zeros for head_0); a failed libcrypto call
 * leaves it unchanged and is reported as -EIO.
 */
#include "chain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct chain {
	EVP_MD *sha256;
	EVP_MD_CTX *context;
	struct chain_head head;
};

int chain_create(struct chain **out)
{
	*out = NULL;
	struct chain *chain = calloc(1, sizeof(*chain));
	if (chain == NULL)
		return -ENOMEM;
	chain->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	chain->context = EVP_MD_CTX_new();
	if (chain->sha256 == NULL || chain->context == NULL) {
		int ret = chain->context == NULL ? -ENOMEM : -EIO;
		chain_destroy(chain);
		return ret;
	}
	*out = chain;
	return 0;
}

void chain_destroy(struct chain *chain)
{
	if (chain == NULL)
		return;
	EVP_MD_CTX_free(chain->context);
	EVP_MD_free(chain->sha256);
	free(chain);
}

void chain_reset(struct chain *chain, const struct chain_head *head)
{
	if (head != NULL)
		chain->head = *head;
	else
		memset(&chain->head, 0, sizeof(chain->head));
}

int chain_add(struct chain *chain, const void *bytes, size_t size, uint64_t sequence_last)
{
	uint8_t next[EVP_MAX_MD_SIZE];
	unsigned int length = 0;
	if (EVP_DigestInit_ex2(chain->context, chain->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(chain->context, chain->head.hash, CHAIN_HASH_SIZE) != 1 ||
	    EVP_DigestUpdate(chain->context, bytes, size) != 1 ||
	    EVP_DigestFinal_ex(chain->context, next, &length) != 1 || length != CHAIN_HASH_SIZE)
		return -EIO;
	memcpy(chain->head.hash, next, CHAIN_HASH_SIZE);
	chain->head.sequence = sequence_last;
	return 0;
}

int chain_add_record(struct chain *chain, const struct log_record *record)
{
	const struct log_record_header *header = record->header;
	/* The reader checked that event_first + count does not overflow. The
	 * last event, or for a record of 0 events the one before it. */
	uint64_t next = header->event_first + header->count;
	return chain_add(chain, header, log_record_size(header->count), next > 0 ? next - 1 : 0);
}

void chain_head(const struct chain *chain, struct chain_head *out)
{
	*out = chain->head;
}

void chain_format(const struct chain_head *head, char text[CHAIN_TEXT_SIZE])
{
	static const char digits[] = "0123456789abcdef";
	int used = snprintf(text, CHAIN_TEXT_SIZE, "%" PRIu64 ":", head->sequence);
	char *at = text + used;
	for (uint32_t i = 0; i < CHAIN_HASH_SIZE; i++) {
		*at++ = digits[head->hash[i] >> 4];
		*at++ = digits[head->hash[i] & 15];
	}
	*at = '\0';
}

static int hex_value(char digit)
{
	if (digit >= '0' && digit <= '9')
		return digit - '0';
	if (digit >= 'a' && digit <= 'f')
		return digit - 'a' + 10;
	if (digit >= 'A' && digit <= 'F')
		return digit - 'A' + 10;
	return -1;
}

int chain_parse(const char *text, struct chain_head *out)
{
	uint64_t sequence = 0;
	const char *at = text;
	if (*at < '0' || *at > '9')
		return -EINVAL;
	for (; *at >= '0' && *at <= '9'; at++) {
		uint64_t digit = (uint64_t)(*at - '0');
		if (sequence > (UINT64_MAX - digit) / 10)
			return -EINVAL;
		sequence = sequence * 10 + digit;
	}
	if (*at++ != ':' || strlen(at) != 2 * CHAIN_HASH_SIZE)
		return -EINVAL;
	struct chain_head head = {.sequence = sequence};
	for (uint32_t i = 0; i < CHAIN_HASH_SIZE; i++) {
		int high = hex_value(at[2 * i]);
		int low = hex_value(at[2 * i + 1]);
		if (high < 0 || low < 0)
			return -EINVAL;
		head.hash[i] = (uint8_t)(high << 4 | low);
	}
	*out = head;
	return 0;
}

bool chain_head_equal(const struct chain_head *a, const struct chain_head *b)
{
	return a->sequence == b->sequence && memcmp(a->hash, b->hash, CHAIN_HASH_SIZE) == 0;
}
