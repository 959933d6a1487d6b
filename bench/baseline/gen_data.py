#!/usr/bin/env python3
"""Generate the benchmark's data for the baseline apps and ztpd (deterministic, seeded).

    gen_data.py [--arista N] [--iosxe N] --out DIR

writes, under DIR:
  arista/swinfo.json     N Arista switches keyed by system MAC (default 1000)
  iosxe/inventory.yaml   N IOS XE devices keyed by serial number (default 1000)
  keys/macs100.txt       100 MACs spread over the first 1000 switches (wrk, memo path)
  keys/macs_all.txt      every MAC of swinfo.json, once (wrk, uncached path)
  keys/serials100.txt    100 serials spread over the first 1000 devices (wrk, call-backs)

Adapted from ../shared/baseline/gen_data.py: the same record shapes and the same seeded
RNG, so the first 1000 switches and the first 1000 devices are exactly the baseline's
(and the repository's inventory/), whatever N is. The baseline draws the devices from
the RNG after the 1000th switch; so does this, keeping the RNG state at that point.
"""
import argparse
import json
import os
import random

import yaml

SEED = 20240611
BASE_N = 1000  # the baseline's size: the records up to here are the baseline's

SITES = ["ams1", "fra2", "lon3", "nyc4", "sfo5", "sin6", "syd7", "tok8"]
VLAN_NAMES = ["USERS", "VOICE", "PRINTERS", "CAMERAS", "WIFI", "IOT", "SERVERS",
              "MGMT-DEV", "GUEST", "LAB", "BACKUP", "STORAGE"]
PEERS = ["server", "ap", "printer", "camera", "phone", "uplink", "fw", "nas"]
SECRET_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./"


def secret(rng):
    return "$6$" + "".join(rng.choice(SECRET_CHARS) for _ in range(86))


def vlans_for(rng):
    ids = sorted(rng.sample(range(10, 400, 10), 6))
    return [{"id": v, "name": f"{rng.choice(VLAN_NAMES)}-{v}"} for v in ids]


def arista_switch(rng, i):
    mac = "00:1c:73:%02x:%02x:%02x" % ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)
    site = SITES[i % len(SITES)]
    vlans = vlans_for(rng)
    intfs = []
    for p in range(1, 9):
        trunk = p in (7, 8)
        intf = {"name": f"Ethernet{p}",
                "description": f"{rng.choice(PEERS)}-{site}-{rng.randint(1, 99):02d} port {p}",
                "mode": "trunk" if trunk else "access"}
        if trunk:
            intf["allowed_vlans"] = ",".join(str(v["id"]) for v in vlans)
        else:
            intf["vlan"] = rng.choice(vlans)["id"]
        intfs.append(intf)
    third, fourth = divmod(i, 250)
    return mac, {
        "system_mac": mac,
        "hostname": f"{site}-leaf{i:04d}",
        "site": site,
        "role": rng.choice(["leaf", "access", "spine"]),
        "domain": f"{site}.example.net",
        "mgmt_ip": f"10.{100 + third}.{fourth}.{10 + (i % 200)}",
        "mgmt_prefix": 24,
        "mgmt_gw": f"10.{100 + third}.{fourth}.1",
        "dns": ["10.0.0.53", "10.0.1.53"],
        "ntp_servers": [f"ntp{k}.{site}.example.net" for k in (1, 2, 3)],
        "admin_secret": secret(rng),
        "ztp_secret": secret(rng),
        "vlans": vlans,
        "interfaces": intfs,
    }


def iosxe_device(rng, i):
    serial = "FOC%04d%s%03d" % (2100 + i % 300, "ABCDEFGHJK"[i % 10], i)
    site = SITES[i % len(SITES)]
    vlans = vlans_for(rng)
    intfs = [{"name": f"GigabitEthernet1/0/{p}",
              "description": f"{rng.choice(PEERS)}-{site}-{rng.randint(1, 99):02d}",
              "vlan": rng.choice(vlans)["id"]} for p in range(1, 9)]
    return serial, {
        "serial": serial,
        "hostname": f"{site}-acc{i:04d}",
        "domain": f"{site}.example.net",
        "username": "netadmin",
        "secret": secret(rng),
        "mgmt_vlan": 999,
        "mgmt_ip": f"10.{50 + i // 250}.{i % 250}.{10 + i % 200}",
        "mgmt_mask": "255.255.255.0",
        "mgmt_gw": f"10.{50 + i // 250}.{i % 250}.1",
        "ntp_servers": [f"ntp{k}.{site}.example.net" for k in (1, 2)],
        "vlans": vlans,
        "interfaces": intfs,
    }


def generate(n_arista, n_iosxe):
    """The switches and devices, as dicts in key order."""
    rng = random.Random(SEED)
    switches = {}
    after_base = None
    for i in range(1, max(n_arista, BASE_N) + 1):
        mac, sw = arista_switch(rng, i)
        if i <= n_arista:
            switches[mac] = sw
        if i == BASE_N:
            after_base = rng.getstate()
    rng.setstate(after_base)
    devices = dict(iosxe_device(rng, i) for i in range(1, n_iosxe + 1))
    return switches, devices


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arista", type=int, default=BASE_N, metavar="N",
                    help="Arista switches in arista/swinfo.json (default %(default)s)")
    ap.add_argument("--iosxe", type=int, default=BASE_N, metavar="N",
                    help="IOS XE devices in iosxe/inventory.yaml (default %(default)s)")
    ap.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    args = ap.parse_args()
    if args.arista < 1 or args.iosxe < 1:
        ap.error("--arista and --iosxe need at least 1")
    switches, devices = generate(args.arista, args.iosxe)
    for sub in ("arista", "iosxe", "keys"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    with open(os.path.join(args.out, "arista", "swinfo.json"), "w") as f:
        json.dump(switches, f, indent=1)
    with open(os.path.join(args.out, "iosxe", "inventory.yaml"), "w") as f:
        yaml.dump(devices, f, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                  sort_keys=False, default_flow_style=False)
    macs = list(switches)
    serials = list(devices)
    keys = os.path.join(args.out, "keys")
    write_lines(os.path.join(keys, "macs100.txt"), macs[:BASE_N][::10][:100])
    write_lines(os.path.join(keys, "macs_all.txt"), macs)
    write_lines(os.path.join(keys, "serials100.txt"), serials[:BASE_N][::10][:100])
    print(f"wrote {len(switches)} switches, {len(devices)} devices and the key files "
          f"to {args.out}")


if __name__ == "__main__":
    main()
