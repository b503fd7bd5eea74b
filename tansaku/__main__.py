"""``python -m tansaku`` is the ``tansaku`` command."""

from tansaku.cli import app

app(prog_name="tansaku")
