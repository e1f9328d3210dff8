/*
 * malloc_count: an LD_PRELOAD library that counts the allocator calls of the
 * process it is loaded into, and the call sites they come from, in a file
 * that another process reads at any moment (bench/bench.py, section allocs):
 * no signal and no system call on the counted path, so the proxy runs as it
 * does without it.
 *
 *   make malloc-count
 *   MALLOC_COUNT_FILE=/tmp/mc LD_PRELOAD=build/malloc_count.so ./nutcracker ...
 *
 * A call site is up to MC_DEPTH return addresses, walked by frame pointers:
 * build the program with -fno-omit-frame-pointer for more than the first one
 * (make malloc-count builds build/fp/nutcracker so). One process only: forked
 * children share the mapping and their counts add up.
 *
 * File layout (native endianness, all uint64): magic "MCOUNT01", the counters
 * of struct mc_head, then MC_SITES sites of {count, pc[MC_DEPTH]}.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MC_SITES 4096u
#define MC_DEPTH 6

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

struct mc_site {
    uint64_t count;
    uint64_t pc[MC_DEPTH];
};

struct mc_head {
    char magic[8];
    uint64_t mallocs, callocs, reallocs, memaligns, frees;
    uint64_t dropped; /* allocations whose site did not fit in the table */
    struct mc_site sites[MC_SITES];
};

static struct mc_head mc_local; /* until the file is mapped (and without one) */
static struct mc_head *mc = &mc_local;

__attribute__((constructor)) static void mc_open(void)
{
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (path == NULL) {
        return;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, sizeof(struct mc_head)) != 0) {
        return;
    }
    void *p = mmap(NULL, sizeof(struct mc_head), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        return;
    }
    struct mc_head *h = p;
    memcpy(h, &mc_local, sizeof(*h));
    memcpy(h->magic, "MCOUNT01", 8);
    mc = h;
}

/* Return addresses from the frame-pointer chain starting at fp; a frame that
 * does not look like one (the caller kept no frame pointer) ends the walk. */
static void mc_walk(void **fp, uint64_t *pc)
{
    for (int i = 0; i < MC_DEPTH; i++) {
        pc[i] = 0;
    }
    for (int i = 0; i < MC_DEPTH && fp != NULL; i++) {
        pc[i] = (uint64_t)(uintptr_t)fp[1];
        void **next = fp[0];
        if (next <= fp || (char *)next - (char *)fp > (1 << 20) || ((uintptr_t)next & 7) != 0) {
            break;
        }
        fp = next;
    }
}

__attribute__((noinline)) static void mc_note(void **fp)
{
    uint64_t pc[MC_DEPTH];
    mc_walk(fp, pc);
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < MC_DEPTH; i++) {
        h = (h ^ pc[i]) * 1099511628211ull;
    }
    for (uint32_t probe = 0; probe < 64; probe++) {
        struct mc_site *s = &mc->sites[(h + probe) & (MC_SITES - 1)];
        if (s->count == 0) {
            memcpy(s->pc, pc, sizeof(pc));
        }
        if (memcmp(s->pc, pc, sizeof(pc)) == 0) {
            s->count++;
            return;
        }
    }
    mc->dropped++;
}

void *malloc(size_t n)
{
    mc->mallocs++;
    mc_note(__builtin_frame_address(0));
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    mc->callocs++;
    mc_note(__builtin_frame_address(0));
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    mc->reallocs++;
    mc_note(__builtin_frame_address(0));
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    mc->memaligns++;
    mc_note(__builtin_frame_address(0));
    void *p = __libc_memalign(align, n);
    if (p == NULL) {
        return 12; /* ENOMEM */
    }
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    mc->memaligns++;
    mc_note(__builtin_frame_address(0));
    return __libc_memalign(align, n);
}

void free(void *p)
{
    if (p != NULL) {
        mc->frees++;
    }
    __libc_free(p);
}
