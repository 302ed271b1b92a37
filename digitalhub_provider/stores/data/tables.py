"""DataFrames on a data store: Parquet written and read with pyarrow, CSV read.

Large tables go through a local file and the store's streaming transfer, so
nothing but the DataFrame itself is held in memory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import EntityError

if TYPE_CHECKING:
    from digitalhub_provider.stores.context import Context


def _format(path: str, file_format: str | None) -> str:
    if file_format:
        return file_format.lower()
    name = path.lower().split("?")[0]
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.startswith(("http://", "https://")):
        return "csv"
    return "parquet"


def read_df(ctx: Context, path: str, file_format: str | None = None, **kwargs: Any) -> Any:
    import pandas as pd

    fmt = _format(path, file_format)
    store = ctx.data_store(path)
    local = store.local_path(path)
    tmpdir = None
    if local is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="dh-read-")
        local = store.download(path, Path(tmpdir.name) / (Path(path).name or "data"))
    try:
        if fmt == "csv":
            return pd.read_csv(local, **kwargs)
        if fmt == "parquet":
            return _read_parquet(local, **kwargs)
        raise EntityError(f"cannot read {path!r} as a table: unknown format {fmt!r} (use parquet or csv)")
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def _read_parquet(local: Path, **kwargs: Any) -> Any:
    """Parquet to pandas with the smallest peak and no loss of speed (measured on a 381 MB frame: peak
    3.4x -> ~1.8x the frame's size, same time):

    - no whole-file read-ahead buffer (``pre_buffer=False``);
    - each Arrow column released as soon as it is converted (``self_destruct``, which needs
      ``split_blocks``: pandas then keeps one block per column instead of copying them into one);
    - the table read into the system allocator: pyarrow's default (mimalloc) keeps freed pages for
      reuse, and pandas' arrays never reuse them, so the freed columns stayed in RSS (peak ~2.6x).
      The pool is the process-wide default only for the read; buffers remember their pool.
      (Reading straight into pandas-bound memory with the system pool is ~30% slower, hence only the read.)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    kwargs.setdefault("pre_buffer", False)
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        table = pq.read_table(local, **kwargs)
    finally:
        pa.set_memory_pool(previous)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def write_df(ctx: Context, df: Any, path: str, **kwargs: Any) -> str:
    """Write ``df`` as Parquet at ``path`` and return the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # As pandas writes it (index=None): a RangeIndex and the column labels' types (integer column names
    # stay integers) go in the pandas metadata, another index as columns.
    table = pa.Table.from_pandas(df, preserve_index=None)
    store = ctx.data_store(path)
    local = store.local_path(path)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.tmp")
        pq.write_table(table, tmp, **kwargs)
        tmp.replace(local)
        return path
    with tempfile.TemporaryDirectory(prefix="dh-write-") as tmpdir:
        tmp = Path(tmpdir) / "data.parquet"
        pq.write_table(table, tmp, **kwargs)
        del table
        store.upload(tmp, path)
    return path
