# reel: build, set-up, tests, benchmarks.
#   make          build reel and the tests
#   make demo     install what is missing, build, render examples/hello.yaml
#   make test     install what is missing, build, run every test
#   make bench    benchmarks (ours beside the reference)
#   make train-default  train the default model (~9 h CPU, resumable; scripts/train/README.md)
#   make eval-default   score the default model on held-out prompts
#   make asan     build and run the tests under AddressSanitizer + UBSan

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
# Flags every build needs; kept apart from CFLAGS so `make CFLAGS=...` (the
# sanitizer builds) changes optimisation and instrumentation only.
ARCH   ?= -march=native
REEL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. -pthread $(ARCH)
CXX     ?= g++
REEL_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -I. -pthread $(ARCH)
# Evaluated lazily: `make deps` installs the packages before the sub-make that builds.
PKG_LIBS = $(shell pkg-config --libs libavformat libavcodec libswscale libswresample libavutil yaml-0.1 2>/dev/null)
LDLIBS  += $(PKG_LIBS) -lsentencepiece -lopenblas -lstdc++ -lm -pthread

# Debian packages the build and the tests need (installed by `make deps` as root).
DEB_PACKAGES = build-essential pkg-config libopenblas-dev libyaml-dev \
  libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev ffmpeg \
  libsentencepiece-dev sentencepiece python3 python3-numpy python3-torch python3-yaml

LIB_SRC  := $(sort $(wildcard kernels/*.c stages/*.c audio/*.c pipeline/*.c))
LIB_SRC  := $(filter-out pipeline/main.c,$(LIB_SRC))
# C++ only where a maintained C++ library has no C API (SentencePiece), behind a C header.
LIB_CXX  := $(sort $(wildcard kernels/*.cc stages/*.cc audio/*.cc pipeline/*.cc))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cc=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard tests/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tool_*.c))
TOOL_BIN := $(TOOL_SRC:tests/%.c=$(BUILD)/tests/%)
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps demo test bench asan clean
all: $(BUILD)/reel $(TEST_BIN) $(BENCH_BIN) $(TOOL_BIN)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(REEL_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cc $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CXX) $(REEL_CXXFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libreel.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/reel: $(BUILD)/pipeline/main.o $(BUILD)/libreel.a
	$(CC) $(REEL_CFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)
	if [ "$(BUILD)" = build ]; then ln -sf build/reel reel; fi

$(BUILD)/tests/%: tests/%.c $(BUILD)/libreel.a $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(REEL_CFLAGS) $(CFLAGS) $< $(BUILD)/libreel.a -o $@ $(LDLIBS)

# --- default model (untrained placeholder) ---
# Until the trained default model exists, reel-default's weights are seeded
# random numbers (`reel init-weights`: F32, the same bytes on every machine)
# and renders with them are noise. Its tokenizer is trained here on the
# committed corpus (scripts/make_default_corpus.py). spm_train is
# byte-deterministic only with everything below fixed: the model stores the
# trainer spec (input path, model prefix, thread count), and more than one
# thread changes the scores, so run from the checkout root with these flags.
# Remove this block when the trained weights ship (`trained: true` configs
# are refused by init-weights).
DEFAULT_MODEL_DIR = configs/reel-default
DEFAULT_MODEL_WEIGHTS = $(DEFAULT_MODEL_DIR)/fusion.safetensors $(DEFAULT_MODEL_DIR)/vae.safetensors \
  $(DEFAULT_MODEL_DIR)/text_encoder.safetensors $(DEFAULT_MODEL_DIR)/audio_vae.safetensors \
  $(DEFAULT_MODEL_DIR)/vocoder.safetensors
DEFAULT_SPM_FLAGS = --model_type=unigram --vocab_size=512 --byte_fallback=true \
  --character_coverage=1.0 --hard_vocab_limit=false --num_threads=1 --input_sentence_size=0 \
  --shuffle_input_sentence=false --random_seed=1 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 \
  --minloglevel=2

.PHONY: default-model clean-default-model
all: default-model
default-model: $(DEFAULT_MODEL_WEIGHTS) $(DEFAULT_MODEL_DIR)/tokenizer.model

$(DEFAULT_MODEL_DIR)/tokenizer.model: $(DEFAULT_MODEL_DIR)/corpus.txt
	spm_train --input=$(DEFAULT_MODEL_DIR)/corpus.txt --model_prefix=$(DEFAULT_MODEL_DIR)/tokenizer \
	  $(DEFAULT_SPM_FLAGS) >/dev/null

$(DEFAULT_MODEL_WEIGHTS) &: configs/reel-default.yaml $(BUILD)/reel
	$(BUILD)/reel init-weights --force configs/reel-default.yaml

clean: clean-default-model
clean-default-model:
	rm -f $(DEFAULT_MODEL_WEIGHTS) $(DEFAULT_MODEL_DIR)/tokenizer.model $(DEFAULT_MODEL_DIR)/tokenizer.vocab
# --- end default model ---

# --- training the default model (scripts/train/README.md) ---
# About 9 hours of a 2-core CPU in all, in stages, each resumable: run it
# again after a stop and every stage continues from its last checkpoint (a
# finished stage only re-exports). State lives in TRAIN_DIR: a sitting may be
# a fresh machine, so its checkpoints are committed (.gitignore lets through
# ckpt.pt, or ckpt.d/ for a state over 90 MB in parts, logs and results; the
# datasets and latents are remade from seeds).
TRAIN_DIR ?= scripts/train/state
TRAIN_THREADS ?= 2
PY = /usr/bin/python3
.PHONY: train-default
train-default: deps
	$(MAKE) all
	$(PY) scripts/train/train_vae.py --out $(TRAIN_DIR)/vae --steps 8000 --lr 2e-4 --fg-weight 10 \
	  --rim-weight 2 --temporal 1.0 --crop 32,64 --frames 1,5,9,17,45 --batch 4 \
	  --object-crop-p 0.8 --amp bf16 --threads $(TRAIN_THREADS) --resume
	$(PY) scripts/train/train_vae.py --out $(TRAIN_DIR)/vae2x --init-from $(TRAIN_DIR)/vae \
	  --steps 3000 --lr 1e-4 --warmup 50 --fg-weight 10 --rim-weight 2 --temporal 2.0 --impact-p 0.5 \
	  --crop 32,64 --frames 1,5,9,17,45 --batch 4 --object-crop-p 0.8 --amp bf16 \
	  --threads $(TRAIN_THREADS) --resume
	$(PY) scripts/train/train_audio.py --out $(TRAIN_DIR)/audio --threads $(TRAIN_THREADS) --resume
	$(PY) scripts/train/train_dit.py prepare --out $(TRAIN_DIR)/dit --vae $(TRAIN_DIR)/vae2x \
	  --audio $(TRAIN_DIR)/audio --threads $(TRAIN_THREADS)
	# half the steps on time crops (more clips a step), the object's latent
	# pixels weigh 9 (--fg-weight 8) and given frames 8 from the start; a
	# second cycle (warm-up + cosine from lr 2e-4) to step 20 000. A part
	# the run is already past does nothing.
	$(PY) scripts/train/train_dit.py train --out $(TRAIN_DIR)/dit --steps 10000 --time-crop 0.5 \
	  --crop-min 7 --fg-weight 8 --given-weight-from 0 --fused-batch --threads $(TRAIN_THREADS) --resume
	$(PY) scripts/train/train_dit.py train --out $(TRAIN_DIR)/dit --steps 20000 --cycle-start 10000 \
	  --lr 2e-4 --time-crop 0.5 --crop-min 7 --fg-weight 8 --given-weight-from 0 --fused-batch \
	  --threads $(TRAIN_THREADS) --resume
	$(PY) scripts/train/export_default.py --train $(TRAIN_DIR)

# --- evaluation (issue 6) ---
# Renders held-out prompts with the default model through reel, reads the MP4s
# back and scores colour / shape adherence, motion coherence and audio-video
# sync (scripts/eval_default.py, metrics in scripts/eval_metrics.py). Ends with
#   eval: colour_acc=X shape_acc=X coherent=X sync_1f=X n=N render_s_per_clip=X
#   make eval-default [PROMPTS=FILE] [EVAL_OUT=DIR] [EVAL_ARGS="--n 8 --steps 10"]
# PROMPTS: one caption a line (default: the 50 held-out prompts); EVAL_OUT keeps
# the clips and eval.json (per-clip details). EVAL_FRAMES (default 8) image-to-
# video and first/last-frame renders report, on the line before, the PSNR of
# the given frames against their VAE round trip:
#   eval-frames: i2v_first_psnr=X flf_first_psnr=X flf_last_psnr=X min_psnr=X n=N
# and, before it, how many frames had specks or a split object instead of one:
#   eval-objects: frames_without_object=N/M clips_without_object=K n=N
PROMPTS ?= tests/eval/heldout_prompts.txt
EVAL_OUT ?=
EVAL_ARGS ?=
EVAL_FRAMES ?= 8
.PHONY: eval-default
eval-default: all
	/usr/bin/python3 scripts/eval_default.py --reel $(BUILD)/reel --prompts $(PROMPTS) --frames $(EVAL_FRAMES) \
	  $(if $(EVAL_OUT),--out $(EVAL_OUT)) $(EVAL_ARGS)

# Installs missing Debian packages (needs root; a no-op when all are present).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: missing packages:$$missing (run as root to install)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Renders examples/hello.yaml with the default model (examples/hello.mp4).
demo: deps
	$(MAKE) all
	./build/reel render examples/hello.yaml

# Every test, then the bad-input and golden tests again under ASan + UBSan.
test: deps
	$(MAKE) all
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" all
	./tests/run_tests.sh $(BUILD) build-asan

# The whole suite under ASan + UBSan.
asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" all
	./tests/run_tests.sh build-asan

bench: deps
	$(MAKE) all
	./tests/run_bench.sh $(BUILD)

clean:
	rm -rf build build-asan reel
