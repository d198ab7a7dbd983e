"""Cold run on 2,000 BBC articles, then a run after adding 20 more: what does a night cost?

Usage: .venv/bin/python -m benchmarks.incremental [--cold 2000] [--added 20]

Each run is a fresh `docthemes run` process (as `make run` and the nightly job are), on a
temporary raw dir, output dir and DAGSTER_HOME. Prints wall times, texts embedded and the ratio.
"""

import argparse
import re
import tempfile
from pathlib import Path

from benchmarks.common import bbc_files, cli_run, copy_articles, step_times


def embedded(stdout: str) -> tuple[int, int]:
    """(texts embedded, texts from the cache) from the run summary."""
    m = re.search(r"embedded (\d+) texts \((\d+) from the cache\)", stdout)
    if m is None:
        raise SystemExit(f"unexpected output:\n{stdout}")
    return int(m.group(1)), int(m.group(2))


def main() -> None:
    """Run the two nights and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", type=int, default=2000)
    parser.add_argument("--added", type=int, default=20)
    args = parser.parse_args()
    files = bbc_files()
    cold, added = files[: args.cold], files[args.cold : args.cold + args.added]
    with tempfile.TemporaryDirectory() as tmp:
        raw, out, home = Path(tmp) / "raw", Path(tmp) / "out", Path(tmp) / "home"
        copy_articles(cold, raw)
        t_cold, log_cold = cli_run(raw, out, home)
        copy_articles(added, raw)
        t_inc, log_inc = cli_run(raw, out, home)
        steps_inc, meta_inc = step_times(home)
        t_none, log_none = cli_run(raw, out, home)
    (e_cold, _), (e_inc, hits_inc), (e_none, _) = map(embedded, (log_cold, log_inc, log_none))
    print(f"cold run, {len(cold)} articles:     {t_cold:8.1f} s, {e_cold:6d} texts embedded")
    print(f"+{len(added)} articles:  {t_inc:8.1f} s, {e_inc:6d} texts embedded, {hits_inc} cached")
    print(f"no change:                   {t_none:8.1f} s, {e_none:6d} texts embedded")
    print(f"incremental / cold wall time: {t_inc / t_cold:.1%} (target <= 5%)")
    print(log_inc.splitlines()[1])
    in_steps = sum(steps_inc.values())
    print(
        f"+{len(added)} night: {in_steps:.1f} s in steps, {t_inc - in_steps:.1f} s start-up/Dagster"
    )
    for key, seconds in sorted(steps_inc.items(), key=lambda kv: -kv[1]):
        print(f"   step {key:<20} {seconds:6.2f} s")
    print(f"   embedding step metadata: {meta_inc}")


if __name__ == "__main__":
    main()
