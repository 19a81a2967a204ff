"""``image-build [--push] [--pr N] [--tag TAG]... [--allow-dirty]``: docker build with the contract's tags.

Tags come from :mod:`dex_tasks.gitops.build_tags` (``sha-<8>`` always, ``latest`` on the default
branch in CI, ``pr-<N>`` for previews). Every build carries OCI labels (revision, source, created,
version). BuildKit through ``docker buildx`` is used when the client has it (GitHub's runners do):
registry or GitHub Actions cache, SBOM and provenance attestations on push. Without buildx the
classic builder builds and ``docker push`` pushes each tag. Outputs ``image``, ``tags``, ``sha`` and
``digest`` go to ``$GITHUB_OUTPUT`` and ``--json``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dex_tasks import gha, proc, progress
from dex_tasks.errors import CommandFailed, RemoteError, UnsafePathError, UsageError
from dex_tasks.gitops import build_tags
from dex_tasks.supply import build_context
from dex_tasks.tasks import Context, TaskResult, table
from dex_tasks.tools import docker, oci

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

    from dex_tasks.config import Config

LABEL_PREFIX = "org.opencontainers.image."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--push", action="store_true", help="push every tag (log in first when a token is set)"
    )
    parser.add_argument("--pr", type=int, metavar="N", help="also tag pr-N (a PR preview image)")
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="an extra tag (sha-<hex>, pr-<N>, latest); repeatable",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="build a working tree with uncommitted changes (local builds)",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="build and push even when the sha- tag is already in the registry (moves it to a new digest)",
    )


# -- git queries (read-only, so they also run under --dry-run) -----------------------------------
def _git(*args: str, cwd: Path) -> str | None:
    if proc.which("git") is None:
        return None
    result = proc.run(("git", *args), read_only=True, check=False, quiet=True, cwd=cwd)
    return result.stdout.strip() if result.ok else None


def _git_state(cwd: Path) -> build_tags.GitState:
    head = _git("rev-parse", "--verify", "HEAD", cwd=cwd)
    if not head:
        raise UsageError(f"{cwd}: not a git repository with a commit: cannot compute the sha tag")
    status = proc.run(("git", "status", "--porcelain"), read_only=True, quiet=True, cwd=cwd)
    # Porcelain v1: two status letters, a space, the path ("R  old -> new" for renames).
    paths = tuple(line[3:] for line in status.stdout.splitlines() if line.strip())
    return build_tags.GitState(head=head, dirty_paths=paths)


_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")


def normalize_source_url(url: str) -> str | None:
    """A browsable https URL for a git remote, without credentials or ``.git``.

    ``git@github.com:org/repo.git`` -> ``https://github.com/org/repo``; ``https://x:TOKEN@host/r`` ->
    ``https://host/r`` (a label is public forever: a token in it would leak with the image).
    """
    url = url.strip()
    if not url or _WINDOWS_PATH.match(url):
        return None  # a local clone on Windows (C:\src\repo, C:/src/repo), not host "C"
    match = _SCP_LIKE.match(url)
    if match and "://" not in url:
        host, path = match.groups()
    else:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in {"https", "http", "ssh", "git"}:
            return None
        authority, _, path = rest.partition("/")
        host = authority.rpartition("@")[2]
        if scheme in {"ssh", "git"}:
            host = host.split(":", 1)[0]  # drop an ssh port: the web UI is on 443
    path = path.strip("/").removesuffix(".git")
    if not host or not path:
        return None
    return f"https://{host}/{path}"


def source_url(env: Mapping[str, str], cwd: Path) -> str | None:
    server, repository = env.get("GITHUB_SERVER_URL", "").strip(), env.get("GITHUB_REPOSITORY", "").strip()
    if server and repository:
        return f"{server.rstrip('/')}/{repository}"
    origin = _git("remote", "get-url", "origin", cwd=cwd)
    return normalize_source_url(origin) if origin else None


def created_timestamp(env: Mapping[str, str]) -> str:
    """RFC 3339 UTC; ``SOURCE_DATE_EPOCH`` (reproducible builds) wins over the clock."""
    epoch = env.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        moment = dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    else:
        moment = dt.datetime.now(tz=dt.UTC)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def oci_labels(*, commit: str, version: str, source: str | None, created: str) -> dict[str, str]:
    labels = {
        LABEL_PREFIX + "revision": commit,
        LABEL_PREFIX + "created": created,
        LABEL_PREFIX + "version": version,
    }
    if source:
        labels[LABEL_PREFIX + "source"] = source
    return labels


# -- cache -------------------------------------------------------------------------------------
def cache_options(
    env: Mapping[str, str], *, image: str, push: bool, driver: str | None
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """(cache-from, cache-to, why) for buildx.

    ``type=gha`` needs ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL/ACTIONS_RESULTS_URL, which the
    runner only hands to actions, not to ``run:`` steps (docker/build-push-action documents
    crazy-max/ghaction-github-runtime for that); without them the registry cache is used. The
    ``docker`` driver (buildx without ``docker/setup-buildx-action``) cannot export caches at all.
    """
    if driver == "docker":
        return (), (), "none: the buildx 'docker' driver cannot export one (use docker/setup-buildx-action)"
    in_actions = env.get("GITHUB_ACTIONS") == "true"
    runtime = env.get("ACTIONS_RUNTIME_TOKEN") and (
        env.get("ACTIONS_CACHE_URL") or env.get("ACTIONS_RESULTS_URL")
    )
    if in_actions and runtime:
        return ("type=gha",), ("type=gha,mode=max",), "GitHub Actions cache"
    if push:
        ref = f"{image}:buildcache"
        return (f"type=registry,ref={ref}",), (f"type=registry,ref={ref},mode=max",), f"registry ({ref})"
    return (), (), "none (registry cache only when pushing)"


# -- the task ----------------------------------------------------------------------------------
def _build_paths(cfg: Config) -> tuple[Path, Path]:
    context = (cfg.root / cfg.build.context).resolve()
    dockerfile = (cfg.root / cfg.build.dockerfile).resolve()
    if not context.is_dir():
        raise UsageError(f"build context {cfg.build.context!r} is not a directory (tool.dex.build.context)")
    if not dockerfile.is_file():
        raise UsageError(f"Dockerfile {cfg.build.dockerfile!r} not found (tool.dex.build.dockerfile)")
    # The context is sent to the daemon and may end up in a pushed image: it must not be the
    # runner's home or /. `..` from a subproject is fine (a monorepo's Dockerfile often builds
    # from the top); outside the repository (resolved, so a committed symbolic link counts) is not.
    top = Path(_git("rev-parse", "--show-toplevel", cwd=cfg.root) or cfg.root).resolve()
    for key, value, path in (
        ("context", cfg.build.context, context),
        ("dockerfile", cfg.build.dockerfile, dockerfile),
    ):
        if not path.is_relative_to(top):
            raise UnsafePathError(
                f"tool.dex.build.{key} {value!r} resolves to {path}, outside the repository {top}"
            )
    return context, dockerfile


PUSH_ATTEMPTS = 3
PUSH_RETRY_DELAY = 5.0


def _push_one(ref: str, cfg: Config) -> proc.Result:
    """``docker push`` with bounded retries: registries (ghcr.io too) answer 5xx or reset now and then.

    dockerd already retries single layer uploads; this covers the whole push failing (auth
    endpoint hiccup, manifest PUT 502). Layers that made it are not uploaded again.
    """
    last = ""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        try:
            return proc.run(docker.push_argv(ref), stream=True, timeout=cfg.build.timeout)
        except CommandFailed as exc:
            tail = exc.stderr_tail.splitlines()
            last = tail[-1] if tail else str(exc)
            if attempt < PUSH_ATTEMPTS:
                delay = PUSH_RETRY_DELAY * attempt
                progress.waiting(f"docker push {ref}", attempt + 1, PUSH_ATTEMPTS, delay, f"failed: {last}")
                time.sleep(delay)
    raise RemoteError(f"docker push {ref} failed after {PUSH_ATTEMPTS} attempts: {last}")


def _push_classic(refs: tuple[str, ...], cfg: Config) -> str | None:
    digest: str | None = None
    for ref in refs:
        digest = docker.parse_push_digest(_push_one(ref, cfg).stdout) or digest
    return digest


def _compute_tags(ctx: Context, args: argparse.Namespace) -> build_tags.BuildTags:
    cfg = ctx.config
    return build_tags.compute(
        os.environ,
        default_branch=cfg.default_branch,
        event=build_tags.read_event(os.environ),
        git_state=lambda: _git_state(cfg.root),
        pr=args.pr,
        extra=args.tag,
        allow_dirty=args.allow_dirty,
    )


def _build_spec(
    ctx: Context, args: argparse.Namespace, *, refs: tuple[str, ...], labels: dict[str, str], metadata: Path
) -> tuple[docker.BuildSpec, bool, str]:
    """The build to run, whether it uses buildx, and which cache it uses (for the report)."""
    cfg = ctx.config
    context, dockerfile = _build_paths(cfg)
    buildx = docker.has_buildx()
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    cache_why = "classic builder: local layer cache"
    attestations = False
    if buildx:
        driver = docker.buildx_driver()
        cache_from, cache_to, cache_why = cache_options(
            os.environ, image=cfg.image, push=args.push, driver=driver
        )
        attestations = args.push and driver != "docker"
        if args.push and driver == "docker":
            ctx.warn(
                "buildx 'docker' driver: no SBOM/provenance attestations (use docker/setup-buildx-action)"
            )
    spec = docker.BuildSpec(
        context=context,
        dockerfile=dockerfile,
        refs=refs,
        labels=labels,
        build_args=cfg.build.args,
        platforms=cfg.build.platforms,
        push=args.push,
        cache_from=cache_from,
        cache_to=cache_to,
        attestations=attestations,
        metadata_file=metadata if buildx else None,
    )
    return spec, buildx, cache_why


def registry_digests(image: str, tags: tuple[str, ...]) -> dict[str, str | None]:
    """The registry's digest of every ``sha-`` tag among ``tags`` (None: not there). Read-only."""
    sha_tags = [tag for tag in tags if tag.startswith("sha-")]
    try:
        with oci.Client() as client:
            return {tag: client.resolve(image, tag) for tag in sha_tags}
    except RemoteError as exc:
        raise RemoteError(
            f"{exc}; image-build asks first so that it never moves an existing sha- tag "
            "(--rebuild pushes without asking)"
        ) from None


def _immutable(
    ctx: Context, image: str, computed: build_tags.BuildTags, existing: dict[str, str | None]
) -> tuple[str | None, tuple[str, ...]]:
    """(the digest to reuse, the tags to push): sha- tags already in the registry are never moved."""
    primary = existing.get(computed.sha)
    keep = [tag for tag, digest in existing.items() if digest is not None]
    for tag in keep:
        ctx.out(f"{image}:{tag} is in the registry at {existing[tag]}: not moved (--rebuild moves it)")
    if primary is not None:
        ctx.out(f"reusing {image}@{primary}: nothing is built")
    return primary, tuple(tag for tag in computed.tags if tag not in keep)


def _retag(ctx: Context, image: str, digest: str, tags: tuple[str, ...]) -> None:
    """Point ``tags`` (latest, pr-N) at the reused manifest: registry-side, no pull, no build."""
    if not tags:
        return
    with oci.Client() as client:
        manifest = client.get_manifest(image, digest)
        if manifest is None:
            raise RemoteError(f"registry: {image}@{digest} vanished while reusing it; run again")
        for tag in tags:
            if ctx.dry_run:
                ctx.out(f"would tag {image}:{tag} -> {digest}")
            else:
                client.put_manifest(image, tag, manifest.body, manifest.media_type)
                ctx.out(f"tagged {image}:{tag} -> {digest}")


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    cfg = ctx.config
    image = cfg.image
    oci.parse_repository(image)  # a bad image name is exit 2 before anything runs
    computed = _compute_tags(ctx, args)
    reused: str | None = None
    push_tags = computed.tags
    if args.push and not args.rebuild:
        _build_paths(cfg)  # a bad Dockerfile or context is exit 2 before the registry is asked
        reused, push_tags = _immutable(ctx, image, computed, registry_digests(image, computed.tags))
    if reused is not None:
        _retag(ctx, image, reused, push_tags)
        return _reused(ctx, computed, reused, push_tags)
    refs = tuple(f"{image}:{tag}" for tag in push_tags)
    labels = oci_labels(
        commit=computed.commit,
        version=computed.sha,
        source=source_url(os.environ, cfg.root),
        created=created_timestamp(os.environ),
    )
    if computed.dirty:
        ctx.warn(f"building a dirty working tree as {computed.sha} (--allow-dirty)")
    commands: list[tuple[str, ...]] = []
    registry_host: str | None = None
    digest: str | None = None
    # ignore_cleanup_errors: on Windows a tool's child process that outlived a timeout can still hold a
    # file in here; the cleanup's PermissionError must not replace the task's own error.
    with tempfile.TemporaryDirectory(prefix="dex-build-", ignore_cleanup_errors=True) as tmp:
        metadata = Path(tmp) / "metadata.json"
        spec, buildx, cache_why = _build_spec(ctx, args, refs=refs, labels=labels, metadata=metadata)
        _check_context(ctx, spec, buildkit=buildx)  # a credential in .git/config: exit 2 before login
        argv = docker.build_argv(spec, buildx=buildx)  # before login: a bad spec is exit 2 first
        if args.push:
            registry_host = _login(ctx, image, commands)
        commands.append(argv)
        with gha.group(f"docker build {refs[0]}"):
            # DOCKER_BUILDKIT=0: with buildx missing, a user's DOCKER_BUILDKIT=1 would make the
            # classic `docker build` fail with "BuildKit is enabled but the buildx component is missing".
            build_env = None if buildx else {"DOCKER_BUILDKIT": "0"}
            proc.run(argv, stream=True, timeout=cfg.build.timeout, env=build_env, cwd=cfg.root)
        if args.push and buildx:
            if metadata.is_file():
                digest = docker.parse_metadata_digest(metadata.read_text(encoding="utf-8"))
        elif args.push:
            commands += [docker.push_argv(ref) for ref in refs]
            with gha.group("docker push"):
                digest = _push_classic(refs, cfg)

    # buildx --push leaves nothing in the local image store to inspect.
    info = docker.inspect(refs[0]) if not ctx.dry_run and not (args.push and buildx) else None
    if args.push and not digest and info is not None:
        digest = info.digest_for(image)
    if args.push and not ctx.dry_run and not digest:
        ctx.warn("the push did not report a digest")

    data: dict[str, Any] = {
        "image": image,
        "tags": list(computed.tags),
        "refs": list(refs),
        "sha": computed.sha,
        "commit": computed.commit,
        "source": computed.source,
        "reasons": dict(computed.reasons),
        "digest": digest,
        "pushed": bool(args.push and not ctx.dry_run),
        "labels": labels,
        "builder": "buildx" if buildx else "classic",
        "cache": cache_why,
        "registry_login": registry_host,
        "image_id": info.id if info else None,
        "commands": [proc.quote(c) for c in commands],
        "reused": False,
    }
    _report(ctx, data)
    return TaskResult(data=data)


def _reused(ctx: Context, computed: build_tags.BuildTags, digest: str, moved: tuple[str, ...]) -> TaskResult:
    """The result when the sha tag was already pushed: its digest, and nothing built."""
    image = ctx.config.image
    data: dict[str, Any] = {
        "image": image,
        "tags": list(computed.tags),
        "refs": [f"{image}:{tag}" for tag in computed.tags],
        "sha": computed.sha,
        "commit": computed.commit,
        "source": computed.source,
        "reasons": dict(computed.reasons),
        "digest": digest,
        "pushed": bool(moved) and not ctx.dry_run,
        "labels": {},
        "builder": "none (reused)",
        "cache": "-",
        "registry_login": None,
        "image_id": None,
        "commands": [],
        "reused": True,
        "moved": list(moved),
    }
    _report(ctx, data)
    return TaskResult(data=data)


def _check_context(ctx: Context, spec: docker.BuildSpec, *, buildkit: bool) -> None:
    """Refuse a context that would ship a credential; warn when any of ``.git`` is sent."""
    verdict = build_context.check(spec.context, spec.dockerfile, buildkit=buildkit)
    if verdict.sent:
        shown = ", ".join(verdict.sent[:4]) + (", ..." if len(verdict.sent) > 4 else "")
        ignore = verdict.ignore_file.name if verdict.ignore_file else ".dockerignore"
        ctx.warn(
            f"the build context sends .git to the builder ({shown}): add .git to {ignore} to keep it out"
        )


def _login(ctx: Context, image: str, commands: list[tuple[str, ...]]) -> str | None:
    """Log in to the image's registry when credentials are set; returns the host logged in to."""
    host = oci.parse_repository(image).host
    credentials = oci.registry_credentials(host)
    if credentials is None:
        ctx.out(f"no registry credentials for {host}: pushing with the existing docker login")
        return None
    commands.append(docker.login_argv(host, credentials[0]))
    with gha.group("docker login"):
        docker.login(host, *credentials)
    return host


def _report(ctx: Context, data: dict[str, Any]) -> None:
    rows = [[tag, data["reasons"].get(tag, "")] for tag in data["tags"]]
    ctx.out(table(["tag", "why"], rows))
    ctx.out(f"image:  {data['image']}")
    if data["digest"]:
        ctx.out(f"digest: {data['digest']}")
    verb = "pushed" if data["pushed"] else ("planned (dry-run)" if ctx.dry_run else "built")
    if data["reused"]:
        verb = "reused (already in the registry)"
    ctx.out(f"{verb}: {', '.join(data['refs'])}")
    gha.set_outputs(
        {
            "image": data["image"],
            "tags": ",".join(data["tags"]),
            "sha": data["sha"],
            "digest": data["digest"] or "",
            "reused": "true" if data["reused"] else "false",
        }
    )
    summary_rows = [
        ["image", f"`{data['image']}`"],
        ["tags", ", ".join(f"`{t}`" for t in data["tags"])],
        ["commit", f"`{data['commit']}` ({data['source']})"],
        ["digest", f"`{data['digest']}`" if data["digest"] else "-"],
        ["pushed", "yes" if data["pushed"] else "no"],
        ["builder", f"{data['builder']}; cache: {data['cache']}"],
    ]
    gha.summary("### image-build\n\n" + gha.markdown_table(["", ""], summary_rows))
