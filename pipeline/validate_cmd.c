/* `reel validate JOB.yaml...`: loads each spec as `reel render` would and
 * prints every error and warning, then "OK file" per valid spec.
 * `reel info MODEL`: a model config's architecture, parameter counts,
 * defaults, and which weight files are present (with their dtypes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/safetensors.h"
#include "pipeline/spec.h"

void reel_diag_print(const struct reel_diag *d, const char *file)
{
    for (int i = 0; i < d->count; i++) {
        if (d->items[i].level == REEL_DIAG_WARNING)
            fprintf(stderr, "warning: %s\n", d->items[i].text);
        else
            fprintf(stderr, "%s\n", d->items[i].text);
    }
    int dropped = d->errors + d->warnings - d->count;
    if (dropped > 0)
        fprintf(stderr, "%s: ... and %d more messages\n", file, dropped);
}

static void validate_usage(FILE *out)
{
    fprintf(out,
            "usage: reel validate [--set KEY.PATH=VALUE]... [--print] JOB.yaml...\n"
            "\n"
            "Checks job specs without rendering: every error and warning of every file is\n"
            "printed as file:line:col: key.path: message, then \"OK file\" for each valid one.\n"
            "\n"
            "  --set KEY.PATH=VALUE  change a key as `reel render --set` does (VALUE is YAML)\n"
            "  --print               print each valid spec fully resolved (canonical YAML)\n"
            "  -h, --help            this help\n"
            "\n"
            "exit status: 0 all valid, 2 a spec has errors, 3 a model config is broken,\n"
            "1 anything else\n");
}

int reel_validate_main(int argc, char **argv)
{
    const char **sets = calloc((size_t)argc, sizeof *sets);
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_sets = 0, n_files = 0, print = 0, status = 0;
    if (!sets || !files) {
        free(sets);
        free(files);
        fprintf(stderr, "reel validate: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            validate_usage(stdout);
            free(sets);
            free(files);
            return 0;
        } else if (!strcmp(a, "--set")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "reel validate: --set needs KEY.PATH=VALUE\n");
                status = 2;
                break;
            }
            sets[n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[n_sets++] = a + 6;
        } else if (!strcmp(a, "--print")) {
            print = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "reel validate: unknown option '%s' (see reel validate --help)\n", a);
            status = 2;
            break;
        } else {
            files[n_files++] = a;
        }
    }
    if (!status && !n_files) {
        validate_usage(stderr);
        status = 2;
    }
    int saw_spec = 0, saw_model = 0, saw_other = 0;
    for (int i = 0; !status && i < n_files; i++) {
        struct reel_spec_overrides ov = {.sets = sets, .n_sets = n_sets};
        struct reel_spec spec;
        struct reel_diag diag = {0};
        int rc = reel_spec_load(files[i], &ov, &spec, &diag);
        reel_diag_print(&diag, files[i]);
        if (rc == REEL_OK) {
            printf("OK %s\n", files[i]);
            if (print) {
                char *text = reel_spec_canonical(&spec);
                if (text)
                    fputs(text, stdout);
                free(text);
            }
        }
        saw_spec |= rc == REEL_E_SPEC;
        saw_model |= rc == REEL_E_MODEL;
        saw_other |= rc != REEL_OK && rc != REEL_E_SPEC && rc != REEL_E_MODEL;
        reel_spec_free(&spec);
        reel_diag_free(&diag);
    }
    free(sets);
    free(files);
    fflush(stdout);
    if (status)
        return status;
    return saw_spec ? 2 : saw_model ? 3 : saw_other ? 1 : 0;
}

/* ------------------------------------------------------------------ info */

static const char *with_commas(int64_t v, char *buf, size_t n)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t len = strlen(digits), o = 0;
    if (v < 0 && o + 1 < n)
        buf[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

static int path_exists(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0;
}

/* "present: 825 tensors, BF16" or why not. */
static void describe_weights(const char *label, const char *path, int expected_tensors)
{
    printf("    %-13s %s\n", label, path ? path : "(none)");
    if (!path)
        return;
    if (!path_exists(path)) {
        size_t n = strlen(path);
        char pth[4200];
        if (n > 12 && !strcmp(path + n - 12, ".safetensors")) {
            snprintf(pth, sizeof pth, "%.*s.pth", (int)(n - 12), path);
            if (path_exists(pth)) {
                printf("                  missing; %s is there: convert it with\n"
                       "                  python3 scripts/convert_pth.py %s %s\n",
                       pth, pth, path);
                return;
            }
        }
        printf("                  missing\n");
        return;
    }
    struct reel_weights *w = NULL;
    struct reel_err err = {0};
    if (reel_weights_open(path, &w, &err)) {
        printf("                  unreadable: %s\n", err.msg);
        return;
    }
    int counts[REEL_DTYPE_COUNT] = {0};
    int total = reel_weights_count(w);
    for (int i = 0; i < total; i++) {
        const struct reel_tensor *t = reel_weights_at(w, i);
        if (t && (unsigned)t->dtype < REEL_DTYPE_COUNT)
            counts[t->dtype]++;
    }
    char dtypes[256] = "";
    size_t used = 0;
    for (int d = 0; d < REEL_DTYPE_COUNT; d++) {
        if (!counts[d])
            continue;
        int k = snprintf(dtypes + used, sizeof dtypes - used, "%s%s x%d", used ? ", " : "",
                         reel_dtype_name((enum reel_dtype)d), counts[d]);
        if (k > 0 && (size_t)k < sizeof dtypes - used)
            used += (size_t)k;
    }
    printf("                  present: %d tensors (%s)%s\n", total, dtypes,
           expected_tensors > 0 && total != expected_tensors ? " - the config expects a different count"
                                                             : "");
    reel_weights_close(w);
}

static void info_usage(FILE *out)
{
    fprintf(out,
            "usage: reel info MODEL\n"
            "\n"
            "Describes a model: MODEL is a name in the configs directory (reel-default,\n"
            "wan2.1-t2v-1.3b, wan2.2-ti2v-5b, ...) or the path of a model config file.\n"
            "Prints the architecture, parameter counts, the render defaults, and each weight\n"
            "file with whether it is present and the dtypes it holds.\n"
            "\n"
            "  -h, --help   this help\n"
            "\n"
            "exit status: 0 done, 2 unknown model or bad arguments, 3 broken model config\n");
}

int reel_info_main(int argc, char **argv)
{
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            info_usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "reel info: unknown option '%s' (see reel info --help)\n", argv[i]);
            return 2;
        }
        if (model) {
            fprintf(stderr, "reel info: one MODEL at a time\n");
            return 2;
        }
        model = argv[i];
    }
    if (!model) {
        info_usage(stderr);
        return 2;
    }
    char *path = NULL;
    struct reel_err err = {0};
    if (reel_model_config_find(model, NULL, NULL, &path, &err)) {
        fprintf(stderr, "reel info: %s\n", err.msg);
        return err.code == REEL_E_OTHER ? 1 : 2;
    }
    struct reel_model_config m;
    struct reel_diag diag = {0};
    int rc = reel_model_config_load(path, NULL, &m, &diag);
    reel_diag_print(&diag, path);
    reel_diag_free(&diag);
    free(path);
    if (rc != REEL_OK)
        return rc == REEL_E_MODEL ? 3 : 1;

    struct reel_model_params p;
    reel_model_config_params(&m, &p);
    char a[40], b[40], c[40];
    const struct reel_wan_dit_config *d = &m.dit.cfg;
    const struct reel_wan_vae_config *v = &m.vae.cfg;
    static const char *types[] = {"t2v", "i2v", "ti2v"};
    printf("%s  (%s)\n", m.name, m.path);
    printf("  family        %s\n", reel_model_family_name(m.family));
    if (*m.description)
        printf("  description   %s\n", m.description);
    if (!m.trained)
        printf("  trained       NO: placeholder weights, output is noise-like\n");
    printf("  DiT           WanModel %s: dim %d, ffn %d, %d heads, %d layers, patch %dx%dx%d,\n"
           "                in/out %d/%d, text %dx%d\n",
           types[d->model_type], d->dim, d->ffn_dim, d->num_heads, d->num_layers, d->patch[0],
           d->patch[1], d->patch[2], d->in_dim, d->out_dim, d->text_len, d->text_dim);
    printf("                %d tensors, %s parameters\n", p.dit_tensors, with_commas(p.dit, a, sizeof a));
    char mult[64] = "";
    size_t used = 0;
    for (int i = 0; i < v->n_mult; i++) {
        int k = snprintf(mult + used, sizeof mult - used, "%s%d", i ? "," : "", v->dim_mult[i]);
        if (k > 0 && (size_t)k < sizeof mult - used)
            used += (size_t)k;
    }
    printf("  VAE           Wan%s VAE: z %d, dim %d", v->version == 22 ? "2.2" : "2.1", v->z_dim, v->dim);
    if (v->version == 22)
        printf(", decoder dim %d", v->dec_dim);
    printf(", dim_mult [%s], stride %dx%dx%d\n", mult, m.vae.temporal_stride, m.vae.spatial_stride,
           m.vae.spatial_stride);
    printf("                %d tensors, %s parameters\n", p.vae_tensors, with_commas(p.vae, b, sizeof b));
    printf("  text encoder  %s: dim %d, %d layers, %d heads, ffn %d, vocab %d, text_len %d\n",
           m.text_encoder.kind, m.text_encoder.dim, m.text_encoder.num_layers,
           m.text_encoder.num_heads, m.text_encoder.dim_ffn, m.text_encoder.vocab,
           m.text_encoder.text_len);
    printf("                %d tensors, %s parameters\n", p.text_tensors, with_commas(p.text, c, sizeof c));
    if (m.audio.enabled) {
        const struct reel_ovi_audio_config *at = &m.audio.tower;
        const struct reel_mmaudio_vae_config *av = &m.audio.vae.cfg;
        const struct reel_bigvgan_config *bv = &m.audio.vocoder.cfg;
        /* the fusion checkpoint's counts above cover both towers */
        printf("  audio tower   WanModel t2a: dim %d, ffn %d, %d heads, %d layers, in/out %d/%d,\n"
               "                rope scale %g (fused block by block with the DiT; counted above)\n",
               at->dim, at->ffn_dim, at->num_heads, at->num_layers, at->in_dim, at->out_dim,
               at->rope_scale);
        char cm[64] = "", ups[64] = "";
        size_t u1 = 0, u2 = 0;
        for (int i = 0; i < av->n_mult; i++) {
            int k = snprintf(cm + u1, sizeof cm - u1, "%s%d", i ? "," : "", av->ch_mult[i]);
            if (k > 0 && (size_t)k < sizeof cm - u1)
                u1 += (size_t)k;
        }
        for (int i = 0; i < bv->n_ups; i++) {
            int k = snprintf(ups + u2, sizeof ups - u2, "%s%d", i ? "x" : "", bv->upsample_rates[i]);
            if (k > 0 && (size_t)k < sizeof ups - u2)
                u2 += (size_t)k;
        }
        printf("  audio VAE     MMAudio mel VAE: %d mels, latent %d, hidden %d, ch_mult [%s],\n"
               "                %d mel frames a latent%s\n",
               av->data_dim, av->embed_dim, av->hidden_dim, cm, m.audio.mel_per_latent,
               av->encoder ? ", with encoder" : "");
        printf("                %d tensors, %s parameters\n", p.audio_vae_tensors,
               with_commas(p.audio_vae, a, sizeof a));
        printf("  vocoder       BigVGAN: %d mels, %d channels, upsample %s (hop %d),\n"
               "                %d Hz, %.4g audio latents a second\n",
               bv->num_mels, bv->upsample_initial_channel, ups, m.audio.hop, m.audio.sample_rate,
               m.audio.latents_per_second);
        printf("                %d tensors, %s parameters\n", p.vocoder_tensors,
               with_commas(p.vocoder, a, sizeof a));
    }
    printf("  total         %s parameters\n",
           with_commas(p.dit + p.vae + p.text + p.audio_vae + p.vocoder, a, sizeof a));
    printf("  sizes         multiples of %dx%d; frames 1 + %dk, at most %d\n", m.size_multiple_w,
           m.size_multiple_h, m.frame_step, m.max_frames);
    printf("  defaults      %dx%d, %d frames at %g fps (%.3g s), %s, %d steps, shift %g, guidance %g\n",
           m.defaults.width, m.defaults.height, m.defaults.frames, m.defaults.fps,
           m.defaults.frames / m.defaults.fps, reel_flow_solver_name(m.defaults.solver),
           m.defaults.steps, m.defaults.shift, m.defaults.guidance);
    printf("  files         (weights_dir %s)\n", m.weights_dir);
    describe_weights("dit", m.dit.weights, p.dit_tensors);
    describe_weights("vae", m.vae.weights, p.vae_tensors);
    describe_weights("text_encoder", m.text_encoder.weights, p.text_tensors);
    if (m.audio.enabled) {
        describe_weights("audio_vae", m.audio.vae.weights, p.audio_vae_tensors);
        describe_weights("vocoder", m.audio.vocoder.weights, p.vocoder_tensors);
    }
    printf("    %-13s %s\n                  %s\n", "tokenizer", m.text_encoder.tokenizer,
           path_exists(m.text_encoder.tokenizer) ? "present" : "missing");
    reel_model_config_free(&m);
    return 0;
}
