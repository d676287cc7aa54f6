"""The offline painter: deterministic, real pictures of the right size (pure: no database)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from media.images.base import ImageJob, checked
from media.images.painter import biome_palette, paint
from media.images.procedural import ProceduralPainter
from media.images.prompt import ImageRequest, build_prompt


def _parts(**kw):
    return build_prompt(ImageRequest(**kw)).parts


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


@pytest.mark.parametrize(
    ("kw", "size"),
    [
        ({"kind": "scene", "biome": "ice-moon"}, (768, 432)),
        ({"kind": "scene", "biome": "derelict-station"}, (768, 432)),
        ({"kind": "scene", "biome": "jungle-world"}, (320, 180)),
        ({"kind": "portrait", "archetype": "vanguard"}, (512, 512)),
        ({"kind": "item", "item": "pulse-pistol", "item_kind": "weapon"}, (384, 384)),
    ],
)
def test_the_same_request_paints_the_same_png(kw, size):
    parts = _parts(**kw)
    first = paint(parts, seed=42, width=size[0], height=size[1])
    again = paint(parts, seed=42, width=size[0], height=size[1])
    assert first == again
    img = Image.open(io.BytesIO(first))
    assert img.format == "PNG" and img.size == size
    assert first != paint(parts, seed=43, width=size[0], height=size[1])


def test_a_picture_is_composed_not_noise_or_a_grey_box():
    px = _pixels(paint(_parts(kind="scene", biome="ice-moon"), seed=7, width=384, height=216))
    # Contrast: dark sky and bright highlights, not a flat fill.
    lum = px.mean(axis=2)
    assert lum.std() > 15
    assert np.percentile(lum, 99) - np.percentile(lum, 5) > 80
    # Structure: neighbouring pixels are alike (a picture), unlike random noise.
    neighbour = np.abs(np.diff(lum, axis=1)).mean()
    assert neighbour < lum.std() / 3


def test_biomes_get_their_own_palettes():
    ice = _pixels(paint(_parts(kind="scene", biome="ice-moon"), seed=3, width=256, height=144)).mean(
        axis=(0, 1)
    )
    jungle = _pixels(paint(_parts(kind="scene", biome="jungle-world"), seed=3, width=256, height=144)).mean(
        axis=(0, 1)
    )
    assert ice[2] > ice[0]  # blue over red on the ice moon
    assert jungle[1] > jungle[0]  # green over red in the jungle
    assert biome_palette("a frozen glacier rim", 0)[0] == "ice-moon"
    assert biome_palette("some unknown place", 0) == biome_palette("some unknown place", 99)


def test_archetypes_are_lit_in_their_colours():
    runner = _pixels(paint(_parts(kind="portrait", archetype="netrunner"), seed=1, width=256, height=256))
    scout = _pixels(paint(_parts(kind="portrait", archetype="scout"), seed=1, width=256, height=256))
    assert runner.mean(axis=(0, 1))[2] > scout.mean(axis=(0, 1))[2]  # the runner's cyan and magenta
    assert scout.mean(axis=(0, 1))[1] > scout.mean(axis=(0, 1))[2]  # the scout's green


def test_the_provider_reports_progress_and_returns_a_checked_png():
    seen = []
    job = ImageJob(
        prompt="p",
        negative="",
        seed=5,
        width=200,
        height=120,
        steps=3,
        parts=_parts(kind="item", item="medpatch", item_kind="consumable"),
    )
    out = ProceduralPainter().generate(job, lambda done, total: seen.append((done, total)))
    assert out.content_type == "image/png" and (out.width, out.height) == (200, 120)
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    assert checked(out.data, provider="procedural").width == 200


def test_sizes_out_of_range_are_refused():
    with pytest.raises(ValueError):
        paint({"kind": "scene"}, seed=1, width=8, height=8)
