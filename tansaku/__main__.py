"""``python -m tansaku`` is the ``tansaku`` command."""

from tansaku.cli import main

main()
