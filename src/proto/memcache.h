/*
 * memcache: the memcached ASCII protocol, exported as `proto_memcache`.
 *
 * Error replies (the convention the core relies on):
 *   proto_memcache.error_reply(out, msg) writes msg unchanged when it already is
 *   a memcached error line ("ERROR", "ERROR ...", "CLIENT_ERROR ...",
 *   "SERVER_ERROR ..."), and "SERVER_ERROR msg" otherwise, then CRLF. For
 *   ROUTE_REJECT and PARSE_ERROR the request parser stores the complete line,
 *   code included and CRLF excluded, in info->err, so the core always answers
 *   with error_reply(out, info->err). Failures named by the core ("Connection
 *   timed out") become "SERVER_ERROR Connection timed out".
 *   noreply follows memcached: a request whose token count is right and whose
 *   last token is "noreply" gets no reply at all, not even an error. Such a
 *   request that the parser refuses is ROUTE_LOCAL with noreply set, and
 *   proto_memcache.local answers it with nothing (returns 0).
 *
 * Wording: where memcached itself rejects a request, the reject carries
 * memcached's own text, so a client sees the same answer with or without the
 * proxy, and the data block after a refused header goes where memcached's
 * does: read and dropped only for a value too large or an ms refused after its
 * length, otherwise read as the next command line (mc_scan_reads_block).
 *
 * Routing beyond keys: `version` goes to any one live server (ROUTE_ANY);
 * `flush_all`, `verbosity` and `stats` (plain, reset, detail, cachedump) go
 * to every server and are merged (stats numbers summed, see memcache_merge.c);
 * other `stats <sub>` go to one live server.
 *
 * Proxy-specific limits and refusals:
 *   - a command line must end within MC_LINE_MAX bytes, else PARSE_ERROR
 *     "CLIENT_ERROR line too long"; get/gets/gat/gats lines (many keys) have no
 *     limit here, the core's request size limit bounds them (info->len of an
 *     unended line is a lower bound of its size, and info->scanned spares a
 *     rescan of what was searched: a line trickling in costs O(length));
 *   - a data block longer than MC_REQ_DATA_MAX, memcached's largest item at
 *     any -I, is PARSE_DROP "SERVER_ERROR object too large for cache"; a
 *     shorter one that the core will not hold (--request-size-limit) is
 *     droppable the same way. As in memcached, the block is read and
 *     dropped, the connection goes on, and a set or ms deletes its key;
 *   - meta commands with the q flag go without it (info->quiet, rewritten
 *     into info->wire): with q the server stays silent on success, and the
 *     core waits for one reply per request; the core drops the replies q
 *     would have left out instead (mc_reply_shown: proto->reply_shown). An ma
 *     with N keeps its q and gets an mn behind it (MC_CMD_MA_VIVIFY): memcached
 *     shows the reply of an ma that created its key, and only the server knows
 *     whether it did; the core passes on what came before the MN;
 *   - meta commands with the b flag (a base64 key) are routed by the decoded
 *     key, as memcached stores it: `ms <base64> b` and `get <bytes>` meet on one
 *     server. The request goes unchanged (info->key_tail). A key memcached would
 *     not decode is routed by its token: memcached answers it (it checks the
 *     flags first, so no answer of ours could be its own). An ms over the size
 *     limit deletes its key as a set does, unless the decoded key holds a space
 *     or a control byte, which `delete` cannot carry: then the old value stays;
 *   - a binary protocol request (a connection's first byte 0x80) is PARSE_ERROR
 *     "CLIENT_ERROR binary protocol is not supported through the proxy" once
 *     its 24-byte header is in (PARSE_AGAIN before): a header's answer is a
 *     binary response (err_wire), none for a quiet get; 24 bytes that are no
 *     header get the text.
 */
#ifndef NC_PROTO_MEMCACHE_H
#define NC_PROTO_MEMCACHE_H

#include <stdint.h>

#include "proto/proto.h"

/* Command ids in req_info.cmd, stable for rsp_parse. 0 is never a command. */
enum mc_cmd_id {
    MC_CMD_NONE = 0,
    MC_CMD_GET,
    MC_CMD_GETS,
    MC_CMD_GAT,
    MC_CMD_GATS,
    MC_CMD_SET,
    MC_CMD_ADD,
    MC_CMD_REPLACE,
    MC_CMD_APPEND,
    MC_CMD_PREPEND,
    MC_CMD_CAS,
    MC_CMD_INCR,
    MC_CMD_DECR,
    MC_CMD_DELETE,
    MC_CMD_TOUCH,
    MC_CMD_MG,
    MC_CMD_MS,
    MC_CMD_MD,
    MC_CMD_MA,
    MC_CMD_MN,
    MC_CMD_ME,
    MC_CMD_QUIT,
    MC_CMD_VERSION,
    MC_CMD_FLUSH_ALL,
    MC_CMD_VERBOSITY,
    MC_CMD_STATS,
    /* Not a name a client sends: a quiet ma that may create its key (N), which
     * goes to its server as it is with an mn behind it (memcache_req.c). */
    MC_CMD_MA_VIVIFY,
    MC_CMD_COUNT
};

#define MC_LINE_MAX 2048u /* bytes up to and including '\n' */
/* Multi-key retrieval lines: as long as the core's request size limit allows. */
#define MC_KEYS_LINE_MAX SIZE_MAX
#define MC_TOKENS_MAX    24u /* tokens on any other line (memcached's own bound) */
#define MC_REQ_DATA_MAX  (1024u * 1024u * 1024u)
/* The largest data block length memcached reads (its int, less the CRLF):
 * a larger number is "bad command line format" and no block is read. */
#define MC_VLEN_MAX     2147483645u
#define MC_RSP_DATA_MAX (1024u * 1024u * 1024u)

/* The command's name ("get"), or NULL for an unknown id: for logs and stats. */
const char *mc_cmd_name(uint16_t id);

#endif
