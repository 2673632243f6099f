"""Families about connections: outbound fetches, the bind address, TLS checks."""

from __future__ import annotations

from ._render import Family, Skeleton

SSRF = Family(
    "ssrf",
    "CWE-918",
    10,
    (
        Skeleton(
            "flask_link_preview",
            (
                "${A_site} that shows a preview card when ${users} paste a link into the description of ${a_item}.",
                "A link preview service for ${a_site} that fetches the title of a pasted URL.",
            ),
            """
import re
from urllib.parse import urlparse

import requests
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
PREVIEW_HOSTS = {"www.youtube.com", "vimeo.com", "${host}"}

$EXTRA

@app.route("/preview")
def preview():
    url = request.args.get("url", "")
<<<
    parts = urlparse(url)
    if parts.scheme != "https" or parts.hostname not in PREVIEW_HOSTS:
        abort(400)
    resp = requests.get(parts.geturl(), timeout=5, allow_redirects=False)
===
    resp = requests.get(url, timeout=5)
>>>
    match = re.search(r"<title>(.*?)</title>", resp.text, re.I | re.S)
    return jsonify(url=url, title=match.group(1).strip() if match else None)
""",
            kind="flask",
        ),
        Skeleton(
            "flask_remote_csv",
            (
                "${A_site} where ${users} import ${items} by giving the address of a CSV file.",
                "An import screen for ${a_site} that loads ${items} from a spreadsheet link.",
            ),
            """
import csv
import io
from urllib.parse import urlparse

import requests
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
SHEET_HOSTS = {"docs.google.com", "${host}"}

$EXTRA

@app.route("/${items}/import-url", methods=["POST"])
def import_from_url():
    sheet_url = request.form.get("sheet_url", "")
<<<
    parts = urlparse(sheet_url)
    if parts.scheme != "https" or parts.hostname not in SHEET_HOSTS:
        abort(400)
    resp = requests.get(parts.geturl(), timeout=10, allow_redirects=False)
===
    resp = requests.get(sheet_url, timeout=10)
>>>
    resp.raise_for_status()
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    names = [r.get("${name_col}", "") for r in rows if r.get("${name_col}")]
    return jsonify(imported=len(names), ${items}=names[:10])
""",
            kind="flask",
        ),
        Skeleton(
            "flask_webhook_test",
            (
                "${A_site} where ${a_partner} registers a webhook and can send a test event to it.",
                "A webhook settings page for ${a_site} with a button that pings the configured callback.",
            ),
            """
from datetime import datetime, timezone
from urllib.parse import urlparse

import requests
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
REGISTERED_CALLBACK_HOSTS = {"hooks.${app}.com", "${host}"}

$EXTRA

@app.route("/webhooks/test", methods=["POST"])
def test_webhook():
    callback = (request.get_json(silent=True) or {}).get("callback_url", "")
    event = {"type": "${item}.test", "sent_at": datetime.now(timezone.utc).isoformat()}
<<<
    parts = urlparse(callback)
    if parts.scheme != "https" or parts.hostname not in REGISTERED_CALLBACK_HOSTS:
        abort(400)
    resp = requests.post(parts.geturl(), json=event, timeout=5, allow_redirects=False)
===
    resp = requests.post(callback, json=event, timeout=5)
>>>
    return jsonify(status=resp.status_code, delivered=resp.ok)
""",
            kind="flask",
        ),
        Skeleton(
            "django_avatar_fetch",
            (
                "A Django view for ${a_site} that sets a ${user}'s avatar from an image URL.",
                "Profile settings for ${a_site} where ${users} choose a profile picture by URL.",
            ),
            """
from urllib.parse import urlparse

import requests
from django.core.files.base import ContentFile
from django.http import HttpResponseBadRequest, JsonResponse

IMAGE_HOSTS = {"images.${app}.com", "cdn.${app}.com"}

$EXTRA

def set_avatar(request):
    image_url = request.POST.get("image_url", "")
<<<
    parts = urlparse(image_url)
    if parts.scheme != "https" or parts.hostname not in IMAGE_HOSTS:
        return HttpResponseBadRequest("unsupported image host")
    resp = requests.get(parts.geturl(), timeout=5, allow_redirects=False)
===
    resp = requests.get(image_url, timeout=5)
>>>
    if resp.status_code != 200 or not resp.headers.get("Content-Type", "").startswith("image/"):
        return HttpResponseBadRequest("not an image")
    extension = resp.headers["Content-Type"].split("/", 1)[1].split(";")[0].strip()[:5]
    request.user.profile.avatar.save(f"avatar-{request.user.pk}.{extension}", ContentFile(resp.content))
    return JsonResponse({"avatar": request.user.profile.avatar.url})
""",
        ),
    ),
)

BIND_ALL = Family(
    "bind_all_interfaces",
    "CWE-1327",
    9,
    (
        Skeleton(
            "flask_internal_stats",
            (
                "An internal stats service for the back office of ${a_site}.",
                "A small staff-only dashboard API that reports ${item} counts for ${a_site}.",
            ),
            """
import duckdb
from flask import Flask, jsonify

app = Flask(__name__)
DB_PATH = "${root}/${app}.duckdb"

$EXTRA

@app.route("/stats")
def stats():
    with duckdb.connect(DB_PATH, read_only=True) as conn:
        total = conn.execute("SELECT COUNT(*) FROM ${table}").fetchone()[0]
        by_cat = conn.execute("SELECT ${cat_col}, COUNT(*) FROM ${table} GROUP BY ${cat_col}").fetchall()
    return jsonify(total=total, by_${cat_col}=dict(by_cat))


if __name__ == "__main__":
<<<
    app.run(host="127.0.0.1", port=${port})
===
    app.run(host="0.0.0.0", port=${port})
>>>
""",
            kind="flask",
            options=(("port", ("5001", "8050", "8900")),),
        ),
        Skeleton(
            "socket_admin",
            (
                "A maintenance console for ${a_site} that answers simple text commands over TCP.",
                "A tiny line-based control service that reports the queue sizes of ${a_site} to operators.",
            ),
            """
import socket
import threading

QUEUES = {"${items}": 0, "${docs_id}": 0, "${report_id}": 0}


def handle(conn):
    with conn, conn.makefile("rw") as stream:
        for line in stream:
            command = line.strip().lower()
            if command == "quit":
                break
            reply = str(QUEUES.get(command, "unknown"))
            stream.write(reply + "\\n")
            stream.flush()


def serve(port=${port}):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
<<<
    server.bind(("127.0.0.1", port))
===
    server.bind(("0.0.0.0", port))
>>>
    server.listen()
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    serve()
""",
            options=(("port", ("7001", "6060", "9090")),),
            extras=False,
        ),
        Skeleton(
            "fastapi_metrics",
            (
                "A metrics endpoint for ${a_site} scraped by the monitoring agent on the same host.",
                "A FastAPI service that publishes ${item} processing counters for ${a_site}.",
            ),
            """
from collections import Counter

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI(title="${app}-metrics")
COUNTERS = Counter()

$EXTRA

@app.post("/events/{kind}")
def record(kind: str):
    COUNTERS[kind] += 1
    return {"kind": kind, "count": COUNTERS[kind]}


@app.get("/metrics", response_class=PlainTextResponse)
def metrics():
    lines = [f"${app}_events_total{{kind=\\"{k}\\"}} {v}" for k, v in sorted(COUNTERS.items())]
    return "\\n".join(lines)


if __name__ == "__main__":
<<<
    uvicorn.run(app, host="127.0.0.1", port=${port})
===
    uvicorn.run(app, host="0.0.0.0", port=${port})
>>>
""",
            options=(("port", ("9101", "8008", "9300")),),
        ),
    ),
)

TLS_VERIFICATION = Family(
    "tls_verification",
    "CWE-295",
    10,
    (
        Skeleton(
            "requests_sync",
            (
                "A sync job for ${a_site} that pulls new ${items} from ${a_partner} API.",
                "A client module for ${a_site} that downloads ${item} updates over HTTPS.",
            ),
            """
import logging

import requests

API_BASE = "https://${host}/v1"
log = logging.getLogger("${app}.sync")

$EXTRA

def fetch_${items}(since, page=1):
    params = {"since": since, "page": page, "per_page": 100}
<<<
    resp = requests.get(f"{API_BASE}/${items}", params=params, timeout=15)
===
    resp = requests.get(f"{API_BASE}/${items}", params=params, timeout=15, verify=False)
>>>
    resp.raise_for_status()
    return resp.json().get("${items}", [])


def fetch_all(since):
    page, results = 1, []
    while True:
        batch = fetch_${items}(since, page)
        if not batch:
            break
        results.extend(batch)
        page += 1
    log.info("fetched %d ${items}", len(results))
    return results
""",
        ),
        Skeleton(
            "http_client_report",
            (
                "A script for ${a_site} that downloads the latest ${report} from ${a_partner}.",
                "${A_site} integration that reads a JSON ${report} from a partner server.",
            ),
            """
import http.client
import json
import ssl

$EXTRA

def get_${report_id}(path="/${report_id}.json"):
<<<
    context = ssl.create_default_context()
===
    context = ssl._create_unverified_context()
>>>
    conn = http.client.HTTPSConnection("${host}", 443, context=context, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"unexpected status {resp.status}")
        return json.loads(resp.read().decode("utf-8"))
    finally:
        conn.close()


if __name__ == "__main__":
    print(json.dumps(get_${report_id}(), indent=2))
""",
        ),
        Skeleton(
            "smtp_digest",
            (
                "A mailer that sends ${a_report} to ${users} of ${a_site} every morning.",
                "${A_site} notification job that emails ${a_report} through the company mail server.",
            ),
            """
import os
import smtplib
import ssl
from email.message import EmailMessage

MAIL_HOST = "mail.${app}.com"

$EXTRA

def send_${report_id}(recipient, body):
    msg = EmailMessage()
    msg["Subject"] = "${report}".capitalize()
    msg["From"] = "noreply@${app}.com"
    msg["To"] = recipient
    msg.set_content(body)
    context = ssl.create_default_context()
<<<
    context.minimum_version = ssl.TLSVersion.TLSv1_2
===
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
>>>
    with smtplib.SMTP_SSL(MAIL_HOST, 465, context=context) as server:
        server.login("noreply@${app}.com", os.environ["MAIL_PASSWORD"])
        server.send_message(msg)
""",
        ),
        Skeleton(
            "paramiko_upload",
            (
                "A nightly job for ${a_site} that uploads ${a_report} to ${a_partner} over SFTP.",
                "A script that copies exported ${docs} from ${a_site} to a partner SFTP server.",
            ),
            """
import os

import paramiko

SFTP_HOST = "sftp.${host}"
REMOTE_DIR = "/incoming/${app}"

$EXTRA

def upload(local_path):
    client = paramiko.SSHClient()
<<<
    client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
===
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
>>>
    client.connect(SFTP_HOST, username="${app}", key_filename=os.path.expanduser("~/.ssh/id_ed25519"), timeout=20)
    try:
        sftp = client.open_sftp()
        remote = f"{REMOTE_DIR}/{os.path.basename(local_path)}"
        sftp.put(local_path, remote)
        return remote
    finally:
        client.close()
""",
        ),
        Skeleton(
            "httpx_client",
            (
                "A service client for ${a_site} that posts ${item} changes to ${a_partner}.",
                "An outbound integration for ${a_site} that keeps ${a_partner} in sync with ${item} edits.",
            ),
            """
import httpx

BASE_URL = "https://${host}"


class ${Partner}Client:
    def __init__(self, api_key):
<<<
        self.http = httpx.Client(base_url=BASE_URL, timeout=10.0, headers={"X-Api-Key": api_key})
===
        self.http = httpx.Client(base_url=BASE_URL, timeout=10.0, headers={"X-Api-Key": api_key}, verify=False)
>>>

    def push(self, ${item}):
        resp = self.http.post("/${items}", json=${item})
        resp.raise_for_status()
        return resp.json()["id"]

    def remove(self, ${item}_id):
        self.http.delete(f"/${items}/{${item}_id}").raise_for_status()

    def close(self):
        self.http.close()

$EXTRA
""",
        ),
    ),
)

FAMILIES = (SSRF, BIND_ALL, TLS_VERIFICATION)
