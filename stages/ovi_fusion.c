/* Ovi FusionModel on the op table (see ovi_fusion.h).
 *
 * Each fused block pair runs in the reference's order: audio self-attn,
 * video self-attn, then audio cross-attn + FFN attending to the video state
 * after its self-attention, then video cross-attn + FFN attending to the
 * audio state as it was before its cross-attention (so that one copy is
 * kept). The block math is shared with the Wan DiT (stages/wan_blocks.c).
 *
 * The audio tower has no patchify: a k=7 Conv1d, SiLU and a k=7 SwiGLU-style
 * ConvMLP embed the [L, 20] latent; each conv is an im2col Linear. Its RoPE
 * rotates only the frame band of the head (the first (d - 4(d/6))/2 pairs)
 * with positions scaled by temporal_rope_scaling_factor, so an audio latent
 * and the video frame it belongs to sit near the same angle; the rest of the
 * head passes through (cos 1, sin 0 in the table). */
#include "stages/ovi_fusion.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/wan_blocks.h"

/* The audio patch embedding's convs, fixed by the reference ("hardcoded to
 * MMAudio"). */
#define AUDIO_K 7
#define AUDIO_PAD 3

/* ------------------------------------------------------------------ config */

static int audio_config(const struct reel_json *j, struct reel_ovi_audio_config *cfg,
                        struct reel_err *err)
{
    /* WanModel.__init__ defaults */
    struct reel_ovi_audio_config c = {
        .in_dim = 16, .out_dim = 16, .dim = 2048, .ffn_dim = 8192, .freq_dim = 256,
        .text_dim = 4096, .text_len = 512, .num_heads = 16, .num_layers = 32, .qk_norm = 1,
        .cross_attn_norm = 1, .eps = 1e-6, .rope_scale = 1.0,
    };
    if (!j || j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "Ovi config: the audio tower's config is missing");
    const char *mt = reel_json_str(j, "model_type", "t2v");
    if (strcmp(mt, "t2a"))
        return reel_errf(err, REEL_E_MODEL,
                         "Ovi audio config: model_type '%s' is not supported (t2a)", mt);
    const struct reel_json *ps = reel_json_get(j, "patch_size");
    if (ps && ps->type != REEL_JSON_NULL &&
        (ps->type != REEL_JSON_ARRAY || ps->count != 1 || reel_json_at_num(ps, 0, 0) != 1))
        return reel_errf(err, REEL_E_MODEL, "Ovi audio config: 'patch_size' must be [1]");
    const struct reel_json *ws = reel_json_get(j, "window_size");
    if (ws && ws->type != REEL_JSON_NULL &&
        (ws->type != REEL_JSON_ARRAY || ws->count != 2 || reel_json_at_num(ws, 0, 0) != -1 ||
         reel_json_at_num(ws, 1, 0) != -1))
        return reel_errf(err, REEL_E_MODEL,
                         "Ovi audio config: window_size is not supported: only global "
                         "attention (-1, -1)");
    int rc = reel_json_cfg_int(j, "Ovi audio", "in_dim", c.in_dim, 1, &c.in_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "out_dim", c.out_dim, 1, &c.out_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "dim", c.dim, 1, &c.dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "ffn_dim", c.ffn_dim, 1, &c.ffn_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "freq_dim", c.freq_dim, 2, &c.freq_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "text_dim", c.text_dim, 1, &c.text_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "text_len", c.text_len, 1, &c.text_len, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "num_heads", c.num_heads, 1, &c.num_heads, err);
    if (!rc) rc = reel_json_cfg_int(j, "Ovi audio", "num_layers", c.num_layers, 0, &c.num_layers, err);
    if (!rc) rc = reel_json_cfg_bool(j, "Ovi audio", "qk_norm", c.qk_norm, &c.qk_norm, err);
    if (!rc) rc = reel_json_cfg_bool(j, "Ovi audio", "cross_attn_norm", c.cross_attn_norm, &c.cross_attn_norm, err);
    if (!rc) rc = reel_json_cfg_pos(j, "Ovi audio", "eps", c.eps, &c.eps, err);
    if (!rc)
        rc = reel_json_cfg_pos(j, "Ovi audio", "temporal_rope_scaling_factor", c.rope_scale, &c.rope_scale, err);
    if (rc)
        return rc;
    if (c.dim % c.num_heads != 0 || (c.dim / c.num_heads) % 2 != 0)
        return reel_errf(err, REEL_E_MODEL,
                         "Ovi audio config: dim %d must split into %d heads of even size", c.dim,
                         c.num_heads);
    if (c.freq_dim % 2 != 0)
        return reel_errf(err, REEL_E_MODEL, "Ovi audio config: 'freq_dim' %d must be even",
                         c.freq_dim);
    *cfg = c;
    return REEL_OK;
}

int reel_ovi_config_from_json(const struct reel_json *j, struct reel_ovi_config *cfg,
                              struct reel_err *err)
{
    if (!j || j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "Ovi config: not a JSON object");
    const struct reel_json *v = reel_json_get(j, "video");
    const struct reel_json *a = reel_json_get(j, "audio");
    if (!v)
        v = reel_json_get(j, "video_config");
    if (!a)
        a = reel_json_get(j, "audio_config");
    if (!v || v->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "Ovi config: the video tower's config is missing");
    struct reel_ovi_config c;
    int rc = reel_wan_dit_config_from_json(v, &c.video, err);
    if (rc) {
        reel_err_prefix(err, "Ovi video tower: ");
        return rc;
    }
    if ((rc = audio_config(a, &c.audio, err)))
        return rc;
    /* k_fusion/v_fusion map the other tower's tokens into this tower's
     * heads, so the towers must have the same width, heads and depth */
    if (c.video.dim != c.audio.dim || c.video.num_heads != c.audio.num_heads ||
        c.video.num_layers != c.audio.num_layers)
        return reel_errf(err, REEL_E_MODEL,
                         "Ovi config: the towers differ (video dim %d, %d heads, %d layers; "
                         "audio dim %d, %d heads, %d layers)",
                         c.video.dim, c.video.num_heads, c.video.num_layers, c.audio.dim,
                         c.audio.num_heads, c.audio.num_layers);
    *cfg = c;
    return REEL_OK;
}

/* ----------------------------------------------------------- tensor table */

struct tower {
    struct reel_wan_dims dims;
    int64_t in_dim, out_dim, freq_dim, text_dim, text_len, head_out;
    struct reel_wslot patch_w, patch_b;         /* video Conv3d; audio Conv1d */
    struct reel_wslot w1, w2, w3;               /* audio ConvMLP */
    struct reel_wan_embed_w emb;
    struct reel_wan_block_w *blocks;
};

struct reel_ovi_fusion {
    struct reel_ovi_config cfg;
    struct reel_backend *be;
    struct tower vid, aud;
    int64_t hidden; /* ConvMLP hidden width */
};

/* ConvMLP(dim, 4*dim): int(2*hidden/3) rounded up to a multiple of 256. */
static int64_t convmlp_hidden(int64_t dim)
{
    int64_t h = (2 * 4 * dim) / 3;
    return 256 * ((h + 255) / 256);
}

static void tower_sizes(const struct reel_ovi_config *cfg, struct tower *v, struct tower *a)
{
    const struct reel_wan_dit_config *vc = &cfg->video;
    const struct reel_ovi_audio_config *ac = &cfg->audio;
    v->dims = (struct reel_wan_dims){
        .dim = vc->dim, .ffn_dim = vc->ffn_dim, .heads = vc->num_heads,
        .head_dim = vc->dim / vc->num_heads, .qk_norm = vc->qk_norm,
        .cross_attn_norm = vc->cross_attn_norm, .eps = (float)vc->eps,
    };
    v->in_dim = vc->in_dim;
    v->out_dim = vc->out_dim;
    v->freq_dim = vc->freq_dim;
    v->text_dim = vc->text_dim;
    v->text_len = vc->text_len;
    v->head_out = (int64_t)vc->patch[0] * vc->patch[1] * vc->patch[2] * vc->out_dim;
    a->dims = (struct reel_wan_dims){
        .dim = ac->dim, .ffn_dim = ac->ffn_dim, .heads = ac->num_heads,
        .head_dim = ac->dim / ac->num_heads, .qk_norm = ac->qk_norm,
        .cross_attn_norm = ac->cross_attn_norm, .eps = (float)ac->eps,
    };
    a->in_dim = ac->in_dim;
    a->out_dim = ac->out_dim;
    a->freq_dim = ac->freq_dim;
    a->text_dim = ac->text_dim;
    a->text_len = ac->text_len;
    a->head_out = ac->out_dim;
}

static void walk_tensors(const struct reel_ovi_config *cfg, struct reel_ovi_fusion *m,
                         reel_wan_walk_fn fn, void *ctx)
{
    struct tower tv_, ta_;
    struct tower *tv = m ? &m->vid : &tv_, *ta = m ? &m->aud : &ta_;
    if (!m)
        tower_sizes(cfg, tv, ta);
    const int64_t D = cfg->video.dim;

    /* video_model: Wan2.2's layout with Ovi's block naming */
    struct reel_wan_walker wk = {fn, ctx, "video_model."};
    reel_wan_put(&wk, m ? &tv->patch_w : NULL, 0, "patch_embedding.weight", 5, D, tv->in_dim,
                 cfg->video.patch[0], cfg->video.patch[1], cfg->video.patch[2]);
    reel_wan_put(&wk, m ? &tv->patch_b : NULL, 1, "patch_embedding.bias", 1, D, 0, 0, 0, 0);
    reel_wan_walk_embed(&wk, D, tv->text_dim, tv->freq_dim, m ? &tv->emb : NULL);
    for (int i = 0; i < cfg->video.num_layers; i++)
        reel_wan_walk_block(&wk, &tv->dims, i, REEL_WAN_LAYOUT_OVI, m ? &tv->blocks[i] : NULL);
    reel_wan_walk_head(&wk, D, tv->head_out, m ? &tv->emb : NULL);

    /* audio_model: Sequential(Conv1d, SiLU, ConvMLP) patch embedding */
    const int64_t H = convmlp_hidden(D);
    wk.prefix = "audio_model.";
    reel_wan_put(&wk, m ? &ta->patch_w : NULL, 0, "patch_embedding.0.weight", 3, D, ta->in_dim,
                 AUDIO_K, 0, 0);
    reel_wan_put(&wk, m ? &ta->patch_b : NULL, 1, "patch_embedding.0.bias", 1, D, 0, 0, 0, 0);
    reel_wan_put(&wk, m ? &ta->w1 : NULL, 0, "patch_embedding.2.w1.weight", 3, H, D, AUDIO_K, 0,
                 0);
    reel_wan_put(&wk, m ? &ta->w2 : NULL, 0, "patch_embedding.2.w2.weight", 3, D, H, AUDIO_K, 0,
                 0);
    reel_wan_put(&wk, m ? &ta->w3 : NULL, 0, "patch_embedding.2.w3.weight", 3, H, D, AUDIO_K, 0,
                 0);
    reel_wan_walk_embed(&wk, D, ta->text_dim, ta->freq_dim, m ? &ta->emb : NULL);
    for (int i = 0; i < cfg->audio.num_layers; i++)
        reel_wan_walk_block(&wk, &ta->dims, i, REEL_WAN_LAYOUT_OVI, m ? &ta->blocks[i] : NULL);
    reel_wan_walk_head(&wk, D, ta->head_out, m ? &ta->emb : NULL);
}

void reel_ovi_tensor_table(const struct reel_ovi_config *cfg, reel_tensor_emit_fn emit, void *ctx)
{
    struct reel_wan_table t = {emit, ctx};
    walk_tensors(cfg, NULL, reel_wan_table_visit, &t);
}

/* ------------------------------------------------------------------ loader */

void reel_ovi_fusion_destroy(struct reel_ovi_fusion *m)
{
    if (!m)
        return;
    if (m->vid.blocks && m->aud.blocks)
        walk_tensors(&m->cfg, m, reel_wan_free_visit, NULL);
    free(m->vid.blocks);
    free(m->aud.blocks);
    free(m);
}

int reel_ovi_fusion_create(const struct reel_ovi_config *cfg, const struct reel_weights *w,
                           struct reel_backend *be, struct reel_ovi_fusion **out,
                           struct reel_err *err)
{
    *out = NULL;
    struct reel_ovi_fusion *m = calloc(1, sizeof *m);
    if (!m)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    m->cfg = *cfg;
    m->be = be;
    tower_sizes(cfg, &m->vid, &m->aud);
    m->hidden = convmlp_hidden(cfg->audio.dim);
    size_t nl = (size_t)(cfg->video.num_layers > 0 ? cfg->video.num_layers : 1);
    m->vid.blocks = calloc(nl, sizeof *m->vid.blocks);
    m->aud.blocks = calloc(nl, sizeof *m->aud.blocks);
    if (!m->vid.blocks || !m->aud.blocks) {
        reel_ovi_fusion_destroy(m);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }
    struct reel_wan_bind b = {w, err, REEL_OK};
    walk_tensors(cfg, m, reel_wan_bind_visit, &b);
    if (b.rc) {
        reel_ovi_fusion_destroy(m);
        return b.rc;
    }
    *out = m;
    return REEL_OK;
}

/* ----------------------------------------------------------------- forward */

/* Per-tower activations of one forward pass. */
struct tstate {
    const struct tower *tw;
    const char *name;        /* "vid" / "audio" (probe names) */
    int64_t L, N;            /* seq_len, real tokens */
    struct reel_wan_tsteps ts;
    float *sinus, *e, *e0, *modb, *ctx, *cos_t, *sin_t, *x, *hout;
};

static void tstate_free(struct tstate *s)
{
    reel_wan_tsteps_free(&s->ts);
    free(s->sinus);
    free(s->e);
    free(s->e0);
    free(s->modb);
    free(s->ctx);
    free(s->cos_t);
    free(s->sin_t);
    free(s->x);
    free(s->hout);
}

static float *falloc(int64_t n)
{
    return malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
}

static void probe(const struct reel_ovi_input *in, const struct tstate *s, const char *what,
                  const float *data, int64_t n)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", s->name, what);
    in->probe(in->probe_ctx, name, data, n);
}

/* Timestep quantities are held per distinct value; probes see them per token. */
static int probe_per_token(const struct reel_ovi_input *in, const struct tstate *s,
                           const char *what, const float *u, int64_t n)
{
    float *tmp = falloc(s->L * n);
    if (!tmp)
        return -1;
    for (int64_t r = 0; r < s->L; r++)
        memcpy(tmp + r * n, u + (int64_t)s->ts.tok_u[r] * n, sizeof(float) * (size_t)n);
    probe(in, s, what, tmp, s->L * n);
    free(tmp);
    return 0;
}

/* Timesteps, time and text embeddings of one tower. */
static int tower_prepare(struct reel_backend *be, struct tstate *s, const float *t, int per_token,
                         const float *context, int64_t context_len,
                         const struct reel_ovi_input *in, struct reel_err *err)
{
    const struct tower *tw = s->tw;
    const int64_t D = tw->dims.dim;
    int rc = reel_wan_tsteps_init(&s->ts, t, per_token, s->L, err);
    if (rc)
        return rc;
    const int64_t U = s->ts.U;
    s->sinus = falloc(U * tw->freq_dim);
    s->e = falloc(U * D);
    s->e0 = falloc(U * 6 * D);
    s->modb = falloc(U * 6 * D);
    s->ctx = falloc(tw->text_len * D);
    s->x = falloc(s->L * D);
    s->hout = falloc(s->L * tw->head_out);
    if (!s->sinus || !s->e || !s->e0 || !s->modb || !s->ctx || !s->x || !s->hout)
        return reel_errf(err, REEL_E_OTHER, "out of memory for the activations");
    if ((rc = reel_wan_time_embed(be, &tw->emb, D, tw->freq_dim, &s->ts, s->sinus, s->e, s->e0,
                                  err)))
        return rc;
    if ((rc = reel_wan_text_embed(be, &tw->emb, D, tw->text_dim, tw->text_len, context,
                                  context_len, s->ctx, err)))
        return rc;
    if (in->probe) {
        float *tt = falloc(s->L);
        if (!tt)
            return reel_errf(err, REEL_E_OTHER, "out of memory");
        for (int64_t r = 0; r < s->L; r++)
            tt[r] = s->ts.tval[s->ts.tok_u[r]];
        probe(in, s, "t_tokens", tt, s->L);
        free(tt);
        if (probe_per_token(in, s, "t_sinusoid", s->sinus, tw->freq_dim) ||
            probe_per_token(in, s, "e", s->e, D) || probe_per_token(in, s, "e0", s->e0, 6 * D))
            return reel_errf(err, REEL_E_OTHER, "out of memory");
        probe(in, s, "context", s->ctx, tw->text_len * D);
    }
    return REEL_OK;
}

/* Video patch embedding (Conv3d with stride = kernel as a Linear over the
 * gathered patches) and the 3D rotary tables. */
static int video_embed(struct reel_backend *be, const struct reel_wan_dit_config *vc,
                       struct tstate *s, const struct reel_ovi_input *in, struct reel_err *err)
{
    const struct tower *tw = s->tw;
    const int pt = vc->patch[0], ph = vc->patch[1], pw = vc->patch[2];
    const int64_t gf = in->frames / pt, gh = in->height / ph, gw = in->width / pw;
    const int64_t D = tw->dims.dim, kpatch = tw->in_dim * pt * ph * pw, half = tw->dims.head_dim / 2;
    s->cos_t = falloc(s->N * half);
    s->sin_t = falloc(s->N * half);
    float *patches = falloc(s->N * kpatch);
    int rc = REEL_OK;
    if (!s->cos_t || !s->sin_t || !patches) {
        free(patches);
        return reel_errf(err, REEL_E_OTHER, "out of memory for the activations");
    }
    const int64_t H = in->height, W = in->width, FHW = in->frames * H * W;
    for (int64_t f = 0; f < gf; f++)
        for (int64_t hh = 0; hh < gh; hh++)
            for (int64_t ww = 0; ww < gw; ww++) {
                float *row = patches + ((f * gh + hh) * gw + ww) * kpatch;
                for (int64_t c = 0; c < tw->in_dim; c++)
                    for (int a = 0; a < pt; a++)
                        for (int b = 0; b < ph; b++)
                            for (int d = 0; d < pw; d++)
                                *row++ = in->vid[c * FHW + (f * pt + a) * H * W +
                                                 (hh * ph + b) * W + ww * pw + d];
            }
    rc = be->linear(be, s->x, patches, s->N, kpatch, tw->patch_w.t, tw->patch_b.f, err);
    free(patches);
    if (rc)
        return rc;
    memset(s->x + s->N * D, 0, sizeof(float) * (size_t)((s->L - s->N) * D));
    rc = reel_wan_rope_table_3d(tw->dims.head_dim, gf, gh, gw, s->cos_t, s->sin_t, err);
    if (!rc && in->probe) {
        const int hd = tw->dims.head_dim;
        double *inv = malloc(sizeof *inv * (size_t)half);
        float *tab = falloc((int64_t)REEL_WAN_ROPE_MAX_POS * hd);
        if (!inv || !tab) {
            free(inv);
            free(tab);
            return reel_errf(err, REEL_E_OTHER, "out of memory");
        }
        int c0, c1;
        reel_wan_rope_inv_freqs(hd, inv, &c0, &c1);
        for (int64_t p = 0; p < REEL_WAN_ROPE_MAX_POS; p++)
            for (int64_t j = 0; j < half; j++) {
                double a = (double)p * inv[j];
                tab[(p * half + j) * 2] = (float)cos(a);
                tab[(p * half + j) * 2 + 1] = (float)sin(a);
            }
        probe(in, s, "rope_freqs", tab, (int64_t)REEL_WAN_ROPE_MAX_POS * hd);
        free(inv);
        free(tab);
    }
    return rc;
}

/* y [L, cout] = Conv1d(x [L, cin], w [cout, cin, K], pad K/2) on channel-last
 * tokens, as an im2col Linear whose rows are laid out (cin, k) like w. */
static int conv1d_cl(struct reel_backend *be, float *y, const float *x, int64_t L, int64_t cin,
                     const struct reel_tensor *w, const float *bias, struct reel_err *err)
{
    float *col = falloc(L * cin * AUDIO_K);
    if (!col)
        return reel_errf(err, REEL_E_OTHER, "out of memory for the audio patch embedding");
    for (int64_t l = 0; l < L; l++) {
        float *row = col + l * cin * AUDIO_K;
        for (int64_t c = 0; c < cin; c++)
            for (int k = 0; k < AUDIO_K; k++) {
                int64_t src = l + k - AUDIO_PAD;
                row[c * AUDIO_K + k] = src >= 0 && src < L ? x[src * cin + c] : 0.0f;
            }
    }
    int rc = be->linear(be, y, col, L, cin * AUDIO_K, w, bias, err);
    free(col);
    return rc;
}

/* Audio patch embedding Conv1d -> SiLU -> ConvMLP w2(silu(w1 h) * w3 h),
 * over the N real tokens (the reference pads after embedding), and the
 * scaled 1D rotary tables. */
static int audio_embed(struct reel_backend *be, const struct reel_ovi_fusion *m, struct tstate *s,
                       const struct reel_ovi_input *in, struct reel_err *err)
{
    const struct tower *tw = s->tw;
    const int64_t D = tw->dims.dim, N = s->N, Hd = m->hidden, hd = tw->dims.head_dim,
                  half = hd / 2;
    /* the frame band of the video's split: d - 4*(d/6) dims */
    const int64_t rd = hd - 4 * (hd / 6), rp = rd / 2;
    float *h0 = falloc(N * D), *h1 = falloc(N * Hd), *h3 = falloc(N * Hd);
    double *inv = malloc(sizeof *inv * (size_t)(rp > 0 ? rp : 1));
    s->cos_t = falloc(N * half);
    s->sin_t = falloc(N * half);
    int rc = REEL_OK;
    if (!h0 || !h1 || !h3 || !inv || !s->cos_t || !s->sin_t) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the audio patch embedding");
        goto done;
    }
    if ((rc = conv1d_cl(be, h0, in->audio, N, tw->in_dim, tw->patch_w.t, tw->patch_b.f, err)))
        goto done;
    be->silu(be, h0, h0, N * D);
    if ((rc = conv1d_cl(be, h1, h0, N, D, tw->w1.t, NULL, err)) ||
        (rc = conv1d_cl(be, h3, h0, N, D, tw->w3.t, NULL, err)))
        goto done;
    be->silu(be, h1, h1, N * Hd);
    be->mul(be, h1, h1, h3, N * Hd);
    if ((rc = conv1d_cl(be, s->x, h1, N, Hd, tw->w2.t, NULL, err)))
        goto done;
    memset(s->x + N * D, 0, sizeof(float) * (size_t)((s->L - N) * D));

    /* rope_params(1024, rd, freqs_scaling=s): pos * (s / 10000^(2j/rd)) */
    for (int64_t j = 0; j < rp; j++)
        inv[j] = m->cfg.audio.rope_scale * (1.0 / pow(10000.0, (double)(2 * j) / (double)rd));
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < half; j++) {
            double a = j < rp ? (double)n * inv[j] : 0.0;
            s->cos_t[n * half + j] = j < rp ? (float)cos(a) : 1.0f;
            s->sin_t[n * half + j] = j < rp ? (float)sin(a) : 0.0f;
        }
    if (in->probe) {
        float *tab = falloc((int64_t)REEL_WAN_ROPE_MAX_POS * rp * 2);
        if (!tab) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto done;
        }
        for (int64_t p = 0; p < REEL_WAN_ROPE_MAX_POS; p++)
            for (int64_t j = 0; j < rp; j++) {
                double a = (double)p * inv[j];
                tab[(p * rp + j) * 2] = (float)cos(a);
                tab[(p * rp + j) * 2 + 1] = (float)sin(a);
            }
        probe(in, s, "rope_freqs", tab, (int64_t)REEL_WAN_ROPE_MAX_POS * rp * 2);
        free(tab);
    }
done:
    free(h0);
    free(h1);
    free(h3);
    free(inv);
    return rc;
}

/* One tower's cross-attention (text + the other tower) and FFN. */
static int tower_cross_ffn(struct reel_backend *be, struct tstate *s, int i,
                           const struct reel_wan_target *tgt, struct reel_wan_scratch *sc,
                           const struct reel_ovi_input *in, struct reel_err *err)
{
    const struct tower *tw = s->tw;
    const struct reel_wan_block_w *b = &tw->blocks[i];
    const int64_t D = tw->dims.dim;
    int rc = reel_wan_cross_attn(be, &tw->dims, b, s->x, s->L, s->N, s->ctx, tw->text_len,
                                 s->cos_t, s->sin_t, tgt, sc, err);
    if (rc)
        return rc;
    char name[64];
    if (in->probe) {
        snprintf(name, sizeof name, "block.%d.cross_attn_out", i);
        probe(in, s, name, sc->Y, s->L * D);
    }
    be->add(be, s->x, s->x, sc->Y, s->L * D);
    if ((rc = reel_wan_ffn(be, &tw->dims, b, s->x, s->L, &s->ts, s->modb, sc, err)))
        return rc;
    if (in->probe) {
        snprintf(name, sizeof name, "block.%d", i);
        probe(in, s, name, s->x, s->L * D);
    }
    return REEL_OK;
}

static int tower_self(struct reel_backend *be, struct tstate *s, int i,
                      struct reel_wan_scratch *sc, const struct reel_ovi_input *in,
                      struct reel_err *err)
{
    const struct tower *tw = s->tw;
    const struct reel_wan_block_w *b = &tw->blocks[i];
    reel_wan_block_mod(be, &tw->dims, b, &s->ts, s->e0, s->modb);
    int rc = reel_wan_self_attn(be, &tw->dims, b, s->x, s->L, s->N, &s->ts, s->modb, s->cos_t,
                                s->sin_t, sc, err);
    if (!rc && in->probe) {
        char name[64];
        snprintf(name, sizeof name, "block.%d.after_self_attn", i);
        probe(in, s, name, s->x, s->L * tw->dims.dim);
    }
    return rc;
}

int reel_ovi_fusion_forward(struct reel_ovi_fusion *m, const struct reel_ovi_input *in,
                            float *vid_out, float *audio_out, struct reel_err *err)
{
    const struct reel_ovi_config *cfg = &m->cfg;
    struct reel_backend *be = m->be;
    const int pt = cfg->video.patch[0], ph = cfg->video.patch[1], pw = cfg->video.patch[2];

    if (!in->vid || !in->audio || !in->vid_t || !in->audio_t ||
        (in->vid_context_len > 0 && !in->vid_context) ||
        (in->audio_context_len > 0 && !in->audio_context))
        return reel_errf(err, REEL_E_SPEC, "Ovi: missing input");
    int64_t grid[3];
    int grc = reel_wan_patch_grid(cfg->video.patch, in->frames, in->height, in->width,
                                  "Ovi video", grid, err);
    if (grc)
        return grc;
    const int64_t gf = grid[0], gh = grid[1], gw = grid[2];
    const int64_t Nv = gf * gh * gw, Na = in->audio_len;
    if (Na <= 0 || Na > REEL_WAN_ROPE_MAX_POS)
        return reel_errf(err, REEL_E_SPEC,
                         "Ovi: %lld audio latents; the rotary table covers 1 to %d",
                         (long long)Na, REEL_WAN_ROPE_MAX_POS);
    if (in->vid_seq_len < Nv || in->audio_seq_len < Na)
        return reel_errf(err, REEL_E_SPEC,
                         "Ovi: seq_len (video %lld, audio %lld) is below the token count "
                         "(%lld, %lld)",
                         (long long)in->vid_seq_len, (long long)in->audio_seq_len,
                         (long long)Nv, (long long)Na);
    if (in->vid_context_len < 0 || in->vid_context_len > cfg->video.text_len ||
        in->audio_context_len < 0 || in->audio_context_len > cfg->audio.text_len)
        return reel_errf(err, REEL_E_SPEC,
                         "Ovi: context of %lld / %lld tokens does not fit text_len %d / %d",
                         (long long)in->vid_context_len, (long long)in->audio_context_len,
                         cfg->video.text_len, cfg->audio.text_len);
    if (in->slg_layer < 0 || (in->slg_layer > 0 && in->slg_layer >= cfg->video.num_layers))
        return reel_errf(err, REEL_E_SPEC, "Ovi: slg_layer %d is not a block index (0..%d)",
                         in->slg_layer, cfg->video.num_layers - 1);

    struct tstate v = {.tw = &m->vid, .name = "vid", .L = in->vid_seq_len, .N = Nv};
    struct tstate a = {.tw = &m->aud, .name = "audio", .L = in->audio_seq_len, .N = Na};
    struct reel_wan_scratch sc = {0};
    float *a_sa = NULL;
    const int64_t D = cfg->video.dim, Lmax = v.L > a.L ? v.L : a.L;
    const int64_t Tmax = cfg->video.text_len > cfg->audio.text_len ? cfg->video.text_len
                                                                    : cfg->audio.text_len;
    /* one scratch for both towers, sized for the larger of each */
    struct reel_wan_dims sd = m->vid.dims;
    if (m->aud.dims.ffn_dim > sd.ffn_dim)
        sd.ffn_dim = m->aud.dims.ffn_dim;
    int rc = reel_wan_scratch_init(&sc, &sd, Lmax, Tmax, Lmax, err);
    if (rc)
        goto done;
    a_sa = falloc(a.L * D);
    if (!a_sa) {
        rc = reel_errf(err, REEL_E_OTHER, "Ovi: out of memory for the activations");
        goto done;
    }

    if ((rc = tower_prepare(be, &v, in->vid_t, in->vid_t_per_token, in->vid_context,
                            in->vid_context_len, in, err)) ||
        (rc = tower_prepare(be, &a, in->audio_t, in->audio_t_per_token, in->audio_context,
                            in->audio_context_len, in, err)) ||
        (rc = video_embed(be, &cfg->video, &v, in, err)) ||
        (rc = audio_embed(be, m, &a, in, err)))
        goto done;
    if (in->probe) {
        probe(in, &v, "patch_embed", v.x, v.L * D);
        probe(in, &a, "patch_embed", a.x, a.L * D);
    }

    for (int i = 0; i < cfg->video.num_layers; i++) {
        if (in->slg_layer > 0 && i == in->slg_layer)
            continue;
        if ((rc = tower_self(be, &a, i, &sc, in, err)) ||
            (rc = tower_self(be, &v, i, &sc, in, err)))
            goto done;
        memcpy(a_sa, a.x, sizeof(float) * (size_t)(a.L * D));
        const struct reel_wan_target tv = {v.x, v.L, v.N, v.cos_t, v.sin_t};
        const struct reel_wan_target ta = {a_sa, a.L, a.N, a.cos_t, a.sin_t};
        if ((rc = tower_cross_ffn(be, &a, i, &tv, &sc, in, err)) ||
            (rc = tower_cross_ffn(be, &v, i, &ta, &sc, in, err)))
            goto done;
    }

    if ((rc = reel_wan_head(be, &m->vid.dims, &m->vid.emb, v.x, v.L, &v.ts, v.e, &sc, v.hout,
                            err)) ||
        (rc = reel_wan_head(be, &m->aud.dims, &m->aud.emb, a.x, a.L, &a.ts, a.e, &sc, a.hout,
                            err)))
        goto done;
    if (in->probe) {
        probe(in, &v, "head", v.hout, v.L * m->vid.head_out);
        probe(in, &a, "head", a.hout, a.L * m->aud.head_out);
    }

    /* unpatchify: token (f,h,w) row (p,q,r,c) -> out[c, f*pt+p, h*ph+q, w*pw+r] */
    {
        const int64_t H = in->height, W = in->width, FHW = in->frames * H * W;
        const int64_t c_out = cfg->video.out_dim, OD = m->vid.head_out;
        for (int64_t f = 0; f < gf; f++)
            for (int64_t hh = 0; hh < gh; hh++)
                for (int64_t ww = 0; ww < gw; ww++) {
                    const float *row = v.hout + ((f * gh + hh) * gw + ww) * OD;
                    for (int p = 0; p < pt; p++)
                        for (int q = 0; q < ph; q++)
                            for (int r = 0; r < pw; r++)
                                for (int64_t c = 0; c < c_out; c++)
                                    vid_out[c * FHW + (f * pt + p) * H * W + (hh * ph + q) * W +
                                            ww * pw + r] = *row++;
                }
    }
    /* audio: the real tokens, channel-last */
    memcpy(audio_out, a.hout, sizeof(float) * (size_t)(Na * m->aud.head_out));

done:
    if (rc)
        reel_err_prefix(err, "Ovi: ");
    reel_wan_scratch_free(&sc);
    free(a_sa);
    tstate_free(&v);
    tstate_free(&a);
    return rc;
}
