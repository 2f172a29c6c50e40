"""The image's OCI labels and its locked dependencies (requirements/, scripts/lock)."""

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.manifests import ROOT
from tests.test_deploy import dockerfile


def locked(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    # A package may be pinned twice under environment markers (the universal lock's
    # python_full_version splits); every pin line counts.
    pin_lines = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.MULTILINE)
    pins = dict(pin_lines)
    # Every pin carries hashes (pip --require-hashes refuses the file otherwise).
    hashed = re.findall(r"^[A-Za-z0-9._-]+==\S+ (?:; [^\n]*)?\\\n\s+--hash=sha256:", text, re.M)
    assert len(hashed) == len(pin_lines) > 10
    return {canonicalize_name(k): v for k, v in pins.items()}


def test_the_image_has_oci_labels() -> None:
    labels = " ".join(rest for instruction, rest in dockerfile() if instruction == "LABEL")
    found = dict(re.findall(r"org\.opencontainers\.image\.(\w+(?:\.\w+)?)=\"([^\"]*)\"", labels))
    for key in ("title", "description", "version", "revision", "created", "licenses", "base.name"):
        assert found.get(key), key
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    arg_lines = "\n".join(rest for instruction, rest in dockerfile() if instruction == "ARG")
    args = dict(re.findall(r"^(\w+)=(\S+)$", arg_lines, re.MULTILINE))
    assert args["VERSION"] == version
    (base,) = {rest.split()[0] for instruction, rest in dockerfile() if instruction == "FROM"}
    assert found["base.name"].endswith(base)


def test_the_image_installs_the_hash_checked_lock() -> None:
    runs = [rest for instruction, rest in dockerfile() if instruction == "RUN"]
    assert any("--require-hashes" in r and "requirements/runtime.txt" in r for r in runs)
    for run in runs:  # anything else is the project's own packages, without dependencies
        if "pip install" in run and "--require-hashes" not in run:
            assert "--no-deps" in run, run


def test_every_lock_meets_the_pyprojects_and_agrees_with_the_image() -> None:
    runtime, serve, dev = locked("runtime"), locked("serve"), locked("dev")
    for name, version in runtime.items():  # CI tests what the image ships
        assert serve[name] == version and dev[name] == version, name
    own = {"labelwise", "labelwise-server", "labelwise-simulate"}
    for pyproject, lock, extras in (
        ("pyproject.toml", dev, ("dev",)),
        ("clients/python/pyproject.toml", runtime, ()),
        ("tools/simulate/pyproject.toml", serve, ()),
    ):
        project = tomllib.loads((ROOT / pyproject).read_text())["project"]
        requirements = list(project["dependencies"])
        for extra in extras:
            requirements += project["optional-dependencies"][extra]
        for line in requirements:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name in own:
                continue
            assert name in lock, (pyproject, name)
            assert requirement.specifier.contains(lock[name], prereleases=True), (name, lock[name])
