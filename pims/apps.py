from django.apps import AppConfig


class PimsConfig(AppConfig):
    name = "pims"
    verbose_name = "Practice"
