"""The real InfluxDB clients against m3s's M3trics: `influxdb` 5.3.2 (v1) and
`influxdb-client` 1.50.0 (v2) write, and the data reads back exactly through
m3s's Prometheus query API. Also the errors the clients see: a malformed line
(400, naming the line) and bad credentials (401).

Usage: metrics_clients.py URL TOKEN USER PASSWORD   (run by crates/m3s/tests/metrics_clients.rs)
"""

import json
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient as InfluxDBClientV2, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

URL, TOKEN, USER, PASSWORD = sys.argv[1:5]
parsed = urllib.parse.urlparse(URL)
BASE_S = int(time.time()) - 1800  # half an hour ago: inside retention, a fixed range


def query_range(query, start, end, step):
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    req = urllib.request.Request(f"{URL}/api/v1/query_range?{params}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return {
        # Values as floats: exact equality, whatever the spelling ("22" and 22.0 are the same float).
        tuple(sorted(s["metric"].items())): [(float(t), float(v)) for t, v in s["values"]]
        for s in body["data"]["result"]
    }


def series(match):
    params = urllib.parse.urlencode({"match[]": match})
    req = urllib.request.Request(f"{URL}/api/v1/series?{params}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["data"]


def raw(selector, at, window="1h"):
    """The stored samples themselves, (seconds, value), of a range selector at an instant."""
    params = urllib.parse.urlencode({"query": f"{selector}[{window}]", "time": at})
    req = urllib.request.Request(f"{URL}/api/v1/query?{params}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req) as r:
        body = json.load(r)
    assert body["status"] == "success" and body["data"]["resultType"] == "matrix", body
    return {
        tuple(sorted(s["metric"].items())): [(float(t), float(v)) for t, v in s["values"]]
        for s in body["data"]["result"]
    }


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}:\n  got  {got}\n  want {want}")
        sys.exit(1)
    print(f"ok   {what}")


# --- v1: influxdb 5.3.2, credentials as u/p -------------------------------------------------
v1 = InfluxDBClient(host=parsed.hostname, port=parsed.port, username=USER, password=PASSWORD, database="telegraf")
points = [
    {
        "measurement": "v1_cpu",
        "tags": {"host": "web 1", "region": "eu,west"},
        "time": (BASE_S + i * 10) * 1000,
        "fields": {"usage": 12.25 + i, "cores": 4, "ok": True},
    }
    for i in range(6)
]
assert v1.write_points(points, time_precision="ms")
# Seconds precision and the line-protocol form of the same client.
assert v1.write_points(
    [{"measurement": "v1_disk", "tags": {"path": "/data"}, "time": BASE_S, "fields": {"free": 1.5e9}}], time_precision="s"
)
assert v1.write([f"v1_mem,host=a used=123.5 {BASE_S}"], params={"db": "telegraf", "precision": "s"}, protocol="line")
# The default precision (nanoseconds on the wire), the time given as RFC 3339 text with milliseconds.
iso = datetime.fromtimestamp(BASE_S + 7, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.250Z")
assert v1.write_points([{"measurement": "v1_net", "tags": {"if": "eth0"}, "time": iso, "fields": {"rx_bytes": 987654321}}])

got = query_range('v1_cpu_usage{host="web 1"}', BASE_S, BASE_S + 50, 10)
check(
    "v1 float field reads back",
    got,
    {(("__name__", "v1_cpu_usage"), ("host", "web 1"), ("region", "eu,west")): [(float(BASE_S + i * 10), 12.25 + i) for i in range(6)]},
)
got = query_range("v1_cpu_cores", BASE_S, BASE_S + 50, 10)
check("v1 integer field reads back", [v for _, v in list(got.values())[0]], [4.0] * 6)
got = query_range("v1_cpu_ok", BASE_S, BASE_S + 50, 10)
check("v1 boolean field reads back as 1", [v for _, v in list(got.values())[0]], [1.0] * 6)
check("v1 seconds precision", list(query_range("v1_disk_free", BASE_S, BASE_S, 1).values()), [[(float(BASE_S), 1.5e9)]])
check("v1 line protocol", list(query_range("v1_mem_used", BASE_S, BASE_S, 1).values()), [[(float(BASE_S), 123.5)]])
check(
    "v1 milliseconds precision: the stored samples themselves",
    raw('v1_cpu_usage{region="eu,west"}', BASE_S + 60),
    {(("__name__", "v1_cpu_usage"), ("host", "web 1"), ("region", "eu,west")): [(float(BASE_S + i * 10), 12.25 + i) for i in range(6)]},
)
check(
    "v1 default (nanosecond) precision keeps the milliseconds",
    raw("v1_net_rx_bytes", BASE_S + 60),
    {(("__name__", "v1_net_rx_bytes"), ("if", "eth0")): [(BASE_S + 7.25, 987654321.0)]},
)

try:
    v1.write(["v1_bad,host=a value=notanumber 1"], params={"db": "telegraf"}, protocol="line")
    check("v1 malformed line is refused", "accepted", "400")
except InfluxDBClientError as e:
    check("v1 malformed line is refused with 400", e.code, 400)
    check("v1 error names the line", "v1_bad,host=a value=notanumber" in str(e.content), True)
check("v1 nothing of the bad batch is stored", series("v1_bad_value"), [])

bad = InfluxDBClient(host=parsed.hostname, port=parsed.port, username=USER, password="wrong", database="telegraf")
try:
    bad.write_points([{"measurement": "v1_x", "fields": {"v": 1.0}}])
    check("v1 wrong password is refused", "accepted", "401")
except InfluxDBClientError as e:
    check("v1 wrong password is refused with 401", e.code, 401)

# --- v2: influxdb-client 1.50.0, token --------------------------------------------------------
with InfluxDBClientV2(url=URL, token=TOKEN, org="m3s") as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    records = [
        Point("v2 temp").tag("room", "a=b c").tag("site", "x,y").field("celsius", 21.5 + i / 4).field("reading", i)
        .field("alarm", i % 2 == 1).field("note", "text")
        .time((BASE_S + i) * 1_000_000_000, WritePrecision.NS)
        for i in range(5)
    ]
    write.write(bucket="sensors", record=records)
    write.write(bucket="sensors", record=f"v2_power,phase=1 watts=-3.75 {(BASE_S + 100) * 1000}", write_precision=WritePrecision.MS)
    write.write(
        bucket="sensors",
        record=Point("v2_fan").tag("unit", "2").field("rpm", 1200).time(BASE_S + 200, WritePrecision.S),
        write_precision=WritePrecision.S,
    )

    got = query_range("{__name__=~\"v2 temp_celsius\"}", BASE_S, BASE_S + 4, 1)
    check(
        "v2 float field with escaped names reads back",
        got,
        {(("__name__", "v2 temp_celsius"), ("room", "a=b c"), ("site", "x,y")): [(float(BASE_S + i), 21.5 + i / 4) for i in range(5)]},
    )
    check(
        "v2 nanosecond timestamps: the stored samples themselves",
        raw('{__name__="v2 temp_celsius", site="x,y"}', BASE_S + 60),
        {(("__name__", "v2 temp_celsius"), ("room", "a=b c"), ("site", "x,y")): [(float(BASE_S + i), 21.5 + i / 4) for i in range(5)]},
    )
    got = query_range('{__name__="v2 temp_alarm"}', BASE_S, BASE_S + 4, 1)
    check("v2 boolean field reads back as 0 and 1", [v for _, v in list(got.values())[0]], [0.0, 1.0, 0.0, 1.0, 0.0])
    check("v2 seconds precision", raw("v2_fan_rpm", BASE_S + 260), {(("__name__", "v2_fan_rpm"), ("unit", "2")): [(float(BASE_S + 200), 1200.0)]})
    got = query_range('{__name__="v2 temp_reading"}', BASE_S, BASE_S + 4, 1)
    check("v2 integer field reads back", [v for _, v in list(got.values())[0]], [float(i) for i in range(5)])
    check("v2 string fields are not stored", series('{__name__="v2 temp_note"}'), [])
    check("v2 milliseconds precision", list(query_range("v2_power_watts", BASE_S + 100, BASE_S + 100, 1).values()), [[(float(BASE_S + 100), -3.75)]])

    try:
        write.write(bucket="sensors", record="v2_bad value=1\nv2_bad value=tru 5")
        check("v2 malformed line is refused", "accepted", "400")
    except ApiException as e:
        check("v2 malformed line is refused with 400", e.status, 400)
        body = json.loads(e.body)
        check("v2 error is InfluxDB's JSON with the line", (body["code"], body.get("line")), ("invalid", 2))
    check("v2 nothing of the bad batch is stored", series("v2_bad_value"), [])

with InfluxDBClientV2(url=URL, token="not-the-token", org="m3s") as client:
    try:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="sensors", record="v2_x v=1")
        check("v2 wrong token is refused", "accepted", "401")
    except ApiException as e:
        check("v2 wrong token is refused with 401", e.status, 401)

print("all InfluxDB client checks passed")
