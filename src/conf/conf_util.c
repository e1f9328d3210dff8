/*
 * conf_util: error collection, YAML node access and small parsers shared by
 * the files of src/conf.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_int.h"
#include "core/buf.h"

static void errs_push(struct conf_errors *e, char *msg)
{
    char **m = realloc(e->msgs, (e->n + 1) * sizeof(*m));
    if (m == NULL) {
        free(msg);
        return;
    }
    e->msgs = m;
    e->msgs[e->n++] = msg;
}

/* The message with its control bytes (but tabs) written as escapes: a value read from
 * the file (a YAML block scalar ends with a newline, a quoted one may hold
 * any byte) must not break the one line a message is, or forge another. */
static int escape_msg(struct buf *out, const uint8_t *p, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t ch = p[i];
        if (ch == '\n' || ch == '\r') {
            rc = buf_printf(out, "\\%c", ch == '\n' ? 'n' : 'r');
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            rc = buf_printf(out, "\\x%02x", ch);
        } else {
            rc = buf_append(out, &ch, 1);
        }
    }
    return rc;
}

static char *format_msg(const char *file, int line, const char *key, const char *fmt, va_list ap)
{
    struct buf raw, b;
    buf_init(&raw);
    buf_init(&b);
    int rc = buf_printf(&raw, "%s:%d: %s: ", file, line, key);
    if (rc == 0) {
        rc = buf_vprintf(&raw, fmt, ap);
    }
    if (rc == 0) {
        rc = escape_msg(&b, raw.data, raw.len);
    }
    buf_free(&raw);
    if (rc != 0 || buf_append(&b, "", 1) != 0) {
        buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

void conf_err(struct conf_ctx *cx, int line, const char *key, const char *fmt, ...)
{
    cx->nerr++;
    if (cx->errs == NULL || cx->nmsgs >= CONF_MAX_MSGS) {
        return;
    }
    if (cx->msgs == NULL) {
        cx->msgs = calloc(CONF_MAX_MSGS, sizeof(*cx->msgs));
        if (cx->msgs == NULL) {
            return;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    char *text = format_msg(cx->file, line, key, fmt, ap);
    va_end(ap);
    if (text != NULL) {
        cx->msgs[cx->nmsgs] = (struct conf_msg){line, cx->nmsgs, text};
        cx->nmsgs++;
    }
}

void conf_oom(struct conf_ctx *cx)
{
    conf_err(cx, 1, "conf", "out of memory");
}

static int msg_cmp(const void *a, const void *b)
{
    const struct conf_msg *x = a, *y = b;
    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq);
}

void conf_err_finish(struct conf_ctx *cx)
{
    if (cx->errs == NULL) {
        return;
    }
    if (cx->nmsgs > 1) {
        qsort(cx->msgs, cx->nmsgs, sizeof(*cx->msgs), msg_cmp);
    }
    for (uint32_t i = 0; i < cx->nmsgs; i++) {
        errs_push(cx->errs, cx->msgs[i].text);
    }
    free(cx->msgs);
    cx->msgs = NULL;
    if (cx->nerr > cx->nmsgs) {
        struct buf b;
        buf_init(&b);
        if (buf_printf(&b, "%s:1: conf: %u more problems not shown", cx->file,
                       (unsigned)(cx->nerr - cx->nmsgs)) == 0 &&
            buf_append(&b, "", 1) == 0) {
            errs_push(cx->errs, (char *)b.data);
        } else {
            buf_free(&b);
        }
    }
    cx->nmsgs = 0;
}

void conf_errors_init(struct conf_errors *e)
{
    e->msgs = NULL;
    e->n = 0;
}

void conf_errors_free(struct conf_errors *e)
{
    for (uint32_t i = 0; i < e->n; i++) {
        free(e->msgs[i]);
    }
    free(e->msgs);
    conf_errors_init(e);
}

int conf_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

yaml_node_t *conf_node(struct conf_ctx *cx, int id, int line, const char *key)
{
    yaml_node_t *n = yaml_document_get_node(cx->doc, id);
    if (n == NULL) {
        return NULL;
    }
    size_t i = (size_t)(n - cx->doc->nodes.start);
    if (cx->seen[i]) {
        conf_err(cx, line, key, "YAML aliases are not supported");
        return NULL;
    }
    cx->seen[i] = 1;
    return n;
}

const char *conf_node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "a scalar";
    }
}

const char *conf_scalar(struct conf_ctx *cx, yaml_node_t *n, const char *key)
{
    if (n->type != YAML_SCALAR_NODE) {
        conf_err(cx, conf_line(n), key, "directive needs a single value, not %s",
                 conf_node_kind(n));
        return NULL;
    }
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (len == 0) {
        conf_err(cx, conf_line(n), key, "directive has no value");
        return NULL;
    }
    /* A "\0" escape would silently cut the value short in every C string use. */
    if (memchr(v, '\0', len) != NULL) {
        conf_err(cx, conf_line(n), key, "value contains a NUL byte");
        return NULL;
    }
    return v;
}

char *conf_strndup(struct conf_ctx *cx, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL) {
        conf_oom(cx);
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *conf_strdup(struct conf_ctx *cx, const char *s)
{
    return conf_strndup(cx, s, strlen(s));
}

int conf_parse_uint(const char *s, int64_t *out)
{
    if (*s == '\0') {
        return -1;
    }
    int64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10) {
            return -2;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int conf_name_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) {
        return la < lb ? -1 : 1;
    }
    return memcmp(a, b, la);
}
