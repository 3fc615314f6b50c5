#!/usr/bin/env bash
# The page's sessions judged again: each policy a person session exported after N rankings (kept
# by `KEEP=DIR node bench/person.mjs`, in DIR/after-N), judged with E other answer seeds (`rlhf eval
# --seed`, the same 24 held-out questions and 4 answers each) beside the session's own one draw.
# Whether a session under 0.80 is under it or drew low. Writes bench/person/spread/atN/NAME.jsonl
# (the session's evaluation at N, then one line per answer seed) and prints bench/eval_spread.py's
# table. Two policies at a time: about a minute per session at E = 40.
# usage: RANKINGS=16 EVAL_SEEDS=40 bash bench/person_spread.sh SESSIONS KEPT
#   SESSIONS: the folder of the sessions' JSON lines (bench/person/ob1k1); KEPT: the KEEP folders'
#   parent, one folder per session named as its JSON-lines file (PREF-seedS)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
SESSIONS="${1:?the folder of the sessions JSON lines}" KEPT="${2:?the folder of the kept exports}"
export RANKINGS="${RANKINGS:-16}" EVAL_SEEDS="${EVAL_SEEDS:-40}" SESSIONS OUT="bench/person/spread/at${RANKINGS:-16}"
cargo build --release --bin rlhf
export BIN="${RLHF:-$CARGO_TARGET_DIR/release/rlhf}"
mkdir -p "$OUT"
for dir in "$KEPT"/*-seed*; do
    [ -d "$dir/after-$RANKINGS/policy" ] || { echo "no export after $RANKINGS rankings in $dir" >&2; continue; }
    echo "$dir"
done | xargs -P 2 -L 1 sh -c 'name=$(basename "$0"); labeler="${name%%-seed*}"; labeler="${labeler%~*}"
    f="$OUT/$name.jsonl"
    grep "\"eval\":{\"rankings\":$RANKINGS," "$SESSIONS/$name.jsonl" > "$f"
    bash bench/judge_seeds.sh "$EVAL_SEEDS" "$labeler" "$0/after-$RANKINGS/policy" >> "$f"'
python3 bench/eval_spread.py "$OUT" "$RANKINGS"
