"""Rate limits: plans and route classes (:mod:`.policy`), the limiter over the ``limits``
library's async storages (:mod:`.limiter`) and the IETF ``RateLimit`` headers (:mod:`.headers`).

The HTTP middleware that applies them to every request is
:class:`archway.kernel.http.rate_limits.RateLimits`.
"""
