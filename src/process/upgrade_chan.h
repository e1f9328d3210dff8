/*
 * upgrade_chan: frames from a process being replaced to its successor
 * (upgrade_chan.c says their layout): counters, and client sockets with
 * their state.
 */
#ifndef NC_UPGRADE_CHAN_H
#define NC_UPGRADE_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define CHAN_MAX_FRAME (64u << 20)

/* Receiving end: the client sockets received, in order; from head on, their
 * frames were not read yet. */
struct chan_fds {
    int *fd;
    uint32_t head, count, cap;
};

/* What the frames are handed to (a NULL member: dropped; a client's socket
 * is closed). client owns fd from then on. */
struct chan_sink {
    void (*snapshot)(void *ctx, const uint8_t *p, size_t n);
    void (*client)(void *ctx, int fd, const uint8_t *state, size_t n);
    void *ctx;
};

/* recvmsg() on fd into p, keeping the sockets that come with the bytes in fq. */
ssize_t chan_recv(int fd, uint8_t *p, size_t cap, struct chan_fds *fq);
/* Hand every complete frame in `in` to sink, and consume it. */
void chan_frames(struct buf *in, struct chan_fds *fq, const struct chan_sink *sink);
/* Read what fd has (non-blocking) and hand on every complete frame: 0 while
 * the channel is open, -1 at its end (the other side closed it, or failed). */
int chan_read_all(int fd, struct buf *in, struct chan_fds *fq, const struct chan_sink *sink);
/* Close the sockets whose frames never came, and free q. */
void chan_fds_close(struct chan_fds *fq);

/* Sending end: make chan blocking, with a send timeout (2 s). */
void chan_blocking(int chan);
/* One snapshot frame. 0, or -1 when it did not go whole. */
int chan_send_snapshot(int chan, const struct buf *snap);

enum chan_sent {
    CHAN_SENT = 0,    /* it went: close this process's descriptor */
    CHAN_LATER,       /* nothing went (too many sockets in flight): try again later */
    CHAN_FAILED,      /* nothing went, and the channel is no use any more */
    CHAN_SENT_FAILED, /* the socket went, its frame did not: the channel is no use */
};
/* Client socket fd with its state (client_export). */
int chan_send_client(int chan, int fd, const struct buf *state);

#endif
