/*
 * notify: systemd's readiness protocol without libsystemd. With Type=notify,
 * systemd starts us with $NOTIFY_SOCKET naming a unix datagram socket; one
 * datagram of "KEY=value" lines says READY=1 (every listener bound, the
 * configuration valid), RELOADING=1 (a reload began; READY=1 again when it is
 * done), STOPPING=1, MAINPID=n (a binary upgrade: the new process is the main
 * one now) and STATUS=... (the line `systemctl status` shows). Without
 * $NOTIFY_SOCKET nothing is sent.
 */
#ifndef NC_NOTIFY_H
#define NC_NOTIFY_H

#include <stdint.h>
#include <time.h>

/* -d: the process that started the daemon waits for the daemon's first
 * READY=1 on a pipe, whose write end this names (main.c), and exits 0 once
 * the proxy serves, or 1 when the pipe closes first (the start failed). */
#define NOTIFY_READY_FD_ENV "NUTCRACKER_READY_FD"

/* Send one datagram of printf-formatted lines; 0 when sent or when there is
 * no $NOTIFY_SOCKET, -1 (logged at debug level) when it could not be sent.
 * READY=1 also goes to the pipe of $NUTCRACKER_READY_FD, once. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The STATUS= text: "configuration generation G (loaded|reloaded|reload failed)
 * at YYYY-MM-DD HH:MM:SS, N pools[, W workers]". */
void notify_status_text(char *out, size_t len, uint64_t generation, int last_reload,
                        int64_t when_ms, uint32_t npools, int nworkers);
/* CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC= beside RELOADING=1. */
uint64_t notify_monotonic_us(void);

#endif
