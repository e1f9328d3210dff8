/*
 * fuzz_conf: arbitrary bytes as a configuration file. Whatever the input, the
 * loader must return a conf or problems (never both, never neither), and free
 * everything. Numeric-only resolution keeps DNS out of the loop.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf_errors errs;
    conf_errors_init(&errs);
    struct conf *c =
        conf_load_buf_flags("fuzz.yml", (const char *)data, size, CONF_F_NUMERIC_ONLY, &errs);
    if ((c == NULL) == (errs.n == 0)) {
        abort();
    }
    if (c != NULL) {
        /* Touch what the rest of the proxy reads, so ASan sees every field. */
        size_t sum = strlen(c->path);
        for (uint32_t i = 0; i < c->npools; i++) {
            const struct conf_pool *p = &c->pools[i];
            sum += strlen(p->name) + strlen(p->listen.text);
            if (p->nservers == 0) {
                abort();
            }
            for (uint32_t j = 0; j < p->nservers; j++) {
                sum += strlen(p->servers[j].name) + strlen(p->servers[j].pname);
            }
        }
        conf_unref(conf_ref(c));
        conf_unref(c);
        (void)sum;
    }
    for (uint32_t i = 0; i < errs.n; i++) {
        if (strncmp(errs.msgs[i], "fuzz.yml:", 9) != 0) {
            abort();
        }
    }
    conf_errors_free(&errs);
    return 0;
}
