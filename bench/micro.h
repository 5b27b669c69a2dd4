/*
 * micro.h — the scenarios of skuld-microbench and their shared helpers.
 * Each scenario returns 0 when it ran, -1 when it could not (and says why).
 */
#ifndef SKULD_MICRO_H
#define SKULD_MICRO_H

#include <stdint.h>

uint64_t micro_now_ns(void);
uint64_t micro_random(uint64_t *state);

/* Sorts rates and prints median, minimum and maximum. */
void micro_report(const char *name, double *rates, int rounds, const char *unit);

struct log_writer;
/* Seals the writer's full write and marks it complete without any I/O, so
 * its buffer is reused: the steady state of the server's double buffering. */
int micro_log_recycle(struct log_writer *writer);

int micro_codec(int rounds);
int micro_log(int rounds);
int micro_ledger(int rounds);
int micro_memory(void);
int micro_snapshot(int rounds);
int micro_restart(int rounds);
int micro_chain(int rounds);
int micro_discrepancies(int rounds);

#endif
