"""``completion {bash | zsh | fish}``: a shell completion script built from the parser itself.

The script is generated from the entry layer's full parser (``Context.build_parser``, passed in so
this module does not import ``cli``): every task, its options, the choices of its positionals and
option values. Environment names are not baked in - they depend on the repository - so the script
asks ``dex-tasks [-C DIR] completion --list-envs`` (hidden) at completion time, which prints the
``[tool.dex] environments`` of the project the command line is in.

bash: ``source <(dex-tasks completion bash)``; zsh: the same script through ``bashcompinit``
(``source <(dex-tasks completion zsh)``); fish: ``dex-tasks completion fish | source``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from typing import TYPE_CHECKING

from dex_tasks import __version__
from dex_tasks.errors import InternalError, UsageError
from dex_tasks.tasks import Context, TaskResult

if TYPE_CHECKING:
    from collections.abc import Iterable

SHELLS = ("bash", "zsh", "fish")
PROG = "dex-tasks"
# Positionals that name an environment: their values come from --list-envs at completion time.
ENV_METAVARS = ("ENV", "FROM", "TO")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", nargs="?", choices=SHELLS, help="the shell to print the script for")
    # What the scripts call at completion time; not for people, so not in --help.
    parser.add_argument("--list-envs", action="store_true", help=argparse.SUPPRESS)


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:
    if args.list_envs:
        ctx.out("\n".join(ctx.config.environments))
        return TaskResult(data={"environments": list(ctx.config.environments)})
    if args.shell is None:
        raise UsageError(f"name a shell: completion {{{' | '.join(SHELLS)}}}")
    if ctx.build_parser is None:  # the CLI always passes it; only a caller that forgot would get here
        raise InternalError("completion needs the entry layer's parser (Context.build_parser)")
    model = describe(ctx.build_parser())
    script = RENDERERS[args.shell](model)
    if ctx.json:
        return TaskResult(data={"shell": args.shell, "script": script})
    ctx.out(script.rstrip("\n"))
    return TaskResult(data={"shell": args.shell})


# -- the parser as data ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Option:
    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    words: tuple[str, ...]  # choices of positionals and names of sub-commands (preview list, ...)
    envs: bool  # a positional names an environment


@dataclasses.dataclass(frozen=True, kw_only=True)
class Model:
    global_options: tuple[Option, ...]
    commands: tuple[Command, ...]


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return list(parser._actions)  # noqa: SLF001 - argparse has no public way to list a parser's arguments


def _subparsers(action: argparse.Action) -> dict[str, argparse.ArgumentParser]:
    choices = action.choices
    if isinstance(choices, dict) and all(isinstance(p, argparse.ArgumentParser) for p in choices.values()):
        return dict(choices)
    return {}


def _option(action: argparse.Action) -> Option:
    choices = tuple(str(c) for c in action.choices) if action.choices else ()
    return Option(
        flags=tuple(action.option_strings),
        help=" ".join(str(action.help or "").split()),
        takes_value=action.nargs != 0,
        choices=choices,
    )


def _walk(parser: argparse.ArgumentParser) -> tuple[list[Option], list[str], bool]:
    """Options, positional words and whether an env is asked for, of ``parser`` and its sub-commands."""
    options: list[Option] = []
    words: list[str] = []
    envs = False
    for action in _actions(parser):
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            options.append(_option(action))
            continue
        subs = _subparsers(action)
        if subs:
            words.extend(subs)
            for sub in subs.values():
                sub_options, sub_words, sub_envs = _walk(sub)
                options.extend(o for o in sub_options if o.flags not in {x.flags for x in options})
                words.extend(w for w in sub_words if w not in words)
                envs = envs or sub_envs
        elif action.choices:
            words.extend(str(c) for c in action.choices)
        elif isinstance(action.metavar, str) and action.metavar.split()[0] in ENV_METAVARS:
            envs = True
    return options, words, envs


def describe(parser: argparse.ArgumentParser) -> Model:
    """The whole parser as plain data: the one source of every script below."""
    global_options: list[Option] = []
    commands: list[Command] = []
    for action in _actions(parser):
        if action.option_strings:
            if action.help != argparse.SUPPRESS:
                global_options.append(_option(action))
            continue
        for name, sub in _subparsers(action).items():
            options, words, envs = _walk(sub)
            commands.append(
                Command(
                    name=name,
                    help=" ".join((sub.description or "").split()),
                    options=tuple(options),
                    words=tuple(words),
                    envs=envs,
                )
            )
    return Model(global_options=tuple(global_options), commands=tuple(commands))


# -- bash (and zsh through bashcompinit) -----------------------------------------------------------


def _words(items: Iterable[str]) -> str:
    return shlex.quote(" ".join(items))


def _flags(options: Iterable[Option]) -> list[str]:
    return [flag for option in options for flag in option.flags]


def render_bash(model: Model) -> str:
    tasks = [command.name for command in model.commands]
    global_flags = _flags(model.global_options)
    cases: list[str] = []
    values: list[str] = []
    for command in model.commands:
        flags = _flags(command.options)
        cases.append(
            f"        {command.name}) opts={_words(flags)}; words={_words(command.words)}; "
            f"envs={int(command.envs)} ;;"
        )
        for option in command.options:
            if not option.takes_value or "-C" in option.flags:  # -C DIR is handled once, above
                continue
            reply = (
                f'COMPREPLY=( $(compgen -W {_words(option.choices)} -- "$cur") )' if option.choices else ""
            )
            # An option's value: its choices, or nothing (bash's -o default offers files).
            values.extend(
                f'        "{command.name} {flag}") {reply or ":"}; return 0 ;;' for flag in option.flags
            )
    return f"""\
# bash completion for {PROG} {__version__}, generated from its argument parser.
# Load it with: source <({PROG} completion bash)
# Environment names come from the project's [tool.dex] at completion time ({PROG} completion --list-envs).
_dex_tasks() {{
    local cur prev task="" dir="" i word opts="" words="" envs=0
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev=""
    if (( COMP_CWORD > 0 )); then prev="${{COMP_WORDS[COMP_CWORD-1]}}"; fi
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in
            -C|--directory) i=$(( i + 1 )); dir="${{COMP_WORDS[i]}}" ;;
            --directory=*) dir="${{word#--directory=}}" ;;
            -C?*) dir="${{word#-C}}" ;;
            -*) ;;
            *) if [[ -z "$task" ]]; then task="$word"; fi ;;
        esac
    done
    case "$prev" in
        -C|--directory) COMPREPLY=( $(compgen -d -- "$cur") ); return 0 ;;
    esac
    if [[ -z "$task" ]]; then
        COMPREPLY=( $(compgen -W {_words([*tasks, *global_flags])} -- "$cur") )
        return 0
    fi
    case "$task" in
{chr(10).join(cases)}
        *) return 0 ;;
    esac
    case "$task $prev" in
{chr(10).join(values) if values else '        "") ;;'}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
        return 0
    fi
    if (( envs )); then
        if [[ -n "$dir" ]]; then
            words="$words $("${{COMP_WORDS[0]}}" -C "$dir" completion --list-envs 2>/dev/null)"
        else
            words="$words $("${{COMP_WORDS[0]}}" completion --list-envs 2>/dev/null)"
        fi
    fi
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
    return 0
}}
complete -o default -F _dex_tasks {PROG}
"""


def render_zsh(model: Model) -> str:
    # zsh runs the bash function through bashcompinit: one implementation, one set of tests.
    return f"""\
#compdef {PROG}
# zsh completion for {PROG} {__version__} (the bash completion through zsh's bashcompinit).
# Load it with: source <({PROG} completion zsh)
if ! (( $+functions[compdef] )); then
    autoload -Uz compinit && compinit -u
fi
autoload -Uz +X bashcompinit && bashcompinit
{render_bash(model)}"""


# -- fish ----------------------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(option: Option, condition: str) -> str:
    parts = [f"complete -c {PROG}"]
    if condition:
        parts.append(f"-n {_fish_quote(condition)}")
    for flag in option.flags:
        if flag.startswith("--"):
            parts.append(f"-l {flag[2:]}")
        else:
            parts.append(f"-s {flag[1:]}")
    if option.choices:
        parts.append(f"-x -a {_fish_quote(' '.join(option.choices))}")
    elif option.takes_value:
        parts.append("-r")
    if option.help:
        parts.append(f"-d {_fish_quote(option.help)}")
    return " ".join(parts)


def render_fish(model: Model) -> str:
    names = " ".join(command.name for command in model.commands)
    lines = [
        f"# fish completion for {PROG} {__version__}, generated from its argument parser.",
        f"# Load it with: {PROG} completion fish | source",
        "function __dex_tasks_envs",
        "    set -l cmd (commandline -opc)",
        "    set -l dir",
        "    for i in (seq (count $cmd))",
        "        if test $cmd[$i] = -C -o $cmd[$i] = --directory; and test $i -lt (count $cmd)",
        "            set dir $cmd[(math $i + 1)]",
        "        end",
        "    end",
        '    if test -n "$dir"',
        "        $cmd[1] -C $dir completion --list-envs 2>/dev/null",
        "    else",
        "        $cmd[1] completion --list-envs 2>/dev/null",
        "    end",
        "end",
    ]
    lines.extend(_fish_option(option, "") for option in model.global_options)
    not_yet = _fish_quote(f"not __fish_seen_subcommand_from {names}")
    lines.extend(
        f"complete -c {PROG} -n {not_yet} -f -a {command.name} -d {_fish_quote(command.help)}"
        for command in model.commands
    )
    for command in model.commands:
        seen = f"__fish_seen_subcommand_from {command.name}"
        if command.words:
            lines.append(
                f"complete -c {PROG} -n {_fish_quote(seen)} -f -a {_fish_quote(' '.join(command.words))}"
            )
        if command.envs:
            lines.append(f"complete -c {PROG} -n {_fish_quote(seen)} -f -a '(__dex_tasks_envs)'")
        lines.extend(_fish_option(option, seen) for option in command.options)
    return "\n".join(lines) + "\n"


RENDERERS = {"bash": render_bash, "zsh": render_zsh, "fish": render_fish}
