"""Rate limits: plans and route classes (:mod:`.policy`), moving windows in memory or Redis
(:mod:`.windows`), the limiter over them (:mod:`.limiter`) and the IETF ``RateLimit`` headers
(:mod:`.headers`).

The HTTP middleware that applies them to every request is
:class:`archway.kernel.http.rate_limits.RateLimits`.
"""
