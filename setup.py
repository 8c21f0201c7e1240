"""Build hook: the compiled decode core (weavepcap._core), plain C against the Python headers only."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "weavepcap._core",
            sources=["src/weavepcap/_core.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall"],
            optional=True,  # without a compiler the install still succeeds: the numpy path takes over
        )
    ]
)
