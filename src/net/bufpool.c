#include "net/bufpool.h"

#include <stdlib.h>

int bufpool_init(struct bufpool *bp, size_t chunk, uint32_t max)
{
    bp->chunk = chunk;
    bp->nfree = 0;
    bp->max = max;
    bp->free = calloc(max ? max : 1, sizeof(*bp->free));
    return bp->free ? 0 : -1;
}

void bufpool_deinit(struct bufpool *bp)
{
    for (uint32_t i = 0; i < bp->nfree; i++) {
        free(bp->free[i]);
    }
    free(bp->free);
    bp->free = NULL;
    bp->nfree = 0;
}

int bufpool_get(struct bufpool *bp, struct buf *b)
{
    if (b->data != NULL) {
        return 0;
    }
    void *p = bp->nfree > 0 ? bp->free[--bp->nfree] : malloc(bp->chunk);
    if (p == NULL) {
        return -1;
    }
    b->data = p;
    b->cap = bp->chunk;
    b->len = 0;
    return 0;
}

void bufpool_put(struct bufpool *bp, struct buf *b)
{
    if (b->data == NULL) {
        return;
    }
    if (b->cap == bp->chunk && bp->nfree < bp->max) {
        bp->free[bp->nfree++] = b->data;
    } else {
        free(b->data);
    }
    buf_init(b);
}
