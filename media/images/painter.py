"""The offline painter: seeded compositions from a prompt's parts, Pillow + numpy. Pure.

`paint(parts, seed=…, width=…, height=…)` returns PNG bytes. The same parts, seed and size give
the same bytes. No randomness but the seeded generator; no I/O; no Django.

- scene: a space view (nebula, starfield, a planet in the biome's palette, a station or ship
  silhouette lit from the star's side) for stations, ships and the void; a surface view (sky,
  a moon or gas giant overhead, ridges fading into haze, spires or canopy, an outpost's lights)
  for worlds and moons. The beat grades the light (a twist runs red, a resolution golden).
- portrait: a head-and-shoulders bust shaded from its shape (a key light and a rim light in the
  archetype's colours) with the archetype's gear (a runner's visor, a vanguard's helmet, a
  scout's hood and goggles, an envoy's collar and circlet, an engineer's goggles and lamp).
- item: a lit icon on a holo pedestal by the item's kind (a pistol, a patch or vial, a canister,
  a crystal shard, a coin stack, a data chip).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]


def _hex(code: str) -> np.ndarray:
    code = code.lstrip("#")
    return np.array([int(code[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


# sky (top, bottom), nebula (a, b), planet (dark, mid, light), atmosphere, lights, ground (far, near)
PALETTES: dict[str, dict[str, Any]] = {
    "derelict-station": {
        "sky": ("#05060d", "#101a2c"),
        "nebula": ("#7a2f5f", "#1f5c8c"),
        "planet": ("#2a1d17", "#8a5a3a", "#e0b080"),
        "atmosphere": "#ff9d5c",
        "lights": "#ffb347",
        "ground": ("#2b2f3a", "#0c0d12"),
        "view": "space",
    },
    "ice-moon": {
        "sky": ("#020814", "#1b3a5c"),
        "nebula": ("#2f6fa8", "#6a3fa0"),
        "planet": ("#1d2f55", "#6f9ccf", "#e8f4ff"),
        "atmosphere": "#9fd8ff",
        "lights": "#ffd27a",
        "ground": ("#9cc0e6", "#142236"),
        "view": "surface",
        "flora": "spires",
    },
    "jungle-world": {
        "sky": ("#03100c", "#1c4a3a"),
        "nebula": ("#1f8a6a", "#8a3f9f"),
        "planet": ("#1a3320", "#4f8a3a", "#c8e07a"),
        "atmosphere": "#8cffc0",
        "lights": "#7dfcff",
        "ground": ("#2a5a44", "#0f3022"),
        "view": "surface",
        "flora": "canopy",
    },
    "desert": {
        "sky": ("#120a10", "#a8542a"),
        "nebula": ("#c0602f", "#5a2f7a"),
        "planet": ("#4a2a18", "#c47a3a", "#ffd9a0"),
        "atmosphere": "#ffb070",
        "lights": "#9ff0ff",
        "ground": ("#8a4a2a", "#2a1208"),
        "view": "surface",
        "flora": "mesas",
    },
    "lava": {
        "sky": ("#0d0404", "#4a120a"),
        "nebula": ("#c0301f", "#6a1f5a"),
        "planet": ("#1a0a08", "#8a2a10", "#ffb040"),
        "atmosphere": "#ff6a2a",
        "lights": "#ffe08a",
        "ground": ("#3a1410", "#0a0404"),
        "view": "surface",
        "flora": "spires",
    },
    "ocean": {
        "sky": ("#020a14", "#1f5a7a"),
        "nebula": ("#2f8aa8", "#3a4fa0"),
        "planet": ("#0a2040", "#2a6fa0", "#bfeaff"),
        "atmosphere": "#7fe0ff",
        "lights": "#fff0a0",
        "ground": ("#1a4a6a", "#04121f"),
        "view": "surface",
        "flora": "spires",
    },
    "void": {
        "sky": ("#020208", "#0c0a1f"),
        "nebula": ("#5a2fa0", "#1f6fa8"),
        "planet": ("#1a1030", "#5a3f8a", "#d0b0ff"),
        "atmosphere": "#b08aff",
        "lights": "#8affff",
        "ground": ("#1a1830", "#05040a"),
        "view": "space",
    },
}

_BIOME_WORDS = (
    (("station", "derelict", "orbit", "dock", "ship", "wreck", "hulk", "relay"), "derelict-station"),
    (("ice", "frost", "snow", "glacier", "frozen", "cryo"), "ice-moon"),
    (("jungle", "forest", "swamp", "marsh", "bog", "fen", "spore", "canopy", "garden"), "jungle-world"),
    (("desert", "dune", "sand", "dust", "canyon", "mesa"), "desert"),
    (("lava", "volcan", "magma", "ash", "forge", "hell"), "lava"),
    (("ocean", "sea", "water", "reef", "tide"), "ocean"),
    (("void", "space", "nebula", "asteroid", "deep", "rift"), "void"),
)

_BEAT_GRADE = {
    "twist": ("#ff3a2a", 0.22),
    "climax": ("#ffb070", 0.14),
    "resolution": ("#ffd890", 0.12),
    "inciting": ("#9fc8ff", 0.08),
}

# archetype: (key light, rim light, clothing, accent)
ARCHETYPES: dict[str, tuple[str, str, str, str]] = {
    "netrunner": ("#c8d8ff", "#ff3fd0", "#1a1a2e", "#3ff6ff"),
    "vanguard": ("#ffd0a0", "#ff7a2a", "#2e3340", "#ffae3a"),
    "envoy": ("#ffe6c0", "#a05aff", "#2a1a3a", "#ffd36a"),
    "scout": ("#d0ffd8", "#3aff9a", "#1f2a22", "#a8ff5a"),
    "engineer": ("#fff0c8", "#ffae2a", "#2f2a24", "#ffcf5a"),
}

# item kind → (shape, colour)
ITEM_STYLE: dict[str, tuple[str, str]] = {
    "weapon": ("pistol", "#ff7a3a"),
    "consumable": ("patch", "#ff4a6a"),
    "gear": ("canister", "#3ad0ff"),
    "quest": ("crystal", "#b07aff"),
    "currency": ("coins", "#ffd04a"),
}


def biome_palette(biome: str, seed: int) -> tuple[str, dict[str, Any]]:
    """The palette for `biome` (a pack's slug or any words): by name, then by keyword, else one
    chosen by a stable hash of the name (so an unknown biome always gets the same look)."""
    key = (biome or "").lower()
    if key in PALETTES:
        return key, PALETTES[key]
    for words, name in _BIOME_WORDS:
        if any(w in key for w in words):
            return name, PALETTES[name]
    names = sorted(PALETTES)
    pick = (
        names[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(names)]
        if key
        else names[seed % len(names)]
    )
    return pick, PALETTES[pick]


# ---- primitives -----------------------------------------------------------------------------


def _noise(
    rng: np.random.Generator, w: int, h: int, cell: float, octaves: int = 4, gain: float = 0.5
) -> np.ndarray:
    """Fractal value noise in [0, 1], `cell` pixels per lattice cell at the coarsest octave.

    The octaves are summed at a half or quarter of the size when even the finest one spans
    several pixels there, then enlarged once: the noise is smooth at that scale anyway, and
    one full-size resize instead of one per octave was a good part of the painter's time."""
    finest = max(cell / 2 ** (octaves - 1), 2.0)
    scale = 4 if finest >= 16 else 2 if finest >= 6 else 1
    sw, sh = max(w // scale, 2), max(h // scale, 2)
    total = np.zeros((sh, sw), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        c = max(cell / (2**o), 2.0)
        gw, gh = max(int(w / c) + 2, 2), max(int(h / c) + 2, 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        layer = Image.fromarray(grid, mode="F").resize((sw, sh), Image.BICUBIC)
        total += amp * np.asarray(layer, dtype=np.float32)
        norm += amp
        amp *= gain
    if (sw, sh) != (w, h):
        total = np.asarray(Image.fromarray(total, mode="F").resize((w, h), Image.BICUBIC), dtype=np.float32)
    total = total / norm
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def _gradient(h: int, w: int, top: np.ndarray, bottom: np.ndarray, power: float = 1.0) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None] ** power
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()


def _blur(arr: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of an (h, w) or (h, w, 3) float image in [0, 1+] (done at a quarter size)."""
    h, w = arr.shape[:2]
    scale = 4 if radius >= 8 else 2 if radius >= 3 else 1
    # One 8-bit picture (three channels blurred together), scaled by the brightest value.
    peak = max(float(arr.max()), 1e-6)
    pixels = np.clip(arr * (255 / peak), 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels, "L" if arr.ndim == 2 else "RGB")
    if scale > 1:
        img = img.resize((max(w // scale, 1), max(h // scale, 1)), Image.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(radius / scale))
    if scale > 1:
        img = img.resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) * (peak / 255.0)


def _mask(w: int, h: int, draw_fn, ss: int = 2) -> np.ndarray:
    """An anti-aliased coverage mask in [0, 1]: `draw_fn(draw, s)` draws at `ss` times the size."""
    img = Image.new("L", (w * ss, h * ss), 0)
    draw_fn(ImageDraw.Draw(img), ss)
    if ss == 1:
        return np.asarray(img, dtype=np.float32) / 255.0
    # Only the drawn part is filtered down (with a margin wider than the filter's reach).
    out = np.zeros((h, w), dtype=np.float32)
    box = img.getbbox()
    if box is None:
        return out
    pad = 4
    x0, y0 = max(box[0] // ss - pad, 0), max(box[1] // ss - pad, 0)
    x1, y1 = min(-(-box[2] // ss) + pad, w), min(-(-box[3] // ss) + pad, h)
    small = img.crop((x0 * ss, y0 * ss, x1 * ss, y1 * ss)).resize((x1 - x0, y1 - y0), Image.LANCZOS)
    out[y0:y1, x0:x1] = np.asarray(small, dtype=np.float32) / 255.0
    return out


def _bbox(alpha: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns where a 2-D mask is not zero (None: nowhere)."""
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _paint_over(base: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """In place: `base` becomes `colour` laid over it with coverage `alpha` (h, w). Only the
    mask's bounding box is touched: most masks (a station, a lens, a spire) cover a small part
    of the frame, and the full-frame blend was the painter's biggest cost."""
    box = _bbox(alpha)
    if box is None:
        return
    ys, xs = box
    sub = base[ys, xs]
    if colour.ndim == 3:  # a colour per pixel (possibly broadcast along an axis)
        colour = np.broadcast_to(colour, (*alpha.shape, colour.shape[2]))[ys, xs]
    sub += (colour - sub) * alpha[ys, xs][..., None]


def _splat(h: int, w: int, ys: np.ndarray, xs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """An (h, w, 3) image with each (n, 3) value added at its pixel (np.add.at, but faster)."""
    flat = np.zeros((h * w, values.shape[1]), dtype=np.float32)
    np.add.at(flat, ys.astype(np.int64) * w + xs, values.astype(np.float32))
    return flat.reshape(h, w, values.shape[1])


def _stars(
    rng: np.random.Generator, img: np.ndarray, density: float, sky_mask: np.ndarray | None = None
) -> None:
    h, w = img.shape[:2]
    n = int(w * h * density)
    xs = rng.integers(0, w, n)
    ys = rng.integers(0, h, n)
    mag = rng.pareto(2.2, n).astype(np.float32) * 0.25 + 0.15
    tint = rng.random(n)
    colours = np.where(
        tint[:, None] < 0.15,
        _hex("#ffd2a0"),
        np.where(tint[:, None] > 0.85, _hex("#a8c8ff"), _hex("#ffffff")),
    )
    layer = _splat(h, w, ys, xs, colours * np.minimum(mag, 3.0)[:, None])
    bright = mag > 1.1
    glow = _splat(h, w, ys[bright], xs[bright], colours[bright] * mag[bright][:, None] * 6)
    layer += _blur(glow, 2.5)
    if sky_mask is not None:
        layer *= sky_mask[..., None]
    img += layer


def _nebula(
    rng: np.random.Generator, img: np.ndarray, pal: Mapping[str, Any], strength: float = 0.85
) -> None:
    h, w = img.shape[:2]
    n = _noise(rng, w, h, cell=w / 3, octaves=5, gain=0.55)
    mix = _noise(rng, w, h, cell=w / 2, octaves=3)
    # A diagonal band, so the cloud has a shape rather than covering the frame evenly.
    yy, xx = np.ogrid[0:h, 0:w]
    yy, xx = yy.astype(np.float32), xx.astype(np.float32)
    angle = rng.uniform(-0.6, 0.6)
    off = rng.uniform(0.3, 0.7) * h
    band = np.exp(-(((yy - off - (xx - w / 2) * math.tan(angle)) / (h * 0.42)) ** 2))
    density = np.clip((n - 0.35) * 1.8, 0, 1) ** 1.6 * band
    a, b = _hex(pal["nebula"][0]), _hex(pal["nebula"][1])
    colour = a[None, None] * (1 - mix[..., None]) + b[None, None] * mix[..., None]
    dust = np.clip((0.55 - _noise(rng, w, h, cell=w / 6, octaves=4)) * 2.5, 0, 1) * band
    img *= 1 - 0.5 * dust[..., None]
    img += colour * density[..., None] * strength
    img += _blur(colour * density[..., None], 14) * 0.5 * strength


def _planet(
    rng: np.random.Generator,
    img: np.ndarray,
    pal: Mapping[str, Any],
    cx: float,
    cy: float,
    r: float,
    light: tuple[float, float, float],
    *,
    rings: bool = False,
) -> None:
    """A lit planet centred at (cx, cy), radius r, with an atmosphere and maybe rings. Each
    layer is computed only in its own box (the disc, the rings' ellipse, the halo's circle)."""
    full_h, full_w = img.shape[:2]
    dark, mid, lite = (_hex(c) for c in pal["planet"])
    atmo = _hex(pal["atmosphere"])
    lx, ly, lz = light

    def box(rx: float, ry: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """The frame's rows and columns within (rx, ry) of the centre, and dx, dy there in radii."""
        x0, x1 = max(int(cx - rx) - 1, 0), min(int(cx + rx) + 2, full_w)
        y0, y1 = max(int(cy - ry) - 1, 0), min(int(cy + ry) + 2, full_h)
        if x0 >= x1 or y0 >= y1:
            return None
        yy, xx = np.ogrid[y0:y1, x0:x1]
        return (
            slice(y0, y1),
            slice(x0, x1),
            (xx.astype(np.float32) - cx) / r,
            (yy.astype(np.float32) - cy) / r,
        )

    # The random draws come first, in a fixed order, whatever part of the planet is in frame.
    disc = box(r, r)
    tex = (
        _noise(rng, disc[1].stop - disc[1].start, disc[0].stop - disc[0].start, r / 1.5, 5) if disc else None
    )
    gas = rng.random() < 0.5
    freq = rng.uniform(9, 16) if gas else 0.0
    ring_tilt = rng.uniform(0.18, 0.32) if rings else 0.0
    ring_col = lite * 0.8 + atmo * 0.2
    ring_box = box(2.25 * r, 2.25 * r * ring_tilt + 1) if rings else None
    ring_band = None
    if ring_box is not None:
        ys, xs, dx, dy = ring_box
        rr = np.sqrt(dx**2 + (dy / ring_tilt) ** 2)
        ring_band = ((rr > 1.35) & (rr < 2.2)).astype(np.float32) * (0.45 + 0.55 * np.sin(rr * 40) ** 2)
        _paint_over(img[ys, xs], ring_col, ring_band * (dy < 0) * 0.55)  # the far side of the rings
    if disc is not None:
        ys, xs, dx, dy = disc
        d2 = dx * dx + dy * dy
        inside = d2 < 1.0
        z = np.sqrt(np.clip(1 - d2, 0, 1))
        lam = np.clip(dx * lx + dy * ly + z * lz, 0, 1)
        # Surface: bands warped by noise (a gas giant) or continents (a rocky world).
        t = 0.5 + 0.5 * np.sin(dy * freq + (tex - 0.5) * 5) if gas else np.clip((tex - 0.35) * 2.2, 0, 1)
        surf = np.where(
            t[..., None] < 0.5,
            dark + (mid - dark) * (t[..., None] * 2),
            mid + (lite - mid) * ((t[..., None] - 0.5) * 2),
        )
        shade = (lam**0.8 * 1.15 + 0.03)[..., None]
        body = surf * shade
        # Atmosphere: a fresnel rim, stronger on the lit side.
        rim = (1 - z) ** 3 * (0.35 + 0.9 * np.clip(dx * lx + dy * ly + 0.3, 0, 1))
        body += atmo * rim[..., None] * 0.9
        edge = np.clip((1.0 - np.sqrt(d2)) * r, 0, 1)  # anti-aliased limb
        _paint_over(img[ys, xs], body, edge * inside)
    if ring_box is not None:
        ys, xs, dx, dy = ring_box
        ring_light = 0.35 + 0.65 * np.clip(dx * lx + 0.5, 0, 1)
        _paint_over(img[ys, xs], ring_col * ring_light[..., None], ring_band * (dy >= 0) * 0.6)
    # Outer glow of the atmosphere, on the lit side (under 1/10,000 past 1.8 radii).
    halo_box = box(1.8 * r, 1.8 * r)
    if halo_box is not None:
        ys, xs, dx, dy = halo_box
        d = np.sqrt(dx * dx + dy * dy)
        halo = np.exp(-np.clip(d - 1, 0, None) * 14) * (d >= 1) * np.clip(dx * lx + dy * ly + 0.4, 0, 1)
        img[ys, xs] += atmo * halo[..., None] * 0.6


def _station(
    rng: np.random.Generator,
    img: np.ndarray,
    pal: Mapping[str, Any],
    cx: float,
    cy: float,
    size: float,
    light_x: float,
) -> None:
    """A station silhouette: a hub, a ring or spars, modules, antennae; rim light on the star's
    side and lit windows."""
    h, w = img.shape[:2]
    ring = rng.random() < 0.6
    mods = [
        (rng.uniform(-1.6, 1.6), rng.uniform(-0.25, 0.25), rng.uniform(0.12, 0.32), rng.uniform(0.08, 0.16))
        for _ in range(rng.integers(4, 8))
    ]
    antennae = [
        (rng.uniform(-1.2, 1.2), rng.uniform(0.5, 1.1) * (1 if rng.random() < 0.5 else -1)) for _ in range(3)
    ]

    def shape(d: ImageDraw.ImageDraw, s: int, ox: float = 0.0) -> None:
        X, Y, S = (cx + ox) * s, cy * s, size * s
        d.rectangle([X - S * 1.7, Y - S * 0.05, X + S * 1.7, Y + S * 0.05], fill=255)  # spine
        d.ellipse([X - S * 0.35, Y - S * 0.35, X + S * 0.35, Y + S * 0.35], fill=255)  # hub
        if ring:
            d.ellipse(
                [X - S * 1.1, Y - S * 0.38, X + S * 1.1, Y + S * 0.38],
                outline=255,
                width=max(int(S * 0.09), 2),
            )
        for mx, my, mw, mh in mods:
            d.rectangle(
                [X + (mx - mw) * S, Y + (my - mh) * S, X + (mx + mw) * S, Y + (my + mh) * S], fill=255
            )
        for ax, ay in antennae:
            d.line([X + ax * S, Y, X + ax * S, Y + ay * S], fill=255, width=max(int(S * 0.02), 1))
        # Solar panels at the spine's ends.
        for sx in (-1, 1):
            d.rectangle(
                [X + sx * S * 1.7 - S * 0.08, Y - S * 0.55, X + sx * S * 1.7 + S * 0.08, Y + S * 0.55],
                fill=255,
            )

    body = _mask(w, h, shape)
    shifted = _mask(w, h, lambda d, s: shape(d, s, ox=-2.0 * (1 if light_x > 0 else -1)))
    rim = np.clip(body - shifted, 0, 1)
    hull = _hex(pal["ground"][1]) * 0.5 + 0.02
    _paint_over(img, hull, body)
    img += _hex(pal["atmosphere"]) * rim[..., None] * 1.2
    # Windows: lit dots along the spine and ring, inside the silhouette.
    lights = np.zeros(img.shape[:2], dtype=np.float32)
    for _ in range(int(size * 1.2)):
        x = int(cx + rng.uniform(-1.6, 1.6) * size)
        y = int(cy + rng.uniform(-0.35, 0.35) * size)
        if 0 <= x < w and 0 <= y < h and body[y, x] > 0.9:
            lights[y, x] = rng.uniform(0.6, 1.0)
    col = _hex(pal["lights"])
    img += col * lights[..., None]
    img += col * _blur(lights * 5, 2)[..., None]


def _ship(
    rng: np.random.Generator, img: np.ndarray, pal: Mapping[str, Any], cx: float, cy: float, size: float
) -> None:
    h, w = img.shape[:2]
    facing = 1 if rng.random() < 0.5 else -1
    fin = rng.uniform(0.3, 0.5)

    def shape(d: ImageDraw.ImageDraw, s: int) -> None:
        X, Y, S = cx * s, cy * s, size * s
        f = facing
        d.polygon(
            [
                (X + f * S, Y),
                (X - f * S * 0.6, Y - S * fin),
                (X - f * S * 0.45, Y),
                (X - f * S * 0.6, Y + S * fin * 0.6),
            ],
            fill=255,
        )

    body = _mask(w, h, shape)
    _paint_over(img, _hex("#0a0b10"), body)
    # Engine glow and a faint trail.
    glow = np.zeros(img.shape[:2], dtype=np.float32)
    ex = int(np.clip(cx - facing * size * 0.5, 0, w - 1))
    ey = int(np.clip(cy, 0, h - 1))
    glow[ey, ex] = 40.0
    trail = _mask(
        w,
        h,
        lambda d, s: d.line(
            [ex * s, ey * s, (ex - facing * size * 3) * s, ey * s],
            fill=90,
            width=max(int(s * size * 0.05), 1),
        ),
    )
    col = _hex(pal["lights"])
    img += col * (_blur(glow, 3) + _blur(trail, 3) * 0.8)[..., None]


def _ridge(rng: np.random.Generator, w: int, base: float, amp: float, rough: float) -> np.ndarray:
    pts = max(int(w / rough), 4)
    coarse = rng.random(pts + 3).astype(np.float32)
    x = np.linspace(0, pts, w, dtype=np.float32)
    line = np.interp(x, np.arange(pts + 3), coarse)
    fine = np.interp(
        np.linspace(0, pts * 4, w), np.arange(pts * 4 + 3), rng.random(pts * 4 + 3).astype(np.float32)
    )
    return base - amp * (line * 0.8 + fine * 0.2)


@functools.lru_cache(maxsize=8)
def _vignette(w: int, h: int) -> np.ndarray:
    """(h, w, 1) darkening towards the corners; the same for every picture of a size."""
    yy, xx = (a.astype(np.float32) for a in np.ogrid[0:h, 0:w])
    v = ((xx - w / 2) / (w * 0.75)) ** 2 + ((yy - h / 2) / (h * 0.8)) ** 2
    out = (1 - np.clip(v, 0, 1) * 0.55)[..., None].astype(np.float32)
    out.flags.writeable = False
    return out


def _grade(img: np.ndarray, beat: str, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    if beat in _BEAT_GRADE:
        col, k = _BEAT_GRADE[beat]
        lum = img.mean(axis=2, keepdims=True)
        img = img * (1 - k) + lum * _hex(col) * k * 2.2
    # Bloom: the bright parts bleed light.
    bright = np.clip(img - 0.7, 0, None)
    img = img + _blur(bright, 10) * 0.9
    # Vignette and a fine grain.
    img = img * _vignette(w, h)
    img += (rng.random((h, w, 1), dtype=np.float32) - 0.5) * 0.025
    # A soft filmic curve instead of a hard clip.
    return 1 - np.exp(-np.clip(img, 0, None) * 1.35)


def _png(img: np.ndarray) -> bytes:
    arr = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(arr, "RGB").save(out, format="PNG", optimize=False, compress_level=1)
    return out.getvalue()


# ---- compositions ---------------------------------------------------------------------------


def _space_scene(
    rng: np.random.Generator, w: int, h: int, pal: Mapping[str, Any], parts: Mapping[str, Any]
) -> np.ndarray:
    img = _gradient(h, w, _hex(pal["sky"][0]), _hex(pal["sky"][1]) * 0.6, power=1.4)
    _nebula(rng, img, pal)
    _stars(rng, img, 0.0035)
    left = rng.random() < 0.5
    r = h * rng.uniform(0.38, 0.62)
    pcx = w * (rng.uniform(0.12, 0.3) if left else rng.uniform(0.7, 0.88))
    pcy = h * rng.uniform(0.65, 1.0)
    lx = 0.75 if not left else -0.75  # the star is on the far side of the frame from the planet
    light = (lx, -0.45, 0.5)
    _planet(rng, img, pal, pcx, pcy, r, light, rings=rng.random() < 0.35)
    # A distant star flare on the light's side.
    flare = np.zeros((h, w), dtype=np.float32)
    fx = int(w * (0.92 if not left else 0.08))
    flare[int(h * 0.12), fx] = 400.0
    img += _hex("#fff1d0") * (_blur(flare, 3) + _blur(flare, 24) * 0.4)[..., None]
    sx = w * (rng.uniform(0.55, 0.72) if left else rng.uniform(0.28, 0.45))
    sy = h * rng.uniform(0.3, 0.45)
    what = parts.get("subject", "").lower() + " " + parts.get("location", "").lower()
    station_biome = any(k in parts.get("biome", "") for k in ("station", "derelict", "dock", "relay"))
    wants_ship = "ship" in what or "fleet" in what or "freighter" in what
    if wants_ship or (not station_biome and "station" not in what and rng.random() < 0.3):
        _ship(rng, img, pal, sx, sy, h * rng.uniform(0.12, 0.18))
        if rng.random() < 0.6:
            _ship(rng, img, pal, sx + w * 0.1, sy + h * 0.12, h * 0.06)
    else:
        _station(rng, img, pal, sx, sy, h * rng.uniform(0.11, 0.16), lx)
    return img


def _surface_scene(
    rng: np.random.Generator, w: int, h: int, pal: Mapping[str, Any], parts: Mapping[str, Any]
) -> np.ndarray:
    img = _gradient(h, w, _hex(pal["sky"][0]), _hex(pal["sky"][1]), power=1.6)
    _nebula(rng, img, pal, strength=0.45)
    _stars(rng, img, 0.002)
    # A big body hanging in the sky.
    left = rng.random() < 0.5
    r = h * rng.uniform(0.22, 0.34)
    _planet(
        rng,
        img,
        pal,
        w * (rng.uniform(0.18, 0.35) if left else rng.uniform(0.65, 0.82)),
        h * rng.uniform(0.2, 0.32),
        r,
        (0.7 if left else -0.7, 0.3, 0.6),
        rings=rng.random() < 0.5,
    )
    horizon = h * rng.uniform(0.58, 0.68)
    # Haze over the horizon.
    yy = np.arange(h, dtype=np.float32)[:, None]
    haze = np.exp(-(((yy - horizon) / (h * 0.12)) ** 2))
    img += _hex(pal["atmosphere"]) * (haze * 0.35)[..., None]
    far, near = _hex(pal["ground"][0]), _hex(pal["ground"][1])
    xs = np.arange(w)
    flora = pal.get("flora", "spires")
    ground_tex = _noise(rng, w, h, cell=w / 10, octaves=4)
    layers = 4
    for i in range(layers):
        t = i / (layers - 1)
        base = horizon + (h - horizon) * (0.05 + 0.3 * t)
        amp = h * (0.22 - 0.1 * t) * (1.4 if flora == "mesas" and i < 2 else 1.0)
        rough = w / (5 + 4 * i)
        ridge = _ridge(rng, w, base, amp, rough)
        if flora == "mesas" and i < 2:
            ridge = np.round(ridge / (h * 0.06)) * (h * 0.06)  # flat-topped mesas
            ridge = np.convolve(np.pad(ridge, 3, mode="edge"), np.ones(7) / 7, mode="valid")
        # Only the rows at or below the ridge's highest point change: work on that band.
        top = max(int(ridge.min()) - 1, 0)
        depth = yy[top:] - ridge[None, :].astype(np.float32)  # pixels below the ridge line
        below = depth >= 0
        colour = far * (1 - t) + near * t
        colour = colour * (0.55 + 0.45 * (1 - t)) + _hex(pal["atmosphere"]) * 0.18 * (1 - t)
        # Lit crests: the top few pixels of each ridge catch the light.
        crest = np.clip(1 - depth / 3.0, 0, 1) * (0.25 * (1 - t * 0.5))
        # Ground texture: rock, ice or moss, lighter near the crest.
        shade = 0.75 + 0.5 * ground_tex[top:] + 0.25 * np.clip(1 - depth / (h * 0.15), 0, 1)
        # The ridge is opaque: below its line the ground replaces what was there.
        ground = colour * shade[..., None] + _hex(pal["atmosphere"]) * crest[..., None]
        np.copyto(img[top:], ground, where=below[..., None])
        if flora == "spires" and i in (1, 2):
            spikes = []
            for _ in range(rng.integers(3, 8)):
                x0 = rng.uniform(0, w)
                peak = float(ridge[int(np.clip(x0, 0, w - 1))])
                hh = h * rng.uniform(0.08, 0.22) * (1.2 - t)
                ww = hh * rng.uniform(0.12, 0.25)
                spikes.append(((x0 - ww, peak + 4), (x0, peak - hh), (x0 + ww, peak + 4)))
            spire = _mask(
                w,
                h,
                lambda d, s, spikes=spikes: [
                    d.polygon([(x * s, y * s) for x, y in p], fill=255) for p in spikes
                ],
            )
            _paint_over(img, colour * 1.15 + _hex(pal["atmosphere"]) * 0.12, spire)
            box = _bbox(spire)
            if box is not None:  # a bright edge on each spire's lit side
                ys, xs_ = box[0], slice(box[1].start, min(box[1].stop + 2, w))
                edge = np.clip(spire[ys, xs_] - np.roll(spire, 2, axis=1)[ys, xs_], 0, 1)
                img[ys, xs_] += _hex(pal["atmosphere"]) * (edge * 0.5)[..., None]
        if flora == "canopy" and i >= 1:
            blobs = _mask(
                w,
                h,
                lambda d, s, ridge=ridge, i=i: [
                    d.ellipse(
                        [
                            (x - rad) * s,
                            (ridge[x] - rad * 0.8) * s,
                            (x + rad) * s,
                            (ridge[x] + rad * 1.2) * s,
                        ],
                        fill=255,
                    )
                    for x, rad in (
                        (int(x), float(rd))
                        for x, rd in zip(rng.integers(0, w, 40), rng.uniform(8, 22 + 10 * i, 40), strict=True)
                    )
                ],
                ss=1,
            )
            _paint_over(img, colour * 0.9, blobs)
            spores = np.zeros((h, w), dtype=np.float32)
            n = 90
            sx, sy = rng.integers(0, w, n), rng.integers(int(horizon), h, n)
            spores[sy, sx] = rng.uniform(2, 8, n)
            img += _hex(pal["lights"]) * (_blur(spores, 2) * 0.9 + _blur(spores, 6) * 1.5)[..., None]
    # An outpost with its lights on the middle ridge.
    ox = int(w * rng.uniform(0.3, 0.7))
    base_y = float(horizon + (h - horizon) * 0.2)
    hull = _mask(
        w,
        h,
        lambda d, s: (
            d.rectangle([(ox - 34) * s, (base_y - 10) * s, (ox + 34) * s, (base_y + 6) * s], fill=255),
            d.ellipse([(ox - 18) * s, (base_y - 24) * s, (ox + 18) * s, (base_y + 4) * s], fill=255),
            d.line(
                [(ox + 26) * s, (base_y - 10) * s, (ox + 26) * s, (base_y - 52) * s], fill=255, width=2 * s
            ),
        ),
    )
    _paint_over(img, near * 0.35, hull)
    # Its lights and their glow, worked out in a window around the outpost (the glow's reach
    # is well inside the margin).
    x0, y0 = max(ox - 60, 0), max(int(base_y) - 80, 0)
    x1, y1 = min(ox + 60, w), min(int(base_y) + 30, h)
    lights = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    for dx in range(-28, 29, 8):
        lights[int(base_y - 4) - y0, ox + dx - x0] = 3.0
    lights[int(base_y - 52) - y0, ox + 26 - x0] = 8.0
    img[y0:y1, x0:x1] += _hex(pal["lights"]) * (lights + _blur(lights * 3, 3))[..., None]
    _ = xs
    return img


def _ellipsoid(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """Height (0 outside) of an ellipsoid bump; the union of bumps is the bust's surface."""
    d2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    return np.sqrt(np.clip(1 - d2, 0, 1)) * min(rx, ry)


def _portrait(rng: np.random.Generator, w: int, h: int, parts: Mapping[str, Any]) -> np.ndarray:
    arch = parts.get("archetype") or ""
    if arch not in ARCHETYPES:
        names = sorted(ARCHETYPES)
        arch = (
            names[int(hashlib.sha256(arch.encode()).hexdigest(), 16) % len(names)]
            if arch
            else names[rng.integers(len(names))]
        )
    key_c, rim_c, cloth_c, accent_c = (_hex(c) for c in ARCHETYPES[arch])
    img = _gradient(h, w, _hex("#07080d"), cloth_c * 0.6 + rim_c * 0.08, power=0.8)
    # Bokeh: out-of-focus lights behind the sitter.
    bokeh = np.zeros((h, w, 3), dtype=np.float32)
    for _ in range(rng.integers(10, 20)):
        x, y, rad = rng.uniform(0, w), rng.uniform(0, h * 0.7), rng.uniform(w * 0.02, w * 0.06)
        disc = _mask(
            w,
            h,
            lambda d, s, x=x, y=y, rad=rad: d.ellipse(
                [(x - rad) * s, (y - rad) * s, (x + rad) * s, (y + rad) * s], fill=255
            ),
            ss=1,
        )
        bokeh += (rim_c if rng.random() < 0.5 else accent_c) * disc[..., None] * rng.uniform(0.08, 0.25)
    img += _blur(bokeh, 4)
    if arch == "netrunner":  # a faint circuit grid
        grid = np.zeros((h, w), dtype=np.float32)
        step = max(w // 16, 8)
        grid[::step, :] = 0.6
        grid[:, ::step] = 0.6
        img += accent_c * (grid * _noise(rng, w, h, w / 4, 2) ** 3 * 0.25)[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = w * rng.uniform(0.46, 0.54)
    tilt = rng.uniform(-0.03, 0.03) * w
    hy = h * 0.4
    hr_x, hr_y = w * 0.15, h * 0.2
    head = np.maximum(
        _ellipsoid(xx, yy, cx + tilt, hy - hr_y * 0.08, hr_x, hr_y * 0.88),
        _ellipsoid(xx, yy, cx + tilt * 0.8, hy + hr_y * 0.38, hr_x * 0.72, hr_y * 0.6) * 0.97,  # jaw
    )
    neck = _ellipsoid(xx, yy, cx, h * 0.66, w * 0.08, h * 0.16) * 0.6
    shoulders = np.maximum(
        _ellipsoid(xx, yy, cx, h * 1.0, w * 0.46, h * 0.24),
        _ellipsoid(xx, yy, cx, h * 0.9, w * 0.2, h * 0.14) * 0.8,
    )
    extra = np.zeros_like(head)
    if arch == "vanguard":  # pauldrons
        extra = (
            np.maximum(
                _ellipsoid(xx, yy, cx - w * 0.3, h * 0.86, w * 0.17, h * 0.1),
                _ellipsoid(xx, yy, cx + w * 0.3, h * 0.86, w * 0.17, h * 0.1),
            )
            * 1.3
        )
        extra = np.maximum(
            extra, _ellipsoid(xx, yy, cx + tilt, hy - hr_y * 0.1, hr_x * 1.08, hr_y * 0.95) * 1.05
        )
    if arch == "scout":  # a hood behind the head
        extra = _ellipsoid(xx, yy, cx + tilt, hy - h * 0.02, hr_x * 1.3, hr_y * 1.25) * 0.7
    if arch == "envoy":  # a high collar
        extra = _ellipsoid(xx, yy, cx, h * 0.7, w * 0.2, h * 0.12) * 0.9
    height = np.maximum.reduce([head, neck, shoulders, extra])
    hair = np.zeros_like(head)
    inside = (height > 0).astype(np.float32)
    cover = np.clip(height * 1.5, 0, 1)
    gy, gx = np.gradient(height)
    nz = np.ones_like(height)
    norm = np.sqrt(gx * gx + gy * gy + nz)
    nx, ny, nz = -gx / norm, -gy / norm, nz / norm
    key = np.clip(nx * -0.55 + ny * -0.45 + nz * 0.7, 0, 1)
    rim = np.clip(nx * 0.95 + ny * -0.1, 0, 1) ** 2.2
    if arch in ("netrunner", "envoy", "engineer"):  # hair: a cap over the crown
        hair = _ellipsoid(xx, yy, cx + tilt, hy - hr_y * 0.32, hr_x * 1.04, hr_y * 0.62) * (
            yy < hy - hr_y * 0.3
        )
        height = np.maximum(height, hair * 1.02)
    is_head = (head >= np.maximum(shoulders, extra)) & (head > 0)
    skin = np.where(
        is_head[..., None],
        _hex("#6a5248") if arch not in ("vanguard",) else _hex("#3a404c"),
        cloth_c,
    )
    skin = np.where(((hair > 0) & is_head)[..., None], _hex("#2a1e24"), skin)
    body = skin * (0.08 + key[..., None] * 0.75) * key_c + rim_c * rim[..., None] * 1.3
    _paint_over(img, body, cover * inside)
    # Clothing: a V neckline and seams down the chest in the accent colour, faintly lit.
    seams = _mask(
        w,
        h,
        lambda d, s: (
            d.line(
                [
                    ((cx - w * 0.17) * s, h * 0.8 * s),
                    (cx * s, h * 0.93 * s),
                    ((cx + w * 0.17) * s, h * 0.8 * s),
                ],
                fill=255,
                width=max(2 * s, 1),
            ),
            d.line([((cx - w * 0.3) * s, h * 0.86 * s), ((cx - w * 0.24) * s, h * s)], fill=160, width=s),
            d.line([((cx + w * 0.3) * s, h * 0.86 * s), ((cx + w * 0.24) * s, h * s)], fill=160, width=s),
        ),
    ) * (shoulders > 0)
    img += accent_c * (seams * 0.35 + _blur(seams, 3) * 0.3)[..., None]
    if arch in ("vanguard", "engineer"):  # a glowing emblem on the chest
        em = _mask(
            w,
            h,
            lambda d, s: d.regular_polygon(((cx - w * 0.12) * s, h * 0.9 * s, w * 0.025 * s), 6, fill=255),
        )
        img += accent_c * (em * 0.8 + _blur(em * 3, 5))[..., None]
    # Gear by archetype.
    eye_y = hy - hr_y * 0.05
    glow = np.zeros((h, w), dtype=np.float32)

    def band(y0: float, y1: float, x0: float, x1: float) -> np.ndarray:
        return _mask(
            w,
            h,
            lambda d, s: d.rounded_rectangle(
                [x0 * s, y0 * s, x1 * s, y1 * s], radius=(y1 - y0) * s / 2, fill=255
            ),
        )

    if arch in ("netrunner", "vanguard"):
        v = band(eye_y - h * 0.025, eye_y + h * 0.025, cx + tilt - hr_x * 0.95, cx + tilt + hr_x * 0.95) * (
            height > 0
        )
        _paint_over(img, accent_c * 1.2, v)
        glow += v
    if arch in ("scout", "engineer"):
        gy0 = eye_y if arch == "scout" else hy - hr_y * 0.55
        for side in (-1, 1):
            ex = cx + tilt + side * hr_x * 0.42
            lens = _mask(
                w,
                h,
                lambda d, s, ex=ex, gy0=gy0: d.ellipse(
                    [
                        (ex - hr_x * 0.28) * s,
                        (gy0 - hr_x * 0.22) * s,
                        (ex + hr_x * 0.28) * s,
                        (gy0 + hr_x * 0.22) * s,
                    ],
                    fill=255,
                ),
            )
            _paint_over(img, _hex("#101216"), lens)
            inner = _mask(
                w,
                h,
                lambda d, s, ex=ex, gy0=gy0: d.ellipse(
                    [
                        (ex - hr_x * 0.18) * s,
                        (gy0 - hr_x * 0.13) * s,
                        (ex + hr_x * 0.18) * s,
                        (gy0 + hr_x * 0.13) * s,
                    ],
                    fill=255,
                ),
            )
            _paint_over(img, accent_c, inner * 0.9)
            glow += inner
        if arch == "engineer":  # eyes below the goggles, a shoulder lamp
            for side in (-1, 1):
                glow[int(eye_y), int(cx + tilt + side * hr_x * 0.4)] = 6.0
            lamp = (int(h * 0.8), int(cx - w * 0.26))
            glow[lamp] = 30.0
    if arch == "envoy":  # a circlet and gold collar trim
        c = _mask(
            w,
            h,
            lambda d, s: d.arc(
                [
                    (cx + tilt - hr_x) * s,
                    (hy - hr_y * 0.95) * s,
                    (cx + tilt + hr_x) * s,
                    (hy - hr_y * 0.1) * s,
                ],
                200,
                340,
                fill=255,
                width=3 * s,
            ),
        )
        _paint_over(img, accent_c, c)
        glow += c * 0.4
        for side in (-1, 1):
            glow[int(eye_y), int(cx + tilt + side * hr_x * 0.4)] = 3.0
    if arch == "netrunner":  # traces on the shoulders
        lines = _mask(
            w,
            h,
            lambda d, s: [
                d.line(
                    [(cx + k * w * 0.05) * s, h * 0.82 * s, (cx + k * w * 0.09) * s, h * s], fill=255, width=s
                )
                for k in (-3, -2, 2, 3)
            ],
        )
        glow += lines * 0.5
    img += accent_c * (glow[..., None] * 0.6 + _blur(glow * 4, 6)[..., None])
    return img


def _item(rng: np.random.Generator, w: int, h: int, parts: Mapping[str, Any]) -> np.ndarray:
    kind = parts.get("item_kind") or ""
    name = (parts.get("item") or "") + " " + (parts.get("subject") or "").lower()
    shape, colour = ITEM_STYLE.get(kind, ("chip", "#4affc8"))
    if "credit" in name or "coin" in name:
        shape, colour = "coins", "#ffd04a"
    elif kind == "consumable" and not any(k in name for k in ("med", "patch", "stim", "bandage")):
        shape = "vial"
    elif kind == "gear" and "charge" in name:
        shape, colour = "canister", "#ff9a3a"
    col = _hex(colour)
    hue_shift = rng.uniform(0.85, 1.15)
    col = np.clip(col * hue_shift, 0, 1)
    cx, cy, S = w / 2, h * 0.47, min(w, h) * 0.3
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2)
    img = (_hex("#0b0f18") * (1 - r[..., None]) + _hex("#020306") * r[..., None]) * 1.2
    # Hex grid.
    hexes = np.zeros((h, w), dtype=np.float32)
    step = max(w // 12, 8)
    hexes[:, ::step] = 1
    hexes[::step, :] = 1
    img += col * (hexes * np.clip(0.5 - r, 0, 1) * 0.15)[..., None]
    # A holo pedestal.
    ped = _mask(
        w,
        h,
        lambda d, s: d.ellipse(
            [(cx - S * 1.2) * s, (h * 0.82 - S * 0.18) * s, (cx + S * 1.2) * s, (h * 0.82 + S * 0.18) * s],
            outline=255,
            width=3 * s,
        ),
    )
    img += col * (ped * 0.8 + _blur(ped, 6) * 1.2)[..., None]
    beam = np.clip(1 - np.abs(xx - cx) / (S * 1.2), 0, 1) * ((yy > cy) & (yy < h * 0.82))
    img += col * (beam * 0.07)[..., None]

    def draw(d: ImageDraw.ImageDraw, s: int) -> None:
        X, Y, U = cx * s, cy * s, S * s
        if shape == "pistol":
            d.polygon(
                [
                    (X - U, Y - U * 0.35),
                    (X + U * 0.9, Y - U * 0.35),
                    (X + U * 0.9, Y - U * 0.05),
                    (X - U * 0.2, Y - U * 0.05),
                    (X - U * 0.35, Y + U * 0.7),
                    (X - U * 0.8, Y + U * 0.7),
                    (X - U * 0.7, Y - U * 0.05),
                    (X - U, Y - U * 0.05),
                ],
                fill=255,
            )
            d.rectangle([X + U * 0.9, Y - U * 0.28, X + U * 1.1, Y - U * 0.12], fill=255)
        elif shape == "patch":
            d.rounded_rectangle(
                [X - U * 0.8, Y - U * 0.6, X + U * 0.8, Y + U * 0.6], radius=U * 0.25, fill=255
            )
        elif shape == "vial":
            d.rounded_rectangle(
                [X - U * 0.3, Y - U * 0.8, X + U * 0.3, Y + U * 0.8], radius=U * 0.3, fill=255
            )
        elif shape == "canister":
            d.rounded_rectangle(
                [X - U * 0.45, Y - U * 0.75, X + U * 0.45, Y + U * 0.75], radius=U * 0.15, fill=255
            )
        elif shape == "crystal":
            d.polygon(
                [
                    (X, Y - U),
                    (X + U * 0.45, Y - U * 0.2),
                    (X + U * 0.25, Y + U * 0.8),
                    (X - U * 0.3, Y + U * 0.7),
                    (X - U * 0.45, Y - U * 0.3),
                ],
                fill=255,
            )
        elif shape == "coins":
            for k in range(5):
                d.ellipse(
                    [
                        X - U * 0.7,
                        Y + U * (0.35 - k * 0.22) - U * 0.25,
                        X + U * 0.7,
                        Y + U * (0.35 - k * 0.22) + U * 0.25,
                    ],
                    fill=255,
                )
        else:
            d.rounded_rectangle(
                [X - U * 0.7, Y - U * 0.5, X + U * 0.7, Y + U * 0.5], radius=U * 0.1, fill=255
            )

    m = _mask(w, h, draw, ss=3)
    # Body: a vertical gradient from the item's colour to dark, a top-left key light and a rim.
    t = np.clip((yy - (cy - S)) / (2 * S), 0, 1)[..., None]
    base = col * (1.0 - 0.75 * t) * 0.55 + _hex("#1a1e28") * 0.45
    up = np.roll(np.roll(m, 3, axis=0), 3, axis=1)
    rim = np.clip(m - up, 0, 1)
    img += col * _blur(m, 12)[..., None] * 0.6
    _paint_over(img, base, m)
    img += (col * 0.6 + 0.4) * (rim * 0.9)[..., None]
    # Details by shape.
    detail = np.zeros((h, w), dtype=np.float32)

    def add(fn) -> None:
        nonlocal detail
        detail = np.maximum(detail, _mask(w, h, fn))

    X, Y, U = cx, cy, S
    if shape == "patch":
        add(
            lambda d, s: (
                d.rectangle(
                    [(X - U * 0.1) * s, (Y - U * 0.4) * s, (X + U * 0.1) * s, (Y + U * 0.4) * s], fill=255
                ),
                d.rectangle(
                    [(X - U * 0.4) * s, (Y - U * 0.1) * s, (X + U * 0.4) * s, (Y + U * 0.1) * s], fill=255
                ),
            )
        )
    elif shape in ("canister", "vial"):
        for k in (-0.45, 0.0, 0.45):
            add(
                lambda d, s, k=k: d.rectangle(
                    [
                        (X - U * 0.5) * s,
                        (Y + U * k - U * 0.04) * s,
                        (X + U * 0.5) * s,
                        (Y + U * k + U * 0.04) * s,
                    ],
                    fill=255,
                )
            )
        add(
            lambda d, s: d.ellipse(
                [(X - U * 0.12) * s, (Y - U * 0.28) * s, (X + U * 0.12) * s, (Y - U * 0.05) * s], fill=255
            )
        )
    elif shape == "crystal":
        add(
            lambda d, s: (
                d.line([X * s, (Y - U) * s, (X - U * 0.05) * s, (Y + U * 0.72) * s], fill=255, width=2 * s),
                d.line(
                    [
                        (X + U * 0.45) * s,
                        (Y - U * 0.2) * s,
                        (X - U * 0.05) * s,
                        (Y + U * 0.1) * s,
                        (X - U * 0.45) * s,
                        (Y - U * 0.3) * s,
                    ],
                    fill=255,
                    width=2 * s,
                ),
            )
        )
    elif shape == "pistol":
        add(
            lambda d, s: d.rectangle(
                [(X - U * 0.85) * s, (Y - U * 0.25) * s, (X + U * 0.5) * s, (Y - U * 0.17) * s], fill=255
            )
        )
    elif shape == "coins":
        add(
            lambda d, s: d.ellipse(
                [(X - U * 0.35) * s, (Y - U * 0.65) * s, (X + U * 0.35) * s, (Y - U * 0.41) * s],
                outline=255,
                width=2 * s,
            )
        )
    else:
        for k in range(-3, 4):
            add(
                lambda d, s, k=k: d.line(
                    [(X + k * U * 0.18) * s, (Y - U * 0.5) * s, (X + k * U * 0.18) * s, (Y - U * 0.75) * s],
                    fill=255,
                    width=2 * s,
                )
            )
        add(
            lambda d, s: d.rectangle(
                [(X - U * 0.3) * s, (Y - U * 0.25) * s, (X + U * 0.3) * s, (Y + U * 0.25) * s],
                outline=255,
                width=2 * s,
            )
        )
    img += col * (detail * 0.9 + _blur(detail, 4) * 0.8)[..., None]
    # Sparks.
    sparks = np.zeros((h, w), dtype=np.float32)
    n = 24
    sparks[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0.5, 2.0, n)
    img += col * _blur(sparks, 1.5)[..., None]
    return img


def paint(parts: Mapping[str, Any], *, seed: int, width: int, height: int, progress=None) -> bytes:
    """PNG bytes of the picture `parts` describe (prompt.BuiltPrompt.parts). Deterministic in
    (parts, seed, width, height). `progress(done, total)`, if given, is called as it works."""
    if not (16 <= width <= 2048 and 16 <= height <= 2048):
        raise ValueError("width and height must be 16..2048")
    mix = hashlib.sha256(repr(sorted((k, str(v)) for k, v in parts.items())).encode()).digest()
    rng = np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, int.from_bytes(mix[:8], "big")])
    report = progress or (lambda done, total: None)
    report(0, 3)
    kind = parts.get("kind", "scene")
    if kind == "portrait":
        img = _portrait(rng, width, height, parts)
    elif kind == "item":
        img = _item(rng, width, height, parts)
    else:
        _name, pal = biome_palette(parts.get("biome", ""), seed)
        what = f"{parts.get('subject', '')} {parts.get('location', '')}".lower()
        view = pal["view"]
        if any(k in what for k in ("orbit", "space", "station", "fleet", "ship")):
            view = "space"
        img = (_space_scene if view == "space" else _surface_scene)(rng, width, height, pal, parts)
    report(2, 3)
    img = _grade(img, parts.get("beat", ""), rng)
    data = _png(img)
    report(3, 3)
    return data
