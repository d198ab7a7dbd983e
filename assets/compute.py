"""Where the data-parallel work runs: the deployment profile (docs/deploy.md).

``local`` (the default) splits and embeds in the run's own process, as ever. ``cluster`` sends
the same pure functions to the workers of an existing Dask cluster through its
``concurrent.futures`` executor; the rest of the graph (scan, the theme fit over all claims,
matching, publication and the run lock) stays in the run's process, which is what Dagster
launched. The instance storage (SQLite or PostgreSQL) is the other half of a profile and lives
in ``$DAGSTER_HOME/dagster.yaml`` (config/dagster.yaml, config/dagster-cluster.yaml).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import dagster as dg
from pydantic import Field, PrivateAttr, model_validator

from pipeline.parallel import Workers

LOCAL = "local"
CLUSTER = "cluster"


class ComputeResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The deployment profile's compute: this process, or a Dask cluster's workers."""

    profile: Literal["local", "cluster"] = Field(
        default="local",
        description=(
            "local: everything in the run's process. cluster: documents are split and claims "
            "embedded as tasks on the Dask cluster at `scheduler` (DOCTHEMES_PROFILE)."
        ),
    )
    scheduler: str | None = Field(
        default=None,
        description="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (DOCTHEMES_DASK_SCHEDULER).",
    )
    connect_timeout_s: float = Field(default=30.0, gt=0)
    tasks_in_flight: int | None = Field(
        default=None, ge=1, description="Tasks submitted ahead; None = twice the worker threads."
    )
    task_retries: int = Field(
        default=2,
        ge=0,
        description="Retries of a failed task; a task whose worker died is also rescheduled.",
    )
    worker_threads: int = Field(
        default=1, ge=1, description="Torch / ONNX Runtime threads per embedding task on a worker."
    )

    _client: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _scheduler_for_cluster(self) -> "ComputeResource":
        if self.profile == CLUSTER and not self.scheduler:
            raise ValueError(
                "the cluster profile needs a Dask scheduler address (DOCTHEMES_DASK_SCHEDULER)"
            )
        return self

    def workers(self) -> Workers:
        """Where tasks run: this process (local), or the cluster (connecting on first use)."""
        if self.profile == LOCAL:
            return Workers()
        client = self._connect()
        threads = sum(client.nthreads().values())
        executor = client.get_executor(retries=self.task_retries, pure=False)
        return Workers(executor, self.tasks_in_flight or max(2, 2 * threads))

    @contextmanager
    def lost_workers_fail_the_step(self) -> Iterator[None]:
        """A task whose workers kept dying fails the step at once, with what to look at.

        Dask has already rescheduled it (``distributed.scheduler.allowed-failures``) and
        retried it (``task_retries``); a step retry would only kill more workers.
        """
        if self.profile == LOCAL:
            yield
            return
        from distributed import KilledWorker

        try:
            yield
        except KilledWorker as err:
            raise dg.Failure(
                description=(
                    f"a task killed every worker that ran it ({err}); nothing was published. "
                    "Look at the workers' logs (out of memory? a crash in the model?)"
                ),
                allow_retries=False,
            ) from err

    def _connect(self) -> Any:
        if self._client is None:
            try:
                from distributed import Client
            except ImportError as err:
                raise dg.Failure(
                    "the cluster profile needs its extras: pip install 'docthemes[cluster]'",
                    allow_retries=False,
                ) from err
            try:
                self._client = Client(  # type: ignore[no-untyped-call]
                    self.scheduler, timeout=self.connect_timeout_s, set_as_default=False
                )
            except OSError as err:
                raise dg.Failure(
                    f"cannot reach the Dask scheduler {self.scheduler} (DOCTHEMES_DASK_SCHEDULER): "
                    f"{err}"
                ) from err
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Disconnect from the scheduler (the cluster itself keeps running)."""
        if self._client is not None:
            self._client.close()
            self._client = None


def compute_from_env() -> ComputeResource:
    """The profile from DOCTHEMES_PROFILE and DOCTHEMES_DASK_SCHEDULER (default: local)."""
    profile = os.environ.get("DOCTHEMES_PROFILE") or LOCAL
    if profile not in (LOCAL, CLUSTER):
        raise ValueError(f"DOCTHEMES_PROFILE must be local or cluster, got {profile!r}")
    return ComputeResource(
        profile=profile,  # type: ignore[arg-type]
        scheduler=os.environ.get("DOCTHEMES_DASK_SCHEDULER") or None,
    )
