"""The platforms the archive collects, each behind `base.Platform`.

`x`: the X API v2 (`x.py` the client, `x_stream.py` the streams, `x_fields.py` what is asked
for, `x_platform.py` what is read of the answers). Importing this package stays light: no
HTTP stack comes with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfm_archiver.platforms.base import Platform
from sfm_archiver.platforms.x_platform import X

if TYPE_CHECKING:
    from sfm_archiver.config import Config

PLATFORMS: dict[str, Platform] = {X.name: X}
DEFAULT_PLATFORM = X.name


def platform_named(name: str) -> Platform:
    return PLATFORMS[name]


def platform_of(collection: str) -> Platform:
    """The platform a collection collects (every collection is an X collection so far)."""
    return PLATFORMS[DEFAULT_PLATFORM]


def secrets_of(config: Config) -> list[str]:
    """Every secret value of a configuration: each platform's credentials and every other
    secret key's value (notification targets, ...), for scrubbing logs and WARC records."""
    found = [secret for platform in PLATFORMS.values() for secret in platform.secrets(config)]
    return list(dict.fromkeys(found + list(config.secrets)))
