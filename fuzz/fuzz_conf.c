/*
 * fuzz_conf: arbitrary bytes as a configuration file. Whatever the input, the
 * loader must return a conf or problems (never both, never neither), and free
 * everything. Numeric-only resolution keeps DNS out of the loop, and no
 * certificate file named in the input is read (CONF_F_NO_FILES).
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
    struct conf *c = conf_load_buf_flags("fuzz.yml", (const char *)data, size,
                                         CONF_F_NUMERIC_ONLY | CONF_F_NO_FILES, &errs);
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
            for (uint32_t j = 0; j < p->nclient_users; j++) {
                sum += strlen(p->client_users[j].name) + p->client_users[j].sha256[31];
            }
            const struct conf_tls *tls[] = {&p->tls, &p->sentinel_tls, &p->listen_tls};
            for (int t = 0; t < 3; t++) {
                const char *files[] = {tls[t]->ca_file, tls[t]->cert_file, tls[t]->key_file,
                                       tls[t]->server_name, tls[t]->protocols};
                for (int f = 0; f < 5; f++) {
                    sum += files[f] != NULL ? strlen(files[f]) : 0;
                }
                if (tls[t]->ctx != NULL) {
                    abort(); /* no file may have been read */
                }
            }
            sum += p->listen_tls_addr.text != NULL ? strlen(p->listen_tls_addr.text) : 0;
            sum += p->redis_auth_user != NULL ? strlen(p->redis_auth_user) : 0;
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
