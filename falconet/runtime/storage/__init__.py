"""Internal storage (``kestra:///`` files: the interface in :mod:`.base`, a local folder in :mod:`.internal`,
an S3 bucket in :mod:`.s3`), namespace files and Ion row files."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.config import Config
    from falconet.runtime.storage.base import Storage


def open_storage(config: "Config") -> "Storage":
    """The storage ``kestra.storage.type`` names: the local folder (default) or an S3 bucket."""
    if config.storage_type == "s3":
        try:
            from falconet.runtime.storage.s3 import S3Storage
        except ImportError as exc:
            from falconet.runtime.config import ConfigError

            raise ConfigError(f"kestra.storage.type 's3' needs boto3: pip install 'falconet[s3]' ({exc})") from None

        s3 = config.storage_s3
        return S3Storage(s3["bucket"], endpoint=s3.get("endpoint"), region=s3.get("region"),
                         access_key=s3.get("access-key"), secret_key=s3.get("secret-key"),
                         prefix=s3.get("prefix", ""))
    from falconet.runtime.storage.internal import InternalStorage

    return InternalStorage(config.storage_dir)
