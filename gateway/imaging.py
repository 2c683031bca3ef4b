"""Decoding untrusted images safely and rendering thumbnails (Pillow).

Why Pillow and not libvips: ``benchmarks/thumbnails.py`` on a 24-megapixel JPEG (256 px WebP) measured the
same time for both (~160 ms) and a peak RSS of ~26 MiB for Pillow in JPEG draft mode (the decoder scales
by 1/2..1/8 while decoding) against ~125 MiB for pyvips; Pillow is also one wheel we already audit for
the rest of the image formats. Without draft mode Pillow needed ~380 ms and ~207 MiB (docs/media.md).

What is refused, before any pixel is decoded where possible (``ImageRefused`` → 422):
- anything Pillow cannot identify, or a format outside ``ACCEPTED`` (no EPS/PostScript: Ghostscript);
- more pixels than the configured limit, read from the header (decompression bombs: a 50 kB PNG that
  claims 100,000 × 100,000 never gets a buffer);
- truncated or corrupt data (Pillow's ``LOAD_TRUNCATED_IMAGES`` stays off).
EXIF orientation is applied; nothing of the source's metadata (EXIF, GPS, ICC, comments) is written to
the thumbnail. Animated images give their first frame. All of it is synchronous CPU work: callers run
it in a worker thread with bounded concurrency (``service/thumbnails.py``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Literal

from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF through the libheif plugin, when installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - the plugin is a dependency; this keeps a slim install working
    HEIF = False

Fit = Literal["cover", "contain"]
OUTPUTS = {"webp": ("WEBP", "image/webp"), "jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
ACCEPTED = {"JPEG", "MPO", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF", "HEIF"}
Image.MAX_IMAGE_PIXELS = None  # our own limit applies (checked from the header), not Pillow's warning


class ImageRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ThumbSpec:
    width: int
    height: int
    fit: Fit = "cover"
    format: str = "webp"

    @property
    def key(self) -> str:
        return f"{self.width}x{self.height}-{self.fit}.{self.format}"

    @property
    def content_type(self) -> str:
        return OUTPUTS[self.format][1]


def render(source: BinaryIO, spec: ThumbSpec, *, max_pixels: int) -> bytes:
    """The thumbnail of ``source`` as ``spec`` says; ImageRefused for anything it will not decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                return _render(im, spec, max_pixels)
    except UnidentifiedImageError:
        raise ImageRefused("not_an_image", "not an image this gateway reads") from None
    except Image.DecompressionBombError:
        raise ImageRefused("image_too_large", "the image has too many pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused("corrupt_image", f"the image cannot be decoded ({type(exc).__name__})") from None


def _render(im: Image.Image, spec: ThumbSpec, max_pixels: int) -> bytes:
    if (im.format or "") not in ACCEPTED:
        raise ImageRefused("not_an_image", f"{im.format or 'this'} images are not accepted")
    if im.width * im.height > max_pixels or im.width <= 0 or im.height <= 0:
        raise ImageRefused(
            "image_too_large", f"{im.width}x{im.height} exceeds the limit of {max_pixels} pixels"
        )
    if getattr(im, "is_animated", False):
        im.seek(0)  # the first frame
    if im.format in ("JPEG", "MPO"):
        im.draft("RGB", (spec.width, spec.height))  # decode at 1/2..1/8 scale, never below the target
    oriented = ImageOps.exif_transpose(im)  # loads the pixels: truncation surfaces here
    frame = oriented if oriented is not None else im
    has_alpha = frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info)
    if spec.format == "jpeg" or not has_alpha:
        frame = _flatten(frame) if has_alpha else frame.convert("RGB")
    else:
        frame = frame.convert("RGBA")
    size = (spec.width, spec.height)
    if spec.fit == "cover":
        out = ImageOps.fit(frame, size, Image.Resampling.LANCZOS)
    else:
        out = frame.copy()
        out.thumbnail(size, Image.Resampling.LANCZOS)  # never enlarges
    buf = io.BytesIO()
    kind = OUTPUTS[spec.format][0]
    options: dict[str, object] = {"optimize": True} if kind in ("PNG", "JPEG") else {"method": 4}
    if kind in ("JPEG", "WEBP"):
        options["quality"] = 82
    out.save(buf, kind, **options)  # no exif=, icc_profile=: the source's metadata stays behind
    return buf.getvalue()


def _flatten(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return white
