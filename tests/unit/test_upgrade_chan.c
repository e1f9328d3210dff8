/*
 * test_upgrade_chan: the frames a replaced process sends its successor
 * (process/upgrade_chan.c), over a real socketpair: a snapshot frame and
 * client frames whose sockets arrive with them, in order, read in pieces of
 * any size; a frame cut short waits for the rest; a length past the limit
 * drops what is buffered; sockets whose frames never came are closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "process/upgrade_chan.h"
#include "unit.h"

struct got {
    char text[8][16];
    int fds[8];
    int n;
};

static void on_snapshot(void *ctx, const uint8_t *p, size_t n)
{
    struct got *g = ctx;
    snprintf(g->text[g->n], sizeof(g->text[0]), "S:%.*s", (int)n, (const char *)p);
    g->fds[g->n++] = -1;
}

static void on_client(void *ctx, int fd, const uint8_t *p, size_t n)
{
    struct got *g = ctx;
    snprintf(g->text[g->n], sizeof(g->text[0]), "C:%.*s", (int)n, (const char *)p);
    g->fds[g->n++] = fd;
}

static struct buf text(const char *s)
{
    struct buf b;
    buf_init(&b);
    buf_append(&b, s, strlen(s));
    return b;
}

/* Read everything there is, `piece` bytes at a time, framing as it comes. */
static void drain(int fd, size_t piece, struct buf *in, struct chan_fds *fq, struct got *g)
{
    const struct chan_sink sink = {on_snapshot, on_client, g};
    uint8_t tmp[64];
    ssize_t n;
    while ((n = chan_recv(fd, tmp, piece, fq)) > 0) {
        buf_append(in, tmp, (size_t)n);
        chan_frames(in, fq, &sink);
    }
}

static void test_round_trip(size_t piece)
{
    int sv[2], a[2], b[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0 &&
          socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    struct buf snap = text("counters"), s1 = text("alpha"), s2 = text("beta");
    chan_blocking(sv[0]);
    CHECK(chan_send_snapshot(sv[0], &snap) == 0);
    CHECK(chan_send_client(sv[0], a[0], &s1) == CHAN_SENT);
    CHECK(chan_send_client(sv[0], b[0], &s2) == CHAN_SENT);
    close(a[0]);
    close(b[0]);
    struct buf in;
    buf_init(&in);
    struct chan_fds fq;
    memset(&fq, 0, sizeof(fq));
    struct got g = {.n = 0};
    drain(sv[1], piece, &in, &fq, &g);
    CHECK_EQ_INT(g.n, 3);
    CHECK(strcmp(g.text[0], "S:counters") == 0 && g.fds[0] == -1);
    CHECK(strcmp(g.text[1], "C:alpha") == 0 && strcmp(g.text[2], "C:beta") == 0);
    CHECK_EQ_INT(in.len, 0);
    /* each socket is the one sent with its frame: its peer hears what it says */
    for (int i = 1; i <= 2; i++) {
        char c = 0;
        CHECK(write(g.fds[i], i == 1 ? "1" : "2", 1) == 1);
        CHECK(read(i == 1 ? a[1] : b[1], &c, 1) == 1 && c == (i == 1 ? '1' : '2'));
        close(g.fds[i]);
    }
    close(a[1]);
    close(b[1]);
    chan_fds_close(&fq);
    buf_free(&in);
    buf_free(&snap);
    buf_free(&s1);
    buf_free(&s2);
    close(sv[0]);
    close(sv[1]);
}

static void test_cut_and_nonsense(void)
{
    const struct chan_sink sink = {on_snapshot, on_client, NULL};
    struct got g = {.n = 0};
    struct chan_sink s = sink;
    s.ctx = &g;
    struct chan_fds fq;
    memset(&fq, 0, sizeof(fq));
    struct buf in;
    buf_init(&in);
    buf_append(&in, "\0\0\0\5abc", 7); /* 2 bytes short */
    chan_frames(&in, &fq, &s);
    CHECK(g.n == 0 && in.len == 7);
    buf_append(&in, "de\0\0", 4);
    chan_frames(&in, &fq, &s);
    CHECK(g.n == 1 && strcmp(g.text[0], "S:abcde") == 0 && in.len == 2);
    buf_reset(&in);
    buf_append(&in, "\x7f\xff\xff\xffmore", 8); /* a length past the limit: dropped */
    chan_frames(&in, &fq, &s);
    CHECK(g.n == 1 && in.len == 0);
    /* a client frame with no socket queued is dropped, not handed on */
    buf_append(&in, "\x80\0\0\1x", 5);
    chan_frames(&in, &fq, &s);
    CHECK(g.n == 1 && in.len == 0);
    buf_free(&in);
}

static void test_unmatched_sockets_closed(void)
{
    int sv[2], a[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 &&
          socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
    struct buf st = text("gamma");
    CHECK(chan_send_client(sv[0], a[0], &st) == CHAN_SENT);
    close(a[0]);
    struct chan_fds fq;
    memset(&fq, 0, sizeof(fq));
    uint8_t tmp[4];
    CHECK(chan_recv(sv[1], tmp, 3, &fq) == 3); /* the socket came, its frame did not */
    CHECK_EQ_INT(fq.count - fq.head, 1);
    int fd = fq.fd[fq.head];
    chan_fds_close(&fq);
    CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
    char c;
    CHECK(read(a[1], &c, 1) == 0); /* its peer sees the connection closed */
    close(a[1]);
    buf_free(&st);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    test_round_trip(64);
    test_round_trip(1);
    test_round_trip(3);
    test_cut_and_nonsense();
    test_unmatched_sockets_closed();
    UNIT_DONE("test_upgrade_chan");
}
