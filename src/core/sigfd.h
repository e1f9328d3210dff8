/*
 * sigfd: signals as events. The signals a process handles are blocked and read
 * from a signalfd on the event loop, so a handler never runs between two
 * statements of the proxy and needs no async-signal-safe care.
 */
#ifndef NC_SIGFD_H
#define NC_SIGFD_H

#include <stddef.h>

/* Block sigs[0..n) and return a non-blocking, close-on-exec signalfd reading
 * them; -1 with errno set on failure. */
int sigfd_open(const int *sigs, size_t n);

#endif
