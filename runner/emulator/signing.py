"""Checking that a request to the emulator was signed (SigV4) with the emulator's own secret.

The emulator runs commands, so only its owner may submit jobs: the runner signs with keys only
the owner can read, and the emulator recomputes the signature of every SubmitJob with them.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, ?SignedHeaders=(?P<headers>[^,]+), ?Signature=(?P<signature>[0-9a-f]+)"
)


def signed_by(
    method: str, url: str, headers: Mapping[str, str], body: bytes, access_key: str, secret_key: str
) -> bool:
    """True when the request carries a valid SigV4 signature made with exactly these keys."""
    lowered = {k.lower(): v for k, v in headers.items()}
    match = _AUTHORIZATION.fullmatch(lowered.get("authorization", "").strip())
    if not match or match["key"] != access_key or "x-amz-date" not in lowered:
        return False
    signed = match["headers"].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={h: lowered[h] for h in signed if h in lowered}
    )
    request.context["timestamp"] = lowered["x-amz-date"]
    auth = SigV4Auth(Credentials(access_key, secret_key), match["service"], match["region"])
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, match["signature"])
