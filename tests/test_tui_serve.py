"""`gdw tui --serve` against the real server with a real WebSocket client (aiohttp): no token, a wrong
token, another site's Origin and a DNS-rebinding Host are refused; the printed URL works, and the
WebSocket it leads to gets the real app's screen. It listens on 127.0.0.1 only unless --host is given.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from gdw_cli.main import app
from lifecycle_helpers import ROOT, child_env, gdw_command

pytest.importorskip("textual_serve")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, int]:
    port = free_port()
    proc = subprocess.Popen(gdw_command() + ["tui", "--serve", "--port", str(port), "--runs-dir", str(tmp_path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=child_env(**(env or {})), start_new_session=True)
    line = proc.stdout.readline()
    url = re.search(r"serving on (\S+)", line)
    assert url, (line, proc.stderr.read() if proc.poll() is not None else "")
    for _ in range(200):  # the line is printed just before it listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            asyncio.run(asyncio.sleep(0.05))
    return proc, url.group(1), port


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


async def ws_status(url: str, headers: dict[str, str]) -> int | str:
    """The handshake's refusal status, or the first bytes the app sent once connected."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=headers) as ws:
                await ws.send_json(["resize", {"width": 100, "height": 30}])
                got = b""
                while b" Presets " not in got and len(got) < 2_000_000:
                    msg = await asyncio.wait_for(ws.receive(), timeout=60)
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        continue
                    got += msg.data
                return "connected: " + got.decode("utf-8", "replace")
        except aiohttp.WSServerHandshakeError as e:
            return e.status


async def get_status(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers or {}) as r:
            return r.status, await r.text()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    proc, url, port = start_server(tmp)
    try:
        yield url, port
    finally:
        stop(proc)


def test_the_printed_url_has_a_random_token_and_binds_loopback(server):
    url, port = server
    assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/\?token=[\w-]{{43}}", url), url


def test_refused_without_the_token_or_with_a_wrong_one(server):
    url, port = server
    token = url.split("token=")[1]
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    assert asyncio.run(ws_status(f"ws://127.0.0.1:{port}/ws", origin)) == 403
    assert asyncio.run(ws_status(f"ws://127.0.0.1:{port}/ws/{token[:-1]}x", origin)) == 403
    assert asyncio.run(ws_status(f"ws://127.0.0.1:{port}/ws?token=nope", origin)) == 403
    assert asyncio.run(get_status(f"http://127.0.0.1:{port}/"))[0] == 403
    assert asyncio.run(get_status(f"http://127.0.0.1:{port}/?token=wrong"))[0] == 403


def test_a_foreign_origin_or_a_rebinding_host_is_refused_even_with_the_token(server):
    url, port = server
    ws = f"ws://127.0.0.1:{port}/ws/{url.split('token=')[1]}"
    assert asyncio.run(ws_status(ws, {"Origin": "http://evil.example.com"})) == 403
    assert asyncio.run(ws_status(ws, {"Origin": f"http://evil.example.com:{port}"})) == 403
    # DNS rebinding: evil.example.com resolves to 127.0.0.1, so the page and its socket are same-origin.
    rebound = {"Host": f"evil.example.com:{port}", "Origin": f"http://evil.example.com:{port}"}
    assert asyncio.run(ws_status(ws, rebound)) == 403
    assert asyncio.run(get_status(url, {"Host": f"evil.example.com:{port}"}))[0] == 403


def test_the_printed_url_works_and_its_websocket_gets_the_app(server):
    url, port = server
    status, page = asyncio.run(get_status(url))
    assert status == 200
    ws = re.search(r'data-session-websocket-url="([^"]+)"', page).group(1)
    assert ws == f"ws://127.0.0.1:{port}/ws/{url.split('token=')[1]}"
    got = asyncio.run(ws_status(ws, {"Origin": f"http://127.0.0.1:{port}"}))
    assert isinstance(got, str) and got.startswith("connected: ") and " Presets " in got  # the app's first screen
    # Reached through a tunnel under another loopback name, the page points its socket there.
    status, page = asyncio.run(get_status(url, {"Host": "localhost:9999"}))
    assert status == 200 and f'data-session-websocket-url="ws://localhost:9999/ws/' in page


def non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_only_loopback_listens_unless_host_is_given(server, tmp_path):
    _, port = server
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=2).close()
    proc, url, port2 = start_server(tmp_path, "--host", "0.0.0.0", env={"GDW_TUI_TOKEN": "a-token-chosen-by-the-user"})
    try:
        socket.create_connection((address, port2), timeout=5).close()
        assert url == f"http://127.0.0.1:{port2}/?token=a-token-chosen-by-the-user"
        ws = f"ws://{address}:{port2}/ws/a-token-chosen-by-the-user"
        assert asyncio.run(ws_status(ws, {"Origin": "http://evil.example.com"})) == 403
        assert asyncio.run(ws_status(f"ws://{address}:{port2}/ws", {})) == 403
    finally:
        err = stop(proc)
    assert "warning: --host 0.0.0.0: anyone on any network this machine is on can connect" in err
    assert f"ssh -L {port2}:127.0.0.1:{port2}" in err


@pytest.mark.parametrize("args, env, line", [
    (["--token", "short"], {}, "error: --token must be at least 16 printable characters without spaces (got 5); leave it out for a random one"),
    ([], {"GDW_TUI_TOKEN": "x"}, "error: GDW_TUI_TOKEN must be at least 16 printable characters without spaces (got 1); leave it out for a random one"),
    (["--no-serve", "--host", "0.0.0.0"], {}, "error: --host needs --serve"),
])
def test_bad_token_or_host_without_serve_is_one_line(tmp_path, monkeypatch, args, env, line):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    argv = ["tui", "--runs-dir", str(tmp_path)] + (args if "--no-serve" in args else ["--serve", *args])
    result = CliRunner().invoke(app, [a for a in argv if a != "--no-serve"])
    assert result.exit_code == 2 and result.stderr.splitlines() == [line], result.stdout + result.stderr
