"""Families in web handlers: HTML output, templating and redirects."""

from __future__ import annotations

from ._render import Family, Skeleton

XSS = Family(
    "xss",
    "CWE-79",
    11,
    (
        Skeleton(
            "flask_welcome",
            (
                "${A_site} that greets returning ${users} by the name they typed in.",
                "A welcome page for ${a_site} that shows the visitor's name from the query string.",
            ),
            """
import html

from flask import Flask, request

app = Flask(__name__)


@app.route("/welcome")
def welcome():
    display = request.args.get("name", "${user}")
    count = request.args.get("${items}", "0")
<<<
    return f"<h1>Welcome back, {html.escape(display)}!</h1><p>You have {html.escape(count)} ${items} saved.</p>"
===
    return f"<h1>Welcome back, {display}!</h1><p>You have {count} ${items} saved.</p>"
>>>

$EXTRA
""",
            kind="flask",
        ),
        Skeleton(
            "flask_review_thanks",
            (
                "${A_site} where ${users} leave a short review of each ${item}.",
                "A review form for ${a_site} that shows the submitted comment on a thank-you page.",
            ),
            """
import os

import psycopg2
from flask import Flask, render_template_string, request

app = Flask(__name__)

$EXTRA

@app.route("/${items}/<int:${item}_id>/review", methods=["POST"])
def review_${item}(${item}_id):
    comment = request.form.get("comment", "")
    rating = request.form.get("rating", default=0, type=int)
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO reviews (${item}_id, comment, rating) VALUES (%s, %s, %s)",
            (${item}_id, comment, rating),
        )
<<<
    return render_template_string(
        "<h2>Thanks for your review</h2><blockquote>{{ comment }}</blockquote><p>Rating: {{ rating }}/5</p>",
        comment=comment,
        rating=rating,
    )
===
    return render_template_string(
        f"<h2>Thanks for your review</h2><blockquote>{comment}</blockquote><p>Rating: {rating}/5</p>"
    )
>>>
""",
            kind="flask",
        ),
        Skeleton(
            "flask_group_page",
            (
                "${A_site} where each ${group} page lists the notes ${users} wrote about its ${items}.",
                "A page of ${a_site} that shows every ${item} in a ${group} with the ${user}'s note.",
            ),
            """
from html import escape

import duckdb
from flask import Flask, make_response, request

app = Flask(__name__)
DB_PATH = "${root}/${app}.duckdb"

$EXTRA

@app.route("/${groups}/<int:${group}_id>")
def show_${group}(${group}_id):
    with duckdb.connect(DB_PATH, read_only=True) as conn:
        rows = conn.execute(
            "SELECT ${name_col}, note FROM ${table} WHERE ${group}_id = ? ORDER BY ${name_col}", (${group}_id,)
        ).fetchall()
    query = request.args.get("q", "")
    entries = []
    for ${name_col}, note in rows:
        if query.lower() not in (note or "").lower():
            continue
<<<
        entries.append(f"<li><strong>{escape(str(${name_col}))}</strong> {escape(note or '')}</li>")
    heading = f"<h1>${Group} {${group}_id}</h1><p>Notes matching: {escape(query)}</p>"
===
        entries.append(f"<li><strong>{${name_col}}</strong> {note or ''}</li>")
    heading = f"<h1>${Group} {${group}_id}</h1><p>Notes matching: {query}</p>"
>>>
    resp = make_response(heading + "<ul>" + "".join(entries) + "</ul>")
    resp.headers["Content-Type"] = "text/html; charset=utf-8"
    return resp
""",
            kind="flask",
        ),
        Skeleton(
            "flask_search_empty",
            (
                "A search page for ${a_site} that tells the ${user} when nothing matched the query.",
                "A search results page for the ${items} of ${a_site}.",
            ),
            """
import html
import os

import pymysql
from flask import Flask, request

app = Flask(__name__)


def connect():
    return pymysql.connect(
        host=os.environ.get("MYSQL_HOST", "localhost"),
        user="${app}_web",
        password=os.environ["MYSQL_PASSWORD"],
        database="${app}",
    )

$EXTRA

@app.route("/search")
def search():
    query = request.args.get("q", "")
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT ${name_col} FROM ${table} WHERE ${name_col} LIKE %s LIMIT 20", (f"%{query}%",))
        rows = cur.fetchall()
    if not rows:
<<<
        return f"<p>No ${items} found for <em>{html.escape(query)}</em>.</p>", 404
    items = "".join(f"<li>{html.escape(str(r[0]))}</li>" for r in rows)
===
        return f"<p>No ${items} found for <em>{query}</em>.</p>", 404
    items = "".join(f"<li>{r[0]}</li>" for r in rows)
>>>
    return f"<h2>Results</h2><ul>{items}</ul>"
""",
            kind="flask",
        ),
        Skeleton(
            "django_profile",
            (
                "A Django site for ${a_site} where ${users} have a public profile with a short bio.",
                "A public profile page for ${users} of ${a_site}, written with Django.",
            ),
            """
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.html import format_html

from .models import Profile

$EXTRA

def profile(request, username):
    person = get_object_or_404(Profile, username=username)
    favorite = request.GET.get("highlight", person.favorite_${cat_col})
<<<
    body = format_html(
        "<h1>{}</h1><p>{}</p><p>Favorite ${cat_col}: {}</p>", person.display_name, person.bio, favorite
    )
===
    body = f"<h1>{person.display_name}</h1><p>{person.bio}</p><p>Favorite ${cat_col}: {favorite}</p>"
>>>
    return HttpResponse(body)
""",
        ),
    ),
)

TEMPLATE_AUTOESCAPE = Family(
    "template_autoescape",
    "CWE-79",
    10,
    (
        Skeleton(
            "email_renderer",
            (
                "A mailer for ${a_site} that renders the ${report} email for each ${user}.",
                "${A_site} notification module that fills HTML email templates with ${item} data.",
            ),
            """
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATE_DIR = "${root}/templates"
<<<
env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape(["html", "xml"]))
===
env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=False)
>>>

$EXTRA

def render_${report_id}_email(${user}, ${items}):
    template = env.get_template("${report_id}.html")
    return template.render(${user}=${user}, ${items}=${items}, count=len(${items}))


def render_all(${users}):
    return {u["email"]: render_${report_id}_email(u, u.get("${items}", [])) for u in ${users}}
""",
        ),
        Skeleton(
            "flask_comment_from_string",
            (
                "${A_site} where ${users} post comments under each ${item}.",
                "A comment wall for ${a_site} that shows what ${users} wrote about ${a_item}.",
            ),
            '''
from flask import Flask, request
from jinja2 import Environment

app = Flask(__name__)
COMMENTS = {}
PAGE = """<h1>Comments on ${item} {{ ${item}_id }}</h1>
<ul>{% for c in comments %}<li><b>{{ c.name }}</b>: {{ c.text }}</li>{% endfor %}</ul>"""
<<<
env = Environment(autoescape=True)
===
env = Environment(autoescape=False)
>>>

$EXTRA

@app.route("/${items}/<int:${item}_id>/comments", methods=["GET", "POST"])
def comments(${item}_id):
    thread = COMMENTS.setdefault(${item}_id, [])
    if request.method == "POST":
        thread.append({"name": request.form.get("name", "anonymous"), "text": request.form.get("text", "")})
    return env.from_string(PAGE).render(${item}_id=${item}_id, comments=thread)
''',
            kind="flask",
        ),
        Skeleton(
            "static_site",
            (
                "A static page generator for ${a_site} that builds one HTML page per ${item} from a CSV export.",
                "A build script that publishes the ${items} of ${a_site} as static HTML pages.",
            ),
            """
import csv
import os

from jinja2 import DictLoader, Environment

TEMPLATES = {
    "${item}.html": "<html><body><h1>{{ row.${name_col} }}</h1><p>{{ row.description }}</p></body></html>",
}

$EXTRA

def build_site(csv_path, out_dir):
<<<
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True)
===
    env = Environment(loader=DictLoader(TEMPLATES))
>>>
    template = env.get_template("${item}.html")
    os.makedirs(out_dir, exist_ok=True)
    count = 0
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            page = os.path.join(out_dir, f"{int(row['id'])}.html")
            with open(page, "w", encoding="utf-8") as out:
                out.write(template.render(row=row))
            count += 1
    return count
""",
        ),
        Skeleton(
            "renderer_class",
            (
                "A widget renderer for ${a_site} that embeds ${item} cards into partner pages.",
                "${A_site} module that renders ${item} cards for the public web pages.",
            ),
            """
from jinja2 import Environment, PackageLoader, select_autoescape


class ${Item}CardRenderer:
    def __init__(self):
<<<
        self.env = Environment(loader=PackageLoader("${app}", "templates"), autoescape=select_autoescape())
===
        self.env = Environment(loader=PackageLoader("${app}", "templates"))
>>>
        self.env.filters["short"] = lambda text, n=80: text if len(text) <= n else text[: n - 1] + "..."

    def card(self, ${item}):
        return self.env.get_template("card.html").render(${item}=${item})

    def cards(self, ${items}):
        return "\\n".join(self.card(x) for x in ${items})

$EXTRA
""",
        ),
    ),
)

OPEN_REDIRECT = Family(
    "open_redirect",
    "CWE-601",
    10,
    (
        Skeleton(
            "flask_login_next",
            (
                "${A_site} whose login form sends ${users} back to the page they came from.",
                "A sign-in view for ${a_site} that continues to the page given in the next parameter.",
            ),
            """
from urllib.parse import urlparse

from flask import Flask, redirect, render_template, request, session, url_for

app = Flask(__name__)

$EXTRA

def check_login(email, password):
    return email.endswith("@${app}.com") and len(password) >= 12


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html")
    if not check_login(request.form.get("email", ""), request.form.get("password", "")):
        return render_template("login.html", error="Invalid email or password"), 401
    session["email"] = request.form["email"]
    target = request.args.get("next", "/")
<<<
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\\\" in target:
        target = url_for("index")
    return redirect(target)
===
    return redirect(target)
>>>


@app.route("/")
def index():
    return "${App} home"
""",
            kind="flask",
        ),
        Skeleton(
            "flask_language_switch",
            (
                "${A_site} with a language picker that keeps ${users} on the page they were reading.",
                "A locale switcher for ${a_site} that returns the ${user} to the current page.",
            ),
            """
from urllib.parse import urlparse

from flask import Flask, redirect, request

app = Flask(__name__)
LANGUAGES = ("en", "es", "fr", "de")

$EXTRA

@app.route("/language")
def set_language():
    lang = request.args.get("lang", "en")
    if lang not in LANGUAGES:
        lang = "en"
    back = request.args.get("return_to", "/")
<<<
    if urlparse(back).netloc or not back.startswith("/") or back.startswith("//"):
        back = "/"
    resp = redirect(back)
===
    resp = redirect(back)
>>>
    resp.set_cookie("lang", lang, max_age=60 * 60 * 24 * 365)
    return resp
""",
            kind="flask",
        ),
        Skeleton(
            "django_logout",
            (
                "A Django logout view for ${a_site} that can send ${users} to a follow-up page.",
                "${A_site} on Django whose sign-out link accepts a page to continue to.",
            ),
            """
import logging

from django.http import HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

log = logging.getLogger("${app}.accounts")
DEFAULT_LANDING = "/${items}/"

$EXTRA

@require_GET
def sign_out(request):
    member = request.session.get("${user}_id")
    request.session.flush()
    log.info("signed out %s", member)
    follow = request.GET.get("next") or DEFAULT_LANDING
<<<
    if not url_has_allowed_host_and_scheme(follow, allowed_hosts={request.get_host()}):
        follow = DEFAULT_LANDING
===
>>>
    return HttpResponseRedirect(follow)
""",
        ),
        Skeleton(
            "flask_outbound_link",
            (
                "${A_site} that counts clicks on links to ${a_partner} before sending the ${user} there.",
                "A click counter for ${a_site} that records outbound links and then forwards the visitor.",
            ),
            """
from collections import Counter
from urllib.parse import urlparse

from flask import Flask, abort, redirect, request

app = Flask(__name__)
CLICKS = Counter()
PARTNER_HOSTS = {"${host}", "www.${app}.com", "help.${app}.com"}

$EXTRA

@app.route("/out")
def outbound():
    destination = request.args.get("to", "")
<<<
    parts = urlparse(destination)
    if parts.scheme not in ("http", "https") or parts.hostname not in PARTNER_HOSTS:
        abort(400)
    CLICKS[parts.hostname] += 1
    return redirect(parts.geturl(), code=302)
===
    CLICKS[urlparse(destination).hostname] += 1
    return redirect(destination, code=302)
>>>


@app.route("/out/stats")
def outbound_stats():
    return dict(CLICKS)
""",
            kind="flask",
        ),
    ),
)

FAMILIES = (XSS, TEMPLATE_AUTOESCAPE, OPEN_REDIRECT)
