"""``python -m streamflow.cli`` runs the ``streamflow`` command."""

from streamflow.cli.main import main

main()
