#!/usr/bin/env python3
"""peer.py -- the importer a user would write first, for bench/bench.py to
compare the bridge with: one sequential loop over a Kafka topic of plain
share tokens (no envelope: nothing to verify or open), for each message

    consume -> POST /v3/session/import-shared/ -> produce the answer
            -> flush -> commit the offset (synchronously)

with confluent-kafka and requests (a keep-alive session), both from PyPI.
At-least-once: the offset is committed after the record is delivered.
Not a test and not part of the product: run it from the venv bench.sh
makes. Prints one JSON object: {"count", "seconds", "tokens_per_s",
"errors"}, timed from the first message consumed to the last commit.

  peer.py --bootstrap HOST:PORT --topic IN --output OUT --group G \\
          --url http://127.0.0.1:PORT --key-file F --workflow W --count N
"""
import argparse
import json
import sys
import time

import requests
from confluent_kafka import Consumer, KafkaException, Producer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True, help="input: {\"share_token\": ...} records")
    ap.add_argument("--output", required=True, help="where the imported sessions go")
    ap.add_argument("--group", required=True)
    ap.add_argument("--url", required=True, help="the vendor API (the sandbox)")
    ap.add_argument("--key-file", required=True, help="file holding the x-api-key")
    ap.add_argument("--workflow", required=True, help="workflow_id to import into")
    ap.add_argument("--count", type=int, required=True, help="stop after this many")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    a = ap.parse_args()
    with open(a.key_file) as f:
        key = f.read().strip()

    cons = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    prod = Producer({"bootstrap.servers": a.bootstrap, "enable.idempotence": True,
                     "linger.ms": 0})
    http = requests.Session()
    http.headers.update({"x-api-key": key})
    url = a.url.rstrip("/") + "/v3/session/import-shared/"
    cons.subscribe([a.topic])
    done = errors = 0
    t0 = None
    deadline = time.monotonic() + a.timeout
    try:
        while done < a.count and time.monotonic() < deadline:
            msg = cons.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            if t0 is None:
                t0 = time.monotonic()
            tok = json.loads(msg.value())
            r = http.post(url, json={"share_token": tok["share_token"],
                                     "workflow_id": a.workflow, "trust_review": True},
                          timeout=30)
            if r.status_code == 201:
                sess = r.json()
                prod.produce(a.output, key=sess["session_id"], value=r.content)
                prod.flush(30)
            else:
                errors += 1
            cons.commit(message=msg, asynchronous=False)
            done += 1
    finally:
        cons.close()
    el = time.monotonic() - t0 if t0 is not None else 0.0
    print(json.dumps({"count": done, "seconds": round(el, 3),
                      "tokens_per_s": round(done / el, 1) if el > 0 else 0.0,
                      "errors": errors}))
    return 0 if done == a.count and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
