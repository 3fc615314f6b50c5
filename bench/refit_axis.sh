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
source bench/noisy_runs.sh
one() {
  REFIT_FINAL=$EPOCHS align_noisy "$1"
  score_noisy "$1"
}
export -f one
printf '%s\n' $NOISY_SEEDS | xargs -P 2 -I{} bash -c 'one {}'
python3 bench/reward_axis.py "$WORK" $NOISY_SEEDS | tee "$OUT/axis-e$EPOCHS.txt"
