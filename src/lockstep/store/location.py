"""Where a store lives: a local folder (a :class:`~pathlib.Path`) or a prefix in an object store.

A store on S3 (or an S3-compatible server: MinIO, moto, Ceph, R2) is named
``s3://BUCKET/PREFIX``. How to reach it comes from ``[project.storage_options]``
first, then from the standard AWS environment variables:

======================  ==========================  =====================================
storage option          environment variable        meaning
======================  ==========================  =====================================
aws_access_key_id       AWS_ACCESS_KEY_ID           the access key
aws_secret_access_key   AWS_SECRET_ACCESS_KEY       the secret key
aws_session_token       AWS_SESSION_TOKEN           a temporary session's token
aws_region              AWS_REGION                  the bucket's region (default us-east-1)
aws_endpoint_url        AWS_ENDPOINT_URL            an S3-compatible server (MinIO, moto)
aws_allow_http          AWS_ALLOW_HTTP              ``true`` for a plain-HTTP endpoint
======================  ==========================  =====================================

Every client lockstep makes (Delta Lake's, pyarrow's, boto3's) gets short
timeouts and few retries, so that a wrong endpoint, bucket or credential is
reported in seconds rather than after minutes of retrying.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from lockstep.core.errors import ServiceError

__all__ = ["RemotePath", "S3Settings", "StorePath", "as_store_path", "is_remote", "service_error", "store_path"]

#: The storage options lockstep reads, and the environment variables they fall back on.
_KEYS = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "aws_region": "AWS_REGION",
    "aws_endpoint_url": "AWS_ENDPOINT_URL",
    "aws_allow_http": "AWS_ALLOW_HTTP",
}

#: Seconds to connect, and to wait for an answer, before a request counts as failed.
CONNECT_TIMEOUT = 3
REQUEST_TIMEOUT = 30
#: Retries of a failed request (connection refused, 5xx) before giving up.
RETRIES = 2


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3 store: the options given, completed from the environment."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str = "us-east-1"
    endpoint: str | None = None
    allow_http: bool = False

    @classmethod
    def resolve(cls, options: dict[str, str]) -> S3Settings:
        given = {_option_key(k): v for k, v in options.items()}
        value = {key: given.get(key) or os.environ.get(env) or None for key, env in _KEYS.items()}
        endpoint = value["aws_endpoint_url"]
        return cls(access_key=value["aws_access_key_id"], secret_key=value["aws_secret_access_key"],
                   session_token=value["aws_session_token"], region=value["aws_region"] or "us-east-1",
                   endpoint=endpoint.rstrip("/") if endpoint else None,
                   allow_http=str(value["aws_allow_http"] or "").lower() in ("1", "true", "yes"))

    def delta_options(self) -> dict[str, str]:
        """Delta Lake's (delta-rs) storage options: every setting spelled out, with short timeouts."""
        out = {"aws_region": self.region, "connect_timeout": f"{CONNECT_TIMEOUT}s",
               "timeout": f"{REQUEST_TIMEOUT}s", "max_retries": str(RETRIES), "retry_timeout": "10s"}
        for key, value in (("aws_access_key_id", self.access_key), ("aws_secret_access_key", self.secret_key),
                           ("aws_session_token", self.session_token), ("aws_endpoint_url", self.endpoint)):
            if value:
                out[key] = value
        if self.allow_http:
            out["aws_allow_http"] = "true"
        return out

    def boto3_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``boto3.client("s3", ...)`` (the ``config`` is added by the caller)."""
        out: dict[str, Any] = {"region_name": self.region}
        if self.endpoint:
            out["endpoint_url"] = self.endpoint
        if self.access_key:
            out["aws_access_key_id"] = self.access_key
        if self.secret_key:
            out["aws_secret_access_key"] = self.secret_key
        if self.session_token:
            out["aws_session_token"] = self.session_token
        return out

    def pyarrow_arguments(self) -> dict[str, Any]:
        """Keyword arguments of :class:`pyarrow.fs.S3FileSystem`."""
        out: dict[str, Any] = {"region": self.region, "connect_timeout": CONNECT_TIMEOUT,
                               "request_timeout": REQUEST_TIMEOUT}
        if self.endpoint:
            parsed = urlparse(self.endpoint)
            out["endpoint_override"] = parsed.netloc or parsed.path
            out["scheme"] = parsed.scheme or ("http" if self.allow_http else "https")
        if self.access_key:
            out["access_key"] = self.access_key
            out["secret_key"] = self.secret_key
        if self.session_token:
            out["session_token"] = self.session_token
        return out

    def describe(self) -> str:
        """Where requests go, for messages (never a secret)."""
        return self.endpoint or f"AWS S3 ({self.region})"


def _option_key(key: str) -> str:
    key = key.lower()
    return key if key.startswith("aws_") else f"aws_{key}"


@dataclass(frozen=True)
class RemotePath:
    """A location in an object store, ``s3://BUCKET/KEY``, with the options to reach it.

    It joins with ``/`` as a :class:`~pathlib.Path` does, so a table of the
    store is ``store.root / "raw"`` wherever the store is.

    Examples
    --------
    >>> root = RemotePath("s3://team-bucket/churn/")
    >>> str(root / "raw")
    's3://team-bucket/churn/raw'
    >>> (root / "features" / "default").name
    'default'
    """

    uri: str
    options: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", self.uri.rstrip("/"))

    def __truediv__(self, part: str) -> RemotePath:
        return RemotePath(f"{self.uri}/{str(part).strip('/')}", self.options)

    def __str__(self) -> str:
        return self.uri

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    @property
    def parent(self) -> RemotePath:
        head = self.uri.rsplit("/", 1)[0]
        return RemotePath(head if head.count("/") >= 3 else self.uri, self.options)

    @property
    def bucket(self) -> str:
        return urlparse(self.uri).netloc

    @property
    def key(self) -> str:
        """The object key (no leading slash): ``churn/raw`` for ``s3://team-bucket/churn/raw``."""
        return urlparse(self.uri).path.lstrip("/")

    @property
    def settings(self) -> S3Settings:
        return S3Settings.resolve(self.options)


#: Where a store's artifact lives.
StorePath = Path | RemotePath


def is_remote(path: StorePath) -> bool:
    return isinstance(path, RemotePath)


def as_store_path(path: str | StorePath) -> StorePath:
    """``path`` itself when it is a :class:`RemotePath`, else as a :class:`~pathlib.Path`."""
    return path if isinstance(path, RemotePath) else Path(path)


def store_path(location: str | Path, options: dict[str, str] | None = None) -> StorePath:
    """The store location ``location`` (a folder, or ``s3://...``) as a :data:`StorePath`."""
    text = str(location)
    if text.lower().startswith("s3://"):
        return RemotePath(text, dict(options or {}))
    return Path(location)


def service_error(fault: Literal["endpoint", "bucket", "credentials"], path: RemotePath, doing: str,
                  detail: str = "") -> ServiceError:
    """The user's error when an S3 store cannot be used, naming the one setting at fault.

    Every client (Delta Lake's, boto3's) reports its failures differently;
    each classifies them and asks here for the message.
    """
    where = path.settings.describe()
    if fault == "endpoint":
        return ServiceError(f"cannot {doing} {path}: the endpoint {where} does not answer",
                            hint="check AWS_ENDPOINT_URL (or aws_endpoint_url in [project.storage_options]) and "
                                 "that the server is running")
    if fault == "bucket":
        return ServiceError(f"cannot {doing} {path}: the bucket '{path.bucket}' does not exist at {where}",
                            hint="create it, or fix the bucket in [project] store")
    return ServiceError(f"cannot {doing} {path}: the credentials were refused by {where}{detail}",
                        hint="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or [project.storage_options])")
