"""The chaos suite: real traffic through the real topics, faults injected during the load, and a check
from the outside afterwards (input topics as sent, the tables, output topics read from the beginning).

    python -m tests.chaos --messages N --minutes M --faults kinds... --json out.json   (scripts/chaos.sh)

Modules: `infra` (own broker(s) and PostgreSQL), `fleet` (worker processes), `armed_worker` (the
test-only checkpoint hook), `traffic` (seeded load), `faults` (injectors), `monitor` (consumer-group
progress, recovery times), `checker` (the verdict), `report` (table and JSON), `run` (the whole run).
See docs/chaos.md.
"""
