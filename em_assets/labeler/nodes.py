"""Small readers of AST nodes shared by the taint engine and the sink rules."""

from __future__ import annotations

import ast
import stat as _stat
from collections.abc import Iterator


def const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        v = node.value
        return v if isinstance(v, str) else v.decode("latin-1")
    return None


def is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def keyword_arg(call: ast.Call, name: str) -> ast.AST | None:
    """The value of keyword argument `name`, if given."""
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def call_arg(call: ast.Call, pos: int, name: str | None = None) -> ast.AST | None:
    """Argument `name` if passed by keyword, else the one at position `pos` (not a *starred one)."""
    if name is not None:
        v = keyword_arg(call, name)
        if v is not None:
            return v
    if len(call.args) > pos and not isinstance(call.args[pos], ast.Starred):
        return call.args[pos]
    return None


def last_name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def chain_root(node: ast.AST) -> tuple[ast.AST, list[str]]:
    """Root of an attribute/subscript/call chain and the attribute names from the root out."""
    attrs: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            break
    attrs.reverse()
    return node, attrs


def identifiers(node: ast.AST) -> Iterator[str]:
    """Names, attributes, keywords and short string literals under `node` (what a value is about)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.Attribute):
            yield sub.attr
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and len(sub.value) < 40:
            yield sub.value
        elif isinstance(sub, ast.keyword) and sub.arg:
            yield sub.arg


def int_value(node: ast.AST | None, names: dict[str, int] | None = None) -> int | None:
    """Evaluate a permission mode: 0o777, stat.S_IRWXU | stat.S_IWOTH, MODE, ..."""
    if node is None:
        return None
    if names and isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = last_name(node)
        if name.startswith(("S_I", "S_ENFMT")) and hasattr(_stat, name):
            return int(getattr(_stat, name))
        return None
    if isinstance(node, ast.BinOp):
        a, b = int_value(node.left, names), int_value(node.right, names)
        if a is None or b is None:
            return None
        if isinstance(node.op, (ast.BitOr, ast.Add)):
            return a | b if isinstance(node.op, ast.BitOr) else a + b
        if isinstance(node.op, ast.BitAnd):
            return a & b
        return None
    if isinstance(node, ast.Call) and last_name(node.func) == "int":
        s = const_str(node.args[0]) if node.args else None
        base = int_value(node.args[1]) if len(node.args) > 1 else 10
        if s is not None and base:
            try:
                return int(s, base)
            except ValueError:
                return None
    return None
