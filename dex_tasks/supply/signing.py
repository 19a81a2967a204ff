"""Signed overlay commits (``[tool.dex] sign-commits``): can git sign here, before anything is made?

The commits themselves are signed by git with the user's own setup (``git commit -S``, see
:func:`dex_tasks.tools.git.commit`): gpg by default, ssh with ``gpg.format = ssh``, gpgsm with
``x509``. This module is the read-only pre-check that runs before the temporary worktree is created
(and so in ``--dry-run`` too): a setup with which git cannot sign at all is refused with exit 2 and
one line saying what to configure, instead of a worktree made and a commit failing half-way.

What it can tell without signing anything (git's rules, https://git-scm.com/docs/git-config:
``gpg.format``, ``gpg.<format>.program``, ``user.signingKey``, ``gpg.ssh.defaultKeyCommand``):

- ssh: ``user.signingkey`` (or ``gpg.ssh.defaultKeyCommand``) must be set; a key *file* must exist
  and be an absolute path (git reads a relative one from the directory it runs in, which is our
  temporary worktree); ``ssh-keygen`` must be there. A literal ``key::ssh-...`` needs the ssh-agent,
  which only the signing itself can ask.
- openpgp: the gpg program must exist and hold a secret key (``user.signingkey``'s, or any: git
  then asks gpg for the committer's).
- x509: the gpgsm program must exist.

Whatever the pre-check cannot see (a locked agent, a wrong passphrase) fails at ``git commit -S``
in the worktree, which is still before the push: :func:`dex_tasks.tools.git.commit` turns that into
exit 2 as well, and the worktree is removed as on every exit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dex_tasks import proc
from dex_tasks.errors import ToolMissing, UsageError
from dex_tasks.tools import git

FORMATS = ("openpgp", "x509", "ssh")
_DEFAULT_PROGRAMS = {"openpgp": "gpg", "x509": "gpgsm", "ssh": "ssh-keygen"}
_HINTS = {
    "gpg": "install GnuPG (https://gnupg.org/download/; Debian: apt-get install gnupg)",
    "gpgsm": "install GnuPG's gpgsm (Debian: apt-get install gpgsm)",
    "ssh-keygen": "install the OpenSSH client (Debian: apt-get install openssh-client)",
}
# A literal public key in user.signingkey instead of a file: "key::ssh-ed25519 AAAA..." (git 2.35+),
# or the older bare "ssh-ed25519 AAAA..." git still accepts.
_LITERAL_PREFIXES = ("key::", "ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")
CONFIGURE = "https://git-scm.com/docs/git-config#Documentation/git-config.txt-usersigningKey"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Setup:
    """The signing setup git will use: ``gpg.format``, its program, ``user.signingkey`` (may be empty)."""

    format: str
    program: str
    key: str
    key_command: bool = False  # gpg.ssh.defaultKeyCommand is set: git asks it for the key


def read_setup(root: Path) -> Setup:
    """``gpg.*`` and ``user.signingkey`` as git resolves them for ``root`` (one ``git config``)."""
    result = git.git(
        "config", "--null", "--get-regexp", r"^(gpg\.|user\.signingkey$)",
        cwd=root, read_only=True, check=False, quiet=True,
    )  # fmt: skip
    values: dict[str, str] = {}
    for entry in result.stdout.split("\0"):
        key, _, value = entry.partition("\n")
        if key:
            values[key.lower()] = value  # the last one wins, as in git
    fmt = values.get("gpg.format", "openpgp").strip().lower() or "openpgp"
    if fmt not in FORMATS:
        raise UsageError(f"git config gpg.format is {fmt!r}: git knows {', '.join(FORMATS)}")
    if fmt == "openpgp":
        program = values.get("gpg.openpgp.program") or values.get("gpg.program") or ""
    else:
        program = values.get(f"gpg.{fmt}.program", "")
    return Setup(
        format=fmt,
        program=program or _DEFAULT_PROGRAMS[fmt],
        key=values.get("user.signingkey", "").strip(),
        key_command=bool(values.get("gpg.ssh.defaultkeycommand", "").strip()),
    )


def require(root: Path, envs: tuple[str, ...]) -> Setup:
    """Refuse (exit 2; exit 3 for a missing default program) when git cannot sign in ``root``.

    Read-only: runs under ``--dry-run`` too, so the plan refuses exactly where the real run would.
    """
    setup = read_setup(root)
    why = f"[tool.dex] sign-commits requires signed commits for {'/'.join(envs)}"
    _require_program(setup, why)
    if setup.format == "ssh":
        _require_ssh_key(setup, why)
    elif setup.format == "openpgp":
        _require_gpg_key(setup, why)
    return setup


def _require_program(setup: Setup, why: str) -> None:
    if proc.which(setup.program) is not None:
        return
    if setup.program == _DEFAULT_PROGRAMS[setup.format]:
        raise ToolMissing(setup.program, hint=f"{why}: {_HINTS[setup.program]}")
    raise UsageError(
        f"{why}, but git's signing program {setup.program!r} (gpg.{setup.format}.program) is not on PATH"
    )


def _require_ssh_key(setup: Setup, why: str) -> None:
    key = setup.key
    if not key:
        if setup.key_command:
            return  # git asks gpg.ssh.defaultKeyCommand for the key: nothing to check before signing
        raise UsageError(
            f"{why}, but gpg.format is ssh and user.signingkey is not set: "
            "git config user.signingkey ~/.ssh/id_ed25519.pub"
        )
    if key.startswith(_LITERAL_PREFIXES):
        return  # a public key: the private half is in the ssh-agent, which only signing can ask
    # git expands ~ in this path (interpolate_path); Path.expanduser does the same.
    path = Path(key).expanduser()
    if not path.is_absolute():
        raise UsageError(
            f"{why}, but user.signingkey {key!r} is a relative path, which git reads from the "
            "directory it runs in (dex-tasks commits in a temporary worktree): use an absolute path or ~/"
        )
    if not path.is_file():
        raise UsageError(
            f"{why}, but user.signingkey {key!r} does not exist (gpg.format = ssh): "
            "point it at your ssh key file, e.g. git config user.signingkey ~/.ssh/id_ed25519.pub"
        )


def _require_gpg_key(setup: Setup, why: str) -> None:
    argv = [setup.program, "--batch", "--with-colons", "--list-secret-keys"]
    if setup.key:
        argv += ["--", setup.key]
    # Listing keys needs no passphrase and prompts for nothing (it may create gpg's home directory).
    result = proc.run(tuple(argv), read_only=True, check=False, quiet=True)
    has_secret = any(line.startswith("sec:") for line in result.stdout.splitlines())
    if result.ok and has_secret:
        return
    which = f"the key {setup.key!r} (user.signingkey)" if setup.key else "any key"
    raise UsageError(
        f"{why}, but gpg has no secret key for {which}: import one (gpg --import) and "
        "git config user.signingkey <key id>, or use ssh keys with git config gpg.format ssh"
    )
