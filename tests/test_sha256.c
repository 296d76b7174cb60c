/* SHA-256 against the FIPS 180-4 example vectors. */
#include <string.h>

#include "kernels/sha256.h"
#include "tests/test.h"

static void one(const char *name, const void *data, size_t n, size_t chunk, const char *want)
{
    struct reel_sha256 s;
    reel_sha256_init(&s);
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i += chunk)
        reel_sha256_update(&s, p + i, n - i < chunk ? n - i : chunk);
    char hex[65];
    reel_sha256_final_hex(&s, hex);
    CHECK(!strcmp(hex, want), name, "got %s", hex);
}

int main(void)
{
    one("sha256 empty", "", 0, 1,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    one("sha256 abc", "abc", 3, 1,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    one("sha256 two blocks", m2, strlen(m2), 7,
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    static char mil[1000000];
    memset(mil, 'a', sizeof mil);
    one("sha256 a million a", mil, sizeof mil, 4096,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    TEST_EXIT();
}
