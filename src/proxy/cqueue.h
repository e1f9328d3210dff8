/*
 * cqueue: a client's requests awaiting their replies, in the order it sent
 * them, and the bytes they hold. The only code that links, answers and unlinks
 * them, so the counts the client's buffer limit reads stay true:
 *
 *   push     a request is parsed and sent on (or answered locally)
 *   reply    its reply is known: written out at once when it is the oldest,
 *            else kept on the request until the older ones are answered
 *   release  every answered request at the head leaves, its reply written out
 *   orphan   the client is gone: its requests finish at their servers and
 *            their replies are dropped; so are those after a request whose
 *            failure closes the client (req->ends_client)
 */
#ifndef NC_CQUEUE_H
#define NC_CQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct req;

struct cqueue {
    struct req *head; /* oldest first */
    struct req *tail;
    uint32_t n;
    size_t pending_bytes;  /* reply bytes held by answered requests not yet at the head */
    size_t inflight_bytes; /* request bytes of unanswered requests (copied to servers) */
};

/* Link r (whose request took req_bytes, counted until it is answered). */
void cqueue_push(struct client *c, struct req *r, size_t req_bytes);
/* r's reply is p[0..len); served: a server's, which the client's estimate of
 * its reply size learns from (an error of the proxy's, when a connection
 * fails, says nothing of the replies to come: counted, a few hundred of them
 * would let the client have thousands of large replies on their way, over
 * its buffer limit). */
void cqueue_reply(struct client *c, struct req *r, const uint8_t *p, size_t len, bool served);
/* A reply the proxy makes itself: out at once when nothing is pending, else it
 * waits its turn behind the older requests. */
void cqueue_local(struct client *c, const uint8_t *p, size_t len);
/* The same, but before r's reply (r: a request of c's still unanswered; NULL:
 * at the end, as cqueue_local): a message a server sent before r's reply. */
void cqueue_local_before(struct client *c, struct req *r, const uint8_t *p, size_t len);
/* Write out and unlink every answered request at the head. */
void cqueue_release(struct client *c);
void cqueue_orphan(struct client *c);

#endif
