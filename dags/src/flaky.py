"""Handler of the retry example: fails on the first two tries, succeeds on the third."""

from digitalhub_provider import handler


@handler(outputs=["succeeded_on_try"])
def flaky(try_number: int, succeed_on: int = 3):
    if int(try_number) < int(succeed_on):
        raise RuntimeError(f"try {try_number} fails on purpose (succeeds on try {succeed_on})")
    return int(try_number)
