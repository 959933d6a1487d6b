#!/usr/bin/env python3
"""
Self-check for prtg_standin.py: starts it as a subprocess and drives every
call ztpd uses with urllib (redirects NOT followed), including bad
credentials, the duplicateobject.htm redirect, errors and fault injection.

    python3 tests/peers/prtg/test_standin.py        # ~10 s, stdlib only
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "prtg_standin.py")

TOKEN = "tok-EXAMPLE-123"
USER = "ztpd"
PASSHASH = "1234567890"
PASSWORD = "s3cret-pw"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class Standin:
    def __init__(self, *extra, state_file=None, quiet=True):
        cmd = [sys.executable, STANDIN, "--port", "0", "--apitoken", TOKEN, "--username", USER,
               "--passhash", PASSHASH, "--password", PASSWORD, *(["--quiet"] if quiet else []), *extra]
        if state_file:
            cmd += ["--state-file", state_file]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"no PORT line: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
            self.stderr = self.proc.stderr.read()
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
        return rc

    def get(self, path, params=None, auth="passhash", method="GET", data=None):
        q = list(params) if isinstance(params, list) else list((params or {}).items())
        if auth == "passhash":
            q += [("username", USER), ("passhash", PASSHASH)]
        elif auth == "password":
            q += [("username", USER), ("password", PASSWORD)]
        elif auth == "apitoken":
            q += [("apitoken", TOKEN)]
        elif isinstance(auth, list):
            q += auth
        url = self.base + path + ("?" + urllib.parse.urlencode(q) if q else "")
        req = urllib.request.Request(url, method=method, data=data)
        try:
            with OPENER.open(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8")
            return e.code, dict(e.headers), body

    def devices(self, **filters):
        params = {"content": "devices", "columns": "objid,device,host,group,status"}
        params.update(filters)
        st, _, body = self.get("/api/table.json", params)
        assert st == 200, (st, body)
        return json.loads(body)

    def state(self):
        st, _, body = self.get("/__standin/state", auth=None)
        assert st == 200
        return json.loads(body)


class StandinTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.state_file = os.path.join(self.tmp.name, "state.json")
        self.s = Standin(state_file=self.state_file)

    def tearDown(self):
        self.assertEqual(self.s.stop(), 0)
        self.tmp.cleanup()

    # ---- authentication ----

    def test_three_auth_forms_accepted(self):
        for form in ("passhash", "password", "apitoken"):
            st, _, body = self.s.get("/api/table.json", {"content": "devices", "columns": "objid"}, auth=form)
            self.assertEqual(st, 200, form)
            self.assertIn("devices", json.loads(body))
        auths = [r["auth"] for r in self.s.state()["requests"]]
        self.assertEqual(auths, ["passhash", "password", "apitoken"])

    def test_bad_credentials_401(self):
        cases = [
            None,
            [("apitoken", "wrong")],
            [("username", USER), ("passhash", "999")],
            [("username", USER), ("password", "nope")],
            [("username", "other"), ("passhash", PASSHASH)],
            [("passhash", PASSHASH)],
            [("username", USER)],
            [("apitoken", "wrong"), ("username", USER), ("passhash", PASSHASH)],
        ]
        for auth in cases:
            for path, params in (("/api/table.json", {"content": "devices"}),
                                 ("/api/duplicateobject.htm", {"id": "3001", "name": "x", "targetid": "2001"}),
                                 ("/api/pause.htm", {"id": "3001", "action": "1"})):
                st, h, body = self.s.get(path, params, auth=auth)
                self.assertEqual(st, 401, (auth, path))
                self.assertEqual(body, "<HTML><BODY><B>Unauthorized</B></BODY></HTML>")
                self.assertTrue(h["Content-Type"].startswith("text/html"))
        # nothing was created
        self.assertEqual(self.s.state()["next_id"], 4001)

    def test_getpasshash(self):
        st, _, body = self.s.get("/api/getpasshash.htm", {"username": USER, "password": PASSWORD}, auth=None)
        self.assertEqual((st, body), (200, PASSHASH))
        st, _, body = self.s.get("/api/getpasshash.htm", {"username": USER, "password": "bad"}, auth=None)
        self.assertEqual(st, 401)

    def test_credentials_masked_in_log_and_state_file(self):
        self.s.get("/api/table.json", {"content": "devices"}, auth="passhash")
        self.s.get("/api/table.json", {"content": "devices"}, auth="apitoken")
        self.s.get("/api/table.json", {"content": "devices"}, auth="password")
        snap = self.s.state()
        text = json.dumps(snap["requests"])
        for secret in (PASSHASH, TOKEN, PASSWORD):
            self.assertNotIn(secret, text)
        self.assertIn("passhash=***", snap["requests"][0]["query"])
        self.assertEqual(snap["requests"][1]["params"]["apitoken"], ["***"])
        with open(self.state_file, encoding="utf-8") as f:
            on_disk = json.load(f)
        self.assertEqual(len(on_disk["requests"]), 3)
        self.assertNotIn(PASSWORD, json.dumps(on_disk))

    # ---- table.json ----

    def test_table_json_shape_and_host_filter(self):
        doc = self.s.devices(filter_host="10.9.9.9")
        self.assertEqual(doc["treesize"], 0)
        self.assertEqual(doc["devices"], [])
        self.assertIn("prtg-version", doc)
        doc = self.s.devices(filter_host="template.invalid")
        self.assertEqual(doc["treesize"], 1)
        d = doc["devices"][0]
        self.assertEqual(d["objid"], 3001)
        self.assertEqual(d["objid_raw"], 3001)
        self.assertEqual(d["device"], "ztpd-template")
        self.assertEqual(d["host"], "template.invalid")
        self.assertEqual(d["group"], "ztpd")
        self.assertEqual(d["status_raw"], 7)
        self.assertEqual(d["status"], "Paused by User")
        self.assertEqual(set(d), {"objid", "objid_raw", "device", "device_raw", "host", "host_raw",
                                  "group", "group_raw", "status", "status_raw"})

    def test_table_json_filters_count_and_groups(self):
        for i in range(5):
            st, _, _ = self.s.get("/__standin/devices", auth=None, method="POST",
                                  data=json.dumps({"name": f"sw{i}", "host": f"10.0.0.{i}"}).encode())
            self.assertEqual(st, 201)
        doc = self.s.devices(filter_host="@sub(10.0.0.)", count="2", start="1")
        self.assertEqual(doc["treesize"], 5)
        self.assertEqual([d["host"] for d in doc["devices"]], ["10.0.0.1", "10.0.0.2"])
        doc = self.s.devices(filter_host="@sub(10.0.0.)", count="*")
        self.assertEqual(len(doc["devices"]), 5)
        # repeated filter_xyz: OR
        st, _, body = self.s.get("/api/table.json", [("content", "devices"), ("columns", "objid,host"),
                                                     ("filter_host", "10.0.0.1"), ("filter_host", "10.0.0.3")])
        self.assertEqual(sorted(d["host"] for d in json.loads(body)["devices"]), ["10.0.0.1", "10.0.0.3"])
        # filter on status: paused template only
        doc = self.s.devices(filter_status="7")
        self.assertEqual([d["objid"] for d in doc["devices"]], [3001])
        # groups table, id= subtree
        st, _, body = self.s.get("/api/table.json", {"content": "groups", "columns": "objid,name,parentid"})
        groups = json.loads(body)["groups"]
        self.assertEqual({g["objid"] for g in groups}, {0, 2001})
        doc = self.s.devices(id="2001", count="*")
        self.assertEqual(doc["treesize"], 6)

    # ---- duplicateobject.htm ----

    def test_duplicate_redirect_new_device_paused(self):
        st, h, body = self.s.get("/api/duplicateobject.htm",
                                 {"id": "3001", "name": "sw-lab-1", "host": "192.0.2.10", "targetid": "2001"})
        self.assertEqual(st, 302)
        self.assertEqual(h["Location"], "/device.htm?id=4001")
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(h["Location"]).query)
        new_id = int(q["id"][0])
        doc = self.s.devices(filter_objid=str(new_id))
        self.assertEqual(doc["treesize"], 1)
        d = doc["devices"][0]
        self.assertEqual((d["device"], d["host"], d["group"], d["status_raw"]),
                         ("sw-lab-1", "192.0.2.10", "ztpd", 7))
        # the template's Ping sensor was duplicated too (id 4002), paused
        objs = {o["objid"]: o for o in self.s.state()["objects"]}
        self.assertEqual(objs[4002]["type"], "sensor")
        self.assertEqual(objs[4002]["parentid"], 4001)
        self.assertEqual(objs[4002]["status_raw"], 7)
        # a second duplicate gets the next free id after the sensor; PRTG does
        # not refuse a duplicate name or host
        st, h, _ = self.s.get("/api/duplicateobject.htm",
                              {"id": "3001", "name": "sw-lab-1", "host": "192.0.2.10", "targetid": "2001"})
        self.assertEqual((st, h["Location"]), (302, "/device.htm?id=4003"))
        self.assertEqual(self.s.devices(filter_host="192.0.2.10")["treesize"], 2)

    def test_following_the_redirect_lands_on_login_page(self):
        st, h, _ = self.s.get("/api/duplicateobject.htm",
                              {"id": "3001", "name": "n", "host": "h", "targetid": "2001"}, auth="apitoken")
        st, h, _ = self.s.get(h["Location"], auth=None)  # what a redirect-following client does
        self.assertEqual(st, 302)
        self.assertEqual(h["Location"], "/public/login.htm?loginurl=/device.htm?id=4001&errormsg=")
        st, _, body = self.s.get(h["Location"], auth=None)
        self.assertEqual(st, 200)
        self.assertIn('name="loginurl" value="/device.htm?id=4001"', body)

    def test_duplicate_errors(self):
        for params in ({"id": "999", "name": "n", "targetid": "2001"},
                       {"id": "3001", "name": "n", "targetid": "999"},
                       {"id": "abc", "name": "n", "targetid": "2001"},
                       {"name": "n", "targetid": "2001"}):
            st, h, body = self.s.get("/api/duplicateobject.htm", params)
            self.assertEqual(st, 400, params)
            self.assertTrue(h["Content-Type"].startswith("text/xml"))
            self.assertIn("<error>Sorry, there is no object with the specified id.</error>", body)
            self.assertIn("<version>", body)
        # device below a device
        st, _, body = self.s.get("/api/duplicateobject.htm", {"id": "3001", "name": "n", "targetid": "3001"})
        self.assertEqual(st, 400)
        self.assertIn("<error>", body)
        self.assertEqual(self.s.state()["next_id"], 4001)

    # ---- setobjectproperty / getobjectproperty / pause ----

    def test_set_get_property_and_pause(self):
        st, h, body = self.s.get("/api/setobjectproperty.htm", {"id": "3001", "name": "host", "value": "198.51.100.7"})
        self.assertEqual(st, 200)
        self.assertEqual(body, '<HTML><BODY class="no-content"><B class="no-content">OK</B></BODY></HTML>')
        st, h, body = self.s.get("/api/getobjectproperty.htm", {"id": "3001", "name": "host"})
        self.assertEqual(st, 200)
        self.assertIn("<result>198.51.100.7</result>", body)
        st, _, body = self.s.get("/api/getobjectproperty.htm", {"id": "3001", "name": "nosuchthing"})
        self.assertIn("<result>(Property not found)</result>", body)
        st, _, body = self.s.get("/api/setobjectproperty.htm", {"id": "5555", "name": "host", "value": "x"})
        self.assertEqual(st, 400)
        self.assertIn("Sorry, there is no object with the specified id.", body)
        # resume, then pause with a message
        st, _, body = self.s.get("/api/pause.htm", {"id": "3001", "action": "1"})
        self.assertEqual(st, 200)
        self.assertIn('title="Pause"', body)
        self.assertEqual(self.s.devices(filter_objid="3001")["devices"][0]["status_raw"], 3)
        st, _, body = self.s.get("/api/pause.htm", {"id": "3001", "action": "0", "pausemsg": "maintenance"})
        self.assertEqual(st, 200)
        self.assertIn('title="Resume"', body)
        obj = [o for o in self.s.state()["objects"] if o["objid"] == 3001][0]
        self.assertEqual((obj["status_raw"], obj["pausemsg"]), (7, "maintenance"))
        st, _, body = self.s.get("/api/pause.htm", {"id": "777", "action": "1"})
        self.assertEqual(st, 400)
        st, _, body = self.s.get("/api/pause.htm", {"id": "3001", "action": "2"})
        self.assertEqual(st, 400)

    def test_unknown_endpoint_404(self):
        st, _, body = self.s.get("/api/table.xml", {"content": "devices"})
        self.assertEqual(st, 404)
        self.assertIn("Not implemented by the PRTG stand-in", body)

    # ---- the whole ztpd sequence ----

    def test_add_device_sequence(self):
        host = "192.0.2.44"
        self.assertEqual(self.s.devices(filter_host=host)["treesize"], 0)
        st, h, _ = self.s.get("/api/duplicateobject.htm",
                              {"id": "3001", "name": "edge-44", "host": host, "targetid": "2001"}, auth="apitoken")
        self.assertEqual(st, 302)
        new_id = urllib.parse.parse_qs(urllib.parse.urlsplit(h["Location"]).query)["id"][0]
        st, _, _ = self.s.get("/api/setobjectproperty.htm", {"id": new_id, "name": "host", "value": host},
                              auth="apitoken")
        self.assertEqual(st, 200)
        st, _, _ = self.s.get("/api/pause.htm", {"id": new_id, "action": "1"}, auth="apitoken")
        self.assertEqual(st, 200)
        d = self.s.devices(filter_host=host)["devices"]
        self.assertEqual(len(d), 1)
        self.assertEqual((d[0]["objid"], d[0]["status_raw"]), (int(new_id), 3))
        snap = self.s.state()
        self.assertEqual([r["path"] for r in snap["requests"]],
                         ["/api/table.json", "/api/duplicateobject.htm", "/api/setobjectproperty.htm",
                          "/api/pause.htm", "/api/table.json"])
        dup = snap["requests"][1]
        self.assertEqual((dup["status"], dup["location"], dup["created"]), (302, f"/device.htm?id={new_id}", int(new_id)))
        self.assertEqual(dup["params"]["targetid"], ["2001"])
        # a second run sees the host and would stop there
        self.assertEqual(self.s.devices(filter_host=host)["treesize"], 1)

    def test_reset(self):
        self.s.get("/api/duplicateobject.htm", {"id": "3001", "name": "n", "targetid": "2001"})
        st, _, _ = self.s.get("/__standin/reset", auth=None, method="POST", data=b"")
        self.assertEqual(st, 200)
        snap = self.s.state()
        self.assertEqual((snap["next_id"], snap["requests"]), (4001, []))


class FaultTest(unittest.TestCase):
    def run_standin(self, *extra):
        s = Standin(*extra)
        self.addCleanup(lambda: self.assertEqual(s.stop(), 0))
        return s

    def test_fail_first(self):
        s = self.run_standin("--fail-first", "2")
        codes = [s.get("/api/table.json", {"content": "devices"})[0] for _ in range(3)]
        self.assertEqual(codes, [503, 503, 200])
        snap = s.state()
        self.assertEqual(snap["counters"]["faults_injected"], 2)
        self.assertIn("fault", snap["requests"][0])

    def test_fail_only_endpoint(self):
        s = self.run_standin("--fail-first", "1", "--fail-only", "duplicateobject.htm")
        self.assertEqual(s.get("/api/table.json", {"content": "devices"})[0], 200)
        dup = {"id": "3001", "name": "n", "host": "h", "targetid": "2001"}
        self.assertEqual(s.get("/api/duplicateobject.htm", dup)[0], 503)
        self.assertEqual(s.state()["next_id"], 4001)  # nothing created by the failed call
        self.assertEqual(s.get("/api/duplicateobject.htm", dup)[0], 302)

    def test_lose_duplicate_response(self):
        s = self.run_standin("--lose-duplicate-response", "1")
        st, h, _ = s.get("/api/duplicateobject.htm", {"id": "3001", "name": "n", "host": "192.0.2.5", "targetid": "2001"})
        self.assertEqual(st, 503)
        self.assertNotIn("Location", h)
        # ...but the device exists: a client must look it up by host before retrying
        d = s.devices(filter_host="192.0.2.5")["devices"]
        self.assertEqual([x["objid"] for x in d], [4001])

    def test_duplicate_without_location(self):
        s = self.run_standin("--duplicate-without-location", "1")
        st, h, _ = s.get("/api/duplicateobject.htm", {"id": "3001", "name": "n", "host": "192.0.2.6", "targetid": "2001"})
        self.assertEqual(st, 200)
        self.assertNotIn("Location", h)
        self.assertEqual(s.devices(filter_host="192.0.2.6")["treesize"], 1)

    def test_redirect_variants_and_string_objid(self):
        s = self.run_standin("--redirect-status", "301", "--absolute-location", "--objid-as-string")
        st, h, _ = s.get("/api/duplicateobject.htm", {"id": "3001", "name": "n", "host": "h", "targetid": "2001"})
        self.assertEqual(st, 301)
        self.assertEqual(h["Location"], f"http://127.0.0.1:{s.port}/device.htm?id=4001")
        d = s.devices(filter_objid="4001")["devices"][0]
        self.assertEqual((d["objid"], d["objid_raw"]), ("4001", 4001))

    def test_stderr_log_masks_credentials(self):
        s = Standin(quiet=False)
        s.get("/api/table.json", {"content": "devices"}, auth="passhash")
        s.get("/api/table.json", {"content": "devices"}, auth="apitoken")
        s.get("/api/getpasshash.htm", {"username": USER, "password": PASSWORD}, auth=None)
        self.assertEqual(s.stop(), 0)
        self.assertIn("/api/table.json", s.stderr)
        for secret in (PASSHASH, TOKEN, PASSWORD):
            self.assertNotIn(secret, s.stderr)

    def test_seed_and_device_flags(self):
        s = self.run_standin("--device", "old-sw,192.0.2.99", "--template-id", "5000", "--next-id", "6000")
        d = s.devices(filter_host="192.0.2.99")["devices"]
        self.assertEqual(len(d), 1)
        st, h, _ = s.get("/api/duplicateobject.htm", {"id": "5000", "name": "n", "targetid": "2001"})
        self.assertEqual((st, h["Location"]), (302, "/device.htm?id=6001"))  # 6000 went to old-sw
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"next_id": 9000, "objects": [
                {"objid": 1, "type": "probenode", "name": "P", "parentid": 0},
                {"objid": 10, "type": "group", "name": "G", "parentid": 1},
                {"objid": 20, "type": "device", "name": "T", "parentid": 10, "host": "t", "status_raw": 7},
            ]}, f)
        self.addCleanup(os.unlink, f.name)
        s2 = self.run_standin("--seed", f.name)
        st, h, _ = s2.get("/api/duplicateobject.htm", {"id": "20", "name": "n", "targetid": "10"})
        self.assertEqual((st, h["Location"]), (302, "/device.htm?id=9000"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
