"""The names the taint engine knows: request attributes that carry no input, framework
sources, string methods that pass taint on, sanitizers per sink context, database and archive
reads, and the web frameworks whose imports mark a module as a web app."""

from __future__ import annotations

import re

REQUEST_SAFE_ATTRS = frozenset(
    {
        "method",
        "user",
        "session",
        "is_json",
        "is_secure",
        "endpoint",
        "blueprint",
        "url_rule",
        "scheme",
        "is_ajax",
        "auth",
        "remote_user",
        "environ",
        "app",
        "url",
        "base_url",
        "path",
        "full_path",
        "host_url",
        "url_root",
        "script_root",
        "referrer",
        "host",
        "mimetype",
        "content_type",
        "content_length",
        "META",
        "is_xhr",
        # pytest's `request` fixture
        "param",
        "node",
        "config",
        "fixturename",
        "getfixturevalue",
        "addfinalizer",
        "module",
        "function",
        "cls",
        "instance",
        "keywords",
    }
)
TORNADO_SOURCES = frozenset(
    {
        "get_argument",
        "get_arguments",
        "get_query_argument",
        "get_query_arguments",
        "get_body_argument",
        "get_body_arguments",
        "get_cookie",
        "get_secure_cookie",
    }
)
HANDLER_SOURCES = frozenset({"path", "headers", "rfile", "requestline"})

# calls whose result carries its inputs' taint (and, for string methods, the receiver's text)
STR_METHODS = frozenset(
    {
        "format",
        "join",
        "replace",
        "strip",
        "lstrip",
        "rstrip",
        "lower",
        "upper",
        "title",
        "capitalize",
        "casefold",
        "center",
        "ljust",
        "rjust",
        "zfill",
        "expandtabs",
        "removeprefix",
        "removesuffix",
        "translate",
        "format_map",
        "encode",
        "decode",
        "swapcase",
    }
)
PROPAGATE = (
    frozenset(
        {
            "str",
            "repr",
            "bytes",
            "bytearray",
            "list",
            "tuple",
            "dict",
            "set",
            "frozenset",
            "sorted",
            "reversed",
            "Path",
            "PurePath",
            "PosixPath",
            "WindowsPath",
            "abspath",
            "normpath",
            "expanduser",
            "expandvars",
            "realpath",
            "dirname",
            "splitext",
            "loads",
            "load",
            "dumps",
            "get",
            "getlist",
            "getall",
            "pop",
            "setdefault",
            "values",
            "keys",
            "items",
            "copy",
            "split",
            "rsplit",
            "splitlines",
            "partition",
            "rpartition",
            "read",
            "readline",
            "readlines",
            "get_json",
            "get_data",
            "unquote",
            "unquote_plus",
            "b64decode",
            "urlsafe_b64decode",
            "b64encode",
            "urljoin",
            "urlparse",
            "urlsplit",
            "urlunparse",
            "parse_qs",
            "parse_qsl",
            "next",
            "iter",
            "map",
            "filter",
            "getattr",
            "BytesIO",
            "StringIO",
            "first",
            "to_dict",
            "dedent",
            "fill",
            "wrap",
            "safe_load",
            "fromstring",
            "joinpath",
            "with_suffix",
            "with_name",
            "as_posix",
            "resolve",
            "absolute",
            "concat",
            "chain",
            "zip",
            "enumerate",
            "min",
            "max",
            "Request",
        }
    )
    | STR_METHODS
)
# sanitisers: calls whose result is a number, a boolean, an id or a fixed value (every context)
# and, by name, sanitisers of one context
CLEAN_ALL = frozenset(
    {
        "int",
        "float",
        "bool",
        "len",
        "abs",
        "round",
        "ord",
        "hash",
        "UUID",
        "uuid4",
        "uuid1",
        "isdigit",
        "isnumeric",
        "isalnum",
        "isalpha",
        "count",
        "index",
        "find",
        "exists",
        "isfile",
        "isdir",
        "getsize",
        "url_for",
        "reverse",
        "id",
        "type",
        "isinstance",
        "hexdigest",
        "digest",
        "compare_digest",
        "uuid",
        "time",
        "now",
        "utcnow",
        "today",
        "randint",
        "token_hex",
        "token_urlsafe",
        "mkdtemp",
        "getcwd",
        "timestamp",
        "Decimal",
    }
)
CLEAN_HTML_RE = re.compile(
    r"(?i)escape|sanitiz|saniti[sz]e|clean|bleach|strip_tags|purif|linkify|"
    r"quote|urlencode|jsonify|tojson|dumps|format_html|render_template$"
)
CLEAN_SQL_RE = re.compile(r"(?i)escape|sanitiz|quote|literal")
CLEAN_SHELL_RE = re.compile(r"(?i)^(quote|escape|shell_escape|sanitiz\w*|clean\w*)$")
CLEAN_PATH_RE = re.compile(r"(?i)secure_filename|basename|safe_join|sanitiz|clean|valid")
CLEAN_URL_RE = re.compile(r"(?i)url_for|reverse|safe_url|sanitiz|valid")
DB_FETCH = frozenset({"fetchall", "fetchone", "fetchmany"})
ARCHIVE_LISTING = frozenset({"namelist", "infolist", "getmembers", "getnames", "getmember", "getinfo"})
WEB_FRAMEWORKS = frozenset(
    {
        "django",
        "rest_framework",
        "pyramid",
        "starlette",
        "fastapi",
        "flask",
        "bottle",
        "falcon",
        "aiohttp",
        "sanic",
        "tornado",
        "werkzeug",
        "quart",
        "webapp2",
        "cherrypy",
    }
)
FROM_IMPORTED_MODULES = frozenset(
    {
        "os.path",
        "urllib.parse",
        "urllib.request",
        "lxml.etree",
        "xml.dom.minidom",
        "xml.etree.ElementTree",
        "xml.sax",
        "http.client",
        "email.utils",
    }
)
