/*
 * query.h — answers to QUERY and LOOKUP frames (docs/PROTOCOL.md sections 12
 * and 13), read from the ledger and the directory.
 *
 * Owns: the per-kind reading of the 64-byte reply records and the paging
 * rules (ascending ids after the cursor, MORE on a full page, a CURSOR
 * record when the scan budget ran out first). Pure: reads state, changes
 * nothing, no I/O.
 */
#ifndef SKULD_SERVER_QUERY_H
#define SKULD_SERVER_QUERY_H

#include <stdint.h>

#include "directory.h"
#include "ledger.h"
#include "protocol.h"

struct query_limits {
	uint32_t limit_max; /* records per page, <= SKULD_QUERY_LIMIT_MAX */
	uint32_t scan_max;  /* ids one list query looks at, at most */
	uint32_t items_max; /* the ledger's id ranges */
	uint32_t locations_max;
};

/* Writes the answer to query (already checked by proto_query_check) into
 * records (room for limits->limit_max 64-byte records; LEVEL and HOLD need
 * one) and returns how many were written. */
uint32_t query_answer(const struct ledger *ledger, const struct query_limits *limits,
                      const struct skuld_query *query, void *records);

/* Writes the matches for lookup (checked by proto_lookup_check) into out
 * (room for SKULD_LOOKUP_MATCHES_MAX) and returns how many: at least 1. */
uint32_t lookup_answer(const struct ledger *ledger, const struct directory *directory,
                       const struct skuld_lookup *lookup, struct skuld_lookup_match *out);

#endif /* SKULD_SERVER_QUERY_H */
