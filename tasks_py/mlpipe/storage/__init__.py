"""mlpipe storage layer: NGAS client, local read cache, MLflow artifact plugin.

Typical use::

    from mlpipe.storage import NgasClient, ReadCache

    client = NgasClient.from_config()                 # [ngas] url/timeout/retries
    info = client.archive("model.pkl", "exp1/run42/model.pkl")
    info.file_id, info.version, info.size, info.checksum
    client.retrieve("exp1/run42/model.pkl", "/tmp/model.pkl")        # newest version
    client.versions("exp1/run42/model.pkl"); client.exists(...); client.list("exp1/")

    cache = ReadCache.from_config()                   # [cache] dir/max_size/mode
    path = cache.fetch("exp1/run42/model.pkl")         # or "ngas://host:7777/exp1/..."

All errors are :class:`mlpipe.errors.MlpipeError` subclasses (see
:mod:`mlpipe.storage.errors`).
"""

from mlpipe.storage.cache import CacheStats, ReadCache
from mlpipe.storage.errors import (
    BadEmptyMarker,
    BadFileId,
    BadUri,
    CacheMiss,
    ChecksumMismatch,
    DeleteRefused,
    NgasError,
    NgasNotFound,
    NgasUnavailable,
)
from mlpipe.storage.ngas import ArchiveResult, FileInfo, NgasClient, NgasStatus, crc32_of_file
from mlpipe.storage.uri import NgasUri, parse_ngas_uri

__all__ = [
    "ArchiveResult",
    "BadEmptyMarker",
    "BadFileId",
    "BadUri",
    "CacheMiss",
    "CacheStats",
    "ChecksumMismatch",
    "DeleteRefused",
    "FileInfo",
    "NgasClient",
    "NgasError",
    "NgasNotFound",
    "NgasStatus",
    "NgasUnavailable",
    "NgasUri",
    "ReadCache",
    "crc32_of_file",
    "parse_ngas_uri",
]
