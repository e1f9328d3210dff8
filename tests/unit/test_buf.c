/*
 * test_buf: how a buffer grows. Below 1 MB it doubles; past 1 MB it grows in
 * 1 MB steps, so it never takes twice what it holds; buf_reserve_exact grows
 * to exactly what is asked (a held failover's bytes sent on: see hold.c), and
 * leaves a buffer with room as it is; buf_trim gives back the spare room past
 * a slack (held cluster requests sent on: see cluster_send.c).
 */
#include "core/buf.h"
#include "unit.h"

#define MB ((size_t)1 << 20)

int main(void)
{
    struct buf b;
    buf_init(&b);
    CHECK_EQ_INT(buf_reserve(&b, 100), 0);
    CHECK(b.cap == 128 && b.len == 0);
    CHECK_EQ_INT(buf_append(&b, "abc", 3), 0);
    CHECK_EQ_INT(buf_reserve(&b, 300), 0);
    CHECK(b.cap == 512 && b.len == 3);

    /* past 1 MB: the next whole MB, not the next power of two */
    CHECK_EQ_INT(buf_reserve(&b, 2 * MB + 1), 0);
    CHECK(b.cap == 3 * MB);
    buf_free(&b);
    CHECK(b.data == NULL && b.cap == 0 && b.len == 0);

    /* exact: len + extra, however large */
    CHECK_EQ_INT(buf_append(&b, "xy", 2), 0);
    CHECK_EQ_INT(buf_reserve_exact(&b, 8 * MB + 11), 0);
    CHECK(b.cap == 8 * MB + 13 && b.len == 2 && memcmp(b.data, "xy", 2) == 0);
    uint8_t *p = b.data;
    CHECK_EQ_INT(buf_reserve_exact(&b, 5), 0); /* room already: unchanged */
    CHECK(b.data == p && b.cap == 8 * MB + 13);
    buf_free(&b);

    /* trim: down to len only past the slack; an empty buffer stays as it is */
    CHECK_EQ_INT(buf_reserve(&b, 64), 0);
    CHECK_EQ_INT(buf_trim(&b, 0), 0);
    CHECK(b.cap == 64 && b.len == 0);
    for (int i = 0; i < 9000; i++) {
        CHECK_EQ_INT(buf_append(&b, "0123456789", 10), 0); /* 90,000 bytes */
    }
    CHECK(b.len == 90000 && b.cap == 128 * 1024);
    CHECK_EQ_INT(buf_trim(&b, 64 * 1024), 0); /* 41,072 spare: kept */
    CHECK(b.cap == 128 * 1024);
    CHECK_EQ_INT(buf_trim(&b, 1024), 0);
    CHECK(b.cap == 90000 && b.len == 90000 && memcmp(b.data + 89990, "0123456789", 10) == 0);
    buf_free(&b);
    UNIT_DONE("test_buf");
}
