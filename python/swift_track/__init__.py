"""swift-track in-process, from Python: the engine's C ABI (include/swift_track.h) over ctypes.

    import swift_track
    db = swift_track.open("file://runs/db")
    run = db.project("vision").trial("mlp", parameters={"lr": 0.01})
    loss = run.metric("loss")
    with run.chrono("train"):
        for step in range(1000):
            loss.log(compute_loss(), step)
    run.set_status("Completed")
    db.commit()
    steps, values = run.series("loss")

`db.request(rpc, **kwargs)` runs any operation of track's protocol with track's argument names
and JSON shapes (as Python track's SocketClient sends them) and returns its result. The library
is found through SWIFT_TRACK_LIBRARY, else next to this package, else on the loader's path.
"""

import array
import atexit
import ctypes
import json
import math
import operator
import os
import threading
import weakref

ABI_VERSION = 2


class TrackError(Exception):
    """A failure reported by the engine, with its message."""


class NotFound(TrackError):
    """The project, group or trial named does not exist."""


def _load():
    candidates = []
    if os.environ.get("SWIFT_TRACK_LIBRARY"):
        candidates.append(os.environ["SWIFT_TRACK_LIBRARY"])
    candidates.append(os.path.join(os.path.dirname(__file__), "libTrackC.so"))
    candidates.append("libTrackC.so")
    errors = []
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    else:
        raise ImportError("swift_track cannot load its library (set SWIFT_TRACK_LIBRARY): " + "; ".join(errors))
    lib.st_abi_version.restype = ctypes.c_int32
    if lib.st_abi_version() != ABI_VERSION:
        raise ImportError("swift_track's library speaks ABI version %d, this package version %d: install matching versions"
                          % (lib.st_abi_version(), ABI_VERSION))
    p = ctypes.c_void_p
    lib.st_last_error.restype = ctypes.c_char_p
    lib.st_free.argtypes = [p]
    lib.st_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(p)]
    lib.st_close.argtypes = [p]
    lib.st_commit.argtypes = [p]
    lib.st_request.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(p)]
    lib.st_metric.argtypes = [p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(p)]
    lib.st_metric_free.argtypes = [p]
    lib.st_metric_log.argtypes = [p, ctypes.c_int64, ctypes.c_int32, ctypes.c_double]
    lib.st_metric_log_step.argtypes = [p, ctypes.c_int64, ctypes.c_double]
    lib.st_metric_log_many.argtypes = [p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)]
    lib.st_series_read.argtypes = [p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                   ctypes.POINTER(ctypes.c_int64)]
    for name in ("st_open", "st_close", "st_commit", "st_request", "st_metric", "st_metric_log", "st_metric_log_step",
                 "st_metric_log_many", "st_series_read"):
        getattr(lib, name).restype = ctypes.c_int32
    return lib


_lib = _load()


def _check(status):
    if status != 0:
        message = (_lib.st_last_error() or b"unknown error").decode("utf-8", "replace")
        raise (NotFound if status == 3 else TrackError)(message)


_open_databases = weakref.WeakSet()


def open(uri):
    """Opens the database a URI names (file://path or a bare path, ephemeral://, pickled://path)."""
    return Database(uri)


class Database:
    """An open database. Closed (committing) by close(), at exit, or when collected."""

    def __init__(self, uri):
        self._uri = uri
        self._pid = os.getpid()
        handle = ctypes.c_void_p()
        _check(_lib.st_open(uri.encode("utf-8"), ctypes.byref(handle)))
        self._handle = handle
        self._lock = threading.Lock()
        self._metrics = weakref.WeakSet()
        self.generation = 0  # bumped when a forked child reopens the database
        _open_databases.add(self)

    def request(self, rpc, **kwargs):
        """Runs one operation of track's protocol (`new_project`, `new_trial`, `fetch_trials`,
        `log_trial_metrics`, ...) with track's argument names; returns its result."""
        self._flush_metrics()
        message = dict(kwargs)
        message["__rpc__"] = rpc
        reply = ctypes.c_void_p()
        status = _lib.st_request(self._live(), json.dumps(message).encode("utf-8"), ctypes.byref(reply))
        text = ctypes.string_at(reply.value).decode("utf-8") if reply.value else None
        if reply.value:
            _lib.st_free(reply)
        _check(status)
        return json.loads(text, parse_constant=lambda c: {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[c])["return"]

    def project(self, name, description=None, metadata=None):
        """The project `name`, created when it does not exist (a Project)."""
        found = self.request("get_project", project=name)
        if found is None:
            found = self.request("new_project", project={"dtype": "project", "uid": name, "name": name, "description": description,
                                                         "metadata": metadata or {}, "trials": [], "groups": []})
        return Project(self, found)

    def metric(self, trial_uid, name):
        """The series `name` of a trial, for logging points fast."""
        handle = ctypes.c_void_p()
        _check(_lib.st_metric(self._live(), trial_uid.encode("utf-8"), name.encode("utf-8"), ctypes.byref(handle)))
        metric = Metric(self, handle, trial_uid, name)
        self._metrics.add(metric)
        return metric

    def series(self, trial_uid, name):
        """A metric of a trial as (steps, values): numpy int64 and float64 arrays when numpy is
        installed, array.array otherwise, in track's order (a step-keyed metric: one point per
        step, in the order steps first came; a list: every point). A point without an integer
        step has step -2**63; a value that is not a number is NaN."""
        self._flush_metrics()
        uid, key = trial_uid.encode("utf-8"), name.encode("utf-8")
        count = ctypes.c_int64()
        _check(_lib.st_series_read(self._live(), uid, key, None, None, 0, ctypes.byref(count)))
        while True:
            n = count.value
            try:
                import numpy
                steps, values = numpy.empty(n, dtype=numpy.int64), numpy.empty(n, dtype=numpy.float64)
                step_pointer, value_pointer = steps.ctypes.data, values.ctypes.data
            except ImportError:
                steps, values = array.array("q", bytes(8 * n)), array.array("d", bytes(8 * n))
                step_pointer, value_pointer = steps.buffer_info()[0], values.buffer_info()[0]
            _check(_lib.st_series_read(self._live(), uid, key, step_pointer, value_pointer, n, ctypes.byref(count)))
            if count.value <= n:  # points logged meanwhile by another thread: read again
                return steps[:count.value], values[:count.value]

    def commit(self):
        """Returns once everything logged is durable (this thread's metrics' buffered points
        included)."""
        self._flush_metrics()
        _check(_lib.st_commit(self._live()))

    def close(self):
        """Commits and closes; later calls raise. Buffered points of every metric are sent first."""
        if self._handle is not None and self._pid != os.getpid():
            if self.generation == 0 and not any(m._steps for m in self._metrics):
                self._handle = None  # a forked child that never used the database: nothing to close
                return
        self._flush_metrics(every_thread=True)
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            _check(_lib.st_close(handle))

    def _flush_metrics(self, every_thread=False):
        """Sends the points the calling thread's metrics buffer (a metric's buffer belongs to the
        thread that logs into it; `every_thread` at close, when the loop is over)."""
        me = threading.get_ident()
        for metric in list(self._metrics):
            if metric._steps and (every_thread or metric._thread == me):
                metric.flush()

    def _live(self):
        handle = self._handle
        if handle is None:
            raise TrackError("the database is closed")
        if self._pid != os.getpid():
            handle = self._reopen_after_fork()
        return handle

    def _reopen_after_fork(self):
        """In a forked child: the handle is the parent's (its stream, its lock, its flusher
        thread, which the child does not have). The child never writes through it: it opens the
        database again, getting a stream of its own, and its metrics find their series again."""
        with self._lock:
            if self._pid != os.getpid():
                handle = ctypes.c_void_p()
                _check(_lib.st_open(self._uri.encode("utf-8"), ctypes.byref(handle)))
                self._handle = handle  # the parent's handle is left alone: closing it would commit into the parent's stream
                self._pid = os.getpid()
                self.generation += 1
                _commit_at_exit_of_a_multiprocessing_child()
            return self._handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Metric:
    """One series of one trial, for the fast path. `log` buffers points (integer steps) and
    sends up to BUFFER_POINTS of them in one C call; the first point goes at once, so that a
    trial that does not exist fails there. Buffered points are sent by `flush()`, and before any
    other call on the database from the same thread (`commit`, `request`, `close`) and at exit,
    so they keep their order with everything else that thread logs. A metric belongs to the thread
    that logs into it."""

    BUFFER_POINTS = 4096
    _RESERVED_STEP = -(2 ** 63)

    def __init__(self, database, handle, trial_uid, name):
        self._database = database  # keeps the database open while the series is used
        self._handle = handle
        self._generation = database.generation
        self._trial_uid = trial_uid
        self._name = name
        self._steps = array.array("q")
        self._values = array.array("d")
        self._limit = 1  # the first point goes at once
        self._thread = threading.get_ident()

    def log(self, value, step=None):
        """Logs one point at `step` (an int; None: without a step; a float or a string as Python
        track takes them, through the slower general path)."""
        if step is None or step.__class__ is not int:
            self._log_other(value, step)
            return
        if step == self._RESERVED_STEP:
            raise TrackError("step -9223372036854775808 (-2^63) is reserved for points without a step; use a step from -2^63+1 to 2^63-1, or no step")
        steps = self._steps
        try:
            steps.append(step)
        except OverflowError:
            raise TrackError("step %d is outside the 64-bit range of steps" % step) from None
        try:
            self._values.append(value)
        except TypeError:
            steps.pop()
            raise TypeError("a metric value must be a number, got %r; log other values with "
                            "db.request('log_trial_metrics', ...)" % (value,)) from None
        if len(steps) >= self._limit:
            self.flush()

    def _log_other(self, value, step):
        """A point without a step (one C call), at an integer step of another type (numpy's int64,
        an int subclass: the fast path as an int), or at a float or string step (track's JSON path)."""
        if step is not None and not isinstance(step, (bool, float, str)):
            try:
                integer = operator.index(step)
            except TypeError:
                raise TypeError("a metric step must be an int, a float, a string or None, got %r" % (step,)) from None
            self.log(value, integer)
            return
        if isinstance(step, bool):
            raise TypeError("a metric step must be an int, a float, a string or None, got %r" % (step,))
        self.flush()
        if step is None:
            _check(_lib.st_metric_log(self._live(), 0, 0, value))
        else:
            self._database.request("log_trial_metrics", trial=self._trial_uid, step=step, **{self._name: value})

    def flush(self):
        """Sends the buffered points now."""
        steps, values = self._steps, self._values
        n = len(steps)
        if not n:
            return
        self._steps, self._values = array.array("q"), array.array("d")
        self._limit = self.BUFFER_POINTS
        logged = ctypes.c_int64()
        status = _lib.st_metric_log_many(self._live(), steps.buffer_info()[0], values.buffer_info()[0], n, ctypes.byref(logged))
        if status:
            message = (_lib.st_last_error() or b"unknown error").decode("utf-8", "replace")
            if n > 1:
                message += " (%d of %d buffered points of '%s' were logged; the rest were not)" % (logged.value, n, self._name)
            raise (NotFound if status == 3 else TrackError)(message)

    def log_many(self, steps, values):
        """Logs many points in one call: lists, or numpy arrays (int64 steps, float64 values);
        steps may be None."""
        self.flush()
        n = len(values)
        if steps is not None and len(steps) != n:
            raise ValueError("steps and values differ in length (%d, %d)" % (len(steps), n))
        value_pointer, value_owner = _as_buffer(values, ctypes.c_double)
        step_pointer, step_owner = _as_buffer(steps, ctypes.c_int64) if steps is not None else (None, None)
        logged = ctypes.c_int64()
        _check(_lib.st_metric_log_many(self._live(), step_pointer, value_pointer, n, ctypes.byref(logged)))
        del value_owner, step_owner

    def _live(self):
        """The series handle of the database as it is now (a forked child gets its own)."""
        database = self._database
        db_handle = database._live()
        if self._generation != database.generation:
            handle = ctypes.c_void_p()
            _check(_lib.st_metric(db_handle, self._trial_uid.encode("utf-8"), self._name.encode("utf-8"), ctypes.byref(handle)))
            self._handle, self._generation = handle, database.generation  # the parent's handle is not freed here
        return self._handle

    def __del__(self):
        try:
            self.flush()
        except Exception:
            pass
        try:
            if self._database._pid == os.getpid() and self._generation == self._database.generation:
                _lib.st_metric_free(self._handle)
        except Exception:
            pass


# Python track's statuses, by name (set_status also takes a (name, value) pair of a custom one).
STATUSES = {"CreatedGroup": 0, "RunningGroup": 100, "Running": 101, "ErrorGroup": 200, "Interrupted": 201, "Exception": 202,
            "Broken": 203, "FinishedGroup": 300, "Suspended": 301, "Completed": 302}


class Project:
    """A project of the database (from Database.project): makes and finds its groups and trials."""

    def __init__(self, database, json_object):
        self.database = database
        self.uid = json_object["uid"]
        self.name = json_object.get("name", self.uid)
        self.description = json_object.get("description")
        self.metadata = json_object.get("metadata") or {}

    def group(self, name, description=None, metadata=None):
        """The trial group `name` of this project, created when it does not exist."""
        created = self.database.request("new_trial_group", group={"dtype": "trial_group", "name": name, "project_id": self.uid,
                                                                   "description": description, "metadata": metadata or {}, "trials": []})
        return Group(self, created or self.database.request("get_trial_group", group={"name": name, "project_id": self.uid}))

    def trial(self, name, parameters=None, group=None, version=None, description=None, tags=None, metadata=None):
        """The trial `name` with `parameters` (its identity, with `version`, as in track): created
        when no trial has that identity, else the existing one (its first revision)."""
        trial = {"dtype": "trial", "name": name, "parameters": parameters or {}, "version": version, "description": description,
                 "tags": tags or {}, "metadata": metadata or {}, "project_id": self.uid, "revision": 0,
                 "group_id": group.uid if isinstance(group, Group) else group, "metrics": {}, "chronos": {},
                 "status": {"name": "CreatedGroup", "value": 0}, "errors": []}
        created = self.database.request("new_trial", trial=trial)
        if created is None:
            existing = self.database.request("get_trial", trial=trial) or []
            if not existing:
                raise TrackError("trial '%s' exists but cannot be read back" % name)
            created = min(existing, key=lambda t: int(t.get("revision", 0)))
        return Trial(self.database, created)

    def trials(self):
        """Every trial of this project."""
        return [Trial(self.database, t) for t in self.database.request("fetch_trials", query={"project_id": self.uid})]

    def __repr__(self):
        return "Project(%r)" % self.name


class Group:
    """A trial group of a project (from Project.group)."""

    def __init__(self, project, json_object):
        self.project = project
        self.uid = json_object["uid"]
        self.name = json_object.get("name")

    def trial(self, name, parameters=None, **options):
        """The trial `name` of this group's project, in this group (see Project.trial)."""
        return self.project.trial(name, parameters, group=self, **options)

    def __repr__(self):
        return "Group(%r)" % self.name


class Trial:
    """A trial (from Project.trial): its metrics, status, chronos, arguments, metadata and tags."""

    def __init__(self, database, json_object):
        self.database = database
        self.uid = json_object["uid"]
        self.name = json_object.get("name")
        self.parameters = json_object.get("parameters") or {}

    def metric(self, name):
        """The series `name`, for logging points fast (Metric.log, Metric.log_many)."""
        return self.database.metric(self.uid, name)

    def series(self, name):
        """The series `name` as (steps, values) arrays (see Database.series)."""
        return self.database.series(self.uid, name)

    def log(self, step=None, **metrics):
        """Logs several metrics at once, as track's log_trial_metrics(step=..., name=value, ...)."""
        self.database.request("log_trial_metrics", trial=self.uid, step=step, **metrics)

    def set_status(self, status, error=None):
        """Sets the status: a name of track's (STATUSES) or a (name, value) pair of your own."""
        if isinstance(status, str):
            if status not in STATUSES:
                raise ValueError("unknown status %r: one of %s, or a (name, value) pair" % (status, ", ".join(STATUSES)))
            status = (status, STATUSES[status])
        name, value = status
        self.database.request("set_trial_status", trial=self.uid, status={"name": name, "value": value}, error=error)

    @property
    def status(self):
        """The status's name, as stored now."""
        return self.json()["status"]["name"]

    def start(self):
        """Records the start of the trial (log_trial_start)."""
        self.database.request("log_trial_start", trial=self.uid)

    def finish(self, exc_type=None):
        """Records the end of the trial (log_trial_finish)."""
        self.database.request("log_trial_finish", trial=self.uid, exc_type=exc_type)

    def chrono(self, name):
        """A context manager timing its block as the chrono `name` (started on entry, finished on exit)."""
        return _Chrono(self, name)

    def log_arguments(self, **arguments):
        """Merges `arguments` into the trial's parameters (log_trial_arguments)."""
        self.database.request("log_trial_arguments", trial=self.uid, **arguments)

    def log_metadata(self, **metadata):
        """Merges `metadata` into the trial's metadata (log_trial_metadata)."""
        self.database.request("log_trial_metadata", trial=self.uid, **metadata)

    def add_tags(self, **tags):
        """Merges `tags` into the trial's tags (add_trial_tags)."""
        self.database.request("add_trial_tags", trial=self.uid, **tags)

    def json(self):
        """The trial as the database holds it now, in track's JSON."""
        found = self.database.request("get_trial", trial=self.uid)
        for t in found or []:
            if t["uid"] == self.uid:
                return t
        raise NotFound("trial %s" % self.uid)

    def __repr__(self):
        return "Trial(%r, %s)" % (self.name, self.uid)


class _Chrono:
    def __init__(self, trial, name):
        self.trial, self.name = trial, name

    def __enter__(self):
        self.trial.database.request("log_trial_chrono_start", trial=self.trial.uid, name=self.name)
        return self

    def __exit__(self, *exc):
        self.trial.database.request("log_trial_chrono_finish", trial=self.trial.uid, name=self.name)
        return False


def _as_buffer(items, ctype):
    """The items as a C array: (a pointer to pass, the object that owns the memory). A numpy array
    or an array.array of the right type is passed as it is (no copy); anything else is copied
    into an array.array (a C loop, not one Python call per item)."""
    typecode = "d" if ctype is ctypes.c_double else "q"
    if isinstance(items, array.array) and items.typecode == typecode:
        return items.buffer_info()[0], items
    try:
        import numpy
        if isinstance(items, numpy.ndarray):
            array_ = numpy.ascontiguousarray(items, dtype=numpy.float64 if typecode == "d" else numpy.int64)
            return array_.ctypes.data, array_
    except ImportError:
        pass
    copied = array.array(typecode, items)
    return copied.buffer_info()[0], copied


def _commit_at_exit_of_a_multiprocessing_child():
    """multiprocessing's children end with os._exit, which runs no atexit handler; its own exit
    finalizers do run: close (commit) there too."""
    try:
        import multiprocessing.util
        multiprocessing.util.Finalize(None, _close_all, exitpriority=100)
    except Exception:
        pass


def _after_fork_in_child():
    """Points the parent buffered are the parent's to send: a child starts with empty buffers."""
    for database in list(_open_databases):
        for metric in list(database._metrics):
            metric._steps, metric._values = array.array("q"), array.array("d")
            metric._thread = threading.get_ident()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_all():
    for database in list(_open_databases):
        try:
            database.close()
        except Exception:
            pass


# Python track's backend `swifttrack://` (track_backend.py), when track is importable.
from . import track_backend  # noqa: E402
track_backend.register()
