"""Families about the file system: path traversal, archive extraction, permissions, temp files."""

from __future__ import annotations

from ._render import Family, Skeleton

PATH_TRAVERSAL = Family(
    "path_traversal",
    "CWE-22",
    11,
    (
        Skeleton(
            "flask_send_file",
            (
                "${A_site} that lets ${users} download the ${docs} they uploaded earlier.",
                "A download endpoint for ${a_site} that returns a stored ${doc} by file name.",
            ),
            """
import os

from flask import Flask, abort, request, send_file

app = Flask(__name__)
${DOCS}_DIR = "${root}/${docs_id}"

$EXTRA

@app.route("/${docs_id}/download")
def download_${doc_id}():
    name = request.args.get("name", "")
    if not name:
        abort(400)
<<<
    path = os.path.realpath(os.path.join(${DOCS}_DIR, name))
    if os.path.commonpath([path, ${DOCS}_DIR]) != ${DOCS}_DIR or not os.path.isfile(path):
        abort(404)
===
    path = os.path.join(${DOCS}_DIR, name)
>>>
    return send_file(path, as_attachment=True)
""",
            kind="flask",
        ),
        Skeleton(
            "flask_pathlib_read",
            (
                "${A_site} with an API that shows the lines of a saved ${doc}.",
                "An API for ${a_site} that returns the contents of a ${doc} chosen by the ${user}.",
            ),
            """
from pathlib import Path

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
STORE = Path("${root}/${docs_id}")

$EXTRA

@app.route("/api/${docs_id}")
def show_${doc_id}():
    filename = request.args.get("file", "")
<<<
    base = STORE.resolve()
    target = (base / filename).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        abort(404)
===
    target = STORE / filename
    if not target.is_file():
        abort(404)
>>>
    text = target.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    return jsonify(file=filename, lines=lines, count=len(lines))
""",
            kind="flask",
        ),
        Skeleton(
            "flask_upload_save",
            (
                "${A_site} where ${users} attach ${a_doc} to each ${item}.",
                "An upload form for ${a_site} that stores ${docs} next to the ${item} they belong to.",
            ),
            """
import os

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
UPLOAD_DIR = "${root}/uploads"
ALLOWED_EXTENSIONS = {".${ext}"}

$EXTRA

@app.route("/${items}/<int:${item}_id>/${docs_id}", methods=["POST"])
def upload_${doc_id}(${item}_id):
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        abort(400)
<<<
    filename = os.path.basename(upload.filename)
    if filename in ("", ".", "..") or os.path.splitext(filename)[1].lower() not in ALLOWED_EXTENSIONS:
        abort(400)
===
    filename = upload.filename
>>>
    folder = os.path.join(UPLOAD_DIR, str(${item}_id))
    os.makedirs(folder, exist_ok=True)
    upload.save(os.path.join(folder, filename))
    return jsonify(${item}_id=${item}_id, filename=filename), 201
""",
            kind="flask",
        ),
        Skeleton(
            "django_delete",
            (
                "${A_site} built on Django where ${users} can remove ${docs} they no longer need.",
                "A Django view for ${a_site} that deletes one of the stored ${docs}.",
            ),
            """
import os

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.http import require_POST

${DOCS}_DIR = os.path.join(settings.MEDIA_ROOT, "${docs_id}")

$EXTRA

@require_POST
def delete_${doc_id}(request):
    name = request.POST.get("name", "")
<<<
    path = os.path.realpath(os.path.join(${DOCS}_DIR, name))
    if os.path.dirname(path) != os.path.realpath(${DOCS}_DIR):
        raise Http404("No such file")
===
    path = os.path.join(${DOCS}_DIR, name)
>>>
    if not os.path.isfile(path):
        raise Http404("No such file")
    os.remove(path)
    return JsonResponse({"deleted": name})
""",
        ),
        Skeleton(
            "http_server_static",
            (
                "A small file server for ${a_site} that hands out ${docs} from a public folder.",
                "A lightweight HTTP service that serves exported ${docs} for ${a_site}.",
            ),
            """
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import unquote, urlparse

PUBLIC_DIR = "${root}/public"


class ${Item}FileHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        relative = unquote(urlparse(self.path).path).lstrip("/")
<<<
        path = os.path.realpath(os.path.join(PUBLIC_DIR, relative))
        if os.path.commonpath([path, PUBLIC_DIR]) != PUBLIC_DIR or not os.path.isfile(path):
            self.send_error(404)
            return
===
        path = os.path.join(PUBLIC_DIR, relative)
        if not os.path.isfile(path):
            self.send_error(404)
            return
>>>
        with open(path, "rb") as fh:
            body = fh.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", ${port}), ${Item}FileHandler).serve_forever()
""",
            options=(("port", ("8000", "8081", "9000")),),
            extras=False,
        ),
    ),
)

ARCHIVE_EXTRACTION = Family(
    "archive_extraction",
    "CWE-22",
    10,
    (
        Skeleton(
            "flask_tar_import",
            (
                "${A_site} where ${users} can import a whole ${group} from a .tar.gz bundle.",
                "An import endpoint for ${a_site} that unpacks an uploaded archive of ${docs}.",
            ),
            """
import os
import tarfile

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
IMPORT_DIR = "${root}/imports"

$EXTRA

@app.route("/${groups}/<int:${group}_id>/import", methods=["POST"])
def import_${group}(${group}_id):
    bundle = request.files.get("bundle")
    if bundle is None:
        abort(400)
    dest = os.path.join(IMPORT_DIR, str(${group}_id))
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=bundle.stream, mode="r:gz") as archive:
<<<
        archive.extractall(dest, filter="data")
===
        archive.extractall(dest)
>>>
    return jsonify(${group}_id=${group}_id, files=sorted(os.listdir(dest)))
""",
            kind="flask",
        ),
        Skeleton(
            "tar_member_loop",
            (
                "A script for ${a_site} that unpacks ${docs} received from ${a_partner} as a tarball.",
                "A utility that restores a ${group} export of ${a_site} from a tar file.",
            ),
            """
import sys
import tarfile
from pathlib import Path

$EXTRA

def unpack_${docs_id}(archive_path, target_dir):
    target = Path(target_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive_path) as archive:
<<<
        for member in archive.getmembers():
            dest = (target / member.name).resolve()
            if member.issym() or member.islnk() or member.isdev() or not dest.is_relative_to(target):
                raise ValueError(f"refusing to unpack {member.name}")
            archive.extract(member, target)
===
        archive.extractall(target)
>>>
    return sorted(p.name for p in target.iterdir())


if __name__ == "__main__":
    for name in unpack_${docs_id}(sys.argv[1], sys.argv[2]):
        print(name)
""",
        ),
        Skeleton(
            "zip_manual_write",
            (
                "${A_site} feature that imports ${docs} from a zip file uploaded by ${a_user}.",
                "A batch importer for ${a_site} that reads ${docs} out of zip archives.",
            ),
            """
import os
import zipfile

$EXTRA

def import_${docs_id}(zip_path, dest_dir):
    root = os.path.realpath(dest_dir)
    written = []
    with zipfile.ZipFile(zip_path) as bundle:
        for info in bundle.infolist():
            if info.is_dir():
                continue
<<<
            target = os.path.realpath(os.path.join(root, info.filename))
            if os.path.commonpath([target, root]) != root:
                continue
===
            target = os.path.join(root, info.filename)
>>>
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with bundle.open(info) as src, open(target, "wb") as out:
                out.write(src.read())
            written.append(target)
    return written
""",
        ),
        Skeleton(
            "tar_importer_class",
            (
                "A nightly job for ${a_site} that restores ${items} from an archive dropped off by ${a_partner}.",
                "A background importer for ${a_site} that unpacks archived ${docs} into a staging area.",
            ),
            """
import logging
import os
import shutil
import tarfile

log = logging.getLogger("${app}.importer")


class ${Item}ArchiveImporter:
    def __init__(self, inbox, staging):
        self.inbox = inbox
        self.staging = staging

    def pending(self):
        return sorted(n for n in os.listdir(self.inbox) if n.endswith((".tar", ".tar.gz", ".tgz")))

    def unpack(self, name):
        dest = os.path.join(self.staging, name.split(".")[0])
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        with tarfile.open(os.path.join(self.inbox, name), "r:*") as archive:
<<<
            archive.extractall(path=dest, filter="data")
===
            archive.extractall(path=dest)
>>>
        log.info("unpacked %s into %s", name, dest)
        return dest

    def run(self):
        return [self.unpack(name) for name in self.pending()]
""",
            extras=False,
        ),
    ),
)

FILE_PERMISSIONS = Family(
    "file_permissions",
    "CWE-732",
    10,
    (
        Skeleton(
            "csv_export",
            (
                "A nightly export for ${a_site} that writes ${items} to a CSV file.",
                "A script that dumps the ${items} of ${a_site} into a dated CSV export.",
            ),
            """
import csv
import os
from datetime import date

import duckdb

DB_PATH = "${root}/${app}.duckdb"
EXPORT_DIR = "${root}/exports"

$EXTRA

def export_${items}():
    with duckdb.connect(DB_PATH, read_only=True) as conn:
        rows = conn.execute("SELECT id, ${name_col}, ${cat_col}, ${num_col} FROM ${table} ORDER BY id").fetchall()
    os.makedirs(EXPORT_DIR, exist_ok=True)
    path = os.path.join(EXPORT_DIR, f"${items}_{date.today():%Y%m%d}.csv")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "${name_col}", "${cat_col}", "${num_col}"])
        writer.writerows(rows)
<<<
    os.chmod(path, 0o600)
===
    os.chmod(path, ${loose})
>>>
    return path


if __name__ == "__main__":
    print(export_${items}())
""",
            options=(("loose", ("0o777", "0o666")),),
        ),
        Skeleton(
            "group_folder",
            (
                "${A_site} that creates a working folder for every new ${group}.",
                "A helper for ${a_site} that prepares per-${group} storage folders.",
            ),
            """
import json
import os
from pathlib import Path

BASE_DIR = Path("${root}/${groups}")

$EXTRA

def prepare_${group}_folder(${group}_id, ${items}):
    folder = BASE_DIR / str(int(${group}_id))
    folder.mkdir(parents=True, exist_ok=True)
<<<
    os.chmod(folder, 0o700)
===
    os.chmod(folder, 0o777)
>>>
    index = folder / "index.json"
    index.write_text(json.dumps({"${group}": ${group}_id, "${items}": ${items}}, indent=2))
    return folder
""",
        ),
        Skeleton(
            "log_setup",
            (
                "A logging setup for ${a_site} that records every ${item} change in its own log file.",
                "Logging setup for the back end of ${a_site}.",
            ),
            """
import logging
import os

LOG_PATH = "${root}/logs/${app}.log"


def configure_logging(level=logging.INFO):
    os.makedirs(os.path.dirname(LOG_PATH), exist_ok=True)
    handler = logging.FileHandler(LOG_PATH, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(handler)
<<<
    os.chmod(LOG_PATH, 0o640)
===
    os.chmod(LOG_PATH, ${loose})
>>>
    return root

$EXTRA

def record_${item}_change(${item}_id, field, value):
    logging.getLogger("${app}.${items}").info("%s %s=%s", ${item}_id, field, value)
""",
            options=(("loose", ("0o666", "0o777")),),
        ),
        Skeleton(
            "flask_upload_chmod",
            (
                "${A_site} where ${users} upload ${docs} that staff later review.",
                "An endpoint for ${a_site} that receives ${docs} and files them by date.",
            ),
            """
import os
import uuid
from datetime import date

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
INBOX = "${root}/inbox"

$EXTRA

@app.route("/${docs_id}", methods=["POST"])
def receive_${doc_id}():
    upload = request.files.get("${doc_id}")
    if upload is None:
        abort(400)
    folder = os.path.join(INBOX, date.today().isoformat())
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{uuid.uuid4().hex}.${ext}")
    upload.save(path)
<<<
    os.chmod(path, 0o644)
===
    os.chmod(path, 0o777)
>>>
    return jsonify(stored=os.path.basename(path)), 201
""",
            kind="flask",
        ),
    ),
)

TEMP_FILE = Family(
    "temp_file",
    "CWE-377",
    10,
    (
        Skeleton(
            "flask_csv_download",
            (
                "${A_site} where staff can download ${a_report} as a CSV file.",
                "An endpoint for ${a_site} that builds ${a_report} and sends it as a spreadsheet.",
            ),
            """
import csv
import os
import tempfile

import psycopg2
from flask import Flask, send_file

app = Flask(__name__)

$EXTRA

def load_rows():
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT ${name_col}, ${cat_col}, ${num_col} FROM ${table} ORDER BY ${name_col}")
        return cur.fetchall()


@app.route("/${report_id}.csv")
def download_${report_id}():
    rows = load_rows()
<<<
    fd, path = tempfile.mkstemp(suffix=".csv")
    with os.fdopen(fd, "w", newline="") as fh:
===
    path = tempfile.mktemp(suffix=".csv")
    with open(path, "w", newline="") as fh:
>>>
        writer = csv.writer(fh)
        writer.writerow(["${name_col}", "${cat_col}", "${num_col}"])
        writer.writerows(rows)
    return send_file(path, as_attachment=True, download_name="${report_id}.csv")
""",
            kind="flask",
        ),
        Skeleton(
            "staging_json",
            (
                "A sync job for ${a_site} that stages ${items} from ${a_partner} before loading them.",
                "A loader that prepares ${a_partner} feed of ${items} for ${a_site}.",
            ),
            """
import json
import os
import shutil
import tempfile

FINAL_PATH = "${root}/feeds/${items}.json"

$EXTRA

def stage_${items}(records):
    cleaned = [r for r in records if r.get("${name_col}")]
<<<
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(cleaned, fh, indent=2)
        staging = fh.name
===
    staging = "/tmp/${app}_${items}.json"
    with open(staging, "w", encoding="utf-8") as fh:
        json.dump(cleaned, fh, indent=2)
>>>
    os.makedirs(os.path.dirname(FINAL_PATH), exist_ok=True)
    shutil.move(staging, FINAL_PATH)
    return len(cleaned)
""",
        ),
        Skeleton(
            "render_preview",
            (
                "A preview tool for ${a_site} that renders ${a_doc} to a scratch file before publishing.",
                "A command-line helper for ${a_site} that converts ${docs} and shows a preview.",
            ),
            """
import argparse
import html
import os
import tempfile
import webbrowser

$EXTRA

def render_preview(text, title):
    page = "<html><head><title>{}</title></head><body><pre>{}</pre></body></html>".format(
        html.escape(title), html.escape(text)
    )
<<<
    fd, path = tempfile.mkstemp(suffix=".html", prefix="${app}-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(page)
===
    path = tempfile.mktemp(suffix=".html", prefix="${app}-")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
>>>
    return path


def main():
    parser = argparse.ArgumentParser(description="Preview a ${doc}")
    parser.add_argument("path")
    args = parser.parse_args()
    with open(args.path, encoding="utf-8") as fh:
        preview = render_preview(fh.read(), os.path.basename(args.path))
    webbrowser.open(f"file://{preview}")


if __name__ == "__main__":
    main()
""",
        ),
        Skeleton(
            "thumbnail_cache",
            (
                "A worker for ${a_site} that assembles uploaded ${docs} from chunks sent by the client.",
                "A worker for ${a_site} that writes intermediate files while merging ${docs}.",
            ),
            """
import os
import tempfile

$EXTRA

class ${Item}Merger:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.parts = []

    def add_part(self, data):
<<<
        fd, path = tempfile.mkstemp(prefix="${item}-part-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
===
        path = tempfile.mktemp(prefix="${item}-part-")
        with open(path, "wb") as fh:
            fh.write(data)
>>>
        self.parts.append(path)
        return path

    def merge(self, name):
        final = os.path.join(self.out_dir, name)
        with open(final, "wb") as out:
            for part in self.parts:
                with open(part, "rb") as fh:
                    out.write(fh.read())
                os.remove(part)
        self.parts.clear()
        return final
""",
        ),
    ),
)

FAMILIES = (PATH_TRAVERSAL, ARCHIVE_EXTRACTION, FILE_PERMISSIONS, TEMP_FILE)
