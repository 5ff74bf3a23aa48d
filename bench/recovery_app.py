"""The app ``bench/recovery.py`` restarts: a table of the latest value of each key of
``items`` (``table_of``), in RocksDB with its changelog.

    $ streamflow worker bench/recovery_app.py
"""

import streamflow

app = streamflow.App("recovery-bench")
items = app.topic("items", key="str", value="json")
app.table_of(items, name="items")
