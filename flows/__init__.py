"""The Prefect flows (docs/orchestration.md). They run offline: Prefect's server analytics and the
client-side usage telemetry are off unless the environment says otherwise, since an unreachable
telemetry endpoint is logged as an ERROR on every run."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
