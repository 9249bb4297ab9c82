"""swift-track as a backend of Python `track`: `TrackClient('swifttrack://runs/db')`.

Importing `swift_track` registers the scheme `swifttrack` with `track.persistence.register` when
`track` is importable. Every method of track's `Protocol` is here, with track's argument
conventions; each runs in-process on the engine (the same dispatcher as `track-server`, the same
JSON shapes as Python's `SocketClient` sends) and returns track's objects built with
`track.serialization.from_json`. Scalar metrics logged with an integer step go through the
engine's metric handles (`swift_track.Metric`), not through JSON.

`track.persistence.get_protocol` wraps every backend but `file:` in a multiplexer that keeps an
in-memory `FileProtocol` mirror of everything (slow, and it prints `_NoLockLock` tracebacks);
`track_client(uri)` builds a `TrackClient` whose protocol is this backend alone.

`swifttrack://PATH` opens the `file://` database at PATH; `swifttrack://` followed by another
swift-track URI (`swifttrack://ephemeral://`, `swifttrack://pickled://x.pkl`) opens that one.
"""

import swift_track

SCHEME = "swifttrack"


def _serialization():
    from track.serialization import from_json, to_json
    return from_json, to_json


def _inner_uri(uri):
    rest = uri[len(SCHEME) + 3:] if uri.startswith(SCHEME + "://") else uri
    if "://" in rest:
        return rest
    return "file://" + rest


def _base():
    try:
        from track.persistence.protocol import Protocol
        return Protocol
    except ImportError:
        return object


class SwiftTrackProtocol(_base()):
    """track's `Protocol` over a swift-track database, in-process."""

    def __init__(self, uri, strict=True):
        self.uri = uri
        self.strict = strict
        self.db = swift_track.open(_inner_uri(uri))
        self._metrics = {}

    # Helpers

    def _call(self, rpc, **kwargs):
        return self.db.request(rpc, **kwargs)

    @staticmethod
    def _json(obj):
        if obj is None or isinstance(obj, (dict, str)):
            return obj
        return _serialization()[1](obj)

    @staticmethod
    def _obj(value):
        if value is None:
            return None
        return _serialization()[0](value)

    @staticmethod
    def _uid(obj):
        return obj if isinstance(obj, str) else obj.uid

    @staticmethod
    def _exc(value):
        return None if value is None else str(value)

    # Trials: logging

    def log_trial_start(self, trial):
        return self._obj(self._call("log_trial_start", trial=self._uid(trial)))

    def log_trial_finish(self, trial, exc_type, exc_val, exc_tb):
        self._call("log_trial_finish", trial=self._uid(trial), exc_type=self._exc(exc_type),
                   exc_val=self._exc(exc_val), exc_tb=None)

    def log_trial_chrono_start(self, trial, name, aggregator=None, start_callback=None, end_callback=None):
        self._call("log_trial_chrono_start", trial=self._uid(trial), name=name)

    def log_trial_chrono_finish(self, trial, name, exc_type, exc_val, exc_tb):
        self._call("log_trial_chrono_finish", trial=self._uid(trial), name=name, exc_type=self._exc(exc_type),
                   exc_val=self._exc(exc_val), exc_tb=None)

    def log_trial_arguments(self, trial, **kwargs):
        self._call("log_trial_arguments", trial=self._uid(trial), **kwargs)

    def log_trial_metadata(self, trial, aggregator=None, **kwargs):
        self._call("log_trial_metadata", trial=self._uid(trial), **kwargs)

    def log_trial_metrics(self, trial, step=None, aggregator=None, **kwargs):
        uid = self._uid(trial)
        if step.__class__ is int and len(kwargs) == 1:
            (name, value), = kwargs.items()
            if value.__class__ is float:
                metric = self._metrics.get((uid, name))
                if metric is None:
                    metric = self._metrics[(uid, name)] = self.db.metric(uid, name)
                metric.log(value, step)
                return
        self._call("log_trial_metrics", trial=uid, step=step, **kwargs)

    def add_trial_tags(self, trial, **kwargs):
        self._call("add_trial_tags", trial=self._uid(trial), **kwargs)

    def set_trial_status(self, trial, status, error=None):
        self._call("set_trial_status", trial=self._uid(trial), status=self._json(status), error=error)

    # Objects

    def new_project(self, project):
        return self._obj(self._call("new_project", project=self._json(project)))

    def get_project(self, project):
        return self._obj(self._call("get_project", project=self._json(project)))

    def fetch_projects(self, query):
        return [self._obj(p) for p in self._call("fetch_projects", query=query)]

    def new_trial_group(self, group):
        return self._obj(self._call("new_trial_group", group=self._json(group)))

    def get_trial_group(self, group):
        return self._obj(self._call("get_trial_group", group=self._json(group)))

    def fetch_groups(self, query):
        return [self._obj(g) for g in self._call("fetch_groups", query=query)]

    def set_group_metadata(self, group, **kwargs):
        self._call("set_group_metadata", group=self._uid(group), **kwargs)

    def fetch_and_update_group(self, query, attr, *args, **kwargs):
        return self._obj(self._call("fetch_and_update_group", query=query, attr=attr, **kwargs))

    def add_project_trial(self, project, trial):
        self._call("add_project_trial", project=self._json(project), trial=self._json(trial))

    def add_group_trial(self, group, trial):
        self._call("add_group_trial", group=self._json(group), trial=self._json(trial))

    def new_trial(self, trial, auto_increment=False):
        return self._obj(self._call("new_trial", trial=self._json(trial), auto_increment=auto_increment))

    def get_trial(self, trial):
        trials = self._call("get_trial", trial=self._json(trial))
        return None if trials is None else [self._obj(t) for t in trials]

    def fetch_trials(self, query):
        return [self._obj(t) for t in self._call("fetch_trials", query=query)]

    def fetch_and_update_trial(self, query, attr, *args, **kwargs):
        if "status" in kwargs:
            kwargs["status"] = self._json(kwargs["status"])
        return self._obj(self._call("fetch_and_update_trial", query=query, attr=attr, **kwargs))

    def commit(self, file_name_override=None, **kwargs):
        self.db.commit()

    def close(self):
        self.db.close()


def register():
    """Registers the `swifttrack` scheme with Python track, if track is importable. Returns
    whether it did."""
    try:
        from track.persistence import register as track_register
    except ImportError:
        return False
    track_register(SCHEME, SwiftTrackProtocol)
    return True


def track_client(uri):
    """A `TrackClient` whose protocol is this backend alone: no in-memory mirror. (Registers the
    scheme first, for a program that imported swift_track before track.)"""
    from track import TrackClient
    register()
    client = TrackClient(uri)
    proto = client.protocol
    if not isinstance(proto, SwiftTrackProtocol):
        client.protocol = _find(proto) or SwiftTrackProtocol(uri)
    return client


def _find(proto, depth=0):
    """The SwiftTrackProtocol a multiplexer holds."""
    if isinstance(proto, SwiftTrackProtocol):
        return proto
    if depth > 3:
        return None
    for value in vars(proto).values() if hasattr(proto, "__dict__") else ():
        for candidate in (value if isinstance(value, (list, tuple)) else [value]):
            if hasattr(candidate, "__dict__"):
                found = _find(candidate, depth + 1)
                if found is not None:
                    return found
    return None
