"""AST rules of the vulnerability labeler: the patterns bandit misses or gets wrong.

Pure Python, no third-party imports. Entry point: :func:`run_rules` takes a parsed module and
returns ``(rule_id, cwe, line, message)`` tuples; :mod:`em_assets.core.labeler` wraps them into
``Finding`` objects next to bandit's.

How it works
------------
One pass over the module, statement by statement in source order, keeps a small *taint state*
per scope (module, each function): for every local name, how attacker-controlled its value is
per output context, the literal string fragments it was built from (so a sink can tell an HTML
page or an SQL statement from an opaque value) and the literal text it starts with (so
``redirect(f"/users/{id}")`` or ``open("/tmp/x")`` can be judged by their prefix).

Taint levels (higher = more attacker-controlled)::

    CONST    literal / derived only from literals, or sanitised for that context
    UNKNOWN  some non-literal value (a call result, a global)
    PARAM    a parameter of an ordinary function; DB rows as HTML (stored XSS)
    LOCAL    input(), sys.argv, stdin, argparse: the local operator
    WEB      request data (Flask/Django/Tornado/http.server), untyped route parameters,
             archive member names (zip slip)

Contexts (a sanitiser clears only its own): HTML, SQL, SHELL, PATH, URL.
``int()``/``len()``/``url_for()`` clear all of them; ``escape``/``bleach.clean`` clear HTML;
``shlex.quote`` clears SHELL; ``secure_filename``/``basename`` clear PATH. A validation test in
an ``if``/``assert`` (membership, ``startswith``, ``commonpath``, regex match, ``urlparse``...)
clears PATH and URL for the names it mentions and for the names those were computed from.

Each sink states the level it needs: SQL or shell text built from *any* non-literal is flagged
(that is what a reviewer flags too), HTML from parameters or request data needs PARAM, while
file paths, redirects and outgoing URLs need WEB (a function that opens the path it is given is
not a vulnerability; one that opens a path from the query string is).

Inter-procedural step: when a module-local function is called with request data, its
parameters are raised to that level and the module is analysed again (at most three passes).
"""

from __future__ import annotations

import ast
import re
import stat as _stat
from collections.abc import Iterable, Iterator

RawFinding = tuple[str, str, int, str]  # (rule_id, cwe, line, message)

CONST, UNKNOWN, PARAM, LOCAL, WEB = range(5)
HTML, SQL, SHELL, PATH, URL = range(5)
_NCTX = 5
_ZERO = (CONST,) * _NCTX
_MAX_FRAGS = 48

# ------------------------------------------------------------------------------------------------
# value lattice


class Val:
    """Abstract value: per-context taint levels and the literal string fragments it contains."""

    __slots__ = ("t", "frags", "prefix")

    def __init__(self, t: tuple[int, ...] = _ZERO, frags: tuple[str, ...] = (),
                 prefix: str | None = None) -> None:
        self.t = t
        self.frags = frags
        self.prefix = prefix  # literal text the value is known to start with

    @property
    def top(self) -> int:
        return max(self.t)

    def clear(self, *ctxs: int) -> Val:
        t = list(self.t)
        for c in ctxs:
            t[c] = CONST
        return Val(tuple(t), self.frags, self.prefix)

    def with_prefix(self, prefix: str | None) -> Val:
        return Val(self.t, self.frags, prefix)

    def text(self) -> str:
        return "\x00".join(self.frags)


def _lvl(level: int) -> tuple[int, ...]:
    return (level,) * _NCTX


CONST_VAL = Val()
UNKNOWN_VAL = Val(_lvl(UNKNOWN))
STORED_VAL = Val((PARAM, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN))  # DB rows: stored XSS
MEMBER_VAL = Val((UNKNOWN, UNKNOWN, UNKNOWN, WEB, UNKNOWN))  # archive member names: zip slip


def join(vals: Iterable[Val], frags: bool = True) -> Val:
    vals = [v for v in vals if v is not None]
    if not vals:
        return CONST_VAL
    if len(vals) == 1:
        v = vals[0]
        return Val(v.t, v.frags) if frags else Val(v.t)
    t = tuple(map(max, *(v.t for v in vals)))
    if not frags:
        return Val(t)
    fr: list[str] = []
    for v in vals:
        fr.extend(v.frags)
    return Val(t, tuple(fr[:_MAX_FRAGS]))


# ------------------------------------------------------------------------------------------------
# vocabularies

# request attributes that are not attacker-controlled text
_REQUEST_SAFE_ATTRS = frozenset({
    "method", "user", "session", "is_json", "is_secure", "endpoint", "blueprint", "url_rule",
    "scheme", "is_ajax", "auth", "remote_user", "environ", "app", "url", "base_url", "path",
    "full_path", "host_url", "url_root", "script_root", "referrer", "host", "mimetype",
    "content_type", "content_length", "META", "is_xhr",
    # pytest's `request` fixture
    "param", "node", "config", "fixturename", "getfixturevalue", "addfinalizer", "module",
    "function", "cls", "instance", "keywords",
})
_TORNADO_SOURCES = frozenset({
    "get_argument", "get_arguments", "get_query_argument", "get_query_arguments",
    "get_body_argument", "get_body_arguments", "get_cookie", "get_secure_cookie",
})
_HANDLER_SOURCES = frozenset({"path", "headers", "rfile", "requestline"})

# calls whose result carries its inputs' taint (and, for string methods, the receiver's text)
_STR_METHODS = frozenset({
    "format", "join", "replace", "strip", "lstrip", "rstrip", "lower", "upper", "title",
    "capitalize", "casefold", "center", "ljust", "rjust", "zfill", "expandtabs", "removeprefix",
    "removesuffix", "translate", "format_map", "encode", "decode", "swapcase",
})
_PROPAGATE = frozenset({
    "str", "repr", "bytes", "bytearray", "list", "tuple", "dict", "set", "frozenset", "sorted",
    "reversed", "Path", "PurePath", "PosixPath", "WindowsPath", "abspath", "normpath",
    "expanduser", "expandvars", "realpath", "dirname", "splitext", "loads", "load", "dumps",
    "get", "getlist", "getall", "pop", "setdefault", "values", "keys", "items", "copy", "split",
    "rsplit", "splitlines", "partition", "rpartition", "read", "readline", "readlines",
    "get_json", "get_data", "unquote", "unquote_plus", "b64decode", "urlsafe_b64decode",
    "b64encode", "urljoin", "urlparse", "urlsplit", "urlunparse", "parse_qs", "parse_qsl",
    "next", "iter", "map", "filter", "getattr", "BytesIO", "StringIO", "first", "to_dict",
    "dedent", "fill", "wrap", "safe_load", "fromstring", "joinpath", "with_suffix", "with_name",
    "as_posix", "resolve", "absolute", "concat", "chain", "zip", "enumerate", "min", "max",
    "Request",
}) | _STR_METHODS
# sanitisers: calls whose result is a number, a boolean, an id or a fixed value (every context)
# and, by name, sanitisers of one context
_CLEAN_ALL = frozenset({
    "int", "float", "bool", "len", "abs", "round", "ord", "hash", "UUID", "uuid4", "uuid1",
    "isdigit", "isnumeric", "isalnum", "isalpha", "count", "index", "find", "exists", "isfile",
    "isdir", "getsize", "url_for", "reverse", "id", "type", "isinstance", "hexdigest", "digest",
    "compare_digest", "uuid", "time", "now", "utcnow", "today", "randint", "token_hex",
    "token_urlsafe", "mkdtemp", "getcwd", "timestamp", "Decimal",
})
_CLEAN_HTML_RE = re.compile(r"(?i)escape|sanitiz|saniti[sz]e|clean|bleach|strip_tags|purif|linkify|"
                            r"quote|urlencode|jsonify|tojson|dumps|format_html|render_template$")
_CLEAN_SQL_RE = re.compile(r"(?i)escape|sanitiz|quote|literal")
_CLEAN_SHELL_RE = re.compile(r"(?i)^(quote|escape|shell_escape|sanitiz\w*|clean\w*)$")
_CLEAN_PATH_RE = re.compile(r"(?i)secure_filename|basename|safe_join|sanitiz|clean|valid")
_CLEAN_URL_RE = re.compile(r"(?i)url_for|reverse|safe_url|sanitiz|valid")

_VALIDATOR_CALL_RE = re.compile(
    r"(?i)^(startswith|realpath|abspath|normpath|commonpath|commonprefix|is_relative_to|"
    r"relative_to|resolve|isabs|match|fullmatch|search|urlparse|urlsplit|is_safe_url|"
    r"url_has_allowed_host_and_scheme|secure_filename|basename|safe_join)$|"
    r"valid|allow|safe|trust|whitelist|permit|verify|sanitiz")

_HTML_RE = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(\s|>|/|$)|<!--|&lt;")
_SQL_RE = re.compile(
    r"(?is)\b(select\s.*?\bfrom\b|insert\s+(or\s+\w+\s+)?into\b|update\s+\S+\s+set\b|"
    r"delete\s+from\b|drop\s+(table|database)\b|create\s+table\b|alter\s+table\b|"
    r"replace\s+into\b|truncate\s+table\b|\bwhere\s+\w+\s*(=|like|in\b|>|<))")
_SQL_START_RE = re.compile(
    r"(?is)^\s*\(?\s*(select|insert|update|delete|replace|create|drop|alter|with|where|and|or|"
    r"order\s+by|group\s+by|limit|values|set|from|union|exec)\b")
_PASSWORD_RE = re.compile(r"(?i)passw|passwd|passphrase|(^|_)(pass|pwd|pw|pin)($|_)|pwd$")
_SALT_RE = re.compile(r"(?i)salt|pepper|nonce|iteration")
_SECRET_NAME_RE = re.compile(
    r"(?i)token|passw|secret|otp|nonce|salt|session_?id|api_?key|reset|verification|"
    r"csrf|auth_?code|activation|invite|invitation|coupon|voucher|gift|card_?code|"
    r"one_?time|magic_?link|recovery|credential|(^|_)pin(_|$)")
# functions that mint a value: generate_key(), new_card_code(), make_invite_code() ...
_SECRET_FUNC_RE = re.compile(
    r"(?i)^_?(gen|generate|make|new|create|issue|random|mint)_?\w*(key|code|pass\w*|pin|secret)$")
_CRED_NAME_RE = re.compile(
    r"(?i)^(\w+_)?(password|passwd|pwd|passphrase|api_?key|client_secret|access_token|"
    r"auth_token|private_key|secret_token|db_pass|smtp_pass|mail_pass)$")
_BIND_CALLS = frozenset({"run", "bind", "serve", "run_simple", "make_server", "create_server",
                         "HTTPServer", "ThreadingHTTPServer", "TCPServer", "ThreadingTCPServer",
                         "UDPServer", "start_server", "run_app", "listen", "WSGIServer"})
_TMP_PREFIX_RE = re.compile(r"^(/tmp|/var/tmp|/dev/shm)(/|$)")
_URLISH_RE = re.compile(
    r"(?i)url|uri|link|host|domain|netloc|redirect|next|target|referr?er|site|origin|"
    r"location|dest|callback|return_to|webhook|endpoint")
_DOMAIN_RE = re.compile(
    r"(?i)^(https?://)?([a-z0-9-]+\.)+(com|org|net|io|edu|gov|co|uk|de|info|biz|us|dev|app|"
    r"ai|me|cloud|site|local|internal|example)(:\d+)?/?$")
_REGEX_BAD_DOT_RE = re.compile(
    r"(?<!\\)\.(com|org|net|io|edu|gov|co|uk|de|info|biz|us|dev|app|ai|me)(?![a-zA-Z0-9])|"
    r"(?<![\\\w])www(?<!\\)\.[\w(\[]")

_ANCHORED_URL_RE = re.compile(r"^(/(?![/\\])|https?://[\w.-]+(:\d+)?[/?#])")
_ROUTE_TYPED_PARAM_RE = re.compile(r"<(?:int|float|uuid):(\w+)>")

_SQL_SINKS = frozenset({"execute", "executemany", "executescript", "raw", "read_sql",
                        "read_sql_query", "mogrify", "text", "query", "extra", "RawSQL"})
_SHELL_ALWAYS = frozenset({"system", "popen", "popen2", "popen3", "popen4", "getoutput",
                           "getstatusoutput"})
_SUBPROCESS = frozenset({"call", "run", "Popen", "check_call", "check_output"})
_RESPONSE_CTORS = frozenset({"make_response", "Response", "HttpResponse", "HTMLResponse",
                             "StreamingHttpResponse", "HttpResponseBadRequest",
                             "HttpResponseNotFound"})
_MARKUP = frozenset({"Markup", "mark_safe", "SafeString", "SafeText"})
_FILE_FUNCS = frozenset({"open", "send_file", "FileResponse", "remove", "unlink", "rmtree",
                         "copy", "copyfile", "copy2", "copytree", "move", "listdir", "rmdir",
                         "removedirs", "rename", "replace", "makedirs", "mkdir", "scandir",
                         "walk", "save", "savefig", "to_csv", "write_file", "read_file",
                         "load_workbook", "read_csv"})
_PATH_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "open",
                           "unlink", "rmdir", "touch", "iterdir"})
_FILE_FUNC_QUALS = frozenset({"open", "io.open", "codecs.open", "os.open", "aiofiles.open",
                              "builtins.open"})
_REDIRECTS = frozenset({"redirect", "HttpResponseRedirect", "HttpResponsePermanentRedirect",
                        "RedirectResponse"})
_HTTP_CLIENT_CALLS = frozenset({"get", "post", "put", "delete", "head", "patch", "options",
                                "request", "send", "stream", "Session", "Client", "AsyncClient",
                                "urlopen", "ClientSession", "TCPConnector", "HTTPSConnection",
                                "PoolManager", "Request"})
_DB_FETCH = frozenset({"fetchall", "fetchone", "fetchmany"})
_ARCHIVE_LISTING = frozenset({"namelist", "infolist", "getmembers", "getnames", "getmember",
                              "getinfo"})
_HTTP_VERBS = frozenset({"get", "post", "put", "delete", "head", "patch", "request", "urlopen",
                         "urlretrieve", "stream", "Request", "options"})
_HTTP_ROOTS = frozenset({"requests", "httpx", "urllib", "urllib2", "urllib3", "aiohttp",
                         "session", "client", "http", "s", "sess"})
_WEAK_HASHES = frozenset({"md5", "sha1", "md4", "md2"})
_FAST_HASHES = frozenset({"sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512",
                          "blake2b", "blake2s"})
_SAFE_YAML_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader",
                                "FullLoader", "CFullLoader"})
_RANDOM_FUNCS = frozenset({"choice", "choices", "randint", "random", "randrange",
                           "getrandbits", "sample", "shuffle", "uniform"})
_VIEW_DECORATORS = frozenset({"route", "get", "post", "put", "delete", "patch", "api_route",
                              "websocket", "api_view", "view_config", "expose"})
_WEB_FRAMEWORKS = frozenset({"django", "rest_framework", "pyramid", "starlette", "fastapi",
                             "flask", "bottle", "falcon", "aiohttp", "sanic", "tornado",
                             "werkzeug", "quart", "webapp2", "cherrypy"})
_FROM_IMPORTED_MODULES = frozenset({"os.path", "urllib.parse", "urllib.request", "lxml.etree",
                                    "xml.dom.minidom", "xml.etree.ElementTree", "xml.sax",
                                    "http.client", "email.utils"})
_VIEW_BASES_RE = re.compile(r"(?i)view|resource|handler|endpoint")


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        v = node.value
        return v if isinstance(v, str) else v.decode("latin-1")
    return None


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _arg(call: ast.Call, pos: int, name: str | None = None) -> ast.AST | None:
    if name is not None:
        v = _kw(call, name)
        if v is not None:
            return v
    if len(call.args) > pos and not isinstance(call.args[pos], ast.Starred):
        return call.args[pos]
    return None


def _last_name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _root(node: ast.AST) -> tuple[ast.AST, list[str]]:
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


def _identifiers(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.Attribute):
            yield sub.attr
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and len(sub.value) < 40:
            yield sub.value
        elif isinstance(sub, ast.keyword) and sub.arg:
            yield sub.arg


def _int_value(node: ast.AST | None, names: dict[str, int] | None = None) -> int | None:
    """Evaluate a permission mode: 0o777, stat.S_IRWXU | stat.S_IWOTH, MODE, ..."""
    if node is None:
        return None
    if names and isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _last_name(node)
        if name.startswith(("S_I", "S_ENFMT")) and hasattr(_stat, name):
            return int(getattr(_stat, name))
        return None
    if isinstance(node, ast.BinOp):
        a, b = _int_value(node.left, names), _int_value(node.right, names)
        if a is None or b is None:
            return None
        if isinstance(node.op, (ast.BitOr, ast.Add)):
            return a | b if isinstance(node.op, ast.BitOr) else a + b
        if isinstance(node.op, ast.BitAnd):
            return a & b
        return None
    if isinstance(node, ast.Call) and _last_name(node.func) == "int":
        s = _const_str(node.args[0]) if node.args else None
        base = _int_value(node.args[1]) if len(node.args) > 1 else 10
        if s is not None and base:
            try:
                return int(s, base)
            except ValueError:
                return None
    return None


def _is_credential_literal(node: ast.AST | None) -> bool:
    """A non-empty literal that looks like a real secret, not a prompt, placeholder or path."""
    s = _const_str(node)
    if not s or len(s) < 4 or len(s) > 200:
        return False
    if any(c.isspace() for c in s) or s.startswith(("$", "{", "<", "%(", "/", "http")):
        return False
    if len(set(s)) <= 2 or _CRED_NAME_RE.match(s):  # "********", "xxxx", "passwd"
        return False
    # "X-Api-Key", "your_password", "secret": a label or placeholder, not a value
    squashed = re.sub(r"[^a-z]", "", s.lower())
    if any(w in squashed for w in ("password", "passwd", "token", "apikey", "secret")):
        return False
    return s.lower() not in ("none", "null", "true", "false", "redacted", "example")


def _header_nodes(st: ast.stmt) -> list[ast.AST]:
    """Expressions evaluated by a statement itself (not its nested blocks)."""
    if isinstance(st, (ast.If, ast.While)):
        return [st.test]
    if isinstance(st, (ast.For, ast.AsyncFor)):
        return [st.iter]
    if isinstance(st, (ast.With, ast.AsyncWith)):
        return [i.context_expr for i in st.items]
    if isinstance(st, ast.Match):
        return [st.subject]
    if isinstance(st, (ast.Try, getattr(ast, "TryStar", ast.Try), ast.FunctionDef,
                       ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    return [st]


def _walk_no_defs(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk that does not descend into lambdas (their bodies run elsewhere)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        for child in ast.iter_child_nodes(n):
            if not isinstance(child, ast.Lambda):
                todo.append(child)


# ------------------------------------------------------------------------------------------------
# the analyser


class _Scope:
    __slots__ = ("state", "parent", "is_view", "is_handler", "func", "objkind", "derived",
                 "random_names")

    def __init__(self, parent: _Scope | None, func: ast.AST | None = None,
                 is_view: bool = False, is_handler: bool = False) -> None:
        self.state: dict[str, Val] = {}
        self.parent = parent
        self.func = func
        self.is_view = is_view
        self.is_handler = is_handler
        self.objkind: dict[str, str] = {}  # name -> qualified constructor (tarfile.open ...)
        self.derived: dict[str, set[str]] = {}  # name -> names its value was computed from
        self.random_names: set[str] = set()  # locals assigned from the `random` module

    def lookup(self, name: str) -> Val | None:
        sc: _Scope | None = self
        while sc is not None:
            v = sc.state.get(name)
            if v is not None:
                return v
            sc = sc.parent
        return None

    def kind(self, name: str) -> str | None:
        sc: _Scope | None = self
        while sc is not None:
            k = sc.objkind.get(name)
            if k is not None:
                return k
            sc = sc.parent
        return None


class _Analyzer:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.aliases: dict[str, str] = {}
        self.modules: set[str] = set()
        self.module_names: set[str] = set()  # local names bound to modules by `import`
        ints: dict[str, int | None] = {}  # names bound once to an int literal (modes)
        self.local_funcs: dict[str, list[ast.AST]] = {}
        self.class_bases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = \
                        a.name if a.asname else a.name.split(".")[0]
                    self.modules.add(a.name.split(".")[0])
                    self.module_names.add(a.asname or a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in _FROM_IMPORTED_MODULES:
                        self.module_names.add(a.asname or a.name)
                self.modules.add(node.module.split(".")[0])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.local_funcs.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.ClassDef) and node.bases:
                base = _last_name(node.bases[0])
                self.class_bases[node.name] = base
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                iv = _int_value(node.value)
                if iv is not None:
                    n = node.targets[0].id
                    ints[n] = iv if ints.get(n, iv) == iv else None
        self.int_consts = {k: v for k, v in ints.items() if v is not None}
        for cls, base in list(self.class_bases.items()):  # class L(yaml.SafeLoader): ...
            self.class_bases[cls] = self.aliases.get(base, base).rsplit(".", 1)[-1]
        self.module_consts: dict[str, Val] = {}
        for st in tree.body:
            if isinstance(st, ast.Assign) and all(isinstance(t, ast.Name) for t in st.targets) \
                    and not any(isinstance(n, (ast.Name, ast.Call)) for n in ast.walk(st.value)):
                for t in st.targets:
                    self.module_consts[t.id] = self.ev(_Scope(None), st.value)
        self.boost: dict[tuple[int, str], tuple[int, ...]] = {}
        self.boost_changed = False
        self.findings: list[RawFinding] = []
        self._seen: set[tuple[str, int]] = set()

    # -------------------------------------------------------------- helpers
    def is_module_ref(self, node: ast.AST) -> bool:
        """`os.path`, `json`, `etree`: a dotted name rooted at an imported module."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in self.module_names

    def int_value(self, node: ast.AST | None) -> int | None:
        return _int_value(node, self.int_consts)

    def qual(self, func: ast.AST) -> str:
        parts: list[str] = []
        node = func
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(self.aliases.get(node.id, node.id))
        elif isinstance(node, ast.Call):
            parts.append(self.qual(node.func) + "()")
        else:
            parts.append("?")
        return ".".join(reversed(parts))

    def report(self, rule: str, cwe: str, node: ast.AST, msg: str) -> None:
        line = getattr(node, "lineno", 0) or 0
        key = (rule, line)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append((rule, cwe, line, msg))

    # -------------------------------------------------------------- evaluation
    def source_level(self, sc: _Scope, node: ast.AST) -> int | None:
        root, attrs = _root(node)
        if not isinstance(root, ast.Name):
            return None
        rid = root.id
        alias = self.aliases.get(rid, "")
        if (rid == "request" and not alias.startswith(("urllib", "six"))) or (
                alias.endswith(".request") and alias.split(".")[0] in _WEB_FRAMEWORKS):
            if attrs and attrs[0] not in _REQUEST_SAFE_ATTRS:
                return WEB
            return UNKNOWN if attrs else None
        if rid == "self" and attrs:
            if attrs[0] == "request" and len(attrs) > 1 and attrs[1] not in _REQUEST_SAFE_ATTRS:
                return WEB
            if attrs[0] in _TORNADO_SOURCES:
                return WEB
            if sc.is_handler and attrs[0] in _HANDLER_SOURCES:
                return WEB
            return None
        if rid == "sys" and attrs and attrs[0] in ("argv", "stdin"):
            return LOCAL
        if rid in ("input", "raw_input") and isinstance(node, ast.Call) and not attrs:
            return LOCAL
        if attrs and attrs[-1] == "parse_args":
            return LOCAL
        return None

    def ev(self, sc: _Scope, node: ast.AST | None) -> Val:
        if node is None:
            return CONST_VAL
        T = type(node)
        if T is ast.Constant:
            v = node.value
            if isinstance(v, str):
                return Val(_ZERO, (v,), v)
            if isinstance(v, bytes):
                s = v.decode("latin-1")
                return Val(_ZERO, (s,), s)
            return CONST_VAL
        if T is ast.Name:
            if node.id == "request":
                return UNKNOWN_VAL
            v = sc.lookup(node.id)
            if v is not None:
                return v
            if node.id in self.aliases or node.id in ("True", "False", "None"):
                return CONST_VAL
            return UNKNOWN_VAL
        if T is ast.JoinedStr:
            parts = []
            for p in node.values:
                if isinstance(p, ast.FormattedValue):
                    parts.append(join([self.ev(sc, p.value)], frags=False))
                else:
                    parts.append(self.ev(sc, p))
            first = node.values[0] if node.values else None
            return join(parts).with_prefix(_const_str(first))
        if T is ast.BinOp:
            left = self.ev(sc, node.left)
            v = join([left, self.ev(sc, node.right)])
            if isinstance(node.op, ast.Add):
                return v.with_prefix(left.prefix)
            if isinstance(node.op, ast.Mod) and left.prefix is not None:
                return v.with_prefix(left.prefix.split("%", 1)[0])
            if isinstance(node.op, ast.Div) and left.prefix is not None:
                return v.with_prefix(left.prefix.rstrip("/") + "/")
            return v
        if T is ast.Call:
            return self.ev_call(sc, node)
        if T in (ast.Attribute, ast.Subscript):
            lvl = self.source_level(sc, node)
            if lvl is not None:
                return Val(_lvl(lvl))
            base = self.ev(sc, node.value)
            if T is ast.Subscript:
                return Val(base.t)
            return Val(base.t)
        if T in (ast.List, ast.Tuple, ast.Set):
            return join([self.ev(sc, e) for e in node.elts])
        if T is ast.Dict:
            return join([self.ev(sc, e) for e in node.values], frags=False)
        if T is ast.IfExp:
            return join([self.ev(sc, node.body), self.ev(sc, node.orelse)])
        if T is ast.BoolOp:
            return join([self.ev(sc, e) for e in node.values])
        if T in (ast.Compare, ast.Lambda):
            return CONST_VAL
        if T is ast.UnaryOp:
            return self.ev(sc, node.operand) if not isinstance(node.op, ast.Not) else CONST_VAL
        if T in (ast.Await, ast.Starred, ast.FormattedValue):
            return self.ev(sc, node.value)
        if T is ast.NamedExpr:
            v = self.ev(sc, node.value)
            self.bind(sc, node.target, v)
            return v
        if T in (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp):
            for gen in node.generators:
                self.bind(sc, gen.target, Val(self.ev(sc, gen.iter).t))
            if T is ast.DictComp:
                return join([self.ev(sc, node.value)], frags=False)
            return join([self.ev(sc, node.elt)], frags=False)
        return UNKNOWN_VAL

    def ev_call(self, sc: _Scope, node: ast.Call) -> Val:
        func = node.func
        name = _last_name(func)
        lvl = self.source_level(sc, node)
        if lvl is not None:
            return Val(_lvl(lvl))
        if name == "gettempdir":  # a shared, predictable directory
            return Val(_ZERO, ("/tmp",), "/tmp")
        if name in _CLEAN_ALL:
            return CONST_VAL
        if isinstance(func, ast.Attribute):
            if name in _DB_FETCH:
                return STORED_VAL
            if name in _ARCHIVE_LISTING:
                return MEMBER_VAL
            if name in ("append", "extend", "add", "insert", "appendleft") \
                    and isinstance(func.value, ast.Name):
                # container mutation: the list now holds the appended value
                old = sc.lookup(func.value.id) or CONST_VAL
                sc.state[func.value.id] = join([old] + [self.ev(sc, a) for a in node.args])
                return CONST_VAL
        args = [self.ev(sc, a) for a in node.args] + [self.ev(sc, k.value) for k in node.keywords]
        recv = None
        if isinstance(func, ast.Attribute) and not self.is_module_ref(func.value):
            recv = self.ev(sc, func.value)  # a method call (not os.path.join & co)
        if recv is not None and name in _STR_METHODS:
            v = join([recv] + args) if name in ("format", "join", "replace", "format_map") \
                else join([recv] + [Val(a.t) for a in args])
            if name in ("format", "format_map") and recv.prefix is not None:
                v = v.with_prefix(recv.prefix.split("{", 1)[0])
            elif name in ("strip", "rstrip", "encode", "decode"):
                v = v.with_prefix(recv.prefix)
        elif name in _PROPAGATE:
            v = join(([Val(recv.t)] if recv is not None else []) + args)
            if name in ("dumps", "jsonify"):
                v = v.clear(HTML)
            if name in ("join", "Path", "PurePath", "PosixPath", "str", "abspath", "normpath",
                        "realpath") and args:
                v = v.with_prefix(args[0].prefix)
            elif name == "joinpath" and recv is not None and recv.prefix is not None:
                v = v.with_prefix(recv.prefix.rstrip("/") + "/")
        else:
            # an arbitrary call: its result is some non-literal value
            v = UNKNOWN_VAL
        # context sanitisers
        if name and v.top > CONST:
            if _CLEAN_HTML_RE.search(name):
                v = v.clear(HTML)
            if _CLEAN_SQL_RE.search(name):
                v = v.clear(SQL)
            if _CLEAN_SHELL_RE.match(name):
                v = v.clear(SHELL)
            if _CLEAN_PATH_RE.search(name):
                v = v.clear(PATH)
            if _CLEAN_URL_RE.search(name):
                v = v.clear(URL)
        return v

    def bind(self, sc: _Scope, target: ast.AST, v: Val) -> None:
        if isinstance(target, ast.Name):
            sc.state[target.id] = v
        elif isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                self.bind(sc, e, Val(v.t))
        elif isinstance(target, ast.Starred):
            self.bind(sc, target.value, Val(v.t))
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            old = sc.lookup(target.value.id)
            if old is not None:
                sc.state[target.value.id] = join([old, Val(v.t)])

    # -------------------------------------------------------------- statements
    def run(self) -> list[RawFinding]:
        for _ in range(3):
            self.findings, self._seen, self.boost_changed = [], set(), False
            module = _Scope(None)
            module.state.update(self.module_consts)
            self.block(module, self.tree.body)
            if not self.boost_changed:
                break
        return self.findings

    def block(self, sc: _Scope, stmts: list[ast.stmt]) -> None:
        for st in stmts:
            self.stmt(sc, st)

    def stmt(self, sc: _Scope, st: ast.stmt) -> None:
        T = type(st)
        if T in (ast.FunctionDef, ast.AsyncFunctionDef):
            self.function(sc, st, None)
            return
        if T is ast.ClassDef:
            cls_sc = _Scope(sc)
            for b in st.body:
                if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.function(sc, b, st)
                else:
                    self.stmt(cls_sc, b)
            return
        for h in _header_nodes(st):
            for sub in _walk_no_defs(h):
                if isinstance(sub, ast.Call):
                    self.check_call(sc, sub)
                elif isinstance(sub, ast.Compare):
                    self.check_compare(sc, sub)
        if T is ast.Assign:
            v = self.ev(sc, st.value)
            self.check_sql_build(st.value, v)
            for tgt in st.targets:
                self.bind(sc, tgt, v)
                self.check_assign_target(sc, tgt, st.value, v)
                if isinstance(tgt, ast.Name):
                    sc.derived[tgt.id] = {n.id for n in ast.walk(st.value)
                                          if isinstance(n, ast.Name)}
        elif T is ast.Expr:
            if isinstance(st.value, ast.Call):
                self.ev(sc, st.value)
        elif T is ast.AugAssign:
            v = self.ev(sc, st.value)
            self.check_sql_build(st.value, v)
            if isinstance(st.target, ast.Name):
                old = sc.lookup(st.target.id) or UNKNOWN_VAL
                sc.state[st.target.id] = join([old, v])
        elif T is ast.AnnAssign:
            if st.value is not None:
                v = self.ev(sc, st.value)
                self.bind(sc, st.target, v)
                self.check_assign_target(sc, st.target, st.value, v)
        elif T is ast.Return:
            if st.value is not None:
                self.check_return(sc, st)
        elif T in (ast.For, ast.AsyncFor):
            self.bind(sc, st.target, Val(self.ev(sc, st.iter).t))
            self.block(sc, st.body)
            self.block(sc, st.orelse)
        elif T in (ast.If, ast.While):
            self.apply_guard(sc, st.test)
            self.block(sc, st.body)
            self.block(sc, st.orelse)
        elif T is ast.Assert:
            self.apply_guard(sc, st.test)
        elif T in (ast.With, ast.AsyncWith):
            for item in st.items:
                if item.optional_vars is not None:
                    self.bind(sc, item.optional_vars, self.ev(sc, item.context_expr))
                    self.note_kind(sc, item.optional_vars, item.context_expr)
            self.block(sc, st.body)
        elif T is ast.Try or T is getattr(ast, "TryStar", None):
            self.block(sc, st.body)
            for h in st.handlers:
                self.block(sc, h.body)
            self.block(sc, st.orelse)
            self.block(sc, st.finalbody)
        elif T is ast.Match:
            for case in st.cases:
                self.block(sc, case.body)

    def note_kind(self, sc: _Scope, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name) and isinstance(value, ast.Call):
            sc.objkind[target.id] = self.qual(value.func)

    def function(self, parent: _Scope, fn: ast.AST, cls: ast.ClassDef | None) -> None:
        is_view = False
        typed: set[str] = set()
        for d in fn.decorator_list:
            dn = d.func if isinstance(d, ast.Call) else d
            if _last_name(dn) in _VIEW_DECORATORS:
                is_view = True
                rule = _const_str(d.args[0]) if isinstance(d, ast.Call) and d.args else None
                if rule:
                    typed.update(_ROUTE_TYPED_PARAM_RE.findall(rule))
        args = fn.args
        positional = [a.arg for a in args.posonlyargs + args.args]
        is_handler = False
        if cls is not None:
            bases = " ".join(self.qual(b) for b in cls.bases)
            if "RequestHandler" in bases or "HTTPRequestHandler" in bases or \
                    fn.name.startswith("do_"):
                is_handler = True
            if _VIEW_BASES_RE.search(bases) and fn.name in ("get", "post", "put", "delete",
                                                            "patch", "dispatch"):
                is_view = True
        if (positional[:1] == ["request"] or positional[1:2] == ["request"]) and (
                self.modules & _WEB_FRAMEWORKS):
            is_view = True
        sc = _Scope(parent, fn, is_view=is_view, is_handler=is_handler)
        pos_args = args.posonlyargs + args.args
        for a, d in list(zip(pos_args[len(pos_args) - len(args.defaults):], args.defaults)) + \
                list(zip(args.kwonlyargs, args.kw_defaults)):
            if d is not None and _CRED_NAME_RE.match(a.arg) and _is_credential_literal(d):
                self.report("EM-HARDCODED-CREDENTIAL", "CWE-798", d,
                            f"hard-coded default for credential parameter {a.arg}")
        all_params = positional + [a.arg for a in args.kwonlyargs]
        if args.vararg:
            all_params.append(args.vararg.arg)
        if args.kwarg:
            all_params.append(args.kwarg.arg)
        for p in all_params:
            if p in ("self", "cls"):
                continue
            if p == "request":
                sc.state[p] = UNKNOWN_VAL
                continue
            level = WEB if is_view else PARAM
            if p in typed:
                level = CONST
            t = _lvl(level)
            boosted = self.boost.get((id(fn), p))
            if boosted is not None:
                t = tuple(map(max, t, boosted))
            sc.state[p] = Val(t)
        self.block(sc, fn.body)

    # -------------------------------------------------------------- guards
    def apply_guard(self, sc: _Scope, test: ast.AST) -> None:
        """A validation test clears PATH/URL taint of the names it checks."""
        guarded: set[str] = set()
        for sub in ast.walk(test):
            if isinstance(sub, ast.Compare):
                ops = sub.ops
                if any(isinstance(o, (ast.In, ast.NotIn)) for o in ops):
                    left = sub.left
                    const = _const_str(left)
                    if const is None:
                        # `name in ALLOWED` style membership
                        guarded.update(n.id for n in ast.walk(left) if isinstance(n, ast.Name))
                    elif ".." in const or "/" in const or "\\" in const:
                        for c in sub.comparators:
                            guarded.update(n.id for n in ast.walk(c) if isinstance(n, ast.Name))
                elif any(isinstance(o, (ast.Eq, ast.NotEq)) for o in ops):
                    others = [sub.left, *sub.comparators]
                    if not any(isinstance(o, ast.Constant) and o.value in ("", None)
                               for o in others):
                        for o in others:
                            guarded.update(n.id for n in ast.walk(o) if isinstance(n, ast.Name))
            elif isinstance(sub, ast.Call):
                name = _last_name(sub.func)
                if name and _VALIDATOR_CALL_RE.search(name):
                    for a in [sub.func, *sub.args]:
                        guarded.update(n.id for n in ast.walk(a) if isinstance(n, ast.Name))
        # validating `parts = urlparse(url)` or `full = realpath(join(base, name))` also
        # validates the names they were computed from
        for name in list(guarded):
            for src in sc.derived.get(name, ()):
                guarded.add(src)
                guarded.update(sc.derived.get(src, ()))
        guarded.discard("request")
        guarded.discard("self")
        for name in guarded:
            v = sc.lookup(name)
            if v is not None and (v.t[PATH] or v.t[URL]):
                sc.state[name] = v.clear(PATH, URL)

    # -------------------------------------------------------------- sinks
    def check_assign_target(self, sc: _Scope, tgt: ast.AST, value: ast.AST, v: Val) -> None:
        if isinstance(tgt, ast.Name) and isinstance(value, ast.Call):
            sc.objkind[tgt.id] = self.qual(value.func)
        if isinstance(tgt, ast.Attribute):
            if tgt.attr == "check_hostname" and _is_false(value):
                self.report("EM-TLS-NO-VERIFY", "CWE-295", tgt,
                            "TLS hostname checking disabled (check_hostname = False)")
            elif tgt.attr == "verify_mode" and _last_name(value) == "CERT_NONE":
                self.report("EM-TLS-NO-VERIFY", "CWE-295", tgt,
                            "TLS certificate verification disabled (CERT_NONE)")
            elif tgt.attr == "autoescape" and _is_false(value):
                self.report("EM-JINJA-AUTOESCAPE-OFF", "CWE-79", tgt,
                            "template autoescaping switched off")
        # secrets from the non-cryptographic `random` module
        names = [n.id for n in ast.walk(tgt) if isinstance(n, ast.Name)] + \
            ([tgt.attr] if isinstance(tgt, ast.Attribute) else [])
        uses_random = self._uses_random(value, sc)
        if uses_random and isinstance(tgt, ast.Name):
            sc.random_names.add(tgt.id)
        # hard-coded credentials: PASSWORD = "..." / cfg["api_key"] = "..."
        key = tgt.id if isinstance(tgt, ast.Name) else tgt.attr if isinstance(
            tgt, ast.Attribute) else _const_str(tgt.slice) if isinstance(tgt, ast.Subscript) \
            else None
        if key and _CRED_NAME_RE.match(key) and _is_credential_literal(value):
            self.report("EM-HARDCODED-CREDENTIAL", "CWE-798", value,
                        f"hard-coded credential assigned to {key}")
        if any(_SECRET_NAME_RE.search(n) for n in names) and uses_random:
            self.report("EM-WEAK-RANDOM-SECRET", "CWE-338", value,
                        "security token/password generated with the non-cryptographic "
                        "`random` module")

    def _uses_random(self, node: ast.AST, sc: _Scope | None = None) -> bool:
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if sc is not None:
            # `raw = "".join(random.sample(...)); return "-".join(raw[i:i+4] ...)`
            for name in names & sc.random_names:
                return True
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and _last_name(sub.func) in _RANDOM_FUNCS:
                q = self.qual(sub.func)
                if q.startswith(("random.", "numpy.random.")) or q in _RANDOM_FUNCS and \
                        self.aliases.get(q, "").startswith("random."):
                    return True
                if self.aliases.get(_last_name(sub.func), "").startswith("random."):
                    return True
        return False

    def check_sql_build(self, node: ast.AST, v: Val) -> None:
        """SQL text assembled from parameters/request data, wherever it is executed later."""
        if v.t[SQL] < PARAM or not v.frags:
            return
        if not (isinstance(node, (ast.JoinedStr, ast.BinOp)) or isinstance(node, ast.Call)
                and _last_name(node.func) == "format"):
            return
        if v.prefix is not None and _SQL_START_RE.match(v.prefix) and _SQL_RE.search(v.text()):
            self.report("EM-SQL-STRING-BUILD", "CWE-89", node,
                        "SQL statement built from untrusted data by string formatting")

    def check_return(self, sc: _Scope, st: ast.Return) -> None:
        node = st.value
        self.check_sql_build(node, self.ev(sc, node))
        fn = sc.func
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                _SECRET_NAME_RE.search(fn.name) or _SECRET_FUNC_RE.match(fn.name)) \
                and self._uses_random(node, sc):
            self.report("EM-WEAK-RANDOM-SECRET", "CWE-338", node,
                        "security token/password generated with the non-cryptographic "
                        "`random` module")
        if isinstance(node, ast.Tuple) and node.elts:
            node = node.elts[0]
        if isinstance(node, (ast.Dict, ast.List, ast.Call)) and not (
                isinstance(node, ast.Call) and _last_name(node.func) in ("format", "join")):
            return
        v = self.ev(sc, node)
        # a view serves its return value as text/html; a helper counts once request data
        # reaches its parameters (see note_call_args)
        need = PARAM if sc.is_view else WEB
        if v.t[HTML] >= need and _HTML_RE.search(v.text()):
            self.report("EM-XSS-HTML-STRING", "CWE-79", node,
                        "HTML built from request data without escaping is returned "
                        + ("by a view" if sc.is_view else "to a view"))

    def check_compare(self, sc: _Scope, node: ast.Compare) -> None:
        """`"example.com" in url`: a substring test is not a host check; and
        `password == "letmein"`: a credential baked into the code."""
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            a, b = node.left, node.comparators[0]
            for x, y in ((a, b), (b, a)):
                if isinstance(y, ast.Constant) and _is_credential_literal(y) and \
                        isinstance(x, (ast.Name, ast.Attribute, ast.Subscript)):
                    ids = [_last_name(x)] if not isinstance(x, ast.Subscript) else \
                        [_const_str(x.slice) or ""]
                    if any(_CRED_NAME_RE.match(i) for i in ids if i):
                        self.report("EM-HARDCODED-CREDENTIAL", "CWE-798", node,
                                    "password compared with a hard-coded literal")
            return
        if not any(isinstance(o, (ast.In, ast.NotIn)) for o in node.ops):
            return
        const = _const_str(node.left)
        if const is None or not _DOMAIN_RE.match(const):
            return
        for c in node.comparators:
            if isinstance(c, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
                return
            ids = " ".join(_identifiers(c))
            if _URLISH_RE.search(ids):
                self.report("EM-URL-SUBSTRING-CHECK", "CWE-20", node,
                            f"'{const}' substring test on a URL/host is bypassable "
                            "(e.g. evil.com/?x={const})")
                return

    def check_call(self, sc: _Scope, call: ast.Call) -> None:
        func = call.func
        name = _last_name(func)
        if not name:
            return
        # cross-function taint: raise parameters of local functions called with tainted data
        if name in self.local_funcs and (isinstance(func, ast.Name) or (
                isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and func.value.id in ("self", "cls"))):
            self.note_call_args(sc, call, name)
        # generic keyword checks
        if call.keywords:
            self.check_keywords(sc, call, name)
        if name in _BIND_CALLS and call.args:
            first = call.args[0]
            host = _const_str(first.elts[0]) if isinstance(first, ast.Tuple) and first.elts \
                else (_const_str(first) if name in ("run", "run_simple", "serve") else None)
            port = first.elts[1] if isinstance(first, ast.Tuple) and len(first.elts) > 1 \
                else None
            if host in ("0.0.0.0", "::") or (host == "" and name == "bind" and not (
                    isinstance(port, ast.Constant) and port.value == 0)):
                self.report("EM-BIND-ALL-INTERFACES", "CWE-1327", call,
                            "socket/server bound to all interfaces")
        for handler in _SINKS.get(name, ()):
            handler(self, sc, call, name)

    def note_call_args(self, sc: _Scope, call: ast.Call, name: str) -> None:
        vals = [self.ev(sc, a) for a in call.args]
        kvals = {k.arg: self.ev(sc, k.value) for k in call.keywords if k.arg}
        for fn in self.local_funcs[name]:
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
                params = params[1:]
            pairs = list(zip(params, vals)) + [(k, v) for k, v in kvals.items()]
            for p, v in pairs:
                if v.top <= PARAM:
                    continue
                key = (id(fn), p)
                old = self.boost.get(key, _ZERO)
                new = tuple(map(max, old, v.t))
                if new != old:
                    self.boost[key] = new
                    self.boost_changed = True

    def check_keywords(self, sc: _Scope, call: ast.Call, name: str) -> None:
        for k in call.keywords:
            if k.arg and _CRED_NAME_RE.match(k.arg) and _is_credential_literal(k.value):
                self.report("EM-HARDCODED-CREDENTIAL", "CWE-798", call,
                            f"hard-coded credential passed as {k.arg}=")
                continue
            if k.arg == "host" and name in _BIND_CALLS and _const_str(k.value) in (
                    "0.0.0.0", "::"):
                self.report("EM-BIND-ALL-INTERFACES", "CWE-1327", call,
                            f"server bound to all interfaces ({_const_str(k.value)})")
                continue
            if k.arg in ("cert_reqs", "verify_mode") and _last_name(k.value) == "CERT_NONE":
                self.report("EM-TLS-NO-VERIFY", "CWE-295", call,
                            "TLS certificate verification disabled (CERT_NONE)")
            elif k.arg == "verify" and _is_false(k.value) and name in _HTTP_CLIENT_CALLS:
                q = self.qual(call.func)
                covered_by_bandit = q.startswith(("requests.", "httpx.")) and q.count(".") == 1
                if not covered_by_bandit:
                    self.report("EM-TLS-NO-VERIFY", "CWE-295", call,
                                "TLS certificate verification disabled (verify=False)")

    # --- individual sinks (dispatched by called name) ---
    def sink_sql(self, sc: _Scope, call: ast.Call, name: str) -> None:
        arg = _arg(call, 0, "sql") or _kw(call, "query") or _kw(call, "statement")
        if arg is None:
            return
        v = self.ev(sc, arg)
        if v.t[SQL] >= UNKNOWN and _SQL_RE.search(v.text()):
            self.report("EM-SQL-STRING-BUILD", "CWE-89", call,
                        f"SQL statement built by string formatting/concatenation passed to "
                        f"{name}()")

    def sink_shell(self, sc: _Scope, call: ast.Call, name: str) -> None:
        q = self.qual(call.func)
        root = q.split(".")[0]
        if name in _SHELL_ALWAYS:
            if root not in ("os", "commands", "subprocess", "popen2"):
                return
            shell = True
        else:
            if root != "subprocess":
                return
            sv = _kw(call, "shell")
            shell = sv is not None and not (isinstance(sv, ast.Constant) and not sv.value)
        arg = _arg(call, 0, "args") or _kw(call, "cmd")
        if arg is None:
            return
        if shell:
            v = self.ev(sc, arg)
            if v.t[SHELL] >= UNKNOWN:
                self.report("EM-CMD-SHELL-STRING", "CWE-78", call,
                            f"shell command built from non-literal data passed to {q}()")
            return
        if isinstance(arg, (ast.List, ast.Tuple)) and arg.elts:
            first = _const_str(arg.elts[0]) or ""
            if first.rsplit("/", 1)[-1] in ("sh", "bash", "zsh", "dash", "ksh", "cmd",
                                            "cmd.exe", "powershell") and len(arg.elts) >= 3 \
                    and _const_str(arg.elts[1]) in ("-c", "/c", "/C", "-Command"):
                v = self.ev(sc, arg.elts[2])
                if v.t[SHELL] >= UNKNOWN:
                    self.report("EM-CMD-SHELL-STRING", "CWE-78", call,
                                "`sh -c` command string built from non-literal data")
                    return
            if self.ev(sc, arg.elts[0]).t[SHELL] >= WEB:
                self.report("EM-CMD-TAINTED-PROGRAM", "CWE-78", call,
                            "program to execute comes from request data")
        elif self.ev(sc, arg).t[SHELL] >= WEB:
            self.report("EM-CMD-TAINTED-PROGRAM", "CWE-78", call,
                        "command to execute comes from request data")

    def sink_response(self, sc: _Scope, call: ast.Call, name: str) -> None:
        if name == "write":
            recv = call.func.value if isinstance(call.func, ast.Attribute) else None
            if recv is None:
                return
            rname = " ".join(_identifiers(recv))
            is_self = isinstance(recv, ast.Name) and recv.id == "self"
            if not (re.search(r"wfile|response|\bresp\b", rname)
                    or is_self and (sc.is_handler or sc.is_view)):
                return
        arg = _arg(call, 0, "response") or _kw(call, "content") or _kw(call, "body") \
            or _kw(call, "text")
        if arg is None:
            return
        v = self.ev(sc, arg)
        if v.t[HTML] >= PARAM and _HTML_RE.search(v.text()):
            self.report("EM-XSS-HTML-STRING", "CWE-79", call,
                        f"HTML built from untrusted data without escaping sent via {name}()")

    def sink_render_string(self, sc: _Scope, call: ast.Call, name: str) -> None:
        arg = _arg(call, 0, "source")
        if arg is None:
            return
        v = self.ev(sc, arg)
        if v.t[HTML] >= WEB or v.t[HTML] >= PARAM and v.frags:
            self.report("EM-SSTI-TEMPLATE-STRING", "CWE-1336", call,
                        f"template source for {name}() built from untrusted data "
                        "(template injection / XSS)")
            return
        txt = v.text()
        if re.search(r"\|\s*safe\b|autoescape\s+(false|off)", txt, re.I):
            kws = [self.ev(sc, k.value) for k in call.keywords]
            if any(k.t[HTML] >= PARAM for k in kws):
                self.report("EM-XSS-TEMPLATE-SAFE", "CWE-79", call,
                            "untrusted value rendered with the |safe filter / autoescape off")

    def sink_markup(self, sc: _Scope, call: ast.Call, name: str) -> None:
        arg = _arg(call, 0)
        if arg is None:
            return
        if self.ev(sc, arg).t[HTML] >= PARAM:
            self.report("EM-XSS-MARKUP", "CWE-79", call,
                        f"{name}() marks untrusted data as safe HTML")

    def sink_jinja_template(self, sc: _Scope, call: ast.Call, name: str) -> None:
        q = self.qual(call.func)
        if name == "from_string":
            recv = call.func.value if isinstance(call.func, ast.Attribute) else None
            kind = sc.kind(recv.id) if isinstance(recv, ast.Name) else None
            ids = " ".join(_identifiers(recv)) if recv is not None else ""
            if not ("jinja" in (kind or "") or "Environment" in (kind or "")
                    or re.search(r"(?i)\benv\b|jinja|environment", ids)):
                return
        elif "jinja2" not in q:
            return
        arg = _arg(call, 0, "source")
        v = self.ev(sc, arg) if arg is not None else CONST_VAL
        if v.t[HTML] >= WEB or v.t[HTML] >= PARAM and v.frags:
            self.report("EM-SSTI-TEMPLATE-STRING", "CWE-1336", call,
                        "Jinja2 template source built from untrusted data (template injection)")
            return
        if name != "Template":
            return
        ae = _kw(call, "autoescape")
        if ae is not None:
            if _is_false(ae):
                self.report("EM-JINJA-AUTOESCAPE-OFF", "CWE-79", call,
                            "jinja2.Template(..., autoescape=False) renders data unescaped")
            return
        txt = v.text()
        if not txt or _HTML_RE.search(txt):
            self.report("EM-JINJA-AUTOESCAPE-OFF", "CWE-79", call,
                        "jinja2.Template() without autoescape (off by default) on HTML")

    def sink_file(self, sc: _Scope, call: ast.Call, name: str) -> None:
        func = call.func
        q = self.qual(func)
        is_os = q.startswith("os.")
        # permission modes given at creation time
        if name == "open" and is_os:
            mode = self.int_value(_arg(call, 2, "mode"))
            # 0o666 is what open() itself passes (umask applies): not a choice
            if mode is not None and mode & 0o002 and mode != 0o666:
                self.report("EM-CHMOD-WORLD-WRITABLE", "CWE-732", call,
                            f"{q}() creates a world-writable entry (mode {oct(mode)})")
        # pathlib-style methods: the receiver is the path
        if name in _PATH_METHODS and isinstance(func, ast.Attribute) \
                and q not in _FILE_FUNC_QUALS:
            if self.ev(sc, func.value).t[PATH] >= WEB:
                self.report("EM-PATH-TRAVERSAL", "CWE-22", call,
                            "file path from request data used without normalisation")
            return
        if q in _FILE_FUNC_QUALS and name == "open" and not is_os:
            target = _arg(call, 0, "file")
            mode = _const_str(_arg(call, 1, "mode")) or ""
            if target is not None and any(c in mode for c in "wax+"):
                tv = self.ev(sc, target)
                if tv.prefix and _TMP_PREFIX_RE.match(tv.prefix):
                    self.report("EM-PREDICTABLE-TEMPFILE", "CWE-377", call,
                                f"writes a fixed, guessable path in a shared temp dir "
                                f"({tv.prefix}...): symlink/race attacks")
        if name == "save" or name in ("savefig", "to_csv", "to_excel", "write_file"):
            args = [_arg(call, 0, "dst") or _kw(call, "filename") or _kw(call, "path")]
        elif q in _FILE_FUNC_QUALS or name in ("send_file", "FileResponse", "read_csv",
                                                "load_workbook", "read_file"):
            args = [_arg(call, 0, "file") or _kw(call, "path_or_file") or _kw(call, "name")]
        elif (is_os or q.startswith(("shutil.", "pathlib."))) and name in _FILE_FUNCS:
            args = [_arg(call, 0, "src") or _kw(call, "path"), _arg(call, 1, "dst")]
        else:
            return
        for a in args:
            if a is not None and self.ev(sc, a).t[PATH] >= WEB:
                self.report("EM-PATH-TRAVERSAL", "CWE-22", call,
                            f"file path from request data reaches {q}() without normalisation")
                return

    def sink_archive(self, sc: _Scope, call: ast.Call, name: str) -> None:
        func = call.func
        if name == "unpack_archive":
            if "shutil" in self.qual(func) and _kw(call, "filter") is None:
                self.report("EM-TAR-EXTRACT", "CWE-22", call,
                            "shutil.unpack_archive() without filter= (archive path traversal)")
            return
        if not isinstance(func, ast.Attribute):
            return
        recv = func.value
        kind = ""
        if isinstance(recv, ast.Name):
            kind = sc.kind(recv.id) or ""
        elif isinstance(recv, ast.Call):
            kind = self.qual(recv.func)
        is_zip = "zip" in kind.lower()
        is_tar = "tar" in kind.lower()
        if not is_zip and not is_tar:
            if "tarfile" in self.modules:
                is_tar = True
            elif "zipfile" in self.modules:
                is_zip = True
            else:
                return
        if isinstance(recv, ast.Name) and self._inspects_members(sc, recv.id):
            return
        if is_tar:
            flt = _kw(call, "filter")
            if flt is not None:
                if _const_str(flt) in (None, "data", "tar"):
                    return
            elif _kw(call, "members") is not None:
                return
            if name == "extract":
                member = _arg(call, 0, "member")
                if member is not None and self.ev(sc, member).t[PATH] == CONST:
                    return
                if isinstance(member, ast.Name) and self._guarded_member(sc, member.id):
                    return
            self.report("EM-TAR-EXTRACT", "CWE-22", call,
                        f"tarfile {name}() without a member filter (path traversal / "
                        "links out of the target directory)")
        elif name == "extractall" and _kw(call, "members") is None:
            self.report("EM-ZIP-EXTRACT", "CWE-22", call,
                        "zipfile extractall() of an archive without inspecting its members")

    def _inspects_members(self, sc: _Scope, archive: str) -> bool:
        """The scope lists the archive's members and tests their names for traversal."""
        body = sc.func if sc.func is not None else self.tree
        lists = checks = False
        for node in ast.walk(body):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("namelist", "infolist", "getmembers", "getnames") \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == archive:
                lists = True
            elif isinstance(node, (ast.If, ast.Assert, ast.IfExp)):
                for sub in ast.walk(node.test):
                    if (isinstance(sub, ast.Constant) and isinstance(sub.value, str)
                            and (".." in sub.value or sub.value.startswith("/"))) or (
                            isinstance(sub, ast.Call) and _last_name(sub.func) in (
                                "isabs", "startswith", "realpath", "abspath", "commonpath",
                                "is_relative_to", "resolve", "normpath", "issym", "islnk")):
                        checks = True
        return lists and checks

    def _guarded_member(self, sc: _Scope, name: str) -> bool:
        v = sc.lookup(name)
        return v is not None and v.t[PATH] == CONST

    def sink_yaml(self, sc: _Scope, call: ast.Call, name: str) -> None:
        q = self.qual(call.func)
        root = q.split(".")[0]
        if root not in ("yaml", "ruamel") or (
                isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
                and call.func.value.id not in self.aliases):
            return
        if name in ("unsafe_load", "unsafe_load_all"):
            self.report("EM-YAML-UNSAFE-LOAD", "CWE-502", call,
                        f"yaml.{name}() constructs arbitrary Python objects")
            return
        loader = _arg(call, 1, "Loader")
        lname = _last_name(loader) if loader is not None else ""
        if isinstance(loader, ast.Name):
            lname = self.aliases.get(lname, lname).rsplit(".", 1)[-1]
            lname = self.class_bases.get(lname, lname)
        if lname not in _SAFE_YAML_LOADERS:
            self.report("EM-YAML-UNSAFE-LOAD", "CWE-502", call,
                        f"yaml.{name}() without a safe Loader (use yaml.safe_load)")

    def sink_perm(self, sc: _Scope, call: ast.Call, name: str) -> None:
        if name == "umask":
            mask = self.int_value(_arg(call, 0, "mask"))
            if mask is not None and not mask & 0o002:
                self.report("EM-CHMOD-WORLD-WRITABLE", "CWE-732", call,
                            f"umask({oct(mask)}) makes new files world-writable")
            return
        if self.qual(call.func).startswith("os.") or len(call.args) >= 2:
            mode_node = _arg(call, 1, "mode")
        else:  # Path.chmod(mode)
            mode_node = _arg(call, 0, "mode")
        mode = self.int_value(mode_node)
        if mode is not None and mode & 0o002:
            self.report("EM-CHMOD-WORLD-WRITABLE", "CWE-732", call,
                        f"chmod to world-writable mode {oct(mode)}")

    def sink_hash(self, sc: _Scope, call: ast.Call, name: str) -> None:
        q = self.qual(call.func)
        algo = name
        if name == "update":
            recv = call.func.value if isinstance(call.func, ast.Attribute) else None
            if not isinstance(recv, ast.Name):
                return
            kind = sc.kind(recv.id) or ""
            algo = kind.rsplit(".", 1)[-1]
            if not kind.startswith("hashlib"):
                return
            if algo == "new":
                return
        elif name == "new":
            if not q.startswith("hashlib"):
                return
            algo = (_const_str(_arg(call, 0, "name")) or "").lower().replace("-", "")
            data = _arg(call, 1, "data")
            return self._check_hash_data(call, algo, data)
        elif not (q.startswith(("hashlib.", "Crypto.Hash", "Cryptodome.Hash"))
                  or self.aliases.get(name, "").startswith("hashlib")):
            return
        return self._check_hash_data(call, algo, _arg(call, 0, "string") or _kw(call, "data"))

    def _check_hash_data(self, call: ast.Call, algo: str, data: ast.AST | None) -> None:
        if data is None or algo not in _WEAK_HASHES | _FAST_HASHES:
            return
        ids = list(_identifiers(data))
        if not any(_PASSWORD_RE.search(i) for i in ids):
            return
        if algo in _WEAK_HASHES:
            self.report("EM-WEAK-PASSWORD-HASH", "CWE-916", call,
                        f"password hashed with {algo} (use bcrypt/scrypt/argon2/pbkdf2)")
        elif not any(_SALT_RE.search(i) for i in ids):
            self.report("EM-WEAK-PASSWORD-HASH", "CWE-916", call,
                        f"password hashed with unsalted fast hash {algo} (use a KDF)")

    def sink_redirect(self, sc: _Scope, call: ast.Call, name: str) -> None:
        arg = _arg(call, 0, "location") or _kw(call, "redirect_to") or _kw(call, "url")
        if arg is None:
            return
        v = self.ev(sc, arg)
        if v.t[URL] >= WEB and not _ANCHORED_URL_RE.match(v.prefix or ""):
            self.report("EM-OPEN-REDIRECT", "CWE-601", call,
                        "redirect target taken from request data without validation")

    def sink_http(self, sc: _Scope, call: ast.Call, name: str) -> None:
        func = call.func
        q = self.qual(func)
        root = q.split(".")[0]
        if root not in _HTTP_ROOTS and not self.aliases.get(name, "").split(".")[0] in (
                "requests", "httpx", "urllib", "urllib2", "aiohttp"):
            return
        pos = 1 if name == "request" else 0
        arg = _arg(call, pos, "url")
        if arg is None:
            return
        v = self.ev(sc, arg)
        if v.t[URL] >= WEB and not _ANCHORED_URL_RE.match(v.prefix or ""):
            self.report("EM-SSRF", "CWE-918", call,
                        f"server-side request to a URL taken from request data ({q})")

    def sink_xml(self, sc: _Scope, call: ast.Call, name: str) -> None:
        q = self.qual(call.func)
        if name == "XMLParser":
            if "lxml" in q or "etree" in q and "lxml" in self.modules:
                if _is_true(_kw(call, "resolve_entities")) or _is_false(_kw(call, "no_network")):
                    self.report("EM-XXE", "CWE-611", call,
                                "lxml XMLParser resolves external entities (XXE)")
            return
        if name == "setFeature":
            feat = _arg(call, 0)
            val = _arg(call, 1)
            fname = (_last_name(feat) if feat is not None else "") + (_const_str(feat) or "")
            if "external" in fname and _is_true(val):
                self.report("EM-XXE", "CWE-611", call,
                            "XML parser feature enables external entities (XXE)")
            return
        if name == "parse" and q.startswith("xmltodict") and \
                _is_false(_kw(call, "disable_entities")):
            self.report("EM-XXE", "CWE-611", call, "xmltodict.parse with entities enabled")
            return
        if name in ("parse", "parseString") and q.startswith(
                ("xml.dom.minidom", "xml.dom.pulldom", "xml.sax", "xml.dom.expatbuilder")):
            arg = _arg(call, 0)
            if arg is not None and self.ev(sc, arg).top >= WEB:
                self.report("EM-XXE", "CWE-611", call,
                            f"request data parsed by {q} (entity expansion/XXE; use defusedxml)")
            return
        if name in ("fromstring", "parse", "XML") and "lxml" in q and \
                _kw(call, "parser") is None and len(call.args) < 2:
            arg = _arg(call, 0, "source") or _arg(call, 0, "text")
            if arg is not None and self.ev(sc, arg).top >= WEB:
                self.report("EM-XXE", "CWE-611", call,
                            "request data parsed by lxml with the default (entity-resolving) "
                            "parser")

    def sink_regex(self, sc: _Scope, call: ast.Call, name: str) -> None:
        q = self.qual(call.func)
        if not q.startswith("re.") and not self.aliases.get(name, "").startswith("re."):
            return
        pat = _const_str(_arg(call, 0, "pattern"))
        if pat and ("http" in pat or "www" in pat or "//" in pat or "^" in pat or
                    "[" in pat) and _REGEX_BAD_DOT_RE.search(pat):
            self.report("EM-REGEX-UNESCAPED-DOT", "CWE-20", call,
                        "host/URL regex with an unescaped '.' matches any character "
                        "(validation bypass)")

    def sink_prefix(self, sc: _Scope, call: ast.Call, name: str) -> None:
        func = call.func
        if not isinstance(func, ast.Attribute):
            return
        pat = _const_str(_arg(call, 0))
        if pat is None or not _DOMAIN_RE.match(pat):
            return
        if not _URLISH_RE.search(" ".join(_identifiers(func.value))):
            return
        if name == "startswith":
            if "://" in pat and not pat.endswith("/"):
                self.report("EM-URL-SUBSTRING-CHECK", "CWE-20", call,
                            f"startswith('{pat}') also accepts {pat}.evil.com")
        elif not pat.startswith((".", "/")) and "://" not in pat:
            self.report("EM-URL-SUBSTRING-CHECK", "CWE-20", call,
                        f"endswith('{pat}') also accepts evil{pat}")

    def sink_xpath(self, sc: _Scope, call: ast.Call, name: str) -> None:
        arg = _arg(call, 0, "_path")
        if arg is None or isinstance(arg, ast.Constant):
            return
        v = self.ev(sc, arg)
        if v.top >= PARAM and v.frags and _kw(call, "namespaces") is None:
            if len(call.keywords) == 0:
                self.report("EM-XPATH-INJECTION", "CWE-643", call,
                            "XPath expression built from untrusted data")

    def sink_ldap(self, sc: _Scope, call: ast.Call, name: str) -> None:
        arg = _arg(call, 2, "filterstr") or _kw(call, "search_filter")
        if arg is None or isinstance(arg, ast.Constant):
            return
        v = self.ev(sc, arg)
        if v.top >= PARAM and v.frags and "ldap" in " ".join(self.modules):
            self.report("EM-LDAP-INJECTION", "CWE-90", call,
                        "LDAP filter built from untrusted data")

    def sink_jwt(self, sc: _Scope, call: ast.Call, name: str) -> None:
        if not self.qual(call.func).startswith("jwt."):
            return
        opts = _kw(call, "options")
        bad = _is_false(_kw(call, "verify"))
        if isinstance(opts, ast.Dict):
            for k, val in zip(opts.keys, opts.values):
                if _const_str(k) == "verify_signature" and _is_false(val):
                    bad = True
        algs = _kw(call, "algorithms")
        if isinstance(algs, (ast.List, ast.Tuple)) and any(
                (_const_str(e) or "").lower() == "none" for e in algs.elts):
            bad = True
        if bad:
            self.report("EM-JWT-NO-VERIFY", "CWE-347", call,
                        "JWT decoded without signature verification")


# called name -> sink checks (several families share names such as `search` or `get`)
_SINKS: dict[str, tuple] = {}


def _register(names: Iterable[str], handler) -> None:
    for n in names:
        _SINKS[n] = _SINKS.get(n, ()) + (handler,)


_register(_SQL_SINKS, _Analyzer.sink_sql)
_register(_SHELL_ALWAYS | _SUBPROCESS, _Analyzer.sink_shell)
_register(_RESPONSE_CTORS | {"write"}, _Analyzer.sink_response)
_register(("render_template_string",), _Analyzer.sink_render_string)
_register(_MARKUP, _Analyzer.sink_markup)
_register(("Template", "from_string"), _Analyzer.sink_jinja_template)
_register(_FILE_FUNCS | _PATH_METHODS, _Analyzer.sink_file)
_register(("extractall", "extract", "unpack_archive"), _Analyzer.sink_archive)
_register(("chmod", "fchmod", "lchmod", "umask"), _Analyzer.sink_perm)
_register(_WEAK_HASHES | _FAST_HASHES | {"new", "update"}, _Analyzer.sink_hash)
_register(_REDIRECTS, _Analyzer.sink_redirect)
_register(("compile", "match", "search", "fullmatch", "findall", "finditer"),
          _Analyzer.sink_regex)
_register(("startswith", "endswith"), _Analyzer.sink_prefix)
_register(("xpath",), _Analyzer.sink_xpath)
_register(("search", "search_s", "search_ext_s", "search_st"), _Analyzer.sink_ldap)
_register(("load", "load_all", "unsafe_load", "unsafe_load_all"), _Analyzer.sink_yaml)
_register(("decode",), _Analyzer.sink_jwt)
_register(("XMLParser", "setFeature", "fromstring", "XML", "parse", "parseString"),
          _Analyzer.sink_xml)
_register(_HTTP_VERBS, _Analyzer.sink_http)


def run_rules(tree: ast.Module) -> list[RawFinding]:
    """All AST-rule findings for a parsed module, sorted by line."""
    found = _Analyzer(tree).run()
    return sorted(found, key=lambda f: (f[2], f[0]))
