/*
 * test_auth.c — server/auth.c: the token syntax, the table, the match and
 * every role's rules, without a server.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"

static struct auth_token parsed(const char *name, const char *value)
{
	struct auth_token token;
	char error[256] = "";
	cr_assert_eq(auth_token_parse(name, value, &token, error, sizeof(error)), 0, "%s: %s",
	             value, error);
	return token;
}

static void refused(const char *name, const char *value, const char *why)
{
	struct auth_token token;
	char error[256] = "";
	cr_assert_eq(auth_token_parse(name, value, &token, error, sizeof(error)), -EINVAL, "%s",
	             value);
	cr_assert(strstr(error, why) != NULL, "'%s' gives '%s', want '%s'", value, error, why);
}

Test(auth, parses_each_role_and_binding)
{
	struct auth_token token = parsed("hq", "0123456789abcdef-admin admin");
	cr_assert_eq(token.role, AUTH_ROLE_ADMIN);
	cr_assert_str_eq(token.name, "hq");
	cr_assert_str_eq(token.secret, "0123456789abcdef-admin");
	cr_assert_eq(token.secret[SKULD_TOKEN_SIZE - 1], '\0');
	token = parsed("audit", "0123456789abcdef-read  read");
	cr_assert_eq(token.role, AUTH_ROLE_READ);
	token = parsed("till-7", "0123456789abcdef-till till location=STORE-7");
	cr_assert_eq(token.role, AUTH_ROLE_TILL);
	cr_assert_eq(token.bind_id, 0);
	cr_assert_str_eq(token.bind_code, "STORE-7");
	token = parsed("till_8", "0123456789abcdef-till8 till location=8");
	cr_assert_eq(token.bind_id, 8);
	cr_assert_str_eq(token.bind_code, "");
	token = parsed("web", "0123456789abcdef-gw\tgateway channel=shopify");
	cr_assert_eq(token.role, AUTH_ROLE_GATEWAY);
	cr_assert_str_eq(token.bind_code, "shopify");
	token = parsed("pusher", "0123456789abcdef-push push channel=3");
	cr_assert_eq(token.role, AUTH_ROLE_PUSH);
	cr_assert_eq(token.bind_id, 3);
}

Test(auth, refuses_malformed_tokens)
{
	refused("", "0123456789abcdef admin", "token.<name>");
	refused("a.b", "0123456789abcdef admin", "token.<name>");
	refused("x", "short admin", "a secret of 16..64");
	refused("x", "0123456789abcdef", "want '<secret> <role>");
	refused("x", "0123456789abcdef root", "role 'root'");
	refused("x", "0123456789abcdef admin location=1", "takes no binding");
	refused("x", "0123456789abcdef read channel=1", "takes no binding");
	refused("x", "0123456789abcdef till", "takes location=");
	refused("x", "0123456789abcdef till channel=1", "takes location=");
	refused("x", "0123456789abcdef gateway location=1", "takes channel=");
	refused("x", "0123456789abcdef push", "takes channel=");
	refused("x", "0123456789abcdef till location=0", "an id in 1..");
	refused("x", "0123456789abcdef till location=4294967295", "an id in 1..");
	refused("x", "0123456789abcdef till location=", "printable");
	refused("x", "0123456789abcdef till location=123456789012345678901234567890123",
	        "printable");
	refused("x", "0123456789abcdef till location=1 extra", "want '<secret> <role>");
	char long_secret[80];
	memset(long_secret, 'k', 65);
	snprintf(long_secret + 65, sizeof(long_secret) - 65, " admin");
	refused("x", long_secret, "a secret of 16..64");
}

static void wire(char *out, const char *secret)
{
	memset(out, 0, SKULD_TOKEN_SIZE);
	memcpy(out, secret, strlen(secret));
}

Test(auth, table_matches_whole_secrets_only)
{
	struct auth_table table;
	memset(&table, 0, sizeof(table));
	struct auth_token a = parsed("a", "aaaaaaaaaaaaaaaa-one admin");
	struct auth_token b = parsed("b", "bbbbbbbbbbbbbbbb-two read");
	cr_assert_eq(auth_table_add(&table, &a), 0);
	cr_assert_eq(auth_table_add(&table, &b), 0);
	struct auth_token same_name = parsed("a", "cccccccccccccccc-three read");
	struct auth_token same_secret = parsed("c", "aaaaaaaaaaaaaaaa-one read");
	cr_assert_eq(auth_table_add(&table, &same_name), -EEXIST);
	cr_assert_eq(auth_table_add(&table, &same_secret), -EEXIST);
	char secret[SKULD_TOKEN_SIZE];
	wire(secret, "aaaaaaaaaaaaaaaa-one");
	cr_assert_eq(auth_table_match(&table, secret), 0);
	wire(secret, "bbbbbbbbbbbbbbbb-two");
	cr_assert_eq(auth_table_match(&table, secret), 1);
	wire(secret, "bbbbbbbbbbbbbbbb-tw"); /* a prefix */
	cr_assert_eq(auth_table_match(&table, secret), -1);
	wire(secret, "bbbbbbbbbbbbbbbb-two!"); /* longer */
	cr_assert_eq(auth_table_match(&table, secret), -1);
	wire(secret, "");
	cr_assert_eq(auth_table_match(&table, secret), -1);
	/* A difference in the last byte of the field counts. */
	wire(secret, "bbbbbbbbbbbbbbbb-two");
	secret[SKULD_TOKEN_SIZE - 1] = 'x';
	cr_assert_eq(auth_table_match(&table, secret), -1);
	for (uint32_t i = table.count; i < AUTH_TOKENS_MAX; i++) {
		struct auth_token more = {.role = AUTH_ROLE_READ};
		snprintf(more.name, sizeof(more.name), "t%u", i);
		snprintf(more.secret, sizeof(more.secret), "secret-number-%u", i);
		cr_assert_eq(auth_table_add(&table, &more), 0);
	}
	struct auth_token extra = parsed("extra", "eeeeeeeeeeeeeeee-x read");
	cr_assert_eq(auth_table_add(&table, &extra), -ENOSPC);
	wire(secret, "secret-number-63");
	cr_assert_eq(auth_table_match(&table, secret), 63);
}

static struct skuld_event event(uint16_t kind, uint32_t location, uint32_t channel)
{
	struct skuld_event out;
	memset(&out, 0, sizeof(out));
	out.kind = kind;
	out.location = location;
	out.channel = channel;
	out.id = 77;
	return out;
}

static const uint16_t every_kind[] = {
        SKULD_ITEM_DEFINE,
        SKULD_SKU_ALIAS,
        SKULD_BARCODE_DEFINE,
        SKULD_ATTRIBUTE_SET,
        SKULD_LOCATION_DEFINE,
        SKULD_LOCATION_STATE,
        SKULD_BUNDLE_COMPONENT,
        SKULD_CHANNEL_DEFINE,
        SKULD_CHANNEL_POOL,
        SKULD_CHANNEL_BUFFER,
        SKULD_CHANNEL_CAP,
        SKULD_CHANNEL_MIN,
        SKULD_CHANNEL_LISTING,
        SKULD_RECEIVE,
        SKULD_ADJUST,
        SKULD_COUNT_OPEN,
        SKULD_COUNT_CLOSE,
        SKULD_SALE,
        SKULD_RESERVE,
        SKULD_EXTEND,
        SKULD_COMMIT,
        SKULD_RELEASE,
        SKULD_REALLOCATE,
        SKULD_EXPIRE,
        SKULD_FULFILL,
        SKULD_RETURN,
        SKULD_TRANSFER_OUT,
        SKULD_TRANSFER_IN,
        SKULD_MOVE,
        SKULD_INCOMING,
        SKULD_PUSH_ACK,
        SKULD_PUSH_EXCEPTION,
};
#define KINDS (sizeof(every_kind) / sizeof(every_kind[0]))

static bool kind_in(uint16_t kind, const uint16_t *kinds, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (kinds[i] == kind)
			return true;
	}
	return false;
}

Test(auth, admin_may_post_everything_read_nothing)
{
	struct auth_grant admin = {.role = AUTH_ROLE_ADMIN};
	struct auth_grant read = {.role = AUTH_ROLE_READ};
	struct auth_facts facts = {0};
	for (size_t i = 0; i < KINDS; i++) {
		struct skuld_event e = event(every_kind[i], 1, 1);
		cr_assert_eq(auth_event(&admin, &e, &facts), SKULD_OK, "kind %u", every_kind[i]);
		cr_assert_eq(auth_event(&read, &e, &facts), SKULD_DENIED, "kind %u", every_kind[i]);
	}
}

Test(auth, till_posts_sales_returns_counts_at_its_location_only)
{
	static const uint16_t allowed[] = {SKULD_SALE, SKULD_RETURN, SKULD_COUNT_OPEN,
	                                   SKULD_COUNT_CLOSE};
	struct auth_grant till = {.role = AUTH_ROLE_TILL, .location = 4};
	struct auth_facts facts = {0};
	for (size_t i = 0; i < KINDS; i++) {
		uint16_t kind = every_kind[i];
		struct skuld_event here = event(kind, 4, 0);
		struct skuld_event there = event(kind, 5, 0);
		uint32_t want = kind_in(kind, allowed, 4) ? SKULD_OK : SKULD_DENIED;
		cr_assert_eq(auth_event(&till, &here, &facts), want, "kind %u", kind);
		cr_assert_eq(auth_event(&till, &there, &facts), SKULD_DENIED, "kind %u", kind);
	}
	/* Not resolved yet (the location is not defined): nothing. */
	struct auth_grant unbound = {.role = AUTH_ROLE_TILL};
	struct skuld_event sale = event(SKULD_SALE, 0, 0);
	cr_assert_eq(auth_event(&unbound, &sale, &facts), SKULD_DENIED);
}

Test(auth, gateway_holds_of_its_channel_and_sales_in_its_pool)
{
	struct auth_grant gateway = {.role = AUTH_ROLE_GATEWAY, .channel = 2};
	struct auth_facts none = {0};
	struct skuld_event reserve = event(SKULD_RESERVE, 0, 2);
	cr_assert_eq(auth_event(&gateway, &reserve, &none), SKULD_OK);
	reserve.channel = 3;
	cr_assert_eq(auth_event(&gateway, &reserve, &none), SKULD_DENIED);
	struct skuld_event at_location = event(SKULD_RESERVE, 1, 0);
	cr_assert_eq(auth_event(&gateway, &at_location, &none), SKULD_DENIED);

	static const uint16_t hold_kinds[] = {SKULD_COMMIT, SKULD_RELEASE, SKULD_EXTEND};
	for (size_t i = 0; i < 3; i++) {
		struct skuld_event e = event(hold_kinds[i], 0, 0);
		cr_assert(auth_event_needs_hold(&gateway, &e));
		struct auth_facts ours = {.hold_known = true, .hold_channel = 2};
		struct auth_facts theirs = {.hold_known = true, .hold_channel = 3};
		struct auth_facts location_hold = {.hold_known = true, .hold_channel = 0};
		cr_assert_eq(auth_event(&gateway, &e, &ours), SKULD_OK);
		cr_assert_eq(auth_event(&gateway, &e, &theirs), SKULD_DENIED);
		cr_assert_eq(auth_event(&gateway, &e, &location_hold), SKULD_DENIED);
		/* Unknown: the ledger answers HOLD_UNKNOWN, or it is reserved
		 * earlier in the same request (checked as a RESERVE). */
		cr_assert_eq(auth_event(&gateway, &e, &none), SKULD_OK);
	}
	struct auth_facts in_pool = {.location_in_pool = true};
	static const uint16_t pool_kinds[] = {SKULD_SALE, SKULD_RETURN};
	for (size_t i = 0; i < 2; i++) {
		struct skuld_event e = event(pool_kinds[i], 1, 0);
		cr_assert(auth_event_needs_pool(&gateway, &e));
		cr_assert_eq(auth_event(&gateway, &e, &in_pool), SKULD_OK);
		cr_assert_eq(auth_event(&gateway, &e, &none), SKULD_DENIED);
	}
	static const uint16_t allowed[] = {SKULD_RESERVE, SKULD_COMMIT, SKULD_RELEASE,
	                                   SKULD_EXTEND,  SKULD_SALE,   SKULD_RETURN};
	struct auth_facts all = {.hold_known = true, .hold_channel = 2, .location_in_pool = true};
	for (size_t i = 0; i < KINDS; i++) {
		if (kind_in(every_kind[i], allowed, 6))
			continue;
		struct skuld_event e = event(every_kind[i], 1, 2);
		cr_assert_eq(auth_event(&gateway, &e, &all), SKULD_DENIED, "kind %u",
		             every_kind[i]);
	}
	struct auth_grant unbound = {.role = AUTH_ROLE_GATEWAY};
	struct skuld_event e = event(SKULD_RESERVE, 0, 0);
	cr_assert_eq(auth_event(&unbound, &e, &all), SKULD_DENIED);
	/* Other roles never need ledger facts. */
	struct auth_grant till = {.role = AUTH_ROLE_TILL, .location = 1};
	struct skuld_event commit = event(SKULD_COMMIT, 0, 0);
	cr_assert(!auth_event_needs_hold(&till, &commit));
	cr_assert(!auth_event_needs_pool(&till, &e));
}

Test(auth, push_acknowledges_its_channel_only)
{
	struct auth_grant push = {.role = AUTH_ROLE_PUSH, .channel = 6};
	struct auth_facts facts = {0};
	for (size_t i = 0; i < KINDS; i++) {
		uint16_t kind = every_kind[i];
		struct skuld_event ours = event(kind, 0, 6);
		struct skuld_event theirs = event(kind, 0, 7);
		bool allowed = kind == SKULD_PUSH_ACK || kind == SKULD_PUSH_EXCEPTION;
		cr_assert_eq(auth_event(&push, &ours, &facts), allowed ? SKULD_OK : SKULD_DENIED,
		             "kind %u", kind);
		cr_assert_eq(auth_event(&push, &theirs, &facts), SKULD_DENIED, "kind %u", kind);
	}
}

Test(auth, reads_by_role)
{
	struct skuld_query level = {.kind = SKULD_QUERY_LEVEL, .item = 1, .location = 1};
	static const uint32_t readers[] = {AUTH_ROLE_ADMIN, AUTH_ROLE_READ, AUTH_ROLE_TILL,
	                                   AUTH_ROLE_GATEWAY};
	for (size_t i = 0; i < 4; i++) {
		struct auth_grant grant = {.role = readers[i], .location = 1, .channel = 1};
		cr_assert_eq(auth_read(&grant, SKULD_OP_QUERY, &level), SKULD_OK);
		cr_assert_eq(auth_read(&grant, SKULD_OP_LOOKUP, NULL), SKULD_OK);
		cr_assert_eq(auth_read(&grant, SKULD_OP_STATS, NULL), SKULD_OK);
		cr_assert_eq(auth_read(&grant, SKULD_OP_PING, NULL), SKULD_OK);
	}
	struct auth_grant push = {.role = AUTH_ROLE_PUSH, .channel = 6};
	cr_assert_eq(auth_read(&push, SKULD_OP_QUERY, &level), SKULD_ERR_DENIED);
	struct skuld_query hold = {.kind = SKULD_QUERY_HOLD, .hold = 1};
	cr_assert_eq(auth_read(&push, SKULD_OP_QUERY, &hold), SKULD_ERR_DENIED);
	static const uint16_t channel_kinds[] = {SKULD_QUERY_CHANNEL,    SKULD_QUERY_PUSH,
	                                         SKULD_QUERY_PUSH_ALL,   SKULD_QUERY_LISTING,
	                                         SKULD_QUERY_EXCEPTIONS, SKULD_QUERY_CHANNEL_PUSH};
	for (size_t i = 0; i < 6; i++) {
		struct skuld_query ours = {.kind = channel_kinds[i], .channel = 6};
		struct skuld_query theirs = {.kind = channel_kinds[i], .channel = 7};
		cr_assert_eq(auth_read(&push, SKULD_OP_QUERY, &ours), SKULD_OK);
		cr_assert_eq(auth_read(&push, SKULD_OP_QUERY, &theirs), SKULD_ERR_DENIED);
	}
	cr_assert_eq(auth_read(&push, SKULD_OP_LOOKUP, NULL), SKULD_OK);
	cr_assert_eq(auth_read(&push, SKULD_OP_STATS, NULL), SKULD_OK);
	struct auth_grant none = {.role = AUTH_ROLE_NONE};
	cr_assert_eq(auth_read(&none, SKULD_OP_PING, NULL), SKULD_ERR_DENIED);
	cr_assert_str_eq(auth_role_name(AUTH_ROLE_GATEWAY), "gateway");
	cr_assert_str_eq(auth_role_name(99), "?");
}
