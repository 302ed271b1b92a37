"""The provider's version, in one place: ``setup.cfg`` reads it (``version = attr: ...``) and so does the
provider info Airflow shows (:func:`digitalhub_provider.get_provider_info.get_provider_info`).

Semantic versioning (MAJOR.MINOR.PATCH; while 0.x, a MINOR may change behaviour): bumped here once per
release, together with the release's heading in ``CHANGELOG.md`` (a test checks they agree).
"""

__version__ = "0.1.0"
