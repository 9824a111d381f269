"""Fail unless the active Python holds exactly what the image's variant should: every installed package at
the version the lock pins for this platform, and torch's build matching the variant (no CUDA library in a
CPU image, no CPU-only torch in a CUDA one). pip falls back to PyPI without a word when the CPU index is
out of reach, so this is where such an image fails instead of shipping 3 GB of CUDA it cannot use.
    python -I docker/check-installed.py cpu|cuda requirements/prod.txt
"""

import sys
from importlib.metadata import distributions

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

variant, lock = sys.argv[1:3]
lines = open(lock).read().splitlines()
reqs = [Requirement(ln) for ln in lines if ln and not ln.startswith((" ", "#", "-"))]
pins = {canonicalize_name(r.name): r for r in reqs if r.marker is None or r.marker.evaluate()}
installed = {canonicalize_name(d.name): Version(d.version) for d in distributions()}
cuda = sorted(n for n in installed if n.startswith(("nvidia-", "cuda-")) or n == "triton")
torch = installed.get("torch")
if variant == "cpu" and cuda:
    sys.exit(
        f"a CPU image with CUDA libraries ({', '.join(cuda[:3])}, ...): torch {torch} came from PyPI, "
        "not from PyTorch's CPU index; is the index reachable, and does it have torch for this platform?"
    )
if variant == "cuda" and torch is not None and torch.local == "cpu":
    sys.exit(f"a CUDA image with torch {torch}, a CPU-only build: install without the CPU index")
installers = {"pip", "setuptools", "wheel"}  # the base image's own tools, where the lock does not pin them
wrong = [
    f"{name} {version}"
    for name, version in installed.items()
    if not (name in installers and name not in pins)
    and not (name in pins and version.public in pins[name].specifier)
]
if wrong:
    sys.exit(f"installed but not at a version pinned in {lock}: {', '.join(sorted(wrong))}")
print(f"{len(installed)} packages installed, each at its locked version ({variant} build of torch {torch})")
