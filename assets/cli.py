"""``docthemes`` command line: run the pipeline as the nightly job does, and look at its tables.

Every read command (``status``, ``themes``, ``claims``, ``search``, ``doc``) reads the published
tables of ``DOCTHEMES_PROCESSED_DIR`` (``--out`` overrides it) and reruns nothing; ``--json``
prints JSON for scripts. Exit codes: 0 success, 1 no tables yet or a failed run, 2 bad arguments
(an unknown theme or document id included).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import dagster as dg

app = typer.Typer(
    name="docthemes",
    help=(
        "Run the pipeline as the nightly job does, and look at its published tables. Exit "
        "codes: 0 success, 1 no tables yet or a failed run, 2 a bad argument."
    ),
    no_args_is_help=True,
    add_completion=False,
)
Out = Annotated[
    str | None,
    typer.Option("--out", help="Output dir (default: DOCTHEMES_PROCESSED_DIR or data/processed)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``docthemes`` console script."""
    try:
        app(args=argv, prog_name="docthemes")  # standalone: it exits with the command's code
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return code


@app.command()
def run(
    log_level: Annotated[str, typer.Option(help="Dagster console log level")] = "INFO",
) -> None:
    """Materialize every asset, run the checks, publish."""
    raise typer.Exit(run_all(log_level))


def run_all(log_level: str = "INFO") -> int:
    """Execute ``docthemes_job`` in this process, recorded in the DAGSTER_HOME instance."""
    import dagster as dg

    from assets.definitions import defs

    instance = (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    from assets.live import live_progress

    with instance:
        with live_progress(sys.stderr):
            result = defs.resolve_job_def("docthemes_job").execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            )
        sys.stdout.write(summarize(result) + "\n")
    return 0 if result.success else 1


@app.command()
def rollback() -> None:
    """Publish the snapshot before the current one again (DOCTHEMES_PROCESSED_DIR)."""
    from assets.resources import processed_dir_from_env
    from pipeline.objectstore.tables import PublicationConflictError, open_store
    from pipeline.snapshots import RunLockedError

    store = open_store(processed_dir_from_env())
    try:
        with store.lock(timeout_s=0):
            store.recover()
            store.sync()
            left, now = store.rollback()
    except (RunLockedError, ValueError, PublicationConflictError) as err:
        sys.stderr.write(f"docthemes rollback: {err}\n")
        raise typer.Exit(2) from err
    sys.stdout.write(
        f"docthemes rollback: {store.location} now publishes snapshot {now} (was {left}; kept "
        "in place, marked rolled back; the next run publishes a new snapshot)\n"
    )


def _out(out: str | None) -> str:
    """The folder of tables to read: ``--out``, or DOCTHEMES_PROCESSED_DIR's.

    For an s3:// output, its local copy, first brought to the published snapshot (unless a
    run on this machine is using the copy: then it is read as it is).
    """
    from assets.resources import processed_dir_from_env
    from pipeline.objectstore.tables import open_store
    from pipeline.snapshots import RunLockedError

    store = open_store(out or processed_dir_from_env())
    if store.remote is not None:
        try:
            with store.lock(timeout_s=0, local_only=True):
                store.recover()
                store.sync()
        except RunLockedError:
            pass
    return str(store.base_dir)


def _reading(fn: Any) -> Any:
    """Call ``fn``; no tables yet: exit 1, unknown id: exit 2, each with a plain message."""
    from pipeline.explore import NoTablesError, UnknownIdError

    try:
        return fn()
    except NoTablesError as err:
        typer.echo(f"docthemes: {err}", err=True)
        raise typer.Exit(1) from err
    except UnknownIdError as err:
        typer.echo(f"docthemes: {err}", err=True)
        raise typer.Exit(2) from err


def _show(rows: list[dict[str, Any]], columns: list[str], title: str, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from pipeline.explore import to_json

    if as_json:
        typer.echo(to_json(rows))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console(width=160).print(table)


def _cell(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


@app.command()
def status(out: Out = None, as_json: Json = False) -> None:
    """Last run: when, how long, rows per table, rejects by reason, what changed."""
    from pipeline import explore

    info = _reading(lambda: explore.status(_out(out)))
    if as_json:
        typer.echo(explore.to_json(info))
        return
    typer.echo(
        f"last run {info['run_id']} ({info['runs']} in all): started {info['started_at']}, "
        f"{info['duration_s']} s, {info['input_files']} input files, model {info['model']}"
    )
    change = info["change_since_previous_run"] or {}
    rows = [
        {"table": k, "rows": v, "change": f"{change[k]:+d}" if k in change else "new"}
        for k, v in sorted(info["row_counts"].items())
    ]
    _show(rows, ["table", "rows", "change"], "published tables", False)
    rejects = [{"reason": k, "files": v} for k, v in info["rejected_by_reason"].items()]
    if rejects:
        _show(rejects, ["reason", "files"], "rejected files", False)
    else:
        typer.echo("no rejected files")


@app.command()
def themes(
    kind: Annotated[str | None, typer.Option(help="named, discovered, broad or unassigned")] = None,
    out: Out = None,
    as_json: Json = False,
) -> None:
    """Themes, largest first: id, label, size, share, trend, top keywords."""
    from pipeline import explore

    if kind not in (None, "named", "discovered", "broad", "unassigned"):
        raise typer.BadParameter(f"unknown kind {kind!r}", param_hint="--kind")
    rows = _reading(lambda: explore.themes(_out(out), kind))
    arrows = {"up": "↑", "down": "↓", "flat": "→", None: ""}
    for r in rows:
        r["trend_arrow"] = arrows[r["trend"]]
    columns = ["theme_id", "label", "kind", "n_claims", "share", "trend_arrow", "keywords"]
    _show(rows, columns, "themes", as_json)


@app.command()
def claims(
    theme: Annotated[str, typer.Option("--theme", help="Theme id (docthemes themes)")],
    since: Annotated[
        str | None, typer.Option(help="Only documents dated on or after (YYYY-MM-DD)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    out: Out = None,
    as_json: Json = False,
) -> None:
    """Claims of a theme, best score first, with document title and date."""
    from pipeline import explore

    try:
        day = dt.date.fromisoformat(since) if since else None
    except ValueError as err:
        raise typer.BadParameter(
            f"{since!r} is not a date (YYYY-MM-DD)", param_hint="--since"
        ) from err
    rows = _reading(lambda: explore.claims(_out(out), theme, day, limit))
    _show(rows, ["score", "text", "title", "date", "claim_id"], f"claims of {theme}", as_json)


def _embed_query(folder: str, text: str) -> Any:
    """The unit vector of ``text`` with the model and backend of the run that wrote the tables."""
    from assets.resources import EmbedderResource, onnx_dir_from_env
    from pipeline import explore

    name, sha256, backend = _reading(lambda: explore.search_model(folder))
    embedder = EmbedderResource(
        model=name,
        expected_sha256=sha256,
        backend=backend,  # as the run recorded it
        onnx_dir=onnx_dir_from_env(folder),
    )
    return embedder.embed([text])[0]


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many claims")] = 10,
    theme: Annotated[str | None, typer.Option(help="Only claims of this theme")] = None,
    out: Out = None,
    as_json: Json = False,
) -> None:
    """Semantic search over the claims, with the run's own embedding model."""
    from pipeline import explore

    folder = _out(out)
    vector = _embed_query(folder, query)
    rows = _reading(lambda: explore.search(folder, vector, k, theme))
    _show(rows, ["score", "text", "title", "theme_id", "doc_id"], f"search: {query}", as_json)


@app.command()
def matches(
    claim: Annotated[str, typer.Argument(help="A claim id (claims.claim_id), or a claim's text")],
    out: Out = None,
    as_json: Json = False,
) -> None:
    """The same claim in other articles and outlets, earliest first, with outlet and date.

    Text that is not a claim id is looked up by meaning: the nearest published claim stands
    for it.
    """
    from pipeline import explore

    folder = _out(out)
    claim_id, nearest = claim, None
    if not _reading(lambda: explore.claim_exists(folder, claim)):
        vector = _embed_query(folder, claim)
        hits = _reading(lambda: explore.search(folder, vector, 1))
        if not hits:
            typer.echo("docthemes: there are no claims to compare with", err=True)
            raise typer.Exit(1)
        claim_id, nearest = hits[0]["claim_id"], hits[0]["score"]
    info = _reading(lambda: explore.matches(folder, claim_id))
    info["query_similarity"] = nearest
    if as_json:
        typer.echo(explore.to_json(info))
        return
    if nearest is not None:
        typer.echo(f"nearest claim (cosine {nearest:.3f}):")
    typer.echo(
        f"{info['text']}\n  {info['source'] or info['source_path']}, {info['date'] or 'undated'}"
    )
    cluster = info["cluster"]
    if cluster is None:
        typer.echo("no other article states this claim")
        return
    typer.echo(
        f"cluster {cluster['cluster_id']}: {cluster['n_documents']} documents, "
        f"{cluster['n_sources']} sources, first seen {cluster['first_seen']}"
        + (f" ({cluster['first_source']})" if cluster["first_source"] else "")
    )
    columns = ["date", "source", "score", "text", "title", "claim_id"]
    _show(info["matches"], columns, "the same claim elsewhere", False)


@app.command()
def report(
    open_: Annotated[bool, typer.Option("--open", help="Open it in the default browser")] = False,
    out: Out = None,
) -> None:
    """Write the theme report (report.html) from the published tables, and open it."""
    from assets.report import blocking_checks
    from pipeline import explore
    from pipeline.report import write_report

    folder = _out(out)
    _reading(lambda: explore.search_model(folder))  # says plainly when there are no tables
    path, _ = write_report(folder, blocking_checks())
    typer.echo(f"docthemes report: {path}")
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.command()
def doc(
    doc_id: Annotated[str, typer.Argument(help="Document id (documents.doc_id)")],
    out: Out = None,
    as_json: Json = False,
) -> None:
    """A document's text with its claims and their themes."""
    from pipeline import explore

    info = _reading(lambda: explore.document(_out(out), doc_id))
    if as_json:
        typer.echo(explore.to_json(info))
        return
    typer.echo(f"{info['title'] or info['source_path']} ({info['date'] or 'undated'})\n")
    typer.echo(info["text"])
    _show(info["claims"], ["char_start", "char_end", "theme_id", "text"], "claims", False)


def summarize(result: dg.ExecuteInProcessResult) -> str:
    """A short report: the work done, each table's rows and any failed check."""
    meta: dict[str, dict[str, object]] = {}
    rows = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        name = mat.asset_key.to_user_string()
        meta[name] = {k: v.value for k, v in mat.metadata.items()}
        count = meta[name].get("dagster/row_count")
        rows.append(
            f"  {name:<18} {count:>8} rows"
            if count is not None
            else f"  {name:<18} {meta[name].get('path', '')}"
        )
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    for check in failed:
        key = f"{check.asset_key.to_user_string()}.{check.check_name}"
        rows.append(f"  check FAILED {key}: {check.description}")
    docs, emb = meta.get("documents", {}), meta.get("claim_embeddings", {})
    work = (
        f"  read {docs.get('files_read', 0)} new or changed files "
        f"({docs.get('files_reused', 0)} unchanged), split {docs.get('documents_split', 0)} "
        f"documents, embedded {emb.get('cache_misses', 0)} texts "
        f"({emb.get('cache_hits', 0)} from the cache); "
        f"{len(checks) - len(failed)}/{len(checks)} checks passed"
    )
    if result.success and not docs.get("files_read") and not emb.get("cache_misses"):
        work += "\n  nothing new since the last run: the tables are unchanged"
    if result.success and meta.get("runs", {}).get("published_to"):
        run = meta["runs"]
        work += f"\n  published to {run['published_to']} (snapshot {run.get('snapshot', '?')})"
    outcome = "succeeded" if result.success else "FAILED: the published tables are untouched"
    return f"docthemes run {outcome} (run id {result.run_id})\n{work}\n" + "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
