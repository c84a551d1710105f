"""Admin routes for posts: publish, import, timeline, read, raw, media, replies, delete."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from ..core.base.datadir import DataDir
from ..core.base.errors import BadInput, Gone, NotFound
from ..core.identity.identities import Identities
from ..core.posts import attributes as attr_types
from ..core.posts import codec as posts
from ..core.posts import records
from ..core.posts.authoring import Draft, delete_own, find_post, publish
from ..core.posts.codec import stored_view
from ..core.posts.ingest import Ingestor
from ..core.posts.reconcile import open_index
from ..core.posts.timeline import Timeline
from ..core.posts.versions import annotate
from ..schemas import posts as s
from ..web.api import Blueprint, load_json
from .names import named_view

blp = Blueprint("posts", __name__, url_prefix="/posts",
                description="Signed posts: publish, read, timeline, threads")


def dd() -> DataDir:
    return current_app.config["DIWAN"]


def _decode(raw: bytes) -> posts.Post:
    return posts.decode_post(raw, max_bytes=dd().settings["max_post_bytes"])


def _view(post: posts.Post) -> dict[str, Any]:
    """The API view of a stored post: names, versions, deleted reshared posts."""
    return annotate(open_index(dd()), named_view(stored_view(post)))


def _json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object (an empty one if ``optional`` and there is no body)."""
    if optional and not request.get_data():
        return {}
    body = request.get_json() if request.is_json else None
    if not isinstance(body, dict):
        raise BadInput("send a JSON object", field="json")
    return body


def _multipart_body() -> dict[str, Any]:
    """The form fields of a multipart post as the JSON body would hold them."""
    form = request.form
    body: dict[str, Any] = {k: form[k] for k in form if k not in ("to", "attributes", "profile")}
    if "to" in form:
        body["to"] = [fp for v in form.getlist("to") for fp in v.split(",") if fp]
    for key in ("attributes", "profile"):
        if key in form:
            body[key] = load_json(form[key], field=key)
    return body


def _uploads() -> list[tuple[str, bytes]]:
    limit = dd().settings["max_post_bytes"]
    out = []
    for name, storage in request.files.items(multi=True):
        data = storage.read(limit + 1)
        if len(data) > limit:
            raise BadInput(f"{name} is larger than max_post_bytes", field=name)
        out.append((name, data))
    return out


@blp.route("")
class PostCollection(MethodView):
    @blp.arguments(s.TimelineArgs, location="query")
    @blp.response(200, s.PostPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The timeline: newest first across non-blocked feeds, with filters and a cursor."""
        tl = Timeline(dd())
        page = tl.page(authors=args.get("author"), group=args.get("group"),
                       kinds=args.get("kind"), limit=args.get("limit"), cursor=args.get("cursor"))
        items = [p for p in (tl.read(e) for e in page.items) if p is not None]
        return {"posts": [_view(p) for p in items],
                "next_cursor": page.next_cursor}

    @blp.doc(requestBody={"content": {
        "application/json": {"schema": s.CreatePost},
        "multipart/form-data": {"schema": {"type": "object", "description":
            "the same fields as form fields (to may repeat; attributes and profile as JSON "
            "text); each file part becomes a media attribute <PART NAME>_<TYPE>"}}}})
    @blp.response(201, s.PostCreated)
    def post(self) -> tuple[dict[str, Any], int]:
        """Sign and store a post from an own identity (JSON, or multipart with media files)."""
        if request.mimetype == "multipart/form-data":
            body, uploads = s.CreatePost().load(_multipart_body()), _uploads()
        else:
            body, uploads = s.CreatePost().load(_json_body()), []
        draft = Draft(attributes=body["attributes"], text=body.get("text"),
                      reply_to=body.get("reply_to"), to=body["to"], reshare=body.get("reshare"),
                      profile=body.get("profile") or {}, media=uploads,
                      created=body.get("created_time"))
        result = publish(dd(), body["fingerprint"], body["password"], draft)
        return {"sha1": result.sha1, "new": result.new, "post": _view(result.post)}, 201


@blp.route("/import", methods=["POST"])
@blp.arguments(s.ImportPost)
@blp.response(201, s.PostCreated)
def import_post(body: dict[str, Any]) -> dict[str, Any]:
    """Store a whole post file made elsewhere (verified exactly as a synced post)."""
    try:
        raw = body["post"].encode("ascii")
    except UnicodeEncodeError:
        raise BadInput("a post file is ASCII", field="post") from None
    result = Ingestor(dd()).ingest(raw)
    return {"sha1": result.sha1, "new": result.new, "post": _view(result.post)}


@blp.route("/<sha>")
class PostItem(MethodView):
    @blp.arguments(s.ShaPath, location="view_args")
    @blp.response(200, s.PostOut)
    @blp.alt_response(410, description="the post was deleted by its author")
    def get(self, path: dict[str, str], sha: str) -> dict[str, Any]:
        """One decoded post: attributes, author, kind, nested reshare, media kinds, and its
        versions if it was edited."""
        index = open_index(dd())
        if index.get(path["sha"]) is None and records.deleted_by_author(index, path["sha"]):
            raise Gone(f"post {path['sha']} was deleted by its author", field="sha")
        return _view(_decode(find_post(dd(), path["sha"])))

    @blp.arguments(s.ShaPath, location="view_args")
    @blp.response(200, s.PostDeleted)
    @blp.alt_response(204, description="someone else's post, removed from this node only")
    def delete(self, path: dict[str, str], sha: str) -> Any:
        """Delete a post. An own post (and every version of it) is deleted everywhere it
        went: the password signs a deletion record served to its audience. Someone else's
        post is removed from this node and never stored here again (no sync brings it
        back); others keep their copies."""
        body = s.DeletePost().load(_json_body(optional=True))
        index = open_index(dd())
        entry = index.get(path["sha"])
        if entry is None:
            raise NotFound(f"no post {path['sha']} on this node", field="sha")
        if Identities(dd()).is_own(entry.author):
            result = delete_own(dd(), entry.author, entry.sha1, password=body.get("password"))
            return {"sha1": entry.sha1, "record": result.sha1,
                    "deleted": list(result.post.deletes)}
        records.forget(dd(), index, entry.author, entry.sha1)
        return Response(status=204)


@blp.route("/<sha>/edit", methods=["POST"])
@blp.arguments(s.ShaPath, location="view_args")
@blp.arguments(s.EditPost)
@blp.response(201, s.PostCreated)
def edit(path: dict[str, str], body: dict[str, Any], sha: str) -> tuple[dict[str, Any], int]:
    """Publish a new version of an own post: it keeps the post's addressing and supersedes
    its newest version; followers keep the old text and show the new one as edited."""
    entry = open_index(dd()).get(path["sha"])
    if entry is None:
        raise NotFound(f"no post {path['sha']} on this node", field="sha")
    draft = Draft(attributes=body["attributes"], text=body.get("text"),
                  created=body.get("created_time"), edit=entry.sha1)
    result = publish(dd(), entry.author, body["password"], draft)
    return {"sha1": result.sha1, "new": result.new, "post": _view(result.post)}, 201


@blp.route("/<sha>/raw")
@blp.arguments(s.ShaPath, location="view_args")
@blp.response(200, content_type="application/octet-stream")
def raw(path: dict[str, str], sha: str) -> Response:
    """The exact post file."""
    return Response(find_post(dd(), path["sha"]), mimetype="application/octet-stream")


@blp.route("/<sha>/media/<attribute>")
@blp.arguments(s.MediaPath, location="view_args")
@blp.response(200, content_type="application/octet-stream")
def media(path: dict[str, str], sha: str, attribute: str) -> Response:
    """The bytes of one media attribute with its Content-Type."""
    post = _decode(find_post(dd(), path["sha"]))
    key = path["attribute"]
    if key not in post.attributes:
        raise NotFound(f"the post has no attribute {key}", field="attribute")
    data = attr_types.media_bytes(key, post.attributes[key])
    response = Response(data, mimetype=attr_types.content_type(key, data))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


@blp.route("/<sha>/replies")
@blp.arguments(s.ShaPath, location="view_args")
@blp.response(200)
def replies(path: dict[str, str], sha: str) -> dict[str, Any]:
    """The thread under a post, nested without limit: the replies to every version of an
    edited post hang under the newest (``root``); ``root_deleted`` is true when its author
    deleted it (the replies of others stay)."""
    tl = Timeline(dd())
    thread = tl.replies(path["sha"])
    items = []
    for node in thread.walk():  # flat, depth first: no recursion limit on deep threads
        post = tl.read(node.entry)
        if post is not None:
            items.append({"parent": node.parent, "depth": node.depth, "post": _view(post)})
    return {"root": thread.root, "versions": thread.versions,
            "root_deleted": thread.deleted, "replies": items}
