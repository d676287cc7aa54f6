"""The `diffusers` image provider for real (issue 15): a tiny Stable Diffusion pipeline (UNet,
VAE, CLIP text encoder) built from configs with random weights, its CLIP tokenizer made from the
real CLIP BPE merges that open_clip_torch ships, saved with `save_pretrained` into a folder and
loaded back by our provider with `local_files_only=True` — the path a self-hoster's SD folder
takes. The pictures are noise (random weights); what is tested is the plumbing: loading offline,
progress from `callback_on_step_end` reaching the job's events, cancellation mid-run, one torch
thread, and the result stored through the normal cache path.

`make test` installs these packages (requirements-images.lock): their absence fails here by
name, never skips."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import threading
from pathlib import Path

import pytest
from PIL import Image as PILImage

from gtw_site.providers.base import ProviderError
from media.images.base import Cancelled, ImageJob

pytestmark = [
    pytest.mark.slow,
    # One worker builds the tiny pipeline once (importing torch + diffusers is the slow part).
    pytest.mark.xdist_group("diffusers"),
    pytest.mark.timeout(900),
]

SIZE = 64
STEPS = 3
N_MERGES = 2000  # the first CLIP BPE merges: a real tokenizer with a small vocabulary
INSTALL = (
    "install requirements-images.lock (make test does), "
    "or pip install '.[diffusers]' and open-clip-torch --no-deps"
)


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"the diffusers provider's tests need {module}: {exc}; {INSTALL}")


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte-level BPE's printable stand-ins for the 256 byte values."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def _clip_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """vocab.json + merges.txt in CLIP's layout, from open_clip_torch's bpe_simple_vocab_16e6
    (located, never imported: importing open_clip wants torchvision)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the diffusers provider's tests need open_clip_torch (CLIP's BPE merges); {INSTALL}")
    bpe = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.decompress(bpe.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 1 + N_MERGES]]
    base = _bytes_to_unicode()
    vocab = base + [b + "</w>" for b in base] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    return folder / "vocab.json", folder / "merges.txt"


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> str:
    """A Stable Diffusion folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/,
    scheduler/) with random weights: 64x64 pictures in a fraction of a second."""
    torch = _require("torch")
    diffusers = _require("diffusers")
    transformers = _require("transformers")
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-sd")
    vocab, merges = _clip_tokenizer_files(root / "bpe")
    tokenizer = transformers.CLIPTokenizer(vocab=str(vocab), merges=str(merges), model_max_length=77)
    size = len(tokenizer)
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    vae = diffusers.AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=2,
    )
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            vocab_size=size,
            bos_token_id=size - 2,
            eos_token_id=size - 1,
            pad_token_id=size - 1,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
        )
    )
    scheduler = diffusers.DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = diffusers.StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    folder = root / "model"
    pipe.save_pretrained(folder)
    assert (folder / "model_index.json").exists() and (folder / "unet").is_dir()
    return str(folder)


class Steps(list):
    def __call__(self, done, total):
        self.append((done, total))


def _job(seed=7, steps=STEPS) -> ImageJob:
    return ImageJob(
        prompt="a relay station over an ice moon, nebula",
        negative="text, watermark",
        seed=seed,
        width=SIZE,
        height=SIZE,
        steps=steps,
    )


class UNetCalls:
    """A forward pre-hook on the UNet: counts the denoising steps and the torch threads each ran
    with; `before(n)` runs before call n (1-based), e.g. to hold the pipeline there."""

    def __init__(self, pipeline, before=None):
        self.count = 0
        self.threads: list[int] = []
        self.before = before
        pipeline.load()
        self._torch = pipeline._torch
        self._handle = pipeline._pipe.unet.register_forward_pre_hook(self._hook)

    def _hook(self, _module, _args):
        self.count += 1
        self.threads.append(self._torch.get_num_threads())
        if self.before is not None:
            self.before(self.count)

    def remove(self):
        self._handle.remove()


# ---- the adapter on its own ---------------------------------------------------------------


def test_it_loads_the_folder_offline_and_paints_with_progress_on_one_thread(tiny_sd, monkeypatch):
    import diffusers

    from media.images.diffusers_local import DiffusersPipeline

    loads: list[tuple] = []
    original = diffusers.AutoPipelineForText2Image.from_pretrained

    def from_pretrained(*args, **kwargs):
        loads.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(diffusers.AutoPipelineForText2Image, "from_pretrained", from_pretrained)
    pipeline = DiffusersPipeline(path=tiny_sd)
    assert pipeline.model == tiny_sd and pipeline._pipe is None  # loaded at the first picture
    calls = UNetCalls(pipeline)
    assert loads == [((tiny_sd,), {"local_files_only": True})]  # offline: never the hub
    assert pipeline._torch.get_num_threads() == 1
    try:
        steps = Steps()
        out = pipeline.generate(_job(), steps)
    finally:
        calls.remove()
    assert steps == [(0, STEPS), *((n, STEPS) for n in range(1, STEPS + 1))]
    assert calls.count == STEPS and set(calls.threads) == {1}
    assert out.content_type == "image/png" and (out.width, out.height) == (SIZE, SIZE)
    with PILImage.open(io.BytesIO(out.data)) as img:
        assert img.format == "PNG" and img.size == (SIZE, SIZE)
        assert any(lo < hi for lo, hi in img.convert("RGB").getextrema())  # not a flat fill
    # Seeded: the same job paints the same bytes, another seed another picture.
    assert pipeline.generate(_job(), Steps()).data == out.data
    assert pipeline.generate(_job(seed=8), Steps()).data != out.data


def test_a_cancelled_job_stops_at_that_step(tiny_sd):
    from media.images.diffusers_local import DiffusersPipeline

    pipeline = DiffusersPipeline(path=tiny_sd)

    def progress(done, total):
        if done == 2:
            raise Cancelled()

    calls = UNetCalls(pipeline)
    try:
        with pytest.raises(Cancelled):
            pipeline.generate(_job(steps=6), progress)
    finally:
        calls.remove()
    assert calls.count == 2  # steps 3 to 6 never ran
    # The pipeline is free again afterwards.
    assert pipeline.generate(_job(), Steps()).width == SIZE


def test_a_missing_or_broken_folder_is_a_clear_setup_error(tiny_sd, tmp_path):
    from media.images.diffusers_local import DiffusersPipeline

    with pytest.raises(ProviderError) as caught:
        DiffusersPipeline(path=str(tmp_path / "nothing-here"))
    assert "cannot load the model" in str(caught.value) and not caught.value.retryable
    # A hub-style name is no folder: refused before anything could try to fetch it.
    with pytest.raises(ProviderError, match="cannot load the model"):
        DiffusersPipeline(path="someone/stable-diffusion-x")
    # The index without its components: found when the worker loads it, as a failed picture.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text(Path(tiny_sd, "model_index.json").read_text())
    pipeline = DiffusersPipeline(path=str(broken))
    with pytest.raises(ProviderError, match="cannot load the model") as caught:
        pipeline.generate(_job(), Steps())
    assert not caught.value.retryable


# ---- through the registry, the job and the cache ------------------------------------------


@pytest.fixture
def diffusers_settings(settings, tiny_sd, image_storage):
    from media.images.registry import IMAGE

    conf = dict(settings.GTW_IMAGES)
    conf["image"] = {"provider": "diffusers", "timeout": 120.0}
    conf["sizes"] = {"scene": (SIZE, SIZE), "portrait": (SIZE, SIZE), "item": (SIZE, SIZE)}
    conf["steps"] = STEPS
    conf["progress_interval_s"] = 0.01
    conf["diffusers"] = {"path": tiny_sd, "device": "cpu", "threads": 1}
    settings.GTW_IMAGES = conf
    IMAGE.reset()
    yield conf
    IMAGE.reset()


def _events(monkeypatch):
    """The progress each job notification announced, as the table would get it."""
    from media.images import tasks
    from media.models import Image

    seen: list[tuple[str, int]] = []

    def notify(image_id):
        row = Image.objects.get(pk=image_id)
        seen.append((row.status, row.percent))

    monkeypatch.setattr(tasks, "notify", notify)
    return seen


@pytest.mark.django_db
def test_a_picture_job_paints_with_diffusers_and_stores_it_in_the_cache(
    campaign, session, diffusers_settings, monkeypatch, django_capture_on_commit_callbacks
):
    from gtw_site.models import ProviderCall
    from media.images import services, store, tasks
    from media.images.registry import IMAGE
    from media.models import Image

    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    seen = _events(monkeypatch)
    image, created = services.image_request(campaign=campaign, kind="scene", session=session)
    assert created and (image.provider, image.model) == ("diffusers", diffusers_settings["diffusers"]["path"])
    assert (image.width, image.height, image.steps) == (SIZE, SIZE, STEPS)

    # Hold the second denoising step until the job has told the table about the first, so the
    # moving progress bar is seen however busy the machine is.
    adapter = IMAGE.build("image")
    middle = threading.Event()

    def hold(n):
        if n == 2:
            middle.wait(60)

    original = tasks.notify

    def notify(image_id):
        original(image_id)
        if seen and 0 < seen[-1][1] < 100:
            middle.set()

    monkeypatch.setattr(tasks, "notify", notify)
    calls = UNetCalls(adapter, before=hold)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.generate(image.pk) == Image.Status.READY
    finally:
        calls.remove()
    assert middle.is_set() and set(calls.threads) == {1}
    image.refresh_from_db()
    assert image.status == Image.Status.READY and image.percent == 100
    percents = [p for status, p in seen if status == Image.Status.RUNNING]
    assert percents[0] == 0 and any(0 < p < 100 for p in percents) and percents == sorted(percents)
    assert seen[-1] == (Image.Status.READY, 100)
    # Stored content-addressed through Django's storage; the bytes are the picture.
    assert image.path == store.name_for(store.storage().open(image.path).read(), "image/png")
    with store.storage().open(image.path) as fh, PILImage.open(fh) as img:
        assert img.size == (SIZE, SIZE) and img.format == "PNG"
    assert image.content_type == "image/png" and image.size_bytes > 0 and "OpenRAIL" in image.rights
    # One telemetry row, kind image, naming the provider and the model folder.
    call = ProviderCall.objects.get(kind="image", campaign_id=campaign.pk)
    assert (call.provider, call.model, call.ok) == ("diffusers", image.model, True)
    # The same request again is the cache: no second job.
    again, created = services.image_request(campaign=campaign, kind="scene", session=session)
    assert not created and again.pk == image.pk


@pytest.mark.django_db
def test_a_job_that_times_out_cancels_the_pipeline_mid_run(
    campaign, session, diffusers_settings, monkeypatch
):
    from media.images import services, tasks
    from media.images.registry import IMAGE
    from media.models import Image

    diffusers_settings["image"]["timeout"] = 0.3
    monkeypatch.setattr(services, "queue_generate", lambda image_id: None)
    _events(monkeypatch)
    image, _ = services.image_request(campaign=campaign, kind="item", subject="a relay key")
    adapter = IMAGE.build("image")
    progress: list = []
    made = tasks._Progress
    monkeypatch.setattr(tasks, "_Progress", lambda: progress.append(made()) or progress[-1])
    done = threading.Event()
    paint = adapter.generate

    def generate(job, report):
        try:
            return paint(job, report)
        finally:
            done.set()

    monkeypatch.setattr(adapter, "generate", generate)

    def hold(n):
        if n == 1:  # the first step lasts until the job has given up
            assert progress[0].cancelled.wait(60)

    calls = UNetCalls(adapter, before=hold)
    try:
        assert tasks.generate(image.pk) == Image.Status.FAILED
        assert done.wait(60)  # the provider's thread wound down at the next step
    finally:
        calls.remove()
    assert calls.count == 1  # of 3: cancelled mid-run, not painted to the end
    image.refresh_from_db()
    assert image.status == Image.Status.FAILED and "no picture after" in image.error and not image.path


@pytest.mark.django_db
def test_the_gm_chooses_diffusers_for_their_campaign_without_loading_it_on_the_web(
    campaign, session, gm_client, diffusers_settings, monkeypatch
):
    from gtw_site.providers import selection
    from media.images import services, tasks
    from media.images.registry import IMAGE
    from media.models import Image

    diffusers_settings["image"]["provider"] = "procedural"  # the site paints procedurally
    monkeypatch.setattr(services, "notify", lambda image_id: None)
    monkeypatch.setattr(tasks, "notify", lambda image_id: None)
    selection.forget()
    try:
        answer = gm_client.post(
            "/api/providers/select",
            json.dumps({"role": "image", "provider": "diffusers", "campaign": campaign.pk}),
            content_type="application/json",
        )
        assert answer.status_code == 200, answer.content
        # Checked by building it, but nothing was loaded (the providers page runs in a web process).
        assert IMAGE.build("image", campaign_id=campaign.pk)._pipe is None
        image, created = services.image_request(campaign=campaign, kind="scene", session=session)
        assert created and image.provider == "diffusers"
        assert tasks.generate(image.pk) == Image.Status.READY
    finally:
        selection.forget()
