import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One ONNX export per test process (each xdist worker), shared by the runs that its tests start
# in subprocesses (each would otherwise export the model into its own output dir).
_ONNX_DIR = tempfile.mkdtemp(prefix="docthemes-test-onnx-")
os.environ["DOCTHEMES_ONNX_DIR"] = _ONNX_DIR


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's ONNX export."""
    shutil.rmtree(_ONNX_DIR, ignore_errors=True)


ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SEEDS = ROOT / "data" / "raw"


@pytest.fixture(scope="session")
def embedder():
    """The real packaged model with the default backend, loaded once for the whole session."""
    from assets.resources import embedder_from_env

    resource = embedder_from_env()
    resource.embed(["warm up"])
    return resource


@pytest.fixture(scope="session")
def torch_embedder():
    """The real packaged model on torch: the reference the other backends are held to."""
    from assets.resources import EmbedderResource

    resource = EmbedderResource(backend="torch")
    resource.embed(["warm up"])
    return resource


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    """A private copy of the two shipped seed articles."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in sorted(SEEDS.glob("*.txt")):
        shutil.copy2(f, raw / f.name)
    return raw


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that loads the embedding model (`make test-fast` leaves them out).

    A test needs the model when it uses the ``embedder`` fixture (or one built on it) or starts
    a ``docthemes run`` process.
    """
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        source = getattr(getattr(item, "function", None), "__code__", None)
        runs_cli = source is not None and "cli_process" in source.co_names
        if (
            {"embedder", "torch_embedder"} & set(fixtures)
            or runs_cli
            or item.get_closest_marker("slow")
        ):
            item.add_marker(pytest.mark.model)
