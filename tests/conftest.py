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
