"""Objects in an S3 store: read, write, list, delete, and create only if absent (S3's conditional put).

Delta Lake writes the store's tables itself; this module serves what is not
a table: the audit log's write-ahead batches and the locks between writers on
different machines. Every failure to reach the store becomes a
:class:`~lockstep.core.errors.ServiceError` that says which of the endpoint,
the bucket or the credentials is at fault.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from lockstep.core.errors import ServiceError
from lockstep.store.location import CONNECT_TIMEOUT, REQUEST_TIMEOUT, RETRIES, RemotePath, S3Settings

__all__ = ["check", "delete", "exists", "get", "list_keys", "put", "put_if_absent", "replace_if_match",
           "unreachable"]


@functools.lru_cache(maxsize=16)
def _client(settings: S3Settings) -> Any:
    config = botocore.config.Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=REQUEST_TIMEOUT,
                                    retries={"max_attempts": RETRIES + 1, "mode": "standard"})
    return boto3.session.Session().client("s3", config=config, **settings.boto3_arguments())


def unreachable(exc: BaseException, path: RemotePath, doing: str) -> ServiceError:
    """The user's error for a failed request: which of endpoint, bucket, credentials or object is at fault."""
    settings = path.settings
    if isinstance(exc, botocore.exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchBucket", "404") and doing == "check":
            return ServiceError(f"the bucket '{path.bucket}' does not exist at {settings.describe()}",
                              hint="create it, or fix the bucket in [project] store")
        if code == "NoSuchBucket":
            return ServiceError(f"cannot {doing} {path}: the bucket '{path.bucket}' does not exist at "
                              f"{settings.describe()}", hint="create it, or fix the bucket in [project] store")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"):
            return ServiceError(f"cannot {doing} {path}: the credentials were refused ({code})",
                              hint="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                                   "[project.storage_options])")
        return ServiceError(f"cannot {doing} {path}: {code or exc}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return ServiceError(f"cannot {doing} {path}: no credentials",
                          hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or [project.storage_options])")
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                        botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError)):
        return ServiceError(f"cannot {doing} {path}: the endpoint {settings.describe()} does not answer",
                          hint="check AWS_ENDPOINT_URL (or aws_endpoint_url in [project.storage_options]) and "
                               "that the server is running")
    return ServiceError(f"cannot {doing} {path}: {exc}")


def _call(path: RemotePath, doing: str, method: str, **kwargs: Any) -> Any:
    try:
        return getattr(_client(path.settings), method)(Bucket=path.bucket, **kwargs)
    except botocore.exceptions.BotoCoreError as exc:
        raise unreachable(exc, path, doing) from None
    except botocore.exceptions.ClientError as exc:
        raise unreachable(exc, path, doing) from None


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def check(path: RemotePath) -> None:
    """Reach the bucket (endpoint, credentials, bucket), or raise a :class:`ServiceError` naming what failed."""
    _call(path, "check", "list_objects_v2", Prefix=path.key + "/", MaxKeys=1)


def exists(path: RemotePath) -> bool:
    """Whether any object lies under ``path`` (a prefix)."""
    found = _call(path, "read", "list_objects_v2", Prefix=path.key.rstrip("/") + "/", MaxKeys=1)
    return int(found.get("KeyCount", 0)) > 0


def list_keys(path: RemotePath) -> list[str]:
    """The keys under ``path``, relative to it, sorted."""
    prefix = path.key.rstrip("/") + "/"
    keys: list[str] = []
    token: str | None = None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = _call(path, "list", "list_objects_v2", Prefix=prefix, **extra)
        keys += [item["Key"][len(prefix):] for item in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return sorted(keys)
        token = page["NextContinuationToken"]


def get(path: RemotePath) -> tuple[bytes, str] | None:
    """The object's bytes and ETag, or None when there is no such object."""
    try:
        found = _client(path.settings).get_object(Bucket=path.bucket, Key=path.key)
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in ("NoSuchKey", "404"):
            return None
        raise unreachable(exc, path, "read") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise unreachable(exc, path, "read") from None
    return found["Body"].read(), str(found["ETag"])


def put(path: RemotePath, data: bytes) -> None:
    """Write the object (it is durable once this returns)."""
    _call(path, "write", "put_object", Key=path.key, Body=data)


def put_if_absent(path: RemotePath, data: bytes) -> str | None:
    """Create the object unless it exists (``If-None-Match: *``); its ETag, or None when it existed."""
    try:
        done = _client(path.settings).put_object(Bucket=path.bucket, Key=path.key, Body=data, IfNoneMatch="*")
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
            return None
        raise unreachable(exc, path, "write") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise unreachable(exc, path, "write") from None
    return str(done["ETag"])


def replace_if_match(path: RemotePath, data: bytes, etag: str) -> str | None:
    """Overwrite the object only if it is still the version ``etag``; the new ETag, or None when it changed."""
    try:
        done = _client(path.settings).put_object(Bucket=path.bucket, Key=path.key, Body=data, IfMatch=etag)
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404", "ConditionalRequestConflict", "409"):
            return None
        raise unreachable(exc, path, "write") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise unreachable(exc, path, "write") from None
    return str(done["ETag"])


def delete(path: RemotePath, etag: str | None = None) -> bool:
    """Delete the object (only if it is still the version ``etag``, when given); whether it was deleted."""
    extra = {"IfMatch": etag} if etag else {}
    try:
        _client(path.settings).delete_object(Bucket=path.bucket, Key=path.key, **extra)
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
            return False
        raise unreachable(exc, path, "delete") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise unreachable(exc, path, "delete") from None
    return True
