"""The identity stage: decides on the caller the audit stage identified (R-ID-1, R-ID-3, R-SEC-2).

Revocation, agreement in force, and the role the method needs; the accepted
:class:`~leis.broker.identity.Principal` is established for policy and the
handlers. A refusal raises before anything else may run.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from leis.broker.chain._base import Continuation, bypasses_chain, passthrough
from leis.broker.context import CALLER, PRINCIPAL
from leis.broker.identity import IdentityResolver


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
        if bypasses_chain(method_name):
            return await passthrough(method, request, context)
        PRINCIPAL.establish(self._resolver.authorize(CALLER.get(), method_name))
        return await method(request, context)
