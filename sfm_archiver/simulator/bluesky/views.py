"""The app.bsky view objects AppView answers with: ProfileViewBasic/Detailed, PostView, FeedViewPost.

Views are built at answer time, so a rename shows in every feed that carries the account.
"""

from __future__ import annotations

from typing import Any

from sfm_archiver.simulator.bluesky.ids import cid_of
from sfm_archiver.simulator.bluesky.records import embed_view
from sfm_archiver.simulator.bluesky.world import Account, Author, Item, Post

_VIEWER = {"muted": False, "blockedBy": False}


def profile_basic(author: Author) -> dict[str, Any]:
    return {"did": author.did, "handle": author.handle, "displayName": author.display_name,
            "avatar": _image("avatar", author), "associated": {"chat": {"allowIncoming": "following"}},
            "viewer": dict(_VIEWER), "labels": [], "createdAt": author.created_at}


def profile_detailed(account: Account) -> dict[str, Any]:
    seed = int(account.did[-6:], 36)  # stable made-up follower numbers
    return {"did": account.did, "handle": account.handle, "displayName": account.display_name,
            "avatar": _image("avatar", account), "banner": _image("banner", account),
            "description": account.description,
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False,
                           "chat": {"allowIncoming": "following"}},
            "followersCount": seed % 5000, "followsCount": seed % 700, "postsCount": account.posts_count(),
            "indexedAt": account.created_at, "createdAt": account.created_at,
            "viewer": dict(_VIEWER), "labels": []}


def post_view(post: Post) -> dict[str, Any]:
    replies, reposts, likes, quotes = post.counts
    view: dict[str, Any] = {"uri": post.uri, "cid": post.cid, "author": profile_basic(post.author), "record": post.record}
    embed = embed_view(post.record)
    if embed is not None:
        view["embed"] = embed
    view.update({"replyCount": replies, "repostCount": reposts, "likeCount": likes, "quoteCount": quotes,
                 "indexedAt": post.indexed_at, "viewer": {"threadMuted": False, "embeddingDisabled": False},
                 "labels": []})
    return view


def feed_view_post(item: Item, feed_owner: Account) -> dict[str, Any]:
    """A FeedViewPost: the post, its reply context, and for a repost the reason (`by` the feed's owner)."""
    view: dict[str, Any] = {"post": post_view(item.post)}
    if item.post.parent is not None:
        root = item.post.root or item.post.parent
        view["reply"] = {"root": post_view(root), "parent": post_view(item.post.parent)}
        if item.post.parent.parent is not None:
            view["reply"]["grandparentAuthor"] = profile_basic(item.post.parent.parent.author)
    if item.repost_uri is not None:
        view["reason"] = {"$type": "app.bsky.feed.defs#reasonRepost", "by": profile_basic(feed_owner),
                          "uri": item.repost_uri, "cid": cid_of(item.repost_uri.encode()), "indexedAt": item.repost_at}
    return view


def _image(kind: str, author: Author) -> str:
    return f"https://cdn.bsky.app/img/{kind}/plain/{author.did}/{cid_of(author.did.encode())}@jpeg"
