#!/usr/bin/env bash
# One model judged with N answer seeds from 1000 on, never the protocol's own (seed ^ 0xE7, under
# 256): `rlhf eval --seed E` for each, one line each, {"answer_seed": E, "judged": {...}}. The one
# loop of bench/eval_spread.sh, bench/person_spread.sh and bench/ceiling/rm_at_n.sh; $BIN is rlhf.
# usage: bash bench/judge_seeds.sh N LABELER MODEL [more `rlhf eval` flags]
set -euo pipefail
n="$1" labeler="$2" model="$3"
shift 3
for e in $(seq 1000 $((999 + n))); do
    "$BIN" eval --threads 1 --model "$model" --reference www/assets/base --labeler "$labeler" --seed "$e" "$@" |
        sed "s/^/{\"answer_seed\":$e,\"judged\":/; s/\$/}/"
done
