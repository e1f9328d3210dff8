#include "stats/histo.h"
#include "unit.h"

#include <stdlib.h>

int main(void)
{
    static struct histo h;
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
