"""Embedding on a cluster's workers: each worker process opens the verified encoder once.

A task carries an :class:`EncoderRecipe` (a few strings) and a chunk of texts, never a model:
the worker resolves and verifies the model on its own disk, opens the encoder the first time a
recipe reaches it and keeps it for every later task, and sends back a float32 array.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.embed.encoders import AUTO, Encoder, open_encoder
from pipeline.embed.model import resolve_model
from pipeline.faults import fault_point

__all__ = ["EncoderRecipe", "encode_texts"]


@dataclass(frozen=True, slots=True)
class EncoderRecipe:
    """Everything a process needs to open the same encoder as the driver.

    Args:
        model: Model name or local directory (the same on every worker: one image).
        expected_sha256: Pin for the weights file.
        backend: The backend the driver resolved (never ``auto``: workers do not each decide,
            so a run never mixes backends).
        onnx_dir: Absolute path of the ONNX exports (shared storage, made by the driver).
        device: Torch device.
        num_threads: Threads per worker process for torch or ONNX Runtime.
        batch_size: Texts per forward pass.
    """

    model: str
    expected_sha256: str | None
    backend: str
    onnx_dir: str
    device: str = "cpu"
    num_threads: int | None = 1
    batch_size: int = 64

    def __post_init__(self) -> None:
        """Refuse a recipe that each worker would resolve on its own."""
        if self.backend == AUTO:
            raise ValueError("an encoder recipe names the resolved backend, not auto")
        if not Path(self.onnx_dir).is_absolute():
            raise ValueError(f"onnx_dir must be absolute on a cluster, got {self.onnx_dir!r}")

    def open(self) -> Encoder:
        """Resolve, verify and load the encoder in this process."""
        return open_encoder(
            resolve_model(self.model, self.expected_sha256),
            self.backend,
            self.onnx_dir,
            device=self.device,
            num_threads=self.num_threads,
            batch_size=self.batch_size,
        )


@functools.lru_cache(maxsize=2)
def _encoder(recipe: EncoderRecipe) -> Encoder:
    # One per worker process and recipe: a worker runs many tasks of one run.
    return recipe.open()


def encode_texts(recipe: EncoderRecipe, texts: list[str]) -> np.ndarray:
    """L2-normalised float32 vectors of ``texts``: one data-parallel task."""
    fault_point("embedding-task")
    return _encoder(recipe).encode(texts)
