"""The one error tree. Each class carries the exit code that ``cli.py`` maps it to.

Every error dex-tasks raises on purpose is defined here, so the exit-code table below is the
whole truth: 0 done or nothing to do; 1 a check failed; 2 bad input or configuration (nothing
changed); 3 a required tool is missing; 4 a remote still failed after bounded retries; 70 an
internal error (a bug); 130 interrupted. ``str()`` of an error is the one line users see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_TOOL_MISSING = 3
EXIT_REMOTE = 4
EXIT_INTERNAL = 70  # EX_SOFTWARE in BSD's sysexits.h: "an internal software error has been detected"
EXIT_INTERRUPTED = 130


class DexError(Exception):
    """Base of every error dex-tasks raises on purpose; ``str()`` is the one line users see."""

    exit_code: int = EXIT_CHECK_FAILED
    #: Fields for the ``--json`` object beside ``error`` and ``exit_code`` (e.g. the GitOps keys
    #: of a refused change, so a caller reads one shape whether it was refused or done).
    data: Mapping[str, object] | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


# -- 2: bad input or configuration -------------------------------------------------------------


class UsageError(DexError):
    """Bad input: arguments, tags, env names, files. Raised before anything is changed."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """``[tool.dex]`` is invalid: unknown key, wrong type, unreadable file."""


class CredentialInContextError(UsageError):
    """image-build: the build context would send a credential (``.git/config``) to the builder."""


class MalformedReportError(UsageError):
    """The file is not a trivy JSON report we understand (exit 2, naming the file)."""


class GitRemoteConfigError(UsageError):
    """git refused the origin for a reason of configuration, not of the network: a forbidden
    transport (``ext::``, ``file://`` with ``protocol.file.allow=never``), an unknown protocol, bad
    credentials. Retrying cannot help (exit 2)."""


class UnsafePathError(UsageError):
    """A path a task would read or write leads outside the repository: a symbolic link (or a
    submodule) on the way, an absolute path, or ``..``. Refused before anything is written."""


class ForeignHostError(UsageError):
    """The origin is not on github.com and GITHUB_API_URL does not say where its API is."""

    def __init__(self, message: str, *, host: str) -> None:
        super().__init__(message)
        self.host = host


# -- 1: a check said no ----------------------------------------------------------------------------


class AlreadyRolledBackError(DexError):
    """``rollback ENV`` without TAG when ENV's newest overlay commit is already a rollback: a re-run
    job would go one more tag back. ``--again`` means it; ``rollback ENV TAG`` is idempotent."""

    def __init__(self, message: str, *, data: Mapping[str, object]) -> None:
        super().__init__(message)
        self.data = data


# -- 3: a tool is missing ------------------------------------------------------------------------


class ToolMissing(DexError):
    """A binary a task needs is not on PATH."""

    exit_code = EXIT_TOOL_MISSING

    def __init__(self, tool: str, *, hint: str | None = None) -> None:
        super().__init__(f"required tool {tool!r} was not found on PATH", hint=hint)
        self.tool = tool


# -- 1: a command said no ------------------------------------------------------------------------


class CommandFailed(DexError):
    """A command exited non-zero. Carries argv, exit code and the tail of its output.

    The message is built by ``proc`` after secrets are redacted, so it is safe to print.
    """

    exit_code = EXIT_CHECK_FAILED

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int | None,
        stderr_tail: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class CommandTimeout(CommandFailed):
    """A command ran longer than its timeout and was killed."""


class ControlRefused(DexError):
    """A deploy control said no: the env is locked or frozen, or FROM has not soaked (exit 1)."""


class ImageMissingError(DexError):
    """``<image>:<tag>`` is not in the registry: a deploy of it would pull nothing (exit 1)."""


class ScanGateError(DexError):
    """The digest has no passing scan verdict, and the env requires one (exit 1, nothing written)."""


# -- 4: a remote still failed --------------------------------------------------------------------


class RemoteError(DexError):
    """A remote (git push, GitHub, registry, cluster) still failed after bounded retries."""

    exit_code = EXIT_REMOTE


class RolloutIncompleteError(RemoteError):
    """``rollback --emergency`` changed the workload's image, but its rollout was not seen to
    finish (a stall, Degraded, or the cluster stopped answering): exit 4, git untouched."""


class RegistryError(RemoteError):
    """A registry answered a v2 API request with an error after auth and retries (exit 4).

    ``codes`` are the spec's error codes from the body (``MANIFEST_INVALID``, ``MANIFEST_BLOB_UNKNOWN``,
    ...), ``detail`` the first error's detail when it is a string (distribution names the digest).
    """

    def __init__(self, message: str, *, status: int, codes: Sequence[str] = (), detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.codes = tuple(codes)
        self.detail = detail


class BadContentError(RemoteError):
    """A registry served content that does not match its digest, or more than a reader accepts."""


class MalformedVerdictError(UsageError):
    """A scan verdict's JSON does not have the v1 shape (exit 2); readers skip such artifacts."""


class ArgoCDError(RemoteError):
    """The Argo CD CLI failed talking to the server (auth, connection, API error)."""


class ArgoCDAccessError(UsageError, ArgoCDError):
    """Argo CD's REST API refused the token (401 expired or invalid, 403 not allowed): exit 2.

    Configuration, not a flaky remote: asking again gives the same answer. Still an
    :class:`ArgoCDError`, so code that handles "Argo CD said no" handles this too.
    """


class GitHubAccessError(UsageError, RemoteError):
    """GitHub refused the token or does not show the repository (401, a 403 that is not a rate
    limit, 404): exit 2 with the fix (the token's permissions, the repository name).

    Configuration, not a flaky remote, so nothing was retried. Still a :class:`RemoteError`:
    callers that handle "GitHub said no" handle this too; the exit code comes from UsageError.
    """


class AppNotFoundError(ArgoCDError):
    """``rpc error: code = NotFound desc = applications.argoproj.io "x" not found``, or (Argo CD
    2.5+, for ``app get``) ``code = PermissionDenied desc = permission denied``: no such app."""


class ClusterAccessError(DexError):
    """kubectl cannot use the cluster at all (as opposed to an answer from the API server).

    ``status`` and the optional live check catch this one class and show "no cluster access"; the
    exit code, when it ends a task, comes from the concrete class below it.
    """


class ClusterUnreachableError(ClusterAccessError, RemoteError):
    """kubectl could not talk to the API server (network, TLS, auth rejected): exit 4."""


class ForbiddenError(ClusterUnreachableError):
    """RBAC denied the request: no access to *this* namespace (others may be fine)."""


class KubeconfigError(ClusterAccessError, UsageError):
    """The kubeconfig is unusable: unknown context, invalid file, a user without credentials.

    Configuration, so exit 2: retrying will not help.
    """


class NoRolloutsError(UsageError):
    """``workload = "Rollout"``, but the cluster does not serve the kind (no Argo Rollouts CRD):
    kubectl's ``the server doesn't have a resource type "rollouts"``. Configuration: exit 2."""


# -- 70: a bug -----------------------------------------------------------------------------------


class InternalError(DexError):
    """dex-tasks caught itself doing something it must not (a bug, not bad input): exit 70."""

    exit_code = EXIT_INTERNAL


class OverlayInternalError(InternalError):
    """The splice produced something other than the intended one-value change."""
