#!/usr/bin/env bash
# The person's loop in the page (bench/person.mjs): a simulated person with a preference of our own
# ranks 16 groups at 2.5 to 5 s of reading per answer (15 to 30 s for the default six), on the
# visitor's page with nothing changed; the waits for the next answers, the session's length, and
# the learning curve of the page's exports (rlhf eval). Alone on the machine: the waits are what is
# measured. About 6 to 9 minutes a session.
# usage: bash bench/person.sh [preferences, default "practical gloomy~0.25"] [seeds, default "1 2"]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PREFS="${1:-practical gloomy~0.25}"
SEEDS="${2:-1 2}"
cargo build --release --bin rlhf
bash scripts/build_page.sh > /dev/null
mkdir -p bench/person
for p in $PREFS; do
    for s in $SEEDS; do
        name="${p%~*}"; noise=0; case "$p" in *~*) noise="${p#*~}";; esac
        echo "$p seed $s" >&2
        node bench/person.mjs "$name" "$s" "$noise" > "bench/person/$p-seed$s.jsonl"
    done
done
python3 bench/person_table.py bench/person
