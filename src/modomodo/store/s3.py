"""The S3 backend: artifacts as objects under ``s3://bucket/prefix/``, retried on transient failures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import boto3
import botocore.exceptions
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig

from modomodo.redact import redact_text, redact_url
from modomodo.retry import RetryPolicy
from modomodo.store.base import (
    ArtifactStore,
    _sha256_file,
)
from modomodo.store.errors import (
    ArtifactNotFoundError,
    InvalidStoreUriError,
    StoreAccessError,
    StoreError,
)
from modomodo.store.keys import (
    _validate_relpath,
)
from modomodo.store.manifest import (
    ManifestSigner,
)

T = TypeVar("T")


_TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "ServiceUnavailable",
    }
)
_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)
"""No answer from the endpoint at all (refused, unresolvable, timed out), after every retry."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: boto3 hides the real error in the context of S3UploadFailedError
    and in ``last_exception`` of RetriesExceededError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "last_exception", None) or current.__cause__ or current.__context__


def _client_error(exc: BaseException) -> botocore.exceptions.ClientError | None:
    return next((e for e in _causes(exc) if isinstance(e, botocore.exceptions.ClientError)), None)


def _is_transient_s3_error(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError):
            return True
        if isinstance(cause, botocore.exceptions.ClientError):
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return cause.response.get("Error", {}).get("Code") in _TRANSIENT_CODES or status in (
                500,
                502,
                503,
                504,
            )
    return False


class S3Store(ArtifactStore):
    """Artifacts as objects under ``s3://bucket/prefix/`` on AWS S3 or any S3-compatible server.

    Large files use multipart transfers; every request is retried by botocore (``standard`` mode)
    and every whole-file operation once more by :class:`RetryPolicy` on transient failures.
    Unset arguments come from the environment: endpoint from ``MODOMODO_S3_ENDPOINT`` or
    ``AWS_ENDPOINT_URL``, region from ``AWS_REGION``/``AWS_DEFAULT_REGION`` (else us-east-1),
    credentials from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    profiles, pod identity).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        multipart_threshold: int = 64 * 2**20,
        multipart_chunksize: int = 16 * 2**20,
        max_concurrency: int = 4,
        max_attempts: int = 5,
        retry: RetryPolicy = RetryPolicy(),
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        signer: ManifestSigner | None = None,
    ) -> None:
        if not bucket:
            raise InvalidStoreUriError("S3Store needs a bucket name")
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither (then the environment is used)")
        self.bucket = bucket
        self.prefix = _validate_relpath(prefix, "S3 prefix") if prefix else ""
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.endpoint_url = (
            endpoint_url or os.environ.get("MODOMODO_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        )
        self.retry = retry
        self.signer = signer or ManifestSigner.from_env()
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
        )
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        # A private session: boto3's default session is not thread-safe and may carry other settings.
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._client = session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=BotoConfig(
                retries={"max_attempts": max_attempts, "mode": "standard"},
                # S3-compatible servers (SeaweedFS, MinIO, Ceph) rarely resolve virtual-host buckets.
                s3={"addressing_style": "path"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=max(10, max_concurrency),
            ),
        )

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one whole operation with retries, translating backend errors to store errors."""
        try:
            return self.retry.call(fn, is_transient=_is_transient_s3_error, what=what)
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            S3UploadFailedError,
            RetriesExceededError,
        ) as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> StoreError:
        endpoint = redact_url(self.endpoint_url) or "AWS S3"
        if isinstance(
            exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
        ):
            return StoreAccessError(
                f"{what}: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or pass access_key/secret_key"
            )
        error = _client_error(exc)
        if error is None and any(isinstance(c, _UNREACHABLE) for c in _causes(exc)):
            return StoreError(
                f"{what}: cannot reach the S3 endpoint {endpoint} ({type(exc).__name__}); check "
                "MODOMODO_S3_ENDPOINT (or AWS_ENDPOINT_URL) and that the server is up"
            )
        if error is None:
            return StoreError(f"{what}: {type(exc).__name__}: {redact_text(str(exc))} (endpoint {endpoint})")
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _ACCESS_CODES or status == 403:
            return StoreAccessError(
                f"{what}: {endpoint} refused access to s3://{self.bucket} ({code}: {message}); check the "
                "access key and secret (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the store's arguments) "
                "and the bucket policy"
            )
        if code == "NoSuchBucket":
            return StoreError(f"{what}: bucket {self.bucket!r} does not exist on {endpoint}")
        if code in _NOT_FOUND_CODES or status == 404:
            return ArtifactNotFoundError(f"{what}: not found")
        return StoreError(f"{what}: {endpoint} answered {code or status}: {redact_text(message or str(exc))}")

    @contextmanager
    def _staging(self, key: str) -> Iterator[str]:
        # S3 has no rename: retire the old artifact, then upload in place; the manifest comes last.
        self._retire(key)
        yield key

    def _put_file(self, src: Path, name: str) -> tuple[int, str]:
        size, sha256 = _sha256_file(src)
        self._call(
            f"upload {src} to {self._url(name)}",
            lambda: self._client.upload_file(
                str(src), self.bucket, self._key(name), Config=self.transfer_config
            ),
        )
        return size, sha256

    def _get_file(self, name: str, dest: Path) -> None:
        self._call(
            f"download {self._url(name)}",
            lambda: self._client.download_file(
                self.bucket, self._key(name), str(dest), Config=self.transfer_config
            ),
        )

    def _put_bytes(self, name: str, data: bytes) -> None:
        self._call(
            f"write {self._url(name)}",
            lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data),
        )

    def _get_bytes(self, name: str) -> bytes:
        return self._call(
            f"read {self._url(name)}",
            lambda: self._client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read(),
        )

    def _has(self, name: str) -> bool:
        try:
            self._call(
                f"check {self._url(name)}",
                lambda: self._client.head_object(Bucket=self.bucket, Key=self._key(name)),
            )
        except ArtifactNotFoundError:
            return False
        return True

    def _names(self, prefix: str) -> Iterator[str]:
        for name, _size, _etag in self.list_objects(prefix):
            yield name

    def list_objects(self, prefix: str = "") -> list[tuple[str, int, str]]:
        """Every object whose key starts with ``prefix`` as ``(name, size, ETag)``, names relative
        to the store's prefix: a raw listing, artifact or not (a data set put there by other tools)."""
        skip = len(self._key(""))
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call(
            f"list {self._url(prefix) if prefix else self.uri}",
            lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix))),
        )
        return [
            (obj["Key"][skip:], int(obj.get("Size", 0)), str(obj.get("ETag", "")))
            for page in pages
            for obj in page.get("Contents", [])
        ]

    def download_object(self, name: str, dest: Path) -> None:
        """Download the object ``name`` (relative to the store's prefix) to ``dest``; no manifest
        and no checksum: what :meth:`get_dir` verifies is the caller's to check."""
        self._get_file(name, dest)

    def _delete(self, name: str) -> None:
        self._call(
            f"delete {self._url(name)}",
            lambda: self._client.delete_object(Bucket=self.bucket, Key=self._key(name)),
        )

    def _delete_tree(self, key: str) -> None:
        names = list(self._names(key + "/"))
        for start in range(0, len(names), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": self._key(n)} for n in names[start : start + 1000]]
            response = self._call(
                f"delete {len(batch)} objects under {self._url(key)}/",
                lambda batch=batch: self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                ),
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(
                    f"could not delete {len(response['Errors'])} objects under {self._url(key)}/, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def _url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"
