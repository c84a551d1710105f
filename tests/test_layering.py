"""The layering of docs/architecture.md holds, and its checker can fail (issue 7)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers.layering import check_tree

ROOT = Path(__file__).resolve().parents[1]


def test_the_tree_keeps_every_import_rule() -> None:
    assert check_tree(ROOT) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    base = {
        "app/__init__.py": "from .admin import views\n",
        "app/core/__init__.py": "",
        "app/core/base/__init__.py": "",
        "app/core/base/crypto.py": "import nacl.signing\n",
        "app/core/base/errors.py": "",
        "app/core/identity/__init__.py": "",
        "app/core/identity/keys.py": "from ..base import crypto\n",
        "app/core/posts/__init__.py": "",
        "app/core/posts/codec.py": "from ..identity import keys\nfrom ..base.errors import *\n",
        "app/core/network/__init__.py": "",
        "app/core/network/sync.py": "from ..posts import codec\n",
        "app/schemas/__init__.py": "",
        "app/web/__init__.py": "import flask\n",
        "app/admin/__init__.py": "",
        "app/admin/views.py": "import flask\nfrom ..core.network import sync\nfrom .. import web\n",
        "app/cli/__init__.py": "",
        "app/cli/main.py": "from ..core.posts import codec\n",
        "app/peer/__init__.py": "",
        "scheduler/__init__.py": "",
        "scheduler/jobs.py": "from app.core.network import sync\n",
    }
    base.update(files)
    for name, text in base.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_clean_temporary_tree_passes(tmp_path: Path) -> None:
    assert check_tree(_tree(tmp_path, {})) == []


@pytest.mark.parametrize("files, expected", [
    ({"app/core/posts/codec.py": "from ..network import sync\n"},
     "app.core.posts.codec imports app.core.network.sync, a higher layer"),
    ({"app/core/identity/keys.py": "def late():\n    from ..posts import codec\n"},
     "app.core.identity.keys imports app.core.posts.codec, a higher layer"),
    ({"app/core/base/errors.py": "from typing import TYPE_CHECKING\n"
                                 "if TYPE_CHECKING:\n    from . import crypto\n",
      "app/core/base/crypto.py": "import nacl\nfrom .errors import *\n"},
     "import cycle: app.core.base.crypto <-> app.core.base.errors"),
    ({"app/cli/main.py": "from ..admin import views\n"},
     "app.cli.main imports app.admin.views, a sibling of its layer"),
    ({"app/peer/__init__.py": "from app.admin import views\n"},
     "app.peer imports app.admin.views, a sibling of its layer"),
    ({"scheduler/jobs.py": "from app.web import x\n"},
     "scheduler.jobs imports app.web, a higher layer"),
    ({"app/core/network/sync.py": "import nacl.public\n"},
     "imports nacl.public; only app.core.base.crypto may use nacl"),
    ({"app/core/posts/codec.py": "from flask import current_app\n"},
     "imports flask; the core and schemas have no web"),
    ({"app/schemas/__init__.py": "import werkzeug\n"},
     "imports werkzeug; the core and schemas have no web"),
])
def test_each_broken_rule_is_reported(tmp_path: Path, files: dict[str, str],
                                      expected: str) -> None:
    problems = check_tree(_tree(tmp_path, files))
    assert any(expected in p for p in problems), problems


def test_modules_stay_small() -> None:
    """STYLE.md: modules under about 400 lines (a little slack for docstrings)."""
    big = {str(p.relative_to(ROOT)): n for p in [*ROOT.glob("app/**/*.py"),
                                                   *ROOT.glob("scheduler/**/*.py")]
           if (n := len(p.read_text().splitlines())) > 420}
    assert big == {}
