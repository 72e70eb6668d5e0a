"""Who signed a request, checked by moto on every one, and IAM for what tasks do.

moto evaluates IAM itself (``moto.iam.access_control``: the signature, then the identity's
policies against the action and resource), but only once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests
have passed, a process-wide switch that is off by default. The emulator turns moto's same check on
for every request instead:

- the signature is verified for every caller, with the secret of the key it names: the owner's
  (an IAM user of the emulator's account), a user the owner made, or keys moto's STS issued. A key
  the emulator does not know is refused (the gate already refused it; moto says so again);
- a caller signing with keys STS issued (a task's job role keys, or a role the owner assumed) is
  held to the role's policies, as on AWS. The owner and the users they made are not held to any
  policy: they stand for the account (the README says so).

Known limits of moto's evaluator, and so of the emulator: condition operators other than
``StringEquals`` are not evaluated (the job role's ``s3:prefix`` condition on ListBucket is
ignored: a task may list its whole data bucket), and resource policies (bucket policies) are not
consulted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import (
    AccessDeniedError,
    InvalidClientTokenIdError,
    JsonRESTError,
    SignatureDoesNotMatchError,
)
from moto.iam.access_control import AssumedRoleAccessKey, IAMRequest

# Services that answer errors in JSON: moto's IAM check answers in XML, which their clients cannot
# read, so its refusals are given again in the service's own words.
JSON_SERVICES = frozenset({"batch", "logs", "ecr", "ecs", "events", "secretsmanager", "ssm", "kms"})
_IN_JSON = {
    SignatureDoesNotMatchError: (
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided "
        "(sign with the keys `runner local env` prints)",
    ),
    InvalidClientTokenIdError: (
        "UnrecognizedClientException",
        "The security token included in the request is invalid",
    ),
    AccessDeniedError: ("AccessDeniedException", None),
}


class JsonRefusal(JsonRESTError):
    code = 403


def enforce() -> Callable[[], None]:
    """Verify every request's signature, and hold STS-issued keys to their role; returns what
    undoes it."""
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return None
        path = self.raw_path
        query = urlparse(self.uri).query
        iam_request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=path + ("?" + query if query else ""),
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        if self.method in ("GET", "HEAD", "DELETE") and iam_request_cls is IAMRequest:
            # moto signs a bodiless request's parsed parameters as if they were its body (Batch's
            # ListTagsForResource and UntagResource would never match): check the empty body sent.
            iam_request._data = {}
        try:
            iam_request.check_signature()
            iam_request._data = self.data
            if isinstance(iam_request._access_key, AssumedRoleAccessKey):
                iam_request.check_action_permitted(resource)
        except tuple(_IN_JSON) as refusal:
            if iam_request_cls is not IAMRequest or iam_request._service not in JSON_SERVICES:
                raise
            error_type, message = _IN_JSON[type(refusal)]
            raise JsonRefusal(error_type, message or refusal.message) from None
        return None

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]

    def undo() -> None:
        ActionAuthenticatorMixin._authenticate_and_authorize_action = original  # type: ignore[method-assign]

    return undo


def issued(access_key_id: str) -> bool:
    """Whether the emulator knows the key: an IAM user's (the owner made it) or one moto's STS
    issued (a task's role keys)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sts.models import sts_backends

    if user_secret(access_key_id) is not None:
        return True
    roles = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].assumed_roles
    return any(role.access_key_id == access_key_id for role in roles)


def _iam() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    return iam_backends[DEFAULT_ACCOUNT_ID]["aws"]


# Every partition a client may sign for (the region decides it: cn-northwest-1 is aws-cn).
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def register_owner(keys: tuple[str, str], name: str, region: str) -> None:
    """The emulator's owner as an IAM user of its account, signing with the emulator's own keys, so
    a caller identity names them (``arn:aws:iam::123456789012:user/<name>``) as AWS would; in each
    partition, as moto keeps one IAM per partition."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import AccessKey, iam_backends

    for partition in PARTITIONS:
        backend = iam_backends[DEFAULT_ACCOUNT_ID][partition]
        if name not in backend.users:
            backend.create_user(region_name=region, user_name=name)
        if any(k.access_key_id == keys[0] for k in backend.users[name].access_keys):
            continue
        key = AccessKey(user_name=name, prefix="LKIA", account_id=DEFAULT_ACCOUNT_ID)
        key.access_key_id, key.secret_access_key = keys
        backend.users[name].access_keys.append(key)


def user_secret(access_key_id: str) -> str | None:
    """The secret of an IAM user's access key in the emulator (the owner made the user), or None."""
    user = _iam().get_user_from_access_key_id(access_key_id)
    if user is None:
        return None
    return next((k.secret_access_key for k in user.access_keys if k.access_key_id == access_key_id), None)
