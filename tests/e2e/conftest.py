"""Fixtures of the end-to-end tests that compare a deployment's tables with the local profile's."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEEDS
from tests.helpers import cli_process

LOCAL_YAML = ROOT / "config" / "dagster.yaml"


@pytest.fixture(scope="session")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the seeds (``raw`` beside it) through the local profile: the reference.

    Made once per session even when the tests are spread over pytest-xdist workers
    (the xdist recipe: a folder shared by the workers, under a file lock); tests only read it.
    """
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "local-profile-run"
    with FileLock(f"{shared}.lock"):
        if not (shared / "done").exists():
            shutil.rmtree(shared, ignore_errors=True)
            (shared / "raw").mkdir(parents=True)
            for f in sorted(SEEDS.glob("*.txt")):
                shutil.copy2(f, shared / "raw" / f.name)
            home = shared / "home"
            home.mkdir()
            shutil.copy(LOCAL_YAML, home / "dagster.yaml")
            proc = cli_process(shared / "raw", shared / "out", home)
            assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
            (shared / "done").touch()
    return shared / "out"


@pytest.fixture
def seeds(local_run: Path) -> Path:
    """The raw dir of the reference run (tests read it; one that changes it copies it)."""
    return local_run.parent / "raw"
