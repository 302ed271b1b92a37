"""S3 (or MinIO, or moto's server) as data store, through boto3.

Uploads and downloads go through boto3's transfer manager, which streams and
switches to multipart for large files; nothing is read whole into memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digitalhub_provider.config import Settings
from digitalhub_provider.errors import EntityNotFoundError, StoreError
from digitalhub_provider.stores.data.base import DataStore

MB = 1024 * 1024


def split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StoreError(f"malformed S3 URL {url!r}: expected s3://bucket/key")
    return bucket, key


class S3DataStore(DataStore):
    def __init__(self, settings: Settings) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.endpoint = settings.s3_endpoint_url
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region or "us-east-1",
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
        )
        self.transfer = TransferConfig(multipart_threshold=64 * MB, multipart_chunksize=64 * MB, max_concurrency=8)

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
        self._call(url, self.client.upload_file, str(local_path), bucket, key, Config=self.transfer)

    def download(self, url: str, local_path: str | Path) -> Path:
        bucket, key = split_s3(url)
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._call(url, self.client.download_file, bucket, key, str(dest), Config=self.transfer)
        return dest

    def write_bytes(self, url: str, data: bytes) -> None:
        bucket, key = split_s3(url)
        self._call(url, self.client.put_object, Bucket=bucket, Key=key, Body=data)

    def read_bytes(self, url: str) -> bytes:
        bucket, key = split_s3(url)
        obj = self._call(url, self.client.get_object, Bucket=bucket, Key=key)
        return obj["Body"].read()  # type: ignore[no-any-return]

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
        self._call(url, self.client.delete_object, Bucket=bucket, Key=key)

    def ensure_bucket(self, url: str) -> None:
        bucket, _ = split_s3(url)
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            self._call(url, self.client.create_bucket, Bucket=bucket)
