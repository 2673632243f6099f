"""Secrets and cryptography rules: hard-coded credentials, secrets drawn from `random`, fast or
broken hashes of passwords, JWTs decoded without checking the signature."""

from __future__ import annotations

import ast
import re

from em_assets.labeler.nodes import call_arg, const_str, identifiers, is_false, keyword_arg, last_name
from em_assets.labeler.taint import Analysis, Scope

_PASSWORD_RE = re.compile(r"(?i)passw|passwd|passphrase|(^|_)(pass|pwd|pw|pin)($|_)|pwd$")
_SALT_RE = re.compile(r"(?i)salt|pepper|nonce|iteration")
_SECRET_NAME_RE = re.compile(
    r"(?i)token|passw|secret|otp|nonce|salt|session_?id|api_?key|reset|verification|"
    r"csrf|auth_?code|activation|invite|invitation|coupon|voucher|gift|card_?code|"
    r"one_?time|magic_?link|recovery|credential|(^|_)pin(_|$)"
)
# functions that mint a value: generate_key(), new_card_code(), make_invite_code() ...
_SECRET_FUNC_RE = re.compile(
    r"(?i)^_?(gen|generate|make|new|create|issue|random|mint)_?\w*(key|code|pass\w*|pin|secret)$"
)
_CRED_NAME_RE = re.compile(
    r"(?i)^(\w+_)?(password|passwd|pwd|passphrase|api_?key|client_secret|access_token|"
    r"auth_token|private_key|secret_token|db_pass|smtp_pass|mail_pass)$"
)
_WEAK_HASHES = frozenset({"md5", "sha1", "md4", "md2"})
_FAST_HASHES = frozenset({"sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b", "blake2s"})
_RANDOM_FUNCS = frozenset(
    {"choice", "choices", "randint", "random", "randrange", "getrandbits", "sample", "shuffle", "uniform"}
)
HASH_SINKS = _WEAK_HASHES | _FAST_HASHES | {"new", "update"}
JWT_SINKS = frozenset({"decode"})


def is_credential_literal(node: ast.AST | None) -> bool:
    """A non-empty literal that looks like a real secret, not a prompt, placeholder or path."""
    s = const_str(node)
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


def credential_defaults(an: Analysis, fn: ast.AST) -> None:
    """`def connect(password="hunter2")`: a credential as a parameter's default."""
    args = fn.args
    pos_args = args.posonlyargs + args.args
    for a, d in list(zip(pos_args[len(pos_args) - len(args.defaults) :], args.defaults)) + list(
        zip(args.kwonlyargs, args.kw_defaults)
    ):
        if d is not None and _CRED_NAME_RE.match(a.arg) and is_credential_literal(d):
            an.report("EM-HARDCODED-CREDENTIAL", "CWE-798", d, f"hard-coded default for credential parameter {a.arg}")


def credential_keywords(an: Analysis, call: ast.Call) -> None:
    """`connect(password="hunter2")`."""
    for k in call.keywords:
        if k.arg and _CRED_NAME_RE.match(k.arg) and is_credential_literal(k.value):
            an.report("EM-HARDCODED-CREDENTIAL", "CWE-798", call, f"hard-coded credential passed as {k.arg}=")


def credential_compare(an: Analysis, node: ast.Compare) -> None:
    """`password == "letmein"`: a credential baked into the code."""
    if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
        a, b = node.left, node.comparators[0]
        for x, y in ((a, b), (b, a)):
            if (
                isinstance(y, ast.Constant)
                and is_credential_literal(y)
                and isinstance(x, (ast.Name, ast.Attribute, ast.Subscript))
            ):
                ids = [last_name(x)] if not isinstance(x, ast.Subscript) else [const_str(x.slice) or ""]
                if any(_CRED_NAME_RE.match(i) for i in ids if i):
                    an.report("EM-HARDCODED-CREDENTIAL", "CWE-798", node, "password compared with a hard-coded literal")


def assigned_secret(an: Analysis, sc: Scope, tgt: ast.AST, value: ast.AST) -> None:
    """`PASSWORD = "..."`, `cfg["api_key"] = "..."`; `token = "".join(random.choice(...))`."""
    names = [n.id for n in ast.walk(tgt) if isinstance(n, ast.Name)] + (
        [tgt.attr] if isinstance(tgt, ast.Attribute) else []
    )
    random_value = uses_random(an, value, sc)
    if random_value and isinstance(tgt, ast.Name):
        sc.random_names.add(tgt.id)
    key = (
        tgt.id
        if isinstance(tgt, ast.Name)
        else tgt.attr
        if isinstance(tgt, ast.Attribute)
        else const_str(tgt.slice)
        if isinstance(tgt, ast.Subscript)
        else None
    )
    if key and _CRED_NAME_RE.match(key) and is_credential_literal(value):
        an.report("EM-HARDCODED-CREDENTIAL", "CWE-798", value, f"hard-coded credential assigned to {key}")
    if any(_SECRET_NAME_RE.search(n) for n in names) and random_value:
        an.report(
            "EM-WEAK-RANDOM-SECRET",
            "CWE-338",
            value,
            "security token/password generated with the non-cryptographic `random` module",
        )


def returned_secret(an: Analysis, sc: Scope, st: ast.Return) -> None:
    """`def make_reset_token(): return "".join(random.choices(...))`."""
    node = st.value
    fn = sc.func
    if (
        isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (_SECRET_NAME_RE.search(fn.name) or _SECRET_FUNC_RE.match(fn.name))
        and uses_random(an, node, sc)
    ):
        an.report(
            "EM-WEAK-RANDOM-SECRET",
            "CWE-338",
            node,
            "security token/password generated with the non-cryptographic `random` module",
        )


def uses_random(an: Analysis, node: ast.AST, sc: Scope | None = None) -> bool:
    """The value comes from the `random` module (directly or via a local built from it)."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    if sc is not None:
        # `raw = "".join(random.sample(...)); return "-".join(raw[i:i+4] ...)`
        if names & sc.random_names:
            return True
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and last_name(sub.func) in _RANDOM_FUNCS:
            q = an.qualified_name(sub.func)
            if (
                q.startswith(("random.", "numpy.random."))
                or q in _RANDOM_FUNCS
                and an.aliases.get(q, "").startswith("random.")
            ):
                return True
            if an.aliases.get(last_name(sub.func), "").startswith("random."):
                return True
    return False


def password_hash(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """A password hashed with a broken hash, or with a fast one and no salt."""
    q = an.qualified_name(call.func)
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
        algo = (const_str(call_arg(call, 0, "name")) or "").lower().replace("-", "")
        data = call_arg(call, 1, "data")
        return _check_hash_data(an, call, algo, data)
    elif not (
        q.startswith(("hashlib.", "Crypto.Hash", "Cryptodome.Hash")) or an.aliases.get(name, "").startswith("hashlib")
    ):
        return
    return _check_hash_data(an, call, algo, call_arg(call, 0, "string") or keyword_arg(call, "data"))


def _check_hash_data(an: Analysis, call: ast.Call, algo: str, data: ast.AST | None) -> None:
    if data is None or algo not in _WEAK_HASHES | _FAST_HASHES:
        return
    ids = list(identifiers(data))
    if not any(_PASSWORD_RE.search(i) for i in ids):
        return
    if algo in _WEAK_HASHES:
        an.report(
            "EM-WEAK-PASSWORD-HASH", "CWE-916", call, f"password hashed with {algo} (use bcrypt/scrypt/argon2/pbkdf2)"
        )
    elif not any(_SALT_RE.search(i) for i in ids):
        an.report(
            "EM-WEAK-PASSWORD-HASH", "CWE-916", call, f"password hashed with unsalted fast hash {algo} (use a KDF)"
        )


def jwt_decode(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """jwt.decode() with the signature check off or the 'none' algorithm allowed."""
    if not an.qualified_name(call.func).startswith("jwt."):
        return
    opts = keyword_arg(call, "options")
    bad = is_false(keyword_arg(call, "verify"))
    if isinstance(opts, ast.Dict):
        for k, val in zip(opts.keys, opts.values):
            if const_str(k) == "verify_signature" and is_false(val):
                bad = True
    algs = keyword_arg(call, "algorithms")
    if isinstance(algs, (ast.List, ast.Tuple)) and any((const_str(e) or "").lower() == "none" for e in algs.elts):
        bad = True
    if bad:
        an.report("EM-JWT-NO-VERIFY", "CWE-347", call, "JWT decoded without signature verification")
