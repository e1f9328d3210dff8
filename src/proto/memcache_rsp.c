/*
 * memcache_rsp: the response parser. The request's command says which replies
 * are possible; anything else means the server connection is out of sync (or
 * not a memcached), which PARSE_ERROR reports so the core closes it.
 *
 * Work is bounded: one pass over the lines, data blocks are skipped by their
 * length, no recursion.
 */
#include <string.h>

#include "proto/memcache_int.h"

static int mc_rsp_fail(struct rsp_info *info, const char *why)
{
    mc_text_copy(info->err, sizeof(info->err), (const uint8_t *)why, strlen(why));
    return PARSE_ERROR;
}

/* An error line ends the response; its text is kept for logs. */
static int mc_rsp_error(const uint8_t *p, const struct mc_line *line, struct rsp_info *info)
{
    info->is_error = true;
    info->len = line->next;
    mc_text_copy(info->err, sizeof(info->err), p + line->start, line->end - line->start);
    return PARSE_OK;
}

/* Find the line at start; PARSE_OK when found, else what the caller returns. */
static int mc_rsp_line(const uint8_t *p, size_t n, size_t start, struct mc_line *line,
                       struct rsp_info *info)
{
    int rc = mc_crlf_line_find(p, n, start, MC_LINE_MAX, line);

    if (rc == MC_LINE_LONG) {
        return mc_rsp_fail(info, "response line too long");
    }
    return rc == MC_LINE_AGAIN ? PARSE_AGAIN : PARSE_OK;
}

/* The data block of `size` bytes after line must be there and end with CRLF;
 * *end is where it ends. */
static int mc_rsp_data(const uint8_t *p, size_t n, const struct mc_line *line, uint64_t size,
                       size_t *end, struct rsp_info *info)
{
    if (size > MC_RSP_DATA_MAX) {
        return mc_rsp_fail(info, "response data block too large");
    }
    *end = line->next + (size_t)size + 2;
    if (*end > UINT32_MAX) {
        return mc_rsp_fail(info, "response too large");
    }
    if (n < *end) {
        return PARSE_AGAIN;
    }
    if (p[*end - 2] != '\r' || p[*end - 1] != '\n') {
        return mc_rsp_fail(info, "response data block without CRLF");
    }
    return PARSE_OK;
}

/* "VALUE <key> <flags> <bytes> [<cas>]" and its data block; *next is after it. */
static int mc_rsp_value(const uint8_t *p, size_t n, const struct mc_line *line, size_t *next,
                        struct rsp_info *info)
{
    struct span tok[6];
    size_t pos = line->start;
    uint32_t nt = 0;
    uint64_t v, size;

    while (nt < 6 && mc_token_next(p, &pos, line->end, &tok[nt])) {
        nt++;
    }
    if (nt < 4 || nt > 5 || !mc_bytes_are(p + tok[0].off, tok[0].len, "VALUE") ||
        !mc_u64_parse(p + tok[2].off, tok[2].len, &v) ||
        !mc_u64_parse(p + tok[3].off, tok[3].len, &size) ||
        (nt == 5 && !mc_u64_parse(p + tok[4].off, tok[4].len, &v))) {
        return mc_rsp_fail(info, "unexpected line in a retrieval response");
    }
    int rc = mc_rsp_data(p, n, line, size, next, info);
    if (rc == PARSE_AGAIN) {
        info->len = *next + 5; /* at least "END\r\n" follows */
    }
    if (rc != PARSE_OK) {
        return rc;
    }
    if (spans_push(&info->elems, (uint32_t)line->start, (uint32_t)(*next - line->start)) < 0 ||
        spans_push(&info->ekeys, tok[1].off, tok[1].len) < 0) {
        return mc_rsp_fail(info, "out of memory");
    }
    return PARSE_OK;
}

/* get, gets, gat, gats: VALUE blocks until END or an error line. */
static int mc_rsp_values(const uint8_t *p, size_t n, struct rsp_info *info)
{
    struct mc_line line;
    size_t off = 0;

    for (;;) {
        int rc = mc_rsp_line(p, n, off, &line, info);
        if (rc != PARSE_OK) {
            return rc;
        }
        const uint8_t *s = p + line.start;
        size_t len = line.end - line.start;
        if (mc_bytes_are(s, len, "END")) {
            info->len = line.next;
            return PARSE_OK;
        }
        if (mc_error_line(s, len)) {
            return mc_rsp_error(p, &line, info);
        }
        rc = mc_rsp_value(p, n, &line, &off, info);
        if (rc != PARSE_OK) {
            return rc;
        }
    }
}

/* stats: one word out of the command's replies (RESET, OK), or lines up to END,
 * each kept in info->elems; an error line ends it as an error. */
static int mc_rsp_stats(const uint8_t *p, size_t n, const struct mc_cmd *cmd, struct rsp_info *info)
{
    struct mc_line line;
    size_t off = 0;

    for (;;) {
        int rc = mc_rsp_line(p, n, off, &line, info);
        if (rc != PARSE_OK) {
            return rc;
        }
        const uint8_t *s = p + line.start;
        size_t len = line.end - line.start;
        if (mc_error_line(s, len)) {
            return mc_rsp_error(p, &line, info);
        }
        if (mc_bytes_are(s, len, "END") || (off == 0 && mc_word_in(cmd->replies, s, len))) {
            info->len = line.next;
            return PARSE_OK;
        }
        if (spans_push(&info->elems, (uint32_t)line.start, (uint32_t)(line.next - line.start)) <
            0) {
            return mc_rsp_fail(info, "out of memory");
        }
        off = line.next;
    }
}

/* Meta replies: "<CD>[ <flags>]", and "VA <size>[ <flags>]" with a data block. */
static int mc_rsp_meta(const uint8_t *p, size_t n, const struct mc_cmd *cmd,
                       const struct mc_line *line, struct rsp_info *info)
{
    size_t len = line->end;
    struct span tok;
    size_t pos = 2;
    uint64_t size;

    if (len < 2 || (len > 2 && p[2] != ' ') || !mc_word_in(cmd->replies, p, 2)) {
        return mc_rsp_fail(info, "unexpected meta response");
    }
    info->len = line->next;
    if (memcmp(p, "VA", 2) != 0) {
        return PARSE_OK;
    }
    if (!mc_token_next(p, &pos, len, &tok) || !mc_u64_parse(p + tok.off, tok.len, &size)) {
        return mc_rsp_fail(info, "meta VA response without a size");
    }
    /* On PARSE_AGAIN info->len is the total needed: the hint the core wants. */
    return mc_rsp_data(p, n, line, size, &info->len, info);
}

/* A quiet request sent as it is with an mn behind it (MC_CMD_MA_VIVIFY): the
 * server's reply, or none where q kept it back, then the mn's MN. */
static int mc_rsp_meta_mn(const uint8_t *p, size_t n, const struct mc_cmd *cmd,
                          struct rsp_info *info)
{
    struct mc_line line;
    int rc = mc_rsp_line(p, n, 0, &line, info);

    if (rc != PARSE_OK) {
        return rc;
    }
    if (mc_bytes_are(p, line.end, "MN")) {
        info->len = line.next;
        return PARSE_OK;
    }
    rc = mc_error_line(p, line.end) ? mc_rsp_error(p, &line, info)
                                    : mc_rsp_meta(p, n, cmd, &line, info);
    if (rc != PARSE_OK) {
        return rc;
    }
    rc = mc_rsp_line(p, n, info->len, &line, info);
    if (rc != PARSE_OK) {
        info->len = 0; /* PARSE_AGAIN: no hint, the MN line is short */
        return rc;
    }
    if (!mc_bytes_are(p + line.start, line.end - line.start, "MN")) {
        return mc_rsp_fail(info, "no MN after the reply to a quiet request");
    }
    info->len = line.next;
    return PARSE_OK;
}

/* incr/decr: the new value, which memcached may pad with spaces. */
static bool mc_rsp_number(const uint8_t *s, size_t len)
{
    size_t d = 0;
    uint64_t v;

    while (d < len && s[d] != ' ') {
        d++;
    }
    for (size_t i = d; i < len; i++) {
        if (s[i] != ' ') {
            return false;
        }
    }
    return d > 0 && s[0] != '+' && mc_u64_parse(s, d, &v);
}

/* Replies of exactly one line. */
static int mc_rsp_single(const uint8_t *p, const struct mc_cmd *cmd, const struct mc_line *line,
                         struct rsp_info *info)
{
    size_t len = line->end;
    bool ok = false;

    switch (cmd->reply) {
    case MC_REPLY_WORDS:
        ok = mc_word_in(cmd->replies, p, len);
        break;
    case MC_REPLY_NUMBER:
        ok = mc_word_in(cmd->replies, p, len) || mc_rsp_number(p, len);
        break;
    case MC_REPLY_VERSION:
        ok = len >= 8 && memcmp(p, "VERSION ", 8) == 0;
        break;
    default:
        break;
    }
    if (!ok) {
        return mc_rsp_fail(info, "unexpected response");
    }
    info->len = line->next;
    return PARSE_OK;
}

int mc_rsp_parse(const uint8_t *p, size_t n, uint16_t cmd_id, struct rsp_info *info)
{
    const struct mc_cmd *cmd = mc_cmd_get(cmd_id);
    struct mc_line line;

    rsp_info_reset(info);
    if (cmd == NULL || cmd->reply == MC_REPLY_NONE) {
        return mc_rsp_fail(info, "response to a command that has none");
    }
    if (cmd->reply == MC_REPLY_VALUES) {
        return mc_rsp_values(p, n, info);
    }
    if (cmd->reply == MC_REPLY_STATS) {
        return mc_rsp_stats(p, n, cmd, info);
    }
    if (cmd->reply == MC_REPLY_META_MN) {
        return mc_rsp_meta_mn(p, n, cmd, info);
    }
    int rc = mc_rsp_line(p, n, 0, &line, info);
    if (rc != PARSE_OK) {
        return rc;
    }
    if (mc_error_line(p, line.end)) {
        return mc_rsp_error(p, &line, info);
    }
    if (cmd->reply == MC_REPLY_META) {
        return mc_rsp_meta(p, n, cmd, &line, info);
    }
    return mc_rsp_single(p, cmd, &line, info);
}

/* The replies a meta request's q flag keeps back (memcached 1.6): the miss of
 * mg (EN), the success of ms and md (HD) and of ma (HD, or VA when it asked
 * for the value). Errors and every other outcome (NS, EX, NF, an mg hit) show. */
static bool mc_reply_hidden(uint16_t cmd, const uint8_t *rsp, size_t len)
{
    if (len < 4 || (rsp[2] != ' ' && rsp[2] != '\r')) {
        return false;
    }
    bool hd = rsp[0] == 'H' && rsp[1] == 'D';
    switch (cmd) {
    case MC_CMD_MG:
        return rsp[0] == 'E' && rsp[1] == 'N';
    case MC_CMD_MS:
    case MC_CMD_MD:
        return hd;
    case MC_CMD_MA:
        return hd || (rsp[0] == 'V' && rsp[1] == 'A');
    default:
        return false;
    }
}

/* What a quiet request's client sees of its reply: nothing where q would have
 * kept it back. A quiet ma with N went with its q and an mn behind it: the
 * server kept back what it would, and the MN is the proxy's, not passed on (a
 * reply without one is the proxy's own error, passed on whole). */
size_t mc_reply_shown(uint16_t cmd, const uint8_t *rsp, size_t len)
{
    if (cmd == MC_CMD_MA_VIVIFY) {
        if (len == 4 && memcmp(rsp, "MN\r\n", 4) == 0) {
            return 0;
        }
        bool mn = len > 6 && memcmp(rsp + len - 6, "\r\nMN\r\n", 6) == 0;
        return mn ? len - 4 : len;
    }
    return mc_reply_hidden(cmd, rsp, len) ? 0 : len;
}
