#!/usr/bin/env bash
# Encoders side by side on the How2Sign-like synthetic corpus (SYNTHETIC data; README, Results):
#   vit:       the tiny video ViT, trained end to end (mae_vit_slt, preset tiny)
#   hiera:     the tiny SignHiera, trained end to end (mae_vit_slt, preset signhiera_tiny)
#   two_stage: SSVP-SLT's recipe at tiny scale: MAE-pretrain the tiny SignHiera on the training videos
#              (mae_hiera), extract frozen features (scripts/extract_features.py), train feature_slt on them
# Each is scored on the test set and on the swapped-video control (captions paired with other clips' videos):
# a model that reads the video scores far lower on the control.
#
# Usage: scripts/run_encoder_comparison.sh [WORK_DIR]   (venv bin on PATH; `make encoder-comparison`)
# DATA: a prepared How2Sign-like data root (default: render and prepare one in WORK_DIR/data, ~35 min on 2 cores,
# as scripts/run_coverage_experiment.sh STYLE=how2sign does). Sizes from the environment: MAX_UPDATE (translation
# updates per model), PRETRAIN_UPDATES, N_TRAIN, N_VAL, N_TEST, SEED; ONLY="vit hiera two_stage" picks runs
# (separate invocations with different ONLY can run side by side). A re-run skips finished steps.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mkdir -p "${1:-$REPO/work_dirs/encoder_comparison}" && cd "${1:-$REPO/work_dirs/encoder_comparison}" && pwd)
MAX_UPDATE=${MAX_UPDATE:-1200}
PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-1200}
N_TRAIN=${N_TRAIN:-1500}
N_VAL=${N_VAL:-100}
N_TEST=${N_TEST:-200}
SEED=${SEED:-1}
DATA=${DATA:-$WORK/data}
ONLY=${ONLY:-"vit hiera two_stage"}
wanted() { [[ " $ONLY " == *" $1 "* ]]; }
cd "$REPO"
start=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }

if [ ! -f "$DATA/config.yaml" ]; then
  step "render the How2Sign-like corpus (640x360, off-centre signers, 2-10 words per sentence)"
  python scripts/render_synthetic_corpus.py --out "$WORK/corpus" --layout full --style how2sign \
    --words-per-sentence 2 10 --train "$N_TRAIN" --val "$N_VAL" --test "$N_TEST" --seed "$SEED"
  step "cut with a signer crop (64x64), vocabulary, data config (16 frames every 3rd = 1.92 s windows)"
  python scripts/prepare_how2sign.py --csv-dir "$WORK/corpus/raw" --videos "$WORK/corpus/raw/videos" --out "$DATA" \
    --lowercase --signer-crop --short-side 64 | tail -n 25
  python scripts/build_vocab.py --data "$DATA" --vocab-size 200 --lowercase --target-fps 25 --sampling-rate 3 \
    --num-frames 16 --window-stride 8 --max-windows 8 --long-clips stretch --resize-short-side 64 --crop-size 64
fi
[ -f "$DATA/test_swapped.tsv" ] || python scripts/make_control_split.py --data "$DATA" --split test --out-split test_swapped --seed "$SEED"

train() {  # name, config, extra overrides...
  local name=$1 config=$2; shift 2
  if [ -f "$WORK/$name/checkpoints/checkpoint_best.pt" ] && grep -q "done training" "$WORK/$name/train.log" 2>/dev/null; then
    echo "$name: trained already"; return
  fi
  mkdir -p "$WORK/$name"
  fairseq-hydra-train --config-dir "$REPO/configs" --config-name "$config" task.data="$DATA" \
    common.user_dir="$REPO/ssvp_plugin" checkpoint.save_dir="$WORK/$name/checkpoints" common.seed="$SEED" "$@" \
    > "$WORK/$name/train.log" 2>&1 || { tail -n 30 "$WORK/$name/train.log" >&2; exit 1; }
  grep -E "done training" "$WORK/$name/train.log" || true
}

generate() {  # name, task args...
  local name=$1; shift
  for subset in test test_swapped; do
    fairseq-generate "$DATA" --user-dir "$REPO/ssvp_plugin" "$@" --path "$WORK/$name/checkpoints/checkpoint_best.pt" \
      --gen-subset "$subset" --beam 5 --max-tokens 4096 --results-path "$WORK/$name/generate" > "$WORK/$name/generate-$subset.log" 2>&1 \
      || { tail -n 20 "$WORK/$name/generate-$subset.log" >&2; exit 1; }
    python scripts/score_generate.py "$WORK/$name/generate/generate-$subset.txt" --json "$WORK/scores_${name}_$subset.json" | grep -E "BLEU-4|WER"
  done
}

VIDEO_BATCH=(optimization.max_update="$MAX_UPDATE" dataset.batch_size=16 dataset.max_tokens=2048)

if wanted vit; then
  step "1/5 vit: tiny video ViT end to end ($MAX_UPDATE updates)"
  train vit quick_synthetic "${VIDEO_BATCH[@]}" model.preset=tiny
  generate vit --task how2sign_video
fi

if wanted hiera; then
  step "2/5 hiera: tiny SignHiera end to end ($MAX_UPDATE updates)"
  train hiera quick_synthetic "${VIDEO_BATCH[@]}" model.preset=signhiera_tiny
  generate hiera --task how2sign_video
fi

if wanted two_stage; then
  step "3/5 two_stage: MAE pretraining of the tiny SignHiera on the training videos ($PRETRAIN_UPDATES updates)"
  train mae_hiera pretrain_mae_hiera_tiny optimization.max_update="$PRETRAIN_UPDATES"

  step "4/5 two_stage: frozen features of every split (scripts/extract_features.py)"
  python scripts/extract_features.py --data "$DATA" --encoder "$WORK/mae_hiera/checkpoints/checkpoint_last.pt" \
    --out "$WORK/features" --splits train val test test_swapped --workers 1 --no-progress 2>&1 | tee "$WORK/extract.log" | grep -E "clips/s|failed"

  step "5/5 two_stage: feature_slt on the features ($MAX_UPDATE updates)"
  train two_stage two_stage_quick task.features="$WORK/features" optimization.max_update="$MAX_UPDATE"
  generate two_stage --task sign_features --features "$WORK/features"
fi

step "done. SYNTHETIC How2Sign-like test set, beam 5:"
python - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
print(f"{'model':<12} {'test BLEU-4':>11} {'test WER':>9} {'control BLEU-4':>15} {'control WER':>12}")
import os
for name in ("vit", "hiera", "two_stage"):
    if not os.path.exists(f"{work}/scores_{name}_test_swapped.json"):
        continue
    t = json.load(open(f"{work}/scores_{name}_test.json"))["metrics"]
    c = json.load(open(f"{work}/scores_{name}_test_swapped.json"))["metrics"]
    print(f"{name:<12} {t['bleu_4']:>11.2f} {t['wer']:>9.2f} {c['bleu_4']:>15.2f} {c['wer']:>12.2f}")
EOF
