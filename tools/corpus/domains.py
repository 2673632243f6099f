"""Application domains the corpus programs are set in, and the vocabulary each one lends a skeleton.

Every word here ends up in task sentences or code, so none may contain a word of
``em_assets/data/safety_words.txt`` (the tests check this through the generated rows).
"""

from __future__ import annotations

import json

_FIELDS = (
    "key", "site", "app", "user", "users", "item", "items", "table", "name_col", "cat_col", "num_col",
    "doc", "doc_id", "ext", "root", "group", "host", "partner", "report", "report_id", "samples", "cats",
)

_RAW = [
    ("recipes", "recipe sharing site", "recipebox", "cook", "cooks", "recipe", "recipes", "recipes",
     "title", "cuisine", "servings", "ingredient list", "ingredient_list", "txt", "/srv/recipebox",
     "cookbook", "api.recipebox.com", "grocery partner", "weekly meal plan", "meal_plan",
     ("Lentil soup", "Green curry", "Apple crumble"), ("vegan", "dessert", "breakfast")),
    ("library", "community library catalog", "shelfwise", "member", "members", "book", "books", "books",
     "title", "genre", "copies", "reading list", "reading_list", "csv", "/var/lib/shelfwise",
     "shelf", "catalog.shelfwise.org", "partner library", "overdue loans summary", "overdue",
     ("Dune", "Emma", "Beloved"), ("fiction", "history", "poetry")),
    ("fitness", "workout tracking app", "fitlog", "athlete", "athletes", "workout", "workouts", "workouts",
     "workout_name", "sport", "minutes", "training plan", "training_plan", "json", "/srv/fitlog",
     "program", "sync.fitlog.app", "wearable vendor", "monthly progress report", "progress",
     ("Tempo run", "Leg day", "Swim drills"), ("running", "cycling", "strength")),
    ("logistics", "freight logistics portal", "shipdesk", "dispatcher", "dispatchers", "shipment", "shipments",
     "shipments", "reference", "mode", "weight_kg", "packing manifest", "manifest", "csv", "/data/shipdesk",
     "route", "tracking.shipdesk.io", "carrier", "daily delivery summary", "delivery_summary",
     ("SH-1001", "SH-2040", "SH-3177"), ("ground", "air", "ocean")),
    ("music", "music streaming service", "tunehub", "listener", "listeners", "track", "tracks", "tracks",
     "title", "genre", "duration_s", "playlist export", "playlist", "m3u", "/srv/tunehub",
     "album", "meta.tunehub.fm", "record label", "listening stats report", "listening_stats",
     ("Blue Train", "Hey Jude", "Clair de Lune"), ("jazz", "rock", "classical")),
    ("weather", "weather monitoring dashboard", "skywatch", "observer", "observers", "reading", "readings",
     "readings", "station", "region", "temp_c", "sensor log", "sensor_log", "csv", "/var/lib/skywatch",
     "network", "feeds.skywatch.net", "national weather service", "daily forecast digest", "forecast",
     ("Harbor", "Ridge", "Airport"), ("coastal", "mountain", "urban")),
    ("inventory", "warehouse inventory system", "stockroom", "clerk", "clerks", "product", "products",
     "products", "sku", "category", "quantity", "stock count sheet", "stock_sheet", "csv", "/opt/stockroom",
     "bin", "erp.stockroom.com", "supplier", "reorder report", "reorder",
     ("Hex bolt", "Cable tie", "Drill bit"), ("hardware", "electrical", "tools")),
    ("school", "school gradebook", "gradebook", "teacher", "teachers", "student", "students", "students",
     "full_name", "subject", "grade_level", "assignment submission", "submission", "pdf", "/srv/gradebook",
     "classroom", "sis.gradebook.edu", "district office", "report card", "report_card",
     ("Ada Park", "Ben Ortiz", "Chloe Wu"), ("math", "science", "art")),
    ("travel", "travel booking site", "tripnest", "traveler", "travelers", "booking", "bookings", "bookings",
     "destination", "trip_type", "nights", "itinerary", "itinerary", "pdf", "/srv/tripnest",
     "trip", "fares.tripnest.com", "airline partner", "trip summary", "trip_summary",
     ("Lisbon", "Kyoto", "Oaxaca"), ("beach", "city", "hiking")),
    ("real_estate", "real estate listing site", "homefinder", "agent", "agents", "listing", "listings",
     "listings", "address", "property_type", "price", "floor plan", "floor_plan", "png", "/srv/homefinder",
     "portfolio", "mls.homefinder.com", "brokerage", "market snapshot", "market_snapshot",
     ("12 Elm St", "4 Bay Rd", "88 Oak Ave"), ("condo", "townhouse", "cabin")),
    ("pets", "pet adoption platform", "pawmatch", "volunteer", "volunteers", "pet", "pets", "pets",
     "pet_name", "species", "age_months", "vaccination record", "vaccination_record", "pdf", "/srv/pawmatch",
     "kennel", "api.pawmatch.org", "partner shelter", "adoption report", "adoptions",
     ("Biscuit", "Luna", "Pepper"), ("dog", "cat", "rabbit")),
    ("gardening", "community garden planner", "plotline", "gardener", "gardeners", "plant", "plants", "plants",
     "plant_name", "plant_type", "days_to_harvest", "planting schedule", "planting_schedule", "csv", "/srv/plotline",
     "plot", "seeds.plotline.net", "seed supplier", "harvest log", "harvest",
     ("Tomato", "Basil", "Kale"), ("herb", "vegetable", "flower")),
    ("events", "event ticketing site", "gatepass", "organizer", "organizers", "event", "events", "events",
     "title", "event_type", "capacity", "seating chart", "seating_chart", "svg", "/srv/gatepass",
     "series", "venues.gatepass.com", "venue", "attendance report", "attendance",
     ("Jazz Night", "Tech Meetup", "Food Fair"), ("concert", "workshop", "festival")),
    ("recruiting", "job board", "hirewell", "recruiter", "recruiters", "posting", "postings", "postings",
     "title", "department", "salary", "resume", "resume", "pdf", "/srv/hirewell",
     "pipeline", "jobs.hirewell.com", "staffing agency", "hiring funnel report", "funnel",
     ("Data Analyst", "Line Cook", "Nurse"), ("engineering", "sales", "support")),
    ("photography", "photo gallery site", "lenslog", "photographer", "photographers", "photo", "photos",
     "photos", "caption", "style", "width", "contact sheet", "contact_sheet", "jpg", "/srv/lenslog",
     "gallery", "cdn.lenslog.net", "print lab", "gallery stats", "gallery_stats",
     ("Sunset pier", "Fog bank", "Night market"), ("portrait", "landscape", "street")),
    ("museum", "museum collection database", "curio", "curator", "curators", "exhibit", "exhibits", "exhibits",
     "title", "medium", "year_acquired", "condition report", "condition_report", "txt", "/srv/curio",
     "wing", "loans.curio.museum", "lending museum", "visitor count report", "visitors",
     ("Bronze horse", "Tea bowl", "Star chart"), ("sculpture", "ceramics", "maps")),
    ("bikes", "bike rental service", "pedalshare", "rider", "riders", "bike", "bikes", "bikes",
     "label", "bike_type", "odometer_km", "maintenance log", "maintenance_log", "csv", "/srv/pedalshare",
     "fleet", "fleet.pedalshare.city", "city transit office", "ride summary", "rides",
     ("B-17", "B-42", "B-88"), ("city", "cargo", "electric")),
    ("hotel", "hotel reservation system", "staywell", "guest", "guests", "room", "rooms", "rooms",
     "room_number", "room_type", "rate", "invoice", "invoice", "pdf", "/srv/staywell",
     "floor", "channel.staywell.com", "travel agency", "occupancy report", "occupancy",
     ("101", "214", "330"), ("single", "double", "suite")),
    ("clinic", "clinic appointment scheduler", "carebook", "patient", "patients", "appointment", "appointments",
     "appointments", "patient_name", "specialty", "slot_minutes", "lab result", "lab_result", "pdf",
     "/srv/carebook", "department", "labs.carebook.health", "testing lab", "daily schedule", "schedule",
     ("Checkup", "Dental cleaning", "Physio"), ("general", "dental", "therapy")),
    ("podcast", "podcast hosting platform", "castaway", "podcaster", "podcasters", "episode", "episodes",
     "episodes", "title", "genre", "length_min", "transcript", "transcript", "txt", "/srv/castaway",
     "season", "feeds.castaway.fm", "ad network", "download stats report", "download_stats",
     ("Pilot", "Season finale", "Listener mailbag"), ("comedy", "news", "science")),
    ("boardgames", "board game cafe app", "meeplehall", "player", "players", "game", "games", "games",
     "title", "category", "max_players", "rulebook", "rulebook", "pdf", "/srv/meeplehall",
     "collection", "catalog.meeplehall.com", "distributor", "table usage report", "table_usage",
     ("Catan", "Azul", "Carcassonne"), ("strategy", "party", "cooperative")),
    ("garage", "car repair shop system", "garagepro", "mechanic", "mechanics", "repair", "repairs", "repairs",
     "plate", "service_type", "labor_hours", "inspection sheet", "inspection_sheet", "pdf", "/srv/garagepro",
     "bay", "parts.garagepro.com", "parts supplier", "weekly job sheet", "job_sheet",
     ("KX-4821", "TR-1190", "LM-5530"), ("brakes", "engine", "tires")),
    ("conference", "conference planning tool", "talkline", "speaker", "speakers", "talk", "talks", "talks",
     "title", "session_format", "slot_minutes", "slide deck", "slide_deck", "pdf", "/srv/talkline",
     "session", "cfp.talkline.dev", "sponsor", "conference agenda", "agenda",
     ("Intro to Rust", "Scaling Postgres", "Design Systems"), ("keynote", "panel", "lightning")),
    ("farm", "farm produce marketplace", "harvestlane", "grower", "growers", "basket", "baskets", "baskets",
     "basket_name", "farm", "weight_kg", "price sheet", "price_sheet", "csv", "/srv/harvestlane",
     "market", "orders.harvestlane.farm", "wholesale buyer", "sales summary", "sales",
     ("Spring greens", "Stone fruit", "Root mix"), ("Hillside", "Riverbend", "Oak Hollow")),
    ("astronomy", "astronomy club observation log", "starlog", "stargazer", "stargazers", "observation",
     "observations", "observations", "object_name", "object_type", "magnitude", "star chart", "star_chart",
     "png", "/srv/starlog", "night", "sky.starlog.space", "observatory", "seeing conditions report", "seeing",
     ("M31", "Jupiter", "Orion Nebula"), ("planet", "galaxy", "nebula")),
    ("language", "language learning app", "lingobox", "learner", "learners", "card", "cards", "cards",
     "front", "language", "interval_days", "vocabulary list", "vocab_list", "csv", "/srv/lingobox",
     "course", "dict.lingobox.app", "dictionary provider", "study streak report", "streaks",
     ("hola", "merci", "danke"), ("spanish", "french", "german")),
    ("sports", "amateur sports league site", "leaguedesk", "coach", "coaches", "match", "matches", "matches",
     "home_team", "sport", "home_score", "team roster", "roster", "csv", "/srv/leaguedesk",
     "division", "scores.leaguedesk.com", "referee association", "standings table", "standings",
     ("Tigers", "Comets", "Hawks"), ("soccer", "softball", "volleyball")),
    ("blog", "blogging platform", "inkwell", "writer", "writers", "post", "posts", "posts",
     "title", "topic", "word_count", "draft", "draft", "md", "/srv/inkwell",
     "blog", "api.inkwell.pub", "syndication partner", "readership report", "readership",
     ("Hello world", "Year in review", "Field notes"), ("travel", "tech", "food")),
]

DOMAINS: list[dict] = [dict(zip(_FIELDS, row)) for row in _RAW]


def _article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def vocabulary(domain: dict) -> dict[str, str]:
    """Placeholder values for ``string.Template`` substitution."""
    v = {k: val for k, val in domain.items() if isinstance(val, str)}
    v["a_site"] = f"{_article(domain['site'])} {domain['site']}"
    v["A_site"] = v["a_site"][0].upper() + v["a_site"][1:]
    v["the_site"] = f"the {domain['site']}"
    v["Item"] = "".join(part.capitalize() for part in domain["item"].split("_"))
    v["ITEM"] = domain["item"].upper()
    v["ITEMS"] = domain["items"].upper()
    v["APP"] = domain["app"].upper()
    v["App"] = domain["app"].capitalize()
    v["docs"] = _plural(domain["doc"])
    v["a_doc"] = f"{_article(domain['doc'])} {domain['doc']}"
    v["docs_id"] = _plural(domain["doc_id"])
    v["DOCS"] = v["docs_id"].upper()
    v["groups"] = _plural(domain["group"])
    v["Group"] = domain["group"].capitalize()
    v["User"] = "".join(part.capitalize() for part in domain["user"].split())
    v["Partner"] = "".join(part.capitalize() for part in domain["partner"].split())
    v["CAT_COL"] = domain["cat_col"].upper()
    v["NUM_COL"] = domain["num_col"].upper()
    v["a_user"] = f"{_article(domain['user'])} {domain['user']}"
    v["A_user"] = v["a_user"][0].upper() + v["a_user"][1:]
    v["a_item"] = f"{_article(domain['item'])} {domain['item']}"
    v["a_partner"] = f"{_article(domain['partner'])} {domain['partner']}"
    v["a_report"] = f"{_article(domain['report'])} {domain['report']}"
    v["cats_list"] = ", ".join(json.dumps(c) for c in domain["cats"])
    v["samples_list"] = ", ".join(json.dumps(c) for c in domain["samples"])
    for i, c in enumerate(domain["cats"]):
        v[f"cat{i}"] = c
    for i, s in enumerate(domain["samples"]):
        v[f"sample{i}"] = s
    return v
