"""Data stores: local directory, S3 on moto's server, read-only http sources, DataFrames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import digitalhub_provider as dh
from digitalhub_provider.config import Settings
from digitalhub_provider.errors import EntityError, EntityNotFoundError, StoreError
from digitalhub_provider.sdk.context import get_context
from digitalhub_provider.stores.data.s3 import S3DataStore


def _frame(n: int = 1000) -> pd.DataFrame:
    return pd.DataFrame({"i": range(n), "s": [f"v{i}" for i in range(n)], "f": [i / 3 for i in range(n)]})


def test_local_dataframe_round_trip(dh_home: Path) -> None:
    di = dh.log_dataitem(project="demo", name="table", kind="table", data=_frame())
    assert di.spec["path"].startswith(str(dh_home / "data" / "demo" / "dataitem" / "table" / di.id))
    pd.testing.assert_frame_equal(dh.get_dataitem("table", project="demo").as_df(), _frame())


def test_parquet_reads_keep_dtypes_and_leave_arrow_s_default_pool(dh_home: Path) -> None:
    """as_df reads into the system allocator (a lower peak) and puts pyarrow's default pool back."""
    import pyarrow as pa

    before = pa.default_memory_pool().backend_name
    df = pd.DataFrame({"i": [1, 2, 3], "f": [0.5, None, 2.0], "s": ["a", None, "c"],
                       "t": pd.to_datetime(["2026-01-01", "2026-01-02", None], utc=True)})  # fmt: skip
    item = dh.log_dataitem(project="demo", name="typed", kind="table", data=df)
    back = item.as_df()
    pd.testing.assert_frame_equal(back, df)
    assert pa.default_memory_pool().backend_name == before != "system"
    back["i2"] = back["i"] * 2  # a frame with one block per column still behaves as one
    assert list(back["i2"]) == [2, 4, 6]


def test_s3_dataframe_artifact_and_model(s3_env: str, tmp_path: Path) -> None:
    di = dh.log_dataitem(project="demo", name="table", kind="table", data=_frame())
    assert di.spec["path"].startswith(s3_env + "/demo/dataitem/table/")
    pd.testing.assert_frame_equal(dh.get_dataitem(di.key).as_df(), _frame())

    src = tmp_path / "notes.txt"
    src.write_text("hello")
    art = dh.get_or_create_project("demo").log_artifact(name="notes", kind="artifact", source_path=str(src))
    assert art.spec["src_path"] == str(src)
    out = art.download(tmp_path / "back.txt")
    assert Path(out).read_text() == "hello"
    with pytest.raises(EntityError, match="already exists"):
        art.download(tmp_path / "back.txt")
    src.write_text("changed")
    art.upload(src)
    assert Path(art.download(tmp_path / "back.txt", overwrite=True)).read_text() == "changed"
    model = dh.log_model(project="demo", name="m", kind="model", source=str(src), framework="sklearn")
    assert Path(model.download(tmp_path / "m")).exists()


def test_s3_large_file_goes_multipart_and_streams(s3_env: str, tmp_path: Path) -> None:
    ctx = get_context()
    store = ctx.data_store(s3_env)
    assert isinstance(store, S3DataStore)
    store.small = store.part_size = 5 * 1024 * 1024
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for i in range(12):
            fh.write(bytes([i]) * (1024 * 1024))
    url = s3_env + "/big.bin"
    store.upload(big, url)
    bucket, key = url[5:].split("/", 1)
    head = store.client.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # three parts: a multipart upload
    back = store.download(url, tmp_path / "back.bin")
    assert back.read_bytes() == big.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    store.upload(small, url + ".small")  # one put_object: a plain ETag (no part count)
    assert "-" not in store.client.head_object(Bucket=bucket, Key=key + ".small")["ETag"]
    assert store.download(url + ".small", tmp_path / "small-back.bin").read_bytes() == b"x" * 1000
    store.delete(url + ".small")
    store.delete(url)
    assert not store.exists(url)
    with pytest.raises(EntityNotFoundError, match="no object at"):
        store.read_bytes(url)


def test_s3_endpoint_that_does_not_answer(tmp_path: Path) -> None:
    from tests.servers import free_port

    settings = Settings(
        metadata_url="sqlite://",
        data_url="s3://b/x",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    store = S3DataStore(settings)
    with pytest.raises(StoreError, match="does not answer"):
        store.write_bytes("s3://b/x/f", b"1")


def test_http_dataitem_is_a_read_only_source(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    (root / "cities.csv").write_text("city,pop\nRome,2800000\nTrento,118000\n")
    project = dh.get_or_create_project("demo")
    di = project.new_dataitem(name="cities", kind="table", path=f"{base}/cities.csv")
    df = project.get_dataitem("cities").as_df()
    assert list(df["city"]) == ["Rome", "Trento"]
    with pytest.raises(EntityError, match="read-only source"):
        di.write_df(df)
    with pytest.raises(StoreError, match="read-only source"):
        di.upload(root / "cities.csv")
    missing = project.new_dataitem(name="missing", kind="table", path=f"{base}/nope.csv")
    with pytest.raises(EntityNotFoundError, match="HTTP 404"):
        missing.as_df()


def test_log_material_bad_input_writes_nothing(tmp_path: Path, dh_home: Path) -> None:
    with pytest.raises(EntityError, match=r"source file .* does not exist"):
        dh.log_artifact(project="demo", name="a", source=str(tmp_path / "missing"))
    with pytest.raises(EntityError, match="exactly one of data"):
        dh.log_dataitem(project="demo", name="d")
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(EntityError, match="invalid artifact name 'bad/name'"):
        dh.log_artifact(project="demo", name="bad/name", source=str(src))
    assert dh.list_artifacts("demo") == [] and dh.list_dataitems("demo") == []
    assert not list((dh_home / "data").rglob("f.txt"))


def test_s3_deleting_a_folder_aborts_the_uploads_a_killed_writer_left_in_it(s3_env: str) -> None:
    """A writer killed mid-upload leaves an unfinished multipart upload (parts stored, no object):
    deleting the entity's folder aborts it; an upload elsewhere in the bucket is kept."""
    from digitalhub_provider.sdk.context import get_context

    ctx = get_context()
    folder = ctx.data_url("demo", "dataitem", "half", "0123456789abcdef0123456789abcdef", "")
    elsewhere = ctx.data_url("demo", "dataitem", "other", "0123456789abcdef0123456789abcdef", "data.parquet")
    store = ctx.data_store(folder)
    client, bucket = store.client, folder.split("/")[2]  # type: ignore[attr-defined]
    for url in (folder + "data.parquet", elsewhere):
        key = url.split("/", 3)[3]
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    store.write_bytes(folder + "done.txt", b"written")
    store.delete(folder)
    left = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert left == [elsewhere.split("/", 3)[3]]
    assert not store.exists(folder + "done.txt")
