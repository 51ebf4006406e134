"""Objects in an S3 store: read, write, list, delete, and create only if absent (S3's conditional put).

Delta Lake writes the store's tables itself; this module serves what is not
a table: the audit log's write-ahead batches and the locks between writers on
different machines. Every failure to reach the store becomes a
:class:`~lockstep.core.errors.ServiceError` that says which of the endpoint,
the bucket or the credentials is at fault.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from lockstep.core.errors import ServiceError
from lockstep.core.lazy import lazy_module
from lockstep.store.location import (
    CONNECT_TIMEOUT,
    REQUEST_TIMEOUT,
    RETRIES,
    RemotePath,
    S3Settings,
    service_error,
)

if TYPE_CHECKING:  # boto3 and botocore, imported by the first request to an object store (a local one makes none)
    import boto3
    import botocore.config as botocore_config
    import botocore.exceptions as botocore_errors
else:
    boto3 = lazy_module("boto3")
    botocore_config = lazy_module("botocore.config")
    botocore_errors = lazy_module("botocore.exceptions")

__all__ = ["check", "delete", "exists", "get", "list_keys", "put", "put_if_absent", "replace_if_match",
           "unreachable"]


@functools.lru_cache(maxsize=16)
def _client(settings: S3Settings) -> Any:
    config = botocore_config.Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=REQUEST_TIMEOUT,
                                    retries={"max_attempts": RETRIES + 1, "mode": "standard"})
    return boto3.session.Session().client("s3", config=config, **settings.boto3_arguments())


#: Error codes that are answers, not failures: the condition of a conditional request did not hold.
_CHANGED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
_MISSING = ("NoSuchKey", "404")


def unreachable(exc: BaseException, path: RemotePath, doing: str) -> ServiceError:
    """The user's error for a failed request: which of endpoint, bucket or credentials is at fault."""
    if isinstance(exc, botocore_errors.ClientError):
        code = _code(exc)
        if code == "NoSuchBucket" or (code == "404" and doing == "check"):
            return service_error("bucket", path, doing)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"):
            return service_error("credentials", path, doing, f" ({code})")
        return ServiceError(f"cannot {doing} {path}: {code or exc}")
    if isinstance(exc, botocore_errors.NoCredentialsError):
        return ServiceError(f"cannot {doing} {path}: no credentials",
                            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or [project.storage_options])")
    if isinstance(exc, (botocore_errors.EndpointConnectionError, botocore_errors.ConnectTimeoutError,
                        botocore_errors.ReadTimeoutError, botocore_errors.ConnectionClosedError)):
        return service_error("endpoint", path, doing)
    return ServiceError(f"cannot {doing} {path}: {exc}")


def _call(path: RemotePath, doing: str, method: str, answers: tuple[str, ...] = (), /, **kwargs: Any) -> Any:
    """Call the S3 API ``method`` on the path's bucket; None when it fails with one of the error codes
    ``answers`` (a condition that did not hold, a missing object)."""
    try:
        return getattr(_client(path.settings), method)(Bucket=path.bucket, **kwargs)
    except botocore_errors.ClientError as exc:
        if _code(exc) in answers:
            return None
        raise unreachable(exc, path, doing) from None
    except botocore_errors.BotoCoreError as exc:
        raise unreachable(exc, path, doing) from None


def _code(exc: botocore_errors.ClientError) -> str:
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
    found = _call(path, "read", "get_object", _MISSING, Key=path.key)
    return (found["Body"].read(), str(found["ETag"])) if found is not None else None


def put(path: RemotePath, data: bytes) -> None:
    """Write the object (it is durable once this returns)."""
    _call(path, "write", "put_object", Key=path.key, Body=data)


def put_if_absent(path: RemotePath, data: bytes) -> str | None:
    """Create the object unless it exists (``If-None-Match: *``); its ETag, or None when it existed."""
    done = _call(path, "write", "put_object", _CHANGED, Key=path.key, Body=data, IfNoneMatch="*")
    return str(done["ETag"]) if done is not None else None


def replace_if_match(path: RemotePath, data: bytes, etag: str) -> str | None:
    """Overwrite the object only if it is still the version ``etag``; the new ETag, or None when it changed."""
    done = _call(path, "write", "put_object", (*_CHANGED, *_MISSING), Key=path.key, Body=data, IfMatch=etag)
    return str(done["ETag"]) if done is not None else None


def delete(path: RemotePath, etag: str | None = None) -> bool:
    """Delete the object (only if it is still the version ``etag``, when given); whether it was deleted."""
    extra: dict[str, Any] = {"IfMatch": etag} if etag else {}
    return _call(path, "delete", "delete_object", (*_CHANGED, *_MISSING), Key=path.key, **extra) is not None
