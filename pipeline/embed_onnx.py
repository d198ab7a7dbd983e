"""Optional embedding backends: the model exported to ONNX (``onnx``), or quantised (``onnx-int8``).

Off by default (``EmbedderResource.backend = "torch"``); docs/performance.md has the measurements.
sentence-transformers' own ``backend="onnx"`` needs ``sentence-transformers[onnx]``, which pip
cannot install beside sentence-transformers 6.x (its optimum-onnx requires transformers < 4.58,
6.x requires >= 5), so the same pipeline is built here from its parts: the verified model is
exported locally with ``torch.onnx.export`` (nothing is downloaded), for ``onnx-int8`` its MatMul
weights are quantised per channel with ``onnxruntime.quantization.quantize_dynamic``, and
inference runs the
model's fast tokenizer -> ONNX Runtime -> mean pooling -> L2 normalisation, which is what the
packaged model's ``modules.json`` (Transformer, Pooling mean, Normalize) describes.

The export happens once per weights hash; later runs load only onnxruntime and tokenizers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from pipeline.embed import ModelError, ModelSpec, load_model

__all__ = ["ONNX", "ONNX_INT8", "OnnxEncoder", "export_fp32", "export_model"]

log = logging.getLogger(__name__)

ONNX: Final = "onnx"
ONNX_INT8: Final = "onnx-int8"
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
_MISSING: Final = "the ONNX embedding backends need onnxruntime and onnx: pip install -e '.[onnx]'"


def export_model(spec: ModelSpec, directory: str | os.PathLike[str], backend: str) -> Path:
    """Export the verified model for ``backend`` (onnx or onnx-int8) unless already there.

    The file appears atomically (written in a temporary dir, then renamed), so a killed export
    leaves nothing half-written; callers key ``directory`` by model and weights hash.

    Raises:
        ModelError: If onnxruntime or onnx is not installed.
    """
    if backend not in (ONNX, ONNX_INT8):
        raise ValueError(f"unknown ONNX backend {backend!r}")
    out = Path(directory) / ("model_int8.onnx" if backend == ONNX_INT8 else "model.onnx")
    if out.is_file():
        return out
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise ModelError(_MISSING) from err
    model = load_model(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=out.parent))
    try:
        exported = export_fp32(model, work / "model.onnx")
        if backend == ONNX_INT8:
            # Per channel and MatMul only: quantising every op per tensor (the default) moved
            # seed-claim embeddings to cosine 0.94 of the torch ones; this keeps them ~0.99.
            exported = work / out.name
            quantize_dynamic(
                str(work / "model.onnx"),
                str(exported),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
        os.replace(exported, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("exported %s to %s", spec.name, out)
    return out


def export_fp32(model: Any, path: Path) -> Path:
    """Write a loaded SentenceTransformer's transformer as ONNX (token embeddings out)."""
    import torch

    sample = model.tokenize(["an example sentence", "another one"])
    # The tracer warns about Python-level branches in the attention code; they do not depend on
    # the batch or sequence size (the exported model gives the torch vectors: cosine 1.0000).
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _token_embeddings(model[0].auto_model.eval()),
            tuple(sample[name] for name in _INPUTS),
            str(path),
            input_names=list(_INPUTS),
            output_names=["token_embeddings"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in (*_INPUTS, "token_embeddings")},
            opset_version=17,
            dynamo=False,
        )
    return path


def _token_embeddings(bert: Any) -> Any:
    """The transformer as a module of the three inputs, returning token embeddings."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        # Keyword call: BertModel.forward's positional order changes between versions.
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    return TokenEmbeddings()


class OnnxEncoder:
    """Embed texts with an exported model: tokenizer, ONNX Runtime, mean pooling, L2 norm.

    Args:
        onnx_path: From :func:`export_model`.
        model_dir: The sentence-transformers model directory (tokenizer and max length).
        batch_size: Texts per inference call (length-sorted, so padding stays small).
        num_threads: ONNX Runtime intra-op threads; ``None`` lets it use every core.
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        model_dir: str | os.PathLike[str],
        batch_size: int = 64,
        num_threads: int | None = None,
    ) -> None:
        """Open the session and the tokenizer."""
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ModelError(_MISSING) from err
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(_max_tokens(model_dir))
        self.tokenizer.enable_padding()
        self.batch_size = batch_size
        self.dimension = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape ``(len(texts), dim)``; identical texts run once."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        order = np.argsort([len(t) for t in unique], kind="stable")
        out = np.zeros((len(unique), self.dimension), dtype=np.float32)
        for start in range(0, len(unique), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer.encode_batch([str(unique[i]) for i in idx])
            mask = np.asarray([e.attention_mask for e in batch], dtype=np.int64)
            feeds = {
                "input_ids": np.asarray([e.ids for e in batch], dtype=np.int64),
                "attention_mask": mask,
                "token_type_ids": np.asarray([e.type_ids for e in batch], dtype=np.int64),
            }
            (tokens,) = self.session.run(None, feeds)
            mean = (tokens * mask[:, :, None]).sum(axis=1) / np.maximum(
                mask.sum(axis=1, keepdims=True), 1
            )
            out[idx] = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        result: np.ndarray = out[inverse.reshape(-1)]
        return result


def _max_tokens(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256
