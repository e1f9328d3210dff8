/*
 * bufpool: a free list of read/write chunks of the -m size. A connection takes
 * a chunk when it has bytes to hold and gives it back as soon as it is empty,
 * so ten thousand idle clients cost their structs, not ten thousand buffers.
 */
#ifndef NC_BUFPOOL_H
#define NC_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct bufpool {
    size_t chunk;
    void **free;
    uint32_t nfree;
    uint32_t max; /* chunks kept for reuse; more are given back to malloc */
};

int bufpool_init(struct bufpool *bp, size_t chunk, uint32_t max);
void bufpool_deinit(struct bufpool *bp);
/* Give b a chunk if it has no memory; returns 0 or -1 when out of memory. */
int bufpool_get(struct bufpool *bp, struct buf *b);
/* Take back b's memory (kept if it is one chunk, freed if it grew); b becomes empty. */
void bufpool_put(struct bufpool *bp, struct buf *b);

#endif
