/* Internal to the Wan VAEs: the pieces both versions share. A network
 * (encoder or decoder) is a flat program of layers that the version files
 * (wan_vae21.c, wan_vae22.c) build while walking the checkpoint's tensors in
 * state_dict order; wan_vae_blocks.c binds the weights, runs the program on
 * one chunk at a time with the reference's causal feature cache, and drives
 * the chunked encode / streaming decode. */
#ifndef REEL_WAN_VAE_BLOCKS_H
#define REEL_WAN_VAE_BLOCKS_H

#include <stdint.h>

#include "stages/wan_vae.h"

/* A convolution as the reference builds it. Time padding is causal: the
 * module's padding pt becomes 2*pt frames in front (cached frames first). */
struct vae_conv {
    const struct reel_tensor *w;
    float *b;
    int cin, cout, kt, kh, kw;
    int pt;                  /* module time padding (front pad is 2*pt) */
    int ph0, ph1, pw0, pw1;  /* spatial zero padding */
    int st, ss;              /* time / spatial stride */
};

enum vae_op {
    VAE_CONV_IN,   /* causal 3x3x3 conv with cache (encoder/decoder conv1) */
    VAE_RES,       /* ResidualBlock */
    VAE_ATTN,      /* AttentionBlock (per frame) */
    VAE_UP2D,
    VAE_UP3D,
    VAE_DOWN2D,
    VAE_DOWN3D,
    VAE_HEAD,      /* RMS_norm, SiLU, causal conv */
    VAE_AVG_BEGIN, /* Wan2.2 Down_ResidualBlock: AvgDown3D of the block input */
    VAE_AVG_END,   /* ... added to the block output */
    VAE_DUP_BEGIN, /* Wan2.2 Up_ResidualBlock: DupUp3D of the block input */
    VAE_DUP_END,
};

struct vae_layer {
    enum vae_op op;
    int cin, cout;
    int cache;                 /* first feature-cache slot it uses */
    float *gamma1, *gamma2;    /* RMS_norm gammas (RES: residual.0/.3; ATTN, HEAD: .0) */
    struct vae_conv conv1;     /* RES residual.2; ATTN to_qkv; resample.1; HEAD/CONV_IN conv */
    struct vae_conv conv2;     /* RES residual.6; ATTN proj; resample time_conv */
    struct vae_conv shortcut;  /* RES 1x1x1 shortcut when cin != cout */
    int has_shortcut;
    int ft, fs;                /* AVG/DUP time and space factors */
};

struct vae_net {
    struct vae_layer *l;
    int n, cap;
    int ncache;
    int oom;
};

/* Walks tensors in state_dict order: emits (name, shape) and, when w is
 * set, binds them. The first failure is kept in rc/err. */
struct vae_walk {
    reel_tensor_emit_fn emit;
    void *ectx;
    const struct reel_weights *w;
    struct reel_err *err;
    int rc;
};

enum vae_cache_state { VAE_CACHE_NONE, VAE_CACHE_REP, VAE_CACHE_FRAMES };

/* One causal cache slot: up to CACHE_T = 2 frames [c, 2, h*w]. */
struct vae_cache {
    float *d;
    int64_t c, hw;
    int n;
    enum vae_cache_state state;
};

struct reel_wan_vae {
    struct reel_wan_vae_config cfg;
    struct reel_backend *be;
    struct vae_net enc, dec;
    struct vae_conv conv1, conv2; /* top-level pointwise convs */
    int patch;                    /* 1 (2.1) or 2 (2.2) */
    int t_down, t_up;             /* temporal factors of encoder / decoder */
    int s_factor;                 /* total spatial factor, patchify included */
    struct vae_cache *enc_cache, *dec_cache;
    reel_wan_vae_probe_fn probe;
    void *probe_ctx;
};

/* Builders (net may be NULL when only the table is wanted). */
void vae_build_conv(struct vae_walk *wk, const char *prefix, struct vae_conv *cv, int cout,
                    int cin, int kt, int kh, int kw, int conv2d);
void vae_build_conv_in(struct vae_net *net, struct vae_walk *wk, const char *prefix, int cin,
                       int cout);
void vae_build_res(struct vae_net *net, struct vae_walk *wk, const char *prefix, int cin,
                   int cout);
void vae_build_attn(struct vae_net *net, struct vae_walk *wk, const char *prefix, int c);
/* "<coder>.middle.0/1/2": residual, attention, residual at c channels (both
 * versions, encoder and decoder). */
void vae_build_middle(struct vae_net *net, struct vae_walk *wk, const char *coder, int c);
/* mode VAE_UP2D/UP3D/DOWN2D/DOWN3D; the spatial conv maps c -> cout. */
void vae_build_resample(struct vae_net *net, struct vae_walk *wk, const char *prefix,
                        enum vae_op mode, int c, int cout);
void vae_build_head(struct vae_net *net, struct vae_walk *wk, const char *prefix, int cin,
                    int cout);
void vae_build_marker(struct vae_net *net, enum vae_op op, int cin, int cout, int ft, int fs);

/* Version builders: walk the whole WanVAE_ (encoder, conv1, conv2, decoder)
 * in state_dict order; m may be NULL (table only). Config errors go to wk. */
void vae21_build(const struct reel_wan_vae_config *cfg, struct vae_walk *wk,
                 struct reel_wan_vae *m);
void vae22_build(const struct reel_wan_vae_config *cfg, struct vae_walk *wk,
                 struct reel_wan_vae *m);

#endif
