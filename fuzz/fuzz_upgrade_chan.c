/*
 * fuzz_upgrade_chan: arbitrary bytes on the channel from a replaced process,
 * cut into frames (process/upgrade_chan.c) with a few client sockets queued.
 * Every frame handed on lies inside the input and within CHAN_MAX_FRAME, a
 * client frame gets a socket while there is one (and only then), and what is
 * left unconsumed is less than one frame.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "process/upgrade_chan.h"
#include "fuzz.h"

struct seen {
    const uint8_t *lo, *hi;
    int clients;
};

static void on_snapshot(void *ctx, const uint8_t *p, size_t n)
{
    struct seen *s = ctx;
    FUZZ_ASSERT(p >= s->lo && p + n <= s->hi && n <= CHAN_MAX_FRAME);
}

static void on_client(void *ctx, int fd, const uint8_t *p, size_t n)
{
    struct seen *s = ctx;
    FUZZ_ASSERT(p >= s->lo && p + n <= s->hi && n <= CHAN_MAX_FRAME && fd >= 0);
    s->clients++;
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chan_fds fq;
    memset(&fq, 0, sizeof(fq));
    /* three sockets came: push them the way chan_recv does, through a pair */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        return 0;
    }
    struct buf b;
    buf_init(&b);
    buf_append(&b, "x", 1);
    int sent = 0;
    for (int i = 0; i < 3; i++) {
        sent += chan_send_client(sv[0], sv[0], &b) == CHAN_SENT;
    }
    uint8_t tmp[64];
    for (int i = 0; i < sent; i++) {
        ssize_t n = chan_recv(sv[1], tmp, 5, &fq); /* each 1-byte frame is 5 bytes */
        FUZZ_ASSERT(n == 5);
    }
    FUZZ_ASSERT(fq.count - fq.head == (uint32_t)sent);
    struct buf in;
    buf_init(&in);
    buf_append(&in, data, size);
    if (size == 0) {
        buf_append(&in, "", 1); /* no pointer arithmetic on an empty buffer's NULL */
        in.len = 0;
    }
    struct seen s = {in.data, in.data + in.len, 0};
    const struct chan_sink sink = {on_snapshot, on_client, &s};
    chan_frames(&in, &fq, &sink);
    FUZZ_ASSERT(s.clients <= sent);
    if (in.len >= 4) {
        uint32_t word = (uint32_t)in.data[0] << 24 | (uint32_t)in.data[1] << 16 |
                        (uint32_t)in.data[2] << 8 | in.data[3];
        FUZZ_ASSERT(in.len - 4 < (word & 0x7fffffffu));
    }
    chan_fds_close(&fq);
    buf_free(&in);
    buf_free(&b);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
