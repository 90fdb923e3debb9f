"""Backgrounds for synthetic videos: real photographs and procedural textures.

Photographs come from scikit-image's bundled sample images (``skimage.data``,
installed with the package, no download), restricted to those without people
(:data:`PHOTO_NAMES`). Procedural textures (:data:`PROCEDURAL_KINDS`) are
smooth colour gradients, fractal value noise, tiles, stripes and a "lab room"
(a tiled floor in perspective below a horizon and a wall with panels above).

Every function takes a ``numpy.random.Generator`` and returns ``(H, W, 3)``
uint8 RGB, so a seed fixes the image exactly.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

from selfpose.errors import SelfposeError

#: skimage sample images without people (astronaut and camera are excluded).
PHOTO_NAMES = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "hubble_deep_field",
               "immunohistochemistry", "colorwheel", "stereo_motorcycle", "coins", "moon", "clock")
PROCEDURAL_KINDS = ("gradient", "noise", "tiles", "stripes", "lab_room")
KINDS = ("photo", "procedural", "any") + PROCEDURAL_KINDS
#: Procedural kinds :func:`wide_background` uses for a flat wall.
WALL_KINDS = ("noise", "tiles", "stripes")


class TextureError(SelfposeError, ValueError):
    """An unknown texture kind or an image that cannot be loaded."""


# ---------------------------------------------------------------------------
# Photographs
# ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """The skimage sample image ``name`` as ``(h, w, 3)`` uint8 RGB (read-only, cached)."""
    if name not in PHOTO_NAMES:
        raise TextureError(f"unknown photo {name!r}; choose one of {', '.join(PHOTO_NAMES)}")
    import skimage.data

    try:
        img = getattr(skimage.data, name)()
    except Exception as e:  # skimage raises various errors when an image needs a download
        raise TextureError(f"skimage sample image {name!r} cannot be loaded offline: {e}") from e
    if isinstance(img, tuple):  # stereo pairs: (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = np.ascontiguousarray(img[..., :3].astype(np.uint8))
    img.setflags(write=False)
    return img


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrink = img.shape[0] > height and img.shape[1] > width
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _colour_jitter(rng: np.random.Generator, img: np.ndarray, grey: bool) -> np.ndarray:
    """Random brightness, contrast, per-channel gains and gamma; grey images get a tint."""
    x = img.astype(np.float32) / 255.0
    if grey:
        tint = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.5), 1.0), np.float32)
        x = x * tint
    gains = rng.uniform(0.85, 1.15, 3).astype(np.float32) * rng.uniform(0.75, 1.2)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.75, 1.2) + mean
    x = np.clip(x * gains, 0, 1) ** rng.uniform(0.8, 1.25)
    return (x * 255 + 0.5).astype(np.uint8)


def photo_background(rng: np.random.Generator, height: int, width: int, name: str | None = None) -> np.ndarray:
    """A random crop of a photo (random size and position, flip, colour shift) resized to ``height``×``width``."""
    name = name or str(rng.choice(PHOTO_NAMES))
    img = photo(name)
    h, w = img.shape[:2]
    aspect = width / height
    # The largest crop of the right aspect ratio, scaled down by a random factor.
    ch = min(h, int(w / aspect))
    s = rng.uniform(0.45, 1.0)
    ch = max(2, int(ch * s))
    cw = max(2, min(w, int(round(ch * aspect))))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    crop = img[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    grey = bool(np.ptp(img.astype(np.int16), axis=-1).max() == 0)
    return _colour_jitter(rng, _resize(np.ascontiguousarray(crop), width, height), grey)


# ---------------------------------------------------------------------------
# Procedural textures
# ---------------------------------------------------------------------------

def _random_rgb(rng: np.random.Generator, s=(0.1, 0.7), v=(0.25, 0.95)) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*s), rng.uniform(*v)), np.float32)


def _contrasting(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` random colours alternating dark and light, so a texture never comes out flat."""
    start = rng.integers(2)
    return [_random_rgb(rng, v=(0.15, 0.45) if (i + start) % 2 == 0 else (0.6, 0.95)) for i in range(n)]


def value_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5,
                base_cells: float = 4.0, persistence: float = 0.5) -> np.ndarray:
    """Fractal value noise ``(H, W)`` float32 in [0, 1]: octaves of smoothly upsampled random grids.

    ``base_cells`` is the number of cells of the coarsest octave across the
    image's shorter side, so a wide image is as detailed as a square one.
    """
    import cv2

    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base_cells * 2 ** o
        gh = max(2, int(np.ceil(cells * height / min(height, width))) + 1)
        gw = max(2, int(np.ceil(cells * width / min(height, width))) + 1)
        grid = rng.random((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    out /= total
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _palette_map(t: np.ndarray, colours: list[np.ndarray]) -> np.ndarray:
    """Map ``t`` in [0, 1] ``(H, W)`` through a piecewise-linear colour ramp → ``(H, W, 3)`` float."""
    stops = np.linspace(0, 1, len(colours))
    cols = np.stack(colours)
    return np.stack([np.interp(t, stops, cols[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _grain(rng: np.random.Generator, img: np.ndarray, strength: float) -> np.ndarray:
    """Add fine fractal noise so that flat regions still have texture (and features)."""
    n = value_noise(rng, img.shape[0], img.shape[1], octaves=4, base_cells=16)
    return img * (1 - strength + 2 * strength * n)[..., None]


def gradient_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    t = (xx * np.cos(a) + yy * np.sin(a))
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    img = _palette_map(t, [_random_rgb(rng) for _ in range(int(rng.integers(2, 4)))])
    return _to_uint8(_grain(rng, img, 0.08))


def noise_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    t = value_noise(rng, height, width, octaves=int(rng.integers(4, 7)), base_cells=rng.uniform(2, 8),
                    persistence=rng.uniform(0.4, 0.65))
    img = _palette_map(t, _contrasting(rng, int(rng.integers(2, 5))))
    return _to_uint8(img)


def tiles_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    size = rng.uniform(0.06, 0.25) * min(height, width)
    a = rng.uniform(-0.3, 0.3)
    u = (xx * np.cos(a) + yy * np.sin(a)) / size
    v = (-xx * np.sin(a) + yy * np.cos(a)) / (size * rng.uniform(0.5, 1.5))
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    if rng.random() < 0.5:  # brick bond: offset every other row
        u = u + 0.5 * (iv % 2)
        iu = np.floor(u).astype(np.int64)
    base, alt = _contrasting(rng, 2)
    n = 7
    shades = rng.uniform(-0.12, 0.12, (n, n, 3)).astype(np.float32)
    checker = ((iu + iv) % 2 == 0)[..., None] if rng.random() < 0.5 else np.zeros(u.shape + (1,), bool)
    img = np.where(checker, alt, base) + shades[iu % n, iv % n]
    grout = (np.minimum(u - np.floor(u), v - np.floor(v)) * size) < max(1.0, 0.05 * size)
    img = np.where(grout[..., None], _random_rgb(rng, v=(0.2, 0.9)), img)
    return _to_uint8(_grain(rng, img, 0.1))


def stripes_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = rng.uniform(0, np.pi)
    period = rng.uniform(0.04, 0.25) * min(height, width)
    t = (xx * np.cos(a) + yy * np.sin(a)) / period
    wobble = value_noise(rng, height, width, octaves=3, base_cells=3) * rng.uniform(0, 1.5)
    s = np.sin(2 * np.pi * (t + wobble))
    s = np.clip(s * rng.uniform(1, 8), -1, 1) * 0.5 + 0.5  # soft to hard stripes
    img = _palette_map(s, _contrasting(rng, 2))
    return _to_uint8(_grain(rng, img, 0.08))


def lab_room_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A wall with panels above a horizon and a tiled floor in perspective below it."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = rng.uniform(0.4, 0.7) * height
    wall_col, floor_col, floor_alt = _random_rgb(rng, v=(0.5, 0.95)), _random_rgb(rng), _random_rgb(rng)
    img = np.empty((height, width, 3), np.float32)
    # Wall: vertical gradient (lit from above) with a few darker/lighter panels.
    wall = wall_col * (1.05 - 0.25 * (yy / max(horizon, 1.0)))[..., None]
    for _ in range(int(rng.integers(1, 6))):
        pw, ph = rng.uniform(0.05, 0.3) * width, rng.uniform(0.1, 0.6) * horizon
        px, py = rng.uniform(0, width - pw), rng.uniform(0, max(horizon - ph, 1.0))
        inside = (xx >= px) & (xx < px + pw) & (yy >= py) & (yy < py + ph)
        wall = np.where(inside[..., None], _random_rgb(rng), wall)
    # Floor: a checker on the ground plane seen from a camera one unit above
    # it with focal length f px: a floor point at depth Z and lateral offset X
    # lies at dy = f / Z below the horizon and dx = f X / Z from the centre.
    dy = np.maximum(yy - horizon, 0.5)
    f = rng.uniform(0.8, 1.6) * width
    depth = f / dy
    lateral = (xx - width * rng.uniform(0.3, 0.7)) / dy
    tile = rng.uniform(0.4, 1.0)
    checker = ((np.floor(lateral / tile) + np.floor(depth / tile)) % 2 == 0)[..., None]
    floor = np.where(checker, floor_col, floor_alt)
    # Far tiles are smaller than a pixel: fade them to their mean colour.
    far = np.clip((yy - horizon) / (0.25 * max(height - horizon, 1.0)), 0, 1)[..., None]
    floor = floor * far + 0.5 * (floor_col + floor_alt) * (1 - far)
    floor = floor * np.clip(0.6 + 0.5 * (yy - horizon) / max(height - horizon, 1.0), 0, 1.1)[..., None]
    img[:] = np.where((yy < horizon)[..., None], wall, floor)
    # A skirting board at the horizon.
    img[np.abs(yy - horizon) < max(1.0, 0.012 * height)] = _random_rgb(rng, v=(0.1, 0.5))
    return _to_uint8(_grain(rng, img, 0.06))


_PROCEDURAL = {"gradient": gradient_texture, "noise": noise_texture, "tiles": tiles_texture,
               "stripes": stripes_texture, "lab_room": lab_room_texture}


def procedural_background(rng: np.random.Generator, height: int, width: int, kind: str | None = None) -> np.ndarray:
    """A procedural texture of ``kind`` (random among :data:`PROCEDURAL_KINDS` when ``None``)."""
    kind = kind or str(rng.choice(PROCEDURAL_KINDS))
    if kind not in _PROCEDURAL:
        raise TextureError(f"unknown procedural texture {kind!r}; choose one of {', '.join(PROCEDURAL_KINDS)}")
    return _PROCEDURAL[kind](rng, height, width)


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

def _check(height: int, width: int, kind: str) -> None:
    if height < 1 or width < 1:
        raise TextureError(f"background size must be positive, got {height}x{width}")
    if kind not in KINDS:
        raise TextureError(f"unknown background kind {kind!r}; choose one of {', '.join(KINDS)}")


def background(rng: np.random.Generator, height: int, width: int, kind: str = "any") -> np.ndarray:
    """A random background ``(height, width, 3)`` uint8 RGB.

    Args:
        kind: ``"photo"`` (a random crop of a bundled photograph with a random
            colour shift), ``"procedural"`` (any procedural texture), ``"any"``
            (either, equally likely) or one procedural kind by name.
    """
    _check(height, width, kind)
    if kind == "any":
        kind = "photo" if rng.random() < 0.5 else "procedural"
    if kind == "photo":
        return photo_background(rng, height, width)
    return procedural_background(rng, height, width, None if kind == "procedural" else kind)


def wide_background(rng: np.random.Generator, height: int, width: int, kind: str = "any",
                    factor: float = 4.0) -> np.ndarray:
    """A wide background ``(height, round(factor * width), 3)`` uint8 for a panning camera.

    ``"procedural"`` picks among :data:`WALL_KINDS`: textures with detail
    everywhere (a panorama estimator needs features; a lab room's painted
    floor would look wrong on a flat wall). Photographs are a strip of several crops of different photos side by side,
    cross-faded at the seams, so that no part of the strip repeats (a
    panorama estimator must not confuse two places); procedural textures are
    generated at the full wide size.
    """
    _check(height, width, kind)
    W = int(round(factor * width))
    if kind == "any":
        kind = "photo" if rng.random() < 0.5 else "procedural"
    if kind == "procedural":
        kind = str(rng.choice(WALL_KINDS))
    if kind != "photo":
        return procedural_background(rng, height, W, kind)
    n = max(1, int(np.ceil(W / (1.3 * height))))
    names = rng.permutation(PHOTO_NAMES)
    fade = max(2, int(0.15 * W / n))
    piece_w = int(np.ceil((W + (n - 1) * fade) / n))
    out = np.zeros((height, W, 3), np.float32)
    x = 0
    ramp = np.linspace(0, 1, fade, dtype=np.float32)[None, :, None]
    for i in range(n):
        piece = photo_background(rng, height, piece_w, str(names[i % len(names)])).astype(np.float32)
        end = min(W, x + piece_w)
        piece = piece[:, :end - x]
        if i > 0:
            k = min(fade, end - x)
            piece[:, :k] = piece[:, :k] * ramp[:, :k] + out[:, x:x + k] * (1 - ramp[:, :k])
        out[:, x:end] = piece
        x = end - fade
        if end >= W:
            break
    return (out + 0.5).astype(np.uint8)
