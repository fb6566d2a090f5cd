"""Figures read back from an OpenTelemetry SDK reader, for the metrics tests."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from pooldoctor.metrics.semconv import POOL_NAME, STATE


def figures(reader: InMemoryMetricReader, pool: str) -> dict[tuple[str, str], float]:
    """``(metric, state or "") -> value`` of ``pool``; histograms as ``_count`` and ``_sum``."""
    out: dict[tuple[str, str], float] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    if p.attributes.get(POOL_NAME) != pool:
                        continue
                    state = str(p.attributes.get(STATE, ""))
                    if hasattr(p, "bucket_counts"):
                        out[(m.name + "_count", state)] = p.count
                        out[(m.name + "_sum", state)] = p.sum
                    else:
                        out[(m.name, state)] = p.value
    return out
