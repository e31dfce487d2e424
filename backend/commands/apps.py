from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "backend.commands"
    label = "commands"
    verbose_name = "Write side"
