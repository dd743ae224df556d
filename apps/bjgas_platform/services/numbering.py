"""Hand out record numbers: PREFIX-YYYYMMDD-NNNN, per local day, gap-free per commit."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import NumberSequence


def next_number(prefix: str, width: int = 4) -> str:
    """Return the next number for `prefix` today (local time); call inside the create."""
    day = timezone.localdate()
    with transaction.atomic():
        row = NumberSequence.objects.select_for_update().filter(prefix=prefix, day=day).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = NumberSequence.objects.create(prefix=prefix, day=day, last=0)
            except IntegrityError:
                row = NumberSequence.objects.select_for_update().get(prefix=prefix, day=day)
        row.last += 1
        row.save(update_fields=["last"])
    return f"{prefix}-{day:%Y%m%d}-{row.last:0{width}d}"
