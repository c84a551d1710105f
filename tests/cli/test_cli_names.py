"""Names people type (issue 11): every fingerprint argument of the CLI takes a unique hex
prefix of 8+ characters or a petname; ambiguous and unknown names are clear errors;
output shows names; --json works anywhere and errors are JSON with a per-class status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from app.cli import main
from app.cli.base import FingerprintType
from tests.helpers.datadirs import PASSWORD, snapshot
from tests.helpers.strangers import new_stranger


def run(data_dir: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *args], input=input,
                              catch_exceptions=False)


def ok(data_dir: Path, *args: str, input: str | None = None) -> str:
    result = run(data_dir, *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A node with one own identity (``me``) and two other keys (``basant``, ``camal``),
    basant named ``basant``, and a key file whose name shares basant's first 12 hex
    characters (so that prefix is ambiguous)."""
    root = tmp_path_factory.mktemp("names") / "node"
    ok(root, "init")
    me = json.loads(ok(root, "--json", "identity", "create", "--password-stdin",
                       input=PASSWORD + "\n"))["fingerprint"]
    others = []
    for _ in range(2):
        pub = root.parent / "k.pub"
        pub.write_bytes(new_stranger().document)
        others.append(ok(root, "identity", "import", str(pub)).strip())
    basant, camal = others
    ok(root, "contact", "name", basant, "basant")
    twin = basant[:12] + ("0" if basant[12] != "0" else "1") + basant[13:]
    (root / "identities" / f"{twin}.pub").write_bytes(b"")  # only its name matters here
    return {"root": root, "me": me, "basant": basant, "camal": camal, "twin": twin}


@pytest.fixture()
def node(template: dict[str, object], tmp_path: Path) -> dict[str, object]:
    root = tmp_path / "node"
    shutil.copytree(template["root"], root)  # type: ignore[arg-type]
    return {**template, "root": root}


def _fp_commands() -> list[tuple[list[str], click.Parameter]]:
    """Every (command path, parameter) of the CLI whose type is a fingerprint."""
    found = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        for param in cmd.params:
            if isinstance(param.type, FingerprintType):
                found.append((path, param))
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, [*path, name])

    walk(main, [])
    return found


FP_COMMANDS = _fp_commands()


def test_every_fingerprint_argument_is_a_name_argument() -> None:
    """The commands that take fingerprints all resolve names (a new one joins this list)."""
    names = {" ".join(path) for path, _ in FP_COMMANDS}
    assert {"block", "unblock", "identity show", "identity sign", "contact add",
            "contact name", "post", "message", "timeline", "profile show", "sync",
            "group add", "group remove"} <= names


def _args(path: list[str], param: click.Parameter, value: str, node: dict[str, object]
          ) -> list[str]:
    """A command line for ``path`` with ``value`` in ``param``; the other required
    arguments filled in with plausible values."""
    args = list(path)
    for p in main_command(path).params:
        if isinstance(p, click.Argument) and (p.required or p is param):
            if p is param:
                args.append(value)
            elif isinstance(p.type, FingerprintType):
                args.append(str(node["me"]))
            elif p.name in ("name",):
                args.append("friends")
            elif p.name in ("sha",):
                args.append("0" * 40)
            elif p.name == "address":
                args.append("http://127.0.0.1:9")
            else:
                args.append("x")
    if isinstance(param, click.Option):
        args += [param.opts[0], value]
    return args


def main_command(path: list[str]) -> click.Command:
    cmd: click.Command = main
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize(("path", "param"), FP_COMMANDS,
                         ids=[f"{' '.join(p)}:{q.name}" for p, q in FP_COMMANDS])
def test_prefix_and_petname_act_as_the_full_fingerprint(
        node: dict[str, object], tmp_path: Path, path: list[str],
        param: click.Parameter) -> None:
    basant = str(node["basant"])
    outcomes = []
    for value in (basant, basant[:16], "basant", "BaSaNt"):
        copy = tmp_path / f"copy-{len(outcomes)}"
        shutil.copytree(node["root"], copy)  # type: ignore[arg-type]
        result = run(copy, *_args(path, param, value, node), input="x\nx\nx\n")
        outcomes.append((result.exit_code, result.stderr.replace(str(copy), "<dir>")))
    assert outcomes[1:] == [outcomes[0]] * 3, outcomes
    assert "petname" not in outcomes[0][1] and "prefix" not in outcomes[0][1]


@pytest.mark.parametrize(("path", "param"), FP_COMMANDS,
                         ids=[f"{' '.join(p)}:{q.name}" for p, q in FP_COMMANDS])
def test_ambiguous_short_and_unknown_names_are_clear_errors(
        node: dict[str, object], path: list[str], param: click.Parameter) -> None:
    root, basant = node["root"], str(node["basant"])
    before = snapshot(root)  # type: ignore[arg-type]
    ambiguous = run(root, *_args(path, param, basant[:12], node), input="x\n")  # type: ignore[arg-type]
    assert ambiguous.exit_code == 2, ambiguous.output
    assert "ambiguous" in ambiguous.stderr and basant[:16] in ambiguous.stderr
    assert str(node["twin"])[:16] in ambiguous.stderr
    short = run(root, *_args(path, param, basant[:7], node), input="x\n")  # type: ignore[arg-type]
    assert short.exit_code == 2 and "at least 8" in short.stderr, short.output
    unknown = run(root, *_args(path, param, "nobody", node), input="x\n")  # type: ignore[arg-type]
    assert unknown.exit_code == 3 and "no petname or key" in unknown.stderr, unknown.output
    assert snapshot(root) == before  # type: ignore[arg-type]  # nothing written or touched


def test_petnames_are_private_unique_and_not_prefix_like(node: dict[str, object]) -> None:
    root, basant, camal = node["root"], str(node["basant"]), str(node["camal"])
    assert ok(root, "contact", "name", basant).strip() == "basant"  # type: ignore[arg-type]
    taken = run(root, "contact", "name", camal, "Basant")  # type: ignore[arg-type]
    assert taken.exit_code == 4 and "already names" in taken.stderr
    hexlike = run(root, "contact", "name", camal, "deadbeef")  # type: ignore[arg-type]
    assert hexlike.exit_code == 2 and "prefix" in hexlike.stderr
    assert run(root, "contact", "name", camal, "has space").exit_code == 2  # type: ignore[arg-type]
    ok(root, "contact", "name", "basant", "sister")  # type: ignore[arg-type]
    assert json.loads(ok(root, "--json", "contact", "name", basant))["petname"] == "sister"  # type: ignore[arg-type]
    ok(root, "contact", "name", "sister", "--clear")  # type: ignore[arg-type]
    assert "has no petname" in ok(root, "contact", "name", basant)  # type: ignore[arg-type]
    stored = json.loads((root / "state" / "petnames.json").read_text())  # type: ignore[operator]
    assert stored == {}
    assert oct((root / "state" / "petnames.json").stat().st_mode & 0o777) == "0o600"  # type: ignore[operator]


def test_output_shows_names_and_short_forms_that_are_accepted_back(
        node: dict[str, object]) -> None:
    root, me = node["root"], str(node["me"])
    ok(root, "contact", "name", me, "me")  # type: ignore[arg-type]
    ok(root, "post", "me", "hello", "--password-stdin", input=PASSWORD + "\n")  # type: ignore[arg-type]
    ok(root, "message", "me", "hi", "--to", "basant", "--password-stdin",  # type: ignore[arg-type]
       input=PASSWORD + "\n")
    timeline = ok(root, "timeline")  # type: ignore[arg-type]
    assert "  me  post  " in timeline and "to: basant" in timeline
    assert me not in timeline
    conversations = ok(root, "conversations")  # type: ignore[arg-type]
    assert "basant, me" in conversations or "me, basant" in conversations
    ok(root, "profile", "set", "me", "--name", "Ahmed", "--password-stdin",  # type: ignore[arg-type]
       input=PASSWORD + "\n")
    ok(root, "contact", "name", "me", "--clear")  # type: ignore[arg-type]
    assert "  Ahmed  post  " in ok(root, "timeline")  # type: ignore[arg-type]
    ok(root, "contact", "name", me, "--clear")  # type: ignore[arg-type]
    listed = ok(root, "identity", "list")  # type: ignore[arg-type]
    short = next(w for w in listed.split() if me.startswith(w) and len(w) >= 8)
    assert ok(root, "identity", "show", short)  # type: ignore[arg-type]


def test_json_anywhere_and_errors_as_json_with_a_status_per_class(
        node: dict[str, object]) -> None:
    root = node["root"]
    before = json.loads(ok(root, "--json", "identity", "list"))  # type: ignore[arg-type]
    assert json.loads(ok(root, "identity", "list", "--json")) == before  # type: ignore[arg-type]
    assert json.loads(ok(root, "identity", "--json", "list")) == before  # type: ignore[arg-type]
    cases = [
        (["identity", "show", "abc", "--json"], 2, "bad_input"),
        (["identity", "show", "nobody", "--json"], 3, "not_found"),
        (["block", str(node["me"]), "--json"], 4, "conflict"),
        (["identity", "sign", "me/0", "x", "--json"], 2, "bad_input"),
        (["group", "delete", "blocked", "--json"], 5, "forbidden"),
        (["--json", "no-such-command"], 2, "usage"),
    ]
    for args, code, name in cases:
        result = run(root, *args)  # type: ignore[arg-type]
        assert result.exit_code == code, (args, result.output)
        error = json.loads(result.stderr)["error"]
        assert error["exit"] == code and error["code"] == name and error["message"], error
        assert result.stdout == ""
    literal = run(root, "post", str(node["me"]), "--password-stdin", "--", "--json",  # type: ignore[arg-type]
                  input=PASSWORD + "\n")
    assert literal.exit_code == 0, literal.output
    assert "--json" in ok(root, "timeline")  # type: ignore[arg-type]
