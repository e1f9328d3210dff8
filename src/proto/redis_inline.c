/*
 * redis_inline: the inline form of a request (`SET k "a b"` typed into telnet, or
 * redis-benchmark's PING_INLINE), split into arguments as redis splits it
 * (sdssplitargs) and rewritten as the RESP request it means, so that everything after
 * the parser sees one kind of request.
 *
 * Redis' rules, checked against redis-server 7.0:
 * - arguments are separated by blanks (isspace: space, \t, \n, \v, \f, \r), but an
 *   unquoted argument ends only at space, \t, \n or \r (\v and \f belong to it);
 * - a quote may start in the middle of an argument (a"b c" is `ab c`);
 * - in "double quotes": \xHH (two hex digits) is that byte, \n \r \t \b \a are control
 *   characters, a backslash before anything else is that character;
 * - in 'single quotes' only \' is an escape;
 * - a closing quote must be followed by a blank or the end of the line, and a quote
 *   must be closed: otherwise the request is refused (unbalanced quotes).
 */
#include "proto/redis_inline.h"

#include "proto/redis_wire.h"

/* Blanks between arguments: isspace() in the C locale. */
static bool inl_blank(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* What ends an unquoted argument. */
static bool inl_arg_end(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int inl_hex(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static uint8_t inl_escape(uint8_t c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/* One character inside "double quotes" at p[*i]: appends what it means to out (when
 * out is not NULL) and counts it in *len. Returns 1 at the closing quote, 0 to go on,
 * -1 when the quote is unbalanced. */
static int inl_dquoted(const uint8_t *p, size_t n, size_t *i, uint8_t *out, size_t *len)
{
    size_t k = *i;
    uint8_t ch;
    if (k == n) {
        return -1;
    }
    if (p[k] == '\\' && k + 3 < n && p[k + 1] == 'x' && inl_hex(p[k + 2]) >= 0 &&
        inl_hex(p[k + 3]) >= 0) {
        ch = (uint8_t)(inl_hex(p[k + 2]) * 16 + inl_hex(p[k + 3]));
        k += 4;
    } else if (p[k] == '\\' && k + 1 < n) {
        ch = inl_escape(p[k + 1]);
        k += 2;
    } else if (p[k] == '"') {
        *i = k + 1;
        return k + 1 < n && !inl_blank(p[k + 1]) ? -1 : 1;
    } else {
        ch = p[k++];
    }
    if (out != NULL) {
        out[*len] = ch;
    }
    (*len)++;
    *i = k;
    return 0;
}

/* The same inside 'single quotes'. */
static int inl_squoted(const uint8_t *p, size_t n, size_t *i, uint8_t *out, size_t *len)
{
    size_t k = *i;
    uint8_t ch;
    if (k == n) {
        return -1;
    }
    if (p[k] == '\\' && k + 1 < n && p[k + 1] == '\'') {
        ch = '\'';
        k += 2;
    } else if (p[k] == '\'') {
        *i = k + 1;
        return k + 1 < n && !inl_blank(p[k + 1]) ? -1 : 1;
    } else {
        ch = p[k++];
    }
    if (out != NULL) {
        out[*len] = ch;
    }
    (*len)++;
    *i = k;
    return 0;
}

/* Decode the argument starting at p[*i] (not a blank) into out (NULL: only measure).
 * Returns its length and moves *i past it, or -1 for unbalanced quotes. */
static int64_t inl_arg(const uint8_t *p, size_t n, size_t *i, uint8_t *out)
{
    size_t k = *i, len = 0;
    while (k < n && !inl_arg_end(p[k])) {
        int rc = 0;
        if (p[k] == '"' || p[k] == '\'') {
            bool dq = p[k++] == '"';
            do {
                rc = dq ? inl_dquoted(p, n, &k, out, &len) : inl_squoted(p, n, &k, out, &len);
            } while (rc == 0);
            if (rc < 0) {
                return -1;
            }
            break; /* a closing quote ends the argument */
        }
        if (out != NULL) {
            out[len] = p[k];
        }
        len++;
        k++;
    }
    *i = k;
    return (int64_t)len;
}

/* Count the arguments of the line; -1 for unbalanced quotes. */
static int64_t inl_count(const uint8_t *p, size_t n)
{
    int64_t argc = 0;
    for (size_t i = 0;;) {
        while (i < n && inl_blank(p[i])) {
            i++;
        }
        if (i == n) {
            return argc;
        }
        if (inl_arg(p, n, &i, NULL) < 0) {
            return -1;
        }
        argc++;
    }
}

int redis_inline_rewrite(const uint8_t *p, size_t n, struct buf *wire, struct spans *args)
{
    buf_reset(wire);
    spans_reset(args);
    int64_t argc = inl_count(p, n);
    if (argc <= 0) {
        return (int)argc;
    }
    /* the decoded arguments are never longer than the line; each gets a header */
    if (buf_reserve(wire, n + (size_t)(argc + 1) * (REDIS_WIRE_NUM_MAX + 5)) != 0 ||
        redis_wire_num(wire, '*', argc) != 0) {
        return -2;
    }
    for (size_t i = 0;;) {
        while (i < n && inl_blank(p[i])) {
            i++;
        }
        if (i == n) {
            return (int)argc;
        }
        size_t at = i;
        int64_t len = inl_arg(p, n, &at, NULL);
        redis_wire_num(wire, '$', len); /* cannot fail: reserved */
        if (spans_push(args, (uint32_t)wire->len, (uint32_t)len) != 0) {
            return -2;
        }
        inl_arg(p, n, &i, wire->data + wire->len);
        wire->len += (size_t)len;
        buf_append(wire, "\r\n", 2);
    }
}
