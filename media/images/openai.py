"""`openai`: the Images API (POST /v1/images/generations), base64 results, through the official SDK.

OpenAI paints only a few sizes: the nearest one of the model's is asked for (a 16:9 scene gets the
landscape size); the picture is stored at the size it comes in. A content-policy refusal (400
`content_policy_violation`, or `moderation_blocked`) is a failure the GM sees, never retried."""

from __future__ import annotations

import openai

from gtw_site.providers import ProviderError, error_detail, safe_url, status_error
from media.images.base import Generated, ImageJob, Progress, checked
from media.images.remote import b64_image

SIZES = {
    "dall-e-2": ("1024x1024", "1024x1024", "1024x1024"),
    "dall-e-3": ("1792x1024", "1024x1024", "1024x1792"),
}
DEFAULT_SIZES = ("1536x1024", "1024x1024", "1024x1536")  # gpt-image-1 and later: landscape, square, portrait


def size_for(model: str, width: int, height: int) -> str:
    landscape, square, portrait = SIZES.get(model, DEFAULT_SIZES)
    ratio = width / max(height, 1)
    return landscape if ratio > 1.2 else portrait if ratio < 0.83 else square


class OpenAIImages:
    name = "openai"
    rights = "OpenAI terms of use (the output is yours to use, within OpenAI's usage policies)"

    def __init__(
        self,
        *,
        api_key: str = "",
        base_url: str | None = None,
        model: str = "gpt-image-1",
        timeout: float = 300.0,
        max_bytes: int = 20_000_000,
        **_: object,
    ) -> None:
        self.model = model
        self.base_url = base_url or None
        self.max_bytes = max_bytes
        if not api_key:
            raise ProviderError(
                "no API key configured — set GTW_IMAGE_OPENAI_API_KEY or OPENAI_API_KEY",
                retryable=False,
                provider=self.name,
            )
        # max_retries=0: the job's retry is the GM's call; one painting is costly.
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=0)

    def generate(self, job: ImageJob, progress: Progress) -> Generated:
        progress(0, 1)
        prompt = job.prompt if not job.negative else f"{job.prompt}\n\nAvoid: {job.negative}"
        kwargs: dict = {
            "model": self.model,
            "prompt": prompt[:4000],
            "size": size_for(self.model, job.width, job.height),
            "n": 1,
        }
        if self.model.startswith("dall-e"):
            kwargs["response_format"] = "b64_json"  # gpt-image models always answer in base64
        try:
            result = self._client.images.generate(**kwargs)
        except openai.APIStatusError as exc:
            detail = error_detail(exc.body) or str(exc)
            raise status_error(
                self.name,
                exc.status_code,
                detail,
                auth="check GTW_IMAGE_OPENAI_API_KEY / OPENAI_API_KEY",
                model=self.model,
            ) from None
        except openai.APITimeoutError:
            raise ProviderError(
                "no picture within the time limit", retryable=True, provider=self.name
            ) from None
        except openai.APIConnectionError:
            where = safe_url(self.base_url or "https://api.openai.com/v1")
            raise ProviderError(f"cannot reach {where}", retryable=True, provider=self.name) from None
        data = result.data or []
        if not data:
            raise ProviderError("returned no image", retryable=False, provider=self.name)
        picture = b64_image(self.name, data[0].b64_json)
        progress(1, 1)
        return checked(picture, provider=self.name, max_bytes=self.max_bytes)
