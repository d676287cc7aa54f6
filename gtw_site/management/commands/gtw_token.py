from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from gtw_site.models import ApiToken


class Command(BaseCommand):
    help = "Issue an API token for USERNAME and print it (the token is the last line of output)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--create", action="store_true", help="create the user if missing")
        parser.add_argument("--name", default="cli")

    def handle(self, username, create, name, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create:
                raise CommandError(f"No user '{username}'. Use --create to make one.")
            user = User.objects.create_user(username=username, email=f"{username}@localhost")
            user.set_unusable_password()
            user.save()
            self.stderr.write(f"created user {username}")
        _, raw = ApiToken.issue(user=user, name=name)
        self.stdout.write(raw)
