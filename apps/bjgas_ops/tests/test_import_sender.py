"""The import writer's second thread: order, escaping, and failure inside the transaction.

An import sends the rows of each batch's logs, clocks, segments and history to the
database from a thread of its own, on the import's own connection, while it computes the
next batch. These tests drive it on the real database (SQLite or MariaDB).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import DatabaseError, connection, transaction

from apps.bjgas_ops.importers import writer
from apps.bjgas_platform.models import Region

pytestmark = pytest.mark.django_db

AWKWARD = "it's a \\ back'slash \"quoted\" 北京燃气\n"


def change(pk: int, state: str, kind: str | None = "~") -> tuple:
    return (pk, "2016-03-01 01:00:00", kind, state, None, 1, None)


def rows_of_changes() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, state FROM {writer.CHANGES_TABLE} ORDER BY id")  # noqa: S608
        return [tuple(row) for row in cursor.fetchall()]


def test_queries_of_this_thread_wait_for_what_was_sent():
    with transaction.atomic():
        writer._create_changes_table()
        many = [change(pk, f"state {pk}") for pk in range(1, 5001)]
        with writer._Sender() as send:
            send(writer._statements(writer.CHANGES_TABLE, list(writer.CHANGE_COLUMNS), many))
            send(
                writer._statements(
                    writer.CHANGES_TABLE, list(writer.CHANGE_COLUMNS), [change(9999, AWKWARD)]
                )
            )
            # Read at once, while the inserts may still run: the read waits for them.
            found = rows_of_changes()
    assert len(found) == 5001
    assert found[0] == (1, "state 1")
    assert found[-1] == (9999, AWKWARD)


def test_a_failure_in_the_thread_rolls_the_whole_transaction_back():
    before = Region.objects.count()
    with pytest.raises(DatabaseError), transaction.atomic():
        Region.objects.create(code="SENDER-T", name="发送线程测试区")
        writer._create_changes_table()
        with writer._Sender() as send:
            columns = list(writer.CHANGE_COLUMNS)
            send(writer._statements(writer.CHANGES_TABLE, columns, [change(1, "fine")]))
            # history_type is NOT NULL: the database refuses this row in the thread.
            send(writer._statements(writer.CHANGES_TABLE, columns, [change(2, "bad", None)]))
            send(writer._statements(writer.CHANGES_TABLE, columns, [change(3, "after")]))
    assert Region.objects.count() == before
    assert not Region.objects.filter(code="SENDER-T").exists()


def test_times_and_numbers_keep_their_values():
    """The MariaDB path writes values as SQL text; read them back through the ORM route."""
    with transaction.atomic():
        writer._create_changes_table()
        when = datetime(2016, 3, 1, 1, 2, 3, 456789)
        row = (42, writer._db(when.replace(tzinfo=writer.UTC)), "+", "新建", 7, 3, 12345678901)
        with writer._Sender() as send:
            send(writer._statements(writer.CHANGES_TABLE, list(writer.CHANGE_COLUMNS), [row]))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, history_date, history_type, state, support_group_id, tier, "  # noqa: S608
                f"assignee_id FROM {writer.CHANGES_TABLE}"
            )
            got = list(cursor.fetchone())
    stored = got[1] if isinstance(got[1], datetime) else datetime.fromisoformat(got[1])
    assert stored.replace(tzinfo=None) == when
    assert got[0] == 42 and got[2:] == ["+", "新建", 7, 3, 12345678901]
