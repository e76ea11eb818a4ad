"""A stable IoT Core endpoint per account and region.

moto 5.2.5 makes up a new random endpoint on every DescribeEndpoint call, so the
"current IoT endpoint" of a region is never the same twice. AWS returns one fixed
address per account, region and endpoint type; here the prefix is derived from the
account and region, so it is stable across calls (and emulator restarts) and
differs between regions: <prefix>-ats.iot.<region>.amazonaws.com for iot:Data-ATS.
"""

import hashlib

from moto.iot import models as iot_models

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def prefix(account_id, region):
    digest = hashlib.sha256(f"runbook-sim-iot/{account_id}/{region}".encode()).digest()
    # AWS prefixes are 14 lowercase letters and digits, starting with a letter.
    chars = [_ALPHABET[b % len(_ALPHABET)] for b in digest[:13]]
    return _ALPHABET[digest[13] % 26] + "".join(chars)


_orig_describe = iot_models.IoTBackend.describe_endpoint


def describe_endpoint(self, endpoint_type):
    ep = _orig_describe(self, endpoint_type)  # validates the type
    p = prefix(self.account_id, self.region_name)
    r = self.region_name
    ep.endpoint = {
        "iot:Data": f"{p}.iot.{r}.amazonaws.com",
        "iot:Data-ATS": f"{p}-ats.iot.{r}.amazonaws.com",
        "iot:CredentialProvider": f"{p}.credentials.iot.{r}.amazonaws.com",
        "iot:Jobs": f"{p}.jobs.iot.{r}.amazonaws.com",
    }[endpoint_type]
    return ep


def install():
    iot_models.IoTBackend.describe_endpoint = describe_endpoint
