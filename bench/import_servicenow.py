"""Benchmark of the ticket-history import on the real ServiceNow event log.

Run from a set-up checkout:

    .venv/bin/python bench/import_servicenow.py

For each database, in a fresh instance (an SQLite file in a temporary folder, then the
MariaDB database BENCH_DATABASE_URL or mysql://root@127.0.0.1:3306/bjgas_bench_import,
dropped and created again: its name must contain "bench"), it migrates, loads the demo
organisation, imports ../shared/datasets/servicenow_incident_event_log.csv.zip
(119,998 rows, 20,769 incidents) once, then imports it again (every incident updated).
Each run happens in a child process of its own, as `manage.py import_tickets` would.
The last line printed is one JSON object with events per second of the first import
on each database (`sqlite_events_per_s`, `mariadb_events_per_s`), and the seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bjgas.datasets import dataset  # noqa: E402 (after the path is set)

DATASET = dataset("servicenow_incident_event_log.csv.zip")
MARIADB_URL = os.environ.get("BENCH_DATABASE_URL", "mysql://root@127.0.0.1:3306/bjgas_bench_import")


def say(text: str) -> None:
    print(text, flush=True)


def child() -> None:
    """Set up one fresh instance, import twice, print one JSON line of figures."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bjgas.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from apps.bjgas_ops.importers.servicenow import import_servicenow

    call_command("ensure_database", verbosity=0)
    call_command("migrate", verbosity=0)
    call_command("load_demo_data", verbosity=0)
    first = import_servicenow(DATASET)
    again = import_servicenow(DATASET)
    print(
        json.dumps(
            {
                "rows": first.rows,
                "incidents": first.created,
                "events": first.events,
                "seconds": round(first.seconds, 2),
                "events_per_s": round(first.events_per_second),
                "rerun_updated": again.updated,
                "rerun_seconds": round(again.seconds, 2),
                "rerun_events_per_s": round(again.events_per_second),
            }
        )
    )


def run_child(label: str, env: dict) -> dict:
    say(f"{label}: migrate, demo organisation, import {DATASET.name} twice ...")
    done = subprocess.run(  # noqa: S603 (this interpreter running this file)
        [sys.executable, __file__, "--child"],
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        say(done.stdout[-2000:] + done.stderr[-4000:])
        sys.exit(f"{label}: the import failed")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    say(
        f"{label}: {figures['incidents']} incidents, {figures['events']} events in "
        f"{figures['seconds']} s = {figures['events_per_s']} events/s; again (updates): "
        f"{figures['rerun_seconds']} s = {figures['rerun_events_per_s']} events/s"
    )
    return figures


def drop_mariadb() -> None:
    import environ
    import MySQLdb

    config = environ.Env.db_url_config(MARIADB_URL)
    if "bench" not in config["NAME"]:
        sys.exit(f"Refusing to drop database {config['NAME']!r}: its name must contain 'bench'.")
    server = MySQLdb.connect(
        host=config["HOST"] or "127.0.0.1",
        port=int(config["PORT"] or 3306),
        user=config["USER"] or "root",
        password=config["PASSWORD"] or "",
    )
    server.cursor().execute(f"DROP DATABASE IF EXISTS `{config['NAME']}`")
    server.close()


def main() -> None:
    if not DATASET.exists():
        sys.exit(f"The dataset is missing: {DATASET}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bjgas-bench-import-") as folder:
        env = {"BJGAS_SITE_DIR": folder, "DATABASE_URL": "", "REDIS_URL": ""}
        results["sqlite"] = run_child("SQLite", env)
    drop_mariadb()
    with tempfile.TemporaryDirectory(prefix="bjgas-bench-import-") as folder:
        env = {"BJGAS_SITE_DIR": folder, "DATABASE_URL": MARIADB_URL, "REDIS_URL": ""}
        results["mariadb"] = run_child("MariaDB", env)
    drop_mariadb()
    print(
        json.dumps(
            {
                "sqlite_events_per_s": results["sqlite"]["events_per_s"],
                "mariadb_events_per_s": results["mariadb"]["events_per_s"],
                "sqlite_seconds": results["sqlite"]["seconds"],
                "mariadb_seconds": results["mariadb"]["seconds"],
                "sqlite_rerun_events_per_s": results["sqlite"]["rerun_events_per_s"],
                "mariadb_rerun_events_per_s": results["mariadb"]["rerun_events_per_s"],
                "events": results["sqlite"]["events"],
                "incidents": results["sqlite"]["incidents"],
            }
        )
    )


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
