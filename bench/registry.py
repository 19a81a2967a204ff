"""Benchmark: resolving tags to digests against the local real registry (tools/oci.py).

    uv run python bench/registry.py [--tags 50] [--rounds 5]

Needs the registry of ``scripts/test-services.sh start`` (Debian's docker-registry); it starts
nothing itself. It is found through ``DEX_TEST_REGISTRY`` or ``$DEX_TEST_SERVICES_DIR/env``.

``--tags`` minimal OCI images are pushed to a fresh repository, then each round resolves every tag,
interleaved tag by tag, three ways:

* **floor**: one raw ``HEAD /v2/<name>/manifests/<tag>`` with ``http.client`` over one kept-alive
  connection: the least any client can do;
* **resolve (one client)**: ``Client.resolve`` on one client for all tags (a promote over several envs);
* **resolve (new client)**: a fresh ``Client`` per tag (one ``bump-overlay``: new session, new connection).

Printed: the median latency of each and its ratio to the floor, and the registry requests each
``resolve`` made per tag. Then **registry requests per bump**: what ``bump-overlay`` itself asks
(:class:`dex_tasks.supply.digests.RegistryCheck`: resolve, and for an env of ``scan.required-for``
the newest verdict) for ``dev`` and for ``prod`` (the scan gate, with one verdict recorded); the
target is <= 2 for a bump of an env without the gate on an anonymous registry. Figures only.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dex_tasks import proc  # noqa: E402 - after the path setup above, so it runs from a checkout
from dex_tasks.config import Config  # noqa: E402 - same
from dex_tasks.errors import RemoteError  # noqa: E402 - same
from dex_tasks.supply import digests, verdicts  # noqa: E402 - same
from dex_tasks.tools import oci  # noqa: E402 - same

START_HINT = (
    "start it with `scripts/test-services.sh start` (as root; apt-get install -y docker.io docker-registry), "
    "then run this again or export DEX_TEST_REGISTRY=127.0.0.1:PORT"
)


def find_registry() -> str | None:
    found = os.environ.get("DEX_TEST_REGISTRY", "").strip()
    if found:
        return found
    default = Path(tempfile.gettempdir()) / "dex-test-services"
    directory = os.environ.get("DEX_TEST_SERVICES_DIR") or str(default)
    try:
        text = (Path(directory) / "env").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        if key.strip() == "DEX_TEST_REGISTRY" and value.strip():
            return value.strip()
    return None


def push_tags(client: oci.Client, image: str, count: int) -> list[str]:
    """``count`` tags, each a distinct minimal OCI image (config + one layer)."""
    tags = []
    for i in range(count):
        config = client.put_blob(image, json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode())
        layer = client.put_blob(image, f"layer {i}\n".encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.OCI_MANIFEST,
            "config": {**config.to_json(), "mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": [{**layer.to_json(), "mediaType": "application/vnd.oci.image.layer.v1.tar"}],
        }
        tag = f"sha-{i:08x}"
        client.put_manifest(image, tag, json.dumps(manifest).encode(), oci.OCI_MANIFEST)
        tags.append(tag)
    return tags


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    registry = find_registry()
    if registry is None:
        print(f"no local registry configured: {START_HINT}", file=sys.stderr)
        return 2
    name = f"bench/registry-{uuid.uuid4().hex[:8]}"
    image = f"{registry}/{name}"
    sink = io.StringIO()  # the `# HEAD ...` echo lines: still formatted and redacted, not printed
    with proc.session(echo_to=sink), oci.Client(env={}) as shared:
        try:
            tags = push_tags(shared, image, args.tags)
        except RemoteError as exc:
            print(f"registry {registry} is not usable: {exc}; {START_HINT}", file=sys.stderr)
            return 2
        shared.requests = 0
        floor_conn = http.client.HTTPConnection(registry, timeout=oci.REQUEST_TIMEOUT)
        samples: dict[str, list[float]] = {"floor (http.client HEAD)": [], "resolve (one client)": [],
                                           "resolve (new client)": []}  # fmt: skip
        fresh_requests = 0
        for _ in range(args.rounds):
            for tag in tags:
                start = time.perf_counter()
                path = f"/v2/{name}/manifests/{tag}"
                floor_conn.request("HEAD", path, headers={"Accept": oci.MANIFEST_ACCEPT})
                response = floor_conn.getresponse()
                response.read()
                samples["floor (http.client HEAD)"].append(time.perf_counter() - start)
                assert response.status == 200, response.status  # noqa: S101 - a broken bench must stop

                start = time.perf_counter()
                shared.resolve(image, tag)
                samples["resolve (one client)"].append(time.perf_counter() - start)

                start = time.perf_counter()
                with oci.Client(env={}) as fresh:
                    fresh.resolve(image, tag)
                samples["resolve (new client)"].append(time.perf_counter() - start)
                fresh_requests += fresh.requests
        floor_conn.close()
        shared_requests = shared.requests
        per_bump = bump_requests(shared, image, tags[0])
    resolved = args.rounds * len(tags)
    floor = statistics.median(samples["floor (http.client HEAD)"])
    print(f"registry {registry}: {len(tags)} tags x {args.rounds} interleaved rounds")
    print(f"{'case':<26} {'median ms':>10} {'x floor':>8}")
    for case, values in samples.items():
        median = statistics.median(values)
        print(f"{case:<26} {median * 1000:>10.2f} {median / floor:>8.2f}")
    one, new = shared_requests / resolved, fresh_requests / resolved
    print(f"registry requests per resolve: one client {one:.2f}, new client (one bump) {new:.2f}")
    print("(target <= 2 per bump for an anonymous registry)")
    print(
        f"registry requests per bump (RegistryCheck): dev {per_bump['dev']}, "
        f"prod with the scan gate {per_bump['prod']}"
    )
    return 0


def bump_requests(client: oci.Client, image: str, tag: str) -> dict[str, int]:
    """What one ``bump-overlay ENV TAG`` asks the registry, per env kind (a verdict is recorded first)."""
    digest = client.resolve(image, tag)
    assert digest is not None  # noqa: S101 - a broken bench must stop
    verdict = verdicts.Verdict(
        digest=digest, passed=True, counts={"CRITICAL": 0}, fail_on=("CRITICAL",), trivy_version="bench",
        db_updated=None, scanned_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    verdicts.record(client, image, digest, verdict)
    found: dict[str, int] = {}
    for env in ("dev", "prod"):
        with digests.RegistryCheck(Config(image=image)) as check:
            check.require(tag)
            assert not check.scan_problems([env], digest)  # noqa: S101 - the gate must pass here
            found[env] = check.client.requests
    return found


if __name__ == "__main__":
    sys.exit(main())
