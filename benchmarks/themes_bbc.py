"""Themes on the BBC corpus: counts, agreement with the 5 categories, stability, time.

Usage: .venv/bin/python -m benchmarks.themes_bbc [--limit 500] [--set key=value ...]

Embeds all claims once (cached in benchmarks/results/cache/, reused by later runs), then:
1. fits themes on 90% of the articles, then on all of them with the first fit as the previous
   run (as the nightly job does) and reports how many claims kept their theme id;
2. fits from scratch on all articles and reports broad/fine theme counts, the unassigned share,
   and NMI/ARI between each article's dominant broad theme and its category folder;
3. the share of claims of sport/ and entertainment/ articles that get a named theme (those
   articles are off-theme: the named themes must not flood unrelated text);
4. the theme step's time against the embedding time of the same claims, the latter measured by
   encoding a sample afresh (the cache would hide it) and scaled to every claim.

Keywords are reranked with the model, as the asset does (``keyword_embed``).
"""

import collections
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import CachedEncoder, bbc_dir, bbc_files, copy_articles, peak_rss_mb
from pipeline.corpus import build_corpus
from pipeline.embed import (
    embed_texts,
)
from pipeline.ingest import IngestConfig
from pipeline.themes import (
    UNASSIGNED,
    PreviousThemes,
    ThemeConfig,
    ThemeModel,
    ThemeVectors,
    array_claims,
    assign_themes,
    load_catalog,
)


def main() -> None:
    """Run the benchmark and print the figures."""
    import argparse

    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", action="append", default=[], help="ThemeConfig override k=v")
    parser.add_argument(
        "--limit", type=int, default=None, help="an even spread of this many articles (e.g. 500)"
    )
    args = parser.parse_args()
    overrides = {k: float(v) if "." in v else int(v) for k, v in (kv.split("=") for kv in args.set)}
    config = ThemeConfig.model_validate(overrides)
    print(f"theme config overrides: {overrides or 'none (defaults)'}")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        source = bbc_dir()
        if args.limit is not None:
            source = Path(tmp)
            copy_articles(bbc_files(args.limit), source)
        corpus = build_corpus(source, IngestConfig(), max_sentence_chars=1000)
    claims = corpus.tables["claims"]
    docs = corpus.tables["documents"]
    category = {
        d["doc_id"]: d["source_path"].split("/")[0]
        for d in docs.select(["doc_id", "source_path"]).to_pylist()
    }
    claim_ids = claims.column("claim_id").to_pylist()
    doc_ids = claims.column("doc_id").to_pylist()
    texts = claims.column("text").to_pylist()
    paragraphs = claims.column("paragraph").to_pylist()
    t_corpus = time.perf_counter() - t0

    embed = CachedEncoder()
    model = embed.model
    t0 = time.perf_counter()
    emb = embed.cached(texts)
    t_embed = time.perf_counter() - t0
    vectors = ThemeVectors.from_catalog(load_catalog(), embed)
    sample = texts[:: max(1, len(texts) // 2000)]
    t0 = time.perf_counter()
    embed_texts(model, sample)
    t_embed_all = (time.perf_counter() - t0) * len(texts) / len(sample)
    catalog = load_catalog()
    print(
        f"corpus: {docs.num_rows} documents, {len(texts)} claims ({t_corpus:.1f} s); "
        f"embeddings: {emb.misses} computed, {emb.hits} cached ({t_embed:.1f} s)"
    )

    # 1. Stability: 90% of the articles, then all of them with the previous fit.
    doc_order = sorted(set(doc_ids))
    held_out = set(doc_order[::10])
    part = np.array([d not in held_out for d in doc_ids])
    idx = np.flatnonzero(part)
    t0 = time.perf_counter()
    first = ThemeModel(vectors, config, keyword_embed=embed).fit(
        array_claims(
            emb.vectors[idx],
            [texts[i] for i in idx],
            [doc_ids[i] for i in idx],
            [paragraphs[i] for i in idx],
            [claim_ids[i] for i in idx],
        )
    )
    t_fit_cold = time.perf_counter() - t0
    tables = assign_themes(first, catalog, [claim_ids[i] for i in idx])
    rows = {name: table.to_pylist() for name, table in tables.items()}
    primaries = {r["claim_id"]: r["theme_id"] for r in rows["claim_themes"] if r["rank"] == 1}
    previous = PreviousThemes.from_rows(rows["themes"], tables["claim_themes"])
    claims_all = array_claims(emb.vectors, texts, doc_ids, paragraphs, claim_ids)
    t0 = time.perf_counter()
    second = ThemeModel(vectors, config, keyword_embed=embed).fit(claims_all, previous)
    t_fit_warm = time.perf_counter() - t0
    after = dict(zip(claim_ids, second.labels_, strict=True))
    assigned = [c for c, t in primaries.items() if t != UNASSIGNED]
    kept = sum(after[c] == primaries[c] for c in assigned)
    growth = len(held_out) / (len(doc_order) - len(held_out))
    parent_before = {r["theme_id"]: r["parent_id"] for r in rows["themes"]}
    parent_after = {t.theme_id: t.parent_id for t in second.themes_}
    broad_kept = sum(
        parent_after.get(after[c]) == parent_before.get(primaries[c]) for c in assigned
    )
    retired_kinds = collections.Counter(r["kind"] for r in second.retired_)
    print(
        f"stability: {kept}/{len(assigned)} previously assigned claims kept their theme id "
        f"({kept / len(assigned):.1%}) after adding {len(held_out)} articles (+{growth:.0%}); "
        f"retired {dict(retired_kinds)}"
    )
    print(f"broad-level stability: {broad_kept / len(assigned):.1%} kept their broad theme id")

    # 2. Quality: a fit from scratch on everything.
    t0 = time.perf_counter()
    full = ThemeModel(vectors, config, keyword_embed=embed).fit(claims_all)
    t_fit_full = time.perf_counter() - t0
    parent = {t.theme_id: t.parent_id for t in full.themes_}
    kinds = collections.Counter(t.kind for t in full.themes_)
    per_doc: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for d, label in zip(doc_ids, full.labels_, strict=True):
        broad = parent.get(label) or label
        if label != UNASSIGNED:
            per_doc[d][broad] += 1
    docs_with = sorted(per_doc)
    dominant = [per_doc[d].most_common(1)[0][0] for d in docs_with]
    truth = [category[d] for d in docs_with]
    nmi = normalized_mutual_info_score(truth, dominant)
    ari = adjusted_rand_score(truth, dominant)
    unassigned = float(np.mean(full.labels_ == UNASSIGNED))
    print(
        f"themes: {kinds['broad']} broad, {kinds['discovered']} discovered fine, {kinds['named']} named"
    )
    print(
        f"dominant broad theme vs category over {len(docs_with)} documents: NMI {nmi:.3f}, ARI {ari:.3f}"
    )
    print(
        f"unassigned claims: {unassigned:.1%}; named-theme claims: {np.mean([lab in catalog.themes for lab in full.labels_]):.1%}"
    )
    for t in sorted(
        (t for t in full.themes_ if t.kind == "broad"), key=lambda t: -len(t.member_idx)
    ):
        cats = collections.Counter(category[doc_ids[i]] for i in t.member_idx).most_common(2)
        print(f"  {t.theme_id}: {len(t.member_idx):6d} claims  {t.label:<40} {cats}")
    cats = np.array([category[d] for d in doc_ids])
    off = np.isin(cats, ["sport", "entertainment"])
    named_off = np.isin(full.labels_[off], list(catalog.themes))
    print(
        f"named themes on off-theme articles (sport/, entertainment/): {named_off.mean():.2%} of "
        f"{int(off.sum())} claims"
    )
    for t in full.themes_:
        if t.kind == "discovered" and t.parent_id in catalog.themes:
            print(f"  nested in {t.parent_id}: {t.theme_id} {len(t.member_idx)} claims  {t.label}")
    print(
        f"theme step (from scratch) {t_fit_full:.1f} s = {t_fit_full / t_embed_all:.1%} of embedding "
        f"the {len(texts)} claims ({t_embed_all:.0f} s at the rate of {len(sample)} encoded afresh)"
    )
    print(
        f"fit time: cold (90%) {t_fit_cold:.1f} s, warm (100%) {t_fit_warm:.1f} s, from scratch {t_fit_full:.1f} s; "
        f"embedding {t_embed:.1f} s for {emb.misses} texts; peak RSS {peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
