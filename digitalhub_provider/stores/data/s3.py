"""S3 (or MinIO, or moto's server) as data store, through botocore and s3transfer (boto3's own parts).

Small objects (RunSpecs, RunResults, logs, anything under ``SMALL``) are one ``put_object`` /
``get_object`` streamed to or from the file; larger ones go through s3transfer's transfer
manager, which switches to concurrent multipart parts and ranged reads. Nothing is read whole
into memory.

Why not ``boto3.client``: importing boto3 (which imports s3transfer) and building its client costs
~0.55 s, the same botocore client without boto3 ~0.38 s; a run pays it in the worker and again in a
pod, and most runs only move small files. The transfer manager is imported on the first large file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from digitalhub_provider.config import Settings
from digitalhub_provider.errors import EntityNotFoundError, StoreError
from digitalhub_provider.stores.data.base import DataStore

MB = 1024 * 1024
SMALL = 16 * MB  # at most this: a single request each way
CHUNK = 1 * MB


def split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StoreError(f"malformed S3 URL {url!r}: expected s3://bucket/key")
    return bucket, key


class S3DataStore(DataStore):
    def __init__(self, settings: Settings) -> None:
        import botocore.session
        from botocore.config import Config

        self.endpoint = settings.s3_endpoint_url
        self.client: Any = botocore.session.Session().create_client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region or "us-east-1",
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
        )
        self.small = SMALL  # objects up to this size: one request
        self.part_size = 64 * MB  # larger: multipart parts / ranged reads of this size
        self._manager: Any = None

    def _transfers(self) -> Any:
        """s3transfer's manager (multipart uploads, concurrent ranged downloads), made on first use."""
        if self._manager is None:
            from s3transfer.manager import TransferConfig, TransferManager

            config = TransferConfig(
                multipart_threshold=self.part_size, multipart_chunksize=self.part_size, max_request_concurrency=8
            )
            self._manager = TransferManager(self.client, config)
        return self._manager

    def _call(self, url: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise EntityNotFoundError(f"no object at {url!r}") from None
            raise StoreError(
                f"S3 refused {url!r}: {code} {exc.response.get('Error', {}).get('Message', '')}".strip()
            ) from None
        except BotoCoreError as exc:
            raise StoreError(f"S3 endpoint {self.endpoint or 'AWS'} does not answer for {url!r}: {exc}") from None

    def upload(self, local_path: str | Path, url: str) -> None:
        bucket, key = split_s3(url)
        path = Path(local_path)
        if path.stat().st_size <= self.small:
            with open(path, "rb") as fh:
                self._call(url, self.client.put_object, Bucket=bucket, Key=key, Body=fh)
            return
        self._call(url, lambda: self._transfers().upload(str(path), bucket, key).result())

    def download(self, url: str, local_path: str | Path) -> Path:
        bucket, key = split_s3(url)
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        obj = self._call(url, self.client.get_object, Bucket=bucket, Key=key)
        body = obj["Body"]
        if int(obj.get("ContentLength") or 0) > self.small:
            body.close()  # a large object: concurrent ranged reads instead of this one stream
            self._call(url, lambda: self._transfers().download(bucket, key, str(dest)).result())
            return dest
        part = dest.with_name(f".{dest.name}.part")  # never a half-written file under the real name
        try:
            with open(part, "wb") as fh:
                self._call(url, shutil.copyfileobj, body, fh, CHUNK)
            part.replace(dest)
        finally:
            body.close()
            part.unlink(missing_ok=True)
        return dest

    def write_bytes(self, url: str, data: bytes) -> None:
        bucket, key = split_s3(url)
        self._call(url, self.client.put_object, Bucket=bucket, Key=key, Body=data)

    def read_bytes(self, url: str) -> bytes:
        bucket, key = split_s3(url)
        obj = self._call(url, self.client.get_object, Bucket=bucket, Key=key)
        return obj["Body"].read()

    def exists(self, url: str) -> bool:
        bucket, key = split_s3(url)
        try:
            self._call(url, self.client.head_object, Bucket=bucket, Key=key)
            return True
        except EntityNotFoundError:
            return False

    def delete(self, url: str) -> None:
        bucket, key = split_s3(url)
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = key.rstrip("/") + "/"
        for page in self._call(url, lambda: list(paginator.paginate(Bucket=bucket, Prefix=prefix))):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                self._call(url, self.client.delete_objects, Bucket=bucket, Delete={"Objects": objs})
        # A writer killed mid-upload leaves its parts in an unfinished multipart upload: billed, unseen.
        uploads = self._call(url, self.client.list_multipart_uploads, Bucket=bucket, Prefix=key.rstrip("/"))
        for upload in uploads.get("Uploads", []):
            if upload["Key"] != key.rstrip("/") and not upload["Key"].startswith(prefix):
                continue  # a sibling whose name only starts like this one
            self._call(url, self.client.abort_multipart_upload, Bucket=bucket, Key=upload["Key"],
                       UploadId=upload["UploadId"])  # fmt: skip
        self._call(url, self.client.delete_object, Bucket=bucket, Key=key)
