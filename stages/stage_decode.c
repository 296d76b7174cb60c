/* Stage `decode`: the final latent through the temporal VAE one latent frame
 * at a time, each decoded frame handed straight to the mux (H.264/HEVC/
 * ProRes + image sequence + contact sheet), so memory does not grow with the
 * clip's length. A kill mid-decode or mid-mux leaves only temporary files;
 * the rerun removes them and decodes again from the checkpointed latent.
 * For a model with an audio tower the audio latent goes first (so the file
 * interleaves well): MMAudio VAE -> mel -> BigVGAN -> 16 kHz PCM, which the
 * mux resamples to the output rate and fits to the video's length. */
#include <stdlib.h>
#include <string.h>

#include "audio/bigvgan.h"
#include "audio/mmaudio_vae.h"
#include "pipeline/job.h"
#include "stages/mux.h"
#include "stages/wan_vae.h"

static enum reel_video_codec mux_video_codec(enum reel_spec_video_codec c)
{
    return c == REEL_VCODEC_HEVC     ? REEL_VIDEO_HEVC
           : c == REEL_VCODEC_PRORES ? REEL_VIDEO_PRORES
                                     : REEL_VIDEO_H264;
}

static enum reel_audio_codec mux_audio_codec(enum reel_spec_audio_codec c)
{
    return c == REEL_ACODEC_PCM ? REEL_AUDIO_PCM : c == REEL_ACODEC_NONE ? REEL_AUDIO_NONE
                                                                          : REEL_AUDIO_AAC;
}

/* The mux options a spec asks for. */
static void mux_options_from_spec(const struct reel_spec *s, struct reel_mux_options *o)
{
    const struct reel_spec_output *out = &s->output;
    memset(o, 0, sizeof *o);
    o->path = out->path;
    o->width = s->width;
    o->height = s->height;
    o->fps_num = s->fps_num;
    o->fps_den = s->fps_den;
    o->total_frames = s->frames;
    o->video_codec = mux_video_codec(out->video_codec);
    o->crf = out->crf;
    o->audio_codec = mux_audio_codec(out->audio_codec);
    o->audio_rate = out->audio_rate;
    /* The Wan models have no audio branch: no audio stream unless the spec
     * asks for a silent one (and the codec is not none). A model with an
     * audio tower pushes its PCM (and fills the WAV sidecar on request). */
    o->has_audio = s->model_config.audio.enabled;
    o->silence_if_no_audio = out->silent_audio && out->audio_codec != REEL_ACODEC_NONE;
    if ((o->has_audio || o->silence_if_no_audio) && out->wav.enabled)
        o->wav_path = out->wav.path;
    if (out->image_sequence.enabled) {
        o->images.format =
            out->image_sequence.format == REEL_SPEC_IMAGE_EXR ? REEL_IMAGE_EXR : REEL_IMAGE_PNG;
        o->images.pattern = out->image_sequence.path;
        o->images.start_number = out->image_sequence.start_number;
        o->images.bit_depth = out->image_sequence.bit_depth;
    }
    if (out->contact_sheet.enabled) {
        o->contact_sheet.path = out->contact_sheet.path;
        o->contact_sheet.columns = out->contact_sheet.columns;
        o->contact_sheet.count = out->contact_sheet.count;
    }
}

struct decode_ctx {
    struct reel_job *job;
    struct reel_mux *mux;
    int64_t latent_frames_done;
};

static int on_frames(void *ctx, const float *frames, int64_t first, int64_t n,
                     struct reel_err *err)
{
    (void)first;
    struct decode_ctx *d = ctx;
    int rc = reel_mux_write_video_frames(d->mux, frames, n, err);
    if (rc)
        return rc;
    d->latent_frames_done++;
    reel_progress_step(d->job->progress, d->latent_frames_done);
    reel_job_kill_point("decode", (long)d->latent_frames_done);
    return REEL_OK;
}

/* The checkpoint's audio latent [L, C] (channel-last, as the fusion model
 * takes it) -> MMAudio VAE [C, L] -> log10 mel -> BigVGAN -> mono PCM at the
 * vocoder's rate, pushed to the mux in one block. */
static int decode_audio(struct reel_job *job, const struct reel_st_file *ck,
                        struct reel_mux *mux, struct reel_err *err)
{
    const struct reel_model_config *m = &job->spec->model_config;
    const struct reel_tensor *ta = reel_st_find(ck, "audio_latent");
    if (!ta || ta->ndim != 2 || ta->dtype != REEL_F32 ||
        ta->shape[1] != m->audio.vae.cfg.embed_dim)
        return reel_errf(err, REEL_E_MEDIA, "%s: no audio latent in the checkpoint", ck->path);
    int64_t L = ta->shape[0], C = ta->shape[1];
    struct reel_weights *wv = NULL, *wg = NULL;
    struct reel_mmaudio_vae *vae = NULL;
    struct reel_bigvgan *voc = NULL;
    float *lat = NULL, *z = NULL, *mel = NULL, *wave = NULL;
    int rc = REEL_OK;
    if (!(lat = malloc(sizeof(float) * (size_t)(L * C))) ||
        !(z = malloc(sizeof(float) * (size_t)(L * C)))) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    reel_tensor_to_f32(ta, 0, L * C, lat);
    for (int64_t l = 0; l < L; l++)
        for (int64_t c = 0; c < C; c++)
            z[c * L + l] = lat[l * C + c];
    if ((rc = reel_weights_open(m->audio.vae.weights, &wv, err)) ||
        (rc = reel_mmaudio_vae_create(&m->audio.vae.cfg, wv, m->audio.vae.weight_norm_removed,
                                      job->be, &vae, err)))
        goto done;
    int64_t T = reel_mmaudio_vae_mel_len(vae, L);
    if (!(mel = malloc(sizeof(float) * (size_t)(T * m->audio.vae.cfg.data_dim)))) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the mel");
        goto done;
    }
    if ((rc = reel_mmaudio_vae_decode(vae, z, L, mel, err)))
        goto done;
    reel_mmaudio_vae_destroy(vae);
    vae = NULL;
    reel_weights_close(wv);
    wv = NULL;
    if ((rc = reel_weights_open(m->audio.vocoder.weights, &wg, err)) ||
        (rc = reel_bigvgan_create(&m->audio.vocoder.cfg, wg, job->be, &voc, err)))
        goto done;
    int64_t n = T * reel_bigvgan_hop(voc);
    if (!(wave = malloc(sizeof(float) * (size_t)n))) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the audio");
        goto done;
    }
    if ((rc = reel_bigvgan_forward_clip(voc, mel, T, wave, err)))
        goto done;
    rc = reel_mux_write_audio(mux, wave, n, m->audio.sample_rate, 1, err);
done:
    reel_bigvgan_destroy(voc);
    reel_weights_close(wg);
    reel_mmaudio_vae_destroy(vae);
    reel_weights_close(wv);
    free(lat);
    free(z);
    free(mel);
    free(wave);
    return rc;
}

int reel_stage_decode(struct reel_job *job, struct reel_err *err)
{
    const struct reel_spec *s = job->spec;
    const struct reel_model_config *m = &s->model_config;
    struct reel_st_file *ck = NULL;
    struct reel_weights *w = NULL;
    struct reel_wan_vae *vae = NULL;
    struct decode_ctx d = {.job = job};
    float *latent = NULL;
    char path[4096];

    int rc = reel_st_open(reel_workdir_path(job->wd, "denoise.safetensors", path, sizeof path),
                          &ck, err);
    const struct reel_tensor *tl = rc ? NULL : reel_st_find(ck, "latent");
    if (!rc && (!tl || tl->ndim != 4 || tl->dtype != REEL_F32))
        rc = reel_errf(err, REEL_E_MEDIA, "%s: no latent in the checkpoint", path);
    if (!rc && !(latent = malloc(sizeof(float) * (size_t)reel_tensor_numel(tl))))
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
    if (!rc)
        reel_tensor_to_f32(tl, 0, reel_tensor_numel(tl), latent);
    if (!rc)
        rc = reel_weights_open(m->vae.weights, &w, err);
    if (!rc)
        rc = reel_wan_vae_create(&m->vae.cfg, w, job->be, &vae, err);

    struct reel_mux_options mo;
    mux_options_from_spec(s, &mo);
    if (!rc)
        rc = reel_mux_remove_stale(&mo, err);
    if (!rc)
        rc = reel_mux_open(&mo, &d.mux, err);
    if (!rc && m->audio.enabled)
        rc = decode_audio(job, ck, d.mux, err);
    if (!rc) {
        reel_progress_stage(job->progress, "decode", tl->shape[1]);
        rc = reel_wan_vae_decode(vae, latent, tl->shape[1], tl->shape[2], tl->shape[3],
                                 m->vae.latent_mean, m->vae.latent_inv_std, on_frames, &d, err);
    }
    if (!rc) {
        reel_job_kill_point("mux", 0);
        struct reel_mux *mux = d.mux;
        d.mux = NULL; /* finish frees it, whatever happens */
        rc = reel_mux_finish(mux, err);
    }
    reel_mux_abort(d.mux);
    reel_wan_vae_destroy(vae);
    reel_weights_close(w);
    reel_st_close(ck);
    free(latent);
    return rc;
}
