"""Reading a process's /-/metrics from loopback, as an operator's Prometheus would."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 30


def metric(url: str, name: str, **labels: str) -> float:
    """A sample of `url`'s /-/metrics, summed over the series matching `labels`."""
    response = requests.get(f"{url}/-/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    )
