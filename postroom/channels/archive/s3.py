"""Archive in S3 (or any S3-compatible store) with Object Lock in COMPLIANCE mode."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from postroom.channels.archive.store import (
    CHUNK_SIZE,
    ArchivedObject,
    ArchiveObjectMissing,
    ArchiveRetained,
    already_kept,
    check_expired,
    check_extension,
    require_aware,
)
from postroom.channels.base import ChannelUnavailable, DeliveryDeferred, DeliveryRejected

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def s3_client(endpoint_url: str | None, region: str) -> S3Client:
    """A boto3 S3 client with bounded timeouts and retries."""
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: S3Client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
    return client


class S3ArchiveStore:
    """Objects below ``s3://bucket/prefix``; every object locked until its retention date."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", *, require_lock: bool = True) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.require_lock = require_lock
        self._lock_enabled: bool | None = None

    def _key(self, key: str) -> str:
        return self.prefix + key

    def location(self, key: str) -> str:
        """``s3://`` URL of the object."""
        return f"s3://{self.bucket}/{self._key(key)}"

    def _bucket_locks(self) -> bool:
        if self._lock_enabled is None:
            try:
                config = self.client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ObjectLockConfigurationNotFoundError":
                    raise
                enabled = False
            if not enabled and self.require_lock:
                raise ChannelUnavailable(
                    f"bucket {self.bucket} has no Object Lock; create it with Object Lock enabled "
                    "or set POSTROOM_ARCHIVE_REQUIRE_OBJECT_LOCK=false"
                )
            self._lock_enabled = enabled
        return self._lock_enabled

    def put(
        self, key: str, data: bytes, sha256: str, metadata: Mapping[str, str], retain_until: datetime
    ) -> ArchivedObject:
        """Upload once with a SHA-256 checksum the server verifies; identical repeats are accepted.

        A repeat with a later ``retain_until`` extends the lock, one with an earlier date leaves it.
        """
        require_aware(retain_until)
        try:
            existing = self.head(key)
            if existing is not None:
                if already_kept(existing, sha256, retain_until) or not self._bucket_locks():
                    return existing
                return self._set_retention(existing, retain_until)
            lock: dict[str, object] = {}
            if self._bucket_locks():
                lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until}
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType="application/pdf",
                ChecksumAlgorithm="SHA256",  # Object Lock uploads must carry an integrity checksum
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                Metadata={**_ascii_metadata(metadata), "sha256": sha256},
                **lock,  # type: ignore[arg-type]
            )
            stored = self.head(key)
        except ClientError as error:
            raise _classify(error) from None
        except BotoCoreError as error:
            raise DeliveryDeferred(f"archive store unreachable ({type(error).__name__})") from None
        if stored is None:
            raise DeliveryDeferred(f"archive key {key} not visible after upload")
        return stored

    def extend_retention(self, key: str, until: datetime) -> ArchivedObject:
        """Move the COMPLIANCE lock of ``key`` to the later ``until``; see :class:`ArchiveStore`.

        S3 itself refuses to shorten a COMPLIANCE lock; this store refuses before asking, with
        :class:`RetentionShortened`. In a bucket without Object Lock there is nothing to extend.
        """
        require_aware(until)
        try:
            existing = self.head(key)
            if existing is None:
                raise ArchiveObjectMissing(f"archive key {key} holds no object")
            if not check_extension(key, existing.retain_until, until):
                return existing
            if not self._bucket_locks():
                raise DeliveryRejected(f"bucket {self.bucket} has no Object Lock; retention cannot be set")
            return self._set_retention(existing, until)
        except ClientError as error:
            raise _classify(error) from None
        except BotoCoreError as error:
            raise DeliveryDeferred(f"archive store unreachable ({type(error).__name__})") from None

    def _set_retention(self, existing: ArchivedObject, until: datetime) -> ArchivedObject:
        version = {"VersionId": existing.version_id} if existing.version_id else {}
        self.client.put_object_retention(
            Bucket=self.bucket,
            Key=self._key(existing.key),
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
            **version,  # type: ignore[arg-type]
        )
        stored = self.head(existing.key)
        if stored is None or stored.retain_until is None or stored.retain_until < until:
            raise DeliveryDeferred(f"archive key {existing.key}: the extended retention is not visible yet")
        return stored

    def get(self, key: str) -> bytes:
        """The object's bytes."""
        try:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            return data
        except ClientError as error:
            raise _classify(error) from None
        except BotoCoreError as error:
            raise DeliveryDeferred(f"archive store unreachable ({type(error).__name__})") from None

    def delete(self, key: str, now: datetime) -> bool:
        """Delete every version of ``key`` once its retention has ended; S3 itself refuses
        (Object Lock) while a version is still locked."""
        existing = self.head(key)
        if existing is None:
            return False
        check_expired(key, existing.retain_until, now)
        full = self._key(key)
        try:
            listing = self.client.get_paginator("list_object_versions")
            for page in listing.paginate(Bucket=self.bucket, Prefix=full):
                for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if version["Key"] == full:
                        version_id = version["VersionId"]
                        self.client.delete_object(Bucket=self.bucket, Key=full, VersionId=version_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "AccessDenied":
                raise ArchiveRetained(f"archive key {key} is still locked by the store") from None
            raise _classify(error) from None
        except BotoCoreError as error:
            raise DeliveryDeferred(f"archive store unreachable ({type(error).__name__})") from None
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys below ``prefix`` (without this store's own prefix), page by page."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self._key("")) :]
        except ClientError as error:
            raise _classify(error) from None
        except BotoCoreError as error:
            raise DeliveryDeferred(f"archive store unreachable ({type(error).__name__})") from None

    def stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes in pieces, straight from the response body."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as error:
            raise _classify(error) from None
        except BotoCoreError as error:
            raise DeliveryDeferred(f"archive store unreachable ({type(error).__name__})") from None
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def head(self, key: str) -> ArchivedObject | None:
        """The object's checksum, lock and metadata as S3 reports them."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise
        metadata = {name: _from_rfc2047(value) for name, value in head.get("Metadata", {}).items()}
        checksum = head.get("ChecksumSHA256")
        sha256 = base64.b64decode(checksum).hex() if checksum else metadata.get("sha256", "")
        return ArchivedObject(
            key=key,
            sha256=sha256,
            size=head["ContentLength"],
            retain_until=head.get("ObjectLockRetainUntilDate"),
            lock_mode=head.get("ObjectLockMode"),
            metadata=metadata,
            version_id=head.get("VersionId"),
        )

    def check(self) -> None:
        """The bucket exists, is reachable and (unless waived) has Object Lock."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            self._lock_enabled = None
            self._bucket_locks()
        except (ClientError, BotoCoreError) as error:
            raise ChannelUnavailable(
                f"archive bucket {self.bucket} unavailable ({type(error).__name__})"
            ) from None


def _classify(error: ClientError) -> DeliveryRejected | DeliveryDeferred:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = error.response.get("Error", {}).get("Code", "unknown")
    if status >= 500 or status in (408, 429) or code in ("SlowDown", "RequestTimeout"):
        return DeliveryDeferred(f"archive store answered {status} {code}")
    return DeliveryRejected(f"archive store refused the object: {status} {code}")


_RFC2047 = ("=?UTF-8?B?", "?=")


def _ascii_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """S3 user metadata travels in HTTP headers: non-ASCII values are sent RFC 2047 encoded, as S3 expects."""
    prefix, suffix = _RFC2047
    return {
        name: value if value.isascii() else prefix + base64.b64encode(value.encode()).decode() + suffix
        for name, value in metadata.items()
    }


def _from_rfc2047(value: str) -> str:
    prefix, suffix = _RFC2047
    if value.upper().startswith(prefix) and value.endswith(suffix):
        try:
            return base64.b64decode(value[len(prefix) : -len(suffix)], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return value
    return value
