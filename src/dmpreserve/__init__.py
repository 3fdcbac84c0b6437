"""dmpreserve: a reproducible, reinterpretable liquid-xenon WIMP-search pipeline."""

__version__ = "0.1.0"
