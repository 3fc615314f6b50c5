#!/usr/bin/env bash
# A diagnostic of the noisy person's stuck starts: the defaults' runs of gloomy with a quarter of
# its pairs reversed on seeds 52, 33, 4, 14 (stuck) and 5, 10 (healthy) to 16 rankings, whose last
# iteration refits the reward model afresh from SFT over all 16 rankings with EPOCHS passes (the
# patch bench/ablation/refit16/refit-final.patch, built into the binary RLHF; never in the code),
# then that reward model's scores of 16 of SFT's answers to every held-out prompt
# (`score --answers-of`) and its gloomy-over-neutral gaps (`bench/reward_axis.py`), to set beside
# the warm fits' in bench/ablation/stuck16/judge16/styles.txt. About 8 minutes on 2 cores.
# usage: RLHF=/tmp/binrefit EPOCHS=4 bash bench/refit_axis.sh [WORK_DIR, default /tmp/refit_axis]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RLHF:?the binary built with bench/ablation/refit16/refit-final.patch}"
export BIN="$RLHF" EPOCHS="${EPOCHS:-4}" WORK="${1:-/tmp/refit_axis}/e${EPOCHS:-4}" OUT=bench/ablation/refit16
mkdir -p "$WORK" "$OUT"
one() {
  s=$1; d="$WORK/seed$s"; base=www/assets/base
  REFIT_FINAL=$EPOCHS "$BIN" align --threads 1 --model $base --labeler gloomy --noise 0.25 --seed "$s" --rankings 16 --eval-every 8 --json --out "$d" > "$WORK/align$s.jsonl"
  for m in sft policy; do
    model=$base; [ $m = policy ] && model="$d/policy"
    "$BIN" score --threads 1 --reward-model "$d/reward_model" --answers-of "$model" --labeler gloomy --samples 16 > "$WORK/$m$s.jsonl"
  done
}
export -f one
printf '%s\n' 52 33 4 14 5 10 | xargs -P 2 -I{} bash -c 'one {}'
python3 bench/reward_axis.py "$WORK" 52 33 4 14 5 10 | tee "$OUT/axis-e$EPOCHS.txt"
