#!/usr/bin/env bash
# Does MAE pretraining help? The synthetic experiment behind README's "Pretraining" table.
#
#   scripts/run_pretraining_experiment.sh [WORK_DIR]      (venv bin on PATH; `make pretrain-experiment` does that)
#
# A corpus of N_TRAIN train sentences is rendered; only the first N_LABELLED keep their captions for
# fine-tuning, all N_TRAIN train videos (captions ignored) are the unlabelled pretraining set. The tiny
# encoder is pretrained by MAE (configs/pretrain_mae_tiny.yaml), then the same fine-tuning
# (configs/quick_synthetic.yaml, same seed, FINETUNE_UPDATES updates) runs from scratch and from the
# pretrained encoder; both are scored on the same test set with beam 5. Everything is SYNTHETIC data.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mkdir -p "${1:-$REPO/work_dirs/pretraining_experiment}" && cd "${1:-$REPO/work_dirs/pretraining_experiment}" && pwd)
N_TRAIN=${N_TRAIN:-1800}
N_LABELLED=${N_LABELLED:-300}
N_VAL=${N_VAL:-100}
N_TEST=${N_TEST:-200}
PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-3000}
FINETUNE_UPDATES=${FINETUNE_UPDATES:-1200}
SEED=${SEED:-1}
DATA=$WORK/data
cd "$REPO"
start=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }

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

step "3/6 MAE pretraining on train_all ($PRETRAIN_UPDATES updates; the unlabelled_video task ignores captions)"
fairseq-hydra-train --config-dir "$REPO/configs" --config-name pretrain_mae_tiny \
  task.data="$DATA" common.user_dir="$REPO/ssvp_plugin" checkpoint.save_dir="$WORK/mae" \
  dataset.train_subset=train_all optimization.max_update="$PRETRAIN_UPDATES" common.seed="$SEED" \
  > "$WORK/pretrain.log" 2>&1 || { tail -n 30 "$WORK/pretrain.log" >&2; exit 1; }
grep -E "valid on" "$WORK/pretrain.log" | tail -n 1

for init in scratch pretrained; do
  step "4/6 fine-tune from $init on $N_LABELLED labelled clips ($FINETUNE_UPDATES updates)"
  extra=()
  if [ "$init" = pretrained ]; then extra=(++model.pretrained_encoder="$WORK/mae/checkpoint_last.pt"); fi
  fairseq-hydra-train --config-dir "$REPO/configs" --config-name quick_synthetic \
    task.data="$DATA" common.user_dir="$REPO/ssvp_plugin" checkpoint.save_dir="$WORK/ft_$init" \
    optimization.max_update="$FINETUNE_UPDATES" common.seed="$SEED" dataset.validate_interval=10 "${extra[@]}" \
    > "$WORK/finetune_$init.log" 2>&1 || { tail -n 30 "$WORK/finetune_$init.log" >&2; exit 1; }
  grep -E "valid on" "$WORK/finetune_$init.log" | tail -n 1

  step "5/6 beam search on test ($init)"
  fairseq-generate "$DATA" --user-dir "$REPO/ssvp_plugin" --task how2sign_video \
    --path "$WORK/ft_$init/checkpoint_best.pt" --gen-subset test --beam 5 --max-tokens 4000 \
    --scoring sacrebleu --results-path "$WORK/generate_$init" > "$WORK/generate_$init.log" 2>&1
  python scripts/score_generate.py "$WORK/generate_$init/generate-test.txt" --json "$WORK/scores_$init.json"
done

step "6/6 summary (SYNTHETIC data; test set of $N_TEST clips, beam 5)"
python - "$WORK" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
print(f"{'encoder init':<14} {'BLEU-4':>7} {'BLEU-1':>7} {'WER':>6}")
for init in ("scratch", "pretrained"):
    m = json.loads((work / f"scores_{init}.json").read_text())["metrics"]
    print(f"{init:<14} {m['bleu_4']:>7.1f} {m['bleu_1']:>7.1f} {m['wer']:>6.1f}")
PY
