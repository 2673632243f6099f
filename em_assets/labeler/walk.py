"""The taint engine's walk: one pass over a module, statement by statement in source order.

Each scope (module, each function) keeps a small taint state per local name (see
:mod:`.taint`). Parameters of an ordinary function start at PARAM, those of a web view or
request handler at WEB. A validation test in an ``if``/``assert`` (membership, ``startswith``,
``commonpath``, regex match, ``urlparse``...) clears PATH and URL for the names it mentions and
for the names those were computed from.

The sink rules plug in through :class:`Hooks`: every call and comparison a statement evaluates,
every assignment, return and function definition is shown to them with the taint state of that
point. Inter-procedural step: when a module-local function is called with request data, its
parameters are raised to that level and the module is analysed again (at most three passes).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from em_assets.labeler.nodes import const_str, last_name
from em_assets.labeler.taint import (
    ALL_CONST,
    CONST,
    PARAM,
    PATH,
    UNKNOWN_VAL,
    URL,
    WEB,
    WEB_FRAMEWORKS,
    Analysis,
    RawFinding,
    Scope,
    Val,
    all_contexts,
    join,
)

_MAX_PASSES = 3

_VALIDATOR_CALL_RE = re.compile(
    r"(?i)^(startswith|realpath|abspath|normpath|commonpath|commonprefix|is_relative_to|"
    r"relative_to|resolve|isabs|match|fullmatch|search|urlparse|urlsplit|is_safe_url|"
    r"url_has_allowed_host_and_scheme|secure_filename|basename|safe_join)$|"
    r"valid|allow|safe|trust|whitelist|permit|verify|sanitiz"
)
_VIEW_DECORATORS = frozenset(
    {"route", "get", "post", "put", "delete", "patch", "api_route", "websocket", "api_view", "view_config", "expose"}
)
_VIEW_BASES_RE = re.compile(r"(?i)view|resource|handler|endpoint")
_ROUTE_TYPED_PARAM_RE = re.compile(r"<(?:int|float|uuid):(\w+)>")


@dataclass(frozen=True)
class Hooks:
    """Where the sink rules see the code; each is called with the analysis and the node(s)."""

    call: Callable[[Analysis, Scope, ast.Call, str], None]  # every call, with its last name
    compare: Callable[[Analysis, Scope, ast.Compare], None]
    assigned: Callable[[Analysis, ast.AST, Val], None]  # the value of an (augmented) assignment
    target: Callable[[Analysis, Scope, ast.AST, ast.AST, Val], None]  # each target, its value
    returned: Callable[[Analysis, Scope, ast.Return], None]
    function: Callable[[Analysis, ast.AST], None]  # a definition, before its body is walked


def analyse(tree: ast.Module, hooks: Hooks) -> list[RawFinding]:
    """The findings of the last pass, in the order they were reported."""
    an = Analysis(tree)
    for _ in range(_MAX_PASSES):
        an.start_pass()
        module = Scope(None)
        module.state.update(an.module_consts)
        _block(an, hooks, module, tree.body)
        if not an.boost_changed:
            break
    return an.findings


def _block(an: Analysis, hooks: Hooks, sc: Scope, stmts: list[ast.stmt]) -> None:
    for st in stmts:
        _stmt(an, hooks, sc, st)


def _stmt(an: Analysis, hooks: Hooks, sc: Scope, st: ast.stmt) -> None:
    T = type(st)
    if T in (ast.FunctionDef, ast.AsyncFunctionDef):
        _function(an, hooks, sc, st, None)
        return
    if T is ast.ClassDef:
        cls_sc = Scope(sc)
        for b in st.body:
            if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)):
                _function(an, hooks, sc, b, st)
            else:
                _stmt(an, hooks, cls_sc, b)
        return
    for h in _header_nodes(st):
        for sub in _walk_no_defs(h):
            if isinstance(sub, ast.Call):
                _visit_call(an, hooks, sc, sub)
            elif isinstance(sub, ast.Compare):
                hooks.compare(an, sc, sub)
    if T is ast.Assign:
        v = an.evaluate(sc, st.value)
        hooks.assigned(an, st.value, v)
        for tgt in st.targets:
            an.bind(sc, tgt, v)
            _note_kind(an, sc, tgt, st.value)
            hooks.target(an, sc, tgt, st.value, v)
            if isinstance(tgt, ast.Name):
                sc.derived[tgt.id] = {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
    elif T is ast.Expr:
        if isinstance(st.value, ast.Call):
            an.evaluate(sc, st.value)
    elif T is ast.AugAssign:
        v = an.evaluate(sc, st.value)
        hooks.assigned(an, st.value, v)
        if isinstance(st.target, ast.Name):
            old = sc.lookup(st.target.id) or UNKNOWN_VAL
            sc.state[st.target.id] = join([old, v])
    elif T is ast.AnnAssign:
        if st.value is not None:
            v = an.evaluate(sc, st.value)
            an.bind(sc, st.target, v)
            _note_kind(an, sc, st.target, st.value)
            hooks.target(an, sc, st.target, st.value, v)
    elif T is ast.Return:
        if st.value is not None:
            hooks.returned(an, sc, st)
    elif T in (ast.For, ast.AsyncFor):
        an.bind(sc, st.target, Val(an.evaluate(sc, st.iter).t))
        _block(an, hooks, sc, st.body)
        _block(an, hooks, sc, st.orelse)
    elif T in (ast.If, ast.While):
        _apply_guard(sc, st.test)
        _block(an, hooks, sc, st.body)
        _block(an, hooks, sc, st.orelse)
    elif T is ast.Assert:
        _apply_guard(sc, st.test)
    elif T in (ast.With, ast.AsyncWith):
        for item in st.items:
            if item.optional_vars is not None:
                an.bind(sc, item.optional_vars, an.evaluate(sc, item.context_expr))
                _note_kind(an, sc, item.optional_vars, item.context_expr)
        _block(an, hooks, sc, st.body)
    elif T is ast.Try or T is getattr(ast, "TryStar", None):
        _block(an, hooks, sc, st.body)
        for h in st.handlers:
            _block(an, hooks, sc, h.body)
        _block(an, hooks, sc, st.orelse)
        _block(an, hooks, sc, st.finalbody)
    elif T is ast.Match:
        for case in st.cases:
            _block(an, hooks, sc, case.body)


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
    if isinstance(st, (ast.Try, getattr(ast, "TryStar", ast.Try), ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
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


def _note_kind(an: Analysis, sc: Scope, target: ast.AST, value: ast.AST) -> None:
    """Remember what built an object (`tar = tarfile.open(...)`): rules judge its methods by it."""
    if isinstance(target, ast.Name) and isinstance(value, ast.Call):
        sc.objkind[target.id] = an.qualified_name(value.func)


def _visit_call(an: Analysis, hooks: Hooks, sc: Scope, call: ast.Call) -> None:
    func = call.func
    name = last_name(func)
    if not name:
        return
    # cross-function taint: raise parameters of local functions called with tainted data
    if name in an.local_funcs and (
        isinstance(func, ast.Name)
        or (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("self", "cls"))
    ):
        _raise_callee_params(an, sc, call, name)
    hooks.call(an, sc, call, name)


def _raise_callee_params(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    vals = [an.evaluate(sc, a) for a in call.args]
    kvals = {k.arg: an.evaluate(sc, k.value) for k in call.keywords if k.arg}
    for fn in an.local_funcs[name]:
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
            params = params[1:]
        pairs = list(zip(params, vals)) + [(k, v) for k, v in kvals.items()]
        for p, v in pairs:
            if v.top <= PARAM:
                continue
            key = (id(fn), p)
            old = an.boost.get(key, ALL_CONST)
            new = tuple(map(max, old, v.t))
            if new != old:
                an.boost[key] = new
                an.boost_changed = True


def _function(an: Analysis, hooks: Hooks, parent: Scope, fn: ast.AST, cls: ast.ClassDef | None) -> None:
    is_view = False
    typed: set[str] = set()  # route parameters converted to a number/uuid by the framework
    for d in fn.decorator_list:
        dn = d.func if isinstance(d, ast.Call) else d
        if last_name(dn) in _VIEW_DECORATORS:
            is_view = True
            rule = const_str(d.args[0]) if isinstance(d, ast.Call) and d.args else None
            if rule:
                typed.update(_ROUTE_TYPED_PARAM_RE.findall(rule))
    args = fn.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    is_handler = False
    if cls is not None:
        bases = " ".join(an.qualified_name(b) for b in cls.bases)
        if "RequestHandler" in bases or "HTTPRequestHandler" in bases or fn.name.startswith("do_"):
            is_handler = True
        if _VIEW_BASES_RE.search(bases) and fn.name in ("get", "post", "put", "delete", "patch", "dispatch"):
            is_view = True
    if (positional[:1] == ["request"] or positional[1:2] == ["request"]) and (an.modules & WEB_FRAMEWORKS):
        is_view = True
    sc = Scope(parent, fn, is_view=is_view, is_handler=is_handler)
    hooks.function(an, fn)
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
        t = all_contexts(level)
        boosted = an.boost.get((id(fn), p))
        if boosted is not None:
            t = tuple(map(max, t, boosted))
        sc.state[p] = Val(t)
    _block(an, hooks, sc, fn.body)


def _apply_guard(sc: Scope, test: ast.AST) -> None:
    """A validation test clears PATH/URL taint of the names it checks."""
    guarded: set[str] = set()
    for sub in ast.walk(test):
        if isinstance(sub, ast.Compare):
            ops = sub.ops
            if any(isinstance(o, (ast.In, ast.NotIn)) for o in ops):
                left = sub.left
                const = const_str(left)
                if const is None:
                    # `name in ALLOWED` style membership
                    guarded.update(n.id for n in ast.walk(left) if isinstance(n, ast.Name))
                elif ".." in const or "/" in const or "\\" in const:
                    for c in sub.comparators:
                        guarded.update(n.id for n in ast.walk(c) if isinstance(n, ast.Name))
            elif any(isinstance(o, (ast.Eq, ast.NotEq)) for o in ops):
                others = [sub.left, *sub.comparators]
                if not any(isinstance(o, ast.Constant) and o.value in ("", None) for o in others):
                    for o in others:
                        guarded.update(n.id for n in ast.walk(o) if isinstance(n, ast.Name))
        elif isinstance(sub, ast.Call):
            name = last_name(sub.func)
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
