"""Sentence splitters side by side: Golden Rules passed and sentences/second on one core.

Usage: .venv/bin/python -m benchmarks.segmentation [--repeat 3]

Compares docthemes' `split_sentences` with pySBD and blingfire (dev extra) and a plain regex,
on the 52 English Golden Rules and on the BBC corpus text (throughput).
"""

import argparse
import json
import os
import re
import time
from collections.abc import Callable

from benchmarks.common import ROOT, bbc_files
from pipeline.segment import split_sentences

Splitter = Callable[[str], list[str]]


def ours(text: str) -> list[str]:
    """docthemes: spans turned into strings."""
    return [text[a:b] for a, b in split_sentences(text)]


def regex(text: str) -> list[str]:
    """The naive baseline."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def candidates() -> dict[str, Splitter]:
    """Every splitter installed in this environment."""
    found: dict[str, Splitter] = {"docthemes": ours, "regex (?<=[.!?])\\s+": regex}
    try:
        import pysbd

        seg = pysbd.Segmenter(language="en", clean=False)
        found["pysbd 0.3.4"] = seg.segment
    except ImportError:
        pass
    try:
        import blingfire

        found["blingfire 0.1.8"] = lambda t: blingfire.text_to_sentences(t).split("\n")
    except ImportError:
        pass
    return found


def golden_passes(split: Splitter) -> int:
    """Number of Golden Rules a splitter gets exactly right (whitespace-normalised)."""
    rules = json.loads((ROOT / "tests" / "data" / "golden_rules_en.json").read_text("utf-8"))

    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s).strip()

    passed = 0
    for rule in rules:
        try:
            got = [norm(s) for s in split(rule["text"]) if norm(s)]
        except Exception:  # a crashing splitter fails the rule
            continue
        passed += got == [norm(s) for s in rule["sentences"]]
    return passed


def throughput(split: Splitter, texts: list[str], repeat: int) -> tuple[float, int]:
    """Best sentences per CPU-second over ``repeat`` passes, and the sentence count."""
    best = float("inf")
    n = 0
    for _ in range(repeat):
        start = time.process_time()  # CPU time of this process: one core, robust to noise
        n = sum(len(split(t)) for t in texts)
        best = min(best, time.process_time() - start)
    return n / best, n


def main() -> None:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--docs", type=int, default=None, help="limit BBC articles")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    texts = [p.read_bytes().decode("utf-8", errors="replace") for p in bbc_files(args.docs)]
    print(f"corpus: {len(texts)} BBC articles, {sum(map(len, texts)) / 1e6:.1f} M chars")
    print(f"{'splitter':<24} {'golden rules':>12} {'sentences':>10} {'sentences/s':>12}")
    for name, split in candidates().items():
        # pySBD is ~1,000 sentences/s: one pass over a subset keeps the run short.
        subset = texts if not name.startswith("pysbd") else texts[:300]
        rate, n = throughput(split, subset, 1 if name.startswith("pysbd") else args.repeat)
        print(f"{name:<24} {golden_passes(split):>9}/52 {n:>10} {rate:>12,.0f}")


if __name__ == "__main__":
    main()
