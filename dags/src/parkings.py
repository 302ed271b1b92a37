"""The seed's KFP example: download parking occupancy data, extract the parkings.

- ``register_source(project, path)``: a table dataitem pointing at the CSV (the
  workflow's ``url`` input, as in the seed where ``url`` is a dataitem key);
- ``downloader(url)``: the table behind ``url``, stored as the ``dataset`` dataitem;
- ``extract_parkings(di)``: one row per parking (name, address, position, type,
  spaces) with its mean occupancy over the observations, busiest first;
- ``pipeline(url)``: the two steps chained with the kfp runtime's DSL (the seed's
  ``myhandler``).

Light to import (pandas is imported inside the handlers): DAG files render
``pipeline`` at parse time.
"""

from digitalhub_provider import handler
from digitalhub_provider.runtimes.kfp.dsl import pipeline_context


@handler(outputs=["parkings-source"])
def register_source(project, path: str):
    """Register the CSV at ``path`` (a file or an http(s) URL) as a read-only table dataitem."""
    return project.new_dataitem(name="parkings-source", kind="table", path=path)


@handler(outputs=["dataset"])
def downloader(url):
    """Read the source table (``url`` is the dataitem) and keep it on the data store."""
    df = url.as_df()
    print(f"downloaded {len(df)} observations of {df['parking'].nunique()} parkings")
    return df


@handler(outputs=["parkings", "parkings_count", "total_spaces", "busiest"])
def extract_parkings(di):
    """One row per parking with its mean occupancy; plus how many parkings, their spaces, the busiest."""
    df = di.as_df()
    df["occupancy"] = 1 - df["free_spaces"] / df["spaces"]
    static = ["parking", "address", "lat", "lon", "type", "spaces"]
    parkings = (
        df.groupby(static, as_index=False)
        .agg(observations=("occupancy", "size"), mean_occupancy=("occupancy", "mean"))
        .sort_values(["mean_occupancy", "parking"], ascending=[False, True])
        .reset_index(drop=True)
    )
    parkings["mean_occupancy"] = parkings["mean_occupancy"].round(3)
    print(parkings.to_string())
    return parkings, len(parkings), int(parkings["spaces"].sum()), str(parkings.iloc[0]["parking"])


def pipeline(url):
    """The seed's workflow: ``download`` then ``extract_parkings`` on what it downloaded."""
    with pipeline_context() as pc:
        download = pc.step(
            name="download",
            function="downloader-funct",
            action="job",
            inputs={"url": url},
            outputs={"dataset": "dataset"},
        )
        pc.step(
            name="extract_parkings",
            function="extract-parkings",
            action="job",
            inputs={"di": download.outputs["dataset"]},
            outputs={"parkings": "parkings"},
            values=["parkings_count", "total_spaces", "busiest"],
        )
