/*
 * auth.h — tokens and roles: who may post which event and ask which query
 * (docs/OPERATIONS.md "Tokens and roles", docs/PROTOCOL.md section 8).
 *
 * Owns: the token table read from the configuration (`token.<name> =
 * <secret> <role> [location=<code|id>|channel=<name|id>]`), the
 * constant-time match of a REGISTER token against it, and the pure rules
 * of each role. No I/O, no clock, no ledger: the service hands in what the
 * ledger knows (a hold's channel, pool membership) as plain facts.
 *
 * Roles:
 *   admin    everything.
 *   read     queries, look-ups and figures only.
 *   till     SALE, RETURN, COUNT_OPEN, COUNT_CLOSE at its location; reads.
 *   gateway  RESERVE against its channel's pool; COMMIT, RELEASE, EXTEND of
 *            holds of its channel; SALE and RETURN at a location of its
 *            channel's pool (channel orders, cancellations, refunds); reads.
 *   push     PUSH_ACK and PUSH_EXCEPTION of its channel; the channel queries
 *            of its channel (CHANNEL, PUSH, PUSH_ALL, LISTING, EXCEPTIONS,
 *            CHANNEL_PUSH), LOOKUP and STATS; no stock levels or holds.
 *
 * Invariants:
 *   - A binding not resolved yet (id 0: the location or channel is not
 *     defined) allows nothing that needs it.
 *   - auth_table_match looks at every byte of every secret whatever the
 *     input, so its time does not depend on how much of a secret matched.
 */
#ifndef SKULD_SERVER_AUTH_H
#define SKULD_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define AUTH_TOKENS_MAX 64u /* token.<name> keys in one configuration */
#define AUTH_NAME_SIZE  32u /* <name>, with the NUL */

enum auth_role {
	AUTH_ROLE_NONE = 0,
	AUTH_ROLE_ADMIN = 1,
	AUTH_ROLE_READ = 2,
	AUTH_ROLE_TILL = 3,
	AUTH_ROLE_GATEWAY = 4,
	AUTH_ROLE_PUSH = 5,
};

struct auth_token {
	char name[AUTH_NAME_SIZE];           /* for logs; unique in a table */
	char secret[SKULD_TOKEN_SIZE];       /* NUL-padded, as on the wire; unique */
	uint32_t role;                       /* enum auth_role */
	uint32_t bind_id;                    /* location / channel given as an id; 0: by code */
	char bind_code[SKULD_CODE_SIZE + 1]; /* its code or name when bind_id is 0 */
};

struct auth_table {
	uint32_t count;
	struct auth_token tokens[AUTH_TOKENS_MAX];
};

/* What a connection may do: its role and its binding, resolved to an id
 * (0: not resolved). */
struct auth_grant {
	uint32_t role;
	uint32_t location; /* till */
	uint32_t channel;  /* gateway, push */
};

/* What the ledger knows that an event's check needs (the service fills it
 * in before the batch is applied). */
struct auth_facts {
	bool hold_known;       /* COMMIT / RELEASE / EXTEND: the hold exists */
	uint32_t hold_channel; /* ... its channel (0: a location hold) */
	bool location_in_pool; /* the event's location is in the grant's channel's pool */
};

/* Parses the value of `token.<name>`. Returns 0, or -EINVAL with why in
 * error. */
int auth_token_parse(const char *name, const char *value, struct auth_token *out, char *error,
                     size_t error_size);

/* Adds a token. Returns 0, -EEXIST when its name or secret is in the table
 * already, -ENOSPC when the table is full. */
int auth_table_add(struct auth_table *table, const struct auth_token *token);

/* The index of the token whose secret equals secret (SKULD_TOKEN_SIZE bytes,
 * NUL-padded), or -1. Constant time in the contents. */
int auth_table_match(const struct auth_table *table, const char *secret);

/* SKULD_OK, or SKULD_DENIED when the grant may not post event. */
uint32_t auth_event(const struct auth_grant *grant, const struct skuld_event *event,
                    const struct auth_facts *facts);

/* True when the event's check needs facts from the ledger: which, see
 * auth_facts. */
bool auth_event_needs_hold(const struct auth_grant *grant, const struct skuld_event *event);
bool auth_event_needs_pool(const struct auth_grant *grant, const struct skuld_event *event);

/* SKULD_OK, or SKULD_ERR_DENIED when the grant may not send this read
 * operation (PING, QUERY with query, LOOKUP, STATS; query may be NULL for
 * the others). */
uint32_t auth_read(const struct auth_grant *grant, uint8_t operation,
                   const struct skuld_query *query);

/* "admin", "read", "till", "gateway", "push", or "?". */
const char *auth_role_name(uint32_t role);

#endif /* SKULD_SERVER_AUTH_H */
