"""redis-py Pub/Sub against a server: get_message, listen-style callbacks
with run_in_thread, patterns and sharded channels, RESP2 and (redis-py 5+)
RESP3. Prints ok at the end."""
import sys
import time

import redis

port = int(sys.argv[1])


def wait(cond, what):
    deadline = time.time() + 10
    while not cond():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


def check(proto):
    kw = {} if proto == 2 else {"protocol": 3}
    r = redis.Redis(port=port, **kw)
    p = r.pubsub(ignore_subscribe_messages=True)
    p.subscribe("chan")
    p.psubscribe("pat.*")
    # Subscription counts may lag a subscription made on another shard.
    wait(lambda: r.pubsub_numsub("chan") == [(b"chan", 1)] and r.pubsub_numpat() == 1, "counts")
    assert r.publish("chan", "hello") == 1
    assert r.publish("pat.x", "world") == 1
    assert r.publish("nobody", "x") == 0
    got = []
    deadline = time.time() + 10
    while len(got) < 2 and time.time() < deadline:
        m = p.get_message(timeout=1)
        if m:
            got.append((m["type"], m["channel"], m["data"]))
    assert got == [("message", b"chan", b"hello"), ("pmessage", b"pat.x", b"world")], got

    # Callbacks on a background thread; order kept.
    received = []
    p2 = r.pubsub()
    p2.subscribe(**{"cb": lambda m: received.append(m["data"])})
    t = p2.run_in_thread(sleep_time=0.01)
    wait(lambda: r.pubsub_numsub("cb") == [(b"cb", 1)], "cb subscription")
    for i in range(200):
        assert r.publish("cb", str(i)) == 1
    wait(lambda: len(received) == 200, "200 messages")
    assert received == [str(i).encode() for i in range(200)], received[:10]
    t.stop()
    t.join(5)

    # Sharded channels, when this redis-py has them.
    if hasattr(p, "ssubscribe") and hasattr(p, "get_sharded_message"):
        p3 = r.pubsub(ignore_subscribe_messages=True)
        p3.ssubscribe("sh")
        wait(lambda: r.execute_command("PUBSUB", "SHARDNUMSUB", "sh") == [b"sh", 1], "sharded")
        assert r.spublish("sh", "x") == 1
        m = None
        deadline = time.time() + 10
        while m is None and time.time() < deadline:
            m = p3.get_sharded_message(timeout=1)
        assert m and m["type"] == "smessage" and m["data"] == b"x", m
        p3.close()

    p.unsubscribe()
    p.punsubscribe()
    p.close()
    p2.close()
    wait(lambda: r.pubsub_numpat() == 0 and r.pubsub_numsub("chan") == [(b"chan", 0)], "unsubscribed")


check(2)
if int(redis.__version__.split(".")[0]) >= 5:
    check(3)
print("ok")
