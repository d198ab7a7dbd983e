"""The theme report: one self-contained HTML file (inline SVG plots, no script, no network).

Built from the published tables: theme sizes (named, discovered, broad), broad → fine (each
theme's claims split by the fine themes under it), each theme's keywords
and representative claims linked to their document with the claim highlighted, a document ×
theme heatmap, a 2-D map of claims coloured by theme (PCA, seeded), theme trends over time,
the claims repeated across most outlets with how they spread day by day, and the run's
rejects and checks. The same plots come back as PNG bytes for Dagster metadata.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.explore import primary_themes, where
from pipeline.storage import table_path

REPORT_FILE = "report.html"
MAP_POINTS = 3000  # claims drawn on the map: enough to see the themes, small in any corpus
HEATMAP_DOCS = 30
TOP_THEMES = 12
TOP_CLUSTERS = 15


def build_report(out: str | Path, checks: Sequence[str] = ()) -> tuple[str, dict[str, bytes]]:
    """The report's HTML and its plots as PNG (name -> bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    themes = pq.read_table(table_path(out, "themes")).to_pylist()
    active = [t for t in themes if t["status"] == "active"]
    label = {t["theme_id"]: t["label"] for t in active}
    fine = sorted(
        (t for t in active if t["kind"] in ("named", "discovered") and t["n_claims"]),
        key=lambda t: (-t["n_claims"], t["theme_id"]),
    )
    shown = [t["theme_id"] for t in fine[:TOP_THEMES]]
    figures = {
        "theme_sizes": _sizes(active),
        "theme_hierarchy": _hierarchy(active),
        "document_heatmap": _heatmap(out, shown, label),
        "claim_map": _claim_map(out, shown, label),
        "theme_trends": _trends(out, shown, label),
    }
    svgs, pngs = {}, {}
    for name, fig in figures.items():
        svgs[name] = _render(fig, "svg").decode("utf-8")
        pngs[name] = _render(fig, "png")
        matplotlib.pyplot.close(fig)
    body = [
        "<h1>docthemes theme report</h1>",
        _run_summary(out, checks),
        *(
            f'<section class="plot" id="{n}"><h2>{_TITLES[n]}</h2>{_svg_only(s)}</section>'
            for n, s in svgs.items()
        ),
        _theme_sections(out, active),
        _spread(out),
        _rejects(out),
    ]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>docthemes theme report</title><style>"
        + _STYLE
        + "</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    return page, pngs


def write_report(out: str | Path, checks: Sequence[str] = ()) -> tuple[Path, dict[str, bytes]]:
    """Write ``<out>/report.html`` atomically; return its path and the plots as PNG."""
    import os
    import uuid

    page, pngs = build_report(out, checks)
    path = Path(out) / REPORT_FILE
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{REPORT_FILE}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a report
    return path, pngs


_TITLES = {
    "theme_sizes": "Theme sizes",
    "theme_hierarchy": "Broad → fine: each broad theme's claims split by the fine themes in it",
    "document_heatmap": "Documents × themes (share of each document's claims)",
    "claim_map": "Claims on a 2-D map (PCA of their embeddings), coloured by theme",
    "theme_trends": "Theme trends (share of each day's claims)",
}
_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "section{margin:2em 0}mark{background:#ffe58a}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    ".doc{white-space:pre-wrap;border-left:3px solid #ccc;padding-left:1em}"
    "svg{max-width:100%;height:auto}"
)
_KIND_COLOURS = {"named": "#1f77b4", "discovered": "#ff7f0e", "broad": "#2ca02c"}


def _render(fig: Any, fmt: str) -> bytes:
    buf = io.BytesIO()
    # metadata=None strips the creation date: the same tables give the same file.
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buf, format=fmt, bbox_inches="tight", dpi=90, metadata=meta)
    return buf.getvalue()


def _svg_only(svg: str) -> str:
    return svg[svg.index("<svg") :]


def _figure(height: float = 4.0) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "docthemes"  # stable element ids
    return plt.subplots(figsize=(10, height))


def _sizes(active: list[dict[str, Any]]) -> Any:
    fig, ax = _figure(5)
    rows = sorted(
        (t for t in active if t["kind"] in _KIND_COLOURS and t["n_claims"]),
        key=lambda t: (-t["n_claims"], t["theme_id"]),
    )[:25][::-1]
    ax.barh(
        [f"{t['label'][:40]} ({t['kind']})" for t in rows],
        [t["n_claims"] for t in rows],
        color=[_KIND_COLOURS[t["kind"]] for t in rows],
    )
    ax.set_xlabel("claims (primary theme; a broad theme counts its children's)")
    return fig


def _children(active: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Active themes by parent (a broad theme, or a named one), largest first."""
    children: dict[str, list[dict[str, Any]]] = {}
    for t in sorted(active, key=lambda t: (-t["n_claims"], t["theme_id"])):
        if t["parent_id"]:
            children.setdefault(t["parent_id"], []).append(t)
    return children


def _tree_order(active: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Every active theme once, each followed by the themes under it, with its depth.

    Depth-first, as the tree goes (a named theme under a broad one has its own children);
    a theme whose parent is not active is a root.
    """
    children = _children(active)
    ids = {t["theme_id"] for t in active}
    roots = sorted(
        (t for t in active if t["parent_id"] not in ids),
        key=lambda t: (t["kind"], -t["n_claims"], t["theme_id"]),
    )
    ordered: list[tuple[dict[str, Any], int]] = []
    seen: set[str] = set()
    stack = [(t, 0) for t in reversed(roots)]
    while stack:
        theme, depth = stack.pop()
        if theme["theme_id"] in seen:
            continue
        seen.add(theme["theme_id"])
        ordered.append((theme, depth))
        stack += [(c, depth + 1) for c in reversed(children.get(theme["theme_id"], []))]
    return ordered


def _hierarchy(active: list[dict[str, Any]]) -> Any:
    """One stacked bar per parent theme, a segment per child, the largest parents on top."""
    import matplotlib.pyplot as plt

    fig, ax = _figure(5)
    children = _children(active)
    by_id = {t["theme_id"]: t for t in active}
    parents = sorted(
        (p for p in children if p in by_id),
        key=lambda p: (-sum(c["n_claims"] for c in children[p]), p),
    )[:TOP_THEMES][::-1]
    if not parents:
        ax.text(0.5, 0.5, "no theme has fine themes under it in this run", ha="center")
        ax.set_axis_off()
        return fig
    palette = plt.get_cmap("tab20")
    for row, parent in enumerate(parents):
        left = 0
        for k, child in enumerate(children[parent]):
            width = child["n_claims"]
            ax.barh(row, width, left=left, color=palette(k % palette.N), edgecolor="white")
            if width >= 0.12 * sum(c["n_claims"] for c in children[parent]):
                ax.text(
                    left + width / 2,
                    row,
                    child["label"].split(" / ")[0][:14],
                    ha="center",
                    va="center",
                    fontsize=7,
                )
            left += width
    ax.set_yticks(
        range(len(parents)), [f"{by_id[p]['label'][:40]} ({by_id[p]['kind']})" for p in parents]
    )
    ax.set_xlabel("claims (primary theme) of the fine themes under each theme")
    return fig


def _heatmap(out: str | Path, shown: list[str], label: dict[str, str]) -> Any:
    rows = where(
        out,
        "document_themes",
        ["doc_id", "theme_id", "share"],
        pc.field("theme_id").isin(_strings(shown)),
    ).to_pylist()
    weight: dict[str, float] = {}
    for r in rows:
        weight[r["doc_id"]] = weight.get(r["doc_id"], 0.0) + r["share"]
    docs = sorted(weight, key=lambda d: (-weight[d], d))[:HEATMAP_DOCS]
    grid = np.zeros((len(docs), len(shown)))
    at = {d: i for i, d in enumerate(docs)}
    col = {t: j for j, t in enumerate(shown)}
    for r in rows:
        if r["doc_id"] in at:
            grid[at[r["doc_id"]], col[r["theme_id"]]] = r["share"]
    fig, ax = _figure(max(3.0, 0.25 * len(docs) + 1.5))
    ax.imshow(grid if len(docs) else np.zeros((1, max(1, len(shown)))), aspect="auto", cmap="Blues")
    ax.set_xticks(range(len(shown)), [label[t][:20] for t in shown], rotation=45, ha="right")
    ax.set_yticks(range(len(docs)), [d[:10] for d in docs])
    return fig


def _claim_map(out: str | Path, shown: list[str], label: dict[str, str]) -> Any:
    from sklearn.decomposition import PCA

    file = pq.ParquetFile(table_path(out, "claim_embeddings"))
    n = file.metadata.num_rows
    step = max(1, n // MAP_POINTS)
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    seen = 0
    for batch in file.iter_batches(columns=["claim_id", "embedding"], batch_size=65_536):
        pick = np.arange((-seen) % step, batch.num_rows, step)  # every step-th claim
        seen += batch.num_rows
        if not len(pick):
            continue
        part = batch.take(pick)
        ids += part.column("claim_id").to_pylist()
        flat = part.column("embedding").flatten().to_numpy(zero_copy_only=False)
        vectors.append(flat.reshape(len(pick), -1))
    fig, ax = _figure(6)
    if len(ids) >= 2:
        xy = PCA(n_components=2, random_state=0).fit_transform(np.concatenate(vectors))
        primary = primary_themes(out, ids)
        theme = np.array([primary.get(i, "") for i in ids], dtype=object)
        other = ~np.isin(theme, shown)
        ax.scatter(xy[other, 0], xy[other, 1], s=4, c="#cccccc", label="other themes")
        for t in shown:
            here = theme == t
            if here.any():
                ax.scatter(xy[here, 0], xy[here, 1], s=6, label=label[t][:30])
        ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def _trends(out: str | Path, shown: list[str], label: dict[str, str]) -> Any:
    tt = pq.read_table(table_path(out, "theme_trends"), columns=["theme_id", "date", "share"])
    fig, ax = _figure(4)
    for t in shown:
        rows = sorted(
            (r["date"], r["share"]) for r in tt.filter(pc.equal(tt["theme_id"], t)).to_pylist()
        )
        if rows:
            ax.plot([d for d, _ in rows], [s for _, s in rows], marker="o", label=label[t][:30])
    ax.set_ylabel("share of the day's claims")
    if shown:
        ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return fig


def _run_summary(out: str | Path, checks: Sequence[str]) -> str:
    runs = pq.read_table(table_path(out, "runs")).to_pylist()
    last = runs[-1]
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(dict(last["row_counts"]).items()))
    passed = (
        f"<p>All {len(checks)} blocking checks passed (tables are published only then): "
        + ", ".join(html.escape(c) for c in checks)
        + "</p>"
        if checks
        else ""
    )
    return (
        f"<section id='run'><p>Run <code>{html.escape(last['run_id'])}</code>, published "
        f"{last['finished_at']:%Y-%m-%d %H:%M} UTC, model {html.escape(last['model'])}. "
        f"Rows: {html.escape(counts)}.</p>{passed}</section>"
    )


def _theme_sections(out: str | Path, active: list[dict[str, Any]]) -> str:
    reps = {c for t in active for c in t["representative_claim_ids"]}
    rep_rows = {
        r["claim_id"]: r
        for r in where(
            out,
            "claims",
            ["claim_id", "doc_id", "text", "char_start", "char_end"],
            pc.field("claim_id").isin(_strings(sorted(reps))),
        ).to_pylist()
    }
    parts = [
        "<section id='themes'><h2>Themes</h2><table><tr><th>theme</th><th>kind</th>"
        "<th>claims</th><th>keywords</th><th>representative claims</th></tr>"
    ]
    for t, depth in _tree_order(active):
        links = "<br>".join(
            f"<a href='#{html.escape(c)}'>{html.escape(rep_rows[c]['text'][:160])}</a>"
            for c in t["representative_claim_ids"]
            if c in rep_rows
        )
        parts.append(
            f"<tr id='theme-{html.escape(t['theme_id'])}'><td>{'↳ ' * depth}"
            f"{html.escape(t['label'])}<br>"
            f"<code>{html.escape(t['theme_id'])}</code></td><td>{t['kind']}</td>"
            f"<td>{t['n_claims']:,}</td><td>{html.escape(', '.join(t['keywords'][:8]))}</td>"
            f"<td>{links}</td></tr>"
        )
    parts.append("</table></section>")
    parts.append(_documents(out, rep_rows))
    return "\n".join(parts)


def _documents(out: str | Path, rep_rows: dict[str, dict[str, Any]]) -> str:
    """The documents of the representative claims, each claim highlighted where it stands."""
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for r in rep_rows.values():
        by_doc.setdefault(r["doc_id"], []).append(r)
    docs = where(
        out,
        "documents",
        ["doc_id", "source_path", "text"],
        pc.field("doc_id").isin(_strings(sorted(by_doc))),
    )
    parts = ["<section id='documents'><h2>Documents of the representative claims</h2>"]
    for d in sorted(docs.to_pylist(), key=lambda d: d["source_path"]):
        text, pos, pieces = d["text"], 0, []
        for c in sorted(by_doc[d["doc_id"]], key=lambda c: c["char_start"]):
            if c["char_start"] < pos:
                continue  # overlapping spans: the first one is marked
            pieces.append(html.escape(text[pos : c["char_start"]]))
            pieces.append(
                f"<mark id='{html.escape(c['claim_id'])}'>"
                f"{html.escape(text[c['char_start'] : c['char_end']])}</mark>"
            )
            pos = c["char_end"]
        pieces.append(html.escape(text[pos:]))
        parts.append(
            f"<article id='doc-{html.escape(d['doc_id'])}'><h3>{html.escape(d['source_path'])}"
            f"</h3><div class='doc'>{''.join(pieces)}</div></article>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _spread(out: str | Path) -> str:
    """The clusters of the same claim that reached the most outlets, and their spread by day."""
    title = "<h2>Claims repeated across outlets</h2>"
    path = table_path(out, "claim_clusters")
    if not path.exists():
        return f"<section id='spread'>{title}<p>No claim matching in these tables.</p></section>"
    columns = ["cluster_id", "canonical_text", "n_documents", "n_sources", "first_seen",
               "first_source", "last_seen"]  # fmt: skip
    clusters = {r["cluster_id"]: r for r in pq.read_table(path, columns=columns).to_pylist()}
    top = sorted(
        clusters.values(),
        key=lambda r: (-r["n_sources"], -r["n_documents"], r["first_seen"], r["cluster_id"]),
    )[:TOP_CLUSTERS]
    if not top:
        return f"<section id='spread'>{title}<p>No claim was found in two articles.</p></section>"
    days = where(
        out,
        "claim_spread",
        ["cluster_id", "date", "cumulative_sources"],
        pc.field("cluster_id").isin(_strings([r["cluster_id"] for r in top])),
    ).to_pylist()
    spread: dict[str, list[str]] = {}
    for d in sorted(days, key=lambda d: (d["cluster_id"], d["date"])):
        spread.setdefault(d["cluster_id"], []).append(f"{d['date']}: {d['cumulative_sources']}")
    cells = "".join(
        f"<tr><td>{html.escape(r['canonical_text'])}</td><td>{r['n_sources']}</td>"
        f"<td>{r['n_documents']}</td><td>{r['first_seen']}</td>"
        f"<td>{html.escape(r['first_source'] or '')}</td>"
        f"<td>{html.escape(' → '.join(spread.get(r['cluster_id'], [])))}</td></tr>"
        for r in top
    )
    return (
        f"<section id='spread'>{title}<p>Clusters of the same claim (claim_clusters), most "
        "outlets first; spread: outlets so far, per day (claim_spread).</p><table><tr>"
        "<th>claim</th><th>outlets</th><th>documents</th><th>first seen</th><th>first outlet</th>"
        f"<th>spread</th></tr>{cells}</table></section>"
    )


def _rejects(out: str | Path) -> str:
    rows = pq.read_table(table_path(out, "rejected_files")).to_pylist()
    if not rows:
        return "<section id='rejects'><h2>Rejected files</h2><p>None.</p></section>"
    cells = "".join(
        f"<tr><td>{html.escape(r['source_path'])}</td><td>{html.escape(r['reason'])}</td>"
        f"<td>{html.escape(r['detail'])}</td></tr>"
        for r in rows
    )
    return (
        "<section id='rejects'><h2>Rejected files</h2><table><tr><th>file</th><th>reason</th>"
        f"<th>detail</th></tr>{cells}</table></section>"
    )


def _strings(values: Sequence[str]) -> Any:
    # Typed: an empty list would otherwise be a null array, which cannot filter a string column.
    import pyarrow as pa

    return pa.array(list(values), pa.string())
