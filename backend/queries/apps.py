from django.apps import AppConfig


class QueriesConfig(AppConfig):
    name = "backend.queries"
    label = "queries"
    verbose_name = "Read side"
