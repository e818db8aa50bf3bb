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
