"""The end-to-end rule tests of the sync and ticket slices, run unchanged against the three-node
cluster (replication factor 3, min.insync.replicas 2): the `system` fixture of this folder is the
cluster's. Conversations (C1-C7) and bad input (X4) are covered by the leader-kill test next door."""

from tests.e2e.test_sync_e2e import *  # noqa: F403 - collected again here, on the cluster
from tests.e2e.test_tickets_e2e import *  # noqa: F403
