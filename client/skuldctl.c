/*
 * skuldctl.c — the command line for people (docs/SKULDCTL.md): argument
 * parsing, one function per command, human and JSON output.
 *
 * Owns: nothing beyond one run. Every command connects, translates codes to
 * ids with LOOKUP, sends one SUBMIT (a linked chain where a command is
 * several events) or a few QUERYs, prints, and exits with an enum ctl_exit
 * code. Commands never retry a refused event; the library retries lost
 * requests with the same request number and keys.
 */
#include "skuldctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX       64
#define OPTIONS_MAX    16
#define DEFINE_TRIES   32 /* ids taken by a racing client: move past, at most this often */
#define PAGES_MAX      65536
#define COMPONENTS_MAX 64

static const char usage_text[] =
        "usage: skuldctl [--server HOST:PORT] [--json] [--token T] [--key K] [--tls-ca FILE]\n"
        "                COMMAND ...\n"
        "\n"
        "Catalog:\n"
        "  define-item SKU [--barcode B] [--scale N]\n"
        "  define-location CODE\n"
        "  define-bundle SKU COMPONENT:QTY...\n"
        "  define-channel NAME --pool LOC,... [--buffer N]\n"
        "  import items|locations|bundles|counts FILE.csv [--dry-run] [--session S]\n"
        "  import mappings FILE.csv [--dry-run]  columns sku, channel, listing ('-' unmaps)\n"
        "Movements (QTY is a decimal in the item's scale, e.g. 1.250 for scale 3):\n"
        "  receive SKU@LOC QTY\n"
        "  sell SKU@LOC QTY\n"
        "  return SKU@LOC QTY [--damaged]\n"
        "  adjust SKU@LOC DELTA --reason "
        "correction|damage|theft|loss|found|expired-goods|internal-use\n"
        "  count SKU@LOC QTY                  open and close a count in one step\n"
        "  count SKU@LOC --open               open a count; prints its id\n"
        "  count SKU@LOC QTY --close ID       close count ID with the counted QTY\n"
        "  transfer SKU FROM TO QTY [--in-transit | --arrive ID]\n"
        "Holds:\n"
        "  reserve SKU@LOC|SKU@channel:NAME QTY [--ttl 15m] [--hold ID]\n"
        "  extend HOLD --ttl DURATION\n"
        "  commit HOLD [QTY]\n"
        "  release HOLD\n"
        "Queries:\n"
        "  level SKU[@LOC]\n"
        "  levels LOC\n"
        "  channel-level SKU --channel NAME\n"
        "  stats [--prometheus]\n"
        "  metrics --listen HOST:PORT   (serves GET /metrics until SIGTERM)\n"
        "  chain-head\n"
        "Channels:\n"
        "  channels [NAME...]                  listings, dirty items, last push, exception\n"
        "  exceptions [--channel NAME | --discrepancies [--location LOC]] [--all]\n"
        "                                      open channel exceptions and stock discrepancies\n"
        "  acknowledge SKU@LOC                 acknowledge the discrepancy of SKU at LOC (admin)\n"
        "\n"
        "Server: --server, else $SKULD_SERVER, else 127.0.0.1:7878. Token: --token or "
        "$SKULD_TOKEN.\n"
        "TLS: --tls-ca FILE or $SKULD_TLS_CA (the CA the server's certificate must chain to;\n"
        "the name checked is the server's host, or --tls-server-name / "
        "$SKULD_TLS_SERVER_NAME).\n"
        "--key K makes a movement idempotent: the same command with the same K is applied\n"
        "once (the repeat prints \"already applied\"). Without it every run is a new movement.\n"
        "Definitions and imports are always idempotent.\n"
        "\n"
        "Exit status:\n"
        "  0  done, or already done (an idempotent re-run)\n"
        "  1  refused by the ledger (e.g. insufficient stock, unknown SKU), or import found\n"
        "     defects in the file (nothing applied)\n"
        "  2  usage: bad command line, quantity text or file\n"
        "  3  connection or server error: the outcome may be unknown; re-running with the\n"
        "     same --key (definitions, imports: as is) is safe\n";

/* ---- Arguments -------------------------------------------------------------- */

struct args {
	const char *positional[ARGS_MAX];
	int positional_count;
	const char *names[OPTIONS_MAX];  /* "--ttl" */
	const char *values[OPTIONS_MAX]; /* NULL for flags */
	int used[OPTIONS_MAX];
	int option_count;
};

static const char *const flag_options[] = {
        "--json",       "--dry-run",    "--damaged",       "--open", "--help",
        "--in-transit", "--prometheus", "--discrepancies", "--all",  NULL};

static int is_flag(const char *name)
{
	for (int i = 0; flag_options[i] != NULL; i++) {
		if (strcmp(flag_options[i], name) == 0)
			return 1;
	}
	return 0;
}

static int usage_error(const char *fmt, const char *what)
{
	fprintf(stderr, "skuldctl: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n(skuldctl --help lists the commands)\n");
	return CTL_EXIT_USAGE;
}

/* Splits argv into positional arguments and --options. Returns 0 or a
 * usage exit code. */
static int args_parse(struct args *args, int argc, char **argv)
{
	memset(args, 0, sizeof(*args));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			if (args->positional_count == ARGS_MAX)
				return usage_error("too many arguments%s", "");
			args->positional[args->positional_count++] = arg;
			continue;
		}
		if (args->option_count == OPTIONS_MAX)
			return usage_error("too many options%s", "");
		const char *equals = strchr(arg, '=');
		int at = args->option_count++;
		if (equals != NULL) { /* --name=value */
			static char names[OPTIONS_MAX][64];
			size_t length = (size_t)(equals - arg);
			if (length >= sizeof(names[0]))
				return usage_error("option %s is too long", arg);
			memcpy(names[at], arg, length);
			names[at][length] = '\0';
			args->names[at] = names[at];
			args->values[at] = equals + 1;
		} else if (is_flag(arg)) {
			args->names[at] = arg;
		} else {
			if (i + 1 >= argc)
				return usage_error("option %s needs a value", arg);
			args->names[at] = arg;
			args->values[at] = argv[++i];
		}
	}
	return 0;
}

/* The value of option name (NULL if absent); marks it used. *present (when
 * not NULL) is set for flags. */
static const char *option(struct args *args, const char *name, int *present)
{
	if (present != NULL)
		*present = 0;
	for (int i = 0; i < args->option_count; i++) {
		if (strcmp(args->names[i], name) == 0) {
			args->used[i] = 1;
			if (present != NULL)
				*present = 1;
			return args->values[i] != NULL ? args->values[i] : "";
		}
	}
	return NULL;
}

/* Usage error for any option the command did not take. */
static int options_all_used(struct args *args, const char *command)
{
	for (int i = 0; i < args->option_count; i++) {
		if (!args->used[i]) {
			fprintf(stderr, "skuldctl: %s does not take %s\n", command, args->names[i]);
			return CTL_EXIT_USAGE;
		}
	}
	return 0;
}

/* ---- Resolving what people type --------------------------------------------- */

struct item_ref {
	char sku[SKULD_CODE_SIZE + 1];
	uint32_t id;
	uint8_t scale;
};

struct place_ref {
	char code[SKULD_CODE_SIZE + 1];
	uint32_t id;
	int channel; /* "channel:NAME" */
};

static int copy_code(char out[SKULD_CODE_SIZE + 1], const char *text, size_t length,
                     const char *what)
{
	if (length == 0 || length > SKULD_CODE_SIZE) {
		fprintf(stderr, "skuldctl: %s must be 1 to %u characters\n", what, SKULD_CODE_SIZE);
		return CTL_EXIT_USAGE;
	}
	memcpy(out, text, length);
	out[length] = '\0';
	if (!ctl_code_valid(out)) {
		fprintf(stderr, "skuldctl: %s '%s' is not printable ASCII without edge spaces\n",
		        what, out);
		return CTL_EXIT_USAGE;
	}
	return 0;
}

static int item_resolve(struct ctl *ctl, struct item_ref *item)
{
	int rc = ctl_lookup_item(ctl, item->sku, &item->id, &item->scale);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (item->id == 0) {
		fprintf(stderr, "skuldctl: unknown SKU '%s'\n", item->sku);
		return CTL_EXIT_REFUSED;
	}
	return CTL_EXIT_OK;
}

static int place_resolve(struct ctl *ctl, struct place_ref *place)
{
	int rc = place->channel ? ctl_lookup_channel(ctl, place->code, &place->id)
	                        : ctl_lookup_location(ctl, place->code, &place->id);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (place->id == 0) {
		fprintf(stderr, "skuldctl: unknown %s '%s'\n",
		        place->channel ? "channel" : "location", place->code);
		return CTL_EXIT_REFUSED;
	}
	return CTL_EXIT_OK;
}

/* Splits "SKU@LOC" (or "SKU@channel:NAME" when channel_ok); LOC optional
 * when place_optional. */
static int split_target(const char *text, struct item_ref *item, struct place_ref *place,
                        int place_optional, int channel_ok)
{
	memset(item, 0, sizeof(*item));
	memset(place, 0, sizeof(*place));
	const char *at = strrchr(text, '@');
	if (at == NULL) {
		if (!place_optional)
			return usage_error("'%s' must be SKU@LOCATION", text);
		return copy_code(item->sku, text, strlen(text), "SKU");
	}
	int rc = copy_code(item->sku, text, (size_t)(at - text), "SKU");
	if (rc != 0)
		return rc;
	const char *where = at + 1;
	if (channel_ok && strncmp(where, "channel:", 8) == 0) {
		place->channel = 1;
		where += 8;
	}
	return copy_code(place->code, where, strlen(where),
	                 place->channel ? "channel" : "location");
}

enum quantity_mode {
	QUANTITY_POSITIVE = 0, /* > 0 */
	QUANTITY_SIGNED = 1,   /* != 0 */
	QUANTITY_COUNTED = 2,  /* >= 0 */
};

static int quantity_arg(const char *text, const struct item_ref *item, enum quantity_mode mode,
                        int64_t *units)
{
	int allow_sign = mode == QUANTITY_SIGNED;
	if (ctl_quantity_parse(text, item->scale, allow_sign, units) != 0) {
		fprintf(stderr,
		        "skuldctl: quantity '%s' is not a%s decimal with at most %u decimals "
		        "(SKU %s has scale %u)\n",
		        text, allow_sign ? " signed" : "", item->scale, item->sku, item->scale);
		return CTL_EXIT_USAGE;
	}
	if (mode != QUANTITY_COUNTED && *units == 0) {
		fprintf(stderr, "skuldctl: quantity must not be 0\n");
		return CTL_EXIT_USAGE;
	}
	return 0;
}

/* ---- Output ------------------------------------------------------------------ */

static void json_quantity(const char *name, int64_t units, uint8_t scale, int comma)
{
	char text[CTL_QUANTITY_CHARS];
	ctl_quantity_format(units, scale, text);
	printf("\"%s\":%s%s", name, text, comma ? "," : "");
}

/* A refused event: JSON on stdout, text on stderr; exit 1. */
static int refused(const struct ctl *ctl, const char *command, uint16_t status)
{
	if (ctl->json) {
		printf("{\"command\":");
		ctl_json_string(stdout, command);
		printf(",\"status\":\"%s\",\"message\":", skuld_status_name(status));
		ctl_json_string(stdout, skuld_strerror(status));
		printf("}\n");
	}
	fprintf(stderr, "skuldctl: %s refused: %s (%s)\n", command, skuld_status_name(status),
	        skuld_strerror(status));
	return CTL_EXIT_REFUSED;
}

static const char *flag_words(uint16_t flags, char *buffer, size_t size)
{
	buffer[0] = '\0';
	if (flags & SKULD_RESULT_REPLAYED)
		strncat(buffer, " (already applied)", size - strlen(buffer) - 1);
	if (flags & SKULD_RESULT_DISCREPANCY)
		strncat(buffer, " (discrepancy: the ledger showed less)",
		        size - strlen(buffer) - 1);
	if (flags & SKULD_RESULT_LATE)
		strncat(buffer, " (late: location not selling)", size - strlen(buffer) - 1);
	if (flags & SKULD_RESULT_PRE_COUNT)
		strncat(buffer, " (before a count: on hand unchanged)", size - strlen(buffer) - 1);
	return buffer;
}

static void json_flags(uint16_t flags)
{
	printf("\"replayed\":%s,\"discrepancy\":%s,\"late\":%s,\"pre_count\":%s",
	       flags & SKULD_RESULT_REPLAYED ? "true" : "false",
	       flags & SKULD_RESULT_DISCREPANCY ? "true" : "false",
	       flags & SKULD_RESULT_LATE ? "true" : "false",
	       flags & SKULD_RESULT_PRE_COUNT ? "true" : "false");
}

/* A movement's result: "received 5 SKU-1 at STORE: available 12". */
static int movement_print(const struct ctl *ctl, const char *command, const char *verb,
                          const struct item_ref *item, const char *place,
                          const struct skuld_result *result)
{
	char quantity[CTL_QUANTITY_CHARS], available[CTL_QUANTITY_CHARS], flags[160];
	if (result->status != SKULD_OK)
		return refused(ctl, command, result->status);
	ctl_quantity_format(result->quantity, item->scale, quantity);
	ctl_quantity_format(result->available, item->scale, available);
	if (ctl->json) {
		printf("{\"command\":\"%s\",\"status\":\"OK\",\"sku\":", command);
		ctl_json_string(stdout, item->sku);
		printf(",\"item\":%" PRIu32 ",\"location\":", item->id);
		ctl_json_string(stdout, place);
		printf(",\"location_id\":%" PRIu32 ",", result->location);
		json_quantity("quantity", result->quantity, item->scale, 1);
		json_quantity("available", result->available, item->scale, 1);
		json_flags(result->flags);
		printf("}\n");
	} else {
		printf("%s %s %s at %s: available %s%s\n", verb, quantity, item->sku, place,
		       available, flag_words(result->flags, flags, sizeof(flags)));
	}
	return CTL_EXIT_OK;
}

static void level_print_json(const struct skuld_level_record *record, const char *sku,
                             const char *place, uint8_t scale)
{
	printf("{\"sku\":");
	if (sku != NULL)
		ctl_json_string(stdout, sku);
	else
		printf("null");
	printf(",\"item\":%" PRIu32 ",\"location\":", record->item);
	if (place != NULL)
		ctl_json_string(stdout, place);
	else
		printf("null");
	printf(",\"location_id\":%" PRIu32 ",\"scale\":%u,", record->location, scale);
	json_quantity("on_hand", record->on_hand, scale, 1);
	json_quantity("reserved", record->reserved, scale, 1);
	json_quantity("committed", record->committed, scale, 1);
	json_quantity("unsellable", record->unsellable, scale, 1);
	json_quantity("incoming", record->incoming, scale, 1);
	json_quantity("available", record->available, scale, 0);
	printf("}");
}

static void level_print_header(void)
{
	printf("%-24s %-16s %12s %12s %12s %12s %12s %12s\n", "SKU", "LOCATION", "ON_HAND",
	       "RESERVED", "COMMITTED", "UNSELLABLE", "INCOMING", "AVAILABLE");
}

static void level_print_row(const struct skuld_level_record *record, const char *sku,
                            const char *place, uint8_t scale)
{
	char columns[6][CTL_QUANTITY_CHARS], item_text[24], place_text[24];
	const int64_t values[6] = {record->on_hand,    record->reserved, record->committed,
	                           record->unsellable, record->incoming, record->available};
	for (int i = 0; i < 6; i++)
		ctl_quantity_format(values[i], scale, columns[i]);
	snprintf(item_text, sizeof(item_text), "#%" PRIu32, record->item);
	snprintf(place_text, sizeof(place_text), "#%" PRIu32, record->location);
	printf("%-24s %-16s %12s %12s %12s %12s %12s %12s\n", sku != NULL ? sku : item_text,
	       place != NULL ? place : place_text, columns[0], columns[1], columns[2], columns[3],
	       columns[4], columns[5]);
}

/* ---- Catalog commands ---------------------------------------------------------- */

/* Sends a definition chain built by build(id) at the next free id, moving
 * past ids a racing client took. *status gets the chain's status (OK with
 * REPLAYED or not), *id the id used. */
typedef uint32_t (*chain_build)(void *context, uint32_t id, struct skuld_event *events);

static int define_at_free_id(struct ctl *ctl, enum ctl_id_kind kind, uint16_t exists_status,
                             chain_build build, void *context, uint32_t *id, uint16_t *status,
                             uint16_t *flags)
{
	struct skuld_event events[COMPONENTS_MAX + 8];
	struct skuld_result results[COMPONENTS_MAX + 8];
	uint32_t next = 0;
	int rc = ctl_next_free_id(ctl, kind, &next);
	if (rc != CTL_EXIT_OK)
		return rc;
	for (int attempt = 0; attempt < DEFINE_TRIES; attempt++) {
		uint32_t count = build(context, next, events);
		if (count == 0)
			return usage_error("a code is not valid text%s", "");
		rc = ctl_submit(ctl, events, count, results);
		if (rc != CTL_EXIT_OK)
			return rc;
		*status = ctl_chain_status(results, count, NULL);
		*flags = results[0].flags;
		*id = next;
		if (*status != exists_status)
			return CTL_EXIT_OK;
		next++; /* another client took this id meanwhile */
	}
	fprintf(stderr, "skuldctl: %d ids in a row were taken by other clients; try again\n",
	        DEFINE_TRIES);
	return CTL_EXIT_ERROR;
}

static int defined_print(const struct ctl *ctl, const char *command, const char *what,
                         const char *code, uint32_t id, int already)
{
	if (ctl->json) {
		printf("{\"command\":\"%s\",\"status\":\"OK\",\"code\":", command);
		ctl_json_string(stdout, code);
		printf(",\"id\":%" PRIu32 ",\"already_present\":%s}\n", id,
		       already ? "true" : "false");
	} else {
		printf("%s %s %s as id %" PRIu32 "\n", what, code,
		       already ? "already defined" : "defined", id);
	}
	return CTL_EXIT_OK;
}

struct item_definition {
	const char *sku;
	uint8_t scale;
	int bundle;
	const char *barcode;
	uint32_t component_count;
	uint32_t components[COMPONENTS_MAX];
	const char *component_skus[COMPONENTS_MAX];
	int64_t component_units[COMPONENTS_MAX];
};

static uint32_t item_build(void *context, uint32_t id, struct skuld_event *events)
{
	const struct item_definition *definition = context;
	uint32_t count = ctl_item_chain(events, id, definition->sku, definition->scale,
	                                definition->bundle, definition->barcode, NULL, 0);
	if (count == 0)
		return 0;
	for (uint32_t i = 0; i < definition->component_count; i++) {
		ctl_component_event(&events[count++], id, definition->sku,
		                    definition->components[i], definition->component_skus[i],
		                    definition->component_units[i]);
	}
	skuld_events_link(events, count);
	return count;
}

static int define_item_send(struct ctl *ctl, const char *command, struct item_definition *item)
{
	uint32_t id = 0;
	uint8_t scale = 0;
	uint16_t status = SKULD_OK, flags = 0;
	int rc = ctl_lookup_item(ctl, item->sku, &id, &scale);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (id == 0) {
		rc = define_at_free_id(ctl, CTL_ID_ITEM, SKULD_ITEM_EXISTS, item_build, item, &id,
		                       &status, &flags);
		if (rc != CTL_EXIT_OK)
			return rc;
		if (status == SKULD_OK)
			return defined_print(ctl, command, "item", item->sku, id,
			                     (flags & SKULD_RESULT_REPLAYED) != 0);
		if (status != SKULD_CODE_EXISTS)
			return refused(ctl, command, status);
		/* Defined by someone else meanwhile: compare below. */
		rc = ctl_lookup_item(ctl, item->sku, &id, &scale);
		if (rc != CTL_EXIT_OK)
			return rc;
	}
	if (id != 0 && scale != item->scale) {
		fprintf(stderr,
		        "skuldctl: SKU %s exists as item %" PRIu32 " with scale %u, not %u\n",
		        item->sku, id, scale, item->scale);
		return refused(ctl, command, SKULD_ITEM_EXISTS);
	}
	return defined_print(ctl, command, "item", item->sku, id, 1);
}

static int cmd_define_item(struct ctl *ctl, struct args *args)
{
	struct item_definition item;
	char sku[SKULD_CODE_SIZE + 1];
	memset(&item, 0, sizeof(item));
	const char *barcode = option(args, "--barcode", NULL);
	const char *scale = option(args, "--scale", NULL);
	int rc = options_all_used(args, "define-item");
	if (rc != 0)
		return rc;
	if (args->positional_count != 2)
		return usage_error("usage: define-item SKU [--barcode B] [--scale N]%s", "");
	if ((rc = copy_code(sku, args->positional[1], strlen(args->positional[1]), "SKU")) != 0)
		return rc;
	uint64_t scale_value = 0;
	if (scale != NULL && (ctl_u64_parse(scale, &scale_value) != 0 || scale_value > 9))
		return usage_error("--scale '%s' must be 0 to 9", scale);
	if (barcode != NULL && !ctl_code_valid(barcode))
		return usage_error("barcode '%s' is not 1 to 32 printable characters", barcode);
	item.sku = sku;
	item.scale = (uint8_t)scale_value;
	item.barcode = barcode;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	return define_item_send(ctl, "define-item", &item);
}

static int cmd_define_bundle(struct ctl *ctl, struct args *args)
{
	static struct item_definition bundle;
	static char skus[COMPONENTS_MAX][SKULD_CODE_SIZE + 1];
	char sku[SKULD_CODE_SIZE + 1];
	memset(&bundle, 0, sizeof(bundle));
	int rc = options_all_used(args, "define-bundle");
	if (rc != 0)
		return rc;
	if (args->positional_count < 3 || args->positional_count - 2 > COMPONENTS_MAX)
		return usage_error("usage: define-bundle SKU COMPONENT:QTY... (1 to 64)%s", "");
	if ((rc = copy_code(sku, args->positional[1], strlen(args->positional[1]), "SKU")) != 0)
		return rc;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	bundle.sku = sku;
	bundle.bundle = 1;
	for (int i = 2; i < args->positional_count; i++) {
		const char *text = args->positional[i];
		const char *colon = strrchr(text, ':');
		struct item_ref component;
		memset(&component, 0, sizeof(component));
		if (colon == NULL)
			return usage_error("component '%s' must be SKU:QTY", text);
		if ((rc = copy_code(component.sku, text, (size_t)(colon - text), "SKU")) != 0)
			return rc;
		if ((rc = item_resolve(ctl, &component)) != CTL_EXIT_OK)
			return rc;
		int64_t units = 0;
		if ((rc = quantity_arg(colon + 1, &component, QUANTITY_POSITIVE, &units)) != 0)
			return rc;
		uint32_t at = bundle.component_count++;
		memcpy(skus[at], component.sku, sizeof(skus[at]));
		bundle.components[at] = component.id;
		bundle.component_skus[at] = skus[at];
		bundle.component_units[at] = units;
	}
	return define_item_send(ctl, "define-bundle", &bundle);
}

struct place_definition {
	const char *code;
	int64_t buffer;
	uint32_t pool_count;
	uint32_t pool[COMPONENTS_MAX];
	const char *pool_codes[COMPONENTS_MAX];
};

static uint32_t location_build(void *context, uint32_t id, struct skuld_event *events)
{
	const struct place_definition *definition = context;
	char document[SKULD_CODE_SIZE + 16];
	snprintf(document, sizeof(document), "location:%s", definition->code);
	if (skuld_event_location_define(&events[0],
	                                skuld_key(CTL_KEY_SOURCE, document, id, "define"), id,
	                                definition->code) != 0)
		return 0;
	return 1;
}

static uint32_t channel_build(void *context, uint32_t id, struct skuld_event *events)
{
	const struct place_definition *definition = context;
	char document[SKULD_CODE_SIZE + 16], action[SKULD_CODE_SIZE + 32];
	snprintf(document, sizeof(document), "channel:%s", definition->code);
	snprintf(action, sizeof(action), "define buffer=%" PRId64, definition->buffer);
	memset(&events[0], 0, sizeof(events[0]));
	events[0].kind = SKULD_CHANNEL_DEFINE;
	events[0].key = skuld_key(CTL_KEY_SOURCE, document, id, action);
	events[0].channel = id;
	events[0].quantity = definition->buffer;
	memcpy(events[0].code, definition->code, strlen(definition->code));
	for (uint32_t i = 0; i < definition->pool_count; i++) {
		struct skuld_event *event = &events[1 + i];
		snprintf(action, sizeof(action), "pool:%s", definition->pool_codes[i]);
		memset(event, 0, sizeof(*event));
		event->kind = SKULD_CHANNEL_POOL;
		event->key = skuld_key(CTL_KEY_SOURCE, document, id, action);
		event->channel = id;
		event->location = definition->pool[i];
	}
	skuld_events_link(events, 1 + definition->pool_count);
	return 1 + definition->pool_count;
}

static int define_place_send(struct ctl *ctl, const char *command, int channel,
                             struct place_definition *place)
{
	uint32_t id = 0;
	uint16_t status = SKULD_OK, flags = 0;
	const char *what = channel ? "channel" : "location";
	int rc = channel ? ctl_lookup_channel(ctl, place->code, &id)
	                 : ctl_lookup_location(ctl, place->code, &id);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (id != 0)
		return defined_print(ctl, command, what, place->code, id, 1);
	rc = define_at_free_id(ctl, channel ? CTL_ID_CHANNEL : CTL_ID_LOCATION,
	                       channel ? SKULD_CHANNEL_EXISTS : SKULD_LOCATION_EXISTS,
	                       channel ? channel_build : location_build, place, &id, &status,
	                       &flags);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (status == SKULD_CODE_EXISTS) { /* defined by someone else meanwhile */
		rc = channel ? ctl_lookup_channel(ctl, place->code, &id)
		             : ctl_lookup_location(ctl, place->code, &id);
		if (rc != CTL_EXIT_OK)
			return rc;
		return defined_print(ctl, command, what, place->code, id, 1);
	}
	if (status != SKULD_OK)
		return refused(ctl, command, status);
	return defined_print(ctl, command, what, place->code, id,
	                     (flags & SKULD_RESULT_REPLAYED) != 0);
}

static int cmd_define_location(struct ctl *ctl, struct args *args)
{
	struct place_definition place;
	char code[SKULD_CODE_SIZE + 1];
	memset(&place, 0, sizeof(place));
	int rc = options_all_used(args, "define-location");
	if (rc != 0)
		return rc;
	if (args->positional_count != 2)
		return usage_error("usage: define-location CODE%s", "");
	if ((rc = copy_code(code, args->positional[1], strlen(args->positional[1]), "location")) !=
	    0)
		return rc;
	place.code = code;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	return define_place_send(ctl, "define-location", 0, &place);
}

static int cmd_define_channel(struct ctl *ctl, struct args *args)
{
	static struct place_definition place;
	static char codes[COMPONENTS_MAX][SKULD_CODE_SIZE + 1];
	char name[SKULD_CODE_SIZE + 1];
	memset(&place, 0, sizeof(place));
	const char *pool = option(args, "--pool", NULL);
	const char *buffer = option(args, "--buffer", NULL);
	int rc = options_all_used(args, "define-channel");
	if (rc != 0)
		return rc;
	if (args->positional_count != 2 || pool == NULL)
		return usage_error("usage: define-channel NAME --pool LOC,... [--buffer N]%s", "");
	if ((rc = copy_code(name, args->positional[1], strlen(args->positional[1]), "channel")) !=
	    0)
		return rc;
	uint64_t buffer_value = 0;
	if (buffer != NULL && (ctl_u64_parse(buffer, &buffer_value) != 0 ||
	                       buffer_value > (uint64_t)CTL_QUANTITY_MAX))
		return usage_error("--buffer '%s' must be a whole number of base units", buffer);
	place.code = name;
	place.buffer = (int64_t)buffer_value;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	for (const char *at = pool; *at != '\0';) {
		const char *comma = strchr(at, ',');
		size_t length = comma != NULL ? (size_t)(comma - at) : strlen(at);
		struct place_ref location;
		memset(&location, 0, sizeof(location));
		if (place.pool_count == COMPONENTS_MAX)
			return usage_error("at most 64 pool locations%s", "");
		if ((rc = copy_code(location.code, at, length, "location")) != 0)
			return rc;
		if ((rc = place_resolve(ctl, &location)) != CTL_EXIT_OK)
			return rc;
		memcpy(codes[place.pool_count], location.code, sizeof(codes[0]));
		place.pool_codes[place.pool_count] = codes[place.pool_count];
		place.pool[place.pool_count++] = location.id;
		at += length + (comma != NULL ? 1 : 0);
	}
	return define_place_send(ctl, "define-channel", 1, &place);
}

/* ---- Movements ------------------------------------------------------------------- */

/* Parses SKU@LOC and QTY (positional[1], [2]), connects, resolves. */
static int stock_command_begin(struct ctl *ctl, struct args *args, const char *command,
                               struct item_ref *item, struct place_ref *place, int64_t *units,
                               enum quantity_mode mode)
{
	int allow_sign = mode == QUANTITY_SIGNED;
	int rc = options_all_used(args, command);
	if (rc != 0)
		return rc;
	if (args->positional_count != 3) {
		fprintf(stderr, "skuldctl: usage: %s SKU@LOC QTY\n", command);
		return CTL_EXIT_USAGE;
	}
	if ((rc = split_target(args->positional[1], item, place, 0, 0)) != 0)
		return rc;
	/* The quantity's text is checked before connecting for form only. */
	int64_t probe = 0;
	if (ctl_quantity_parse(args->positional[2], SKULD_SCALE_MAX, allow_sign, &probe) != 0 &&
	    ctl_quantity_parse(args->positional[2], 0, allow_sign, &probe) != 0)
		return usage_error("quantity '%s' is not a decimal number", args->positional[2]);
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if ((rc = item_resolve(ctl, item)) != CTL_EXIT_OK)
		return rc;
	if ((rc = place_resolve(ctl, place)) != CTL_EXIT_OK)
		return rc;
	return quantity_arg(args->positional[2], item, mode, units);
}

static void action_text(char *out, size_t size, const char *command, const struct item_ref *item,
                        const struct place_ref *place, int64_t units)
{
	snprintf(out, size, "%s %" PRIu32 "@%" PRIu32 " %" PRId64, command, item->id, place->id,
	         units);
}

static int simple_movement(struct ctl *ctl, struct args *args, const char *command,
                           const char *verb)
{
	struct item_ref item;
	struct place_ref place;
	struct skuld_event event;
	struct skuld_result result;
	int64_t units = 0;
	int damaged = 0;
	const char *reason_text = NULL;
	uint8_t reason = 0;
	if (strcmp(command, "return") == 0)
		option(args, "--damaged", &damaged);
	if (strcmp(command, "adjust") == 0) {
		static const char *const reasons[] = {"none",          "correction",   "damage",
		                                      "theft",         "loss",         "found",
		                                      "expired-goods", "internal-use", NULL};
		reason_text = option(args, "--reason", NULL);
		for (int i = 1; reason_text != NULL && reasons[i] != NULL; i++) {
			if (strcmp(reasons[i], reason_text) == 0)
				reason = (uint8_t)i;
		}
		if (reason == 0)
			return usage_error(
			        "adjust needs --reason "
			        "correction|damage|theft|loss|found|expired-goods|internal-use%s",
			        "");
	}
	int rc = stock_command_begin(ctl, args, command, &item, &place, &units,
	                             strcmp(command, "adjust") == 0 ? QUANTITY_SIGNED
	                                                            : QUANTITY_POSITIVE);
	if (rc != 0)
		return rc;
	if (strcmp(command, "adjust") == 0 && units == 0)
		return usage_error("adjust needs a non-zero DELTA%s", "");
	char action[128];
	action_text(action, sizeof(action), command, &item, &place, units);
	if (damaged)
		strncat(action, " damaged", sizeof(action) - strlen(action) - 1);
	if (reason != 0)
		snprintf(action + strlen(action), sizeof(action) - strlen(action), " reason=%u",
		         reason);
	skuld_u128 key = ctl_movement_key(ctl, 0, action);
	if (strcmp(command, "receive") == 0)
		skuld_event_receive(&event, key, item.id, place.id, units);
	else if (strcmp(command, "sell") == 0)
		skuld_event_sale(&event, key, item.id, place.id, units);
	else if (strcmp(command, "return") == 0)
		skuld_event_return(&event, key, item.id, place.id, units,
		                   damaged ? SKULD_DISPOSITION_DAMAGED : SKULD_DISPOSITION_RESTOCK);
	else
		skuld_event_adjust(&event, key, item.id, place.id, units, reason);
	if ((rc = ctl_submit(ctl, &event, 1, &result)) != CTL_EXIT_OK)
		return rc;
	return movement_print(ctl, command, verb, &item, place.code, &result);
}

static int cmd_count(struct ctl *ctl, struct args *args)
{
	struct item_ref item;
	struct place_ref place;
	struct skuld_event events[2];
	struct skuld_result results[2];
	int open_only = 0;
	option(args, "--open", &open_only);
	const char *close_text = option(args, "--close", NULL);
	uint64_t close_id = 0;
	if (close_text != NULL && (ctl_u64_parse(close_text, &close_id) != 0 || close_id == 0))
		return usage_error("--close '%s' must be a count id", close_text);
	int64_t units = 0;
	int rc;
	if (open_only) {
		if ((rc = options_all_used(args, "count")) != 0)
			return rc;
		if (args->positional_count != 2 || close_text != NULL)
			return usage_error("usage: count SKU@LOC --open%s", "");
		if ((rc = split_target(args->positional[1], &item, &place, 0, 0)) != 0)
			return rc;
		if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
			return rc;
		if ((rc = item_resolve(ctl, &item)) != CTL_EXIT_OK ||
		    (rc = place_resolve(ctl, &place)) != CTL_EXIT_OK)
			return rc;
	} else {
		rc = stock_command_begin(ctl, args, "count", &item, &place, &units,
		                         QUANTITY_COUNTED);
		if (rc != 0)
			return rc;
	}
	char action[128];
	action_text(action, sizeof(action), "count", &item, &place, units);
	/* With --key the count id derives from the key too, so a re-run is the
	 * same two events and is answered REPLAYED. */
	skuld_u128 key = ctl_movement_key(ctl, 0, action);
	uint64_t count_id = close_id != 0 ? close_id : ((key.lo >> 1) | 1);
	uint32_t n = 0;
	if (close_id == 0) {
		memset(&events[n], 0, sizeof(events[n]));
		events[n].kind = SKULD_COUNT_OPEN;
		events[n].key = key;
		events[n].item = item.id;
		events[n].location = place.id;
		events[n].id = count_id;
		n++;
	}
	if (!open_only) {
		memset(&events[n], 0, sizeof(events[n]));
		events[n].kind = SKULD_COUNT_CLOSE;
		events[n].key = ctl_movement_key(ctl, 1, action);
		events[n].item = item.id;
		events[n].location = place.id;
		events[n].id = count_id;
		events[n].quantity = units;
		n++;
	}
	skuld_events_link(events, n);
	if ((rc = ctl_submit(ctl, events, n, results)) != CTL_EXIT_OK)
		return rc;
	uint16_t status = ctl_chain_status(results, n, NULL);
	if (status != SKULD_OK)
		return refused(ctl, "count", status);
	char expected[CTL_QUANTITY_CHARS], delta[CTL_QUANTITY_CHARS], counted[CTL_QUANTITY_CHARS];
	char available[CTL_QUANTITY_CHARS], flags[160];
	const struct skuld_result *last = &results[n - 1];
	ctl_quantity_format(results[0].quantity, item.scale, expected);
	ctl_quantity_format(last->quantity, item.scale, delta);
	ctl_quantity_format(units, item.scale, counted);
	ctl_quantity_format(last->available, item.scale, available);
	if (ctl->json) {
		printf("{\"command\":\"count\",\"status\":\"OK\",\"sku\":");
		ctl_json_string(stdout, item.sku);
		printf(",\"location\":");
		ctl_json_string(stdout, place.code);
		printf(",\"count_id\":%" PRIu64 ",", count_id);
		if (close_id == 0)
			json_quantity("expected", results[0].quantity, item.scale, 1);
		if (!open_only) {
			json_quantity("counted", units, item.scale, 1);
			json_quantity("delta", last->quantity, item.scale, 1);
		}
		json_quantity("available", last->available, item.scale, 1);
		json_flags(last->flags);
		printf("}\n");
	} else if (open_only) {
		printf("count %" PRIu64 " opened for %s at %s: expected %s%s\n", count_id, item.sku,
		       place.code, expected, flag_words(last->flags, flags, sizeof(flags)));
		printf("close it with: skuldctl count %s@%s QTY --close %" PRIu64 "\n", item.sku,
		       place.code, count_id);
	} else {
		printf("counted %s %s at %s%s%s%s: delta %s%s, available %s%s\n", counted, item.sku,
		       place.code, close_id == 0 ? " (expected " : "",
		       close_id == 0 ? expected : "", close_id == 0 ? ")" : "",
		       last->quantity > 0 ? "+" : "", delta, available,
		       flag_words(last->flags, flags, sizeof(flags)));
	}
	return CTL_EXIT_OK;
}

static int cmd_transfer(struct ctl *ctl, struct args *args)
{
	struct item_ref item;
	struct place_ref from, to;
	struct skuld_event events[2];
	struct skuld_result results[2];
	int in_transit = 0;
	option(args, "--in-transit", &in_transit);
	const char *arrive_text = option(args, "--arrive", NULL);
	uint64_t arrive = 0;
	int rc = options_all_used(args, "transfer");
	if (rc != 0)
		return rc;
	if (arrive_text != NULL && (ctl_u64_parse(arrive_text, &arrive) != 0 || arrive == 0))
		return usage_error("--arrive '%s' must be a transfer id", arrive_text);
	if (args->positional_count != 5 || (in_transit && arrive != 0))
		return usage_error("usage: transfer SKU FROM TO QTY [--in-transit | --arrive ID]%s",
		                   "");
	memset(&item, 0, sizeof(item));
	memset(&from, 0, sizeof(from));
	memset(&to, 0, sizeof(to));
	const char *const *p = args->positional;
	if ((rc = copy_code(item.sku, p[1], strlen(p[1]), "SKU")) != 0 ||
	    (rc = copy_code(from.code, p[2], strlen(p[2]), "location")) != 0 ||
	    (rc = copy_code(to.code, p[3], strlen(p[3]), "location")) != 0)
		return rc;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if ((rc = item_resolve(ctl, &item)) != CTL_EXIT_OK ||
	    (rc = place_resolve(ctl, &from)) != CTL_EXIT_OK ||
	    (rc = place_resolve(ctl, &to)) != CTL_EXIT_OK)
		return rc;
	int64_t units = 0;
	if ((rc = quantity_arg(p[4], &item, QUANTITY_POSITIVE, &units)) != 0)
		return rc;
	char action[160];
	snprintf(action, sizeof(action), "transfer %" PRIu32 " %" PRIu32 "->%" PRIu32 " %" PRId64,
	         item.id, from.id, to.id, units);
	skuld_u128 key = ctl_movement_key(ctl, 0, action);
	uint64_t transfer = arrive != 0 ? arrive : ((key.lo >> 1) | 1);
	uint32_t n = 0;
	if (arrive == 0)
		skuld_event_transfer_out(&events[n++], key, transfer, item.id, from.id, to.id,
		                         units);
	if (!in_transit)
		skuld_event_transfer_in(&events[n++], ctl_movement_key(ctl, 1, action), transfer,
		                        item.id, to.id, units);
	skuld_events_link(events, n);
	if ((rc = ctl_submit(ctl, events, n, results)) != CTL_EXIT_OK)
		return rc;
	uint16_t status = ctl_chain_status(results, n, NULL);
	if (status != SKULD_OK)
		return refused(ctl, "transfer", status);
	char quantity[CTL_QUANTITY_CHARS], flags[160];
	ctl_quantity_format(units, item.scale, quantity);
	if (ctl->json) {
		printf("{\"command\":\"transfer\",\"status\":\"OK\",\"sku\":");
		ctl_json_string(stdout, item.sku);
		printf(",\"from\":");
		ctl_json_string(stdout, from.code);
		printf(",\"to\":");
		ctl_json_string(stdout, to.code);
		printf(",\"transfer_id\":%" PRIu64 ",\"in_transit\":%s,", transfer,
		       in_transit ? "true" : "false");
		json_quantity("quantity", units, item.scale, 1);
		if (arrive == 0)
			json_quantity("available_from", results[0].available, item.scale, 1);
		if (!in_transit)
			json_quantity("available_to", results[n - 1].available, item.scale, 1);
		json_flags(results[0].flags);
		printf("}\n");
	} else if (in_transit) {
		printf("transfer %" PRIu64 ": %s %s left %s for %s (in transit)%s\n", transfer,
		       quantity, item.sku, from.code, to.code,
		       flag_words(results[0].flags, flags, sizeof(flags)));
		printf("book its arrival with: skuldctl transfer %s %s %s %s --arrive %" PRIu64
		       "\n",
		       item.sku, from.code, to.code, quantity, transfer);
	} else {
		printf("transfer %" PRIu64 ": %s %s %s %s to %s%s\n", transfer, quantity, item.sku,
		       arrive != 0 ? "arrived from" : "moved from", from.code, to.code,
		       flag_words(results[0].flags, flags, sizeof(flags)));
	}
	return CTL_EXIT_OK;
}

/* ---- Holds ------------------------------------------------------------------ */

static int hold_arg(const char *text, uint64_t *hold)
{
	if (ctl_u64_parse(text, hold) != 0 || *hold == 0)
		return usage_error("'%s' is not a hold id (a positive number)", text);
	return 0;
}

static int hold_print(const struct ctl *ctl, const char *command, const char *verb, uint64_t hold,
                      const struct skuld_result *result, uint8_t scale, const char *sku)
{
	char quantity[CTL_QUANTITY_CHARS], available[CTL_QUANTITY_CHARS], flags[160];
	if (result->status != SKULD_OK)
		return refused(ctl, command, result->status);
	ctl_quantity_format(result->quantity, scale, quantity);
	ctl_quantity_format(result->available, scale, available);
	if (ctl->json) {
		printf("{\"command\":\"%s\",\"status\":\"OK\",\"hold\":%" PRIu64 ",\"sku\":",
		       command, hold);
		if (sku != NULL)
			ctl_json_string(stdout, sku);
		else
			printf("null");
		printf(",\"location_id\":%" PRIu32 ",", result->location);
		json_quantity("quantity", result->quantity, scale, 1);
		json_quantity("available", result->available, scale, 1);
		json_flags(result->flags);
		printf("}\n");
	} else {
		printf("hold %" PRIu64 ": %s %s%s%s at location #%" PRIu32
		       ", available there %s%s\n",
		       hold, verb, quantity, sku != NULL ? " " : "", sku != NULL ? sku : "",
		       result->location, available,
		       flag_words(result->flags, flags, sizeof(flags)));
	}
	return CTL_EXIT_OK;
}

static int cmd_reserve(struct ctl *ctl, struct args *args)
{
	struct item_ref item;
	struct place_ref place;
	struct skuld_event event;
	struct skuld_result result;
	const char *ttl_text = option(args, "--ttl", NULL);
	const char *hold_text = option(args, "--hold", NULL);
	int rc = options_all_used(args, "reserve");
	if (rc != 0)
		return rc;
	if (args->positional_count != 3)
		return usage_error("usage: reserve SKU@LOC|SKU@channel:NAME QTY [--ttl 15m] "
		                   "[--hold ID]%s",
		                   "");
	uint32_t ttl = 15 * 60;
	if (ttl_text != NULL && ctl_duration_parse(ttl_text, &ttl) != 0)
		return usage_error("--ttl '%s' must be like 90s, 15m, 2h or 1d", ttl_text);
	uint64_t hold = 0;
	if (hold_text != NULL && (rc = hold_arg(hold_text, &hold)) != 0)
		return rc;
	if ((rc = split_target(args->positional[1], &item, &place, 0, 1)) != 0)
		return rc;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if ((rc = item_resolve(ctl, &item)) != CTL_EXIT_OK ||
	    (rc = place_resolve(ctl, &place)) != CTL_EXIT_OK)
		return rc;
	int64_t units = 0;
	if ((rc = quantity_arg(args->positional[2], &item, QUANTITY_POSITIVE, &units)) != 0)
		return rc;
	char action[160];
	snprintf(action, sizeof(action),
	         "reserve %" PRIu32 "@%s%" PRIu32 " %" PRId64 " ttl=%u hold=%" PRIu64, item.id,
	         place.channel ? "channel:" : "", place.id, units, ttl, hold);
	skuld_u128 key = ctl_movement_key(ctl, 0, action);
	if (hold == 0) /* with --key the hold id derives from it: a re-run is the same hold */
		hold = ctl->key != NULL ? ((key.lo >> 1) | 1) : ctl_random_u64();
	if (place.channel)
		skuld_event_reserve_channel(&event, key, hold, item.id, place.id, units, ttl);
	else
		skuld_event_reserve(&event, key, hold, item.id, place.id, units, ttl);
	if ((rc = ctl_submit(ctl, &event, 1, &result)) != CTL_EXIT_OK)
		return rc;
	return hold_print(ctl, "reserve", "holds", hold, &result, item.scale, item.sku);
}

/* The scale of the item a hold is on (QUERY HOLD, then LOOKUP ITEM). */
static int hold_scale(struct ctl *ctl, uint64_t hold, uint8_t *scale)
{
	struct skuld_hold_record record;
	*scale = 0;
	int rc = skuld_query_hold(ctl->client, hold, &record, CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "query");
	if (record.status != SKULD_OK)
		return refused(ctl, "hold", record.status);
	return ctl_item_scale(ctl, record.item, scale);
}

static int cmd_hold_action(struct ctl *ctl, struct args *args, const char *command)
{
	struct skuld_event event;
	struct skuld_result result;
	const char *ttl_text = strcmp(command, "extend") == 0 ? option(args, "--ttl", NULL) : NULL;
	int rc = options_all_used(args, command);
	if (rc != 0)
		return rc;
	int is_commit = strcmp(command, "commit") == 0;
	if (args->positional_count != 2 && !(is_commit && args->positional_count == 3))
		return usage_error(
		        "usage: extend HOLD --ttl D | commit HOLD [QTY] | release HOLD%s", "");
	uint64_t hold = 0;
	if ((rc = hold_arg(args->positional[1], &hold)) != 0)
		return rc;
	uint32_t ttl = 0;
	if (strcmp(command, "extend") == 0 &&
	    (ttl_text == NULL || ctl_duration_parse(ttl_text, &ttl) != 0))
		return usage_error("extend needs --ttl like 90s, 15m, 2h or 1d%s", "");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	uint8_t scale = 0;
	if ((rc = hold_scale(ctl, hold, &scale)) != CTL_EXIT_OK)
		return rc;
	int64_t units = 0;
	if (is_commit && args->positional_count == 3) {
		struct item_ref item = {.scale = scale};
		snprintf(item.sku, sizeof(item.sku), "of hold %" PRIu64, hold);
		if ((rc = quantity_arg(args->positional[2], &item, QUANTITY_POSITIVE, &units)) != 0)
			return rc;
	}
	char action[96];
	snprintf(action, sizeof(action), "%s %" PRIu64 " %" PRId64 " ttl=%u", command, hold, units,
	         ttl);
	skuld_u128 key = ctl_movement_key(ctl, 0, action);
	const char *verb = "released";
	if (strcmp(command, "extend") == 0) {
		skuld_event_extend(&event, key, hold, ttl);
		verb = "extended, holds";
	} else if (is_commit) {
		skuld_event_commit(&event, key, hold, units);
		verb = "committed";
	} else {
		skuld_event_release(&event, key, hold);
	}
	if ((rc = ctl_submit(ctl, &event, 1, &result)) != CTL_EXIT_OK)
		return rc;
	return hold_print(ctl, command, verb, hold, &result, scale, NULL);
}

/* ---- Exceptions and discrepancies --------------------------------------------- */

/* `exceptions`: channel exceptions and discrepancies; --channel NAME keeps
 * one channel's exceptions, --discrepancies (and --location) only
 * discrepancies. */
static int cmd_exceptions(struct ctl *ctl, struct args *args)
{
	int only_discrepancies = 0, all = 0;
	const char *name = option(args, "--channel", NULL);
	const char *location = option(args, "--location", NULL);
	option(args, "--discrepancies", &only_discrepancies);
	option(args, "--all", &all);
	int rc = options_all_used(args, "exceptions");
	if (rc != 0)
		return rc;
	if (args->positional_count != 1 || (name != NULL && (only_discrepancies || location)))
		return usage_error(
		        "usage: exceptions [--channel NAME | --discrepancies [--location "
		        "LOC]] [--all]%s",
		        "");
	struct ctl_exception_filter filter = {
	        .channels = location == NULL && !only_discrepancies,
	        .discrepancies = name == NULL,
	        .acknowledged = all,
	};
	if (location != NULL) {
		struct place_ref place;
		memset(&place, 0, sizeof(place));
		if ((rc = copy_code(place.code, location, strlen(location), "location")) != 0)
			return rc;
		if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK ||
		    (rc = place_resolve(ctl, &place)) != 0)
			return rc;
		filter.location = place.id;
	}
	return ctl_exceptions(ctl, name, &filter);
}

/* `acknowledge SKU@LOC`: a DISCREPANCY_ACK event (admin tokens only). */
static int cmd_acknowledge(struct ctl *ctl, struct args *args)
{
	struct item_ref item;
	struct place_ref place;
	int rc = options_all_used(args, "acknowledge");
	if (rc != 0)
		return rc;
	if (args->positional_count != 2)
		return usage_error("usage: acknowledge SKU@LOC%s", "");
	if ((rc = split_target(args->positional[1], &item, &place, 0, 0)) != 0)
		return rc;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK || (rc = item_resolve(ctl, &item)) != 0 ||
	    (rc = place_resolve(ctl, &place)) != 0)
		return rc;
	char action[96];
	snprintf(action, sizeof(action), "acknowledge %" PRIu32 " %" PRIu32, item.id, place.id);
	struct skuld_event event;
	memset(&event, 0, sizeof(event));
	event.kind = SKULD_DISCREPANCY_ACK;
	event.key = ctl_movement_key(ctl, 0, action);
	event.item = item.id;
	event.location = place.id;
	struct skuld_result result;
	if ((rc = ctl_submit(ctl, &event, 1, &result)) != CTL_EXIT_OK)
		return rc;
	if (result.status != SKULD_OK)
		return refused(ctl, "acknowledge", result.status);
	if (ctl->json) {
		printf("{\"command\":\"acknowledge\",\"sku\":");
		ctl_json_string(stdout, item.sku);
		printf(",\"location\":");
		ctl_json_string(stdout, place.code);
		printf(",\"replayed\":%s}\n",
		       (result.flags & SKULD_RESULT_REPLAYED) ? "true" : "false");
	} else {
		printf("discrepancy of %s at %s acknowledged%s\n", item.sku, place.code,
		       (result.flags & SKULD_RESULT_REPLAYED) ? " (already applied)" : "");
	}
	return CTL_EXIT_OK;
}

/* ---- Queries ------------------------------------------------------------------- */

static int cmd_level(struct ctl *ctl, struct args *args)
{
	struct item_ref item;
	struct place_ref place;
	int rc = options_all_used(args, "level");
	if (rc != 0)
		return rc;
	if (args->positional_count != 2)
		return usage_error("usage: level SKU[@LOC]%s", "");
	if ((rc = split_target(args->positional[1], &item, &place, 1, 0)) != 0)
		return rc;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if ((rc = item_resolve(ctl, &item)) != CTL_EXIT_OK)
		return rc;
	if (place.code[0] != '\0') {
		struct skuld_level_record record;
		if ((rc = place_resolve(ctl, &place)) != CTL_EXIT_OK)
			return rc;
		rc = skuld_query_level(ctl->client, item.id, place.id, &record, CTL_TIMEOUT_MS);
		if (rc != 0)
			return ctl_fail(rc, "query");
		if (record.status != SKULD_OK)
			return refused(ctl, "level", record.status);
		if (ctl->json) {
			level_print_json(&record, item.sku, place.code, item.scale);
			printf("\n");
		} else {
			level_print_header();
			level_print_row(&record, item.sku, place.code, item.scale);
		}
		return CTL_EXIT_OK;
	}
	/* Every location holding the item, page by page. */
	static union skuld_query_record records[SKULD_QUERY_LIMIT_MAX];
	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_ITEM_LEVELS;
	query.item = item.id;
	int printed = 0;
	if (ctl->json)
		printf("[");
	else
		level_print_header();
	for (int page = 0; page < PAGES_MAX; page++) {
		uint32_t count = 0;
		rc = skuld_query(ctl->client, &query, records, SKULD_QUERY_LIMIT_MAX, &count,
		                 CTL_TIMEOUT_MS);
		if (rc != 0)
			return ctl_fail(rc, "query");
		int more = 0;
		for (uint32_t i = 0; i < count; i++) {
			const struct skuld_level_record *record = &records[i].level;
			if (record->status != SKULD_OK)
				return refused(ctl, "level", record->status);
			more = (record->flags & SKULD_QUERY_MORE) != 0;
			query.after_location = record->location;
			if (record->flags & SKULD_QUERY_CURSOR)
				continue;
			if (ctl->json) {
				printf("%s", printed++ ? "," : "");
				level_print_json(record, item.sku, NULL, item.scale);
			} else {
				level_print_row(record, item.sku, NULL, item.scale);
			}
		}
		if (!more)
			break;
	}
	if (ctl->json)
		printf("]\n");
	return CTL_EXIT_OK;
}

static int cmd_levels(struct ctl *ctl, struct args *args)
{
	struct place_ref place;
	int rc = options_all_used(args, "levels");
	if (rc != 0)
		return rc;
	if (args->positional_count != 2)
		return usage_error("usage: levels LOC%s", "");
	memset(&place, 0, sizeof(place));
	if ((rc = copy_code(place.code, args->positional[1], strlen(args->positional[1]),
	                    "location")) != 0)
		return rc;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if ((rc = place_resolve(ctl, &place)) != CTL_EXIT_OK)
		return rc;
	static union skuld_query_record records[SKULD_QUERY_LIMIT_MAX];
	struct skuld_query query;
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_LOCATION_LEVELS;
	query.location = place.id;
	int printed = 0;
	if (ctl->json)
		printf("[");
	else
		level_print_header();
	for (int page = 0; page < PAGES_MAX; page++) {
		uint32_t count = 0;
		rc = skuld_query(ctl->client, &query, records, SKULD_QUERY_LIMIT_MAX, &count,
		                 CTL_TIMEOUT_MS);
		if (rc != 0)
			return ctl_fail(rc, "query");
		int more = 0;
		for (uint32_t i = 0; i < count; i++) {
			const struct skuld_level_record *record = &records[i].level;
			if (record->status != SKULD_OK)
				return refused(ctl, "levels", record->status);
			more = (record->flags & SKULD_QUERY_MORE) != 0;
			query.after_item = record->item;
			if (record->flags & SKULD_QUERY_CURSOR)
				continue;
			uint8_t scale = 0;
			if ((rc = ctl_item_scale(ctl, record->item, &scale)) != CTL_EXIT_OK)
				return rc;
			if (ctl->json) {
				printf("%s", printed++ ? "," : "");
				level_print_json(record, NULL, place.code, scale);
			} else {
				level_print_row(record, NULL, place.code, scale);
			}
		}
		if (!more)
			break;
	}
	if (ctl->json)
		printf("]\n");
	return CTL_EXIT_OK;
}

static int cmd_channel_level(struct ctl *ctl, struct args *args)
{
	struct item_ref item;
	struct place_ref channel;
	const char *name = option(args, "--channel", NULL);
	int rc = options_all_used(args, "channel-level");
	if (rc != 0)
		return rc;
	if (args->positional_count != 2 || name == NULL)
		return usage_error("usage: channel-level SKU --channel NAME%s", "");
	memset(&item, 0, sizeof(item));
	memset(&channel, 0, sizeof(channel));
	channel.channel = 1;
	if ((rc = copy_code(item.sku, args->positional[1], strlen(args->positional[1]), "SKU")) !=
	            0 ||
	    (rc = copy_code(channel.code, name, strlen(name), "channel")) != 0)
		return rc;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if ((rc = item_resolve(ctl, &item)) != CTL_EXIT_OK ||
	    (rc = place_resolve(ctl, &channel)) != CTL_EXIT_OK)
		return rc;
	struct skuld_query query;
	union skuld_query_record record;
	uint32_t count = 0;
	memset(&query, 0, sizeof(query));
	query.kind = SKULD_QUERY_CHANNEL;
	query.item = item.id;
	query.channel = channel.id;
	rc = skuld_query(ctl->client, &query, &record, 1, &count, CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "query");
	if (count < 1 || record.level.status != SKULD_OK)
		return refused(ctl, "channel-level",
		               count < 1 ? SKULD_ITEM_UNKNOWN : record.level.status);
	char quantity[CTL_QUANTITY_CHARS];
	ctl_quantity_format(record.level.available, item.scale, quantity);
	if (ctl->json) {
		printf("{\"sku\":");
		ctl_json_string(stdout, item.sku);
		printf(",\"item\":%" PRIu32 ",\"channel\":", item.id);
		ctl_json_string(stdout, channel.code);
		printf(",\"channel_id\":%" PRIu32 ",\"scale\":%u,", channel.id, item.scale);
		json_quantity("available", record.level.available, item.scale, 0);
		printf("}\n");
	} else {
		printf("%s on %s: %s\n", item.sku, channel.code, quantity);
	}
	return CTL_EXIT_OK;
}

/* The newest SHA-256 chain head the server exported (at its last
 * snapshot), as "SEQ:HEX" for skuld-replay verify --head. */
static int cmd_chain_head(struct ctl *ctl, struct args *args)
{
	struct skuld_stats stats;
	int rc = options_all_used(args, "chain-head");
	if (rc != 0)
		return rc;
	if (args->positional_count != 1)
		return usage_error("usage: chain-head%s", "");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	rc = skuld_stats(ctl->client, &stats, CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "chain-head");
	char hex[2 * sizeof(stats.chain_head) + 1];
	for (size_t i = 0; i < sizeof(stats.chain_head); i++)
		snprintf(hex + 2 * i, 3, "%02x", stats.chain_head[i]);
	int none = stats.chain_head_event == 0;
	for (size_t i = 0; none && i < sizeof(stats.chain_head); i++)
		none = stats.chain_head[i] == 0;
	if (ctl->json)
		printf(none ? "{\"chain_head\":null}\n" : "{\"chain_head\":\"%" PRIu64 ":%s\"}\n",
		       stats.chain_head_event, hex);
	else if (none)
		printf("no chain head yet: the server exports one with each snapshot\n");
	else
		printf("%" PRIu64 ":%s\n", stats.chain_head_event, hex);
	return CTL_EXIT_OK;
}

/* Prints one figure of `stats`, as text or as a JSON member. */
static void stats_field(const struct ctl *ctl, const char *name, uint64_t value, int *first)
{
	if (ctl->json)
		printf("%s\"%s\":%" PRIu64, *first ? "{" : ",", name, value);
	else
		printf("%-22s %" PRIu64 "\n", name, value);
	*first = 0;
}

/* STATS records 1 and 2 (docs/PROTOCOL.md section 14): the limit counters,
 * the SUBMIT latency histogram (one line per bucket, its upper bound in
 * microseconds; "inf" for the last) and the non-zero ERROR counts by name. */
static void stats_limits_print(const struct ctl *ctl, const struct skuld_stats_all *all, int *first)
{
	const struct skuld_stats_limits *limits = &all->limits;
	const struct {
		const char *name;
		uint64_t value;
	} fields[] = {
	        {"frames_oversize", limits->frames_oversize},
	        {"closed_slow", limits->closed_slow},
	        {"closed_unregistered", limits->closed_unregistered},
	        {"closed_idle", limits->closed_idle},
	        {"closed_stalled", limits->closed_stalled},
	        {"reply_waits", limits->reply_waits},
	        {"pool_waits", limits->pool_waits},
	        {"recv_paused", limits->recv_paused},
	        {"denied_events", limits->denied_events},
	        {"denied_reads", limits->denied_reads},
	        {"tokens_refused", limits->tokens_refused},
	        {"sessions_busy", limits->sessions_busy},
	        {"latency_count", limits->latency_count},
	        {"latency_sum_ns", limits->latency_sum_ns},
	        {"latency_max_ns", limits->latency_max_ns},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		stats_field(ctl, fields[i].name, fields[i].value, first);
	for (uint32_t i = 0; i < SKULD_STATS_LATENCY_BUCKETS; i++) {
		char name[40];
		if (i + 1 < SKULD_STATS_LATENCY_BUCKETS)
			snprintf(name, sizeof(name), "latency_le_%lluus",
			         (SKULD_STATS_LATENCY_BASE_NS << i) / 1000ull);
		else
			snprintf(name, sizeof(name), "latency_le_inf");
		stats_field(ctl, name, limits->latency_bucket[i], first);
	}
	for (uint32_t i = 0; i < sizeof(all->rejects.rejected) / sizeof(uint64_t); i++) {
		if (all->rejects.rejected[i] == 0)
			continue;
		char name[48];
		snprintf(name, sizeof(name), "rejected_%s", skuld_status_name(100 + i));
		for (char *c = name; *c != '\0'; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
		stats_field(ctl, name, all->rejects.rejected[i], first);
	}
}

static int cmd_stats(struct ctl *ctl, struct args *args)
{
	struct skuld_stats_all all;
	const struct skuld_stats *stats = &all.server;
	uint32_t records = 0;
	int prometheus = 0;
	option(args, "--prometheus", &prometheus);
	int rc = options_all_used(args, "stats");
	if (rc != 0)
		return rc;
	if (args->positional_count != 1)
		return usage_error("usage: stats [--prometheus]%s", "");
	if (prometheus)
		return ctl_stats_prometheus(ctl);
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	rc = skuld_stats_all(ctl->client, &all, &records, CTL_TIMEOUT_MS);
	if (rc != 0)
		return ctl_fail(rc, "stats");
	const struct {
		const char *name;
		uint64_t value;
	} fields[] = {
	        {"uptime_ns", stats->uptime_ns},
	        {"connections_open", stats->connections_open},
	        {"connections_accepted", stats->connections_accepted},
	        {"connections_refused", stats->connections_refused},
	        {"sessions", stats->sessions},
	        {"requests", stats->requests},
	        {"requests_retried", stats->requests_retried},
	        {"events", stats->events},
	        {"events_expired", stats->events_expired},
	        {"queries", stats->queries},
	        {"frames_rejected", stats->frames_rejected},
	        {"log_bytes", stats->log_bytes},
	        {"log_writes", stats->log_writes},
	        {"event_durable", stats->event_durable},
	        {"write_durable", stats->write_durable},
	        {"group_records_last", stats->group_records_last},
	        {"group_records_max", stats->group_records_max},
	        {"group_events_last", stats->group_events_last},
	        {"group_events_max", stats->group_events_max},
	        {"fsync_ns_last", stats->fsync_ns_last},
	        {"fsync_ns_max", stats->fsync_ns_max},
	        {"fsync_ns_total", stats->fsync_ns_total},
	        {"holds_open", stats->holds_open},
	        {"memory_bytes", stats->memory_bytes},
	        {"log_segment", stats->log_segment},
	        {"disk_free_bytes", stats->disk_free_bytes},
	        {"disk_alarm", stats->disk_alarm},
	};
	int first = 1;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		stats_field(ctl, fields[i].name, fields[i].value, &first);
	if (records >= 2) /* an older server sends the first record only */
		stats_limits_print(ctl, &all, &first);
	if (ctl->json)
		printf("}\n");
	return CTL_EXIT_OK;
}

static int cmd_import(struct ctl *ctl, struct args *args)
{
	int dry_run = 0;
	option(args, "--dry-run", &dry_run);
	const char *session = option(args, "--session", NULL);
	int rc = options_all_used(args, "import");
	if (rc != 0)
		return rc;
	if (args->positional_count != 3)
		return usage_error("usage: import items|locations|bundles|counts|mappings FILE.csv "
		                   "[--dry-run] [--session S]%s",
		                   "");
	if (session != NULL && (session[0] == '\0' || strlen(session) > 32))
		return usage_error("--session '%s' must be 1 to 32 characters", session);
	if (strcmp(args->positional[1], "mappings") == 0) {
		if (session != NULL)
			return usage_error("import mappings takes no --session%s", "");
		return ctl_import_mappings(ctl, args->positional[2], dry_run);
	}
	return ctl_import(ctl, args->positional[1], args->positional[2], dry_run, session);
}

/* ---- main ------------------------------------------------------------------------ */

static int run(struct ctl *ctl, struct args *args)
{
	const char *command = args->positional[0];
	if (strcmp(command, "define-item") == 0)
		return cmd_define_item(ctl, args);
	if (strcmp(command, "define-location") == 0)
		return cmd_define_location(ctl, args);
	if (strcmp(command, "define-bundle") == 0)
		return cmd_define_bundle(ctl, args);
	if (strcmp(command, "define-channel") == 0)
		return cmd_define_channel(ctl, args);
	if (strcmp(command, "receive") == 0)
		return simple_movement(ctl, args, "receive", "received");
	if (strcmp(command, "sell") == 0)
		return simple_movement(ctl, args, "sell", "sold");
	if (strcmp(command, "return") == 0)
		return simple_movement(ctl, args, "return", "returned");
	if (strcmp(command, "adjust") == 0)
		return simple_movement(ctl, args, "adjust", "adjusted by");
	if (strcmp(command, "count") == 0)
		return cmd_count(ctl, args);
	if (strcmp(command, "transfer") == 0)
		return cmd_transfer(ctl, args);
	if (strcmp(command, "reserve") == 0)
		return cmd_reserve(ctl, args);
	if (strcmp(command, "extend") == 0 || strcmp(command, "commit") == 0 ||
	    strcmp(command, "release") == 0)
		return cmd_hold_action(ctl, args, command);
	if (strcmp(command, "level") == 0)
		return cmd_level(ctl, args);
	if (strcmp(command, "levels") == 0)
		return cmd_levels(ctl, args);
	if (strcmp(command, "channel-level") == 0)
		return cmd_channel_level(ctl, args);
	if (strcmp(command, "stats") == 0)
		return cmd_stats(ctl, args);
	if (strcmp(command, "chain-head") == 0)
		return cmd_chain_head(ctl, args);
	if (strcmp(command, "metrics") == 0) {
		const char *listen = option(args, "--listen", NULL);
		int rc = options_all_used(args, "metrics");
		if (rc != 0)
			return rc;
		if (args->positional_count != 1 || listen == NULL)
			return usage_error("usage: metrics --listen HOST:PORT%s", "");
		return ctl_metrics_serve(ctl, listen);
	}
	if (strcmp(command, "import") == 0)
		return cmd_import(ctl, args);
	if (strcmp(command, "channels") == 0) {
		int rc = options_all_used(args, "channels");
		if (rc != 0)
			return rc;
		return ctl_channels(ctl, &args->positional[1], args->positional_count - 1);
	}
	if (strcmp(command, "exceptions") == 0)
		return cmd_exceptions(ctl, args);
	if (strcmp(command, "acknowledge") == 0)
		return cmd_acknowledge(ctl, args);
	return usage_error("unknown command '%s'", command);
}

int main(int argc, char **argv)
{
	struct ctl ctl;
	static struct args args;
	memset(&ctl, 0, sizeof(ctl));
	ctl.server = getenv("SKULD_SERVER");
	if (ctl.server == NULL || ctl.server[0] == '\0')
		ctl.server = "127.0.0.1:7878";
	ctl.token = getenv("SKULD_TOKEN");
	ctl.tls_ca = getenv("SKULD_TLS_CA");
	ctl.tls_name = getenv("SKULD_TLS_SERVER_NAME");
	if (ctl.tls_ca != NULL && ctl.tls_ca[0] == '\0')
		ctl.tls_ca = NULL;
	if (ctl.tls_name != NULL && ctl.tls_name[0] == '\0')
		ctl.tls_name = NULL;
	int rc = args_parse(&args, argc - 1, argv + 1);
	if (rc != 0)
		return rc;
	int help = 0;
	option(&args, "--help", &help);
	if (help || (args.positional_count >= 1 && strcmp(args.positional[0], "help") == 0)) {
		fputs(usage_text, stdout);
		return CTL_EXIT_OK;
	}
	const char *value;
	if ((value = option(&args, "--server", NULL)) != NULL)
		ctl.server = value;
	if ((value = option(&args, "--token", NULL)) != NULL)
		ctl.token = value;
	if ((value = option(&args, "--tls-ca", NULL)) != NULL)
		ctl.tls_ca = value;
	if ((value = option(&args, "--tls-server-name", NULL)) != NULL)
		ctl.tls_name = value;
	if ((value = option(&args, "--key", NULL)) != NULL)
		ctl.key = value;
	if ((value = option(&args, "--idempotency", NULL)) != NULL)
		ctl.key = value;
	option(&args, "--json", &ctl.json);
	if (args.positional_count == 0) {
		fputs(usage_text, stderr);
		return CTL_EXIT_USAGE;
	}
	if (ctl.key != NULL && ctl.key[0] == '\0')
		return usage_error("--key must not be empty%s", "");
	rc = run(&ctl, &args);
	ctl_close(&ctl);
	fflush(stdout);
	return rc;
}
