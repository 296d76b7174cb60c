/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC'11) driving Box-Muller. */
#include "kernels/rng.h"

#include <math.h>

static void philox4x32_10(uint32_t ctr[4], const uint32_t key_in[2])
{
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)M0 * ctr[0];
        uint64_t p1 = (uint64_t)M1 * ctr[2];
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ ctr[1] ^ k0;
        uint32_t n2 = hi0 ^ ctr[3] ^ k1;
        ctr[0] = n0;
        ctr[1] = lo1;
        ctr[2] = n2;
        ctr[3] = lo0;
        k0 += W0;
        k1 += W1;
    }
}

/* Uniform in (0, 1]: never 0, so log() below is finite. */
static double u32_to_unit(uint32_t u)
{
    return ((double)u + 1.0) / 4294967296.0;
}

void reel_rng_normal(uint64_t seed, uint64_t stream, int64_t first, int64_t n, float *out)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    /* One Philox block gives 4 uniforms = 2 Box-Muller pairs = 4 normals. */
    for (int64_t i = 0; i < n;) {
        uint64_t idx = (uint64_t)(first + i);
        uint64_t block = idx / 4;
        uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                           (uint32_t)(stream >> 32)};
        philox4x32_10(ctr, key);
        double z[4];
        for (int p = 0; p < 2; p++) {
            double r = sqrt(-2.0 * log(u32_to_unit(ctr[2 * p])));
            double th = 2.0 * M_PI * u32_to_unit(ctr[2 * p + 1]);
            z[2 * p] = r * cos(th);
            z[2 * p + 1] = r * sin(th);
        }
        for (unsigned j = (unsigned)(idx % 4); j < 4 && i < n; j++, i++)
            out[i] = (float)z[j];
    }
}
