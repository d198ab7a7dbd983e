import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SEEDS = ROOT / "data" / "raw"


@pytest.fixture(scope="session")
def embedder():
    """The real packaged model, loaded once for the whole session."""
    from assets.resources import EmbedderResource

    resource = EmbedderResource()
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
        if "embedder" in fixtures or runs_cli or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.model)
