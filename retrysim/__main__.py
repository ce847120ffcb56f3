"""``python -m retrysim``: the same CLI as the ``retrysim`` command."""

from retrysim.cli.app import main

main()
