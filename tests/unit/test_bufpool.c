/*
 * test_bufpool: the chunk free list behind client buffers: a chunk given back
 * is the next one handed out, a buffer that already has memory keeps it, a
 * grown buffer is not kept (it would pin its size), and at most `max` chunks
 * wait for reuse.
 */
#include "core/buf.h"
#include "net/bufpool.h"
#include "unit.h"

int main(void)
{
    struct bufpool bp;
    CHECK_EQ_INT(bufpool_init(&bp, 512, 2), 0);
    struct buf a, b, c;
    buf_init(&a);
    buf_init(&b);
    buf_init(&c);

    CHECK_EQ_INT(bufpool_get(&bp, &a), 0);
    CHECK(a.data != NULL && a.cap == 512 && a.len == 0);
    uint8_t *first = a.data;
    buf_append(&a, "abc", 3);
    CHECK_EQ_INT(bufpool_get(&bp, &a), 0); /* has memory: unchanged */
    CHECK(a.data == first && a.len == 3);
    bufpool_put(&bp, &a);
    CHECK(a.data == NULL && a.len == 0 && a.cap == 0);
    CHECK_EQ_INT(bp.nfree, 1);
    CHECK_EQ_INT(bufpool_get(&bp, &b), 0);
    CHECK(b.data == first && b.len == 0); /* reused, emptied */
    CHECK_EQ_INT(bp.nfree, 0);

    /* grown past a chunk: freed, not kept */
    CHECK_EQ_INT(bufpool_get(&bp, &c), 0);
    CHECK_EQ_INT(buf_reserve(&c, 4096), 0);
    CHECK(c.cap > 512);
    bufpool_put(&bp, &c);
    CHECK_EQ_INT(bp.nfree, 0);

    /* at most max chunks wait */
    struct buf v[4];
    for (int i = 0; i < 4; i++) {
        buf_init(&v[i]);
        CHECK_EQ_INT(bufpool_get(&bp, &v[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        bufpool_put(&bp, &v[i]);
    }
    CHECK_EQ_INT(bp.nfree, 2);
    bufpool_put(&bp, &b);
    CHECK_EQ_INT(bp.nfree, 2);
    bufpool_put(&bp, &b); /* empty: nothing to give back */
    CHECK_EQ_INT(bp.nfree, 2);
    bufpool_deinit(&bp);
    CHECK(bp.free == NULL && bp.nfree == 0);
    UNIT_DONE("test_bufpool");
}
