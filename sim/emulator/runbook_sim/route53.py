"""Route 53 changes that take time to reach INSYNC.

moto 5.2.5 answers ChangeResourceRecordSets with a fixed change id and status
INSYNC, and GetChange says INSYNC for any id at all. Here each change gets its own
id, is PENDING for the timing model's route53_insync seconds and INSYNC after that;
GetChange of an unknown id is NoSuchChange, as in AWS. The records themselves are
visible in ListResourceRecordSets at once, as in AWS (INSYNC is about propagation to
the name servers, not the API).
"""

import datetime
import string

from moto.core.responses import ActionResult
from moto.moto_api._internal import mock_random
from moto.route53 import responses as r53_responses

from . import state
from .errors import SimServiceError
from .timing import Transition

# change id (C...) -> (Transition, submitted datetime, comment)
_changes = {}


@state.on_reset
def _reset():
    _changes.clear()


def _change_id():
    alphabet = string.ascii_uppercase + string.digits
    return "C" + "".join(mock_random.choice(alphabet) for _ in range(20))


def _info(cid):
    t, submitted, comment = _changes[cid]
    info = {"Id": f"/change/{cid}", "Status": "INSYNC" if t.done() else "PENDING", "SubmittedAt": submitted}
    if comment:
        info["Comment"] = comment
    return info


# Ids moto's own handlers return for hosted zone and VPC association changes,
# which stay INSYNC at once.
_MOTO_FIXED_IDS = {"C1PA6795UKMFR9", "C2682N5HXP0BZ4", "a1b2c3d4"}
_START = datetime.datetime.now(datetime.timezone.utc)

_orig_change = r53_responses.Route53.change_resource_record_sets


def change_resource_record_sets(self):
    _orig_change(self)  # validates and applies the batch; raises on errors
    cid = _change_id()
    with state.LOCK:
        _changes[cid] = (
            Transition("route53_insync"),
            datetime.datetime.now(datetime.timezone.utc),
            self._get_param("ChangeBatch.Comment"),
        )
        return ActionResult({"ChangeInfo": _info(cid)})


def get_change(self):
    raw = self._get_param("Id") or ""
    cid = raw.rsplit("/", 1)[-1]
    with state.LOCK:
        if cid in _MOTO_FIXED_IDS:
            return ActionResult({"ChangeInfo": {"Id": f"/change/{cid}", "Status": "INSYNC", "SubmittedAt": _START}})
        if cid not in _changes:
            raise SimServiceError("NoSuchChange", f"A change with the specified change ID does not exist: {raw}")
        return ActionResult({"ChangeInfo": _info(cid)})


def install():
    r53_responses.Route53.change_resource_record_sets = change_resource_record_sets
    r53_responses.Route53.get_change = get_change
