"""The peer in `make bench` (issue 31): a Quix Streams application computing, per player, what a
Python team would first write against Sideline's samples topic — total distance, high-speed
running (HSR, > 5.5 m/s), sprint efforts (> 7 m/s held at least 1 s) and a rolling 5-minute HSR
— from the same protobuf `SampleBatch` records on the same topic and broker as
`sideline process`. One summary per position batch goes to an output topic (JSON), as Sideline
writes one snapshot per player-second.

Thresholds are Sideline's defaults (services/sideline-engine/src/params.rs). Distance is the sum
of straight segments between consecutive fixes (no filter, no artefact rejection: less work
than the engine does). State is kept in Quix's RocksDB state store per player (key).

Run by the processor benchmark with the venv made by `scripts/quix-venv.sh`:
    python quix_app.py BROKERS TOPIC OUTPUT_TOPIC GROUP RECORDS PROTO_OUT_DIR
It stops by itself once it has processed RECORDS records and prints `records samples seconds
cpu-seconds cpu-seconds-in-all`, timed from the first record processed.
"""

import math
import resource
import sys
import time
from collections import deque

from quixstreams import Application
from quixstreams.models.serializers import Deserializer

brokers, topic_name, out_name, group, want, pb_dir = sys.argv[1:7]
want = int(want)
sys.path.insert(0, pb_dir)
from sideline.v1 import samples_pb2  # noqa: E402  (generated at bench time by grpc_tools)

HSR_MPS = 5.5
SPRINT_MPS = 7.0
SPRINT_MIN_S = 1.0
ROLL_S = 300


class SampleBatchDeserializer(Deserializer):
    """Protobuf `sideline.v1.SampleBatch` → the player's positions as (t_s, x, y, speed)."""

    def __call__(self, value, ctx):
        b = samples_pb2.SampleBatch()
        b.ParseFromString(value)
        fixes = []
        for s in b.samples:
            if s.WhichOneof("reading") != "position":
                continue
            p = s.position
            if p.WhichOneof("coord") != "xy":
                continue
            speed = p.speed_mps if p.HasField("speed_mps") else None
            fixes.append((s.t_us / 1e6, p.xy.x_m, p.xy.y_m, speed))
        return {"player": b.player_id, "n": len(b.samples), "fixes": fixes}


counted = {"records": 0, "samples": 0, "t0": None, "cpu0": None}


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def step(batch, state):
    if counted["t0"] is None:
        counted["t0"], counted["cpu0"] = time.monotonic(), cpu_s()
    counted["records"] += 1
    counted["samples"] += batch["n"]
    if counted["records"] >= want:
        app.stop()
    fixes = batch["fixes"]
    if not fixes:
        return None
    fixes.sort()
    s = state.get("s") or {
        "last": None, "dist": 0.0, "hsr": 0.0, "sprints": 0,
        "above_since": None, "counted": False, "buckets": [],
    }
    buckets = deque(s["buckets"])
    last = s["last"]
    for t, x, y, speed in fixes:
        if last is not None and t > last[0]:
            dt = t - last[0]
            d = math.hypot(x - last[1], y - last[2])
            v = speed if speed is not None else d / dt
            s["dist"] += d
            if v > HSR_MPS:
                s["hsr"] += d
                sec = int(t)
                if buckets and buckets[-1][0] == sec:
                    buckets[-1][1] += d
                else:
                    buckets.append([sec, d])
            if v > SPRINT_MPS:
                if s["above_since"] is None:
                    s["above_since"], s["counted"] = t, False
                elif not s["counted"] and t - s["above_since"] >= SPRINT_MIN_S:
                    s["sprints"] += 1
                    s["counted"] = True
            else:
                s["above_since"] = None
        last = (t, x, y)
    now = last[0]
    while buckets and buckets[0][0] <= now - ROLL_S:
        buckets.popleft()
    s["last"], s["buckets"] = last, list(buckets)
    state.set("s", s)
    return {
        "player": batch["player"], "t": now, "distance_m": s["dist"], "hsr_m": s["hsr"],
        "sprints": s["sprints"], "hsr_5min_m": sum(d for _, d in buckets),
    }


app = Application(
    broker_address=brokers,
    consumer_group=group,
    auto_offset_reset="earliest",
    use_changelog_topics=False,
    state_dir=f"{pb_dir}/state",
)
source = app.topic(topic_name, value_deserializer=SampleBatchDeserializer(), key_deserializer="str")
output = app.topic(out_name, value_serializer="json")
sdf = app.dataframe(source)
sdf = sdf.apply(step, stateful=True).filter(lambda v: v is not None)
sdf.to_topic(output)
app.run()
# records samples seconds cpu-seconds (both from the first record processed), cpu-s in all
print(
    counted["records"], counted["samples"], time.monotonic() - counted["t0"],
    cpu_s() - counted["cpu0"], cpu_s(), flush=True,
)
