"""IAM for what tasks do: a call signed with a task's role keys is allowed or denied by the role's
policies, as on AWS; every other caller (the emulator's owner, an SDK, moto's own test suite) is
answered as moto always answers.

moto evaluates IAM itself (``moto.iam.access_control``: the signature, then the identity's
policies against the action and resource) once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests have
passed. That switch is process-wide; this applies moto's same check to the requests signed with the
keys ``TaskIdentity`` issued, and to no others.

Known limits of moto's evaluator, and so of the emulator: condition operators other than
``StringEquals`` are not evaluated (the job role's ``s3:prefix`` condition on ListBucket is
ignored: a task may list its whole data bucket), and resource policies (bucket policies) are not
consulted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from moto.core.authorization import ActionAuthenticatorMixin

_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/")


def access_key_of(headers: Any) -> str | None:
    """The access key id a request was signed with (SigV4 header), if any."""
    match = _CREDENTIAL.search(str(headers.get("Authorization") or ""))
    return match["key"] if match else None


def enforce_for(issued: Collection[str]) -> Callable[[], None]:
    """Hold requests signed with ``issued`` keys to IAM; returns what undoes it."""
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if access_key_of(self.headers) not in issued:
            return original(self, iam_request_cls, resource)
        path = self.raw_path
        query = self.uri.partition("?")[2]
        iam_request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=path + ("?" + query if query else ""),
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        iam_request.check_signature()
        iam_request.check_action_permitted(resource)
        return None

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]

    def undo() -> None:
        ActionAuthenticatorMixin._authenticate_and_authorize_action = original  # type: ignore[method-assign]

    return undo


def _iam() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    return iam_backends[DEFAULT_ACCOUNT_ID]["aws"]


def register_owner(keys: tuple[str, str], name: str, region: str) -> None:
    """The emulator's owner as an IAM user of its account, signing with the emulator's own keys, so
    a caller identity names them (``arn:aws:iam::123456789012:user/<name>``) as AWS would."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import AccessKey

    backend = _iam()
    if name not in backend.users:
        backend.create_user(region_name=region, user_name=name)
    key = AccessKey(user_name=name, prefix="LKIA", account_id=DEFAULT_ACCOUNT_ID)
    key.access_key_id, key.secret_access_key = keys
    backend.users[name].access_keys.append(key)


def user_secret(access_key_id: str) -> str | None:
    """The secret of an IAM user's access key in the emulator (the owner made the user), or None."""
    user = _iam().get_user_from_access_key_id(access_key_id)
    if user is None:
        return None
    return next((k.secret_access_key for k in user.access_keys if k.access_key_id == access_key_id), None)
