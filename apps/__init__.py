"""Deployable streamflow apps, one module per app."""
