/*
 * chain.h — the SHA-256 chain head over the log's records: what an auditor
 * keeps to prove later that the log up to a point was not changed.
 *
 * Owns: the definition of the chain (docs/FORMAT.md, "SHA-256 chain head")
 * and its text form. The XXH3 checksums of the log find corruption; they
 * are not keyed and not cryptographic, so anyone who can write the files
 * can change a record and recompute them. This chain cannot be recomputed
 * to match a head taken earlier without a SHA-256 second preimage.
 *
 *   head_0 = 32 zero bytes
 *   head_n = SHA-256(head_{n-1} || the n-th record of the log as stored:
 *                    its 64-byte header, its events, its results)
 *
 * A head is written "SEQ:HEX": SEQ the sequence of the last event covered
 * (event_first + count - 1 of the last record hashed; 0 for head_0), HEX the
 * 64 lower-case hex digits of the hash. Records of 0 events leave SEQ as it
 * was, so several consecutive heads can carry the same SEQ; a reader that
 * checks a head accepts it at any record boundary where the log stood at
 * SEQ (docs/REPLAY.md).
 *
 * Invariants:
 *   - Only chain.c includes OpenSSL (libcrypto, EVP API).
 *   - A chain's head changes only in chain_add; the sequence never goes
 *     backwards (the caller feeds records in log order).
 */
#ifndef SKULD_CHAIN_H
#define SKULD_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define CHAIN_HASH_SIZE 32u
#define CHAIN_TEXT_SIZE 86u /* 20 digits, ':', 64 hex digits, NUL */

struct chain_head {
	uint64_t sequence;             /* last event covered; 0 for head_0 */
	uint8_t hash[CHAIN_HASH_SIZE]; /* SHA-256 */
};

struct chain;

/* Allocates a chain at head_0. Returns 0, -ENOMEM, or -EIO when libcrypto
 * has no SHA-256. The caller frees it with chain_destroy. */
int chain_create(struct chain **out);
void chain_destroy(struct chain *chain);

/* Restarts the chain at head (NULL: head_0), e.g. from a snapshot. */
void chain_reset(struct chain *chain, const struct chain_head *head);

/* Hashes one record: head = SHA-256(head || bytes[0..size)) and sequence =
 * sequence_last. Returns 0, or -EIO when libcrypto fails (then the head is
 * unchanged and the chain should not be trusted). */
int chain_add(struct chain *chain, const void *bytes, size_t size, uint64_t sequence_last);

/* chain_add of a record handed out by log_reader_next. */
int chain_add_record(struct chain *chain, const struct log_record *record);

/* The current head. */
void chain_head(const struct chain *chain, struct chain_head *out);

/* "SEQ:HEX" into text. */
void chain_format(const struct chain_head *head, char text[CHAIN_TEXT_SIZE]);

/* Parses "SEQ:HEX" (decimal SEQ without sign or leading '+', exactly 64 hex
 * digits, either case). Returns 0 or -EINVAL. */
int chain_parse(const char *text, struct chain_head *out);

bool chain_head_equal(const struct chain_head *a, const struct chain_head *b);

#endif /* SKULD_CHAIN_H */
