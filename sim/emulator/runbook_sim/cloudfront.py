"""CloudFront distributions that deploy, and ETags that mean something.

moto 5.2.5 ignores IfMatch on UpdateDistribution (any value passes), keeps one ETag
for the life of a distribution, and leaves the status alone on an update (moto's
state manager moves InProgress -> Deployed on a read counter, once). Here:
CreateDistribution and every UpdateDistribution put the distribution InProgress for
the timing model's cloudfront_deploy seconds, then Deployed; each update issues a
new ETag, and an IfMatch that is not the current ETag is PreconditionFailed (412),
so a read-modify-write that races another writer fails as in AWS.
"""

import datetime

from moto.cloudfront import models as cf_models
from moto.moto_api._internal import mock_random

from . import state
from .errors import SimServiceError
from .timing import Transition


def _etag():
    return "E" + "".join(mock_random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(13))


def _status(self):
    t = getattr(self, "_sim_deploy", None)
    if t is not None and not t.done():
        return "InProgress"
    return "Deployed"


def _set_status(self, value):
    pass


def _deploy(dist):
    dist._sim_deploy = Transition("cloudfront_deploy")
    dist.etag = _etag()
    dist.last_modified_time = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_orig_create = cf_models.CloudFrontBackend.create_distribution_with_tags
_orig_update = cf_models.CloudFrontBackend.update_distribution


def create_distribution_with_tags(self, distribution_config, tags):
    with state.LOCK:
        dist, location, _ = _orig_create(self, distribution_config, tags)
        _deploy(dist)
        return dist, location, dist.etag


def update_distribution(self, dist_config, _id, if_match):
    with state.LOCK:
        dist = self.distributions.get(_id)
        if dist is not None and if_match and if_match != dist.etag:
            raise SimServiceError(
                "PreconditionFailed",
                "The If-Match version is missing or not valid for the resource.",
            )
        dist, location, _ = _orig_update(self, dist_config, _id, if_match)
        _deploy(dist)
        return dist, location, dist.etag


def install():
    cf_models.Distribution.status = property(_status, _set_status)
    cf_models.CloudFrontBackend.create_distribution_with_tags = create_distribution_with_tags
    cf_models.CloudFrontBackend.update_distribution = update_distribution
