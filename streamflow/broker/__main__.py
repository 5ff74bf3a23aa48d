"""``python -m streamflow.broker`` runs the broker in the foreground.

Example:
    $ python -m streamflow.broker --listen 127.0.0.1:9192 --data ./state/broker
"""

from .cli import main

if __name__ == "__main__":
    main()
