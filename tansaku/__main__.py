"""``python -m tansaku`` is the ``tansaku`` command."""

from tansaku.cli import main

if __name__ == "__main__":  # worker processes (forkserver/spawn) import this module again: do not run there
    main()
