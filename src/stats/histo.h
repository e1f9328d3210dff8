/*
 * histo: a log-linear latency histogram (16 linear sub-buckets per power of
 * two), so any quantile is known within 1/16 of its value with fixed memory and
 * O(1) recording. Values are microseconds.
 *
 * Recording is inline and branch-free (two per request): the bucket is
 * shift * 16 + (v >> shift), shift coming from the leading-zero count, which
 * is the group/sub-bucket layout below written without its special cases.
 */
#ifndef NC_HISTO_H
#define NC_HISTO_H

#include <stdint.h>

#define HISTO_SUB_BITS 4
#define HISTO_SUB      (1u << HISTO_SUB_BITS)
#define HISTO_GROUPS   34 /* up to 2^37 us, about 38 hours */
#define HISTO_BUCKETS  (HISTO_GROUPS * HISTO_SUB)

struct histo {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint64_t b[HISTO_BUCKETS];
};

static inline uint32_t histo_bucket(uint64_t v)
{
    /* values below 32 have shift 0 and land in bucket v (groups 0 and 1) */
    uint32_t shift = 63u - (uint32_t)__builtin_clzll(v | (2u * HISTO_SUB - 1)) - HISTO_SUB_BITS;
    uint64_t idx = (uint64_t)shift * HISTO_SUB + (v >> shift);
    return idx < HISTO_BUCKETS ? (uint32_t)idx : HISTO_BUCKETS - 1;
}

static inline void histo_add(struct histo *h, uint64_t v)
{
    h->b[histo_bucket(v)]++;
    h->count++;
    h->sum += v;
    h->max = v > h->max ? v : h->max;
}

/* The upper bound of the bucket holding quantile q (0..1); 0 for an empty histogram. */
uint64_t histo_quantile(const struct histo *h, double q);
void histo_merge(struct histo *dst, const struct histo *src);
uint64_t histo_bucket_upper(uint32_t idx);

#endif
