"""Create the configured MariaDB database (utf8mb4) if it does not exist yet."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections


class Command(BaseCommand):
    help = "Create the MariaDB database named in DATABASE_URL if missing; no-op on SQLite."

    def handle(self, *args, **options):
        settings_dict = connections["default"].settings_dict
        if "mysql" not in settings_dict["ENGINE"]:
            return
        import MySQLdb

        name = settings_dict["NAME"]
        if not name.replace("_", "").isalnum():
            raise CommandError(
                f"DATABASE_URL: the database name '{name}' must be letters, digits and '_' only."
            )
        try:
            server = MySQLdb.connect(
                host=settings_dict["HOST"] or "127.0.0.1",
                port=int(settings_dict["PORT"] or 3306),
                user=settings_dict["USER"],
                password=settings_dict["PASSWORD"],
                charset="utf8mb4",
            )
        except MySQLdb.OperationalError as exc:
            raise CommandError(f"DATABASE_URL: cannot reach the MariaDB server: {exc}") from exc
        with server.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cursor.execute("SELECT COUNT(*) FROM mysql.time_zone_name")
            if cursor.fetchone()[0] == 0:
                self.stderr.write(
                    "warning: MariaDB's time-zone tables are empty; reports grouped by day or "
                    "month will fail. Load them as root: mariadb-tzinfo-to-sql "
                    "/usr/share/zoneinfo | mariadb -uroot mysql"
                )
        server.close()
