"""Beyond one machine: plait's heavy work on a Ray cluster, the person's data and records on their machine.

- ``cluster``: connecting to Ray (an existing cluster by address, or a private instance on loopback);
- ``shipping``: what a Ray worker needs to load plait's models exactly as this machine does;
- ``ray_embedding``: the index's embeddings computed by Ray actors (``plait index add --executor ray``);
- ``ray_tasks``: a workflow's task steps run by Ray actors (``executor: ray``);
- ``serving``: plait's models as Ray Serve deployments (``plait serve --ray``), reached through the
  ``rayserve`` model backend (:mod:`plait.models.rayserve`).

The index, the workflow ledger, sinks and the HTTP server stay in the plait process on the person's
machine; workers get texts to embed or task requests, and model files, never the database.
Ray is an optional extra: ``pip install 'plait[ray]'``.
"""
