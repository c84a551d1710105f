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
    │   ├── BadPost                           400  a post was rejected (.reason: a Reason code)
    │   ├── BadRequestEnvelope                400  a feed request could not be opened
    │   ├── CannotDecrypt                     400  ciphertext damaged or not for this key
    │   ├── NotAuthenticated                  400  the one answer to a feed request that fails
    │   ├── UnusableKey                       400  an X25519 public key of small order
    │   ├── BadJson                           400  not strict JSON (depth, unsafe number)
    │   ├── BadInvite                         400  an invite is damaged, changed or expired
    │   └── MessageTooLarge                   400  a Noise message over 65,535 bytes
    ├── TooLarge (also ValueError)            413
    ├── Unauthorized                          401  an admin request without the bearer token
    ├── WrongPassword                         403
    ├── RefusedOrigin                         403  an admin request not from a loopback page
    ├── Forbidden                             403
    ├── NotFound                              404
    │   └── Gone                              410  the post was deleted by its author
    ├── Conflict                              409
    │   ├── KeyConflict                       409  a certificate would downgrade a held one
    │   └── AlreadyRunning                    409  a node already runs in the data directory
    ├── WeakKeyFile                           409  a key file's Argon2id cost is below the floor
    ├── PortInUse                             409  a port the node needs is taken
    ├── Replay                                409  a feed request nonce was already used
    ├── RateLimited                           429
    ├── PeerError                             502  another node misbehaved or is unreachable
    │   ├── LyingPeer                         502  it served a wrong key in an exchange
    │   └── BadResponse                       502  its feed response is damaged or malformed
    ├── NoiseStateError                       500  a Noise handshake/session used out of order
    ├── StoreFull                             507  a key server holds as many keys as it will
    ├── DiskFull                              507  the data directory's file system is full
    ├── InsecureFile                          500  a secret is readable by others (refused)
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


class Reason:
    """Why a post was rejected: the ``reason`` of :class:`BadPost`, in checking order.

    The order and meaning of each code are normative (``docs/protocol.md``, Posts).
    """

    TOO_LARGE = "too_large"            # the file is over max_post_bytes
    MALFORMED = "malformed"            # not three dot-separated ASCII parts, or FP not 64 hex
    BAD_BASE64 = "bad_base64"          # P1 or SIG is not canonical unpadded base64url
    WRONG_AUTHOR = "wrong_author"      # FP is not the directory / author it came under
    UNKNOWN_AUTHOR = "unknown_author"  # no .pub for FP here and none could be fetched
    BAD_SIGNATURE = "bad_signature"    # SIG is not FP's signature of P1
    WRONG_NAME = "wrong_name"          # the file name is not the SHA-1 of the content
    BAD_JSON = "bad_json"              # P1 is not a UTF-8 JSON object without duplicate keys
    BAD_KEY = "bad_key"                # an attribute name does not match the key pattern
    NO_CREATED_TIME = "no_created_time"  # CREATED_TIME missing or not an integer >= 0
    FUTURE_TIME = "future_time"        # CREATED_TIME more than max_time_skew ahead
    BAD_ATTRIBUTE = "bad_attribute"    # a typed attribute's value is invalid
    BAD_MEDIA = "bad_media"            # media bytes do not match their declared format
    BAD_RESHARE = "bad_reshare"        # a reshared (_POST) post was rejected
    TOO_DEEP = "too_deep"              # reshares nest deeper than max_reshare_depth
    BLOCKED = "blocked"                # the author (or a reshared author) is blocked
    BAD_RECORD = "bad_record"          # a deletion or edit record is malformed or not the author's
    DELETED = "deleted"                # the SHA-1 was deleted here (by its author, or locally)


class BadPost(BadInput):
    """The post was rejected."""

    code = "bad_post"

    def __init__(self, message: str | None = None, *, reason: str = "invalid",
                 **kw: object) -> None:
        self.reason = reason
        super().__init__(message, **kw)  # type: ignore[arg-type]


class BadRequestEnvelope(BadInput):
    """The encrypted request could not be opened."""

    code = "bad_request"


class CannotDecrypt(BadInput):
    """The ciphertext is damaged or was not made for this key."""

    code = "cannot_decrypt"


class NotAuthenticated(BadInput):
    """The feed request could not be authenticated."""

    code = "not_authenticated"

    def __init__(self) -> None:  # one answer, always the same bytes: no message, no field
        super().__init__()


class UnusableKey(BadInput):
    """The public key is not a usable X25519 key (wrong length, or small order)."""

    code = "unusable_key"


class BadJson(BadInput):
    """The JSON text is malformed, too deeply nested, or holds a number outside the safe range."""

    code = "bad_json"


class BadInvite(BadInput):
    """The invite cannot be used; ask your friend for a new one."""

    code = "bad_invite"


class MessageTooLarge(BadInput):
    """A Noise message may hold at most 65,535 bytes (payload, keys and tags included)."""

    code = "message_too_large"


class TooLarge(DiwanError, ValueError):
    """The input is larger than this node accepts."""

    status = 413
    code = "too_large"


class Unauthorized(DiwanError):
    """Send the token from <data dir>/admin.token as 'Authorization: Bearer <token>'.

    Raised by the admin API's access check (``app/web/guard.py``) for a request without
    the right bearer token (``docs/protocol.md``, Admin API access).
    """

    status = 401
    code = "unauthorized"


class RefusedOrigin(DiwanError):
    """The admin API answers only loopback, same-origin requests.

    Raised by the admin API's access check (``app/web/guard.py``) for a ``Host`` that is
    not the loopback (DNS rebinding) or a cross-site ``Origin`` / ``Sec-Fetch-Site``
    (CSRF); ``docs/protocol.md``, Admin API access.
    """

    status = 403
    code = "refused_origin"


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


class Gone(NotFound):
    """The post was deleted by its author."""

    status = 410
    code = "deleted"


class Conflict(DiwanError):
    """This conflicts with what is already here."""

    status = 409
    code = "conflict"


class KeyConflict(Conflict):
    """A device certificate does not replace the one held: a lower serial, or the same
    serial with another key (protocol.md, "Rotation"). The held key document stays."""

    code = "key_conflict"


class WeakKeyFile(DiwanError):
    """The private key file's Argon2id parameters are below the floor; it is not opened."""

    status = 409
    code = "weak_key_file"


class AlreadyRunning(Conflict):
    """A node already runs in this data directory; stop it first (diwan stop)."""

    code = "already_running"


class PortInUse(DiwanError):
    """A port the node needs is in use; change the setting named in the message."""

    status = 409
    code = "port_in_use"


class Replay(DiwanError):
    """This request was already seen or is outside the time window."""

    status = 409
    code = "replay"


class RateLimited(DiwanError):
    """Too many requests; try again later."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str | None = None, *, field: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after  # seconds, sent as Retry-After


class PeerError(DiwanError):
    """Another node misbehaved or could not be reached."""

    status = 502
    code = "peer_error"


class LyingPeer(PeerError):
    """The other node served a wrong key inside an authenticated exchange (or is recorded so)."""

    code = "lying_peer"


class BadResponse(PeerError):
    """The other node's feed response could not be opened or is malformed."""

    code = "bad_response"


class NoiseStateError(DiwanError):
    """A Noise handshake or session was used out of order, after a failure or past its nonces."""

    status = 500
    code = "noise_state"


class StoreFull(DiwanError):
    """This key server holds as many keys as it is configured to; it accepts no new ones."""

    status = 507
    code = "store_full"


class DiskFull(DiwanError):
    """The data directory's file system is full; free some space (reads still work)."""

    status = 507
    code = "disk_full"


class InsecureFile(DiwanError):
    """A secret file or directory is open to other users; the node refuses to use it."""

    status = 500
    code = "insecure_file"


class CorruptFile(DiwanError):
    """A file in the data directory is damaged."""

    status = 500
    code = "corrupt_file"
