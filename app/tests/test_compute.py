"""Where Dask tasks run: with SCORING_DASK_DATA_RESOURCE set, only on the workers that
declare that resource (the ones that see the data root)."""

from __future__ import annotations

import dask
import pytest
from distributed import Scheduler, SpecCluster, Worker, get_worker
from scoring import compute
from scoring.settings import get_settings


@pytest.fixture
def two_workers(monkeypatch):
    """A scheduler with two in-process workers, only one of which has the data."""
    cluster = SpecCluster(
        scheduler={"cls": Scheduler, "options": {"dashboard": False}},
        workers={
            "with-data": {"cls": Worker, "options": {"nthreads": 2, "resources": {"data": 2}}},
            "without-data": {"cls": Worker, "options": {"nthreads": 2}},
        },
    )
    monkeypatch.setenv("SCORING_DASK_ADDRESS", cluster.scheduler_address)
    yield cluster
    compute.close_clients()
    cluster.close()


def worker_name() -> str:
    return str(get_worker().name)


@pytest.mark.parametrize("resource", ["", "data"])
def test_tasks_land_only_on_workers_with_the_data(two_workers, monkeypatch, resource):
    monkeypatch.setenv("SCORING_DASK_DATA_RESOURCE", resource)
    tasks = [dask.delayed(worker_name, pure=False)() for _ in range(60)]
    used = set(compute.run_tasks(get_settings(), tasks, "where", progress=False))
    if resource:
        assert used == {"with-data"}
    else:
        # The control: without the resource the tasks spread over both workers.
        assert len(used) == 2, used


def test_the_in_process_cluster_runs_no_sampling_profiler(monkeypatch):
    """The profiler's sys._current_frames() deadlocks on CPython 3.11 < 3.11.9 with threads
    reading Parquet (python/cpython#106883): a daily run hung in its first read about once
    in five, for ever. The in-process worker is built without it."""
    monkeypatch.setenv("SCORING_DASK_ADDRESS", "")
    try:
        client = compute.get_client(get_settings())
        workers = client.cluster.workers.values()
        assert workers
        for worker in workers:
            assert "profile" not in worker.periodic_callbacks
            assert "profile-cycle" not in worker.periodic_callbacks
        assert dask.config.get("distributed.worker.profile.enabled")  # only that cluster
    finally:
        compute.close_clients()
