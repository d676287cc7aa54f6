"""Contract tests of the image adapters against local servers speaking each vendor's wire format
(tests/fakes/image_servers.py): OpenAI Images (the official SDK), AUTOMATIC1111, ComfyUI (HTTP
and its websocket). No network. Plus `diffusers` without its optional packages (with them:
tests/media/test_image_diffusers.py)."""

from __future__ import annotations

import base64

import pytest

from gtw_site.providers.base import ProviderError
from media.images import comfyui
from media.images.automatic1111 import Automatic1111
from media.images.base import ImageJob
from media.images.comfyui import ComfyUI
from media.images.diffusers_local import DiffusersPipeline
from media.images.openai import OpenAIImages, size_for
from tests.fakes.image_servers import a1111_server, comfy_server, openai_server, png

JOB = ImageJob(
    prompt="a relay station over an ice moon",
    negative="text, watermark",
    seed=1234,
    width=768,
    height=432,
    steps=6,
)


class Steps(list):
    def __call__(self, done, total):
        self.append((done, total))


# ---- OpenAI ---------------------------------------------------------------------------------


def test_openai_paints_through_the_sdk_in_base64():
    with openai_server() as server:
        steps = Steps()
        out = OpenAIImages(
            api_key="sk-test-123456", base_url=f"{server.url}/v1", model="gpt-image-1", timeout=5
        ).generate(JOB, steps)
        method, path, body = server.requests[0]
        assert (method, path) == ("POST", "/v1/images/generations")
        assert body["model"] == "gpt-image-1" and body["size"] == "1536x1024" and body["n"] == 1
        assert "ice moon" in body["prompt"] and "Avoid: text, watermark" in body["prompt"]
        assert "response_format" not in body  # gpt-image models always answer in base64
        assert (out.width, out.height) == (1536, 1024) and out.content_type == "image/png"
        assert steps[-1] == (1, 1)


def test_openai_dall_e_asks_for_base64_and_its_own_sizes():
    assert size_for("dall-e-3", 768, 432) == "1792x1024"
    assert size_for("dall-e-3", 384, 384) == "1024x1024"
    assert size_for("gpt-image-1", 400, 700) == "1024x1536"
    with openai_server() as server:
        OpenAIImages(
            api_key="sk-test-123456", base_url=f"{server.url}/v1", model="dall-e-3", timeout=5
        ).generate(JOB, Steps())
        assert server.requests[0][2]["response_format"] == "b64_json"


@pytest.mark.parametrize(
    ("mode", "needle", "retryable"),
    [("500", "server error (500)", True), ("refusal", "safety system", False)],
)
def test_openai_errors_are_worded_and_marked(mode, needle, retryable):
    with openai_server() as server:
        server.script["mode"] = mode
        with pytest.raises(ProviderError) as caught:
            OpenAIImages(api_key="sk-test-123456", base_url=f"{server.url}/v1", timeout=5).generate(
                JOB, Steps()
            )
    assert needle in str(caught.value) and caught.value.retryable is retryable


def test_openai_timeout_and_corrupt_image():
    with openai_server() as server:
        server.script.update(mode="slow", delay=2)
        with pytest.raises(ProviderError) as caught:
            OpenAIImages(api_key="sk-test-123456", base_url=f"{server.url}/v1", timeout=0.5).generate(
                JOB, Steps()
            )
        assert caught.value.retryable
        server.script.update(mode="ok", b64=base64.b64encode(png()[:50]).decode())
        with pytest.raises(ProviderError, match="corrupt image"):
            OpenAIImages(api_key="sk-test-123456", base_url=f"{server.url}/v1", timeout=5).generate(
                JOB, Steps()
            )


def test_openai_without_a_key_says_so():
    with pytest.raises(ProviderError, match="no API key"):
        OpenAIImages(api_key="", base_url=None)


# ---- AUTOMATIC1111 ------------------------------------------------------------------------


def test_a1111_paints_and_reports_its_sampling_steps():
    with a1111_server() as server:
        server.script["step_s"] = 0.25
        steps = Steps()
        out = Automatic1111(base_url=server.url, model="sd_xl_base_1.0", timeout=10).generate(JOB, steps)
        posts = [r for r in server.requests if r[0] == "POST"]
        body = posts[0][2]
        assert posts[0][1] == "/sdapi/v1/txt2img"
        assert body["prompt"] == JOB.prompt and body["negative_prompt"] == JOB.negative
        assert (body["seed"], body["width"], body["height"], body["steps"]) == (1234, 768, 432, 6)
        assert body["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0"}
        assert any(path.startswith("/sdapi/v1/progress") for m, path, _ in server.requests if m == "GET")
        middle = [d for d, t in steps if 0 < d < t]
        assert middle, f"no progress between start and end: {steps}"
        assert steps[-1] == (6, 6) and (out.width, out.height) == (768, 432)


def test_a1111_server_error_and_unreachable():
    with a1111_server() as server:
        server.script["mode"] = "500"
        with pytest.raises(ProviderError) as caught:
            Automatic1111(base_url=server.url, timeout=5).generate(JOB, Steps())
        assert "server error (500)" in str(caught.value) and "CUDA out of memory" in str(caught.value)
        url = server.url
    with pytest.raises(ProviderError) as caught:
        Automatic1111(base_url=url, timeout=2).generate(JOB, Steps())
    assert caught.value.retryable and "cannot reach" in str(caught.value)


# ---- ComfyUI ------------------------------------------------------------------------------


def _comfy(server, **kw):
    return ComfyUI(
        base_url=server.url,
        ws_url=server.ws_url,
        checkpoint="sdxl.safetensors",
        timeout=kw.pop("timeout", 15),
        **kw,
    )


@pytest.mark.parametrize("ending", ["success", "legacy"])
def test_comfyui_paints_with_progress_over_its_websocket(ending):
    """ComfyUI 8395: the end is `execution_success` now, `executing` with no node before."""
    with comfy_server() as server:
        server.script["ws"] = ending
        steps = Steps()
        out = _comfy(server).generate(JOB, steps)
        post = next(r for r in server.requests if r[0] == "POST")
        graph = post[2]["prompt"]
        assert post[2]["client_id"] == server.script["client_id"]
        assert graph["3"]["inputs"]["seed"] == 1234 and graph["3"]["inputs"]["steps"] == 6
        assert graph["5"]["inputs"]["width"] == 768 and graph["6"]["inputs"]["text"] == JOB.prompt
        assert graph["4"]["inputs"]["ckpt_name"] == "sdxl.safetensors"
        assert (1, 6) in steps and (6, 6) in steps
        assert (1, 2) not in steps  # another client's progress was ignored
        assert any(path.startswith("/view?") for m, path, _ in server.requests if m == "GET")
        assert out.content_type == "image/png"


@pytest.mark.parametrize("mode", ["silent", "close"])
def test_comfyui_falls_back_to_polling_history(mode, monkeypatch):
    monkeypatch.setattr(comfyui, "SILENCE_S", 0.5)
    monkeypatch.setattr(comfyui, "POLL_S", 0.1)
    with comfy_server() as server:
        server.script["ws"] = mode
        out = _comfy(server).generate(JOB, Steps())
        assert out.content_type == "image/png"
        assert any(path.startswith("/history/") for m, path, _ in server.requests if m == "GET")


def test_comfyui_without_a_websocket_still_finishes(monkeypatch):
    monkeypatch.setattr(comfyui, "POLL_S", 0.1)
    with comfy_server() as server:
        server.script["done"] = {"p1": "ok"}
        provider = ComfyUI(base_url=server.url, ws_url="ws://127.0.0.1:9/ws", timeout=10)
        assert provider.generate(JOB, Steps()).content_type == "image/png"


def test_comfyui_execution_error_and_refused_workflow():
    with comfy_server() as server:
        server.script["ws"] = "error"
        with pytest.raises(ProviderError, match="CUDA out of memory"):
            _comfy(server).generate(JOB, Steps())
    with comfy_server() as server:
        server.script["mode"] = "bad_workflow"
        with pytest.raises(ProviderError) as caught:
            _comfy(server).generate(JOB, Steps())
        assert "400" in str(caught.value) and not caught.value.retryable


def test_comfyui_a_job_that_never_finishes_times_out(monkeypatch):
    monkeypatch.setattr(comfyui, "SILENCE_S", 0.2)
    monkeypatch.setattr(comfyui, "POLL_S", 0.1)
    with comfy_server() as server:
        server.script["ws"] = "stuck"
        steps = Steps()
        with pytest.raises(ProviderError) as caught:
            _comfy(server, timeout=1.5).generate(JOB, steps)
        assert caught.value.retryable and "in time" in str(caught.value)
        assert (1, 6) in steps


def test_comfyui_workflow_template_fills_numbers_and_text():
    graph = comfyui.fill(
        {"a": "{{seed}}", "b": "seed {{seed}}", "c": ["{{width}}", 3]}, {"seed": 7, "width": 512}
    )
    assert graph == {"a": 7, "b": "seed 7", "c": [512, 3]}


# ---- diffusers (an optional extra) --------------------------------------------------------


def test_diffusers_without_its_packages_says_how_to_install_them(tmp_path, monkeypatch):
    """`make test` installs the extra (tests/media/test_image_diffusers.py runs it for real); a
    site without it gets this, whichever of the packages is missing."""
    import sys

    for missing in ("diffusers", "torch"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, missing, None)  # `import <missing>` raises ImportError
            with pytest.raises(ProviderError) as caught:
                DiffusersPipeline(path=str(tmp_path))
        assert "pip install" in str(caught.value) and not caught.value.retryable
    with pytest.raises(ProviderError, match="GTW_DIFFUSERS_PATH"):
        DiffusersPipeline(path="")


# ---- through the registry and the job -----------------------------------------------------


@pytest.mark.parametrize("vendor", ["automatic1111", "comfyui", "openai"])
def test_a_remote_provider_paints_a_whole_job(
    vendor, campaign, session, image_storage, settings, monkeypatch
):
    from media.images import services, tasks
    from media.images.registry import IMAGE
    from media.models import Image

    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    monkeypatch.setattr(comfyui, "POLL_S", 0.1)
    server = {"automatic1111": a1111_server, "comfyui": comfy_server, "openai": openai_server}[vendor]()
    with server:
        conf = dict(settings.GTW_IMAGES)
        conf["image"] = {"provider": vendor, "timeout": 20.0}
        conf["steps"] = 4
        if vendor == "comfyui":
            conf["comfyui"] = {**conf["comfyui"], "base_url": server.url, "ws_url": server.ws_url}
        elif vendor == "automatic1111":
            conf["automatic1111"] = {**conf["automatic1111"], "base_url": server.url}
        else:
            conf["openai"] = {**conf["openai"], "api_key": "sk-test-123456", "base_url": f"{server.url}/v1"}
        settings.GTW_IMAGES = conf
        IMAGE.reset()
        image, _ = services.image_request(
            campaign=campaign, kind="portrait", session=session, subject="Kira Vance"
        )
        assert image.provider == vendor and image.steps == 4
        assert tasks.generate(image.pk) == Image.Status.READY
    image.refresh_from_db()
    assert image.path and image.rights and image.size_bytes > 0
    IMAGE.reset()
