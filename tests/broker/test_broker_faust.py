"""faust-streaming with exactly_once and a Table runs unchanged on the embedded broker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer
from broker_helpers import consume_all, create_topic
from conftest import unique

APP = textwrap.dedent(
    """
    import faust

    app = faust.App(
        {app_id!r},
        broker="kafka://{bootstrap}",
        store="memory://",
        processing_guarantee="exactly_once",
        topic_partitions=1,
        web_enabled=False,
        datadir={datadir!r},
    )
    source = app.topic({source!r}, key_type=str, value_type=str,
                       key_serializer="raw", value_serializer="raw")
    sink = app.topic({sink!r}, key_type=str, value_type=str,
                     key_serializer="raw", value_serializer="raw")
    counts = app.Table("counts", default=int, partitions=1)

    @app.agent(source)
    async def count(stream):
        async for key, value in stream.items():
            k = key.decode() if isinstance(key, bytes) else key
            counts[k] += 1
            await sink.send(key=k, value=f"{{k}}={{counts[k]}}")

    if __name__ == "__main__":
        app.main()
    """
)


async def test_faust_exactly_once_table(shared_embedded, tmp_path: Path) -> None:
    bootstrap = shared_embedded.bootstrap
    source, sink, app_id = unique("src"), unique("sink"), unique("faustapp")
    await create_topic(bootstrap, source)
    await create_topic(bootstrap, sink)
    app_file = tmp_path / "faust_app.py"
    app_file.write_text(
        APP.format(
            app_id=app_id,
            bootstrap=bootstrap,
            source=source,
            sink=sink,
            datadir=str(tmp_path / "faust-data"),
        )
    )
    with open(tmp_path / "faust.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(app_file), "worker", "-l", "info", "--without-web"],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await p.start()
        for key in ["a", "b", "a", "c", "a", "b"]:
            await p.send_and_wait(source, key.encode(), key=key.encode())
        await p.stop()
        deadline = time.monotonic() + 60
        values: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            msgs = await consume_all(bootstrap, sink, isolation_level="read_committed", idle=0.5)
            values = [m.value.decode() for m in msgs]
            if len(values) >= 6:
                break
        assert proc.poll() is None, (tmp_path / "faust.log").read_text()[-3000:]
        assert values == ["a=1", "b=1", "a=2", "c=1", "a=3", "b=2"], (
            tmp_path / "faust.log"
        ).read_text()[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
