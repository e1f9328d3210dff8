/*
 * fuzz_stats_snap: arbitrary bytes through the decoder of the snapshots
 * workers leave in shared memory for the master. Whatever the bytes, it either
 * refuses them or gives a snapshot that is whole: names are C strings, counts
 * match arrays, and (the form being canonical) it encodes back to exactly the
 * bytes given. An accepted snapshot is also summed into itself, the way the
 * master sums a worker's.
 */
#include <stdlib.h>
#include <string.h>

#include "stats/snap.h"
#include "fuzz.h"

static void check_whole(const struct stats_snap *s)
{
    FUZZ_ASSERT((s->npools == 0) == (s->pools == NULL));
    for (uint32_t i = 0; i < s->npools; i++) {
        const struct stats_pool_snap *p = &s->pools[i];
        FUZZ_ASSERT(p->name != NULL);
        FUZZ_ASSERT((p->nservers == 0) == (p->servers == NULL));
        for (uint32_t j = 0; j < p->nservers; j++) {
            FUZZ_ASSERT(p->servers[j].name != NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: ASan sees any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    struct stats_snap *s = stats_snap_decode(copy, size);
    if (s != NULL) {
        check_whole(s);
        struct buf out;
        buf_init(&out);
        FUZZ_ASSERT(stats_snap_encode(s, &out) == 0);
        FUZZ_ASSERT(out.len == size && memcmp(out.data, copy, size) == 0);
        buf_free(&out);
        struct stats_snap *twice = stats_snap_decode(copy, size);
        FUZZ_ASSERT(twice != NULL);
        stats_snap_add(s, twice, false);
        stats_snap_add(s, twice, true);
        stats_snap_free(twice);
        stats_snap_free(s);
    }
    free(copy);
    return 0;
}
