/*
 * test_redis_wire: RESP number lines ("*3\r\n", "$-1\r\n"), which every request
 * and reply is framed with. Short lines have a word-at-a-time path and the
 * rest a byte-wise one; both must give redis' answer (string2ll: optional '-',
 * no leading zero, no '+', int64 range), whether the bytes after the line are
 * in the buffer or not.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/redis_wire.h"
#include "unit.h"

/* Parse "<type><text>" followed by `after` (bytes of a next line). */
static int parse(const char *text, const char *after, int64_t *val, size_t *next)
{
    uint8_t buf[128];
    int n = snprintf((char *)buf, sizeof(buf), "$%s%s", text, after);
    return redis_wire_num_line(buf, (size_t)n, 1, val, next);
}

/* Every number a framing line can carry up to a million, with and without a
 * next line behind it (so each takes either path). */
static void test_numbers(void)
{
    int bad = 0;
    static const char *const afters[] = {"", "$3\r\nGET\r\n", "\r\n"};
    for (int64_t v = 0; v <= 1000000; v++) {
        char text[32];
        int len = snprintf(text, sizeof(text), "%lld\r\n", (long long)v);
        for (size_t a = 0; a < 3; a++) {
            int64_t got = -7;
            size_t next = 0;
            int rc = parse(text, afters[a], &got, &next);
            bad += rc != PARSE_OK || got != v || next != (size_t)len + 1;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void expect(const char *text, const char *after, int rc_want, int64_t val_want)
{
    int64_t got = 0;
    size_t next = 0;
    int rc = parse(text, after, &got, &next);
    if (rc != rc_want || (rc == PARSE_OK && got != val_want)) {
        fprintf(stderr, "line \"%s\" + \"%s\": rc %d value %lld\n", text, after, rc,
                (long long)got);
    }
    CHECK_EQ_INT(rc, rc_want);
    if (rc_want == PARSE_OK) {
        CHECK_EQ_INT(got, val_want);
        CHECK_EQ_INT(next, 1 + strlen(text));
    }
}

static void test_edges(void)
{
    static const char *const afters[] = {"", "xxxxxxxxxxxx"};
    for (size_t a = 0; a < 2; a++) {
        const char *x = afters[a];
        expect("-1\r\n", x, PARSE_OK, -1);
        expect("0\r\n", x, PARSE_OK, 0);
        expect("999999\r\n", x, PARSE_OK, 999999);
        expect("1234567\r\n", x, PARSE_OK, 1234567);
        expect("9223372036854775807\r\n", x, PARSE_OK, INT64_MAX);
        expect("-9223372036854775808\r\n", x, PARSE_OK, INT64_MIN);
        expect("9223372036854775808\r\n", x, PARSE_ERROR, 0);
        expect("12345678901234567890\r\n", x, PARSE_ERROR, 0);
        expect("01\r\n", x, PARSE_ERROR, 0);
        expect("00\r\n", x, PARSE_ERROR, 0);
        expect("-0\r\n", x, PARSE_ERROR, 0);
        expect("+1\r\n", x, PARSE_ERROR, 0);
        expect("\r\n", x, PARSE_ERROR, 0);
        expect("1a\r\n", x, PARSE_ERROR, 0);
        expect("1 \r\n", x, PARSE_ERROR, 0);
        expect("12\r\r\n", x, PARSE_ERROR, 0);
        expect("12\rx\n", x, PARSE_ERROR, 0);
        expect("12\n", x, PARSE_ERROR, 0);
        expect("4\x80\r\n", x, PARSE_ERROR, 0);
        expect("4:\r\n", x, PARSE_ERROR, 0);
        expect("4/\r\n", x, PARSE_ERROR, 0);
    }
    /* cut short: more bytes may still make it a number */
    expect("12", "", PARSE_AGAIN, 0);
    expect("12\r", "", PARSE_AGAIN, 0);
    expect("-", "", PARSE_AGAIN, 0);
    expect("", "", PARSE_AGAIN, 0);
}

int main(void)
{
    test_numbers();
    test_edges();
    UNIT_DONE("test_redis_wire");
}
