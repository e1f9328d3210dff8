/*
 * upgrade_int: what upgrade.c and upgrade_chan.c share.
 */
#ifndef NC_UPGRADE_INT_H
#define NC_UPGRADE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "process/upgrade.h"

#define UPGRADE_MAX_FRAME (64u << 20)

/* New side: read() from the channel, keeping the client sockets that come
 * with its bytes. */
ssize_t upgrade_parent_read(struct upgrade *u, uint8_t *p, size_t cap);
/* New side: act on every complete frame in u->parent_in. */
void upgrade_parent_frames(struct upgrade *u);
/* New side: close the sockets whose frames never came (the channel closed). */
void upgrade_parent_fds_close(struct upgrade *u);

#endif
