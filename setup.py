"""Build of the C extensions (rtc/_sendmmsg.c, rtc/_rtp_writer.c, rtc/_seq_rewriter.c); everything else is in
pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("rtc._sendmmsg", sources=["rtc/_sendmmsg.c"], extra_compile_args=["-O2"]),
        Extension("rtc._rtp_writer", sources=["rtc/_rtp_writer.c"], extra_compile_args=["-O2"]),
        Extension("rtc._seq_rewriter", sources=["rtc/_seq_rewriter.c"], extra_compile_args=["-O2"]),
    ]
)
