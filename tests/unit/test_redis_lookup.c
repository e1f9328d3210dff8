/*
 * test_redis_lookup: the command name lookup (a hash table generated with the
 * command table). Every name of the table is found in any letter case, and
 * its subcommands through their container; what is not a name is not found,
 * including names that differ only in a byte the hash cannot tell apart
 * (bit 0x20 of a non-letter: '-' and CR, '|' and '\\').
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/redis_cmd.h"
#include "unit.h"

static uint16_t find(const char *s)
{
    return redis_cmd_lookup_name((const uint8_t *)s, strlen(s));
}

static void cased(char *dst, const char *src, int how)
{
    size_t n = strlen(src);
    for (size_t i = 0; i <= n; i++) {
        char ch = src[i];
        bool up = how == 1 || (how == 2 && i % 2 == 0);
        dst[i] = up && ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
    }
}

static void test_every_name_found(void)
{
    int bad = 0, subs = 0;
    for (uint16_t id = REDIS_CMD_NOOP + 1; id < REDIS_CMD_COUNT; id++) {
        const struct redis_cmd *c = redis_cmd_get(id);
        char name[REDIS_CMD_NAME_MAX + 1];
        for (int how = 0; how < 3; how++) {
            cased(name, c->name, how);
            if (find(name) != id) {
                fprintf(stderr, "not found: %s\n", name);
                bad++;
            }
        }
        const char *bar = strchr(c->name, '|');
        /* a request's name is never a subcommand's full name: redis answers
         * "unknown command 'client|id'" */
        if (bar != NULL &&
            redis_cmd_lookup((const uint8_t *)c->name, c->name_len) != REDIS_CMD_UNKNOWN) {
            fprintf(stderr, "a request named %s is not unknown\n", c->name);
            bad++;
        }
        if (bar != NULL && c->name_len < REDIS_SUBCMD_NAME_MIN) {
            fprintf(stderr, "%s is shorter than REDIS_SUBCMD_NAME_MIN\n", c->name);
            bad++;
        }
        if (bar != NULL) {
            subs++;
            uint16_t parent = redis_cmd_lookup((const uint8_t *)c->name, (size_t)(bar - c->name));
            cased(name, bar + 1, 1);
            if (parent == REDIS_CMD_UNKNOWN ||
                redis_cmd_lookup_sub(parent, (const uint8_t *)name, strlen(name)) != id) {
                fprintf(stderr, "subcommand not found: %s\n", c->name);
                bad++;
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(subs > 50); /* the table has the subcommands (client|list, config|get...) */
    CHECK(find("GET") != REDIS_CMD_UNKNOWN && find("get") == find("GeT"));
}

/* Each name changed by one byte, cut, or grown is not a name (unless the
 * change happens to spell another command, which must then be found). */
static void test_near_misses(void)
{
    int bad = 0;
    for (uint16_t id = REDIS_CMD_NOOP + 1; id < REDIS_CMD_COUNT; id++) {
        const struct redis_cmd *c = redis_cmd_get(id);
        char name[REDIS_CMD_NAME_MAX + 2];
        size_t n = c->name_len;
        for (size_t i = 0; i < n; i++) {
            char ch = c->name[i];
            bool letter = ch >= 'a' && ch <= 'z';
            const char repl[] = {
                'x', '_', '\r', '\\', '@', '[', '\0', (char)0xc1, letter ? 'x' : (char)(ch ^ 0x20)};
            for (size_t r = 0; r < sizeof(repl); r++) {
                memcpy(name, c->name, n);
                name[i] = repl[r];
                uint16_t got = redis_cmd_lookup((const uint8_t *)name, n);
                const struct redis_cmd *g = redis_cmd_get(got);
                if (got != REDIS_CMD_UNKNOWN &&
                    (g->name_len != n || strncasecmp(g->name, name, n))) {
                    fprintf(stderr, "%.*s found as %s\n", (int)n, name, g->name);
                    bad++;
                }
            }
        }
        memcpy(name, c->name, n);
        name[n] = 'x';
        uint16_t got = redis_cmd_lookup((const uint8_t *)name, n + 1);
        bad += got != REDIS_CMD_UNKNOWN && strncmp(redis_cmd_get(got)->name, name, n + 1) != 0;
        got = redis_cmd_lookup((const uint8_t *)name, n - 1);
        bad += got != REDIS_CMD_UNKNOWN && (redis_cmd_get(got)->name_len != n - 1 ||
                                            strncmp(redis_cmd_get(got)->name, name, n - 1) != 0);
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_not_names(void)
{
    CHECK_EQ_INT(find(""), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(find("nosuchcommand"), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(find("ge"), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(find("gett"), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(find("g\xc5t"), REDIS_CMD_UNKNOWN); /* 'E' | 0x80 */
    CHECK_EQ_INT(find("GE\x14"), REDIS_CMD_UNKNOWN); /* 't' ^ 0x60 */
    CHECK_EQ_INT(find("client\\list"), REDIS_CMD_UNKNOWN);
    CHECK(find("client|list") != REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(redis_cmd_lookup((const uint8_t *)"get\0", 4), REDIS_CMD_UNKNOWN);
    char longest[REDIS_CMD_NAME_MAX + 8];
    memset(longest, 'a', sizeof(longest));
    CHECK_EQ_INT(redis_cmd_lookup((const uint8_t *)longest, sizeof(longest)), REDIS_CMD_UNKNOWN);
    uint16_t client = find("client");
    CHECK(client != REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(redis_cmd_lookup_sub(client, (const uint8_t *)"nosuch", 6), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(redis_cmd_lookup_sub(client, (const uint8_t *)"", 0), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(redis_cmd_lookup_sub(find("get"), (const uint8_t *)"list", 4), REDIS_CMD_UNKNOWN);
}

int main(void)
{
    test_every_name_found();
    test_near_misses();
    test_not_names();
    UNIT_DONE("test_redis_lookup");
}
