"""T5X-style gin flags: `--gin_file` (repeatable), `--gin.KEY=VALUE`, `--gin_search_paths`.

Files are parsed in the order given and `--gin.` bindings after all files, so a
later file or a command-line binding only ever overrides. Errors come back as one
`GinConfigError` whose message names the binding and the nearest valid names.
Importing this module registers the library names gin files use
(`prompt_tuning.configurables`); a job's own configurables come with its module.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import inspect
import logging
import os
import pathlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import gin

from prompt_tuning import configurables  # noqa: F401  (registers the names gin files use)
from prompt_tuning.errors import InputError


def _shipped_gin_dir() -> str:
    """`gin_configs/` inside an installed wheel, else the checkout's top-level `gin/`."""
    package = pathlib.Path(__file__).resolve().parent
    installed = package / "gin_configs"
    return str(installed if installed.is_dir() else package.parent / "gin")


SHIPPED_GIN_DIR = _shipped_gin_dir()


class GinConfigError(InputError):
    """A gin file or binding that cannot be used as written."""


def parse_flags(argv: Sequence[str]) -> argparse.Namespace:
    """Parses the gin flags; anything else is an error that names it."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        usage="%(prog)s --gin_file=FILE [--gin_file=FILE ...] [--gin.KEY=VALUE ...]",
        epilog="--gin.KEY=VALUE  bind a gin parameter (configurable.param) or macro (NAME), "
        "repeatable; applied after all gin files, so it overrides them.",
    )
    parser.add_argument("--gin_file", action="append", default=[], help="gin file (repeatable)")
    parser.add_argument(
        "--gin_search_paths", default="", help="comma-separated directories to find gin files in"
    )
    args, rest = parser.parse_known_args(list(argv))
    bindings, unknown = [], []
    for arg in rest:
        match = re.fullmatch(r"--gin\.([^=]+)=(.*)", arg, flags=re.S)
        if match:
            bindings.append(f"{match.group(1)} = {match.group(2)}")
        else:
            unknown.append(arg)
    if unknown:
        parser.error(
            f"unrecognised arguments: {' '.join(unknown)} (bindings look like --gin.KEY=VALUE)"
        )
    args.gin_bindings = bindings
    args.gin_search_paths = [p for p in args.gin_search_paths.split(",") if p]
    return args


# gin has no public way to list what is registered or bound, only to look up one
# name (`gin.get_configurable`, `gin.query_parameter`); these two functions are the
# only places that read its private state.
def _registered_selectors() -> Iterable[str]:
    """Every registered configurable's full selector (`module.name`)."""
    return [selector for selector, _ in gin.config._REGISTRY.items()]


def _parsed_bindings() -> Mapping[tuple[str, str], Mapping[str, Any]]:
    """Every binding parsed so far: (scope, selector) -> {parameter: value}."""
    return gin.config._CONFIG


def _registered_names() -> list[str]:
    return sorted({name for selector in _registered_selectors() for name in _suffixes(selector)})


def _suffixes(selector: str) -> Iterator[str]:
    parts = selector.split(".")
    for i in range(len(parts)):
        yield ".".join(parts[i:])


def _parameters_of(configurable_name: str) -> list[str]:
    try:
        return list(inspect.signature(gin.get_configurable(configurable_name)).parameters)
    except (KeyError, TypeError, ValueError):
        # Unknown or ambiguous names, and callables without a signature.
        return []


def _explain(error: Exception) -> str:
    """Adds the nearest valid names to gin's own unknown-name messages."""
    text = str(error).split("\n")[0]
    unknown_configurable = re.search(r"No configurable matching '([^']+)'", text)
    if unknown_configurable:
        name = unknown_configurable.group(1)
        near = difflib.get_close_matches(name, _registered_names(), n=5, cutoff=0.4)
        return f"Unknown gin configurable {name!r}." + (
            f" Nearest valid names: {', '.join(near)}." if near else ""
        )
    unknown_param = re.search(
        r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'", text
    )
    if unknown_param:
        configurable, param = unknown_param.groups()
        valid = _parameters_of(configurable)
        near = difflib.get_close_matches(param, valid, n=5, cutoff=0.4)
        return (
            f"Unknown gin binding {configurable}.{param}: {configurable!r} has no parameter "
            f"{param!r}."
            + (
                f" Nearest valid names: {', '.join(f'{configurable}.{n}' for n in near)}."
                if near
                else ""
            )
            + (f" Valid parameters: {', '.join(valid)}." if valid else "")
        )
    return str(error)


def _macro_references() -> set[str]:
    """Names of the macros that some binding (or macro) refers to as `%NAME`."""
    macro = gin.get_configurable("gin.macro")
    # A macro reference `%NAME` is a call of gin.macro in scope NAME.
    return {ref.scopes[-1] for ref in gin.config.iterate_references(_parsed_bindings(), to=macro)}


def _defined_macros() -> set[str]:
    return {scope for scope, selector in _parsed_bindings() if selector == "gin.macro"}


def _undefined_macros() -> list[str]:
    """Macros referenced by some binding but bound nowhere (gin only notices at call time)."""
    return sorted(_macro_references() - _defined_macros())


def _unused_macros(bindings: Sequence[str]) -> list[str]:
    """Macros bound by `bindings` (`NAME = value`, no dot) that no binding of the run uses.

    gin accepts such a binding silently, so a misspelt `TRAIN_STEP=3` would
    leave `TRAIN_STEPS` at its default.
    """
    bound = [b.split("=", 1)[0].strip() for b in bindings]
    used = _macro_references()
    return [name for name in bound if "." not in name and "/" not in name and name not in used]


def _unused_macro_error(unused: Sequence[str]) -> GinConfigError:
    known = sorted(_macro_references())
    near = difflib.get_close_matches(unused[0], known, n=5, cutoff=0.5)
    return GinConfigError(
        f"Gin macro(s) {', '.join(unused)} are bound on the command line but no binding of "
        f"this run uses them."
        + (f" Nearest known macros: {', '.join(near)}." if near else "")
        + (f" Macros this run uses: {', '.join(known)}." if known else " Its gin files use none.")
    )


def parse(
    gin_files: Sequence[str],
    bindings: Sequence[str] = (),
    search_paths: Sequence[str] = (),
) -> None:
    """Clears gin, then parses files (found on the search paths) and bindings.

    The shipped `gin/` directory is always searched last, so
    `--gin_file=models/t5_1_1_base.gin` works after a non-editable install.

    Raises:
      GinConfigError: for a missing file, an unknown configurable or parameter
        (with the nearest valid names), a syntax error, a referenced macro that
        no file or binding defines, or a macro bound in `bindings` that nothing
        uses (a misspelt name; with the nearest known macros).
    """
    _parse_checked(gin_files, bindings, search_paths)
    missing = _undefined_macros()
    if missing:
        raise GinConfigError(
            f"Gin macro(s) {', '.join(missing)} are used but never set: add a gin file that "
            f"defines them or pass --gin.{missing[0]}=VALUE."
        )
    gin.finalize()


def check_bindings(
    gin_files: Sequence[str],
    bindings: Sequence[str] = (),
    search_paths: Sequence[str] = (),
) -> None:
    """What `parse` checks except that every macro is set (a planned run may set it later).

    Leaves gin cleared. For `sweep --dry_run`, which writes commands without running them.
    """
    try:
        _parse_checked(gin_files, bindings, search_paths)
    finally:
        gin.clear_config()


class _IncludeSearchFilter(logging.Filter):
    """Drops gin's `Path not found` records, logged for every search path an include misses.

    They printed as stray `ERROR:root:` lines even when a later path had the
    file; a missing include is still an error, raised by gin with its name.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Path not found")


@contextlib.contextmanager
def _quiet_include_search() -> Iterator[None]:
    quiet = _IncludeSearchFilter()
    logging.getLogger().addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(quiet)


def _parse_checked(
    gin_files: Sequence[str], bindings: Sequence[str], search_paths: Sequence[str]
) -> None:
    """Clears gin, parses files and bindings, and refuses command-line macros nothing uses."""
    gin.clear_config()
    roots = [*search_paths, os.getcwd(), SHIPPED_GIN_DIR]
    for path in roots:
        # For `include` statements inside gin files.
        gin.add_config_file_search_path(path)
    for gin_file in gin_files:
        found = next((p for p in (pathlib.Path(r, gin_file) for r in roots) if p.is_file()), None)
        if found is None:
            raise GinConfigError(
                f"Gin file {gin_file!r} not found (searched {', '.join(map(str, roots))})."
            )
        try:
            with _quiet_include_search():
                gin.parse_config_file(str(found))
        except (ValueError, SyntaxError) as e:
            raise GinConfigError(f"In gin file {gin_file}: {_explain(e)}") from e
    for binding in bindings:
        try:
            gin.parse_config(binding)
        except (ValueError, SyntaxError) as e:
            raise GinConfigError(f"In --gin.{binding.replace(' = ', '=', 1)}: {_explain(e)}") from e
    unused = _unused_macros(bindings)
    if unused:
        raise _unused_macro_error(unused)


def required_error(error: RuntimeError) -> GinConfigError:
    """Turns gin's 'Required bindings ... not provided' into a flag-level hint."""
    match = re.search(
        r"Required bindings for `([^`]+)` not provided in config: \[([^\]]*)\]", str(error)
    )
    if not match:
        return GinConfigError(str(error))
    configurable, names = match.group(1), match.group(2).replace("'", "")
    return GinConfigError(
        f"Missing required gin binding(s) for {configurable}: {names}. Set them in a gin file "
        f"or with --gin.{configurable}.{names.split(',')[0].strip()}=VALUE."
    )
