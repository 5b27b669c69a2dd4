/*
 * skuld_assert.h — SKULD_ASSERT, the always-on assertion for programmer
 * errors in the ledger modules. Never used on input from the network or
 * disk. (log_internal.h defines the same macro the same way; whichever comes
 * first wins.)
 */
#ifndef SKULD_CORE_SKULD_ASSERT_H
#define SKULD_CORE_SKULD_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#ifndef SKULD_ASSERT
#define SKULD_ASSERT(condition)                                                                    \
	do {                                                                                       \
		if (!(condition)) {                                                                \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,       \
			        #condition);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
#endif

#endif /* SKULD_CORE_SKULD_ASSERT_H */
