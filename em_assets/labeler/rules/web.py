"""Web output rules: HTML built from untrusted data (XSS), template injection, autoescape off.

HTML needs data from parameters (PARAM) to count, not only request data: a view that formats a
stored row into a page is the stored-XSS case.
"""

from __future__ import annotations

import ast
import re

from em_assets.labeler.nodes import call_arg, identifiers, is_false, keyword_arg, last_name
from em_assets.labeler.taint import CONST_VAL, HTML, PARAM, WEB, Analysis, Scope

_HTML_RE = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(\s|>|/|$)|<!--|&lt;")
_RESPONSE_CTORS = frozenset(
    {
        "make_response",
        "Response",
        "HttpResponse",
        "HTMLResponse",
        "StreamingHttpResponse",
        "HttpResponseBadRequest",
        "HttpResponseNotFound",
    }
)
RESPONSE_SINKS = _RESPONSE_CTORS | {"write"}
MARKUP_CALLS = frozenset({"Markup", "mark_safe", "SafeString", "SafeText"})


def html_response(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """HTML built from untrusted data sent in a response or written to one."""
    if name == "write":
        recv = call.func.value if isinstance(call.func, ast.Attribute) else None
        if recv is None:
            return
        rname = " ".join(identifiers(recv))
        is_self = isinstance(recv, ast.Name) and recv.id == "self"
        if not (re.search(r"wfile|response|\bresp\b", rname) or is_self and (sc.is_handler or sc.is_view)):
            return
    arg = (
        call_arg(call, 0, "response")
        or keyword_arg(call, "content")
        or keyword_arg(call, "body")
        or keyword_arg(call, "text")
    )
    if arg is None:
        return
    v = an.evaluate(sc, arg)
    if v.t[HTML] >= PARAM and _HTML_RE.search(v.text()):
        an.report(
            "EM-XSS-HTML-STRING", "CWE-79", call, f"HTML built from untrusted data without escaping sent via {name}()"
        )


def html_returned(an: Analysis, sc: Scope, st: ast.Return) -> None:
    """HTML built from untrusted data and returned by a view (or by a helper of one)."""
    node = st.value
    if isinstance(node, ast.Tuple) and node.elts:
        node = node.elts[0]
    if isinstance(node, (ast.Dict, ast.List, ast.Call)) and not (
        isinstance(node, ast.Call) and last_name(node.func) in ("format", "join")
    ):
        return
    v = an.evaluate(sc, node)
    # a view serves its return value as text/html; a helper counts once request data
    # reaches its parameters (the walk raises them)
    need = PARAM if sc.is_view else WEB
    if v.t[HTML] >= need and _HTML_RE.search(v.text()):
        an.report(
            "EM-XSS-HTML-STRING",
            "CWE-79",
            node,
            "HTML built from request data without escaping is returned " + ("by a view" if sc.is_view else "to a view"),
        )


def template_string(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """render_template_string() of a template built from untrusted data."""
    arg = call_arg(call, 0, "source")
    if arg is None:
        return
    v = an.evaluate(sc, arg)
    if v.t[HTML] >= WEB or v.t[HTML] >= PARAM and v.frags:
        an.report(
            "EM-SSTI-TEMPLATE-STRING",
            "CWE-1336",
            call,
            f"template source for {name}() built from untrusted data (template injection / XSS)",
        )
        return
    txt = v.text()
    if re.search(r"\|\s*safe\b|autoescape\s+(false|off)", txt, re.I):
        kws = [an.evaluate(sc, k.value) for k in call.keywords]
        if any(k.t[HTML] >= PARAM for k in kws):
            an.report(
                "EM-XSS-TEMPLATE-SAFE",
                "CWE-79",
                call,
                "untrusted value rendered with the |safe filter / autoescape off",
            )


def marked_safe(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """Markup()/mark_safe() of untrusted data."""
    arg = call_arg(call, 0)
    if arg is None:
        return
    if an.evaluate(sc, arg).t[HTML] >= PARAM:
        an.report("EM-XSS-MARKUP", "CWE-79", call, f"{name}() marks untrusted data as safe HTML")


def jinja_template(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """A Jinja2 template built from untrusted data, or one without autoescape."""
    q = an.qualified_name(call.func)
    if name == "from_string":
        recv = call.func.value if isinstance(call.func, ast.Attribute) else None
        kind = sc.kind(recv.id) if isinstance(recv, ast.Name) else None
        ids = " ".join(identifiers(recv)) if recv is not None else ""
        if not (
            "jinja" in (kind or "") or "Environment" in (kind or "") or re.search(r"(?i)\benv\b|jinja|environment", ids)
        ):
            return
    elif "jinja2" not in q:
        return
    arg = call_arg(call, 0, "source")
    v = an.evaluate(sc, arg) if arg is not None else CONST_VAL
    if v.t[HTML] >= WEB or v.t[HTML] >= PARAM and v.frags:
        an.report(
            "EM-SSTI-TEMPLATE-STRING",
            "CWE-1336",
            call,
            "Jinja2 template source built from untrusted data (template injection)",
        )
        return
    if name != "Template":
        return
    ae = keyword_arg(call, "autoescape")
    if ae is not None:
        if is_false(ae):
            an.report(
                "EM-JINJA-AUTOESCAPE-OFF",
                "CWE-79",
                call,
                "jinja2.Template(..., autoescape=False) renders data unescaped",
            )
        return
    txt = v.text()
    if not txt or _HTML_RE.search(txt):
        an.report(
            "EM-JINJA-AUTOESCAPE-OFF", "CWE-79", call, "jinja2.Template() without autoescape (off by default) on HTML"
        )


def autoescape_attribute(an: Analysis, tgt: ast.AST, value: ast.AST) -> None:
    """`env.autoescape = False`."""
    if isinstance(tgt, ast.Attribute) and tgt.attr == "autoescape" and is_false(value):
        an.report("EM-JINJA-AUTOESCAPE-OFF", "CWE-79", tgt, "template autoescaping switched off")
