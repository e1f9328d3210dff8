/*
 * conf_tls: the TLS keys of a pool (tls_*, sentinel_tls, listen_tls,
 * listen_tls_addr) and the logins (redis_auth "user password", client_auth).
 *
 * The contexts are loaded from the files here, with the generation: a reload
 * reads every certificate again even when the YAML is unchanged (a rotation
 * replaces only files), and a file that cannot be used refuses the whole
 * generation with "file:line: key: FILE: reason", so the running one stays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_int.h"
#include "core/log.h"
#include "net/tls.h"

enum {
    L_TLS,
    L_CA_FILE,
    L_CA_DIR,
    L_CERT,
    L_KEY,
    L_SERVER_NAME,
    L_VERIFY,
    L_SENTINEL,
    L_LISTEN,
    L_LISTEN_ADDR
};

static const char *const tls_key_names[] = {"tls",           "tls_ca_file",  "tls_ca_dir",
                                            "tls_cert_file", "tls_key_file", "tls_server_name",
                                            "tls_verify"};

/* Certificate and key come as a pair. */
static void check_pair(struct conf_ctx *cx, const struct conf_tls *t, int line, const char *key,
                       const char *cert, const char *keyname)
{
    if ((t->cert_file == NULL) != (t->key_file == NULL)) {
        conf_err(cx, line, key, "%s needs %s too", t->cert_file ? cert : keyname,
                 t->cert_file ? keyname : cert);
    }
}

static void check_listen_tls(struct conf_ctx *cx, struct conf_pool *p, const int *lines)
{
    const struct conf_tls *t = &p->listen_tls;
    if (lines[L_LISTEN_ADDR] != 0 && !t->enabled) {
        conf_err(cx, lines[L_LISTEN_ADDR], "listen_tls_addr",
                 "directive needs listen_tls (the certificate to serve on it)");
    }
    if (!t->enabled) {
        return;
    }
    if (t->cert_file == NULL || t->key_file == NULL) {
        conf_err(cx, t->line, "listen_tls", "cert_file and key_file are required");
    }
    if (t->verify && t->ca_file == NULL && t->ca_dir == NULL) {
        conf_err(cx, t->line, "listen_tls",
                 "verify_client needs ca_file or ca_dir (the CA client certificates come from)");
    }
    if (t->protocols != NULL && tls_protocols_parse(t->protocols) < 0) {
        conf_err(cx, t->line, "listen_tls",
                 "protocols \"%s\" is not a list of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
                 t->protocols);
    }
}

static char *dup_or_null(struct conf_ctx *cx, const char *s)
{
    return s != NULL ? conf_strdup(cx, s) : NULL;
}

/* sentinel_tls: true takes the pool's tls_* settings. */
static void sentinel_tls_inherit(struct conf_ctx *cx, struct conf_pool *p)
{
    struct conf_tls *s = &p->sentinel_tls;
    if (!s->enabled || s->is_map) {
        return;
    }
    s->ca_file = dup_or_null(cx, p->tls.ca_file);
    s->ca_dir = dup_or_null(cx, p->tls.ca_dir);
    s->cert_file = dup_or_null(cx, p->tls.cert_file);
    s->key_file = dup_or_null(cx, p->tls.key_file);
    s->server_name = dup_or_null(cx, p->tls.server_name);
    s->verify = p->tls.verify;
}

void conf_tls_check(struct conf_ctx *cx, struct conf_pool *p, const int *lines)
{
    bool shared = p->sentinel_tls.enabled && !p->sentinel_tls.is_map;
    p->tls.line = lines[L_TLS];
    for (int k = L_CA_FILE; k <= L_VERIFY && !p->tls.enabled && !shared; k++) {
        if (lines[k] != 0) {
            conf_err(cx, lines[k], tls_key_names[k],
                     "directive is only valid with tls: true (or sentinel_tls: true)");
        }
    }
    if (p->tls.line == 0) {
        p->tls.line = lines[L_CERT] ? lines[L_CERT] : lines[L_CA_FILE];
    }
    check_pair(cx, &p->tls, lines[L_CERT] ? lines[L_CERT] : lines[L_KEY],
               lines[L_CERT] ? "tls_cert_file" : "tls_key_file", "tls_cert_file", "tls_key_file");
    check_pair(cx, &p->sentinel_tls, p->sentinel_tls.line, "sentinel_tls", "cert_file", "key_file");
    check_listen_tls(cx, p, lines);
    sentinel_tls_inherit(cx, p);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "sha256:<64 hex digits>" into its 32 bytes; -1 when malformed. */
static int sha256_parse(const char *hex, uint8_t out[32])
{
    if (strlen(hex) != 64) {
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* A password as the file gives it: sha256:<hex>, or the password itself. */
static int password_digest(struct conf_ctx *cx, const char *pw, uint8_t out[32], int line,
                           const char *key)
{
    if (*pw == '\0') {
        conf_err(cx, line, key, "the password is empty");
        return -1;
    }
    if (strncmp(pw, "sha256:", 7) == 0) {
        if (sha256_parse(pw + 7, out) != 0) {
            conf_err(cx, line, key, "\"%s\" is not sha256: followed by 64 hex digits", pw);
            return -1;
        }
        return 0;
    }
    tls_sha256(pw, strlen(pw), out);
    return 0;
}

int conf_user_add(struct conf_ctx *cx, struct conf_pool *p, const char *v, int line)
{
    struct conf_user *u = &p->client_users[p->nclient_users];
    const char *sp = strchr(v, ' ');
    const char *pw = sp != NULL ? sp + 1 : v;
    u->line = line;
    u->name = sp != NULL ? conf_strndup(cx, v, (size_t)(sp - v)) : conf_strdup(cx, "default");
    if (u->name == NULL || u->name[0] == '\0' ||
        password_digest(cx, pw, u->sha256, line, "client_auth") != 0) {
        if (u->name != NULL && u->name[0] == '\0') {
            conf_err(cx, line, "client_auth", "\"%s\" has an empty user name", v);
        }
        free(u->name);
        memset(u, 0, sizeof(*u));
        return -1;
    }
    for (uint32_t i = 0; i < p->nclient_users; i++) {
        if (strcmp(p->client_users[i].name, u->name) == 0) {
            conf_err(cx, line, "client_auth", "user '%s' is a duplicate (first on line %d)",
                     u->name, p->client_users[i].line);
            free(u->name);
            memset(u, 0, sizeof(*u));
            return -1;
        }
    }
    p->nclient_users++;
    return 0;
}

/* redis_auth "user password": the user goes apart, and the whole stays too,
 * since twemproxy reads it as one password with a space (the servers are asked
 * both ways: proxy/server.c). Without client_auth, clients log in either way:
 * as that user, or with the whole as the default user's password. */
static void auth_split(struct conf_ctx *cx, struct conf_pool *p, int line)
{
    char *sp = p->redis_auth != NULL ? strchr(p->redis_auth, ' ') : NULL;
    if (sp == NULL || sp == p->redis_auth || sp[1] == '\0') {
        return;
    }
    p->redis_auth_whole = conf_strdup(cx, p->redis_auth);
    p->redis_auth_user = conf_strndup(cx, p->redis_auth, (size_t)(sp - p->redis_auth));
    memmove(p->redis_auth, sp + 1, strlen(sp + 1) + 1);
    if (p->client_users != NULL || p->redis_auth_user == NULL || p->redis_auth_whole == NULL) {
        return;
    }
    p->client_users = calloc(2, sizeof(*p->client_users));
    if (p->client_users == NULL) {
        conf_oom(cx);
        return;
    }
    p->client_users[0].name = conf_strdup(cx, p->redis_auth_user);
    p->client_users[0].line = line;
    tls_sha256(p->redis_auth, strlen(p->redis_auth), p->client_users[0].sha256);
    p->client_users[1].name = conf_strdup(cx, "default");
    p->client_users[1].line = line;
    tls_sha256(p->redis_auth_whole, strlen(p->redis_auth_whole), p->client_users[1].sha256);
    p->nclient_users = p->client_users[0].name != NULL && p->client_users[1].name != NULL ? 2 : 0;
}

void conf_auth_check(struct conf_ctx *cx, struct conf_pool *p, int auth_line, int users_line)
{
    if (users_line != 0 && !p->redis) {
        conf_err(cx, users_line, "client_auth", "directive is only valid for a redis pool");
    }
    if (p->redis) {
        auth_split(cx, p, auth_line);
    }
}

bool conf_user_check(const struct conf_pool *cp, const uint8_t *user, size_t ulen,
                     const uint8_t *pw, size_t plen)
{
    static const uint8_t def[] = "default";
    if (user == NULL) {
        user = def;
        ulen = sizeof(def) - 1;
    }
    uint8_t digest[32];
    tls_sha256(pw, plen, digest);
    bool ok = false;
    for (uint32_t i = 0; i < cp->nclient_users; i++) {
        const struct conf_user *u = &cp->client_users[i];
        if (strlen(u->name) == ulen && memcmp(u->name, user, ulen) == 0) {
            ok |= tls_equal(u->sha256, digest, sizeof(digest)); /* "default" may come twice */
        }
    }
    return ok;
}

bool conf_user_listed(const struct conf_pool *cp, const uint8_t *user, size_t ulen)
{
    for (uint32_t i = 0; i < cp->nclient_users; i++) {
        const char *name = cp->client_users[i].name;
        if (strlen(name) == ulen && memcmp(name, user, ulen) == 0) {
            return true;
        }
    }
    return false;
}

static struct tls_ctx *load_one(struct conf_ctx *cx, const struct conf_tls *t, bool server,
                                const char *key)
{
    struct tls_opts o = {t->ca_file, t->ca_dir,    t->cert_file, t->key_file,
                         t->verify,  t->protocols, t->ciphers,   t->ciphersuites};
    char err[512];
    struct tls_ctx *ctx = tls_ctx_new(server, &o, err, sizeof(err));
    if (ctx == NULL) {
        conf_err(cx, t->line, key, "%s", err);
    } else if (tls_ctx_out_of_date(ctx, err, sizeof(err))) {
        /* a rotation to the wrong file: said at once, not by each failed handshake */
        log_warn("%s:%d: %s: %s: the certificate %s: %s that check it refuse it", cx->file, t->line,
                 key, t->cert_file, err, server ? "clients" : "servers");
    }
    return ctx;
}

void conf_tls_load(struct conf_ctx *cx, struct conf *c)
{
    if (cx->flags & CONF_F_NO_FILES) {
        return;
    }
    for (uint32_t i = 0; i < c->npools; i++) {
        struct conf_pool *p = &c->pools[i];
        if (p->tls.enabled) {
            p->tls.ctx = load_one(cx, &p->tls, false, "tls");
        }
        if (p->sentinel_tls.enabled && p->nsentinels > 0) {
            p->sentinel_tls.ctx = load_one(cx, &p->sentinel_tls, false, "sentinel_tls");
        }
        if (p->listen_tls.enabled) {
            p->listen_tls.ctx = load_one(cx, &p->listen_tls, true, "listen_tls");
        }
    }
}

void conf_tls_free(struct conf_tls *t)
{
    free(t->ca_file);
    free(t->ca_dir);
    free(t->cert_file);
    free(t->key_file);
    free(t->server_name);
    free(t->protocols);
    free(t->ciphers);
    free(t->ciphersuites);
    tls_ctx_free(t->ctx);
    memset(t, 0, sizeof(*t));
}
