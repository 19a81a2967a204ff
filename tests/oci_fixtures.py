"""Push minimal OCI images to the real test registry over plain HTTP (urllib), no Docker daemon.

Independent of :mod:`dex_tasks.tools.oci` on purpose: what the tests check the client against is
put there by other code. An image is a JSON config blob, one tiny gzipped tar layer and an OCI image
manifest; an index lists such images per platform, as ``docker buildx`` pushes multi-platform images.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
TIMEOUT = 30


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pushed:
    digest: str
    media_type: str
    size: int


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(registry: str, name: str, data: bytes) -> str:
    digest = _digest(data)
    start = urllib.request.Request(f"http://{registry}/v2/{name}/blobs/uploads/", method="POST", data=b"")
    with urllib.request.urlopen(start, timeout=TIMEOUT) as response:
        location = urllib.parse.urljoin(f"http://{registry}/", response.headers["Location"])
    sep = "&" if "?" in location else "?"
    put = urllib.request.Request(
        f"{location}{sep}digest={digest}",
        method="PUT",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=TIMEOUT) as response:
        assert response.status == 201
    return digest


def push_manifest(registry: str, name: str, ref: str, body: bytes, media_type: str) -> Pushed:
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{ref}",
        method="PUT",
        data=body,
        headers={"Content-Type": media_type},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        assert response.status == 201
        assert response.headers["Docker-Content-Digest"] == _digest(body)
    return Pushed(digest=_digest(body), media_type=media_type, size=len(body))


def _layer(seed: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        content = f"hello from {seed}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), mtime=0)


def push_image(registry: str, name: str, tag: str, *, seed: str = "", arch: str = "amd64") -> Pushed:
    """A single-platform OCI image under ``tag``; ``seed`` makes its digest unique."""
    seed = seed or f"{name}:{tag}:{arch}"
    config = json.dumps({
        "architecture": arch, "os": "linux", "config": {"Labels": {"seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }).encode()  # fmt: skip
    layer = _layer(seed)
    config_digest, layer_digest = push_blob(registry, name, config), push_blob(registry, name, layer)
    config_type, layer_type = (
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": len(layer)}],
    }
    return push_manifest(registry, name, tag, json.dumps(manifest).encode(), OCI_MANIFEST)


def push_index(
    registry: str, name: str, tag: str, *, media_type: str = OCI_INDEX
) -> tuple[Pushed, list[Pushed]]:
    """A two-platform image (amd64, arm64) under ``tag``: the index and its children (pushed by digest)."""
    children = [push_image(registry, name, f"{tag}-{arch}", arch=arch) for arch in ("amd64", "arm64")]
    index = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": child.media_type, "digest": child.digest, "size": child.size,
             "platform": {"architecture": arch, "os": "linux"}}
            for child, arch in zip(children, ("amd64", "arm64"), strict=True)
        ],
    }  # fmt: skip
    return push_manifest(registry, name, tag, json.dumps(index).encode(), media_type), children


def get_manifest(registry: str, name: str, ref: str) -> tuple[str, bytes] | None:
    """(Content-Type, body) straight from the registry, None for 404."""
    accept = f"{OCI_INDEX}, {DOCKER_LIST}, {OCI_MANIFEST}"
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{ref}", headers={"Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def delete_manifest(registry: str, name: str, digest: str) -> None:
    """DELETE by digest (scripts/test-services.sh enables storage.delete)."""
    request = urllib.request.Request(f"http://{registry}/v2/{name}/manifests/{digest}", method="DELETE")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        assert response.status == 202
