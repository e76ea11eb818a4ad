"""Hooks: the emulator tells a local fake when an auto-scaling group's instances boot
and go away, so that what those instances run (Spacelift workers, in the DR
simulation) starts and stops with them.

  POST /_sim/hooks          {"url": "http://127.0.0.1:PORT/...",
                             "autoscaling_groups": [{"region": r, "group": g}, ...]}
                            -> {"id": "hook-N", "instances": [event, ...]}: an
                               "instance-started" event for every instance of those
                               groups booted now, taken atomically with the
                               registration
  POST /_sim/hooks/remove   {"id": "hook-N"}
  GET  /_sim/hooks          the registered hooks

An event is {"type": "instance-started" | "instance-stopped", "region", "group",
"instance_id", "lifecycle_state"}. An instance has booted once it has left Pending
(Pending:Wait, a lifecycle hook holding it, already runs its user data; so do
InService and Standby); it has stopped once it has left the group. Events are found
after every request (the transitions the request brought due, and what the request
itself did) and POSTed as {"hook": id, "events": [...]} to each hook whose groups they
concern, before the request that caused them is answered: a client that sees an
instance InService knows its hook has already been told. The emulator's lock is not
held during the call, so the hook may call the emulator back. Only loopback URLs are
accepted. A hook that does not answer within 10 s is skipped for that delivery.
POST /_sim/reset forgets the hooks.
"""

import ipaddress
import itertools
import json
import sys
import urllib.parse
import urllib.request

from moto.autoscaling.models import autoscaling_backends

from . import state

_hooks = {}  # id -> {"url", "groups": {(region, group)}}
_booted = {}  # (account, region, group, instance_id) -> lifecycle_state at boot
_seq = itertools.count(1)

# An instance in one of these states has not booted yet.
NOT_BOOTED = {"Pending"}


def _loopback(url):
    u = urllib.parse.urlparse(url)
    if u.scheme != "http" or not u.hostname:
        return False
    if u.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(u.hostname).is_loopback
    except ValueError:
        return False


def _instances():
    """(account, region, group, instance_id) -> lifecycle state, for every booted instance."""
    out = {}
    for account, regions in list(autoscaling_backends.items()):
        for region, backend in list(regions.items()):
            for name, group in list(backend.autoscaling_groups.items()):
                for s in group.instance_states:
                    if s.lifecycle_state not in NOT_BOOTED:
                        out[(account, region, name, s.instance.id)] = s.lifecycle_state
    return out


def _event(kind, key, lifecycle_state):
    _, region, group, instance_id = key
    return {"type": kind, "region": region, "group": group, "instance_id": instance_id, "lifecycle_state": lifecycle_state}


def _diff():
    """Events since the last call. Caller holds state.LOCK."""
    if not _hooks:
        return []
    now = _instances()
    events = []
    for key in sorted(now.keys() - _booted.keys()):
        events.append(_event("instance-started", key, now[key]))
    for key in sorted(_booted.keys() - now.keys()):
        events.append(_event("instance-stopped", key, "Terminated"))
    _booted.clear()
    _booted.update(now)
    return events


def deliver():
    """Find the events of the state as it is now and POST them to the hooks concerned."""
    with state.LOCK:
        events = _diff()
        targets = [(hid, dict(h)) for hid, h in _hooks.items()]
    if not events:
        return
    for hid, h in targets:
        mine = [e for e in events if (e["region"], e["group"]) in h["groups"]]
        if not mine:
            continue
        body = json.dumps({"hook": hid, "events": mine}).encode()
        req = urllib.request.Request(h["url"], data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except Exception as e:  # a hook that went away must not fail the request
            print(f"runbook-sim: hook {hid} ({h['url']}): {e}", file=sys.stderr, flush=True)


@state.route("POST", "hooks")
def _register(doc):
    url = doc.get("url")
    if not isinstance(url, str) or not _loopback(url):
        raise ValueError("url must be an http URL on a loopback address")
    groups = set()
    for g in doc.get("autoscaling_groups") or []:
        if not isinstance(g, dict) or not g.get("region") or not g.get("group"):
            raise ValueError('autoscaling_groups: each entry needs "region" and "group"')
        groups.add((g["region"], g["group"]))
    if not groups:
        raise ValueError("autoscaling_groups: name at least one group")
    with state.LOCK:
        first = not _hooks
        hid = f"hook-{next(_seq)}"
        _hooks[hid] = {"url": url, "groups": groups}
        if first:
            _booted.clear()
            _booted.update(_instances())
        current = [
            _event("instance-started", key, st)
            for key, st in sorted(_booted.items())
            if (key[1], key[2]) in groups
        ]
        return {"id": hid, "instances": current}


@state.route("POST", "hooks/remove")
def _remove(doc):
    with state.LOCK:
        if _hooks.pop(doc.get("id"), None) is None:
            raise KeyError(f"no hook {doc.get('id')!r}")
        return {"ok": True}


@state.route("GET", "hooks")
def _list(_doc):
    with state.LOCK:
        return {hid: {"url": h["url"], "groups": sorted(map(list, h["groups"]))} for hid, h in _hooks.items()}


@state.on_reset
def _reset():
    _hooks.clear()
    _booted.clear()


def install():
    pass
