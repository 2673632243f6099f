"""Parser rules: YAML loaders that construct arbitrary objects, XML parsers that resolve
external entities (XXE) or expand them on request data."""

from __future__ import annotations

import ast

from em_assets.labeler.nodes import call_arg, const_str, is_false, is_true, keyword_arg, last_name
from em_assets.labeler.taint import WEB, Analysis, Scope

_SAFE_YAML_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader", "FullLoader", "CFullLoader"})
YAML_SINKS = frozenset({"load", "load_all", "unsafe_load", "unsafe_load_all"})
XML_SINKS = frozenset({"XMLParser", "setFeature", "fromstring", "XML", "parse", "parseString"})


def yaml_load(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """yaml.load() without a safe Loader, yaml.unsafe_load()."""
    q = an.qualified_name(call.func)
    root = q.split(".")[0]
    if root not in ("yaml", "ruamel") or (
        isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id not in an.aliases
    ):
        return
    if name in ("unsafe_load", "unsafe_load_all"):
        an.report("EM-YAML-UNSAFE-LOAD", "CWE-502", call, f"yaml.{name}() constructs arbitrary Python objects")
        return
    loader = call_arg(call, 1, "Loader")
    lname = last_name(loader) if loader is not None else ""
    if isinstance(loader, ast.Name):
        lname = an.aliases.get(lname, lname).rsplit(".", 1)[-1]
        lname = an.class_bases.get(lname, lname)
    if lname not in _SAFE_YAML_LOADERS:
        an.report("EM-YAML-UNSAFE-LOAD", "CWE-502", call, f"yaml.{name}() without a safe Loader (use yaml.safe_load)")


def xml_parse(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """XML parsing with external entities on, or of request data with a resolving parser."""
    q = an.qualified_name(call.func)
    if name == "XMLParser":
        if "lxml" in q or "etree" in q and "lxml" in an.modules:
            if is_true(keyword_arg(call, "resolve_entities")) or is_false(keyword_arg(call, "no_network")):
                an.report("EM-XXE", "CWE-611", call, "lxml XMLParser resolves external entities (XXE)")
        return
    if name == "setFeature":
        feat = call_arg(call, 0)
        val = call_arg(call, 1)
        fname = (last_name(feat) if feat is not None else "") + (const_str(feat) or "")
        if "external" in fname and is_true(val):
            an.report("EM-XXE", "CWE-611", call, "XML parser feature enables external entities (XXE)")
        return
    if name == "parse" and q.startswith("xmltodict") and is_false(keyword_arg(call, "disable_entities")):
        an.report("EM-XXE", "CWE-611", call, "xmltodict.parse with entities enabled")
        return
    if name in ("parse", "parseString") and q.startswith(
        ("xml.dom.minidom", "xml.dom.pulldom", "xml.sax", "xml.dom.expatbuilder")
    ):
        arg = call_arg(call, 0)
        if arg is not None and an.evaluate(sc, arg).top >= WEB:
            an.report("EM-XXE", "CWE-611", call, f"request data parsed by {q} (entity expansion/XXE; use defusedxml)")
        return
    if (
        name in ("fromstring", "parse", "XML")
        and "lxml" in q
        and keyword_arg(call, "parser") is None
        and len(call.args) < 2
    ):
        arg = call_arg(call, 0, "source") or call_arg(call, 0, "text")
        if arg is not None and an.evaluate(sc, arg).top >= WEB:
            an.report(
                "EM-XXE", "CWE-611", call, "request data parsed by lxml with the default (entity-resolving) parser"
            )
