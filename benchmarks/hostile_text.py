"""Segmentation and claim extraction on hostile inputs, against ordinary prose of the same size.

Usage: .venv/bin/python -m benchmarks.hostile_text [--size 5000000] [--stages sentences,claims]

Each hostile input is built at ``--size`` characters (default 1,000,000) and timed beside news
prose of the same size; the ratio should stay small (target: within 3x). A pattern that is
quadratic on some input lets one file under the size limit hold the run lock for hours: such a
pattern shows as a ratio in the hundreds, or as a run that does not finish.
"""

import argparse
import time
from collections.abc import Callable

from pipeline.claims import extract_claims
from pipeline.segment import split_sentences

PROSE = (
    "Russia and China signed a thirty-year gas supply contract on Monday, officials said. "
    "The pipeline will carry gas from Siberia to northern China, according to the U.S. "
    "Energy Information Administration (EIA). Analysts at www.example.org expect prices to "
    "fall by 3.5% next year.\n"
)

INPUTS: dict[str, Callable[[int], str]] = {
    "one line of words with one @": lambda n: ("word " * (n // 5))[: n - 12] + "@example.com",
    "e-mail-like run before an @": lambda n: ("a.b-" * (n // 4))[: n - 1] + "@",
    "only dots": lambda n: "." * n,
    "URL followed by dots": lambda n: "http://" + "." * (n - 7),
    "long URLs": lambda n: (("https://example.org/" + "a/" * 2000 + " ") * n)[:n],
    "short lines": lambda n: ("Ab.\n" * (n // 4))[:n],
    "deep brackets": lambda n: ("(" * (n // 2) + ")" * (n // 2))[:n],
    "nested quotes": lambda n: ("“'(" * (n // 3))[:n],
    "abbreviations": lambda n: ("U.S. " * (n // 5))[:n],
}


def _seconds(fn: Callable[[str], object], text: str, repeat: int = 3) -> float:
    """Best of ``repeat`` runs, as timeit reports: the others measure the machine's noise."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Print each stage's time on each input and its ratio to prose of the same size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="characters per input")
    parser.add_argument("--stages", default="sentences,claims", help="sentences and/or claims")
    args = parser.parse_args()
    stages: dict[str, Callable[[str], object]] = {
        "sentences": split_sentences,
        "claims": lambda t: extract_claims("doc", t),
    }
    chosen = {k: v for k, v in stages.items() if k in args.stages.split(",")}
    prose = (PROSE * (args.size // len(PROSE) + 1))[: args.size]
    base = {name: _seconds(fn, prose) for name, fn in chosen.items()}
    print(
        f"{args.size:,} characters per input; prose: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in base.items())
    )
    print(f"{'input':<32}" + "".join(f"{k + ' s':>14}{'x prose':>9}" for k in chosen))
    for name, build in INPUTS.items():
        text = build(args.size)
        cells = ""
        for stage, fn in chosen.items():
            t = _seconds(fn, text)
            cells += f"{t:>14.2f}{t / base[stage]:>9.2f}"
        print(f"{name:<32}{cells}")


if __name__ == "__main__":
    main()
