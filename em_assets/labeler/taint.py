"""The taint engine's values: how attacker-controlled an expression is, per output context.

Taint levels (higher = more attacker-controlled)::

    CONST    literal / derived only from literals, or sanitised for that context
    UNKNOWN  some non-literal value (a call result, a global)
    PARAM    a parameter of an ordinary function; DB rows as HTML (stored XSS)
    LOCAL    input(), sys.argv, stdin, argparse: the local operator
    WEB      request data (Flask/Django/Tornado/http.server), untyped route parameters,
             archive member names (zip slip)

Contexts (a sanitiser clears only its own): HTML, SQL, SHELL, PATH, URL.
``int()``/``len()``/``url_for()`` clear all of them; ``escape``/``bleach.clean`` clear HTML;
``shlex.quote`` clears SHELL; ``secure_filename``/``basename`` clear PATH. Besides the levels a
value keeps the literal string fragments it was built from (so a sink can tell an HTML page or an
SQL statement from an opaque value) and the literal text it starts with (so
``redirect(f"/users/{id}")`` or ``open("/tmp/x")`` can be judged by their prefix).

:class:`Analysis` evaluates expressions to such values; :mod:`.walk` runs it over the statements.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from em_assets.labeler.nodes import chain_root, const_str, int_value, last_name
from em_assets.labeler.taint_names import (
    ARCHIVE_LISTING,
    CLEAN_ALL,
    CLEAN_HTML_RE,
    CLEAN_PATH_RE,
    CLEAN_SHELL_RE,
    CLEAN_SQL_RE,
    CLEAN_URL_RE,
    DB_FETCH,
    FROM_IMPORTED_MODULES,
    HANDLER_SOURCES,
    PROPAGATE,
    REQUEST_SAFE_ATTRS,
    STR_METHODS,
    TORNADO_SOURCES,
    WEB_FRAMEWORKS,
)

RawFinding = tuple[str, str, int, str]  # (rule_id, cwe, line, message)

CONST, UNKNOWN, PARAM, LOCAL, WEB = range(5)
HTML, SQL, SHELL, PATH, URL = range(5)
N_CONTEXTS = 5
ALL_CONST = (CONST,) * N_CONTEXTS
_MAX_FRAGS = 48


class Val:
    """Abstract value: per-context taint levels and the literal string fragments it contains."""

    __slots__ = ("t", "frags", "prefix")

    def __init__(self, t: tuple[int, ...] = ALL_CONST, frags: tuple[str, ...] = (), prefix: str | None = None) -> None:
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


def all_contexts(level: int) -> tuple[int, ...]:
    """The same level in every context."""
    return (level,) * N_CONTEXTS


CONST_VAL = Val()
UNKNOWN_VAL = Val(all_contexts(UNKNOWN))
STORED_VAL = Val((PARAM, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN))  # DB rows: stored XSS
MEMBER_VAL = Val((UNKNOWN, UNKNOWN, UNKNOWN, WEB, UNKNOWN))  # archive member names: zip slip


def join(vals: Iterable[Val], frags: bool = True) -> Val:
    """The most tainted level per context; the fragments of all (unless frags=False)."""
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
# sources, propagation and sanitisers


# request attributes that are not attacker-controlled text
class Scope:
    """One function body (or the module): what each local name holds, and a few facts about it."""

    __slots__ = ("state", "parent", "is_view", "is_handler", "func", "objkind", "derived", "random_names")

    def __init__(
        self, parent: Scope | None, func: ast.AST | None = None, is_view: bool = False, is_handler: bool = False
    ) -> None:
        self.state: dict[str, Val] = {}
        self.parent = parent
        self.func = func
        self.is_view = is_view
        self.is_handler = is_handler
        self.objkind: dict[str, str] = {}  # name -> qualified constructor (tarfile.open ...)
        self.derived: dict[str, set[str]] = {}  # name -> names its value was computed from
        self.random_names: set[str] = set()  # locals assigned from `random` (weak-secret rule)

    def lookup(self, name: str) -> Val | None:
        sc: Scope | None = self
        while sc is not None:
            v = sc.state.get(name)
            if v is not None:
                return v
            sc = sc.parent
        return None

    def kind(self, name: str) -> str | None:
        sc: Scope | None = self
        while sc is not None:
            k = sc.objkind.get(name)
            if k is not None:
                return k
            sc = sc.parent
        return None


class Analysis:
    """One module under analysis: what its imports and definitions say, the expression
    evaluator, and the findings reported so far (one per rule and line)."""

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
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                    self.modules.add(a.name.split(".")[0])
                    self.module_names.add(a.asname or a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in FROM_IMPORTED_MODULES:
                        self.module_names.add(a.asname or a.name)
                self.modules.add(node.module.split(".")[0])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.local_funcs.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.ClassDef) and node.bases:
                base = last_name(node.bases[0])
                self.class_bases[node.name] = base
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                iv = int_value(node.value)
                if iv is not None:
                    n = node.targets[0].id
                    ints[n] = iv if ints.get(n, iv) == iv else None
        self.int_consts = {k: v for k, v in ints.items() if v is not None}
        for cls, base in list(self.class_bases.items()):  # class L(yaml.SafeLoader): ...
            self.class_bases[cls] = self.aliases.get(base, base).rsplit(".", 1)[-1]
        self.module_consts: dict[str, Val] = {}
        for st in tree.body:
            if (
                isinstance(st, ast.Assign)
                and all(isinstance(t, ast.Name) for t in st.targets)
                and not any(isinstance(n, (ast.Name, ast.Call)) for n in ast.walk(st.value))
            ):
                for t in st.targets:
                    self.module_consts[t.id] = self.evaluate(Scope(None), st.value)
        # inter-procedural step: (function id, parameter) -> levels raised by callers' arguments
        self.boost: dict[tuple[int, str], tuple[int, ...]] = {}
        self.boost_changed = False
        self.findings: list[RawFinding] = []
        self._seen: set[tuple[str, int]] = set()

    def start_pass(self) -> None:
        """Forget the findings of an earlier pass; keep what it learnt about parameters."""
        self.findings, self._seen, self.boost_changed = [], set(), False

    def is_module_ref(self, node: ast.AST) -> bool:
        """`os.path`, `json`, `etree`: a dotted name rooted at an imported module."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in self.module_names

    def int_value(self, node: ast.AST | None) -> int | None:
        """A permission mode or mask, with the module's int constants resolved."""
        return int_value(node, self.int_consts)

    def qualified_name(self, func: ast.AST) -> str:
        """`sp.run` -> `subprocess.run` through the module's imports; `?` for an unknown root."""
        parts: list[str] = []
        node = func
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(self.aliases.get(node.id, node.id))
        elif isinstance(node, ast.Call):
            parts.append(self.qualified_name(node.func) + "()")
        else:
            parts.append("?")
        return ".".join(reversed(parts))

    def report(self, rule: str, cwe: str, node: ast.AST, msg: str) -> None:
        """Record a finding at the node's line; the first message per rule and line is kept."""
        line = getattr(node, "lineno", 0) or 0
        key = (rule, line)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append((rule, cwe, line, msg))

    # -------------------------------------------------------------- evaluation

    def source_level(self, sc: Scope, node: ast.AST) -> int | None:
        """The level of a taint source (request data, argv, input(), ...); None if it is none."""
        root, attrs = chain_root(node)
        if not isinstance(root, ast.Name):
            return None
        rid = root.id
        alias = self.aliases.get(rid, "")
        if (rid == "request" and not alias.startswith(("urllib", "six"))) or (
            alias.endswith(".request") and alias.split(".")[0] in WEB_FRAMEWORKS
        ):
            if attrs and attrs[0] not in REQUEST_SAFE_ATTRS:
                return WEB
            return UNKNOWN if attrs else None
        if rid == "self" and attrs:
            if attrs[0] == "request" and len(attrs) > 1 and attrs[1] not in REQUEST_SAFE_ATTRS:
                return WEB
            if attrs[0] in TORNADO_SOURCES:
                return WEB
            if sc.is_handler and attrs[0] in HANDLER_SOURCES:
                return WEB
            return None
        if rid == "sys" and attrs and attrs[0] in ("argv", "stdin"):
            return LOCAL
        if rid in ("input", "raw_input") and isinstance(node, ast.Call) and not attrs:
            return LOCAL
        if attrs and attrs[-1] == "parse_args":
            return LOCAL
        return None

    def evaluate(self, sc: Scope, node: ast.AST | None) -> Val:
        """The abstract value of an expression (walrus targets and comprehension names are bound)."""
        if node is None:
            return CONST_VAL
        T = type(node)
        if T is ast.Constant:
            v = node.value
            if isinstance(v, str):
                return Val(ALL_CONST, (v,), v)
            if isinstance(v, bytes):
                s = v.decode("latin-1")
                return Val(ALL_CONST, (s,), s)
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
                    parts.append(join([self.evaluate(sc, p.value)], frags=False))
                else:
                    parts.append(self.evaluate(sc, p))
            first = node.values[0] if node.values else None
            return join(parts).with_prefix(const_str(first))
        if T is ast.BinOp:
            left = self.evaluate(sc, node.left)
            v = join([left, self.evaluate(sc, node.right)])
            if isinstance(node.op, ast.Add):
                return v.with_prefix(left.prefix)
            if isinstance(node.op, ast.Mod) and left.prefix is not None:
                return v.with_prefix(left.prefix.split("%", 1)[0])
            if isinstance(node.op, ast.Div) and left.prefix is not None:
                return v.with_prefix(left.prefix.rstrip("/") + "/")
            return v
        if T is ast.Call:
            return self.call_value(sc, node)
        if T in (ast.Attribute, ast.Subscript):
            lvl = self.source_level(sc, node)
            if lvl is not None:
                return Val(all_contexts(lvl))
            base = self.evaluate(sc, node.value)
            if T is ast.Subscript:
                return Val(base.t)
            return Val(base.t)
        if T in (ast.List, ast.Tuple, ast.Set):
            return join([self.evaluate(sc, e) for e in node.elts])
        if T is ast.Dict:
            return join([self.evaluate(sc, e) for e in node.values], frags=False)
        if T is ast.IfExp:
            return join([self.evaluate(sc, node.body), self.evaluate(sc, node.orelse)])
        if T is ast.BoolOp:
            return join([self.evaluate(sc, e) for e in node.values])
        if T in (ast.Compare, ast.Lambda):
            return CONST_VAL
        if T is ast.UnaryOp:
            return self.evaluate(sc, node.operand) if not isinstance(node.op, ast.Not) else CONST_VAL
        if T in (ast.Await, ast.Starred, ast.FormattedValue):
            return self.evaluate(sc, node.value)
        if T is ast.NamedExpr:
            v = self.evaluate(sc, node.value)
            self.bind(sc, node.target, v)
            return v
        if T in (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp):
            for gen in node.generators:
                self.bind(sc, gen.target, Val(self.evaluate(sc, gen.iter).t))
            if T is ast.DictComp:
                return join([self.evaluate(sc, node.value)], frags=False)
            return join([self.evaluate(sc, node.elt)], frags=False)
        return UNKNOWN_VAL

    def call_value(self, sc: Scope, node: ast.Call) -> Val:
        """A call's result: a source, a sanitiser, a propagating call, or some unknown value."""
        func = node.func
        name = last_name(func)
        lvl = self.source_level(sc, node)
        if lvl is not None:
            return Val(all_contexts(lvl))
        if name == "gettempdir":  # a shared, predictable directory
            return Val(ALL_CONST, ("/tmp",), "/tmp")
        if name in CLEAN_ALL:
            return CONST_VAL
        if isinstance(func, ast.Attribute):
            if name in DB_FETCH:
                return STORED_VAL
            if name in ARCHIVE_LISTING:
                return MEMBER_VAL
            if name in ("append", "extend", "add", "insert", "appendleft") and isinstance(func.value, ast.Name):
                # container mutation: the list now holds the appended value
                old = sc.lookup(func.value.id) or CONST_VAL
                sc.state[func.value.id] = join([old] + [self.evaluate(sc, a) for a in node.args])
                return CONST_VAL
        args = [self.evaluate(sc, a) for a in node.args] + [self.evaluate(sc, k.value) for k in node.keywords]
        recv = None
        if isinstance(func, ast.Attribute) and not self.is_module_ref(func.value):
            recv = self.evaluate(sc, func.value)  # a method call (not os.path.join & co)
        if recv is not None and name in STR_METHODS:
            v = (
                join([recv] + args)
                if name in ("format", "join", "replace", "format_map")
                else join([recv] + [Val(a.t) for a in args])
            )
            if name in ("format", "format_map") and recv.prefix is not None:
                v = v.with_prefix(recv.prefix.split("{", 1)[0])
            elif name in ("strip", "rstrip", "encode", "decode"):
                v = v.with_prefix(recv.prefix)
        elif name in PROPAGATE:
            v = join(([Val(recv.t)] if recv is not None else []) + args)
            if name in ("dumps", "jsonify"):
                v = v.clear(HTML)
            if name in ("join", "Path", "PurePath", "PosixPath", "str", "abspath", "normpath", "realpath") and args:
                v = v.with_prefix(args[0].prefix)
            elif name == "joinpath" and recv is not None and recv.prefix is not None:
                v = v.with_prefix(recv.prefix.rstrip("/") + "/")
        else:
            # an arbitrary call: its result is some non-literal value
            v = UNKNOWN_VAL
        # context sanitisers
        if name and v.top > CONST:
            if CLEAN_HTML_RE.search(name):
                v = v.clear(HTML)
            if CLEAN_SQL_RE.search(name):
                v = v.clear(SQL)
            if CLEAN_SHELL_RE.match(name):
                v = v.clear(SHELL)
            if CLEAN_PATH_RE.search(name):
                v = v.clear(PATH)
            if CLEAN_URL_RE.search(name):
                v = v.clear(URL)
        return v

    def bind(self, sc: Scope, target: ast.AST, v: Val) -> None:
        """Assign a value to a target (names, unpacking, `d[k] = v` taints `d`)."""
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
