"""A client of track's socket protocol, standard library only, sending what Python `track`'s
`SocketClient` sends (the shapes of ../shared/data/socket_transcript.jsonl): a 4-byte
little-endian length that counts itself, then the JSON body; `__rpc__` names the call, keyword
arguments travel as top-level keys. Used by the tests to check swift-track's server as a Python
`track` user would meet it, since Python `track` itself cannot be installed here.
"""

import hashlib
import json
import math
import socket
import ssl
import struct
import urllib.parse


def compute_hash(*args, **kwargs):
    """`track.versioning.compute_hash`: SHA-256 over the arguments (None skipped), then each
    keyword's name and value (a None value skipped with its name)."""
    h = hashlib.sha256()

    def encode(v, inside_list=False):
        if isinstance(v, str):
            h.update(v.encode("utf-8"))
        elif isinstance(v, bool) or (isinstance(v, int) and v < 256):
            h.update(bytes([int(v)]))  # raises for a negative int, as track does
        elif isinstance(v, int):
            h.update(struct.pack("I", v))  # raises at 2^32, as track does
        elif isinstance(v, float):
            h.update(struct.pack("d", v))
        elif isinstance(v, (list, tuple)) and not inside_list:
            for e in v:
                if e is None or isinstance(e, (list, tuple, dict)):
                    raise TypeError("unhashable element in a list: %r" % (e,))
                encode(e, inside_list=True)
        elif isinstance(v, dict) and not inside_list:
            for k in v:
                h.update(k.encode("utf-8"))
        else:
            raise TypeError("cannot hash %r" % (v,))

    for a in args:
        if a is not None:
            encode(a)
    for k, v in kwargs.items():
        if v is not None:
            h.update(k.encode("utf-8"))
            encode(v)
    return h.hexdigest()


def project(name, description=None, metadata=None):
    return {"dtype": "project", "uid": name, "name": name, "description": description,
            "metadata": metadata or {}, "trials": [], "groups": []}


def group(name, project_id, description=None, metadata=None):
    return {"dtype": "trial_group", "uid": compute_hash(name, project_id), "name": name,
            "description": description, "metadata": metadata or {}, "project_id": project_id, "trials": []}


def trial(name, parameters, project_id=None, group_id=None, version=None, revision=0, tags=None, metadata=None):
    h = compute_hash(name, version, **parameters)
    return {"dtype": "trial", "uid": "%s_%s" % (h, revision), "revision": revision, "hash": h,
            "name": name, "description": None, "version": version, "tags": tags or {},
            "group_id": group_id, "project_id": project_id, "parameters": parameters,
            "metadata": metadata or {}, "metrics": {}, "chronos": {},
            "status": {"name": "CreatedGroup", "value": 0}, "errors": []}


class _AES:
    """track's AES layer: X25519, HKDF-SHA256 (no salt, info "handshake data") to a 32-byte
    AES key and a 16-byte IV; each message AES-256-CBC with PKCS7 padding from that IV. Needs the
    `cryptography` package (as Python track's own client does)."""

    def __init__(self, key, iv):
        self.key, self.iv = key, iv

    def _cipher(self):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv))

    def encrypt(self, data):
        from cryptography.hazmat.primitives import padding
        padder = padding.PKCS7(128).padder()
        encryptor = self._cipher().encryptor()
        return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()

    def decrypt_block(self, block):
        decryptor = self._cipher().decryptor()
        return decryptor.update(block)

    def decrypt(self, data):
        from cryptography.hazmat.primitives import padding
        decryptor = self._cipher().decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()


def _aes_handshake(client):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    private = X25519PrivateKey.generate()
    client.sock.sendall(private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    peer = X25519PublicKey.from_public_bytes(client._read(32))
    derived = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=b"handshake data").derive(private.exchange(peer))
    return _AES(derived[:32], derived[32:])


class ServerError(Exception):
    """A reply with status 1: the server's message."""


class Client:
    """`socket://[user:password@]host:port[?security_layer=ssl&ca=PATH]`, as track's SocketClient
    parses it; authenticates on connection (null credentials when the URI has none)."""

    def __init__(self, uri, timeout=10):
        parts = urllib.parse.urlparse(uri)
        options = dict(urllib.parse.parse_qsl(parts.query))
        raw = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        if options.get("security_layer") == "ssl":
            context = ssl.create_default_context(cafile=options.get("ca"))
            raw = context.wrap_socket(raw, server_hostname=parts.hostname)
        self.sock = raw
        self.aes = None
        if options.get("security_layer") == "AES":
            self.aes = _aes_handshake(self)
        self.token = self.call("authenticate", username=parts.username, password=parts.password)

    def close(self):
        self.sock.close()

    def send_raw(self, body):
        data = body.encode("utf-8")
        message = struct.pack("<I", len(data) + 4) + data
        if self.aes:
            message = self.aes.encrypt(message)
        self.sock.sendall(message)

    def receive(self):
        if self.aes:
            first = self._read(16)
            length = struct.unpack("<I", self.aes.decrypt_block(first)[:4])[0]
            plain = self.aes.decrypt(first + self._read((length // 16 + 1) * 16 - 16))
            return json.loads(plain[4:].decode("utf-8"))
        header = self._read(4)
        (length,) = struct.unpack("<I", header)
        return json.loads(self._read(length - 4).decode("utf-8"), parse_constant=lambda c: {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[c])

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            out += chunk
        return out

    def call(self, rpc, **kwargs):
        message = dict(kwargs)
        message["__rpc__"] = rpc
        self.send_raw(json.dumps(message))
        reply = self.receive()
        if reply.get("status") != 0:
            raise ServerError(reply.get("error"))
        return reply.get("return")

    # track's Protocol, as its SocketClient sends it.
    def new_project(self, p):
        return self.call("new_project", project=p)

    def get_project(self, p):
        return self.call("get_project", project=p)

    def new_trial_group(self, g):
        return self.call("new_trial_group", group=g)

    def new_trial(self, t):
        return self.call("new_trial", trial=t)

    def get_trial(self, t):
        return self.call("get_trial", trial=t)

    def fetch_trials(self, query):
        return self.call("fetch_trials", query=query)

    def fetch_and_update_trial(self, query, attr, **kwargs):
        return self.call("fetch_and_update_trial", query=query, attr=attr, **kwargs)

    def set_trial_status(self, uid, name, value, error=None):
        kwargs = {"error": error} if error is not None else {}
        return self.call("set_trial_status", trial=uid, status={"name": name, "value": value}, **kwargs)

    def log_trial_metrics(self, uid, step=None, **metrics):
        return self.call("log_trial_metrics", trial=uid, step=step, **metrics)

    def log_trial_start(self, uid):
        return self.call("log_trial_start", trial=uid)

    def log_trial_finish(self, uid):
        return self.call("log_trial_finish", trial=uid, exc_type=None, exc_val=None, exc_tb=None)

    def log_trial_chrono_start(self, uid, name):
        return self.call("log_trial_chrono_start", trial=uid, name=name)

    def log_trial_chrono_finish(self, uid, name):
        return self.call("log_trial_chrono_finish", trial=uid, name=name, exc_type=None, exc_val=None, exc_tb=None)

    def commit(self):
        return self.call("commit")
