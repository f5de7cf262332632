"""The platforms the archive collects, each behind `base.Platform`.

`x`: the X API v2 (`x.py` the client, `x_stream.py` the streams, `x_fields.py` what is asked
for, `x_platform.py` what is read of the answers). `bluesky`: the AppView's XRPC (`bluesky.py`
the client, `bluesky_session.py` its optional login, `bluesky_platform.py` what is read of the
answers, `bluesky_jetstream.py` Jetstream's events). `paced.py`: the pacing and
retry loop every client's calls go through. Importing this package stays light: no
HTTP stack comes with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfm_archiver.errors import NotBuiltError
from sfm_archiver.platforms.base import Platform
from sfm_archiver.platforms.bluesky_platform import BLUESKY
from sfm_archiver.platforms.x_platform import X

if TYPE_CHECKING:
    from sfm_archiver.config import Collection, Config

PLATFORMS: dict[str, Platform] = {X.name: X, BLUESKY.name: BLUESKY}
DEFAULT_PLATFORM = X.name


def platform_named(name: str) -> Platform:
    return PLATFORMS[name]


def platform_of(collection: Collection | str, config: Config | None = None) -> Platform:
    """The platform a collection collects: its `platform` (a collection's name is looked up in
    `config`; a name without a configuration, or not in it, is an X collection: captures made
    before `collections[].platform` existed are all X)."""
    if isinstance(collection, str):
        known = {c.name: c for c in config.collections} if config is not None else {}
        name = known[collection].platform if collection in known else DEFAULT_PLATFORM
    else:
        name = collection.platform
    try:
        return PLATFORMS[name]
    except KeyError:
        raise NotBuiltError(f"platform {name!r} is not available in this version of sfm-archiver") from None


def secrets_of(config: Config) -> list[str]:
    """Every secret value of a configuration: each platform's credentials and every other
    secret key's value (notification targets, ...), for scrubbing logs and WARC records."""
    found = [secret for platform in PLATFORMS.values() for secret in platform.secrets(config)]
    return list(dict.fromkeys(found + list(config.secrets)))
