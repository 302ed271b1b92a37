"""Handlers of the world-cities example (the seed's download-and-process flow)."""

from digitalhub_provider import handler


@handler(outputs=["world-cities"])
def download_and_process(project, url: str):
    """Read the CSV at ``url`` (a read-only source dataitem), keep inhabited cities, rank them."""
    source = project.new_dataitem(name="world-cities-source", kind="table", path=url)
    df = source.as_df()
    df = df[df["population"] > 0].copy()
    df["population_millions"] = (df["population"] / 1_000_000).round(3)
    df["rank_in_country"] = df.groupby("country")["population"].rank(ascending=False).astype(int)
    print(f"kept {len(df)} of the cities in {url}")
    return df.sort_values("population", ascending=False).reset_index(drop=True)


@handler(outputs=["cities", "largest", "top_countries"])
def report(di):
    """Summarise the processed dataitem: how many cities, the largest, the three most populous countries."""
    df = di.as_df()
    by_country = df.groupby("country")["population"].sum().nlargest(3)
    print(df.head(5).to_string())
    return len(df), str(df.iloc[0]["name"]), {str(k): int(v) for k, v in by_country.items()}
