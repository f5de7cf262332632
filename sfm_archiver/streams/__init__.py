"""Stream capture, one module per concern.

- `supervisor`: the daemon's stream collections (one connection per stream kind, reloads).
- `connection`: one HTTP stream: framing, keep-alives, routing each message to its collections.
- `routes`: the tag format of filter rules (`<archive>:<n>`), written and read here only.
- `rules`: keeping the server's filter rules equal to the configuration.
- `sink`: per-collection capture files, counts, and `_unrouted` for messages no collection takes.
- `gaps`: what the recorded connection events say (disconnected time, what `status` shows).
"""
