"""MLRun handlers of the mlrun_downloader example (the seed's MLRun downloader).

They run in the mlrun environment (Python 3.11 + mlrun), where the runner runs, never in
the scheduler's environment: this file imports mlrun.
"""

import mlrun


def downloader(context, url: mlrun.DataItem):
    """Read the table behind ``url``, normalise it and log it as the ``dataset`` dataset."""
    df = url.as_df()
    df.columns = [str(c).strip().lower() for c in df.columns]
    df["hire_date"] = df["hire_date"].astype("datetime64[ns]")
    context.log_dataset("dataset", df=df, index=False)
    context.log_result("rows", len(df))
    context.logger.info(f"logged {len(df)} rows from {url.key}")
