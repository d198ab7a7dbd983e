"""The ONNX backends: the model exported to ONNX (``onnx``, chosen by ``auto``) or quantised.

sentence-transformers' own ``backend="onnx"`` needs ``sentence-transformers[onnx]``, which pip
cannot install beside sentence-transformers 6.x (its optimum-onnx requires transformers < 4.58,
6.x requires >= 5), so the same pipeline is built here from its parts: the verified model is
exported locally with ``torch.onnx.export`` (nothing is downloaded), for ``onnx-int8`` its MatMul
weights are quantised per channel with ``onnxruntime.quantization.quantize_dynamic``, and
inference runs the model's fast tokenizer -> ONNX Runtime -> mean pooling -> L2 normalisation,
which is what the packaged model's ``modules.json`` (Transformer, Pooling mean, Normalize)
describes.

The export happens once per weights hash; later runs load only onnxruntime and tokenizers.
:func:`verified_export` also checks, once, that the fp32 export gives torch's vectors, and
records the export's hash, which every later run checks before using it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np

from pipeline.embed.encoders import ONNX, ONNX_INT8, embed_texts, load_model
from pipeline.embed.model import ModelError, ModelSpec, file_sha256

__all__ = [
    "MIN_COSINE",
    "ONNX",
    "ONNX_INT8",
    "ExportRefused",
    "OnnxEncoder",
    "export_fp32",
    "export_model",
    "verified_export",
]

log = logging.getLogger(__name__)

MIN_COSINE: Final = 0.99999
"""The least cosine to torch's vector, on every probe text, for ``auto`` to use the export."""
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
_MISSING: Final = "the ONNX embedding backends need onnxruntime and onnx: pip install -e '.[onnx]'"
_RECORD: Final = "model.onnx.json"
# Texts written for this check (no corpus sentence): short and long, punctuation, digits, other
# scripts, and one past the model's 256-token limit, so truncation is compared too.
_PROBES: Final = (
    "Rain is expected tomorrow.",
    "The committee approved the budget on Tuesday, after a long debate about schools and roads.",
    "Exports rose by 4.5% in the third quarter, the statistics office said.",
    '"We will not accept this," the spokesperson told reporters in Berlin.',
    "Prices of coffee, cocoa and sugar fell sharply; traders blamed the weather.",
    "Москва и Пекин подписали соглашение о сотрудничестве.",
    "东京的天气很好。",
    "Les négociations reprendront la semaine prochaine à Genève.",
    "OK",
    "a",
    " ".join(f"Sentence number {i} talks about trains, ports, wheat and steel." for i in range(40)),
)
_PACKAGES: Final = ("onnxruntime", "onnx", "torch", "transformers", "sentence-transformers")


class ExportRefused(RuntimeError):
    """The ONNX export cannot be made, or does not give torch's vectors (``auto`` uses torch)."""


def verified_export(
    spec: ModelSpec, directory: str | os.PathLike[str], device: str = "cpu"
) -> Path:
    """The fp32 ONNX export of ``spec`` in ``directory``, made and checked if need be.

    The first call exports the model and embeds a fixed set of probe texts with torch and with
    the export; the export is accepted only if every cosine reaches :data:`MIN_COSINE`. The
    verdict is recorded beside the export with its SHA-256 and the versions of the packages
    that made it; later calls check the file against that hash (a changed or corrupt file is
    exported again) and decide again when a package version changes.

    Raises:
        ExportRefused: If onnxruntime or onnx is missing, the export fails, or its vectors are
            not torch's; the reason says which.
        ModelError: If the model's weights do not match their pin.
    """
    directory = Path(directory)
    out = directory / "model.onnx"
    versions = _versions()
    record = _read_record(directory / _RECORD)
    if record is not None and record.get("versions") == versions:
        if not record.get("accepted"):
            raise ExportRefused(str(record.get("reason")))
        if out.is_file() and file_sha256(out) == record.get("onnx_sha256"):
            return out
        log.warning("the ONNX export %s does not match its record: exporting again", out)
    if versions["onnxruntime"] is None or versions["onnx"] is None:
        raise ExportRefused(_MISSING)
    out.unlink(missing_ok=True)
    model = load_model(spec, device)
    try:
        export_model(spec, directory, ONNX, model=model)
        reference = embed_texts(model, list(_PROBES))
        vectors = OnnxEncoder(out, spec.path).encode(list(_PROBES))
        cosine = float(np.einsum("ij,ij->i", reference, vectors).min())
    except (RuntimeError, ValueError, OSError) as err:  # torch.onnx and onnxruntime errors
        verdict = {"accepted": False, "reason": f"the ONNX export failed: {err}"}
    else:
        accepted = cosine >= MIN_COSINE
        reason = (
            f"the ONNX export's vectors differ from torch's (least cosine {cosine:.7f} on the "
            f"probe texts, below {MIN_COSINE})"
        )
        verdict = {
            "accepted": accepted,
            "reason": None if accepted else reason,
            "min_cosine": cosine,
            "onnx_sha256": file_sha256(out),
        }
    _write_record(directory / _RECORD, {**verdict, "versions": versions, "model": spec.name})
    if not verdict["accepted"]:
        raise ExportRefused(str(verdict["reason"]))
    log.info("ONNX export %s gives torch's vectors (least cosine %.7f)", out, cosine)
    return out


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, path)


def export_model(
    spec: ModelSpec, directory: str | os.PathLike[str], backend: str, model: Any = None
) -> Path:
    """Export the verified model for ``backend`` (onnx or onnx-int8) unless already there.

    The file appears atomically (written in a temporary dir, then renamed), so a killed export
    leaves nothing half-written; callers key ``directory`` by model, weights hash and backend.

    Args:
        spec: The model.
        directory: Where the export goes.
        backend: ``onnx`` or ``onnx-int8``.
        model: The model already loaded with torch (else it is loaded here).

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
    model = model if model is not None else load_model(spec)
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

    sample = model.preprocess(["an example sentence", "another one"])
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
        backend: ``onnx`` or ``onnx-int8``, which file ``onnx_path`` is (for the record).
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        model_dir: str | os.PathLike[str],
        batch_size: int = 64,
        num_threads: int | None = None,
        backend: str = ONNX,
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
        self.backend = backend
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
