/*
 * memcache_req: the request parser. One call looks at the bytes from the start
 * of a request and says: incomplete (and how many bytes it needs once a data
 * block length is known), complete and where it goes, or rejected with the
 * error line to answer and how many bytes to drop.
 *
 * As in memcached, the number of tokens is checked first (ERROR), then each
 * token after the command name by the letters of the command's shape
 * (memcache_cmd.c):
 *   k  one key (at most 250 bytes)          K  keys, to the end (the count says
 *                                              whether none is fine)
 *   u  unsigned number                      i  signed number (exptime)
 *   b  data block length (storage)          l  data block length (ms)
 *   z  optional "0" (delete's old hold time)
 *   o  optional signed number, unless the token is "noreply" (flush_all delay)
 *   n  optional noreply; memcached ignores any other word here, so do we
 *   N  optional noreply; any other word is an error (delete)
 *   m  meta flags, to the end              *  anything, ignored
 *
 * Whether a request is noreply is memcached's rule too: its last token is
 * "noreply" (commands that have it), unless that token is the key. Such a
 * request gets no reply at all, an error included: it is answered by nothing
 * (ROUTE_LOCAL, see memcache.h).
 */
#include <string.h>

#include "proto/memcache_int.h"

/* The first byte of every binary protocol request. */
#define MC_BINARY_MAGIC 0x80

/* What checking a command line found. */
struct mc_scan {
    const char *err; /* the first problem, or NULL */
    bool data;       /* a data block of data_len bytes + CRLF follows the line */
    bool err_first;  /* err was found before the data block's length */
    bool too_large;
    uint64_t data_len;
    uint32_t quiet; /* the q flag's token (args index), or 0 */
    uint32_t b64;   /* the b flag's token (args index), or 0 */
    bool vivify;    /* the N flag: create the key on a miss */
    int key_len;    /* with b: the decoded key's length (mc_scan_b64) */
    bool b64_bad;   /* with b: a key memcached will not decode */
};

static void mc_scan_fail(struct mc_scan *sc, const char *err)
{
    if (sc->err == NULL) {
        sc->err = err;
    }
}

/* A binary protocol request header (memcached's protocol_binary.h): magic,
 * opcode, key length, extras length, data type (0), vbucket, body length,
 * opaque, cas; 24 bytes. */
#define MC_BIN_HEADER   24
#define MC_BIN_RESPONSE 0x81
/* "internal error", not "not supported" (0x0083): spymemcached reads 0x0083
 * as an unsuccessful operation (a get as a miss, add as "exists", delete as
 * "not found"), and throws on 0x0084 with our words (h45) */
#define MC_BIN_INTERNAL_ERROR 0x0084

/* The binary requests refused with a close alone. The gets libmemcached sends
 * (GETK for one key, GETKQ for several, GATK, GATKQ) and the other quiet gets
 * (GETQ, GATQ): it reads any error response to them as a miss. QUITQ: the
 * client asked for the close without a response. */
static bool mc_bin_close_only(uint8_t opcode)
{
    switch (opcode) {
    case 0x09: /* GETQ */
    case 0x0c: /* GETK */
    case 0x0d: /* GETKQ */
    case 0x17: /* QUITQ */
    case 0x1e: /* GATQ */
    case 0x23: /* GATK */
    case 0x24: /* GATKQ */
        return true;
    default:
        return false;
    }
}

/* The answer to a binary request: a response of its opcode and opaque with
 * status "internal error" and MC_ERR_BINARY's words as its value, so a binary
 * client reports why (the text error read as a header was a miss or a reset
 * to it). A get of libmemcached's gets none: refused, it would read as a
 * miss, and an application would run on misses with no error; the close alone
 * is a connection failure to it (mc_bin_close_only). -1 when p holds no
 * plausible header. */
static int mc_bin_refusal(const uint8_t *p, size_t n, struct buf *out)
{
    static const char why[] = "binary protocol is not supported through the proxy";
    if (n < MC_BIN_HEADER || p[5] != 0 || p[4] > 20) {
        return -1; /* not one: the text error */
    }
    if (mc_bin_close_only(p[1])) {
        buf_reset(out);
        return 0;
    }
    uint8_t h[MC_BIN_HEADER] = {MC_BIN_RESPONSE, p[1]};
    uint32_t body = (uint32_t)sizeof(why) - 1;
    h[6] = MC_BIN_INTERNAL_ERROR >> 8;
    h[7] = MC_BIN_INTERNAL_ERROR & 0xff;
    h[8] = (uint8_t)(body >> 24);
    h[9] = (uint8_t)(body >> 16);
    h[10] = (uint8_t)(body >> 8);
    h[11] = (uint8_t)body;
    memcpy(h + 12, p + 12, 4); /* the opaque: the client's own request id */
    buf_reset(out);
    if (buf_append(out, h, sizeof(h)) != 0 || buf_append(out, why, body) != 0) {
        buf_reset(out);
        return -1;
    }
    return 0;
}

static void mc_req_reset(struct req_info *info)
{
    info->scanned = 0;
    info->err_wire = false;
    spans_reset(&info->keys);
    spans_reset(&info->args);
    info->len = 0;
    info->route = ROUTE_KEY;
    info->live_only = false;
    info->noreply = false;
    info->quit = false;
    info->empty = false;
    info->local_only = false;
    info->readonly = false;
    info->blocking = false;
    info->cmd = MC_CMD_NONE;
    info->droppable = false;
    info->rewritten = false;
    info->quiet = false;
    info->key_tail = 0;
    info->err[0] = '\0';
}

static int mc_req_error(struct req_info *info, const char *err)
{
    mc_text_copy(info->err, sizeof(info->err), (const uint8_t *)err, strlen(err));
    return PARSE_ERROR;
}

/* Answer err and drop len bytes; the stream goes on after them. */
static int mc_req_reject(struct req_info *info, size_t len, const char *err)
{
    if (info->noreply) {
        /* memcached stays silent on errors of a noreply request: its client
         * reads no reply for it, so an error line would answer its next request */
        spans_reset(&info->keys);
        info->len = len;
        info->route = ROUTE_LOCAL;
        return PARSE_OK;
    }
    spans_reset(&info->keys);
    info->len = len;
    info->route = ROUTE_REJECT;
    info->noreply = false;
    info->quit = false;
    mc_text_copy(info->err, sizeof(info->err), (const uint8_t *)err, strlen(err));
    return PARSE_OK;
}

/* Multi-key retrieval lines may be as long as the core's request size limit (as
 * with memcached's get and twemproxy's); the first word decides. */
static size_t mc_req_line_max(const uint8_t *p, size_t n)
{
    static const char *const multi[] = {"get ", "gets ", "gat ", "gats "};
    size_t i = 0;

    while (i < n && p[i] == ' ' && i < MC_LINE_MAX) {
        i++;
    }
    for (size_t m = 0; m < sizeof(multi) / sizeof(multi[0]); m++) {
        size_t len = strlen(multi[m]);
        if (n - i >= len && memcmp(p + i, multi[m], len) == 0) {
            return MC_KEYS_LINE_MAX;
        }
    }
    return MC_LINE_MAX;
}

/* Push tokens of line [*pos, end) until args holds max of them; *more says some are left. */
static int mc_req_tokens(const uint8_t *p, size_t *pos, size_t end, struct spans *args,
                         uint32_t max, bool *more)
{
    struct span tok;
    size_t before = *pos;

    *more = false;
    while (mc_token_next(p, pos, end, &tok)) {
        if (args->n == max) {
            /* Leave the token for a later call with a larger max. */
            *pos = before;
            *more = true;
            return 0;
        }
        before = *pos;
        if (spans_push(args, tok.off, tok.len) < 0) {
            return -1;
        }
    }
    return 0;
}

static void mc_scan_key(const uint8_t *p, struct span tok, struct req_info *info,
                        struct mc_scan *sc)
{
    if (tok.len > PROTO_MAX_KEY_LEN_MEMCACHE) {
        mc_scan_fail(sc, MC_ERR_FORMAT);
        return;
    }
    if (spans_push(&info->keys, tok.off, tok.len) < 0) {
        mc_scan_fail(sc, MC_ERR_NOMEM);
    }
}

static void mc_scan_length(const uint8_t *tok, size_t len, const struct mc_cmd *cmd,
                           struct mc_scan *sc)
{
    int64_t v;

    if (!mc_token_i64(tok, len, &v) || v < 0) { /* memcached reads it with safe_strtol */
        mc_scan_fail(sc, cmd->err_arg);
    } else if ((uint64_t)v > MC_VLEN_MAX) {
        /* memcached's own answer: the number does not fit; no block is read */
        mc_scan_fail(sc, cmd->err_arg);
    } else {
        sc->data = true;
        sc->err_first = sc->err != NULL;
        sc->data_len = (uint64_t)v;
        sc->too_large = (uint64_t)v > MC_REQ_DATA_MAX;
    }
}

static void mc_scan_number(const uint8_t *s, size_t len, bool sign, const struct mc_cmd *cmd,
                           struct mc_scan *sc)
{
    uint64_t u;
    int64_t i;
    bool ok = sign ? mc_token_i64(s, len, &i) : mc_token_u64(s, len, &u);

    if (!ok) {
        mc_scan_fail(sc, cmd->err_arg);
    }
}

/* Meta flags: q is noted (mc_req_unquiet), b too (mc_scan_b64); N and T
 * write. me reads no flag but b, and answers whatever q says. */
static void mc_scan_meta_flag(uint8_t flag, uint32_t t, struct req_info *info, struct mc_scan *sc)
{
    if (flag == 'q' && info->cmd != MC_CMD_ME) {
        if (sc->quiet != 0) { /* memcached's answer to any flag twice */
            bool md = info->cmd == MC_CMD_MD || info->cmd == MC_CMD_MA;
            mc_scan_fail(sc, md ? MC_ERR_DUPFLAG_MD : MC_ERR_DUPFLAG);
        }
        sc->quiet = t;
    } else if (flag == 'b') {
        sc->b64 = t;
    } else if (flag == 'N' || flag == 'T') {
        info->readonly = false;
        sc->vivify = sc->vivify || flag == 'N';
    }
}

/* Check token t against one shape letter; returns the next token to check. */
static uint32_t mc_scan_letter(char letter, const uint8_t *p, const struct mc_cmd *cmd, uint32_t t,
                               struct req_info *info, struct mc_scan *sc)
{
    const struct spans *a = &info->args;
    bool have = t < a->n;
    struct span tok = have ? a->v[t] : (struct span){0, 0};
    const uint8_t *s = p + tok.off;
    bool noreply = have && mc_bytes_are(s, tok.len, "noreply");

    if (!have && strchr("kuibl", letter) != NULL) {
        mc_scan_fail(sc, letter == 'l' ? MC_ERR_FORMAT : cmd->err_missing);
        return t;
    }
    switch (letter) {
    case 'k':
        mc_scan_key(p, tok, info, sc);
        return t + 1;
    case 'K':
        for (; t < a->n; t++) {
            mc_scan_key(p, a->v[t], info, sc);
        }
        return t;
    case 'u':
    case 'i':
        mc_scan_number(s, tok.len, letter == 'i', cmd, sc);
        return t + 1;
    case 'b':
    case 'l':
        mc_scan_length(s, tok.len, cmd, sc);
        return t + 1;
    case 'z':
        return have && mc_bytes_are(s, tok.len, "0") ? t + 1 : t;
    case 'o':
        if (!have || noreply) {
            return t;
        }
        mc_scan_number(s, tok.len, true, cmd, sc);
        return t + 1;
    case 'n':
    case 'N':
        if (have && !noreply && letter == 'N') {
            mc_scan_fail(sc, cmd->err_arg);
        }
        return have ? t + 1 : t;
    case 'm':
        for (; t < a->n; t++) {
            mc_scan_meta_flag(p[a->v[t].off], t, info, sc);
        }
        return t;
    default: /* '*' */
        return a->n;
    }
}

/* memcached counts tokens before it reads any: a wrong count is ERROR, even
 * with noreply. Tokens past MC_TOKENS_MAX (`more`) are always too many. */
static bool mc_count_ok(const struct mc_cmd *cmd, uint32_t ntok, bool more)
{
    return (cmd->tmin == 0 || ntok >= cmd->tmin) &&
           (cmd->tmax == 0 || (!more && ntok <= cmd->tmax));
}

/* memcached judges delete's words after the key before the key itself: a bad
 * word there is the answer even with a key over 250 bytes. */
static void mc_scan_delete_tail(const uint8_t *p, const struct mc_cmd *cmd, struct req_info *info,
                                struct mc_scan *sc)
{
    struct mc_scan tail = {0};
    uint32_t t = mc_scan_letter('z', p, cmd, 2, info, &tail);
    t = mc_scan_letter('N', p, cmd, t, info, &tail);
    if (tail.err != NULL || t < info->args.n) {
        mc_scan_fail(sc, cmd->err_extra);
    }
}

static void mc_scan_line(const uint8_t *p, const struct mc_cmd *cmd, bool more,
                         struct req_info *info, struct mc_scan *sc)
{
    const struct spans *a = &info->args;
    uint32_t t = 1;

    if (!mc_count_ok(cmd, a->n, more)) {
        mc_scan_fail(sc, MC_ERR_UNKNOWN);
    } else if (cmd->noreply && a->n > (cmd->shape[0] == 'k' ? 2u : 1u)) {
        /* a key named noreply is a key: `delete noreply` is answered */
        const struct span *last = &a->v[a->n - 1];
        info->noreply = mc_bytes_are(p + last->off, last->len, "noreply");
        if (mc_cmd_id(cmd) == MC_CMD_DELETE) {
            mc_scan_delete_tail(p, cmd, info, sc);
        }
    }
    /* the letters run even after a count error, which then stays the answer
     * (and, found before the length, leaves the block to be read as commands) */
    for (const char *l = cmd->shape; *l != '\0'; l++) {
        t = mc_scan_letter(*l, p, cmd, t, info, sc);
    }
    if (strchr(cmd->shape, '*') == NULL && (t < a->n || more)) {
        mc_scan_fail(sc, cmd->err_extra);
    }
}

/* stats: a plain `stats` is summed over every server (memcache_merge.c);
 * `stats reset` and `stats detail on|off` change every server; `stats cachedump`
 * and `stats detail dump` list what every server holds; anything else
 * (settings, items, slabs, conns...) describes one server: the first live one. */
static uint8_t mc_req_stats_route(const uint8_t *p, const struct spans *a)
{
    if (a->n < 2) {
        return ROUTE_ALL;
    }
    const uint8_t *sub = p + a->v[1].off;
    uint32_t len = a->v[1].len;
    if (mc_bytes_are(sub, len, "reset") || mc_bytes_are(sub, len, "detail") ||
        mc_bytes_are(sub, len, "cachedump")) {
        return ROUTE_ALL;
    }
    return ROUTE_ANY;
}

/* A decoded key `delete` can carry: no space, no control byte. */
static bool mc_key_is_text(const uint8_t *k, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (k[i] <= ' ' || k[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

/* The b flag: the key token is base64, decoded into key (MC_B64_KEY_MAX bytes)
 * with memcached's rules (memcache_b64.c). A key memcached will not decode goes
 * to the server its token routes to, which refuses it: memcached checks the
 * flags first, so its answer (a bad flag, or the key) is the one to give. */
static void mc_scan_b64(const uint8_t *p, const struct req_info *info, struct mc_scan *sc,
                        uint8_t *key)
{
    if (info->keys.n != 1) {
        sc->b64 = 0; /* no key: refused already */
        return;
    }
    const struct span *k = &info->keys.v[0];
    sc->key_len = mc_b64_decode(p + k->off, k->len, key, MC_B64_KEY_MAX);
    if (sc->key_len < 0) {
        sc->b64 = 0; /* routed as it is */
        sc->b64_bad = true;
    }
}

/* The b flag's request goes to its server as it came (or without q: then it is
 * rewritten already), and is routed by the decoded key, which follows it in
 * info->wire (proto.h: key_tail). */
static int mc_req_decoded_key(const uint8_t *p, const uint8_t *key, size_t klen,
                              struct req_info *info)
{
    if (!info->rewritten) {
        buf_reset(&info->wire);
        if (buf_append(&info->wire, p, info->len) != 0) {
            return mc_req_reject(info, info->len, MC_ERR_NOMEM);
        }
        info->rewritten = true;
    }
    size_t at = info->wire.len;
    if (buf_append(&info->wire, key, klen) != 0) {
        return mc_req_reject(info, info->len, MC_ERR_NOMEM);
    }
    info->keys.v[0].off = (uint32_t)at;
    info->keys.v[0].len = (uint32_t)klen;
    info->key_tail = (uint32_t)klen;
    return PARSE_OK;
}

/* A data block the core may not hold (PARSE_AGAIN: over its request limit;
 * PARSE_DROP: over ours). As memcached does with a value over its item size,
 * the block is dropped and the answer is "object too large" (or the header's
 * own error); a set or ms deletes the key too, so that the value the client
 * failed to replace is not read back as if it had been replaced. */
static int mc_req_droppable(const uint8_t *p, const struct mc_cmd *cmd, const struct mc_scan *sc,
                            const uint8_t *key, struct req_info *info, int rc)
{
    const char *err = sc->err != NULL ? sc->err : sc->b64_bad ? MC_ERR_B64 : MC_ERR_LARGE;
    uint16_t id = mc_cmd_id(cmd);

    info->droppable = true;
    mc_text_copy(info->err, sizeof(info->err), (const uint8_t *)err, strlen(err));
    buf_reset(&info->wire);
    if (sc->err != NULL || sc->b64_bad || (id != MC_CMD_SET && id != MC_CMD_MS) ||
        info->keys.n != 1) {
        return rc;
    }
    const uint8_t *k = sc->b64 != 0 ? key : p + info->keys.v[0].off;
    size_t klen = sc->b64 != 0 ? (size_t)sc->key_len : info->keys.v[0].len;
    if (sc->b64 != 0 && !mc_key_is_text(k, klen)) {
        return rc; /* `delete` cannot name it: memcache.h */
    }
    if (buf_append_str(&info->wire, "delete ") != 0 || buf_append(&info->wire, k, klen) != 0 ||
        buf_append_str(&info->wire, " noreply\r\n") != 0) {
        buf_reset(&info->wire); /* out of memory: the answer still goes */
    }
    return rc;
}

/* A quiet meta request (flag q: no reply on success) goes to its server
 * without the flag, token t: then every request has a reply to wait for, and
 * the core holds back the ones q would have kept back (mc_reply_shown). The
 * request is rewritten into info->wire, its spans moved to match. */
static int mc_req_unquiet(const uint8_t *p, uint32_t t, struct req_info *info)
{
    struct spans *a = &info->args;
    /* q and the spaces up to the next token go; every other byte stays where it
     * was in its line ("v q\r\n" becomes "v \r\n": a \r ending a token before
     * a bare \n must not become a line end) */
    size_t from = a->v[t].off;
    size_t to = t + 1 < a->n ? a->v[t + 1].off : from + a->v[t].len;
    uint32_t cut = (uint32_t)(to - from);

    buf_reset(&info->wire);
    if (buf_append(&info->wire, p, from) != 0 ||
        buf_append(&info->wire, p + to, info->len - to) != 0) {
        return mc_req_reject(info, info->len, MC_ERR_NOMEM);
    }
    memmove(&a->v[t], &a->v[t + 1], (a->n - t - 1) * sizeof(a->v[0]));
    a->n--;
    for (uint32_t i = t; i < a->n; i++) {
        a->v[i].off -= cut;
    }
    for (uint32_t i = 0; i < info->keys.n; i++) {
        if (info->keys.v[i].off >= to) {
            info->keys.v[i].off -= cut;
        }
    }
    info->rewritten = true;
    info->quiet = true;
    return PARSE_OK;
}

/* A quiet ma that may create its key (N) goes as it is, with an mn behind it:
 * memcached shows the reply of an ma that created its key, q or not, and only
 * the server knows whether it did. The core passes on whatever comes before
 * the MN (mc_reply_shown). The spans stay: wire starts with the request. */
static int mc_req_quiet_vivify(const uint8_t *p, struct req_info *info)
{
    buf_reset(&info->wire);
    if (buf_append(&info->wire, p, info->len) != 0 || buf_append_str(&info->wire, "mn\r\n") != 0) {
        return mc_req_reject(info, info->len, MC_ERR_NOMEM);
    }
    info->cmd = MC_CMD_MA_VIVIFY;
    info->rewritten = true;
    info->quiet = true;
    return PARSE_OK;
}

/* Whether memcached reads (and drops) the data block of a header it refuses:
 * an ms's when the line was good up to its length (a flag refused after it);
 * the other storage commands' never (memcached 1.6 proto_text.c), so the block
 * is the next command line, as the client's bytes say to memcached. A value
 * too large is read and dropped by both (mc_req_droppable). */
static bool mc_scan_reads_block(const struct mc_cmd *cmd, const struct mc_scan *sc)
{
    return sc->err == NULL || (mc_cmd_id(cmd) == MC_CMD_MS && !sc->err_first);
}

/* The line is complete and names cmd: check it, wait for its data block, route it. */
static int mc_req_command(const uint8_t *p, size_t n, const struct mc_line *line,
                          const struct mc_cmd *cmd, bool more, struct req_info *info)
{
    struct mc_scan sc = {0};
    uint8_t key[MC_B64_KEY_MAX]; /* the b flag's decoded key */
    size_t total = line->next;

    info->cmd = mc_cmd_id(cmd);
    info->readonly = cmd->readonly;
    mc_scan_line(p, cmd, more, info, &sc);
    if (sc.b64 != 0) {
        mc_scan_b64(p, info, &sc, key);
    }
    if (sc.data && mc_scan_reads_block(cmd, &sc)) {
        total = line->next + (size_t)sc.data_len + 2;
        if (sc.too_large || n < total) {
            info->len = total;
            return mc_req_droppable(p, cmd, &sc, key, info,
                                    sc.too_large ? PARSE_DROP : PARSE_AGAIN);
        }
        if (p[total - 2] != '\r' || p[total - 1] != '\n') {
            mc_scan_fail(&sc, MC_ERR_CHUNK);
        }
    }
    if (sc.err != NULL) {
        return mc_req_reject(info, total, sc.err);
    }
    info->len = total;
    info->route = cmd->route;
    if (cmd->route == ROUTE_KEY && info->keys.n > 1) {
        info->route = ROUTE_SPLIT;
    } else if (info->cmd == MC_CMD_STATS) {
        info->route = mc_req_stats_route(p, &info->args);
        info->live_only = info->route == ROUTE_ALL;
    }
    info->quit = info->cmd == MC_CMD_QUIT;
    int rc = PARSE_OK;
    if (sc.quiet != 0) {
        rc = info->cmd == MC_CMD_MA && sc.vivify ? mc_req_quiet_vivify(p, info)
                                                 : mc_req_unquiet(p, sc.quiet, info);
    }
    if (sc.b64 != 0 && info->route != ROUTE_REJECT) {
        rc = mc_req_decoded_key(p, key, (size_t)sc.key_len, info);
    }
    return rc;
}

/* Whether the last word of the line p[0..end) begins with HTTP/: memcached's
 * sign of a web request, for a line that names no command. */
static bool mc_line_is_web(const uint8_t *p, size_t end)
{
    while (end > 0 && p[end - 1] == ' ') {
        end--;
    }
    size_t start = end;
    while (start > 0 && p[start - 1] != ' ') {
        start--;
    }
    return end - start >= 5 && memcmp(p + start, "HTTP/", 5) == 0;
}

int mc_req_parse(const uint8_t *p, size_t n, struct req_info *info)
{
    struct mc_line line;
    size_t pos = 0;
    bool more;
    size_t scanned = info->scanned <= n ? info->scanned : 0;

    mc_req_reset(info);
    if (n > 0 && p[0] == MC_BINARY_MAGIC && !info->mid_stream) {
        /* a binary protocol request has no line end to wait for, but a header:
         * memcached reads all of it before it answers, and so do we, so that a
         * header that came in pieces is answered in its protocol too, which its
         * client reads (24 bytes that are no header get the text error) */
        if (n < MC_BIN_HEADER) {
            info->len = MC_BIN_HEADER;
            return PARSE_AGAIN;
        }
        info->err_wire = mc_bin_refusal(p, n, &info->wire) == 0;
        return mc_req_error(info, MC_ERR_BINARY);
    }
    int rc = mc_line_find_from(p, n, 0, scanned, mc_req_line_max(p, n), &line);
    if (rc == MC_LINE_AGAIN) {
        info->scanned = n;
        info->len = n + 1; /* at least: the core refuses one over its size limit */
        return PARSE_AGAIN;
    }
    if (rc == MC_LINE_LONG) {
        return mc_req_error(info, MC_ERR_LINE);
    }
    /* memcached reads a command line as a C string: a NUL ends the command
     * there, and what follows it up to the line end is ignored. The line goes
     * to the server as it came, and the server reads it the same way. */
    const uint8_t *nul = memchr(p, '\0', line.end);
    if (nul != NULL) {
        line.end = (size_t)(nul - p);
    }
    /* the command name first: it says how many tokens the line may have */
    struct span name;
    if (!mc_token_next(p, &pos, line.end, &name)) {
        return mc_req_reject(info, line.next, MC_ERR_UNKNOWN);
    }
    if (spans_push(&info->args, name.off, name.len) < 0) {
        return mc_req_error(info, MC_ERR_NOMEM);
    }
    const struct mc_cmd *cmd = mc_cmd_find(p + info->args.v[0].off, info->args.v[0].len);
    if (cmd == NULL && mc_line_is_web(p, line.end)) {
        /* a web request (a page in a browser posting to this port, its body
         * commands): memcached closes without a word; so do we */
        info->err_wire = true;
        buf_reset(&info->wire);
        return mc_req_error(info, "a web request (HTTP/ ends the line), not a command");
    }
    if (cmd == NULL) {
        return mc_req_reject(info, line.next, MC_ERR_UNKNOWN);
    }
    uint32_t max = strchr(cmd->shape, 'K') != NULL ? UINT32_MAX : MC_TOKENS_MAX;
    if (mc_req_tokens(p, &pos, line.end, &info->args, max, &more) < 0) {
        return mc_req_error(info, MC_ERR_NOMEM);
    }
    return mc_req_command(p, n, &line, cmd, more, info);
}
