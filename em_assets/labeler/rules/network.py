"""Network rules: requests to URLs from request data (SSRF), open redirects, host checks that
a crafted URL passes (substring/prefix tests, unescaped dots in regexes), TLS verification
switched off, servers bound to all interfaces.

Redirect targets and outgoing URLs need WEB taint unless their literal prefix pins the host
(`/path`, `https://host/`).
"""

from __future__ import annotations

import ast
import re

from em_assets.labeler.nodes import call_arg, const_str, identifiers, is_false, keyword_arg, last_name
from em_assets.labeler.taint import URL, WEB, Analysis, Scope

_BIND_CALLS = frozenset(
    {
        "run",
        "bind",
        "serve",
        "run_simple",
        "make_server",
        "create_server",
        "HTTPServer",
        "ThreadingHTTPServer",
        "TCPServer",
        "ThreadingTCPServer",
        "UDPServer",
        "start_server",
        "run_app",
        "listen",
        "WSGIServer",
    }
)
_HTTP_CLIENT_CALLS = frozenset(
    {
        "get",
        "post",
        "put",
        "delete",
        "head",
        "patch",
        "options",
        "request",
        "send",
        "stream",
        "Session",
        "Client",
        "AsyncClient",
        "urlopen",
        "ClientSession",
        "TCPConnector",
        "HTTPSConnection",
        "PoolManager",
        "Request",
    }
)
_HTTP_ROOTS = frozenset(
    {"requests", "httpx", "urllib", "urllib2", "urllib3", "aiohttp", "session", "client", "http", "s", "sess"}
)
_URLISH_RE = re.compile(
    r"(?i)url|uri|link|host|domain|netloc|redirect|next|target|referr?er|site|origin|"
    r"location|dest|callback|return_to|webhook|endpoint"
)
_DOMAIN_RE = re.compile(
    r"(?i)^(https?://)?([a-z0-9-]+\.)+(com|org|net|io|edu|gov|co|uk|de|info|biz|us|dev|app|"
    r"ai|me|cloud|site|local|internal|example)(:\d+)?/?$"
)
_REGEX_BAD_DOT_RE = re.compile(
    r"(?<!\\)\.(com|org|net|io|edu|gov|co|uk|de|info|biz|us|dev|app|ai|me)(?![a-zA-Z0-9])|"
    r"(?<![\\\w])www(?<!\\)\.[\w(\[]"
)
_ANCHORED_URL_RE = re.compile(r"^(/(?![/\\])|https?://[\w.-]+(:\d+)?[/?#])")
HTTP_SINKS = frozenset(
    {
        "get",
        "post",
        "put",
        "delete",
        "head",
        "patch",
        "request",
        "urlopen",
        "urlretrieve",
        "stream",
        "Request",
        "options",
    }
)
REDIRECT_SINKS = frozenset({"redirect", "HttpResponseRedirect", "HttpResponsePermanentRedirect", "RedirectResponse"})
REGEX_SINKS = frozenset({"compile", "match", "search", "fullmatch", "findall", "finditer"})
PREFIX_SINKS = frozenset({"startswith", "endswith"})


def outgoing_request(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """An HTTP request to a URL taken from request data (SSRF)."""
    func = call.func
    q = an.qualified_name(func)
    root = q.split(".")[0]
    if root not in _HTTP_ROOTS and an.aliases.get(name, "").split(".")[0] not in (
        "requests",
        "httpx",
        "urllib",
        "urllib2",
        "aiohttp",
    ):
        return
    pos = 1 if name == "request" else 0
    arg = call_arg(call, pos, "url")
    if arg is None:
        return
    v = an.evaluate(sc, arg)
    if v.t[URL] >= WEB and not _ANCHORED_URL_RE.match(v.prefix or ""):
        an.report("EM-SSRF", "CWE-918", call, f"server-side request to a URL taken from request data ({q})")


def redirect_target(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """A redirect to a URL taken from request data."""
    arg = call_arg(call, 0, "location") or keyword_arg(call, "redirect_to") or keyword_arg(call, "url")
    if arg is None:
        return
    v = an.evaluate(sc, arg)
    if v.t[URL] >= WEB and not _ANCHORED_URL_RE.match(v.prefix or ""):
        an.report("EM-OPEN-REDIRECT", "CWE-601", call, "redirect target taken from request data without validation")


def host_substring_check(an: Analysis, node: ast.Compare) -> None:
    """`"example.com" in url`: a substring test is not a host check."""
    if not any(isinstance(o, (ast.In, ast.NotIn)) for o in node.ops):
        return
    const = const_str(node.left)
    if const is None or not _DOMAIN_RE.match(const):
        return
    for c in node.comparators:
        if isinstance(c, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            return
        ids = " ".join(identifiers(c))
        if _URLISH_RE.search(ids):
            an.report(
                "EM-URL-SUBSTRING-CHECK",
                "CWE-20",
                node,
                f"'{const}' substring test on a URL/host is bypassable (e.g. evil.com/?x={{const}})",
            )
            return


def url_prefix_check(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """startswith()/endswith() host tests that a crafted host passes (example.com.evil.com)."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return
    pat = const_str(call_arg(call, 0))
    if pat is None or not _DOMAIN_RE.match(pat):
        return
    if not _URLISH_RE.search(" ".join(identifiers(func.value))):
        return
    if name == "startswith":
        if "://" in pat and not pat.endswith("/"):
            an.report("EM-URL-SUBSTRING-CHECK", "CWE-20", call, f"startswith('{pat}') also accepts {pat}.evil.com")
    elif not pat.startswith((".", "/")) and "://" not in pat:
        an.report("EM-URL-SUBSTRING-CHECK", "CWE-20", call, f"endswith('{pat}') also accepts evil{pat}")


def url_regex(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """A host/URL regex whose unescaped '.' matches any character."""
    q = an.qualified_name(call.func)
    if not q.startswith("re.") and not an.aliases.get(name, "").startswith("re."):
        return
    pat = const_str(call_arg(call, 0, "pattern"))
    if (
        pat
        and ("http" in pat or "www" in pat or "//" in pat or "^" in pat or "[" in pat)
        and _REGEX_BAD_DOT_RE.search(pat)
    ):
        an.report(
            "EM-REGEX-UNESCAPED-DOT",
            "CWE-20",
            call,
            "host/URL regex with an unescaped '.' matches any character (validation bypass)",
        )


def tls_attribute(an: Analysis, tgt: ast.AST, value: ast.AST) -> None:
    """`ctx.check_hostname = False`, `ctx.verify_mode = ssl.CERT_NONE`."""
    if not isinstance(tgt, ast.Attribute):
        return
    if tgt.attr == "check_hostname" and is_false(value):
        an.report("EM-TLS-NO-VERIFY", "CWE-295", tgt, "TLS hostname checking disabled (check_hostname = False)")
    elif tgt.attr == "verify_mode" and last_name(value) == "CERT_NONE":
        an.report("EM-TLS-NO-VERIFY", "CWE-295", tgt, "TLS certificate verification disabled (CERT_NONE)")


def tls_keywords(an: Analysis, call: ast.Call, name: str) -> None:
    """`cert_reqs=ssl.CERT_NONE`; `verify=False` where bandit (B501) does not see it."""
    for k in call.keywords:
        if k.arg in ("cert_reqs", "verify_mode") and last_name(k.value) == "CERT_NONE":
            an.report("EM-TLS-NO-VERIFY", "CWE-295", call, "TLS certificate verification disabled (CERT_NONE)")
        elif k.arg == "verify" and is_false(k.value) and name in _HTTP_CLIENT_CALLS:
            q = an.qualified_name(call.func)
            covered_by_bandit = q.startswith(("requests.", "httpx.")) and q.count(".") == 1
            if not covered_by_bandit:
                an.report("EM-TLS-NO-VERIFY", "CWE-295", call, "TLS certificate verification disabled (verify=False)")


def all_interfaces(an: Analysis, call: ast.Call, name: str) -> None:
    """`app.run(host="0.0.0.0")`, `sock.bind(("", port))`: a server reachable from everywhere."""
    for k in call.keywords:
        if k.arg == "host" and name in _BIND_CALLS and const_str(k.value) in ("0.0.0.0", "::"):
            an.report(
                "EM-BIND-ALL-INTERFACES", "CWE-1327", call, f"server bound to all interfaces ({const_str(k.value)})"
            )
    if name in _BIND_CALLS and call.args:
        first = call.args[0]
        host = (
            const_str(first.elts[0])
            if isinstance(first, ast.Tuple) and first.elts
            else (const_str(first) if name in ("run", "run_simple", "serve") else None)
        )
        port = first.elts[1] if isinstance(first, ast.Tuple) and len(first.elts) > 1 else None
        if host in ("0.0.0.0", "::") or (
            host == "" and name == "bind" and not (isinstance(port, ast.Constant) and port.value == 0)
        ):
            an.report("EM-BIND-ALL-INTERFACES", "CWE-1327", call, "socket/server bound to all interfaces")
