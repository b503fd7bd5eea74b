"""tansaku (探索): high-throughput first-principles screening of candidate crystals."""

__version__ = "0.1.0"
