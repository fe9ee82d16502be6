"""An S3-compatible bucket (AWS, MinIO, Ceph RGW, R2) holding mirrored GGUF files with sha256 metadata."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings

PREFIX = "models"
MB = 1024 * 1024
# Bounded memory and concurrency: at most max_concurrency parts of chunksize in flight.
TRANSFER = TransferConfig(multipart_threshold=64 * MB, multipart_chunksize=16 * MB, max_concurrency=4,
                          use_threads=True)


def object_key(repo_id: str, path: str) -> str:
    return f"{PREFIX}/{repo_id}/{path}"


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    sha256: str | None
    revision: str | None


class S3Store:
    def __init__(self, settings: Settings, bucket: str | None = None, transfer: TransferConfig = TRANSFER):
        self.bucket = bucket or settings.s3_bucket
        if not self.bucket:
            raise ConfigError("S3: no bucket; set S3_BUCKET (or `bucket:` in models.yaml)")
        self.endpoint = settings.s3_endpoint
        self.transfer = transfer
        self.client = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint, region_name=settings.s3_region or "us-east-1",
            aws_access_key_id=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
            aws_secret_access_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )

    @contextmanager
    def errors(self, what: str = "") -> Iterator[None]:
        """One line per failure; the keys themselves never appear in it."""
        where = f"s3://{self.bucket}" + (f"/{what}" if what else "")
        try:
            yield
        except NoCredentialsError:
            raise ConfigError("S3: no credentials; set S3_ACCESS_KEY and S3_SECRET_KEY") from None
        except EndpointConnectionError:
            raise ConfigError(f"S3: cannot reach endpoint {self.endpoint or 'AWS'} (check S3_ENDPOINT)") from None
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403") or status == 403:
                raise ConfigError(f"S3: access denied to {where} ({code or status}); check S3_ACCESS_KEY / S3_SECRET_KEY") from None
            if code in ("NoSuchBucket",) or (status == 404 and not what):
                raise ConfigError(f"S3: bucket {self.bucket!r} does not exist at {self.endpoint or 'AWS'} (S3_BUCKET)") from None
            raise ConfigError(f"S3: {where}: {code or status}") from None
        except BotoCoreError as e:
            raise ConfigError(f"S3: {where}: {type(e).__name__}") from None

    def check(self) -> None:
        with self.errors():
            self.client.head_bucket(Bucket=self.bucket)

    def head(self, key: str) -> S3Object | None:
        with self.errors(key):
            try:
                r = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as e:
                if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return None
                raise
        meta = {k.lower(): v for k, v in r.get("Metadata", {}).items()}  # rclone capitalises keys
        return S3Object(key, int(r["ContentLength"]), meta.get("sha256"), meta.get("hf-revision"))

    def list(self, prefix: str) -> list[S3Object]:
        """Objects under a prefix (sizes only: sha256 comes from a HEAD when needed)."""
        out = []
        with self.errors(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [S3Object(o["Key"], int(o["Size"]), None, None) for o in page.get("Contents", [])]
        return out

    def abort_incomplete(self, key: str) -> int:
        """Abort multipart uploads an interrupted run left for `key` (they are invisible but cost storage)."""
        aborted = 0
        with self.errors(key):
            try:
                r = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            except ClientError as e:
                # rclone answers NoSuchUpload when there are none; some stores do not implement the listing.
                if e.response.get("Error", {}).get("Code") in ("NoSuchUpload", "NotImplemented", "501"):
                    return 0
                raise
            for up in r.get("Uploads", []):
                if up["Key"] == key:
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=up["UploadId"])
                        aborted += 1
                    except ClientError as e:
                        if e.response.get("Error", {}).get("Code") != "NoSuchUpload":  # already gone is fine
                            raise
        return aborted

    def upload(self, path: Path, key: str, sha256: str, revision: str, progress: Callable[[int], None] = lambda n: None) -> None:
        """Multipart upload; the object is visible under `key` only when complete (S3 semantics), and a failed
        upload is aborted by the transfer manager, so no partial object is ever readable."""
        self.abort_incomplete(key)
        with self.errors(key):
            self.client.upload_file(str(path), self.bucket, key, Config=self.transfer, Callback=progress,
                                    ExtraArgs={"Metadata": {"sha256": sha256, "hf-revision": revision}})

    def download(self, key: str, dest: Path, progress: Callable[[int], None] = lambda n: None) -> Path:
        """Download to `dest` and verify against the object's sha256 metadata before it appears there."""
        obj = self.head(key)
        if obj is None:
            raise ConfigError(f"S3: s3://{self.bucket}/{key} does not exist")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        with self.errors(key):
            self.client.download_file(self.bucket, key, str(part), Config=self.transfer, Callback=progress)
        digest = hashlib.sha256()
        with part.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if obj.sha256 and digest.hexdigest() != obj.sha256:
            part.unlink(missing_ok=True)
            from beyond_vibes.store.hf import ChecksumError

            raise ChecksumError(f"s3://{self.bucket}/{key}: sha256 {digest.hexdigest()[:12]} != metadata {obj.sha256[:12]}; refused")
        part.replace(dest)
        return dest
