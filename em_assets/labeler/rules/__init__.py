"""The labeler's own AST rules: the patterns bandit misses or gets wrong, grouped by family.

Pure Python, no third-party imports. :func:`run_rules` takes a parsed module and returns
``(rule_id, cwe, line, message)`` tuples, found by the taint engine (:mod:`..walk`) calling the
rules below at each call, comparison, assignment, return and function definition. Sink rules
are looked up by the called name in :data:`SINKS`; each states the taint level it needs.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable

from em_assets.labeler.rules import crypto, files, injection, network, parsers, web
from em_assets.labeler.taint import Analysis, RawFinding, Scope, Val
from em_assets.labeler.walk import Hooks, analyse

SinkRule = Callable[[Analysis, Scope, ast.Call, str], None]

# (called names, rule), in the order the rules run when several share a name (`search`, `get`)
_SINK_TABLE: tuple[tuple[Iterable[str], SinkRule], ...] = (
    (injection.SQL_SINKS, injection.sql_executed),
    (injection.SHELL_SINKS, injection.shell_command),
    (web.RESPONSE_SINKS, web.html_response),
    (("render_template_string",), web.template_string),
    (web.MARKUP_CALLS, web.marked_safe),
    (("Template", "from_string"), web.jinja_template),
    (files.FILE_SINKS, files.file_path),
    (files.ARCHIVE_SINKS, files.archive_extract),
    (files.PERMISSION_SINKS, files.permission_mode),
    (crypto.HASH_SINKS, crypto.password_hash),
    (network.REDIRECT_SINKS, network.redirect_target),
    (network.REGEX_SINKS, network.url_regex),
    (network.PREFIX_SINKS, network.url_prefix_check),
    (("xpath",), injection.xpath_expression),
    (("search", "search_s", "search_ext_s", "search_st"), injection.ldap_filter),
    (parsers.YAML_SINKS, parsers.yaml_load),
    (crypto.JWT_SINKS, crypto.jwt_decode),
    (parsers.XML_SINKS, parsers.xml_parse),
    (network.HTTP_SINKS, network.outgoing_request),
)

# called name -> its sink rules
SINKS: dict[str, tuple[SinkRule, ...]] = {}
for _names, _rule in _SINK_TABLE:
    for _name in _names:
        SINKS[_name] = SINKS.get(_name, ()) + (_rule,)


def _call(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    crypto.credential_keywords(an, call)
    network.all_interfaces(an, call, name)
    network.tls_keywords(an, call, name)
    for rule in SINKS.get(name, ()):
        rule(an, sc, call, name)


def _compare(an: Analysis, sc: Scope, node: ast.Compare) -> None:
    crypto.credential_compare(an, node)
    network.host_substring_check(an, node)


def _target(an: Analysis, sc: Scope, tgt: ast.AST, value: ast.AST, v: Val) -> None:
    network.tls_attribute(an, tgt, value)
    web.autoescape_attribute(an, tgt, value)
    crypto.assigned_secret(an, sc, tgt, value)


def _returned(an: Analysis, sc: Scope, st: ast.Return) -> None:
    # keep this order: evaluating the value again can bind names (walrus, comprehension, append)
    injection.sql_returned(an, sc, st)
    crypto.returned_secret(an, sc, st)
    web.html_returned(an, sc, st)


HOOKS = Hooks(
    call=_call,
    compare=_compare,
    assigned=injection.sql_built_from_data,
    target=_target,
    returned=_returned,
    function=crypto.credential_defaults,
)


def run_rules(tree: ast.Module) -> list[RawFinding]:
    """All AST-rule findings for a parsed module, sorted by line."""
    return sorted(analyse(tree, HOOKS), key=lambda f: (f[2], f[0]))
