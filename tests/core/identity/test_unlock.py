"""Identities unlocked for a web session: sealed under a session key, idle timeout, lock."""

from __future__ import annotations

import os
import time

import pytest

from app.core.base.datadir import DataDir
from app.core.base.errors import WrongPassword
from app.core.base.websessions import end_session, start_session
from app.core.identity.identities import Identities
from app.core.identity.unlock import lock, unlock, unlocked, unlocked_seed
from tests.helpers.datadirs import PASSWORD


def test_unlock_idle_timeout_lock_and_sign_out(datadir: DataDir) -> None:
    fp = Identities(datadir).create(PASSWORD)
    seed = Identities(datadir).open_seed(fp, PASSWORD)
    _, session = start_session(datadir)
    with pytest.raises(WrongPassword):
        unlock(datadir, session.id, fp, "wrong")
    assert unlocked(datadir, session.id) == []
    key = unlock(datadir, session.id, fp, PASSWORD)
    blob = datadir.state / "web" / "unlocked" / f"{session.id}.{fp}"
    assert blob.stat().st_mode & 0o777 == 0o600 and seed not in blob.read_bytes()
    assert unlocked_seed(datadir, session.id, fp, key) == seed
    assert unlocked_seed(datadir, session.id, fp, bytes(32)) is None  # another key
    idle = datadir.settings["web_unlock_idle"]
    now = time.time()
    os.utime(blob, (now, now))
    assert unlocked_seed(datadir, session.id, fp, key, now=now + idle - 1) == seed  # used:
    assert unlocked_seed(datadir, session.id, fp, key, now=now + 2 * idle - 2) == seed  # renewed
    assert unlocked_seed(datadir, session.id, fp, key, now=now + 3 * idle) is None
    assert not blob.exists()  # timed out: gone
    key = unlock(datadir, session.id, fp, PASSWORD)
    lock(datadir, session.id, fp)
    assert unlocked_seed(datadir, session.id, fp, key) is None
    key = unlock(datadir, session.id, fp, PASSWORD)
    end_session(datadir, session.id)
    assert unlocked_seed(datadir, session.id, fp, key) is None
