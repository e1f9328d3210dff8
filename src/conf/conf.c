/*
 * conf: loading a configuration file into one immutable generation.
 *
 * The file is parsed with libyaml's document API, then walked once; every
 * problem is collected with its line instead of stopping at the first, so one
 * `nutcracker -t` run shows everything to fix. Any problem discards the whole
 * generation: a half-valid configuration is never returned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/conf_int.h"
#include "core/buf.h"

/* Far beyond any real configuration; stops a wrong -c (a log, a core file)
 * from being read whole into memory. */
#define CONF_MAX_FILE (16u << 20)
/* Collections nested deeper than this are refused before libyaml builds the
 * document: its time grows with the square of the depth (100,000 levels, half a
 * megabyte of `{a: {a: ...`, took 50 s, in the loop that serves the clients
 * when it came by a reload). Our own layout is 4 deep. */
#define CONF_MAX_DEPTH 64

/* One listen address (a pool's listen or listen_tls_addr) with where it came
 * from, for the duplicate check. */
struct listen_ref {
    const struct conf_pool *pool;
    const struct conf_addr *addr;
    int line;
};

static void yaml_problem(struct conf_ctx *cx, const yaml_parser_t *yp, const char *data, size_t len)
{
    const char *problem = yp->problem ? yp->problem : "unknown error";
    if (yp->error == YAML_MEMORY_ERROR) {
        conf_oom(cx);
    } else if (yp->error == YAML_READER_ERROR) {
        /* The reader knows only a byte offset: count the lines up to it. */
        int line = 1;
        for (size_t i = 0; i < yp->problem_offset && i < len; i++) {
            line += data[i] == '\n';
        }
        conf_err(cx, line, "syntax", "%s (byte %zu)", problem, yp->problem_offset);
    } else if (yp->context != NULL) {
        conf_err(cx, (int)yp->problem_mark.line + 1, "syntax", "%s (%s started on line %d)",
                 problem, yp->context, (int)yp->context_mark.line + 1);
    } else {
        conf_err(cx, (int)yp->problem_mark.line + 1, "syntax", "%s", problem);
    }
}

/* Scalar text of a node without marking it visited (layout detection only). */
static const char *peek_scalar(yaml_document_t *doc, int id)
{
    yaml_node_t *n = yaml_document_get_node(doc, id);
    return (n && n->type == YAML_SCALAR_NODE) ? (const char *)n->data.scalar.value : NULL;
}

static bool peek_has_listen(yaml_document_t *doc, int id)
{
    yaml_node_t *n = yaml_document_get_node(doc, id);
    if (n == NULL || n->type != YAML_MAPPING_NODE) {
        return false;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = peek_scalar(doc, p->key);
        if (k != NULL && strcmp(k, "listen") == 0 && peek_scalar(doc, p->value) != NULL) {
            return true;
        }
    }
    return false;
}

/* meitu's layout: the top level holds only "global" and/or "pools". A value
 * with a scalar listen key is a pool, so a twemproxy file with a pool named
 * "global" or "pools" keeps its meaning. */
static bool is_meitu_layout(yaml_document_t *doc, yaml_node_t *root)
{
    yaml_node_pair_t *p = root->data.mapping.pairs.start;
    if (p == root->data.mapping.pairs.top) {
        return false;
    }
    for (; p < root->data.mapping.pairs.top; p++) {
        const char *k = peek_scalar(doc, p->key);
        if (k == NULL || (strcmp(k, "global") != 0 && strcmp(k, "pools") != 0) ||
            peek_has_listen(doc, p->value)) {
            return false;
        }
    }
    return true;
}

static void add_pools(struct conf_ctx *cx, struct conf *c, yaml_node_t *map,
                      struct listen_ref **refs)
{
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n == 0) {
        return;
    }
    struct conf_pool *pools = realloc(c->pools, (c->npools + n) * sizeof(*pools));
    /* room for two addresses per pool: listen and listen_tls_addr */
    struct listen_ref *lr = realloc(*refs, 2 * (c->npools + n) * sizeof(*lr));
    if (pools != NULL) {
        c->pools = pools;
    }
    if (lr != NULL) {
        *refs = lr;
    }
    if (pools == NULL || lr == NULL) {
        conf_oom(cx);
        return;
    }
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = conf_node(cx, pr->key, conf_line(map), "pools");
        if (kn != NULL && kn->type == YAML_SCALAR_NODE && kn->data.scalar.length == 0) {
            conf_err(cx, conf_line(kn), "\"\"", "a pool's name cannot be empty");
            continue;
        }
        const char *name = kn ? conf_scalar(cx, kn, "pools") : NULL;
        yaml_node_t *vn = name ? conf_node(cx, pr->value, conf_line(kn), name) : NULL;
        if (vn == NULL) {
            continue;
        }
        if (vn->type != YAML_MAPPING_NODE) {
            conf_err(cx, conf_line(kn), name, "pool needs a mapping of directives, not %s",
                     conf_node_kind(vn));
            continue;
        }
        struct conf_pool *p = &c->pools[c->npools];
        conf_pool_defaults(p);
        p->name = conf_strdup(cx, name);
        p->line = conf_line(kn);
        if (p->name == NULL) {
            continue;
        }
        (*refs)[c->npools].line = conf_pool_parse(cx, p, vn);
        c->npools++;
    }
}

static void walk_meitu(struct conf_ctx *cx, struct conf *c, yaml_node_t *root,
                       struct listen_ref **refs)
{
    int seen_global = 0, seen_pools = 0;
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = conf_node(cx, pr->key, conf_line(root), "conf");
        const char *k = kn ? conf_scalar(cx, kn, "conf") : NULL;
        yaml_node_t *vn = k ? conf_node(cx, pr->value, conf_line(kn), k) : NULL;
        if (vn == NULL) {
            continue;
        }
        bool global = strcmp(k, "global") == 0;
        int *seen = global ? &seen_global : &seen_pools;
        if (*seen != 0) {
            conf_err(cx, conf_line(kn), k, "directive is a duplicate (first on line %d)", *seen);
            continue;
        }
        *seen = conf_line(kn);
        if (vn->type != YAML_MAPPING_NODE) {
            conf_err(cx, conf_line(kn), k, "directive needs a mapping, not %s", conf_node_kind(vn));
        } else if (global) {
            conf_global_parse(cx, &c->global, vn);
        } else {
            add_pools(cx, c, vn, refs);
        }
    }
}

static int pool_cmp(const void *a, const void *b)
{
    const struct conf_pool *x = a, *y = b;
    int c = conf_name_cmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static void check_pool_names(struct conf_ctx *cx, struct conf *c)
{
    for (uint32_t i = 1; i < c->npools; i++) {
        const struct conf_pool *a = &c->pools[i - 1], *b = &c->pools[i];
        if (conf_name_cmp(a->name, b->name) == 0) {
            conf_err(cx, b->line, b->name, "pool name is a duplicate (first on line %d)", a->line);
        }
    }
}

static int listen_cmp(const void *a, const void *b)
{
    const struct listen_ref *x = a, *y = b;
    int c = conf_addr_cmp(x->addr, y->addr);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static bool listen_set(const struct conf_addr *a)
{
    return a->path != NULL || a->host != NULL;
}

/* refs[i].line is the listen line of pools[i] (file order, before the pools
 * are sorted). Sorting by address makes equal listeners neighbours: linear
 * after the sort, where comparing every pair would be quadratic. */
static void check_listen(struct conf_ctx *cx, struct conf *c, struct listen_ref *refs)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->npools; i++) {
        int line = refs[i].line;
        if (listen_set(&c->pools[i].listen)) {
            refs[n] = (struct listen_ref){&c->pools[i], &c->pools[i].listen, line};
            n++;
        }
    }
    for (uint32_t i = 0; i < c->npools; i++) {
        /* listen_tls_addr competes for the same sockets (its own line: the pool's) */
        if (listen_set(&c->pools[i].listen_tls_addr)) {
            refs[n] = (struct listen_ref){&c->pools[i], &c->pools[i].listen_tls_addr,
                                          c->pools[i].listen_tls.line};
            n++;
        }
    }
    if (n > 1) {
        qsort(refs, n, sizeof(*refs), listen_cmp);
    }
    for (uint32_t i = 1, first = 0; i < n; i++) {
        if (conf_addr_cmp(refs[first].addr, refs[i].addr) != 0) {
            first = i;
            continue;
        }
        if (refs[first].pool == refs[i].pool) {
            conf_err(cx, refs[i].line, "listen_tls_addr",
                     "pool '%s' has listen_tls_addr equal to its listen address '%s'",
                     refs[i].pool->name, refs[i].addr->text);
            continue;
        }
        conf_err(cx, refs[i].line, "listen",
                 "pools '%s' and '%s' have the same listen address '%s'", refs[first].pool->name,
                 refs[i].pool->name, refs[i].addr->text);
    }
}

static void walk_root(struct conf_ctx *cx, struct conf *c, yaml_node_t *root)
{
    struct listen_ref *refs = NULL;
    if (root->type != YAML_MAPPING_NODE) {
        conf_err(cx, conf_line(root), "conf",
                 "the top level must be a mapping of pool names to pools, not %s",
                 conf_node_kind(root));
        return;
    }
    cx->seen[root - cx->doc->nodes.start] = 1;
    if (is_meitu_layout(cx->doc, root)) {
        walk_meitu(cx, c, root, &refs);
    } else {
        add_pools(cx, c, root, &refs);
    }
    if (c->npools == 0) {
        if (cx->nerr == 0) {
            conf_err(cx, conf_line(root), "pools", "no pools are defined");
        }
    } else {
        check_listen(cx, c, refs);
        qsort(c->pools, c->npools, sizeof(*c->pools), pool_cmp);
        check_pool_names(cx, c);
    }
    free(refs);
}

static void conf_free(struct conf *c)
{
    for (uint32_t i = 0; i < c->npools; i++) {
        conf_pool_free(&c->pools[i]);
    }
    free(c->pools);
    conf_global_free(&c->global);
    free(c->path);
    free(c);
}

struct conf *conf_ref(struct conf *c)
{
    c->refs++;
    return c;
}

void conf_unref(struct conf *c)
{
    if (c != NULL && --c->refs == 0) {
        conf_free(c);
    }
}

/* Whether no collection is nested deeper than CONF_MAX_DEPTH, read as events
 * (which stop there, before the cost of the rest). A syntax error stops the
 * look: loading the document reports it. */
static bool depth_ok(struct conf_ctx *cx, const char *data, size_t len)
{
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp)) {
        return true; /* the load says out of memory */
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)data, len);
    int depth = 0;
    bool ok = true, end = false;
    yaml_event_t ev;
    while (ok && !end && yaml_parser_parse(&yp, &ev)) {
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) {
            ok = ++depth <= CONF_MAX_DEPTH;
        } else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            depth--;
        }
        end = ev.type == YAML_STREAM_END_EVENT;
        if (!ok) {
            conf_err(cx, (int)ev.start_mark.line + 1, "syntax",
                     "collections nested more than %d deep", CONF_MAX_DEPTH);
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&yp);
    return ok;
}

/* Exactly one document: twemproxy refuses "---" separated files too. */
static yaml_node_t *load_doc(struct conf_ctx *cx, yaml_parser_t *yp, yaml_document_t *doc,
                             const char *data, size_t len)
{
    if (!yaml_parser_load(yp, doc)) {
        yaml_problem(cx, yp, data, len);
        return NULL;
    }
    cx->doc = doc;
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL) {
        conf_err(cx, 1, "conf", "no pools are defined (the file is empty)");
        return NULL;
    }
    yaml_document_t next;
    if (!yaml_parser_load(yp, &next)) {
        yaml_problem(cx, yp, data, len);
        return NULL;
    }
    yaml_node_t *more = yaml_document_get_root_node(&next);
    if (more != NULL) {
        conf_err(cx, conf_line(more), "conf", "the file must contain only 1 document");
    }
    yaml_document_delete(&next);
    return more ? NULL : root;
}

static struct conf *conf_new(struct conf_ctx *cx, const char *name)
{
    struct conf *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        conf_oom(cx);
        return NULL;
    }
    conf_global_defaults(&c->global);
    c->refs = 1;
    c->path = conf_strdup(cx, name);
    return c;
}

struct conf *conf_load_buf_flags(const char *name, const char *data, size_t len, unsigned flags,
                                 struct conf_errors *errs)
{
    struct conf_ctx cx = {.file = name, .flags = flags, .errs = errs};
    yaml_parser_t yp;
    yaml_document_t doc;
    struct conf *c = NULL;
    if (!yaml_parser_initialize(&yp)) {
        conf_oom(&cx);
        return NULL;
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)data, len);
    yaml_node_t *root = depth_ok(&cx, data, len) ? load_doc(&cx, &yp, &doc, data, len) : NULL;
    if (root != NULL) {
        cx.nnodes = (size_t)(doc.nodes.top - doc.nodes.start);
        cx.seen = calloc(cx.nnodes, 1);
        c = cx.seen ? conf_new(&cx, name) : NULL;
        if (cx.seen == NULL) {
            conf_oom(&cx);
        }
    }
    if (c != NULL) {
        walk_root(&cx, c, root);
        if (cx.nerr == 0) {
            conf_tls_load(&cx, c); /* only a file valid otherwise is worth reading them for */
        }
    }
    free(cx.seen);
    if (cx.doc != NULL) {
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&yp);
    conf_err_finish(&cx);
    if (cx.nerr != 0 && c != NULL) {
        conf_free(c);
        c = NULL;
    }
    return c;
}

struct conf *conf_load_buf(const char *name, const char *data, size_t len, struct conf_errors *errs)
{
    return conf_load_buf_flags(name, data, len, 0, errs);
}

/* The whole file in memory; -1 after reporting why not. */
static int read_file(struct conf_ctx *cx, const char *path, struct buf *b)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        conf_err(cx, 1, "conf", "cannot open: %s", strerror(errno));
        return -1;
    }
    int err = 0;
    while (err == 0 && b->len <= CONF_MAX_FILE) {
        if (buf_reserve(b, 65536) != 0) {
            err = ENOMEM;
            break;
        }
        errno = 0;
        size_t n = fread(b->data + b->len, 1, b->cap - b->len, f);
        b->len += n;
        if (n == 0) {
            /* the read's own reason: a directory says so, not "I/O error" */
            err = ferror(f) ? (errno != 0 ? errno : EIO) : 0;
            break;
        }
    }
    fclose(f);
    if (err != 0) {
        conf_err(cx, 1, "conf", "cannot read: %s", strerror(err));
    } else if (b->len > CONF_MAX_FILE) {
        conf_err(cx, 1, "conf", "file is larger than %u bytes", CONF_MAX_FILE);
    }
    return (err != 0 || b->len > CONF_MAX_FILE) ? -1 : 0;
}

struct conf *conf_load(const char *path, struct conf_errors *errs)
{
    struct conf_ctx cx = {.file = path, .errs = errs};
    struct buf b;
    buf_init(&b);
    struct conf *c = NULL;
    if (read_file(&cx, path, &b) == 0) {
        c = conf_load_buf(path, b.data ? (const char *)b.data : "", b.len, errs);
    } else {
        conf_err_finish(&cx);
    }
    buf_free(&b);
    return c;
}

struct conf *conf_reload(const char *path, struct conf_errors *errs)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        struct conf_ctx cx = {.file = path, .errs = errs};
        conf_err(&cx, 1, "conf", "not a regular file: a reload reads files only");
        conf_err_finish(&cx);
        return NULL;
    }
    return conf_load(path, errs); /* (a directory: its own reason) */
}
