from django.apps import AppConfig


class GtwSiteConfig(AppConfig):
    name = "gtw_site"
    verbose_name = "Site"
