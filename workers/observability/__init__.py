"""Operating a worker process: Prometheus metrics, health for probes, OpenTelemetry traces, JSON logs,
and the small HTTP server that serves `/metrics`, `/health/live` and `/health/ready`.

Nothing here touches the delivery core: the core calls into it (see docs/operations.md, "Wiring").

- `config`: the settings of this package, from the environment;
- `metrics`: the metric families of one process, bound per worker (`Metrics.worker(name)`);
- `outbox`, `lag`: what the sampler measures (outbox backlog and age, consumer lag per partition);
- `health`: facts the worker sets and checks run on each readiness probe;
- `server`: the HTTP endpoint; `sampler`: the periodic measurements;
- `tracing`: trace context from record headers, a span per record, context into outgoing headers;
- `logs`: plain or JSON logging with per-record fields;
- `process`: `Observability`, the one object a worker process creates from all of the above.
"""
