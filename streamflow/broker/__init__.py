"""streamflow's built-in Kafka-protocol broker.

A durable single-node broker in asyncio Python that aiokafka, kafka-python, librdkafka
(confluent-kafka, kcat) and faust-streaming talk to unchanged. Default port: 9192.

Example:
    >>> import asyncio, tempfile
    >>> from pathlib import Path
    >>> from streamflow.broker import Broker
    >>> async def main():
    ...     broker = Broker(port=0, data_dir=Path(tempfile.mkdtemp()))
    ...     await broker.start()
    ...     print(broker.bootstrap.split(":")[0])
    ...     await broker.stop()
    >>> asyncio.run(main())
    127.0.0.1
"""

from .config import DEFAULT_PORT, BrokerConfig
from .server import Broker, BrokerStartError

__all__ = ["DEFAULT_PORT", "Broker", "BrokerConfig", "BrokerStartError"]
