"""The project's exception tree.

Every error the core raises is a :class:`DiwanError`. The web layer maps each
class to one HTTP status in one place (``app/web/errors.py``); the CLI prints
the message. The docstring of each class is what a user reads when it has no
message of its own, so it says what to do.

    DiwanError
    ├── BadInput (also ValueError)            400  the input is malformed
    │   ├── BadFingerprint                    400
    │   ├── BadName                           400
    │   ├── BadKeyDocument                    400  a .pub document does not verify
    │   ├── BadPost                           400  a post was rejected (see .reason)
    │   ├── BadRequestEnvelope                400  a feed request could not be opened
    │   └── CannotDecrypt                     400  ciphertext damaged or not for this key
    ├── TooLarge (also ValueError)            413
    ├── WrongPassword                         403
    ├── Forbidden                             403
    ├── NotFound                              404
    ├── Conflict                              409
    ├── Replay                                409  a feed request nonce was already used
    ├── RateLimited                           429
    ├── PeerError                             502  another node misbehaved or is unreachable
    │   └── LyingPeer                         502  it answered with a key that is not the one asked for
    └── CorruptFile                           500  a file on disk is not what it should be
"""

from __future__ import annotations


class DiwanError(Exception):
    """Something went wrong in Diwan."""

    status = 500
    code = "error"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or (self.__doc__ or self.code).strip().splitlines()[0]
        self.field = field
        super().__init__(self.message)


class BadInput(DiwanError, ValueError):
    """The input is malformed."""

    status = 400
    code = "bad_input"


class BadFingerprint(BadInput):
    """A fingerprint must be 64 lowercase hexadecimal characters."""

    code = "bad_fingerprint"


class BadName(BadInput):
    """A name must be 1-63 characters of a-z, 0-9, '-' or '_' and start with a letter or digit."""

    code = "bad_name"


class BadKeyDocument(BadInput):
    """The public key document does not verify."""

    code = "bad_key_document"


class BadPost(BadInput):
    """The post was rejected."""

    code = "bad_post"

    def __init__(self, message: str | None = None, *, reason: str = "invalid", **kw: object) -> None:
        self.reason = reason
        super().__init__(message, **kw)  # type: ignore[arg-type]


class BadRequestEnvelope(BadInput):
    """The encrypted request could not be opened."""

    code = "bad_request"


class CannotDecrypt(BadInput):
    """The ciphertext is damaged or was not made for this key."""

    code = "cannot_decrypt"


class TooLarge(DiwanError, ValueError):
    """The input is larger than this node accepts."""

    status = 413
    code = "too_large"


class WrongPassword(DiwanError):
    """The password is wrong."""

    status = 403
    code = "wrong_password"


class Forbidden(DiwanError):
    """This operation is not allowed."""

    status = 403
    code = "forbidden"


class NotFound(DiwanError):
    """No such thing here."""

    status = 404
    code = "not_found"


class Conflict(DiwanError):
    """This conflicts with what is already here."""

    status = 409
    code = "conflict"


class Replay(DiwanError):
    """This request was already seen or is outside the time window."""

    status = 409
    code = "replay"


class RateLimited(DiwanError):
    """Too many requests; try again later."""

    status = 429
    code = "rate_limited"


class PeerError(DiwanError):
    """Another node misbehaved or could not be reached."""

    status = 502
    code = "peer_error"


class LyingPeer(PeerError):
    """The other node answered with a key that does not match the fingerprint asked for."""

    code = "lying_peer"


class CorruptFile(DiwanError):
    """A file in the data directory is damaged."""

    status = 500
    code = "corrupt_file"
