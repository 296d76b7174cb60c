/* Seeded Gaussian noise for the initial latents: counter-based (Philox4x32-10
 * + Box-Muller), so element i of a stream is a pure function of (seed,
 * stream, i) - the same on every machine, thread count and chunking, which is
 * what makes a resumed render byte-identical to an uninterrupted one. */
#ifndef REEL_RNG_H
#define REEL_RNG_H

#include <stdint.h>

/* out[i] = N(0, 1) sample number (first + i) of (seed, stream), i < n. */
void reel_rng_normal(uint64_t seed, uint64_t stream, int64_t first, int64_t n, float *out);

#endif
