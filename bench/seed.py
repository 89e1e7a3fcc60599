"""Creates COUNT bearer connections on a Patchbay server (for bench/rotation.sh): each holds
one sealed secret, so COUNT ciphertexts for a rotation to re-encrypt. 16 keep-alive clients;
bounded by COUNT and by a time limit."""

import http.client
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

PORT, TOKEN, COUNT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
WORKERS, LIMIT_S = 16, 600


def worker(w):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    deadline = time.monotonic() + LIMIT_S
    made = 0
    for i in range(w, COUNT, WORKERS):
        if time.monotonic() > deadline:
            break
        body = json.dumps({"name": f"seed-{i}", "kind": "http", "auth": {"type": "bearer"},
                           "config": {"base_url": "https://api.example.com"},
                           "secrets": {"token": f"seed-secret-{i:08}"}})
        conn.request("POST", "/v1/connections", body,
                     {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 201:
            raise RuntimeError(f"creating seed-{i} answered {r.status}")
        made += 1
    return made


started = time.monotonic()
with ThreadPoolExecutor(WORKERS) as pool:
    made = sum(pool.map(worker, range(WORKERS)))
print(f"seeded {made} connections in {time.monotonic() - started:.0f} s")
sys.exit(0 if made == COUNT else 1)
