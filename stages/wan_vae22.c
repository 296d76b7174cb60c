/* The Wan2.2 VAE network (wan/modules/vae2_2.py WanVAE_): encoder and
 * decoder as layer programs, built while walking the state_dict names.
 *
 * Differences from 2.1: the video is patchified 2x2 into 12 channels before
 * the encoder and the decoder ends in 12 channels that are unpatchified; the
 * decoder has its own width (dec_dim); each level is a Down_ResidualBlock /
 * Up_ResidualBlock (nested names downsamples.N.downsamples.M) whose input,
 * folded by AvgDown3D or expanded by DupUp3D, is added to its output; the
 * upsample convs keep the channel count; attn_scales are not used. The
 * temporal flag of a level is temperal_downsample[i] (reversed for the
 * decoder), False past the end of the list. */
#include <stdio.h>

#include "stages/wan_vae_blocks.h"

static void config_error(struct vae_walk *wk, const char *why)
{
    if (!wk->rc)
        wk->rc = reel_errf(wk->err, REEL_E_MODEL, "WanVAE_ (Wan2.2) config: %s", why);
}

void vae22_build(const struct reel_wan_vae_config *cfg, struct vae_walk *wk,
                 struct reel_wan_vae *m)
{
    struct vae_net *enc = m ? &m->enc : NULL, *dec = m ? &m->dec : NULL;
    int nm = cfg->n_mult, z = cfg->z_dim, ntd = cfg->n_temporal;
    if (nm < 1 || nm > REEL_WAN_VAE_MAX_MULT) {
        config_error(wk, "dim_mult must have 1 to 8 entries");
        return;
    }
    int dims[REEL_WAN_VAE_MAX_MULT + 1];
    char p[160];

    /* ---- encoder */
    dims[0] = cfg->dim;
    for (int i = 0; i < nm; i++)
        dims[i + 1] = cfg->dim * cfg->dim_mult[i];
    vae_build_conv_in(enc, wk, "encoder.conv1", 12, dims[0]);
    int t_down = 1, out = dims[0];
    for (int i = 0; i < nm; i++) {
        int in = dims[i];
        out = dims[i + 1];
        int tflag = i < ntd ? cfg->temporal_downsample[i] : 0, down = i != nm - 1;
        int ft = tflag ? 2 : 1, fs = down ? 2 : 1;
        if ((int64_t)in * ft * fs * fs % out) {
            config_error(wk, "AvgDown3D needs in_dim * factor divisible by out_dim");
            return;
        }
        if (tflag && !down) {
            /* the reference would fold time in the shortcut but not in the
             * main path: the shapes cannot add up */
            config_error(wk, "a temporal downsample on the last level is not supported");
            return;
        }
        vae_build_marker(enc, VAE_AVG_BEGIN, in, out, ft, fs);
        int r = 0;
        for (; r < cfg->num_res_blocks; r++) {
            snprintf(p, sizeof p, "encoder.downsamples.%d.downsamples.%d", i, r);
            vae_build_res(enc, wk, p, in, out);
            in = out;
        }
        if (down) {
            snprintf(p, sizeof p, "encoder.downsamples.%d.downsamples.%d", i, r);
            vae_build_resample(enc, wk, p, tflag ? VAE_DOWN3D : VAE_DOWN2D, out, out);
            t_down *= ft;
        }
        vae_build_marker(enc, VAE_AVG_END, out, out, ft, fs);
    }
    vae_build_middle(enc, wk, "encoder", out);
    vae_build_head(enc, wk, "encoder.head", out, 2 * z);

    /* ---- the two pointwise convs around the latent */
    struct vae_conv c1, c2;
    vae_build_conv(wk, "conv1", m ? &m->conv1 : &c1, 2 * z, 2 * z, 1, 1, 1, 0);
    vae_build_conv(wk, "conv2", m ? &m->conv2 : &c2, z, z, 1, 1, 1, 0);

    /* ---- decoder */
    dims[0] = cfg->dec_dim * cfg->dim_mult[nm - 1];
    for (int i = 0; i < nm; i++)
        dims[i + 1] = cfg->dec_dim * cfg->dim_mult[nm - 1 - i];
    vae_build_conv_in(dec, wk, "decoder.conv1", z, dims[0]);
    vae_build_middle(dec, wk, "decoder", dims[0]);
    int t_up = 1;
    out = dims[0];
    for (int i = 0; i < nm; i++) {
        int in = dims[i];
        out = dims[i + 1];
        int tflag = i < ntd ? cfg->temporal_downsample[ntd - 1 - i] : 0, up = i != nm - 1;
        int ft = tflag ? 2 : 1, fs = 2;
        if (up) {
            if ((int64_t)out * ft * fs * fs % in) {
                config_error(wk, "DupUp3D needs out_dim * factor divisible by in_dim");
                return;
            }
            vae_build_marker(dec, VAE_DUP_BEGIN, in, out, ft, fs);
        }
        int r = 0;
        for (; r < cfg->num_res_blocks + 1; r++) {
            snprintf(p, sizeof p, "decoder.upsamples.%d.upsamples.%d", i, r);
            vae_build_res(dec, wk, p, in, out);
            in = out;
        }
        if (up) {
            snprintf(p, sizeof p, "decoder.upsamples.%d.upsamples.%d", i, r);
            vae_build_resample(dec, wk, p, tflag ? VAE_UP3D : VAE_UP2D, out, out);
            vae_build_marker(dec, VAE_DUP_END, out, out, ft, fs);
            t_up *= ft;
        }
    }
    vae_build_head(dec, wk, "decoder.head", out, 12);

    if (m) {
        m->patch = 2;
        m->t_down = t_down;
        m->t_up = t_up;
        m->s_factor = 2 << (nm - 1);
    }
}
