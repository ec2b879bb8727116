"""Compares rerank outputs (the engine's JSONL: {"id", "results": [{"index", "score"}]}) with a
reference output pair by pair: mean and max |score difference|, top-1 agreement and the mean
Kendall tau per query. docs/speed.md uses it on the peer benchmark's outputs.

    .venv/bin/python bench/compare_outputs.py REFERENCE.jsonl OTHER.jsonl [OTHER.jsonl ...]
"""
import itertools
import json
import sys


def load(path: str) -> dict:
    out = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            record = json.loads(line)
            if "results" not in record:
                raise SystemExit(f"{path}:{number}: no 'results' (not a rerank output)")
            out[record["id"]] = {r["index"]: r["score"] for r in record["results"]}
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    reference = load(argv[0])
    for path in argv[1:]:
        other = load(path)
        if other.keys() != reference.keys():
            raise SystemExit(f"{path}: its ids differ from {argv[0]}'s")
        diffs, top, taus = [], 0, []
        for query, expected in reference.items():
            got = other[query]
            diffs += [abs(expected[i] - got[i]) for i in expected]
            top += max(expected, key=expected.get) == max(got, key=got.get)
            pairs = list(itertools.combinations(expected, 2))
            if pairs:
                agree = sum(1 if (expected[i] - expected[j]) * (got[i] - got[j]) > 0 else -1
                            for i, j in pairs)
                taus.append(agree / len(pairs))
        print(f"{path}: mean |d| {sum(diffs) / len(diffs):.4f}, max |d| {max(diffs):.4f}, "
              f"top-1 {top}/{len(reference)}, tau {sum(taus) / max(len(taus), 1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
