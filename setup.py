"""Builds the native engine (retrysim.sim._native) with the package: `pip install -e .`.

Everything else about the package is in pyproject.toml; setuptools reads extension modules
only from here. The extension is optional: where it cannot be compiled the install goes on and
retrysim runs its pure-Python engine, saying so (``engine: fast (the native core is not
built...)``). -ffp-contract=off keeps the compiler from fusing a multiply and an add into one
rounding: the native engine's arithmetic must round exactly as Python's does.
"""

from setuptools import Extension, find_namespace_packages, setup

NATIVE_SOURCES = [
    "native/calls.c",
    "native/connections.c",
    "native/servers.c",
    "native/module.c",
]
NATIVE_HEADERS = [
    "native/run.h",
    "native/draws.h",
    "native/faults.h",
    "native/heap.h",
    "native/latency.h",
    "native/policy.h",
    "native/records.h",
]

setup(
    # The bundled scenarios ship inside the package: retrysim/model/library.py looks in
    # retrysim/_scenarios first, then beside the package in a checkout.
    # (retrysim/sim has no __init__.py: namespace packages are found too)
    packages=[
        *find_namespace_packages(include=["retrysim", "retrysim.*"], exclude=["*__pycache__"]),
        "retrysim._scenarios",
    ],
    package_dir={"retrysim._scenarios": "scenarios"},
    package_data={"retrysim": ["py.typed"], "retrysim._scenarios": ["*.toml"]},
    ext_modules=[
        Extension(
            "retrysim.sim._native",
            sources=NATIVE_SOURCES,
            depends=NATIVE_HEADERS,
            include_dirs=["native"],
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math", "-std=c11"],
            optional=True,
        )
    ],
)
