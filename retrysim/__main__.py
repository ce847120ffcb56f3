"""``python -m retrysim``: the same CLI as the ``retrysim`` command."""

from retrysim.cli.entry import main

main()
