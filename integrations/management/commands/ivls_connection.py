from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from integrations.ivls.models import IVLSConnection
from integrations.ivls.services import connection_configure
from pims.models import Department


class Command(BaseCommand):
    help = "Enable or disable a department's IVLS connection and set its password."

    def add_arguments(self, parser):
        parser.add_argument("unit", type=int, help="the department's Unit ID")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--enable", action="store_true")
        group.add_argument("--disable", action="store_true")
        parser.add_argument("--password", help="at least 12 characters")

    def handle(self, *args, unit, enable, disable, password, **options):
        department = Department.objects.filter(pk=unit).first()
        if department is None:
            raise CommandError(f"There is no department with Unit ID {unit}.")
        current = IVLSConnection.objects.filter(department=department).first()
        enabled = True if enable else False if disable else bool(current and current.enabled)
        try:
            connection = connection_configure(
                department=department, enabled=enabled, password=password
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        state = "enabled" if connection.enabled else "disabled"
        pw = "; password changed" if password else ""
        self.stdout.write(f"IVLS connection of unit {unit} ({department.name}) {state}{pw}.")
