/*
 * conf_int: what the files of src/conf share while one load is in progress.
 * Nothing here outlives conf_load_buf(); only struct conf is kept.
 */
#ifndef NC_CONF_INT_H
#define NC_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "conf/conf.h"

/* Stored messages beyond this are only counted: a fuzzed or badly broken file
 * must not turn one -t run into megabytes of output. */
#define CONF_MAX_MSGS 100

/* One problem, held until the load ends so that all are given in line order. */
struct conf_msg {
    int line;
    uint32_t seq;
    char *text;
};

/* State of one load: the parsed YAML document and where problems go. */
struct conf_ctx {
    const char *file;         /* name used in messages */
    unsigned flags;           /* CONF_F_* */
    struct conf_errors *errs; /* may be NULL: then problems are only counted */
    uint32_t nerr;            /* every problem, stored or not */
    struct conf_msg *msgs;    /* the first CONF_MAX_MSGS problems */
    uint32_t nmsgs;
    yaml_document_t *doc;
    uint8_t *seen; /* per YAML node: already visited (an alias) */
    size_t nnodes;
};

void conf_err(struct conf_ctx *cx, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void conf_oom(struct conf_ctx *cx);
/* Moves the problems to cx->errs sorted by line, then "N more problems not
 * shown" when some were dropped. Call once at the end of every load. */
void conf_err_finish(struct conf_ctx *cx);

/* YAML node access. conf_node() returns NULL and reports once when the node
 * was already visited: aliases are refused (twemproxy refuses them too), which
 * also keeps the walk linear in the size of the file. */
yaml_node_t *conf_node(struct conf_ctx *cx, int id, int line, const char *key);
int conf_line(const yaml_node_t *n);
/* The scalar's text as a C string, or NULL after reporting why not (not a
 * scalar, empty, contains NUL). */
const char *conf_scalar(struct conf_ctx *cx, yaml_node_t *n, const char *key);
const char *conf_node_kind(const yaml_node_t *n);

char *conf_strdup(struct conf_ctx *cx, const char *s);
char *conf_strndup(struct conf_ctx *cx, const char *s, size_t n);

/* Digits only (twemproxy's rule: no sign, no spaces); -1 when not a number,
 * -2 when it does not fit in int64. */
int conf_parse_uint(const char *s, int64_t *out);
int conf_name_cmp(const char *a, const char *b);

/* conf_addr.c */
int conf_listen_parse(struct conf_ctx *cx, struct conf_addr *a, const char *text, int line);
int conf_server_parse(struct conf_ctx *cx, struct conf_server *s, const char *text, int line);
/* "host:port [name]" of a sentinels entry. */
int conf_sentinel_parse(struct conf_ctx *cx, struct conf_sentinel *s, const char *text, int line);
void conf_addr_free(struct conf_addr *a);
/* Total order; 0 when both would bind or reach the same socket. */
int conf_addr_cmp(const struct conf_addr *a, const struct conf_addr *b);

/* conf_pool.c */
void conf_pool_defaults(struct conf_pool *p);
/* Returns the line of the listen directive, 0 when absent. */
int conf_pool_parse(struct conf_ctx *cx, struct conf_pool *p, yaml_node_t *map);
void conf_pool_free(struct conf_pool *p);
void conf_global_defaults(struct conf_global *g);
void conf_global_parse(struct conf_ctx *cx, struct conf_global *g, yaml_node_t *map);
void conf_global_free(struct conf_global *g);

/* conf_tls.c: TLS keys and logins */
/* lines: the lines of tls, tls_ca_file, tls_ca_dir, tls_cert_file, tls_key_file,
 * tls_server_name, tls_verify, sentinel_tls, listen_tls, listen_tls_addr (0: absent). */
void conf_tls_check(struct conf_ctx *cx, struct conf_pool *p, const int *lines);
void conf_auth_check(struct conf_ctx *cx, struct conf_pool *p, int auth_line, int users_line);
/* A client_auth entry: "user password", or a password alone (user "default"). */
int conf_user_add(struct conf_ctx *cx, struct conf_pool *p, const char *v, int line);
/* Load every pool's contexts from their files (unless CONF_F_NO_FILES). */
void conf_tls_load(struct conf_ctx *cx, struct conf *c);
void conf_tls_free(struct conf_tls *t);

#endif
