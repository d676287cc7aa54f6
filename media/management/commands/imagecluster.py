"""`manage.py imagecluster`: the images cluster (Q_CLUSTER_NAME=gtw-images), after re-queueing
the pictures a killed predecessor left queued or running (or failing those out of attempts).
Run one per deployment; more workers go in GTW_IMAGE_WORKERS."""

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the images task cluster, first recovering pictures a killed worker left behind."

    def handle(self, *args, **options):
        from media.images.tasks import recover_at_start

        os.environ.setdefault("Q_CLUSTER_NAME", "gtw-images")
        recovered = recover_at_start()
        if recovered:
            self.stdout.write(f"gtw: re-queued or failed {recovered} interrupted picture(s)")
        call_command("qcluster")
