"""File rules: paths from request data (traversal), guessable temp files, archive extraction
without a member check (zip/tar slip), world-writable permissions.

A function that opens the path it is given is not a vulnerability; one that opens a path from
the query string is: file paths need WEB taint.
"""

from __future__ import annotations

import ast
import re

from em_assets.labeler.nodes import call_arg, const_str, keyword_arg, last_name
from em_assets.labeler.taint import CONST, PATH, WEB, Analysis, Scope

_FILE_FUNCS = frozenset(
    {
        "open",
        "send_file",
        "FileResponse",
        "remove",
        "unlink",
        "rmtree",
        "copy",
        "copyfile",
        "copy2",
        "copytree",
        "move",
        "listdir",
        "rmdir",
        "removedirs",
        "rename",
        "replace",
        "makedirs",
        "mkdir",
        "scandir",
        "walk",
        "save",
        "savefig",
        "to_csv",
        "write_file",
        "read_file",
        "load_workbook",
        "read_csv",
    }
)
_PATH_METHODS = frozenset(
    {"read_text", "read_bytes", "write_text", "write_bytes", "open", "unlink", "rmdir", "touch", "iterdir"}
)
_FILE_FUNC_QUALS = frozenset({"open", "io.open", "codecs.open", "os.open", "aiofiles.open", "builtins.open"})
_TMP_PREFIX_RE = re.compile(r"^(/tmp|/var/tmp|/dev/shm)(/|$)")
FILE_SINKS = _FILE_FUNCS | _PATH_METHODS
ARCHIVE_SINKS = frozenset({"extractall", "extract", "unpack_archive"})
PERMISSION_SINKS = frozenset({"chmod", "fchmod", "lchmod", "umask"})


def file_path(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """Paths from request data, fixed paths in shared temp dirs, os.open() modes."""
    func = call.func
    q = an.qualified_name(func)
    is_os = q.startswith("os.")
    # permission modes given at creation time
    if name == "open" and is_os:
        mode = an.int_value(call_arg(call, 2, "mode"))
        # 0o666 is what open() itself passes (umask applies): not a choice
        if mode is not None and mode & 0o002 and mode != 0o666:
            an.report(
                "EM-CHMOD-WORLD-WRITABLE", "CWE-732", call, f"{q}() creates a world-writable entry (mode {oct(mode)})"
            )
    # pathlib-style methods: the receiver is the path
    if name in _PATH_METHODS and isinstance(func, ast.Attribute) and q not in _FILE_FUNC_QUALS:
        if an.evaluate(sc, func.value).t[PATH] >= WEB:
            an.report("EM-PATH-TRAVERSAL", "CWE-22", call, "file path from request data used without normalisation")
        return
    if q in _FILE_FUNC_QUALS and name == "open" and not is_os:
        target = call_arg(call, 0, "file")
        mode = const_str(call_arg(call, 1, "mode")) or ""
        if target is not None and any(c in mode for c in "wax+"):
            tv = an.evaluate(sc, target)
            if tv.prefix and _TMP_PREFIX_RE.match(tv.prefix):
                an.report(
                    "EM-PREDICTABLE-TEMPFILE",
                    "CWE-377",
                    call,
                    f"writes a fixed, guessable path in a shared temp dir ({tv.prefix}...): symlink/race attacks",
                )
    if name == "save" or name in ("savefig", "to_csv", "to_excel", "write_file"):
        args = [call_arg(call, 0, "dst") or keyword_arg(call, "filename") or keyword_arg(call, "path")]
    elif q in _FILE_FUNC_QUALS or name in ("send_file", "FileResponse", "read_csv", "load_workbook", "read_file"):
        args = [call_arg(call, 0, "file") or keyword_arg(call, "path_or_file") or keyword_arg(call, "name")]
    elif (is_os or q.startswith(("shutil.", "pathlib."))) and name in _FILE_FUNCS:
        args = [call_arg(call, 0, "src") or keyword_arg(call, "path"), call_arg(call, 1, "dst")]
    else:
        return
    for a in args:
        if a is not None and an.evaluate(sc, a).t[PATH] >= WEB:
            an.report(
                "EM-PATH-TRAVERSAL", "CWE-22", call, f"file path from request data reaches {q}() without normalisation"
            )
            return


def archive_extract(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """Extracting a tar/zip archive without checking its members' names."""
    func = call.func
    if name == "unpack_archive":
        if "shutil" in an.qualified_name(func) and keyword_arg(call, "filter") is None:
            an.report(
                "EM-TAR-EXTRACT", "CWE-22", call, "shutil.unpack_archive() without filter= (archive path traversal)"
            )
        return
    if not isinstance(func, ast.Attribute):
        return
    recv = func.value
    kind = ""
    if isinstance(recv, ast.Name):
        kind = sc.kind(recv.id) or ""
    elif isinstance(recv, ast.Call):
        kind = an.qualified_name(recv.func)
    is_zip = "zip" in kind.lower()
    is_tar = "tar" in kind.lower()
    if not is_zip and not is_tar:
        if "tarfile" in an.modules:
            is_tar = True
        elif "zipfile" in an.modules:
            is_zip = True
        else:
            return
    if isinstance(recv, ast.Name) and _inspects_members(an, sc, recv.id):
        return
    if is_tar:
        flt = keyword_arg(call, "filter")
        if flt is not None:
            if const_str(flt) in (None, "data", "tar"):
                return
        elif keyword_arg(call, "members") is not None:
            return
        if name == "extract":
            member = call_arg(call, 0, "member")
            if member is not None and an.evaluate(sc, member).t[PATH] == CONST:
                return
            if isinstance(member, ast.Name) and _guarded_member(sc, member.id):
                return
        an.report(
            "EM-TAR-EXTRACT",
            "CWE-22",
            call,
            f"tarfile {name}() without a member filter (path traversal / links out of the target directory)",
        )
    elif name == "extractall" and keyword_arg(call, "members") is None:
        an.report("EM-ZIP-EXTRACT", "CWE-22", call, "zipfile extractall() of an archive without inspecting its members")


def _inspects_members(an: Analysis, sc: Scope, archive: str) -> bool:
    """The scope lists the archive's members and tests their names for traversal."""
    body = sc.func if sc.func is not None else an.tree
    lists = checks = False
    for node in ast.walk(body):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("namelist", "infolist", "getmembers", "getnames")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == archive
        ):
            lists = True
        elif isinstance(node, (ast.If, ast.Assert, ast.IfExp)):
            for sub in ast.walk(node.test):
                if (
                    isinstance(sub, ast.Constant)
                    and isinstance(sub.value, str)
                    and (".." in sub.value or sub.value.startswith("/"))
                ) or (
                    isinstance(sub, ast.Call)
                    and last_name(sub.func)
                    in (
                        "isabs",
                        "startswith",
                        "realpath",
                        "abspath",
                        "commonpath",
                        "is_relative_to",
                        "resolve",
                        "normpath",
                        "issym",
                        "islnk",
                    )
                ):
                    checks = True
    return lists and checks


def _guarded_member(sc: Scope, name: str) -> bool:
    v = sc.lookup(name)
    return v is not None and v.t[PATH] == CONST


def permission_mode(an: Analysis, sc: Scope, call: ast.Call, name: str) -> None:
    """chmod()/umask() that make files world-writable."""
    if name == "umask":
        mask = an.int_value(call_arg(call, 0, "mask"))
        if mask is not None and not mask & 0o002:
            an.report("EM-CHMOD-WORLD-WRITABLE", "CWE-732", call, f"umask({oct(mask)}) makes new files world-writable")
        return
    if an.qualified_name(call.func).startswith("os.") or len(call.args) >= 2:
        mode_node = call_arg(call, 1, "mode")
    else:  # Path.chmod(mode)
        mode_node = call_arg(call, 0, "mode")
    mode = an.int_value(mode_node)
    if mode is not None and mode & 0o002:
        an.report("EM-CHMOD-WORLD-WRITABLE", "CWE-732", call, f"chmod to world-writable mode {oct(mode)}")
