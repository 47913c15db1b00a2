#!/usr/bin/env bash
# The whole recipe on the built-in synthetic corpus: render -> prepare -> vocab -> train -> generate -> score.
# Usage: scripts/run_synthetic_recipe.sh [WORK_DIR]   (needs the venv's bin on PATH; `make demo` does that)
# Sizes can be overridden from the environment, e.g. N_TRAIN=300 MAX_UPDATE=100 for a smoke run.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mkdir -p "${1:-$REPO/work_dirs/synthetic_demo}" && cd "${1:-$REPO/work_dirs/synthetic_demo}" && pwd)
N_TRAIN=${N_TRAIN:-1500}
N_VAL=${N_VAL:-100}
N_TEST=${N_TEST:-200}
MAX_UPDATE=${MAX_UPDATE:-2400}
SEED=${SEED:-1}
CORPUS=$WORK/corpus
DATA=$WORK/data
CKPT=$WORK/checkpoints
GEN=$WORK/generate
cd "$REPO"
start=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }

step "1/6 render the synthetic corpus in How2Sign's official layout (full videos + realigned CSVs, a few broken rows)"
python scripts/render_synthetic_corpus.py --out "$CORPUS" --layout full \
  --train "$N_TRAIN" --val "$N_VAL" --test "$N_TEST" --seed "$SEED"

step "2/6 cut clips at the realigned timestamps, validate, write manifests and reports"
# the broken rows (missing video, empty caption, end past the video's end) are reported and counted
python scripts/prepare_how2sign.py --csv-dir "$CORPUS/raw" --videos "$CORPUS/raw/videos" --out "$DATA" --lowercase

step "3/6 sentencepiece vocabulary, fairseq dictionary and data config"
python scripts/build_vocab.py --data "$DATA" --vocab-size 100 --lowercase \
  --target-fps 25 --num-frames 36 --sampling-rate 3 --resize-short-side 52 --crop-size 48
# control: the same test captions, each paired with another clip's video
python scripts/make_control_split.py --data "$DATA" --split test --out-split test_swapped --seed "$SEED"

step "4/6 train (fairseq-hydra-train, configs/quick_synthetic.yaml)"
fairseq-hydra-train --config-dir "$REPO/configs" --config-name quick_synthetic \
  task.data="$DATA" common.user_dir="$REPO/ssvp_plugin" checkpoint.save_dir="$CKPT" \
  optimization.max_update="$MAX_UPDATE" common.seed="$SEED" 2>&1 | tee "$WORK/train.log" | grep -E "valid on|done training|Error|error" || true
test -f "$CKPT/checkpoint_best.pt" || { echo "training produced no checkpoint; see $WORK/train.log" >&2; exit 1; }

mkdir -p "$GEN"
step "5/6 beam search on test and on the swapped-video control (fairseq-generate, beam 5)"
for subset in test test_swapped; do
  for scoring in sacrebleu wer; do
    fairseq-generate "$DATA" --user-dir "$REPO/ssvp_plugin" --task how2sign_video \
      --path "$CKPT/checkpoint_best.pt" --gen-subset "$subset" --beam 5 --max-tokens 4000 \
      --scoring "$scoring" --results-path "$GEN/$subset-$scoring" > "$GEN/$subset-$scoring.log" 2>&1
    tail -n 1 "$GEN/$subset-$scoring/generate-$subset.txt"
  done
done

step "6/6 score (sacrebleu BLEU-1..4, chrF; WER with jiwer)"
for subset in test test_swapped; do
  echo "--- $subset"
  python scripts/score_generate.py "$GEN/$subset-sacrebleu/generate-$subset.txt" --json "$WORK/scores_$subset.json"
done
step "done; results in $WORK (scores_test.json, scores_test_swapped.json). All figures are on SYNTHETIC data."
