/* The Wan2.1 VAE network (wan/modules/vae.py WanVAE_): encoder and decoder
 * as layer programs, built while walking the state_dict names in order.
 *
 * Encoder: conv1, then per level num_res_blocks ResidualBlocks (+attention
 * at the listed scales) and a downsample (3d where temperal_downsample says
 * so) except after the last level, then middle (res, attn, res) and head.
 * Decoder: conv1, middle, per level num_res_blocks + 1 ResidualBlocks and an
 * upsample whose conv halves the channels, head. The decoder's temporal
 * flags are temperal_downsample reversed; its levels 1..3 take half the
 * previous width as input (the reference hard-codes those indices). */
#include <stdio.h>

#include "stages/wan_vae_blocks.h"

static int has_scale(const struct reel_wan_vae_config *cfg, double scale)
{
    for (int i = 0; i < cfg->n_attn_scales; i++)
        if (cfg->attn_scales[i] == scale)
            return 1;
    return 0;
}

static int config_error(struct vae_walk *wk, const char *why)
{
    if (!wk->rc)
        wk->rc = reel_errf(wk->err, REEL_E_MODEL, "WanVAE_ (Wan2.1) config: %s", why);
    return wk->rc;
}

void vae21_build(const struct reel_wan_vae_config *cfg, struct vae_walk *wk,
                 struct reel_wan_vae *m)
{
    struct vae_net *enc = m ? &m->enc : NULL, *dec = m ? &m->dec : NULL;
    int nm = cfg->n_mult, z = cfg->z_dim;
    if (nm < 1 || nm > REEL_WAN_VAE_MAX_MULT || cfg->n_temporal < nm - 1) {
        config_error(wk, "temperal_downsample needs an entry per downsampling level");
        return;
    }
    int dims[REEL_WAN_VAE_MAX_MULT + 1];
    char p[128];

    /* ---- encoder */
    dims[0] = cfg->dim;
    for (int i = 0; i < nm; i++)
        dims[i + 1] = cfg->dim * cfg->dim_mult[i];
    vae_build_conv_in(enc, wk, "encoder.conv1", 3, dims[0]);
    int k = 0, t_down = 1;
    double scale = 1.0;
    int out = dims[0];
    for (int i = 0; i < nm; i++) {
        int in = dims[i];
        out = dims[i + 1];
        for (int r = 0; r < cfg->num_res_blocks; r++) {
            snprintf(p, sizeof p, "encoder.downsamples.%d", k++);
            vae_build_res(enc, wk, p, in, out);
            if (has_scale(cfg, scale)) {
                snprintf(p, sizeof p, "encoder.downsamples.%d", k++);
                vae_build_attn(enc, wk, p, out);
            }
            in = out;
        }
        if (i != nm - 1) {
            int t = cfg->temporal_downsample[i];
            snprintf(p, sizeof p, "encoder.downsamples.%d", k++);
            vae_build_resample(enc, wk, p, t ? VAE_DOWN3D : VAE_DOWN2D, out, out);
            t_down *= t ? 2 : 1;
            scale /= 2.0;
        }
    }
    vae_build_middle(enc, wk, "encoder", out);
    vae_build_head(enc, wk, "encoder.head", out, 2 * z);

    /* ---- the two pointwise convs around the latent */
    struct vae_conv c1, c2;
    vae_build_conv(wk, "conv1", m ? &m->conv1 : &c1, 2 * z, 2 * z, 1, 1, 1, 0);
    vae_build_conv(wk, "conv2", m ? &m->conv2 : &c2, z, z, 1, 1, 1, 0);

    /* ---- decoder */
    dims[0] = cfg->dim * cfg->dim_mult[nm - 1];
    for (int i = 0; i < nm; i++)
        dims[i + 1] = cfg->dim * cfg->dim_mult[nm - 1 - i];
    vae_build_conv_in(dec, wk, "decoder.conv1", z, dims[0]);
    vae_build_middle(dec, wk, "decoder", dims[0]);
    scale = 1.0 / (double)(1 << (nm >= 2 ? nm - 2 : 0));
    if (nm < 2)
        scale = 2.0; /* 1 / 2**(-1) */
    k = 0;
    int t_up = 1;
    out = dims[0];
    for (int i = 0; i < nm; i++) {
        int in = dims[i];
        out = dims[i + 1];
        if (i == 1 || i == 2 || i == 3)
            in /= 2;
        for (int r = 0; r < cfg->num_res_blocks + 1; r++) {
            snprintf(p, sizeof p, "decoder.upsamples.%d", k++);
            vae_build_res(dec, wk, p, in, out);
            if (has_scale(cfg, scale)) {
                snprintf(p, sizeof p, "decoder.upsamples.%d", k++);
                vae_build_attn(dec, wk, p, out);
            }
            in = out;
        }
        if (i != nm - 1) {
            int t = cfg->temporal_downsample[cfg->n_temporal - 1 - i];
            snprintf(p, sizeof p, "decoder.upsamples.%d", k++);
            vae_build_resample(dec, wk, p, t ? VAE_UP3D : VAE_UP2D, out, out / 2);
            t_up *= t ? 2 : 1;
            scale *= 2.0;
        }
    }
    vae_build_head(dec, wk, "decoder.head", out, 3);

    if (m) {
        m->patch = 1;
        m->t_down = t_down;
        m->t_up = t_up;
        m->s_factor = 1 << (nm - 1);
    }
}
