#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ from the project's fixtures and examples.

Run from anywhere: python3 fuzz/seeds.py. Seeds are named seed-*; other files in a corpus
(inputs that once failed, kept as regressions) are left as they are.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
FIXTURES = ROOT / "fixtures" / "meta-webhooks"
CORPUS = FUZZ / "corpus"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / f"seed-{name}").write_bytes(data)


def fixtures():
    return sorted(p for p in FIXTURES.glob("*.json"))


def signature_seeds():
    secret = b"test-app-secret"
    for path in fixtures():
        body = path.read_bytes()
        digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
        write("webhook_signature", path.stem, f"sha256={digest}\n".encode() + body)
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    for name, header in [
        ("upper-hex", "sha256=" + digest.upper()),
        ("padded", "  sha256=" + digest + " \t"),
        ("sha1", "sha1=" + hashlib.sha1(body).hexdigest()),
        ("short", "sha256=" + digest[:63]),
        ("not-hex", "sha256=" + "zz" * 32),
        ("empty", ""),
    ]:
        write("webhook_signature", name, header.encode() + b"\n" + body)


def split_seeds():
    for path in fixtures():
        write("webhook_split", path.stem, path.read_bytes())


def config_seeds():
    for path in sorted((ROOT / "config").glob("*.toml")):
        write("config_toml", path.stem, path.read_bytes())
    example = (ROOT / "config" / "switchboard.toml").read_text()
    example = example.replace(
        "[calls]\nice_servers = []",
        '[calls]\nice_servers = [ { urls = ["stun:stun.l.google.com:19302"] } ]\n'
        'ice_gathering_timeout = "3s"\ngraph_timeout = "10s"',
    )
    write(
        "config_toml",
        "routes-turn-template",
        example
        + """
[calls.turn]
urls = ["turn:turn.example.com:3478"]
shared_secret = "a-turn-secret"
ttl = "6h"

[calls.permission_template]
name = "call_permission"
language = "en_US"

[[routes]]
name = "crm"
events = ["message", "message_status:read", "call_permission_reply"]
url = "http://127.0.0.1:9100/whatsapp"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
mode = "event"
timeout = "10s"
concurrency = 16
retry_schedule = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]

[[routes]]
name = "legacy-forward"
events = ["*"]
url = "http://127.0.0.1:9200/webhook/forward"
mode = "original"
""",
    )


def client_frame(opcode, payload, fin=True, mask=b"\x37\xfa\x21\x3d"):
    """A WebSocket frame as a browser sends it: masked."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def socket_seeds():
    text, binary, close, ping, pong, cont = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
    hello = json.dumps({"type": "hello", "agent": "asha"}).encode()
    write("agent_socket", "ping-pong-close", b"\x07"
          + client_frame(ping, b"") + client_frame(pong, b"x") + client_frame(close, b"\x03\xe8bye"))
    write("agent_socket", "text-binary", b"\x3f"
          + client_frame(text, hello) + client_frame(binary, bytes(range(40))))
    write("agent_socket", "fragmented", b"\x01"
          + client_frame(text, b'{"type":', fin=False) + client_frame(cont, b'"hello"', fin=False)
          + client_frame(cont, b"}") + client_frame(close, b""))
    write("agent_socket", "long-text", b"\x20" + client_frame(text, b"a" * 300))
    write("agent_socket", "oversize-header", b"\x10" + bytes([0x81, 0x80 | 127]) + struct.pack(">Q", 1 << 20)
          + b"\x00\x00\x00\x00")
    write("agent_socket", "unmasked", b"\x10" + bytes([0x81, 5]) + b"hello")


def session_seeds():
    key = bytes([0x5A] * 32)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    payload = f"{b64(b'asha')}.{b64(b'generation-1')}.1767229200.{b64(bytes(range(16)))}"
    tag = b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    write("agent_session", "valid", f"{payload}.{tag}")
    write("agent_session", "expired", f"{b64(b'asha')}.{b64(b'g')}.1000.{b64(b'id')}.AAAA")
    write("agent_session", "agent-and-generation", "ravi\x00e3b0c44298fc1c14")


def events():
    user = {"user_id": "US.13491208655302741918", "wa_id": "12125550100", "name": "Asha Verma"}
    return [
        {"type": "hello", "agent": "asha"},
        {"type": "call.incoming", "call_id": "wacid.in", "user": user, "to": "15550783881", "sdp": "v=0\r\n"},
        {"type": "call.answered", "call_id": "wacid.out", "sdp": "v=0\r\n"},
        {"type": "call.status", "call_id": "wacid.out", "status": "ringing"},
        {"type": "call.status", "call_id": "wacid.out", "status": "accepted"},
        {"type": "call.ended", "call_id": "wacid.out", "status": "completed", "duration": 42},
        {"type": "call.ended", "call_id": "wacid.in", "status": "failed",
         "error": {"meta_code": 138021, "message": "no media"}},
        {"type": "call.claimed", "call_id": "wacid.in", "agent": "ravi"},
        {"type": "permission.updated", "user": user, "response": "accept", "permanent": False,
         "expires_at": 1767830400},
        {"type": "permission.updated", "user": {"user_id": "US.1", "username": "@pablo"},
         "response": "reject", "permanent": False},
    ]


def wire_seeds():
    lines = [json.dumps(e) for e in events()]
    write("dialer_wire", "every-event", "\n".join(lines))
    for i, line in enumerate(lines):
        write("dialer_wire", f"event-{i:02}", line)
    outgoing = [
        lines[0],
        "!place 12125550100",
        "!media",
        "!local v=0 offer",
        "!placed wacid.out",
        lines[3],
        lines[2],
        "!remote",
        lines[4],
        "!mute",
        lines[5],
    ]
    write("dialer_wire", "outgoing-call", "\n".join(outgoing))
    incoming = [lines[0], lines[1], "!accept wacid.in", "!media", "!local v=0 answer", "!accepted",
                "!hangup", "!socket", lines[6]]
    write("dialer_wire", "incoming-call", "\n".join(incoming))


if __name__ == "__main__":
    signature_seeds()
    split_seeds()
    config_seeds()
    socket_seeds()
    session_seeds()
    wire_seeds()
