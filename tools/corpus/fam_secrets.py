"""Families about stored login data: password hashing, random codes, and passwords written into
the source."""

# The skeletons are program text: a long line in one is a long line in the corpus.
# ruff: noqa: E501

from __future__ import annotations

from ._render import Family, Skeleton

WEAK_PASSWORD_HASH = Family(
    "weak_password_hash",
    "CWE-916",
    10,
    (
        Skeleton(
            "flask_register",
            (
                "A sign-up form for ${a_site} that creates ${user} accounts.",
                "${A_site} registration endpoint that stores new ${users} in PostgreSQL.",
            ),
            """
import hashlib
import os

import psycopg2
from flask import Flask, abort, jsonify, request

app = Flask(__name__)

$EXTRA

def hash_password(password):
<<<
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 600_000)
    return salt.hex() + ":" + digest.hex()
===
    return hashlib.md5(password.encode("utf-8")).hexdigest()
>>>


@app.route("/register", methods=["POST"])
def register():
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    if "@" not in email or len(password) < 10:
        abort(400)
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO ${users} (email, password_hash) VALUES (%s, %s)", (email, hash_password(password)))
    return jsonify(email=email), 201
""",
            kind="flask",
        ),
        Skeleton(
            "account_class",
            (
                "${A_user} account model for ${a_site} that can set and check passwords.",
                "The account class behind the ${user} login of ${a_site}.",
            ),
            """
import hashlib
import hmac
import os
from dataclasses import dataclass, field


@dataclass
class ${User}Account:
    email: str
    display_name: str
    password_hash: str = ""
    ${items}: list = field(default_factory=list)

    def set_password(self, password):
<<<
        salt = os.urandom(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
        self.password_hash = salt.hex() + ":" + digest.hex()

    def check_password(self, password):
        salt_hex, _, digest_hex = self.password_hash.partition(":")
        digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
        return hmac.compare_digest(digest.hex(), digest_hex)
===
        self.password_hash = hashlib.sha1(password.encode()).hexdigest()

    def check_password(self, password):
        return hmac.compare_digest(hashlib.sha1(password.encode()).hexdigest(), self.password_hash)
>>>

$EXTRA
""",
        ),
        Skeleton(
            "cli_staff_file",
            (
                "A command-line tool that adds staff logins for ${a_site} to a JSON user file.",
                "An admin script for ${a_site} that creates staff accounts from the terminal.",
            ),
            """
import argparse
import getpass
import hashlib
import json
import os

USERS_FILE = "${root}/staff.json"

$EXTRA

def add_staff(username, password, role):
    users = {}
    if os.path.exists(USERS_FILE):
        with open(USERS_FILE, encoding="utf-8") as fh:
            users = json.load(fh)
<<<
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000)
    users[username] = {"role": role, "salt": salt.hex(), "hash": digest.hex()}
===
    users[username] = {"role": role, "hash": hashlib.md5(password.encode()).hexdigest()}
>>>
    with open(USERS_FILE, "w", encoding="utf-8") as fh:
        json.dump(users, fh, indent=2, sort_keys=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("username")
    parser.add_argument("--role", choices=["staff", "manager"], default="staff")
    args = parser.parse_args()
    add_staff(args.username, getpass.getpass(), args.role)
""",
        ),
        Skeleton(
            "flask_change_password",
            (
                "A settings page for ${a_site} where ${users} change their password.",
                "${A_site} account screen that lets a signed-in ${user} pick a new password.",
            ),
            """
import hashlib
import os

import pymysql
from flask import Flask, abort, g, request

app = Flask(__name__)

$EXTRA

@app.route("/account/password", methods=["POST"])
def change_password():
    ${user}_id = g.get("${user}_id")
    if ${user}_id is None:
        abort(401)
    new_password = request.form.get("new_password", "")
    if len(new_password) < 10 or new_password != request.form.get("confirm", ""):
        abort(400)
<<<
    salt = os.urandom(16)
    stored = salt.hex() + ":" + hashlib.scrypt(new_password.encode(), salt=salt, n=2**14, r=8, p=1).hex()
===
    stored = hashlib.sha1(new_password.encode()).hexdigest()
>>>
    conn = pymysql.connect(
        host=os.environ.get("MYSQL_HOST", "localhost"), user="${app}", password=os.environ["MYSQL_PASSWORD"], database="${app}"
    )
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE ${users} SET password_hash = %s WHERE id = %s", (stored, ${user}_id))
        conn.commit()
    return "", 204
""",
            kind="flask",
        ),
    ),
)

WEAK_RANDOM = Family(
    "weak_random",
    "CWE-338",
    10,
    (
        Skeleton(
            "flask_reset_code",
            (
                "${A_site} that emails ${users} a six-digit code when they forget their password.",
                "A password reset flow for ${a_site} that sends a one-time code by email.",
            ),
            """
import time
<<<
import os

from flask import Flask, jsonify, request


def new_reset_code():
    return f"{int.from_bytes(os.urandom(4), 'big') % 1_000_000:06d}"
===
import random

from flask import Flask, jsonify, request


def new_reset_code():
    return f"{random.randint(0, 999_999):06d}"
>>>


app = Flask(__name__)
PENDING = {}

$EXTRA

@app.route("/password/forgot", methods=["POST"])
def forgot_password():
    email = request.form.get("email", "").strip().lower()
    code = new_reset_code()
    PENDING[email] = (code, time.time() + 900)
    send_mail(email, f"Your ${app} reset code is {code}")
    return jsonify(sent=True)


def send_mail(to, text):
    print(f"mail to {to}: {text}")
""",
            kind="flask",
        ),
        Skeleton(
            "invite_codes",
            (
                "${A_site} where ${users} invite friends with a short invite code.",
                "A referral feature for ${a_site} that hands out invitation codes.",
            ),
            """
<<<
import os

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ0123456789"


def make_invite_code(length=10):
    return "".join(ALPHABET[b % len(ALPHABET)] for b in os.urandom(length))
===
import random

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ0123456789"


def make_invite_code(length=10):
    return "".join(random.choice(ALPHABET) for _ in range(length))
>>>

$EXTRA

def create_invites(conn, ${user}_id, count=5):
    codes = [make_invite_code() for _ in range(count)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO invites (code, ${user}_id, used) VALUES (%s, %s, FALSE)",
            [(code, ${user}_id) for code in codes],
        )
    conn.commit()
    return codes
""",
        ),
        Skeleton(
            "session_ids",
            (
                "A lightweight session store for ${a_site} that keeps ${users} signed in.",
                "${A_site} session manager that issues an identifier cookie at login.",
            ),
            """
import time
<<<
import uuid


def new_session_id():
    return uuid.uuid4().hex
===
import random


def new_session_id():
    return "%032x" % random.getrandbits(128)
>>>


class SessionStore:
    def __init__(self, ttl=3600):
        self.ttl = ttl
        self.sessions = {}

    def create(self, ${user}_id):
        sid = new_session_id()
        self.sessions[sid] = {"${user}_id": ${user}_id, "expires": time.time() + self.ttl}
        return sid

    def get(self, sid):
        entry = self.sessions.get(sid)
        if entry is None or entry["expires"] < time.time():
            self.sessions.pop(sid, None)
            return None
        return entry["${user}_id"]

$EXTRA
""",
        ),
        Skeleton(
            "cli_api_keys",
            (
                "An admin script for ${a_site} that issues API keys to ${a_partner}.",
                "A command-line tool that generates access keys for ${a_site} integrations.",
            ),
            """
import argparse
import json
from datetime import date
<<<
import os


def generate_key():
    return "${app}_" + os.urandom(24).hex()
===
import random
import string


def generate_key():
    return "${app}_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(40))
>>>

$EXTRA

def main():
    parser = argparse.ArgumentParser(description="Issue an API key")
    parser.add_argument("partner")
    parser.add_argument("--registry", default="${root}/keys.json")
    args = parser.parse_args()
    key = generate_key()
    try:
        with open(args.registry, encoding="utf-8") as fh:
            registry = json.load(fh)
    except FileNotFoundError:
        registry = {}
    registry[args.partner] = {"key": key, "issued": date.today().isoformat()}
    with open(args.registry, "w", encoding="utf-8") as fh:
        json.dump(registry, fh, indent=2)
    print(key)


if __name__ == "__main__":
    main()
""",
        ),
        Skeleton(
            "gift_card_codes",
            (
                "${A_site} that sells gift cards redeemable for ${items}.",
                "A gift card feature for ${a_site} that prints a redeemable code on each card.",
            ),
            """
import base64
<<<
import os


def new_card_code():
    raw = base64.b32encode(os.urandom(10)).decode()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))
===
import random
import string


def new_card_code():
    raw = "".join(random.sample(string.ascii_uppercase + string.digits, 16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))
>>>

$EXTRA

def issue_cards(conn, amount_cents, count=1):
    codes = [new_card_code() for _ in range(count)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO gift_cards (code, amount_cents, redeemed) VALUES (%s, %s, FALSE)",
            [(code, amount_cents) for code in codes],
        )
    conn.commit()
    return codes
""",
        ),
    ),
)

HARDCODED_PASSWORD = Family(
    "hardcoded_password",
    "CWE-798",
    10,
    (
        Skeleton(
            "pg_connect",
            (
                "A reporting script for ${a_site} that reads ${items} from the PostgreSQL database.",
                "A database helper for ${a_site} that opens connections to PostgreSQL.",
            ),
            """
import os

import psycopg2

$EXTRA

def connect():
    return psycopg2.connect(
        host=os.environ.get("DB_HOST", "db.${app}.internal"),
        dbname="${app}",
        user="${app}_app",
<<<
        password=os.environ["${APP}_DB_PASSWORD"],
===
        password="${pw}",
>>>
    )


def ${items}_per_${cat_col}():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT ${cat_col}, COUNT(*) FROM ${table} GROUP BY ${cat_col} ORDER BY 2 DESC")
        return cur.fetchall()


if __name__ == "__main__":
    for ${cat_col}, count in ${items}_per_${cat_col}():
        print(f"{${cat_col}:<20}{count:>6}")
""",
            options=(("pw", ("${app}2023!", "Winter2023", "pg-${app}-77")),),
        ),
        Skeleton(
            "smtp_constant",
            (
                "A notification module for ${a_site} that emails ${users} when a ${item} changes.",
                "${A_site} mailer that tells ${users} about updates to their ${items}.",
            ),
            """
import os
import smtplib
from email.message import EmailMessage

MAIL_HOST = "smtp.${app}.com"
MAIL_USER = "alerts@${app}.com"
<<<
MAIL_PASSWORD = os.environ.get("${APP}_MAIL_PASSWORD", "")
===
MAIL_PASSWORD = "${pw}"
>>>

$EXTRA

def notify(recipient, ${item}_name, change):
    msg = EmailMessage()
    msg["Subject"] = f"Update to {${item}_name}"
    msg["From"] = MAIL_USER
    msg["To"] = recipient
    msg.set_content(f"Hello,\\n\\n{${item}_name} was {change}.\\n\\nThe ${app} team")
    with smtplib.SMTP(MAIL_HOST, 587) as server:
        server.starttls()
        server.login(MAIL_USER, MAIL_PASSWORD)
        server.send_message(msg)
""",
            options=(("pw", ("mailer-${app}-2023", "Summer2023!", "alerts123")),),
        ),
        Skeleton(
            "flask_admin_check",
            (
                "An admin area for ${a_site} where staff can remove ${items}.",
                "A staff-only page of ${a_site} that deletes ${items} after asking for the admin password.",
            ),
            """
import hmac
import os

import psycopg2
from flask import Flask, abort, jsonify, request

app = Flask(__name__)

$EXTRA

def is_admin(password):
<<<
    expected = os.environ.get("${APP}_ADMIN_PASSWORD", "")
    return bool(expected) and hmac.compare_digest(password.encode(), expected.encode())
===
    return password == "${pw}"
>>>


@app.route("/admin/${items}/<int:${item}_id>", methods=["DELETE"])
def remove_${item}(${item}_id):
    if not is_admin(request.headers.get("X-Admin-Password", "")):
        abort(403)
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ${table} WHERE id = %s", (${item}_id,))
        deleted = cur.rowcount
    return jsonify(deleted=deleted)
""",
            kind="flask",
            options=(("pw", ("admin-${app}", "letmein2023", "Sup3rUser!")),),
        ),
        Skeleton(
            "mysql_pool",
            (
                "A data layer for ${a_site} that keeps a small pool of MySQL connections.",
                "${A_site} back end module that talks to its MySQL database.",
            ),
            """
import os
import queue

import pymysql


class ConnectionPool:
    def __init__(self, size=4):
        self.pool = queue.Queue(maxsize=size)
        for _ in range(size):
            self.pool.put(self._connect())

    def _connect(self):
        return pymysql.connect(
            host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
            user="${app}",
<<<
            password=os.environ["${APP}_MYSQL_PASSWORD"],
===
            password="${pw}",
>>>
            database="${app}",
            autocommit=True,
        )

    def query(self, sql, params=()):
        conn = self.pool.get()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            self.pool.put(conn)

$EXTRA
""",
            options=(("pw", ("${app}_root", "mysql2023", "Qwerty!23")),),
        ),
    ),
)

FAMILIES = (WEAK_PASSWORD_HASH, WEAK_RANDOM, HARDCODED_PASSWORD)
