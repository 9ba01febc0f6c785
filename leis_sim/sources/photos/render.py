"""Render synthetic booking photographs: small real JPEG images, deterministic per photo.

A plain head-and-shoulders figure in front of a height chart, holding a booking placard
with the photo id and date. Nothing is a real face; skin tone, hair, clothing and
background follow from ``PhotoSpec.appearance`` and the subject's hair colour, so the
same spec always gives the same bytes (same Pillow build).
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFont

from leis_sim.synth.model import PhotoSpec

MEDIA_TYPE = "image/jpeg"
WIDTH, HEIGHT = 80, 100
_FONT = ImageFont.load_default()
_SKIN = ((241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172), (110, 70, 40))
_HAIR = {
    "BLACK": (20, 20, 20),
    "BROWN": (90, 56, 37),
    "BLONDE": (205, 170, 100),
    "RED": (150, 60, 30),
    "GRAY": (140, 140, 140),
    "SANDY": (180, 150, 100),
}
_SHIRTS = ((40, 60, 120), (200, 120, 40), (90, 90, 90), (230, 90, 20), (30, 90, 60), (180, 180, 180))
_BACKGROUNDS = ((200, 205, 210), (185, 195, 215), (215, 210, 200))


def render(spec: PhotoSpec) -> bytes:
    """The JPEG bytes of one booking photo."""
    rng = random.Random(f"{spec.photo_id}:{spec.appearance}")
    background = rng.choice(_BACKGROUNDS)
    image = Image.new("RGB", (WIDTH, HEIGHT), background)
    draw = ImageDraw.Draw(image)
    for y in range(6, HEIGHT, 10):
        draw.line([(0, y), (WIDTH, y)], fill=tuple(c - 30 for c in background))
    skin = rng.choice(_SKIN)
    hair = _HAIR.get(spec.hair_color) or rng.choice(list(_HAIR.values()))
    head_w = rng.randint(26, 32)
    head_h = rng.randint(36, 42)
    cx = WIDTH // 2 + rng.randint(-3, 3)
    top = 14 + rng.randint(-2, 3)
    draw.ellipse([cx - 30, top + head_h - 6, cx + 30, top + head_h + 50], fill=rng.choice(_SHIRTS))
    draw.rectangle([cx - 6, top + head_h - 10, cx + 6, top + head_h + 2], fill=skin)
    draw.ellipse([cx - head_w // 2, top, cx + head_w // 2, top + head_h], fill=skin)
    if spec.hair_color != "BALD":
        draw.chord(
            [cx - head_w // 2 - 2, top - 4, cx + head_w // 2 + 2, top + head_h // 2], 180, 360, fill=hair
        )
    eye_y = top + head_h // 2 - 2
    for dx in (-7, 7):
        draw.ellipse([cx + dx - 2, eye_y - 1, cx + dx + 2, eye_y + 2], fill=(35, 30, 30))
    draw.line([(cx - 5, top + head_h - 9), (cx + 5, top + head_h - 9)], fill=(120, 60, 60), width=1)
    draw.rectangle([8, HEIGHT - 24, WIDTH - 8, HEIGHT - 4], fill=(20, 20, 20))
    draw.text((11, HEIGHT - 23), spec.photo_id[-10:], fill=(235, 235, 235), font=_FONT)
    draw.text((11, HEIGHT - 13), spec.taken.isoformat(), fill=(235, 235, 235), font=_FONT)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()
