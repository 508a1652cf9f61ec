"""Connection quality: decide ``good`` / ``bad`` / ``offline`` for the read cache.

``auto`` mode measures instead of trusting config: the median round trip of a
few NGAS STATUS requests (latency) and the throughput of the recent downloads
the cache recorded *from that server* (no test download is made; the cache
keeps one figure per server, a moving average of its downloads of 1 MiB or
more, so a slow server never marks a fast one as bad). Thresholds come from
``[cache] probe_max_latency_ms`` and ``probe_min_throughput_mbps``; docs/cache.md
says how to tune them for a WAN link.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Final, Literal

from mlpipe.storage.errors import NgasAccessDenied, NgasError
from mlpipe.storage.ngas import NgasClient

ConnectionMode = Literal["good", "bad", "offline"]
GOOD: Final = "good"
BAD: Final = "bad"
OFFLINE: Final = "offline"


@dataclass(frozen=True)
class ProbeResult:
    """What was measured and the mode it implies."""

    mode: ConnectionMode
    latency_ms: float | None
    throughput_mbps: float | None
    reason: str


def probe(
    client: NgasClient,
    *,
    max_latency_ms: float,
    min_throughput_mbps: float,
    recent_throughput_mbps: float | None = None,
    samples: int = 3,
) -> ProbeResult:
    """Measure ``client``'s server and classify the connection."""
    quick = NgasClient(client.url, timeout=min(client.timeout, 5.0), retries=0, backoff=0)
    quick.session, quick.username = client.session, client.username  # same credentials
    times: list[float] = []
    try:
        for _ in range(samples):
            start = time.perf_counter()
            status = quick.status()
            times.append((time.perf_counter() - start) * 1000)
    except NgasAccessDenied:
        raise  # wrong or missing credentials are a configuration error, not a bad connection
    except NgasError as exc:
        return ProbeResult(OFFLINE, None, recent_throughput_mbps, f"NGAS unreachable: {exc}")
    finally:
        client.requests_sent += quick.requests_sent
    latency = statistics.median(times)
    if not status.online:
        return ProbeResult(BAD, latency, recent_throughput_mbps, f"NGAS state {status.state}")
    if latency > max_latency_ms:
        reason = f"latency {latency:.0f} ms > {max_latency_ms:.0f} ms"
        return ProbeResult(BAD, latency, recent_throughput_mbps, reason)
    if recent_throughput_mbps is not None and recent_throughput_mbps < min_throughput_mbps:
        reason = f"recent throughput {recent_throughput_mbps:.1f} MB/s < {min_throughput_mbps} MB/s"
        return ProbeResult(BAD, latency, recent_throughput_mbps, reason)
    return ProbeResult(GOOD, latency, recent_throughput_mbps, f"latency {latency:.0f} ms")
