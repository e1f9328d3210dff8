/*
 * fuzz.h: what the fuzz targets share. FUZZ_ASSERT stops the run on a broken
 * invariant (abort() is what libFuzzer reports as a crash).
 */
#ifndef NC_FUZZ_H
#define NC_FUZZ_H

#include <stdlib.h>

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
