"""Build hook for the optional C accelerator of monitor.dedup (metadata is in pyproject.toml).

`monitor._fastprint` is optional: where it cannot be compiled (no compiler, no Python headers)
the install still succeeds and monitor.dedup runs its pure-Python path (`ACCELERATED` False).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "monitor._fastprint",
            sources=["monitor/_fastprint.c"],
            optional=True,
        )
    ]
)
