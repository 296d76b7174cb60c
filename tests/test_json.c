/* Tests for kernels/json.c: values, numbers (integer detection and
 * overflow), escapes and UTF-8, duplicate keys kept in order, the depth
 * limit, getters, and a catalogue of invalid inputs each rejected with an
 * "offset N: why" message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/json.h"
#include "tests/test.h"

static struct reel_json *parse(const char *s, char *msg, size_t n)
{
    return reel_json_parse(s, strlen(s), msg, n);
}

static void test_scalars(void)
{
    char msg[256];
    struct reel_json *j;

    j = parse(" null ", msg, sizeof msg);
    CHECK(j && j->type == REEL_JSON_NULL, "null", "%s", msg);
    reel_json_free(j);
    j = parse("true", msg, sizeof msg);
    CHECK(j && j->type == REEL_JSON_BOOL && j->boolean == 1, "true", "%s", msg);
    reel_json_free(j);
    j = parse("\t\r\nfalse\n", msg, sizeof msg);
    CHECK(j && j->type == REEL_JSON_BOOL && j->boolean == 0, "false with whitespace", "%s", msg);
    reel_json_free(j);

    static const struct {
        const char *text;
        double number;
        int is_integer, integer_ok;
        int64_t integer;
    } nums[] = {
        {"0", 0, 1, 1, 0},
        {"-0", 0, 1, 1, 0},
        {"123", 123, 1, 1, 123},
        {"-42", -42, 1, 1, -42},
        {"9223372036854775807", 9223372036854775807.0, 1, 1, INT64_MAX},
        {"-9223372036854775808", -9223372036854775808.0, 1, 1, INT64_MIN},
        {"9223372036854775808", 9223372036854775808.0, 1, 0, 0},
        {"-9223372036854775809", -9223372036854775809.0, 1, 0, 0},
        {"100000000000000000000000", 1e23, 1, 0, 0},
        {"1.5", 1.5, 0, 0, 0},
        {"1e3", 1000, 0, 0, 0},
        {"1E-2", 0.01, 0, 0, 0},
        {"-0.5e+2", -50, 0, 0, 0},
        {"2.0", 2, 0, 0, 0},
        {"1e-400", 0, 0, 0, 0}, /* underflow to zero is fine */
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "number %s", nums[i].text);
        j = parse(nums[i].text, msg, sizeof msg);
        int ok = j && j->type == REEL_JSON_NUMBER && j->is_integer == nums[i].is_integer &&
                 fabs(j->number - nums[i].number) <= 1e-12 * fabs(nums[i].number);
        if (ok && nums[i].is_integer)
            ok = j->integer_ok == nums[i].integer_ok &&
                 (!nums[i].integer_ok || j->integer == nums[i].integer);
        CHECK(ok, name, "j=%p number=%.17g is_integer=%d integer_ok=%d integer=%lld msg=%s",
              (void *)j, j ? j->number : 0, j ? j->is_integer : -1, j ? j->integer_ok : -1,
              j ? (long long)j->integer : 0, msg);
        reel_json_free(j);
    }
}

static void test_strings(void)
{
    char msg[256];
    struct reel_json *j;

    j = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", msg, sizeof msg);
    CHECK(j && j->type == REEL_JSON_STRING && strcmp(j->string, "a\"b\\c/d\b\f\n\r\t") == 0 &&
              j->string_len == 12,
          "simple escapes", "%s", j ? j->string : msg);
    reel_json_free(j);

    j = parse("\"caf\\u00e9 \\u20AC\"", msg, sizeof msg);
    CHECK(j && strcmp(j->string, "caf\xc3\xa9 \xe2\x82\xac") == 0, "\\u escapes to UTF-8", "%s",
          msg);
    reel_json_free(j);

    j = parse("\"\\ud83d\\ude00\"", msg, sizeof msg);
    CHECK(j && strcmp(j->string, "\xf0\x9f\x98\x80") == 0, "surrogate pair", "%s", msg);
    reel_json_free(j);

    j = parse("\"raw caf\xc3\xa9 \xf0\x9f\x98\x80\"", msg, sizeof msg);
    CHECK(j && strcmp(j->string, "raw caf\xc3\xa9 \xf0\x9f\x98\x80") == 0, "raw UTF-8 passes",
          "%s", msg);
    reel_json_free(j);

    j = parse("\"a\\u0000b\"", msg, sizeof msg);
    CHECK(j && j->string_len == 3 && j->string[1] == 0 && j->string[2] == 'b',
          "\\u0000 in a value keeps its length", "%s", msg);
    reel_json_free(j);

    j = parse("\"\"", msg, sizeof msg);
    CHECK(j && j->type == REEL_JSON_STRING && j->string && j->string_len == 0, "empty string",
          "%s", msg);
    reel_json_free(j);
}

static void test_containers(void)
{
    char msg[256];
    struct reel_json *j;

    j = parse("{}", msg, sizeof msg);
    CHECK(j && j->type == REEL_JSON_OBJECT && j->count == 0, "empty object", "%s", msg);
    reel_json_free(j);
    j = parse("[ ]", msg, sizeof msg);
    CHECK(j && j->type == REEL_JSON_ARRAY && j->count == 0, "empty array", "%s", msg);
    reel_json_free(j);

    j = parse("{\"b\": [1, 2.5, \"x\", null, true, {\"c\": []}], \"a\": 1, \"a\": 2}", msg,
              sizeof msg);
    if (CHECK(j && j->type == REEL_JSON_OBJECT && j->count == 3, "nested object", "%s", msg)) {
        CHECK(strcmp(j->keys[0], "b") == 0 && strcmp(j->keys[1], "a") == 0 &&
                  strcmp(j->keys[2], "a") == 0,
              "key order kept", "bad");
        CHECK(j->items[1]->integer == 1 && j->items[2]->integer == 2,
              "duplicate keys kept", "bad");
        CHECK(reel_json_int(j, "a", -1) == 1, "get returns the first duplicate", "bad");
        const struct reel_json *b = reel_json_get(j, "b");
        CHECK(b && b->type == REEL_JSON_ARRAY && b->count == 6 &&
                  b->items[2]->type == REEL_JSON_STRING && b->items[3]->type == REEL_JSON_NULL &&
                  b->items[5]->type == REEL_JSON_OBJECT &&
                  reel_json_get(b->items[5], "c")->type == REEL_JSON_ARRAY,
              "array contents", "bad");
        CHECK(reel_json_at_num(b, 1, 0) == 2.5 && reel_json_at_num(b, 2, -7) == -7 &&
                  reel_json_at_num(b, 99, -8) == -8 && reel_json_at_num(j, 0, -9) == -9,
              "at_num", "bad");
    }
    reel_json_free(j);

    /* Exactly 64 levels parse; 65 do not. */
    char deep[200];
    for (int d = 64; d <= 65; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        deep[2 * d] = 0;
        j = parse(deep, msg, sizeof msg);
        if (d == 64)
            CHECK(j != NULL, "depth 64 accepted", "%s", msg);
        else
            CHECK(!j && strstr(msg, "nesting deeper than 64") && strstr(msg, "offset 64"),
                  "depth 65 rejected", "%s", msg);
        reel_json_free(j);
    }
    /* Far deeper input must fail cleanly, not exhaust the stack. */
    size_t big = 1000000;
    char *huge = malloc(big);
    for (size_t i = 0; i + 5 <= big; i += 5)
        memcpy(huge + i, "{\"a\":", 5);
    j = reel_json_parse(huge, big, msg, sizeof msg);
    CHECK(!j && strstr(msg, "nesting"), "200000 nested objects", "%s", msg);
    memset(huge, '[', big);
    j = reel_json_parse(huge, big, msg, sizeof msg);
    CHECK(!j && strstr(msg, "nesting"), "a million open brackets", "%s", msg);
    free(huge);

    /* A wide array parses quickly and completely. */
    size_t n = 100000, k = 0;
    char *wide = malloc(n * 8 + 3);
    wide[k++] = '[';
    for (size_t i = 0; i < n; i++)
        k += (size_t)sprintf(wide + k, "%s%zu", i ? "," : "", i);
    wide[k++] = ']';
    j = reel_json_parse(wide, k, msg, sizeof msg);
    CHECK(j && j->count == n && j->items[n - 1]->integer == (int64_t)(n - 1), "wide array",
          "%s", msg);
    reel_json_free(j);
    free(wide);
}

static void test_getters(void)
{
    char msg[256];
    struct reel_json *j =
        parse("{\"n\": 1.5, \"i\": 7, \"f\": 3.0, \"e\": 2e2, \"big\": 1e300, \"b\": true, \"s\": "
              "\"hi\", \"over\": 99999999999999999999}",
              msg, sizeof msg);
    if (!CHECK(j != NULL, "getter object parses", "%s", msg))
        return;
    CHECK(reel_json_num(j, "n", 0) == 1.5 && reel_json_num(j, "s", -1) == -1 &&
              reel_json_num(j, "zz", 4) == 4,
          "num getter", "bad");
    CHECK(reel_json_int(j, "i", 0) == 7 && reel_json_int(j, "f", 0) == 3 &&
              reel_json_int(j, "e", 0) == 200 && reel_json_int(j, "n", -1) == -1 &&
              reel_json_int(j, "big", -2) == -2 && reel_json_int(j, "over", -3) == -3 &&
              reel_json_int(j, "s", -4) == -4,
          "int getter", "bad");
    CHECK(reel_json_bool(j, "b", 0) == 1 && reel_json_bool(j, "i", 5) == 5, "bool getter",
          "bad");
    CHECK(strcmp(reel_json_str(j, "s", ""), "hi") == 0 && reel_json_str(j, "i", NULL) == NULL,
          "str getter", "bad");
    CHECK(reel_json_get(NULL, "x") == NULL && reel_json_num(NULL, "x", 3) == 3 &&
              reel_json_str(NULL, "x", NULL) == NULL && reel_json_at_num(NULL, 0, 2) == 2 &&
              reel_json_get(j->items[0], "x") == NULL,
          "getters are NULL-safe", "bad");
    reel_json_free(j);
    reel_json_free(NULL);
}

static void test_invalid(void)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *why;
    } bad[] = {
        {"", 0, "offset 0: unexpected end of input"},
        {"   ", 0, "offset 3: unexpected end of input"},
        {"[1,]", 0, "offset 3: trailing comma"},
        {"{\"a\":1,}", 0, "offset 7: trailing comma"},
        {"[,1]", 0, "offset 1: unexpected ','"},
        {"01", 0, "leading zero"},
        {"-01", 0, "leading zero"},
        {"00", 0, "leading zero"},
        {"1.", 0, "after '.'"},
        {".5", 0, "unexpected '.'"},
        {"+1", 0, "unexpected '+'"},
        {"1e", 0, "exponent"},
        {"1e+", 0, "exponent"},
        {"-", 0, "expected a digit"},
        {"-a", 0, "expected a digit"},
        {"1e400", 0, "out of range"},
        {"-1e400", 0, "out of range"},
        {"\"\\x\"", 0, "offset 1: bad escape \\'x'"},
        {"\"\\u12\"", 0, "bad \\u escape"},
        {"\"\\u12G4\"", 0, "bad \\u escape"},
        {"\"a\nb\"", 0, "offset 2: unescaped control character 0x0a"},
        {"\"a\tb\"", 0, "control character 0x09"},
        {"\"\\ud800\"", 0, "high surrogate"},
        {"\"\\ud800\\u0041\"", 0, "high surrogate"},
        {"\"\\udc00\"", 0, "lone low surrogate"},
        {"\"\xff\"", 0, "invalid UTF-8"},
        {"\"\xc0\xaf\"", 0, "invalid UTF-8"},          /* overlong '/' */
        {"\"\xed\xa0\x80\"", 0, "invalid UTF-8"},      /* encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", 0, "invalid UTF-8"},  /* past U+10FFFF */
        {"\"\xe2\x82\"", 0, "invalid UTF-8"},          /* truncated sequence */
        {"[1] x", 0, "offset 4: trailing 'x'"},
        {"{} {}", 0, "trailing"},
        {"[1,\0 2]", 7, "offset 3: unexpected NUL byte"},
        {"[1]\0", 4, "offset 3: trailing NUL byte"},
        {"\"a\0b\"", 5, "offset 2: NUL byte inside a string"},
        {"{1:2}", 0, "offset 1: expected a string key"},
        {"{\"a\" 1}", 0, "expected ':'"},
        {"[1 2]", 0, "offset 3: expected ',' or ']'"},
        {"{\"a\":1 \"b\":2}", 0, "expected ',' or '}'"},
        {"tru", 0, "unexpected 't'"},
        {"nul", 0, "unexpected 'n'"},
        {"True", 0, "unexpected 'T'"},
        {"'a'", 0, "unexpected '''"},
        {"\"abc", 0, "offset 0: unterminated string"},
        {"\"abc\\", 0, "unterminated string"},
        {"[1,2", 0, "offset 4: expected ',' or ']', found end of input"},
        {"{\"a\\u0000b\":1}", 0, "object key contains \\u0000"},
        {"[NaN]", 0, "unexpected 'N'"},
        {"[Infinity]", 0, "unexpected 'I'"},
        {"\xef\xbb\xbf{}", 0, "byte 0xef"}, /* a BOM is not JSON */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[256] = "untouched", name[160];
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
        struct reel_json *j = reel_json_parse(bad[i].text, len, msg, sizeof msg);
        snprintf(name, sizeof name, "invalid #%zu (%s)", i, bad[i].why);
        CHECK(!j && strncmp(msg, "offset ", 7) == 0 && strstr(msg, bad[i].why), name,
              "j=%p msg='%s'", (void *)j, msg);
        reel_json_free(j);
    }
    /* The message buffer is optional and may be tiny. */
    char tiny[8];
    struct reel_json *j = parse("[1,]", tiny, sizeof tiny);
    CHECK(!j && strlen(tiny) == 7, "tiny message buffer truncates", "'%s'", tiny);
    j = parse("[1,]", NULL, 0);
    CHECK(!j, "NULL message buffer", "parsed");
    char msg[64];
    j = reel_json_parse(NULL, 0, msg, sizeof msg);
    CHECK(!j && strstr(msg, "offset 0: unexpected end of input"), "NULL text is empty input",
          "'%s'", msg);
}

int main(void)
{
    test_scalars();
    test_strings();
    test_containers();
    test_getters();
    test_invalid();
    TEST_EXIT();
}
