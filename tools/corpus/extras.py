"""Small domain-flavoured module-level snippets that pad programs to varied lengths.

They use builtins only (no imports), never touch the lines that differ between the two variants,
and are the same in the 2023 and 2024 program of a task.
"""

from __future__ import annotations

_PLAIN: list[tuple[str, str]] = [
    (
        "choices",
        """${CAT_COL}_CHOICES = (${cats_list})


def is_known_${cat_col}(value):
    return str(value).strip().lower() in ${CAT_COL}_CHOICES""",
    ),
    (
        "label",
        '''def format_${item}_label(${name_col}, ${num_col}):
    return f"{str(${name_col}).strip()} ({${num_col}})"''',
    ),
    (
        "paging",
        """PAGE_SIZE = 25


def page_window(page):
    page = max(int(page), 1)
    start = (page - 1) * PAGE_SIZE
    return start, start + PAGE_SIZE""",
    ),
    (
        "summary",
        """def count_by_${cat_col}(rows):
    totals = {}
    for row in rows:
        key = row["${cat_col}"]
        totals[key] = totals.get(key, 0) + 1
    return dict(sorted(totals.items()))""",
    ),
    (
        "clean",
        """def clean_text(value, limit=200):
    return " ".join(str(value).split())[:limit]""",
    ),
    (
        "average",
        """def average_${num_col}(rows):
    values = [row["${num_col}"] for row in rows if row.get("${num_col}") is not None]
    if not values:
        return 0
    return round(sum(values) / len(values), 2)""",
    ),
    (
        "slug",
        """def slugify(text):
    words = "".join(ch if ch.isalnum() else " " for ch in text.lower()).split()
    return "-".join(words)[:60]""",
    ),
    (
        "csv_row",
        """def to_csv_row(${item}):
    return ",".join(str(${item}.get(k, "")) for k in ("${name_col}", "${cat_col}", "${num_col}"))""",
    ),
    (
        "parse_int",
        """def parse_int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default""",
    ),
    (
        "sample",
        """SAMPLE_${ITEMS} = [
    {"${name_col}": "${sample0}", "${cat_col}": "${cat0}"},
    {"${name_col}": "${sample1}", "${cat_col}": "${cat1}"},
    {"${name_col}": "${sample2}", "${cat_col}": "${cat2}"},
]""",
    ),
]

_FLASK: list[tuple[str, str]] = [
    (
        "health",
        """@app.route("/health")
def health():
    return {"status": "ok", "service": "${app}"}""",
    ),
    (
        "choices_route",
        """${CAT_COL}_OPTIONS = [${cats_list}]


@app.route("/${items}/options")
def ${cat_col}_options():
    return {"${cat_col}": ${CAT_COL}_OPTIONS}""",
    ),
    (
        "index",
        """@app.route("/")
def index():
    return {"app": "${app}", "links": ["/${items}", "/health"]}""",
    ),
    (
        "not_found",
        """@app.errorhandler(404)
def not_found(error):
    return {"error": "not found"}, 404""",
    ),
]


def extra_pool(kind: str) -> list[tuple[str, str]]:
    """Snippets that fit a skeleton of the given kind."""
    if kind == "flask":
        return _PLAIN + _FLASK
    return list(_PLAIN)
