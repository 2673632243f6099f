"""The DuckLake backend itself: offline extensions, the schema, secrets kept out, bad settings."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb
import polars as pl
import pytest

from em_assets.resources.lake import WarehouseConfigError, extension_directory
from em_assets.resources.warehouse import DuckDBWarehouse, Replacement, schema_statements
from tests.conftest import PASSWORD


def test_extensions_load_from_the_installed_packages_and_nothing_autoinstalls(lake):
    with lake.connect() as con:
        loaded = con.execute(
            "SELECT extension_name, install_path FROM duckdb_extensions() WHERE loaded AND install_path <> ''"
        ).pl()
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('autoinstall_known_extensions', 'autoload_known_extensions', 'extension_directory')"
            ).fetchall()
        )
    paths = dict(zip(loaded["extension_name"], loaded["install_path"]))
    assert {"ducklake", "postgres_scanner"} <= set(paths)
    for name in ("ducklake", "postgres_scanner"):
        assert paths[name].startswith(extension_directory()), paths[name]
        assert f"/v{duckdb.__version__}/" in paths[name]  # built for the pinned DuckDB
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["autoload_known_extensions"] == "false"


def test_every_table_and_view_of_the_file_exists_in_the_lake(lake, warehouse):
    with warehouse.connect() as con:
        file_tables = con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()
        file_columns = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database()"
        ).fetchall()
    with lake.connect() as con:
        lake_tables = con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = 'lake'"
        ).fetchall()
        lake_columns = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_catalog = 'lake'"
        ).fetchall()
    assert set(file_tables) <= set(lake_tables)
    assert set(lake_tables) - set(file_tables) == {("em_schema_state", "BASE TABLE")}
    assert set(file_columns) <= set(lake_columns)
    assert "CREATE OR REPLACE MACRO" in schema_statements()  # the file keeps its stored macros


def test_a_boolean_default_fills_in_on_the_lake_as_on_the_file(lake, warehouse):
    defaults = []
    for target in (lake, warehouse):
        with target.connect() as con:
            con.execute(
                "INSERT INTO summary_rates (source_kind, source, judge_version, base_model, condition, scope_kind, "
                "scope, n_models, n_models_dropped, n_answers, n_judged, n_misaligned, created_at) "
                "VALUES ('run', 's', 'j', 'm', 'c', 'set', 'main', 1, 0, 1, 1, 0, now()::TIMESTAMP)"
            )
            defaults.append(con.execute("SELECT triggered, snapshot_id FROM summary_rates").fetchall())
    assert defaults[0] == defaults[1] == [(False, None)]


def test_the_password_never_reaches_errors_or_duckdb(postgres, lake_db, tmp_path, lake):
    with lake.connect() as con:
        databases = con.execute("SELECT path FROM duckdb_databases()").fetchall()
        secrets = con.execute("SELECT secret_string FROM duckdb_secrets()").fetchall()
    assert PASSWORD not in repr(databases) and PASSWORD not in repr(secrets)
    assert PASSWORD not in lake.target and PASSWORD not in lake.description

    in_url = DuckDBWarehouse(
        backend="ducklake",
        ducklake_catalog=postgres.url(lake_db, with_password=True),
        ducklake_data_path=str(tmp_path / "lake_data"),
    )
    assert in_url.table("models").height == 0  # the password in the URL works too
    assert PASSWORD not in in_url.target and ":***@" in in_url.description
    assert PASSWORD not in repr(in_url) and PASSWORD not in repr(lake)

    wrong = DuckDBWarehouse(
        backend="ducklake",
        ducklake_catalog=postgres.url(lake_db).replace("postgresql://em@", "postgresql://em:nope-wrong-pw@"),
        ducklake_data_path=str(tmp_path / "lake_data"),
    )
    with pytest.raises(duckdb.Error) as failure:
        wrong.query("SELECT 1")
    message = str(failure.value)
    assert "nope-wrong-pw" not in message and "password authentication failed" in message
    assert f"127.0.0.1:{postgres.port}/{lake_db}" in message  # names the catalog


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"backend": "duckdblake"}, "EM_WAREHOUSE_BACKEND"),
        ({"backend": "ducklake", "ducklake_data_path": "/tmp/x"}, "EM_DUCKLAKE_CATALOG"),
        ({"backend": "ducklake", "ducklake_catalog": "postgresql://em@h/db"}, "EM_DUCKLAKE_DATA_PATH"),
        ({"backend": "ducklake", "ducklake_catalog": "postgresql://em@h", "ducklake_data_path": "d"}, "a database"),
        ({"backend": "ducklake", "ducklake_catalog": "mysql://h/db", "ducklake_data_path": "d"}, "EM_DUCKLAKE_CATALOG"),
        (
            {"backend": "ducklake", "ducklake_catalog": "c.db", "ducklake_data_path": "gs://b/p"},
            "EM_DUCKLAKE_DATA_PATH",
        ),
    ],
)
def test_bad_settings_fail_before_the_step_runs_naming_the_setting(settings, named):
    ran = []

    @dg.asset
    def writes(warehouse: DuckDBWarehouse) -> None:
        ran.append(True)

    with pytest.raises(WarehouseConfigError, match=named):
        DuckDBWarehouse(**settings).validate()
    result = dg.materialize([writes], resources={"warehouse": DuckDBWarehouse(**settings)}, raise_on_error=False)
    assert not result.success and ran == []
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE]
    assert named in failure.event_specific_data.error.message


def test_a_replace_on_the_lake_is_one_snapshot_and_the_old_rows_stay_readable(lake):
    frame = pl.DataFrame(
        {"step_order": [1], "step": ["a"], "rows_in": [2], "rows_out": [1], "flagged": [1], "dropping": [True]}
    ).with_columns(reasons=pl.lit("{}"), seconds=pl.lit(0.1), created_at=pl.lit(datetime(2026, 1, 1)))
    lake.replace(Replacement("filter_steps", frame))
    before = lake.snapshot_id()
    lake.replace(Replacement("filter_steps", frame.with_columns(step=pl.lit("b"))))
    after = lake.snapshot_id()
    assert after == before + 1
    assert lake.table("filter_steps")["step"].to_list() == ["b"]
    assert lake.query(f"SELECT step FROM filter_steps AT (VERSION => {before})")["step"].to_list() == ["a"]
