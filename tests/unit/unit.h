/*
 * unit.h: the smallest test harness that can fail. Each test binary ends with
 * UNIT_DONE(), which prints "name: N passed, N failed" and exits non-zero on failure.
 */
#ifndef NC_UNIT_H
#define NC_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_pass, unit_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            unit_pass++;                                                                           \
        } else {                                                                                   \
            unit_fail++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_) {                                                                            \
            unit_pass++;                                                                           \
        } else {                                                                                   \
            unit_fail++;                                                                           \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    a_, b_);                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(p, n, s)                                                                         \
    do {                                                                                           \
        size_t n_ = (size_t)(n);                                                                   \
        if (n_ == strlen(s) && memcmp((p), (s), n_) == 0) {                                        \
            unit_pass++;                                                                           \
        } else {                                                                                   \
            unit_fail++;                                                                           \
            fprintf(stderr, "%s:%d: got \"%.*s\", want \"%s\"\n", __FILE__, __LINE__, (int)n_,     \
                    (const char *)(p), s);                                                         \
        }                                                                                          \
    } while (0)

/* Open a file of tests/vectors (tests run from the repo root), else of $NC_VECTORS. */
static inline FILE *unit_vectors_open(const char *file)
{
    char path[4096];
    snprintf(path, sizeof(path), "tests/vectors/%s", file);
    FILE *f = fopen(path, "r");
    const char *env = getenv("NC_VECTORS");
    if (f == NULL && env != NULL) {
        snprintf(path, sizeof(path), "%s/%s", env, file);
        f = fopen(path, "r");
    }
    if (f == NULL) {
        fprintf(stderr, "cannot open vectors file %s (set NC_VECTORS)\n", file);
    }
    return f;
}

#define UNIT_DONE(name)                                                                            \
    do {                                                                                           \
        printf("%s: %d passed, %d failed\n", name, unit_pass, unit_fail);                          \
        return unit_fail ? 1 : 0;                                                                  \
    } while (0)

#endif
