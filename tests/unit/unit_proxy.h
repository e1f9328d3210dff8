/*
 * unit_proxy.h: what the unit tests of the proxy layer build the same way: a
 * configuration from YAML text, and a proxy on a new loop (which the tests
 * drive by hand or never run) with the buffer sizes they share.
 */
#ifndef NC_UNIT_PROXY_H
#define NC_UNIT_PROXY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/options.h"
#include "event/ev.h"
#include "proxy/proxy.h"

/* The configuration in yml (its errors printed), or NULL. */
static inline struct conf *unit_conf(const char *yml)
{
    struct conf_errors errs;
    conf_errors_init(&errs);
    struct conf *c = conf_load_buf_flags("t.yml", yml, strlen(yml), CONF_F_NUMERIC_ONLY, &errs);
    for (uint32_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "%s\n", errs.msgs[i]);
    }
    conf_errors_free(&errs);
    return c;
}

/* px on a new loop, which it returns; a failure stops the test. */
static inline struct ev_loop *unit_proxy_init(struct proxy *px)
{
    struct options o;
    memset(&o, 0, sizeof(o));
    o.mbuf_size = 16384;
    o.client_buffer_limit = 1 << 20;
    o.buffer_limit = 1 << 24;
    struct ev_loop *loop = ev_loop_create();
    if (loop == NULL || proxy_init(px, loop, &o, -1) != 0) {
        abort();
    }
    return loop;
}

#endif
