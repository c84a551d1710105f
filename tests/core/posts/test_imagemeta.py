"""Images lose their metadata (EXIF GPS and camera, XMP, comments, text chunks) before signing."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from app.core.base.errors import BadInput
from app.core.posts.imagemeta import strip_metadata
from tests.helpers.images import CAMERA, GPS_IFD, PNG, exif_of, jpeg_with_gps

BIG = 10**8


def test_a_phone_jpeg_loses_gps_camera_and_comment_but_keeps_its_picture() -> None:
    data = jpeg_with_gps()
    assert exif_of(data)[GPS_IFD] and CAMERA.encode() in data and b"taken at home" in data
    clean = strip_metadata(data, max_pixels=BIG)
    assert exif_of(clean) == {}
    assert CAMERA.encode() not in clean and b"taken at home" not in clean
    im = Image.open(io.BytesIO(clean))
    assert im.format == "JPEG" and im.size == (40, 30)
    r, g, b = im.convert("RGB").getpixel((20, 15))  # type: ignore[misc]
    assert abs(r - 200) < 8 and g < 40 and b < 40


def test_a_sideways_photo_is_turned_upright_before_its_exif_goes() -> None:
    clean = strip_metadata(jpeg_with_gps((40, 30), orientation=6), max_pixels=BIG)
    assert Image.open(io.BytesIO(clean)).size == (30, 40) and exif_of(clean) == {}


def test_png_text_and_exif_chunks_go_webp_and_gif_too() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "Ahmed's flat, 3rd floor")
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (1.0, 2.0, 3.0)}
    out = io.BytesIO()
    Image.new("RGBA", (6, 5), (1, 2, 3, 128)).save(out, "PNG", pnginfo=info, exif=exif)
    clean = strip_metadata(out.getvalue(), max_pixels=BIG)
    im = Image.open(io.BytesIO(clean))
    assert b"Ahmed" not in clean and exif_of(clean) == {} and "Location" not in im.info
    assert im.mode == "RGBA" and im.getpixel((0, 0)) == (1, 2, 3, 128)  # lossless
    webp = io.BytesIO()
    Image.new("RGB", (6, 5)).save(webp, "WEBP", exif=exif, xmp=b"<x:xmpmeta>GPS</x:xmpmeta>")
    clean = strip_metadata(webp.getvalue(), max_pixels=BIG)
    assert b"xmpmeta" not in clean and exif_of(clean) == {}
    gif = io.BytesIO()
    frames = [Image.new("RGB", (5, 5), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0,
                   comment=b"made in Cairo")
    clean = strip_metadata(gif.getvalue(), max_pixels=BIG)
    assert b"Cairo" not in clean and Image.open(io.BytesIO(clean)).n_frames == 3


def test_a_clean_image_and_other_media_are_kept_byte_for_byte() -> None:
    assert strip_metadata(PNG, max_pixels=BIG) is PNG
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "JPEG")
    assert strip_metadata(plain.getvalue(), max_pixels=BIG) == plain.getvalue()
    for other in (b"%PDF-1.4 ...", b"OggS" + bytes(20), b"just text"):
        assert strip_metadata(other, max_pixels=BIG) is other


def test_an_image_that_does_not_decode_is_refused_not_signed_as_it_is() -> None:
    with pytest.raises(BadInput, match="does not decode"):
        strip_metadata(b"\xff\xd8\xff\xe1" + b"Exif GPS 52N" * 20, max_pixels=BIG, what="PIC")


def test_the_pixel_limit_at_its_edge() -> None:
    data = jpeg_with_gps((40, 30))
    assert exif_of(strip_metadata(data, max_pixels=1200)) == {}
    with pytest.raises(BadInput, match="max_image_pixels"):
        strip_metadata(data, max_pixels=1199)
