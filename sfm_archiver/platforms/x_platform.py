"""X as a `Platform`: what the archive reads of X's answers, with no HTTP stack imported (the
export and fetch-urls use it on captures; `platforms/x.py` is the client)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Mapping

from sfm_archiver.config_redact import redact_url_credentials
from sfm_archiver.ratelimit import Quota, http_date

if TYPE_CHECKING:
    from sfm_archiver.config import Config


def quota_of(headers: Mapping[str, str]) -> Quota | None:
    """X's window of an endpoint, from the x-rate-limit-* headers (None when absent or broken)."""
    try:
        return Quota(int(headers["x-rate-limit-limit"]), int(headers["x-rate-limit-remaining"]),
                     float(headers["x-rate-limit-reset"]))
    except (KeyError, TypeError, ValueError):
        return None


class XPlatform:
    name = "x"

    def secrets(self, config: Config) -> list[str]:
        return [config.x.bearer_token] if config.x.bearer_token else []

    def summary(self, config: Config) -> str:
        token = "set" if config.x.bearer_token else "missing"
        return f"api     {redact_url_credentials(config.x.api_base_url)} (token {token})"

    def capture_meta(self) -> dict:
        return {}

    def rate_reading(self, headers: Mapping[str, str]) -> tuple[Quota | None, float | None]:
        return quota_of(headers), http_date(headers)

    def record_posts(self, record: dict) -> Iterator[dict]:
        """`data` (a page's list or a stream message's object) and `includes.tweets` (referenced
        and quoted posts)."""
        data = record.get("data")
        for post in data if isinstance(data, list) else [data]:
            if isinstance(post, dict):
                yield post
        includes = record.get("includes")
        if isinstance(includes, dict) and isinstance(includes.get("tweets"), list):
            yield from (post for post in includes["tweets"] if isinstance(post, dict))

    def page_newest(self, record: dict) -> str | None:
        meta = record.get("meta")
        newest = meta.get("newest_id") if isinstance(meta, dict) else None
        return newest if isinstance(newest, str) else None

    def post_id(self, post: dict) -> str | None:
        post_id = post.get("id")
        return None if post_id is None else str(post_id)

    def post_links(self, post: dict) -> Iterator[str]:
        """`expanded_url` (or the t.co `url` when X gave no expansion) and `unwound_url` of each
        URL entity, in the post and in its long-form `note_tweet`."""
        for holder in (post, post.get("note_tweet")):
            entities = holder.get("entities") if isinstance(holder, dict) else None
            urls = entities.get("urls") if isinstance(entities, dict) else None
            for entity in urls if isinstance(urls, list) else ():
                if not isinstance(entity, dict):
                    continue
                expanded = entity.get("expanded_url") or entity.get("url")
                for url in (expanded, entity.get("unwound_url")):
                    if isinstance(url, str) and url.strip():
                        yield url.strip()


    def open_client(self, config: Config, limiter=None, user_agent: str | None = None):
        from sfm_archiver.platforms.x import XClient  # tweepy and requests come only with a client

        return XClient(config.x, limiter=limiter, user_agent=user_agent)


X = XPlatform()
