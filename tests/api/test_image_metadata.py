"""The admin API strips image metadata before signing, whichever way the image arrives:
a multipart file, a raw JSON media attribute (any type, ``_BIN`` included), a profile picture."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from app.core.base.encoding import b64d
from app.core.posts import codec as posts
from tests.helpers.clients import make_admin_client
from tests.helpers.images import CAMERA, GPS_IFD, exif_of, jpeg_with_gps

PW = "pw-ahmed-long-enough"


def test_every_way_in_loses_gps_and_camera(tmp_path: Path) -> None:
    c = make_admin_client(tmp_path)
    a = c.post("/identities", json={"password": PW}).json["fingerprint"]
    photo = jpeg_with_gps()
    assert exif_of(photo)[GPS_IFD]
    sent = [
        c.post("/posts", data={"fingerprint": a, "password": PW, "text": "multipart",
                               "photo": (io.BytesIO(photo), "p.jpg")}),
        c.post("/posts", json={"fingerprint": a, "password": PW, "attributes": {
            "A_JPG": base64.b64encode(photo).decode(), "B_BIN": base64.b64encode(photo).decode()}}),
        c.post("/posts", data={"fingerprint": a, "password": PW,
                               "profilepicture": (io.BytesIO(photo), "me.jpg")}),
    ]
    for r in sent:
        assert r.status_code == 201, r.json
        raw = (c.dd.posts / a / r.json["sha1"]).read_bytes()
        attrs = posts.decode_post(raw, max_bytes=10**7).attributes
        images = [b64d(v) for k, v in attrs.items() if k.endswith(("_JPG", "_BIN", "PICTURE"))]
        assert images and all(exif_of(i) == {} and CAMERA.encode() not in i for i in images)


def test_a_broken_image_is_a_400_and_nothing_is_stored(tmp_path: Path) -> None:
    c = make_admin_client(tmp_path)
    a = c.post("/identities", json={"password": PW}).json["fingerprint"]
    r = c.post("/posts", data={"fingerprint": a, "password": PW,
                               "photo": (io.BytesIO(b"\xff\xd8\xff\xe1broken"), "p.jpg")})
    assert r.status_code == 400 and r.json["status"] == "bad_input", r.json
    assert not (c.dd.posts / a).exists() or not any((c.dd.posts / a).iterdir())
