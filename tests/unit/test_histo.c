#include "stats/histo.h"
#include "unit.h"

#include <stdlib.h>

/* The layout spelled out: group 0 holds 0..15 one per bucket; group g >= 1
 * holds [16 << (g - 1), 32 << (g - 1)) in 16 equal sub-buckets. */
static uint32_t bucket_reference(uint64_t v)
{
    if (v < HISTO_SUB) {
        return (uint32_t)v;
    }
    uint32_t shift = 63u - (uint32_t)__builtin_clzll(v) - HISTO_SUB_BITS;
    uint32_t group = shift + 1;
    if (group >= HISTO_GROUPS) {
        return HISTO_BUCKETS - 1;
    }
    return group * HISTO_SUB + (uint32_t)((v >> shift) & (HISTO_SUB - 1));
}

static void test_bucket_matches_layout(void)
{
    int bad = 0;
    for (uint32_t bit = 0; bit < 64; bit++) {
        uint64_t p = (uint64_t)1 << bit;
        uint64_t vs[] = {p - 1, p, p + 1, p + p / 3, p | (p - 1)};
        for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
            bad += histo_bucket(vs[i]) != bucket_reference(vs[i]);
        }
    }
    for (uint64_t v = 0; v < 100000; v++) {
        bad += histo_bucket(v) != bucket_reference(v);
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    static struct histo h;
    test_bucket_matches_layout();
    /* buckets are contiguous and ordered: every value lands in a bucket whose
     * upper bound is >= the value and within 1/16 of it */
    for (uint64_t v = 0; v < 5000000; v += 7) {
        uint32_t b = histo_bucket(v);
        uint64_t up = histo_bucket_upper(b);
        if (up < v || (v >= 16 && up - v > v / 16)) {
            CHECK(!"bucket bound");
            break;
        }
    }
    CHECK_EQ_INT(histo_bucket(15), 15);
    CHECK_EQ_INT(histo_bucket_upper(histo_bucket(16)), 16);
    CHECK_EQ_INT(histo_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 1000; v++) {
        histo_add(&h, v);
    }
    uint64_t p50 = histo_quantile(&h, 0.5);
    uint64_t p99 = histo_quantile(&h, 0.99);
    CHECK(p50 >= 500 && p50 <= 500 + 500 / 16);
    CHECK(p99 >= 990 && p99 <= 990 + 990 / 16);
    CHECK_EQ_INT(histo_quantile(&h, 1.0), 1000);
    CHECK_EQ_INT(h.count, 1000);
    CHECK_EQ_INT(h.sum, 500500);
    static struct histo h2;
    histo_add(&h2, 123456789);
    histo_merge(&h2, &h);
    CHECK_EQ_INT(h2.count, 1001);
    CHECK_EQ_INT(histo_quantile(&h2, 1.0), 123456789);
    histo_add(&h2, UINT64_MAX);
    CHECK_EQ_INT(histo_bucket(UINT64_MAX), HISTO_BUCKETS - 1);
    UNIT_DONE("test_histo");
}
