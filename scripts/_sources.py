"""Fetches pinned source packages from the pip, npm and apt registries and unpacks them.

Shared by the `build_*.py` scripts. Every archive is pinned by name, version and
sha256, so a rebuild either reads exactly the bytes the shipped files were made
from or stops with an error naming the archive.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Package:
    """One pinned archive in a package registry.

    Attributes:
      registry: 'pip' (an sdist), 'pip-wheel' (a wheel, for packages whose sdist no
        longer builds), 'npm' or 'apt' (a Debian .deb).
      name: the package name in that registry.
      version: the exact version.
      sha256: hex digest of the downloaded archive.
      licence: short licence statement recorded in manifests and notices.
    """

    registry: str
    name: str
    version: str
    sha256: str
    licence: str

    @property
    def spec(self) -> str:
        """The `name<sep>version` string the registry's client understands."""
        separator = {"pip": "==", "pip-wheel": "==", "npm": "@", "apt": "="}[self.registry]
        return f"{self.name}{separator}{self.version}"

    @property
    def command(self) -> list[str]:
        """The client command that downloads the archive into the working directory."""
        if self.registry == "pip":
            return [
                sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                "--dest", ".", self.spec,
            ]  # fmt: skip
        if self.registry == "pip-wheel":
            return [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                "--dest", ".", self.spec,
            ]  # fmt: skip
        if self.registry == "npm":
            return ["npm", "pack", "--silent", self.spec]
        if self.registry == "apt":
            return ["apt-get", "download", self.spec]
        raise ValueError(f"Unknown registry {self.registry!r} for package {self.name!r}.")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(package: Package, downloads: Path) -> Path:
    """Downloads `package` into `downloads` (reusing a verified earlier download).

    Returns the archive's path. Raises RuntimeError when the client fails or the
    archive's sha256 differs from the pin.
    """
    downloads.mkdir(parents=True, exist_ok=True)
    archive = _find_archive(package, downloads)
    if archive is None:
        result = subprocess.run(
            package.command, cwd=downloads, capture_output=True, text=True, check=False
        )
        archive = _find_archive(package, downloads)
        if result.returncode != 0 or archive is None:
            raise RuntimeError(
                f"Downloading {package.spec} from {package.registry} failed "
                f"(exit {result.returncode}; `{' '.join(package.command)}` in {downloads}):\n"
                f"{result.stderr.strip()}"
            )
    digest = sha256_file(archive)
    if digest != package.sha256:
        raise RuntimeError(
            f"{archive} has sha256 {digest}, but {package.spec} is pinned to {package.sha256}; "
            "the registry served different bytes, so the shipped files cannot be rebuilt."
        )
    return archive


def _find_archive(package: Package, downloads: Path) -> Path | None:
    """The downloaded archive of `package` in `downloads`, if present."""
    # Clients name archives differently: npm drops the scope's '@' and joins with '-',
    # apt escapes the epoch's ':' as '%3a', pip keeps the sdist's own name.
    stem = package.name.lstrip("@").replace("/", "-")
    if package.registry == "apt":
        version = package.version.replace(":", "%3a")
        candidates = downloads.glob(f"{stem}_{version}_*.deb")
    elif package.registry == "pip-wheel":
        candidates = downloads.glob(f"{stem}-{package.version}-*.whl")
    else:
        candidates = downloads.glob(f"{stem}-{package.version}.t*gz")
    found = sorted(candidates)
    return found[0] if found else None


def unpack(archive: Path, dest: Path) -> Path:
    """Extracts a .tar.gz/.tgz, .whl or .deb archive into `dest` and returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".deb":
        subprocess.run(["dpkg-deb", "-x", str(archive), str(dest)], check=True)
    elif archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            wheel.extractall(dest)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    return dest


def read_text(path: Path) -> str:
    """Reads a UTF-8 file, failing with the path named if it is not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text: {e}") from e


def write_text(path: Path, text: str) -> None:
    """Writes UTF-8 with '\\n' newlines whatever the platform, so builds are byte-stable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def run_build(
    doc: str, default_out: Path, build: Callable[[Path, Path], dict], argv: Sequence[str] | None
) -> dict:
    """The command line every build script shares: `[--out DIR] [--downloads DIR]`.

    Calls `build(out, downloads)`, with the archives in a temporary folder unless
    `--downloads` keeps them, and returns its manifest.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out, help="output folder")
    parser.add_argument(
        "--downloads", type=Path, default=None,
        help="keep (and reuse) downloaded archives here; default: a temporary folder",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.downloads is not None:
        return build(args.out, args.downloads)
    with tempfile.TemporaryDirectory() as scratch:
        return build(args.out, Path(scratch))
