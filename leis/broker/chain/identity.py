"""The identity stage: decides on the caller the audit stage identified (R-ID-1, R-ID-3, R-SEC-2, R-SEC-4).

Revocation, key pin, agreement in force, and the role the method needs; the accepted
:class:`~leis.broker.identity.Principal` is established for admission, policy and the
handlers. A refusal raises before anything else may run.

Health and reflection bypass the chain, but not alike: health stays open to any
certificate of the CA (load balancers probe it), while reflection, which describes the
whole API, answers only a registered certificate (an agreement in force, key pinned,
not revoked, any role).
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from leis.broker.chain._base import Continuation, bypasses_chain, call_next, passthrough
from leis.broker.context import CALLER, PRINCIPAL
from leis.broker.identity import IdentityResolver
from leis.common.errors import LeisError, abort

REFLECTION_PREFIX = "/grpc.reflection."


class IdentityInterceptor(AsyncServerInterceptor):
    """Establishes the principal before anything else may run."""

    def __init__(self, resolver: IdentityResolver) -> None:
        self._resolver = resolver

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if method_name.startswith(REFLECTION_PREFIX):
            try:
                self._resolver.registered(self._resolver.identify(context))
            except LeisError as err:
                await abort(context, err)
            return await passthrough(method, request, context)
        if bypasses_chain(method_name):
            return await passthrough(method, request, context)
        PRINCIPAL.establish(self._resolver.authorize(CALLER.get(), method_name))
        return await call_next(method, request, context)
