#!/usr/bin/env bash
# Does MAE pretraining help? The synthetic experiment behind README's "Pretraining" table.
#
#   scripts/run_pretraining_experiment.sh [WORK_DIR]      (venv bin on PATH; `make pretrain-experiment` does that)
#
# A corpus of N_TRAIN train sentences is rendered; only the first N_LABELLED keep their captions for
# fine-tuning, all N_TRAIN train videos (captions ignored) are the unlabelled pretraining set. The tiny
# encoder is pretrained by MAE (configs/pretrain_mae_tiny.yaml), then the same fine-tuning
# (configs/quick_synthetic.yaml, same seed, FINETUNE_UPDATES updates) runs from scratch and from the
# pretrained encoder; both are scored on the same test set with beam 5, for each seed in FINETUNE_SEEDS.
# Everything is SYNTHETIC data. A re-run skips finished steps (corpus, pretraining, scored fine-tunes).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mkdir -p "${1:-$REPO/work_dirs/pretraining_experiment}" && cd "${1:-$REPO/work_dirs/pretraining_experiment}" && pwd)
N_TRAIN=${N_TRAIN:-1800}
N_LABELLED=${N_LABELLED:-300}
N_VAL=${N_VAL:-100}
N_TEST=${N_TEST:-200}
PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-3000}
FINETUNE_UPDATES=${FINETUNE_UPDATES:-1200}
FINETUNE_SEEDS=${FINETUNE_SEEDS:-1 2 3}
SEED=${SEED:-1}
DATA=$WORK/data
cd "$REPO"
start=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }

if [ ! -f "$DATA/train_all.tsv" ]; then
  step "1/6 render $N_TRAIN train / $N_VAL val / $N_TEST test synthetic sentences"
  python scripts/render_synthetic_corpus.py --out "$WORK/corpus" --layout clips \
    --train "$N_TRAIN" --val "$N_VAL" --test "$N_TEST" --seed "$SEED"
  for split in train val test; do
    python scripts/prepare_how2sign.py --csv "$WORK/corpus/raw/how2sign_$split.csv" --clips "$WORK/corpus/raw/clips" \
      --out "$DATA" --split "$split" --lowercase > /dev/null
  done

  step "2/6 labelled split: the first $N_LABELLED train sentences; unlabelled split: all $N_TRAIN train videos"
  mv "$DATA/train.tsv" "$DATA/train_all.tsv"
  head -n $(( N_LABELLED + 1 )) "$DATA/train_all.tsv" > "$DATA/train.tsv"
  # vocabulary from the labelled captions only; frame settings as in `make demo`
  python scripts/build_vocab.py --data "$DATA" --vocab-size 100 --lowercase \
    --target-fps 25 --num-frames 36 --sampling-rate 3 --resize-short-side 52 --crop-size 48
else
  step "1-2/6 corpus, labelled and unlabelled splits: already in $DATA"
fi

if [ ! -f "$WORK/mae/checkpoint_last.pt" ]; then
  step "3/6 MAE pretraining on train_all ($PRETRAIN_UPDATES updates; the unlabelled_video task ignores captions)"
  fairseq-hydra-train --config-dir "$REPO/configs" --config-name pretrain_mae_tiny \
    task.data="$DATA" common.user_dir="$REPO/ssvp_plugin" checkpoint.save_dir="$WORK/mae" \
    dataset.train_subset=train_all optimization.max_update="$PRETRAIN_UPDATES" common.seed="$SEED" \
    > "$WORK/pretrain.log" 2>&1 || { tail -n 30 "$WORK/pretrain.log" >&2; exit 1; }
  grep -E "valid on" "$WORK/pretrain.log" | tail -n 1
else
  step "3/6 MAE pretraining: already done ($WORK/mae/checkpoint_last.pt)"
fi

for seed in $FINETUNE_SEEDS; do
  for init in scratch pretrained; do
    run=${init}_seed$seed
    if [ -f "$WORK/scores_$run.json" ]; then step "4-5/6 $run: already scored"; continue; fi
    step "4/6 fine-tune from $init, seed $seed, on $N_LABELLED labelled clips ($FINETUNE_UPDATES updates)"
    extra=()
    if [ "$init" = pretrained ]; then extra=(++model.pretrained_encoder="$WORK/mae/checkpoint_last.pt"); fi
    fairseq-hydra-train --config-dir "$REPO/configs" --config-name quick_synthetic \
      task.data="$DATA" common.user_dir="$REPO/ssvp_plugin" checkpoint.save_dir="$WORK/ft_$run" \
      optimization.max_update="$FINETUNE_UPDATES" common.seed="$seed" dataset.validate_interval=10 "${extra[@]}" \
      > "$WORK/finetune_$run.log" 2>&1 || { tail -n 30 "$WORK/finetune_$run.log" >&2; exit 1; }
    grep -E "valid on" "$WORK/finetune_$run.log" | tail -n 1

    step "5/6 beam search on test ($run)"
    fairseq-generate "$DATA" --user-dir "$REPO/ssvp_plugin" --task how2sign_video \
      --path "$WORK/ft_$run/checkpoint_best.pt" --gen-subset test --beam 5 --max-tokens 4000 \
      --scoring sacrebleu --results-path "$WORK/generate_$run" > "$WORK/generate_$run.log" 2>&1
    python scripts/score_generate.py "$WORK/generate_$run/generate-test.txt" --json "$WORK/scores_$run.json"
  done
done

step "6/6 summary (SYNTHETIC data; test set of $N_TEST clips, beam 5)"
python - "$WORK" $FINETUNE_SEEDS <<'PY'
import json, sys
from pathlib import Path
work, seeds = Path(sys.argv[1]), sys.argv[2:]
print(f"{'encoder init':<14} {'seed':>4} {'BLEU-4':>7} {'BLEU-1':>7} {'WER':>6}")
for init in ("scratch", "pretrained"):
    rows = [json.loads((work / f"scores_{init}_seed{seed}.json").read_text())["metrics"] for seed in seeds]
    for seed, m in zip(seeds, rows):
        print(f"{init:<14} {seed:>4} {m['bleu_4']:>7.1f} {m['bleu_1']:>7.1f} {m['wer']:>6.1f}")
    if len(rows) > 1:
        mean = {k: sum(m[k] for m in rows) / len(rows) for k in ("bleu_4", "bleu_1", "wer")}
        print(f"{init:<14} {'mean':>4} {mean['bleu_4']:>7.1f} {mean['bleu_1']:>7.1f} {mean['wer']:>6.1f}")
PY
