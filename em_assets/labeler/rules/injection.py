"""Injection rules: SQL, shell commands, XPath and LDAP built from untrusted data.

SQL or shell text built from *any* non-literal value is flagged (that is what a reviewer flags
too); SQL assembled from parameters or request data is flagged where it is built, wherever it
is executed later.
"""

from __future__ import annotations

import ast
import re

from em_assets.labeler.nodes import call_arg, const_str, keyword_arg, last_name
from em_assets.labeler.taint import PARAM, SHELL, SQL, UNKNOWN, WEB, Analysis, Scope, Val

_SQL_RE = re.compile(
    r"(?is)\b(select\s.*?\bfrom\b|insert\s+(or\s+\w+\s+)?into\b|update\s+\S+\s+set\b|"
    r"delete\s+from\b|drop\s+(table|database)\b|create\s+table\b|alter\s+table\b|"
    r"replace\s+into\b|truncate\s+table\b|\bwhere\s+\w+\s*(=|like|in\b|>|<))"
)
_SQL_START_RE = re.compile(
    r"(?is)^\s*\(?\s*(select|insert|update|delete|replace|create|drop|alter|with|where|and|or|"
    r"order\s+by|group\s+by|limit|values|set|from|union|exec)\b"
)
SQL_SINKS = frozenset(
    {
        "execute",
        "executemany",
        "executescript",
        "raw",
        "read_sql",
        "read_sql_query",
        "mogrify",
        "text",
        "query",
        "extra",
        "RawSQL",
    }
)
_SHELL_ALWAYS = frozenset({"system", "popen", "popen2", "popen3", "popen4", "getoutput", "getstatusoutput"})
_SUBPROCESS = frozenset({"call", "run", "Popen", "check_call", "check_output"})
SHELL_SINKS = _SHELL_ALWAYS | _SUBPROCESS


def sql_built_from_data(an: Analysis, node: ast.AST, v: Val) -> None:
    """SQL text assembled from parameters/request data, wherever it is executed later."""
    if v.t[SQL] < PARAM or not v.frags:
        return
    if not (
        isinstance(node, (ast.JoinedStr, ast.BinOp)) or isinstance(node, ast.Call) and last_name(node.func) == "format"
    ):
        return
    if v.prefix is not None and _SQL_START_RE.match(v.prefix) and _SQL_RE.search(v.text()):
        an.report("EM-SQL-STRING-BUILD", "CWE-89", node, "SQL statement built from untrusted data by string formatting")


def sql_returned(an: Analysis, sc: Scope, st: ast.Return) -> None:
    """`return f"SELECT ... {name}"`: SQL text built in a helper and executed by its caller."""
    node = st.value
    sql_built_from_data(an, node, an.evaluate(sc, node))


def sql_executed(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """SQL text with non-literal parts passed to execute(), read_sql(), text() ..."""
    arg = call_arg(call, 0, "sql") or keyword_arg(call, "query") or keyword_arg(call, "statement")
    if arg is None:
        return
    v = an.evaluate(sc, arg)
    if v.t[SQL] >= UNKNOWN and _SQL_RE.search(v.text()):
        an.report(
            "EM-SQL-STRING-BUILD",
            "CWE-89",
            call,
            f"SQL statement built by string formatting/concatenation passed to {name}()",
        )


def shell_command(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """A shell string built from non-literal data, or a program taken from request data."""
    q = an.qualified_name(call.func)
    root = q.split(".")[0]
    if name in _SHELL_ALWAYS:
        if root not in ("os", "commands", "subprocess", "popen2"):
            return
        shell = True
    else:
        if root != "subprocess":
            return
        sv = keyword_arg(call, "shell")
        shell = sv is not None and not (isinstance(sv, ast.Constant) and not sv.value)
    arg = call_arg(call, 0, "args") or keyword_arg(call, "cmd")
    if arg is None:
        return
    if shell:
        v = an.evaluate(sc, arg)
        if v.t[SHELL] >= UNKNOWN:
            an.report(
                "EM-CMD-SHELL-STRING", "CWE-78", call, f"shell command built from non-literal data passed to {q}()"
            )
        return
    if isinstance(arg, (ast.List, ast.Tuple)) and arg.elts:
        first = const_str(arg.elts[0]) or ""
        if (
            first.rsplit("/", 1)[-1] in ("sh", "bash", "zsh", "dash", "ksh", "cmd", "cmd.exe", "powershell")
            and len(arg.elts) >= 3
            and const_str(arg.elts[1]) in ("-c", "/c", "/C", "-Command")
        ):
            v = an.evaluate(sc, arg.elts[2])
            if v.t[SHELL] >= UNKNOWN:
                an.report("EM-CMD-SHELL-STRING", "CWE-78", call, "`sh -c` command string built from non-literal data")
                return
        if an.evaluate(sc, arg.elts[0]).t[SHELL] >= WEB:
            an.report("EM-CMD-TAINTED-PROGRAM", "CWE-78", call, "program to execute comes from request data")
    elif an.evaluate(sc, arg).t[SHELL] >= WEB:
        an.report("EM-CMD-TAINTED-PROGRAM", "CWE-78", call, "command to execute comes from request data")


def xpath_expression(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """An XPath expression built from untrusted data."""
    arg = call_arg(call, 0, "_path")
    if arg is None or isinstance(arg, ast.Constant):
        return
    v = an.evaluate(sc, arg)
    if v.top >= PARAM and v.frags and keyword_arg(call, "namespaces") is None:
        if len(call.keywords) == 0:
            an.report("EM-XPATH-INJECTION", "CWE-643", call, "XPath expression built from untrusted data")


def ldap_filter(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """An LDAP search filter built from untrusted data."""
    arg = call_arg(call, 2, "filterstr") or keyword_arg(call, "search_filter")
    if arg is None or isinstance(arg, ast.Constant):
        return
    v = an.evaluate(sc, arg)
    if v.top >= PARAM and v.frags and "ldap" in " ".join(an.modules):
        an.report("EM-LDAP-INJECTION", "CWE-90", call, "LDAP filter built from untrusted data")
