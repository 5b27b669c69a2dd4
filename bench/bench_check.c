/*
 * bench_check.c — skuld-bench's end-of-run check of the ledger against what
 * the run was told.
 *
 * Before and after the run, every level of the bench's catalog is read with
 * paged LOCATION_LEVELS queries and summed. The check then holds the server
 * to four things:
 *   - nothing oversold: at every item-location, reserved + committed never
 *     exceeds on_hand, and available is never negative;
 *   - every committed unit is one this run was told was committed:
 *     committed(after) - committed(before) = units of successful commits
 *     (flash-sale: the stock sold is exactly what checkouts were told);
 *   - every held unit is accounted for: reserved(after) - reserved(before) =
 *     units reserved - committed - released - abandoned by this run;
 *   - on_hand moved only as told: on_hand(after) - on_hand(before) = units
 *     received + returned - sold.
 * Holds the run means to finish live 600 s, far longer than a run; holds it
 * abandons live 1 s, and the caller reads "after" once they are past due
 * (bench.c). The bench must be the only writer while it runs.
 *
 * Test only: with --forge-oversell the first level read after the run with
 * stock on hand is altered as an overselling server would report it
 * (committed one unit beyond on_hand), so a test can see this check catch
 * it.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int query_page(int fd, skuld_u128 client, const struct skuld_query *query,
                      struct skuld_level_record *records, uint32_t *count)
{
	uint8_t frame[SKULD_HEADER_SIZE + sizeof(struct skuld_query)];
	struct skuld_header *header = (struct skuld_header *)frame;
	memset(frame, 0, sizeof(frame));
	header->version = SKULD_PROTOCOL_VERSION_MAX;
	header->operation = SKULD_OP_QUERY;
	header->client = client;
	header->body_size = sizeof(*query);
	header->count = 1;
	memcpy(frame + SKULD_HEADER_SIZE, query, sizeof(*query));
	proto_header_seal(header, frame + SKULD_HEADER_SIZE);
	size_t capacity = SKULD_HEADER_SIZE + SKULD_QUERY_LIMIT_MAX * sizeof(*records);
	uint8_t *reply = malloc(capacity);
	int status = -1;
	if (reply != NULL && bench_write_all(fd, frame, sizeof(frame)) == 0 &&
	    bench_reply_read(fd, SKULD_OP_QUERY, reply, capacity) == 0) {
		const struct skuld_header *reply_header = (const void *)reply;
		*count = reply_header->count;
		memcpy(records, reply + SKULD_HEADER_SIZE, *count * sizeof(*records));
		status = 0;
	}
	free(reply);
	return status;
}

/* Adds every level at location to totals; counts violations. */
static int location_sum(int fd, skuld_u128 client, uint32_t location, struct bench_totals *totals,
                        int *forge)
{
	struct skuld_level_record *records = calloc(SKULD_QUERY_LIMIT_MAX, sizeof(*records));
	struct skuld_query query = {.kind = SKULD_QUERY_LOCATION_LEVELS,
	                            .location = location,
	                            .limit = SKULD_QUERY_LIMIT_MAX};
	if (records == NULL)
		return -1;
	for (uint32_t page = 0; page < 1000000; page++) {
		uint32_t count = 0;
		if (query_page(fd, client, &query, records, &count) != 0) {
			free(records);
			return -1;
		}
		for (uint32_t i = 0; i < count; i++) {
			struct skuld_level_record *level = &records[i];
			if (level->flags & SKULD_QUERY_CURSOR)
				continue;
			if (*forge && level->on_hand > 0) {
				level->committed += level->available + 1;
				level->available = -1;
				*forge = 0;
			}
			totals->on_hand += level->on_hand;
			totals->reserved += level->reserved;
			totals->committed += level->committed;
			totals->levels++;
			if (level->available < 0 ||
			    level->reserved + level->committed > level->on_hand)
				totals->oversold++;
		}
		if (count == 0 || !(records[count - 1].flags & SKULD_QUERY_MORE))
			break;
		query.after_item = records[count - 1].item;
	}
	free(records);
	return 0;
}

int bench_totals_read(const struct bench *bench, struct bench_totals *totals, int forge)
{
	memset(totals, 0, sizeof(*totals));
	skuld_u128 client = {.lo = (uint64_t)bench_now_ns() | 1, .hi = (uint64_t)getpid() << 1};
	int fd = bench_connect(bench->options.server);
	if (fd < 0 || bench_register_blocking(fd, client) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	uint32_t locations = bench->options.hot != 0 && bench->options.pool == NULL
	                             ? 1
	                             : bench->options.locations;
	int status = 0;
	for (uint32_t location = 1; location <= locations && status == 0; location++)
		status = location_sum(fd, client, location, totals, &forge);
	close(fd);
	return status;
}

int64_t bench_reserved_expected(const struct bench *bench)
{
	return bench->units_reserved - bench->units_committed - bench->units_released -
	       bench->units_abandoned;
}

int bench_check(struct bench *bench, const struct bench_totals *before,
                const struct bench_totals *after)
{
	struct bench_check_figures *check = &bench->check;
	check->levels = after->levels;
	check->oversold_levels = after->oversold;
	check->stock_before = before->on_hand - before->reserved - before->committed;
	check->committed_ledger = after->committed - before->committed;
	check->committed_expected = bench->units_committed;
	check->reserved_ledger = after->reserved - before->reserved;
	check->reserved_expected = bench_reserved_expected(bench);
	check->on_hand_ledger = after->on_hand - before->on_hand;
	check->on_hand_expected = bench->units_received + bench->units_returned - bench->units_sold;
	int failures = 0;
	if (after->oversold != 0) {
		fprintf(stderr, "check: %llu item-locations hold more than is on hand\n",
		        (unsigned long long)after->oversold);
		failures++;
	}
	if (check->committed_ledger != check->committed_expected) {
		fprintf(stderr, "check: the ledger committed %lld units, the run was told %lld\n",
		        (long long)check->committed_ledger, (long long)check->committed_expected);
		failures++;
	}
	if (check->reserved_ledger != check->reserved_expected) {
		fprintf(stderr, "check: the ledger holds %lld more units, the run expects %lld\n",
		        (long long)check->reserved_ledger, (long long)check->reserved_expected);
		failures++;
	}
	if (check->on_hand_ledger != check->on_hand_expected) {
		fprintf(stderr, "check: on_hand moved by %lld units, the run expects %lld\n",
		        (long long)check->on_hand_ledger, (long long)check->on_hand_expected);
		failures++;
	}
	return failures == 0 ? 0 : -1;
}
