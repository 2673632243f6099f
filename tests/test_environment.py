"""Every environment variable is read through em_assets/environment.py and documented there."""

import ast
import re
from pathlib import Path

import pytest

from em_assets import environment

PACKAGE = Path(__file__).resolve().parents[1] / "em_assets"
README = PACKAGE.parent / "README.md"


def test_the_readme_table_is_the_modules_table():
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- environment table: generated -->\n", 1)[1].split("\n<!-- end of environment table -->", 1)[
        0
    ]
    assert block == environment.markdown_table()


def _literal_env_reads(tree: ast.AST) -> list[str]:
    """Names read with a literal: os.environ.get("X"), os.getenv("X"), os.environ["X"]."""
    names = []
    for node in ast.walk(tree):
        target, key = None, None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            target, key = ast.unparse(node.func), node.args[0].value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            target, key = ast.unparse(node.value), node.slice.value
        if target in {"os.environ.get", "os.getenv", "os.environ"} and isinstance(key, str):
            names.append(key)
    return names


def test_no_module_reads_a_variable_by_name_but_the_table():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "environment.py":
            continue
        reads = _literal_env_reads(ast.parse(path.read_text(encoding="utf-8")))
        if reads:
            offenders[str(path.relative_to(PACKAGE))] = reads
    assert offenders == {}


def test_every_variable_named_in_the_code_is_in_the_table():
    named = set()
    for path in PACKAGE.rglob("*.py"):
        if "testing" in path.parts:
            continue  # the fake server's own knobs are not the project's settings
        named |= set(re.findall(r"\b(EM_[A-Z0-9_]+)\b", path.read_text(encoding="utf-8")))
    assert named - set(environment.BY_NAME) == set()


def test_values_fall_back_to_the_table_and_unknown_names_fail(monkeypatch):
    monkeypatch.delenv("EM_REEVALUATION_TIMEZONE", raising=False)
    assert environment.value("EM_REEVALUATION_TIMEZONE") == "UTC"
    monkeypatch.setenv("EM_REEVALUATION_TIMEZONE", " Europe/Paris ")
    assert environment.value("EM_REEVALUATION_TIMEZONE") == "Europe/Paris"
    assert environment.env_or("EM_REEVALUATION_TIMEZONE").env_var_name == "EM_REEVALUATION_TIMEZONE"
    with pytest.raises(KeyError):
        environment.value("EM_NO_SUCH_SETTING")
    with pytest.raises(KeyError):
        environment.is_set("EM_TYPO")
