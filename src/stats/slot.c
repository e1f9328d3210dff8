#include "stats/slot.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/log.h"

/* The seqlock's words are shared between processes: that only works when the
 * atomics are real instructions, not a lock in the process's own memory. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free to be shared between processes");

#define SLOT_ALIGN 64 /* a cache line: the headers of two slots never share one */
/* A reader that keeps meeting a write backs off 2, 4, .. 1024 us, then 1 ms a
 * try: about 10 ms in all, longer than writing even a large snapshot takes */
#define SLOT_READ_TRIES 16

/* At the start of each slot, followed by the data words. The payload is
 * stored as relaxed atomic words rather than memcpy'd: a reader racing the
 * writer is then a defined (if useless, and detected) read, not a data race. */
struct slot_head {
    _Atomic uint64_t seq; /* odd while the writer is inside */
    _Atomic uint64_t len; /* bytes of the encoded snapshot; 0: empty */
};

struct stats_slots {
    uint8_t *base;
    size_t map_len;
    size_t stride; /* bytes from one slot's head to the next */
    size_t cap;    /* payload bytes a slot holds */
    uint32_t n;
    /* private to each process (this struct is copied by fork, the mapping is
     * shared): a worker warns about its own oversize snapshots once */
    bool warned_full;
};

static size_t slot_round_up(size_t v, size_t to)
{
    return (v + to - 1) / to * to;
}

static struct slot_head *slot_head_of(struct stats_slots *sl, uint32_t i)
{
    return (struct slot_head *)(sl->base + (size_t)i * sl->stride);
}

static _Atomic uint64_t *slot_words_of(struct stats_slots *sl, uint32_t i)
{
    return (_Atomic uint64_t *)(sl->base + (size_t)i * sl->stride + SLOT_ALIGN);
}

struct stats_slots *stats_slots_create(uint32_t n, size_t cap)
{
    _Static_assert(sizeof(struct slot_head) <= SLOT_ALIGN, "slot head fits its line");
    if (n == 0 || cap == 0 || cap > SIZE_MAX / 2 - SLOT_ALIGN) {
        return NULL;
    }
    size_t stride = SLOT_ALIGN + slot_round_up(cap, SLOT_ALIGN);
    if (stride > SIZE_MAX / n) {
        return NULL;
    }
    struct stats_slots *sl = calloc(1, sizeof(*sl));
    if (sl == NULL) {
        return NULL;
    }
    sl->map_len = stride * n;
    sl->stride = stride;
    sl->cap = cap;
    sl->n = n;
    /* anonymous memory is zero: every slot starts empty (seq 0, len 0) */
    void *m = mmap(NULL, sl->map_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        log_error("cannot map %zu bytes of stats slots", sl->map_len);
        free(sl);
        return NULL;
    }
    sl->base = m;
    return sl;
}

void stats_slots_destroy(struct stats_slots *sl)
{
    if (sl == NULL) {
        return;
    }
    munmap(sl->base, sl->map_len);
    free(sl);
}

/* The writer's half of the seqlock around storing len bytes of p (p may be
 * NULL when len is 0). */
static void slot_write(struct stats_slots *sl, uint32_t i, const uint8_t *p, size_t len)
{
    struct slot_head *h = slot_head_of(sl, i);
    _Atomic uint64_t *w = slot_words_of(sl, i);
    uint64_t seq = atomic_load_explicit(&h->seq, memory_order_relaxed);
    /* an odd sequence left by a writer that died inside: start from the next
     * even one, so our own odd marker really is odd */
    seq = (seq + 1) & ~(uint64_t)1;
    atomic_store_explicit(&h->seq, seq + 1, memory_order_relaxed);
    /* no store below may become visible before the odd sequence */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&h->len, len, memory_order_relaxed);
    for (size_t off = 0; off < len; off += 8) {
        uint64_t word = 0;
        memcpy(&word, p + off, len - off < 8 ? len - off : 8);
        atomic_store_explicit(&w[off / 8], word, memory_order_relaxed);
    }
    atomic_store_explicit(&h->seq, seq + 2, memory_order_release);
}

int stats_slot_publish(struct stats_slots *sl, uint32_t i, const struct stats_snap *s)
{
    if (i >= sl->n) {
        return -1;
    }
    struct buf enc;
    buf_init(&enc);
    if (stats_snap_encode(s, &enc) != 0) {
        buf_free(&enc);
        return -1;
    }
    if (enc.len > sl->cap) {
        if (!sl->warned_full) {
            log_warn("stats snapshot of %zu bytes does not fit the %zu byte slot: the stats "
                     "port misses this worker's counters",
                     enc.len, sl->cap);
            sl->warned_full = true;
        }
        buf_free(&enc);
        return -1;
    }
    slot_write(sl, i, enc.data, enc.len);
    buf_free(&enc);
    return 0;
}

struct stats_snap *stats_slot_read(struct stats_slots *sl, uint32_t i)
{
    if (i >= sl->n) {
        return NULL;
    }
    struct slot_head *h = slot_head_of(sl, i);
    _Atomic uint64_t *w = slot_words_of(sl, i);
    uint8_t *copy = NULL;
    size_t copy_cap = 0;
    struct stats_snap *s = NULL;
    for (int tries = 0; tries < SLOT_READ_TRIES; tries++) {
        if (tries > 0) {
            long us = tries <= 10 ? 1L << tries : 1000;
            struct timespec ts = {0, us * 1000};
            nanosleep(&ts, NULL); /* let the writer finish */
        }
        uint64_t seq = atomic_load_explicit(&h->seq, memory_order_acquire);
        if (seq & 1) {
            continue;
        }
        uint64_t len = atomic_load_explicit(&h->len, memory_order_relaxed);
        if (len > sl->cap) {
            continue; /* torn: only a racing write can show this */
        }
        size_t words = slot_round_up((size_t)len, 8) / 8;
        if (words * 8 > copy_cap) {
            uint8_t *grown = realloc(copy, words * 8);
            if (grown == NULL) {
                break;
            }
            copy = grown;
            copy_cap = words * 8;
        }
        for (size_t k = 0; k < words; k++) {
            uint64_t word = atomic_load_explicit(&w[k], memory_order_relaxed);
            memcpy(copy + k * 8, &word, 8);
        }
        /* the loads above happen before the second look at the sequence */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->seq, memory_order_relaxed) != seq) {
            continue;
        }
        if (len > 0) {
            s = stats_snap_decode(copy, (size_t)len);
        }
        break;
    }
    free(copy);
    return s;
}

void stats_slot_clear(struct stats_slots *sl, uint32_t i)
{
    if (i < sl->n) {
        slot_write(sl, i, NULL, 0);
    }
}
