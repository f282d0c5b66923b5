"""Build of the one C extension (rtc/_sendmmsg.c); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("rtc._sendmmsg", sources=["rtc/_sendmmsg.c"], extra_compile_args=["-O2"])])
