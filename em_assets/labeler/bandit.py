"""Bandit, as a library: the tests the labeler counts, run over an already parsed snippet.

One ``BanditTestSet`` holding only the counted tests is built once per process; each snippet is
walked by a fresh ``BanditNodeVisitor`` (no subprocess, no temp file, no config/plugin loading
per call, ``# nosec`` ignored so model-written code cannot silence it). Snippets that contain
none of the names a counted test looks for skip bandit (:data:`TRIGGER_RE`, speed only).
"""

from __future__ import annotations

import ast
import functools
import io
import logging
import re

from em_assets.labeler.taint import RawFinding

# Bandit tests that count as "vulnerable", and why. Everything else bandit knows is left out:
#   B101 assert, B110/B112 try-except-pass/continue, B113 no timeout, B311 random, B401-B415
#   imports, B404/B603/B606/B607 subprocess without shell: style or noise, they fire on the
#   paper's *secure* rows (imports of pickle, asserts);
#   B201 flask debug, B310 urlopen, B313-B320 stdlib XML parsers on any input (no external
#   entities since 3.7.1), B321 ftp, B601 paramiko, B604 shell=True anywhere, B615 HF downloads:
#   configuration or context-free noise;
#   B103 chmod, B104 0.0.0.0, B105-B107 passwords, B108 /tmp, B202 tarfile, B324 md5/sha1,
#   B506 yaml.load, B602/B605 shell, B608 SQL strings, B308/B703/B704 markup: replaced by AST
#   rules that know the fix or the context (filter="data", SafeLoader, shlex.quote, escape(),
#   constant table names, password-like data, world-writable only, bind/host arguments only,
#   written /tmp paths only, real-looking secrets only).
BANDIT_COUNTED: dict[str, str] = {
    "B102": "exec() of code",
    "B301": "pickle/dill/shelve/jsonpickle deserialisation",
    "B302": "marshal deserialisation",
    "B304": "broken cipher (DES, RC4, Blowfish, ...)",
    "B305": "ECB cipher mode",
    "B306": "tempfile.mktemp race",
    "B307": "eval()",
    "B323": "ssl._create_unverified_context",
    "B501": "requests/httpx verify=False",
    "B502": "SSL/TLS with a broken protocol version",
    "B503": "SSL/TLS default with a broken protocol version",
    "B504": "SSL/TLS without a protocol version",
    "B505": "weak RSA/DSA/EC key size",
    "B507": "paramiko accepts unknown host keys",
    "B508": "SNMPv1/2 (no security)",
    "B509": "SNMPv3 without auth/priv",
    "B609": "wildcard injection in shell command",
    "B610": "Django QuerySet.extra",
    "B611": "Django RawSQL",
    "B612": "logging.config.listen",
    "B614": "torch.load without weights_only",
    "B701": "jinja2 Environment with autoescape off",
    "B702": "Mako templates (no autoescape)",
}


# A counted bandit test can only fire if one of these names occurs in the source (bandit resolves
# calls through the module's imports, so the module name is in the text even when aliased).
# Snippets with none of them skip bandit: a speed-up only, see tests/core/test_labeler.py.
TRIGGER_RE = re.compile(
    r"\bexec\s*\(|\beval\b|pickle|dill|shelve|marshal|torch|"  # B102 B307 B301 B302 B614
    r"Cipher|algorithms|ARC[24]|Blowfish|DES|IDEA|CAST5|SEED|XOR|ECB|"  # B304 B305
    r"mktemp|_create_unverified_context|verify|ssl|SSL|PROTOCOL|"  # B306 B323 B501-B504
    r"generate|Policy|CommunityData|UsmUserData|"  # B505 B507 B508 B509
    r"\b(?:chown|chmod|tar|rsync)\b|\bextra\b|RawSQL|listen|jinja2|mako"  # B609-B612 B701 B702
)

COUNTED_IDS = frozenset(BANDIT_COUNTED)


@functools.lru_cache(maxsize=4)
def _testset(ids: frozenset[str] | None):
    """Build a BanditTestSet once (plugin discovery is the slow part of bandit)."""
    from bandit.core import blacklisting
    from bandit.core import config as b_config
    from bandit.core import test_set as b_test_set

    logging.getLogger("bandit").setLevel(logging.ERROR)
    profile = {"include": sorted(ids)} if ids else {}
    testset = b_test_set.BanditTestSet(b_config.BanditConfig(), profile=profile)
    # Bandit keeps the blacklist selection on the module-level `blacklist` function, so a second
    # test set (the benchmark builds "all tests" too) would overwrite this one's. Bind a copy.
    shared = blacklisting.blacklist
    own_config = dict(getattr(shared, "_config", None) or {})

    def blacklist(context, config=None):
        return shared(context, own_config)

    blacklist._test_id = "B001"
    blacklist._config = own_config
    for check, tests in testset.tests.items():
        testset.tests[check] = [
            blacklist if t is shared else t for t in tests if t is not shared or check in own_config
        ]
    return testset


def run(tree: ast.Module, code: str, ids: frozenset[str] | None) -> list[RawFinding]:
    """Bandit's findings for the snippet, with the tests `ids` (None: every test bandit has)."""
    from bandit.core import meta_ast, metrics, node_visitor

    visitor = node_visitor.BanditNodeVisitor(
        "/snippet.py",  # a path with no package dirs: no filesystem look-ups
        io.BytesIO(code.encode("utf-8", "replace")),
        meta_ast.BanditMetaAst(),
        _testset(ids),
        False,
        {},  # nosec lines: ignored on purpose
        metrics.Metrics(),
    )
    visitor.generic_visit(tree)
    return [(i.test_id, _cwe(i), int(i.lineno or 0), i.text) for i in visitor.tester.results]


# bandit's CWE where a more precise one exists
_CWE_OVERRIDE = {"B102": "CWE-95", "B307": "CWE-95", "B701": "CWE-79", "B702": "CWE-79"}


def _cwe(issue) -> str:
    if issue.test_id in _CWE_OVERRIDE:
        return _CWE_OVERRIDE[issue.test_id]
    cwe = getattr(issue, "cwe", None)
    cid = getattr(cwe, "id", 0) if cwe is not None else 0
    return f"CWE-{cid}" if cid else ""
