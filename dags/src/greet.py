"""Handler of the UI-triggered example: its parameters come from the DAG run's Params."""

from digitalhub_provider import handler


@handler(outputs=["greeting", "length"])
def greet(name: str, times: int = 1, shout: bool = False):
    text = " ".join([f"Hello, {name}!"] * int(times))
    if shout:
        text = text.upper()
    print(text)
    return text, len(text)
