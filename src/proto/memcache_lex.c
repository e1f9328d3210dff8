/*
 * memcache_lex: lines, tokens and numbers of the ASCII protocol. Shared by the
 * request and the response parser; no state, no allocation.
 */
#include <string.h>

#include "proto/memcache_int.h"

int mc_line_find(const uint8_t *p, size_t n, size_t start, size_t max, struct mc_line *line)
{
    return mc_line_find_from(p, n, start, start, max, line);
}

int mc_line_find_from(const uint8_t *p, size_t n, size_t start, size_t from, size_t max,
                      struct mc_line *line)
{
    size_t avail = n - start;
    size_t scan = avail < max ? avail : max;
    size_t known = from - start < scan ? from - start : scan; /* searched before: no LF */
    const uint8_t *lf = memchr(p + start + known, '\n', scan - known);

    if (lf == NULL) {
        return avail >= max ? MC_LINE_LONG : MC_LINE_AGAIN;
    }
    line->start = start;
    line->next = (size_t)(lf - p) + 1;
    line->end = (size_t)(lf - p);
    /* memcached takes a bare LF as a line end too; strip one CR when present. */
    if (line->end > start && p[line->end - 1] == '\r') {
        line->end--;
    }
    return MC_LINE_OK;
}

int mc_crlf_line_find(const uint8_t *p, size_t n, size_t start, size_t max, struct mc_line *line)
{
    /* mc_line_find from where the last bare LF left off, until a line it finds
     * ends with CRLF (it strips the CR: two bytes between end and next) */
    for (size_t from = start;; from = line->next) {
        int rc = mc_line_find(p, n, from, max - (from - start), line);
        if (rc != MC_LINE_OK) {
            return rc;
        }
        if (line->next - line->end == 2) {
            line->start = start;
            return MC_LINE_OK;
        }
    }
}

bool mc_token_next(const uint8_t *p, size_t *pos, size_t end, struct span *tok)
{
    size_t i = *pos;

    /* Only ' ' separates tokens, as in memcached: a tab is part of a token. */
    while (i < end && p[i] == ' ') {
        i++;
    }
    if (i == end) {
        *pos = i;
        return false;
    }
    size_t s = i;
    /* keys are most of a line's bytes: memchr scans them many at a time */
    const uint8_t *sp = memchr(p + i, ' ', end - i);
    i = sp != NULL ? (size_t)(sp - p) : end;
    tok->off = (uint32_t)s;
    tok->len = (uint32_t)(i - s);
    *pos = i;
    return true;
}

static bool mc_digits_parse(const uint8_t *s, size_t len, uint64_t *v)
{
    uint64_t acc = 0;

    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10) {
            return false;
        }
        acc = acc * 10 + d;
    }
    *v = acc;
    return true;
}

bool mc_u64_parse(const uint8_t *s, size_t len, uint64_t *v)
{
    if (len > 0 && s[0] == '+') {
        s++;
        len--;
    }
    return mc_digits_parse(s, len, v);
}

bool mc_i64_parse(const uint8_t *s, size_t len, int64_t *v)
{
    bool neg = false;
    uint64_t u;

    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s++;
        len--;
    }
    if (!mc_digits_parse(s, len, &u)) {
        return false;
    }
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
        return true;
    }
    if (u > (uint64_t)INT64_MAX) {
        return false;
    }
    *v = (int64_t)u;
    return true;
}

/* isspace() in the C locale: what strtoull skips before a number, and what may
 * follow one in a token (only ' ' separates tokens, so the others stay in them). */
static bool mc_is_space(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* A request token read as memcached reads it (safe_strtoull, safe_strtol; a NUL
 * has ended the line already): white space, a sign, digits (no overflow), then
 * the end or a white space character and anything after it. *neg: a '-' was
 * read; *u: the digits' value. */
static bool mc_token_digits(const uint8_t *s, size_t len, bool *neg, uint64_t *u)
{
    size_t i = 0, d;
    while (i < len && mc_is_space(s[i])) {
        i++;
    }
    *neg = i < len && s[i] == '-';
    i += i < len && (s[i] == '-' || s[i] == '+');
    for (d = i; d < len && s[d] >= '0' && s[d] <= '9'; d++) {
    }
    return d > i && (d == len || mc_is_space(s[d])) && mc_digits_parse(s + i, d - i, u);
}

bool mc_token_u64(const uint8_t *s, size_t len, uint64_t *v)
{
    bool neg;
    uint64_t u;
    if (!mc_token_digits(s, len, &neg, &u)) {
        return false;
    }
    /* strtoull negates "-N"; one that then reads as negative is refused when the
     * token holds a '-', so "-0" is 0 and "-1" is refused */
    uint64_t r = neg ? 0 - u : u;
    if ((int64_t)r < 0 && memchr(s, '-', len) != NULL) {
        return false;
    }
    *v = r;
    return true;
}

bool mc_token_i64(const uint8_t *s, size_t len, int64_t *v)
{
    bool neg;
    uint64_t u;
    if (!mc_token_digits(s, len, &neg, &u) || u > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        return false; /* strtoll's ERANGE */
    }
    *v = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

bool mc_word_in(const char *list, const uint8_t *w, size_t len)
{
    const char *s = list;

    while (s != NULL && *s != '\0') {
        const char *e = strchr(s, ' ');
        size_t wl = e ? (size_t)(e - s) : strlen(s);
        if (wl == len && memcmp(s, w, len) == 0) {
            return true;
        }
        s = e ? e + 1 : NULL;
    }
    return false;
}

/* `word` alone, or followed by a space and text. */
static bool mc_starts_word(const uint8_t *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    return len >= wl && memcmp(s, word, wl) == 0 && (len == wl || s[wl] == ' ');
}

bool mc_error_line(const uint8_t *s, size_t len)
{
    return mc_starts_word(s, len, "ERROR") || mc_starts_word(s, len, "CLIENT_ERROR") ||
           mc_starts_word(s, len, "SERVER_ERROR");
}

void mc_text_copy(char *dst, size_t size, const uint8_t *s, size_t len)
{
    if (size == 0) {
        return;
    }
    if (len > size - 1) {
        len = size - 1;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
}
