"""Redis memory per signed-in person: INFO memory before and after, and MEMORY USAGE of each new key."""

from __future__ import annotations

import re
from collections import defaultdict

import redis

#: Long random runs in key names (session keys, sids, hashes) become `*`, so keys group by kind.
RANDOM_PART = re.compile(r"[A-Za-z0-9_\-]{16,}")


def key_kind(key: str) -> str:
    return RANDOM_PART.sub("*", key)


def snapshot(client: redis.Redis) -> tuple[int, set[bytes]]:
    return int(client.info("memory")["used_memory"]), set(client.scan_iter(count=1000))


def breakdown(client: redis.Redis, before: tuple[int, set[bytes]], people: int) -> dict:
    """Bytes per person: used_memory's growth, and MEMORY USAGE of the keys that appeared, by kind."""
    used_after, keys_after = snapshot(client)
    new_keys = sorted(keys_after - before[1])
    kinds: dict[str, dict[str, float]] = defaultdict(lambda: {"keys": 0, "bytes": 0})
    for start in range(0, len(new_keys), 1000):
        chunk = new_keys[start : start + 1000]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(chunk, pipe.execute(), strict=True):
            kind = kinds[key_kind(key.decode(errors="replace"))]
            kind["keys"] += 1
            kind["bytes"] += size or 0
    total_key_bytes = sum(kind["bytes"] for kind in kinds.values())
    return {
        "people": people,
        "used_memory_growth_bytes": used_after - before[0],
        "used_memory_per_person_bytes": round((used_after - before[0]) / max(people, 1)),
        "new_keys": len(new_keys),
        "key_bytes_per_person": round(total_key_bytes / max(people, 1)),
        "by_kind": {
            name: {
                "keys": int(kind["keys"]),
                "bytes_per_person": round(kind["bytes"] / max(people, 1)),
                "bytes_per_key": round(kind["bytes"] / max(kind["keys"], 1)),
            }
            for name, kind in sorted(kinds.items(), key=lambda item: -item[1]["bytes"])
        },
    }
