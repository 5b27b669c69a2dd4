/*
 * auth.c — the token syntax, the constant-time match and the role rules of
 * auth.h. Pure: no I/O, no ledger.
 */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_LENGTH_MIN 16u

struct role_entry {
	const char *name;
	uint32_t role;
	const char *binding; /* "location", "channel" or NULL */
};

static const struct role_entry roles[] = {
        {"admin", AUTH_ROLE_ADMIN, NULL},     {"read", AUTH_ROLE_READ, NULL},
        {"till", AUTH_ROLE_TILL, "location"}, {"gateway", AUTH_ROLE_GATEWAY, "channel"},
        {"push", AUTH_ROLE_PUSH, "channel"},
};

const char *auth_role_name(uint32_t role)
{
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (roles[i].role == role)
			return roles[i].name;
	}
	return "?";
}

static bool name_valid(const char *name)
{
	size_t length = strlen(name);
	if (length == 0 || length >= AUTH_NAME_SIZE)
		return false;
	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '_' && c != '-')
			return false;
	}
	return true;
}

/* Splits the next word off *text (words are separated by spaces or tabs);
 * returns it NUL-terminated, or NULL when none is left. */
static char *word_next(char **text)
{
	char *at = *text;
	while (*at == ' ' || *at == '\t')
		at++;
	if (*at == '\0')
		return NULL;
	char *word = at;
	while (*at != '\0' && *at != ' ' && *at != '\t')
		at++;
	if (*at != '\0')
		*at++ = '\0';
	*text = at;
	return word;
}

static int binding_parse(const char *text, const struct role_entry *role, struct auth_token *out,
                         char *error, size_t error_size)
{
	size_t key_length = strlen(role->binding);
	if (strncmp(text, role->binding, key_length) != 0 || text[key_length] != '=') {
		snprintf(error, error_size, "a %s token takes %s=<code or id>", role->name,
		         role->binding);
		return -EINVAL;
	}
	const char *value = text + key_length + 1;
	size_t length = strlen(value);
	if (length == 0 || length > SKULD_CODE_SIZE || !proto_text_valid(value, length, 0)) {
		snprintf(error, error_size, "%s: 1..%u printable characters", role->binding,
		         SKULD_CODE_SIZE);
		return -EINVAL;
	}
	bool digits = true;
	for (size_t i = 0; i < length; i++)
		digits = digits && isdigit((unsigned char)value[i]);
	if (digits) {
		char *end = NULL;
		unsigned long long id = strtoull(value, &end, 10);
		if (id == 0 || id >= UINT32_MAX) {
			snprintf(error, error_size, "%s: an id in 1..%u", role->binding,
			         UINT32_MAX - 1);
			return -EINVAL;
		}
		out->bind_id = (uint32_t)id;
		return 0;
	}
	memcpy(out->bind_code, value, length);
	return 0;
}

int auth_token_parse(const char *name, const char *value, struct auth_token *out, char *error,
                     size_t error_size)
{
	memset(out, 0, sizeof(*out));
	if (!name_valid(name)) {
		snprintf(error, error_size, "token.<name>: 1..%u letters, digits, '_' or '-'",
		         AUTH_NAME_SIZE - 1);
		return -EINVAL;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	char copy[256];
	if (strlen(value) >= sizeof(copy)) {
		snprintf(error, error_size, "token.%s: too long", name);
		return -EINVAL;
	}
	snprintf(copy, sizeof(copy), "%s", value);
	char *rest = copy;
	const char *secret = word_next(&rest);
	const char *role_text = word_next(&rest);
	const char *binding = word_next(&rest);
	if (secret == NULL || role_text == NULL || word_next(&rest) != NULL) {
		snprintf(error, error_size,
		         "token.%s: want '<secret> <role> [location=<code|id>|channel=<name|id>]'",
		         name);
		return -EINVAL;
	}
	size_t length = strlen(secret);
	if (length < SECRET_LENGTH_MIN || length > SKULD_TOKEN_SIZE ||
	    !proto_text_valid(secret, length, 0)) {
		snprintf(error, error_size, "token.%s: a secret of %u..%u printable characters",
		         name, SECRET_LENGTH_MIN, SKULD_TOKEN_SIZE);
		return -EINVAL;
	}
	memcpy(out->secret, secret, length);
	const struct role_entry *role = NULL;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(role_text, roles[i].name) == 0)
			role = &roles[i];
	}
	if (role == NULL) {
		snprintf(error, error_size,
		         "token.%s: role '%s' is not one of admin, read, till, gateway, push", name,
		         role_text);
		return -EINVAL;
	}
	out->role = role->role;
	if (role->binding == NULL && binding != NULL) {
		snprintf(error, error_size, "token.%s: a %s token takes no binding", name,
		         role->name);
		return -EINVAL;
	}
	if (role->binding != NULL && binding == NULL) {
		snprintf(error, error_size, "token.%s: a %s token takes %s=<code or id>", name,
		         role->name, role->binding);
		return -EINVAL;
	}
	if (binding != NULL) {
		char why[160];
		if (binding_parse(binding, role, out, why, sizeof(why)) != 0) {
			snprintf(error, error_size, "token.%s: %s", name, why);
			return -EINVAL;
		}
	}
	return 0;
}

int auth_table_add(struct auth_table *table, const struct auth_token *token)
{
	for (uint32_t i = 0; i < table->count; i++) {
		if (strcmp(table->tokens[i].name, token->name) == 0 ||
		    memcmp(table->tokens[i].secret, token->secret, SKULD_TOKEN_SIZE) == 0)
			return -EEXIST;
	}
	if (table->count == AUTH_TOKENS_MAX)
		return -ENOSPC;
	table->tokens[table->count++] = *token;
	return 0;
}

int auth_table_match(const struct auth_table *table, const char *secret)
{
	int found = -1;
	for (uint32_t i = 0; i < table->count; i++) {
		const volatile unsigned char *known =
		        (const volatile unsigned char *)table->tokens[i].secret;
		unsigned difference = 0;
		for (uint32_t byte = 0; byte < SKULD_TOKEN_SIZE; byte++)
			difference |= known[byte] ^ (unsigned char)secret[byte];
		/* mask: all ones when equal, without a branch on the bytes. */
		unsigned equal = ((difference | (0u - difference)) >> 31) ^ 1u;
		int mask = -(int)equal;
		found = (found & ~mask) | ((int)i & mask);
	}
	return found;
}

bool auth_event_needs_hold(const struct auth_grant *grant, const struct skuld_event *event)
{
	return grant->role == AUTH_ROLE_GATEWAY &&
	       (event->kind == SKULD_COMMIT || event->kind == SKULD_RELEASE ||
	        event->kind == SKULD_EXTEND);
}

bool auth_event_needs_pool(const struct auth_grant *grant, const struct skuld_event *event)
{
	return grant->role == AUTH_ROLE_GATEWAY &&
	       (event->kind == SKULD_SALE || event->kind == SKULD_RETURN);
}

static uint32_t verdict(bool allowed)
{
	return allowed ? SKULD_OK : SKULD_DENIED;
}

uint32_t auth_event(const struct auth_grant *grant, const struct skuld_event *event,
                    const struct auth_facts *facts)
{
	switch (grant->role) {
	case AUTH_ROLE_ADMIN:
		return SKULD_OK;
	case AUTH_ROLE_TILL:
		if (event->kind != SKULD_SALE && event->kind != SKULD_RETURN &&
		    event->kind != SKULD_COUNT_OPEN && event->kind != SKULD_COUNT_CLOSE)
			return SKULD_DENIED;
		return verdict(grant->location != 0 && event->location == grant->location);
	case AUTH_ROLE_GATEWAY:
		if (grant->channel == 0)
			return SKULD_DENIED;
		if (event->kind == SKULD_RESERVE)
			return verdict(event->channel == grant->channel && event->location == 0);
		if (auth_event_needs_hold(grant, event))
			return verdict(!facts->hold_known || facts->hold_channel == grant->channel);
		if (auth_event_needs_pool(grant, event))
			return verdict(facts->location_in_pool);
		return SKULD_DENIED;
	case AUTH_ROLE_PUSH:
		if (event->kind != SKULD_PUSH_ACK && event->kind != SKULD_PUSH_EXCEPTION)
			return SKULD_DENIED;
		return verdict(grant->channel != 0 && event->channel == grant->channel);
	case AUTH_ROLE_READ:
	default:
		return SKULD_DENIED;
	}
}

static bool query_of_channel(uint16_t kind)
{
	return kind == SKULD_QUERY_CHANNEL || kind == SKULD_QUERY_PUSH ||
	       kind == SKULD_QUERY_PUSH_ALL || kind == SKULD_QUERY_LISTING ||
	       kind == SKULD_QUERY_EXCEPTIONS || kind == SKULD_QUERY_CHANNEL_PUSH;
}

uint32_t auth_read(const struct auth_grant *grant, uint8_t operation,
                   const struct skuld_query *query)
{
	if (grant->role == AUTH_ROLE_NONE)
		return SKULD_ERR_DENIED;
	if (grant->role != AUTH_ROLE_PUSH || operation != SKULD_OP_QUERY)
		return SKULD_OK;
	if (query == NULL || !query_of_channel(query->kind))
		return SKULD_ERR_DENIED;
	return grant->channel != 0 && query->channel == grant->channel ? SKULD_OK
	                                                               : SKULD_ERR_DENIED;
}
