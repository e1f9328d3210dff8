/*
 * memcache_int: what the memcache_*.c files share and nobody else needs: the
 * command table row, and the small lexing helpers for lines, tokens, numbers.
 */
#ifndef NC_PROTO_MEMCACHE_INT_H
#define NC_PROTO_MEMCACHE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "proto/memcache.h"
#include "proto/proto.h"

/* memcached's own wording, kept so a client sees the same error through us. */
#define MC_ERR_UNKNOWN    "ERROR"
#define MC_ERR_FORMAT     "CLIENT_ERROR bad command line format"
#define MC_ERR_EXPTIME    "CLIENT_ERROR invalid exptime argument"
#define MC_ERR_DELTA      "CLIENT_ERROR invalid numeric delta argument"
#define MC_ERR_DELETE     "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
#define MC_ERR_FLAGS      "CLIENT_ERROR options flags are too long"
#define MC_ERR_DUPFLAG    "CLIENT_ERROR duplicate flag"
#define MC_ERR_DUPFLAG_MD "CLIENT_ERROR invalid or duplicate flag" /* md, ma */
#define MC_ERR_CHUNK      "CLIENT_ERROR bad data chunk"
#define MC_ERR_LINE       "CLIENT_ERROR line too long"
#define MC_ERR_LARGE      "SERVER_ERROR object too large for cache"
#define MC_ERR_B64        "CLIENT_ERROR error decoding key"
/* The proxy's own refusals (see memcache.h). */
#define MC_ERR_NOMEM  "SERVER_ERROR out of memory"
#define MC_ERR_BINARY "CLIENT_ERROR binary protocol is not supported through the proxy"

/* How a server answers a command; picks the response parser. */
enum mc_reply {
    MC_REPLY_NONE = 0, /* never forwarded (quit) */
    MC_REPLY_VALUES,   /* VALUE blocks, then END */
    MC_REPLY_WORDS,    /* one line, a word out of replies */
    MC_REPLY_NUMBER,   /* one line, a decimal number or a word out of replies */
    MC_REPLY_VERSION,  /* VERSION <text> */
    MC_REPLY_META,     /* two-letter code out of replies plus flags; VA carries data */
    MC_REPLY_STATS,    /* lines up to END (STAT, ITEM, PREFIX...), or one word out of replies */
    MC_REPLY_META_MN,  /* a meta reply or none (q kept it back), then the MN of an mn */
};

/*
 * One command. Like memcached, the parser first counts the tokens (name
 * included) against [tmin, tmax] and answers ERROR outside it; then `shape`
 * has one letter per token after the name (memcache_req.c documents the
 * letters), and the three messages say what to answer for a missing token, a
 * bad token and a token too many. With `noreply`, a last token "noreply"
 * means no reply at all, not even for an error (memcached's rule).
 */
struct mc_cmd {
    const char *name;
    uint8_t name_len;
    uint8_t route; /* enum req_route for one key; several keys become ROUTE_SPLIT */
    uint8_t reply; /* enum mc_reply */
    bool readonly;
    bool noreply;
    uint8_t tmin, tmax; /* tokens, the name included; 0: not checked */
    const char *shape;
    const char *replies; /* space-separated status words or meta codes */
    const char *err_missing;
    const char *err_arg;
    const char *err_extra;
};

const struct mc_cmd *mc_cmd_find(const uint8_t *name, size_t len);
const struct mc_cmd *mc_cmd_get(uint16_t id); /* NULL when id names no command */
uint16_t mc_cmd_id(const struct mc_cmd *cmd);

enum mc_line_rc {
    MC_LINE_OK = 0,
    MC_LINE_AGAIN, /* no '\n' yet, still within max */
    MC_LINE_LONG,  /* no '\n' within max bytes */
};

/* A line starting at `start`: content is [start, end) without CR/LF, the next
 * line starts at `next`. */
struct mc_line {
    size_t start;
    size_t end;
    size_t next;
};

int mc_line_find(const uint8_t *p, size_t n, size_t start, size_t max, struct mc_line *line);
/* The same, knowing that p[start, from) holds no LF (an earlier call searched it). */
int mc_line_find_from(const uint8_t *p, size_t n, size_t start, size_t from, size_t max,
                      struct mc_line *line);
/* The same for a server's line, which memcached always ends with CRLF: a bare LF
 * is part of the line (memcached 1.6 echoes a binary key raw in mg's k flag when
 * it creates the item, N with b). */
int mc_crlf_line_find(const uint8_t *p, size_t n, size_t start, size_t max, struct mc_line *line);
/* Next space-separated token in p[*pos, end); false when none is left. */
bool mc_token_next(const uint8_t *p, size_t *pos, size_t end, struct span *tok);
/* Decimal numbers the way memcached's strtoull/strtoll accept them: optional
 * sign, at least one digit, nothing else, no overflow. */
bool mc_u64_parse(const uint8_t *s, size_t len, uint64_t *v);
bool mc_i64_parse(const uint8_t *s, size_t len, int64_t *v);
/* A request's number token, as memcached reads it (safe_strtoull, safe_strtol):
 * more lenient than the above. White space may lead, and may end the number with
 * anything after it ("1\t", "\t1", "1\rX" are 1, as tokens hold tabs and bare
 * CRs); an unsigned "-0" is 0. */
bool mc_token_u64(const uint8_t *s, size_t len, uint64_t *v);
bool mc_token_i64(const uint8_t *s, size_t len, int64_t *v);
/* Are the len bytes at s exactly word? Inline: with a literal word the length
 * and the comparison fold into a few instructions (this runs on every reply). */
static inline bool mc_bytes_are(const uint8_t *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}
/* Is `w` one of the space-separated words of list? */
bool mc_word_in(const char *list, const uint8_t *w, size_t len);
/* ERROR, ERROR <x>, CLIENT_ERROR <x>, SERVER_ERROR <x>. */
bool mc_error_line(const uint8_t *s, size_t len);

/* A meta command's b flag: the key token in[0..len) base64-decoded into out
 * (cap bytes) as memcached decodes it (memcache_b64.c); the decoded length,
 * or -1 where memcached refuses the key. A key token has at most
 * PROTO_MAX_KEY_LEN_MEMCACHE bytes, so it decodes to at most MC_B64_KEY_MAX. */
#define MC_B64_KEY_MAX (PROTO_MAX_KEY_LEN_MEMCACHE / 4 * 3)
int mc_b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* Copy s into a message field of `size` bytes, cut and NUL-terminated. */
void mc_text_copy(char *dst, size_t size, const uint8_t *s, size_t len);

int mc_req_parse(const uint8_t *p, size_t n, struct req_info *info);
int mc_rsp_parse(const uint8_t *p, size_t n, uint16_t cmd, struct rsp_info *info);
size_t mc_reply_shown(uint16_t cmd, const uint8_t *rsp, size_t len);
int mc_frag_build(struct buf *out, const uint8_t *req, const struct req_info *info,
                  const uint32_t *idx, uint32_t nidx);
int mc_merge(struct buf *out, const uint8_t *req, const struct req_info *info,
             const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps);

#endif
