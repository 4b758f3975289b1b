"""One local Ray instance for the Ray tests, entirely on 127.0.0.1, with a small object store: started once
(~6-15 s on two busy cores) and stopped after the last Ray test, so the rest of the suite runs without it.

It is started through plait's own :func:`plait.distributed.cluster.connect` (what `--executor ray` does
without an address), so the loopback setting and its check are the ones users get. Two CPUs, so two
workers run at once on the test machine's two cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

OBJECT_STORE_MB = 300


@pytest.fixture(scope="package")
def ray_instance() -> Iterator[Any]:
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'plait[ray]'")
    from plait.distributed.cluster import connect

    ray = connect(cpus=2, object_store_mb=OBJECT_STORE_MB)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="package")
def ray_address(ray_instance: Any) -> str:
    """The GCS address another process (a `plait` command under test) connects to."""
    return str(ray_instance.get_runtime_context().gcs_address)
