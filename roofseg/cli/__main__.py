"""``python -m roofseg.cli``: the same as the ``roofseg`` command."""

from roofseg.cli import main

main()
