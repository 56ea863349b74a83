"""Realistic, unique pipeline names drawn from a seed.

Names follow the shapes teams use (`orders-api-prod`, `web.checkout-staging`,
`ml_feature-store@eu`), always within the service's `[A-Za-z0-9.@_-]{1,100}`.
"""

from __future__ import annotations

import random

_TEAMS = ["payments", "orders", "search", "identity", "catalog", "billing", "growth", "infra"]
_SERVICES = [
    "api", "web", "worker", "gateway", "ingest", "frontend", "scheduler", "notifier",
    "ledger", "auth", "reports", "feature-store", "etl", "mobile-bff", "docs",
]  # fmt: skip
_ENVS = ["prod", "staging", "dev", "qa", "prod-eu", "prod-us"]


def pipeline_names(count: int, seed: int) -> list[str]:
    """`count` distinct names, the same for the same seed."""
    rng = random.Random(f"names/{seed}")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        team, service, env = rng.choice(_TEAMS), rng.choice(_SERVICES), rng.choice(_ENVS)
        shape = rng.random()
        if shape < 0.7:
            name = f"{team}-{service}-{env}"
        elif shape < 0.85:
            name = f"{team}.{service}-{env}"
        elif shape < 0.95:
            name = f"{service}_{team}@{env}"
        else:
            name = f"{service.upper()}-{env}"
        base, n = name, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        names.append(name)
    return names
