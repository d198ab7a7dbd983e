"""Segmentation and claim extraction on hostile inputs: time must grow linearly with size.

Usage: .venv/bin/python -m benchmarks.hostile_text

Each input is built at 10,000 and 100,000 characters; the ratio of the two times should be
about 10 (linear), not about 100 (quadratic). A quadratic pattern lets one file under the size
limit hold the run lock for hours.
"""

import time
from collections.abc import Callable

from pipeline.claims import extract_claims
from pipeline.segment import split_sentences

INPUTS: dict[str, Callable[[int], str]] = {
    "one long word, then an @": lambda n: "a" * n + "@example.com",
    "e-mail-like runs before an @": lambda n: "a.b-" * (n // 4) + "@",
    "URL followed by dots": lambda n: "http://" + "." * n,
    "URL followed by closing quotes": lambda n: "see www.x.org" + "”" * n,
    "only terminators": lambda n: "?!" * (n // 2),
    "abbreviations": lambda n: "U.S. " * (n // 5),
    "one unpunctuated line": lambda n: "word " * (n // 5),
    "many short lines": lambda n: "Ab.\n" * (n // 4),
    "nested quotes and brackets": lambda n: "(“'" * (n // 3),
}


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Print the time of each stage on each input at two sizes, and their ratio."""
    print(f"{'input':<34}{'stage':<12}{'10k s':>9}{'100k s':>9}{'ratio':>7}")
    for name, build in INPUTS.items():
        small, large = build(10_000), build(100_000)
        stages: dict[str, Callable[[str], object]] = {
            "sentences": split_sentences,
            "claims": lambda t: extract_claims("doc", t),
        }
        for stage, fn in stages.items():
            a = _seconds(lambda fn=fn, t=small: fn(t))
            b = _seconds(lambda fn=fn, t=large: fn(t))
            print(f"{name:<34}{stage:<12}{a:>9.3f}{b:>9.3f}{b / max(a, 1e-6):>7.1f}")


if __name__ == "__main__":
    main()
