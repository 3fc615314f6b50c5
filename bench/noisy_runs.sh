# Sourced by bench/stuck_styles.sh and bench/refit_axis.sh: the defaults' runs of gloomy with a
# quarter of its pairs reversed on the stuck seeds (52, 33, 4, 14) and two healthy ones (5, 10),
# to 16 rankings with `--out`, and their reward model's scores of 16 answers of SFT and of the run's
# policy to every held-out prompt. Needs BIN (the rlhf binary) and WORK (a folder) exported.
NOISY_SEEDS="52 33 4 14 5 10"

# align_noisy SEED: WORK/seedSEED (policy, reward_model) and WORK/alignSEED.jsonl; the environment
# passes to the binary (a diagnostic patch's variable, say)
align_noisy() {
  "$BIN" align --threads 1 --model www/assets/base --labeler gloomy --noise 0.25 --seed "$1" --rankings 16 \
    --eval-every 8 --json --out "$WORK/seed$1" > "$WORK/align$1.jsonl"
}

# score_noisy SEED: WORK/sftSEED.jsonl and WORK/policySEED.jsonl (`score --answers-of`)
score_noisy() {
  local m model
  for m in sft policy; do
    model=www/assets/base; [ $m = policy ] && model="$WORK/seed$1/policy"
    "$BIN" score --threads 1 --reward-model "$WORK/seed$1/reward_model" --answers-of "$model" --labeler gloomy --samples 16 > "$WORK/$m$1.jsonl"
  done
}
export -f align_noisy score_noisy
