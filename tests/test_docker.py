"""The Dockerfile, checked without a Docker engine: hadolint, its shape, and its install steps.

The image installs requirements.txt with the same pip command that made the environment these
tests run in, so that environment is the check that the pinned set installs and works together;
its system packages are checked against the shared libraries OpenCV and SDL really load here.
"""
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

from conftest import ROOT

DOCKERFILE = os.path.join(ROOT, "Dockerfile")
# In every python:3.11-slim-bookworm image: glibc, the C++ runtime and libraries Python uses.
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libffi8", "libuuid1", "libbz2-1.0"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "".join(line for line in open(DOCKERFILE)
                                         if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip()]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable),
                                                        "hadolint")
    result = subprocess.run([hadolint, DOCKERFILE], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_shape():
    steps = instructions()
    values = {name: [args for n, args in steps if n == name] for name, _ in steps}
    assert values["FROM"] == ["python:3.11-slim-bookworm"]
    assert values["WORKDIR"][-1].endswith("/algorithms")
    assert values["EXPOSE"] == ["6006"]
    assert values["USER"] and values["USER"][-1] not in ("0", "root")
    assert values["CMD"] == ['["python", "main.py", "pong"]']
    # the code is copied after the requirements are installed (a code change keeps the layer
    # of installed packages), and belongs to the user
    pip = next(i for i, (n, args) in enumerate(steps) if n == "RUN" and "pip install" in args)
    code = max(i for i, (n, _) in enumerate(steps) if n == "COPY")
    assert code > pip and steps[code][1].startswith(f"--chown={values['USER'][-1]}")


def test_pip_step_is_the_ci_install_and_its_pins_are_installed():
    """The image runs ``pip install -r requirements.txt``; so did CI (requirements-test.txt
    includes it) for this environment: every pin is installed at its version, and pip finds
    no broken dependency."""
    pip_steps = [args for name, args in instructions() if name == "RUN" and "pip install" in args]
    assert len(pip_steps) == 1 and re.search(r"-r \S*requirements\.txt$", pip_steps[0])
    with open(os.path.join(ROOT, "requirements-test.txt")) as f:
        assert "-r requirements.txt" in f.read().split("\n")
    pins = [line.split("==") for line in open(os.path.join(ROOT, "requirements.txt"))
            if "==" in line and not line.startswith("#")]
    assert len(pins) >= 8
    wrong = {name: (version.strip(), importlib.metadata.version(name))
             for name, version in pins if importlib.metadata.version(name) != version.strip()}
    assert wrong == {}, f"installed versions differ from requirements.txt: {wrong}"
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def _depends(package: str) -> set[str]:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", package],
                         capture_output=True, text=True).stdout
    return {alt.split()[0].split(":")[0] for dep in out.split(",") if dep.strip()
            for alt in dep.split("|")[:1]}


def test_apt_packages_provide_the_libraries_opencv_and_sdl_load(display):
    """Import OpenCV and open an SDL window (as -v does); every system library mapped into the
    process must come from the image's apt packages, their dependencies or the base image."""
    probe = ("import os, cv2, pygame\n"
             "pygame.display.init(); pygame.display.set_mode((64, 64)); pygame.display.flip()\n"
             "print('\\n'.join(sorted({l.split()[-1] for l in open('/proc/self/maps')\n"
             "                         if '.so' in l and 'site-packages' not in l})))\n")
    env = dict(os.environ, DISPLAY=display, SDL_FRAMEBUFFER_ACCELERATION="0",
               PYGAME_HIDE_SUPPORT_PROMPT="1")
    libraries = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                               text=True, check=True).stdout.split()
    assert any("libX11" in lib for lib in libraries), "SDL opened no X connection"
    python_libraries = os.path.realpath(os.path.join(sys.base_prefix, "lib"))
    needed = set()
    for lib in libraries:
        path = os.path.realpath(lib)
        if path.startswith(python_libraries):
            continue   # the interpreter's own extension modules, part of the base image
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if owner.returncode != 0:   # merged /usr: dpkg knows the /lib path
            owner = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/", 1)],
                                   capture_output=True, text=True)
        assert owner.returncode == 0, f"no Debian package owns {lib}"
        needed.add(owner.stdout.split(":")[0])

    apt = next(args for name, args in instructions() if name == "RUN" and "apt-get install" in args)
    listed = {w for w in apt.split("apt-get install", 1)[1].split("&&")[0].split()
              if not w.startswith("-")}
    provided = listed | BASE_PACKAGES
    todo = list(provided)
    while todo:
        for dep in _depends(todo.pop()) - provided:
            provided.add(dep)
            todo.append(dep)
    assert needed - provided == set(), f"the Dockerfile's apt-get install misses " \
                                       f"{sorted(needed - provided)}"
