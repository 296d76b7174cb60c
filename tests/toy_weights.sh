# Sourced by the shell tests that render with a toy model config
# (tests/configs/tiny-*.yaml): writes its seeded weights with `reel
# init-weights` into DIR (the folder its ${REEL_TINY_*_WEIGHTS} names; the
# caller exports that) beside the default model's tokenizer, and reports.
#   toy_weights LABEL CONFIG DIR FILE...   ok/FAIL - LABEL: every FILE written
toy_weights() {
    tw_label=$1 tw_cfg=$2 tw_dir=$3
    shift 3
    mkdir -p "$tw_dir"
    cp configs/reel-default/tokenizer.model "$tw_dir/" 2>/dev/null
    tw_ok=1
    "$REEL" init-weights "$tw_cfg" >"$tw_dir.init.log" 2>&1 || tw_ok=0
    for tw_f in "$@"; do
        [ -s "$tw_dir/$tw_f" ] || tw_ok=0
    done
    if [ "$tw_ok" = 1 ]; then
        echo "ok - $tw_label"
    else
        cat "$tw_dir.init.log"
        echo "FAIL - $tw_label"
    fi
}
