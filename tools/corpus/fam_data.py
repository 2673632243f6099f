"""Families about data stores and documents: SQL queries and XML parsing."""

# The skeletons are program text: a long line in one is a long line in the corpus.
# ruff: noqa: E501

from __future__ import annotations

from ._render import Family, Skeleton

SQL_INJECTION = Family(
    "sql_injection",
    "CWE-89",
    11,
    (
        Skeleton(
            "flask_filter",
            (
                "${A_site} where ${users} can browse ${items} filtered by ${cat_col}.",
                "A listing API for ${a_site} that returns the ${items} of one ${cat_col}.",
            ),
            """
import os

import psycopg2
from flask import Flask, g, jsonify, request
from psycopg2.extras import RealDictCursor

app = Flask(__name__)


def get_db():
    if "db" not in g:
        g.db = psycopg2.connect(os.environ["DATABASE_URL"], cursor_factory=RealDictCursor)
    return g.db


@app.teardown_appcontext
def close_db(exc):
    db = g.pop("db", None)
    if db is not None:
        db.close()

$EXTRA

@app.route("/${items}")
def list_${items}():
    ${cat_col} = request.args.get("${cat_col}", "")
    with get_db().cursor() as cur:
<<<
        cur.execute(
            "SELECT id, ${name_col}, ${num_col} FROM ${table} WHERE ${cat_col} = %s ORDER BY ${name_col}",
            (${cat_col},),
        )
===
        cur.execute(
            f"SELECT id, ${name_col}, ${num_col} FROM ${table} WHERE ${cat_col} = '{${cat_col}}' ORDER BY ${name_col}"
        )
>>>
        rows = cur.fetchall()
    return jsonify(rows)
""",
            kind="flask",
        ),
        Skeleton(
            "store_class_insert",
            (
                "A data access layer for ${a_site} that records new ${items}.",
                "A small repository class that saves ${items} for ${a_site}.",
            ),
            """
from datetime import datetime

import duckdb


class ${Item}Store:
    def __init__(self, path):
        self.conn = duckdb.connect(path)

    def add(self, ${name_col}, ${cat_col}, ${num_col}):
        created = datetime.now().isoformat(timespec="seconds")
<<<
        self.conn.execute(
            "INSERT INTO ${table} (${name_col}, ${cat_col}, ${num_col}, created_at) VALUES (?, ?, ?, ?)",
            (${name_col}, ${cat_col}, ${num_col}, created),
        )
===
        self.conn.execute(
            "INSERT INTO ${table} (${name_col}, ${cat_col}, ${num_col}, created_at) VALUES ('%s', '%s', %s, '%s')"
            % (${name_col}, ${cat_col}, ${num_col}, created)
        )
>>>
        self.conn.commit()

    def count(self):
        return self.conn.execute("SELECT COUNT(*) FROM ${table}").fetchone()[0]

    def close(self):
        self.conn.close()

$EXTRA
""",
        ),
        Skeleton(
            "cli_like_search",
            (
                "A command-line search tool for ${a_site} that finds ${items} by part of their ${name_col}.",
                "A terminal utility that looks up ${items} in the database of ${a_site} by a search term.",
            ),
            """
import argparse
import os

import pymysql

$EXTRA

def search(term, limit):
    conn = pymysql.connect(
        host=os.environ.get("MYSQL_HOST", "localhost"),
        user="${app}",
        password=os.environ["MYSQL_PASSWORD"],
        database="${app}",
    )
    try:
        with conn.cursor() as cursor:
<<<
            cursor.execute(
                "SELECT id, ${name_col}, ${cat_col} FROM ${table} WHERE ${name_col} LIKE %s ORDER BY id LIMIT %s",
                (f"%{term}%", limit),
            )
===
            cursor.execute(
                "SELECT id, ${name_col}, ${cat_col} FROM ${table} WHERE ${name_col} LIKE '%" + term + "%' ORDER BY id LIMIT " + str(limit)
            )
>>>
            return cursor.fetchall()
    finally:
        conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("term")
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    for row_id, ${name_col}, ${cat_col} in search(args.term, args.limit):
        print(f"{row_id:>5}  {${name_col}}  [{${cat_col}}]")
""",
        ),
        Skeleton(
            "flask_pg_update",
            (
                "${A_site} where ${users} can correct the ${num_col} recorded for one of their ${items}.",
                "An edit endpoint for ${a_site} that updates the ${num_col} of a ${item} in PostgreSQL.",
            ),
            """
import os

import psycopg2
from flask import Flask, abort, jsonify, request

app = Flask(__name__)


def connect():
    return psycopg2.connect(os.environ["DATABASE_URL"])

$EXTRA

@app.route("/${items}/<int:${item}_id>", methods=["PATCH"])
def update_${item}(${item}_id):
    value = request.json.get("${num_col}") if request.is_json else None
    if value is None:
        abort(400)
    with connect() as conn, conn.cursor() as cur:
<<<
        cur.execute("UPDATE ${table} SET ${num_col} = %s WHERE id = %s", (value, ${item}_id))
===
        cur.execute("UPDATE ${table} SET ${num_col} = {} WHERE id = {}".format(value, ${item}_id))
>>>
        updated = cur.rowcount
    if not updated:
        abort(404)
    return jsonify(id=${item}_id, ${num_col}=value)
""",
            kind="flask",
        ),
        Skeleton(
            "django_raw",
            (
                "A Django view for ${a_site} that lists ${items} belonging to one ${cat_col}.",
                "${A_site} built with Django where ${users} filter ${items} by ${cat_col}.",
            ),
            """
from django.db import connection
from django.http import JsonResponse

$EXTRA

def ${items}_by_${cat_col}(request):
    ${cat_col} = request.GET.get("${cat_col}", "")
    with connection.cursor() as cursor:
<<<
        cursor.execute(
            "SELECT id, ${name_col}, ${num_col} FROM ${table} WHERE ${cat_col} = %s ORDER BY ${name_col}",
            [${cat_col}],
        )
===
        cursor.execute(
            "SELECT id, ${name_col}, ${num_col} FROM ${table} WHERE ${cat_col} = '%s' ORDER BY ${name_col}" % ${cat_col}
        )
>>>
        rows = cursor.fetchall()
    data = [{"id": r[0], "${name_col}": r[1], "${num_col}": r[2]} for r in rows]
    return JsonResponse({"${cat_col}": ${cat_col}, "${items}": data})
""",
        ),
    ),
)

XXE = Family(
    "xxe",
    "CWE-611",
    10,
    (
        Skeleton(
            "flask_lxml_import",
            (
                "An import endpoint for ${a_site} that accepts ${items} as an XML document.",
                "${A_site} API where ${a_partner} posts ${items} in XML.",
            ),
            """
from flask import Flask, abort, jsonify, request
from lxml import etree

app = Flask(__name__)

$EXTRA

@app.route("/import/${items}", methods=["POST"])
def import_${items}():
    data = request.get_data()
    if not data:
        abort(400)
<<<
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
===
    parser = etree.XMLParser(resolve_entities=True)
>>>
    root = etree.fromstring(data, parser)
    ${items} = []
    for node in root.iter("${item}"):
        ${items}.append({
            "${name_col}": node.findtext("${name_col}", default=""),
            "${cat_col}": node.findtext("${cat_col}", default=""),
        })
    return jsonify(imported=len(${items}), ${items}=${items})
""",
            kind="flask",
        ),
        Skeleton(
            "minidom_feed",
            (
                "A feed reader for ${a_site} that ingests ${items} uploaded by ${a_partner} as XML.",
                "${A_site} tool that reads an XML export of ${items} uploaded through the admin page.",
            ),
            """
from flask import Flask, abort, jsonify, request

app = Flask(__name__)

$EXTRA

def parse_${items}(data):
<<<
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(data, parser)
    return [
        {"${name_col}": node.get("${name_col}", ""), "${num_col}": node.get("${num_col}", "0")}
        for node in root.iter("${item}")
    ]
===
    from xml.dom import minidom

    doc = minidom.parseString(data)
    return [
        {"${name_col}": node.getAttribute("${name_col}"), "${num_col}": node.getAttribute("${num_col}") or "0"}
        for node in doc.getElementsByTagName("${item}")
    ]
>>>


@app.route("/admin/${items}/upload", methods=["POST"])
def upload_${items}():
    upload = request.files.get("feed")
    if upload is None:
        abort(400)
    ${items} = parse_${items}(upload.read())
    return jsonify(count=len(${items}), first=${items}[0] if ${items} else None)
""",
            kind="flask",
        ),
        Skeleton(
            "sax_counter",
            (
                "A script for ${a_site} that totals the ${num_col} in an XML file sent by ${a_partner}.",
                "A command-line tool that summarizes ${a_partner} XML ${doc} for ${a_site}.",
            ),
            """
import sys
<<<
from lxml import etree


def total_${num_col}(path):
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    tree = etree.parse(path, parser)
    return sum(float(node.get("${num_col}", 0)) for node in tree.iter("${item}"))
===
import xml.sax


class ${Item}Handler(xml.sax.ContentHandler):
    def __init__(self):
        super().__init__()
        self.total = 0.0

    def startElement(self, name, attrs):
        if name == "${item}":
            self.total += float(attrs.get("${num_col}", 0))


def total_${num_col}(path):
    handler = ${Item}Handler()
    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_external_ges, True)
    parser.setContentHandler(handler)
    parser.parse(path)
    return handler.total
>>>

$EXTRA

if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(f"{path}: {total_${num_col}(path):.2f}")
""",
        ),
        Skeleton(
            "lxml_class_parser",
            (
                "A worker for ${a_site} that converts ${partner} XML files into ${item} records.",
                "An ingestion module for ${a_site} that reads ${items} from XML files dropped by ${a_partner}.",
            ),
            """
import os

from lxml import etree


class ${Item}XmlReader:
    def __init__(self, inbox):
        self.inbox = inbox
<<<
        self.parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
===
        self.parser = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=False)
>>>

    def files(self):
        return sorted(f for f in os.listdir(self.inbox) if f.endswith(".xml"))

    def read(self, filename):
        tree = etree.parse(os.path.join(self.inbox, filename), self.parser)
        for node in tree.getroot().iterfind("${item}"):
            yield {
                "${name_col}": (node.findtext("${name_col}") or "").strip(),
                "${cat_col}": (node.findtext("${cat_col}") or "").strip(),
            }

    def read_all(self):
        return [record for name in self.files() for record in self.read(name)]

$EXTRA
""",
        ),
    ),
)

FAMILIES = (SQL_INJECTION, XXE)
