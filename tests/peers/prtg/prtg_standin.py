#!/usr/bin/env python3
"""
PRTG stand-in: an HTTP server that answers the PRTG API v1 calls ztpd makes,
the way a PRTG Network Monitor core server answers them. It is NOT PRTG
(PRTG is Windows-only software); it exists so ztpd's tests can run against
a peer with PRTG's paths, parameter names, status codes, bodies and quirks.
README.md next to this file lists every call, the sources each behaviour was
taken from, and which details are the stand-in's own choices.

    python3 prtg_standin.py --port 0 --apitoken TOKEN --username U --passhash H \
        [--password P] [--state-file F] [--seed FILE] [fault flags ...]

First stdout line: "PORT <n>" (flushed). Binds 127.0.0.1 only. Runs until
SIGTERM/SIGINT, then writes --state-file (if given) and exits 0.

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

# Status codes and English texts, from the "status" column description in
# PRTG's API documentation (1..14) and PrtgAPI's Status enum.
STATUS_TEXT = {
    1: "Unknown",
    2: "Scanning",
    3: "Up",
    4: "Warning",
    5: "Down",
    6: "No Probe",
    7: "Paused by User",
    8: "Paused by Dependency",
    9: "Paused by Schedule",
    10: "Unusual",
    11: "Not Licensed",
    12: "Paused Until",
    13: "Down Acknowledged",
    14: "Down Partial",
}
PAUSED_BY_USER = 7
UP = 3

SECRET_PARAMS = ("passhash", "password", "apitoken")
MASK = "***"
SECRET_RE = re.compile(r"((?:^|[?&])(?:passhash|password|apitoken)=)[^&\s\"]*")

# Bodies taken from real PRTG answers (see README, "Sources").
UNAUTHORIZED_BODY = "<HTML><BODY><B>Unauthorized</B></BODY></HTML>"
NO_CONTENT_OK_BODY = '<HTML><BODY class="no-content"><B class="no-content">OK</B></BODY></HTML>'
NO_OBJECT_ERROR = "Sorry, there is no object with the specified id."
PROPERTY_NOT_FOUND = "(Property not found)"

# Which table columns exist for which content, and which object types a
# "content=" value lists.
CONTENT_TYPES = {
    "devices": ("device",),
    "groups": ("group",),
    "probes": ("probenode",),
    "sensors": ("sensor",),
}
# Where a duplicated object of a given type may be placed (targetid type).
CLONE_TARGETS = {
    "device": ("group", "probenode"),
    "group": ("group", "probenode"),
    "sensor": ("device",),
}
PAGE_FOR_TYPE = {
    "device": "device.htm",
    "group": "group.htm",
    "sensor": "sensor.htm",
    "probenode": "probenode.htm",
}
OBJECT_PAGES = ("/device.htm", "/group.htm", "/sensor.htm", "/probenode.htm", "/object.htm")


# --------------------------------------------------------------------------
# In-memory tree
# --------------------------------------------------------------------------

def make_obj(objid, typ, name, parentid, host="", status_raw=UP, tags=None, properties=None):
    return {
        "objid": int(objid),
        "type": typ,
        "name": name,
        "parentid": None if parentid is None else int(parentid),
        "host": host,
        "status_raw": int(status_raw),
        "pausemsg": "",
        "tags": list(tags or []),
        "properties": dict(properties or {}),
        "position": 0,
        "cloned_from": None,
    }


def default_seed(args) -> dict:
    objs = [
        make_obj(0, "group", "Root", None),
        make_obj(args.probe_id, "probenode", args.probe_name, 0),
        make_obj(args.group_id, "group", args.group_name, args.probe_id),
        make_obj(args.template_id, "device", args.template_name, args.group_id,
                 host=args.template_host, status_raw=PAUSED_BY_USER, tags=["ztpd-template"]),
        make_obj(args.template_id + 1, "sensor", "Ping", args.template_id,
                 status_raw=PAUSED_BY_USER, tags=["pingsensor"]),
    ]
    next_id = args.next_id
    for spec in args.device or []:
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise SystemExit(f"ERROR --device wants NAME,HOST[,PARENTID], got {spec!r}")
        parent = int(parts[2]) if len(parts) == 3 else args.group_id
        objs.append(make_obj(next_id, "device", parts[0], parent, host=parts[1], status_raw=UP))
        next_id += 1
    return {"objects": objs, "next_id": next_id}


def load_seed_file(path) -> dict:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    objs = []
    for o in raw.get("objects", []):
        obj = make_obj(o["objid"], o["type"], o["name"], o.get("parentid"), host=o.get("host", ""),
                       status_raw=o.get("status_raw", UP), tags=o.get("tags"),
                       properties=o.get("properties"))
        obj["pausemsg"] = o.get("pausemsg", "")
        objs.append(obj)
    if not any(o["objid"] == 0 for o in objs):
        objs.insert(0, make_obj(0, "group", "Root", None))
    next_id = int(raw.get("next_id", max(o["objid"] for o in objs) + 1))
    return {"objects": objs, "next_id": next_id}


class Tree:
    def __init__(self, seed: dict):
        self.seed = copy.deepcopy(seed)
        self.reset()

    def reset(self):
        self.objects = {o["objid"]: copy.deepcopy(o) for o in self.seed["objects"]}
        self.next_id = int(self.seed["next_id"])

    def get(self, objid):
        return self.objects.get(objid)

    def children(self, objid):
        return sorted((o for o in self.objects.values() if o["parentid"] == objid),
                      key=lambda o: (o["position"], o["objid"]))

    def subtree(self, objid):
        out = []
        stack = [objid]
        while stack:
            cur = stack.pop()
            o = self.objects.get(cur)
            if o is None:
                continue
            out.append(o)
            stack.extend(c["objid"] for c in self.children(cur))
        return out

    def ancestor_of_type(self, obj, types):
        cur = self.objects.get(obj["parentid"]) if obj["parentid"] is not None else None
        while cur is not None:
            if cur["type"] in types:
                return cur
            cur = self.objects.get(cur["parentid"]) if cur["parentid"] is not None else None
        return None

    def alloc_id(self):
        while self.next_id in self.objects:
            self.next_id += 1
        nid = self.next_id
        self.next_id += 1
        return nid

    def clone(self, src, targetid, name, host):
        """Copy src and everything below it under targetid. PRTG starts every
        duplicated object paused."""
        mapping = {}

        def copy_one(o, new_parent, new_name=None):
            nid = self.alloc_id()
            mapping[o["objid"]] = nid
            n = copy.deepcopy(o)
            n["objid"] = nid
            n["parentid"] = new_parent
            n["status_raw"] = PAUSED_BY_USER
            n["pausemsg"] = ""
            n["cloned_from"] = o["objid"]
            n["position"] = len(self.children(new_parent))
            if new_name is not None:
                n["name"] = new_name
            self.objects[nid] = n
            for c in self.children(o["objid"]):
                if c["objid"] in mapping:  # never recurse into the fresh copy
                    continue
                copy_one(c, nid)
            return n

        root = copy_one(src, targetid, new_name=name)
        if root["type"] == "device" and host is not None:
            root["host"] = host
        return root

    def snapshot(self):
        return [self.public_obj(o) for o in sorted(self.objects.values(), key=lambda o: o["objid"])]

    def public_obj(self, o):
        d = {k: copy.deepcopy(v) for k, v in o.items() if k != "position"}
        d["status"] = STATUS_TEXT.get(o["status_raw"], str(o["status_raw"]))
        d["active"] = o["status_raw"] not in (PAUSED_BY_USER, 12)
        return d


# --------------------------------------------------------------------------
# Table columns (table.json)
# --------------------------------------------------------------------------

def column_value(tree: Tree, o: dict, col: str):
    """(display, raw) for one column of one object, or None if the column
    does not apply. PRTG's JSON tables carry each column twice: 'col' (the
    display text) and 'col_raw' (the raw value)."""
    if col == "objid":
        return o["objid"], o["objid"]
    if col == "name":
        return o["name"], o["name"]
    if col == "type":
        t = {"probenode": "Probe", "group": "Group", "device": "Device", "sensor": "Sensor"}[o["type"]]
        return t, t.lower()
    if col == "basetype":
        return o["type"], o["type"]
    if col == "device":
        if o["type"] == "device":
            return o["name"], o["name"]
        d = tree.ancestor_of_type(o, ("device",))
        return (d["name"], d["name"]) if d else ("", "")
    if col == "group":
        if o["type"] in ("group", "probenode"):
            return o["name"], o["name"]
        g = tree.ancestor_of_type(o, ("group", "probenode"))
        return (g["name"], g["name"]) if g else ("", "")
    if col == "probe":
        if o["type"] == "probenode":
            return o["name"], o["name"]
        p = tree.ancestor_of_type(o, ("probenode",))
        return (p["name"], p["name"]) if p else ("", "")
    if col == "host":
        return o["host"], o["host"]
    if col == "status":
        return STATUS_TEXT.get(o["status_raw"], str(o["status_raw"])), o["status_raw"]
    if col == "active":
        active = o["status_raw"] not in (PAUSED_BY_USER, 12)
        return active, -1 if active else 0
    if col == "parentid":
        return o["parentid"], o["parentid"]
    if col == "tags":
        s = " ".join(o["tags"])
        return s, s
    if col == "message":
        msg = "Paused by User" + (f" ({o['pausemsg']})" if o["pausemsg"] else "") \
            if o["status_raw"] == PAUSED_BY_USER else "OK"
        return msg, msg
    if col in ("location", "comments", "priority"):
        v = o["properties"].get(col, "3" if col == "priority" else "")
        return v, int(v) if col == "priority" and str(v).isdigit() else v
    return None


def parse_filter(expr: str):
    """PRTG filter value syntax: plain value (equals), @sub(a,b), @neq(v),
    @above(v), @below(v), @tag(t)."""
    for op in ("sub", "neq", "above", "below", "tag"):
        pre = f"@{op}("
        if expr.startswith(pre) and expr.endswith(")"):
            inner = expr[len(pre):-1]
            return op, [x for x in inner.split(",")] if op in ("sub", "tag") else [inner]
    return "eq", [expr]


def matches_filter(tree, o, col, exprs) -> bool:
    """Several values for one filter_xyz are ORed (PRTG manual)."""
    cv = column_value(tree, o, col)
    if cv is None:
        return False
    _, raw = cv
    for expr in exprs:
        op, vals = parse_filter(expr)
        if col == "tags" and op in ("eq", "tag", "sub"):
            tags = [t.lower() for t in o["tags"]]
            if op == "sub":
                if any(v.lower() in t for v in vals for t in tags):
                    return True
            elif any(v.lower() in tags for v in vals):
                return True
            continue
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            try:
                nums = [float(v) for v in vals]
            except ValueError:
                nums = None
            if nums is not None:
                if op == "eq" and float(raw) == nums[0]:
                    return True
                if op == "neq" and float(raw) != nums[0]:
                    return True
                if op == "above" and float(raw) > nums[0]:
                    return True
                if op == "below" and float(raw) < nums[0]:
                    return True
                if op == "sub" and any(v in str(raw) for v in vals):
                    return True
                continue
        s = str(raw).lower()
        if op == "eq" and s == vals[0].lower():
            return True
        if op == "neq" and s != vals[0].lower():
            return True
        if op == "sub" and any(v.lower() in s for v in vals):
            return True
        if op == "above" and s > vals[0].lower():
            return True
        if op == "below" and s < vals[0].lower():
            return True
    return False


# --------------------------------------------------------------------------
# Server state
# --------------------------------------------------------------------------

class State:
    def __init__(self, args, seed):
        self.args = args
        self.lock = threading.RLock()
        self.tree = Tree(seed)
        self.requests = []
        self.seq = 0
        self.api_calls = 0
        self.faults = 0
        self.fail_left = args.fail_first
        self.lose_dup_left = args.lose_duplicate_response
        self.dup_noloc_left = args.duplicate_without_location

    def reset(self):
        with self.lock:
            self.tree.reset()
            self.requests = []
            self.seq = 0
            self.api_calls = 0
            self.faults = 0
            self.fail_left = self.args.fail_first
            self.lose_dup_left = self.args.lose_duplicate_response
            self.dup_noloc_left = self.args.duplicate_without_location

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "standin": "prtg",
                "prtg_version": self.args.prtg_version,
                "next_id": self.tree.next_id,
                "counters": {"api_calls": self.api_calls, "faults_injected": self.faults,
                             "requests_logged": len(self.requests)},
                "objects": self.tree.snapshot(),
                "requests": copy.deepcopy(self.requests),
            }

    def write_state_file(self):
        path = self.args.state_file
        if not path:
            return
        data = json.dumps(self.snapshot(), indent=2, sort_keys=False)
        tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data + "\n")
        os.replace(tmp, path)


def mask_query(raw_query: str) -> str:
    """The query string exactly as sent, with credential values replaced."""
    if not raw_query:
        return ""
    out = []
    for part in raw_query.split("&"):
        key, sep, _ = part.partition("=")
        if urllib.parse.unquote_plus(key) in SECRET_PARAMS and sep:
            out.append(f"{key}={MASK}")
        else:
            out.append(part)
    return "&".join(out)


def masked_params(params: dict) -> dict:
    return {k: ([MASK] * len(v) if k in SECRET_PARAMS else list(v)) for k, v in params.items()}


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class Reply:
    def __init__(self, status, body="", ctype="text/html; charset=UTF-8", headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.ctype = ctype
        self.headers = headers or {}


def xml_error(version, message, status=400):
    body = ('<?xml version="1.0" encoding="UTF-8" ?>\n<prtg>\n'
            f"<version>{xml_escape(version)}</version>\n"
            f"<error>{xml_escape(message)}</error>\n</prtg>\n")
    return Reply(status, body, "text/xml; charset=UTF-8")


def one(params, name):
    v = params.get(name)
    return v[-1] if v else None


def parse_ids(value):
    """id=1234 or id=1234,1235 (PRTG accepts a comma-separated list)."""
    if value is None or value == "":
        return None
    out = []
    for p in value.split(","):
        p = p.strip()
        if not p.lstrip("-").isdigit():
            return None
        out.append(int(p))
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PRTG"
    sys_version = ""
    state: State = None  # set at start-up

    # ---- plumbing ----

    def log_message(self, fmt, *a):
        if not self.state.args.quiet:
            line = SECRET_RE.sub(lambda m: m.group(1) + MASK, fmt % a)
            sys.stderr.write("prtg-standin: " + line + "\n")

    def version_string(self):
        return f"PRTG/{self.state.args.prtg_version} (ztpd stand-in)"

    def send(self, r: Reply):
        self.send_response(r.status)
        self.send_header("Content-Type", r.ctype)
        self.send_header("Content-Length", str(len(r.body)))
        self.send_header("Cache-Control", "no-cache")
        for k, v in r.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(r.body)

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        path, raw_query = split.path, split.query
        body = self.read_body()
        try:
            if path.startswith("/__standin/"):
                self.send(self.standin(path, body))
                return
            params = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
            reply, extra = self.handle_prtg(path, params)
        except Exception as e:  # a bug here must not look like a PRTG answer
            self.send(Reply(500, f"stand-in internal error: {e!r}\n", "text/plain; charset=UTF-8"))
            raise
        self.record(path, raw_query, params, reply, extra)
        self.send(reply)

    def record(self, path, raw_query, params, reply, extra):
        st = self.state
        with st.lock:
            st.seq += 1
            entry = {
                "seq": st.seq,
                "time": round(time.time(), 3),
                "method": self.command,
                "path": path,
                "query": mask_query(raw_query),
                "params": masked_params(params),
                "auth": extra.get("auth"),
                "status": reply.status,
            }
            if "Location" in reply.headers:
                entry["location"] = reply.headers["Location"]
            if extra.get("fault"):
                entry["fault"] = extra["fault"]
            if extra.get("created"):
                entry["created"] = extra["created"]
            st.requests.append(entry)
            st.write_state_file()

    # ---- authentication ----

    def authenticate(self, params):
        """Returns the auth form used ('apitoken'|'passhash'|'password') or
        None. Every API call carries credentials in the query string; PRTG
        has no sessions for API calls."""
        a = self.state.args
        token = one(params, "apitoken")
        if token is not None:
            return "apitoken" if a.apitoken and token == a.apitoken else None
        user = one(params, "username")
        if user is None or user != a.username:
            return None
        ph = one(params, "passhash")
        if ph is not None:
            return "passhash" if a.passhash and ph == a.passhash else None
        pw = one(params, "password")
        if pw is not None:
            return "password" if a.password and pw == a.password else None
        return None

    # ---- PRTG surface ----

    def handle_prtg(self, path, params):
        st = self.state
        a = st.args
        extra = {}
        if path.startswith("/api/"):
            with st.lock:
                st.api_calls += 1
                endpoint = path[len("/api/"):]
                inject = False
                if st.fail_left > 0 and (not a.fail_only or endpoint in a.fail_only):
                    st.fail_left -= 1
                    st.faults += 1
                    inject = True
            if a.delay_ms:
                time.sleep(a.delay_ms / 1000.0)
            if inject:
                extra["fault"] = f"fail-first ({a.fail_status})"
                return Reply(a.fail_status, f"{a.fail_status} Service Unavailable\n",
                             "text/plain; charset=UTF-8"), extra
            if endpoint == "getpasshash.htm":
                return self.api_getpasshash(params, extra), extra
            auth = self.authenticate(params)
            extra["auth"] = auth
            if auth is None:
                return Reply(401, UNAUTHORIZED_BODY), extra
            fn = {
                "table.json": self.api_table_json,
                "duplicateobject.htm": self.api_duplicateobject,
                "setobjectproperty.htm": self.api_setobjectproperty,
                "getobjectproperty.htm": self.api_getobjectproperty,
                "pause.htm": self.api_pause,
            }.get(endpoint)
            if fn is None:
                return Reply(404, f"Not implemented by the PRTG stand-in: {path}\n",
                             "text/plain; charset=UTF-8"), extra
            return fn(params, extra), extra
        if path in OBJECT_PAGES:
            return self.web_object_page(path, params, extra), extra
        if path == "/public/login.htm":
            return self.web_login_page(params), extra
        return Reply(404, f"Not found (PRTG stand-in): {path}\n", "text/plain; charset=UTF-8"), extra

    def api_getpasshash(self, params, extra):
        a = self.state.args
        user, pw = one(params, "username"), one(params, "password")
        if a.password and user == a.username and pw == a.password:
            extra["auth"] = "password"
            return Reply(200, a.passhash or "", "text/plain; charset=UTF-8")
        extra["auth"] = None
        return Reply(401, UNAUTHORIZED_BODY)

    def api_table_json(self, params, extra):
        a = self.state.args
        content = one(params, "content") or ""
        if content not in CONTENT_TYPES:
            return xml_error(a.prtg_version, f"The content type '{content}' is not supported by the PRTG stand-in.")
        types = CONTENT_TYPES[content]
        cols_param = one(params, "columns")
        columns = [c.strip() for c in cols_param.split(",") if c.strip()] if cols_param else ["objid", "name"]
        count_s = one(params, "count") or "500"
        start_s = one(params, "start") or "0"
        with self.state.lock:
            tree = self.state.tree
            idv = one(params, "id")
            if idv not in (None, "", "0"):
                ids = parse_ids(idv)
                pool = []
                for i in ids or []:
                    pool.extend(tree.subtree(i))
            else:
                pool = list(tree.objects.values())
            rows = [o for o in pool if o["type"] in types]
            # filters: filter_xyz=value; repeated filter_xyz -> OR; different xyz -> AND
            for key, vals in params.items():
                if not key.startswith("filter_"):
                    continue
                col = key[len("filter_"):]
                probe_obj = rows[0] if rows else None
                if probe_obj is not None and column_value(tree, probe_obj, col) is None:
                    continue  # unknown column: PRTG ignores the filter (stand-in choice, see README)
                rows = [o for o in rows if matches_filter(tree, o, col, vals)]
            sortby = one(params, "sortby") or columns[0]
            rev = sortby.startswith("-")
            scol = sortby.lstrip("-")

            def sort_key(o):
                cv = column_value(tree, o, scol)
                raw = cv[1] if cv else ""
                return (0, raw, o["objid"]) if isinstance(raw, (int, float)) else (1, str(raw).lower(), o["objid"])
            rows.sort(key=sort_key, reverse=rev)
            treesize = len(rows)
            try:
                start = max(0, int(start_s))
            except ValueError:
                start = 0
            if count_s == "*":
                page = rows[start:]
            else:
                try:
                    page = rows[start:start + max(0, int(count_s))]
                except ValueError:
                    page = rows[start:start + 500]
            items = []
            for o in page:
                item = {}
                for c in columns:
                    cv = column_value(tree, o, c)
                    if cv is None:
                        continue
                    disp, raw = cv
                    if a.objid_as_string and c in ("objid", "parentid") and disp is not None:
                        disp = str(disp)
                    item[c] = disp
                    item[c + "_raw"] = raw
                items.append(item)
        doc = {"prtg-version": a.prtg_version, "treesize": treesize, content: items}
        return Reply(200, json.dumps(doc), "application/json; charset=UTF-8")

    def api_duplicateobject(self, params, extra):
        st = self.state
        a = st.args
        src_ids = parse_ids(one(params, "id"))
        tgt_ids = parse_ids(one(params, "targetid"))
        name = one(params, "name")
        host = one(params, "host")
        with st.lock:
            tree = st.tree
            if not src_ids or len(src_ids) != 1 or tree.get(src_ids[0]) is None:
                return xml_error(a.prtg_version, NO_OBJECT_ERROR)
            if not tgt_ids or len(tgt_ids) != 1 or tree.get(tgt_ids[0]) is None:
                return xml_error(a.prtg_version, NO_OBJECT_ERROR)
            src, tgt = tree.get(src_ids[0]), tree.get(tgt_ids[0])
            if src["type"] not in CLONE_TARGETS:
                return xml_error(a.prtg_version, "Cannot duplicate this object type (PRTG stand-in).")
            if tgt["type"] not in CLONE_TARGETS[src["type"]]:
                return xml_error(a.prtg_version,
                                 f"A {src['type']} cannot be placed below a {tgt['type']} (PRTG stand-in).")
            if name is None or name.strip() == "":
                return xml_error(a.prtg_version, "The parameter 'name' is missing (PRTG stand-in).")
            new = tree.clone(src, tgt["objid"], name, host if src["type"] == "device" else None)
            extra["created"] = new["objid"]
            lose = st.lose_dup_left > 0
            if lose:
                st.lose_dup_left -= 1
                st.faults += 1
            noloc = (not lose) and st.dup_noloc_left > 0
            if noloc:
                st.dup_noloc_left -= 1
                st.faults += 1
        if lose:
            extra["fault"] = "lose-duplicate-response (object created, 503 returned)"
            return Reply(503, "503 Service Unavailable\n", "text/plain; charset=UTF-8")
        if noloc:
            extra["fault"] = "duplicate-without-location (object created, 200 without Location)"
            return Reply(200, NO_CONTENT_OK_BODY)
        loc = f"/{PAGE_FOR_TYPE[new['type']]}?id={new['objid']}"
        if a.absolute_location:
            loc = f"http://127.0.0.1:{self.server.server_address[1]}{loc}"
        body = f'<html><head><title>Moved</title></head><body><a href="{loc}">{loc}</a></body></html>'
        return Reply(a.redirect_status, body, headers={"Location": loc})

    def api_setobjectproperty(self, params, extra):
        st = self.state
        ids = parse_ids(one(params, "id"))
        name = one(params, "name")
        value = one(params, "value")
        with st.lock:
            tree = st.tree
            if not ids or any(tree.get(i) is None for i in ids):
                return xml_error(st.args.prtg_version, NO_OBJECT_ERROR)
            if not name:
                return xml_error(st.args.prtg_version, "The parameter 'name' is missing (PRTG stand-in).")
            value = "" if value is None else value
            for i in ids:
                o = tree.get(i)
                if name == "name":
                    o["name"] = value
                elif name == "host":
                    o["host"] = value
                elif name == "tags":
                    o["tags"] = [t for t in value.replace(",", " ").split() if t]
                else:
                    o["properties"][name] = value
        return Reply(200, NO_CONTENT_OK_BODY)

    def api_getobjectproperty(self, params, extra):
        st = self.state
        ids = parse_ids(one(params, "id"))
        name = one(params, "name") or ""
        with st.lock:
            tree = st.tree
            if not ids or len(ids) != 1 or tree.get(ids[0]) is None:
                return xml_error(st.args.prtg_version, NO_OBJECT_ERROR)
            o = tree.get(ids[0])
            if name == "name":
                result = o["name"]
            elif name == "host" and o["type"] == "device":
                result = o["host"]
            elif name == "tags":
                result = " ".join(o["tags"])
            elif name in o["properties"]:
                result = o["properties"][name]
            else:
                result = PROPERTY_NOT_FOUND
        body = ('<?xml version="1.0" encoding="UTF-8" ?>\n<prtg>\n'
                f"<version>{xml_escape(st.args.prtg_version)}</version>\n"
                f"<result>{xml_escape(str(result))}</result>\n</prtg>\n")
        return Reply(200, body, "text/xml; charset=UTF-8")

    def api_pause(self, params, extra):
        st = self.state
        ids = parse_ids(one(params, "id"))
        action = one(params, "action")
        msg = one(params, "pausemsg") or ""
        with st.lock:
            tree = st.tree
            if not ids or any(tree.get(i) is None for i in ids):
                return xml_error(st.args.prtg_version, NO_OBJECT_ERROR)
            if action not in ("0", "1"):
                return xml_error(st.args.prtg_version,
                                 "The parameter 'action' must be 0 (pause) or 1 (resume) (PRTG stand-in).")
            for i in ids:
                for o in tree.subtree(i):
                    if action == "0":
                        o["status_raw"] = PAUSED_BY_USER
                        o["pausemsg"] = msg if o["objid"] == i else ""
                    else:
                        o["status_raw"] = UP
                        o["pausemsg"] = ""
        first = ids[0]
        if action == "0":  # answer: the tool-bar button that now offers "Resume"
            body = (f'<a data-placement="bottom" title="Resume" href="#" onclick="var self=this; '
                    f"_Prtg.objectTools.pauseObject.call(this,'{first}',1);return false;\">"
                    '<i class="icon-play icon-dark"></i></a>')
        else:
            body = (f'<a data-placement="bottom" title="Pause" href="#" onclick="var self=this; '
                    f"_Prtg.objectTools.pauseObject.call(this,'{first}',0);return false;\">"
                    '<i class="icon-pause icon-dark"></i></a>')
        return Reply(200, body)

    # ---- web pages a redirect-following client lands on ----

    def web_object_page(self, path, params, extra):
        auth = self.authenticate(params)
        extra["auth"] = auth
        if auth is None:
            # PRTG sends the browser to the login page; loginurl is not encoded
            target = path + ("?" + "&".join(f"{k}={v[-1]}" for k, v in params.items()
                                           if k not in SECRET_PARAMS and k != "username")
                             if params else "")
            loc = f"/public/login.htm?loginurl={target}&errormsg="
            return Reply(302, "", headers={"Location": loc})
        ids = parse_ids(one(params, "id"))
        with self.state.lock:
            o = self.state.tree.get(ids[0]) if ids else None
            if o is None:
                return Reply(200, f"<html><body><div class=\"errormsg\"><h3>{xml_escape(NO_OBJECT_ERROR)}"
                                  "</h3></div></body></html>")
            name = o["name"]
        return Reply(200, f"<html><head><title>{xml_escape(name)} | PRTG stand-in</title></head>"
                          f"<body><h1>{xml_escape(name)}</h1></body></html>")

    def web_login_page(self, params):
        loginurl = one(params, "loginurl") or "/"
        # parse_qs split "loginurl=/device.htm?id=1&errormsg=" correctly only
        # because '?' and '=' survive; rebuild it from the raw query instead.
        raw = urllib.parse.urlsplit(self.path).query
        if raw.startswith("loginurl="):
            loginurl = raw[len("loginurl="):].split("&errormsg=")[0]
        body = ("<html><head><title>Welcome | PRTG Network Monitor (stand-in)</title></head><body>"
                '<form id="loginform" action="/public/checklogin.htm" method="post">'
                f'<input type="hidden" name="loginurl" value="{xml_escape(loginurl, {chr(34): "&quot;"})}">'
                '<input type="text" name="username"><input type="password" name="password">'
                "</form></body></html>")
        return Reply(200, body)

    # ---- test-only inspection API ----

    def standin(self, path, body):
        st = self.state
        if path == "/__standin/state" and self.command in ("GET", "HEAD"):
            return Reply(200, json.dumps(st.snapshot(), indent=2), "application/json; charset=UTF-8")
        if path == "/__standin/reset" and self.command == "POST":
            st.reset()
            st.write_state_file()
            return Reply(200, json.dumps({"reset": True}), "application/json; charset=UTF-8")
        if path == "/__standin/devices" and self.command == "POST":
            try:
                d = json.loads(body or b"{}")
                name, host = d["name"], d["host"]
            except (ValueError, KeyError, TypeError):
                return Reply(400, '{"error":"want JSON {\\"name\\",\\"host\\",[\\"parentid\\"],[\\"status_raw\\"]}"}',
                             "application/json; charset=UTF-8")
            with st.lock:
                parent = int(d.get("parentid", st.args.group_id))
                if st.tree.get(parent) is None:
                    return Reply(400, '{"error":"no such parentid"}', "application/json; charset=UTF-8")
                nid = st.tree.alloc_id()
                o = make_obj(nid, "device", name, parent, host=host,
                             status_raw=int(d.get("status_raw", UP)), tags=d.get("tags"))
                st.tree.objects[nid] = o
                out = st.tree.public_obj(o)
            st.write_state_file()
            return Reply(201, json.dumps(out), "application/json; charset=UTF-8")
        return Reply(404, '{"error":"unknown stand-in endpoint"}', "application/json; charset=UTF-8")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="PRTG API v1 stand-in for ztpd tests (not PRTG).")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--apitoken", default="", help="accepted API key (apitoken=...)")
    ap.add_argument("--username", default="", help="accepted user name")
    ap.add_argument("--passhash", default="", help="accepted passhash for --username")
    ap.add_argument("--password", default="", help="accepted password for --username (also enables getpasshash.htm)")
    ap.add_argument("--state-file", default="", help="write the inspection JSON here after every request and at exit")
    ap.add_argument("--seed", default="", help="JSON file {objects:[...], next_id:N} replacing the default tree")
    ap.add_argument("--prtg-version", default="24.3.100.1361", help="value of prtg-version / <version>")
    # default tree
    ap.add_argument("--probe-id", type=int, default=1)
    ap.add_argument("--probe-name", default="Local Probe")
    ap.add_argument("--group-id", type=int, default=2001)
    ap.add_argument("--group-name", default="ztpd")
    ap.add_argument("--template-id", type=int, default=3001, help="template device; its Ping sensor gets id+1")
    ap.add_argument("--template-name", default="ztpd-template")
    ap.add_argument("--template-host", default="template.invalid")
    ap.add_argument("--next-id", type=int, default=4001, help="first id handed out to new objects")
    ap.add_argument("--device", action="append", metavar="NAME,HOST[,PARENTID]",
                    help="pre-existing device (status Up), repeatable")
    # quirks and faults
    ap.add_argument("--redirect-status", type=int, default=302, choices=(301, 302, 303, 307),
                    help="status of the duplicateobject.htm redirect (default 302)")
    ap.add_argument("--absolute-location", action="store_true",
                    help="send Location as http://127.0.0.1:PORT/device.htm?id=N instead of a path")
    ap.add_argument("--objid-as-string", action="store_true",
                    help='table.json: emit "objid":"4001" (string) with "objid_raw":4001')
    ap.add_argument("--fail-first", type=int, default=0, metavar="N",
                    help="answer the first N /api/ calls with --fail-status before doing anything")
    ap.add_argument("--fail-only", action="append", metavar="ENDPOINT",
                    help="limit --fail-first to these endpoints (e.g. duplicateobject.htm), repeatable")
    ap.add_argument("--fail-status", type=int, default=503)
    ap.add_argument("--lose-duplicate-response", type=int, default=0, metavar="N",
                    help="first N duplicateobject.htm calls create the object, then answer 503")
    ap.add_argument("--duplicate-without-location", type=int, default=0, metavar="N",
                    help="first N duplicateobject.htm calls create the object, then answer 200 without Location")
    ap.add_argument("--delay-ms", type=int, default=0, help="sleep before answering each /api/ call")
    ap.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    args = ap.parse_args(argv)

    if not (args.apitoken or (args.username and (args.passhash or args.password))):
        print("ERROR give --apitoken and/or --username with --passhash/--password", file=sys.stderr)
        return 2

    seed = load_seed_file(args.seed) if args.seed else default_seed(args)
    state = State(args, seed)
    Handler.state = state
    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    except OSError as e:
        print(f"ERROR cannot listen on 127.0.0.1:{args.port}: {e}", file=sys.stderr)
        return 1
    httpd.daemon_threads = True
    state.write_state_file()
    print(f"PORT {httpd.server_address[1]}", flush=True)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        state.write_state_file()
    return 0


if __name__ == "__main__":
    sys.exit(main())
