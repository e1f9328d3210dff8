#include "stats/histo.h"

uint64_t histo_bucket_upper(uint32_t idx)
{
    if (idx < HISTO_SUB) {
        return idx;
    }
    uint32_t shift = idx / HISTO_SUB - 1;
    uint64_t lower = (uint64_t)(HISTO_SUB + idx % HISTO_SUB) << shift;
    return lower + ((uint64_t)1 << shift) - 1;
}

uint64_t histo_quantile(const struct histo *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    /* rank of the quantile, 1-based: the smallest value with at least q of the samples */
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank == 0) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HISTO_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t up = histo_bucket_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}

void histo_merge(struct histo *dst, const struct histo *src)
{
    for (uint32_t i = 0; i < HISTO_BUCKETS; i++) {
        dst->b[i] += src->b[i];
    }
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max) {
        dst->max = src->max;
    }
}
