#!/usr/bin/env bash
# The stuck starts against healthy noisy runs, answer by answer: the defaults' runs of gloomy with a
# quarter of its pairs reversed on seeds 52, 33, 4, 14 (under 0.75 at 16 rankings) and 5, 10 (healthy)
# made again with `align --out` (equal to the stored runs to the digit), then for each run's
# reward model: its mean score of the policy's answers and of SFT's, and of its pick of 16 of each
# (`eval --judge`, one answer seed), and its scores of 16 answers of SFT and of the policy to every
# held-out prompt beside the rule's (`score --answers-of`), tabulated by answer style
# (`bench/answer_styles.py`), and per run its reward model's gloomy-over-neutral gaps beside the
# win-rate (`bench/reward_axis.py`). About 6 minutes on 2 cores.
# usage: bash bench/stuck_styles.sh [WORK_DIR, default /tmp/stuck_styles]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --bin rlhf
export BIN="$CARGO_TARGET_DIR/release/rlhf" WORK="${1:-/tmp/stuck_styles}" OUT=bench/ablation/stuck16/judge16
mkdir -p "$WORK" "$OUT"
source bench/noisy_runs.sh
one() {
  s=$1; d="$WORK/seed$s"; base=www/assets/base
  align_noisy "$s"
  for what in "policy 1 $d/policy" "sft1 1 $base" "sft16 16 $base" "policy16 16 $d/policy"; do
    set -- $what
    "$BIN" eval --threads 1 --model "$3" --reference $base --labeler gloomy --best-of "$2" --judge "$d/reward_model" > "$OUT/rm$s.$1.json"
  done
  score_noisy "$s"
}
export -f one
printf '%s\n' $NOISY_SEEDS | xargs -P 2 -I{} bash -c 'one {}'
for m in sft policy; do
  python3 bench/answer_styles.py $(for s in $NOISY_SEEDS; do echo "$WORK/$m$s.jsonl"; done)
done | sed "s|$WORK/||" > "$OUT/styles.txt"
python3 bench/reward_axis.py "$WORK" $NOISY_SEEDS >> "$OUT/styles.txt"
cat "$OUT/styles.txt"
