/*
 * histo: a log-linear latency histogram (16 linear sub-buckets per power of
 * two), so any quantile is known within 1/16 of its value with fixed memory and
 * O(1) recording. Values are microseconds.
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

void histo_add(struct histo *h, uint64_t v);
/* The upper bound of the bucket holding quantile q (0..1); 0 for an empty histogram. */
uint64_t histo_quantile(const struct histo *h, double q);
void histo_merge(struct histo *dst, const struct histo *src);
uint32_t histo_bucket(uint64_t v);
uint64_t histo_bucket_upper(uint32_t idx);

#endif
