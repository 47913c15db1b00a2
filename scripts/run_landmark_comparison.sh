#!/usr/bin/env bash
# Landmarks next to video, and their ensembles, on the How2Sign-like synthetic corpus (SYNTHETIC data;
# README, Results). Run after scripts/run_encoder_comparison.sh, whose data root and video model it reuses:
#   1. the corpus's OpenPose keypoints (render_synthetic_corpus.py --keypoints-only, with detector noise)
#      -> a keypoint data root with the video model's vocabulary (prepare_keypoints.py)
#   2. the landmark baseline (feature_slt, configs/landmarks_quick.yaml)
#   3. test splits: the swapped-input control (the same swap for both modalities) and the video degraded
#      (blurred; frames lost), the keypoints unchanged
#   4. video alone, landmarks alone, and the ensemble (task sign_multimodal) at equal and 0.7/0.3 weights
#
# Usage: scripts/run_landmark_comparison.sh [WORK_DIR]   (venv bin on PATH; `make landmark-comparison`)
# Environment: CORPUS (the rendered corpus; default WORK_DIR/corpus), VIDEO (video model name in WORK_DIR:
# vit or hiera; default vit), MAX_UPDATE, SEED, BLUR (sigma in pixels, default 2), DROP (default 0.5).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(cd "${1:-$REPO/work_dirs/encoder_comparison}" && pwd)
DATA=$WORK/data
KP=$WORK/landmarks_data
CORPUS=${CORPUS:-$WORK/corpus}
VIDEO=${VIDEO:-vit}
MAX_UPDATE=${MAX_UPDATE:-1200}
SEED=${SEED:-1}
BLUR=${BLUR:-2}
DROP=${DROP:-0.5}
cd "$REPO"
start=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }
test -f "$WORK/$VIDEO/checkpoints/checkpoint_best.pt" || { echo "no video model in $WORK/$VIDEO: run scripts/run_encoder_comparison.sh first" >&2; exit 1; }

if [ ! -f "$KP/config.yaml" ]; then
  if [ ! -f "$CORPUS/keypoints/synthetic_settings.json" ]; then
    step "1/4 keypoints of the rendered corpus (--keypoints-only, with detector noise)"
    python scripts/render_synthetic_corpus.py --out "$CORPUS" --layout full --style how2sign --words-per-sentence 2 10 \
      --train 1500 --val 100 --test 200 --seed "$SEED" --keypoints-only --keypoint-noise
  fi
  step "1/4 keypoint data root: the video data root's ids, captions and vocabulary"
  python scripts/prepare_keypoints.py --keypoints "$CORPUS/keypoints" --manifests "$DATA" --splits train val test \
    --out "$KP" --vocab-from "$DATA" --fps 25 --frame-size 640 360 | tail -n 12
fi

step "2/4 test splits: the control swaps both modalities alike; degraded video, keypoints unchanged"
if [ ! -f "$KP/test_swapped.tsv" ]; then
  cp "$DATA/test_swapped.tsv" "$KP/test_swapped.tsv"
  python - "$DATA/test_swapped.tsv" "$KP/features" <<'EOF'
import csv, sys
from ssvp_slt.features.store import copy_clips
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    pairs = [(r["id"], r["video_from"]) for r in csv.DictReader(f, delimiter="\t")]
print(f"{sys.argv[2]}/test_swapped: {copy_clips(sys.argv[2], 'test', 'test_swapped', pairs, tag='control')} clips, donors' keypoints")
EOF
fi
[ -f "$DATA/test_blurred.tsv" ] || python scripts/make_degraded_split.py --data "$DATA" --split test --out-split test_blurred --blur "$BLUR" --features "$KP/features"
[ -f "$DATA/test_dropped.tsv" ] || python scripts/make_degraded_split.py --data "$DATA" --split test --out-split test_dropped --drop "$DROP" --seed "$SEED" --features "$KP/features"

step "3/4 the landmark baseline (feature_slt, landmarks_quick, $MAX_UPDATE updates)"
if ! grep -q "done training" "$WORK/landmarks/train.log" 2>/dev/null; then
  mkdir -p "$WORK/landmarks"
  fairseq-hydra-train --config-dir "$REPO/configs" --config-name landmarks_quick task.data="$KP" \
    common.user_dir="$REPO/ssvp_plugin" checkpoint.save_dir="$WORK/landmarks/checkpoints" common.seed="$SEED" \
    optimization.max_update="$MAX_UPDATE" > "$WORK/landmarks/train.log" 2>&1 || { tail -n 30 "$WORK/landmarks/train.log" >&2; exit 1; }
fi

grep -q "done training" "$WORK/$VIDEO/train.log" || { echo "the video model in $WORK/$VIDEO is still training: re-run when it is done" >&2; exit 1; }
step "4/4 generate and score (beam 5)"
score() {  # run name, subset, generate args...
  local name=$1 subset=$2; shift 2
  local out="$WORK/compare/$name"
  mkdir -p "$out"
  [ -f "$WORK/scores_cmp_${name}_$subset.json" ] && return
  fairseq-generate "$@" --user-dir "$REPO/ssvp_plugin" --gen-subset "$subset" --beam 5 --max-tokens 4096 \
    --results-path "$out" > "$out/generate-$subset.log" 2>&1 || { tail -n 20 "$out/generate-$subset.log" >&2; exit 1; }
  python scripts/score_generate.py "$out/generate-$subset.txt" --json "$WORK/scores_cmp_${name}_$subset.json" > /dev/null
}
V=$WORK/$VIDEO/checkpoints/checkpoint_best.pt
L=$WORK/landmarks/checkpoints/checkpoint_best.pt
for subset in test test_swapped test_blurred test_dropped; do
  score video "$subset" "$DATA" --task how2sign_video --path "$V"
  score ensemble_equal "$subset" "$DATA" --task sign_multimodal --features "$KP/features" --path "$V:$L"
  score ensemble_0.7_0.3 "$subset" "$DATA" --task sign_multimodal --features "$KP/features" --path "$V:$L" --ensemble-weights 0.7,0.3
done
for subset in test test_swapped; do
  score landmarks "$subset" "$KP" --task sign_features --path "$L"
done

step "done. SYNTHETIC How2Sign-like test set (200 sentences), BLEU-4 / WER %:"
python - "$WORK" <<'EOF'
import json, os, sys
work = sys.argv[1]
subsets = ["test", "test_swapped", "test_blurred", "test_dropped"]
print(f"{'model':<18}" + "".join(f"{s:>22}" for s in subsets))
for name in ("video", "landmarks", "ensemble_equal", "ensemble_0.7_0.3"):
    cells = []
    for s in subsets:
        p = f"{work}/scores_cmp_{name}_{s}.json"
        if os.path.exists(p):
            m = json.load(open(p))["metrics"]
            cells.append(f"{m['bleu_4']:.2f} / {m['wer']:.1f}")
        else:
            cells.append("(same input as test)" if name == "landmarks" else "-")
    print(f"{name:<18}" + "".join(f"{c:>22}" for c in cells))
EOF
