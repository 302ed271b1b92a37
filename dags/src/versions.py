"""Handler of the build example: which versions the function's environment holds."""

from digitalhub_provider import handler


@handler(outputs=["six_version"])
def versions():
    import six

    return six.__version__
