from django.core.management.base import BaseCommand

from ...roles import load_reference_data


class Command(BaseCommand):
    help = "Create the standard roles, their permissions and the default workflows if missing."

    def handle(self, *args, **options):
        created = load_reference_data()
        self.stdout.write(
            "reference data loaded; new roles: %s" % (", ".join(sorted(created)) or "none")
        )
