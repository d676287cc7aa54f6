from django.core.management.base import BaseCommand

from campaigns.content import content_load


class Command(BaseCommand):
    help = "Install or update the content packs and GM personalities from content/."

    def handle(self, **options):
        changed = content_load()
        self.stdout.write("\n".join(changed) if changed else "content is up to date")
