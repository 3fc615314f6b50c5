#!/usr/bin/env bash
# Each run's reward model after 8 rankings picking the best of 16 of SFT's answers, against the
# run's policy then: the four runs of the defaults short of 0.80 at 8, and two that reach it.
# Writes /tmp/rm-at-8/RUN/{bo16,policy}.txt; runs.jsonl holds this round's results.
cd "$(dirname "$0")/../../.."
RLHF="${RLHF:-$HOME/.cache/rlhf-lab/target/release/rlhf}"
for ls in "gloomy 1 0.25" "on_topic 1 0" "on_topic 3 0" "practical 3 0" "practical 1 0" "polite 2 0"; do
  set -- $ls
  d=/tmp/rm-at-8/$1-$2; mkdir -p $d
  $RLHF align --threads 1 --model www/assets/base --labeler $1 --noise $3 --seed $2 --rankings 8 --eval-every 8 --json --out $d > $d/align.jsonl
  $RLHF eval --model www/assets/base --reference www/assets/base --labeler $1 --best-of 16 --judge $d/reward_model --seed $(( $2 ^ 0xE7 )) > $d/bo16.txt 2>&1
  $RLHF eval --model $d/policy --reference www/assets/base --labeler $1 --seed $(( $2 ^ 0xE7 )) > $d/policy.txt 2>&1
done
