"""The image kind: one role, "image", declared on the generic provider registry.

Adding an image provider = one adapter module here, one line in `providers`, one contract test
(tests/media/test_image_providers.py). Remote adapters import their HTTP client lazily.

Which provider paints a campaign's next picture is the runtime selection's (the providers page:
the campaign's choice, else an active A/B variant, else the site's choice), else
GTW_IMAGE_PROVIDER: `choice_for` names it (and its model, both part of the picture's cache key)
when the picture is requested, and `adapter_for` builds exactly that one when the job runs, with
one telemetry row (kind image) per picture naming it."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from gtw_site.providers.base import Usage, load_factory
from gtw_site.providers.registry import CALL, Choice, Registry


def _arguments(choice: Choice) -> dict[str, Any]:
    conf = choice.conf
    common = {"max_bytes": conf["max_bytes"]}
    if choice.provider == "procedural":
        return {**common, "step_delay_s": conf["procedural"]["step_delay_s"]}
    vendor = conf.get(choice.provider, {})
    return {**common, **vendor, "timeout": choice.timeout}


IMAGE = Registry(
    "image",
    roles=("image",),
    providers={
        "procedural": "media.images.procedural:ProceduralPainter",
        "openai": "media.images.openai:OpenAIImages",
        "automatic1111": "media.images.automatic1111:Automatic1111",
        "comfyui": "media.images.comfyui:ComfyUI",
        "diffusers": "media.images.diffusers_local:DiffusersPipeline",
    },
    settings=lambda: settings.GTW_IMAGES,
    # GTW_IMAGE_TIMEOUT_S bounds one generation, whichever provider paints it.
    timeout=lambda role, conf: conf[role]["timeout"],
    arguments=_arguments,
    calls={"generate": CALL},
    # A local diffusion pipeline is costly to load: built once per settings (and choice).
    cache_key=lambda choice: (repr(sorted(choice.conf.get(choice.provider, {}).items())), choice.timeout),
)

PROVIDERS = IMAGE.providers
MODEL_MAX = 200  # media.Image.model's length (a diffusers folder's path can be long)


def _takes_model(provider: str) -> bool:
    """Whether `provider`'s adapter names a `model` argument (a choice's model option is then
    the model it paints with; ComfyUI's checkpoint and diffusers' folder are settings)."""
    dotted = IMAGE.providers.get(provider)
    if not dotted:
        return False
    try:
        return "model" in inspect.signature(load_factory(dotted)).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return False


def model_for(provider: str, conf: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> str:
    """The model `provider` paints with under these settings and a choice's options."""
    if provider == "procedural":
        from media.images.procedural import ProceduralPainter

        return ProceduralPainter.model
    if options and options.get("model") and _takes_model(provider):
        return str(options["model"])[:MODEL_MAX]
    vendor = conf.get(provider) or {}
    return str(vendor.get("model") or vendor.get("checkpoint") or vendor.get("path") or "")[:MODEL_MAX]


def choice_for(campaign_id: int | None, session_id: int | None = None) -> tuple[str, str, Any]:
    """(provider, model, the runtime Selection or None) for a campaign's next picture: the
    campaign's choice, else an active A/B variant (per campaign or session), else the site's,
    else GTW_IMAGE_PROVIDER. One revision read (gtw_site.providers.selection), no build."""
    from gtw_site.providers import selection

    conf = settings.GTW_IMAGES
    chosen = selection.current("image", campaign_id, session_id) if IMAGE.selectable else None
    if chosen is None:
        provider = IMAGE.provider_name("image", conf)
        return provider, model_for(provider, conf), None
    return chosen.provider, model_for(chosen.provider, conf, chosen.options), chosen


def adapter_for(image: Any) -> tuple[Any, float]:
    """The adapter a picture row was keyed for (its `provider` and `model`), recorded, and the
    timeout: the runtime choice in force when it still names them (its options and stored key
    apply), else that provider from the environment's settings (the choice changed since the
    request: the row keeps the provider and model it was asked with, but a stored key chosen
    with it no longer applies)."""
    from gtw_site.telemetry import enabled as telemetry_enabled

    conf = settings.GTW_IMAGES
    provider, model, chosen = choice_for(image.campaign_id, image.session_id)
    if chosen is not None and (provider, model) == (image.provider, image.model):
        adapter = IMAGE.build("image", selection=chosen)
    else:
        chosen = None
        if IMAGE.provider_name("image", conf) != image.provider:
            conf = {**conf, "image": {**conf["image"], "provider": image.provider}}
        if image.model and model_for(image.provider, conf) != image.model and _takes_model(image.provider):
            conf = {**conf, image.provider: {**(conf.get(image.provider) or {}), "model": image.model}}
        adapter = IMAGE.build("image", conf)
    if IMAGE.telemetry and telemetry_enabled():
        # A shadow painter per picture would double the cost of every picture: none here.
        adapter = IMAGE.wrap("image", _Picture(adapter), chosen, shadows=False)
    return adapter, float(conf["image"]["timeout"])


class _Picture:
    """An image adapter as its telemetry row sees it: a `generate` that returned made one
    picture (`images` = 1, priced per image), unless the adapter counted otherwise."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model

    @property
    def last_usage(self) -> Usage:
        return getattr(self.inner, "last_usage", None) or Usage(images=1)

    def generate(self, job: Any, progress: Any) -> Any:
        return self.inner.generate(job, progress)

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)
