/*
 * fuzz_redis_info: arbitrary bytes as a server's INFO replication text (a
 * replica's answer to the proxy's check, src/proxy/replica_check.c). Whatever
 * the bytes, the verdict is one of the states, has a name for the log, and
 * depends on the bytes alone: the same text read again, or with a section
 * comment put before it, says the same. The replid is "" or 40 lowercase hex
 * digits found in the text; a time the link has been down is given for a lost
 * link only, and is not negative.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/redis_info.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: ASan sees any read past the end */
    uint8_t *p = malloc(size ? size : 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p, data, size);
    enum redis_repl v = redis_info_repl(p, size);
    FUZZ_ASSERT(v >= REDIS_REPL_UNKNOWN && v <= REDIS_REPL_LINK_LOST);
    FUZZ_ASSERT(redis_repl_name(v) != NULL);
    struct redis_repl_info info;
    redis_info_parse(p, size, &info);
    FUZZ_ASSERT(info.state == v);
    FUZZ_ASSERT(v == REDIS_REPL_LINK_LOST ? info.down_s >= 0 : info.down_s == -1);
    size_t n = strlen(info.replid);
    FUZZ_ASSERT(n == 0 || (n == REDIS_REPLID_LEN &&
                           strspn(info.replid, "0123456789abcdef") == REDIS_REPLID_LEN &&
                           memmem(p, size, info.replid, n) != NULL));
    static const char head[] = "# Replication\r\n";
    uint8_t *q = malloc(sizeof(head) - 1 + size);
    if (q != NULL) {
        memcpy(q, head, sizeof(head) - 1);
        memcpy(q + sizeof(head) - 1, p, size);
        FUZZ_ASSERT(redis_info_repl(q, sizeof(head) - 1 + size) == v);
        free(q);
    }
    free(p);
    return 0;
}
