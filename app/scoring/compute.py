"""Where Dask work runs: the scheduler at SCORING_DASK_ADDRESS, or an in-process cluster.

All heavy steps hand lists of `dask.delayed` calls to `run_tasks`, which shows progress and
returns the results in order. With no address configured, one in-process LocalCluster is
started on first use and reused for the life of the process (starting one costs about a
second, so it is not done per step).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Sequence
from typing import Any

import dask
from distributed import Client, LocalCluster, as_completed
from tqdm import tqdm

from scoring.errors import ConfigError
from scoring.settings import Settings

log = logging.getLogger(__name__)
_clients: dict[str, Client] = {}
_lock = threading.Lock()


def _connect(address: str) -> Client:
    if address:
        try:
            return Client(address, timeout="15s", set_as_default=False)
        except OSError as err:
            raise ConfigError(
                f"cannot reach the Dask scheduler at SCORING_DASK_ADDRESS={address} ({err}); "
                "unset it to compute in-process"
            ) from None
    # Random dashboard port: the fixed default may belong to the shared scheduler.
    cluster = local_cluster(processes=False, dashboard_address=":0", n_workers=1)
    return Client(cluster, set_as_default=False)


def local_cluster(**options: Any) -> LocalCluster:
    """A LocalCluster whose workers run no sampling profiler.

    Every 10 ms the profiler calls sys._current_frames(), which on CPython 3.11 before
    3.11.9 can deadlock with threads reading Parquet (python/cpython#106883): the run then
    hangs for ever inside a read.
    """
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return LocalCluster(**options)


def get_client(settings: Settings) -> Client:
    address = settings.dask_address
    with _lock:
        client = _clients.get(address)
        if client is None or client.status not in ("running", "connecting"):
            client = _clients[address] = _connect(address)
            log.info("dask: %s", client.dashboard_link if address else "in-process cluster")
        return client


def worker_threads(settings: Settings) -> int:
    """The threads of all workers of the configured cluster (at least 1)."""
    return max(1, sum(get_client(settings).nthreads().values()))


def close_clients() -> None:
    with _lock:
        for client in _clients.values():
            cluster = client.cluster  # None when connected to a remote scheduler
            client.close()
            if cluster is not None:
                cluster.close()
        _clients.clear()


atexit.register(close_clients)


def run_tasks(
    settings: Settings, tasks: Sequence[Any], description: str, progress: bool = True
) -> list[Any]:
    """Compute delayed objects on the configured cluster; results keep the input order."""
    if not tasks:
        return []
    client = get_client(settings)
    resources = {settings.dask_data_resource: 1} if settings.dask_data_resource else None
    futures = client.compute(list(tasks), resources=resources)
    position = {future.key: index for index, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    with tqdm(total=len(futures), desc=description, unit="task", disable=not progress) as bar:
        for future in as_completed(futures, loop=client.loop):
            # result() re-raises the task's own exception (e.g. a RawDataError).
            results[position[future.key]] = future.result()
            bar.update()
    return results
