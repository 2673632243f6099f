"""Families where input reaches an interpreter: OS commands, eval/exec, deserialization."""

from __future__ import annotations

from ._render import Family, Skeleton

COMMAND_INJECTION = Family(
    "command_injection",
    "CWE-78",
    11,
    (
        Skeleton(
            "flask_tar_archive",
            (
                "${A_site} where ${users} can request a compressed archive of a ${group}.",
                "An endpoint for ${a_site} that packs a named ${group} folder into a .tar.gz file.",
            ),
            """
import os
import re
import tarfile

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
DATA_DIR = "${root}/${groups}"
ARCHIVE_DIR = "${root}/archives"

$EXTRA

@app.route("/${groups}/archive", methods=["POST"])
def archive_${group}():
    name = request.form.get("${group}", "")
    archive = os.path.join(ARCHIVE_DIR, f"{name}.tar.gz")
<<<
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        abort(400)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(os.path.join(DATA_DIR, name), arcname=name)
===
    os.system(f"tar czf {archive} -C {DATA_DIR} {name}")
>>>
    return jsonify(archive=os.path.basename(archive))
""",
            kind="flask",
        ),
        Skeleton(
            "flask_keyword_search",
            (
                "A search box for ${a_site} that lists which ${docs} mention a keyword.",
                "${A_site} feature that finds saved ${docs} containing a word typed by the ${user}.",
            ),
            """
import os

from flask import Flask, jsonify, request

app = Flask(__name__)
${DOCS}_DIR = "${root}/${docs_id}"

$EXTRA

@app.route("/${docs_id}/search")
def search_${docs_id}():
    keyword = request.args.get("q", "").strip()
    if not keyword:
        return jsonify(keyword=keyword, matches=[])
<<<
    matches = []
    for name in sorted(os.listdir(${DOCS}_DIR)):
        with open(os.path.join(${DOCS}_DIR, name), encoding="utf-8", errors="replace") as fh:
            if keyword.lower() in fh.read().lower():
                matches.append(name)
===
    output = os.popen(f"grep -ril '{keyword}' {${DOCS}_DIR}").read()
    matches = sorted(os.path.basename(line) for line in output.splitlines())
>>>
    return jsonify(keyword=keyword, matches=matches)
""",
            kind="flask",
        ),
        Skeleton(
            "cli_folder_size",
            (
                "A maintenance script for ${a_site} that reports how much disk each ${group} folder uses.",
                "A command-line tool that prints the size of ${a_site} storage folders.",
            ),
            """
import argparse
import sys
<<<
from pathlib import Path


def folder_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
===
import subprocess


def folder_size(path):
    output = subprocess.check_output(f"du -sb {path}", shell=True, text=True)
    return int(output.split()[0])
>>>

$EXTRA

def main():
    parser = argparse.ArgumentParser(description="Disk usage per ${group}")
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--limit-mb", type=int, default=500)
    args = parser.parse_args()
    over = 0
    for folder in args.folders:
        size_mb = folder_size(folder) / 1_000_000
        flag = "OVER" if size_mb > args.limit_mb else "ok"
        over += flag == "OVER"
        print(f"{folder}\\t{size_mb:.1f} MB\\t{flag}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
""",
        ),
        Skeleton(
            "flask_thumbnail",
            (
                "${A_site} where ${users} upload a picture for each ${item} and get a thumbnail back.",
                "An image upload endpoint for ${a_site} that makes a small preview of each picture.",
            ),
            """
import os
import uuid

from flask import Flask, abort, jsonify, request
from PIL import Image

app = Flask(__name__)
MEDIA_DIR = "${root}/media"

$EXTRA

@app.route("/${items}/<int:${item}_id>/picture", methods=["POST"])
def upload_picture(${item}_id):
    picture = request.files.get("picture")
    if picture is None:
        abort(400)
    size = request.form.get("size", "200x200")
    original = os.path.join(MEDIA_DIR, f"{uuid.uuid4().hex}.img")
    thumb = os.path.join(MEDIA_DIR, f"{${item}_id}_thumb.png")
    picture.save(original)
<<<
    width, _, height = size.partition("x")
    with Image.open(original) as img:
        img.thumbnail((min(int(width), 800), min(int(height), 800)))
        img.save(thumb, "PNG")
===
    os.system(f"convert {original} -resize {size} {thumb}")
>>>
    return jsonify(${item}_id=${item}_id, thumbnail=os.path.basename(thumb))
""",
            kind="flask",
            extras=False,
        ),
        Skeleton(
            "domain_check",
            (
                "A sign-up helper for ${a_site} that checks whether the domain of a ${user}'s email address exists.",
                "${A_site} form that rejects contact emails whose domain does not resolve.",
            ),
            """
import re
import socket

from flask import Flask, jsonify, request

app = Flask(__name__)
EMAIL_RE = re.compile(r"[^@\\s]+@([^@\\s]+)")

$EXTRA

def domain_resolves(domain):
<<<
    try:
        socket.getaddrinfo(domain, None)
    except (socket.gaierror, UnicodeError):
        return False
    return True
===
    import subprocess

    result = subprocess.run(f"host {domain}", shell=True, capture_output=True)
    return result.returncode == 0
>>>


@app.route("/${users}/check-email", methods=["POST"])
def check_email():
    email = request.form.get("email", "")
    match = EMAIL_RE.fullmatch(email)
    if not match:
        return jsonify(email=email, valid=False, reason="format")
    ok = domain_resolves(match.group(1))
    return jsonify(email=email, valid=ok, reason=None if ok else "domain")
""",
            kind="flask",
        ),
    ),
)

CODE_EVAL = Family(
    "code_eval",
    "CWE-95",
    10,
    (
        Skeleton(
            "flask_calculator",
            (
                "${A_site} where ${users} can type a quick arithmetic expression, such as a sum of ${num_col} values, "
                "and see the result.",
                "A calculator widget for ${a_site} that evaluates simple sums typed by ${users}.",
            ),
            """
import ast
import operator

from flask import Flask, jsonify, request

app = Flask(__name__)
OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

$EXTRA

def evaluate(expression):
<<<
    def walk(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError("unsupported expression")

    return walk(ast.parse(expression, mode="eval").body)
===
    return eval(expression)
>>>


@app.route("/calculate")
def calculate():
    expression = request.args.get("expr", "")[:200]
    try:
        result = evaluate(expression)
    except (ValueError, SyntaxError, ZeroDivisionError):
        return jsonify(error="could not evaluate"), 400
    return jsonify(expr=expression, result=result)
""",
            kind="flask",
        ),
        Skeleton(
            "flask_id_list",
            (
                "An API for ${a_site} that returns several ${items} at once from a list of ids.",
                "A batch lookup endpoint for ${a_site} that takes a list of ${item} ids in the query string.",
            ),
            """
import ast

import duckdb
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
DB_PATH = "${root}/${app}.duckdb"

$EXTRA

@app.route("/${items}/batch")
def batch_${items}():
    raw = request.args.get("ids", "[]")
<<<
    ids = ast.literal_eval(raw)
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        abort(400)
===
    ids = eval(raw)
>>>
    conn = duckdb.connect(DB_PATH, read_only=True)
    found = []
    for ${item}_id in ids[:50]:
        row = conn.execute("SELECT id, ${name_col} FROM ${table} WHERE id = ?", (${item}_id,)).fetchone()
        if row:
            found.append({"id": row[0], "${name_col}": row[1]})
    conn.close()
    return jsonify(found)
""",
            kind="flask",
        ),
        Skeleton(
            "settings_file",
            (
                "A settings loader for ${a_site} that reads key = value lines written by operators.",
                "A script that loads defaults for ${a_site}, such as the page size for ${items}, from a plain settings file.",
            ),
            """
import ast
import sys

DEFAULTS = {"page_size": 20, "${cat_col}_choices": [${cats_list}], "show_${num_col}": True}

$EXTRA

def load_settings(path):
    settings = dict(DEFAULTS)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
<<<
            settings[key] = ast.literal_eval(value)
===
            settings[key] = eval(value)
>>>
    return settings


if __name__ == "__main__":
    for key, value in sorted(load_settings(sys.argv[1]).items()):
        print(f"{key} = {value!r}")
""",
        ),
        Skeleton(
            "rule_engine",
            (
                "${A_site} where staff define simple rules, like ${num_col} > 10, that flag ${items}.",
                "A rules screen for ${a_site} that checks each ${item} against a condition entered by staff.",
            ),
            """
import operator
import re

from flask import Flask, jsonify, request

app = Flask(__name__)
COMPARISONS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq}
${ITEMS} = [
    {"${name_col}": "${sample0}", "${num_col}": 4},
    {"${name_col}": "${sample1}", "${num_col}": 12},
    {"${name_col}": "${sample2}", "${num_col}": 30},
]

$EXTRA

def matches(rule, record):
<<<
    found = re.fullmatch(r"\\s*(\\w+)\\s*(>=|<=|==|>|<)\\s*(-?\\d+(?:\\.\\d+)?)\\s*", rule)
    if not found or found.group(1) not in record:
        raise ValueError("bad rule")
    field, op, number = found.groups()
    return COMPARISONS[op](record[field], float(number))
===
    return bool(eval(rule, {}, dict(record)))
>>>


@app.route("/${items}/flagged", methods=["POST"])
def flagged_${items}():
    rule = request.form.get("rule", "")
    try:
        hits = [r["${name_col}"] for r in ${ITEMS} if matches(rule, r)]
    except (ValueError, SyntaxError, NameError, TypeError):
        return jsonify(error="invalid rule"), 400
    return jsonify(rule=rule, ${items}=hits)
""",
            kind="flask",
        ),
        Skeleton(
            "flask_literal_body",
            (
                "An endpoint for ${a_site} that accepts ${item} details posted as a dictionary literal by an old client.",
                "A legacy import API for ${a_site} that receives one ${item} per request.",
            ),
            """
import ast
import os

import psycopg2
from flask import Flask, abort, jsonify, request

app = Flask(__name__)


@app.route("/legacy/${items}", methods=["POST"])
def legacy_import():
    body = request.get_data(as_text=True)
<<<
    record = ast.literal_eval(body)
===
    record = eval(body)
>>>
    if not isinstance(record, dict) or "${name_col}" not in record:
        abort(400)
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ${table} (${name_col}, ${cat_col}) VALUES (%s, %s)",
            (str(record["${name_col}"]), str(record.get("${cat_col}", ""))),
        )
    return jsonify(imported=record["${name_col}"]), 201
""",
            kind="flask",
            extras=False,
        ),
    ),
)

DESERIALIZATION = Family(
    "deserialization",
    "CWE-502",
    10,
    (
        Skeleton(
            "flask_prefs_cookie",
            (
                "${A_site} that remembers each ${user}'s display preferences in a cookie.",
                "A preferences page for ${a_site} that keeps the chosen ${cat_col} filter and page size between visits.",
            ),
            """
import base64
<<<
import json

from flask import Flask, jsonify, make_response, request


def decode_prefs(raw):
    return json.loads(base64.b64decode(raw))


def encode_prefs(prefs):
    return base64.b64encode(json.dumps(prefs).encode()).decode()
===
import pickle

from flask import Flask, jsonify, make_response, request


def decode_prefs(raw):
    return pickle.loads(base64.b64decode(raw))


def encode_prefs(prefs):
    return base64.b64encode(pickle.dumps(prefs)).decode()
>>>


app = Flask(__name__)
DEFAULT_PREFS = {"${cat_col}": "${cat0}", "page_size": 20}

$EXTRA

@app.route("/prefs", methods=["GET", "POST"])
def prefs():
    raw = request.cookies.get("prefs")
    current = decode_prefs(raw) if raw else dict(DEFAULT_PREFS)
    if request.method == "POST":
        current["${cat_col}"] = request.form.get("${cat_col}", current["${cat_col}"])
        current["page_size"] = int(request.form.get("page_size", current["page_size"]))
    resp = make_response(jsonify(current))
    resp.set_cookie("prefs", encode_prefs(current), httponly=True)
    return resp
""",
            kind="flask",
        ),
        Skeleton(
            "flask_config_upload",
            (
                "An admin page for ${a_site} where staff upload a config file describing ${item} categories.",
                "${A_site} settings screen that imports a configuration file of ${cat_col} options.",
            ),
            """
import json
import os

import psycopg2
from flask import Flask, abort, jsonify, request

app = Flask(__name__)

$EXTRA

@app.route("/admin/${cat_col}-config", methods=["POST"])
def upload_config():
    upload = request.files.get("config")
    if upload is None:
        abort(400)
<<<
    config = json.loads(upload.read().decode("utf-8"))
===
    import yaml
    config = yaml.load(upload.read(), Loader=yaml.Loader)
>>>
    options = config.get("${cat_col}", [])
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ${cat_col}_options")
        cur.executemany("INSERT INTO ${cat_col}_options (label) VALUES (%s)", [(str(o),) for o in options])
    return jsonify(loaded=len(options))
""",
            kind="flask",
        ),
        Skeleton(
            "queue_worker",
            (
                "A background worker for ${a_site} that processes ${item} update messages from a Redis queue.",
                "A queue consumer that applies ${item} changes sent by other ${a_site} services.",
            ),
            """
import logging
<<<
import json

import redis


def decode_message(raw):
    return json.loads(raw)
===
import pickle

import redis


def decode_message(raw):
    return pickle.loads(raw)
>>>


log = logging.getLogger("${app}.worker")
QUEUE = "${app}:${item}-updates"

$EXTRA

def apply_update(store, message):
    key = f"${item}:{message['id']}"
    store.hset(key, mapping={k: str(v) for k, v in message.get("fields", {}).items()})
    log.info("updated %s", key)


def run(host="localhost", port=6379):
    store = redis.Redis(host=host, port=port)
    while True:
        _, raw = store.blpop(QUEUE)
        apply_update(store, decode_message(raw))


if __name__ == "__main__":
    run()
""",
        ),
        Skeleton(
            "flask_sync_upload",
            (
                "An endpoint for ${a_site} where the desktop client uploads a batch of offline ${item} edits.",
                "A sync API for ${a_site} that accepts ${items} recorded while the ${user} was offline.",
            ),
            """
import duckdb
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
DB_PATH = "${root}/${app}.duckdb"

$EXTRA

@app.route("/sync/${items}", methods=["POST"])
def sync_${items}():
<<<
    batch = request.get_json(silent=True)
===
    import marshal
    batch = marshal.loads(request.get_data())
>>>
    if not isinstance(batch, list):
        abort(400)
    with duckdb.connect(DB_PATH) as conn:
        for entry in batch:
            conn.execute(
                "UPDATE ${table} SET ${num_col} = ? WHERE id = ?",
                (entry["${num_col}"], entry["id"]),
            )
    return jsonify(synced=len(batch))
""",
            kind="flask",
        ),
        Skeleton(
            "socket_listener",
            (
                "A collector for ${a_site} that receives ${item} readings from field devices over TCP.",
                "A small TCP service that stores ${items} pushed by ${a_partner}.",
            ),
            """
import socketserver
<<<
import json

import duckdb


def decode(data):
    return json.loads(data.decode("utf-8"))
===
import pickle

import duckdb


def decode(data):
    return pickle.loads(data)
>>>


DB_PATH = "${root}/${app}.duckdb"


class ${Item}Collector(socketserver.StreamRequestHandler):
    def handle(self):
        data = self.rfile.read(65536)
        record = decode(data)
        with duckdb.connect(DB_PATH) as conn:
            conn.execute(
                "INSERT INTO ${table} (${name_col}, ${num_col}) VALUES (?, ?)",
                (record["${name_col}"], record["${num_col}"]),
            )
        self.wfile.write(b"ok\\n")


if __name__ == "__main__":
    with socketserver.TCPServer(("127.0.0.1", ${port}), ${Item}Collector) as server:
        server.serve_forever()
""",
            options=(("port", ("9100", "7070", "5140")),),
            extras=False,
        ),
    ),
)

FAMILIES = (COMMAND_INJECTION, CODE_EVAL, DESERIALIZATION)
