"""Every argument of the runtime operators is documented in the operator's class docstring.

The reference pages of the documentation site (``docs/reference/``) are generated from these
docstrings by mkdocstrings, so an argument missing here is missing there. The arguments of
``DigitalHubRunOperator.__init__`` reach the concrete operators through ``**kwargs``: each
concrete operator documents them too (Google style: ``Args:`` for its own, ``Other Parameters:``
for the shared ones, with their type, since its signature does not show them).
``**kwargs`` itself (``BaseOperator``'s arguments) is not counted.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from digitalhub_provider.operators.base import DigitalHubRunOperator
from digitalhub_provider.operators.kfp import KfpPipelineOperator
from digitalhub_provider.operators.mlrun import MlrunJobOperator
from digitalhub_provider.operators.python import PythonRuntimeOperator

OPERATORS = (PythonRuntimeOperator, KfpPipelineOperator, MlrunJobOperator)
SECTIONS = ("Args", "Arguments", "Parameters", "Params", "Other Parameters", "Keyword Args", "Keyword Arguments")
# "    name (type): text" or "    name: text" at the section's indentation
ITEM = re.compile(r"^(?P<indent>\s+)(?P<name>\*{0,2}\w+)(?:\s+\((?P<type>[^)]*(?:\([^)]*\)[^)]*)*)\))?:(?:\s|$)")


def init_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The named arguments of ``cls.__init__`` (not ``self``, ``*args`` or ``**kwargs``)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def documented(doc: str) -> list[tuple[str, str | None]]:
    """``(name, type or None)`` of every item of the docstring's argument sections, in order."""
    found: list[tuple[str, str | None]] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        header = lines[i].strip()
        if header.endswith(":") and header[:-1] in SECTIONS:
            section_indent = len(lines[i]) - len(lines[i].lstrip())
            item_indent: int | None = None
            i += 1
            while i < len(lines):
                line = lines[i]
                if line.strip() and len(line) - len(line.lstrip()) <= section_indent:
                    break  # the section ended
                match = ITEM.match(line)
                indent = len(line) - len(line.lstrip())
                if match and (item_indent is None or indent == item_indent):
                    item_indent = indent
                    found.append((match["name"].lstrip("*"), match["type"]))
                i += 1
            continue
        i += 1
    return found


def expected_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The operator's own arguments, then the base's it does not redefine."""
    own = init_arguments(cls)
    return {**{k: v for k, v in init_arguments(DigitalHubRunOperator).items() if k not in own}, **own}


def test_the_parser_reads_google_sections() -> None:
    doc = (
        "Summary.\n\n    Args:\n        a: one\n            continued: not an item\n        b (int): two\n\n"
        "    Other Parameters:\n        c (dict[str, Any] | None): three\n\n    Returns:\n        d: not an argument\n"
    )
    assert documented(inspect.cleandoc(doc)) == [("a", None), ("b", "int"), ("c", "dict[str, Any] | None")]


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
def test_every_argument_is_documented(cls: type) -> None:
    doc = inspect.getdoc(cls) or ""
    names = [name for name, _ in documented(doc)]
    missing = [name for name in expected_arguments(cls) if name not in names]
    assert not missing, f"{cls.__name__}'s docstring does not document: {', '.join(missing)}"


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
def test_no_unknown_or_repeated_argument(cls: type) -> None:
    names = [name for name, _ in documented(inspect.getdoc(cls) or "")]
    known = {*expected_arguments(cls), "kwargs"}
    unknown = [name for name in names if name not in known]
    assert not unknown, f"{cls.__name__}'s docstring documents arguments it does not take: {', '.join(unknown)}"
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"{cls.__name__}'s docstring documents more than once: {', '.join(repeated)}"


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
def test_documented_types_match_the_signatures(cls: type) -> None:
    """A type written in the docstring (the shared arguments') is the signature's annotation."""
    params = expected_arguments(cls)
    wrong = [
        f"{name}: docstring {doc_type!r}, signature {params[name].annotation!r}"
        for name, doc_type in documented(inspect.getdoc(cls) or "")
        if doc_type is not None and name in params and doc_type != params[name].annotation
    ]
    assert not wrong, f"{cls.__name__}: " + "; ".join(wrong)


def test_an_undocumented_argument_fails() -> None:
    """The check itself: an operator whose docstring leaves out an argument is caught."""

    class Undocumented(PythonRuntimeOperator):
        """An operator that documents one of its arguments.

        Args:
            code_src: The source.
        """

        def __init__(self, *, code_src: str | None = None, extra_thing: int = 0, **kwargs: Any) -> None:
            super().__init__(code_src=code_src, **kwargs)

    names = [name for name, _ in documented(inspect.getdoc(Undocumented) or "")]
    missing = [name for name in expected_arguments(Undocumented) if name not in names]
    assert "extra_thing" in missing and "project" in missing and "code_src" not in missing
