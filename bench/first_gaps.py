"""How far the reward model's own first of each fresh group scored above the person's first answer,
before it learned the ranking (`first_gaps` in the record), for clean rankings and for a noisy
labeler's rankings whose first was truly first or not (`noiseless_place_of_firsts`), and how many of
each a margin m would doubt (`--favourite-margin`): the choice of m and whether it separates them.
usage: python3 bench/first_gaps.py CLEAN_PREFIX NOISY_PREFIX   (e.g. bench/ablation/gap/c- bench/ablation/gap/g-)"""
import glob
import json
import sys


def gaps_of(path):
    """(gap, noiseless place of the first or None) per ranking whose gap was read, with its index."""
    lines = [json.loads(x) for x in open(path)]
    gaps = [g for x in lines if "iteration" in x for g in x.get("first_gaps", [])]
    places = next((x["noiseless_place_of_firsts"] for x in lines if "noiseless_place_of_firsts" in x), None)
    return [(i, g, places[i] if places else None) for i, g in enumerate(gaps) if g is not None]


def main():
    clean = [r for f in sorted(glob.glob(sys.argv[1] + "*.jsonl")) for r in gaps_of(f)]
    noisy = [r for f in sorted(glob.glob(sys.argv[2] + "*.jsonl")) for r in gaps_of(f)]
    wrong = [r for r in noisy if r[2] > 0]
    right = [r for r in noisy if r[2] == 0]
    print(f"read: clean {len(clean)} rankings, noisy {len(noisy)} ({len(wrong)} whose first is not truly first)")
    def doubted(rs, m, upto=None):
        return sum(1 for i, g, _ in rs if g > m and (upto is None or i < upto))
    print("| m | clean doubted | noisy, truly first, doubted | noisy, not truly first, doubted | the same, rankings 1 to 8 (clean / wrong noisy) |")
    print("|---|---|---|---|---|")
    for k in range(0, 21):
        m = k / 10
        print(f"| {m:.1f} | {doubted(clean, m)} | {doubted(right, m)} | {doubted(wrong, m)} | {doubted(clean, m, 8)} / {doubted(wrong, m, 8)} |")
    c0, w0 = doubted(clean, 0.0), doubted(wrong, 0.0)
    m = next((k / 10 for k in range(0, 101) if doubted(clean, k / 10) * 3 <= c0), None)
    if m is None:
        print("no m up to 10 brings the clean doubts to a third")
        return
    print(f"\nchosen m = {m:.1f}: clean doubts {doubted(clean, m)} of {c0} at 0; wrong noisy doubts {doubted(wrong, m)} of {w0} at 0")
    print("separates (screens run)" if doubted(wrong, m) * 2 >= w0 else "does not separate (no screen)")


main()
