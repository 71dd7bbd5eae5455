"""Outbound requests to destinations a tenant chooses (webhooks): which are allowed, and a client
that connects only to addresses it has checked. Free of queue and HTTP-API imports."""
