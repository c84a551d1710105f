"""``diwan post|reply|message|reshare|profile set|edit|delete-post|reindex``: writing posts.

Every writing command checks what it can before asking for the password
(the identity is an own one, fingerprints and SHA-1s are well formed, the
replied-to or reshared post is here, media files exist and match their
declared type, attribute values validate), so a typo costs no Argon2id run
and writes nothing. The post is then signed and stored through the one
ingest path (:func:`app.core.posts.authoring.publish`). Human output is the SHA-1
alone (for ``sha=$(diwan post ...)``); ``--json`` prints the admin API's
``POST /posts`` answer.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import click

from ..core.base import names
from ..core.base.datadir import DataDir
from ..core.base.encoding import b64e
from ..core.base.errors import BadFingerprint, BadInput, NotFound, TooLarge
from ..core.base.fsio import remove_stale_temps
from ..core.identity.identities import Identities
from ..core.posts import records
from ..core.posts.attributes import KEY_RE, TYPES, Context, type_of, validate_attributes
from ..core.posts.authoring import Draft, compose, delete_own, deletion_record, publish
from ..core.posts.codec import check_created
from ..core.posts.codec import stored_view as view
from ..core.posts.index import Index
from ..core.posts.reconcile import count_post_files, open_index, rebuild
from ..core.posts.versions import annotate
from ..schemas import posts as s
from . import passwords
from .base import FP, Cli, main, pass_cli
from .passwords import password_options

F = Callable[..., Any]
STDIN = "-"


# --- reading the command's input -------------------------------------------------------

def fp_arg(value: str, what: str) -> str:
    """A fingerprint argument, or an error naming the argument it came from."""
    if not names.FINGERPRINT_RE.fullmatch(value):
        raise BadFingerprint(f"{what} {value[:70]!r} is not a fingerprint (64 lowercase "
                             "hexadecimal characters)", field=what)
    return value


def fp_args(values: Iterable[str], what: str) -> list[str]:
    return [fp_arg(v, what) for v in values]


def sha_arg(value: str, what: str = "SHA") -> str:
    if not names.SHA1_RE.fullmatch(value):
        raise BadInput(f"{what} {value[:70]!r} is not a post SHA-1 (40 lowercase "
                       "hexadecimal characters)", field=what)
    return value


def _read_capped(stream: BinaryIO, limit: int, what: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{what} is larger than max_post_bytes ({limit} bytes)", field=what)
    return data


def read_text(text: str | None, dd: DataDir, password_stdin: bool) -> str | None:
    """TEXT as given, or stdin for ``-`` (UTF-8; one trailing newline dropped)."""
    if text != STDIN:
        return None if text is None else passwords.utf8(text, "text").decode("utf-8")
    if password_stdin:
        raise BadInput("stdin cannot carry both the password and the text; use "
                       "--password-file or the prompt", field="text")
    data = _read_capped(sys.stdin.buffer, dd.settings["max_post_bytes"], "text")
    try:
        body = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the text on stdin is not UTF-8", field="text") from None
    return body.removesuffix("\n").removesuffix("\r")


def _split(spec: str, option: str, shape: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name:
        raise BadInput(f"{option} {spec[:60]!r} must look like {shape}", field=option)
    return name, value


def parse_attrs(specs: Iterable[str]) -> dict[str, Any]:
    """``NAME_TYPE=VALUE`` options as attributes: integers for TIME types, else strings."""
    attrs: dict[str, Any] = {}
    for spec in specs:
        key, value = _split(spec, "--attr", "NAME_TYPE=VALUE")
        if not KEY_RE.fullmatch(key):
            raise BadInput(f"--attr {key[:60]!r}: a name is upper-case letters and digits "
                           "in parts joined by '_' (like LINK_URL)", field="attr")
        attr_type = TYPES.get(type_of(key))
        if attr_type is not None and attr_type.value == "integer":
            try:
                value = int(value)  # type: ignore[assignment]
            except ValueError:
                raise BadInput(f"--attr {key}: a {attr_type.name} value is an integer",
                               field="attr") from None
        if key in attrs and attrs[key] != value:
            raise BadInput(f"--attr {key} is given twice with different values", field="attr")
        attrs[key] = value
    return attrs


def read_file(path_text: str, dd: DataDir, what: str) -> bytes:
    path = Path(path_text)
    if not path.is_file():
        raise BadInput(f"{what}: {path} is not a readable file", field=what)
    try:
        with path.open("rb") as f:
            return _read_capped(f, dd.settings["max_post_bytes"], what)
    except OSError as exc:
        raise BadInput(f"{what}: cannot read {path}: {exc.strerror}", field=what) from None


def read_media(specs: Iterable[str], dd: DataDir) -> list[tuple[str, bytes]]:
    """``NAME=PATH`` options as (NAME, bytes); NAME gets its type from the magic bytes."""
    out = []
    for spec in specs:
        name, path = _split(spec, "--media", "NAME=PATH")
        out.append((name, read_file(path, dd, f"--media {name}")))
    return out


def _created(unix: int | None) -> int | None:
    if unix is not None and unix < 0:
        raise BadInput("--time is unix seconds (0 or more)", field="time")
    return unix


# --- signing and storing -----------------------------------------------------------------

def precheck(dd: DataDir, author: str, draft: Draft) -> None:
    """What can fail without the key (besides the author: see ``_draft``), checked
    before the password is asked for: the same checks ingest makes, but the signature."""
    attrs = compose(dd, author, draft)
    settings = dd.settings
    validate_attributes(attrs, Context(max_url_length=settings["max_url_length"],
                                       max_depth=settings["max_reshare_depth"]))
    check_created(attrs)
    ahead = attrs["CREATED_TIME"] - int(time.time())
    if ahead > settings["max_time_skew"]:
        raise BadInput(f"CREATED_TIME is {ahead} s in the future; at most "
                       f"{settings['max_time_skew']} s is allowed", field="time")


def sign_and_store(cli: Cli, author: str, draft: Draft, password_file: Path | None,
                   password_stdin: bool) -> None:
    dd = cli.datadir()
    precheck(dd, author, draft)
    password = passwords.get_password(password_file, password_stdin, f"Password of {author}")
    result = publish(dd, author, password, draft)
    if not result.new and not cli.json:
        click.echo("note: this post was already stored", err=True)
    out = {"sha1": result.sha1, "new": result.new,
           "post": annotate(open_index(dd), cli.names().annotate(view(result.post)))}
    cli.emit(s.PostCreated().dump(out), result.sha1)


def post_options(func: F) -> F:
    """``--attr``, ``--media``, ``--time`` and the password options."""
    func = password_options(func)
    func = click.option("--time", "created", type=int, metavar="UNIX",
                        help="CREATED_TIME in unix seconds (default: now).")(func)
    func = click.option("--media", multiple=True, metavar="NAME=PATH",
                        help="Attach a file as NAME_<TYPE>, the type found from its magic "
                             "bytes (BIN if unknown); NAME_TYPE keeps the declared type. "
                             "Repeatable.")(func)
    return click.option("--attr", "attrs", multiple=True, metavar="NAME_TYPE=VALUE",
                        help="A raw attribute; TIME values are integers, the others "
                             "strings. Repeatable.")(func)


def _draft(cli: Cli, author: str, text: str | None, attrs: tuple[str, ...],
           media: tuple[str, ...], created: int | None, password_stdin: bool,
           **kw: Any) -> Draft:
    """The draft of the command's input; the author is checked first (an own identity)."""
    dd = cli.datadir()
    Identities(dd).private_key(fp_arg(author, "AS_FP"))  # NotFound / Forbidden if not own
    attributes = parse_attrs(attrs)
    if created is not None and "CREATED_TIME" in attributes:
        raise BadInput("give --time or --attr CREATED_TIME=..., not both", field="time")
    return Draft(attributes=attributes, text=read_text(text, dd, password_stdin),
                 media=read_media(media, dd), created=_created(created), **kw)


# --- commands ----------------------------------------------------------------------------

@main.command("post")
@click.argument("as_fp", metavar="AS_FP", type=FP)
@click.argument("text", required=False)
@click.option("--to", multiple=True, type=FP, metavar="FP",
              help="Address the post to this identity (repeatable): a private message.")
@post_options
@pass_cli
def post_(cli: Cli, as_fp: str, text: str | None, to: tuple[str, ...], attrs: tuple[str, ...],
          media: tuple[str, ...], created: int | None, password_file: Path | None,
          password_stdin: bool) -> None:
    """Sign and store a post by own identity AS_FP; prints its SHA-1.

    TEXT is the body (- reads it from stdin). Without --to the post is public.
    """
    draft = _draft(cli, as_fp, text, attrs, media, created, password_stdin,
                   to=fp_args(to, "--to"))
    if not (draft.text is not None or draft.attributes or draft.media):
        raise BadInput("give TEXT, --attr or --media: the post would be empty", field="text")
    sign_and_store(cli, as_fp, draft, password_file, password_stdin)


@main.command()
@click.argument("as_fp", metavar="AS_FP", type=FP)
@click.argument("sha")
@click.argument("text")
@post_options
@pass_cli
def reply(cli: Cli, as_fp: str, sha: str, text: str, attrs: tuple[str, ...],
          media: tuple[str, ...], created: int | None, password_file: Path | None,
          password_stdin: bool) -> None:
    """Comment on post SHA (addressed to its author); TEXT - reads stdin."""
    draft = _draft(cli, as_fp, text, attrs, media, created, password_stdin,
                   reply_to=sha_arg(sha))
    sign_and_store(cli, as_fp, draft, password_file, password_stdin)


@main.command()
@click.argument("as_fp", metavar="AS_FP", type=FP)
@click.argument("text")
@click.option("--to", multiple=True, type=FP, required=True, metavar="FP",
              help="A recipient (repeat for a group conversation).")
@post_options
@pass_cli
def message(cli: Cli, as_fp: str, text: str, to: tuple[str, ...], attrs: tuple[str, ...],
            media: tuple[str, ...], created: int | None, password_file: Path | None,
            password_stdin: bool) -> None:
    """Send a private message (several --to: a group conversation); TEXT - reads stdin."""
    draft = _draft(cli, as_fp, text, attrs, media, created, password_stdin,
                   to=fp_args(to, "--to"))
    sign_and_store(cli, as_fp, draft, password_file, password_stdin)


@main.command()
@click.argument("as_fp", metavar="AS_FP", type=FP)
@click.argument("sha")
@click.argument("text", required=False)
@click.option("--to", multiple=True, type=FP, metavar="FP",
              help="Address the reshare (repeatable).")
@post_options
@pass_cli
def reshare(cli: Cli, as_fp: str, sha: str, text: str | None, to: tuple[str, ...],
            attrs: tuple[str, ...], media: tuple[str, ...], created: int | None,
            password_file: Path | None, password_stdin: bool) -> None:
    """Reshare stored post SHA, with optional commentary TEXT (- reads stdin)."""
    draft = _draft(cli, as_fp, text, attrs, media, created, password_stdin,
                   reshare=sha_arg(sha), to=fp_args(to, "--to"))
    sign_and_store(cli, as_fp, draft, password_file, password_stdin)


@main.group()
def profile() -> None:
    """Publish a profile (set) or read an identity's current one (show)."""


@profile.command("set")
@click.argument("as_fp", metavar="AS_FP", type=FP)
@click.option("--name", help="The name shown (PROFILENAME).")
@click.option("--birthdate", metavar="YYYY-MM-DD", help="Date of birth (BIRTHDATE).")
@click.option("--workplace", help="Workplace (WORKPLACE).")
@click.option("--phone", help="Phone number (PHONE).")
@click.option("--email", help="E-mail address (EMAIL).")
@click.option("--picture", metavar="PATH", help="A JPG, PNG, GIF or WEBP (PROFILEPICTURE).")
@click.option("--to", multiple=True, type=FP, metavar="FP",
              help="Show this profile only to these identities (repeatable); "
                   "without --to it is the public profile.")
@post_options
@pass_cli
def profile_set(cli: Cli, as_fp: str, name: str | None, birthdate: str | None,
                workplace: str | None, phone: str | None, email: str | None,
                picture: str | None, to: tuple[str, ...], attrs: tuple[str, ...],
                media: tuple[str, ...], created: int | None, password_file: Path | None,
                password_stdin: bool) -> None:
    """Publish a profile of own identity AS_FP (the newest one visible to a viewer counts)."""
    fields = {k: v for k, v in (("name", name), ("birthdate", birthdate),
                                ("workplace", workplace), ("phone", phone),
                                ("email", email)) if v is not None}
    draft = _draft(cli, as_fp, None, attrs, media, created, password_stdin, profile=fields,
                   to=fp_args(to, "--to"))
    if picture is not None:
        draft.attributes["PROFILEPICTURE"] = b64e(read_file(picture, cli.datadir(),
                                                            "--picture"))
    if not fields and "PROFILEPICTURE" not in draft.attributes:
        raise BadInput("give at least one profile field (--name, --birthdate, --workplace, "
                       "--phone, --email, --picture)", field="profile")
    sign_and_store(cli, as_fp, draft, password_file, password_stdin)


@main.command("delete-post")
@click.argument("sha")
@password_options
@pass_cli
def delete_post(cli: Cli, sha: str, password_file: Path | None, password_stdin: bool) -> None:
    """Delete post SHA. An own post, with every version of it, is deleted everywhere it
    went: its password signs a deletion record served to its audience. Someone else's
    post is removed from this node and never stored here again (others keep theirs)."""
    dd = cli.datadir()
    index = open_index(dd)
    entry = index.get(sha_arg(sha))
    if entry is None:
        raise NotFound(f"no post {sha} on this node", field="sha")
    if not Identities(dd).is_own(entry.author):
        records.forget(dd, index, entry.author, entry.sha1)
        cli.emit({"ok": True, "changed": True, "sha1": entry.sha1}, f"deleted {entry.sha1}")
        return
    deletion_record(dd, entry.author, entry.sha1)  # every check before the password
    password = passwords.get_password(password_file, password_stdin,
                                      f"Password of {entry.author}")
    result = delete_own(dd, entry.author, entry.sha1, password=password)
    cli.emit({"ok": True, "changed": True, "sha1": entry.sha1, "record": result.sha1,
              "deleted": list(result.post.deletes)},
             f"deleted {entry.sha1} (deletion record {result.sha1})")


@main.command()
@click.argument("sha")
@click.argument("text", required=False)
@post_options
@pass_cli
def edit(cli: Cli, sha: str, text: str | None, attrs: tuple[str, ...], media: tuple[str, ...],
         created: int | None, password_file: Path | None, password_stdin: bool) -> None:
    """Publish a new version of own post SHA (TEXT - reads stdin); it keeps the post's
    addressing, and followers show it as edited with the earlier text one step away."""
    entry = open_index(cli.datadir()).get(sha_arg(sha))
    if entry is None:
        raise NotFound(f"no post {sha} on this node", field="sha")
    draft = _draft(cli, entry.author, text, attrs, media, created, password_stdin,
                   edit=entry.sha1)
    if not (draft.text is not None or draft.attributes or draft.media):
        raise BadInput("give TEXT, --attr or --media: the new version would be empty",
                       field="text")
    sign_and_store(cli, entry.author, draft, password_file, password_stdin)


@main.command()
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Processes verifying the files (default: one per CPU).")
@pass_cli
def reindex(cli: Cli, workers: int | None) -> None:
    """Rebuild the post index from the post files (each verified again, on all CPUs).

    First removes the temporary files a crashed writer left (older than temp_max_age).
    Shows progress on stderr.
    """
    dd = cli.datadir()
    removed = remove_stale_temps(dd.root, dd.settings["temp_max_age"])
    total = count_post_files(dd)
    if workers is None:  # a process pool only pays for itself over many files
        workers = min(os.cpu_count() or 1, max(1, total // 500))
    with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
        count = rebuild(Index(dd), workers=workers,
                        progress=bar.update)
    cli.emit({"indexed": count, "removed_temps": len(removed)},
             f"indexed {count} posts" + (f", removed {len(removed)} stale temporary files"
                                         if removed else ""))
