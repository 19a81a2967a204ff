"""Thin git wrapper: argv tuples and output parsing, every call through :mod:`dex_tasks.proc`.

The rule it serves (docs/architecture.md, principle 8): never touch the user's working copy, index or current
branch. Reads go to ``origin/<base>`` objects (``git show``, ``git log``); writes happen in a
temporary detached ``git worktree`` that is removed on any exit, Ctrl-C included (like
cibuildwheel's ``OCIContainer``, a resource is a context manager).

Queries are ``read_only=True`` so they also run under ``--dry-run``. ``git fetch`` is marked
read-only too: it only updates remote-tracking refs, which is what every ``git status`` user
expects a tool to be allowed to do, and a dry-run without it would plan against a stale tip.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import dataclasses
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from dex_tasks import gha, proc, progress, redact
from dex_tasks._untrusted import control_character, secret_from_env
from dex_tasks.errors import CommandFailed, DexError, GitRemoteConfigError, RemoteError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

REMOTE = "origin"
FETCH_ATTEMPTS = 3  # a flaky network gets two more tries; a missing branch or auth failure none
# Separators that never occur in commit metadata, so `git log` output parses without escaping.
_FIELD = "\x1f"
_RECORD = "\x1e"
_TRAILER_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):\s?(.*)$")
# Identity used when neither git config nor the environment names one (a fresh CI runner):
# without it `git commit` fails with "Please tell me who you are".
FALLBACK_NAME = "dex-tasks"
FALLBACK_EMAIL = "dex-tasks@users.noreply.github.com"
ACTIONS_NAME = "github-actions[bot]"
ACTIONS_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
# git speaks English to us whatever the user's LANGUAGE/LANG: a few of its messages are read
# ("couldn't find remote ref", the transient-network and configuration markers, "fatal:", a local
# receive-pack's "cannot lock ref" in a push race), and gettext would translate them all.
# LANGUAGE picks message catalogues only; the charset, dates and paths stay the user's locale's.
# (GitPython sets LANGUAGE=C too, in git/cmd.py.)
MESSAGES_ENV: dict[str, str | None] = {"LANGUAGE": "C"}


def git(
    *args: str | Path,
    cwd: Path,
    read_only: bool = False,
    check: bool = True,
    quiet: bool = False,
    stdin: str | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = proc.DEFAULT_TIMEOUT,
) -> proc.Result:
    """``git -C <cwd> ARGS``. ``-C`` in argv (not only ``cwd=``) so dry-run echoes are runnable.

    With a token in the environment, git authenticates to the GitHub server with it (see
    :func:`auth_env`): the token reaches git through the environment only, never argv or a file.
    """
    auth = auth_env(os.environ)
    return proc.run(
        ("git", "-C", str(cwd), *(str(a) for a in args)),
        read_only=read_only,
        check=check,
        quiet=quiet,
        stdin=stdin,
        env={**MESSAGES_ENV, **auth, **(env or {})},
        timeout=timeout,
    )


TOKEN_VARS = ("GITOPS_TOKEN", "GITHUB_TOKEN", "GH_TOKEN")


def auth_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``GIT_CONFIG_*`` variables that give git an ``Authorization`` header for the GitHub server.

    The reusable workflows check out with ``persist-credentials: false``, so no token sits in
    ``.git/config`` (where ``docker build`` of the workspace would ship it in an image). Pushing
    then authenticates the way actions/checkout's persisted header does, ``http.<server>/.extraheader
    = AUTHORIZATION: basic base64(x-access-token:TOKEN)``, but as configuration in the environment
    of our own git processes (``GIT_CONFIG_COUNT``, git 2.31+:
    https://git-scm.com/docs/git-config#Documentation/git-config.txt-GITCONFIGCOUNT), not argv.

    Scoped to ``GITHUB_SERVER_URL`` (default https://github.com), so git sends it to that server
    only: an origin elsewhere (a mirror, a local path) never sees it. The empty value first resets
    the header list (http.extraHeader's documented reset), so a header an older caller's checkout
    persisted is replaced, not sent twice (GitHub refuses a duplicate Authorization with 400).
    Variables already in ``GIT_CONFIG_COUNT`` are kept; ours go after them.
    """
    token = next((value for name in TOKEN_VARS if (value := secret_from_env(environ, name))), "")
    server = environ.get("GITHUB_SERVER_URL", "").strip() or "https://github.com"
    scheme, sep, rest = server.partition("://")
    host = rest.split("/", 1)[0]
    if not token or not sep or scheme.lower() not in {"https", "http"} or not host:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
    redact.register_secret(token)
    redact.register_secret(basic)
    try:
        count = max(0, int(environ.get("GIT_CONFIG_COUNT", "0") or 0))
    except ValueError:
        count = 0  # git itself refuses a bad count; ours then start at 0 and git says why
    key = f"http.{scheme.lower()}://{host}/.extraheader"
    return {
        "GIT_CONFIG_COUNT": str(count + 2),
        f"GIT_CONFIG_KEY_{count}": key,
        f"GIT_CONFIG_VALUE_{count}": "",
        f"GIT_CONFIG_KEY_{count + 1}": key,
        f"GIT_CONFIG_VALUE_{count + 1}": f"AUTHORIZATION: basic {basic}",
    }


def _query(root: Path, *args: str | Path, check: bool = True) -> proc.Result:
    return git(*args, cwd=root, read_only=True, check=check, quiet=True)


# -- repository ------------------------------------------------------------------------------


def toplevel(start: Path) -> Path:
    """The work tree root containing ``start`` (exit 2 when it is not inside a git repository)."""
    result = _query(start, "rev-parse", "--show-toplevel", check=False)
    if not result.ok or not result.stdout.strip():
        raise UsageError(f"{start} is not inside a git repository (GitOps tasks work on a clone of the repo)")
    return Path(result.stdout.strip())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Located:
    root: Path
    prefix: str
    shallow: bool
    tip: str | None  # the commit of locate's ``tip_of`` (None: not asked, or it does not resolve)


def locate(start: Path, *, tip_of: str | None = None) -> Located:
    """:func:`toplevel`, :func:`prefix`, :func:`is_shallow` and, with ``tip_of``, that ref's commit
    (:func:`rev_parse`), in one git process: every task starts with the first two; a reader of
    history needs the others before its fetch (:func:`fetch_history_meanwhile`)."""
    args = ["rev-parse", "--show-toplevel", "--show-prefix", "--is-shallow-repository"]
    if tip_of is not None:
        args += ["--verify", "--quiet", "--end-of-options", f"{tip_of}^{{commit}}"]
    result = _query(start, *args, check=False)
    lines = result.stdout.split("\n")
    # rev-parse prints the rest, then exits 1, for a tip_of that does not resolve.
    if result.returncode not in {0, 1} or len(lines) < 3 or not lines[0].strip():
        raise UsageError(f"{start} is not inside a git repository (GitOps tasks work on a clone of the repo)")
    tip = lines[3].strip() if result.ok and tip_of is not None and len(lines) > 3 else ""
    return Located(
        root=Path(lines[0].strip()),
        prefix=lines[1].strip(),
        shallow=lines[2].strip() == "true",
        tip=tip or None,
    )


def prefix(start: Path) -> str:
    """``start`` relative to the top level, as git spells it (``''`` or ``sub/dir/``)."""
    return _query(start, "rev-parse", "--show-prefix").stdout.strip()


def remote_url(root: Path, remote: str = REMOTE) -> str | None:
    if remote == REMOTE:
        return _origin_url(root, push=False)
    result = _query(root, "remote", "get-url", remote, check=False)
    return result.stdout.strip() if result.ok and result.stdout.strip() else None


# origin's URLs inside remembering_origin(): {False: the fetch URL, True: the push URL}.
_ORIGIN: contextvars.ContextVar[dict[bool, str | None] | None] = contextvars.ContextVar(
    "dex_git_origin", default=None
)


@contextlib.contextmanager
def remembering_origin() -> Iterator[None]:
    """Inside the block origin's fetch and push URLs are asked once, by one ``git remote -v``.

    A write asked ``git remote get-url`` four times, a process each: for the locks' ls-remote
    (twice), the fetch and the push. For one repository whose remotes the block does not change
    (a write task); a block inside another shares the outer one's answers.
    """
    if _ORIGIN.get() is not None:
        yield
        return
    token = _ORIGIN.set({})
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def _origin_url(root: Path, *, push: bool) -> str | None:
    """``git remote get-url [--push] origin``; None when there is no origin (or it has no URL)."""
    memo = _ORIGIN.get()
    if memo is None:
        args = ("remote", "get-url", *(("--push",) if push else ()), REMOTE)
        result = _query(root, *args, check=False)
        return result.stdout.strip() if result.ok and result.stdout.strip() else None
    if push not in memo:
        memo.update(_origin_urls(root))
    return memo[push]


def _origin_urls(root: Path) -> dict[bool, str | None]:
    """origin's first fetch and first push URL as ``git remote -v`` lists them: what ``get-url``
    and ``get-url --push`` print. builtin/remote.c prints each URL of the remote as ``<name>\t<url>
    (fetch)``, then its pushurls (none: its URLs) as ``... (push)``, both after the
    url.<base>.insteadOf / pushInsteadOf rewrites (remote.c alias_all_urls), as get-url does. A
    partial clone's fetch line ends in its filter, ``(fetch) [blob:none]`` (get_one_entry)."""
    found: dict[bool, str | None] = {False: None, True: None}
    for line in _query(root, "remote", "-v", check=False).stdout.splitlines():
        name, _, rest = line.partition("\t")
        if name != REMOTE:
            continue
        if found[True] is None and rest.endswith(" (push)"):
            found[True] = rest.removesuffix(" (push)").strip() or None
        elif found[False] is None and rest.endswith(" (fetch)"):
            found[False] = rest.removesuffix(" (fetch)").strip() or None
        elif found[False] is None and rest.endswith("]") and " (fetch) [" in rest:
            found[False] = rest[: rest.rindex(" (fetch) [")].strip() or None
    return found


def require_remote(root: Path, remote: str = REMOTE) -> str:
    url = remote_url(root, remote)
    if url is None:
        raise UsageError(f"no git remote {remote!r} in {root}: GitOps tasks push to {remote}")
    return url


# A password in origin's URL (https://user:TOKEN@host/org/repo.git) would reach every process git
# starts for the transport: git-remote-https gets the URL in its argv, which any local user can
# read in /proc/<pid>/cmdline or `ps`. So network commands name the URL without its userinfo and
# git gets the credential from a helper that reads it from our environment (GIT_CONFIG_COUNT, git
# 2.31+, keeps the helper out of argv too; the helper's own argv holds only the variable names).
# https://git-scm.com/docs/gitcredentials#_custom_helpers
CREDENTIAL_USER_ENV = "DEX_GIT_USERNAME"
CREDENTIAL_PASSWORD_ENV = "DEX_GIT_PASSWORD"  # noqa: S105 - the variable's name, not a password
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=%s\\npassword=%s\\n" "${CREDENTIAL_USER_ENV}" "${CREDENTIAL_PASSWORD_ENV}"; }}; f'
)
# Tokens GitHub and GitLab accept as the user name alone (https://TOKEN@github.com/...).
_TOKEN_USER_RE = re.compile(r"^(gh[pousr]_|github_pat_|glpat-)")


def network_remote(root: Path, *, push: bool = False) -> tuple[str, dict[str, str | None]]:
    """How to name origin on a fetch/push/ls-remote, and the environment to run it with.

    ``origin`` and no extra environment, unless its http(s) URL carries a password (or a token as
    the user name): then the URL without userinfo, and a credential helper fed from the environment.
    """
    return _network_remote_of_url(_origin_url(root, push=push) or "")


@contextlib.contextmanager
def network_remote_meanwhile(start: Path) -> Iterator[Callable[[], tuple[str, dict[str, str | None]]]]:
    """:func:`network_remote` (fetch side) with its ``git remote get-url`` started now and answered
    by the call, so it runs beside the caller's own first git process (history's :func:`locate`).
    ``start``: any directory of the repository, as for locate."""
    argv = ("git", "-C", str(start), "remote", "get-url", REMOTE)
    auth = auth_env(os.environ)
    with proc.start(argv, read_only=True, check=False, quiet=True, env={**MESSAGES_ENV, **auth}) as pending:
        yield lambda: _network_remote_of(pending.result())


def _network_remote_of(result: proc.Result) -> tuple[str, dict[str, str | None]]:
    """:func:`network_remote` from the result of its ``git remote get-url``."""
    return _network_remote_of_url(result.stdout.strip() if result.ok else "")


def _network_remote_of_url(url: str) -> tuple[str, dict[str, str | None]]:
    """:func:`network_remote` for origin's URL (empty: no origin)."""
    split = urllib.parse.urlsplit(url)
    if split.scheme.lower() not in {"http", "https"} or "@" not in split.netloc:
        return REMOTE, {}
    userinfo, _, host = split.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    user, password = urllib.parse.unquote(user), urllib.parse.unquote(password)
    if not (has_password and password) and not _TOKEN_USER_RE.match(user):
        return REMOTE, {}  # a user name only: the user's own credential helpers answer for it
    redact.register_secret(password or user)
    clean = urllib.parse.urlunsplit((split.scheme, host, split.path, split.query, split.fragment))
    count = _config_count()
    env: dict[str, str | None] = {
        "GIT_CONFIG_COUNT": str(count + 2),
        # An empty value first: no configured helper is asked, nor told to store the token.
        f"GIT_CONFIG_KEY_{count}": "credential.helper",
        f"GIT_CONFIG_VALUE_{count}": "",
        f"GIT_CONFIG_KEY_{count + 1}": "credential.helper",
        f"GIT_CONFIG_VALUE_{count + 1}": _HELPER,
        CREDENTIAL_USER_ENV: user,
        CREDENTIAL_PASSWORD_ENV: password,
    }
    return clean, env


def _config_count() -> int:
    """Entries the caller already passes through GIT_CONFIG_COUNT: ours go after them."""
    try:
        return max(0, int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0))
    except ValueError:
        return 0


def is_shallow(root: Path) -> bool:
    return _query(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def rev_parse(root: Path, rev: str) -> str | None:
    """The full commit id ``rev`` names, or None when it does not resolve to a commit here."""
    result = _query(
        root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False
    )
    return result.stdout.strip() if result.ok and result.stdout.strip() else None


def show(root: Path, rev: str, path: str) -> str | None:
    """Content of ``path`` at ``rev`` (bytes-exact text), or None when it does not exist there."""
    result = _query(root, "show", f"{rev}:{path}", check=False)
    return result.stdout if result.ok else None


def blobs(root: Path, names: Sequence[str]) -> list[bytes | None]:
    """The content of each ``<rev>:<path>`` in ``names`` as bytes, None where it is not a file there.

    One ``git cat-file --batch`` for all of them instead of a ``git show`` each: its output is
    ``<sha> <type> <size>\\n<content>\\n`` per name, or ``<name> missing\\n``, so it is cut by the
    sizes, as bytes (:func:`dex_tasks.proc.run_bytes`). The same bytes ``git show <rev>:<path>``
    prints (neither applies filters or textconv). A name cat-file cannot take on one line (a path
    with a line break) is read with ``git show``.
    """
    if any("\n" in name or "\r" in name for name in names):
        shown = [
            proc.run_bytes(("git", "-C", str(root), "show", name), read_only=True, check=False, quiet=True)
            for name in names
        ]
        return [done.stdout if done.ok else None for done in shown]
    if not names:
        return []
    out = proc.run_bytes(("git", "-C", str(root), "cat-file", "--batch"), read_only=True, quiet=True,
                         stdin="".join(f"{name}\n" for name in names)).stdout  # fmt: skip
    result: list[bytes | None] = []
    at = 0
    for _ in names:
        eol = out.index(b"\n", at)
        header = out[at:eol].split(b" ")
        at = eol + 1
        if len(header) != 3 or not header[2].isdigit():
            result.append(None)  # `<name> missing` (or ambiguous): nothing to read
            continue
        size = int(header[2])
        result.append(out[at : at + size] if header[1] == b"blob" else None)
        at += size + 1  # the content, then the newline cat-file adds after it
    return result


def tree_modes(root: Path, rev: str, paths: Sequence[str]) -> dict[str, str]:
    """The git mode of each of ``paths`` (posix, from the top) that is an entry of ``rev``'s tree.

    ``120000`` is a symbolic link, ``160000`` a submodule, ``040000`` a directory. A path whose
    parent is not a directory at ``rev`` has no entry. ``-t`` lists the directories on the way
    without listing what else they hold; literal pathspecs, so ``*`` in a name is only a name.
    """
    if not paths:
        return {}
    out = _query(root, "--literal-pathspecs", "ls-tree", "-t", "-z", "--full-tree", rev, "--", *paths).stdout
    modes: dict[str, str] = {}
    for record in out.split("\0"):
        info, _, name = record.partition("\t")
        if name:
            modes[name] = info.split(" ", 1)[0]
    return modes


def tracking(branch: str) -> str:
    return f"refs/remotes/{REMOTE}/{branch}"


# Only origin's branch into its tracking ref: no tags, no FETCH_HEAD (nothing of ours reads it, and
# the user's own `git pull` state is left alone), no `git maintenance run --auto` (a process more
# per fetch; the user's own git commands still run it).
_FETCH = ("fetch", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance", "--quiet")


def fetch(root: Path, branch: str, *, unshallow: bool = False) -> str:
    """Fetch ``branch`` from origin into ``refs/remotes/origin/<branch>`` and return its commit.

    ``unshallow``: also complete a shallow clone's history (``history``/``rollback`` walk it).
    A missing branch or unreachable remote is a :class:`RemoteError` (exit 4).
    """
    check_ref_name(branch)
    remote, env = network_remote(root)
    refspec = f"+refs/heads/{branch}:{tracking(branch)}"
    _fetch(root, branch, [*_FETCH, remote, refspec], env)
    # The shallow check and the tip in one process, after the fetch (the common, complete clone
    # pays nothing more). actions/checkout clones with --depth 1; the overlay's history needs the
    # rest, so a shallow clone is completed by a second fetch.
    shallow, sha = _shallow_and_tip(root, tracking(branch))
    if unshallow and shallow:
        _fetch(root, branch, [*_FETCH, "--unshallow", remote, refspec], env)
        sha = rev_parse(root, tracking(branch))
    if sha is None:  # pragma: no cover - fetch succeeded, so the ref exists
        raise RemoteError(f"branch {branch!r} was fetched but does not resolve")
    return sha


@contextlib.contextmanager
def fetch_history_meanwhile(
    root: Path,
    branch: str,
    *,
    shallow: bool,
    tip: str | None,
    named: tuple[str, dict[str, str | None]] | None = None,
) -> Iterator[Callable[[], bool]]:
    """For a reader that walks ``tracking(branch)`` and needs no commit id: :func:`fetch` with
    ``unshallow=True``, its ``git ls-remote`` running while the block reads the local history of
    ``tracking(branch)``, so the network round trip overlaps the local work (a complete clone whose
    tracking ref is already at origin's branch has nothing to fetch, which ls-remote tells for less
    than a fetch). The block ends by calling what it is given: False when origin's branch is where
    the tracking ref was (what the block read stands), True after a fetch done then (origin moved,
    or ls-remote failed and the fetch says why with its retries and exit codes): the block reads
    again. A shallow clone or a missing tracking ref is fetched before the block (``--unshallow``
    fetches and completes at once), and the call says False. Leaving the block early kills the
    ls-remote (:func:`proc.start`). ``named``: :func:`network_remote`'s answer when the caller has
    it already."""
    check_ref_name(branch)
    remote, env = named or network_remote(root)
    refspec = f"+refs/heads/{branch}:{tracking(branch)}"
    if shallow or tip is None:
        unshallow = ("--unshallow",) if shallow else ()  # git refuses it on a complete clone
        _fetch(root, branch, [*_FETCH, *unshallow, remote, refspec], env)
        yield lambda: False
        return
    ref = f"refs/heads/{branch}"
    auth = auth_env(os.environ)
    argv = ("git", "-C", str(root), "ls-remote", remote, ref)
    with proc.start(
        argv, read_only=True, check=False, quiet=True, env={**MESSAGES_ENV, **auth, **env}
    ) as pending:

        def settle() -> bool:
            if not pending.ended_within(progress.SAY_AFTER):  # a slow origin: say what we wait for
                progress.waiting(f"origin's {branch} (git ls-remote)", 1, 1)
            if _tip_in(pending.result(), ref) == tip:
                return False
            _fetch(root, branch, [*_FETCH, remote, refspec], env)
            return True

        yield settle


def _tip_in(result: proc.Result, ref: str) -> str | None:
    """``ref``'s commit in a ``git ls-remote`` result; None when it failed or lacks the ref."""
    if not result.ok:
        return None
    # A pattern matches the tail of a ref name (refs/heads/x/refs/heads/main too): the exact one.
    return next((sha for sha, _, name in (line.partition("\t") for line in result.stdout.splitlines())
                 if name == ref), None)  # fmt: skip


def _shallow_and_tip(root: Path, ref: str) -> tuple[bool, str | None]:
    out = _query(
        root, "rev-parse", "--is-shallow-repository", "--verify", "--quiet", "--end-of-options",
        f"{ref}^{{commit}}", check=False,
    ).stdout.split()  # fmt: skip
    return (bool(out) and out[0] == "true"), (out[1] if len(out) > 1 else None)


def _fetch(root: Path, branch: str, args: list[str], env: dict[str, str | None]) -> None:
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        result = git(*args, cwd=root, read_only=True, check=False, env=env)
        if result.ok:
            return
        # Asked only now: without it, git's "Could not read from remote repository" reads as a
        # network failure (exit 4) when the clone simply has no origin, a setup problem (exit 2).
        require_remote(root)
        text = redact.redact(result.stderr.strip() or result.stdout.strip())
        if "couldn't find remote ref" in text.lower():
            raise UsageError(
                f"branch {branch!r} does not exist on {REMOTE} (check [tool.dex] branches / default-branch)"
            )
        refuse_configuration(text, f"cannot fetch branch {branch!r} from {REMOTE}")
        if attempt == FETCH_ATTEMPTS or not any(marker in text.lower() for marker in _TRANSIENT):
            raise RemoteError(
                f"cannot fetch branch {branch!r} from {REMOTE}: {_fetch_detail(text, result.returncode)}"
            )
        delay = min(8.0, 0.5 * 2**attempt)
        progress.waiting(f"git fetch of {branch}", attempt + 1, FETCH_ATTEMPTS, delay, _fetch_detail(text, 1))
        time.sleep(delay)


# git's words for a remote it refuses to use because of configuration, not the network: a
# transport that protocol.<name>.allow forbids (ext:: is "never" by default, file:// when set so),
# an unknown protocol, credentials that are missing or wrong. Retrying cannot help: exit 2.
_CONFIGURATION = (
    re.compile(r"transport '[^']*' not allowed", re.IGNORECASE),
    re.compile(r"unable to find remote helper for", re.IGNORECASE),
    re.compile(r"'remote-[^']*' is not a git command", re.IGNORECASE),  # git 2.x, unknown scheme://
    re.compile(r"protocol '[^']*' is not supported", re.IGNORECASE),
    re.compile(r"authentication failed for", re.IGNORECASE),
    re.compile(r"could not read (username|password) for", re.IGNORECASE),
    re.compile(r"permission denied \(publickey", re.IGNORECASE),
    re.compile(r"host key verification failed", re.IGNORECASE),
    re.compile(r"the requested url returned error: 40[13]", re.IGNORECASE),
)


def configuration_problem(text: str) -> str | None:
    """git's line saying the remote is refused for a configuration reason (see above), or None."""
    for line in text.splitlines():
        if any(pattern.search(line) for pattern in _CONFIGURATION):
            return line.strip()
    return None


def refuse_configuration(text: str, what: str, *, outcome: str = "nothing was changed") -> None:
    line = configuration_problem(text)
    if line is not None:
        raise GitRemoteConfigError(
            f"{what}: {redact.redact(line)}; {outcome} (a configuration problem, not the network: "
            f"check the {REMOTE} URL, its transport and the credentials)"
        )


def _fetch_detail(text: str, returncode: int) -> str:
    """git's first specific ``fatal:``/``error:`` line; its last line is boilerplate
    ("and the repository exists.") that says nothing about what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")) and "could not read from remote" not in line.lower():
            return line
    return lines[0] if lines else f"exit {returncode}"


def ls_remote(root: Path, *patterns: str, what: str) -> list[tuple[str, str]]:
    """``(sha, ref)`` of origin's refs matching ``patterns``; ``what`` names the read in errors.

    Through :func:`network_remote` (no credential in argv) and with the same exit codes as fetch:
    a remote refused for its configuration is exit 2, one that does not answer exit 4.
    """
    remote, env = network_remote(root)
    result = git("ls-remote", remote, *patterns, cwd=root, read_only=True, check=False, quiet=True, env=env)
    if not result.ok:
        text = redact.redact(result.stderr.strip() or result.stdout.strip())
        refuse_configuration(text, what)
        raise RemoteError(f"{what}: {_fetch_detail(text, result.returncode)}")
    refs = []
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip():
            refs.append((sha.strip(), ref.strip()))
    return refs


def remote_branch_sha(root: Path, branch: str) -> str | None:
    """The commit ``branch`` points at on origin right now, or None when it does not exist."""
    remote, env = network_remote(root)
    result = git("ls-remote", "--heads", remote, f"refs/heads/{branch}", cwd=root, read_only=True,
                 check=False, quiet=True, env=env)  # fmt: skip
    if not result.ok:
        text = redact.redact(result.stderr.strip())
        refuse_configuration(text, f"cannot list branches of {REMOTE}")
        raise RemoteError(f"cannot list branches of {REMOTE}: {text}")
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip() == f"refs/heads/{branch}":
            return sha.strip()
    return None


def fetch_commit(root: Path, sha: str) -> None:
    """Make ``sha`` (a tip seen by ls-remote) available locally, without creating any ref."""
    if rev_parse(root, sha) is None:
        remote, env = network_remote(root)
        git("fetch", "--no-tags", "--quiet", remote, sha, cwd=root, read_only=True, env=env)


def check_ref_name(branch: str) -> str:
    if (
        control_character(branch) is not None  # NUL would not even reach check-ref-format
        or branch.startswith("-")
        or not valid_ref_name(f"refs/heads/{branch}")
    ):
        raise UsageError(f"invalid branch name {branch!r}")
    return branch


_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")


def valid_ref_name(ref: str) -> bool:
    """``git check-ref-format <ref>`` without a process (every fetch and write asked it once or
    twice): the rules of git-check-ref-format(1) as refs.c applies them. No control character,
    space, ``~ ^ : ? * [ \\``, ``..`` or ``@{``; no empty component (leading, trailing or double
    ``/``), none starting with ``.`` or ending with ``.lock``; not ending with ``.``; not ``@``;
    at least two components. tests/unit/test_git_trailers.py compares it with git itself.
    """
    if _REF_FORBIDDEN.search(ref) or ref.endswith(".") or ref == "@":
        return False
    components = ref.split("/")
    return len(components) > 1 and all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in components
    )


def local_branch_exists(root: Path, branch: str) -> bool:
    return _query(root, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}", check=False).ok


# -- log and trailers ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Commit:
    sha: str
    date: str  # strict ISO 8601 committer date
    author: str
    subject: str
    trailers: Mapping[str, tuple[str, ...]]
    # git's %G? letter (G B U X Y R E N) when the log asked for signatures, else "".
    signature: str = ""

    def trailer(self, key: str) -> str | None:
        values = self.trailers.get(key.lower())
        return values[-1] if values else None

    @property
    def signed(self) -> bool:
        """The commit carries a signature (good, bad, expired, revoked, or not checkable)."""
        return self.signature in SIGNED

    @property
    def verified(self) -> bool:
        """git verified the signature against the configured signers (%G? is G).

        Not U: for ssh that is "good signature, key not in gpg.ssh.allowedSignersFile" (anyone can
        make one with their own key); for gpg, a good signature by a key of unknown trust.
        """
        return self.signature == "G"


# https://git-scm.com/docs/pretty-formats#Documentation/pretty-formats.txt-emGem: every letter but
# N ("no signature") means the commit carries one.
SIGNED = frozenset("GBUXYRE")


def parse_trailers(text: str) -> dict[str, tuple[str, ...]]:
    """``Key: value`` lines (as ``%(trailers:only,unfold)`` prints them), keys lower-cased."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = _TRAILER_RE.match(line.strip())
        if match:
            found.setdefault(match.group(1).lower(), []).append(match.group(2).strip())
    return {key: tuple(values) for key, values in found.items()}


def log(
    root: Path,
    rev: str,
    path: str | None = None,
    *,
    limit: int | None = None,
    skip: int = 0,
    signatures: bool = False,
) -> list[Commit]:
    """Commits of ``rev`` (touching ``path``), newest first, with their trailers.

    ``limit``/``skip``: a window of that list (``history`` reads it a window at a time). A field
    read from another format placeholder goes into ``fields`` below, into the unpacking and into
    :class:`Commit`; ``history`` builds its entries from these commits. ``signatures``: also git's
    verdict on each commit's signature (``%G?`` in the same format, so still one ``git log``; git
    itself starts gpg or ssh-keygen for each *signed* commit only).
    """
    fields = ["%H", "%cI", "%an", "%s", "%(trailers:only,unfold)"]
    if signatures:
        fields.append("%G?")
    fmt = _FIELD.join(fields) + _RECORD
    args = ["log", f"--format={fmt}"]
    if limit is not None:
        args.append(f"--max-count={limit}")
    if skip:
        args.append(f"--skip={skip}")
    args += [rev, "--"]
    if path is not None:
        args.append(path)
    result = _query(root, *args)
    if signatures and _SIGNERS_UNSET in result.stderr:
        result = _query(root, "-c", f"gpg.ssh.allowedSignersFile={os.devnull}", *args)
    out = result.stdout
    commits: list[Commit] = []
    for raw in out.split(_RECORD):
        record = raw.strip("\n")
        if not record.strip():
            continue
        sha, date, author, subject, trailers, signature = (record.split(_FIELD) + [""] * 6)[:6]
        commits.append(
            Commit(
                sha=sha.strip(),
                date=date,
                author=author,
                subject=subject,
                trailers=parse_trailers(trailers),
                signature=signature.strip(),
            )
        )
    return commits


# An ssh-signed commit and no gpg.ssh.allowedSignersFile configured: git reports the commit as N,
# "no signature", and says on stderr "gpg.ssh.allowedSignersFile needs to be configured and exist
# for ssh signature verification" (translations keep config names: git's po/README.md). With an empty list of
# allowed signers git checks the signature without a principal (`ssh-keygen -Y check-novalidate`)
# and says U: signed, not verified. So the log is asked again with that list, only then: asking
# git config first cost every history a process, for the few clones with ssh-signed commits.
# https://git-scm.com/docs/git-config#Documentation/git-config.txt-gpgsshallowedSignersFile
_SIGNERS_UNSET = "gpg.ssh.allowedSignersFile"


def oneline(root: Path, old: str, new: str, *, limit: int = 200) -> list[str]:
    """``git log --oneline old..new`` lines."""
    out = _query(root, "log", "--oneline", "--no-decorate", f"--max-count={limit}", f"{old}..{new}").stdout
    return [line for line in out.splitlines() if line.strip()]


def changed_paths(root: Path, sha: str) -> list[str]:
    """Paths a (non-merge) commit changes."""
    out = _query(root, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).stdout
    return [line for line in out.splitlines() if line.strip()]


def parents(root: Path, sha: str) -> list[str]:
    return _query(root, "rev-list", "--parents", "-n", "1", sha).stdout.split()[1:]


def diff_commit(root: Path, commit: str, *, reverse: bool = False, path: str | None = None) -> str:
    """The patch a commit makes (``reverse``: the patch that undoes it; ``path``: of that file only)."""
    args = ["diff", f"{commit}^", commit] if not reverse else ["diff", commit, f"{commit}^"]
    return _query(root, *args, *(("--", path) if path is not None else ())).stdout


# -- writing ---------------------------------------------------------------------------------


NO_HOOKS = "no-hooks"


def _hookless(wt: Path) -> tuple[str, ...]:
    """``-c core.hooksPath=<empty dir>`` for commands in our temporary worktree.

    The user's hooks (pre-commit, post-checkout, pre-push, ...) are for their own edits; a
    one-line overlay change made by a tool must not depend on their hook environment, nor
    trigger it. An empty directory instead of /dev/null works on Windows too.
    """
    empty = wt.parent / NO_HOOKS
    return ("-c", f"core.hooksPath={empty}") if empty.is_dir() else ()


# For commits in our temporary worktree: git commit and revert otherwise start `git maintenance run
# --auto` (gc.auto) after each one, a process that competes with the render check for the CPU
# while the write waits on it. The objects are the user's repository's; its own git commands
# still run the maintenance.
_NO_AUTO_GC = ("-c", "gc.auto=0", "-c", "maintenance.auto=false")


@contextlib.contextmanager
def worktree(root: Path, rev: str) -> Iterator[Path]:
    """A temporary detached worktree of ``rev``; removed (and pruned) on any exit, Ctrl-C included.

    Detached, so no branch is created or checked out: the user's branches stay as they are.
    """
    holder = Path(tempfile.mkdtemp(prefix="dex-worktree-"))
    path = holder / "wt"
    (holder / NO_HOOKS).mkdir()
    added = removed = False
    try:
        # No LFS smudge: the overlays are small text files, and a checkout must not download blobs.
        git(*_hookless(path), "worktree", "add", "--quiet", "--detach", path, rev, cwd=root,
            env={"GIT_LFS_SKIP_SMUDGE": "1"})  # fmt: skip
        added = True
        yield path
    finally:
        # Shielded from a second Ctrl-C as far as Python allows: each step is independent.
        try:
            removed = (added or path.exists()) and git(
                "worktree", "remove", "--force", path, cwd=root, check=False, quiet=True
            ).ok
        finally:
            shutil.rmtree(holder, ignore_errors=True)
            if not removed:  # a removed worktree leaves nothing to prune; else its record goes
                git("worktree", "prune", cwd=root, check=False, quiet=True)


def identity_env(root: Path) -> dict[str, str | None]:
    """Author/committer variables when git has no identity configured (fresh CI runners)."""
    # Not `git var GIT_COMMITTER_IDENT`: git may guess user@hostname, which on a CI runner is a
    # meaningless identity in the audit trail. Only an explicitly configured one counts.
    missing = [part for part in ("NAME", "EMAIL") if not os.environ.get(f"GIT_COMMITTER_{part}")]
    if missing:
        # Both keys in one process: `--get-regexp` lists the ones set (exit 1 when none is).
        out = _query(root, "config", "--get-regexp", r"^user\.(name|email)$", check=False).stdout
        found = {line.split(" ", 1)[0].lower() for line in out.splitlines() if line.strip()}
        missing = [part for part in missing if f"user.{part.lower()}" not in found]
    configured = not missing
    if configured:
        return {}
    name, email = (ACTIONS_NAME, ACTIONS_EMAIL) if gha.active() else (FALLBACK_NAME, FALLBACK_EMAIL)
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def commit(wt: Path, message: str, paths: Sequence[str], *, root: Path, sign: bool = False) -> str:
    """Commit ``paths`` in worktree ``wt`` with ``message``; return the new commit id.

    ``--no-verify``: the user's own pre-commit hooks are for their edits; a one-line overlay
    edit made by a tool in a temporary worktree must not depend on their hook environment.
    ``sign``: ``-S``, signed with the user's own git signing setup (``gpg.format``,
    ``user.signingkey``); git failing to sign is a :class:`UsageError` (exit 2), raised before
    anything is pushed.
    """
    # `commit -- <paths>` stages and commits those (tracked) files: no `git add` process first.
    try:
        git(*_hookless(wt), *_NO_AUTO_GC, "commit", "--quiet", "--no-verify", *_sign(sign), "--file=-", "--",
            *paths, cwd=wt, stdin=message, env=identity_env(root))  # fmt: skip
    except CommandFailed as exc:
        raise _signing_error(exc, sign=sign) from None
    return head(wt)


def amend_message(wt: Path, message: str, *, root: Path, sign: bool = False) -> str:
    """Replace the message of ``wt``'s HEAD commit; ``sign``: (re-)sign it, as :func:`commit`."""
    try:
        git(
            *_hookless(wt),
            *_NO_AUTO_GC,
            "commit",
            "--quiet",
            "--amend",
            "--no-verify",
            *_sign(sign),
            "--file=-",
            cwd=wt,
            stdin=message,
            env=identity_env(root),
        )
    except CommandFailed as exc:
        raise _signing_error(exc, sign=sign) from None
    return head(wt)


def revert(wt: Path, sha: str, *, root: Path) -> str:
    """``git revert`` ``sha`` in ``wt``. Never signed here: the caller rewrites the message with
    :func:`amend_message`, which signs the commit that leaves the worktree (one signature, one
    pinentry prompt, instead of two)."""
    try:
        git(*_hookless(wt), *_NO_AUTO_GC, "revert", "--no-edit", sha, cwd=wt, env=identity_env(root))
    except CommandFailed as exc:
        signing = _signing_error(exc, sign=False)  # a user's commit.gpgSign = true that cannot sign
        if signing is not exc:
            raise signing from None
        raise UsageError(f"git revert of {sha[:12]} does not apply cleanly: {exc.stderr_tail}") from None
    return head(wt)


def _sign(sign: bool) -> tuple[str, ...]:
    # Only ever added, never `--no-gpg-sign`: a user's commit.gpgSign = true still applies.
    return ("-S",) if sign else ()


def _signing_error(exc: CommandFailed, *, sign: bool) -> DexError:
    """git failing to sign (no key, gpg or ssh-keygen failing): exit 2 in one line; else ``exc``.

    git's own words are kept (``error: gpg failed to sign the data``, ``fatal: either
    user.signingkey or gpg.ssh.defaultKeyCommand needs to be configured``, ``Couldn't load public
    key``); its last line, ``fatal: failed to write commit object``, says nothing and is dropped.
    """
    text = exc.stderr_tail
    lower = text.lower()
    unwritten = "failed to write commit object" in lower
    about_signing = any(marker in lower for marker in ("sign", "gpg", "ssh-keygen"))
    # Without `sign`, a user's commit.gpgSign = true may be what failed: the same advice applies.
    if not ((unwritten or about_signing) if sign else (unwritten and about_signing)):
        return exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if "failed to write commit object" not in line]
    detail = (useful or lines or [f"exit {exc.returncode}"])[0]
    return UsageError(
        f"git could not sign the commit ({detail}); configure signing (gpg.format, user.signingkey: "
        "https://git-scm.com/docs/git-config#Documentation/git-config.txt-usersigningKey); nothing was pushed"
    )


def head(wt: Path) -> str:
    # In dry-run nothing was committed; the echo already showed the commands.
    result = _query(wt, "rev-parse", "HEAD", check=False) if wt.exists() else None
    return result.stdout.strip() if result is not None and result.ok else ""


def message_body(root: Path, sha: str) -> str:
    return _query(root, "log", "-1", "--format=%B", sha).stdout


@dataclasses.dataclass(frozen=True, kw_only=True)
class PushResult:
    ok: bool
    stale: bool  # rejected because the remote ref moved on (see _MOVED: a race, lost on either side)
    transient: bool  # the connection failed; the same push may well succeed a moment later
    detail: str


def push(
    wt: Path, src: str, branch: str, *, lease: str | None = None, new_branch: bool = False
) -> PushResult:
    """Push ``src`` to ``refs/heads/<branch>`` on origin.

    ``lease``: the commit the remote branch must still be at (``--force-with-lease``), for
    re-pushing our own PR branch. ``new_branch``: the branch must not exist yet (lease on "").
    ``--no-verify``: skip the user's pre-push hooks, as for commits.
    """
    args: list[str] = [*_hookless(wt), "push", "--porcelain", "--no-verify"]
    ref = f"refs/heads/{branch}"
    if lease is not None:
        args.append(f"--force-with-lease={ref}:{lease}")
    elif new_branch:
        args.append(f"--force-with-lease={ref}:")
    remote, env = network_remote(wt, push=True)
    args += [remote, f"{src}:{ref}"]
    result = git(*args, cwd=wt, check=False, env=env)
    if result.skipped or result.ok:
        return PushResult(ok=True, stale=False, transient=False, detail="")
    text = redact.redact((result.stdout + "\n" + result.stderr).strip())
    refuse_configuration(text, f"cannot push to {branch} on {REMOTE}", outcome="nothing was pushed")
    stale = any(marker in text.lower() for marker in _MOVED)
    transient = not stale and any(marker in text.lower() for marker in _TRANSIENT)
    return PushResult(
        ok=False, stale=stale, transient=transient, detail=_push_detail(text, result.returncode)
    )


def _push_detail(text: str, returncode: int) -> str:
    """The one informative line: the porcelain ``!`` line's reason, else git's first fatal/error."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    remote = next((line for line in lines if line.startswith("remote:") and len(line) > 8), "")
    for line in lines:
        if line.startswith("!"):
            reason = line.split("\t")[-1].strip()
            return f"{reason}: {remote}" if remote else reason
    for line in lines:
        if line.startswith(("fatal:", "error:", "remote:")):
            return line
    return lines[-1] if lines else f"git push exited with {returncode}"


# The remote branch moved under us. Client side (git's transport.c, the porcelain reason):
# "fetch first" / "non-fast-forward" when the advertisement already showed the new tip, "stale
# info" for a --force-with-lease that no longer holds. Server side, when a concurrent push won
# between the advertisement and the ref lock: receive-pack.c update() reports "failed to update
# ref" (older servers: "failed to lock"), with the backend's reason from refs/files-backend.c
# lock_raw_ref() / refs/reftable-backend.c: "cannot lock ref '<ref>': is at X but expected Y",
# "... reference already exists" (a branch we create appeared), "... reference is missing but
# expected X", or "Unable to create '<ref>.lock': File exists" (the other push still holds the
# lock). GitHub words the same compare-and-swap failure "incorrect old value provided".
_MOVED = (
    "(fetch first)",
    "(non-fast-forward)",
    "(stale info)",
    "failed to update ref",
    "failed to lock",
    "cannot lock ref",
    "but expected",
    "reference already exists",
    "incorrect old value",
    ".lock': file exists",
)

# Network failures worth another try (git's own wording, over https and ssh).
_TRANSIENT = (
    "could not resolve host",
    "connection timed out",
    "connection reset",
    "connection refused",
    "the remote end hung up unexpectedly",
    "early eof",
    "rpc failed",
    "operation timed out",
    "failed to connect",
    "returned error: 5",  # HTTP 5xx from the git server
    "temporary failure",
)


def set_local_branch(root: Path, branch: str, sha: str) -> None:
    """Point local ``branch`` at ``sha`` without checking it out (refused for the current branch)."""
    git("branch", "--force", "--no-track", branch, sha, cwd=root)
