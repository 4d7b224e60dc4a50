"""Where datasets, features, ledgers and reports live: a local folder or ``s3://bucket/prefix``.

Both backends offer the same small interface over keys relative to the root (``a/b.parquet``).
Writes are atomic: a local write goes to a temporary file in the same folder and is renamed
into place after an fsync; an S3 ``PutObject`` is atomic by nature. So no reader ever sees a
partial file, whatever kills the writer.
"""

from __future__ import annotations

import io
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pixtag.core.errors import PixtagError

if TYPE_CHECKING:
    import pandas as pd


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class StorageError(PixtagError, RuntimeError):
    """A storage location cannot be read or written."""


class Storage(ABC):
    """Abstract store of bytes under a root URI."""

    uri: str

    def url(self, key: str) -> str:
        """Full URI of ``key`` (a local path or an ``s3://`` URL)."""
        return f"{self.uri.rstrip('/')}/{key.lstrip('/')}" if key else self.uri

    @abstractmethod
    def child(self, key: str) -> Storage:
        """A store rooted at ``key`` below this one."""
        ...

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        ...

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        ...

    @abstractmethod
    def exists(self, key: str) -> bool:
        ...

    @abstractmethod
    def delete(self, key: str) -> None:
        ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys below ``prefix``, relative to the root, in sorted order."""
        ...

    # --- helpers on top of bytes ----------------------------------------------------------
    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))

    def read_json(self, key: str) -> Any:
        import json

        return json.loads(self.read_text(key))

    def write_json(self, key: str, data: Any) -> None:
        import json

        self.write_text(key, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    def read_parquet(self, key: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.read_bytes(key)))

    def write_parquet(self, key: str, frame: pd.DataFrame) -> None:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        self.write_bytes(key, buf.getvalue())

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for ``key`` when the store is local, else ``None``."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class LocalStorage(Storage):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve() if key else self.root
        if path != self.root and self.root.resolve() not in path.parents:
            raise StorageError(f"key {key!r} escapes the storage root {self.root}")
        return path

    def child(self, key: str) -> LocalStorage:
        return LocalStorage(self._path(key))

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url(key)} does not exist") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            yield prefix
            return
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                yield path.relative_to(self.root).as_posix()

    def local_path(self, key: str) -> Path:
        return self._path(key)


class S3Storage(Storage):
    """``s3://bucket/prefix`` through boto3; ``endpoint_url`` selects MinIO, moto, ..."""

    def __init__(self, uri: str, endpoint_url: str | None = None):
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise StorageError(f"not an S3 URI: {uri!r} (expected s3://bucket/prefix)")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.endpoint_url = endpoint_url or os.environ.get("PIXTAG_S3_ENDPOINT_URL") or None
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                config=Config(
                    retries={"max_attempts": 5, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=60,
                ),
            )
        return self._client

    def _key(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    def child(self, key: str) -> S3Storage:
        sub = S3Storage(f"s3://{self.bucket}/{self._key(key)}", self.endpoint_url)
        sub._client = self._client
        return sub

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"{self.url(key)} does not exist") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix.lstrip("/")):
            keys.extend(obj["Key"][len(root):] for obj in page.get("Contents", []))
        yield from sorted(keys)


def open_storage(uri: str | Path, endpoint_url: str | None = None) -> Storage:
    """The store for a local folder or an ``s3://bucket/prefix`` URI."""
    text = str(uri)
    if text.startswith("s3://"):
        return S3Storage(text, endpoint_url)
    if "://" in text:
        raise StorageError(f"unsupported storage location {text!r}: use a folder or s3://...")
    return LocalStorage(text)
