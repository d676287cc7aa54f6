"""The image kind: one role, "image", declared on the generic provider registry.

Adding an image provider = one adapter module here, one line in `providers`, one contract test
(tests/media/test_image_providers.py). Remote adapters import their HTTP client lazily."""

from __future__ import annotations

from typing import Any

from django.conf import settings

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
    # A local diffusion pipeline is costly to load: built once per settings.
    cache_key=lambda choice: (repr(sorted(choice.conf.get(choice.provider, {}).items())), choice.timeout),
)

PROVIDERS = IMAGE.providers
