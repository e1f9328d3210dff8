/*
 * memlimit: the proxy-wide bound on buffered bytes (--buffer-limit). Clients'
 * buffers and the server connections' buffers are summed; past the limit the
 * largest holders are let go until the total is under 90% of it: a client is
 * closed, a server connection is reset (its pending requests answered with an
 * error), so one flood or one stalled backend cannot take all the memory.
 */
#ifndef NC_MEMLIMIT_H
#define NC_MEMLIMIT_H

struct proxy;

void memlimit_enforce(struct proxy *px);
/* Give freed heap memory back to the system when there is much of it (the
 * memory large values needed); called once a second. */
void memlimit_give_back(void);
/* At start, before workers fork: large buffers freed stay for reuse until
 * memlimit_give_back returns them. */
void memlimit_tune_allocator(void);

#endif
