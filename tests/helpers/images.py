"""Real images for tests: a clean PNG whose natural size is known, and JPEGs that carry
EXIF with a GPS position and a camera, as a phone writes them."""

from __future__ import annotations

import base64
import io

from PIL import Image

# a 16x12 PNG (opaque blue) made with zlib: no metadata, so it is stored byte for byte
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAMCAIAAADkharWAAAAFUlEQVR4nGOQj+8mCTGMahjVgB0BAP8ZxsH+67jO"
    "AAAAAElFTkSuQmCC")
GPS_IFD = 0x8825
CAMERA = "DiwanTestCam"


def jpeg_with_gps(size: tuple[int, int] = (40, 30), orientation: int = 1) -> bytes:
    """A real JPEG (red, ``size`` pixels) carrying EXIF: camera make/model ``CAMERA``, the
    orientation, a GPS position (52°31'12.5"N 13°24'17.9"E) and a JPEG comment."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA
    exif[0x0110] = "Model 7"
    exif[0x0112] = orientation
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 17.9)}
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", exif=exif, quality=90,
                                               comment=b"taken at home")
    return out.getvalue()


def exif_of(data: bytes) -> dict[int, object]:
    """The EXIF tags (with the GPS IFD under :data:`GPS_IFD`) Pillow reads from ``data``."""
    exif = Image.open(io.BytesIO(data)).getexif()
    tags: dict[int, object] = dict(exif)
    if gps := exif.get_ifd(GPS_IFD):
        tags[GPS_IFD] = dict(gps)
    return tags
