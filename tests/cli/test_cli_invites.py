"""``diwan invite``, ``diwan invites``, ``diwan contact add <invite>`` and ``diwan identity
export/import`` through click's CliRunner (exit statuses: 2 for a refused invite)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from click.testing import CliRunner, Result

from app.cli import main
from tests.helpers.datadirs import PASSWORD


def run(data_dir: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *args], input=input,
                              catch_exceptions=False)


def node(root: Path, port: int) -> tuple[Path, str]:
    assert run(root, "init").exit_code == 0
    toml = root / "diwan.toml"
    text = re.sub(r'(?m)^peer_host = .*$', 'peer_host = "127.0.0.1"', toml.read_text())
    toml.write_text(re.sub(r"(?m)^peer_port = .*$", f"peer_port = {port}", text))
    result = run(root, "identity", "create", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    return root, result.stdout.strip()


def test_invite_redeem_and_refuse(tmp_path: Path) -> None:
    ahmed, afp = node(tmp_path / "ahmed", 28889)
    basant, _ = node(tmp_path / "basant", 28890)
    png, svg = tmp_path / "invite.png", tmp_path / "invite.svg"
    made = run(ahmed, "invite", "--password-stdin", "--png", str(png), "--svg", str(svg),
               input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    text = next(line for line in made.stdout.splitlines() if line.startswith("diwan-invite:"))
    assert "▀" in made.stdout or "▄" in made.stdout            # the terminal QR code
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "<svg" in svg.read_text()
    listed = json.loads(run(ahmed, "--json", "invites").stdout)["invites"]
    assert [i["state"] for i in listed] == ["waiting"]

    i = len(text) // 2
    tampered = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
    refused = run(basant, "contact", "add", tampered)
    assert refused.exit_code == 2 and refused.stderr.startswith("error: the invite")
    assert run(basant, "contact", "add", text, "http://x:1").exit_code == 2

    added = run(basant, "contact", "add", text)
    assert added.exit_code == 0, added.output
    assert "from the invite (its one-time token is sent on the next sync)" in added.stdout
    contacts = json.loads(run(basant, "--json", "contact", "list").stdout)["contacts"]
    assert contacts[0]["fingerprint"] == afp
    assert contacts[0]["invite"]["state"] == "waiting"
    assert "waiting" in run(basant, "contact", "list").stdout


def test_export_and_import(tmp_path: Path) -> None:
    laptop, fp = node(tmp_path / "laptop", 28891)
    target = tmp_path / "ahmed.diwan-identity"
    assert run(laptop, "identity", "export", fp, str(target)).exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    server = tmp_path / "server"
    assert run(server, "init").exit_code == 0
    wrong = run(server, "identity", "import", str(target), "--password-stdin",
                input="a wrong password\n")
    assert wrong.exit_code == 5
    done = run(server, "--json", "identity", "import", str(target), "--password-stdin",
               input=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["fingerprint"] == fp and out["nodes"] == ["http://127.0.0.1:28891"]
    assert run(server, "identity", "import", str(target), "--password-stdin",
               input=PASSWORD + "\n").exit_code == 4
