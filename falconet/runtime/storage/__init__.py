"""Internal storage (``kestra:///`` files: the interface in :mod:`.base`, a local folder in :mod:`.internal`,
an S3 bucket in :mod:`.s3`), namespace files and Ion row files."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.config import Config
    from falconet.runtime.storage.base import Storage


def open_storage(config: "Config") -> "Storage":
    """The storage ``kestra.storage.type`` names: the local folder (default) or an S3 bucket, checked to be
    reachable. Blocking; a missing boto3 or an unreachable bucket is a :class:`ConfigError`."""
    if config.storage_type == "s3":
        from falconet.runtime.config import ConfigError

        try:
            from falconet.runtime.storage.s3 import S3Storage
        except ImportError as exc:
            raise ConfigError(f"kestra.storage.type 's3' needs boto3: pip install 'falconet[s3]' ({exc})") from None
        s3 = config.storage_s3
        where = f"S3 bucket '{s3['bucket']}'" + (f" at {s3['endpoint']}" if s3.get("endpoint") else "")
        try:
            storage = S3Storage(s3["bucket"], endpoint=s3.get("endpoint"), region=s3.get("region"),
                                access_key=s3.get("access-key"), secret_key=s3.get("secret-key"),
                                prefix=s3.get("prefix", ""))
            storage.check()
        except Exception as exc:  # botocore's errors (endpoint, credentials, bucket) and a bad prefix
            raise ConfigError(f"cannot use the {where}: {exc}") from None
        return storage
    from falconet.runtime.storage.internal import InternalStorage

    return InternalStorage(config.storage_dir)
