/* Stage `text`: the prompt (and, with guidance, the negative prompt) through
 * the tokenizer and the umT5 encoder, into text.safetensors:
 * context [L, dim] and context_null [L', dim]. A model with an audio tower
 * also gets context_null_audio, the audio negative prompt (Ovi guides the
 * two towers with their own negative prompts; both share the positive). */
#include <stdlib.h>
#include <string.h>

#include "pipeline/job.h"
#include "stages/text_encode.h"

int reel_stage_text(struct reel_job *job, struct reel_err *err)
{
    const struct reel_spec *s = job->spec;
    const struct reel_model_config *m = &s->model_config;
    int audio = m->audio.enabled;
    int guided = s->sampler.guidance != 1.0 || (audio && s->sampler.audio_guidance != 1.0);
    struct reel_text_encoder_opts o = {
        .weights_path = m->text_encoder.weights,
        .tokenizer_path = m->text_encoder.tokenizer,
        .text_len = m->text_encoder.text_len,
        .be = job->be,
    };
    struct reel_text_encoder *enc = NULL;
    float *ctx = NULL, *ctx_null = NULL, *ctx_null_a = NULL;
    int64_t len = 0, len_null = 0, len_null_a = 0;
    int n_out = guided ? (audio ? 3 : 2) : 1;
    reel_progress_stage(job->progress, "text", n_out);
    int rc = reel_text_encoder_create(&o, &enc, err);
    if (!rc)
        rc = reel_text_encode(enc, s->prompt, &ctx, &len, err);
    if (!rc)
        reel_progress_step(job->progress, 1);
    if (!rc && guided) {
        const char *neg = s->negative_prompt ? s->negative_prompt : "";
        if (!strcmp(neg, "default"))
            neg = reel_wan_negative_prompt;
        rc = reel_text_encode(enc, neg, &ctx_null, &len_null, err);
        if (!rc)
            reel_progress_step(job->progress, 2);
    }
    if (!rc && guided && audio) {
        rc = reel_text_encode(enc, s->audio_negative_prompt ? s->audio_negative_prompt : "",
                              &ctx_null_a, &len_null_a, err);
        if (!rc)
            reel_progress_step(job->progress, 3);
    }
    if (!rc) {
        reel_job_kill_point("text", 0);
        int64_t dim = reel_text_encoder_dim(enc);
        struct reel_tensor t[3] = {
            {.dtype = REEL_F32, .ndim = 2, .shape = {len, dim}, .data = ctx, .name = "context"},
            {.dtype = REEL_F32,
             .ndim = 2,
             .shape = {len_null, dim},
             .data = ctx_null,
             .name = "context_null"},
            {.dtype = REEL_F32,
             .ndim = 2,
             .shape = {len_null_a, dim},
             .data = ctx_null_a,
             .name = "context_null_audio"},
        };
        char path[4096];
        reel_workdir_path(job->wd, "text.safetensors", path, sizeof path);
        rc = reel_st_write(path, t, n_out, NULL, 0, err);
    }
    free(ctx);
    free(ctx_null);
    free(ctx_null_a);
    reel_text_encoder_destroy(enc);
    return rc;
}
