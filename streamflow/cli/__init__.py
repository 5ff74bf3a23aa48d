"""The ``streamflow`` command line (click)."""
