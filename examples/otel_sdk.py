"""pooldoctor's connection metrics through the OpenTelemetry SDK.

pooldoctor depends only on ``opentelemetry-api``; the program chooses the SDK, the reader and
the exporter. This one prints the metrics to the console once, at the end; in production use
an OTLP exporter (``opentelemetry-exporter-otlp``) and a ``PeriodicExportingMetricReader``.

    pip install 'pooldoctor[otel]' opentelemetry-sdk
    python examples/otel_sdk.py [DATABASE_URL]
"""

from __future__ import annotations

import sys
import threading

import sqlalchemy as sa
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

import pooldoctor
from pooldoctor.metrics import otel


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///otel-example.sqlite"
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(),
                                           export_interval_millis=60_000)
    # host.name and process.pid on the Resource: a fleet's figures stay apart by host
    provider = MeterProvider(metric_readers=[reader],
                             resource=Resource.create(otel.resource_attributes()))
    metrics.set_meter_provider(provider)

    pooldoctor.instrument(log=False)  # the guard: every engine of the process
    otel.instrument()  # the db.client.connection.* instruments, on the global provider

    engine = sa.create_engine(url, pool_size=2, max_overflow=0, pool_timeout=0.5)

    def work() -> None:
        for _ in range(20):
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

    threads = [threading.Thread(target=work) for _ in range(4)]  # 4 threads, 2 connections
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(pooldoctor.stats(engine), file=sys.stderr)
    provider.shutdown()  # exports once more, to the console
    engine.dispose()


if __name__ == "__main__":
    main()
