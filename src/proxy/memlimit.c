#include "proxy/memlimit.h"

#include <malloc.h>

#include "core/log.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/replica.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

/* The largest holder: a client or a server connection (the other is NULL). */
struct holder {
    struct client *client;
    struct sconn *sconn;
    size_t bytes;
    bool fit; /* the walk gives back the server connections' spare room first */
};

static void holder_consider_array(struct sconn *v, uint32_t n, struct holder *h, size_t *total)
{
    for (uint32_t j = 0; v != NULL && j < n; j++) {
        if (h->fit) {
            sconn_out_fit(&v[j]);
        }
        size_t m = sconn_memory(&v[j]);
        *total += m;
        if (m > h->bytes) {
            *h = (struct holder){NULL, &v[j], m, h->fit};
        }
    }
}

static void holder_consider_conns(struct server *s, struct holder *h, size_t *total)
{
    holder_consider_array(s->conns, s->nconns, h, total);
    holder_consider_array(s->conns3, s->nconns, h, total);
}

static void holder_consider_servers(struct pool *p, struct holder *h, size_t *total)
{
    *total += hold_cluster_memory(cluster_hold_of(p)); /* a cluster pool's held requests */
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        holder_consider_conns(s, h, total);
        *total += hold_memory(s); /* requests held for a failover (hold_shed) */
        /* the hidden replicas of a sentinel group (replica.c) */
        for (uint32_t k = 0; s->replicas != NULL && k < s->replicas->n; k++) {
            holder_consider_conns(&s->replicas->v[k]->srv, h, total);
        }
    }
}

static void holder_consider_pool(struct pool *p, struct holder *h, size_t *total)
{
    for (struct client *c = p->clients; c != NULL; c = c->next) {
        size_t m = client_memory(c);
        *total += m;
        if (m > h->bytes) {
            *h = (struct holder){c, NULL, m, h->fit};
        }
    }
    holder_consider_servers(p, h, total);
}

static struct holder memlimit_largest(struct proxy *px, size_t *total, bool fit)
{
    struct holder h = {NULL, NULL, 0, fit};
    *total = px->reqs.kept_bytes; /* the free lists: bounded, but memory all the same */
    for (uint32_t i = 0; i < px->npools; i++) {
        holder_consider_pool(px->pools[i], &h, total);
    }
    for (struct pool *p = px->retired; p != NULL; p = p->next_retired) {
        holder_consider_pool(p, &h, total);
    }
    for (struct server *s = px->dead_servers; s != NULL; s = s->next_dead) {
        holder_consider_conns(s, &h, total);
    }
    return h;
}

static void memlimit_release(struct proxy *px, const struct holder *h, size_t total)
{
    if (h->client != NULL) {
        if (client_refuse_for_memory(h->client)) {
            return; /* answered: the request it was sending goes */
        }
        log_warn("buffers hold %zu bytes, over the buffer limit %zu: closing client %llu of "
                 "pool '%s' holding %zu bytes",
                 total, px->buffer_limit, (unsigned long long)h->client->id,
                 h->client->pool->cp->name, h->bytes);
        h->client->pool->stats[SP_client_err]++;
        client_close(h->client);
        return;
    }
    struct sconn *c = h->sconn;
    log_warn("buffers hold %zu bytes, over the buffer limit %zu: resetting a connection to "
             "server '%s' holding %zu bytes",
             total, px->buffer_limit, c->server->cs->name, h->bytes);
    sconn_fail(c, "server connection over the proxy's buffer limit", SS_server_err);
    buf_free(&c->out);
    buf_free(&c->in);
}

/* Buffers under this come from the heap, and what is freed stays there until
 * memlimit_give_back: glibc's default returns a large buffer to the system at
 * each free (its mmap threshold moves up, but its trim threshold is only twice
 * the last buffer freed), so a stream of large replies faulted fresh pages
 * in for each: a get of 50 values of 100 KB split over 4 servers took 4,900
 * page faults and 15 ms of CPU; 55-59 and 3.9-4.5 ms with these (twemproxy, whose
 * buffers are never freed: 0 and 2.2 ms). Larger buffers are mapped (realloc
 * moves their pages, it does not copy them): a buffer growing in the heap
 * leaves the chunks it outgrew behind, and at 32 MB a client's 64 MB of unread
 * replies took 42 MB more than with glibc's default, at 8 MB 7-11 MB more. */
#define MEMLIMIT_HEAP_MAX (8u << 20)
#define MEMLIMIT_TRIM_AT  (128u << 20)

void memlimit_tune_allocator(void)
{
#if defined(__GLIBC__)
    (void)mallopt(M_MMAP_THRESHOLD, (int)MEMLIMIT_HEAP_MAX);
    (void)mallopt(M_TRIM_THRESHOLD, (int)MEMLIMIT_TRIM_AT);
#endif
}

/* Free heap bytes past which memlimit_give_back returns them. */
#define MEMLIMIT_GIVE_BACK_MIN (16u << 20)

/* The heap keeps freed memory for reuse (memlimit_tune_allocator). Reuse is
 * what makes a stream of large values cheap (fresh pages fault in: 3 to 4
 * times the CPU per 2 MB value), so the memory goes back once a second, not at
 * each free. */
void memlimit_give_back(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks >= MEMLIMIT_GIVE_BACK_MIN) {
        malloc_trim(0);
    }
#endif
}

void memlimit_enforce(struct proxy *px)
{
    size_t total;
    struct holder h = memlimit_largest(px, &total, false);
    if (total <= px->buffer_limit) {
        return;
    }
    /* first what costs nobody anything: requests appended to a server
     * connection grow its buffer in 1 MB steps, and what was written of it may
     * still be there (sconn_flush moves it out only past half). Held requests
     * sent on at once would pass a limit they fit by up to that much. */
    h = memlimit_largest(px, &total, true);
    if (total <= px->buffer_limit) {
        return;
    }
    /* requests held for a failover go first, oldest first: waiting is what
     * they could do without, the connections are what everything needs */
    if (hold_shed(px, total - px->buffer_limit / 10 * 9) > 0) {
        h = memlimit_largest(px, &total, false);
    }
    /* each round lets the largest go, then recounts: closing a client can
     * also shrink server buffers (nothing more is queued for it) */
    for (int round = 0; round < 1000 && total > px->buffer_limit / 10 * 9 && h.bytes > 0; round++) {
        memlimit_release(px, &h, total);
        h = memlimit_largest(px, &total, false);
    }
}
