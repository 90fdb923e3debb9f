"""Ray-cast rendering of synthetic people (capsules and ellipsoids) over backgrounds.

Every pixel's ray is intersected in closed form with every primitive of the
body (:func:`selfpose.data.synthetic.bodies.body_primitives`); the nearest hit
wins (a z-buffer, so occlusion and self-occlusion are exact), and is shaded
with Lambert + ambient + a little specular light and the identity's clothing,
whose patterns are computed in each primitive's own coordinates so that they
move with the body. Work is batched over frames in torch (float32); each
primitive's rays are limited to a window around its projection (a
conservative box), and buffers to a tile around the whole body, which is
what makes it fast on a CPU (thousands of 128×128 frames per second on one core).

Rays are cast from the camera centre through pixel centres (integer pixel
coordinates, the convention of :meth:`Camera.project`) with direction
``((u - cx) / fx, (v - cy) / fy, 1)``, so a hit's ray parameter *is* its
camera depth in mm.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from selfpose.data.synthetic.bodies import (PATTERNS, REGION_BOTTOM, REGION_HEAD, REGION_SHOE, REGION_SIDE,
                                            REGION_SKIN, REGION_TOP, BodyPrimitives, Identity, body_primitives)
from selfpose.errors import SelfposeError
from selfpose.geometry.camera import Camera

# Rays per inner chunk of frames: bounds the memory of the tile buffers.
_CHUNK_RAYS = 1 << 20
_NEAR_MM = 1.0


class RenderError(SelfposeError, ValueError):
    """Inputs that cannot be rendered (wrong shapes, distorted camera, ...)."""


@dataclass
class RenderResult:
    """Rendered frames of one batch (or a whole sequence).

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB, the person composited over the background.
        masks: ``(T, H, W)`` uint8, 1 where the person covers the pixel (with
            supersampling: covers any part of it); elsewhere ``frames`` equals
            the background exactly.
        depth: ``(T, H, W)`` float32 camera depth (z, mm) of the nearest
            visible body surface, ``inf`` where there is none.
    """

    frames: np.ndarray
    masks: np.ndarray
    depth: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    @staticmethod
    def concatenate(parts: list["RenderResult"]) -> "RenderResult":
        return RenderResult(np.concatenate([p.frames for p in parts]), np.concatenate([p.masks for p in parts]),
                            np.concatenate([p.depth for p in parts]))


@contextmanager
def _torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    if n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


#: Direction towards the room's light in the world frame (z up) of the
#: scenarios: high above, off to one side — a ceiling light, not a light on the
#: camera. Used by ``SynthConfig.light = "room"``.
ROOM_LIGHT = (0.45, 0.3, 1.0)


def _unit_light(light_dir) -> np.ndarray:
    light = np.asarray(light_dir, dtype=np.float64)
    if light.shape != (3,) or not np.all(np.isfinite(light)) or np.linalg.norm(light) < 1e-9:
        raise RenderError(f"light_dir must be a non-zero 3-vector, got {light_dir!r}")
    return light / np.linalg.norm(light)


def room_light(R: np.ndarray, world_dir=ROOM_LIGHT) -> np.ndarray:
    """A light fixed in the room, as seen from one camera.

    Args:
        R: ``(3, 3)`` world→camera rotation (``X_cam = R X_world + t``).
        world_dir: direction towards the light in the world frame (z up).

    Returns:
        ``(3,)`` unit direction towards the light in the camera frame (x right,
        y down, z forward), for :meth:`Renderer.render`'s ``light_dir``.
        Why it matters: with the light fixed to the camera every image is lit
        from the same side of *itself*, so a mirrored image is lit from the
        other side — a cue no real footage offers (issue 15's flip task).
    """
    return _unit_light(np.asarray(R, dtype=np.float64).reshape(3, 3) @ _unit_light(world_dir))


class Renderer:
    """Renders posed identities through distortion-free pinhole cameras.

    Args:
        height, width: output size in pixels (must match the cameras').
        batch_size: frames rendered together (and yielded together by :meth:`render_iter`).
        light_dir: direction *towards* the light in the camera frame (x right,
            y down, z forward); the default lights from above-left, in front of
            the person.
        ambient: ambient light fraction in 0..1.
        supersample: rays per pixel along each axis (1 = one ray per pixel;
            2 = 4 rays, anti-aliased edges).
        num_threads: torch threads while rendering. The default (None) is one:
            the work is many small tensor operations, for which intra-op
            threads cost more than they give (and stall badly on a busy
            machine); render several sequences in parallel processes instead.
        specular: strength of the white specular highlight.
        shininess: Phong exponent of the highlight.
    """

    def __init__(self, height: int, width: int, *, batch_size: int = 32,
                 light_dir=(-0.4, -0.8, -0.45), ambient: float = 0.35, supersample: int = 1,
                 num_threads: int | None = None, specular: float = 0.12, shininess: float = 24.0):
        if height < 1 or width < 1:
            raise RenderError(f"image size must be positive, got {height}x{width}")
        if batch_size < 1 or supersample < 1:
            raise RenderError(f"batch_size and supersample must be >= 1, got {batch_size}, {supersample}")
        if not 0.0 <= ambient <= 1.0:
            raise RenderError(f"ambient must be in [0, 1], got {ambient}")
        light = _unit_light(light_dir)
        self.height, self.width = int(height), int(width)
        self.batch_size = int(batch_size)
        self.light_dir = light
        self.ambient = float(ambient)
        self.supersample = int(supersample)
        self.num_threads = 1 if num_threads is None else int(num_threads)
        if self.num_threads < 1:
            raise RenderError(f"num_threads must be >= 1, got {num_threads}")
        self.specular = float(specular)
        self.shininess = float(shininess)

    # -- public -------------------------------------------------------------
    def render(self, joints_cam: np.ndarray, camera: Camera, identity: Identity,
               background: np.ndarray, light_dir=None) -> RenderResult:
        """Render all frames at once; see :meth:`render_iter` for the arguments."""
        parts = list(self.render_iter(joints_cam, camera, identity, background, light_dir=light_dir))
        if not parts:
            h, w = self.height, self.width
            return RenderResult(np.zeros((0, h, w, 3), np.uint8), np.zeros((0, h, w), np.uint8),
                                np.zeros((0, h, w), np.float32))
        return RenderResult.concatenate(parts)

    def render_iter(self, joints_cam: np.ndarray, camera: Camera, identity: Identity,
                    background: np.ndarray, light_dir=None) -> Iterator[RenderResult]:
        """Render ``batch_size`` frames at a time, in frame order (for streaming to disk).

        Args:
            joints_cam: ``(T, 17, 3)`` mm in the camera frame (x right, y down,
                z forward), Human3.6M-17 order, at the identity's bone lengths.
            camera: intrinsics ``fx, fy, cx, cy`` (pixels) of an
                ``height``×``width`` image; no distortion.
            identity: body shape and clothing.
            background: ``(H, W, 3)`` uint8 (static) or ``(T, H, W, 3)`` uint8 (one per frame).
            light_dir: direction towards the light *in this camera's frame* for
                these frames; None: the renderer's own :attr:`light_dir` (a light
                that moves with every camera). A light fixed in the room is one
                world direction rotated into each camera (:func:`room_light`).
        """
        light = self.light_dir if light_dir is None else _unit_light(light_dir)
        joints = np.asarray(joints_cam, dtype=np.float64)
        if joints.ndim != 3 or joints.shape[1:] != (17, 3):
            raise RenderError(f"joints_cam must be (T, 17, 3) mm in the camera frame, got shape {joints.shape}")
        if camera.has_distortion:
            raise RenderError("the renderer casts pinhole rays; use a camera without distortion (k = p = 0)")
        if (camera.height, camera.width) != (self.height, self.width):
            raise RenderError(f"camera is {camera.width}x{camera.height} px but the renderer makes "
                              f"{self.width}x{self.height} frames; use camera.scaled(...) or a matching Renderer")
        bg = np.asarray(background)
        hw3 = (self.height, self.width, 3)
        if bg.dtype != np.uint8 or not (bg.shape == hw3 or (bg.ndim == 4 and bg.shape[1:] == hw3)):
            raise RenderError(f"background must be uint8 {hw3} or (T, {self.height}, {self.width}, 3), "
                              f"got {bg.dtype} {bg.shape}")
        if bg.ndim == 4 and len(bg) != len(joints):
            raise RenderError(f"{len(bg)} background frames for {len(joints)} pose frames")
        for s in range(0, len(joints), self.batch_size):
            e = min(s + self.batch_size, len(joints))
            prims = body_primitives(joints[s:e], identity)
            bg_batch = bg[s:e] if bg.ndim == 4 else bg
            with _torch_threads(self.num_threads):
                yield self._render_batch(prims, camera, identity, bg_batch, e - s, light)

    # -- internals ----------------------------------------------------------
    def _boxes(self, prims: BodyPrimitives, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
        """Conservative pixel boxes of every primitive: ``(B, P, 4)`` (u0, v0, u1, v1) and ``(B,)`` behind flags.

        A sphere's box is the projection of the axis-aligned cube around it
        (it contains the sphere's projection while the sphere is in front of
        the camera); a capsule's is the union of its end spheres' boxes (its
        projection is their convex hull's), an ellipsoid's that of its
        bounding sphere. A frame is flagged when a sphere reaches behind the
        near plane; its boxes are then meaningless and the whole image is used.
        """
        c, r = prims.bounding_spheres()
        X, Y, Z = c[..., 0], c[..., 1], c[..., 2]
        near = Z - r
        behind = (near <= _NEAR_MM).any(axis=1)
        zs = np.stack([np.maximum(near, _NEAR_MM), Z + r])[..., None]                # (2, B, S, 1)
        us = camera.fx * np.stack([X - r, X + r], axis=-1)[None] / zs + camera.cx    # (2, B, S, 2)
        vs = camera.fy * np.stack([Y - r, Y + r], axis=-1)[None] / zs + camera.cy
        box = np.stack([us.min(axis=(0, 3)), vs.min(axis=(0, 3)), us.max(axis=(0, 3)), vs.max(axis=(0, 3))], -1)
        pc = len(prims.cap_radius)
        caps = np.concatenate([np.minimum(box[:, :pc, :2], box[:, pc:2 * pc, :2]),
                               np.maximum(box[:, :pc, 2:], box[:, pc:2 * pc, 2:])], axis=-1)
        return np.concatenate([caps, box[:, 2 * pc:]], axis=1), behind

    def _render_batch(self, prims: BodyPrimitives, camera: Camera, identity: Identity,
                      bg: np.ndarray, n: int, light: np.ndarray) -> RenderResult:
        import torch

        H, W, ss = self.height, self.width, self.supersample
        frames = np.empty((n, H, W, 3), np.uint8)
        frames[:] = bg
        masks = np.zeros((n, H, W), np.uint8)
        depth = np.full((n, H, W), np.inf, np.float32)

        boxes, behind = self._boxes(prims, camera)
        # One tile per frame around the whole body, all of the batch's largest size.
        x0 = np.clip(np.floor(boxes[..., 0].min(1)) - 1, 0, W).astype(np.int64)
        y0 = np.clip(np.floor(boxes[..., 1].min(1)) - 1, 0, H).astype(np.int64)
        x1 = np.clip(np.ceil(boxes[..., 2].max(1)) + 2, 0, W).astype(np.int64)
        y1 = np.clip(np.ceil(boxes[..., 3].max(1)) + 2, 0, H).astype(np.int64)
        x0, y0 = np.where(behind, 0, x0), np.where(behind, 0, y0)
        x1, y1 = np.where(behind, W, x1), np.where(behind, H, y1)
        visible = (x1 > x0) & (y1 > y0)
        if not visible.any():
            return RenderResult(frames, masks, depth)
        wt, ht = int((x1 - x0)[visible].max()), int((y1 - y0)[visible].max())
        origins = np.stack([np.clip(x0, 0, W - wt), np.clip(y0, 0, H - ht)], axis=1)
        # Primitive boxes in the tile's sub-pixel grid (sub-pixel k sits at
        # pixel origin + (k + 0.5) / ss - 0.5).
        sub = np.concatenate([(boxes[..., :2] - origins[:, None] + 0.5) * ss - 0.5,
                              (boxes[..., 2:] - origins[:, None] + 0.5) * ss - 0.5], axis=-1)
        hs, ws = ht * ss, wt * ss
        win = np.stack([np.clip(np.floor(sub[..., 0]), 0, ws), np.clip(np.floor(sub[..., 1]), 0, hs),
                        np.clip(np.ceil(sub[..., 2]) + 1, 0, ws), np.clip(np.ceil(sub[..., 3]) + 1, 0, hs)],
                       -1).astype(np.int64)
        win[behind] = (0, 0, ws, hs)

        with torch.inference_mode():
            P = _TorchPrims(prims)
            mat = _Materials(identity, light)
            org = torch.from_numpy(origins).to(torch.float64)
            kx = (torch.arange(ws, dtype=torch.float64) + 0.5) / ss - 0.5
            ky = (torch.arange(hs, dtype=torch.float64) + 0.5) / ss - 0.5
            dx = ((org[:, 0:1] + kx[None] - camera.cx) / camera.fx).float()[:, None, :]   # (B, 1, ws)
            dy = ((org[:, 1:2] + ky[None] - camera.cy) / camera.fy).float()[:, :, None]   # (B, hs, 1)
            colour = torch.empty((n, hs, ws, 3))
            zbuf = torch.empty((n, hs, ws))
            per_chunk = max(1, _CHUNK_RAYS // (hs * ws))
            for s in range(0, n, per_chunk):
                e = min(n, s + per_chunk)
                zbuf[s:e], colour[s:e] = self._cast(P.slice(s, e), mat, dx[s:e], dy[s:e], win[s:e],
                                                    identity, bool(behind[s:e].any()))
            hit = torch.isfinite(zbuf).float()
            if ss > 1:
                colour = colour.view(n, ht, ss, wt, ss, 3).mean(dim=(2, 4))
                cover = hit.view(n, ht, ss, wt, ss).mean(dim=(2, 4))
                zbuf = -torch.nn.functional.max_pool2d(-zbuf[:, None], ss)[:, 0]
            else:
                cover = hit
            tiles = torch.from_numpy(np.stack([frames[b, y:y + ht, x:x + wt] for b, (x, y) in enumerate(origins)]))
            # Composite in 0..255 so that uncovered pixels keep the background exactly.
            out = torch.addcmul(colour * 255.0, tiles.float(), (1.0 - cover)[..., None])
            out_np = out.round_().clamp_(0, 255).to(torch.uint8).numpy()
            mask_np = (cover > 0).to(torch.uint8).numpy()
            zbuf_np = zbuf.numpy()
        for b, (x, y) in enumerate(origins):
            frames[b, y:y + ht, x:x + wt] = out_np[b]
            masks[b, y:y + ht, x:x + wt] = mask_np[b]
            depth[b, y:y + ht, x:x + wt] = zbuf_np[b]
        return RenderResult(frames, masks, depth)

    def _cast(self, P: "_TorchPrims", mat: "_Materials", dx, dy, win: np.ndarray, identity: Identity,
              behind: bool):
        """Nearest hits and their shaded colours for one chunk of ``B`` frames.

        Args:
            dx, dy: ``(B, 1, w)`` and ``(B, h, 1)`` ray direction components
                (the ray of sub-pixel (i, j) is ``(dx[j], dy[i], 1)``).
            win: ``(B, P, 4)`` each primitive's window (x0, y0, x1, y1; sub-pixels,
                end exclusive) outside which it cannot be hit.
            behind: whether some primitive may reach behind the camera.

        Returns ``(zbuf, colour)``: ``(B, h, w)`` depth in mm (``inf`` = miss)
        and ``(B, h, w, 3)`` colour in 0..1 (0 where missed).
        """
        import torch

        B, h, w = dx.shape[0], dy.shape[1], dx.shape[2]
        zbuf = torch.full((B, h, w), float("inf"))
        idx = torch.zeros((B, h, w), dtype=torch.int64)
        zflat, iflat = zbuf.view(-1), idx.view(-1)
        inf = torch.tensor(float("inf"))
        frame_base = (torch.arange(B) * (h * w))[:, None, None]

        def window(k):
            """Ray components, |d|² and flat buffer indices of primitive k's window (or None if empty)."""
            wk = int((win[:, k, 2] - win[:, k, 0]).max())
            hk = int((win[:, k, 3] - win[:, k, 1]).max())
            if wk <= 0 or hk <= 0:
                return None
            ox = torch.from_numpy(np.minimum(win[:, k, 0], w - wk))[:, None, None]
            oy = torch.from_numpy(np.minimum(win[:, k, 1], h - hk))[:, None, None]
            jx = ox + torch.arange(wk)[None, None, :]                 # (B, 1, wk)
            jy = oy + torch.arange(hk)[None, :, None]                 # (B, hk, 1)
            dxw, dyw = torch.gather(dx, 2, jx), torch.gather(dy, 1, jy)
            dd = (dxw * dxw + 1.0) + dyw * dyw
            return dxw, dyw, dd, (frame_base + jy * w) + jx

        def update(t, k, index):
            """z-buffer test of primitive k's hit depths ``t`` over its window."""
            if behind:  # a primitive reaching behind the camera can be hit at t <= 0: not visible
                t = torch.where(t > _NEAR_MM, t, inf)
            zw = zflat[index]
            closer = t < zw  # NaN (a miss) compares False
            zflat[index] = torch.where(closer, t, zw)
            iflat[index] = torch.where(closer, k, iflat[index])

        def lin(v, dxw, dyw):
            """v · (dx, dy, 1) for per-frame vectors v (B, 3): one full-size add, the rest is small."""
            return (dxw * v[:, None, None, 0] + v[:, None, None, 2]) + dyw * v[:, None, None, 1]

        for k in range(P.num_caps):
            wd = window(k)
            if wd is None:
                continue
            dxw, dyw, dd, index = wd
            a, wv, L, r = P.cap_a[:, k], P.cap_w[:, k], P.cap_len[:, k], P.cap_r[k]
            aw = (a * wv).sum(-1)
            a2 = (a * a).sum(-1)
            c_perp = (a2 - aw * aw - r * r)[:, None, None]          # |a⊥|² - r²
            c_a = (a2 - r * r)[:, None, None]
            c_b = ((P.cap_b[:, k] ** 2).sum(-1) - r * r)[:, None, None]
            aw3, L3 = aw[:, None, None], L[:, None, None]
            dw = lin(wv, dxw, dyw)
            da = lin(a, dxw, dyw)
            # Infinite cylinder: |t d⊥ - a⊥|² = r²
            dperp2 = torch.addcmul(dd, dw, dw, value=-1.0)
            dpa = torch.addcmul(da, dw, aw3, value=-1.0)
            hh = torch.addcmul(dpa * dpa, dperp2, c_perp, value=-1.0)
            t = (dpa - hh.sqrt_()).div_(dperp2)
            y = torch.addcmul(-aw3, t, dw)                          # axial position of the hit, mm
            in_cyl = (y >= 0) & (y <= L3)
            # Otherwise the end sphere on the hit's side.
            below = y < 0
            dp = torch.where(below, da, torch.addcmul(da, dw, L3))
            cc = torch.where(below, c_a, c_b)
            h2 = torch.addcmul(dp * dp, dd, cc, value=-1.0)
            ts = (dp - h2.sqrt_()).div_(dd)
            update(torch.where(in_cyl, t, ts), k, index)
        for k in range(P.num_ells):
            wd = window(P.num_caps + k)
            if wd is None:
                continue
            dxw, dyw, _, index = wd
            Me, o = P.ell_me[:, k], P.ell_o[:, k]                      # (B, 3, 3) rows / semi, (B, 3)
            Q = Me.transpose(1, 2) @ Me                              # quadratic form of d'·d'
            bv = (Me.transpose(1, 2) @ o[..., None])[..., 0]        # o'·d' = (Meᵀ o')·d
            c = ((o * o).sum(-1) - 1.0)[:, None, None]
            qx = Q[:, None, None, 0, 0] * dxw * dxw + 2 * Q[:, None, None, 0, 2] * dxw + Q[:, None, None, 2, 2]
            qy = Q[:, None, None, 1, 1] * dyw * dyw + 2 * Q[:, None, None, 1, 2] * dyw
            A = torch.addcmul(qx + qy, dxw * dyw, 2 * Q[:, None, None, 0, 1])
            Bh = lin(bv, dxw, dyw)
            hh = torch.addcmul(Bh * Bh, A, c, value=-1.0)
            update((-Bh - hh.sqrt_()).div_(A), P.num_caps + k, index)

        colour = torch.zeros((B, h, w, 3))
        flat = torch.isfinite(zflat).nonzero().squeeze(1)
        if flat.numel():
            colour.view(-1, 3)[flat] = self._shade(P, mat, flat, zflat[flat], iflat[flat], dx, dy, identity)
        return zbuf, colour

    def _shade(self, P: "_TorchPrims", mat: "_Materials", flat, t, prim, dx, dy, identity: Identity):
        """Colours ``(K, 3)`` in 0..1 of ``K`` hits (flat pixel indices, depths, primitive indices)."""
        import torch

        h, w = dy.shape[1], dx.shape[2]
        b = flat // (h * w)
        yy = (flat // w) % h
        xx = flat % w
        d = torch.stack([dx[b, 0, xx], dy[b, yy, 0], torch.ones_like(t)], dim=1)
        p = t[:, None] * d
        is_cap = prim < P.num_caps

        # Capsules: normal from the nearest axis point; (axial, angle) coordinates.
        kc = prim.clamp(max=P.num_caps - 1)
        a, wv, ref = P.cap_a[b, kc], P.cap_w[b, kc], P.cap_ref[b, kc]
        r = P.cap_r[kc]
        rel = p - a
        s = (rel * wv).sum(-1)
        sc = torch.minimum(s.clamp(min=0.0), P.cap_len[b, kc])
        n_c = rel - sc[:, None] * wv
        ang_c = torch.atan2((n_c * torch.linalg.cross(wv, ref)).sum(-1), (n_c * ref).sum(-1))

        # Ellipsoids: q in the body-aligned axes (right, up, forward), mm.
        ke = (prim - P.num_caps).clamp(min=0)
        axes, semi = P.ell_axes[b, ke], P.ell_semi[ke]
        q = (axes @ (p - P.ell_c[b, ke])[..., None])[..., 0]
        u = q / semi
        n_e = (axes.transpose(1, 2) @ (q / semi ** 2)[..., None])[..., 0]
        ang_e = torch.atan2(u[:, 2], u[:, 0])

        n = torch.where(is_cap[:, None], n_c, n_e)
        n = n / n.norm(dim=1, keepdim=True).clamp(min=1e-9)
        axial = torch.where(is_cap, s, q[:, 1])
        radius = torch.where(is_cap, r, 0.5 * (semi[:, 0] + semi[:, 2]))
        ang = torch.where(is_cap, ang_c, ang_e)

        region = P.region[prim]
        is_head = prim == P.num_caps + P.head_index
        hl = identity.hair_length
        hair = is_head & (((u[:, 1] > 0.22) & (u[:, 2] < 0.62))
                          | ((u[:, 2] < -0.05) & (u[:, 1] > -0.05 - 0.6 * hl))
                          | ((u[:, 0].abs() > 0.55) & (u[:, 2] < 0.2) & (u[:, 1] > 0.15 - 0.4 * hl)))
        region = torch.where(is_head, torch.where(hair, _HAIR, REGION_SKIN), region)
        albedo = mat.palette[region]

        # Clothing patterns in (axial, around) surface coordinates, mm; the
        # number of cells around a limb is an integer so there is no seam.
        top = region == REGION_TOP
        period = torch.where(top, mat.period[0], mat.period[1])
        kind = torch.where(top, mat.pattern[0], mat.pattern[1])
        cells = (2 * math.pi * radius / period).round().clamp(min=1.0)
        fa = axial / period
        fb = (ang / (2 * math.pi)) * cells
        stripes = torch.frac(fa - fa.floor()) < 0.5
        checks = ((fa.floor() + fb.floor()) % 2) == 1
        ua, ub = fa - fa.floor() - 0.5, fb - fb.floor() - 0.5
        dots = ua * ua + ub * ub < 0.09
        on = torch.where(kind == 1, stripes, torch.where(kind == 2, checks, torch.where(kind == 3, dots, False)))
        on = on & ((region == REGION_TOP) | (region == REGION_BOTTOM))
        pat_col = torch.where(top[:, None], mat.pattern_colour[0], mat.pattern_colour[1])
        albedo = torch.where(on[:, None], pat_col, albedo)

        # Lambert + ambient + Blinn-Phong highlight.
        light = mat.light
        view = -d / d.norm(dim=1, keepdim=True)
        half = light + view
        half = half / half.norm(dim=1, keepdim=True).clamp(min=1e-9)
        diffuse = (n @ light).clamp(min=0.0)
        spec = self.specular * (n * half).sum(-1).clamp(min=0.0) ** self.shininess
        col = albedo * (self.ambient + (1.0 - self.ambient) * diffuse)[:, None] + spec[:, None]
        return col.clamp(0.0, 1.0)


_HAIR = 5  # palette index of hair (the head region is split into skin and hair)


class _Materials:
    """An identity's colours and patterns, and the light, as torch tensors."""

    def __init__(self, identity: Identity, light_dir: np.ndarray):
        import torch

        palette = np.zeros((7, 3))
        palette[REGION_SKIN] = identity.skin
        palette[REGION_TOP] = identity.top
        palette[REGION_BOTTOM] = identity.bottom
        palette[REGION_SHOE] = identity.shoe
        palette[REGION_HEAD] = identity.skin
        palette[_HAIR] = identity.hair
        palette[REGION_SIDE] = identity.side if identity.side is not None else identity.top   # unused without marks
        self.palette = torch.from_numpy(palette.astype(np.float32))
        self.pattern = torch.tensor([PATTERNS.index(identity.top_pattern), PATTERNS.index(identity.bottom_pattern)])
        self.period = torch.tensor([identity.top_pattern_period_mm, identity.bottom_pattern_period_mm],
                                   dtype=torch.float32)
        self.pattern_colour = torch.tensor([identity.top_pattern_color, identity.bottom_pattern_color],
                                           dtype=torch.float32)
        self.light = torch.from_numpy(np.asarray(light_dir, dtype=np.float32))


class _TorchPrims:
    """A batch of :class:`BodyPrimitives` as float32 torch tensors, plus materials."""

    def __init__(self, prims: BodyPrimitives | None):
        if prims is None:
            return
        import torch

        f = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
        ax = prims.cap_b - prims.cap_a
        length = np.linalg.norm(ax, axis=-1)
        self.cap_a = f(prims.cap_a)
        self.cap_b = f(prims.cap_b)
        self.cap_w = f(ax / np.maximum(length, 1e-9)[..., None])
        self.cap_len = f(length)
        self.cap_r = f(prims.cap_radius)
        self.cap_ref = f(prims.cap_ref)
        self.ell_c = f(prims.ell_center)
        self.ell_axes = f(prims.ell_axes)
        self.ell_semi = f(prims.ell_semi)
        me = prims.ell_axes / prims.ell_semi[None, :, :, None]               # rows scaled to the unit sphere
        self.ell_me = f(me)
        self.ell_o = f(np.einsum("bkij,bkj->bki", me, -prims.ell_center))    # camera centre in unit-sphere coords
        self.region = torch.from_numpy(np.concatenate([prims.cap_region, prims.ell_region]).astype(np.int64))
        self.num_caps = len(prims.cap_radius)
        self.num_ells = len(prims.ell_semi)
        self.head_index = prims.head_index

    def slice(self, s: int, e: int) -> "_TorchPrims":
        out = _TorchPrims(None)
        for k, v in self.__dict__.items():
            per_frame = k in ("cap_a", "cap_b", "cap_w", "cap_len", "cap_ref", "ell_c", "ell_axes", "ell_me", "ell_o")
            setattr(out, k, v[s:e] if per_frame else v)
        return out


def benchmark_render(num_frames: int = 512, size: int = 128, *, motion: np.ndarray | None = None,
                     batch_size: int = 32, supersample: int = 1, num_threads: int | None = None,
                     fill: float = 0.4) -> float:
    """Rendered frames per second (including compositing and uint8 conversion).

    Args:
        num_frames: frames to render (the motion is repeated if shorter).
        size: square image side, pixels.
        motion: ``(T, 17, 3)`` mm world motion (z up); default: the first
            sequence of the CMU motion shipped with the package.
        fill: the person's height as a fraction of the frame height.
    """
    from importlib.resources import as_file, files

    from selfpose.data.synthetic.bodies import identity_for, retarget
    from selfpose.geometry.camera import look_at

    if motion is None:
        with as_file(files("selfpose") / "assets" / "motion" / "cmu_h36m17approx_30fps.npz") as path:
            with np.load(path) as npz:
                motion = npz[sorted(npz.files)[0]]
    motion = np.asarray(motion, dtype=np.float64)
    motion = motion[np.arange(num_frames) % len(motion)]
    identity = identity_for("benchmark", 0)
    joints = retarget(motion, identity)
    joints[..., :2] -= joints[:, :1, :2]  # walk on the spot: the person stays in view
    fov = 50.0
    dist = 0.5 * identity.height_mm / (fill * np.tan(np.radians(fov) / 2))
    target = np.array([0.0, 0.0, 0.5 * identity.height_mm])
    R, t = look_at(target + np.array([dist, 0.0, 0.0]), target)
    camera = Camera.from_fov(size, size, fov, R=R, t=t)
    joints_cam = camera.world_to_camera(joints)
    yy, xx = np.mgrid[0:size, 0:size]
    background = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 128)], -1).astype(np.uint8)
    renderer = Renderer(size, size, batch_size=batch_size, supersample=supersample, num_threads=num_threads)
    renderer.render(joints_cam[:batch_size], camera, identity, background)  # warm-up
    start = time.perf_counter()
    for _ in renderer.render_iter(joints_cam, camera, identity, background):
        pass
    return num_frames / (time.perf_counter() - start)
