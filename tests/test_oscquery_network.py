"""OSCQuery opened beyond loopback: announced by zeroconf, and answering only allow-listed
hosts. Run inside a private network namespace that has only loopback (with 10.9.0.1 added
to it as a "network" address), as /work/shared/TESTING.md does for Link: mDNS multicasts
on every interface it finds, and a test must never do that on this machine's real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from peers import require

pytestmark = pytest.mark.integration

SCRIPT = r"""
import http.client, json, socket, time
from zeroconf import ServiceBrowser, Zeroconf
from pythonosc.udp_client import SimpleUDPClient
from livernn.controls.runtime import ControlRuntime
from livernn.engine import Session
from livernn.web.oscquery import OscQuery

session = Session()
session.add_voice("lead", seed=1)
runtime = ControlRuntime(session)
closed = OscQuery(session, runtime, "0.0.0.0", 0, name="closed show").start()
opened = OscQuery(session, runtime, "0.0.0.0", 0, allow=["10.9.0.0/24"], name="open show").start()

found = {}
class Listener:
    def add_service(self, zc, kind, name):
        info = zc.get_service_info(kind, name, 3000)
        if info is not None:
            found[name] = [info.port, [socket.inet_ntoa(a) for a in info.addresses]]
    update_service = add_service
    def remove_service(self, zc, kind, name):
        pass

zc = Zeroconf(interfaces=["127.0.0.1"])
ServiceBrowser(zc, ["_oscjson._tcp.local.", "_osc._udp.local."], Listener())
deadline = time.monotonic() + 10
while len(found) < 4 and time.monotonic() < deadline:
    time.sleep(0.1)
zc.close()

def get(server, path):
    connection = http.client.HTTPConnection("10.9.0.1", server.port, timeout=5, source_address=("10.9.0.1", 0))
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read().decode()

status_closed, _ = get(closed, "/")
status_open, body = get(opened, "/?HOST_INFO")
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.bind(("10.9.0.1", 0))
from pythonosc.osc_message_builder import OscMessageBuilder
def send(server, value):
    builder = OscMessageBuilder("/lead/temperature")
    builder.add_arg(value, "f")
    sender.sendto(builder.build().dgram, ("10.9.0.1", server.osc_port))
send(closed, 1.5)
time.sleep(0.3)
after_closed = session.voices["lead"].params.temperature
send(opened, 2.5)
time.sleep(0.3)
after_open = session.voices["lead"].params.temperature
result = {"found": found, "ports": {"closed": [closed.port, closed.osc_port], "open": [opened.port, opened.osc_port]},
          "announced": [closed.announced, opened.announced], "status_closed": status_closed,
          "status_open": status_open, "host_info": json.loads(body),
          "after_closed": after_closed, "after_open": after_open,
          "refused": closed.refused + closed.osc.stats.refused_host}
closed.close(); opened.close()
print("RESULT " + json.dumps(result))
"""


def test_beyond_loopback_oscquery_is_announced_and_answers_only_allowed_hosts():
    require("unshare")
    require("ip")
    setup = ("ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && "
             "ip addr add 10.9.0.1/24 dev lo && exec \"$0\" -c \"$1\"")
    done = subprocess.run(["unshare", "--net", "sh", "-c", setup, sys.executable, SCRIPT],
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-2000:]
    result = json.loads(lines[0][len("RESULT "):])
    closed_http, _ = result["ports"]["closed"]
    open_http, open_osc = result["ports"]["open"]
    assert result["announced"] == [["closed show._oscjson._tcp.local.", "closed show._osc._udp.local."],
                                   ["open show._oscjson._tcp.local.", "open show._osc._udp.local."]]
    found = result["found"]
    assert found["closed show._oscjson._tcp.local."][0] == closed_http
    assert found["open show._oscjson._tcp.local."][0] == open_http
    assert found["open show._osc._udp.local."][0] == open_osc
    assert "10.9.0.1" in found["open show._oscjson._tcp.local."][1]
    assert result["status_closed"] == 403 and result["status_open"] == 200
    assert result["host_info"]["OSC_PORT"] == open_osc and "OSC_IP" not in result["host_info"]
    assert result["after_closed"] == 1.0  # refused: 10.9.0.1 is not in its allow list
    assert result["after_open"] == 2.5 and result["refused"] == 2
