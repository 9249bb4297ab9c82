"""Stand-in for Python track's client (see README.md)."""
from track.persistence import get_protocol


class TrackClient:
    def __init__(self, backend="none"):
        self.protocol = get_protocol(backend)
